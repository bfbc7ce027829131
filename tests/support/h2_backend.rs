//! Backends that speak HTTP/2: h2c (prior knowledge only) and TLS (ALPN
//! `h2` and/or `http/1.1`), answering with what they saw of each request,
//! with knobs for a stream limit and a graceful shutdown (GOAWAY) after
//! some requests on each connection.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::*;

/// How an [`H2Backend`] serves.
#[derive(Clone, Default)]
pub struct H2Options {
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` it announces.
    pub max_streams: Option<u32>,
    /// Shut each connection down gracefully (GOAWAY) after this many
    /// requests on it.
    pub goaway_after: Option<usize>,
    /// Hold each request until this many are in flight at once (across
    /// connections), or 5 s have passed.
    pub hold_until: Option<usize>,
    /// Serve TLS with this certificate, offering these ALPN protocols.
    pub tls: Option<(Cert, Vec<Vec<u8>>)>,
}

/// Counters an [`H2Backend`] keeps.
#[derive(Default)]
struct Counts {
    in_flight: AtomicUsize,
    /// Most requests in flight on one connection at once.
    max_per_connection: AtomicUsize,
    released: Notify,
}

/// An HTTP/2 (or TLS) backend on `127.0.0.1:0`. Answers 200 with body
/// `{name}` and headers `x-seen-version`, `x-seen-authority`,
/// `x-seen-host`, `x-seen-te`, `x-seen-body-len`.
pub struct H2Backend {
    pub backend: Backend,
    counts: Arc<Counts>,
}

impl H2Backend {
    /// An h2c backend: HTTP/2 with prior knowledge only (an HTTP/1.1
    /// request gets the connection closed).
    pub async fn h2c(name: &str) -> H2Backend {
        H2Backend::start(name, H2Options::default()).await
    }

    /// A backend serving as `options` says.
    pub async fn start(name: &str, options: H2Options) -> H2Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let counts = Arc::new(Counts::default());
        let acceptor = options
            .tls
            .as_ref()
            .map(|(cert, alpn)| cert.acceptor(&alpn.iter().map(Vec::as_slice).collect::<Vec<_>>()));
        let (name_owned, counts_conn) = (Arc::<str>::from(name), counts.clone());
        let backend = Backend::raw_on(listener, name, move |tcp: TcpStream| {
            let (name, counts, options) =
                (name_owned.clone(), counts_conn.clone(), options.clone());
            let acceptor = acceptor.clone();
            async move {
                match acceptor {
                    None => serve(tcp, true, name, counts, options).await,
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        serve(tls, h2, name, counts, options).await;
                    }
                }
            }
        });
        H2Backend { backend, counts }
    }

    /// The backend's `address:` for route YAML.
    pub fn address(&self) -> String {
        self.backend.address()
    }

    /// Accepted connections so far.
    pub fn connections(&self) -> usize {
        self.backend.connections()
    }

    /// Most requests seen in flight on one connection at once.
    pub fn max_per_connection(&self) -> usize {
        self.counts.max_per_connection.load(Ordering::SeqCst)
    }
}

/// Serves one connection: HTTP/2 only when `h2`, else HTTP/1.1 only.
async fn serve<IO>(io: IO, h2: bool, name: Arc<str>, counts: Arc<Counts>, options: H2Options)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let max_streams = options.max_streams;
    let on_conn = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let goaway = Arc::new(Notify::new());
    let svc = {
        let (on_conn, served, goaway) = (on_conn.clone(), served.clone(), goaway.clone());
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (name, counts, options) = (name.clone(), counts.clone(), options.clone());
            let (on_conn, served, goaway) = (on_conn.clone(), served.clone(), goaway.clone());
            async move {
                let here = on_conn.fetch_add(1, Ordering::SeqCst) + 1;
                counts.max_per_connection.fetch_max(here, Ordering::SeqCst);
                let all = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(until) = options.hold_until {
                    hold(&counts, all >= until).await;
                }
                let response = answer(&name, req).await;
                on_conn.fetch_sub(1, Ordering::SeqCst);
                counts.in_flight.fetch_sub(1, Ordering::SeqCst);
                let done = served.fetch_add(1, Ordering::SeqCst) + 1;
                if options.goaway_after.is_some_and(|n| done >= n) {
                    goaway.notify_one();
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(max_streams);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = goaway.notified() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// Waits until `reached`, or another request reached it, or 5 s passed.
async fn hold(counts: &Counts, reached: bool) {
    if reached {
        counts.released.notify_waiters();
        return;
    }
    let released = counts.released.notified();
    let _ = tokio::time::timeout(Duration::from_secs(5), released).await;
}

async fn answer(name: &str, req: Request<Incoming>) -> Response<TestBody> {
    let seen =
        |v: Option<&http::HeaderValue>| v.and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let version = format!("{:?}", req.version());
    let authority = req.uri().authority().map_or("-".into(), |a| a.to_string());
    let host = seen(req.headers().get(http::header::HOST));
    let te = seen(req.headers().get(http::header::TE));
    let len = req
        .into_body()
        .collect()
        .await
        .map_or(0, |b| b.to_bytes().len());
    Response::builder()
        .header("x-backend", name)
        .header("x-seen-version", version)
        .header("x-seen-authority", authority)
        .header("x-seen-host", host)
        .header("x-seen-te", te)
        .header("x-seen-body-len", len.to_string())
        .body(full(name.to_string()))
        .expect("response")
}
