//! Trace context (W3C `traceparent`/`tracestate`) and `x-request-id`.
//!
//! Owns: validating the client's trace context before anything reads or
//! forwards it (an invalid `traceparent` is dropped, not forwarded;
//! `tracestate` goes on only beside a valid one), and giving a request
//! without `x-request-id` one. Forwarding itself is the prepare phase's
//! (neither header is hop-by-hop), on HTTP/1.1, HTTP/2 and gRPC alike.
//! Must not: allocate for a request that carries valid headers, or parse
//! anything twice. No span is exported (OpenTelemetry export is not
//! built).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};

/// `traceparent` (W3C Trace Context).
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` (W3C Trace Context).
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where new request ids come from: a random per-process prefix and a
/// counter (`5f1c9a0d3b7e2a41-000000000000002a`): unique across replicas
/// and restarts without a UUID or a random draw per request.
#[derive(Debug)]
pub struct RequestIds {
    prefix: [u8; 16],
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        // The standard library's per-process random hash keys, mixed with
        // the pid and the time: no dependency for 64 random bits.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        hasher.write_u128(now.map_or(0, |d| d.as_nanos()));
        let mut prefix = [0u8; 16];
        hex(hasher.finish(), &mut prefix);
        RequestIds {
            prefix,
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// The next id.
    pub fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [b'-'; 33];
        id[..16].copy_from_slice(&self.prefix);
        hex(n, &mut id[17..]);
        HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// `n` as 16 lowercase hex digits into `out`.
fn hex(n: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().take(16).enumerate() {
        *slot = DIGITS[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Validates the trace context of `headers` in place and adds an
/// `x-request-id` when there is none.
pub fn prepare(headers: &mut HeaderMap, ids: &RequestIds) {
    let valid = {
        let mut all = headers.get_all(&TRACEPARENT).iter();
        match (all.next(), all.next()) {
            (None, _) => None,
            (Some(one), None) => Some(is_valid_traceparent(one.as_bytes())),
            // Two traceparents: no way to tell which is the caller's.
            (Some(_), Some(_)) => Some(false),
        }
    };
    match valid {
        Some(true) => {}
        Some(false) => {
            headers.remove(&TRACEPARENT);
            headers.remove(&TRACESTATE);
        }
        None => {
            headers.remove(&TRACESTATE);
        }
    }
    // One lookup: the entry is looked up once, filled only when vacant.
    headers.entry(&X_REQUEST_ID).or_insert_with(|| ids.next());
}

/// Whether `value` is a `traceparent` a tracer may continue (W3C Trace
/// Context §3.2): `version-traceid-parentid-flags` in lowercase hex,
/// version not `ff`, trace and parent ids not all zeros; version `00` is
/// exactly 55 characters, a later version at least that, with a `-`
/// after the flags if longer.
pub fn is_valid_traceparent(value: &[u8]) -> bool {
    if value.len() < 55 {
        return false;
    }
    let (version, trace_id, parent_id, flags) =
        (&value[0..2], &value[3..35], &value[36..52], &value[53..55]);
    let dashes = value[2] == b'-' && value[35] == b'-' && value[52] == b'-';
    let lower_hex = |part: &[u8]| part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let not_zero = |part: &[u8]| part.iter().any(|b| *b != b'0');
    let length_ok = match version {
        b"00" => value.len() == 55,
        _ => value.len() == 55 || value[55] == b'-',
    };
    dashes
        && length_ok
        && version != b"ff"
        && [version, trace_id, parent_id, flags]
            .into_iter()
            .all(lower_hex)
        && not_zero(trace_id)
        && not_zero(parent_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparents_are_judged_per_w3c() {
        let cases = [
            (VALID, true),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                true,
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what",
                true,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                false,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                false,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            ("", false),
        ];
        for (value, valid) in cases {
            assert_eq!(is_valid_traceparent(value.as_bytes()), valid, "{value:?}");
        }
    }

    #[test]
    fn an_invalid_traceparent_and_its_tracestate_are_dropped() {
        let ids = RequestIds::default();
        let mut headers = HeaderMap::new();
        headers.insert(&TRACEPARENT, HeaderValue::from_static("00-zz-bad-01"));
        headers.insert(&TRACESTATE, HeaderValue::from_static("vendor=1"));
        prepare(&mut headers, &ids);
        assert!(!headers.contains_key(&TRACEPARENT));
        assert!(!headers.contains_key(&TRACESTATE));

        let mut headers = HeaderMap::new();
        headers.insert(&TRACESTATE, HeaderValue::from_static("vendor=1"));
        prepare(&mut headers, &ids);
        assert!(!headers.contains_key(&TRACESTATE), "tracestate alone");

        let mut headers = HeaderMap::new();
        headers.insert(&TRACEPARENT, HeaderValue::from_static(VALID));
        headers.insert(&TRACESTATE, HeaderValue::from_static("vendor=1"));
        prepare(&mut headers, &ids);
        assert_eq!(headers[&TRACEPARENT], VALID);
        assert_eq!(headers[&TRACESTATE], "vendor=1");
    }

    #[test]
    fn request_ids_are_added_when_absent_and_kept_when_sent() {
        let ids = RequestIds::default();
        let mut headers = HeaderMap::new();
        prepare(&mut headers, &ids);
        let first = headers[&X_REQUEST_ID].clone();
        let mut headers = HeaderMap::new();
        prepare(&mut headers, &ids);
        let second = headers[&X_REQUEST_ID].clone();
        assert_ne!(first, second);
        assert_eq!(first.len(), 33);
        assert_eq!(&first.as_bytes()[..17], &second.as_bytes()[..17]);

        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("mine"));
        prepare(&mut headers, &ids);
        assert_eq!(headers[&X_REQUEST_ID], "mine");
    }
}
