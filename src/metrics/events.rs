//! What happened to a rule's requests besides their status: answers the
//! proxy made, by reason, and the send phase's tries (connect failures,
//! timeouts, retries, retry-budget exhaustion). Counters of atomics,
//! indexed by closed sets; recorded only when such a thing happens.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why the proxy answered: every `reason` a proxy-made answer can have
/// (the proxy's error reasons and `redirect`), in label order. A test
/// of the proxy checks that its reasons are all here.
pub const ANSWER_REASONS: [&str; 24] = [
    "no_route",
    "misdirected",
    "bad_request",
    "uri_too_long",
    "ambiguous_path",
    "method_not_allowed",
    "protocol_not_implemented",
    "upstream_not_switched",
    "no_endpoint",
    "no_healthy_endpoint",
    "connect_failed",
    "upstream_failed",
    "upstream_tls_failed",
    "upstream_unprocessed",
    "connect_timeout",
    "timeout",
    "forbidden",
    "rate_limited",
    "body_too_large",
    "bad_request_body",
    "client_closed",
    "client_body_timeout",
    "upstream_ambiguous_length",
    "redirect",
];

/// Answers by reason.
#[derive(Debug, Default)]
pub struct Answers {
    counts: [AtomicU64; ANSWER_REASONS.len()],
}

impl Answers {
    /// Counts an answer made for `reason` (one of [`ANSWER_REASONS`];
    /// another is not counted).
    pub fn record(&self, reason: &str) {
        if let Some(i) = ANSWER_REASONS.iter().position(|r| *r == reason) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every (reason, count) seen so far.
    pub fn each(&self, mut f: impl FnMut(&'static str, u64)) {
        for (reason, count) in ANSWER_REASONS.iter().zip(&self.counts) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                f(reason, count);
            }
        }
    }
}

/// What a try to a backend can end in, besides a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryEvent {
    /// The connect failed (refused, unreachable, TLS) or timed out.
    ConnectFailure,
    /// No response head in time.
    Timeout,
    /// Another try was sent (a retry).
    Retry,
    /// A retry was wanted but the budget had no token.
    BudgetExhausted,
}

/// The `event` label values, in [`TryEvent`] order.
const EVENT_LABELS: [&str; 4] = [
    "connect_failure",
    "timeout",
    "retry",
    "retry_budget_exhausted",
];

/// A rule's answers and try events.
#[derive(Debug, Default)]
pub struct RuleEvents {
    /// Answers the proxy made, by reason.
    pub answers: Answers,
    tries: [AtomicU64; 4],
}

impl RuleEvents {
    /// Counts one try event.
    pub fn record(&self, event: TryEvent) {
        self.tries[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every (event, count) seen so far.
    pub fn each_try(&self, mut f: impl FnMut(&'static str, u64)) {
        for (label, count) in EVENT_LABELS.iter().zip(&self.tries) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                f(label, count);
            }
        }
    }
}
