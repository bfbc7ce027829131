//! Path and host rewrites.
//!
//! Owns: [`PathRewrite`] and [`HostRewrite`] — compiled (paths checked,
//! regexes compiled, hostnames validated) once — and the fns that apply
//! them to a request. Must not: compile a
//! regex or validate configuration per request.

use std::borrow::Cow;
use std::net::IpAddr;

use http::uri::Authority;
use http::HeaderValue;
use regex::Regex;

use crate::api::values::{parse_regex, PathError};
use crate::api::{self, PathModifierType};
use crate::diagnostic::{FieldPath, Invalid, Problems};
use crate::matching::HostKey;

/// A compiled path change.
#[derive(Debug, Clone)]
pub enum PathRewrite {
    /// Replace the part matched by the rule's `Prefix` match; stored
    /// without a trailing `/` (`""` for `/`).
    ReplacePrefix(Box<str>),
    /// Replace the whole path.
    ReplaceFull(Box<str>),
    /// Replace the first match of `pattern` with `substitution`.
    Regex {
        /// The compiled pattern (not anchored unless written so).
        pattern: Regex,
        /// The replacement, with `$1` / `${name}` references.
        substitution: Box<str>,
    },
}

impl PathRewrite {
    /// Compiles `spec`; `prefix_matches` says whether every match of the
    /// rule is a `Prefix` match (required by `ReplacePrefixMatch`).
    pub fn compile(
        spec: &api::PathModifier,
        at: impl Into<FieldPath>,
        prefix_matches: bool,
        errors: &mut Problems,
    ) -> Option<Self> {
        let at = at.into();
        let mut err = |field: &str, reason: Invalid| {
            errors.push(at.key(field), reason);
            None
        };
        let (field, value) = match spec.kind {
            PathModifierType::ReplacePrefixMatch => {
                ("replacePrefixMatch", &spec.replace_prefix_match)
            }
            PathModifierType::ReplaceFullPath => ("replaceFullPath", &spec.replace_full_path),
            PathModifierType::RegularExpression => ("pattern", &spec.pattern),
        };
        let Some(value) = value else {
            let kind = kind_name(spec.kind);
            return err(field, Invalid::Needs { kind, field });
        };
        match spec.kind {
            PathModifierType::ReplacePrefixMatch | PathModifierType::ReplaceFullPath => {
                if let Err(e) = check_path(value, true) {
                    return err(field, e.into());
                }
                if spec.kind == PathModifierType::ReplaceFullPath {
                    return Some(PathRewrite::ReplaceFull(value.as_str().into()));
                }
                if !prefix_matches {
                    return err(field, Invalid::PrefixRewriteNeedsPrefix);
                }
                Some(PathRewrite::ReplacePrefix(
                    value.trim_end_matches('/').into(),
                ))
            }
            PathModifierType::RegularExpression => {
                let pattern = match parse_regex(value) {
                    Ok(re) => re,
                    Err(e) => return err(field, e.into()),
                };
                let Some(substitution) = &spec.substitution else {
                    let kind = kind_name(spec.kind);
                    return err(
                        "substitution",
                        Invalid::Needs {
                            kind,
                            field: "substitution",
                        },
                    );
                };
                if let Err(e) = check_path(substitution, false) {
                    return err("substitution", e.into());
                }
                Some(PathRewrite::Regex {
                    pattern,
                    substitution: substitution.as_str().into(),
                })
            }
        }
    }

    /// The new path for `path`; `prefix_len` is the length of the part the
    /// rule's `Prefix` match matched (0 for `/`).
    pub fn apply<'p>(&self, path: &'p str, prefix_len: usize) -> Cow<'p, str> {
        match self {
            PathRewrite::ReplaceFull(p) => Cow::Owned(p.to_string()),
            PathRewrite::ReplacePrefix(replacement) => {
                let rest = path.get(prefix_len..).unwrap_or("");
                let mut out = String::with_capacity(replacement.len() + rest.len() + 1);
                out.push_str(replacement);
                out.push_str(rest);
                if !out.starts_with('/') {
                    out.insert(0, '/');
                }
                Cow::Owned(out)
            }
            PathRewrite::Regex {
                pattern,
                substitution,
            } => match pattern.replace(path, &**substitution) {
                Cow::Owned(p) if !p.starts_with('/') => Cow::Owned(format!("/{p}")),
                replaced => replaced,
            },
        }
    }
}

/// Checks a configured path (or, with `absolute == false`, a fragment of
/// one): only characters a request path may hold, no query or fragment.
fn check_path(value: &str, absolute: bool) -> Result<(), PathError> {
    if absolute && !value.starts_with('/') {
        return Err(PathError::NotAbsolute(value.to_owned()));
    }
    let ok = value.bytes().all(|b| {
        b.is_ascii_graphic()
            && !matches!(
                b,
                b'?' | b'#' | b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
    });
    if ok {
        Ok(())
    } else {
        Err(PathError::NeedsEncoding(value.to_owned()))
    }
}

/// A path modifier type as the resource spells it.
fn kind_name(kind: PathModifierType) -> &'static str {
    match kind {
        PathModifierType::ReplacePrefixMatch => "ReplacePrefixMatch",
        PathModifierType::ReplaceFullPath => "ReplaceFullPath",
        PathModifierType::RegularExpression => "RegularExpression",
    }
}

/// What `Host` the backend gets.
#[derive(Debug, Clone)]
pub enum HostRewrite {
    /// This fixed value.
    Hostname(HeaderValue),
    /// The chosen endpoint's `host:port`.
    BackendAddress,
}

impl HostRewrite {
    /// Compiles `spec`; problems go to `errors`, named under `at`.
    pub fn compile(
        spec: &api::HostRewrite,
        at: impl Into<FieldPath>,
        errors: &mut Problems,
    ) -> Option<Self> {
        let at = at.into();
        match spec.kind {
            api::HostRewriteType::BackendAddress => Some(HostRewrite::BackendAddress),
            api::HostRewriteType::Hostname => {
                let Some(hostname) = &spec.hostname else {
                    let needs = Invalid::Needs {
                        kind: "Hostname",
                        field: "hostname",
                    };
                    errors.push(at.key("hostname"), needs);
                    return None;
                };
                let valid = hostname
                    .parse::<Authority>()
                    .ok()
                    .filter(|a| !hostname.contains('@') && valid_host(a.host()))
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
                if valid.is_none() {
                    let invalid = Invalid::RewriteHostname(hostname.clone());
                    errors.push(at.key("hostname"), invalid);
                }
                valid.map(HostRewrite::Hostname)
            }
        }
    }
}

/// Whether `host` is a DNS name or an IP address (IPv6 maybe bracketed).
pub(crate) fn valid_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok() || matches!(HostKey::parse(host), Ok(HostKey::Exact(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modifier(
        kind: PathModifierType,
        value: &str,
        substitution: Option<&str>,
    ) -> api::PathModifier {
        api::PathModifier {
            kind,
            replace_prefix_match: (kind == PathModifierType::ReplacePrefixMatch)
                .then(|| value.into()),
            replace_full_path: (kind == PathModifierType::ReplaceFullPath).then(|| value.into()),
            pattern: (kind == PathModifierType::RegularExpression).then(|| value.into()),
            substitution: substitution.map(Into::into),
        }
    }

    fn rewrite(kind: PathModifierType, value: &str, substitution: Option<&str>) -> PathRewrite {
        let mut errors = crate::diagnostic::Problems::default();
        let r = PathRewrite::compile(&modifier(kind, value, substitution), "p", true, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        r.unwrap()
    }

    #[test]
    fn path_rewrite_cases() {
        use PathModifierType::*;
        for (case, kind, value, sub, path, prefix_len, want) in [
            (
                "prefix /v1 → /v2",
                ReplacePrefixMatch,
                "/v2",
                None,
                "/v1/users",
                3,
                "/v2/users",
            ),
            (
                "prefix alone",
                ReplacePrefixMatch,
                "/v2",
                None,
                "/v1",
                3,
                "/v2",
            ),
            (
                "prefix keeps trailing slash",
                ReplacePrefixMatch,
                "/v2",
                None,
                "/v1/",
                3,
                "/v2/",
            ),
            (
                "prefix to /",
                ReplacePrefixMatch,
                "/",
                None,
                "/api/users",
                4,
                "/users",
            ),
            (
                "prefix to / alone",
                ReplacePrefixMatch,
                "/",
                None,
                "/api",
                4,
                "/",
            ),
            (
                "replacement's slash not doubled",
                ReplacePrefixMatch,
                "/v2/",
                None,
                "/v1/x",
                3,
                "/v2/x",
            ),
            (
                "root prefix",
                ReplacePrefixMatch,
                "/app",
                None,
                "/x/y",
                0,
                "/app/x/y",
            ),
            (
                "full",
                ReplaceFullPath,
                "/maintenance",
                None,
                "/any/thing",
                0,
                "/maintenance",
            ),
            (
                "regex v1 → v2",
                RegularExpression,
                "^/v1/(.*)",
                Some("/v2/$1"),
                "/v1/a/b",
                0,
                "/v2/a/b",
            ),
            (
                "regex no match",
                RegularExpression,
                "^/v1/(.*)",
                Some("/v2/$1"),
                "/v3/a",
                0,
                "/v3/a",
            ),
            (
                "regex first match only",
                RegularExpression,
                "o",
                Some("0"),
                "/foo",
                0,
                "/f0o",
            ),
            (
                "regex result keeps leading slash",
                RegularExpression,
                "^/",
                Some(""),
                "/a",
                0,
                "/a",
            ),
        ] {
            let r = rewrite(kind, value, sub);
            assert_eq!(r.apply(path, prefix_len), want, "case {case}");
        }
    }

    #[test]
    fn invalid_path_rewrites_are_named() {
        use PathModifierType::*;
        for (case, m, prefix_ok, field) in [
            (
                "relative",
                modifier(ReplaceFullPath, "x", None),
                true,
                "p.replaceFullPath",
            ),
            (
                "query",
                modifier(ReplaceFullPath, "/a?b", None),
                true,
                "p.replaceFullPath",
            ),
            (
                "bad regex",
                modifier(RegularExpression, "(", Some("/")),
                true,
                "p.pattern",
            ),
            (
                "no substitution",
                modifier(RegularExpression, "a", None),
                true,
                "p.substitution",
            ),
            (
                "prefix on non-prefix rule",
                modifier(ReplacePrefixMatch, "/v2", None),
                false,
                "p.replacePrefixMatch",
            ),
            (
                "missing value",
                api::PathModifier {
                    replace_full_path: None,
                    ..modifier(ReplaceFullPath, "/", None)
                },
                true,
                "p.replaceFullPath",
            ),
        ] {
            let mut errors = crate::diagnostic::Problems::default();
            assert!(
                PathRewrite::compile(&m, "p", prefix_ok, &mut errors).is_none(),
                "case {case}"
            );
            assert_eq!(errors.len(), 1, "case {case}");
            assert_eq!(errors[0].field, field, "case {case}");
        }
    }
}
