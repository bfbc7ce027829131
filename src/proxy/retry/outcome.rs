//! What a try's result means: for the client (the response, or the
//! failure it is answered with), for passive health (the backend's fault,
//! or nothing when the client's body failed), and for the connection (a
//! response of ambiguous length condemns it).
//!
//! Must not: retry or report; the send phase does, from these answers.

use http::{header, HeaderMap, Response};
use hyper::body::Incoming;

use super::TryResult;
use crate::health::passive::Outcome;
use crate::proxy::connect::Condemn;
use crate::proxy::error::{ProxyError, Side};

/// What the client gets from a try, if it is the last: the response head,
/// or the failure (a body over the limit is the client's, whatever the
/// upstream error it caused). A response whose length is ambiguous is a
/// failure, and its connection is condemned before the response (and its
/// body) is dropped, so the pool never hands it out again.
pub(super) fn outcome(result: TryResult, tripped: bool) -> Result<Response<Incoming>, ProxyError> {
    match result {
        Err(_) => Err(ProxyError::Timeout),
        Ok(Err(_)) if tripped => Err(ProxyError::BodyTooLarge),
        Ok(Err(err)) => Err(ProxyError::upstream(err)),
        Ok(Ok(response)) if ambiguous_length(response.headers()) => {
            if let Some(connection) = response.extensions().get::<Condemn>() {
                connection.condemn();
            }
            Err(ProxyError::AmbiguousResponse)
        }
        Ok(Ok(response)) => Ok(response),
    }
}

/// Whether a response declares both a `Content-Length` and a
/// `Transfer-Encoding`: a sign of response splitting or a broken backend
/// that RFC 9112 §6.3 says to handle as an error (nginx answers 502).
fn ambiguous_length(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING) && headers.contains_key(header::CONTENT_LENGTH)
}

/// What a try tells passive health: a response below 500 is a success; a
/// 5xx or a failure of the backend's side (connect, reset, garbage,
/// timeout) is a failure; a failure of the client's side is nothing.
pub(super) fn passive_outcome<B>(result: &Result<Response<B>, ProxyError>) -> Option<Outcome> {
    match result {
        Ok(response) => Some(Outcome::of_status(response.status())),
        Err(err) if err.side() == Side::Upstream => Some(Outcome::Failure),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(code: u16) -> Result<Response<()>, ProxyError> {
        Ok(Response::builder().status(code).body(()).unwrap())
    }

    #[test]
    fn the_backend_is_judged_by_its_answer_or_its_failure_never_by_the_clients() {
        let judged = |result| passive_outcome::<()>(&result);
        assert_eq!(judged(answered(200)), Some(Outcome::Success));
        assert_eq!(judged(answered(404)), Some(Outcome::Success));
        assert_eq!(judged(answered(500)), Some(Outcome::Failure));
        assert_eq!(judged(answered(503)), Some(Outcome::Failure));
        assert_eq!(judged(Err(ProxyError::Timeout)), Some(Outcome::Failure));
        assert_eq!(
            judged(Err(ProxyError::AmbiguousResponse)),
            Some(Outcome::Failure)
        );
        for client in [
            ProxyError::BodyTooLarge,
            ProxyError::BadBody,
            ProxyError::ClientGone,
            ProxyError::BodyTimeout,
        ] {
            assert_eq!(judged(Err(client)), None);
        }
    }
}
