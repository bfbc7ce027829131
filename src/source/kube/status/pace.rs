//! A client-side rate limit for writes to the apiserver: `qps` writes a
//! second on average, up to `burst` at once after a quiet spell — the
//! token bucket client-go's `--kube-api-qps`/`--kube-api-burst` describe.
//!
//! Kept as one "theoretical arrival time" (the generic cell rate
//! algorithm): a write may go at `now` when `now >= tat - (burst - 1) * T`
//! with `T = 1 / qps`; each write moves `tat` to `max(tat, now) + T`. So in
//! any window of length `w` at most `burst + w * qps` writes go out. Time is
//! a parameter ([`RateLimit::ready_at`], [`RateLimit::take`]); only
//! [`RateLimit::ready`] sleeps.

use std::time::Duration;

use tokio::time::Instant;

/// How fast status may be written: the `--status-qps` and `--status-burst`
/// flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Writes per second, on average; positive.
    pub qps: f64,
    /// Writes that may go at once after a quiet spell; at least 1.
    pub burst: u32,
}

impl Default for Pacing {
    /// 50 writes a second, bursts of 100: kube-scheduler's defaults for
    /// its own API client, which binds pods at that rate on 5,000-node
    /// clusters. 10,000 routes settle in about (10,000 - 100) / 50 ≈ 200 s.
    fn default() -> Pacing {
        Pacing {
            qps: 50.0,
            burst: 100,
        }
    }
}

/// A token bucket over [`Pacing`].
#[derive(Debug)]
pub struct RateLimit {
    /// Time between two writes at the steady rate.
    interval: Duration,
    /// How far ahead of `tat` a write may go: `(burst - 1) * interval`.
    tolerance: Duration,
    /// When the next write would be due if writes went at the steady rate
    /// back to back; `None` before the first write (a full bucket).
    tat: Option<Instant>,
}

impl RateLimit {
    /// A full bucket. A `qps` that is not positive and finite is taken as
    /// one write an hour (the flag parser refuses it before that).
    pub fn new(pacing: Pacing) -> RateLimit {
        let interval = if pacing.qps.is_finite() && pacing.qps > 0.0 {
            Duration::from_secs_f64(1.0 / pacing.qps)
        } else {
            Duration::from_secs(3600)
        };
        RateLimit {
            interval,
            tolerance: interval * pacing.burst.max(1).saturating_sub(1),
            tat: None,
        }
    }

    /// The earliest time the next write may go.
    pub fn ready_at(&self, now: Instant) -> Instant {
        match self.tat {
            Some(tat) => tat.checked_sub(self.tolerance).unwrap_or(now).max(now),
            None => now,
        }
    }

    /// Counts one write at `now` (whether or not it had to wait).
    pub fn take(&mut self, now: Instant) {
        let base = self.tat.map_or(now, |tat| tat.max(now));
        self.tat = Some(base + self.interval);
    }

    /// Waits until the next write may go (does not count it: [`take`]).
    ///
    /// [`take`]: RateLimit::take
    pub async fn ready(&self) {
        tokio::time::sleep_until(self.ready_at(Instant::now())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes as fast as the limit allows for `run` (at most 1,000 writes),
    /// returning when each write went, relative to the start.
    async fn drain(pacing: Pacing, run: Duration) -> Vec<Duration> {
        let mut limit = RateLimit::new(pacing);
        let start = Instant::now();
        let mut times = Vec::new();
        // Bounded, so that a limiter that never waits fails, not hangs.
        while start.elapsed() < run && times.len() < 1000 {
            limit.ready().await;
            limit.take(Instant::now());
            times.push(start.elapsed());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_writes_follow_at_the_steady_rate() {
        let times = drain(
            Pacing {
                qps: 10.0,
                burst: 5,
            },
            Duration::from_secs(2),
        )
        .await;
        assert!(times[..5].iter().all(|t| t.is_zero()), "{times:?}");
        assert_eq!(times[5], Duration::from_millis(100));
        assert_eq!(times[6], Duration::from_millis(200));
        // 5 at once, then one every 100 ms up to 2 s.
        assert_eq!(times.len(), 5 + 20);
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_holds_more_than_qps_times_its_length_plus_the_burst() {
        let pacing = Pacing {
            qps: 20.0,
            burst: 3,
        };
        let times = drain(pacing, Duration::from_secs(3)).await;
        for window in [50, 100, 500, 1000] {
            let window = Duration::from_millis(window);
            let bound = pacing.burst as f64 + window.as_secs_f64() * pacing.qps;
            for (i, start) in times.iter().enumerate() {
                let within = times[i..]
                    .iter()
                    .take_while(|t| **t < *start + window)
                    .count();
                assert!(
                    within as f64 <= bound,
                    "{within} writes in {window:?} from {start:?}"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_spell_refills_the_bucket_up_to_the_burst_only() {
        let mut limit = RateLimit::new(Pacing {
            qps: 10.0,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limit.ready_at(start), start);
            limit.take(start);
        }
        assert_eq!(limit.ready_at(start), start + Duration::from_millis(100));
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limit.ready_at(later), later);
            limit.take(later);
        }
        assert_eq!(limit.ready_at(later), later + Duration::from_millis(100));
    }
}
