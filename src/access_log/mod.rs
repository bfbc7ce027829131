//! The access log: one JSON line per request, written by one writer
//! thread fed through a bounded channel.
//!
//! Owns: [`AccessLog`] (the handle requests send [`Entry`]s through),
//! where lines go ([`Destination`]), the writer thread and the line
//! format (`line`). Must not: make a request wait. When the channel is
//! full (the writer is behind, or its output blocks), the line is
//! dropped and counted; formatting happens on the writer thread, so a
//! request only moves an [`Entry`] of cheap clones into the channel.

mod line;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use prometheus_client::metrics::counter::Counter;

pub use line::{Clock, Entry};

/// Lines that may wait for the writer before new ones are dropped.
pub const DEFAULT_CAPACITY: usize = 8192;

/// Where the access log goes (`--access-log off|stdout|stderr|FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error (beside the process's own logs).
    Stderr,
    /// Appended to this file (created if missing).
    File(PathBuf),
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "" => return Err("an empty access-log destination".into()),
            "off" => Destination::Off,
            "stdout" | "-" => Destination::Stdout,
            "stderr" => Destination::Stderr,
            path => Destination::File(path.into()),
        })
    }
}

/// The handle requests log through; cheap to clone.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<Entry>,
    /// Lines dropped because the channel was full.
    dropped: Counter,
    /// Whether the query string is logged as sent; by default it is
    /// replaced by `?<redacted>` (queries carry tokens).
    pub log_query: bool,
}

impl AccessLog {
    /// Starts the writer thread for `destination`; `None` for
    /// [`Destination::Off`]. `dropped` counts lines the channel had no
    /// room for.
    pub fn open(destination: &Destination, dropped: Counter) -> io::Result<Option<AccessLog>> {
        let out: Box<dyn Write + Send> = match destination {
            Destination::Off => return Ok(None),
            Destination::Stdout => Box::new(io::stdout()),
            Destination::Stderr => Box::new(io::stderr()),
            Destination::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        AccessLog::with_writer(out, DEFAULT_CAPACITY, dropped).map(Some)
    }

    /// Starts a writer thread writing to `out`, with room for `capacity`
    /// lines in the channel (tests inject writers that block).
    pub fn with_writer(
        out: Box<dyn Write + Send>,
        capacity: usize,
        dropped: Counter,
    ) -> io::Result<AccessLog> {
        let (tx, rx) = mpsc::sync_channel(capacity);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&rx, out))?;
        Ok(AccessLog {
            tx,
            dropped,
            log_query: false,
        })
    }

    /// Logs query strings as sent when `log_query` (`--access-log-query`).
    pub fn log_query(mut self, log_query: bool) -> Self {
        self.log_query = log_query;
        self
    }

    /// Hands `entry` to the writer; never waits: with the channel full the
    /// line is dropped and counted.
    pub fn send(&self, entry: Entry) {
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// Most bytes formatted before a write: a burst is written in a few
/// calls, not one per line.
const BATCH_BYTES: usize = 64 * 1024;
/// How long the writer lets lines gather after a write: while it sleeps
/// (rather than waits on the channel) a request's send wakes no thread,
/// and a busy proxy's lines go out in one write per pause. At most this
/// late, a line is written.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// The writer thread: formats what arrives, in batches, until every
/// handle is gone. A failing output loses those lines (logged once).
fn write_lines(rx: &Receiver<Entry>, mut out: Box<dyn Write + Send>) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    let mut clock = Clock::default();
    let mut failed = false;
    while let Ok(entry) = rx.recv() {
        entry.write_json(&mut buf, &mut clock);
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(entry) => entry.write_json(&mut buf, &mut clock),
                Err(_) => break,
            }
        }
        if let Err(err) = out.write_all(&buf).and_then(|()| out.flush()) {
            if !failed {
                tracing::warn!(error = %err, "cannot write the access log");
                failed = true;
            }
        }
        buf.clear();
        std::thread::sleep(GATHER);
    }
}

#[cfg(test)]
mod tests;
