//! The one start-up sequence and CLI entry every tracker binary runs:
//! flags → logging → block signals → worker count → access list → metrics
//! endpoint → bind (as root) → ready file → drop privileges → serve. A
//! tracker supplies only what is its own through [`Service`]: which
//! io_uring features it needs, how it binds, how it serves.

use crate::access_list::SharedAccessList;
use crate::config::{Cli, Command, TrackerConfig};
use crate::metrics::{series_len, Desc, WorkerMetrics};
use anyhow::Context;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sockets a tracker bound, as `(protocol, address)`, e.g.
/// `("udp", 0.0.0.0:6969)`.
pub type BoundAddrs = Vec<(&'static str, SocketAddr)>;

/// What a tracker binary plugs into [`main`]: the service it offers.
pub trait Service {
    /// Its config (declared with [`tracker_config!`](crate::tracker_config)).
    type Config: TrackerConfig;
    /// What `bind` returns and `serve` takes: its bound sockets.
    type Bound;
    /// Its metric tables, in value order (its own, then the runtime block).
    const METRICS: &'static [&'static [Desc]];

    /// The io_uring features it needs that `probe` lacks, and what it does
    /// then (for `--probe`): `(missing, "what happens")`.
    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str);

    /// Binds every socket (still as root). Returns them and the addresses
    /// bound.
    fn bind(config: &Self::Config, started: &Started) -> anyhow::Result<(Self::Bound, BoundAddrs)>;

    /// Serves until SIGTERM/SIGINT (privileges are dropped already).
    fn serve(config: Self::Config, bound: Self::Bound, started: Started) -> anyhow::Result<()>;
}

/// What the shared start-up prepared for the tracker.
pub struct Started {
    /// Worker threads.
    pub workers: usize,
    /// The access list, reloaded on SIGUSR1.
    pub access_list: SharedAccessList,
    /// One value table per worker, sized for every table of `METRICS`.
    pub metrics: Vec<Arc<WorkerMetrics>>,
}

/// The whole binary: reads the flags (`-c`, `-p`, `--check-config`,
/// `--probe`, `--ready-file`), then probes or runs.
pub fn main<T: Service>() -> anyhow::Result<()> {
    match Cli::read::<T::Config>()? {
        Command::Probe => {
            let probe = uring_rt::Probe::detect();
            println!("{probe}");
            let (missing, then) = T::probe_verdict(&probe);
            if missing.is_empty() {
                // Scripts look for "can run on io_uring".
                println!(
                    "{} can run on io_uring: this kernel has every feature it uses",
                    <T::Config as TrackerConfig>::NAME
                );
            } else {
                println!(
                    "{}: this kernel lacks {}: {then}",
                    <T::Config as TrackerConfig>::NAME,
                    missing.join(", ")
                );
            }
            Ok(())
        }
        Command::Run(config, ready_file) => {
            crate::logging::init_logging(config.log_level());
            start::<T>(config, ready_file.as_deref())
        }
    }
}

/// The start-up sequence, then `T::serve`.
pub fn start<T: Service>(config: T::Config, ready_file: Option<&Path>) -> anyhow::Result<()> {
    // First, so every thread started from here on (metrics, workers)
    // inherits the mask and signals are only ever read through a signalfd.
    uring_rt::block_runtime_signals().context("block signals")?;
    let common = config.common();
    let workers = crate::pinning::worker_count(common.workers);
    let access_list = SharedAccessList::load(common.access_list).context("load access list")?;
    let mut metrics_addr = None;
    let metrics: Vec<Arc<WorkerMetrics>> = (0..workers)
        .map(|_| Arc::new(WorkerMetrics::new(series_len(T::METRICS))))
        .collect();
    if let Some(addr) = common.metrics.addr()? {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("bind metrics {addr}"))?;
        let bound = crate::metrics::serve(listener, T::METRICS, metrics.clone())?;
        log::info!("metrics on http://{bound}/metrics");
        metrics_addr = Some(bound);
    }
    let started = Started {
        workers,
        access_list,
        metrics,
    };
    let (bound, mut addrs) = T::bind(&config, &started)?;
    for (proto, addr) in &addrs {
        log::info!("listening on {proto} {addr}");
    }
    addrs.extend(metrics_addr.map(|a| ("metrics", a)));
    if let Some(path) = ready_file {
        write_ready_file(path, &addrs)?;
    }
    crate::privileges::drop_privileges(config.common().privileges)?;
    T::serve(config, bound, started)?;
    log::info!("stopped");
    Ok(())
}

/// Writes one `protocol address` line per bound socket (and `metrics
/// address` for the metrics endpoint), atomically (a
/// temporary file renamed into place), so a supervisor or a test waits for
/// the file instead of parsing logs.
fn write_ready_file(path: &Path, addrs: &[(&'static str, SocketAddr)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (p, a) in addrs {
        let _ = writeln!(text, "{p} {a}");
    }
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write ready file {}", path.display()))
}

/// Reads a ready file back: `(protocol, address)` per line.
pub fn read_ready_file(text: &str) -> Vec<(String, SocketAddr)> {
    text.lines()
        .filter_map(|l| {
            let (p, a) = l.split_once(' ')?;
            Some((p.to_string(), a.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_file_reads_back() {
        let dir = std::env::temp_dir().join(format!("riptide-ready-{}", std::process::id()));
        let addrs = [
            ("udp", "127.0.0.1:6969".parse().unwrap()),
            ("udp", "[::1]:6969".parse().unwrap()),
        ];
        write_ready_file(&dir, &addrs).unwrap();
        let back = read_ready_file(&std::fs::read_to_string(&dir).unwrap());
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(
            back,
            addrs
                .iter()
                .map(|(p, a)| (p.to_string(), *a))
                .collect::<Vec<_>>()
        );
    }
}
