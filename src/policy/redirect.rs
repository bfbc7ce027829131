//! Redirects: a rule that answers with `Location` instead of forwarding.
//!
//! Owns: [`Redirect`] — status code, scheme, hostname, port and path change
//! validated once, at compile — and building the `Location` of a request.
//! Must not: validate configuration per request.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode};

use super::rewrite::{valid_host, PathRewrite};
use crate::api;
use crate::api::values::split_host_port;
use crate::diagnostic::{FieldPath, Invalid, Problems};

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
        at: impl Into<FieldPath>,
        prefix_matches: bool,
        errors: &mut Problems,
    ) -> Option<Self> {
        let at = at.into();
        let before = errors.len();
        let mut err = |field: &str, reason: Invalid| errors.push(at.key(field), reason);
        let status = match spec.status_code.unwrap_or(302) {
            code @ (301 | 302 | 303 | 307 | 308) => StatusCode::from_u16(code).ok(),
            code => {
                err("statusCode", Invalid::RedirectStatus(code));
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
                let scheme = spec.scheme.as_deref().unwrap_or("");
                err("scheme", Invalid::Scheme(scheme.to_owned()));
                None
            }
        };
        let hostname = match &spec.hostname {
            None => None,
            Some(h) if !h.contains(':') && valid_host(h) => Some(h.to_ascii_lowercase().into()),
            Some(h) if h.parse::<std::net::Ipv6Addr>().is_ok() => Some(format!("[{h}]").into()),
            Some(h) => {
                err("hostname", Invalid::RedirectHostname(h.clone()));
                None
            }
        };
        if spec.port == Some(0) {
            err("port", Invalid::ZeroPort);
        }
        let path = spec
            .path
            .as_ref()
            .and_then(|p| PathRewrite::compile(p, at.key("path"), prefix_matches, errors));
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
        let (request_host, request_port) = host.map_or((None, None), host_and_port);
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
fn host_and_port(host: &str) -> (Option<&str>, Option<u16>) {
    let (h, port) = split_host_port(host);
    let h = (!h.is_empty()).then_some(h);
    (h, port.and_then(|p| p.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PathModifierType;

    fn modifier(kind: PathModifierType, value: &str) -> api::PathModifier {
        api::PathModifier {
            kind,
            replace_prefix_match: (kind == PathModifierType::ReplacePrefixMatch)
                .then(|| value.into()),
            replace_full_path: (kind == PathModifierType::ReplaceFullPath).then(|| value.into()),
            pattern: None,
            substitution: None,
        }
    }

    fn redirect(spec: api::Redirect) -> Redirect {
        let mut errors = crate::diagnostic::Problems::default();
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
            path: Some(modifier(PathModifierType::ReplacePrefixMatch, "/new")),
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
            path: Some(modifier(PathModifierType::ReplaceFullPath, "/x")),
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
        let mut errors = crate::diagnostic::Problems::default();
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
