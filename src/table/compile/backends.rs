//! Compile step: a rule's backends — references resolved to endpoints,
//! endpoints grouped by backend with their weights, and the balancing that
//! picks among them.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use super::super::pick::{Balancing, GroupSpec, HashKey, StickySpec};
use super::super::resolve::{resolve_backend, Endpoint, Resolved};
use super::super::{Backends, ConditionReason, Target};
use super::conditions::TlsCheck;
use super::transport::{transport, Reach, Unusable};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::values::{check_cookie_name, parse_duration};
use crate::api::{self, Algorithm};
use crate::balance::EndpointState;
use crate::diagnostic::{CompileError, FieldPath, Invalid, Problems};
use crate::snapshot::Snapshot;
use crate::table::PoolKey;
use crate::upstream::{EndpointPool, Transport};

/// Largest backend weight; keeps the round-robin schedule small.
const MAX_WEIGHT: u32 = 1000;

/// The endpoints of one route so far, one state per address (a map: a
/// Service can have many endpoints), and where a new address gets its
/// state.
pub(super) struct Endpoints<'a, F> {
    /// The states this route uses, by address.
    pub used: HashMap<Arc<str>, Arc<EndpointState>>,
    /// The state of an address the route has not used yet: the previous
    /// table's, or a fresh one.
    pub state_of: &'a mut F,
    /// The connection pools this route uses, by address and transport.
    pub pools: HashMap<PoolKey, Arc<EndpointPool>>,
    /// The pool of an endpoint the route has not used yet: the previous
    /// table's, or a new one (no connection is made at compile).
    pub pool_of: &'a mut PoolOf<'a>,
}

/// Where a pool not yet used by a route comes from.
pub(super) type PoolOf<'a> = dyn FnMut(&Arc<str>, &Transport) -> Arc<EndpointPool> + 'a;

/// What resolving a rule's backends found.
#[derive(Default)]
pub(super) struct RuleBackends {
    /// Every endpoint, grouped by backend in declaration order.
    targets: Vec<Target>,
    /// The weighted groups of `targets`.
    groups: Vec<GroupSpec>,
    /// Why a backend that should get traffic contributes no endpoint.
    pub empty: Vec<String>,
    /// Unresolved references: the `ResolvedRefs` reason and
    /// `field: message`.
    pub unresolved: Vec<(ConditionReason, String)>,
    /// Problems that do not refuse the route (a backend's protocol or TLS
    /// the cluster may fix), located for `check` and the gate.
    pub problems: Vec<CompileError>,
    /// How each HTTPS backend's certificate is checked.
    pub tls_checks: Vec<TlsCheck>,
    /// The `backend` metric label of each distinct backend, in order; a
    /// target's `backend` indexes it.
    pub labels: Vec<Arc<str>>,
}

/// One backend's endpoints, whether it is a static address, and how they
/// are spoken to.
#[derive(Default)]
struct Found {
    endpoints: Vec<Endpoint>,
    is_static: bool,
    transport: Transport,
}

/// Resolves the backends of `rule` (at `at`) of a route in `namespace`.
/// Two levels: a Service backend's weight is its share of the rule's
/// traffic, however many endpoints it has, and its endpoints share that
/// equally. Static addresses are endpoints listed by hand: together they
/// form one pool whose share is the sum of their weights, and inside it
/// their weights are endpoint weights.
pub(super) fn resolve_backends<F: FnMut(&str) -> Arc<EndpointState>>(
    rule: &api::RouteRule,
    at: &FieldPath,
    namespace: &str,
    snapshot: &Snapshot,
    endpoints: &mut Endpoints<'_, F>,
    errors: &mut Problems,
) -> RuleBackends {
    let mut out = RuleBackends::default();
    // The group of the rule's static addresses, once there is one.
    let mut static_pool: Option<usize> = None;
    for (b, backend) in rule.backends.iter().enumerate() {
        let field = at.key("backends").index(b);
        if backend.weight > MAX_WEIGHT {
            let weight = backend.weight;
            let reason = Invalid::Weight {
                weight,
                max: MAX_WEIGHT,
            };
            errors.push(field.key("weight"), reason);
        }
        let Found {
            endpoints: found,
            is_static,
            transport,
        } = backend_endpoints(backend, &field, namespace, snapshot, &mut out, errors);
        let label = backend_label(backend);
        let label_index = match out.labels.iter().position(|l| *l == label) {
            Some(known) => known,
            None => {
                out.labels.push(label);
                out.labels.len() - 1
            }
        };
        let mut indices = Vec::with_capacity(found.len());
        for (key, authority) in found {
            let pool_key = (key.clone(), transport.clone());
            let pool = match endpoints.pools.entry(pool_key) {
                Entry::Occupied(known) => Arc::clone(known.get()),
                Entry::Vacant(new) => {
                    let pool = (endpoints.pool_of)(&new.key().0, &transport);
                    Arc::clone(new.insert(pool))
                }
            };
            let state = match endpoints.used.entry(key) {
                Entry::Occupied(known) => Arc::clone(known.get()),
                Entry::Vacant(new) => {
                    let state = (endpoints.state_of)(new.key());
                    Arc::clone(new.insert(state))
                }
            };
            indices.push(out.targets.len());
            out.targets.push(Target {
                authority,
                state,
                pool,
                weight: backend.weight,
                backend: u16::try_from(label_index).unwrap_or(u16::MAX),
            });
        }
        if backend.weight == 0 || indices.is_empty() {
            continue;
        }
        if is_static {
            let groups = &mut out.groups;
            let pool = *static_pool.get_or_insert_with(|| {
                groups.push(GroupSpec::default());
                groups.len() - 1
            });
            let pool = &mut groups[pool];
            pool.targets.extend(indices);
            pool.weights.push(backend.weight);
            pool.weight += backend.weight;
        } else {
            out.groups.push(GroupSpec {
                weights: vec![1; indices.len()],
                targets: indices,
                weight: backend.weight,
            });
        }
    }
    out
}

/// A backend's `backend` metric label, from configuration only: a
/// Service's `name:port`, or `static` for the rule's static addresses
/// (one group, as they are balanced).
fn backend_label(backend: &api::Backend) -> Arc<str> {
    match (&backend.service, &backend.port) {
        (Some(service), Some(port)) => match port {
            IntOrString::Int(n) => format!("{service}:{n}").into(),
            IntOrString::String(name) => format!("{service}:{name}").into(),
        },
        (Some(service), None) => service.as_str().into(),
        (None, _) => "static".into(),
    }
}

/// The endpoints of one backend, whether it is a static address, and its
/// transport. A reference that does not resolve today, or whose protocol
/// or TLS cannot be set up, is recorded in `out` (the route is still
/// served); a malformed one is an error.
fn backend_endpoints(
    backend: &api::Backend,
    field: &FieldPath,
    namespace: &str,
    snapshot: &Snapshot,
    out: &mut RuleBackends,
    errors: &mut Problems,
) -> Found {
    let (endpoints, is_static, found) = match resolve_backend(backend, namespace, snapshot) {
        Ok(Resolved::Static(endpoint)) => {
            let host = endpoint.1.host();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let reach = Reach::Static { host };
            let found = transport(backend, reach, field, namespace, snapshot);
            (vec![endpoint], true, found)
        }
        Ok(Resolved::Service {
            service,
            endpoints,
            app_protocol,
        }) => {
            let name = backend.service.as_deref().unwrap_or_default();
            let dns_name = format!("{name}.{namespace}.svc");
            let reach = Reach::Service {
                app_protocol: app_protocol.as_deref(),
                dns_name: &dns_name,
            };
            let found = transport(backend, reach, field, namespace, snapshot);
            if found.is_ok() && endpoints.is_empty() && backend.weight > 0 {
                out.empty
                    .push(format!("no ready endpoints for service {service}"));
            }
            (endpoints, false, found)
        }
        Ok(Resolved::Unresolved { reason, message }) => {
            if backend.weight > 0 {
                out.empty.push(message.clone());
            }
            out.unresolved.push((reason, format!("{field}: {message}")));
            return Found::default();
        }
        Err((sub, reason)) => {
            let at = sub.map_or_else(|| field.clone(), |sub| field.key(sub));
            errors.push(at, reason);
            return Found::default();
        }
    };
    let resolved = Found {
        endpoints,
        is_static,
        transport: Transport::default(),
    };
    found_or_record(found, resolved, (backend, field), out, errors)
}

/// `resolved` with its transport; or, when the backend (at `field`) has
/// none, no endpoints and the problem recorded: a field error in
/// `errors`, a problem the cluster may fix in `out` (the route is still
/// served).
fn found_or_record(
    found: Result<Transport, Unusable>,
    resolved: Found,
    (backend, field): (&api::Backend, &FieldPath),
    out: &mut RuleBackends,
    errors: &mut Problems,
) -> Found {
    let unusable = match found {
        Ok(transport) => {
            if let Some(tls) = &transport.tls {
                out.tls_checks.push(TlsCheck::of(tls, field));
            }
            return Found {
                transport,
                ..resolved
            };
        }
        Err(unusable) => unusable,
    };
    let Some(condition) = unusable.condition else {
        errors.push(unusable.field, unusable.reason);
        return Found::default();
    };
    let error = CompileError::new(unusable.field, unusable.reason);
    if backend.weight > 0 {
        out.empty.push(error.message.clone());
    }
    out.unresolved.push((condition, error.to_string()));
    if condition != ConditionReason::UnsupportedProtocol {
        out.tls_checks
            .push(TlsCheck::Broken(condition, error.to_string()));
    }
    out.problems.push(error);
    Found::default()
}

/// The rule's [`Backends`]: its balancing over the endpoints found, or why
/// it has none. Balancing problems go to `errors`.
pub(super) fn rule_backends(
    rule: &api::RouteRule,
    at: &FieldPath,
    found: &mut RuleBackends,
    errors: &mut Problems,
) -> Backends {
    let (algorithm, hash_on, sticky) = compile_balancing(rule, at, errors);
    if rule.backends.is_empty() {
        return Backends::Unavailable {
            reason: "the rule has no backends".into(),
        };
    }
    let targets = std::mem::take(&mut found.targets);
    match Balancing::new(algorithm, hash_on, sticky, &targets, &found.groups) {
        Some(balancer) => Backends::Ready {
            balancer,
            targets: targets.into_boxed_slice(),
        },
        None if found.empty.is_empty() => Backends::Unavailable {
            reason: "every backend of the rule has weight 0".into(),
        },
        None => Backends::Unavailable {
            reason: found.empty.join("; ").into(),
        },
    }
}

/// Validates and compiles a rule's `loadBalancing`: `hashOn` is required
/// with `ConsistentHash` and refused with any other algorithm; names must
/// be valid. Errors go to `errors`, naming the field.
fn compile_balancing(
    rule: &api::RouteRule,
    at: &FieldPath,
    errors: &mut Problems,
) -> (Algorithm, Option<HashKey>, Option<StickySpec>) {
    let Some(lb) = &rule.load_balancing else {
        return (Algorithm::default(), None, None);
    };
    let field = at.key("loadBalancing");
    let hash_on = match (&lb.hash_on, lb.algorithm) {
        (None, Algorithm::ConsistentHash) => {
            errors.push(field.key("hashOn"), Invalid::HashOnMissing);
            None
        }
        (Some(_), algorithm) if algorithm != Algorithm::ConsistentHash => {
            errors.push(field.key("hashOn"), Invalid::HashOnUnused(algorithm));
            None
        }
        (Some(spec), _) => errors.check(|| field.key("hashOn").key("name"), HashKey::compile(spec)),
        (None, _) => None,
    };
    let sticky = lb.sticky.as_ref().and_then(|sticky| {
        let cookie = &sticky.cookie;
        let at = field.key("sticky").key("cookie");
        let name = errors.check(|| at.key("name"), check_cookie_name(&cookie.name));
        let ttl = match cookie.ttl.as_deref().map(parse_duration) {
            None => Some(None),
            Some(ttl) => errors.check(|| at.key("ttl"), ttl).map(Some),
        };
        match (name, ttl) {
            (Some(()), Some(ttl)) => Some(StickySpec {
                name: cookie.name.as_str().into(),
                ttl,
            }),
            _ => None,
        }
    });
    (lb.algorithm, hash_on, sticky)
}
