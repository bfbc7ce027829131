//! Load balancing: which endpoint of a backend takes the next request.
//!
//! Owns: the [`Balancer`] built once per compile from a backend's endpoint
//! states (one per algorithm), the [`RoundRobin`] schedule also used to split
//! a rule's traffic across its backends, and the [`EndpointState`] shared
//! across compiles. Must not: know about HTTP — a balancer picks an index
//! (a request key, when there is one, arrives already hashed); the route
//! table maps it to an address.
//!
//! Every pick uses atomics only, and reads no clock: `now` is a parameter.
//! Endpoints whose [`EndpointState::is_available_at`] is false are skipped, with a bounded
//! number of extra looks; when no endpoint of the backend is available an
//! algorithm still returns one (ignoring availability), and its caller,
//! `table::Balancing::pick`, sees from that endpoint's state that it is
//! unavailable, tries the other backends, then takes an endpoint that is
//! only ejected as a last resort (the balancer's choice when it is one),
//! and answers "none" (503) only when every endpoint fails its active
//! checks.

mod endpoint;
mod hash;
mod least;
pub(crate) mod rng;
mod round_robin;

use std::sync::Arc;

use tokio::time::Instant;

pub use endpoint::{backoff, EndpointState, InFlight};
pub use hash::{hash_key, Ring, VNODES};
pub use least::{LeastConnections, LeastTime};
pub use round_robin::RoundRobin;

use crate::api::Algorithm;

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
            Kind::RoundRobin(rr) => available_from(states, rr.pick(), now),
            Kind::LeastConnections(lc) => lc.pick(states, &self.weights, now),
            Kind::LeastTime(lt) => lt.pick(states, &self.weights, now),
            Kind::Random(sums) => {
                let i = match sums.last() {
                    None => rng::below(states.len()),
                    Some(total) => {
                        let r = rng::below_u64(*total);
                        sums.partition_point(|sum| *sum <= r)
                    }
                };
                available_from(states, i, now)
            }
            Kind::ConsistentHash(ring, turns) => match key {
                Some(key) => ring.pick(key, states, now),
                None => available_from(states, turns.pick(), now),
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
fn available_from(states: &[Arc<EndpointState>], first: usize, now: Instant) -> usize {
    let n = states.len();
    (0..n)
        .map(|k| (first + k) % n)
        .find(|i| states[*i].is_available_at(now))
        .unwrap_or(first)
}

#[cfg(test)]
mod tests;
