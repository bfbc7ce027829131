//! The request to explain, as given: a URL, a method, `name: value`
//! headers and a client address, from the command line or from the
//! `/explain` query string (which [`ExplainArgs::to_query`] writes and
//! [`ExplainArgs::from_query`] reads).

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderName, HeaderValue, Method, Request, Uri};

use super::RequestView;
use crate::api::values::parse_method;
use crate::policy::headers::percent_encode;
use crate::proxy::preview::{drop_underscored, request_host};

/// The request to explain, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExplainArgs {
    /// `http://host[:port]/path?query` (or `https://`).
    pub url: String,
    /// The method; default `GET`.
    pub method: Option<String>,
    /// Headers, each `name: value`.
    pub headers: Vec<String>,
    /// The client address; default `127.0.0.1`.
    pub client: Option<String>,
}

/// Why the request to explain is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The URL is not absolute `http://` or `https://`.
    #[error("{0:?} is not an http:// or https:// URL")]
    Url(String),
    /// The method does not parse.
    #[error("{0:?} is not a method")]
    Method(String),
    /// A header is not `name: value`.
    #[error("{0:?} is not a header (name: value)")]
    Header(String),
    /// The client is not an IP address.
    #[error("{0:?} is not an IP address")]
    Client(String),
    /// The host is one the proxy refuses (400).
    #[error("the proxy refuses this host: {0}")]
    Host(String),
    /// The query string lacks `url`.
    #[error(
        "missing url= (try /explain?url=http://host/path&method=GET&header=name:value&client=IP)"
    )]
    MissingUrl,
}

/// A request to explain, read as the proxy reads one: headers with `_`
/// dropped (the proxy's default), `Host` from the URL's authority (as curl
/// sends it) unless given.
#[derive(Debug)]
pub struct ExplainRequest {
    req: Request<()>,
    client: IpAddr,
    https: bool,
}

impl ExplainArgs {
    /// The `/explain` query string for these arguments.
    pub fn to_query(&self) -> String {
        let mut pairs = vec![("url", self.url.as_str())];
        pairs.extend(self.method.as_deref().map(|m| ("method", m)));
        pairs.extend(self.headers.iter().map(|h| ("header", h.as_str())));
        pairs.extend(self.client.as_deref().map(|c| ("client", c)));
        let encoded: Vec<String> = (pairs.iter())
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        encoded.join("&")
    }

    /// Reads a query string [`to_query`](Self::to_query) wrote; other
    /// keys are ignored.
    pub fn from_query(query: &str) -> Result<Self, InputError> {
        let mut args = ExplainArgs::default();
        let mut url = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match key {
                "url" => url = Some(value),
                "method" => args.method = Some(value),
                "header" => args.headers.push(value),
                "client" => args.client = Some(value),
                _ => {}
            }
        }
        args.url = url.ok_or(InputError::MissingUrl)?;
        Ok(args)
    }
}

impl ExplainRequest {
    /// Reads `args`.
    pub fn new(args: &ExplainArgs) -> Result<Self, InputError> {
        let bad_url = || InputError::Url(args.url.clone());
        let uri: Uri = args.url.parse().map_err(|_| bad_url())?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad_url()),
        };
        let Some(authority) = uri.authority() else {
            return Err(bad_url());
        };
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad_url())?;
        let method = match &args.method {
            Some(m) => parse_method(m).map_err(|_| InputError::Method(m.clone()))?,
            None => Method::GET,
        };
        // Sent as curl sends it: the path in origin form, the URL's
        // authority as `Host` unless a `Host` header is given.
        let mut req = Request::new(());
        *req.method_mut() = method;
        *req.uri_mut() = uri
            .path_and_query()
            .map_or(Ok(Uri::from_static("/")), |pq| {
                Uri::try_from(pq.as_str()).map_err(|_| bad_url())
            })?;
        for header in &args.headers {
            let (name, value) = parse_header(header)?;
            req.headers_mut().append(name, value);
        }
        if !req.headers().contains_key(http::header::HOST) {
            req.headers_mut().insert(http::header::HOST, host);
        }
        drop_underscored(req.headers_mut());
        request_host(&req).map_err(|bad| InputError::Host(bad.to_string()))?;
        let client = match &args.client {
            Some(c) => c.parse().map_err(|_| InputError::Client(c.clone()))?,
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        Ok(ExplainRequest { req, client, https })
    }

    /// The host the proxy routes on.
    pub fn host(&self) -> Option<String> {
        let host = request_host(&self.req).ok().flatten()?;
        host.to_str().ok().map(str::to_owned)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        self.req.method()
    }

    /// The path.
    pub fn path(&self) -> &str {
        self.req.uri().path()
    }

    /// The query, if any.
    pub fn query(&self) -> Option<&str> {
        self.req.uri().query()
    }

    /// The headers (without those the proxy drops on arrival).
    pub fn headers(&self) -> &http::HeaderMap {
        self.req.headers()
    }

    /// The client firewalls and rate limits judge.
    pub fn client(&self) -> IpAddr {
        self.client
    }

    /// Whether the request came over TLS.
    pub fn https(&self) -> bool {
        self.https
    }

    /// The request's parts, to rewrite as the prepare phase does.
    pub fn parts(&self) -> http::request::Parts {
        let mut copy = Request::new(());
        *copy.method_mut() = self.req.method().clone();
        *copy.uri_mut() = self.req.uri().clone();
        *copy.headers_mut() = self.req.headers().clone();
        copy.into_parts().0
    }

    /// The request as `explain` shows it.
    pub(super) fn view(&self) -> RequestView {
        RequestView {
            method: self.method().to_string(),
            scheme: if self.https { "https" } else { "http" }.to_owned(),
            host: self.host(),
            path: self.path().to_owned(),
            query: self.query().map(str::to_owned),
            client: self.client.to_string(),
        }
    }
}

/// `name: value`.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), InputError> {
    let bad = || InputError::Header(text.to_owned());
    let (name, value) = text.split_once(':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

/// Percent-decodes (and `+` as a space); a stray `%` stays as it is.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_survive_the_query_string() {
        let args = ExplainArgs {
            url: "http://www.mango.com/a b?x=1&y=%2F".into(),
            method: Some("POST".into()),
            headers: vec!["x-canary: 1".into(), "cookie: a=b; c=d".into()],
            client: Some("10.0.0.7".into()),
        };
        assert_eq!(ExplainArgs::from_query(&args.to_query()), Ok(args));
        assert_eq!(
            ExplainArgs::from_query("method=GET"),
            Err(InputError::MissingUrl)
        );
    }

    #[test]
    fn requests_are_read_as_the_proxy_reads_them() {
        let args = |url: &str, header: &str| ExplainArgs {
            url: url.into(),
            headers: vec![header.into()],
            ..ExplainArgs::default()
        };
        let req =
            ExplainRequest::new(&args("http://WWW.Mango.com:8080/x?q=1", "x_real: 1")).unwrap();
        assert_eq!(req.host().as_deref(), Some("WWW.Mango.com:8080"));
        assert_eq!((req.path(), req.query()), ("/x", Some("q=1")));
        assert!(
            !req.headers().contains_key("x_real"),
            "underscored headers are dropped"
        );
        assert_eq!(
            req.headers()["host"],
            "WWW.Mango.com:8080",
            "as curl sends it"
        );
        assert!(matches!(
            ExplainRequest::new(&args("mango.com/x", "a: b")),
            Err(InputError::Url(_))
        ));
        assert!(matches!(
            ExplainRequest::new(&args("http://mango.com/", "no colon")),
            Err(InputError::Header(_))
        ));
    }
}
