//! What every mode runs around its table until one shutdown: the proxy
//! and admin listeners, and the active health checks.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::health;
use crate::proxy::{self, ServeOptions};
use crate::publish::Served;
use crate::shutdown::Shutdown;
use crate::upstream::{UpstreamOptions, Upstreams};

/// Time a health probe may take to connect.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The sockets a serving mode listens on, bound before it starts (so a
/// port in use fails at once, and tests can bind port 0).
#[derive(Debug)]
pub struct Listeners {
    /// Plain HTTP (`--listen`).
    pub proxy: TcpListener,
    /// HTTPS (`--tls-listen`), if any.
    pub tls: Option<TcpListener>,
    /// The admin API (`--admin`).
    pub admin: TcpListener,
}

/// Serves the proxy on the plain (and TLS) listeners and the admin API from
/// the publisher's table, and runs the active health checks of each
/// published table, until `shutdown`; the proxy drains, readiness turns
/// false, and all are done when this returns.
pub async fn serve(
    listeners: Listeners,
    served: Served,
    options: ServeOptions,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let Served {
        table,
        ready,
        probes,
    } = served;
    let Listeners {
        proxy: plain,
        tls,
        admin,
    } = listeners;
    let admin_task = tokio::spawn(admin::serve(
        admin,
        AdminState {
            table: table.clone(),
            ready: ready.clone(),
            metrics: options.metrics.clone(),
        },
        shutdown.stopped(),
    ));
    // Probes go through the endpoints' own pools, in their protocols.
    let probe_upstreams = Arc::new(Upstreams::new(UpstreamOptions {
        connect_timeout: PROBE_CONNECT_TIMEOUT,
        idle_timeout: options.upstream_idle_timeout,
        max_idle_per_endpoint: 1,
        provider: crate::tls::provider(),
        system_roots: options.upstream_roots.clone(),
        // Probes' connections are not the proxy's.
        open_gauges: None,
    }));
    let health_task = tokio::spawn(health::active::run(
        probes,
        probe_upstreams,
        shutdown.stopped(),
    ));
    let served = proxy::serve(
        proxy::Sockets { plain, tls },
        table,
        options,
        shutdown.stopped(),
    )
    .await;
    ready.store(false, Ordering::Release);
    health_task.await.map_err(io::Error::other)?;
    admin_task.await.map_err(io::Error::other)??;
    served
}
