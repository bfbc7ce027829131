//! Hosts: the hosts a route claims ([`HostKey`]) and a request's host as a
//! lookup key ([`request_host`]).

use std::fmt;
use std::str::FromStr;

use crate::api::values::{split_host_port, HostError, MAX_HOST};

/// Normalises a request's host for lookup: the port is dropped, ASCII is
/// lowercased (into `buf`, no allocation) and a trailing dot removed.
/// Returns `None` for hosts no route can name.
pub fn request_host<'b>(raw: &str, buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    if raw.starts_with('[') {
        // IPv6 literal: routes name DNS hosts only.
        return None;
    }
    let host = match split_host_port(raw) {
        (host, Some(port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => raw,
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
    /// Validates a `spec.hosts` entry (the same as `host.parse()`).
    pub fn parse(host: &str) -> Result<Self, HostError> {
        let lower = host.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower),
        };
        if name.is_empty() || name.len() > MAX_HOST - 2 {
            return Err(HostError::Length);
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
                return Err(HostError::Invalid(host.to_owned()));
            }
        }
        Ok(if wild {
            HostKey::Wildcard(format!(".{name}").into())
        } else {
            HostKey::Exact(name.into())
        })
    }
}

impl FromStr for HostKey {
    type Err = HostError;

    fn from_str(host: &str) -> Result<Self, HostError> {
        HostKey::parse(host)
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKey::Exact(h) => f.write_str(h),
            HostKey::Wildcard(suffix) => write!(f, "*{suffix}"),
            HostKey::Any => f.write_str("(any host)"),
        }
    }
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
}
