//! Compile step: how one backend is spoken to — its protocol (its own
//! `protocol`, else the Service port's `appProtocol`) and, for HTTPS, how
//! its certificate is verified (the name, the CA bundle) — as the
//! [`Transport`] its endpoints' targets carry.
//!
//! Pure: reads the backend, the `appProtocol` and the snapshot's
//! ConfigMaps and Secrets. A backend that contradicts itself is a field
//! error (the route is refused); a problem the cluster may fix (an
//! `appProtocol` switchyard cannot speak, a missing CA object, an `https`
//! port without `tls.hostname`) leaves the backend without endpoints, is
//! said on `ResolvedRefs`, and is a located problem for `check`. Nothing
//! ever falls back: not to HTTP/1.1, not to the system roots.

use std::sync::Arc;

use rustls_pki_types::ServerName;

use super::super::ConditionReason;
use crate::api::{self, BackendProtocol, CaKind};
use crate::diagnostic::{FieldPath, Invalid};
use crate::snapshot::{BackendPolicy, SecretInfo, Snapshot, CA_BUNDLE_LABEL, TLS_SECRET_TYPE};
use crate::tls;
use crate::upstream::{Protocol, TlsSettings, Transport};

/// What kind of backend a [`Transport`] is for.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reach<'a> {
    /// A Service port, with its `appProtocol` as written.
    Service {
        /// The port's `appProtocol`, if any.
        app_protocol: Option<&'a str>,
        /// `SERVICE.NAMESPACE.svc`: the SNI when nothing is verified and
        /// no `hostname` is given.
        dns_name: &'a str,
    },
    /// A static address; its host is the default TLS name.
    Static {
        /// The address's host (an IPv6 address without brackets).
        host: &'a str,
    },
}

/// Why a backend has no [`Transport`].
#[derive(Debug)]
pub(super) struct Unusable {
    /// The field at fault, e.g. `spec.rules[0].backends[1].tls.hostname`.
    pub field: FieldPath,
    /// What is wrong.
    pub reason: Invalid,
    /// `None`: the route itself is wrong (a field error, it is refused).
    /// Otherwise the `ResolvedRefs` reason: the backend gets no endpoints
    /// and the route is served.
    pub condition: Option<ConditionReason>,
}

/// The transport of `backend` (at `field`) of a route in `namespace`.
pub(super) fn transport(
    backend: &api::Backend,
    reach: Reach<'_>,
    field: &FieldPath,
    namespace: &str,
    snapshot: &Snapshot,
) -> Result<Transport, Unusable> {
    let protocol = match (backend.protocol, reach) {
        (Some(explicit), _) => from_spec(explicit),
        (None, Reach::Static { .. }) => Protocol::Http1,
        (None, Reach::Service { app_protocol, .. }) => from_port(backend, app_protocol, field)?,
    };
    match (protocol, &backend.tls) {
        (Protocol::Https, spec) => {
            let tls = https(spec.as_ref(), reach, &field.key("tls"), namespace, snapshot)?;
            Ok(Transport {
                protocol,
                tls: Some(Arc::new(tls)),
            })
        }
        (_, Some(_)) => Err(Unusable {
            field: field.key("tls"),
            reason: Invalid::TlsNeedsHttps(protocol_name(protocol)),
            condition: None,
        }),
        (_, None) => Ok(Transport {
            protocol,
            tls: None,
        }),
    }
}

/// The protocol of a Service backend without `protocol`: its port's
/// `appProtocol`'s, which must be HTTPS if the backend has `tls`.
fn from_port(
    backend: &api::Backend,
    app_protocol: Option<&str>,
    field: &FieldPath,
) -> Result<Protocol, Unusable> {
    let found = protocol_of(app_protocol).ok_or_else(|| Unusable {
        field: field.clone(),
        reason: Invalid::UnsupportedProtocol(app_protocol.unwrap_or_default().to_owned()),
        condition: Some(ConditionReason::UnsupportedProtocol),
    })?;
    if backend.tls.is_some() && found != Protocol::Https {
        let written = app_protocol.map_or_else(|| "none".to_owned(), |p| format!("{p:?}"));
        return Err(Unusable {
            field: field.key("tls"),
            reason: Invalid::TlsAppProtocolNotHttps(written),
            condition: Some(ConditionReason::InvalidBackendTls),
        });
    }
    Ok(found)
}

/// The protocol a Service port's `appProtocol` names (Gateway API GEP-1911,
/// Kubernetes KEP-3726), compared case-insensitively: none, `http` and
/// `kubernetes.io/ws` are HTTP/1.1, `kubernetes.io/h2c` is h2c, `https`
/// and `kubernetes.io/wss` are HTTPS. `None` for any other value: it is
/// not guessed at (`grpc` may be h2c or TLS).
fn protocol_of(app_protocol: Option<&str>) -> Option<Protocol> {
    const NAMES: [(&str, Protocol); 5] = [
        ("http", Protocol::Http1),
        ("kubernetes.io/ws", Protocol::Http1),
        ("kubernetes.io/h2c", Protocol::H2c),
        ("https", Protocol::Https),
        ("kubernetes.io/wss", Protocol::Https),
    ];
    let Some(value) = app_protocol.filter(|p| !p.is_empty()) else {
        return Some(Protocol::Http1);
    };
    (NAMES.iter())
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, protocol)| *protocol)
}

fn from_spec(protocol: BackendProtocol) -> Protocol {
    match protocol {
        BackendProtocol::Http => Protocol::Http1,
        BackendProtocol::H2c => Protocol::H2c,
        BackendProtocol::Https => Protocol::Https,
    }
}

/// The `protocol` value that selects `protocol`, for messages.
fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http1 => "HTTP",
        Protocol::H2c => "H2C",
        Protocol::Https => "HTTPS",
    }
}

/// The TLS settings of an HTTPS backend whose `tls` (at `at`) is `spec`.
fn https(
    spec: Option<&api::BackendTls>,
    reach: Reach<'_>,
    at: &FieldPath,
    namespace: &str,
    snapshot: &Snapshot,
) -> Result<TlsSettings, Unusable> {
    let default = api::BackendTls::default();
    let spec = spec.unwrap_or(&default);
    if spec.insecure_skip_verify && !spec.ca_certificate_refs.is_empty() {
        return Err(Unusable {
            field: at.key("insecureSkipVerify"),
            reason: Invalid::InsecureWithCa,
            condition: None,
        });
    }
    let server_name = server_name(spec, reach, at)?;
    let ca_pem = ca_bundle(spec, at, namespace, snapshot)?;
    Ok(TlsSettings {
        server_name,
        ca_pem,
        insecure: spec.insecure_skip_verify,
    })
}

/// The name sent as SNI and verified: `hostname`, else a static address's
/// host. A Service backend without one is unusable unless nothing is
/// verified: then the name is only SNI, and the Service's own DNS name
/// (`SERVICE.NAMESPACE.svc`) is sent.
fn server_name(
    spec: &api::BackendTls,
    reach: Reach<'_>,
    at: &FieldPath,
) -> Result<Arc<str>, Unusable> {
    let name = match (&spec.hostname, reach) {
        (Some(name), _) => name.as_str(),
        (None, Reach::Static { host }) => host,
        (None, Reach::Service { dns_name, .. }) if spec.insecure_skip_verify => dns_name,
        (None, Reach::Service { .. }) => {
            return Err(Unusable {
                field: at.key("hostname"),
                reason: Invalid::HostnameMissing,
                condition: Some(ConditionReason::InvalidBackendTls),
            })
        }
    };
    match ServerName::try_from(name) {
        Ok(_) => Ok(Arc::from(name)),
        Err(_) => Err(Unusable {
            field: at.key("hostname"),
            reason: Invalid::BackendHostname(name.to_owned()),
            condition: None,
        }),
    }
}

/// Every `caCertificateRefs` entry's `ca.crt`, checked and concatenated;
/// `None` (the system roots) when there is none.
fn ca_bundle(
    spec: &api::BackendTls,
    at: &FieldPath,
    namespace: &str,
    snapshot: &Snapshot,
) -> Result<Option<Arc<[u8]>>, Unusable> {
    if spec.ca_certificate_refs.is_empty() {
        return Ok(None);
    }
    let mut bundle = Vec::new();
    for (i, reference) in spec.ca_certificate_refs.iter().enumerate() {
        let pem = ca_crt(reference, namespace, snapshot).map_err(|(code, message)| Unusable {
            field: at.key("caCertificateRefs").index(i),
            reason: Invalid::CaCertificate { code, message },
            condition: Some(ConditionReason::InvalidCaCertificateRef),
        })?;
        if !bundle.is_empty() && !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(pem);
    }
    Ok(Some(Arc::from(bundle)))
}

/// The `ca.crt` of the object `reference` names, once it parses as CA
/// certificates; or a stable code and a message naming the object.
fn ca_crt<'s>(
    reference: &api::CaCertificateRef,
    namespace: &str,
    snapshot: &'s Snapshot,
) -> Result<&'s [u8], (&'static str, String)> {
    let key = (namespace.to_owned(), reference.name.clone());
    let (kind, object): (_, Option<&SecretInfo>) = match reference.kind {
        CaKind::ConfigMap => ("ConfigMap", snapshot.config_maps.get(&key)),
        CaKind::Secret => ("Secret", snapshot.secrets.get(&key)),
    };
    let named = format!("{kind} {namespace}/{}", reference.name);
    let Some(object) = object else {
        let hint = match (snapshot.backends, reference.kind) {
            (BackendPolicy::StaticOnly, _) => String::new(),
            (BackendPolicy::Cluster { .. }, CaKind::ConfigMap) => {
                format!(" (only ConfigMaps labelled {CA_BUNDLE_LABEL}=true are read)")
            }
            (BackendPolicy::Cluster { .. }, CaKind::Secret) => {
                format!(" (only Secrets of type {TLS_SECRET_TYPE} are read)")
            }
        };
        return Err(("backend-ca-not-found", format!("{named} not found{hint}")));
    };
    let Some(pem) = object.data.get("ca.crt") else {
        return Err(("backend-ca-missing", format!("{named} has no ca.crt")));
    };
    match tls::load_ca(pem) {
        Ok(_) => Ok(pem),
        Err(problem) => Err(("backend-ca-invalid", format!("{named}: {problem}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_protocols_map_as_gep_1911_reads_them_and_others_are_not_guessed() {
        let cases = [
            (None, Some(Protocol::Http1)),
            (Some(""), Some(Protocol::Http1)),
            (Some("HTTP"), Some(Protocol::Http1)),
            (Some("kubernetes.io/ws"), Some(Protocol::Http1)),
            (Some("kubernetes.io/h2c"), Some(Protocol::H2c)),
            (Some("https"), Some(Protocol::Https)),
            (Some("kubernetes.io/WSS"), Some(Protocol::Https)),
            (Some("grpc"), None),
            (Some("h2c"), None),
            (Some("HTTP2"), None),
            (Some("kubernetes.io/h2"), None),
        ];
        for (app_protocol, want) in cases {
            assert_eq!(protocol_of(app_protocol), want, "{app_protocol:?}");
        }
    }
}
