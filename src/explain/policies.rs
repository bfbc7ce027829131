//! The winning rule's policies and backends, judged by the proxy's own
//! functions in the proxy's order: HTTPS redirect → firewall → rate limit
//! (described) → body limit → redirect → prepare (rewrites, request
//! headers, `Host`, `X-Forwarded-*`) → pick (described).

use std::sync::Arc;

use http::{header, HeaderValue};
use serde::Serialize;
use tokio::time::Instant;

use super::{ExplainRequest, Outcome};
use crate::api;
use crate::policy::rewrite::HostRewrite;
use crate::proxy::preview::{rewrite, set_forwarded, set_host, strip_hop_by_hop, Hop};
use crate::table::{Backends, Rule};

/// The policies of the winning rule.
#[derive(Debug, Default, Serialize)]
pub struct PolicyView {
    /// Where a plain-HTTP request for a route with `spec.tls` is sent
    /// (308), when a TLS listener runs.
    pub https_redirect: Option<String>,
    /// The firewall's verdict for this client and request.
    pub firewall: Option<FirewallView>,
    /// The rate limit, described: no token is spent.
    pub rate_limit: Option<RateLimitView>,
    /// `maxBodySize`, in bytes.
    pub max_body_size: Option<u64>,
    /// The rule's redirect answer.
    pub redirect: Option<RedirectView>,
    /// The request a backend would get.
    pub upstream: Option<UpstreamView>,
}

/// A firewall verdict.
#[derive(Debug, Serialize)]
pub struct FirewallView {
    /// Whether the request passes.
    pub allowed: bool,
    /// Why not (`denied_path`, `not_allowed`, ...).
    pub reason: Option<&'static str>,
}

/// A rate limit, described.
#[derive(Debug, Serialize)]
pub struct RateLimitView {
    /// Sustained rate.
    pub requests_per_second: u32,
    /// Requests at once.
    pub burst: u32,
    /// The bucket this request counts in.
    pub key: String,
}

/// A redirect answer.
#[derive(Debug, Serialize)]
pub struct RedirectView {
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// The `Location`; `None`: the redirect cannot be built (400).
    pub location: Option<String>,
}

/// The request a backend would get (first try).
#[derive(Debug, Serialize)]
pub struct UpstreamView {
    /// The path and query sent.
    pub path_and_query: String,
    /// The headers sent, in order.
    pub headers: Vec<(String, String)>,
    /// `Host` is the chosen endpoint's address (`rewrite.host:
    /// BackendAddress`), set per try.
    pub host_is_endpoint: bool,
}

/// The winning rule's backends.
#[derive(Debug, Serialize)]
pub struct BackendsView {
    /// Why the rule has no endpoints.
    pub unavailable: Option<String>,
    /// How an endpoint is picked (`loadBalancing` as written); the pick
    /// itself is not made.
    pub load_balancing: Option<api::LoadBalancing>,
    /// The endpoints, grouped by backend in declaration order. Not ready
    /// and terminating endpoints are left out at compile.
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint and its state.
#[derive(Debug, Serialize)]
pub struct EndpointView {
    /// `host:port`.
    pub address: String,
    /// Its backend's weight (0: no traffic).
    pub weight: u32,
    /// `ready`, `unhealthy` (failing active checks), `ejected` (passive
    /// health; a last resort) or `no-traffic` (weight 0).
    pub state: &'static str,
    /// Requests in flight.
    pub in_flight: u64,
}

/// The policies of `rule` (written as `spec`) for `req`, and what the
/// proxy would do with it.
pub(super) fn policies(
    rule: &Arc<Rule>,
    spec: Option<&api::RouteRule>,
    req: &ExplainRequest,
    prefix_len: usize,
) -> (PolicyView, Outcome) {
    let policy = &rule.policy;
    let host = req.host();
    let mut view = PolicyView {
        https_redirect: https_redirect(rule, req, host.as_deref()),
        firewall: (policy.firewall.as_ref()).map(|f| {
            let verdict = f.check(req.client(), req.method(), req.path(), req.headers());
            FirewallView {
                allowed: verdict.is_ok(),
                reason: verdict.err().map(|d| d.reason()),
            }
        }),
        max_body_size: policy.max_body_size,
        ..PolicyView::default()
    };
    if let (Some(limit), Some(spec)) =
        (&policy.rate_limit, spec.and_then(|s| s.rate_limit.as_ref()))
    {
        view.rate_limit = Some(RateLimitView {
            requests_per_second: spec.requests_per_second,
            burst: spec.burst.unwrap_or(spec.requests_per_second),
            key: limit.key_text(req.client(), req.headers()),
        });
    }
    if let Some(redirect) = &policy.redirect {
        let location = redirect.location(host.as_deref(), req.path(), req.query(), prefix_len);
        view.redirect = Some(RedirectView {
            status: redirect.status.as_u16(),
            location: location.map(|l| text(&l)),
        });
    } else {
        view.upstream = Some(upstream(rule, req, host, prefix_len));
    }
    let outcome = outcome(&view, rule, req);
    (view, outcome)
}

/// The first phase that answers instead of forwarding.
fn outcome(view: &PolicyView, rule: &Rule, req: &ExplainRequest) -> Outcome {
    let declared = (req.headers().get(header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if view.https_redirect.is_some() {
        Outcome::HttpsRedirect
    } else if view.firewall.as_ref().is_some_and(|f| !f.allowed) {
        Outcome::Forbidden
    } else if view
        .max_body_size
        .is_some_and(|max| declared.is_some_and(|len| len > max))
    {
        Outcome::BodyTooLarge
    } else if view.redirect.is_some() {
        Outcome::Redirect
    } else if !rule
        .backends
        .targets()
        .iter()
        .any(|t| t.weight > 0 && t.state.is_healthy())
    {
        Outcome::Unavailable
    } else {
        Outcome::Forward
    }
}

/// The plain-HTTP → HTTPS redirect of the proxy's route phase.
fn https_redirect(rule: &Rule, req: &ExplainRequest, host: Option<&str>) -> Option<String> {
    if req.https() {
        return None;
    }
    let https = rule.https.as_ref()?;
    let mut buf = [0u8; 253];
    let host = crate::matching::request_host(host?, &mut buf)?;
    let target = req
        .parts()
        .uri
        .path_and_query()
        .map_or("/".to_owned(), |pq| pq.to_string());
    https.redirect(host, &target).map(|l| text(&l))
}

/// The request as the prepare phase builds it, by its own functions.
fn upstream(
    rule: &Rule,
    req: &ExplainRequest,
    host: Option<String>,
    prefix_len: usize,
) -> UpstreamView {
    let policy = &rule.policy;
    let mut parts = req.parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let path_and_query = match rewrite(&mut parts, policy, prefix_len) {
        Ok(pq) => pq.map_or_else(|| "/".to_owned(), |pq| pq.to_string()),
        Err(_) => "(refused: the rewritten path is not valid, 400)".to_owned(),
    };
    let host = host.and_then(|h| HeaderValue::from_str(&h).ok());
    set_host(&mut parts.headers, policy, host.as_ref());
    let client = HeaderValue::from_str(&req.client().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
    let hop = Hop {
        peer: &client,
        peer_trusted: false,
        client: client.clone(),
        https: req.https(),
        client_cert: None,
    };
    set_forwarded(&mut parts.headers, hop, host);
    UpstreamView {
        path_and_query,
        headers: (parts.headers.iter())
            .map(|(name, value)| (name.to_string(), text(value)))
            .collect(),
        host_is_endpoint: matches!(policy.host_rewrite, Some(HostRewrite::BackendAddress)),
    }
}

/// The endpoints of `rule` and their state at `now`; nothing is picked.
pub(super) fn backends(rule: &Rule, spec: Option<&api::RouteRule>, now: Instant) -> BackendsView {
    let unavailable = match &rule.backends {
        Backends::Unavailable { reason } => Some(reason.to_string()),
        Backends::Ready { .. } => None,
    };
    let endpoints = (rule.backends.targets().iter())
        .map(|t| EndpointView {
            address: t.authority.to_string(),
            weight: t.weight,
            state: match (t.weight, t.state.is_healthy(), t.state.is_ejected_at(now)) {
                (0, ..) => "no-traffic",
                (_, false, _) => "unhealthy",
                (_, true, true) => "ejected",
                (_, true, false) => "ready",
            },
            in_flight: t.state.in_flight(),
        })
        .collect();
    BackendsView {
        unavailable,
        load_balancing: spec.and_then(|s| s.load_balancing.clone()),
        endpoints,
    }
}

/// A header value as text.
fn text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}
