//! riptide-ws end to end: the real binary over real sockets, ws:// and
//! wss://, IPv4 and IPv6, with two workers (so a torrent's owner, the
//! announcing connection and the offer's target are often on different
//! workers and everything crosses the byte mesh).

mod client;

use client::{latin1, test_cert, upgrade_request, Client, Got};
use riptide_test_support::Process;
use riptide_ws::protocol::Opcode;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Tracker {
    p: Process,
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn tracker(extra: &str) -> Tracker {
    let dir = riptide_test_support::temp_dir("riptide-ws-certs");
    let tls = test_cert(&dir);
    let config = format!(
        "workers = 2\nlog_level = \"info\"\n[network]\naddress_ipv4 = \"127.0.0.1:0\"\naddress_ipv6 = \"[::1]:0\"\n\
         [tls]\nenabled = true\ncert_path = \"{}\"\nkey_path = \"{}\"\naddress_ipv4 = \"127.0.0.1:0\"\naddress_ipv6 = \"[::1]:0\"\n\
         [metrics]\nenabled = true\naddress = \"127.0.0.1:0\"\n{extra}",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let p = Process::start(
        Path::new(env!("CARGO_BIN_EXE_riptide-ws")),
        None,
        "riptide-ws",
        &config,
    );
    Tracker { p, tls: Some(tls) }
}

impl Tracker {
    fn addr(&self, wss: bool, v4: bool) -> SocketAddr {
        self.p
            .addr(if wss { "wss" } else { "ws" }, v4)
            .expect("a listener")
    }

    fn client(&self, wss: bool, v4: bool) -> Client {
        Client::connect(
            self.addr(wss, v4),
            if wss { self.tls.as_ref() } else { None },
        )
    }
}

/// A hash whose first four bytes pick its owner among two workers.
fn hash(owner: u8, n: u8) -> [u8; 20] {
    let mut h = [0x80 | n; 20];
    h[..4].copy_from_slice(&[0, 0, 0, owner]);
    h
}

fn peer(n: u8) -> [u8; 20] {
    // Bytes above 0x7f and below 0x20 travel as latin-1 code points.
    let mut p = [b'.'; 20];
    p[..8].copy_from_slice(b"-RT0001-");
    p[8..11].copy_from_slice(&[0xe9, 0x00, 0xff]);
    p[11] = n;
    p
}

fn announce(ih: &[u8], pid: &[u8], event: Option<&str>, offers: &[(&str, &str)]) -> Value {
    let mut v = json!({
        "action": "announce",
        "info_hash": latin1(ih),
        "peer_id": latin1(pid),
        "numwant": offers.len().max(1),
        "uploaded": 0, "downloaded": 0, "left": null,
    });
    if let Some(e) = event {
        v["event"] = json!(e);
    }
    if !offers.is_empty() {
        v["offers"] = offers
            .iter()
            .map(|(id, sdp)| json!({"offer": {"type": "offer", "sdp": sdp}, "offer_id": id}))
            .collect();
    }
    v
}

fn expect_reply(c: &mut Client, ih: &[u8]) -> Value {
    let v = c.recv_json();
    assert_eq!(v["action"], "announce", "{v}");
    assert_eq!(v["info_hash"], latin1(ih), "{v}");
    assert!(v.get("failure reason").is_none(), "{v}");
    assert!(v["complete"].is_u64() && v["incomplete"].is_u64(), "{v}");
    assert!(v["interval"].is_u64(), "{v}");
    v
}

/// A and B join a torrent; A's offer reaches B, B's answer reaches A.
fn offer_and_answer(t: &Tracker, wss: bool, v4: bool) {
    for owner in 0..2 {
        let ih = hash(owner, u8::from(wss) * 2 + u8::from(v4));
        let (pa, pb) = (peer(1), peer(2));
        let mut a = t.client(wss, v4);
        let mut b = t.client(wss, v4);
        b.send_json(&announce(&ih, &pb, Some("started"), &[]));
        let r = expect_reply(&mut b, &ih);
        assert_eq!(r["incomplete"], 1, "{r}");
        let sdp = "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\na=\"quoted\" \\ é";
        a.send_json(&announce(
            &ih,
            &pa,
            Some("started"),
            &[("offer-id-\u{ff}-1", sdp)],
        ));
        let r = expect_reply(&mut a, &ih);
        assert_eq!(r["incomplete"], 2, "{r}");
        let offer = b.recv_json();
        assert_eq!(offer["action"], "announce", "{offer}");
        assert_eq!(offer["peer_id"], latin1(&pa));
        assert_eq!(offer["info_hash"], latin1(&ih));
        assert_eq!(offer["offer_id"], "offer-id-\u{ff}-1");
        assert_eq!(offer["offer"], json!({"type": "offer", "sdp": sdp}));
        let answer = json!({
            "action": "announce", "info_hash": latin1(&ih), "peer_id": latin1(&pb),
            "to_peer_id": latin1(&pa), "offer_id": "offer-id-\u{ff}-1",
            "answer": {"type": "answer", "sdp": "v=0 answer"},
        });
        b.send_json(&answer);
        let got = a.recv_json();
        assert_eq!(got["peer_id"], latin1(&pb), "{got}");
        assert_eq!(
            got["answer"],
            json!({"type": "answer", "sdp": "v=0 answer"})
        );
        assert_eq!(got["offer_id"], "offer-id-\u{ff}-1");
        // No reply to the answerer; a second answer to the same offer is dropped.
        b.send_json(&answer);
        assert_eq!(b.recv_within(Duration::from_millis(300)), Got::Nothing);
        assert_eq!(a.recv_within(Duration::from_millis(300)), Got::Nothing);
        // Scrape: one hash, and an array with an unknown one.
        b.send_json(&json!({"action": "scrape", "info_hash": latin1(&ih)}));
        let s = b.recv_json();
        assert_eq!(s["action"], "scrape", "{s}");
        assert_eq!(s["files"][latin1(&ih)]["incomplete"], 2, "{s}");
        let other = hash(1 - owner, 99);
        b.send_json(&json!({"action": "scrape", "info_hash": [latin1(&ih), latin1(&other)]}));
        let s = b.recv_json();
        assert_eq!(s["files"][latin1(&ih)]["complete"], 0, "{s}");
        assert_eq!(s["files"][latin1(&other)]["incomplete"], 0, "{s}");
        // A stopped gets no reply and leaves.
        a.send_json(&announce(&ih, &pa, Some("stopped"), &[]));
        assert_eq!(a.recv_within(Duration::from_millis(300)), Got::Nothing);
        b.send_json(&json!({"action": "scrape", "info_hash": latin1(&ih)}));
        assert_eq!(b.recv_json()["files"][latin1(&ih)]["incomplete"], 1);
    }
}

#[test]
fn offers_and_answers_cross_workers_over_ws_and_wss_v4_and_v6() {
    let t = tracker("");
    for wss in [false, true] {
        for v4 in [true, false] {
            offer_and_answer(&t, wss, v4);
        }
    }
    assert!(t.p.metric("riptide_relayed_total", "kind=\"offer\"") >= 8);
    assert!(t.p.metric("riptide_relayed_total", "kind=\"answer\"") >= 8);
    assert!(t.p.metric("riptide_announces_total", "path=\"forwarded\"") > 0);
    assert!(t.p.metric("riptide_tls_handshakes_total", "result=\"ok\"") >= 4);
}

#[test]
fn each_offer_goes_to_a_different_peer_never_the_sender() {
    let t = tracker("");
    let ih = hash(0, 50);
    let mut peers: Vec<Client> = (0..4).map(|i| t.client(i % 2 == 0, true)).collect();
    for (i, c) in peers.iter_mut().enumerate() {
        c.send_json(&announce(&ih, &peer(10 + i as u8), None, &[]));
        expect_reply(c, &ih);
    }
    let mut sender = t.client(false, true);
    let offers: Vec<(String, String)> = (0..6)
        .map(|i| (format!("o{i}"), format!("sdp {i}")))
        .collect();
    let refs: Vec<(&str, &str)> = offers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    sender.send_json(&announce(&ih, &peer(99), None, &refs));
    expect_reply(&mut sender, &ih);
    for c in &mut peers {
        let v = c.recv_json();
        assert_eq!(v["peer_id"], latin1(&peer(99)), "{v}");
        assert_eq!(
            c.recv_within(Duration::from_millis(200)),
            Got::Nothing,
            "one offer each"
        );
    }
    assert_eq!(sender.recv_within(Duration::from_millis(200)), Got::Nothing);
}

#[test]
fn a_client_that_vanishes_leaves_every_swarm_and_gets_no_offers() {
    let t = tracker("");
    let (ih1, ih2) = (hash(0, 60), hash(1, 61));
    let mut gone = t.client(false, true);
    for ih in [&ih1, &ih2] {
        gone.send_json(&announce(ih, &peer(1), Some("started"), &[]));
        expect_reply(&mut gone, ih);
    }
    // Dropped without a close frame (a closed tab).
    drop(gone);
    let mut other = t.client(false, false);
    for ih in [&ih1, &ih2] {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            other.send_json(&json!({"action": "scrape", "info_hash": latin1(ih)}));
            let s = other.recv_json();
            if s["files"][latin1(ih)]["incomplete"] == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still in the swarm: {s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        other.send_json(&announce(ih, &peer(2), None, &[("x", "sdp")]));
        let r = expect_reply(&mut other, ih);
        assert_eq!(r["incomplete"], 1, "{r}");
    }
    assert_eq!(t.p.metric("riptide_relayed_total", "kind=\"offer\""), 0);
}

#[test]
fn a_live_peer_id_on_another_connection_gets_a_failure() {
    let t = tracker("");
    let ih = hash(1, 70);
    let mut first = t.client(false, true);
    first.send_json(&announce(&ih, &peer(5), None, &[]));
    expect_reply(&mut first, &ih);
    let mut second = t.client(false, true);
    second.send_json(&announce(&ih, &peer(5), None, &[]));
    let v = second.recv_json();
    assert_eq!(v["action"], "announce", "{v}");
    assert_eq!(v["info_hash"], latin1(&ih));
    assert!(
        v["failure reason"].as_str().unwrap().contains("peer_id"),
        "{v}"
    );
    // Once the first connection is gone, the id is free.
    first.send_frame(Opcode::Close, &1000u16.to_be_bytes());
    assert_eq!(first.recv(), Got::Close(Some(1000)));
    std::thread::sleep(Duration::from_millis(300));
    second.send_json(&announce(&ih, &peer(5), None, &[]));
    expect_reply(&mut second, &ih);
}

/// Sends `bad` on a fresh connection, expects `want` and then that a
/// bystander is still served.
fn refused(t: &Tracker, send: impl FnOnce(&mut Client), want: impl Fn(&Got) -> bool, what: &str) {
    let mut c = t.client(false, true);
    send(&mut c);
    let got = c.recv();
    assert!(want(&got), "{what}: got {got:?}");
    let mut ok = t.client(true, false);
    let ih = hash(0, 80);
    ok.send_json(&announce(&ih, &peer(80), None, &[]));
    expect_reply(&mut ok, &ih);
}

#[test]
fn broken_frames_and_messages_are_refused_as_the_rfc_says() {
    let t = tracker("[ws]\nmax_message_bytes = 8192\nmax_sdp_bytes = 4096\n");
    let close = |code: u16| move |g: &Got| *g == Got::Close(Some(code));
    refused(
        &t,
        |c| c.send_frame(Opcode::Binary, b"\x01\x02"),
        close(1003),
        "binary",
    );
    refused(
        &t,
        |c| c.send_raw(&[0x81, 0x02, b'{', b'}']),
        close(1002),
        "unmasked frame",
    );
    refused(
        &t,
        |c| c.send_frame(Opcode::Text, b"{\"a\":\"\xff\xfe\"}"),
        close(1007),
        "bad UTF-8",
    );
    refused(
        &t,
        |c| c.send_frame(Opcode::Text, &vec![b' '; 9000]),
        close(1009),
        "oversized",
    );
    let failure = |g: &Got| matches!(g, Got::Text(v) if v["failure reason"].is_string() && v["action"].is_string());
    refused(
        &t,
        |c| c.send_frame(Opcode::Text, b"{\"action\":\"announce\","),
        failure,
        "invalid JSON",
    );
    let deep = format!(
        "{{\"action\":\"announce\",\"x\":{}1{}}}",
        "[".repeat(500),
        "]".repeat(500)
    );
    refused(
        &t,
        |c| c.send_frame(Opcode::Text, deep.as_bytes()),
        failure,
        "deep JSON",
    );
    let wide = |c: &mut Client| {
        let v = json!({"action": "announce", "info_hash": "\u{100}aaaaaaaaaaaaaaaaaaa", "peer_id": latin1(&peer(1))});
        c.send_json(&v);
    };
    refused(&t, wide, failure, "code point > 255");
    // Ping is answered; a fragmented message is reassembled.
    let mut c = t.client(false, true);
    c.send_frame(Opcode::Ping, b"hi");
    assert_eq!(c.recv(), Got::Pong(b"hi".to_vec()));
    let ih = hash(1, 81);
    let text = announce(&ih, &peer(81), None, &[]).to_string();
    let (x, y) = text.as_bytes().split_at(10);
    c.send_fragment(Opcode::Text, false, x);
    c.send_frame(Opcode::Ping, b"mid");
    c.send_fragment(Opcode::Continuation, true, y);
    assert_eq!(c.recv(), Got::Pong(b"mid".to_vec()));
    expect_reply(&mut c, &ih);
    assert!(t.p.metric("riptide_errors_total", "reason=\"frame\"") >= 3);
}

#[test]
fn handshakes_that_are_not_websocket_are_refused() {
    let t = tracker("");
    for (req, status) in [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), "426"),
        (
            upgrade_request("").replace("Version: 13", "Version: 8"),
            "426",
        ),
        (upgrade_request("").replace("GET", "POST"), "405"),
    ] {
        let mut s = client::tcp(t.addr(false, true));
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status}")),
            "{req:?} -> {out}"
        );
    }
}

#[test]
fn a_close_frame_is_answered_with_one_and_sigterm_sends_1001() {
    let t = tracker("");
    let mut c = t.client(true, true);
    c.send_frame(Opcode::Close, &[0x03, 0xE8, b'b', b'y', b'e']);
    assert_eq!(c.recv(), Got::Close(Some(1000)));
    assert_eq!(c.recv(), Got::Gone);
    let mut a = t.client(false, true);
    let mut b = t.client(true, false);
    std::thread::sleep(Duration::from_millis(100));
    let status = t.p.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(a.recv(), Got::Close(Some(1001)));
    assert_eq!(b.recv(), Got::Close(Some(1001)));
}

#[test]
fn an_idle_connection_is_closed_and_a_slow_reader_is_cut_off() {
    let t = tracker(
        "[protocol]\nannounce_interval = 1\n[ws]\nidle_timeout = 2\nmax_outbound_bytes = 65536\n",
    );
    let mut idle = t.client(false, true);
    assert_eq!(
        idle.recv_within(Duration::from_secs(5)),
        Got::Close(Some(1000))
    );

    let ih = hash(0, 90);
    // The slow reader: a small receive buffer, and it never reads.
    let slow_sock = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&t.addr(false, true).into()).unwrap();
        let s: std::net::TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let mut slow = Client::upgrade(Box::new(slow_sock));
    slow.send_json(&announce(&ih, &peer(1), None, &[]));
    let mut sender = t.client(false, true);
    let sdp = "x".repeat(15_000);
    let mut closed = false;
    for i in 0..2000 {
        sender.send_json(&announce(&ih, &peer(2), None, &[(&format!("o{i}"), &sdp)]));
        expect_reply(&mut sender, &ih);
        if t.p
            .metric("riptide_ws_closes_total", "reason=\"slow_reader\"")
            > 0
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow reader was never cut off");
    // The sender is still served, and the slow reader left the swarm.
    std::thread::sleep(Duration::from_millis(200));
    sender.send_json(&announce(&ih, &peer(2), None, &[]));
    let r = expect_reply(&mut sender, &ih);
    assert_eq!(r["incomplete"], 1, "{r}");
}

#[test]
fn proxy_protocol_and_forwarded_for_name_the_client_only_from_trusted_proxies() {
    let t = tracker("[ws]\nproxy_protocol = true\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let ih = hash(0, 100);
    // From a trusted proxy (127.0.0.1): the PROXY header's IPv6 source is the client.
    let head = "PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n";
    announce_after(t.addr(false, true), head, "", &ih, 1);
    assert_eq!(t.p.metric("riptide_requests_total", "ip=\"6\""), 1);
    // From ::1, not trusted: refused before the upgrade.
    assert_refused(
        t.addr(false, false),
        "PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\n",
    );
    assert_eq!(
        t.p.metric("riptide_errors_total", "reason=\"untrusted_proxy\""),
        1
    );
    // Without the header: refused too.
    assert_refused(t.addr(false, true), "");

    let t = tracker("[ws]\ntrusted_proxies = [\"::1/128\"]\n");
    // X-Forwarded-For from the trusted ::1 names an IPv4 client ...
    let forwarded = "X-Forwarded-For: 198.51.100.7\r\n";
    announce_after(t.addr(false, false), "", forwarded, &ih, 2);
    assert_eq!(t.p.metric("riptide_requests_total", "ip=\"4\""), 1);
    // ... and is ignored from anyone else.
    let forwarded = "X-Forwarded-For: 2001:db8::9\r\n";
    announce_after(t.addr(false, true), "", forwarded, &ih, 3);
    assert_eq!(t.p.metric("riptide_requests_total", "ip=\"4\""), 2);
    assert_eq!(t.p.metric("riptide_requests_total", "ip=\"6\""), 0);
}

/// Sends `proxy_header` and an upgrade request with `extra_headers` in one
/// write (a header alone could meet the tracker's reset), then announces
/// `ih` as peer `n` and waits for the reply.
fn announce_after(addr: SocketAddr, proxy_header: &str, extra_headers: &str, ih: &[u8], n: u8) {
    let mut s = client::tcp(addr);
    let req = format!("{proxy_header}{}", upgrade_request(extra_headers));
    s.write_all(req.as_bytes()).unwrap();
    let mut c = Client::upgrade_sent(Box::new(s));
    c.send_json(&announce(ih, &peer(n), None, &[]));
    expect_reply(&mut c, ih);
}

/// An upgrade request after `proxy_header` is refused: the connection
/// closes with nothing written back.
fn assert_refused(addr: SocketAddr, proxy_header: &str) {
    let mut s = client::tcp(addr);
    let req = format!("{proxy_header}{}", upgrade_request(""));
    let _ = s.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}
