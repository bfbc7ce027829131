//! Bodies that go wrong on either side: a backend response whose length is
//! ambiguous is a 502 on a connection never reused; a client's broken,
//! abandoned or stalled upload is the client's fault (400 or 408), never
//! charged to the backend's health.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use support::*;
use switchyard::proxy::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Passive health that ejects the only endpoint after three failures.
const EJECT_AFTER_3: &str = "{consecutiveFailures: 3, baseEjection: 10m, maxEjectedPercent: 100}";

/// Uploads sent in each test: more than the failures that would eject.
const UPLOADS: usize = 5;

/// A chunked upload whose second chunk-size line is not hex.
const MALFORMED_CHUNKED: &[u8] = b"POST /upload HTTP/1.1\r\nHost: www.mango.com\r\n\
Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n";

/// The head of an upload declaring 100 bytes, and the first 10 of them.
const HALF_UPLOAD: &[u8] = b"POST /upload HTTP/1.1\r\nHost: www.mango.com\r\n\
Content-Length: 100\r\n\r\n0123456789";

/// One route to `backend`, ejecting it after three failures.
fn ejecting_route(backend: &Backend) -> String {
    yaml(&[route("up").rule(
        Rule::new()
            .backend(backend)
            .field("passiveHealth", EJECT_AFTER_3),
    )])
}

/// Reads one request head (up to the blank line) from `stream`; false when
/// the connection ended first.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// What a [`framing_backend`] saw.
#[derive(Default)]
struct Framing {
    /// Set once the bad response was sent.
    sent_bad: AtomicBool,
    /// Set if a request came on the connection that carried it.
    reused: AtomicBool,
}

/// A raw backend answering its first request with `bad`, every other one
/// with a 200 "good" of exact length, and noting a request on the
/// connection that carried `bad`.
async fn framing_backend(bad: &'static [u8]) -> (Backend, Arc<Framing>) {
    const GOOD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood";
    let seen = Arc::new(Framing::default());
    let backend = Backend::raw("framing", {
        let seen = seen.clone();
        move |mut stream| {
            let seen = seen.clone();
            async move {
                let mut carried_bad = false;
                while read_head(&mut stream).await {
                    if carried_bad {
                        seen.reused.store(true, Ordering::SeqCst);
                    }
                    let first = !seen.sent_bad.swap(true, Ordering::SeqCst);
                    carried_bad |= first;
                    let answer = if first { bad } else { GOOD };
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await;
    (backend, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_content_length_and_transfer_encoding_is_502() {
    // Relayed, this body would be cut to its Content-Length (3 of 5 bytes)
    // on a client connection that stays open.
    let (backend, _) = framing_backend(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let proxy = Proxy::start(&yaml(&[
        route("framing").rule(Rule::new().backend(&backend))
    ]))
    .await;

    let mut conn = H1Conn::connect(proxy.addr).await;
    let reply = conn.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.backend().is_none(),
        "the proxy answers, not the backend"
    );
    let reply = conn.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "good", "the next response is its own, whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_of_an_ambiguous_response_is_never_reused() {
    // An empty chunked body ends in one read: hyper would drain it and pool
    // the connection unless the proxy condemns it.
    let (backend, seen) = framing_backend(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    let proxy = Proxy::start(&yaml(&[
        route("framing").rule(Rule::new().backend(&backend))
    ]))
    .await;

    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    for _ in 0..3 {
        let reply = proxy.get("www.mango.com", "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.text(), "good");
    }
    assert!(
        !seen.reused.load(Ordering::SeqCst),
        "a request was sent on the connection that carried the ambiguous response"
    );
    assert!(backend.connections() >= 2, "{}", backend.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunked_uploads_are_400_and_never_eject_the_backend() {
    let backend = Backend::echo("good").await;
    let proxy = Proxy::start(&ejecting_route(&backend)).await;

    for i in 0..UPLOADS {
        let status = raw_status(proxy.addr, MALFORMED_CHUNKED).await;
        assert_eq!(status, Some(400), "malformed upload {i}");
    }
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.backend(), Some("good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_never_eject_the_backend() {
    let backend = Backend::echo("good").await;
    let proxy = Proxy::start(&ejecting_route(&backend)).await;

    for i in 0..UPLOADS {
        // Half the body, then the client stops sending (a half close, so
        // it can still read what the proxy says).
        let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
        stream.write_all(HALF_UPLOAD).await.expect("write");
        stream.shutdown().await.expect("half close");
        let mut answer = Vec::new();
        within("the proxy to answer", stream.read_to_end(&mut answer))
            .await
            .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "abandoned upload {i}: {answer}"
        );
    }
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.backend(), Some("good"));
}

/// A raw backend reading each connection to its end, then reporting how
/// many bytes came (head and body).
async fn sink() -> (Backend, mpsc::UnboundedReceiver<usize>) {
    let (ended, ends) = mpsc::unbounded_channel();
    let backend = Backend::raw("sink", move |mut stream| {
        let ended = ended.clone();
        async move {
            let mut buf = [0u8; 4096];
            let mut n = 0;
            while let Ok(read @ 1..) = stream.read(&mut buf).await {
                n += read;
            }
            let _ = ended.send(n);
        }
    })
    .await;
    (backend, ends)
}

/// The proxy with a 200 ms client body timeout.
async fn impatient_proxy(yaml: &str) -> Proxy {
    let serve = ServeOptions {
        client_body_timeout: Duration::from_millis(200),
        ..ServeOptions::default()
    };
    Proxy::start_serving(RoutesLayout::File(yaml), serve).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_408_and_releases_the_backend_connection() {
    let (backend, mut ends) = sink().await;
    let proxy = impatient_proxy(&yaml(&[route("up").rule(
        Rule::new().backend(&backend).field(
            "passiveHealth",
            "{consecutiveFailures: 1, baseEjection: 10m, maxEjectedPercent: 100}",
        ),
    )]))
    .await;

    for i in 0..2 {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.send(HALF_UPLOAD).await.expect("send half the body");
        let head = conn.head().await.expect("an answer before the close");
        // A second 408 shows the first did not eject the backend (503).
        assert_eq!(head.status, 408, "stalled upload {i}: {}", head.text);
        let got = within("the backend's connection to end", ends.recv())
            .await
            .expect("sink gone");
        assert!(
            got >= 10,
            "the backend got the head and the first bytes: {got}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_held_for_a_retry_is_408_before_any_backend_is_contacted() {
    // Two endpoints and retries: a small declared body is read whole first.
    let (a, _) = sink().await;
    let (b, _) = sink().await;
    let proxy = impatient_proxy(&yaml(&[route("up").rule(
        Rule::new()
            .backend(&a)
            .backend(&b)
            .field("retries", "{attempts: 1}"),
    )]))
    .await;

    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(HALF_UPLOAD).await.expect("send half the body");
    let head = conn.head().await.expect("an answer before the close");
    assert_eq!(head.status, 408, "{}", head.text);
    assert_eq!(a.connections() + b.connections(), 0);
}
