//! Health through the real proxy: active checks take dead and failing
//! endpoints out and bring recovered ones back, passive ejection stops
//! traffic to an endpoint answering 500s, a host whose endpoints are all
//! down answers 503, health survives a route reload, and an ejected
//! endpoint is a last resort rather than a reason for 502 or 503.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use http::{Response, StatusCode};
use support::*;
use tokio::net::TcpSocket;

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

// === ejected endpoints as a last resort (issue 9 item 13) ===

/// An echo backend that can be killed (new connections refused, open ones
/// cut) and restarted on the same address. While it is down a socket
/// bound to its port with `SO_REUSEPORT`, never listening, holds the port,
/// so no other test's backend can be handed it.
struct Restartable {
    name: String,
    addr: SocketAddr,
    _hold: TcpSocket,
    running: Option<Backend>,
}

impl Restartable {
    fn start(name: &str) -> Restartable {
        let hold = reuse_port_socket();
        hold.bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let addr = hold.local_addr().expect("local address");
        let mut backend = Restartable {
            name: name.to_owned(),
            addr,
            _hold: hold,
            running: None,
        };
        backend.restart();
        backend
    }

    fn kill(&mut self) {
        self.running = None;
    }

    fn restart(&mut self) {
        let socket = reuse_port_socket();
        socket.bind(self.addr).expect("bind the same port again");
        let listener = socket.listen(128).expect("listen");
        self.running = Some(Backend::echo_on(listener, &self.name));
    }

    fn address(&self) -> String {
        self.addr.to_string()
    }
}

fn reuse_port_socket() -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseport(true).expect("SO_REUSEPORT");
    socket
}

/// Whether `/routes` shows `address` ejected.
async fn ejected(proxy: &Proxy, address: &str) -> bool {
    let routes: serde_json::Value =
        serde_json::from_slice(&proxy.admin_get("/routes").await.unwrap().body).unwrap();
    let endpoints = routes["endpoints"].as_array().expect("endpoints");
    let endpoint = endpoints
        .iter()
        .find(|e| e["address"] == address)
        .unwrap_or_else(|| panic!("{address} in {routes}"));
    endpoint["ejected"] == true
}

/// Kills `a` and sends requests until passive health ejects it (each
/// failed try is retried on the other endpoint, so clients see no error).
async fn kill_until_ejected(proxy: &Proxy, a: &mut Restartable) {
    a.kill();
    wait_until("the killed endpoint is ejected", DEADLINE, || async {
        spread(proxy, "www.mango.com", 2).await;
        ejected(proxy, &a.address()).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_health_check_ends_the_ejection_of_a_restarted_endpoint() {
    let mut a = Restartable::start("a");
    let b = Backend::echo("b").await;
    let proxy = Proxy::start(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new()
            .address(&a.address(), None)
            .backend(&b)
            // The probes must not take `a` out before a request ejects it
            // (that would be a different story): a high unhealthyThreshold.
            .field(
                "healthCheck",
                "{path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 2, unhealthyThreshold: 50}",
            )
            .field("passiveHealth", "{consecutiveFailures: 1, baseEjection: 10m}"),
    )]))
    .await;
    let seen = spread(&proxy, "www.mango.com", 4).await;
    assert!(seen.contains(&"a".to_owned()), "{seen:?}");

    kill_until_ejected(&proxy, &mut a).await;
    a.restart();
    // Two passing probes end a ten-minute ejection.
    wait_until(
        "the restarted endpoint gets requests again",
        DEADLINE,
        || async {
            spread(&proxy, "www.mango.com", 4)
                .await
                .contains(&"a".to_owned())
        },
    )
    .await;
    assert!(!ejected(&proxy, &a.address()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_other_endpoint_dies_an_ejected_one_serves_rather_than_502() {
    let mut a = Restartable::start("a");
    let mut b = Restartable::start("b");
    // No active checks: nothing but a request can end `a`'s ejection.
    let proxy = Proxy::start(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new()
            .address(&a.address(), None)
            .address(&b.address(), None)
            .field(
                "passiveHealth",
                "{consecutiveFailures: 1, baseEjection: 10m}",
            ),
    )]))
    .await;
    kill_until_ejected(&proxy, &mut a).await;
    a.restart();
    let seen = spread(&proxy, "www.mango.com", 4).await;
    assert_eq!(seen, ["b", "b", "b", "b"], "a is still ejected");

    // `b` dies; it cannot be ejected (with `a` out that would be 100% of
    // the rule), so it is still picked first, and its failure is retried
    // on the ejected `a` instead of answering 502.
    b.kill();
    let seen = spread(&proxy, "www.mango.com", 10).await;
    assert!(seen.iter().all(|s| s == "a"), "{seen:?}");
    // `a` answered a last-resort request: its ejection is over.
    assert!(!ejected(&proxy, &a.address()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_whose_endpoints_are_all_ejected_still_tries_them_rather_than_503() {
    let failing = Arc::new(AtomicBool::new(true));
    let backend = Backend::http("flaky", {
        let failing = failing.clone();
        move |_| {
            let status = if failing.load(Ordering::SeqCst) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            async move { Response::builder().status(status).body(empty()).unwrap() }
        }
    })
    .await;
    let proxy = Proxy::start(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new().backend(&backend).field(
            "passiveHealth",
            "{consecutiveFailures: 1, baseEjection: 10m, maxEjectedPercent: 100}",
        ),
    )]))
    .await;
    assert_eq!(
        proxy.get("www.mango.com", "/").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(ejected(&proxy, &backend.address()).await);

    // Every endpoint ejected: the request still goes to one (Envoy's
    // panic mode), and its success ends the ejection.
    failing.store(false, Ordering::SeqCst);
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.text());
    assert_eq!(reply.backend(), Some("flaky"));
    assert!(!ejected(&proxy, &backend.address()).await);
    assert_eq!(backend.requests(), 2);
}
