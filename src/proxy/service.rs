//! The per-request phases, in this order: match → firewall → rate limit →
//! body limit → rewrite and request headers (or redirect) → pick → forward
//! → response headers.
//!
//! Each phase is a small step over the request; the route table is loaded
//! once per request and only the matched `Arc<Rule>` is kept across awaits.
//! Policies were compiled with the table: nothing is parsed here.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;

use super::connect::{is_connect_timeout, TimedConnector, CONNECT_TIMEOUT};
use hyper_util::rt::TokioIo;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::error::ProxyError;
use super::forward::{
    is_upgrade, set_forwarded, strip_hop_by_hop, upstream_uri, BodySlot, Outgoing, Reclaimable,
    Timed, Tracked,
};
use crate::balance::InFlight;
use crate::health::passive::Outcome;
use crate::policy::body_limit::LimitedBody;
use crate::policy::client::{client_ip, TrustedProxies};
use crate::policy::retry::is_idempotent;
use crate::policy::rewrite::HostRewrite;
use crate::policy::RulePolicy;
use crate::table::{PickContext, Picked, Rule, SharedTable, Target};

/// What the proxy sends back: a backend's streamed body, or its own.
pub type ProxyBody = Either<Timed<Tracked<Incoming>>, Full<Bytes>>;

/// A request body on its way upstream: the client's, streamed and counted
/// on the way (the rule's `maxBodySize`), or one held whole so it can be
/// sent again on a retry (empty for bodiless requests, or a small body of
/// declared length).
pub type UpstreamBody = Either<Outgoing<Reclaimable<LimitedBody<Incoming>>>, Full<Bytes>>;

/// How a retry gets the request body again.
enum Replay {
    /// Held whole (none, or small and of declared length).
    Held(Bytes),
    /// Streamed: still in its slot if no try has started sending it.
    Slot(BodySlot<LimitedBody<Incoming>>),
}

/// The upstream client: one pool of keep-alive connections to every backend.
pub type UpstreamClient = Client<TimedConnector, UpstreamBody>;

/// Picks tried for a retry before falling back to a scan of the endpoints.
const RETRY_PICKS: usize = 3;
/// Largest declared request body read whole so a retry can send it again
/// (like nginx's in-memory `client_body_buffer_size`); larger or chunked
/// bodies stream and are not retried.
const REPLAYABLE_BODY: u64 = 64 * 1024;

/// State shared by every connection of one proxy.
pub struct Shared {
    /// The published route table.
    pub table: SharedTable,
    /// The pooled upstream client.
    pub client: UpstreamClient,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
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
    /// The peer's IP (IPv4-mapped addresses as IPv4).
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy: only then is `X-Forwarded-For`
    /// read to find the client.
    pub peer_trusted: bool,
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
    // One host per request, used for matching, redirects, Host and
    // X-Forwarded-Host: an absolute-form or HTTP/2 authority wins over the
    // Host header (RFC 9112 §3.2.2).
    let host = request_host(&req);
    let host_str = host.as_ref().and_then(|h| h.to_str().ok());

    // Phase: match. One table load; only the rule's Arc outlives it.
    let (prefix_len, rule) = {
        let table = conn.shared.table.load();
        let (prefix_len, rule) = table
            .lookup(host_str, req.method(), req.uri().path(), req.headers())
            .ok_or(ProxyError::NoRoute)?;
        (prefix_len.unwrap_or(0), rule.clone())
    };
    let policy = &rule.policy;

    // Phase: firewall. The client is the peer, or behind trusted proxies
    // the right-most untrusted X-Forwarded-For hop.
    let client = if conn.peer_trusted {
        client_ip(conn.peer, req.headers(), &conn.shared.trusted_proxies)
    } else {
        conn.peer
    };
    if let Some(firewall) = &policy.firewall {
        firewall
            .check(client, req.method(), req.uri().path(), req.headers())
            .map_err(ProxyError::Forbidden)?;
    }

    // Phase: rate limit.
    if let Some(limit) = &policy.rate_limit {
        limit
            .check(client, req.headers(), tokio::time::Instant::now())
            .map_err(|limited| ProxyError::RateLimited {
                retry_after_secs: limited.retry_after_secs(),
            })?;
    }

    // Phase: body limit. A declared length over the limit is refused before
    // any backend is contacted; otherwise the body is counted as it streams.
    // (Header rules cannot touch Content-Length, so this holds to the end.)
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

    // Phase: rewrite and request headers, or redirect.
    if let Some(redirect) = &policy.redirect {
        let location = redirect
            .location(host_str, req.uri().path(), req.uri().query(), prefix_len)
            .ok_or(ProxyError::BadRequest)?;
        return Err(ProxyError::Redirect {
            status: redirect.status,
            location,
        });
    }
    let upgrade = req.version() == Version::HTTP_11 && is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let path_and_query = rewrite(&mut parts, policy, prefix_len)?;

    // Phase: pick, on the request as it will be forwarded (hash keys and
    // sticky cookies are read after header and query rules).
    let started = tokio::time::Instant::now();
    let picked = rule
        .backends
        .pick(&PickContext {
            client,
            headers: &parts.headers,
            query: path_and_query.as_ref().and_then(|pq| pq.query()),
            now: started,
        })
        .map_err(ProxyError::from)?;
    let (mut target, mut set_cookie) = (picked.target, picked.set_cookie);
    // A streamed body is consumed by its first try; to be sent again, a
    // body must be held whole. Bodiless requests are; so are small bodies
    // of declared length when a retry could happen at all.
    let retries = &rule.retries;
    let may_retry = retries.attempts > 0 && rule.backends.targets().len() > 1;
    let small = declared.is_some_and(|len| len <= REPLAYABLE_BODY);
    // Raised by the body when it passes the limit, so that the upstream
    // error it causes is answered 413, not 502.
    let (body, mut body_sent, tripped, replay) = if body.is_end_stream() {
        (
            Either::Right(Full::default()),
            None,
            None,
            Replay::Held(Bytes::new()),
        )
    } else if may_retry && small {
        // Within the rule's maxBodySize: a larger declared length was
        // refused in the body-limit phase.
        let bytes = body
            .collect()
            .await
            .map_err(|_| ProxyError::BadRequest)?
            .to_bytes();
        (
            Either::Right(Full::new(bytes.clone())),
            None,
            None,
            Replay::Held(bytes),
        )
    } else {
        let (body, tripped) = match policy.max_body_size {
            Some(max) => {
                let tripped = Arc::new(AtomicBool::new(false));
                (LimitedBody::new(body, max, tripped.clone()), Some(tripped))
            }
            None => (LimitedBody::unlimited(body), None),
        };
        let (body, slot) = Reclaimable::new(body);
        let (body, body_sent) = Outgoing::new(body);
        (Either::Left(body), body_sent, tripped, Replay::Slot(slot))
    };
    let over_limit = || tripped.as_ref().is_some_and(|t| t.load(Ordering::Acquire));

    // Phase: forward.
    strip_hop_by_hop(&mut parts.headers, upgrade);
    match &policy.host_rewrite {
        Some(HostRewrite::Hostname(name)) => {
            parts.headers.insert(header::HOST, name.clone());
        }
        // Set per try: each may go to another endpoint.
        Some(HostRewrite::BackendAddress) => {}
        None => {
            if let Some(host) = &host {
                parts.headers.insert(header::HOST, host.clone());
            }
        }
    }
    // X-Forwarded-Host: the host the client asked for, before any rewrite.
    set_forwarded(&mut parts.headers, &conn.peer_ip, host);
    parts.version = Version::HTTP_11;

    // The whole exchange's deadline (`timeouts.total`), retries included.
    let total = rule.timeouts.total.map(|total| started + total);
    retries.budget.deposit(started);
    let idempotent = is_idempotent(&parts.method);
    // What a retry is rebuilt from. The client keeps a request it failed
    // to send, so this copy is made up front, but only when a retry is
    // possible at all: a body held whole, another endpoint, budget left.
    let saved = (may_retry && retries.budget.has_token(started)).then(|| {
        (
            parts.method.clone(),
            parts.headers.clone(),
            path_and_query.clone(),
            replay,
        )
    });
    let mut first = Some((parts, body, path_and_query));
    let mut tried: Vec<&Target> = Vec::new();
    let (result, in_flight, try_started) = loop {
        let (mut parts, body, path_and_query) = match (first.take(), &saved) {
            (Some(first), _) => first,
            (None, Some((method, headers, path_and_query, replay))) => {
                let (mut parts, ()) = Request::new(()).into_parts();
                parts.method = method.clone();
                parts.headers = headers.clone();
                parts.version = Version::HTTP_11;
                let body = match replay {
                    Replay::Held(bytes) => Either::Right(Full::new(bytes.clone())),
                    Replay::Slot(slot) => {
                        // Checked before choosing to retry.
                        let Some(body) = Reclaimable::reclaim(slot) else {
                            return Err(ProxyError::BadRequest);
                        };
                        let (body, sent) = Outgoing::new(body);
                        body_sent = sent;
                        Either::Left(body)
                    }
                };
                (parts, body, path_and_query.clone())
            }
            // A retry is only chosen below when `saved` holds the request.
            (None, None) => return Err(ProxyError::BadRequest),
        };
        if let Some(HostRewrite::BackendAddress) = &policy.host_rewrite {
            if let Ok(address) = HeaderValue::from_str(target.authority.as_str()) {
                parts.headers.insert(header::HOST, address);
            }
        }
        parts.uri =
            upstream_uri(&target.authority, path_and_query).ok_or(ProxyError::BadRequest)?;
        let try_started = tokio::time::Instant::now();
        let in_flight = target.state.start_request();
        // The connector reads the rule's connect timeout from this scope.
        let sent = CONNECT_TIMEOUT.scope(
            rule.timeouts.connect,
            conn.shared.client.request(Request::from_parts(parts, body)),
        );
        let result = await_response(sent, body_sent.take(), rule.timeouts.request, total).await;
        let now = tokio::time::Instant::now();
        // Passive health, for every try; a body over the limit is the
        // client's doing.
        if !over_limit() {
            rule.passive
                .report(rule.backends.targets(), target, Outcome::of(&result), now);
        }
        let retryable = match &result {
            // Not retried: the backend may still be working on it.
            Err(_) => false,
            Ok(Err(_)) if over_limit() => false,
            // Nothing was sent.
            Ok(Err(err)) if err.is_connect() => true,
            // Reset or closed before any response byte.
            Ok(Err(_)) => idempotent,
            Ok(Ok(response)) => idempotent && retries.retries_status(response.status()),
        };
        if retryable && tried.len() < retries.attempts as usize {
            // A streamed body can go again only if no try started sending it.
            let replayable = match &saved {
                Some((_, _, _, Replay::Slot(slot))) => Reclaimable::reclaim(slot).is_some(),
                Some((_, _, _, Replay::Held(_))) => true,
                None => false,
            };
            if let Some((_, headers, path_and_query, _)) = saved.as_ref().filter(|_| replayable) {
                tried.push(target);
                let cx = PickContext {
                    client,
                    headers,
                    query: path_and_query.as_ref().and_then(|pq| pq.query()),
                    now,
                };
                if let Some(next) = next_target(&rule, &cx, &tried) {
                    if retries.budget.withdraw(now) {
                        debug!(
                            from = %target.authority,
                            to = %next.target.authority,
                            "retrying on another endpoint"
                        );
                        (target, set_cookie) = (next.target, next.set_cookie);
                        continue;
                    }
                }
            }
        }
        break (result, in_flight, try_started);
    };
    let mut response = match result {
        Err(_) => return Err(ProxyError::Timeout),
        Ok(Err(_)) if over_limit() => return Err(ProxyError::BodyTooLarge),
        Ok(Err(err)) if err.is_connect() && is_connect_timeout(&err) => {
            return Err(ProxyError::ConnectTimeout(err))
        }
        Ok(Err(err)) if err.is_connect() => return Err(ProxyError::Connect(err)),
        Ok(Err(err)) => return Err(ProxyError::Upstream(err)),
        Ok(Ok(response)) => response,
    };
    let now = tokio::time::Instant::now();
    target.state.observe_latency(now - try_started, now);

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
    if let Some(cookie) = set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    if let Some(modifier) = &policy.response_headers {
        modifier.apply(response.headers_mut());
    }
    let idle = rule.timeouts.idle;
    Ok(response
        .map(|body| Either::Left(Timed::new(Tracked::new(body, in_flight), idle, total, now))))
}

/// Another endpoint for a retry: a few picks (the balancer skips
/// unavailable endpoints), then, for balancers that keep choosing the same
/// one (hash, sticky), the first available endpoint not yet tried.
fn next_target<'r>(rule: &'r Rule, cx: &PickContext<'_>, tried: &[&Target]) -> Option<Picked<'r>> {
    let untried = |t: &Target| !tried.iter().any(|done| std::ptr::eq(*done, t));
    for _ in 0..RETRY_PICKS {
        match rule.backends.pick(cx) {
            Ok(picked) if untried(picked.target) => return Some(picked),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    rule.backends
        .targets()
        .iter()
        .find(|t| t.weight > 0 && untried(t) && t.state.is_available_at(cx.now))
        .map(|target| Picked {
            target,
            set_cookie: None,
        })
}

/// The host the client asked for: the URI authority (absolute form, or
/// HTTP/2's `:authority`) without userinfo, else the `Host` header.
fn request_host<B>(req: &Request<B>) -> Option<HeaderValue> {
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
/// has been sent whole, so a slow upload is not mistaken for a slow backend;
/// the `total` deadline, when set, bounds the whole wait.
async fn await_response<F: std::future::Future>(
    response: F,
    body_sent: Option<oneshot::Receiver<()>>,
    timeout: std::time::Duration,
    total: Option<tokio::time::Instant>,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let head = async move {
        let Some(body_sent) = body_sent else {
            return tokio::time::timeout(timeout, response).await;
        };
        tokio::pin!(response);
        tokio::select! {
            out = &mut response => Ok(out),
            _ = body_sent => tokio::time::timeout(timeout, response).await,
        }
    };
    match total {
        None => head.await,
        Some(at) => match tokio::time::timeout_at(at, head).await {
            Ok(result) => result,
            Err(elapsed) => Err(elapsed),
        },
    }
}

/// The rewrite phase: path and query rewrites (returning the new
/// path-and-query; untouched when the rule has none) and request header
/// changes.
fn rewrite(
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
