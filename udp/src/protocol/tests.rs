//! Protocol tests: hand-built byte vectors, round trips, no panics.

use proptest::prelude::*;
use riptide_common::{InfoHash, PeerId};

use super::*;

/// Hex (whitespace ignored) to bytes.
fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const CONNECT: &str = "00000417 27101980 00000000 deadbeef";

/// A 98-byte announce body, hand-written field by field.
fn announce_98() -> Vec<u8> {
    hex(concat!(
        "0102030405060708",                         // connection id
        "00000001",                                 // action announce
        "0000002a",                                 // transaction id 42
        "1111111111111111111111111111111111111111", // info hash
        "2d7142343635302d6162636465666768696a6b6c", // peer id "-qB4650-abcdefghijkl"
        "0000000000000100",                         // downloaded 256
        "0000000000001000",                         // left 4096
        "0000000000000010",                         // uploaded 16
        "00000002",                                 // event started
        "00000000",                                 // ip
        "cafebabe",                                 // key
        "ffffffff",                                 // num_want -1
        "1ae1",                                     // port 6881
    ))
}

#[test]
fn connect_request_vector() {
    let b = hex(CONNECT);
    assert_eq!(
        parse_request(&b),
        Ok(Request::Connect(ConnectRequest {
            transaction_id: TransactionId(0xdead_beef_u32 as i32)
        }))
    );
    // Trailing bytes are accepted.
    let mut long = b.clone();
    long.extend_from_slice(&[0; 8]);
    assert!(matches!(parse_request(&long), Ok(Request::Connect(_))));
    // Wrong protocol id: unanswerable.
    let mut bad = b.clone();
    bad[7] ^= 1;
    assert_eq!(parse_request(&bad), Err(ParseError::Unsendable));
    // Written back identically.
    let mut out = [0u8; 16];
    assert_eq!(
        ConnectRequest {
            transaction_id: TransactionId(0xdead_beef_u32 as i32)
        }
        .write(&mut out),
        Ok(16)
    );
    assert_eq!(&out[..], &b[..]);
    assert_eq!(
        ConnectRequest {
            transaction_id: TransactionId(1)
        }
        .write(&mut [0; 15]),
        Err(BufferTooSmall)
    );
}

#[test]
fn announce_request_vector() {
    let b = announce_98();
    assert_eq!(b.len(), 98);
    let Ok(Request::Announce(a)) = parse_request(&b) else {
        panic!("not an announce")
    };
    assert_eq!(a.connection_id, ConnectionId(0x0102_0304_0506_0708));
    assert_eq!(a.transaction_id, TransactionId(42));
    assert_eq!(a.info_hash, InfoHash([0x11; 20]));
    assert_eq!(&a.peer_id.0, b"-qB4650-abcdefghijkl");
    assert_eq!((a.downloaded, a.left, a.uploaded), (256, 4096, 16));
    assert_eq!(a.event, AnnounceEvent::Started);
    assert_eq!(
        (a.ip, a.key, a.num_want, a.port),
        (0, 0xcafe_babe, -1, 6881)
    );
    assert!(a.options.is_empty());
    assert_eq!(a.url_data().count(), 0);
    let mut out = [0u8; 200];
    assert_eq!(a.write(&mut out), Ok(98));
    assert_eq!(&out[..98], &b[..]);
    assert_eq!(a.write(&mut out[..97]), Err(BufferTooSmall));
    // One byte short: answerable error, not a panic.
    assert_eq!(
        parse_request(&b[..97]),
        Err(ParseError::Sendable {
            transaction_id: TransactionId(42),
            reason: "announce request too short"
        })
    );
}

#[test]
fn peek_reads_what_the_look_ahead_needs() {
    let mut b = announce_98();
    let leecher = Peek {
        info_hash: InfoHash([0x11; 20]),
        port: 6881,
        seeder: false,
    };
    assert_eq!(peek_announce(&b), Some(leecher));
    b[64..72].fill(0); // left 0
    let seeder = Peek {
        seeder: true,
        ..leecher
    };
    assert_eq!(peek_announce(&b), Some(seeder));
    assert_eq!(peek_announce(&b[..97]), None, "too short");
    b[11] = 2; // a scrape
    assert_eq!(peek_announce(&b), None);
}

#[test]
fn libtorrent_style_announce_with_url_data_109_bytes() {
    let mut b = announce_98();
    b.extend_from_slice(&[0x02, 0x09]);
    b.extend_from_slice(b"/announce");
    assert_eq!(b.len(), 109);
    let Ok(Request::Announce(a)) = parse_request(&b) else {
        panic!("not an announce")
    };
    assert_eq!(a.options, &hex("02 09 2f616e6e6f756e6365")[..]);
    assert_eq!(a.url_data().collect::<Vec<_>>(), [b"/announce"]);
    let mut out = [0u8; 200];
    assert_eq!(a.write(&mut out), Ok(109));
    assert_eq!(&out[..109], &b[..]);
}

#[test]
fn aria2_style_announce_with_two_trailing_zeros_100_bytes() {
    let mut b = announce_98();
    b.extend_from_slice(&[0, 0]);
    let Ok(Request::Announce(a)) = parse_request(&b) else {
        panic!("not an announce")
    };
    assert_eq!(a.port, 6881);
    assert_eq!(a.options, &[0, 0]);
    assert_eq!(a.url_data().count(), 0);
}

#[test]
fn url_data_walk() {
    let mk = |opts: &[u8]| {
        let mut b = announce_98();
        b.extend_from_slice(opts);
        b
    };
    let segs = |b: &[u8]| match parse_request(b) {
        Ok(Request::Announce(a)) => a.url_data().map(<[u8]>::to_vec).collect::<Vec<_>>(),
        _ => panic!("not an announce"),
    };
    // NOPs skipped, segments concatenate, end stops.
    let b = mk(&[
        1, 2, 3, b'/', b'a', b'n', 1, 1, 2, 2, b'?', b'x', 0, 2, 1, b'z',
    ]);
    assert_eq!(segs(&b), [b"/an".to_vec(), b"?x".to_vec()]);
    // Unknown type stops the walk.
    assert_eq!(segs(&mk(&[2, 1, b'a', 7, 2, 1, b'b'])), [b"a".to_vec()]);
    // Truncated option: stop, no panic.
    assert_eq!(segs(&mk(&[2, 1, b'a', 2, 5, b'b'])), [b"a".to_vec()]);
    assert_eq!(segs(&mk(&[2])), Vec::<Vec<u8>>::new());
    // Zero-length segment is a segment.
    assert_eq!(
        segs(&mk(&[2, 0, 2, 1, b'q'])),
        [b"".to_vec(), b"q".to_vec()]
    );
}

#[test]
fn unknown_events_tolerated() {
    let mut b = announce_98();
    b[80..84].copy_from_slice(&9u32.to_be_bytes());
    let Ok(Request::Announce(a)) = parse_request(&b) else {
        panic!("not an announce")
    };
    assert_eq!(a.event, AnnounceEvent::Other(9));
    assert_eq!(
        riptide_common::swarm::Event::from(a.event),
        riptide_common::swarm::Event::None
    );
    for v in 0..5 {
        assert_eq!(AnnounceEvent::from_u32(v).to_u32(), v);
    }
}

fn scrape_bytes(n: usize) -> Vec<u8> {
    let mut b = hex("0102030405060708 00000002 00000007");
    for i in 0..n {
        b.extend_from_slice(&[i as u8; 20]);
    }
    b
}

#[test]
fn scrape_request_vectors() {
    let b = scrape_bytes(1);
    assert_eq!(b.len(), 36);
    let Ok(Request::Scrape(s)) = parse_request(&b) else {
        panic!("not a scrape")
    };
    assert_eq!(
        (s.connection_id, s.transaction_id, s.len()),
        (ConnectionId(0x0102_0304_0506_0708), TransactionId(7), 1)
    );
    assert_eq!(s.info_hashes().collect::<Vec<_>>(), [InfoHash([0; 20])]);
    assert!(!s.is_empty());

    let b = scrape_bytes(MAX_SCRAPE_HASHES);
    let Ok(Request::Scrape(s)) = parse_request(&b) else {
        panic!("not a scrape")
    };
    assert_eq!(s.info_hashes().len(), 74);
    assert_eq!(s.info_hashes().last(), Some(InfoHash([73; 20])));
    let mut out = vec![0u8; 2000];
    assert_eq!(s.write_to(&mut out), Ok(b.len()));
    assert_eq!(&out[..b.len()], &b[..]);

    let sendable = |reason| {
        Err(ParseError::Sendable {
            transaction_id: TransactionId(7),
            reason,
        })
    };
    assert_eq!(
        parse_request(&scrape_bytes(0)),
        sendable("full scrape is not supported")
    );
    assert_eq!(
        parse_request(&scrape_bytes(75)),
        sendable("too many info hashes in scrape (at most 74)")
    );
    // Client-side writer.
    let hashes = [InfoHash([0; 20]), InfoHash([1; 20])];
    assert_eq!(
        ScrapeRequest::write(
            &mut out,
            ConnectionId(0x0102_0304_0506_0708),
            TransactionId(7),
            &hashes
        ),
        Ok(56)
    );
    assert_eq!(&out[..56], &scrape_bytes(2)[..]);
    assert_eq!(
        ScrapeRequest::write(&mut out[..55], ConnectionId(0), TransactionId(0), &hashes),
        Err(BufferTooSmall)
    );
    assert!(ScrapeRequest::from_hash_bytes(ConnectionId(0), TransactionId(0), &[0; 40]).is_some());
    assert!(ScrapeRequest::from_hash_bytes(ConnectionId(0), TransactionId(0), &[0; 39]).is_none());
    assert!(ScrapeRequest::from_hash_bytes(ConnectionId(0), TransactionId(0), &[]).is_none());
}

/// BEP 15: a scrape is exactly `16 + 20·n` bytes. Stray bytes after the
/// hashes (a partial hash) are refused, answerable with the transaction id;
/// only announces tolerate trailing bytes (BEP 41 options).
#[test]
fn scrape_with_stray_bytes_is_refused() {
    let partial = Err(ParseError::Sendable {
        transaction_id: TransactionId(7),
        reason: "scrape info hashes are not a multiple of 20 bytes",
    });
    // 16-byte header + one hash + 10 stray bytes.
    let mut b = scrape_bytes(1);
    b.extend_from_slice(&[9; 10]);
    assert_eq!(b.len(), 46);
    assert_eq!(parse_request(&b), partial);
    assert!(matches!(parse_request(&b[..36]), Ok(Request::Scrape(s)) if s.len() == 1));
    for n in [1, 2, MAX_SCRAPE_HASHES] {
        for stray in 1..20 {
            let mut b = scrape_bytes(n);
            b.extend_from_slice(&vec![9; stray]);
            assert_eq!(parse_request(&b), partial, "{n} hashes + {stray} bytes");
        }
    }
    // A lone partial hash is malformed too, not a full scrape.
    assert_eq!(parse_request(&scrape_bytes(1)[..16 + 19]), partial);
    // Every length from the header to 75 hashes: only 16 + 20·n parses.
    let all = scrape_bytes(75);
    for len in 16..=all.len() {
        let whole = (len - 16) % 20 == 0 && (1..=MAX_SCRAPE_HASHES).contains(&((len - 16) / 20));
        assert_eq!(parse_request(&all[..len]).is_ok(), whole, "length {len}");
    }
}

#[test]
fn short_and_unknown() {
    for n in 0..16 {
        assert_eq!(
            parse_request(&announce_98()[..n]),
            Err(ParseError::Unsendable)
        );
    }
    let b = hex("0102030405060708 00000004 00000009");
    assert_eq!(
        parse_request(&b),
        Err(ParseError::Sendable {
            transaction_id: TransactionId(9),
            reason: "unknown action"
        })
    );
    let b = hex("0102030405060708 ffffffff 00000009");
    assert!(matches!(
        parse_request(&b),
        Err(ParseError::Sendable { .. })
    ));
}

#[test]
fn connect_response_vector() {
    let mut out = [0u8; 64];
    let n = write_connect(
        &mut out,
        TransactionId(0xdead_beef_u32 as i32),
        ConnectionId(0x1122_3344_5566_7788),
    );
    assert_eq!(&out[..n], &hex("00000000 deadbeef 1122334455667788")[..]);
    assert_eq!(
        write_connect(&mut out[..15], TransactionId(1), ConnectionId(1)),
        0
    );
    assert_eq!(
        parse_response(&out[..n], false),
        Ok(Response::Connect {
            transaction_id: TransactionId(0xdead_beef_u32 as i32),
            connection_id: ConnectionId(0x1122_3344_5566_7788)
        })
    );
}

#[test]
fn announce_response_vectors() {
    let peers = [
        PeerV4 {
            ip: [10, 0, 0, 1],
            port: 6881,
        },
        PeerV4 {
            ip: [192, 168, 1, 2],
            port: 0xfffe,
        },
    ];
    let mut out = [0u8; 64];
    let n = write_announce_v4(&mut out, TransactionId(5), 1800, 3, 2, &peers);
    assert_eq!(
        &out[..n],
        &hex("00000001 00000005 00000708 00000003 00000002 0a000001 1ae1 c0a80102 fffe")[..]
    );
    let Ok(Response::Announce(a)) = parse_response(&out[..n], false) else {
        panic!()
    };
    assert_eq!(
        (a.transaction_id, a.interval, a.leechers, a.seeders),
        (TransactionId(5), 1800, 3, 2)
    );
    assert_eq!(a.peers_v4().collect::<Vec<_>>(), peers);
    assert_eq!(a.peers_v6().len(), 0);
    // Peers are truncated to what fits; no room for the header: 0.
    assert_eq!(
        write_announce_v4(&mut out[..31], TransactionId(5), 1800, 3, 2, &peers),
        26
    );
    assert_eq!(
        write_announce_v4(&mut out[..20], TransactionId(5), 1800, 3, 2, &peers),
        20
    );
    assert_eq!(
        write_announce_v4(&mut out[..19], TransactionId(5), 1800, 3, 2, &peers),
        0
    );

    let p6 = [PeerV6 {
        ip: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        port: 51413,
    }];
    let n = write_announce_v6(&mut out, TransactionId(-1), 60, 0, 1, &p6);
    assert_eq!(
        &out[..n],
        &hex("00000001 ffffffff 0000003c 00000000 00000001 20010db8000000000000000000000001 c8d5")
            [..]
    );
    let Ok(Response::Announce(a)) = parse_response(&out[..n], true) else {
        panic!()
    };
    assert_eq!(a.peers_v6().collect::<Vec<_>>(), p6);
    assert_eq!(a.peer_count(), 1);
    assert_eq!(
        write_announce_v6(&mut out[..37], TransactionId(5), 1, 1, 1, &p6),
        20
    );
}

#[test]
fn scrape_and_error_response_vectors() {
    let stats = [
        ScrapeStats {
            seeders: 1,
            completed: 2,
            leechers: 3,
        },
        ScrapeStats {
            seeders: u32::MAX,
            completed: 0,
            leechers: 0x7fff_ffff,
        },
    ];
    let mut out = [0u8; 64];
    let n = write_scrape(&mut out, TransactionId(8), stats.iter().copied());
    assert_eq!(
        &out[..n],
        &hex("00000002 00000008 00000001 00000002 00000003 7fffffff 00000000 7fffffff")[..]
    );
    let Ok(Response::Scrape {
        transaction_id,
        stats: raw,
    }) = parse_response(&out[..n], false)
    else {
        panic!()
    };
    assert_eq!(transaction_id, TransactionId(8));
    let back: Vec<_> = scrape_stats(raw).collect();
    assert_eq!(back[0], stats[0]);
    assert_eq!(back[1].seeders, 0x7fff_ffff, "saturated to the wire's i32");
    assert_eq!(
        write_scrape(&mut out[..19], TransactionId(8), stats.iter().copied()),
        8
    );
    assert_eq!(
        write_scrape(&mut out[..7], TransactionId(8), stats.iter().copied()),
        0
    );

    let n = write_error(&mut out, TransactionId(3), b"full scrape is not supported");
    let mut expect = hex("00000003 00000003");
    expect.extend_from_slice(b"full scrape is not supported");
    assert_eq!(&out[..n], &expect[..]);
    assert_eq!(
        parse_response(&out[..n], false),
        Ok(Response::Error {
            transaction_id: TransactionId(3),
            message: b"full scrape is not supported"
        })
    );
    assert_eq!(write_error(&mut out[..10], TransactionId(3), b"abcdef"), 10);
    assert_eq!(&out[8..10], b"ab");
    assert_eq!(write_error(&mut out[..7], TransactionId(3), b"x"), 0);
    assert_eq!(
        parse_response(&hex("00000009 00000000"), false),
        Err(ResponseError::UnknownAction(9))
    );
    assert_eq!(
        parse_response(&hex("00000001 00000000 0000"), false),
        Err(ResponseError::TooShort)
    );
}

// ---- property tests ----

fn arb_hash() -> impl Strategy<Value = [u8; 20]> {
    prop::array::uniform20(any::<u8>())
}

fn arb_event() -> impl Strategy<Value = AnnounceEvent> {
    any::<u32>().prop_map(AnnounceEvent::from_u32)
}

prop_compose! {
    fn arb_announce()(
        cid in any::<i64>(), tid in any::<i32>(), ih in arb_hash(), pid in arb_hash(),
        downloaded in any::<i64>(), left in any::<i64>(), uploaded in any::<i64>(),
        event in arb_event(), ip in any::<u32>(), key in any::<u32>(), num_want in any::<i32>(),
        port in any::<u16>(), options in prop::collection::vec(any::<u8>(), 0..64),
    ) -> (AnnounceRequest<'static>, Vec<u8>) {
        (AnnounceRequest {
            connection_id: ConnectionId(cid), transaction_id: TransactionId(tid),
            info_hash: InfoHash(ih), peer_id: PeerId(pid), downloaded, left, uploaded, event, ip, key,
            num_want, port, options: &[],
        }, options)
    }
}

proptest! {
    #[test]
    fn announce_request_round_trip((a, options) in arb_announce()) {
        let a = AnnounceRequest { options: &options, ..a };
        let mut buf = [0u8; 256];
        let n = a.write(&mut buf).unwrap();
        prop_assert_eq!(parse_request(&buf[..n]), Ok(Request::Announce(a)));
    }

    #[test]
    fn connect_request_round_trip(tid in any::<i32>()) {
        let r = Request::Connect(ConnectRequest { transaction_id: TransactionId(tid) });
        let mut buf = [0u8; 16];
        let n = r.write(&mut buf).unwrap();
        prop_assert_eq!(parse_request(&buf[..n]), Ok(r));
    }

    #[test]
    fn scrape_request_round_trip(cid in any::<i64>(), tid in any::<i32>(), hashes in prop::collection::vec(arb_hash(), 1..=74)) {
        let hashes: Vec<InfoHash> = hashes.into_iter().map(InfoHash).collect();
        let mut buf = [0u8; 16 + 20 * 74];
        let n = ScrapeRequest::write(&mut buf, ConnectionId(cid), TransactionId(tid), &hashes).unwrap();
        let Ok(Request::Scrape(s)) = parse_request(&buf[..n]) else { return Err(TestCaseError::fail("not a scrape")) };
        prop_assert_eq!((s.connection_id, s.transaction_id), (ConnectionId(cid), TransactionId(tid)));
        prop_assert_eq!(s.info_hashes().collect::<Vec<_>>(), hashes);
    }

    #[test]
    fn announce_response_round_trip(
        tid in any::<i32>(), interval in any::<i32>(), leechers in any::<i32>(), seeders in any::<i32>(),
        p4 in prop::collection::vec((any::<[u8; 4]>(), any::<u16>()), 0..80),
        p6 in prop::collection::vec((any::<[u8; 16]>(), any::<u16>()), 0..30),
        room in 0usize..1500,
    ) {
        let p4: Vec<PeerV4> = p4.into_iter().map(|(ip, port)| PeerV4 { ip, port }).collect();
        let p6: Vec<PeerV6> = p6.into_iter().map(|(ip, port)| PeerV6 { ip, port }).collect();
        let mut buf = vec![0u8; room];
        let n = write_announce_v4(&mut buf, TransactionId(tid), interval, leechers, seeders, &p4);
        if room < 20 {
            prop_assert_eq!(n, 0);
        } else {
            let fit = ((room - 20) / 6).min(p4.len());
            prop_assert_eq!(n, 20 + 6 * fit);
            let Ok(Response::Announce(a)) = parse_response(&buf[..n], false) else { return Err(TestCaseError::fail("parse")) };
            prop_assert_eq!((a.transaction_id, a.interval, a.leechers, a.seeders), (TransactionId(tid), interval, leechers, seeders));
            prop_assert_eq!(a.peers_v4().collect::<Vec<_>>(), &p4[..fit]);
            let mut again = vec![0u8; n];
            prop_assert_eq!(Response::Announce(a).write(&mut again), Ok(n));
            prop_assert_eq!(&again[..], &buf[..n]);
        }
        let n = write_announce_v6(&mut buf, TransactionId(tid), interval, leechers, seeders, &p6);
        if room >= 20 {
            let fit = ((room - 20) / 18).min(p6.len());
            let Ok(Response::Announce(a)) = parse_response(&buf[..n], true) else { return Err(TestCaseError::fail("parse")) };
            prop_assert_eq!(a.peers_v6().collect::<Vec<_>>(), &p6[..fit]);
        }
    }

    #[test]
    fn scrape_and_error_response_round_trip(
        tid in any::<i32>(),
        stats in prop::collection::vec((0..=i32::MAX as u32, 0..=i32::MAX as u32, 0..=i32::MAX as u32), 0..80),
        msg in prop::collection::vec(any::<u8>(), 0..100),
        cid in any::<i64>(),
    ) {
        let stats: Vec<ScrapeStats> = stats.into_iter().map(|(seeders, completed, leechers)| ScrapeStats { seeders, completed, leechers }).collect();
        let mut buf = [0u8; 1500];
        let n = write_scrape(&mut buf, TransactionId(tid), stats.iter().copied());
        let Ok(Response::Scrape { transaction_id, stats: raw }) = parse_response(&buf[..n], false) else { return Err(TestCaseError::fail("parse")) };
        prop_assert_eq!(transaction_id, TransactionId(tid));
        prop_assert_eq!(scrape_stats(raw).collect::<Vec<_>>(), stats);
        let n = write_error(&mut buf, TransactionId(tid), &msg);
        prop_assert_eq!(parse_response(&buf[..n], false), Ok(Response::Error { transaction_id: TransactionId(tid), message: &msg }));
        let n = write_connect(&mut buf, TransactionId(tid), ConnectionId(cid));
        prop_assert_eq!(parse_response(&buf[..n], false), Ok(Response::Connect { transaction_id: TransactionId(tid), connection_id: ConnectionId(cid) }));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=300)) {
        exercise(&bytes);
    }
}

/// Parse `bytes` every way and walk everything parsed.
fn exercise(bytes: &[u8]) {
    match parse_request(bytes) {
        Ok(Request::Announce(a)) => {
            assert!(bytes.len() >= 98);
            for seg in a.url_data() {
                assert!(seg.len() <= a.options.len());
            }
        }
        Ok(Request::Scrape(s)) => {
            assert!((1..=74).contains(&s.info_hashes().len()));
            assert_eq!(s.info_hashes().count(), s.len());
            assert_eq!(
                bytes.len(),
                16 + 20 * s.len(),
                "a scrape is 16 + 20·n bytes"
            );
        }
        Ok(Request::Connect(_)) | Err(ParseError::Sendable { .. }) => assert!(bytes.len() >= 16),
        Err(ParseError::Unsendable) => {}
    }
    for ipv6 in [false, true] {
        match parse_response(bytes, ipv6) {
            Ok(Response::Announce(a)) => {
                let _ = a.peers_v4().count() + a.peers_v6().count();
            }
            Ok(Response::Scrape { stats, .. }) => {
                let _ = scrape_stats(stats).count();
            }
            Ok(_) | Err(_) => {}
        }
    }
}

#[test]
fn every_length_of_random_and_truncated_packets() {
    use rand::{rngs::SmallRng, RngCore, SeedableRng};
    let mut rng = SmallRng::seed_from_u64(15);
    let mut valid = vec![
        hex(CONNECT),
        announce_98(),
        scrape_bytes(1),
        scrape_bytes(74),
        scrape_bytes(80),
    ];
    let mut lt = announce_98();
    lt.extend_from_slice(&[1, 2, 9]);
    lt.extend_from_slice(b"/announce?a=b");
    lt.extend_from_slice(&[2, 200, 1]);
    valid.push(lt);
    let mut buf = [0u8; 1500];
    let n = write_announce_v4(
        &mut buf,
        TransactionId(1),
        1,
        1,
        1,
        &[PeerV4::default(); 30],
    );
    valid.push(buf[..n].to_vec());
    let n = write_announce_v6(
        &mut buf,
        TransactionId(1),
        1,
        1,
        1,
        &[PeerV6::default(); 12],
    );
    valid.push(buf[..n].to_vec());
    let n = write_scrape(
        &mut buf,
        TransactionId(1),
        std::iter::repeat_n(ScrapeStats::default(), 20),
    );
    valid.push(buf[..n].to_vec());
    for len in 0..=300 {
        for _ in 0..20 {
            let mut b = vec![0u8; len];
            rng.fill_bytes(&mut b);
            exercise(&b);
            // Random bodies behind each valid action header.
            for action in 0..4u8 {
                if len >= 12 {
                    b[8..12].copy_from_slice(&[0, 0, 0, action]);
                    exercise(&b);
                }
                if len >= 4 {
                    b[..4].copy_from_slice(&[0, 0, 0, action]);
                    exercise(&b);
                }
            }
        }
        for v in &valid {
            exercise(&v[..len.min(v.len())]);
            let mut padded = v.clone();
            padded.resize(len.max(v.len()), 0xff);
            exercise(&padded);
        }
    }
}
