//! Integration-test harness: the real proxy (`switchyard::standalone::run`)
//! in-process on `127.0.0.1:0`, real hyper backends on loopback, real clients.
//!
//! Layout:
//! - `proxy`: `Proxy` — routes file in a temp dir, proxy + admin listeners,
//!   reload edits, observed shutdown.
//! - `backend`: builder-style `Backend`s (echo, gated, stepper, download,
//!   upload, reset, websocket), each counting connections and requests.
//! - `binary`: `Binary`, the real `switchyard run` process (flags, signals).
//! - `client`: a pooled HTTP/1.1 client, an h2c prior-knowledge client,
//!   single-connection `H1Conn` / `H2Conn` for tests that must pin a
//!   connection, and `Reply` / `Echo` to assert on.
//! - `raw`: `RawConn` / `raw_status`, a plain TCP client for what hyper's
//!   client will not send (bad framing, bad Host, slow or silent clients).
//! - `raw_h2`: `RawH2Server`, an HTTP/2 backend written frame by frame for
//!   scripted misbehaviour (GOAWAY, refused or reset streams, cut responses).
//! - `routes`: `RouteDoc` / `Rule` / `Match` builders that render
//!   `LoadBalancerRoute` YAML, so tests state intent rather than indentation.
//! - `tls`: `Pki`, an rcgen test CA issuing leaf, wildcard, expired and
//!   client certificates (`Cert`), rendered as Secret / ConfigMap documents.
//! - `tls_client`: `TlsClient`, a rustls client reporting what a handshake
//!   negotiated (`Negotiated`), HTTP/1.1 and HTTP/2 over it, and
//!   `assert_alert` / `assert_refused` for failed handshakes.
//! - here: waiting (`wait_until` / `hold_for` poll a condition against a
//!   deadline; no test waits with a fixed sleep), streaming bodies, memory.
#![allow(dead_code)]

mod backend;
mod binary;
mod client;
pub mod cluster;
mod controller;
mod h2_backend;
pub mod kube_api;
pub mod kube_source;
pub mod netns;
mod proxy;
mod raw;
mod raw_h2;
mod routes;
pub mod scale;
mod tls;
mod tls_client;

pub use backend::*;
#[allow(unused_imports)]
pub use binary::*;
pub use client::*;
#[allow(unused_imports)]
pub use h2_backend::*;
pub use proxy::*;
#[allow(unused_imports)]
pub use raw::*;
#[allow(unused_imports)]
pub use raw_h2::*;
// Each test binary uses its own part of the harness.
#[allow(unused_imports)]
pub use routes::*;
#[allow(unused_imports)]
pub use tls::*;
#[allow(unused_imports)]
pub use tls_client::*;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::sync::mpsc;
use tokio::time::Instant;
/// Error type of every body the harness builds.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body type used by the test clients and backends.
pub type TestBody = BoxBody<Bytes, BoxError>;

/// How long any single request, handshake or wait may take before the test
/// fails instead of hanging. Generous: it only bounds a broken run.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Reload polling interval given to the proxy.
pub const RELOAD_INTERVAL: Duration = Duration::from_millis(50);

/// Installs a test-writer tracing subscriber once (level from `RUST_LOG`),
/// so a failing test shows the proxy's logs.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

// === waiting ===

/// Polls `cond` every 10ms until it returns true; panics naming `what` when
/// `timeout` passes first.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts `cond` stays true for the whole `window`, polling every 10ms.
/// For negative properties ("the invalid edit is never served") that have no
/// event to wait for; the window is a multiple of the reload interval.
pub async fn hold_for<F, Fut>(what: &str, window: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(
            cond().await,
            "expected {what} to hold for {window:?}, but it stopped holding"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `fut`, panicking with `what` if it takes longer than [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {DEADLINE:?}: {what}"),
    }
}

// === bodies ===

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> TestBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// 64 KiB of static filler: large bodies are slices of it, never allocated.
static FILLER: [u8; 64 * 1024] = [b'z'; 64 * 1024];

/// A body of `len` bytes yielded as 64 KiB slices of a static buffer, with an
/// exact size hint (so it goes out with Content-Length).
pub struct RepeatBody {
    remaining: u64,
}

impl RepeatBody {
    /// A body of `len` bytes.
    pub fn new(len: u64) -> Self {
        RepeatBody { remaining: len }
    }

    /// Boxed for use as a [`TestBody`].
    pub fn boxed(len: u64) -> TestBody {
        RepeatBody::new(len).boxed()
    }
}

impl Body for RepeatBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(FILLER.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILLER[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A body whose chunks are pushed by the test through a channel; the body
/// ends when every sender is dropped. Size unknown (chunked on HTTP/1.1).
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// A channel-driven body and the sender that feeds it.
pub fn body_channel() -> (mpsc::Sender<Bytes>, TestBody) {
    let (tx, rx) = mpsc::channel(4);
    (tx, ChannelBody { rx }.boxed())
}

/// Reads `body` until it ends, returning the number of bytes; drops each
/// chunk as it goes (constant memory).
pub async fn count_body<B>(mut body: B) -> u64
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: fmt::Debug,
{
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("body error while counting");
        if let Some(data) = frame.data_ref() {
            n += data.len() as u64;
        }
    }
    n
}

/// Reads data frames from `body` until `want` bytes arrived; returns them.
/// Panics if the body ends or errors first.
pub async fn read_exactly<B>(body: &mut B, want: usize) -> Bytes
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: fmt::Debug,
{
    let mut got = Vec::new();
    while got.len() < want {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    got.extend_from_slice(data);
                }
            }
            Some(Err(e)) => panic!("body error after {} of {want} bytes: {e:?}", got.len()),
            None => panic!(
                "body ended after {} of {want} bytes: {:?}",
                got.len(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    Bytes::from(got)
}

// === process memory ===

/// A `kB` field of `/proc/self/status` (e.g. `VmRSS`, `VmHWM`), in bytes.
pub fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kib: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .expect("parse kB value");
            return kib * 1024;
        }
    }
    panic!("{field} not in /proc/self/status");
}

/// Measures peak-RSS growth across `fut`: resets the high-water mark
/// (`clear_refs` 5) when the kernel allows, then reports `VmHWM` after minus
/// `VmRSS` before. Without the reset it falls back to `VmHWM` growth.
pub async fn peak_rss_growth<T>(fut: impl Future<Output = T>) -> (T, u64) {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = if reset {
        proc_status_bytes("VmRSS")
    } else {
        proc_status_bytes("VmHWM")
    };
    let out = fut.await;
    let after = proc_status_bytes("VmHWM");
    (out, after.saturating_sub(before))
}
