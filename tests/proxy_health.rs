//! Health through the real proxy: active checks take dead and failing
//! endpoints out and bring recovered ones back, passive ejection stops
//! traffic to an endpoint answering 500s, a host whose endpoints are all
//! down answers 503, and health survives a route reload.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use http::{Response, StatusCode};
use support::*;

/// Probes every 100ms; two failures take an endpoint out, two passes bring
/// it back. Passive ejection off, so only the checks decide.
const FAST_CHECK: &str =
    "{path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 2, unhealthyThreshold: 2}";
const NO_PASSIVE: &str = "{consecutiveFailures: 0}";

/// A backend whose `/healthz` answers 200 while `up` holds and 503 after;
/// every other path answers 200. Counts its health probes.
async fn switchable(name: &str) -> (Backend, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let up = Arc::new(AtomicBool::new(true));
    let probes = Arc::new(AtomicUsize::new(0));
    let backend = Backend::http(name, {
        let up = up.clone();
        let probes = probes.clone();
        move |req| {
            let status = if req.uri().path() == "/healthz" {
                probes.fetch_add(1, Ordering::SeqCst);
                if up.load(Ordering::SeqCst) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            } else {
                StatusCode::OK
            };
            async move { Response::builder().status(status).body(empty()).unwrap() }
        }
    })
    .await;
    (backend, up, probes)
}

/// Sends `n` requests; the `x-backend` of each (or its status when the
/// proxy answered).
async fn spread(proxy: &Proxy, host: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        let reply = proxy.get(host, "/").await;
        seen.push(match reply.backend() {
            Some(b) if reply.status == StatusCode::OK => b.to_owned(),
            _ => reply.status.as_str().to_owned(),
        });
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_servers_among_live_ones_are_never_used_once_detected() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let dead1 = refused_addr().to_string();
    let dead2 = refused_addr().to_string();
    let proxy = Proxy::start(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new()
            .backend(&a)
            .address(&dead1, None)
            .backend(&b)
            .address(&dead2, None)
            .field("healthCheck", FAST_CHECK)
            .field("passiveHealth", NO_PASSIVE)
            // Retries would hide the dead endpoints from clients; this is
            // about the health checks alone.
            .field("retries", "{attempts: 0}"),
    )]))
    .await;

    wait_until("the dead endpoints are detected", DEADLINE, || async {
        spread(&proxy, "www.mango.com", 8)
            .await
            .iter()
            .all(|s| s == "a" || s == "b")
    })
    .await;
    let seen = spread(&proxy, "www.mango.com", 40).await;
    assert!(
        seen.iter().all(|s| s == "a" || s == "b"),
        "a dead endpoint was used: {seen:?}"
    );
    assert!(seen.iter().any(|s| s == "a") && seen.iter().any(|s| s == "b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_servers_are_all_dead_answers_503() {
    let dead1 = refused_addr().to_string();
    let dead2 = refused_addr().to_string();
    let proxy = Proxy::start(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new()
            .address(&dead1, None)
            .address(&dead2, None)
            .field("healthCheck", FAST_CHECK),
    )]))
    .await;

    wait_until("every endpoint is detected dead", DEADLINE, || async {
        proxy.get("www.mango.com", "/").await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.text(), "no healthy endpoint for this route\n");

    // `/routes` shows why.
    let routes: serde_json::Value =
        serde_json::from_slice(&proxy.admin_get("/routes").await.unwrap().body).unwrap();
    let endpoints = routes["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 2, "{routes}");
    for endpoint in endpoints {
        assert_eq!(endpoint["healthy"], false, "{endpoint}");
        assert_eq!(endpoint["inFlight"], 0, "{endpoint}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_failing_its_health_path_leaves_and_comes_back() {
    let (a, a_up, _) = switchable("a").await;
    let (b, _, _) = switchable("b").await;
    let proxy = Proxy::start(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new()
            .backend(&a)
            .backend(&b)
            .field("healthCheck", FAST_CHECK)
            .field("passiveHealth", NO_PASSIVE),
    )]))
    .await;
    let seen = spread(&proxy, "www.mango.com", 4).await;
    assert_eq!(seen, ["a", "b", "a", "b"]);

    a_up.store(false, Ordering::SeqCst);
    wait_until("a leaves the rotation", DEADLINE, || async {
        spread(&proxy, "www.mango.com", 6)
            .await
            .iter()
            .all(|s| s == "b")
    })
    .await;

    a_up.store(true, Ordering::SeqCst);
    wait_until("a is back in the rotation", DEADLINE, || async {
        spread(&proxy, "www.mango.com", 4)
            .await
            .iter()
            .any(|s| s == "a")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_answering_500s_is_ejected() {
    let good = Backend::echo("good").await;
    let bad = Backend::fixed("bad", StatusCode::INTERNAL_SERVER_ERROR, "oops").await;
    let proxy = Proxy::start(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new().backend(&good).backend(&bad).field(
            "passiveHealth",
            "{consecutiveFailures: 3, baseEjection: 1m}",
        ),
    )]))
    .await;

    // Round robin alternates: the third 500 ejects `bad`.
    let seen = spread(&proxy, "www.mango.com", 6).await;
    assert_eq!(seen, ["good", "500", "good", "500", "good", "500"]);
    let seen = spread(&proxy, "www.mango.com", 20).await;
    assert!(seen.iter().all(|s| s == "good"), "{seen:?}");
    assert_eq!(bad.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_survives_a_route_reload() {
    let live = Backend::echo("live").await;
    let (checked, _, probes) = switchable("checked").await;
    let dead = refused_addr().to_string();
    // `dead` is found by passive ejection (one failure, a long ejection);
    // `checked` has a health check with a long interval, probed once at
    // start.
    let routes = |extra_host: bool| {
        let mut doc = route("mango").host("www.mango.com");
        if extra_host {
            doc = doc.host("shop.mango.com");
        }
        yaml(&[
            doc.rule(Rule::new().backend(&live).address(&dead, None).field(
                "passiveHealth",
                "{consecutiveFailures: 1, baseEjection: 10m}",
            )),
            route("papaya").host("www.papaya.com").rule(
                Rule::new()
                    .backend(&checked)
                    .field("healthCheck", "{path: /healthz, interval: 1h}"),
            ),
        ])
    };
    let proxy = Proxy::start(&routes(false)).await;

    wait_until("the dead endpoint is ejected", DEADLINE, || async {
        spread(&proxy, "www.mango.com", 4)
            .await
            .iter()
            .all(|s| s == "live")
    })
    .await;
    wait_until("the first probe", DEADLINE, || async {
        probes.load(Ordering::SeqCst) >= 1
    })
    .await;

    proxy.write_routes(&routes(true));
    wait_until("the reload is served", DEADLINE, || async {
        proxy.get("shop.mango.com", "/").await.status == StatusCode::OK
    })
    .await;
    let seen = spread(&proxy, "www.mango.com", 20).await;
    assert!(
        seen.iter().all(|s| s == "live"),
        "the reload reset the ejection: {seen:?}"
    );
    assert_eq!(
        probes.load(Ordering::SeqCst),
        1,
        "the reload restarted the probe of an unchanged check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_health_check_rejects_only_its_route() {
    let a = Backend::echo("a").await;
    let proxy = Proxy::start(&yaml(&[
        route("bad").host("bad.mango.com").rule(
            Rule::new()
                .backend(&a)
                .field("healthCheck", "{path: healthz, interval: 1s, timeout: 2s}"),
        ),
        route("good")
            .host("good.mango.com")
            .rule(Rule::new().backend(&a)),
    ]))
    .await;
    assert_eq!(
        proxy.get("bad.mango.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        proxy.get("good.mango.com", "/").await.status,
        StatusCode::OK
    );
    let routes = proxy.admin_get("/routes").await.unwrap().text();
    assert!(
        routes.contains("spec.rules[0].healthCheck.path")
            && routes.contains("spec.rules[0].healthCheck.timeout"),
        "{routes}"
    );
}
