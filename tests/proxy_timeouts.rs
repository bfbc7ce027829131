//! Timeouts: `connect` bounds connecting to an endpoint (504, or a retry
//! elsewhere), `total` bounds the whole exchange (504 before the response
//! head, a cut body after), `idle` cuts a response body that stalls.

mod support;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_timeout_before_the_head_is_504() {
    let slow = Backend::hang("slow").await;
    let proxy = Proxy::start(&yaml(&[route("slow").rule(
        Rule::new()
            .backend(&slow)
            .field("timeouts", "{total: 200ms}"),
    )]))
    .await;

    let reply = within("the 504", proxy.get("www.mango.com", "/")).await;
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{:?}",
        reply.text()
    );
    assert!(reply.backend().is_none());
}

/// Sends a GET to a stepper backend through `proxy` and returns the
/// response once its first chunk arrived, with the sender of the body
/// (held open: the backend stalls).
async fn stalled_stream(
    proxy: &Proxy,
    bodies: &mut tokio::sync::mpsc::UnboundedReceiver<tokio::sync::mpsc::Sender<Bytes>>,
) -> (hyper::body::Incoming, tokio::sync::mpsc::Sender<Bytes>) {
    let req = request(proxy, Method::GET, "www.mango.com", "/stream")
        .body(empty())
        .unwrap();
    let pending = tokio::spawn({
        let client = proxy.client();
        async move { client.request(req).await }
    });
    let chunks = within("the request to reach the backend", bodies.recv())
        .await
        .unwrap();
    chunks.send(Bytes::from_static(b"chunk-1;")).await.unwrap();
    let resp = within("response headers", pending)
        .await
        .unwrap()
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = within("chunk 1", body.frame()).await;
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    (body, chunks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_cuts_a_stalled_body() {
    let (backend, mut bodies) = Backend::stepper("stepper").await;
    let proxy = Proxy::start(&yaml(&[route("step").rule(
        Rule::new()
            .backend(&backend)
            .field("timeouts", "{idle: 200ms}"),
    )]))
    .await;

    let (body, _chunks) = stalled_stream(&proxy, &mut bodies).await;
    // The backend keeps the body open and silent: the proxy cuts it.
    let rest = within("the stalled body to be cut", body.collect()).await;
    assert!(rest.is_err(), "the body must end with an error: {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_timeout_cuts_a_streaming_body() {
    let (backend, mut bodies) = Backend::stepper("stepper").await;
    let proxy = Proxy::start(&yaml(&[route("step").rule(
        Rule::new()
            .backend(&backend)
            .field("timeouts", "{total: 300ms}"),
    )]))
    .await;

    let (body, _chunks) = stalled_stream(&proxy, &mut bodies).await;
    let rest = within("the body to be cut at the deadline", body.collect()).await;
    assert!(rest.is_err(), "the body must end with an error: {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_keeps_coming_is_not_cut_by_idle() {
    let (backend, mut bodies) = Backend::stepper("stepper").await;
    let proxy = Proxy::start(&yaml(&[route("step").rule(
        Rule::new()
            .backend(&backend)
            .field("timeouts", "{idle: 10s}"),
    )]))
    .await;

    let (body, chunks) = stalled_stream(&proxy, &mut bodies).await;
    chunks.send(Bytes::from_static(b"chunk-2;")).await.unwrap();
    drop(chunks);
    let rest = within("the end of the body", body.collect())
        .await
        .expect("a whole body")
        .to_bytes();
    assert_eq!(&rest[..], b"chunk-2;");
}

/// A test host whose address never completes a TCP handshake, or `None`
/// (with a message) where test hosts cannot be created (not root).
fn black_hole() -> Option<support::netns::TestHost> {
    let Some(host) = support::netns::TestHost::create() else {
        eprintln!("skipped: cannot create a network namespace here (needs root and `ip`)");
        return None;
    };
    host.blackhole();
    Some(host)
}

/// Well under the proxy's default connect timeout (5s): an answer before
/// this came from the rule's `timeouts.connect`.
const FAST: std::time::Duration = std::time::Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_without_retries_is_504() {
    let Some(host) = black_hole() else { return };
    let silent = format!("{}:8080", host.ip);
    let proxy = Proxy::start(&yaml(&[route("mango").rule(
        Rule::new()
            .address(&silent, None)
            .field("timeouts", "{connect: 200ms}")
            .field("retries", "{attempts: 0}"),
    )]))
    .await;

    let started = tokio::time::Instant::now();
    let reply = tokio::time::timeout(FAST, proxy.get("www.mango.com", "/"))
        .await
        .expect("the connect timeout must answer well before the 5s default");
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{:?}",
        reply.text()
    );
    assert!(reply.text().contains("connecting"), "{:?}", reply.text());
    assert!(reply.backend().is_none());
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_timeout_is_retried_on_another_endpoint() {
    let Some(host) = black_hole() else { return };
    let silent = format!("{}:8080", host.ip);
    let live = Backend::echo("live").await;
    let proxy = Proxy::start(&yaml(&[route("mango").rule(
        Rule::new()
            .address(&silent, None)
            .backend(&live)
            .field("timeouts", "{connect: 200ms}"),
    )]))
    .await;

    // Round robin: some of these pick the silent endpoint first, time out
    // connecting and are retried on the live one (default retries).
    for _ in 0..4 {
        let reply = tokio::time::timeout(FAST, proxy.get("www.mango.com", "/"))
            .await
            .expect("a retried connect timeout must answer well before the 5s default");
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.text());
        assert_eq!(reply.backend(), Some("live"));
    }
    assert_eq!(live.requests(), 4);
}
