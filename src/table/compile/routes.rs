//! Compile step: one route, rule by rule — hosts, matches, backends,
//! timeouts, health, retries and policy — into a [`CompiledRoute`], or every
//! problem found.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::backends::{resolve_backends, rule_backends, Endpoints, PoolOf};
use super::conditions::{backend_tls_verified, ready, resolved_refs, TlsCheck};
use super::matches::{compile_matches, effective, RuleMatch};
use super::{CompiledMatch, CompiledRoute};
use crate::api::values::parse_duration;
use crate::api::{self, PathMatchType};
use crate::balance::EndpointState;
use crate::diagnostic::{CompileError, FieldPath, Invalid, Problems};
use crate::health::{ActiveCheck, Passive};
use crate::matching::{HostKey, Regexes};
use crate::metrics::RouteSeries;
use crate::policy::rate_limit::RateLimiter;
use crate::policy::retry::RetryPolicy;
use crate::policy::{LimiterStates, RulePolicy};
use crate::snapshot::{Snapshot, SourcedRoute};

use super::super::https::RouteHttps;
use super::super::{Backends, ConditionReason, Probe, Rule, RuleTimeouts};

/// Response-head timeout when a rule sets none (nginx's `proxy_read_timeout`).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything one compile of one route reads.
pub(super) struct RouteInput<'a> {
    /// The route.
    pub route: &'a SourcedRoute,
    /// `namespace/name`.
    pub resource: &'a Arc<str>,
    /// For Services and EndpointSlices.
    pub snapshot: &'a Snapshot,
    /// The previous table's rate-limit buckets.
    pub previous_limiters: &'a LimiterStates,
    /// The previous table's metric handles.
    pub previous_series: &'a RouteSeries,
    /// What the route's `spec.tls` asks of its requests.
    pub https: Option<Arc<RouteHttps>>,
}

/// What a route's rules add up to while they compile.
#[derive(Default)]
struct RouteParts<'p> {
    /// The table's compiled patterns, held while the route compiles.
    regexes: Regexes<'p>,
    matches: Vec<RuleMatch>,
    rules: Vec<Arc<Rule>>,
    limiters: Vec<(usize, api::RateLimit, Arc<RateLimiter>)>,
    probes: Vec<Probe>,
    /// Unresolved references: their `ResolvedRefs` reason and
    /// `field: message`.
    unresolved: Vec<(ConditionReason, String)>,
    /// Rules that cannot answer: `spec.rules[i]: why`, and whether that is
    /// by design (no backends, or every weight 0) rather than for want of
    /// endpoints.
    not_ready: Vec<(String, bool)>,
    /// The distinct endpoints the rules serve from.
    served: HashSet<Arc<str>>,
    /// Problems that do not refuse the route (backend protocol and TLS).
    problems: Vec<CompileError>,
    /// How each HTTPS backend's certificate is checked.
    tls_checks: Vec<TlsCheck>,
    /// The rules' metric handles.
    series: RouteSeries,
}

/// Compiles one route. `state_of` gives the state of an endpoint address
/// the route has not used yet (the previous table's, or a fresh one);
/// `pool_of` its connection pool.
pub(super) fn compile_route<'p>(
    input: &RouteInput<'_>,
    regexes: &mut Regexes<'_>,
    state_of: &mut impl FnMut(&str) -> Arc<EndpointState>,
    pool_of: &'p mut PoolOf<'p>,
) -> Result<CompiledRoute, Vec<CompileError>> {
    let spec = &input.route.spec;
    let at = FieldPath::from("spec");
    let mut errors = Problems::default();
    let mut hosts = Vec::new();
    for (i, host) in spec.hosts.iter().enumerate() {
        match errors.check(|| at.key("hosts").index(i), host.parse::<HostKey>()) {
            Some(key) if !hosts.contains(&key) => hosts.push(key),
            _ => {}
        }
    }
    if spec.hosts.is_empty() {
        hosts.push(HostKey::Any);
    }
    if spec.rules.is_empty() {
        errors.push(at.key("rules"), Invalid::NoRules);
    }
    let mut parts = RouteParts {
        regexes: std::mem::take(regexes),
        ..RouteParts::default()
    };
    let mut endpoints = Endpoints {
        used: Default::default(),
        state_of,
        pools: Default::default(),
        pool_of,
    };
    for (r, rule) in spec.rules.iter().enumerate() {
        let at = at.key("rules").index(r);
        let (out, regexes) = (&mut parts.matches, &mut parts.regexes);
        compile_matches(rule, r, &at, (out, regexes), &mut errors);
        let rule = compile_rule(input, r, rule, &at, &mut endpoints, &mut parts, &mut errors);
        parts.rules.push(Arc::new(rule));
    }
    *regexes = std::mem::take(&mut parts.regexes);
    if !errors.is_empty() {
        return Err(errors.into_vec());
    }
    let mut matches = Vec::with_capacity(parts.matches.len() * hosts.len());
    for host in &hosts {
        for m in &parts.matches {
            matches.push(CompiledMatch {
                host: host.clone(),
                key: m.key.clone(),
                field: m.field.clone(),
                rank: m
                    .matcher
                    .rank(input.route.age, input.resource, m.rule, m.index),
                matcher: m.matcher.clone(),
                rule: parts.rules[m.rule].clone(),
                rule_index: m.rule,
            });
        }
    }
    let ready_endpoints = parts.served.len();
    Ok(CompiledRoute {
        hosts,
        matches,
        endpoints: endpoints.used.into_iter().collect(),
        pools: endpoints.pools.into_iter().collect(),
        probes: parts.probes,
        limiters: parts.limiters,
        resolved_refs: resolved_refs(&parts.unresolved),
        ready: ready(&parts.not_ready, ready_endpoints),
        ready_endpoints,
        backend_tls: backend_tls_verified(&parts.tls_checks),
        problems: parts.problems,
        series: parts.series,
    })
}

/// Compiles rule `r` (at `at`) but its matches: backends, timeouts, health,
/// retries and policy, recording what the route needs in `parts`.
fn compile_rule<F: FnMut(&str) -> Arc<EndpointState>>(
    input: &RouteInput<'_>,
    r: usize,
    rule: &api::RouteRule,
    at: &FieldPath,
    endpoints: &mut Endpoints<'_, F>,
    parts: &mut RouteParts<'_>,
    errors: &mut Problems,
) -> Rule {
    let namespace = &input.route.namespace;
    let mut found = resolve_backends(rule, at, namespace, input.snapshot, endpoints, errors);
    let backends = rule_backends(rule, at, &mut found, errors);
    parts.unresolved.append(&mut found.unresolved);
    parts.problems.append(&mut found.problems);
    parts.tls_checks.append(&mut found.tls_checks);
    let labels = std::mem::take(&mut found.labels);
    let rule_index = u32::try_from(r).unwrap_or(u32::MAX);
    let metrics = (parts.series).rule(input.previous_series, input.resource, rule_index, labels);
    match &backends {
        Backends::Ready { targets, .. } => {
            (parts.served).extend(targets.iter().map(|t| Arc::from(t.authority.as_str())));
        }
        // A redirect answers without backends.
        Backends::Unavailable { .. } if rule.redirect.is_some() => {}
        Backends::Unavailable { reason } => {
            // No backends, or every weight 0, is what the author wrote;
            // anything else wants endpoints.
            let by_design = found.empty.is_empty();
            parts.not_ready.push((format!("{at}: {reason}"), by_design));
        }
    }
    let timeouts = compile_timeouts(rule.timeouts.as_ref(), at, errors);
    let check = (rule.health_check.as_ref())
        .and_then(|spec| ActiveCheck::compile(spec, at.key("healthCheck"), errors));
    let passive = Passive::compile(
        rule.passive_health.as_ref(),
        at.key("passiveHealth"),
        errors,
    );
    let retries = RetryPolicy::compile(rule.retries.as_ref(), at.key("retries"), errors);
    if let (Some(check), Backends::Ready { targets, .. }) = (&check, &backends) {
        for target in targets.iter().filter(|t| t.weight > 0) {
            parts.probes.push(Probe {
                address: Arc::from(target.authority.as_str()),
                authority: target.authority.clone(),
                check: check.clone(),
                state: target.state.clone(),
                pool: target.pool.clone(),
            });
        }
    }
    let policy = compile_policy(input, r, rule, at, parts, errors);
    Rule {
        route: input.resource.clone(),
        backends,
        timeouts,
        policy,
        passive,
        retries,
        https: input.https.clone(),
        metrics,
    }
}

/// A rule's `timeouts`, with the default request timeout.
fn compile_timeouts(
    spec: Option<&api::Timeouts>,
    at: &FieldPath,
    errors: &mut Problems,
) -> RuleTimeouts {
    let mut timeouts = RuleTimeouts {
        connect: None,
        request: DEFAULT_REQUEST_TIMEOUT,
        idle: None,
        total: None,
    };
    let Some(spec) = spec else {
        return timeouts;
    };
    let at = at.key("timeouts");
    let mut parse = |field: &str, text: Option<&str>| {
        text.and_then(|text| errors.check(|| at.key(field), parse_duration(text)))
    };
    timeouts.connect = parse("connect", spec.connect.as_deref());
    if let Some(d) = parse("request", spec.request.as_deref()) {
        timeouts.request = d;
    }
    timeouts.idle = parse("idle", spec.idle.as_deref());
    timeouts.total = parse("total", spec.total.as_deref());
    timeouts
}

/// A rule's policy, reusing the previous table's rate-limit buckets while
/// the rule's `rateLimit` is unchanged.
fn compile_policy(
    input: &RouteInput<'_>,
    r: usize,
    rule: &api::RouteRule,
    at: &FieldPath,
    parts: &mut RouteParts<'_>,
    errors: &mut Problems,
) -> RulePolicy {
    let prefix_matches = effective(rule).iter().all(|m| {
        m.path
            .as_ref()
            .is_none_or(|p| p.kind == PathMatchType::Prefix)
    });
    let previous_limiter = (rule.rate_limit.as_ref())
        .and_then(|spec| input.previous_limiters.get(input.resource, r, spec));
    let policy = RulePolicy::compile(
        rule,
        at,
        prefix_matches,
        (previous_limiter, &mut parts.regexes),
        errors,
    );
    if let (Some(spec), Some(limit)) = (&rule.rate_limit, &policy.rate_limit) {
        (parts.limiters).push((r, spec.clone(), limit.limiter().clone()));
    }
    policy
}
