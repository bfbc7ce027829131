//! Trace context: a valid `traceparent` (and its `tracestate`) reaches
//! the backend over HTTP/1.1, HTTP/2 and gRPC; an invalid one is dropped
//! with its `tracestate`; `x-request-id` is added when absent and kept
//! when sent.

mod support;

use std::convert::Infallible;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An h2c backend answering with what trace headers it saw.
async fn h2c_reporter() -> Backend {
    Backend::raw("h2c", |stream| async move {
        let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
            let seen = |name: &str| {
                let all: Vec<&str> = (req.headers().get_all(name).iter())
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                all.join(",")
            };
            let response = Response::builder()
                .header("x-seen-traceparent", seen("traceparent"))
                .header("x-seen-tracestate", seen("tracestate"))
                .header("x-seen-request-id", seen("x-request-id"))
                .body(Full::new(bytes::Bytes::new()))
                .unwrap();
            Ok::<_, Infallible>(response)
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await
}

fn traced(uri: &str, traceparent: &str) -> http::request::Builder {
    Request::get(uri)
        .header("traceparent", traceparent)
        .header("tracestate", "vendor=opaque")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_trace_context_is_forwarded_over_http1_http2_and_grpc() {
    let echo = Backend::echo("mango").await;
    let h2c = h2c_reporter().await;
    let proxy = Proxy::start(&yaml(&[
        route("mango")
            .host("www.mango.com")
            .rule(Rule::new().backend(&echo)),
        route("grpc")
            .host("grpc.mango.com")
            .rule(Rule::new().backend_with(&h2c, "protocol: H2C")),
    ]))
    .await;

    let req = traced(&proxy.url("/"), TRACEPARENT)
        .header("host", "www.mango.com")
        .body(empty())
        .unwrap();
    let echo = proxy.send(req).await.echo();
    assert_eq!(echo.header("traceparent"), Some(TRACEPARENT));
    assert_eq!(echo.header("tracestate"), Some("vendor=opaque"));

    let mut conn = H2Conn::connect(proxy.addr).await;
    for content_type in ["text/plain", "application/grpc"] {
        let req = traced("http://grpc.mango.com/svc/Method", TRACEPARENT)
            .header("content-type", content_type)
            .header("te", "trailers")
            .body(empty())
            .unwrap();
        let reply = conn.send(req).await;
        assert_eq!(
            reply.header("x-seen-traceparent"),
            Some(TRACEPARENT),
            "{content_type}"
        );
        assert_eq!(reply.header("x-seen-tracestate"), Some("vendor=opaque"));
        assert_eq!(reply.header("x-seen-request-id").map(str::len), Some(33));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_traceparent_is_dropped_with_its_tracestate() {
    let echo = Backend::echo("mango").await;
    let proxy = Proxy::start(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&echo))]))
    .await;
    let bad = [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "garbage",
    ];
    for traceparent in bad {
        let req = traced(&proxy.url("/"), traceparent)
            .header("host", "www.mango.com")
            .body(empty())
            .unwrap();
        let echo = proxy.send(req).await.echo();
        assert_eq!(echo.header("traceparent"), None, "{traceparent}");
        assert_eq!(echo.header("tracestate"), None, "{traceparent}");
    }
    // Two traceparents: which one is the caller's is unknowable.
    let req = traced(&proxy.url("/"), TRACEPARENT)
        .header("traceparent", TRACEPARENT)
        .header("host", "www.mango.com")
        .body(empty())
        .unwrap();
    assert!(proxy
        .send(req)
        .await
        .echo()
        .header_all("traceparent")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_added_when_absent_and_kept_when_sent() {
    let echo = Backend::echo("mango").await;
    let proxy = Proxy::start(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&echo))]))
    .await;
    let first = proxy.get("www.mango.com", "/").await.echo();
    let second = proxy.get("www.mango.com", "/").await.echo();
    let (a, b) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert_ne!(a, b);
    assert_eq!(a[..17], b[..17], "one per-process prefix");

    let req = Request::get(proxy.url("/"))
        .header("host", "www.mango.com")
        .header("x-request-id", "client-chosen")
        .body(empty())
        .unwrap();
    let echo = proxy.send(req).await.echo();
    assert_eq!(echo.header_all("x-request-id"), vec!["client-chosen"]);
}
