//! What the proxy allows a client before its request reaches a rule: the
//! size of a request head (431) and of its target (414), a valid Host (400), the time to the first
//! request (silent connections closed), the connection caps (global and per
//! client IP), headers with underscores in their names, and how a request
//! with both Content-Length and Transfer-Encoding is read. Requests hyper's
//! client will not send go out on raw sockets.

mod support;

use std::time::Duration;

use http::{Method, Request, StatusCode};
use support::*;
use switchyard::proxy::ServeOptions;

/// A client header timeout short enough for a test to wait out.
const SHORT: Duration = Duration::from_millis(200);

/// A proxy sending everything (any host, any path) to one echo backend.
async fn echo_proxy(options: ServeOptions) -> (Backend, Proxy) {
    let backend = Backend::echo("mango-1").await;
    let routes = yaml(&[route("mango").rule(Rule::new().backend(&backend))]);
    let proxy = Proxy::start_serving(RoutesLayout::File(&routes), options).await;
    (backend, proxy)
}

/// `GET /x` for `www.mango.com` with one extra header of `len` bytes, closing
/// the connection after the answer.
fn get_with_header(len: usize) -> Vec<u8> {
    format!(
        "GET /x HTTP/1.1\r\nHost: www.mango.com\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(len)
    )
    .into_bytes()
}

// === request head size (431) ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_limit_is_431_and_a_normal_one_passes() {
    let (backend, proxy) = echo_proxy(ServeOptions::default()).await;

    let status = raw_status(proxy.addr, &get_with_header(100 * 1024)).await;
    assert_eq!(status, Some(431), "a 100 KiB header");
    assert_eq!(backend.requests(), 0, "an oversized head was forwarded");

    let status = raw_status(proxy.addr, &get_with_header(16 * 1024)).await;
    assert_eq!(status, Some(200), "a 16 KiB header is within the default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_head_limit_is_configurable() {
    let options = ServeOptions {
        max_request_header_bytes: 64 * 1024,
        ..ServeOptions::default()
    };
    let (_backend, proxy) = echo_proxy(options).await;
    let status = raw_status(proxy.addr, &get_with_header(48 * 1024)).await;
    assert_eq!(status, Some(200), "48 KiB under a 64 KiB limit");
    let status = raw_status(proxy.addr, &get_with_header(80 * 1024)).await;
    assert_eq!(status, Some(431), "80 KiB over a 64 KiB limit");
}

/// `GET` of a path `len` bytes long, closing the connection after the answer.
fn get_path_of(len: usize) -> Vec<u8> {
    let path = format!("/x/{}", "a".repeat(len - 3));
    format!("GET {path} HTTP/1.1\r\nHost: www.mango.com\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_target_over_the_uri_limit_is_414() {
    let (backend, proxy) = echo_proxy(ServeOptions::default()).await;
    let status = raw_status(proxy.addr, &get_path_of(9 * 1024)).await;
    assert_eq!(status, Some(414), "a 9 KiB path over the default 8 KiB");
    assert_eq!(backend.requests(), 0, "an over-long target was forwarded");
    let status = raw_status(proxy.addr, &get_path_of(8 * 1024)).await;
    assert_eq!(status, Some(200), "an 8 KiB path is within the default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uri_limit_is_configurable() {
    let options = ServeOptions {
        max_uri_bytes: 2 * 1024,
        ..ServeOptions::default()
    };
    let (_backend, proxy) = echo_proxy(options).await;
    let status = raw_status(proxy.addr, &get_path_of(2 * 1024)).await;
    assert_eq!(status, Some(200), "2 KiB at a 2 KiB limit");
    let status = raw_status(proxy.addr, &get_path_of(3 * 1024)).await;
    assert_eq!(status, Some(414), "3 KiB over a 2 KiB limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_head_is_cut_off_at_the_limit_not_held() {
    // Each connection sends 200 KiB of one header and never ends the
    // head: the proxy must stop reading at the limit, answer 431 and
    // close, so no connection can pin more than the limit in memory.
    let (backend, proxy) = echo_proxy(ServeOptions::default()).await;
    let mut conns = Vec::new();
    for _ in 0..16 {
        let mut conn = RawConn::connect(proxy.addr).await;
        let head = format!(
            "GET /x HTTP/1.1\r\nHost: www.mango.com\r\nX-Big: {}",
            "a".repeat(200 * 1024)
        );
        let _ = conn.send(head.as_bytes()).await;
        conns.push(conn);
    }
    for conn in &mut conns {
        let head = conn.head().await;
        assert_eq!(head.map(|h| h.status), Some(431));
        conn.wait_closed().await;
    }
    assert_eq!(backend.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_header_list_over_the_limit_is_431() {
    let (backend, proxy) = echo_proxy(ServeOptions::default()).await;
    let mut conn = H2Conn::connect(proxy.addr).await;

    let big = |len: usize| {
        Request::get("http://www.mango.com/x")
            .header("x-big", "a".repeat(len))
            .body(empty())
            .unwrap()
    };
    // Past hyper's own 16 KiB default, within the proxy's 32 KiB limit.
    let reply = conn.send(big(24 * 1024)).await;
    assert_eq!(reply.status, StatusCode::OK, "a 24 KiB header over HTTP/2");
    let reply = conn.send(big(40 * 1024)).await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(backend.requests(), 1);
}

// === Host (400) ===

/// Request heads (without the final empty line) whose host is missing,
/// doubled or not `host[:port]`: each must be answered 400.
const BAD_HOSTS: &[(&str, &str)] = &[
    ("a space", "GET /x HTTP/1.1\r\nHost: a b.test"),
    ("a tab", "GET /x HTTP/1.1\r\nHost: a\tb.test"),
    ("a slash", "GET /x HTTP/1.1\r\nHost: b.test/x"),
    ("a backslash", "GET /x HTTP/1.1\r\nHost: b.test\\x"),
    ("userinfo", "GET /x HTTP/1.1\r\nHost: evil@b.test"),
    ("an empty Host", "GET /x HTTP/1.1\r\nHost: "),
    (
        "a port that is not digits",
        "GET /x HTTP/1.1\r\nHost: b.test:8o",
    ),
    ("an unclosed IP literal", "GET /x HTTP/1.1\r\nHost: [::1"),
    (
        "bytes past an IP literal",
        "GET /x HTTP/1.1\r\nHost: [::1]x",
    ),
    ("a non-ASCII byte", "GET /x HTTP/1.1\r\nHost: b\u{e9}.test"),
    (
        "two Hosts",
        "GET /x HTTP/1.1\r\nHost: a.test\r\nHost: b.test",
    ),
    (
        "two equal Hosts",
        "GET /x HTTP/1.1\r\nHost: a.test\r\nHost: a.test",
    ),
    ("no Host on HTTP/1.1", "GET /x HTTP/1.1"),
    (
        "absolute form without Host on HTTP/1.1",
        "GET http://b.test/x HTTP/1.1",
    ),
    (
        "userinfo in an absolute-form target",
        "GET http://evil@b.test/x HTTP/1.1\r\nHost: b.test",
    ),
];

/// Heads whose host is fine: none may be refused.
const GOOD_HOSTS: &[(&str, &str)] = &[
    ("a name", "GET /x HTTP/1.1\r\nHost: www.mango.com"),
    (
        "a name and port",
        "GET /x HTTP/1.1\r\nHost: www.Mango.COM:8080",
    ),
    ("IPv4 and port", "GET /x HTTP/1.1\r\nHost: 127.0.0.1:80"),
    (
        "IPv6 literal and port",
        "GET /x HTTP/1.1\r\nHost: [::1]:8080",
    ),
    ("reg-name characters", "GET /x HTTP/1.1\r\nHost: a_b~c.test"),
    ("a trailing dot", "GET /x HTTP/1.1\r\nHost: www.mango.com."),
    ("HTTP/1.0 without Host", "GET /x HTTP/1.0"),
    (
        "absolute form with Host",
        "GET http://www.mango.com/x HTTP/1.1\r\nHost: www.apple.com",
    ),
];

/// Sends `head` (plus `Connection: close` and the empty line) on a new
/// connection and returns the status.
async fn status_of(proxy: &Proxy, head: &str) -> Option<u16> {
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    raw_status(proxy.addr, request.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_duplicate_or_malformed_host_is_400() {
    let (backend, proxy) = echo_proxy(ServeOptions::default()).await;
    for (case, head) in BAD_HOSTS {
        assert_eq!(status_of(&proxy, head).await, Some(400), "{case}");
    }
    assert_eq!(backend.requests(), 0, "a bad host was forwarded");
    for (case, head) in GOOD_HOSTS {
        assert_eq!(status_of(&proxy, head).await, Some(200), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_authority_with_userinfo_is_400() {
    let (backend, proxy) = echo_proxy(ServeOptions::default()).await;
    let mut conn = H2Conn::connect(proxy.addr).await;
    let reply = conn.get("evil@www.mango.com", "/x").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = conn.get("www.mango.com:8080", "/x").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(backend.requests(), 1);
}

// === time to the first request ===

/// Options with a short client header timeout.
fn short_header_timeout() -> ServeOptions {
    ServeOptions {
        client_header_timeout: SHORT,
        ..ServeOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_completes_a_request_head_is_closed() {
    let (_backend, proxy) = echo_proxy(short_header_timeout()).await;
    let cases: [(&str, Vec<u8>); 4] = [
        ("nothing sent", Vec::new()),
        ("half the HTTP/2 preface", H2_PREFACE[..12].to_vec()),
        (
            "the HTTP/2 preface, no request",
            [H2_PREFACE, &h2_frame(H2_SETTINGS, 0, 0, &[])].concat(),
        ),
        (
            "half an HTTP/1.1 head",
            b"GET /x HTTP/1.1\r\nHost: www.mango.com\r\n".to_vec(),
        ),
    ];
    for (case, bytes) in cases {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.send(&bytes).await.expect(case);
        // `wait_closed` fails the test if the connection outlives DEADLINE.
        conn.wait_closed().await;
    }
    // The proxy still serves.
    let reply = proxy.get("www.mango.com", "/x").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_is_not_cut_by_the_client_header_timeout() {
    let (backend, mut gate) = Backend::gated("slow").await;
    let routes = yaml(&[route("slow").rule(Rule::new().backend(&backend))]);
    let proxy = Proxy::start_serving(RoutesLayout::File(&routes), short_header_timeout()).await;
    let mut conn = H2Conn::connect(proxy.addr).await;
    let pending = tokio::spawn(async move { conn.get("www.mango.com", "/slow").await });
    gate.arrived().await;
    hold_for(
        "the connection with a request in flight stays open",
        SHORT * 3,
        || std::future::ready(!pending.is_finished()),
    )
    .await;
    gate.release();
    let reply = within("the slow answer", pending).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
}

// === idle connections ===

/// Options with a short client header timeout and idle timeout.
fn short_idle() -> ServeOptions {
    ServeOptions {
        idle_timeout: SHORT,
        ..short_header_timeout()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_idle_after_its_requests_is_shut_down() {
    let (_backend, proxy) = echo_proxy(short_idle()).await;
    let mut conn = H2Conn::connect(proxy.addr).await;
    assert_eq!(conn.get("www.mango.com", "/x").await.status, StatusCode::OK);
    // It answers PINGs, but sends nothing: it must not hold its slot.
    wait_until(
        "the idle HTTP/2 connection to be shut down",
        DEADLINE,
        || std::future::ready(!conn.is_open()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_outlives_the_idle_timeout() {
    let (backend, mut gate) = Backend::gated("slow").await;
    let routes = yaml(&[route("slow").rule(Rule::new().backend(&backend))]);
    let proxy = Proxy::start_serving(RoutesLayout::File(&routes), short_idle()).await;
    let mut conn = H2Conn::connect(proxy.addr).await;
    let pending = tokio::spawn(async move { conn.get("www.mango.com", "/slow").await });
    gate.arrived().await;
    hold_for(
        "the request in flight is still waiting for its answer",
        SHORT * 4,
        || std::future::ready(!pending.is_finished()),
    )
    .await;
    gate.release();
    let reply = within("the slow answer", pending).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
}

// === connection caps ===

const GET_CLOSE: &[u8] = b"GET /x HTTP/1.1\r\nHost: www.mango.com\r\nConnection: close\r\n\r\n";

/// An open HTTP/1.1 connection that has been served once.
async fn served_connection(proxy: &Proxy) -> H1Conn {
    let mut conn = H1Conn::connect(proxy.addr).await;
    assert_eq!(conn.get("www.mango.com", "/x").await.status, StatusCode::OK);
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_the_next_client_waits_until_one_closes() {
    let options = ServeOptions {
        max_connections: 2,
        ..ServeOptions::default()
    };
    let (_backend, proxy) = echo_proxy(options).await;
    let first = served_connection(&proxy).await;
    let _second = served_connection(&proxy).await;

    let addr = proxy.addr;
    let third = tokio::spawn(async move { raw_status(addr, GET_CLOSE).await });
    hold_for(
        "the third client waits while two are open",
        Duration::from_millis(300),
        || std::future::ready(!third.is_finished()),
    )
    .await;
    drop(first);
    let status = within("the third client to be served", third).await;
    assert_eq!(status.unwrap(), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_per_ip_a_new_connection_is_closed() {
    let options = ServeOptions {
        max_connections_per_ip: 2,
        ..ServeOptions::default()
    };
    let (_backend, proxy) = echo_proxy(options).await;
    let first = served_connection(&proxy).await;
    let _second = served_connection(&proxy).await;

    assert_eq!(raw_status(proxy.addr, GET_CLOSE).await, None, "a third");
    drop(first);
    wait_until(
        "a connection from the address is served again",
        DEADLINE,
        || async { raw_status(proxy.addr, GET_CLOSE).await == Some(200) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_are_exempt_from_the_per_ip_cap() {
    let options = ServeOptions {
        max_connections_per_ip: 1,
        trusted_proxies: switchyard::policy::client::TrustedProxies::new([
            switchyard::api::values::parse_cidr("127.0.0.1/32").unwrap(),
        ]),
        ..ServeOptions::default()
    };
    let (_backend, proxy) = echo_proxy(options).await;
    let _first = served_connection(&proxy).await;
    assert_eq!(raw_status(proxy.addr, GET_CLOSE).await, Some(200));
}

// === header names with underscores ===

/// GET with a spoofing `X_Forwarded_For`, `X_Custom` and `X-Custom`.
fn underscored_request(proxy: &Proxy) -> Request<TestBody> {
    request(proxy, Method::GET, "www.mango.com", "/x")
        .header("x_forwarded_for", "6.6.6.6")
        .header("x_custom", "underscore")
        .header("x-custom", "dash")
        .body(empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_with_underscores_are_dropped_by_default() {
    let (_backend, proxy) = echo_proxy(ServeOptions::default()).await;
    let echo = proxy.send(underscored_request(&proxy)).await.echo();
    assert!(echo.header_all("x_forwarded_for").is_empty(), "{echo:?}");
    assert!(echo.header_all("x_custom").is_empty(), "{echo:?}");
    assert_eq!(echo.header_all("x-custom"), vec!["dash"]);
    assert_eq!(echo.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_with_underscores_are_forwarded_when_allowed() {
    let options = ServeOptions {
        underscores_in_headers: true,
        ..ServeOptions::default()
    };
    let (_backend, proxy) = echo_proxy(options).await;
    let echo = proxy.send(underscored_request(&proxy)).await.echo();
    assert_eq!(echo.header_all("x_custom"), vec!["underscore"]);
    assert_eq!(echo.header_all("x-custom"), vec!["dash"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_underscore_header_matches_no_rule() {
    // Dropped before routing: a rule matching on the name never sees it.
    let backend = Backend::echo("mango-1").await;
    let canary = Backend::echo("canary").await;
    let routes = yaml(&[route("mango")
        .rule(
            Rule::new()
                .matching(Match::any().header("x_canary", "1"))
                .backend(&canary),
        )
        .rule(Rule::new().backend(&backend))]);
    let proxy = Proxy::start_serving(RoutesLayout::File(&routes), ServeOptions::default()).await;
    let req = request(&proxy, Method::GET, "www.mango.com", "/x")
        .header("x_canary", "1")
        .body(empty())
        .unwrap();
    assert_eq!(proxy.send(req).await.backend(), Some("mango-1"));
}

// === Content-Length with Transfer-Encoding (kept: read as chunked, then close) ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_chunked_is_read_as_chunked_and_the_connection_closed() {
    let (_backend, proxy) = echo_proxy(ServeOptions::default()).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(
        b"POST /x HTTP/1.1\r\nHost: www.mango.com\r\nContent-Length: 100\r\n\
          Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let head = conn.head().await.expect("an answer");
    assert_eq!(head.status, 200, "{}", head.text);
    assert_eq!(head.header("connection"), Some("close"), "{}", head.text);
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    let body = conn.body(len).await.expect("the echo");
    let echo: Echo = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo.body, "hello", "the chunked body, not 100 bytes");
    assert!(echo.header_all("content-length").is_empty(), "{echo:?}");
    // Nothing after this request is read from the connection.
    conn.wait_closed().await;
}

// === the flags ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_limit_flags_set_the_binarys_limits() {
    let echo = Backend::echo("mango-1").await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(
        &routes,
        yaml(&[route("mango").rule(Rule::new().backend(&echo))]),
    )
    .unwrap();
    let flags = [
        "--client-header-timeout",
        "200ms",
        "--max-request-header-bytes",
        "16Ki",
        "--max-connections",
        "100",
        "--max-connections-per-ip",
        "50",
        "--underscores-in-headers",
        "--max-uri-bytes",
        "2Ki",
        "--idle-timeout",
        "90s",
    ];
    let binary = Binary::ready(&routes, &flags).await;
    let (listen, client) = (binary.listen, http1_client());
    assert_eq!(
        raw_status(listen, &get_with_header(20 * 1024)).await,
        Some(431)
    );
    assert_eq!(
        raw_status(listen, &get_with_header(8 * 1024)).await,
        Some(200)
    );
    assert_eq!(raw_status(listen, &get_path_of(3 * 1024)).await, Some(414));
    let mut silent = RawConn::connect(listen).await;
    silent.wait_closed().await;
    let req = Request::get(format!("http://{listen}/x"))
        .header("host", "www.mango.com")
        .header("x_custom", "kept")
        .body(empty())
        .unwrap();
    let reply = Reply::collect(within("a request", client.request(req)).await.unwrap()).await;
    assert_eq!(reply.echo().header_all("x_custom"), vec!["kept"]);
}
