//! CPU accounting: this thread's user and system time (getrusage
//! RUSAGE_THREAD) and another process's (the tracker's, from
//! /proc/PID/stat).

use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};

/// User and system CPU time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTime {
    pub(crate) user: Duration,
    pub(crate) sys: Duration,
}

impl CpuTime {
    pub(crate) fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    pub(crate) fn add(&mut self, o: CpuTime) {
        self.user += o.user;
        self.sys += o.sys;
    }

    /// (user, sys) microseconds per `n`.
    pub(crate) fn per(self, n: u64) -> (f64, f64) {
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
pub(crate) fn this_thread() -> CpuTime {
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
pub(crate) fn process(pid: u32) -> Option<CpuTime> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(process(std::process::id()).is_some());
        let t = this_thread();
        assert!(t.user + t.sys < Duration::from_secs(3600));
    }
}
