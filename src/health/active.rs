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
//!
//! At scale (10,000 routes over 5,000 endpoints): routes sharing an
//! endpoint and check share one task; the probes one publish starts are
//! spread evenly over their interval rather than fired in one instant (and
//! keep that phase); a probe reads its small response body so that its
//! connection is reused by the next probe instead of one connect per probe.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{header, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Either, Full};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info, warn};

use super::ActiveCheck;
use crate::balance::EndpointState;
use crate::upstream::{ConnectError, EndpointPool, ResponseBody, SendError, Upstreams};

/// The most of a probe's response body read to keep its connection.
const DRAIN_LIMIT: usize = 64 * 1024;

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
            // Boxed: a probe in flight (connect, handshake, request) is a
            // large future; inline, every idle probe task would carry its
            // space. At 10,000 routes that was about 90 MB of idle tasks.
            Box::pin(async move { http_probe(&upstreams, &pool, endpoint, check).await })
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
    let deadline = Instant::now() + check.timeout;
    let sent = pool.send(upstreams, request, upstreams.connect_timeout);
    match tokio::time::timeout_at(deadline, sent).await {
        Err(_) => Err(ProbeFailure::Timeout(check.timeout)),
        Ok(Err(SendError::NotSent { cause, .. })) => Err(ProbeFailure::Connect(cause)),
        Ok(Err(SendError::Sent { error, .. })) => Err(ProbeFailure::Request(error)),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            let _ = tokio::time::timeout_at(deadline, drain(response.into_body())).await;
            if check.passes(status) {
                Ok(())
            } else {
                Err(ProbeFailure::Status(status))
            }
        }
    }
}

/// Reads a probe's response body to its end, so that its connection goes
/// back to the pool for the next probe (a body dropped unread closes it:
/// at 1,000 probes a second that is 1,000 connects a second and a pile of
/// TIME-WAIT sockets). Gives up past [`DRAIN_LIMIT`] bytes or on an error;
/// the connection is then closed. The verdict never depends on the body.
async fn drain(mut body: ResponseBody) {
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, Bytes::len);
        if read > DRAIN_LIMIT {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
