//! Request matching: compiled host keys, path/header/method matchers and the
//! precedence order between them.
//!
//! Owns: each matcher, parsed once with `FromStr`/`new` into a typed error
//! ([`host`], [`path`], [`header`]), a whole `matches[]` entry
//! ([`RequestMatch`]) and its precedence ([`Rank`]). Must not: know about
//! routes, rules or tables, or import anything but `api` and `snapshot` (it
//! is a leaf). Matching a request reads the compiled form and allocates
//! nothing (hosts are lowercased into a stack buffer).

mod cover;
pub mod header;
pub mod host;
pub mod path;
pub mod pattern;

use std::cmp::Reverse;

use http::{HeaderMap, Method};

pub use crate::api::values::{HeaderProblem, PathMatchError};
use crate::snapshot::Age;
pub use header::{HeaderMatchError, HeaderMatcher};
pub use host::{request_host, HostKey};
pub use path::PathMatcher;
pub use pattern::{Pattern, RegexStore, Regexes};

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
    /// Whether a request satisfies every condition: the method, the path,
    /// then the headers (the predicates `explain` reports one by one).
    pub fn matches(&self, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        self.method_matches(method) && self.path.matches(path) && self.headers_match(headers)
    }

    /// Whether the method condition holds (none: every method).
    pub fn method_matches(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }

    /// Whether every header condition holds.
    pub fn headers_match(&self, headers: &HeaderMap) -> bool {
        self.headers.iter().all(|h| h.matches(headers))
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
