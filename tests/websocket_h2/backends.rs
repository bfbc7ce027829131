//! WebSocket backends the tests need beyond `Backend::websocket`.

use futures_util::{SinkExt, StreamExt};
use http::HeaderMap;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};

use crate::support::{echo_websocket, Backend, Pki};

/// A WebSocket backend that reports each handshake's headers and picks
/// the `chat` subprotocol.
pub async fn recording_backend() -> (Backend, mpsc::UnboundedReceiver<HeaderMap>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let backend = Backend::raw("recording", move |stream| {
        let seen_tx = seen_tx.clone();
        async move {
            // tungstenite's callback type: its error is a whole response.
            #[allow(clippy::result_large_err)]
            let record = |req: &WsRequest, mut response: WsResponse| {
                let _ = seen_tx.send(req.headers().clone());
                let chat = http::HeaderValue::from_static("chat");
                response
                    .headers_mut()
                    .insert("sec-websocket-protocol", chat);
                Ok(response)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() && ws.send(msg).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    (backend, seen)
}

/// A WebSocket echo backend over TLS (a certificate for `api.test` from
/// `pki`, ALPN offering h2 and http/1.1) that reports the ALPN each
/// connection settled on.
pub async fn tls_websocket_backend(
    pki: &Pki,
) -> (Backend, mpsc::UnboundedReceiver<Option<Vec<u8>>>) {
    let cert = pki.leaf(&["api.test"]);
    let acceptor = cert.acceptor(&[b"h2", b"http/1.1"]);
    let (alpn_tx, alpn) = mpsc::unbounded_channel();
    let backend = Backend::raw("tls-ws", move |stream| {
        let (acceptor, alpn_tx) = (acceptor.clone(), alpn_tx.clone());
        async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let _ = alpn_tx.send(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
            echo_websocket(tls).await;
        }
    })
    .await;
    (backend, alpn)
}
