//! Unit tests of the request body wrappers.

use std::time::Duration;

use http_body_util::BodyExt;
use tokio::time::Instant;

use super::*;

/// A client's body: the chunks sent on its channel, pending while none
/// is queued, ended when the sender is dropped.
struct Fed(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl Body for Fed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

fn fed() -> (tokio::sync::mpsc::UnboundedSender<Bytes>, Fed) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (tx, Fed(rx))
}

fn full(text: &'static str) -> Full<Bytes> {
    Full::new(Bytes::from_static(text.as_bytes()))
}

#[tokio::test]
async fn a_reclaimable_body_never_polled_comes_back_whole_when_dropped() {
    let (body, mut reclaim) = Reclaimable::new(full("hello"));
    assert!(reclaim.take().is_none(), "nothing comes back while held");
    drop(body);
    let back = reclaim.take().expect("an unpolled body comes back");
    let bytes = back.collect().await.expect("a full body").to_bytes();
    assert_eq!(bytes, "hello");
}

#[tokio::test]
async fn a_reclaimable_body_once_polled_does_not_come_back() {
    let (mut body, mut reclaim) = Reclaimable::new(full("hello"));
    let frame = body.frame().await.expect("a frame").expect("no error");
    assert_eq!(frame.into_data().expect("data"), "hello");
    drop(body);
    assert!(reclaim.take().is_none(), "a polled body belongs to its try");
}

#[tokio::test]
async fn a_reclaimable_body_without_a_way_back_streams_like_its_body() {
    let body = Reclaimable::once(full("hello"));
    assert_eq!(body.size_hint().exact(), Some(5));
    assert!(!body.is_end_stream());
    let bytes = body.collect().await.expect("a full body").to_bytes();
    assert_eq!(bytes, "hello");
}

#[tokio::test]
async fn an_outgoing_body_says_when_it_has_been_sent_whole() {
    let (body, sent) = Outgoing::new(full("hello"));
    let sent = sent.expect("a body with bytes gets a channel");
    body.collect().await.expect("a full body");
    assert!(sent.await.is_ok());
    let (_, none) = Outgoing::new(Full::<Bytes>::default());
    assert!(none.is_none(), "a bodiless request is sent with its head");
}

#[tokio::test(start_paused = true)]
async fn a_client_body_silent_for_the_idle_timeout_stalls() {
    let (_tx, body) = fed();
    let start = Instant::now();
    let mut body = LimitedBody::new(body, Duration::from_secs(1));
    let stalled = body.frame().await;
    assert!(
        matches!(stalled, Some(Err(BodyError::Stalled))),
        "{stalled:?}"
    );
    assert_eq!(Instant::now() - start, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn chunks_within_the_idle_timeout_keep_a_client_body_going() {
    let (tx, body) = fed();
    tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let _ = tx.send(Bytes::from_static(b"ab"));
        }
    });
    let start = Instant::now();
    let body = LimitedBody::new(body, Duration::from_secs(1));
    let bytes = body.collect().await.expect("no stall").to_bytes();
    assert_eq!(bytes.len(), 10);
    assert!(Instant::now() - start >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn time_the_proxy_is_not_reading_is_not_the_clients_idle_time() {
    let (tx, body) = fed();
    let mut body = LimitedBody::new(body, Duration::from_secs(1));
    tx.send(Bytes::from_static(b"ab")).expect("send");
    // The backend took its time to read on: the queued chunk still comes.
    tokio::time::advance(Duration::from_secs(5)).await;
    let frame = body.frame().await.expect("a frame").expect("no stall");
    assert_eq!(frame.into_data().expect("data"), "ab");
    let waited = Instant::now();
    let stalled = body.frame().await;
    assert!(
        matches!(stalled, Some(Err(BodyError::Stalled))),
        "{stalled:?}"
    );
    assert_eq!(Instant::now() - waited, Duration::from_secs(1));
}
