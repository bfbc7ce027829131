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

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::{Request, Response, Status};

use crate::support::{within, TlsClient};

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
pub const SEEN_TIMEOUT: &str = "/test.Test/SeenTimeout";
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

#[path = "grpc_backend.rs"]
mod backend;

pub use backend::GrpcBackend;

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

/// A `grpc-timeout` value as the proxy writes it (`m`, `S`, `M` or `H`),
/// in milliseconds.
pub fn timeout_ms(value: &str) -> u64 {
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("digits in {value:?}"));
    match unit {
        "m" => n,
        "S" => n * 1_000,
        "M" => n * 60_000,
        "H" => n * 3_600_000,
        _ => panic!("the proxy writes no unit {unit:?} ({value:?})"),
    }
}
