//! The per-rule request body limit.
//!
//! Owns: parsing `maxBodySize` quantities (once, at compile) and
//! [`LimitedBody`], which counts a streamed request body and fails it the
//! moment it passes the limit. Must not: buffer the body.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Parses a size: plain bytes (`1048576`) or a Kubernetes-style quantity
/// with a binary (`Ki`, `Mi`, `Gi`, `Ti`) or decimal (`k`, `M`, `G`, `T`)
/// suffix. Fractions and exponents are not accepted.
pub fn parse_quantity(value: &IntOrString) -> Result<u64, String> {
    let text = match value {
        IntOrString::Int(n) => {
            return u64::try_from(*n).map_err(|_| format!("{n} must not be negative"))
        }
        IntOrString::String(s) => s.trim(),
    };
    let bad = || {
        format!("{text:?} is not a size: use bytes or a quantity like 512Ki, 10Mi, 1Gi, 10k, 5M")
    };
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

/// The error a [`LimitedBody`] fails with: the limit was passed, or the
/// client's body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the rule's `maxBodySize` arrived.
    #[error("request body is larger than the limit")]
    TooLarge,
    /// Reading the client's body failed.
    #[error(transparent)]
    Inner(#[from] hyper::Error),
}

pin_project_lite::pin_project! {
    /// A request body counted as it streams; past `limit` bytes it fails
    /// with [`BodyError::TooLarge`] and raises its `tripped` flag, so the
    /// proxy can answer 413 instead of a generic upstream error.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        remaining: u64,
        tripped: Option<Arc<AtomicBool>>,
    }
}

impl<B> LimitedBody<B> {
    /// No limit.
    pub fn unlimited(inner: B) -> Self {
        LimitedBody {
            inner,
            remaining: u64::MAX,
            tripped: None,
        }
    }

    /// At most `limit` bytes; `tripped` is set when the limit is passed.
    pub fn new(inner: B, limit: u64, tripped: Arc<AtomicBool>) -> Self {
        LimitedBody {
            inner,
            remaining: limit,
            tripped: Some(tripped),
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Error = hyper::Error>,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.remaining() as u64);
                if len > *this.remaining {
                    if let Some(tripped) = this.tripped {
                        tripped.store(true, Ordering::Release);
                    }
                    *this.remaining = 0;
                    return Poll::Ready(Some(Err(BodyError::TooLarge)));
                }
                *this.remaining -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Inner(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        for (text, want) in [
            ("0", Ok(0)),
            ("1024", Ok(1024)),
            ("64Ki", Ok(65_536)),
            ("10Mi", Ok(10 * 1024 * 1024)),
            ("1Gi", Ok(1 << 30)),
            ("10k", Ok(10_000)),
            ("5M", Ok(5_000_000)),
            ("2G", Ok(2_000_000_000)),
            ("1.5Mi", Err(())),
            ("1e6", Err(())),
            ("10 Mi", Err(())),
            ("10MB", Err(())),
            ("Mi", Err(())),
            ("-1", Err(())),
            ("99999999999Ti", Err(())),
        ] {
            let got = parse_quantity(&IntOrString::String(text.into())).map_err(|_| ());
            assert_eq!(got, want, "case {text:?}");
        }
        assert_eq!(parse_quantity(&IntOrString::Int(4096)), Ok(4096));
        assert!(parse_quantity(&IntOrString::Int(-1)).is_err());
    }
}
