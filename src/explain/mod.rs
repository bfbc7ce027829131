//! `switchyard explain`: which rule a request would take, and why.
//!
//! Owns: the [`Explanation`] of one request against a compiled table, its
//! text form ([`render`]), the request as given on the command line or to
//! `/explain` ([`input`]), and asking a running proxy ([`live`]).
//! Must not: match, judge or rewrite anything itself. The host choice and
//! the candidates come from the table ([`RouteTable::host_view`]), each
//! verdict from the matcher's own predicates, the refusal of ambiguous
//! paths from [`RouteTable::lookup_unambiguous`], and the policies from
//! the proxy's own functions (firewall, redirect, rewrite, forwarded
//! headers). Stateful steps are described, never run: no rate-limit token
//! is spent and no balancer advances.

pub mod input;
pub mod live;
mod policies;
pub mod render;

use serde::Serialize;
use tokio::time::Instant;

pub use input::{ExplainRequest, InputError};
use policies::{backends, policies};
pub use policies::{
    BackendsView, EndpointView, FirewallView, PolicyView, RateLimitView, RedirectView, UpstreamView,
};

use crate::table::{HostView, Reason, RouteTable};

/// Everything `explain` says of one request.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The request, as the proxy reads it.
    pub request: RequestView,
    /// The host entry the request's host chose (`*.mango.com`, `(any
    /// host)`), or `None`: no route serves the host (404).
    pub host: Option<String>,
    /// The matches of that host in precedence order, each with its
    /// verdicts; the first that matches wins.
    pub candidates: Vec<CandidateView>,
    /// The index of the winning candidate.
    pub winner: Option<usize>,
    /// Routes refused because an older route claims the same host and
    /// match (they serve nothing).
    pub conflicts: Vec<ConflictView>,
    /// The winning rule's policies, in the order the proxy applies them.
    pub policies: Option<PolicyView>,
    /// The winning rule's backends and their endpoints.
    pub backends: Option<BackendsView>,
    /// What the proxy would do.
    pub outcome: Outcome,
}

/// The request as the proxy reads it.
#[derive(Debug, Serialize)]
pub struct RequestView {
    /// The method.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The host the proxy routes on (URL authority, else `Host`).
    pub host: Option<String>,
    /// The path.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
    /// The client firewalls and rate limits judge.
    pub client: String,
}

/// One candidate match and its verdicts.
#[derive(Debug, Serialize)]
pub struct CandidateView {
    /// The route, `namespace/name`.
    pub route: String,
    /// The rule's index.
    pub rule: usize,
    /// Where the match is written.
    pub field: String,
    /// The path condition (`Prefix /api`).
    pub path: String,
    /// The method condition; empty: every method.
    pub methods: Vec<String>,
    /// Each header condition and whether the request meets it.
    pub headers: Vec<HeaderVerdict>,
    /// Per-predicate verdicts.
    pub verdicts: Verdicts,
    /// Whether every predicate holds.
    pub matches: bool,
    /// An earlier candidate that selects every request this one selects:
    /// this one is never chosen.
    pub shadowed_by: Option<usize>,
    /// Later candidates this one shadows.
    pub shadows: Vec<usize>,
}

/// A header condition's verdict.
#[derive(Debug, Serialize)]
pub struct HeaderVerdict {
    /// `name: value`, or `name ~ pattern`.
    pub condition: String,
    /// Whether the request meets it.
    pub matched: bool,
}

/// The verdict of each predicate of a match.
#[derive(Debug, Serialize)]
pub struct Verdicts {
    /// Always true: candidates are those of the chosen host.
    pub host: bool,
    /// The path condition.
    pub path: bool,
    /// The method condition.
    pub method: bool,
    /// Every header condition.
    pub headers: bool,
    /// Always true: LoadBalancerRoute matches have no query conditions.
    pub query: bool,
}

/// A route left out for claiming what an older route owns.
#[derive(Debug, Serialize)]
pub struct ConflictView {
    /// The refused route, `namespace/name`.
    pub route: String,
    /// Its conflicts, `field: message`.
    pub problems: Vec<String>,
}

/// What the proxy would do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No rule matches (404).
    NoRoute,
    /// Some origin may read the path as one another rule selects (400).
    AmbiguousPath,
    /// Plain HTTP for a route with `spec.tls`: 308 to HTTPS.
    HttpsRedirect,
    /// The firewall refuses it (403).
    Forbidden,
    /// The declared body is over `maxBodySize` (413).
    BodyTooLarge,
    /// The rule answers with a redirect.
    Redirect,
    /// The rule has no endpoint to send it to (503).
    Unavailable,
    /// Sent to a backend (subject to the rate limit, described only).
    Forward,
}

impl Outcome {
    /// For a person.
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::NoRoute => "404: no rule matches",
            Outcome::AmbiguousPath => "400: the path may be read as one another rule selects",
            Outcome::HttpsRedirect => "308: redirected to HTTPS",
            Outcome::Forbidden => "403: the firewall refuses it",
            Outcome::BodyTooLarge => "413: the declared body is over maxBodySize",
            Outcome::Redirect => "the rule answers with a redirect",
            Outcome::Unavailable => "503: no endpoint can take it",
            Outcome::Forward => "forwarded to a backend",
        }
    }
}

/// Explains `req` against `table` at `now` (endpoint ejections are read
/// at that time).
pub fn explain(table: &RouteTable, req: &ExplainRequest, now: Instant) -> Explanation {
    let host = req.host();
    let view = table.host_view(host.as_deref());
    let candidates = view.map(|v| candidates(&v, req)).unwrap_or_default();
    let winner = candidates.iter().position(|c| c.matches);
    let mut explanation = Explanation {
        request: req.view(),
        host: view.map(|v| v.host.to_string()),
        candidates,
        winner,
        conflicts: view.map(|v| conflicts(table, &v)).unwrap_or_default(),
        policies: None,
        backends: None,
        outcome: Outcome::NoRoute,
    };
    // Refused whether or not the path as sent selects a rule: some
    // reading of it may select one.
    let refused = table
        .lookup_unambiguous(host.as_deref(), req.method(), req.path(), req.headers())
        .is_err();
    if refused {
        explanation.outcome = Outcome::AmbiguousPath;
    }
    let (Some(view), Some(index)) = (view, winner) else {
        return explanation;
    };
    let Some(candidate) = view.candidates().nth(index) else {
        return explanation;
    };
    let prefix_len = candidate.matcher.prefix_len().unwrap_or(0);
    let spec = table
        .routes()
        .iter()
        .find(|r| *r.status.resource() == *candidate.origin.route)
        .and_then(|r| r.spec.rules.get(candidate.origin.rule));
    let (policies, outcome) = policies(candidate.rule, spec, req, prefix_len);
    explanation.backends = Some(backends(candidate.rule, spec, now));
    explanation.outcome = if refused {
        Outcome::AmbiguousPath
    } else {
        outcome
    };
    explanation.policies = Some(policies);
    explanation
}

/// The candidates of `view` with their verdicts, through the matcher's
/// own predicates.
fn candidates(view: &HostView<'_>, req: &ExplainRequest) -> Vec<CandidateView> {
    (view.candidates().enumerate())
        .map(|(i, c)| {
            let m = c.matcher;
            let headers: Vec<HeaderVerdict> = (m.headers.iter())
                .map(|h| HeaderVerdict {
                    condition: h.to_string(),
                    matched: h.matches(req.headers()),
                })
                .collect();
            let verdicts = Verdicts {
                host: true,
                path: m.path.matches(req.path()),
                method: m.method_matches(req.method()),
                headers: m.headers_match(req.headers()),
                query: true,
            };
            CandidateView {
                route: c.origin.route.to_string(),
                rule: c.origin.rule,
                field: c.origin.field.to_string(),
                path: m.path.to_string(),
                methods: m.methods.iter().map(|m| m.to_string()).collect(),
                headers,
                matches: m.matches(req.method(), req.path(), req.headers()),
                verdicts,
                shadowed_by: view.shadowed_by(i),
                shadows: view.shadows(i),
            }
        })
        .collect()
}

/// The refused routes that claim a match on `view`'s host.
fn conflicts(table: &RouteTable, view: &HostView<'_>) -> Vec<ConflictView> {
    let host = view.host.to_string();
    (table.routes().iter())
        .filter(|r| r.status.reason == Reason::Conflicted)
        .filter(|r| {
            let hosts = &r.spec.hosts;
            (hosts.is_empty() && host == "(any host)")
                || hosts.iter().any(|h| h.eq_ignore_ascii_case(&host))
        })
        .map(|r| ConflictView {
            route: r.status.resource(),
            problems: (r.status.errors.iter())
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
