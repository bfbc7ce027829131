//! Polling the route files: a new [`SourceUpdate`] on the channel whenever
//! their contents change and the change has settled (the same on two reads
//! in a row, [`SETTLE`] apart). Reading and parsing run in
//! `spawn_blocking`; only the files that changed are parsed again.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, warn};

use super::{Files, ParseCache, Reader};
use crate::snapshot::{SourceUpdate, TlsSettings};

/// How long after a read that saw a change the files are read again to
/// confirm it (at most the interval): long enough for an editor or
/// `kubectl cp` to finish writing, short enough that an edit is served
/// well within a second.
pub const SETTLE: Duration = Duration::from_millis(100);

/// How often every file is read whatever its look (see [`Reader`]).
pub const FULL_READ: Duration = Duration::from_secs(60);

/// The file source: a path, polled every interval.
#[derive(Debug)]
pub struct FileSource {
    /// A YAML file, or a directory of them.
    path: PathBuf,
    /// How often `path` is read again.
    interval: Duration,
    /// The listener's TLS settings, put in every snapshot.
    tls: TlsSettings,
    /// The contents last sent, to tell a change.
    last: Files,
    /// A change read once: it is sent when the next read is the same (a
    /// file caught mid-write is not).
    pending: Option<Files>,
    /// The parse of each file, so an edit parses only the file edited.
    cache: ParseCache,
    /// The text of each file, so a file that looks unchanged is not read.
    reader: Reader,
    /// When every file was last read in full.
    full_read: tokio::time::Instant,
}

impl FileSource {
    /// Reads and parses `path` once: the source and its first update. An
    /// unreadable path is an error (start-up says so instead of serving
    /// nothing); later read failures only keep the last table.
    pub async fn open(
        path: PathBuf,
        interval: Duration,
        tls: TlsSettings,
    ) -> io::Result<(FileSource, SourceUpdate)> {
        let at = path.clone();
        let settings = tls.clone();
        let (last, first, cache, reader) = tokio::task::spawn_blocking(move || {
            let mut reader = Reader::default();
            let files = reader.read(&at, false)?;
            let mut cache = ParseCache::default();
            let first = cache.update(&files, &settings);
            Ok::<_, io::Error>((files, first, cache, reader))
        })
        .await
        .map_err(io::Error::other)??;
        let source = FileSource {
            path,
            interval,
            tls,
            last,
            pending: None,
            cache,
            reader,
            full_read: tokio::time::Instant::now(),
        };
        Ok((source, first))
    }

    /// Reads the files every interval until `shutdown` resolves, sending an
    /// update on `updates` each time their contents change and two reads in
    /// a row agree (`settle`: a change seen is read again [`SETTLE`] later,
    /// so it is served then, never half-written). A path that cannot be
    /// read is logged once until it can again.
    pub async fn run(
        mut self,
        updates: watch::Sender<Option<Arc<SourceUpdate>>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut read_failing = false;
        tokio::pin!(shutdown);
        loop {
            let wait = match self.pending {
                Some(_) => SETTLE.min(self.interval),
                None => self.interval,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
            match self.read_once().await {
                Ok(Ok(settled)) => {
                    read_failing = false;
                    if let Some(parsed) = settled {
                        updates.send_replace(Some(Arc::new(parsed)));
                    }
                }
                Ok(Err(err)) => {
                    if !read_failing {
                        warn!(error = %err, "cannot read routes; keeping the last good table");
                    }
                    read_failing = true;
                }
                Err(err) => error!(error = %err, "reading routes failed"),
            }
        }
    }

    /// One read of the files (in `spawn_blocking`): the update to send if
    /// a change has settled.
    async fn read_once(
        &mut self,
    ) -> Result<io::Result<Option<SourceUpdate>>, tokio::task::JoinError> {
        let path = self.path.clone();
        let last = std::mem::take(&mut self.last);
        let mut pending = self.pending.take();
        let mut cache = std::mem::take(&mut self.cache);
        let mut reader = std::mem::take(&mut self.reader);
        let tls = self.tls.clone();
        let trust_looks = self.full_read.elapsed() < FULL_READ;
        if !trust_looks {
            self.full_read = tokio::time::Instant::now();
        }
        let (last, pending, cache, reader, settled) = tokio::task::spawn_blocking(move || {
            let settled = reader.read(&path, trust_looks).map(|files| {
                // Parsed only when a change has settled.
                settle(files, &last, &mut pending).map(|files| {
                    let parsed = cache.update(&files, &tls);
                    (files, parsed)
                })
            });
            (last, pending, cache, reader, settled)
        })
        .await?;
        (self.last, self.pending, self.cache, self.reader) = (last, pending, cache, reader);
        Ok(settled.map(|settled| {
            settled.map(|(files, parsed)| {
                self.last = files;
                parsed
            })
        }))
    }
}

/// What to apply after reading `read`: `None` until the files read the
/// same twice in a row (`pending` holds the first read) and differ from
/// `applied`. A file that went empty keeps its applied contents: it is
/// being rewritten (truncated, then written), and serving no routes in
/// between would turn its hosts into 404s. To remove every route of a
/// file, delete it or leave a comment in it.
pub(super) fn settle(read: Files, applied: &Files, pending: &mut Option<Files>) -> Option<Files> {
    let read = hold_emptied(read, applied);
    if read == *applied {
        *pending = None;
        return None;
    }
    if pending.as_ref() == Some(&read) {
        *pending = None;
        return Some(read);
    }
    *pending = Some(read);
    None
}

/// `read`, with each file that is now empty but was not in `applied` given
/// its applied contents back.
fn hold_emptied(mut read: Files, applied: &Files) -> Files {
    let blank = |text: &str| text.trim().is_empty();
    for (path, text) in &mut read.0 {
        if !matches!(text, Ok(now) if blank(now)) {
            continue;
        }
        if let Some((_, Ok(before))) = applied.0.iter().find(|(p, _)| p == path) {
            if !blank(before) {
                *text = Ok(before.clone());
            }
        }
    }
    read
}
