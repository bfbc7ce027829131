//! Path and host rewrites, and redirects.
//!
//! Owns: [`PathRewrite`], [`HostRewrite`] and [`Redirect`] — compiled
//! (paths checked, regexes compiled, status codes and hostnames validated)
//! once — and the fns that apply them to a request. Must not: compile a
//! regex or validate configuration per request.

use std::borrow::Cow;
use std::net::IpAddr;

use http::uri::Authority;
use http::{HeaderValue, StatusCode};
use regex::Regex;

use crate::api::{self, PathModifierType};
use crate::table::matching::{compile_regex, HostKey};
use crate::table::FieldError;

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
        at: &str,
        prefix_matches: bool,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        let mut err = |field: &str, message: String| {
            errors.push(FieldError {
                field: format!("{at}.{field}"),
                message,
            });
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
            return err(field, format!("type {:?} needs `{field}`", spec.kind));
        };
        match spec.kind {
            PathModifierType::ReplacePrefixMatch | PathModifierType::ReplaceFullPath => {
                if let Err(message) = check_path(value, true) {
                    return err(field, message);
                }
                if spec.kind == PathModifierType::ReplaceFullPath {
                    return Some(PathRewrite::ReplaceFull(value.as_str().into()));
                }
                if !prefix_matches {
                    return err(
                        field,
                        "ReplacePrefixMatch needs every match of the rule to be a Prefix path match"
                            .to_owned(),
                    );
                }
                Some(PathRewrite::ReplacePrefix(
                    value.trim_end_matches('/').into(),
                ))
            }
            PathModifierType::RegularExpression => {
                let pattern = match Regex::new(value) {
                    Ok(re) => re,
                    // compile_regex words the error on one line, as
                    // everywhere else.
                    Err(e) => {
                        let message = compile_regex(value)
                            .err()
                            .unwrap_or_else(|| format!("invalid regular expression: {e}"));
                        return err(field, message);
                    }
                };
                let Some(substitution) = &spec.substitution else {
                    return err(
                        "substitution",
                        "type RegularExpression needs `substitution`".to_owned(),
                    );
                };
                if let Err(message) = check_path(substitution, false) {
                    return err("substitution", message);
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
fn check_path(value: &str, absolute: bool) -> Result<(), String> {
    if absolute && !value.starts_with('/') {
        return Err(format!("{value:?} must start with '/'"));
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
        Err(format!(
            "{value:?} must be a path: no query, fragment, spaces or characters that need encoding"
        ))
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
        at: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        match spec.kind {
            api::HostRewriteType::BackendAddress => Some(HostRewrite::BackendAddress),
            api::HostRewriteType::Hostname => {
                let Some(hostname) = &spec.hostname else {
                    errors.push(FieldError {
                        field: format!("{at}.hostname"),
                        message: "type Hostname needs `hostname`".to_owned(),
                    });
                    return None;
                };
                let valid = hostname
                    .parse::<Authority>()
                    .ok()
                    .filter(|a| !hostname.contains('@') && valid_host(a.host()))
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
                if valid.is_none() {
                    errors.push(FieldError {
                        field: format!("{at}.hostname"),
                        message: format!(
                            "{hostname:?} is not a hostname (for example api.internal or api.internal:8443)"
                        ),
                    });
                }
                valid.map(HostRewrite::Hostname)
            }
        }
    }
}

fn valid_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok() || matches!(HostKey::parse(host), Ok(HostKey::Exact(_)))
}

/// A compiled redirect.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// 301, 302, 303, 307 or 308.
    pub status: StatusCode,
    scheme: Option<&'static str>,
    hostname: Option<Box<str>>,
    port: Option<u16>,
    path: Option<PathRewrite>,
}

impl Redirect {
    /// Compiles `spec`; problems go to `errors`, named under `at`.
    pub fn compile(
        spec: &api::Redirect,
        at: &str,
        prefix_matches: bool,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        let before = errors.len();
        let mut err = |field: &str, message: String| {
            errors.push(FieldError {
                field: format!("{at}.{field}"),
                message,
            })
        };
        let status = match spec.status_code.unwrap_or(302) {
            code @ (301 | 302 | 303 | 307 | 308) => StatusCode::from_u16(code).ok(),
            code => {
                err(
                    "statusCode",
                    format!("{code} is not a redirect status: use 301, 302, 303, 307 or 308"),
                );
                None
            }
        };
        let scheme = match spec
            .scheme
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("http") => Some("http"),
            Some("https") => Some("https"),
            Some(_) => {
                err(
                    "scheme",
                    format!(
                        "{:?} is not a scheme: use http or https",
                        spec.scheme.as_deref().unwrap_or("")
                    ),
                );
                None
            }
        };
        let hostname = match &spec.hostname {
            None => None,
            Some(h) if !h.contains(':') && valid_host(h) => Some(h.to_ascii_lowercase().into()),
            Some(h) if h.parse::<std::net::Ipv6Addr>().is_ok() => Some(format!("[{h}]").into()),
            Some(h) => {
                err(
                    "hostname",
                    format!("{h:?} is not a hostname (a DNS name or an IP address, without port)"),
                );
                None
            }
        };
        if spec.port == Some(0) {
            err("port", "0 is not a port".to_owned());
        }
        let path = spec
            .path
            .as_ref()
            .and_then(|p| PathRewrite::compile(p, &format!("{at}.path"), prefix_matches, errors));
        if errors.len() > before {
            return None;
        }
        Some(Redirect {
            status: status?,
            scheme,
            hostname,
            port: spec.port,
            path,
        })
    }

    /// The `Location` for a request to `host` (its `Host`, port included)
    /// at `path?query`, which reached the proxy over plain HTTP.
    pub fn location(
        &self,
        host: Option<&str>,
        path: &str,
        query: Option<&str>,
        prefix_len: usize,
    ) -> Option<HeaderValue> {
        let (request_host, request_port) = host.map_or((None, None), split_host_port);
        let scheme = self.scheme.unwrap_or("http");
        let port = self.port.or(if self.scheme.is_some() {
            None
        } else {
            request_port
        });
        let port = port.filter(|p| *p != default_port(scheme));
        let path = match &self.path {
            Some(rewrite) => rewrite.apply(path, prefix_len),
            None => Cow::Borrowed(path),
        };
        let mut out = String::with_capacity(64 + path.len());
        if let Some(host) = self.hostname.as_deref().or(request_host) {
            out.push_str(scheme);
            out.push_str("://");
            out.push_str(host);
            if let Some(port) = port {
                out.push(':');
                out.push_str(&port.to_string());
            }
        }
        out.push_str(&path);
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        HeaderValue::from_str(&out).ok()
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// `www.x.com:8080` → (`www.x.com`, 8080); `[::1]:80` → (`[::1]`, 80).
fn split_host_port(host: &str) -> (Option<&str>, Option<u16>) {
    let (h, port) = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => (&host[..=end], host[end + 1..].strip_prefix(':')),
            None => (host, None),
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    };
    let h = (!h.is_empty()).then_some(h);
    (h, port.and_then(|p| p.parse().ok()))
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
        let mut errors = Vec::new();
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
            let mut errors = Vec::new();
            assert!(
                PathRewrite::compile(&m, "p", prefix_ok, &mut errors).is_none(),
                "case {case}"
            );
            assert_eq!(errors.len(), 1, "case {case}");
            assert_eq!(errors[0].field, field, "case {case}");
        }
    }

    fn redirect(spec: api::Redirect) -> Redirect {
        let mut errors = Vec::new();
        let r = Redirect::compile(&spec, "r", true, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        r.unwrap()
    }

    #[test]
    fn redirect_locations() {
        let https = redirect(api::Redirect {
            scheme: Some("https".into()),
            status_code: Some(301),
            ..Default::default()
        });
        assert_eq!(https.status, StatusCode::MOVED_PERMANENTLY);
        for (case, r, host, path, query, want) in [
            (
                "http → https drops the port",
                &https,
                Some("www.x.com:8080"),
                "/a",
                Some("b=1"),
                "https://www.x.com/a?b=1",
            ),
            ("no host: relative", &https, None, "/a", None, "/a"),
        ] {
            assert_eq!(
                r.location(host, path, query, 0).unwrap(),
                want,
                "case {case}"
            );
        }
        let moved = redirect(api::Redirect {
            hostname: Some("New.Example.com".into()),
            port: Some(8443),
            path: Some(modifier(PathModifierType::ReplacePrefixMatch, "/new", None)),
            ..Default::default()
        });
        assert_eq!(moved.status, StatusCode::FOUND, "302 by default");
        assert_eq!(
            moved
                .location(Some("old.example.com:8080"), "/old/page", None, 4)
                .unwrap(),
            "http://new.example.com:8443/new/page"
        );
        let same_port = redirect(api::Redirect {
            path: Some(modifier(PathModifierType::ReplaceFullPath, "/x", None)),
            ..Default::default()
        });
        assert_eq!(
            same_port
                .location(Some("[::1]:8080"), "/y", Some("q"), 0)
                .unwrap(),
            "http://[::1]:8080/x?q",
            "no scheme given: the request's port is kept"
        );
    }

    #[test]
    fn invalid_redirects_are_named() {
        let mut errors = Vec::new();
        Redirect::compile(
            &api::Redirect {
                scheme: Some("ftp".into()),
                hostname: Some("bad host".into()),
                port: Some(0),
                path: None,
                status_code: Some(200),
            },
            "spec.rules[0].redirect",
            true,
            &mut errors,
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.rules[0].redirect.statusCode",
                "spec.rules[0].redirect.scheme",
                "spec.rules[0].redirect.hostname",
                "spec.rules[0].redirect.port",
            ]
        );
    }
}
