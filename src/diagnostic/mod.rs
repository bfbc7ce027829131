//! Typed compile diagnostics: where a problem is ([`FieldPath`]), what it is
//! ([`Invalid`], with a stable code), the two together ([`CompileError`]),
//! and the one accumulator every compile step pushes to ([`Problems`]).
//!
//! Owns: the vocabulary `table`, `policy` and `health` share to report bad
//! fields. Must not: import anything but `api` — it sits in the leaf layer
//! so that the per-rule compilers below `table` can use it.

mod invalid;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Deref;

use serde::{Serialize, Serializer};

pub use invalid::Invalid;

/// A field's path in a resource, printed the way users (and `kubectl`)
/// write it: `spec.rules[0].backends[1].address`. Built one step at a time
/// with [`key`](FieldPath::key) and [`index`](FieldPath::index).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path one key deeper: `spec` → `spec.rules`. A map key (a header
    /// name) is appended the same way.
    pub fn key(&self, name: &str) -> FieldPath {
        if self.0.is_empty() {
            return FieldPath(name.to_owned());
        }
        FieldPath(format!("{}.{name}", self.0))
    }

    /// The path of item `i` of this list: `spec.rules` → `spec.rules[0]`.
    pub fn index(&self, i: usize) -> FieldPath {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for FieldPath {
    /// A path as already written, e.g. `metadata.name` or `spec.rules[0]`.
    fn from(path: &str) -> Self {
        FieldPath(path.to_owned())
    }
}

impl From<&FieldPath> for FieldPath {
    fn from(path: &FieldPath) -> Self {
        path.clone()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for FieldPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for FieldPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// One refused field: where, why, and the text a person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct CompileError {
    /// The field path, e.g. `spec.rules[0].backends[1].address`.
    pub field: FieldPath,
    /// Why it is refused; its [`code`](Invalid::code) is stable.
    #[serde(skip)]
    pub reason: Invalid,
    /// [`reason`](Self::reason)'s stable code, for programs reading
    /// `/routes`.
    pub code: &'static str,
    /// `reason` as text, rendered once when the error is made (statuses,
    /// `/routes` and `check` all print it).
    pub message: String,
}

impl CompileError {
    /// The error of `field`, refused for `reason`.
    pub fn new(field: FieldPath, reason: impl Into<Invalid>) -> Self {
        let reason = reason.into();
        CompileError {
            field,
            code: reason.code(),
            message: reason.to_string(),
            reason,
        }
    }
}

/// The one accumulator of compile errors: every step pushes what it finds
/// (not just the first problem) and the caller decides what a non-empty
/// list means. Reads as a slice of [`CompileError`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(Vec<CompileError>);

impl Problems {
    /// Records that `field` is refused for `reason`.
    pub fn push(&mut self, field: FieldPath, reason: impl Into<Invalid>) {
        self.0.push(CompileError::new(field, reason));
    }

    /// The value of `result`, or `None` after recording its error at
    /// `field`.
    pub fn check<T, E: Into<Invalid>>(
        &mut self,
        field: impl FnOnce() -> FieldPath,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(reason) => {
                self.push(field(), reason);
                None
            }
        }
    }

    /// Records an error already made.
    pub fn push_error(&mut self, error: CompileError) {
        self.0.push(error);
    }

    /// Moves every error of `other` here.
    pub fn append(&mut self, other: &mut Problems) {
        self.0.append(&mut other.0);
    }

    /// The errors, in the order found.
    pub fn into_vec(self) -> Vec<CompileError> {
        self.0
    }
}

impl Deref for Problems {
    type Target = [CompileError];

    fn deref(&self) -> &[CompileError] {
        &self.0
    }
}
