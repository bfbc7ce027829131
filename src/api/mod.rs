//! The `LoadBalancerRoute` resource (`switchyard.dev/v1alpha1`): the one input
//! both route sources produce.
//!
//! Owns: the serde/schemars shape of the resource, its defaults and the
//! documentation users read with `kubectl explain`. Must not: do I/O or
//! validate anything that needs more than the type system — values are
//! checked and parsed once, in `table::compile`.

pub mod values;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Routes traffic for a set of hosts to backends, rule by rule.
///
/// The spec of the `LoadBalancerRoute` custom resource. Matching follows
/// Gateway API HTTPRoute semantics: the most specific host wins, then the
/// most specific rule match.
// Each `printcolumn(...)` has its own `type_`; clippy reads them as one list.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
    /// The rules, each a set of matches and where matching requests go.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub rules: Vec<RouteRule>,
}

/// One rule: requests matching any of `matches` are sent to `backends`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
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
    /// on: [503], budget: {percent: 20, minPerSecond: 10}}`. Only requests
    /// without a body are retried (a streamed body is consumed by the first
    /// attempt). A connect failure is retried for any such request; a reset
    /// or close before any response byte, and the `on` statuses, only for
    /// idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE). Absent:
    /// one retry of connect failures and resets, within the default budget.
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

/// Header changes: `remove` first, then `set`, then `add`. Names are
/// case-insensitive; values must be valid header values. `Host` (see
/// `rewrite.host`) and framing/connection headers (`Content-Length`,
/// `Transfer-Encoding`, `Connection`, `Keep-Alive`, `TE`, `Trailer`,
/// `Upgrade`, `Proxy-Connection`) cannot be changed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderModifier {
    /// Headers to set, replacing every value already present:
    /// `{X-Env: prod}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Headers to add, keeping values already present (the header is then
    /// sent twice): `{MyCustomHeader: Test}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Header names to remove: `[Cookie, X-Internal]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// Query parameter changes: `remove` first, then `set`, then `add`. Names
/// are case-sensitive and compared as sent (not percent-decoded); values are
/// percent-encoded by switchyard.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryModifier {
    /// Parameters to set, replacing every occurrence already present:
    /// `{lang: en}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Parameters to append, keeping those already present:
    /// `{MyCustomParam: Test}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Parameter names to remove, every occurrence: `[RemoveMe]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// Rewrites of the request sent to the backend. The client never sees
/// them; `X-Forwarded-Host` keeps the host the client asked for.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rewrite {
    /// How the path changes; the query string is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// What the backend gets as `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostRewrite>,
}

/// A path change (Gateway API `HTTPPathModifier`, plus regular expressions).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathModifier {
    /// `ReplacePrefixMatch`, `ReplaceFullPath` or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: PathModifierType,
    /// With `ReplacePrefixMatch`: what replaces the part of the path the
    /// rule's `Prefix` match matched (`/v1` matched, `/v2` given:
    /// `/v1/users` becomes `/v2/users`). Every match of the rule must be a
    /// `Prefix` match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
    /// With `ReplaceFullPath`: the new path, e.g. `/maintenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_full_path: Option<String>,
    /// With `RegularExpression`: the pattern searched for in the path
    /// (Rust `regex` syntax; not anchored unless you write `^`/`$`), e.g.
    /// `^/v1/(.*)`. The first match is replaced; no match leaves the path
    /// unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// With `RegularExpression`: the replacement, with `$1`/`${name}` for
    /// capture groups, e.g. `/v2/$1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitution: Option<String>,
}

/// The kinds of path change.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PathModifierType {
    /// Replace the matched prefix, keep the rest of the path.
    ReplacePrefixMatch,
    /// Replace the whole path.
    ReplaceFullPath,
    /// Regular expression substitution.
    RegularExpression,
}

/// What `Host` the backend receives.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostRewrite {
    /// `Hostname` (send `hostname`) or `BackendAddress` (send the chosen
    /// endpoint's own `host:port`, for backends that only answer to it).
    #[serde(rename = "type")]
    pub kind: HostRewriteType,
    /// With `Hostname`: the host to send, e.g. `api.internal` or
    /// `api.internal:8443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The kinds of host rewrite.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HostRewriteType {
    /// A fixed hostname.
    Hostname,
    /// The address of the endpoint the request is sent to.
    BackendAddress,
}

/// A redirect answer (Gateway API `HTTPRequestRedirectFilter`). Parts not
/// given are kept from the request; the query string is always kept.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.statusCode) || self.statusCode in [301, 302, 303, 307, 308]").message("statusCode is one of 301, 302, 303, 307, 308"),
    validation = Rule::new("!has(self.scheme) || self.scheme in ['http', 'https']").message("scheme is http or https")
)]
pub struct Redirect {
    /// `http` or `https`. Default: the request's scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The host to redirect to. Default: the request's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The port. Default: the scheme's well-known port when `scheme` is
    /// given (80, 443), else the request's port. Well-known ports are left
    /// out of `Location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// How the path changes (`ReplaceFullPath`, `ReplacePrefixMatch` or
    /// `RegularExpression`, as in `rewrite.path`). Default: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// 301, 302 (the default), 303, 307 or 308.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
}

/// Per-rule firewall. A request is refused (403) when its client address is
/// not in a non-empty `allow`, is in `deny`, its path is under a `denyPaths`
/// prefix, a `denyHeaders` entry matches, or its method is not in a
/// non-empty `methods`. The client address is the socket peer, or, when the
/// peer is one of `--trusted-proxies`, the right-most `X-Forwarded-For`
/// entry that is not itself trusted.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Firewall {
    /// CIDRs (IPv4 or IPv6; a bare address means just it) allowed to use
    /// the rule: `[10.0.0.0/8, "2001:db8::/32"]`. Empty means everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// CIDRs refused, even when `allow` contains them: `[10.192.0.0/16]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Path prefixes refused, compared segment-wise like `Prefix` matches:
    /// `/admin` refuses `/admin` and `/admin/x`, not `/administrator`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_paths: Vec<String>,
    /// Header conditions that refuse a request when one matches:
    /// `[{name: user-agent, type: RegularExpression, value: "BadBot.*"}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_headers: Vec<HeaderMatch>,
    /// Methods allowed (`GET`, `HEAD`, ...); any other is refused. Empty
    /// means every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// A rate limit: a token bucket refilled at `requestsPerSecond`, holding
/// `burst` requests, one bucket per key. Past it, 429 with `Retry-After`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// The sustained rate, at least 1.
    #[schemars(range(min = 1))]
    pub requests_per_second: u32,
    /// How many requests may arrive at once after a quiet period. Default:
    /// `requestsPerSecond`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// What the limit is counted per. Default `{type: ClientIP}`.
    #[serde(default)]
    pub key: RateLimitKey,
}

/// What a rate limit is counted per.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.type) || self.type != 'Header' || has(self.header)").message("a Header key names its header")
)]
pub struct RateLimitKey {
    /// `ClientIP` (default), `Header` or `Route`.
    #[serde(rename = "type", default)]
    pub kind: RateLimitKeyType,
    /// With `Header`: the header whose value is the key, e.g. `x-api-key`.
    /// Requests without it share one bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

/// The kinds of rate-limit key.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RateLimitKeyType {
    /// Per client address (see `firewall` for how it is derived).
    #[default]
    #[serde(rename = "ClientIP")]
    ClientIp,
    /// Per value of a request header.
    Header,
    /// One bucket for the whole rule.
    Route,
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(has(self.type) && self.type == 'RegularExpression') || self.value.startsWith('/')").message("an Exact or Prefix path starts with /")
)]
pub struct PathMatch {
    /// `Exact`, `Prefix` (the default) or `RegularExpression`.
    #[serde(rename = "type", default)]
    pub kind: PathMatchType,
    /// The path (`Exact`, `Prefix`; must start with `/`) or the regular
    /// expression (`RegularExpression`; must match the whole path).
    #[schemars(length(min = 1, max = 1024))]
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
/// static address (standalone mode). Exactly one of `service` and
/// `address`; a `service` needs a `port`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.service) != has(self.address)").message("set exactly one of service or address"),
    validation = Rule::new("!has(self.service) || has(self.port)").message("a service backend needs a port")
)]
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
    #[schemars(range(min = 0, max = 1000))]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// How a rule's traffic is spread. Two levels: first the rule's backends
/// split the traffic by their `weight` (a smooth weighted round robin over
/// the backends, whatever the algorithm, so `90`/`10` is a 90/10 split
/// however many endpoints each backend has); then `algorithm` picks one
/// endpoint of the chosen backend. Endpoints whose health check fails are
/// skipped; when no endpoint of the backend is available the other
/// backends are tried, and when none is available anywhere the request is
/// answered 503 without contacting a backend.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancing {
    /// The algorithm picking an endpoint within the chosen backend:
    /// `RoundRobin` (default) and `WeightedRoundRobin` (the same): endpoints
    /// take smooth weighted turns (weights 5:1:1 go `a a b a c a a`), exact
    /// over each cycle. `LeastConnections`: the endpoint with the lowest
    /// (requests in flight + 1) / weight; ties go to the first after a
    /// starting point that moves by one per request, so they rotate.
    /// `LeastTime`: power of two choices: two distinct endpoints drawn at
    /// random, the lower score wins; score = average time to response
    /// headers × (in flight + 1) / weight, the average time-weighted over
    /// about the last second and fading toward 0 while an endpoint gets no
    /// responses (so a slow endpoint is retried later); an endpoint with no
    /// response yet counts as fast. `Random`: a random endpoint per
    /// request, in proportion to weight. `ConsistentHash`: the `hashOn`
    /// value is hashed (fixed seed: every replica agrees) onto a ring of
    /// 160 points per endpoint (scaled by weight); the endpoint owning the
    /// first point at or after the hash serves it, so a value always
    /// reaches the same endpoint and adding or removing one of N endpoints
    /// moves only about 1/N of the values; requests without the value take
    /// round-robin turns, and an unavailable owner's requests go to the
    /// owner of the next point.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// With `ConsistentHash` (and only with it): what request value is
    /// hashed, e.g. `{type: Header, name: x-user-id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<HashOn>,
    /// Sticky sessions, with any algorithm: the first response sets a
    /// cookie naming the endpoint that served it, and later requests that
    /// send the cookie back go to that endpoint for as long as it is
    /// available (ignoring backend weights and `algorithm`). A cookie that
    /// names no endpoint of the rule, or an unavailable one, is ignored:
    /// the request is balanced as usual and the cookie replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
}

/// Load-balancing algorithms: how an endpoint of the chosen backend is
/// picked. Endpoints of one backend have equal weight; backend weights act
/// before the algorithm (see `loadBalancing`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Algorithm {
    /// Endpoints take strict turns in address order (a b c a b c). Backend
    /// weights are honoured too, by the smooth split that picks the backend:
    /// weights 5:1:1 go `a a b a c a a`, never five `a`s in a row.
    #[default]
    RoundRobin,
    /// The same as `RoundRobin`: turns weighted by backend `weight`,
    /// interleaved (smooth weighted round robin, exact over each cycle).
    WeightedRoundRobin,
    /// The endpoint with the fewest requests in flight (sent, response not
    /// finished). Ties go to the first tied endpoint after a starting
    /// point that moves by one each request, so they rotate.
    LeastConnections,
    /// Power of two choices: two distinct endpoints are drawn at random and
    /// the one with the lower score wins; score = average time to response
    /// headers × (requests in flight + 1). The average is weighted by time
    /// (it covers about the last second) and fades while an endpoint gets
    /// no responses, so a slow endpoint is retried later. Endpoints with
    /// no response yet count as fast.
    LeastTime,
    /// A uniformly random endpoint per request.
    Random,
    /// The value named by `hashOn` is hashed onto a ring of 160 points per
    /// endpoint; the request goes to the endpoint owning the first point at
    /// or after the hash. The same value always reaches the same endpoint
    /// (on every replica), and when an endpoint is added or removed only
    /// about 1/N of the values move. Requests without the value take
    /// round-robin turns. An unavailable owner's requests go to the next
    /// point's owner.
    ConsistentHash,
}

/// What `ConsistentHash` hashes.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashOn {
    /// `Header`, `Cookie`, `QueryParameter` or `ClientIP`.
    #[serde(rename = "type")]
    pub kind: HashOnType,
    /// The header name (case-insensitive; the first value is used), cookie
    /// name or query parameter name (case-sensitive, compared as sent, the
    /// first occurrence used). Not used with `ClientIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The kinds of consistent-hash key.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HashOnType {
    /// A request header's value.
    Header,
    /// A cookie's value.
    Cookie,
    /// A query parameter's value (as sent, not percent-decoded).
    QueryParameter,
    /// The client address (see `firewall` for how it is derived).
    #[serde(rename = "ClientIP")]
    ClientIp,
}

/// Sticky-session settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sticky {
    /// The cookie that pins a client to an endpoint.
    pub cookie: StickyCookie,
}

/// The sticky-session cookie. Its value is an opaque hash of the endpoint
/// address; it is sent as `Set-Cookie: NAME=VALUE; Path=/; HttpOnly`, plus
/// `Max-Age` when `ttl` is given.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StickyCookie {
    /// The cookie name, e.g. `switchyard-session`.
    pub name: String,
    /// How long the browser keeps the cookie (`30m`, `12h`; whole seconds
    /// in `Max-Age`). Absent: a session cookie, dropped when the browser
    /// closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// An active health check: `GET path` to each endpoint every `interval`.
/// The request's `Host` is the endpoint's `host:port`. Endpoints start
/// healthy (optimistic, like nginx): a new endpoint gets traffic at once
/// and leaves rotation after `unhealthyThreshold` failed probes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
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
    /// Ready endpoints across the route's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_endpoints: Option<i64>,
}

/// The CustomResourceDefinition as YAML: what `switchyard crd` prints and
/// `crds/` holds.
pub fn crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube::CustomResourceExt;
    serde_yaml_ng::to_string(&LoadBalancerRoute::crd())
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
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
