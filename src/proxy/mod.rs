//! The embedded HTTP proxy.
//!
//! Owns: accepting and serving client connections (HTTP/1.1, h2c, upgrades,
//! WebSocket over HTTP/2),
//! the per-request phases over one [`ctx::RequestCtx`] (route → admit →
//! answer → prepare → send → respond → log), forwarding over one pooled
//! upstream client, the body wrappers, and the mapping of every failure to
//! a status. Must not: hold a lock or parse configuration per request — it
//! reads the compiled table through one `ArcSwap` load.
//!
//! Files: `server` (accept, serve, drain), `service` (the phases in order;
//! route, admit, answer), `prepare`, `retry` (the send phase), `respond`,
//! `answer` (proxy-made answers and their log line), `grpc` (gRPC
//! statuses, trailers-only answers, `grpc-timeout`), `ctx`, `body`,
//! `forward` (header and URI rules), `connect`, `error`, `per_ip` (the
//! per-client-IP connection cap), `observe` (the log phase: metrics and
//! the access-log line), `trace` (trace context and `x-request-id`).

mod accept;
mod answer;
mod body;
mod coarse_timer;
mod ctx;
mod error;
mod forward;
mod grpc;
mod observe;
mod per_ip;
mod prepare;
mod respond;
mod retry;
mod server;
mod service;
mod tls;
mod trace;

pub use error::{ProxyError, Side};

/// The request changes of the route and prepare phases, for `switchyard
/// explain` to show the request a backend would get without sending it.
pub mod preview {
    pub use super::forward::{
        drop_underscored, request_host, set_forwarded, strip_hop_by_hop, Hop,
    };
    pub use super::prepare::{rewrite, set_host};
}
pub use server::{serve, ServeOptions, Sockets};
