//! What every mode runs around its table until one shutdown: the proxy
//! and admin listeners, and the active health checks.

use std::io;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::health;
use crate::proxy::{self, ServeOptions};
use crate::publish::Served;
use crate::shutdown::Shutdown;

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
        },
        shutdown.stopped(),
    ));
    let health_task = tokio::spawn(health::active::run(probes, shutdown.stopped()));
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
