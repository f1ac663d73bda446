//! Codec benchmarks: parse announce / scrape requests, write announce
//! (50 IPv4 peers) and scrape responses. `cargo bench -p riptide-udp --bench protocol`.

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riptide_common::{InfoHash, PeerId};
use riptide_udp::protocol::{
    parse_request, write_announce_v4, write_scrape, AnnounceEvent, AnnounceRequest, ConnectionId,
    PeerV4, Request, ScrapeRequest, ScrapeStats, TransactionId,
};

fn announce_bytes(options: &[u8]) -> Vec<u8> {
    let a = AnnounceRequest {
        connection_id: ConnectionId(0x0102_0304_0506_0708),
        transaction_id: TransactionId(42),
        info_hash: InfoHash([0x11; 20]),
        peer_id: PeerId(*b"-qB4650-abcdefghijkl"),
        downloaded: 256,
        left: 4096,
        uploaded: 16,
        event: AnnounceEvent::Started,
        ip: 0,
        key: 0xcafe_babe,
        num_want: -1,
        port: 6881,
        options,
    };
    let mut buf = vec![0u8; 256];
    let n = a.write(&mut buf).expect("fits");
    buf.truncate(n);
    buf
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let plain = announce_bytes(&[]);
    g.bench_function("announce_98", |b| {
        b.iter(|| match parse_request(black_box(&plain)) {
            Ok(Request::Announce(a)) => a.port,
            _ => 0,
        });
    });
    let opts = announce_bytes(b"\x02\x09/announce");
    g.bench_function("announce_109_url_data", |b| {
        b.iter(|| match parse_request(black_box(&opts)) {
            Ok(Request::Announce(a)) => a.url_data().map(<[u8]>::len).sum::<usize>(),
            _ => 0,
        });
    });
    for n in [1usize, 74] {
        let hashes: Vec<InfoHash> = (0..n).map(|i| InfoHash([i as u8; 20])).collect();
        let mut buf = vec![0u8; 16 + 20 * n];
        let len = ScrapeRequest::write(&mut buf, ConnectionId(1), TransactionId(2), &hashes)
            .expect("fits");
        g.bench_function(format!("scrape_{n}"), |b| {
            b.iter(|| match parse_request(black_box(&buf[..len])) {
                Ok(Request::Scrape(s)) => s.info_hashes().fold(0u8, |a, h| a ^ h.0[0]),
                _ => 0,
            });
        });
    }
    g.finish();
}

fn write(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    let peers: Vec<PeerV4> = (0..50u32)
        .map(|i| PeerV4 {
            ip: i.to_be_bytes(),
            port: 6881,
        })
        .collect();
    let mut out = [0u8; 1500];
    g.bench_function("announce_v4_50_peers", |b| {
        b.iter(|| {
            write_announce_v4(
                black_box(&mut out),
                TransactionId(1),
                1800,
                10,
                40,
                black_box(&peers),
            )
        });
    });
    let stats = [ScrapeStats {
        seeders: 5,
        completed: 9,
        leechers: 3,
    }; 74];
    g.bench_function("scrape_1", |b| {
        b.iter(|| {
            write_scrape(
                black_box(&mut out),
                TransactionId(1),
                black_box(&stats[..1]).iter().copied(),
            )
        });
    });
    g.bench_function("scrape_74", |b| {
        b.iter(|| {
            write_scrape(
                black_box(&mut out),
                TransactionId(1),
                black_box(&stats).iter().copied(),
            )
        });
    });
    g.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
