//! `v1` Secrets and ConfigMaps in the route files: the same manifests as in
//! a cluster, so certificates (`kind: Secret`, type `kubernetes.io/tls`)
//! and CA bundles (`kind: ConfigMap` or `Secret` with `ca.crt`: the client
//! CA, backends' `caCertificateRefs`) work with no cluster. Every such
//! document is kept (no label is needed, unlike in a cluster).
//!
//! Owns reading such a document as the apiserver would (a Secret's `data`
//! base64-decoded, then `stringData` over it; a ConfigMap's `data` as text
//! and `binaryData` base64-decoded; keys checked) into the snapshot's
//! `secrets`/`config_maps`, and every problem as a [`Diagnostic`] naming
//! the file, `Secret ns/name` (or `ConfigMap ns/name`) and the field (e.g.
//! `data.tls.crt`). A document with a problem is left out whole, as the
//! apiserver would refuse it; the other documents are unaffected. Must
//! not: judge what the data means (certificates are compile's business).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_yaml_ng::Value;

use super::base64;
use super::{document_problem, object_key, Loaded};
use crate::snapshot::{Code, Diagnostic, ObjectKey, SecretInfo};

/// The core (`v1`) kinds the route files may hold next to routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CoreKind {
    /// A `Secret`: certificates, keys, a client CA.
    Secret,
    /// A `ConfigMap`: a CA bundle (the client CA, a backend's CA).
    ConfigMap,
}

impl CoreKind {
    /// The kind a document names, if it is one of these.
    pub(super) fn of(document: &Value) -> Option<CoreKind> {
        match document.get("kind").and_then(Value::as_str) {
            Some("Secret") => Some(CoreKind::Secret),
            Some("ConfigMap") => Some(CoreKind::ConfigMap),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CoreKind::Secret => "Secret",
            CoreKind::ConfigMap => "ConfigMap",
        }
    }

    /// The top-level fields the kind has; others are reported.
    fn fields(self) -> &'static [&'static str] {
        match self {
            CoreKind::Secret => &[
                "apiVersion",
                "kind",
                "metadata",
                "type",
                "data",
                "stringData",
                "immutable",
            ],
            CoreKind::ConfigMap => &[
                "apiVersion",
                "kind",
                "metadata",
                "data",
                "binaryData",
                "immutable",
            ],
        }
    }
}

/// Reads one document of `kind` into `loaded` (its snapshot's `secrets` or
/// `config_maps`), or its problems into `loaded.errors`.
pub(super) fn load(
    document: &Value,
    kind: CoreKind,
    origin: &Arc<str>,
    index: usize,
    loaded: &mut Loaded,
) {
    match read(document, kind, origin, index) {
        Ok((key, info)) => insert(kind, key, info, loaded),
        Err(mut problems) => loaded.errors.append(&mut problems),
    }
}

/// The object's key and data, or every problem with it.
fn read(
    document: &Value,
    kind: CoreKind,
    origin: &Arc<str>,
    index: usize,
) -> Result<(ObjectKey, SecretInfo), Vec<Diagnostic>> {
    let key = object_key(document, "v1")
        .map_err(|(code, message)| vec![document_problem(origin, index, code, &message)])?;
    let mut problems = Problems {
        origin: origin.clone(),
        resource: resource(kind, &key),
        found: Vec::new(),
    };
    for field in document.as_mapping().into_iter().flat_map(|m| m.keys()) {
        let known = field.as_str().is_some_and(|f| kind.fields().contains(&f));
        if !known {
            let field = field
                .as_str()
                .map_or_else(|| format!("{field:?}"), str::to_owned);
            problems.push(field, Code::UnknownField, "unknown field".to_owned());
        }
    }
    let info = SecretInfo {
        origin: origin.clone(),
        type_: secret_type(document, kind, &mut problems),
        data: match kind {
            CoreKind::Secret => secret_data(document, &mut problems),
            CoreKind::ConfigMap => config_map_data(document, &mut problems),
        },
    };
    for name in info.data.keys() {
        if let Err(why) = check_key(name) {
            problems.push(format!("data.{name}"), Code::Invalid("invalid-key"), why);
        }
    }
    if problems.found.is_empty() {
        Ok((key, info))
    } else {
        Err(problems.found)
    }
}

/// `Secret ns/name`: how a diagnostic names the object (a bare `ns/name`
/// is a route).
fn resource(kind: CoreKind, (namespace, name): &ObjectKey) -> String {
    format!("{} {namespace}/{name}", kind.name())
}

/// Adds the object, unless one of the same kind and key came first: then
/// the later one is reported and left out.
pub(super) fn insert(kind: CoreKind, key: ObjectKey, info: SecretInfo, loaded: &mut Loaded) {
    let objects = match kind {
        CoreKind::Secret => &mut loaded.snapshot.secrets,
        CoreKind::ConfigMap => &mut loaded.snapshot.config_maps,
    };
    if let Some(first) = objects.get(&key) {
        let resource = resource(kind, &key);
        loaded.errors.push(Diagnostic {
            message: format!(
                "{resource} is defined twice; the first is in {}",
                first.origin
            ),
            origin: info.origin,
            resource: Some(resource),
            field: Some("metadata.name".to_owned()),
            code: Code::Invalid("defined-twice"),
        });
        return;
    }
    objects.insert(key, info);
}

/// The problems of one object, each located.
struct Problems {
    origin: Arc<str>,
    resource: String,
    found: Vec<Diagnostic>,
}

impl Problems {
    fn push(&mut self, field: String, code: Code, message: String) {
        self.found.push(Diagnostic {
            origin: self.origin.clone(),
            resource: Some(self.resource.clone()),
            field: Some(field),
            code,
            message,
        });
    }

    /// A value of the wrong type at `field`.
    fn schema(&mut self, field: String, found: &Value) {
        let found = match found {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
            Value::Tagged(_) => "a tagged value",
        };
        self.push(
            field,
            Code::Schema,
            format!("expected a string, found {found}"),
        );
    }
}

/// A Secret's `type`, if it has one.
fn secret_type(document: &Value, kind: CoreKind, problems: &mut Problems) -> Option<String> {
    let value = document.get("type").filter(|_| kind == CoreKind::Secret)?;
    match value.as_str() {
        Some(type_) => Some(type_.to_owned()),
        None => {
            problems.schema("type".to_owned(), value);
            None
        }
    }
}

/// A Secret's `data` (base64), then `stringData` over it, as the apiserver
/// merges them.
fn secret_data(document: &Value, problems: &mut Problems) -> BTreeMap<String, Arc<[u8]>> {
    let mut data = BTreeMap::new();
    for (name, text) in strings(document, "data", problems) {
        match base64::decode(text) {
            Ok(bytes) => {
                data.insert(name.to_owned(), Arc::from(bytes));
            }
            Err(err) => problems.push(
                format!("data.{name}"),
                Code::Invalid("invalid-base64"),
                err.to_string(),
            ),
        }
    }
    for (name, text) in strings(document, "stringData", problems) {
        data.insert(name.to_owned(), Arc::from(text.as_bytes()));
    }
    data
}

/// A ConfigMap's `data` (text) and `binaryData` (base64); a key may be in
/// only one of them.
fn config_map_data(document: &Value, problems: &mut Problems) -> BTreeMap<String, Arc<[u8]>> {
    let mut data: BTreeMap<String, Arc<[u8]>> = strings(document, "data", problems)
        .into_iter()
        .map(|(name, text)| (name.to_owned(), Arc::from(text.as_bytes())))
        .collect();
    for (name, text) in strings(document, "binaryData", problems) {
        let field = format!("binaryData.{name}");
        if data.contains_key(name) {
            let why = format!("{name:?} is in data too; a key may be in only one of them");
            problems.push(field, Code::Invalid("duplicate-key"), why);
            continue;
        }
        match base64::decode(text) {
            Ok(bytes) => {
                data.insert(name.to_owned(), Arc::from(bytes));
            }
            Err(err) => problems.push(field, Code::Invalid("invalid-base64"), err.to_string()),
        }
    }
    data
}

/// The `(key, value)` pairs of the string-to-string mapping `field` (none
/// when absent or null); a value of another shape is a problem, left out.
fn strings<'a>(
    document: &'a Value,
    field: &'a str,
    problems: &mut Problems,
) -> Vec<(&'a str, &'a str)> {
    let value = document.get(field).unwrap_or(&Value::Null);
    let mapping = match value {
        Value::Null => None,
        Value::Mapping(mapping) => Some(mapping),
        other => {
            let found = match other {
                Value::Sequence(_) => "a list",
                Value::String(_) => "a string",
                _ => "a scalar",
            };
            let why = format!("expected a mapping of keys to strings, found {found}");
            problems.push(field.to_owned(), Code::Schema, why);
            None
        }
    };
    let mut pairs = Vec::new();
    for (name, value) in mapping.into_iter().flatten() {
        match (name.as_str(), value.as_str()) {
            (Some(name), Some(text)) => pairs.push((name, text)),
            (Some(name), None) => problems.schema(format!("{field}.{name}"), value),
            (None, _) => problems.push(
                field.to_owned(),
                Code::Schema,
                format!("key {name:?} is not a string"),
            ),
        }
    }
    pairs
}

/// A data key as Kubernetes allows it: 1 to 253 of `-._a-zA-Z0-9`, not
/// `.` or `..`; else why not.
fn check_key(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 253 || name == "." || name == ".." {
        return Err(format!(
            "{name:?} is not a valid key: 1 to 253 characters, not \".\" or \"..\""
        ));
    }
    if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "{name:?} is not a valid key: {bad:?} is not one of - . _ a-z A-Z 0-9"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
