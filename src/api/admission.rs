//! Who may use a rule: the per-rule firewall and rate limit.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::HeaderMatch;

/// Per-rule firewall. A request is refused (403) when its client address is
/// not in a non-empty `allow`, is in `deny`, its path is under a `denyPaths`
/// prefix, a `denyHeaders` entry matches, or its method is not in a
/// non-empty `methods`. The client address is the socket peer, or, when the
/// peer is one of `--trusted-proxies`, the right-most `X-Forwarded-For`
/// entry that is not itself trusted.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
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
