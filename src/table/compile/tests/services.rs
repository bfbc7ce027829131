//! Compile tests: Service backends (cluster mode): resolution, endpoints, references.

use super::*;

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
            let compiled = compile(&c.build(), &RouteTable::default(), 0);
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
                    ("RulesReachable", "True", "RulesReachable"),
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
    let first = compile(&cluster(routes()).build(), &RouteTable::default(), 0);
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
            ("RulesReachable", "True", "RulesReachable"),
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
        0,
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
            ("RulesReachable", "True", "RulesReachable"),
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
        0,
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
            ("RulesReachable", "True", "RulesReachable"),
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
