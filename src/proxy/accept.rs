//! Accepting client connections (plain and TLS) and serving each until it
//! ends, goes quiet, or the drain closes it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::coarse_timer::TICK_DIVISOR;
use super::observe;
use super::per_ip::{IpSlot, PerIp};
use super::server::ServeOptions;
use super::service::{handle, Connection, Shared};
use super::tls::{self, TlsConn};

/// What every accepted connection is served with.
pub(super) struct Accept {
    shared: Arc<Shared>,
    /// HTTP/1.1 and HTTP/2, told apart by the preface (plain connections).
    auto: auto::Builder<TokioExecutor>,
    /// TLS connections whose ALPN chose `h2`.
    h2: auto::Builder<TokioExecutor>,
    /// TLS connections without ALPN `h2`.
    h1: auto::Builder<TokioExecutor>,
    permits: Arc<Semaphore>,
    per_ip: Option<Arc<PerIp>>,
    signals: Signals,
    connections: TaskTracker,
    header_timeout: Duration,
    idle_timeout: Duration,
}

/// What a connection's task watches besides its connection.
#[derive(Clone)]
pub(super) struct Signals {
    /// True once shutdown has begun: finish what is in flight, then close.
    pub draining: watch::Receiver<bool>,
    /// True at the drain deadline: close now.
    pub closing: watch::Receiver<bool>,
}

/// A connection let in: its places under the caps, and who it is from.
struct Admitted {
    permit: OwnedSemaphorePermit,
    ip_slot: Option<IpSlot>,
    peer: SocketAddr,
    /// The peer's IP, IPv4-mapped addresses as IPv4.
    ip: IpAddr,
    trusted: bool,
    at: Instant,
}

impl Accept {
    /// Accepting for `shared` with `builder`'s protocol settings and the
    /// caps and timeouts of `options`.
    pub fn new(
        shared: Arc<Shared>,
        builder: auto::Builder<TokioExecutor>,
        options: &ServeOptions,
        signals: Signals,
    ) -> Arc<Self> {
        Arc::new(Accept {
            shared,
            h2: builder.clone().http2_only(),
            h1: builder.clone().http1_only(),
            auto: builder,
            permits: Arc::new(Semaphore::new(options.max_connections)),
            per_ip: PerIp::new(options.max_connections_per_ip),
            signals,
            connections: TaskTracker::new(),
            header_timeout: options.client_header_timeout,
            idle_timeout: options.idle_timeout,
        })
    }

    /// The connections being served, for the drain.
    pub fn connections(&self) -> TaskTracker {
        self.connections.clone()
    }

    /// Accepts on `listener` (TLS when `tls`) until dropped. The permit
    /// moves into the connection (and any tunnel): at the cap, accepting
    /// waits rather than queueing unbounded work.
    pub async fn run(self: &Arc<Self>, listener: TcpListener, tls: bool) {
        loop {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off briefly.
                    warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(admitted) = self.admit(permit, peer) else {
                continue;
            };
            if let Err(err) = stream.set_nodelay(true) {
                debug!(error = %err, "could not set TCP_NODELAY");
            }
            if tls {
                self.connections.spawn(self.serve_tls(stream, admitted));
            } else {
                let serving = self.serve(&self.auto, stream, None, admitted);
                self.connections.spawn(serving);
            }
        }
    }

    /// Lets a connection from `peer` in, unless its IP is over the per-IP
    /// cap (trusted proxies are exempt: every client behind one shares it).
    fn admit(&self, permit: OwnedSemaphorePermit, peer: SocketAddr) -> Option<Admitted> {
        // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
        let ip = peer.ip().to_canonical();
        let trusted = self.shared.trusted_proxies.contains(ip);
        let ip_slot = match &self.per_ip {
            Some(per_ip) if !trusted => match per_ip.admit(ip) {
                Some(slot) => Some(slot),
                None => {
                    debug!(%peer, "connection closed: over the per-IP cap");
                    return None;
                }
            },
            _ => None,
        };
        Some(Admitted {
            permit,
            ip_slot,
            peer,
            ip,
            trusted,
            at: Instant::now(),
        })
    }

    /// Completes the TLS handshake within the client header timeout (or
    /// until the drain deadline), then serves the connection with the
    /// protocol ALPN chose.
    fn serve_tls(
        self: &Arc<Self>,
        stream: TcpStream,
        admitted: Admitted,
    ) -> impl Future<Output = ()> + Send + 'static {
        let table = self.shared.table.clone();
        let mut closing = self.signals.closing.clone();
        let deadline = admitted.at + self.header_timeout;
        let this = self.clone();
        async move {
            let peer = admitted.peer;
            let handshake = tokio::select! {
                done = tokio::time::timeout_at(deadline, tls::handshake(stream, &table)) => done,
                _ = closing.wait_for(|close| *close) => return,
            };
            observe::handshake(&this.shared, &handshake);
            let (stream, info) = match handshake {
                Ok(Ok(done)) => done,
                Ok(Err(refused)) => return debug!(%peer, reason = %refused, "TLS refused"),
                Err(_) => return debug!(%peer, "TLS handshake timed out"),
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let builder = if h2 { &this.h2 } else { &this.h1 };
            this.serve(builder, stream, Some(info), admitted).await;
        }
    }

    /// Serves one connection until it ends, is closed at the drain
    /// deadline or as never asked, or is shut down gracefully (requests in
    /// flight finish; HTTP/2 sends GOAWAY) when idle or draining.
    fn serve<IO>(
        &self,
        builder: &auto::Builder<TokioExecutor>,
        stream: IO,
        tls: Option<TlsConn>,
        admitted: Admitted,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (peer, ip) = (admitted.peer, admitted.ip);
        let tls_conn = tls.is_some();
        let conn = Arc::new(Connection {
            shared: self.shared.clone(),
            peer_ip: HeaderValue::from_str(&ip.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            peer: ip,
            peer_trusted: admitted.trusted,
            tls,
            requested: AtomicBool::new(false),
            _permit: admitted.permit,
            _ip_slot: admitted.ip_slot,
            _open: (self.shared.metrics.as_ref()).map(|m| m.process.connection_opened(tls_conn)),
        });
        // The header timeout runs from accept, the TLS handshake included.
        let header_timeout =
            (admitted.at + self.header_timeout).saturating_duration_since(Instant::now());
        let quiet = idle_deadline(
            conn.clone(),
            header_timeout,
            self.header_timeout,
            self.idle_timeout,
        );
        let service = service_fn(move |req| handle(conn.clone(), req));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let mut signals = self.signals.clone();
        async move {
            tokio::pin!(connection, quiet);
            let mut winding_down = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(err) = served {
                            debug!(%peer, error = %err, "connection ended with an error");
                        }
                        return;
                    }
                    _ = signals.closing.wait_for(|close| *close) => {
                        debug!(%peer, "connection closed at the drain deadline");
                        return;
                    }
                    _ = signals.draining.wait_for(|drain| *drain), if !winding_down => {
                        connection.as_mut().graceful_shutdown();
                        winding_down = true;
                    }
                    why = &mut quiet, if !winding_down => match why {
                        Quiet::NeverAsked => {
                            debug!(%peer, "connection closed: no request within the client header timeout");
                            return;
                        }
                        Quiet::Idle => {
                            debug!(%peer, "idle connection shut down");
                            connection.as_mut().graceful_shutdown();
                            winding_down = true;
                        }
                    },
                }
            }
        }
    }
}

/// When a connection has gone quiet for too long, as [`idle_deadline`]
/// found it.
enum Quiet {
    /// No request within the client header timeout of accept (silent, part
    /// of an HTTP/2 preface, an unfinished head): closed at once.
    NeverAsked,
    /// No new request for the idle timeout: shut down gracefully.
    Idle,
}

/// Resolves when the connection has gone quiet: no request within
/// `header_timeout` of accept (`left` of it remains now), or, once it has
/// had one, none for `idle`. Until then it wakes the connection's task
/// every [`TICK_DIVISOR`]th of the header timeout, so that hyper looks at
/// its header-read deadline (a [`super::coarse_timer::CoarseTimer`], which
/// wakes no one) and cuts a head that is too slow.
/// Requests only set a flag ([`Connection::requested`]); this task reads
/// and clears it, so a request costs no timer.
async fn idle_deadline(
    conn: Arc<Connection>,
    left: Duration,
    header_timeout: Duration,
    idle: Duration,
) -> Quiet {
    tokio::time::sleep(left).await;
    if !conn.requested.swap(false, Ordering::Relaxed) {
        return Quiet::NeverAsked;
    }
    let tick = (header_timeout / TICK_DIVISOR)
        .min(idle)
        .max(Duration::from_millis(1));
    let mut quiet = Duration::ZERO;
    loop {
        tokio::time::sleep(tick).await;
        if conn.requested.swap(false, Ordering::Relaxed) {
            quiet = Duration::ZERO;
        } else {
            quiet += tick;
            if quiet >= idle {
                return Quiet::Idle;
            }
        }
    }
}
