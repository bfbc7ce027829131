//! A small, fast, lock-free random number source for picking endpoints:
//! xorshift64* on a thread-local state, seeded once per thread from the
//! standard library's random hasher keys. Not for anything secret.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // Each RandomState has fresh random keys, so hashing nothing differs
    // per thread.
    let hasher = RandomState::new().build_hasher();
    // xorshift must never hold 0.
    hasher.finish() | 1
}

/// The next pseudo-random `u64` of this thread.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A pseudo-random index below `n` (`n > 0`), without modulo bias worth
/// speaking of (the high bits of a 64×64 multiply).
pub(super) fn below(n: usize) -> usize {
    ((u128::from(next_u64()) * n as u128) >> 64) as usize
}

/// A pseudo-random number below `n` (`n > 0`).
pub(super) fn below_u64(n: u64) -> u64 {
    ((u128::from(next_u64()) * u128::from(n)) >> 64) as u64
}
