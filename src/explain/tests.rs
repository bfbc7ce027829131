//! Explain tests: a table from YAML, requests explained against it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use http::{HeaderMap, Method};

use super::input::ExplainArgs;
use super::*;
use crate::snapshot::TlsSettings;
use crate::source::file::{parse, Files};
use crate::table::compile;

const ROUTES: &str = r#"
apiVersion: switchyard.dev/v1alpha1
kind: LoadBalancerRoute
metadata: {name: mango, namespace: shop}
spec:
  hosts: [www.mango.com]
  rules:
  - matches: [{path: {type: Prefix, value: /api}, headers: [{name: x-canary, value: "1"}]}]
    backends: [{address: "127.0.0.1:9002"}]
  - matches: [{path: {type: Prefix, value: /api}}]
    backends: [{address: "127.0.0.1:9001", weight: 3}, {address: "127.0.0.1:9003", weight: 0}]
    rewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    requestHeaders: {set: {x-env: prod}}
    rateLimit: {requestsPerSecond: 1, burst: 1, key: {type: ClientIP}}
    firewall: {denyPaths: [/api/admin]}
  - matches: [{path: {type: Exact, value: /old}}]
    redirect: {hostname: new.mango.com, statusCode: 301}
  - backends: [{address: "127.0.0.1:9004"}]
  - matches: [{path: {type: RegularExpression, value: "/static/.*"}}]
    backends: [{address: "127.0.0.1:9005"}]
---
apiVersion: switchyard.dev/v1alpha1
kind: LoadBalancerRoute
metadata: {name: copy, namespace: other}
spec:
  hosts: [www.mango.com]
  rules:
  - matches: [{path: {type: Exact, value: /old}}]
    backends: [{address: "127.0.0.1:9006"}]
"#;

fn table() -> RouteTable {
    let files = Files(vec![(
        PathBuf::from("routes.yaml"),
        Ok(std::sync::Arc::from(ROUTES)),
    )]);
    let loaded = parse(&files, &TlsSettings::default());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    compile(&loaded.snapshot, &RouteTable::default(), 0).table
}

fn explained(table: &RouteTable, method: &str, url: &str, headers: &[&str]) -> Explanation {
    let args = ExplainArgs {
        url: url.to_owned(),
        method: Some(method.to_owned()),
        headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        client: Some("10.0.0.9".to_owned()),
    };
    let req = ExplainRequest::new(&args).unwrap();
    explain(table, &req, Instant::now())
}

#[test]
fn candidates_come_in_precedence_order_with_each_verdict() {
    let table = table();
    let e = explained(&table, "GET", "http://www.mango.com/api/users", &[]);
    assert_eq!(e.host.as_deref(), Some("www.mango.com"));
    let fields: Vec<&str> = e.candidates.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.rules[2].matches[0]",
            "spec.rules[0].matches[0]",
            "spec.rules[1].matches[0]",
            "spec.rules[3]",
            "spec.rules[4].matches[0]",
        ]
    );
    let canary = &e.candidates[1];
    assert!(canary.verdicts.path && canary.verdicts.method && !canary.verdicts.headers);
    assert_eq!(canary.headers[0].condition, "x-canary: 1");
    assert!(!canary.headers[0].matched && !canary.matches);
    assert_eq!(e.winner, Some(2));
    assert_eq!(e.outcome, Outcome::Forward);
    assert_eq!(
        e.candidates[4].shadowed_by,
        Some(3),
        "Prefix / (spec.rules[3]) takes every /static/ request"
    );
    assert_eq!(e.candidates[3].shadows, [4]);
    assert_eq!(e.conflicts.len(), 1, "other/copy claims Exact /old");
    assert_eq!(e.conflicts[0].route, "other/copy");

    let with = explained(
        &table,
        "GET",
        "http://www.mango.com/api/x",
        &["x-canary: 1"],
    );
    assert_eq!(with.winner, Some(1));
}

#[test]
fn policies_are_judged_and_the_upstream_request_built_by_the_proxy_code() {
    let table = table();
    let e = explained(
        &table,
        "GET",
        "http://WWW.mango.com/api/users?q=1",
        &["x-debug: 1"],
    );
    let p = e.policies.as_ref().unwrap();
    assert!(p.firewall.as_ref().unwrap().allowed);
    let limit = p.rate_limit.as_ref().unwrap();
    assert_eq!((limit.requests_per_second, limit.burst), (1, 1));
    assert_eq!(limit.key, "client 10.0.0.9");
    let upstream = p.upstream.as_ref().unwrap();
    assert_eq!(upstream.path_and_query, "/v2/users?q=1");
    let header = |name: &str| {
        (upstream.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-env"), Some("prod"));
    assert_eq!(header("host"), Some("WWW.mango.com"));
    assert_eq!(header("x-forwarded-for"), Some("10.0.0.9"));
    let b = e.backends.as_ref().unwrap();
    let states: Vec<(&str, u32, &str)> = (b.endpoints.iter())
        .map(|e| (e.address.as_str(), e.weight, e.state))
        .collect();
    assert_eq!(
        states,
        [
            ("127.0.0.1:9001", 3, "ready"),
            ("127.0.0.1:9003", 0, "no-traffic")
        ]
    );

    let denied = explained(&table, "GET", "http://www.mango.com/api/admin", &[]);
    assert_eq!(denied.outcome, Outcome::Forbidden);
    let moved = explained(&table, "GET", "http://www.mango.com/old", &[]);
    assert_eq!(moved.outcome, Outcome::Redirect);
    let redirect = moved.policies.unwrap().redirect.unwrap();
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.location.as_deref(),
        Some("http://new.mango.com/old")
    );
}

#[test]
fn explaining_spends_no_rate_limit_token() {
    let table = table();
    for _ in 0..5 {
        explained(&table, "GET", "http://www.mango.com/api/x", &[]);
    }
    let rule = table.find(
        Some("www.mango.com"),
        &Method::GET,
        "/api/x",
        &HeaderMap::new(),
    );
    let limit = rule.unwrap().policy.rate_limit.as_ref().unwrap();
    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
    assert!(
        limit
            .check(client, &HeaderMap::new(), Instant::now())
            .is_ok(),
        "burst 1: the first real request still passes"
    );
}

#[test]
fn unknown_hosts_and_ambiguous_paths_say_what_the_proxy_answers() {
    let table = table();
    let e = explained(&table, "GET", "http://nowhere.test/", &[]);
    assert_eq!(
        (e.host, e.winner, e.outcome),
        (None, None, Outcome::NoRoute)
    );
    let e = explained(
        &table,
        "GET",
        "http://www.mango.com/static/..%2fapi/admin",
        &[],
    );
    assert_eq!(e.outcome, Outcome::AmbiguousPath);
    let text = render::text(&e);
    assert!(text.contains("outcome: 400"), "{text}");
}
