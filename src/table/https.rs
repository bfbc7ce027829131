//! The HTTPS side of a table: the listener's certificates and
//! configuration, and what a route with `spec.tls` asks of its requests.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use http::HeaderValue;

use crate::snapshot::ObjectKey;
use crate::tls::{CertIndex, Certificate, ClientCa, ListenerConfig, Sessions};

/// The certificates and listener configuration compiled with a table: one
/// `ArcSwap` load gives a handshake everything, with no lock.
#[derive(Debug, Default)]
pub struct TlsTable {
    /// SNI name → certificate.
    pub index: Arc<CertIndex>,
    /// What handshakes use; `None` when there is no TLS listener, or when
    /// the client CA it must verify against is unavailable (then every
    /// handshake is refused: mutual TLS fails closed).
    pub config: Option<ListenerConfig>,
    /// Each certificate read, by Secret, with the bytes it came from: the
    /// next compile reuses it while the Secret is unchanged and keeps
    /// serving it when an edit breaks the Secret.
    pub(crate) loaded: HashMap<ObjectKey, Loaded>,
    /// Session resumption state, handed on while client verification
    /// stays the same.
    pub(crate) sessions: Option<Sessions>,
    /// The client CA in use, kept as the last good one.
    pub(crate) client_ca: Option<ClientCa>,
}

/// A certificate as read from a Secret's bytes.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// `tls.crt` as read.
    pub crt: Arc<[u8]>,
    /// `tls.key` as read.
    pub key: Arc<[u8]>,
    /// The certificate.
    pub cert: Arc<Certificate>,
}

/// What a route with `spec.tls` does to requests, shared by its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHttps {
    /// Plain-HTTP requests are redirected (308) to HTTPS on this port;
    /// `None`: not redirected (no TLS listener, or `httpsRedirect: false`).
    pub redirect_port: Option<u16>,
    /// `Strict-Transport-Security`, sent on HTTPS responses.
    pub hsts: Option<HeaderValue>,
}

/// Where ACME HTTP-01 challenges are answered: never redirected.
const ACME_CHALLENGE: &str = "/.well-known/acme-challenge/";

impl RouteHttps {
    /// The `Location` a plain-HTTP request for `host` (port stripped) and
    /// `path_and_query` is redirected to, or `None` when it is served as
    /// it is (no redirect, or an ACME challenge).
    pub fn redirect(&self, host: &str, path_and_query: &str) -> Option<HeaderValue> {
        let port = self.redirect_port?;
        if path_and_query.starts_with(ACME_CHALLENGE) {
            return None;
        }
        let mut location = String::with_capacity(host.len() + path_and_query.len() + 14);
        location.push_str("https://");
        location.push_str(host);
        if port != 443 {
            let _ = write!(location, ":{port}");
        }
        location.push_str(path_and_query);
        HeaderValue::from_str(&location).ok()
    }
}

/// The `Strict-Transport-Security` value for `max_age` seconds.
pub fn hsts_value(max_age: i64, include_sub_domains: bool) -> HeaderValue {
    let sub = if include_sub_domains {
        "; includeSubDomains"
    } else {
        ""
    };
    HeaderValue::from_str(&format!("max-age={max_age}{sub}"))
        .expect("digits and ASCII are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn https(port: Option<u16>) -> RouteHttps {
        RouteHttps {
            redirect_port: port,
            hsts: None,
        }
    }

    #[test]
    fn plain_http_is_sent_to_https_keeping_path_and_query_and_a_non_default_port() {
        let to = |r: &RouteHttps, target| r.redirect("www.mango.test", target);
        assert_eq!(
            to(&https(Some(443)), "/a?b=1").unwrap(),
            "https://www.mango.test/a?b=1"
        );
        assert_eq!(
            to(&https(Some(8443)), "/").unwrap(),
            "https://www.mango.test:8443/"
        );
        assert!(
            to(&https(None), "/").is_none(),
            "opted out, or no TLS listener"
        );
    }

    #[test]
    fn acme_http01_challenges_are_never_redirected() {
        let route = https(Some(443));
        assert!(route
            .redirect("www.mango.test", "/.well-known/acme-challenge/token")
            .is_none());
        assert!(route
            .redirect("www.mango.test", "/.well-known/other")
            .is_some());
    }

    #[test]
    fn hsts_includes_subdomains_only_when_asked() {
        assert_eq!(hsts_value(600, false), "max-age=600");
        assert_eq!(hsts_value(600, true), "max-age=600; includeSubDomains");
    }
}
