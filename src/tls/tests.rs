use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};

use super::*;

const NOW: i64 = 1_800_000_000;

/// A self-signed certificate for `names` and its key, as PEM.
fn pem(names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn cert(names: &[&str]) -> Arc<Certificate> {
    let (crt, key) = pem(names);
    Arc::new(load_certificate(crt.as_bytes(), key.as_bytes(), NOW).unwrap())
}

#[test]
fn a_matching_chain_and_key_load_with_their_names_lowercased() {
    let (crt, key) = pem(&["WWW.Mango.test", "*.mango.test"]);
    let loaded = load_certificate(crt.as_bytes(), key.as_bytes(), NOW).unwrap();
    assert_eq!(
        &*loaded.names,
        &["www.mango.test".into(), "*.mango.test".into()]
    );
    assert!(loaded.not_after > NOW);
    assert!(!loaded.serial.is_empty());
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let (crt, _) = pem(&["a.test"]);
    let (_, other_key) = pem(&["a.test"]);
    let err = load_certificate(crt.as_bytes(), other_key.as_bytes(), NOW).unwrap_err();
    assert_eq!(err, CertProblem::KeyMismatch);
}

#[test]
fn an_expired_certificate_is_refused_with_its_serial() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["old.test".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let crt = params.self_signed(&key).unwrap().pem();
    let err = load_certificate(crt.as_bytes(), key.serialize_pem().as_bytes(), NOW).unwrap_err();
    assert!(matches!(err, CertProblem::Expired { .. }), "{err:?}");
    assert_eq!(err.code(), "tls-expired");
}

#[test]
fn malformed_pem_and_empty_files_name_the_key_at_fault() {
    let (crt, key) = pem(&["a.test"]);
    let broken = crt.replace("MII", "M!I");
    let err = load_certificate(broken.as_bytes(), key.as_bytes(), NOW).unwrap_err();
    assert!(err.to_string().contains("tls.crt"), "{err}");
    let err = load_certificate(b"", key.as_bytes(), NOW).unwrap_err();
    assert_eq!(err, CertProblem::NoCertificate("tls.crt"));
    let err = load_certificate(crt.as_bytes(), b"not a key", NOW).unwrap_err();
    assert!(err.to_string().contains("tls.key"), "{err}");
}

#[test]
fn a_certificate_without_dns_names_is_refused() {
    let (crt, key) = pem(&[]);
    let err = load_certificate(crt.as_bytes(), key.as_bytes(), NOW).unwrap_err();
    assert_eq!(err, CertProblem::NoNames);
}

#[test]
fn an_exact_name_beats_a_wildcard_which_covers_one_label_then_the_default() {
    let wildcard = cert(&["*.mango.test"]);
    let exact = cert(&["www.mango.test"]);
    let fallback = cert(&["default.test"]);
    let mut index = CertIndex::default();
    index.insert(&wildcard);
    index.insert(&exact);
    let pick = |index: &CertIndex, name: Option<&str>| index.lookup(name).map(|c| c.serial.clone());
    assert_eq!(
        pick(&index, Some("WWW.mango.test.")),
        Some(exact.serial.clone())
    );
    assert_eq!(
        pick(&index, Some("shop.mango.test")),
        Some(wildcard.serial.clone())
    );
    assert_eq!(pick(&index, Some("a.shop.mango.test")), None);
    assert_eq!(pick(&index, Some("mango.test")), None);
    assert_eq!(pick(&index, None), None);
    index.set_default(fallback.clone());
    assert_eq!(
        pick(&index, Some("other.test")),
        Some(fallback.serial.clone())
    );
    assert_eq!(pick(&index, None), Some(fallback.serial.clone()));
}

#[test]
fn the_first_certificate_inserted_keeps_a_name_two_cover() {
    let older = cert(&["www.mango.test"]);
    let younger = cert(&["www.mango.test"]);
    let mut index = CertIndex::default();
    index.insert(&older);
    index.insert(&younger);
    let got = index.lookup(Some("www.mango.test")).unwrap();
    assert!(Arc::ptr_eq(got, &older));
}

#[test]
fn coverage_of_route_hosts_follows_the_one_label_wildcard_rule() {
    let names: Vec<Box<str>> = vec!["*.mango.test".into(), "mango.test".into()];
    assert!(covers(&names, "www.mango.test"));
    assert!(covers(&names, "mango.test"));
    assert!(covers(&names, "*.mango.test"));
    assert!(!covers(&names, "a.b.mango.test"));
    assert!(!covers(&names, "*.b.mango.test"));
    assert!(!covers(&names, "apple.test"));
}

#[test]
fn a_ca_bundle_needs_at_least_one_certificate() {
    let (crt, _) = pem(&["ca.test"]);
    assert_eq!(load_ca(crt.as_bytes()).unwrap().len(), 1);
    assert_eq!(
        load_ca(b"").unwrap_err(),
        CertProblem::NoCertificate("ca.crt")
    );
}

#[test]
fn the_listener_offers_h2_then_http1_and_never_early_data() {
    let index = Arc::new(CertIndex::default());
    let options = TlsOptions {
        min_version: crate::snapshot::TlsVersion::Tls13,
    };
    let config = ListenerConfig::build(index, options, None, &Sessions::new()).unwrap();
    assert_eq!(
        config.server.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert_eq!(config.server.max_early_data_size, 0);
}

#[test]
fn a_refused_name_gets_no_certificate_not_even_the_default() {
    let wildcard = cert(&["*.mango.test"]);
    let mut index = CertIndex::default();
    index.refuse_exact("broken.mango.test");
    index.insert(&wildcard);
    index.set_default(cert(&["default.test"]));
    assert!(index.lookup(Some("broken.mango.test")).is_none());
    assert!(index.lookup(Some("shop.mango.test")).is_some());
}
