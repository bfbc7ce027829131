//! Endpoint runtime state: in-flight requests, latency average, active
//! health verdict and passive ejection, shared by every rule that uses the
//! endpoint and carried from one route table to the next.
//!
//! Owns: [`EndpointState`] and its atomics. Must not: read the clock —
//! every method that needs the time takes `now`, so paused-time tests drive
//! it and a balancer scanning endpoints reads the clock once per pick.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// The time constant of the latency average (see
/// [`EndpointState::observe_latency`]): a sample's influence fades by a
/// factor e per second.
const LATENCY_DECAY: Duration = Duration::from_secs(1);

/// Runtime state of one endpoint, shared by every rule that uses it and
/// carried from one route table to the next (keyed by address, never by
/// weight or route), so a route edit does not reset it.
#[derive(Debug, Default)]
pub struct EndpointState {
    /// Requests sent to this endpoint whose response has not finished.
    in_flight: AtomicU64,
    /// Exponentially weighted moving average of the time to the response
    /// head, in microseconds; 0 until the first response.
    latency_ewma_us: AtomicU64,
    /// When the average last took a sample, in microseconds after `epoch`.
    latency_at_us: AtomicU64,
    /// The first sample's time: the zero of `latency_at_us` (set once; an
    /// `Instant` has no atomic form).
    epoch: OnceLock<Instant>,
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
    /// Passive health: a request was sent to the endpoint during its
    /// ejection, as a last resort (see [`EndpointState::begin_trial`]), so
    /// a success now proves it answers again.
    trial: AtomicBool,
    /// Ejections ever, for the metrics (never reset).
    ejections_total: AtomicU64,
    /// Active health verdict changes ever, for the metrics.
    health_flips: AtomicU64,
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
        let flipped = self.unhealthy.swap(!healthy, Ordering::Relaxed) == healthy;
        if flipped {
            self.health_flips.fetch_add(1, Ordering::Relaxed);
        }
        flipped
    }

    /// Ejections and active health flips so far (for the metrics).
    pub fn health_events(&self) -> (u64, u64) {
        (
            self.ejections_total.load(Ordering::Relaxed),
            self.health_flips.load(Ordering::Relaxed),
        )
    }

    /// Whether passive health has the endpoint ejected at `now`.
    pub fn is_ejected_at(&self, now: Instant) -> bool {
        millis_at(now) < self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// Passive health: counts a successful request. Resets the failure
    /// count, and the ejection backoff unless the endpoint is ejected: a
    /// straggler sent before the ejection proves nothing, but a request
    /// sent during it as a last resort (a trial) does, and ends it.
    /// Returns whether this success ended a run of ejections (to log it
    /// once).
    pub fn record_success(&self, now: Instant) -> bool {
        // Loads first: the common case (nothing to reset) writes nothing.
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.is_ejected_at(now) && !(self.end_trial() && self.end_ejection(now)) {
            return false;
        }
        self.ejections.load(Ordering::Relaxed) != 0
            && self.ejections.swap(0, Ordering::Relaxed) != 0
    }

    /// Passive health: marks that a request goes to the endpoint although
    /// it is ejected, because no endpoint that is not could take it (a
    /// last resort): if it succeeds, the ejection ends. Cleared by a new
    /// ejection and by a failure.
    pub fn begin_trial(&self) {
        if !self.trial.load(Ordering::Relaxed) {
            self.trial.store(true, Ordering::Relaxed);
        }
    }

    /// Clears a pending trial; returns whether one was pending.
    pub fn end_trial(&self) -> bool {
        self.trial.load(Ordering::Relaxed) && self.trial.swap(false, Ordering::Relaxed)
    }

    /// Passive health: ends the ejection running at `now`, if any (an
    /// active check or a trial showed the endpoint answers again). The
    /// failure count and backoff stay: one more failure ejects it again,
    /// for longer, until a success resets them. Returns whether an
    /// ejection ended.
    pub fn end_ejection(&self, now: Instant) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        millis_at(now) < until
            && self
                .ejected_until_ms
                .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
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
        self.ejections_total.fetch_add(1, Ordering::Relaxed);
        self.end_trial();
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
/// in (an `AtomicU64` cannot hold an `Instant`): an hour before the first
/// instant it is given, where the clock allows, so that instants read on
/// other runtimes' clocks (paused-time tests) do not fall before it.
fn time_base(first: Instant) -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| {
        first
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or(first)
    })
}

/// Milliseconds from [`time_base`] to `now` (0 before it).
fn millis_at(now: Instant) -> u64 {
    now.saturating_duration_since(time_base(now)).as_millis() as u64
}

// === latency ===

impl EndpointState {
    /// Records that a response head arrived `latency` after its request was
    /// sent, at `now`. The average is time-weighted: a sample taken `t`
    /// after the previous one has weight `1 - e^(-t / 1s)`, so the average
    /// covers about the last second whatever the request rate. The first
    /// sample is taken as is. Lock-free (a compare-and-swap loop).
    pub fn observe_latency(&self, latency: Duration, now: Instant) {
        let at = self.micros_since_epoch(now);
        let sample = duration_us(latency).max(1);
        let last = self.latency_at_us.swap(at, Ordering::Relaxed);
        let keep = decay(at.saturating_sub(last));
        let _ = self
            .latency_ewma_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                if old == 0 {
                    return Some(sample);
                }
                let mixed = old as f64 * keep + sample as f64 * (1.0 - keep);
                Some((mixed.round() as u64).max(1))
            });
    }

    /// The latency average in microseconds as of `now`, 0 when no response
    /// has been seen. While no response arrives the average fades toward 0
    /// (by e per second), so an endpoint that was slow is tried again
    /// after a while instead of being shunned forever.
    pub fn latency_us(&self, now: Instant) -> u64 {
        let ewma = self.latency_ewma_us.load(Ordering::Relaxed);
        if ewma == 0 {
            return 0;
        }
        let Some(epoch) = self.epoch.get() else {
            return ewma;
        };
        let at = duration_us(now.saturating_duration_since(*epoch));
        let idle = at.saturating_sub(self.latency_at_us.load(Ordering::Relaxed));
        (ewma as f64 * decay(idle)).round() as u64
    }

    fn micros_since_epoch(&self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_init(|| now);
        duration_us(now.saturating_duration_since(epoch))
    }
}

/// The weight an average keeps after `elapsed_us` microseconds.
fn decay(elapsed_us: u64) -> f64 {
    (-(elapsed_us as f64) / LATENCY_DECAY.as_micros() as f64).exp()
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Marks one request in flight on an endpoint; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<EndpointState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
