//! The rustls client configuration (ring): trust `--ca`, or any
//! certificate with `--tls-insecure` (handshake signatures still checked).

use std::sync::Arc;

use anyhow::{bail, Context};
use riptide_stream::insecure::AnyCertificate;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::args::Args;

/// The client config and server name for `args`, or `None` without `--tls`.
pub(crate) fn client_config(
    args: &Args,
) -> anyhow::Result<Option<(Arc<ClientConfig>, ServerName<'static>)>> {
    if !args.tls {
        return Ok(None);
    }
    // X25519 first, as browsers send it (ring's default list starts with
    // the far dearer P-384).
    #[allow(deprecated)]
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![
            ring::kx_group::X25519,
            ring::kx_group::SECP256R1,
            ring::kx_group::SECP384R1,
        ],
        ..ring::default_provider()
    });
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let config = if let Some(path) = &args.ca {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("read {}", path.display()))?;
        for cert in certs {
            let cert = cert.with_context(|| format!("parse {}", path.display()))?;
            roots.add(cert).context("add CA certificate")?;
        }
        if roots.is_empty() {
            bail!("{}: no certificates", path.display());
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    let name = ServerName::try_from(args.tls_server_name.clone())
        .with_context(|| format!("--tls-server-name {}", args.tls_server_name))?;
    Ok(Some((Arc::new(config), name)))
}
