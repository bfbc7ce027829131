//! The per-request phases: match → pick → forward → response headers.
//!
//! Each phase is a small step over the request; the route table is loaded
//! once per request and only the matched `Arc<Rule>` is kept across awaits.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::error::ProxyError;
use super::forward::{is_upgrade, set_forwarded, strip_hop_by_hop, upstream_uri, Tracked};
use crate::balance::InFlight;
use crate::table::SharedTable;

/// What the proxy sends back: a backend's streamed body, or its own.
pub type ProxyBody = Either<Tracked<Incoming>, Full<Bytes>>;

/// The upstream client: one pool of keep-alive connections to every backend.
pub type UpstreamClient = Client<HttpConnector, Incoming>;

/// State shared by every connection of one proxy.
pub struct Shared {
    /// The published route table.
    pub table: SharedTable,
    /// The pooled upstream client.
    pub client: UpstreamClient,
    /// Becomes true at the drain deadline; open tunnels close then.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

/// State of one client connection, computed once when it is accepted.
pub struct Connection {
    /// The proxy's shared state.
    pub shared: Arc<Shared>,
    /// The peer's IP, ready to append to `X-Forwarded-For`.
    pub peer_ip: HeaderValue,
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
    conn: &Connection,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    // Phase: match. One table load; only the rule's Arc outlives it.
    let rule = {
        let table = conn.shared.table.load();
        let host = req.uri().authority().map(|a| a.as_str()).or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
        });
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
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        // HTTP/2 carries the host in :authority; HTTP/1.1 backends need Host.
        let authority = parts.uri.authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if let Some(host) = &host {
        if !parts.headers.contains_key(header::HOST) {
            parts.headers.insert(header::HOST, host.clone());
        }
    }
    set_forwarded(&mut parts.headers, &conn.peer_ip, host);
    parts.uri = upstream_uri(&target.authority, parts.uri.into_parts().path_and_query)
        .ok_or(ProxyError::BadRequest)?;
    parts.version = Version::HTTP_11;
    let sent = conn.shared.client.request(Request::from_parts(parts, body));
    let mut response = match tokio::time::timeout(rule.timeouts.request, sent).await {
        Err(_) => return Err(ProxyError::Timeout),
        Ok(Err(err)) if err.is_connect() => return Err(ProxyError::Connect(err)),
        Ok(Err(err)) => return Err(ProxyError::Upstream(err)),
        Ok(Ok(response)) => response,
    };

    // Phase: response headers.
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let closing = conn.shared.closing.clone();
            tokio::spawn(tunnel(client_upgrade, upstream_upgrade, in_flight, closing));
            let (parts, _) = response.into_parts();
            return Ok(Response::from_parts(parts, Either::Right(Full::default())));
        }
    }
    strip_hop_by_hop(response.headers_mut(), false);
    Ok(response.map(|body| Either::Left(Tracked::new(body, in_flight))))
}

/// Copies bytes both ways between the upgraded client and backend
/// connections until either side closes, or the proxy's drain deadline passes.
async fn tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    _in_flight: InFlight,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
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
