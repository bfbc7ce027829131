//! A backend's response body, holding what its connection needs back when
//! it ends: an HTTP/1.1 connection goes back to its pool's idle stack, an
//! HTTP/2 stream frees its slot.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h1::Sender;
use super::h2::Stream;
use super::pool::EndpointPool;

/// What a response holds of its connection until its body ends.
#[derive(Debug)]
pub(super) enum Lease {
    /// Nothing to give back (an upgraded or condemned connection).
    None,
    /// An HTTP/1.1 connection, reusable once the body has been read whole
    /// (kept idle while its pool has fewer than the count).
    H1(Sender, Arc<EndpointPool>, usize),
    /// One stream of a shared HTTP/2 connection.
    H2 {
        /// Held for its drop, which frees the slot.
        _stream: Stream,
    },
}

/// A backend's response body. Ended, it returns its connection for reuse;
/// dropped early, an HTTP/1.1 connection is closed (the rest of the body
/// would have to be read first), an HTTP/2 stream reset.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Incoming,
    lease: Lease,
    ended: bool,
}

impl ResponseBody {
    pub(super) fn new(inner: Incoming, lease: Lease) -> Self {
        ResponseBody {
            inner,
            lease,
            ended: false,
        }
    }

    /// The connection carries nothing more: it is closed once this body
    /// is dropped, never reused (a response the proxy cannot trust).
    pub fn condemn(&mut self) {
        self.lease = Lease::None;
    }

    /// Gives the connection back, if the exchange ended cleanly.
    fn release(&mut self) {
        if let Lease::H1(tx, pool, max) = std::mem::replace(&mut self.lease, Lease::None) {
            pool.check_in(tx, max);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                this.ended = true;
                this.release();
            }
            Poll::Ready(Some(Err(_))) => this.lease = Lease::None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // hyper's server never polls a body that says it is empty (HEAD,
        // 204, 304, `Content-Length: 0`): such a body has ended too.
        if self.ended || self.inner.is_end_stream() {
            self.release();
        }
    }
}
