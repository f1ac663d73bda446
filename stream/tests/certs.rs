//! Certificate loading (PKCS#8 from rcgen; SEC1 and PKCS#1 fixtures made
//! once with `openssl`), error messages that name the file, and reload:
//! a good pair is served to new handshakes, a bad one keeps the old config.

mod support;

use riptide_stream::certs::{load_cert_chain, load_private_key};
use riptide_stream::rustls::pki_types::PrivateKeyDer;
use riptide_stream::{CertError, CertStore, TlsOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The leaf certificate a fresh client sees from `store`.
fn served_cert(store: &CertStore, root: &TestCert) -> Vec<u8> {
    let cfg = client_config(&root.der, None, &[]);
    let (c, _) = connected(&cfg, store);
    c.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn pkcs8_from_rcgen() {
    let cert = make_cert();
    assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let dir = temp_dir("pkcs8");
    let (c, k) = write_cert(&dir, &cert);
    assert!(matches!(
        load_private_key(&k).unwrap(),
        PrivateKeyDer::Pkcs8(_)
    ));
    assert_eq!(load_cert_chain(&c).unwrap()[0], cert.der);
    let store = CertStore::open(&c, &k, TlsOptions::default()).unwrap();
    assert_eq!(served_cert(&store, &cert), cert.der.to_vec());
}

#[test]
fn sec1_and_pkcs1_fixtures() {
    for (cert, key, rsa) in [
        ("ec-cert.pem", "ec-sec1-key.pem", false),
        ("rsa-cert.pem", "rsa-pkcs1-key.pem", true),
    ] {
        let k = load_private_key(&fixture(key)).unwrap();
        match (&k, rsa) {
            (PrivateKeyDer::Pkcs1(_), true) | (PrivateKeyDer::Sec1(_), false) => {}
            _ => panic!("{key}: unexpected key form"),
        }
        let chain = load_cert_chain(&fixture(cert)).unwrap();
        let store = CertStore::open(fixture(cert), fixture(key), TlsOptions::default()).unwrap();
        let root = TestCert {
            cert_pem: String::new(),
            key_pem: String::new(),
            der: chain[0].clone(),
        };
        for v in [
            &riptide_stream::rustls::version::TLS13,
            &riptide_stream::rustls::version::TLS12,
        ] {
            let cfg = client_config(&root.der, Some(v), &[]);
            let (c, _) = connected(&cfg, &store);
            assert_eq!(c.peer_certificates().unwrap()[0], chain[0], "{cert}");
        }
    }
}

#[test]
fn errors_name_the_file() {
    let dir = temp_dir("errors");
    let good = make_cert();
    let (c, k) = write_cert(&dir, &good);
    let missing = dir.join("missing.pem");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let broken = dir.join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();

    let e = load_cert_chain(&missing).unwrap_err();
    assert!(matches!(e, CertError::Read { .. }));
    assert!(e.to_string().contains("missing.pem"), "{e}");

    let e = load_cert_chain(&empty).unwrap_err();
    assert!(matches!(e, CertError::NoCertificate { .. }), "{e}");
    assert!(e.to_string().contains("empty.pem"), "{e}");

    let e = load_cert_chain(&broken).unwrap_err();
    assert!(matches!(e, CertError::BadPem { .. }), "{e}");
    assert!(e.to_string().contains("broken.pem"), "{e}");

    // A certificate where the key should be.
    let e = load_private_key(&c).unwrap_err();
    assert!(matches!(e, CertError::NoPrivateKey { .. }), "{e}");
    assert!(e.to_string().contains("cert.pem"), "{e}");
    assert!(e.to_string().contains("PKCS#8"), "{e}");

    // A key that is not the certificate's.
    let other = make_cert();
    let other_key = dir.join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).unwrap();
    let e = CertStore::open(&c, &other_key, TlsOptions::default()).unwrap_err();
    assert!(matches!(e, CertError::Unusable { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("cert.pem") && msg.contains("other-key.pem"),
        "{msg}"
    );

    // Options out of range.
    let e = CertStore::open(
        &c,
        &k,
        TlsOptions {
            max_record_bytes: 10,
            ..TlsOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, CertError::Options(_)), "{e}");
}

#[test]
fn reload_swaps_for_new_handshakes_and_keeps_old_on_error() {
    let Served {
        dir,
        cert: first,
        cert_path: c,
        key_path: k,
        store,
    } = served("reload", TlsOptions::default());
    assert_eq!(served_cert(&store, &first), first.der.to_vec());
    let before = store.config();

    // A session started before the reload keeps the old config.
    let cfg = client_config(&first.der, None, &[]);
    let (mut old_client, mut old_server) = pair(&cfg, &store);

    // Good pair: new handshakes get it.
    let second = make_cert();
    write_cert(&dir, &second);
    store.reload().unwrap();
    assert!(!Arc::ptr_eq(&before, &store.config()));
    assert_eq!(served_cert(&store, &second), second.der.to_vec());
    handshake(&mut old_client, &mut old_server, 1 << 20).unwrap();
    assert_eq!(
        old_client.peer_certificates().unwrap()[0].to_vec(),
        first.der.to_vec()
    );

    // Bad pairs: the error names the file, the config stays.
    let current = store.config();
    let third = make_cert();
    std::fs::write(&k, &third.key_pem).unwrap(); // key of another cert
    let e = store.reload().unwrap_err();
    assert!(matches!(e, CertError::Unusable { .. }), "{e}");
    assert!(Arc::ptr_eq(&current, &store.config()));
    std::fs::write(&k, "garbage").unwrap();
    let e = store.reload().unwrap_err();
    assert!(e.to_string().contains("key.pem"), "{e}");
    std::fs::remove_file(&c).unwrap();
    let e = store.reload().unwrap_err();
    assert!(matches!(e, CertError::Read { .. }), "{e}");
    assert!(Arc::ptr_eq(&current, &store.config()));
    assert_eq!(served_cert(&store, &second), second.der.to_vec());

    // Fixed again: reload works.
    write_cert(&dir, &third);
    store.reload().unwrap();
    assert_eq!(served_cert(&store, &third), third.der.to_vec());
}

/// Reload from one thread while others take configs: every config seen
/// is complete (ArcSwap), and the store is shared across threads.
#[test]
fn reload_shared_across_threads() {
    let store = served("threads", TlsOptions::default()).store;
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let _ = store.new_session().unwrap();
                }
            })
        })
        .collect();
    for _ in 0..20 {
        store.reload().unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
}

/// Tickets issued before a reload still resume after it (the ticketer
/// outlives the certificate).
#[test]
fn resumption_survives_reload() {
    let Served { cert, store, .. } = served("resume", TlsOptions::default());
    let cfg = client_config(
        &cert.der,
        Some(&riptide_stream::rustls::version::TLS13),
        &[],
    );
    let (mut cl, mut s) = connected(&cfg, &store);
    // TLS 1.3 tickets come after the handshake: read them.
    echo(&mut cl, &mut s, b"x\n", 1 << 20);
    store.reload().unwrap();
    let (_, s) = connected(&cfg, &store);
    assert_eq!(
        s.tls.handshake_kind(),
        Some(riptide_stream::rustls::HandshakeKind::Resumed)
    );
}
