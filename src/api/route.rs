//! The route and its rules: the `LoadBalancerRoute` custom resource's spec.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Backend, Firewall, HeaderModifier, HealthCheck, LoadBalancerRouteStatus, LoadBalancing,
    PassiveHealth, QueryModifier, RateLimit, Redirect, Retries, Rewrite, RouteMatch, RouteTls,
    Timeouts,
};

/// Routes traffic for a set of hosts to backends, rule by rule.
///
/// The spec of the `LoadBalancerRoute` custom resource. Matching follows
/// Gateway API HTTPRoute semantics: the most specific host wins, then the
/// most specific rule match.
// Each `printcolumn(...)` has its own `type_`; clippy reads them as one list.
#[allow(clippy::duplicated_attributes)]
#[derive(
    CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "LoadBalancerRoute",
    namespaced,
    shortname = "lbr",
    category = "switchyard",
    status = "LoadBalancerRouteStatus",
    printcolumn(
        name = "Hosts",
        type_ = "string",
        json_path = ".spec.hosts",
        description = "Hostnames served"
    ),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status",
        description = "Whether the route is served"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether every rule has a ready endpoint"
    ),
    printcolumn(
        name = "TLS",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"TLSReady\")].status",
        description = "Whether the route's certificate is served"
    ),
    printcolumn(
        name = "Endpoints",
        type_ = "integer",
        json_path = ".status.readyEndpoints",
        description = "Ready endpoints across the route's rules"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRouteSpec {
    /// Hostnames this route serves: exact (`www.mango.com`) or with one
    /// leading wildcard label (`*.mango.com`, which matches any name ending
    /// in `.mango.com`). Compared case-insensitively, the port ignored. An
    /// exact host beats a wildcard; a longer wildcard beats a shorter one.
    /// Empty means every host that no other route names.
    #[serde(default)]
    #[schemars(
        length(max = 16),
        inner(regex(
            pattern = r"^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$"
        ))
    )]
    pub hosts: Vec<String>,
    /// HTTPS for `hosts`: the certificate (a `kubernetes.io/tls` Secret in
    /// this namespace), the plain-HTTP redirect and HSTS. Absent: the
    /// route is served over plain HTTP only (and over HTTPS with the
    /// default certificate, if the proxy has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTls>,
    /// The rules, each a set of matches and where matching requests go.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub rules: Vec<RouteRule>,
}

/// One rule: requests matching any of `matches` are sent to `backends`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.redirect) || !has(self.backends) || size(self.backends) == 0").message("a rule either redirects or has backends, not both")
)]
pub struct RouteRule {
    /// Conditions that select this rule; any one matching selects it.
    /// Empty means every request (a `Prefix` match on `/`).
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub matches: Vec<RouteMatch>,
    /// Where matching requests go. Empty means the rule answers 503.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub backends: Vec<Backend>,
    /// How each request's endpoint is chosen, in two levels. First the
    /// backends split the traffic by `weight`, in smooth weighted turns
    /// whatever the algorithm: a Service backend's share does not depend on
    /// how many endpoints it has (90/10 stays 90/10), and static `address`
    /// backends together form one pool whose share is the sum of their
    /// weights. Then `algorithm` picks an endpoint inside the chosen
    /// backend (a Service's endpoints weigh the same; in the static pool
    /// each address weighs its `weight`). Unavailable (unhealthy) endpoints
    /// are skipped; if the chosen backend has none available the other
    /// backends are tried; if no endpoint is available at all the request
    /// is answered 503 and no backend is contacted. Default: `{algorithm:
    /// RoundRobin}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing: Option<LoadBalancing>,
    /// Time limits for requests of this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    /// Retrying a failed request on another endpoint, e.g. `{attempts: 2,
    /// on: [503], budget: {percent: 20, minPerSecond: 10}}`. A connect
    /// failure is retried for any method; a reset or close before any
    /// response byte, and the `on` statuses, only for idempotent methods
    /// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE). A request body must still be
    /// at hand: bodiless requests and bodies of declared length up to 64 KiB
    /// (held whole when the rule can retry) are sent again on any retry; a
    /// larger or chunked body streams, and is sent again only after a connect
    /// failure (nothing of it was sent). Absent: one retry of connect failures
    /// and resets, within the default budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// Active health checks: each endpoint of the rule is probed with an
    /// HTTP GET in the background, e.g. `{path: /healthz, interval: 5s}`.
    /// An endpoint failing `unhealthyThreshold` probes in a row gets no
    /// traffic until it passes `healthyThreshold` in a row. Absent: no
    /// probes (endpoints count as healthy; passive health still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Passive health: endpoints whose requests fail (connect errors,
    /// resets, timeouts, 5xx responses) `consecutiveFailures` times in a
    /// row are ejected for a growing time. On by default with the defaults
    /// below; `{consecutiveFailures: 0}` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_health: Option<PassiveHealth>,
    /// Headers changed on the request before it is sent to the backend,
    /// e.g. `{set: {X-Env: prod}, add: {MyCustomHeader: Test}, remove: [Cookie]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderModifier>,
    /// Headers changed on the backend's response before it goes back to
    /// the client, e.g. `{set: {Cache-Control: no-store}, remove: [Server]}`.
    /// Responses the proxy makes itself (403, 429, 502, ...) are not changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderModifier>,
    /// Query parameters changed on the request before it is sent, e.g.
    /// `{add: {MyCustomParam: Test}, remove: [RemoveMe]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_params: Option<QueryModifier>,
    /// Path and Host rewrites applied before the request is sent, e.g.
    /// `{path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    /// Answer matching requests with a redirect instead of forwarding them,
    /// e.g. `{scheme: https, statusCode: 301}`. A rule with a redirect must
    /// have no backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    /// Who may use this rule, checked before anything is sent upstream; a
    /// refused request gets 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Firewall>,
    /// At most this many requests per second per key; past it, 429 with
    /// `Retry-After`, e.g. `{requestsPerSecond: 100, burst: 200}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// The largest request body accepted, in bytes or as a quantity
    /// (`512`, `64Ki`, `10Mi`, `1Gi`, `10k`, `5M`); past it, 413. The body
    /// is streamed and counted, never buffered. Absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<IntOrString>,
}
