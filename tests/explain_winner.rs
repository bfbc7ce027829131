//! Property: over random route tables and requests, the rule `explain`
//! names as the winner is the rule the proxy's lookup routes to, and a
//! path the lookup refuses is explained as refused.

use std::path::PathBuf;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use switchyard::explain::input::ExplainArgs;
use switchyard::explain::{explain, ExplainRequest, Outcome};
use switchyard::snapshot::TlsSettings;
use switchyard::source::file::{parse, Files};
use switchyard::table::{compile, RouteTable};

const HOSTS: [&str; 3] = ["a.test", "\"*.w.test\"", "b.test"];
const PATHS: [(&str, &str); 8] = [
    ("Prefix", "/"),
    ("Prefix", "/a"),
    ("Prefix", "/a/b"),
    ("Exact", "/a"),
    ("Exact", "/b/c"),
    ("RegularExpression", "/a/.*"),
    ("RegularExpression", "/[ab]"),
    ("Prefix", "/b"),
];
const REQUEST_HOSTS: [&str; 4] = ["a.test", "x.w.test", "b.test", "c.test"];
const REQUEST_PATHS: [&str; 8] = ["/", "/a", "/a/b", "/ab", "/b/c", "/a/x", "/a/..%2fb", "/b"];
const METHODS: [&str; 3] = ["GET", "POST", "PUT"];

/// One match: a path, maybe a method, maybe a header.
#[derive(Debug, Clone)]
struct MatchSpec {
    path: usize,
    method: Option<usize>,
    header: Option<u8>,
}

/// One route: maybe a host, and its rules' matches.
#[derive(Debug, Clone)]
struct RouteSpec {
    host: Option<usize>,
    rules: Vec<Vec<MatchSpec>>,
}

fn match_spec() -> impl Strategy<Value = MatchSpec> {
    (
        0..PATHS.len(),
        proptest::option::of(0..2usize),
        proptest::option::of(0..2u8),
    )
        .prop_map(|(path, method, header)| MatchSpec {
            path,
            method,
            header,
        })
}

fn route_spec() -> impl Strategy<Value = RouteSpec> {
    let rules = proptest::collection::vec(proptest::collection::vec(match_spec(), 1..3), 1..4);
    (proptest::option::of(0..HOSTS.len()), rules)
        .prop_map(|(host, rules)| RouteSpec { host, rules })
}

fn yaml(routes: &[RouteSpec]) -> String {
    let mut out = String::new();
    for (i, route) in routes.iter().enumerate() {
        out += &format!(
            "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
             metadata: {{name: r{i}, namespace: p}}\nspec:\n"
        );
        if let Some(h) = route.host {
            out += &format!("  hosts: [{}]\n", HOSTS[h]);
        }
        out += "  rules:\n";
        for (r, matches) in route.rules.iter().enumerate() {
            out += "  - matches:\n";
            for m in matches {
                let (kind, value) = PATHS[m.path];
                out += &format!("    - path: {{type: {kind}, value: \"{value}\"}}\n");
                if let Some(method) = m.method {
                    out += &format!("      methods: [{}]\n", METHODS[method]);
                }
                if let Some(v) = m.header {
                    out += &format!("      headers: [{{name: x-k, value: \"{v}\"}}]\n");
                }
            }
            out += &format!(
                "    backends: [{{address: \"127.0.0.1:{}\"}}]\n",
                1000 + i * 10 + r
            );
        }
        out += "---\n";
    }
    out
}

fn table(routes: &[RouteSpec]) -> RouteTable {
    let files = Files(vec![(PathBuf::from("p.yaml"), Ok(yaml(routes).into()))]);
    let loaded = parse(&files, &TlsSettings::default());
    compile(&loaded.snapshot, &RouteTable::default(), 0).table
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn explain_names_the_rule_the_lookup_routes_to(
        routes in proptest::collection::vec(route_spec(), 1..5),
        requests in proptest::collection::vec(
            (0..REQUEST_HOSTS.len(), 0..REQUEST_PATHS.len(), 0..METHODS.len(), proptest::option::of(0..2u8)),
            1..12,
        ),
    ) {
        let table = table(&routes);
        for (host, path, method, header) in requests {
            let (host, path, method) = (REQUEST_HOSTS[host], REQUEST_PATHS[path], METHODS[method]);
            let args = ExplainArgs {
                url: format!("http://{host}{path}"),
                method: Some(method.to_owned()),
                headers: header.iter().map(|v| format!("x-k: {v}")).collect(),
                client: None,
            };
            let req = ExplainRequest::new(&args).unwrap();
            let explained = explain(&table, &req, tokio::time::Instant::now());

            let mut headers = HeaderMap::new();
            if let Some(v) = header {
                headers.insert("x-k", HeaderValue::from(u16::from(v)));
            }
            let method: Method = method.parse().unwrap();
            let routed = table.lookup_unambiguous(Some(host), &method, path, &headers);
            let looked_up = table.find(Some(host), &method, path, &headers);
            let named = explained.winner.map(|w| {
                let view = table.host_view(Some(host)).expect("a winner has a host");
                view.candidates().nth(w).expect("the winner is a candidate").rule.clone()
            });
            prop_assert_eq!(
                named.as_ref().map(Arc::as_ptr),
                looked_up.map(Arc::as_ptr),
                "{} {}{} header {:?}: {:#?}", method, host, path, header, explained
            );
            match routed {
                Err(_) => prop_assert_eq!(explained.outcome, Outcome::AmbiguousPath),
                Ok(None) => prop_assert_eq!(explained.outcome, Outcome::NoRoute),
                Ok(Some(_)) => prop_assert!(!matches!(
                    explained.outcome,
                    Outcome::NoRoute | Outcome::AmbiguousPath
                )),
            }
        }
    }
}
