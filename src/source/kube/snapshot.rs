//! Reading the reflector caches into a [`Snapshot`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{secrets, Stores};
use crate::api::{LoadBalancerRoute, LoadBalancerRouteSpec};
use crate::snapshot::{
    Age, BackendPolicy, EndpointInfo, EndpointSliceInfo, ObjectKey, ServiceInfo, ServicePortInfo,
    Snapshot, SourcedRoute, TlsSettings,
};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Each route's spec as last put in a snapshot, with the cached object it
/// came from: while the cache holds that same object, the next snapshot
/// shares the spec instead of copying it. At 10,000 routes every watch
/// event (status echoes included) builds a snapshot, so this is the
/// difference between copying every spec each time and copying none; and
/// shared specs compare equal by pointer.
#[derive(Default)]
pub(super) struct Specs(HashMap<ObjectKey, (Arc<LoadBalancerRoute>, Arc<LoadBalancerRouteSpec>)>);

impl Specs {
    /// The spec of `route` (keyed `key`), shared when the cache still holds
    /// the object it was taken from.
    fn of(&self, key: &ObjectKey, route: &Arc<LoadBalancerRoute>) -> Arc<LoadBalancerRouteSpec> {
        match self.0.get(key) {
            Some((object, spec)) if Arc::ptr_eq(object, route) => spec.clone(),
            _ => Arc::new(route.spec.clone()),
        }
    }
}

/// The snapshot of the caches, sorted so equal caches give equal snapshots,
/// and each route's `metadata.generation` (for `observedGeneration`).
/// `specs` carries route specs from one snapshot to the next.
pub(super) fn build(
    stores: &Stores,
    policy: BackendPolicy,
    tls: &TlsSettings,
    specs: &mut Specs,
) -> (Snapshot, BTreeMap<ObjectKey, i64>) {
    let (routes, generations) = routes(stores, specs);
    let snapshot = Snapshot {
        routes,
        backends: policy,
        services: services(stores),
        endpoints: endpoints(stores),
        secrets: secrets::secrets(&stores.secrets),
        config_maps: secrets::config_maps(&stores.config_maps),
        tls: tls.clone(),
    };
    (snapshot, generations)
}

/// The routes, by namespace and name, and their generations.
fn routes(stores: &Stores, specs: &mut Specs) -> (Vec<SourcedRoute>, BTreeMap<ObjectKey, i64>) {
    let origin: Arc<str> = Arc::from("kube");
    let mut generations = BTreeMap::new();
    let mut kept = Specs::default();
    let mut routes: Vec<SourcedRoute> = stores
        .routes
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|route| {
            let namespace = route.metadata.namespace.clone()?;
            let name = route.metadata.name.clone()?;
            let key = (namespace.clone(), name.clone());
            if let Some(generation) = route.metadata.generation {
                generations.insert(key.clone(), generation);
            }
            let spec = specs.of(&key, &route);
            kept.0.insert(key, (route.clone(), spec.clone()));
            Some(SourcedRoute {
                age: Age {
                    created: route
                        .metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.as_second()),
                    position: 0,
                },
                namespace,
                name,
                origin: origin.clone(),
                spec,
            })
        })
        .collect();
    // Routes deleted since are forgotten.
    *specs = kept;
    routes.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    (routes, generations)
}

/// The Services' ports, by namespace and name.
fn services(stores: &Stores) -> BTreeMap<ObjectKey, ServiceInfo> {
    stores
        .services
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|service| {
            let key = (
                service.metadata.namespace.clone()?,
                service.metadata.name.clone()?,
            );
            let ports = service
                .spec
                .as_ref()
                .and_then(|spec| spec.ports.as_ref())
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| ServicePortInfo {
                            name: p.name.clone().filter(|n| !n.is_empty()),
                            port: p.port,
                            app_protocol: p.app_protocol.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some((key, ServiceInfo { ports }))
        })
        .collect()
}

/// The EndpointSlices by the Service they belong to, each Service's slices
/// sorted by slice name.
fn endpoints(stores: &Stores) -> BTreeMap<ObjectKey, Vec<EndpointSliceInfo>> {
    let mut slices: Vec<(ObjectKey, String, EndpointSliceInfo)> = stores
        .slices
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|slice| {
            let namespace = slice.metadata.namespace.clone()?;
            let service = slice
                .metadata
                .labels
                .as_ref()?
                .get(SERVICE_NAME_LABEL)?
                .clone();
            let name = slice.metadata.name.clone().unwrap_or_default();
            Some(((namespace, service), name, slice_info(&slice)))
        })
        .collect();
    slices.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut endpoints: BTreeMap<ObjectKey, Vec<EndpointSliceInfo>> = BTreeMap::new();
    for (key, _, info) in slices {
        endpoints.entry(key).or_default().push(info);
    }
    endpoints
}

fn slice_info(slice: &EndpointSlice) -> EndpointSliceInfo {
    let ports = slice
        .ports
        .as_ref()
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| Some((p.name.clone().filter(|n| !n.is_empty()), p.port?)))
                .collect()
        })
        .unwrap_or_default();
    let endpoints = slice
        .endpoints
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let conditions = e.conditions.as_ref();
            EndpointInfo {
                addresses: e.addresses.clone(),
                // "nil should be interpreted as ready" (EndpointConditions).
                ready: conditions.and_then(|c| c.ready).unwrap_or(true),
                terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
            }
        })
        .collect();
    EndpointSliceInfo { ports, endpoints }
}
