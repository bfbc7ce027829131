//! Hostile input the proxy already withstands, kept as regression tests:
//! request smuggling through framing tricks, oversized request parts, and
//! slow clients, HTTP/2 floods (rapid reset, CONTINUATION, HPACK bombs, SETTINGS and PING
//! floods). Every attack is bounded in bytes and time, and every test ends
//! by showing an honest client is still served.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Response, StatusCode};
use http_body_util::BodyExt;
use support::*;
use switchyard::proxy::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The paths a backend was asked for, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A proxy in front of one backend that records every path it is asked
/// for (reading each body to its end, so its own framing stays in step).
/// Only `/a` and `/honest` are routed: the proxy answers anything else
/// itself (404), so a backend that sees another path was reached past the
/// proxy's routing.
async fn recording_proxy() -> (Backend, Seen, Proxy) {
    recording_proxy_serving(ServeOptions::default()).await
}

/// [`recording_proxy`] with these serving options.
async fn recording_proxy_serving(serve: ServeOptions) -> (Backend, Seen, Proxy) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let backend = Backend::http("rec-1", move |req| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(req.uri().path().to_owned());
            let _ = req.into_body().collect().await;
            Response::new(full("ok"))
        }
    })
    .await;
    let routes = yaml(&[route("rec")
        .rule(Rule::prefix("/a").backend(&backend))
        .rule(Rule::prefix("/honest").backend(&backend))]);
    let proxy = Proxy::start_serving(RoutesLayout::File(&routes), serve).await;
    (backend, seen, proxy)
}

/// Asserts the proxy still serves an honest request.
async fn still_serves(proxy: &Proxy) {
    let reply = proxy.get("www.rec.test", "/honest").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

// === request smuggling (HTTP/1.1 framing) ===

/// Framing attacks, each followed on the same connection by `GET
/// /smuggled` (which the proxy does not route), and the one answer the
/// proxy gives before it closes the connection. Whether the proxy reads
/// the smuggled bytes as a body or refuses the request, the backend must
/// never see `/smuggled`: that would be a request that went past the
/// proxy's rules.
const FRAMING_ATTACKS: &[(&str, &str, u16)] = &[
    // Content-Length and chunked: read as chunked (RFC 9112 §6.3), the
    // smuggled bytes are the next request's, and the connection closes
    // after this answer.
    (
        "CL.TE",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        200,
    ),
    (
        "TE.CL",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
        200,
    ),
    (
        "two different Content-Lengths",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n",
        400,
    ),
    (
        "obfuscated TE (xchunked)",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n",
        400,
    ),
    (
        "TE with space before the colon",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n",
        400,
    ),
    (
        "TE chunked then identity",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunked not last",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "obs-fold continuation of TE",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 0\r\n\r\n",
        400,
    ),
    (
        "bare LF line endings",
        "POST /a HTTP/1.1\nHost: x.test\nTransfer-Encoding: chunked\nContent-Length: 0\n\n0\n\n",
        400,
    ),
    (
        "chunk size overflow",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nx\r\n0\r\n\r\n",
        400,
    ),
    (
        "signed Content-Length",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nContent-Length: +0\r\n\r\n",
        400,
    ),
    (
        "chunk extension with a bare LF",
        "POST /a HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\n0;ext\n\r\n",
        400,
    ),
    (
        "HTTP/1.0 with chunked",
        "POST /a HTTP/1.0\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
];

/// `Connection: close` makes the proxy end the connection once it has
/// answered this request, if it parses it as one.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_framing_attack_smuggles_a_request_to_the_backend() {
    let (_backend, seen, proxy) = recording_proxy().await;
    for (name, attack, status) in FRAMING_ATTACKS {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.send(format!("{attack}{SMUGGLED}").as_bytes())
            .await
            .expect(name);
        let head = conn.head().await;
        assert_eq!(head.map(|h| h.status), Some(*status), "{name}");
        // One answer, then the connection ends (no hang, no second answer).
        let rest = String::from_utf8_lossy(&conn.rest().await).into_owned();
        assert!(
            !rest.contains("HTTP/1.1 "),
            "{name}: a second answer: {rest}"
        );
        still_serves(&proxy).await;
        let seen = seen.lock().unwrap();
        assert!(
            !seen
                .iter()
                .any(|p| p.contains("smuggled") || p.contains("SMUGGLED")),
            "{name}: the backend saw a smuggled request: {seen:?}"
        );
    }
}

// === slow clients ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_trickling_its_head_is_cut_off_at_the_header_timeout() {
    let (_backend, _seen, proxy) = recording_proxy_serving(ServeOptions {
        client_header_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let (read, write) = tcp.into_split();
    trickle_until_cut(read, write, b"GET /a HTTP/1.1\r\nHost: x.test\r\nX-Slow: ").await;
    still_serves(&proxy).await;
}

/// hyper's header-read timer covers every head of a kept-alive
/// connection, not only the first (which the accept loop's own deadline
/// also covers): the idle timeout (75 s) would otherwise be the only
/// bound on a second head trickled forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_trickling_its_second_head_on_a_kept_alive_connection_is_cut_off() {
    let (_backend, seen, proxy) = recording_proxy_serving(ServeOptions {
        client_header_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let (read, write) = kept_alive(&proxy, Duration::ZERO).await;
    assert_eq!(*seen.lock().unwrap(), ["/a/first"]);
    let head = b"GET /a/second HTTP/1.1\r\nHost: www.rec.test\r\nX-Slow: ";
    trickle_until_cut(read, write, head).await;
    still_serves(&proxy).await;
}

/// hyper's header deadline is looked at only when the connection is
/// polled; a client that sends part of its next head and then nothing
/// (no byte to wake the connection) is still cut at the header timeout,
/// not left to the idle timeout (75 s): the connection's quiet timer polls
/// it several times per header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_head_left_unfinished_on_a_kept_alive_connection_is_cut_at_the_header_timeout() {
    let (_backend, seen, proxy) = recording_proxy_serving(ServeOptions {
        client_header_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    // Busy past the first header timeout from accept (a deadline of its
    // own that would wake the connection too), so that only the quiet
    // timer's ticks can.
    let (mut read, mut write) = kept_alive(&proxy, Duration::from_millis(400)).await;
    write
        .write_all(b"GET /a/second HTTP/1.1\r\nHost: www.rec.test\r\n")
        .await
        .unwrap();
    within("the unfinished head to be cut off", async {
        let mut byte = [0u8; 1];
        while read.read(&mut byte).await.unwrap_or(0) > 0 {}
    })
    .await;
    assert!(seen.lock().unwrap().iter().all(|path| path == "/a/first"));
    still_serves(&proxy).await;
}

/// A kept-alive connection that has had requests for `/a/first`
/// answered, one after another, for at least `busy_for` since it was
/// opened (at least one).
async fn kept_alive(proxy: &Proxy, busy_for: Duration) -> (OwnedReadHalf, OwnedWriteHalf) {
    let opened = tokio::time::Instant::now();
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    loop {
        write
            .write_all(b"GET /a/first HTTP/1.1\r\nHost: www.rec.test\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        within("an answer", async {
            let mut buf = [0u8; 1024];
            while !answer.ends_with(b"\r\n\r\nok") {
                let n = read.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "closed before the answer: {:?}",
                    String::from_utf8_lossy(&answer)
                );
                answer.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        if opened.elapsed() >= busy_for {
            return (read, write);
        }
    }
}

/// Sends `head`, then one byte of an endless header every 20 ms (each
/// well within the header timeout, the head never complete), until the
/// proxy closes the connection (a read ends or a write fails), which must
/// happen within the harness deadline.
async fn trickle_until_cut(mut read: OwnedReadHalf, mut write: OwnedWriteHalf, head: &[u8]) {
    let trickle = async move {
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        let mut next = head;
        while write.write_all(next).await.is_ok() {
            pace.tick().await;
            next = b"s";
        }
    };
    let closed = async move {
        let mut byte = [0u8; 1];
        while read.read(&mut byte).await.unwrap_or(0) > 0 {}
    };
    within("the slowloris to be cut off", async {
        tokio::select! {
            () = trickle => {},
            () = closed => {},
        }
    })
    .await;
}

// === oversized request parts ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_line_longer_than_the_head_limit_is_431() {
    let (_backend, seen, proxy) = recording_proxy().await;
    let path = format!("/a/{}", "x".repeat(70 * 1024));
    let request = format!("GET {path} HTTP/1.1\r\nHost: x.test\r\n\r\n");
    let status = raw_status(proxy.addr, request.as_bytes()).await;
    // hyper cannot tell a long request line from long headers: the head
    // as a whole is over --max-request-header-bytes.
    assert_eq!(status, Some(431), "a 70 KiB request line");
    assert!(seen.lock().unwrap().is_empty(), "forwarded anyway");
    still_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_hundred_header_fields_are_431() {
    let (_backend, seen, proxy) = recording_proxy().await;
    let mut request = String::from("GET /a HTTP/1.1\r\nHost: x.test\r\n");
    for i in 0..150 {
        request.push_str(&format!("X-Many-{i}: v\r\n"));
    }
    request.push_str("\r\n");
    let status = raw_status(proxy.addr, request.as_bytes()).await;
    assert_eq!(status, Some(431));
    assert!(seen.lock().unwrap().is_empty(), "forwarded anyway");
    still_serves(&proxy).await;
}

// === HTTP/2 floods ===

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// RST_STREAM's CANCEL error code.
const CANCEL: u32 = 0x8;
/// GOAWAY's ENHANCE_YOUR_CALM error code.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// An HPACK integer with an `n`-bit prefix, the prefix's other bits `flags`.
fn hpack_int(n: u32, flags: u8, mut value: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// An HPACK string literal, not Huffman-coded.
fn hpack_str(s: &[u8], out: &mut Vec<u8>) {
    hpack_int(7, 0, s.len(), out);
    out.extend_from_slice(s);
}

/// The header block of `GET http://x.test/a`: static-table indices for
/// `:method GET` and `:scheme http`, literals for `:path` and `:authority`.
fn get_block() -> Vec<u8> {
    let mut block = vec![0x82, 0x86];
    hpack_int(4, 0, 4, &mut block); // :path, literal without indexing
    hpack_str(b"/a", &mut block);
    hpack_int(4, 0, 1, &mut block); // :authority
    hpack_str(b"x.test", &mut block);
    block
}

/// How an attacking HTTP/2 connection ended, as its reader saw it.
#[derive(Debug, Default)]
struct Ending {
    /// The GOAWAY error code, if the proxy sent one.
    goaway: Option<u32>,
    /// Frames of each type received before the end.
    frames: [usize; 10],
    /// RST_STREAM frames and HEADERS with END_STREAM: streams the proxy ended.
    streams_ended: usize,
}

/// Opens an HTTP/2 connection with the preface and empty SETTINGS; the
/// read half goes to a task that reads frames until GOAWAY or close.
async fn h2_attacker(proxy: &Proxy) -> (tokio::net::tcp::OwnedWriteHalf, ReadTask) {
    let tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    let (read, mut write) = tcp.into_split();
    write.write_all(H2_PREFACE).await.unwrap();
    write
        .write_all(&h2_frame(H2_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    (write, tokio::spawn(read_frames(read)))
}

type ReadTask = tokio::task::JoinHandle<Ending>;

async fn read_frames(mut read: tokio::net::tcp::OwnedReadHalf) -> Ending {
    let mut ending = Ending::default();
    let mut head = [0u8; 9];
    while read.read_exact(&mut head).await.is_ok() {
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        if read.read_exact(&mut payload).await.is_err() {
            break;
        }
        let kind = head[3];
        if let Some(n) = ending.frames.get_mut(kind as usize) {
            *n += 1;
        }
        if kind == RST_STREAM || (kind == HEADERS && head[4] & END_STREAM != 0) {
            ending.streams_ended += 1;
        }
        if kind == GOAWAY && payload.len() >= 8 {
            ending.goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
            break;
        }
    }
    ending
}

/// Writes `bytes`, reporting whether the proxy still took them: false once
/// it has closed the connection.
async fn pushed(write: &mut tokio::net::tcp::OwnedWriteHalf, bytes: &[u8]) -> bool {
    within(
        "a write to the attacking connection",
        write.write_all(bytes),
    )
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_is_cut_off_with_goaway_before_the_backend_sees_the_flood() {
    let (_backend, seen, proxy) = recording_proxy().await;
    let (mut write, reader) = h2_attacker(&proxy).await;
    let block = get_block();
    let streams = 10_000u32;
    for batch in 0..streams / 100 {
        let mut bytes = Vec::new();
        for i in 0..100 {
            let id = 2 * (batch * 100 + i) + 1;
            bytes.extend(h2_frame(HEADERS, END_STREAM | END_HEADERS, id, &block));
            bytes.extend(h2_frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
        }
        if !pushed(&mut write, &bytes).await {
            break;
        }
    }
    let ending = within("the attacking connection to end", reader)
        .await
        .unwrap();
    assert_eq!(ending.goaway, Some(ENHANCE_YOUR_CALM), "{ending:?}");
    let forwarded = seen.lock().unwrap().len();
    assert!(
        forwarded < streams as usize / 10,
        "{forwarded} of {streams} reset streams reached the backend"
    );
    still_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_flood_is_cut_off_long_before_it_ends() {
    let (_backend, seen, proxy) = recording_proxy().await;
    let (mut write, reader) = h2_attacker(&proxy).await;
    write
        .write_all(&h2_frame(HEADERS, END_STREAM, 1, &get_block()))
        .await
        .unwrap();
    // 16 KiB CONTINUATION frames of small literal headers, never ending
    // the block: 64 MiB unless the proxy stops it.
    let mut fragment = Vec::new();
    while fragment.len() < 16 * 1024 - 16 {
        fragment.push(0x00);
        hpack_str(b"x-c", &mut fragment);
        hpack_str(b"vvvvvvvv", &mut fragment);
    }
    let continuation = h2_frame(CONTINUATION, 0, 1, &fragment);
    let mut sent = 0usize;
    while sent < 64 << 20 && pushed(&mut write, &continuation).await {
        sent += continuation.len();
    }
    assert!(sent < 64 << 20, "the proxy took a 64 MiB header block");
    let ending = within("the attacking connection to end", reader)
        .await
        .unwrap();
    assert!(seen.lock().unwrap().is_empty(), "forwarded: {ending:?}");
    still_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpack_bomb_is_refused_without_reaching_the_backend() {
    let (_backend, seen, proxy) = recording_proxy().await;
    let (mut write, reader) = h2_attacker(&proxy).await;
    // One 4,000-byte header added to the dynamic table (it fits the
    // default 4 KiB table), then referenced 4,000 times: an 8 KiB block
    // that decodes to 16 MB of headers.
    let mut block = get_block();
    block.push(0x40); // literal with incremental indexing, new name
    hpack_str(b"x-bomb", &mut block);
    hpack_str(&[b'b'; 4000], &mut block);
    block.extend(std::iter::repeat_n(0xbe, 4000)); // dynamic index 62
    write
        .write_all(&h2_frame(HEADERS, END_STREAM | END_HEADERS, 1, &block))
        .await
        .unwrap();
    let reply = h2_frame(PING, 0, 0, &[0; 8]);
    // The stream is refused (a 431, RST_STREAM) or the connection closed.
    let ended = within("the bomb to be refused", async {
        let _ = write.write_all(&reply).await;
        drop(write);
        reader.await.unwrap()
    })
    .await;
    assert!(
        ended.streams_ended > 0 || ended.goaway.is_some(),
        "neither the stream nor the connection was refused: {ended:?}"
    );
    assert!(seen.lock().unwrap().is_empty(), "the bomb was forwarded");
    still_serves(&proxy).await;
}

/// Floods the proxy with `unit` frames (never reading its answers) while
/// an honest client is served on another connection.
async fn flood_while_serving(unit: Vec<u8>) {
    let (_backend, _seen, proxy) = recording_proxy().await;
    let (mut write, reader) = h2_attacker(&proxy).await;
    // Nothing the proxy sends back is read: its answers back up.
    reader.abort();
    let batch: Vec<u8> = unit
        .iter()
        .copied()
        .cycle()
        .take(unit.len() * 1000)
        .collect();
    let flood = async {
        // 100,000 frames, or until the proxy stops reading (bounded by the
        // harness deadline: a proxy that stops reading fails nothing).
        for _ in 0..100 {
            match tokio::time::timeout(DEADLINE / 4, write.write_all(&batch)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
    };
    let honest = async {
        for _ in 0..20 {
            still_serves(&proxy).await;
        }
    };
    tokio::join!(flood, honest);
    still_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_flood_does_not_starve_other_clients() {
    flood_while_serving(h2_frame(H2_SETTINGS, 0, 0, &[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_does_not_starve_other_clients() {
    flood_while_serving(h2_frame(PING, 0, 0, &[7; 8])).await;
}
