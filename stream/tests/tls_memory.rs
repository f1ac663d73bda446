//! `TlsSession` against a real rustls client, in memory: the runtime's
//! receive carry and send rooms are stood in for by `support::MemServer`.
//! Byte-by-byte delivery, tight rooms, records split and coalesced,
//! plaintext carried between reads, large writes, close_notify, bad input.

mod support;

use riptide_stream::rustls::{self, ClientConfig, HandshakeKind, ProtocolVersion};
use riptide_stream::tls::TlsPhase;
use riptide_stream::{TlsError, TlsOptions, TlsSession};
use std::sync::Arc;
use support::*;

/// For TLS 1.3 and 1.2: a client config trusting `cert` and asking for
/// `alpn`, limited to that version, and the version.
fn configs(cert: &TestCert, alpn: &[&[u8]]) -> [(Arc<ClientConfig>, ProtocolVersion); 2] {
    [
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
    ]
    .map(|(v, version)| (client_config(&cert.der, Some(v), alpn), version))
}

#[test]
fn handshake_alpn_echo_both_versions() {
    let (store, cert) = store(TlsOptions::default());
    for (cfg, want) in configs(&cert, &[b"http/1.1"]) {
        let (mut c, mut s) = pair(&cfg, &store);
        assert_eq!(s.tls.phase(), TlsPhase::Handshaking);
        handshake(&mut c, &mut s, 1 << 20).unwrap();
        assert_eq!(s.handshake_done, 1);
        assert_eq!(s.tls.phase(), TlsPhase::Established);
        assert_eq!(s.tls.alpn(), Some(&b"http/1.1"[..]));
        assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(s.tls.protocol_version(), Some(want));
        assert_eq!(s.tls.handshake_kind(), Some(HandshakeKind::Full));

        let got = echo(&mut c, &mut s, b"hello\nworld\n", 1 << 20);
        assert_eq!(got, b"hello\nworld\n");
    }
}

#[test]
fn no_alpn_configured_and_client_without_alpn() {
    let (store, cert) = store(TlsOptions {
        alpn: Vec::new(),
        ..TlsOptions::default()
    });
    let cfg = client_config(&cert.der, None, &[]);
    let (_, s) = connected(&cfg, &store);
    assert_eq!(s.tls.alpn(), None);
}

#[test]
fn alpn_mismatch_fails_with_alert() {
    let (store, cert) = store(TlsOptions::default());
    let cfg = client_config(&cert.der, None, &[b"h2"]);
    let (mut c, mut s) = pair(&cfg, &store);
    let e = client_to_server(&mut c, &mut s, 1 << 20, true).unwrap_err();
    assert!(e.contains("TLS"), "{e}");
    assert_eq!(s.tls.phase(), TlsPhase::Failed);
    // The alert reached the client.
    let e = server_to_client(&mut s, &mut c).unwrap_err();
    assert!(e.contains("NoApplicationProtocol"), "{e}");
}

/// Every byte a separate receive, every room exactly as large as asked:
/// the carry and InsufficientSize paths on every record.
#[test]
fn byte_by_byte_and_tight_rooms() {
    let (store, cert) = store(TlsOptions::default());
    for (cfg, _) in configs(&cert, &[b"http/1.1"]) {
        let (mut c, mut s) = pair(&cfg, &store);
        s.tight = true;
        handshake(&mut c, &mut s, 1).unwrap();
        let msg: Vec<u8> = (0..3000u32)
            .map(|i| {
                if i % 97 == 96 {
                    b'\n'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        let whole = msg.len() - msg.iter().rev().position(|&b| b == b'\n').unwrap();
        let got = echo(&mut c, &mut s, &msg, 1);
        assert_eq!(got, &msg[..whole]);
        assert_eq!(s.received, &msg[..whole]);
        // The partial last line waits in the carry as plaintext, in front
        // of nothing; the rest of it completes it.
        let got = echo(&mut c, &mut s, b"tail\n", 3);
        let mut want = msg[whole..].to_vec();
        want.extend_from_slice(b"tail\n");
        assert_eq!(got, want);
    }
}

/// A line split over several records and receives arrives in one piece;
/// several records in one receive are laid out contiguously.
#[test]
fn lines_across_records_are_contiguous() {
    let (store, cert) = store(TlsOptions::default());
    let cfg = client_config(&cert.der, None, &[]);
    let (mut c, mut s) = connected(&cfg, &store);
    // Each client write is its own record.
    for part in [
        &b"GET /announce?"[..],
        b"info_hash=x",
        b"&port=1 HTTP/1.1\r\n",
        b"\n",
        b"a\nb",
        b"\n",
    ] {
        client_send(&mut c, part);
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        // Deliver two records at a time in odd pieces.
        s.recv(&wire[..wire.len() / 2], true).unwrap();
        s.recv(&wire[wire.len() / 2..], true).unwrap();
    }
    let got = server_to_client(&mut s, &mut c).unwrap();
    let want = b"GET /announce?info_hash=x&port=1 HTTP/1.1\r\n\na\nb\n";
    assert_eq!(got, want);
    // Several records in one receive.
    for part in [&b"one "[..], b"two ", b"three\nfour", b"\n"] {
        client_send(&mut c, part);
    }
    client_to_server(&mut c, &mut s, 1 << 20, true).unwrap();
    let got = server_to_client(&mut s, &mut c).unwrap();
    assert_eq!(got, b"one two three\nfour\n");
}

/// Writes larger than a chunk are split into records that each fit one
/// room; small rooms (chunk 1000) force many records.
#[test]
fn large_writes_split_into_rooms() {
    for (chunk, max_record) in [(16 * 1024, 16 * 1024), (1000, 1000)] {
        let (store, cert) = store(TlsOptions {
            max_record_bytes: max_record,
            ..TlsOptions::default()
        });
        for (cfg, _) in configs(&cert, &[]) {
            let (mut c, mut s) = pair(&cfg, &store);
            s.chunk = chunk;
            handshake(&mut c, &mut s, 1 << 20).unwrap();
            let mut line: Vec<u8> = (0..100_000u32).map(|i| b'A' + (i % 26) as u8).collect();
            line.push(b'\n');
            // The client buffers at most 64 KiB: hand it over in parts.
            for part in line.chunks(30_000) {
                client_send(&mut c, part);
                client_to_server(&mut c, &mut s, 4096, true).unwrap();
            }
            assert!(s.carry.len() < 5 + 16 * 1024 + 256, "{}", s.carry.len());
            let got = server_to_client(&mut s, &mut c).unwrap();
            assert_eq!(got, line, "chunk {chunk}");
        }
    }
}

#[test]
fn close_notify_both_ways() {
    let (store, cert) = store(TlsOptions::default());
    for (cfg, _) in configs(&cert, &[]) {
        let (mut c, mut s) = connected(&cfg, &store);
        client_send(&mut c, b"last\n");
        c.send_close_notify();
        client_to_server(&mut c, &mut s, 1 << 20, true).unwrap();
        assert!(s.peer_closed);
        assert!(s.tls.peer_closed());
        assert_eq!(s.received, b"last\n");
        s.close_notify().unwrap();
        assert_eq!(s.tls.phase(), TlsPhase::CloseSent);
        // A second close_notify is a no-op; writing after it fails.
        s.close_notify().unwrap();
        let got = server_to_client(&mut s, &mut c).unwrap();
        assert_eq!(got, b"last\n");
        let mut buf = [0u8; 8];
        assert_eq!(std::io::Read::read(&mut c.reader(), &mut buf).unwrap(), 0);
        let mut out = |_: usize, _: &mut dyn FnMut(&mut [u8]) -> usize| Ok::<usize, ()>(0);
        assert!(matches!(s.tls.write(b"x", &mut out), Err(TlsError::Closed)));
    }
}

#[test]
fn write_before_handshake_and_refused_writer() {
    let (store, cert) = store(TlsOptions::default());
    let mut tls = store.new_session().unwrap();
    let mut out = |_: usize, _: &mut dyn FnMut(&mut [u8]) -> usize| Ok::<usize, ()>(0);
    assert!(matches!(
        tls.write(b"x", &mut out),
        Err(TlsError::HandshakeIncomplete)
    ));
    assert!(matches!(
        tls.send_close_notify(&mut out),
        Err(TlsError::HandshakeIncomplete)
    ));
    // A writer that refuses: the error comes back as Write.
    let cfg = client_config(&cert.der, None, &[]);
    let (mut c, mut s) = connected(&cfg, &store);
    let mut full =
        |_: usize, _: &mut dyn FnMut(&mut [u8]) -> usize| Err::<usize, &str>("QueueFull");
    assert!(matches!(
        s.tls.write(b"x", &mut full),
        Err(TlsError::Write("QueueFull"))
    ));
    // A writer that accepts two records and then refuses: partial count.
    let mut n = 0;
    let mut sent = Vec::new();
    let mut partial = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
        n += 1;
        if n > 2 {
            return Err("QueueFull");
        }
        let mut room = vec![0u8; min];
        let w = fill(&mut room);
        sent.extend_from_slice(&room[..w]);
        Ok(w)
    };
    let big = vec![b'z'; 10_000];
    let took = s.tls.write(&big, &mut partial).unwrap();
    assert!(took > 0 && took < big.len(), "{took}");
    // The bytes written so far are valid records the client decrypts.
    s.sent = sent;
    let got = server_to_client(&mut s, &mut c).unwrap();
    assert_eq!(got, &big[..took]);
}

#[test]
fn garbage_fails_cleanly() {
    let (store, _) = store(TlsOptions::default());
    // Not TLS at all (an HTTP request on the TLS port).
    let mut s = MemServer::new(store.new_session().unwrap());
    let e = s
        .recv(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true)
        .unwrap_err();
    assert!(e.contains("TLS"), "{e}");
    assert_eq!(s.tls.phase(), TlsPhase::Failed);
    // Every prefix of noise: Ok (waiting) or Err, never a panic.
    let mut x: u32 = 12345;
    for len in 0..400 {
        let mut v = Vec::new();
        for _ in 0..len {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.push((x >> 16) as u8);
        }
        if len > 5 {
            v[..3].copy_from_slice(&[0x16, 0x03, 0x01]);
        }
        let mut s = MemServer::new(store.new_session().unwrap());
        let _ = s.recv(&v, true);
    }
}

#[test]
fn tampered_record_is_an_error() {
    let (store, cert) = store(TlsOptions::default());
    let cfg = client_config(&cert.der, None, &[]);
    let (mut c, mut s) = connected(&cfg, &store);
    client_send(&mut c, b"secret\n");
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).unwrap();
    }
    let last = wire.len() - 1;
    wire[last] ^= 1;
    let e = s.recv(&wire, true).unwrap_err();
    assert!(e.contains("TLS"), "{e}");
    assert!(s.received.is_empty());
}

#[test]
fn session_resumption_in_memory() {
    let (store, cert) = store(TlsOptions::default());
    for (cfg, version) in configs(&cert, &[]) {
        for round in 0..2 {
            let (mut c, mut s) = connected(&cfg, &store);
            // TLS 1.3 tickets come after the handshake: read them.
            echo(&mut c, &mut s, b"x\n", 1 << 20);
            let want = if round == 0 {
                HandshakeKind::Full
            } else {
                HandshakeKind::Resumed
            };
            assert_eq!(
                s.tls.handshake_kind(),
                Some(want),
                "{version:?} round {round}"
            );
        }
    }
}

#[test]
fn new_session_fails_on_nothing() {
    let (store, _) = store(TlsOptions::default());
    let s = TlsSession::new(store.config()).unwrap();
    assert_eq!(s.phase(), TlsPhase::Handshaking);
    assert!(format!("{s:?}").contains("Handshaking"));
}

/// A TLS 1.3 key update from the client: the server's answering key
/// update goes out before its next application data, and the client
/// decrypts both.
#[test]
fn key_update_then_echo() {
    let (store, cert) = store(TlsOptions::default());
    let cfg = client_config(&cert.der, Some(&rustls::version::TLS13), &[]);
    let (mut c, mut s) = connected(&cfg, &store);
    for round in 0..3 {
        c.refresh_traffic_keys().unwrap();
        let got = echo(&mut c, &mut s, b"after key update\n", 7);
        assert_eq!(got, b"after key update\n", "round {round}");
    }
}
