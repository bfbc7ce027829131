//! Active health checks: one background task per (endpoint, check) probes
//! the endpoint with `GET path` every interval and flips its health after
//! enough results in a row.
//!
//! Owns: [`Probe`] (what one probe task checks), the [`run`] supervisor,
//! which is told the probes of each newly published table on a `watch`
//! channel and keeps exactly one probe task per probe (a route update that
//! keeps an endpoint and its check keeps its task and counters; tasks of
//! endpoints that left stop), and the probe loop. Must not: touch the
//! request path — it only writes `EndpointState` — or know the route table.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use http::{header, HeaderValue, Request, Uri};
use http_body_util::{Either, Full};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info, warn};

use super::ActiveCheck;
use crate::balance::EndpointState;
use crate::upstream::{ConnectError, EndpointPool, SendError, Upstreams};

/// One active health check of one endpoint: what the health supervisor
/// runs a probe task for. Compile builds them; the publisher sends the
/// probes of each published table to [`run`].
#[derive(Debug, Clone)]
pub struct Probe {
    /// The endpoint's `host:port`, its identity.
    pub address: Arc<str>,
    /// The same, pre-parsed for the probe's URI.
    pub authority: Authority,
    /// What to probe and when.
    pub check: ActiveCheck,
    /// Where the verdict goes.
    pub state: Arc<EndpointState>,
    /// The endpoint's connections: probes speak its protocol (HTTP/1.1,
    /// h2c or TLS) and reuse what the proxy opened.
    pub pool: Arc<EndpointPool>,
}

/// Keeps one probe task per probe of the latest value of `probes` (the
/// probes of the published table), until `shutdown` resolves; then stops
/// them all. Woken only when a table is published, never polling. If the
/// publisher goes away the last probes keep running until shutdown.
pub async fn run(
    mut probes: watch::Receiver<Arc<[Probe]>>,
    upstreams: Arc<Upstreams>,
    shutdown: impl Future<Output = ()>,
) {
    let mut supervisor = Supervisor::default();
    tokio::pin!(shutdown);
    loop {
        // Cloned out (an `Arc`) so no borrow of the channel is held.
        let current = probes.borrow_and_update().clone();
        supervisor.reconcile(&current, |probe, delay| {
            spawn_probe(&upstreams, probe, delay)
        });
        tokio::select! {
            changed = probes.changed() => if changed.is_err() {
                (&mut shutdown).await;
                break;
            },
            () = &mut shutdown => break,
        }
    }
    supervisor.stop_all();
}

/// Starts the HTTP probe loop of `probe`, its first probe after `delay`.
fn spawn_probe(upstreams: &Arc<Upstreams>, probe: &Probe, delay: Duration) -> JoinHandle<()> {
    let (upstreams, pool) = (upstreams.clone(), probe.pool.clone());
    let endpoint = probe.authority.clone();
    tokio::spawn(probe_loop(
        Instant::now() + delay,
        probe.check.clone(),
        probe.state.clone(),
        probe.authority.clone(),
        move |check: &ActiveCheck| {
            let (upstreams, pool) = (upstreams.clone(), pool.clone());
            let (endpoint, check) = (endpoint.clone(), check.clone());
            async move { http_probe(&upstreams, &pool, endpoint, check).await }
        },
    ))
}

/// The running probe tasks, by endpoint address and check.
#[derive(Default)]
struct Supervisor {
    tasks: HashMap<(Arc<str>, ActiveCheck), Running>,
}

struct Running {
    state: Arc<EndpointState>,
    pool: Arc<EndpointPool>,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Stops every probe task (shutdown).
    fn stop_all(&mut self) {
        for (_, running) in self.tasks.drain() {
            running.task.abort();
        }
    }

    /// Makes the running tasks match `probes`: starts missing ones (with
    /// `spawn`), stops those no longer wanted, and restarts one whose
    /// endpoint state was replaced (the endpoint left and came back) or
    /// that is now spoken to another way (another pool). Probes listed
    /// twice (routes sharing an endpoint and check) share one task.
    /// An endpoint left with no check at all is marked healthy again.
    ///
    /// The `m` tasks one call starts are spread over their interval: the
    /// i-th first probes after `i / m` of it (its `delay`), so a publish
    /// that brings 10,000 probes does not fire them in one instant, and
    /// they stay apart (each keeps its schedule). A lone new probe runs at
    /// once.
    fn reconcile(
        &mut self,
        probes: &[Probe],
        mut spawn: impl FnMut(&Probe, Duration) -> JoinHandle<()>,
    ) {
        let wanted: HashMap<(Arc<str>, ActiveCheck), &Probe> = probes
            .iter()
            .map(|p| ((p.address.clone(), p.check.clone()), p))
            .collect();
        let mut stopped = Vec::new();
        self.tasks.retain(|key, running| {
            let keep = wanted.get(key).is_some_and(|p| {
                Arc::ptr_eq(&p.state, &running.state) && Arc::ptr_eq(&p.pool, &running.pool)
            });
            if !keep {
                running.task.abort();
                stopped.push((key.0.clone(), running.state.clone()));
            }
            keep
        });
        let new: Vec<_> = (wanted.into_iter())
            .filter(|(key, _)| !self.tasks.contains_key(key))
            .collect();
        let count = u32::try_from(new.len()).unwrap_or(u32::MAX);
        for (i, (key, probe)) in (0..count).zip(new) {
            debug!(endpoint = %probe.address, path = %probe.check.path, "health check started");
            let task = spawn(probe, probe.check.interval / count * i);
            let (state, pool) = (probe.state.clone(), probe.pool.clone());
            self.tasks.insert(key, Running { state, pool, task });
        }
        self.release_unchecked(stopped);
    }

    /// Marks healthy each endpoint of `stopped` that no running task checks
    /// any more (by address and state).
    fn release_unchecked(&self, stopped: Vec<(Arc<str>, Arc<EndpointState>)>) {
        if stopped.is_empty() {
            return;
        }
        let checked: HashSet<(&str, *const EndpointState)> = (self.tasks.iter())
            .map(|(key, running)| (&*key.0, Arc::as_ptr(&running.state)))
            .collect();
        for (address, state) in stopped {
            if !checked.contains(&(&*address, Arc::as_ptr(&state))) && state.set_healthy(true) {
                info!(endpoint = %address, "health check removed; endpoint back in rotation");
            }
        }
    }
}

/// Consecutive probe results, and when they flip the verdict.
#[derive(Debug, Default, Clone, Copy)]
pub struct Streak {
    /// Passed probes in a row.
    pub successes: u32,
    /// Failed probes in a row.
    pub failures: u32,
    /// Passed probes in a row, all while passive health had the endpoint
    /// ejected.
    pub passes_while_ejected: u32,
}

impl Streak {
    /// Counts one probe result for an endpoint currently `healthy`; returns
    /// the new verdict when this result flips it.
    pub fn observe(&mut self, passed: bool, healthy: bool, check: &ActiveCheck) -> Option<bool> {
        if passed {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            (!healthy && self.successes >= check.healthy_threshold).then_some(true)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            (healthy && self.failures >= check.unhealthy_threshold).then_some(false)
        }
    }

    /// Counts one probe result for an endpoint that passive health has
    /// `ejected` or not; returns whether the ejection should end:
    /// `healthyThreshold` passes in a row, all during the ejection (like
    /// Envoy's `successful_active_health_check_uneject_host`, with the
    /// threshold that brings an unhealthy endpoint back). Passes from
    /// before the ejection do not count, so an endpoint whose probe path
    /// passes while its requests fail stays out for `healthyThreshold`
    /// intervals at least.
    pub fn observe_ejected(&mut self, passed: bool, ejected: bool, check: &ActiveCheck) -> bool {
        if !(passed && ejected) {
            self.passes_while_ejected = 0;
            return false;
        }
        self.passes_while_ejected = self.passes_while_ejected.saturating_add(1);
        self.passes_while_ejected >= check.healthy_threshold
    }
}

/// Probes every `check.interval` from `first` (the first probe) with
/// `probe`, flipping `state` on thresholds and logging once per flip. Runs
/// until aborted.
pub async fn probe_loop<P, F, E>(
    first: Instant,
    check: ActiveCheck,
    state: Arc<EndpointState>,
    endpoint: Authority,
    mut probe: P,
) where
    P: FnMut(&ActiveCheck) -> F,
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut streak = Streak::default();
    let mut next = first;
    loop {
        sleep_until(next).await;
        let result = probe(&check).await;
        let healthy = state.is_healthy();
        if let Some(verdict) = streak.observe(result.is_ok(), healthy, &check) {
            if state.set_healthy(verdict) {
                match (verdict, &result) {
                    (true, _) => info!(
                        endpoint = %endpoint,
                        passed = streak.successes,
                        "health check passing; endpoint back in rotation"
                    ),
                    (false, Err(why)) => warn!(
                        endpoint = %endpoint,
                        failed = streak.failures,
                        reason = %why,
                        "health check failing; endpoint taken out of rotation"
                    ),
                    (false, Ok(())) => {}
                }
            }
        }
        end_ejection_on_passes(&mut streak, result.is_ok(), &state, &endpoint, &check);
        // Next deadline from the schedule, not from when the probe ended;
        // a schedule fallen behind (slow probes) restarts from now.
        let now = Instant::now();
        // An interval past the end of the clock never comes (parsing
        // bounds it, but no sum here may panic).
        let Some(scheduled) = next.checked_add(check.interval) else {
            return std::future::pending().await;
        };
        next = scheduled;
        if next < now {
            next = now.checked_add(check.interval).unwrap_or(scheduled);
        }
    }
}

/// Ends a passive ejection of `state` once enough probes in a row passed
/// during it (see [`Streak::observe_ejected`]), logging it once.
fn end_ejection_on_passes(
    streak: &mut Streak,
    passed: bool,
    state: &EndpointState,
    endpoint: &Authority,
    check: &ActiveCheck,
) {
    let probed_at = Instant::now();
    let ejected = state.is_ejected_at(probed_at);
    if streak.observe_ejected(passed, ejected, check) && state.end_ejection(probed_at) {
        streak.passes_while_ejected = 0;
        info!(endpoint = %endpoint, "health check passing; passive ejection ended");
    }
}

/// Why one probe failed (logged once, when the endpoint is taken out).
#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    /// No response head within `timeout`.
    #[error("no response within {0:?}")]
    Timeout(std::time::Duration),
    /// No connection could be made.
    #[error("connect failed: {0}")]
    Connect(#[source] ConnectError),
    /// The exchange failed.
    #[error("request failed: {0}")]
    Request(#[source] hyper::Error),
    /// A status outside `expectedStatuses`.
    #[error("status {0}")]
    Status(u16),
}

/// One HTTP probe: `GET path` with `Host: endpoint`; passes when the
/// response head arrives within the timeout with an expected status.
async fn http_probe(
    upstreams: &Upstreams,
    pool: &Arc<EndpointPool>,
    endpoint: Authority,
    check: ActiveCheck,
) -> Result<(), ProbeFailure> {
    let mut request = Request::new(Either::Right(Full::default()));
    *request.uri_mut() = Uri::from(check.path.clone());
    if let Ok(host) = HeaderValue::from_str(endpoint.as_str()) {
        request.headers_mut().insert(header::HOST, host);
    }
    request.headers_mut().insert(
        header::USER_AGENT,
        HeaderValue::from_static("switchyard-health-check"),
    );
    let sent = pool.send(upstreams, request, upstreams.connect_timeout);
    match tokio::time::timeout(check.timeout, sent).await {
        Err(_) => Err(ProbeFailure::Timeout(check.timeout)),
        Ok(Err(SendError::NotSent { cause, .. })) => Err(ProbeFailure::Connect(cause)),
        Ok(Err(SendError::Sent { error, .. })) => Err(ProbeFailure::Request(error)),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            if check.passes(status) {
                Ok(())
            } else {
                Err(ProbeFailure::Status(status))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let upstreams = Arc::new(Upstreams::new(crate::upstream::UpstreamOptions {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_endpoint: 1,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            system_roots: None,
            open_gauges: None,
        }));
        let supervisor = tokio::spawn(run(probes, upstreams, async {
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
}
