//! A cut gRPC response ends with a status in its trailers.

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;

use super::*;

/// A backend's body: these frames (or a failure) in order, then silence.
struct Script(VecDeque<Result<Frame<Bytes>, io::Error>>);

impl Body for Script {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.0.pop_front() {
            Some(step) => Poll::Ready(Some(step)),
            None => Poll::Pending,
        }
    }
}

fn data(text: &'static str) -> Result<Frame<Bytes>, io::Error> {
    Ok(Frame::data(Bytes::from_static(text.as_bytes())))
}

fn status_trailers(code: &'static str) -> Result<Frame<Bytes>, io::Error> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static(code));
    Ok(Frame::trailers(trailers))
}

fn script(steps: Vec<Result<Frame<Bytes>, io::Error>>) -> Script {
    Script(steps.into())
}

/// The next frame, which must be trailers: their `grpc-status` and
/// `grpc-message`.
async fn trailers_of<B>(body: &mut Timed<B>) -> (String, String)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let frame = body
        .frame()
        .await
        .expect("a frame")
        .expect("trailers, not an error");
    let trailers = frame.into_trailers().expect("trailers");
    let text = |name: &str| trailers[name].to_str().unwrap().to_owned();
    (text("grpc-status"), text("grpc-message"))
}

#[tokio::test(start_paused = true)]
async fn a_grpc_stream_past_its_deadline_ends_with_deadline_exceeded() {
    let start = Instant::now();
    let total = start + Duration::from_secs(2);
    let inner = script(vec![data("first")]);
    let mut body = Timed::new(inner, Some(Duration::from_secs(5)), Some(total), start).grpc(true);
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    let (status, message) = trailers_of(&mut body).await;
    assert_eq!(status, "4");
    assert!(message.contains("deadline"), "{message}");
    assert_eq!(Instant::now(), total);
    assert!(body.frame().await.is_none(), "the trailers end the body");
    assert!(body.is_end_stream());
}

#[tokio::test(start_paused = true)]
async fn a_grpc_stream_idle_past_the_timeout_ends_with_unavailable() {
    let start = Instant::now();
    let mut body = Timed::new(script(vec![]), Some(Duration::from_secs(1)), None, start).grpc(true);
    let (status, message) = trailers_of(&mut body).await;
    assert_eq!(status, "14");
    assert!(message.contains("idle"), "{message}");
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn a_grpc_stream_the_backend_breaks_ends_with_unavailable() {
    let broken = Err(io::Error::from(io::ErrorKind::ConnectionReset));
    let inner = script(vec![data("a"), broken, data("never")]);
    let mut body = Timed::new(inner, None, None, Instant::now()).grpc(true);
    assert!(body.frame().await.unwrap().unwrap().is_data());
    let (status, _) = trailers_of(&mut body).await;
    assert_eq!(status, "14");
    assert!(body.frame().await.is_none(), "nothing after the status");
}

#[tokio::test(start_paused = true)]
async fn a_grpc_stream_that_sent_its_trailers_gets_no_second_status() {
    let start = Instant::now();
    let inner = script(vec![data("a"), status_trailers("0")]);
    let mut body = Timed::new(inner, Some(Duration::from_secs(1)), None, start).grpc(true);
    assert!(body.frame().await.unwrap().unwrap().is_data());
    let trailers = body
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_trailers()
        .unwrap();
    assert_eq!(trailers["grpc-status"], "0");
    let cut = body.frame().await;
    assert!(matches!(cut, Some(Err(BodyCut::Idle))), "{cut:?}");
}

#[tokio::test]
async fn a_plain_response_the_backend_breaks_still_fails() {
    let broken = Err(io::Error::from(io::ErrorKind::ConnectionReset));
    let mut body = Timed::new(script(vec![broken]), None, None, Instant::now());
    let cut = body.frame().await;
    assert!(matches!(cut, Some(Err(BodyCut::Upstream(_)))), "{cut:?}");
}
