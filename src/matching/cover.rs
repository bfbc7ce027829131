//! Shadowing: whether one match selects every request another selects, so
//! that the other, ranked after it, can never be chosen. Compile reports
//! such rules (`switchyard check`, the `RulesReachable` condition) and
//! `explain` names them; both call [`RequestMatch::covers`].
//!
//! The answer is conservative: `true` only when it is certain (a regular
//! expression is only read for a literal start), so a rule reported as
//! never matching never does; some unreachable rules go unreported (one
//! covered by several earlier matches together, say).

use std::fmt;

use super::{PathMatcher, RequestMatch};

impl RequestMatch {
    /// Whether every request `other` selects, `self` selects too.
    pub fn covers(&self, other: &RequestMatch) -> bool {
        let methods = self.methods.is_empty()
            || (!other.methods.is_empty()
                && other.methods.iter().all(|m| self.methods.contains(m)));
        methods
            && self.path.covers(&other.path)
            && (self.headers.iter()).all(|h| other.headers.iter().any(|o| h.same_condition(o)))
    }
}

impl PathMatcher {
    /// Whether every path `other` matches, `self` matches too.
    pub fn covers(&self, other: &PathMatcher) -> bool {
        match (self, other) {
            (PathMatcher::Exact(a), PathMatcher::Exact(b)) => a == b,
            // Every path under `b` is under `self` when `b` itself is.
            (PathMatcher::Prefix(_), PathMatcher::Exact(b) | PathMatcher::Prefix(b)) => {
                self.matches(b)
            }
            (PathMatcher::Regex(a), PathMatcher::Exact(b)) => a.is_match(b),
            (PathMatcher::Regex(a), PathMatcher::Regex(b)) => a.as_str() == b.as_str(),
            (_, PathMatcher::Regex(b)) => {
                let (start, whole) = literal_start(b.as_str());
                match self {
                    PathMatcher::Exact(a) => whole && start == **a,
                    // Every match starts with `start`: under the prefix
                    // when `start` is `prefix/...` (or is the prefix).
                    PathMatcher::Prefix(p) => {
                        (whole && self.matches(&start))
                            || start.strip_prefix(&**p).is_some_and(|r| r.starts_with('/'))
                    }
                    PathMatcher::Regex(_) => false,
                }
            }
            (PathMatcher::Exact(_) | PathMatcher::Regex(_), PathMatcher::Prefix(_)) => false,
        }
    }
}

/// The text every match of `pattern` starts with, and whether the pattern
/// is that text alone. Read only as far as plain characters go; a pattern
/// with an alternation anywhere has no certain start.
fn literal_start(pattern: &str) -> (String, bool) {
    if pattern.contains('|') {
        return (String::new(), false);
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/_-~%:@,;=!'&".contains(c);
    let end = pattern.find(|c| !plain(c)).unwrap_or(pattern.len());
    let mut start = pattern[..end].to_owned();
    // `a?`, `a*` and `a{0,1}` may leave out the last plain character.
    if pattern[end..].starts_with(['?', '*', '{']) {
        start.pop();
        return (start, false);
    }
    (start, end == pattern.len())
}

/// `Exact /a`, `Prefix /a` (`Prefix /` for the root), `RegularExpression
/// pattern`.
impl fmt::Display for PathMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathMatcher::Exact(p) => write!(f, "Exact {p}"),
            PathMatcher::Prefix(p) if p.is_empty() => f.write_str("Prefix /"),
            PathMatcher::Prefix(p) => write!(f, "Prefix {p}"),
            PathMatcher::Regex(re) => write!(f, "RegularExpression {}", re.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{HeaderMatchType, PathMatchType};
    use crate::matching::HeaderMatcher;
    use http::Method;

    fn path(kind: PathMatchType, value: &str) -> PathMatcher {
        PathMatcher::new(kind, value).unwrap()
    }

    #[test]
    fn a_path_covers_only_what_it_surely_matches() {
        use PathMatchType::{Exact, Prefix, RegularExpression as Re};
        for (a, b, want) in [
            ((Prefix, "/"), (Prefix, "/api"), true),
            ((Prefix, "/api"), (Prefix, "/api/"), true),
            ((Prefix, "/api"), (Prefix, "/apix"), false),
            ((Prefix, "/api"), (Exact, "/api/v1"), true),
            ((Exact, "/a"), (Exact, "/a"), true),
            ((Exact, "/a"), (Exact, "/b"), false),
            ((Re, "/v[0-9]+"), (Exact, "/v2"), true),
            ((Prefix, "/"), (Re, "/api/.*"), true),
            ((Prefix, "/api"), (Re, "/api/.*"), true),
            ((Prefix, "/api"), (Re, "/api"), true),
            ((Prefix, "/api"), (Re, "/apix.*"), false),
            ((Prefix, "/api"), (Re, "/api/?x"), false),
            ((Prefix, "/"), (Re, "/?x"), false),
            ((Prefix, "/"), (Re, "/a|b"), false),
            ((Prefix, "/"), (Re, ".*"), false),
            ((Exact, "/a"), (Re, "/a"), true),
            ((Re, "/a.*"), (Re, "/a.*"), true),
            ((Re, "/.*"), (Prefix, "/a"), false),
        ] {
            let (a, b) = (path(a.0, a.1), path(b.0, b.1));
            assert_eq!(a.covers(&b), want, "{a} covers {b}");
        }
    }

    #[test]
    fn a_match_covers_when_methods_and_headers_are_no_narrower() {
        let root = path(PathMatchType::Prefix, "/");
        let header = |v: &str| HeaderMatcher::new(HeaderMatchType::Exact, "x-canary", v).unwrap();
        let m = |methods: &[Method], headers: Vec<HeaderMatcher>| RequestMatch {
            path: root.clone(),
            methods: methods.into(),
            headers: headers.into(),
        };
        let any = m(&[], vec![]);
        let get = m(&[Method::GET], vec![]);
        let get_post = m(&[Method::GET, Method::POST], vec![]);
        let canary = m(&[], vec![header("1")]);
        assert!(any.covers(&get) && any.covers(&canary));
        assert!(get_post.covers(&get) && !get.covers(&get_post));
        assert!(!get.covers(&any), "a method condition leaves other methods");
        assert!(
            !canary.covers(&any),
            "a header condition leaves other requests"
        );
        assert!(!canary.covers(&m(&[], vec![header("2")])));
        assert!(canary.covers(&m(&[Method::GET], vec![header("1")])));
    }
}
