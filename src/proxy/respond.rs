//! The respond phase: the backend's response on its way to the client.
//!
//! Owns: protocol upgrades (the tunnel between the two upgraded
//! connections; an HTTP/2 WebSocket's 101 becomes 200), the hop-by-hop
//! strip of the response, the sticky cookie, the rule's response headers
//! and the response body wrappers. Must not: retry, or fail except for an
//! HTTP/2 WebSocket the backend did not switch: once a head arrived it is
//! what the client gets.

use std::sync::Arc;

use http::{header, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::body::{ProxyBody, Timed, Tracked};
use super::ctx::RequestCtx;
use super::error::ProxyError;
use super::forward::strip_hop_by_hop;
use super::prepare::ClientUpgrade;
use super::retry::Sent;
use super::service::Connection;
use crate::balance::InFlight;

/// The response the client gets from what the send phase got back;
/// `client_upgrade` is set when the client asked to switch protocols.
/// Fails only for an HTTP/2 WebSocket the backend answered with a
/// success other than 101, which the client would take for the tunnel.
pub fn respond(
    conn: &Arc<Connection>,
    ctx: &RequestCtx,
    sent: Sent<'_>,
    client_upgrade: Option<ClientUpgrade>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let Sent {
        mut response,
        set_cookie,
        in_flight,
        head_at,
        ..
    } = sent;
    if let Some(client) = client_upgrade {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            conn.shared
                .tunnels
                .spawn(tunnel(client.on, upstream_upgrade, in_flight, conn.clone()));
            let (mut parts, _) = response.into_parts();
            if client.h2 {
                switched_over_h2(&mut parts);
            }
            return Ok(Response::from_parts(parts, Either::Right(Full::default())));
        }
        if client.h2 && response.status().is_success() {
            return Err(ProxyError::NotSwitched);
        }
    }
    strip_hop_by_hop(response.headers_mut(), false);
    if let Some(cookie) = set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    let rule = &ctx.rule;
    if let Some(modifier) = &rule.policy.response_headers {
        modifier.apply(response.headers_mut());
    }
    if conn.tls.is_some() {
        if let Some(hsts) = rule.https.as_ref().and_then(|h| h.hsts.as_ref()) {
            (response.headers_mut()).insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
    let (idle, total) = (rule.timeouts.idle, ctx.deadline);
    let grpc = super::grpc::is_grpc(response.headers());
    Ok(response.map(|body| {
        Either::Left(Timed::new(Tracked::new(body, in_flight), idle, total, head_at).grpc(grpc))
    }))
}

/// The backend's 101 as an HTTP/2 client reads a WebSocket opening (RFC
/// 8441 §5): 200, without the HTTP/1.1 handshake's headers (`Upgrade`,
/// `Connection`, `Sec-WebSocket-Accept`) or a length; the subprotocol
/// and extensions the backend chose go on.
fn switched_over_h2(parts: &mut http::response::Parts) {
    parts.status = StatusCode::OK;
    strip_hop_by_hop(&mut parts.headers, false);
    parts.headers.remove(header::SEC_WEBSOCKET_ACCEPT);
    parts.headers.remove(header::CONTENT_LENGTH);
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
