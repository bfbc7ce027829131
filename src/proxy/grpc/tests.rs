//! `grpc-timeout` both ways, the status of every proxy-made failure, and
//! the trailers-only answer.

use http::HeaderValue;

use super::*;
use crate::policy::firewall::Denied;

fn parsed(text: &str) -> Option<Duration> {
    parse_timeout(&HeaderValue::from_str(text).unwrap())
}

#[test]
fn grpc_timeout_parses_every_unit() {
    assert_eq!(parsed("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(parsed("2M"), Some(Duration::from_secs(120)));
    assert_eq!(parsed("3S"), Some(Duration::from_secs(3)));
    assert_eq!(parsed("250m"), Some(Duration::from_millis(250)));
    assert_eq!(parsed("7u"), Some(Duration::from_micros(7)));
    assert_eq!(parsed("9n"), Some(Duration::from_nanos(9)));
    assert_eq!(parsed("0m"), Some(Duration::ZERO));
    assert_eq!(
        parsed("99999999H"),
        Some(Duration::from_secs(99_999_999 * 3600))
    );
    assert_eq!(parsed("00000010S"), Some(Duration::from_secs(10)));
}

#[test]
fn a_malformed_grpc_timeout_is_ignored() {
    for bad in [
        "",
        "m",
        "10",
        "10x",
        "10 m",
        " 10m",
        "-1m",
        "+1m",
        "1.5S",
        "123456789m",
        "10mm",
        "1h",
        "1s",
        "１m",
    ] {
        let Ok(value) = HeaderValue::from_str(bad) else {
            continue;
        };
        assert_eq!(parse_timeout(&value), None, "{bad:?}");
    }
}

fn formatted(d: Duration) -> String {
    format_timeout(d).to_str().unwrap().to_owned()
}

#[test]
fn the_remaining_budget_is_rounded_up_in_the_shortest_exact_form() {
    assert_eq!(formatted(Duration::ZERO), "0m");
    assert_eq!(formatted(Duration::from_nanos(1)), "1m");
    assert_eq!(formatted(Duration::from_micros(1500)), "2m");
    assert_eq!(formatted(Duration::from_millis(1500)), "1500m");
    assert_eq!(formatted(Duration::from_millis(2000)), "2S");
    assert_eq!(formatted(Duration::from_secs(90)), "90S");
    assert_eq!(formatted(Duration::from_secs(120)), "2M");
    assert_eq!(formatted(Duration::from_secs(7200)), "2H");
    // Past 8 digits of milliseconds: whole seconds, rounded up.
    assert_eq!(formatted(Duration::from_millis(100_000_001)), "100001S");
    assert_eq!(formatted(Duration::MAX), "99999999H");
}

#[test]
fn a_formatted_timeout_parses_back_to_at_least_the_budget() {
    for ms in [
        1u64,
        999,
        1_000,
        59_999,
        60_000,
        3_599_999,
        99_999_999,
        100_000_000,
    ] {
        let budget = Duration::from_millis(ms) - Duration::from_nanos(1);
        let back = parse_timeout(&format_timeout(budget)).unwrap();
        assert!(back >= budget, "{budget:?} came back as {back:?}");
        assert!(
            back - budget < Duration::from_secs(1),
            "{budget:?} → {back:?}"
        );
    }
}

#[test]
fn the_deadline_is_the_earlier_of_the_rule_and_the_client() {
    let now = Instant::now();
    let mut headers = HeaderMap::new();
    headers.insert(GRPC_TIMEOUT, HeaderValue::from_static("100m"));
    let client = now + Duration::from_millis(100);
    let total = Some(Duration::from_secs(5));
    assert_eq!(deadline(&headers, true, total, now), Some(client));
    assert_eq!(
        deadline(&headers, true, Some(Duration::from_millis(10)), now),
        Some(now + Duration::from_millis(10))
    );
    assert_eq!(deadline(&headers, true, None, now), Some(client));
    // Not a gRPC request: its grpc-timeout means nothing.
    assert_eq!(deadline(&headers, false, None, now), None);
    headers.insert(GRPC_TIMEOUT, HeaderValue::from_static("soon"));
    assert_eq!(deadline(&headers, true, None, now), None);
}

#[test]
fn each_try_forwards_what_is_left_of_the_deadline() {
    let now = Instant::now();
    let mut headers = HeaderMap::new();
    headers.insert(GRPC_TIMEOUT, HeaderValue::from_static("10S"));
    set_timeout(&mut headers, Some(now + Duration::from_millis(2500)), now);
    assert_eq!(headers[GRPC_TIMEOUT], "2500m");
    set_timeout(&mut headers, Some(now), now + Duration::from_secs(1));
    assert_eq!(headers[GRPC_TIMEOUT], "0m");
    set_timeout(&mut headers, None, now);
    assert_eq!(headers[GRPC_TIMEOUT], "0m", "no deadline: left as it was");
}

#[test]
fn grpc_is_told_by_the_content_type() {
    let with = |ct: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        is_grpc(&headers)
    };
    assert!(with("application/grpc"));
    assert!(with("application/grpc+proto"));
    assert!(with("application/grpc;charset=utf-8"));
    assert!(with("application/grpc-web+proto"));
    assert!(!with("application/json"));
    assert!(!with("text/plain"));
    assert!(!is_grpc(&HeaderMap::new()));
}

#[test]
fn every_proxy_made_failure_has_its_grpc_status() {
    #[rustfmt::skip]
    let cases: Vec<(ProxyError, Code)> = vec![
        (ProxyError::NoRoute, Code::Unimplemented),
        (ProxyError::Forbidden(Denied::DeniedPath), Code::PermissionDenied),
        (ProxyError::RateLimited { retry_after_secs: 1 }, Code::ResourceExhausted),
        (ProxyError::BodyTooLarge, Code::ResourceExhausted),
        (ProxyError::NoEndpoint("no endpoints".into()), Code::Unavailable),
        (ProxyError::NoHealthyEndpoint, Code::Unavailable),
        (ProxyError::AmbiguousResponse, Code::Unavailable),
        (ProxyError::Misdirected, Code::Unavailable),
        (ProxyError::Timeout, Code::DeadlineExceeded),
        (ProxyError::BodyTimeout, Code::DeadlineExceeded),
        (ProxyError::ClientGone, Code::Cancelled),
        (ProxyError::BadRequest, Code::Internal),
        (ProxyError::UriTooLong, Code::Internal),
        (ProxyError::AmbiguousPath, Code::Internal),
        (ProxyError::MethodNotAllowed, Code::Internal),
        (ProxyError::ProtocolNotImplemented, Code::Unimplemented),
        (ProxyError::NotSwitched, Code::Unavailable),
        (ProxyError::BadBody, Code::Internal),
    ];
    for (err, code) in cases {
        let (got, message) = status_of(&err);
        assert_eq!(got, code, "{err:?}");
        assert!(
            message
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'%'),
            "{message:?} needs no percent-encoding"
        );
        let response = failed(&err);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[GRPC_STATUS], (code as u8).to_string());
        assert_eq!(response.headers()[GRPC_MESSAGE], message);
    }
}

#[test]
fn a_trailers_only_answer_is_200_grpc_with_an_empty_body() {
    use http_body::Body as _;
    let response = failed(&ProxyError::NoRoute);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/grpc");
    assert_eq!(response.headers()[GRPC_STATUS], "12");
    assert!(response.body().is_end_stream());
}

#[test]
fn a_redirect_is_unavailable_with_the_location_percent_encoded() {
    let location = HeaderValue::from_static("https://www.mango.com/a%20b");
    let response = redirected(&location);
    assert_eq!(response.headers()[GRPC_STATUS], "14");
    assert_eq!(
        response.headers()[GRPC_MESSAGE],
        "redirected to https://www.mango.com/a%2520b"
    );
}
