//! `spec.tls`: certificates from Secrets, the `TLSReady` condition, the
//! SNI index, the last good certificate and the listener's problems.

use std::collections::BTreeMap;

use rcgen::{CertificateParams, KeyPair};

use super::*;
use crate::api::RouteTls;
use crate::snapshot::{SecretInfo, TlsSettings};

const NOW: i64 = 1_800_000_000;

/// A `kubernetes.io/tls` Secret for `names`, self-signed.
fn secret(names: &[&str]) -> SecretInfo {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    tls_secret(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

fn tls_secret(crt: &[u8], key: &[u8]) -> SecretInfo {
    SecretInfo {
        origin: Arc::from("secrets.yaml"),
        type_: Some("kubernetes.io/tls".to_owned()),
        data: BTreeMap::from([
            ("tls.crt".to_owned(), Arc::from(crt)),
            ("tls.key".to_owned(), Arc::from(key)),
        ]),
    }
}

fn tls_route(name: &str, position: u64, hosts: &[&str], secret: &str) -> RouteBuilder {
    let mut r = route("shop", name, position).hosts(hosts).rule(vec![], 1);
    Arc::make_mut(&mut r.0.spec).tls = Some(RouteTls {
        secret_name: secret.to_owned(),
        ..RouteTls::default()
    });
    r
}

fn with_secrets(routes: Vec<RouteBuilder>, secrets: &[(&str, SecretInfo)]) -> Snapshot {
    let mut s = snapshot(routes);
    for (name, info) in secrets {
        s.secrets
            .insert(("shop".to_owned(), (*name).to_owned()), info.clone());
    }
    s.tls = TlsSettings {
        listener: true,
        ..TlsSettings::default()
    };
    s
}

fn tls_condition(compiled: &Compiled, name: &str) -> ConditionState {
    let status = compiled.statuses.iter().find(|s| s.name == name).unwrap();
    status.tls.clone().expect("a TLSReady condition")
}

fn serial(table: &RouteTable, sni: &str) -> Option<String> {
    table
        .tls()
        .index
        .lookup(Some(sni))
        .map(|c| c.serial.clone())
}

#[test]
fn a_route_with_a_good_secret_is_tls_ready_and_its_names_resolve() {
    let s = with_secrets(
        vec![tls_route("mango", 1, &["www.mango.test"], "mango-tls")],
        &[("mango-tls", secret(&["www.mango.test"]))],
    );
    let compiled = compile(&s, &RouteTable::default(), NOW);
    let condition = tls_condition(&compiled, "mango");
    assert!(condition.status, "{condition:?}");
    assert_eq!(condition.reason, "CertificateReady");
    assert!(serial(&compiled.table, "www.mango.test").is_some());
    assert!(compiled.table.tls().config.is_some());
    assert!(compiled.statuses[0].errors.is_empty());
}

#[test]
fn a_missing_secret_is_a_located_problem_and_its_hosts_are_refused() {
    let s = with_secrets(
        vec![
            tls_route("mango", 1, &["www.mango.test"], "absent"),
            tls_route("apple", 2, &["www.apple.test"], "apple-tls"),
        ],
        &[("apple-tls", secret(&["www.apple.test", "*.mango.test"]))],
    );
    let compiled = compile(&s, &RouteTable::default(), NOW);
    let condition = tls_condition(&compiled, "mango");
    assert_eq!(
        (condition.status, condition.reason.as_str()),
        (false, "SecretNotFound")
    );
    assert!(
        condition.message.contains("shop/absent"),
        "{}",
        condition.message
    );
    let mango = &compiled.statuses[0];
    assert!(mango.accepted(), "the route still serves plain HTTP");
    assert_eq!(mango.errors[0].field.to_string(), "spec.tls.secretName");
    assert_eq!(mango.errors[0].code, "tls-secret-not-found");
    // apple's wildcard SAN covers www.mango.test, but mango refused it.
    assert_eq!(serial(&compiled.table, "www.mango.test"), None);
    assert!(serial(&compiled.table, "www.apple.test").is_some());
    assert!(tls_condition(&compiled, "apple").status);
}

#[test]
fn a_secret_in_another_namespace_is_refused_unread() {
    let s = with_secrets(
        vec![tls_route(
            "mango",
            1,
            &["www.mango.test"],
            "other/mango-tls",
        )],
        &[],
    );
    let compiled = compile(&s, &RouteTable::default(), NOW);
    let condition = tls_condition(&compiled, "mango");
    assert_eq!(condition.reason, "RefNotPermitted");
    assert_eq!(compiled.statuses[0].errors[0].code, "tls-cross-namespace");
}

#[test]
fn a_broken_edit_keeps_serving_the_last_good_certificate() {
    let good = secret(&["www.mango.test"]);
    let routes = || vec![tls_route("mango", 1, &["www.mango.test"], "mango-tls")];
    let first = compile(
        &with_secrets(routes(), &[("mango-tls", good.clone())]),
        &RouteTable::default(),
        NOW,
    );
    let served = serial(&first.table, "www.mango.test").unwrap();
    let other_key = secret(&["www.mango.test"]).data["tls.key"].clone();
    let broken = tls_secret(&good.data["tls.crt"], &other_key);
    let second = compile(
        &with_secrets(routes(), &[("mango-tls", broken)]),
        &first.table,
        NOW,
    );
    let condition = tls_condition(&second, "mango");
    assert_eq!(condition.reason, "InvalidCertificate");
    assert!(condition.message.contains(&served), "{}", condition.message);
    assert_eq!(
        serial(&second.table, "www.mango.test"),
        Some(served.clone())
    );
    // Fixed again: fresh; and the last good one is still what the table
    // hands on while it stays broken.
    let third = compile(
        &with_secrets(routes(), &[("mango-tls", good)]),
        &second.table,
        NOW,
    );
    assert!(tls_condition(&third, "mango").status);
    assert_eq!(serial(&third.table, "www.mango.test"), Some(served));
}

#[test]
fn an_unchanged_secret_is_not_read_again() {
    let s = with_secrets(
        vec![tls_route("mango", 1, &["www.mango.test"], "mango-tls")],
        &[("mango-tls", secret(&["www.mango.test"]))],
    );
    let first = compile(&s, &RouteTable::default(), NOW);
    let second = compile(&s, &first.table, NOW);
    let pick = |t: &RouteTable| {
        t.tls()
            .index
            .lookup(Some("www.mango.test"))
            .unwrap()
            .clone()
    };
    assert!(Arc::ptr_eq(&pick(&first.table), &pick(&second.table)));
}

#[test]
fn an_expired_certificate_and_an_uncovered_host_say_so() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["old.mango.test".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let expired = tls_secret(
        params.self_signed(&key).unwrap().pem().as_bytes(),
        key.serialize_pem().as_bytes(),
    );
    let s = with_secrets(
        vec![
            tls_route("old", 1, &["old.mango.test"], "old-tls"),
            tls_route("wide", 2, &["www.mango.test", "*.apple.test"], "narrow-tls"),
        ],
        &[
            ("old-tls", expired),
            ("narrow-tls", secret(&["www.mango.test"])),
        ],
    );
    let compiled = compile(&s, &RouteTable::default(), NOW);
    assert_eq!(tls_condition(&compiled, "old").reason, "CertificateExpired");
    let wide = tls_condition(&compiled, "wide");
    assert_eq!(wide.reason, "HostNotCovered");
    assert!(wide.message.contains("*.apple.test"), "{}", wide.message);
    let error = &compiled.statuses[1].errors[0];
    assert_eq!(error.field.to_string(), "spec.hosts");
    assert_eq!(error.code, "tls-host-not-covered");
}

#[test]
fn a_missing_default_certificate_is_a_listener_problem_naming_the_flag() {
    let mut s = with_secrets(vec![route("shop", "plain", 1).rule(vec![], 1)], &[]);
    s.tls.default_certificate = Some(("shop".to_owned(), "fallback".to_owned()));
    let compiled = compile(&s, &RouteTable::default(), NOW);
    let problem = &compiled.listener_problems[0];
    assert_eq!(problem.field.as_deref(), Some("--default-certificate"));
    assert!(
        problem.message.contains("shop/fallback"),
        "{}",
        problem.message
    );
    assert!(compiled.table.tls().index.lookup(None).is_none());
}

#[test]
fn a_required_client_ca_that_is_missing_refuses_every_handshake() {
    let mut s = with_secrets(
        vec![tls_route("mango", 1, &["www.mango.test"], "mango-tls")],
        &[("mango-tls", secret(&["www.mango.test"]))],
    );
    s.tls.client_ca = Some(("shop".to_owned(), "clients".to_owned()));
    let compiled = compile(&s, &RouteTable::default(), NOW);
    assert!(
        compiled.table.tls().config.is_none(),
        "mutual TLS fails closed"
    );
    assert_eq!(
        compiled.listener_problems[0].field.as_deref(),
        Some("--tls-client-ca")
    );
}

#[test]
fn a_host_needing_another_certificate_than_the_sni_is_misdirected() {
    let shared = secret(&["*.fruit.test"]);
    let s = with_secrets(
        vec![
            tls_route("a", 1, &["a.fruit.test"], "fruit-tls"),
            tls_route("b", 2, &["b.fruit.test"], "fruit-tls"),
            tls_route("c", 3, &["c.fruit.test"], "c-tls"),
        ],
        &[("fruit-tls", shared), ("c-tls", secret(&["c.fruit.test"]))],
    );
    let table = compile(&s, &RouteTable::default(), NOW).table;
    assert!(!table.misdirected(Some("a.fruit.test"), Some("b.fruit.test:443")));
    assert!(!table.misdirected(Some("a.fruit.test"), Some("A.fruit.test")));
    assert!(table.misdirected(Some("a.fruit.test"), Some("c.fruit.test")));
    assert!(table.misdirected(Some("c.fruit.test"), Some("b.fruit.test")));
    assert!(!table.misdirected(Some("a.fruit.test"), None));
}
