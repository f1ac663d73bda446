//! riptide-http end to end: the real binary over real sockets (IPv4 and
//! IPv6), started through the shared test harness.

mod support;

use riptide_test_support::Process;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::tracker;

fn addr(t: &Process, v4: bool) -> SocketAddr {
    t.addr("http", v4).expect("an http listener")
}

fn connect(a: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// One response: status code, whether it says `Connection: close`, body.
#[derive(Debug)]
struct Response {
    status: u16,
    close: bool,
    body: Vec<u8>,
}

/// Reads one HTTP response (with Content-Length) from `s`, keeping what
/// follows in `buf`.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("Content-Length")
                .parse()
                .unwrap();
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Response {
                    status: head[9..12].parse().unwrap(),
                    close: head.contains("Connection: close"),
                    body,
                };
            }
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).expect("read a response");
        assert!(n > 0, "closed before a whole response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn get(a: SocketAddr, target: &str) -> Response {
    let mut s = connect(a);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut s, &mut Vec::new())
}

fn esc(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        let _ = write!(out, "%{b:02X}");
    }
    out
}

/// A hash whose owner among the workers is `owner` modulo their number
/// (`shard_of` reads the first four bytes, big-endian).
fn hash(owner: u8, n: u8) -> [u8; 20] {
    let mut h = [0xF0u8 ^ n; 20];
    h[..4].copy_from_slice(&[0, 0, 0, owner]);
    h[19] = n;
    h
}

fn announce(hash: &[u8], peer: u8, port: u16, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=10{extra}",
        esc(hash),
        esc(&[peer; 20])
    )
}

/// The value after `key` in a flat bencoded dict (integers and strings).
fn field<'a>(body: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let k = format!("{}:{key}", key.len());
    let at = body.windows(k.len()).position(|w| w == k.as_bytes())? + k.len();
    let rest = &body[at..];
    if rest[0] == b'i' {
        let end = rest.iter().position(|&b| b == b'e')?;
        return Some(&rest[1..end]);
    }
    let colon = rest.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    rest.get(colon + 1..colon + 1 + len)
}

fn int(body: &[u8], key: &str) -> u64 {
    std::str::from_utf8(field(body, key).unwrap_or_else(|| panic!("no {key} in {body:?}")))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn compact_announces_see_each_other_on_both_families() {
    let t = tracker(2, "");
    for v4 in [true, false] {
        let a = addr(&t, v4);
        for first in [0u8, 1] {
            let h = hash(first, u8::from(v4));
            let r = get(a, &announce(&h, 1, 1111, ""));
            assert_eq!(r.status, 200);
            assert_eq!(int(&r.body, "incomplete"), 1);
            let r = get(a, &announce(&h, 2, 2222, "&left=0"));
            assert_eq!(
                (int(&r.body, "complete"), int(&r.body, "incomplete")),
                (1, 1)
            );
            let (key, len) = if v4 { ("peers", 6) } else { ("peers6", 18) };
            let peers = field(&r.body, key).unwrap_or_else(|| panic!("{key}: {:?}", r.body));
            assert_eq!(peers.len(), len, "one peer, the other announcer");
            assert_eq!(&peers[len - 2..], &1111u16.to_be_bytes());
            assert!(int(&r.body, "interval") > 0 && field(&r.body, "min interval").is_some());
        }
    }
}

#[test]
fn non_compact_announces_list_dicts() {
    let t = tracker(1, "");
    let a = addr(&t, true);
    let h = hash(7, 7);
    get(a, &announce(&h, 1, 1111, ""));
    let r = get(a, &announce(&h, 2, 2222, "&compact=0"));
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains("5:peersld2:ip9:127.0.0.14:porti1111ee"),
        "{body}"
    );
}

#[test]
fn scrape_of_several_raw_hashes_across_shards_counts_unknown_as_zeros() {
    let t = tracker(4, "");
    let a = addr(&t, true);
    let known: Vec<[u8; 20]> = (0..4).map(|w| hash(w, 0xFF)).collect();
    for h in &known {
        get(a, &announce(h, 3, 3333, "&left=0"));
    }
    let unknown = hash(0x80, 0x81);
    let mut q = String::new();
    for h in known.iter().chain([&unknown]) {
        q += "info_hash=";
        q += &esc(h);
        q += "&";
    }
    let r = get(a, &format!("/scrape?{q}"));
    assert_eq!(r.status, 200);
    for h in &known {
        let at = r.body.windows(20).position(|w| w == h).expect("every hash");
        let entry = &r.body[at + 20..];
        assert!(entry.starts_with(b"d8:completei1e10:downloadedi0e10:incompletei0ee"));
    }
    let at = r.body.windows(20).position(|w| w == unknown).unwrap();
    assert!(r.body[at + 20..].starts_with(b"d8:completei0e10:downloadedi0e10:incompletei0ee"));
}

#[test]
fn a_missing_or_wrong_length_info_hash_is_a_failure() {
    let t = tracker(1, "");
    let a = addr(&t, true);
    for h in [&[1u8; 19][..], &[1u8; 21][..]] {
        let r = get(a, &announce(h, 1, 1, ""));
        assert_eq!(r.status, 200);
        assert!(field(&r.body, "failure reason").is_some(), "{:?}", r.body);
    }
    let r = get(a, "/announce?peer_id=aaaaaaaaaaaaaaaaaaaa&port=1");
    assert!(field(&r.body, "failure reason").is_some());
}

#[test]
fn keep_alive_serves_several_requests_and_100_pipelined_ones_in_order_across_shards() {
    let t = tracker(4, "");
    let mut s = connect(addr(&t, true));
    let mut buf = Vec::new();
    for i in 0..5u8 {
        write!(
            s,
            "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
            announce(&hash(i, i), 1, 1000, "")
        )
        .unwrap();
        let r = read_response(&mut s, &mut buf);
        assert!(r.status == 200 && !r.close);
    }
    // 100 requests in one write, their torrents on every worker; each asks
    // for a different numwant so the answers can be told apart.
    let mut batch = String::new();
    for i in 0..100u8 {
        let _ = write!(
            batch,
            "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
            announce(&hash(i % 4, 50), 10 + i, 2000 + u16::from(i), "")
        );
    }
    s.write_all(batch.as_bytes()).unwrap();
    for i in 0..100u64 {
        let r = read_response(&mut s, &mut buf);
        assert_eq!(r.status, 200);
        // Peer i of torrent i%4 sees the i/4 that announced before it.
        assert_eq!(
            int(&r.body, "incomplete"),
            i / 4 + 1,
            "answer {i} out of order"
        );
    }
}

#[test]
fn oversized_heads_and_smuggling_shapes_are_refused_and_closed() {
    let t = tracker(1, "[http]\nmax_head_bytes = 1024\n");
    let a = addr(&t, true);
    let cases: [(&str, u16); 3] = [
        (
            "GET /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            400,
        ),
        (
            "GET /announce HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        ("GET /announce HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    ];
    for (req, want) in cases {
        let mut s = connect(a);
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf);
        assert_eq!((r.status, r.close), (want, true), "{req:?}");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
    }
    let mut s = connect(a);
    let long = format!("GET /announce?x={} HTTP/1.1\r\n", "a".repeat(2000));
    s.write_all(long.as_bytes()).unwrap();
    let r = read_response(&mut s, &mut Vec::new());
    assert_eq!(r.status, 431);
}

#[test]
fn a_slowloris_crowd_does_not_delay_a_normal_request() {
    let t = tracker(2, "[http]\nhead_timeout = 2\n");
    let a = addr(&t, true);
    let mut crowd: Vec<TcpStream> = (0..300).map(|_| connect(a)).collect();
    let line = b"GET /announce?info_hash=";
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    for round in 0..5 {
        for s in &mut crowd {
            let _ = s.write_all(&line[round..=round]);
        }
        let t0 = Instant::now();
        let r = get(a, &announce(&hash(1, 1), 1, 1, ""));
        worst = worst.max(t0.elapsed());
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        worst < Duration::from_millis(100),
        "a normal request took {worst:?}"
    );
    // The crowd is cut off at the head timeout.
    let mut dropped = 0;
    for s in &mut crowd {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 16];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            dropped += 1;
        }
    }
    assert_eq!(dropped, 300);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(t.metric("riptide_errors_total", "reason=\"head_timeout\"") >= 300);
}

#[test]
fn http_1_0_without_host_is_answered_then_closed() {
    let t = tracker(1, "");
    let mut s = connect(addr(&t, true));
    write!(
        s,
        "GET {} HTTP/1.0\r\n\r\n",
        announce(&hash(3, 3), 1, 1, "")
    )
    .unwrap();
    let r = read_response(&mut s, &mut Vec::new());
    assert_eq!((r.status, r.close), (200, true));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}
