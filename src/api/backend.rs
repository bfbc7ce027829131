//! Where a rule's traffic goes and how it is spread: backends,
//! load-balancing algorithms, sticky sessions.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A destination for a rule's traffic: a Service (in a cluster) or a
/// static address (standalone mode). Exactly one of `service` and
/// `address`; a `service` needs a `port`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.service) != has(self.address)").message("set exactly one of service or address"),
    validation = Rule::new("!has(self.service) || has(self.port)").message("a service backend needs a port"),
    validation = Rule::new("!has(self.tls) || !has(self.protocol) || self.protocol == 'HTTPS'").message("tls applies only to protocol HTTPS")
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
    /// How the proxy talks to this backend (see [`BackendProtocol`], whose
    /// text the CRD shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<BackendProtocol>,
    /// How an `HTTPS` backend is verified (only with `protocol: HTTPS`, or
    /// with no `protocol` when the Service port's `appProtocol` is
    /// `https`). Absent: the certificate is verified against the system's
    /// trusted roots, for the name `hostname` would default to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTls>,
}

/// How the proxy talks to this backend: `HTTP` (HTTP/1.1), `H2C` (HTTP/2
/// without TLS, e.g. a gRPC server) or `HTTPS` (TLS; HTTP/2 or HTTP/1.1 as
/// the server chooses by ALPN). Absent: for a Service backend, what the
/// Service port's `appProtocol` says (`kubernetes.io/h2c` is H2C; `https`
/// and `kubernetes.io/wss` are HTTPS; none, `http` and `kubernetes.io/ws`
/// are HTTP; any other value is not guessed at: the backend gets no
/// traffic and `ResolvedRefs` says `UnsupportedProtocol`); for an
/// `address` backend, HTTP. Set it to override the `appProtocol`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BackendProtocol {
    /// HTTP/1.1 over plain TCP.
    #[serde(rename = "HTTP")]
    Http,
    /// HTTP/2 over plain TCP with prior knowledge (no upgrade, no
    /// fallback): what gRPC servers without TLS speak.
    #[serde(rename = "H2C")]
    H2c,
    /// TLS, offering HTTP/2 and HTTP/1.1 by ALPN; the server's certificate
    /// is verified (see `tls`).
    #[serde(rename = "HTTPS")]
    Https,
}

/// TLS to a backend: what its certificate is verified against and for
/// which name. Field names follow Gateway API's BackendTLSPolicy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.insecureSkipVerify) && self.insecureSkipVerify) || !has(self.caCertificateRefs) || size(self.caCertificateRefs) == 0").message("insecureSkipVerify verifies nothing: drop caCertificateRefs or insecureSkipVerify")
)]
pub struct BackendTls {
    /// The CA certificates the backend's certificate must chain to: the
    /// `ca.crt` key of each ConfigMap or Secret listed, all in the route's
    /// namespace (PEM; several are merged). In a cluster a ConfigMap must
    /// carry the label `switchyard.dev/ca-bundle: "true"` to be seen, and a
    /// Secret must be of type `kubernetes.io/tls` (cert-manager puts
    /// `ca.crt` there). A missing object, a missing `ca.crt` or bad PEM
    /// gives `ResolvedRefs=False` with reason `InvalidCACertificateRef`
    /// and the backend no traffic (never the system roots instead).
    /// Empty: the system's trusted roots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub ca_certificate_refs: Vec<CaCertificateRef>,
    /// The name sent as SNI and that the certificate must be valid for,
    /// e.g. `api.shop.svc`. Required for Service backends (their endpoints
    /// are pod IPs) unless `insecureSkipVerify` (then `SERVICE.NAMESPACE.svc`
    /// is sent as SNI); for an `address` backend it defaults to the
    /// address's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub hostname: Option<String>,
    /// Do not verify the backend's certificate chain or name (the server
    /// must still prove it holds the key of the certificate it shows).
    /// For testing only: anyone on the path can impersonate the backend.
    /// The route's `BackendTLSVerified` condition turns `False` with
    /// reason `InsecureSkipVerify` as a warning; the route is still
    /// served. Cannot be combined with `caCertificateRefs`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

/// A ConfigMap or Secret in the route's namespace whose `ca.crt` holds CA
/// certificates (PEM).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaCertificateRef {
    /// `ConfigMap` or `Secret`.
    pub kind: CaKind,
    /// The object's name (in the route's namespace).
    pub name: String,
}

/// Where a CA bundle is kept.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CaKind {
    /// A ConfigMap (in a cluster: labelled `switchyard.dev/ca-bundle: "true"`).
    ConfigMap,
    /// A Secret (in a cluster: of type `kubernetes.io/tls`).
    Secret,
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sticky {
    /// The cookie that pins a client to an endpoint.
    pub cookie: StickyCookie,
}

/// The sticky-session cookie. Its value is an opaque hash of the endpoint
/// address; it is sent as `Set-Cookie: NAME=VALUE; Path=/; HttpOnly`, plus
/// `Max-Age` when `ttl` is given.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
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
