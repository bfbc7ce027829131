//! Compile tests: Health checks: probes and settings validation.

use super::*;

#[test]
fn health_checks_become_probes_that_survive_recompiles() {
    let checked = |hosts: &[&str]| {
        route("shop", "mango", 0).hosts(hosts).raw_rule(RouteRule {
            backends: vec![address("127.0.0.1:1"), address("127.0.0.1:2")],
            health_check: Some(api::HealthCheck {
                path: Some("/ready".into()),
                ..api::HealthCheck::default()
            }),
            ..RouteRule::default()
        })
    };
    let first = compile(
        &snapshot(vec![checked(&["a.mango.com"])]),
        &RouteTable::default(),
        0,
    );
    assert!(first.is_clean(), "{:?}", first.statuses);
    let probes: Vec<(&str, &str)> = first
        .table
        .probes()
        .iter()
        .map(|p| (&*p.address, p.check.path.as_str()))
        .collect();
    assert_eq!(
        probes,
        [("127.0.0.1:1", "/ready"), ("127.0.0.1:2", "/ready")]
    );

    // A route edit keeps the endpoints' state, so health carries over.
    first.table.probes()[0].state.set_healthy(false);
    let second = compile(
        &snapshot(vec![checked(&["a.mango.com", "b.mango.com"])]),
        &first.table,
        0,
    );
    assert!(Arc::ptr_eq(
        &first.table.probes()[0].state,
        &second.table.probes()[0].state
    ));
    assert!(!second.table.probes()[0].state.is_healthy());

    // Without checks, no probes.
    let plain = compile(
        &snapshot(vec![route("shop", "mango", 0).rule(vec![], 1)]),
        &second.table,
        0,
    );
    assert!(plain.table.probes().is_empty());
}

#[test]
fn invalid_health_settings_reject_the_route_naming_fields() {
    let compiled = compile(
        &snapshot(vec![route("shop", "mango", 0).raw_rule(RouteRule {
            backends: vec![address("127.0.0.1:1")],
            health_check: Some(api::HealthCheck {
                interval: Some("5".into()),
                ..api::HealthCheck::default()
            }),
            passive_health: Some(api::PassiveHealth {
                max_ejected_percent: Some(120),
                ..api::PassiveHealth::default()
            }),
            ..RouteRule::default()
        })]),
        &RouteTable::default(),
        0,
    );
    let fields: Vec<&str> = compiled.statuses[0]
        .errors
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.rules[0].healthCheck.interval",
            "spec.rules[0].passiveHealth.maxEjectedPercent"
        ]
    );
    assert!(compiled.table.probes().is_empty());
}
