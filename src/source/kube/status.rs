//! Writing route status: only the Lease holder writes, and only what changed.
//!
//! The statuses come from the publisher as [`DesiredStatus`]es (plain `api`
//! types); this module stamps `lastTransitionTime` (it reads the wall clock
//! for that) and patches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::Stores;
use crate::api::{LoadBalancerRoute, LoadBalancerRouteStatus};
use crate::snapshot::{DesiredStatus, ObjectKey};

/// The field manager of our server-side-apply status patches.
const MANAGER: &str = "switchyard";
/// How often status is re-checked without a trigger, repairing status that
/// someone else overwrote.
const RESYNC: Duration = Duration::from_secs(30);

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
/// the resync interval passes — while this replica holds the Lease.
pub(super) async fn run(
    client: Client,
    stores: Stores,
    mut desired: watch::Receiver<Arc<[DesiredStatus]>>,
    mut leader: watch::Receiver<bool>,
) {
    let mut echoes = Echoes::new();
    loop {
        let is_leader = *leader.borrow_and_update();
        let wanted = desired.borrow_and_update().clone();
        if is_leader {
            write_changed(&client, &stores, &wanted, &mut echoes).await;
        }
        tokio::select! {
            changed = desired.changed() => if changed.is_err() { return },
            changed = leader.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
}

/// Writes whose echo (the watch event carrying them back into the cache)
/// may not have arrived yet, by route: the status the cache showed before
/// the write, and what was written (without transition times). While the
/// cache still shows the old status, writing the same again is skipped.
type Echoes = HashMap<ObjectKey, (Option<LoadBalancerRouteStatus>, LoadBalancerRouteStatus)>;

async fn write_changed(
    client: &Client,
    stores: &Stores,
    wanted: &[DesiredStatus],
    echoes: &mut Echoes,
) {
    let current: HashMap<(String, String), Option<LoadBalancerRouteStatus>> = stores
        .routes
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|route| {
            Some((
                (
                    route.metadata.namespace.clone()?,
                    route.metadata.name.clone()?,
                ),
                route.status.clone(),
            ))
        })
        .collect();
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    for want in wanted {
        let key = (want.namespace.clone(), want.name.clone());
        // Deleted since the compile: nothing to write.
        let Some(previous) = current.get(&key) else {
            continue;
        };
        let status = stamp_transitions(&want.status, previous.as_ref(), &now);
        if previous.as_ref() == Some(&status) {
            echoes.remove(&key);
            continue;
        }
        if echoes
            .get(&key)
            .is_some_and(|(before, written)| before == previous && *written == want.status)
        {
            continue; // Written already; the cache has not caught up.
        }
        let api: Api<LoadBalancerRoute> = Api::namespaced(client.clone(), &want.namespace);
        let patch = serde_json::json!({
            "apiVersion": "switchyard.dev/v1alpha1",
            "kind": "LoadBalancerRoute",
            "status": status,
        });
        match api
            .patch_status(
                &want.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => {
                debug!(namespace = %want.namespace, name = %want.name, "status written");
                echoes.insert(key, (previous.clone(), want.status.clone()));
            }
            Err(err) => warn!(
                namespace = %want.namespace, name = %want.name, error = %err,
                "writing route status failed; retrying on the next change or resync"
            ),
        }
    }
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
