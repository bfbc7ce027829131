//! Response body wrappers: [`Tracked`] keeps the request counted in flight
//! on its endpoint until the body ends; [`Timed`] enforces the rule's idle
//! and total timeouts on the body. Must not: start a timer the rule did not
//! ask for.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use crate::balance::InFlight;
use crate::proxy::grpc::{cut_trailers, Code};
use crate::proxy::observe::Pending;

// === impl Tracked ===

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight on the
    /// endpoint until the body ends or is dropped.
    pub struct Tracked<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
        // The request's access-log line, sent when the body ends (or is
        // dropped); counts the bytes sent. None with the log off.
        log: Option<Box<Pending>>,
    }
}

impl<B> Tracked<B> {
    /// Wraps `inner`, ending `guard` with it.
    pub fn new(inner: B, guard: InFlight) -> Self {
        Tracked {
            inner,
            guard: Some(guard),
            log: None,
        }
    }

    /// Carries the request's access-log line to the end of the body.
    pub fn log(&mut self, pending: Box<Pending>) {
        self.log = Some(pending);
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(log), Some(data)) = (this.log.as_mut(), frame.data_ref()) {
                    log.sent(data.remaining());
                }
            }
            Poll::Ready(None) => {
                this.guard.take();
                this.log.take();
            }
            _ => {}
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

// === impl Timed ===

/// Why a response body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyCut {
    /// The backend's body failed (reset, closed, garbage).
    #[error("the backend's response body failed")]
    Upstream(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend sent nothing for the rule's `idle` timeout.
    #[error("the backend's response body stalled past the idle timeout")]
    Idle,
    /// The rule's `total` timeout passed while the body was streaming.
    #[error("the request's total timeout passed")]
    Total,
}

impl BodyCut {
    /// The gRPC status a cut gRPC response ends with: the deadline passed
    /// (DEADLINE_EXCEEDED), or the backend stalled or broke (UNAVAILABLE).
    fn grpc_status(&self) -> (Code, &'static str) {
        match self {
            BodyCut::Total => (
                Code::DeadlineExceeded,
                "the deadline passed while the response streamed",
            ),
            BodyCut::Idle => (
                Code::Unavailable,
                "the backend sent nothing for the idle timeout",
            ),
            BodyCut::Upstream(_) => (Code::Unavailable, "the backend's response stream broke"),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body under the rule's `idle` and `total` timeouts: when
    /// either passes, or the backend's body fails, it ends with an error
    /// (the head was already sent, so a cut body is all that can be said)
    /// — except a gRPC response that has not sent its trailers yet: it
    /// ends with trailers carrying a gRPC status instead, so the client
    /// reads why. Without timeouts it only passes frames through, with no
    /// timer.
    pub struct Timed<B> {
        #[pin]
        inner: B,
        idle: Option<Duration>,
        total: Option<Instant>,
        timer: Option<Pin<Box<Sleep>>>,
        cut: bool,
        // A gRPC response (its content-type says so) that has not sent
        // trailers yet: a cut ends it with a status.
        grpc: bool,
    }
}

impl<B> Timed<B> {
    /// Wraps `inner`, whose head arrived at `now`; `total` is the
    /// exchange's deadline.
    pub fn new(inner: B, idle: Option<Duration>, total: Option<Instant>, now: Instant) -> Self {
        let timer =
            next_deadline(idle, total, now).map(|at| Box::pin(tokio::time::sleep_until(at)));
        Timed {
            inner,
            idle,
            total,
            timer,
            cut: false,
            grpc: false,
        }
    }

    /// The wrapped body.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Marks a gRPC response (`content-type: application/grpc*`): a cut
    /// ends it with `grpc-status` trailers, not an error.
    pub fn grpc(mut self, grpc: bool) -> Self {
        self.grpc = grpc;
        self
    }
}

/// The earlier of `now + idle` and `total` (an idle time past the end of
/// the clock is none).
fn next_deadline(idle: Option<Duration>, total: Option<Instant>, now: Instant) -> Option<Instant> {
    match (idle.and_then(|idle| now.checked_add(idle)), total) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<B> Body for Timed<B>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = BodyCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.cut {
            return Poll::Ready(None);
        }
        let cut = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_trailers() {
                    // The backend said how the call ended: nothing to add.
                    *this.grpc = false;
                }
                if let (Some(timer), Some(_)) = (this.timer.as_mut(), *this.idle) {
                    if let Some(at) = next_deadline(*this.idle, *this.total, Instant::now()) {
                        timer.as_mut().reset(at);
                    }
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(err))) => BodyCut::Upstream(err.into()),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                let Some(timer) = this.timer.as_mut() else {
                    return Poll::Pending;
                };
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *this.cut = true;
                if this.total.is_some_and(|at| timer.deadline() >= at) {
                    BodyCut::Total
                } else {
                    BodyCut::Idle
                }
            }
        };
        if !*this.grpc {
            return Poll::Ready(Some(Err(cut)));
        }
        *this.cut = true;
        debug!(error = %cut, "gRPC response cut: ending it with a status");
        let (code, message) = cut.grpc_status();
        Poll::Ready(Some(Ok(Frame::trailers(cut_trailers(code, message)))))
    }

    fn is_end_stream(&self) -> bool {
        self.cut || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
