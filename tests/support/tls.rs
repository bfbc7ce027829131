//! TLS for the tests: an rcgen test PKI (CA, leaf, wildcard, expired and
//! client certificates, ECDSA P-256: rcgen cannot make RSA keys with ring)
//! rendered as `kind: Secret` / `ConfigMap` documents for route files, and
//! a rustls client (ring provider, trusting the test CA) that reports what
//! each handshake negotiated.

use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;

// === the test PKI ===

/// A test certificate authority; every certificate it issues gets a serial
/// of its own, so a test can tell which one a handshake presented.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    next_serial: AtomicU64,
}

/// A certificate and its private key, as PEM, with its serial.
#[derive(Clone, Debug)]
pub struct Cert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The serial number, unique per [`Pki`].
    pub serial: u64,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Pki {
    /// A fresh CA named `cn`.
    pub fn new(cn: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
        Pki {
            ca,
            next_serial: AtomicU64::new(1000),
        }
    }

    /// The CA certificate (PEM), e.g. for a `ca.crt`.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Roots trusting only this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("add test CA");
        roots
    }

    /// A server certificate for `names` (DNS SANs; `*.example.test` is a
    /// wildcard), valid 1975..4096.
    pub fn leaf(&self, names: &[&str]) -> Cert {
        self.issue(self.server_params(names))
    }

    /// A server certificate for `names` that expired in 2001.
    pub fn expired(&self, names: &[&str]) -> Cert {
        let mut params = self.server_params(names);
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        self.issue(params)
    }

    /// A client certificate whose subject is `CN={cn}`.
    pub fn client(&self, cn: &str) -> Cert {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn server_params(&self, names: &[&str]) -> CertificateParams {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params
    }

    fn issue(&self, mut params: CertificateParams) -> Cert {
        let serial = self.next_serial.fetch_add(1, Ordering::SeqCst);
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("sign leaf");
        Cert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

impl Cert {
    /// A TLS server config for this certificate offering `alpn` (in
    /// preference order).
    pub fn acceptor(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.der()], self.key_der())
            .expect("server certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    }

    /// The certificate (DER).
    pub fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }

    /// The private key (DER).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// This certificate with another certificate's key: the pair does not
    /// match.
    pub fn with_key_of(&self, other: &Cert) -> Cert {
        Cert {
            key_pem: other.key_pem.clone(),
            key_der: other.key_der.clone(),
            ..self.clone()
        }
    }

    /// A `kubernetes.io/tls` Secret `ns/name` holding this pair as
    /// `stringData`.
    pub fn secret(&self, ns: &str, name: &str) -> String {
        tls_secret(ns, name, &self.cert_pem, &self.key_pem)
    }

    /// The same Secret with base64 `data` (as `kubectl get -o yaml` shows).
    pub fn secret_base64(&self, ns: &str, name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
            base64(self.cert_pem.as_bytes()),
            base64(self.key_pem.as_bytes())
        )
    }
}

/// A `kubernetes.io/tls` Secret with these `tls.crt` / `tls.key` texts as
/// `stringData` (any text: malformed cases too).
pub fn tls_secret(ns: &str, name: &str, crt: &str, key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: {}\n  tls.key: {}\n",
        yaml_block(crt),
        yaml_block(key)
    )
}

/// A ConfigMap `ns/name` with `ca.crt` (for `--tls-client-ca`).
pub fn ca_config_map(ns: &str, name: &str, ca_pem: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\ndata:\n  ca.crt: {}\n",
        yaml_block(ca_pem)
    )
}

/// A Secret `ns/name` with `ca.crt` (for `--tls-client-ca`).
pub fn ca_secret(ns: &str, name: &str, ca_pem: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\nstringData:\n  ca.crt: {}\n",
        yaml_block(ca_pem)
    )
}

/// One route for `host` over TLS with `cert` (Secret `default/a-cert`)
/// and one `backend`: the route and its Secret as one YAML file.
pub fn one_tls_route(host: &str, cert: &Cert, backend: &super::Backend) -> String {
    documents(&[
        super::yaml(&[super::route("a")
            .host(host)
            .tls("a-cert")
            .rule(super::Rule::new().backend(backend))]),
        cert.secret("default", "a-cert"),
    ])
}

/// Joins YAML documents (routes rendered with [`yaml`], Secrets, ...).
pub fn documents(docs: &[String]) -> String {
    docs.join("---\n")
}

/// `text` as a YAML literal block scalar at two-space indentation.
fn yaml_block(text: &str) -> String {
    let mut out = String::from("|\n");
    for line in text.lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// === the TLSReady condition ===

/// A route's `TLSReady` condition as `/routes` (or a resource's status)
/// shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsReady {
    /// `True` or `False`.
    pub status: bool,
    /// e.g. `CertificateReady`, `SecretNotFound`.
    pub reason: String,
    /// For a person: names the Secret (and the host) and the problem.
    pub message: String,
}

/// The `TLSReady` condition in a route status: a `conditions` list entry of
/// type `TLSReady` (a resource's status), or the `tls` field shaped like
/// `resolved_refs` (`/routes`). `None` when absent.
pub fn tls_ready(status: &serde_json::Value) -> Option<TlsReady> {
    if let Some(conditions) = status["conditions"].as_array() {
        let c = conditions.iter().find(|c| c["type"] == "TLSReady")?;
        return Some(TlsReady {
            status: c["status"] == "True",
            reason: c["reason"].as_str().unwrap_or_default().to_owned(),
            message: c["message"].as_str().unwrap_or_default().to_owned(),
        });
    }
    let c = &status["tls"];
    if c.is_null() {
        return None;
    }
    Some(TlsReady {
        status: c["status"] == true || c["status"] == "True",
        reason: c["reason"].as_str().unwrap_or_default().to_owned(),
        message: c["message"].as_str().unwrap_or_default().to_owned(),
    })
}
