//! The command line: [`Args`] and [`check`] for what clap cannot check.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use riptide_common::loadgen::parse_duration;

/// Most offers in one announce (riptide-ws and aquatic_ws accept 10).
pub(crate) const MAX_OFFERS: usize = 10;
/// Most announces in flight on one connection.
pub(crate) const MAX_IN_FLIGHT: usize = 16;

/// Command line.
#[derive(Parser, Debug)]
#[allow(clippy::struct_excessive_bools)] // command-line switches
#[command(
    name = "riptide-ws-load",
    about = "Load generator for WebTorrent trackers (WebSocket signalling, ws:// and wss://)"
)]
pub(crate) struct Args {
    /// Tracker address (IPv4 or IPv6).
    #[arg(long, default_value = "127.0.0.1:8000")]
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
    /// Connections in total (spread over the threads); each is one peer
    /// with its own peer id.
    #[arg(long, default_value_t = 256)]
    pub(crate) connections: usize,
    /// wss:// (rustls, ring); needs `--tls-insecure` or `--ca`.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Accept any server certificate (handshake signatures still checked).
    #[arg(long)]
    pub(crate) tls_insecure: bool,
    /// Trust the certificates in this PEM file.
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// Server name sent (SNI) and verified.
    #[arg(long, default_value = "localhost")]
    pub(crate) tls_server_name: String,
    /// Number of distinct info hashes.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) torrents: usize,
    /// Pareto shape of torrent popularity; 0 = uniform, 1 = about half the
    /// announces go to the most popular 1% of torrents.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) pareto: f64,
    /// Offers per announce (WebTorrent sends up to 5); `numwant` is the same.
    #[arg(long, default_value_t = 5)]
    pub(crate) offers: usize,
    /// Bytes of each SDP (offers and answers).
    #[arg(long, default_value_t = 500)]
    pub(crate) sdp_bytes: usize,
    /// Share of received offers that are answered, in percent.
    #[arg(long, default_value_t = 20)]
    pub(crate) answer_percent: u8,
    /// Announces in flight per connection: the next goes out when a reply
    /// comes back (saturation).
    #[arg(long, default_value_t = 1)]
    pub(crate) in_flight: usize,
    /// Share of peers announcing as seeders (`left` = 0).
    #[arg(long, default_value_t = 0.25)]
    pub(crate) seeders: f64,
    /// How long to measure (after every connection is upgraded), e.g.
    /// `10s`; with `--idle`, how long to hold the connections.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// An announce unanswered after this long is counted as a timeout (and
    /// its slot freed); a connect or upgrade this slow is an error.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Open the connections, announce once on each (so each is a peer in a
    /// swarm), print `IDLE READY ...` and hold them for `--duration`
    /// without sending more (for RSS per idle connection).
    #[arg(long)]
    pub(crate) idle: bool,
    /// Also report this process's CPU per message over the same window
    /// (the tracker's pid; read from /proc/PID/stat).
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// No per-second lines.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Refuse what the load threads cannot run with.
pub(crate) fn check(args: &Args) -> anyhow::Result<()> {
    if args.threads == 0 || args.connections < args.threads {
        bail!("--threads must be at least 1 and --connections at least --threads");
    }
    if args.connections > 1 << 16 {
        bail!("--connections {}: at most 65536", args.connections);
    }
    if args.torrents == 0 {
        bail!("--torrents must be at least 1");
    }
    if args.offers > MAX_OFFERS {
        bail!("--offers {}: at most {MAX_OFFERS}", args.offers);
    }
    if !(1..=MAX_IN_FLIGHT).contains(&args.in_flight) {
        bail!("--in-flight {}: 1 to {MAX_IN_FLIGHT}", args.in_flight);
    }
    if args.sdp_bytes > 8 * 1024 {
        bail!("--sdp-bytes {}: at most 8192", args.sdp_bytes);
    }
    if args.answer_percent > 100 {
        bail!("--answer-percent {}: 0 to 100", args.answer_percent);
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
        let mut args = Args::parse_from(["riptide-ws-load"]);
        check(&args).unwrap();
        assert_eq!(args.offers, 5);
        args.tls = true;
        assert!(check(&args).is_err());
        args.tls_insecure = true;
        check(&args).unwrap();
        let args = Args::parse_from(["x", "--offers", "11"]);
        assert!(check(&args).is_err());
    }
}
