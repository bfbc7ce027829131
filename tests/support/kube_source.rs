//! The Kubernetes source alone, its updates observed on the `watch`
//! channel it sends them on: for tests of what reaches the snapshot.

use std::sync::Arc;
use std::time::Duration;

use switchyard::snapshot::{DesiredStatus, Snapshot, SourceUpdate, TlsSettings};
use switchyard::source::kube::{self as source, LeaseOptions, Options};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::cluster::{Cluster, CLUSTER_DEADLINE};

/// The source under test, its updates observed.
pub struct Source {
    updates: watch::Receiver<Option<Arc<SourceUpdate>>>,
    /// Kept so the status writer has a live channel.
    _statuses: watch::Sender<Arc<[DesiredStatus]>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), source::Error>>,
}

impl Source {
    /// Runs the source against `cluster`, watching `namespaces`, with `tls`.
    pub fn start(cluster: &Cluster, namespaces: Vec<String>, tls: TlsSettings) -> Source {
        let options = Options {
            namespaces,
            allow_static_backends: false,
            lease: LeaseOptions {
                name: "switchyard".to_owned(),
                namespace: cluster.ns().to_owned(),
                identity: "secrets-test".to_owned(),
                duration: Duration::from_secs(15),
                renew_every: Duration::from_millis(200),
            },
            tls,
            status_pacing: Default::default(),
        };
        let (updates_tx, updates) = watch::channel(None);
        let (statuses_tx, statuses) = watch::channel(Arc::from(Vec::new()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(source::run(
            cluster.client(),
            options,
            updates_tx,
            statuses,
            async move {
                let _ = stopped.await;
            },
        ));
        Source {
            updates,
            _statuses: statuses_tx,
            stop: Some(stop),
            task,
        }
    }

    /// The first snapshot the source sends (after every cache synced).
    pub async fn first(&mut self) -> Snapshot {
        self.until("the first snapshot", |_| true).await
    }

    /// Waits until a snapshot satisfies `cond`; returns it.
    pub async fn until(&mut self, what: &str, cond: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let seen = self
            .updates
            .wait_for(|u| u.as_ref().is_some_and(|u| cond(&u.snapshot)));
        let update = tokio::time::timeout(CLUSTER_DEADLINE, seen)
            .await
            .unwrap_or_else(|_| panic!("timed out after {CLUSTER_DEADLINE:?}: {what}"))
            .expect("source running");
        let snapshot = update.as_ref().expect("an update").snapshot.clone();
        snapshot
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = super::within("the source to stop", &mut self.task).await;
        stopped.expect("source task").expect("clean stop");
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}
