//! Which Secrets and ConfigMaps the source watches, and how their caches
//! read into the snapshot's `secrets` and `config_maps`.
//!
//! Owns the watch scopes: `kubernetes.io/tls` Secrets only (a field
//! selector, so Helm release Secrets, tokens and other Opaque Secrets are
//! never listed, let alone cached) in every watched namespace; the
//! `--default-certificate` by name when its namespace is not watched; the
//! `--tls-client-ca` by name, as a Secret of any type (a CA bundle is
//! usually Opaque) and as a ConfigMap; ConfigMaps labelled
//! `switchyard.dev/ca-bundle=true` (backends' `caCertificateRefs`; a
//! label selector, so other ConfigMaps are never cached) in every watched
//! namespace. Must not: judge the data (certificates are compile's
//! business).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::Store;

use crate::snapshot::{ObjectKey, SecretInfo, TlsSettings, CA_BUNDLE_LABEL, TLS_SECRET_TYPE};

/// What one reflector watches: a namespace (`None`: all) and a field or
/// label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Scope {
    /// The namespace, or `None` for all of them.
    pub(super) namespace: Option<String>,
    /// The `fieldSelector` of its list and watch (empty: none).
    pub(super) fields: String,
    /// The `labelSelector` of its list and watch (empty: none).
    pub(super) labels: String,
}

/// The Secret reflectors to run: TLS Secrets in each of `namespaces` (all
/// when empty), the default certificate by name if those miss its
/// namespace, and the client CA by name (any type).
pub(super) fn secret_scopes(namespaces: &[String], tls: &TlsSettings) -> Vec<Scope> {
    let tls_only = format!("type={TLS_SECRET_TYPE}");
    let mut scopes = per_namespace(namespaces, |namespace| Scope {
        namespace,
        fields: tls_only.clone(),
        ..Scope::default()
    });
    if let Some((ns, name)) = &tls.default_certificate {
        if !namespaces.is_empty() && !namespaces.contains(ns) {
            scopes.push(Scope {
                namespace: Some(ns.clone()),
                fields: format!("metadata.name={name},{tls_only}"),
                ..Scope::default()
            });
        }
    }
    scopes.extend(client_ca_scope(tls));
    scopes
}

/// The ConfigMap reflectors to run: CA bundles (labelled
/// `switchyard.dev/ca-bundle=true`) in each of `namespaces` (all when
/// empty), and the client CA by name, if set.
pub(super) fn config_map_scopes(namespaces: &[String], tls: &TlsSettings) -> Vec<Scope> {
    let labels = format!("{CA_BUNDLE_LABEL}=true");
    let mut scopes = per_namespace(namespaces, |namespace| Scope {
        namespace,
        labels: labels.clone(),
        ..Scope::default()
    });
    scopes.extend(client_ca_scope(tls));
    scopes
}

/// One scope for all namespaces when `namespaces` is empty, else one per
/// namespace.
fn per_namespace(namespaces: &[String], scope: impl Fn(Option<String>) -> Scope) -> Vec<Scope> {
    if namespaces.is_empty() {
        return vec![scope(None)];
    }
    namespaces
        .iter()
        .map(|ns| scope(Some(ns.clone())))
        .collect()
}

fn client_ca_scope(tls: &TlsSettings) -> Option<Scope> {
    let (ns, name) = tls.client_ca.as_ref()?;
    Some(Scope {
        namespace: Some(ns.clone()),
        fields: format!("metadata.name={name}"),
        ..Scope::default()
    })
}

/// The Secrets of every store, by namespace and name (one Secret seen by
/// two reflectors is one entry).
pub(super) fn secrets(stores: &[Store<Secret>]) -> BTreeMap<ObjectKey, SecretInfo> {
    let origin: Arc<str> = Arc::from("kube");
    stores
        .iter()
        .flat_map(Store::state)
        .filter_map(|secret| {
            let key = (
                secret.metadata.namespace.clone()?,
                secret.metadata.name.clone()?,
            );
            let data = (secret.data.iter().flatten())
                .map(|(k, v)| (k.clone(), Arc::from(v.0.as_slice())))
                .collect();
            let info = SecretInfo {
                origin: origin.clone(),
                type_: secret.type_.clone(),
                data,
            };
            Some((key, info))
        })
        .collect()
}

/// The ConfigMaps of every store, by namespace and name: `data` as bytes,
/// and `binaryData`.
pub(super) fn config_maps(stores: &[Store<ConfigMap>]) -> BTreeMap<ObjectKey, SecretInfo> {
    let origin: Arc<str> = Arc::from("kube");
    stores
        .iter()
        .flat_map(Store::state)
        .filter_map(|map| {
            let key = (map.metadata.namespace.clone()?, map.metadata.name.clone()?);
            let text = (map.data.iter().flatten()).map(|(k, v)| (k, v.as_bytes()));
            let binary = (map.binary_data.iter().flatten()).map(|(k, v)| (k, v.0.as_slice()));
            let data = text
                .chain(binary)
                .map(|(k, v)| (k.clone(), Arc::from(v)))
                .collect();
            let info = SecretInfo {
                origin: origin.clone(),
                type_: None,
                data,
            };
            Some((key, info))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(ns: Option<&str>, fields: &str) -> Scope {
        Scope {
            namespace: ns.map(str::to_owned),
            fields: fields.to_owned(),
            ..Scope::default()
        }
    }

    fn ca_bundles(ns: Option<&str>) -> Scope {
        Scope {
            namespace: ns.map(str::to_owned),
            labels: "switchyard.dev/ca-bundle=true".to_owned(),
            ..Scope::default()
        }
    }

    fn key(ns: &str, name: &str) -> Option<ObjectKey> {
        Some((ns.to_owned(), name.to_owned()))
    }

    #[test]
    fn only_tls_secrets_are_watched_in_bulk() {
        let tls = TlsSettings::default();
        assert_eq!(
            secret_scopes(&[], &tls),
            [scope(None, "type=kubernetes.io/tls")]
        );
        let namespaces = ["a".to_owned(), "b".to_owned()];
        assert_eq!(
            secret_scopes(&namespaces, &tls),
            [
                scope(Some("a"), "type=kubernetes.io/tls"),
                scope(Some("b"), "type=kubernetes.io/tls"),
            ]
        );
    }

    #[test]
    fn ca_bundle_config_maps_are_watched_by_label_in_each_namespace() {
        let tls = TlsSettings::default();
        assert_eq!(config_map_scopes(&[], &tls), [ca_bundles(None)]);
        let namespaces = ["a".to_owned(), "b".to_owned()];
        assert_eq!(
            config_map_scopes(&namespaces, &tls),
            [ca_bundles(Some("a")), ca_bundles(Some("b"))]
        );
    }

    #[test]
    fn a_default_certificate_outside_the_watched_namespaces_is_watched_by_name() {
        let tls = TlsSettings {
            default_certificate: key("ingress", "wildcard"),
            ..Default::default()
        };
        let namespaces = ["shop".to_owned()];
        assert_eq!(
            secret_scopes(&namespaces, &tls),
            [
                scope(Some("shop"), "type=kubernetes.io/tls"),
                scope(
                    Some("ingress"),
                    "metadata.name=wildcard,type=kubernetes.io/tls"
                ),
            ]
        );
        let watched = ["shop".to_owned(), "ingress".to_owned()];
        assert_eq!(secret_scopes(&watched, &tls).len(), 2, "already watched");
        assert_eq!(secret_scopes(&[], &tls).len(), 1, "all namespaces");
    }

    #[test]
    fn the_client_ca_is_watched_by_name_as_a_secret_of_any_type_and_a_config_map() {
        let tls = TlsSettings {
            client_ca: key("ingress", "client-ca"),
            ..Default::default()
        };
        let by_name = scope(Some("ingress"), "metadata.name=client-ca");
        assert_eq!(
            secret_scopes(&[], &tls),
            [scope(None, "type=kubernetes.io/tls"), by_name.clone()]
        );
        assert_eq!(config_map_scopes(&[], &tls), [ca_bundles(None), by_name]);
    }
}
