//! The command line: [`Args`], the request [`Mix`], their parsers, and
//! [`check`] for what clap cannot check on its own.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
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
    /// Load threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Pin thread i to the (i mod n)-th of these cores, e.g. `0,1`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) cores: Vec<usize>,
    /// Number of distinct info hashes.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) torrents: usize,
    /// Pareto shape of torrent popularity; 0 = uniform, 1 = about half the
    /// requests go to the most popular 1% of torrents.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) pareto: f64,
    /// Request mix as relative weights.
    #[arg(long, default_value = "connect=10,announce=80,scrape=10", value_parser = parse_mix)]
    pub(crate) mix: Mix,
    /// How long to send, e.g. `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Requests/s offered in total; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Most requests in flight per thread.
    #[arg(long, default_value_t = 256)]
    pub(crate) window: usize,
    /// Simulated peers per thread (each its own peer id and port).
    #[arg(long, default_value_t = 1000)]
    pub(crate) peers_per_thread: usize,
    /// Share of peers announcing as seeders (left = 0).
    #[arg(long, default_value_t = 0.25)]
    pub(crate) seeders: f64,
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
    /// No per-second lines.
    #[arg(long)]
    pub(crate) quiet: bool,
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}`: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// Refuse what the load threads cannot run with.
pub(crate) fn check(args: &Args) -> anyhow::Result<()> {
    if args.targets.is_empty() {
        bail!("--target: give at least one tracker address");
    }
    if args.threads == 0 || args.window == 0 || args.batch == 0 || args.sockets_per_target == 0 {
        bail!("--threads, --window, --batch and --sockets-per-target must be at least 1");
    }
    if args.window > 1 << 16 {
        bail!(
            "--window {}: at most 65536 requests in flight per thread",
            args.window
        );
    }
    if args.targets.len() * args.sockets_per_target > 64 {
        bail!("at most 64 sockets per thread (targets x sockets-per-target)");
    }
    if args.torrents == 0 || args.peers_per_thread == 0 {
        bail!("--torrents and --peers-per-thread must be at least 1");
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
    if args.duration.is_zero() || args.timeout.is_zero() {
        bail!("--duration and --timeout must be positive");
    }
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
