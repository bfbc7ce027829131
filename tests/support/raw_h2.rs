//! `RawH2Server`: a tiny HTTP/2 backend speaking raw frames over TCP, for
//! misbehaviour a real server will not script (GOAWAY while streams are
//! open, refused or reset streams, a connection cut mid-response).
//!
//! Each accepted connection reads the client preface, sends an empty
//! SETTINGS, and is handed as a [`RawH2Conn`] to the test's script, which
//! reads requests and answers them frame by frame. SETTINGS and PING are
//! acknowledged by the reader itself. Header blocks are not decoded: a
//! request is its stream id, and every answer is `:status 200` (HPACK
//! static index 8, byte `0x88`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{h2_frame, Backend, H2_PREFACE, H2_SETTINGS};

/// DATA frame type.
pub const H2_DATA: u8 = 0x0;
/// HEADERS frame type.
pub const H2_HEADERS: u8 = 0x1;
/// RST_STREAM frame type.
pub const H2_RST_STREAM: u8 = 0x3;
/// PING frame type.
pub const H2_PING: u8 = 0x6;
/// GOAWAY frame type.
pub const H2_GOAWAY: u8 = 0x7;
/// END_STREAM flag (DATA, HEADERS); also ACK on SETTINGS and PING.
pub const END_STREAM: u8 = 0x1;
/// ACK flag (SETTINGS, PING).
pub const ACK: u8 = 0x1;
/// END_HEADERS flag (HEADERS).
pub const END_HEADERS: u8 = 0x4;

/// Error code NO_ERROR (GOAWAY for a graceful shutdown).
pub const NO_ERROR: u32 = 0x0;
/// Error code INTERNAL_ERROR.
pub const INTERNAL_ERROR: u32 = 0x2;
/// Error code REFUSED_STREAM: the stream was not processed.
pub const REFUSED_STREAM: u32 = 0x7;

/// The header block of a `:status 200` response.
const STATUS_200: &[u8] = &[0x88];

/// One frame as read.
#[derive(Debug)]
pub struct RawFrame {
    /// The frame type.
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream id.
    pub stream: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct RawStats {
    /// Requests whose HEADERS arrived, on every connection.
    requests: AtomicUsize,
    /// Connections whose script has ended (and whose socket is dropped).
    ended: AtomicUsize,
}

/// A raw-frame HTTP/2 backend; each connection runs the script given to
/// [`RawH2Server::start`].
pub struct RawH2Server {
    /// The listening backend (its address and accepted connections).
    pub backend: Backend,
    stats: Arc<RawStats>,
}

impl RawH2Server {
    /// Listens on `127.0.0.1:0`; each connection, once its preface is read
    /// and SETTINGS sent, goes to `script`.
    pub async fn start<F, Fut>(script: F) -> RawH2Server
    where
        F: Fn(RawH2Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stats = Arc::new(RawStats::default());
        let accepted = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let shared = stats.clone();
        let backend = Backend::raw("raw-h2", move |tcp| {
            let index = accepted.fetch_add(1, Ordering::SeqCst);
            let (stats, script) = (shared.clone(), script.clone());
            async move {
                if let Some(conn) = RawH2Conn::accept(tcp, index, stats.clone()).await {
                    script(conn).await;
                }
                stats.ended.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
        RawH2Server { backend, stats }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.backend.connections()
    }

    /// Requests (HEADERS frames opening a stream) received so far.
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// Connections whose script has ended, their socket closed.
    pub fn ended(&self) -> usize {
        self.stats.ended.load(Ordering::SeqCst)
    }
}

/// One server connection, driven by a test's script. Writes that fail
/// (the proxy has gone) are ignored: the next read then ends. Reading
/// ([`RawH2Conn::frame`], [`RawH2Conn::request`]) is cancel-safe, so a
/// script may race it against a signal in `tokio::select!`.
pub struct RawH2Conn {
    tcp: TcpStream,
    /// Bytes read and not yet taken as frames.
    buf: Vec<u8>,
    /// The connection's place in accept order, from 0.
    pub index: usize,
    stats: Arc<RawStats>,
    /// Streams whose request has begun but not ended.
    open: HashSet<u32>,
    /// Requests begun on this connection.
    requests: usize,
}

impl RawH2Conn {
    /// Reads the client preface and sends an empty SETTINGS.
    async fn accept(mut tcp: TcpStream, index: usize, stats: Arc<RawStats>) -> Option<RawH2Conn> {
        let mut preface = [0u8; 24];
        tcp.read_exact(&mut preface).await.ok()?;
        if preface != H2_PREFACE {
            return None;
        }
        tcp.write_all(&h2_frame(H2_SETTINGS, 0, 0, &[]))
            .await
            .ok()?;
        Some(RawH2Conn {
            tcp,
            buf: Vec::new(),
            index,
            stats,
            open: HashSet::new(),
            requests: 0,
        })
    }

    /// Requests begun (HEADERS received) on this connection.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// The next frame, or `None` once the connection ends. SETTINGS and
    /// PING are acknowledged here (and still returned); a frame is lost
    /// only if cancelled while its acknowledgement is written.
    pub async fn frame(&mut self) -> Option<RawFrame> {
        let frame = loop {
            if let Some(frame) = self.parse() {
                break frame;
            }
            // Cancel-safe: bytes read stay in `buf`.
            if self.tcp.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        };
        let unacked = frame.flags & ACK == 0;
        match frame.kind {
            H2_SETTINGS if unacked => self.send(&h2_frame(H2_SETTINGS, ACK, 0, &[])).await,
            H2_PING if unacked => self.send(&h2_frame(H2_PING, ACK, 0, &frame.payload)).await,
            _ => {}
        }
        Some(frame)
    }

    /// Takes a whole frame off the front of `buf`, if there is one.
    fn parse(&mut self) -> Option<RawFrame> {
        let head: [u8; 9] = self.buf.get(..9)?.try_into().ok()?;
        let end = 9 + u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let payload = self.buf.get(9..end)?.to_vec();
        self.buf.drain(..end);
        Some(RawFrame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// Waits until a request has arrived whole (its END_STREAM), and
    /// gives its stream id; `None` once the connection ends. Cancel-safe
    /// (see [`RawH2Conn::frame`]).
    pub async fn request(&mut self) -> Option<u32> {
        loop {
            let frame = self.frame().await?;
            let ends = frame.flags & END_STREAM != 0;
            match frame.kind {
                H2_HEADERS if self.open.insert(frame.stream) => {
                    self.requests += 1;
                    self.stats.requests.fetch_add(1, Ordering::SeqCst);
                }
                H2_HEADERS | H2_DATA => {}
                _ => continue,
            }
            if ends && self.open.remove(&frame.stream) {
                return Some(frame.stream);
            }
        }
    }

    /// Answers every request `200` with no body until the connection ends.
    pub async fn serve(mut self) {
        while let Some(stream) = self.request().await {
            self.ok(stream).await;
        }
    }

    /// Reads (and acknowledges) frames until the connection ends.
    pub async fn drain(mut self) {
        while self.frame().await.is_some() {}
    }

    /// Sends FIN (after what was written), then reads until the proxy
    /// closes its side too: dropping a socket with unread bytes would send
    /// RST, and the proxy could lose what was written before it.
    pub async fn close(mut self) {
        let _ = self.tcp.shutdown().await;
        while self.frame().await.is_some() {}
    }

    /// Writes `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.tcp.write_all(bytes).await;
    }

    /// A whole `200` response with no body.
    pub async fn ok(&mut self, stream: u32) {
        let flags = END_HEADERS | END_STREAM;
        self.send(&h2_frame(H2_HEADERS, flags, stream, STATUS_200))
            .await;
    }

    /// A `200` response head; its body is to follow.
    pub async fn head(&mut self, stream: u32) {
        self.send(&h2_frame(H2_HEADERS, END_HEADERS, stream, STATUS_200))
            .await;
    }

    /// A DATA frame, ending the stream when `end`.
    pub async fn data(&mut self, stream: u32, bytes: &[u8], end: bool) {
        let flags = if end { END_STREAM } else { 0 };
        self.send(&h2_frame(H2_DATA, flags, stream, bytes)).await;
    }

    /// RST_STREAM with `code`.
    pub async fn reset(&mut self, stream: u32, code: u32) {
        self.send(&h2_frame(H2_RST_STREAM, 0, stream, &code.to_be_bytes()))
            .await;
    }

    /// GOAWAY: streams above `last_stream` were not processed.
    pub async fn goaway(&mut self, last_stream: u32, code: u32) {
        let mut payload = last_stream.to_be_bytes().to_vec();
        payload.extend_from_slice(&code.to_be_bytes());
        self.send(&h2_frame(H2_GOAWAY, 0, 0, &payload)).await;
    }
}
