//! The Kubernetes source: reflectors for `LoadBalancerRoute`, `Service`,
//! `EndpointSlice`, TLS `Secret`s, CA-bundle `ConfigMap`s (labelled
//! `switchyard.dev/ca-bundle=true`) and the client-CA `ConfigMap` feed the
//! same [`Snapshot`](crate::snapshot::Snapshot) the file source builds.
//!
//! Owns: watching (with backoff, relisting after `410 Gone`), waiting for
//! every cache to sync before the first snapshot, coalescing bursts of
//! changes into one [`SourceUpdate`] on a `watch` channel, and writing the
//! statuses the publisher derives (Lease holder only). Must not: compile,
//! publish, route or proxy — it only gathers objects; `table::compile`
//! decides what they mean, and `publish` what is served.

pub mod lease;
mod secrets;
mod snapshot;
mod status;

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::api::LoadBalancerRoute;
use crate::snapshot::{BackendPolicy, DesiredStatus, SourceUpdate, TlsSettings};

pub use lease::LeaseOptions;
pub use status::pace::Pacing;

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
    /// The TLS listener's settings; `default_certificate` and `client_ca`
    /// (as a Secret and as a ConfigMap) are watched by name, even outside
    /// `namespaces`. Every snapshot carries them.
    pub tls: TlsSettings,
    /// How fast the Lease holder writes route status (`--status-qps`,
    /// `--status-burst`).
    pub status_pacing: Pacing,
}

/// Why the Kubernetes source stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cache's writer went away before it synced.
    #[error("a watch stopped before its cache synced")]
    NotSynced,
}

/// The reflector caches, one per watched namespace and kind.
#[derive(Clone)]
pub(crate) struct Stores {
    routes: Vec<Store<LoadBalancerRoute>>,
    services: Vec<Store<Service>>,
    slices: Vec<Store<EndpointSlice>>,
    /// `kubernetes.io/tls` Secrets per watched namespace, then the named
    /// ones (`secrets::secret_scopes`).
    secrets: Vec<Store<Secret>>,
    /// CA-bundle ConfigMaps per watched namespace, then the client CA by
    /// name (`secrets::config_map_scopes`).
    config_maps: Vec<Store<ConfigMap>>,
}

/// Watches the cluster and sends a [`SourceUpdate`] on `updates` whenever
/// what the caches hold changes, until `shutdown` resolves. Nothing is sent
/// until every cache has synced. Our own status writes come back as route
/// events that change neither a spec nor a generation: nothing is sent for
/// them. The Lease holder writes the statuses `statuses` brings. While the
/// apiserver is unreachable nothing is sent (the last table keeps serving).
pub async fn run(
    client: Client,
    options: Options,
    updates: watch::Sender<Option<Arc<SourceUpdate>>>,
    statuses: watch::Receiver<Arc<[DesiredStatus]>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(shutdown);
    // Every watch event ticks this; `watch` keeps only the latest tick, so a
    // burst of changes becomes one snapshot.
    let (tick, mut ticked) = watch::channel(());
    let mut tasks = JoinSet::new();
    let stores = Stores::start(&client, &options, &tick, &mut tasks);
    tokio::select! {
        synced = stores.synced() => synced?,
        () = &mut shutdown => return Ok(()),
    }
    info!("caches synced");

    let (leader_tx, leader) = watch::channel(false);
    tasks.spawn(lease::run(client.clone(), options.lease.clone(), leader_tx));
    tasks.spawn(status::run(
        client.clone(),
        stores.clone(),
        statuses,
        leader,
        options.status_pacing,
    ));

    let policy = BackendPolicy::Cluster {
        allow_static: options.allow_static_backends,
    };
    let mut specs = snapshot::Specs::default();
    loop {
        let (snapshot, generations) = snapshot::build(&stores, policy, &options.tls, &mut specs);
        updates.send_if_modified(|current| {
            let same = current
                .as_ref()
                .is_some_and(|u| u.snapshot == snapshot && u.generations == generations);
            if !same {
                *current = Some(Arc::new(SourceUpdate {
                    snapshot,
                    diagnostics: Vec::new(),
                    generations,
                }));
            }
            !same
        });
        tokio::select! {
            changed = ticked.changed() => if changed.is_err() { break },
            () = &mut shutdown => break,
        }
    }
    tasks.abort_all();
    // Bounded: shutdown must not wait on an unreachable apiserver.
    let release = lease::release(client, &options.lease);
    if tokio::time::timeout(std::time::Duration::from_secs(2), release)
        .await
        .is_err()
    {
        warn!("releasing the lease timed out");
    }
    Ok(())
}

// === impl Stores ===

impl Stores {
    /// Starts one reflector per watched namespace (all when `namespaces`
    /// is empty) and kind, plus those the TLS settings name, each ticking
    /// `tick` on change.
    fn start(
        client: &Client,
        options: &Options,
        tick: &watch::Sender<()>,
        tasks: &mut JoinSet<()>,
    ) -> Stores {
        let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
            vec![None]
        } else {
            options.namespaces.iter().cloned().map(Some).collect()
        };
        let all = watcher::Config::default;
        Stores {
            routes: scopes
                .iter()
                .map(|ns| reflect(api(client, ns), all(), tick, tasks))
                .collect(),
            services: scopes
                .iter()
                .map(|ns| reflect(api(client, ns), all(), tick, tasks))
                .collect(),
            slices: scopes
                .iter()
                .map(|ns| reflect(api(client, ns), all(), tick, tasks))
                .collect(),
            secrets: secrets::secret_scopes(&options.namespaces, &options.tls)
                .iter()
                .map(|s| reflect(api(client, &s.namespace), selected(s), tick, tasks))
                .collect(),
            config_maps: secrets::config_map_scopes(&options.namespaces, &options.tls)
                .iter()
                .map(|s| reflect(api(client, &s.namespace), selected(s), tick, tasks))
                .collect(),
        }
    }

    /// Waits until every cache has its first full list.
    async fn synced(&self) -> Result<(), Error> {
        all_synced(&self.routes).await?;
        all_synced(&self.services).await?;
        all_synced(&self.slices).await?;
        all_synced(&self.secrets).await?;
        all_synced(&self.config_maps).await
    }
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

/// The watcher configuration of a [`secrets::Scope`]: its field and label
/// selectors.
fn selected(scope: &secrets::Scope) -> watcher::Config {
    let mut config = watcher::Config::default();
    if !scope.fields.is_empty() {
        config = config.fields(&scope.fields);
    }
    if !scope.labels.is_empty() {
        config = config.labels(&scope.labels);
    }
    config
}

/// Starts a reflector for `api` (listing and watching as `config` says):
/// its store, kept by a task that ticks on every change (after the initial
/// list has fully arrived).
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    tick: &watch::Sender<()>,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
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
