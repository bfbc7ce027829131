//! HTTP/2 connections: shared by many requests at once, each up to the
//! server's `SETTINGS_MAX_CONCURRENT_STREAMS`, then another is dialled.
//!
//! Finding a connection with a free stream is lock-free (an `ArcSwap` of
//! the endpoint's connections and an atomic count each); only dialling
//! takes a lock, an async one, so that requests arriving together share
//! one dial and, when it fails, its failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use arc_swap::ArcSwap;
use futures::task::AtomicWaker;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tracing::debug;

use super::body::RequestBody;
use super::connect::Io;
use super::{ConnectError, Upstreams};

/// Streams a new connection is assumed to allow until the server's first
/// SETTINGS arrive (then their limit, or no limit when they name none).
/// One, not h2's default 100: requests arriving meanwhile would queue on
/// a connection whose limit may be lower, instead of getting their own.
pub(super) const INITIAL_MAX_STREAMS: usize = 1;

/// One HTTP/2 connection of an endpoint.
#[derive(Debug)]
pub(super) struct H2Conn {
    tx: http2::SendRequest<RequestBody>,
    state: Arc<State>,
}

/// What the connection's driver and its users share.
#[derive(Debug)]
struct State {
    /// Streams open (requests sent whose response has not ended).
    streams: AtomicUsize,
    /// The server's current concurrent-stream limit.
    max: AtomicUsize,
    /// The connection ended, or said it would (GOAWAY): no new streams.
    closed: AtomicBool,
    /// When the connection was made.
    born: Instant,
    /// When the last stream ended, in milliseconds since `born`: an
    /// atomic, so ending a stream takes no lock.
    idle_since_ms: AtomicU64,
    /// The driver, woken once the server's SETTINGS are known to have
    /// arrived (see [`Stream::answered`]).
    driver: AtomicWaker,
    /// Whether a response has arrived on the connection yet.
    answered: AtomicBool,
}

impl State {
    fn since_born_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A stream slot on a connection, held from send until the response body
/// ends (or is dropped).
#[derive(Debug)]
pub(super) struct Stream(Arc<H2Conn>);

impl Stream {
    /// The connection's sender (a clone: sending needs it `&mut`).
    pub(super) fn sender(&self) -> http2::SendRequest<RequestBody> {
        self.0.tx.clone()
    }

    /// A response head arrived on this stream. The first on a connection
    /// wakes its driver to read the server's stream limit: hyper runs the
    /// connection itself in a task of its own, and the driver is otherwise
    /// polled only when a request passes through it, so the limit would
    /// stay [`INITIAL_MAX_STREAMS`] until the next request, and requests
    /// arriving meanwhile would each dial a connection.
    pub(super) fn answered(&self) {
        let state = &self.0.state;
        if !state.answered.load(Ordering::Relaxed) && !state.answered.swap(true, Ordering::AcqRel) {
            state.driver.wake();
        }
    }

    /// No more streams go on this connection (the server is going away).
    pub(super) fn retire(&self) {
        self.0.state.closed.store(true, Ordering::Release);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let state = &self.0.state;
        if state.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            (state.idle_since_ms).store(state.since_born_ms(), Ordering::Release);
        }
    }
}

impl H2Conn {
    fn usable(&self) -> bool {
        !self.state.closed.load(Ordering::Acquire) && !self.tx.is_closed()
    }

    /// A stream, if the connection is open and below its limit.
    fn lease(self: &Arc<Self>) -> Option<Stream> {
        if !self.usable() {
            return None;
        }
        let state = &self.state;
        let open = state.streams.fetch_add(1, Ordering::AcqRel);
        let stream = Stream(self.clone());
        (open < state.max.load(Ordering::Acquire)).then_some(stream)
    }

    fn idle_past(&self, timeout: Duration) -> bool {
        let state = &self.state;
        let last_end = state.idle_since_ms.load(Ordering::Acquire);
        let idle = Duration::from_millis(state.since_born_ms().saturating_sub(last_end));
        state.streams.load(Ordering::Acquire) == 0 && idle >= timeout
    }
}

/// The HTTP/2 connections of an endpoint.
#[derive(Debug)]
pub(super) struct Conns {
    conns: ArcSwap<Vec<Arc<H2Conn>>>,
    /// Held while dialling; remembers the last failed dial, so requests
    /// that waited on it fail at once instead of each timing out in turn.
    dial: tokio::sync::Mutex<Option<(Instant, ConnectError)>>,
}

impl Default for Conns {
    fn default() -> Self {
        Conns {
            conns: ArcSwap::from_pointee(Vec::new()),
            dial: tokio::sync::Mutex::new(None),
        }
    }
}

/// What a gated dial gives: a stream on a new HTTP/2 connection, or
/// something else the dial made (an HTTPS backend that chose HTTP/1.1).
pub(super) enum Gated<T> {
    /// A stream, on a connection found or made.
    Stream(Stream),
    /// The dial's other result.
    Other(T),
}

impl Conns {
    /// A stream on a connection below its limit; no lock.
    pub(super) fn lease(&self) -> Option<Stream> {
        self.conns.load().iter().find_map(H2Conn::lease)
    }

    /// A stream, dialling a new connection if none has room. `dial` gives
    /// a new connection, or something else to hand back as is.
    pub(super) async fn lease_or_dial<T, F>(&self, dial: F) -> Result<Gated<T>, ConnectError>
    where
        F: Future<Output = Result<Result<Arc<H2Conn>, T>, ConnectError>>,
    {
        let waited_from = Instant::now();
        let mut gate = self.dial.lock().await;
        if let Some(stream) = self.lease() {
            return Ok(Gated::Stream(stream));
        }
        if let Some((at, failed)) = gate.as_ref() {
            if *at >= waited_from {
                return Err(failed.again());
            }
        }
        match dial.await {
            Ok(Ok(conn)) => Ok(Gated::Stream(self.add(conn))),
            Ok(Err(other)) => Ok(Gated::Other(other)),
            Err(err) => {
                *gate = Some((Instant::now(), err.again()));
                Err(err)
            }
        }
    }

    /// Adds a new connection, and takes its first stream (whatever its
    /// server's SETTINGS say later, a new connection has room for one).
    pub(super) fn add(&self, conn: Arc<H2Conn>) -> Stream {
        conn.state.streams.fetch_add(1, Ordering::AcqRel);
        let stream = Stream(conn.clone());
        self.conns.rcu(|conns| {
            let mut next: Vec<_> = conns.iter().filter(|c| c.usable()).cloned().collect();
            next.push(conn.clone());
            next
        });
        stream
    }

    /// Drops connections that ended, or idle past `timeout` (closing
    /// them: the last sender dropped sends GOAWAY).
    pub(super) fn sweep(&self, timeout: Duration) {
        let stale = |c: &Arc<H2Conn>| !c.usable() || c.idle_past(timeout);
        if self.conns.load().iter().any(stale) {
            self.conns.rcu(|conns| {
                conns
                    .iter()
                    .filter(|c| !stale(c))
                    .cloned()
                    .collect::<Vec<_>>()
            });
        }
    }
}

/// The HTTP/2 handshake on a new connection; its driver is spawned.
pub(super) async fn handshake(up: &Upstreams, io: Io) -> Result<Arc<H2Conn>, ConnectError> {
    let (tx, conn) = up
        .h2
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Handshake)?;
    let state = Arc::new(State {
        streams: AtomicUsize::new(0),
        max: AtomicUsize::new(INITIAL_MAX_STREAMS),
        closed: AtomicBool::new(false),
        born: Instant::now(),
        idle_since_ms: AtomicU64::new(0),
        driver: AtomicWaker::new(),
        answered: AtomicBool::new(false),
    });
    tokio::spawn(Driver {
        conn,
        state: state.clone(),
        _open: up.opened(true),
    });
    Ok(Arc::new(H2Conn { tx, state }))
}

/// Runs a connection, keeping its stream limit current for [`Conns`].
struct Driver {
    conn: http2::Connection<TokioIo<Io>, RequestBody, TokioExecutor>,
    state: Arc<State>,
    /// Counted open while it runs.
    _open: super::Open,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // The waker serves one wake-up, at the first response
        // (`Stream::answered`): registered until then, not on every poll.
        if !this.state.answered.load(Ordering::Acquire) {
            this.state.driver.register(cx.waker());
        }
        let polled = Pin::new(&mut this.conn).poll(cx);
        let max = this.conn.current_max_send_streams();
        this.state.max.store(max, Ordering::Release);
        let Poll::Ready(result) = polled else {
            return Poll::Pending;
        };
        this.state.closed.store(true, Ordering::Release);
        if let Err(err) = result {
            debug!(error = %err, "HTTP/2 backend connection closed with an error");
        }
        Poll::Ready(())
    }
}

/// Whether the backend says it never processed the request `err` failed:
/// HTTP/2 GOAWAY with a last stream below it, or `REFUSED_STREAM` (RFC
/// 9113 §8.7). Such a request may be sent again whatever its method.
pub(super) fn is_unprocessed(err: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<::h2::Error>() {
            let refused = h2.is_reset() && h2.reason() == Some(::h2::Reason::REFUSED_STREAM);
            return h2.is_remote() && (h2.is_go_away() || refused);
        }
        source = cause.source();
    }
    false
}
