//! HTTPS for a route's hosts: which certificate, the plain-HTTP redirect
//! and HSTS.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// HTTPS for the route's hosts.
///
/// The shape of Ingress's `spec.tls[].secretName`, which operators know:
/// a route names one certificate, a `kubernetes.io/tls` Secret (`tls.crt`
/// and `tls.key`) in the route's own namespace. Standalone, the Secret is
/// a `kind: Secret` document in the route files. A name with a namespace
/// (`other/cert`) is refused: there are no cross-namespace reads.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTls {
    /// The `kubernetes.io/tls` Secret in the route's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Whether plain-HTTP requests for the route's hosts are redirected to
    /// HTTPS with 308 (default `true`, as ingress-nginx's `ssl-redirect`).
    /// `/.well-known/acme-challenge/` is never redirected, so HTTP-01
    /// challenges still reach their solver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
    /// `Strict-Transport-Security` on HTTPS responses; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<Hsts>,
}

/// The `Strict-Transport-Security` header a route sends over HTTPS.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hsts {
    /// `max-age` in seconds; default 31536000 (one year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 63072000))]
    pub max_age_seconds: Option<i64>,
    /// Adds `includeSubDomains` (default `false`: it binds every subdomain,
    /// including ones this proxy does not serve).
    #[serde(default)]
    pub include_sub_domains: bool,
}

impl RouteTls {
    /// Whether plain HTTP is redirected to HTTPS.
    pub fn redirects(&self) -> bool {
        self.https_redirect.unwrap_or(true)
    }
}

impl Hsts {
    /// The default `max-age`: one year.
    pub const DEFAULT_MAX_AGE: i64 = 31_536_000;
}
