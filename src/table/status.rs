//! What compile says about each route.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::source::Diagnostic;

/// The outcome of compiling one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    /// The route's namespace.
    pub namespace: String,
    /// The route's name.
    pub name: String,
    /// Where it came from.
    #[serde(skip)]
    pub origin: Arc<str>,
    /// Accepted, or why not.
    pub reason: Reason,
    /// Every problem found, each naming its field.
    pub errors: Vec<FieldError>,
}

/// Why a route was or was not accepted (the `Accepted` condition's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// The route is served.
    Accepted,
    /// A field is invalid; the route is not served.
    Invalid,
    /// An older route already claims one of its host + match pairs; the
    /// route is not served.
    Conflicted,
}

/// One problem in a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field path, e.g. `spec.rules[0].backends[1].address`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl RouteStatus {
    /// Whether the route is served.
    pub fn accepted(&self) -> bool {
        self.reason == Reason::Accepted
    }

    /// The problems as located diagnostics.
    pub fn diagnostics(&self) -> impl Iterator<Item = Diagnostic> + '_ {
        self.errors.iter().map(|e| Diagnostic {
            origin: self.origin.clone(),
            resource: Some(format!("{}/{}", self.namespace, self.name)),
            field: Some(e.field.clone()),
            message: e.message.clone(),
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Accepted => "Accepted",
            Reason::Invalid => "Invalid",
            Reason::Conflicted => "Conflicted",
        })
    }
}
