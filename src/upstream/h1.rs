//! HTTP/1.1 connections: the handshake, driving a connection from the
//! request's own task, and the idle ones of an endpoint on a LIFO stack
//! (the most recently used is the most likely alive and warm; the oldest
//! age out).
//!
//! A connection is not a task of its own: whoever uses it polls it. While
//! a request waits for its response head, the request's future drives it;
//! while the response body streams, the body does (see
//! [`super::response::ResponseBody`]); idle, nobody does, and the next
//! checkout (or the sweeper) polls it once to find out whether the backend
//! closed it. So a request costs no hand-off to another task and no
//! wake-up of one. Upgrades are the exception: their connection is
//! spawned, since the upgraded stream outlives the exchange.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tracing::debug;

use super::body::RequestBody;
use super::connect::Io;
use super::{ConnectError, Upstreams};

/// The sending side of one HTTP/1.1 connection.
pub(super) type Sender = http1::SendRequest<RequestBody>;

/// The connection's state machine (reads, writes, parsing), boxed once
/// per connection so that handing it around moves a pointer.
type Driver = Pin<Box<http1::Connection<TokioIo<Io>, RequestBody>>>;

/// One HTTP/1.1 connection to a backend, driven by whoever holds it.
pub(super) struct H1Conn {
    tx: Sender,
    /// `None` once it has ended: dropped then, so that an exchange still
    /// waiting on it is told.
    driver: Option<Driver>,
}

impl std::fmt::Debug for H1Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Conn").finish_non_exhaustive()
    }
}

impl H1Conn {
    /// Advances the connection (reads, writes); `false` once it has ended
    /// (closed by either side, or failed), after which it carries nothing.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        drive(&mut self.driver, cx)
    }

    /// Whether an idle connection is still open: polled once, with no one
    /// to wake (it is not waited on), so a close the backend sent is seen.
    fn is_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.drive(&mut cx) && !self.tx.is_closed()
    }

    /// Whether the exchange that just ended left the connection open and
    /// idle (a request body still being sent, say, does not): only such a
    /// connection goes back to the idle stack, so a checkout never waits.
    fn settled(&mut self) -> bool {
        self.is_open() && self.tx.is_ready()
    }

    /// Waits, driving the connection, until it can take a request: at
    /// once for an idle one, after its last exchange settles otherwise.
    /// One that ended is ready too: the send hands the request back.
    pub(super) async fn ready(&mut self) -> Result<(), hyper::Error> {
        std::future::poll_fn(|cx| {
            let open = self.drive(cx);
            match self.tx.poll_ready(cx) {
                Poll::Pending if !open => Poll::Ready(Ok(())),
                polled => polled,
            }
        })
        .await
    }

    /// Sends `req`, driving the connection until the response head
    /// arrives (or the request comes back unsent, or it fails).
    pub(super) async fn send(&mut self, req: Request<RequestBody>) -> Sent {
        let mut response = std::pin::pin!(self.tx.try_send_request(req));
        let mut open = true;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = response.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            if open && !drive(&mut self.driver, cx) {
                open = false;
                // Ended (and dropped): the exchange has its outcome now.
                return response.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await
    }

    /// Hands the connection to a task of its own, with upgrades: for a
    /// request that may switch protocols (WebSocket).
    pub(super) fn spawn_with_upgrades(self) -> Sender {
        let H1Conn { tx, driver } = self;
        if let Some(driver) = driver {
            let conn = Pin::into_inner(driver).with_upgrades();
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    debug!(error = %err, "backend connection closed with an error");
                }
            });
        }
        tx
    }
}

/// Polls `driver` (dropping it once it has ended); `false` once ended.
fn drive(driver: &mut Option<Driver>, cx: &mut Context<'_>) -> bool {
    let Some(conn) = driver else {
        return false;
    };
    let Poll::Ready(ended) = conn.as_mut().poll(cx) else {
        return true;
    };
    if let Err(err) = ended {
        debug!(error = %err, "backend connection closed with an error");
    }
    *driver = None;
    false
}

/// What sending on an HTTP/1.1 connection gives.
pub(super) type Sent =
    Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<RequestBody>>>;

/// An endpoint's idle HTTP/1.1 connections, newest last. The lock is
/// held for a push or a pop, never across an await.
#[derive(Debug, Default)]
pub(super) struct Idle {
    stack: Mutex<Vec<(H1Conn, Instant)>>,
}

impl Idle {
    /// The newest idle connection that is still open and not idle past
    /// `timeout`; older stale ones met on the way are dropped (closed).
    pub(super) fn pop(&self, timeout: Duration) -> Option<H1Conn> {
        loop {
            let (mut conn, since) = self.lock().pop()?;
            // Polled outside the lock: it may read.
            if since.elapsed() < timeout && conn.is_open() {
                return Some(conn);
            }
        }
    }

    /// Puts a connection whose exchange ended back on top; past `max`
    /// the oldest is closed.
    pub(super) fn push(&self, mut conn: H1Conn, max: usize) {
        if max == 0 || !conn.settled() {
            return;
        }
        let mut stack = self.lock();
        if stack.len() >= max {
            stack.remove(0);
        }
        stack.push((conn, Instant::now()));
    }

    /// Closes connections that are closed by the backend or idle past
    /// `timeout`, so none lingers half-closed.
    pub(super) fn sweep(&self, timeout: Duration) {
        let mut stack = self.lock();
        stack.retain_mut(|(conn, since)| since.elapsed() < timeout && conn.is_open());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(H1Conn, Instant)>> {
        self.stack.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The HTTP/1.1 handshake on a new connection (no I/O: HTTP/1.1 has no
/// preface).
pub(super) async fn handshake(up: &Upstreams, io: Io) -> Result<H1Conn, ConnectError> {
    let (tx, conn) = up
        .h1
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Handshake)?;
    Ok(H1Conn {
        tx,
        driver: Some(Box::pin(conn)),
    })
}
