//! A rustls client (ring provider, trusting one test CA) that connects to
//! the proxy's TLS listener and reports what the handshake negotiated; and
//! the assertions on a failed handshake.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, ClientConfig, DigitallySignedStruct, HandshakeKind, ProtocolVersion,
    SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::*;

/// How a [`TlsClient`] connects; built with [`TlsClient::builder`].
pub struct TlsClientBuilder {
    roots: rustls::RootCertStore,
    name: String,
    sni: bool,
    alpn: Vec<Vec<u8>>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    client_cert: Option<Cert>,
    resumption: bool,
    verify: bool,
    early_data: bool,
}

/// A TLS client configuration, reused across connections (so a second
/// connection can resume the first one's session).
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

/// What a handshake negotiated.
#[derive(Clone, Debug)]
pub struct Negotiated {
    /// The ALPN protocol chosen by the server, if any.
    pub alpn: Option<Vec<u8>>,
    /// TLS 1.2 or 1.3.
    pub version: ProtocolVersion,
    /// The serial of the certificate the server presented.
    pub serial: u64,
    /// Full or resumed.
    pub kind: HandshakeKind,
    /// Whether the server accepted 0-RTT early data (only ever offered
    /// on a resumption by a client built with `offer_early_data`).
    pub early_data_accepted: bool,
}

/// An established TLS connection and what it negotiated.
pub struct TlsConn {
    /// The stream.
    pub stream: TlsStream<TcpStream>,
    /// What the handshake negotiated.
    pub negotiated: Negotiated,
}

impl TlsClient {
    /// A client trusting `pki`, verifying the server as `name` and sending
    /// it as SNI; no ALPN, TLS 1.2 and 1.3, no client certificate,
    /// resumption on.
    pub fn builder(pki: &Pki, name: &str) -> TlsClientBuilder {
        TlsClientBuilder {
            roots: pki.roots(),
            name: name.to_string(),
            sni: true,
            alpn: Vec::new(),
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            client_cert: None,
            resumption: true,
            verify: true,
            early_data: false,
        }
    }

    /// The default client for `name`, offering ALPN `http/1.1`.
    pub fn h1(pki: &Pki, name: &str) -> TlsClient {
        TlsClient::builder(pki, name).alpn(&["http/1.1"]).build()
    }

    /// The default client for `name`, offering ALPN `h2`.
    pub fn h2(pki: &Pki, name: &str) -> TlsClient {
        TlsClient::builder(pki, name).alpn(&["h2"]).build()
    }

    /// Connects to `addr` and completes the handshake.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<TlsConn> {
        let tcp = within("TCP connect", TcpStream::connect(addr)).await?;
        let stream = within(
            "TLS handshake",
            self.connector.connect(self.name.clone(), tcp),
        )
        .await?;
        let negotiated = negotiated(&stream);
        Ok(TlsConn { stream, negotiated })
    }

    /// Connects and panics if the handshake fails.
    pub async fn must_connect(&self, addr: SocketAddr) -> TlsConn {
        self.connect(addr)
            .await
            .unwrap_or_else(|e| panic!("TLS handshake with {:?} failed: {e:?}", self.name))
    }

    /// Connects and returns only what was negotiated.
    pub async fn handshake(&self, addr: SocketAddr) -> Negotiated {
        self.must_connect(addr).await.negotiated
    }

    /// One GET over a new HTTP/1.1-over-TLS connection; the error (of the
    /// handshake or of the request) when either fails.
    pub async fn try_get(
        &self,
        addr: SocketAddr,
        host: &str,
        path: &str,
    ) -> Result<Reply, BoxError> {
        let conn = self.connect(addr).await?;
        let mut h1 = H1Conn::handshake(conn.stream).await?;
        let req = http::Request::get(path)
            .header(http::header::HOST, host)
            .body(empty())?;
        let resp = h1.try_send(req).await?;
        Ok(within("response body", Reply::collect(resp)).await)
    }
}

impl TlsClientBuilder {
    /// Sends no SNI (as a client connecting by IP address does); the
    /// certificate is still verified as the builder's name.
    pub fn without_sni(mut self) -> Self {
        self.sni = false;
        self
    }

    /// The ALPN protocols offered, in order (e.g. `&["h2", "http/1.1"]`).
    pub fn alpn(mut self, protocols: &[&str]) -> Self {
        self.alpn = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }

    /// Accepts whatever certificate the server presents (signatures still
    /// checked), so a test can send any SNI and look at which certificate
    /// came back ([`Negotiated::serial`]).
    pub fn accept_any_certificate(mut self) -> Self {
        self.verify = false;
        self
    }

    /// Offers 0-RTT early data when resuming a session whose ticket allows
    /// it ([`Negotiated::early_data_accepted`] tells whether it was taken).
    pub fn offer_early_data(mut self) -> Self {
        self.early_data = true;
        self
    }

    /// Offers TLS 1.2 only.
    pub fn tls12_only(mut self) -> Self {
        self.versions = vec![&rustls::version::TLS12];
        self
    }

    /// Offers TLS 1.3 only.
    pub fn tls13_only(mut self) -> Self {
        self.versions = vec![&rustls::version::TLS13];
        self
    }

    /// Presents `cert` when the server asks for a client certificate.
    pub fn client_cert(mut self, cert: &Cert) -> Self {
        self.client_cert = Some(cert.clone());
        self
    }

    /// Turns session resumption on (default) or off.
    pub fn resumption(mut self, on: bool) -> Self {
        self.resumption = on;
        self
    }

    /// The client.
    pub fn build(self) -> TlsClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&self.versions)
            .expect("protocol versions");
        let builder = if self.verify {
            versions.with_root_certificates(self.roots)
        } else {
            versions
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        };
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some(cert) => builder
                .with_client_auth_cert(vec![cert.der()], cert.key_der())
                .expect("client certificate"),
        };
        config.alpn_protocols = self.alpn;
        config.enable_sni = self.sni;
        config.enable_early_data = self.early_data;
        config.resumption = if self.resumption {
            Resumption::in_memory_sessions(64)
        } else {
            Resumption::disabled()
        };
        let name = ServerName::try_from(self.name).expect("server name");
        TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        }
    }
}

/// A verifier that trusts any certificate but checks handshake signatures.
#[derive(Debug)]
struct AnyCertificate;

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
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn negotiated(stream: &TlsStream<TcpStream>) -> Negotiated {
    let (_, conn) = stream.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("server presented a certificate");
    Negotiated {
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        version: conn.protocol_version().expect("negotiated version"),
        serial: serial_of(leaf),
        kind: conn.handshake_kind().expect("handshake kind"),
        early_data_accepted: conn.is_early_data_accepted(),
    }
}

/// The serial number of a DER certificate (as issued by [`Pki`]).
pub fn serial_of(der: &CertificateDer<'_>) -> u64 {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("parse peer certificate");
    cert.tbs_certificate
        .raw_serial()
        .iter()
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

// === HTTP over TLS ===

impl TlsConn {
    /// An HTTP/1.1 connection over this TLS stream.
    pub async fn h1(self) -> H1Conn {
        H1Conn::handshake(self.stream)
            .await
            .expect("http1 handshake over TLS")
    }

    /// An HTTP/2 connection over this TLS stream (requests go out as
    /// `https://authority/path`).
    pub async fn h2(self) -> H2Conn {
        H2Conn::handshake(self.stream, "https")
            .await
            .expect("h2 handshake over TLS")
    }
}

// === failures ===

/// The rustls error somewhere in `err`'s source chain.
pub fn tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return Some(tls);
                }
            }
        }
        next = e.source();
    }
    None
}

/// Asserts `result` is a handshake that failed because the server sent
/// `alert`.
pub fn assert_alert<T>(result: Result<T, std::io::Error>, alert: AlertDescription) {
    let err = match result {
        Ok(_) => panic!("expected the handshake to fail with {alert:?}, but it succeeded"),
        Err(e) => e,
    };
    match tls_error(&err) {
        Some(rustls::Error::AlertReceived(got)) if *got == alert => {}
        other => panic!("expected alert {alert:?}, got {other:?} (io error: {err:?})"),
    }
}

/// Asserts a GET over a new TLS connection got no HTTP response: the
/// handshake failed, or (TLS 1.3, where a client finishes before the
/// server has checked its certificate) the server's alert ended the
/// connection before any response. Returns the failure for messages.
pub fn assert_refused(result: Result<Reply, BoxError>) -> String {
    match result {
        Ok(reply) => panic!(
            "expected the TLS connection to be refused, got {} {:?}",
            reply.status,
            reply.text()
        ),
        Err(err) => match tls_error(err.as_ref()) {
            Some(tls) => format!("{tls:?}"),
            None => format!("{err:?}"),
        },
    }
}
