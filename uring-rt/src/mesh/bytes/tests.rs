//! Tests of the byte mesh: framing across wrap-around, lanes, back-pressure
//! and the space-freed report on one thread; then two-thread runs in which
//! the consumer sleeps until a push answers `Ok(true)` and the producer
//! sleeps on a full ring until the consumer lists it in `space_freed`, so a
//! lost wake-up of either kind shows up as a stranded record.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{stride, ByteMesh, ByteMeshConfig, ByteMeshEnd, Lane, PushError, ReturnAddr};
use crate::handler::ConnId;

fn config(workers: usize, ring: usize, max_record: usize) -> ByteMeshConfig {
    ByteMeshConfig {
        workers,
        request_ring_bytes: ring,
        reply_ring_bytes: ring,
        max_record_bytes: max_record,
    }
}

/// Two ends, 0 and 1.
fn pair(ring: usize, max_record: usize) -> (ByteMeshEnd, ByteMeshEnd) {
    let mut ends = ByteMesh::new(&config(2, ring, max_record)).into_iter();
    (ends.next().unwrap(), ends.next().unwrap())
}

/// Payload of record `seq` with `len` bytes: a pattern that differs per
/// record and per offset, so a misplaced or torn record is caught.
fn pattern(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) >> 1) as u8)
        .collect()
}

/// Drains `end` and returns the records as (from, lane, bytes).
fn drain_all(end: &mut ByteMeshEnd) -> Vec<(usize, Lane, Vec<u8>)> {
    let mut got = Vec::new();
    let n = end
        .rx
        .drain(|from, lane, r| got.push((from, lane, r.to_vec())));
    assert_eq!(n, got.len());
    got
}

#[test]
fn sizes_are_rounded_up() {
    let cfg = config(3, 1000, 64 << 10);
    // 2 * stride(64 KiB) = 131080 -> 256 KiB.
    assert_eq!(cfg.ring_bytes(Lane::Request), 256 << 10);
    let cfg = config(3, 300 << 10, 100);
    assert_eq!(cfg.ring_bytes(Lane::Reply), 512 << 10);
    assert_eq!(cfg.total_bytes(), 6 * 2 * (512 << 10));
    assert_eq!(config(1, 64, 8).total_bytes(), 0);
    assert_eq!(ByteMeshConfig::default().max_record_bytes, 64 << 10);
}

#[test]
fn ends_know_their_place() {
    fn assert_send<T: Send>() {}
    let ends = ByteMesh::new(&config(3, 256, 16));
    assert_eq!(ends.len(), 3);
    for (i, end) in ends.iter().enumerate() {
        assert_eq!(end.tx.worker(), i);
        assert_eq!(end.tx.workers(), 3);
        assert_eq!(end.tx.max_record(), 16);
        for to in 0..3 {
            for lane in Lane::ALL {
                let want = if to == i { 0 } else { 16 };
                assert_eq!(end.tx.space(to, lane), want);
            }
        }
    }
    assert_send::<ByteMeshEnd>();
}

#[test]
fn single_worker_mesh_is_empty() {
    let mut ends = ByteMesh::new(&config(1, 64, 8));
    assert_eq!(ends[0].rx.drain(|_, _, _| unreachable!()), 0);
    assert!(!ends[0].rx.has_backlog());
    assert!(ends[0].rx.space_freed().is_empty());
}

#[test]
fn every_length_round_trips_across_many_laps() {
    // A small ring (512 B, max record 200 B) so records wrap often, and
    // every length from 0 to the maximum, in bursts that stop at a varying
    // point so the skip lands at every offset.
    let (mut a, mut b) = pair(512, 200);
    let mut seq = 0_u64;
    let mut expect = std::collections::VecDeque::new();
    let mut pushed_bytes = 0;
    for round in 0..2000_usize {
        let burst = 1 + round % 7;
        for _ in 0..burst {
            let len = (seq as usize * 37) % 201;
            let data = pattern(seq, len);
            match a.tx.push(1, Lane::Request, &data) {
                Ok(_) => {
                    expect.push_back(data);
                    pushed_bytes += stride(len);
                    seq += 1;
                }
                Err(PushError::Full) => break,
                Err(e) => panic!("{e}"),
            }
        }
        for (from, lane, got) in drain_all(&mut b) {
            assert_eq!((from, lane), (0, Lane::Request));
            assert_eq!(got, expect.pop_front().unwrap());
        }
        assert!(expect.is_empty());
    }
    assert!(
        pushed_bytes > 500 * 512,
        "only {pushed_bytes} bytes: few laps"
    );
}

#[test]
fn records_of_1_byte_to_64_kib_round_trip_in_order() {
    let (mut a, mut b) = pair(0, 64 << 10);
    let sizes = [
        1, 2, 3, 4, 5, 63, 64, 65, 1000, 1024, 4095, 4096, 4097, 30_000, 65_535, 65_536,
    ];
    let mut seq = 0_u64;
    // Several laps of the 256 KiB ring: each pass pushes ~210 KiB.
    for pass in 0..12 {
        let mut expect = Vec::new();
        for i in 0..sizes.len() {
            // Vary the order per pass so the wrap point moves.
            let len = sizes[(i + pass * 5) % sizes.len()];
            let data = pattern(seq, len);
            seq += 1;
            a.tx.push(1, Lane::Reply, &data).unwrap();
            expect.push(data);
            if i % 4 == 3 {
                // Drain part way, as a consumer running concurrently would.
                let got: Vec<Vec<u8>> = drain_all(&mut b).into_iter().map(|r| r.2).collect();
                let done: Vec<Vec<u8>> = std::mem::take(&mut expect);
                assert_eq!(got, done);
            }
        }
        let got: Vec<Vec<u8>> = drain_all(&mut b).into_iter().map(|r| r.2).collect();
        assert_eq!(got, expect);
    }
}

#[test]
fn push_with_writes_in_place_and_may_use_less() {
    let (mut a, mut b) = pair(256, 64);
    let wake =
        a.tx.push_with(1, Lane::Request, 64, |buf| {
            assert_eq!(buf.len(), 64);
            buf[..5].copy_from_slice(b"hello");
            5
        })
        .unwrap();
    assert!(wake);
    // Only the used bytes took space: 4 + 5 -> 12 bytes.
    assert_eq!(a.tx.space(1, Lane::Request), 64);
    assert_eq!(
        a.tx.push_with(1, Lane::Request, 0, |_| 0),
        Ok(false),
        "second record of a run: no wake"
    );
    let got = drain_all(&mut b);
    assert_eq!(
        got,
        vec![
            (0, Lane::Request, b"hello".to_vec()),
            (0, Lane::Request, Vec::new())
        ]
    );
    // The consumer may work on the record in place.
    a.tx.push(1, Lane::Request, b"abc").unwrap();
    let mut seen = Vec::new();
    b.rx.drain(|_, _, r| {
        r.make_ascii_uppercase();
        seen.extend_from_slice(r);
    });
    assert_eq!(seen, b"ABC");
}

#[test]
fn too_large_is_refused_without_touching_the_ring() {
    let (mut a, mut b) = pair(1024, 100);
    assert_eq!(
        a.tx.push_with(1, Lane::Request, 101, |_| unreachable!()),
        Err(PushError::TooLarge)
    );
    assert_eq!(a.tx.push(1, Lane::Reply, &[0; 100]), Ok(true));
    assert_eq!(drain_all(&mut b).len(), 1);
    assert_eq!(
        PushError::TooLarge.to_string(),
        "record longer than the byte mesh's max_record_bytes"
    );
}

#[test]
fn full_ring_refuses_then_accepts_and_reports_space_freed() {
    // 256 B ring, 100 B records take 104 B: two fit.
    let (mut a, mut b) = pair(256, 100);
    assert_eq!(a.tx.push(1, Lane::Request, &[1; 100]), Ok(true));
    assert_eq!(a.tx.push(1, Lane::Request, &[2; 100]), Ok(false));
    assert_eq!(a.tx.space(1, Lane::Request), 44);
    assert_eq!(
        a.tx.push_with(1, Lane::Request, 100, |_| unreachable!()),
        Err(PushError::Full)
    );
    assert_eq!(a.tx.push(1, Lane::Request, &[3; 100]), Err(PushError::Full));
    // A short record still fits.
    assert_eq!(a.tx.push(1, Lane::Request, &[4; 44]), Ok(false));
    assert_eq!(a.tx.space(1, Lane::Request), 0);
    assert_eq!(a.tx.push(1, Lane::Request, &[]), Err(PushError::Full));
    assert_eq!(
        PushError::Full.to_string(),
        "byte mesh ring to the destination worker is full"
    );

    let got = drain_all(&mut b);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].2, vec![4; 44]);
    assert_eq!(b.rx.space_freed(), &[0], "a's refused push is reported");
    // Empty again: the next push wakes, and the big record fits.
    assert_eq!(a.tx.space(1, Lane::Request), 100);
    assert_eq!(a.tx.push(1, Lane::Request, &[3; 100]), Ok(true));
    assert_eq!(drain_all(&mut b), vec![(0, Lane::Request, vec![3; 100])]);
    assert!(b.rx.space_freed().is_empty(), "reported once");
}

#[test]
fn space_freed_is_per_worker_and_only_after_progress() {
    let mut ends = ByteMesh::new(&config(3, 64, 24));
    let [a, b, c] = &mut ends[..] else {
        unreachable!()
    };
    // a fills both lanes to c, b fills its request lane to c.
    for lane in Lane::ALL {
        while a.tx.push(2, lane, &[0; 24]).is_ok() {}
    }
    while b.tx.push(2, Lane::Request, &[0; 24]).is_ok() {}
    assert_eq!(b.tx.push(2, Lane::Request, &[0; 24]), Err(PushError::Full));
    let n = c.rx.drain(|_, _, _| {});
    assert_eq!(n, 6);
    let mut freed = c.rx.space_freed().to_vec();
    freed.sort_unstable();
    assert_eq!(freed, vec![0, 1], "each producer once, both lanes of a");
    // Nothing new consumed: nothing reported.
    assert_eq!(c.rx.drain(|_, _, _| {}), 0);
    assert!(c.rx.space_freed().is_empty());
}

#[test]
fn replies_get_through_while_requests_fill_the_ring() {
    let (mut a, mut b) = pair(4096, 1000);
    let mut requests = 0;
    while a.tx.push(1, Lane::Request, &[7; 1000]).is_ok() {
        requests += 1;
    }
    assert_eq!(requests, 4);
    assert!(a.tx.space(1, Lane::Request) < 1000);
    // The reply lane is untouched by the request flood.
    assert_eq!(a.tx.space(1, Lane::Reply), 1000);
    for i in 0..4_u8 {
        a.tx.push(1, Lane::Reply, &[i; 1000]).unwrap();
    }
    assert_eq!(a.tx.push(1, Lane::Reply, &[9; 1000]), Err(PushError::Full));
    let got = drain_all(&mut b);
    // Replies are served first in a drain round.
    let lanes: Vec<Lane> = got.iter().map(|r| r.1).collect();
    assert_eq!(&lanes[..4], &[Lane::Reply; 4]);
    assert_eq!(&lanes[4..], &[Lane::Request; 4]);
    assert_eq!(got[3].2, vec![3; 1000]);
}

#[test]
fn drain_reports_sender_and_lane() {
    let mut ends = ByteMesh::new(&config(3, 256, 32));
    let [a, b, c] = &mut ends[..] else {
        unreachable!()
    };
    assert_eq!(a.tx.push(1, Lane::Request, b"a-req"), Ok(true));
    assert_eq!(a.tx.push(1, Lane::Reply, b"a-rep"), Ok(true));
    assert_eq!(c.tx.push(1, Lane::Request, b"c-req"), Ok(true));
    assert_eq!(a.tx.push(2, Lane::Request, b"to-c"), Ok(true));
    let mut got = drain_all(b);
    got.sort_by_key(|r| (r.0, r.1 as u8, r.2.clone()));
    assert_eq!(
        got,
        vec![
            (0, Lane::Request, b"a-req".to_vec()),
            (0, Lane::Reply, b"a-rep".to_vec()),
            (2, Lane::Request, b"c-req".to_vec()),
        ]
    );
    assert_eq!(drain_all(c), vec![(0, Lane::Request, b"to-c".to_vec())]);
}

#[test]
fn drain_stops_at_its_budget_and_reports_backlog() {
    // Budget: 2 * (2 inbound rings * 64 B) = 256 B = 64 empty records.
    let (mut a, mut b) = pair(64, 4);
    a.tx.push(1, Lane::Request, &[]).unwrap();
    let mut seen = 0;
    let n = b.rx.drain(|_, _, _| {
        seen += 1;
        // Refill, as a fast peer would, so the ring never runs dry.
        a.tx.push(1, Lane::Request, &[]).unwrap();
    });
    assert_eq!(n, 64);
    assert!(b.rx.has_backlog());
    assert_eq!(b.rx.drain(|_, _, _| {}), 1);
    assert!(!b.rx.has_backlog());
}

#[test]
#[should_panic(expected = "exceeds")]
fn absurd_record_size_is_refused() {
    let _ = ByteMesh::new(&config(2, 64, super::MAX_RECORD_LIMIT + 1));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "never pushes to itself")]
fn push_to_self_panics_in_debug() {
    let mut ends = ByteMesh::new(&config(2, 64, 8));
    let _ = ends[0].tx.push(0, Lane::Request, b"x");
}

#[test]
#[cfg(not(debug_assertions))]
fn push_to_self_is_refused_in_release() {
    let mut ends = ByteMesh::new(&config(2, 64, 8));
    assert_eq!(ends[0].push(0, Lane::Request, b"x"), Err(PushError::Full));
}

#[test]
fn return_addr_round_trips_and_rejects_late_replies() {
    let conn = ConnId {
        index: 7,
        generation: 3,
    };
    let addr = ReturnAddr {
        worker: 5,
        conn,
        seq: 0xDEAD_BEEF,
    };
    let mut record = addr.encode().to_vec();
    record.extend_from_slice(b"payload");
    let (back, rest) = ReturnAddr::decode(&record).unwrap();
    assert_eq!(back, addr);
    assert_eq!(rest, b"payload");
    assert_eq!(ReturnAddr::decode(&record[..15]), None);
    assert_eq!(ReturnAddr::decode(&record[..16]).unwrap().1, b"");

    assert!(addr.answers(conn, Some(0xDEAD_BEEF)));
    // The connection moved on to its next request.
    assert!(!addr.answers(conn, Some(0xDEAD_BEEF_u32.wrapping_add(1))));
    assert!(!addr.answers(conn, None));
    // The slot was reused by a later connection.
    let reused = ConnId {
        index: 7,
        generation: 4,
    };
    assert!(!addr.answers(reused, Some(0xDEAD_BEEF)));
}

// The sticky wake flag and the xorshift are the SPSC mesh tests'.
use crate::mesh::tests::{next_rand, WakeFlag};

/// Length of record `seq`: mostly short, sometimes up to `max`.
fn random_len(rng: &mut u64, max: usize) -> usize {
    let r = next_rand(rng);
    match r % 8 {
        0 => (r >> 8) as usize % (max + 1),
        1..=3 => (r >> 8) as usize % 9,
        _ => (r >> 8) as usize % 300.min(max + 1),
    }
}

const STALL: Duration = Duration::from_secs(5);

/// Worker 0 sends `count` records of random length (random lane) to worker
/// 1 in bursts, waking 1 when a push answers `Ok(true)`; on a full ring it
/// sleeps until 1 lists it in `space_freed`. Worker 1 drains, checks order
/// and content per lane, wakes 0 when told, then sleeps until woken. A lost
/// wake of either kind is detected: the sleeper times out and then finds
/// work it should have been woken for.
fn stress(count: u64, ring: usize, max_record: usize, seed: u64) {
    let (mut tx, mut rx) = pair(ring, max_record);
    let consumer_flag = Arc::new(WakeFlag::default());
    let producer_flag = Arc::new(WakeFlag::default());

    let producer = {
        let (consumer_flag, producer_flag) =
            (Arc::clone(&consumer_flag), Arc::clone(&producer_flag));
        thread::spawn(move || {
            let mut rng = seed;
            let mut seq = [0_u64; 2];
            let mut sent = 0;
            let mut full_waits = 0_u64;
            let mut pending: Option<(Lane, usize)> = None;
            while sent < count {
                let burst = 1 + next_rand(&mut rng) % 64;
                let mut wake = false;
                for _ in 0..burst {
                    if sent == count {
                        break;
                    }
                    let (lane, len) = *pending.get_or_insert_with(|| {
                        let lane = Lane::ALL[(next_rand(&mut rng) % 2) as usize];
                        (lane, random_len(&mut rng, max_record))
                    });
                    let s = seq[lane as usize];
                    let result = tx.tx.push_with(1, lane, len, |buf| {
                        buf.copy_from_slice(&pattern(s, len));
                        len
                    });
                    match result {
                        Ok(empty) => {
                            wake |= empty;
                            seq[lane as usize] += 1;
                            sent += 1;
                            pending = None;
                        }
                        Err(PushError::Full) => {
                            if wake {
                                consumer_flag.wake();
                                wake = false;
                            }
                            full_waits += 1;
                            if !producer_flag.sleep(STALL) {
                                // Timed out: a lost space-freed report if
                                // the ring has room now.
                                assert!(
                                    tx.tx.space(1, lane) < len,
                                    "producer stranded: space-freed report lost"
                                );
                            }
                            break;
                        }
                        Err(PushError::TooLarge) => unreachable!(),
                    }
                }
                if wake {
                    consumer_flag.wake();
                }
                match next_rand(&mut rng) % 8 {
                    0 => thread::yield_now(),
                    1 => thread::sleep(Duration::from_micros(20)),
                    _ => {}
                }
            }
            full_waits
        })
    };

    let mut rng = seed ^ 0x5555;
    let mut next = [0_u64; 2];
    let mut received = 0;
    let mut bytes = 0_usize;
    while received < count {
        let n = rx.rx.drain(|from, lane, r| {
            assert_eq!(from, 0);
            let s = next[lane as usize];
            assert_eq!(r, &pattern(s, r.len())[..], "record {s} on {lane:?} torn");
            next[lane as usize] += 1;
            bytes += r.len();
        });
        received += n as u64;
        if !rx.rx.space_freed().is_empty() {
            assert_eq!(rx.rx.space_freed(), &[0]);
            producer_flag.wake();
        }
        if received < count && !rx.rx.has_backlog() {
            if next_rand(&mut rng).is_multiple_of(4) {
                thread::yield_now();
            }
            if !consumer_flag.sleep(STALL) {
                let before = received;
                let late = rx.rx.drain(|_, _, _| {});
                assert_eq!(late, 0, "consumer stranded after {before}: wake-up lost");
            }
        }
    }
    let full_waits = producer.join().unwrap();
    assert_eq!(next[0] + next[1], count);
    assert!(bytes > 0);
    eprintln!("stress: {count} records, {bytes} payload bytes, {full_waits} full-ring waits");
}

#[test]
fn stress_two_threads_random_sizes() {
    stress(200_000, 16 << 10, 4096, 0x9E37_79B9_7F4A_7C15);
}

#[test]
fn stress_two_threads_tiny_ring() {
    // Nearly every push wraps or fills: exercises skips and space-freed.
    stress(100_000, 64, 24, 0x1234_5678_9ABC_DEF1);
}

#[test]
fn stress_two_threads_big_records() {
    stress(5_000, 0, 64 << 10, 0x0F0F_F0F0_1357_9BDF);
}
