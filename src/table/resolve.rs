//! Backend resolution: a rule's backend reference (a static address, or a
//! Service and port) to the endpoints that serve it.
//!
//! Pure, like the rest of compile: it reads the Services and EndpointSlices
//! of the [`Snapshot`] and nothing else. A reference that is malformed for
//! the mode (a Service in standalone mode, a static address in a cluster
//! that does not allow them, a missing port) is a field error that rejects
//! the route; a well-formed reference that does not resolve today (the
//! Service is missing, or lacks the port) is not: the route is served, the
//! backend contributes no endpoints, and `ResolvedRefs` says why, so the
//! route recovers by itself when the Service appears.

use std::net::IpAddr;
use std::sync::Arc;

use http::uri::Authority;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ConditionReason;
use crate::api;
use crate::api::values::parse_address;
use crate::diagnostic::Invalid;
use crate::snapshot::{BackendPolicy, ServiceInfo, ServicePortInfo, Snapshot};

/// One endpoint: its key for `EndpointState` reuse (the authority as text)
/// and the parsed authority.
pub(super) type Endpoint = (Arc<str>, Authority);

/// What a well-formed backend reference resolved to.
#[derive(Debug)]
pub(super) enum Resolved {
    /// A static `address`: exactly this endpoint.
    Static(Endpoint),
    /// A Service's ready endpoints, sorted by key and deduplicated; empty
    /// when none is ready.
    Service {
        /// `namespace/name`, for messages.
        service: String,
        /// The ready, non-terminating endpoints.
        endpoints: Vec<Endpoint>,
        /// The Service port's `appProtocol`, as written.
        app_protocol: Option<String>,
    },
    /// A reference that does not resolve now (the route is still served).
    Unresolved {
        /// `BackendNotFound` or `InvalidBackend`.
        reason: ConditionReason,
        /// What is wrong, for the condition and the 503 reason.
        message: String,
    },
}

/// Resolves `backend` of a route in `namespace`. The error is a field error:
/// the sub-field (`address`, `service`, `port`, or `None` for the backend
/// itself) and why.
pub(super) fn resolve_backend(
    backend: &api::Backend,
    namespace: &str,
    snapshot: &Snapshot,
) -> Result<Resolved, (Option<&'static str>, Invalid)> {
    let policy = snapshot.backends;
    match (&backend.service, &backend.address) {
        (Some(_), Some(_)) => Err((None, Invalid::ServiceAndAddress)),
        (Some(service), None) => match policy {
            BackendPolicy::StaticOnly => Err((
                Some("service"),
                Invalid::ServiceNeedsCluster(service.clone()),
            )),
            BackendPolicy::Cluster { .. } => {
                if service.is_empty() {
                    return Err((Some("service"), Invalid::EmptyServiceName));
                }
                let port = wanted_port(backend.port.as_ref()).map_err(|m| (Some("port"), m))?;
                Ok(resolve_service(namespace, service, &port, snapshot))
            }
        },
        (None, Some(address)) => match policy {
            BackendPolicy::Cluster {
                allow_static: false,
            } => Err((Some("address"), Invalid::StaticNotAllowed)),
            BackendPolicy::StaticOnly | BackendPolicy::Cluster { allow_static: true } => {
                let authority =
                    parse_address(address).map_err(|e| (Some("address"), Invalid::from(e)))?;
                Ok(Resolved::Static((Arc::from(authority.as_str()), authority)))
            }
        },
        (None, None) => Err((
            None,
            Invalid::NoBackendRef {
                service: matches!(policy, BackendPolicy::Cluster { .. }),
                address: !matches!(
                    policy,
                    BackendPolicy::Cluster {
                        allow_static: false
                    }
                ),
            },
        )),
    }
}

/// A Service port as a route names it.
#[derive(Debug)]
enum PortRef {
    Number(i32),
    Name(String),
}

fn wanted_port(port: Option<&IntOrString>) -> Result<PortRef, Invalid> {
    let number = |n: i32| {
        if (1..=65535).contains(&n) {
            Ok(PortRef::Number(n))
        } else {
            Err(Invalid::PortNumber(n))
        }
    };
    match port {
        None => Err(Invalid::PortMissing),
        Some(IntOrString::Int(n)) => number(*n),
        // `port: "80"` is a number a YAML writer quoted; Kubernetes port
        // names always contain a letter, so the reading is unambiguous.
        Some(IntOrString::String(s)) => match s.parse::<i32>() {
            Ok(n) => number(n),
            Err(_) if s.is_empty() => Err(Invalid::EmptyPortName),
            Err(_) => Ok(PortRef::Name(s.clone())),
        },
    }
}

fn resolve_service(namespace: &str, name: &str, port: &PortRef, snapshot: &Snapshot) -> Resolved {
    let key = (namespace.to_owned(), name.to_owned());
    let service = format!("{namespace}/{name}");
    let Some(info) = snapshot.services.get(&key) else {
        return Resolved::Unresolved {
            reason: ConditionReason::BackendNotFound,
            message: format!("service {service} not found"),
        };
    };
    let found = info.ports.iter().find(|p| match port {
        PortRef::Number(n) => p.port == *n,
        PortRef::Name(wanted) => p.name.as_deref() == Some(wanted.as_str()),
    });
    let Some(service_port) = found else {
        let wanted = match port {
            PortRef::Number(n) => format!("port {n}"),
            PortRef::Name(name) => format!("port named {name:?}"),
        };
        return Resolved::Unresolved {
            reason: ConditionReason::InvalidBackend,
            message: format!("service {service} has no {wanted}; {}", list_ports(info)),
        };
    };

    // The Service port's name picks the EndpointSlice port (the target
    // port as the pods expose it); an unnamed port matches the unnamed one.
    let port_name = nonempty(service_port.name.as_deref());
    let mut endpoints = Vec::new();
    for slice in snapshot.endpoints.get(&key).into_iter().flatten() {
        let Some(&(_, number)) = slice
            .ports
            .iter()
            .find(|(name, _)| nonempty(name.as_deref()) == port_name)
        else {
            continue;
        };
        let Ok(number) = u16::try_from(number) else {
            continue;
        };
        if number == 0 {
            continue;
        }
        for endpoint in &slice.endpoints {
            if !endpoint.ready || endpoint.terminating {
                continue;
            }
            // An address that is not an authority (the API should never
            // send one) is left out rather than rejecting the route.
            endpoints.extend(
                endpoint
                    .addresses
                    .iter()
                    .filter_map(|address| endpoint_authority(address, number)),
            );
        }
    }
    // Same snapshot, same table: slices and endpoints come in API order.
    endpoints.sort_by(|a: &Endpoint, b: &Endpoint| a.0.cmp(&b.0));
    endpoints.dedup_by(|a, b| a.0 == b.0);
    Resolved::Service {
        service,
        endpoints,
        app_protocol: service_port.app_protocol.clone(),
    }
}

fn nonempty(name: Option<&str>) -> Option<&str> {
    name.filter(|n| !n.is_empty())
}

/// `its ports are 80 (http), 443`, or `it has no ports`.
fn list_ports(info: &ServiceInfo) -> String {
    if info.ports.is_empty() {
        return "it has no ports".to_owned();
    }
    let ports: Vec<String> = info
        .ports
        .iter()
        .map(
            |ServicePortInfo { name, port, .. }| match nonempty(name.as_deref()) {
                Some(name) => format!("{port} ({name})"),
                None => port.to_string(),
            },
        )
        .collect();
    format!("its ports are {}", ports.join(", "))
}

/// `10.0.0.1:8080`, `[fd00::1]:8080`: IP addresses in their canonical
/// spelling so one endpoint has one key however the API wrote it.
fn endpoint_authority(address: &str, port: u16) -> Option<Endpoint> {
    let text = match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => format!("{ip}:{port}"),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        // FQDN slices name hosts.
        Err(_) => format!("{address}:{port}"),
    };
    let authority = parse_address(&text).ok()?;
    Some((Arc::from(authority.as_str()), authority))
}
