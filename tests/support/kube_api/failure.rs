//! Failed requests as the real server answers them: an HTTP code and a
//! `Status` body (`reason`, `message`, `details` naming the object).
//!
//! Owns the `Status` shapes and the standard ones (`NotFound`,
//! `Conflict`). Must not decide *when* a request fails (the verbs do) or
//! build responses (`request` does).

use serde_json::{json, Value};

use super::kinds::Kind;

/// A failed request: HTTP code and the `Status` body the real server sends.
pub(super) struct Failure {
    /// HTTP status code, also the body's `code`.
    pub(super) code: u16,
    /// The `Status` object.
    pub(super) body: Value,
}

/// A `Status` failure with `reason` and `message`.
pub(super) fn failure(code: u16, reason: &str, message: impl Into<String>) -> Failure {
    Failure {
        code,
        body: json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message.into(),
            "reason": reason,
            "code": code,
        }),
    }
}

/// A failure about one object: `details` name it and its kind.
pub(super) fn object_failure(
    code: u16,
    reason: &str,
    message: String,
    kind: &Kind,
    name: &str,
) -> Failure {
    let mut f = failure(code, reason, message);
    f.body["details"] = json!({"name": name, "group": kind.group, "kind": kind.plural});
    f
}

/// 404 `NotFound` for an object of `kind`.
pub(super) fn not_found(kind: &Kind, name: &str) -> Failure {
    object_failure(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.qualified()),
        kind,
        name,
    )
}

/// 409 `Conflict`: the write named a stale resourceVersion.
pub(super) fn conflict(kind: &Kind, name: &str) -> Failure {
    object_failure(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            kind.qualified()
        ),
        kind,
        name,
    )
}

/// 404 for a path that names no resource the double serves, as the real
/// server answers an unknown resource.
pub(super) fn unknown_resource() -> Failure {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}
