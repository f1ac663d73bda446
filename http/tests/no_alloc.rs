//! No heap allocation per request in the protocol module: parsing real
//! client heads (announce, scrape, pipelined, rejected) and writing every
//! kind of response, with a counting global allocator (`stats_alloc`, so
//! this crate keeps `forbid(unsafe_code)`). The only test in this binary, so
//! no other test thread allocates during the measured region.

use std::alloc::System;

use riptide_common::{InfoHash, PeerId};
use riptide_http::protocol::{
    parse_request, write_announce, write_error, write_failure, write_scrape, AnnounceResponse,
    ParseConfig, PeerV4, PeerV6, Peers, ScrapeStats, Status, Target,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SAMPLES: [&[u8]; 8] = [
    include_bytes!("../fuzz/seeds/request/announce_libtorrent"),
    include_bytes!("../fuzz/seeds/request/announce_transmission"),
    include_bytes!("../fuzz/seeds/request/announce_aria2"),
    include_bytes!("../fuzz/seeds/request/announce_qbittorrent"),
    include_bytes!("../fuzz/seeds/request/announce_ctorrent"),
    include_bytes!("../fuzz/seeds/request/scrape_2"),
    include_bytes!("../fuzz/seeds/request/pipelined_keepalive_http10"),
    include_bytes!("../fuzz/seeds/request/smuggling_te_cl"),
];

#[test]
fn parsing_and_writing_do_not_allocate() {
    let cfg = ParseConfig {
        forwarded_header: Some("X-Forwarded-For"),
        ..ParseConfig::default()
    };
    let v4: Vec<PeerV4> = (0..50u8)
        .map(|i| PeerV4 {
            ip: [10, 0, 0, i],
            port: 6881,
        })
        .collect();
    let v6: Vec<PeerV6> = (0..50u8)
        .map(|i| PeerV6 {
            ip: [i; 16],
            port: 6881,
        })
        .collect();
    let ids = vec![PeerId([b'x'; 20]); 100];
    let mut files = [(InfoHash::default(), ScrapeStats::default()); 74];
    let mut out = vec![0u8; 64 * 1024];
    let resp = AnnounceResponse {
        interval: 1800,
        min_interval: 900,
        complete: 3,
        incomplete: 4,
        warning: Some(b"be nice"),
    };
    let compact = Peers::Compact { v4: &v4, v6: &v6 };
    let dicts = Peers::Dicts {
        v4: &v4,
        v6: &v6,
        peer_ids: Some(&ids),
    };

    // The counter is process-wide: the test harness's own thread can
    // allocate while a busy machine runs this (4 allocations once in CI).
    // An allocation of the code under test shows in every attempt.
    let (mut answered, mut change) = (0usize, None);
    for _attempt in 0..3 {
        let region = Region::new(GLOBAL);
        answered = 0;
        for _ in 0..50 {
            for sample in SAMPLES {
                let mut rest = sample;
                while !rest.is_empty() {
                    let Ok(r) = parse_request(rest, &cfg) else {
                        assert!(write_error(&mut out, Status::BadRequest).is_ok());
                        break;
                    };
                    rest = &rest[r.head_len..];
                    let n = match r.target {
                        Target::Announce(a) => {
                            let peers = if a.compact { compact } else { dicts };
                            write_announce(&mut out, &resp, peers, r.connection)
                        }
                        Target::Scrape(s) => {
                            let mut n = 0;
                            for (slot, h) in files.iter_mut().zip(s.info_hashes()) {
                                *slot = (h, ScrapeStats::default());
                                n += 1;
                            }
                            write_scrape(&mut out, &mut files[..n], r.connection)
                        }
                        Target::Failure(reason) => {
                            write_failure(&mut out, reason.as_bytes(), r.connection)
                        }
                    };
                    assert!(n.is_ok());
                    answered += 1;
                }
            }
        }
        let c = region.change();
        let clean = (c.allocations, c.reallocations) == (0, 0);
        change = Some(c);
        if clean {
            break;
        }
    }
    let change = change.expect("measured at least once");
    assert!(answered >= 50 * 8, "{answered}");
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "{change:?}"
    );
    // The counter is live: one box is one allocation.
    let region = Region::new(GLOBAL);
    let b = std::hint::black_box(Box::new(1u8));
    assert_eq!(region.change().allocations, 1);
    drop(b);
}
