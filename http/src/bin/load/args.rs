//! The command line: [`Args`], their parsers, and [`check`] for what clap
//! cannot check on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, ValueEnum};
use riptide_common::loadgen::parse_duration;

/// Most info hashes in one scrape request (riptide-http's own default limit
/// is 74; a tracker that allows fewer answers with a `failure reason`).
pub(crate) const MAX_SCRAPE_HASHES: usize = 256;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "riptide-http-load",
    about = "Load generator for HTTP(S) BitTorrent trackers (BEP 3, 23, 48)"
)]
pub(crate) struct Args {
    /// Tracker address (IPv4 or IPv6).
    #[arg(long, default_value = "127.0.0.1:6969")]
    pub(crate) target: SocketAddr,
    /// `Host` header; default: the target address.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// Load threads, each one mio event loop.
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Pin thread i to the (i mod n)-th of these cores, e.g. `1`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) cores: Vec<usize>,
    /// Connections in total (spread over the threads); each has at most
    /// one request in flight.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// Connection use: `keep-alive` (HTTP/1.1 persistent connections,
    /// reopened when the server closes one) or `close` (a new connection
    /// per request, `Connection: close`).
    #[arg(long, value_enum, default_value_t = ConnMode::KeepAlive)]
    pub(crate) mode: ConnMode,
    /// Speak TLS (rustls, ring); needs `--tls-insecure` or `--ca`.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Accept any server certificate (signatures are still checked, so the
    /// handshake costs what a verified one does, less the chain walk).
    #[arg(long)]
    pub(crate) tls_insecure: bool,
    /// Trust the certificates in this PEM file (it needs a subjectAltName
    /// for `--tls-server-name`).
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// Server name sent (SNI) and verified.
    #[arg(long, default_value = "localhost")]
    pub(crate) tls_server_name: String,
    /// TLS session resumption (tickets / session ids) on new connections.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub(crate) tls_resumption: OnOff,
    /// TLS versions offered.
    #[arg(long, value_enum, default_value_t = TlsVersion::Any)]
    pub(crate) tls_version: TlsVersion,
    /// Share of requests that are announces, in percent; the rest scrape.
    #[arg(long, default_value_t = 90)]
    pub(crate) announce_percent: u8,
    /// A scrape asks for 1 to this many info hashes (uniform).
    #[arg(long, default_value_t = 1)]
    pub(crate) scrape_hashes: usize,
    /// Number of distinct info hashes.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) torrents: usize,
    /// Pareto shape of torrent popularity; 0 = uniform, 1 = about half the
    /// requests go to the most popular 1% of torrents.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) pareto: f64,
    /// Simulated peers per thread, each its own peer id and port (the
    /// tracker sees every one from the same address).
    #[arg(long, default_value_t = 1000)]
    pub(crate) peers_per_thread: usize,
    /// Share of peers announcing as seeders (left = 0).
    #[arg(long, default_value_t = 0.25)]
    pub(crate) seeders: f64,
    /// `numwant` in announces.
    #[arg(long, default_value_t = 50)]
    pub(crate) numwant: u32,
    /// How long to measure, e.g. `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Requests/s offered in total; 0 = saturation (every connection
    /// always has a request in flight).
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// A request (with its connect and handshake) unanswered after this
    /// long is counted as a timeout and its connection dropped.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Also report this process's CPU per response over the same window
    /// (the tracker's pid; read from /proc/PID/stat).
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// No per-second lines.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// How connections are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConnMode {
    /// Persistent connections.
    KeepAlive,
    /// A connection per request.
    Close,
}

/// A switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// TLS protocol versions the client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TlsVersion {
    /// TLS 1.2 and 1.3 (1.3 preferred).
    Any,
    /// TLS 1.2 only.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    Tls13,
}

/// Refuse what the load threads cannot run with.
pub(crate) fn check(args: &Args) -> anyhow::Result<()> {
    if args.threads == 0 || args.connections < args.threads {
        bail!("--threads must be at least 1 and --connections at least --threads");
    }
    if args.connections > 1 << 16 {
        bail!("--connections {}: at most 65536", args.connections);
    }
    if args.torrents == 0 || args.peers_per_thread == 0 {
        bail!("--torrents and --peers-per-thread must be at least 1");
    }
    if args.peers_per_thread * args.threads > 55_000 {
        bail!("--peers-per-thread x --threads: at most 55000 distinct ports");
    }
    if args.announce_percent > 100 {
        bail!("--announce-percent {}: 0 to 100", args.announce_percent);
    }
    if !(1..=MAX_SCRAPE_HASHES).contains(&args.scrape_hashes) {
        bail!(
            "--scrape-hashes {}: allowed 1 to {MAX_SCRAPE_HASHES}",
            args.scrape_hashes
        );
    }
    if !(args.pareto >= 0.0 && args.pareto.is_finite()) {
        bail!("--pareto {}: must be 0 (uniform) or positive", args.pareto);
    }
    if !(0.0..=1.0).contains(&args.seeders) {
        bail!("--seeders {}: a share from 0 to 1", args.seeders);
    }
    if args.duration.is_zero() || args.timeout.is_zero() {
        bail!("--duration and --timeout must be positive");
    }
    if args.tls && !args.tls_insecure && args.ca.is_none() {
        bail!("--tls needs --tls-insecure or --ca FILE");
    }
    if args
        .host
        .as_ref()
        .is_some_and(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_control() || b == b' '))
    {
        bail!("--host: a non-empty name without spaces or control bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_tls_needs_trust() {
        let mut args = Args::parse_from(["riptide-http-load"]);
        check(&args).unwrap();
        args.tls = true;
        assert!(check(&args).is_err());
        args.tls_insecure = true;
        check(&args).unwrap();
        let args = Args::parse_from(["x", "--tls-version", "1.3", "--mode", "close"]);
        assert_eq!(args.tls_version, TlsVersion::Tls13);
        assert_eq!(args.mode, ConnMode::Close);
    }
}
