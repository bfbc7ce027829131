//! A latency histogram of atomics: fixed buckets, one `fetch_add` for the
//! bucket, one for the count and one for the sum per observation.
//! (prometheus-client's `Histogram` takes a lock per observation; the
//! request path takes none.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (1 ms to 30 s), then +Inf.
const BOUNDS_MICROS: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// A histogram of durations, in seconds when encoded.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative counts per bucket; the last is +Inf.
    buckets: [AtomicU64; 15],
    /// The sum of every observation, in microseconds.
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(BOUNDS_MICROS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        (self.buckets.iter())
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum (seconds), the count and the non-cumulative buckets as
    /// prometheus-client encodes them (`f64::MAX` is +Inf).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        let mut count = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            count += n;
            let bound = BOUNDS_MICROS
                .get(i)
                .map_or(f64::MAX, |micros| *micros as f64 / 1e6);
            buckets.push((bound, n));
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, count, buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(900));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert_eq!(buckets[0], (0.001, 1));
        assert_eq!(buckets[2], (0.005, 1));
        assert_eq!(buckets[14], (f64::MAX, 1));
        assert!((sum - 60.0039).abs() < 1e-9, "{sum}");
    }
}
