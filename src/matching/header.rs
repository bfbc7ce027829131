//! Headers: a compiled header condition ([`HeaderMatcher`]).

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::pattern::{Pattern, Regexes};
use crate::api::values::{parse_header_name, parse_header_value, HeaderProblem};
use crate::api::{HeaderMatch, HeaderMatchType};

/// A compiled header condition.
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    name: HeaderName,
    value: HeaderValueMatcher,
}

#[derive(Debug, Clone)]
enum HeaderValueMatcher {
    Exact(HeaderValue),
    Regex(Arc<Pattern>),
}

/// Why a header condition does not compile: `.0` is the sub-field (`name`
/// or `value`), `.1` what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{1}")]
pub struct HeaderMatchError(pub &'static str, pub HeaderProblem);

impl HeaderMatcher {
    /// Validates and compiles a header condition; the error names the
    /// sub-field (`name` or `value`).
    pub fn new(kind: HeaderMatchType, name: &str, value: &str) -> Result<Self, HeaderMatchError> {
        Self::compile(kind, name, value, &mut Regexes::default())
    }

    /// Validates and compiles a header condition, a regular expression
    /// through `regexes` (compiled once per table).
    pub fn compile(
        kind: HeaderMatchType,
        name: &str,
        value: &str,
        regexes: &mut Regexes<'_>,
    ) -> Result<Self, HeaderMatchError> {
        let name = parse_header_name(name).map_err(|e| HeaderMatchError("name", e.into()))?;
        let value = match kind {
            HeaderMatchType::Exact => HeaderValueMatcher::Exact(
                parse_header_value(value).map_err(|e| HeaderMatchError("value", e.into()))?,
            ),
            HeaderMatchType::RegularExpression => HeaderValueMatcher::Regex(
                (regexes.compile(value)).map_err(|e| HeaderMatchError("value", e.into()))?,
            ),
        };
        Ok(HeaderMatcher { name, value })
    }

    /// Whether any value of the header satisfies the condition.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(&self.name)
            .iter()
            .any(|v| match &self.value {
                HeaderValueMatcher::Exact(want) => v == want,
                HeaderValueMatcher::Regex(re) => v.to_str().is_ok_and(|v| re.is_match(v)),
            })
    }

    /// Whether `other` is the same condition (same name, same value or
    /// pattern): a request satisfying one satisfies the other.
    pub fn same_condition(&self, other: &HeaderMatcher) -> bool {
        self.name == other.name
            && match (&self.value, &other.value) {
                (HeaderValueMatcher::Exact(a), HeaderValueMatcher::Exact(b)) => a == b,
                (HeaderValueMatcher::Regex(a), HeaderValueMatcher::Regex(b)) => {
                    a.as_str() == b.as_str()
                }
                _ => false,
            }
    }
}

/// `name: value` for an exact condition, `name ~ pattern` for a regular
/// expression (as written, without the anchors compile adds).
impl std::fmt::Display for HeaderMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            HeaderValueMatcher::Exact(v) => {
                write!(
                    f,
                    "{}: {}",
                    self.name,
                    String::from_utf8_lossy(v.as_bytes())
                )
            }
            HeaderValueMatcher::Regex(re) => {
                write!(f, "{} ~ {}", self.name, re.as_str())
            }
        }
    }
}

impl TryFrom<&HeaderMatch> for HeaderMatcher {
    type Error = HeaderMatchError;

    /// Compiles a `headers[]` (or `denyHeaders[]`) entry.
    fn try_from(spec: &HeaderMatch) -> Result<Self, HeaderMatchError> {
        HeaderMatcher::new(spec.kind, &spec.name, &spec.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_match_is_case_insensitive_on_name_and_checks_every_value() {
        let m = HeaderMatcher::new(HeaderMatchType::Exact, "X-Canary", "1").unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-canary", HeaderValue::from_static("0"));
        assert!(!m.matches(&headers));
        headers.append("x-canary", HeaderValue::from_static("1"));
        assert!(m.matches(&headers));
        let re =
            HeaderMatcher::new(HeaderMatchType::RegularExpression, "user-agent", "Bad.*").unwrap();
        headers.insert("user-agent", HeaderValue::from_static("BadBot/1"));
        assert!(re.matches(&headers));
        assert_eq!(
            HeaderMatcher::new(HeaderMatchType::Exact, "bad name", "x")
                .unwrap_err()
                .0,
            "name"
        );
    }
}
