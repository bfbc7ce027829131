//! Compile tests: backend references that do not resolve, or do not fit the mode.

use super::*;

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
            0,
        );
        let status = &compiled.statuses[0];
        assert!(status.accepted(), "case {case}");
        assert_eq!(
            conditions(status),
            triples([
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "False", "InvalidBackend"),
                ("Ready", "False", "NoReadyEndpoints"),
                ("RulesReachable", "True", "RulesReachable"),
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
                protocol: None,
                tls: None,
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
        let compiled = compile(&snapshot, &RouteTable::default(), 0);
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
        0,
    );
    let second = compile(
        &snapshot(vec![ready("10.0.0.2"), ready("10.0.0.3")]),
        &first.table,
        0,
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
        0,
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
        0,
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
            ("RulesReachable", "True", "RulesReachable"),
        ])
    );
}
