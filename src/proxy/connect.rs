//! The upstream connector: hyper-util's `HttpConnector` under a connect
//! timeout chosen per request.
//!
//! The pooled client owns one connector, so a rule's `timeouts.connect`
//! reaches it through a task-local: the proxy awaits `client.request(..)`
//! inside [`CONNECT_TIMEOUT`]`.scope(..)`, and the client calls the
//! connector (lazily, on the first poll of its connect future) while that
//! future is polled, i.e. inside the scope. The timeout is read in `call`,
//! so a connect the client later finishes in the background (an idle
//! connection won the race) keeps the limit it started with.
//!
//! Each connection is an [`UpstreamIo`], and every response carries a
//! [`Condemn`] handle on the connection it came on: a response the proxy
//! cannot trust (an ambiguous length) condemns its connection, which then
//! fails its next read or write, so hyper closes it instead of pooling it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

tokio::task_local! {
    /// The connect timeout of the request being sent; `None` keeps the
    /// connector's default.
    pub static CONNECT_TIMEOUT: Option<Duration>;
}

/// Connects with the timeout of the current [`CONNECT_TIMEOUT`] scope, or
/// the default outside one.
#[derive(Clone, Debug)]
pub struct TimedConnector {
    inner: HttpConnector,
    default: Duration,
}

impl TimedConnector {
    /// `inner` must have no connect timeout of its own: this one applies
    /// `default` unless the request's scope says otherwise.
    pub fn new(inner: HttpConnector, default: Duration) -> TimedConnector {
        TimedConnector { inner, default }
    }
}

/// A connect that took longer than its timeout; the `source` of the
/// `io::Error` (kind `TimedOut`) the connector fails with.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out after {0:?}")]
pub struct ConnectTimedOut(pub Duration);

type Connecting = Pin<Box<dyn Future<Output = io::Result<UpstreamIo>> + Send>>;

impl Service<http::Uri> for TimedConnector {
    type Response = UpstreamIo;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(io::Error::other)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let limit = CONNECT_TIMEOUT
            .try_with(|timeout| *timeout)
            .ok()
            .flatten()
            .unwrap_or(self.default);
        let connecting = self.inner.call(dst);
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(connected) => connected.map(UpstreamIo::new).map_err(io::Error::other),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    ConnectTimedOut(limit),
                )),
            }
        })
    }
}

// === impl UpstreamIo ===

/// A connection to a backend that the proxy can condemn: once condemned,
/// every read and write fails, so hyper closes it at its next step (reading
/// the rest of a dropped body, or checking the idle connection for a
/// close) instead of returning it to the pool.
#[derive(Debug)]
pub struct UpstreamIo {
    io: TokioIo<TcpStream>,
    condemned: Arc<AtomicBool>,
}

/// The handle on the connection a response came on, in the response's
/// extensions.
#[derive(Debug, Clone)]
pub struct Condemn(Arc<AtomicBool>);

impl Condemn {
    /// The connection carries nothing more: it is closed, never reused.
    /// Call it before the response (and its body) is dropped.
    pub fn condemn(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl UpstreamIo {
    fn new(io: TokioIo<TcpStream>) -> Self {
        UpstreamIo {
            io,
            condemned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Fails once condemned.
    fn check(&self) -> io::Result<()> {
        if self.condemned.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the proxy condemned this backend connection",
            ));
        }
        Ok(())
    }
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        // In place of `HttpConnector`'s `HttpInfo`, which nothing reads:
        // still one extension per response.
        Connected::new().extra(Condemn(self.condemned.clone()))
    }
}

impl Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Whether `err` (a failed connect) failed because it timed out: ours, or
/// the operating system giving up on the handshake.
pub fn is_connect_timeout(err: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause.is::<ConnectTimedOut>() {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return true;
            }
        }
        source = cause.source();
    }
    false
}
