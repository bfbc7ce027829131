//! Rate limiting: a GCRA (the token bucket, stored as one timestamp) per key.
//!
//! Owns: [`RateLimiter`] — the compiled limit and its per-key state, bounded
//! in memory. Must not: read a clock (callers pass `now`, a
//! `tokio::time::Instant`, so paused-time tests drive it) or grow without
//! bound under many distinct keys.
//!
//! Why hand-written rather than the `governor` crate: governor's keyed
//! limiter reads its own clock (paused tokio time cannot drive it) and has
//! no hard cap on keys between `retain_recent` calls. Here a key's whole
//! state is one `u64` (its theoretical arrival time, TAT), so:
//! - a key whose TAT has passed has a full bucket, which is exactly the same
//!   as having no entry; evicting it loses nothing;
//! - each shard sweeps such idle keys at most once per refill window, when
//!   a new key arrives, so the cost is amortised O(1) per request;
//! - a shard at its cap after a sweep admits new keys without tracking them
//!   (fail open) rather than evicting live buckets or refusing everyone: a
//!   caller who controls that many live keys has already beaten per-key
//!   limiting, and memory stays bounded.
//!
//! Keys are hashed (64-bit, per-limiter random seed) so an entry is 16
//! bytes whatever the key's size. The `Route` key needs no map: one atomic.
//! Shards are `std::sync::Mutex`es held for one hash-map operation, never
//! across an await; 16 of them keep contention low.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// Shards of the per-key map.
const SHARDS: usize = 16;
/// Default most keys tracked per limiter (about 3 MiB at the cap).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// A compiled rate limit with its live state.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time between two requests at the sustained rate, in nanoseconds.
    interval: u64,
    /// How far ahead of `now` a TAT may run: `burst * interval`.
    tolerance: u64,
    /// The zero of the nanosecond clock: the first `now` seen. Set lazily
    /// so that compile, which builds limiters, reads no clock.
    epoch: OnceLock<Instant>,
    state: State,
}

#[derive(Debug)]
enum State {
    /// One bucket for the whole rule.
    Single(AtomicU64),
    /// One bucket per key.
    Keyed(Box<Keyed>),
}

#[derive(Debug)]
struct Keyed {
    hasher: RandomState,
    per_shard: usize,
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Debug, Default)]
struct Shard {
    /// Key hash → TAT (ns since epoch).
    tats: HashMap<u64, u64>,
    /// No sweep before this time (ns since epoch).
    next_sweep: u64,
}

/// A refused request: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// How long until one more request would be admitted.
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl RateLimiter {
    /// A limiter admitting `per_second` requests per second sustained and
    /// `burst` at once; `keyed` keeps one bucket per key (at most `max_keys`
    /// tracked), else one for everything.
    pub fn new(per_second: u32, burst: u32, keyed: bool, max_keys: usize) -> Self {
        let interval = 1_000_000_000 / u64::from(per_second.max(1));
        let state = if keyed {
            State::Keyed(Box::new(Keyed {
                hasher: RandomState::new(),
                per_shard: max_keys.div_ceil(SHARDS).max(1),
                shards: Default::default(),
            }))
        } else {
            State::Single(AtomicU64::new(0))
        };
        RateLimiter {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1))),
            epoch: OnceLock::new(),
            state,
        }
    }

    /// Counts one request for `key` (ignored by a whole-rule limiter) at
    /// `now`: `Ok` if admitted, else when to retry.
    pub fn check(&self, key: impl Hash, now: Instant) -> Result<(), Limited> {
        let epoch = *self.epoch.get_or_init(|| now);
        let now =
            u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        match &self.state {
            State::Single(tat) => {
                let mut current = tat.load(Ordering::Relaxed);
                loop {
                    let next = self.admit(current, now)?;
                    match tat.compare_exchange_weak(
                        current,
                        next,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Ok(()),
                        Err(actual) => current = actual,
                    }
                }
            }
            State::Keyed(keyed) => {
                let hash = keyed.hasher.hash_one(key);
                // The low bits pick the shard; the map rehashes the whole value.
                let shard = &keyed.shards[(hash as usize) % SHARDS];
                let mut shard = shard
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(tat) = shard.tats.get_mut(&hash) {
                    *tat = self.admit(*tat, now)?;
                    return Ok(());
                }
                let next = self.admit(0, now)?;
                if shard.tats.len() >= keyed.per_shard && now >= shard.next_sweep {
                    shard.tats.retain(|_, tat| *tat > now);
                    shard.next_sweep = now.saturating_add(self.tolerance);
                }
                if shard.tats.len() < keyed.per_shard {
                    shard.tats.insert(hash, next);
                }
                Ok(())
            }
        }
    }

    /// GCRA: the new TAT if a request at `now` fits, else the wait.
    fn admit(&self, tat: u64, now: u64) -> Result<u64, Limited> {
        let next = tat.max(now).saturating_add(self.interval);
        let ahead = next - now;
        if ahead <= self.tolerance {
            Ok(next)
        } else {
            Err(Limited {
                retry_after: Duration::from_nanos(ahead - self.tolerance),
            })
        }
    }

    /// How many keys are tracked (tests).
    #[cfg(test)]
    pub fn tracked_keys(&self) -> usize {
        match &self.state {
            State::Single(_) => 0,
            State::Keyed(keyed) => keyed
                .shards
                .iter()
                .map(|s| s.lock().map_or(0, |s| s.tats.len()))
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Time is a parameter: each check gets an explicit `now`, so windows
    //! pass without sleeping.
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn burst_then_sustained_rate_then_recovery() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(2, 3, true, DEFAULT_MAX_KEYS);
        for i in 0..3 {
            assert_eq!(limiter.check("a", t0), Ok(()), "burst request {i}");
        }
        let refused = limiter.check("a", t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(refused.retry_after_secs(), 1);
        assert_eq!(limiter.check("b", t0), Ok(()), "other keys are separate");
        assert_eq!(
            limiter.check("a", at(t0, 500)),
            Ok(()),
            "one token refilled"
        );
        assert!(limiter.check("a", at(t0, 500)).is_err());
        for i in 0..3 {
            assert_eq!(limiter.check("a", at(t0, 2_500)), Ok(()), "full again {i}");
        }
    }

    #[test]
    fn route_key_shares_one_bucket() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(1, 1, false, DEFAULT_MAX_KEYS);
        assert_eq!(limiter.check("a", t0), Ok(()));
        assert!(limiter.check("b", t0).is_err());
        assert_eq!(limiter.check("c", at(t0, 1_000)), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        for (wait, want) in [
            (1, 1),
            (999_999_999, 1),
            (1_000_000_000, 1),
            (1_000_000_001, 2),
        ] {
            let limited = Limited {
                retry_after: Duration::from_nanos(wait),
            };
            assert_eq!(limited.retry_after_secs(), want, "case {wait}ns");
        }
    }

    #[test]
    fn millions_of_distinct_keys_stay_under_the_default_cap() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(100, 200, true, DEFAULT_MAX_KEYS);
        // Two million clients over four seconds: never more than the cap
        // tracked, and every one admitted (none has used its burst).
        for key in 0..2_000_000u32 {
            let now = at(t0, u64::from(key / 500_000) * 1_000);
            assert_eq!(limiter.check(key, now), Ok(()));
        }
        assert!(limiter.tracked_keys() <= DEFAULT_MAX_KEYS);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_keys() {
        let t0 = Instant::now();
        let cap = 1_600;
        let limiter = RateLimiter::new(10, 10, true, cap);
        for key in 0..50_000u32 {
            assert_eq!(limiter.check(key, t0), Ok(()), "new keys are admitted");
        }
        assert!(
            limiter.tracked_keys() <= cap,
            "{} keys tracked",
            limiter.tracked_keys()
        );
        // Once the window has passed, every old key is idle and is swept as
        // new keys arrive.
        for key in 1_000_000..1_050_000u32 {
            let _ = limiter.check(key, at(t0, 2_000));
        }
        assert!(limiter.tracked_keys() <= cap);
        // A live key is still limited after the flood.
        let later = at(t0, 4_000);
        for _ in 0..10 {
            assert_eq!(limiter.check("live", later), Ok(()));
        }
        assert!(limiter.check("live", later).is_err());
    }
}
