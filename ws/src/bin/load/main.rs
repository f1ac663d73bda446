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
//! connections), [`json`] (messages out, scanning messages in), [`tally`]
//! (counters). CPU time, info hashes, the Pareto pick and the thread
//! harness are shared with the other load generators in
//! [`riptide_common::loadgen`]; the rustls client with riptide-http-load
//! in [`riptide_stream::insecure`].

mod args;
mod json;
mod tally;
mod thread;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use riptide_common::loadgen::run::{self, Report, Threads, TrackerCpu};
use riptide_common::loadgen::{info_hash, share};
use riptide_stream::insecure;

use crate::args::{check, Args};
use crate::tally::{Live, Tally, LIVE_LEN};
use crate::thread::{Plan, Worker, TORRENTS_PER_PEER};

/// Raise the soft limit on open files to the hard one.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// `--idle`: once every peer's announce is answered (or 15 s are gone),
/// print `IDLE READY ...` for the script that measures the tracker's RSS.
fn report_idle_ready(
    start: Instant,
    duration: Duration,
    threads: &Threads<Report<Tally>, LIVE_LEN>,
    connections: usize,
) {
    let end = start + duration;
    loop {
        let now = Instant::now();
        if now >= end || threads.finished() {
            return;
        }
        let cur = Live::sum(&threads.lives);
        if cur[0] >= connections as u64 || now >= start + Duration::from_secs(15) {
            println!(
                "IDLE READY connections={} announced={} errors={}",
                cur[4], cur[0], cur[3]
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    raise_nofile();
    let tls = insecure::client_config(&args.tls, rustls::DEFAULT_VERSIONS)?
        .map(|(config, name)| (Arc::new(config), name));
    let thread_count = args.run.threads;
    let duration = args.run.duration;
    let quiet = args.run.quiet;
    let idle = args.idle;
    let server_pid = args.server_pid;
    let connections = args.connections;
    let host = args.host.clone().unwrap_or_else(|| args.target.to_string());
    eprintln!(
        "riptide-ws-load: {} connection(s) on {} thread(s) -> {}://{}, {} torrents (pareto {}, {} per peer), {} offers of {} B per announce, {}% answered, {} in flight{}",
        connections,
        thread_count,
        if args.tls.tls { "wss" } else { "ws" },
        args.target,
        args.run.torrents,
        args.run.pareto,
        TORRENTS_PER_PEER,
        args.offers,
        args.sdp_bytes,
        args.answer_percent,
        args.in_flight,
        if idle { ", idle" } else { "" },
    );
    let info_hashes: Vec<[u8; 20]> = (0..args.run.torrents).map(info_hash).collect();
    let info_hash_lits = info_hashes
        .iter()
        .map(|h| {
            let mut v = Vec::with_capacity(64);
            json::binary_literal(&mut v, h);
            v
        })
        .collect();
    let plan = Arc::new(Plan {
        args,
        host,
        info_hashes,
        info_hash_lits,
        tls,
    });
    // Two stages: every connection upgraded, then go.
    let connect_start = Instant::now();
    let threads = Threads::spawn(&plan.args.run, 2, &plan, move |plan, i, live, gate| {
        Worker::new(plan, i, share(connections, thread_count, i)).run(live, gate)
    })?;

    threads.gate.wait();
    let upgraded_after = connect_start.elapsed();
    if !quiet && !threads.gate.failed() {
        println!(
            "{connections} connections upgraded in {:.2} s",
            upgraded_after.as_secs_f64()
        );
    }
    let tracker_start = TrackerCpu::start(server_pid);
    threads.gate.wait();
    let start = Instant::now();
    let mut server_cpu = None;
    if !threads.gate.failed() {
        if idle {
            report_idle_ready(start, duration, &threads, connections);
        }
        threads.each_second(start, duration, |second, d| {
            if !quiet && !idle {
                let [replies, offers, answers, errors, _] = d;
                println!(
                    "[{second:>4}s] messages/s: {} (announce replies {replies}, offers {offers}, answers {answers}) errors/s: {errors}",
                    replies + offers + answers,
                );
            }
        });
        server_cpu = tracker_start.and_then(|t| t.elapsed());
    }
    let report = Report::sum(threads.join()?);
    let total = &report.total;

    let secs = duration.as_secs_f64();
    let rate = |n: u64| (n as f64 / secs).round() as u64;
    let w = &report.window;
    let messages = w.messages();
    let (load_user, load_sys) = report.cpu.per(messages);
    let (per_s, replies, offers, answers) = (
        rate(messages),
        rate(w.replies),
        rate(w.offers),
        rate(w.answers),
    );
    let (announces_sent, answers_sent) = (rate(w.announces_sent), rate(w.answers_sent));
    let (errors, failures, closed, timeouts, unmatched) = (
        w.errors(),
        w.failures,
        w.conn.closed,
        w.conn.timeouts,
        w.unmatched_replies,
    );
    let (malformed, io, tls) = (w.conn.malformed, w.conn.io, w.conn.tls);
    let mut line = format!(
        "messages/s: {per_s} (announce replies {replies}, offers {offers}, answers {answers}) sent/s: announces {announces_sent}, answers {answers_sent}; errors: {errors} (failure {failures}, malformed {malformed}, io {io}, closed {closed}, tls {tls}, timeout {timeouts}); unmatched replies {unmatched}; load CPU {load_user:.2} + {load_sys:.2} us/message (user + sys)"
    );
    let mut result = format!(
        "RESULT messages_per_s={per_s} replies_per_s={replies} offers_per_s={offers} answers_per_s={answers} announces_sent_per_s={announces_sent} answers_sent_per_s={answers_sent} errors={errors} failures={failures} closed={closed} timeouts={timeouts} unmatched_replies={unmatched} load_user_us={load_user:.3} load_sys_us={load_sys:.3}"
    );
    if let Some(cpu) = server_cpu {
        run::write_tracker_cpu(&mut line, &mut result, cpu, messages, "message");
    }
    let _ = write!(
        result,
        " connections={connections} upgraded={} reconnects={} connect_s={:.2} threads={thread_count} duration_s={secs}",
        total.upgraded,
        total.connections.saturating_sub(connections as u64),
        upgraded_after.as_secs_f64(),
    );
    report.print(&line, &result);
    Ok(())
}
