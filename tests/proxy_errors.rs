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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_slower_than_the_request_timeout_is_not_a_504() {
    // The timeout covers the backend's answer, not the client's upload.
    let (backend, mut arrivals) = Backend::upload_observer("upload").await;
    let proxy = Proxy::start(&yaml(&[
        route("up").rule(Rule::new().backend(&backend).request_timeout("200ms"))
    ]))
    .await;

    let (tx, body) = body_channel();
    let req = request(&proxy, http::Method::POST, "www.mango.com", "/upload")
        .body(body)
        .unwrap();
    let pending = tokio::spawn({
        let client = proxy.client();
        async move { Reply::collect(client.request(req).await.expect("upload")).await }
    });
    tx.send(bytes::Bytes::from_static(b"part-1;"))
        .await
        .unwrap();
    within("part 1 to reach the backend", arrivals.recv())
        .await
        .unwrap();
    hold_for(
        "the upload to stay unanswered for several request timeouts",
        std::time::Duration::from_millis(800),
        || async { !pending.is_finished() },
    )
    .await;
    tx.send(bytes::Bytes::from_static(b"part-2;"))
        .await
        .unwrap();
    drop(tx);
    let reply = within("upload response", pending).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "14");
}

/// Sends raw bytes on a fresh connection and returns everything the proxy
/// answers before closing.
async fn raw_exchange(proxy: &Proxy, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    within(
        "the proxy to answer and close",
        stream.read_to_end(&mut out),
    )
    .await
    .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_authority_wins_over_the_host_header() {
    let mango = Backend::echo("mango").await;
    let apple = Backend::echo("apple").await;
    let proxy = Proxy::start(&yaml(&[
        route("mango")
            .host("www.mango.com")
            .rule(Rule::new().backend(&mango)),
        route("apple")
            .host("www.apple.com")
            .rule(Rule::new().backend(&apple)),
    ]))
    .await;

    let answer = raw_exchange(
        &proxy,
        "GET http://www.mango.com/x HTTP/1.1\r\nHost: www.apple.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!((mango.requests(), apple.requests()), (1, 0));
    // Routed and forwarded with one host: the backend sees the authority.
    assert!(answer.contains("www.mango.com"), "{answer}");
    assert!(!answer.contains("www.apple.com"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_refused_with_405() {
    let backend = Backend::echo("mango").await;
    let proxy = Proxy::start(&yaml(&[route("any").rule(Rule::new().backend(&backend))])).await;
    let answer = raw_exchange(
        &proxy,
        "CONNECT www.mango.com:443 HTTP/1.1\r\nHost: www.mango.com:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert_eq!(backend.requests(), 0);
}
