//! Forwarding rules: hop-by-hop headers, `X-Forwarded-*`, the upstream URI,
//! and the body wrapper that tracks a request until its response ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::balance::InFlight;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Whether an HTTP/1.1 request asks to switch protocols (WebSocket).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Removes hop-by-hop headers, including those the `Connection` header
/// names. With `keep_upgrade`, `Connection: upgrade` and `Upgrade` survive so
/// a protocol switch reaches the other side.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // `Connection: upgrade` names the Upgrade header itself; keep its value.
    let upgrade = if keep_upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    // Names listed in Connection are rare; collect them only when present.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in &listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    match upgrade {
        Some(protocol) => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol);
        }
        None => {
            headers.remove(header::UPGRADE);
        }
    }
}

/// Sets `X-Forwarded-For` (the peer appended to what came before),
/// `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub fn set_forwarded(headers: &mut HeaderMap, peer: &HeaderValue, host: Option<HeaderValue>) {
    let mut prior = headers.get_all(&X_FORWARDED_FOR).iter();
    let value = match (prior.next(), prior.next()) {
        (None, _) => peer.clone(),
        (Some(one), None) => join(&[one.as_bytes(), peer.as_bytes()]),
        (Some(_), Some(_)) => {
            let mut parts: Vec<&[u8]> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            parts.push(peer.as_bytes());
            join(&parts)
        }
    };
    headers.insert(X_FORWARDED_FOR.clone(), value);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

fn join(parts: &[&[u8]]) -> HeaderValue {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(part);
    }
    // Joined from valid header values with ", ": still valid.
    HeaderValue::from_maybe_shared(Bytes::from(out))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `http://{endpoint}{path?query}` without formatting or re-parsing.
pub fn upstream_uri(authority: &Authority, path_and_query: Option<PathAndQuery>) -> Option<Uri> {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/")));
    Uri::from_parts(parts).ok()
}

/// Where a streamed request body waits until its first poll.
pub type BodySlot<B> = Arc<Mutex<Option<B>>>;

/// A streamed request body kept in a shared slot until hyper first polls
/// it. A try that fails before sending a byte (a connect failure: the
/// client drops the request unsent) leaves the body in the slot, so the
/// next endpoint gets it whole, with nothing buffered.
#[derive(Debug)]
pub struct Reclaimable<B> {
    slot: BodySlot<B>,
    taken: Option<B>,
}

impl<B> Reclaimable<B> {
    /// Puts `body` in a new slot.
    pub fn new(body: B) -> (Self, BodySlot<B>) {
        let slot = Arc::new(Mutex::new(Some(body)));
        (
            Reclaimable {
                slot: slot.clone(),
                taken: None,
            },
            slot,
        )
    }

    /// The body again, if no try has started sending it.
    pub fn reclaim(slot: &BodySlot<B>) -> Option<Self> {
        lock(slot).is_some().then(|| Reclaimable {
            slot: slot.clone(),
            taken: None,
        })
    }
}

fn lock<B>(slot: &BodySlot<B>) -> std::sync::MutexGuard<'_, Option<B>> {
    // No code panics while holding it; a poisoned slot still holds a body.
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<B: Body + Unpin> Body for Reclaimable<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        if this.taken.is_none() {
            // Once per try: from here on the body belongs to this try.
            this.taken = lock(&this.slot).take();
        }
        match &mut this.taken {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.taken {
            Some(body) => body.is_end_stream(),
            None => lock(&self.slot).as_ref().is_none_or(Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.taken {
            Some(body) => body.size_hint(),
            None => lock(&self.slot)
                .as_ref()
                .map_or_else(|| SizeHint::with_exact(0), Body::size_hint),
        }
    }
}

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

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight on the
    /// endpoint until the body ends or is dropped.
    pub struct Tracked<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B> Tracked<B> {
    /// Wraps `inner`, ending `guard` with it.
    pub fn new(inner: B, guard: InFlight) -> Self {
        Tracked {
            inner,
            guard: Some(guard),
        }
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
        if let Poll::Ready(None) = polled {
            this.guard.take();
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

pin_project_lite::pin_project! {
    /// A response body under the rule's `idle` and `total` timeouts: when
    /// either passes it ends with an error (the head was already sent, so
    /// a cut body is all that can be said). Without timeouts it only
    /// passes frames through, with no timer.
    pub struct Timed<B> {
        #[pin]
        inner: B,
        idle: Option<Duration>,
        total: Option<Instant>,
        timer: Option<Pin<Box<Sleep>>>,
        cut: bool,
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
        }
    }
}

/// The earlier of `now + idle` and `total`.
fn next_deadline(idle: Option<Duration>, total: Option<Instant>, now: Instant) -> Option<Instant> {
    match (idle.map(|idle| now + idle), total) {
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
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(timer), Some(_)) = (this.timer.as_mut(), *this.idle) {
                    if let Some(at) = next_deadline(*this.idle, *this.total, Instant::now()) {
                        timer.as_mut().reset(at);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(BodyCut::Upstream(err.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some(timer) = this.timer.as_mut() else {
                    return Poll::Pending;
                };
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *this.cut = true;
                let total = this.total.is_some_and(|at| timer.deadline() >= at);
                Poll::Ready(Some(Err(if total {
                    BodyCut::Total
                } else {
                    BodyCut::Idle
                })))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cut || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    /// A body that never sends anything.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_is_cut_at_the_idle_timeout() {
        use http_body_util::BodyExt;
        let start = Instant::now();
        let mut body = Timed::new(Silent, Some(Duration::from_secs(1)), None, start);
        let cut = body.frame().await;
        assert!(matches!(cut, Some(Err(BodyCut::Idle))), "{cut:?}");
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        assert!(body.frame().await.is_none(), "a cut body stays ended");
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_deadline_wins_when_earlier() {
        use http_body_util::BodyExt;
        let start = Instant::now();
        let total = start + Duration::from_secs(2);
        let mut body = Timed::new(Silent, Some(Duration::from_secs(5)), Some(total), start);
        let cut = body.frame().await;
        assert!(matches!(cut, Some(Err(BodyCut::Total))), "{cut:?}");
        assert_eq!(Instant::now(), total);
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("x-end", "kept"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-end"]);
    }

    #[test]
    fn upgrade_survives_when_switching_protocols() {
        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_every_prior_hop() {
        let peer = HeaderValue::from_static("127.0.0.1");
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
        ]);
        set_forwarded(
            &mut h,
            &peer,
            Some(HeaderValue::from_static("www.mango.com")),
        );
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "www.mango.com");
        let mut fresh = HeaderMap::new();
        set_forwarded(&mut fresh, &peer, None);
        assert_eq!(fresh["x-forwarded-for"], "127.0.0.1");
    }
}
