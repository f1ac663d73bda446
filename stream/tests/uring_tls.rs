//! TLS on the real runtime: a uring-rt server (one worker) whose handler
//! runs a `TlsSession` per connection and echoes plaintext lines, and a
//! rustls client over std `TcpStream` on loopback. TLS 1.3 and 1.2, a
//! full and a resumed handshake each, echoes small and larger than a send
//! chunk, lines split over many writes, close_notify both ways. Skips
//! with a message when the probe lacks the TCP path.

/// uring-rt's own test-server helpers.
#[path = "../../uring-rt/tests/common/server.rs"]
mod server;
mod support;

use riptide_stream::rustls::{self, HandshakeKind, ProtocolVersion, StreamOwned};
use riptide_stream::{CertStore, TlsOptions, TlsSession};
use server::Watched;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use uring_rt::{ConnId, Ctx, Handler, ListenerId, RuntimeConfig};
use HandshakeKind::{Full, Resumed};

const WATCHDOG: Duration = Duration::from_secs(30);

/// What the server saw of one connection, at its handshake.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    version: Option<ProtocolVersion>,
    kind: Option<HandshakeKind>,
    alpn: Option<Vec<u8>>,
}

struct TlsEcho {
    store: Arc<CertStore>,
    server: Watched<TcpListener>,
    sessions: Vec<Option<TlsSession>>,
    seen: Vec<Seen>,
    closed: usize,
    stop_after: usize,
    errors: Vec<String>,
    clean_closes: usize,
}

/// Queue `bytes` as application data; the runtime bound is large in this
/// test, so all of it fits.
fn write_all<E: std::fmt::Debug>(
    tls: &mut TlsSession,
    mut bytes: &[u8],
    out: &mut impl FnMut(usize, &mut dyn FnMut(&mut [u8]) -> usize) -> Result<usize, E>,
) -> Result<(), String> {
    while !bytes.is_empty() {
        let n = tls.write(bytes, out).map_err(|e| e.to_string())?;
        bytes = &bytes[n..];
    }
    Ok(())
}

impl Handler for TlsEcho {
    type Msg = ();

    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.server.start(ctx);
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, token: u64) {
        self.server.fired(ctx, token);
    }

    fn on_accept(&mut self, ctx: &mut Ctx<()>, _: ListenerId, conn: ConnId, _: SocketAddr) {
        let i = conn.index();
        if self.sessions.len() <= i {
            self.sessions.resize_with(i + 1, || None);
        }
        match self.store.new_session() {
            Ok(s) => self.sessions[i] = Some(s),
            Err(e) => {
                self.errors.push(e.to_string());
                ctx.abort(conn);
            }
        }
    }

    fn on_recv(&mut self, ctx: &mut Ctx<()>, conn: ConnId, data: &mut [u8]) -> usize {
        let Some(tls) = self.sessions.get_mut(conn.index()).and_then(Option::as_mut) else {
            return data.len();
        };
        let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
            ctx.send_with(conn, min, |room| fill(room))
        };
        let r = match tls.read(data, &mut out) {
            Ok(r) => r,
            Err(e) => {
                self.errors.push(e.to_string());
                ctx.close(conn);
                return data.len();
            }
        };
        if r.handshake_done {
            self.seen.push(Seen {
                version: tls.protocol_version(),
                kind: tls.handshake_kind(),
                alpn: tls.alpn().map(<[u8]>::to_vec),
            });
        }
        let plain = &data[r.plaintext.clone()];
        let mut used = 0;
        while let Some(p) = plain[used..].iter().position(|&b| b == b'\n') {
            if let Err(e) = write_all(tls, &plain[used..=used + p], &mut out) {
                self.errors.push(e);
                ctx.abort(conn);
                return data.len();
            }
            used += p + 1;
        }
        if r.peer_closed {
            match tls.send_close_notify(&mut out) {
                Ok(()) => self.clean_closes += 1,
                Err(e) => self.errors.push(e.to_string()),
            }
            ctx.close(conn);
        }
        tls.finish_read(data, &r, used)
    }

    fn on_closed(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        if let Some(s) = self.sessions.get_mut(conn.index()) {
            *s = None;
        }
        self.closed += 1;
        if self.closed == self.stop_after {
            ctx.stop();
        }
    }
}

type Client = StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> Client {
    let sock = server::connect(addr, WATCHDOG);
    sock.set_nodelay(true).unwrap();
    StreamOwned::new(client(cfg), sock)
}

fn echo(c: &mut Client, line: &[u8]) {
    send_expect(c, line, line);
}

fn send_expect(c: &mut Client, send: &[u8], expect: &[u8]) {
    c.write_all(send).unwrap();
    c.flush().unwrap();
    let mut got = vec![0u8; expect.len()];
    c.read_exact(&mut got).unwrap();
    assert!(got == expect, "echo of {} bytes differs", expect.len());
}

/// One connection's conversation; returns the client's handshake kind.
fn converse(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> HandshakeKind {
    let mut c = connect(addr, cfg);
    echo(&mut c, b"hello\n");
    assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    echo(&mut c, b"second line\n");
    // Larger than a send chunk (16 KiB) and than a TLS record.
    let mut big: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    big.push(b'\n');
    echo(&mut c, &big);
    // One line over many small writes (each its own record and segment).
    for part in [&b"spl"[..], b"it ", b"over ", b"writes"] {
        c.write_all(part).unwrap();
        c.flush().unwrap();
    }
    send_expect(&mut c, b"\n", b"split over writes\n");
    // Several lines in one write.
    echo(&mut c, b"a\nb\nc\n");
    let kind = c.conn.handshake_kind().unwrap();
    // close_notify: the server answers with its own, then closes.
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut rest = Vec::new();
    let n = c.read_to_end(&mut rest).unwrap();
    assert_eq!(n, 0, "clean close_notify, no trailing data");
    kind
}

#[test]
fn tls_echo_on_uring_rt() {
    if server::skip_tcp() {
        return;
    }
    let (store, cert) = store(TlsOptions::default());
    let cfg = RuntimeConfig {
        workers: 1,
        ring_entries: 256,
        recv_buffers: 256,
        send_slots: 64,
        send_queue: 64,
        mesh_capacity: 64,
        max_connections: 64,
        max_inbound_bytes: 256 * 1024,
        max_outbound_bytes: 1024 * 1024,
        handle_signals: false,
        ..RuntimeConfig::default()
    };
    let (addrs, worker) = server::serve(cfg, vec![server::tcp_listener()], |serving| TlsEcho {
        store,
        server: Watched::new(serving, WATCHDOG),
        sessions: Vec::new(),
        seen: Vec::new(),
        closed: 0,
        stop_after: 4,
        errors: Vec::new(),
        clean_closes: 0,
    });
    let addr = addrs[0];

    let mut kinds = Vec::new();
    for v in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let cfg = client_config(&cert.der, Some(v), &[b"http/1.1"]);
        kinds.push(converse(addr, &cfg)); // full
        kinds.push(converse(addr, &cfg)); // resumed (ticket)
    }
    let h = worker.join().unwrap();
    assert!(!h.server.watchdog_fired, "watchdog fired");
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert_eq!(h.clean_closes, 4);
    assert_eq!(kinds, [Full, Resumed, Full, Resumed]);
    let want = |v, kind| Seen {
        version: Some(v),
        kind: Some(kind),
        alpn: Some(b"http/1.1".to_vec()),
    };
    assert_eq!(
        h.seen,
        [
            want(ProtocolVersion::TLSv1_3, Full),
            want(ProtocolVersion::TLSv1_3, Resumed),
            want(ProtocolVersion::TLSv1_2, Full),
            want(ProtocolVersion::TLSv1_2, Resumed),
        ]
    );
}
