//! The per-request context the phases share.
//!
//! Owns: [`RequestCtx`], what the route phase learns once and every later
//! phase reads. Must not: hold the route table (only the matched rule's
//! `Arc` outlives the one table load) or anything locked.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;
use tokio::time::Instant;

use crate::metrics::MethodBucket;
use crate::table::Rule;

/// What the route phase learns about a request, read by every later phase.
#[derive(Debug)]
pub struct RequestCtx {
    /// The matched rule; the only part of the table kept across awaits.
    pub rule: Arc<Rule>,
    /// The client: the peer, or behind trusted proxies the right-most
    /// untrusted `X-Forwarded-For` hop. Firewall, rate limit and balancing
    /// key on it.
    pub client: IpAddr,
    /// The host the client asked for (absolute-form or HTTP/2 authority,
    /// else `Host`), used for matching and redirects. The prepare phase
    /// takes it (for `Host` and `X-Forwarded-Host`), so it is `None` after.
    pub host: Option<HeaderValue>,
    /// Length of the matched path prefix (0 for other matches), for prefix
    /// rewrites and redirects.
    pub prefix_len: usize,
    /// When the request's head was read: rate limits, the first pick, the
    /// retry budget and the metrics read this one clock reading.
    pub started: Instant,
    /// The whole exchange's deadline, retries and the response body
    /// included: the rule's `timeouts.total`, or a gRPC client's
    /// `grpc-timeout` when that is sooner.
    pub deadline: Option<Instant>,
    /// Whether the request is gRPC (`content-type: application/grpc*`):
    /// its answers are gRPC statuses and each try forwards what is left
    /// of the deadline as `grpc-timeout`.
    pub grpc: bool,
    /// Whether the method is idempotent: only then are failures after
    /// connecting, and retryable statuses, tried again.
    pub idempotent: bool,
    /// The method as a metric label, found once.
    pub method: MethodBucket,
}

impl RequestCtx {
    /// The host as text, when it is visible ASCII.
    pub fn host_str(&self) -> Option<&str> {
        self.host.as_ref().and_then(|h| h.to_str().ok())
    }
}
