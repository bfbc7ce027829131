//! HTTP/2 to backends (`protocol: H2C`): prior knowledge, one connection
//! shared by many requests, more connections past the server's stream
//! limit, and nothing failed while a backend shuts down gracefully.

mod support;

use std::sync::Arc;

use http::{Method, StatusCode};
use tokio::task::JoinSet;

use support::*;

fn h2c_route(backend: &H2Backend) -> String {
    let rule = Rule::new().backend_with(&backend.backend, "protocol: H2C");
    yaml(&[route("mango").rule(rule)])
}

/// Sends `n` requests through `proxy` from 16 tasks at once (every other
/// one a POST with a body when `posts`); returns the statuses that were
/// not 200.
async fn load(proxy: &Arc<Proxy>, n: usize, posts: bool) -> Vec<String> {
    let mut tasks = JoinSet::new();
    for t in 0..16 {
        let proxy = proxy.clone();
        tasks.spawn(async move {
            let mut failed = Vec::new();
            for i in (t..n).step_by(16) {
                let (method, body) = match posts && i % 2 == 1 {
                    true => (Method::POST, full("posted")),
                    false => (Method::GET, empty()),
                };
                let req = request(&proxy, method, "www.mango.com", "/")
                    .body(body)
                    .unwrap();
                let reply = proxy.send(req).await;
                if reply.status != StatusCode::OK {
                    failed.push(format!("{} {}", reply.status, reply.text()));
                }
            }
            failed
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        failed.extend(done.expect("client task"));
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_backend_gets_http2_with_prior_knowledge_and_the_authority() {
    let backend = H2Backend::h2c("h2").await;
    let proxy = Proxy::start(&h2c_route(&backend)).await;
    let reply = proxy.get("www.mango.com", "/x?y=1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-seen-version"), Some("HTTP/2.0"));
    assert_eq!(reply.header("x-seen-authority"), Some("www.mango.com"));
    let mut h2 = H2Conn::connect(proxy.addr).await;
    let reply = h2.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-seen-version"), Some("HTTP/2.0"));
    assert_eq!(reply.header("x-seen-authority"), Some("www.mango.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_requests_share_one_connection() {
    let backend = H2Backend::h2c("h2").await;
    let proxy = Arc::new(Proxy::start(&h2c_route(&backend)).await);
    // Until a new connection's SETTINGS arrive it is taken to allow one
    // stream; the first answer comes after them.
    assert_eq!(proxy.get("www.mango.com", "/").await.status, StatusCode::OK);
    let failed = load(&proxy, 400, true).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        backend.connections(),
        1,
        "400 requests, 16 at once, one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_allowing_one_stream_gets_more_connections_and_no_failure() {
    let options = H2Options {
        max_streams: Some(1),
        hold_until: Some(8),
        ..H2Options::default()
    };
    let backend = H2Backend::start("one-stream", options).await;
    let proxy = Arc::new(Proxy::start(&h2c_route(&backend)).await);
    // A first request lets the proxy learn the limit from SETTINGS.
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let proxy = proxy.clone();
        tasks.spawn(async move { proxy.get("www.mango.com", "/").await.status });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("client"), StatusCode::OK);
    }
    assert_eq!(backend.max_per_connection(), 1, "the limit was kept");
    assert!(
        backend.connections() >= 8,
        "8 at once need 8 connections, not a queue: {}",
        backend.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_going_away_gracefully_under_load_fails_nothing() {
    let options = H2Options {
        goaway_after: Some(50),
        ..H2Options::default()
    };
    let backend = H2Backend::start("draining", options).await;
    let proxy = Arc::new(Proxy::start(&h2c_route(&backend)).await);
    let failed = load(&proxy, 1000, true).await;
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        backend.connections() >= 10,
        "each connection went away after ~50 requests: {}",
        backend.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn te_trailers_reaches_an_h2_backend_and_other_te_values_do_not() {
    let backend = H2Backend::h2c("h2").await;
    let proxy = Proxy::start(&h2c_route(&backend)).await;
    for (te, seen) in [
        ("trailers", "trailers"),
        ("gzip", "-"),
        ("gzip, trailers", "trailers"),
    ] {
        let req = request(&proxy, Method::GET, "www.mango.com", "/")
            .header("te", te)
            .header("connection", "te")
            .body(empty())
            .unwrap();
        let reply = proxy.send(req).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-seen-te"), Some(seen), "TE: {te}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_to_an_h2c_backend_is_a_bad_gateway() {
    let backend = H2Backend::h2c("h2").await;
    let proxy = Proxy::start(&h2c_route(&backend)).await;
    let req = request(&proxy, Method::GET, "www.mango.com", "/ws")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(empty())
        .unwrap();
    assert_eq!(proxy.send(req).await.status, StatusCode::BAD_GATEWAY);
    assert_eq!(backend.connections(), 0, "no connection was made for it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_backend_echoes_a_grpc_call_over_h2c_through_the_proxy() {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(switchyard::demo::serve_backend(listener, "demo", async {
        let _ = stopped.await;
    }));
    let rule = Rule::new().address_with(&address, "protocol: H2C");
    let proxy = Proxy::start(&yaml(&[route("mango").rule(rule)])).await;
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // One gRPC message: uncompressed, 5 bytes.
    let call = bytes::Bytes::from_static(b"\x00\x00\x00\x00\x05hello");
    let req = http::Request::post("http://www.mango.com/demo.Echo/Say")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(full(call.clone()))
        .unwrap();
    let response = within("the gRPC call", tx.send_request(req)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = within("its body", response.into_body().collect())
        .await
        .unwrap();
    let trailers = body.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(body.to_bytes(), call, "the message echoed");
}
