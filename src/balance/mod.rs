//! Load balancing: which endpoint of a rule takes the next request.
//!
//! Owns: the [`Balancer`] built once per compile from endpoint weights, and
//! the [`EndpointState`] shared across compiles. Must not: know about HTTP —
//! a balancer picks an index; the route table maps it to an address.

mod round_robin;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use round_robin::RoundRobin;

use crate::api::Algorithm;

/// Runtime state of one endpoint, shared by every rule that uses it and
/// carried from one route table to the next (keyed by address, never by
/// weight or route), so a route edit does not reset it.
#[derive(Debug, Default)]
pub struct EndpointState {
    /// Requests sent to this endpoint whose response has not finished.
    in_flight: AtomicU64,
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
