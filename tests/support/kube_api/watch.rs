//! WATCH: a chunked stream of newline-delimited `{"type","object"}`
//! events after a resourceVersion, first replayed from the event history,
//! then live; initial ADDED events (and the `initial-events-end` BOOKMARK)
//! for a watch without one; bookmarks on request and when idle; 410
//! `Expired` framed as an ERROR event; the stream cut on
//! [`super::KubeApi::cut_watches`] and ended at `timeoutSeconds`.
//!
//! Owns watch streams and their event framing, including how a filtered
//! watch sees an object entering or leaving its selection. Must not change
//! stored objects.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::failure::{failure, Failure};
use super::object::meta_mut;
use super::request::{raw_response, ApiBody, Target};
use super::selectors::{Query, Selection};
use super::state::{Event, Shared, State};
use super::BOOKMARK_EVERY;

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

/// A watch request's options, from its query string.
struct WatchParams {
    /// `allowWatchBookmarks`.
    bookmarks: bool,
    /// `sendInitialEvents`.
    initial_events: bool,
    /// `timeoutSeconds`, if positive.
    timeout: Option<Duration>,
    /// Stream events after this resourceVersion; `None` (absent, `0`, or
    /// with `sendInitialEvents`) = start with the current objects.
    from: Option<u64>,
}

impl WatchParams {
    /// Reads the options; a resourceVersion that is not a number is a 400.
    fn parse(q: &Query) -> Result<WatchParams, Failure> {
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
        Ok(WatchParams {
            bookmarks,
            initial_events,
            timeout,
            from: if initial_events { None } else { from },
        })
    }
}

/// Starts a watch: answers 200 with a body its own task feeds until the
/// client goes, the watch is cut, or `timeoutSeconds` passes.
pub(super) fn start(
    shared: &Arc<Shared>,
    t: &Target,
    q: &Query,
) -> Result<Response<ApiBody>, Failure> {
    let sel = Selection::new(t.kind, t.ns.clone(), q)?;
    let params = WatchParams::parse(q)?;
    let mut st = shared.lock();
    if let Some(n) = params.from {
        if n < st.compacted {
            return Ok(raw_response(200, expired_line(n, st.compacted)));
        }
    }
    let (initial, pos) = match params.from {
        Some(n) => (String::new(), n),
        None => (initial_lines(&sel, &st, &params), st.rv),
    };
    st.watches += 1;
    let cut_epoch = st.cut_epoch;
    let bookmark_epoch = st.bookmark_epoch;
    drop(st);
    let (tx, rx) = mpsc::channel(16);
    let watch = Watch {
        shared: shared.clone(),
        sel,
        bookmarks: params.bookmarks,
        pos,
        cut_epoch,
        bookmark_epoch,
    };
    tokio::spawn(watch.run(initial, params.timeout, tx));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(WatchBody { rx }.boxed())
        .expect("watch response"))
}

/// The whole body of a watch from `n`, older than the compaction point:
/// one ERROR event carrying a 410 `Expired` `Status`.
fn expired_line(n: u64, compacted: u64) -> String {
    let line = json!({
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("too old resource version: {n} ({compacted})"),
            "reason": "Expired",
            "code": 410,
        },
    });
    format!("{line}\n")
}

/// What a watch without a resourceVersion starts with: ADDED for every
/// selected object, then (with `sendInitialEvents` and bookmarks) the
/// `initial-events-end` BOOKMARK.
fn initial_lines(sel: &Selection, st: &State, params: &WatchParams) -> String {
    let mut initial = String::new();
    for (_, obj) in sel.current(st) {
        initial.push_str(&json!({"type": "ADDED", "object": obj}).to_string());
        initial.push('\n');
    }
    if params.initial_events && params.bookmarks {
        initial.push_str(&sel.bookmark_line(st.rv, true));
        initial.push('\n');
    }
    initial
}

/// One open watch stream, run as its own task.
struct Watch {
    shared: Arc<Shared>,
    /// What this watch streams.
    sel: Selection,
    /// `allowWatchBookmarks`.
    bookmarks: bool,
    /// Every event up to this revision has been considered.
    pos: u64,
    /// The cut epoch at start: the watch ends when the state's moves on.
    cut_epoch: u64,
    /// The last bookmark epoch seen: a newer one asks for a BOOKMARK.
    bookmark_epoch: u64,
}

impl Watch {
    /// Sends `out` (the initial events), then every new event and bookmark
    /// as it happens, until the client goes, the watch is cut, or `timeout`
    /// passes.
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
            let cut = self.catch_up(&mut out, idle_bookmark);
            idle_bookmark = false;
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

    /// Appends to `out` the lines for every event since the last call, and
    /// a BOOKMARK if one was asked for (or the watch sat idle and has
    /// nothing else to send); returns whether the watch has been cut.
    fn catch_up(&mut self, out: &mut String, idle_bookmark: bool) -> bool {
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
        cut
    }
}

// === impl Selection (watch framing) ===

impl Selection {
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

    /// A BOOKMARK event line (without newline) at revision `rv`, marked as
    /// the end of the initial events when `initial_end`.
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
