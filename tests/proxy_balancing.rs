//! Load balancing through the real proxy, in front of real backends:
//! traffic splits by backend weight, each algorithm's behaviour, consistent
//! hashing and sticky cookies, asserted on which backend answered.
//! Distributions are asserted with tolerance bands; slow backends are held
//! by gates or delay their own answers, and tests never sleep.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, Response, StatusCode};
use serde_json::json;
use support::cluster::{Cluster, Controller, CLUSTER_DEADLINE};
use support::kube_api::{endpoint_slice, route as route_obj, service};
use support::*;

/// Sends `n` GETs with `headers` and counts which backend answered each.
async fn tally_with(
    proxy: &Proxy,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let reply = get_with(proxy, path, headers).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        *seen
            .entry(reply.backend().expect("x-backend").to_owned())
            .or_default() += 1;
    }
    seen
}

async fn get_with(proxy: &Proxy, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = request(proxy, Method::GET, "h", path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    proxy.send(req.body(empty()).unwrap()).await
}

fn share(seen: &BTreeMap<String, usize>, name: &str) -> usize {
    seen.get(name).copied().unwrap_or(0)
}

/// A backend that answers after `delay`: deliberately slow.
async fn slow(name: &str, delay: Duration) -> Backend {
    Backend::http(name, move |_req| async move {
        tokio::time::sleep(delay).await;
        Response::new(full("slow"))
    })
    .await
}

// === traffic splitting ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_weights_split_90_10_with_every_algorithm() {
    for algorithm in ["RoundRobin", "Random", "LeastTime"] {
        let stable = Backend::echo("stable").await;
        let canary = Backend::echo("canary").await;
        let proxy = Proxy::start(&yaml(&[route("canary").rule(
            Rule::new()
                .weighted(&stable, 90)
                .weighted(&canary, 10)
                .algorithm(algorithm),
        )]))
        .await;
        let seen = tally_with(&proxy, "/", &[], 400).await;
        let got = share(&seen, "canary");
        let band = match algorithm {
            // Smooth weighted turns: exact over every 10 requests.
            "RoundRobin" => 40..=40,
            // Weighted draws: 40 expected, σ ≈ 6.
            _ => 15..=70,
        };
        if algorithm == "LeastTime" {
            // Least time is free to favour the faster of two equal
            // backends; weights still scale its score, so the canary
            // never takes the majority.
            assert!(got < 200, "{algorithm}: canary got {got} of 400: {seen:?}");
        } else {
            assert!(
                band.contains(&got),
                "{algorithm}: canary got {got} of 400, want {band:?}: {seen:?}"
            );
        }
    }
}

/// Service `name` with one endpoint per backend (each in its own slice:
/// a slice has one port).
async fn service_with(cluster: &Cluster, name: &str, backends: &[&Backend]) {
    cluster
        .apply(service(cluster.ns(), name, &[("http", 80, 8080)]))
        .await;
    for (i, backend) in backends.iter().enumerate() {
        let ip = backend.addr.ip().to_string();
        cluster
            .apply(endpoint_slice(
                cluster.ns(),
                &format!("{name}-{i}"),
                name,
                "http",
                backend.addr.port(),
                &[(&ip, true, false)],
            ))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_90_10_across_services_holds_whatever_their_endpoint_counts() {
    let cluster = Cluster::start("canary").await;
    let stable = [
        cluster.echo("stable-1").await,
        cluster.echo("stable-2").await,
        cluster.echo("stable-3").await,
    ];
    let canary = cluster.echo("canary").await;
    service_with(&cluster, "stable", &[&stable[0], &stable[1], &stable[2]]).await;
    service_with(&cluster, "canary", &[&canary]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(route_obj(
            cluster.ns(),
            "shop",
            json!({"hosts": ["shop.com"], "rules": [{
                "backends": [
                    {"service": "stable", "port": 80, "weight": 90},
                    {"service": "canary", "port": 80, "weight": 10},
                ],
                "loadBalancing": {"algorithm": "Random"},
            }]}),
        ))
        .await;
    wait_until("all 4 endpoints to be served", CLUSTER_DEADLINE, || async {
        cluster
            .route_status("shop")
            .await
            .is_some_and(|s| s["readyEndpoints"] == 4)
    })
    .await;

    let client = http1_client();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..400 {
        let req = http::Request::get(format!("http://{}/", controller.addr))
            .header(http::header::HOST, "shop.com")
            .body(empty())
            .unwrap();
        let reply = Reply::collect(within("a request", client.request(req)).await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK);
        *seen.entry(reply.backend().unwrap().to_owned()).or_default() += 1;
    }
    // The split is by Service weight (exact over every 10 requests; the
    // band allows for a recompile restarting the turns), not by endpoint
    // count (which would give the canary a quarter).
    let canary = share(&seen, "canary");
    assert!((36..=44).contains(&canary), "canary got {canary}: {seen:?}");
    // Inside the stable Service, Random: 120 each expected, σ ≈ 9.
    for name in ["stable-1", "stable-2", "stable-3"] {
        let got = share(&seen, name);
        assert!((75..=165).contains(&got), "{name} got {got}: {seen:?}");
    }
}

// === algorithms ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_and_random_spread_evenly() {
    let backends = [
        Backend::echo("a").await,
        Backend::echo("b").await,
        Backend::echo("c").await,
        Backend::echo("d").await,
    ];
    for algorithm in ["RoundRobin", "WeightedRoundRobin", "Random"] {
        let mut rule = Rule::new().algorithm(algorithm);
        for b in &backends {
            rule = rule.backend(b);
        }
        let proxy = Proxy::start(&yaml(&[route("even").rule(rule)])).await;
        let seen = tally_with(&proxy, "/", &[], 800).await;
        for b in &backends {
            let got = share(&seen, &b.name);
            let band = if algorithm == "Random" {
                // 200 expected, σ ≈ 12.
                140..=260
            } else {
                200..=200
            };
            assert!(
                band.contains(&got),
                "{algorithm}: {} got {got} of 800: {seen:?}",
                b.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_sends_new_requests_to_the_idle_backend() {
    let (held, mut gate) = Backend::gated("held").await;
    let idle = Backend::echo("idle").await;
    // `/hold` reaches only the gated backend; endpoint state is shared by
    // address, so requests held there count on `/` too.
    let proxy = Proxy::start(&yaml(&[
        route("hold").rule(Rule::prefix("/hold").backend(&held)),
        route("lc").rule(
            Rule::prefix("/")
                .backend(&held)
                .backend(&idle)
                .algorithm("LeastConnections"),
        ),
    ]))
    .await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let client = proxy.client();
        let req = request(&proxy, Method::GET, "h", "/hold")
            .body(empty())
            .unwrap();
        waiting.push(tokio::spawn(async move { client.request(req).await }));
        gate.arrived().await;
    }

    let seen = tally_with(&proxy, "/", &[], 30).await;
    assert_eq!(share(&seen, "idle"), 30, "{seen:?}");

    gate.release();
    for w in waiting {
        let reply = Reply::collect(within("a held request", w).await.unwrap().unwrap()).await;
        assert_eq!(reply.text(), "released");
    }
    // Both idle now: ties rotate, so the released backend takes turns again.
    let seen = tally_with(&proxy, "/", &[], 30).await;
    assert!(share(&seen, "held") >= 5, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_time_shifts_traffic_away_from_a_slow_backend() {
    let slowpoke = slow("slow", Duration::from_millis(40)).await;
    let fast = Backend::echo("fast").await;
    let proxy = Proxy::start(&yaml(&[route("lt").rule(
        Rule::new()
            .backend(&slowpoke)
            .backend(&fast)
            .algorithm("LeastTime"),
    )]))
    .await;
    let seen = tally_with(&proxy, "/", &[], 200).await;
    // One visit measures the slow backend; then its average (40ms+) loses
    // to the fast one's until it fades, seconds later.
    assert!(share(&seen, "slow") <= 10, "{seen:?}");
    assert!(share(&seen, "fast") >= 190, "{seen:?}");
}

// === consistent hashing ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_routes_a_key_to_the_same_backend() {
    let backends = [
        Backend::echo("a").await,
        Backend::echo("b").await,
        Backend::echo("c").await,
    ];
    let rule = |path: &str, hash_on: &str| {
        let mut rule = Rule::prefix(path).field(
            "loadBalancing",
            &format!("{{algorithm: ConsistentHash, hashOn: {hash_on}}}"),
        );
        for b in &backends {
            rule = rule.backend(b);
        }
        rule
    };
    let proxy = Proxy::start(&yaml(&[route("ch")
        .rule(rule("/header", "{type: Header, name: x-user}"))
        .rule(rule("/cookie", "{type: Cookie, name: user}"))
        .rule(rule("/query", "{type: QueryParameter, name: user}"))
        .rule(rule("/client", "{type: ClientIP}"))]))
    .await;

    let mut owners = BTreeMap::new();
    for user in 0..30 {
        let user = format!("user-{user}");
        let cookie = format!("theme=dark; user={user}");
        let query = format!("/query?page=2&user={user}");
        let by_header = tally_with(&proxy, "/header", &[("x-user", &user)], 5).await;
        let by_cookie = tally_with(&proxy, "/cookie", &[("cookie", &cookie)], 5).await;
        let by_query = tally_with(&proxy, &query, &[], 5).await;
        for (how, seen) in [
            ("header", &by_header),
            ("cookie", &by_cookie),
            ("query", &by_query),
        ] {
            assert_eq!(
                seen.len(),
                1,
                "{user} by {how} went to several backends: {seen:?}"
            );
        }
        // The same value hashes the same whichever way it arrives.
        assert_eq!(by_header.keys().next(), by_cookie.keys().next());
        assert_eq!(by_header.keys().next(), by_query.keys().next());
        *owners
            .entry(by_header.into_keys().next().unwrap())
            .or_insert(0) += 1;
    }
    assert!(owners.len() >= 2, "30 users all on one backend: {owners:?}");

    // One client address: one backend.
    assert_eq!(tally_with(&proxy, "/client", &[], 10).await.len(), 1);
    // Without the key: round-robin turns.
    let seen = tally_with(&proxy, "/header", &[], 30).await;
    assert!(seen.values().all(|n| *n == 10), "{seen:?}");
}

// === sticky sessions ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_cookie_pins_a_client_to_its_backend() {
    let backends = [
        Backend::echo("a").await,
        Backend::echo("b").await,
        Backend::echo("c").await,
    ];
    let mut rule = Rule::new().field(
        "loadBalancing",
        "{algorithm: RoundRobin, sticky: {cookie: {name: sy-session, ttl: 1h}}}",
    );
    for b in &backends {
        rule = rule.backend(b);
    }
    let proxy = Proxy::start(&yaml(&[route("sticky").rule(rule)])).await;

    let first = get_with(&proxy, "/", &[]).await;
    let pinned = first.backend().unwrap().to_owned();
    let set_cookie = first
        .header("set-cookie")
        .expect("a sticky cookie")
        .to_owned();
    assert!(
        set_cookie.starts_with("sy-session=")
            && set_cookie.ends_with("; Path=/; HttpOnly; Max-Age=3600"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    for _ in 0..20 {
        let reply = get_with(&proxy, "/", &[("cookie", &format!("other=1; {cookie}"))]).await;
        assert_eq!(reply.backend(), Some(pinned.as_str()));
        assert_eq!(
            reply.header("set-cookie"),
            None,
            "a valid cookie is not re-set"
        );
    }
    // Without the cookie (or with one naming no endpoint), requests are
    // balanced as usual and get a cookie for where they went.
    let seen = tally_with(&proxy, "/", &[], 6).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    let stale = get_with(&proxy, "/", &[("cookie", "sy-session=0123456789abcdef")]).await;
    assert!(stale.header("set-cookie").is_some());
}

// === validation ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_without_hash_on_is_rejected() {
    let a = Backend::echo("a").await;
    let proxy = Proxy::start(&yaml(&[route("bad")
        .host("bad.com")
        .rule(Rule::new().backend(&a).algorithm("ConsistentHash"))]))
    .await;
    assert_eq!(
        proxy.get("bad.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
    let routes = proxy.admin_get("/routes").await.unwrap().text();
    assert!(
        routes.contains("spec.rules[0].loadBalancing.hashOn"),
        "{routes}"
    );
}
