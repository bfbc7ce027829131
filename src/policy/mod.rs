//! Per-rule request policy: firewall, rate limit, rewrites,
//! header and query changes, redirects.
//!
//! Owns: the compiled form of every policy field of a rule ([`RulePolicy`],
//! built once by [`RulePolicy::compile`] from `table::compile`) and the
//! small fns the proxy phases call to apply them. Must not: parse
//! configuration per request, do I/O, or read a clock (time is passed in).
//!
//! Layout:
//! - [`client`]: the client address, behind trusted proxies.
//! - [`firewall`]: allow/deny CIDRs, denied paths and headers, methods.
//! - [`rate_limit`]: GCRA buckets per key, bounded memory.
//! - [`headers`]: request/response header and query parameter changes.
//! - [`rewrite`]: path and host rewrites.
//! - [`redirect`]: redirect answers.
//! - [`retry`]: retry policy and budget.

pub mod client;
pub mod firewall;
pub mod headers;
pub mod rate_limit;
pub mod redirect;
pub mod retry;
pub mod rewrite;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use crate::api::values::{parse_header_name, parse_quantity};
use crate::api::{self, RateLimitKeyType};
use crate::diagnostic::{FieldPath, Invalid, Problems};
use crate::matching::Regexes;
use firewall::Firewall;
use headers::{HeaderModifier, QueryModifier};
use rate_limit::{Limited, RateLimiter, DEFAULT_MAX_KEYS};
use redirect::Redirect;
use rewrite::{HostRewrite, PathRewrite};

/// Every policy of one rule, compiled. Absent fields cost nothing per
/// request.
#[derive(Debug, Default)]
pub struct RulePolicy {
    /// Checked first, before anything is sent upstream.
    pub firewall: Option<Firewall>,
    /// Checked after the firewall.
    pub rate_limit: Option<RateLimit>,
    /// The largest request body accepted, in bytes.
    pub max_body_size: Option<u64>,
    /// When set, the rule answers with this redirect and has no backends.
    pub redirect: Option<Redirect>,
    /// How the path sent upstream changes.
    pub path_rewrite: Option<PathRewrite>,
    /// What `Host` the backend gets.
    pub host_rewrite: Option<HostRewrite>,
    /// How the query sent upstream changes.
    pub query: Option<QueryModifier>,
    /// Header changes on the request sent upstream.
    pub request_headers: Option<HeaderModifier>,
    /// Header changes on the backend's response.
    pub response_headers: Option<HeaderModifier>,
}

/// A compiled rate limit: the buckets and what they are keyed by.
#[derive(Debug)]
pub struct RateLimit {
    limiter: Arc<RateLimiter>,
    key: RateKey,
}

/// Rate-limit buckets carried from one table to the next, so that a
/// rebuild (any route edit; in a cluster, any endpoint change) does not
/// hand every client a fresh burst. Keyed by route and rule index, and
/// reused only while that rule's `rateLimit` is unchanged.
#[derive(Debug, Default)]
pub struct LimiterStates(HashMap<(Arc<str>, usize), (api::RateLimit, Arc<RateLimiter>)>);

impl LimiterStates {
    /// The buckets of rule `rule` of `route`, if its limit is still `spec`.
    pub fn get(
        &self,
        route: &Arc<str>,
        rule: usize,
        spec: &api::RateLimit,
    ) -> Option<Arc<RateLimiter>> {
        self.0
            .get(&(route.clone(), rule))
            .filter(|(was, _)| was == spec)
            .map(|(_, limiter)| limiter.clone())
    }

    /// Records the buckets of rule `rule` of `route`.
    pub fn insert(
        &mut self,
        route: Arc<str>,
        rule: usize,
        spec: api::RateLimit,
        limiter: Arc<RateLimiter>,
    ) {
        self.0.insert((route, rule), (spec, limiter));
    }
}

#[derive(Debug)]
enum RateKey {
    ClientIp,
    Header(HeaderName),
    Route,
}

impl RateLimit {
    /// The buckets, to carry into the next table.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Counts a request from `client` with `headers` at `now`.
    pub fn check(
        &self,
        client: IpAddr,
        headers: &HeaderMap,
        now: tokio::time::Instant,
    ) -> Result<(), Limited> {
        match &self.key {
            RateKey::ClientIp => self.limiter.check(client, now),
            RateKey::Route => self.limiter.check((), now),
            RateKey::Header(name) => self.limiter.check(HeaderKey(headers, name), now),
        }
    }
}

impl RateLimit {
    /// The bucket [`check`](Self::check) would count a request from
    /// `client` with `headers` in, for `switchyard explain` (nothing is
    /// counted): `client 10.0.0.1`, `header x-api-key: k1`, or `the whole
    /// rule`.
    pub fn key_text(&self, client: IpAddr, headers: &HeaderMap) -> String {
        match &self.key {
            RateKey::ClientIp => format!("client {client}"),
            RateKey::Route => "the whole rule".to_owned(),
            RateKey::Header(name) => {
                let values: Vec<String> = (headers.get_all(name).iter())
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                format!("header {name}: {}", values.join(", "))
            }
        }
    }
}

/// Hashes every value of one header, in order, without copying them.
struct HeaderKey<'a>(&'a HeaderMap, &'a HeaderName);

impl Hash for HeaderKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in self.0.get_all(self.1) {
            value.as_bytes().hash(state);
        }
    }
}

impl RulePolicy {
    /// Compiles the policy fields of `rule` (at field path `at`, e.g.
    /// `spec.rules[0]`). `prefix_matches` says whether every match of the
    /// rule is a `Prefix` path match (`ReplacePrefixMatch` needs it);
    /// `limiter` is the previous table's buckets for this rule, reused when
    /// given. Problems are pushed to `errors`, each naming its field.
    pub fn compile(
        rule: &api::RouteRule,
        at: impl Into<FieldPath>,
        prefix_matches: bool,
        (limiter, regexes): (Option<Arc<RateLimiter>>, &mut Regexes<'_>),
        errors: &mut Problems,
    ) -> Self {
        let at = at.into();
        let mut policy = RulePolicy {
            firewall: rule
                .firewall
                .as_ref()
                .map(|f| Firewall::compile_with(f, at.key("firewall"), regexes, errors)),
            request_headers: rule
                .request_headers
                .as_ref()
                .map(|h| HeaderModifier::compile(h, at.key("requestHeaders"), errors)),
            response_headers: rule
                .response_headers
                .as_ref()
                .map(|h| HeaderModifier::compile(h, at.key("responseHeaders"), errors)),
            query: rule
                .query_params
                .as_ref()
                .map(|q| QueryModifier::compile(q, at.key("queryParams"), errors)),
            ..RulePolicy::default()
        };
        if let Some(rewrite) = &rule.rewrite {
            let at = at.key("rewrite");
            policy.path_rewrite = rewrite
                .path
                .as_ref()
                .and_then(|p| PathRewrite::compile(p, at.key("path"), prefix_matches, errors));
            policy.host_rewrite = rewrite
                .host
                .as_ref()
                .and_then(|h| HostRewrite::compile(h, at.key("host"), errors));
        }
        if let Some(redirect) = &rule.redirect {
            let field = at.key("redirect");
            if !rule.backends.is_empty() {
                errors.push(field.clone(), Invalid::RedirectWithBackends);
            }
            if rule.rewrite.is_some() {
                errors.push(field.clone(), Invalid::RedirectWithRewrite);
            }
            policy.redirect = Redirect::compile(redirect, field, prefix_matches, errors);
        }
        if let Some(limit) = &rule.rate_limit {
            policy.rate_limit = compile_rate_limit(limit, &at.key("rateLimit"), limiter, errors);
        }
        if let Some(size) = &rule.max_body_size {
            policy.max_body_size = errors.check(|| at.key("maxBodySize"), parse_quantity(size));
        }
        policy
    }
}

fn compile_rate_limit(
    spec: &api::RateLimit,
    at: &FieldPath,
    previous: Option<Arc<RateLimiter>>,
    errors: &mut Problems,
) -> Option<RateLimit> {
    let before = errors.len();
    if spec.requests_per_second == 0 {
        errors.push(at.key("requestsPerSecond"), Invalid::AtLeastOne);
    }
    if spec.burst == Some(0) {
        errors.push(at.key("burst"), Invalid::AtLeastOne);
    }
    let field = || at.key("key").key("header");
    let key = match (spec.key.kind, &spec.key.header) {
        (RateLimitKeyType::Header, Some(name)) => errors
            .check(field, parse_header_name(name))
            .map(RateKey::Header),
        (RateLimitKeyType::Header, None) => {
            let needs = Invalid::Needs {
                kind: "Header",
                field: "header",
            };
            errors.push(field(), needs);
            None
        }
        (_, Some(_)) => {
            errors.push(field(), Invalid::HeaderUnused);
            None
        }
        (RateLimitKeyType::ClientIp, None) => Some(RateKey::ClientIp),
        (RateLimitKeyType::Route, None) => Some(RateKey::Route),
    };
    if errors.len() > before {
        return None;
    }
    let key = key?;
    let keyed = !matches!(key, RateKey::Route);
    let limiter = previous.unwrap_or_else(|| {
        Arc::new(RateLimiter::new(
            spec.requests_per_second,
            spec.burst.unwrap_or(spec.requests_per_second),
            keyed,
            DEFAULT_MAX_KEYS,
        ))
    });
    Some(RateLimit { limiter, key })
}

#[cfg(test)]
mod tests;
