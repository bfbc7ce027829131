//! The route table: what the proxy serves from, and the compile step that
//! builds it.
//!
//! Owns: [`RouteTable`] (immutable once built), [`compile`] (pure: snapshot
//! in, table and statuses out), backend resolution (Services and
//! EndpointSlices to endpoints), conflict rules, and the status
//! conditions of each route. Must not: touch sockets, files or clocks.

mod compile;
mod https;
mod pick;
mod resolve;
mod scrape;
mod status;
mod trace;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::uri::Authority;
use http::{HeaderMap, Method};

/// Compile errors: a field path and a typed reason (the vocabulary lives in
/// the leaf `diagnostic`, so the per-rule compilers below `table` share it).
pub use crate::diagnostic::{CompileError, FieldPath, Invalid, Problems};
pub use compile::{compile, Compiled};
pub use https::{RouteHttps, TlsTable};
pub use pick::{Balancing, GroupSpec, PickContext, Picked};
pub use status::{ConditionReason, ConditionState, Reason, RouteStatus};
pub use trace::{Candidate, ChosenHost, HostView, MatchOrigin, Shadowed};

use crate::api::LoadBalancerRouteSpec;
use crate::balance::EndpointState;
use crate::health::passive::Tracked;
use crate::health::{Passive, Probe};
use crate::matching::{request_host, PathMatcher, RegexStore, RequestMatch};
use crate::metrics::{RouteSeries, RuleMetrics};
use crate::policy::firewall::readings;
use crate::policy::retry::RetryPolicy;
use crate::policy::{LimiterStates, RulePolicy};
use crate::upstream::{EndpointPool, Transport};

/// The published table, swapped whole on every compile. Requests `load()`
/// it once; in-flight requests keep the table they started with.
pub type SharedTable = Arc<ArcSwap<RouteTable>>;

/// A connection pool's identity: the endpoint's address and how it is
/// spoken to.
pub type PoolKey = (Arc<str>, Transport);

/// An immutable, compiled route table.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Exact hosts, lowercased.
    exact: HashMap<Box<str>, HostRules>,
    /// Wildcard hosts by suffix (`.mango.com`).
    wildcard: HashMap<Box<str>, HostRules>,
    /// Routes that name no host.
    any_host: Option<HostRules>,
    /// Endpoint state by address, handed to the next compile.
    endpoints: HashMap<Arc<str>, Arc<EndpointState>>,
    /// Connection pools by endpoint and transport, handed to the next
    /// compile (and swept of idle connections).
    pools: HashMap<PoolKey, Arc<EndpointPool>>,
    /// Rate-limit buckets by route and rule, handed to the next compile.
    limiters: LimiterStates,
    /// One per (endpoint, active check) of the served rules, sorted.
    probes: Arc<[Probe]>,
    /// Every route of the snapshot with its status, oldest first.
    routes: Vec<RouteRecord>,
    /// Certificates and the TLS listener's configuration.
    tls: TlsTable,
    /// The metric handles of the served rules, handed to the next compile
    /// (and encoded at scrape: a route left out has none).
    series: RouteSeries,
    /// The compiled regular expressions of the table's conditions, by
    /// pattern, handed to the next compile.
    regexes: RegexStore,
    /// The accepted routes' compiles, for the next compile to reuse.
    reuse: compile::Reuse,
}

/// The rules of one host, best precedence first.
#[derive(Debug, Default)]
struct HostRules {
    entries: Vec<(RequestMatch, Arc<Rule>)>,
    /// Where each entry is written, in the same order (for `explain`;
    /// the request path never reads it).
    origins: Box<[MatchOrigin]>,
    /// Every entry matches any path starting with `/` (`Prefix /`): the
    /// path never chooses among them. Found once, at compile.
    path_blind: bool,
}

impl HostRules {
    /// The rules of one host, `entries` best precedence first.
    fn new(entries: Vec<(RequestMatch, Arc<Rule>, MatchOrigin)>) -> Self {
        let path_blind = entries
            .iter()
            .all(|(m, ..)| matches!(&m.path, PathMatcher::Prefix(p) if p.is_empty()));
        let (entries, origins): (Vec<_>, Vec<_>) =
            entries.into_iter().map(|(m, r, o)| ((m, r), o)).unzip();
        HostRules {
            entries,
            origins: origins.into(),
            path_blind,
        }
    }

    /// The first (best) entry matching the request.
    fn find(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Found<'_>> {
        self.entries
            .iter()
            .find(|(m, _)| m.matches(method, path, headers))
            .map(|(m, rule)| (m.prefix_len(), rule))
    }

    /// Whether the rule `path` selects cannot depend on it: every entry
    /// matches any path starting with `/` (`Prefix /`), as every reading
    /// of such a path does, so only method and headers choose.
    fn ignore_path(&self, path: &str) -> bool {
        path.starts_with('/') && self.path_blind
    }
}

/// A rule a request selects, with the length of the path prefix its match
/// matched when that match is a `Prefix` match.
pub type Found<'a> = (Option<usize>, &'a Arc<Rule>);

/// Why [`RouteTable::lookup_unambiguous`] refused a path (the client
/// gets 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmbiguousPath {
    /// Some origin may read the path as one that selects another rule, or
    /// no rule where the path as sent selects one (or the reverse):
    /// `/public/..%2fadmin`, `/public/..;/admin`, `/public/../admin`.
    OtherRule,
    /// The path is not plain and too long to read every way (the
    /// `readings` budget: 64 KiB read over all readings, so about 2 KiB
    /// with every kind of trick in it, 32 KiB with `%` alone); refused
    /// only on hosts whose rules split by path.
    TooLong,
}

impl AmbiguousPath {
    /// A short, stable label for logs.
    pub fn reason(self) -> &'static str {
        match self {
            AmbiguousPath::OtherRule => "path_selects_other_rule",
            AmbiguousPath::TooLong => "path_too_long_to_read",
        }
    }
}

/// A compiled rule: where its matching requests go.
#[derive(Debug)]
pub struct Rule {
    /// `namespace/name` of the route, for logs.
    pub route: Arc<str>,
    /// The rule's backends, or why it has none.
    pub backends: Backends,
    /// The rule's time limits.
    pub timeouts: RuleTimeouts,
    /// The rule's firewall, limits, rewrites, header changes or redirect.
    pub policy: RulePolicy,
    /// The rule's passive health settings (ejection on failures).
    pub passive: Passive,
    /// Which failures are retried on another endpoint, and the budget.
    pub retries: RetryPolicy,
    /// What the route's `spec.tls` asks (redirect, HSTS), if it has one.
    pub https: Option<Arc<RouteHttps>>,
    /// The rule's metric handles, resolved at compile.
    pub metrics: RuleMetrics,
}

/// A rule's time limits, parsed.
#[derive(Debug, Clone, Copy)]
pub struct RuleTimeouts {
    /// Connecting to an endpoint; `None`: the proxy's `--connect-timeout`.
    /// Past it the try fails like a refused connect (retried elsewhere).
    pub connect: Option<Duration>,
    /// From sending the request to the response head; past it, 504.
    pub request: Duration,
    /// Longest gap between response body frames; past it, the body is cut.
    pub idle: Option<Duration>,
    /// The whole exchange; past it, 504 before the head, a cut body after.
    pub total: Option<Duration>,
}

/// A rule's backends.
#[derive(Debug)]
pub enum Backends {
    /// Endpoints and the balancing choosing among them.
    Ready {
        /// Picks an index into `targets`: a backend by weight, then an
        /// endpoint of it by the rule's algorithm.
        balancer: Balancing,
        /// The endpoints, grouped by backend in declaration order.
        targets: Box<[Target]>,
    },
    /// Nothing can serve this rule; requests get 503 with this reason.
    Unavailable {
        /// Why, for the response body and logs.
        reason: Arc<str>,
    },
}

/// One endpoint of a rule.
#[derive(Debug)]
pub struct Target {
    /// `host:port`, pre-parsed for building upstream URIs.
    pub authority: Authority,
    /// Shared runtime state (in-flight requests, health, ejection).
    pub state: Arc<EndpointState>,
    /// The connections to it, in its backend's protocol.
    pub pool: Arc<EndpointPool>,
    /// Its backend's weight; 0 never gets traffic.
    pub weight: u32,
    /// Its backend, as an index into the rule's metric `backends` labels.
    pub backend: u16,
}

impl Tracked for Target {
    fn state(&self) -> &EndpointState {
        &self.state
    }

    fn authority(&self) -> &Authority {
        &self.authority
    }
}

/// Why [`Backends::pick`] found no endpoint.
#[derive(Debug)]
pub enum NoTarget<'a> {
    /// The rule has no endpoints (the reason says why).
    Unavailable(&'a Arc<str>),
    /// The rule has endpoints, but every one fails its active health
    /// checks (ejected ones are a last resort, not unavailable). Requests
    /// get 503.
    Unhealthy,
}

impl Backends {
    /// The endpoint for a request, skipping endpoints that are not
    /// available (failing health checks, or ejected); with none available,
    /// an endpoint that is only ejected, as a last resort. When every
    /// endpoint fails its active checks the answer is
    /// [`NoTarget::Unhealthy`] (503): no traffic to endpoints known to be
    /// down.
    pub fn pick(&self, cx: &PickContext<'_>) -> Result<Picked<'_>, NoTarget<'_>> {
        match self {
            Backends::Ready { balancer, targets } => {
                balancer.pick(targets, cx).ok_or(NoTarget::Unhealthy)
            }
            Backends::Unavailable { reason } => Err(NoTarget::Unavailable(reason)),
        }
    }

    /// The rule's endpoints (empty when unavailable).
    pub fn targets(&self) -> &[Target] {
        match self {
            Backends::Ready { targets, .. } => targets,
            Backends::Unavailable { .. } => &[],
        }
    }
}

/// A route of the compiled snapshot as written, with what compile said of
/// it (served or not): what `/routes` shows.
#[derive(Debug)]
pub struct RouteRecord {
    /// The route's status; it names the route and its origin.
    pub status: RouteStatus,
    /// The route as written, shared with the snapshot it came from (a
    /// compile copies no spec).
    pub spec: Arc<LoadBalancerRouteSpec>,
}

impl RouteTable {
    /// Finds the rule for a request. The host (from `Host` or the URI
    /// authority) picks the most specific host: exact, then the longest
    /// wildcard suffix, then routes without hosts; there is no fallback to
    /// a less specific host when no rule of the chosen one matches.
    pub fn find(
        &self,
        host: Option<&str>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<&Arc<Rule>> {
        self.lookup(host, method, path, headers)
            .map(|(_, rule)| rule)
    }

    /// Like [`find`](Self::find), also returning, when the winning match is
    /// a `Prefix` match, the length of the path prefix it matched (what
    /// `ReplacePrefixMatch` replaces).
    pub fn lookup(
        &self,
        host: Option<&str>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<Found<'_>> {
        self.rules_for(host)?.find(method, path, headers)
    }

    /// Like [`lookup`](Self::lookup), for serving: a path some origin may
    /// read as a path that another rule selects, or that no rule selects
    /// (or the reverse), is refused rather than routed by how it is
    /// written; otherwise `/public/..%2fadmin` would reach an origin that
    /// reads `/admin` without the `/admin` rule's policies. Every reading
    /// of the path (see `policy::firewall::readings`) must select the same
    /// rule as the path itself. A plain path, or a host whose every rule
    /// matches any path, costs one lookup and no allocation.
    pub fn lookup_unambiguous(
        &self,
        host: Option<&str>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Option<Found<'_>>, AmbiguousPath> {
        let Some(rules) = self.rules_for(host) else {
            return Ok(None);
        };
        let found = rules.find(method, path, headers);
        if readings::is_plain(path) || rules.ignore_path(path) {
            return Ok(found);
        }
        let chosen = found.map(|(_, rule)| Arc::as_ptr(rule));
        let mut other_rule = false;
        let refused = readings::any_reading(path, |read| {
            other_rule = rules
                .find(method, read, headers)
                .map(|(_, rule)| Arc::as_ptr(rule))
                != chosen;
            other_rule
        });
        match (refused, other_rule) {
            (false, _) => Ok(found),
            (true, true) => Err(AmbiguousPath::OtherRule),
            (true, false) => Err(AmbiguousPath::TooLong),
        }
    }

    /// The rules of the most specific host a request's host names: exact,
    /// then the longest wildcard suffix, then routes without hosts.
    fn rules_for(&self, host: Option<&str>) -> Option<&HostRules> {
        self.chosen_host(host).map(|(_, rules)| rules)
    }

    /// Like `rules_for`, also naming the host entry that chose them.
    fn chosen_host(&self, host: Option<&str>) -> Option<(ChosenHost<'_>, &HostRules)> {
        let mut buf = [0u8; 253];
        let host = host.and_then(|h| request_host(h, &mut buf));
        host.and_then(|h| self.host_rules(h))
            .or(self.any_host.as_ref().map(|rules| (ChosenHost::Any, rules)))
    }

    fn host_rules(&self, host: &str) -> Option<(ChosenHost<'_>, &HostRules)> {
        if let Some((key, rules)) = self.exact.get_key_value(host) {
            return Some((ChosenHost::Exact(key), rules));
        }
        // Longest suffix first: "a.b.mango.com" tries ".b.mango.com", then
        // ".mango.com", then ".com".
        host.match_indices('.')
            .filter(|(i, _)| *i > 0)
            .find_map(|(i, _)| self.wildcard.get_key_value(&host[i..]))
            .map(|(suffix, rules)| (ChosenHost::Wildcard(suffix), rules))
    }

    /// The active health checks of the served rules, one per endpoint and
    /// check (shared: the publisher hands them to the health supervisor
    /// without a copy).
    pub fn probes(&self) -> &Arc<[Probe]> {
        &self.probes
    }

    /// Every endpoint of the table with its shared state, in no order.
    pub fn endpoints(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<EndpointState>)> {
        self.endpoints.iter()
    }

    /// Every endpoint's connection pool.
    pub fn pools(&self) -> impl Iterator<Item = &Arc<EndpointPool>> {
        self.pools.values()
    }

    /// The routes of the compiled snapshot and their statuses, oldest
    /// first.
    pub fn routes(&self) -> &[RouteRecord] {
        &self.routes
    }

    /// The certificates and the TLS listener's configuration.
    pub fn tls(&self) -> &TlsTable {
        &self.tls
    }

    /// The metric handles of the served rules.
    pub fn series(&self) -> &RouteSeries {
        &self.series
    }

    /// Whether a request for `host` on a TLS connection whose client asked
    /// for `sni` must go elsewhere (421): the host's certificate, by the
    /// same lookup as a handshake's, is not the SNI name's. Connections
    /// coalesced over a certificate covering both names are fine.
    pub fn misdirected(&self, sni: Option<&str>, host: Option<&str>) -> bool {
        let mut buf = [0u8; 253];
        let Some(host) = host.and_then(|h| request_host(h, &mut buf)) else {
            return false;
        };
        if sni.is_some_and(|sni| sni == host) {
            return false;
        }
        let index = &self.tls.index;
        match (index.lookup(Some(host)), index.lookup(sni)) {
            (Some(wanted), Some(got)) => !Arc::ptr_eq(wanted, got),
            (None, None) => false,
            _ => true,
        }
    }
}
