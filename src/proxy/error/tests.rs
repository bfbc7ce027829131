//! Every `ProxyError` variant: its side, whether it may be retried, its
//! status and its label.

use http::StatusCode;
use http_body_util::Empty;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::*;

/// A real upstream-client error: connecting to a port nothing listens on.
async fn refused() -> hyper_util::client::legacy::Error {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let uri: http::Uri = format!("http://{addr}/").parse().expect("uri");
    let mut request = http::Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = uri;
    match client.request(request).await {
        Ok(response) => panic!("nothing listens at {addr}, got {}", response.status()),
        Err(err) => err,
    }
}

#[tokio::test]
async fn each_error_knows_its_side_retryability_and_status() {
    use Side::{Client as C, Proxy as P, Upstream as U};
    let denied = ProxyError::Forbidden(Denied::DeniedPath);
    let limited = ProxyError::RateLimited {
        retry_after_secs: 3,
    };
    // (error, side, retried if idempotent, retried otherwise, status, reason)
    #[rustfmt::skip]
    let cases: Vec<(ProxyError, Side, bool, bool, u16, &str)> = vec![
        (ProxyError::NoRoute, C, false, false, 404, "no_route"),
        (ProxyError::BadRequest, C, false, false, 400, "bad_request"),
        (ProxyError::UriTooLong, C, false, false, 414, "uri_too_long"),
        (ProxyError::AmbiguousPath, C, false, false, 400, "ambiguous_path"),
        (ProxyError::MethodNotAllowed, C, false, false, 405, "method_not_allowed"),
        (ProxyError::NoEndpoint("none".into()), P, false, false, 503, "no_endpoint"),
        (ProxyError::NoHealthyEndpoint, U, false, false, 503, "no_healthy_endpoint"),
        (ProxyError::Connect(refused().await), U, true, true, 502, "connect_failed"),
        (ProxyError::ConnectTimeout(refused().await), U, true, true, 504, "connect_timeout"),
        (ProxyError::Upstream(refused().await), U, true, false, 502, "upstream_failed"),
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

#[tokio::test]
async fn a_refused_connect_is_a_connect_failure() {
    let err = ProxyError::upstream(refused().await);
    assert!(matches!(err, ProxyError::Connect(_)), "{err:?}");
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
