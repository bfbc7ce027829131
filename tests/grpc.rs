//! gRPC answers the proxy makes itself: every failure is a trailers-only
//! status a gRPC client reads (never an HTML or text body), and a call's
//! `grpc-timeout` bounds the exchange and goes on to the backend as what
//! is left of it. Real tonic clients (and raw HTTP/2 requests, to see the
//! wire) against the real proxy.

#[path = "support/grpc.rs"]
mod grpc;
mod support;

use std::time::Duration;

use http::{Method, Request, StatusCode};
use tokio::time::Instant;
use tonic::Code;

use grpc::*;
use support::*;

const HOST: &str = "grpc.test";

/// A gRPC call by hand over `h2`: POST `path` with `content-type:
/// application/grpc`, `te: trailers`, one framed `message` and the extra
/// `headers`.
async fn raw_call(h2: &mut H2Conn, path: &str, message: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{HOST}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    h2.send(request.body(full(framed(message))).unwrap()).await
}

/// Asserts `reply` is a trailers-only gRPC answer with `code`: HTTP 200,
/// `content-type: application/grpc`, the status in the head, no body.
fn assert_trailers_only(reply: &Reply, code: Code, what: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/grpc"),
        "{what}"
    );
    let status = reply.header("grpc-status");
    assert_eq!(
        status,
        Some((code as i32).to_string().as_str()),
        "{what}: {reply:?}"
    );
    assert!(reply.header("grpc-message").is_some(), "{what}: a message");
    assert!(
        reply.body.is_empty(),
        "{what}: no body, got {:?}",
        reply.text()
    );
}

#[tokio::test]
async fn every_proxy_made_error_is_a_trailers_only_status() {
    let echo = Backend::echo("echo").await;
    let hang = Backend::hang("hang").await;
    let refused = refused_addr().to_string();
    let yaml = yaml(&[route("grpc")
        .host(HOST)
        .rule(
            Rule::prefix("/deny.T")
                .field("firewall", "{denyPaths: [/deny.T]}")
                .backend(&echo),
        )
        .rule(
            Rule::prefix("/limit.T")
                .field("rateLimit", "{requestsPerSecond: 1, burst: 1}")
                .backend(&echo),
        )
        .rule(Rule::prefix("/empty.T").no_backends())
        .rule(Rule::prefix("/refused.T").address(&refused, None))
        .rule(
            Rule::prefix("/slow.T")
                .field("timeouts", "{request: 200ms}")
                .backend(&hang),
        )
        .rule(
            Rule::prefix("/big.T")
                .field("maxBodySize", "1Ki")
                .backend(&echo),
        )
        .rule(
            Rule::prefix("/moved.T")
                .field("redirect", "{hostname: www.mango.com, statusCode: 308}"),
        )]);
    let proxy = Proxy::start(&yaml).await;
    let mut h2 = H2Conn::connect(proxy.addr).await;
    let client = GrpcClient::h2c(proxy.addr, HOST).await;
    let stranger = GrpcClient::h2c(proxy.addr, "unknown.test").await;

    // The first call through the rate limit takes its only token.
    let _ = client.unary("/limit.T/Call", "first").await;
    let big = vec![b'x'; 64 * 1024];
    let cases: [(&str, &[u8], Code); 7] = [
        ("/deny.T/Call", b"hi", Code::PermissionDenied),
        ("/limit.T/Call", b"hi", Code::ResourceExhausted),
        ("/empty.T/Call", b"hi", Code::Unavailable),
        ("/refused.T/Call", b"hi", Code::Unavailable),
        ("/slow.T/Call", b"hi", Code::DeadlineExceeded),
        ("/big.T/Call", &big, Code::ResourceExhausted),
        ("/moved.T/Call", b"hi", Code::Unavailable),
    ];
    for (path, message, code) in cases {
        let reply = raw_call(&mut h2, path, message, &[]).await;
        assert_trailers_only(&reply, code, path);
        let status = client.unary(path, message.to_vec()).await.unwrap_err();
        assert_eq!(status.code(), code, "{path}: tonic reads {status:?}");
    }
    let status = stranger.unary("/any.T/Call", "hi").await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "no route: {status:?}");
    let moved = client.unary("/moved.T/Call", "hi").await.unwrap_err();
    assert!(moved.message().contains("www.mango.com"), "{moved:?}");
}

#[tokio::test]
async fn a_plain_request_still_gets_a_plain_error() {
    let proxy = Proxy::start(&yaml(&[route("grpc")
        .host(HOST)
        .rule(Rule::new().no_backends())]))
    .await;
    let reply = proxy.get(HOST, "/x").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.header("grpc-status").is_none());
}

#[tokio::test]
async fn a_grpc_timeout_shorter_than_the_rules_answers_deadline_exceeded_in_time() {
    let hang = Backend::hang("hang").await;
    let rule = Rule::new()
        .field("timeouts", "{request: 30s, total: 60s}")
        .backend(&hang);
    let proxy = Proxy::start(&yaml(&[route("grpc").host(HOST).rule(rule)])).await;
    let client = GrpcClient::h2c(proxy.addr, HOST).await;
    let started = Instant::now();
    let status = client
        .unary_within("/hang.T/Call", "hi", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "the rule's 30s did not apply: {took:?}"
    );
}

#[tokio::test]
async fn a_malformed_grpc_timeout_is_ignored_and_forwarded_as_is() {
    let echo = Backend::echo("echo").await;
    let proxy = Proxy::start(&yaml(&[route("grpc")
        .host(HOST)
        .rule(Rule::new().backend(&echo))]))
    .await;
    let mut h2 = H2Conn::connect(proxy.addr).await;
    let reply = raw_call(&mut h2, "/echo.T/Call", b"hi", &[("grpc-timeout", "soon")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.echo().header("grpc-timeout"), Some("soon"));
}

#[tokio::test]
async fn the_backend_gets_what_is_left_of_the_deadline_as_grpc_timeout() {
    let echo = Backend::echo("echo").await;
    let rule = Rule::new().field("timeouts", "{total: 2s}").backend(&echo);
    let proxy = Proxy::start(&yaml(&[route("grpc").host(HOST).rule(rule)])).await;
    let mut h2 = H2Conn::connect(proxy.addr).await;
    let budget = |reply: &Reply| timeout_ms(reply.echo().header("grpc-timeout").expect("sent"));
    // The client's 5 s is cut to the rule's total (2 s), less the time spent.
    let reply = raw_call(&mut h2, "/echo.T/Call", b"hi", &[("grpc-timeout", "5S")]).await;
    let left = budget(&reply);
    assert!((1000..=2000).contains(&left), "forwarded {left}m");
    // The client's 700 ms is sooner than the rule's.
    let reply = raw_call(&mut h2, "/echo.T/Call", b"hi", &[("grpc-timeout", "700m")]).await;
    let left = budget(&reply);
    assert!((1..=700).contains(&left), "forwarded {left}m");
    // Without one, the rule's total still tells the backend its budget.
    let reply = raw_call(&mut h2, "/echo.T/Call", b"hi", &[]).await;
    assert!((1000..=2000).contains(&budget(&reply)));
}

/// An HTTP/1.1 backend that answers like a gRPC server streaming: `200`,
/// `content-type: application/grpc`, a body the test feeds (framed
/// messages) through the returned senders, one per call, and never
/// trailers: a cut stream from an HTTP/1.1 backend gets its status from
/// the proxy too (tests/grpc_calls.rs has the HTTP/2 backends).
async fn grpc_like_stepper() -> (Backend, tokio::sync::mpsc::UnboundedReceiver<StreamFeed>) {
    let (calls_tx, calls) = tokio::sync::mpsc::unbounded_channel();
    let backend = Backend::http("stepper", move |_req| {
        let calls = calls_tx.clone();
        async move {
            let (tx, body) = body_channel();
            let _ = calls.send(tx);
            http::Response::builder()
                .header("content-type", "application/grpc")
                .body(body)
                .unwrap()
        }
    })
    .await;
    (backend, calls)
}

type StreamFeed = tokio::sync::mpsc::Sender<bytes::Bytes>;

/// A server-streaming call through `proxy` to the stepper: the stream,
/// once its first message arrived, and the feed that sent it.
async fn first_message(
    proxy: &Proxy,
    calls: &mut tokio::sync::mpsc::UnboundedReceiver<StreamFeed>,
) -> (tonic::codec::Streaming<bytes::Bytes>, StreamFeed) {
    let client = GrpcClient::h2c(proxy.addr, HOST).await;
    let call = tokio::spawn(async move { client.server_streaming("/s.T/Stream", "x").await });
    let feed = within("the call to reach the backend", calls.recv())
        .await
        .unwrap();
    feed.send(framed(b"first")).await.unwrap();
    let mut stream = within("the response head", call)
        .await
        .unwrap()
        .expect("a stream");
    let first = next_message(&mut stream).await.expect("no status yet");
    assert_eq!(first.as_deref(), Some(&b"first"[..]));
    (stream, feed)
}

#[tokio::test]
async fn a_stream_idle_past_the_timeout_ends_with_unavailable_trailers() {
    let (backend, mut calls) = grpc_like_stepper().await;
    let rule = Rule::new()
        .field("timeouts", "{idle: 300ms}")
        .backend(&backend);
    let proxy = Proxy::start(&yaml(&[route("grpc").host(HOST).rule(rule)])).await;
    let (mut stream, _feed) = first_message(&proxy, &mut calls).await;
    let status = next_message(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("idle"), "{status:?}");
}

#[tokio::test]
async fn a_stream_past_the_deadline_ends_with_deadline_exceeded_trailers() {
    let (backend, mut calls) = grpc_like_stepper().await;
    let rule = Rule::new()
        .field("timeouts", "{total: 500ms}")
        .backend(&backend);
    let proxy = Proxy::start(&yaml(&[route("grpc").host(HOST).rule(rule)])).await;
    let (mut stream, _feed) = first_message(&proxy, &mut calls).await;
    let status = next_message(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test]
async fn a_backend_gone_mid_stream_ends_the_call_with_unavailable() {
    let (backend, mut calls) = grpc_like_stepper().await;
    let rule = Rule::new().backend(&backend);
    let proxy = Proxy::start(&yaml(&[route("grpc").host(HOST).rule(rule)])).await;
    // The feed stays open: the body is cut by the connection dropping,
    // never ended cleanly.
    let (mut stream, _feed) = first_message(&proxy, &mut calls).await;
    drop(backend);
    let status = next_message(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("broke"), "{status:?}");
}

/// Refused before its body was read, a call's stream would be reset; h2
/// soon forgets reset streams, and the client's late DATA for each one
/// then counts against the connection (closed with ENHANCE_YOUR_CALM after
/// 1,024). The proxy reads such a body to its end instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_refused_calls_keep_the_client_connection_open() {
    use futures::StreamExt as _;
    let echo = Backend::echo("echo").await;
    let denied = Rule::prefix("/deny.T")
        .field("firewall", "{denyPaths: [/]}")
        .backend(&echo);
    let empty = Rule::prefix("/empty.T").no_backends();
    let yaml = yaml(&[route("grpc").host(HOST).rule(denied).rule(empty)]);
    let proxy = Proxy::start(&yaml).await;
    let client = GrpcClient::h2c(proxy.addr, HOST).await;
    // 3,000 calls of each kind, 32 in flight.
    let calls = (0..6_000).map(|i| match i % 2 {
        0 => ("/deny.T/Call", Code::PermissionDenied),
        _ => ("/empty.T/Call", Code::Unavailable),
    });
    let wrong: Vec<(Code, Code)> = futures::stream::iter(calls)
        .map(|(path, want)| {
            let client = client.clone();
            async move {
                let got = client.unary(path, "hi").await.unwrap_err().code();
                (got, want)
            }
        })
        .buffer_unordered(32)
        .filter(|(got, want)| std::future::ready(got != want))
        .collect()
        .await;
    assert!(
        wrong.is_empty(),
        "{} calls got another status: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
