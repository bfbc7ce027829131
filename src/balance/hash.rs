//! Consistent hashing: a ring of virtual nodes built at compile, searched
//! per request.
//!
//! Each endpoint owns [`VNODES`] points on a 64-bit ring, placed by hashing
//! its address with the point's number; a key goes to the owner of the first
//! point at or after the key's hash (wrapping). Adding an endpoint takes over
//! only the keys that land just before its new points (about `1/(N+1)` of
//! them); removing one moves only that endpoint's keys. Hashing uses a
//! fixed seed, so every replica of the proxy, in every process, agrees.

use std::sync::Arc;

use tokio::time::Instant;

use super::{available_from, EndpointState};

/// Points per endpoint (of average weight): enough that each endpoint's
/// share of the ring is within a few percent of its due.
pub const VNODES: u32 = 160;

/// How many ring points past an unavailable owner are tried before falling
/// back to a plain scan; keeps a pick bounded however large the ring is.
const RING_LOOKS: usize = 64;

/// Hashes `bytes` deterministically (FNV-1a, then the MurmurHash3 finaliser
/// so that similar inputs land far apart on the ring).
pub fn hash_key(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A consistent-hash ring: `(point, endpoint index)`, sorted by point.
#[derive(Debug)]
pub struct Ring {
    points: Box<[(u64, u32)]>,
}

impl Ring {
    /// Places points for endpoints identified by `keys` (their addresses,
    /// with their weights; index = endpoint): [`VNODES`] per endpoint on
    /// average, in proportion to weight (at least one each).
    pub fn new(keys: &[(&str, u32)]) -> Self {
        let total: u64 = keys.iter().map(|(_, w)| u64::from(*w)).sum::<u64>().max(1);
        let n = keys.len() as u64;
        let mut points = Vec::with_capacity(keys.len() * VNODES as usize);
        for (i, (key, weight)) in keys.iter().enumerate() {
            let vnodes = (u64::from(VNODES) * n * u64::from(*weight) / total).max(1);
            for v in 0..vnodes {
                points.push((hash_key(format!("{key}#{v}").as_bytes()), i as u32));
            }
        }
        points.sort_unstable();
        Ring {
            points: points.into_boxed_slice(),
        }
    }

    /// The endpoint owning `key`: the first available owner of the points
    /// at or after it (at most [`RING_LOOKS`] points), else the next
    /// available endpoint by index, else the owner (fail open).
    pub fn pick(&self, key: u64, states: &[Arc<EndpointState>], now: Instant) -> usize {
        let len = self.points.len();
        let start = self.points.partition_point(|(point, _)| *point < key);
        let owner = self.points[start % len].1 as usize;
        if states[owner].is_available_at(now) {
            return owner;
        }
        (1..RING_LOOKS.min(len))
            .map(|k| self.points[(start + k) % len].1 as usize)
            .find(|i| states[*i].is_available_at(now))
            .unwrap_or_else(|| available_from(states, owner, now))
    }

    /// The owner of `key` ignoring availability (tests).
    #[cfg(test)]
    pub fn owner(&self, key: u64) -> usize {
        let start = self.points.partition_point(|(point, _)| *point < key);
        self.points[start % self.points.len()].1 as usize
    }
}
