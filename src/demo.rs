//! The built-in demo: `switchyard run` without `--routes`.
//!
//! Owns: four tiny demo backends on loopback (two "mango", two "apple",
//! answering `This is the mango application.`) and the bundled
//! `examples/demo.yaml` routes pointing at them. Must not: be used for
//! anything but trying switchyard out.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::{debug, info};

use crate::listeners::Listeners;
use crate::source::file::Files;
use crate::standalone::{self, Error, Options};

const ROUTES: &str = include_str!("../examples/demo.yaml");

/// Starts the demo backends, then runs standalone mode over the bundled
/// routes until `shutdown` resolves.
pub async fn run(
    options: Options,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let mut routes = ROUTES.to_owned();
    for (placeholder, app) in [
        ("${MANGO_1}", "mango"),
        ("${MANGO_2}", "mango"),
        ("${APPLE_1}", "apple"),
        ("${APPLE_2}", "apple"),
    ] {
        let backend = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(Error::Listener)?;
        let addr = backend.local_addr().map_err(Error::Listener)?;
        info!(%addr, app, "demo backend listening");
        routes = routes.replace(placeholder, &addr.to_string());
        tokio::spawn(serve_backend(backend, app, std::future::pending()));
    }
    let files = Files(vec![(PathBuf::from("(built-in demo)"), Ok(routes))]);
    standalone::run_fixed(files, options, listeners, shutdown).await
}

/// Serves `This is the {app} application.` on every path until `shutdown`
/// resolves (`switchyard demo-backend`, and the demo's backends).
pub async fn serve_backend(listener: TcpListener, app: &str, shutdown: impl Future<Output = ()>) {
    let body = Bytes::from(format!("This is the {app} application.\n"));
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    debug!(error = %err, "demo accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let body = body.clone();
        let service = service_fn(move |_req| {
            let body = body.clone();
            async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(error = %err, "demo connection ended with an error");
            }
        });
    }
}
