//! Codec benchmarks: parse a realistic libtorrent announce head (HTTP
//! framing and query), write an announce response with 50 IPv4 peers
//! (compact, and non-compact), a 10-hash scrape response.
//! `cargo bench -p riptide-http --bench protocol`.

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riptide_common::InfoHash;
use riptide_http::protocol::{
    announce_response_max_len, parse_request, scrape_response_max_len, write_announce,
    write_scrape, AnnounceResponse, Connection, ParseConfig, PeerV4, Peers, ScrapeStats, Target,
};

const LIBTORRENT: &[u8] = b"GET /announce?info_hash=%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9A&peer_id=-LT2080-!aB3dE5fG7hI&port=6881&uploaded=0&downloaded=0&left=8388608&corrupt=0&key=A7C9FA57&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0 HTTP/1.1\r\nHost: 127.0.0.1:6969\r\nUser-Agent: libtorrent/2.0.8.0\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let cfg = ParseConfig {
        forwarded_header: Some("X-Forwarded-For"),
        ..ParseConfig::default()
    };
    g.bench_function("announce_libtorrent", |b| {
        b.iter(|| match parse_request(black_box(LIBTORRENT), &cfg) {
            Ok(r) => match r.target {
                Target::Announce(a) => usize::from(a.port) + r.head_len,
                _ => 0,
            },
            Err(_) => 1,
        });
    });
    // The same head with the path changed: HTTP framing and header checks
    // only (404 before any query parsing), to split the cost.
    let head_only = String::from_utf8(LIBTORRENT.to_vec())
        .expect("ascii")
        .replacen("/announce?", "/announcx?", 1);
    g.bench_function("head_only_libtorrent", |b| {
        b.iter(|| parse_request(black_box(head_only.as_bytes()), &cfg).is_err());
    });
    g.finish();
}

fn write(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    let peers: Vec<PeerV4> = (0..50u8)
        .map(|i| PeerV4 {
            ip: [10, 0, i, 1],
            port: 6881 + u16::from(i),
        })
        .collect();
    let resp = AnnounceResponse {
        interval: 1800,
        min_interval: 900,
        complete: 1234,
        incomplete: 5678,
        warning: None,
    };
    let mut out = vec![0u8; announce_response_max_len(50, false, 0)];
    g.bench_function("announce_50_compact", |b| {
        b.iter(|| {
            write_announce(
                &mut out,
                black_box(&resp),
                Peers::Compact {
                    v4: black_box(&peers),
                    v6: &[],
                },
                Connection::KeepAlive,
            )
        });
    });
    g.bench_function("announce_50_dicts", |b| {
        b.iter(|| {
            write_announce(
                &mut out,
                black_box(&resp),
                Peers::Dicts {
                    v4: black_box(&peers),
                    v6: &[],
                    peer_ids: None,
                },
                Connection::KeepAlive,
            )
        });
    });
    let mut files: Vec<(InfoHash, ScrapeStats)> = (0..10u8)
        .map(|i| {
            (
                InfoHash([i.wrapping_mul(37); 20]),
                ScrapeStats {
                    seeders: 10,
                    completed: 200,
                    leechers: 30,
                },
            )
        })
        .collect();
    let mut out = vec![0u8; scrape_response_max_len(10)];
    g.bench_function("scrape_10", |b| {
        b.iter(|| write_scrape(&mut out, black_box(&mut files), Connection::KeepAlive));
    });
    g.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
