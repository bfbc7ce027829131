//! The embedded HTTP proxy.
//!
//! Owns: accepting and serving client connections (HTTP/1.1, h2c, upgrades),
//! the per-request phases, forwarding over one pooled upstream client, and
//! the mapping of every failure to a status. Must not: hold a lock or parse
//! configuration per request — it reads the compiled table through one
//! `ArcSwap` load.

mod connect;
mod error;
mod forward;
mod server;
mod service;

pub use error::ProxyError;
pub use server::{serve, ServeOptions};
