//! Compile tests: rules no request can reach get `RulesReachable=False`.

use super::*;
use crate::table::ConditionReason;

fn reachable(compiled: &Compiled, name: &str) -> (bool, ConditionReason, String) {
    let status = (compiled.statuses.iter()).find(|s| s.name == name).unwrap();
    let state = &status.reachable;
    (state.status, state.reason, state.message.clone())
}

#[test]
fn a_rule_behind_a_broader_one_of_the_same_route_is_unreachable() {
    // Gateway API order puts a regular expression after every prefix, so
    // `Prefix /` takes every request `/api/.*` would.
    let compiled = compile(
        &snapshot(vec![route("shop", "mango", 1)
            .hosts(&["www.mango.com"])
            .rule(vec![prefix("/")], 1)
            .rule(vec![path(PathMatchType::RegularExpression, "/api/.*")], 2)]),
        &RouteTable::default(),
        0,
    );
    assert!(compiled.is_clean(), "a shadowed rule is still served");
    let (status, reason, message) = reachable(&compiled, "mango");
    assert!(!status);
    assert_eq!(reason, "RuleShadowed");
    assert_eq!(
        message,
        "these rules never match: spec.rules[1] (www.mango.com: spec.rules[1].matches[0] is \
         taken first by shop/mango spec.rules[0].matches[0])"
    );
    let kinds: Vec<_> = conditions(&compiled.statuses[0]);
    assert!(kinds.contains(&(
        "RulesReachable".into(),
        "False".into(),
        "RuleShadowed".into()
    )));
}

#[test]
fn a_rule_shadowed_by_an_older_route_is_marked_on_its_own_route() {
    let older = route("a", "all", 1)
        .hosts(&["www.mango.com"])
        .rule(vec![prefix("/api")], 1);
    let younger = route("b", "get", 2).hosts(&["www.mango.com"]).rule(
        vec![path(PathMatchType::RegularExpression, "/api/v[0-9]+")],
        2,
    );
    let compiled = compile(&snapshot(vec![older, younger]), &RouteTable::default(), 0);
    assert!(reachable(&compiled, "all").0);
    let (status, _, message) = reachable(&compiled, "get");
    assert!(
        !status && message.contains("taken first by a/all"),
        "{message}"
    );
    let record = (compiled.table.routes().iter()).find(|r| r.status.name == "get");
    assert!(
        !record.unwrap().status.reachable.status,
        "/routes shows it too"
    );
}

#[test]
fn a_rule_reachable_on_one_host_or_by_one_match_is_reachable() {
    let regex = |p: &str| path(PathMatchType::RegularExpression, p);
    let compiled = compile(
        &snapshot(vec![
            route("a", "catchall", 1)
                .hosts(&["a.com"])
                .rule(vec![prefix("/")], 1),
            // Shadowed on a.com only.
            route("b", "hosts", 2)
                .hosts(&["a.com", "b.com"])
                .rule(vec![regex("/x/.*")], 2),
            // Its second match is shadowed, not its first.
            route("c", "matches", 3)
                .hosts(&["c.com"])
                .rule(vec![prefix("/q")], 3)
                .rule(vec![regex("/q/.*"), prefix("/r")], 4),
            // A method condition goes first but takes only GET.
            route("d", "narrower", 4)
                .hosts(&["d.com"])
                .rule(vec![with_methods(prefix("/"), &["GET"])], 5)
                .rule(vec![prefix("/")], 6),
        ]),
        &RouteTable::default(),
        0,
    );
    for name in ["catchall", "hosts", "matches", "narrower"] {
        let (status, reason, message) = reachable(&compiled, name);
        assert!(status, "{name}: {message}");
        assert_eq!(reason, "RulesReachable");
    }
}

#[test]
fn routes_not_served_mirror_their_accepted_reason() {
    let compiled = compile(
        &snapshot(vec![route("a", "bad", 1)
            .hosts(&["a.com"])
            .rule(vec![prefix("nope")], 1)]),
        &RouteTable::default(),
        0,
    );
    let (status, reason, _) = reachable(&compiled, "bad");
    assert!(!status);
    assert_eq!(reason, "Invalid");
}
