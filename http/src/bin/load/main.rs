//! riptide-http-load: a load generator for HTTP(S) BitTorrent trackers.
//!
//! `--connections` connections spread over `--threads` threads, each
//! thread one mio event loop over non-blocking sockets, each connection
//! with at most one request in flight. `--mode keep-alive` reuses
//! connections (reopening one the server closes); `--mode close` opens a
//! new connection per request and says `Connection: close`. `--tls` speaks
//! TLS through rustls (ring), with session resumption on or off.
//!
//! Requests: `--announce-percent` announces, the rest scrapes of 1 to
//! `--scrape-hashes` info hashes; torrents are drawn from `--torrents`
//! info hashes with a Pareto skew (`--pareto`, 0 = uniform), announcing
//! peers from `--peers-per-thread` simulated peers with their own peer ids
//! and ports. Saturation (`--rate 0`): every connection always has a
//! request in flight. Paced (`--rate N`): N requests/s in total; what no
//! free connection can take is counted as skipped.
//!
//! Every response must be a whole HTTP 200 with one bencoded dictionary as
//! its body; anything else is counted by kind. Request bytes come from
//! per-thread templates patched in place (no allocation per plain
//! request).
//!
//! Output: one line per second, a summary line with responses/s, errors,
//! latency and this program's own CPU time per response (getrusage of the
//! load threads over the measured window; with `--server-pid`, the
//! tracker's too), and a last line `RESULT key=value ...` for scripts.
//!
//! Modules: [`args`] (command line), [`thread`] (the load thread and its
//! connections), [`request`] (request templates), [`response`] (response
//! checks), [`tls`] (the rustls client), [`tally`] (counters). Torrents,
//! simulated peers, CPU time and the thread harness are shared with the
//! other load generators in [`riptide_common::loadgen`]. This file starts
//! the threads and prints.

mod args;
mod request;
mod response;
mod tally;
mod thread;
mod tls;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use riptide_common::loadgen::run::{self, Report, Threads, TrackerCpu};
use riptide_common::loadgen::{info_hash, share};

use crate::args::{check, Args, ConnMode};
use crate::thread::{Plan, Worker};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    let tls = tls::client_config(&args)?;
    let thread_count = args.run.threads;
    let duration = args.run.duration;
    let quiet = args.run.quiet;
    let server_pid = args.server_pid;
    let host = args.host.clone().unwrap_or_else(|| args.target.to_string());
    let mode = match (args.mode, args.tls.tls) {
        (ConnMode::KeepAlive, false) => "plain keep-alive".to_owned(),
        (ConnMode::Close, false) => "plain close".to_owned(),
        (m, true) => format!(
            "TLS {} (resumption {:?}, versions {:?})",
            if m == ConnMode::KeepAlive {
                "keep-alive"
            } else {
                "close"
            },
            args.tls_resumption,
            args.tls_version
        ),
    };
    eprintln!(
        "riptide-http-load: {} connection(s) on {} thread(s) -> {}, {mode}, {}% announce, {} torrents (pareto {}), {}",
        args.connections,
        thread_count,
        args.target,
        args.announce_percent,
        args.run.torrents,
        args.run.pareto,
        if args.rate == 0 {
            "saturation".to_owned()
        } else {
            format!("{} requests/s offered", args.rate)
        }
    );
    let connections = args.connections;
    let info_hashes = (0..args.run.torrents).map(info_hash).collect();
    let plan = Arc::new(Plan {
        args,
        host,
        info_hashes,
        tls,
    });
    let threads = Threads::spawn(&plan.args.run, 1, &plan, move |plan, i, live, gate| {
        Worker::new(plan, i, share(connections, thread_count, i)).run(live, gate)
    })?;

    threads.gate.wait();
    let start = Instant::now();
    let tracker_start = TrackerCpu::start(server_pid);
    let mut server_cpu = None;
    if !threads.gate.failed() {
        threads.each_second(start, duration, |second, d| {
            if !quiet {
                let [ok, errors, connections] = d;
                println!(
                    "[{second:>4}s] responses/s: {ok} errors/s: {errors} connections/s: {connections}"
                );
            }
        });
        // The threads stop at the same deadline; read the tracker now.
        server_cpu = tracker_start.and_then(|t| t.elapsed());
    }
    // Nothing counts after the deadline: the window is the run.
    let report = Report::sum(threads.join()?);
    let (total, latency) = (&report.window, &report.latency);

    let secs = duration.as_secs_f64();
    let rate = |n: u64| (n as f64 / secs).round() as u64;
    let ok = total.ok_total();
    let responses = total.responses();
    let (load_user, load_sys) = report.cpu.per(responses);
    let p50 = latency.percentile(0.50).unwrap_or(0);
    let p99 = latency.percentile(0.99).unwrap_or(0);
    let handshakes = total.handshakes_full + total.handshakes_resumed;
    let t = total;
    let (per_s, announce, scrape, conns_per_s) =
        (rate(ok), rate(t.ok[0]), rate(t.ok[1]), rate(t.connections));
    let errors = t.errors();
    let mut line = format!(
        "responses/s: {per_s} (announce {announce}, scrape {scrape}) errors: {errors} (failure {}, http {}, malformed {}, io {}, closed-early {}, tls {}, timeout {}) connections/s: {conns_per_s}",
        t.failures, t.http_errors, t.conn.malformed, t.conn.io, t.conn.closed, t.conn.tls, t.conn.timeouts,
    );
    if handshakes > 0 {
        let _ = write!(
            line,
            " (TLS resumed {:.1}%)",
            100.0 * total.handshakes_resumed as f64 / handshakes as f64
        );
    }
    let _ = write!(
        line,
        " latency p50 {p50}us p99 {p99}us; load CPU {load_user:.2} + {load_sys:.2} us/response (user + sys)"
    );
    let peers_per_announce = if total.ok[0] == 0 {
        0.0
    } else {
        total.peers as f64 / total.ok[0] as f64
    };
    let mut result = format!(
        "RESULT responses_per_s={per_s} announce_per_s={announce} scrape_per_s={scrape} errors={errors} connections_per_s={conns_per_s} p50_us={p50} p99_us={p99} peers_per_announce={peers_per_announce:.1} load_user_us={load_user:.3} load_sys_us={load_sys:.3}"
    );
    if let Some(cpu) = server_cpu {
        run::write_tracker_cpu(&mut line, &mut result, cpu, responses, "response");
    }
    if total.skipped > 0 {
        let _ = write!(line, "; skipped (no free connection) {}", total.skipped);
    }
    let _ = write!(
        result,
        " tls_full={} tls_resumed={} skipped={} threads={thread_count} connections={connections} duration_s={secs}",
        total.handshakes_full, total.handshakes_resumed, total.skipped
    );
    report.print(&line, &result);
    Ok(())
}
