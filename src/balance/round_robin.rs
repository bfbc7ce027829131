//! Smooth weighted round robin, precomputed.
//!
//! The turn order is computed once, at compile, with the interleaving nginx
//! uses (each turn goes to the endpoint with the highest running credit), so
//! weights 5:1:1 give `a a b a c a a` rather than `a a a a a b c`. A request
//! then costs one relaxed atomic increment and an index.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Round robin over a precomputed, weight-honouring schedule.
#[derive(Debug)]
pub struct RoundRobin {
    /// Endpoint indices in turn order; its length is the sum of the weights
    /// divided by their greatest common divisor.
    schedule: Box<[u32]>,
    /// The next turn; wraps modulo the schedule length.
    next: AtomicUsize,
}

impl RoundRobin {
    /// Builds the schedule; `None` when every weight is 0.
    pub fn new(weights: &[u32]) -> Option<Self> {
        let divisor = weights.iter().copied().filter(|w| *w > 0).reduce(gcd)?;
        let weights: Vec<i64> = weights.iter().map(|w| i64::from(w / divisor)).collect();
        let total: i64 = weights.iter().sum();
        let mut credit = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                credit[i] += w;
                if credit[i] > credit[best] {
                    best = i;
                }
            }
            credit[best] -= total;
            schedule.push(best as u32);
        }
        Some(RoundRobin {
            schedule: schedule.into_boxed_slice(),
            next: AtomicUsize::new(0),
        })
    }

    /// The next endpoint index.
    pub fn pick(&self) -> usize {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        self.schedule[turn % self.schedule.len()] as usize
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(weights: &[u32], n: usize) -> Vec<usize> {
        let rr = RoundRobin::new(weights).expect("some weight");
        (0..n).map(|_| rr.pick()).collect()
    }

    #[test]
    fn equal_weights_take_strict_turns() {
        assert_eq!(turns(&[1, 1, 1], 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weights_interleave_instead_of_bursting() {
        assert_eq!(turns(&[5, 1, 1], 7), [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn weights_are_honoured_exactly_over_a_cycle() {
        let picks = turns(&[3, 1], 400);
        let first = picks.iter().filter(|i| **i == 0).count();
        assert_eq!(first, 300);
    }

    #[test]
    fn common_factors_shrink_the_schedule() {
        let rr = RoundRobin::new(&[900, 100]).expect("some weight");
        assert_eq!(rr.schedule.len(), 10);
    }

    #[test]
    fn zero_weight_endpoint_gets_nothing() {
        assert!(!turns(&[1, 0, 1], 10).contains(&1));
        assert!(RoundRobin::new(&[0, 0]).is_none());
    }
}
