//! Compile tests: Load balancing: weights, pools, hash keys, sticky cookies.

use super::*;

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
    let compiled = compile(&snapshot, &RouteTable::default(), 0);
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
        let compiled = compile(
            &snapshot(vec![balanced_rule(lb)]),
            &RouteTable::default(),
            0,
        );
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
        0,
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
        0,
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
