//! The log phase's metrics: one update per request through handles
//! resolved at compile (the listener's, the matched rule's, or the
//! unmatched series), when metrics are on.
//!
//! Owns: what a request counts toward. Must not: look a series up or
//! format a label (the handles are on the connection's shared state and
//! on the rule).

use http::StatusCode;
use tokio::time::Instant;

use super::service::Connection;
use crate::metrics::MethodBucket;
use crate::table::Rule;

/// What the log phase knows of a request from its start.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// When its head was read.
    pub at: Instant,
    /// Its method, as a label.
    pub method: MethodBucket,
}

/// Counts a request answered with `status`: on its listener, and on the
/// matched `rule` (by `backend`, or `backend="-"` when the proxy answered)
/// or under `route="-"` when none matched.
pub fn record(
    conn: &Connection,
    start: Start,
    rule: Option<&Rule>,
    backend: Option<u16>,
    status: StatusCode,
) {
    let Some(metrics) = &conn.shared.metrics else {
        return;
    };
    let elapsed = Instant::now().saturating_duration_since(start.at);
    (metrics.listener(conn.tls.is_some())).record(start.method, status, elapsed);
    match rule {
        Some(rule) => {
            rule.metrics.record(backend, start.method, status);
            if metrics.route_histograms {
                rule.metrics.duration().observe(elapsed);
            }
        }
        None => metrics.unmatched().record(start.method, status),
    }
}
