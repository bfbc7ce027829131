//! HTTP/2 to backends against a server written frame by frame
//! (`RawH2Server`): what the pool does when a backend goes away with
//! streams open, refuses or resets a stream, is cut mid-response, or
//! closes an idle connection.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use support::*;

const HOST: &str = "www.mango.com";

fn h2c_route(server: &RawH2Server) -> String {
    let rule = Rule::new().backend_with(&server.backend, "protocol: H2C");
    yaml(&[route("mango").rule(rule)])
}

/// A POST with a small body (the rule configures no retries, and has one
/// backend: only a request the backend did not process may go again).
async fn post(proxy: &Proxy) -> Reply {
    let req = request(proxy, Method::POST, HOST, "/orders")
        .body(full("one order"))
        .unwrap();
    proxy.send(req).await
}

/// A backend whose first connection answers stream 1, then holds every
/// request after it until `go`, and then goes away without processing
/// them (GOAWAY naming stream 1 as the last); `held` is how many it held.
/// Later connections serve.
async fn going_away_on_signal(go: Arc<Notify>, held: Arc<AtomicUsize>) -> RawH2Server {
    RawH2Server::start(move |mut conn| {
        let (go, held) = (go.clone(), held.clone());
        async move {
            if conn.index > 0 {
                return conn.serve().await;
            }
            let Some(first) = conn.request().await else {
                return;
            };
            conn.ok(first).await;
            loop {
                tokio::select! {
                    request = conn.request() => if request.is_none() { return },
                    _ = go.notified() => break,
                }
            }
            held.store(conn.requests() - 1, Ordering::SeqCst);
            conn.goaway(first, NO_ERROR).await;
            conn.drain().await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_above_a_goaway_last_stream_id_are_sent_again_whatever_the_method() {
    const POSTS: usize = 3;
    let (go, held) = (Arc::new(Notify::new()), Arc::new(AtomicUsize::new(0)));
    let server = going_away_on_signal(go.clone(), held.clone()).await;
    let proxy = Arc::new(Proxy::start(&h2c_route(&server)).await);
    let reply = proxy.get(HOST, "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut posts = JoinSet::new();
    for _ in 0..POSTS {
        let proxy = proxy.clone();
        posts.spawn(async move { post(&proxy).await });
    }
    // Every POST reaches the backend (held on the first connection, or,
    // if the pool dialled another meanwhile, answered there).
    wait_until("the POSTs reached the backend", DEADLINE, || async {
        server.requests() == 1 + POSTS
    })
    .await;
    go.notify_one();
    while let Some(reply) = posts.join_next().await {
        let reply = reply.expect("client task");
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let held = held.load(Ordering::SeqCst);
    assert!(held >= 1, "a POST was open on the connection going away");
    assert_eq!(
        server.requests(),
        1 + POSTS + held,
        "each POST above the last stream went again, on a new connection"
    );
    assert!(server.connections() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_sent_again_for_a_post() {
    // The first connection refuses its first request, then serves.
    let server = RawH2Server::start(|mut conn| async move {
        if conn.index == 0 {
            let Some(stream) = conn.request().await else {
                return;
            };
            conn.reset(stream, REFUSED_STREAM).await;
        }
        conn.serve().await;
    })
    .await;
    let proxy = Proxy::start(&h2c_route(&server)).await;
    let reply = post(&proxy).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(server.requests(), 2, "refused once, then answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_processing_is_not_sent_again_for_a_post() {
    let server = RawH2Server::start(|mut conn| async move {
        while let Some(stream) = conn.request().await {
            conn.reset(stream, INTERNAL_ERROR).await;
        }
    })
    .await;
    let proxy = Proxy::start(&h2c_route(&server)).await;
    let reply = post(&proxy).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert_eq!(server.requests(), 1, "the POST arrived exactly once");
}

/// Sends a GET through the proxy with `client`, reads the response head
/// and its first chunk, lets the backend cut the connection (`cut`), and
/// asserts the body then ends in an error, within the deadline.
async fn body_cut_is_an_error(
    proxy: &Proxy,
    client: &Client<HttpConnector, TestBody>,
    cut: &Notify,
    what: &str,
) {
    let req = request(proxy, Method::GET, HOST, "/download")
        .body(empty())
        .unwrap();
    let response = within(what, client.request(req)).await.expect(what);
    assert_eq!(response.status(), StatusCode::OK, "{what}");
    let mut body = response.into_body();
    let first = within(what, body.frame()).await;
    let first = first.expect("a first chunk").expect("a first chunk");
    assert_eq!(first.data_ref().map(|d| &d[..]), Some(&b"partial"[..]));
    cut.notify_one();
    let rest = within(what, body.collect()).await;
    assert!(rest.is_err(), "{what}: the cut body ended cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_response_gives_a_clean_error() {
    let cut = Arc::new(Notify::new());
    let cut_by_test = cut.clone();
    // Every connection: a response head and a chunk, then, when the test
    // says, the connection closes with the stream still open.
    let server = RawH2Server::start(move |mut conn| {
        let cut = cut.clone();
        async move {
            let Some(stream) = conn.request().await else {
                return;
            };
            conn.head(stream).await;
            conn.data(stream, b"partial", false).await;
            cut.notified().await;
        }
    })
    .await;
    let proxy = Proxy::start(&h2c_route(&server)).await;
    body_cut_is_an_error(&proxy, &http1_client(), &cut_by_test, "HTTP/1.1 client").await;
    body_cut_is_an_error(&proxy, &h2c_client(), &cut_by_test, "h2c client").await;
    assert_eq!(server.connections(), 2, "a cut connection is not reused");
}

/// A backend whose first connection answers one request, then, once the
/// test has its answer (`idle`), closes: with GOAWAY first when `goaway`,
/// else with only FIN, like a process that exited. Later connections serve.
async fn closing_once_idle(idle: Arc<Notify>, goaway: bool) -> RawH2Server {
    RawH2Server::start(move |mut conn| {
        let idle = idle.clone();
        async move {
            if conn.index > 0 {
                return conn.serve().await;
            }
            let Some(stream) = conn.request().await else {
                return;
            };
            conn.ok(stream).await;
            idle.notified().await;
            if goaway {
                conn.goaway(stream, NO_ERROR).await;
            }
            conn.close().await;
        }
    })
    .await
}

/// Through a [`closing_once_idle`] backend: a first request, the backend
/// closes that connection, and the next requests go on one new one.
async fn a_closed_connection_is_replaced(goaway: bool) {
    let idle = Arc::new(Notify::new());
    let server = closing_once_idle(idle.clone(), goaway).await;
    let proxy = Proxy::start(&h2c_route(&server)).await;
    let reply = proxy.get(HOST, "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    idle.notify_one();
    wait_until("the backend closed its connection", DEADLINE, || async {
        server.ended() == 1
    })
    .await;
    for _ in 0..3 {
        let reply = post(&proxy).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(server.connections(), 2, "one new connection, shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_h2_connections_are_replaced() {
    a_closed_connection_is_replaced(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_connection_closed_without_goaway_is_replaced() {
    a_closed_connection_is_replaced(false).await;
}
