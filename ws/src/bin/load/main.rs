//! riptide-ws-load: a load generator for WebTorrent trackers (WebSocket
//! signalling over ws:// and wss://).
//!
//! `--connections` connections spread over `--threads` threads, each
//! thread one mio event loop over non-blocking sockets. Each connection is
//! one peer with its own peer id, announcing a few torrents of its own
//! (drawn once from `--torrents` with a Pareto skew, `--pareto`). It
//! upgrades, then keeps `--in-flight` announces outstanding (a saturation
//! test): each carries `--offers` offers (SDPs of `--sdp-bytes`, fresh
//! offer ids, `numwant` = offers); every offer that arrives is answered
//! with probability `--answer-percent`. Counted: announce replies, offers
//! and answers received (the "messages"), and every kind of error.
//!
//! The measured window starts once every connection is upgraded. Output:
//! one line per second, a summary line with messages/s (and each kind),
//! errors, this program's own CPU time per message (getrusage of the load
//! threads over the window; with `--server-pid`, the tracker's too, from
//! /proc), and a last line `RESULT key=value ...` for scripts.
//!
//! `--idle`: open and upgrade the connections, announce once on each,
//! print `IDLE READY connections=N announced=M` and hold them for
//! `--duration` (for RSS per idle connection).
//!
//! Modules: [`args`] (command line), [`thread`] (the load thread and its
//! connections), [`json`] (messages out, scanning messages in), [`tls`]
//! (the rustls client), [`tally`] (counters). CPU time, info hashes and the
//! Pareto pick are shared with riptide-http-load in
//! [`riptide_common::loadgen`].

mod args;
mod json;
mod tally;
mod thread;
mod tls;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use riptide_common::loadgen::{info_hash, process_cpu, CpuTime};

use crate::args::{check, Args};
use crate::tally::{sum_live, Live, Tally};
use crate::thread::{Plan, ThreadResult, Worker, TORRENTS_PER_PEER};

/// Raise the soft limit on open files to the hard one.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    raise_nofile();
    let tls = tls::client_config(&args)?;
    let threads = args.threads;
    let duration = args.duration;
    let quiet = args.quiet;
    let idle = args.idle;
    let cores = args.cores.clone();
    let server_pid = args.server_pid;
    let connections = args.connections;
    let host = args.host.clone().unwrap_or_else(|| args.target.to_string());
    eprintln!(
        "riptide-ws-load: {} connection(s) on {} thread(s) -> {}://{}, {} torrents (pareto {}, {} per peer), {} offers of {} B per announce, {}% answered, {} in flight{}",
        connections,
        threads,
        if args.tls { "wss" } else { "ws" },
        args.target,
        args.torrents,
        args.pareto,
        TORRENTS_PER_PEER,
        args.offers,
        args.sdp_bytes,
        args.answer_percent,
        args.in_flight,
        if idle { ", idle" } else { "" },
    );
    let info_hashes: Vec<[u8; 20]> = (0..args.torrents).map(info_hash).collect();
    let info_hash_lits = info_hashes
        .iter()
        .map(|h| {
            let mut v = Vec::with_capacity(64);
            json::binary_literal(&mut v, h);
            v
        })
        .collect();
    let plan = Arc::new(Plan {
        info_hashes,
        info_hash_lits,
        host,
        tls,
        args,
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
    });
    let ready = Arc::new(Barrier::new(threads + 1));
    let start_barrier = Arc::new(Barrier::new(threads + 1));
    let lives: Vec<Arc<Live>> = (0..threads).map(|_| Arc::new(Live::default())).collect();
    let mut handles = Vec::with_capacity(threads);
    let connect_start = Instant::now();
    for i in 0..threads {
        let plan = Arc::clone(&plan);
        let ready = Arc::clone(&ready);
        let start = Arc::clone(&start_barrier);
        let live = Arc::clone(&lives[i]);
        let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let conns = connections / threads + usize::from(i < connections % threads);
        let handle = std::thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || -> anyhow::Result<ThreadResult> {
                if let Some(core) = core {
                    if let Err(e) = riptide_common::pinning::pin_current_thread(core) {
                        plan.failed.store(true, Ordering::Relaxed);
                        ready.wait();
                        start.wait();
                        bail!("pin thread {i} to core {core}: {e}");
                    }
                }
                Worker::new(&plan, i, conns).run(&live, &ready, &start)
            })
            .context("spawn load thread")?;
        handles.push(handle);
    }

    ready.wait();
    let upgraded_after = connect_start.elapsed();
    if !quiet && !plan.failed.load(Ordering::Relaxed) {
        println!(
            "{connections} connections upgraded in {:.2} s",
            upgraded_after.as_secs_f64()
        );
    }
    let server_start = server_pid.and_then(process_cpu);
    start_barrier.wait();
    let start = Instant::now();
    let mut server_cpu = None;
    if !plan.failed.load(Ordering::Relaxed) {
        let mut prev = [0; 5];
        let mut second = 1;
        let mut idle_reported = false;
        loop {
            let end = start + duration;
            let now = Instant::now();
            if now >= end || handles.iter().all(std::thread::JoinHandle::is_finished) {
                break;
            }
            if idle && !idle_reported {
                let cur = sum_live(&lives);
                // Every peer's announce answered (or 15 s gone).
                if cur[0] >= connections as u64 || now >= start + Duration::from_secs(15) {
                    println!(
                        "IDLE READY connections={} announced={} errors={}",
                        cur[4], cur[0], cur[3]
                    );
                    idle_reported = true;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let tick = start + Duration::from_secs(second);
            std::thread::sleep(tick.min(end) - now);
            if Instant::now() < tick {
                continue;
            }
            let cur = sum_live(&lives);
            if !quiet && !idle {
                let d = |k: usize| cur[k] - prev[k];
                println!(
                    "[{second:>4}s] messages/s: {} (announce replies {}, offers {}, answers {}) errors/s: {}",
                    d(0) + d(1) + d(2),
                    d(0),
                    d(1),
                    d(2),
                    d(3),
                );
            }
            prev = cur;
            second += 1;
        }
        server_cpu = server_start.and_then(|s| Some(process_cpu(server_pid?)?.since(s)));
    }
    plan.stop.store(true, Ordering::Relaxed);

    let mut window = Tally::default();
    let mut total = Tally::default();
    let mut load_cpu = CpuTime::default();
    let mut errors = Vec::new();
    let mut first_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok(r)) => {
                window.add(&r.window);
                total.add(&r.total);
                load_cpu.add(r.cpu);
                first_error = first_error.or(r.first_error);
            }
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("a load thread panicked".into()),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }

    let secs = duration.as_secs_f64();
    let rate = |n: u64| (n as f64 / secs).round() as u64;
    let w = &window;
    let messages = w.messages();
    let (load_user, load_sys) = load_cpu.per(messages);
    let mut line = format!(
        "messages/s: {} (announce replies {}, offers {}, answers {}) sent/s: announces {}, answers {}; errors: {} (failure {}, malformed {}, io {}, closed {}, tls {}, timeout {}); unmatched replies {}; load CPU {load_user:.2} + {load_sys:.2} us/message (user + sys)",
        rate(messages),
        rate(w.replies),
        rate(w.offers),
        rate(w.answers),
        rate(w.announces_sent),
        rate(w.answers_sent),
        w.errors(),
        w.failures,
        w.malformed,
        w.io_errors,
        w.closed,
        w.tls_errors,
        w.timeouts,
        w.unmatched_replies,
    );
    if let Some(s) = server_cpu {
        let (u, sy) = s.per(messages);
        let _ = write!(line, "; tracker CPU {u:.2} + {sy:.2} us/message");
    }
    println!("{line}");
    if let Some(e) = first_error {
        println!("first error: {e}");
    }
    let mut result = format!(
        "RESULT messages_per_s={} replies_per_s={} offers_per_s={} answers_per_s={} announces_sent_per_s={} answers_sent_per_s={} errors={} failures={} closed={} timeouts={} unmatched_replies={} load_user_us={load_user:.3} load_sys_us={load_sys:.3}",
        rate(messages),
        rate(w.replies),
        rate(w.offers),
        rate(w.answers),
        rate(w.announces_sent),
        rate(w.answers_sent),
        w.errors(),
        w.failures,
        w.closed,
        w.timeouts,
        w.unmatched_replies,
    );
    if let Some(s) = server_cpu {
        let (u, sy) = s.per(messages);
        let _ = write!(result, " tracker_user_us={u:.3} tracker_sys_us={sy:.3}");
    }
    let _ = write!(
        result,
        " connections={connections} upgraded={} reconnects={} connect_s={:.2} threads={threads} duration_s={secs}",
        total.upgraded,
        total.connections.saturating_sub(connections as u64),
        upgraded_after.as_secs_f64(),
    );
    println!("{result}");
    Ok(())
}
