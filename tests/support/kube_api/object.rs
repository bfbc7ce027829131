//! Helpers over stored objects as JSON: metadata access, the part of an
//! object CRD generation tracks, RFC 7386 merge patch, timestamps.
//!
//! Owns how the double reads and edits one object's JSON. Must not know
//! about the store, revisions or HTTP.

use serde_json::{json, Map, Value};

/// The current time as RFC 3339 with whole seconds, as
/// `creationTimestamp` is written.
pub(super) fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .expect("current time in range")
        .to_string()
}

/// `metadata` of `obj` (`Null` if absent).
pub(super) fn meta(obj: &Value) -> &Value {
    &obj["metadata"]
}

/// `metadata` of `obj` for editing, created (and `obj` made an object)
/// if missing.
pub(super) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let m = obj
        .as_object_mut()
        .expect("object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("metadata object")
}

/// A string field of `metadata`, "" if absent.
pub(super) fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)[field].as_str().unwrap_or("")
}

/// Everything CRD generation tracks: the object minus metadata, status and
/// type fields.
pub(super) fn spec_part(obj: &Value) -> Map<String, Value> {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    for k in ["metadata", "status", "apiVersion", "kind"] {
        m.remove(k);
    }
    m
}

/// RFC 7386 JSON merge patch.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}
