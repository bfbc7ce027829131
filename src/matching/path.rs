//! Paths: a compiled path condition ([`PathMatcher`]).

use std::sync::Arc;

use super::pattern::{Pattern, Regexes};
use crate::api::values::{PathError, PathMatchError};
use crate::api::{PathMatch, PathMatchType};

/// A compiled path condition.
#[derive(Debug, Clone)]
pub enum PathMatcher {
    /// Equal to the path.
    Exact(Box<str>),
    /// Segment-wise prefix, stored without its trailing `/` (`""` is `/`).
    Prefix(Box<str>),
    /// Anchored regular expression over the whole path.
    Regex(Arc<Pattern>),
}

impl PathMatcher {
    /// Validates and compiles a path condition.
    pub fn new(kind: PathMatchType, value: &str) -> Result<Self, PathMatchError> {
        Self::compile(kind, value, &mut Regexes::default())
    }

    /// Validates and compiles a path condition, a regular expression
    /// through `regexes` (compiled once per table).
    pub fn compile(
        kind: PathMatchType,
        value: &str,
        regexes: &mut Regexes<'_>,
    ) -> Result<Self, PathMatchError> {
        match kind {
            PathMatchType::Exact | PathMatchType::Prefix => {
                if !value.starts_with('/') {
                    return Err(PathError::NotAbsolute(value.to_owned()).into());
                }
                if value.contains(['?', '#']) || value.chars().any(char::is_whitespace) {
                    return Err(PathError::NotAPath(value.to_owned()).into());
                }
                Ok(if kind == PathMatchType::Exact {
                    PathMatcher::Exact(value.into())
                } else {
                    PathMatcher::Prefix(value.trim_end_matches('/').into())
                })
            }
            PathMatchType::RegularExpression => Ok(PathMatcher::Regex(regexes.compile(value)?)),
        }
    }

    /// Whether `path` satisfies the condition.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Exact(p) => path == &**p,
            PathMatcher::Prefix(p) => {
                path.starts_with(&**p)
                    && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
            }
            PathMatcher::Regex(re) => re.is_match(path),
        }
    }
}

impl TryFrom<&PathMatch> for PathMatcher {
    type Error = PathMatchError;

    /// Compiles a `path` condition.
    fn try_from(spec: &PathMatch) -> Result<Self, PathMatchError> {
        PathMatcher::new(spec.kind, &spec.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::values::parse_anchored_regex;

    #[test]
    fn prefix_matches_whole_segments_only() {
        let p = PathMatcher::new(PathMatchType::Prefix, "/foo").unwrap();
        let slash = PathMatcher::new(PathMatchType::Prefix, "/foo/").unwrap();
        let root = PathMatcher::new(PathMatchType::Prefix, "/").unwrap();
        for (path, want) in [
            ("/foo", true),
            ("/foo/", true),
            ("/foo/bar", true),
            ("/foobar", false),
            ("/fo", false),
            ("/", false),
        ] {
            assert_eq!(p.matches(path), want, "/foo vs {path}");
            assert_eq!(slash.matches(path), want, "/foo/ vs {path}");
            assert!(root.matches(path), "/ vs {path}");
        }
    }

    #[test]
    fn exact_and_regex_match_the_whole_path() {
        let exact = PathMatcher::new(PathMatchType::Exact, "/foo").unwrap();
        assert!(exact.matches("/foo"));
        assert!(!exact.matches("/foo/"));
        let re = PathMatcher::new(PathMatchType::RegularExpression, "/v[0-9]+").unwrap();
        assert!(re.matches("/v12"));
        assert!(!re.matches("/v12/x"), "regex is anchored at the end");
        assert!(!re.matches("/x/v12"), "regex is anchored at the start");
    }

    #[test]
    fn invalid_paths_and_regexes_are_rejected() {
        for (kind, value) in [
            (PathMatchType::Prefix, "foo"),
            (PathMatchType::Exact, "/a?b=1"),
            (PathMatchType::RegularExpression, "/(unclosed"),
        ] {
            assert!(PathMatcher::new(kind, value).is_err(), "case {value:?}");
        }
        let message = parse_anchored_regex("/(unclosed").unwrap_err();
        assert_eq!(
            message,
            "\"/(unclosed\" is not a valid regular expression: unclosed group"
        );
    }
}
