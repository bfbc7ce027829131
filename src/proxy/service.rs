//! The request path: [`handle`] runs the phases over one [`RequestCtx`],
//! in this order: route (one table load) → admit (firewall, rate limit,
//! declared body length) → answer (a redirect) → prepare (rewrite, request
//! headers, pick, hop-by-hop, `Host`, `X-Forwarded-*`) → send (body,
//! retries: [`super::retry`]) → respond (response headers, body wrappers:
//! [`super::respond`]) → log (proxy-made answers: [`super::answer`]).
//!
//! Owns: the connection state, the order of the phases and the first three
//! of them. Must not: parse configuration (policies were compiled with the
//! table) or keep the table past the route phase: only the matched
//! `Arc<Rule>` is held across awaits.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::answer::{Answer, Answered};
use super::body::ProxyBody;
use super::ctx::RequestCtx;
use super::error::ProxyError;
use super::forward::{drop_underscored, request_host, websocket_connect, Hop};
use super::grpc;
use super::observe::{self, Seen, Start};
use super::per_ip::IpSlot;
use super::prepare::prepare;
use super::respond::respond;
use super::retry;
use super::tls::TlsConn;
use super::trace::{self, RequestIds};
use crate::access_log::AccessLog;
use crate::metrics::{MethodBucket, Metrics, OpenConnection};
use crate::policy::client::{client_ip, TrustedProxies};
use crate::policy::retry::is_idempotent;
use crate::table::SharedTable;
use crate::upstream::Upstreams;

/// State shared by every connection of one proxy.
pub struct Shared {
    /// The published route table.
    pub table: SharedTable,
    /// How backends are connected to; each endpoint's pool is in the
    /// table, on its target.
    pub upstreams: Upstreams,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Becomes true at the drain deadline; open tunnels close then.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Open upgraded tunnels, which the drain waits for.
    pub tunnels: TaskTracker,
    /// Longest pause between two reads of a client's request body.
    pub client_body_timeout: std::time::Duration,
    /// Longest request target (path and query; absolute-form: with the
    /// authority) accepted; past it 414 (`--max-uri-bytes`).
    pub max_uri_bytes: usize,
    /// Whether request headers with `_` in their names are forwarded
    /// (`--underscores-in-headers`); by default they are dropped.
    pub underscores_in_headers: bool,
    /// The process's metrics; `None` when they are off.
    pub metrics: Option<Arc<Metrics>>,
    /// The access log; `None` when it is off.
    pub access_log: Option<AccessLog>,
    /// Where `x-request-id`s the proxy adds come from.
    pub request_ids: RequestIds,
}

/// State of one client connection, computed once when it is accepted.
pub struct Connection {
    /// The proxy's shared state.
    pub shared: Arc<Shared>,
    /// The peer's IP, ready to append to `X-Forwarded-For`.
    pub peer_ip: HeaderValue,
    /// The peer's IP (IPv4-mapped addresses as IPv4).
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy: only then is `X-Forwarded-For`
    /// read to find the client.
    pub peer_trusted: bool,
    /// Set by each request, cleared by the connection's quiet watch
    /// (`idle_deadline` in `server.rs`): a connection with no request
    /// within the client header timeout of accept is closed, and one with
    /// none for an idle timeout is shut down gracefully.
    pub requested: AtomicBool,
    /// The connection's place under the connection cap, held until the
    /// connection and any tunnel upgraded from it have ended.
    pub _permit: OwnedSemaphorePermit,
    /// Its place under the per-client-IP cap, if one is set; held as long.
    pub _ip_slot: Option<IpSlot>,
    /// What the TLS handshake settled, for a connection that came in over
    /// TLS.
    pub tls: Option<TlsConn>,
    /// Counts the connection as open in the metrics while it lives.
    pub _open: Option<OpenConnection>,
}

impl Connection {
    /// The client of a request with `headers`: the peer, or behind
    /// trusted proxies the right-most untrusted `X-Forwarded-For` hop.
    pub fn client(&self, headers: &HeaderMap) -> IpAddr {
        if self.peer_trusted {
            client_ip(self.peer, headers, &self.shared.trusted_proxies)
        } else {
            self.peer
        }
    }

    /// The hop the proxy adds for a request whose client is `client`:
    /// `X-Forwarded-For` gets the peer, `X-Real-IP` the client.
    pub fn hop(&self, client: IpAddr) -> Hop<'_> {
        let client = if client == self.peer {
            self.peer_ip.clone()
        } else {
            // Only behind trusted proxies: the client is an XFF hop.
            HeaderValue::from_str(&client.to_string()).unwrap_or_else(|_| self.peer_ip.clone())
        };
        Hop {
            peer: &self.peer_ip,
            peer_trusted: self.peer_trusted,
            client,
            https: self.tls.is_some(),
            client_cert: self.tls.as_ref().and_then(|t| t.client_subject.as_ref()),
        }
    }
}

/// Serves one request; what the proxy answers itself is logged, then sent.
pub async fn handle(
    conn: Arc<Connection>,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if !conn.requested.load(Ordering::Relaxed) {
        conn.requested.store(true, Ordering::Relaxed);
    }
    // One clock reading for the whole request (rate limits, deadlines,
    // metrics).
    let start = Start {
        at: tokio::time::Instant::now(),
        method: MethodBucket::of(req.method()),
    };
    // Cheap to keep (standard methods are not allocated); the path is not
    // copied per request just for a log line.
    let method = req.method().clone();
    // Read once, before the request is consumed: the answers the proxy
    // makes for a gRPC call are gRPC statuses.
    let grpc = grpc::is_grpc(req.headers());
    trace::prepare(req.headers_mut(), &conn.shared.request_ids);
    let mut seen = (conn.shared.access_log.as_ref()).map(|_| Seen::of(&conn, &req));
    match proxy(&conn, req, grpc, start, &mut seen).await {
        Ok(response) => Ok(response),
        Err(answered) => {
            let rule = answered.rule.clone();
            let reason = answered.answer.reason();
            let response = answered.log_and_respond(&method, grpc);
            let status = response.status();
            observe::record(&conn, start, rule.as_deref(), None, status, Some(reason));
            if let Some(seen) = seen {
                observe::log_answer(&conn, seen, start, rule.as_deref(), reason, &response);
            }
            Ok(response.map(Either::Right))
        }
    }
}

/// The phases, in order; any of them may answer instead of forwarding.
async fn proxy(
    conn: &Arc<Connection>,
    mut req: Request<Incoming>,
    grpc: bool,
    start: Start,
    seen: &mut Option<Seen>,
) -> Result<Response<ProxyBody>, Answered> {
    // Gone before anything reads headers: routing, firewall, rate-limit
    // keys and the backend never see them.
    if !conn.shared.underscores_in_headers {
        drop_underscored(req.headers_mut());
    }
    // An HTTP/2 WebSocket (extended CONNECT) is routed, judged and sent as
    // the GET handshake it becomes.
    websocket_connect(&mut req);
    let (mut ctx, declared) = match gate(conn, &req, grpc, start) {
        Ok(gated) => gated,
        Err(answered) => {
            if grpc {
                grpc::linger(req.into_body());
            }
            return Err(answered);
        }
    };
    let host = ctx.host.take();
    let result = forward(conn, &ctx, host, req, declared, seen).await;
    result.map_err(|answer| Answered::on(&ctx.rule, answer))
}

/// The phases that forward: prepare, send (with retries) and respond.
/// (An `async fn` awaited in place, not an `async` block held in a local
/// first: that would store the large future twice in `proxy`'s own.)
async fn forward(
    conn: &Arc<Connection>,
    ctx: &RequestCtx,
    host: Option<HeaderValue>,
    req: Request<Incoming>,
    declared: Option<u64>,
    seen: &mut Option<Seen>,
) -> Result<Response<ProxyBody>, Answer> {
    let (request, client_upgrade) = prepare(conn, ctx, host, req)?;
    let sent = retry::send(conn, ctx, request, declared).await?;
    let upstream = sent.upstream;
    let mut response = respond(conn, ctx, sent, client_upgrade).map_err(Answer::from)?;
    let start = Start {
        at: ctx.started,
        method: ctx.method,
    };
    let backend = Some(upstream.target.backend);
    observe::record(
        conn,
        start,
        Some(&ctx.rule),
        backend,
        response.status(),
        None,
    );
    if let Some(seen) = seen.take() {
        observe::log_forwarded(conn, ctx, seen, &upstream, &mut response);
    }
    Ok(response)
}

/// The phases that may answer before anything is sent: route, the HTTPS
/// redirect, admit and answer. The request is only read, so that when
/// one answers, a gRPC call's body can still be read to its end.
fn gate(
    conn: &Connection,
    req: &Request<Incoming>,
    grpc: bool,
    start: Start,
) -> Result<(RequestCtx, Option<u64>), Answered> {
    let ctx = route(conn, req, grpc, start)?;
    let on_route = |answer: Answer| Answered::on(&ctx.rule, answer);
    if let Some(redirect) = https_redirect(conn, &ctx, req) {
        return Err(on_route(redirect));
    }
    let declared = admit(&ctx, req).map_err(|err| on_route(err.into()))?;
    if let Some(answer) = answer(&ctx, req) {
        return Err(on_route(answer));
    }
    Ok((ctx, declared))
}

/// The route phase: one table load finds the rule; the client, the host
/// and a gRPC call's deadline are read once for every later phase.
fn route(
    conn: &Connection,
    req: &Request<Incoming>,
    grpc: bool,
    start: Start,
) -> Result<RequestCtx, ProxyError> {
    if req.method() == Method::CONNECT {
        // An extended CONNECT for another protocol than WebSocket names
        // something the proxy does not implement; a plain one asks for a
        // forward-proxy tunnel, not a route.
        return Err(match req.extensions().get::<hyper::ext::Protocol>() {
            Some(_) => ProxyError::ProtocolNotImplemented,
            None => ProxyError::MethodNotAllowed,
        });
    }
    if uri_len(req.uri()) > conn.shared.max_uri_bytes {
        return Err(ProxyError::UriTooLong);
    }
    // One host per request, used for matching, redirects, Host and
    // X-Forwarded-Host: an absolute-form or HTTP/2 authority wins over the
    // Host header (RFC 9112 §3.2.2). A missing, doubled or malformed one
    // is refused here, once, like nginx does.
    let host = request_host(req).map_err(|bad| {
        debug!(peer = %conn.peer, reason = %bad, "bad host");
        ProxyError::BadRequest
    })?;
    let host_str = host.as_ref().and_then(|h| h.to_str().ok());
    // One table load; only the rule's Arc outlives it. A path an origin
    // may read as one another rule selects is refused (fail closed), so
    // no rule's policies can be skipped by writing the path differently.
    let (prefix_len, rule) = {
        let table = conn.shared.table.load();
        let path = req.uri().path();
        let found = table
            .lookup_unambiguous(host_str, req.method(), path, req.headers())
            .map_err(|ambiguous| {
                debug!(peer = %conn.peer, reason = ambiguous.reason(), path, "ambiguous path");
                ProxyError::AmbiguousPath
            })?;
        let (prefix_len, rule) = found.ok_or(ProxyError::NoRoute)?;
        if let Some(tls) = &conn.tls {
            if table.misdirected(tls.sni.as_deref(), host_str) {
                return Err(ProxyError::Misdirected);
            }
        }
        (prefix_len.unwrap_or(0), rule.clone())
    };
    let client = conn.client(req.headers());
    let started = start.at;
    Ok(RequestCtx {
        deadline: grpc::deadline(req.headers(), grpc, rule.timeouts.total, started),
        grpc,
        idempotent: is_idempotent(req.method()),
        method: start.method,
        rule,
        client,
        host,
        prefix_len,
        started,
    })
}

/// The request target's length as sent: path and query, and the
/// authority of an absolute-form (or HTTP/2) target. No allocation.
fn uri_len(uri: &http::Uri) -> usize {
    uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
}

/// The admit phase: the rule's firewall, rate limit and body limit, in
/// that order. Returns the declared body length (`Content-Length`), read
/// once for the body limit and the retry replay.
fn admit(ctx: &RequestCtx, req: &Request<Incoming>) -> Result<Option<u64>, ProxyError> {
    let policy = &ctx.rule.policy;
    if let Some(firewall) = &policy.firewall {
        firewall
            .check(ctx.client, req.method(), req.uri().path(), req.headers())
            .map_err(ProxyError::Forbidden)?;
    }
    if let Some(limit) = &policy.rate_limit {
        limit
            .check(ctx.client, req.headers(), ctx.started)
            .map_err(|limited| ProxyError::RateLimited {
                retry_after_secs: limited.retry_after_secs(),
            })?;
    }
    // A declared length over the limit is refused before any backend is
    // contacted; otherwise the body is counted as it streams. (Header
    // rules cannot touch Content-Length, so this holds to the end.)
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(max) = policy.max_body_size {
        if declared.is_some_and(|len| len > max) {
            return Err(ProxyError::BodyTooLarge);
        }
    }
    Ok(declared)
}

/// A plain-HTTP request for a route with `spec.tls` is redirected to
/// HTTPS (308, so the method and body are kept), unless the route opted
/// out, there is no TLS listener, or it is an ACME HTTP-01 challenge.
fn https_redirect(conn: &Connection, ctx: &RequestCtx, req: &Request<Incoming>) -> Option<Answer> {
    if conn.tls.is_some() {
        return None;
    }
    let https = ctx.rule.https.as_ref()?;
    let mut buf = [0u8; 253];
    let host = crate::matching::request_host(ctx.host_str()?, &mut buf)?;
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = https.redirect(host, target)?;
    Some(Answer::Redirect {
        status: http::StatusCode::PERMANENT_REDIRECT,
        location,
    })
}

/// The answer phase: a rule that redirects answers here, with a synthetic
/// response; `None` lets the request go on to a backend.
fn answer(ctx: &RequestCtx, req: &Request<Incoming>) -> Option<Answer> {
    let redirect = ctx.rule.policy.redirect.as_ref()?;
    let uri = req.uri();
    Some(
        match redirect.location(ctx.host_str(), uri.path(), uri.query(), ctx.prefix_len) {
            Some(location) => Answer::Redirect {
                status: redirect.status,
                location,
            },
            None => Answer::Failed(ProxyError::BadRequest),
        },
    )
}
