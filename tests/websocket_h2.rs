//! WebSocket over HTTP/2 (RFC 8441 extended CONNECT): HTTP/2 clients, h2c
//! and over TLS, open WebSockets through the proxy to HTTP/1.1 WebSocket
//! backends; plain CONNECT stays refused, other protocols are 501, and the
//! rule's routing and firewall see the request as the GET it becomes.

mod support;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use hyper::client::conn::http2::SendRequest;
use hyper::ext::Protocol;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use switchyard::snapshot::TlsSettings;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Sender = SendRequest<TestBody>;
type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// An HTTP/2 client connection over `io`; the receiver says whether the
/// peer's SETTINGS allow extended CONNECT. (hyper drives the h2
/// connection in a task of its own, so the flag is looked at every 10 ms.)
async fn h2_handshake<IO>(io: IO) -> (Sender, watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = within(
        "the HTTP/2 handshake",
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)),
    )
    .await
    .expect("HTTP/2 handshake");
    let (enabled_tx, enabled) = watch::channel(false);
    let mut conn = Box::pin(conn);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = every.tick() => {
                    let now = conn.is_extended_connect_protocol_enabled();
                    enabled_tx.send_if_modified(|was| std::mem::replace(was, now) != now);
                }
            }
        }
    });
    (tx, enabled)
}

/// An HTTP/2 client connection over `io` whose peer's SETTINGS, which a
/// client must see before an extended CONNECT, have arrived.
async fn h2_over<IO>(io: IO) -> Sender
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut enabled) = h2_handshake(io).await;
    within(
        "the proxy's SETTINGS to allow extended CONNECT",
        enabled.wait_for(|on| *on),
    )
    .await
    .expect("the connection is open");
    tx
}

/// An h2c (prior knowledge) connection to the proxy's plain listener.
async fn h2c(proxy: &Proxy) -> Sender {
    h2_over(tokio::net::TcpStream::connect(proxy.addr).await.unwrap()).await
}

/// A CONNECT for `url`, with `:protocol` set to `protocol` if given.
fn connect(url: &str, protocol: Option<&'static str>) -> Request<TestBody> {
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(url)
        .header("sec-websocket-version", "13")
        .body(empty())
        .unwrap();
    if let Some(protocol) = protocol {
        req.extensions_mut().insert(Protocol::from_static(protocol));
    }
    req
}

/// Sends `req` and returns the response's status and headers.
async fn status_of(tx: &mut Sender, req: Request<TestBody>) -> (StatusCode, HeaderMap) {
    let response = within("the response", tx.send_request(req))
        .await
        .expect("a response");
    (response.status(), response.headers().clone())
}

/// Opens a WebSocket with an extended CONNECT for `url`; returns the
/// response's headers and the socket.
async fn open(tx: &mut Sender, req: Request<TestBody>) -> (HeaderMap, Socket) {
    let response = within("the extended CONNECT", tx.send_request(req))
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK, "the tunnel opens");
    let headers = response.headers().clone();
    let upgraded = within("the tunnel", hyper::upgrade::on(response))
        .await
        .expect("an upgraded stream");
    let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    (headers, socket)
}

/// Text and binary messages go out and come back unchanged.
async fn assert_echoes(ws: &mut Socket) {
    ws.send(Message::text("hello mango")).await.unwrap();
    let got = within("text echo", ws.next()).await.expect("open").unwrap();
    assert_eq!(got, Message::text("hello mango"));
    let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    ws.send(Message::binary(bin.clone())).await.unwrap();
    let got = within("binary echo", ws.next())
        .await
        .expect("open")
        .unwrap();
    assert_eq!(got, Message::binary(bin));
    for i in 0..10 {
        ws.send(Message::text(format!("msg {i}"))).await.unwrap();
    }
    for i in 0..10 {
        let got = within("pipelined echo", ws.next())
            .await
            .expect("open")
            .unwrap();
        assert_eq!(got, Message::text(format!("msg {i}")));
    }
}

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
    assert_echoes(&mut ws).await;
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_websockets_share_one_http2_connection() {
    let (_backend, proxy) = ws_proxy(|b| Rule::prefix("/ws").backend(b)).await;
    let mut tx = h2c(&proxy).await;
    let url = "http://www.mango.com/ws/chat";
    let (_, mut one) = open(&mut tx, connect(url, Some("websocket"))).await;
    let (_, mut two) = open(&mut tx, connect(url, Some("WebSocket"))).await;
    assert_echoes(&mut two).await;
    assert_echoes(&mut one).await;
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
    assert_echoes(&mut ws).await;
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
    assert_echoes(&mut ws).await;
}

/// A WebSocket backend that reports each handshake's headers and picks
/// the `chat` subprotocol.
async fn recording_backend() -> (Backend, mpsc::UnboundedReceiver<HeaderMap>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let backend = Backend::raw("recording", move |stream| {
        let seen_tx = seen_tx.clone();
        async move {
            // tungstenite's callback type: its error is a whole response.
            #[allow(clippy::result_large_err)]
            let record = |req: &WsRequest, mut response: WsResponse| {
                let _ = seen_tx.send(req.headers().clone());
                let chat = http::HeaderValue::from_static("chat");
                response
                    .headers_mut()
                    .insert("sec-websocket-protocol", chat);
                Ok(response)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() && ws.send(msg).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    (backend, seen)
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
    let routes = documents(&[
        yaml(&[route("a")
            .host("a.example.test")
            .tls("a-cert")
            .rule(Rule::new().backend(&backend))]),
        cert.secret("default", "a-cert"),
    ]);
    let proxy = Proxy::start_tls(RoutesLayout::File(&routes), TlsSettings::default()).await;
    let conn = TlsClient::h2(&pki, "a.example.test")
        .must_connect(proxy.tls())
        .await;
    assert_eq!(conn.negotiated.alpn.as_deref(), Some(&b"h2"[..]));
    let mut tx = h2_over(conn.stream).await;
    let req = connect("https://a.example.test/chat", Some("websocket"));
    let (_, mut ws) = open(&mut tx, req).await;
    assert_echoes(&mut ws).await;
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
    assert_echoes(&mut ws).await;
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
    assert_echoes(&mut ws).await;
    proxy.wait_stopped().await.expect("a clean stop");
    let end = within("the tunnel to close", ws.next()).await;
    assert!(
        !matches!(end, Some(Ok(Message::Text(_) | Message::Binary(_)))),
        "{end:?}"
    );
}
