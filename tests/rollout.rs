//! Zero-5xx rollouts: every backend replaced one by one under steady load,
//! in standalone mode (routes file edits, and a crash-like variant where an
//! old backend dies before it leaves the routes) and through the Kubernetes
//! source (endpoints marked terminating, then deleted). Every response the
//! load sees is counted and must be a 200.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::cluster::{Cluster, Controller, CLUSTER_DEADLINE};
use support::kube_api::{endpoint_slice, route as route_obj, service};
use support::*;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const HOST: &str = "www.mango.com";
/// Concurrent client loops.
const LOOPS: usize = 8;
/// Most requests one loop sends, whatever happens.
const MAX_PER_LOOP: usize = 50_000;
/// Longest the load may run, whatever happens.
const MAX_LOAD: Duration = Duration::from_secs(90);
/// Requests the load must complete during each rollout step.
const MIN_PER_STEP: usize = 50;
/// How long an old backend must see no new request to count as drained.
const QUIET: Duration = Duration::from_millis(250);

/// `LOOPS` client loops sending GETs through the proxy at `addr`, each on
/// a keep-alive connection of its own (a new one after an error), each
/// recording every outcome. One connection per loop, with no client pool
/// in between: a request that hangs can only be the proxy's doing.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    loops: Vec<JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let loops = (0..LOOPS)
            .map(|_| {
                let (stop, done) = (stop.clone(), done.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut conn: Option<H1Conn> = None;
                    while !stop.load(Ordering::SeqCst)
                        && seen.len() < MAX_PER_LOOP
                        && started.elapsed() < MAX_LOAD
                    {
                        let at = started.elapsed();
                        let outcome = match tokio::time::timeout(DEADLINE, get(addr, &mut conn)).await
                        {
                            Ok(outcome) => outcome,
                            Err(_) => {
                                eprintln!("a request sent {at:?} into the load got no answer within {DEADLINE:?}");
                                conn = None;
                                "client timeout".to_owned()
                            }
                        };
                        seen.push(outcome);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    seen
                })
            })
            .collect();
        Load { stop, done, loops }
    }

    /// Requests completed so far.
    fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests than `from` have completed.
    async fn wait_more(&self, from: usize, n: usize, what: &str) {
        wait_until(what, DEADLINE, || async { self.done() >= from + n }).await;
    }

    /// Stops the loops; returns the count of each outcome.
    async fn finish(self) -> BTreeMap<String, usize> {
        self.stop.store(true, Ordering::SeqCst);
        let mut counts = BTreeMap::new();
        for l in self.loops {
            for outcome in within("a load loop to stop", l).await.expect("load loop") {
                *counts.entry(outcome).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// One GET on `conn` (connected first when there is none or it closed):
/// the response status, or what went wrong. A failed connection is
/// dropped, so the next request gets a new one.
async fn get(addr: SocketAddr, conn: &mut Option<H1Conn>) -> String {
    if !conn.as_ref().is_some_and(H1Conn::is_open) {
        let connected = match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => H1Conn::handshake(stream).await,
            Err(e) => return format!("connect error: {e}"),
        };
        match connected {
            Ok(c) => *conn = Some(c),
            Err(e) => return format!("handshake error: {e:?}"),
        }
    }
    let c = conn.as_mut().expect("connected above");
    let req = http::Request::get("/")
        .header(http::header::HOST, HOST)
        .body(empty())
        .unwrap();
    match c.send_unbounded(req).await {
        Ok(resp) => Reply::collect(resp).await.status.as_str().to_owned(),
        Err(e) => {
            *conn = None;
            format!("client error: {e:?}")
        }
    }
}

/// Asserts every outcome was a 200 and prints the counts.
fn assert_all_ok(test: &str, counts: &BTreeMap<String, usize>, steps: &[usize]) {
    let total: usize = counts.values().sum();
    println!("{test}: {total} responses {counts:?}; per step {steps:?}");
    assert_eq!(
        counts.get("200").copied().unwrap_or(0),
        total,
        "{test}: not every response was a 200: {counts:?}"
    );
    for (i, n) in steps.iter().enumerate() {
        assert!(
            *n >= MIN_PER_STEP,
            "{test}: the load barely ran during step {i}: {steps:?}"
        );
    }
}

/// Waits until `old` has seen no new request for [`QUIET`] while `new` kept
/// getting requests (so the quiet is not the load stalling).
async fn wait_drained(old: &Backend, new: &Backend) {
    let what = format!("{} to get no new requests", old.name);
    let mut last = (old.requests(), new.requests(), Instant::now());
    wait_until(&what, DEADLINE, || {
        let now = Instant::now();
        let (o, n) = (old.requests(), new.requests());
        let drained = if o != last.0 {
            last = (o, n, now);
            false
        } else {
            now - last.2 >= QUIET && n > last.1
        };
        async move { drained }
    })
    .await;
}

/// Waits until nothing accepts connections at `addr` any more.
async fn wait_stopped(addr: SocketAddr) {
    wait_until(
        &format!("{addr} to refuse connections"),
        DEADLINE,
        || async { tokio::net::TcpStream::connect(addr).await.is_err() },
    )
    .await;
}

fn routes(backends: &[&Backend]) -> String {
    let rule = backends
        .iter()
        .fold(Rule::new(), |rule, backend| rule.backend(backend));
    yaml(&[route("mango").host(HOST).rule(rule)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_every_backend_one_by_one_under_load_gives_no_5xx_standalone() {
    let mut live: Vec<Backend> = Vec::new();
    for i in 0..3 {
        live.push(Backend::echo(&format!("old-{i}")).await);
    }
    let proxy = Proxy::start(&routes(&live.iter().collect::<Vec<_>>())).await;
    let load = Load::start(proxy.addr);
    let mut steps = Vec::new();
    for i in 0..3 {
        let from = load.done();
        let new = Backend::echo(&format!("new-{i}")).await;
        // Rollout: the new one is added...
        let mut both: Vec<&Backend> = live.iter().collect();
        both.push(&new);
        proxy.write_routes(&routes(&both));
        wait_until("the new backend to serve", DEADLINE, || async {
            new.requests() > 0
        })
        .await;
        // ...then the old one removed, and stopped once drained.
        let old = live.remove(0);
        let mut after: Vec<&Backend> = live.iter().collect();
        after.push(&new);
        proxy.write_routes(&routes(&after));
        wait_drained(&old, &new).await;
        let (old_requests, old_addr) = (old.requests(), old.addr);
        drop(old);
        wait_stopped(old_addr).await;
        live.push(new);
        load.wait_more(load.done(), MIN_PER_STEP, "load after the stop")
            .await;
        assert!(old_requests > 0, "step {i}: the old backend never served");
        steps.push(load.done() - from);
    }
    let counts = load.finish().await;
    assert!(live.iter().all(|b| b.name.starts_with("new-")));
    assert_all_ok("standalone", &counts, &steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_crashing_before_they_leave_the_routes_give_no_5xx_for_gets() {
    let mut live: Vec<Backend> = Vec::new();
    for i in 0..3 {
        live.push(Backend::echo(&format!("old-{i}")).await);
    }
    let proxy = Proxy::start(&routes(&live.iter().collect::<Vec<_>>())).await;
    let load = Load::start(proxy.addr);
    let mut steps = Vec::new();
    for i in 0..3 {
        let from = load.done();
        let new = Backend::echo(&format!("new-{i}")).await;
        let mut all: Vec<&Backend> = live.iter().collect();
        all.push(&new);
        proxy.write_routes(&routes(&all));
        wait_until("the new backend to serve", DEADLINE, || async {
            new.requests() > 0
        })
        .await;
        // The old one dies while still routed: its pooled connections are
        // closed and new connects are refused; GETs go elsewhere.
        let old = live.remove(0);
        let (old_address, old_addr) = (old.address(), old.addr);
        drop(old);
        wait_stopped(old_addr).await;
        load.wait_more(load.done(), 4 * MIN_PER_STEP, "load after the crash")
            .await;
        live.push(new);
        proxy.write_routes(&routes(&live.iter().collect::<Vec<_>>()));
        wait_until("the crashed backend to leave /routes", DEADLINE, || async {
            proxy
                .admin_get("/routes")
                .await
                .is_ok_and(|r| !r.text().contains(&old_address))
        })
        .await;
        steps.push(load.done() - from);
    }
    let counts = load.finish().await;
    assert_all_ok("crash", &counts, &steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_every_endpoint_through_the_kubernetes_source_gives_no_5xx() {
    let cluster = Cluster::start("rollout").await;
    cluster
        .apply(service(cluster.ns(), "mango", &[("http", 80, 8080)]))
        .await;
    let slice = |name: &str, backend: &Backend, ready: bool, terminating: bool| {
        let ip = backend.addr.ip().to_string();
        endpoint_slice(
            cluster.ns(),
            name,
            "mango",
            "http",
            backend.addr.port(),
            &[(&ip, ready, terminating)],
        )
    };
    // (slice name, backend)
    let mut live: Vec<(String, Backend)> = Vec::new();
    for i in 0..3 {
        let name = format!("mango-old-{i}");
        let backend = cluster.echo(&format!("old-{i}")).await;
        cluster.apply(slice(&name, &backend, true, false)).await;
        live.push((name, backend));
    }
    let controller = Controller::start(&cluster, "a", |_| {}).await;
    cluster
        .apply(route_obj(
            cluster.ns(),
            "mango",
            json!({"hosts": [HOST], "rules": [{"backends": [{"service": "mango", "port": 80}]}]}),
        ))
        .await;
    wait_until("every old endpoint to serve", CLUSTER_DEADLINE, || async {
        let probe = Load::start(controller.addr);
        probe.wait_more(0, 1, "a probe").await;
        probe.finish().await;
        live.iter().all(|(_, b)| b.requests() > 0)
    })
    .await;

    let load = Load::start(controller.addr);
    let mut steps = Vec::new();
    for i in 0..3 {
        let from = load.done();
        let name = format!("mango-new-{i}");
        let new = cluster.echo(&format!("new-{i}")).await;
        cluster.apply(slice(&name, &new, true, false)).await;
        wait_until("the new endpoint to serve", CLUSTER_DEADLINE, || async {
            new.requests() > 0
        })
        .await;
        let (old_name, old) = live.remove(0);
        cluster.apply(slice(&old_name, &old, false, true)).await;
        wait_drained(&old, &new).await;
        cluster
            .delete("discovery.k8s.io/v1", "EndpointSlice", &old_name)
            .await;
        let old_addr = old.addr;
        drop(old);
        wait_stopped(old_addr).await;
        live.push((name, new));
        load.wait_more(load.done(), MIN_PER_STEP, "load after the stop")
            .await;
        steps.push(load.done() - from);
    }
    let counts = load.finish().await;
    assert_all_ok("kubernetes", &counts, &steps);
    controller.stop().await.expect("clean stop");
}
