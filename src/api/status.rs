//! What switchyard reports back on each route: its status and
//! conditions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What switchyard observed of a route.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRouteStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Ready` and `RulesReachable` (`False`
    /// with `RuleShadowed` names rules no request can reach: an earlier
    /// match takes every request they match; the route is still served);
    /// `TLSReady` for a route with `tls`; `BackendTLSVerified` for a route
    /// with an HTTPS backend (`False` with `InsecureSkipVerify` is a
    /// warning: the route is still served). Each has a reason and a message
    /// a person can act on.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Ready endpoints across the route's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_endpoints: Option<i64>,
}

/// One status condition (the Kubernetes condition shape).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Accepted`, `ResolvedRefs`, `Ready`, `RulesReachable`, `TLSReady`
    /// or `BackendTLSVerified`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason, e.g. `Conflicted`, `Invalid`.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
