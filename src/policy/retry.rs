//! Retries: which failures are retried, how many times, and the budget that
//! keeps retries from multiplying load during an outage.
//!
//! Owns: [`RetryPolicy`] (a rule's compiled `retries`) and [`RetryBudget`]
//! (a token bucket of atomics). Must not: read a clock (time is passed in)
//! or lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::api;
use crate::diagnostic::{FieldPath, Invalid, Problems};

/// Retries after the first try, when absent.
const DEFAULT_ATTEMPTS: u32 = 1;
/// Most retries after the first try a rule may ask for.
const MAX_ATTEMPTS: u32 = 5;
/// Retries per 100 requests, when absent.
const DEFAULT_PERCENT: u32 = 20;
/// Retries per second whatever the request rate, when absent.
const DEFAULT_MIN_PER_SECOND: u32 = 10;
/// One token, in the budget's thousandths of a token.
const TOKEN: u64 = 1000;
/// Seconds of `minPerSecond` the budget can save up.
const SAVED_SECONDS: u64 = 10;
/// Tokens earned from `percent` the budget can save up.
const SAVED_FROM_PERCENT: u64 = 10;

/// A rule's retry settings, validated.
#[derive(Debug)]
pub struct RetryPolicy {
    /// Retries after the first try; 0 = off.
    pub attempts: u32,
    /// Statuses retried for idempotent requests.
    pub on: Box<[StatusCode]>,
    /// What retries may cost, shared by every request of the rule.
    pub budget: RetryBudget,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: DEFAULT_ATTEMPTS,
            on: Box::default(),
            budget: RetryBudget::new(DEFAULT_PERCENT, DEFAULT_MIN_PER_SECOND),
        }
    }
}

impl RetryPolicy {
    /// Validates `spec` (absent: the defaults) at field path `at`; every
    /// problem is pushed to `errors`, naming its field.
    pub fn compile(
        spec: Option<&api::Retries>,
        at: impl Into<FieldPath>,
        errors: &mut Problems,
    ) -> RetryPolicy {
        let Some(spec) = spec else {
            return RetryPolicy::default();
        };
        let at = at.into();
        let attempts = spec.attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if attempts > MAX_ATTEMPTS {
            let over = Invalid::TooManyRetries {
                attempts,
                max: MAX_ATTEMPTS,
            };
            errors.push(at.key("attempts"), over);
        }
        let mut on = Vec::with_capacity(spec.on.len());
        for (i, &code) in spec.on.iter().enumerate() {
            match StatusCode::from_u16(code) {
                Ok(status) if status.as_u16() >= 200 => on.push(status),
                _ => errors.push(at.key("on").index(i), Invalid::RetryStatus(code)),
            }
        }
        let percent = spec
            .budget
            .as_ref()
            .and_then(|b| b.percent)
            .unwrap_or(DEFAULT_PERCENT);
        if percent > 100 {
            errors.push(at.key("budget").key("percent"), Invalid::Percent(percent));
        }
        let min_per_second = spec
            .budget
            .as_ref()
            .and_then(|b| b.min_per_second)
            .unwrap_or(DEFAULT_MIN_PER_SECOND);
        RetryPolicy {
            attempts: attempts.min(MAX_ATTEMPTS),
            on: on.into(),
            budget: RetryBudget::new(percent.min(100), min_per_second),
        }
    }

    /// Whether a response with `status` is retried (idempotent requests
    /// only; the caller checks the method).
    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.on.contains(&status)
    }
}

/// Whether a request with `method` may be sent twice with the same effect
/// (RFC 9110 §9.2.2).
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

// === impl RetryBudget ===

/// A token bucket counting in thousandths of a token: every request adds
/// `percent`/100 of a token, time adds `minPerSecond` tokens a second, a
/// retry takes one whole token. Savings are capped so a long quiet spell
/// cannot fund a burst of retries. A rule starts with `minPerSecond`
/// tokens. Rebuilt with the rule on each route update.
#[derive(Debug)]
pub struct RetryBudget {
    percent: u64,
    min_per_second: u64,
    cap: u64,
    tokens: AtomicU64,
    /// Milliseconds since `origin` when time last added tokens.
    refilled_ms: AtomicU64,
    /// The first instant the budget saw (compile reads no clock).
    origin: OnceLock<Instant>,
}

impl RetryBudget {
    /// A full budget of `percent` per 100 requests plus `min_per_second`.
    pub fn new(percent: u32, min_per_second: u32) -> RetryBudget {
        let (percent, min_per_second) = (u64::from(percent), u64::from(min_per_second));
        let from_percent = if percent > 0 { SAVED_FROM_PERCENT } else { 0 };
        let cap = (min_per_second * SAVED_SECONDS + from_percent) * TOKEN;
        RetryBudget {
            percent,
            min_per_second,
            cap,
            tokens: AtomicU64::new((min_per_second * TOKEN).min(cap)),
            refilled_ms: AtomicU64::new(0),
            origin: OnceLock::new(),
        }
    }

    /// Counts a request (its first try) at `now`.
    pub fn deposit(&self, now: Instant) {
        self.refill(now);
        self.add(self.percent * TOKEN / 100);
    }

    /// Whether a retry would be allowed at `now`, without taking it.
    pub fn has_token(&self, now: Instant) -> bool {
        self.refill(now);
        self.tokens.load(Ordering::Relaxed) >= TOKEN
    }

    /// Takes one retry's worth at `now`; false when the budget is spent.
    pub fn withdraw(&self, now: Instant) -> bool {
        self.refill(now);
        self.tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                t.checked_sub(TOKEN)
            })
            .is_ok()
    }

    fn refill(&self, now: Instant) {
        if self.min_per_second == 0 {
            return;
        }
        let origin = *self.origin.get_or_init(|| now);
        let now_ms =
            u64::try_from(now.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX);
        let last = self.refilled_ms.load(Ordering::Relaxed);
        if now_ms <= last {
            return;
        }
        // One caller wins the interval; the others see it already counted.
        if self
            .refilled_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            // min_per_second tokens a second = min_per_second thousandths a ms.
            self.add((now_ms - last).saturating_mul(self.min_per_second));
        }
    }

    fn add(&self, amount: u64) {
        if amount == 0 {
            return;
        }
        let cap = self.cap;
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(amount).min(cap))
            });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn retries(budget: &RetryBudget, now: Instant) -> usize {
        std::iter::from_fn(|| budget.withdraw(now).then_some(())).count()
    }

    #[test]
    fn an_empty_budget_never_retries() {
        let budget = RetryBudget::new(0, 0);
        let t0 = Instant::now();
        for i in 0..100 {
            budget.deposit(t0 + Duration::from_secs(i));
        }
        assert!(!budget.has_token(t0 + Duration::from_secs(100)));
        assert_eq!(retries(&budget, t0 + Duration::from_secs(100)), 0);
    }

    #[test]
    fn min_per_second_starts_full_and_refills_with_time() {
        let budget = RetryBudget::new(0, 3);
        let t0 = Instant::now();
        budget.deposit(t0);
        assert_eq!(retries(&budget, t0), 3, "a fresh rule may retry at once");
        assert_eq!(retries(&budget, t0 + Duration::from_millis(500)), 1);
        assert_eq!(retries(&budget, t0 + Duration::from_millis(1500)), 3);
        // A quiet minute saves ten seconds' worth, no more.
        assert_eq!(retries(&budget, t0 + Duration::from_secs(60)), 30);
    }

    #[test]
    fn percent_allows_that_share_of_requests() {
        let budget = RetryBudget::new(20, 0);
        let t0 = Instant::now();
        assert_eq!(retries(&budget, t0), 0);
        for _ in 0..10 {
            budget.deposit(t0);
        }
        assert_eq!(retries(&budget, t0), 2, "20% of 10 requests");
        for _ in 0..1000 {
            budget.deposit(t0);
        }
        assert_eq!(retries(&budget, t0), 10, "savings are capped");
    }

    #[test]
    fn compile_names_the_bad_field() {
        let spec = api::Retries {
            attempts: Some(9),
            on: vec![503, 42],
            budget: Some(api::RetryBudget {
                percent: Some(150),
                min_per_second: None,
            }),
        };
        let mut errors = crate::diagnostic::Problems::default();
        let policy = RetryPolicy::compile(Some(&spec), "spec.rules[0].retries", &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.rules[0].retries.attempts",
                "spec.rules[0].retries.on[1]",
                "spec.rules[0].retries.budget.percent"
            ]
        );
        assert_eq!(&*policy.on, [StatusCode::SERVICE_UNAVAILABLE]);
    }

    #[test]
    fn idempotent_methods() {
        assert!(is_idempotent(&Method::GET) && is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST) && !is_idempotent(&Method::PATCH));
    }
}
