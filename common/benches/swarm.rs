//! Swarm benchmarks: one announce with peer selection (numwant 50) in a
//! torrent of 1, 10, 1,000 and 100,000 IPv4 peers, as a leecher and as a
//! seeder; a scrape; and announces spread over many torrents with a
//! Pareto popularity (`mixed`), where the cost is memory latency rather
//! than instructions. `cargo bench -p riptide-common --bench swarm`.

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use riptide_common::swarm::{Announce, Event, PeerV4, Shard};
use riptide_common::InfoHash;

const NOW: u32 = 1_000;

fn filled(peers: u32) -> Shard {
    let mut shard = Shard::new();
    let mut rng = SmallRng::seed_from_u64(1);
    let mut out = Vec::new();
    for i in 0..peers {
        let req = Announce {
            info_hash: InfoHash([7; 20]),
            addr: PeerV4 {
                ip: (i + 1).to_be_bytes(),
                port: 6881,
            },
            event: Event::Started,
            seeder: i % 2 == 0,
            numwant: 0,
        };
        shard.announce_v4(&req, NOW, &mut rng, &mut out);
    }
    shard
}

fn announce(c: &mut Criterion) {
    let mut g = c.benchmark_group("announce_v4");
    g.throughput(Throughput::Elements(1));
    for peers in [1u32, 10, 1_000, 100_000] {
        let mut shard = filled(peers);
        let mut rng = SmallRng::seed_from_u64(2);
        let mut out = Vec::with_capacity(50);
        for (name, seeder) in [("leecher", false), ("seeder", true)] {
            // A peer already in the swarm re-announcing (the common case):
            // lookup, in-place update, selection of up to 50 others.
            let req = Announce {
                info_hash: InfoHash([7; 20]),
                addr: PeerV4 {
                    ip: 1u32.to_be_bytes(),
                    port: 6881,
                },
                event: Event::None,
                seeder,
                numwant: 50,
            };
            g.bench_with_input(BenchmarkId::new(name, peers), &req, |b, req| {
                b.iter(|| {
                    let counts = shard.announce_v4(black_box(req), NOW, &mut rng, &mut out);
                    black_box((counts, out.len()))
                });
            });
        }
        g.bench_function(BenchmarkId::new("scrape", peers), |b| {
            b.iter(|| shard.scrape(black_box(&InfoHash([7; 20]))));
        });
    }
    g.finish();
}

/// Torrent `0..n`, Pareto(shape 1)-skewed like riptide-udp-load's default:
/// half the draws land in the first 1%.
fn pareto(rng: &mut SmallRng, n: u32) -> u32 {
    let u: f64 = rng.random();
    let x = (1.0 - u).powf(-1.0).min(101.0);
    (((x - 1.0) / 100.0) * f64::from(n - 1)) as u32
}

fn info_hash(t: u32) -> InfoHash {
    let mut h = [0u8; 20];
    for (k, chunk) in h.chunks_mut(4).enumerate() {
        let x = (u64::from(t) << 3 | k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&(x >> 32).to_be_bytes()[..4]);
    }
    InfoHash(h)
}

/// One announce of the mixed load: a random peer of `peers` (a fifth of
/// them seeding) to a Pareto-drawn torrent of `torrents`.
fn mixed_request(rng: &mut SmallRng, torrents: u32, peers: u32) -> Announce<PeerV4> {
    let p = rng.random_range(0..peers);
    Announce {
        info_hash: info_hash(pareto(rng, torrents)),
        addr: PeerV4 {
            ip: (0x0A00_0000 | p).to_be_bytes(),
            port: 6881,
        },
        event: Event::None,
        seeder: p % 5 == 0,
        numwant: 50,
    }
}

/// Announces over many torrents in steady state: `loadgen` is
/// riptide-udp-load's default shape (10,000 torrents, 1,000 peers), `large`
/// a working set far beyond the caches (100,000 torrents, 200,000 peers).
fn mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed");
    g.throughput(Throughput::Elements(1));
    for (name, torrents, peers) in [("loadgen", 10_000, 1_000), ("large", 100_000, 200_000)] {
        let mut shard = Shard::new();
        let mut rng = SmallRng::seed_from_u64(3);
        let mut out = Vec::with_capacity(50);
        for _ in 0..2_000_000 {
            shard.announce_v4(
                &mixed_request(&mut rng, torrents, peers),
                NOW,
                &mut rng,
                &mut out,
            );
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let req = mixed_request(&mut rng, torrents, peers);
                let counts = shard.announce_v4(black_box(&req), NOW, &mut rng, &mut out);
                black_box((counts, out.len()))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, announce, mixed);
criterion_main!(benches);
