//! TLS termination's compiled parts: certificates read from Secrets, the
//! index that picks one per SNI name, and the rustls server configuration
//! the TLS listener hands each handshake.
//!
//! Owns: [`Certificate`] (a `kubernetes.io/tls` Secret's chain and key,
//! checked, with the DNS names it covers and its expiry read once),
//! [`CertProblem`] (why a Secret cannot be served, with a stable code),
//! [`CertIndex`] (exact name, then a one-label wildcard, then the default;
//! also rustls's certificate resolver), [`ListenerConfig`] (the
//! `ServerConfig` with ALPN, versions, client verification and the
//! session state carried from table to table) and the client-certificate
//! subject. Must not: know about routes, read files or clocks (time is a
//! parameter), or lock per handshake: everything here is immutable once
//! compiled and published with the table.
//!
//! The crypto provider is ring, chosen in one place ([`provider`]): kube
//! already links rustls with ring, and a second provider (aws-lc-rs) would
//! leave rustls without a process-wide default.

mod config;
mod index;
mod load;

use std::sync::{Arc, OnceLock};

pub use config::{client_subject, ClientCa, ListenerConfig, Sessions, TlsOptions};
pub use index::covers;
pub use index::CertIndex;
pub use load::{load_ca, load_certificate, CertProblem, Certificate};

/// The one crypto provider: ring, built once.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

#[cfg(test)]
mod tests;
