//! Builders for the objects tests apply, one per kind the double serves:
//! [`route`], [`service`], [`endpoint_slice`], [`lease`], [`namespace`],
//! [`secret`] (and [`tls_secret`]), [`config_map`].
//!
//! Owns the shape of a typical object of each kind, so tests state intent
//! rather than JSON. Must not touch the double's state: tests hand the
//! result to [`super::KubeApi::apply`] (or to a real apiserver).

use serde_json::{json, Value};

/// A `switchyard.dev/v1alpha1` `LoadBalancerRoute` with `spec`.
pub fn route(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "LoadBalancerRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

/// A ClusterIP `Service` selecting `app: name`, with `ports` as
/// (port name, port, targetPort), TCP.
pub fn service(ns: &str, name: &str, ports: &[(&str, u16, u16)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(port_name, port, target)| {
            json!({"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "ClusterIP", "selector": {"app": name}, "ports": ports},
    })
}

/// A `discovery.k8s.io/v1` IPv4 `EndpointSlice` of `service` with one TCP
/// port and `endpoints` as (ip, ready, terminating); `serving` is
/// `ready || terminating` (a terminating endpoint still serving).
pub fn endpoint_slice(
    ns: &str,
    name: &str,
    service: &str,
    port_name: &str,
    port: u16,
    endpoints: &[(&str, bool, bool)],
) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, ready, terminating)| {
            json!({
                "addresses": [ip],
                "conditions": {"ready": ready, "serving": *ready || *terminating, "terminating": terminating},
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    })
}

/// A `coordination.k8s.io/v1` `Lease` held by `holder`.
pub fn lease(ns: &str, name: &str, holder: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    })
}

/// A `v1` `Namespace`.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A `v1` `Secret` of `type_` whose `data` holds `data` (base64-encoded,
/// as the API carries it).
pub fn secret(ns: &str, name: &str, type_: &str, data: &[(&str, &[u8])]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(key, bytes)| {
            let encoded = serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec()))
                .expect("base64 of a ByteString");
            ((*key).to_owned(), encoded)
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": type_,
        "data": data,
    })
}

/// A `kubernetes.io/tls` `Secret` with `tls.crt` and `tls.key` (the real
/// server requires both keys for this type).
pub fn tls_secret(ns: &str, name: &str, crt: &[u8], key: &[u8]) -> Value {
    secret(
        ns,
        name,
        "kubernetes.io/tls",
        &[("tls.crt", crt), ("tls.key", key)],
    )
}

/// A `v1` `ConfigMap` with text `data`.
pub fn config_map(ns: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(key, text)| ((*key).to_owned(), json!(text)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    })
}
