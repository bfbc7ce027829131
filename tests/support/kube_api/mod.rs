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
//! | `secrets`           | `v1`                       | namespaced | no        | no         |
//! | `configmaps`        | `v1`                       | namespaced | no        | no         |
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
//!   `!k`), `fieldSelector` (`=`/`==`/`!=` on `metadata.name`,
//!   `metadata.namespace`, and for Secrets `type`, an absent one selecting
//!   as `Opaque`; terms joined by `,`; any other field is a 400 as on the
//!   real server, e.g. `type` on ConfigMaps), `limit` and `continue`. Items carry `apiVersion`/`kind` (the real server omits
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
//! - Secrets are stored as given: `stringData` is not merged into `data`,
//!   `type` is not defaulted to `Opaque`, and a `kubernetes.io/tls` Secret
//!   without `tls.crt` and `tls.key` is not refused (the real server does
//!   all three): tests send `data`, base64, and both keys.
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
//!
//! # Files
//!
//! - here: the [`KubeApi`] handle, [`start`] and the accept loop.
//! - `controls`: the test controls on [`KubeApi`] (apply, status, delete,
//!   cut, compact, bookmark, outage, waits, logs).
//! - `builders`: [`route`], [`service`], [`endpoint_slice`], [`lease`],
//!   [`namespace`], [`secret`], [`tls_secret`], [`config_map`]: typical
//!   objects of each kind.
//! - `kinds`: the table above, one entry per resource.
//! - `state`: stored objects, the global resourceVersion, the event
//!   history, and every change to them.
//! - `object`: metadata access, generation's spec part, merge patch.
//! - `selectors`: label/field selectors and query strings.
//! - `request`: one HTTP request: record, outage, path → target, method → verb.
//! - `read`: GET and LIST (pagination, continue tokens).
//! - `write`: POST, PUT, PATCH (merge, apply), DELETE.
//! - `watch`: watch streams, bookmarks, 410 Expired.
//! - `failure`: the `Status` bodies of failed requests.

mod builders;
mod controls;
mod failure;
mod kinds;
mod object;
mod read;
mod request;
mod selectors;
mod state;
mod watch;
mod write;

// Each test binary uses its own part of the harness.
#[allow(unused_imports)]
pub use builders::{
    config_map, endpoint_slice, lease, namespace, route, secret, service, tls_secret,
};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use state::{Shared, State};

/// How long a bookmark-enabled watch stays silent before the double sends a
/// BOOKMARK on its own.
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

// === the double ===

/// The Kubernetes API double: a running server plus the controls tests use
/// to change the world and observe what the controller did. Cloning shares
/// the server; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct KubeApi {
    /// The state the server and its watches serve from.
    shared: Arc<Shared>,
    /// Where the server listens.
    addr: SocketAddr,
    /// Keeps the server running while any clone lives.
    _server: Arc<AbortOnDrop>,
}

/// Aborts the server task (and with it every connection) when the last
/// [`KubeApi`] clone goes.
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
        changed: tokio::sync::watch::Sender::new(0),
        uid_seed: seed,
    });
    let server = tokio::spawn(serve(listener, shared.clone()));
    KubeApi {
        shared,
        addr,
        _server: Arc::new(AbortOnDrop(server)),
    }
}

/// Accepts connections until the server task is aborted, serving each
/// with HTTP/1.1.
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
            let svc = service_fn(move |req| request::handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
