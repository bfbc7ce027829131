//! Polling the route files: a new [`SourceUpdate`] on the channel whenever
//! their contents change. Reading and parsing run in `spawn_blocking`.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, warn};

use super::{read, update, Files};
use crate::snapshot::SourceUpdate;

/// The file source: a path, polled every interval.
#[derive(Debug)]
pub struct FileSource {
    /// A YAML file, or a directory of them.
    path: PathBuf,
    /// How often `path` is read again.
    interval: Duration,
    /// The contents last sent, to tell a change.
    last: Files,
}

impl FileSource {
    /// Reads and parses `path` once: the source and its first update. An
    /// unreadable path is an error (start-up says so instead of serving
    /// nothing); later read failures only keep the last table.
    pub async fn open(path: PathBuf, interval: Duration) -> io::Result<(FileSource, SourceUpdate)> {
        let at = path.clone();
        let (last, first) = tokio::task::spawn_blocking(move || {
            let files = read(&at)?;
            let first = update(&files);
            Ok::<_, io::Error>((files, first))
        })
        .await
        .map_err(io::Error::other)??;
        let source = FileSource {
            path,
            interval,
            last,
        };
        Ok((source, first))
    }

    /// Reads the files every interval until `shutdown` resolves, sending an
    /// update on `updates` each time their contents change. A path that
    /// cannot be read is logged once until it can again.
    pub async fn run(
        mut self,
        updates: watch::Sender<Option<Arc<SourceUpdate>>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut read_failing = false;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = &mut shutdown => return,
            }
            let path = self.path.clone();
            let last = self.last.clone();
            let read = tokio::task::spawn_blocking(move || {
                let files = read(&path)?;
                // Parsed only when something changed.
                let parsed = (files != last).then(|| update(&files));
                Ok::<_, io::Error>((files, parsed))
            })
            .await;
            match read {
                Ok(Ok((files, parsed))) => {
                    read_failing = false;
                    if let Some(parsed) = parsed {
                        self.last = files;
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
}
