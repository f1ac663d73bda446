//! TLS handshake cost with the `ring` provider.
//!
//! A rustls client and a `TlsSession` handshake in memory (no sockets).
//! - `server/{full,resumed}/VERSION/KEY`: only the time spent on the
//!   server's side (`CertStore::new_session` and its `read` calls, which
//!   write the flight and, for TLS 1.3, two session tickets): the server
//!   CPU per handshake, 1/x = handshakes per second per core. The client
//!   orders key exchange X25519 first, as browsers, OpenSSL and
//!   libtorrent do; `.../p384_client` shows a client with ring's default
//!   order (P-384 first, ~10x the cost).
//! - `both/full/...`: client and server together, for reference.
//!
//! `cargo bench -p riptide-stream --bench handshake`

#![allow(missing_docs)] // criterion's macros

use criterion::{criterion_group, criterion_main, Criterion};
use riptide_stream::rustls::pki_types::{CertificateDer, ServerName};
use riptide_stream::rustls::{self, ClientConfig, ClientConnection, RootCertStore};
use riptide_stream::{CertStore, TlsOptions, TlsSession};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Setup {
    name: &'static str,
    store: CertStore,
    root: CertificateDer<'static>,
}

fn setups() -> Vec<Setup> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stream-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, ck.cert.pem()).unwrap();
    std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let rsa_cert = fixtures.join("rsa-cert.pem");
    let rsa_root = riptide_stream::certs::load_cert_chain(&rsa_cert).unwrap()[0].clone();
    vec![
        Setup {
            name: "ecdsa_p256",
            store: CertStore::open(&c, &k, TlsOptions::default()).unwrap(),
            root: ck.cert.der().clone(),
        },
        Setup {
            name: "rsa2048",
            store: CertStore::open(
                &rsa_cert,
                fixtures.join("rsa-pkcs1-key.pem"),
                TlsOptions::default(),
            )
            .unwrap(),
            root: rsa_root,
        },
    ]
}

/// Key exchange as browsers, OpenSSL and libtorrent order it.
const X25519_FIRST: &[&dyn rustls::crypto::SupportedKxGroup] = &[
    rustls::crypto::ring::kx_group::X25519,
    rustls::crypto::ring::kx_group::SECP256R1,
];

/// `kx`: None = ring's default order (P-384 first).
fn client_config(
    root: &CertificateDer<'static>,
    v: &'static rustls::SupportedProtocolVersion,
    resume: bool,
    kx: Option<&[&'static dyn rustls::crypto::SupportedKxGroup]>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(kx) = kx {
        provider.kx_groups = kx.to_vec();
    }
    let provider = Arc::new(provider);
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[v])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(cfg)
}

fn new_client(cfg: &Arc<ClientConfig>) -> ClientConnection {
    ClientConnection::new(Arc::clone(cfg), ServerName::try_from("localhost").unwrap()).unwrap()
}

/// Feed `input` to the server, collect its output in `sent`.
fn server_read(tls: &mut TlsSession, input: &mut Vec<u8>, sent: &mut Vec<u8>) {
    let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
        let start = sent.len();
        sent.resize(start + min.max(16 * 1024), 0);
        let n = fill(&mut sent[start..]);
        sent.truncate(start + n);
        Ok::<usize, ()>(n)
    };
    let r = tls.read(input, &mut out).unwrap();
    let used = r.plaintext.len();
    let consumed = tls.finish_read(input, &r, used);
    input.drain(..consumed);
}

/// A whole handshake in memory; returns the server session and adds the
/// time spent on the server's side (its `read` calls) to `server_time`.
fn handshake(
    store: &CertStore,
    ccfg: &Arc<ClientConfig>,
    server_time: &mut Duration,
) -> TlsSession {
    let mut c = new_client(ccfg);
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let t = Instant::now();
    let mut s = store.new_session().unwrap();
    *server_time += t.elapsed();
    for _ in 0..10 {
        while c.wants_write() {
            c.write_tls(&mut to_server).unwrap();
        }
        let t = Instant::now();
        server_read(&mut s, &mut to_server, &mut to_client);
        *server_time += t.elapsed();
        let mut rd = &to_client[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        to_client.clear();
        if !c.is_handshaking() && !c.wants_write() && s.protocol_version().is_some() {
            break;
        }
    }
    assert!(!c.is_handshaking());
    s
}

/// Criterion timing of the server's share only.
fn server_only(b: &mut criterion::Bencher<'_>, store: &CertStore, ccfg: &Arc<ClientConfig>) {
    b.iter_custom(|iters| {
        let mut server_time = Duration::ZERO;
        for _ in 0..iters {
            handshake(store, ccfg, &mut server_time);
        }
        server_time
    });
}

fn bench(cr: &mut Criterion) {
    let versions: [(&str, &'static rustls::SupportedProtocolVersion); 2] = [
        ("tls13", &rustls::version::TLS13),
        ("tls12", &rustls::version::TLS12),
    ];
    let mut g = cr.benchmark_group("handshake");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for setup in setups() {
        for (vname, v) in versions {
            let full = client_config(&setup.root, v, false, Some(X25519_FIRST));
            let resuming = client_config(&setup.root, v, true, Some(X25519_FIRST));
            let mut t = Duration::ZERO;
            let kind = handshake(&setup.store, &full, &mut t).handshake_kind();
            assert_eq!(kind, Some(rustls::HandshakeKind::Full));
            handshake(&setup.store, &resuming, &mut t);
            let kind = handshake(&setup.store, &resuming, &mut t).handshake_kind();
            assert_eq!(kind, Some(rustls::HandshakeKind::Resumed));
            g.bench_function(format!("server/full/{vname}/{}", setup.name), |b| {
                server_only(b, &setup.store, &full);
            });
            g.bench_function(format!("server/resumed/{vname}/{}", setup.name), |b| {
                server_only(b, &setup.store, &resuming);
            });
            g.bench_function(format!("both/full/{vname}/{}", setup.name), |b| {
                b.iter(|| handshake(&setup.store, &full, &mut t));
            });
        }
    }
    // What a client that puts P-384 first (rustls+ring's default) costs.
    let setup = &setups()[0];
    let p384 = client_config(&setup.root, &rustls::version::TLS13, false, None);
    g.bench_function("server/full/tls13/ecdsa_p256/p384_client", |b| {
        server_only(b, &setup.store, &p384);
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
