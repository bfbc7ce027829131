//! Compile tests: snapshot in, table and statuses out. Each rule of a
//! fixture routes to its own backend port, so a lookup says which rule won.

use std::collections::HashMap;
use std::time::Duration;

use http::Method;

use super::super::Backends;
use super::*;
use crate::api::values::parse_duration;
use crate::api::{
    Algorithm, Backend, HashOn, HashOnType, HeaderMatch, HeaderMatchType, LoadBalancing, PathMatch,
    PathMatchType, RouteMatch, RouteRule, Sticky, StickyCookie,
};
use crate::snapshot::{
    Age, BackendPolicy, EndpointInfo, EndpointSliceInfo, ServiceInfo, ServicePortInfo,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

mod backend_tls;
mod balancing;
mod conditions;
mod conflicts;
mod health;
mod invalid;
mod patterns;
mod precedence;
mod references;
mod reuse;
mod services;
mod shadowing;
mod tls;
mod transport;

// === fixtures ===

struct RouteBuilder(SourcedRoute);

fn route(namespace: &str, name: &str, position: u64) -> RouteBuilder {
    RouteBuilder(SourcedRoute {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        origin: Arc::from("test.yaml"),
        age: Age {
            created: None,
            position,
        },
        spec: Arc::default(),
    })
}

impl RouteBuilder {
    fn hosts(mut self, hosts: &[&str]) -> Self {
        Arc::make_mut(&mut self.0.spec).hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        self
    }

    /// A rule with these matches, sending to `127.0.0.1:{port}`.
    fn rule(mut self, matches: Vec<RouteMatch>, port: u16) -> Self {
        Arc::make_mut(&mut self.0.spec).rules.push(RouteRule {
            matches,
            backends: vec![address(&format!("127.0.0.1:{port}"))],
            ..RouteRule::default()
        });
        self
    }

    fn raw_rule(mut self, rule: RouteRule) -> Self {
        Arc::make_mut(&mut self.0.spec).rules.push(rule);
        self
    }

    fn build(self) -> SourcedRoute {
        self.0
    }
}

fn address(address: &str) -> Backend {
    Backend {
        service: None,
        port: None,
        address: Some(address.to_owned()),
        weight: 1,
        protocol: None,
        tls: None,
    }
}

fn path(kind: PathMatchType, value: &str) -> RouteMatch {
    RouteMatch {
        path: Some(PathMatch {
            kind,
            value: value.to_owned(),
        }),
        ..RouteMatch::default()
    }
}

fn prefix(value: &str) -> RouteMatch {
    path(PathMatchType::Prefix, value)
}

fn with_headers(mut m: RouteMatch, headers: &[(&str, &str)]) -> RouteMatch {
    m.headers = headers
        .iter()
        .map(|(name, value)| HeaderMatch {
            kind: HeaderMatchType::Exact,
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        })
        .collect();
    m
}

fn with_methods(mut m: RouteMatch, methods: &[&str]) -> RouteMatch {
    m.methods = methods.iter().map(|m| (*m).to_owned()).collect();
    m
}

fn snapshot(routes: Vec<RouteBuilder>) -> Snapshot {
    Snapshot {
        routes: routes.into_iter().map(RouteBuilder::build).collect(),
        backends: BackendPolicy::StaticOnly,
        ..Snapshot::default()
    }
}

/// A cluster-mode snapshot, built up with Services and EndpointSlices.
struct ClusterBuilder(Snapshot);

fn cluster(routes: Vec<RouteBuilder>) -> ClusterBuilder {
    ClusterBuilder(Snapshot {
        routes: routes.into_iter().map(RouteBuilder::build).collect(),
        backends: BackendPolicy::Cluster {
            allow_static: false,
        },
        ..Snapshot::default()
    })
}

impl ClusterBuilder {
    fn allow_static(mut self) -> Self {
        self.0.backends = BackendPolicy::Cluster { allow_static: true };
        self
    }

    /// A Service with these `(name, port)` ports.
    fn service(mut self, namespace: &str, name: &str, ports: &[(Option<&str>, i32)]) -> Self {
        let ports = ports
            .iter()
            .map(|(name, port)| ServicePortInfo {
                name: name.map(str::to_owned),
                port: *port,
                app_protocol: None,
            })
            .collect();
        self.0.services.insert(
            (namespace.to_owned(), name.to_owned()),
            ServiceInfo { ports },
        );
        self
    }

    /// An EndpointSlice of Service `namespace/service`.
    fn slice(
        mut self,
        namespace: &str,
        service: &str,
        ports: &[(Option<&str>, i32)],
        endpoints: Vec<EndpointInfo>,
    ) -> Self {
        let ports = ports
            .iter()
            .map(|(name, port)| (name.map(str::to_owned), *port))
            .collect();
        self.0
            .endpoints
            .entry((namespace.to_owned(), service.to_owned()))
            .or_default()
            .push(EndpointSliceInfo { ports, endpoints });
        self
    }

    fn build(self) -> Snapshot {
        self.0
    }
}

fn ready(address: &str) -> EndpointInfo {
    EndpointInfo {
        addresses: vec![address.to_owned()],
        ready: true,
        terminating: false,
    }
}

fn not_ready(address: &str) -> EndpointInfo {
    EndpointInfo {
        ready: false,
        ..ready(address)
    }
}

/// Still ready (serving its last requests) but on its way out.
fn terminating(address: &str) -> EndpointInfo {
    EndpointInfo {
        terminating: true,
        ..ready(address)
    }
}

fn service_backend(name: &str, port: IntOrString) -> Backend {
    Backend {
        service: Some(name.to_owned()),
        port: Some(port),
        address: None,
        weight: 1,
        protocol: None,
        tls: None,
    }
}

/// A route `shop/{name}` for host `{name}.com` with one rule sending to
/// these backends.
fn service_route(name: &str, position: u64, backends: Vec<Backend>) -> RouteBuilder {
    route("shop", name, position)
        .hosts(&[&format!("{name}.com")])
        .raw_rule(RouteRule {
            backends,
            ..RouteRule::default()
        })
}

/// The endpoints serving `GET host/`, or the 503 reason.
fn served(table: &RouteTable, host: &str) -> Result<Vec<String>, String> {
    let rule = table
        .find(Some(host), &Method::GET, "/", &HeaderMap::new())
        .expect("a rule matches");
    match &rule.backends {
        Backends::Ready { targets, .. } => {
            Ok(targets.iter().map(|t| t.authority.to_string()).collect())
        }
        Backends::Unavailable { reason } => Err(reason.to_string()),
    }
}

/// The conditions as `(type, status, reason)`.
fn conditions(status: &RouteStatus) -> Vec<(String, String, String)> {
    status
        .conditions()
        .into_iter()
        .map(|c| (c.kind, c.status, c.reason))
        .collect()
}

fn triples(want: [(&str, &str, &str); 4]) -> Vec<(String, String, String)> {
    want.iter()
        .map(|(k, s, r)| ((*k).to_owned(), (*s).to_owned(), (*r).to_owned()))
        .collect()
}

/// The backend port of the rule a request lands on, or `None` for 404.
fn lands(
    table: &RouteTable,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<u16> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let rule = table.find(Some(host), &method, path, &map)?;
    Some(pick(&rule.backends)?.authority.port_u16().unwrap())
}

/// The target a plain request from 127.0.0.1 gets, or `None` (503).
fn pick(backends: &Backends) -> Option<&super::super::Target> {
    let headers = HeaderMap::new();
    let cx = crate::table::PickContext {
        client: std::net::Ipv4Addr::LOCALHOST.into(),
        headers: &headers,
        query: None,
        now: tokio::time::Instant::now(),
    };
    backends.pick(&cx).ok().map(|p| p.target)
}

fn reasons(compiled: &Compiled) -> Vec<(String, Reason)> {
    compiled
        .statuses
        .iter()
        .map(|s| (format!("{}/{}", s.namespace, s.name), s.reason))
        .collect()
}
