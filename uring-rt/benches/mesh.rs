//! Mesh benchmarks between two threads, without MSG_RING: the wake is
//! `Thread::unpark` (sticky, like MSG_RING or an eventfd), given only when
//! `push` answers `Ok(true)`.
//!
//! * `mesh/throughput/batched`: push 64, then wake once (a worker's loop turn).
//! * `mesh/throughput/unbatched`: push one, wake if needed, repeat.
//! * `mesh/ping_pong`: round trip of one message there and back, both sides
//!   spinning on `drain` (the ring's own latency, no sleeping).
//!
//! Messages are 32 bytes, about a forwarded request. Run with
//! `cargo bench -p uring-rt --bench mesh` on a quiet machine.

// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use uring_rt::mesh::Mesh;

type Msg = [u64; 4];

const CAPACITY: usize = 4096;

/// Send `iters` messages from worker 0 to worker 1 in bursts of `batch`;
/// returns the time until the consumer has seen them all.
fn throughput(iters: u64, batch: u64) -> Duration {
    let mut ends = Mesh::<Msg>::new(2, CAPACITY).into_iter();
    let (mut tx, mut rx) = (ends.next().unwrap(), ends.next().unwrap());
    let consumer = thread::spawn(move || {
        let mut got = 0_u64;
        while got < iters {
            got += rx.drain(|_, m| {
                black_box(m);
            }) as u64;
            if got < iters && !rx.has_backlog() {
                thread::park();
            }
        }
    });
    let waker = consumer.thread().clone();
    let start = Instant::now();
    let mut sent = 0_u64;
    while sent < iters {
        let end = (sent + batch).min(iters);
        let mut wake = false;
        while sent < end {
            if let Ok(empty) = tx.push(1, [sent; 4]) {
                wake |= empty;
                sent += 1;
            } else {
                // Full: hand over what we have, then wait for room.
                if wake {
                    waker.unpark();
                    wake = false;
                }
                std::hint::spin_loop();
            }
        }
        if wake {
            waker.unpark();
        }
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// `iters` round trips 0 → 1 → 0, both sides spinning.
fn ping_pong(iters: u64) -> Duration {
    let mut ends = Mesh::<Msg>::new(2, 64).into_iter();
    let (mut a, mut b) = (ends.next().unwrap(), ends.next().unwrap());
    let echo = thread::spawn(move || loop {
        let mut last = None;
        b.drain(|_, m| last = Some(m));
        if let Some(m) = last {
            if m[0] == u64::MAX {
                return;
            }
            while b.push(0, m).is_err() {
                std::hint::spin_loop();
            }
        } else {
            std::hint::spin_loop();
        }
    });
    let start = Instant::now();
    for i in 0..iters {
        a.push(1, [i; 4]).unwrap();
        let mut back = None;
        while back.is_none() {
            a.drain(|_, m| back = Some(m));
        }
        black_box(back);
    }
    let elapsed = start.elapsed();
    a.push(1, [u64::MAX; 4]).unwrap();
    echo.join().unwrap();
    elapsed
}

fn mesh(c: &mut Criterion) {
    let mut group = c.benchmark_group("mesh/throughput");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("batched", |bench| {
        bench.iter_custom(|iters| throughput(iters, 64));
    });
    group.bench_function("unbatched", |bench| {
        bench.iter_custom(|iters| throughput(iters, 1));
    });
    group.finish();

    let mut group = c.benchmark_group("mesh");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("ping_pong", |bench| {
        bench.iter_custom(ping_pong);
    });
    group.finish();
}

criterion_group!(benches, mesh);
criterion_main!(benches);
