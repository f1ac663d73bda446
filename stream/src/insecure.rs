//! For load generators and benchmarks only: a certificate verifier that
//! accepts any chain (`--tls-insecure`), so a tracker can be measured with
//! whatever certificate it has, and the load generators' client set-up
//! ([`client_config`]). Never for a real client.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use riptide_common::loadgen::cli::TlsArgs;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedProtocolVersion,
};

/// A load generator's client config offering `versions`, and the server
/// name, as its `--tls*` flags ask (`None` without `--tls`): trusting the
/// certificates in the PEM file `--ca`, or else any certificate
/// ([`AnyCertificate`]).
///
/// ring (what the workspace builds rustls with); rustls deprecates it only
/// for its lack of post-quantum key exchange. Its default list of groups
/// starts with P-384 (ring's is ten times the cost of X25519); real
/// clients (browsers, OpenSSL, libtorrent) send an X25519 share first, and
/// so does this one.
pub fn client_config(
    args: &TlsArgs,
    versions: &[&'static SupportedProtocolVersion],
) -> anyhow::Result<Option<(ClientConfig, ServerName<'static>)>> {
    if !args.tls {
        return Ok(None);
    }
    let name = ServerName::try_from(args.tls_server_name.clone())
        .with_context(|| format!("--tls-server-name {}", args.tls_server_name))?;
    Ok(Some((trusting(args.ca.as_deref(), versions)?, name)))
}

/// A client config (ring, X25519 first) offering `versions`, trusting `ca`
/// or, without it, any certificate.
fn trusting(
    ca: Option<&Path>,
    versions: &[&'static SupportedProtocolVersion],
) -> anyhow::Result<ClientConfig> {
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
        .with_protocol_versions(versions)
        .context("TLS versions")?;
    let Some(path) = ca else {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth());
    };
    let mut roots = RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(path).with_context(|| format!("read {}", path.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("parse {}", path.display()))?;
        roots.add(cert).context("add CA certificate")?;
    }
    if roots.is_empty() {
        bail!("{}: no certificates", path.display());
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any certificate chain but still checks the handshake signature
/// with it, so a handshake costs the client what a verified one does,
/// less the chain walk.
#[derive(Debug)]
pub struct AnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
