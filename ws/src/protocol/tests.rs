//! Round trips across the modules: what the writers produce parses back
//! (with simd-json, and with our own parser where it is a client message)
//! to the same bytes.

use proptest::prelude::*;
use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::*;

fn json(bytes: &[u8]) -> BorrowedValue<'static> {
    let text = bytes.to_vec().leak();
    assert!(std::str::from_utf8(text).is_ok());
    simd_json::to_borrowed_value(text)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

fn latin1(v: &BorrowedValue<'_>) -> Vec<u8> {
    v.as_str()
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect()
}

fn all_bytes(offset: u8) -> [u8; 20] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(13).wrapping_add(offset))
}

/// Every byte value, in 13 hashes of 20 bytes.
fn hashes() -> Vec<[u8; 20]> {
    (0..13u8)
        .map(|k| std::array::from_fn(|i| (k as usize * 20 + i) as u8))
        .collect()
}

#[test]
fn announce_reply_round_trip() {
    for h in hashes() {
        let mut out = vec![0u8; announce_reply_max_len()];
        let n = write_announce_reply(&mut out, &InfoHash(h), 120, u32::MAX, 0);
        let v = json(&out[..n]);
        assert_eq!(v["action"].as_str(), Some("announce"));
        assert_eq!(v["interval"].as_u64(), Some(120));
        assert_eq!(v["complete"].as_u64(), Some(u64::from(u32::MAX)));
        assert_eq!(v["incomplete"].as_u64(), Some(0));
        assert_eq!(latin1(&v["info_hash"]), h);
    }
    // The worst case fits the promise.
    let mut out = vec![0u8; announce_reply_max_len()];
    let n = write_announce_reply(&mut out, &InfoHash([0; 20]), u32::MAX, u32::MAX, u32::MAX);
    assert_eq!(n, announce_reply_max_len());
}

const SDP: &str = "v=0\r\no=- \"quoted\" \\back\\slash\t\u{1}\u{1f}\r\na=label:🦀 café ÿ\r\n";

#[test]
fn offer_and_answer_round_trip_through_our_parser() {
    let ids = hashes();
    for (k, h) in ids.iter().enumerate() {
        let from = all_bytes(k as u8 * 7);
        let offer_id = OfferId::new(&h[..=(k % 20)]).unwrap();
        let sdp = |kind| Sdp { kind, sdp: SDP };
        // An offer and an answer carry the same fields, under their own key.
        let check = |kind: &str, relayed: &[u8]| {
            let v = json(relayed);
            assert_eq!(latin1(&v["info_hash"]), h);
            assert_eq!(latin1(&v["peer_id"]), from);
            assert_eq!(latin1(&v["offer_id"]), offer_id.as_bytes());
            assert_eq!(v[kind]["type"].as_str(), Some(kind));
            assert_eq!(v[kind]["sdp"].as_str(), Some(SDP));
        };
        let relay = |kind, name| {
            let mut out = vec![0u8; relayed_max_len(SDP.len())];
            let n = write_relayed(&mut out, kind, &InfoHash(*h), &from, &offer_id, &sdp(name));
            check(name, &out[..n]);
            out.truncate(n);
            out
        };
        relay(Relayed::Offer, "offer");
        let out = relay(Relayed::Answer, "answer");
        let n = out.len();

        // A client's answer message is the relayed one plus to_peer_id and
        // action: ours parses it back to the same values.
        let mut text = out[..n - 1].to_vec();
        text.extend_from_slice(b",\"to_peer_id\":");
        let mut to = vec![0u8; 122];
        let tn = super::latin1::write_json(&mut to, h);
        text.extend_from_slice(&to[..tn]);
        text.push(b'}');
        let mut bufs = ParseBuffers::new(1024);
        match parse_message(&mut text, &MessageLimits::default(), &mut bufs) {
            Ok(ClientMessage::Announce(a)) => {
                assert_eq!(a.info_hash, InfoHash(*h));
                assert_eq!(a.peer_id, from);
                let ans = a.answer.unwrap();
                assert_eq!(ans.to_peer_id, *h);
                assert_eq!(ans.offer_id, offer_id);
                assert_eq!(ans.sdp, sdp("answer"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn scrape_reply_round_trip() {
    let files: Vec<(InfoHash, ScrapeCounts)> = hashes()
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            (
                InfoHash(h),
                ScrapeCounts {
                    complete: i as u32,
                    incomplete: 1000 + i as u32,
                    downloaded: u32::MAX,
                },
            )
        })
        .collect();
    let mut out = vec![0u8; scrape_reply_max_len(files.len())];
    let n = write_scrape_reply(&mut out, &files);
    let v = json(&out[..n]);
    assert_eq!(v["action"].as_str(), Some("scrape"));
    let obj = v["files"].as_object().unwrap();
    assert_eq!(obj.len(), files.len());
    for (key, counts) in obj {
        let h: Vec<u8> = key
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect();
        let (_, want) = files.iter().find(|(f, _)| f.0[..] == h[..]).unwrap();
        assert_eq!(counts["complete"].as_u64(), Some(u64::from(want.complete)));
        assert_eq!(
            counts["incomplete"].as_u64(),
            Some(u64::from(want.incomplete))
        );
        assert_eq!(
            counts["downloaded"].as_u64(),
            Some(u64::from(want.downloaded))
        );
    }
    let n = write_scrape_reply(&mut out, &[]);
    assert_eq!(&out[..n], br#"{"action":"scrape","files":{}}"#);
}

#[test]
fn failure_round_trip() {
    let reason = "bad \"thing\" \\ here\n\u{0}é";
    let h = InfoHash(all_bytes(0x80));
    let mut out = vec![0u8; failure_max_len(reason.len())];
    let n = write_failure(&mut out, Some(Action::Scrape), Some(&h), reason);
    let v = json(&out[..n]);
    assert_eq!(v["failure reason"].as_str(), Some(reason));
    assert_eq!(v["action"].as_str(), Some("scrape"));
    assert_eq!(latin1(&v["info_hash"]), h.0);
    let n = write_failure(&mut out, None, None, "x");
    assert_eq!(&out[..n], br#"{"failure reason":"x"}"#);
}

#[test]
fn reply_in_a_frame() {
    let h = InfoHash([b'a'; 20]);
    let max = announce_reply_max_len();
    let mut out = vec![0u8; frame_header_len(max) + max];
    let n = write_frame(&mut out, Opcode::Text, max, |p| {
        write_announce_reply(p, &h, 120, 1, 2)
    });
    let mut got = Vec::new();
    let limits = FrameLimits {
        role: Role::Client,
        max_message_len: 1 << 16,
    };
    let r = FrameReader::default().read(&mut out[..n], &limits, |m| {
        if let Message::Text(t) = m {
            got.extend_from_slice(t);
        }
        Flow::Continue
    });
    assert_eq!(r, Ok(n));
    assert_eq!(got, br#"{"action":"announce","interval":120,"info_hash":"aaaaaaaaaaaaaaaaaaaa","complete":1,"incomplete":2}"#);
}

proptest! {
    #[test]
    fn any_sdp_and_ids_survive(
        sdp in ".{0,300}",
        h in proptest::array::uniform20(any::<u8>()),
        from in proptest::array::uniform20(any::<u8>()),
        id in proptest::collection::vec(any::<u8>(), 1..=20),
    ) {
        let offer_id = OfferId::new(&id).unwrap();
        let s = Sdp { kind: "offer", sdp: &sdp };
        let max = relayed_max_len(sdp.len());
        let mut out = vec![0u8; max];
        let n = write_relayed(&mut out, Relayed::Offer, &InfoHash(h), &from, &offer_id, &s);
        prop_assert!(n <= max);
        let v = json(&out[..n]);
        prop_assert_eq!(v["offer"]["sdp"].as_str(), Some(sdp.as_str()));
        prop_assert_eq!(latin1(&v["info_hash"]), h);
        prop_assert_eq!(latin1(&v["peer_id"]), from);
        prop_assert_eq!(latin1(&v["offer_id"]), id);
    }
}

/// The fuzz seeds are real traffic: each parses as expected.
#[test]
fn fuzz_seeds_parse() {
    let limits = HandshakeLimits {
        max_head_len: 4096,
        forwarded_header: Some("X-Forwarded-For"),
    };
    for ok in [
        &include_bytes!("../../fuzz/seeds/handshake/chromium")[..],
        include_bytes!("../../fuzz/seeds/handshake/firefox"),
        include_bytes!("../../fuzz/seeds/handshake/proxied"),
    ] {
        assert!(parse_upgrade(ok, &limits).is_ok());
    }
    let status = |b: &[u8]| match parse_upgrade(b, &limits) {
        Err(HandshakeError::Reject(r)) => r.status,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        status(include_bytes!("../../fuzz/seeds/handshake/smuggling_te_cl")),
        400
    );
    assert_eq!(
        status(include_bytes!("../../fuzz/seeds/handshake/version_8")),
        426
    );

    let mut bufs = ParseBuffers::new(1 << 16);
    let limits = MessageLimits::default();
    let mut parse = |b: &[u8]| {
        parse_message(&mut b.to_vec(), &limits, &mut bufs).map(|m| match m {
            ClientMessage::Announce(a) => (a.offers.len(), a.answer.is_some(), a.left, a.event, 0),
            ClientMessage::Scrape(s) => (0, false, None, Event::Update, s.len()),
        })
    };
    let seed = |name: &str| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/message");
        std::fs::read(format!("{dir}/{name}")).unwrap()
    };
    for (name, want) in [
        (
            "announce_offers",
            (5, false, Some(1_048_576), Event::Started, 0),
        ),
        ("answer", (0, true, None, Event::Update, 0)),
        ("announce_magnet", (0, false, None, Event::Started, 0)),
        (
            "announce_stopped_int",
            (0, false, Some(0), Event::Stopped, 0),
        ),
        ("scrape_one", (0, false, None, Event::Update, 1)),
        ("scrape_array", (0, false, None, Event::Update, 3)),
    ] {
        assert_eq!(parse(&seed(name)), Ok(want), "{name}");
    }
    assert!(parse(&seed("deep")).is_err());

    let frames = FrameLimits {
        role: Role::Server,
        max_message_len: 1 << 16,
    };
    let mut kinds = Vec::new();
    for f in [
        &include_bytes!("../../fuzz/seeds/frame/announce_text")[..],
        include_bytes!("../../fuzz/seeds/frame/fragmented_with_ping"),
        include_bytes!("../../fuzz/seeds/frame/ping_close"),
        include_bytes!("../../fuzz/seeds/frame/scrape_then_binary"),
    ] {
        let mut buf = f.to_vec();
        let n = FrameReader::default().read(&mut buf, &frames, |m| {
            kinds.push(match m {
                Message::Text(t) => {
                    assert!(parse(t).is_ok());
                    "text"
                }
                Message::Binary(_) => "binary",
                Message::Ping(_) => "ping",
                Message::Pong(_) => "pong",
                Message::Close { .. } => "close",
            });
            Flow::Continue
        });
        assert_eq!(n, Ok(f.len()));
    }
    assert_eq!(
        kinds,
        ["text", "ping", "pong", "text", "close", "ping", "close", "text", "binary"]
    );
}
