//! The pick phase's data: a rule's two-level balancing (a weighted split
//! across its backends, then the backend's [`Balancer`]), the request key
//! consistent hashing reads, and sticky-session cookies.
//!
//! Everything here is built at compile; a pick reads request headers in
//! place and allocates nothing.

use std::net::IpAddr;
use std::time::Duration;

use http::{header, HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use super::Target;
use crate::api::values::{check_cookie_name, parse_header_name};
use crate::api::{self, Algorithm, HashOnType};
use crate::balance::{hash_key, Balancer, Endpoint, RoundRobin};
use crate::diagnostic::Invalid;

/// What a pick may look at: the request as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct PickContext<'a> {
    /// The client address (the peer, or behind trusted proxies the
    /// forwarded client).
    pub client: IpAddr,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The time of the request.
    pub now: Instant,
}

/// The endpoint chosen for a request.
#[derive(Debug)]
pub struct Picked<'a> {
    /// Where the request goes.
    pub target: &'a Target,
    /// A sticky-session cookie to add to the response (`Set-Cookie`), when
    /// the request did not already carry a valid one.
    pub set_cookie: Option<&'a HeaderValue>,
}

/// A rule's balancing: backend split, per-backend balancers, hash key and
/// sticky cookie.
#[derive(Debug)]
pub struct Balancing {
    /// Picks a group by its weight; `None` with a single group.
    split: Option<RoundRobin>,
    /// One per Service backend with weight > 0 and at least one endpoint,
    /// plus one for all the static addresses with weight > 0.
    groups: Box<[Group]>,
    /// What `ConsistentHash` hashes.
    hash_on: Option<HashKey>,
    /// The sticky-session cookie.
    sticky: Option<StickyCookies>,
}

/// One group's endpoints (a Service backend, or the rule's static
/// addresses): balancer index → target index.
#[derive(Debug)]
struct Group {
    targets: Box<[u32]>,
    balancer: Balancer,
}

/// A compiled `hashOn`.
#[derive(Debug, Clone)]
pub enum HashKey {
    /// A header's first value.
    Header(HeaderName),
    /// A cookie's value.
    Cookie(Box<str>),
    /// A query parameter's first value.
    QueryParameter(Box<str>),
    /// The client address.
    ClientIp,
}

/// A compiled `sticky.cookie`.
#[derive(Debug, Clone)]
pub struct StickySpec {
    /// The cookie name.
    pub name: Box<str>,
    /// `Max-Age`, if any.
    pub ttl: Option<Duration>,
}

#[derive(Debug)]
struct StickyCookies {
    name: Box<str>,
    /// `(endpoint id, target index)`, sorted by id.
    by_id: Box<[(u64, u32)]>,
    /// The `Set-Cookie` value per target.
    set_cookie: Box<[HeaderValue]>,
}

/// A group of targets and its weights, for [`Balancing::new`].
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    /// Its targets (indices into the rule's targets).
    pub targets: Vec<usize>,
    /// Each target's weight inside the group (greater than 0).
    pub weights: Vec<u32>,
    /// The group's share of the rule's traffic (greater than 0).
    pub weight: u32,
}

impl Balancing {
    /// Builds the balancing of `targets` in `groups`. `None` when there is
    /// no group.
    pub fn new(
        algorithm: Algorithm,
        hash_on: Option<HashKey>,
        sticky: Option<StickySpec>,
        targets: &[Target],
        groups: &[GroupSpec],
    ) -> Option<Self> {
        let weights: Vec<u32> = groups.iter().map(|g| g.weight).collect();
        let split = RoundRobin::new(&weights)?;
        let mut compiled = Vec::with_capacity(groups.len());
        for g in groups {
            let endpoints: Vec<Endpoint<'_>> = g
                .targets
                .iter()
                .zip(&g.weights)
                .map(|(i, w)| {
                    let t = &targets[*i];
                    (t.authority.as_str(), t.state.clone(), *w)
                })
                .collect();
            compiled.push(Group {
                targets: g.targets.iter().map(|i| *i as u32).collect(),
                balancer: Balancer::new(algorithm, &endpoints)?,
            });
        }
        let sticky = sticky.map(|spec| {
            let mut by_id: Vec<(u64, u32)> = Vec::new();
            for g in groups {
                for i in &g.targets {
                    by_id.push((endpoint_id(&targets[*i]), *i as u32));
                }
            }
            by_id.sort_unstable();
            by_id.dedup_by_key(|(id, _)| *id);
            let set_cookie = targets
                .iter()
                .map(|t| set_cookie(&spec, endpoint_id(t)))
                .collect();
            StickyCookies {
                name: spec.name,
                by_id: by_id.into_boxed_slice(),
                set_cookie,
            }
        });
        Some(Balancing {
            split: (groups.len() > 1).then_some(split),
            groups: compiled.into_boxed_slice(),
            hash_on,
            sticky,
        })
    }

    /// Picks the target for a request: its valid sticky cookie's endpoint;
    /// else a backend by weight, then an endpoint by the algorithm. When
    /// the chosen backend has no available endpoint the other backends are
    /// tried in turn, then any available endpoint with a weight (so a dead
    /// heavy endpoint never hides a live light one). When none is
    /// available, an endpoint that is only ejected (it passes its active
    /// checks, or has none) is taken as a last resort, the balancer's
    /// choice first so the load still spreads (Envoy's panic mode, short
    /// of endpoints failing their checks). `None` when every endpoint
    /// fails its active checks.
    pub fn pick<'t>(&'t self, targets: &'t [Target], cx: &PickContext<'_>) -> Option<Picked<'t>> {
        let available = |i: usize| targets[i].state.is_available_at(cx.now);
        if let Some(sticky) = &self.sticky {
            if let Some(i) = sticky.pinned(cx.headers) {
                if available(i) {
                    return Some(Picked {
                        target: &targets[i],
                        set_cookie: None,
                    });
                }
            }
        }
        let key = self.hash_on.as_ref().and_then(|h| h.key(cx));
        let first = self.split.as_ref().map_or(0, RoundRobin::pick);
        let n = self.groups.len();
        let mut last_resort = None;
        for k in 0..n {
            let group = &self.groups[(first + k) % n];
            let i = group.targets[group.balancer.pick(key, cx.now)] as usize;
            if available(i) {
                return Some(self.picked(targets, i));
            }
            if last_resort.is_none() && is_last_resort(&targets[i]) {
                last_resort = Some(i);
            }
        }
        let chosen = available_or_last_resort(targets, cx.now, |_| true, last_resort)?;
        Some(self.picked(targets, chosen))
    }

    /// `targets[i]`, with its sticky cookie.
    fn picked<'t>(&'t self, targets: &'t [Target], i: usize) -> Picked<'t> {
        Picked {
            target: &targets[i],
            set_cookie: self.sticky.as_ref().map(|s| &s.set_cookie[i]),
        }
    }
}

impl<'t> Picked<'t> {
    /// The first endpoint with a weight that `keep` accepts and that is
    /// available at `now`; failing that, the first such endpoint that is
    /// only ejected, as a last resort (a retry after a failure: trying an
    /// endpoint that is only ejected beats answering 502). `None` when
    /// every such endpoint fails its active checks. Never sets a cookie.
    pub fn fallback(
        targets: &'t [Target],
        now: Instant,
        keep: impl Fn(&Target) -> bool,
    ) -> Option<Picked<'t>> {
        let i = available_or_last_resort(targets, now, keep, None)?;
        Some(Picked {
            target: &targets[i],
            set_cookie: None,
        })
    }
}

/// The index of the first endpoint with a weight that satisfies `ok`.
fn first_where(targets: &[Target], ok: impl Fn(&Target) -> bool) -> Option<usize> {
    targets.iter().position(|t| t.weight > 0 && ok(t))
}

/// Whether `target` may take a request when no endpoint is available: it
/// passes its active checks (or has none), so only passive health — a
/// guess from recent failures, capped by `maxEjectedPercent` per rule —
/// keeps it out. An endpoint failing its checks is known to be down and
/// never is.
fn is_last_resort(target: &Target) -> bool {
    target.state.is_healthy()
}

/// Among the endpoints with a weight that `keep` accepts: the first
/// available at `now`; failing that, `preferred` (the balancer's choice)
/// or the first that is only ejected, marked as a trial (its success ends
/// the ejection). `None` when every such endpoint fails its active checks.
fn available_or_last_resort(
    targets: &[Target],
    now: Instant,
    keep: impl Fn(&Target) -> bool,
    preferred: Option<usize>,
) -> Option<usize> {
    if let Some(i) = first_where(targets, |t| keep(t) && t.state.is_available_at(now)) {
        return Some(i);
    }
    let i = preferred.or_else(|| first_where(targets, |t| keep(t) && is_last_resort(t)))?;
    targets[i].state.begin_trial();
    Some(i)
}

impl StickyCookies {
    fn pinned(&self, headers: &HeaderMap) -> Option<usize> {
        let value = cookie(headers, &self.name)?;
        let id = u64::from_str_radix(value, 16).ok()?;
        let at = self.by_id.binary_search_by_key(&id, |(id, _)| *id).ok()?;
        Some(self.by_id[at].1 as usize)
    }
}

/// A target's opaque id in sticky cookies: a hash of its address.
fn endpoint_id(target: &Target) -> u64 {
    hash_key(target.authority.as_str().as_bytes())
}

fn set_cookie(spec: &StickySpec, id: u64) -> HeaderValue {
    let mut text = format!("{}={id:016x}; Path=/; HttpOnly", spec.name);
    if let Some(ttl) = spec.ttl {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        text.push_str(&format!("; Max-Age={secs}"));
    }
    // The name was validated as a cookie token at compile.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl HashKey {
    /// Compiles `hashOn`; every error is about its `name` field.
    pub fn compile(spec: &api::HashOn) -> Result<Self, Invalid> {
        let name = spec.name.as_deref();
        match spec.kind {
            HashOnType::ClientIp => match name {
                None => Ok(HashKey::ClientIp),
                Some(_) => Err(Invalid::NameUnused),
            },
            HashOnType::Header => {
                let name = name.ok_or(Invalid::NameNeeded)?;
                Ok(HashKey::Header(parse_header_name(name)?))
            }
            HashOnType::Cookie => {
                let name = name.ok_or(Invalid::NameNeeded)?;
                check_cookie_name(name)?;
                Ok(HashKey::Cookie(name.into()))
            }
            HashOnType::QueryParameter => {
                let name = name.ok_or(Invalid::NameNeeded)?;
                if name.is_empty() || name.contains(['&', '=', '#', ' ']) {
                    return Err(Invalid::HashQueryName(name.to_owned()));
                }
                Ok(HashKey::QueryParameter(name.into()))
            }
        }
    }

    /// The request's hashed key, or `None` when it lacks the value.
    pub fn key(&self, cx: &PickContext<'_>) -> Option<u64> {
        match self {
            HashKey::Header(name) => cx.headers.get(name).map(|v| hash_key(v.as_bytes())),
            HashKey::Cookie(name) => cookie(cx.headers, name).map(|v| hash_key(v.as_bytes())),
            HashKey::QueryParameter(name) => {
                query_param(cx.query?, name).map(|v| hash_key(v.as_bytes()))
            }
            HashKey::ClientIp => Some(match cx.client.to_canonical() {
                IpAddr::V4(ip) => hash_key(&ip.octets()),
                IpAddr::V6(ip) => hash_key(&ip.octets()),
            }),
        }
    }
}

/// The value of cookie `name` in the `Cookie` headers (the first one).
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

/// The first value of query parameter `name` (empty when it has none).
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k == name).then_some(v),
            None => (pair == name).then_some(""),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; sid=xyz"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "sid"), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "si"), None);
    }

    #[test]
    fn query_parameters_match_whole_names() {
        assert_eq!(query_param("user=7&x=1", "user"), Some("7"));
        assert_eq!(query_param("username=7&user", "user"), Some(""));
        assert_eq!(query_param("x=1", "user"), None);
    }

    #[test]
    fn hash_on_needs_a_valid_name() {
        let spec = |kind, name: Option<&str>| api::HashOn {
            kind,
            name: name.map(str::to_owned),
        };
        assert!(HashKey::compile(&spec(HashOnType::Header, Some("x-user"))).is_ok());
        assert!(HashKey::compile(&spec(HashOnType::Header, Some("bad header"))).is_err());
        assert!(HashKey::compile(&spec(HashOnType::Cookie, None)).is_err());
        assert!(HashKey::compile(&spec(HashOnType::Cookie, Some("a;b"))).is_err());
        assert!(HashKey::compile(&spec(HashOnType::ClientIp, Some("x"))).is_err());
        assert!(HashKey::compile(&spec(HashOnType::QueryParameter, Some("u"))).is_ok());
    }
}
