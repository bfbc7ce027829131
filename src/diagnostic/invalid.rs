//! [`Invalid`]: every reason compile can refuse a field for, each with the
//! text users read (unchanged from the strings it replaced) and a stable
//! [`code`](Invalid::code).

use std::time::Duration;

use crate::api::values::{
    AddressError, CidrError, CookieNameError, DurationError, HeaderNameError, HeaderProblem,
    HeaderValueError, HostError, MethodError, PathError, PathMatchError, QuantityError, RegexError,
};
use crate::api::Algorithm;

/// Why a field is refused. The `Display` text is what `switchyard check`,
/// logs and route statuses show; [`code`](Invalid::code) is what programs
/// (and the keep-last-good gate) compare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    // === values ===
    /// A duration.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A size (`maxBodySize`).
    #[error(transparent)]
    Quantity(#[from] QuantityError),
    /// A CIDR.
    #[error(transparent)]
    Cidr(#[from] CidrError),
    /// A method.
    #[error(transparent)]
    Method(#[from] MethodError),
    /// A header name.
    #[error(transparent)]
    HeaderName(#[from] HeaderNameError),
    /// A header value.
    #[error(transparent)]
    HeaderValue(#[from] HeaderValueError),
    /// A cookie name.
    #[error(transparent)]
    CookieName(#[from] CookieNameError),
    /// A static `host:port`.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A route host.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A path.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A regular expression.
    #[error(transparent)]
    Regex(#[from] RegexError),

    // === TLS ===
    /// A route's certificate cannot be served; `code` is the problem's
    /// (`tls-secret-not-found`, `tls-key-mismatch`, ...).
    #[error("{message}")]
    Tls {
        /// The stable code.
        code: &'static str,
        /// What is wrong, naming the Secret.
        message: String,
    },

    // === backend protocol and TLS ===
    /// `tls` on a backend whose `protocol` is not HTTPS.
    #[error("`tls` applies only to protocol HTTPS, not {0}")]
    TlsNeedsHttps(&'static str),
    /// `tls` on a Service backend without `protocol` whose port's
    /// `appProtocol` does not say HTTPS.
    #[error(
        "`tls` is set but the Service port's appProtocol ({0}) is not HTTPS: \
         set `protocol: HTTPS` on the backend"
    )]
    TlsAppProtocolNotHttps(String),
    /// `insecureSkipVerify` with `caCertificateRefs`.
    #[error("insecureSkipVerify verifies nothing: drop caCertificateRefs or insecureSkipVerify")]
    InsecureWithCa,
    /// A `tls.hostname` that is not a DNS name or an IP address.
    #[error("{0:?} is not a DNS name or an IP address")]
    BackendHostname(String),
    /// An HTTPS Service backend without `tls.hostname`.
    #[error(
        "an HTTPS Service backend needs `tls.hostname`, the name its certificate is \
         verified for (its endpoints are pod IPs), or `tls.insecureSkipVerify: true`"
    )]
    HostnameMissing,
    /// A Service port `appProtocol` switchyard does not speak.
    #[error(
        "the Service port's appProtocol {0:?} is not one switchyard speaks (http, https, \
         kubernetes.io/h2c, kubernetes.io/ws, kubernetes.io/wss): set `protocol: HTTP`, \
         `H2C` or `HTTPS` on the backend"
    )]
    UnsupportedProtocol(String),
    /// A `caCertificateRefs` entry that gives no CA certificate; `code` is
    /// the problem's (`backend-ca-not-found`, `invalid-pem`, ...).
    #[error("{message}")]
    CaCertificate {
        /// The stable code.
        code: &'static str,
        /// What is wrong, naming the object.
        message: String,
    },

    // === routes ===
    /// Two routes with one namespace and name.
    #[error("{resource} is defined twice; the first is in {first}")]
    DefinedTwice {
        /// `namespace/name`.
        resource: String,
        /// Where the first definition is.
        first: String,
    },
    /// An older route already serves this host and match.
    #[error("host {host} with this match is already served by the older route {owner}")]
    Conflicted {
        /// The host, as the route spells it.
        host: String,
        /// `namespace/name` of the older route.
        owner: String,
    },
    /// A route without rules.
    #[error("a route needs at least one rule")]
    NoRules,
    /// A match equal to an earlier one of the same route.
    #[error("duplicates {first}; only one can be served")]
    DuplicateMatch {
        /// The field path of the earlier match.
        first: String,
    },
    /// A backend weight above the largest.
    #[error("{weight} is out of range: a weight is 0 to {max}")]
    Weight {
        /// As written.
        weight: u32,
        /// The largest weight.
        max: u32,
    },

    // === backend references ===
    /// Both `service` and `address`.
    #[error("set either `service` or `address`, not both")]
    ServiceAndAddress,
    /// Neither `service` nor `address`.
    #[error("{}", missing_ref(*.service, *.address))]
    NoBackendRef {
        /// Whether the mode takes Service backends.
        service: bool,
        /// Whether the mode takes static addresses.
        address: bool,
    },
    /// A Service backend in standalone mode.
    #[error(
        "service backend {0:?} needs a cluster; in standalone mode \
         a backend is a static `address: host:port`"
    )]
    ServiceNeedsCluster(String),
    /// A static address the cluster does not allow.
    #[error(
        "static address backends are not allowed in this cluster; the controller \
         runs without --allow-static-backends (use `service` and `port`)"
    )]
    StaticNotAllowed,
    /// `service: ""`.
    #[error("the Service name is empty")]
    EmptyServiceName,
    /// A Service backend without `port`.
    #[error("a service backend needs a `port`: the Service port's number or name")]
    PortMissing,
    /// `port: ""`.
    #[error("the port name is empty")]
    EmptyPortName,
    /// A port number outside 1 to 65535.
    #[error("{0} is not a port number (1 to 65535)")]
    PortNumber(i32),

    // === load balancing ===
    /// `ConsistentHash` without `hashOn`.
    #[error(
        "ConsistentHash needs hashOn: {{type: Header|Cookie|QueryParameter|ClientIP, name: ...}}"
    )]
    HashOnMissing,
    /// `hashOn` with another algorithm.
    #[error("hashOn is only used by ConsistentHash, not {0:?}")]
    HashOnUnused(Algorithm),
    /// A `hashOn` type that needs a name, without one.
    #[error("a name is needed with this type")]
    NameNeeded,
    /// `hashOn: {type: ClientIP, name: ...}`.
    #[error("ClientIP takes no name")]
    NameUnused,
    /// A `hashOn` query parameter name that cannot be found in a query.
    #[error("{0:?} is not a query parameter name")]
    HashQueryName(String),

    // === policy ===
    /// A redirect with backends.
    #[error("a rule either redirects or has backends, not both")]
    RedirectWithBackends,
    /// A redirect with a rewrite.
    #[error(
        "a rule either redirects or rewrites, not both; \
         use redirect.path to change the path"
    )]
    RedirectWithRewrite,
    /// A count that must be 1 or more.
    #[error("must be at least 1")]
    AtLeastOne,
    /// A `type` whose companion field is absent.
    #[error("type {kind} needs `{field}`")]
    Needs {
        /// The type, as written in the resource.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A rate-limit `header` with another key type.
    #[error("only type Header takes `header`")]
    HeaderUnused,
    /// A header rule on `Host`.
    #[error("Host cannot be changed here; use rewrite.host")]
    HostHeader,
    /// A header rule on a framing or connection header.
    #[error("{0} is managed by the proxy (framing and connection headers cannot be changed)")]
    ManagedHeader(String),
    /// A query parameter name switchyard cannot match.
    #[error(
        "{0:?} is not a query parameter name switchyard can match: \
         use letters, digits and - . _ ~"
    )]
    QueryName(String),
    /// A redirect status that is not a redirect.
    #[error("{0} is not a redirect status: use 301, 302, 303, 307 or 308")]
    RedirectStatus(u16),
    /// A redirect scheme other than http or https.
    #[error("{0:?} is not a scheme: use http or https")]
    Scheme(String),
    /// A redirect hostname that is not one.
    #[error("{0:?} is not a hostname (a DNS name or an IP address, without port)")]
    RedirectHostname(String),
    /// A rewritten `Host` that is not one.
    #[error("{0:?} is not a hostname (for example api.internal or api.internal:8443)")]
    RewriteHostname(String),
    /// Port 0.
    #[error("0 is not a port")]
    ZeroPort,
    /// `ReplacePrefixMatch` on a rule with a non-Prefix match.
    #[error("ReplacePrefixMatch needs every match of the rule to be a Prefix path match")]
    PrefixRewriteNeedsPrefix,

    // === retries and health ===
    /// More retries than allowed.
    #[error("{attempts} retries is over the most, {max}")]
    TooManyRetries {
        /// As written.
        attempts: u32,
        /// The most.
        max: u32,
    },
    /// A retried status below 200 or not a status.
    #[error("{0} is not a response status (200 to 599)")]
    RetryStatus(u16),
    /// A retry budget percentage above 100.
    #[error("{0} is not a percentage (0 to 100)")]
    Percent(u32),
    /// An ejection percentage above 100.
    #[error("{0} is out of range: a percentage is 0 to 100")]
    EjectedPercent(u32),
    /// A probe path without a leading `/`.
    #[error("{0:?} must start with /")]
    ProbePathRelative(String),
    /// A probe path that is not a path.
    #[error("{0:?} is not a valid path")]
    ProbePath(String),
    /// A probe timeout longer than its interval.
    #[error("{timeout:?} is longer than the interval ({interval:?})")]
    TimeoutOverInterval {
        /// The probe timeout.
        timeout: Duration,
        /// The probe interval.
        interval: Duration,
    },
    /// A status outside 100 to 599.
    #[error("{0} is not an HTTP status (100 to 599)")]
    Status(u16),
    /// `expectedStatuses.max` below `min`.
    #[error("{max} is below min ({min})")]
    StatusRange {
        /// The lowest passing status.
        min: u16,
        /// The highest passing status.
        max: u16,
    },
    /// `maxEjection` shorter than `baseEjection`.
    #[error("{max:?} is shorter than baseEjection ({base:?})")]
    EjectionRange {
        /// The first ejection.
        base: Duration,
        /// The longest ejection.
        max: Duration,
    },
}

/// The text of [`Invalid::NoBackendRef`], by what the mode accepts.
fn missing_ref(service: bool, address: bool) -> &'static str {
    match (service, address) {
        (true, true) => "a backend needs a `service` and a `port`, or an `address: host:port`",
        (true, false) => "a backend needs a `service` and a `port`",
        (false, _) => "a backend needs an `address: host:port`",
    }
}

impl From<PathMatchError> for Invalid {
    fn from(e: PathMatchError) -> Self {
        match e {
            PathMatchError::Path(e) => e.into(),
            PathMatchError::Regex(e) => e.into(),
        }
    }
}

impl From<HeaderProblem> for Invalid {
    fn from(e: HeaderProblem) -> Self {
        match e {
            HeaderProblem::Name(e) => e.into(),
            HeaderProblem::Value(e) => e.into(),
            HeaderProblem::Regex(e) => e.into(),
        }
    }
}

impl Invalid {
    /// A stable, kebab-case code for the reason: it never changes with the
    /// value or the wording, so programs (and the keep-last-good gate) can
    /// compare it. Values delegate to their parser's code.
    pub fn code(&self) -> &'static str {
        match self {
            Invalid::Duration(e) => e.code(),
            Invalid::Quantity(e) => e.code(),
            Invalid::Cidr(_) => "invalid-cidr",
            Invalid::Method(e) => e.code(),
            Invalid::HeaderName(_) => "invalid-header-name",
            Invalid::HeaderValue(_) => "invalid-header-value",
            Invalid::CookieName(_) => "invalid-cookie-name",
            Invalid::Address(_) => "invalid-address",
            Invalid::Host(_) => "invalid-host",
            Invalid::Path(e) => e.code(),
            Invalid::Regex(_) => "invalid-regex",
            Invalid::Tls { code, .. } => code,
            Invalid::TlsNeedsHttps(_) => "tls-needs-https",
            Invalid::TlsAppProtocolNotHttps(_) => "tls-app-protocol-not-https",
            Invalid::InsecureWithCa => "insecure-with-ca",
            Invalid::BackendHostname(_) => "invalid-backend-hostname",
            Invalid::HostnameMissing => "backend-hostname-missing",
            Invalid::UnsupportedProtocol(_) => "unsupported-protocol",
            Invalid::CaCertificate { code, .. } => code,
            Invalid::DefinedTwice { .. } => "defined-twice",
            Invalid::Conflicted { .. } => "conflicted",
            Invalid::NoRules => "no-rules",
            Invalid::DuplicateMatch { .. } => "duplicate-match",
            Invalid::Weight { .. } => "weight-out-of-range",
            Invalid::ServiceAndAddress => "service-and-address",
            Invalid::NoBackendRef { .. } => "no-backend-ref",
            Invalid::ServiceNeedsCluster(_) => "service-needs-cluster",
            Invalid::StaticNotAllowed => "static-not-allowed",
            Invalid::EmptyServiceName => "empty-service-name",
            Invalid::PortMissing => "port-missing",
            Invalid::EmptyPortName => "empty-port-name",
            Invalid::PortNumber(_) => "invalid-port",
            Invalid::HashOnMissing => "hash-on-missing",
            Invalid::HashOnUnused(_) => "hash-on-unused",
            Invalid::NameNeeded => "name-needed",
            Invalid::NameUnused => "name-unused",
            Invalid::HashQueryName(_) => "invalid-hash-query-name",
            Invalid::RedirectWithBackends => "redirect-with-backends",
            Invalid::RedirectWithRewrite => "redirect-with-rewrite",
            Invalid::AtLeastOne => "at-least-one",
            Invalid::Needs { .. } => "field-needed",
            Invalid::HeaderUnused => "header-unused",
            Invalid::HostHeader => "host-header",
            Invalid::ManagedHeader(_) => "managed-header",
            Invalid::QueryName(_) => "invalid-query-name",
            Invalid::RedirectStatus(_) => "invalid-redirect-status",
            Invalid::Scheme(_) => "invalid-scheme",
            Invalid::RedirectHostname(_) => "invalid-redirect-hostname",
            Invalid::RewriteHostname(_) => "invalid-rewrite-hostname",
            Invalid::ZeroPort => "zero-port",
            Invalid::PrefixRewriteNeedsPrefix => "prefix-rewrite-needs-prefix-match",
            Invalid::TooManyRetries { .. } => "too-many-retries",
            Invalid::RetryStatus(_) => "invalid-retry-status",
            Invalid::Percent(_) => "invalid-percent",
            Invalid::EjectedPercent(_) => "invalid-ejected-percent",
            Invalid::ProbePathRelative(_) => "relative-probe-path",
            Invalid::ProbePath(_) => "invalid-probe-path",
            Invalid::TimeoutOverInterval { .. } => "timeout-over-interval",
            Invalid::Status(_) => "invalid-status",
            Invalid::StatusRange { .. } => "status-range",
            Invalid::EjectionRange { .. } => "ejection-range",
        }
    }
}
