//! Compile tests: a route whose inputs did not change is reused from the
//! previous table, not compiled again; one whose inputs changed is.

use super::*;

/// The rule `GET host/` lands on.
fn rule_of(table: &RouteTable, host: &str) -> Arc<Rule> {
    let found = table.find(Some(host), &Method::GET, "/", &HeaderMap::new());
    found.expect("a rule matches").clone()
}

fn two_routes(b_port: u16) -> Snapshot {
    snapshot(vec![
        route("shop", "a", 1).hosts(&["a.com"]).rule(vec![], 1),
        route("shop", "b", 2).hosts(&["b.com"]).rule(vec![], b_port),
    ])
}

#[test]
fn an_unchanged_route_is_reused_and_an_edited_one_is_compiled_again() {
    let first = compile(&two_routes(2), &RouteTable::default(), 0);
    let second = compile(&two_routes(3), &first.table, 0);
    assert!(second.is_clean());
    let (a1, a2) = (
        rule_of(&first.table, "a.com"),
        rule_of(&second.table, "a.com"),
    );
    assert!(Arc::ptr_eq(&a1, &a2), "the unchanged route is reused");
    let (b1, b2) = (
        rule_of(&first.table, "b.com"),
        rule_of(&second.table, "b.com"),
    );
    assert!(!Arc::ptr_eq(&b1, &b2), "the edited route is compiled again");
    assert_eq!(
        served(&second.table, "b.com"),
        Ok(vec!["127.0.0.1:3".to_owned()])
    );
}

#[test]
fn a_route_whose_service_changed_is_compiled_again() {
    let with = |endpoints: Vec<EndpointInfo>| {
        let backend = service_backend("mango", IntOrString::Int(80));
        cluster(vec![service_route("mango", 1, vec![backend])])
            .service("shop", "mango", &[(None, 80)])
            .slice("shop", "mango", &[(None, 8080)], endpoints)
            .build()
    };
    let first = compile(&with(vec![ready("10.0.0.1")]), &RouteTable::default(), 0);
    let same = compile(&with(vec![ready("10.0.0.1")]), &first.table, 0);
    let rule = |c: &Compiled| rule_of(&c.table, "mango.com");
    assert!(Arc::ptr_eq(&rule(&first), &rule(&same)), "nothing changed");
    let moved = compile(&with(vec![ready("10.0.0.2")]), &same.table, 0);
    assert_eq!(
        served(&moved.table, "mango.com"),
        Ok(vec!["10.0.0.2:8080".to_owned()])
    );
    let flipped = compile(&with(vec![not_ready("10.0.0.2")]), &moved.table, 0);
    assert!(
        served(&flipped.table, "mango.com").is_err(),
        "no ready endpoint"
    );
}

#[test]
fn a_change_every_route_reads_compiles_every_route_again() {
    let first = compile(&two_routes(2), &RouteTable::default(), 0);
    let mut in_a_cluster = two_routes(2);
    in_a_cluster.backends = BackendPolicy::Cluster {
        allow_static: false,
    };
    let second = compile(&in_a_cluster, &first.table, 0);
    assert!(
        second.statuses.iter().all(|s| !s.accepted()),
        "static backends are refused in a cluster: {:?}",
        second.statuses
    );
}

#[test]
fn a_refused_route_is_not_kept_for_reuse() {
    let conflicting = || {
        snapshot(vec![
            route("shop", "a", 1).hosts(&["a.com"]).rule(vec![], 1),
            route("shop", "b", 2).hosts(&["a.com"]).rule(vec![], 2),
        ])
    };
    let first = compile(&conflicting(), &RouteTable::default(), 0);
    assert!(
        first.table.reuse.routes_kept() == 1,
        "only the accepted route"
    );
    let alone = snapshot(vec![route("shop", "b", 2)
        .hosts(&["a.com"])
        .rule(vec![], 2)]);
    let second = compile(&alone, &first.table, 0);
    assert!(second.is_clean());
    assert_eq!(
        served(&second.table, "a.com"),
        Ok(vec!["127.0.0.1:2".to_owned()])
    );
}
