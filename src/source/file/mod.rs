//! The file source: `LoadBalancerRoute` YAML from a file or a directory,
//! with the `v1` Secrets and ConfigMaps (certificates, CA bundles) beside
//! the routes.
//!
//! Owns: reading files (blocking; call it from `spawn_blocking`), refusing
//! files too large ([`MAX_FILE_BYTES`]) or nested too deep ([`MAX_DEPTH`],
//! a linear pre-scan before the YAML parser), splitting multi-document
//! YAML and turning each document into a [`SourcedRoute`], a Secret or
//! ConfigMap of the snapshot (`objects`), or a
//! [`Diagnostic`] naming the file, document, resource and field; polling
//! the files and sending a [`SourceUpdate`] when they change and the
//! change has settled ([`FileSource`]). Must not: validate values or compile (`switchyard
//! check` is `publish::check`), publish, route or proxy.

mod base64;
mod cache;
mod objects;
mod poll;
mod prescan;
mod reader;

pub use cache::ParseCache;
pub use poll::FileSource;
pub use prescan::MAX_DEPTH;
pub use reader::Reader;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::{fs, io};

use serde::Deserialize;

use crate::api::LoadBalancerRoute;
use crate::snapshot::{Age, Code, Diagnostic, Snapshot, SourceUpdate, SourcedRoute, TlsSettings};

/// The largest route file read: 2 MiB, twice what a ConfigMap can hold.
/// Larger files are refused unread (the parser's time grows faster than
/// their size); split routes over a directory of files instead.
pub const MAX_FILE_BYTES: u64 = 2 << 20;

const API_VERSION: &str = "switchyard.dev/v1alpha1";
const KIND: &str = "LoadBalancerRoute";

/// The raw contents of the route files, in load order. Comparing two of
/// these tells whether anything changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files(pub Vec<(PathBuf, Result<Arc<str>, Unreadable>)>);

/// Why one route file could not be read (not UTF-8, removed mid-swap,
/// permissions). Comparable, so an unchanged failure is no change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("cannot read the file: {reason}")]
pub struct Unreadable {
    /// The kind of I/O error.
    pub kind: io::ErrorKind,
    /// The error as the OS put it.
    pub reason: String,
}

impl From<io::Error> for Unreadable {
    fn from(err: io::Error) -> Self {
        Unreadable {
            kind: err.kind(),
            reason: err.to_string(),
        }
    }
}

/// The documents of [`Files`], parsed.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// Every route that could be read.
    pub snapshot: Snapshot,
    /// Every document that could not be read, each located.
    pub errors: Vec<Diagnostic>,
}

/// Reads `path`: one file, or every `*.yaml`/`*.yml` file directly inside a
/// directory, sorted by name. Hidden entries are skipped, so the `..data`
/// links of a mounted ConfigMap are not read twice.
pub fn read(path: &Path) -> io::Result<Files> {
    Reader::default().read(path, false)
}

/// The route files `path` names, sorted (see [`read`]).
fn file_names(path: &Path) -> io::Result<Vec<PathBuf>> {
    let meta = fs::metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let hidden = file_name.to_string_lossy().starts_with('.');
        let p = entry.path();
        let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if !hidden && yaml && p.is_file() {
            names.push(p);
        }
    }
    names.sort();
    Ok(names)
}

/// The text of the file at `path`, refused when it is larger than `cap`
/// bytes (never more than that is read) or not UTF-8.
fn read_capped(path: &Path, cap: u64) -> Result<Arc<str>, Unreadable> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(Unreadable {
            kind: io::ErrorKind::FileTooLarge,
            reason: format!(
                "it is larger than {} MiB, the limit for one route file",
                cap >> 20
            ),
        });
    }
    String::from_utf8(bytes)
        .map(Arc::from)
        .map_err(|_| Unreadable {
            kind: io::ErrorKind::InvalidData,
            reason: "stream did not contain valid UTF-8".to_owned(),
        })
}

/// Parses every document of every file: routes, Secrets and ConfigMaps.
/// Never fails as a whole: a bad document becomes a diagnostic and the
/// others are still returned.
pub fn parse(files: &Files, tls: &TlsSettings) -> Loaded {
    ParseCache::default().parse(files, tls)
}

/// The documents of one file, parsed on their own: its routes (positions
/// counted from 1 within the file), Secrets, ConfigMaps and problems, and
/// how many documents it holds (to number the next file's from).
fn parse_file(path: &Path, text: &Result<Arc<str>, Unreadable>) -> (Loaded, u64) {
    let mut loaded = Loaded::default();
    let origin: Arc<str> = Arc::from(path.display().to_string());
    let text = match text {
        Ok(text) => text,
        Err(unreadable) => {
            loaded.errors.push(Diagnostic {
                origin,
                resource: None,
                field: None,
                code: Code::Unreadable,
                message: unreadable.to_string(),
            });
            return (loaded, 0);
        }
    };
    // The parser's time grows with the square of the nesting depth: a
    // file nested too deep is refused before it is parsed.
    if let Err(deep) = prescan::nesting(text, prescan::MAX_DEPTH) {
        loaded.errors.push(too_deep(&origin, &deep));
        return (loaded, 0);
    }
    let mut position = 0u64;
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        position += 1;
        let value = match serde_yaml_ng::Value::deserialize(document) {
            Ok(value) => value,
            Err(err) => {
                loaded.errors.push(yaml_error(&origin, index, &err));
                // The parser cannot resynchronise after a syntax error.
                break;
            }
        };
        if value.is_null() {
            continue; // an empty document, e.g. a trailing `---`
        }
        if let Some(kind) = objects::CoreKind::of(&value) {
            objects::load(&value, kind, &origin, index, &mut loaded);
            continue;
        }
        let age = Age {
            created: None,
            position,
        };
        match document_to_route(value, &origin, index, age) {
            Ok(route) => loaded.snapshot.routes.push(route),
            Err(mut errors) => loaded.errors.append(&mut errors),
        }
    }
    (loaded, position)
}

/// Parses `files` into what the file source sends the publisher: the
/// routes, and every document that could not be read.
pub fn update(files: &Files, tls: &TlsSettings) -> SourceUpdate {
    ParseCache::default().update(files, tls)
}

/// [`update`] from a [`Loaded`].
fn to_update(loaded: Loaded) -> SourceUpdate {
    SourceUpdate {
        snapshot: loaded.snapshot,
        diagnostics: loaded.errors,
        generations: Default::default(),
    }
}

fn too_deep(origin: &Arc<str>, deep: &prescan::TooDeep) -> Diagnostic {
    Diagnostic {
        origin: origin.clone(),
        resource: None,
        field: None,
        code: Code::Yaml,
        message: format!(
            "document {}: nested deeper than {} levels at line {} column {}; the file is not parsed",
            deep.document + 1,
            prescan::MAX_DEPTH,
            deep.line,
            deep.column
        ),
    }
}

fn yaml_error(origin: &Arc<str>, index: usize, err: &serde_yaml_ng::Error) -> Diagnostic {
    let at = err
        .location()
        .map(|l| format!(" at line {} column {}", l.line(), l.column()))
        .unwrap_or_default();
    Diagnostic {
        origin: origin.clone(),
        resource: None,
        field: None,
        code: Code::Yaml,
        message: format!("document {}: invalid YAML{at}: {err}", index + 1),
    }
}

fn document_to_route(
    value: serde_yaml_ng::Value,
    origin: &Arc<str>,
    index: usize,
    age: Age,
) -> Result<SourcedRoute, Vec<Diagnostic>> {
    let (namespace, name) = identify(&value)
        .map_err(|(code, message)| vec![document_problem(origin, index, code, &message)])?;
    let resource = format!("{namespace}/{name}");
    let route = deserialize_strict(value).map_err(|problems| {
        problems
            .into_iter()
            .map(|(field, code, message)| Diagnostic {
                origin: origin.clone(),
                resource: Some(resource.clone()),
                field: Some(field),
                code,
                message,
            })
            .collect::<Vec<_>>()
    })?;
    Ok(SourcedRoute {
        namespace,
        name,
        origin: origin.clone(),
        age,
        spec: Arc::new(route.spec),
    })
}

/// A problem of the whole document `index` (0-based) of `origin`: no
/// resource to name yet.
fn document_problem(origin: &Arc<str>, index: usize, code: Code, message: &str) -> Diagnostic {
    Diagnostic {
        origin: origin.clone(),
        resource: None,
        field: None,
        code,
        message: format!("document {}: {message}", index + 1),
    }
}

/// A document's kind and apiVersion checked, and its `(namespace, name)`
/// (namespace `default` when absent); else what is wrong with it.
fn identify(value: &serde_yaml_ng::Value) -> Result<(String, String), (Code, String)> {
    let kind = value.get("kind").and_then(|v| v.as_str());
    if kind != Some(KIND) {
        let found = kind.map_or_else(|| "missing".to_owned(), |k| format!("{k:?}"));
        return Err((Code::Kind, format!("kind is {found}, expected {KIND}")));
    }
    object_key(value, API_VERSION)
}

/// A document's `(namespace, name)` (namespace `default` when absent),
/// after checking its `apiVersion` is `api_version`; else what is wrong,
/// for a document-level diagnostic. Routes, Secrets and ConfigMaps alike.
fn object_key(
    value: &serde_yaml_ng::Value,
    api_version: &str,
) -> Result<(String, String), (Code, String)> {
    let found = value.get("apiVersion").and_then(|v| v.as_str());
    if found != Some(api_version) {
        let found = found.map_or_else(|| "missing".to_owned(), |v| format!("{v:?}"));
        return Err((
            Code::ApiVersion,
            format!("apiVersion is {found}, expected {api_version}"),
        ));
    }
    let meta_text = |key: &str| {
        (value.get("metadata"))
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let Some(name) = meta_text("name") else {
        return Err((Code::MissingName, "metadata.name is missing".to_owned()));
    };
    let namespace = meta_text("namespace").unwrap_or_else(|| "default".to_owned());
    Ok((namespace, name))
}

/// The document as a route, refusing fields of ours that the type does not
/// know (a typo like `backend:` never silently routes nowhere); else every
/// problem as `(field, code, message)`.
fn deserialize_strict(
    value: serde_yaml_ng::Value,
) -> Result<LoadBalancerRoute, Vec<(String, Code, String)>> {
    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| {
        let field = field_path(&path);
        // Kubernetes owns metadata and status, and apiVersion and kind were
        // checked already; only our own fields are checked here.
        let ours = !["metadata", "status", "apiVersion", "kind"]
            .iter()
            .any(|owned| field == *owned || field.starts_with(&format!("{owned}.")));
        if ours {
            unknown.push(field);
        }
    };
    let ignoring = serde_ignored::Deserializer::new(value, &mut on_unknown);
    let parsed: Result<LoadBalancerRoute, _> = serde_path_to_error::deserialize(ignoring);
    let route = parsed.map_err(|err| {
        let field = err.path().to_string();
        vec![(field, Code::Schema, err.into_inner().to_string())]
    })?;
    if !unknown.is_empty() {
        return Err(unknown
            .into_iter()
            .map(|field| (field, Code::UnknownField, "unknown field".to_owned()))
            .collect());
    }
    Ok(route)
}

/// `spec.rules[0].foo`, the way serde_path_to_error writes paths.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

#[cfg(test)]
mod tests;
