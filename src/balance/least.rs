//! Load-aware algorithms: least connections and least time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::time::Instant;

use super::{available_from, rng, EndpointState};

/// Fewest requests in flight, relative to weight: the endpoint with the
/// lowest (in flight + 1) / weight. Endpoints are scanned starting at an
/// offset that moves by one per pick, and the first endpoint with the
/// lowest wins, so ties rotate instead of always going to the first.
#[derive(Debug, Default)]
pub struct LeastConnections {
    next: AtomicUsize,
}

impl LeastConnections {
    /// The available endpoint with the fewest requests in flight; when none
    /// is available, the one with the fewest overall (fail open).
    pub fn pick(&self, states: &[Arc<EndpointState>], weights: &[u32], now: Instant) -> usize {
        let n = states.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let load = |i: usize| (states[i].in_flight().saturating_add(1), weights[i]);
        let mut best_available: Option<usize> = None;
        let mut best_any: Option<usize> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if best_any.is_none_or(|b| lower(load(i), load(b))) {
                best_any = Some(i);
            }
            if states[i].is_available_at(now)
                && best_available.is_none_or(|b| lower(load(i), load(b)))
            {
                best_available = Some(i);
            }
        }
        best_available.or(best_any).unwrap_or(start)
    }
}

/// Least time, by the power of two choices: two distinct endpoints are
/// drawn at random and the one with the lower score wins, where score =
/// latency average (µs, at least 1; see
/// [`EndpointState::latency_us`]) × (requests in flight + 1) / weight. An endpoint
/// with no response yet scores as if it answered in 1µs, so new endpoints
/// are tried at once.
#[derive(Debug, Default)]
pub struct LeastTime;

impl LeastTime {
    /// Picks by the power of two choices; unavailable endpoints lose to
    /// available ones, and if both draws are unavailable the next available
    /// endpoint is taken (fail open when there is none).
    pub fn pick(&self, states: &[Arc<EndpointState>], weights: &[u32], now: Instant) -> usize {
        let n = states.len();
        if n == 1 {
            return 0;
        }
        let a = rng::below(n);
        let mut b = rng::below(n - 1);
        if b >= a {
            b += 1;
        }
        match (
            states[a].is_available_at(now),
            states[b].is_available_at(now),
        ) {
            (true, false) => a,
            (false, true) => b,
            (false, false) => available_from(states, a, now),
            (true, true) => {
                let cost = |i: usize| (score(&states[i], now), weights[i]);
                if lower(cost(b), cost(a)) {
                    b
                } else {
                    a
                }
            }
        }
    }
}

/// Latency average × (in flight + 1), saturating.
pub(super) fn score(state: &EndpointState, now: Instant) -> u64 {
    state
        .latency_us(now)
        .max(1)
        .saturating_mul(state.in_flight().saturating_add(1))
}

/// Whether `a.0 / a.1` < `b.0 / b.1` (cost over weight), exactly.
fn lower(a: (u64, u32), b: (u64, u32)) -> bool {
    u128::from(a.0) * u128::from(b.1) < u128::from(b.0) * u128::from(a.1)
}
