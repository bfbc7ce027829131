//! Which routes may need a status write, and what to write.
//!
//! A publish brings every route's wanted status; only routes whose wanted
//! status differs from the one before are queued (no allocation for the
//! rest), so an unrelated change queues nothing. A queued route is checked
//! against the reflector cache (one lookup) when its turn comes: a status
//! the cache already shows, or one written whose echo has not arrived yet,
//! is not written again. A resync, or gaining the Lease, queues every route.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;

use super::stamp_transitions;
use crate::api::{LoadBalancerRoute, LoadBalancerRouteStatus};
use crate::snapshot::{DesiredStatus, ObjectKey};
use crate::source::kube::Stores;

/// One status write to send.
#[derive(Debug)]
pub(super) struct Job {
    /// The route.
    pub(super) key: ObjectKey,
    /// The status to apply, transition times stamped.
    pub(super) status: LoadBalancerRouteStatus,
}

/// The writer's bookkeeping: wanted statuses, the queue, writes in flight
/// and writes whose echo may not have arrived.
pub(super) struct Dirty {
    stores: Stores,
    /// The last publish's list, to skip a re-send of the same one.
    last: Arc<[DesiredStatus]>,
    /// The latest wanted status (transition times unset), by namespace,
    /// then name: looked up by `&str`, with no allocation.
    wanted: HashMap<String, HashMap<String, LoadBalancerRouteStatus>>,
    /// How many routes `wanted` holds.
    count: usize,
    /// Routes to check, oldest first; `queued` is the same set.
    pending: VecDeque<ObjectKey>,
    queued: HashSet<ObjectKey>,
    /// Routes with a write in flight: not written again until it is done
    /// (two writes of one route could land out of order); those queued
    /// meanwhile wait in `redo`.
    in_flight: HashSet<ObjectKey>,
    redo: HashSet<ObjectKey>,
    /// Writes whose echo (the watch event carrying them back into the
    /// cache) may not have arrived yet, by route: the status the cache
    /// showed before the write, and what was written (without transition
    /// times). While the cache still shows the old status, writing the same
    /// again is skipped.
    echoes: HashMap<ObjectKey, (Option<LoadBalancerRouteStatus>, LoadBalancerRouteStatus)>,
}

impl Dirty {
    /// Nothing wanted yet; `stores` is the cache writes are checked against.
    pub(super) fn new(stores: Stores) -> Dirty {
        Dirty {
            stores,
            last: Arc::from([]),
            wanted: HashMap::new(),
            count: 0,
            pending: VecDeque::new(),
            queued: HashSet::new(),
            in_flight: HashSet::new(),
            redo: HashSet::new(),
            echoes: HashMap::new(),
        }
    }

    /// Takes a publish's statuses: queues the routes whose wanted status
    /// changed (or is new), forgets routes no longer published.
    pub(super) fn want(&mut self, wanted: &Arc<[DesiredStatus]>) {
        if Arc::ptr_eq(&self.last, wanted) {
            return;
        }
        for want in wanted.iter() {
            let names = match self.wanted.get_mut(&want.namespace) {
                Some(names) => names,
                None => self.wanted.entry(want.namespace.clone()).or_default(),
            };
            match names.get_mut(&want.name) {
                Some(status) if *status == want.status => continue,
                Some(status) => *status = want.status.clone(),
                None => {
                    names.insert(want.name.clone(), want.status.clone());
                    self.count += 1;
                }
            }
            self.queue((want.namespace.clone(), want.name.clone()));
        }
        if self.count != wanted.len() {
            self.forget_missing(wanted);
        }
        self.last = wanted.clone();
    }

    /// Drops the routes `wanted` no longer lists (deleted routes).
    fn forget_missing(&mut self, wanted: &[DesiredStatus]) {
        let keep: HashSet<(&str, &str)> = wanted
            .iter()
            .map(|w| (w.namespace.as_str(), w.name.as_str()))
            .collect();
        for (namespace, names) in &mut self.wanted {
            names.retain(|name, _| keep.contains(&(namespace.as_str(), name.as_str())));
        }
        self.wanted.retain(|_, names| !names.is_empty());
        self.count = self.wanted.values().map(HashMap::len).sum();
        self.echoes
            .retain(|(ns, name), _| keep.contains(&(ns.as_str(), name.as_str())));
    }

    /// Queues every wanted route (a resync, or the Lease gained).
    pub(super) fn queue_all(&mut self) {
        let keys: Vec<ObjectKey> = (self.wanted.iter())
            .flat_map(|(ns, names)| names.keys().map(|name| (ns.clone(), name.clone())))
            .collect();
        keys.into_iter().for_each(|key| self.queue(key));
    }

    fn queue(&mut self, key: ObjectKey) {
        if self.queued.insert(key.clone()) {
            self.pending.push_back(key);
        }
    }

    /// How many routes wait to be checked.
    pub(super) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The next write due: checks queued routes in order until one's
    /// cached status differs from its wanted one. `None` when none does.
    pub(super) fn next_job(&mut self, now: &str) -> Option<Job> {
        while let Some(key) = self.pending.pop_front() {
            self.queued.remove(&key);
            if self.in_flight.contains(&key) {
                self.redo.insert(key);
                continue;
            }
            if let Some(job) = self.job(key, now) {
                return Some(job);
            }
        }
        None
    }

    /// The write `key` needs, if any.
    fn job(&mut self, key: ObjectKey, now: &str) -> Option<Job> {
        let want = self.wanted.get(&key.0)?.get(&key.1)?;
        // Deleted since the compile: nothing to write.
        let previous = self.cached(&key)?;
        let status = stamp_transitions(want, previous.as_ref(), now);
        if previous.as_ref() == Some(&status) {
            self.echoes.remove(&key);
            return None;
        }
        if (self.echoes.get(&key))
            .is_some_and(|(before, written)| *before == previous && written == want)
        {
            return None; // Written already; the cache has not caught up.
        }
        self.echoes.insert(key.clone(), (previous, want.clone()));
        self.in_flight.insert(key.clone());
        Some(Job { key, status })
    }

    /// The route's status in the cache: `None` when the cache does not
    /// hold the route.
    fn cached(&self, (namespace, name): &ObjectKey) -> Option<Option<LoadBalancerRouteStatus>> {
        let reference = ObjectRef::<LoadBalancerRoute>::new(name).within(namespace);
        (self.stores.routes.iter())
            .find_map(|store| store.get(&reference))
            .map(|route| route.status.clone())
    }

    /// A write finished: on failure its echo is forgotten (the route is
    /// written again on its next change or the resync); a route queued
    /// while it was in flight is queued again.
    pub(super) fn finished(&mut self, key: ObjectKey, written: bool) {
        self.in_flight.remove(&key);
        if !written {
            self.echoes.remove(&key);
        }
        if self.redo.remove(&key) {
            self.queue(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> Stores {
        Stores {
            routes: Vec::new(),
            services: Vec::new(),
            slices: Vec::new(),
            secrets: Vec::new(),
            config_maps: Vec::new(),
        }
    }

    fn wanted(routes: impl IntoIterator<Item = (usize, i64)>) -> Arc<[DesiredStatus]> {
        (routes.into_iter())
            .map(|(i, generation)| DesiredStatus {
                namespace: "shop".to_owned(),
                name: format!("r{i}"),
                status: LoadBalancerRouteStatus {
                    observed_generation: Some(generation),
                    ..LoadBalancerRouteStatus::default()
                },
            })
            .collect()
    }

    /// The routes `dirty` has queued (emptying the queue).
    fn queued(dirty: &mut Dirty) -> Vec<String> {
        let names = dirty.pending.iter().map(|(_, name)| name.clone()).collect();
        // Nothing is in the cache: no job, the queue empties.
        assert!(dirty.next_job("2026-01-01T00:00:00Z").is_none());
        names
    }

    #[test]
    fn a_publish_queues_only_the_routes_whose_wanted_status_changed() {
        let mut dirty = Dirty::new(stores());
        dirty.want(&wanted([(0, 1), (1, 1), (2, 1)]));
        assert_eq!(queued(&mut dirty), ["r0", "r1", "r2"]);
        dirty.want(&wanted([(0, 1), (1, 1), (2, 1)]));
        assert!(queued(&mut dirty).is_empty(), "the same statuses again");
        dirty.want(&wanted([(0, 1), (1, 2), (2, 1)]));
        assert_eq!(queued(&mut dirty), ["r1"]);
        // r2 renamed r3: r3 is new; r2 is forgotten, so that a later r2 is
        // written again.
        dirty.want(&wanted([(0, 1), (1, 2), (3, 1)]));
        assert_eq!(queued(&mut dirty), ["r3"]);
        assert_eq!(dirty.count, 3);
        dirty.want(&wanted([(0, 1), (1, 2), (2, 1), (3, 1)]));
        assert_eq!(queued(&mut dirty), ["r2"]);
    }

    #[test]
    fn a_resync_queues_every_route_once() {
        let mut dirty = Dirty::new(stores());
        dirty.want(&wanted([(0, 1), (1, 1)]));
        dirty.queue_all();
        let mut names = queued(&mut dirty);
        names.sort();
        assert_eq!(names, ["r0", "r1"]);
    }

    /// What one publish costs the writer at 10,000 routes when one status
    /// changed: `cargo test --lib cost_of_a_publish -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement"]
    fn cost_of_a_publish_at_10_000_routes() {
        let mut dirty = Dirty::new(stores());
        dirty.want(&wanted((0..10_000).map(|i| (i, 1))));
        queued(&mut dirty);
        let rounds = 100;
        let lists: Vec<_> = (0..rounds)
            .map(|r| wanted((0..10_000).map(|i| (i, if i == r { 2 } else { 1 }))))
            .collect();
        let start = tokio::time::Instant::now();
        for list in &lists {
            dirty.want(list);
        }
        let each = start.elapsed() / rounds as u32;
        println!("one publish of 10,000 statuses, one changed: {each:?}");
        assert_eq!(dirty.pending(), rounds);
    }
}
