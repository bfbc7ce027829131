//! Unit tests of the body wrappers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::response::BodyCut;
use super::*;

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
    let start = Instant::now();
    let mut body = Timed::new(Silent, Some(Duration::from_secs(1)), None, start);
    let cut = body.frame().await;
    assert!(matches!(cut, Some(Err(BodyCut::Idle))), "{cut:?}");
    assert_eq!(Instant::now() - start, Duration::from_secs(1));
    assert!(body.frame().await.is_none(), "a cut body stays ended");
}

#[tokio::test(start_paused = true)]
async fn the_total_deadline_wins_when_earlier() {
    let start = Instant::now();
    let total = start + Duration::from_secs(2);
    let mut body = Timed::new(Silent, Some(Duration::from_secs(5)), Some(total), start);
    let cut = body.frame().await;
    assert!(matches!(cut, Some(Err(BodyCut::Total))), "{cut:?}");
    assert_eq!(Instant::now(), total);
}
