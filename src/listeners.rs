//! What every mode runs around its table until one shutdown: the proxy
//! and admin listeners, and the active health checks.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{self, AdminState};
use crate::health::{self, Probe};
use crate::proxy::{self, ServeOptions};
use crate::shutdown::Shutdown;
use crate::table::SharedTable;

/// Serves the proxy on `listener` and the admin API on `admin` from
/// `table`, and runs the active health checks `probes` brings (the probes
/// of each published table), until `shutdown`; the proxy drains, `ready`
/// turns false, and all are done when this returns.
pub async fn serve(
    listener: TcpListener,
    admin: TcpListener,
    table: SharedTable,
    ready: Arc<AtomicBool>,
    probes: watch::Receiver<Arc<[Probe]>>,
    options: ServeOptions,
    shutdown: &Shutdown,
) -> io::Result<()> {
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
