//! Compile tests: snapshot in, table and statuses out. Each rule of a
//! fixture routes to its own backend port, so a lookup says which rule won.

use std::collections::HashMap;
use std::time::Duration;

use http::Method;

use super::super::Backends;
use super::*;
use crate::api::values::parse_duration;
use crate::api::{
    Algorithm, Backend, HashOn, HashOnType, HeaderMatch, HeaderMatchType, LoadBalancerRouteSpec,
    LoadBalancing, PathMatch, PathMatchType, RouteMatch, RouteRule, Sticky, StickyCookie,
};
use crate::snapshot::{
    Age, BackendPolicy, EndpointInfo, EndpointSliceInfo, ServiceInfo, ServicePortInfo,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

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
        spec: LoadBalancerRouteSpec::default(),
    })
}

impl RouteBuilder {
    fn hosts(mut self, hosts: &[&str]) -> Self {
        self.0.spec.hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        self
    }

    /// A rule with these matches, sending to `127.0.0.1:{port}`.
    fn rule(mut self, matches: Vec<RouteMatch>, port: u16) -> Self {
        self.0.spec.rules.push(RouteRule {
            matches,
            backends: vec![address(&format!("127.0.0.1:{port}"))],
            ..RouteRule::default()
        });
        self
    }

    fn raw_rule(mut self, rule: RouteRule) -> Self {
        self.0.spec.rules.push(rule);
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

fn triples(want: [(&str, &str, &str); 3]) -> Vec<(String, String, String)> {
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

// === precedence ===

#[test]
fn precedence_follows_gateway_api_order() {
    use PathMatchType::*;
    // (case, rules as (match, port), request (method, path, headers), expected port)
    type Case<'a> = (
        &'a str,
        Vec<(RouteMatch, u16)>,
        (&'a str, &'a str, Vec<(&'a str, &'a str)>),
        Option<u16>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "exact beats prefix",
            vec![(prefix("/foo"), 1), (path(Exact, "/foo/bar"), 2)],
            ("GET", "/foo/bar", vec![]),
            Some(2),
        ),
        (
            "prefix serves what exact does not",
            vec![(prefix("/foo"), 1), (path(Exact, "/foo/bar"), 2)],
            ("GET", "/foo/baz", vec![]),
            Some(1),
        ),
        (
            "longest prefix wins",
            vec![(prefix("/foo"), 1), (prefix("/foo/bar"), 2)],
            ("GET", "/foo/bar/x", vec![]),
            Some(2),
        ),
        (
            "shorter prefix serves the rest",
            vec![(prefix("/foo"), 1), (prefix("/foo/bar"), 2)],
            ("GET", "/foo/barn", vec![]),
            Some(1),
        ),
        (
            "prefix beats regex",
            vec![(path(RegularExpression, "/foo/.*"), 1), (prefix("/foo"), 2)],
            ("GET", "/foo/x", vec![]),
            Some(2),
        ),
        (
            "regex serves what no prefix does",
            vec![
                (path(RegularExpression, "/v[0-9]+/.*"), 1),
                (prefix("/foo"), 2),
            ],
            ("GET", "/v2/x", vec![]),
            Some(1),
        ),
        (
            "method match beats none",
            vec![(prefix("/"), 1), (with_methods(prefix("/"), &["POST"]), 2)],
            ("POST", "/", vec![]),
            Some(2),
        ),
        (
            "other methods fall through",
            vec![(prefix("/"), 1), (with_methods(prefix("/"), &["POST"]), 2)],
            ("GET", "/", vec![]),
            Some(1),
        ),
        (
            "more headers win",
            vec![
                (with_headers(prefix("/"), &[("x-a", "1")]), 1),
                (with_headers(prefix("/"), &[("x-a", "1"), ("x-b", "1")]), 2),
            ],
            ("GET", "/", vec![("x-a", "1"), ("x-b", "1")]),
            Some(2),
        ),
        (
            "fewer headers serve partial matches",
            vec![
                (with_headers(prefix("/"), &[("x-a", "1")]), 1),
                (with_headers(prefix("/"), &[("x-a", "1"), ("x-b", "1")]), 2),
            ],
            ("GET", "/", vec![("x-a", "1")]),
            Some(1),
        ),
        (
            "path precedence outranks headers",
            vec![
                (with_headers(prefix("/"), &[("x-a", "1")]), 1),
                (prefix("/foo"), 2),
            ],
            ("GET", "/foo", vec![("x-a", "1")]),
            Some(2),
        ),
        (
            "first declared wins a full tie",
            vec![
                (with_headers(prefix("/"), &[("x-a", "1")]), 1),
                (with_headers(prefix("/"), &[("x-b", "1")]), 2),
            ],
            ("GET", "/", vec![("x-a", "1"), ("x-b", "1")]),
            Some(1),
        ),
        (
            "nothing matches",
            vec![(prefix("/foo"), 1)],
            ("GET", "/foobar", vec![]),
            None,
        ),
    ];
    for (case, rules, (method, path, headers), want) in cases {
        let mut r = route("default", "r", 1).hosts(&["www.mango.com"]);
        for (m, port) in rules {
            r = r.rule(vec![m], port);
        }
        let compiled = compile(&snapshot(vec![r]), &RouteTable::default());
        assert!(compiled.is_clean(), "case {case}: {:?}", compiled.statuses);
        assert_eq!(
            lands(&compiled.table, "www.mango.com", method, path, &headers),
            want,
            "case {case}"
        );
    }
}

#[test]
fn older_route_wins_a_precedence_tie_then_namespace_and_name() {
    let a = |position| {
        route("shop", "a", position).rule(vec![with_headers(prefix("/"), &[("x-a", "1")])], 1)
    };
    let b = |position| {
        route("shop", "b", position).rule(vec![with_headers(prefix("/"), &[("x-b", "1")])], 2)
    };
    let both = [("x-a", "1"), ("x-b", "1")];
    let t = compile(&snapshot(vec![b(1), a(2)]), &RouteTable::default()).table;
    assert_eq!(lands(&t, "any", "GET", "/", &both), Some(2), "b is older");
    let t = compile(&snapshot(vec![b(1), a(1)]), &RouteTable::default()).table;
    assert_eq!(
        lands(&t, "any", "GET", "/", &both),
        Some(1),
        "same age: shop/a sorts first"
    );
}

#[test]
fn hosts_pick_the_most_specific_bucket_without_fallback() {
    let t = compile(
        &snapshot(vec![
            route("default", "exact", 1)
                .hosts(&["www.mango.com"])
                .rule(vec![prefix("/only")], 1),
            route("default", "wild", 2)
                .hosts(&["*.mango.com"])
                .rule(vec![], 2),
            route("default", "deeper", 3)
                .hosts(&["*.eu.mango.com"])
                .rule(vec![], 3),
            route("default", "any", 4).rule(vec![], 4),
        ]),
        &RouteTable::default(),
    )
    .table;
    for (host, path, want) in [
        ("www.mango.com", "/only", Some(1)),
        ("WWW.Mango.Com:8443", "/only/x", Some(1)),
        ("www.mango.com", "/other", None), // exact host chosen; no fallback
        ("shop.mango.com", "/", Some(2)),
        ("a.b.mango.com", "/", Some(2)),
        ("shop.eu.mango.com", "/", Some(3)),
        ("mango.com", "/", Some(4)), // the wildcard needs a label before it
        ("www.apple.com", "/", Some(4)),
    ] {
        assert_eq!(lands(&t, host, "GET", path, &[]), want, "case {host}{path}");
    }
}

// === conflicts ===

#[test]
fn younger_route_claiming_the_same_host_and_match_is_conflicted() {
    let older = route("team-a", "mango", 1)
        .hosts(&["www.mango.com"])
        .rule(vec![prefix("/")], 1);
    let younger = route("team-b", "mango", 2)
        .hosts(&["WWW.MANGO.COM", "other.com"])
        .rule(vec![prefix("/")], 2);
    // Listed younger first: age decides, not snapshot order.
    let compiled = compile(&snapshot(vec![younger, older]), &RouteTable::default());
    assert_eq!(
        reasons(&compiled),
        [
            ("team-a/mango".to_owned(), Reason::Accepted),
            ("team-b/mango".to_owned(), Reason::Conflicted)
        ]
    );
    let conflict = &compiled.statuses[1].errors[0];
    assert_eq!(conflict.field, "spec.rules[0].matches[0]");
    assert!(
        conflict.message.contains("older route team-a/mango"),
        "{}",
        conflict.message
    );
    assert_eq!(
        lands(&compiled.table, "www.mango.com", "GET", "/", &[]),
        Some(1)
    );
    assert_eq!(
        lands(&compiled.table, "other.com", "GET", "/", &[]),
        None,
        "rejected whole"
    );
}

#[test]
fn different_matches_or_hosts_do_not_conflict() {
    let compiled = compile(
        &snapshot(vec![
            route("a", "r", 1)
                .hosts(&["www.mango.com"])
                .rule(vec![prefix("/")], 1),
            route("b", "r", 2)
                .hosts(&["www.mango.com"])
                .rule(vec![prefix("/b")], 2),
            route("c", "r", 3)
                .hosts(&["www.apple.com"])
                .rule(vec![prefix("/")], 3),
            route("d", "r", 4)
                .hosts(&["www.mango.com"])
                .rule(vec![with_methods(prefix("/"), &["GET"])], 4),
        ]),
        &RouteTable::default(),
    );
    assert!(compiled.is_clean(), "{:?}", compiled.statuses);
}

#[test]
fn prefix_with_and_without_trailing_slash_is_the_same_match() {
    let compiled = compile(
        &snapshot(vec![
            route("a", "r", 1).rule(vec![prefix("/foo")], 1),
            route("b", "r", 2).rule(vec![prefix("/foo/")], 2),
        ]),
        &RouteTable::default(),
    );
    assert_eq!(compiled.statuses[1].reason, Reason::Conflicted);
}

#[test]
fn duplicate_match_inside_one_route_is_invalid() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1)
            .rule(vec![prefix("/x")], 1)
            .rule(vec![prefix("/x")], 2)]),
        &RouteTable::default(),
    );
    assert_eq!(compiled.statuses[0].reason, Reason::Invalid);
    assert_eq!(
        compiled.statuses[0].errors[0].field,
        "spec.rules[1].matches[0]"
    );
}

// === invalid input ===

#[test]
fn invalid_route_is_rejected_alone_with_every_error_named() {
    let bad = route("shop", "bad", 1)
        .hosts(&["ok.com", "bad host"])
        .raw_rule(RouteRule {
            matches: vec![
                path(PathMatchType::RegularExpression, "/(unclosed"),
                with_headers(prefix("/"), &[("bad header", "x")]),
                with_methods(prefix("/m"), &["GE T"]),
            ],
            backends: vec![
                address("nohost"),
                Backend {
                    service: Some("mango".into()),
                    port: None,
                    address: None,
                    weight: 1,
                },
                Backend {
                    weight: 5000,
                    ..address("127.0.0.1:1")
                },
            ],
            timeouts: Some(api::Timeouts {
                connect: Some("250 ms".into()),
                request: Some("soon".into()),
                idle: Some("0s".into()),
                total: Some("5 parsecs".into()),
            }),
            ..RouteRule::default()
        });
    let good = route("shop", "good", 2)
        .hosts(&["good.com"])
        .rule(vec![], 7);
    let compiled = compile(&snapshot(vec![bad, good]), &RouteTable::default());
    assert_eq!(compiled.statuses[0].reason, Reason::Invalid);
    let fields: Vec<&str> = compiled.statuses[0]
        .errors
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.hosts[1]",
            "spec.rules[0].matches[0].path.value",
            "spec.rules[0].matches[1].headers[0].name",
            "spec.rules[0].matches[2].methods[0]",
            "spec.rules[0].backends[0].address",
            "spec.rules[0].backends[1].service",
            "spec.rules[0].backends[2].weight",
            "spec.rules[0].timeouts.connect",
            "spec.rules[0].timeouts.request",
            "spec.rules[0].timeouts.idle",
            "spec.rules[0].timeouts.total",
        ]
    );
    let service = &compiled.statuses[0].errors[5].message;
    assert!(service.contains("standalone mode"), "{service}");
    assert_eq!(compiled.statuses[1].reason, Reason::Accepted);
    assert_eq!(lands(&compiled.table, "good.com", "GET", "/", &[]), Some(7));
    assert_eq!(lands(&compiled.table, "ok.com", "GET", "/", &[]), None);
}

#[test]
fn lower_case_standard_method_is_rejected_as_a_typo() {
    let compiled = compile(
        &snapshot(vec![
            route("a", "r", 1).rule(vec![with_methods(prefix("/"), &["get", "PURGE"])], 1)
        ]),
        &RouteTable::default(),
    );
    assert_eq!(
        compiled.statuses[0].errors.len(),
        1,
        "{:?}",
        compiled.statuses
    );
    assert_eq!(
        compiled.statuses[0].errors[0].field,
        "spec.rules[0].matches[0].methods[0]"
    );
}

#[test]
fn conflict_on_an_omitted_match_names_the_rule() {
    let compiled = compile(
        &snapshot(vec![
            route("a", "r", 1).rule(vec![], 1),
            route("b", "r", 2).rule(vec![], 2),
        ]),
        &RouteTable::default(),
    );
    assert_eq!(compiled.statuses[1].errors[0].field, "spec.rules[0]");
}

#[test]
fn same_address_twice_in_a_new_route_shares_one_state() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1)
            .rule(vec![prefix("/x")], 1)
            .rule(vec![prefix("/y")], 1)]),
        &RouteTable::default(),
    );
    let state = |path: &str| {
        let rule = compiled
            .table
            .find(Some("h"), &Method::GET, path, &HeaderMap::new())
            .unwrap();
        Arc::clone(&pick(&rule.backends).unwrap().state)
    };
    assert!(Arc::ptr_eq(&state("/x"), &state("/y")));
}

#[test]
fn same_name_twice_keeps_the_first() {
    let compiled = compile(
        &snapshot(vec![
            route("a", "r", 1).rule(vec![], 1),
            route("a", "r", 2).hosts(&["x.com"]).rule(vec![], 2),
        ]),
        &RouteTable::default(),
    );
    assert_eq!(compiled.statuses[1].reason, Reason::Invalid);
    assert_eq!(compiled.statuses[1].errors[0].field, "metadata.name");
}

#[test]
fn rule_without_backends_compiles_to_unavailable() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1).raw_rule(RouteRule::default())]),
        &RouteTable::default(),
    );
    assert!(compiled.is_clean());
    let rule = compiled
        .table
        .find(Some("x"), &Method::GET, "/", &HeaderMap::new())
        .unwrap();
    assert!(matches!(rule.backends, Backends::Unavailable { .. }));
}

#[test]
fn endpoint_state_survives_recompiles_and_weight_edits() {
    let first = compile(
        &snapshot(vec![route("a", "r", 1).rule(vec![], 1)]),
        &RouteTable::default(),
    );
    let rule = route("a", "r", 1).raw_rule(RouteRule {
        backends: vec![
            Backend {
                weight: 7,
                ..address("127.0.0.1:1")
            },
            address("127.0.0.1:2"),
        ],
        ..RouteRule::default()
    });
    let second = compile(&snapshot(vec![rule]), &first.table);
    let state = |t: &RouteTable| t.endpoints.get("127.0.0.1:1").cloned().unwrap();
    assert!(Arc::ptr_eq(&state(&first.table), &state(&second.table)));
}

#[test]
fn durations_parse_in_go_style() {
    for (text, want) in [
        ("250ms", 250),
        ("2s", 2000),
        ("1m30s", 90_000),
        ("1h", 3_600_000),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(want)),
            "case {text}"
        );
    }
    for bad in ["", "10", "s", "1d", "0s", "-1s", "1.5s"] {
        assert!(parse_duration(bad).is_err(), "case {bad:?}");
    }
}

// === service backends (cluster mode) ===

#[test]
fn service_backends_resolve_to_ready_endpoints() {
    let num = IntOrString::Int;
    let name = |n: &str| IntOrString::String(n.to_owned());
    // (case, backend, served endpoints)
    let cases = [
        (
            "by port number; not-ready and terminating left out; deduplicated across slices",
            service_backend("mango", num(80)),
            vec!["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.5:8080"],
        ),
        (
            "by port name selects the slice port of that name",
            service_backend("mango", name("admin")),
            vec!["10.0.0.1:9090", "10.0.0.2:9090", "10.0.0.5:9090"],
        ),
        (
            "a quoted number is a number",
            service_backend("mango", name("9000")),
            vec!["10.0.0.1:9090", "10.0.0.2:9090", "10.0.0.5:9090"],
        ),
        (
            "an unnamed port matches the unnamed (or empty-named) slice port",
            service_backend("plain", num(80)),
            vec!["10.0.1.1:3000", "10.0.1.2:3000"],
        ),
        (
            "IPv6 endpoints are bracketed, in canonical spelling",
            service_backend("six", num(80)),
            vec!["[fd00::1]:8080", "[fd00::2]:8080"],
        ),
    ];
    let mango_ports = [(Some("http"), 8080), (Some("admin"), 9090)];
    for reversed in [false, true] {
        let mut slices = vec![
            vec![
                ready("10.0.0.2"),
                ready("10.0.0.1"),
                not_ready("10.0.0.3"),
                terminating("10.0.0.4"),
            ],
            vec![ready("10.0.0.1"), ready("10.0.0.5")],
        ];
        if reversed {
            slices.reverse();
        }
        for (case, backend, want) in &cases {
            let mut c = cluster(vec![service_route("r", 1, vec![backend.clone()])])
                .service(
                    "shop",
                    "mango",
                    &[(Some("http"), 80), (Some("admin"), 9000)],
                )
                .service("shop", "plain", &[(None, 80)])
                .service("shop", "six", &[(None, 80)])
                .slice("shop", "plain", &[(None, 3000)], vec![ready("10.0.1.2")])
                .slice(
                    "shop",
                    "plain",
                    &[(Some(""), 3000)],
                    vec![ready("10.0.1.1")],
                )
                .slice(
                    "shop",
                    "six",
                    &[(None, 8080)],
                    vec![ready("FD00:0::2"), ready("fd00::1")],
                );
            for endpoints in &slices {
                c = c.slice("shop", "mango", &mango_ports, endpoints.clone());
            }
            let compiled = compile(&c.build(), &RouteTable::default());
            assert!(compiled.is_clean(), "case {case}: {:?}", compiled.statuses);
            assert_eq!(
                served(&compiled.table, "r.com"),
                Ok(want.iter().map(|s| (*s).to_owned()).collect()),
                "case {case} (slices reversed: {reversed})"
            );
            let status = &compiled.statuses[0];
            assert_eq!(status.ready_endpoints, want.len(), "case {case}");
            assert_eq!(
                conditions(status),
                triples([
                    ("Accepted", "True", "Accepted"),
                    ("ResolvedRefs", "True", "ResolvedRefs"),
                    ("Ready", "True", "Ready"),
                ]),
                "case {case}"
            );
        }
    }
}

#[test]
fn route_leaves_unavailable_when_its_service_appears() {
    let routes = || {
        vec![service_route(
            "mango",
            1,
            vec![service_backend("mango", IntOrString::Int(80))],
        )]
    };
    let first = compile(&cluster(routes()).build(), &RouteTable::default());
    let status = &first.statuses[0];
    assert!(
        status.accepted(),
        "a missing Service does not reject the route"
    );
    assert_eq!(
        served(&first.table, "mango.com"),
        Err("service shop/mango not found".to_owned())
    );
    assert_eq!(
        conditions(status),
        triples([
            ("Accepted", "True", "Accepted"),
            ("ResolvedRefs", "False", "BackendNotFound"),
            ("Ready", "False", "NoReadyEndpoints"),
        ])
    );
    assert_eq!(
        status.resolved_refs.message,
        "spec.rules[0].backends[0]: service shop/mango not found"
    );
    assert!(
        status
            .ready
            .message
            .contains("spec.rules[0]: service shop/mango not found"),
        "{}",
        status.ready.message
    );

    let second = compile(
        &cluster(routes())
            .service("shop", "mango", &[(None, 80)])
            .slice(
                "shop",
                "mango",
                &[(None, 8080)],
                vec![ready("10.0.0.1"), ready("10.0.0.2")],
            )
            .build(),
        &first.table,
    );
    assert_eq!(
        served(&second.table, "mango.com"),
        Ok(vec!["10.0.0.1:8080".to_owned(), "10.0.0.2:8080".to_owned()])
    );
    let status = &second.statuses[0];
    assert_eq!(
        conditions(status),
        triples([
            ("Accepted", "True", "Accepted"),
            ("ResolvedRefs", "True", "ResolvedRefs"),
            ("Ready", "True", "Ready"),
        ])
    );
    assert_eq!(status.ready_endpoints, 2);
    assert_eq!(
        status.ready.message,
        "every rule can answer; 2 ready endpoints"
    );
}

#[test]
fn service_without_ready_endpoints_is_unavailable_and_not_ready() {
    let compiled = compile(
        &cluster(vec![service_route(
            "mango",
            1,
            vec![service_backend("mango", IntOrString::Int(80))],
        )])
        .service("shop", "mango", &[(None, 80)])
        .slice(
            "shop",
            "mango",
            &[(None, 8080)],
            vec![not_ready("10.0.0.1"), terminating("10.0.0.2")],
        )
        .build(),
        &RouteTable::default(),
    );
    assert_eq!(
        served(&compiled.table, "mango.com"),
        Err("no ready endpoints for service shop/mango".to_owned())
    );
    let status = &compiled.statuses[0];
    assert_eq!(
        conditions(status),
        triples([
            ("Accepted", "True", "Accepted"),
            ("ResolvedRefs", "True", "ResolvedRefs"),
            ("Ready", "False", "NoReadyEndpoints"),
        ])
    );
    assert_eq!(status.ready_endpoints, 0);
    assert!(
        status
            .ready
            .message
            .contains("spec.rules[0]: no ready endpoints for service shop/mango"),
        "{}",
        status.ready.message
    );
}

#[test]
fn service_without_the_port_is_an_invalid_backend() {
    for (case, port) in [
        ("number", IntOrString::Int(81)),
        ("name", IntOrString::String("grpc".to_owned())),
    ] {
        let compiled = compile(
            &cluster(vec![service_route(
                "mango",
                1,
                vec![service_backend("mango", port)],
            )])
            .service("shop", "mango", &[(Some("http"), 80), (None, 443)])
            .slice(
                "shop",
                "mango",
                &[(Some("http"), 8080)],
                vec![ready("10.0.0.1")],
            )
            .build(),
            &RouteTable::default(),
        );
        let status = &compiled.statuses[0];
        assert!(status.accepted(), "case {case}");
        assert_eq!(
            conditions(status),
            triples([
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "False", "InvalidBackend"),
                ("Ready", "False", "NoReadyEndpoints"),
            ]),
            "case {case}"
        );
        assert!(
            status
                .resolved_refs
                .message
                .contains("its ports are 80 (http), 443"),
            "case {case}: {}",
            status.resolved_refs.message
        );
        assert!(served(&compiled.table, "mango.com").is_err(), "case {case}");
    }
}

#[test]
fn backend_references_are_checked_against_the_mode() {
    let cluster_only = BackendPolicy::Cluster {
        allow_static: false,
    };
    let with_static = BackendPolicy::Cluster { allow_static: true };
    let no_port = Backend {
        port: None,
        ..service_backend("mango", IntOrString::Int(80))
    };
    // (case, mode, backend, the field error, or None when accepted)
    let cases = [
        (
            "static refused in a cluster",
            cluster_only,
            address("10.9.9.9:80"),
            Some((
                "spec.rules[0].backends[0].address",
                "--allow-static-backends",
            )),
        ),
        (
            "static allowed by the flag",
            with_static,
            address("10.9.9.9:80"),
            None,
        ),
        (
            "service in standalone",
            BackendPolicy::StaticOnly,
            service_backend("mango", IntOrString::Int(80)),
            Some(("spec.rules[0].backends[0].service", "standalone mode")),
        ),
        (
            "service without a port",
            cluster_only,
            no_port,
            Some(("spec.rules[0].backends[0].port", "needs a `port`")),
        ),
        (
            "port out of range",
            cluster_only,
            service_backend("mango", IntOrString::Int(70000)),
            Some(("spec.rules[0].backends[0].port", "not a port number")),
        ),
        (
            "neither service nor address",
            cluster_only,
            Backend {
                service: None,
                port: None,
                address: None,
                weight: 1,
            },
            Some(("spec.rules[0].backends[0]", "`service` and a `port`")),
        ),
        (
            "service resolves in a cluster",
            cluster_only,
            service_backend("mango", IntOrString::Int(80)),
            None,
        ),
    ];
    for (case, mode, backend, want) in cases {
        let mut snapshot = cluster(vec![service_route("r", 1, vec![backend])])
            .service("shop", "mango", &[(None, 80)])
            .slice("shop", "mango", &[(None, 8080)], vec![ready("10.0.0.1")])
            .build();
        snapshot.backends = mode;
        let compiled = compile(&snapshot, &RouteTable::default());
        let status = &compiled.statuses[0];
        match want {
            None => {
                assert!(status.accepted(), "case {case}: {:?}", status.errors);
                assert!(served(&compiled.table, "r.com").is_ok(), "case {case}");
            }
            Some((field, message)) => {
                assert_eq!(status.reason, Reason::Invalid, "case {case}");
                assert_eq!(status.errors.len(), 1, "case {case}: {:?}", status.errors);
                assert_eq!(status.errors[0].field, field, "case {case}");
                assert!(
                    status.errors[0].message.contains(message),
                    "case {case}: {}",
                    status.errors[0].message
                );
            }
        }
    }
}

#[test]
fn endpoint_state_is_reused_by_address_across_endpoint_churn() {
    let snapshot = |endpoints: Vec<EndpointInfo>| {
        cluster(vec![service_route(
            "mango",
            1,
            vec![service_backend("mango", IntOrString::Int(80))],
        )])
        .service("shop", "mango", &[(None, 80)])
        .slice("shop", "mango", &[(None, 8080)], endpoints)
        .build()
    };
    let first = compile(
        &snapshot(vec![ready("10.0.0.1"), ready("10.0.0.2")]),
        &RouteTable::default(),
    );
    let second = compile(
        &snapshot(vec![ready("10.0.0.2"), ready("10.0.0.3")]),
        &first.table,
    );
    let state = |t: &RouteTable, key: &str| t.endpoints.get(key).cloned();
    assert!(Arc::ptr_eq(
        &state(&first.table, "10.0.0.2:8080").unwrap(),
        &state(&second.table, "10.0.0.2:8080").unwrap()
    ));
    assert!(
        state(&second.table, "10.0.0.1:8080").is_none(),
        "gone endpoints are dropped"
    );
    assert!(state(&second.table, "10.0.0.3:8080").is_some());
}

#[test]
fn a_missing_service_affects_only_its_own_route() {
    let compiled = compile(
        &cluster(vec![
            service_route(
                "mango",
                1,
                vec![service_backend("mango", IntOrString::Int(80))],
            ),
            service_route(
                "nosuch",
                2,
                vec![service_backend("nosuch", IntOrString::Int(80))],
            ),
        ])
        .service("shop", "mango", &[(None, 80)])
        .slice("shop", "mango", &[(None, 8080)], vec![ready("10.0.0.1")])
        .build(),
        &RouteTable::default(),
    );
    assert!(compiled.is_clean(), "{:?}", compiled.statuses);
    assert_eq!(
        served(&compiled.table, "mango.com"),
        Ok(vec!["10.0.0.1:8080".to_owned()])
    );
    assert_eq!(
        served(&compiled.table, "nosuch.com"),
        Err("service shop/nosuch not found".to_owned())
    );
    assert!(compiled.statuses[0].resolved_refs.status);
    assert!(compiled.statuses[0].ready.status);
    assert_eq!(compiled.statuses[1].resolved_refs.reason, "BackendNotFound");
}

#[test]
fn a_rule_with_one_missing_backend_still_serves_from_the_others() {
    let compiled = compile(
        &cluster(vec![service_route(
            "mango",
            1,
            vec![
                service_backend("nosuch", IntOrString::Int(80)),
                service_backend("mango", IntOrString::Int(80)),
            ],
        )])
        .service("shop", "mango", &[(None, 80)])
        .slice("shop", "mango", &[(None, 8080)], vec![ready("10.0.0.1")])
        .build(),
        &RouteTable::default(),
    );
    assert_eq!(
        served(&compiled.table, "mango.com"),
        Ok(vec!["10.0.0.1:8080".to_owned()])
    );
    assert_eq!(
        conditions(&compiled.statuses[0]),
        triples([
            ("Accepted", "True", "Accepted"),
            ("ResolvedRefs", "False", "BackendNotFound"),
            ("Ready", "True", "Ready"),
        ])
    );
}

// === conditions ===

#[test]
fn conditions_for_accepted_invalid_and_conflicted_routes() {
    let redirect = RouteRule {
        matches: vec![prefix("/old")],
        redirect: Some(api::Redirect {
            scheme: Some("https".to_owned()),
            ..api::Redirect::default()
        }),
        ..RouteRule::default()
    };
    let compiled = compile(
        &snapshot(vec![
            route("a", "served", 1)
                .hosts(&["a.com"])
                .rule(vec![], 1)
                .raw_rule(redirect),
            route("a", "empty", 2)
                .hosts(&["empty.com"])
                .raw_rule(RouteRule::default()),
            route("a", "invalid", 3)
                .hosts(&["bad host"])
                .raw_rule(RouteRule {
                    backends: vec![address("nohost")],
                    ..RouteRule::default()
                }),
            route("b", "conflicted", 4)
                .hosts(&["a.com"])
                .rule(vec![], 2),
        ]),
        &RouteTable::default(),
    );
    let by_name = |name: &str| {
        compiled
            .statuses
            .iter()
            .find(|s| s.name == name)
            .expect("status")
    };
    // (route, conditions)
    let cases = [
        (
            "served",
            [
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "True", "ResolvedRefs"),
                ("Ready", "True", "Ready"),
            ],
        ),
        (
            "empty",
            [
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "True", "ResolvedRefs"),
                ("Ready", "False", "NoBackends"),
            ],
        ),
        (
            "invalid",
            [
                ("Accepted", "False", "Invalid"),
                ("ResolvedRefs", "False", "Invalid"),
                ("Ready", "False", "Invalid"),
            ],
        ),
        (
            "conflicted",
            [
                ("Accepted", "False", "Conflicted"),
                ("ResolvedRefs", "False", "Conflicted"),
                ("Ready", "False", "Conflicted"),
            ],
        ),
    ];
    for (name, want) in cases {
        assert_eq!(conditions(by_name(name)), triples(want), "case {name}");
    }
    let messages = |name: &str| -> Vec<String> {
        by_name(name)
            .conditions()
            .into_iter()
            .map(|c| c.message)
            .collect()
    };
    assert_eq!(messages("served")[0], "the route is served");
    assert_eq!(by_name("served").ready_endpoints, 1);
    let invalid = &messages("invalid")[0];
    assert!(
        invalid.starts_with("spec.hosts[0]: ")
            && invalid.contains("; spec.rules[0].backends[0].address: "),
        "{invalid}"
    );
    assert!(
        messages("conflicted")[0].contains("older route a/served"),
        "{:?}",
        messages("conflicted")
    );
    assert!(
        messages("empty")[2].contains("spec.rules[0]: the rule has no backends"),
        "{:?}",
        messages("empty")
    );
    assert_eq!(by_name("conflicted").ready_endpoints, 0);
}

#[test]
fn status_serializes_for_the_routes_page() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1).rule(vec![], 1)]),
        &RouteTable::default(),
    );
    let json = serde_json::to_value(&compiled.statuses[0]).expect("serializes");
    assert_eq!(json["reason"], "Accepted");
    assert_eq!(json["ready"]["reason"], "Ready");
    assert_eq!(json["resolved_refs"]["status"], true);
    assert_eq!(json["ready_endpoints"], 1);
    assert!(json.get("origin").is_none());
}

#[test]
fn static_and_service_backends_mix_when_static_is_allowed() {
    let compiled = compile(
        &cluster(vec![service_route(
            "mango",
            1,
            vec![
                address("192.0.2.7:80"),
                service_backend("mango", IntOrString::Int(80)),
            ],
        )])
        .allow_static()
        .service("shop", "mango", &[(None, 80)])
        .slice("shop", "mango", &[(None, 8080)], vec![ready("10.0.0.1")])
        .build(),
        &RouteTable::default(),
    );
    assert!(compiled.is_clean(), "{:?}", compiled.statuses);
    assert_eq!(
        served(&compiled.table, "mango.com"),
        Ok(vec!["192.0.2.7:80".to_owned(), "10.0.0.1:8080".to_owned()])
    );
    assert_eq!(compiled.statuses[0].ready_endpoints, 2);
}

// === load balancing ===

fn weighted(mut backend: Backend, weight: u32) -> Backend {
    backend.weight = weight;
    backend
}

#[test]
fn backend_weights_split_traffic_whatever_the_endpoint_counts() {
    let snapshot = cluster(vec![service_route(
        "r",
        1,
        vec![
            weighted(service_backend("main", IntOrString::Int(80)), 90),
            weighted(service_backend("canary", IntOrString::Int(80)), 10),
        ],
    )])
    .service("shop", "main", &[(None, 80)])
    .slice(
        "shop",
        "main",
        &[(None, 8080)],
        vec![
            ready("10.0.0.1"),
            ready("10.0.0.2"),
            ready("10.0.0.3"),
            ready("10.0.0.4"),
        ],
    )
    .service("shop", "canary", &[(None, 80)])
    .slice("shop", "canary", &[(None, 8080)], vec![ready("10.0.9.1")])
    .build();
    let compiled = compile(&snapshot, &RouteTable::default());
    assert!(compiled.is_clean(), "{:?}", compiled.statuses);
    let rule = compiled
        .table
        .find(Some("r.com"), &Method::GET, "/", &HeaderMap::new())
        .unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..1000 {
        *seen
            .entry(pick(&rule.backends).unwrap().authority.to_string())
            .or_default() += 1;
    }
    assert_eq!(seen["10.0.9.1:8080"], 100, "{seen:?}");
    for main in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        assert_eq!(seen[&format!("{main}:8080")], 225, "{seen:?}");
    }
}

fn balanced_rule(load_balancing: LoadBalancing) -> RouteBuilder {
    route("a", "r", 1).raw_rule(RouteRule {
        backends: vec![address("127.0.0.1:1"), address("127.0.0.1:2")],
        load_balancing: Some(load_balancing),
        ..RouteRule::default()
    })
}

/// The `(field, message)` errors of the one route, or none.
fn field_errors(compiled: &Compiled) -> Vec<(String, String)> {
    compiled.statuses[0]
        .errors
        .iter()
        .map(|e| (e.field.to_string(), e.message.clone()))
        .collect()
}

#[test]
fn load_balancing_settings_are_validated_naming_the_field() {
    let lb = |algorithm,
              hash_on: Option<(HashOnType, Option<&str>)>,
              sticky: Option<(&str, Option<&str>)>| {
        LoadBalancing {
            algorithm,
            hash_on: hash_on.map(|(kind, name)| HashOn {
                kind,
                name: name.map(str::to_owned),
            }),
            sticky: sticky.map(|(name, ttl)| Sticky {
                cookie: StickyCookie {
                    name: name.to_owned(),
                    ttl: ttl.map(str::to_owned),
                },
            }),
        }
    };
    let cases: Vec<(&str, LoadBalancing, Option<&str>)> = vec![
        (
            "plain LeastTime",
            lb(Algorithm::LeastTime, None, None),
            None,
        ),
        (
            "hash on a header",
            lb(
                Algorithm::ConsistentHash,
                Some((HashOnType::Header, Some("x-user"))),
                None,
            ),
            None,
        ),
        (
            "hash on the client",
            lb(
                Algorithm::ConsistentHash,
                Some((HashOnType::ClientIp, None)),
                None,
            ),
            None,
        ),
        (
            "sticky with a ttl",
            lb(Algorithm::Random, None, Some(("sid", Some("30m")))),
            None,
        ),
        (
            "ConsistentHash without hashOn",
            lb(Algorithm::ConsistentHash, None, None),
            Some("spec.rules[0].loadBalancing.hashOn"),
        ),
        (
            "hashOn with another algorithm",
            lb(
                Algorithm::RoundRobin,
                Some((HashOnType::ClientIp, None)),
                None,
            ),
            Some("spec.rules[0].loadBalancing.hashOn"),
        ),
        (
            "a header hash without a name",
            lb(
                Algorithm::ConsistentHash,
                Some((HashOnType::Header, None)),
                None,
            ),
            Some("spec.rules[0].loadBalancing.hashOn.name"),
        ),
        (
            "an invalid cookie hash name",
            lb(
                Algorithm::ConsistentHash,
                Some((HashOnType::Cookie, Some("a b"))),
                None,
            ),
            Some("spec.rules[0].loadBalancing.hashOn.name"),
        ),
        (
            "an invalid sticky cookie name",
            lb(Algorithm::RoundRobin, None, Some(("se;ss", None))),
            Some("spec.rules[0].loadBalancing.sticky.cookie.name"),
        ),
        (
            "an invalid sticky ttl",
            lb(Algorithm::RoundRobin, None, Some(("sid", Some("forever")))),
            Some("spec.rules[0].loadBalancing.sticky.cookie.ttl"),
        ),
    ];
    for (case, lb, want) in cases {
        let compiled = compile(&snapshot(vec![balanced_rule(lb)]), &RouteTable::default());
        let errors = field_errors(&compiled);
        match want {
            None => assert!(errors.is_empty(), "{case}: {errors:?}"),
            Some(field) => assert!(
                errors.len() == 1 && errors[0].0 == field,
                "{case}: want one error at {field}, got {errors:?}"
            ),
        }
    }
}

#[test]
fn static_addresses_form_one_pool_with_endpoint_weights() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1).raw_rule(RouteRule {
            backends: vec![
                weighted(address("127.0.0.1:1"), 3),
                weighted(address("127.0.0.1:2"), 1),
                weighted(address("127.0.0.1:3"), 0),
            ],
            load_balancing: Some(LoadBalancing {
                algorithm: Algorithm::LeastConnections,
                ..LoadBalancing::default()
            }),
            ..RouteRule::default()
        })]),
        &RouteTable::default(),
    );
    assert!(compiled.is_clean());
    let rule = compiled
        .table
        .find(Some("h"), &Method::GET, "/", &HeaderMap::new())
        .unwrap();
    // Held requests: least connections, weighted 3:1, over one pool.
    let mut held = Vec::new();
    let mut seen = [0usize; 4];
    for _ in 0..8 {
        let target = pick(&rule.backends).unwrap();
        seen[target.authority.port_u16().unwrap() as usize] += 1;
        held.push(target.state.start_request());
    }
    assert_eq!(seen, [0, 6, 2, 0]);
}

#[test]
fn picks_read_hash_keys_and_sticky_cookies_from_the_request() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1).raw_rule(RouteRule {
            backends: (1..=4)
                .map(|port| address(&format!("127.0.0.1:{port}")))
                .collect(),
            load_balancing: Some(LoadBalancing {
                algorithm: Algorithm::ConsistentHash,
                hash_on: Some(HashOn {
                    kind: HashOnType::QueryParameter,
                    name: Some("user".to_owned()),
                }),
                sticky: Some(Sticky {
                    cookie: StickyCookie {
                        name: "sid".to_owned(),
                        ttl: None,
                    },
                }),
            }),
            ..RouteRule::default()
        })]),
        &RouteTable::default(),
    );
    assert!(compiled.is_clean(), "{:?}", compiled.statuses);
    let rule = compiled
        .table
        .find(Some("h"), &Method::GET, "/", &HeaderMap::new())
        .unwrap();
    let pick_with = |query: Option<&str>, cookie: Option<&str>| {
        let mut headers = HeaderMap::new();
        if let Some(cookie) = cookie {
            headers.insert(http::header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        let cx = crate::table::PickContext {
            client: std::net::Ipv4Addr::LOCALHOST.into(),
            headers: &headers,
            query,
            now: tokio::time::Instant::now(),
        };
        let picked = rule.backends.pick(&cx).unwrap();
        (
            picked.target.authority.port_u16().unwrap(),
            picked.set_cookie.map(|c| c.to_str().unwrap().to_owned()),
        )
    };
    // One key, one endpoint; a cookie for it comes with each fresh pick.
    let (port, cookie) = pick_with(Some("user=7"), None);
    for _ in 0..10 {
        assert_eq!(pick_with(Some("a=1&user=7"), None).0, port);
    }
    let cookie = cookie.expect("a sticky cookie");
    assert!(cookie.starts_with("sid=") && cookie.ends_with("; Path=/; HttpOnly"));
    let value = cookie.split(';').next().unwrap();
    // The cookie beats the hash key, and is not set again.
    let other_key = (0..100)
        .map(|u| format!("user={u}"))
        .find(|q| pick_with(Some(q), None).0 != port)
        .expect("some key lands elsewhere");
    assert_eq!(pick_with(Some(&other_key), Some(value)), (port, None));
    // A cookie naming no endpoint is ignored and replaced.
    let (_, replaced) = pick_with(Some("user=7"), Some("sid=00000000000000ff"));
    assert!(replaced.is_some());
}

// === health ===

#[test]
fn health_checks_become_probes_that_survive_recompiles() {
    let checked = |hosts: &[&str]| {
        route("shop", "mango", 0).hosts(hosts).raw_rule(RouteRule {
            backends: vec![address("127.0.0.1:1"), address("127.0.0.1:2")],
            health_check: Some(api::HealthCheck {
                path: Some("/ready".into()),
                ..api::HealthCheck::default()
            }),
            ..RouteRule::default()
        })
    };
    let first = compile(
        &snapshot(vec![checked(&["a.mango.com"])]),
        &RouteTable::default(),
    );
    assert!(first.is_clean(), "{:?}", first.statuses);
    let probes: Vec<(&str, &str)> = first
        .table
        .probes()
        .iter()
        .map(|p| (&*p.address, p.check.path.as_str()))
        .collect();
    assert_eq!(
        probes,
        [("127.0.0.1:1", "/ready"), ("127.0.0.1:2", "/ready")]
    );

    // A route edit keeps the endpoints' state, so health carries over.
    first.table.probes()[0].state.set_healthy(false);
    let second = compile(
        &snapshot(vec![checked(&["a.mango.com", "b.mango.com"])]),
        &first.table,
    );
    assert!(Arc::ptr_eq(
        &first.table.probes()[0].state,
        &second.table.probes()[0].state
    ));
    assert!(!second.table.probes()[0].state.is_healthy());

    // Without checks, no probes.
    let plain = compile(
        &snapshot(vec![route("shop", "mango", 0).rule(vec![], 1)]),
        &second.table,
    );
    assert!(plain.table.probes().is_empty());
}

#[test]
fn invalid_health_settings_reject_the_route_naming_fields() {
    let compiled = compile(
        &snapshot(vec![route("shop", "mango", 0).raw_rule(RouteRule {
            backends: vec![address("127.0.0.1:1")],
            health_check: Some(api::HealthCheck {
                interval: Some("5".into()),
                ..api::HealthCheck::default()
            }),
            passive_health: Some(api::PassiveHealth {
                max_ejected_percent: Some(120),
                ..api::PassiveHealth::default()
            }),
            ..RouteRule::default()
        })]),
        &RouteTable::default(),
    );
    let fields: Vec<&str> = compiled.statuses[0]
        .errors
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.rules[0].healthCheck.interval",
            "spec.rules[0].passiveHealth.maxEjectedPercent"
        ]
    );
    assert!(compiled.table.probes().is_empty());
}
