//! Compile tests: Status conditions and their serialization.

use super::*;

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
        0,
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
                ("RulesReachable", "True", "RulesReachable"),
            ],
        ),
        (
            "empty",
            [
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "True", "ResolvedRefs"),
                ("Ready", "False", "NoBackends"),
                ("RulesReachable", "True", "RulesReachable"),
            ],
        ),
        (
            "invalid",
            [
                ("Accepted", "False", "Invalid"),
                ("ResolvedRefs", "False", "Invalid"),
                ("Ready", "False", "Invalid"),
                ("RulesReachable", "False", "Invalid"),
            ],
        ),
        (
            "conflicted",
            [
                ("Accepted", "False", "Conflicted"),
                ("ResolvedRefs", "False", "Conflicted"),
                ("Ready", "False", "Conflicted"),
                ("RulesReachable", "False", "Conflicted"),
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
        0,
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
        0,
    );
    assert!(compiled.is_clean(), "{:?}", compiled.statuses);
    assert_eq!(
        served(&compiled.table, "mango.com"),
        Ok(vec!["192.0.2.7:80".to_owned(), "10.0.0.1:8080".to_owned()])
    );
    assert_eq!(compiled.statuses[0].ready_endpoints, 2);
}
