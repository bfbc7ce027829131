//! Accepting and serving client connections, and draining them on shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::connect::TimedConnector;
use super::service::{handle, Connection, Shared, UpstreamClient};
use crate::policy::client::TrustedProxies;
use crate::table::SharedTable;

/// How the proxy serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight requests may take to finish after shutdown
    /// begins; connections still open then are closed.
    pub drain_timeout: Duration,
    /// Most client connections open at once; past it, accepting waits.
    pub max_connections: usize,
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
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            drain_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            connect_timeout: Duration::from_secs(5),
            trusted_proxies: TrustedProxies::default(),
            client_body_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves the proxy on `listener` from `table` until `shutdown` resolves;
/// then stops accepting and lets in-flight requests finish, for at most
/// `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    table: SharedTable,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // Flipped when the drain deadline passes: every connection and tunnel
    // still open is closed, so nothing is served after `serve` returns.
    let (close_tx, close_rx) = watch::channel(false);
    let tunnels = TaskTracker::new();
    let shared = Arc::new(Shared {
        table,
        client: upstream_client(options.connect_timeout),
        trusted_proxies: options.trusted_proxies.clone(),
        closing: close_rx.clone(),
        tunnels: tunnels.clone(),
        client_body_timeout: options.client_body_timeout,
    });
    let builder = connection_builder();
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(options.max_connections));
    info!(addr = %listener.local_addr()?, "proxy listening");

    tokio::pin!(shutdown);
    loop {
        // The permit moves into the connection (and any tunnel): at the cap, we stop
        // accepting rather than queue unbounded work.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off briefly.
                    warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = Arc::new(Connection {
            shared: shared.clone(),
            // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
            peer_ip: HeaderValue::from_str(&peer.ip().to_canonical().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            peer: peer.ip().to_canonical(),
            peer_trusted: shared.trusted_proxies.contains(peer.ip()),
            _permit: permit,
        });
        spawn_connection(&builder, &graceful, &close_rx, stream, peer, conn);
    }
    drop(listener);
    drain(graceful, tunnels, options.drain_timeout).await;
    let _ = close_tx.send(true);
    Ok(())
}

/// The pooled upstream client, connecting with `connect_timeout` unless a
/// rule sets its own.
fn upstream_client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    // The connect timeout is applied by `TimedConnector`, per rule.
    connector.set_connect_timeout(None);
    let connector = TimedConnector::new(connector, connect_timeout);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        // Enough idle connections per backend for a busy proxy's bursts,
        // bounded so a spike does not leave thousands of idle sockets.
        .pool_max_idle_per_host(512)
        .build(connector)
}

/// How client connections are served: HTTP/1.1 and HTTP/2, with timers.
fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    // HTTP/2 pings find dead peers, whose connections would otherwise hold a
    // permit forever.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Serves one accepted connection in its own task, watched by the graceful
/// shutdown and closed at the drain deadline.
fn spawn_connection(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    closing: &watch::Receiver<bool>,
    stream: TcpStream,
    peer: SocketAddr,
    conn: Arc<Connection>,
) {
    if let Err(err) = stream.set_nodelay(true) {
        debug!(error = %err, "could not set TCP_NODELAY");
    }
    let service = service_fn(move |req| handle(conn.clone(), req));
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    let connection = graceful.watch(connection);
    let mut closing = closing.clone();
    tokio::spawn(async move {
        tokio::select! {
            served = connection => if let Err(err) = served {
                debug!(%peer, error = %err, "connection ended with an error");
            },
            _ = closing.wait_for(|close| *close) => {
                debug!(%peer, "connection closed at the drain deadline");
            }
        }
    });
}

/// Waits for in-flight requests and open tunnels to finish, for at most
/// `timeout`.
async fn drain(graceful: GracefulShutdown, tunnels: TaskTracker, timeout: Duration) {
    info!("proxy stopped accepting; draining in-flight requests");
    tunnels.close();
    let drained = async {
        graceful.shutdown().await;
        tunnels.wait().await;
    };
    tokio::select! {
        () = drained => info!("proxy drained"),
        () = tokio::time::sleep(timeout) => {
            warn!(?timeout, "drain timed out; closing remaining connections");
        }
    }
}
