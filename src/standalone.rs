//! Standalone mode: routes from files, no cluster.
//!
//! Owns: the reload loop (poll PATH, recompile on change, publish only a
//! clean table) and wiring the proxy and admin listeners to one shutdown.
//! Must not: parse or compile anything itself — `source::file` reads,
//! `table::compile` decides.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::listeners;
use crate::proxy::ServeOptions;
use crate::shutdown::Shutdown;
use crate::snapshot::{Diagnostic, DiagnosticKey};
use crate::source::file::{self, Files};
use crate::table::{compile, Compiled, RouteTable, SharedTable};

/// How standalone mode runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// A YAML file, or a directory of them.
    pub routes: PathBuf,
    /// How long in-flight requests may take to finish on shutdown.
    pub drain_timeout: Duration,
    /// How often PATH is checked for changes.
    pub reload_interval: Duration,
    /// Peers whose `X-Forwarded-For` is believed when deriving the client
    /// address for firewalls and rate limits. Empty: the client is always
    /// the socket peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Time allowed to connect to a backend (`--connect-timeout`) for
    /// rules without `timeouts.connect`; past it the connection counts as
    /// failed (retried elsewhere, else 504).
    pub connect_timeout: Duration,
}

/// Why standalone mode could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The routes could not be read at start.
    #[error("cannot read routes: {0}")]
    Routes(#[source] std::io::Error),
    /// A listener failed.
    #[error("listener failed: {0}")]
    Listener(#[source] std::io::Error),
    /// A background task panicked.
    #[error("internal task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Where the routes come from.
enum Routes {
    /// Files, reloaded when they change.
    Path(PathBuf),
    /// Fixed documents (the built-in demo); never reloaded.
    Fixed(Files),
}

/// Loads the routes, serves the proxy on `listener` and the admin API on
/// `admin` until `shutdown` resolves, then drains and returns. Problems in
/// the documents are logged, not fatal: the good routes are served.
pub async fn run(
    options: Options,
    listener: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let routes = Routes::Path(options.routes.clone());
    serve(routes, &options, listener, admin, shutdown).await
}

/// Like [`run`], over fixed documents (the built-in demo).
pub(crate) async fn run_fixed(
    files: Files,
    options: Options,
    listener: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve(Routes::Fixed(files), &options, listener, admin, shutdown).await
}

async fn serve(
    routes: Routes,
    options: &Options,
    listener: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let files = match &routes {
        Routes::Path(path) => read(path.clone()).await?.map_err(Error::Routes)?,
        Routes::Fixed(files) => files.clone(),
    };
    let table: SharedTable = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let (compiled, problems) = load(files.clone(), table.load_full()).await?;
    report(&problems);
    info!(
        routes = compiled.statuses.iter().filter(|s| s.accepted()).count(),
        rejected = compiled.statuses.iter().filter(|s| !s.accepted()).count(),
        "route table published"
    );
    table.store(Arc::new(compiled.table));
    let ready = Arc::new(AtomicBool::new(true));

    let shutdown = Shutdown::new(shutdown);

    let reload_task = match routes {
        Routes::Path(path) => Some(tokio::spawn(reload(
            path,
            files,
            problems.iter().map(Diagnostic::key).collect(),
            table.clone(),
            options.reload_interval,
            shutdown.stopped(),
        ))),
        Routes::Fixed(_) => None,
    };
    let serve_options = ServeOptions::from_flags(
        options.drain_timeout,
        &options.trusted_proxies,
        options.connect_timeout,
    );
    let served = listeners::serve(listener, admin, table, ready, serve_options, &shutdown).await;
    if let Some(task) = reload_task {
        task.await.map_err(Error::Task)?;
    }
    served.map_err(Error::Listener)
}

/// Polls `path`; when its contents change, recompiles and publishes the new
/// table unless the edit introduced a problem: an invalid edit keeps the last
/// good table and logs every problem. Problems the published table already
/// had (say, a bad route left out at start-up) do not block other edits.
async fn reload(
    path: PathBuf,
    mut last: Files,
    mut published_problems: HashSet<DiagnosticKey>,
    table: SharedTable,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut read_failing = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut shutdown => return,
        }
        let files = match read(path.clone()).await {
            Ok(Ok(files)) => {
                read_failing = false;
                files
            }
            Ok(Err(err)) => {
                if !read_failing {
                    warn!(error = %err, "cannot read routes; keeping the last good table");
                }
                read_failing = true;
                continue;
            }
            Err(err) => {
                error!(error = %err, "reading routes failed");
                continue;
            }
        };
        if files == last {
            continue;
        }
        last = files.clone();
        match load(files, table.load_full()).await {
            Ok((compiled, problems)) => {
                let found: HashSet<DiagnosticKey> = problems.iter().map(Diagnostic::key).collect();
                report(&problems);
                if found.is_subset(&published_problems) {
                    info!(
                        routes = compiled.statuses.iter().filter(|s| s.accepted()).count(),
                        rejected = compiled.statuses.iter().filter(|s| !s.accepted()).count(),
                        "routes changed; new table published"
                    );
                    table.store(Arc::new(compiled.table));
                    published_problems = found;
                } else {
                    warn!(
                        problems = problems.len(),
                        "routes changed but the edit is invalid; keeping the last good table"
                    );
                }
            }
            Err(err) => error!(error = %err, "compiling routes failed"),
        }
    }
}

async fn read(path: PathBuf) -> Result<std::io::Result<Files>, Error> {
    tokio::task::spawn_blocking(move || file::read(&path))
        .await
        .map_err(Error::Task)
}

/// Parses and compiles off the async workers; returns the table and every
/// problem found.
async fn load(
    files: Files,
    previous: Arc<RouteTable>,
) -> Result<(Compiled, Vec<Diagnostic>), Error> {
    tokio::task::spawn_blocking(move || compile_files(&files, &previous))
        .await
        .map_err(Error::Task)
}

/// Parses `files` and compiles them against `previous`: the table and
/// every problem, from the documents and from compile.
fn compile_files(files: &Files, previous: &RouteTable) -> (Compiled, Vec<Diagnostic>) {
    let loaded = file::parse(files);
    let compiled = compile(&loaded.snapshot, previous);
    let mut problems = loaded.errors;
    problems.extend(compiled.statuses.iter().flat_map(|s| s.diagnostics()));
    (compiled, problems)
}

fn report(problems: &[Diagnostic]) {
    for problem in problems {
        error!("{problem}");
    }
}

/// Checks route files as `switchyard check` does: every problem, each
/// naming its file, resource and field. Empty means valid.
pub fn check(path: &std::path::Path) -> Result<Vec<Diagnostic>, std::io::Error> {
    let files = file::read(path)?;
    Ok(compile_files(&files, &RouteTable::default()).1)
}
