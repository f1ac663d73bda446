//! Swarm benchmarks: one announce with peer selection (numwant 50) in a
//! torrent of 1, 10, 1,000 and 100,000 IPv4 peers, as a leecher and as a
//! seeder; and a scrape. `cargo bench -p riptide-common --bench swarm`.

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::SmallRng, SeedableRng};
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

criterion_group!(benches, announce);
criterion_main!(benches);
