//! The supervisor (one task per endpoint and check, spread starts) and
//! the HTTP probe.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn upstreams() -> Arc<Upstreams> {
    Arc::new(Upstreams::new(crate::upstream::UpstreamOptions {
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(90),
        max_idle_per_endpoint: 1,
        provider: Arc::new(rustls::crypto::ring::default_provider()),
        system_roots: None,
        open_gauges: None,
    }))
}

fn probe(address: &str, path: &'static str, state: &Arc<EndpointState>) -> Probe {
    Probe {
        address: Arc::from(address),
        authority: Authority::try_from(address).unwrap(),
        check: ActiveCheck {
            path: http::uri::PathAndQuery::from_static(path),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            min_status: 200,
            max_status: 399,
        },
        state: state.clone(),
        pool: pool_of(address),
    }
}

/// One pool per address, as compile carries them from table to table.
fn pool_of(address: &str) -> Arc<EndpointPool> {
    static POOLS: std::sync::Mutex<Vec<Arc<EndpointPool>>> = std::sync::Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap();
    let known = pools.iter().find(|p| p.address() == address).cloned();
    known.unwrap_or_else(|| {
        let pool = Arc::new(EndpointPool::new(address.into(), Default::default()));
        pools.push(pool.clone());
        pool
    })
}

#[tokio::test(start_paused = true)]
async fn reconcile_keeps_restarts_and_stops_tasks() {
    let a = Arc::new(EndpointState::default());
    let b = Arc::new(EndpointState::default());
    let mut supervisor = Supervisor::default();
    let mut spawned = Vec::new();
    let mut spawn = |p: &Probe, _delay: Duration| {
        spawned.push(p.address.to_string());
        tokio::spawn(std::future::pending::<()>())
    };
    supervisor.reconcile(
        &[
            probe("10.0.0.1:80", "/healthz", &a),
            probe("10.0.0.2:80", "/healthz", &b),
        ],
        &mut spawn,
    );
    // The same probes again (a route update): nothing restarts.
    supervisor.reconcile(
        &[
            probe("10.0.0.1:80", "/healthz", &a),
            probe("10.0.0.2:80", "/healthz", &b),
        ],
        &mut spawn,
    );
    assert_eq!(supervisor.tasks.len(), 2);
    // b leaves while unhealthy: its task stops and it is healthy again
    // (no check left); a's check changes: a new task.
    b.set_healthy(false);
    supervisor.reconcile(&[probe("10.0.0.1:80", "/ready", &a)], &mut spawn);
    assert_eq!(supervisor.tasks.len(), 1);
    assert!(b.is_healthy());
    // a's state replaced (the endpoint left and came back): restarted.
    let a2 = Arc::new(EndpointState::default());
    supervisor.reconcile(&[probe("10.0.0.1:80", "/ready", &a2)], &mut spawn);
    // a now spoken to another way (another pool): restarted.
    let mut h2c = probe("10.0.0.1:80", "/ready", &a2);
    h2c.pool = Arc::new(EndpointPool::new("10.0.0.1:80".into(), Default::default()));
    supervisor.reconcile(&[h2c], &mut spawn);
    supervisor.stop_all();
    spawned.sort();
    assert_eq!(
        spawned,
        [
            "10.0.0.1:80",
            "10.0.0.1:80",
            "10.0.0.1:80",
            "10.0.0.1:80",
            "10.0.0.2:80"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn routes_sharing_an_endpoint_and_check_share_one_probe_task() {
    let a = Arc::new(EndpointState::default());
    let mut supervisor = Supervisor::default();
    let mut spawned = 0;
    // Three routes list the same endpoint with the same check, one
    // with another check.
    let probes = [
        probe("10.0.0.1:80", "/healthz", &a),
        probe("10.0.0.1:80", "/healthz", &a),
        probe("10.0.0.1:80", "/healthz", &a),
        probe("10.0.0.1:80", "/ready", &a),
    ];
    supervisor.reconcile(&probes, |_, _| {
        spawned += 1;
        tokio::spawn(std::future::pending::<()>())
    });
    assert_eq!(spawned, 2);
    supervisor.stop_all();
}

#[tokio::test(start_paused = true)]
async fn probes_started_together_are_spread_over_their_interval() {
    let mut supervisor = Supervisor::default();
    let mut delays = Vec::new();
    let mut spawn = |_: &Probe, delay: Duration| {
        delays.push(delay);
        tokio::spawn(std::future::pending::<()>())
    };
    let states: Vec<_> = (0..5).map(|_| Arc::new(EndpointState::default())).collect();
    let four: Vec<_> = (1..=4)
        .map(|i| probe(&format!("10.0.0.{i}:80"), "/healthz", &states[i - 1]))
        .collect();
    supervisor.reconcile(&four, &mut spawn);
    // One more endpoint later: alone, it is probed at once.
    let mut five = four.clone();
    five.push(probe("10.0.0.5:80", "/healthz", &states[4]));
    supervisor.reconcile(&five, &mut spawn);
    supervisor.stop_all();
    delays[..4].sort();
    let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [0, 1250, 2500, 3750, 0], "interval 5s");
}

#[tokio::test]
async fn run_probes_what_each_publish_sends_without_polling() {
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = backend.local_addr().unwrap().to_string();
    let (published, probes) = watch::channel::<Arc<[Probe]>>(Arc::from([]));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let supervisor = tokio::spawn(run(probes, upstreams(), async {
        let _ = stopped.await;
    }));
    let state = Arc::new(EndpointState::default());
    published.send_replace(Arc::from([probe(&address, "/healthz", &state)]));
    tokio::time::timeout(Duration::from_secs(10), backend.accept())
        .await
        .expect("the published probe connects within the deadline")
        .unwrap();
    // The publisher going away leaves the probes running until shutdown.
    drop(published);
    assert!(!supervisor.is_finished());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), supervisor)
        .await
        .expect("the supervisor stops on shutdown")
        .unwrap();
}

/// A keep-alive HTTP/1.1 backend answering every request `200` with a
/// small body; counts the connections it accepted.
async fn keep_alive_backend() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let mut head = Vec::new();
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    head.extend_from_slice(&buf[..n]);
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (address, accepted)
}

#[tokio::test]
async fn probes_reuse_their_connection() {
    let (address, accepted) = keep_alive_backend().await;
    let state = Arc::new(EndpointState::default());
    let probe = probe(&address, "/healthz", &state);
    let upstreams = upstreams();
    for _ in 0..3 {
        let passed = http_probe(
            &upstreams,
            &probe.pool,
            probe.authority.clone(),
            probe.check.clone(),
        )
        .await;
        assert!(passed.is_ok(), "{passed:?}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection for three probes"
    );
}
