//! The log phase: one metrics update per request through handles
//! resolved at compile (the listener's, the matched rule's, or the
//! unmatched series), when metrics are on; one access-log entry, when
//! the access log is on.
//!
//! Owns: what a request counts toward, and what its log line says. Must
//! not: look a series up or format a label (the handles are on the
//! connection's shared state and on the rule), or format a line (the
//! writer thread does).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::body::ProxyBody;
use super::ctx::RequestCtx;
use super::service::{Connection, Shared};
use super::tls::Refused;
use super::trace::{TRACEPARENT, X_REQUEST_ID};
use crate::access_log::{AccessLog, Entry};
use crate::metrics::MethodBucket;
use crate::table::{Rule, Target};
use tokio::time::error::Elapsed;

/// What the log phase knows of a request from its start.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// When its head was read.
    pub at: Instant,
    /// Its method, as a label.
    pub method: MethodBucket,
}

/// Counts a request answered with `status`: on its listener, and on the
/// matched `rule` (by `backend`, or `backend="-"` when the proxy answered
/// for `reason`) or under `route="-"` when none matched.
pub fn record(
    conn: &Connection,
    start: Start,
    rule: Option<&Rule>,
    backend: Option<u16>,
    status: StatusCode,
    reason: Option<&'static str>,
) {
    let Some(metrics) = &conn.shared.metrics else {
        return;
    };
    if let Some(reason) = reason {
        match rule {
            Some(rule) => rule.metrics.events().answers.record(reason),
            None => metrics.unmatched_answers().record(reason),
        }
    }
    let elapsed = Instant::now().saturating_duration_since(start.at);
    (metrics.listener(conn.tls.is_some())).record(start.method, status, elapsed);
    match rule {
        Some(rule) => {
            rule.metrics.record(backend, start.method, status);
            if metrics.route_histograms {
                rule.metrics.duration().observe(elapsed);
            }
        }
        None => metrics.unmatched().record(start.method, status),
    }
}

/// Counts a TLS handshake by how it ended (`Err`: it timed out).
pub fn handshake<T>(shared: &Shared, outcome: &Result<Result<T, Refused>, Elapsed>) {
    let Some(metrics) = &shared.metrics else {
        return;
    };
    let result = match outcome {
        Ok(Ok(_)) => "ok",
        Ok(Err(Refused::PlainHttp)) => "plain_http",
        Ok(Err(Refused::UnknownName(_))) => "unknown_name",
        Ok(Err(Refused::NotConfigured)) => "not_configured",
        Ok(Err(Refused::Io(_) | Refused::Tls(_))) => "failed",
        Err(_) => "timeout",
    };
    metrics.process.tls_handshake(result);
}

/// What the access log needs of a request's head, read before the request
/// is consumed (only when the access log is on).
#[derive(Debug)]
pub struct Seen {
    method: Method,
    uri: Uri,
    version: Version,
    authority: Option<HeaderValue>,
    bytes_in: Option<u64>,
    request_id: Option<HeaderValue>,
    traceparent: Option<HeaderValue>,
    client: IpAddr,
}

impl Seen {
    /// Reads what the log line needs from `req` (cheap clones: the URI
    /// and header values share the connection's buffers).
    pub fn of(conn: &Connection, req: &Request<Incoming>) -> Seen {
        let headers = req.headers();
        let authority = match req.uri().authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
            None => headers.get(header::HOST).cloned(),
        };
        let client = conn.client(headers);
        Seen {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            authority,
            bytes_in: (headers.get(header::CONTENT_LENGTH))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            request_id: headers.get(&X_REQUEST_ID).cloned(),
            traceparent: headers.get(&TRACEPARENT).cloned(),
            client,
        }
    }

    /// The entry, still missing what the response tells.
    fn entry(self, conn: &Connection, log: &AccessLog, rule: Option<&Rule>) -> Entry {
        let tls = conn.tls.as_ref();
        Entry {
            time: SystemTime::now(),
            client: self.client,
            method: self.method,
            tls: tls.is_some(),
            authority: self.authority,
            uri: self.uri,
            log_query: log.log_query,
            version: self.version,
            status: 0,
            bytes_in: self.bytes_in,
            bytes_out: 0,
            duration: Duration::ZERO,
            upstream_duration: None,
            route: rule.map(|r| r.route.clone()),
            rule: rule.map(|r| r.metrics.rule),
            backend: None,
            endpoint: None,
            attempts: 0,
            reason: None,
            request_id: self.request_id,
            traceparent: self.traceparent,
            tls_version: tls.and_then(|t| t.version),
            sni: tls.and_then(|t| t.sni.clone()),
        }
    }
}

/// Logs a request the proxy answered itself (`reason` says why).
pub fn log_answer(
    conn: &Connection,
    seen: Seen,
    start: Start,
    rule: Option<&Rule>,
    reason: &'static str,
    response: &Response<Full<Bytes>>,
) {
    let Some(log) = &conn.shared.access_log else {
        return;
    };
    let mut entry = seen.entry(conn, log, rule);
    entry.status = response.status().as_u16();
    entry.reason = Some(reason);
    entry.bytes_out = response.body().size_hint().exact().unwrap_or(0);
    entry.duration = Instant::now().saturating_duration_since(start.at);
    log.send(entry);
}

/// What a forwarded request's line is waiting for: the end of the
/// response body. Sent when dropped (the body ended, failed, or the
/// client went away).
#[derive(Debug)]
pub struct Pending {
    log: AccessLog,
    /// Taken when sent.
    entry: Option<Entry>,
    started: Instant,
}

impl Pending {
    /// Counts `n` response body bytes sent.
    pub fn sent(&mut self, n: usize) {
        if let Some(entry) = &mut self.entry {
            entry.bytes_out += n as u64;
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.time = SystemTime::now();
            entry.duration = Instant::now().saturating_duration_since(self.started);
            self.log.send(entry);
        }
    }
}

/// What the send phase tells the log of the backend that answered.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'r> {
    /// The endpoint.
    pub target: &'r Target,
    /// Tries sent.
    pub attempts: u32,
    /// The last try's time to its response head.
    pub duration: Duration,
}

/// The line of a forwarded request, sent when its response body ends:
/// carried by the body when it is a backend's stream, else sent now.
pub fn log_forwarded(
    conn: &Connection,
    ctx: &RequestCtx,
    seen: Seen,
    upstream: &Upstream<'_>,
    response: &mut Response<ProxyBody>,
) {
    let Some(log) = &conn.shared.access_log else {
        return;
    };
    let rule = &ctx.rule;
    let mut entry = seen.entry(conn, log, Some(rule));
    entry.status = response.status().as_u16();
    entry.client = ctx.client;
    entry.backend = Some(
        rule.metrics
            .backend_label(Some(upstream.target.backend))
            .into(),
    );
    entry.endpoint = Some(upstream.target.authority.clone());
    entry.attempts = upstream.attempts;
    entry.upstream_duration = Some(upstream.duration);
    let pending = Box::new(Pending {
        log: log.clone(),
        entry: Some(entry),
        started: ctx.started,
    });
    // A proxy-made body (an upgrade's empty one) ends now: the pending
    // line is sent as it drops.
    if let Either::Left(body) = response.body_mut() {
        body.inner_mut().log(pending);
    }
}
