//! The per-request phases: match → pick → forward → response headers.
//!
//! Each phase is a small step over the request; the route table is loaded
//! once per request and only the matched `Arc<Rule>` is kept across awaits.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioIo;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::error::ProxyError;
use super::forward::{
    is_upgrade, set_forwarded, strip_hop_by_hop, upstream_uri, Outgoing, Tracked,
};
use crate::balance::InFlight;
use crate::table::SharedTable;

/// What the proxy sends back: a backend's streamed body, or its own.
pub type ProxyBody = Either<Tracked<Incoming>, Full<Bytes>>;

/// The upstream client: one pool of keep-alive connections to every backend.
pub type UpstreamClient = Client<HttpConnector, Outgoing>;

/// State shared by every connection of one proxy.
pub struct Shared {
    /// The published route table.
    pub table: SharedTable,
    /// The pooled upstream client.
    pub client: UpstreamClient,
    /// Becomes true at the drain deadline; open tunnels close then.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Open upgraded tunnels, which the drain waits for.
    pub tunnels: TaskTracker,
}

/// State of one client connection, computed once when it is accepted.
pub struct Connection {
    /// The proxy's shared state.
    pub shared: Arc<Shared>,
    /// The peer's IP, ready to append to `X-Forwarded-For`.
    pub peer_ip: HeaderValue,
    /// The connection's place under the connection cap, held until the
    /// connection and any tunnel upgraded from it have ended.
    pub _permit: OwnedSemaphorePermit,
}

/// Serves one request; failures become their status response.
pub async fn handle(
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    // Cheap to keep (standard methods are not allocated); the path is not
    // copied per request just for a log line.
    let method = req.method().clone();
    match proxy(&conn, req).await {
        Ok(response) => Ok(response),
        Err(err) => {
            debug!(%method, reason = err.reason(), error = %err, "request answered by the proxy");
            Ok(err.into_response().map(Either::Right))
        }
    }
}

async fn proxy(
    conn: &Arc<Connection>,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if req.method() == Method::CONNECT {
        // A forward-proxy tunnel, not a request for a route.
        return Err(ProxyError::MethodNotAllowed);
    }
    // One host per request, used for matching, Host and X-Forwarded-Host:
    // an absolute-form or HTTP/2 authority wins over the Host header
    // (RFC 9112 §3.2.2).
    let host = request_host(&req);

    // Phase: match. One table load; only the rule's Arc outlives it.
    let rule = {
        let table = conn.shared.table.load();
        let host = host.as_ref().and_then(|h| h.to_str().ok());
        table
            .find(host, req.method(), req.uri().path(), req.headers())
            .cloned()
            .ok_or(ProxyError::NoRoute)?
    };

    // Phase: pick.
    let target = rule
        .backends
        .pick()
        .map_err(|reason| ProxyError::NoEndpoint(reason.clone()))?;
    let in_flight = target.state.start_request();

    // Phase: forward.
    let upgrade = req.version() == Version::HTTP_11 && is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if let Some(host) = &host {
        parts.headers.insert(header::HOST, host.clone());
    }
    set_forwarded(&mut parts.headers, &conn.peer_ip, host);
    parts.uri = upstream_uri(&target.authority, parts.uri.into_parts().path_and_query)
        .ok_or(ProxyError::BadRequest)?;
    parts.version = Version::HTTP_11;
    let (body, body_sent) = Outgoing::new(body);
    let sent = conn.shared.client.request(Request::from_parts(parts, body));
    let mut response = match await_response(sent, body_sent, rule.timeouts.request).await {
        Err(_) => return Err(ProxyError::Timeout),
        Ok(Err(err)) if err.is_connect() => return Err(ProxyError::Connect(err)),
        Ok(Err(err)) => return Err(ProxyError::Upstream(err)),
        Ok(Ok(response)) => response,
    };

    // Phase: response headers.
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            conn.shared.tunnels.spawn(tunnel(
                client_upgrade,
                upstream_upgrade,
                in_flight,
                conn.clone(),
            ));
            let (parts, _) = response.into_parts();
            return Ok(Response::from_parts(parts, Either::Right(Full::default())));
        }
    }
    strip_hop_by_hop(response.headers_mut(), false);
    Ok(response.map(|body| Either::Left(Tracked::new(body, in_flight))))
}

/// The request's host: the URI authority (absolute-form, or HTTP/2's
/// `:authority`) without userinfo, else the `Host` header.
fn request_host(req: &Request<Incoming>) -> Option<HeaderValue> {
    match req.uri().authority() {
        Some(authority) => {
            let text = authority.as_str();
            let text = text.rsplit_once('@').map_or(text, |(_, host)| host);
            HeaderValue::from_str(text).ok()
        }
        None => req.headers().get(header::HOST).cloned(),
    }
}

/// Waits for the response head. The timeout starts once the request body
/// has been sent whole, so a slow upload is not mistaken for a slow backend.
async fn await_response<F: std::future::Future>(
    response: F,
    body_sent: Option<oneshot::Receiver<()>>,
    timeout: std::time::Duration,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let Some(body_sent) = body_sent else {
        return tokio::time::timeout(timeout, response).await;
    };
    tokio::pin!(response);
    tokio::select! {
        out = &mut response => Ok(out),
        _ = body_sent => tokio::time::timeout(timeout, response).await,
    }
}

/// Copies bytes both ways between the upgraded client and backend
/// connections until either side closes, or the proxy's drain deadline passes.
async fn tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    _in_flight: InFlight,
    // Holds the connection's permit: an open tunnel counts against the cap.
    conn: Arc<Connection>,
) {
    let mut closing = conn.shared.closing.clone();
    let copy = async {
        let (client, upstream) = tokio::join!(client, upstream);
        match (client, upstream) {
            (Ok(client), Ok(upstream)) => {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    debug!(error = %err, "upgraded connection closed with an error");
                }
            }
            (Err(err), _) | (_, Err(err)) => debug!(error = %err, "protocol upgrade failed"),
        }
    };
    tokio::select! {
        () = copy => {}
        _ = closing.wait_for(|close| *close) => debug!("upgraded connection closed at the drain deadline"),
    }
}
