//! Scale: a generated table (bench/gen.rs) served by the real binary, and
//! an edit to one route served while the rest stand still. CI runs a small
//! table; `SWITCHYARD_SCALE_ROUTES=10000 SWITCHYARD_BIN=target/release/switchyard`
//! measures (bench/README.md, "Scale"). The numbers are printed, never
//! asserted: speed is measured, not tested.

mod support;

use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};
use support::scale::*;
use support::*;

/// Time allowed for a start or one edit: generous, it bounds a hang only.
const LIMIT: Duration = Duration::from_secs(120);

/// Edits route `name` (ns/name) in the files of `dir` to add an exact
/// rule for `path` sending to `backend`; returns the host it answers to.
fn edit_route(dir: &std::path::Path, name: &str, path: &str, backend: Value) -> String {
    let (ns, name) = name.split_once('/').expect("ns/name");
    for (file, mut docs) in support::scale::documents(dir) {
        let found = docs.iter_mut().find(|d| {
            d["kind"] == "LoadBalancerRoute"
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"] == ns
        });
        if let Some(route) = found {
            add_rule(route, path, backend);
            let host = served_host(route);
            write_documents(&file, &docs);
            return host;
        }
    }
    panic!("route {ns}/{name} not in the files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_to_one_route_of_a_generated_table_is_served_standalone() {
    let routes = scale_routes(300);
    let edits = scale_edits(5);
    let backend = Backend::echo("edited").await;
    let table = generate("standalone", routes, 8080);
    let log = table.path().with_extension("log");
    let routes_dir = table.path().to_str().unwrap();
    let proxy = Measured::spawn(&["run", "--routes", routes_dir], &[], &log);
    let ready = proxy.ready(LIMIT).await;
    let accepted = proxy.accepted_routes().await;
    assert!(
        accepted.len() * 100 >= routes * 95,
        "{} of {routes} routes accepted",
        accepted.len()
    );
    let (rss, peak) = proxy.memory_mib();
    let mut times = Vec::new();
    for n in 0..edits {
        let name = &accepted[(n * 7919) % accepted.len()];
        let path = format!("/edit-{n}");
        let host = edit_route(
            table.path(),
            name,
            &path,
            json!({"address": backend.address()}),
        );
        times.push(time_until_served(proxy.listen, &host, &path, StatusCode::OK, LIMIT).await);
    }
    let (p50, p99, max) = percentiles(&mut times);
    println!(
        "standalone: {routes} routes ({} accepted), ready in {:.0} ms, RSS {rss:.1} MiB \
         (peak {peak:.1}); {edits} edits served in p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        accepted.len(),
        ready.as_secs_f64() * 1000.0
    );
    assert_eq!(
        backend.requests(),
        edits,
        "each edit's request reached the backend"
    );
}

/// A kubeconfig for the API double at `api` (plain HTTP, no credentials).
fn kubeconfig(api: &kube_api::KubeApi, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: double\n\
         clusters: [{{name: double, cluster: {{server: \"{}\"}}}}]\n\
         users: [{{name: double, user: {{}}}}]\n\
         contexts: [{{name: double, context: {{cluster: double, user: double}}}}]\n",
        api.url()
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// Every generated object into the double; returns the routes.
fn load(api: &kube_api::KubeApi, dir: &std::path::Path) -> Vec<Value> {
    let mut routes = Vec::new();
    for (_, docs) in support::scale::documents(dir) {
        for doc in docs {
            if doc["kind"] == "LoadBalancerRoute" {
                routes.push(doc.clone());
            }
            api.apply(doc);
        }
    }
    routes
}

/// The Service `name` in namespace `ns`, whose one endpoint is
/// `backend`, ready or not.
fn live_service(api: &kube_api::KubeApi, ns: &str, name: &str, backend: &Backend, ready: bool) {
    let port = backend
        .address()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    api.apply(kube_api::service(ns, name, &[("http", 80, port)]));
    api.apply(kube_api::endpoint_slice(
        ns,
        &format!("{name}-1"),
        name,
        "http",
        port,
        &[("127.0.0.1", ready, false)],
    ));
}

/// Whether the double shows `route` with `Accepted: True`.
fn is_accepted(api: &kube_api::KubeApi, route: &Value) -> bool {
    stored_route(api, route).is_some_and(|s| {
        s["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Accepted" && c["status"] == "True")
        })
    })
}

/// The double's copy of `route`.
fn stored_route(api: &kube_api::KubeApi, route: &Value) -> Option<Value> {
    let (ns, name) = (&route["metadata"]["namespace"], &route["metadata"]["name"]);
    api.get(
        "switchyard.dev/v1alpha1",
        "LoadBalancerRoute",
        ns.as_str()?,
        name.as_str()?,
    )
}

/// How many of `routes` show a status for their current generation.
fn routes_with_status(api: &kube_api::KubeApi, routes: &[Value]) -> usize {
    routes
        .iter()
        .filter(|route| {
            stored_route(api, route).is_some_and(|s| {
                s["status"]["observedGeneration"] == s["metadata"]["generation"]
                    && s["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| !c.is_empty())
            })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_cluster_gets_status_and_serves_route_edits_and_endpoint_flips() {
    let routes = scale_routes(200);
    let changes = scale_edits(5);
    let backend = Backend::echo("live").await;
    let api = kube_api::start().await;
    let table = generate("cluster", routes, 8080);
    let generated = load(&api, table.path());
    // Edited routes send to `live` in their own namespace (gen-0 to gen-9).
    for ns in 0..10 {
        live_service(&api, &format!("gen-{ns}"), "live", &backend, true);
    }
    live_service(&api, "gen-0", "flip", &backend, false);
    let flip = kube_api::route(
        "gen-0",
        "flip",
        json!({"hosts": ["flip.gen.test"],
        "rules": [{"backends": [{"service": "flip", "port": 80}]}]}),
    );
    api.apply(flip);
    let config = kubeconfig(&api, table.path());
    let log = table.path().join("controller.log");
    let args = [
        "controller",
        "--lease-namespace",
        "gen-0",
        "--identity",
        "scale",
        "--access-log",
        "off",
    ];
    let controller = Measured::spawn(&args, &[("KUBECONFIG", config.to_str().unwrap())], &log);
    let ready = controller.ready(LIMIT).await;
    let started = tokio::time::Instant::now();
    // Status writes are paced (--status-qps 50 by default): 10,000 routes
    // take about 200 s.
    let status_limit = LIMIT + Duration::from_millis(routes as u64 * 40);
    wait_until("every route to show its status", status_limit, || {
        std::future::ready(routes_with_status(&api, &generated) == generated.len())
    })
    .await;
    let status_lag = ready + started.elapsed();
    let (rss, peak) = controller.memory_mib();
    let accepted: Vec<&Value> = generated.iter().filter(|r| is_accepted(&api, r)).collect();
    let (mut edits, mut flips) = (Vec::new(), Vec::new());
    for n in 0..changes {
        let mut route = accepted[(n * 7919) % accepted.len()].clone();
        let path = format!("/edit-{n}");
        add_rule(&mut route, &path, json!({"service": "live", "port": 80}));
        let host = served_host(&route);
        api.apply(route);
        edits.push(time_until_served(controller.listen, &host, &path, StatusCode::OK, LIMIT).await);
        let ready_now = n % 2 == 0;
        live_service(&api, "gen-0", "flip", &backend, ready_now);
        let want = if ready_now {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        flips.push(time_until_served(controller.listen, "flip.gen.test", "/", want, LIMIT).await);
    }
    let (e50, e99, emax) = percentiles(&mut edits);
    let (f50, f99, fmax) = percentiles(&mut flips);
    println!(
        "cluster: {routes} routes, ready in {:.0} ms, every status written {:.0} ms after start, \
         RSS {rss:.1} MiB (peak {peak:.1}); {changes} route edits served in p50 {e50:.0} ms, \
         p99 {e99:.0} ms, max {emax:.0} ms; {changes} endpoint flips served in p50 {f50:.0} ms, \
         p99 {f99:.0} ms, max {fmax:.0} ms",
        ready.as_secs_f64() * 1000.0,
        status_lag.as_secs_f64() * 1000.0,
    );
}
