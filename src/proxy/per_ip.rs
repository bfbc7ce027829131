//! The per-client-IP connection cap (`--max-connections-per-ip`).
//!
//! Owns: [`PerIp`], the count of open connections of each client address,
//! and the [`IpSlot`] a connection holds while it is open. Must not: be
//! touched per request: a connection takes its slot once, when accepted,
//! and gives it back when it ends (the slot's drop).
//!
//! The counts live in shards, each a `std::sync::Mutex` over a small map
//! held for one map operation, so accepts from different clients rarely
//! meet on one lock and no lock is ever held across an await.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Enough shards that two accepting threads rarely share one.
const SHARDS: usize = 16;

/// Open connections per client address, capped at `limit` each.
#[derive(Debug)]
pub struct PerIp {
    limit: usize,
    hasher: RandomState,
    shards: [Mutex<HashMap<IpAddr, usize>>; SHARDS],
}

/// One open connection's place under its address's cap; given back when
/// dropped (the entry goes when its count reaches zero, so the map holds
/// only addresses with open connections).
#[derive(Debug)]
pub struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// A cap of `limit` connections per address; `None` when `limit` is 0
    /// (no cap, nothing counted).
    pub fn new(limit: usize) -> Option<Arc<PerIp>> {
        (limit > 0).then(|| {
            Arc::new(PerIp {
                limit,
                hasher: RandomState::new(),
                shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            })
        })
    }

    /// A slot for one more connection from `ip`, or `None` when `ip`
    /// already has `limit` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut counts = self.shard(ip);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }

    /// The locked shard holding `ip`'s count. A poisoned lock still holds
    /// consistent counts (every update is one map operation), so it is used.
    fn shard(&self, ip: IpAddr) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        let hash = self.hasher.hash_one(ip) as usize;
        self.shards[hash % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.shard(self.ip);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_limit_slots_and_gets_them_back() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let per_ip = PerIp::new(2).unwrap();
        let first = per_ip.admit(a).unwrap();
        let _second = per_ip.admit(a).unwrap();
        assert!(per_ip.admit(a).is_none(), "a third from one address");
        assert!(per_ip.admit(b).is_some(), "another address has its own");
        drop(first);
        assert!(per_ip.admit(a).is_some(), "a closed slot is given back");
    }

    #[test]
    fn a_zero_limit_is_no_cap() {
        assert!(PerIp::new(0).is_none());
    }

    #[test]
    fn addresses_without_open_connections_leave_no_entry() {
        let per_ip = PerIp::new(1).unwrap();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        drop(per_ip.admit(ip));
        assert!(per_ip.shard(ip).is_empty());
    }
}
