//! The controller against the Kubernetes API: the in-process double here,
//! or a real apiserver when `SWITCHYARD_TEST_KUBECONFIG` names one (each
//! test in its own namespace, backends in a network namespace). Tests that
//! inject faults (cut watches, compaction, outages) need the double and
//! say so when skipped.

mod support;

use http::StatusCode;
use serde_json::{json, Value};
use support::cluster::{has_condition, Cluster, Controller, CLUSTER_DEADLINE};
use support::kube_api::{endpoint_slice, route as route_obj, service};
use support::*;

const LBR: (&str, &str) = ("switchyard.dev/v1alpha1", "LoadBalancerRoute");

/// `host` → Service `svc` port 80.
fn host_route(cluster: &Cluster, name: &str, host: &str, svc: &str) -> Value {
    route_obj(
        cluster.ns(),
        name,
        json!({"hosts": [host], "rules": [{"backends": [{"service": svc, "port": 80}]}]}),
    )
}

/// Service `name` (port 80 named http) with one slice of `endpoints`
/// (backend, ready, terminating).
async fn service_with(cluster: &Cluster, name: &str, endpoints: &[(&Backend, bool, bool)]) {
    cluster
        .apply(service(cluster.ns(), name, &[("http", 80, 8080)]))
        .await;
    set_endpoints(cluster, name, endpoints).await;
}

async fn set_endpoints(cluster: &Cluster, name: &str, endpoints: &[(&Backend, bool, bool)]) {
    // Every backend of one test listens on the same IP, each on its own
    // port; a slice has one port, so each backend gets its own slice.
    for (i, (backend, ready, terminating)) in endpoints.iter().enumerate() {
        let ip = backend.addr.ip().to_string();
        cluster
            .apply(endpoint_slice(
                cluster.ns(),
                &format!("{name}-{i}"),
                name,
                "http",
                backend.addr.port(),
                &[(&ip, *ready, *terminating)],
            ))
            .await;
    }
}

async fn get(controller: &Controller, host: &str, path: &str) -> Reply {
    let client = http1_client();
    let req = http::Request::get(format!("http://{}{path}", controller.addr))
        .header(http::header::HOST, host)
        .body(empty())
        .unwrap();
    let resp = within(
        "a request through the controller's proxy",
        client.request(req),
    )
    .await
    .expect("request");
    Reply::collect(resp).await
}

async fn wait_backend(controller: &Controller, host: &str, want: Option<&str>) {
    let what = format!("{host} to reach {want:?}");
    wait_until(&what, CLUSTER_DEADLINE, || async {
        let reply = get(controller, host, "/").await;
        match want {
            Some(backend) => reply.status == StatusCode::OK && reply.backend() == Some(backend),
            None => reply.status == StatusCode::NOT_FOUND,
        }
    })
    .await;
}

async fn wait_status(controller: &Controller, host: &str, want: StatusCode) {
    wait_until(
        &format!("{host} to answer {want}"),
        CLUSTER_DEADLINE,
        || async { get(controller, host, "/").await.status == want },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_added_changed_and_deleted_is_served_and_reported() {
    let cluster = Cluster::start("lifecycle").await;
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;

    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    wait_backend(&controller, "www.mango.com", Some("mango")).await;
    let status = cluster
        .wait_condition("mango", "Ready", "True", "Ready")
        .await;
    assert!(
        has_condition(&status, "Accepted", "True", "Accepted"),
        "{status}"
    );
    assert!(
        has_condition(&status, "ResolvedRefs", "True", "ResolvedRefs"),
        "{status}"
    );
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["readyEndpoints"], 1);
    assert!(
        status["conditions"][0]["lastTransitionTime"].is_string(),
        "{status}"
    );

    cluster
        .apply(host_route(&cluster, "mango", "shop.mango.com", "mango"))
        .await;
    wait_backend(&controller, "shop.mango.com", Some("mango")).await;
    wait_backend(&controller, "www.mango.com", None).await;
    wait_until("observedGeneration 2", CLUSTER_DEADLINE, || async {
        cluster
            .route_status("mango")
            .await
            .is_some_and(|s| s["observedGeneration"] == 2)
    })
    .await;

    cluster.delete(LBR.0, LBR.1, "mango").await;
    wait_backend(&controller, "shop.mango.com", None).await;
    controller.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_appearing_late_makes_the_route_ready_by_itself() {
    let cluster = Cluster::start("late-service").await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;

    wait_status(
        &controller,
        "www.mango.com",
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    let status = cluster
        .wait_condition("mango", "ResolvedRefs", "False", "BackendNotFound")
        .await;
    assert!(
        has_condition(&status, "Accepted", "True", "Accepted"),
        "{status}"
    );
    assert!(
        has_condition(&status, "Ready", "False", "NoReadyEndpoints"),
        "{status}"
    );

    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    wait_backend(&controller, "www.mango.com", Some("mango")).await;
    cluster
        .wait_condition("mango", "Ready", "True", "Ready")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_and_unready_endpoints_take_no_new_requests() {
    let cluster = Cluster::start("terminating").await;
    let one = cluster.echo("one").await;
    let two = cluster.echo("two").await;
    service_with(
        &cluster,
        "mango",
        &[(&one, true, false), (&two, true, false)],
    )
    .await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    wait_backend(&controller, "www.mango.com", Some("one")).await;
    wait_backend(&controller, "www.mango.com", Some("two")).await;

    set_endpoints(
        &cluster,
        "mango",
        &[(&one, false, true), (&two, true, false)],
    )
    .await;
    // Once the change is seen, every request goes to "two".
    wait_until("one's endpoint to be drained", CLUSTER_DEADLINE, || async {
        let mut all_two = true;
        for _ in 0..4 {
            all_two &= get(&controller, "www.mango.com", "/").await.backend() == Some("two");
        }
        all_two
    })
    .await;
    let before = one.requests();
    for _ in 0..10 {
        assert_eq!(
            get(&controller, "www.mango.com", "/").await.backend(),
            Some("two")
        );
    }
    assert_eq!(
        one.requests(),
        before,
        "a terminating endpoint got new requests"
    );

    // No ready endpoint at all: 503 for this route only.
    set_endpoints(
        &cluster,
        "mango",
        &[(&one, false, true), (&two, false, false)],
    )
    .await;
    wait_status(
        &controller,
        "www.mango.com",
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    cluster
        .wait_condition("mango", "Ready", "False", "NoReadyEndpoints")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_routes_the_older_wins_and_the_younger_is_told_why() {
    let cluster = Cluster::start("conflict").await;
    let a = cluster.echo("a").await;
    let b = cluster.echo("b").await;
    service_with(&cluster, "a", &[(&a, true, false)]).await;
    service_with(&cluster, "b", &[(&b, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    // Created in this order; equal creation seconds fall back to names,
    // which agree.
    cluster
        .apply(host_route(&cluster, "first", "www.mango.com", "a"))
        .await;
    cluster
        .apply(host_route(&cluster, "second", "www.mango.com", "b"))
        .await;

    wait_backend(&controller, "www.mango.com", Some("a")).await;
    let status = cluster
        .wait_condition("second", "Accepted", "False", "Conflicted")
        .await;
    let message = status["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("first"),
        "names the older route: {message}"
    );
    cluster
        .wait_condition("first", "Accepted", "True", "Accepted")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_route_is_rejected_alone_next_to_a_good_one() {
    let cluster = Cluster::start("invalid").await;
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(route_obj(
            cluster.ns(),
            "bad",
            json!({"hosts": ["www.bad.com"], "rules": [{
                "matches": [{"path": {"type": "RegularExpression", "value": "/(unclosed"}}],
                "backends": [{"service": "mango", "port": 80}]}]}),
        ))
        .await;
    cluster
        .apply(host_route(&cluster, "good", "www.mango.com", "mango"))
        .await;

    wait_backend(&controller, "www.mango.com", Some("mango")).await;
    let status = cluster
        .wait_condition("bad", "Accepted", "False", "Invalid")
        .await;
    let message = status["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("spec.rules[0].matches[0].path.value"),
        "{message}"
    );
    wait_backend(&controller, "www.bad.com", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_addresses_are_refused_unless_the_controller_allows_them() {
    let cluster = Cluster::start("static").await;
    let mango = cluster.echo("mango").await;
    let route = route_obj(
        cluster.ns(),
        "static",
        json!({"hosts": ["www.mango.com"], "rules": [{"backends": [{"address": mango.address()}]}]}),
    );
    cluster.apply(route).await;
    let strict = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .wait_condition("static", "Accepted", "False", "Invalid")
        .await;
    wait_backend(&strict, "www.mango.com", None).await;
    strict.stop().await.expect("clean stop");

    let allowing =
        Controller::start(&cluster, "a", |o| o.source.allow_static_backends = true).await;
    wait_backend(&allowing, "www.mango.com", Some("mango")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_watch_resumes_and_later_changes_arrive() {
    let cluster = Cluster::start("cut").await;
    let Some(api) = cluster.double() else {
        eprintln!("skipped: cutting watches needs the API double");
        return;
    };
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    wait_backend(&controller, "www.mango.com", Some("mango")).await;

    api.cut_watches();
    cluster
        .apply(host_route(&cluster, "apple", "www.apple.com", "mango"))
        .await;
    wait_backend(&controller, "www.apple.com", Some("mango")).await;

    // 410 Gone: the resume point is compacted away, so the watcher relists.
    api.compact();
    api.cut_watches();
    cluster.delete(LBR.0, LBR.1, "apple").await;
    wait_backend(&controller, "www.apple.com", None).await;
    wait_backend(&controller, "www.mango.com", Some("mango")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_apiserver_leaves_the_last_table_serving() {
    let cluster = Cluster::start("outage").await;
    let Some(api) = cluster.double() else {
        eprintln!("skipped: an outage needs the API double");
        return;
    };
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    wait_backend(&controller, "www.mango.com", Some("mango")).await;

    api.set_unavailable(true);
    hold_for(
        "traffic to keep flowing while the apiserver is down",
        std::time::Duration::from_millis(1500),
        || async { get(&controller, "www.mango.com", "/").await.backend() == Some("mango") },
    )
    .await;
    api.set_unavailable(false);
    cluster
        .apply(host_route(&cluster, "apple", "www.apple.com", "mango"))
        .await;
    wait_backend(&controller, "www.apple.com", Some("mango")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_or_ready_before_the_caches_sync() {
    let cluster = Cluster::start("sync").await;
    let Some(api) = cluster.double() else {
        eprintln!("skipped: holding the initial list back needs the API double");
        return;
    };
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    api.set_unavailable(true);
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    let readyz = || async {
        let client = http1_client();
        let req = http::Request::get(format!("http://{}/readyz", controller.admin))
            .body(empty())
            .unwrap();
        Reply::collect(client.request(req).await.expect("admin"))
            .await
            .status
    };
    hold_for(
        "/readyz to stay 503 while unsynced",
        std::time::Duration::from_millis(500),
        || async { readyz().await == StatusCode::SERVICE_UNAVAILABLE },
    )
    .await;
    assert_eq!(
        get(&controller, "www.mango.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
    api.set_unavailable(false);
    wait_until("/readyz to turn 200", CLUSTER_DEADLINE, || async {
        readyz().await == StatusCode::OK
    })
    .await;
    wait_backend(&controller, "www.mango.com", Some("mango")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_patched_only_when_it_changes() {
    let cluster = Cluster::start("quiet").await;
    let Some(api) = cluster.double() else {
        eprintln!("skipped: counting status writes needs the API double");
        return;
    };
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    cluster
        .wait_condition("mango", "Ready", "True", "Ready")
        .await;
    let written = api.status_patches().len();

    // A change that alters no status (an unrelated Service), and our own
    // write's echo: neither may cause another write.
    cluster
        .apply(service(cluster.ns(), "unrelated", &[("http", 80, 8080)]))
        .await;
    api.bookmark();
    hold_for(
        "no further status writes",
        std::time::Duration::from_millis(1000),
        || async { api.status_patches().len() == written },
    )
    .await;

    // A change that does alter it is written once.
    set_endpoints(&cluster, "mango", &[(&mango, false, false)]).await;
    cluster
        .wait_condition("mango", "Ready", "False", "NoReadyEndpoints")
        .await;
    assert_eq!(api.status_patches().len(), written + 1);
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_status_while_every_replica_serves() {
    let cluster = Cluster::start("lease").await;
    let Some(api) = cluster.double() else {
        eprintln!("skipped: seeding a foreign lease holder needs the API double");
        return;
    };
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    // Someone else holds a fresh Lease.
    let mut held = support::kube_api::lease(cluster.ns(), "switchyard", "someone-else");
    held["spec"]["renewTime"] = json!(now_micro());
    api.apply(held);
    let replica = Controller::start(&cluster, "replica", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;

    wait_backend(&replica, "www.mango.com", Some("mango")).await;
    hold_for(
        "no status from a non-holder",
        std::time::Duration::from_millis(1000),
        || async { api.status_patches().is_empty() },
    )
    .await;

    // The holder goes away: the replica takes the Lease and writes status.
    api.delete(
        "coordination.k8s.io/v1",
        "Lease",
        cluster.ns(),
        "switchyard",
    );
    cluster
        .wait_condition("mango", "Ready", "True", "Ready")
        .await;
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            cluster.ns(),
            "switchyard",
        )
        .expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "replica");
}

fn now_micro() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_on_a_test_host_outside_loopback_are_reached() {
    // What a real apiserver demands (no loopback endpoints), shown here
    // against the double: a backend in a network namespace of our own.
    let Some(host) = support::netns::TestHost::create() else {
        eprintln!("skipped: creating a network namespace needs root and iproute2");
        return;
    };
    let cluster = Cluster::start("netns").await;
    let mango = Backend::echo_on(host.listener(), "mango");
    assert!(!mango.addr.ip().is_loopback());
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    wait_backend(&controller, "www.mango.com", Some("mango")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_across_namespaces_goes_to_the_older_route() {
    let cluster = Cluster::start("conflict-ns").await;
    let (ns, ns2) = (cluster.ns().to_owned(), cluster.ns2());
    let a = cluster.echo("team-a").await;
    let b = cluster.echo("team-b").await;
    service_with(&cluster, "web", &[(&a, true, false)]).await;
    // The same Service name in the other namespace, with its own endpoint.
    let mut other = service(&ns2, "web", &[("http", 80, 8080)]);
    other["metadata"]["namespace"] = json!(ns2);
    cluster.apply(other).await;
    let ip = b.addr.ip().to_string();
    cluster
        .apply(endpoint_slice(
            &ns2,
            "web-0",
            "web",
            "http",
            b.addr.port(),
            &[(&ip, true, false)],
        ))
        .await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;

    cluster
        .apply(host_route(&cluster, "web", "www.mango.com", "web"))
        .await;
    wait_backend(&controller, "www.mango.com", Some("team-a")).await;
    let mut younger = host_route(&cluster, "web", "www.mango.com", "web");
    younger["metadata"]["namespace"] = json!(ns2);
    cluster.apply(younger).await;

    let status = cluster
        .wait_condition_in(&ns2, "web", "Accepted", "False", "Conflicted")
        .await;
    let message = status["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("{ns}/web")),
        "names the older route: {message}"
    );
    hold_for(
        "the older route to keep the host",
        std::time::Duration::from_millis(500),
        || async { get(&controller, "www.mango.com", "/").await.backend() == Some("team-a") },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observed_generation_follows_an_edit_that_parses_the_same() {
    let cluster = Cluster::start("generation").await;
    let mango = cluster.echo("mango").await;
    service_with(&cluster, "mango", &[(&mango, true, false)]).await;
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(host_route(&cluster, "mango", "www.mango.com", "mango"))
        .await;
    cluster
        .wait_condition("mango", "Ready", "True", "Ready")
        .await;

    // The default weight written out: a new generation, the same route.
    cluster
        .apply(route_obj(
            cluster.ns(),
            "mango",
            json!({"hosts": ["www.mango.com"], "rules": [{"backends": [{"service": "mango", "port": 80, "weight": 1}]}]}),
        ))
        .await;
    wait_until("observedGeneration 2", CLUSTER_DEADLINE, || async {
        cluster
            .route_status("mango")
            .await
            .is_some_and(|s| s["observedGeneration"] == 2)
    })
    .await;
    drop(controller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_replica_hands_its_lease_back() {
    let cluster = Cluster::start("release").await;
    let Some(api) = cluster.double() else {
        eprintln!("skipped: reading the Lease directly needs the API double");
        return;
    };
    let controller = Controller::start(&cluster, "leaving", |_| {}).await;
    let holder = || {
        api.get(
            "coordination.k8s.io/v1",
            "Lease",
            cluster.ns(),
            "switchyard",
        )
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    };
    wait_until(
        "the replica to take the lease",
        CLUSTER_DEADLINE,
        || async { holder().as_deref() == Some("leaving") },
    )
    .await;
    controller.stop().await.expect("clean stop");
    assert_eq!(holder(), None, "the lease is free for the next replica");
}
