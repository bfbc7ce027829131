//! Status writes (merge patch, server-side apply, no-op writes) and Lease concurrency.

#[allow(unused_imports)]
use super::*;

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
