//! The gRPC backend of the tests: a tonic server (over raw `Bytes`
//! messages) on `127.0.0.1:0`, h2c or TLS, one method per behaviour a test
//! needs (the paths in `super`), counting connections and requests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_stream::StreamExt as _;
use tonic::codec::Streaming;
use tonic::{Code, Request, Response, Status};

use super::*;
use crate::support::Cert;

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
        GrpcBackend::start(name, Some(cert.acceptor(&[b"h2"]))).await
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
        SEEN_TIMEOUT => {
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
