//! Every way a proxied request can fail, and the one place that maps each to
//! what the client sees.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Why the proxy answered instead of a backend.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No route for the host, or no rule of it matched.
    #[error("no route matches the request")]
    NoRoute,
    /// The request could not be understood (e.g. an unusable URI).
    #[error("malformed request")]
    BadRequest,
    /// CONNECT: switchyard is a reverse proxy, not a forward-proxy tunnel.
    #[error("CONNECT is not supported")]
    MethodNotAllowed,
    /// The matched rule has no endpoint to send to.
    #[error("no endpoint available: {0}")]
    NoEndpoint(std::sync::Arc<str>),
    /// Connecting to the backend failed (refused, unreachable).
    #[error("could not connect to the backend")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// The backend closed or reset the connection, or sent garbage.
    #[error("the backend failed")]
    Upstream(#[source] hyper_util::client::legacy::Error),
    /// The backend did not start its response in time.
    #[error("the backend did not answer in time")]
    Timeout,
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::BadRequest => StatusCode::BAD_REQUEST,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::NoEndpoint(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect(_) | ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A short, stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "no_route",
            ProxyError::BadRequest => "bad_request",
            ProxyError::MethodNotAllowed => "method_not_allowed",
            ProxyError::NoEndpoint(_) => "no_endpoint",
            ProxyError::Connect(_) => "connect_failed",
            ProxyError::Upstream(_) => "upstream_failed",
            ProxyError::Timeout => "timeout",
        }
    }

    /// The response: the status and a one-line body.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body: &'static str = match &self {
            ProxyError::NoRoute => "no route for this host and path\n",
            ProxyError::BadRequest => "malformed request\n",
            ProxyError::MethodNotAllowed => "CONNECT is not supported\n",
            ProxyError::NoEndpoint(_) => "no endpoint available for this route\n",
            ProxyError::Connect(_) => "bad gateway: could not connect to the backend\n",
            ProxyError::Upstream(_) => "bad gateway: the backend failed\n",
            ProxyError::Timeout => "gateway timeout: the backend did not answer in time\n",
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}
