//! Compile tests: regular expressions are compiled once per pattern and
//! carried from one table to the next.

use super::*;

/// A route on `host` whose one rule matches `pattern` as a path and as
/// the `x-version` header.
fn regex_route(name: &str, position: u64, host: &str, pattern: &str) -> RouteBuilder {
    let m = RouteMatch {
        headers: vec![HeaderMatch {
            kind: HeaderMatchType::RegularExpression,
            name: "x-version".to_owned(),
            value: pattern.to_owned(),
        }],
        ..path(PathMatchType::RegularExpression, pattern)
    };
    route("shop", name, position)
        .hosts(&[host])
        .rule(vec![m], 1)
}

#[test]
fn a_pattern_is_compiled_once_per_table_and_reused_by_the_next() {
    let both = || {
        snapshot(vec![
            regex_route("a", 1, "a.com", "/v[0-9]+"),
            regex_route("b", 2, "b.com", "/v[0-9]+"),
        ])
    };
    let first = compile(&both(), &RouteTable::default(), 0);
    assert!(first.is_clean());
    assert_eq!(first.table.regexes.len(), 1, "one pattern, four conditions");
    let mut headers = HeaderMap::new();
    headers.insert("x-version", HeaderValue::from_static("/v2"));
    let found = first
        .table
        .find(Some("b.com"), &Method::GET, "/v2", &headers);
    assert!(found.is_some(), "the shared pattern matches for each route");

    let second = compile(&both(), &first.table, 0);
    let pattern = |t: &RouteTable| t.regexes.get("/v[0-9]+").cloned().unwrap();
    assert!(Arc::ptr_eq(&pattern(&first.table), &pattern(&second.table)));

    let none = compile(&snapshot(vec![]), &second.table, 0);
    assert!(none.table.regexes.is_empty(), "patterns no route uses go");
}
