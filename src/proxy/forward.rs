//! Forwarding rules: the host a request asks for, hop-by-hop headers,
//! `X-Forwarded-*` and the upstream URI.
//!
//! Owns: these header and URI rules as plain functions over headers. Must
//! not: know about rules, routes or bodies (body wrappers live in
//! [`super::body`]).

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::Request;

use crate::api::values::X_FORWARDED_FOR;

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1;
/// `HTTP2-Settings` belongs to an h2c upgrade, RFC 7540 §3.2.1).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    HeaderName::from_static("http2-settings"),
];

/// Whether an HTTP/1.1 request asks to switch to a protocol the proxy
/// tunnels: WebSocket only. Any other upgrade (h2c above all: a backend that
/// accepted it would carry later requests past every rule) is stripped like
/// any hop-by-hop header, and the request is forwarded as plain HTTP/1.1.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let websocket = headers.get(header::UPGRADE).is_some_and(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').all(|protocol| {
                let name = protocol.trim().split('/').next().unwrap_or_default();
                name.eq_ignore_ascii_case("websocket")
            })
        })
    });
    websocket && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Removes hop-by-hop headers, including those the `Connection` header
/// names. With `keep_upgrade`, `Connection: upgrade` and `Upgrade` survive so
/// a protocol switch reaches the other side.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // `Connection: upgrade` names the Upgrade header itself; keep its value.
    let upgrade = if keep_upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    // Names listed in Connection are rare; collect them only when present.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in &listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    match upgrade {
        Some(protocol) => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol);
        }
        None => {
            headers.remove(header::UPGRADE);
        }
    }
}

/// Sets `X-Forwarded-For` (the peer appended to what came before),
/// `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub fn set_forwarded(headers: &mut HeaderMap, peer: &HeaderValue, host: Option<HeaderValue>) {
    let mut prior = headers.get_all(&X_FORWARDED_FOR).iter();
    let value = match (prior.next(), prior.next()) {
        (None, _) => peer.clone(),
        (Some(one), None) => join(&[one.as_bytes(), peer.as_bytes()]),
        (Some(_), Some(_)) => {
            let mut parts: Vec<&[u8]> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            parts.push(peer.as_bytes());
            join(&parts)
        }
    };
    headers.insert(X_FORWARDED_FOR.clone(), value);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

fn join(parts: &[&[u8]]) -> HeaderValue {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(part);
    }
    // Joined from valid header values with ", ": still valid.
    HeaderValue::from_maybe_shared(Bytes::from(out))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `http://{endpoint}{path?query}` without formatting or re-parsing.
pub fn upstream_uri(authority: &Authority, path_and_query: Option<PathAndQuery>) -> Option<Uri> {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/")));
    Uri::from_parts(parts).ok()
}

/// The host the client asked for: the URI authority (absolute form, or
/// HTTP/2's `:authority`) without userinfo, else the `Host` header.
pub fn request_host<B>(req: &Request<B>) -> Option<HeaderValue> {
    match req.uri().authority() {
        Some(authority) => {
            let text = authority.as_str();
            let text = text.rsplit_once('@').map_or(text, |(_, host)| host);
            HeaderValue::from_str(text).ok()
        }
        None => req.headers().get(header::HOST).cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("x-end", "kept"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-end"]);
    }

    #[test]
    fn only_websocket_upgrades_are_tunnelled() {
        for (upgrade, tunnelled) in [
            ("websocket", true),
            ("WebSocket", true),
            ("h2c", false),
            ("websocket, h2c", false),
            ("TLS/1.2", false),
        ] {
            let h = headers(&[("connection", "Upgrade"), ("upgrade", upgrade)]);
            assert_eq!(is_upgrade(&h), tunnelled, "case {upgrade:?}");
        }
    }

    #[test]
    fn upgrade_survives_when_switching_protocols() {
        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_every_prior_hop() {
        let peer = HeaderValue::from_static("127.0.0.1");
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
        ]);
        set_forwarded(
            &mut h,
            &peer,
            Some(HeaderValue::from_static("www.mango.com")),
        );
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "www.mango.com");
        let mut fresh = HeaderMap::new();
        set_forwarded(&mut fresh, &peer, None);
        assert_eq!(fresh["x-forwarded-for"], "127.0.0.1");
    }

    #[test]
    fn the_authority_wins_over_the_host_header_and_loses_its_userinfo() {
        let req = Request::builder()
            .uri("http://user:pw@www.mango.com:8080/a")
            .header("host", "other.example")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).unwrap(), "www.mango.com:8080");
        let req = Request::builder()
            .uri("/a")
            .header("host", "www.mango.com")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).unwrap(), "www.mango.com");
        let req = Request::builder().uri("/a").body(()).unwrap();
        assert!(request_host(&req).is_none());
    }
}
