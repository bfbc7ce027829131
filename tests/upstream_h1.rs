//! The proxy's own HTTP/1.1 connections to backends: reused, bounded by
//! the requests in flight, closed when idle, and a request a closed
//! connection never took sent again on a new one.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use switchyard::proxy::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use support::*;

fn mango(backend: &Backend) -> String {
    yaml(&[route("mango").rule(Rule::new().backend(backend))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_one_connection() {
    let backend = Backend::echo("one").await;
    let proxy = Proxy::start(&mango(&backend)).await;
    for _ in 0..200 {
        assert_eq!(proxy.get("www.mango.com", "/").await.status, StatusCode::OK);
    }
    assert_eq!(backend.requests(), 200);
    assert_eq!(backend.connections(), 1, "one connection, reused 200 times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_by_the_requests_in_flight() {
    let backend = Backend::echo("one").await;
    let proxy = Arc::new(Proxy::start(&mango(&backend)).await);
    let mut clients = JoinSet::new();
    for _ in 0..16 {
        let proxy = proxy.clone();
        clients.spawn(async move {
            for _ in 0..30 {
                assert_eq!(proxy.get("www.mango.com", "/").await.status, StatusCode::OK);
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("client");
    }
    assert_eq!(backend.requests(), 480);
    let opened = backend.connections();
    assert!(
        opened <= 16,
        "{opened} connections for 16 requests in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_no_content_answers_give_their_connection_back() {
    let backend = Backend::http("empty", |req: Request<Incoming>| async move {
        let status = if req.method() == Method::HEAD {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        Response::builder()
            .status(status)
            .header(
                "content-length",
                if status == StatusCode::OK { "5" } else { "0" },
            )
            .body(empty())
            .expect("response")
    })
    .await;
    let proxy = Proxy::start(&mango(&backend)).await;
    for i in 0..20 {
        let method = if i % 2 == 0 {
            Method::HEAD
        } else {
            Method::GET
        };
        let req = request(&proxy, method, "www.mango.com", "/")
            .body(empty())
            .unwrap();
        assert!(proxy.send(req).await.status.is_success());
    }
    assert_eq!(
        backend.connections(),
        1,
        "bodiless answers end their exchange"
    );
}

/// Answers each connection's first request with keep-alive, then closes
/// the connection: the proxy's pooled connection is dead when it is next
/// used. Counts the bodies it received, and the connections it closed.
async fn answers_once_then_closes(bodies: Arc<AtomicUsize>, closed: Arc<AtomicUsize>) -> Backend {
    Backend::raw("closer", move |mut tcp| {
        let (bodies, closed) = (bodies.clone(), closed.clone());
        async move {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            let mut body = vec![0u8; len];
            if tcp.read_exact(&mut body).await.is_ok() && len > 0 {
                bodies.fetch_add(1, Ordering::SeqCst);
            }
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            let _ = tcp.write_all(reply).await;
            let _ = tcp.shutdown().await;
            closed.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_after_the_backend_closed_the_pooled_connection_is_sent_once_on_a_new_one() {
    let (bodies, closed) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
    let backend = answers_once_then_closes(Arc::clone(&bodies), closed.clone()).await;
    // No retries: a POST is never retried; it is sent again only because
    // the closed connection never took it.
    let proxy = Proxy::start(&mango(&backend)).await;
    for i in 1..=5 {
        // Sent once the backend has closed the connection of the last one
        // (its FIN sent), not while it might still be closing it.
        wait_until("the backend to close", DEADLINE, || async {
            closed.load(Ordering::SeqCst) == i - 1
        })
        .await;
        let req = request(&proxy, Method::POST, "www.mango.com", "/")
            .body(full("payload"))
            .unwrap();
        let reply = proxy.send(req).await;
        assert_eq!(reply.status, StatusCode::OK, "POST {i}: {}", reply.text());
        assert_eq!(bodies.load(Ordering::SeqCst), i, "each body arrives once");
    }
    assert_eq!(backend.connections(), 5);
}

/// A hyper HTTP/1.1 backend that counts its open connections.
async fn counting_open(open: Arc<AtomicUsize>) -> Backend {
    Backend::raw("counted", move |tcp| {
        let open = open.clone();
        async move {
            open.fetch_add(1, Ordering::SeqCst);
            let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let _ = req.into_body().collect().await;
                Ok::<_, Infallible>(Response::new(full("ok")))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
            open.fetch_sub(1, Ordering::SeqCst);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_backend_connections_are_closed_after_the_upstream_idle_timeout() {
    let open = Arc::new(AtomicUsize::new(0));
    let backend = counting_open(open.clone()).await;
    let serve = ServeOptions {
        upstream_idle_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let yaml = mango(&backend);
    let proxy = Proxy::start_serving(RoutesLayout::File(&yaml), serve).await;
    assert_eq!(proxy.get("www.mango.com", "/").await.status, StatusCode::OK);
    assert_eq!(open.load(Ordering::SeqCst), 1, "kept open for reuse");
    wait_until(
        "the idle connection is closed",
        Duration::from_secs(10),
        || {
            let open = open.clone();
            async move { open.load(Ordering::SeqCst) == 0 }
        },
    )
    .await;
    assert_eq!(proxy.get("www.mango.com", "/").await.status, StatusCode::OK);
    assert_eq!(
        backend.connections(),
        2,
        "a new connection after the idle one closed"
    );
}
