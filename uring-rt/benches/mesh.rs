//! Mesh benchmarks between two threads, without MSG_RING: the wake is
//! `Thread::unpark` (sticky, like MSG_RING or an eventfd), given only when
//! `push` answers `Ok(true)`.
//!
//! * `mesh/throughput/batched`: push 64, then wake once (a worker's loop turn).
//! * `mesh/throughput/unbatched`: push one, wake if needed, repeat.
//! * `mesh/ping_pong`: round trip of one message there and back, both sides
//!   spinning on `drain` (the ring's own latency, no sleeping).
//!
//! Messages are 32 bytes, about a forwarded request.
//!
//! The byte mesh (`uring_rt::mesh::bytes`), records of 64 B, 1 KiB and 4 KiB
//! on the request lane, default rings (256 KiB per lane and pair):
//!
//! * `byte_mesh/throughput/batched/N`: as above, 64 records per wake; the
//!   producer writes every byte in place (`push_with` + `fill`), the consumer
//!   reads the first and last byte of each record.
//! * `byte_mesh/ping_pong/N`: a record there and an echo of it back
//!   (`push` copies it), both sides spinning.
//!
//! Criterion's time per iteration is the time per message; its throughput
//! line is messages/s. Run with `cargo bench -p uring-rt --bench mesh` (add
//! `-- byte_mesh` for the byte mesh only) on a quiet machine.

// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use uring_rt::mesh::bytes::{ByteMesh, ByteMeshConfig, ByteMeshEnd, Lane, PushError};
use uring_rt::mesh::{Mesh, MeshEnd};

type Msg = [u64; 4];

const CAPACITY: usize = 4096;

/// The consuming end of a mesh under test.
trait Consumer: Send + 'static {
    /// Take every message or record waiting (looking at each); how many.
    fn take_all(&mut self) -> u64;
    /// More are queued than the last drain took.
    fn has_backlog(&self) -> bool;
}

impl Consumer for MeshEnd<Msg> {
    fn take_all(&mut self) -> u64 {
        self.drain(|_, m| {
            black_box(m);
        }) as u64
    }
    fn has_backlog(&self) -> bool {
        MeshEnd::has_backlog(self)
    }
}

impl Consumer for ByteMeshEnd {
    fn take_all(&mut self) -> u64 {
        self.rx.drain(|_, _, r| {
            black_box((r[0], r[r.len() - 1]));
        }) as u64
    }
    fn has_backlog(&self) -> bool {
        self.rx.has_backlog()
    }
}

/// Send `iters` items to a thread draining `rx`, in bursts of `batch`, and
/// wake it (`unpark`) once per burst when a push answered that it must be
/// woken; returns the time until it has seen them all. `push(n)` queues
/// item `n`: `Some(wake)`, or `None` when the ring is full, and the
/// producer then wakes the consumer if it owes a wake and spins for room (a
/// worker would keep the item back and wait for a space-freed wake).
fn burst_throughput(
    iters: u64,
    batch: u64,
    mut rx: impl Consumer,
    mut push: impl FnMut(u64) -> Option<bool>,
) -> Duration {
    let consumer = thread::spawn(move || {
        let mut got = 0_u64;
        while got < iters {
            got += rx.take_all();
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
            if let Some(empty) = push(sent) {
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

/// Send `iters` messages from worker 0 to worker 1 in bursts of `batch`;
/// returns the time until the consumer has seen them all.
fn throughput(iters: u64, batch: u64) -> Duration {
    let mut ends = Mesh::<Msg>::new(2, CAPACITY).into_iter();
    let (mut tx, rx) = (ends.next().unwrap(), ends.next().unwrap());
    burst_throughput(iters, batch, rx, |n| tx.push(1, [n; 4]).ok())
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

/// A benchmark group of 20 samples over 3 s.
fn quick_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group
}

fn mesh(c: &mut Criterion) {
    let mut group = quick_group(c, "mesh/throughput");
    group.throughput(Throughput::Elements(1));
    group.bench_function("batched", |bench| {
        bench.iter_custom(|iters| throughput(iters, 64));
    });
    group.bench_function("unbatched", |bench| {
        bench.iter_custom(|iters| throughput(iters, 1));
    });
    group.finish();

    let mut group = quick_group(c, "mesh");
    group.bench_function("ping_pong", |bench| {
        bench.iter_custom(ping_pong);
    });
    group.finish();
}

/// Worker 0 and 1 of a two-worker byte mesh with default sizes.
fn byte_pair() -> (ByteMeshEnd, ByteMeshEnd) {
    let cfg = ByteMeshConfig {
        workers: 2,
        ..ByteMeshConfig::default()
    };
    let mut ends = ByteMesh::new(&cfg).into_iter();
    (ends.next().unwrap(), ends.next().unwrap())
}

/// Send `iters` records of `len` bytes from worker 0 to worker 1 in bursts
/// of `batch`; returns the time until the consumer has seen them all.
fn byte_throughput(iters: u64, batch: u64, len: usize) -> Duration {
    let (mut tx, rx) = byte_pair();
    burst_throughput(iters, batch, rx, |n| {
        let result = tx.tx.push_with(1, Lane::Request, len, |buf| {
            buf.fill(n as u8);
            len
        });
        match result {
            Ok(empty) => Some(empty),
            Err(PushError::Full) => None,
            Err(PushError::TooLarge) => unreachable!(),
        }
    })
}

/// `iters` round trips of a `len`-byte record 0 → 1 → 0, both sides spinning.
fn byte_ping_pong(iters: u64, len: usize) -> Duration {
    let (mut a, mut b) = byte_pair();
    let echo = thread::spawn(move || {
        let mut record = vec![0_u8; len];
        loop {
            let mut got = false;
            b.rx.drain(|_, _, r| {
                record.copy_from_slice(r);
                got = true;
            });
            if got {
                if record[0] == u8::MAX {
                    return;
                }
                while b.tx.push(0, Lane::Reply, &record).is_err() {
                    std::hint::spin_loop();
                }
            } else {
                std::hint::spin_loop();
            }
        }
    });
    let mut record = vec![0_u8; len];
    let start = Instant::now();
    for i in 0..iters {
        record[0] = (i % 255) as u8;
        a.tx.push(1, Lane::Request, &record).unwrap();
        let mut back = false;
        while !back {
            a.rx.drain(|_, _, r| {
                black_box(r);
                back = true;
            });
        }
    }
    let elapsed = start.elapsed();
    record[0] = u8::MAX;
    a.tx.push(1, Lane::Request, &record).unwrap();
    echo.join().unwrap();
    elapsed
}

fn byte_mesh(c: &mut Criterion) {
    let mut group = quick_group(c, "byte_mesh/throughput/batched");
    group.throughput(Throughput::Elements(1));
    for len in [64, 1024, 4096] {
        group.bench_function(len.to_string(), |bench| {
            bench.iter_custom(|iters| byte_throughput(iters, 64, len));
        });
    }
    group.finish();

    let mut group = quick_group(c, "byte_mesh/ping_pong");
    for len in [64, 1024, 4096] {
        group.bench_function(len.to_string(), |bench| {
            bench.iter_custom(|iters| byte_ping_pong(iters, len));
        });
    }
    group.finish();
}

criterion_group!(benches, mesh, byte_mesh);
criterion_main!(benches);
