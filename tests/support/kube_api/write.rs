//! The write verbs: POST (create, `generateName`), PUT (optimistic
//! concurrency; on `/status` replaces only `status`), PATCH (merge patch,
//! server-side apply as a merge patch that may create, strategic merge for
//! built-ins only) and DELETE, with the checks the real server makes first.
//!
//! Owns request-level validation of writes and which store change each
//! write makes. Must not edit stored objects directly: `state` does, so
//! revisions and events stay consistent.

use http::Response;
use serde_json::{json, Value};

use super::failure::{conflict, failure, not_found, object_failure, unknown_resource, Failure};
use super::kinds::Kind;
use super::object::{merge_patch, meta_mut, str_field};
use super::request::{json_response, ApiBody, Target};
use super::selectors::Query;
use super::state::Shared;

/// POST to a collection: 201 with the stored object, 409 `AlreadyExists`.
pub(super) fn create(
    shared: &Shared,
    t: &Target,
    body: &[u8],
) -> Result<Response<ApiBody>, Failure> {
    let mut obj = parse_body(body)?;
    check_type(t.kind, &obj)?;
    let ns = t.ns.clone().unwrap_or_default();
    if t.kind.namespaced && t.ns.is_none() {
        return Err(unknown_resource());
    }
    let body_ns = str_field(&obj, "namespace");
    if t.kind.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(failure(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut st = shared.lock();
    if str_field(&obj, "name").is_empty() {
        let prefix = str_field(&obj, "generateName").to_string();
        if prefix.is_empty() {
            return Err(failure(422, "Invalid", format!("{} \"\" is invalid: metadata.name: Required value: name or generateName is required", t.kind.kind)));
        }
        let suffix: String = format!(
            "{:x}",
            shared.uid_seed ^ (st.uids + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
        .chars()
        .take(5)
        .collect();
        meta_mut(&mut obj).insert("name".into(), json!(format!("{prefix}{suffix}")));
    }
    let key = (
        t.kind.index(),
        ns.clone(),
        str_field(&obj, "name").to_string(),
    );
    if st.objects.contains_key(&key) {
        return Err(object_failure(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", t.kind.qualified(), key.2),
            t.kind,
            &key.2,
        ));
    }
    let stored = st.create(shared, t.kind, &ns, obj);
    Ok(json_response(201, &stored))
}

/// A 400 unless the body's `apiVersion`/`kind`, where given, are `kind`'s.
fn check_type(kind: &Kind, obj: &Value) -> Result<(), Failure> {
    let av = obj["apiVersion"].as_str().unwrap_or("");
    let k = obj["kind"].as_str().unwrap_or("");
    if (!av.is_empty() && av != kind.api_version()) || (!k.is_empty() && k != kind.kind) {
        return Err(failure(
            400,
            "BadRequest",
            format!("the API version in the data ({av}) or kind ({k}) does not match the expected {} {}", kind.api_version(), kind.kind),
        ));
    }
    Ok(())
}

/// PUT of an object or its status: 200 with the stored object; 409
/// `Conflict` on a stale resourceVersion (required for the CRD).
pub(super) fn put(shared: &Shared, t: &Target, body: &[u8]) -> Result<Response<ApiBody>, Failure> {
    let obj = parse_body(body)?;
    check_type(t.kind, &obj)?;
    let key = t.key();
    let body_name = str_field(&obj, "name");
    if !body_name.is_empty() && body_name != key.2 {
        return Err(failure(
            400,
            "BadRequest",
            "the name of the object does not match the name on the URL",
        ));
    }
    let status_write = t.subresource.is_some();
    let mut st = shared.lock();
    if status_write && t.kind.custom {
        st.status_patches
            .push((key.1.clone(), key.2.clone(), obj.clone()));
        st.status_patch_times.push(tokio::time::Instant::now());
    }
    let Some(stored) = st.objects.get(&key) else {
        return Err(not_found(t.kind, &key.2));
    };
    let want_rv = str_field(&obj, "resourceVersion");
    if want_rv.is_empty() && t.kind.custom {
        return Err(failure(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                t.kind.kind, key.2
            ),
        ));
    }
    if !want_rv.is_empty() && want_rv != str_field(stored, "resourceVersion") {
        return Err(conflict(t.kind, &key.2));
    }
    let stored = if status_write {
        // PUT on /status replaces status only.
        let mut new = stored.clone();
        match obj.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        st.replace(t.kind, &key, new)
    } else {
        st.replace_main(t.kind, &key, obj)
    };
    Ok(json_response(200, &stored))
}

/// PATCH of an object or its status: merge patch, or server-side apply
/// (which may create the object: 201); 409 `Conflict` on a stale
/// resourceVersion in the patch.
pub(super) fn patch(
    shared: &Shared,
    t: &Target,
    q: &Query,
    content_type: &str,
    body: &[u8],
) -> Result<Response<ApiBody>, Failure> {
    let apply = is_apply(t.kind, content_type)?;
    let patch = parse_body(body)?;
    let key = t.key();
    let status_write = t.subresource.is_some();
    let mut st = shared.lock();
    if status_write && t.kind.custom {
        st.status_patches
            .push((key.1.clone(), key.2.clone(), patch.clone()));
        st.status_patch_times.push(tokio::time::Instant::now());
    }
    if apply {
        check_apply(t.kind, q, &patch)?;
    }
    if !patch.is_object() {
        return Err(failure(
            400,
            "BadRequest",
            "the patch must be a JSON object",
        ));
    }
    let want_rv = str_field(&patch, "resourceVersion").to_string();
    let Some(stored) = st.objects.get(&key).cloned() else {
        if apply && !status_write {
            // Server-side apply creates.
            let mut patch = patch;
            meta_mut(&mut patch).insert("name".into(), json!(key.2));
            let stored = st.create(shared, t.kind, &key.1, patch);
            return Ok(json_response(201, &stored));
        }
        return Err(not_found(t.kind, &key.2));
    };
    if !want_rv.is_empty() && want_rv != str_field(&stored, "resourceVersion") {
        return Err(conflict(t.kind, &key.2));
    }
    let stored = if status_write {
        st.merge_status(t.kind, &key, patch.get("status"))
    } else {
        let mut new = stored;
        let mut patch = patch;
        if t.kind.status_subresource {
            if let Some(o) = patch.as_object_mut() {
                o.remove("status");
            }
        }
        merge_patch(&mut new, &patch);
        st.replace(t.kind, &key, new)
    };
    Ok(json_response(200, &stored))
}

/// Whether a PATCH with this media type is a server-side apply (else a
/// merge patch); a 415 for JSON Patch, unknown types, and strategic merge
/// on the CRD.
fn is_apply(kind: &Kind, content_type: &str) -> Result<bool, Failure> {
    match content_type {
        "application/merge-patch+json" => Ok(false),
        "application/strategic-merge-patch+json" if !kind.custom => Ok(false),
        "application/apply-patch+yaml" => Ok(true),
        _ => Err(failure(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/merge-patch+json, application/apply-patch+yaml{} (json-patch is not implemented by the double)",
                if kind.custom { "" } else { ", application/strategic-merge-patch+json" }
            ),
        )),
    }
}

/// What server-side apply requires: a `fieldManager`, and `apiVersion`
/// and `kind` (of this resource) in the body.
fn check_apply(kind: &Kind, q: &Query, patch: &Value) -> Result<(), Failure> {
    if q.get("fieldManager").unwrap_or("").is_empty() {
        return Err(failure(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    if patch["apiVersion"].as_str().unwrap_or("").is_empty()
        || patch["kind"].as_str().unwrap_or("").is_empty()
    {
        return Err(failure(
            400,
            "BadRequest",
            "apiVersion and kind must be set in an apply patch",
        ));
    }
    check_type(kind, patch)
}

/// DELETE: 200 with the object as the DELETED event carried it.
pub(super) fn delete(shared: &Shared, t: &Target) -> Result<Response<ApiBody>, Failure> {
    let key = t.key();
    match shared.lock().delete(t.kind, &key) {
        Some(obj) => Ok(json_response(200, &obj)),
        None => Err(not_found(t.kind, &key.2)),
    }
}

/// Decodes a request body as JSON, or else YAML (apply patches).
fn parse_body(body: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml_ng::from_slice(body))
        .map_err(|e| {
            failure(
                400,
                "BadRequest",
                format!("the body of the request could not be decoded: {e}"),
            )
        })
}
