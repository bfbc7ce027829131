//! Standalone mode: routes from files, no cluster.
//!
//! Owns: wiring the file source → the publisher (keeping the last good
//! table) → the proxy and admin listeners, under one shutdown. Must not:
//! read, compile or serve itself — `source::file`, `publish` and `proxy` do.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::listeners::{self, Listeners};
use crate::proxy::ServeOptions;
use crate::publish::{self, Gate, Publisher};
use crate::shutdown::Shutdown;
use crate::snapshot::SourceUpdate;
use crate::snapshot::TlsSettings;
use crate::source::file::{self, FileSource, Files};

/// How standalone mode runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// A YAML file, or a directory of them.
    pub routes: PathBuf,
    /// How often PATH is checked for changes.
    pub reload_interval: Duration,
    /// How the proxy serves: limits, timeouts, trusted proxies, drain.
    pub serve: ServeOptions,
    /// The TLS listener's settings (default certificate, client CA,
    /// minimum version), which the file source puts in every snapshot.
    pub tls: TlsSettings,
}

/// Why standalone mode could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The routes could not be read at start.
    #[error("cannot read routes: {0}")]
    Routes(#[source] std::io::Error),
    /// The first table could not be compiled.
    #[error(transparent)]
    Publish(#[from] publish::Error),
    /// A listener failed.
    #[error("listener failed: {0}")]
    Listener(#[source] std::io::Error),
    /// A background task panicked.
    #[error("internal task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Loads the routes, serves the proxy on `listener` and the admin API on
/// `admin` until `shutdown` resolves, then drains and returns. Problems in
/// the documents are logged, not fatal: the good routes are served; an
/// edit that brings a new problem keeps the last good table.
pub async fn run(
    options: Options,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (source, first) = FileSource::open(
        options.routes.clone(),
        options.reload_interval,
        options.tls.clone(),
    )
    .await
    .map_err(Error::Routes)?;
    serve(Some(source), first, &options, listeners, shutdown).await
}

/// Like [`run`], over fixed documents (the built-in demo), never reloaded.
pub(crate) async fn run_fixed(
    files: Files,
    options: Options,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let first = file::update(&files, &options.tls);
    serve(None, first, &options, listeners, shutdown).await
}

async fn serve(
    source: Option<FileSource>,
    first: SourceUpdate,
    options: &Options,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (updates_tx, mut updates) = watch::channel(Some(Arc::new(first)));
    let mut publisher =
        Publisher::empty(Gate::KeepLastGood).with_metrics(options.serve.metrics.clone());
    let served = publisher.served();
    // The first table is served before anything is accepted.
    publisher.publish_current(&mut updates).await?;

    let shutdown = Shutdown::new(shutdown);
    let publish_task = tokio::spawn(publisher.run(updates, shutdown.stopped()));
    // Without a source (fixed documents) the channel closes here and the
    // first table serves until shutdown.
    let source_task = source.map(|source| tokio::spawn(source.run(updates_tx, shutdown.stopped())));
    let served = listeners::serve(listeners, served, options.serve.clone(), &shutdown).await;
    if let Some(task) = source_task {
        task.await.map_err(Error::Task)?;
    }
    publish_task.await.map_err(Error::Task)?;
    served.map_err(Error::Listener)
}
