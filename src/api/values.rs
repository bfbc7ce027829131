//! Value parsers: the strings of a `LoadBalancerRoute` (and of the command
//! line) that mean more than a string — durations, sizes, CIDRs, methods,
//! header and cookie names, hosts, paths, regular expressions, `host:port`.
//!
//! Owns: one parser per kind of value, each returning a typed error whose
//! text names the bad value and whose [`code`](DurationError::code) is
//! stable, and the header-name constants more than one module needs. Must
//! not: know which field a value came from (the caller's
//! `diagnostic::FieldPath` says that), do I/O, or be called per request for
//! configured values (compile parses them once).

use std::net::IpAddr;
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderName, HeaderValue, Method};
use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use regex::Regex;

/// `X-Forwarded-For`: the client chain a proxy appends to and, behind
/// trusted proxies, believes.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Longest DNS name.
pub const MAX_HOST: usize = 253;

/// Methods whose lower-case spelling is surely a typo.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The longest duration a route (or a flag) may give: one year. Anything
/// longer is surely a typo, and a deadline that far away could overflow
/// the clock (`now + duration`).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not `<number><unit>`…
    #[error("{0:?} is not a duration (for example 500ms, 30s, 1m30s)")]
    Malformed(String),
    /// Parses, but adds up to nothing.
    #[error("{0:?} must be longer than zero")]
    Zero(String),
    /// Longer than [`MAX_DURATION`].
    #[error("{0:?} is too long: a duration is at most 8760h (one year)")]
    TooLong(String),
}

impl DurationError {
    /// Stable code: `invalid-duration`, `zero-duration` or
    /// `duration-too-long`.
    pub fn code(&self) -> &'static str {
        match self {
            DurationError::Malformed(_) => "invalid-duration",
            DurationError::Zero(_) => "zero-duration",
            DurationError::TooLong(_) => "duration-too-long",
        }
    }
}

/// Parses a duration like `250ms`, `30s`, `5m`, `1h` or `1m30s`, of at
/// most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError::Malformed(text.to_owned());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        // Only digits: a number too large for u64 is too long anyway.
        let n: u64 = rest[..digits].parse().unwrap_or(u64::MAX);
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
        rest = &rest[unit..];
    }
    if total.is_zero() {
        return Err(DurationError::Zero(text.to_owned()));
    }
    if total > MAX_DURATION {
        return Err(DurationError::TooLong(text.to_owned()));
    }
    Ok(total)
}

/// A size that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// A negative integer.
    #[error("{0} must not be negative")]
    Negative(i32),
    /// Not bytes or a quantity, or too large.
    #[error("{0:?} is not a size: use bytes or a quantity like 512Ki, 10Mi, 1Gi, 10k, 5M")]
    Malformed(String),
}

impl QuantityError {
    /// Stable code: `negative-size` or `invalid-size`.
    pub fn code(&self) -> &'static str {
        match self {
            QuantityError::Negative(_) => "negative-size",
            QuantityError::Malformed(_) => "invalid-size",
        }
    }
}

/// Parses a size: plain bytes (`1048576`) or a Kubernetes-style quantity
/// with a binary (`Ki`, `Mi`, `Gi`, `Ti`) or decimal (`k`, `M`, `G`, `T`)
/// suffix. Fractions and exponents are not accepted.
pub fn parse_quantity(value: &IntOrString) -> Result<u64, QuantityError> {
    let text = match value {
        IntOrString::Int(n) => return u64::try_from(*n).map_err(|_| QuantityError::Negative(*n)),
        IntOrString::String(s) => s.trim(),
    };
    let bad = || QuantityError::Malformed(text.to_owned());
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit: u64 = match &text[digits..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

/// A CIDR that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CIDR (for example 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7)")]
pub struct CidrError(pub String);

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (which
/// means just it). Host bits are cleared: `10.1.2.3/8` is `10.0.0.0/8`.
pub fn parse_cidr(text: &str) -> Result<IpNet, CidrError> {
    let trimmed = text.trim();
    let net = match trimmed.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match trimmed.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return Err(CidrError(text.to_owned())),
        },
    };
    Ok(net.trunc())
}

/// A method that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    /// A standard method spelled in lower case: it would never match.
    #[error("methods are case-sensitive: {method:?} never matches; use {upper:?}")]
    Case {
        /// As written.
        method: String,
        /// The spelling that matches.
        upper: String,
    },
    /// Not a method token at all.
    #[error("{0:?} is not an HTTP method")]
    Invalid(String),
}

impl MethodError {
    /// Stable code: `method-case` or `invalid-method`.
    pub fn code(&self) -> &'static str {
        match self {
            MethodError::Case { .. } => "method-case",
            MethodError::Invalid(_) => "invalid-method",
        }
    }
}

/// Parses a configured method. Methods are case-sensitive, so a standard
/// method in lower case (`get`) is refused as the typo it surely is, not
/// kept as an extension method no client sends.
pub fn parse_method(method: &str) -> Result<Method, MethodError> {
    let upper = method.to_ascii_uppercase();
    if upper != method && STANDARD_METHODS.contains(&upper.as_str()) {
        return Err(MethodError::Case {
            method: method.to_owned(),
            upper,
        });
    }
    Method::from_bytes(method.as_bytes()).map_err(|_| MethodError::Invalid(method.to_owned()))
}

/// A header name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid header name")]
pub struct HeaderNameError(pub String);

/// Parses a header name (any case; stored lower-case).
pub fn parse_header_name(name: &str) -> Result<HeaderName, HeaderNameError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| HeaderNameError(name.to_owned()))
}

/// A header value that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid header value")]
pub struct HeaderValueError(pub String);

/// Parses a header value.
pub fn parse_header_value(value: &str) -> Result<HeaderValue, HeaderValueError> {
    HeaderValue::from_str(value).map_err(|_| HeaderValueError(value.to_owned()))
}

/// A cookie name that is not an RFC 6265 token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid cookie name")]
pub struct CookieNameError(pub String);

/// Validates a cookie name (an RFC 6265 token).
pub fn check_cookie_name(name: &str) -> Result<(), CookieNameError> {
    let token = |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(CookieNameError(name.to_owned()));
    }
    Ok(())
}

/// A static backend address that is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not host:port (for example 127.0.0.1:8080)")]
pub struct AddressError(pub String);

/// Parses a static `host:port`.
pub fn parse_address(address: &str) -> Result<Authority, AddressError> {
    let bad = || AddressError(address.to_owned());
    let authority: Authority = address.parse().map_err(|_| bad())?;
    if address.contains('@') || authority.host().is_empty() || authority.port_u16().is_none() {
        return Err(bad());
    }
    Ok(authority)
}

/// RFC 3986 `unreserved`: letters, digits, `-`, `.`, `_`, `~` (a byte
/// that means the same escaped or not).
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Splits `host:port` (or `[v6]:port`) into the host (brackets kept) and
/// the port text after the last `:`, if any. Nothing is validated: an
/// unclosed `[` is all host.
pub fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if text.starts_with('[') {
        return match text.find(']') {
            Some(end) => (&text[..=end], text[end + 1..].strip_prefix(':')),
            None => (text, None),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    }
}

/// A route host that is not a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Empty, or longer than a DNS name can be.
    #[error("a host must be a DNS name of 1 to 251 characters")]
    Length,
    /// A label is empty, too long, or has characters DNS does not allow.
    #[error(
        "{0:?} is not a valid host: use a DNS name like www.example.com, \
         optionally with one leading wildcard label (*.example.com)"
    )]
    Invalid(String),
}

/// A configured path that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Does not start with `/`.
    #[error("{0:?} must start with '/'")]
    NotAbsolute(String),
    /// Holds a query, a fragment or whitespace (a match condition).
    #[error("{0:?} must be a path without query, fragment or spaces")]
    NotAPath(String),
    /// Holds characters a request path cannot hold unencoded (a rewrite).
    #[error("{0:?} must be a path: no query, fragment, spaces or characters that need encoding")]
    NeedsEncoding(String),
}

impl PathError {
    /// Stable code: `relative-path`, `invalid-path` or `path-needs-encoding`.
    pub fn code(&self) -> &'static str {
        match self {
            PathError::NotAbsolute(_) => "relative-path",
            PathError::NotAPath(_) => "invalid-path",
            PathError::NeedsEncoding(_) => "path-needs-encoding",
        }
    }
}

/// A regular expression that does not compile; the text is one line and
/// speaks of the pattern as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a valid regular expression: {what}")]
pub struct RegexError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong, from the regex parser's last line.
    pub what: String,
}

impl RegexError {
    /// The error for `pattern`, from what the regex crate said.
    pub fn new(pattern: &str, err: &regex::Error) -> Self {
        let text = err.to_string();
        // Syntax errors are multi-line drawings ending in "error: <what>".
        let what = text
            .lines()
            .rev()
            .find_map(|line| line.trim().strip_prefix("error: "))
            .unwrap_or(text.lines().next().unwrap_or("invalid"))
            .to_owned();
        RegexError {
            pattern: pattern.to_owned(),
            what,
        }
    }
}

impl PartialEq<&str> for RegexError {
    /// Compares the text users read.
    fn eq(&self, other: &&str) -> bool {
        let text = self.to_string();
        text.as_str() == *other
    }
}

/// Compiles `pattern` as written (not anchored).
pub fn parse_regex(pattern: &str) -> Result<Regex, RegexError> {
    Regex::new(pattern).map_err(|e| RegexError::new(pattern, &e))
}

/// Compiles `pattern` to match a whole string. The error speaks of the
/// user's pattern, not the anchored form compiled here.
pub fn parse_anchored_regex(pattern: &str) -> Result<Regex, RegexError> {
    parse_regex(pattern)?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| RegexError::new(pattern, &e))
}

/// Why a path condition does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathMatchError {
    /// An `Exact` or `Prefix` value that is not a path.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A `RegularExpression` that does not compile.
    #[error(transparent)]
    Regex(#[from] RegexError),
}

/// What is wrong with a header condition's name or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    /// The name is not a header name.
    #[error(transparent)]
    Name(#[from] HeaderNameError),
    /// An `Exact` value is not a header value.
    #[error(transparent)]
    Value(#[from] HeaderValueError),
    /// A `RegularExpression` value does not compile.
    #[error(transparent)]
    Regex(#[from] RegexError),
}

#[cfg(test)]
mod tests;
