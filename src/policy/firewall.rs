//! The per-rule firewall.
//!
//! Owns: the compiled [`Firewall`] (CIDRs parsed, path prefixes checked,
//! header regexes compiled, methods parsed — all at compile) and judging a
//! request against it. Must not: parse configuration per request, or decide
//! who the client is (that is `policy::client`).

pub(crate) mod readings;

use std::net::IpAddr;

use http::{HeaderMap, Method};
use ipnet::IpNet;

/// The CIDR parser, at its old path (tests/support uses it); it lives in
/// `api::values`.
use crate::api::values::parse_cidr;
use crate::api::values::parse_method;
use crate::api::{self, PathMatchType};
use crate::diagnostic::{FieldPath, Problems};
use crate::matching::{HeaderMatcher, PathMatcher, Regexes};

/// A compiled firewall; see [`api::Firewall`] for the rules.
#[derive(Debug, Clone, Default)]
pub struct Firewall {
    allow: Box<[IpNet]>,
    deny: Box<[IpNet]>,
    deny_paths: Box<[PathMatcher]>,
    deny_headers: Box<[HeaderMatcher]>,
    methods: Box<[Method]>,
}

/// Why the firewall refused a request, for logs (the client only sees 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `allow` is set and the client is not in it.
    NotAllowed,
    /// The client is in `deny`.
    DeniedAddress,
    /// The path is under a `denyPaths` prefix.
    DeniedPath,
    /// A `denyHeaders` condition matched.
    DeniedHeader,
    /// The method is not in `methods`.
    Method,
}

impl Denied {
    /// A short, stable label.
    pub fn reason(self) -> &'static str {
        match self {
            Denied::NotAllowed => "not_allowed",
            Denied::DeniedAddress => "denied_address",
            Denied::DeniedPath => "denied_path",
            Denied::DeniedHeader => "denied_header",
            Denied::Method => "method_not_allowed",
        }
    }
}

impl Firewall {
    /// Compiles `spec`; problems are pushed to `errors`, each naming its
    /// field under `at` (e.g. `spec.rules[0].firewall`).
    pub fn compile(spec: &api::Firewall, at: impl Into<FieldPath>, errors: &mut Problems) -> Self {
        Self::compile_with(spec, at, &mut Regexes::default(), errors)
    }

    /// [`Firewall::compile`], its patterns through `regexes` (compiled
    /// once per table).
    pub fn compile_with(
        spec: &api::Firewall,
        at: impl Into<FieldPath>,
        regexes: &mut Regexes<'_>,
        errors: &mut Problems,
    ) -> Self {
        let at = at.into();
        let mut cidrs = |list: &[String], name: &str| -> Box<[IpNet]> {
            let mut out = Vec::with_capacity(list.len());
            for (i, text) in list.iter().enumerate() {
                out.extend(errors.check(|| at.key(name).index(i), parse_cidr(text)));
            }
            out.into()
        };
        let allow = cidrs(&spec.allow, "allow");
        let deny = cidrs(&spec.deny, "deny");
        let mut deny_paths = Vec::with_capacity(spec.deny_paths.len());
        for (i, path) in spec.deny_paths.iter().enumerate() {
            let compiled = PathMatcher::new(PathMatchType::Prefix, path);
            deny_paths.extend(errors.check(|| at.key("denyPaths").index(i), compiled));
        }
        let mut deny_headers = Vec::with_capacity(spec.deny_headers.len());
        for (i, h) in spec.deny_headers.iter().enumerate() {
            match HeaderMatcher::compile(h.kind, &h.name, &h.value, regexes) {
                Ok(m) => deny_headers.push(m),
                Err(e) => errors.push(at.key("denyHeaders").index(i).key(e.0), e.1),
            }
        }
        // The same parser as a route match's `methods`: `get` is refused
        // as a typo there, so it is here (it would deny every GET).
        let mut methods = Vec::with_capacity(spec.methods.len());
        for (i, method) in spec.methods.iter().enumerate() {
            match errors.check(|| at.key("methods").index(i), parse_method(method)) {
                Some(m) if !methods.contains(&m) => methods.push(m),
                _ => {}
            }
        }
        Firewall {
            allow,
            deny,
            deny_paths: deny_paths.into(),
            deny_headers: deny_headers.into(),
            methods: methods.into(),
        }
    }

    /// Judges a request: `Ok` to let it through, else why not.
    pub fn check(
        &self,
        client: IpAddr,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(), Denied> {
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&client)) {
            return Err(Denied::NotAllowed);
        }
        if self.deny.iter().any(|n| n.contains(&client)) {
            return Err(Denied::DeniedAddress);
        }
        if !self.deny_paths.is_empty() && self.denies_path(path) {
            return Err(Denied::DeniedPath);
        }
        if self.deny_headers.iter().any(|h| h.matches(headers)) {
            return Err(Denied::DeniedHeader);
        }
        if !self.methods.is_empty() && !self.methods.contains(method) {
            return Err(Denied::Method);
        }
        Ok(())
    }

    /// Whether any reading of `path` an origin may make is under a
    /// `denyPaths` prefix: `/a/../admin`, `//admin`, `/%61dmin`,
    /// `/admin%2Fx`, `/x/..%5Cadmin`, `/admin;x` and `/..;/admin` must not
    /// slip past `/admin` (see [`readings`]).
    fn denies_path(&self, path: &str) -> bool {
        readings::any_reading(path, |read| self.deny_paths.iter().any(|p| p.matches(read)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{HeaderMatch, HeaderMatchType};
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_v4_v6_and_bare_addresses() {
        for (text, want) in [
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("10.1.2.3/8", Ok("10.0.0.0/8")),
            ("2001:db8::/32", Ok("2001:db8::/32")),
            ("192.0.2.7", Ok("192.0.2.7/32")),
            ("::1", Ok("::1/128")),
            ("10.0.0.300/8", Err(())),
            ("10.0.0.0/33", Err(())),
            ("nonsense", Err(())),
        ] {
            let got = parse_cidr(text).map(|n| n.to_string()).map_err(|_| ());
            assert_eq!(got, want.map(str::to_owned), "case {text}");
        }
    }

    fn firewall(spec: api::Firewall) -> Firewall {
        let mut errors = crate::diagnostic::Problems::default();
        let fw = Firewall::compile(&spec, "fw", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        fw
    }

    #[test]
    fn firewall_rules_each_refuse_their_requests() {
        let fw = firewall(api::Firewall {
            allow: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            deny: vec!["10.192.0.0/16".into()],
            deny_paths: vec!["/admin".into()],
            deny_headers: vec![HeaderMatch {
                kind: HeaderMatchType::RegularExpression,
                name: "User-Agent".into(),
                value: "BadBot.*".into(),
            }],
            methods: vec!["GET".into(), "HEAD".into()],
        });
        let mut bad_ua = HeaderMap::new();
        bad_ua.insert("user-agent", HeaderValue::from_static("BadBot/2.0"));
        let get = Method::GET;
        let none = HeaderMap::new();
        for (case, client, method, path, headers, want) in [
            ("allowed v4", "10.1.1.1", &get, "/x", &none, Ok(())),
            ("allowed v6", "2001:db8::9", &get, "/x", &none, Ok(())),
            (
                "outside allow",
                "55.55.55.55",
                &get,
                "/x",
                &none,
                Err(Denied::NotAllowed),
            ),
            (
                "outside allow v6",
                "2001:db9::1",
                &get,
                "/x",
                &none,
                Err(Denied::NotAllowed),
            ),
            (
                "deny beats allow",
                "10.192.0.1",
                &get,
                "/x",
                &none,
                Err(Denied::DeniedAddress),
            ),
            (
                "denied path",
                "10.1.1.1",
                &get,
                "/admin/users",
                &none,
                Err(Denied::DeniedPath),
            ),
            (
                "path prefix is segment-wise",
                "10.1.1.1",
                &get,
                "/administrator",
                &none,
                Ok(()),
            ),
            (
                "denied header",
                "10.1.1.1",
                &get,
                "/x",
                &bad_ua,
                Err(Denied::DeniedHeader),
            ),
            (
                "method",
                "10.1.1.1",
                &Method::POST,
                "/x",
                &none,
                Err(Denied::Method),
            ),
        ] {
            assert_eq!(
                fw.check(ip(client), method, path, headers),
                want,
                "case {case}"
            );
        }
    }

    #[test]
    fn invalid_firewall_fields_are_each_named() {
        let mut errors = crate::diagnostic::Problems::default();
        Firewall::compile(
            &api::Firewall {
                allow: vec!["10.0.0.0/8".into(), "10.0.0.300/8".into()],
                deny: vec!["x".into()],
                deny_paths: vec!["admin".into()],
                deny_headers: vec![HeaderMatch {
                    kind: HeaderMatchType::RegularExpression,
                    name: "user-agent".into(),
                    value: "(".into(),
                }],
                methods: vec!["G T".into()],
            },
            "spec.rules[0].firewall",
            &mut errors,
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.rules[0].firewall.allow[1]",
                "spec.rules[0].firewall.deny[0]",
                "spec.rules[0].firewall.denyPaths[0]",
                "spec.rules[0].firewall.denyHeaders[0].value",
                "spec.rules[0].firewall.methods[0]",
            ]
        );
        assert!(errors[0].message.contains("\"10.0.0.300/8\" is not a CIDR"));
    }

    #[test]
    fn firewall_method_typo_is_refused_like_a_route_match_typo() {
        let mut errors = crate::diagnostic::Problems::default();
        let spec = api::Firewall {
            methods: vec!["POST".into(), "get".into()],
            ..api::Firewall::default()
        };
        Firewall::compile(&spec, "spec.rules[0].firewall", &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.rules[0].firewall.methods[1]");
        assert_eq!(errors[0].code, "method-case");
        assert_eq!(
            errors[0].message,
            "methods are case-sensitive: \"get\" never matches; use \"GET\""
        );
    }
}
