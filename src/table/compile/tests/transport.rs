//! Compile tests: how backends are spoken to — `protocol` and the Service
//! port's `appProtocol` — and the `ResolvedRefs` conditions they give;
//! the fixtures `backend_tls` shares.

use super::*;
use crate::api::{BackendProtocol, BackendTls};
use crate::upstream::{Protocol, Transport};

/// Service `shop/{name}` with port 80 (`appProtocol` as given) and one
/// ready endpoint `10.0.{n}.1:8080`, `n` its position in `services`.
pub(super) fn cluster_with(
    routes: Vec<RouteBuilder>,
    services: &[(&str, Option<&str>)],
) -> Snapshot {
    let mut c = cluster(routes);
    for (n, (name, _)) in services.iter().enumerate() {
        c = c.service("shop", name, &[(Some("http"), 80)]).slice(
            "shop",
            name,
            &[(Some("http"), 8080)],
            vec![ready(&format!("10.0.{n}.1"))],
        );
    }
    let mut s = c.build();
    for (name, app_protocol) in services {
        let key = ("shop".to_owned(), (*name).to_owned());
        let port = &mut s.services.get_mut(&key).unwrap().ports[0];
        port.app_protocol = app_protocol.map(str::to_owned);
    }
    s
}

pub(super) fn svc(name: &str) -> Backend {
    service_backend(name, IntOrString::Int(80))
}

/// The transports of the targets serving `GET host/`, by endpoint.
pub(super) fn transports(table: &RouteTable, host: &str) -> Vec<(String, Transport)> {
    let rule = (table.find(Some(host), &Method::GET, "/", &HeaderMap::new())).expect("a rule");
    (rule.backends.targets().iter())
        .map(|t| (t.authority.to_string(), t.pool.transport().clone()))
        .collect()
}

pub(super) fn protocols(table: &RouteTable, host: &str) -> Vec<Protocol> {
    (transports(table, host).into_iter())
        .map(|(_, t)| t.protocol)
        .collect()
}

pub(super) fn status<'c>(compiled: &'c Compiled, name: &str) -> &'c RouteStatus {
    compiled.statuses.iter().find(|s| s.name == name).unwrap()
}

pub(super) fn condition(
    compiled: &Compiled,
    name: &str,
    kind: &str,
) -> Option<(String, String, String)> {
    (status(compiled, name).conditions().into_iter())
        .find(|c| c.kind == kind)
        .map(|c| (c.status, c.reason, c.message))
}

pub(super) fn error_fields(compiled: &Compiled, name: &str) -> Vec<String> {
    (status(compiled, name).errors.iter())
        .map(|e| e.field.to_string())
        .collect()
}
#[test]
fn protocol_defaults_to_http_for_services_and_addresses() {
    let s = cluster_with(
        vec![service_route("mango", 1, vec![svc("a")])],
        &[("a", None)],
    );
    let compiled = compile(&s, &RouteTable::default(), 0);
    assert_eq!(
        transports(&compiled.table, "mango.com"),
        [("10.0.0.1:8080".to_owned(), Transport::default())]
    );
    let s = snapshot(vec![route("shop", "static", 1)
        .hosts(&["s.com"])
        .rule(vec![], 9)]);
    let compiled = compile(&s, &RouteTable::default(), 0);
    assert_eq!(protocols(&compiled.table, "s.com"), [Protocol::Http1]);
    assert_eq!(condition(&compiled, "static", "BackendTLSVerified"), None);
}

#[test]
fn app_protocol_names_the_protocol_case_insensitively() {
    let cases = [
        ("http", Protocol::Http1),
        ("kubernetes.io/ws", Protocol::Http1),
        ("kubernetes.io/h2c", Protocol::H2c),
        ("Kubernetes.io/H2C", Protocol::H2c),
    ];
    for (app_protocol, want) in cases {
        let s = cluster_with(
            vec![service_route("mango", 1, vec![svc("a")])],
            &[("a", Some(app_protocol))],
        );
        let compiled = compile(&s, &RouteTable::default(), 0);
        assert_eq!(
            protocols(&compiled.table, "mango.com"),
            [want],
            "{app_protocol}"
        );
        assert!(compiled.is_clean(), "{app_protocol}");
    }
}

#[test]
fn unknown_app_protocol_is_unsupported_and_the_other_backends_are_still_served() {
    let route = service_route("mango", 1, vec![svc("grpc"), svc("plain")]);
    let s = cluster_with(vec![route], &[("grpc", Some("grpc")), ("plain", None)]);
    let compiled = compile(&s, &RouteTable::default(), 0);
    assert!(compiled.is_clean(), "the route is served");
    assert_eq!(
        served(&compiled.table, "mango.com"),
        Ok(vec!["10.0.1.1:8080".to_owned()]),
        "only the plain backend's endpoint"
    );
    let (state, reason, message) = condition(&compiled, "mango", "ResolvedRefs").unwrap();
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "UnsupportedProtocol")
    );
    assert!(message.contains("\"grpc\""), "names the value: {message}");
    assert!(
        message.contains("`protocol: "),
        "suggests protocol: {message}"
    );
    assert!(
        message.starts_with("spec.rules[0].backends[0]: "),
        "{message}"
    );
    assert_eq!(condition(&compiled, "mango", "BackendTLSVerified"), None);
}

#[test]
fn explicit_protocol_wins_over_app_protocol() {
    let cases = [
        ("grpc", BackendProtocol::H2c, Protocol::H2c),
        ("https", BackendProtocol::Http, Protocol::Http1),
        ("kubernetes.io/h2c", BackendProtocol::Http, Protocol::Http1),
    ];
    for (app_protocol, explicit, want) in cases {
        let backend = Backend {
            protocol: Some(explicit),
            ..svc("a")
        };
        let route = service_route("mango", 1, vec![backend]);
        let s = cluster_with(vec![route], &[("a", Some(app_protocol))]);
        let compiled = compile(&s, &RouteTable::default(), 0);
        assert_eq!(
            protocols(&compiled.table, "mango.com"),
            [want],
            "{app_protocol}"
        );
        let (state, ..) = condition(&compiled, "mango", "ResolvedRefs").unwrap();
        assert_eq!(state, "True", "{app_protocol}");
    }
}

#[test]
fn https_app_protocol_without_hostname_is_invalid_backend_tls() {
    let route = service_route("mango", 1, vec![svc("a")]);
    let s = cluster_with(vec![route], &[("a", Some("HTTPS"))]);
    let compiled = compile(&s, &RouteTable::default(), 0);
    assert!(
        served(&compiled.table, "mango.com").is_err(),
        "no endpoints"
    );
    let (state, reason, message) = condition(&compiled, "mango", "ResolvedRefs").unwrap();
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "InvalidBackendTLS")
    );
    assert!(message.contains("tls.hostname"), "{message}");
    let (state, reason, _) = condition(&compiled, "mango", "BackendTLSVerified").unwrap();
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "InvalidBackendTLS")
    );
    assert_eq!(status(&compiled, "mango").reason, Reason::Accepted);
    assert_eq!(
        error_fields(&compiled, "mango"),
        ["spec.rules[0].backends[0].tls.hostname"],
        "located for check"
    );
}

#[test]
fn https_service_with_hostname_is_verified_against_the_system_roots() {
    let tls = BackendTls {
        hostname: Some("api.shop.svc".to_owned()),
        ..BackendTls::default()
    };
    let backend = Backend {
        tls: Some(tls),
        ..svc("a")
    };
    let s = cluster_with(
        vec![service_route("mango", 1, vec![backend])],
        &[("a", Some("kubernetes.io/wss"))],
    );
    let compiled = compile(&s, &RouteTable::default(), 0);
    let (_, transport) = transports(&compiled.table, "mango.com").remove(0);
    assert_eq!(transport.protocol, Protocol::Https);
    let tls = transport.tls.unwrap();
    assert_eq!(
        (&*tls.server_name, tls.ca_pem.is_none()),
        ("api.shop.svc", true)
    );
    let (state, reason, _) = condition(&compiled, "mango", "BackendTLSVerified").unwrap();
    assert_eq!((state.as_str(), reason.as_str()), ("True", "Verified"));
}
