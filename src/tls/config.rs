//! The rustls server configuration of the TLS listener, rebuilt with each
//! table: versions, ALPN, client verification, and session state carried
//! over from the previous table so resumption survives a reload.

use std::sync::Arc;

use rustls::crypto::ring::Ticketer;
use rustls::pki_types::CertificateDer;
use rustls::server::{
    NoServerSessionStorage, ProducesTickets, ServerSessionMemoryCache, StoresServerSessions,
    WebPkiClientVerifier,
};
use rustls::version::{TLS12, TLS13};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::{provider, CertIndex};
use crate::snapshot::{ClientAuth, TlsVersion};

/// Session resumption state shared by the configurations of successive
/// tables while the client verification stays the same: stateless
/// tickets (TLS 1.2 and 1.3) and a bounded server-side cache.
#[derive(Clone, Debug)]
pub struct Sessions {
    ticketer: Arc<dyn ProducesTickets>,
    cache: Arc<dyn StoresServerSessions>,
}

/// Sessions cached at most: about 256 bytes each.
const SESSION_CACHE: usize = 4096;

impl Sessions {
    /// Fresh session state: a new ticket key (rotated by rustls every six
    /// hours) and an empty cache. Without a ticket key (the system's
    /// random source failed), resumption uses the cache alone.
    pub fn new() -> Self {
        let ticketer = Ticketer::new().unwrap_or_else(|err| {
            tracing::warn!(error = %err, "no TLS session tickets; resumption uses the cache only");
            Arc::new(NoTickets)
        });
        Sessions {
            ticketer,
            cache: ServerSessionMemoryCache::new(SESSION_CACHE),
        }
    }

    /// No resumption at all (tests of full handshakes).
    pub fn none() -> Self {
        Sessions {
            ticketer: Arc::new(NoTickets),
            cache: Arc::new(NoServerSessionStorage {}),
        }
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}

/// A ticketer that issues none.
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// The CA bundle client certificates are verified against, and whether
/// one is required.
#[derive(Clone, Debug)]
pub struct ClientCa {
    /// The trust anchors.
    pub roots: Arc<RootCertStore>,
    /// The bundle as read, to tell whether it changed.
    pub pem: Arc<[u8]>,
    /// Required, or optional.
    pub auth: ClientAuth,
}

/// What the listener's configuration is built from besides certificates.
#[derive(Clone, Copy, Debug)]
pub struct TlsOptions {
    /// The oldest version accepted.
    pub min_version: TlsVersion,
}

/// The listener's rustls configuration for one table.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// What each handshake of this table uses.
    pub server: Arc<ServerConfig>,
}

impl ListenerConfig {
    /// The configuration serving `index`'s certificates: TLS 1.2 (unless
    /// `options` says 1.3) and 1.3, ALPN `h2` then `http/1.1`, client
    /// certificates verified against `client` when set, no 0-RTT, and the
    /// given session state.
    pub fn build(
        index: Arc<CertIndex>,
        options: TlsOptions,
        client: Option<&ClientCa>,
        sessions: &Sessions,
    ) -> Result<ListenerConfig, rustls::Error> {
        let versions: &[&SupportedProtocolVersion] = match options.min_version {
            TlsVersion::Tls12 => &[&TLS13, &TLS12],
            TlsVersion::Tls13 => &[&TLS13],
        };
        let builder =
            ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions)?;
        let builder = match client {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(ca.roots.clone(), provider());
                let verifier = match ca.auth {
                    ClientAuth::Require => verifier,
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier
                    .build()
                    .map_err(|err| rustls::Error::General(err.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_cert_resolver(index);
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        server.session_storage = sessions.cache.clone();
        server.ticketer = sessions.ticketer.clone();
        server.max_early_data_size = 0;
        Ok(ListenerConfig {
            server: Arc::new(server),
        })
    }
}

/// The subject of a verified client's certificate (`CN=client, O=Org`),
/// from the chain the client sent; `None` without one.
pub fn client_subject(chain: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = chain?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(cert.subject().to_string())
}
