//! The HTTP/2 client side: connections that wait for the proxy's SETTINGS,
//! extended CONNECT requests, and WebSockets over the tunnels they open.

use http::{HeaderMap, Method, Request, StatusCode};
use hyper::client::conn::http2::SendRequest;
use hyper::ext::Protocol;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::support::{empty, within, Proxy, TestBody};

pub type Sender = SendRequest<TestBody>;
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// An HTTP/2 client connection over `io`; the receiver says whether the
/// peer's SETTINGS allow extended CONNECT. (hyper drives the h2
/// connection in a task of its own, so the flag is looked at every 10 ms.)
pub async fn h2_handshake<IO>(io: IO) -> (Sender, watch::Receiver<bool>)
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
pub async fn h2_over<IO>(io: IO) -> Sender
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
pub async fn h2c(proxy: &Proxy) -> Sender {
    h2_over(tokio::net::TcpStream::connect(proxy.addr).await.unwrap()).await
}

/// A CONNECT for `url`, with `:protocol` set to `protocol` if given.
pub fn connect(url: &str, protocol: Option<&'static str>) -> Request<TestBody> {
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
pub async fn status_of(tx: &mut Sender, req: Request<TestBody>) -> (StatusCode, HeaderMap) {
    let response = within("the response", tx.send_request(req))
        .await
        .expect("a response");
    (response.status(), response.headers().clone())
}

/// Opens a WebSocket with an extended CONNECT for `url`; returns the
/// response's headers and the socket.
pub async fn open(tx: &mut Sender, req: Request<TestBody>) -> (HeaderMap, Socket) {
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
