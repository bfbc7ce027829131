//! How a rule copes with failing endpoints: active and passive health
//! checks, retries, timeouts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An active health check: `GET path` to each endpoint every `interval`.
/// The request's `Host` is the endpoint's `host:port`. Endpoints start
/// healthy (optimistic, like nginx): a new endpoint gets traffic at once
/// and leaves rotation after `unhealthyThreshold` failed probes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The path (and optional query) probed. Default `/healthz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Time between probes of one endpoint, e.g. `5s` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// How long a probe may take to get its response head; longer counts
    /// as a failure. Default `1s`; must not exceed `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Passed probes in a row that bring an unhealthy endpoint back.
    /// Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub healthy_threshold: Option<u32>,
    /// Failed probes in a row that take a healthy endpoint out. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub unhealthy_threshold: Option<u32>,
    /// Response statuses that pass, inclusive. Default `{min: 200, max: 399}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_statuses: Option<StatusRange>,
}

/// An inclusive range of HTTP statuses, e.g. `{min: 200, max: 299}`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusRange {
    /// The lowest status that passes (100 to 599).
    pub min: u16,
    /// The highest status that passes (`min` to 599).
    pub max: u16,
}

/// Passive health (outlier detection, like nginx's `max_fails` and Envoy's
/// consecutive-5xx ejection). The proxy counts each endpoint's failed
/// requests (connect errors, resets, timeouts, 5xx responses); after
/// `consecutiveFailures` in a row the endpoint is ejected for
/// `baseEjection`, doubled on each further ejection up to `maxEjection`.
/// After an ejection one more failure ejects it again; one success resets
/// the count and the backoff. Never more than `maxEjectedPercent` of a
/// rule's endpoints are ejected at once.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassiveHealth {
    /// Failed requests in a row that eject an endpoint. Default 5; 0 turns
    /// passive health off for the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// How long the first ejection lasts, e.g. `30s` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection: Option<String>,
    /// The longest an ejection lasts, however often it repeats. Default
    /// `5m`, or `baseEjection` when that is longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection: Option<String>,
    /// The largest share of the rule's endpoints ejected at once (0 to
    /// 100). Default 50: a bad deploy cannot eject everything; with one
    /// endpoint nothing is ejected unless this is 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_ejected_percent: Option<u32>,
}

/// How a rule retries failed requests on another endpoint.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    /// Retries after the first try (0 to 5), each on an endpoint not yet
    /// tried; when no other endpoint is available the request is not
    /// retried. Default 1; 0 turns retries off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 5))]
    pub attempts: Option<u32>,
    /// Response statuses that are retried for idempotent requests, e.g.
    /// `[502, 503, 504]`; the failed response is dropped. When the retries
    /// are used up the last response is returned. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<u16>,
    /// Caps retries so that they cannot multiply load during an outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RetryBudget>,
}

/// A retry budget: retries may add at most `percent` of the rule's
/// requests, plus `minPerSecond` so that a quiet rule can still retry. When
/// the budget is spent a failure goes to the client as is.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryBudget {
    /// Retries allowed per 100 requests (0 to 100). Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub percent: Option<u32>,
    /// Retries allowed per second whatever the request rate. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_per_second: Option<u32>,
}

/// Time limits of a rule, as durations like `500ms`, `30s`, `1m30s`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// How long connecting to an endpoint may take. A connect that times
    /// out is retried on another endpoint like a refused one (see
    /// `retries`); when the last try timed out connecting, the client gets
    /// 504. Default: the proxy's `--connect-timeout` (`5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    /// How long the backend may take to start its response (status and
    /// headers) after the request was sent; past it the client gets 504.
    /// The body then streams without limit. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The longest wait for the next piece of the response body once the
    /// head arrived; past it the response is cut (the client sees the body
    /// end with an error, the status having been sent). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<String>,
    /// The whole exchange, from choosing a backend (retries included) to
    /// the end of the response body. Past it before the response head the
    /// client gets 504; after, the response is cut. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
}
