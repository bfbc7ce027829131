//! Compile: a [`Snapshot`] (and the previous table) in, a [`RouteTable`]
//! and one [`RouteStatus`] per route out.
//!
//! Pure: no I/O, no clocks. Every string is validated and parsed here, once;
//! every problem is collected (not just the first) and names its field. A
//! bad route is left out alone; conflicts go to the older route.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use http::Method;

use super::matching::{HeaderMatcher, HostKey, PathMatcher, Rank, RequestMatch};
use super::{
    Backends, FieldError, HostRules, Reason, RouteStatus, RouteSummary, RouteTable, Rule,
    RuleTimeouts, Target,
};
use crate::api::{self, HeaderMatchType, PathMatchType};
use crate::balance::{Balancer, EndpointState};
use crate::policy::rate_limit::RateLimiter;
use crate::policy::{LimiterStates, RulePolicy};
use crate::source::{BackendPolicy, Snapshot, SourcedRoute};

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

/// Compiles `snapshot`. Endpoint state is carried over from `previous` by
/// address, so in-flight counts (and later health) survive route edits.
pub fn compile(snapshot: &Snapshot, previous: &RouteTable) -> Compiled {
    let mut routes: Vec<&SourcedRoute> = snapshot.routes.iter().collect();
    routes.sort_by(|a, b| (a.age, &a.namespace, &a.name).cmp(&(b.age, &b.namespace, &b.name)));

    let mut endpoints: HashMap<Arc<str>, Arc<EndpointState>> = HashMap::new();
    let mut limiters = LimiterStates::default();
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
                compile_route(
                    route,
                    &resource,
                    snapshot.backends,
                    &previous.limiters,
                    |addr| {
                        endpoints
                            .get(addr)
                            .or_else(|| previous.endpoints.get(addr))
                            .cloned()
                            .unwrap_or_default()
                    },
                )
            }
        };
        let (reason, errors) = match result {
            Err(errors) => (Reason::Invalid, errors),
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
                    for (rule, spec, limiter) in compiled.limiters {
                        limiters.insert(resource.clone(), rule, spec, limiter);
                    }
                    (Reason::Accepted, Vec::new())
                } else {
                    (Reason::Conflicted, conflicts)
                }
            }
        };
        let status = RouteStatus {
            namespace: route.namespace.clone(),
            name: route.name.clone(),
            origin: route.origin.clone(),
            reason,
            errors,
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

    let mut table = RouteTable {
        endpoints,
        limiters,
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
    /// The rate-limit buckets of its rules, by rule index.
    limiters: Vec<(usize, api::RateLimit, Arc<RateLimiter>)>,
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
    policy: BackendPolicy,
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
    let mut used_endpoints = Vec::new();
    let mut used_limiters = Vec::new();
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

        let mut weights = Vec::with_capacity(rule.backends.len());
        let mut targets = Vec::with_capacity(rule.backends.len());
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
            match backend_address(backend, policy) {
                Ok((key, authority)) => {
                    // One state per address, also within this route.
                    let state = match used_endpoints.iter().find(|(k, _)| *k == key) {
                        Some((_, state)) => Arc::clone(state),
                        None => endpoint(&key),
                    };
                    used_endpoints.push((key, state.clone()));
                    targets.push(Target { authority, state });
                    weights.push(backend.weight);
                }
                Err((sub, message)) => err(format!("{field}{sub}"), message),
            }
        }
        let algorithm = rule
            .load_balancing
            .as_ref()
            .map(|lb| lb.algorithm)
            .unwrap_or_default();
        let backends = if rule.backends.is_empty() {
            Backends::Unavailable {
                reason: "the rule has no backends".into(),
            }
        } else {
            match Balancer::new(algorithm, &weights) {
                Some(balancer) => Backends::Ready {
                    balancer,
                    targets: targets.into_boxed_slice(),
                },
                None => Backends::Unavailable {
                    reason: "every backend of the rule has weight 0".into(),
                },
            }
        };

        let mut timeouts = RuleTimeouts {
            request: DEFAULT_REQUEST_TIMEOUT,
        };
        if let Some(request) = rule.timeouts.as_ref().and_then(|t| t.request.as_deref()) {
            match parse_duration(request) {
                Ok(d) => timeouts.request = d,
                Err(message) => err(format!("{at}.timeouts.request"), message),
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
    Ok(CompiledRoute {
        matches,
        endpoints: used_endpoints,
        limiters: used_limiters,
    })
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

/// The endpoint key and parsed authority of a backend; the error names the
/// sub-field (`.address`, `.service`, or `""` for the backend itself).
fn backend_address(
    backend: &api::Backend,
    policy: BackendPolicy,
) -> Result<(Arc<str>, Authority), (&'static str, String)> {
    match (&backend.service, &backend.address) {
        (Some(_), Some(_)) => Err(("", "set either `service` or `address`, not both".to_owned())),
        (Some(service), None) => match policy {
            BackendPolicy::StaticOnly => Err((
                ".service",
                format!(
                    "service backend {service:?} needs a cluster; in standalone mode \
                     a backend is a static `address: host:port`"
                ),
            )),
            // Replaced by Service resolution in the controller work.
            BackendPolicy::Cluster { .. } => Err((".service", "TODO".to_owned())),
        },
        (None, Some(address)) => {
            let authority = parse_address(address).map_err(|m| (".address", m))?;
            Ok((Arc::from(authority.as_str()), authority))
        }
        (None, None) => Err(("", "a backend needs an `address: host:port`".to_owned())),
    }
}

fn parse_address(address: &str) -> Result<Authority, String> {
    let bad = || format!("{address:?} is not host:port (for example 127.0.0.1:8080)");
    let authority: Authority = address.parse().map_err(|_| bad())?;
    if address.contains('@') || authority.host().is_empty() || authority.port_u16().is_none() {
        return Err(bad());
    }
    Ok(authority)
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
