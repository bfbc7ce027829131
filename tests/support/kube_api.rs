//! An in-process HTTP double of the Kubernetes API for the kinds switchyard
//! uses, served by a real hyper 1 HTTP/1.1 server on `127.0.0.1:0`, so the
//! controller talks to it through an ordinary `kube::Client`.
//!
//! The real kube-apiserver is the truth: the controller tests must also pass
//! against one (`SWITCHYARD_TEST_KUBECONFIG`), so this double imitates the
//! behaviour a controller can observe, and nothing more.
//!
//! # Kinds
//!
//! | resource            | group/version              | scope      | `/status` | generation |
//! |---------------------|----------------------------|------------|-----------|------------|
//! | `loadbalancerroutes`| `switchyard.dev/v1alpha1`  | namespaced | yes       | yes        |
//! | `services`          | `v1`                       | namespaced | yes       | no         |
//! | `endpointslices`    | `discovery.k8s.io/v1`      | namespaced | no        | no         |
//! | `leases`            | `coordination.k8s.io/v1`   | namespaced | no        | no         |
//! | `namespaces`        | `v1`                       | cluster    | no        | no         |
//!
//! Paths: `/api/v1/...` and `/apis/{group}/{version}/...`, cluster-wide
//! collections (`/apis/g/v/{resource}`), namespaced collections
//! (`.../namespaces/{ns}/{resource}`), objects (`.../{name}`) and the status
//! subresource (`.../{name}/status`); `/version` answers too. Anything else
//! is a 404 `Status`, as for an unknown resource.
//!
//! # How it imitates the real server
//!
//! - **One global resourceVersion**, like etcd's revision: a single counter
//!   across all kinds; every create, update, delete and status write bumps it
//!   and records a watch event. A write that changes nothing (same body, same
//!   status) is a no-op, as on the real server: no new resourceVersion, no
//!   event.
//! - **Object metadata**: `uid`, `creationTimestamp` (RFC 3339, seconds) and
//!   `resourceVersion` on every object; `generation` for
//!   `loadbalancerroutes` (CRD rules): 1 on create, +1 only when something
//!   outside `metadata`/`status` (i.e. `spec`) changes; status writes never
//!   bump it. A DELETED event carries the object with the deletion's
//!   resourceVersion.
//! - **Status subresource** (routes, services): writes to the main resource
//!   keep the stored `status` (also through [`KubeApi::apply`]); writes to
//!   `/status` change only `status`.
//! - **LIST** returns `{apiVersion, kind: <Kind>List, metadata:
//!   {resourceVersion, continue?, remainingItemCount?}, items}` sorted by
//!   namespace/name, honours `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`,
//!   `!k`), `fieldSelector` (`metadata.name`, `metadata.namespace`), `limit`
//!   and `continue`. Items carry `apiVersion`/`kind` (the real server omits
//!   them for built-in kinds: don't depend on them).
//! - **WATCH** (`watch=true|1`) is a chunked stream of newline-delimited
//!   `{"type","object"}` events strictly after `resourceVersion=N`, in
//!   resourceVersion order, first from the event history, then live. Without
//!   `N` (or with `0`, or with `sendInitialEvents=true`) it first sends
//!   ADDED for every current object (then, with `sendInitialEvents`, a
//!   BOOKMARK annotated `k8s.io/initial-events-end`). Label/field filtered
//!   watches turn a MODIFIED that enters/leaves the selection into
//!   ADDED/DELETED, as the real watch cache does. The stream ends cleanly at
//!   `timeoutSeconds`.
//! - **410 Expired** framing: a watch from an `N` older than the compaction
//!   point gets HTTP 200 and a single `{"type":"ERROR","object":{"kind":
//!   "Status",...,"reason":"Expired","code":410}}` event, then the stream
//!   ends; a `continue` token older than the compaction point gets an HTTP
//!   410 `Status`. [`KubeApi::compact`] advances the revision (as unrelated
//!   writes elsewhere in a real cluster would) and compacts at it, so every
//!   resume from an older resourceVersion expires while a fresh relist works.
//! - **Bookmarks** (`allowWatchBookmarks=true`): an object with only
//!   `apiVersion`, `kind` and `metadata.resourceVersion` (the global revision
//!   the watch has caught up to), sent on [`KubeApi::bookmark`] and after
//!   every second without other traffic (the real server sends them about
//!   once a minute).
//! - **Writes**: POST (409 `AlreadyExists`), PUT with optimistic concurrency
//!   (409 `Conflict` when `metadata.resourceVersion` is stale; required for
//!   the CRD, optional for built-ins), PATCH (`merge-patch+json`; `apply-patch
//!   +yaml` = server-side apply, which needs `fieldManager`, and
//!   `apiVersion`/`kind` in the body and may create; `strategic-merge-patch`
//!   is treated as a merge patch for built-ins and is a 415 for the CRD, as on
//!   the real server), DELETE, 404 `NotFound` `Status` for missing objects.
//! - **Status writes** (`PATCH`/`PUT .../{name}/status`): both merge patch and
//!   server-side apply merge the body's `status` into the stored one (RFC 7386
//!   merge) and return the full object; every write received for a route is
//!   logged for [`KubeApi::status_patches`].
//!
//! # What it does not do
//!
//! - No field managers or `managedFields`: server-side apply is a merge
//!   patch, so fields a manager stops applying are *not* removed, and lists
//!   (e.g. `conditions`) are replaced wholesale, not merged by key.
//! - No admission, defaulting, OpenAPI/CEL schema validation, or
//!   `fieldValidation`; no JSON Patch (415); no finalizers,
//!   `deletionTimestamp` or graceful deletion; namespaces need not exist;
//!   no discovery (`/api`, `/apis`), no protobuf, no auth, no clusterIP
//!   allocation.
//! - Pagination: later pages are cut from the *current* state and report the
//!   first page's resourceVersion (not a consistent snapshot); a watch from
//!   that resourceVersion replays what changed meanwhile, so a watcher's
//!   cache still converges, but a page may show an object newer than the
//!   list's resourceVersion.
//! - `resourceVersion`/`resourceVersionMatch` on LIST and GET are ignored
//!   (always the latest state); a watch from a future resourceVersion is not
//!   refused.
//! - Time is real: do not drive it from a `start_paused` test runtime.
//! - [`KubeApi::set_unavailable`] answers 503 (and drops open watches);
//!   `kube::Client` retries 503s with exponential backoff by default, so a
//!   request made during an outage may complete after it ends.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// How long a bookmark-enabled watch stays silent before the double sends a
/// BOOKMARK on its own.
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// Response body type of the double.
type ApiBody = BoxBody<Bytes, io::Error>;

// === kinds ===

/// A resource the double serves.
#[derive(Debug, PartialEq, Eq)]
struct Kind {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    /// Has a `/status` subresource: the main resource ignores `status`.
    status_subresource: bool,
    /// Maintains `metadata.generation` (CRD rules).
    generation: bool,
    /// Is a CustomResourceDefinition (stricter PUT/PATCH rules).
    custom: bool,
}

static KINDS: [Kind; 5] = [
    Kind {
        group: "switchyard.dev",
        version: "v1alpha1",
        plural: "loadbalancerroutes",
        kind: "LoadBalancerRoute",
        namespaced: true,
        status_subresource: true,
        generation: true,
        custom: true,
    },
    Kind {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        status_subresource: true,
        generation: false,
        custom: false,
    },
    Kind {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice",
        namespaced: true,
        status_subresource: false,
        generation: false,
        custom: false,
    },
    Kind {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        status_subresource: false,
        generation: false,
        custom: false,
    },
    Kind {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        status_subresource: false,
        generation: false,
        custom: false,
    },
];

impl Kind {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `leases.coordination.k8s.io`, or `services` for the core group, as in
    /// the real server's messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn index(&'static self) -> usize {
        KINDS
            .iter()
            .position(|k| std::ptr::eq(k, self))
            .expect("kind from KINDS")
    }

    fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
        KINDS
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    fn by_type(api_version: &str, kind: &str) -> Option<&'static Kind> {
        KINDS
            .iter()
            .find(|k| k.api_version() == api_version && k.kind == kind)
    }

    fn expect_type(api_version: &str, kind: &str) -> &'static Kind {
        Kind::by_type(api_version, kind)
            .unwrap_or_else(|| panic!("the kube API double does not serve {api_version} {kind}"))
    }
}

// === state ===

/// Key of a stored object: kind index, namespace ("" if cluster-scoped), name.
type Key = (usize, String, String);

/// One entry of the event history.
struct Event {
    rv: u64,
    kind: usize,
    /// "ADDED", "MODIFIED" or "DELETED".
    kind_of_event: &'static str,
    object: Value,
    /// The object before a MODIFIED, so filtered watches can tell whether it
    /// entered or left their selection.
    prev: Option<Value>,
}

#[derive(Default)]
struct State {
    rv: u64,
    /// Watches from a resourceVersion below this get 410 Expired.
    compacted: u64,
    objects: BTreeMap<Key, Value>,
    events: Vec<Event>,
    status_patches: Vec<(String, String, Value)>,
    requests: Vec<(String, String)>,
    unavailable: bool,
    cut_epoch: u64,
    bookmark_epoch: u64,
    watches: usize,
    uids: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped after every change of `state`: wakes watches and waiters.
    changed: watch::Sender<u64>,
    uid_seed: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn new_uid(&self, st: &mut State) -> String {
        st.uids += 1;
        let x = (self.uid_seed as u128) << 64 | st.uids as u128;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (x >> 96) as u32,
            (x >> 80) as u16,
            (x >> 64) as u16 & 0xfff,
            (x >> 48) as u16 & 0xfff,
            x as u64 & 0xffff_ffff_ffff
        )
    }
}

fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .expect("current time in range")
        .to_string()
}

fn meta(obj: &Value) -> &Value {
    &obj["metadata"]
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
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

fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)[field].as_str().unwrap_or("")
}

/// Everything CRD generation tracks: the object minus metadata, status and
/// type fields.
fn spec_part(obj: &Value) -> Map<String, Value> {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    for k in ["metadata", "status", "apiVersion", "kind"] {
        m.remove(k);
    }
    m
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
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

/// A failed request: HTTP code and the `Status` body the real server sends.
struct Failure {
    code: u16,
    body: Value,
}

fn failure(code: u16, reason: &str, message: impl Into<String>) -> Failure {
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

fn object_failure(code: u16, reason: &str, message: String, kind: &Kind, name: &str) -> Failure {
    let mut f = failure(code, reason, message);
    f.body["details"] = json!({"name": name, "group": kind.group, "kind": kind.plural});
    f
}

fn not_found(kind: &Kind, name: &str) -> Failure {
    object_failure(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.qualified()),
        kind,
        name,
    )
}

impl State {
    /// Stores a new object, bumping the revision and recording ADDED.
    fn create(&mut self, shared: &Shared, kind: &'static Kind, ns: &str, mut obj: Value) -> Value {
        let name = str_field(&obj, "name").to_string();
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        if kind.status_subresource {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        let uid = shared.new_uid(self);
        self.rv += 1;
        let m = meta_mut(&mut obj);
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            m.remove(k);
        }
        m.insert("name".into(), json!(name));
        if kind.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("resourceVersion".into(), json!(self.rv.to_string()));
        if kind.generation {
            m.insert("generation".into(), json!(1));
        }
        self.objects
            .insert((kind.index(), ns.to_string(), name), obj.clone());
        self.record(kind, "ADDED", obj.clone(), None);
        obj
    }

    /// Replaces a stored object with `new` (whose system metadata is taken
    /// from the stored one). A change-free write is a no-op, as on the real
    /// server.
    fn replace(&mut self, kind: &'static Kind, key: &Key, mut new: Value) -> Value {
        let prev = self.objects.get(key).expect("replace existing").clone();
        new["apiVersion"] = json!(kind.api_version());
        new["kind"] = json!(kind.kind);
        {
            let m = meta_mut(&mut new);
            m.remove("managedFields");
            m.insert("name".into(), json!(key.2));
            if kind.namespaced {
                m.insert("namespace".into(), json!(key.1));
            } else {
                m.remove("namespace");
            }
            for k in ["uid", "creationTimestamp", "resourceVersion", "generation"] {
                match meta(&prev).get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
        if kind.generation && spec_part(&new) != spec_part(&prev) {
            let generation = meta(&prev)["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        if new == prev {
            return prev;
        }
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects.insert(key.clone(), new.clone());
        self.record(kind, "MODIFIED", new.clone(), Some(prev));
        new
    }

    /// Replaces the main resource: keeps the stored status when the kind has
    /// a status subresource.
    fn replace_main(&mut self, kind: &'static Kind, key: &Key, mut new: Value) -> Value {
        if kind.status_subresource {
            let stored = self.objects[key].get("status").cloned();
            if let Some(o) = new.as_object_mut() {
                match stored {
                    Some(s) => o.insert("status".into(), s),
                    None => o.remove("status"),
                };
            }
        }
        self.replace(kind, key, new)
    }

    /// Merges `status` into the stored object's status (status subresource).
    fn merge_status(&mut self, kind: &'static Kind, key: &Key, status: Option<&Value>) -> Value {
        let mut new = self.objects[key].clone();
        if let Some(status) = status {
            if status.is_null() {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            } else {
                merge_patch(
                    new.as_object_mut()
                        .expect("object")
                        .entry("status")
                        .or_insert(Value::Null),
                    status,
                );
            }
        }
        self.replace(kind, key, new)
    }

    fn delete(&mut self, kind: &'static Kind, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.record(kind, "DELETED", obj.clone(), None);
        Some(obj)
    }

    fn record(
        &mut self,
        kind: &'static Kind,
        kind_of_event: &'static str,
        object: Value,
        prev: Option<Value>,
    ) {
        self.events.push(Event {
            rv: self.rv,
            kind: kind.index(),
            kind_of_event,
            object,
            prev,
        });
    }
}

// === selectors ===

#[derive(Debug, Default)]
struct Selector {
    /// (key, op, value): op is "=", "!=", "exists" or "!exists".
    terms: Vec<(String, &'static str, String)>,
}

impl Selector {
    fn parse_labels(s: &str) -> Result<Selector, Failure> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let parsed = if let Some((k, v)) = term.split_once("!=") {
                (k, "!=", v)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, "=", v)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, "=", v)
            } else if let Some(k) = term.strip_prefix('!') {
                (k, "!exists", "")
            } else if term.contains([' ', '(', ')']) {
                return Err(failure(
                    400,
                    "BadRequest",
                    format!("unable to parse requirement: {term:?} (set-based selectors are not supported by the double)"),
                ));
            } else {
                (term, "exists", "")
            };
            terms.push((
                parsed.0.trim().to_string(),
                parsed.1,
                parsed.2.trim().to_string(),
            ));
        }
        Ok(Selector { terms })
    }

    fn parse_fields(s: &str) -> Result<Selector, Failure> {
        let sel = Selector::parse_labels(s)?;
        for (k, op, _) in &sel.terms {
            if !matches!(*op, "=" | "!=")
                || !matches!(k.as_str(), "metadata.name" | "metadata.namespace")
            {
                return Err(failure(
                    400,
                    "BadRequest",
                    format!("field label not supported: {k}"),
                ));
            }
        }
        Ok(sel)
    }

    fn matches_labels(&self, obj: &Value) -> bool {
        let labels = &meta(obj)["labels"];
        self.terms.iter().all(|(k, op, v)| {
            let have = labels.get(k).and_then(Value::as_str);
            match *op {
                "=" => have == Some(v.as_str()),
                "!=" => have != Some(v.as_str()),
                "exists" => have.is_some(),
                _ => have.is_none(),
            }
        })
    }

    fn matches_fields(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(k, op, v)| {
            let have = str_field(obj, k.trim_start_matches("metadata."));
            (have == v) == (*op == "=")
        })
    }
}

/// What a LIST or WATCH selects.
struct Selection {
    kind: &'static Kind,
    ns: Option<String>,
    labels: Selector,
    fields: Selector,
}

impl Selection {
    fn new(kind: &'static Kind, ns: Option<String>, q: &Query) -> Result<Selection, Failure> {
        Ok(Selection {
            kind,
            ns,
            labels: Selector::parse_labels(q.get("labelSelector").unwrap_or(""))?,
            fields: Selector::parse_fields(q.get("fieldSelector").unwrap_or(""))?,
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        self.ns
            .as_deref()
            .is_none_or(|ns| str_field(obj, "namespace") == ns)
            && self.labels.matches_labels(obj)
            && self.fields.matches_fields(obj)
    }

    fn current<'a>(
        &self,
        st: &'a State,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + use<'a, '_> {
        let idx = self.kind.index();
        st.objects
            .range((idx, String::new(), String::new())..)
            .take_while(move |(k, _)| k.0 == idx)
            .filter(|(_, v)| self.matches(v))
    }

    /// The watch event line (without newline) `e` produces for this
    /// selection, if any.
    fn event_line(&self, e: &Event) -> Option<String> {
        if e.kind != self.kind.index() {
            return None;
        }
        let now = self.matches(&e.object);
        let before = e.prev.as_ref().map(|p| self.matches(p));
        let kind_of_event = match (e.kind_of_event, before, now) {
            ("MODIFIED", Some(true), true) => "MODIFIED",
            ("MODIFIED", Some(false), true) => "ADDED",
            ("MODIFIED", Some(true), false) => {
                // Left the selection: like the watch cache, a DELETED of the
                // previous state at this event's resourceVersion.
                let mut gone = e.prev.clone().expect("prev of MODIFIED");
                meta_mut(&mut gone).insert("resourceVersion".into(), json!(e.rv.to_string()));
                return Some(json!({"type": "DELETED", "object": gone}).to_string());
            }
            ("ADDED", _, true) => "ADDED",
            ("DELETED", _, true) => "DELETED",
            _ => return None,
        };
        Some(json!({"type": kind_of_event, "object": e.object}).to_string())
    }

    fn bookmark_line(&self, rv: u64, initial_end: bool) -> String {
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({
            "type": "BOOKMARK",
            "object": {"apiVersion": self.kind.api_version(), "kind": self.kind.kind, "metadata": metadata},
        })
        .to_string()
    }
}

// === query strings ===

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (c, None) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

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

// === the double ===

/// The Kubernetes API double: a running server plus the controls tests use
/// to change the world and observe what the controller did. Cloning shares
/// the server; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct KubeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the double on `127.0.0.1:0`.
pub async fn start() -> KubeApi {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind kube API double");
    let addr = listener.local_addr().expect("local addr");
    let seed = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u16(addr.port());
        h.finish()
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        changed: watch::Sender::new(0),
        uid_seed: seed,
    });
    let server = tokio::spawn(serve(listener, shared.clone()));
    KubeApi {
        shared,
        addr,
        _server: Arc::new(AbortOnDrop(server)),
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    // Connections live in this set, so aborting the server drops them all.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

impl KubeApi {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `kube::Client` for the double, default namespace `default`.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().expect("double URL"));
        config.default_namespace = "default".to_string();
        kube::Client::try_from(config).expect("kube client for the double")
    }

    /// Creates `obj` or replaces the stored object of the same
    /// apiVersion/kind/namespace/name (namespace defaults to `default`),
    /// unconditionally, as an administrator would. Generation follows the
    /// CRD rules; for kinds with a status subresource the stored status is
    /// kept (use [`KubeApi::set_status`]). Returns the stored object.
    pub fn apply(&self, obj: Value) -> Value {
        let kind = Kind::expect_type(
            obj["apiVersion"].as_str().unwrap_or(""),
            obj["kind"].as_str().unwrap_or(""),
        );
        let name = str_field(&obj, "name").to_string();
        assert!(!name.is_empty(), "apply: metadata.name is required");
        let ns = if kind.namespaced {
            match str_field(&obj, "namespace") {
                "" => "default".to_string(),
                ns => ns.to_string(),
            }
        } else {
            String::new()
        };
        let key = (kind.index(), ns.clone(), name);
        let stored = {
            let mut st = self.shared.lock();
            if st.objects.contains_key(&key) {
                st.replace_main(kind, &key, obj)
            } else {
                st.create(&self.shared, kind, &ns, obj)
            }
        };
        self.shared.notify();
        stored
    }

    /// Merges `status` into a stored object's status, as another writer of
    /// the status subresource would (not logged in
    /// [`KubeApi::status_patches`]). Returns the stored object, or `None` if
    /// there is none.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
        name: &str,
        status: Value,
    ) -> Option<Value> {
        let kind = Kind::expect_type(api_version, kind);
        let key = (kind.index(), ns.to_string(), name.to_string());
        let stored = {
            let mut st = self.shared.lock();
            if !st.objects.contains_key(&key) {
                return None;
            }
            st.merge_status(kind, &key, Some(&status))
        };
        self.shared.notify();
        Some(stored)
    }

    /// Deletes an object (`ns` is "" for cluster-scoped kinds); returns it
    /// as the DELETED event carried it, or `None` if absent.
    pub fn delete(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = Kind::expect_type(api_version, kind);
        let key = (kind.index(), ns.to_string(), name.to_string());
        let deleted = self.shared.lock().delete(kind, &key);
        self.shared.notify();
        deleted
    }

    /// The stored object, if any (`ns` is "" for cluster-scoped kinds).
    pub fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = Kind::expect_type(api_version, kind);
        let key = (kind.index(), ns.to_string(), name.to_string());
        self.shared.lock().objects.get(&key).cloned()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Every status write (PATCH or PUT on `loadbalancerroutes/{name}/status`)
    /// received, in order, as (namespace, name, request body), including
    /// writes answered 404 or that changed nothing.
    pub fn status_patches(&self) -> Vec<(String, String, Value)> {
        self.shared.lock().status_patches.clone()
    }

    /// Waits until at least `n` status writes have been received; returns
    /// them all. Bound it with a timeout.
    pub async fn wait_status_patches(&self, n: usize) -> Vec<(String, String, Value)> {
        self.wait(|st| (st.status_patches.len() >= n).then(|| st.status_patches.clone()))
            .await
    }

    /// Waits until `f` returns `Some` for the current stored objects and
    /// logs; `f` runs after every change. Bound it with a timeout.
    pub async fn wait_for<T>(&self, mut f: impl FnMut(&KubeApi) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        loop {
            if let Some(t) = f(self) {
                return t;
            }
            changed.changed().await.expect("double alive");
        }
    }

    async fn wait<T>(&self, mut f: impl FnMut(&State) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        loop {
            if let Some(t) = f(&self.shared.lock()) {
                return t;
            }
            changed.changed().await.expect("double alive");
        }
    }

    /// Abruptly ends every open watch stream (the connection is dropped
    /// mid-body, as when a network path or apiserver replica goes away).
    pub fn cut_watches(&self) {
        self.shared.lock().cut_epoch += 1;
        self.shared.notify();
    }

    /// Advances the revision (as unrelated writes elsewhere in the cluster
    /// would) and compacts the history at it: every watch resumed from an
    /// earlier resourceVersion gets 410 Expired; open watches keep
    /// streaming. Pair with [`KubeApi::cut_watches`] to force a relist.
    pub fn compact(&self) {
        {
            let mut st = self.shared.lock();
            st.rv += 1;
            st.compacted = st.rv;
        }
        self.shared.notify();
    }

    /// Sends a BOOKMARK at the current revision on every open watch that
    /// allows bookmarks.
    pub fn bookmark(&self) {
        self.shared.lock().bookmark_epoch += 1;
        self.shared.notify();
    }

    /// Number of open watch streams.
    pub fn watch_count(&self) -> usize {
        self.shared.lock().watches
    }

    /// Waits until at least `n` watch streams are open. Bound it with a
    /// timeout.
    pub async fn wait_watches(&self, n: usize) {
        self.wait(|st| (st.watches >= n).then_some(())).await
    }

    /// Every request received, in order, as (method, path?query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().requests.clone()
    }

    /// While `true`, every request is answered 503 ServiceUnavailable and
    /// open watches are dropped, like an unreachable apiserver behind a
    /// load balancer.
    pub fn set_unavailable(&self, unavailable: bool) {
        {
            let mut st = self.shared.lock();
            st.unavailable = unavailable;
            if unavailable {
                st.cut_epoch += 1;
            }
        }
        self.shared.notify();
    }
}

// === builders ===

/// A `switchyard.dev/v1alpha1` `LoadBalancerRoute` with `spec`.
pub fn route(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "LoadBalancerRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

/// A ClusterIP `Service` selecting `app: name`, with `ports` as
/// (port name, port, targetPort), TCP.
pub fn service(ns: &str, name: &str, ports: &[(&str, u16, u16)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(port_name, port, target)| {
            json!({"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "ClusterIP", "selector": {"app": name}, "ports": ports},
    })
}

/// A `discovery.k8s.io/v1` IPv4 `EndpointSlice` of `service` with one TCP
/// port and `endpoints` as (ip, ready, terminating); `serving` is
/// `ready || terminating` (a terminating endpoint still serving).
pub fn endpoint_slice(
    ns: &str,
    name: &str,
    service: &str,
    port_name: &str,
    port: u16,
    endpoints: &[(&str, bool, bool)],
) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, ready, terminating)| {
            json!({
                "addresses": [ip],
                "conditions": {"ready": ready, "serving": *ready || *terminating, "terminating": terminating},
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    })
}

/// A `coordination.k8s.io/v1` `Lease` held by `holder`.
pub fn lease(ns: &str, name: &str, holder: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    })
}

/// A `v1` `Namespace`.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

// === HTTP ===

fn json_response(code: u16, body: &Value) -> Response<ApiBody> {
    raw_response(code, body.to_string())
}

fn raw_response(code: u16, body: String) -> Response<ApiBody> {
    Response::builder()
        .status(StatusCode::from_u16(code).expect("status code"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("response")
}

fn fail(f: Failure) -> Response<ApiBody> {
    json_response(f.code, &f.body)
}

/// Where a request points.
struct Target {
    kind: &'static Kind,
    ns: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Result<Target, Failure> {
    let unknown = || {
        failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(unknown()),
    };
    let (ns, plural, name, sub) = match rest {
        ["namespaces", ns, plural] if *plural != "status" && *plural != "finalize" => {
            (Some(*ns), *plural, None, None)
        }
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
        _ => return Err(unknown()),
    };
    let kind = Kind::by_path(group, version, plural).ok_or_else(unknown)?;
    if ns.is_some() && !kind.namespaced {
        return Err(unknown());
    }
    // A namespaced kind by name needs a namespace.
    if kind.namespaced && ns.is_none() && name.is_some() {
        return Err(unknown());
    }
    if let Some(sub) = sub {
        if sub != "status" || !kind.status_subresource {
            return Err(unknown());
        }
    }
    Ok(Target {
        kind,
        ns: ns.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    })
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let query = Query::parse(req.uri().query());
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let unavailable = {
        let mut st = shared.lock();
        st.requests.push((method.to_string(), path_and_query));
        st.unavailable
    };
    shared.notify();
    if unavailable {
        return Ok(fail(failure(
            503,
            "ServiceUnavailable",
            "the kube API double is unavailable",
        )));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(fail(failure(
                400,
                "BadRequest",
                format!("reading body: {e}"),
            )))
        }
    };
    if method == Method::GET && path == "/version" {
        return Ok(json_response(
            200,
            &json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-switchyard-double", "platform": "linux/amd64"}),
        ));
    }
    let target = match parse_path(&path) {
        Ok(t) => t,
        Err(f) => return Ok(fail(f)),
    };
    let response = match (&method, target.name.is_some()) {
        (&Method::GET, false) if query.flag("watch") => start_watch(&shared, &target, &query),
        (&Method::GET, false) => list(&shared, &target, &query),
        (&Method::GET, true) => get(&shared, &target),
        (&Method::POST, false) => create(&shared, &target, &body),
        (&Method::PUT, true) => put(&shared, &target, &body),
        (&Method::PATCH, true) => patch(&shared, &target, &query, &content_type, &body),
        (&Method::DELETE, true) => delete(&shared, &target),
        _ => Err(failure(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {method}"),
        )),
    };
    shared.notify();
    Ok(response.unwrap_or_else(fail))
}

fn key_of(t: &Target) -> Key {
    (
        t.kind.index(),
        t.ns.clone().unwrap_or_default(),
        t.name.clone().unwrap_or_default(),
    )
}

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

fn list(shared: &Shared, t: &Target, q: &Query) -> Result<Response<ApiBody>, Failure> {
    let sel = Selection::new(t.kind, t.ns.clone(), q)?;
    let st = shared.lock();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    // continue = "{rv}-{hex(ns \0 name)}": resume after that key, report rv.
    let (list_rv, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        None => (st.rv, None),
        Some(token) => {
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
            (rv, Some(after))
        }
    };
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

fn get(shared: &Shared, t: &Target) -> Result<Response<ApiBody>, Failure> {
    let key = key_of(t);
    let st = shared.lock();
    match st.objects.get(&key) {
        Some(obj) => Ok(json_response(200, obj)),
        None => Err(not_found(t.kind, &key.2)),
    }
}

fn create(shared: &Shared, t: &Target, body: &[u8]) -> Result<Response<ApiBody>, Failure> {
    let mut obj = parse_body(body)?;
    check_type(t.kind, &obj)?;
    let ns = t.ns.clone().unwrap_or_default();
    if t.kind.namespaced && t.ns.is_none() {
        return Err(failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
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

fn conflict(kind: &Kind, name: &str) -> Failure {
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

fn put(shared: &Shared, t: &Target, body: &[u8]) -> Result<Response<ApiBody>, Failure> {
    let obj = parse_body(body)?;
    check_type(t.kind, &obj)?;
    let key = key_of(t);
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

fn patch(
    shared: &Shared,
    t: &Target,
    q: &Query,
    content_type: &str,
    body: &[u8],
) -> Result<Response<ApiBody>, Failure> {
    let unsupported = || {
        failure(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/merge-patch+json, application/apply-patch+yaml{} (json-patch is not implemented by the double)",
                if t.kind.custom { "" } else { ", application/strategic-merge-patch+json" }
            ),
        )
    };
    let apply = match content_type {
        "application/merge-patch+json" => false,
        "application/strategic-merge-patch+json" if !t.kind.custom => false,
        "application/apply-patch+yaml" => true,
        _ => return Err(unsupported()),
    };
    let patch = parse_body(body)?;
    let key = key_of(t);
    let status_write = t.subresource.is_some();
    let mut st = shared.lock();
    if status_write && t.kind.custom {
        st.status_patches
            .push((key.1.clone(), key.2.clone(), patch.clone()));
    }
    if apply {
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
        check_type(t.kind, &patch)?;
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

fn delete(shared: &Shared, t: &Target) -> Result<Response<ApiBody>, Failure> {
    let key = key_of(t);
    match shared.lock().delete(t.kind, &key) {
        Some(obj) => Ok(json_response(200, &obj)),
        None => Err(not_found(t.kind, &key.2)),
    }
}

// === watch ===

/// A watch response body fed by its watch task; an `Err` aborts the
/// connection mid-body.
struct WatchBody {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
}

impl Body for WatchBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data)))
    }
}

/// Decrements the open-watch count when a watch task ends.
struct WatchGuard(Arc<Shared>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.lock().watches -= 1;
        self.0.notify();
    }
}

fn start_watch(shared: &Arc<Shared>, t: &Target, q: &Query) -> Result<Response<ApiBody>, Failure> {
    let sel = Selection::new(t.kind, t.ns.clone(), q)?;
    let bookmarks = q.flag("allowWatchBookmarks");
    let initial_events = q.flag("sendInitialEvents");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    let from = match q.get("resourceVersion").unwrap_or("") {
        "" | "0" => None,
        rv => Some(rv.parse::<u64>().map_err(|_| {
            failure(
                400,
                "BadRequest",
                format!("invalid resource version: {rv:?}"),
            )
        })?),
    };
    let mut st = shared.lock();
    let from = if initial_events { None } else { from };
    if let Some(n) = from {
        if n < st.compacted {
            let line = json!({
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": format!("too old resource version: {n} ({})", st.compacted),
                    "reason": "Expired",
                    "code": 410,
                },
            });
            return Ok(raw_response(200, format!("{line}\n")));
        }
    }
    let mut initial = String::new();
    let pos = match from {
        Some(n) => n,
        None => {
            for (_, obj) in sel.current(&st) {
                initial.push_str(&json!({"type": "ADDED", "object": obj}).to_string());
                initial.push('\n');
            }
            if initial_events && bookmarks {
                initial.push_str(&sel.bookmark_line(st.rv, true));
                initial.push('\n');
            }
            st.rv
        }
    };
    st.watches += 1;
    let cut_epoch = st.cut_epoch;
    let bookmark_epoch = st.bookmark_epoch;
    drop(st);
    let (tx, rx) = mpsc::channel(16);
    let watch = Watch {
        shared: shared.clone(),
        sel,
        bookmarks,
        pos,
        cut_epoch,
        bookmark_epoch,
    };
    tokio::spawn(watch.run(initial, timeout, tx));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(WatchBody { rx }.boxed())
        .expect("watch response"))
}

struct Watch {
    shared: Arc<Shared>,
    sel: Selection,
    bookmarks: bool,
    /// Every event up to this revision has been considered.
    pos: u64,
    cut_epoch: u64,
    bookmark_epoch: u64,
}

impl Watch {
    async fn run(
        mut self,
        mut out: String,
        timeout: Option<Duration>,
        tx: mpsc::Sender<Result<Bytes, io::Error>>,
    ) {
        let _guard = WatchGuard(self.shared.clone());
        let mut changed = self.shared.changed.subscribe();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut last_sent = Instant::now();
        let mut idle_bookmark = false;
        loop {
            let cut = {
                let st = self.shared.lock();
                let cut = st.cut_epoch != self.cut_epoch;
                let start = st.events.partition_point(|e| e.rv <= self.pos);
                for e in &st.events[start..] {
                    if let Some(line) = self.sel.event_line(e) {
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
                self.pos = self.pos.max(st.rv);
                let asked = st.bookmark_epoch != self.bookmark_epoch;
                self.bookmark_epoch = st.bookmark_epoch;
                if self.bookmarks && (asked || (idle_bookmark && out.is_empty())) {
                    out.push_str(&self.sel.bookmark_line(self.pos, false));
                    out.push('\n');
                }
                idle_bookmark = false;
                cut
            };
            if cut {
                // An error from the body makes hyper drop the connection
                // mid-body: the client sees a truncated chunked stream.
                let _ = tx
                    .send(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "watch cut by the test",
                    )))
                    .await;
                return;
            }
            if !out.is_empty() {
                if tx
                    .send(Ok(Bytes::from(std::mem::take(&mut out))))
                    .await
                    .is_err()
                {
                    return;
                }
                last_sent = Instant::now();
            }
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = tx.closed() => return,
                _ = until_deadline => return,
                _ = tokio::time::sleep_until(last_sent + BOOKMARK_EVERY), if self.bookmarks => idle_bookmark = true,
            }
        }
    }
}
