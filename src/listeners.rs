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

/// Serves the proxy on `listener` and the admin API on `admin` from the
/// publisher's table, and runs the active health checks of each published
/// table, until `shutdown`; the proxy drains, readiness turns false, and
/// all are done when this returns.
pub async fn serve(
    listener: TcpListener,
    admin: TcpListener,
    served: Served,
    options: ServeOptions,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let Served {
        table,
        ready,
        probes,
    } = served;
    let admin_task = tokio::spawn(admin::serve(
        admin,
        AdminState {
            table: table.clone(),
            ready: ready.clone(),
        },
        shutdown.stopped(),
    ));
    let health_task = tokio::spawn(health::active::run(probes, shutdown.stopped()));
    let served = proxy::serve(listener, table, options, shutdown.stopped()).await;
    ready.store(false, Ordering::Release);
    health_task.await.map_err(io::Error::other)?;
    admin_task.await.map_err(io::Error::other)??;
    served
}
