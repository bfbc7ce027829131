//! The store: objects by key, the one global resourceVersion, the event
//! history watches replay, and the logs and switches test controls read
//! and flip (status writes, requests, outage, cut and bookmark epochs).
//!
//! Owns every change to stored objects (create, replace, status merge,
//! delete), each bumping the revision and recording its event exactly as
//! the real server would. Must not parse requests or frame responses.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::watch;

use super::kinds::Kind;
use super::object::{merge_patch, meta, meta_mut, now_rfc3339, spec_part, str_field};

/// Key of a stored object: kind index, namespace ("" if cluster-scoped), name.
pub(super) type Key = (usize, String, String);

/// One entry of the event history.
pub(super) struct Event {
    /// The revision this change created.
    pub(super) rv: u64,
    /// Index of the object's kind.
    pub(super) kind: usize,
    /// "ADDED", "MODIFIED" or "DELETED".
    pub(super) kind_of_event: &'static str,
    /// The object after the change (before it, for DELETED).
    pub(super) object: Value,
    /// The object before a MODIFIED, so filtered watches can tell whether it
    /// entered or left their selection.
    pub(super) prev: Option<Value>,
}

/// Everything the double remembers, behind [`Shared::lock`].
#[derive(Default)]
pub(super) struct State {
    /// The global resourceVersion (etcd's revision): one counter for all kinds.
    pub(super) rv: u64,
    /// Watches from a resourceVersion below this get 410 Expired.
    pub(super) compacted: u64,
    /// Stored objects, sorted by kind, namespace, name (LIST order).
    pub(super) objects: BTreeMap<Key, Value>,
    /// Every change in revision order, replayed to watches.
    pub(super) events: Vec<Event>,
    /// Route status writes as (namespace, name, body), for the tests.
    pub(super) status_patches: Vec<(String, String, Value)>,
    /// When each of `status_patches` arrived, in the same order.
    pub(super) status_patch_times: Vec<tokio::time::Instant>,
    /// Every request as (method, path?query), for the tests.
    pub(super) requests: Vec<(String, String)>,
    /// While set, every request is answered 503.
    pub(super) unavailable: bool,
    /// Bumped to cut every open watch; a watch ends when it changes.
    pub(super) cut_epoch: u64,
    /// Bumped to ask every bookmark-enabled watch for a BOOKMARK.
    pub(super) bookmark_epoch: u64,
    /// Open watch streams.
    pub(super) watches: usize,
    /// uids handed out so far (the counter part of the next uid).
    pub(super) uids: u64,
}

/// The state and its change signal, shared by the server, its watches and
/// every [`super::KubeApi`] clone.
pub(super) struct Shared {
    /// The store; locked briefly, never across an `.await`.
    pub(super) state: Mutex<State>,
    /// Bumped after every change of `state`: wakes watches and waiters.
    pub(super) changed: watch::Sender<u64>,
    /// Random per double, so uids and generated names differ across runs.
    pub(super) uid_seed: u64,
}

impl Shared {
    /// Locks the state; a panic elsewhere does not poison it for the
    /// other tests' assertions.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every watch and waiter after a change.
    pub(super) fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// A fresh uid in UUID v4 shape, unique within this double.
    pub(super) fn new_uid(&self, st: &mut State) -> String {
        st.uids += 1;
        let x = (self.uid_seed as u128) << 64 | st.uids as u128;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (x >> 96) as u32,
            (x >> 80) as u16,
            (x >> 64) as u16 & 0xfff,
            (x >> 48) as u16 & 0xfff,
            x as u64 & 0xffff_ffff_ffff
        )
    }
}

impl State {
    /// Stores a new object, bumping the revision and recording ADDED.
    pub(super) fn create(
        &mut self,
        shared: &Shared,
        kind: &'static Kind,
        ns: &str,
        mut obj: Value,
    ) -> Value {
        let name = str_field(&obj, "name").to_string();
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        if kind.status_subresource {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        let uid = shared.new_uid(self);
        self.rv += 1;
        let m = meta_mut(&mut obj);
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            m.remove(k);
        }
        m.insert("name".into(), json!(name));
        if kind.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        if kind.generation {
            m.insert("generation".into(), json!(1));
        }
        self.objects
            .insert((kind.index(), ns.to_string(), name), obj.clone());
        self.record(kind, "ADDED", obj.clone(), None);
        obj
    }

    /// Replaces a stored object with `new` (whose system metadata is taken
    /// from the stored one). A change-free write is a no-op, as on the real
    /// server.
    pub(super) fn replace(&mut self, kind: &'static Kind, key: &Key, mut new: Value) -> Value {
        let prev = self.objects.get(key).expect("replace existing").clone();
        new["apiVersion"] = json!(kind.api_version());
        new["kind"] = json!(kind.kind);
        {
            let m = meta_mut(&mut new);
            m.remove("managedFields");
            m.insert("name".into(), json!(key.2));
            if kind.namespaced {
                m.insert("namespace".into(), json!(key.1));
            } else {
                m.remove("namespace");
            }
            for k in ["uid", "creationTimestamp", "resourceVersion", "generation"] {
                match meta(&prev).get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
        if kind.generation && spec_part(&new) != spec_part(&prev) {
            let generation = meta(&prev)["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        if new == prev {
            return prev;
        }
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects.insert(key.clone(), new.clone());
        self.record(kind, "MODIFIED", new.clone(), Some(prev));
        new
    }

    /// Replaces the main resource: keeps the stored status when the kind has
    /// a status subresource.
    pub(super) fn replace_main(&mut self, kind: &'static Kind, key: &Key, mut new: Value) -> Value {
        if kind.status_subresource {
            let stored = self.objects[key].get("status").cloned();
            if let Some(o) = new.as_object_mut() {
                match stored {
                    Some(s) => o.insert("status".into(), s),
                    None => o.remove("status"),
                };
            }
        }
        self.replace(kind, key, new)
    }

    /// Merges `status` into the stored object's status (status subresource).
    pub(super) fn merge_status(
        &mut self,
        kind: &'static Kind,
        key: &Key,
        status: Option<&Value>,
    ) -> Value {
        let mut new = self.objects[key].clone();
        if let Some(status) = status {
            if status.is_null() {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            } else {
                merge_patch(
                    new.as_object_mut()
                        .expect("object")
                        .entry("status")
                        .or_insert(Value::Null),
                    status,
                );
            }
        }
        self.replace(kind, key, new)
    }

    /// Removes an object, bumping the revision and recording DELETED with
    /// the object at the deletion's resourceVersion.
    pub(super) fn delete(&mut self, kind: &'static Kind, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.record(kind, "DELETED", obj.clone(), None);
        Some(obj)
    }

    /// Appends the event for the change that just made revision `rv`.
    fn record(
        &mut self,
        kind: &'static Kind,
        kind_of_event: &'static str,
        object: Value,
        prev: Option<Value>,
    ) {
        self.events.push(Event {
            rv: self.rv,
            kind: kind.index(),
            kind_of_event,
            object,
            prev,
        });
    }
}
