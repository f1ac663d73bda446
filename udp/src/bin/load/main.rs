//! riptide-udp-load: a load generator for UDP BitTorrent trackers (BEP 15).
//!
//! Each thread owns its sockets (one per target, or `--sockets-per-target`),
//! gets a connection id with a connect request (refreshed every minute),
//! then sends requests in `sendmmsg` batches and reads answers in
//! `recvmmsg` batches (uring-rt's [`SendBatch`](uring_rt::socket::SendBatch) /
//! [`RecvBatch`](uring_rt::socket::RecvBatch)), waiting
//! in mio when there is nothing to do. Requests come from the `--mix`;
//! announces and scrapes pick their torrent from `--torrents` info hashes
//! with a Pareto popularity skew (`--pareto`, 0 = uniform) and their peer
//! from `--peers-per-thread` simulated peers.
//!
//! Open loop (`--rate 0`): as fast as the `--window` of requests in flight
//! per thread allows. Paced (`--rate N`): N requests/s offered in total,
//! spread over the threads; what the window cannot take is counted as
//! skipped. A request without an answer after `--timeout` is lost.
//!
//! Every buffer (in-flight table, send and receive batches, info hashes,
//! peers) is allocated before the first request: sending and receiving
//! allocate nothing. The bytes are written and parsed by
//! `riptide_udp::protocol`, the same codec the server uses.
//!
//! Output: one line per second, a summary line, and a last line
//! `RESULT key=value ...` for scripts.
//!
//! Modules: [`args`] (command line), [`thread`] (the load thread and its
//! sockets), [`inflight`] (transaction ids of requests in flight),
//! [`peers`] (torrents and simulated peers), [`tally`] (counters),
//! [`histogram`] (latency). This file spawns the threads, prints the
//! per-second lines and the summary.

mod args;
mod inflight;
mod peers;
mod tally;
mod thread;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

use crate::args::{check, Args};
use crate::peers::info_hash;
use crate::tally::{sum_live, Live, Tally, ANNOUNCE, CONNECT, ERROR, KIND_NAMES, SCRAPE};
use crate::thread::{Plan, ThreadResult, Worker};
use riptide_common::histogram::Histogram;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    if args.list_info_hashes {
        for i in 0..args.torrents {
            println!("{}", peers::info_hash(i));
        }
        return Ok(());
    }
    let threads = args.threads;
    let duration = args.duration;
    let quiet = args.quiet;
    let fill_peers = args.fill_peers;
    let cores = args.cores.clone();
    eprintln!(
        "riptide-udp-load: {} thread(s) -> {}, {} torrents (pareto {}), mix {:?}, {}",
        threads,
        args.targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        args.torrents,
        args.pareto,
        args.mix,
        if args.rate == 0 {
            format!("open loop, window {}/thread", args.window)
        } else {
            format!("{} requests/s offered", args.rate)
        }
    );
    let plan = Arc::new(Plan {
        info_hashes: (0..args.torrents).map(info_hash).collect(),
        args,
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
    });
    let barrier = Arc::new(Barrier::new(threads + 1));
    let lives: Vec<Arc<Live>> = (0..threads).map(|_| Arc::new(Live::default())).collect();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let plan = Arc::clone(&plan);
        let barrier = Arc::clone(&barrier);
        let live = Arc::clone(&lives[i]);
        let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let handle = std::thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || -> anyhow::Result<ThreadResult> {
                if let Some(core) = core {
                    if let Err(e) = riptide_common::pinning::pin_current_thread(core) {
                        plan.failed.store(true, Ordering::Relaxed);
                        barrier.wait();
                        bail!("pin thread {i} to core {core}: {e}");
                    }
                }
                let worker = match Worker::new(&plan, i) {
                    Ok(w) => w,
                    Err(e) => {
                        plan.failed.store(true, Ordering::Relaxed);
                        barrier.wait();
                        return Err(e);
                    }
                };
                worker.run(&live, &barrier)
            })
            .context("spawn load thread")?;
        handles.push(handle);
    }

    barrier.wait();
    let start = Instant::now();
    if !plan.failed.load(Ordering::Relaxed) {
        let mut prev = (0, [0; 4], 0);
        let mut second = 1;
        loop {
            let tick = start + Duration::from_secs(second);
            let end = start + duration;
            let now = Instant::now();
            if now >= end || handles.iter().all(std::thread::JoinHandle::is_finished) {
                break;
            }
            std::thread::sleep(tick.min(end) - now);
            if Instant::now() < tick {
                continue; // the run ended inside this second
            }
            let cur = sum_live(&lives);
            if !quiet {
                let r: Vec<u64> = (0..4).map(|k| cur.1[k] - prev.1[k]).collect();
                println!(
                    "[{second:>4}s] responses/s: {} (announce {}, scrape {}, connect {}, error {}) sent/s: {} timeouts: {}",
                    r.iter().sum::<u64>(),
                    r[ANNOUNCE],
                    r[SCRAPE],
                    r[CONNECT],
                    r[ERROR],
                    cur.0 - prev.0,
                    cur.2 - prev.2,
                );
            }
            prev = cur;
            second += 1;
        }
    }
    plan.stop.store(true, Ordering::Relaxed);

    let mut at_deadline = Tally::default();
    let mut total = Tally::default();
    let mut latency = Histogram::new();
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(r)) => {
                at_deadline.add(&r.at_deadline);
                total.add(&r.total);
                latency.add(&r.latency);
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
    let sent = total.sent_total();
    let lost = total.timeouts;
    let loss_pct = if sent == 0 {
        0.0
    } else {
        100.0 * lost as f64 / sent as f64
    };
    let r = &at_deadline.responses;
    let p50 = latency.percentile(0.50).unwrap_or(0);
    let p99 = latency.percentile(0.99).unwrap_or(0);
    let p999 = latency.percentile(0.999).unwrap_or(0);
    let peers_per_announce = if total.responses[ANNOUNCE] == 0 {
        0.0
    } else {
        total.peers as f64 / total.responses[ANNOUNCE] as f64
    };
    println!(
        "responses/s: {} (announce {}, scrape {}, connect {}, error {}) sent/s: {} loss: {loss_pct:.1}%",
        rate(at_deadline.responses_total()),
        rate(r[ANNOUNCE]),
        rate(r[SCRAPE]),
        rate(r[CONNECT]),
        rate(r[ERROR]),
        rate(at_deadline.sent_total()),
    );
    let mut details = format!(
        "latency p50 {p50}us p99 {p99}us p99.9 {p999}us; peers/announce {peers_per_announce:.1}; timeouts {lost}, late {}, malformed {}, send-dropped {}, io-errors {}",
        total.late, total.malformed, total.send_dropped, total.io_errors
    );
    if total.skipped > 0 {
        let _ = write!(details, ", skipped (window full) {}", total.skipped);
    }
    println!("{details}");
    let mut result = format!(
        "RESULT responses_per_s={} sent_per_s={} loss_pct={loss_pct:.3}",
        rate(at_deadline.responses_total()),
        rate(at_deadline.sent_total()),
    );
    for (k, name) in KIND_NAMES.iter().enumerate() {
        let _ = write!(result, " {name}_per_s={}", rate(r[k]));
    }
    let _ = write!(
        result,
        " timeouts={lost} p50_us={p50} p99_us={p99} threads={threads} duration_s={secs}"
    );
    if fill_peers > 0 {
        let _ = write!(result, " peers_stored={}", total.responses[ANNOUNCE]);
    }
    println!("{result}");
    Ok(())
}
