//! switchyard: a Kubernetes ingress controller and HTTP load balancer.
//!
//! Data flows one way (see `DESIGN.md`): a source (files or the
//! Kubernetes API) gathers objects into a [`snapshot::Snapshot`] and sends
//! it on a `watch` channel; [`publish`], the one loop in both modes,
//! compiles it with the pure [`table::compile`] into an immutable
//! [`table::RouteTable`], gates it, and stores it in one `ArcSwap`; the
//! [`proxy`] serves every request from one load of it.
//!
//! Layout, lowest layer first (a module uses only modules of lower layers;
//! `tests/architecture.rs` enforces it):
//! - [`api`]: the resource types, defaults and value parsers; no I/O.
//!   [`shutdown`]: one shutdown signal fanned out to every task.
//! - [`snapshot`]: the `Snapshot` sources produce, `SourceUpdate`,
//!   `DesiredStatus`, `Diagnostic`. [`diagnostic`]: typed compile errors
//!   (field path, reason, stable code) and their accumulator.
//! - [`matching`]: host, path, header matchers and precedence.
//!   [`access_log`]: JSON lines through a bounded channel to one writer
//!   thread; a request never waits.
//!   [`metrics`]: metric handles (resolved at compile), the process-wide
//!   metrics and the scrape encoding; labels from configuration only.
//!   [`balance`]: algorithms and `EndpointState`; no HTTP, no clock.
//!   [`source`]: reading files and watching the API into snapshots, writing
//!   status; never compiles. [`upstream`]: connections to backends (TCP,
//!   TLS, HTTP/1.1 and HTTP/2 pools); knows no routes or rules.
//! - [`health`]: active probes and passive ejection, written to endpoint
//!   state; never on the request path. [`policy`]: per-rule firewall, rate
//!   limits, rewrites, header changes, redirects and retries, compiled
//!   once; no parsing per request.
//! - [`table`]: compile, conflicts, conditions, the route table; no
//!   sockets or clocks.
//! - [`proxy`]: serving, the request phases, forwarding; no locks or
//!   parsing per request.
//! - [`explain`]: which rule a request would take and why, from the
//!   proxy's own lookup and policy code; nothing stateful is executed.
//! - [`admin`]: `/healthz`, `/readyz`, `/routes`, `/explain`, `/metrics`.
//! - [`publish`]: the one compile-and-publish loop, and `switchyard check`.
//! - [`listeners`]: the proxy and admin listeners and the health
//!   supervisor every mode runs, over what the publisher publishes.
//! - [`standalone`], [`controller`]: each mode's wiring.
//! - [`demo`]: the built-in demo backends and routes.

pub mod access_log;
pub mod admin;
pub mod api;
pub mod balance;
pub mod controller;
pub mod demo;
pub mod diagnostic;
pub mod explain;
pub mod health;
pub mod listeners;
pub mod matching;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod publish;
pub mod shutdown;
pub mod snapshot;
pub mod source;
pub mod standalone;
pub mod table;
pub mod tls;
pub mod upstream;
