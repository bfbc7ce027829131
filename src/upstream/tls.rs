//! TLS to backends: the client configurations of an HTTPS endpoint, built
//! once per pool from its [`TlsSettings`], and the verifier of
//! `insecureSkipVerify`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::TlsSettings;

/// An HTTPS endpoint's client side of TLS.
#[derive(Debug)]
pub(super) struct TlsClient {
    /// ALPN `h2`, `http/1.1`: what the backend picks is spoken.
    pub config: Arc<ClientConfig>,
    /// ALPN `http/1.1` only: for upgrades (WebSocket), which HTTP/2
    /// cannot carry.
    pub http1: Arc<ClientConfig>,
    /// Sent as SNI and verified.
    pub name: ServerName<'static>,
}

impl TlsClient {
    /// The configurations for `settings`: verified against its CA bundle,
    /// else `system` roots, unless it skips verification.
    pub(super) fn new(
        settings: &TlsSettings,
        provider: &Arc<CryptoProvider>,
        system: impl FnOnce() -> Arc<RootCertStore>,
    ) -> Result<TlsClient, String> {
        let name = ServerName::try_from(settings.server_name.to_string())
            .map_err(|err| format!("hostname {:?}: {err}", settings.server_name))?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| err.to_string())?;
        let mut config = if settings.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider.clone())))
                .with_no_client_auth()
        } else {
            let roots = match &settings.ca_pem {
                Some(pem) => roots_of(pem)?,
                None => system(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let mut http1 = config.clone();
        http1.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsClient {
            config: Arc::new(config),
            http1: Arc::new(http1),
            name,
        })
    }
}

/// The trust anchors of a PEM CA bundle (compile checked it already).
fn roots_of(pem: &[u8]) -> Result<Arc<RootCertStore>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|err| format!("CA bundle: {err}"))?;
        roots.add(cert).map_err(|err| format!("CA bundle: {err}"))?;
    }
    Ok(Arc::new(roots))
}

/// The operating system's trust store (`SSL_CERT_FILE`, `SSL_CERT_DIR`
/// honoured), read once; certificates it cannot use are skipped with a
/// warning.
pub(super) fn system_roots() -> Arc<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::warn!(error = %err, "reading the system's trusted CA certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 || added == 0 {
        tracing::warn!(added, ignored, "system trust store for HTTPS backends");
    }
    Arc::new(roots)
}

/// `insecureSkipVerify`: any certificate chain and name are accepted, but
/// the handshake's signature is still checked, so the backend proves it
/// holds the key of the certificate it shows.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
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
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
