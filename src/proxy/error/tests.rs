//! Every `ProxyError` variant: its side, whether it may be retried, its
//! status and its label.

use std::io;

use http::StatusCode;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::*;

/// A failed connect: refused.
fn refused() -> ConnectError {
    ConnectError::Io(io::Error::from(io::ErrorKind::ConnectionRefused))
}

/// A real exchange failure: the backend closes the connection without
/// answering.
async fn broken() -> hyper::Error {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let closer = tokio::spawn(async move { drop(listener.accept().await) });
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let request = http::Request::builder()
        .header(header::HOST, "b.test")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let err = tx
        .send_request(request)
        .await
        .expect_err("the backend closed");
    closer.await.expect("closer");
    err
}

#[tokio::test]
async fn each_error_knows_its_side_retryability_and_status() {
    use Side::{Client as C, Proxy as P, Upstream as U};
    let denied = ProxyError::Forbidden(Denied::DeniedPath);
    let limited = ProxyError::RateLimited {
        retry_after_secs: 3,
    };
    let timed_out = ConnectError::TimedOut(std::time::Duration::from_secs(1));
    let tls = ConnectError::Tls(io::Error::other("invalid peer certificate: UnknownIssuer"));
    // (error, side, retried if idempotent, retried otherwise, status, reason)
    #[rustfmt::skip]
    let cases: Vec<(ProxyError, Side, bool, bool, u16, &str)> = vec![
        (ProxyError::NoRoute, C, false, false, 404, "no_route"),
        (ProxyError::BadRequest, C, false, false, 400, "bad_request"),
        (ProxyError::UriTooLong, C, false, false, 414, "uri_too_long"),
        (ProxyError::AmbiguousPath, C, false, false, 400, "ambiguous_path"),
        (ProxyError::MethodNotAllowed, C, false, false, 405, "method_not_allowed"),
        (ProxyError::ProtocolNotImplemented, C, false, false, 501, "protocol_not_implemented"),
        (ProxyError::NotSwitched, U, false, false, 502, "upstream_not_switched"),
        (ProxyError::NoEndpoint("none".into()), P, false, false, 503, "no_endpoint"),
        (ProxyError::NoHealthyEndpoint, U, false, false, 503, "no_healthy_endpoint"),
        (ProxyError::Connect(refused()), U, true, true, 502, "connect_failed"),
        (ProxyError::ConnectTimeout(timed_out), U, true, true, 504, "connect_timeout"),
        (ProxyError::BackendTls(tls), U, true, true, 502, "upstream_tls_failed"),
        (ProxyError::Upstream(broken().await), U, true, false, 502, "upstream_failed"),
        (ProxyError::Unprocessed(broken().await), U, true, true, 502, "upstream_unprocessed"),
        (ProxyError::Timeout, U, false, false, 504, "timeout"),
        (denied, C, false, false, 403, "forbidden"),
        (limited, C, false, false, 429, "rate_limited"),
        (ProxyError::BodyTooLarge, C, false, false, 413, "body_too_large"),
        (ProxyError::BadBody, C, false, false, 400, "bad_request_body"),
        (ProxyError::ClientGone, C, false, false, 400, "client_closed"),
        (ProxyError::BodyTimeout, C, false, false, 408, "client_body_timeout"),
        (ProxyError::AmbiguousResponse, U, true, false, 502, "upstream_ambiguous_length"),
    ];
    for (err, side, idempotent, other, status, reason) in cases {
        let status = StatusCode::from_u16(status).expect("a status");
        assert_eq!(err.side(), side, "side of {reason}");
        assert_eq!(
            err.retryable(true),
            idempotent,
            "{reason} retried if idempotent"
        );
        assert_eq!(err.retryable(false), other, "{reason} retried otherwise");
        assert_eq!(err.status(), status, "status of {reason}");
        assert_eq!(err.reason(), reason);
        let response = err.into_response();
        assert_eq!(response.status(), status, "response status of {reason}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8",
            "content type of {reason}"
        );
    }
}

#[test]
fn connect_failures_are_told_apart_timeouts_and_tls_first() {
    let err = ProxyError::connect(refused());
    assert!(matches!(err, ProxyError::Connect(_)), "{err:?}");
    let err = ProxyError::connect(ConnectError::Io(io::ErrorKind::TimedOut.into()));
    assert!(matches!(err, ProxyError::ConnectTimeout(_)), "{err:?}");
    let err = ProxyError::connect(ConnectError::Tls(io::Error::other("bad certificate")));
    assert!(matches!(err, ProxyError::BackendTls(_)), "{err:?}");
}

#[test]
fn a_client_body_failure_is_the_clients() {
    assert!(matches!(
        ProxyError::from(BodyError::Stalled),
        ProxyError::BodyTimeout
    ));
    assert!(matches!(
        ProxyError::from(BodyError::TooLarge),
        ProxyError::BodyTooLarge
    ));
}

#[test]
fn a_rate_limited_answer_says_when_to_retry() {
    let response = ProxyError::RateLimited {
        retry_after_secs: 7,
    }
    .into_response();
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
}

#[test]
fn every_reason_is_a_metric_label() {
    // Read from the source: some variants hold errors only hyper makes.
    let source = include_str!("../error.rs");
    let start = source.find("pub fn reason(&self)").expect("reason()");
    let end = start + source[start..].find("fn body(&self)").expect("body()");
    let reasons: Vec<&str> = source[start..end].split('"').skip(1).step_by(2).collect();
    assert!(reasons.len() >= 20, "{reasons:?}");
    for reason in reasons {
        assert!(
            crate::metrics::ANSWER_REASONS.contains(&reason),
            "{reason} is not in ANSWER_REASONS"
        );
    }
}
