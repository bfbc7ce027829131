//! Compile step: rules no request can reach. A rule is unreachable when
//! every one of its matches, on every host of its route, comes after a
//! match (of any route) that selects every request it selects (see
//! [`HostView::shadowed`](crate::table::HostView::shadowed)). The route is
//! still served; its `RulesReachable` condition turns `False`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::{ConditionReason, ConditionState, RouteStatus, RouteTable, Shadowed};

/// The unreachable rules, by route and rule index, each with what
/// shadows its matches.
pub(super) type Unreachable = BTreeMap<(Arc<str>, usize), Vec<Shadowed>>;

/// `RulesReachable` of an accepted route before shadowing is known.
pub(super) fn all_reachable() -> ConditionState {
    ConditionState::met(
        ConditionReason::RulesReachable,
        "every rule can be chosen by some request",
    )
}

/// The rules of `table` none of whose matches can be chosen.
pub(super) fn unreachable_rules(table: &RouteTable) -> Unreachable {
    let mut matches: BTreeMap<(Arc<str>, usize), usize> = BTreeMap::new();
    for view in table.host_views() {
        for candidate in view.candidates() {
            let origin = candidate.origin;
            *matches
                .entry((origin.route.clone(), origin.rule))
                .or_default() += 1;
        }
    }
    let mut shadowed = Unreachable::new();
    for s in table.shadowed() {
        (shadowed
            .entry((s.match_.route.clone(), s.match_.rule))
            .or_default())
        .push(s);
    }
    shadowed.retain(|key, list| matches.get(key) == Some(&list.len()));
    shadowed
}

/// Sets `RulesReachable` to `False` on the routes with unreachable rules.
pub(super) fn mark<'s>(
    unreachable: &Unreachable,
    statuses: impl Iterator<Item = &'s mut RouteStatus>,
) {
    for status in statuses {
        let resource = format!("{}/{}", status.namespace, status.name);
        let rules: Vec<String> = (unreachable.iter())
            .filter(|((route, _), _)| **route == *resource)
            .map(|((_, rule), list)| describe(*rule, list))
            .collect();
        if !rules.is_empty() {
            status.reachable = ConditionState::unmet(
                ConditionReason::RuleShadowed,
                format!("these rules never match: {}", rules.join("; ")),
            );
        }
    }
}

/// `spec.rules[1] (www.mango.com: spec.rules[1].matches[0] is taken by
/// shop/mango spec.rules[0].matches[0] first)`.
fn describe(rule: usize, list: &[Shadowed]) -> String {
    let each: Vec<String> = (list.iter())
        .map(|s| {
            format!(
                "{}: {} is taken first by {} {}",
                s.host, s.match_.field, s.by.route, s.by.field
            )
        })
        .collect();
    format!("spec.rules[{rule}] ({})", each.join(", "))
}
