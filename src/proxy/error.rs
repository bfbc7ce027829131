//! Every way a proxied request can fail: which side failed, whether another
//! try may fix it, and the one place that maps each to what the client sees.
//!
//! Must not: know about redirects or other answers the proxy makes on
//! purpose (those are [`super::answer::Answer`]s).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::policy::firewall::Denied;
use crate::table::NoTarget;
use crate::upstream::body::BodyError;
use crate::upstream::ConnectError;

/// Why the proxy answered instead of a backend.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No route for the host, or no rule of it matched.
    #[error("no route matches the request")]
    NoRoute,
    /// On a TLS connection, the request's host needs another certificate
    /// than the one the connection's SNI got (421).
    #[error("the host is served with another certificate than this connection's")]
    Misdirected,
    /// The request could not be understood (e.g. an unusable URI).
    #[error("malformed request")]
    BadRequest,
    /// The request target is longer than `--max-uri-bytes`.
    #[error("request URI over the limit")]
    UriTooLong,
    /// Some reading of the path (as a backend may decode it) selects
    /// another rule, or none, than the path as sent.
    #[error("the path names another rule for some backends")]
    AmbiguousPath,
    /// CONNECT: switchyard is a reverse proxy, not a forward-proxy tunnel.
    #[error("CONNECT is not supported")]
    MethodNotAllowed,
    /// An HTTP/2 extended CONNECT (RFC 8441) for a protocol other than
    /// WebSocket: a method the proxy does not implement for it (501, as
    /// nginx answers for methods it does not know).
    #[error("extended CONNECT for a protocol other than websocket")]
    ProtocolNotImplemented,
    /// The matched rule has no endpoint to send to.
    #[error("no endpoint available: {0}")]
    NoEndpoint(std::sync::Arc<str>),
    /// The matched rule has endpoints, but every one is failing its
    /// active health checks.
    #[error("no healthy endpoint")]
    NoHealthyEndpoint,
    /// Connecting to the backend failed (refused, unreachable).
    #[error("could not connect to the backend")]
    Connect(#[source] ConnectError),
    /// Connecting to the backend took longer than the rule's
    /// `timeouts.connect` (or the `--connect-timeout` default).
    #[error("connecting to the backend timed out")]
    ConnectTimeout(#[source] ConnectError),
    /// TLS to an HTTPS backend failed: its certificate is not trusted or
    /// not for the name, or it does not speak TLS.
    #[error("TLS to the backend failed")]
    BackendTls(#[source] ConnectError),
    /// The backend closed or reset the connection, or sent garbage.
    #[error("the backend failed")]
    Upstream(#[source] hyper::Error),
    /// An HTTP/2 backend did not process the request (GOAWAY,
    /// `REFUSED_STREAM`): it may go again, whatever its method.
    #[error("the backend did not process the request")]
    Unprocessed(#[source] hyper::Error),
    /// The backend answered an HTTP/2 client's WebSocket handshake with a
    /// success other than 101: an HTTP/2 client would read any 2xx as the
    /// tunnel opening.
    #[error("the backend did not switch to WebSocket")]
    NotSwitched,
    /// The backend did not start its response in time.
    #[error("the backend did not answer in time")]
    Timeout,
    /// The rule's firewall refused the request.
    #[error("refused by the firewall ({})", .0.reason())]
    Forbidden(Denied),
    /// The rule's rate limit is exhausted for this key.
    #[error("rate limited; retry after {retry_after_secs}s")]
    RateLimited {
        /// Whole seconds until a request would be admitted.
        retry_after_secs: u64,
    },
    /// The request body is larger than the rule's `maxBodySize`.
    #[error("request body over the limit")]
    BodyTooLarge,
    /// The client's request body broke HTTP/1.1 framing (a malformed
    /// chunk): the client's fault, whatever the backend saw of it.
    #[error("the request body is malformed")]
    BadBody,
    /// The client closed or reset its connection before sending its whole
    /// body (an abandoned upload).
    #[error("the client went away before sending its whole body")]
    ClientGone,
    /// The client sent nothing of its body for `--client-body-timeout`.
    #[error("the request body stalled past the client body timeout")]
    BodyTimeout,
    /// The backend's response carried both `Content-Length` and
    /// `Transfer-Encoding` (RFC 9112 §6.3): where it ends is ambiguous, so
    /// neither it nor its connection is used.
    #[error("the backend's response has both Content-Length and Transfer-Encoding")]
    AmbiguousResponse,
}

/// Which side of the proxy a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client's request: malformed, refused by policy, or for nothing
    /// served here.
    Client,
    /// The backend: unreachable, failing, or too slow.
    Upstream,
    /// The proxy's own state: the rule has nothing to send to.
    Proxy,
}

impl Side {
    /// A short, stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Proxy => "proxy",
        }
    }
}

impl ProxyError {
    /// No connection took the request: a connect timeout, TLS failing,
    /// or another connect failure.
    pub fn connect(err: ConnectError) -> ProxyError {
        if err.is_timeout() {
            ProxyError::ConnectTimeout(err)
        } else if err.is_tls() {
            ProxyError::BackendTls(err)
        } else {
            ProxyError::Connect(err)
        }
    }

    /// The failure of a request that was sent: the client's own body
    /// failing (found in the error's causes: the client gets 400 or 408,
    /// the backend is not blamed), the backend not processing it, or the
    /// exchange failing.
    pub fn upstream(err: hyper::Error, unprocessed: bool) -> ProxyError {
        if let Some(body) = cause::<BodyError>(&err) {
            ProxyError::from(body)
        } else if unprocessed {
            ProxyError::Unprocessed(err)
        } else {
            ProxyError::Upstream(err)
        }
    }

    /// Which side failed.
    pub fn side(&self) -> Side {
        match self {
            ProxyError::NoRoute
            | ProxyError::Misdirected
            | ProxyError::BadRequest
            | ProxyError::UriTooLong
            | ProxyError::AmbiguousPath
            | ProxyError::MethodNotAllowed
            | ProxyError::ProtocolNotImplemented
            | ProxyError::Forbidden(_)
            | ProxyError::RateLimited { .. }
            | ProxyError::BodyTooLarge
            | ProxyError::BadBody
            | ProxyError::ClientGone
            | ProxyError::BodyTimeout => Side::Client,
            ProxyError::NoHealthyEndpoint
            | ProxyError::Connect(_)
            | ProxyError::ConnectTimeout(_)
            | ProxyError::BackendTls(_)
            | ProxyError::Upstream(_)
            | ProxyError::Unprocessed(_)
            | ProxyError::AmbiguousResponse
            | ProxyError::NotSwitched
            | ProxyError::Timeout => Side::Upstream,
            ProxyError::NoEndpoint(_) => Side::Proxy,
        }
    }

    /// Whether another endpoint may be tried for a request that failed
    /// so: always when nothing reached the backend (a failed connect),
    /// for an `idempotent` request when the connection failed before any
    /// response byte (or sent a response of ambiguous length), never
    /// otherwise (a timed-out backend may still be working on it; a body
    /// over the limit, malformed, abandoned or stalled is the client's
    /// doing).
    pub fn retryable(&self, idempotent: bool) -> bool {
        match self {
            ProxyError::Connect(_)
            | ProxyError::ConnectTimeout(_)
            | ProxyError::BackendTls(_)
            | ProxyError::Unprocessed(_) => true,
            ProxyError::Upstream(_) | ProxyError::AmbiguousResponse => idempotent,
            _ => false,
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            // A client that left mid-body reads nothing; one that only
            // half-closed learns its request was cut (nginx logs 400 for
            // a body the client stopped sending, too).
            ProxyError::BadRequest
            | ProxyError::AmbiguousPath
            | ProxyError::BadBody
            | ProxyError::ClientGone => StatusCode::BAD_REQUEST,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::ProtocolNotImplemented => StatusCode::NOT_IMPLEMENTED,
            ProxyError::NoEndpoint(_) | ProxyError::NoHealthyEndpoint => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Connect(_)
            | ProxyError::BackendTls(_)
            | ProxyError::Upstream(_)
            | ProxyError::Unprocessed(_)
            | ProxyError::AmbiguousResponse
            | ProxyError::NotSwitched => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout | ProxyError::ConnectTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Forbidden(_) => StatusCode::FORBIDDEN,
            ProxyError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// A short, stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "no_route",
            ProxyError::Misdirected => "misdirected",
            ProxyError::BadRequest => "bad_request",
            ProxyError::UriTooLong => "uri_too_long",
            ProxyError::AmbiguousPath => "ambiguous_path",
            ProxyError::MethodNotAllowed => "method_not_allowed",
            ProxyError::ProtocolNotImplemented => "protocol_not_implemented",
            ProxyError::NotSwitched => "upstream_not_switched",
            ProxyError::NoEndpoint(_) => "no_endpoint",
            ProxyError::NoHealthyEndpoint => "no_healthy_endpoint",
            ProxyError::Connect(_) => "connect_failed",
            ProxyError::Upstream(_) => "upstream_failed",
            ProxyError::BackendTls(_) => "upstream_tls_failed",
            ProxyError::Unprocessed(_) => "upstream_unprocessed",
            ProxyError::ConnectTimeout(_) => "connect_timeout",
            ProxyError::Timeout => "timeout",
            ProxyError::Forbidden(_) => "forbidden",
            ProxyError::RateLimited { .. } => "rate_limited",
            ProxyError::BodyTooLarge => "body_too_large",
            ProxyError::BadBody => "bad_request_body",
            ProxyError::ClientGone => "client_closed",
            ProxyError::BodyTimeout => "client_body_timeout",
            ProxyError::AmbiguousResponse => "upstream_ambiguous_length",
        }
    }

    /// The one-line body the client gets.
    fn body(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "no route for this host and path\n",
            ProxyError::Misdirected => "misdirected request: open a new connection for this host\n",
            ProxyError::BadRequest => "malformed request\n",
            ProxyError::UriTooLong => "request URI too long\n",
            ProxyError::AmbiguousPath => {
                "bad request: backends may read this path under another route\n"
            }
            ProxyError::MethodNotAllowed => "CONNECT is not supported\n",
            ProxyError::ProtocolNotImplemented => "only websocket is tunnelled over CONNECT\n",
            ProxyError::NotSwitched => "bad gateway: the backend did not switch to WebSocket\n",
            ProxyError::NoEndpoint(_) => "no endpoint available for this route\n",
            ProxyError::NoHealthyEndpoint => "no healthy endpoint for this route\n",
            ProxyError::Connect(_) => "bad gateway: could not connect to the backend\n",
            ProxyError::Upstream(_) => "bad gateway: the backend failed\n",
            ProxyError::BackendTls(_) => "bad gateway: TLS to the backend failed\n",
            ProxyError::Unprocessed(_) => "bad gateway: the backend did not process the request\n",
            ProxyError::ConnectTimeout(_) => {
                "gateway timeout: connecting to the backend timed out\n"
            }
            ProxyError::Timeout => "gateway timeout: the backend did not answer in time\n",
            ProxyError::Forbidden(_) => "forbidden\n",
            ProxyError::RateLimited { .. } => "too many requests\n",
            ProxyError::BodyTooLarge => "request body too large\n",
            ProxyError::BadBody => "malformed request body\n",
            ProxyError::ClientGone => "request body incomplete\n",
            ProxyError::BodyTimeout => "request timeout: the request body stalled\n",
            ProxyError::AmbiguousResponse => {
                "bad gateway: the backend's response length is ambiguous\n"
            }
        }
    }

    /// The response: the status and a one-line body.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = plain_response(self.status(), self.body());
        if let ProxyError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// A response the proxy makes itself: `status` and a one-line plain-text
/// `body`.
pub fn plain_response(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl From<&BodyError> for ProxyError {
    /// The client's body failed: over the limit, stalled, malformed (the
    /// HTTP/1.1 decoder's `InvalidData`/`InvalidInput`), or else cut short
    /// by the client (end of stream mid-body, a reset, an HTTP/2 stream
    /// reset).
    fn from(err: &BodyError) -> Self {
        match err {
            BodyError::TooLarge => ProxyError::BodyTooLarge,
            BodyError::Stalled => ProxyError::BodyTimeout,
            BodyError::Inner(err) => match cause::<std::io::Error>(err).map(std::io::Error::kind) {
                Some(std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput) => {
                    ProxyError::BadBody
                }
                _ => ProxyError::ClientGone,
            },
        }
    }
}

impl From<BodyError> for ProxyError {
    fn from(err: BodyError) -> Self {
        ProxyError::from(&err)
    }
}

/// The first cause of `err` (itself excluded) of type `E`.
fn cause<'e, E: std::error::Error + 'static>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e E> {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<E>() {
            return Some(found);
        }
        source = cause.source();
    }
    None
}

impl From<NoTarget<'_>> for ProxyError {
    fn from(none: NoTarget<'_>) -> Self {
        match none {
            NoTarget::Unavailable(reason) => ProxyError::NoEndpoint(reason.clone()),
            NoTarget::Unhealthy => ProxyError::NoHealthyEndpoint,
        }
    }
}

#[cfg(test)]
mod tests;
