//! Bodies are streamed both ways, never buffered whole: chunk-by-chunk
//! ordering proven with channels, and gigabyte transfers with bounded memory.

mod support;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use support::*;

/// The gigabyte tests measure this process's peak RSS; run them one at a time.
static BIG_TRANSFER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const GIB: u64 = 1 << 30;
const MEMORY_BOUND: u64 = 128 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_chunk_reaches_client_before_backend_sends_the_next() {
    let (backend, mut bodies) = Backend::stepper("stepper").await;
    let proxy = Proxy::start(&yaml(&[route("step").rule(Rule::new().backend(&backend))])).await;

    let req = request(&proxy, Method::GET, "www.mango.com", "/stream")
        .body(empty())
        .unwrap();
    let pending = tokio::spawn({
        let client = proxy.client();
        async move { client.request(req).await }
    });
    let chunks = within("the request to reach the backend", bodies.recv())
        .await
        .unwrap();

    chunks.send(Bytes::from_static(b"chunk-1;")).await.unwrap();
    let resp = within("response headers", pending)
        .await
        .unwrap()
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    // The backend has not been allowed to send chunk 2 yet: this read can
    // only finish if the proxy forwarded chunk 1 on its own.
    let first = within("chunk 1 to reach the client", read_exactly(&mut body, 8)).await;
    assert_eq!(&first[..], b"chunk-1;");

    chunks.send(Bytes::from_static(b"chunk-2;")).await.unwrap();
    let second = within("chunk 2 to reach the client", read_exactly(&mut body, 8)).await;
    assert_eq!(&second[..], b"chunk-2;");

    drop(chunks);
    let rest = within("end of body", body.collect())
        .await
        .unwrap()
        .to_bytes();
    assert!(rest.is_empty(), "unexpected trailing bytes {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_response_chunk_reaches_client_before_backend_sends_the_next() {
    let (backend, mut bodies) = Backend::stepper("stepper").await;
    let proxy = Proxy::start(&yaml(&[route("step").rule(Rule::new().backend(&backend))])).await;

    let client = h2c_client();
    let req = http::Request::get(proxy.url("/stream"))
        .body(empty())
        .unwrap();
    let pending = tokio::spawn(async move { client.request(req).await });
    let chunks = within("the request to reach the backend", bodies.recv())
        .await
        .unwrap();

    chunks.send(Bytes::from_static(b"first")).await.unwrap();
    let resp = within("response headers", pending)
        .await
        .unwrap()
        .expect("response");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let mut body = resp.into_body();
    assert_eq!(
        &within("chunk 1", read_exactly(&mut body, 5)).await[..],
        b"first"
    );
    chunks.send(Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(
        &within("chunk 2", read_exactly(&mut body, 6)).await[..],
        b"second"
    );
    drop(chunks);
    assert!(within("end", body.collect())
        .await
        .unwrap()
        .to_bytes()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_chunk_reaches_backend_before_client_sends_the_next() {
    let (backend, mut arrivals) = Backend::upload_observer("upload").await;
    let proxy = Proxy::start(&yaml(&[route("up").rule(Rule::new().backend(&backend))])).await;

    let (tx, body) = body_channel();
    let req = request(&proxy, Method::POST, "www.mango.com", "/upload")
        .body(body)
        .unwrap();
    let pending = tokio::spawn({
        let client = proxy.client();
        async move { Reply::collect(client.request(req).await.expect("upload")).await }
    });

    tx.send(Bytes::from_static(b"part-1;")).await.unwrap();
    // The client holds part 2 back until the backend reports part 1.
    let mut received = 0;
    while received < 7 {
        received += within("part 1 to reach the backend", arrivals.recv())
            .await
            .unwrap();
    }
    assert_eq!(
        received, 7,
        "backend received more than part 1 before it was sent"
    );

    tx.send(Bytes::from_static(b"part-2;")).await.unwrap();
    drop(tx);
    let reply = within("upload response", pending).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "14");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_download_streams_through_with_bounded_memory() {
    let _one_at_a_time = BIG_TRANSFER.lock().await;
    let backend = Backend::download("big", GIB).await;
    let proxy = Proxy::start(&yaml(&[route("big").rule(Rule::new().backend(&backend))])).await;

    let (received, growth) = peak_rss_growth(async {
        let resp = proxy
            .send_streaming(
                request(&proxy, Method::GET, "www.mango.com", "/big")
                    .body(empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        tokio::time::timeout(
            std::time::Duration::from_secs(120),
            count_body(resp.into_body()),
        )
        .await
        .expect("1 GiB download did not finish within 120s")
    })
    .await;

    assert_eq!(received, GIB);
    assert!(
        growth < MEMORY_BOUND,
        "peak RSS grew by {} MiB while streaming 1 GiB down (bound {} MiB)",
        growth >> 20,
        MEMORY_BOUND >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_upload_streams_through_with_bounded_memory() {
    let _one_at_a_time = BIG_TRANSFER.lock().await;
    let backend = Backend::upload_counter("big").await;
    let proxy = Proxy::start(&yaml(&[route("big").rule(Rule::new().backend(&backend))])).await;

    let (reply, growth) = peak_rss_growth(async {
        let req = request(&proxy, Method::POST, "www.mango.com", "/big")
            .body(RepeatBody::boxed(GIB))
            .unwrap();
        let client = proxy.client();
        let resp = tokio::time::timeout(std::time::Duration::from_secs(120), client.request(req))
            .await
            .expect("1 GiB upload did not finish within 120s")
            .expect("1 GiB upload");
        Reply::collect(resp).await
    })
    .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), GIB.to_string());
    assert!(
        growth < MEMORY_BOUND,
        "peak RSS grew by {} MiB while streaming 1 GiB up (bound {} MiB)",
        growth >> 20,
        MEMORY_BOUND >> 20
    );
}
