//! Connections to backends: how to reach an endpoint (its protocol and
//! TLS settings), and the per-endpoint connection pools.
//!
//! Owns: connecting (TCP, TLS), HTTP/1.1 and HTTP/2 client connections and
//! their reuse. Must not: know routes, rules or statuses; it is handed a
//! request and an endpoint, and gives back a response or why not.
//!
//! Each endpoint (address, protocol and TLS settings) has one
//! [`EndpointPool`], made at compile (no I/O) and carried from table to
//! table like the endpoint's health. HTTP/1.1 connections wait idle on a
//! LIFO stack and go back on it when a response body ends; HTTP/2
//! connections are shared, up to the server's concurrent-stream limit
//! each. A request that was never written comes back to the caller whole
//! ([`SendError::NotSent`]), so trying it elsewhere copies nothing.

pub mod body;
mod connect;
mod h1;
mod h2;
mod pool;
mod response;
mod tls;

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::Request;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;

pub use body::RequestBody;
pub use pool::EndpointPool;
pub use response::ResponseBody;

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

/// Connection settings shared by every pool of one proxy, made once.
pub struct Upstreams {
    /// Time allowed to connect (TCP and TLS) when the rule sets none.
    pub connect_timeout: Duration,
    /// How long a connection may stay unused before it is closed.
    pub idle_timeout: Duration,
    /// Most idle HTTP/1.1 connections kept per endpoint.
    pub max_idle_per_endpoint: usize,
    h1: hyper::client::conn::http1::Builder,
    h2: hyper::client::conn::http2::Builder<TokioExecutor>,
    provider: Arc<CryptoProvider>,
    system_roots: OnceLock<Arc<RootCertStore>>,
    open_gauges: Option<[Gauge; 2]>,
}

/// What [`Upstreams::new`] is made from.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// See [`Upstreams::connect_timeout`].
    pub connect_timeout: Duration,
    /// See [`Upstreams::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`Upstreams::max_idle_per_endpoint`].
    pub max_idle_per_endpoint: usize,
    /// The TLS provider for HTTPS backends.
    pub provider: Arc<CryptoProvider>,
    /// The roots HTTPS backends without a CA bundle are verified against;
    /// `None` reads the system's trust store at the first such connect.
    pub system_roots: Option<Arc<RootCertStore>>,
    /// Gauges of the connections open, HTTP/1.1 and HTTP/2 (metrics on).
    pub open_gauges: Option<[Gauge; 2]>,
}

/// Keeps one upstream connection counted as open until dropped (with
/// its connection's task).
#[derive(Debug)]
pub(super) struct Open(Option<Gauge>);

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

impl Upstreams {
    /// The settings, and the HTTP/1.1 and HTTP/2 client builders.
    pub fn new(options: UpstreamOptions) -> Upstreams {
        let mut h2 = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        // Pings find dead connections (a backend gone without a FIN);
        // unused ones are closed by the idle timeout.
        h2.timer(TokioTimer::new())
            .initial_max_send_streams(h2::INITIAL_MAX_STREAMS)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true);
        let system_roots = OnceLock::new();
        if let Some(roots) = options.system_roots {
            let _ = system_roots.set(roots);
        }
        Upstreams {
            connect_timeout: options.connect_timeout,
            idle_timeout: options.idle_timeout,
            max_idle_per_endpoint: options.max_idle_per_endpoint,
            h1: hyper::client::conn::http1::Builder::new(),
            h2,
            provider: options.provider,
            system_roots,
            open_gauges: options.open_gauges,
        }
    }

    /// Counts a new connection open (`h2`: HTTP/2, else HTTP/1.1).
    fn opened(&self, h2: bool) -> Open {
        let gauge = self
            .open_gauges
            .as_ref()
            .map(|g| g[usize::from(h2)].clone());
        if let Some(gauge) = &gauge {
            gauge.inc();
        }
        Open(gauge)
    }

    fn system_roots(&self) -> Arc<RootCertStore> {
        self.system_roots.get_or_init(tls::system_roots).clone()
    }
}

/// Why a request got no response.
// The request comes back by value: boxing it would allocate on the path
// that exists to avoid copies.
#[allow(clippy::large_enum_variant)]
pub enum SendError {
    /// Nothing of it reached the backend: no connection could be made, or
    /// every pooled one closed before taking it. The request is the
    /// caller's again, its body unpolled.
    NotSent {
        /// The request, as it was handed in.
        request: Request<RequestBody>,
        /// Why no connection took it.
        cause: ConnectError,
    },
    /// It was sent (at least in part), and the exchange failed.
    Sent {
        /// What failed.
        error: hyper::Error,
        /// The backend says it did not process the request (HTTP/2
        /// GOAWAY past it, or `REFUSED_STREAM`): it may go again, whatever
        /// its method.
        unprocessed: bool,
    },
}

impl std::fmt::Debug for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotSent { cause, .. } => {
                f.debug_struct("NotSent").field("cause", cause).finish()
            }
            SendError::Sent { error, unprocessed } => f
                .debug_struct("Sent")
                .field("error", error)
                .field("unprocessed", unprocessed)
                .finish(),
        }
    }
}

/// Why no connection to an endpoint could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed (refused, unreachable, a name that does not
    /// resolve).
    #[error("connect failed: {0}")]
    Io(#[source] io::Error),
    /// TCP and TLS did not finish within the connect timeout.
    #[error("connect timed out after {0:?}")]
    TimedOut(Duration),
    /// The TLS handshake failed: the certificate was not trusted or not
    /// for the name, or the backend does not speak TLS.
    #[error("backend TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    /// The endpoint's TLS settings could not be made into a client
    /// configuration.
    #[error("backend TLS settings: {0}")]
    TlsSettings(String),
    /// The HTTP handshake on a new connection failed.
    #[error("HTTP handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
    /// A protocol upgrade (WebSocket) to an endpoint that speaks only
    /// HTTP/2.
    #[error("protocol upgrades need HTTP/1.1; the backend speaks h2c")]
    UpgradeNeedsHttp1,
}

impl ConnectError {
    /// Whether the connect ran out of time (ours, or the operating
    /// system's).
    pub fn is_timeout(&self) -> bool {
        match self {
            ConnectError::TimedOut(_) => true,
            ConnectError::Io(err) => err.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// The same failure, for another request that waited on this one's
    /// dial.
    fn again(&self) -> ConnectError {
        let copy = |err: &io::Error| io::Error::new(err.kind(), err.to_string());
        match self {
            ConnectError::Io(err) => ConnectError::Io(copy(err)),
            ConnectError::TimedOut(after) => ConnectError::TimedOut(*after),
            ConnectError::Tls(err) => ConnectError::Tls(copy(err)),
            ConnectError::TlsSettings(text) => ConnectError::TlsSettings(text.clone()),
            ConnectError::Handshake(err) => ConnectError::Io(io::Error::other(err.to_string())),
            ConnectError::UpgradeNeedsHttp1 => ConnectError::UpgradeNeedsHttp1,
        }
    }

    /// Whether TLS to the backend failed (a wrong CA or name, above all).
    pub fn is_tls(&self) -> bool {
        matches!(self, ConnectError::Tls(_) | ConnectError::TlsSettings(_))
    }
}
