//! Compile tests: Conflicts between routes and within one route.

use super::*;

#[test]
fn younger_route_claiming_the_same_host_and_match_is_conflicted() {
    let older = route("team-a", "mango", 1)
        .hosts(&["www.mango.com"])
        .rule(vec![prefix("/")], 1);
    let younger = route("team-b", "mango", 2)
        .hosts(&["WWW.MANGO.COM", "other.com"])
        .rule(vec![prefix("/")], 2);
    // Listed younger first: age decides, not snapshot order.
    let compiled = compile(&snapshot(vec![younger, older]), &RouteTable::default(), 0);
    assert_eq!(
        reasons(&compiled),
        [
            ("team-a/mango".to_owned(), Reason::Accepted),
            ("team-b/mango".to_owned(), Reason::Conflicted)
        ]
    );
    let conflict = &compiled.statuses[1].errors[0];
    assert_eq!(conflict.field, "spec.rules[0].matches[0]");
    assert!(
        conflict.message.contains("older route team-a/mango"),
        "{}",
        conflict.message
    );
    assert_eq!(
        lands(&compiled.table, "www.mango.com", "GET", "/", &[]),
        Some(1)
    );
    assert_eq!(
        lands(&compiled.table, "other.com", "GET", "/", &[]),
        None,
        "rejected whole"
    );
}

#[test]
fn different_matches_or_hosts_do_not_conflict() {
    let compiled = compile(
        &snapshot(vec![
            route("a", "r", 1)
                .hosts(&["www.mango.com"])
                .rule(vec![prefix("/")], 1),
            route("b", "r", 2)
                .hosts(&["www.mango.com"])
                .rule(vec![prefix("/b")], 2),
            route("c", "r", 3)
                .hosts(&["www.apple.com"])
                .rule(vec![prefix("/")], 3),
            route("d", "r", 4)
                .hosts(&["www.mango.com"])
                .rule(vec![with_methods(prefix("/"), &["GET"])], 4),
        ]),
        &RouteTable::default(),
        0,
    );
    assert!(compiled.is_clean(), "{:?}", compiled.statuses);
}

#[test]
fn prefix_with_and_without_trailing_slash_is_the_same_match() {
    let compiled = compile(
        &snapshot(vec![
            route("a", "r", 1).rule(vec![prefix("/foo")], 1),
            route("b", "r", 2).rule(vec![prefix("/foo/")], 2),
        ]),
        &RouteTable::default(),
        0,
    );
    assert_eq!(compiled.statuses[1].reason, Reason::Conflicted);
}

#[test]
fn duplicate_match_inside_one_route_is_invalid() {
    let compiled = compile(
        &snapshot(vec![route("a", "r", 1)
            .rule(vec![prefix("/x")], 1)
            .rule(vec![prefix("/x")], 2)]),
        &RouteTable::default(),
        0,
    );
    assert_eq!(compiled.statuses[0].reason, Reason::Invalid);
    assert_eq!(
        compiled.statuses[0].errors[0].field,
        "spec.rules[1].matches[0]"
    );
}
