//! What a rule changes on the way through: header and query changes,
//! rewrites, and redirects (Gateway API filters).

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Header changes: `remove` first, then `set`, then `add`. Names are
/// case-insensitive; values must be valid header values. `Host` (see
/// `rewrite.host`) and framing/connection headers (`Content-Length`,
/// `Transfer-Encoding`, `Connection`, `Keep-Alive`, `TE`, `Trailer`,
/// `Upgrade`, `Proxy-Connection`) cannot be changed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
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
