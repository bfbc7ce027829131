//! WebSocket over HTTP/2 (RFC 8441 extended CONNECT): HTTP/2 clients, h2c
//! and over TLS, open WebSockets through the proxy to HTTP/1.1 WebSocket
//! backends; plain CONNECT stays refused, other protocols are 501, and the
//! rule's routing and firewall see the request as the GET it becomes.

#[path = "websocket_h2/backends.rs"]
mod backends;
#[path = "websocket_h2/client.rs"]
mod client;
mod support;

use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use switchyard::snapshot::TlsSettings;
use tokio_tungstenite::tungstenite::Message;

use backends::*;
use client::*;
use support::*;

async fn ws_proxy(rule: impl FnOnce(&Backend) -> Rule) -> (Backend, Proxy) {
    let backend = Backend::websocket("ws").await;
    let proxy = Proxy::start(&yaml(&[route("ws")
        .host("www.mango.com")
        .rule(rule(&backend))]))
    .await;
    (backend, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_echo_through_an_h2c_extended_connect() {
    let (_backend, proxy) = ws_proxy(|b| Rule::prefix("/ws").backend(b)).await;
    let mut tx = h2c(&proxy).await;
    let (headers, mut ws) = open(
        &mut tx,
        connect("http://www.mango.com/ws/chat", Some("websocket")),
    )
    .await;
    for name in [
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "content-length",
    ] {
        assert!(!headers.contains_key(name), "{name} in {headers:?}");
    }
    assert_websocket_echoes(&mut ws).await;
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_websockets_share_one_http2_connection() {
    let (_backend, proxy) = ws_proxy(|b| Rule::prefix("/ws").backend(b)).await;
    let mut tx = h2c(&proxy).await;
    let url = "http://www.mango.com/ws/chat";
    let (_, mut one) = open(&mut tx, connect(url, Some("websocket"))).await;
    let (_, mut two) = open(&mut tx, connect(url, Some("WebSocket"))).await;
    assert_websocket_echoes(&mut two).await;
    assert_websocket_echoes(&mut one).await;
    let reply = status_of(
        &mut tx,
        Request::get("http://www.mango.com/ws/x")
            .body(empty())
            .unwrap(),
    );
    // The backend speaks only WebSocket; what matters is that the
    // connection still serves requests next to the tunnels.
    assert_ne!(reply.await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxys_settings_advertise_extended_connect() {
    let (_backend, proxy) = ws_proxy(|b| Rule::new().backend(b)).await;
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    // h2's own client: its flag is read from the connection's state, which
    // holds the peer's SETTINGS once any later frame has been read.
    let (mut tx, conn) = within("the HTTP/2 handshake", h2::client::handshake(tcp))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let get = Request::get("http://www.mango.com/").body(()).unwrap();
    let (response, _) = tx.send_request(get, true).expect("a stream");
    within("the response", response).await.expect("a response");
    assert!(
        tx.is_extended_connect_protocol_enabled(),
        "SETTINGS_ENABLE_CONNECT_PROTOCOL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_connect_over_http2_is_still_405() {
    let (backend, proxy) = ws_proxy(|b| Rule::new().backend(b)).await;
    let mut tx = h2c(&proxy).await;
    let (status, _) = status_of(&mut tx, connect("www.mango.com:443", None)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(backend.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_connect_for_another_protocol_is_501() {
    let (backend, proxy) = ws_proxy(|b| Rule::new().backend(b)).await;
    let mut tx = h2c(&proxy).await;
    let req = connect("http://www.mango.com/tunnel", Some("connect-udp"));
    let (status, _) = status_of(&mut tx, req).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(backend.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_firewall_refuses_a_websocket_connect() {
    let (backend, proxy) = ws_proxy(|b| {
        Rule::new()
            .backend(b)
            .field("firewall", "{denyPaths: [/private]}")
    })
    .await;
    let mut tx = h2c(&proxy).await;
    let req = connect("http://www.mango.com/private/chat", Some("websocket"));
    assert_eq!(status_of(&mut tx, req).await.0, StatusCode::FORBIDDEN);
    assert_eq!(backend.connections(), 0);
    let (_, mut ws) = open(
        &mut tx,
        connect("http://www.mango.com/chat", Some("websocket")),
    )
    .await;
    assert_websocket_echoes(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_only_rule_matches_a_websocket_connect() {
    let (_backend, proxy) = ws_proxy(|b| {
        Rule::new()
            .matching(Match::prefix("/ws").methods(&["GET"]))
            .backend(b)
    })
    .await;
    let mut tx = h2c(&proxy).await;
    let (_, mut ws) = open(
        &mut tx,
        connect("http://www.mango.com/ws", Some("websocket")),
    )
    .await;
    assert_websocket_echoes(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_gets_an_http1_handshake_with_a_fresh_key() {
    let (backend, mut seen) = recording_backend().await;
    let proxy = Proxy::start(&yaml(&[route("ws").rule(Rule::new().backend(&backend))])).await;
    let mut tx = h2c(&proxy).await;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let mut req = connect("http://www.mango.com/chat", Some("websocket"));
        let protocols = http::HeaderValue::from_static("chat, superchat");
        req.headers_mut()
            .insert("sec-websocket-protocol", protocols);
        let (headers, mut ws) = open(&mut tx, req).await;
        assert_eq!(
            headers["sec-websocket-protocol"], "chat",
            "the backend's choice"
        );
        ws.send(Message::text("hi")).await.unwrap();
        let got = within("echo", ws.next()).await.expect("open").unwrap();
        assert_eq!(got, Message::text("hi"));
        let got = within("the handshake", seen.recv()).await.expect("one");
        assert_eq!(got["upgrade"], "websocket");
        assert_eq!(got["connection"], "upgrade");
        assert_eq!(got["sec-websocket-version"], "13");
        assert_eq!(got["sec-websocket-protocol"], "chat, superchat");
        assert_eq!(got["x-forwarded-host"], "www.mango.com");
        let key = got["sec-websocket-key"].to_str().unwrap().to_owned();
        assert_eq!(key.len(), 24, "16 bytes in base64: {key}");
        assert!(key.ends_with("=="), "{key}");
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "each handshake has its own key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_refusing_the_upgrade_is_passed_on_or_a_bad_gateway() {
    let refusing = Backend::http("refusing", |_req| async move {
        http::Response::builder()
            .status(StatusCode::FORBIDDEN)
            .body(full("no"))
            .unwrap()
    })
    .await;
    let plain = Backend::echo("plain").await;
    let proxy = Proxy::start(&yaml(&[route("ws")
        .rule(Rule::prefix("/refusing").backend(&refusing))
        .rule(Rule::prefix("/plain").backend(&plain))]))
    .await;
    let mut tx = h2c(&proxy).await;
    let req = connect("http://www.mango.com/refusing", Some("websocket"));
    assert_eq!(status_of(&mut tx, req).await.0, StatusCode::FORBIDDEN);
    // A 200 would read as the tunnel opening: the backend did not switch.
    let req = connect("http://www.mango.com/plain", Some("websocket"));
    assert_eq!(status_of(&mut tx, req).await.0, StatusCode::BAD_GATEWAY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_echo_over_an_http2_tls_connection() {
    let pki = Pki::new("switchyard test CA");
    let cert = pki.leaf(&["a.example.test"]);
    let backend = Backend::websocket("ws").await;
    let routes = one_tls_route("a.example.test", &cert, &backend);
    let proxy = Proxy::start_tls(RoutesLayout::File(&routes), TlsSettings::default()).await;
    let conn = TlsClient::h2(&pki, "a.example.test")
        .must_connect(proxy.tls())
        .await;
    assert_eq!(conn.negotiated.alpn.as_deref(), Some(&b"h2"[..]));
    let mut tx = h2_over(conn.stream).await;
    let req = connect("https://a.example.test/chat", Some("websocket"));
    let (_, mut ws) = open(&mut tx, req).await;
    assert_websocket_echoes(&mut ws).await;
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_connect_to_an_h2c_backend_is_a_bad_gateway() {
    let backend = H2Backend::h2c("h2").await;
    let rule = Rule::new().backend_with(&backend.backend, "protocol: H2C");
    let proxy = Proxy::start(&yaml(&[route("mango").rule(rule)])).await;
    let mut tx = h2c(&proxy).await;
    let req = connect("http://www.mango.com/chat", Some("websocket"));
    assert_eq!(status_of(&mut tx, req).await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(backend.connections(), 0, "no connection was made for it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_over_http2_outlives_its_connections_idle_shutdown() {
    let backend = Backend::websocket("ws").await;
    let routes = yaml(&[route("ws").rule(Rule::new().backend(&backend))]);
    let idle = std::time::Duration::from_millis(200);
    let serve = switchyard::proxy::ServeOptions {
        idle_timeout: idle,
        client_header_timeout: idle,
        ..Default::default()
    };
    let proxy = Proxy::start_serving(RoutesLayout::File(&routes), serve).await;
    let mut tx = h2c(&proxy).await;
    let (_, mut ws) = open(
        &mut tx,
        connect("http://www.mango.com/chat", Some("websocket")),
    )
    .await;
    // No new request: the proxy sends GOAWAY, after which the connection
    // takes no new stream, but the open one goes on.
    wait_until("the idle connection to be shut down", DEADLINE, || {
        let closed = tx.is_closed();
        async move { closed }
    })
    .await;
    assert_websocket_echoes(&mut ws).await;
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_over_http2_works_while_draining_and_closes_at_the_deadline() {
    let backend = Backend::websocket("ws").await;
    let routes = yaml(&[route("ws").rule(Rule::new().backend(&backend))]);
    let drain = std::time::Duration::from_secs(1);
    let mut proxy = Proxy::start_with(RoutesLayout::File(&routes), drain).await;
    let mut tx = h2c(&proxy).await;
    let (_, mut ws) = open(
        &mut tx,
        connect("http://www.mango.com/chat", Some("websocket")),
    )
    .await;
    proxy.begin_shutdown().await;
    assert_websocket_echoes(&mut ws).await;
    proxy.wait_stopped().await.expect("a clean stop");
    let end = within("the tunnel to close", ws.next()).await;
    assert!(
        !matches!(end, Some(Ok(Message::Text(_) | Message::Binary(_)))),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_connect_reaches_an_https_backend_over_http1() {
    let pki = Pki::new("backend CA");
    let (backend, mut alpn) = tls_websocket_backend(&pki).await;
    let fields = "protocol: HTTPS, tls: {caCertificateRefs: [{kind: ConfigMap, name: api-ca}], hostname: api.test}";
    let rule = Rule::new().backend_with(&backend, fields);
    let routes = documents(&[
        yaml(&[route("mango").rule(rule)]),
        ca_config_map("default", "api-ca", &pki.ca_pem()),
    ]);
    let proxy = Proxy::start(&routes).await;
    let mut tx = h2c(&proxy).await;
    let (_, mut ws) = open(
        &mut tx,
        connect("http://www.mango.com/chat", Some("websocket")),
    )
    .await;
    assert_websocket_echoes(&mut ws).await;
    let negotiated = within("the backend's handshake", alpn.recv())
        .await
        .expect("one");
    assert_eq!(negotiated.as_deref(), Some(&b"http/1.1"[..]));
}
