//! The command line: [`Args`] and [`check`] for what clap cannot check.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use riptide_common::loadgen::cli::{
    check_connections, check_flag, check_host, check_positive, RunArgs, TlsArgs,
};
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
    /// Threads (each one mio event loop), torrents, duration (measured
    /// after every connection is upgraded; with `--idle`, how long to hold
    /// the connections).
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Connections in total (spread over the threads); each is one peer
    /// with its own peer id.
    #[arg(long, default_value_t = 256)]
    pub(crate) connections: usize,
    /// wss:// and whom to trust.
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
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
}

/// Refuse what the load threads cannot run with.
pub(crate) fn check(args: &Args) -> anyhow::Result<()> {
    args.run.check()?;
    check_positive("--timeout", args.timeout)?;
    args.tls.check()?;
    check_connections(args.run.threads, args.connections)?;
    check_host(args.host.as_deref())?;
    check_flag("--answer-percent", args.answer_percent, 0..=100)?;
    check_flag("--offers", args.offers, 0..=MAX_OFFERS)?;
    check_flag("--in-flight", args.in_flight, 1..=MAX_IN_FLIGHT)?;
    check_flag("--sdp-bytes", args.sdp_bytes, 0..=8 * 1024)?;
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
        args.tls.tls = true;
        assert!(check(&args).is_err());
        args.tls.tls_insecure = true;
        check(&args).unwrap();
        let args = Args::parse_from(["x", "--offers", "11"]);
        assert!(check(&args).is_err());
    }
}
