//! One access-log line: the [`Entry`] a request hands over (cheap clones
//! only) and its JSON form, written on the writer thread by hand (a fixed
//! shape: no serializer, a date formatted once a second).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::uri::Authority;
use http::{HeaderValue, Method, Uri, Version};
use std::io::Write as _;

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

impl Entry {
    /// Appends the JSON line (and its newline) to `out`; `clock` keeps
    /// the last second's text, so most lines format no date.
    pub fn write_json(&self, out: &mut Vec<u8>, clock: &mut Clock) {
        out.extend_from_slice(b"{\"time\":\"");
        clock.write(self.time, out);
        out.extend_from_slice(b"\",\"client\":\"");
        match self.client {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                for (i, octet) in [a, b, c, d].into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    push_u64(out, u64::from(octet));
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(out, "{v6}");
            }
        }
        out.push(b'"');
        field_str(out, "method", Some(self.method.as_str()));
        field_str(out, "scheme", Some(if self.tls { "https" } else { "http" }));
        field_str(
            out,
            "authority",
            self.authority.as_ref().and_then(|h| h.to_str().ok()),
        );
        out.extend_from_slice(b",\"path\":\"");
        escape(out, self.uri.path());
        match self.uri.query() {
            Some(query) if self.log_query => {
                out.push(b'?');
                escape(out, query);
            }
            Some(_) => out.extend_from_slice(b"?<redacted>"),
            None => {}
        }
        out.push(b'"');
        field_str(out, "protocol", Some(protocol(self.version)));
        field_num(out, "status", Some(u64::from(self.status)));
        field_num(out, "bytes_in", self.bytes_in);
        field_num(out, "bytes_out", Some(self.bytes_out));
        field_ms(out, "duration_ms", Some(self.duration));
        field_ms(out, "upstream_ms", self.upstream_duration);
        field_str(out, "route", self.route.as_deref());
        field_num(out, "rule", self.rule.map(u64::from));
        field_str(out, "backend", self.backend.as_deref());
        field_str(
            out,
            "endpoint",
            self.endpoint.as_ref().map(Authority::as_str),
        );
        field_num(out, "attempts", Some(u64::from(self.attempts)));
        field_str(out, "reason", self.reason);
        let request_id = self.request_id.as_ref().and_then(|h| h.to_str().ok());
        field_str(out, "request_id", request_id);
        let trace_id = (self.traceparent.as_ref())
            .and_then(|h| h.to_str().ok())
            .and_then(|t| t.get(3..35));
        field_str(out, "trace_id", trace_id);
        field_str(out, "tls_version", self.tls_version);
        field_str(out, "sni", self.sni.as_deref());
        out.extend_from_slice(b"}\n");
    }
}

/// `,"name":"value"` (escaped), or `,"name":null`.
fn field_str(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    key(out, name);
    match value {
        Some(value) => {
            out.push(b'"');
            escape(out, value);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// `,"name":n`, or `,"name":null`.
fn field_num(out: &mut Vec<u8>, name: &str, value: Option<u64>) {
    key(out, name);
    match value {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// `,"name":1.234` (milliseconds, microsecond precision), or null.
fn field_ms(out: &mut Vec<u8>, name: &str, value: Option<Duration>) {
    key(out, name);
    match value {
        Some(d) => {
            let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            push_u64(out, micros / 1000);
            out.push(b'.');
            push_3(out, micros % 1000);
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// `n` in decimal (no formatter: this runs for every number of every
/// line).
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `n` (below 1000) as three digits.
fn push_3(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&[
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]);
}

fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `text` as the inside of a JSON string: quotes, backslashes and
/// control characters escaped, the rest copied as is.
fn escape(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            out.extend_from_slice(&bytes[from..i]);
            let _ = match b {
                b'"' => out.write_all(b"\\\""),
                b'\\' => out.write_all(b"\\\\"),
                _ => write!(out, "\\u{b:04x}"),
            };
            from = i + 1;
        }
    }
    out.extend_from_slice(&bytes[from..]);
}

/// The writer's clock: the text of the last second written, so a line
/// formats a date only when the second changes.
#[derive(Debug, Default)]
pub struct Clock {
    second: u64,
    text: String,
}

impl Clock {
    /// Writes `time` as RFC 3339 UTC with milliseconds.
    fn write(&mut self, time: SystemTime, out: &mut Vec<u8>) {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.text.is_empty() || since.as_secs() != self.second {
            self.second = since.as_secs();
            self.text = rfc3339_seconds(self.second);
        }
        out.extend_from_slice(self.text.as_bytes());
        out.push(b'.');
        push_3(out, u64::from(since.subsec_millis()));
        out.push(b'Z');
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

/// `time` as RFC 3339 UTC with milliseconds (`2026-12-03T16:00:21.123Z`).
#[cfg(test)]
pub(super) fn rfc3339(time: SystemTime) -> String {
    let mut out = Vec::new();
    Clock::default().write(time, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// `secs` since the epoch as `2026-12-03T16:00:21` (UTC).
fn rfc3339_seconds(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
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
