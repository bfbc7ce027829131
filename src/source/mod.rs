//! Route sources: where `LoadBalancerRoute` documents come from.
//!
//! Owns: reading files ([`file`]) and watching the Kubernetes API
//! ([`kube`]), each producing a [`Snapshot`](crate::snapshot::Snapshot).
//! Must not: route, compile or proxy — a source only gathers objects;
//! `table::compile` decides what they mean.

pub mod file;
pub mod kube;
