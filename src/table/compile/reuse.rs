//! Compile step: reusing the routes the previous table compiled whose
//! inputs have not changed, so an edit to one route of 10,000 compiles one
//! route (and assembles the table), not 10,000.
//!
//! Owns [`Reuse`]: each accepted route's compile, kept with what it read —
//! its spec, the Services and EndpointSlices its backends name, and the
//! snapshot-wide settings every route reads (the backend policy, the TLS
//! settings). A route is reused only when all of these are equal now, so
//! reusing gives the table a fresh compile would. Routes with backend TLS
//! (whose CA bundles come from ConfigMaps and Secrets) are always compiled.

use std::collections::HashMap;
use std::sync::Arc;

use super::CompiledRoute;
use crate::api::LoadBalancerRouteSpec;
use crate::matching::Pattern;
use crate::snapshot::{
    BackendPolicy, EndpointSliceInfo, ObjectKey, ServiceInfo, Snapshot, SourcedRoute, TlsSettings,
};

/// The accepted routes of a table, kept for the next compile.
#[derive(Debug, Default)]
pub struct Reuse {
    /// What every route's compile read from the snapshot as a whole.
    context: Option<(BackendPolicy, TlsSettings)>,
    /// By namespace and name.
    routes: HashMap<ObjectKey, Arc<Kept>>,
}

/// A route's compile: kept for reuse (the previous table's, or a fresh
/// one), or fresh and not to be kept.
pub(super) enum Outcome {
    /// Kept with what it read.
    Kept(Arc<Kept>),
    /// Not kept (backend TLS).
    Fresh(Box<CompiledRoute>),
}

impl Outcome {
    /// The compile.
    pub(super) fn compiled(&self) -> &CompiledRoute {
        match self {
            Outcome::Kept(kept) => &kept.compiled,
            Outcome::Fresh(compiled) => compiled,
        }
    }
}

/// One route's compile and what it read.
#[derive(Debug)]
pub(super) struct Kept {
    spec: Arc<LoadBalancerRouteSpec>,
    /// The Services its backends name, as they were: their ports and their
    /// EndpointSlices.
    services: Vec<(
        ObjectKey,
        Option<ServiceInfo>,
        Option<Vec<EndpointSliceInfo>>,
    )>,
    /// The regular expressions it compiled, so a reuse keeps them in the
    /// table's store.
    pub patterns: Vec<Arc<Pattern>>,
    /// The compile.
    pub compiled: CompiledRoute,
}

impl Reuse {
    /// An empty store for a compile of `snapshot`.
    pub(super) fn new(snapshot: &Snapshot) -> Reuse {
        Reuse {
            context: Some((snapshot.backends, snapshot.tls.clone())),
            routes: HashMap::new(),
        }
    }

    /// The previous compile of `route`, if nothing it read has changed in
    /// `snapshot`.
    pub(super) fn get(&self, route: &SourcedRoute, snapshot: &Snapshot) -> Option<&Arc<Kept>> {
        let (backends, tls) = self.context.as_ref()?;
        if *backends != snapshot.backends || *tls != snapshot.tls {
            return None;
        }
        let key = (route.namespace.clone(), route.name.clone());
        let kept = self.routes.get(&key)?;
        let same_spec = Arc::ptr_eq(&kept.spec, &route.spec) || kept.spec == route.spec;
        let same_services = kept.services.iter().all(|(key, service, slices)| {
            snapshot.services.get(key) == service.as_ref()
                && snapshot.endpoints.get(key) == slices.as_ref()
        });
        (same_spec && same_services).then_some(kept)
    }

    /// `compiled`, the fresh compile of `route` (which asked for
    /// `patterns`), kept with what it read unless the route is always
    /// compiled (backend TLS).
    pub(super) fn outcome(
        route: &SourcedRoute,
        snapshot: &Snapshot,
        compiled: CompiledRoute,
        patterns: Vec<Arc<Pattern>>,
    ) -> Outcome {
        let backends = route.spec.rules.iter().flat_map(|r| &r.backends);
        if backends.clone().any(|b| b.tls.is_some()) {
            return Outcome::Fresh(Box::new(compiled));
        }
        let mut services: Vec<_> = backends
            .filter_map(|b| b.service.as_ref())
            .map(|name| {
                let key = (route.namespace.clone(), name.clone());
                let service = snapshot.services.get(&key).cloned();
                let slices = snapshot.endpoints.get(&key).cloned();
                (key, service, slices)
            })
            .collect();
        services.sort_by(|a, b| a.0.cmp(&b.0));
        services.dedup_by(|a, b| a.0 == b.0);
        Outcome::Kept(Arc::new(Kept {
            spec: route.spec.clone(),
            services,
            patterns,
            compiled,
        }))
    }

    /// How many routes are kept (tests).
    #[cfg(test)]
    pub(super) fn routes_kept(&self) -> usize {
        self.routes.len()
    }

    /// Keeps `kept` as the compile of `route`.
    pub(super) fn keep(&mut self, route: &SourcedRoute, kept: Arc<Kept>) {
        let key = (route.namespace.clone(), route.name.clone());
        self.routes.insert(key, kept);
    }
}
