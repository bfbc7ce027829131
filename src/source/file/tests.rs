//! File source tests: documents in, routes and located problems out.

use super::*;

fn parse_one(yaml: &str) -> Loaded {
    parse(
        &Files(vec![(PathBuf::from("routes.yaml"), Ok(Arc::from(yaml)))]),
        &Default::default(),
    )
}

#[test]
fn multi_document_file_yields_every_route_in_order() {
    let loaded = parse_one(
        "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {name: a}\nspec: {}\n---\n\
         apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {name: b, namespace: shop}\nspec: {hosts: [x]}\n---\n",
    );
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let names: Vec<_> = loaded
        .snapshot
        .routes
        .iter()
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect();
    assert_eq!(names, ["default/a", "shop/b"]);
    assert!(loaded.snapshot.routes[0].age < loaded.snapshot.routes[1].age);
}

#[test]
fn unknown_variant_names_the_field_path() {
    let loaded = parse_one(
        "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {name: a}\n\
         spec: {rules: [{loadBalancing: {algorithm: Fastest}}]}\n",
    );
    let err = loaded.errors[0].to_string();
    assert!(
        err.starts_with("routes.yaml: LoadBalancerRoute default/a: spec.rules[0].loadBalancing.algorithm: unknown variant"),
        "{err}"
    );
}

#[test]
fn unknown_spec_field_is_an_error_naming_it() {
    let loaded = parse_one(
        "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {name: a, labels: {x: y}}\n\
         spec: {rules: [{backend: []}]}\n",
    );
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    assert_eq!(
        loaded.errors[0].field.as_deref(),
        Some("spec.rules[0].backend")
    );
}

#[test]
fn yaml_syntax_error_names_the_line() {
    let loaded = parse_one("apiVersion: [\n");
    let err = loaded.errors[0].to_string();
    assert!(err.contains("invalid YAML at line"), "{err}");
}

#[test]
fn an_unreadable_file_is_its_own_problem_and_the_others_still_load() {
    let loaded = parse(&Files(vec![
        (
            PathBuf::from("bad.yaml"),
            Err(Unreadable {
                kind: std::io::ErrorKind::InvalidData,
                reason: "invalid UTF-8".to_owned(),
            }),
        ),
        (
            PathBuf::from("good.yaml"),
            Ok("apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {name: a}\nspec: {}\n".into()),
        ),
    ]), &Default::default());
    assert_eq!(loaded.errors.len(), 1);
    assert_eq!(&*loaded.errors[0].origin, "bad.yaml");
    assert_eq!(loaded.snapshot.routes.len(), 1);
}

#[test]
fn other_kinds_are_reported_not_ignored() {
    let loaded = parse_one("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n");
    assert!(loaded.errors[0].message.contains("kind is \"Service\""));
}

const ROUTE_A: &str =
    "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {name: a}\nspec: {}\n";

/// Runs `source` until it sends its first update after `path` is
/// rewritten to `text`, and returns that update.
async fn update_after_writing(source: FileSource, path: &Path, text: &str) -> SourceUpdate {
    let (updates, mut received) = tokio::sync::watch::channel(None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(source.run(updates, async {
        let _ = stopped.await;
    }));
    fs::write(path, text).unwrap();
    let deadline = std::time::Duration::from_secs(10);
    let update = tokio::time::timeout(deadline, received.wait_for(Option::is_some))
        .await
        .expect("an update within the deadline")
        .unwrap()
        .clone()
        .unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(deadline, task).await.unwrap().unwrap();
    Arc::unwrap_or_clone(update)
}

#[tokio::test]
async fn file_source_sends_an_update_when_the_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    fs::write(&path, ROUTE_A).unwrap();
    let (source, first) = FileSource::open(
        path.clone(),
        std::time::Duration::from_millis(10),
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(first.snapshot.routes[0].name, "a");
    let update = update_after_writing(source, &path, &ROUTE_A.replace("name: a", "name: b")).await;
    assert_eq!(update.snapshot.routes[0].name, "b");
    assert!(update.diagnostics.is_empty());
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\n\
                      type: kubernetes.io/tls\nstringData: {tls.crt: old, tls.key: k}\n";

#[tokio::test]
async fn an_edited_secret_document_produces_a_new_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    fs::write(&path, format!("{ROUTE_A}---\n{SECRET}")).unwrap();
    let interval = std::time::Duration::from_millis(10);
    let (source, first) = FileSource::open(path.clone(), interval, Default::default())
        .await
        .unwrap();
    let key = ("default".to_owned(), "tls".to_owned());
    assert_eq!(&*first.snapshot.secrets[&key].data["tls.crt"], b"old");
    let edited = format!("{ROUTE_A}---\n{}", SECRET.replace("old", "new"));
    let update = update_after_writing(source, &path, &edited).await;
    assert_eq!(&*update.snapshot.secrets[&key].data["tls.crt"], b"new");
    assert_eq!(update.snapshot.routes.len(), 1);
}

#[tokio::test]
async fn file_source_refuses_to_open_an_unreadable_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let opened = FileSource::open(
        missing,
        std::time::Duration::from_secs(1),
        Default::default(),
    )
    .await;
    assert!(opened.is_err());
}

fn files(entries: &[(&str, &str)]) -> Files {
    Files(
        entries
            .iter()
            .map(|(path, text)| (PathBuf::from(path), Ok(Arc::from(*text))))
            .collect(),
    )
}

#[test]
fn a_change_is_applied_once_two_reads_agree() {
    let applied = files(&[("a.yaml", ROUTE_A)]);
    let half = files(&[("a.yaml", "apiVersion: switchyard.dev/v1alpha1\n")]);
    let whole = files(&[("a.yaml", &ROUTE_A.replace("name: a", "name: b"))]);
    let mut pending = None;
    assert_eq!(
        poll::settle(half, &applied, &mut pending),
        None,
        "first read"
    );
    assert_eq!(
        poll::settle(whole.clone(), &applied, &mut pending),
        None,
        "changed since"
    );
    assert_eq!(
        poll::settle(whole.clone(), &applied, &mut pending),
        Some(whole)
    );
    assert_eq!(pending, None);
}

#[test]
fn a_file_that_went_empty_keeps_its_routes_however_long_it_stays_empty() {
    let applied = files(&[("a.yaml", ROUTE_A), ("b.yaml", ROUTE_A)]);
    let truncated = files(&[("a.yaml", ""), ("b.yaml", ROUTE_A)]);
    let mut pending = None;
    for read in 0..5 {
        let settled = poll::settle(truncated.clone(), &applied, &mut pending);
        assert_eq!(settled, None, "read {read}");
    }
    // Removing the file, or leaving a comment in it, is applied.
    let commented = files(&[("a.yaml", "# no routes\n"), ("b.yaml", ROUTE_A)]);
    assert_eq!(
        poll::settle(commented.clone(), &applied, &mut pending),
        None
    );
    assert_eq!(
        poll::settle(commented.clone(), &applied, &mut pending),
        Some(commented)
    );
}

#[test]
fn a_file_nested_too_deep_is_refused_unparsed_and_the_others_load() {
    let loaded = parse(
        &Files(vec![
            (
                PathBuf::from("deep.yaml"),
                Ok("{a: [".repeat(100_000).into()),
            ),
            (PathBuf::from("good.yaml"), Ok(Arc::from(ROUTE_A))),
        ]),
        &Default::default(),
    );
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let err = loaded.errors[0].to_string();
    assert!(
        err.starts_with("deep.yaml: document 1: nested deeper than 64 levels at line 1 column "),
        "{err}"
    );
    assert_eq!(loaded.snapshot.routes.len(), 1);
}

#[test]
fn a_file_larger_than_the_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    fs::write(&path, "#".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
    let Files(read) = read(&path).unwrap();
    let err = read[0].1.as_ref().unwrap_err();
    assert_eq!(err.kind, std::io::ErrorKind::FileTooLarge);
    assert_eq!(
        err.to_string(),
        "cannot read the file: it is larger than 2 MiB, the limit for one route file"
    );
    fs::write(&path, "#".repeat(MAX_FILE_BYTES as usize)).unwrap();
    assert!(read_at(&path).is_ok());
}

fn read_at(path: &std::path::Path) -> Result<Arc<str>, Unreadable> {
    read(path).unwrap().0.remove(0).1
}
