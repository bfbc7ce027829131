//! Writing route status: only the Lease holder writes, and only what changed.
//!
//! The statuses come from the publisher as [`DesiredStatus`]es (plain `api`
//! types); this module stamps `lastTransitionTime` (it reads the wall clock
//! for that) and patches.
//!
//! At scale: a publish queues only the routes whose wanted status changed
//! ([`dirty`]); each queued route is checked against the reflector cache
//! when its turn comes and written only if the cache shows something else;
//! writes go at most as fast as `--status-qps`/`--status-burst` allow
//! ([`pace`]), a few at a time. A restart writes nothing for routes whose
//! status is already right.

mod dirty;
pub mod pace;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::Stores;
use crate::api::{LoadBalancerRoute, LoadBalancerRouteStatus};
use crate::snapshot::{DesiredStatus, ObjectKey};
use dirty::{Dirty, Job};
use pace::{Pacing, RateLimit};

/// The field manager of our server-side-apply status patches.
const MANAGER: &str = "switchyard";
/// How often status is re-checked without a trigger, repairing status that
/// someone else overwrote.
const RESYNC: Duration = Duration::from_secs(30);
/// Status writes in flight at once (within the rate limit): enough to
/// keep the rate when one write takes longer than `1 / qps` (a busy
/// apiserver answers in tens of milliseconds), few enough that the
/// apiserver never sees a pile of them from us.
const IN_FLIGHT: usize = 4;

/// `wanted` with each condition's `lastTransitionTime`: kept from the
/// previous condition of the same type when its status did not change, else
/// `now`.
fn stamp_transitions(
    wanted: &LoadBalancerRouteStatus,
    previous: Option<&LoadBalancerRouteStatus>,
    now: &str,
) -> LoadBalancerRouteStatus {
    let mut status = wanted.clone();
    for condition in &mut status.conditions {
        let before = previous
            .into_iter()
            .flat_map(|p| &p.conditions)
            .find(|c| c.kind == condition.kind && c.status == condition.status);
        condition.last_transition_time = Some(
            before
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.to_owned()),
        );
    }
    status
}

/// Writes desired statuses whenever they change, leadership is gained, or
/// the resync interval passes — while this replica holds the Lease — at
/// most as fast as `pacing` allows, [`IN_FLIGHT`] at a time.
pub(super) async fn run(
    client: Client,
    stores: Stores,
    mut desired: watch::Receiver<Arc<[DesiredStatus]>>,
    mut leader: watch::Receiver<bool>,
    pacing: Pacing,
) {
    let mut dirty = Dirty::new(stores);
    let mut limit = RateLimit::new(pacing);
    let mut writes = JoinSet::new();
    let mut failing = false;
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut is_leader = *leader.borrow_and_update();
    loop {
        let may_write = is_leader && dirty.pending() > 0 && writes.len() < IN_FLIGHT;
        tokio::select! {
            changed = desired.changed() => {
                if changed.is_err() { return }
                dirty.want(&desired.borrow_and_update().clone());
            }
            changed = leader.changed() => {
                if changed.is_err() { return }
                is_leader = *leader.borrow_and_update();
                if is_leader { dirty.queue_all() }
            }
            _ = resync.tick() => dirty.queue_all(),
            Some(done) = writes.join_next() => match done {
                Ok((key, result)) => {
                    report(&mut failing, &key, &result);
                    dirty.finished(key, result.is_ok());
                }
                Err(err) => warn!(error = %err, "a status write task failed"),
            },
            () = limit.ready(), if may_write => {
                if let Some(job) = dirty.next_job(&now()) {
                    limit.take(Instant::now());
                    writes.spawn(write(client.clone(), job));
                }
            }
        }
    }
}

/// The wall clock as a condition's `lastTransitionTime`.
fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Applies `job`'s status; returns its route and how that went.
async fn write(client: Client, job: Job) -> (ObjectKey, Result<(), kube::Error>) {
    let api: Api<LoadBalancerRoute> = Api::namespaced(client, &job.key.0);
    let patch = serde_json::json!({
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "LoadBalancerRoute",
        "status": job.status,
    });
    let params = PatchParams::apply(MANAGER).force();
    let patch = Patch::Apply(&patch);
    let written = api.patch_status(&job.key.1, &params, &patch).await;
    (job.key, written.map(drop))
}

/// Logs a write's outcome: the first failure of a run of them at warn
/// (with 10,000 routes and the apiserver away, one line, not one per
/// route), the rest at debug, and the first success after them at info.
fn report(failing: &mut bool, (namespace, name): &ObjectKey, result: &Result<(), kube::Error>) {
    match (result, *failing) {
        (Ok(()), false) => debug!(%namespace, %name, "status written"),
        (Ok(()), true) => info!(%namespace, %name, "writing route status works again"),
        (Err(err), false) => warn!(
            %namespace, %name, error = %err,
            "writing route status failed; retrying on the next change or resync \
             (further failures are logged at debug until a write succeeds)"
        ),
        (Err(err), true) => debug!(%namespace, %name, error = %err, "writing route status failed"),
    }
    *failing = result.is_err();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Condition;

    fn condition(kind: &str, status: &str, at: Option<&str>) -> Condition {
        Condition {
            kind: kind.to_owned(),
            status: status.to_owned(),
            reason: "R".to_owned(),
            message: "m".to_owned(),
            last_transition_time: at.map(str::to_owned),
        }
    }

    fn status(conditions: Vec<Condition>) -> LoadBalancerRouteStatus {
        LoadBalancerRouteStatus {
            conditions,
            ..LoadBalancerRouteStatus::default()
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let wanted = status(vec![
            condition("Accepted", "True", None),
            condition("Ready", "False", None),
        ]);
        let previous = status(vec![
            condition("Accepted", "True", Some("2026-01-01T00:00:00Z")),
            condition("Ready", "True", Some("2026-01-01T00:00:00Z")),
        ]);
        let stamped = stamp_transitions(&wanted, Some(&previous), "2026-02-02T00:00:00Z");
        let times: Vec<_> = stamped
            .conditions
            .iter()
            .map(|c| c.last_transition_time.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(times, ["2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z"]);
        let fresh = stamp_transitions(&wanted, None, "2026-03-03T00:00:00Z");
        assert!(fresh
            .conditions
            .iter()
            .all(|c| c.last_transition_time.as_deref() == Some("2026-03-03T00:00:00Z")));
    }
}
