//! switchyard: a Kubernetes ingress controller and HTTP load balancer.
//!
//! Data flows one way (see `DESIGN.md`): a source gathers
//! `LoadBalancerRoute` documents into a [`snapshot::Snapshot`]; the pure
//! [`table::compile`] turns it into an immutable [`table::RouteTable`]
//! published through one `ArcSwap`; the [`proxy`] serves every request from
//! one load of it.
//!
//! Layout:
//! - [`api`]: the resource types and defaults; no I/O.
//! - [`source`]: where documents come from (files today); no routing.
//! - [`diagnostic`]: typed compile errors (field path, reason, code); a leaf.
//! - [`matching`]: host, path, header matchers and precedence; a leaf.
//! - [`table`]: compile, conflicts, conditions; no sockets or clocks.
//! - [`balance`]: picking an endpoint, endpoint state; no HTTP.
//! - [`health`]: active probes and passive ejection, written to endpoint
//!   state; never on the request path.
//! - [`policy`]: per-rule firewall, rate limits, body limits, rewrites,
//!   header changes and redirects, compiled once; no parsing per request.
//! - [`proxy`]: serving and forwarding; no locks or parsing per request.
//! - [`admin`]: `/healthz`, `/readyz`, `/routes`.
//! - [`publish`]: the one compile-and-publish loop (both modes).
//! - [`standalone`]: standalone mode's reload loop and wiring.
//! - [`controller`]: cluster mode's wiring (the Kubernetes source).
//! - [`shutdown`]: one shutdown signal fanned out to every task.
//! - [`listeners`]: the proxy and admin listeners every mode runs.
//! - [`demo`]: the built-in demo backends and routes.

pub mod admin;
pub mod api;
pub mod balance;
pub mod controller;
pub mod demo;
pub mod diagnostic;
pub mod health;
pub mod listeners;
pub mod matching;
pub mod policy;
pub mod proxy;
pub mod publish;
pub mod shutdown;
pub mod snapshot;
pub mod source;
pub mod standalone;
pub mod table;
