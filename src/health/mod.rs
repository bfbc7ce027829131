//! Endpoint health: active probes and passive ejection.
//!
//! Owns: the compiled health settings of a rule ([`ActiveCheck`],
//! [`Passive`]), the background probe tasks ([`active`]) and the
//! bookkeeping of request outcomes ([`passive`]). Both only write
//! [`EndpointState`](crate::balance::EndpointState) atomics; balancers read
//! them through `is_available`. Must not: block the request path — probes
//! run in their own tasks, and a request outcome costs a few atomics.

pub mod active;
pub mod passive;

use std::time::Duration;

use http::uri::PathAndQuery;

use crate::api;
use crate::api::values::parse_duration;
use crate::diagnostic::{FieldPath, Invalid, Problems};

pub use active::Probe;
pub use passive::Passive;

/// Probe path when `healthCheck.path` is absent.
const DEFAULT_PATH: &str = "/healthz";
/// Probe interval when absent.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Probe timeout when absent.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Passed probes in a row that bring an endpoint back, when absent.
const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Failed probes in a row that take an endpoint out, when absent.
const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
/// Statuses that pass a probe, when absent.
const DEFAULT_STATUSES: (u16, u16) = (200, 399);

/// A rule's active health check, validated. Equal checks of one endpoint
/// share one probe task, so this is the task's identity with the address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActiveCheck {
    /// What is requested.
    pub path: PathAndQuery,
    /// Time between probes.
    pub interval: Duration,
    /// Time a probe may take to get its response head.
    pub timeout: Duration,
    /// Passed probes in a row that make an unhealthy endpoint healthy.
    pub healthy_threshold: u32,
    /// Failed probes in a row that make a healthy endpoint unhealthy.
    pub unhealthy_threshold: u32,
    /// Lowest passing status.
    pub min_status: u16,
    /// Highest passing status.
    pub max_status: u16,
}

impl ActiveCheck {
    /// Validates `spec` (at field path `at`, e.g. `spec.rules[0].healthCheck`);
    /// every problem is pushed to `errors`, naming its field.
    pub fn compile(
        spec: &api::HealthCheck,
        at: impl Into<FieldPath>,
        errors: &mut Problems,
    ) -> Option<ActiveCheck> {
        let at = at.into();
        let before = errors.len();
        let mut err = |field: &str, reason: Invalid| errors.push(at.key(field), reason);
        let path_text = spec.path.as_deref().unwrap_or(DEFAULT_PATH);
        let path = if !path_text.starts_with('/') {
            err("path", Invalid::ProbePathRelative(path_text.to_owned()));
            None
        } else {
            match PathAndQuery::try_from(path_text) {
                Ok(path) => Some(path),
                Err(_) => {
                    err("path", Invalid::ProbePath(path_text.to_owned()));
                    None
                }
            }
        };
        let mut duration = |field: &str, text: Option<&str>, default: Duration| match text {
            None => default,
            Some(text) => parse_duration(text).unwrap_or_else(|e| {
                err(field, e.into());
                default
            }),
        };
        let interval = duration("interval", spec.interval.as_deref(), DEFAULT_INTERVAL);
        let timeout = duration("timeout", spec.timeout.as_deref(), DEFAULT_TIMEOUT);
        let mut err = |field: &str, reason: Invalid| errors.push(at.key(field), reason);
        if timeout > interval {
            err(
                "timeout",
                Invalid::TimeoutOverInterval { timeout, interval },
            );
        }
        let mut threshold = |field: &str, value: Option<u32>, default: u32| {
            let value = value.unwrap_or(default);
            if value == 0 {
                err(field, Invalid::AtLeastOne);
            }
            value
        };
        let healthy_threshold = threshold(
            "healthyThreshold",
            spec.healthy_threshold,
            DEFAULT_HEALTHY_THRESHOLD,
        );
        let unhealthy_threshold = threshold(
            "unhealthyThreshold",
            spec.unhealthy_threshold,
            DEFAULT_UNHEALTHY_THRESHOLD,
        );
        let (min_status, max_status) = statuses(spec, &at, errors);
        if errors.len() != before {
            return None;
        }
        Some(ActiveCheck {
            path: path?,
            interval,
            timeout,
            healthy_threshold,
            unhealthy_threshold,
            min_status,
            max_status,
        })
    }

    /// Whether a probe answered with `status` passed.
    pub fn passes(&self, status: u16) -> bool {
        (self.min_status..=self.max_status).contains(&status)
    }
}

/// `expectedStatuses` (absent: 200 to 399), each end checked.
fn statuses(spec: &api::HealthCheck, at: &FieldPath, errors: &mut Problems) -> (u16, u16) {
    let (min, max) = spec
        .expected_statuses
        .map_or(DEFAULT_STATUSES, |r| (r.min, r.max));
    let at = at.key("expectedStatuses");
    if !(100..=599).contains(&min) {
        errors.push(at.key("min"), Invalid::Status(min));
    }
    if !(100..=599).contains(&max) {
        errors.push(at.key("max"), Invalid::Status(max));
    } else if max < min {
        errors.push(at.key("max"), Invalid::StatusRange { min, max });
    }
    (min, max)
}

#[cfg(test)]
mod tests;
