//! Outages, unknown resources, and the proxy tests' route documents.

#[allow(unused_imports)]
use super::*;

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
