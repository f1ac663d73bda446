use super::*;

/// An SDP offer as Chromium makes it for a data channel (JSON-escaped).
pub(crate) const SDP_OFFER: &str = r"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:ZJ9y\r\na=ice-pwd:k8eYbmKzB0nTN3ePq0vRk+3W\r\na=ice-options:trickle\r\na=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CD:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

fn limits() -> MessageLimits {
    MessageLimits::default()
}

fn parse(json: &str) -> Result<ClientMessage<'static>, MessageError> {
    let text = json.as_bytes().to_vec().leak();
    let mut bufs = ParseBuffers::new(4096);
    parse_message(text, &limits(), &mut bufs)
}

fn announce(json: &str) -> Announce<'static> {
    match parse(json) {
        Ok(ClientMessage::Announce(a)) => a,
        other => panic!("{json}: {other:?}"),
    }
}

fn error(json: &str) -> MessageError {
    match parse(json) {
        Err(e) => e,
        Ok(m) => panic!("{json}: parsed {m:?}"),
    }
}

const HASH: &str = r"\u001244Vx\u009a\u00bc\u00de\u00f1#Eg\u0089\u00ab\u00cd\u00ef\u00124Vx";
const HASH_BYTES: [u8; 20] = [
    0x12, 0x34, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
    0x12, 0x34, 0x56, 0x78,
];

pub(crate) fn webtorrent_announce(offers: usize) -> String {
    let offers: Vec<String> = (0..offers)
        .map(|i| {
            format!(r#"{{"offer":{{"type":"offer","sdp":"{SDP_OFFER}"}},"offer_id":"Ã¿Ã©{i:02}xQ9kYGzzhZRbK+"}}"#)
        })
        .collect();
    format!(
        r#"{{"numwant":{n},"uploaded":0,"downloaded":0,"left":"1048576","event":"started","action":"announce","info_hash":"{HASH}","peer_id":"-WW0207-ÃÂaBcDeFgHiJ","offers":[{}]}}"#,
        offers.join(","),
        n = offers.len()
    )
}

#[test]
fn webtorrent_announce_with_offers() {
    let json = webtorrent_announce(5);
    let a = announce(&json);
    assert_eq!(a.info_hash, InfoHash(HASH_BYTES));
    assert_eq!(&a.peer_id[..8], b"-WW0207-");
    assert_eq!(&a.peer_id[8..10], &[0xc3, 0xc2]);
    assert_eq!(a.event, Event::Started);
    assert_eq!(a.numwant, Some(5));
    assert_eq!(a.left, Some(1_048_576));
    assert!(!a.is_seeder());
    assert_eq!(a.offers.len(), 5);
    assert_eq!(a.offers.dropped(), 0);
    let o = a.offers.as_slice()[3];
    assert_eq!(&o.offer_id.as_bytes()[..4], &[0xc3, 0xbf, 0xc3, 0xa9]);
    assert_eq!(&o.offer_id.as_bytes()[4..6], b"03");
    assert_eq!(o.offer_id.as_bytes().len(), 20);
    assert_eq!(o.sdp.kind, "offer");
    assert!(o.sdp.sdp.starts_with("v=0\r\no=- 4611731400430051336"));
    assert!(o.sdp.sdp.ends_with("max-message-size:262144\r\n"));
    assert_eq!(a.answer, None);
}

#[test]
fn webtorrent_answer() {
    let json = format!(
        r#"{{"action":"announce","info_hash":"{HASH}","peer_id":"-WW0207-bbbbbbbbbbbb","to_peer_id":"-WW0207-aaaaaaaaaaaa","answer":{{"type":"answer","sdp":"v=0\r\na=x\r\n"}},"offer_id":"abc"}}"#
    );
    let a = announce(&json);
    let ans = a.answer.unwrap();
    assert_eq!(&ans.to_peer_id, b"-WW0207-aaaaaaaaaaaa");
    assert_eq!(ans.offer_id.as_bytes(), b"abc");
    assert_eq!(
        ans.sdp,
        Sdp {
            kind: "answer",
            sdp: "v=0\r\na=x\r\n"
        }
    );
    assert_eq!(a.event, Event::Update);
    assert!(a.offers.is_empty());
    assert_eq!(a.left, None);
}

#[test]
fn numbers_strings_nulls() {
    let base = |extra: &str| {
        format!(
            r#"{{"action":"announce","info_hash":"{HASH}","peer_id":"aaaaaaaaaaaaaaaaaaaa"{extra}}}"#
        )
    };
    assert_eq!(announce(&base(r#","left":null"#)).left, None);
    assert_eq!(announce(&base("")).left, None);
    assert_eq!(announce(&base(r#","left":0"#)).left, Some(0));
    assert!(announce(&base(r#","left":"0""#)).is_seeder());
    assert!(announce(&base(r#","left":12,"event":"completed""#)).is_seeder());
    assert_eq!(announce(&base(r#","left":12345"#)).left, Some(12345));
    assert_eq!(announce(&base(r#","left":1e3"#)).left, Some(1000));
    for bad in [
        r#","left":-1"#,
        r#","left":"x""#,
        r#","left":"""#,
        r#","left":[]"#,
        r#","left":true"#,
    ] {
        let e = error(&base(bad));
        assert_eq!(e.reason, "invalid left");
        assert_eq!(e.action, Some(Action::Announce));
        assert_eq!(e.info_hash, Some(InfoHash(HASH_BYTES)));
    }
    assert_eq!(announce(&base(r#","numwant":"7""#)).numwant, Some(7));
    assert_eq!(announce(&base(r#","numwant":50"#)).numwant, Some(50));
    assert_eq!(announce(&base(r#","numwant":-1"#)).numwant, None);
    assert_eq!(
        announce(&base(r#","numwant":99999999999"#)).numwant,
        Some(u32::MAX)
    );
    assert_eq!(announce(&base(r#","numwant":{"a":[1]}"#)).numwant, None);
    assert_eq!(announce(&base(r#","event":"paused""#)).event, Event::Update);
    assert_eq!(
        announce(&base(r#","event":"stopped""#)).event,
        Event::Stopped
    );
    assert_eq!(announce(&base(r#","event":7"#)).event, Event::Update);
    // Unknown fields of every kind are skipped.
    let a = announce(&base(
        r#","x":{"y":[1,{"z":null}]},"trackerid":"t","uploaded":"5""#,
    ));
    assert_eq!(a.info_hash, InfoHash(HASH_BYTES));
}

#[test]
fn binary_strings() {
    let with = |hash: &str, peer: &str| {
        format!(r#"{{"action":"announce","info_hash":"{hash}","peer_id":"{peer}"}}"#)
    };
    let peer = "aaaaaaaaaaaaaaaaaaaa";
    // Plain UTF-8 for ≥ 0x80 and \u00XX escapes decode alike.
    let utf8 = "ÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ";
    let esc = r"\u00ff".repeat(20);
    assert_eq!(announce(&with(utf8, peer)).info_hash, InfoHash([0xff; 20]));
    assert_eq!(announce(&with(&esc, peer)).info_hash, InfoHash([0xff; 20]));
    // Escaped quote and backslash.
    let qb = r#"\"\\aaaaaaaaaaaaaaaaaa"#;
    assert_eq!(&announce(&with(qb, peer)).info_hash.0[..3], b"\"\\a");
    for bad in [
        &"a".repeat(19),
        &"a".repeat(21),
        &format!("{}Ā", "a".repeat(19)),
        &format!("{}\\u0100", "a".repeat(19)),
        &format!("{}😀", "a".repeat(19)),
        "",
    ] {
        let e = error(&with(bad, peer));
        assert_eq!(e.reason, "info_hash must be 20 latin-1 characters", "{bad}");
        assert_eq!(e.action, Some(Action::Announce));
        assert_eq!(e.info_hash, None);
        let e = error(&with(HASH, bad));
        assert_eq!(e.reason, "peer_id must be 20 latin-1 characters");
        assert_eq!(e.info_hash, Some(InfoHash(HASH_BYTES)));
    }
    // An array is only for scrapes.
    let e = error(&format!(
        r#"{{"action":"announce","info_hash":["{HASH}"],"peer_id":"{peer}"}}"#
    ));
    assert_eq!(e.info_hash, Some(InfoHash(HASH_BYTES)));
}

#[test]
fn offers_are_bounded_and_checked() {
    let offer = |id: &str, kind: &str, sdp: &str| {
        format!(r#"{{"offer":{{"type":"{kind}","sdp":"{sdp}"}},"offer_id":"{id}"}}"#)
    };
    let mut list = vec![
        offer("a", "offer", "s"),
        offer("", "offer", "s"),
        offer(&"b".repeat(21), "offer", "s"),
        offer("c", "answer", "s"),
        offer("d", "offer", &"x".repeat(8193)),
        offer("e\\u0100", "offer", "s"),
        r#"{"offer_id":"f"}"#.to_string(),
        r#"{"offer":"x","offer_id":"g"}"#.to_string(),
        "7".to_string(),
        "[1,2]".to_string(),
    ];
    for i in 0..12 {
        list.push(offer(&format!("o{i}"), "offer", "s"));
    }
    let json = format!(
        r#"{{"action":"announce","info_hash":"{HASH}","peer_id":"aaaaaaaaaaaaaaaaaaaa","offers":[{}]}}"#,
        list.join(",")
    );
    let a = announce(&json);
    let ids: Vec<&[u8]> = a
        .offers
        .as_slice()
        .iter()
        .map(|o| o.offer_id.as_bytes())
        .collect();
    assert_eq!(
        ids,
        [
            &b"a"[..],
            b"o0",
            b"o1",
            b"o2",
            b"o3",
            b"o4",
            b"o5",
            b"o6",
            b"o7",
            b"o8"
        ]
    );
    assert_eq!(a.offers.dropped(), 9 + 3);
    let mut bufs = ParseBuffers::new(4096);
    let lim = MessageLimits {
        max_offers: 2,
        ..limits()
    };
    let mut text = json.into_bytes();
    match parse_message(&mut text, &lim, &mut bufs) {
        Ok(ClientMessage::Announce(a)) => assert_eq!(a.offers.len(), 2),
        other => panic!("{other:?}"),
    }
    // Not an array: no offers.
    let a = announce(&format!(
        r#"{{"action":"announce","info_hash":"{HASH}","peer_id":"aaaaaaaaaaaaaaaaaaaa","offers":{{"a":1}}}}"#
    ));
    assert!(a.offers.is_empty());
}

#[test]
fn bad_answers_fail() {
    let msg = |to: &str, answer: &str, id: &str| {
        format!(
            r#"{{"action":"announce","info_hash":"{HASH}","peer_id":"bbbbbbbbbbbbbbbbbbbb"{to},"answer":{answer}{id}}}"#
        )
    };
    let to = r#","to_peer_id":"aaaaaaaaaaaaaaaaaaaa""#;
    let ok = r#"{"type":"answer","sdp":"v=0"}"#;
    let id = r#","offer_id":"x""#;
    assert!(announce(&msg(to, ok, id)).answer.is_some());
    for (t, a, i, why) in [
        ("", ok, id, "to_peer_id must be 20 latin-1 characters"),
        (to, ok, "", "offer_id must be 1 to 20 latin-1 characters"),
        (to, r#"{"type":"offer","sdp":"v=0"}"#, id, "invalid answer"),
        (to, r#"{"type":"answer"}"#, id, "invalid answer"),
        (to, r#""v=0""#, id, "invalid answer"),
        (to, "null", id, "invalid answer"),
    ] {
        let e = error(&msg(t, a, i));
        assert_eq!(e.reason, why);
        assert_eq!(e.action, Some(Action::Announce));
        assert_eq!(e.info_hash, Some(InfoHash(HASH_BYTES)));
    }
}

#[test]
fn scrapes() {
    let one = format!(r#"{{"action":"scrape","info_hash":"{HASH}"}}"#);
    match parse(&one) {
        Ok(ClientMessage::Scrape(s)) => assert_eq!(s.info_hashes(), &[InfoHash(HASH_BYTES)]),
        other => panic!("{other:?}"),
    }
    let many = format!(
        r#"{{"action":"scrape","info_hash":["{HASH}","{}","{HASH}"]}}"#,
        "b".repeat(20)
    );
    match parse(&many) {
        Ok(ClientMessage::Scrape(s)) => {
            assert_eq!(s.len(), 3);
            assert_eq!(s.info_hashes()[1], InfoHash([b'b'; 20]));
        }
        other => panic!("{other:?}"),
    }
    for empty in [
        r#"{"action":"scrape"}"#,
        r#"{"action":"scrape","info_hash":[]}"#,
        r#"{"action":"scrape","info_hash":null}"#,
    ] {
        match parse(empty) {
            Ok(ClientMessage::Scrape(s)) => assert!(s.is_empty()),
            other => panic!("{other:?}"),
        }
    }
    let bad = format!(r#"{{"action":"scrape","info_hash":["{HASH}",5]}}"#);
    let e = error(&bad);
    assert_eq!(
        (e.action, e.info_hash),
        (Some(Action::Scrape), Some(InfoHash(HASH_BYTES)))
    );
    let list: Vec<String> = (0..=MAX_SCRAPE_HASHES)
        .map(|_| format!("\"{HASH}\""))
        .collect();
    let e = error(&format!(
        r#"{{"action":"scrape","info_hash":[{}]}}"#,
        list.join(",")
    ));
    assert_eq!(e.reason, "too many info hashes");
    let mut bufs = ParseBuffers::new(64);
    let lim = MessageLimits {
        max_scrape_hashes: 2,
        ..limits()
    };
    let mut three = many.into_bytes();
    assert_eq!(
        parse_message(&mut three, &lim, &mut bufs)
            .unwrap_err()
            .reason,
        "too many info hashes"
    );
}

#[test]
fn unreadable_messages() {
    for (json, reason) in [
        ("", "invalid JSON"),
        ("{", "invalid JSON"),
        (r#"{"action":"announce""#, "invalid JSON"),
        ("[1,2]", "not a JSON object"),
        ("\"announce\"", "not a JSON object"),
        ("{}", "unknown action"),
        (r#"{"action":"announce2"}"#, "unknown action"),
        (r#"{"action":5}"#, "unknown action"),
    ] {
        let e = error(json);
        assert_eq!(
            (e.reason, e.action, e.info_hash),
            (reason, None, None),
            "{json}"
        );
    }
    // An unknown action still carries the hash when readable.
    let e = error(&format!(r#"{{"info_hash":"{HASH}","action":"x"}}"#));
    assert_eq!(e.info_hash, Some(InfoHash(HASH_BYTES)));
}

#[test]
fn depth_is_limited() {
    let nest = |d: usize| {
        format!(
            r#"{{"action":"scrape","x":{}1{}}}"#,
            "[".repeat(d),
            "]".repeat(d)
        )
    };
    assert!(parse(&nest(6)).is_ok());
    assert_eq!(error(&nest(8)).reason, "JSON nested too deeply");
    assert_eq!(error(&nest(100_000)).reason, "JSON nested too deeply");
    let mut bufs = ParseBuffers::new(64);
    let lim = MessageLimits {
        max_depth: 3,
        ..limits()
    };
    let mut a = webtorrent_announce(1).into_bytes();
    assert_eq!(
        parse_message(&mut a, &lim, &mut bufs).unwrap_err().reason,
        "JSON nested too deeply"
    );
    let lim = MessageLimits {
        max_depth: 4,
        ..limits()
    };
    let mut a = webtorrent_announce(1).into_bytes();
    assert!(parse_message(&mut a, &lim, &mut bufs).is_ok());
}

#[test]
fn buffers_are_reused_across_messages() {
    let mut bufs = ParseBuffers::new(128);
    for i in 0..50 {
        let mut text = webtorrent_announce(i % 6).into_bytes();
        match parse_message(&mut text, &limits(), &mut bufs) {
            Ok(ClientMessage::Announce(a)) => assert_eq!(a.offers.len(), i % 6),
            other => panic!("{other:?}"),
        }
        let mut bad = b"{\"action\":".to_vec();
        assert!(parse_message(&mut bad, &limits(), &mut bufs).is_err());
    }
}

#[test]
fn every_prefix_and_byte_flip_never_panics() {
    let json = webtorrent_announce(1);
    let mut bufs = ParseBuffers::new(64);
    for n in 0..json.len() {
        let mut t = json.as_bytes()[..n].to_vec();
        let _ = parse_message(&mut t, &limits(), &mut bufs);
        let mut t = json.as_bytes().to_vec();
        t[n] ^= 0x22;
        let _ = parse_message(&mut t, &limits(), &mut bufs);
    }
}
