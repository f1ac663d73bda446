//! Tests of the SPSC mesh: single-thread semantics, back-pressure, and
//! multi-thread stress runs in which a consumer sleeps and is woken only when
//! `push` answers `Ok(true)`: a lost wake-up shows up as a stranded message.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::{Mesh, MeshEnd, MeshFull};

#[test]
fn ends_know_their_place() {
    fn assert_send<T: Send>() {}
    let ends = Mesh::<u64>::new(3, 4);
    assert_eq!(ends.len(), 3);
    for (i, end) in ends.iter().enumerate() {
        assert_eq!(end.worker(), i);
        assert_eq!(end.workers(), 3);
        assert_eq!(end.capacity(), 4);
        for to in 0..3 {
            assert_eq!(end.fill(to), 0);
        }
    }
    assert_send::<MeshEnd<u64>>();
}

#[test]
fn single_worker_mesh_is_empty() {
    let mut ends = Mesh::<u32>::new(1, 8);
    assert_eq!(ends[0].drain(|_, _| unreachable!()), 0);
    assert!(!ends[0].has_backlog());
}

#[test]
fn push_reports_empty_once_per_run() {
    let mut ends = Mesh::<(u32, u32)>::new(3, 8);
    let [a, b, c] = &mut ends[..] else {
        unreachable!()
    };

    assert_eq!(a.push(1, (0, 1)), Ok(true));
    assert_eq!(a.push(1, (0, 2)), Ok(false));
    assert_eq!(a.push(2, (0, 3)), Ok(true));
    assert_eq!(c.push(1, (2, 4)), Ok(true));
    assert_eq!(a.fill(1), 2);
    assert_eq!(a.fill(2), 1);
    assert_eq!(a.fill(0), 0);

    let mut got = Vec::new();
    assert_eq!(b.drain(|from, m| got.push((from, m))), 3);
    got.sort_by_key(|&(from, _)| from); // order is kept per sender only
    assert_eq!(got, vec![(0, (0, 1)), (0, (0, 2)), (2, (2, 4))]);
    assert_eq!(a.fill(1), 0);
    assert_eq!(b.drain(|_, _| unreachable!()), 0);

    // Drained: the next push reports an empty ring again.
    assert_eq!(a.push(1, (0, 5)), Ok(true));

    let mut got = Vec::new();
    assert_eq!(c.drain(|from, m| got.push((from, m))), 1);
    assert_eq!(got, vec![(0, (0, 3))]);
}

#[test]
fn full_ring_is_back_pressure() {
    let mut ends = Mesh::<u16>::new(2, 4);
    let (a, b) = ends.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    assert_eq!(a.push(1, 0), Ok(true));
    for i in 1..4 {
        assert_eq!(a.push(1, i), Ok(false));
    }
    assert_eq!(a.fill(1), 4);
    assert_eq!(a.push(1, 99), Err(MeshFull));
    assert_eq!(a.push(1, 99), Err(MeshFull));
    assert_eq!(
        MeshFull.to_string(),
        "mesh ring to the destination worker is full"
    );

    // The other direction is unaffected.
    assert_eq!(b.push(0, 7), Ok(true));

    let mut got = Vec::new();
    assert_eq!(b.drain(|_, m| got.push(m)), 4);
    assert_eq!(got, vec![0, 1, 2, 3]);
    assert_eq!(a.push(1, 4), Ok(true));
    let mut got = Vec::new();
    assert_eq!(a.drain(|from, m| got.push((from, m))), 1);
    assert_eq!(got, vec![(1, 7)]);
}

#[test]
fn capacity_one() {
    let mut ends = Mesh::<u8>::new(2, 1);
    let (a, b) = ends.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    for i in 0..10 {
        assert_eq!(a.push(1, i), Ok(true));
        assert_eq!(a.push(1, i), Err(MeshFull));
        let mut got = None;
        assert_eq!(b.drain(|_, m| got = Some(m)), 1);
        assert_eq!(got, Some(i));
    }
}

#[test]
fn drain_stops_at_its_budget_and_reports_backlog() {
    // Budget: 2 * capacity * inbound rings = 8. The callback refills the ring
    // it drains, as a fast peer would, so it never runs dry.
    let mut ends = Mesh::<u32>::new(2, 4);
    let (a, b) = ends.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    a.push(1, 0).unwrap();
    a.push(1, 1).unwrap();
    let mut next = 2;
    let mut seen = Vec::new();
    let n = b.drain(|_, m| {
        seen.push(m);
        if a.push(1, next).is_ok() {
            next += 1;
        }
    });
    assert_eq!(n, 8);
    assert!(b.has_backlog());
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    // A quiet drain takes the rest and clears the flag.
    let rest = b.drain(|_, m| seen.push(m));
    assert_eq!(rest as u32, next - 8);
    assert!(!b.has_backlog());
    assert_eq!(seen, (0..next).collect::<Vec<_>>());
}

#[test]
#[should_panic(expected = "capacity")]
fn zero_capacity_is_refused() {
    let _ = Mesh::<u8>::new(2, 0);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "never pushes to itself")]
fn push_to_self_panics_in_debug() {
    let mut ends = Mesh::<u8>::new(2, 4);
    let _ = ends[0].push(0, 1);
}

#[test]
#[cfg(not(debug_assertions))]
fn push_to_self_is_refused_in_release() {
    let mut ends = Mesh::<u8>::new(2, 4);
    assert_eq!(ends[0].push(0, 1), Err(MeshFull));
}

/// A sticky wake flag: `wake` sets it, `sleep` waits for it and clears it.
/// Stands in for MSG_RING / eventfd.
#[derive(Default)]
pub(super) struct WakeFlag {
    set: Mutex<bool>,
    cond: Condvar,
}

impl WakeFlag {
    pub(super) fn wake(&self) {
        *self.set.lock().unwrap() = true;
        self.cond.notify_one();
    }

    /// Waits until woken. Returns false on a (generous) timeout.
    pub(super) fn sleep(&self, timeout: Duration) -> bool {
        let guard = self.set.lock().unwrap();
        let (mut guard, result) = self
            .cond
            .wait_timeout_while(guard, timeout, |set| !*set)
            .unwrap();
        *guard = false;
        !result.timed_out()
    }
}

/// Tiny xorshift so the test needs no RNG crate.
pub(super) fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `senders` producer threads each push `per_sender` sequence numbers to
/// worker 0, in bursts of random size, waking worker 0 once per burst if any
/// push of it answered `Ok(true)`. Worker 0 drains and then sleeps until
/// woken. A lost wake-up leaves messages stranded while worker 0 sleeps: it
/// is detected (not just hung on) by a drain after a long timeout.
fn stress(senders: usize, per_sender: u64, capacity: usize) {
    let workers = senders + 1;
    let mut ends = Mesh::<(u32, u64)>::new(workers, capacity).into_iter();
    let mut consumer = ends.next().unwrap();
    let flag = Arc::new(WakeFlag::default());

    let producers: Vec<_> = ends
        .map(|mut end| {
            let flag = Arc::clone(&flag);
            thread::spawn(move || {
                let me = end.worker() as u32;
                let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(me);
                let mut seq = 0;
                let mut wakes = 0_u64;
                while seq < per_sender {
                    let burst = 1 + next_rand(&mut rng) % 96;
                    let mut wake = false;
                    for _ in 0..burst {
                        if seq == per_sender {
                            break;
                        }
                        match end.push(0, (me, seq)) {
                            Ok(empty) => {
                                wake |= empty;
                                seq += 1;
                            }
                            Err(MeshFull) => break,
                        }
                    }
                    if wake {
                        wakes += 1;
                        flag.wake();
                    }
                    // Vary the gaps so the consumer often goes to sleep
                    // right while a burst arrives.
                    match next_rand(&mut rng) % 8 {
                        0 => thread::yield_now(),
                        1 => {
                            for _ in 0..next_rand(&mut rng) % 2000 {
                                std::hint::spin_loop();
                            }
                        }
                        _ => {}
                    }
                }
                wakes
            })
        })
        .collect();

    let total = per_sender * senders as u64;
    let mut next = vec![0_u64; workers];
    let mut received = 0_u64;
    let mut sleeps = 0_u64;
    while received < total {
        received += consumer.drain(|from, (who, seq)| {
            assert_eq!(from as u32, who, "message arrived on the wrong ring");
            assert_eq!(seq, next[from], "order per pair broken or message lost");
            next[from] += 1;
        }) as u64;
        if received == total {
            break;
        }
        if consumer.has_backlog() {
            continue;
        }
        sleeps += 1;
        if !flag.sleep(Duration::from_secs(20)) {
            let stranded = consumer.drain(|from, _| next[from] += 1);
            assert_eq!(stranded, 0, "lost wake-up: {stranded} messages stranded");
            panic!("no progress in 20 s and nothing stranded");
        }
    }
    for p in producers {
        assert!(p.join().unwrap() > 0);
    }
    for (from, &n) in next.iter().enumerate().skip(1) {
        assert_eq!(n, per_sender, "sender {from}");
    }
    assert!(sleeps > 0);
    assert_eq!(consumer.drain(|_, _| unreachable!()), 0);
}

#[test]
fn stress_two_threads_no_lost_wakeup() {
    stress(1, 1_000_000, 256);
}

#[test]
fn stress_two_threads_tiny_ring() {
    stress(1, 200_000, 2);
}

#[test]
fn stress_three_senders_one_receiver() {
    stress(3, 200_000, 64);
}

/// Both directions at once: two workers exchange bursts, each sleeping on
/// its own flag when it has nothing left to send, waking the other only on
/// `Ok(true)`.
#[test]
fn stress_both_directions() {
    const N: u64 = 300_000;
    let ends = Mesh::<u64>::new(2, 32);
    let flags = [Arc::new(WakeFlag::default()), Arc::new(WakeFlag::default())];
    let run = |mut end: MeshEnd<u64>, flags: [Arc<WakeFlag>; 2]| {
        move || {
            let me = end.worker();
            let peer = 1 - me;
            let (mut sent, mut expect) = (0_u64, 0_u64);
            let mut rng = 0x1234_5678_u64 + me as u64;
            let start = std::time::Instant::now();
            while sent < N || expect < N {
                // If the peer died, fail instead of spinning on a full ring.
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "worker {me}: stuck"
                );
                let burst = 1 + next_rand(&mut rng) % 48;
                let mut wake = false;
                for _ in 0..burst {
                    if sent == N {
                        break;
                    }
                    match end.push(peer, sent) {
                        Ok(empty) => {
                            wake |= empty;
                            sent += 1;
                        }
                        Err(MeshFull) => break,
                    }
                }
                if wake {
                    flags[peer].wake();
                } else if sent < N {
                    thread::yield_now();
                }
                let got = end.drain(|from, m| {
                    assert_eq!(from, peer);
                    assert_eq!(m, expect);
                    expect += 1;
                });
                // Sleep only when everything is sent and nothing came in.
                // (A full outbound ring is no reason to sleep: nobody wakes
                // a producer when space frees up.)
                if got == 0 && !end.has_backlog() && sent == N && expect < N {
                    assert!(
                        flags[me].sleep(Duration::from_secs(20)),
                        "worker {me}: no wake in 20 s (sent {sent}, got {expect})"
                    );
                }
            }
        }
    };
    let mut ends = ends.into_iter();
    let a = thread::spawn(run(ends.next().unwrap(), flags.clone()));
    let b = thread::spawn(run(ends.next().unwrap(), flags.clone()));
    a.join().unwrap();
    b.join().unwrap();
}
