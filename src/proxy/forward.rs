//! Forwarding rules: the host a request asks for (and whether it is one),
//! header names a backend could confuse, hop-by-hop headers,
//! `X-Forwarded-*`, `X-Real-IP`, `Forwarded`, the upstream URI, and an
//! HTTP/2 WebSocket (RFC 8441 extended CONNECT) as the HTTP/1.1 handshake
//! it becomes.
//!
//! Owns: these header and URI rules as plain functions over headers. Must
//! not: know about rules, routes or bodies (body wrappers live in
//! [`super::body`]).

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Version};
use hyper::ext::Protocol;

use crate::api::values::{is_unreserved, X_FORWARDED_FOR};

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// The verified client certificate's subject (mutual TLS); only the proxy
/// sets it.
pub static X_CLIENT_CERT_SUBJECT: HeaderName = HeaderName::from_static("x-client-cert-subject");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

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

/// Marks a request that came as an HTTP/2 extended CONNECT for WebSocket
/// (RFC 8441) and now goes on as a `GET`; only the proxy sets it.
#[derive(Debug, Clone, Copy)]
pub struct WebSocketConnect;

/// Turns an HTTP/2 extended CONNECT whose `:protocol` is `websocket`
/// (RFC 8441 §4; any case) into the `GET` it stands for, so routing,
/// method matches and the firewall read it as the HTTP/1.1 handshake it
/// becomes; marked with [`WebSocketConnect`] for the prepare phase.
/// Any other request is left as it is.
pub fn websocket_connect<B>(req: &mut Request<B>) -> bool {
    let websocket = req.version() == Version::HTTP_2
        && req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    if websocket {
        *req.method_mut() = Method::GET;
        req.extensions_mut().remove::<Protocol>();
        req.extensions_mut().insert(WebSocketConnect);
    }
    websocket
}

/// Makes an HTTP/2 WebSocket request's headers the HTTP/1.1 handshake
/// (RFC 6455 §4.1): `Connection: upgrade`, `Upgrade: websocket` and a
/// fresh `Sec-WebSocket-Key` (RFC 8441 has none); the version, protocols
/// and extensions the client sent go on unchanged.
pub fn websocket_handshake(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_KEY, websocket_key());
}

/// 16 random bytes in base64: a handshake nonce, not a secret (RFC 6455
/// §4.1 only asks that it be unpredictable enough to defeat caches).
fn websocket_key() -> HeaderValue {
    use crate::balance::rng::next_u64;
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&next_u64().to_le_bytes());
    raw[8..].copy_from_slice(&next_u64().to_le_bytes());
    let key = base64_16(&raw);
    // Base64 digits and `=` are all valid in a header value.
    HeaderValue::from_bytes(&key).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// 16 bytes in padded base64 (RFC 4648 §4): 22 digits and `==`.
fn base64_16(raw: &[u8; 16]) -> [u8; 24] {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = [b'='; 24];
    for (i, chunk) in raw.chunks(3).enumerate() {
        let byte = |j: usize| u32::from(chunk.get(j).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // The last chunk has one byte: two digits, then the padding.
        let digits = if chunk.len() == 3 { 4 } else { 2 };
        for j in 0..digits {
            out[i * 4 + j] = DIGITS[((n >> (18 - 6 * j)) & 63) as usize];
        }
    }
    out
}

/// Whether the client's `TE` lists `trailers` (gRPC requires it): the one
/// `TE` value that survives the hop, since it says the client accepts
/// trailers, which the proxy passes through. Other values name transfer
/// codings of the client's connection.
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("trailers")
            })
        })
    })
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
    // One pass over the names, no hashing: most messages carry none of
    // them, or only `Connection`.
    let found = hop_by_hop_present(headers);
    if found == 0 {
        return;
    }
    // `Connection: upgrade` names the Upgrade header itself; keep its value.
    let upgrade = if keep_upgrade && found & UPGRADE_BIT != 0 {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    if found & CONNECTION_BIT != 0 {
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
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if found & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    match upgrade {
        Some(protocol) => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol);
        }
        None if found & UPGRADE_BIT != 0 => {
            headers.remove(header::UPGRADE);
        }
        None => {}
    }
}

/// The bit of `Connection` in [`hop_by_hop_present`]'s answer (bit `i`
/// is `HOP_BY_HOP[i]`, and `Connection` is its first).
const CONNECTION_BIT: u16 = 1;
/// The bit of `Upgrade` there, past those of `HOP_BY_HOP`.
const UPGRADE_BIT: u16 = 1 << HOP_BY_HOP.len();

/// Which hop-by-hop headers `headers` has, as bits.
fn hop_by_hop_present(headers: &HeaderMap) -> u16 {
    let mut found = 0;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            found |= 1 << i;
        } else if name == header::UPGRADE {
            found |= UPGRADE_BIT;
        }
    }
    found
}

/// The hop this proxy adds to a request on its way to a backend.
#[derive(Debug)]
pub struct Hop<'a> {
    /// The socket peer, appended to `X-Forwarded-For`.
    pub peer: &'a HeaderValue,
    /// Whether the peer is a trusted proxy (`--trusted-proxies`): only then
    /// does its `Forwarded` header reach the backend.
    pub peer_trusted: bool,
    /// The client the proxy judged (firewall, rate limit): the peer, or
    /// behind trusted proxies the right-most untrusted `X-Forwarded-For`
    /// hop. Sent as `X-Real-IP`.
    pub client: HeaderValue,
    /// Whether the request came in over TLS (`X-Forwarded-Proto`).
    pub https: bool,
    /// A verified client certificate's subject, sent as
    /// `x-client-cert-subject`; whatever the client sent under that name
    /// is dropped either way.
    pub client_cert: Option<&'a HeaderValue>,
}

/// Sets `X-Forwarded-For` (the peer appended to what came before),
/// `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Real-IP` (the client,
/// replacing whatever the client sent) and `x-client-cert-subject` (only
/// from a verified client certificate), and drops `Forwarded` unless the
/// peer is a trusted proxy: a backend reading either header gets what the
/// proxy vouches for, never what any client wrote.
pub fn set_forwarded(headers: &mut HeaderMap, hop: Hop<'_>, host: Option<HeaderValue>) {
    let peer = hop.peer;
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
    let proto = if hop.https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    match hop.client_cert {
        Some(subject) => headers.insert(X_CLIENT_CERT_SUBJECT.clone(), subject.clone()),
        None => headers.remove(&X_CLIENT_CERT_SUBJECT),
    };
    headers.insert(X_REAL_IP.clone(), hop.client);
    if !hop.peer_trusted {
        headers.remove(header::FORWARDED);
    }
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

/// Drops every header whose name holds `_` (nginx's default,
/// `underscores_in_headers off`). CGI and WSGI backends read `X_Real_IP`
/// and `X-Real-IP` as one variable (`HTTP_X_REAL_IP`), so a client could
/// otherwise slip a value past a header the proxy sets. Allocates nothing
/// when no name has one (the usual case).
pub fn drop_underscored(headers: &mut HeaderMap) {
    while let Some(name) = headers.keys().find(|n| n.as_str().contains('_')).cloned() {
        headers.remove(&name);
    }
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

/// Why a request's host is refused (400, as nginx does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadHost {
    /// HTTP/1.1 without `Host` (RFC 9112 §3.2), or HTTP/2 without
    /// `:authority` or `Host`.
    #[error("no Host header")]
    Missing,
    /// More than one `Host` line (RFC 9112 §3.2).
    #[error("more than one Host header")]
    Duplicate,
    /// A `Host` or target authority that is not `host[:port]`: spaces,
    /// tabs, `/`, userinfo (`evil@b.test`, RFC 9110 §4.2.4), an empty host,
    /// a port that is not digits.
    #[error("the host is not host[:port]")]
    Invalid,
}

/// The host the client asked for, checked once as the request enters: the
/// URI authority (absolute form, or HTTP/2's `:authority`) wins over the
/// `Host` header (RFC 9112 §3.2.2), but a `Host` present must be single
/// and valid either way. HTTP/1.0 may omit it (`Ok(None)`).
pub fn request_host<B>(req: &Request<B>) -> Result<Option<HeaderValue>, BadHost> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(BadHost::Duplicate);
    }
    if host.is_some_and(|h| !is_host(h.as_bytes())) {
        return Err(BadHost::Invalid);
    }
    let http10 = matches!(req.version(), Version::HTTP_09 | Version::HTTP_10);
    match (req.uri().authority(), host) {
        // HTTP/1.1 requires Host even with an absolute-form target.
        (_, None) if req.version() == Version::HTTP_11 => Err(BadHost::Missing),
        (Some(authority), _) => authority_host(authority).map(Some),
        (None, Some(host)) => Ok(Some(host.clone())),
        (None, None) if http10 => Ok(None),
        (None, None) => Err(BadHost::Missing),
    }
}

/// A target's authority as the request's host, if it is `host[:port]`.
fn authority_host(authority: &Authority) -> Result<HeaderValue, BadHost> {
    let text = authority.as_str();
    if !is_host(text.as_bytes()) {
        return Err(BadHost::Invalid);
    }
    HeaderValue::from_str(text).map_err(|_| BadHost::Invalid)
}

/// Whether `text` is `host [ ":" port ]` of RFC 3986: a non-empty reg-name
/// (unreserved, sub-delims, `%XX`) or a bracketed IP literal, then digits
/// for a port. One pass over the bytes, no allocation.
fn is_host(text: &[u8]) -> bool {
    let (host_ok, rest) = match text.strip_prefix(b"[") {
        Some(literal) => match literal.iter().position(|&b| b == b']') {
            Some(end) => (
                end > 0 && literal[..end].iter().all(|&b| b == b':' || is_plain(b)),
                &literal[end + 1..],
            ),
            None => return false,
        },
        None => {
            let end = text.iter().position(|&b| b == b':').unwrap_or(text.len());
            (end > 0 && is_reg_name(&text[..end]), &text[end..])
        }
    };
    host_ok
        && match rest {
            [] => true,
            [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
            _ => false,
        }
}

/// RFC 3986 `reg-name`: unreserved and sub-delims bytes, and `%XX`.
fn is_reg_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let Some((&b, tail)) = rest.split_first() {
        rest = match (b, tail) {
            (b'%', [hi, lo, tail @ ..]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => tail,
            _ if is_plain(b) => tail,
            _ => return false,
        };
    }
    true
}

/// RFC 3986 `unreserved` or `sub-delims`.
fn is_plain(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        )
}

#[cfg(test)]
mod tests;
