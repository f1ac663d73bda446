//! A small blocking WebSocket client for the integration tests, on the
//! crate's own client-role codec (masked frames out, unmasked frames in),
//! over plain TCP or rustls.
#![allow(dead_code)]

use riptide_ws::protocol::{
    write_client_fragment, write_client_frame, Flow, FrameLimits, FrameReader, Message, Opcode,
    Role,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A byte stream the client runs over.
pub trait Stream: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Stream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Stream for StreamOwned<ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// What the server sent, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Text(Value),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>),
    /// The connection ended (EOF or reset) without a close frame.
    Gone,
    /// Nothing within the wait.
    Nothing,
}

/// A self-signed "localhost" certificate in `dir` (cert.pem, key.pem) and a
/// client config that trusts it.
pub fn test_cert(dir: &Path) -> Arc<ClientConfig> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let der: CertificateDer<'static> = ck.cert.der().clone();
    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

pub struct Client {
    s: Box<dyn Stream>,
    buf: Vec<u8>,
    reader: FrameReader,
    queue: std::collections::VecDeque<Got>,
    mask: u32,
}

/// The upgrade request a browser sends (trimmed).
pub fn upgrade_request(extra: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Origin: http://localhost\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n{extra}\r\n"
    )
}

pub fn tcp(a: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

impl Client {
    /// Connects and upgrades (TLS when `tls` is given).
    pub fn connect(a: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> Client {
        let sock = tcp(a);
        let s: Box<dyn Stream> = match tls {
            None => Box::new(sock),
            Some(cfg) => {
                let conn = ClientConnection::new(
                    Arc::clone(cfg),
                    ServerName::try_from("localhost").unwrap(),
                )
                .unwrap();
                Box::new(StreamOwned::new(conn, sock))
            }
        };
        Client::upgrade(s)
    }

    /// Upgrades over an already connected stream.
    pub fn upgrade(mut s: Box<dyn Stream>) -> Client {
        s.write_all(upgrade_request("").as_bytes()).unwrap();
        Client::upgrade_sent(s)
    }

    /// Reads the answer to an upgrade request already sent on `s`.
    pub fn upgrade_sent(mut s: Box<dyn Stream>) -> Client {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).expect("read the upgrade response");
            assert!(
                n > 0,
                "closed during the upgrade: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "the RFC's accept key: {head}"
        );
        assert!(
            !head.to_ascii_lowercase().contains("permessage-deflate"),
            "{head}"
        );
        buf.drain(..head_end);
        Client {
            s,
            buf,
            reader: FrameReader::default(),
            queue: std::collections::VecDeque::new(),
            mask: 0x1234_5678,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        self.s.tcp()
    }

    /// Sends one frame (masked, as a client must).
    pub fn send_frame(&mut self, opcode: Opcode, payload: &[u8]) {
        self.mask = self.mask.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let mut out = vec![0; payload.len() + 14];
        let n = write_client_frame(&mut out, opcode, self.mask.to_le_bytes(), payload);
        self.s.write_all(&out[..n]).unwrap();
        self.s.flush().unwrap();
    }

    /// Sends one frame of a fragmented message (`fin` on the last).
    pub fn send_fragment(&mut self, opcode: Opcode, fin: bool, payload: &[u8]) {
        let mut out = vec![0; payload.len() + 14];
        let n = write_client_fragment(&mut out, opcode, fin, [1, 2, 3, 4], payload);
        self.s.write_all(&out[..n]).unwrap();
        self.s.flush().unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
        self.s.flush().unwrap();
    }

    pub fn send_json(&mut self, v: &Value) {
        self.send_frame(Opcode::Text, v.to_string().as_bytes());
    }

    fn parse_buffered(&mut self) -> Result<(), u16> {
        let limits = FrameLimits {
            role: Role::Client,
            max_message_len: 1 << 20,
        };
        let queue = &mut self.queue;
        let used = self
            .reader
            .read(&mut self.buf, &limits, |m| {
                queue.push_back(match m {
                    Message::Text(t) => {
                        Got::Text(serde_json::from_slice(t).expect("JSON from the tracker"))
                    }
                    Message::Binary(b) => Got::Binary(b.to_vec()),
                    Message::Ping(b) => Got::Ping(b.to_vec()),
                    Message::Pong(b) => Got::Pong(b.to_vec()),
                    Message::Close { code, .. } => Got::Close(code),
                });
                Flow::Continue
            })
            .map_err(|c| c.0)?;
        self.buf.drain(..used);
        Ok(())
    }

    /// The next message, waiting at most `wait`.
    pub fn recv_within(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(g) = self.queue.pop_front() {
                return g;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Nothing;
            }
            self.s
                .tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = [0u8; 16384];
            match self.s.read(&mut chunk) {
                Ok(0) => return Got::Gone,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if let Err(code) = self.parse_buffered() {
                        panic!("the tracker broke RFC 6455 (code {code})");
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Got::Nothing
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof
                            | ErrorKind::ConnectionReset
                            | ErrorKind::BrokenPipe
                    ) =>
                {
                    return Got::Gone
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next message (10 s at most).
    pub fn recv(&mut self) -> Got {
        self.recv_within(Duration::from_secs(10))
    }

    /// The next text message as JSON; panics on anything else.
    pub fn recv_json(&mut self) -> Value {
        match self.recv() {
            Got::Text(v) => v,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// A 20-byte binary string as WebTorrent writes it (one char per byte).
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}
