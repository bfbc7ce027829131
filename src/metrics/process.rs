//! Process-wide families that are not per request: open client and
//! upstream connections, TLS handshakes by result, and route-table publishes.
//! Every label value is fixed, so each handle is resolved once, at start.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// One label, fixed.
type Label = [(&'static str, &'static str); 1];

/// How a TLS handshake ended: the `result` label values.
pub const HANDSHAKE_RESULTS: [&str; 6] = [
    "ok",
    "plain_http",
    "unknown_name",
    "not_configured",
    "failed",
    "timeout",
];

/// The process-wide families and their handles.
#[derive(Debug)]
pub struct ProcessMetrics {
    connections: [Gauge; 2],
    /// Upstream connections open, HTTP/1.1 and HTTP/2 (see
    /// [`ProcessMetrics::upstream_connections`]).
    upstream: [Gauge; 2],
    handshakes: [Counter; HANDSHAKE_RESULTS.len()],
    published: Counter,
    kept: Counter,
    last_publish: Gauge<f64, AtomicU64>,
}

impl ProcessMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let connections = Family::<Label, Gauge>::default();
        registry.register(
            "client_connections_open",
            "Client connections open, by listener",
            connections.clone(),
        );
        let upstream = Family::<Label, Gauge>::default();
        registry.register(
            "upstream_connections_open",
            "Connections to backends open, by protocol (http1, h2)",
            upstream.clone(),
        );
        let handshakes = Family::<Label, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the HTTPS listener, by result",
            handshakes.clone(),
        );
        let publishes = Family::<Label, Counter>::default();
        registry.register(
            "config_publishes",
            "Route-table compiles: published, or kept the last good table (an edit refused)",
            publishes.clone(),
        );
        let last_publish = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "config_last_publish_timestamp_seconds",
            "When a route table was last published (seconds since the epoch)",
            last_publish.clone(),
        );
        ProcessMetrics {
            connections: ["http", "https"]
                .map(|l| connections.get_or_create_owned(&[("listener", l)])),
            upstream: ["http1", "h2"].map(|p| upstream.get_or_create_owned(&[("protocol", p)])),
            handshakes: HANDSHAKE_RESULTS.map(|r| handshakes.get_or_create_owned(&[("result", r)])),
            published: publishes.get_or_create_owned(&[("result", "published")]),
            kept: publishes.get_or_create_owned(&[("result", "kept")]),
            last_publish,
        }
    }

    /// Counts a client connection open until the guard drops.
    pub fn connection_opened(&self, tls: bool) -> OpenConnection {
        let gauge = self.connections[usize::from(tls)].clone();
        gauge.inc();
        OpenConnection(gauge)
    }

    /// The gauges the upstream pool counts its open connections on:
    /// HTTP/1.1, then HTTP/2.
    pub fn upstream_connections(&self) -> [Gauge; 2] {
        self.upstream.clone()
    }

    /// Counts a TLS handshake that ended with `result` (one of
    /// [`HANDSHAKE_RESULTS`]).
    pub fn tls_handshake(&self, result: &str) {
        if let Some(i) = HANDSHAKE_RESULTS.iter().position(|r| *r == result) {
            self.handshakes[i].inc();
        }
    }

    /// Counts a compile: `published` its table, or kept the last good one;
    /// `now` is the time in seconds since the epoch.
    pub fn publish(&self, published: bool, now: f64) {
        if published {
            self.published.inc();
            self.last_publish.set(now);
        } else {
            self.kept.inc();
        }
    }
}

/// Keeps a client connection counted as open.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
