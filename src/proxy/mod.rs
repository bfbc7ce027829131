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
pub use server::{serve, ServeOptions, Sockets};
