//! riptide-http behind TLS and reverse proxies: HTTPS announces (TLS 1.2
//! and 1.3, IPv4 and IPv6) with a certificate made in the test, the
//! certificate reloaded on SIGUSR1 and seen by a new handshake,
//! X-Forwarded-For believed only from a trusted proxy, PROXY v1 and v2.

mod support;

use riptide_test_support::{bencoded_string, Process};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn tracker(extra: &str) -> Process {
    support::tracker(2, extra)
}

struct Cert {
    der: CertificateDer<'static>,
}

/// A fresh self-signed "localhost" certificate written to `dir`.
fn write_cert(dir: &Path) -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    Cert {
        der: ck.cert.der().clone(),
    }
}

fn client_config(root: &CertificateDer<'static>, tls12: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn esc(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("%{b:02X}"));
        s
    })
}

fn announce_req(hash: &[u8; 20], peer: u8, port: u16, headers: &str) -> String {
    format!(
        "GET /announce?info_hash={}&peer_id={}&port={port}&left=1 HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n",
        esc(hash),
        esc(&[peer; 20])
    )
}

/// Everything the server sends until it closes.
fn exchange(mut s: impl Read + Write, req: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // rustls reports a peer that closed without close_notify; a
            // refused connection is reset.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                break
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}

fn tls_connect(a: SocketAddr, cfg: &Arc<ClientConfig>) -> StreamOwned<ClientConnection, TcpStream> {
    let sock = TcpStream::connect(a).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let conn =
        ClientConnection::new(Arc::clone(cfg), ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, sock)
}

fn body(resp: &[u8]) -> &[u8] {
    let at = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &resp[at + 4..]
}

fn peers(resp: &[u8], key: &str) -> Vec<u8> {
    bencoded_string(body(resp), key).to_vec()
}

/// The `[tls]` section for the pair `write_cert` wrote into `d`: HTTPS on
/// 127.0.0.1, and on ::1 too if `ipv6`.
fn tls_section(d: &Path, ipv6: bool) -> String {
    format!(
        "[tls]\nenabled = true\ncert_path = \"{}\"\nkey_path = \"{}\"\naddress_ipv4 = \"127.0.0.1:0\"\naddress_ipv6 = \"{}\"\n",
        d.join("cert.pem").display(),
        d.join("key.pem").display(),
        if ipv6 { "[::1]:0" } else { "" }
    )
}

fn dir(name: &str) -> PathBuf {
    let d = riptide_test_support::temp_dir(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn https_announces_on_both_families_and_a_reloaded_certificate_is_served() {
    let d = dir("http-tls");
    let first = write_cert(&d);
    let t = tracker(&tls_section(&d, true));
    let hash = [9u8; 20];
    for (v4, tls12) in [(true, false), (true, true), (false, false)] {
        let a = t
            .addrs("https")
            .find(|a| a.is_ipv4() == v4)
            .expect("an https listener");
        let cfg = client_config(&first.der, tls12);
        let resp = exchange(
            tls_connect(a, &cfg),
            announce_req(&hash, 1, 1111, "").as_bytes(),
        );
        assert!(resp.starts_with(b"HTTP/1.1 200 OK"), "{resp:?}");
        assert!(body(&resp).starts_with(b"d8:complete"), "{resp:?}");
    }
    // Plain HTTP runs beside it.
    let plain = t.addr("http", true).unwrap();
    let resp = exchange(
        TcpStream::connect(plain).unwrap(),
        announce_req(&hash, 2, 2222, "").as_bytes(),
    );
    assert_eq!(peers(&resp, "peers").len(), 6);

    // A new pair, SIGUSR1: a new handshake sees it.
    let second = write_cert(&d);
    t.signal(nix::sys::signal::Signal::SIGUSR1);
    t.wait_log("TLS: reloaded");
    let a = t.addrs("https").find(SocketAddr::is_ipv4).unwrap();
    let mut s = tls_connect(a, &client_config(&second.der, false));
    let resp = exchange(&mut s, announce_req(&hash, 3, 3333, "").as_bytes());
    assert!(resp.starts_with(b"HTTP/1.1 200 OK"));
    assert_eq!(
        s.conn.peer_certificates().unwrap()[0],
        second.der,
        "the old certificate after the reload"
    );
    assert!(t.metric("riptide_tls_handshakes_total", "result=\"ok\"") >= 4);
}

#[test]
fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let t = tracker("[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let hash = [4u8; 20];
    let v4 = t.addr("http", true).unwrap();
    let v6 = t.addr("http", false).unwrap();
    // From the trusted proxy: the rightmost untrusted entry is the client.
    exchange(
        TcpStream::connect(v4).unwrap(),
        announce_req(&hash, 1, 1111, "X-Forwarded-For: 10.9.8.7, 127.0.0.1\r\n").as_bytes(),
    );
    // From ::1, not trusted: the header is ignored (an IPv6 peer is stored).
    exchange(
        TcpStream::connect(v6).unwrap(),
        announce_req(&hash, 2, 2222, "X-Forwarded-For: 10.1.1.1\r\n").as_bytes(),
    );
    let resp = exchange(
        TcpStream::connect(v4).unwrap(),
        announce_req(&hash, 3, 3333, "").as_bytes(),
    );
    let p = peers(&resp, "peers");
    assert_eq!(p, [10, 9, 8, 7, 0x04, 0x57], "only the forwarded client");
}

#[test]
fn proxy_protocol_v1_and_v2_name_the_client_and_a_bare_connection_is_refused() {
    let t = tracker("[http]\nproxy_protocol = true\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    let a = t.addr("http", true).unwrap();
    let hash = [5u8; 20];
    let v1 = format!(
        "PROXY TCP4 10.2.3.4 127.0.0.1 5555 {}\r\n{}",
        a.port(),
        announce_req(&hash, 1, 1111, "")
    );
    exchange(TcpStream::connect(a).unwrap(), v1.as_bytes());
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v2.extend_from_slice(&[10, 5, 6, 7, 127, 0, 0, 1]);
    v2.extend_from_slice(&6666u16.to_be_bytes());
    v2.extend_from_slice(&a.port().to_be_bytes());
    v2.extend_from_slice(announce_req(&hash, 2, 2222, "").as_bytes());
    let resp = exchange(TcpStream::connect(a).unwrap(), &v2);
    assert_eq!(peers(&resp, "peers"), [10, 2, 3, 4, 0x04, 0x57]);
    // No header: refused.
    let resp = exchange(
        TcpStream::connect(a).unwrap(),
        announce_req(&hash, 3, 3333, "").as_bytes(),
    );
    assert!(resp.is_empty(), "answered without a PROXY header: {resp:?}");
}

/// Announces of torrents `from..to` (both workers own some), pipelined on
/// one keep-alive connection.
fn announce_many(a: SocketAddr, from: u16, to: u16) {
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reqs = String::new();
    for i in from..to {
        let mut h = [0x11u8; 20];
        h[..2].copy_from_slice(&i.to_be_bytes());
        h[2..4].copy_from_slice(&i.to_be_bytes());
        reqs += &announce_req(&h, 1, 1000, "").replace("Connection: close\r\n", "");
    }
    reqs += &announce_req(&[0xee; 20], 1, 1000, "");
    let all = exchange(&mut s, reqs.as_bytes());
    let answers = all.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    assert_eq!(answers, usize::from(to - from) + 1);
}

#[test]
fn full_scrape_is_opt_in_rate_limited_and_streamed_whole_over_plain_and_tls() {
    let t = tracker("");
    let a = t.addr("http", true).unwrap();
    let resp = exchange(
        TcpStream::connect(a).unwrap(),
        b"GET /scrape HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(body(&resp).starts_with(b"d14:failure reason"), "{resp:?}");

    let d = dir("http-full-scrape");
    let cert = write_cert(&d);
    let t = tracker(&format!(
        "[http]\nfull_scrape = true\nfull_scrape_interval = 1\n{}",
        tls_section(&d, false)
    ));
    let plain = t.addr("http", true).unwrap();
    let tls = t.addr("https", true).unwrap();
    for from in (0..4000).step_by(100) {
        announce_many(plain, from, from + 100);
    }
    let scrape = b"GET /scrape HTTP/1.1\r\nHost: t\r\n\r\nGET /scrape HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for tls in [None, Some(tls)] {
        // Every worker has published its part since, and this address may
        // ask again.
        std::thread::sleep(Duration::from_millis(2200));
        let resp = match tls {
            None => exchange(TcpStream::connect(plain).unwrap(), scrape),
            Some(a) => exchange(tls_connect(a, &client_config(&cert.der, false)), scrape),
        };
        let b = body(&resp);
        assert!(
            b.starts_with(b"d5:filesd20:"),
            "{:?}",
            &resp[..200.min(resp.len())]
        );
        let files = b.windows(11).filter(|w| w == b"8:completei").count();
        // The second request on the connection: refused until the interval passed.
        let refused = resp.windows(16).any(|w| w == b"at most once per");
        assert!(refused, "no rate limit");
        assert_eq!(
            files,
            4001,
            "every torrent, streamed whole ({} bytes)",
            resp.len()
        );
    }
    assert_eq!(
        t.metric("riptide_responses_total", "kind=\"full_scrape\""),
        2
    );
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_with_close_notify() {
    let d = dir("http-sigterm");
    let cert = write_cert(&d);
    let t = tracker(&tls_section(&d, false));
    let mut tls = tls_connect(
        t.addr("https", true).unwrap(),
        &client_config(&cert.der, false),
    );
    let mut plain = TcpStream::connect(t.addr("http", true).unwrap()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let req = announce_req(&[3; 20], 1, 1000, "").replace("Connection: close\r\n", "");
    for s in [&mut tls as &mut dyn ReadWrite, &mut plain] {
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    }
    assert!(t.stop().success());
    // Both see a clean end: EOF, and over TLS a close_notify before it
    // (rustls reports a bare EOF as UnexpectedEof).
    let mut buf = [0u8; 64];
    assert_eq!(plain.read(&mut buf).unwrap(), 0);
    assert_eq!(tls.read(&mut buf).unwrap(), 0);
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
