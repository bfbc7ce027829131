//! Cluster mode: routes from the Kubernetes API.
//!
//! Owns: wiring the Kubernetes source → the publisher (every table
//! published; statuses back to the source's status writer) → the proxy and
//! admin listeners, under one shutdown. Must not: watch, compile or serve
//! itself — `source::kube`, `publish` and `proxy` do.

use std::future::Future;

use tokio::sync::watch;
use tracing::error;

use crate::listeners::{self, Listeners};
use crate::proxy::ServeOptions;
use crate::publish::{Gate, Publisher};
use crate::shutdown::Shutdown;
use crate::source::kube as source;

/// How cluster mode runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to watch, and the Lease.
    pub source: source::Options,
    /// How the proxy serves: limits, timeouts, trusted proxies, drain.
    pub serve: ServeOptions,
}

/// Why cluster mode stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes source failed.
    #[error(transparent)]
    Source(#[from] source::Error),
    /// A listener failed.
    #[error("listener failed: {0}")]
    Listener(#[source] std::io::Error),
    /// A background task panicked.
    #[error("internal task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Serves the proxy on `listener` and the admin API on `admin` from the
/// routes in the cluster `client` talks to, until `shutdown` resolves; then
/// drains and returns. `/readyz` is 503 until every cache has synced and
/// the first table is published.
pub async fn run(
    client: kube::Client,
    options: Options,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let shutdown = Shutdown::new(shutdown);
    let (updates_tx, updates) = watch::channel(None);
    let publisher = Publisher::empty(Gate::Always).with_metrics(options.serve.metrics.clone());
    let served = publisher.served();
    let source_task = tokio::spawn(source::run(
        client,
        options.source,
        updates_tx,
        publisher.statuses(),
        shutdown.stopped(),
    ));
    let publish_task = tokio::spawn(publisher.run(updates, shutdown.stopped()));
    let served = listeners::serve(listeners, served, options.serve, &shutdown).await;
    let sourced = source_task.await.map_err(Error::Task)?;
    publish_task.await.map_err(Error::Task)?;
    if let Err(err) = &sourced {
        error!(error = %err, "kubernetes source failed");
    }
    served.map_err(Error::Listener)?;
    sourced.map_err(Error::from)
}
