//! Backends: real hyper HTTP/1.1 servers (and raw TCP ones) on
//! `127.0.0.1:0`, each counting accepted connections and requests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::*;

#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// A backend on `127.0.0.1:0`; its accept loop and every connection task
/// stop when it is dropped.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Backend {
    /// Accepted TCP connections so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// HTTP requests received so far (raw backends: 0).
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// The backend's `address:` for route YAML.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// A backend handling each accepted TCP connection with `on_conn`.
    pub async fn raw<F, Fut>(name: &str, on_conn: F) -> Backend
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        Backend::raw_on(listener, name, on_conn)
    }

    /// Like [`Backend::raw`], on a listener the caller bound (e.g. inside a
    /// test host's network namespace).
    pub fn raw_on<F, Fut>(listener: TcpListener, name: &str, on_conn: F) -> Backend
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn({
            let stats = stats.clone();
            async move {
                // Owning the JoinSet here means aborting the accept loop
                // aborts every connection task too.
                let mut conns = JoinSet::new();
                loop {
                    let Ok((stream, _peer)) = listener.accept().await else {
                        continue;
                    };
                    stats.connections.fetch_add(1, Ordering::SeqCst);
                    conns.spawn(on_conn(stream));
                    while conns.try_join_next().is_some() {}
                }
            }
        });
        Backend {
            name: name.to_string(),
            addr,
            stats,
            task,
        }
    }

    /// An HTTP/1.1 backend (with upgrades) answering every request with
    /// `handler`. Every response gets `x-backend: {name}`.
    pub async fn http<F, Fut>(name: &str, handler: F) -> Backend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        Backend::http_on(listener, name, handler)
    }

    /// Like [`Backend::http`], on a listener the caller bound.
    pub fn http_on<F, Fut>(listener: TcpListener, name: &str, handler: F) -> Backend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Arc<dyn Fn(Request<Incoming>) -> BoxFut<Response<TestBody>> + Send + Sync> =
            Arc::new(move |req| Box::pin(handler(req)));
        let stats_slot: Arc<std::sync::OnceLock<Arc<Stats>>> = Arc::new(std::sync::OnceLock::new());
        let backend_name: Arc<str> = Arc::from(name);
        let slot = stats_slot.clone();
        let backend = Backend::raw_on(listener, name, move |stream| {
            let handler = handler.clone();
            let stats = slot.get().cloned();
            let backend_name = backend_name.clone();
            async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    if let Some(stats) = &stats {
                        stats.requests.fetch_add(1, Ordering::SeqCst);
                    }
                    let fut = handler(req);
                    let backend_name = backend_name.clone();
                    async move {
                        let mut resp = fut.await;
                        resp.headers_mut().insert(
                            "x-backend",
                            http::HeaderValue::from_str(&backend_name).expect("backend name"),
                        );
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            }
        });
        let _ = stats_slot.set(backend.stats.clone());
        backend
    }

    /// Answers 200 with a JSON [`Echo`] of what it received, plus headers
    /// `x-backend` and `x-echo-method` (readable on HEAD).
    pub async fn echo(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        Backend::echo_on(listener, name)
    }

    /// Like [`Backend::echo`], on a listener the caller bound.
    pub fn echo_on(listener: TcpListener, name: &str) -> Backend {
        let name_owned = name.to_string();
        Backend::http_on(listener, name, move |req| {
            let name = name_owned.clone();
            async move { echo_response(&name, req).await }
        })
    }

    /// Answers every request with `status` and `body`.
    pub async fn fixed(name: &str, status: StatusCode, body: &'static str) -> Backend {
        Backend::http(name, move |_req| async move {
            Response::builder().status(status).body(full(body)).unwrap()
        })
        .await
    }

    /// Answers 200 with a `len`-byte body streamed in 64 KiB chunks.
    pub async fn download(name: &str, len: u64) -> Backend {
        Backend::http(name, move |_req| async move {
            Response::new(RepeatBody::boxed(len))
        })
        .await
    }

    /// Reads the request body chunk by chunk and answers 200 with the byte
    /// count as text.
    pub async fn upload_counter(name: &str) -> Backend {
        Backend::http(name, |req| async move { count_upload(req, None).await }).await
    }

    /// Like [`Backend::upload_counter`], and reports the size of every data
    /// chunk on the returned channel as it arrives.
    pub async fn upload_observer(name: &str) -> (Backend, mpsc::UnboundedReceiver<usize>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backend = Backend::http(name, move |req| {
            let tx = tx.clone();
            async move { count_upload(req, Some(tx)).await }
        })
        .await;
        (backend, rx)
    }

    /// Holds each request before answering headers until the test releases
    /// the gate; reports each arrival. Answers 200 "released".
    pub async fn gated(name: &str) -> (Backend, Gate) {
        let (arrived_tx, arrived_rx) = mpsc::unbounded_channel();
        let (release_tx, release_rx) = watch::channel(false);
        let backend = Backend::http(name, move |_req| {
            let arrived = arrived_tx.clone();
            let mut release = release_rx.clone();
            async move {
                let _ = arrived.send(());
                if release.wait_for(|open| *open).await.is_err() {
                    // Gate dropped: never answer.
                    std::future::pending::<()>().await;
                }
                Response::new(full("released"))
            }
        })
        .await;
        (
            backend,
            Gate {
                arrived: arrived_rx,
                release: release_tx,
            },
        )
    }

    /// Accepts requests and never answers them.
    pub async fn hang(name: &str) -> Backend {
        Backend::http(name, |_req| async move {
            std::future::pending::<()>().await;
            unreachable!()
        })
        .await
    }

    /// Answers 200 immediately with a body the test drives: for each request
    /// the returned channel yields a sender; each `Bytes` sent becomes a
    /// chunk, dropping the sender ends the body.
    pub async fn stepper(name: &str) -> (Backend, mpsc::UnboundedReceiver<mpsc::Sender<Bytes>>) {
        let (senders_tx, senders_rx) = mpsc::unbounded_channel();
        let backend = Backend::http(name, move |_req| {
            let senders = senders_tx.clone();
            async move {
                let (tx, body) = body_channel();
                let _ = senders.send(tx);
                Response::new(body)
            }
        })
        .await;
        (backend, senders_rx)
    }

    /// Accepts TCP, reads (part of) the request, then resets the connection
    /// without answering.
    pub async fn reset(name: &str) -> Backend {
        Backend::raw(name, |mut stream| async move {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        })
        .await
    }

    /// A WebSocket server echoing every text and binary message.
    pub async fn websocket(name: &str) -> Backend {
        Backend::raw(name, echo_websocket).await
    }
}

/// Accepts a WebSocket handshake on `stream` and echoes every text and
/// binary message until the client closes.
pub async fn echo_websocket<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            return;
        }
        // Pings are answered by tungstenite itself; echo data only.
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

/// Control of a [`Backend::gated`] backend.
pub struct Gate {
    arrived: mpsc::UnboundedReceiver<()>,
    release: watch::Sender<bool>,
}

impl Gate {
    /// Waits until a request has reached the backend.
    pub async fn arrived(&mut self) {
        within("a request to reach the gated backend", self.arrived.recv())
            .await
            .expect("gated backend gone");
    }

    /// Lets every held (and future) request answer.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

async fn echo_response(name: &str, req: Request<Incoming>) -> Response<TestBody> {
    let (parts, mut body) = req.into_parts();
    let mut len = 0u64;
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            len += data.len() as u64;
            if kept.len() + data.len() <= 64 * 1024 {
                kept.extend_from_slice(data);
            }
        }
    }
    let body_text = if len as usize == kept.len() {
        String::from_utf8_lossy(&kept).into_owned()
    } else {
        String::new()
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let report = serde_json::json!({
        "backend": name,
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": len,
        "body": body_text,
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-echo-method", parts.method.as_str())
        .body(full(serde_json::to_vec(&report).unwrap()))
        .unwrap()
}

async fn count_upload(
    req: Request<Incoming>,
    events: Option<mpsc::UnboundedSender<usize>>,
) -> Response<TestBody> {
    let mut body = req.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    n += data.len() as u64;
                    if let Some(events) = &events {
                        let _ = events.send(data.len());
                    }
                }
            }
            Err(e) => {
                return Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(full(format!("body error after {n} bytes: {e}")))
                    .unwrap();
            }
        }
    }
    Response::new(full(n.to_string()))
}
