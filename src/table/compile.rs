//! Compile: a [`Snapshot`] (and the previous table) in, a [`RouteTable`]
//! and one [`RouteStatus`] per route out.
//!
//! Pure: no I/O, no clocks. Every string is validated and parsed here, once;
//! every problem is collected (not just the first) and names its field. A
//! bad route is left out alone; conflicts go to the older route.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use super::matching::{HeaderMatcher, HostKey, PathMatcher, Rank, RequestMatch};
use super::pick::{check_cookie_name, Balancing, GroupSpec, HashKey, StickySpec};
use super::resolve::{resolve_backend, Resolved};
use super::{
    Backends, ConditionState, FieldError, HostRules, Probe, Reason, RouteStatus, RouteSummary,
    RouteTable, Rule, RuleTimeouts, Target,
};
use crate::api::Algorithm;
use crate::api::{self, HeaderMatchType, PathMatchType};
use crate::balance::EndpointState;
use crate::health::{ActiveCheck, Passive};
use crate::policy::rate_limit::RateLimiter;
use crate::policy::retry::RetryPolicy;
use crate::policy::{LimiterStates, RulePolicy};
use crate::snapshot::{Snapshot, SourcedRoute};

/// Response-head timeout when a rule sets none (nginx's `proxy_read_timeout`).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Methods whose lower-case spelling is surely a typo.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
/// Largest backend weight; keeps the round-robin schedule small.
const MAX_WEIGHT: u32 = 1000;

/// The result of a compile.
#[derive(Debug)]
pub struct Compiled {
    /// The table to publish.
    pub table: RouteTable,
    /// One status per route of the snapshot, oldest route first.
    pub statuses: Vec<RouteStatus>,
}

impl Compiled {
    /// Whether every route was accepted.
    pub fn is_clean(&self) -> bool {
        self.statuses.iter().all(RouteStatus::accepted)
    }
}

/// Compiles `snapshot`. Service backends resolve to the ready endpoints of
/// their EndpointSlices (cluster mode). Endpoint state is carried over from
/// `previous` by address, so in-flight counts (and later health) survive
/// route edits and endpoint churn.
pub fn compile(snapshot: &Snapshot, previous: &RouteTable) -> Compiled {
    let mut routes: Vec<&SourcedRoute> = snapshot.routes.iter().collect();
    routes.sort_by(|a, b| (a.age, &a.namespace, &a.name).cmp(&(b.age, &b.namespace, &b.name)));

    let mut endpoints: HashMap<Arc<str>, Arc<EndpointState>> = HashMap::new();
    let mut limiters = LimiterStates::default();
    let mut probes: HashMap<(Arc<str>, ActiveCheck), Probe> = HashMap::new();
    let mut claims: HashMap<(HostKey, MatchKey), Arc<str>> = HashMap::new();
    let mut names: HashMap<(&str, &str), &str> = HashMap::new();
    let mut buckets: HashMap<HostKey, Vec<(Rank, RequestMatch, Arc<Rule>)>> = HashMap::new();
    let mut statuses = Vec::with_capacity(routes.len());
    let mut summary = Vec::with_capacity(routes.len());

    for route in routes {
        let resource: Arc<str> = format!("{}/{}", route.namespace, route.name).into();
        let result = match names.entry((&route.namespace, &route.name)) {
            Entry::Occupied(first) => Err(vec![FieldError {
                field: "metadata.name".to_owned(),
                message: format!(
                    "{resource} is defined twice; the first is in {}",
                    first.get()
                ),
            }]),
            Entry::Vacant(slot) => {
                slot.insert(&route.origin);
                compile_route(route, &resource, snapshot, &previous.limiters, |addr| {
                    endpoints
                        .get(addr)
                        .or_else(|| previous.endpoints.get(addr))
                        .cloned()
                        .unwrap_or_default()
                })
            }
        };
        let (reason, errors, conditions) = match result {
            Err(errors) => (Reason::Invalid, errors, None),
            Ok(compiled) => {
                let conflicts: Vec<FieldError> = compiled
                    .matches
                    .iter()
                    .filter_map(|m| {
                        let owner = claims.get(&(m.host.clone(), m.key.clone()))?;
                        Some(FieldError {
                            field: m.field.clone(),
                            message: format!(
                                "host {} with this match is already served by the older route {owner}",
                                m.host
                            ),
                        })
                    })
                    .collect();
                if conflicts.is_empty() {
                    for m in compiled.matches {
                        claims.insert((m.host.clone(), m.key), resource.clone());
                        buckets
                            .entry(m.host)
                            .or_default()
                            .push((m.rank, m.matcher, m.rule));
                    }
                    for (addr, state) in compiled.endpoints {
                        endpoints.entry(addr).or_insert(state);
                    }
                    for probe in compiled.probes {
                        probes
                            .entry((probe.address.clone(), probe.check.clone()))
                            .or_insert(probe);
                    }
                    for (rule, spec, limiter) in compiled.limiters {
                        limiters.insert(resource.clone(), rule, spec, limiter);
                    }
                    let conditions = (
                        compiled.resolved_refs,
                        compiled.ready,
                        compiled.ready_endpoints,
                    );
                    (Reason::Accepted, Vec::new(), Some(conditions))
                } else {
                    (Reason::Conflicted, conflicts, None)
                }
            }
        };
        let (resolved_refs, ready, ready_endpoints) = conditions.unwrap_or_else(|| {
            (
                ConditionState::not_accepted(reason),
                ConditionState::not_accepted(reason),
                0,
            )
        });
        let status = RouteStatus {
            namespace: route.namespace.clone(),
            name: route.name.clone(),
            origin: route.origin.clone(),
            reason,
            errors,
            resolved_refs,
            ready,
            ready_endpoints,
        };
        summary.push(RouteSummary {
            namespace: route.namespace.clone(),
            name: route.name.clone(),
            origin: route.origin.to_string(),
            status: status.clone(),
            spec: route.spec.clone(),
        });
        statuses.push(status);
    }

    let mut probes: Vec<Probe> = probes.into_values().collect();
    probes.sort_by(|a, b| a.address.cmp(&b.address));
    let mut table = RouteTable {
        endpoints,
        limiters,
        probes,
        summary,
        ..RouteTable::default()
    };
    for (host, mut entries) in buckets {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let rules = HostRules {
            entries: entries.into_iter().map(|(_, m, r)| (m, r)).collect(),
        };
        match host {
            HostKey::Exact(h) => {
                table.exact.insert(h, rules);
            }
            HostKey::Wildcard(suffix) => {
                table.wildcard.insert(suffix, rules);
            }
            HostKey::Any => table.any_host = Some(rules),
        }
    }
    Compiled { table, statuses }
}

/// A route that compiled; it is served unless it conflicts.
struct CompiledRoute {
    /// One entry per host × match.
    matches: Vec<CompiledMatch>,
    /// The endpoints its rules use.
    endpoints: Vec<(Arc<str>, Arc<EndpointState>)>,
    /// The active health checks of its rules' endpoints.
    probes: Vec<Probe>,
    /// The rate-limit buckets of its rules, by rule index.
    limiters: Vec<(usize, api::RateLimit, Arc<RateLimiter>)>,
    /// Its `ResolvedRefs` condition.
    resolved_refs: ConditionState,
    /// Its `Ready` condition.
    ready: ConditionState,
    /// Distinct endpoints its rules serve from.
    ready_endpoints: usize,
}

struct CompiledMatch {
    host: HostKey,
    key: MatchKey,
    field: String,
    rank: Rank,
    matcher: RequestMatch,
    rule: Arc<Rule>,
}

/// The identity of a match, for conflict detection: two matches with equal
/// keys on the same host select exactly the same requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct MatchKey {
    path_kind: PathMatchType,
    path: String,
    headers: Vec<(String, HeaderMatchType, String)>,
    methods: Vec<String>,
}

fn compile_route(
    route: &SourcedRoute,
    resource: &Arc<str>,
    snapshot: &Snapshot,
    previous_limiters: &LimiterStates,
    mut endpoint: impl FnMut(&str) -> Arc<EndpointState>,
) -> Result<CompiledRoute, Vec<FieldError>> {
    let spec = &route.spec;
    let mut errors = Vec::new();
    let mut err = |field: String, message: String| errors.push(FieldError { field, message });

    let mut hosts = Vec::new();
    for (i, host) in spec.hosts.iter().enumerate() {
        match HostKey::parse(host) {
            Ok(key) if !hosts.contains(&key) => hosts.push(key),
            Ok(_) => {}
            Err(message) => err(format!("spec.hosts[{i}]"), message),
        }
    }
    if spec.hosts.is_empty() {
        hosts.push(HostKey::Any);
    }
    if spec.rules.is_empty() {
        err(
            "spec.rules".to_owned(),
            "a route needs at least one rule".to_owned(),
        );
    }

    let mut compiled = Vec::new(); // (field, key, matcher, rule index, match index)
    let mut rules = Vec::new();
    // One state per address, also within this route (a map: a Service
    // can have many endpoints).
    let mut used_endpoints: HashMap<Arc<str>, Arc<EndpointState>> = HashMap::new();
    let mut used_limiters = Vec::new();
    let mut probes = Vec::new();
    // `field: message` of each reference that does not resolve, with its
    // ResolvedRefs reason.
    let mut unresolved: Vec<(&'static str, String)> = Vec::new();
    // Rules that cannot answer: `spec.rules[i]: why`, and whether that is
    // by design (no backends, or every weight 0) rather than for want of
    // endpoints.
    let mut not_ready: Vec<(String, bool)> = Vec::new();
    let mut served: HashSet<Arc<str>> = HashSet::new();
    for (r, rule) in spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{r}]");
        let default_match = [api::RouteMatch::default()];
        let matches = if rule.matches.is_empty() {
            &default_match[..]
        } else {
            &rule.matches[..]
        };
        for (m, wanted) in matches.iter().enumerate() {
            // An omitted `matches` has no `matches[0]` to point at.
            let field = if rule.matches.is_empty() {
                at.clone()
            } else {
                format!("{at}.matches[{m}]")
            };
            match compile_match(wanted, &field) {
                Ok((key, matcher)) => {
                    if let Some((first, ..)) = compiled
                        .iter()
                        .find(|c: &&(String, MatchKey, _, _, _)| c.1 == key)
                    {
                        err(field, format!("duplicates {first}; only one can be served"));
                    } else {
                        compiled.push((field, key, matcher, r, m));
                    }
                }
                Err(mut e) => errors_append(&mut err, &mut e),
            }
        }

        let mut groups: Vec<GroupSpec> = Vec::with_capacity(rule.backends.len());
        // The group of the rule's static addresses, once there is one.
        let mut static_pool: Option<usize> = None;
        let mut targets = Vec::with_capacity(rule.backends.len());
        // Why a backend that should get traffic contributes no endpoint.
        let mut empty = Vec::new();
        for (b, backend) in rule.backends.iter().enumerate() {
            let field = format!("{at}.backends[{b}]");
            if backend.weight > MAX_WEIGHT {
                err(
                    format!("{field}.weight"),
                    format!(
                        "{} is out of range: a weight is 0 to {MAX_WEIGHT}",
                        backend.weight
                    ),
                );
            }
            let mut is_static = false;
            let found = match resolve_backend(backend, &route.namespace, snapshot) {
                Ok(Resolved::Static(endpoint)) => {
                    is_static = true;
                    vec![endpoint]
                }
                Ok(Resolved::Service { service, endpoints }) => {
                    if endpoints.is_empty() && backend.weight > 0 {
                        empty.push(format!("no ready endpoints for service {service}"));
                    }
                    endpoints
                }
                Ok(Resolved::Unresolved { reason, message }) => {
                    if backend.weight > 0 {
                        empty.push(message.clone());
                    }
                    unresolved.push((reason, format!("{field}: {message}")));
                    Vec::new()
                }
                Err((sub, message)) => {
                    err(format!("{field}{sub}"), message);
                    Vec::new()
                }
            };
            // Two levels: a Service backend's weight is its share of the
            // rule's traffic, however many endpoints it has, and its
            // endpoints share that equally. Static addresses are endpoints
            // listed by hand: together they form one pool whose share is the
            // sum of their weights, and inside it their weights are
            // endpoint weights.
            let mut indices = Vec::with_capacity(found.len());
            for (key, authority) in found {
                let state = match used_endpoints.entry(key) {
                    Entry::Occupied(known) => Arc::clone(known.get()),
                    Entry::Vacant(new) => {
                        let state = endpoint(new.key());
                        Arc::clone(new.insert(state))
                    }
                };
                indices.push(targets.len());
                targets.push(Target {
                    authority,
                    state,
                    weight: backend.weight,
                });
            }
            if backend.weight == 0 || indices.is_empty() {
                continue;
            }
            if is_static {
                let pool = *static_pool.get_or_insert_with(|| {
                    groups.push(GroupSpec::default());
                    groups.len() - 1
                });
                let pool = &mut groups[pool];
                pool.targets.extend(indices);
                pool.weights.push(backend.weight);
                pool.weight += backend.weight;
            } else {
                groups.push(GroupSpec {
                    weights: vec![1; indices.len()],
                    targets: indices,
                    weight: backend.weight,
                });
            }
        }
        let (algorithm, hash_on, sticky) = compile_balancing(rule, &at, &mut err);
        let backends = if rule.backends.is_empty() {
            Backends::Unavailable {
                reason: "the rule has no backends".into(),
            }
        } else {
            match Balancing::new(algorithm, hash_on, sticky, &targets, &groups) {
                Some(balancer) => Backends::Ready {
                    balancer,
                    targets: targets.into_boxed_slice(),
                },
                None if empty.is_empty() => Backends::Unavailable {
                    reason: "every backend of the rule has weight 0".into(),
                },
                None => Backends::Unavailable {
                    reason: empty.join("; ").into(),
                },
            }
        };
        match &backends {
            Backends::Ready { targets, .. } => {
                served.extend(targets.iter().map(|t| Arc::from(t.authority.as_str())));
            }
            // A redirect answers without backends.
            Backends::Unavailable { .. } if rule.redirect.is_some() => {}
            Backends::Unavailable { reason } => {
                // No backends, or every weight 0, is what the author wrote;
                // anything else wants endpoints.
                let by_design = empty.is_empty();
                not_ready.push((format!("{at}: {reason}"), by_design));
            }
        }

        let mut timeouts = RuleTimeouts {
            connect: None,
            request: DEFAULT_REQUEST_TIMEOUT,
            idle: None,
            total: None,
        };
        if let Some(spec) = &rule.timeouts {
            let mut parse = |field: &str, text: Option<&str>| {
                text.and_then(|text| match parse_duration(text) {
                    Ok(d) => Some(d),
                    Err(message) => {
                        err(format!("{at}.timeouts.{field}"), message);
                        None
                    }
                })
            };
            timeouts.connect = parse("connect", spec.connect.as_deref());
            if let Some(d) = parse("request", spec.request.as_deref()) {
                timeouts.request = d;
            }
            timeouts.idle = parse("idle", spec.idle.as_deref());
            timeouts.total = parse("total", spec.total.as_deref());
        }
        let mut health_errors = Vec::new();
        let check = rule.health_check.as_ref().and_then(|spec| {
            ActiveCheck::compile(spec, &format!("{at}.healthCheck"), &mut health_errors)
        });
        let passive = Passive::compile(
            rule.passive_health.as_ref(),
            &format!("{at}.passiveHealth"),
            &mut health_errors,
        );
        let retries = RetryPolicy::compile(
            rule.retries.as_ref(),
            &format!("{at}.retries"),
            &mut health_errors,
        );
        errors_append(&mut err, &mut health_errors);
        if let (Some(check), Backends::Ready { targets, .. }) = (&check, &backends) {
            for target in targets.iter().filter(|t| t.weight > 0) {
                probes.push(Probe {
                    address: Arc::from(target.authority.as_str()),
                    authority: target.authority.clone(),
                    check: check.clone(),
                    state: target.state.clone(),
                });
            }
        }
        let prefix_matches = matches.iter().all(|m| {
            m.path
                .as_ref()
                .is_none_or(|p| p.kind == PathMatchType::Prefix)
        });
        let mut policy_errors = Vec::new();
        let previous_limiter = rule
            .rate_limit
            .as_ref()
            .and_then(|spec| previous_limiters.get(resource, r, spec));
        let policy = RulePolicy::compile(
            rule,
            &at,
            prefix_matches,
            previous_limiter,
            &mut policy_errors,
        );
        if let (Some(spec), Some(limit)) = (&rule.rate_limit, &policy.rate_limit) {
            used_limiters.push((r, spec.clone(), limit.limiter().clone()));
        }
        errors_append(&mut err, &mut policy_errors);
        rules.push(Arc::new(Rule {
            route: resource.clone(),
            backends,
            timeouts,
            policy,
            passive,
            retries,
        }));
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let mut matches = Vec::with_capacity(compiled.len() * hosts.len());
    for host in &hosts {
        for (field, key, matcher, r, m) in &compiled {
            matches.push(CompiledMatch {
                host: host.clone(),
                key: key.clone(),
                field: field.clone(),
                rank: matcher.rank(route.age, resource, *r, *m),
                matcher: matcher.clone(),
                rule: rules[*r].clone(),
            });
        }
    }
    let ready_endpoints = served.len();
    Ok(CompiledRoute {
        matches,
        endpoints: used_endpoints.into_iter().collect(),
        probes,
        limiters: used_limiters,
        resolved_refs: resolved_refs(&unresolved),
        ready: ready(&not_ready, ready_endpoints),
        ready_endpoints,
    })
}

/// Validates and compiles a rule's `loadBalancing`: `hashOn` is required
/// with `ConsistentHash` and refused with any other algorithm; names must
/// be valid. Errors go to `err`, naming the field.
fn compile_balancing(
    rule: &api::RouteRule,
    at: &str,
    err: &mut impl FnMut(String, String),
) -> (Algorithm, Option<HashKey>, Option<StickySpec>) {
    let Some(lb) = &rule.load_balancing else {
        return (Algorithm::default(), None, None);
    };
    let field = format!("{at}.loadBalancing");
    let hash_on = match (&lb.hash_on, lb.algorithm) {
        (None, Algorithm::ConsistentHash) => {
            err(
                format!("{field}.hashOn"),
                "ConsistentHash needs hashOn: {type: Header|Cookie|QueryParameter|ClientIP, name: ...}"
                    .to_owned(),
            );
            None
        }
        (Some(_), algorithm) if algorithm != Algorithm::ConsistentHash => {
            err(
                format!("{field}.hashOn"),
                format!("hashOn is only used by ConsistentHash, not {algorithm:?}"),
            );
            None
        }
        (Some(spec), _) => match HashKey::compile(spec) {
            Ok(key) => Some(key),
            Err((sub, message)) => {
                err(format!("{field}.hashOn{sub}"), message);
                None
            }
        },
        (None, _) => None,
    };
    let sticky = lb.sticky.as_ref().and_then(|sticky| {
        let cookie = &sticky.cookie;
        let mut ok = true;
        if let Err(message) = check_cookie_name(&cookie.name) {
            err(format!("{field}.sticky.cookie.name"), message);
            ok = false;
        }
        let ttl = match cookie.ttl.as_deref().map(parse_duration) {
            None => None,
            Some(Ok(ttl)) => Some(ttl),
            Some(Err(message)) => {
                err(format!("{field}.sticky.cookie.ttl"), message);
                ok = false;
                None
            }
        };
        ok.then(|| StickySpec {
            name: cookie.name.as_str().into(),
            ttl,
        })
    });
    (lb.algorithm, hash_on, sticky)
}

/// `ResolvedRefs`: the first unresolved reference's reason (in declaration
/// order), and every one of them in the message.
fn resolved_refs(unresolved: &[(&'static str, String)]) -> ConditionState {
    match unresolved.first() {
        None => ConditionState::met("ResolvedRefs", "every backend reference resolved"),
        Some((reason, _)) => {
            let list: Vec<&str> = unresolved.iter().map(|(_, m)| m.as_str()).collect();
            ConditionState::unmet(reason, list.join("; "))
        }
    }
}

/// `Ready`: every rule can answer. `NoReadyEndpoints` when a rule waits for
/// endpoints, else `NoBackends` when a rule has none by design (no
/// backends, or every weight 0); the message names each such rule.
fn ready(not_ready: &[(String, bool)], endpoints: usize) -> ConditionState {
    if not_ready.is_empty() {
        let plural = if endpoints == 1 { "" } else { "s" };
        return ConditionState::met(
            "Ready",
            format!("every rule can answer; {endpoints} ready endpoint{plural}"),
        );
    }
    let reason = if not_ready.iter().all(|(_, by_design)| *by_design) {
        "NoBackends"
    } else {
        "NoReadyEndpoints"
    };
    let list: Vec<&str> = not_ready.iter().map(|(m, _)| m.as_str()).collect();
    ConditionState::unmet(
        reason,
        format!("requests to these rules get 503: {}", list.join("; ")),
    )
}

fn errors_append(err: &mut impl FnMut(String, String), found: &mut Vec<FieldError>) {
    for e in found.drain(..) {
        err(e.field, e.message);
    }
}

fn compile_match(
    wanted: &api::RouteMatch,
    field: &str,
) -> Result<(MatchKey, RequestMatch), Vec<FieldError>> {
    let mut errors = Vec::new();
    let (path_kind, value) = wanted
        .path
        .as_ref()
        .map_or((PathMatchType::Prefix, "/"), |p| (p.kind, p.value.as_str()));
    let path = PathMatcher::new(path_kind, value).map_err(|message| FieldError {
        field: format!("{field}.path.value"),
        message,
    });
    let mut headers = Vec::new();
    let mut header_keys = Vec::new();
    for (h, header) in wanted.headers.iter().enumerate() {
        match HeaderMatcher::new(header.kind, &header.name, &header.value) {
            Ok(matcher) => {
                headers.push(matcher);
                header_keys.push((
                    header.name.to_ascii_lowercase(),
                    header.kind,
                    header.value.clone(),
                ));
            }
            Err((sub, message)) => errors.push(FieldError {
                field: format!("{field}.headers[{h}].{sub}"),
                message,
            }),
        }
    }
    let mut methods = Vec::new();
    for (k, method) in wanted.methods.iter().enumerate() {
        let upper = method.to_ascii_uppercase();
        if upper != *method && STANDARD_METHODS.contains(&upper.as_str()) {
            errors.push(FieldError {
                field: format!("{field}.methods[{k}]"),
                message: format!(
                    "methods are case-sensitive: {method:?} never matches; use {upper:?}"
                ),
            });
            continue;
        }
        match Method::from_bytes(method.as_bytes()) {
            Ok(m) if !methods.contains(&m) => methods.push(m),
            Ok(_) => {}
            Err(_) => errors.push(FieldError {
                field: format!("{field}.methods[{k}]"),
                message: format!("{method:?} is not an HTTP method"),
            }),
        }
    }
    let path = match path {
        Ok(path) => path,
        Err(e) => {
            errors.insert(0, e);
            return Err(errors);
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    header_keys.sort();
    let mut method_keys: Vec<String> = methods.iter().map(|m| m.as_str().to_owned()).collect();
    method_keys.sort();
    let key = MatchKey {
        path_kind,
        path: match &path {
            PathMatcher::Prefix(p) => p.to_string(),
            _ => value.to_owned(),
        },
        headers: header_keys,
        methods: method_keys,
    };
    Ok((
        key,
        RequestMatch {
            path,
            methods: methods.into(),
            headers: headers.into(),
        },
    ))
}

/// Parses a duration like `250ms`, `30s`, `5m`, `1h` or `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (for example 500ms, 30s, 1m30s)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
        rest = &rest[unit..];
    }
    if total.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
