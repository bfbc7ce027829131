//! Route status with many routes, against the API double (these tests
//! count and time the status writes it receives): each route is written
//! once after the start, a change writes only the routes it changes, and
//! writes are paced by `--status-qps`/`--status-burst`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::cluster::{has_condition, Cluster, Controller};
use support::kube_api::{endpoint_slice, route, service, KubeApi};
use support::*;
use switchyard::source::kube::Pacing;
use tokio::time::Instant;

const LBR: &str = "switchyard.dev/v1alpha1";
/// Status writes the controller keeps in flight at once
/// (`status::IN_FLIGHT`): arrivals may bunch by this many.
const IN_FLIGHT: usize = 4;

/// `n` routes `r0`… (host `rN.example`) to Service `web`, whose one
/// endpoint is ready, and a Service `other` nothing routes to.
fn seed(api: &KubeApi, ns: &str, n: usize, backend: &Backend) {
    let ip = backend.addr.ip().to_string();
    for svc in ["web", "other"] {
        api.apply(service(ns, svc, &[("http", 80, 8080)]));
        let slice = endpoint_slice(
            ns,
            svc,
            svc,
            "http",
            backend.addr.port(),
            &[(&ip, true, false)],
        );
        api.apply(slice);
    }
    for i in 0..n {
        api.apply(route(ns, &format!("r{i}"), spec(i, "/")));
    }
}

fn spec(i: usize, path: &str) -> Value {
    json!({"hosts": [format!("r{i}.example")],
           "rules": [{"path": {"prefix": path}, "backends": [{"service": "web", "port": 80}]}]})
}

/// Whether every route shows Ready and the generation it was given.
fn all_ready(api: &KubeApi, ns: &str, n: usize, generation: impl Fn(usize) -> i64) -> bool {
    (0..n).all(|i| {
        api.get(LBR, "LoadBalancerRoute", ns, &format!("r{i}"))
            .is_some_and(|r| {
                has_condition(&r["status"], "Ready", "True", "Ready")
                    && r["status"]["observedGeneration"] == generation(i)
            })
    })
}

/// Status writes received so far, by route name.
fn writes_by_route(api: &KubeApi) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, name, _) in api.status_patches() {
        *counts.entry(name).or_default() += 1;
    }
    counts
}

/// Starts a controller with `pacing` on `n` seeded routes and waits until
/// every route shows Ready.
async fn settled(name: &str, n: usize, pacing: Pacing) -> (Cluster, Controller, Backend) {
    let cluster = Cluster::start(name).await;
    let api = cluster
        .double()
        .expect("these tests count writes at the double");
    let backend = cluster.echo("web").await;
    seed(api, cluster.ns(), n, &backend);
    let controller = Controller::start(&cluster, "a", |o| o.source.status_pacing = pacing).await;
    wait_until("every route Ready", Duration::from_secs(60), || async {
        all_ready(api, cluster.ns(), n, |_| 1)
    })
    .await;
    (cluster, controller, backend)
}

/// Fast enough that a few hundred routes settle in a moment.
const QUICK: Pacing = Pacing {
    qps: 1000.0,
    burst: 100,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_written_once_and_unrelated_changes_write_nothing() {
    let n = 300;
    let (cluster, _controller, backend) = settled("once", n, QUICK).await;
    let api = cluster.double().expect("double");
    let counts = writes_by_route(api);
    assert_eq!(counts.len(), n, "every route written");
    assert!(counts.values().all(|c| *c == 1), "each once: {counts:?}");

    // Publishes that change no status: `other`'s endpoint flips (nothing
    // routes to it), a new unrelated Service, and our writes' echoes.
    let ip = backend.addr.ip().to_string();
    let port = backend.addr.port();
    for ready in [false, true, false] {
        let slice = endpoint_slice(
            cluster.ns(),
            "other",
            "other",
            "http",
            port,
            &[(&ip, ready, false)],
        );
        api.apply(slice);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    api.apply(service(cluster.ns(), "unrelated", &[("http", 80, 8080)]));
    api.bookmark();
    hold_for(
        "no further status writes",
        Duration::from_secs(1),
        || async { api.status_patches().len() == n },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_route_edited_writes_that_route_only() {
    let n = 300;
    let (cluster, _controller, _backend) = settled("edit", n, QUICK).await;
    let api = cluster.double().expect("double");
    let before = api.status_patches().len();

    api.apply(route(cluster.ns(), "r7", spec(7, "/edited")));
    wait_until("r7 at generation 2", Duration::from_secs(20), || async {
        all_ready(api, cluster.ns(), n, |i| if i == 7 { 2 } else { 1 })
    })
    .await;
    api.bookmark();
    hold_for("no other status writes", Duration::from_secs(1), || async {
        api.status_patches().len() == before + 1
    })
    .await;
    let last = &api.status_patches()[before];
    assert_eq!(last.1, "r7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_never_outrun_the_rate_limit() {
    let n = 60;
    let pacing = Pacing {
        qps: 20.0,
        burst: 5,
    };
    let (cluster, _controller, _backend) = settled("pace", n, pacing).await;
    let api = cluster.double().expect("double");
    let times = api.status_patch_times();
    assert_eq!(times.len(), n);
    // Writes arriving in a window were sent in it (at most burst + qps ×
    // window) or were in flight when it opened.
    for window in [250, 500, 1000] {
        let window = Duration::from_millis(window);
        let bound =
            pacing.burst as usize + (pacing.qps * window.as_secs_f64()) as usize + IN_FLIGHT;
        let most = most_within(&times, window);
        assert!(
            most <= bound,
            "{most} writes within {window:?}; at most {bound} allowed"
        );
    }
}

/// The most of `times` (ascending) within any window of length `window`.
fn most_within(times: &[Instant], window: Duration) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The time from the controller's start to every route's status being
/// right, at the default pacing. Run with
/// `cargo test --release --test status_at_scale -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: minutes at 10,000 routes"]
async fn time_until_every_status_is_right() {
    for n in [1_000, 10_000] {
        let cluster = Cluster::start("measure").await;
        let api = cluster.double().expect("measured at the double");
        let backend = cluster.echo("web").await;
        seed(api, cluster.ns(), n, &backend);
        let start = Instant::now();
        let controller = Controller::start(&cluster, "a", |_| {}).await;
        wait_until(
            "the first status write",
            Duration::from_secs(120),
            || async { !api.status_patch_times().is_empty() },
        )
        .await;
        let first = api.status_patch_times()[0] - start;
        wait_until("a write per route", Duration::from_secs(900), || async {
            tokio::time::sleep(Duration::from_millis(90)).await;
            api.status_patch_times().len() >= n
        })
        .await;
        wait_until("every route Ready", Duration::from_secs(60), || async {
            all_ready(api, cluster.ns(), n, |_| 1)
        })
        .await;
        let all = start.elapsed();
        let writes = api.status_patches().len();
        println!(
            "{n} routes, pacing {:?}: first status write after {first:.2?}, \
             every status right after {all:.2?} ({writes} writes)",
            Pacing::default()
        );
        drop(controller);
    }
}
