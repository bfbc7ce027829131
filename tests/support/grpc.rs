//! gRPC for the tests: tonic's own client and server framing (status,
//! trailers-only answers, `grpc-timeout`) over messages that are raw
//! `Bytes` ([`RawCodec`]: no protobuf, no protoc).
//!
//! - [`GrpcBackend`]: a gRPC server on `127.0.0.1:0`, h2c or TLS (ALPN
//!   h2), counting connections and requests, with one method per behaviour
//!   a test needs (the paths below), and [`GrpcBackend::kill`] to drop
//!   every connection mid-stream.
//! - [`GrpcClient`]: tonic's client over one hyper HTTP/2 connection to
//!   the proxy, h2c or TLS ([`super::TlsClient`]).
//!
//! Used by the gRPC test binaries through `#[path]`, so the other test
//! binaries do not build it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_stream::StreamExt as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::{Code, Request, Response, Status};

use crate::support::{within, Cert, TlsClient};

/// Unary: answers the request message.
pub const ECHO: &str = "/test.Test/Echo";
/// Server streaming: the request is a count `N` (ASCII); answers `N`
/// messages `"0"`, `"1"`, …
pub const STREAM: &str = "/test.Test/Stream";
/// Client streaming: answers every request message concatenated.
pub const COLLECT: &str = "/test.Test/Collect";
/// Bidirectional: answers each message as it arrives (nothing buffered).
pub const PING_PONG: &str = "/test.Test/PingPong";
/// Unary: the request `"CODE message"` chooses the status it fails with.
pub const FAIL: &str = "/test.Test/Fail";
/// Unary: answers the `grpc-timeout` it received (`"none"` without one).
pub const DEADLINE: &str = "/test.Test/Deadline";
/// Unary: never answers; [`GrpcBackend::cancelled`] counts the calls
/// dropped (cancelled) while waiting.
pub const HANG: &str = "/test.Test/Hang";
/// Server streaming: one message `"first"`, then nothing until the call
/// is cancelled or the backend killed.
pub const DRIP: &str = "/test.Test/Drip";

// === codec ===

/// Messages are the bytes themselves.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

// === backend ===

#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    requests: AtomicUsize,
    cancelled: AtomicUsize,
    /// The `grpc-timeout` of every request, in arrival order.
    timeouts: Mutex<Vec<Option<String>>>,
}

/// A gRPC server on `127.0.0.1:0` (h2c or TLS); its accept loop and every
/// connection stop when it is dropped or killed.
pub struct GrpcBackend {
    /// Its name, for messages.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GrpcBackend {
    /// A gRPC server over h2c (HTTP/2 prior knowledge).
    pub async fn h2c(name: &str) -> GrpcBackend {
        GrpcBackend::start(name, None).await
    }

    /// A gRPC server over TLS presenting `cert`, ALPN `h2`.
    pub async fn tls(name: &str, cert: &Cert) -> GrpcBackend {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der()], cert.key_der())
            .expect("backend certificate");
        config.alpn_protocols = vec![b"h2".to_vec()];
        GrpcBackend::start(name, Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start(name: &str, tls: Option<TlsAcceptor>) -> GrpcBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(accept(listener, tls, stats.clone()));
        GrpcBackend {
            name: name.to_owned(),
            addr,
            stats,
            task,
        }
    }

    /// The backend's `address:` for route YAML.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Accepted TCP connections so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// gRPC calls received so far.
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// [`HANG`] calls cancelled (dropped by the server) so far.
    pub fn cancelled(&self) -> usize {
        self.stats.cancelled.load(Ordering::SeqCst)
    }

    /// The `grpc-timeout` every call came with, in arrival order.
    pub fn timeouts(&self) -> Vec<Option<String>> {
        self.stats.timeouts.lock().unwrap().clone()
    }

    /// Drops every connection at once (streams in progress end without
    /// trailers) and stops accepting.
    pub fn kill(&self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; aborting drops the `JoinSet`, and
/// with it every connection.
async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, stats: Arc<Stats>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let (tls, stats) = (tls.clone(), stats.clone());
        conns.spawn(async move {
            match tls {
                None => serve(stream, stats).await,
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        serve(stream, stats).await;
                    }
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

async fn serve<IO>(io: IO, stats: Arc<Stats>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let stats = stats.clone();
        async move { Ok::<_, Infallible>(dispatch(stats, req).await) }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// A tonic service made of a closure.
struct Handler<F>(F);

impl<F, R, Fut, T> tower_service::Service<R> for Handler<F>
where
    F: FnMut(R) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    type Response = T;
    type Error = Status;
    type Future = Fut;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: R) -> Fut {
        (self.0)(req)
    }
}

/// Counts a [`HANG`] call as cancelled when the server drops it.
struct OnDrop(Arc<Stats>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.cancelled.fetch_add(1, Ordering::SeqCst);
    }
}

type Reply = http::Response<tonic::body::Body>;

async fn dispatch(stats: Arc<Stats>, req: http::Request<Incoming>) -> Reply {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let timeout = req.headers().get("grpc-timeout");
    let timeout = timeout.map(|t| t.to_str().unwrap_or("?").to_owned());
    stats.timeouts.lock().unwrap().push(timeout.clone());
    let mut grpc = tonic::server::Grpc::new(RawCodec);
    match req.uri().path() {
        ECHO => {
            let echo = |r: Request<Bytes>| async move { Ok(Response::new(r.into_inner())) };
            grpc.unary(Handler(echo), req).await
        }
        STREAM => grpc.server_streaming(Handler(numbers), req).await,
        COLLECT => grpc.client_streaming(Handler(collect), req).await,
        PING_PONG => {
            let echo =
                |r: Request<Streaming<Bytes>>| async move { Ok(Response::new(r.into_inner())) };
            grpc.streaming(Handler(echo), req).await
        }
        FAIL => grpc.unary(Handler(fail), req).await,
        DEADLINE => {
            let seen = Bytes::from(timeout.unwrap_or_else(|| "none".to_owned()));
            let answer = move |_: Request<Bytes>| {
                let seen = seen.clone();
                async move { Ok(Response::new(seen)) }
            };
            grpc.unary(Handler(answer), req).await
        }
        HANG => {
            let hang = move |_: Request<Bytes>| {
                let cancelled = OnDrop(stats.clone());
                async move {
                    std::future::pending::<()>().await;
                    drop(cancelled);
                    Ok(Response::new(Bytes::new()))
                }
            };
            grpc.unary(Handler(hang), req).await
        }
        DRIP => {
            let drip = |_: Request<Bytes>| async move {
                let first = tokio_stream::once(Ok(Bytes::from_static(b"first")));
                Ok(Response::new(first.chain(tokio_stream::pending())))
            };
            grpc.server_streaming(Handler(drip), req).await
        }
        _ => Status::unimplemented("no such method").into_http(),
    }
}

async fn numbers(
    r: Request<Bytes>,
) -> Result<Response<impl tokio_stream::Stream<Item = Result<Bytes, Status>>>, Status> {
    let text = String::from_utf8_lossy(r.get_ref()).into_owned();
    let n: usize = text
        .parse()
        .map_err(|_| Status::invalid_argument("not a count"))?;
    let messages = (0..n).map(|i| Ok(Bytes::from(i.to_string())));
    Ok(Response::new(tokio_stream::iter(messages)))
}

async fn collect(r: Request<Streaming<Bytes>>) -> Result<Response<Bytes>, Status> {
    let mut stream = r.into_inner();
    let mut all = BytesMut::new();
    while let Some(message) = stream.message().await? {
        all.extend_from_slice(&message);
    }
    Ok(Response::new(all.freeze()))
}

async fn fail(r: Request<Bytes>) -> Result<Response<Bytes>, Status> {
    let text = String::from_utf8_lossy(r.get_ref()).into_owned();
    let (code, message) = text.split_once(' ').unwrap_or((&text, ""));
    let code = code.parse::<i32>().unwrap_or(2);
    Err(Status::new(Code::from(code), message))
}

// === client ===

/// One HTTP/2 connection, as tonic's transport.
#[derive(Clone)]
pub struct H2Channel(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

type ChannelFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, hyper::Error>> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for H2Channel {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = ChannelFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> ChannelFuture {
        Box::pin(self.0.send_request(req))
    }
}

/// tonic's client over one HTTP/2 connection; clones share it (so many
/// calls can be in flight on one connection).
#[derive(Clone)]
pub struct GrpcClient {
    grpc: tonic::client::Grpc<H2Channel>,
}

impl GrpcClient {
    /// Over h2c to `addr`; calls go to `http://{authority}`.
    pub async fn h2c(addr: SocketAddr, authority: &str) -> GrpcClient {
        let tcp = within("TCP connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        GrpcClient::over(tcp, &format!("http://{authority}")).await
    }

    /// Over TLS to `addr` with `tls` (offering ALPN h2); calls go to
    /// `https://{authority}`.
    pub async fn tls(addr: SocketAddr, tls: &TlsClient, authority: &str) -> GrpcClient {
        let conn = tls.must_connect(addr).await;
        GrpcClient::over(conn.stream, &format!("https://{authority}")).await
    }

    /// Over `io`, with `origin` (`scheme://authority`) on every call.
    pub async fn over<IO>(io: IO, origin: &str) -> GrpcClient
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = within(
            "HTTP/2 handshake",
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        let origin = origin.parse().expect("origin");
        GrpcClient {
            grpc: tonic::client::Grpc::with_origin(H2Channel(sender), origin),
        }
    }

    async fn ready(&self) -> tonic::client::Grpc<H2Channel> {
        let mut grpc = self.grpc.clone();
        within("the HTTP/2 connection to be ready", grpc.ready())
            .await
            .expect("connection ready");
        grpc
    }

    /// A unary call to `path`.
    pub async fn unary(&self, path: &str, message: impl Into<Bytes>) -> Result<Bytes, Status> {
        self.call(path, Request::new(message.into())).await
    }

    /// A unary call to `path` with `grpc-timeout: timeout`.
    pub async fn unary_within(
        &self,
        path: &str,
        message: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, Status> {
        let mut request = Request::new(message.into());
        request.set_timeout(timeout);
        self.call(path, request).await
    }

    async fn call(&self, path: &str, request: Request<Bytes>) -> Result<Bytes, Status> {
        let mut grpc = self.ready().await;
        let call = grpc.unary(request, path_of(path), RawCodec);
        Ok(within("a unary call", call).await?.into_inner())
    }

    /// A server-streaming call to `path`: the response stream.
    pub async fn server_streaming(
        &self,
        path: &str,
        message: impl Into<Bytes>,
    ) -> Result<Streaming<Bytes>, Status> {
        let mut grpc = self.ready().await;
        let call = grpc.server_streaming(Request::new(message.into()), path_of(path), RawCodec);
        Ok(within("a server-streaming call", call).await?.into_inner())
    }

    /// A client-streaming call to `path` sending `messages`.
    pub async fn client_streaming(
        &self,
        path: &str,
        messages: Vec<Bytes>,
    ) -> Result<Bytes, Status> {
        let mut grpc = self.ready().await;
        let stream = tokio_stream::iter(messages);
        let call = grpc.client_streaming(Request::new(stream), path_of(path), RawCodec);
        Ok(within("a client-streaming call", call).await?.into_inner())
    }

    /// A bidirectional call to `path`: the sender of its request messages
    /// (dropping it ends the request) and the response stream.
    pub async fn streaming(
        &self,
        path: &str,
    ) -> (mpsc::Sender<Bytes>, Result<Streaming<Bytes>, Status>) {
        let mut grpc = self.ready().await;
        let (tx, rx) = mpsc::channel(1);
        let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
        let call = grpc.streaming(Request::new(requests), path_of(path), RawCodec);
        let response = within("a bidirectional call", call).await;
        (tx, response.map(Response::into_inner))
    }
}

fn path_of(path: &str) -> PathAndQuery {
    PathAndQuery::try_from(path).expect("a method path")
}

/// The next message of `stream`, within the test deadline; `None` at its
/// end; the status it failed with.
pub async fn next_message(stream: &mut Streaming<Bytes>) -> Result<Option<Bytes>, Status> {
    within("the next message", stream.message()).await
}

// === route YAML ===

/// A rule's `backends:` (flow YAML) for these gRPC backends over h2c.
pub fn h2c_backends(backends: &[&GrpcBackend]) -> String {
    let each: Vec<String> = backends
        .iter()
        .map(|b| format!("{{address: \"{}\", protocol: H2C}}", b.address()))
        .collect();
    format!("[{}]", each.join(", "))
}

/// A rule's `backends:` (flow YAML) for these gRPC backends over TLS,
/// verified against the `ca.crt` of ConfigMap `ca_config_map` as
/// `hostname`.
pub fn tls_backends(backends: &[&GrpcBackend], ca_config_map: &str, hostname: &str) -> String {
    let each: Vec<String> = backends
        .iter()
        .map(|b| {
            format!(
                "{{address: \"{}\", protocol: HTTPS, tls: {{caCertificateRefs: \
                 [{{kind: ConfigMap, name: {ca_config_map}}}], hostname: {hostname}}}}}",
                b.address()
            )
        })
        .collect();
    format!("[{}]", each.join(", "))
}

/// `message` in gRPC's length-prefixed framing (uncompressed), for tests
/// that send gRPC by hand.
pub fn framed(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).expect("a small message"));
    out.extend_from_slice(message);
    out.freeze()
}
