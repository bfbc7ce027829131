//! The Kubernetes source: reflectors for `LoadBalancerRoute`, `Service` and
//! `EndpointSlice` feed the same [`Snapshot`] the file source builds.
//!
//! Owns: watching (with backoff, relisting after `410 Gone`), waiting for
//! every cache to sync before the first publish, coalescing bursts of
//! changes into one compile, and handing statuses to the status writer.
//! Must not: route or proxy — it only gathers objects; `table::compile`
//! decides what they mean.

pub mod lease;
mod snapshot;
mod status;

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::api::LoadBalancerRoute;
use crate::snapshot::{BackendPolicy, ObjectKey, Snapshot};
use crate::table::{compile, RouteStatus, SharedTable};

pub use lease::LeaseOptions;

/// How the Kubernetes source runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// Whether routes may use static `address` backends
    /// (`--allow-static-backends`).
    pub allow_static_backends: bool,
    /// The Lease whose holder writes route status.
    pub lease: LeaseOptions,
}

/// Why the Kubernetes source stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cache's writer went away before it synced.
    #[error("a watch stopped before its cache synced")]
    NotSynced,
    /// The compile task panicked.
    #[error("compile task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// The reflector caches, one per watched namespace and kind.
#[derive(Clone)]
pub(crate) struct Stores {
    routes: Vec<Store<LoadBalancerRoute>>,
    services: Vec<Store<Service>>,
    slices: Vec<Store<EndpointSlice>>,
}

/// Watches the cluster and publishes compiled tables into `table` until
/// `shutdown` resolves. Nothing is published until every cache has synced;
/// `ready` turns true with the first publish. While the apiserver is
/// unreachable the last table keeps serving.
pub async fn run(
    client: Client,
    options: Options,
    table: SharedTable,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(shutdown);
    // Every watch event ticks this; `watch` keeps only the latest tick, so a
    // burst of changes becomes one compile.
    let (tick, mut ticked) = watch::channel(());
    let mut tasks = JoinSet::new();
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let stores = Stores {
        routes: scopes
            .iter()
            .map(|ns| reflect(api(&client, ns), &tick, &mut tasks))
            .collect(),
        services: scopes
            .iter()
            .map(|ns| reflect(api(&client, ns), &tick, &mut tasks))
            .collect(),
        slices: scopes
            .iter()
            .map(|ns| reflect(api(&client, ns), &tick, &mut tasks))
            .collect(),
    };

    let synced = async {
        all_synced(&stores.routes).await?;
        all_synced(&stores.services).await?;
        all_synced(&stores.slices).await
    };
    tokio::select! {
        synced = synced => synced?,
        () = &mut shutdown => return Ok(()),
    }
    info!("caches synced");

    let (leader_tx, leader) = watch::channel(false);
    tasks.spawn(lease::run(client.clone(), options.lease.clone(), leader_tx));
    let release_client = client.clone();
    let (desired_tx, desired) = watch::channel(Arc::new(Vec::new()));
    tasks.spawn(status::run(client, stores.clone(), desired, leader));

    let policy = BackendPolicy::Cluster {
        allow_static: options.allow_static_backends,
    };
    // What was last compiled, its statuses, and the generations they were
    // reported for.
    let mut last: Option<(Snapshot, Vec<RouteStatus>, HashMap<ObjectKey, i64>)> = None;
    loop {
        let (snapshot, generations) = snapshot::build(&stores, policy);
        match &mut last {
            // Our own status writes come back as route events; they change
            // no spec and no generation: nothing to do.
            Some((seen, _, reported)) if *seen == snapshot && *reported == generations => {}
            // A new generation whose spec reads the same (say, a default
            // written out): no recompile, but observedGeneration moves on.
            Some((seen, statuses, reported)) if *seen == snapshot => {
                desired_tx.send_replace(Arc::new(status::desired(statuses, &generations)));
                *reported = generations;
            }
            _ => {
                let previous = table.load_full();
                let input = snapshot.clone();
                let compiled = tokio::task::spawn_blocking(move || compile(&input, &previous))
                    .await
                    .map_err(Error::Task)?;
                for problem in compiled.statuses.iter().flat_map(|s| s.diagnostics()) {
                    warn!("{problem}");
                }
                info!(
                    routes = compiled.statuses.iter().filter(|s| s.accepted()).count(),
                    rejected = compiled.statuses.iter().filter(|s| !s.accepted()).count(),
                    "route table published"
                );
                desired_tx
                    .send_replace(Arc::new(status::desired(&compiled.statuses, &generations)));
                table.store(Arc::new(compiled.table));
                ready.store(true, Ordering::Release);
                last = Some((snapshot, compiled.statuses, generations));
            }
        }
        tokio::select! {
            changed = ticked.changed() => if changed.is_err() { break },
            () = &mut shutdown => break,
        }
    }
    tasks.abort_all();
    // Bounded: shutdown must not wait on an unreachable apiserver.
    let release = lease::release(release_client, &options.lease);
    if tokio::time::timeout(std::time::Duration::from_secs(2), release)
        .await
        .is_err()
    {
        warn!("releasing the lease timed out");
    }
    Ok(())
}

/// Waits until every store has its first full list.
async fn all_synced<K>(stores: &[Store<K>]) -> Result<(), Error>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    for store in stores {
        store
            .wait_until_ready()
            .await
            .map_err(|_| Error::NotSynced)?;
    }
    Ok(())
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts a reflector for `api`: its store, kept by a task that ticks on
/// every change (after the initial list has fully arrived).
fn reflect<K>(api: Api<K>, tick: &watch::Sender<()>, tasks: &mut JoinSet<()>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let tick = tick.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                // The store swaps in a relisted state only at InitDone.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => {
                    tick.send_replace(());
                }
                Err(err) => warn!(%kind, error = %err, "watch failed; retrying with backoff"),
            }
        }
    });
    reader
}
