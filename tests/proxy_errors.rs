//! What clients see when routing or the backend fails: 404, 502, 503, 504,
//! each with a short text body, and the proxy keeps serving afterwards.

mod support;

use http::StatusCode;
use support::*;

fn assert_status_with_body(reply: &Reply, want: StatusCode, what: &str) {
    assert_eq!(reply.status, want, "{what}: body {:?}", reply.text());
    assert!(
        !reply.body.is_empty(),
        "{what}: the {want} response must carry a short text body"
    );
    assert!(
        reply.backend().is_none(),
        "{what}: the proxy itself must answer, not a backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_backend_is_502() {
    let dead = refused_addr();
    let proxy = Proxy::start(&yaml(&[
        route("dead").rule(Rule::new().address(&dead.to_string(), None))
    ]))
    .await;

    let reply = proxy.get("www.mango.com", "/").await;
    assert_status_with_body(&reply, StatusCode::BAD_GATEWAY, "connection refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_resetting_the_connection_is_502() {
    let reset = Backend::reset("reset").await;
    let proxy = Proxy::start(&yaml(&[route("reset").rule(Rule::new().backend(&reset))])).await;

    let reply = proxy.get("www.mango.com", "/").await;
    assert_status_with_body(&reply, StatusCode::BAD_GATEWAY, "connection reset");
    assert!(
        reset.connections() >= 1,
        "the reset backend was never contacted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_with_no_backends_is_503() {
    let proxy = Proxy::start(&yaml(&[route("empty").rule(Rule::new().no_backends())])).await;

    let reply = proxy.get("www.mango.com", "/").await;
    assert_status_with_body(&reply, StatusCode::SERVICE_UNAVAILABLE, "backends: []");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_slower_than_request_timeout_is_504() {
    let slow = Backend::hang("slow").await;
    let proxy = Proxy::start(&yaml(&[
        route("slow").rule(Rule::new().backend(&slow).request_timeout("200ms"))
    ]))
    .await;

    let reply = proxy.get("www.mango.com", "/").await;
    assert_status_with_body(
        &reply,
        StatusCode::GATEWAY_TIMEOUT,
        "timeouts.request 200ms",
    );
    assert_eq!(slow.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_covers_headers_only_not_a_slow_body() {
    // Headers come at once; the body trickles in over longer than the
    // timeout. timeouts.request bounds time to response headers only.
    let (backend, mut bodies) = Backend::stepper("trickle").await;
    let slow = Backend::hang("slow").await;
    let proxy = Proxy::start(&yaml(&[
        route("trickle")
            .host("trickle.test")
            .rule(Rule::new().backend(&backend).request_timeout("200ms")),
        route("slow")
            .host("slow.test")
            .rule(Rule::new().backend(&slow).request_timeout("300ms")),
    ]))
    .await;

    let req = request(&proxy, http::Method::GET, "trickle.test", "/")
        .body(empty())
        .unwrap();
    let pending = tokio::spawn({
        let client = proxy.client();
        async move { client.request(req).await }
    });
    let chunks = within("request to reach the backend", bodies.recv())
        .await
        .unwrap();
    chunks.send(bytes::Bytes::from_static(b"a")).await.unwrap();
    let resp = within("response headers", pending)
        .await
        .unwrap()
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    assert_eq!(
        &within("chunk a", read_exactly(&mut body, 1)).await[..],
        b"a"
    );

    // Let more than 200ms pass, observably: a 300ms timeout elsewhere fires.
    let reply = proxy.get("slow.test", "/").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);

    chunks.send(bytes::Bytes::from_static(b"b")).await.unwrap();
    drop(chunks);
    assert_eq!(
        &within("chunk b after the timeout", read_exactly(&mut body, 1)).await[..],
        b"b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_is_404() {
    let mango = Backend::echo("mango").await;
    let proxy = Proxy::start(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&mango))]))
    .await;

    let reply = proxy.get("www.unknown.com", "/").await;
    assert_status_with_body(&reply, StatusCode::NOT_FOUND, "unknown host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_host_with_no_matching_rule_is_404() {
    let mango = Backend::echo("mango").await;
    let proxy = Proxy::start(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::prefix("/mango").backend(&mango))]))
    .await;

    let reply = proxy.get("www.mango.com", "/apple").await;
    assert_status_with_body(&reply, StatusCode::NOT_FOUND, "no rule matched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_do_not_break_the_client_connection_or_other_routes() {
    let ok = Backend::echo("ok").await;
    let reset = Backend::reset("reset").await;
    let slow = Backend::hang("slow").await;
    let dead = refused_addr().to_string();
    let proxy = Proxy::start(&yaml(&[route("mixed")
        .rule(Rule::prefix("/ok").backend(&ok))
        .rule(Rule::prefix("/dead").address(&dead, None))
        .rule(Rule::prefix("/reset").backend(&reset))
        .rule(Rule::prefix("/empty").no_backends())
        .rule(
            Rule::prefix("/slow")
                .backend(&slow)
                .request_timeout("200ms"),
        )]))
    .await;

    // All on one client connection: error responses must not close it.
    let mut conn = H1Conn::connect(proxy.addr).await;
    let cases = [
        ("/dead", StatusCode::BAD_GATEWAY),
        ("/ok", StatusCode::OK),
        ("/reset", StatusCode::BAD_GATEWAY),
        ("/ok", StatusCode::OK),
        ("/empty", StatusCode::SERVICE_UNAVAILABLE),
        ("/slow", StatusCode::GATEWAY_TIMEOUT),
        ("/nothing", StatusCode::NOT_FOUND),
        ("/ok", StatusCode::OK),
    ];
    for (path, want) in cases {
        let reply = conn.get("www.mango.com", path).await;
        assert_eq!(reply.status, want, "{path}: {}", reply.text());
    }
    assert_eq!(ok.requests(), 3);
}
