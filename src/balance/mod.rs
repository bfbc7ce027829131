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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

pub use hash::{hash_key, Ring, VNODES};
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

/// One endpoint handed to [`Balancer::new`]: its identity (the address,
/// which places it on a consistent-hash ring), its state and its weight
/// (greater than 0).
pub type Endpoint<'a> = (&'a str, Arc<EndpointState>, u32);

/// A compiled balancer over the endpoints of one pool: `pick` returns an
/// index into the endpoints it was built from.
#[derive(Debug)]
pub struct Balancer {
    /// The endpoints' states, in the order given.
    states: Box<[Arc<EndpointState>]>,
    /// The endpoints' weights, in the same order.
    weights: Box<[u32]>,
    /// The algorithm and its precomputed data.
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// `RoundRobin` and `WeightedRoundRobin`: a smooth weighted schedule.
    RoundRobin(RoundRobin),
    LeastConnections(LeastConnections),
    LeastTime(LeastTime),
    /// Running sums of the weights, for a weighted draw; empty when every
    /// weight is equal (a plain uniform draw).
    Random(Box<[u64]>),
    /// The ring, and the turns for requests without a key.
    ConsistentHash(Ring, RoundRobin),
}

impl Balancer {
    /// Builds the balancer for `algorithm` over `endpoints`. `None` when
    /// there is no endpoint or a weight is 0.
    pub fn new(algorithm: Algorithm, endpoints: &[Endpoint<'_>]) -> Option<Self> {
        if endpoints.is_empty() || endpoints.iter().any(|(_, _, w)| *w == 0) {
            return None;
        }
        let weights: Box<[u32]> = endpoints.iter().map(|(_, _, w)| *w).collect();
        let kind = match algorithm {
            Algorithm::RoundRobin | Algorithm::WeightedRoundRobin => {
                Kind::RoundRobin(RoundRobin::new(&weights)?)
            }
            Algorithm::LeastConnections => Kind::LeastConnections(LeastConnections::default()),
            Algorithm::LeastTime => Kind::LeastTime(LeastTime),
            Algorithm::Random => {
                let equal = weights.iter().all(|w| *w == weights[0]);
                let sums = if equal {
                    Box::default()
                } else {
                    weights
                        .iter()
                        .scan(0u64, |sum, w| {
                            *sum += u64::from(*w);
                            Some(*sum)
                        })
                        .collect()
                };
                Kind::Random(sums)
            }
            Algorithm::ConsistentHash => {
                let keys: Vec<(&str, u32)> = endpoints.iter().map(|(k, _, w)| (*k, *w)).collect();
                Kind::ConsistentHash(Ring::new(&keys), RoundRobin::new(&weights)?)
            }
        };
        Some(Balancer {
            states: endpoints.iter().map(|(_, s, _)| s.clone()).collect(),
            weights,
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
            Kind::LeastConnections(lc) => lc.pick(states, &self.weights),
            Kind::LeastTime(lt) => lt.pick(states, &self.weights, now),
            Kind::Random(sums) => {
                let i = match sums.last() {
                    None => rng::below(states.len()),
                    Some(total) => {
                        let r = rng::below_u64(*total);
                        sums.partition_point(|sum| *sum <= r)
                    }
                };
                available_from(states, i)
            }
            Kind::ConsistentHash(ring, turns) => match key {
                Some(key) => ring.pick(key, states),
                None => available_from(states, turns.pick()),
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
