//! The request body as it goes upstream.
//!
//! Owns: [`LimitedBody`] counting the client's body against `maxBodySize`
//! and timing the client's pauses against `--client-body-timeout`,
//! [`Reclaimable`] handing it back when a try never sent it, [`Outgoing`]
//! telling when it has been sent, and [`RequestBody`], the type every
//! pooled connection carries. Must not: buffer a body, lock, or start a
//! timer before it is needed (a body that never waits makes none).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

/// A request body on its way upstream: the client's, streamed and counted
/// on the way (the rule's `maxBodySize`), or one held whole so it can be
/// sent again on a retry (empty for bodiless requests, or a small body of
/// declared length).
pub type RequestBody = Either<Outgoing<Reclaimable<LimitedBody<Incoming>>>, Full<Bytes>>;

// === impl LimitedBody ===

/// The error a [`LimitedBody`] fails with: the limit was passed, the client
/// paused too long, or the client's body failed. Each is the client's
/// doing, never the backend's.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the rule's `maxBodySize` arrived.
    #[error("request body is larger than the limit")]
    TooLarge,
    /// The client sent nothing of its body for `--client-body-timeout`.
    #[error("the client sent nothing of its request body for the idle timeout")]
    Stalled,
    /// Reading the client's body failed (bad framing, or the client left).
    #[error(transparent)]
    Inner(#[from] hyper::Error),
}

pin_project_lite::pin_project! {
    /// The client's request body as the proxy reads it: counted as it
    /// streams (past `limit` bytes it fails with [`BodyError::TooLarge`]
    /// and raises its `tripped` flag, so the proxy can answer 413 instead
    /// of a generic upstream error), and failing with
    /// [`BodyError::Stalled`] when the client sends nothing for the idle
    /// timeout (nginx's `client_body_timeout`).
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        remaining: u64,
        tripped: Option<Arc<AtomicBool>>,
        idle: Idle,
    }
}

impl<B> LimitedBody<B> {
    /// No size limit; fails when the client pauses for `idle`.
    pub fn new(inner: B, idle: Duration) -> Self {
        LimitedBody {
            inner,
            remaining: u64::MAX,
            tripped: None,
            idle: Idle::new(idle),
        }
    }

    /// At most `limit` bytes; `tripped` is set when the limit is passed.
    pub fn with_limit(self, limit: u64, tripped: Arc<AtomicBool>) -> Self {
        LimitedBody {
            remaining: limit,
            tripped: Some(tripped),
            ..self
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Error = hyper::Error>,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.idle.progressed();
                let len = frame.data_ref().map_or(0, |d| d.remaining() as u64);
                if len > *this.remaining {
                    if let Some(tripped) = this.tripped {
                        tripped.store(true, Ordering::Release);
                    }
                    *this.remaining = 0;
                    return Poll::Ready(Some(Err(BodyError::TooLarge)));
                }
                *this.remaining -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Inner(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => this
                .idle
                .poll_elapsed(cx)
                .map(|()| Some(Err(BodyError::Stalled))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The idle timeout between reads of the client's body. A wait starts
/// when the client has nothing for the proxy and ends with the next frame;
/// time the proxy spends not reading (a backend that is slow to take the
/// body) does not count. The timer is made on the first wait only (a body
/// that arrives whole never makes one) and is never reset per frame: when
/// it fires for a wait that has since ended, it is moved to the current
/// wait's end, at most once per timeout.
#[derive(Debug)]
struct Idle {
    timeout: Duration,
    /// When the current wait for the client began; `None` while frames flow.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Idle {
    fn new(timeout: Duration) -> Self {
        Idle {
            timeout,
            waiting_since: None,
            timer: None,
        }
    }

    /// A frame arrived: the client is not idle.
    fn progressed(&mut self) {
        self.waiting_since = None;
    }

    /// The client has nothing for the proxy now: ready once it has had
    /// nothing for the whole timeout (never, if that is past the clock's
    /// range).
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let Some(due) = since.checked_add(self.timeout) else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            ready!(timer.as_mut().poll(cx));
            if timer.deadline() >= due {
                return Poll::Ready(());
            }
            // Set for an earlier wait, which frames have since ended.
            timer.as_mut().reset(due);
        }
    }
}

// === impl Reclaimable ===

/// A streamed request body that comes back whole if its try never polled
/// it.
///
/// hyper's client drops a request it could not send (a connect failure)
/// without polling its body. Dropped unpolled, this sends the body back
/// through a oneshot to its [`Reclaim`], so the next endpoint gets it
/// whole, with nothing buffered. From its first poll on, the body belongs
/// to its try and never comes back. No lock: the body lives here, and the
/// only shared state is the oneshot, made only when a retry is possible.
#[derive(Debug)]
pub struct Reclaimable<B> {
    /// Always `Some` until dropped (`Drop` moves it out).
    body: Option<B>,
    /// The way back; `None` once polled, or when no retry is possible.
    back: Option<oneshot::Sender<B>>,
}

/// Where a [`Reclaimable`] body comes back to.
#[derive(Debug)]
pub struct Reclaim<B>(oneshot::Receiver<B>);

impl<B> Reclaimable<B> {
    /// Wraps `body`, which comes back to the returned [`Reclaim`] if
    /// dropped unpolled.
    pub fn new(body: B) -> (Self, Reclaim<B>) {
        let (back, reclaim) = oneshot::channel();
        let body = Reclaimable {
            body: Some(body),
            back: Some(back),
        };
        (body, Reclaim(reclaim))
    }

    /// Wraps `body` with no way back: for requests that cannot be retried.
    pub fn once(body: B) -> Self {
        Reclaimable {
            body: Some(body),
            back: None,
        }
    }
}

impl<B> Reclaim<B> {
    /// The body, if its [`Reclaimable`] was dropped without ever being
    /// polled; `None` once it was polled, or while a try still holds it.
    pub fn take(&mut self) -> Option<B> {
        self.0.try_recv().ok()
    }
}

impl<B: Body + Unpin> Body for Reclaimable<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        // From the first poll on, the body belongs to this try.
        this.back = None;
        match &mut this.body {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> Drop for Reclaimable<B> {
    fn drop(&mut self) {
        if let (Some(back), Some(body)) = (self.back.take(), self.body.take()) {
            // The retry may have given up on it already; then it is dropped.
            let _ = back.send(body);
        }
    }
}

// === impl Outgoing ===

pin_project_lite::pin_project! {
    /// A request body on its way upstream that says when it has been sent
    /// whole (or failed), so the response timeout can start then.
    pub struct Outgoing<B> {
        #[pin]
        inner: B,
        done: Option<oneshot::Sender<()>>,
    }
}

impl<B: Body> Outgoing<B> {
    /// Wraps `inner`; the receiver resolves once it has ended. Bodiless
    /// requests (most GETs) get no channel: they are sent with the head.
    pub fn new(inner: B) -> (Self, Option<oneshot::Receiver<()>>) {
        if inner.is_end_stream() {
            return (Outgoing { inner, done: None }, None);
        }
        let (tx, rx) = oneshot::channel();
        (
            Outgoing {
                inner,
                done: Some(tx),
            },
            Some(rx),
        )
    }
}

impl<B> Outgoing<B> {
    /// For a body handed back unsent: a new receiver that resolves once
    /// it has been sent whole (the first try's went with that try).
    pub fn rearm(&mut self) -> Option<oneshot::Receiver<()>> {
        let done = self.done.as_mut()?;
        let (tx, rx) = oneshot::channel();
        *done = tx;
        Some(rx)
    }
}

impl<B: Body> Body for Outgoing<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            if let Some(done) = this.done.take() {
                let _ = done.send(());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
