//! The prepare phase: the request as it will be forwarded.
//!
//! Owns: the hop-by-hop strip, path and query rewrites, the rule's request
//! headers, the first pick, `Host` and `X-Forwarded-*`, in that order;
//! taking the client's side of an upgrade (an HTTP/2 WebSocket gets the
//! HTTP/1.1 handshake headers right after the strip).
//! Must not: touch the body or the network (that is the send phase).
//!
//! Order: hop-by-hop headers (and every header the client's `Connection`
//! names) belong to the client's connection and go first, so a client
//! cannot remove a header the rule sets by naming it in `Connection`. The
//! first endpoint is picked after header and query rules (hash keys and
//! sticky cookies read the request as rewritten) but before
//! `X-Forwarded-*`, so a hash on such a header sees the client's value.

use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderValue, Request, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use super::ctx::RequestCtx;
use super::error::ProxyError;
use super::forward::{
    accepts_trailers, is_upgrade, set_forwarded, strip_hop_by_hop, websocket_handshake,
    WebSocketConnect,
};
use super::service::Connection;
use crate::policy::rewrite::HostRewrite;
use crate::policy::RulePolicy;
use crate::table::{PickContext, Picked};

/// A request ready for its first try.
pub struct Prepared<'r> {
    /// The head as forwarded, without its URI (set per try).
    pub parts: Parts,
    /// The client's body, not yet read.
    pub body: Incoming,
    /// The path and query to send (rewritten when the rule says so).
    pub path_and_query: Option<PathAndQuery>,
    /// The endpoint of the first try, and any sticky cookie to set.
    pub picked: Picked<'r>,
}

/// The client side of a protocol upgrade (WebSocket) a request asks for.
pub struct ClientUpgrade {
    /// The client's connection (HTTP/1.1) or stream (HTTP/2), once the
    /// response opening the tunnel has gone out.
    pub on: OnUpgrade,
    /// Whether it came as an HTTP/2 extended CONNECT (RFC 8441): the
    /// client then gets 200 for the backend's 101.
    pub h2: bool,
}

/// Prepares `req` for its first try; `host` is the context's (taken from
/// it, used for `Host` and `X-Forwarded-Host`). Also returns the client
/// side of a protocol upgrade the request asks for.
pub fn prepare<'r>(
    conn: &Connection,
    ctx: &'r RequestCtx,
    host: Option<HeaderValue>,
    mut req: Request<Incoming>,
) -> Result<(Prepared<'r>, Option<ClientUpgrade>), ProxyError> {
    let policy = &ctx.rule.policy;
    let h2 = req.extensions_mut().remove::<WebSocketConnect>().is_some();
    let upgrade = h2 || (req.version() == Version::HTTP_11 && is_upgrade(req.headers()));
    let client_upgrade = upgrade.then(|| ClientUpgrade {
        on: hyper::upgrade::on(&mut req),
        h2,
    });
    let (mut parts, body) = req.into_parts();
    let trailers = accepts_trailers(&parts.headers);
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if h2 {
        websocket_handshake(&mut parts.headers);
    }
    if trailers {
        // HTTP/2 backends get it; the HTTP/1.1 form drops it again.
        parts
            .headers
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
    let (path_and_query, picked) = match rewrite_and_pick(&mut parts, ctx) {
        Ok(chosen) => chosen,
        Err(err) => {
            // Answered unsent: a gRPC call's body is read to its end, so
            // h2 does not count its late DATA against the client.
            if ctx.grpc {
                super::grpc::linger(body);
            }
            return Err(err);
        }
    };
    set_host(&mut parts.headers, policy, host.as_ref());
    // X-Forwarded-Host: the host the client asked for, before any rewrite.
    set_forwarded(&mut parts.headers, conn.hop(ctx.client), host);
    parts.version = Version::HTTP_11;
    let prepared = Prepared {
        parts,
        body,
        path_and_query,
        picked,
    };
    Ok((prepared, client_upgrade))
}

/// Sets `Host`: the rule's fixed hostname, else the client's host; with
/// `BackendAddress` nothing yet (set per try: each may go to another
/// endpoint).
pub fn set_host(headers: &mut HeaderMap, policy: &RulePolicy, host: Option<&HeaderValue>) {
    match &policy.host_rewrite {
        Some(HostRewrite::Hostname(name)) => {
            headers.insert(header::HOST, name.clone());
        }
        Some(HostRewrite::BackendAddress) => {}
        None => {
            if let Some(host) = host {
                headers.insert(header::HOST, host.clone());
            }
        }
    }
}

/// The rewrites (see [`rewrite`]), then the first pick, which sees the
/// rewritten headers and query.
fn rewrite_and_pick<'r>(
    parts: &mut Parts,
    ctx: &'r RequestCtx,
) -> Result<(Option<PathAndQuery>, Picked<'r>), ProxyError> {
    let path_and_query = rewrite(parts, &ctx.rule.policy, ctx.prefix_len)?;
    let picked = ctx.rule.backends.pick(&PickContext {
        client: ctx.client,
        headers: &parts.headers,
        query: path_and_query.as_ref().and_then(|pq| pq.query()),
        now: ctx.started,
    })?;
    Ok((path_and_query, picked))
}

/// Path and query rewrites (returning the new path-and-query; untouched
/// when the rule has none) and request header changes.
pub fn rewrite(
    parts: &mut Parts,
    policy: &RulePolicy,
    prefix_len: usize,
) -> Result<Option<PathAndQuery>, ProxyError> {
    if let Some(modifier) = &policy.request_headers {
        modifier.apply(&mut parts.headers);
    }
    let original = parts.uri.path_and_query().cloned();
    if policy.path_rewrite.is_none() && policy.query.is_none() {
        return Ok(original);
    }
    let path = parts.uri.path();
    let query = parts.uri.query();
    let path = match &policy.path_rewrite {
        Some(rewrite) => rewrite.apply(path, prefix_len),
        None => path.into(),
    };
    let query = match &policy.query {
        Some(modifier) => modifier.apply(query).map(Into::into),
        None => query.map(std::borrow::Cow::Borrowed),
    };
    let mut out = String::with_capacity(path.len() + query.as_ref().map_or(0, |q| q.len() + 1));
    out.push_str(&path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&query);
    }
    PathAndQuery::from_maybe_shared(Bytes::from(out))
        .map(Some)
        .map_err(|_| ProxyError::BadRequest)
}
