//! Compile step: the `ResolvedRefs`, `Ready` and `BackendTLSVerified`
//! conditions of a route that compiled, from what its rules found.

use super::super::{ConditionReason, ConditionState};
use crate::diagnostic::FieldPath;
use crate::upstream::TlsSettings;

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

/// How one HTTPS backend's certificate is checked, for
/// `BackendTLSVerified`.
#[derive(Debug)]
pub(super) enum TlsCheck {
    /// Verified against a CA bundle or the system roots.
    Verified,
    /// Not verified (`insecureSkipVerify`): the backend's field.
    Insecure(String),
    /// Its TLS cannot be set up: the `ResolvedRefs` reason and
    /// `field: message`.
    Broken(ConditionReason, String),
}

impl TlsCheck {
    /// The check of a backend (at `field`) with these settings.
    pub fn of(tls: &TlsSettings, field: &FieldPath) -> Self {
        if tls.insecure {
            TlsCheck::Insecure(field.to_string())
        } else {
            TlsCheck::Verified
        }
    }
}

/// `BackendTLSVerified`, for a route with an HTTPS backend (`None`
/// otherwise): `False` with the first broken backend's reason, else
/// `False`/`InsecureSkipVerify` (a warning: the route is served), else
/// `True`/`Verified`.
pub(super) fn backend_tls_verified(checks: &[TlsCheck]) -> Option<ConditionState> {
    if checks.is_empty() {
        return None;
    }
    let broken: Vec<(ConditionReason, &str)> = (checks.iter())
        .filter_map(|c| match c {
            TlsCheck::Broken(reason, message) => Some((*reason, message.as_str())),
            _ => None,
        })
        .collect();
    if let Some((reason, _)) = broken.first() {
        let list: Vec<&str> = broken.iter().map(|(_, m)| *m).collect();
        let message = format!("these HTTPS backends get no traffic: {}", list.join("; "));
        return Some(ConditionState::unmet(*reason, message));
    }
    let insecure: Vec<&str> = (checks.iter())
        .filter_map(|c| match c {
            TlsCheck::Insecure(field) => Some(field.as_str()),
            _ => None,
        })
        .collect();
    if !insecure.is_empty() {
        let message = format!(
            "the certificates of {} are not verified (insecureSkipVerify): anyone on the \
             network path can impersonate these backends",
            insecure.join(", ")
        );
        return Some(ConditionState::unmet(
            ConditionReason::InsecureSkipVerify,
            message,
        ));
    }
    let plural = if checks.len() == 1 { "" } else { "s" };
    Some(ConditionState::met(
        ConditionReason::Verified,
        format!(
            "the certificate of every HTTPS backend is verified ({} backend{plural})",
            checks.len()
        ),
    ))
}
