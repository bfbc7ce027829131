//! What a try's result means: for the client (the response, or the
//! failure it is answered with), for passive health (the backend's fault,
//! or nothing when the client's body failed), and for the connection (a
//! response of ambiguous length condemns it).
//!
//! Must not: retry or report; the send phase does, from these answers.

use http::{header, HeaderMap, Request, Response};

use super::TryResult;
use crate::health::passive::Outcome;
use crate::proxy::error::{ProxyError, Side};
use crate::upstream::{RequestBody, ResponseBody, SendError};

/// What a try's result is for the caller: the response or the failure,
/// and a request that no connection took (back whole, for another try).
type TryOutcome = (
    Result<Response<ResponseBody>, ProxyError>,
    Option<Request<RequestBody>>,
);

/// What the client gets from a try, if it is the last: the response head,
/// or the failure (a body over the limit is the client's, whatever the
/// upstream error it caused). A response whose length is ambiguous is a
/// failure, and its connection is condemned, so it is never used again.
pub(super) fn outcome(result: TryResult, tripped: bool) -> TryOutcome {
    match result {
        Err(_) => (Err(ProxyError::Timeout), None),
        Ok(Err(SendError::NotSent { request, cause })) => {
            (Err(ProxyError::connect(cause)), Some(request))
        }
        Ok(Err(SendError::Sent { .. })) if tripped => (Err(ProxyError::BodyTooLarge), None),
        Ok(Err(SendError::Sent { error, unprocessed })) => {
            (Err(ProxyError::upstream(error, unprocessed)), None)
        }
        Ok(Ok(mut response)) if ambiguous_length(response.headers()) => {
            response.body_mut().condemn();
            (Err(ProxyError::AmbiguousResponse), None)
        }
        Ok(Ok(response)) => (Ok(response), None),
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
