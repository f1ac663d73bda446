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

/// Declares a tracker's metrics once: an enum whose variants index the
/// worker's values, and the table of their descriptions in the same order
/// (they cannot drift apart). Each variant names its kind (`Counter` or
/// `Gauge`), series name (without `riptide_`), extra labels and help text.
///
/// ```
/// riptide_common::metrics_table! {
///     /// Series of a sample tracker.
///     pub enum Metric in DESCS {
///         /// Announces received.
///         Announces = Counter("requests_total", "kind=\"announce\"", "Requests received."),
///         /// Torrents held.
///         Torrents = Gauge("torrents", "", "Torrents in this worker's shard."),
///     }
/// }
/// assert_eq!(DESCS[Metric::Torrents.index()].name, "torrents");
/// ```
#[macro_export]
macro_rules! metrics_table {
    (
        $(#[doc = $edoc:literal])*
        $vis:vis enum $name:ident in $table:ident, $tagged:ident with $tag:literal {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident = $kind:ident($series:expr, $labels:literal, $help:expr)
            ),* $(,)?
        }
    ) => {
        $crate::metrics_table! {
            $(#[doc = $edoc])*
            $vis enum $name in $table {
                $($(#[doc = $doc])* $variant = $kind($series, $labels, $help),)*
            }
        }

        /// The same series with one more label first, for a process that
        /// serves more than one protocol.
        $vis const $tagged: &[$crate::metrics::Desc] = &[$(
            $crate::metrics::Desc {
                name: $series,
                labels: concat!($tag, ",", $labels),
                help: $help,
                kind: $crate::metrics::MetricKind::$kind,
            },
        )*];
    };
    (
        $(#[doc = $edoc:literal])*
        $vis:vis enum $name:ident in $table:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident = $kind:ident($series:expr, $labels:literal, $help:expr)
            ),* $(,)?
        }
    ) => {
        $(#[doc = $edoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        $vis enum $name {
            $($(#[doc = $doc])* $variant,)*
        }

        /// Descriptions, in the enum's order.
        $vis const $table: &[$crate::metrics::Desc] = &[$(
            $crate::metrics::Desc {
                name: $series,
                labels: $labels,
                help: $help,
                kind: $crate::metrics::MetricKind::$kind,
            },
        )*];

        impl $name {
            /// Index into the table and the worker's values.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

/// Help texts of the series every tracker exports under the same names, so
/// one process serving several protocols prints one HELP per name.
pub mod help {
    /// `requests_total`.
    pub const REQUESTS: &str = "Requests received, by kind and IP version.";
    /// `responses_total`.
    pub const RESPONSES: &str =
        "Responses sent, by kind (and IP version where the protocol tells).";
    /// `errors_total`.
    pub const ERRORS: &str = "Requests dropped or refused, by reason.";
    /// `announces_total`.
    pub const ANNOUNCES: &str = "Announces handled on the receiving worker (local) or sent through the mesh to the owner (forwarded).";
    /// `scrape_hashes_total`.
    pub const SCRAPE_HASHES: &str = "Scrape hashes answered on the receiving worker (local) or asked of another worker (forwarded).";
    /// `peers`.
    pub const PEERS: &str = "Peers in this worker's shard.";
}

const RING_DRY: &str = "Times the io_uring buffer ring ran dry (ENOBUFS).";

metrics_table! {
    /// The runtime's series, the same block for every tracker, filled from
    /// `uring_rt::RtStats` by [`fill_runtime`]. They follow the tracker's own
    /// series in each worker's values (at `base` = the tracker table's length).
    pub enum RuntimeMetric in RUNTIME {
        /// Wake-ups of other workers.
        MeshWakeups = Counter(
            "mesh_wakeups_total",
            "",
            "Wake-ups sent to another worker because its ring went from empty to non-empty."
        ),
        /// ENOBUFS on a buffer ring.
        RecvBuffersExhausted = Counter("recv_buffers_exhausted_total", "", RING_DRY),
        /// Buffer ring growths.
        RecvBuffersGrown = Counter(
            "recv_buffers_grown_total",
            "",
            "Times the io_uring buffer ring doubled the buffers in play after running dry."
        ),
        /// Multishot re-arms.
        RecvRearms = Counter("recv_rearms_total", "", "Times a multishot receive was armed again."),
        /// io_uring_enter calls.
        SubmitBatches = Counter("uring_submits_total", "", "io_uring submit calls."),
        /// SQEs submitted.
        SubmittedEntries = Counter(
            "uring_submitted_entries_total",
            "",
            "Submission queue entries submitted (divide by submits for the batch size)."
        ),
        /// Turns without the batching wait.
        BusyTurns = Counter(
            "uring_busy_turns_total",
            "",
            "Loop turns that skipped the batching wait because the worker was behind (saturation)."
        ),
        /// TCP connections accepted.
        TcpAccepts = Counter("tcp_connections_total", "event=\"accepted\"", "TCP connections, by event."),
        /// TCP connections closed.
        TcpClosed = Counter("tcp_connections_total", "event=\"closed\"", "TCP connections, by event."),
        /// TCP connections reset by `abort`.
        TcpAborted = Counter("tcp_connections_total", "event=\"aborted\"", "TCP connections, by event."),
        /// Connections that waited for a slot or were refused at the limit.
        TcpRefused = Counter("tcp_connections_total", "event=\"refused\"", "TCP connections, by event."),
        /// ACCEPT back-offs (out of descriptors).
        AcceptBackoffs = Counter(
            "tcp_accept_backoffs_total",
            "",
            "Times accepting backed off for want of descriptors or memory (EMFILE, ENFILE, ...)."
        ),
        /// Kept bytes over the inbound bound.
        InboundFull = Counter(
            "tcp_inbound_full_total",
            "",
            "Connections whose unconsumed received bytes passed max_inbound_bytes."
        ),
        /// Graceful closes that timed out.
        LingerTimeouts = Counter(
            "tcp_linger_timeouts_total",
            "",
            "Graceful closes that reached the linger deadline before the peer's EOF."
        ),
        /// Open TCP connections.
        TcpOpen = Gauge("tcp_connections_open", "", "Open TCP connections on this worker."),
    }
}

/// Copies the runtime's counters into `m`'s runtime block at `base`.
pub fn fill_runtime(
    s: &uring_rt::RtStats,
    open_connections: usize,
    m: &WorkerMetrics,
    base: usize,
) {
    let set = |k: RuntimeMetric, v: u64| m.set(base + k.index(), v);
    set(RuntimeMetric::MeshWakeups, s.mesh_wakeups);
    set(
        RuntimeMetric::RecvBuffersExhausted,
        s.recv_buffers_exhausted,
    );
    set(RuntimeMetric::RecvBuffersGrown, s.recv_buffers_grown);
    set(RuntimeMetric::RecvRearms, s.rearms);
    set(RuntimeMetric::SubmitBatches, s.submit_batches);
    set(RuntimeMetric::SubmittedEntries, s.submitted_sqes);
    set(RuntimeMetric::BusyTurns, s.busy_turns);
    set(RuntimeMetric::TcpAccepts, s.accepts);
    set(RuntimeMetric::TcpClosed, s.conns_closed);
    set(RuntimeMetric::TcpAborted, s.conns_aborted);
    set(RuntimeMetric::TcpRefused, s.conns_refused);
    set(RuntimeMetric::AcceptBackoffs, s.accept_backoffs);
    set(RuntimeMetric::InboundFull, s.inbound_full);
    set(RuntimeMetric::LingerTimeouts, s.linger_timeouts);
    set(RuntimeMetric::TcpOpen, open_connections as u64);
}

/// Number of values a worker of a tracker with `tables` keeps.
pub fn series_len(tables: &[&[Desc]]) -> usize {
    tables.iter().map(|t| t.len()).sum()
}

/// The first series name whose series are not all adjacent across
/// `tables`, if any. A tracker keeps each name's series together, so that
/// its table reads as the HELP and TYPE blocks it prints.
pub fn split_name(tables: &[&[Desc]]) -> Option<&'static str> {
    let mut seen = std::collections::HashSet::new();
    let mut last = "";
    for d in tables.iter().flat_map(|t| t.iter()) {
        if d.name != last {
            if !seen.insert(d.name) {
                return Some(d.name);
            }
            last = d.name;
        }
    }
    None
}

/// Renders every worker's values in Prometheus text format; `tables` are
/// the tracker's series then the runtime block, in value order. Series of
/// one name are printed together (under one HELP and TYPE), wherever
/// their tables put them.
pub fn render(tables: &[&[Desc]], workers: &[Arc<WorkerMetrics>]) -> String {
    let len = series_len(tables);
    let mut out = String::with_capacity(len * workers.len() * 64);
    let all: Vec<(usize, &Desc)> = tables.iter().flat_map(|t| t.iter()).enumerate().collect();
    let mut done = vec![false; all.len()];
    for first in 0..all.len() {
        if done[first] {
            continue;
        }
        let name = all[first].1.name;
        for &(i, d) in all[first..].iter().filter(|(_, d)| d.name == name) {
            done[i] = true;
            render_one(&mut out, i, d, i == first, workers);
        }
    }
    out
}

/// One series of every worker, after its HELP and TYPE when `head`.
fn render_one(out: &mut String, i: usize, d: &Desc, head: bool, workers: &[Arc<WorkerMetrics>]) {
    if head {
        let kind = match d.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        let _ = writeln!(
            out,
            "# HELP riptide_{} {}\n# TYPE riptide_{} {kind}",
            d.name, d.help, d.name
        );
    }
    // A tagged table's series without labels of their own end in a comma.
    let labels = d.labels.trim_end_matches(',');
    let sep = if labels.is_empty() { "" } else { "," };
    for (w, m) in workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "riptide_{}{{worker=\"{w}\"{sep}{labels}}} {}",
            d.name,
            m.get(i)
        );
    }
}

/// Sums series `i` over all workers.
pub fn total(workers: &[Arc<WorkerMetrics>], i: usize) -> u64 {
    workers.iter().map(|m| m.get(i)).sum()
}

/// Serves `GET /metrics` on `listener` from a background thread.
/// One request per connection, bounded reads, a 2-second timeout.
pub fn serve(
    listener: TcpListener,
    descs: &'static [&'static [Desc]],
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
    descs: &[&[Desc]],
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
            &[DESCS],
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

    #[test]
    fn series_of_one_name_are_adjacent_in_the_runtime_block() {
        assert_eq!(split_name(&[RUNTIME]), None);
        assert_eq!(split_name(&[DESCS, RUNTIME, DESCS]), Some("requests_total"));
    }
}
