//! The listeners of a stream tracker (riptide-http, riptide-ws): plain ones
//! on `[network]`'s addresses and TLS ones on `[tls]`'s, each an
//! `SO_REUSEPORT` group with one socket per worker, and the certificate
//! pair, loaded while the files are still readable (before privileges are
//! dropped).

use crate::{CertStore, TlsOptions};
use anyhow::Context;
use riptide_common::config::{NetworkConfig, TlsConfig};
use riptide_common::startup::BoundAddrs;
use std::net::TcpListener;
use std::sync::Arc;
use uring_rt::socket::{reuseport_listeners, ListenOptions};

/// What a stream tracker bound: per worker, its listeners and whether each
/// speaks TLS (in the order the worker should add them), and the
/// certificates of the TLS ones.
pub struct StreamListeners {
    /// Worker `i`'s listeners, `(socket, speaks TLS)`.
    pub per_worker: Vec<Vec<(TcpListener, bool)>>,
    /// The certificate store, when `[tls]` is enabled.
    pub certs: Option<Arc<CertStore>>,
}

/// Binds `network`'s plain and `tls`'s TLS addresses for `workers`
/// workers; the ready file names them `labels.0` (plain) and `labels.1`
/// (TLS). `name` is the binary, for errors. Fails on a kernel without the
/// io_uring features the stream path needs.
pub fn bind_stream_listeners(
    name: &str,
    network: &NetworkConfig,
    tls: &TlsConfig,
    workers: usize,
    labels: (&'static str, &'static str),
) -> anyhow::Result<(StreamListeners, BoundAddrs)> {
    let probe = uring_rt::Probe::detect();
    let missing = probe.missing_for_tcp();
    anyhow::ensure!(
        missing.is_empty(),
        "{name} needs io_uring features kernel {} lacks: {}",
        probe.kernel(),
        missing.join(", ")
    );
    let certs = if tls.enabled {
        let store = CertStore::open(&tls.cert_path, &tls.key_path, TlsOptions::default())?;
        log::info!(
            "TLS: {} and {} loaded (TLS 1.2 and 1.3, ALPN http/1.1, ring)",
            tls.cert_path.display(),
            tls.key_path.display()
        );
        Some(Arc::new(store))
    } else {
        None
    };
    let mut per_worker: Vec<Vec<(TcpListener, bool)>> = (0..workers).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    let plain = [network.ipv4()?, network.ipv6()?].map(|a| (a, false));
    let secure = [tls.ipv4()?, tls.ipv6()?].map(|a| (a, true));
    for (addr, speaks_tls) in plain.into_iter().chain(secure) {
        let Some(addr) = addr else { continue };
        let group = reuseport_listeners(addr, workers, ListenOptions::default())
            .with_context(|| format!("listen on tcp {addr}"))?;
        let label = if speaks_tls { labels.1 } else { labels.0 };
        addrs.push((label, group[0].local_addr()?));
        for (w, l) in per_worker.iter_mut().zip(group) {
            w.push((l, speaks_tls));
        }
    }
    Ok((StreamListeners { per_worker, certs }, addrs))
}
