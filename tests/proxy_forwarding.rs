//! The forwarding contract, asserted on what the backend actually received:
//! methods, hop-by-hop stripping, X-Forwarded-*, Host/path/query
//! preservation, h2c clients, upstream pooling and WebSocket upgrades.

mod support;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version};
use support::*;

/// A proxy sending everything (any host, any path) to one echo backend.
async fn echo_proxy() -> (Backend, Proxy) {
    let backend = Backend::echo("mango-1").await;
    let proxy = Proxy::start(&yaml(&[route("mango").rule(Rule::new().backend(&backend))])).await;
    (backend, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_reaches_the_backend_with_its_method() {
    let (_backend, proxy) = echo_proxy().await;

    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::from_bytes(b"PURGE").unwrap(),
    ];
    for method in methods {
        let reply = proxy
            .send(
                request(&proxy, method.clone(), "www.mango.com", "/m")
                    .body(empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.text());
        assert_eq!(
            reply.header("x-echo-method"),
            Some(method.as_str()),
            "{method}"
        );
        if method == Method::HEAD {
            assert!(reply.body.is_empty(), "HEAD response must have no body");
        } else {
            assert_eq!(reply.echo().method, method.as_str());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_reach_the_backend_intact() {
    let (_backend, proxy) = echo_proxy().await;

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let req = request(&proxy, method.clone(), "www.mango.com", "/m")
            .header("content-type", "text/plain")
            .body(full("hello, mango"))
            .unwrap();
        let echo = proxy.send(req).await.echo();
        assert_eq!(echo.method, method.as_str());
        assert_eq!(echo.body, "hello, mango", "{method}");
        assert_eq!(echo.body_len, 12);
    }

    // A chunked (unknown-length) body arrives whole too.
    let (tx, body) = body_channel();
    let req = request(&proxy, Method::POST, "www.mango.com", "/m")
        .body(body)
        .unwrap();
    let pending = tokio::spawn({
        let client = proxy.client();
        async move { Reply::collect(client.request(req).await.expect("chunked POST")).await }
    });
    for part in ["one,", "two,", "three"] {
        tx.send(Bytes::from_static(part.as_bytes())).await.unwrap();
    }
    drop(tx);
    let echo = within("chunked POST", pending).await.unwrap().echo();
    assert_eq!(echo.body, "one,two,three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_request_headers_are_removed_end_to_end_headers_kept() {
    let (_backend, proxy) = echo_proxy().await;

    let req = request(&proxy, Method::GET, "www.mango.com", "/hop")
        .header("connection", "Keep-Alive, X-Hop")
        .header("connection", "x-other-hop")
        .header("x-hop", "1")
        .header("x-other-hop", "1")
        .header("keep-alive", "timeout=5, max=100")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .header("proxy-connection", "keep-alive")
        .header("x-end-to-end", "kept")
        .body(empty())
        .unwrap();
    let echo = proxy.send(req).await.echo();

    for hop in [
        "connection",
        "x-hop",
        "x-other-hop",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
        "upgrade",
    ] {
        assert_eq!(
            echo.header_all(hop),
            Vec::<&str>::new(),
            "backend received hop-by-hop {hop}"
        );
    }
    assert_eq!(echo.header("x-end-to-end"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upgrade_is_not_forwarded_so_nothing_can_tunnel_past_the_rules() {
    let (_backend, proxy) = echo_proxy().await;

    // A backend that accepted `Upgrade: h2c` would answer 101, and every
    // later request on that connection would skip the proxy's rules. Only
    // WebSocket upgrades are tunnelled; `HTTP2-Settings` never passes.
    let req = request(&proxy, Method::GET, "www.mango.com", "/h2c")
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQAAP__")
        .body(empty())
        .unwrap();
    let reply = proxy.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    let echo = reply.echo();
    for hop in ["upgrade", "http2-settings", "connection"] {
        assert_eq!(
            echo.header_all(hop),
            Vec::<&str>::new(),
            "backend received {hop}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_response_headers_are_removed() {
    let backend = Backend::http("hoppy", |_req| async move {
        Response::builder()
            .header("connection", "x-resp-hop")
            .header("x-resp-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header("x-resp-kept", "yes")
            .body(full("ok"))
            .unwrap()
    })
    .await;
    let proxy = Proxy::start(&yaml(&[route("hoppy").rule(Rule::new().backend(&backend))])).await;

    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    for hop in ["x-resp-hop", "keep-alive", "proxy-connection"] {
        assert!(
            reply.headers.get(hop).is_none(),
            "client received hop-by-hop {hop}: {:?}",
            reply.headers
        );
    }
    if let Some(conn) = reply.header("connection") {
        assert!(
            !conn.to_ascii_lowercase().contains("x-resp-hop"),
            "connection: {conn}"
        );
    }
    assert_eq!(reply.header("x-resp-kept"), Some("yes"));
    assert_eq!(reply.text(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_is_set_to_the_peer_ip() {
    let (_backend, proxy) = echo_proxy().await;

    let echo = proxy.get("www.mango.com", "/").await.echo();
    assert_eq!(echo.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_is_appended_to_an_incoming_one() {
    let (_backend, proxy) = echo_proxy().await;

    let req = request(&proxy, Method::GET, "www.mango.com", "/")
        .header("x-forwarded-for", "1.2.3.4")
        .body(empty())
        .unwrap();
    let echo = proxy.send(req).await.echo();
    assert_eq!(
        echo.header_all("x-forwarded-for"),
        vec!["1.2.3.4, 127.0.0.1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_keeps_every_incoming_value_and_appends_the_peer_last() {
    let (_backend, proxy) = echo_proxy().await;

    let req = request(&proxy, Method::GET, "www.mango.com", "/")
        .header("x-forwarded-for", "1.1.1.1")
        .header("x-forwarded-for", "2.2.2.2, 3.3.3.3")
        .body(empty())
        .unwrap();
    let echo = proxy.send(req).await.echo();
    // Split across lines or joined, the list must read the same.
    assert_eq!(
        echo.header_all("x-forwarded-for").join(", "),
        "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1"
    );
}

/// A GET whose client claims to be 6.6.6.6 in `X-Real-IP` and
/// `Forwarded`, and is 55.55.55.55 by `X-Forwarded-For`.
fn claiming_request(proxy: &Proxy) -> Request<TestBody> {
    request(proxy, Method::GET, "www.mango.com", "/")
        .header("x-real-ip", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-forwarded-for", "55.55.55.55")
        .body(empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_x_real_ip_and_forwarded_are_not_passed_on() {
    let (_backend, proxy) = echo_proxy().await;
    let echo = proxy.send(claiming_request(&proxy)).await.echo();
    assert_eq!(
        echo.header_all("x-real-ip"),
        vec!["127.0.0.1"],
        "X-Real-IP is the peer the proxy judged"
    );
    assert!(echo.header_all("forwarded").is_empty(), "{echo:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_x_real_ip_is_the_client_and_forwarded_is_kept() {
    let backend = Backend::echo("mango-1").await;
    let proxy = Proxy::start_trusting(
        &yaml(&[route("mango").rule(Rule::new().backend(&backend))]),
        &["127.0.0.1/32"],
    )
    .await;
    let echo = proxy.send(claiming_request(&proxy)).await.echo();
    assert_eq!(echo.header_all("x-real-ip"), vec!["55.55.55.55"]);
    assert_eq!(echo.header_all("forwarded"), vec!["for=6.6.6.6"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_proto_and_host_are_set() {
    let (_backend, proxy) = echo_proxy().await;

    let req = request(&proxy, Method::GET, "www.mango.com", "/")
        .header("x-forwarded-proto", "https")
        .body(empty())
        .unwrap();
    let echo = proxy.send(req).await.echo();
    assert_eq!(
        echo.header_all("x-forwarded-proto"),
        vec!["http"],
        "a client's X-Forwarded-Proto is replaced"
    );
    assert_eq!(echo.header_all("x-forwarded-host"), vec!["www.mango.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_path_and_query_are_preserved_exactly() {
    let (_backend, proxy) = echo_proxy().await;

    let cases = [
        ("www.mango.com", "/"),
        ("www.Mango.COM:8080", "/mango/Kiwi"),
        ("www.mango.com", "/mango?"),
        (
            "www.mango.com",
            "/a%2Fb/c%20d;p=1/?x=1&x=2&empty=&=v&q=%E2%9C%93&plus=a+b&sl=/x/?y&br=%5B%5D",
        ),
        ("www.mango.com", "/trailing/slash/?"),
        ("www.mango.com", "/a//double//slash?utm=1&UTM=2"),
    ];
    for (host, path) in cases {
        let echo = proxy.get(host, path).await.echo();
        assert_eq!(echo.uri, path, "path+query for {path}");
        assert_eq!(echo.header_all("host"), vec![host], "Host for {host}");
        assert_eq!(echo.version, "HTTP/1.1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_gets_http2_and_backend_sees_authority_as_host() {
    let (_backend, proxy) = echo_proxy().await;

    let mut conn = H2Conn::connect(proxy.addr).await;
    let reply = conn.get("www.mango.com", "/mango/h2?x=1&y=%20").await;
    assert_eq!(reply.version, Version::HTTP_2);
    let echo = reply.echo();
    assert_eq!(echo.version, "HTTP/1.1", "backends always speak HTTP/1.1");
    assert_eq!(echo.header_all("host"), vec!["www.mango.com"]);
    assert_eq!(echo.uri, "/mango/h2?x=1&y=%20");
    assert_eq!(echo.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(echo.header_all("x-forwarded-host"), vec!["www.mango.com"]);
    assert_eq!(echo.header_all("x-forwarded-proto"), vec!["http"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_requests_are_routed_by_authority() {
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

    let mut conn = H2Conn::connect(proxy.addr).await;
    assert_eq!(conn.get("www.mango.com", "/").await.echo().backend, "mango");
    assert_eq!(
        conn.get("www.apple.com:8080", "/").await.echo().backend,
        "apple"
    );
    let missing = conn.get("www.notmango.com", "/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.version, Version::HTTP_2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_concurrent_streams_with_bodies_all_succeed() {
    let (_backend, proxy) = echo_proxy().await;

    let conn = H2Conn::connect(proxy.addr).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("stream body {i}");
            let req = Request::post(format!("http://www.mango.com/s/{i}"))
                .body(full(body.clone()))
                .unwrap();
            let echo = conn.send(req).await.echo();
            assert_eq!(echo.uri, format!("/s/{i}"));
            assert_eq!(echo.body, body);
        }));
    }
    for task in tasks {
        within("h2 stream", task).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_legacy_client_prior_knowledge_works() {
    let (_backend, proxy) = echo_proxy().await;

    let client = h2c_client();
    let req = Request::get(proxy.url("/pk")).body(empty()).unwrap();
    let resp = within("h2c request", client.request(req))
        .await
        .expect("h2c request");
    let reply = Reply::collect(resp).await;
    assert_eq!(reply.version, Version::HTTP_2);
    let echo = reply.echo();
    assert_eq!(
        echo.header_all("host"),
        vec![proxy.addr.to_string().as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_pooled_across_client_connections() {
    let (backend, proxy) = echo_proxy().await;

    // A fresh client connection per request: only the proxy's upstream pool
    // can keep the backend's connection count low.
    let n = 30;
    for i in 0..n {
        let mut conn = H1Conn::connect(proxy.addr).await;
        let reply = conn.get("www.mango.com", &format!("/pool/{i}")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(backend.requests(), n);
    assert!(
        backend.connections() <= 3,
        "{n} sequential requests opened {} backend connections; expected pooled reuse",
        backend.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_pooled_for_a_keepalive_client() {
    let (backend, proxy) = echo_proxy().await;

    let n = 50;
    for i in 0..n {
        let reply = proxy.get("www.mango.com", &format!("/pool/{i}")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(backend.requests(), n);
    assert!(
        backend.connections() <= 3,
        "{n} sequential requests opened {} backend connections",
        backend.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_text_and_binary_messages_echo_through_the_proxy() {
    let ws_backend = Backend::websocket("ws").await;
    let proxy = Proxy::start(&yaml(&[route("ws")
        .host("www.mango.com")
        .rule(Rule::prefix("/ws").backend(&ws_backend))]))
    .await;

    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, resp) = within(
        "websocket handshake through the proxy",
        tokio_tungstenite::client_async("ws://www.mango.com/ws/chat", tcp),
    )
    .await
    .expect("websocket handshake through the proxy");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);

    assert_websocket_echoes(&mut ws).await;
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_status_headers_and_body_pass_through_unchanged() {
    let backend = Backend::http("teapot", |_req| async move {
        Response::builder()
            .status(StatusCode::CREATED)
            .header("set-cookie", "a=1; Path=/")
            .header("set-cookie", "b=2; HttpOnly")
            .header("x-custom", "Mixed Case Value")
            .header("cache-control", "no-store")
            .body(full("created!"))
            .unwrap()
    })
    .await;
    let proxy = Proxy::start(&yaml(
        &[route("teapot").rule(Rule::new().backend(&backend))],
    ))
    .await;

    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let cookies: Vec<_> = reply.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; HttpOnly"]);
    assert_eq!(reply.header("x-custom"), Some("Mixed Case Value"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.text(), "created!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_error_statuses_are_relayed_not_replaced() {
    let backend = Backend::http("flaky", |req| async move {
        let status = match req.uri().path() {
            "/404" => StatusCode::NOT_FOUND,
            "/500" => StatusCode::INTERNAL_SERVER_ERROR,
            "/502" => StatusCode::BAD_GATEWAY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        Response::builder()
            .status(status)
            .body(full(format!("backend says {}", status.as_u16())))
            .unwrap()
    })
    .await;
    let proxy = Proxy::start(&yaml(&[route("flaky").rule(Rule::new().backend(&backend))])).await;

    for code in [404u16, 500, 502, 503] {
        let reply = proxy.get("www.mango.com", &format!("/{code}")).await;
        assert_eq!(reply.status.as_u16(), code);
        assert_eq!(reply.text(), format!("backend says {code}"));
        assert_eq!(reply.backend(), Some("flaky"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_upload_is_answered_and_forwarded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (_backend, proxy) = echo_proxy().await;

    // What curl does for larger uploads: headers first, body only after
    // "100 Continue".
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(
        b"POST /upload HTTP/1.1\r\nHost: www.mango.com\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let n = within("100 Continue", tcp.read(&mut buf)).await.unwrap();
        assert!(
            n > 0,
            "closed before 100 Continue: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 100 Continue\r\n"),
        "got {text:?}"
    );

    tcp.write_all(b"hello").await.unwrap();
    while !String::from_utf8_lossy(&seen).contains("\"body_len\":5") {
        let n = within("final response", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    let (_interim, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n"),
        "final response: {rest:?}"
    );
    assert!(
        rest.contains("\"body\":\"hello\""),
        "backend did not get the body: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_client_connections_are_all_served() {
    let (backend, proxy) = echo_proxy().await;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let addr = proxy.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = H1Conn::connect(addr).await;
            for j in 0..3 {
                let echo = conn
                    .get("www.mango.com", &format!("/c/{i}/{j}"))
                    .await
                    .echo();
                assert_eq!(echo.uri, format!("/c/{i}/{j}"));
            }
        }));
    }
    for task in tasks {
        within("a concurrent client", task).await.unwrap();
    }
    assert_eq!(backend.requests(), 300);
}
