//! Writing route status: only the Lease holder writes, and only what changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::Stores;
use crate::api::{LoadBalancerRoute, LoadBalancerRouteStatus};
use crate::source::ObjectKey;
use crate::table::RouteStatus;

/// The field manager of our server-side-apply status patches.
const MANAGER: &str = "switchyard";
/// How often status is re-checked without a trigger, repairing status that
/// someone else overwrote.
const RESYNC: Duration = Duration::from_secs(30);

/// The status one route should have.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Desired {
    namespace: String,
    name: String,
    status: LoadBalancerRouteStatus,
}

/// What each compiled route's status should say.
pub(super) fn desired(
    statuses: &[RouteStatus],
    generations: &HashMap<ObjectKey, i64>,
) -> Vec<Desired> {
    statuses
        .iter()
        .map(|s| {
            let key = (s.namespace.clone(), s.name.clone());
            Desired {
                status: LoadBalancerRouteStatus {
                    observed_generation: generations.get(&key).copied(),
                    conditions: s.conditions(),
                    ready_endpoints: i64::try_from(s.ready_endpoints).ok(),
                },
                namespace: key.0,
                name: key.1,
            }
        })
        .collect()
}

/// Writes desired statuses whenever they change, leadership is gained, or
/// the resync interval passes — while this replica holds the Lease.
pub(super) async fn run(
    client: Client,
    stores: Stores,
    mut desired: watch::Receiver<Arc<Vec<Desired>>>,
    mut leader: watch::Receiver<bool>,
) {
    loop {
        let is_leader = *leader.borrow_and_update();
        let wanted = desired.borrow_and_update().clone();
        if is_leader {
            write_changed(&client, &stores, &wanted).await;
        }
        tokio::select! {
            changed = desired.changed() => if changed.is_err() { return },
            changed = leader.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
}

async fn write_changed(client: &Client, stores: &Stores, wanted: &[Desired]) {
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
    for want in wanted {
        let key = (want.namespace.clone(), want.name.clone());
        match current.get(&key) {
            // Deleted since the compile: nothing to write.
            None => continue,
            Some(Some(status)) if *status == want.status => continue,
            Some(_) => {}
        }
        let api: Api<LoadBalancerRoute> = Api::namespaced(client.clone(), &want.namespace);
        let patch = serde_json::json!({
            "apiVersion": "switchyard.dev/v1alpha1",
            "kind": "LoadBalancerRoute",
            "status": want.status,
        });
        match api
            .patch_status(
                &want.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => debug!(namespace = %want.namespace, name = %want.name, "status written"),
            Err(err) => warn!(
                namespace = %want.namespace, name = %want.name, error = %err,
                "writing route status failed; retrying on the next change or resync"
            ),
        }
    }
}
