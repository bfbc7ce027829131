//! The test controls of [`KubeApi`]: change the world as an administrator
//! or another controller would (apply, status, delete), provoke what a real
//! cluster does (cut watches, compact, bookmark, outage), and observe what
//! the controller did (objects, status writes, requests, open watches),
//! including waiting for it.
//!
//! Owns the test-facing API of the double. Must not speak HTTP: every
//! change goes through `state`, exactly as the verbs' changes do.

use std::net::SocketAddr;

use serde_json::Value;

use super::kinds::Kind;
use super::object::str_field;
use super::state::State;
use super::KubeApi;

impl KubeApi {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `kube::Client` for the double, default namespace `default`.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().expect("double URL"));
        config.default_namespace = "default".to_string();
        kube::Client::try_from(config).expect("kube client for the double")
    }

    /// Creates `obj` or replaces the stored object of the same
    /// apiVersion/kind/namespace/name (namespace defaults to `default`),
    /// unconditionally, as an administrator would. Generation follows the
    /// CRD rules; for kinds with a status subresource the stored status is
    /// kept (use [`KubeApi::set_status`]). Returns the stored object.
    pub fn apply(&self, obj: Value) -> Value {
        let kind = Kind::expect_type(
            obj["apiVersion"].as_str().unwrap_or(""),
            obj["kind"].as_str().unwrap_or(""),
        );
        let name = str_field(&obj, "name").to_string();
        assert!(!name.is_empty(), "apply: metadata.name is required");
        let ns = if kind.namespaced {
            match str_field(&obj, "namespace") {
                "" => "default".to_string(),
                ns => ns.to_string(),
            }
        } else {
            String::new()
        };
        let key = (kind.index(), ns.clone(), name);
        let stored = {
            let mut st = self.shared.lock();
            if st.objects.contains_key(&key) {
                st.replace_main(kind, &key, obj)
            } else {
                st.create(&self.shared, kind, &ns, obj)
            }
        };
        self.shared.notify();
        stored
    }

    /// Merges `status` into a stored object's status, as another writer of
    /// the status subresource would (not logged in
    /// [`KubeApi::status_patches`]). Returns the stored object, or `None` if
    /// there is none.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
        status: Value,
    ) -> Option<Value> {
        let kind = Kind::expect_type(api_version, kind);
        let key = (kind.index(), ns.to_string(), name.to_string());
        let stored = {
            let mut st = self.shared.lock();
            if !st.objects.contains_key(&key) {
                return None;
            }
            st.merge_status(kind, &key, Some(&status))
        };
        self.shared.notify();
        Some(stored)
    }

    /// Deletes an object (`ns` is "" for cluster-scoped kinds); returns it
    /// as the DELETED event carried it, or `None` if absent.
    pub fn delete(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = Kind::expect_type(api_version, kind);
        let key = (kind.index(), ns.to_string(), name.to_string());
        let deleted = self.shared.lock().delete(kind, &key);
        self.shared.notify();
        deleted
    }

    /// The stored object, if any (`ns` is "" for cluster-scoped kinds).
    pub fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = Kind::expect_type(api_version, kind);
        let key = (kind.index(), ns.to_string(), name.to_string());
        self.shared.lock().objects.get(&key).cloned()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Every status write (PATCH or PUT on `loadbalancerroutes/{name}/status`)
    /// received, in order, as (namespace, name, request body), including
    /// writes answered 404 or that changed nothing.
    pub fn status_patches(&self) -> Vec<(String, String, Value)> {
        self.shared.lock().status_patches.clone()
    }

    /// When each of [`KubeApi::status_patches`] arrived, in the same order.
    pub fn status_patch_times(&self) -> Vec<tokio::time::Instant> {
        self.shared.lock().status_patch_times.clone()
    }

    /// Waits until at least `n` status writes have been received; returns
    /// them all. Bound it with a timeout.
    pub async fn wait_status_patches(&self, n: usize) -> Vec<(String, String, Value)> {
        self.wait(|st| (st.status_patches.len() >= n).then(|| st.status_patches.clone()))
            .await
    }

    /// Waits until `f` returns `Some` for the current stored objects and
    /// logs; `f` runs after every change. Bound it with a timeout.
    pub async fn wait_for<T>(&self, mut f: impl FnMut(&KubeApi) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        loop {
            if let Some(t) = f(self) {
                return t;
            }
            changed.changed().await.expect("double alive");
        }
    }

    /// Waits until `f` returns `Some` for the current state; `f` runs
    /// after every change.
    async fn wait<T>(&self, mut f: impl FnMut(&State) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        loop {
            if let Some(t) = f(&self.shared.lock()) {
                return t;
            }
            changed.changed().await.expect("double alive");
        }
    }

    /// Abruptly ends every open watch stream (the connection is dropped
    /// mid-body, as when a network path or apiserver replica goes away).
    pub fn cut_watches(&self) {
        self.shared.lock().cut_epoch += 1;
        self.shared.notify();
    }

    /// Advances the revision (as unrelated writes elsewhere in the cluster
    /// would) and compacts the history at it: every watch resumed from an
    /// earlier resourceVersion gets 410 Expired; open watches keep
    /// streaming. Pair with [`KubeApi::cut_watches`] to force a relist.
    pub fn compact(&self) {
        {
            let mut st = self.shared.lock();
            st.rv += 1;
            st.compacted = st.rv;
        }
        self.shared.notify();
    }

    /// Sends a BOOKMARK at the current revision on every open watch that
    /// allows bookmarks.
    pub fn bookmark(&self) {
        self.shared.lock().bookmark_epoch += 1;
        self.shared.notify();
    }

    /// Number of open watch streams.
    pub fn watch_count(&self) -> usize {
        self.shared.lock().watches
    }

    /// Waits until at least `n` watch streams are open. Bound it with a
    /// timeout.
    pub async fn wait_watches(&self, n: usize) {
        self.wait(|st| (st.watches >= n).then_some(())).await
    }

    /// Every request received, in order, as (method, path?query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().requests.clone()
    }

    /// While `true`, every request is answered 503 ServiceUnavailable and
    /// open watches are dropped, like an unreachable apiserver behind a
    /// load balancer.
    pub fn set_unavailable(&self, unavailable: bool) {
        {
            let mut st = self.shared.lock();
            st.unavailable = unavailable;
            if unavailable {
                st.cut_epoch += 1;
            }
        }
        self.shared.notify();
    }
}
