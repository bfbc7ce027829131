//! Load balancing: which endpoint of a backend takes the next request.
//!
//! Owns: the [`Balancer`] built once per compile from a backend's endpoint
//! states (one per algorithm), the [`RoundRobin`] schedule also used to split
//! a rule's traffic across its backends, and the [`EndpointState`] shared
//! across compiles. Must not: know about HTTP — a balancer picks an index
//! (a request key, when there is one, arrives already hashed); the route
//! table maps it to an address.
//!
//! Every pick uses atomics only. Endpoints whose
//! [`EndpointState::is_available`] is false are skipped, with a bounded
//! number of extra looks; when no endpoint of the backend is available the
//! pick fails open (it ignores availability) and the caller can tell from
//! the picked endpoint's state.

mod hash;
mod least;
mod rng;
mod round_robin;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

pub use hash::{hash_key, Ring};
pub use least::{LeastConnections, LeastTime};
pub use round_robin::RoundRobin;

use crate::api::Algorithm;

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

    /// Whether the endpoint may take new requests. Balancers skip
    /// endpoints that are not. Every endpoint is available until health
    /// checking marks it otherwise.
    pub fn is_available(&self) -> bool {
        true
    }
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

// === Balancer ===

/// A compiled balancer over the endpoints of one backend (all of equal
/// weight): `pick` returns an index into the states it was built from.
#[derive(Debug)]
pub struct Balancer {
    /// The endpoints, in the table's order (sorted by address).
    states: Box<[Arc<EndpointState>]>,
    /// The algorithm and its precomputed data.
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// `RoundRobin` and `WeightedRoundRobin`: strict turns.
    RoundRobin(RoundRobin),
    LeastConnections(LeastConnections),
    LeastTime(LeastTime),
    Random,
    /// The ring, and the turn counter for requests without a key.
    ConsistentHash(Ring, AtomicUsize),
}

impl Balancer {
    /// Builds the balancer for `algorithm` over `endpoints`: each endpoint's
    /// identity (its address, which places it on a consistent-hash ring) and
    /// state. `None` when there is no endpoint.
    pub fn new(algorithm: Algorithm, endpoints: &[(&str, Arc<EndpointState>)]) -> Option<Self> {
        if endpoints.is_empty() {
            return None;
        }
        let n = endpoints.len();
        let kind = match algorithm {
            Algorithm::RoundRobin | Algorithm::WeightedRoundRobin => {
                Kind::RoundRobin(RoundRobin::new(&vec![1; n])?)
            }
            Algorithm::LeastConnections => Kind::LeastConnections(LeastConnections::default()),
            Algorithm::LeastTime => Kind::LeastTime(LeastTime),
            Algorithm::Random => Kind::Random,
            Algorithm::ConsistentHash => {
                let keys: Vec<&str> = endpoints.iter().map(|(key, _)| *key).collect();
                Kind::ConsistentHash(Ring::new(&keys), AtomicUsize::new(0))
            }
        };
        Some(Balancer {
            states: endpoints.iter().map(|(_, s)| s.clone()).collect(),
            kind,
        })
    }

    /// The index of the endpoint for the next request. `key` is the
    /// request's hashed key (consistent hashing only; `None` when the
    /// request lacks it); `now` dates latency averages. Atomics only.
    pub fn pick(&self, key: Option<u64>, now: Instant) -> usize {
        let states = &self.states;
        match &self.kind {
            Kind::RoundRobin(rr) => available_from(states, rr.pick()),
            Kind::LeastConnections(lc) => lc.pick(states),
            Kind::LeastTime(lt) => lt.pick(states, now),
            Kind::Random => available_from(states, rng::below(states.len())),
            Kind::ConsistentHash(ring, turn) => match key {
                Some(key) => ring.pick(key, states),
                None => available_from(states, turn.fetch_add(1, Ordering::Relaxed) % states.len()),
            },
        }
    }

    /// How many endpoints the balancer picks from.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether the balancer has no endpoint (never true once built).
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

/// `first` if it is available, else the next available endpoint after it
/// (in index order, wrapping; at most one pass), else `first` (fail open).
fn available_from(states: &[Arc<EndpointState>], first: usize) -> usize {
    let n = states.len();
    (0..n)
        .map(|k| (first + k) % n)
        .find(|i| states[*i].is_available())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests;
