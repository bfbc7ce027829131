//! Request matching: compiled host keys, path/header/method matchers and the
//! precedence order between them.
//!
//! Everything here is built at compile; matching a request reads the
//! compiled form and allocates nothing (hosts are lowercased into a stack
//! buffer).

use std::cmp::Reverse;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use regex::Regex;

use crate::api::{HeaderMatchType, PathMatchType};
use crate::snapshot::Age;

/// Longest DNS name; longer Host values cannot match any route.
const MAX_HOST: usize = 253;

/// Normalises a request's host for lookup: the port is dropped, ASCII is
/// lowercased (into `buf`, no allocation) and a trailing dot removed.
/// Returns `None` for hosts no route can name.
pub fn request_host<'b>(raw: &str, buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    let host = if raw.starts_with('[') {
        // IPv6 literal: routes name DNS hosts only.
        return None;
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST {
        return None;
    }
    let out = &mut buf[..host.len()];
    out.copy_from_slice(host.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// A host a route claims, validated and lowercased at compile.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostKey {
    /// `www.mango.com`
    Exact(Box<str>),
    /// `*.mango.com`, stored as its suffix `.mango.com`.
    Wildcard(Box<str>),
    /// The route names no host: it serves hosts no other route names.
    Any,
}

impl HostKey {
    /// Validates a `spec.hosts` entry.
    pub fn parse(host: &str) -> Result<Self, String> {
        let lower = host.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower),
        };
        if name.is_empty() || name.len() > MAX_HOST - 2 {
            return Err("a host must be a DNS name of 1 to 251 characters".to_owned());
        }
        for label in name.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!(
                    "{host:?} is not a valid host: use a DNS name like www.example.com, \
                     optionally with one leading wildcard label (*.example.com)"
                ));
            }
        }
        Ok(if wild {
            HostKey::Wildcard(format!(".{name}").into())
        } else {
            HostKey::Exact(name.into())
        })
    }
}

impl std::fmt::Display for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKey::Exact(h) => f.write_str(h),
            HostKey::Wildcard(suffix) => write!(f, "*{suffix}"),
            HostKey::Any => f.write_str("(any host)"),
        }
    }
}

/// A compiled path condition.
#[derive(Debug, Clone)]
pub enum PathMatcher {
    /// Equal to the path.
    Exact(Box<str>),
    /// Segment-wise prefix, stored without its trailing `/` (`""` is `/`).
    Prefix(Box<str>),
    /// Anchored regular expression over the whole path.
    Regex(Regex),
}

impl PathMatcher {
    /// Validates and compiles a path condition.
    pub fn new(kind: PathMatchType, value: &str) -> Result<Self, String> {
        match kind {
            PathMatchType::Exact | PathMatchType::Prefix => {
                if !value.starts_with('/') {
                    return Err(format!("{value:?} must start with '/'"));
                }
                if value.contains(['?', '#']) || value.chars().any(char::is_whitespace) {
                    return Err(format!(
                        "{value:?} must be a path without query, fragment or spaces"
                    ));
                }
                Ok(if kind == PathMatchType::Exact {
                    PathMatcher::Exact(value.into())
                } else {
                    PathMatcher::Prefix(value.trim_end_matches('/').into())
                })
            }
            PathMatchType::RegularExpression => compile_regex(value).map(PathMatcher::Regex),
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

/// Compiles `pattern` to match a whole string. The error is one line and
/// speaks of the user's pattern, not the anchored form compiled here.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    let invalid = |err: regex::Error| {
        let text = err.to_string();
        // Syntax errors are multi-line drawings ending in "error: <what>".
        let what = text
            .lines()
            .rev()
            .find_map(|line| line.trim().strip_prefix("error: "))
            .unwrap_or(text.lines().next().unwrap_or("invalid"))
            .to_owned();
        format!("{pattern:?} is not a valid regular expression: {what}")
    };
    Regex::new(pattern).map_err(invalid)?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(invalid)
}

/// A compiled header condition.
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    name: HeaderName,
    value: HeaderValueMatcher,
}

#[derive(Debug, Clone)]
enum HeaderValueMatcher {
    Exact(HeaderValue),
    Regex(Regex),
}

impl HeaderMatcher {
    /// Validates and compiles a header condition; the error names the
    /// sub-field (`name` or `value`).
    pub fn new(
        kind: HeaderMatchType,
        name: &str,
        value: &str,
    ) -> Result<Self, (&'static str, String)> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ("name", format!("{name:?} is not a valid header name")))?;
        let value = match kind {
            HeaderMatchType::Exact => HeaderValueMatcher::Exact(
                HeaderValue::from_str(value)
                    .map_err(|_| ("value", format!("{value:?} is not a valid header value")))?,
            ),
            HeaderMatchType::RegularExpression => {
                HeaderValueMatcher::Regex(compile_regex(value).map_err(|e| ("value", e))?)
            }
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
}

/// One compiled `matches[]` entry.
#[derive(Debug, Clone)]
pub struct RequestMatch {
    /// The path condition.
    pub path: PathMatcher,
    /// Accepted methods; empty = all.
    pub methods: Box<[Method]>,
    /// Header conditions, all required.
    pub headers: Box<[HeaderMatcher]>,
}

impl RequestMatch {
    /// Whether a request satisfies every condition.
    pub fn matches(&self, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && self.path.matches(path)
            && self.headers.iter().all(|h| h.matches(headers))
    }

    /// With a `Prefix` path condition, the length of the prefix a matching
    /// path starts with (without its trailing `/`; 0 for `/`).
    pub fn prefix_len(&self) -> Option<usize> {
        match &self.path {
            PathMatcher::Prefix(p) => Some(p.len()),
            _ => None,
        }
    }

    /// This match's precedence; lower sorts first and wins.
    pub fn rank(&self, age: Age, resource: &str, rule: usize, index: usize) -> Rank {
        let (path_kind, prefix_len) = match &self.path {
            PathMatcher::Exact(p) => (0, p.len()),
            PathMatcher::Prefix(p) => (1, p.len()),
            PathMatcher::Regex(_) => (2, 0),
        };
        Rank {
            path_kind,
            prefix_len: Reverse(prefix_len),
            any_method: self.methods.is_empty(),
            headers: Reverse(self.headers.len()),
            age,
            resource: resource.into(),
            rule,
            index,
        }
    }
}

/// Precedence between matches, written once (Gateway API order): Exact path
/// before Prefix before RegularExpression; a longer prefix first; a method
/// condition before none; more header conditions first; then the older
/// route, then namespace/name, then declaration order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    path_kind: u8,
    prefix_len: Reverse<usize>,
    any_method: bool,
    headers: Reverse<usize>,
    age: Age,
    resource: Box<str>,
    rule: usize,
    index: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_host_drops_port_case_and_trailing_dot() {
        let mut buf = [0; MAX_HOST];
        for (raw, want) in [
            ("www.Mango.COM", Some("www.mango.com")),
            ("www.mango.com:8080", Some("www.mango.com")),
            ("www.mango.com.", Some("www.mango.com")),
            ("[::1]:80", None),
            ("", None),
        ] {
            assert_eq!(request_host(raw, &mut buf), want, "case {raw:?}");
        }
    }

    #[test]
    fn host_keys_validate_and_normalise() {
        assert_eq!(
            HostKey::parse("WWW.Mango.com"),
            Ok(HostKey::Exact("www.mango.com".into()))
        );
        assert_eq!(
            HostKey::parse("*.mango.com"),
            Ok(HostKey::Wildcard(".mango.com".into()))
        );
        for bad in [
            "", "*", "a.*.com", "-a.com", "a..com", "a b.com", "**.a.com",
        ] {
            assert!(HostKey::parse(bad).is_err(), "case {bad:?}");
        }
    }

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
        let message = compile_regex("/(unclosed").unwrap_err();
        assert_eq!(
            message,
            "\"/(unclosed\" is not a valid regular expression: unclosed group"
        );
    }

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
