//! The resource kinds the double serves, one entry per resource in
//! [`KINDS`]: where each is addressed (group, version, plural), what it is
//! called (kind) and which server rules apply to it (scope, `/status`
//! subresource, generation, CRD strictness).
//!
//! Owns the kind table and lookups by path and by type. Must not hold
//! objects or speak HTTP: stored state lives in `state`, requests in `request`.

/// A resource the double serves.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Kind {
    /// API group, "" for the core group.
    pub(super) group: &'static str,
    /// API version within the group.
    pub(super) version: &'static str,
    /// Lower-case plural used in paths.
    pub(super) plural: &'static str,
    /// `kind` of the objects.
    pub(super) kind: &'static str,
    /// Lives in a namespace (else cluster-scoped).
    pub(super) namespaced: bool,
    /// Has a `/status` subresource: the main resource ignores `status`.
    pub(super) status_subresource: bool,
    /// Maintains `metadata.generation` (CRD rules).
    pub(super) generation: bool,
    /// Is a CustomResourceDefinition (stricter PUT/PATCH rules).
    pub(super) custom: bool,
    /// Field selectors it supports besides `metadata.name` and
    /// `metadata.namespace`, as (field path, value when absent): the real
    /// server's field label conversion for the kind.
    pub(super) fields: &'static [(&'static str, &'static str)],
}

/// Every kind the double serves; a kind's index here keys its objects.
static KINDS: [Kind; 7] = [
    Kind {
        group: "switchyard.dev",
        version: "v1alpha1",
        plural: "loadbalancerroutes",
        kind: "LoadBalancerRoute",
        namespaced: true,
        status_subresource: true,
        generation: true,
        custom: true,
        fields: &[],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        status_subresource: true,
        generation: false,
        custom: false,
        fields: &[],
    },
    Kind {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice",
        namespaced: true,
        status_subresource: false,
        generation: false,
        custom: false,
        fields: &[],
    },
    Kind {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        status_subresource: false,
        generation: false,
        custom: false,
        fields: &[],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        status_subresource: false,
        generation: false,
        custom: false,
        fields: &[],
    },
    // The real server defaults `type` to Opaque on create; the double
    // stores what it is given, so an absent type selects as Opaque.
    Kind {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        status_subresource: false,
        generation: false,
        custom: false,
        fields: &[("type", "Opaque")],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        status_subresource: false,
        generation: false,
        custom: false,
        fields: &[],
    },
];

impl Kind {
    /// `group/version`, or just `version` for the core group.
    pub(super) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `leases.coordination.k8s.io`, or `services` for the core group, as in
    /// the real server's messages.
    pub(super) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Position in [`KINDS`], the first part of an object's key.
    pub(super) fn index(&'static self) -> usize {
        KINDS
            .iter()
            .position(|k| std::ptr::eq(k, self))
            .expect("kind from KINDS")
    }

    /// The kind served at `/apis/{group}/{version}/{plural}`.
    pub(super) fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
        KINDS
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    /// The kind of objects with this `apiVersion` and `kind`.
    pub(super) fn by_type(api_version: &str, kind: &str) -> Option<&'static Kind> {
        KINDS
            .iter()
            .find(|k| k.api_version() == api_version && k.kind == kind)
    }

    /// [`Kind::by_type`] for test controls: panics on a kind the double
    /// does not serve.
    pub(super) fn expect_type(api_version: &str, kind: &str) -> &'static Kind {
        Kind::by_type(api_version, kind)
            .unwrap_or_else(|| panic!("the kube API double does not serve {api_version} {kind}"))
    }
}
