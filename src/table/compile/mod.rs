//! Compile: a [`Snapshot`] (and the previous table) in, a [`RouteTable`]
//! and one [`RouteStatus`] per route out.
//!
//! Pure: no I/O, no clocks. Every string is validated and parsed here, once;
//! every problem is collected (not just the first) and names its field. A
//! bad route is left out alone; conflicts go to the older route.
//!
//! Steps: [`routes`] compiles one route rule by rule ([`matches`],
//! [`backends`], then timeouts, health and policy); [`conflict`] keeps
//! host + match claims; [`conditions`] words `ResolvedRefs` and `Ready`.
//! This file orders the routes and assembles the table.

mod backends;
mod conditions;
mod conflict;
mod matches;
mod reuse;
mod routes;
mod shadow;
mod tls;
mod transport;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use super::https::{hsts_value, RouteHttps, TlsTable};
use super::{
    ConditionState, HostRules, MatchOrigin, Probe, Reason, RouteRecord, RouteStatus, RouteTable,
    Rule,
};
use crate::api;
use crate::balance::EndpointState;
use crate::diagnostic::{CompileError, FieldPath, Invalid};
use crate::health::ActiveCheck;
use crate::matching::{HostKey, Rank, RegexStore, Regexes, RequestMatch};
use crate::metrics::RouteSeries;
use crate::policy::rate_limit::RateLimiter;
use crate::policy::LimiterStates;
use crate::snapshot::{Diagnostic, Snapshot, SourcedRoute};
use crate::table::PoolKey;
use crate::upstream::{EndpointPool, Transport};
use conflict::Claims;
use matches::MatchKey;
use reuse::Outcome;
pub use reuse::Reuse;
use routes::{compile_route, RouteInput};
use tls::{Certs, RouteCert};

/// The result of a compile.
#[derive(Debug)]
pub struct Compiled {
    /// The table to publish.
    pub table: RouteTable,
    /// One status per route of the snapshot, oldest route first.
    pub statuses: Vec<RouteStatus>,
    /// Problems of the TLS listener's own settings (the default
    /// certificate, the client CA), each naming the flag and the object.
    pub listener_problems: Vec<Diagnostic>,
}

impl Compiled {
    /// Whether every route was accepted (tests).
    #[cfg(test)]
    pub fn is_clean(&self) -> bool {
        self.statuses.iter().all(RouteStatus::accepted)
    }
}

/// A route that compiled; it is served unless it conflicts.
#[derive(Clone, Debug)]
struct CompiledRoute {
    /// Its hosts.
    hosts: Vec<HostKey>,
    /// One entry per host × match.
    matches: Vec<CompiledMatch>,
    /// The endpoints its rules use.
    endpoints: Vec<(Arc<str>, Arc<EndpointState>)>,
    /// Their connection pools.
    pools: Vec<(PoolKey, Arc<EndpointPool>)>,
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
    /// Its `BackendTLSVerified` condition, with an HTTPS backend.
    backend_tls: Option<ConditionState>,
    /// Problems that do not refuse it (backend protocol and TLS).
    problems: Vec<CompileError>,
    /// Its rules' metric handles.
    series: RouteSeries,
}

/// One host × match of a compiled route.
#[derive(Clone, Debug)]
struct CompiledMatch {
    host: HostKey,
    key: MatchKey,
    field: FieldPath,
    rank: Rank,
    matcher: RequestMatch,
    rule: Arc<Rule>,
    /// The rule's index in `spec.rules`.
    rule_index: usize,
}

/// A host's match being assembled: its precedence, conditions, rule and
/// where it is written.
type HostEntry = (Rank, RequestMatch, Arc<Rule>, MatchOrigin);

/// The table being assembled, route by route (oldest first).
#[derive(Default)]
struct Assembly {
    endpoints: HashMap<Arc<str>, Arc<EndpointState>>,
    pools: HashMap<PoolKey, Arc<EndpointPool>>,
    limiters: LimiterStates,
    probes: HashMap<(Arc<str>, ActiveCheck), Probe>,
    claims: Claims,
    buckets: HashMap<HostKey, Vec<HostEntry>>,
    statuses: Vec<RouteStatus>,
    records: Vec<RouteRecord>,
    series: RouteSeries,
}

/// Compiles `snapshot` at `now` (seconds since the epoch: certificates
/// expired by then are refused). Service backends resolve to the ready
/// endpoints of their EndpointSlices (cluster mode). Endpoint state is
/// carried over from `previous` by address, so in-flight counts (and later
/// health) survive route edits and endpoint churn; so are certificates
/// whose Secrets did not change, the last good certificate of a Secret
/// that broke, and compiled regular expressions by pattern.
pub fn compile(snapshot: &Snapshot, previous: &RouteTable, now: i64) -> Compiled {
    let mut certs = Certs::new(snapshot, &previous.tls, now);
    let mut routes: Vec<&SourcedRoute> = snapshot.routes.iter().collect();
    routes.sort_by(|a, b| (a.age, &a.namespace, &a.name).cmp(&(b.age, &b.namespace, &b.name)));
    let mut names: HashMap<(&str, &str), &str> = HashMap::new();
    let mut table = Assembly::default();
    let mut regexes = Regexes::carried(&previous.regexes);
    let mut reuse = Reuse::new(snapshot);
    for route in routes {
        let resource: Arc<str> = format!("{}/{}", route.namespace, route.name).into();
        let result = match names.entry((&route.namespace, &route.name)) {
            Entry::Occupied(first) => {
                let reason = Invalid::DefinedTwice {
                    resource: resource.to_string(),
                    first: first.get().to_string(),
                };
                Err(vec![CompileError::new("metadata.name".into(), reason)])
            }
            Entry::Vacant(slot) => {
                slot.insert(&route.origin);
                if let Some(previous) = previous.reuse.get(route, snapshot) {
                    regexes.keep(&previous.patterns);
                    Ok(Outcome::Kept(previous.clone()))
                } else {
                    regexes.take_asked();
                    compile_one(route, &resource, snapshot, previous, &table, &mut regexes)
                        .map(|c| Reuse::outcome(route, snapshot, c, regexes.take_asked()))
                }
            }
        };
        let added = match &result {
            Ok(outcome) => Ok(outcome.compiled()),
            Err(errors) => Err(errors.clone()),
        };
        table.add(route, resource, added, &mut certs);
        let accepted = table.statuses.last().is_some_and(RouteStatus::accepted);
        if let (true, Ok(Outcome::Kept(kept))) = (accepted, result) {
            reuse.keep(route, kept);
        }
    }
    let (tls, listener_problems) = certs.finish();
    let mut compiled = table.finish(tls, regexes.finish(), listener_problems);
    compiled.table.reuse = reuse;
    compiled
}

/// Compiles `route` afresh: endpoint states and pools come from the table
/// being assembled, else from `previous`, else new.
fn compile_one(
    route: &SourcedRoute,
    resource: &Arc<str>,
    snapshot: &Snapshot,
    previous: &RouteTable,
    table: &Assembly,
    regexes: &mut Regexes<'_>,
) -> Result<CompiledRoute, Vec<CompileError>> {
    let input = RouteInput {
        route,
        resource,
        snapshot,
        previous_limiters: &previous.limiters,
        previous_series: &previous.series,
        https: route_https(route, snapshot),
    };
    let known = &table.endpoints;
    let known_pools = &table.pools;
    let state_of = &mut |addr: &str| {
        (known.get(addr))
            .or_else(|| previous.endpoints.get(addr))
            .cloned()
            .unwrap_or_default()
    };
    let pool_of = &mut |addr: &Arc<str>, transport: &Transport| {
        let key = (addr.clone(), transport.clone());
        (known_pools.get(&key))
            .or_else(|| previous.pools.get(&key))
            .cloned()
            .unwrap_or_else(|| Arc::new(EndpointPool::new(key.0, key.1)))
    };
    compile_route(&input, regexes, state_of, pool_of)
}

/// What `route`'s `spec.tls` asks of its requests: the plain-HTTP
/// redirect (only when a TLS listener runs) and HSTS.
fn route_https(route: &SourcedRoute, snapshot: &Snapshot) -> Option<Arc<RouteHttps>> {
    let spec = route.spec.tls.as_ref()?;
    let settings = &snapshot.tls;
    let redirect = settings.listener && spec.redirects();
    Some(Arc::new(RouteHttps {
        redirect_port: redirect.then_some(settings.redirect_port),
        hsts: spec.hsts.as_ref().map(|h| {
            let max_age = h.max_age_seconds.unwrap_or(api::Hsts::DEFAULT_MAX_AGE);
            hsts_value(max_age.max(0), h.include_sub_domains)
        }),
    }))
}

impl Assembly {
    /// Adds one route's outcome: served when it compiled and claims
    /// nothing an older route owns, else left out with its errors.
    fn add(
        &mut self,
        route: &SourcedRoute,
        resource: Arc<str>,
        result: Result<&CompiledRoute, Vec<CompileError>>,
        certs: &mut Certs<'_>,
    ) {
        let mut tls = None;
        let mut backend_tls = None;
        let (reason, errors, conditions) = match result {
            Err(errors) => (Reason::Invalid, errors, None),
            Ok(compiled) => {
                let conflicts = self.claims.conflicts(&compiled.matches);
                if conflicts.is_empty() {
                    let conditions = (
                        compiled.resolved_refs.clone(),
                        compiled.ready.clone(),
                        compiled.ready_endpoints,
                    );
                    backend_tls = compiled.backend_tls.clone();
                    let mut errors = compiled.problems.clone();
                    tls = certs.route(route, &compiled.hosts);
                    tls.iter().for_each(|cert| certs.serve(cert));
                    self.serve(&resource, compiled);
                    errors.extend(
                        tls.as_mut()
                            .map(|c| std::mem::take(&mut c.errors))
                            .unwrap_or_default(),
                    );
                    (Reason::Accepted, errors, Some(conditions))
                } else {
                    (Reason::Conflicted, conflicts, None)
                }
            }
        };
        let tls = match tls {
            Some(RouteCert { condition, .. }) => Some(condition),
            None if route.spec.tls.is_some() => Some(ConditionState::not_accepted(reason)),
            None => None,
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
            tls,
            backend_tls,
            // Rules shadowed by others are marked once the table is whole.
            reachable: match reason {
                Reason::Accepted => shadow::all_reachable(),
                reason => ConditionState::not_accepted(reason),
            },
        };
        self.records.push(RouteRecord {
            status: status.clone(),
            spec: route.spec.clone(),
        });
        self.statuses.push(status);
    }

    /// Takes in a route that is served: its claims, rules, endpoints,
    /// probes and rate-limit buckets.
    fn serve(&mut self, resource: &Arc<str>, compiled: &CompiledRoute) {
        for m in &compiled.matches {
            (self.claims).claim(m.host.clone(), m.key.clone(), resource.clone());
            let origin = MatchOrigin {
                route: resource.clone(),
                rule: m.rule_index,
                field: m.field.clone(),
            };
            let entry = (m.rank.clone(), m.matcher.clone(), m.rule.clone(), origin);
            self.buckets.entry(m.host.clone()).or_default().push(entry);
        }
        for (addr, state) in &compiled.endpoints {
            (self.endpoints.entry(addr.clone())).or_insert_with(|| state.clone());
        }
        for (key, pool) in &compiled.pools {
            self.pools
                .entry(key.clone())
                .or_insert_with(|| pool.clone());
        }
        for probe in &compiled.probes {
            (self.probes)
                .entry((probe.address.clone(), probe.check.clone()))
                .or_insert_with(|| probe.clone());
        }
        self.series.extend_from(&compiled.series);
        for (rule, spec, limiter) in &compiled.limiters {
            (self.limiters).insert(resource.clone(), *rule, spec.clone(), limiter.clone());
        }
    }

    /// The table: hosts' rules sorted by precedence, probes by address.
    fn finish(
        self,
        tls: TlsTable,
        regexes: RegexStore,
        listener_problems: Vec<Diagnostic>,
    ) -> Compiled {
        let mut probes: Vec<Probe> = self.probes.into_values().collect();
        probes.sort_by(|a, b| a.address.cmp(&b.address));
        let mut table = RouteTable {
            endpoints: self.endpoints,
            pools: self.pools,
            limiters: self.limiters,
            probes: probes.into(),
            routes: self.records,
            tls,
            series: self.series,
            regexes,
            ..RouteTable::default()
        };
        for (host, mut entries) in self.buckets {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let rules = HostRules::new(entries.into_iter().map(|(_, m, r, o)| (m, r, o)).collect());
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
        let mut statuses = self.statuses;
        let unreachable = shadow::unreachable_rules(&table);
        shadow::mark(&unreachable, statuses.iter_mut());
        shadow::mark(&unreachable, table.routes.iter_mut().map(|r| &mut r.status));
        Compiled {
            table,
            statuses,
            listener_problems,
        }
    }
}

#[cfg(test)]
mod tests;
