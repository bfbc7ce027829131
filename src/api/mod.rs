//! The `LoadBalancerRoute` resource (`switchyard.dev/v1alpha1`): the one input
//! both route sources produce.
//!
//! Owns: the serde/schemars shape of the resource, its defaults and the
//! documentation users read with `kubectl explain`. Must not: do I/O or
//! validate anything that needs more than the type system. The value
//! parsers ([`values`]: durations, quantities, CIDRs, methods, header
//! names, `host:port`) live here so every layer parses alike; `table::compile`
//! calls them once per route.
//!
//! Layout, by concept: [`route`] (the spec and its rules), [`matches`]
//! (request conditions), [`filters`] (header, query and path changes,
//! redirects), [`admission`] (firewall, rate limit), [`backend`] (backends
//! and balancing), [`resilience`] (health checks, retries, timeouts),
//! [`tls`] (certificate, redirect, HSTS) and [`status`]. Every type is re-exported here, so users name `api::Backend`.

mod admission;
mod backend;
mod filters;
mod matches;
mod resilience;
mod route;
mod status;
mod tls;
pub mod values;

pub use admission::*;
pub use backend::*;
pub use filters::*;
pub use matches::*;
pub use resilience::*;
pub use route::*;
pub use status::*;
pub use tls::*;

/// The CustomResourceDefinition as YAML: what `switchyard crd` prints and
/// `crds/` holds.
pub fn crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube::CustomResourceExt;
    serde_yaml_ng::to_string(&LoadBalancerRoute::crd())
}
