//! Passive health: the proxy reports each forwarded request's outcome; an
//! endpoint failing `consecutiveFailures` times in a row is ejected for a
//! growing backoff.
//!
//! Owns: [`Passive`] (a rule's settings) and [`Passive::report`]. Must not:
//! block — a report is a few relaxed atomics, and a scan of the rule's
//! endpoints only when an ejection is considered.

use std::time::Duration;

use http::uri::Authority;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::api;
use crate::api::values::parse_duration;
use crate::balance::EndpointState;
use crate::diagnostic::{FieldPath, Invalid, Problems};

/// Failures in a row that eject, when absent.
const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// First ejection, when absent.
const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(30);
/// Longest ejection, when absent.
const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(300);
/// Largest share of a rule's endpoints ejected at once, when absent.
const DEFAULT_MAX_EJECTED_PERCENT: u32 = 50;

/// An endpoint as passive health sees it: its shared state, and its
/// address for logs. The table's endpoints implement it; health knows
/// nothing else of the table.
pub trait Tracked {
    /// The endpoint's shared runtime state.
    fn state(&self) -> &EndpointState;
    /// The endpoint's `host:port`, for logs.
    fn authority(&self) -> &Authority;
}

/// How a forwarded request went, for passive health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response below 500.
    Success,
    /// A connect error, reset, timeout, or a 5xx response.
    Failure,
}

impl Outcome {
    /// The outcome of a request the backend answered with `status`: below
    /// 500 a success, a 5xx a failure. (A try that got no answer fails when
    /// the backend's side is to blame; the proxy decides that.)
    pub fn of_status(status: http::StatusCode) -> Outcome {
        if status.is_server_error() {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

/// A rule's passive health settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passive {
    /// Failures in a row that eject; 0 = off.
    pub consecutive_failures: u32,
    /// First ejection's length.
    pub base_ejection: Duration,
    /// Longest ejection.
    pub max_ejection: Duration,
    /// Largest share (percent) of the rule's endpoints ejected at once.
    pub max_ejected_percent: u32,
}

impl Default for Passive {
    fn default() -> Self {
        Passive {
            consecutive_failures: DEFAULT_CONSECUTIVE_FAILURES,
            base_ejection: DEFAULT_BASE_EJECTION,
            max_ejection: DEFAULT_MAX_EJECTION,
            max_ejected_percent: DEFAULT_MAX_EJECTED_PERCENT,
        }
    }
}

impl Passive {
    /// Validates `spec` (absent: the defaults) at field path `at`; every
    /// problem is pushed to `errors`, naming its field.
    pub fn compile(
        spec: Option<&api::PassiveHealth>,
        at: impl Into<FieldPath>,
        errors: &mut Problems,
    ) -> Passive {
        let at = at.into();
        let mut passive = Passive::default();
        let Some(spec) = spec else {
            return passive;
        };
        let mut err = |field: &str, reason: Invalid| errors.push(at.key(field), reason);
        if let Some(n) = spec.consecutive_failures {
            passive.consecutive_failures = n;
        }
        if let Some(text) = &spec.base_ejection {
            match parse_duration(text) {
                Ok(d) => passive.base_ejection = d,
                Err(e) => err("baseEjection", e.into()),
            }
        }
        if let Some(text) = &spec.max_ejection {
            match parse_duration(text) {
                Ok(d) => passive.max_ejection = d,
                Err(e) => err("maxEjection", e.into()),
            }
        }
        if spec.max_ejection.is_none() {
            // Only the base given: the cap never shortens it.
            passive.max_ejection = passive.max_ejection.max(passive.base_ejection);
        } else if passive.max_ejection < passive.base_ejection {
            err(
                "maxEjection",
                Invalid::EjectionRange {
                    base: passive.base_ejection,
                    max: passive.max_ejection,
                },
            );
        }
        if let Some(percent) = spec.max_ejected_percent {
            if percent > 100 {
                err("maxEjectedPercent", Invalid::EjectedPercent(percent));
            } else {
                passive.max_ejected_percent = percent;
            }
        }
        passive
    }

    /// Records the outcome of a request to `target`, one of `targets` (the
    /// rule's endpoints). A success resets the failure count (and ends the
    /// ejection of an endpoint tried as a last resort); the
    /// `consecutiveFailures`-th failure in a row ejects the endpoint unless
    /// that would eject more than `maxEjectedPercent` of `targets`. After an
    /// ejection ends the count is still past the threshold, so one more
    /// failure ejects again, for twice as long.
    pub fn report<T: Tracked>(&self, targets: &[T], target: &T, outcome: Outcome, now: Instant) {
        if self.consecutive_failures == 0 {
            return;
        }
        let state = target.state();
        if outcome == Outcome::Success {
            if state.record_success(now) {
                info!(endpoint = %target.authority(), "ejected endpoint answering again");
            }
            return;
        }
        if state.is_ejected_at(now) {
            // A request sent before the ejection changes nothing; a failed
            // trial (a last resort) leaves the ejection as it is.
            state.end_trial();
            return;
        }
        let failures = state.record_failure();
        if failures < self.consecutive_failures {
            return;
        }
        let ejected = targets
            .iter()
            .filter(|t| t.state().is_ejected_at(now))
            .count();
        if !within_cap(ejected + 1, targets.len(), self.max_ejected_percent) {
            debug!(
                endpoint = %target.authority(),
                failures,
                ejected,
                endpoints = targets.len(),
                "endpoint failing but not ejected: maxEjectedPercent reached"
            );
            return;
        }
        if let Some(length) = state.eject(now, self.base_ejection, self.max_ejection) {
            warn!(
                endpoint = %target.authority(),
                failures,
                ejection = ?length,
                ejections = state.ejections(),
                "endpoint ejected after consecutive failures"
            );
        }
    }
}

/// Whether `ejected` of `total` endpoints is within `percent`.
fn within_cap(ejected: usize, total: usize, percent: u32) -> bool {
    ejected.saturating_mul(100) <= total.saturating_mul(percent as usize)
}
