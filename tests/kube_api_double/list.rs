//! Lists: metadata, paging, label and field selectors.

#[allow(unused_imports)]
use super::*;

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
