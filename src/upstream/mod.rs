//! Connections to backends: how to reach an endpoint (its protocol and
//! TLS settings), and the per-endpoint connection pools.
//!
//! Owns: connecting (TCP, TLS), HTTP/1.1 and HTTP/2 client connections and
//! their reuse. Must not: know routes, rules or statuses; it is handed a
//! request and an endpoint, and gives back a response or why not.

pub mod body;

use std::sync::Arc;

/// How the proxy talks to an endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.1 over TCP (`protocol: HTTP`, the default).
    #[default]
    Http1,
    /// HTTP/2 over TCP with prior knowledge (`protocol: H2C`).
    H2c,
    /// TLS, ALPN offering `h2` and `http/1.1` (`protocol: HTTPS`).
    Https,
}

/// How a TLS backend is verified: compared by value, so two routes with
/// the same settings share one pool and its TLS sessions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// The name sent as SNI and verified against the certificate.
    pub server_name: Arc<str>,
    /// The CA bundle (PEM, every `caCertificateRefs` entry's `ca.crt`
    /// concatenated); `None` verifies against the system roots.
    pub ca_pem: Option<Arc<[u8]>>,
    /// `insecureSkipVerify`: the certificate chain and name are not
    /// checked (the handshake signature still is).
    pub insecure: bool,
}

/// How to reach one backend's endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Transport {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// With [`Protocol::Https`]: how the backend is verified.
    pub tls: Option<Arc<TlsSettings>>,
}
