//! The command line: [`Args`], the request [`Mix`], their parsers, and
//! [`check`] for what clap cannot check on its own.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use riptide_common::loadgen::cli::{check_flag, check_positive, RunArgs};
use riptide_common::loadgen::parse_duration;
use riptide_udp::protocol::MAX_SCRAPE_HASHES;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "riptide-udp-load",
    about = "Load generator for UDP BitTorrent trackers (BEP 15)"
)]
pub(crate) struct Args {
    /// Tracker address (IPv4 or IPv6); repeat for several.
    #[arg(long = "target", default_value = "127.0.0.1:6969")]
    pub(crate) targets: Vec<SocketAddr>,
    /// Threads, torrents, how long to send.
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Request mix as relative weights.
    #[arg(long, default_value = "connect=10,announce=80,scrape=10", value_parser = parse_mix)]
    pub(crate) mix: Mix,
    /// Requests/s offered in total; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Most requests in flight per thread.
    #[arg(long, default_value_t = 256)]
    pub(crate) window: usize,
    /// Simulated peers per thread (each its own peer id and port).
    #[arg(long, default_value_t = 1000)]
    pub(crate) peers_per_thread: usize,
    /// Sockets per target per thread.
    #[arg(long, default_value_t = 1)]
    pub(crate) sockets_per_target: usize,
    /// Datagrams per sendmmsg / recvmmsg.
    #[arg(long, default_value_t = 64)]
    pub(crate) batch: usize,
    /// Info hashes per scrape request.
    #[arg(long, default_value_t = 1)]
    pub(crate) scrape_hashes: usize,
    /// `num_want` in announces.
    #[arg(long, default_value_t = 50)]
    pub(crate) numwant: i32,
    /// A request unanswered after this long is lost.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Store this many distinct peers, then stop (a memory fill): peer i
    /// announces once, as a leecher, to torrent i mod --torrents with its
    /// own port and peer id. Ignores --mix; --duration is the time limit.
    #[arg(long, default_value_t = 0)]
    pub(crate) fill_peers: u64,
    /// Print the --torrents info hashes, hex, one a line, and exit (an
    /// access list for trackers that only serve listed torrents).
    #[arg(long)]
    pub(crate) list_info_hashes: bool,
}

/// Relative weights of the request kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mix {
    pub(crate) connect: u32,
    pub(crate) announce: u32,
    pub(crate) scrape: u32,
}

fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut mix = Mix {
        connect: 0,
        announce: 0,
        scrape: 0,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected kind=weight"))?;
        let value: u32 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{part}`: weight must be a whole number"))?;
        match key.trim() {
            "connect" => mix.connect = value,
            "announce" => mix.announce = value,
            "scrape" => mix.scrape = value,
            other => {
                return Err(format!(
                    "unknown kind `{other}` (connect, announce, scrape)"
                ))
            }
        }
    }
    let total = u64::from(mix.connect) + u64::from(mix.announce) + u64::from(mix.scrape);
    if total == 0 || total > u64::from(u32::MAX) {
        return Err("the weights must add up to between 1 and 2^32-1".into());
    }
    Ok(mix)
}

/// Refuse what the load threads cannot run with.
pub(crate) fn check(args: &Args) -> anyhow::Result<()> {
    args.run.check()?;
    check_positive("--timeout", args.timeout)?;
    if args.targets.is_empty() {
        bail!("--target: give at least one tracker address");
    }
    // Requests in flight per thread.
    check_flag("--window", args.window, 1..=1 << 16)?;
    if args.batch == 0 || args.sockets_per_target == 0 || args.peers_per_thread == 0 {
        bail!("--batch, --sockets-per-target and --peers-per-thread must be at least 1");
    }
    if args.targets.len() * args.sockets_per_target > 64 {
        bail!("at most 64 sockets per thread (targets x sockets-per-target)");
    }
    check_flag("--scrape-hashes", args.scrape_hashes, 1..=MAX_SCRAPE_HASHES)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_refuses() {
        assert_eq!(
            parse_mix("connect=10,announce=80,scrape=10"),
            Ok(Mix {
                connect: 10,
                announce: 80,
                scrape: 10
            })
        );
        assert_eq!(
            parse_mix(" announce = 1 "),
            Ok(Mix {
                connect: 0,
                announce: 1,
                scrape: 0
            })
        );
        assert!(parse_mix("").is_err());
        assert!(parse_mix("connect=0").is_err());
        assert!(parse_mix("ping=1").is_err());
        assert!(parse_mix("announce").is_err());
        assert!(parse_mix("announce=-1").is_err());
    }
}
