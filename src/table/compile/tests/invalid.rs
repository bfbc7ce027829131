//! Compile tests: Invalid input: every error named, the route rejected alone.

use super::*;

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
                    protocol: None,
                    tls: None,
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
    let compiled = compile(&snapshot(vec![bad, good]), &RouteTable::default(), 0);
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
        0,
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
        0,
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
        0,
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
        0,
    );
    assert_eq!(compiled.statuses[1].reason, Reason::Invalid);
    assert_eq!(compiled.statuses[1].errors[0].field, "metadata.name");
}

#[test]
fn rule_without_backends_compiles_to_unavailable() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1).raw_rule(RouteRule::default())]),
        &RouteTable::default(),
        0,
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
        0,
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
    let second = compile(&snapshot(vec![rule]), &first.table, 0);
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
