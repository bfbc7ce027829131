//! Compile tests: Precedence between matches and hosts.

use super::*;

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
        let compiled = compile(&snapshot(vec![r]), &RouteTable::default(), 0);
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
    let t = compile(&snapshot(vec![b(1), a(2)]), &RouteTable::default(), 0).table;
    assert_eq!(lands(&t, "any", "GET", "/", &both), Some(2), "b is older");
    let t = compile(&snapshot(vec![b(1), a(1)]), &RouteTable::default(), 0).table;
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
        0,
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
