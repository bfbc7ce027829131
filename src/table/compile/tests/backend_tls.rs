//! Compile tests: HTTPS backends' `tls` (name, CA bundle, insecure), the
//! problems it can have and the `BackendTLSVerified` condition.

use std::collections::BTreeMap;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::transport::{cluster_with, condition, error_fields, status, svc, transports};
use super::*;
use crate::api::{BackendProtocol, BackendTls, CaCertificateRef, CaKind};
use crate::snapshot::SecretInfo;

/// A self-signed CA certificate, PEM.
fn ca_pem() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

fn ca_object(ca_crt: Option<&str>) -> SecretInfo {
    SecretInfo {
        origin: Arc::from("cas.yaml"),
        type_: None,
        data: (ca_crt.iter())
            .map(|pem| ("ca.crt".to_owned(), Arc::from(pem.as_bytes())))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn https(backend: Backend, tls: BackendTls) -> Backend {
    Backend {
        protocol: Some(BackendProtocol::Https),
        tls: Some(tls),
        ..backend
    }
}

fn ca_ref(kind: CaKind, name: &str) -> CaCertificateRef {
    CaCertificateRef {
        kind,
        name: name.to_owned(),
    }
}

fn verified_by(refs: Vec<CaCertificateRef>) -> BackendTls {
    BackendTls {
        ca_certificate_refs: refs,
        ..BackendTls::default()
    }
}

#[test]
fn tls_without_https_is_a_field_error() {
    let backend = Backend {
        protocol: Some(BackendProtocol::H2c),
        tls: Some(BackendTls::default()),
        ..address("127.0.0.1:1")
    };
    let r = route("shop", "mango", 1).raw_rule(RouteRule {
        backends: vec![address("127.0.0.1:2"), backend],
        ..RouteRule::default()
    });
    let compiled = compile(&snapshot(vec![r]), &RouteTable::default(), 0);
    let st = status(&compiled, "mango");
    assert_eq!(st.reason, Reason::Invalid);
    assert_eq!(
        error_fields(&compiled, "mango"),
        ["spec.rules[0].backends[1].tls"]
    );
    assert!(st.errors[0].message.contains("H2C"), "{:?}", st.errors);
}

#[test]
fn tls_on_a_port_whose_app_protocol_is_not_https_is_invalid_backend_tls() {
    let backend = Backend {
        tls: Some(BackendTls::default()),
        ..svc("a")
    };
    let route = service_route("mango", 1, vec![backend]);
    let s = cluster_with(vec![route], &[("a", Some("kubernetes.io/h2c"))]);
    let compiled = compile(&s, &RouteTable::default(), 0);
    assert!(
        served(&compiled.table, "mango.com").is_err(),
        "no endpoints"
    );
    let (_, reason, message) = condition(&compiled, "mango", "ResolvedRefs").unwrap();
    assert_eq!(reason, "InvalidBackendTLS");
    assert!(message.contains("protocol: HTTPS"), "{message}");
}

#[test]
fn contradictory_tls_settings_are_field_errors() {
    let cases = [
        (
            "insecure with CA refs",
            BackendTls {
                insecure_skip_verify: true,
                ..verified_by(vec![ca_ref(CaKind::ConfigMap, "ca")])
            },
            "spec.rules[0].backends[0].tls.insecureSkipVerify",
        ),
        (
            "a hostname that is not one",
            BackendTls {
                hostname: Some("not a name".to_owned()),
                ..BackendTls::default()
            },
            "spec.rules[0].backends[0].tls.hostname",
        ),
    ];
    for (case, tls, field) in cases {
        let r = route("shop", "mango", 1).raw_rule(RouteRule {
            backends: vec![https(address("127.0.0.1:1"), tls)],
            ..RouteRule::default()
        });
        let compiled = compile(&snapshot(vec![r]), &RouteTable::default(), 0);
        assert_eq!(status(&compiled, "mango").reason, Reason::Invalid, "{case}");
        assert_eq!(error_fields(&compiled, "mango"), [field], "{case}");
    }
}

#[test]
fn a_ca_that_cannot_be_read_is_invalid_ca_certificate_ref_and_gets_no_traffic() {
    // (case, the object named `api-ca`, what the message says)
    let cases = [
        ("missing object", None, "ConfigMap shop/api-ca not found"),
        ("no ca.crt", Some(ca_object(None)), "has no ca.crt"),
        (
            "bad PEM",
            Some(ca_object(Some("not a certificate"))),
            "shop/api-ca",
        ),
    ];
    for (case, object, needle) in cases {
        let backend = https(
            address("127.0.0.1:1"),
            verified_by(vec![ca_ref(CaKind::ConfigMap, "api-ca")]),
        );
        let r = route("shop", "mango", 1)
            .hosts(&["mango.com"])
            .raw_rule(RouteRule {
                backends: vec![backend],
                ..RouteRule::default()
            });
        let mut s = snapshot(vec![r]);
        if let Some(object) = object {
            s.config_maps
                .insert(("shop".into(), "api-ca".into()), object);
        }
        let compiled = compile(&s, &RouteTable::default(), 0);
        assert!(
            served(&compiled.table, "mango.com").is_err(),
            "{case}: no endpoints"
        );
        let (state, reason, message) = condition(&compiled, "mango", "ResolvedRefs").unwrap();
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "InvalidCACertificateRef"),
            "{case}"
        );
        assert!(message.contains(needle), "{case}: {message}");
        let (_, reason, _) = condition(&compiled, "mango", "BackendTLSVerified").unwrap();
        assert_eq!(reason, "InvalidCACertificateRef", "{case}");
        assert_eq!(
            error_fields(&compiled, "mango"),
            ["spec.rules[0].backends[0].tls.caCertificateRefs[0]"],
            "{case}"
        );
    }
}

#[test]
fn a_config_map_ca_and_a_secret_ca_give_the_same_bundle() {
    let pem = ca_pem();
    let mut bundles = Vec::new();
    for kind in [CaKind::ConfigMap, CaKind::Secret] {
        let backend = https(
            address("127.0.0.1:1"),
            verified_by(vec![ca_ref(kind, "api-ca")]),
        );
        let r = route("shop", "mango", 1)
            .hosts(&["mango.com"])
            .raw_rule(RouteRule {
                backends: vec![backend],
                ..RouteRule::default()
            });
        let mut s = snapshot(vec![r]);
        let key = ("shop".to_owned(), "api-ca".to_owned());
        s.config_maps.insert(key.clone(), ca_object(Some(&pem)));
        s.secrets.insert(key, ca_object(Some(&pem)));
        let compiled = compile(&s, &RouteTable::default(), 0);
        let (_, transport) = transports(&compiled.table, "mango.com").remove(0);
        let tls = transport.tls.expect("TLS settings");
        assert_eq!(&*tls.server_name, "127.0.0.1", "the address's host");
        let (state, reason, _) = condition(&compiled, "mango", "BackendTLSVerified").unwrap();
        assert_eq!((state.as_str(), reason.as_str()), ("True", "Verified"));
        bundles.push(tls.ca_pem.clone().expect("a CA bundle"));
    }
    assert_eq!(bundles[0], bundles[1]);
    assert_eq!(&*bundles[0], pem.as_bytes());
}

#[test]
fn insecure_skip_verify_is_served_with_a_warning_condition() {
    let insecure = BackendTls {
        insecure_skip_verify: true,
        ..BackendTls::default()
    };
    let backend = Backend {
        tls: Some(insecure),
        ..svc("a")
    };
    let s = cluster_with(
        vec![service_route("mango", 1, vec![backend])],
        &[("a", Some("https"))],
    );
    let compiled = compile(&s, &RouteTable::default(), 0);
    assert!(compiled.is_clean());
    let (_, transport) = transports(&compiled.table, "mango.com").remove(0);
    let tls = transport.tls.unwrap();
    assert!(tls.insecure);
    assert_eq!(&*tls.server_name, "a.shop.svc", "the Service's name as SNI");
    let (state, reason, message) = condition(&compiled, "mango", "BackendTLSVerified").unwrap();
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "InsecureSkipVerify")
    );
    assert!(message.contains("spec.rules[0].backends[0]"), "{message}");
    let (state, ..) = condition(&compiled, "mango", "Ready").unwrap();
    assert_eq!(state, "True");
}

#[test]
fn a_bad_backend_ca_is_a_located_diagnostic() {
    let backend = https(
        address("127.0.0.1:1"),
        verified_by(vec![ca_ref(CaKind::Secret, "gone")]),
    );
    let r = route("shop", "mango", 1).raw_rule(RouteRule {
        backends: vec![backend],
        ..RouteRule::default()
    });
    let compiled = compile(&snapshot(vec![r]), &RouteTable::default(), 0);
    let found: Vec<_> = status(&compiled, "mango").diagnostics().collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(&*found[0].origin, "test.yaml");
    assert_eq!(found[0].resource.as_deref(), Some("shop/mango"));
    assert_eq!(
        found[0].field.as_deref(),
        Some("spec.rules[0].backends[0].tls.caCertificateRefs[0]")
    );
    assert!(
        found[0].message.contains("Secret shop/gone not found"),
        "{found:?}"
    );
}
