//! HTTP/1.1 connections: the handshake, and the idle ones of an endpoint
//! on a LIFO stack (the most recently used is the most likely alive and
//! warm; the oldest age out).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::body::RequestBody;
use super::connect::Io;
use super::{ConnectError, Upstreams};

/// The sending side of one HTTP/1.1 connection; its connection task runs
/// on its own and ends when this is dropped (or the backend closes).
pub(super) type Sender = http1::SendRequest<RequestBody>;

/// An endpoint's idle HTTP/1.1 connections, newest last. The lock is
/// held for a push or a pop, never across an await.
#[derive(Debug, Default)]
pub(super) struct Idle {
    stack: Mutex<Vec<(Sender, Instant)>>,
}

impl Idle {
    /// The newest idle connection that is still open and not idle past
    /// `timeout`; older stale ones met on the way are dropped (closed).
    pub(super) fn pop(&self, timeout: Duration) -> Option<Sender> {
        let mut stack = self.stack.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((tx, since)) = stack.pop() {
            if !tx.is_closed() && since.elapsed() < timeout {
                return Some(tx);
            }
        }
        None
    }

    /// Puts a connection whose exchange ended back on top; past `max`
    /// the oldest is closed.
    pub(super) fn push(&self, tx: Sender, max: usize) {
        if tx.is_closed() || max == 0 {
            return;
        }
        let mut stack = self.stack.lock().unwrap_or_else(|e| e.into_inner());
        if stack.len() >= max {
            stack.remove(0);
        }
        stack.push((tx, Instant::now()));
    }

    /// Closes connections that are closed by the backend or idle past
    /// `timeout`, so none lingers half-closed.
    pub(super) fn sweep(&self, timeout: Duration) {
        let mut stack = self.stack.lock().unwrap_or_else(|e| e.into_inner());
        stack.retain(|(tx, since)| !tx.is_closed() && since.elapsed() < timeout);
    }
}

/// The HTTP/1.1 handshake on a new connection; its connection task is
/// spawned (with upgrades, for WebSocket).
pub(super) async fn handshake(up: &Upstreams, io: Io) -> Result<Sender, ConnectError> {
    let (tx, conn) = up
        .h1
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Handshake)?;
    let open = up.opened(false);
    tokio::spawn(async move {
        let _open = open;
        if let Err(err) = conn.with_upgrades().await {
            debug!(error = %err, "backend connection closed with an error");
        }
    });
    Ok(tx)
}
