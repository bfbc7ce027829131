//! Which certificate a TLS client gets, by the name it asked for (SNI).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Certificate;

/// Certificates by the names they cover: an exact name beats a one-label
/// wildcard (`*.example.com` covers `a.example.com`, not `a.b.example.com`
/// nor `example.com`), then the default certificate. Where two
/// certificates cover the same name, the one inserted first (the older
/// route's) keeps it. A name can also be refused (`None`): a route whose
/// certificate cannot be served refuses its hosts, so they never get
/// another certificate or the default. Built at compile and immutable
/// after.
#[derive(Debug, Default)]
pub struct CertIndex {
    /// Exact names, lowercased.
    exact: HashMap<Box<str>, Option<Arc<Certificate>>>,
    /// Wildcards by the suffix after the `*` (`.example.com`).
    wildcard: HashMap<Box<str>, Option<Arc<Certificate>>>,
    /// For names nothing covers, and clients that send no SNI.
    default: Option<Arc<Certificate>>,
}

impl CertIndex {
    /// Indexes `cert` under every name it covers that no earlier
    /// certificate took.
    pub fn insert(&mut self, cert: &Arc<Certificate>) {
        for name in &cert.names {
            match name.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') => {
                    (self.wildcard.entry(suffix.into())).or_insert_with(|| Some(cert.clone()));
                }
                _ => {
                    (self.exact.entry(name.clone())).or_insert_with(|| Some(cert.clone()));
                }
            }
        }
    }

    /// Refuses the exact name `name` (lowercase) unless a certificate
    /// already covers it exactly.
    pub fn refuse_exact(&mut self, name: &str) {
        self.exact.entry(name.into()).or_insert(None);
    }

    /// Refuses the names under the wildcard suffix `suffix`
    /// (`.example.com`) unless a wildcard certificate already covers them.
    pub fn refuse_wildcard(&mut self, suffix: &str) {
        self.wildcard.entry(suffix.into()).or_insert(None);
    }

    /// Sets the certificate for names nothing else covers.
    pub fn set_default(&mut self, cert: Arc<Certificate>) {
        self.default = Some(cert);
    }

    /// The certificate for `name` (an SNI name or a request's host, without
    /// port), or `None`: the handshake must fail.
    pub fn lookup(&self, name: Option<&str>) -> Option<&Arc<Certificate>> {
        match name.and_then(|name| self.covering(name)) {
            Some(slot) => slot.as_ref(),
            None => self.default.as_ref(),
        }
    }

    /// The entry for `name` (not the default): a certificate, or a
    /// refusal. `name` is compared case-insensitively; a trailing dot is
    /// ignored.
    fn covering(&self, name: &str) -> Option<&Option<Arc<Certificate>>> {
        let mut buf = [0u8; 253];
        let name = lowercase(name.trim_end_matches('.'), &mut buf)?;
        if let Some(slot) = self.exact.get(name) {
            return Some(slot);
        }
        let dot = name.find('.')?;
        self.wildcard.get(&name[dot..])
    }

    /// Whether nothing is indexed (no certificate, no default).
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.default.is_none()
    }
}

/// Whether `names` (a certificate's SANs) cover the host `host` (lowercase,
/// or a route's wildcard host `*.example.com`).
pub fn covers(names: &[Box<str>], host: &str) -> bool {
    names.iter().any(|name| {
        if **name == *host {
            return true;
        }
        // A wildcard SAN covers one label: `*.example.com` covers
        // `a.example.com` and the route host `*.example.com` itself.
        match (name.strip_prefix('*'), host.find('.')) {
            (Some(suffix), Some(dot)) => {
                dot > 0 && &host[dot..] == suffix && !host[..dot].contains('*')
            }
            _ => false,
        }
    })
}

/// `name` lowercased into `buf`, without allocating; `None` when too long
/// to be a DNS name.
fn lowercase<'a>(name: &str, buf: &'a mut [u8; 253]) -> Option<&'a str> {
    let bytes = name.as_bytes();
    let out = buf.get_mut(..bytes.len())?;
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b.to_ascii_lowercase();
    }
    std::str::from_utf8(out).ok()
}

impl ResolvesServerCert for CertIndex {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(hello.server_name())
            .map(|cert| cert.key.clone())
    }
}
