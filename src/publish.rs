//! The one compile-and-publish loop, in both modes.
//!
//! Owns: taking each [`SourceUpdate`] a source sends on a `watch` channel,
//! compiling it (in `spawn_blocking`), the gate ([`Gate`]: standalone keeps
//! the last good table), the one `ArcSwap::store`, readiness, the one
//! `routes=… rejected=…` log line, and telling subscribers on `watch`
//! channels: the active health probes ([`Probe`]s of the published table)
//! and the status writer ([`DesiredStatus`]es). Must not: read files, watch
//! the API, write status or serve — sources gather, `table::compile`
//! decides, `proxy` serves; and it must not exist twice.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::api::LoadBalancerRouteStatus;
use crate::health::Probe;
use crate::metrics::Metrics;
use crate::snapshot::{
    DesiredStatus, Diagnostic, DiagnosticKey, ObjectKey, SourceUpdate, TlsSettings,
};
use crate::source::file;
use crate::table::{compile, Compiled, RouteStatus, RouteTable, SharedTable};

/// What a source's `watch` channel carries: `None` until its first
/// snapshot (a cluster source waits for its caches to sync).
pub type Updates = watch::Receiver<Option<Arc<SourceUpdate>>>;

/// Which compiled tables are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Standalone: the first table is published whatever its problems; after
    /// that an edit that brings a problem the published table did not have
    /// is not published (the last good table keeps serving). Problems the
    /// published table already had do not block other edits.
    KeepLastGood,
    /// Cluster: every table is published; a bad route is left out alone and
    /// says why on its status.
    Always,
}

/// What the publisher did with one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No update handled yet.
    Waiting,
    /// A new table is served.
    Published {
        /// Routes accepted.
        routes: usize,
        /// Routes left out (invalid or conflicted).
        rejected: usize,
    },
    /// The edit brought a new problem; the last good table keeps serving.
    Kept {
        /// Every problem found in the edit.
        problems: usize,
    },
    /// The same input as the last compile: nothing compiled (statuses are
    /// re-sent when only the generations moved).
    Unchanged,
}

/// Why an update could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The compile task panicked.
    #[error("compile task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// What the listeners need from the publisher (see [`Publisher::served`]).
pub struct Served {
    /// The published table (the proxy and admin read it).
    pub table: SharedTable,
    /// True once the first table is published (`/readyz`).
    pub ready: Arc<AtomicBool>,
    /// The probes of each published table (the health supervisor).
    pub probes: watch::Receiver<Arc<[Probe]>>,
}

/// The compile-and-publish loop's state: where tables go, who is told, and
/// what the gate remembers.
pub struct Publisher {
    /// Which tables are published.
    gate: Gate,
    /// Where tables are published (the proxy and admin read it).
    table: SharedTable,
    /// Turned true by the first publish (`/readyz`).
    ready: Arc<AtomicBool>,
    /// The probes of the published table, for the health supervisor.
    probes: watch::Sender<Arc<[Probe]>>,
    /// The statuses of the published table, for the status writer.
    statuses: watch::Sender<Arc<[DesiredStatus]>>,
    /// What happened to the latest update.
    outcomes: watch::Sender<Outcome>,
    /// The last compiled input, so the same input is not compiled twice.
    last: Option<Last>,
    /// Keys of the published table's problems; `None` before the first
    /// publish.
    published_problems: Option<HashSet<DiagnosticKey>>,
    /// Keys of the problems the last compile found, all logged by then:
    /// a problem is logged once when it appears, not at every compile.
    reported: HashSet<DiagnosticKey>,
    /// Counts publishes and refused edits, when metrics are on.
    metrics: Option<Arc<Metrics>>,
}

/// The last compiled input and what came of it.
struct Last {
    /// The input (its generations kept current).
    input: Arc<SourceUpdate>,
    /// Its compile's statuses, to re-derive desired statuses from.
    statuses: Vec<RouteStatus>,
    /// Whether its table was published.
    published: bool,
}

// === impl Publisher ===

impl Publisher {
    /// A publisher storing into `table` and setting `ready` on its first
    /// publish.
    pub fn new(gate: Gate, table: SharedTable, ready: Arc<AtomicBool>) -> Self {
        Publisher {
            gate,
            table,
            ready,
            probes: watch::Sender::new(Arc::from([])),
            statuses: watch::Sender::new(Arc::from([])),
            outcomes: watch::Sender::new(Outcome::Waiting),
            last: None,
            published_problems: None,
            reported: HashSet::new(),
            metrics: None,
        }
    }

    /// Counts publishes and refused edits in `metrics`.
    pub fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// A publisher over a new, empty table that is not ready yet.
    pub fn empty(gate: Gate) -> Self {
        let table = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
        Self::new(gate, table, Arc::new(AtomicBool::new(false)))
    }

    /// What the listeners serve from: this publisher's table, readiness
    /// and probes.
    pub fn served(&self) -> Served {
        Served {
            table: self.table.clone(),
            ready: self.ready.clone(),
            probes: self.probes(),
        }
    }

    /// The probes of each published table (for `health::active::run`).
    pub fn probes(&self) -> watch::Receiver<Arc<[Probe]>> {
        self.probes.subscribe()
    }

    /// The desired route statuses of each published table (for the status
    /// writer).
    pub fn statuses(&self) -> watch::Receiver<Arc<[DesiredStatus]>> {
        self.statuses.subscribe()
    }

    /// What happened to each update, latest first (tests wait on it).
    pub fn outcomes(&self) -> watch::Receiver<Outcome> {
        self.outcomes.subscribe()
    }

    /// Handles every update `updates` brings until `shutdown` resolves. An
    /// update arriving during a compile waits; a burst arrives as its
    /// latest. If the source goes away the published table keeps serving
    /// until shutdown. A failed compile is logged and the last table kept.
    pub async fn run(mut self, mut updates: Updates, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                changed = updates.changed() => if changed.is_err() {
                    (&mut shutdown).await;
                    return;
                },
                () = &mut shutdown => return,
            }
            if let Err(err) = self.publish_current(&mut updates).await {
                error!(error = %err, "compiling routes failed; keeping the last table");
            }
        }
    }

    /// Handles the update `updates` holds now, if any (standalone publishes
    /// its first table this way before it serves).
    pub async fn publish_current(&mut self, updates: &mut Updates) -> Result<Outcome, Error> {
        let update = updates.borrow_and_update().clone();
        match update {
            Some(update) => self.publish(update).await,
            None => Ok(Outcome::Waiting),
        }
    }

    /// Compiles `update` (unless it is the input of the last compile),
    /// gates, publishes and tells subscribers.
    pub async fn publish(&mut self, update: Arc<SourceUpdate>) -> Result<Outcome, Error> {
        let outcome = if self.restatus(&update) {
            Outcome::Unchanged
        } else {
            self.compile_and_gate(update).await?
        };
        self.outcomes.send_replace(outcome);
        Ok(outcome)
    }

    /// When `update` is the last compiled input: re-sends statuses if only
    /// the generations moved (`observedGeneration` follows an edit that
    /// parses the same), and says so.
    fn restatus(&mut self, update: &Arc<SourceUpdate>) -> bool {
        let Some(last) = &mut self.last else {
            return false;
        };
        if last.input.snapshot != update.snapshot || last.input.diagnostics != update.diagnostics {
            return false;
        }
        if last.published && last.input.generations != update.generations {
            self.statuses
                .send_replace(desired(&last.statuses, &update.generations));
        }
        last.input = update.clone();
        true
    }

    async fn compile_and_gate(&mut self, update: Arc<SourceUpdate>) -> Result<Outcome, Error> {
        let previous = self.table.load_full();
        let input = update.clone();
        let started = tokio::time::Instant::now();
        let compiled =
            tokio::task::spawn_blocking(move || compile(&input.snapshot, &previous, unix_now()))
                .await
                .map_err(Error::Task)?;
        let compile_ms = started.elapsed().as_millis() as u64;
        let problems = problems(&update, &compiled);
        let found: HashSet<DiagnosticKey> = problems.iter().map(Diagnostic::key).collect();
        self.report(&problems, &found);
        let publish = match (&self.published_problems, self.gate) {
            (None, _) | (_, Gate::Always) => true,
            (Some(published), Gate::KeepLastGood) => found.is_subset(published),
        };
        let outcome = if publish {
            let routes = compiled.statuses.iter().filter(|s| s.accepted()).count();
            let rejected = compiled.statuses.len() - routes;
            info!(routes, rejected, compile_ms, "route table published");
            let probes = compiled.table.probes().clone();
            self.table.store(Arc::new(compiled.table));
            self.ready.store(true, Ordering::Release);
            self.probes.send_replace(probes);
            self.statuses
                .send_replace(desired(&compiled.statuses, &update.generations));
            self.published_problems = Some(found);
            Outcome::Published { routes, rejected }
        } else {
            warn!(
                problems = problems.len(),
                "routes changed but the edit is invalid; keeping the last good table"
            );
            Outcome::Kept {
                problems: problems.len(),
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.process.publish(publish, unix_now() as f64);
        }
        self.last = Some(Last {
            input: update,
            statuses: compiled.statuses,
            published: publish,
        });
        Ok(outcome)
    }

    /// Logs each problem once, when it appears (one the last compile also
    /// found is not logged again; one that went away and came back is):
    /// as an error standalone, where a problem can block an edit; as a
    /// warning in a cluster, where each is on its route's status too.
    fn report(&mut self, problems: &[Diagnostic], found: &HashSet<DiagnosticKey>) {
        for problem in newly_found(problems, &self.reported) {
            match self.gate {
                Gate::KeepLastGood => error!("{problem}"),
                Gate::Always => warn!("{problem}"),
            }
        }
        self.reported.clone_from(found);
    }
}

/// Every problem of one update: the source's (documents that did not
/// parse) and the compile's (each rejected route's errors, each route's
/// certificate problems, the TLS listener's).
fn problems(update: &SourceUpdate, compiled: &Compiled) -> Vec<Diagnostic> {
    let routes = compiled.statuses.iter().flat_map(RouteStatus::diagnostics);
    let listener = compiled.listener_problems.iter().cloned();
    update
        .diagnostics
        .iter()
        .cloned()
        .chain(routes)
        .chain(listener)
        .collect()
}

/// The problems not among `reported` (by key).
fn newly_found<'p>(
    problems: &'p [Diagnostic],
    reported: &'p HashSet<DiagnosticKey>,
) -> impl Iterator<Item = &'p Diagnostic> {
    problems.iter().filter(|p| !reported.contains(&p.key()))
}

/// The clock compile reads certificates' expiry against: seconds since
/// the epoch (compile itself reads no clock).
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Checks route files as `switchyard check` does: the file source's
/// documents, compiled once against an empty table, and every problem the
/// publisher would see (each naming its file, resource and field). Empty
/// means valid; nothing is published. Warnings (rules no request can
/// reach) do not make the files invalid.
pub fn check(path: &Path) -> std::io::Result<Checked> {
    let (update, compiled) = compile_files(path)?;
    Ok(Checked {
        problems: problems(&update, &compiled),
        warnings: check_warnings(&compiled),
    })
}

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    /// Every problem; the files are valid when it is empty.
    pub problems: Vec<Diagnostic>,
    /// What is served but likely not meant: rules that never match.
    pub warnings: Vec<String>,
}

/// The route files at `path` read and compiled as `switchyard run` would
/// (without a TLS listener): what `check` and `explain --routes` read.
pub fn compile_files(path: &Path) -> std::io::Result<(SourceUpdate, Compiled)> {
    let update = file::update(&file::read(path)?, &TlsSettings::default());
    let compiled = compile(&update.snapshot, &RouteTable::default(), unix_now());
    Ok((update, compiled))
}

/// What `switchyard check` warns of without failing: the rules of served
/// routes that no request can reach (each route's `RulesReachable`
/// condition), one line per route.
fn check_warnings(compiled: &Compiled) -> Vec<String> {
    (compiled.statuses.iter())
        .filter(|s| s.accepted() && !s.reachable.status)
        .map(|s| {
            let message = &s.reachable.message;
            format!(
                "{}: LoadBalancerRoute {}/{}: {message}",
                s.origin, s.namespace, s.name
            )
        })
        .collect()
}

/// What each compiled route's status should say, with the generation it
/// describes.
fn desired(
    statuses: &[RouteStatus],
    generations: &BTreeMap<ObjectKey, i64>,
) -> Arc<[DesiredStatus]> {
    statuses
        .iter()
        .map(|s| {
            let key = (s.namespace.clone(), s.name.clone());
            DesiredStatus {
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

#[cfg(test)]
mod tests;
