//! The `LoadBalancerRoute` resource (`switchyard.dev/v1alpha1`): the one input
//! both route sources produce.
//!
//! Owns: the serde/schemars shape of the resource, its defaults and the
//! documentation users read with `kubectl explain`. Must not: do I/O or
//! validate anything that needs more than the type system — values are
//! checked and parsed once, in `table::compile`.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Routes traffic for a set of hosts to backends, rule by rule.
///
/// The spec of the `LoadBalancerRoute` custom resource. Matching follows
/// Gateway API HTTPRoute semantics: the most specific host wins, then the
/// most specific rule match.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "LoadBalancerRoute",
    namespaced,
    shortname = "lbr",
    status = "LoadBalancerRouteStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRouteSpec {
    /// Hostnames this route serves: exact (`www.mango.com`) or with one
    /// leading wildcard label (`*.mango.com`, which matches any name ending
    /// in `.mango.com`). Compared case-insensitively, the port ignored. An
    /// exact host beats a wildcard; a longer wildcard beats a shorter one.
    /// Empty means every host that no other route names.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The rules, each a set of matches and where matching requests go.
    #[serde(default)]
    pub rules: Vec<RouteRule>,
}

/// One rule: requests matching any of `matches` are sent to `backends`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// Conditions that select this rule; any one matching selects it.
    /// Empty means every request (a `Prefix` match on `/`).
    #[serde(default)]
    pub matches: Vec<RouteMatch>,
    /// Where matching requests go. Empty means the rule answers 503.
    #[serde(default)]
    pub backends: Vec<Backend>,
    /// How a backend endpoint is chosen for each request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing: Option<LoadBalancing>,
    /// Time limits for requests of this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// A request condition: every field given must match.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// The request path condition; absent means `Prefix /`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    /// Request headers that must all be present with matching values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// Request methods accepted (`GET`, `POST`, ... or any extension
    /// method); empty means every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// How a request path is compared.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathMatch {
    /// `Exact`, `Prefix` (the default) or `RegularExpression`.
    #[serde(rename = "type", default)]
    pub kind: PathMatchType,
    /// The path (`Exact`, `Prefix`; must start with `/`) or the regular
    /// expression (`RegularExpression`; must match the whole path).
    pub value: String,
}

/// The kinds of path match.
#[derive(
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
pub enum PathMatchType {
    /// The path equals the value exactly.
    Exact,
    /// The path starts with the value on a segment boundary: `/foo`
    /// matches `/foo`, `/foo/` and `/foo/bar`, never `/foobar`. A trailing
    /// `/` in the value is ignored.
    #[default]
    Prefix,
    /// The whole path matches the regular expression (Rust `regex` syntax).
    RegularExpression,
}

/// A request header condition.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// `Exact` (the default) or `RegularExpression`.
    #[serde(rename = "type", default)]
    pub kind: HeaderMatchType,
    /// The header name, compared case-insensitively.
    pub name: String,
    /// The value, or the regular expression that must match all of it.
    pub value: String,
}

/// The kinds of header match.
#[derive(
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
pub enum HeaderMatchType {
    /// The header value equals the given value.
    #[default]
    Exact,
    /// The whole header value matches the regular expression.
    RegularExpression,
}

/// A destination for a rule's traffic: a Service (in a cluster) or a
/// static address (standalone mode).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// A Service in the route's namespace (cluster mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The Service port, by number or name (with `service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// A static `host:port` endpoint (standalone mode, or a cluster that
    /// allows static backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// This backend's share of the rule's traffic, relative to the other
    /// backends' weights (0 to 1000). 0 sends it nothing.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// Load-balancing settings of a rule.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancing {
    /// The algorithm picking an endpoint per request.
    #[serde(default)]
    pub algorithm: Algorithm,
}

/// Load-balancing algorithms.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Algorithm {
    /// Endpoints take turns, each as often as its backend's weight says;
    /// turns are interleaved (smooth weighted round robin), never bursts.
    #[default]
    RoundRobin,
}

/// Time limits of a rule, as durations like `500ms`, `30s`, `1m30s`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// How long the backend may take to start its response (status and
    /// headers) after the request was sent; past it the client gets 504.
    /// The body then streams without limit. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// What switchyard observed of a route.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRouteStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs` and `Ready`, each with a reason and a
    /// message a person can act on.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One status condition (the Kubernetes condition shape).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Accepted`, `ResolvedRefs` or `Ready`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason, e.g. `Conflicted`, `Invalid`.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
}
