//! Route sources: where `LoadBalancerRoute` documents come from.
//!
//! Owns: reading files ([`file`](mod@file)) and watching the Kubernetes API
//! ([`kube`]), each sending a [`SourceUpdate`](crate::snapshot::SourceUpdate)
//! (a snapshot and its diagnostics) on a `watch` channel. Must not: route,
//! compile, publish or proxy — a source only gathers objects;
//! `table::compile` decides what they mean, `publish` what is served.

pub mod file;
pub mod kube;
