//! The Kubernetes API double (`support::kube_api`) proven with kube itself:
//! the real `kube::Client`, `kube::runtime::watcher` and `reflector` against
//! it, checking the behaviours the controller relies on (lists, watch
//! framing and resumption, 410 Expired relists, bookmarks, status writes,
//! generation, lease concurrency, label selectors, field selectors on
//! Secrets and ConfigMaps).

mod support;

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

const ROUTE_API: &str = "switchyard.dev/v1alpha1";
const ROUTE_KIND: &str = "LoadBalancerRoute";

fn route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("switchyard.dev", "v1alpha1", ROUTE_KIND),
        "loadbalancerroutes",
    )
}

fn routes(api: &KubeApi, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(api.client(), ns, &route_resource())
}

fn all_routes(api: &KubeApi) -> Api<DynamicObject> {
    Api::all_with(api.client(), &route_resource())
}

fn spec(host: &str) -> Value {
    json!({"hosts": [host], "rules": [{"backends": [{"service": "shop", "port": 80}]}]})
}

fn rv(obj: &impl Resource) -> u64 {
    obj.resource_version()
        .expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

fn generation(obj: &impl Resource) -> i64 {
    obj.meta().generation.expect("generation")
}

// === observing watcher streams ===

/// A watcher event, reduced to what the tests assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
    /// A watcher error (e.g. the 410 Expired watch event), as its message.
    Error(String),
}

/// A watcher (or reflector) stream driven by a task, its events forwarded.
struct Observed {
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn observe<K, S>(stream: S) -> Observed
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

fn names_in<K>(store: &reflector::Store<K>) -> Vec<String>
where
    K: Resource + Clone,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    let mut names: Vec<String> = store.state().iter().map(|o| o.name_any()).collect();
    names.sort();
    names
}

// === list ===

#[tokio::test]
async fn list_returns_applied_objects_with_server_metadata() {
    let api = kube_api::start().await;
    api.apply(route("default", "mango", spec("mango.example")));
    api.apply(route("default", "apple", spec("apple.example")));
    api.apply(route("other", "kiwi", spec("kiwi.example")));
    api.apply(service("default", "shop", &[("http", 80, 8080)]));

    let list = within(
        "list routes",
        routes(&api, "default").list(&ListParams::default()),
    )
    .await
    .expect("list routes");
    let names: Vec<String> = list.items.iter().map(|o| o.name_any()).collect();
    assert_eq!(names, ["apple", "mango"], "namespaced list, sorted by name");
    assert_eq!(
        list.metadata.resource_version,
        Some(api.resource_version().to_string()),
        "list carries the current global resourceVersion"
    );
    for item in &list.items {
        let meta = item.meta();
        assert!(
            meta.uid.as_deref().is_some_and(|u| u.len() == 36),
            "uid: {meta:?}"
        );
        assert!(
            meta.creation_timestamp.is_some(),
            "creationTimestamp: {meta:?}"
        );
        assert_eq!(meta.generation, Some(1), "generation 1 on create");
        assert_eq!(
            item.types.as_ref().map(|t| t.kind.as_str()),
            Some(ROUTE_KIND)
        );
        assert_eq!(
            item.data["spec"]["hosts"][0].as_str(),
            Some(format!("{}.example", item.name_any()).as_str())
        );
    }

    let everywhere = within(
        "list all routes",
        all_routes(&api).list(&ListParams::default()),
    )
    .await
    .expect("list all routes");
    assert_eq!(
        everywhere.items.len(),
        3,
        "cluster-wide list spans namespaces"
    );

    let services: Api<Service> = Api::default_namespaced(api.client());
    let svc = within("get service", services.get("shop"))
        .await
        .expect("get service");
    let ports = svc.spec.expect("spec").ports.expect("ports");
    assert_eq!(
        (ports[0].port, ports[0].name.as_deref()),
        (80, Some("http"))
    );
}

#[tokio::test]
async fn list_pages_with_limit_and_continue_tokens() {
    let api = kube_api::start().await;
    for name in ["a", "b", "c", "d", "e"] {
        api.apply(service("default", name, &[("http", 80, 8080)]));
    }
    let services: Api<Service> = Api::default_namespaced(api.client());
    let first = within("page 1", services.list(&ListParams::default().limit(2)))
        .await
        .expect("page 1");
    let names = |l: &kube::core::ObjectList<Service>| {
        l.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().expect("continue token");

    let second = within(
        "page 2",
        services.list(&ListParams::default().limit(2).continue_token(&token)),
    )
    .await
    .expect("page 2");
    assert_eq!(names(&second), ["c", "d"]);
    assert_eq!(
        second.metadata.resource_version, first.metadata.resource_version,
        "later pages report the first page's resourceVersion"
    );
    let token = second.metadata.continue_.clone().expect("continue token");

    let last = within(
        "page 3",
        services.list(&ListParams::default().limit(2).continue_token(&token)),
    )
    .await
    .expect("page 3");
    assert_eq!(names(&last), ["e"]);
    assert!(
        last.metadata.continue_.as_deref().unwrap_or("").is_empty(),
        "last page has no continue"
    );

    api.compact();
    let expired = within(
        "expired page",
        services.list(&ListParams::default().limit(2).continue_token(&token)),
    )
    .await
    .expect_err("continue token older than the compaction is refused");
    assert!(
        matches!(&expired, kube::Error::Api(s) if s.code == 410 && s.reason == "Expired"),
        "{expired:?}"
    );
}

#[tokio::test]
async fn endpoint_slices_are_selected_by_service_name_label() {
    let api = kube_api::start().await;
    api.apply(endpoint_slice(
        "default",
        "shop-1",
        "shop",
        "http",
        8080,
        &[("10.0.0.1", true, false)],
    ));
    api.apply(endpoint_slice(
        "default",
        "shop-2",
        "shop",
        "http",
        8080,
        &[("10.0.0.2", false, true), ("10.0.0.3", false, false)],
    ));
    api.apply(endpoint_slice(
        "default",
        "cart-1",
        "cart",
        "http",
        8080,
        &[("10.0.1.1", true, false)],
    ));

    let slices: Api<EndpointSlice> = Api::default_namespaced(api.client());
    let selected = ListParams::default().labels("kubernetes.io/service-name=shop");
    let list = within("list shop slices", slices.list(&selected))
        .await
        .expect("list");
    let names: Vec<String> = list.items.iter().map(|s| s.name_any()).collect();
    assert_eq!(names, ["shop-1", "shop-2"]);
    let terminating = &list.items[1].endpoints.as_ref().expect("endpoints")[0];
    assert_eq!(terminating.addresses, ["10.0.0.2"]);
    let conditions = terminating.conditions.as_ref().expect("conditions");
    assert_eq!(
        (conditions.ready, conditions.serving, conditions.terminating),
        (Some(false), Some(true), Some(true)),
        "terminating endpoint still serving"
    );
    assert_eq!(list.items[0].address_type, "IPv4");

    // A filtered watch: a slice relabelled out of the selection is a delete,
    // one relabelled into it an apply.
    let mut seen = observe(watcher(
        slices.clone(),
        watcher::Config::default().labels("kubernetes.io/service-name=shop"),
    ));
    let init = seen.until(Seen::InitDone).await;
    assert_eq!(
        init,
        [
            Seen::Init,
            Seen::InitApply("shop-1".into()),
            Seen::InitApply("shop-2".into()),
            Seen::InitDone
        ]
    );
    api.apply(endpoint_slice(
        "default",
        "shop-2",
        "cart",
        "http",
        8080,
        &[],
    ));
    api.apply(endpoint_slice(
        "default",
        "cart-1",
        "shop",
        "http",
        8080,
        &[("10.0.1.1", true, false)],
    ));
    assert_eq!(
        seen.next_n(2).await,
        [Seen::Delete("shop-2".into()), Seen::Apply("cart-1".into())]
    );
}

async fn names_listed<K>(api: &Api<K>, fields: &str) -> Vec<String>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = within(
        &format!("list with {fields}"),
        api.list(&ListParams::default().fields(fields)),
    )
    .await
    .unwrap_or_else(|e| panic!("list with {fields}: {e}"));
    list.items.iter().map(|o| o.name_any()).collect()
}

#[tokio::test]
async fn secrets_are_selected_by_type_and_name_field_selectors() {
    let api = kube_api::start().await;
    api.apply(tls_secret("default", "a-tls", b"crt", b"key"));
    api.apply(tls_secret("default", "b-tls", b"crt", b"key"));
    api.apply(secret(
        "default",
        "release",
        "helm.sh/release.v1",
        &[("release", b"x")],
    ));
    let mut untyped = secret("default", "untyped", "", &[]);
    untyped.as_object_mut().expect("object").remove("type");
    api.apply(untyped);

    let secrets: Api<Secret> = Api::default_namespaced(api.client());
    let tls = "type=kubernetes.io/tls";
    assert_eq!(names_listed(&secrets, tls).await, ["a-tls", "b-tls"]);
    assert_eq!(
        names_listed(&secrets, "metadata.name=a-tls,type==kubernetes.io/tls").await,
        ["a-tls"]
    );
    assert_eq!(names_listed(&secrets, "type=Opaque").await, ["untyped"]);
    assert_eq!(
        names_listed(&secrets, "type!=kubernetes.io/tls").await,
        ["release", "untyped"]
    );
    let a = within("get a-tls", secrets.get("a-tls"))
        .await
        .expect("get");
    let data = a.data.expect("data");
    assert_eq!(data["tls.crt"].0, b"crt");
    assert_eq!(a.type_.as_deref(), Some("kubernetes.io/tls"));

    // A filtered watch: Secrets of other types never show, even when they
    // change first.
    let mut seen = observe(watcher(
        secrets.clone(),
        watcher::Config::default().fields(tls),
    ));
    let init = seen.until(Seen::InitDone).await;
    assert_eq!(
        init,
        [
            Seen::Init,
            Seen::InitApply("a-tls".into()),
            Seen::InitApply("b-tls".into()),
            Seen::InitDone
        ]
    );
    api.apply(secret(
        "default",
        "release",
        "helm.sh/release.v1",
        &[("release", b"y")],
    ));
    api.apply(tls_secret("default", "a-tls", b"crt2", b"key"));
    api.delete("v1", "Secret", "default", "b-tls");
    assert_eq!(
        seen.next_n(2).await,
        [Seen::Apply("a-tls".into()), Seen::Delete("b-tls".into())]
    );

    // Through the HTTP verbs, as a client writes them: POST, PATCH, DELETE.
    let post = |value: Value| async {
        let obj: Secret = serde_json::from_value(value).expect("a Secret");
        within("create", secrets.create(&PostParams::default(), &obj))
            .await
            .expect("create")
    };
    post(secret("default", "token", "Opaque", &[("t", b"x")])).await;
    post(tls_secret("default", "c-tls", b"crt", b"key")).await;
    let patch = json!({"data": {"tls.crt": "Y3J0Mg=="}});
    let patched = within(
        "patch",
        secrets.patch("c-tls", &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
    .expect("patch");
    assert_eq!(patched.data.expect("data")["tls.crt"].0, b"crt2");
    within("delete", secrets.delete("c-tls", &DeleteParams::default()))
        .await
        .expect("delete");
    assert_eq!(
        seen.next_n(3).await,
        [
            Seen::Apply("c-tls".into()),
            Seen::Apply("c-tls".into()),
            Seen::Delete("c-tls".into())
        ]
    );
}

#[tokio::test]
async fn config_maps_take_name_and_namespace_field_selectors_only() {
    let api = kube_api::start().await;
    api.apply(config_map("default", "client-ca", &[("ca.crt", "pem")]));
    api.apply(config_map("default", "other", &[]));
    api.apply(config_map("shop", "client-ca", &[]));

    let maps: Api<ConfigMap> = Api::default_namespaced(api.client());
    assert_eq!(
        names_listed(&maps, "metadata.namespace=default,metadata.name=client-ca").await,
        ["client-ca"]
    );
    let all: Api<ConfigMap> = Api::all(api.client());
    let list = within(
        "list client-ca everywhere",
        all.list(&ListParams::default().fields("metadata.name=client-ca")),
    )
    .await
    .expect("list");
    let namespaces: Vec<_> = list.items.iter().filter_map(|m| m.namespace()).collect();
    assert_eq!(namespaces, ["default", "shop"]);
    assert_eq!(list.items[0].data.as_ref().expect("data")["ca.crt"], "pem");

    // Only Secrets have a `type` field to select on; an unknown field is a
    // 400, as on the real server.
    for (fields, on_secrets) in [("type=kubernetes.io/tls", false), ("spec.type=x", true)] {
        let err = if on_secrets {
            let secrets: Api<Secret> = Api::default_namespaced(api.client());
            within("list", secrets.list(&ListParams::default().fields(fields)))
                .await
                .map(|_| ())
        } else {
            within("list", maps.list(&ListParams::default().fields(fields)))
                .await
                .map(|_| ())
        }
        .expect_err("400");
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 400),
            "{fields}: {err:?}"
        );
    }
}

// === watch ===

#[tokio::test]
async fn watcher_sees_initial_list_then_changes() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let mut seen = observe(watcher(
        routes(&api, "default"),
        watcher::Config::default().any_semantic(),
    ));
    assert_eq!(
        seen.until(Seen::InitDone).await,
        [Seen::Init, Seen::InitApply("apple".into()), Seen::InitDone]
    );

    api.apply(route("default", "mango", spec("mango.example")));
    api.apply(route("other", "kiwi", spec("kiwi.example"))); // other namespace: not seen
    api.apply(route("default", "apple", spec("apple2.example")));
    let deleted = api
        .delete(ROUTE_API, ROUTE_KIND, "default", "mango")
        .expect("mango deleted");
    assert_eq!(
        seen.next_n(3).await,
        [
            Seen::Apply("mango".into()),
            Seen::Apply("apple".into()),
            Seen::Delete("mango".into())
        ]
    );
    assert_eq!(
        deleted["metadata"]["resourceVersion"],
        json!(api.resource_version().to_string()),
        "a delete is a new revision"
    );
}

#[tokio::test]
async fn reflector_store_follows_create_update_delete() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let writer = reflector::store::Writer::<DynamicObject>::new(route_resource());
    let store = writer.as_reader();
    let mut seen = observe(reflector(
        writer,
        watcher(all_routes(&api), watcher::Config::default()),
    ));
    seen.until(Seen::InitDone).await;
    assert_eq!(names_in(&store), ["apple"]);

    api.apply(route("default", "mango", spec("mango.example")));
    seen.until(Seen::Apply("mango".into())).await;
    assert_eq!(names_in(&store), ["apple", "mango"]);

    api.apply(route("default", "mango", spec("mango2.example")));
    seen.until(Seen::Apply("mango".into())).await;
    let mango = store
        .find(|o| o.name_any() == "mango")
        .expect("mango in store");
    assert_eq!(mango.data["spec"]["hosts"][0], "mango2.example");
    assert_eq!(generation(&*mango), 2, "spec change bumps generation");

    api.delete(ROUTE_API, ROUTE_KIND, "default", "apple");
    seen.until(Seen::Delete("apple".into())).await;
    assert_eq!(names_in(&store), ["mango"]);
}

#[tokio::test]
async fn watcher_resumes_after_cut_watch_without_relisting() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let mut seen = observe(watcher(routes(&api, "default"), watcher::Config::default()));
    seen.until(Seen::InitDone).await;
    within("watch open", api.wait_watches(1)).await;
    let before = api.resource_version();

    api.cut_watches();
    api.apply(route("default", "mango", spec("mango.example")));
    let after_cut = seen.until(Seen::Apply("mango".into())).await;
    assert!(
        !after_cut.contains(&Seen::Init),
        "a resumable cut must not cause a relist: {after_cut:?}"
    );
    let requests = api.requests();
    let lists = requests
        .iter()
        .filter(|(m, p)| m == "GET" && !p.contains("watch=true"))
        .count();
    let watches_from_before = requests
        .iter()
        .filter(|(m, p)| {
            m == "GET"
                && p.contains("watch=true")
                && p.contains(&format!("resourceVersion={before}"))
        })
        .count();
    assert_eq!(lists, 1, "one list only: {requests:?}");
    assert_eq!(
        watches_from_before, 2,
        "the watch was reopened from the last seen resourceVersion: {requests:?}"
    );
}

#[tokio::test]
async fn watcher_relists_after_compaction_and_store_is_still_right() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    api.apply(route("default", "mango", spec("mango.example")));
    let writer = reflector::store::Writer::<DynamicObject>::new(route_resource());
    let store = writer.as_reader();
    let mut seen = observe(reflector(
        writer,
        watcher(routes(&api, "default"), watcher::Config::default()),
    ));
    seen.until(Seen::InitDone).await;
    within("watch open", api.wait_watches(1)).await;

    api.compact();
    api.cut_watches();
    api.delete(ROUTE_API, ROUTE_KIND, "default", "apple");
    api.apply(route("default", "kiwi", spec("kiwi.example")));

    let relist = seen.until(Seen::InitDone).await;
    assert!(
        relist
            .iter()
            .any(|s| matches!(s, Seen::Error(e) if e.contains("410") || e.contains("too old"))),
        "the resume got 410 Expired: {relist:?}"
    );
    assert!(
        relist.contains(&Seen::Init),
        "a new Init after 410: {relist:?}"
    );
    assert_eq!(names_in(&store), ["kiwi", "mango"]);

    // Watching again after the relist: later changes still arrive.
    api.apply(route("default", "plum", spec("plum.example")));
    seen.until(Seen::Apply("plum".into())).await;
    assert_eq!(names_in(&store), ["kiwi", "mango", "plum"]);
}

#[tokio::test]
async fn watch_from_compacted_version_gets_expired_error_event() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let old = api.resource_version();
    api.apply(route("default", "apple", spec("apple2.example")));
    api.compact();

    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default(), &old.to_string()),
    )
    .await
    .expect("watch is answered 200");
    let events: Vec<_> = within("watch stream ends", stream.collect::<Vec<_>>()).await;
    assert_eq!(
        events.len(),
        1,
        "exactly one event, then the stream ends: {events:?}"
    );
    match &events[0] {
        Ok(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert_eq!(
                status.message,
                format!(
                    "too old resource version: {old} ({})",
                    api.resource_version()
                )
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_replays_history_after_resource_version_then_goes_live() {
    let api = kube_api::start().await;
    let from = api.apply(route("default", "apple", spec("apple.example")));
    api.apply(route("default", "apple", spec("apple2.example")));
    api.apply(route("default", "mango", spec("mango.example")));
    let from = from["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default(), &from),
    )
    .await
    .expect("watch");
    let mut stream = std::pin::pin!(stream);
    let mut next = async || match within("watch event", stream.next()).await {
        Some(Ok(WatchEvent::Added(o))) => ("ADDED", o.name_any(), rv(&o)),
        Some(Ok(WatchEvent::Modified(o))) => ("MODIFIED", o.name_any(), rv(&o)),
        Some(Ok(WatchEvent::Deleted(o))) => ("DELETED", o.name_any(), rv(&o)),
        other => panic!("unexpected {other:?}"),
    };
    let first = next().await;
    let second = next().await;
    assert_eq!((first.0, first.1.as_str()), ("MODIFIED", "apple"));
    assert_eq!((second.0, second.1.as_str()), ("ADDED", "mango"));
    assert!(first.2 < second.2, "events in resourceVersion order");

    api.delete(ROUTE_API, ROUTE_KIND, "default", "apple");
    let live = next().await;
    assert_eq!(
        (live.0, live.1.as_str(), live.2),
        ("DELETED", "apple", api.resource_version())
    );
}

#[tokio::test]
async fn bookmarks_carry_the_global_resource_version() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let from = api.resource_version().to_string();
    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default(), &from),
    )
    .await
    .expect("watch");
    let mut stream = Box::pin(stream);
    within("watch open", api.wait_watches(1)).await;

    // A write to another kind moves the global revision, not this watch.
    api.apply(service("default", "shop", &[("http", 80, 8080)]));
    api.bookmark();
    let want = api.resource_version().to_string();
    match within("bookmark", stream.next()).await {
        Some(Ok(WatchEvent::Bookmark(bm))) => {
            assert_eq!(bm.metadata.resource_version, want);
            assert_eq!(bm.types.kind, ROUTE_KIND);
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    // Idle watches get periodic bookmarks too.
    match within("periodic bookmark", stream.next()).await {
        Some(Ok(WatchEvent::Bookmark(bm))) => assert_eq!(bm.metadata.resource_version, want),
        other => panic!("expected a periodic bookmark, got {other:?}"),
    }

    // A client that goes away closes its watch on the server.
    drop(stream);
    within(
        "watch closed after the client left",
        api.wait_for(|a| (a.watch_count() == 0).then_some(())),
    )
    .await;
}

#[tokio::test]
async fn watch_ends_cleanly_at_timeout_seconds() {
    let api = kube_api::start().await;
    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default().timeout(1), "0"),
    )
    .await
    .expect("watch");
    let events: Vec<_> = within("stream ends at timeoutSeconds", stream.collect::<Vec<_>>()).await;
    assert!(
        events
            .iter()
            .all(|e| matches!(e, Ok(WatchEvent::Bookmark(_)))),
        "nothing but (idle) bookmarks, no error: {events:?}"
    );
    within(
        "watch closed",
        api.wait_for(|a| (a.watch_count() == 0).then_some(())),
    )
    .await;
}

#[tokio::test]
async fn streaming_list_sends_initial_events_then_end_bookmark() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let mut seen = observe(watcher(
        routes(&api, "default"),
        watcher::Config::default().streaming_lists(),
    ));
    assert_eq!(
        seen.until(Seen::InitDone).await,
        [Seen::Init, Seen::InitApply("apple".into()), Seen::InitDone]
    );
    api.apply(route("default", "mango", spec("mango.example")));
    seen.until(Seen::Apply("mango".into())).await;
}

// === status ===

#[tokio::test]
async fn merge_patch_of_status_changes_status_not_generation() {
    let api = kube_api::start().await;
    let created = api.apply(route("default", "mango", spec("mango.example")));
    let routes = routes(&api, "default");
    let mut seen = observe(watcher(routes.clone(), watcher::Config::default()));
    seen.until(Seen::InitDone).await;

    let status = json!({"status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}});
    let patched = within(
        "patch status",
        routes.patch_status("mango", &PatchParams::default(), &Patch::Merge(&status)),
    )
    .await
    .expect("patch status");
    assert_eq!(patched.data["status"], status["status"]);
    assert_eq!(
        patched.data["spec"],
        spec("mango.example"),
        "spec untouched"
    );
    assert_eq!(
        generation(&patched),
        1,
        "status writes never bump generation"
    );
    assert!(
        rv(&patched)
            > created["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
    );
    seen.until(Seen::Apply("mango".into())).await;

    let patches = api.status_patches();
    assert_eq!(
        patches,
        [("default".into(), "mango".into(), status.clone())]
    );
    assert!(api.requests().iter().any(|(m, p)| m == "PATCH"
        && p.starts_with(
            "/apis/switchyard.dev/v1alpha1/namespaces/default/loadbalancerroutes/mango/status"
        )));

    // A spec change bumps generation and keeps the status.
    let updated = api.apply(route("default", "mango", spec("mango2.example")));
    assert_eq!(updated["metadata"]["generation"], 2);
    assert_eq!(
        updated["status"], status["status"],
        "main-resource writes keep status"
    );

    // A metadata-only change does not.
    let mut labelled = route("default", "mango", spec("mango2.example"));
    labelled["metadata"]["labels"] = json!({"team": "fruit"});
    assert_eq!(api.apply(labelled)["metadata"]["generation"], 2);
}

#[tokio::test]
async fn server_side_apply_of_status_merges_status() {
    let api = kube_api::start().await;
    api.apply(route("default", "mango", spec("mango.example")));
    api.set_status(
        ROUTE_API,
        ROUTE_KIND,
        "default",
        "mango",
        json!({"observedGeneration": 1}),
    );
    let routes = routes(&api, "default");
    let before = within("get", routes.get("mango")).await.expect("get");

    let apply = json!({
        "apiVersion": ROUTE_API,
        "kind": ROUTE_KIND,
        "status": {"conditions": [{"type": "Accepted", "status": "True"}]},
    });
    let waiting = api.clone();
    let waiter = tokio::spawn(async move { waiting.wait_status_patches(1).await });
    let patched = within(
        "apply status",
        routes.patch_status(
            "mango",
            &PatchParams::apply("switchyard").force(),
            &Patch::Apply(&apply),
        ),
    )
    .await
    .expect("apply status");
    assert_eq!(
        patched.data["status"]["conditions"],
        apply["status"]["conditions"]
    );
    assert_eq!(
        patched.data["status"]["observedGeneration"], 1,
        "merged, not replaced"
    );
    assert_eq!(generation(&patched), 1);
    assert!(
        rv(&patched) > rv(&before),
        "status write bumps resourceVersion"
    );

    let patches = within("status patch logged", waiter).await.expect("waiter");
    assert_eq!(patches[0].2, apply);
    let (method, path) = api
        .requests()
        .into_iter()
        .rfind(|(m, _)| m == "PATCH")
        .expect("patch request");
    assert_eq!(method, "PATCH");
    assert!(
        path.contains("fieldManager=switchyard") && path.contains("force=true"),
        "{path}"
    );
}

#[tokio::test]
async fn identical_status_write_is_a_no_op() {
    let api = kube_api::start().await;
    api.apply(route("default", "mango", spec("mango.example")));
    let routes = routes(&api, "default");
    let status = json!({"status": {"conditions": [{"type": "Accepted", "status": "True"}]}});
    let first = within(
        "first",
        routes.patch_status("mango", &PatchParams::default(), &Patch::Merge(&status)),
    )
    .await
    .expect("first");
    let second = within(
        "second",
        routes.patch_status("mango", &PatchParams::default(), &Patch::Merge(&status)),
    )
    .await
    .expect("second");
    assert_eq!(
        rv(&first),
        rv(&second),
        "no new revision for an unchanged object"
    );
    assert_eq!(api.status_patches().len(), 2, "both writes are logged");
}

#[tokio::test]
async fn status_write_to_missing_route_is_not_found() {
    let api = kube_api::start().await;
    let status = json!({"status": {"conditions": []}});
    let err = within(
        "patch missing",
        routes(&api, "default").patch_status(
            "ghost",
            &PatchParams::default(),
            &Patch::Merge(&status),
        ),
    )
    .await
    .expect_err("404");
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
            assert_eq!(
                s.message,
                "loadbalancerroutes.switchyard.dev \"ghost\" not found"
            );
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
}

// === leases ===

#[tokio::test]
async fn lease_create_get_replace_with_optimistic_concurrency() {
    let api = kube_api::start().await;
    let leases: Api<Lease> = Api::default_namespaced(api.client());
    let missing = within("get missing", leases.get("switchyard"))
        .await
        .expect_err("absent");
    assert!(
        matches!(&missing, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"),
        "{missing:?}"
    );
    assert!(within("get_opt", leases.get_opt("switchyard"))
        .await
        .expect("get_opt")
        .is_none());

    let lease: Lease =
        serde_json::from_value(kube_api::lease("default", "switchyard", "pod-a")).expect("lease");
    let created = within("create", leases.create(&PostParams::default(), &lease))
        .await
        .expect("create");
    assert_eq!(
        created.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("pod-a")
    );
    let again = within(
        "create again",
        leases.create(&PostParams::default(), &lease),
    )
    .await
    .expect_err("409");
    assert!(
        matches!(&again, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{again:?}"
    );

    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().holder_identity = Some("pod-b".into());
    let replaced = within(
        "replace",
        leases.replace("switchyard", &PostParams::default(), &renewed),
    )
    .await
    .expect("replace with current resourceVersion");
    assert!(rv(&replaced) > rv(&created));
    assert_eq!(
        replaced.metadata.uid, created.metadata.uid,
        "uid survives updates"
    );

    // `renewed` still carries the old resourceVersion: stale.
    let stale = within(
        "stale replace",
        leases.replace("switchyard", &PostParams::default(), &renewed),
    )
    .await
    .expect_err("409 on stale resourceVersion");
    assert!(
        matches!(&stale, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{stale:?}"
    );

    let got = within("get", leases.get("switchyard")).await.expect("get");
    assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("pod-b"));

    let patch = json!({"spec": {"holderIdentity": "pod-c"}});
    let patched = within(
        "merge patch",
        leases.patch("switchyard", &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
    .expect("merge patch");
    assert_eq!(
        patched.spec.unwrap().holder_identity.as_deref(),
        Some("pod-c")
    );

    within(
        "delete",
        leases.delete("switchyard", &DeleteParams::default()),
    )
    .await
    .expect("delete");
    assert!(api
        .get("coordination.k8s.io/v1", "Lease", "default", "switchyard")
        .is_none());
}

// === availability ===

#[tokio::test]
async fn requests_during_an_outage_complete_once_the_apiserver_is_back() {
    let api = kube_api::start().await;
    api.apply(service("default", "shop", &[("http", 80, 8080)]));
    api.set_unavailable(true);
    let services: Api<Service> = Api::default_namespaced(api.client());
    let list = tokio::spawn(async move { services.list(&ListParams::default()).await });

    // The client retries 503s: wait until it has been refused twice.
    let count_lists = |a: &KubeApi| {
        a.requests()
            .iter()
            .filter(|(m, p)| m == "GET" && p.starts_with("/api/v1/namespaces/default/services"))
            .count()
    };
    within(
        "two refused attempts",
        api.wait_for(|a| (count_lists(a) >= 2).then_some(())),
    )
    .await;
    assert!(!list.is_finished(), "the list is still retrying");

    api.set_unavailable(false);
    let list = within("list after outage", list)
        .await
        .expect("task")
        .expect("list succeeds");
    assert_eq!(list.items.len(), 1);
}

#[tokio::test]
async fn unknown_resources_and_namespaces_are_not_found() {
    let api = kube_api::start().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("switchyard.dev", "v1alpha1", "Nope"),
        "nopes",
    );
    let nopes: Api<DynamicObject> = Api::default_namespaced_with(api.client(), &ar);
    let err = within("list unknown", nopes.list(&ListParams::default()))
        .await
        .expect_err("404");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err:?}"
    );

    api.apply(kube_api::namespace("shop"));
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(api.client());
    let list = within("list namespaces", namespaces.list(&ListParams::default()))
        .await
        .expect("list");
    let names: BTreeMap<String, ()> = list.items.iter().map(|n| (n.name_any(), ())).collect();
    assert!(names.contains_key("shop"));
}

#[tokio::test]
async fn route_documents_from_the_proxy_test_builders_apply_unchanged() {
    let api = kube_api::start().await;
    let doc = support::route("mango")
        .namespace("shop")
        .host("mango.example");
    let obj: Value = serde_yaml_ng::from_str(&support::yaml(&[doc])).expect("route YAML");
    api.apply(obj);
    let got = within("get", routes(&api, "shop").get("mango"))
        .await
        .expect("get");
    assert_eq!(got.data["spec"]["hosts"], json!(["mango.example"]));
}

#[tokio::test]
async fn server_side_apply_creates_a_missing_object_but_merge_patch_does_not() {
    let api = kube_api::start().await;
    let routes = routes(&api, "default");
    let body = json!({
        "apiVersion": ROUTE_API,
        "kind": ROUTE_KIND,
        "metadata": {"name": "mango"},
        "spec": spec("mango.example"),
    });
    let created = within(
        "apply create",
        routes.patch(
            "mango",
            &PatchParams::apply("switchyard"),
            &Patch::Apply(&body),
        ),
    )
    .await
    .expect("server-side apply creates");
    assert_eq!(
        (created.name_any(), generation(&created)),
        ("mango".to_string(), 1)
    );

    let merge = within(
        "merge patch of a missing object",
        routes.patch(
            "ghost",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {}})),
        ),
    )
    .await
    .expect_err("merge patch does not create");
    assert!(
        matches!(&merge, kube::Error::Api(s) if s.code == 404),
        "{merge:?}"
    );
}
