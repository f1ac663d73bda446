//! The command line: [`Args`], their parsers, and [`check`] for what clap
//! cannot check on its own.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use riptide_common::loadgen::cli::{
    check_connections, check_flag, check_host, check_positive, RunArgs, TlsArgs,
};
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
    /// Threads (each one mio event loop), torrents, duration.
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Connections in total (spread over the threads); each has at most
    /// one request in flight.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// Connection use: `keep-alive` (HTTP/1.1 persistent connections,
    /// reopened when the server closes one) or `close` (a new connection
    /// per request, `Connection: close`).
    #[arg(long, value_enum, default_value_t = ConnMode::KeepAlive)]
    pub(crate) mode: ConnMode,
    /// TLS and whom to trust.
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
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
    /// Simulated peers per thread, each its own peer id and port (the
    /// tracker sees every one from the same address).
    #[arg(long, default_value_t = 1000)]
    pub(crate) peers_per_thread: usize,
    /// `numwant` in announces.
    #[arg(long, default_value_t = 50)]
    pub(crate) numwant: u32,
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
    args.run.check()?;
    check_positive("--timeout", args.timeout)?;
    args.tls.check()?;
    check_connections(args.run.threads, args.connections)?;
    check_host(args.host.as_deref())?;
    check_flag("--announce-percent", args.announce_percent, 0..=100)?;
    // Every peer of every thread has a port of its own.
    let ports = 55_000 / args.run.threads;
    check_flag("--peers-per-thread", args.peers_per_thread, 1..=ports)?;
    check_flag("--scrape-hashes", args.scrape_hashes, 1..=MAX_SCRAPE_HASHES)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_tls_needs_trust() {
        let mut args = Args::parse_from(["riptide-http-load"]);
        check(&args).unwrap();
        args.tls.tls = true;
        assert!(check(&args).is_err());
        args.tls.tls_insecure = true;
        check(&args).unwrap();
        let args = Args::parse_from(["x", "--tls-version", "1.3", "--mode", "close"]);
        assert_eq!(args.tls_version, TlsVersion::Tls13);
        assert_eq!(args.mode, ConnMode::Close);
    }
}
