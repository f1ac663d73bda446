//! What the load generators (riptide-http-load, riptide-ws-load) share:
//! CPU time of a thread and of another process ([`CpuTime`],
//! [`this_thread_cpu`], [`process_cpu`]), the torrents' info hashes and
//! their Pareto popularity ([`info_hash`], [`pick_torrent`]), and the
//! `--duration`-style argument parser ([`parse_duration`]).

use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use rand::rngs::SmallRng;
use rand::Rng;

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
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10x").is_err());
    }

    #[test]
    fn pareto_is_skewed_and_in_range() {
        use rand::SeedableRng;
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
        }
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
