//! The harness around the load threads ([`Threads`]): they start together
//! at a [`Gate`], publish counters to their [`Live`] for the main thread's
//! per-second lines, and hand back a [`Report`] when joined.
//! [`TrackerCpu`] measures the tracker's CPU time over the same window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use super::cli::RunArgs;
use super::{process_cpu, CpuTime};
use crate::histogram::Histogram;

/// How the main thread and the load threads start and stop a run: they
/// meet at a barrier at each of the run's start stages (e.g. every
/// connection upgraded, then go); a thread that cannot start marks the run
/// failed and still passes every stage, so no one waits forever. The main
/// thread raises the stop flag when the time is up.
#[derive(Debug)]
pub struct Gate {
    barrier: Barrier,
    stages: usize,
    failed: AtomicBool,
    stop: AtomicBool,
}

impl Gate {
    /// A gate for `threads` load threads and the main thread, with
    /// `stages` meetings before the load starts.
    pub fn new(threads: usize, stages: usize) -> Self {
        Self {
            barrier: Barrier::new(threads + 1),
            stages,
            failed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    /// The main thread: waits at the next stage for every load thread.
    pub fn wait(&self) {
        self.barrier.wait();
    }

    /// A load thread's start: marks the run failed if `set_up` is an
    /// error, passes every stage, and returns what was set up, or the
    /// thread's own error, or an error when another thread failed.
    pub fn start<T>(&self, set_up: anyhow::Result<T>) -> anyhow::Result<T> {
        if set_up.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        for _ in 0..self.stages {
            self.barrier.wait();
        }
        let t = set_up?;
        if self.failed() {
            bail!("another thread failed to start");
        }
        Ok(t)
    }

    /// Some thread could not start.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// The main thread: the time is up.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The load threads: whether to stop now.
    #[inline]
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The load threads of a run: the gate they start at, the counters they
/// publish, their handles.
pub struct Threads<T, const N: usize> {
    /// Where the threads start and stop.
    pub gate: Arc<Gate>,
    /// What each thread publishes for the per-second lines.
    pub lives: Vec<Arc<Live<N>>>,
    handles: Vec<JoinHandle<anyhow::Result<T>>>,
}

impl<T: Send + 'static, const N: usize> Threads<T, N> {
    /// Spawns `--threads` load threads named `load-i` that start at a gate
    /// of `stages` stages (see [`Gate`]); thread i is pinned to its core of
    /// `--cores`, if any, then runs `body(plan, i, its live counters,
    /// gate)`. A thread that cannot be pinned fails the run at the gate.
    pub fn spawn<P, F>(run: &RunArgs, stages: usize, plan: &Arc<P>, body: F) -> anyhow::Result<Self>
    where
        P: Send + Sync + 'static,
        F: Fn(&P, usize, &Live<N>, &Gate) -> anyhow::Result<T> + Send + Sync + 'static,
    {
        let gate = Arc::new(Gate::new(run.threads, stages));
        let lives: Vec<Arc<Live<N>>> = (0..run.threads).map(|_| Arc::default()).collect();
        let body = Arc::new(body);
        let handles = (0..run.threads)
            .map(|i| {
                let (body, plan) = (Arc::clone(&body), Arc::clone(plan));
                let (gate, live) = (Arc::clone(&gate), Arc::clone(&lives[i]));
                let core = run.core(i);
                std::thread::Builder::new()
                    .name(format!("load-{i}"))
                    .spawn(move || {
                        if let Some(core) = core {
                            if let Err(e) = crate::pinning::pin_current_thread(core) {
                                return gate
                                    .start(Err(anyhow!("pin thread {i} to core {core}: {e}")));
                            }
                        }
                        body(&plan, i, &live, &gate)
                    })
                    .context("spawn load thread")
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            gate,
            lives,
            handles,
        })
    }

    /// Calls `each(second, per_second)` at every whole second after `start`
    /// until `duration` is over or every thread has finished, with what the
    /// threads published in that second.
    pub fn each_second(
        &self,
        start: Instant,
        duration: Duration,
        mut each: impl FnMut(u64, [u64; N]),
    ) {
        let end = start + duration;
        let mut prev = [0; N];
        let mut second = 1;
        loop {
            let tick = start + Duration::from_secs(second);
            let now = Instant::now();
            if now >= end || self.finished() {
                return;
            }
            std::thread::sleep(tick.min(end) - now);
            if Instant::now() < tick {
                continue; // the run ended inside this second
            }
            let cur = Live::sum(&self.lives);
            each(second, std::array::from_fn(|k| cur[k] - prev[k]));
            prev = cur;
            second += 1;
        }
    }

    /// Every thread has finished.
    pub fn finished(&self) -> bool {
        self.handles.iter().all(JoinHandle::is_finished)
    }

    /// Stops the threads and joins them: their results, or every thread's
    /// error in one.
    pub fn join(self) -> anyhow::Result<Vec<T>> {
        self.gate.stop();
        let mut results = Vec::with_capacity(self.handles.len());
        let mut errors = Vec::new();
        for h in self.handles {
            match h.join() {
                Ok(Ok(r)) => results.push(r),
                Ok(Err(e)) => errors.push(format!("{e:#}")),
                Err(_) => errors.push("a load thread panicked".into()),
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(results)
    }
}

/// What a load thread counts, added up over the threads.
pub trait Tally: Default {
    /// Adds `other`'s counts.
    fn add(&mut self, other: &Self);
}

/// What a load thread hands back when joined.
#[derive(Default)]
pub struct Report<T> {
    /// Counted inside the measured window.
    pub window: T,
    /// Counted over the whole run (with the connect phase and the tail).
    pub total: T,
    /// Latency of the answers (riptide-udp-load, riptide-http-load).
    pub latency: Histogram,
    /// The thread's CPU time over the window (the TCP load generators).
    pub cpu: CpuTime,
    /// The thread's first error, for the summary.
    pub first_error: Option<String>,
}

impl<T: Tally> Report<T> {
    /// Every thread's report added up; the first error is the first
    /// thread's that had one.
    pub fn sum(reports: Vec<Report<T>>) -> Report<T> {
        let mut sum = Report::<T>::default();
        for r in reports {
            sum.window.add(&r.window);
            sum.total.add(&r.total);
            sum.latency.add(&r.latency);
            sum.cpu.add(r.cpu);
            sum.first_error = sum.first_error.or(r.first_error);
        }
        sum
    }
}

/// `N` counters one load thread publishes for the per-second lines, on
/// cache lines of their own.
#[repr(align(128))]
#[derive(Debug)]
pub struct Live<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Live<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Live<N> {
    /// The load thread: publishes its counters.
    pub fn publish(&self, values: [u64; N]) {
        for (a, v) in self.0.iter().zip(values) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// The main thread: every thread's counters, summed.
    pub fn sum(lives: &[Arc<Live<N>>]) -> [u64; N] {
        let mut s = [0; N];
        for l in lives {
            for (s, a) in s.iter_mut().zip(&l.0) {
                *s += a.load(Ordering::Relaxed);
            }
        }
        s
    }
}

impl<T> Report<T> {
    /// Prints the summary `line`, this report's first error (if any) and
    /// the `RESULT` line for scripts.
    pub fn print(&self, line: &str, result: &str) {
        println!("{line}");
        if let Some(e) = &self.first_error {
            println!("first error: {e}");
        }
        println!("{result}");
    }
}

/// The tracker's CPU time over the measured window (`--server-pid`).
#[derive(Debug, Clone, Copy)]
pub struct TrackerCpu {
    pid: u32,
    start: CpuTime,
}

impl TrackerCpu {
    /// Starts measuring process `pid`, if given and readable.
    pub fn start(pid: Option<u32>) -> Option<Self> {
        let pid = pid?;
        Some(Self {
            pid,
            start: process_cpu(pid)?,
        })
    }

    /// The CPU time since [`TrackerCpu::start`].
    pub fn elapsed(&self) -> Option<CpuTime> {
        Some(process_cpu(self.pid)?.since(self.start))
    }
}

/// Appends the tracker's CPU time per `unit` (`n` of them) to the summary
/// `line` and the `RESULT` line.
pub fn write_tracker_cpu(line: &mut String, result: &mut String, cpu: CpuTime, n: u64, unit: &str) {
    use std::fmt::Write as _;
    let (u, sy) = cpu.per(n);
    let _ = write!(line, "; tracker CPU {u:.2} + {sy:.2} us/{unit}");
    let _ = write!(result, " tracker_user_us={u:.3} tracker_sys_us={sy:.3}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(threads: usize) -> RunArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        Cli::parse_from(["x", "--threads", &threads.to_string()]).run
    }

    #[test]
    fn a_thread_that_cannot_start_fails_every_thread_and_blocks_none() {
        let set_up = |i| if i == 0 { Ok(i) } else { Err(anyhow!("no")) };
        let start = move |(): &(), i, _: &Live<1>, gate: &Gate| gate.start(set_up(i));
        let threads = Threads::spawn(&run_args(2), 2, &Arc::new(()), start).unwrap();
        threads.gate.wait();
        threads.gate.wait();
        assert!(threads.gate.failed());
        let err = threads.join().unwrap_err().to_string();
        assert!(
            err.contains("another thread failed") && err.contains("no"),
            "{err}"
        );
    }

    #[test]
    fn threads_start_together_and_stop_when_told() {
        let publish_and_wait = |n: &u64, i, live: &Live<1>, gate: &Gate| {
            gate.start(Ok(()))?;
            live.publish([*n]);
            while !gate.stopped() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(i)
        };
        let threads = Threads::spawn(&run_args(3), 1, &Arc::new(5), publish_and_wait).unwrap();
        threads.gate.wait();
        let mut seconds = Vec::new();
        threads.each_second(Instant::now(), Duration::from_millis(1100), |s, d| {
            seconds.push((s, d));
        });
        assert_eq!(seconds, [(1, [15])]);
        assert!(!threads.finished());
        assert_eq!(threads.join().unwrap(), [0, 1, 2]);
    }

    #[test]
    fn live_counters_sum_over_threads() {
        let lives: Vec<Arc<Live<2>>> = (0..3).map(|_| Arc::default()).collect();
        lives[0].publish([1, 2]);
        lives[2].publish([10, 20]);
        assert_eq!(Live::sum(&lives), [11, 22]);
    }

    #[derive(Default)]
    struct Count(u64);

    impl Tally for Count {
        fn add(&mut self, other: &Self) {
            self.0 += other.0;
        }
    }

    #[test]
    fn reports_add_up() {
        let report = |n, e: Option<&str>| Report {
            window: Count(n),
            total: Count(2 * n),
            first_error: e.map(str::to_owned),
            ..Report::default()
        };
        let sum = Report::sum(vec![
            report(1, None),
            report(2, Some("a")),
            report(3, Some("b")),
        ]);
        assert_eq!((sum.window.0, sum.total.0), (6, 12));
        assert_eq!(sum.first_error.as_deref(), Some("a"));
    }

    #[test]
    fn tracker_cpu_of_this_process() {
        let t = TrackerCpu::start(Some(std::process::id())).unwrap();
        assert!(t.elapsed().is_some());
        assert!(TrackerCpu::start(None).is_none());
        let (mut line, mut result) = (String::new(), String::new());
        write_tracker_cpu(&mut line, &mut result, CpuTime::default(), 0, "message");
        assert_eq!(line, "; tracker CPU 0.00 + 0.00 us/message");
        assert_eq!(result, " tracker_user_us=0.000 tracker_sys_us=0.000");
    }
}
