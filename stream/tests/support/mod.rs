//! Shared test helpers: certificates in a temporary directory, rustls
//! client configs, and an in-memory stand-in for uring-rt's stream path
//! (a receive carry, send chunks of bounded size) so `TlsSession` runs
//! against a real rustls client without sockets.
#![allow(dead_code)]

use riptide_stream::rustls;
use riptide_stream::{CertStore, TlsOptions, TlsSession};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A fresh directory under the target's test tmpdir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "stream-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed "localhost" certificate and its PKCS#8 key, as PEM.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

pub fn make_cert() -> TestCert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    TestCert {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        der: ck.cert.der().clone(),
    }
}

/// Write `cert` into `dir` as cert.pem/key.pem; returns their paths.
pub fn write_cert(dir: &std::path::Path, cert: &TestCert) -> (PathBuf, PathBuf) {
    let c = dir.join("cert.pem");
    let k = dir.join("key.pem");
    std::fs::write(&c, &cert.cert_pem).unwrap();
    std::fs::write(&k, &cert.key_pem).unwrap();
    (c, k)
}

/// A fresh certificate in files of its own, and a store serving them.
pub struct Served {
    /// The directory of the files.
    pub dir: PathBuf,
    pub cert: TestCert,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub store: Arc<CertStore>,
}

/// A fresh certificate written to a fresh directory (`name` in its name),
/// served by a store with `options`.
pub fn served(name: &str, options: TlsOptions) -> Served {
    let cert = make_cert();
    let dir = temp_dir(name);
    let (cert_path, key_path) = write_cert(&dir, &cert);
    let store = Arc::new(CertStore::open(&cert_path, &key_path, options).unwrap());
    Served {
        dir,
        cert,
        cert_path,
        key_path,
        store,
    }
}

/// A store serving a fresh certificate, and that certificate.
pub fn store(options: TlsOptions) -> (Arc<CertStore>, TestCert) {
    let s = served("store", options);
    (s.store, s.cert)
}

/// A client trusting `root`, limited to `version` (None: 1.2 and 1.3),
/// asking for `alpn`.
pub fn client_config(
    root: &CertificateDer<'static>,
    version: Option<&'static rustls::SupportedProtocolVersion>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match version {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

pub fn client(cfg: &Arc<ClientConfig>) -> ClientConnection {
    ClientConnection::new(Arc::clone(cfg), ServerName::try_from("localhost").unwrap()).unwrap()
}

/// A client on `cfg` and a fresh session of `store`, before the handshake.
pub fn pair(cfg: &Arc<ClientConfig>, store: &CertStore) -> (ClientConnection, MemServer) {
    (client(cfg), MemServer::new(store.new_session().unwrap()))
}

/// A client on `cfg` and a fresh session of `store`, after a handshake in
/// whole flights.
pub fn connected(cfg: &Arc<ClientConfig>, store: &CertStore) -> (ClientConnection, MemServer) {
    let (mut c, mut s) = pair(cfg, store);
    handshake(&mut c, &mut s, 1 << 20).unwrap();
    (c, s)
}

/// The server side of an in-memory connection: a `TlsSession`, the
/// runtime's receive carry, and the bytes it queued for sending, written
/// through rooms of at most `chunk` bytes (like `send_with`).
pub struct MemServer {
    pub tls: TlsSession,
    pub carry: Vec<u8>,
    pub sent: Vec<u8>,
    /// Most room one `out` call gives (a send chunk).
    pub chunk: usize,
    /// Give exactly `min` bytes of room (to exercise InsufficientSize).
    pub tight: bool,
    /// Plaintext the application has seen, in order.
    pub received: Vec<u8>,
    pub handshake_done: usize,
    pub peer_closed: bool,
    pub out_calls: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

impl MemServer {
    pub fn new(tls: TlsSession) -> MemServer {
        MemServer {
            tls,
            carry: Vec::new(),
            sent: Vec::new(),
            chunk: 16 * 1024,
            tight: false,
            received: Vec::new(),
            handshake_done: 0,
            peer_closed: false,
            out_calls: 0,
        }
    }

    /// Bytes arrive: run `read`, let the application consume whole lines
    /// (echoing each one when `echo`), `finish_read`, keep the rest.
    pub fn recv(&mut self, bytes: &[u8], echo: bool) -> Result<(), String> {
        self.carry.extend_from_slice(bytes);
        let (chunk, tight) = (self.chunk, self.tight);
        let sent = &mut self.sent;
        let calls = &mut self.out_calls;
        let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
            *calls += 1;
            if min > chunk {
                return Err(TooLarge);
            }
            let mut room = vec![0u8; if tight { min } else { chunk }];
            let n = fill(&mut room);
            assert!(n <= room.len());
            sent.extend_from_slice(&room[..n]);
            Ok(n)
        };
        let mut data = std::mem::take(&mut self.carry);
        let r = self
            .tls
            .read(&mut data, &mut out)
            .map_err(|e| e.to_string())?;
        if r.handshake_done {
            self.handshake_done += 1;
        }
        self.peer_closed = r.peer_closed;
        let plain = &data[r.plaintext.clone()];
        let mut used = 0;
        while let Some(p) = plain[used..].iter().position(|&b| b == b'\n') {
            let line = &plain[used..=used + p];
            self.received.extend_from_slice(line);
            if echo {
                let mut done = 0;
                while done < line.len() {
                    done += self
                        .tls
                        .write(&line[done..], &mut out)
                        .map_err(|e| e.to_string())?;
                }
            }
            used += p + 1;
        }
        let consumed = self.tls.finish_read(&mut data, &r, used);
        data.drain(..consumed);
        self.carry = data;
        Ok(())
    }

    /// Send the server's close_notify.
    pub fn close_notify(&mut self) -> Result<(), String> {
        let sent = &mut self.sent;
        let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
            let mut room = vec![0u8; min.max(64)];
            let n = fill(&mut room);
            sent.extend_from_slice(&room[..n]);
            Ok::<usize, TooLarge>(n)
        };
        self.tls
            .send_close_notify(&mut out)
            .map_err(|e| e.to_string())
    }
}

/// Move everything the client wants to send to the server, `piece` bytes
/// per receive.
pub fn client_to_server(
    c: &mut ClientConnection,
    s: &mut MemServer,
    piece: usize,
    echo: bool,
) -> Result<(), String> {
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).unwrap();
    }
    for p in wire.chunks(piece.max(1)) {
        s.recv(p, echo)?;
    }
    Ok(())
}

/// Move what the server queued to the client, let it process it, and
/// return the application data it read.
pub fn server_to_client(s: &mut MemServer, c: &mut ClientConnection) -> Result<Vec<u8>, String> {
    let wire = std::mem::take(&mut s.sent);
    let mut rd = &wire[..];
    let mut plain = Vec::new();
    while !rd.is_empty() {
        c.read_tls(&mut rd).map_err(|e| e.to_string())?;
        c.process_new_packets().map_err(|e| format!("{e:?}"))?;
        plain.extend_from_slice(&client_plaintext(c));
    }
    Ok(plain)
}

/// Run the handshake to completion (bounded).
pub fn handshake(c: &mut ClientConnection, s: &mut MemServer, piece: usize) -> Result<(), String> {
    for _ in 0..20 {
        client_to_server(c, s, piece, true)?;
        server_to_client(s, c)?;
        if !c.is_handshaking() && s.handshake_done > 0 && !c.wants_write() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

/// Everything the client can read now.
pub fn client_plaintext(c: &mut ClientConnection) -> Vec<u8> {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.reader().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("client read: {e}"),
        }
    }
    v
}

/// Client writes `bytes` as application data.
pub fn client_send(c: &mut ClientConnection, bytes: &[u8]) {
    c.writer().write_all(bytes).unwrap();
}

/// The client sends `bytes`, the server gets them `piece` bytes per receive
/// and echoes each whole line; what the client then reads.
pub fn echo(c: &mut ClientConnection, s: &mut MemServer, bytes: &[u8], piece: usize) -> Vec<u8> {
    client_send(c, bytes);
    client_to_server(c, s, piece, true).unwrap();
    server_to_client(s, c).unwrap()
}
