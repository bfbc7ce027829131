//! Request conditions: which requests a rule takes (Gateway API
//! `HTTPRouteMatch` semantics).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A request condition: every field given must match.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
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
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
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
