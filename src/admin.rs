//! The admin listener: `/healthz`, `/readyz`, `/routes`, `/explain` and
//! `/metrics`.
//!
//! Owns: the operator's view of a running process, including the `/routes`
//! view types ([`RouteSummary`], [`EndpointSummary`]) built from what the
//! table exposes. Must not: sit on the request path; it only reads the
//! published table.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::{debug, info};

use crate::api::LoadBalancerRouteSpec;
use crate::explain::{self, input::ExplainArgs, ExplainRequest};
use crate::metrics::Metrics;
use crate::table::{RouteStatus, RouteTable, SharedTable};

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    /// The published table.
    pub table: SharedTable,
    /// Set once the first table is published; `/readyz` answers 503 until then.
    pub ready: Arc<AtomicBool>,
    /// The process's metrics, for `/metrics` (404 when off).
    pub metrics: Option<Arc<Metrics>>,
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    info!(addr = %listener.local_addr()?, "admin listening");
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Transient (e.g. out of descriptors): keep serving.
                    debug!(error = %err, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(respond(&state, &req)) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(error = %err, "admin connection ended with an error");
            }
        });
    }
}

#[derive(Serialize)]
struct RoutesView<'a> {
    routes: Vec<RouteSummary<'a>>,
    /// Each endpoint's health (active checks, ejection) and load.
    endpoints: Vec<EndpointSummary>,
}

/// A route as `/routes` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RouteSummary<'a> {
    /// The route's namespace.
    pub namespace: &'a str,
    /// The route's name.
    pub name: &'a str,
    /// The file or source it came from.
    pub origin: &'a str,
    /// Whether it is served, and why not.
    pub status: &'a RouteStatus,
    /// The route as written.
    pub spec: &'a LoadBalancerRouteSpec,
}

/// An endpoint's health and load, as `/routes` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSummary {
    /// `host:port`.
    pub address: String,
    /// Whether active health checks pass (true without checks).
    pub healthy: bool,
    /// Whether passive health has it ejected.
    pub ejected: bool,
    /// Requests in flight.
    pub in_flight: u64,
}

/// The routes of `table` and their statuses, oldest first.
pub fn route_summary(table: &RouteTable) -> Vec<RouteSummary<'_>> {
    (table.routes().iter())
        .map(|record| RouteSummary {
            namespace: &record.status.namespace,
            name: &record.status.name,
            origin: &record.status.origin,
            status: &record.status,
            spec: &record.spec,
        })
        .collect()
}

/// Every endpoint of `table` at `now`, by address.
pub fn endpoint_summary(table: &RouteTable, now: tokio::time::Instant) -> Vec<EndpointSummary> {
    let mut list: Vec<EndpointSummary> = table
        .endpoints()
        .map(|(address, state)| EndpointSummary {
            address: address.to_string(),
            healthy: state.is_healthy(),
            ejected: state.is_ejected_at(now),
            in_flight: state.in_flight(),
        })
        .collect();
    list.sort_by(|a, b| a.address.cmp(&b.address));
    list
}

fn respond(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if state.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no route table published yet\n",
        ),
        "/routes" => {
            let table = state.table.load();
            let view = RoutesView {
                routes: route_summary(&table),
                endpoints: endpoint_summary(&table, tokio::time::Instant::now()),
            };
            match serde_json::to_vec_pretty(&view) {
                Ok(json) => {
                    let mut response = Response::new(Full::new(Bytes::from(json)));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not render routes\n",
                ),
            }
        }
        "/explain" => explain(state, req.uri().query().unwrap_or("")),
        "/metrics" => match &state.metrics {
            Some(metrics) => scrape(metrics, &state.table),
            None => text(StatusCode::NOT_FOUND, "metrics are off\n"),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "try /healthz, /readyz, /routes, /explain or /metrics\n",
        ),
    }
}

/// `/metrics`: the process's metrics and the live table's route series,
/// as OpenMetrics text.
fn scrape(metrics: &Metrics, table: &SharedTable) -> Response<Full<Bytes>> {
    match metrics.encode(table.load_full()) {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            response
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not render metrics\n",
        ),
    }
}

/// `/explain?url=…&method=…&header=name:value&client=IP&format=text|json`:
/// which rule of the served table the request would take, and why
/// (nothing stateful is run).
fn explain(state: &AdminState, query: &str) -> Response<Full<Bytes>> {
    let request = ExplainArgs::from_query(query).and_then(|args| ExplainRequest::new(&args));
    let request = match request {
        Ok(request) => request,
        Err(err) => return owned(StatusCode::BAD_REQUEST, format!("{err}\n"), "text/plain"),
    };
    let table = state.table.load();
    let explanation = explain::explain(&table, &request, tokio::time::Instant::now());
    if query.split('&').any(|p| p == "format=text") {
        return owned(
            StatusCode::OK,
            explain::render::text(&explanation),
            "text/plain",
        );
    }
    match serde_json::to_string_pretty(&explanation) {
        Ok(json) => owned(StatusCode::OK, json + "\n", "application/json"),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "could not render\n"),
    }
}

fn owned(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    (response.headers_mut()).insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
