//! Responses the proxy makes itself instead of forwarding: a synthetic
//! answer a rule asks for (a redirect) or a failure, and the one log line
//! each gets.
//!
//! Owns: [`Answer`], [`Answered`] (an answer with the route it was made
//! for) and the log phase of proxy-made answers. Must not: decide whether
//! to answer (the phases do) or map failures to statuses (`ProxyError`
//! does, in one place).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use tracing::debug;

use super::error::{plain_response, ProxyError};
use super::grpc;
use crate::table::Rule;

/// A response made by the proxy, not a backend.
#[derive(Debug)]
pub enum Answer {
    /// The rule redirects: a synthetic response, not a failure.
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: StatusCode,
        /// Where to.
        location: HeaderValue,
    },
    /// The request failed.
    Failed(ProxyError),
}

impl From<ProxyError> for Answer {
    fn from(err: ProxyError) -> Self {
        Answer::Failed(err)
    }
}

impl Answer {
    /// A short, stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Answer::Redirect { .. } => "redirect",
            Answer::Failed(err) => err.reason(),
        }
    }

    /// The response the client gets: for a gRPC request (`grpc`), a
    /// trailers-only gRPC status.
    pub fn into_response(self, grpc: bool) -> Response<Full<Bytes>> {
        match self {
            Answer::Redirect { location, .. } if grpc => grpc::redirected(&location),
            Answer::Failed(err) if grpc => grpc::failed(&err),
            Answer::Redirect { status, location } => {
                let mut response = plain_response(status, "redirecting\n");
                response.headers_mut().insert(header::LOCATION, location);
                response
            }
            Answer::Failed(err) => err.into_response(),
        }
    }
}

/// An [`Answer`] with the rule it was made for; none when the request
/// matched no route.
#[derive(Debug)]
pub struct Answered {
    /// What the client gets.
    pub answer: Answer,
    /// The matched rule, for the log line and the metrics.
    pub rule: Option<Arc<Rule>>,
}

impl From<ProxyError> for Answered {
    fn from(err: ProxyError) -> Self {
        Answered {
            answer: Answer::Failed(err),
            rule: None,
        }
    }
}

impl Answered {
    /// `answer`, made for `rule`.
    pub fn on(rule: &Arc<Rule>, answer: Answer) -> Self {
        Answered {
            answer,
            rule: Some(rule.clone()),
        }
    }

    /// The log phase of a proxy-made answer: one debug line naming the
    /// method, the route and why; then the response (a gRPC status when
    /// the request is `grpc`).
    pub fn log_and_respond(self, method: &Method, grpc: bool) -> Response<Full<Bytes>> {
        let route = self.rule.as_ref().map_or("none", |rule| &*rule.route);
        let reason = self.answer.reason();
        match &self.answer {
            Answer::Redirect { status, location } => debug!(
                %method, route, reason, %status, ?location, grpc,
                "request answered by the proxy"
            ),
            Answer::Failed(err) => debug!(
                %method, route, reason, side = err.side().label(), error = %err, grpc,
                "request answered by the proxy"
            ),
        }
        self.answer.into_response(grpc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_answers_with_its_status_and_location() {
        let answer = Answer::Redirect {
            status: StatusCode::PERMANENT_REDIRECT,
            location: HeaderValue::from_static("https://www.mango.com/"),
        };
        assert_eq!(answer.reason(), "redirect");
        let response = Answered::from(ProxyError::NoRoute);
        let response = Answered { answer, ..response }.log_and_respond(&Method::GET, false);
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://www.mango.com/"
        );
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn a_failure_before_routing_has_no_route() {
        let answered = Answered::from(ProxyError::NoRoute);
        assert!(answered.rule.is_none());
        let response = answered.log_and_respond(&Method::GET, false);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
