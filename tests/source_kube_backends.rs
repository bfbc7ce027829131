//! How backends are spoken to, through the Kubernetes source: a Service
//! port's `appProtocol` reaches the snapshot as written and chooses the
//! targets' protocol; CA-bundle ConfigMaps (labelled
//! `switchyard.dev/ca-bundle=true`, and only those) are watched and verify
//! HTTPS backends. Against the in-process double, or a real apiserver when
//! `SWITCHYARD_TEST_KUBECONFIG` names one.

mod support;

use http::{HeaderMap, Method};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::{json, Value};
use switchyard::snapshot::{ObjectKey, Snapshot};
use switchyard::table::{compile, RouteStatus, RouteTable};
use switchyard::upstream::{Protocol, Transport};

use support::cluster::Cluster;
use support::kube_api::{config_map, endpoint_slice, route, service};
use support::kube_source::Source;

fn key(ns: &str, name: &str) -> ObjectKey {
    (ns.to_owned(), name.to_owned())
}

/// Service `name` (port 80 named `http`, `appProtocol` as given) with one
/// ready endpoint `ip:8080`.
async fn service_with(cluster: &Cluster, name: &str, app_protocol: &str, ip: &str) {
    let mut svc = service(cluster.ns(), name, &[("http", 80, 8080)]);
    svc["spec"]["ports"][0]["appProtocol"] = json!(app_protocol);
    cluster.apply(svc).await;
    let slice = endpoint_slice(cluster.ns(), name, name, "http", 8080, &[(ip, true, false)]);
    cluster.apply(slice).await;
}

/// A route for `host` with one backend, `backend` merged over
/// `{service: svc, port: 80}`.
fn backend_route(cluster: &Cluster, host: &str, svc: &str, backend: Value) -> Value {
    let mut b = json!({"service": svc, "port": 80});
    if let (Some(b), Some(extra)) = (b.as_object_mut(), backend.as_object()) {
        b.extend(extra.clone());
    }
    let spec = json!({"hosts": [host], "rules": [{"backends": [b]}]});
    route(cluster.ns(), host, spec)
}

/// A ConfigMap with `ca.crt`, labelled as a CA bundle when `labelled`.
fn ca_config_map(cluster: &Cluster, name: &str, pem: &str, labelled: bool) -> Value {
    let mut map = config_map(cluster.ns(), name, &[("ca.crt", pem)]);
    if labelled {
        map["metadata"]["labels"] = json!({"switchyard.dev/ca-bundle": "true"});
    }
    map
}

fn ca_pem() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

/// The compiled table and the status of the route for `host`.
fn compiled(snapshot: &Snapshot, host: &str) -> (RouteTable, RouteStatus) {
    let compiled = compile(snapshot, &RouteTable::default(), 0);
    let status = (compiled.statuses.iter())
        .find(|s| s.name == host)
        .expect("the route's status")
        .clone();
    (compiled.table, status)
}

fn transports(table: &RouteTable, host: &str) -> Vec<Transport> {
    let rule = table
        .find(Some(host), &Method::GET, "/", &HeaderMap::new())
        .expect("a rule for the host");
    (rule.backends.targets().iter())
        .map(|t| t.pool.transport().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_app_protocol_gives_the_routes_targets_h2c() {
    let cluster = Cluster::start("app-protocol-h2c").await;
    let ns = cluster.ns().to_owned();
    service_with(&cluster, "grpc", "kubernetes.io/h2c", "10.0.0.7").await;
    cluster
        .apply(backend_route(&cluster, "grpc.test", "grpc", json!({})))
        .await;
    let mut source = Source::start(&cluster, vec![ns.clone()], Default::default());
    let snapshot = source
        .until("the route and its Service", |s| {
            !s.routes.is_empty() && s.endpoints.contains_key(&key(&ns, "grpc"))
        })
        .await;
    let port = &snapshot.services[&key(&ns, "grpc")].ports[0];
    assert_eq!(port.app_protocol.as_deref(), Some("kubernetes.io/h2c"));

    let (table, status) = compiled(&snapshot, "grpc.test");
    assert!(status.errors.is_empty(), "{:?}", status.errors);
    let protocols: Vec<Protocol> = transports(&table, "grpc.test")
        .iter()
        .map(|t| t.protocol)
        .collect();
    assert_eq!(protocols, [Protocol::H2c]);
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labelled_ca_config_map_is_picked_up_and_verifies_an_https_backend() {
    let cluster = Cluster::start("ca-bundle-label").await;
    let ns = cluster.ns().to_owned();
    let pem = ca_pem();
    cluster
        .apply(ca_config_map(&cluster, "unlabelled", "x", false))
        .await;
    service_with(&cluster, "api", "https", "10.0.0.8").await;
    let tls = json!({"tls": {"hostname": "api.shop.svc",
        "caCertificateRefs": [{"kind": "ConfigMap", "name": "api-ca"}]}});
    cluster
        .apply(backend_route(&cluster, "api.test", "api", tls))
        .await;
    let mut source = Source::start(&cluster, vec![ns.clone()], Default::default());
    let first = source
        .until("the route and its Service", |s| {
            !s.routes.is_empty() && s.endpoints.contains_key(&key(&ns, "api"))
        })
        .await;
    assert!(first.config_maps.is_empty(), "no unlabelled ConfigMap");
    let (_, status) = compiled(&first, "api.test");
    let message = &status.resolved_refs.message;
    assert_eq!(status.resolved_refs.reason, "InvalidCACertificateRef");
    assert!(
        message.contains("switchyard.dev/ca-bundle=true"),
        "{message}"
    );

    cluster
        .apply(ca_config_map(&cluster, "api-ca", &pem, true))
        .await;
    let snapshot = source
        .until("the labelled CA", |s| {
            s.config_maps.contains_key(&key(&ns, "api-ca"))
        })
        .await;
    let (table, status) = compiled(&snapshot, "api.test");
    let verified = status.backend_tls.expect("BackendTLSVerified");
    assert!(verified.status, "{verified:?}");
    let tls = transports(&table, "api.test")[0].tls.clone().expect("TLS");
    assert_eq!(tls.ca_pem.as_deref(), Some(pem.as_bytes()));
    source.stop().await;
}
