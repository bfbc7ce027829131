//! Publisher tests: snapshots go in on a `watch` channel, as a source sends
//! them; what is published, kept and told comes out. Every wait has a
//! deadline; nothing sleeps.

use std::path::PathBuf;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::*;
use crate::snapshot::BackendPolicy;
use crate::source::file::{self, Files};
use crate::table::RouteTable;

const DEADLINE: Duration = Duration::from_secs(10);

/// A route `name` for `host`, sending to `address`, with an active check.
fn route(name: &str, host: &str, address: &str) -> String {
    format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
         metadata: {{name: {name}}}\n\
         spec: {{hosts: [{host}], rules: [{{backends: [{{address: \"{address}\"}}], \
         healthCheck: {{path: /healthz}}}}]}}\n"
    )
}

/// The update the file source would send for these documents.
fn update(documents: &[String]) -> SourceUpdate {
    file::update(
        &Files(vec![(
            PathBuf::from("routes.yaml"),
            Ok(documents.join("---\n").into()),
        )]),
        &Default::default(),
    )
}

/// The same documents as a cluster source would send them, with
/// generations.
fn cluster_update(documents: &[String], generations: &[(&str, i64)]) -> SourceUpdate {
    let mut update = update(documents);
    update.snapshot.backends = BackendPolicy::Cluster { allow_static: true };
    update.generations = generations
        .iter()
        .map(|(name, generation)| (("default".to_owned(), (*name).to_owned()), *generation))
        .collect();
    update
}

/// A publisher running on a channel, and what a test watches of it.
struct Running {
    updates: watch::Sender<Option<Arc<SourceUpdate>>>,
    outcomes: watch::Receiver<Outcome>,
    probes: watch::Receiver<Arc<[Probe]>>,
    statuses: watch::Receiver<Arc<[DesiredStatus]>>,
    table: SharedTable,
    ready: Arc<AtomicBool>,
}

fn start(gate: Gate) -> Running {
    let table: SharedTable = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let ready = Arc::new(AtomicBool::new(false));
    let publisher = Publisher::new(gate, table.clone(), ready.clone());
    let (updates, receiver) = watch::channel(None);
    let running = Running {
        updates,
        outcomes: publisher.outcomes(),
        probes: publisher.probes(),
        statuses: publisher.statuses(),
        table,
        ready,
    };
    tokio::spawn(publisher.run(receiver, std::future::pending()));
    running
}

impl Running {
    /// Sends `update` and waits for what the publisher made of it.
    async fn send(&mut self, update: SourceUpdate) -> Outcome {
        self.outcomes.borrow_and_update();
        self.updates.send_replace(Some(Arc::new(update)));
        tokio::time::timeout(DEADLINE, self.outcomes.changed())
            .await
            .expect("the publisher handles an update within the deadline")
            .expect("the publisher is running");
        *self.outcomes.borrow_and_update()
    }

    /// The backend address the published table sends `host` to.
    fn served(&self, host: &str) -> Option<String> {
        let table = self.table.load();
        let rule = table.find(Some(host), &http::Method::GET, "/", &http::HeaderMap::new())?;
        Some(rule.backends.targets().first()?.authority.to_string())
    }
}

#[tokio::test]
async fn standalone_keeps_the_last_good_table_when_an_edit_brings_a_new_problem() {
    let mut publisher = start(Gate::KeepLastGood);
    let good = route("mango", "www.mango.com", "127.0.0.1:8081");
    let outcome = publisher.send(update(std::slice::from_ref(&good))).await;
    assert_eq!(
        outcome,
        Outcome::Published {
            routes: 1,
            rejected: 0
        }
    );
    let before = publisher.table.load_full();

    // mango's address becomes invalid: a problem the table did not have.
    let bad = route("mango", "www.mango.com", "no port here");
    let outcome = publisher.send(update(&[bad])).await;
    assert_eq!(outcome, Outcome::Kept { problems: 1 });
    assert!(
        Arc::ptr_eq(&before, &publisher.table.load_full()),
        "the last good table keeps serving"
    );
    assert_eq!(
        publisher.served("www.mango.com").as_deref(),
        Some("127.0.0.1:8081")
    );

    // A document that does not parse is a new problem too.
    let outcome = publisher.send(update(&[good, "kind: [".to_owned()])).await;
    assert_eq!(outcome, Outcome::Kept { problems: 1 });
    assert!(Arc::ptr_eq(&before, &publisher.table.load_full()));
}

#[tokio::test]
async fn standalone_publishes_an_unrelated_edit_next_to_an_old_problem() {
    let mut publisher = start(Gate::KeepLastGood);
    let broken = route("apple", "www.apple.com", "no port here");
    // The first table is published whatever its problems.
    let outcome = publisher
        .send(update(&[
            route("mango", "www.mango.com", "127.0.0.1:8081"),
            broken.clone(),
        ]))
        .await;
    assert_eq!(
        outcome,
        Outcome::Published {
            routes: 1,
            rejected: 1
        }
    );

    // mango moves; apple is still broken the same way.
    let outcome = publisher
        .send(update(&[
            route("mango", "www.mango.com", "127.0.0.1:8082"),
            broken,
        ]))
        .await;
    assert_eq!(
        outcome,
        Outcome::Published {
            routes: 1,
            rejected: 1
        }
    );
    assert_eq!(
        publisher.served("www.mango.com").as_deref(),
        Some("127.0.0.1:8082")
    );
}

#[tokio::test]
async fn cluster_publishes_every_table_even_with_a_new_problem() {
    let mut publisher = start(Gate::Always);
    let mango = route("mango", "www.mango.com", "127.0.0.1:8081");
    let outcome = publisher
        .send(cluster_update(std::slice::from_ref(&mango), &[]))
        .await;
    assert_eq!(
        outcome,
        Outcome::Published {
            routes: 1,
            rejected: 0
        }
    );
    let before = publisher.table.load_full();

    let apple = route("apple", "www.apple.com", "no port here");
    let outcome = publisher.send(cluster_update(&[mango, apple], &[])).await;
    assert_eq!(
        outcome,
        Outcome::Published {
            routes: 1,
            rejected: 1
        }
    );
    assert!(!Arc::ptr_eq(&before, &publisher.table.load_full()));
    assert_eq!(
        publisher.served("www.mango.com").as_deref(),
        Some("127.0.0.1:8081")
    );
}

#[tokio::test]
async fn ready_turns_true_with_the_first_publish() {
    let mut publisher = start(Gate::Always);
    assert!(!publisher.ready.load(Ordering::Acquire));
    publisher
        .send(cluster_update(
            &[route("mango", "www.mango.com", "127.0.0.1:8081")],
            &[],
        ))
        .await;
    assert!(publisher.ready.load(Ordering::Acquire));
}

#[tokio::test]
async fn probes_and_statuses_are_told_on_publish() {
    let mut publisher = start(Gate::Always);
    publisher.probes.borrow_and_update();
    publisher.statuses.borrow_and_update();
    publisher
        .send(cluster_update(
            &[route("mango", "www.mango.com", "127.0.0.1:8081")],
            &[("mango", 3)],
        ))
        .await;

    assert!(publisher.probes.has_changed().unwrap_or(false));
    let probes = publisher.probes.borrow_and_update().clone();
    let addresses: Vec<&str> = probes.iter().map(|p| &*p.address).collect();
    assert_eq!(addresses, ["127.0.0.1:8081"]);
    assert_eq!(probes[0].check.path.as_str(), "/healthz");

    assert!(publisher.statuses.has_changed().unwrap_or(false));
    let statuses = publisher.statuses.borrow_and_update().clone();
    assert_eq!(statuses.len(), 1);
    assert_eq!(
        (statuses[0].namespace.as_str(), statuses[0].name.as_str()),
        ("default", "mango")
    );
    assert_eq!(statuses[0].status.observed_generation, Some(3));
    assert!(statuses[0]
        .status
        .conditions
        .iter()
        .any(|c| c.kind == "Accepted" && c.status == "True"));
}

#[tokio::test]
async fn a_generation_only_change_sends_statuses_without_a_compile() {
    let mut publisher = start(Gate::Always);
    let mango = route("mango", "www.mango.com", "127.0.0.1:8081");
    publisher
        .send(cluster_update(
            std::slice::from_ref(&mango),
            &[("mango", 1)],
        ))
        .await;
    let table = publisher.table.load_full();
    publisher.probes.borrow_and_update();
    publisher.statuses.borrow_and_update();

    let outcome = publisher
        .send(cluster_update(&[mango], &[("mango", 2)]))
        .await;
    assert_eq!(outcome, Outcome::Unchanged);
    assert!(
        Arc::ptr_eq(&table, &publisher.table.load_full()),
        "no new table"
    );
    assert!(
        !publisher.probes.has_changed().unwrap_or(true),
        "no new probes"
    );
    let statuses = publisher.statuses.borrow_and_update().clone();
    assert_eq!(statuses[0].status.observed_generation, Some(2));
}

#[tokio::test]
async fn standalone_publishes_its_first_table_before_running() {
    let table: SharedTable = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let ready = Arc::new(AtomicBool::new(false));
    let mut publisher = Publisher::new(Gate::KeepLastGood, table.clone(), ready.clone());
    let first = update(&[route("mango", "www.mango.com", "127.0.0.1:8081")]);
    let (_updates, mut receiver) = watch::channel(Some(Arc::new(first)));
    let outcome = publisher
        .publish_current(&mut receiver)
        .await
        .expect("compiles");
    assert_eq!(
        outcome,
        Outcome::Published {
            routes: 1,
            rejected: 0
        }
    );
    assert!(ready.load(Ordering::Acquire));
    assert!(
        !receiver.has_changed().unwrap_or(true),
        "the first update is not handled twice"
    );
}

#[tokio::test]
async fn a_problem_is_logged_when_it_appears_not_at_every_compile() {
    let mut publisher = Publisher::empty(Gate::Always);
    let bad = route("bad", "bad.example", "not an address");
    let good = route("good", "good.example", "127.0.0.1:1");
    publisher
        .publish(Arc::new(update(std::slice::from_ref(&bad))))
        .await
        .unwrap();
    assert_eq!(publisher.reported.len(), 1, "the problem was logged");
    // An unrelated edit compiles again and finds the same problem: it is
    // not new, so not logged again.
    let both = update(&[bad, good]);
    let compiled = compile(&both.snapshot, &RouteTable::default(), 0);
    let problems = problems(&both, &compiled);
    assert_eq!(problems.len(), 1);
    assert_eq!(newly_found(&problems, &publisher.reported).count(), 0);
    // Gone, then back: logged again.
    publisher.publish(Arc::new(update(&[]))).await.unwrap();
    assert!(publisher.reported.is_empty());
    assert_eq!(newly_found(&problems, &publisher.reported).count(), 1);
}
