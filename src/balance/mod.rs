//! Load balancing: which endpoint of a rule takes the next request.
//!
//! Owns: the [`Balancer`] built once per compile from endpoint weights, and
//! the [`EndpointState`] shared across compiles. Must not: know about HTTP —
//! a balancer picks an index; the route table maps it to an address.

mod round_robin;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

pub use round_robin::RoundRobin;

use crate::api::Algorithm;

/// Runtime state of one endpoint, shared by every rule that uses it and
/// carried from one route table to the next (keyed by address, never by
/// weight or route), so a route edit does not reset it.
#[derive(Debug, Default)]
pub struct EndpointState {
    /// Requests sent to this endpoint whose response has not finished.
    in_flight: AtomicU64,
    /// Set by active health checks after `unhealthyThreshold` failed
    /// probes, cleared after `healthyThreshold` passed ones. Stored negated
    /// so that a new endpoint starts healthy (optimistic, like nginx).
    unhealthy: AtomicBool,
    /// Passive health: failed requests in a row (reset by a success).
    consecutive_failures: AtomicU32,
    /// Passive health: ejections since the last success; the next
    /// ejection lasts `base * 2^ejections` (capped).
    ejections: AtomicU32,
    /// Passive health: ejected until this many milliseconds past
    /// [`time_base`]; 0 when never ejected.
    ejected_until_ms: AtomicU64,
}

impl EndpointState {
    /// Counts a request as in flight until the returned guard drops.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Requests currently in flight.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the endpoint may take new requests now. Balancers skip
    /// endpoints that are not. See [`is_available_at`](Self::is_available_at).
    pub fn is_available(&self) -> bool {
        self.is_available_at(Instant::now())
    }

    /// Whether the endpoint may take new requests at `now`: it passes its
    /// active health checks (or has none) and is not passively ejected.
    pub fn is_available_at(&self, now: Instant) -> bool {
        self.is_healthy() && !self.is_ejected_at(now)
    }

    /// Whether active health checks consider the endpoint healthy. True
    /// until they say otherwise, and for endpoints without checks.
    pub fn is_healthy(&self) -> bool {
        !self.unhealthy.load(Ordering::Relaxed)
    }

    /// Sets the active health verdict; returns whether it changed (so the
    /// caller logs once per flip).
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.unhealthy.swap(!healthy, Ordering::Relaxed) == healthy
    }

    /// Whether passive health has the endpoint ejected at `now`.
    pub fn is_ejected_at(&self, now: Instant) -> bool {
        millis_at(now) < self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// Passive health: counts a successful request. Resets the failure
    /// count, and the ejection backoff unless the endpoint is ejected (a
    /// straggler finishing during an ejection proves nothing). Returns
    /// whether this success ended a run of ejections (to log it once).
    pub fn record_success(&self, now: Instant) -> bool {
        // Loads first: the common case (nothing to reset) writes nothing.
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        !self.is_ejected_at(now)
            && self.ejections.load(Ordering::Relaxed) != 0
            && self.ejections.swap(0, Ordering::Relaxed) != 0
    }

    /// Passive health: counts a failed request; returns the failures in a
    /// row, this one included.
    pub fn record_failure(&self) -> u32 {
        self.consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// Passive health: ejects the endpoint from `now` for
    /// `base * 2^(previous ejections)`, capped at `max`. Returns the
    /// ejection's length, or `None` when another request ejected it first.
    pub fn eject(&self, now: Instant, base: Duration, max: Duration) -> Option<Duration> {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        let now_ms = millis_at(now);
        if now_ms < until {
            return None;
        }
        let previous = self.ejections.load(Ordering::Relaxed);
        let length = backoff(base, max, previous);
        let new_until = now_ms.saturating_add(length.as_millis() as u64).max(1);
        // One winner when failures race past the threshold together.
        self.ejected_until_ms
            .compare_exchange(until, new_until, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        self.ejections.fetch_add(1, Ordering::Relaxed);
        Some(length)
    }

    /// Passive health: ejections since the last success.
    pub fn ejections(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }
}

/// `base * 2^previous`, capped at `max`: how long the ejection after
/// `previous` ejections lasts.
pub fn backoff(base: Duration, max: Duration, previous: u32) -> Duration {
    base.checked_mul(1u32.checked_shl(previous).unwrap_or(u32::MAX))
        .map_or(max, |d| d.min(max))
}

/// The process-wide origin of the millisecond clock ejections are stored
/// in (an `AtomicU64` cannot hold an `Instant`). Set an hour before its
/// first use where the clock allows, so that instants read on other
/// runtimes' clocks (paused-time tests) do not fall before it.
fn time_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
    })
}

/// Milliseconds from [`time_base`] to `now` (0 before it).
fn millis_at(now: Instant) -> u64 {
    now.saturating_duration_since(time_base()).as_millis() as u64
}

/// Marks one request in flight on an endpoint; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<EndpointState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A compiled balancer over a rule's endpoints.
#[derive(Debug)]
pub enum Balancer {
    /// Smooth weighted round robin.
    RoundRobin(RoundRobin),
}

impl Balancer {
    /// Builds the balancer for `algorithm` over endpoints with these weights
    /// (index = endpoint). Returns `None` when no endpoint has a weight.
    pub fn new(algorithm: Algorithm, weights: &[u32]) -> Option<Self> {
        match algorithm {
            Algorithm::RoundRobin => RoundRobin::new(weights).map(Balancer::RoundRobin),
        }
    }

    /// The index of the endpoint for the next request. Atomics only.
    pub fn pick(&self) -> usize {
        match self {
            Balancer::RoundRobin(rr) => rr.pick(),
        }
    }
}
