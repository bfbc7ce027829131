//! Accepting and serving client connections, and draining them on shutdown.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::accept::{Accept, Signals};
use super::coarse_timer::CoarseTimer;
use super::service::Shared;
use crate::policy::client::TrustedProxies;
use crate::table::SharedTable;
use crate::upstream::{UpstreamOptions, Upstreams};

/// How the proxy serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight requests may take to finish after shutdown
    /// begins; connections still open then are closed.
    pub drain_timeout: Duration,
    /// Most client connections open at once (`--max-connections`); past
    /// it, accepting waits and new clients queue in the listen backlog
    /// until a connection closes.
    pub max_connections: usize,
    /// Most connections open at once from one client IP
    /// (`--max-connections-per-ip`); past it a new connection is closed
    /// as soon as it is accepted. 0, the default, is no per-IP cap.
    /// Trusted proxies are exempt: every client behind one shares its IP.
    pub max_connections_per_ip: usize,
    /// Longest request head a client may send, in bytes
    /// (`--max-request-header-bytes`): the HTTP/1.1 request line and
    /// headers, or an HTTP/2 header list as decoded. Past it the answer is
    /// 431 and, on HTTP/1.1, the connection closes; so no connection pins
    /// more than about this much memory for an unfinished head. At least
    /// 8 KiB (hyper's smallest HTTP/1.1 read buffer); default 32 KiB, what
    /// nginx holds (4 × 8 KiB `large_client_header_buffers`).
    pub max_request_header_bytes: usize,
    /// Time a client has from connecting to sending its first complete
    /// request head, protocol detection included (`--client-header-timeout`,
    /// nginx's `client_header_timeout`); past it the connection is closed.
    /// HTTP/1.1 applies it to every later head too, so it is also the
    /// keep-alive idle time.
    pub client_header_timeout: Duration,
    /// Forward request headers whose names contain `_`
    /// (`--underscores-in-headers`, nginx's `underscores_in_headers on`).
    /// Off by default: they are dropped, since CGI-style backends cannot
    /// tell `X_Real_IP` from `X-Real-IP`.
    pub underscores_in_headers: bool,
    /// Time allowed to connect to a backend, for rules without
    /// `timeouts.connect`.
    pub connect_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed when deriving the client
    /// address for firewalls and rate limits (`--trusted-proxies`).
    /// Default: none, so the client is always the socket peer.
    pub trusted_proxies: TrustedProxies,
    /// Longest pause between two reads of a client's request body
    /// (`--client-body-timeout`, nginx's `client_body_timeout`); past it
    /// the client gets 408 and the backend's request is aborted.
    pub client_body_timeout: Duration,
    /// Longest request target (path and query) accepted
    /// (`--max-uri-bytes`, nginx's 8 KiB request line); past it 414.
    pub max_uri_bytes: usize,
    /// How long a client connection may go without a new request once it
    /// has had one (`--idle-timeout`); then it is shut down gracefully
    /// (HTTP/2: GOAWAY), requests in flight finishing first.
    pub idle_timeout: Duration,
    /// How long a backend connection may stay unused before it is closed
    /// (default 90 s).
    pub upstream_idle_timeout: Duration,
    /// The roots HTTPS backends without a CA bundle are verified against;
    /// `None` (the default) reads the system's trust store once, at the
    /// first such connect.
    pub upstream_roots: Option<Arc<rustls::RootCertStore>>,
    /// The process's metrics (`None`: off, nothing recorded).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The access log (`None`: off).
    pub access_log: Option<crate::access_log::AccessLog>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            drain_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 0,
            max_request_header_bytes: 32 * 1024,
            client_header_timeout: Duration::from_secs(30),
            underscores_in_headers: false,
            connect_timeout: Duration::from_secs(5),
            trusted_proxies: TrustedProxies::default(),
            client_body_timeout: Duration::from_secs(60),
            max_uri_bytes: 8 * 1024,
            idle_timeout: Duration::from_secs(75),
            upstream_idle_timeout: Duration::from_secs(90),
            upstream_roots: None,
            metrics: None,
            access_log: None,
        }
    }
}

/// The proxy's listening sockets.
#[derive(Debug)]
pub struct Sockets {
    /// Plain HTTP.
    pub plain: TcpListener,
    /// HTTPS, if any.
    pub tls: Option<TcpListener>,
}

/// Serves the proxy on `sockets` from `table` until `shutdown` resolves;
/// then stops accepting and lets in-flight requests finish, for at most
/// `drain_timeout`.
pub async fn serve(
    sockets: Sockets,
    table: SharedTable,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // Flipped when the drain deadline passes: every connection and tunnel
    // still open is closed, so nothing is served after `serve` returns.
    let (close_tx, close_rx) = watch::channel(false);
    // Flipped when shutdown begins: every connection finishes its requests
    // in flight and closes (HTTP/2: GOAWAY).
    let (drain_tx, drain_rx) = watch::channel(false);
    let tunnels = TaskTracker::new();
    tokio::spawn(sweep(
        table.clone(),
        options.upstream_idle_timeout,
        close_rx.clone(),
    ));
    let shared = Arc::new(Shared {
        table,
        upstreams: Upstreams::new(UpstreamOptions {
            connect_timeout: options.connect_timeout,
            idle_timeout: options.upstream_idle_timeout,
            max_idle_per_endpoint: MAX_IDLE_PER_ENDPOINT,
            provider: crate::tls::provider(),
            system_roots: options.upstream_roots.clone(),
            open_gauges: (options.metrics.as_ref()).map(|m| m.process.upstream_connections()),
        }),
        trusted_proxies: options.trusted_proxies.clone(),
        closing: close_rx.clone(),
        tunnels: tunnels.clone(),
        client_body_timeout: options.client_body_timeout,
        max_uri_bytes: options.max_uri_bytes,
        underscores_in_headers: options.underscores_in_headers,
        metrics: options.metrics.clone(),
        access_log: options.access_log.clone(),
        request_ids: Default::default(),
    });
    let accept = Accept::new(
        shared,
        connection_builder(&options),
        &options,
        Signals {
            draining: drain_rx,
            closing: close_rx,
        },
    );
    info!(addr = %sockets.plain.local_addr()?, "proxy listening");
    if let Some(tls) = &sockets.tls {
        info!(addr = %tls.local_addr()?, "proxy listening for HTTPS");
    }
    let accepting = async {
        let tls = async {
            match sockets.tls {
                Some(listener) => accept.run(listener, true).await,
                None => std::future::pending().await,
            }
        };
        tokio::join!(accept.run(sockets.plain, false), tls);
    };
    // Both loops (and their listeners) are dropped when shutdown begins.
    tokio::select! {
        _ = accepting => {}
        () = shutdown => {}
    }
    let _ = drain_tx.send(true);
    drain(accept.connections(), tunnels, options.drain_timeout).await;
    let _ = close_tx.send(true);
    Ok(())
}

/// Most idle connections kept per endpoint: enough for a busy proxy's
/// bursts, bounded so a spike does not leave thousands of idle sockets.
const MAX_IDLE_PER_ENDPOINT: usize = 512;
/// How often idle backend connections are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Closes backend connections idle past `idle` (or closed by the backend)
/// in every pool of the current table, until `closing`.
async fn sweep(table: SharedTable, idle: Duration, mut closing: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SWEEP_EVERY.min(idle));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = closing.wait_for(|close| *close) => return,
        }
        for pool in table.load().pools() {
            pool.sweep(idle);
        }
    }
}

/// hyper's smallest HTTP/1.1 read buffer: the floor of the head limit.
const MIN_HEAD_LIMIT: usize = 8 * 1024;

/// How client connections are served: HTTP/1.1 and HTTP/2, with timers
/// and the head size and time limits of `options`.
fn connection_builder(options: &ServeOptions) -> auto::Builder<TokioExecutor> {
    let head_limit = options.max_request_header_bytes.max(MIN_HEAD_LIMIT);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The read buffer bounds a head still being parsed (431 past it); a
    // body streams through it in reads of at most this size.
    // The header-read timeout's timer registers nothing per request; the
    // connection's quiet timer polls it (see `coarse_timer`).
    builder
        .http1()
        .timer(CoarseTimer)
        .max_buf_size(head_limit)
        .header_read_timeout(options.client_header_timeout);
    // HTTP/2 pings find dead peers, whose connections would otherwise hold a
    // permit forever. Extended CONNECT (RFC 8441) lets HTTP/2 clients open
    // WebSockets.
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_header_list_size(u32::try_from(head_limit).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Waits for in-flight requests and open tunnels to finish, for at most
/// `timeout`.
async fn drain(connections: TaskTracker, tunnels: TaskTracker, timeout: Duration) {
    info!("proxy stopped accepting; draining in-flight requests");
    connections.close();
    tunnels.close();
    let drained = async {
        connections.wait().await;
        tunnels.wait().await;
    };
    tokio::select! {
        () = drained => info!("proxy drained"),
        () = tokio::time::sleep(timeout) => {
            warn!(?timeout, "drain timed out; closing remaining connections");
        }
    }
}
