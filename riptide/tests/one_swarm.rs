//! The combined process: a UDP peer and an HTTP peer of one torrent see
//! each other, on whichever worker owns it; WebTorrent peers beside them
//! trade offers and answers in their own swarm; metrics carry `proto`.

#[path = "../../ws/tests/client/mod.rs"]
mod client;

use client::{latin1, Client};
use riptide_test_support::{bencoded_string, Process};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

fn start(extra: &str) -> Process {
    Process::start(
        Path::new(env!("CARGO_BIN_EXE_riptide")),
        None,
        "riptide",
        &format!("workers = 2\n{extra}[network]\naddress_ipv4 = \"127.0.0.1:0\"\naddress_ipv6 = \"\"\n[metrics]\nenabled = true\naddress = \"127.0.0.1:0\"\n[webtorrent]\naddress_ipv4 = \"127.0.0.1:0\"\naddress_ipv6 = \"\"\n"),
    )
}

fn http_announce(a: SocketAddr, hash: &[u8; 20], peer: u8, port: u16) -> Vec<u8> {
    let esc = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!("%{x:02X}"));
            s
        })
    };
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /announce?info_hash={}&peer_id={}&port={port}&left=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        esc(hash),
        esc(&[peer; 20])
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// The 6-byte peers of a compact HTTP answer.
fn http_peers(resp: &[u8]) -> Vec<u8> {
    bencoded_string(resp, "peers").to_vec()
}

/// BEP 15: connect, then announce; returns the peers of the answer.
fn udp_announce(a: SocketAddr, hash: &[u8; 20], port: u16) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = 0x0417_2710_1980_u64.to_be_bytes().to_vec();
    req.extend_from_slice(&0u32.to_be_bytes());
    req.extend_from_slice(&7u32.to_be_bytes());
    s.send_to(&req, a).unwrap();
    let mut buf = [0u8; 1500];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(n, 16);
    let cid = &buf[8..16];
    let mut ann = cid.to_vec();
    ann.extend_from_slice(&1u32.to_be_bytes());
    ann.extend_from_slice(&8u32.to_be_bytes());
    ann.extend_from_slice(hash);
    ann.extend_from_slice(&[b'u'; 20]);
    ann.extend_from_slice(&0u64.to_be_bytes());
    ann.extend_from_slice(&1u64.to_be_bytes());
    ann.extend_from_slice(&0u64.to_be_bytes());
    ann.extend_from_slice(&2u32.to_be_bytes()); // started
    ann.extend_from_slice(&0u32.to_be_bytes());
    ann.extend_from_slice(&0u32.to_be_bytes());
    ann.extend_from_slice(&(-1i32).to_be_bytes());
    ann.extend_from_slice(&port.to_be_bytes());
    s.send_to(&ann, a).unwrap();
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..4], &1u32.to_be_bytes(), "an announce answer");
    buf[20..n].to_vec()
}

#[test]
fn a_udp_peer_and_an_http_peer_of_one_torrent_see_each_other() {
    let t = start("");
    assert!(t.addr("ws", true).is_none(), "ws is off by default");
    let udp = t.addr("udp", true).expect("a UDP socket");
    let http = t.addr("http", true).expect("an HTTP listener");
    // One torrent per worker, so both the local path and the hops are used.
    for first in [0u8, 1] {
        let mut hash = [0x5a; 20];
        hash[..4].copy_from_slice(&[0, 0, 0, first]);
        let r = http_announce(http, &hash, 1, 1111);
        assert!(r.starts_with(b"HTTP/1.1 200 OK"), "{r:?}");
        let peers = udp_announce(udp, &hash, 2222);
        assert_eq!(
            peers,
            [127, 0, 0, 1, 0x04, 0x57],
            "the UDP peer sees the HTTP one"
        );
        let peers = http_peers(&http_announce(http, &hash, 3, 3333));
        assert_eq!(peers.len(), 12, "the HTTP peer sees both");
        assert!(peers.chunks(6).any(|p| p == [127, 0, 0, 1, 0x08, 0xae]));
    }
    assert!(t.metric("riptide_requests_total", "proto=\"udp\",kind=\"announce\"") >= 2);
    assert!(t.metric("riptide_requests_total", "proto=\"http\",kind=\"announce\"") >= 4);
}

#[test]
fn udp_http_and_webtorrent_from_one_process() {
    let t = start("protocols = [\"udp\", \"http\", \"ws\"]\n");
    let (udp, http) = (t.addr("udp", true).unwrap(), t.addr("http", true).unwrap());
    let ws = t.addr("ws", true).expect("a ws listener");
    for owner in [0u8, 1] {
        let mut hash = [0x33; 20];
        hash[..4].copy_from_slice(&[0, 0, 0, owner]);
        let (pa, pb) = ([b'a'; 20], [b'b'; 20]);
        let announce = |pid: &[u8; 20], offers: bool| {
            let mut v = json!({"action": "announce", "info_hash": latin1(&hash),
                "peer_id": latin1(pid), "numwant": 1, "left": 0, "event": "started"});
            if offers {
                v["left"] = json!(1);
                v["offers"] = json!([{"offer": {"type": "offer", "sdp": "v=0"}, "offer_id": "o1"}]);
            }
            v
        };
        let mut a = Client::connect(ws, None);
        let mut b = Client::connect(ws, None);
        b.send_json(&announce(&pb, false));
        assert_eq!(b.recv_json()["complete"], 1);
        a.send_json(&announce(&pa, true));
        let r = a.recv_json();
        assert_eq!(
            (r["complete"].as_u64(), r["incomplete"].as_u64()),
            (Some(1), Some(1)),
            "{r}"
        );
        let offer = b.recv_json();
        assert_eq!(offer["offer_id"], "o1", "{offer}");
        b.send_json(&json!({"action": "announce", "info_hash": latin1(&hash), "peer_id": latin1(&pb),
            "to_peer_id": latin1(&pa), "offer_id": "o1", "answer": {"type": "answer", "sdp": "v=1"}}));
        assert_eq!(a.recv_json()["answer"]["sdp"], "v=1");
        // The same torrent over UDP and HTTP: their own swarm, which the
        // WebRTC peers are not in.
        let r = http_announce(http, &hash, 1, 1111);
        assert!(r.starts_with(b"HTTP/1.1 200 OK"), "{r:?}");
        assert_eq!(udp_announce(udp, &hash, 2222), [127, 0, 0, 1, 0x04, 0x57]);
    }
    assert!(t.metric("riptide_relayed_total", "proto=\"ws\",kind=\"offer\"") >= 2);
    assert!(t.metric("riptide_requests_total", "proto=\"http\",kind=\"announce\"") >= 2);
}
