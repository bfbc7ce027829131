//! The Kubernetes API double (`support::kube_api`) proven with kube itself:
//! the real `kube::Client`, `kube::runtime::watcher` and `reflector` against
//! it, checking the behaviours the controller relies on (lists, watch
//! framing and resumption, 410 Expired relists, bookmarks, status writes,
//! generation, lease concurrency, label selectors, field selectors on
//! Secrets and ConfigMaps).

#[path = "../support/mod.rs"]
mod support;

mod availability;
mod list;
mod status;
mod watch;

use std::collections::BTreeMap;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{reflector, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use support::kube_api::{
    self, config_map, endpoint_slice, route, secret, service, tls_secret, KubeApi,
};
use support::within;

pub(crate) const ROUTE_API: &str = "switchyard.dev/v1alpha1";
pub(crate) const ROUTE_KIND: &str = "LoadBalancerRoute";

pub(crate) fn route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("switchyard.dev", "v1alpha1", ROUTE_KIND),
        "loadbalancerroutes",
    )
}

pub(crate) fn routes(api: &KubeApi, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(api.client(), ns, &route_resource())
}

pub(crate) fn all_routes(api: &KubeApi) -> Api<DynamicObject> {
    Api::all_with(api.client(), &route_resource())
}

pub(crate) fn spec(host: &str) -> Value {
    json!({"hosts": [host], "rules": [{"backends": [{"service": "shop", "port": 80}]}]})
}

pub(crate) fn rv(obj: &impl Resource) -> u64 {
    obj.resource_version()
        .expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

pub(crate) fn generation(obj: &impl Resource) -> i64 {
    obj.meta().generation.expect("generation")
}

// === observing watcher streams ===

/// A watcher event, reduced to what the tests assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
    /// A watcher error (e.g. the 410 Expired watch event), as its message.
    Error(String),
}

/// A watcher (or reflector) stream driven by a task, its events forwarded.
pub(crate) struct Observed {
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn observe<K, S>(stream: S) -> Observed
where
    K: Resource + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            let seen = match item {
                Ok(watcher::Event::Init) => Seen::Init,
                Ok(watcher::Event::InitApply(o)) => Seen::InitApply(o.name_any()),
                Ok(watcher::Event::InitDone) => Seen::InitDone,
                Ok(watcher::Event::Apply(o)) => Seen::Apply(o.name_any()),
                Ok(watcher::Event::Delete(o)) => Seen::Delete(o.name_any()),
                Err(e) => Seen::Error(e.to_string()),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    Observed { rx, task }
}

impl Observed {
    /// Collects events up to and including the first one equal to `want`.
    async fn until(&mut self, want: Seen) -> Vec<Seen> {
        let mut seen = Vec::new();
        within(&format!("watcher event {want:?}"), async {
            loop {
                let ev = self.rx.recv().await.expect("watcher stream ended");
                seen.push(ev.clone());
                if ev == want {
                    return;
                }
            }
        })
        .await;
        seen
    }

    /// The next `n` events, errors included.
    async fn next_n(&mut self, n: usize) -> Vec<Seen> {
        let mut seen = Vec::new();
        within(&format!("{n} watcher events"), async {
            while seen.len() < n {
                seen.push(self.rx.recv().await.expect("watcher stream ended"));
            }
        })
        .await;
        seen
    }
}

pub(crate) fn names_in<K>(store: &reflector::Store<K>) -> Vec<String>
where
    K: Resource + Clone,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    let mut names: Vec<String> = store.state().iter().map(|o| o.name_any()).collect();
    names.sort();
    names
}
