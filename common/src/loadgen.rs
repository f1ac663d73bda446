//! What the load generators (riptide-udp-load, riptide-http-load,
//! riptide-ws-load) share: CPU time of a thread and of another process
//! ([`CpuTime`], [`this_thread_cpu`], [`process_cpu`]), the torrents' info
//! hashes and their Pareto popularity ([`info_hash`], [`pick_torrent`]),
//! the simulated peers ([`thread_peers`]), the `--duration`-style argument
//! parser ([`parse_duration`]), the flags and checks they have in common
//! ([`cli`]), the harness that starts, watches and joins the load threads
//! ([`run`]) and what the TCP ones share about their connections
//! ([`tcp`]).

pub mod cli;
pub mod run;
pub mod tcp;

use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::PeerId;

/// User and system CPU time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// User time.
    pub user: Duration,
    /// System time.
    pub sys: Duration,
}

impl CpuTime {
    /// The time spent between `earlier` and `self`.
    #[must_use]
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    /// Adds `o`.
    pub fn add(&mut self, o: CpuTime) {
        self.user += o.user;
        self.sys += o.sys;
    }

    /// (user, sys) microseconds per `n`.
    pub fn per(self, n: u64) -> (f64, f64) {
        if n == 0 {
            return (0.0, 0.0);
        }
        let n = n as f64;
        (
            self.user.as_secs_f64() * 1e6 / n,
            self.sys.as_secs_f64() * 1e6 / n,
        )
    }
}

fn timeval(t: nix::sys::time::TimeVal) -> Duration {
    Duration::from_secs(t.tv_sec().max(0) as u64) + Duration::from_micros(t.tv_usec().max(0) as u64)
}

/// The calling thread's CPU time so far.
pub fn this_thread_cpu() -> CpuTime {
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => CpuTime {
            user: timeval(u.user_time()),
            sys: timeval(u.system_time()),
        },
        Err(_) => CpuTime::default(),
    }
}

/// Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on
/// every Linux architecture riptide builds for).
const USER_HZ: u64 = 100;

/// Process `pid`'s CPU time so far (all its threads), from /proc.
pub fn process_cpu(pid: u32) -> Option<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// utime and stime out of a /proc/PID/stat line (fields 14 and 15; the
/// command name in parentheses may hold spaces).
fn parse_stat(stat: &str) -> Option<CpuTime> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let ticks = |f: Option<&str>| -> Option<Duration> {
        let t: u64 = f?.parse().ok()?;
        Some(Duration::from_micros(t * 1_000_000 / USER_HZ))
    };
    Some(CpuTime {
        user: ticks(fields.next())?,
        sys: ticks(fields.next())?,
    })
}

/// Draw a torrent index: Pareto-skewed (shape `a`) or uniform (`a` = 0).
pub fn pick_torrent(rng: &mut SmallRng, n: usize, a: f64) -> usize {
    if a <= 0.0 || n <= 1 {
        return rng.random_range(0..n.max(1));
    }
    // Pareto(scale 1, shape a) by inversion, capped at 101 and mapped onto
    // 0..n: with a = 1, half the draws land in the first 1%.
    let u: f64 = rng.random();
    let x = (1.0 - u).powf(-1.0 / a).min(101.0);
    (((x - 1.0) / 100.0) * (n - 1) as f64) as usize
}

/// splitmix64: spreads an index over 64 uniform bits.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Info hash of torrent `i`: spread over all 160 bits, the same in every
/// run and the same as riptide-udp-load's.
pub fn info_hash(i: usize) -> [u8; 20] {
    let mut h = [0_u8; 20];
    for (k, chunk) in h.chunks_mut(8).enumerate() {
        let word = splitmix((i as u64) << 2 | k as u64).to_be_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    h
}

/// A simulated peer.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Its peer id.
    pub id: PeerId,
    /// Its port (every peer comes from the load generator's one address).
    pub port: u16,
    /// It announces as a seeder (left = 0).
    pub seeder: bool,
}

/// The `count` simulated peers of load thread `thread`: their own peer ids
/// (`prefix`, the thread, the index) and ports (10000 up, distinct across
/// threads), a `seeders` share of them seeding (the same ones in every
/// run).
pub fn thread_peers(prefix: &[u8; 8], thread: usize, count: usize, seeders: f64) -> Vec<Peer> {
    let mut rng = SmallRng::seed_from_u64(splitmix(u64::from_be_bytes(*prefix) ^ thread as u64));
    let base_port = 10_000_u32 + (thread * count) as u32;
    (0..count)
        .map(|i| {
            let mut id = [0_u8; 20];
            id[..8].copy_from_slice(prefix);
            id[8..12].copy_from_slice(&(thread as u32).to_be_bytes());
            id[12..20].copy_from_slice(&(i as u64).to_be_bytes());
            Peer {
                id: PeerId(id),
                port: (base_port + i as u32) as u16,
                seeder: rng.random_bool(seeders.clamp(0.0, 1.0)),
            }
        })
        .collect()
}

/// Thread `i`'s share of `total` (connections) spread over `parts`
/// threads: the first `total % parts` threads take one more.
pub fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// A duration such as `10s`, `500ms`, `2m`, `1h` (for clap).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pareto_is_skewed_and_in_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 10_000;
        let mut head = 0;
        for _ in 0..10_000 {
            let i = pick_torrent(&mut rng, n, 1.0);
            assert!(i < n);
            if i < n / 100 {
                head += 1;
            }
        }
        assert!((4_000..6_000).contains(&head), "{head}");
        for _ in 0..1000 {
            assert!(pick_torrent(&mut rng, n, 0.0) < n);
            assert_eq!(pick_torrent(&mut rng, 1, 1.0), 0);
        }
    }

    #[test]
    fn info_hashes_spread_over_shards() {
        let mut per_shard = [0_u32; 4];
        for i in 0..4000 {
            per_shard[crate::shard_of(&crate::InfoHash(info_hash(i)), 4)] += 1;
        }
        assert!(
            per_shard.iter().all(|&n| (800..1200).contains(&n)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn shares_add_up() {
        assert_eq!(
            (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!((0..4).map(|i| share(8, 4, i)).sum::<usize>(), 8);
    }

    #[test]
    fn peers_have_distinct_ports_across_threads() {
        let mut ports: Vec<u16> = (0..3)
            .flat_map(|t| thread_peers(b"-RT0001-", t, 100, 0.5))
            .map(|p| p.port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 300);
    }

    #[test]
    fn stat_line() {
        let line = "42 (riptide http) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 1 1";
        assert_eq!(
            parse_stat(line),
            Some(CpuTime {
                user: Duration::from_millis(2500),
                sys: Duration::from_millis(750)
            })
        );
        assert!(parse_stat("garbage").is_none());
        assert!(process_cpu(std::process::id()).is_some());
        let t = this_thread_cpu();
        assert!(t.user + t.sys < Duration::from_secs(3600));
    }
}
