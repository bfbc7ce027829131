//! Compile step: the `ResolvedRefs` and `Ready` conditions of a route that
//! compiled, from what its rules found.

use super::super::{ConditionReason, ConditionState};

/// `ResolvedRefs`: the first unresolved reference's reason (in declaration
/// order), and every one of them in the message.
pub(super) fn resolved_refs(unresolved: &[(ConditionReason, String)]) -> ConditionState {
    match unresolved.first() {
        None => ConditionState::met(
            ConditionReason::ResolvedRefs,
            "every backend reference resolved",
        ),
        Some((reason, _)) => {
            let list: Vec<&str> = unresolved.iter().map(|(_, m)| m.as_str()).collect();
            ConditionState::unmet(*reason, list.join("; "))
        }
    }
}

/// `Ready`: every rule can answer. `NoReadyEndpoints` when a rule waits for
/// endpoints, else `NoBackends` when a rule has none by design (no
/// backends, or every weight 0); the message names each such rule.
pub(super) fn ready(not_ready: &[(String, bool)], endpoints: usize) -> ConditionState {
    if not_ready.is_empty() {
        let plural = if endpoints == 1 { "" } else { "s" };
        return ConditionState::met(
            ConditionReason::Ready,
            format!("every rule can answer; {endpoints} ready endpoint{plural}"),
        );
    }
    let reason = if not_ready.iter().all(|(_, by_design)| *by_design) {
        ConditionReason::NoBackends
    } else {
        ConditionReason::NoReadyEndpoints
    };
    let list: Vec<&str> = not_ready.iter().map(|(m, _)| m.as_str()).collect();
    ConditionState::unmet(
        reason,
        format!("requests to these rules get 503: {}", list.join("; ")),
    )
}
