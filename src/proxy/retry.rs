//! The send phase: the request body as it goes upstream, tries, and
//! retries on another endpoint.
//!
//! Owns: choosing how the body travels (held whole when small and a retry
//! is possible, else streamed and counted), one try through the pooled
//! client under the rule's timeouts, passive health reports, and the retry
//! decision (which failures, how many, the budget, which endpoint next).
//! Must not: lock, or buffer a body it was not asked to hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::debug;

use super::ctx::RequestCtx;
use super::error::ProxyError;
use super::observe::Upstream;
use super::prepare::Prepared;
use super::service::Connection;
use crate::balance::InFlight;
use crate::metrics::TryEvent;
use crate::policy::rewrite::HostRewrite;
use crate::table::{PickContext, Picked, Rule, Target};
use crate::upstream::body::{LimitedBody, Outgoing, Reclaim, Reclaimable};
use crate::upstream::{Protocol, RequestBody as UpstreamBody, ResponseBody, SendError};

/// Picks tried for a retry before falling back to a scan of the endpoints.
const RETRY_PICKS: usize = 3;
/// Times a request an HTTP/2 backend did not process (GOAWAY,
/// `REFUSED_STREAM`) is sent again, whatever its method and the rule's
/// retries: the backend is draining, not failing.
const UNPROCESSED_RESENDS: usize = 3;
/// Largest declared request body read whole so a retry can send it again
/// (like nginx's in-memory `client_body_buffer_size`); larger or chunked
/// bodies stream, and are retried only if no try started sending them.
const REPLAYABLE_BODY: u64 = 64 * 1024;

/// The backend's response head, and what the respond phase needs.
pub struct Sent<'r> {
    /// The response head; its body still streams from the backend.
    pub response: Response<ResponseBody>,
    /// A sticky-session cookie to add to the response.
    pub set_cookie: Option<&'r HeaderValue>,
    /// Keeps the request counted on its endpoint until the body ends.
    pub in_flight: InFlight,
    /// When the head arrived.
    pub head_at: Instant,
    /// The endpoint that answered, the tries sent and the last one's
    /// time to its head, for the log phase.
    pub upstream: Upstream<'r>,
}

/// One try's request: the head without its URI, and its body.
struct Attempt {
    parts: Parts,
    body: UpstreamBody,
    /// Resolves once a streamed body has been sent whole.
    body_sent: Option<oneshot::Receiver<()>>,
    path_and_query: Option<PathAndQuery>,
}

/// How a retry gets the request body again.
enum Replay {
    /// Held whole (none, or small and of declared length).
    Held(Bytes),
    /// Streamed: comes back only if its try never polled it.
    Streamed(Reclaim<LimitedBody<Incoming>>),
    /// Streamed with no way back: no retry is possible.
    Gone,
}

/// What a retry is rebuilt from once a try consumed the request (a status
/// or reset retry, or a request an HTTP/2 backend did not process). A
/// request no connection took comes back whole and needs none of this, so
/// the copy is made up front only when such a retry is possible: an
/// idempotent request with retries and budget, or an HTTP/2 backend.
struct Saved {
    method: Method,
    headers: HeaderMap,
    path_and_query: Option<PathAndQuery>,
    replay: Replay,
}

/// The first try's body, and what goes with it.
struct FirstBody {
    body: UpstreamBody,
    /// Resolves once a streamed body has been sent whole.
    body_sent: Option<oneshot::Receiver<()>>,
    /// Raised by a limited body when it passes the rule's `maxBodySize`.
    tripped: Option<Arc<AtomicBool>>,
    replay: Replay,
}

impl FirstBody {
    /// A body held whole: sent as `body`, replayed from `bytes`.
    fn held(body: Full<Bytes>, bytes: Bytes) -> Self {
        FirstBody {
            body: Either::Right(body),
            body_sent: None,
            tripped: None,
            replay: Replay::Held(bytes),
        }
    }
}

/// What one try gave.
struct Tried {
    /// The response head or the failure; `Err` when the time ran out.
    result: TryResult,
    in_flight: InFlight,
    started: Instant,
    /// When it ended.
    now: Instant,
}

/// The wait for a response head ran out of time.
#[derive(Debug)]
struct TimedOut;

/// What waiting for a try's response head gives.
type TryResult = Result<Result<Response<ResponseBody>, SendError>, TimedOut>;

mod outcome;

use outcome::{outcome, passive_outcome};

/// The send phase: sends `request` to its picked endpoint and, when the
/// failure and the rule allow, to others; returns the first response kept.
pub async fn send<'r>(
    conn: &Connection,
    ctx: &'r RequestCtx,
    request: Prepared<'r>,
    declared: Option<u64>,
) -> Result<Sent<'r>, ProxyError> {
    let rule = &*ctx.rule;
    let retries = &rule.retries;
    let may_retry = retries.attempts > 0 && rule.backends.targets().len() > 1;
    let Prepared {
        parts,
        body,
        path_and_query,
        picked,
    } = request;
    // An HTTP/2 backend may hand back a request it never processed.
    let resendable = picked.target.pool.transport().protocol != Protocol::Http1;
    let small = declared.is_some_and(|len| len <= REPLAYABLE_BODY);
    let FirstBody {
        body,
        body_sent,
        tripped,
        replay,
    } = upstream_body(
        LimitedBody::new(body, conn.shared.client_body_timeout),
        may_retry || resendable,
        small,
        rule.policy.max_body_size,
    )
    .await?;
    // Raised by the body when it passes the limit, so that the upstream
    // error it causes is answered 413, not 502.
    let over_limit = || tripped.as_ref().is_some_and(|t| t.load(Ordering::Acquire));
    retries.budget.deposit(ctx.started);
    let retried = may_retry && ctx.idempotent && retries.budget.has_token(ctx.started);
    let mut saved = (retried || resendable).then(|| Saved {
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        path_and_query: path_and_query.clone(),
        replay,
    });
    let mut attempt = Attempt {
        parts,
        body,
        body_sent,
        path_and_query,
    };
    let Picked {
        mut target,
        mut set_cookie,
    } = picked;
    let mut tried: Vec<&Target> = Vec::new();
    let mut resent = 0;
    loop {
        let Tried {
            result,
            in_flight,
            started,
            now,
        } = try_once(conn, ctx, target, attempt).await?;
        let (result, returned) = outcome(result, over_limit());
        if matches!(result, Err(ProxyError::Unprocessed(_))) && resent < UNPROCESSED_RESENDS {
            if let Some(again) = saved.as_mut().and_then(Saved::attempt) {
                debug!(endpoint = %target.authority, "sending again a request the backend did not process");
                (attempt, resent) = (again, resent + 1);
                continue;
            }
        }
        // Passive health, for every try the backend is to blame for; a
        // body over the limit, malformed, abandoned or stalled is the
        // client's doing.
        if let Some(passive) = passive_outcome(&result) {
            rule.passive
                .report(rule.backends.targets(), target, passive, now);
        }
        if let Err(err) = &result {
            count_failed_try(rule, err);
        }
        let retryable = match &result {
            Err(err) => err.retryable(ctx.idempotent),
            Ok(response) => ctx.idempotent && retries.retries_status(response.status()),
        };
        if retryable && tried.len() < retries.attempts as usize {
            if let Some((next, picked)) = retry(ctx, &mut saved, returned, &mut tried, target, now)
            {
                rule.metrics.events().record(TryEvent::Retry);
                (attempt, target, set_cookie) = (next, picked.target, picked.set_cookie);
                continue;
            }
        }
        let response = result?;
        target.state.observe_latency(now - started, now);
        return Ok(Sent {
            response,
            set_cookie,
            in_flight,
            head_at: now,
            upstream: Upstream {
                target,
                attempts: (tried.len() + resent + 1) as u32,
                duration: now - started,
            },
        });
    }
}

/// Counts a try that failed to connect or timed out (for the metrics).
fn count_failed_try(rule: &Rule, err: &ProxyError) {
    let event = match err {
        ProxyError::Connect(_) | ProxyError::ConnectTimeout(_) | ProxyError::BackendTls(_) => {
            TryEvent::ConnectFailure
        }
        ProxyError::Timeout => TryEvent::Timeout,
        _ => return,
    };
    rule.metrics.events().record(event);
}

/// The body of the first try, how it says it has been sent, the flag it
/// raises past the limit, and how a retry gets it again. A streamed body
/// is consumed by its first try; to be sent again whatever happens, a body
/// must be held whole. Bodiless requests are; so are `small` bodies (of
/// declared length) when a retry could happen at all; reading one whole,
/// a client that stalls or breaks it is answered before any backend is
/// contacted.
async fn upstream_body(
    body: LimitedBody<Incoming>,
    may_retry: bool,
    small: bool,
    max_body_size: Option<u64>,
) -> Result<FirstBody, ProxyError> {
    if body.is_end_stream() {
        return Ok(FirstBody::held(Full::default(), Bytes::new()));
    }
    if may_retry && small {
        // Within the rule's maxBodySize: a larger declared length was
        // refused in the admit phase.
        let bytes = body.collect().await.map_err(ProxyError::from)?.to_bytes();
        return Ok(FirstBody::held(Full::new(bytes.clone()), bytes));
    }
    let (body, tripped) = match max_body_size {
        Some(max) => {
            let tripped = Arc::new(AtomicBool::new(false));
            (body.with_limit(max, tripped.clone()), Some(tripped))
        }
        None => (body, None),
    };
    let (body, replay) = if may_retry {
        let (body, reclaim) = Reclaimable::new(body);
        (body, Replay::Streamed(reclaim))
    } else {
        (Reclaimable::once(body), Replay::Gone)
    };
    let (body, body_sent) = Outgoing::new(body);
    Ok(FirstBody {
        body: Either::Left(body),
        body_sent,
        tripped,
        replay,
    })
}

/// One try to `target`, under the rule's connect and request timeouts and
/// the exchange's deadline.
async fn try_once(
    conn: &Connection,
    ctx: &RequestCtx,
    target: &Target,
    attempt: Attempt,
) -> Result<Tried, ProxyError> {
    let Attempt {
        mut parts,
        body,
        body_sent,
        path_and_query,
    } = attempt;
    let rule = &ctx.rule;
    if let Some(HostRewrite::BackendAddress) = &rule.policy.host_rewrite {
        if let Ok(address) = HeaderValue::from_str(target.authority.as_str()) {
            parts.headers.insert(header::HOST, address);
        }
    }
    // Origin form: the pool adds scheme and authority for HTTP/2.
    parts.uri = Uri::from(path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/")));
    if ctx.grpc {
        super::grpc::set_timeout(&mut parts.headers, ctx.deadline, Instant::now());
    }
    let started = Instant::now();
    let in_flight = target.state.start_request();
    let upstreams = &conn.shared.upstreams;
    let connect_timeout = rule.timeouts.connect.unwrap_or(upstreams.connect_timeout);
    let request = Request::from_parts(parts, body);
    let sent = target.pool.send(upstreams, request, connect_timeout);
    let result = await_response(sent, body_sent, rule.timeouts.request, ctx.deadline).await;
    Ok(Tried {
        result,
        in_flight,
        started,
        now: Instant::now(),
    })
}

/// The next try, if the request can go again: it came back unsent, or its
/// body can be sent again (held whole, or streamed and never polled);
/// another endpoint is available, and the budget allows.
fn retry<'r>(
    ctx: &'r RequestCtx,
    saved: &mut Option<Saved>,
    returned: Option<Request<UpstreamBody>>,
    tried: &mut Vec<&'r Target>,
    failed: &'r Target,
    now: Instant,
) -> Option<(Attempt, Picked<'r>)> {
    // Checked before picking: a pick moves the balancer on.
    if !ctx.rule.retries.budget.has_token(now) {
        ctx.rule.metrics.events().record(TryEvent::BudgetExhausted);
        return None;
    }
    let attempt = match returned {
        Some(request) => Attempt::returned(request),
        None => saved.as_mut()?.attempt()?,
    };
    tried.push(failed);
    let cx = PickContext {
        client: ctx.client,
        headers: &attempt.parts.headers,
        query: attempt.path_and_query.as_ref().and_then(|pq| pq.query()),
        now,
    };
    let next = next_target(&ctx.rule, &cx, tried)?;
    if !ctx.rule.retries.budget.withdraw(now) {
        ctx.rule.metrics.events().record(TryEvent::BudgetExhausted);
        return None;
    }
    debug!(
        from = %failed.authority,
        to = %next.target.authority,
        "retrying on another endpoint"
    );
    Some((attempt, next))
}

impl Attempt {
    /// A request no connection took, as it came back: nothing copied.
    fn returned(request: Request<UpstreamBody>) -> Attempt {
        let (parts, mut body) = request.into_parts();
        let body_sent = match &mut body {
            Either::Left(outgoing) => outgoing.rearm(),
            Either::Right(_) => None,
        };
        let path_and_query = parts.uri.path_and_query().cloned();
        Attempt {
            parts,
            body,
            body_sent,
            path_and_query,
        }
    }
}

impl Saved {
    /// Another try rebuilt from the copy, if its body can be sent again.
    fn attempt(&mut self) -> Option<Attempt> {
        let (body, body_sent) = self.replay.next()?;
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method.clone();
        parts.headers = self.headers.clone();
        parts.version = Version::HTTP_11;
        Some(Attempt {
            parts,
            body,
            body_sent,
            path_and_query: self.path_and_query.clone(),
        })
    }
}

impl Replay {
    /// The body for another try, or `None` when it cannot be sent again.
    fn next(&mut self) -> Option<(UpstreamBody, Option<oneshot::Receiver<()>>)> {
        match self {
            Replay::Held(bytes) => Some((Either::Right(Full::new(bytes.clone())), None)),
            Replay::Streamed(reclaim) => {
                let (body, again) = Reclaimable::new(reclaim.take()?);
                *reclaim = again;
                let (body, body_sent) = Outgoing::new(body);
                Some((Either::Left(body), body_sent))
            }
            Replay::Gone => None,
        }
    }
}

/// Another endpoint for a retry: a few picks (the balancer skips
/// unavailable endpoints), then, for balancers that keep choosing the same
/// one (hash, sticky), the first available endpoint not yet tried, and
/// when every untried one is out, one that is only ejected (a last resort
/// beats a 502; see [`Picked::fallback`]).
fn next_target<'r>(rule: &'r Rule, cx: &PickContext<'_>, tried: &[&Target]) -> Option<Picked<'r>> {
    let untried = |t: &Target| !tried.iter().any(|done| std::ptr::eq(*done, t));
    for _ in 0..RETRY_PICKS {
        match rule.backends.pick(cx) {
            Ok(picked) if untried(picked.target) => return Some(picked),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    Picked::fallback(rule.backends.targets(), cx.now, untried)
}

/// Waits for the response head. The timeout starts once the request body
/// has been sent whole, so a slow upload is not mistaken for a slow backend;
/// the `total` deadline, when set, bounds the whole wait. One timer, reset
/// when the body is sent, and `response` pinned once where it is: no
/// nested timeouts, each holding (and moving) a copy of the future.
async fn await_response<F: std::future::Future>(
    response: F,
    mut body_sent: Option<oneshot::Receiver<()>>,
    timeout: std::time::Duration,
    total: Option<Instant>,
) -> Result<F::Output, TimedOut> {
    let head_due = |now: Instant| total.map_or(now + timeout, |at| at.min(now + timeout));
    let (due, mut armed) = match (&body_sent, total) {
        (None, _) => (head_due(Instant::now()), true),
        (Some(_), Some(at)) => (at, true),
        (Some(_), None) => (Instant::now(), false),
    };
    let mut response = std::pin::pin!(response);
    let mut timer = std::pin::pin!(tokio::time::sleep_until(due));
    loop {
        tokio::select! {
            out = response.as_mut() => return Ok(out),
            () = timer.as_mut(), if armed => return Err(TimedOut),
            _ = async { body_sent.as_mut().expect("guarded").await }, if body_sent.is_some() => {
                body_sent = None;
                timer.as_mut().reset(head_due(Instant::now()));
                armed = true;
            }
        }
    }
}
