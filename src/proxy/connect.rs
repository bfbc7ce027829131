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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
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

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

impl Service<http::Uri> for TimedConnector {
    type Response = TokioIo<TcpStream>;
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
                Ok(connected) => connected.map_err(io::Error::other),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    ConnectTimedOut(limit),
                )),
            }
        })
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
