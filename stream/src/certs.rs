//! Certificates: a chain and its private key from PEM files, turned into
//! the rustls `ServerConfig` every new handshake uses, and swapped on
//! reload (SIGUSR1) for all workers at once.
//!
//! Keys may be PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1
//! (`RSA PRIVATE KEY`); the chain file holds the leaf first, then the
//! intermediates. Crypto is `ring`; TLS 1.3 and (by default) 1.2; session
//! tickets are on, and the ticket keys and the session cache survive a
//! reload, so clients resume across certificate renewals.

use crate::tls::{TlsSession, RECORD_OVERHEAD};
use arc_swap::ArcSwap;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls::{ServerConfig, SupportedProtocolVersion};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest TLS record rustls may emit (16 KiB payload + header + expansion).
const MAX_TLS_RECORD: usize = 16 * 1024 + 5 + 256;

/// Key exchange groups offered, X25519 first.
const KX_GROUPS: &[&dyn rustls::crypto::SupportedKxGroup] = &[
    rustls::crypto::ring::kx_group::X25519,
    rustls::crypto::ring::kx_group::SECP256R1,
    rustls::crypto::ring::kx_group::SECP384R1,
];

/// How the TLS side is set up (apart from the certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// ALPN protocols offered, most preferred first; empty = no ALPN
    /// (a client that asks for one still connects). riptide-http:
    /// `["http/1.1"]`; riptide-ws may pass none.
    pub alpn: Vec<Vec<u8>>,
    /// Allow TLS 1.2 besides TLS 1.3.
    pub tls12: bool,
    /// Largest TLS record written, header and tag included: at most the
    /// runtime's `tcp_send_chunk`, so every handshake record fits one chunk
    /// (64 ..= 16 KiB + 261).
    pub max_record_bytes: usize,
    /// Sessions remembered for session-id resumption (TLS 1.2 clients
    /// without tickets); 0 = none. Tickets need no server memory.
    pub session_cache_entries: usize,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            alpn: vec![b"http/1.1".to_vec()],
            tls12: true,
            max_record_bytes: 16 * 1024,
            session_cache_entries: 1024,
        }
    }
}

/// Why certificates or keys could not be used. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{}: bad PEM in the {what} file: {reason}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
        /// What the PEM parser said.
        reason: String,
    },
    /// No `CERTIFICATE` block in the chain file.
    #[error("{}: no CERTIFICATE block found (expected a PEM certificate chain, leaf first)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No private key block in the key file.
    #[error(
        "{}: no private key found (expected PEM 'PRIVATE KEY' (PKCS#8), 'EC PRIVATE KEY' (SEC1) or 'RSA PRIVATE KEY' (PKCS#1))",
        path.display()
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair: an unsupported key type, or a key that
    /// does not belong to the certificate.
    #[error("certificate {} and private key {} are not a usable pair: {source}", cert.display(), key.display())]
    Unusable {
        /// The chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// A `TlsOptions` value is out of range.
    #[error("invalid TLS option: {0}")]
    Options(&'static str),
    /// The session ticket keys could not be made (no randomness).
    #[error("creating the session ticketer: {0}")]
    Ticketer(rustls::Error),
}

/// Read a PEM certificate chain (leaf first).
pub fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, "certificate", &e))?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// Read the first private key of a PEM file: PKCS#8, SEC1 or PKCS#1.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = read(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(CertError::NoPrivateKey {
            path: path.to_owned(),
        }),
        Err(e) => Err(bad_pem(path, "private key", &e)),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
    })
}

fn bad_pem(path: &Path, what: &'static str, e: &pem::Error) -> CertError {
    CertError::BadPem {
        path: path.to_owned(),
        what,
        reason: e.to_string(),
    }
}

/// The resumption state that outlives a certificate: ticket keys (rotated
/// by rustls every 6 hours) and the session-id cache.
#[derive(Clone)]
struct Resumption {
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
}

/// The certificate files, the options, and the `ServerConfig` built from
/// them. Share one `Arc<CertStore>` among the workers: each takes
/// [`CertStore::config`] (or [`CertStore::new_session`]) at accept time;
/// [`CertStore::reload`] swaps the config for the handshakes that follow,
/// while sessions already running keep theirs.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    options: TlsOptions,
    resumption: Resumption,
    current: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Load the chain from `cert_path` and the key from `key_path` and
    /// build the first config.
    pub fn open(
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
        options: TlsOptions,
    ) -> Result<CertStore, CertError> {
        let cert_path = cert_path.into();
        let key_path = key_path.into();
        check_options(&options)?;
        let resumption = Resumption {
            ticketer: rustls::crypto::ring::Ticketer::new().map_err(CertError::Ticketer)?,
            sessions: if options.session_cache_entries == 0 {
                Arc::new(rustls::server::NoServerSessionStorage {})
            } else {
                ServerSessionMemoryCache::new(options.session_cache_entries)
            },
        };
        let config = build(&cert_path, &key_path, &options, &resumption)?;
        Ok(CertStore {
            cert_path,
            key_path,
            options,
            resumption,
            current: ArcSwap::from(config),
        })
    }

    /// The config for a new handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// A TLS session for a connection just accepted, with the current config.
    pub fn new_session(&self) -> Result<TlsSession, rustls::Error> {
        TlsSession::new(self.config())
    }

    /// Read both files again and, if they make a usable pair, use them for
    /// every handshake from now on. On error the current config stays in
    /// place and the error (naming the file) is returned for the log.
    pub fn reload(&self) -> Result<(), CertError> {
        let config = build(
            &self.cert_path,
            &self.key_path,
            &self.options,
            &self.resumption,
        )?;
        self.current.store(config);
        Ok(())
    }

    /// The certificate chain file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The private key file.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }
}

fn check_options(options: &TlsOptions) -> Result<(), CertError> {
    if !(64..=MAX_TLS_RECORD).contains(&options.max_record_bytes) {
        return Err(CertError::Options(
            "max_record_bytes must be within 64 ..= 16645",
        ));
    }
    if options.alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(CertError::Options(
            "an ALPN protocol name must be 1 ..= 255 bytes",
        ));
    }
    Ok(())
}

fn build(
    cert_path: &Path,
    key_path: &Path,
    options: &TlsOptions,
    resumption: &Resumption,
) -> Result<Arc<ServerConfig>, CertError> {
    let chain = load_cert_chain(cert_path)?;
    let key = load_private_key(key_path)?;
    let unusable = |source| CertError::Unusable {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        source,
    };
    let versions: &[&'static SupportedProtocolVersion] = if options.tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    // ring: no cmake/clang needed to build it. rustls deprecates its
    // provider only because it lacks post-quantum key exchange
    // (X25519MLKEM768 needs aws-lc-rs); X25519 and the NIST curves remain.
    // Groups in the order real clients (browsers, OpenSSL, libtorrent)
    // prefer; rustls' ring default lists P-384 first, and ring's P-384 is
    // ten times the cost of X25519. The server follows the client's order.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        kx_groups: KX_GROUPS.to_vec(),
        ..rustls::crypto::ring::default_provider()
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(unusable)?;
    config.alpn_protocols.clone_from(&options.alpn);
    config.ticketer = Arc::clone(&resumption.ticketer);
    config.session_storage = Arc::clone(&resumption.sessions);
    // rustls counts the 5-byte header but not the encryption's expansion
    // (at most RECORD_OVERHEAD - 5): keep whole records within the limit.
    let fragment = (options.max_record_bytes + 5 - RECORD_OVERHEAD).min(16 * 1024 + 5);
    config.max_fragment_size = Some(fragment);
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}
