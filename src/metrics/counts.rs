//! Request counters by method bucket and status class: one fixed matrix of
//! atomics per series, so recording a request is one index computation
//! and one `fetch_add`, and the label values are a closed set.

use std::sync::atomic::{AtomicU64, Ordering};

use http::{Method, StatusCode};

/// The methods counted by name, in label order; any other is `OTHER`.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// The `method` label values, [`METHODS`] then `OTHER`.
const METHOD_LABELS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
];

/// The `code` label values: status classes.
const CLASS_LABELS: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// A request method as a label: a standard method, else `OTHER`, so a
/// client inventing methods cannot create series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodBucket(u8);

impl MethodBucket {
    /// The bucket of `method` (a few enum comparisons, no string work).
    pub fn of(method: &Method) -> Self {
        let index = METHODS.iter().position(|m| m == method);
        MethodBucket(index.unwrap_or(METHODS.len()) as u8)
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        METHOD_LABELS[self.0 as usize]
    }
}

/// The index of a status's class (`1xx` … `5xx`); anything outside
/// 100..=599 (hyper refuses those) counts as `5xx`.
fn class(status: StatusCode) -> usize {
    match status.as_u16() / 100 {
        c @ 1..=5 => usize::from(c) - 1,
        _ => 4,
    }
}

/// Requests of one series by method bucket and status class.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: [[AtomicU64; 5]; 10],
}

impl RequestCounts {
    /// Counts one request.
    pub fn record(&self, method: MethodBucket, status: StatusCode) {
        self.counts[method.0 as usize][class(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every (method, code, count) seen so far, zero counts left out: a
    /// series appears with its first request.
    pub fn each(&self, mut f: impl FnMut(&'static str, &'static str, u64)) {
        for (m, row) in self.counts.iter().enumerate() {
            for (c, count) in row.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    f(METHOD_LABELS[m], CLASS_LABELS[c], count);
                }
            }
        }
    }

    /// The sum over every method and class (tests, summaries).
    pub fn total(&self) -> u64 {
        let mut total = 0;
        self.each(|_, _, n| total += n);
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_bucket() {
        let odd = Method::from_bytes(b"BREW").expect("token");
        assert_eq!(MethodBucket::of(&odd).label(), "OTHER");
        assert_eq!(MethodBucket::of(&Method::PATCH).label(), "PATCH");
        assert_eq!(MethodBucket::of(&Method::GET).label(), "GET");
    }

    #[test]
    fn counts_by_method_and_class() {
        let counts = RequestCounts::default();
        counts.record(MethodBucket::of(&Method::GET), StatusCode::OK);
        counts.record(MethodBucket::of(&Method::GET), StatusCode::NO_CONTENT);
        counts.record(MethodBucket::of(&Method::POST), StatusCode::BAD_GATEWAY);
        let mut seen = Vec::new();
        counts.each(|m, c, n| seen.push((m, c, n)));
        assert_eq!(seen, vec![("GET", "2xx", 2), ("POST", "5xx", 1)]);
        assert_eq!(counts.total(), 3);
    }
}
