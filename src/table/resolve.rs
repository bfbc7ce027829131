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

use crate::api;
use crate::snapshot::{BackendPolicy, ServiceInfo, ServicePortInfo, Snapshot};

/// `ResolvedRefs` reason: the Service does not exist.
pub(super) const BACKEND_NOT_FOUND: &str = "BackendNotFound";
/// `ResolvedRefs` reason: the Service exists but the reference does not fit it.
pub(super) const INVALID_BACKEND: &str = "InvalidBackend";

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
    },
    /// A reference that does not resolve now (the route is still served).
    Unresolved {
        /// [`BACKEND_NOT_FOUND`] or [`INVALID_BACKEND`].
        reason: &'static str,
        /// What is wrong, for the condition and the 503 reason.
        message: String,
    },
}

/// Resolves `backend` of a route in `namespace`. The error is a field error:
/// the sub-field (`.address`, `.service`, `.port`, or `""` for the backend
/// itself) and its message.
pub(super) fn resolve_backend(
    backend: &api::Backend,
    namespace: &str,
    snapshot: &Snapshot,
) -> Result<Resolved, (&'static str, String)> {
    let policy = snapshot.backends;
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
            BackendPolicy::Cluster { .. } => {
                if service.is_empty() {
                    return Err((".service", "the Service name is empty".to_owned()));
                }
                let port = wanted_port(backend.port.as_ref()).map_err(|m| (".port", m))?;
                Ok(resolve_service(namespace, service, &port, snapshot))
            }
        },
        (None, Some(address)) => match policy {
            BackendPolicy::Cluster {
                allow_static: false,
            } => Err((
                ".address",
                "static address backends are not allowed in this cluster; the controller \
                 runs without --allow-static-backends (use `service` and `port`)"
                    .to_owned(),
            )),
            BackendPolicy::StaticOnly | BackendPolicy::Cluster { allow_static: true } => {
                let authority = parse_address(address).map_err(|m| (".address", m))?;
                Ok(Resolved::Static((Arc::from(authority.as_str()), authority)))
            }
        },
        (None, None) => Err((
            "",
            match policy {
                BackendPolicy::StaticOnly => "a backend needs an `address: host:port`",
                BackendPolicy::Cluster {
                    allow_static: false,
                } => "a backend needs a `service` and a `port`",
                BackendPolicy::Cluster { allow_static: true } => {
                    "a backend needs a `service` and a `port`, or an `address: host:port`"
                }
            }
            .to_owned(),
        )),
    }
}

/// A Service port as a route names it.
#[derive(Debug)]
enum PortRef {
    Number(i32),
    Name(String),
}

fn wanted_port(port: Option<&IntOrString>) -> Result<PortRef, String> {
    let number = |n: i32| {
        if (1..=65535).contains(&n) {
            Ok(PortRef::Number(n))
        } else {
            Err(format!("{n} is not a port number (1 to 65535)"))
        }
    };
    match port {
        None => Err("a service backend needs a `port`: the Service port's number or name".into()),
        Some(IntOrString::Int(n)) => number(*n),
        // `port: "80"` is a number a YAML writer quoted; Kubernetes port
        // names always contain a letter, so the reading is unambiguous.
        Some(IntOrString::String(s)) => match s.parse::<i32>() {
            Ok(n) => number(n),
            Err(_) if s.is_empty() => Err("the port name is empty".into()),
            Err(_) => Ok(PortRef::Name(s.clone())),
        },
    }
}

fn resolve_service(namespace: &str, name: &str, port: &PortRef, snapshot: &Snapshot) -> Resolved {
    let key = (namespace.to_owned(), name.to_owned());
    let service = format!("{namespace}/{name}");
    let Some(info) = snapshot.services.get(&key) else {
        return Resolved::Unresolved {
            reason: BACKEND_NOT_FOUND,
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
            reason: INVALID_BACKEND,
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
    Resolved::Service { service, endpoints }
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
            |ServicePortInfo { name, port }| match nonempty(name.as_deref()) {
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

/// Parses a static `host:port`.
pub(super) fn parse_address(address: &str) -> Result<Authority, String> {
    let bad = || format!("{address:?} is not host:port (for example 127.0.0.1:8080)");
    let authority: Authority = address.parse().map_err(|_| bad())?;
    if address.contains('@') || authority.host().is_empty() || authority.port_u16().is_none() {
        return Err(bad());
    }
    Ok(authority)
}
