//! Leader election on a `coordination.k8s.io` Lease: every replica serves;
//! only the holder writes route status.
//!
//! The holder renews every `renew_every`; another replica takes the Lease
//! over once `duration` has passed since the last renewal. Optimistic
//! concurrency (resourceVersion on replace) makes two takeovers collide
//! with a 409 instead of both winning. Lease times are wall-clock times
//! shared between replicas: [`run`] reads the wall clock once per round and
//! passes it down, so the acquire-or-renew decision takes `now` as a
//! parameter. (The status writer reads the wall clock too, to stamp
//! `lastTransitionTime`.)

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{info, warn};

/// Which Lease, and who we are.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace (the controller's own).
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal.
    pub duration: Duration,
    /// How often the holder renews (and others check).
    pub renew_every: Duration,
}

/// Tries to acquire or renew the Lease every `renew_every`, publishing
/// whether this replica holds it. Runs until aborted.
pub async fn run(client: Client, options: LeaseOptions, leader: watch::Sender<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &options.namespace);
    loop {
        let holds = match acquire_or_renew(&api, &options, Timestamp::now()).await {
            Ok(holds) => holds,
            Err(err) => {
                warn!(error = %err, lease = %options.name, "lease update failed; not writing status");
                false
            }
        };
        leader.send_if_modified(|current| {
            if *current == holds {
                return false;
            }
            info!(identity = %options.identity, leader = holds, "leadership changed");
            *current = holds;
            true
        });
        tokio::time::sleep(options.renew_every).await;
    }
}

async fn acquire_or_renew(
    api: &Api<Lease>,
    options: &LeaseOptions,
    now: Timestamp,
) -> Result<bool, kube::Error> {
    let seconds = i32::try_from(options.duration.as_secs()).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&options.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(options.name.clone()),
                namespace: Some(options.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(options.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return conflict_is_false(api.create(&PostParams::default(), &lease).await);
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let ours = spec.holder_identity.as_deref() == Some(options.identity.as_str());
    let valid_for =
        SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(seconds)));
    let expired = spec
        .renew_time
        .as_ref()
        .is_none_or(|renewed| renewed.0 + valid_for < now);
    let vacant = spec.holder_identity.as_deref().is_none_or(str::is_empty);
    if !(ours || expired || vacant) {
        return Ok(false);
    }
    if !ours {
        spec.holder_identity = Some(options.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(seconds);
    conflict_is_false(
        api.replace(&options.name, &PostParams::default(), &lease)
            .await,
    )
}

/// Gives the Lease up if this replica holds it, so another replica can take
/// over at once instead of after the Lease expires (a rolling update would
/// otherwise leave no status writer for up to `duration`). Best effort.
pub async fn release(client: Client, options: &LeaseOptions) {
    let api: Api<Lease> = Api::namespaced(client, &options.namespace);
    let Ok(Some(mut lease)) = api.get_opt(&options.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(options.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    match api
        .replace(&options.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => info!(identity = %options.identity, "lease released"),
        Err(err) => warn!(error = %err, "could not release the lease"),
    }
}

/// A 409 means another replica won the race: not an error, just not ours.
fn conflict_is_false(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}
