//! Reading a certificate chain and key (PEM) into a [`Certificate`], and a
//! CA bundle into trust anchors.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use x509_parser::extensions::GeneralName;

use super::provider;

/// A served certificate: the chain and key of one Secret, checked, with
/// what the index and the status need read once.
#[derive(Debug)]
pub struct Certificate {
    /// Chain and signing key, as rustls serves them.
    pub key: Arc<CertifiedKey>,
    /// The DNS names the leaf covers (its subjectAltName), lowercased;
    /// wildcards as `*.example.com`.
    pub names: Vec<Box<str>>,
    /// The leaf's `notAfter`, in seconds since the epoch.
    pub not_after: i64,
    /// The leaf's serial number, hex, for messages and logs.
    pub serial: String,
}

/// Why a Secret's certificate cannot be served. Each has a stable
/// [`code`](CertProblem::code); the message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    /// A key the Secret must have (`tls.crt`, `tls.key`, `ca.crt`) is absent.
    #[error("it has no {0:?}")]
    MissingKey(&'static str),
    /// The PEM of a key does not parse.
    #[error("{key} is not valid PEM: {reason}")]
    BadPem {
        /// `tls.crt`, `tls.key` or `ca.crt`.
        key: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// `tls.crt` (or `ca.crt`) holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(&'static str),
    /// A certificate is not valid X.509.
    #[error("{key} holds a certificate that is not valid X.509: {reason}")]
    BadCertificate {
        /// `tls.crt` or `ca.crt`.
        key: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The private key's type is not one rustls signs with.
    #[error("tls.key is not a key this proxy can use: {0}")]
    UnsupportedKey(String),
    /// The key is not the certificate's.
    #[error("tls.key does not match the certificate in tls.crt")]
    KeyMismatch,
    /// The leaf names no DNS name.
    #[error("the certificate has no DNS names (subjectAltName); clients ignore its common name")]
    NoNames,
    /// The leaf has expired.
    #[error("the certificate (serial {serial}) expired at {not_after} (seconds since the epoch)")]
    Expired {
        /// The leaf's serial.
        serial: String,
        /// Its `notAfter`.
        not_after: i64,
    },
}

impl CertProblem {
    /// A stable kebab-case code, for the keep-last-good gate and logs.
    pub fn code(&self) -> &'static str {
        match self {
            CertProblem::MissingKey(_) => "tls-missing-key",
            CertProblem::BadPem { .. } => "tls-bad-pem",
            CertProblem::NoCertificate(_) => "tls-no-certificate",
            CertProblem::BadCertificate { .. } => "tls-bad-certificate",
            CertProblem::UnsupportedKey(_) => "tls-unsupported-key",
            CertProblem::KeyMismatch => "tls-key-mismatch",
            CertProblem::NoNames => "tls-no-names",
            CertProblem::Expired { .. } => "tls-expired",
        }
    }
}

/// Reads `tls.crt` (leaf first, then intermediates) and `tls.key` into a
/// [`Certificate`], refusing a key that does not match, a leaf without DNS
/// names, and a leaf expired at `now` (seconds since the epoch).
pub fn load_certificate(crt: &[u8], key: &[u8], now: i64) -> Result<Certificate, CertProblem> {
    let chain = CertificateDer::pem_slice_iter(crt)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad_pem("tls.crt", &err))?;
    let leaf = chain.first().ok_or(CertProblem::NoCertificate("tls.crt"))?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|err| CertProblem::BadCertificate {
            key: "tls.crt",
            reason: err.to_string(),
        })?;
    let serial = parsed.raw_serial_as_string();
    let not_after = parsed.validity().not_after.timestamp();
    let names = dns_names(&parsed);
    let private = PrivateKeyDer::from_pem_slice(key).map_err(|err| bad_pem("tls.key", &err))?;
    let signer = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|err| CertProblem::UnsupportedKey(err.to_string()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|_| CertProblem::KeyMismatch)?;
    if names.is_empty() {
        return Err(CertProblem::NoNames);
    }
    if not_after <= now {
        return Err(CertProblem::Expired { serial, not_after });
    }
    Ok(Certificate {
        key: Arc::new(certified),
        names,
        not_after,
        serial,
    })
}

/// The leaf's DNS subjectAltNames, lowercased.
fn dns_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<Box<str>> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        })
        .map(String::into_boxed_str)
        .collect()
}

/// Reads a PEM CA bundle (`ca.crt`) into trust anchors: at least one, and
/// every certificate in it usable.
pub fn load_ca(pem: &[u8]) -> Result<Arc<RootCertStore>, CertProblem> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|err| bad_pem("ca.crt", &err))?;
        roots.add(cert).map_err(|err| CertProblem::BadCertificate {
            key: "ca.crt",
            reason: err.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(CertProblem::NoCertificate("ca.crt"));
    }
    Ok(Arc::new(roots))
}

fn bad_pem(key: &'static str, err: &rustls::pki_types::pem::Error) -> CertProblem {
    CertProblem::BadPem {
        key,
        reason: err.to_string(),
    }
}
