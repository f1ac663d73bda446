//! Completion batching (`batch_wait_us`) and `Handler::look_ahead` on the
//! real kernel: every datagram shown ahead is then handled, in order,
//! before the next look-ahead; a lone datagram is still answered; an idle
//! worker sleeps instead of spinning; a worker that is behind does not
//! wait to gather.

mod common;

use common::{EchoReport, UdpEcho, STOP};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use uring_rt::RuntimeConfig;

const TOTAL: u32 = 2_000;

/// The batching server, and a client whose reads give up after 5 s.
fn start(
    batch_wait_us: u32,
) -> (
    SocketAddr,
    UdpSocket,
    std::thread::JoinHandle<UdpEcho<UdpSocket>>,
) {
    let cfg = RuntimeConfig {
        batch_wait_us,
        ..common::small(1)
    };
    let (addrs, t) = common::serve(cfg, vec![common::udp_socket()], UdpEcho::new);
    let client = common::udp_client(addrs[0].ip(), Duration::from_secs(5));
    (addrs[0], client, t)
}

/// Sends `TOTAL` datagrams in bursts of `burst`, reading every answer of a
/// burst before the next, then STOP; the worker's report, which counts
/// every one echoed and most looked ahead (turns of any size are looked
/// ahead window by window, not only their first `LOOK_AHEAD`). `None` (after saying why) when the UDP path cannot run
/// here.
fn bursts(batch_wait_us: u32, burst: u32) -> Option<EchoReport> {
    if common::skip_udp() {
        return None;
    }
    let (server, c, t) = start(batch_wait_us);
    let mut buf = [0u8; 64];
    for b in 0..TOTAL / burst {
        for i in 0..burst {
            c.send_to(&(b * burst + i).to_be_bytes(), server).unwrap();
        }
        for _ in 0..burst {
            c.recv_from(&mut buf).unwrap();
        }
    }
    c.send_to(STOP, server).unwrap();
    let r = t.join().unwrap().report;
    assert_eq!(r.echoed, u64::from(TOTAL));
    assert!(
        r.looked_ahead > u64::from(TOTAL / 2),
        "only {} of {TOTAL} datagrams were looked ahead",
        r.looked_ahead
    );
    Some(r)
}

#[test]
fn look_ahead_shows_each_batch_before_it_is_handled() {
    // Bursts of 20: with a 2 ms batching wait each burst is one batch or a
    // few, never the 4 × 32 completions that make a worker behind.
    let Some(r) = bursts(2_000, 20) else {
        return;
    };
    assert!(r.batches > 0, "no look-ahead at all");
    assert_eq!(r.busy_turns, 0, "a turn of 20 requests counted as busy");
}

#[test]
fn a_worker_that_is_behind_does_not_wait_to_gather() {
    // Bursts of 200: the 2 ms wait returns with most of a burst (over the
    // 4 × 32 completions that make a worker behind), so the next turn must
    // not wait again.
    let Some(r) = bursts(2_000, 200) else {
        return;
    };
    assert!(r.busy_turns > 0, "no turn skipped the gathering wait");
}

#[test]
fn batching_answers_a_lone_datagram_and_sleeps_when_idle() {
    if common::skip_udp() {
        return;
    }
    let (server, c, t) = start(1_000);
    let mut buf = [0u8; 64];
    let t0 = Instant::now();
    c.send_to(b"one", server).unwrap();
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"one");
    // The batching wait (1 ms) delays a lone answer a little, not forever.
    assert!(t0.elapsed() < Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(300));
    c.send_to(STOP, server).unwrap();
    let r = t.join().unwrap().report;
    assert_eq!(r.echoed, 1);
    // Idle for 300 ms: a handful of loop turns, not a spinning worker.
    assert!(r.submits < 50, "{} loop turns while idle", r.submits);
}
