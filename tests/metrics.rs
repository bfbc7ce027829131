//! `/metrics`: series come from configuration only (random hosts, paths
//! and methods add none), a deleted route's series go with it, and the
//! process-wide families (connections, TLS handshakes) count what happens.

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use support::*;
use switchyard::metrics::Metrics;
use switchyard::proxy::ServeOptions;
use switchyard::snapshot::TlsSettings;

/// Starts the proxy with metrics on over `yaml`.
async fn start_with_metrics(yaml: &str) -> Proxy {
    let serve = ServeOptions {
        drain_timeout: Duration::from_secs(5),
        metrics: Some(Arc::new(Metrics::new(true))),
        ..ServeOptions::default()
    };
    Proxy::start_serving(RoutesLayout::File(yaml), serve).await
}

/// The scrape's sample lines (one per series; histogram buckets too).
async fn series(proxy: &Proxy) -> Vec<String> {
    let reply = proxy.admin_get("/metrics").await.expect("GET /metrics");
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text();
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics: {text}");
    (text.lines())
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(name, _)| name).to_owned())
        .collect()
}

/// A small xorshift generator: random enough, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self) -> String {
        let len = 1 + self.next() % 12;
        (0..len)
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }
}

const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "BREW", "PROPFIND",
];

fn random_request(rng: &mut Rng) -> Request<TestBody> {
    let method = METHODS[(rng.next() % METHODS.len() as u64) as usize];
    let host = match rng.next() % 2 {
        0 => "www.mango.com".to_owned(),
        _ => format!("{}.example", rng.word()),
    };
    let path = format!("/{}/{}", rng.word(), rng.word());
    Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .header(http::header::HOST, host)
        .body(empty())
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_hosts_paths_and_methods_do_not_grow_the_series() {
    let backend = Backend::echo("mango").await;
    let proxy = start_with_metrics(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&backend))]))
    .await;
    // Every method on the route and off it, once: every series the
    // configuration allows for this traffic exists after this.
    let mut conn = H1Conn::connect(proxy.addr).await;
    for method in METHODS {
        for host in ["www.mango.com", "warm.example"] {
            let req = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).expect("method"))
                .uri("/warm")
                .header(http::header::HOST, host)
                .body(empty())
                .expect("request");
            conn.send(req).await;
        }
    }
    let before = series(&proxy).await;

    const CONNECTIONS: u64 = 8;
    const REQUESTS: u64 = 100_000;
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let addr = proxy.addr;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c + 1));
            let mut conn = H1Conn::connect(addr).await;
            for _ in 0..REQUESTS / CONNECTIONS {
                let reply = conn.send(random_request(&mut rng)).await;
                assert!(
                    matches!(reply.status, StatusCode::OK | StatusCode::NOT_FOUND),
                    "{}",
                    reply.status
                );
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }

    let after = series(&proxy).await;
    assert_eq!(
        after, before,
        "series changed under random hosts, paths and methods"
    );
    let text = proxy.admin_get("/metrics").await.unwrap().text();
    assert!(
        !text.contains(".example"),
        "a request's host became a label"
    );
    assert!(!text.contains("BREW"), "a request's method became a label");
    let unmatched = text
        .lines()
        .filter(|l| l.starts_with("switchyard_route_requests_total{route=\"-\""))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum::<u64>();
    assert!(unmatched > REQUESTS / 4, "unmatched requests: {unmatched}");
}

fn two_routes(mango: &Backend, apple: &Backend) -> String {
    yaml(&[
        route("mango")
            .host("www.mango.com")
            .rule(Rule::new().backend(mango)),
        route("apple")
            .host("www.apple.com")
            .rule(Rule::new().backend(apple)),
    ])
}

/// The value of the sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    line.rsplit_once(' ')?.1.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_routes_series_are_gone_after_the_next_publish() {
    let mango = Backend::echo("mango").await;
    let apple = Backend::echo("apple").await;
    let proxy = start_with_metrics(&two_routes(&mango, &apple)).await;
    assert_eq!(proxy.get("www.mango.com", "/").await.status, StatusCode::OK);
    assert_eq!(proxy.get("www.apple.com", "/").await.status, StatusCode::OK);
    let text = proxy.admin_get("/metrics").await.unwrap().text();
    let mango_line = "switchyard_route_requests_total{route=\"default/mango\",rule=\"0\",backend=\"static\",method=\"GET\",code=\"2xx\"}";
    assert_eq!(sample(&text, mango_line), Some(1), "{text}");
    assert!(text.contains("route=\"default/apple\""), "{text}");

    proxy.write_routes(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&mango))]));
    wait_until("apple to be gone", DEADLINE, || async {
        proxy.get("www.apple.com", "/").await.status == StatusCode::NOT_FOUND
    })
    .await;

    let text = proxy.admin_get("/metrics").await.unwrap().text();
    assert!(
        !text.contains("default/apple"),
        "apple's series stayed: {text}"
    );
    // The kept route's counter went on across the publish.
    assert_eq!(sample(&text, mango_line), Some(1), "{text}");
}

/// Every sample line of `family` (its name as scraped) with its labels.
fn samples<'t>(text: &'t str, family: &str) -> Vec<&'t str> {
    (text.lines())
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_counts_answers_tries_endpoints_connections_and_publishes() {
    let backend = Backend::echo("mango").await;
    let dead = refused_addr().to_string();
    let proxy = start_with_metrics(&yaml(&[route("mango").host("www.mango.com").rule(
        Rule::new()
            .address(&dead, None)
            .backend(&backend)
            .algorithm("RoundRobin")
            .field("passiveHealth", "{consecutiveFailures: 0}")
            .field(
                "retries",
                "{attempts: 1, budget: {percent: 100, minPerSecond: 1000}}",
            )
            .field("rateLimit", "{requestsPerSecond: 1, burst: 4}"),
    )]))
    .await;
    let mut conn = H1Conn::connect(proxy.addr).await;
    let mut limited = 0;
    for _ in 0..8 {
        let reply = conn.get("www.mango.com", "/").await;
        limited += usize::from(reply.status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(limited > 0, "the rate limit never answered");
    let status = proxy.route_status("default", "mango").await;
    assert_eq!(status["reason"], "Accepted", "{status}");
    let text = proxy.admin_get("/metrics").await.unwrap().text();

    let answers = samples(&text, "switchyard_route_answers_total");
    assert!(
        answers
            .iter()
            .any(|l| l.contains("reason=\"rate_limited\"")),
        "{answers:?}"
    );
    let tries = samples(&text, "switchyard_route_try_events_total");
    assert!(
        tries
            .iter()
            .any(|l| l.contains("event=\"connect_failure\"")),
        "{text}"
    );
    assert!(
        tries.iter().any(|l| l.contains("event=\"retry\"")),
        "{tries:?}"
    );
    let endpoints = samples(&text, "switchyard_backend_endpoints");
    assert!(
        endpoints
            .iter()
            .any(|l| l.contains("state=\"ready\"") && l.ends_with(" 2")),
        "{endpoints:?}"
    );
    assert_eq!(
        sample(&text, "switchyard_route_table_routes{state=\"served\"}"),
        Some(1)
    );
    assert_eq!(
        sample(
            &text,
            "switchyard_config_publishes_total{result=\"published\"}"
        ),
        Some(1),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "switchyard_client_connections_open{listener=\"http\"}"
        ),
        Some(1),
        "{text}"
    );
    assert!(
        !samples(&text, "switchyard_config_last_publish_timestamp_seconds").is_empty(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_counted_open_until_the_backend_closes_them() {
    let backend = Backend::echo("mango").await;
    let proxy = start_with_metrics(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&backend))]))
    .await;
    let open = |protocol: &'static str| {
        let proxy = &proxy;
        async move {
            let text = proxy.admin_get("/metrics").await.unwrap().text();
            let name = format!("switchyard_upstream_connections_open{{protocol=\"{protocol}\"}}");
            sample(&text, &name)
        }
    };
    assert_eq!(open("http1").await, Some(0), "none before a request");
    let mut conn = H1Conn::connect(proxy.addr).await;
    assert_eq!(conn.get("www.mango.com", "/").await.status, StatusCode::OK);
    // Kept idle in the pool after the exchange.
    assert_eq!(open("http1").await, Some(1));
    assert_eq!(open("h2").await, Some(0));
    drop(backend);
    wait_until(
        "the closed connection to be uncounted",
        DEADLINE,
        || async { open("http1").await == Some(0) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_are_counted_by_result() {
    let pki = Pki::new("metrics test CA");
    let cert = pki.leaf(&["a.example.test"]);
    let backend = Backend::echo("a").await;
    let routes = one_tls_route("a.example.test", &cert, &backend);
    let serve = ServeOptions {
        drain_timeout: Duration::from_secs(5),
        metrics: Some(Arc::new(Metrics::new(false))),
        ..ServeOptions::default()
    };
    let proxy =
        Proxy::start_tls_serving(RoutesLayout::File(&routes), serve, TlsSettings::default()).await;
    TlsClient::h1(&pki, "a.example.test")
        .handshake(proxy.tls())
        .await;
    // No certificate for this name, and no default: refused.
    let unknown = TlsClient::builder(&pki, "b.example.test")
        .accept_any_certificate()
        .build();
    assert!(unknown.connect(proxy.tls()).await.is_err());
    let counted = |result: &'static str| {
        let proxy = &proxy;
        async move {
            let text = proxy.admin_get("/metrics").await.unwrap().text();
            let name = format!("switchyard_tls_handshakes_total{{result=\"{result}\"}}");
            sample(&text, &name)
        }
    };
    wait_until("both handshakes counted", DEADLINE, || async {
        counted("ok").await == Some(1) && counted("unknown_name").await == Some(1)
    })
    .await;
    assert_eq!(counted("failed").await, Some(0));
}
