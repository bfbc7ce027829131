//! One access-log line: the [`Entry`] a request hands over (cheap clones
//! only) and its JSON form, made on the writer thread.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::uri::Authority;
use http::{HeaderValue, Method, Uri, Version};
use serde::Serialize;

/// What is logged of one request.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When the response ended (or the proxy answered).
    pub time: SystemTime,
    /// The client (the peer, or behind trusted proxies the forwarded one).
    pub client: IpAddr,
    /// The method as sent.
    pub method: Method,
    /// Whether it came over TLS (`scheme` https).
    pub tls: bool,
    /// The host the client asked for.
    pub authority: Option<HeaderValue>,
    /// The request target as sent (its query redacted unless
    /// `log_query`).
    pub uri: Uri,
    /// Log the query as sent (`--access-log-query`).
    pub log_query: bool,
    /// HTTP/1.0, HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// The status the client got.
    pub status: u16,
    /// The request body's declared length (`Content-Length`); none for
    /// a chunked or HTTP/2 body of unknown length.
    pub bytes_in: Option<u64>,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// From the request head to the end of the response.
    pub duration: Duration,
    /// From the last try's start to its response head.
    pub upstream_duration: Option<Duration>,
    /// The matched route, `namespace/name`.
    pub route: Option<Arc<str>>,
    /// The matched rule's index.
    pub rule: Option<u32>,
    /// The backend that answered (its metric label).
    pub backend: Option<Arc<str>>,
    /// The endpoint that answered.
    pub endpoint: Option<Authority>,
    /// Tries sent to backends.
    pub attempts: u32,
    /// Why the proxy answered itself (`no_route`, `connect_failed`, ...).
    pub reason: Option<&'static str>,
    /// `x-request-id` (the client's, or the one the proxy added).
    pub request_id: Option<HeaderValue>,
    /// A valid `traceparent`, whose trace id is logged.
    pub traceparent: Option<HeaderValue>,
    /// The TLS version, on a TLS connection.
    pub tls_version: Option<&'static str>,
    /// The SNI name, on a TLS connection that sent one.
    pub sni: Option<Box<str>>,
}

/// The line as serialized.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    client: String,
    method: &'a str,
    scheme: &'static str,
    authority: Option<&'a str>,
    path: String,
    protocol: &'static str,
    status: u16,
    bytes_in: Option<u64>,
    bytes_out: u64,
    duration_ms: f64,
    upstream_ms: Option<f64>,
    route: Option<&'a str>,
    rule: Option<u32>,
    backend: Option<&'a str>,
    endpoint: Option<&'a str>,
    attempts: u32,
    reason: Option<&'static str>,
    request_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    tls_version: Option<&'static str>,
    sni: Option<&'a str>,
}

impl Entry {
    /// Appends the JSON line (and its newline) to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let line = Line {
            time: rfc3339(self.time),
            client: self.client.to_string(),
            method: self.method.as_str(),
            scheme: if self.tls { "https" } else { "http" },
            authority: self.authority.as_ref().and_then(|h| h.to_str().ok()),
            path: self.path(),
            protocol: protocol(self.version),
            status: self.status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            duration_ms: millis(self.duration),
            upstream_ms: self.upstream_duration.map(millis),
            route: self.route.as_deref(),
            rule: self.rule,
            backend: self.backend.as_deref(),
            endpoint: self.endpoint.as_ref().map(Authority::as_str),
            attempts: self.attempts,
            reason: self.reason,
            request_id: self.request_id.as_ref().and_then(|h| h.to_str().ok()),
            trace_id: (self.traceparent.as_ref())
                .and_then(|h| h.to_str().ok())
                .and_then(|t| t.get(3..35)),
            tls_version: self.tls_version,
            sni: self.sni.as_deref(),
        };
        if serde_json::to_writer(&mut *out, &line).is_ok() {
            out.push(b'\n');
        }
    }

    /// The path, and the query as sent or redacted.
    fn path(&self) -> String {
        let path = self.uri.path();
        match self.uri.query() {
            Some(query) if self.log_query => format!("{path}?{query}"),
            Some(_) => format!("{path}?<redacted>"),
            None => path.to_owned(),
        }
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP",
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

/// `time` as RFC 3339 UTC with milliseconds (`2026-12-03T16:00:21.123Z`).
pub(super) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
