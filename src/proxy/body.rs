//! Body wrappers of the response path.
//!
//! Owns: the wrappers a response body wears on its way back ([`Tracked`]
//! keeping its request counted in flight, [`Timed`] enforcing the idle and
//! total timeouts; in `response`). The request body's wrappers belong to
//! the upstream connections ([`crate::upstream::body`]). Must not: buffer a
//! body, lock, or start a timer before it is needed.

use bytes::Bytes;
use http_body_util::{Either, Full};

use crate::upstream::ResponseBody;

mod response;

pub use response::{Timed, Tracked};

/// What the proxy sends back: a backend's streamed body, or its own.
pub type ProxyBody = Either<Timed<Tracked<ResponseBody>>, Full<Bytes>>;

#[cfg(test)]
mod tests;
