//! Compile tests: snapshot in, table and statuses out. Each rule of a
//! fixture routes to its own backend port, so a lookup says which rule won.

use super::*;
use crate::api::{Backend, HeaderMatch, LoadBalancerRouteSpec, PathMatch, RouteMatch, RouteRule};
use crate::source::Age;
use http::{HeaderMap, HeaderName, HeaderValue};

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
    }
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
    Some(rule.backends.pick().ok()?.authority.port_u16().unwrap())
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
                request: Some("soon".into()),
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
            "spec.rules[0].timeouts.request",
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
        Arc::clone(&rule.backends.pick().unwrap().state)
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
