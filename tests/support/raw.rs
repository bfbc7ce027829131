//! `RawConn`: a plain TCP client for requests hyper's client will not send
//! (bad framing, bad Host, oversized heads, slow or silent clients),
//! `raw_status` for the one-shot case, and the HTTP/2 preface and frames
//! (`H2_PREFACE`, `h2_frame`) for HTTP/2 written by hand.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::within;

/// One client connection written and read byte by byte.
pub struct RawConn {
    stream: TcpStream,
    /// Bytes read but not yet handed out.
    buf: Vec<u8>,
}

/// A response head as read off the wire.
#[derive(Debug, Clone)]
pub struct RawHead {
    /// The status code.
    pub status: u16,
    /// The whole head, status line and headers, as text.
    pub text: String,
}

impl RawHead {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = within("raw connect", TcpStream::connect(addr))
            .await
            .expect("raw connect");
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes`; a write error (the peer closed) is returned, not a panic.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one response head; `None` if the peer closed first.
    pub async fn head(&mut self) -> Option<RawHead> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                let text = String::from_utf8_lossy(&head).into_owned();
                let status = text.split(' ').nth(1)?.parse().ok()?;
                return Some(RawHead { status, text });
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }

    /// Reads exactly `n` more bytes (a body of known length); `None` if the
    /// peer closed first.
    pub async fn body(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await == 0 {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Reads until the peer closes, returning everything not yet handed out.
    pub async fn rest(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Waits until the peer closes (or resets) the connection; panics if
    /// it is still open after the harness `DEADLINE` without sending anything.
    pub async fn wait_closed(&mut self) {
        self.rest().await;
    }

    /// Reads once more into the buffer; 0 when the peer closed or reset.
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match within("raw read", self.stream.read(&mut chunk)).await {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(_) => 0,
        }
    }
}

/// Sends `request` on a new connection and returns the response status, or
/// `None` if the proxy closed without answering. Panics after the harness `DEADLINE`.
pub async fn raw_status(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut conn = RawConn::connect(addr).await;
    conn.send(request).await.ok()?;
    conn.head().await.map(|h| h.status)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2 SETTINGS frame type.
pub const H2_SETTINGS: u8 = 0x4;

/// One HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
pub fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}
