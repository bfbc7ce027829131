//! gRPC as the proxy sees it: which requests are gRPC, what a gRPC client
//! gets when the proxy answers itself, and the `grpc-timeout` deadline.
//!
//! Owns: [`is_grpc`], the one mapping of [`ProxyError`] (and redirects) to
//! a gRPC status ([`Code`]), the trailers-only answer, and the
//! `grpc-timeout` header's parse and format. Must not: decide when to
//! answer (the phases do) or know how a body is cut (`body::Timed` asks
//! for the trailers it sends through [`cut_trailers`]).

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;

use super::error::ProxyError;

/// `grpc-status`: the call's status code.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`: the status's text, percent-encoded.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-timeout`: the client's deadline, relative.
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The gRPC status codes the proxy itself answers with (the numbers of
/// gRPC's `statuscodes.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// The client cancelled (left before sending its whole request).
    Cancelled = 1,
    /// The deadline passed before the call completed.
    DeadlineExceeded = 4,
    /// The firewall refused the call.
    PermissionDenied = 7,
    /// A rate limit or the body size limit.
    ResourceExhausted = 8,
    /// No route serves this method.
    Unimplemented = 12,
    /// The request was malformed.
    Internal = 13,
    /// No backend could serve the call now; the client may try again.
    Unavailable = 14,
}

impl Code {
    /// The code as `grpc-status` writes it.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from(u16::from(self as u8))
    }
}

/// Whether a request (or response) is gRPC: its `content-type` starts with
/// `application/grpc` (`+proto`, `+json`, `;charset=…` and grpc-web's
/// `application/grpc-web*` too).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC status a client gets for a failure the proxy answers: the
/// code, and a short fixed text (printable ASCII without `%`, so it needs
/// no percent-encoding).
pub fn status_of(err: &ProxyError) -> (Code, &'static str) {
    match err {
        ProxyError::NoRoute => (Code::Unimplemented, "no route for this host and path"),
        ProxyError::Forbidden(_) => (Code::PermissionDenied, "refused by the firewall"),
        ProxyError::RateLimited { .. } => (Code::ResourceExhausted, "rate limited"),
        ProxyError::BodyTooLarge => (Code::ResourceExhausted, "request body too large"),
        ProxyError::NoEndpoint(_) => (Code::Unavailable, "no endpoint available for this route"),
        ProxyError::NoHealthyEndpoint => (Code::Unavailable, "no healthy endpoint for this route"),
        ProxyError::Connect(_) => (Code::Unavailable, "could not connect to the backend"),
        ProxyError::ConnectTimeout(_) => (Code::Unavailable, "connecting to the backend timed out"),
        ProxyError::BackendTls(_) => (
            Code::Unavailable,
            "the TLS handshake with the backend failed",
        ),
        ProxyError::Upstream(_) => (Code::Unavailable, "the backend failed"),
        ProxyError::Unprocessed(_) => (
            Code::Unavailable,
            "the backend closed the connection before processing the call",
        ),
        ProxyError::AmbiguousResponse => (
            Code::Unavailable,
            "the backend's response length is ambiguous",
        ),
        ProxyError::Misdirected => (
            Code::Unavailable,
            "misdirected request: open a new connection for this host",
        ),
        ProxyError::Timeout => (Code::DeadlineExceeded, "the backend did not answer in time"),
        ProxyError::BodyTimeout => (Code::DeadlineExceeded, "the request body stalled"),
        ProxyError::ClientGone => (Code::Cancelled, "the request body was cut short"),
        ProxyError::BadRequest => (Code::Internal, "malformed request"),
        ProxyError::UriTooLong => (Code::Internal, "request URI too long"),
        ProxyError::AmbiguousPath => (
            Code::Internal,
            "backends may read this path under another route",
        ),
        ProxyError::MethodNotAllowed => (Code::Internal, "CONNECT is not supported"),
        ProxyError::ProtocolNotImplemented => (
            Code::Unimplemented,
            "only websocket is tunnelled over CONNECT",
        ),
        ProxyError::NotSwitched => (Code::Unavailable, "the backend did not switch to WebSocket"),
        ProxyError::BadBody => (Code::Internal, "malformed request body"),
    }
}

/// A trailers-only gRPC answer: HTTP 200, `content-type:
/// application/grpc`, the status and its message in the head, and an
/// empty body (on HTTP/2, one HEADERS frame with END_STREAM).
pub fn trailers_only(code: Code, message: HeaderValue) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(GRPC_STATUS, code.header_value());
    headers.insert(GRPC_MESSAGE, message);
    response
}

/// The trailers-only answer for a failure.
pub fn failed(err: &ProxyError) -> Response<Full<Bytes>> {
    let (code, message) = status_of(err);
    trailers_only(code, HeaderValue::from_static(message))
}

/// The answer to a gRPC call whose rule redirects: gRPC clients follow no
/// redirects, so it is UNAVAILABLE, with the location in the message.
pub fn redirected(location: &HeaderValue) -> Response<Full<Bytes>> {
    let mut message = b"redirected to ".to_vec();
    percent_encode(location.as_bytes(), &mut message);
    let message = HeaderValue::from_bytes(&message)
        .unwrap_or_else(|_| HeaderValue::from_static("redirected"));
    trailers_only(Code::Unavailable, message)
}

/// The trailers a gRPC response body ends with when the proxy cuts it:
/// `total` (the deadline passed) is DEADLINE_EXCEEDED, anything else (the
/// backend stalled past the idle timeout, or its stream broke) UNAVAILABLE.
pub fn cut_trailers(code: Code, message: &'static str) -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(2);
    trailers.insert(GRPC_STATUS, code.header_value());
    trailers.insert(GRPC_MESSAGE, HeaderValue::from_static(message));
    trailers
}

/// gRPC's percent-encoding of `grpc-message`: printable ASCII except `%`
/// stays, every other byte is `%XX`.
fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

// === answering before the request has ended ===

/// Most of a rejected call's body read after its answer.
const LINGER_BYTES: usize = 64 * 1024;
/// Longest wait for the end of a rejected call's body.
const LINGER_TIME: Duration = Duration::from_secs(1);

/// Reads what is left of the body of a call the proxy answered without
/// reading it (at most [`LINGER_BYTES`] within [`LINGER_TIME`], in the
/// background), so that its HTTP/2 stream ends normally. Dropped unread,
/// the stream is reset, and an HTTP/2 server soon forgets reset streams:
/// the client's late DATA for a forgotten one then counts as a protocol
/// error against the connection (h2 closes it with ENHANCE_YOUR_CALM after
/// 1,024), so a client that is rate limited or refused a few thousand
/// calls would lose its connection.
pub fn linger(body: hyper::body::Incoming) {
    use http_body::Body as _;
    use http_body_util::BodyExt as _;
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let mut body = body;
        let mut read = 0;
        let drain = async {
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}

// === grpc-timeout ===

/// Most digits a `grpc-timeout` value may have.
const MAX_DIGITS: usize = 8;
/// The largest `grpc-timeout` value: eight nines.
const MAX_VALUE: u64 = 99_999_999;

/// Parses `grpc-timeout`: 1 to 8 ASCII digits and a unit (`H`ours,
/// `M`inutes, `S`econds, `m`illis, `u`micros, `n`anos). Anything else is
/// ignored (`None`), as grpc-go does.
pub fn parse_timeout(value: &HeaderValue) -> Option<Duration> {
    let (unit, digits) = value.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats `remaining` for `grpc-timeout`: rounded up to the millisecond,
/// in the coarsest unit that says it exactly within 8 digits (`1500m`,
/// `2S`, `3M`); past 8 digits of a unit, rounded up in the next one. The
/// receiver never gets more time than is left, give or take under a
/// millisecond.
pub fn format_timeout(remaining: Duration) -> HeaderValue {
    const UNITS: [(u64, char); 4] = [(1, 'm'), (1_000, 'S'), (60_000, 'M'), (3_600_000, 'H')];
    let nanos = remaining.as_nanos();
    let ms = u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX);
    let mut best = (MAX_VALUE, 'H');
    let mut found = false;
    for (factor, unit) in UNITS {
        let value = ms.div_ceil(factor);
        if value <= MAX_VALUE && (!found || (value > 0 && ms % factor == 0)) {
            best = (value, unit);
            found = true;
        }
    }
    let (value, unit) = best;
    HeaderValue::try_from(format!("{value}{unit}")).expect("digits and a letter")
}

/// The exchange's deadline: the earlier of the rule's total timeout and
/// the client's `grpc-timeout` (read only when `grpc`), both from
/// `started`; a time past the clock's range is none.
pub fn deadline(
    headers: &HeaderMap,
    grpc: bool,
    total: Option<Duration>,
    started: Instant,
) -> Option<Instant> {
    let rule = total.and_then(|total| started.checked_add(total));
    let client = grpc
        .then(|| headers.get(GRPC_TIMEOUT).and_then(parse_timeout))
        .flatten()
        .and_then(|timeout| started.checked_add(timeout));
    match (rule, client) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Sets a try's `grpc-timeout` to what is left of `deadline` at `now`, so
/// the backend gives up when the proxy would; without a deadline the
/// client's header (if any) goes on as it came.
pub fn set_timeout(headers: &mut HeaderMap, deadline: Option<Instant>, now: Instant) {
    if let Some(deadline) = deadline {
        let remaining = deadline.saturating_duration_since(now);
        headers.insert(GRPC_TIMEOUT, format_timeout(remaining));
    }
}

#[cfg(test)]
mod tests;
