//! A WebSocket upgrade to an HTTPS backend whose TLS offers both `h2` and
//! `http/1.1`: the pool dials the upgrade with ALPN `http/1.1` alone (an
//! upgrade needs HTTP/1.1), while ordinary requests to the same backend
//! still get HTTP/2.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use http::{Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::Message;

use support::*;

const NAME: &str = "api.test";
const HOST: &str = "www.mango.com";

/// The ALPN protocol each TLS connection negotiated, in accept order.
type Negotiated = Arc<Mutex<Vec<String>>>;

/// A TLS backend that answers HTTP/2 requests `200` and echoes WebSocket
/// messages on HTTP/1.1, recording what each connection negotiated.
async fn tls_websocket_backend(pki: &Pki) -> (Backend, Negotiated) {
    // Preferring h2, then http/1.1.
    let acceptor = pki.leaf(&[NAME]).acceptor(&[b"h2", b"http/1.1"]);
    let negotiated = Negotiated::default();
    let record = negotiated.clone();
    let backend = Backend::raw("wss", move |tcp| {
        let (acceptor, record) = (acceptor.clone(), record.clone());
        async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let alpn = tls.get_ref().1.alpn_protocol().unwrap_or(b"none");
            let alpn = String::from_utf8_lossy(alpn).into_owned();
            record.lock().unwrap().push(alpn.clone());
            match alpn.as_str() {
                "h2" => serve_h2(tls).await,
                _ => echo_websocket(tls).await,
            }
        }
    })
    .await;
    (backend, negotiated)
}

/// Answers every HTTP/2 request `200` with an empty body.
async fn serve_h2(tls: TlsStream<tokio::net::TcpStream>) {
    let service = service_fn(|_req| async { Ok::<_, Infallible>(Response::new(empty())) });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Routes to `backend` over HTTPS, verified against `pki`'s CA.
fn https_routes(backend: &Backend, pki: &Pki) -> String {
    let tls = "caCertificateRefs: [{kind: ConfigMap, name: api-ca}], hostname: api.test";
    let fields = format!("protocol: HTTPS, tls: {{{tls}}}");
    let rule = Rule::new().backend_with(backend, &fields);
    let ca = ca_config_map("default", "api-ca", &pki.ca_pem());
    documents(&[yaml(&[route("mango").host(HOST).rule(rule)]), ca])
}

/// Opens a WebSocket through the proxy and checks one echo.
async fn websocket_echoes(proxy: &Proxy, text: &str) {
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let url = format!("ws://{HOST}/chat");
    let (mut ws, resp) = within(
        "websocket handshake through the proxy",
        tokio_tungstenite::client_async(url, tcp),
    )
    .await
    .expect("websocket handshake through the proxy");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text(text)).await.unwrap();
    let got = within("echo", ws.next()).await.expect("stream ended");
    assert_eq!(got.unwrap(), Message::text(text));
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_to_an_https_backend_offering_h2_is_tunnelled_over_http1() {
    let pki = Pki::new("backend CA");
    let (backend, negotiated) = tls_websocket_backend(&pki).await;
    let proxy = Proxy::start(&https_routes(&backend, &pki)).await;
    websocket_echoes(&proxy, "hello over TLS").await;
    assert_eq!(*negotiated.lock().unwrap(), ["http/1.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_dials_http1_even_after_the_backend_chose_h2() {
    let pki = Pki::new("backend CA");
    let (backend, negotiated) = tls_websocket_backend(&pki).await;
    let proxy = Proxy::start(&https_routes(&backend, &pki)).await;
    let reply = proxy.get(HOST, "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    websocket_echoes(&proxy, "first").await;
    websocket_echoes(&proxy, "second").await;
    let reply = proxy.get(HOST, "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        *negotiated.lock().unwrap(),
        ["h2", "http/1.1", "http/1.1"],
        "requests share the h2 connection; each upgrade has its own"
    );
}
