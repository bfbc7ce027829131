//! The read verbs: GET of one object and LIST of a collection, with
//! `limit`/`continue` pagination (`continue` = `{rv}-{hex(ns \0 name)}`:
//! resume after that key, report the first page's resourceVersion).
//!
//! Owns list framing and continue tokens. Must not change state; watches
//! live in `watch`.

use http::Response;
use serde_json::{json, Value};

use super::failure::{failure, not_found, Failure};
use super::request::{json_response, ApiBody, Target};
use super::selectors::{Query, Selection};
use super::state::{Key, Shared, State};

/// GET of one object: the stored object or 404.
pub(super) fn get(shared: &Shared, t: &Target) -> Result<Response<ApiBody>, Failure> {
    let key = t.key();
    let st = shared.lock();
    match st.objects.get(&key) {
        Some(obj) => Ok(json_response(200, obj)),
        None => Err(not_found(t.kind, &key.2)),
    }
}

/// LIST: `{apiVersion, kind: <Kind>List, metadata: {resourceVersion,
/// continue?, remainingItemCount?}, items}` in key order, filtered by the
/// selection and cut at `limit`.
pub(super) fn list(shared: &Shared, t: &Target, q: &Query) -> Result<Response<ApiBody>, Failure> {
    let sel = Selection::new(t.kind, t.ns.clone(), q)?;
    let st = shared.lock();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let (list_rv, after) = resume_point(&st, q)?;
    let matching: Vec<(&Key, &Value)> = sel
        .current(&st)
        .filter(|(k, _)| {
            after
                .as_ref()
                .is_none_or(|(ns, name)| (&k.1, &k.2) > (ns, name))
        })
        .collect();
    let take = limit.unwrap_or(matching.len()).min(matching.len());
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if take < matching.len() {
        let last = matching[take - 1].0;
        metadata["continue"] = json!(format!(
            "{list_rv}-{}",
            hex(&format!("{}\0{}", last.1, last.2))
        ));
        metadata["remainingItemCount"] = json!(matching.len() - take);
    }
    let items: Vec<Value> = matching[..take].iter().map(|(_, v)| (*v).clone()).collect();
    Ok(json_response(
        200,
        &json!({
            "apiVersion": t.kind.api_version(),
            "kind": format!("{}List", t.kind.kind),
            "metadata": metadata,
            "items": items,
        }),
    ))
}

/// Where a page starts: the resourceVersion to report and the (namespace,
/// name) to resume after, from the `continue` token (none: the current
/// revision, from the start). A malformed token is a 400, one older than
/// the compaction point a 410 `Expired`.
fn resume_point(st: &State, q: &Query) -> Result<(u64, Option<(String, String)>), Failure> {
    let Some(token) = q.get("continue").filter(|c| !c.is_empty()) else {
        return Ok((st.rv, None));
    };
    let parsed = token.split_once('-').and_then(|(rv, k)| {
        let rv = rv.parse::<u64>().ok()?;
        let (ns, name) = unhex(k)?
            .split_once('\0')
            .map(|(a, b)| (a.to_string(), b.to_string()))?;
        Some((rv, (ns, name)))
    });
    let Some((rv, after)) = parsed else {
        return Err(failure(
            400,
            "BadRequest",
            format!("invalid continue token {token:?}"),
        ));
    };
    if rv < st.compacted {
        return Err(failure(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter.",
        ));
    }
    Ok((rv, Some(after)))
}

/// Lower-case hex of the bytes of `s`.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The string [`hex`] encoded, if `s` is one.
fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}
