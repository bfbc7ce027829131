//! Who the client is: the socket peer, or behind trusted proxies the hop
//! they vouch for in `X-Forwarded-For`.
//!
//! Owns: [`TrustedProxies`] (`--trusted-proxies`, parsed once at start) and
//! [`client_ip`], the address firewalls and rate limits judge. Must not:
//! believe `X-Forwarded-For` from a peer that is not a trusted proxy, or
//! allocate per request.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

use crate::api::values::{split_host_port, X_FORWARDED_FOR};

/// The process-wide list of proxies whose `X-Forwarded-For` is believed
/// (`--trusted-proxies`). Empty by default: then the client is always the
/// socket peer.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Box<[IpNet]>);

impl TrustedProxies {
    /// Trusts these networks.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies(nets.into_iter().collect())
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client address of a request from `peer`: the peer itself unless it
/// is a trusted proxy; then the right-most `X-Forwarded-For` entry that is
/// not trusted (walking right to left over every `X-Forwarded-For` header).
/// If every entry is trusted, the left-most; if an entry cannot be parsed,
/// the last trusted hop before it (what sent us the garbage). A client
/// cannot spoof past this: entries it writes sit left of the first
/// untrusted hop, which is where the walk stops.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        for entry in value.as_bytes().rsplit(|b| *b == b',') {
            let Some(ip) = parse_forwarded_ip(entry) else {
                return client;
            };
            client = ip;
            if !trusted.contains(ip) {
                return ip;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`,
/// optionally with a port (`1.2.3.4:5678`, `[2001:db8::1]:5678`).
fn parse_forwarded_ip(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let host = match split_host_port(text) {
        (bracketed, _) if bracketed.starts_with('[') => {
            bracketed.strip_prefix('[')?.strip_suffix(']')?
        }
        (host, Some(_)) => host,
        (_, None) => return None,
    };
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::values::parse_cidr;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn client_ip_believes_forwarded_for_only_from_trusted_peers() {
        let trusted = TrustedProxies::new([
            parse_cidr("127.0.0.1/32").unwrap(),
            parse_cidr("10.0.0.0/8").unwrap(),
            parse_cidr("fd00::/8").unwrap(),
        ]);
        let none = TrustedProxies::default();
        for (case, peer, headers, trusted, want) in [
            (
                "untrusted peer, no header",
                "55.0.0.1",
                vec![],
                &trusted,
                "55.0.0.1",
            ),
            (
                "untrusted peer spoofing",
                "55.0.0.1",
                vec!["1.1.1.1"],
                &trusted,
                "55.0.0.1",
            ),
            (
                "nothing trusted",
                "127.0.0.1",
                vec!["1.1.1.1"],
                &none,
                "127.0.0.1",
            ),
            (
                "trusted peer, no header",
                "127.0.0.1",
                vec![],
                &trusted,
                "127.0.0.1",
            ),
            (
                "trusted peer, one hop",
                "127.0.0.1",
                vec!["55.55.55.55"],
                &trusted,
                "55.55.55.55",
            ),
            (
                "spoofed entry left of the real client",
                "127.0.0.1",
                vec!["10.192.0.9, 55.55.55.55"],
                &trusted,
                "55.55.55.55",
            ),
            (
                "trusted hops skipped",
                "127.0.0.1",
                vec!["1.1.1.1, 2.2.2.2, 10.0.0.3"],
                &trusted,
                "2.2.2.2",
            ),
            (
                "across several headers",
                "127.0.0.1",
                vec!["1.1.1.1", "2.2.2.2, 10.0.0.3", "10.0.0.4"],
                &trusted,
                "2.2.2.2",
            ),
            (
                "all trusted: the left-most",
                "127.0.0.1",
                vec!["10.0.0.1, 10.0.0.2"],
                &trusted,
                "10.0.0.1",
            ),
            (
                "garbage: the last trusted hop",
                "127.0.0.1",
                vec!["1.1.1.1, nonsense, 10.0.0.7"],
                &trusted,
                "10.0.0.7",
            ),
            (
                "ports and brackets",
                "127.0.0.1",
                vec!["[2001:db8::5]:443, 3.3.3.3:80"],
                &trusted,
                "3.3.3.3",
            ),
            (
                "ipv6 hop",
                "fd00::1",
                vec!["2001:db8::5"],
                &trusted,
                "2001:db8::5",
            ),
            (
                "ipv4-mapped peer",
                "::ffff:127.0.0.1",
                vec!["4.4.4.4"],
                &trusted,
                "4.4.4.4",
            ),
        ] {
            assert_eq!(
                client_ip(ip(peer), &xff(&headers), trusted),
                ip(want),
                "case {case}"
            );
        }
    }
}
