//! The timer behind HTTP/1.1's header-read timeout: a deadline checked
//! when hyper looks at it, with no timer registered per request.
//!
//! hyper arms its header timer for every request head it waits for, and
//! with tokio's timer that is a `Sleep` allocated, registered in the timer
//! wheel and removed again per request (3 % of a request's instructions).
//! This timer's sleeps only remember their deadline. They never wake
//! anyone; they rely on the connection's task being polled at least every
//! [`TICK_DIVISOR`]th of the timeout, which the connection's quiet timer
//! does (see `accept::idle_deadline`), so a slow head is still cut, at
//! most a tick late.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::Instant;

use hyper::rt::{Sleep, Timer};

/// The connection's quiet timer wakes its task at least this many times
/// per header timeout.
pub const TICK_DIVISOR: u32 = 4;

/// A [`Timer`] whose sleeps are deadlines checked when polled.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoarseTimer;

/// A deadline: ready once it has passed, when next polled.
struct Deadline(Instant);

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Sleep for Deadline {}

// hyper's `Timer` speaks `std::time::Instant`; deadlines are kept and
// compared as tokio's, like every other clock reading here.
#[allow(clippy::disallowed_types)]
impl Timer for CoarseTimer {
    fn sleep(&self, duration: std::time::Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(Deadline(Instant::now() + duration))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(Deadline(Instant::from_std(deadline)))
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: std::time::Instant) {
        *sleep = self.sleep_until(new_deadline);
    }
}
