//! Clients (pooled HTTP/1.1, h2c, single connections) and the collected
//! `Reply` / backend `Echo` that tests assert on.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::*;

/// A fully collected response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Collects `resp`'s body.
    pub async fn collect<B>(resp: Response<B>) -> Reply
    where
        B: Body<Data = Bytes>,
        B::Error: fmt::Debug,
    {
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .expect("collect response body")
            .to_bytes();
        Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        }
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-backend` header set by every harness HTTP backend.
    pub fn backend(&self) -> Option<&str> {
        self.header("x-backend")
    }

    /// Parses the body as an echo backend's report; panics with the status
    /// and body otherwise.
    pub fn echo(&self) -> Echo {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "expected 200 from an echo backend, got {} with body {:?}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("echo body is not JSON ({e}): {:?}", self.text()))
    }
}

/// What an echo backend actually received.
#[derive(Debug, Deserialize)]
pub struct Echo {
    pub backend: String,
    pub method: String,
    /// Request target as received (origin-form: path + query).
    pub uri: String,
    pub version: String,
    /// Every header as received, in order.
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    /// The body as text when at most 64 KiB, else empty.
    pub body: String,
}

impl Echo {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of header `name`; panics if it appears more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(
            all.len() <= 1,
            "header {name} received {} times: {all:?}",
            all.len()
        );
        all.first().copied()
    }
}

// === clients ===

/// A pooled HTTP/1.1 client.
pub fn http1_client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A pooled h2c (prior knowledge) client.
pub fn h2c_client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// One HTTP/1.1 client connection, kept open across requests (with upgrade
/// support), so a test can prove the same connection keeps working.
pub struct H1Conn {
    sender: hyper::client::conn::http1::SendRequest<TestBody>,
    task: JoinHandle<()>,
}

impl H1Conn {
    /// Connects to `addr` and performs the HTTP/1.1 handshake.
    pub async fn connect(addr: SocketAddr) -> H1Conn {
        let stream = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        H1Conn::handshake(stream).await.expect("http1 handshake")
    }

    /// Performs the HTTP/1.1 handshake over `io` (plain TCP or TLS).
    pub async fn handshake<IO>(io: IO) -> Result<H1Conn, hyper::Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        let task = tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(H1Conn { sender, task })
    }

    /// True while the connection is usable.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `req` with no deadline of its own (the caller bounds it).
    pub async fn send_unbounded(
        &mut self,
        req: Request<TestBody>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    /// Sends `req` (origin-form URI, e.g. `/path`) on this connection.
    pub async fn try_send(
        &mut self,
        req: Request<TestBody>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        within("connection ready", self.sender.ready()).await?;
        within("response headers", self.sender.send_request(req)).await
    }

    /// Sends `req` and collects the response; panics if the connection fails.
    pub async fn send(&mut self, req: Request<TestBody>) -> Reply {
        let resp = self
            .try_send(req)
            .await
            .expect("request on the kept-alive connection failed (was it closed?)");
        within("response body", Reply::collect(resp)).await
    }

    /// GET `path` with `Host: host` on this connection.
    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        let req = Request::get(path)
            .header(http::header::HOST, host)
            .body(empty())
            .unwrap();
        self.send(req).await
    }
}

impl Drop for H1Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One h2c prior-knowledge connection. Requests use absolute URIs whose
/// authority becomes `:authority` (e.g. `http://www.mango.com/x`).
#[derive(Clone)]
pub struct H2Conn {
    sender: hyper::client::conn::http2::SendRequest<TestBody>,
    /// `http` (h2c) or `https` (over TLS): the scheme of [`H2Conn::get`]'s
    /// URIs, i.e. the `:scheme` sent.
    scheme: &'static str,
}

impl H2Conn {
    /// Connects to `addr` and performs the HTTP/2 handshake (no upgrade).
    pub async fn connect(addr: SocketAddr) -> H2Conn {
        let stream = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        H2Conn::handshake(stream, "http")
            .await
            .expect("h2c handshake")
    }

    /// Performs the HTTP/2 handshake over `io`; `scheme` is `http` for
    /// h2c, `https` over TLS.
    pub async fn handshake<IO>(io: IO, scheme: &'static str) -> Result<H2Conn, hyper::Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H2Conn { sender, scheme })
    }

    /// True while the connection is usable (no GOAWAY, not closed).
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `req` and collects the response.
    pub async fn send(&mut self, req: Request<TestBody>) -> Reply {
        self.try_send(req).await.expect("h2 request failed")
    }

    /// Sends `req` and collects the response, or the connection's error.
    pub async fn try_send(&mut self, req: Request<TestBody>) -> Result<Reply, hyper::Error> {
        within("h2 connection ready", self.sender.ready()).await?;
        let resp = within("h2 response headers", self.sender.send_request(req)).await?;
        Ok(within("h2 response body", Reply::collect(resp)).await)
    }

    /// GET `{scheme}://{authority}{path}`.
    pub async fn get(&mut self, authority: &str, path: &str) -> Reply {
        let req = Request::get(format!("{}://{authority}{path}", self.scheme))
            .body(empty())
            .unwrap();
        self.send(req).await
    }
}

/// A request builder for `method path` through `proxy` with `Host: host`.
pub fn request(proxy: &Proxy, method: Method, host: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(proxy.url(path))
        .header(http::header::HOST, host)
}

/// An address that refuses connections for the rest of the test process:
/// a socket bound to it, never listening, holds the port. (A port bound and
/// released could be handed to another test's backend binding `:0` at the
/// same time, and the "dead" endpoint would answer.)
pub fn refused_addr() -> SocketAddr {
    static HELD: std::sync::Mutex<Vec<tokio::net::TcpSocket>> = std::sync::Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let addr = socket.local_addr().expect("local address");
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(socket);
    addr
}

/// Text and binary messages sent on `ws` come back unchanged, also ten
/// sent back to back.
pub async fn assert_websocket_echoes<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut echo = async |what: &str, sent: Message| {
        ws.send(sent.clone()).await.unwrap();
        let got = within(what, ws.next()).await.expect("open").unwrap();
        assert_eq!(got, sent);
    };
    echo("text echo", Message::text("hello mango")).await;
    let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    echo("binary echo", Message::binary(bin)).await;
    for i in 0..10 {
        ws.send(Message::text(format!("msg {i}"))).await.unwrap();
    }
    for i in 0..10 {
        let got = within("pipelined echo", ws.next()).await.expect("open");
        assert_eq!(got.unwrap(), Message::text(format!("msg {i}")));
    }
}
