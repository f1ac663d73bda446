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
//! [`peers`] (the peers of `--fill-peers`), [`tally`] (counters). Torrents,
//! simulated peers and the thread harness are shared with the other load
//! generators in [`riptide_common::loadgen`]. This file starts the
//! threads, prints the per-second lines and the summary.

mod args;
mod inflight;
mod peers;
mod tally;
mod thread;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use riptide_common::loadgen::info_hash;
use riptide_common::loadgen::run::{Report, Threads};
use riptide_common::InfoHash;

use crate::args::{check, Args};
use crate::tally::{
    ANNOUNCE, CONNECT, ERROR, KIND_NAMES, LIVE_LEN, LIVE_SENT, LIVE_TIMEOUTS, SCRAPE,
};
use crate::thread::{Plan, Worker};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    if args.list_info_hashes {
        for i in 0..args.run.torrents {
            println!("{}", InfoHash(info_hash(i)));
        }
        return Ok(());
    }
    let thread_count = args.run.threads;
    let duration = args.run.duration;
    let quiet = args.run.quiet;
    let fill_peers = args.fill_peers;
    eprintln!(
        "riptide-udp-load: {} thread(s) -> {}, {} torrents (pareto {}), mix {:?}, {}",
        thread_count,
        args.targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        args.run.torrents,
        args.run.pareto,
        args.mix,
        if args.rate == 0 {
            format!("open loop, window {}/thread", args.window)
        } else {
            format!("{} requests/s offered", args.rate)
        }
    );
    let info_hashes = (0..args.run.torrents)
        .map(|i| InfoHash(info_hash(i)))
        .collect();
    let plan = Arc::new(Plan { args, info_hashes });
    let threads =
        Threads::<_, LIVE_LEN>::spawn(&plan.args.run, 1, &plan, |plan, i, live, gate| {
            let (worker, poll, events) =
                gate.start(Worker::new(plan, i).and_then(Worker::connect))?;
            worker.run(poll, events, live, gate)
        })?;

    threads.gate.wait();
    let start = Instant::now();
    if !threads.gate.failed() {
        threads.each_second(start, duration, |second, d| {
            if !quiet {
                let r = &d[..4];
                println!(
                    "[{second:>4}s] responses/s: {} (announce {}, scrape {}, connect {}, error {}) sent/s: {} timeouts: {}",
                    r.iter().sum::<u64>(),
                    r[ANNOUNCE],
                    r[SCRAPE],
                    r[CONNECT],
                    r[ERROR],
                    d[LIVE_SENT],
                    d[LIVE_TIMEOUTS],
                );
            }
        });
    }
    let Report {
        window: at_deadline,
        total,
        latency,
        ..
    } = Report::sum(threads.join()?);

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
        " timeouts={lost} p50_us={p50} p99_us={p99} threads={thread_count} duration_s={secs}"
    );
    if fill_peers > 0 {
        let _ = write!(result, " peers_stored={}", total.responses[ANNOUNCE]);
    }
    println!("{result}");
    Ok(())
}
