//! What compile says about each route: whether it is served, and the
//! conditions the controller writes on its status (`Accepted`,
//! `ResolvedRefs`, `Ready`, and when they apply `TLSReady` and
//! `BackendTLSVerified`).

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::api::Condition;
use crate::diagnostic::CompileError;
use crate::snapshot::{Code, Diagnostic};

/// The outcome of compiling one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    /// The route's namespace.
    pub namespace: String,
    /// The route's name.
    pub name: String,
    /// Where it came from.
    #[serde(skip)]
    pub origin: Arc<str>,
    /// Accepted, or why not.
    pub reason: Reason,
    /// Every problem found, each naming its field.
    pub errors: Vec<CompileError>,
    /// The `ResolvedRefs` condition: whether every backend reference names
    /// something that exists. A Service that is missing (or lacks the port)
    /// does not reject the route; its backend just has no endpoints. For a
    /// route that is not accepted this mirrors `Accepted`'s reason, since
    /// nothing of it is served.
    pub resolved_refs: ConditionState,
    /// The `Ready` condition: whether every rule can answer (has a ready
    /// endpoint, or redirects). For a route that is not accepted this
    /// mirrors `Accepted`'s reason.
    pub ready: ConditionState,
    /// Distinct ready endpoints across the route's rules (0 when the route
    /// is not accepted).
    pub ready_endpoints: usize,
    /// The `TLSReady` condition, for a route with `spec.tls`: whether its
    /// certificate is served for all its hosts. Its problems are in
    /// `errors` too, so `check` and the keep-last-good gate see them; they
    /// do not reject the route.
    pub tls: Option<ConditionState>,
    /// The `BackendTLSVerified` condition, for a route with an HTTPS
    /// backend: whether every HTTPS backend's certificate is verified.
    /// `False` with `InsecureSkipVerify` is a warning (the route is
    /// served); with `InvalidBackendTLS` or `InvalidCACertificateRef` that
    /// backend gets no traffic (`ResolvedRefs` says so too).
    pub backend_tls: Option<ConditionState>,
    /// The `RulesReachable` condition: whether every rule can be chosen
    /// by some request. `False`/`RuleShadowed` names each rule an earlier
    /// match (of this route or another) takes every request of; the route
    /// is still served.
    pub reachable: ConditionState,
}

/// One condition's state, before it becomes an [`api::Condition`](Condition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionState {
    /// Whether the condition holds (`True`).
    pub status: bool,
    /// The reason, e.g. `BackendNotFound`.
    pub reason: ConditionReason,
    /// What happened, for a person: what to fix when `status` is false.
    pub message: String,
}

/// Why a route was or was not accepted (the `Accepted` condition's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// The route is served.
    Accepted,
    /// A field is invalid; the route is not served.
    Invalid,
    /// An older route already claims one of its host + match pairs; the
    /// route is not served.
    Conflicted,
}

/// The reason of a condition: CamelCase on the resource, an enum here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionReason {
    /// `Accepted`: the route is served.
    Accepted,
    /// `Invalid`: a field is invalid.
    Invalid,
    /// `Conflicted`: an older route claims a host + match.
    Conflicted,
    /// `ResolvedRefs`: every backend reference resolved.
    ResolvedRefs,
    /// `BackendNotFound`: a referenced Service does not exist.
    BackendNotFound,
    /// `InvalidBackend`: the Service exists but lacks the port.
    InvalidBackend,
    /// `Ready`: every rule can answer.
    Ready,
    /// `NoReadyEndpoints`: a rule waits for endpoints.
    NoReadyEndpoints,
    /// `NoBackends`: a rule has no backends by design.
    NoBackends,
    /// `RulesReachable`: every rule can be chosen by some request.
    RulesReachable,
    /// `RuleShadowed`: a rule can never be chosen: an earlier match takes
    /// every request it matches.
    RuleShadowed,
    /// `CertificateReady`: the route's certificate is served.
    CertificateReady,
    /// `SecretNotFound`: the route's Secret does not exist (or is not of
    /// type `kubernetes.io/tls`, which is all a cluster source reads).
    SecretNotFound,
    /// `InvalidCertificate`: the Secret's certificate or key cannot be
    /// served (malformed PEM, no certificate, a key that does not match).
    InvalidCertificate,
    /// `CertificateExpired`: the certificate's `notAfter` has passed.
    CertificateExpired,
    /// `HostNotCovered`: a route host is not among the certificate's names.
    HostNotCovered,
    /// `RefNotPermitted`: the Secret is in another namespace.
    RefNotPermitted,
    /// `UnsupportedProtocol`: a Service port's `appProtocol` is not one
    /// switchyard speaks, and the backend sets no `protocol`.
    UnsupportedProtocol,
    /// `InvalidBackendTLS`: an HTTPS backend's TLS cannot be set up (a
    /// Service backend without `tls.hostname`; `tls` on a port whose
    /// `appProtocol` is not HTTPS).
    InvalidBackendTls,
    /// `InvalidCACertificateRef`: a `caCertificateRefs` entry is missing,
    /// has no `ca.crt`, or its PEM holds no usable certificate.
    InvalidCaCertificateRef,
    /// `Verified`: every HTTPS backend's certificate is verified.
    Verified,
    /// `InsecureSkipVerify`: some HTTPS backend's certificate is not
    /// verified (a warning; the route is served).
    InsecureSkipVerify,
}

// === impl RouteStatus ===

impl RouteStatus {
    /// Whether the route is served.
    pub fn accepted(&self) -> bool {
        self.reason == Reason::Accepted
    }

    /// `namespace/name`.
    pub fn resource(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The status conditions the controller writes, in this order:
    /// `Accepted`, `ResolvedRefs`, `Ready`, `RulesReachable`, `TLSReady`
    /// for a route with `spec.tls`, and `BackendTLSVerified` for a route
    /// with an HTTPS backend.
    ///
    /// `Accepted` is `True`/`Accepted`, or `False` with `Invalid` (the
    /// message lists every `field: problem`) or `Conflicted` (it names the
    /// older route). `ResolvedRefs` is `True`/`ResolvedRefs`, or `False` with
    /// `BackendNotFound`, `InvalidBackend`, `UnsupportedProtocol`,
    /// `InvalidBackendTLS` or `InvalidCACertificateRef`. `Ready` is `True`/`Ready`, or
    /// `False` with `NoReadyEndpoints` or `NoBackends`. `RulesReachable` is
    /// `True`/`RulesReachable`, or `False`/`RuleShadowed` (a warning: the
    /// route is served). When the route is not accepted, `ResolvedRefs`,
    /// `Ready` and `RulesReachable` are `False` with `Accepted`'s reason.
    pub fn conditions(&self) -> Vec<Condition> {
        let accepted = match self.reason {
            Reason::Accepted => {
                ConditionState::met(Reason::Accepted.condition(), "the route is served")
            }
            reason => ConditionState::unmet(reason.condition(), self.error_list()),
        };
        [
            ("Accepted", Some(&accepted)),
            ("ResolvedRefs", Some(&self.resolved_refs)),
            ("Ready", Some(&self.ready)),
            ("RulesReachable", Some(&self.reachable)),
            ("TLSReady", self.tls.as_ref()),
            ("BackendTLSVerified", self.backend_tls.as_ref()),
        ]
        .into_iter()
        .filter_map(|(kind, state)| Some((kind, state?)))
        .map(|(kind, state)| Condition {
            kind: kind.to_owned(),
            status: if state.status { "True" } else { "False" }.to_owned(),
            reason: state.reason.as_str().to_owned(),
            message: state.message.clone(),
            // Stamped by the status writer, which knows the previous status
            // and the clock; compile reads no clock.
            last_transition_time: None,
        })
        .collect()
    }

    /// `field: problem; field: problem`.
    fn error_list(&self) -> String {
        let list: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        list.join("; ")
    }

    /// The problems as located diagnostics.
    pub fn diagnostics(&self) -> impl Iterator<Item = Diagnostic> + '_ {
        self.errors.iter().map(|e| Diagnostic {
            origin: self.origin.clone(),
            resource: Some(format!("{}/{}", self.namespace, self.name)),
            field: Some(e.field.to_string()),
            code: Code::Invalid(e.code),
            message: e.message.clone(),
        })
    }
}

// === impl ConditionState ===

impl ConditionState {
    /// A condition that holds.
    pub fn met(reason: ConditionReason, message: impl Into<String>) -> Self {
        ConditionState {
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn unmet(reason: ConditionReason, message: impl Into<String>) -> Self {
        ConditionState {
            status: false,
            reason,
            message: message.into(),
        }
    }

    /// `ResolvedRefs` or `Ready` of a route that is not served: `False`
    /// with the reason it is not.
    pub(super) fn not_accepted(reason: Reason) -> Self {
        ConditionState::unmet(
            reason.condition(),
            "not evaluated: the route is not served; fix the problems in the Accepted condition",
        )
    }
}

// === impl Reason ===

impl Reason {
    /// The condition reason, CamelCase.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Accepted => "Accepted",
            Reason::Invalid => "Invalid",
            Reason::Conflicted => "Conflicted",
        }
    }

    /// The same reason, as a condition reason.
    pub fn condition(self) -> ConditionReason {
        match self {
            Reason::Accepted => ConditionReason::Accepted,
            Reason::Invalid => ConditionReason::Invalid,
            Reason::Conflicted => ConditionReason::Conflicted,
        }
    }
}

// === impl ConditionReason ===

impl ConditionReason {
    /// The reason as the resource spells it, CamelCase.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionReason::Accepted => "Accepted",
            ConditionReason::Invalid => "Invalid",
            ConditionReason::Conflicted => "Conflicted",
            ConditionReason::ResolvedRefs => "ResolvedRefs",
            ConditionReason::BackendNotFound => "BackendNotFound",
            ConditionReason::InvalidBackend => "InvalidBackend",
            ConditionReason::Ready => "Ready",
            ConditionReason::NoReadyEndpoints => "NoReadyEndpoints",
            ConditionReason::NoBackends => "NoBackends",
            ConditionReason::RulesReachable => "RulesReachable",
            ConditionReason::RuleShadowed => "RuleShadowed",
            ConditionReason::CertificateReady => "CertificateReady",
            ConditionReason::SecretNotFound => "SecretNotFound",
            ConditionReason::InvalidCertificate => "InvalidCertificate",
            ConditionReason::CertificateExpired => "CertificateExpired",
            ConditionReason::HostNotCovered => "HostNotCovered",
            ConditionReason::RefNotPermitted => "RefNotPermitted",
            ConditionReason::UnsupportedProtocol => "UnsupportedProtocol",
            ConditionReason::InvalidBackendTls => "InvalidBackendTLS",
            ConditionReason::InvalidCaCertificateRef => "InvalidCACertificateRef",
            ConditionReason::Verified => "Verified",
            ConditionReason::InsecureSkipVerify => "InsecureSkipVerify",
        }
    }
}

impl fmt::Display for ConditionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ConditionReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ConditionReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
