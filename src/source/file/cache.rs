//! Parsing only the files that changed: each file's documents are parsed on
//! their own and kept, by path and contents, until the file changes; an
//! update is the kept parses put together in load order.
//!
//! Owns [`ParseCache`]. Putting files together gives the same result as
//! parsing them all in one pass: routes are numbered on across files (their
//! age, which decides conflicts), and a Secret or ConfigMap defined again
//! in a later file is reported there and left out.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use super::objects::{self, CoreKind};
use super::{parse_file, to_update, Files, Loaded};
use crate::snapshot::{BackendPolicy, SourceUpdate, TlsSettings};

/// The parse of each file, kept while its contents stay the same. At 10,000
/// routes in 100 files, an edit to one file parses that one file.
#[derive(Debug, Default)]
pub struct ParseCache {
    files: HashMap<PathBuf, Kept>,
}

/// One file's parse and what it was parsed from.
#[derive(Debug)]
struct Kept {
    /// A hash of the contents (or of the read error) parsed.
    contents: u64,
    /// The file's documents, positions counted within the file.
    parsed: Arc<Loaded>,
    /// How many documents the file holds.
    documents: u64,
}

impl ParseCache {
    /// [`super::parse`], parsing only files whose contents are not those
    /// of the last call; the others' parses are reused. Files no longer
    /// present are forgotten.
    pub fn parse(&mut self, files: &Files, tls: &TlsSettings) -> Loaded {
        let mut kept = HashMap::with_capacity(files.0.len());
        let mut loaded = Loaded::default();
        loaded.snapshot.backends = BackendPolicy::StaticOnly;
        loaded.snapshot.tls = tls.clone();
        let mut offset = 0;
        for (path, text) in &files.0 {
            let contents = hash(text);
            let file = match self.files.remove(path) {
                Some(file) if file.contents == contents => file,
                _ => {
                    let (parsed, documents) = parse_file(path, text);
                    Kept {
                        contents,
                        parsed: Arc::new(parsed),
                        documents,
                    }
                }
            };
            append(&mut loaded, &file.parsed, offset);
            offset += file.documents;
            kept.insert(path.clone(), file);
        }
        self.files = kept;
        loaded
    }

    /// [`super::update`], parsing only what changed (see [`Self::parse`]).
    pub fn update(&mut self, files: &Files, tls: &TlsSettings) -> SourceUpdate {
        to_update(self.parse(files, tls))
    }
}

fn hash(text: &Result<Arc<str>, super::Unreadable>) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Adds one file's parse to `loaded`: its routes numbered after the
/// `offset` documents of the files before it, its problems, and its
/// Secrets and ConfigMaps unless an earlier file defined them.
fn append(loaded: &mut Loaded, file: &Loaded, offset: u64) {
    loaded
        .snapshot
        .routes
        .extend(file.snapshot.routes.iter().map(|route| {
            let mut route = route.clone();
            route.age.position += offset;
            route
        }));
    loaded.errors.extend(file.errors.iter().cloned());
    let objects = [
        (CoreKind::Secret, &file.snapshot.secrets),
        (CoreKind::ConfigMap, &file.snapshot.config_maps),
    ];
    for (kind, objects) in objects {
        for (key, info) in objects {
            objects::insert(kind, key.clone(), info.clone(), loaded);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str) -> String {
        format!(
            "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
             metadata: {{name: {name}}}\nspec: {{}}\n"
        )
    }

    const CA: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca}\ndata: {ca.crt: x}\n";

    fn files(entries: &[(&str, String)]) -> Files {
        Files(
            entries
                .iter()
                .map(|(path, text)| (PathBuf::from(path), Ok(Arc::from(text.as_str()))))
                .collect(),
        )
    }

    fn positions(loaded: &Loaded) -> Vec<(String, u64)> {
        let routes = &loaded.snapshot.routes;
        routes
            .iter()
            .map(|r| (r.name.clone(), r.age.position))
            .collect()
    }

    #[test]
    fn files_parsed_one_by_one_number_routes_on_and_report_a_second_definition() {
        let files = files(&[
            ("a.yaml", format!("{}---\n{}", route("a1"), route("a2"))),
            ("b.yaml", format!("{CA}---\n{}", route("b"))),
            ("c.yaml", format!("{CA}---\n{}", route("c"))),
        ]);
        let loaded = ParseCache::default().parse(&files, &TlsSettings::default());
        let expected = [("a1", 1), ("a2", 2), ("b", 4), ("c", 6)];
        let expected: Vec<(String, u64)> = expected.map(|(n, p)| (n.to_owned(), p)).into();
        assert_eq!(positions(&loaded), expected);
        assert_eq!(loaded.snapshot.config_maps.len(), 1);
        let [twice] = loaded.errors.as_slice() else {
            panic!("one problem expected: {:?}", loaded.errors);
        };
        assert_eq!(&*twice.origin, "c.yaml");
        assert!(
            twice.message.contains("the first is in b.yaml"),
            "{twice:?}"
        );
    }

    #[test]
    fn an_edit_parses_only_the_file_edited() {
        let mut cache = ParseCache::default();
        let tls = TlsSettings::default();
        let before = files(&[("a.yaml", route("a")), ("b.yaml", route("b"))]);
        cache.parse(&before, &tls);
        let kept =
            |cache: &ParseCache, path: &str| cache.files[&PathBuf::from(path)].parsed.clone();
        let (a, b) = (kept(&cache, "a.yaml"), kept(&cache, "b.yaml"));
        let after = files(&[("a.yaml", route("edited")), ("b.yaml", route("b"))]);
        let loaded = cache.parse(&after, &tls);
        assert!(
            Arc::ptr_eq(&b, &kept(&cache, "b.yaml")),
            "b was parsed again"
        );
        assert!(
            !Arc::ptr_eq(&a, &kept(&cache, "a.yaml")),
            "a was not parsed again"
        );
        let names: Vec<String> = positions(&loaded).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["edited", "b"]);
        cache.parse(&files(&[("b.yaml", route("b"))]), &tls);
        assert_eq!(cache.files.len(), 1, "a removed file is forgotten");
    }
}
