//! Mesh micro-benchmark on the real runtime: two pinned workers, worker 0
//! sends to worker 1 through the SPSC ring with `Ctx::mesh_send`, which
//! wakes worker 1 (MSG_RING, or eventfd without it) when the ring was empty.
//! Worker 1 answers with an ack through its own ring, which wakes worker 0.
//! That is the cost kernel steering removes from the UDP tracker: every
//! forwarded request is a push, a wake-up and a loop turn on the owner.
//!
//! Modes (each gets an equal share of `--seconds`, the first 10% is warm-up):
//! - `unbatched`: one message in flight; worker 1 acks it, the ack makes
//!   worker 0 send the next one. Every message pays a wake-up each way and a
//!   loop turn on both workers.
//! - `batched`: 64 messages per turn; worker 1 acks only the last of each
//!   batch, so one wake-up each way is shared by 64 messages.
//! - `latency`: the same ping-pong as `unbatched`, timing every round trip
//!   (median and p99; the extra clock read per message is the only difference).
//!
//! ```text
//! cargo run --release -p uring-rt --example mesh_bench -- --seconds 6
//! cargo run --release -p uring-rt --example mesh_bench -- --mode latency --seconds 5 --cores 2,3
//! ```
//! Prints a table and one `RESULT mesh_bench mode=...` line per mode. Stops by
//! itself; a stall (no ack for 2 s: a lost wake-up) exits with status 1.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use uring_rt::{Ctx, Handler, RuntimeConfig};

const BATCH: u64 = 64;
const WATCHDOG_TOKEN: u64 = 1;
const STALL_LIMIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Unbatched,
    Batched,
    Latency,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Unbatched => "unbatched",
            Mode::Batched => "batched",
            Mode::Latency => "latency",
        }
    }
    fn batch(self) -> u64 {
        if self == Mode::Batched {
            BATCH
        } else {
            1
        }
    }
}

#[derive(Clone, Copy)]
enum Msg {
    /// Worker 0 -> 1. `ack`: answer this one (the last of its batch).
    Data { seq: u64, ack: bool },
    /// Worker 1 -> 0.
    Ack { seq: u64 },
    /// Worker 0 -> 1: the benchmark is over.
    Stop,
}

/// What one mode measured.
struct Outcome {
    mode: Mode,
    messages: u64,
    elapsed: Duration,
    wakeups: u64,
    turns: u64,
    /// Round-trip times in ns (latency mode only), sorted.
    rtts_ns: Vec<u64>,
}

/// One measuring slice of worker 0.
struct Phase {
    mode: Mode,
    started: Instant,
    warm_until: Instant,
    ends: Instant,
    /// Set when warm-up is over: (time, wakeups, turns) at that point.
    measuring: Option<(Instant, u64, u64)>,
    messages: u64,
    rtts_ns: Vec<u64>,
}

/// Worker 0 drives the modes one after the other; worker 1 only answers.
struct Bench {
    modes: Vec<Mode>,
    slice: Duration,
    phase: Option<Phase>,
    next_mode: usize,
    seq: u64,
    sent_at: Instant,
    last_progress: Instant,
    outcomes: Vec<Outcome>,
    mesh_full: u64,
    stalled: bool,
}

impl Bench {
    fn new(modes: Vec<Mode>, slice: Duration) -> Bench {
        let now = Instant::now();
        Bench {
            modes,
            slice,
            phase: None,
            next_mode: 0,
            seq: 0,
            sent_at: now,
            last_progress: now,
            outcomes: Vec::new(),
            mesh_full: 0,
            stalled: false,
        }
    }

    /// Start the next mode, or stop both workers when none is left.
    fn next_phase(&mut self, ctx: &mut Ctx<Msg>) {
        let Some(&mode) = self.modes.get(self.next_mode) else {
            Self::finish(ctx);
            return;
        };
        self.next_mode += 1;
        let now = Instant::now();
        let rtt_capacity = if mode == Mode::Latency {
            // Enough for ~1M round trips per second of the slice.
            (self.slice.as_secs_f64() * 1e6) as usize
        } else {
            0
        };
        self.phase = Some(Phase {
            mode,
            started: now,
            warm_until: now + self.slice / 10,
            ends: now + self.slice,
            measuring: None,
            messages: 0,
            rtts_ns: Vec::with_capacity(rtt_capacity),
        });
        self.send_batch(ctx, mode);
    }

    fn send_batch(&mut self, ctx: &mut Ctx<Msg>, mode: Mode) {
        let n = mode.batch();
        for i in 0..n {
            self.seq += 1;
            let msg = Msg::Data {
                seq: self.seq,
                ack: i == n - 1,
            };
            if ctx.mesh_send(1, msg).is_err() {
                // Cannot happen with one batch in flight and capacity >= 64;
                // counted and reported rather than retried.
                self.mesh_full += 1;
            }
        }
        self.sent_at = Instant::now();
    }

    fn on_ack(&mut self, ctx: &mut Ctx<Msg>, seq: u64) {
        let now = Instant::now();
        self.last_progress = now;
        debug_assert_eq!(seq, self.seq, "acks come back in order");
        let Some(p) = self.phase.as_mut() else {
            return;
        };
        match p.measuring {
            None if now >= p.warm_until => {
                p.measuring = Some((now, ctx.stats().mesh_wakeups, ctx.stats().submit_batches));
            }
            None => {}
            Some(_) => {
                p.messages += p.mode.batch();
                if p.mode == Mode::Latency {
                    p.rtts_ns.push((now - self.sent_at).as_nanos() as u64);
                }
            }
        }
        if now >= p.ends {
            let (t0, w0, b0) = p.measuring.unwrap_or((p.started, 0, 0));
            let mut rtts_ns = std::mem::take(&mut p.rtts_ns);
            rtts_ns.sort_unstable();
            self.outcomes.push(Outcome {
                mode: p.mode,
                messages: p.messages,
                elapsed: now - t0,
                wakeups: ctx.stats().mesh_wakeups - w0,
                turns: ctx.stats().submit_batches - b0,
                rtts_ns,
            });
            self.phase = None;
            self.next_phase(ctx);
        } else {
            let mode = p.mode;
            self.send_batch(ctx, mode);
        }
    }

    fn finish(ctx: &mut Ctx<Msg>) {
        let _ = ctx.mesh_send(1, Msg::Stop);
        ctx.stop();
    }
}

impl Handler for Bench {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<Msg>) {
        if ctx.worker() == 0 {
            ctx.add_timer(Duration::from_millis(100), WATCHDOG_TOKEN);
            self.last_progress = Instant::now();
            self.next_phase(ctx);
        }
    }
    fn on_mesh(&mut self, ctx: &mut Ctx<Msg>, _from: usize, msg: Msg) {
        match msg {
            Msg::Data { seq, ack } => {
                if ack && ctx.mesh_send(0, Msg::Ack { seq }).is_err() {
                    self.mesh_full += 1;
                }
            }
            Msg::Ack { seq } => self.on_ack(ctx, seq),
            Msg::Stop => ctx.stop(),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Msg>, token: u64) {
        if token == WATCHDOG_TOKEN && ctx.now().duration_since(self.last_progress) > STALL_LIMIT {
            self.stalled = true;
            Self::finish(ctx);
        }
    }
}

fn percentile_us(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_ns.len() - 1) as f64 * q).round() as usize;
    sorted_ns[i] as f64 / 1e3
}

struct Args {
    seconds: f64,
    modes: Vec<Mode>,
    cores: Vec<usize>,
}

fn usage(err: &str) -> ExitCode {
    eprintln!("mesh_bench: {err}");
    eprintln!(
        "usage: mesh_bench [--seconds N (total, default 3)] \
         [--mode all|batched|unbatched|latency] [--cores A,B (default 0,1)]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 3.0,
        modes: vec![Mode::Unbatched, Mode::Batched, Mode::Latency],
        cores: vec![0, 1],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => {
                let v = value()?;
                args.seconds = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--seconds: not a positive number: {v}"))?;
            }
            "--mode" => {
                args.modes = match value()?.as_str() {
                    "all" => vec![Mode::Unbatched, Mode::Batched, Mode::Latency],
                    "batched" => vec![Mode::Batched],
                    "unbatched" => vec![Mode::Unbatched],
                    "latency" => vec![Mode::Latency],
                    other => return Err(format!("--mode: unknown mode {other}")),
                };
            }
            "--cores" => {
                let v = value()?;
                let cores: Result<Vec<usize>, _> = v.split(',').map(str::parse).collect();
                args.cores = cores
                    .ok()
                    .filter(|c| c.len() == 2)
                    .ok_or_else(|| format!("--cores: want two core numbers like 0,1, got {v}"))?;
            }
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    let probe = uring_rt::Probe::detect();
    eprintln!("mesh_bench: {probe}");
    let slice = Duration::from_secs_f64(args.seconds / args.modes.len() as f64);
    let cfg = RuntimeConfig {
        workers: 2,
        cores: Some(args.cores.clone()),
        ring_entries: 256,
        // The runtime always maps the UDP buffer ring and send slots; keep
        // them small, this benchmark uses neither.
        recv_buffers: 64,
        send_slots: 16,
        send_queue: 16,
        mesh_capacity: 1024,
        ..RuntimeConfig::default()
    };
    let handlers = vec![
        Bench::new(args.modes.clone(), slice),
        Bench::new(Vec::new(), slice),
    ];
    let hs = match uring_rt::run(&cfg, handlers) {
        Ok(hs) => hs,
        Err(e) => {
            eprintln!("mesh_bench: runtime failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wake = if probe.has_msg_ring() {
        "msg_ring"
    } else {
        "eventfd"
    };
    println!(
        "{:<10} {:>14} {:>11} {:>10} {:>10} {:>9} {:>9}",
        "mode", "messages/s", "us/message", "wakes/msg", "turns/msg", "p50 RTT", "p99 RTT"
    );
    for o in &hs[0].outcomes {
        let secs = o.elapsed.as_secs_f64();
        let rate = o.messages as f64 / secs;
        let us_per = secs * 1e6 / o.messages.max(1) as f64;
        let per_msg = |n: u64| n as f64 / o.messages.max(1) as f64;
        let (p50, p99) = (
            percentile_us(&o.rtts_ns, 0.5),
            percentile_us(&o.rtts_ns, 0.99),
        );
        let rtt = |v: f64| {
            if v.is_nan() {
                "-".to_string()
            } else {
                format!("{v:.2}us")
            }
        };
        println!(
            "{:<10} {:>14.0} {:>11.3} {:>10.3} {:>10.3} {:>9} {:>9}",
            o.mode.name(),
            rate,
            us_per,
            per_msg(o.wakeups),
            per_msg(o.turns),
            rtt(p50),
            rtt(p99)
        );
    }
    for o in &hs[0].outcomes {
        let secs = o.elapsed.as_secs_f64();
        let mut line = format!(
            "RESULT mesh_bench mode={} wake={wake} batch={} messages={} seconds={secs:.3} \
             msgs_per_s={:.0} us_per_msg={:.4}",
            o.mode.name(),
            o.mode.batch(),
            o.messages,
            o.messages as f64 / secs,
            secs * 1e6 / o.messages.max(1) as f64
        );
        if o.mode == Mode::Latency {
            let _ = write!(
                line,
                " rtt_p50_us={:.3} rtt_p99_us={:.3} round_trips={}",
                percentile_us(&o.rtts_ns, 0.5),
                percentile_us(&o.rtts_ns, 0.99),
                o.rtts_ns.len()
            );
        }
        println!("{line}");
    }
    let mesh_full: u64 = hs.iter().map(|h| h.mesh_full).sum();
    if mesh_full > 0 {
        eprintln!("mesh_bench: {mesh_full} sends refused (ring full)");
    }
    if hs[0].stalled {
        eprintln!("mesh_bench: STALL: no ack for {STALL_LIMIT:?} (lost wake-up?)");
        return ExitCode::FAILURE;
    }
    if hs[0].outcomes.len() != args.modes.len() {
        eprintln!("mesh_bench: stopped early (signal?)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
