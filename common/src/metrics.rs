//! Metrics: per-worker counters that only their worker writes (a relaxed
//! load and store, no locked instruction on the hot path), and a small
//! Prometheus text endpoint that reads them all. Every metric is prefixed
//! `riptide_` and labelled with its worker.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Whether a metric only grows or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic.
    Counter,
    /// Current value.
    Gauge,
}

/// One time series a tracker exports per worker.
#[derive(Debug, Clone, Copy)]
pub struct Desc {
    /// Name without the `riptide_` prefix.
    pub name: &'static str,
    /// Extra labels, e.g. `kind="announce",ip="4"`; "" for none.
    pub labels: &'static str,
    /// One-line help text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
}

/// One worker's values, indexed like the tracker's [`Desc`] table.
#[derive(Debug)]
pub struct WorkerMetrics {
    values: Box<[AtomicU64]>,
}

impl WorkerMetrics {
    /// Zeroed values for a table of `len` descriptions.
    pub fn new(len: usize) -> Self {
        Self {
            values: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds `n` to series `i`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        if let Some(v) = self.values.get(i) {
            v.store(v.load(Relaxed).wrapping_add(n), Relaxed);
        }
    }

    /// Sets series `i` (gauges, or counters copied from elsewhere).
    #[inline]
    pub fn set(&self, i: usize, n: u64) {
        if let Some(v) = self.values.get(i) {
            v.store(n, Relaxed);
        }
    }

    /// Reads series `i`.
    pub fn get(&self, i: usize) -> u64 {
        self.values.get(i).map_or(0, |v| v.load(Relaxed))
    }
}

/// Renders every worker's values in Prometheus text format.
pub fn render(descs: &[Desc], workers: &[Arc<WorkerMetrics>]) -> String {
    let mut out = String::with_capacity(descs.len() * workers.len() * 64);
    let mut last = "";
    for (i, d) in descs.iter().enumerate() {
        if d.name != last {
            let kind = match d.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
            };
            let _ = writeln!(
                out,
                "# HELP riptide_{} {}\n# TYPE riptide_{} {kind}",
                d.name, d.help, d.name
            );
            last = d.name;
        }
        for (w, m) in workers.iter().enumerate() {
            let sep = if d.labels.is_empty() { "" } else { "," };
            let _ = writeln!(
                out,
                "riptide_{}{{worker=\"{w}\"{sep}{}}} {}",
                d.name,
                d.labels,
                m.get(i)
            );
        }
    }
    out
}

/// Sums series `i` over all workers.
pub fn total(workers: &[Arc<WorkerMetrics>], i: usize) -> u64 {
    workers.iter().map(|m| m.get(i)).sum()
}

/// Serves `GET /metrics` on `listener` from a background thread.
/// One request per connection, bounded reads, a 2-second timeout.
pub fn serve(
    listener: TcpListener,
    descs: &'static [Desc],
    workers: Vec<Arc<WorkerMetrics>>,
) -> std::io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, descs, &workers) {
                    log::debug!("metrics request failed: {e}");
                }
            }
        })?;
    Ok(addr)
}

fn answer(
    mut stream: TcpStream,
    descs: &[Desc],
    workers: &[Arc<WorkerMetrics>],
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let (status, body) = if buf[..len].starts_with(b"GET /metrics ") {
        ("200 OK", render(descs, workers))
    } else {
        ("404 Not Found", "try /metrics\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCS: &[Desc] = &[
        Desc {
            name: "requests_total",
            labels: "kind=\"connect\"",
            help: "Requests.",
            kind: MetricKind::Counter,
        },
        Desc {
            name: "requests_total",
            labels: "kind=\"announce\"",
            help: "Requests.",
            kind: MetricKind::Counter,
        },
        Desc {
            name: "torrents",
            labels: "",
            help: "Torrents.",
            kind: MetricKind::Gauge,
        },
    ];

    #[test]
    fn endpoint_serves_every_worker() {
        let workers: Vec<_> = (0..2)
            .map(|_| Arc::new(WorkerMetrics::new(DESCS.len())))
            .collect();
        workers[0].add(1, 5);
        workers[1].set(2, 7);
        let addr = serve(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            DESCS,
            workers.clone(),
        )
        .unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(
            text.contains("riptide_requests_total{worker=\"0\",kind=\"announce\"} 5"),
            "{text}"
        );
        assert!(text.contains("riptide_torrents{worker=\"1\"} 7"), "{text}");
        assert_eq!(
            text.matches("# TYPE riptide_requests_total counter")
                .count(),
            1
        );
        assert_eq!(total(&workers, 1), 5);
    }
}
