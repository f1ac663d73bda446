//! Protocol tests: real client request lines, every decoding rule, the
//! HTTP framing traps, byte-exact responses, no panics on any input.

use proptest::prelude::*;
use riptide_common::{InfoHash, PeerId};
use std::net::{SocketAddrV4, SocketAddrV6};

use super::*;

/// The hash every sample request announces (mixed bare and escaped bytes,
/// upper- and lower-case hex in the encoded form).
const HASH: [u8; 20] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x12,
    0x34, 0x56, 0x78, 0x9a,
];
const HASH_Q: &str = "%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9A";

/// libtorrent 2.0.8 (captured shape; its peer id carries a bare `!`).
pub(super) const LIBTORRENT: &str = "GET /announce?info_hash=%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9A&peer_id=-LT2080-!aB3dE5fG7hI&port=6881&uploaded=0&downloaded=0&left=8388608&corrupt=0&key=A7C9FA57&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0 HTTP/1.1\r\nHost: 127.0.0.1:6969\r\nUser-Agent: libtorrent/2.0.8.0\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
/// Transmission 3.00.
pub(super) const TRANSMISSION: &str = "GET /announce?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=-TR3000-k2l1f0c9w8x7&port=51413&uploaded=0&downloaded=0&left=0&numwant=80&key=20682269&compact=1&supportcrypto=1&event=started HTTP/1.1\r\nHost: tracker.example:6969\r\nUser-Agent: Transmission/3.00\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip\r\n\r\n";
/// aria2 1.36: `key` is 8 raw random bytes; peer id with random bytes.
pub(super) const ARIA2: &str = "GET /announce?info_hash=%12%34%56%78%9a%bc%de%f1%23%45%67%89%ab%cd%ef%12%34%56%78%9a&peer_id=A2-1-36-0-%D1%02%FF%00a%7E%80%20%2B%25&uploaded=0&downloaded=0&left=8388608&compact=1&key=%7C%98VD%15%14%9E%C5&event=started&numwant=50&no_peer_id=1&port=6881 HTTP/1.1\r\nUser-Agent: aria2/1.36.0\r\nAccept: */*\r\nHost: [::1]:6969\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nWant-Digest: SHA-512;q=1, SHA-256;q=1, SHA;q=0.1\r\n\r\n";
/// qBittorrent 4.6.5 (libtorrent underneath).
pub(super) const QBITTORRENT: &str = "GET /announce?info_hash=%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a&peer_id=-qB4650-Wn1Xz(Lk)~Q.&port=28547&uploaded=1048576&downloaded=2097152&left=0&corrupt=0&key=5F1C0A2E&event=completed&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0&ipv6=2001%3Adb8%3A%3A1 HTTP/1.1\r\nHost: tracker.example\r\nUser-Agent: qBittorrent/4.6.5\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
/// Enhanced CTorrent: HTTP/1.0 without `Host`, reads to EOF.
pub(super) const CTORRENT: &str = "GET /announce?info_hash=%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a&peer_id=-CD0303-%8A%9B%AC%BD%CE%DF%E0%F1%02%13%24%35&port=2706&uploaded=0&downloaded=0&left=0&event=started&compact=1 HTTP/1.0\r\nUser-Agent: Enhanced-CTorrent/dnh3.3.2\r\n\r\n";

fn cfg() -> ParseConfig<'static> {
    ParseConfig::default()
}

fn parse(s: &str) -> Result<Request<'_>, ParseError> {
    parse_request(s.as_bytes(), &cfg())
}

/// What `s` asks for; it must parse.
fn target(s: &str) -> Target<'_> {
    parse(s).unwrap_or_else(|e| panic!("{e:?}: {s}")).target
}

fn announce(s: &str) -> AnnounceRequest {
    match target(s) {
        Target::Announce(a) => a,
        other => panic!("not an announce: {other:?}"),
    }
}

/// A GET of `target` with a Host, HTTP/1.1.
fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// An announce with the given extra query, the required parameters first.
fn ann(extra: &str) -> String {
    get(&format!(
        "/announce?info_hash={HASH_Q}&peer_id=-XX0000-abcdefghijkl&port=1{extra}"
    ))
}

fn failure(s: &str) -> &'static str {
    match target(s) {
        Target::Failure(r) => r,
        other => panic!("not a failure: {other:?}"),
    }
}

fn reject(s: &str) -> Status {
    match parse(s) {
        Err(ParseError::Reject(st)) => st,
        other => panic!("not rejected: {other:?}"),
    }
}

// ---------------------------------------------------------------- clients

#[test]
fn libtorrent_announce() {
    let r = parse(LIBTORRENT).unwrap();
    assert_eq!(r.head_len, LIBTORRENT.len());
    assert_eq!(r.connection, Connection::Close);
    assert_eq!(r.forwarded_for, None);
    let Target::Announce(a) = r.target else {
        panic!()
    };
    assert_eq!(a.info_hash, InfoHash(HASH));
    assert_eq!(&a.peer_id.0, b"-LT2080-!aB3dE5fG7hI");
    assert_eq!((a.port, a.uploaded, a.downloaded), (6881, 0, 0));
    assert_eq!(a.left, Some(8_388_608));
    assert_eq!(a.event, Event::Started);
    assert_eq!(a.numwant, Some(200));
    assert!(a.compact && a.no_peer_id && !a.seeder());
    assert_eq!(a.key.unwrap().as_bytes(), b"A7C9FA57");
}

#[test]
fn transmission_announce() {
    let a = announce(TRANSMISSION);
    assert_eq!(
        parse(TRANSMISSION).unwrap().connection,
        Connection::KeepAlive
    );
    assert_eq!(a.info_hash, InfoHash(HASH));
    assert_eq!(&a.peer_id.0, b"-TR3000-k2l1f0c9w8x7");
    assert_eq!((a.port, a.left, a.numwant), (51413, Some(0), Some(80)));
    assert!(a.seeder() && !a.no_peer_id);
    assert_eq!(a.key.unwrap().as_bytes(), b"20682269");
}

#[test]
fn aria2_announce_raw_byte_key() {
    let a = announce(ARIA2);
    assert_eq!(a.info_hash, InfoHash(HASH));
    assert_eq!(
        &a.peer_id.0,
        b"A2-1-36-0-\xd1\x02\xff\x00a\x7e\x80\x20\x2b\x25"
    );
    // Not UTF-8, and kept as the 8 bytes sent.
    let key = a.key.unwrap();
    assert_eq!(key.as_bytes(), b"\x7c\x98VD\x15\x14\x9e\xc5");
    assert!(std::str::from_utf8(key.as_bytes()).is_err());
    assert_eq!((a.port, a.numwant), (6881, Some(50)));
}

#[test]
fn qbittorrent_announce_ipv6_param_ignored() {
    let a = announce(QBITTORRENT);
    assert_eq!(&a.peer_id.0, b"-qB4650-Wn1Xz(Lk)~Q.");
    assert_eq!(a.event, Event::Completed);
    assert_eq!((a.uploaded, a.downloaded), (1_048_576, 2_097_152));
    assert_eq!(parse(QBITTORRENT).unwrap().connection, Connection::Close);
}

#[test]
fn ctorrent_http10_without_host_is_answered_then_closed() {
    let a = announce(CTORRENT);
    assert_eq!(parse(CTORRENT).unwrap().connection, Connection::Close);
    assert_eq!(a.port, 2706);
    assert_eq!(
        a.peer_id.0[8..],
        [0x8a, 0x9b, 0xac, 0xbd, 0xce, 0xdf, 0xe0, 0xf1, 0x02, 0x13, 0x24, 0x35]
    );
}

// --------------------------------------------------------------- decoding

#[test]
fn percent_decode_rules() {
    let mut out = [0u8; 32];
    let mut d = |s: &[u8]| percent_decode(s, &mut out).map(|n| out[..n].to_vec());
    assert_eq!(d(b"%41%4a%4A%ff%FF%00"), Ok(b"AJJ\xff\xff\x00".to_vec()));
    assert_eq!(d(b"aZ09-._~"), Ok(b"aZ09-._~".to_vec()));
    // `+` is a literal plus, not a space.
    assert_eq!(d(b"a+b%2B"), Ok(b"a+b+".to_vec()));
    // Other bare bytes stand for themselves.
    assert_eq!(d(b"!*'()"), Ok(b"!*'()".to_vec()));
    assert_eq!(d(b""), Ok(vec![]));
    for bad in [&b"%"[..], b"%4", b"%g0", b"%0g", b"a%", b"%%41", b"% 41"] {
        assert_eq!(d(bad), Err(DecodeError::BadEscape), "{bad:?}");
    }
    let mut small = [0u8; 2];
    assert_eq!(
        percent_decode(b"abc", &mut small),
        Err(DecodeError::TooLong)
    );
    assert_eq!(percent_decode(b"%41%42", &mut small), Ok(2));
}

#[test]
fn query_pairs() {
    let p: Vec<_> = pairs(b"a=1&&b&c=&d=x=y&").collect();
    assert_eq!(
        p,
        [
            (&b"a"[..], &b"1"[..]),
            (b"b", b""),
            (b"c", b""),
            (b"d", b"x=y")
        ]
    );
    assert_eq!(pairs(b"").count(), 0);
}

fn escaped_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "%{b:02X}");
        s
    })
}

#[test]
fn info_hash_all_escaped_all_bare_and_mixed_case() {
    let all_escaped = escaped_upper(&HASH);
    let lower = all_escaped.to_lowercase();
    for q in [all_escaped.as_str(), lower.as_str(), HASH_Q] {
        let s = get(&format!(
            "/announce?info_hash={q}&peer_id=-XX0000-abcdefghijkl&port=1"
        ));
        assert_eq!(announce(&s).info_hash, InfoHash(HASH));
    }
    let s = get("/announce?info_hash=abcdefghij0123456789&peer_id=-XX0000-abcdefghijkl&port=1");
    assert_eq!(announce(&s).info_hash.0, *b"abcdefghij0123456789");
    // `+` bare is the byte 0x2B.
    let s = get("/announce?info_hash=%2B+++++++++++++++++++&peer_id=-XX0000-abcdefghijkl&port=1");
    assert_eq!(announce(&s).info_hash.0, [b'+'; 20]);
}

#[test]
fn info_hash_and_peer_id_must_be_20_bytes() {
    let h19 = "%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx";
    let h21 = "%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9A%00";
    for h in [h19, h21, "", "%zz4Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9A"] {
        let s = get(&format!(
            "/announce?info_hash={h}&peer_id=-XX0000-abcdefghijkl&port=1"
        ));
        assert_eq!(failure(&s), "info_hash is not 20 bytes", "{h}");
    }
    let s = get(&format!(
        "/announce?info_hash={HASH_Q}&peer_id=-XX0000-abcdefghijk&port=1"
    ));
    assert_eq!(failure(&s), "peer_id is not 20 bytes");
    let s = get(&format!(
        "/announce?info_hash={HASH_Q}&peer_id=-XX0000-abcdefghijklm&port=1"
    ));
    assert_eq!(failure(&s), "peer_id is not 20 bytes");
}

#[test]
fn required_parameters() {
    assert_eq!(
        failure(&get("/announce?peer_id=-XX0000-abcdefghijkl&port=1")),
        "missing info_hash"
    );
    assert_eq!(
        failure(&get(&format!("/announce?info_hash={HASH_Q}&port=1"))),
        "missing peer_id"
    );
    assert_eq!(
        failure(&get(&format!(
            "/announce?info_hash={HASH_Q}&peer_id=-XX0000-abcdefghijkl"
        ))),
        "missing port"
    );
    assert_eq!(failure(&get("/announce")), "missing info_hash");
    assert_eq!(
        failure(&ann(&format!("&info_hash={HASH_Q}"))),
        "info_hash given twice"
    );
    assert_eq!(
        failure(&ann("&peer_id=-XX0000-abcdefghijkl")),
        "peer_id given twice"
    );
}

#[test]
fn defaults_when_optional_parameters_are_absent() {
    let a = announce(&ann(""));
    assert_eq!(a.port, 1);
    assert_eq!((a.uploaded, a.downloaded, a.left), (0, 0, None));
    assert_eq!(a.event, Event::None);
    assert_eq!(a.numwant, None);
    assert!(a.compact && !a.no_peer_id && a.key.is_none() && !a.seeder());
    assert_eq!(a.numwant_or(50, 200), 50);
}

#[test]
fn numbers() {
    let a = announce(&ann(
        "&uploaded=18446744073709551615&downloaded=%31%32&left=0",
    ));
    assert_eq!((a.uploaded, a.downloaded, a.left), (u64::MAX, 12, Some(0)));
    assert_eq!(
        failure(&ann("&uploaded=18446744073709551616")),
        "invalid uploaded"
    );
    assert_eq!(failure(&ann("&downloaded=-1")), "invalid downloaded");
    assert_eq!(failure(&ann("&left=")), "invalid left");
    assert_eq!(failure(&ann("&left=1x")), "invalid left");
    assert_eq!(failure(&ann("&left=+1")), "invalid left");
    assert_eq!(failure(&ann("&port=65536")), "invalid port");
    assert_eq!(failure(&ann("&port=")), "invalid port");
    // The last `port` counts (the one from `ann` comes first).
    assert_eq!(announce(&ann("&port=65535")).port, 65535);
    assert_eq!(announce(&ann("&port=0")).port, 0);
}

#[test]
fn numwant() {
    let n = |q: &str| announce(&ann(q)).numwant;
    assert_eq!(n("&numwant=0"), None);
    assert_eq!(n("&numwant=-1"), None);
    assert_eq!(n("&numwant=30"), Some(30));
    assert_eq!(n("&numwant=99999999999"), Some(u32::MAX));
    assert_eq!(n("&numwant=-99999999999999999999"), None);
    assert_eq!(failure(&ann("&numwant=x")), "invalid numwant");
    assert_eq!(failure(&ann("&numwant=-")), "invalid numwant");
    let a = announce(&ann("&numwant=500"));
    assert_eq!(a.numwant_or(50, 200), 200);
    let a = announce(&ann("&numwant=5"));
    assert_eq!(a.numwant_or(50, 200), 5);
}

#[test]
fn events() {
    let e = |q: &str| announce(&ann(q)).event;
    assert_eq!(e("&event=started"), Event::Started);
    assert_eq!(e("&event=completed"), Event::Completed);
    assert_eq!(e("&event=stopped"), Event::Stopped);
    assert_eq!(e("&event=%73topped"), Event::Stopped);
    assert_eq!(e("&event=paused"), Event::Paused);
    assert_eq!(e("&event="), Event::None);
    assert_eq!(e("&event"), Event::None);
    assert_eq!(e("&event=empty"), Event::None);
    // Unknown or undecodable: tolerated.
    assert_eq!(e("&event=Started"), Event::None);
    assert_eq!(e("&event=%zz"), Event::None);
    assert_eq!(e("&event=averyveryverylongeventname"), Event::None);
    // BEP 21: a partial seed is a seeder for selection.
    let a = announce(&ann("&event=paused&left=100"));
    assert!(a.seeder());
    let s = a.to_swarm(peer_v4(&format!("1.2.3.4:{}", a.port)), 7);
    assert!(s.seeder && s.event == Event::Paused && s.numwant == 7 && s.info_hash.0 == HASH);
}

#[test]
fn compact_and_no_peer_id() {
    let a = announce(&ann("&compact=0"));
    assert!(!a.compact);
    assert!(announce(&ann("&compact=1")).compact);
    assert!(announce(&ann("&compact=")).compact);
    assert!(announce(&ann("&no_peer_id=1")).no_peer_id);
    assert!(announce(&ann("&no_peer_id")).no_peer_id);
    assert!(!announce(&ann("&no_peer_id=0")).no_peer_id);
}

#[test]
fn key_is_raw_bytes_with_a_limit() {
    let k = |q: &str| announce(&ann(q)).key.map(|k| k.as_bytes().to_vec());
    assert_eq!(k("&key=%00%ff%80+"), Some(b"\x00\xff\x80+".to_vec()));
    assert_eq!(k("&key="), Some(vec![]));
    let max = "%AA".repeat(MAX_KEY_LEN);
    assert_eq!(k(&format!("&key={max}")), Some(vec![0xaa; MAX_KEY_LEN]));
    assert_eq!(failure(&ann(&format!("&key={max}%AA"))), "key too long");
    assert_eq!(failure(&ann("&key=%A")), "invalid key");
    assert_eq!(AnnounceKey::new(&[0; MAX_KEY_LEN + 1]), None);
    assert_eq!(
        format!("{:?}", AnnounceKey::new(b"\x01\xfe").unwrap()),
        "AnnounceKey([01, fe])"
    );
}

#[test]
fn unknown_and_ignored_parameters() {
    let base = announce(&ann(""));
    for q in [
        "&ip=10.0.0.1",
        "&ipv4=10.0.0.1",
        "&ipv6=2001%3Adb8%3A%3A1",
        "&supportcrypto=1&redundant=0&corrupt=0",
        "&trackerid=abc",
        "&zzz=%zz",
        "&averyveryverylongparametername=1",
        "&%zz=1",
        "&=x",
        "&&&",
    ] {
        assert_eq!(announce(&ann(q)), base, "{q}");
    }
    // Escaped parameter names decode too.
    assert_eq!(announce(&ann("&%70ort=9")).port, 9);
}

#[test]
fn paths_and_fragments() {
    assert!(matches!(
        parse(&get(&format!(
            "/announce/?info_hash={HASH_Q}&peer_id=-XX0000-abcdefghijkl&port=1"
        ))),
        Ok(Request {
            target: Target::Announce(_),
            ..
        })
    ));
    let a = announce(&ann("#frag&port=7"));
    assert_eq!(a.port, 1);
    for p in [
        "/",
        "/announce.php",
        "/Announce",
        "/announce//",
        "/x/announce",
        "/scrapes",
        "*",
    ] {
        assert_eq!(reject(&get(p)), Status::NotFound, "{p}");
    }
}

// ----------------------------------------------------------------- scrape

fn scrape(s: &str) -> ScrapeRequest<'_> {
    match parse(s) {
        Ok(Request {
            target: Target::Scrape(sc),
            ..
        }) => sc,
        other => panic!("not a scrape: {other:?}"),
    }
}

#[test]
fn scrape_repeated_info_hash() {
    let s = get(&format!(
        "/scrape?info_hash={HASH_Q}&x=1&info_hash=abcdefghij0123456789&info_hash={HASH_Q}"
    ));
    let sc = scrape(&s);
    assert_eq!(sc.len(), 3);
    assert!(!sc.is_empty());
    assert_eq!(
        sc.info_hashes().collect::<Vec<_>>(),
        [
            InfoHash(HASH),
            InfoHash(*b"abcdefghij0123456789"),
            InfoHash(HASH)
        ]
    );
    assert_eq!(
        scrape(&get(&format!("/scrape/?info_hash={HASH_Q}"))).len(),
        1
    );
}

#[test]
fn scrape_limits() {
    let one = format!("info_hash={HASH_Q}");
    let q = |n: usize| vec![one.as_str(); n].join("&");
    assert_eq!(scrape(&get(&format!("/scrape?{}", q(74)))).len(), 74);
    assert_eq!(
        failure(&get(&format!("/scrape?{}", q(75)))),
        "too many info hashes in scrape"
    );
    assert_eq!(
        failure(&get(&format!("/scrape?{}&info_hash=abc", q(2)))),
        "info_hash is not 20 bytes"
    );
    assert_eq!(failure(&get("/scrape")), "full scrape is not supported");
    assert_eq!(
        failure(&get("/scrape?foo=bar")),
        "full scrape is not supported"
    );
    let c = ParseConfig {
        full_scrape: true,
        max_scrape_hashes: 2,
        ..cfg()
    };
    let s = get("/scrape");
    let r = parse_request(s.as_bytes(), &c).unwrap();
    assert!(
        matches!(r.target, Target::Scrape(sc) if sc.is_empty() && sc.info_hashes().count() == 0)
    );
    let s = get(&format!("/scrape?{}", q(3)));
    assert_eq!(
        parse_request(s.as_bytes(), &c).unwrap().target,
        Target::Failure("too many info hashes in scrape")
    );
}

// ------------------------------------------------------------ HTTP framing

#[test]
fn incomplete_heads_wait_for_more_bytes() {
    for sample in [LIBTORRENT, TRANSMISSION, ARIA2, QBITTORRENT, CTORRENT] {
        let b = sample.as_bytes();
        for n in 0..b.len() {
            assert_eq!(
                parse_request(&b[..n], &cfg()),
                Err(ParseError::Incomplete),
                "{n} of {sample:?}"
            );
        }
        assert_eq!(parse_request(b, &cfg()).unwrap().head_len, b.len());
    }
}

#[test]
fn head_size_limit() {
    let c = ParseConfig {
        max_head_len: 64,
        ..cfg()
    };
    // Complete but too long.
    assert_eq!(
        parse_request(ann("").as_bytes(), &c),
        Err(ParseError::Reject(Status::HeadTooLarge))
    );
    // Incomplete and already at the limit.
    let partial = [b'a'; 64];
    let partial = [&b"GET /announce?"[..], &partial].concat();
    assert_eq!(
        parse_request(&partial[..63], &c),
        Err(ParseError::Incomplete)
    );
    assert_eq!(
        parse_request(&partial[..64], &c),
        Err(ParseError::Reject(Status::HeadTooLarge))
    );
    // Too many header lines.
    let many = format!(
        "GET /announce HTTP/1.1\r\nHost: t\r\n{}\r\n",
        "A: b\r\n".repeat(MAX_HEADERS)
    );
    assert_eq!(reject(&many), Status::HeadTooLarge);
    let fits = format!(
        "GET /announce HTTP/1.1\r\nHost: t\r\n{}\r\n",
        "A: b\r\n".repeat(MAX_HEADERS - 1)
    );
    assert!(matches!(
        parse(&fits),
        Ok(Request {
            target: Target::Failure(_),
            ..
        })
    ));
}

#[test]
fn malformed_heads_are_400() {
    let bad_heads: [&[u8]; 13] = [
        b"GET /announce HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        b"GET /announce HTTP/1.1\r\nHost: t\r\nX : y\r\n\r\n",
        b"GET /announce HTTP/1.1\r\nHost : t\r\n\r\n",
        b"GET /announce HTTP/1.1\r\nHost: t\r\n folded: x\r\n\r\n",
        b"GET /announce HTTP/1.1\r\nHost: t\r\nA: b\r\n continued\r\n\r\n",
        b"GET /announce HTTP/2.0\r\nHost: t\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /announce HTTP/1.1 extra\r\nHost: t\r\n\r\n",
        b"GET  /announce HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /ann ounce HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET /announce HTTP/1.1\r\nHost: t\r\nX\x01: y\r\n\r\n",
        b"GET /announce HTTP/1.1\r\nHo\x7fst: t\r\n\r\n",
    ];
    for bad in bad_heads {
        assert_eq!(
            parse_request(bad, &cfg()),
            Err(ParseError::Reject(Status::BadRequest)),
            "{bad:?}"
        );
    }
}

#[test]
fn request_smuggling_shapes_are_400() {
    let with = |h: &str| format!("GET {} HTTP/1.1\r\nHost: t\r\n{h}\r\n", "/announce");
    for h in [
        "Content-Length: 0\r\nContent-Length: 0\r\n",
        "Content-Length: 5\r\nContent-Length: 0\r\n",
        "Content-Length: 5\r\n",
        "Content-Length: 1\r\n",
        "Content-Length: -0\r\n",
        "Content-Length: 0x0\r\n",
        "Content-Length:\r\n",
        "Content-Length: 0, 0\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: identity\r\n",
        "transfer-encoding: chunked\r\nContent-Length: 0\r\n",
        "TRANSFER-ENCODING: gzip\r\n",
        "Host: u\r\n",
    ] {
        assert_eq!(reject(&with(h)), Status::BadRequest, "{h:?}");
    }
    // Content-Length 0 is fine on a GET (some libraries always send it).
    for h in ["Content-Length: 0\r\n", "content-length:  00 \r\n"] {
        assert!(parse(&with(h)).is_ok(), "{h:?}");
    }
}

#[test]
fn methods_other_than_get_are_405() {
    for m in ["POST", "HEAD", "PUT", "get", "OPTIONS", "CONNECT"] {
        let s = format!("{m} /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(reject(&s), Status::MethodNotAllowed, "{m}");
    }
}

#[test]
fn host_rules() {
    // HTTP/1.1 needs one Host.
    assert_eq!(reject("GET /announce HTTP/1.1\r\n\r\n"), Status::BadRequest);
    assert_eq!(
        reject("GET /announce HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n"),
        Status::BadRequest
    );
    // HTTP/1.0 without Host: answered, then closed, even if it asks to keep.
    let r = parse("GET /announce HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    assert_eq!(r.connection, Connection::Close);
}

#[test]
fn persistence() {
    let conn = |v: &str, h: &str| {
        let s = format!("GET /announce HTTP/{v}\r\nHost: t\r\n{h}\r\n");
        parse_request(s.as_bytes(), &cfg()).unwrap().connection
    };
    assert_eq!(conn("1.1", ""), Connection::KeepAlive);
    assert_eq!(conn("1.1", "Connection: close\r\n"), Connection::Close);
    assert_eq!(
        conn("1.1", "connection: Keep-Alive, CLOSE\r\n"),
        Connection::Close
    );
    assert_eq!(
        conn("1.1", "Connection: keep-alive\r\n"),
        Connection::KeepAlive
    );
    assert_eq!(
        conn("1.1", "Connection: upgrade\r\n"),
        Connection::KeepAlive
    );
    assert_eq!(conn("1.0", ""), Connection::Close);
    assert_eq!(
        conn("1.0", "Connection: keep-alive\r\n"),
        Connection::KeepAliveHttp10
    );
    assert_eq!(
        conn("1.0", "Connection: te,  keep-alive \r\n"),
        Connection::KeepAliveHttp10
    );
    assert_eq!(
        conn("1.0", "Connection: keep-alive\r\nConnection: close\r\n"),
        Connection::Close
    );
    assert!(Connection::KeepAliveHttp10.keeps_alive() && !Connection::Close.keeps_alive());
}

#[test]
fn forwarded_for_header_is_handed_out_raw() {
    let s = "GET /announce HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\nx-forwarded-for: 198.51.100.9\r\n\r\n";
    assert_eq!(parse(s).unwrap().forwarded_for, None);
    let c = ParseConfig {
        forwarded_header: Some("X-Forwarded-For"),
        ..cfg()
    };
    let r = parse_request(s.as_bytes(), &c).unwrap();
    assert_eq!(r.forwarded_for, Some(&b"198.51.100.9"[..]));
    let c = ParseConfig {
        forwarded_header: Some("X-Real-IP"),
        ..cfg()
    };
    let s = b"GET /announce HTTP/1.1\r\nHost: t\r\nX-Real-IP: \xff raw\r\n\r\n";
    let r = parse_request(s, &c);
    // httparse accepts obs-text in values; raw bytes come out untouched.
    assert_eq!(r.unwrap().forwarded_for, Some(&b"\xff raw"[..]));
    // Missing header: no value, still answered (never a crash).
    let s = ann("");
    let r = parse_request(s.as_bytes(), &c).unwrap();
    assert_eq!(r.forwarded_for, None);
}

#[test]
fn pipelined_heads() {
    let all = [LIBTORRENT, TRANSMISSION, CTORRENT, ARIA2].concat();
    let mut rest = all.as_bytes();
    let mut ports = vec![];
    while !rest.is_empty() {
        let r = parse_request(rest, &cfg()).unwrap();
        let Target::Announce(a) = r.target else {
            panic!()
        };
        ports.push(a.port);
        rest = &rest[r.head_len..];
    }
    assert_eq!(ports, [6881, 51413, 2706, 6881]);
    // A head followed by half of the next: the first parses, then Incomplete.
    let two = [TRANSMISSION, &TRANSMISSION[..40]].concat();
    let r = parse_request(two.as_bytes(), &cfg()).unwrap();
    assert_eq!(r.head_len, TRANSMISSION.len());
    assert_eq!(
        parse_request(&two.as_bytes()[r.head_len..], &cfg()),
        Err(ParseError::Incomplete)
    );
    // Leading empty lines before a request are skipped (RFC 9112 §2.2).
    let s = format!("\r\n{TRANSMISSION}");
    assert_eq!(parse(&s).unwrap().head_len, s.len());
}

// ---------------------------------------------------------------- bencode

#[test]
fn bencode_writer_byte_for_byte() {
    let mut buf = [0u8; 128];
    let mut w = BencodeWriter::new(&mut buf);
    assert!(w.is_empty());
    w.dict().unwrap();
    w.bytes(b"a").unwrap();
    w.int(-42).unwrap();
    w.bytes(b"b").unwrap();
    w.int(0).unwrap();
    w.bytes(b"c").unwrap();
    w.int(i64::MIN).unwrap();
    w.bytes(b"d").unwrap();
    w.list().unwrap();
    w.uint(u64::MAX).unwrap();
    w.bytes(b"").unwrap();
    w.bytes(b"\x00\xff").unwrap();
    w.end().unwrap();
    w.key_uint(b"e", 7).unwrap();
    w.bytes(b"f").unwrap();
    w.bytes_space(3).unwrap().copy_from_slice(b"xyz");
    w.end().unwrap();
    assert_eq!(
        w.written(),
        &b"d1:ai-42e1:bi0e1:ci-9223372036854775808e1:dli18446744073709551615e0:2:\x00\xffe1:ei7e1:f3:xyze"[..]
    );
    assert_eq!(w.len(), w.written().len());
}

#[test]
fn bencode_writer_out_of_room() {
    for n in 0..6 {
        let mut buf = vec![0u8; n];
        let mut w = BencodeWriter::new(&mut buf);
        assert_eq!(w.bytes(b"abcd"), Err(BufferTooSmall), "{n}");
        assert_eq!(w.len(), 0);
    }
    let mut buf = [0u8; 4];
    let mut w = BencodeWriter::new(&mut buf);
    assert_eq!(w.uint(1234), Err(BufferTooSmall));
    assert_eq!(w.int(-12), Err(BufferTooSmall));
    w.int(-1).unwrap();
    assert_eq!(w.end(), Err(BufferTooSmall));
    assert_eq!(
        w.bytes_space(usize::MAX).map(|s| s.len()),
        Err(BufferTooSmall)
    );
}

// -------------------------------------------------------------- responses

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn head_and_body(out: &[u8]) -> (String, Vec<u8>) {
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (text(&out[..at]), out[at..].to_vec())
}

/// An announce response with `[interval, min_interval]`, these counts and
/// no warning.
fn response(intervals: [u32; 2], complete: u32, incomplete: u32) -> AnnounceResponse<'static> {
    AnnounceResponse {
        interval: intervals[0],
        min_interval: intervals[1],
        complete,
        incomplete,
        warning: None,
    }
}

/// The IPv4 peer at `addr` (`a.b.c.d:port`).
fn peer_v4(addr: &str) -> PeerV4 {
    addr.parse::<SocketAddrV4>().unwrap().into()
}

#[test]
fn announce_response_compact_v4() {
    let mut out = [0u8; 512];
    let resp = response([1800, 900], 5, 12);
    let v4 = [peer_v4("10.0.0.1:6881"), peer_v4("192.168.1.255:14906")];
    let n = write_announce(
        &mut out,
        &resp,
        Peers::Compact { v4: &v4, v6: &[] },
        Connection::KeepAlive,
    )
    .unwrap();
    let body = b"d8:completei5e10:incompletei12e8:intervali1800e12:min intervali900e5:peers12:\x0a\x00\x00\x01\x1a\xe1\xc0\xa8\x01\xff\x3a\x3ae";
    let mut expected = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    expected.extend_from_slice(body);
    assert_eq!(text(&out[..n]), text(&expected));
    assert_eq!(&out[..n], &expected[..]);
}

#[test]
fn announce_response_peers6_and_warning_and_close() {
    let mut out = [0u8; 512];
    let resp = AnnounceResponse {
        warning: Some(b"slow down"),
        ..response([60, 30], 0, 1)
    };
    let mut ip = [0u8; 16];
    ip[0] = 0x20;
    ip[1] = 0x01;
    ip[15] = 1;
    let v6 = [PeerV6 { ip, port: 443 }];
    let n = write_announce(
        &mut out,
        &resp,
        Peers::Compact { v4: &[], v6: &v6 },
        Connection::Close,
    )
    .unwrap();
    let (head, body) = head_and_body(&out[..n]);
    assert_eq!(
        head,
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
    );
    let mut expected =
        b"d8:completei0e10:incompletei1e8:intervali60e12:min intervali30e5:peers0:6:peers618:"
            .to_vec();
    expected.extend_from_slice(&ip);
    expected.extend_from_slice(&[0x01, 0xbb]);
    expected.extend_from_slice(b"15:warning message9:slow downe");
    assert_eq!(body, expected);
}

#[test]
fn announce_response_http10_keep_alive_header() {
    let mut out = [0u8; 512];
    let n = write_announce(
        &mut out,
        &AnnounceResponse::default(),
        Peers::Compact { v4: &[], v6: &[] },
        Connection::KeepAliveHttp10,
    )
    .unwrap();
    assert_eq!(
        text(&out[..n]),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 71\r\nConnection: keep-alive\r\n\r\nd8:completei0e10:incompletei0e8:intervali0e12:min intervali0e5:peers0:e"
    );
}

#[test]
fn announce_response_non_compact() {
    let mut out = [0u8; 1024];
    let resp = response([10, 5], 1, 2);
    let v4 = [peer_v4("1.2.3.4:80")];
    let v6 = [PeerV6::from("[::1]:8080".parse::<SocketAddrV6>().unwrap())];
    let ids = [PeerId(*b"-AB1234-aaaaaaaaaaaa")];
    // Ids known for the first peer only.
    let with_ids = Peers::Dicts {
        v4: &v4,
        v6: &v6,
        peer_ids: Some(&ids),
    };
    let n = write_announce(&mut out, &resp, with_ids, Connection::KeepAlive).unwrap();
    let (_, body) = head_and_body(&out[..n]);
    assert_eq!(
        text(&body),
        "d8:completei1e10:incompletei2e8:intervali10e12:min intervali5e5:peersld2:ip7:1.2.3.47:peer id20:-AB1234-aaaaaaaaaaaa4:porti80eed2:ip3:::14:porti8080eeee"
    );
    // no_peer_id: no `peer id` keys at all.
    let n = write_announce(
        &mut out,
        &resp,
        Peers::Dicts {
            v4: &v4,
            v6: &[],
            peer_ids: None,
        },
        Connection::KeepAlive,
    )
    .unwrap();
    let (_, body) = head_and_body(&out[..n]);
    assert_eq!(
        text(&body),
        "d8:completei1e10:incompletei2e8:intervali10e12:min intervali5e5:peersld2:ip7:1.2.3.44:porti80eeee"
    );
}

#[test]
fn announce_response_sizes() {
    let v4: Vec<PeerV4> = (0..200u16)
        .map(|i| PeerV4 {
            ip: [255, 255, 255, i as u8],
            port: 65535 - i,
        })
        .collect();
    let v6: Vec<PeerV6> = (0..200u16)
        .map(|i| PeerV6 {
            ip: [0xff; 16],
            port: i,
        })
        .collect();
    let ids = vec![PeerId([0xff; 20]); 400];
    let resp = AnnounceResponse {
        interval: u32::MAX,
        min_interval: u32::MAX,
        complete: u32::MAX,
        incomplete: u32::MAX,
        warning: Some(&[b'w'; 100]),
    };
    for (peers, compact) in [
        (Peers::Compact { v4: &v4, v6: &v6 }, true),
        (
            Peers::Dicts {
                v4: &v4,
                v6: &v6,
                peer_ids: Some(&ids),
            },
            false,
        ),
    ] {
        let max = announce_response_max_len(400, compact, 100);
        let mut out = vec![0u8; max];
        let n = write_announce(&mut out, &resp, peers, Connection::Close).unwrap();
        assert!(n <= max - HEAD_RESERVE, "{n} {max}");
        // The body needs HEAD_RESERVE bytes in front of it; one byte less
        // than that is an error, never a panic or a cut list.
        let head_len = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let required = HEAD_RESERVE + n - head_len;
        let again = write_announce(&mut out[..required], &resp, peers, Connection::Close);
        assert_eq!(again, Ok(n));
        for len in [0, 10, HEAD_RESERVE, HEAD_RESERVE + 50, n, required - 1] {
            assert_eq!(
                write_announce(&mut out[..len], &resp, peers, Connection::Close),
                Err(BufferTooSmall)
            );
        }
    }
}

#[test]
fn scrape_response_sorted_and_deduplicated() {
    let mut out = [0u8; 512];
    let a = InfoHash([b'a'; 20]);
    let b = InfoHash([b'b'; 20]);
    let mut files = [
        (
            b,
            ScrapeStats {
                seeders: 1,
                completed: 2,
                leechers: 3,
            },
        ),
        (a, ScrapeStats::default()),
        (
            b,
            ScrapeStats {
                seeders: 1,
                completed: 2,
                leechers: 3,
            },
        ),
    ];
    let n = write_scrape(&mut out, &mut files, Connection::KeepAlive).unwrap();
    let (head, body) = head_and_body(&out[..n]);
    assert_eq!(
        text(&body),
        "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei0e10:downloadedi0e10:incompletei0ee20:bbbbbbbbbbbbbbbbbbbbd8:completei1e10:downloadedi2e10:incompletei3eeee"
    );
    assert!(head.ends_with(&format!("Content-Length: {}\r\n\r\n", body.len())));
    // Raw (non-text) hashes are the keys as they are.
    let mut files = [(InfoHash(HASH), ScrapeStats::default())];
    let n = write_scrape(&mut out, &mut files, Connection::Close).unwrap();
    let (head, body) = head_and_body(&out[..n]);
    assert!(head.contains("Connection: close\r\n"));
    let mut expected = b"d5:filesd20:".to_vec();
    expected.extend_from_slice(&HASH);
    expected.extend_from_slice(b"d8:completei0e10:downloadedi0e10:incompletei0eeee");
    assert_eq!(body, expected);
    // Sizing.
    let mut files: Vec<_> = (0..74u8)
        .map(|i| {
            (
                InfoHash([i; 20]),
                ScrapeStats {
                    seeders: u32::MAX,
                    completed: u32::MAX,
                    leechers: u32::MAX,
                },
            )
        })
        .collect();
    let mut big = vec![0u8; scrape_response_max_len(74)];
    assert!(write_scrape(&mut big, &mut files, Connection::Close).is_ok());
    assert_eq!(
        write_scrape(&mut big[..1000], &mut files, Connection::Close),
        Err(BufferTooSmall)
    );
}

#[test]
fn failure_response() {
    let mut out = [0u8; 256];
    let n = write_failure(
        &mut out,
        b"info_hash is not 20 bytes",
        Connection::KeepAlive,
    )
    .unwrap();
    assert_eq!(
        text(&out[..n]),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 47\r\n\r\nd14:failure reason25:info_hash is not 20 bytese"
    );
    assert_eq!(
        write_failure(&mut out[..150], &[b'x'; 100], Connection::Close),
        Err(BufferTooSmall)
    );
}

#[test]
fn plain_error_responses() {
    let mut out = [0u8; 256];
    let n = write_error(&mut out, Status::BadRequest).unwrap();
    assert_eq!(
        text(&out[..n]),
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request"
    );
    let n = write_error(&mut out, Status::ServiceUnavailable).unwrap();
    assert_eq!(
        text(&out[..n]),
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nConnection: close\r\n\r\nService Unavailable"
    );
    let n = write_error(&mut out, Status::MethodNotAllowed).unwrap();
    assert_eq!(
        text(&out[..n]),
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nAllow: GET\r\nConnection: close\r\n\r\nMethod Not Allowed"
    );
    for s in [Status::NotFound, Status::HeadTooLarge] {
        let n = write_error(&mut out, s).unwrap();
        assert!(text(&out[..n]).starts_with(&format!("HTTP/1.1 {} ", s.code())));
        assert_eq!(write_error(&mut out[..n - 1], s), Err(BufferTooSmall));
    }
}

// ----------------------------------------------------------- never panic

fn exercise(bytes: &[u8]) {
    let c = ParseConfig {
        full_scrape: true,
        forwarded_header: Some("x-forwarded-for"),
        ..cfg()
    };
    match parse_request(bytes, &c) {
        Ok(r) => {
            assert!(r.head_len <= bytes.len() && r.head_len > 0);
            if let Target::Scrape(s) = r.target {
                assert_eq!(s.info_hashes().count(), s.len());
            }
        }
        Err(ParseError::Incomplete) => assert!(bytes.len() < c.max_head_len),
        Err(ParseError::Reject(s)) => assert_ne!(s, Status::Ok),
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=400)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_client_requests_never_panic(
        which in 0usize..5,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut b = [LIBTORRENT, TRANSMISSION, ARIA2, QBITTORRENT, CTORRENT][which].as_bytes().to_vec();
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        exercise(&b);
    }

    #[test]
    fn any_20_bytes_round_trip_through_percent_encoding(
        hash in any::<[u8; 20]>(),
        style in prop::collection::vec(0u8..3, 20),
    ) {
        // Each byte escaped upper, escaped lower, or bare when unreserved.
        let q: String = hash.iter().zip(&style).map(|(&b, &s)| match s {
            _ if s == 0 && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) => (b as char).to_string(),
            1 => format!("%{b:02x}"),
            _ => format!("%{b:02X}"),
        }).collect();
        let s = get(&format!("/scrape?info_hash={q}"));
        let r = parse_request(s.as_bytes(), &cfg()).unwrap();
        let Target::Scrape(sc) = r.target else { panic!() };
        prop_assert_eq!(sc.info_hashes().collect::<Vec<_>>(), vec![InfoHash(hash)]);
    }
}

#[test]
fn every_length_of_every_sample_and_its_mutations() {
    for sample in [LIBTORRENT, TRANSMISSION, ARIA2, QBITTORRENT, CTORRENT] {
        let b = sample.as_bytes();
        for n in 0..=b.len() {
            exercise(&b[..n]);
            let mut m = b[..n].to_vec();
            if let Some(last) = m.last_mut() {
                *last ^= 0x80;
            }
            exercise(&m);
        }
    }
}
