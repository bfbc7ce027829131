//! The snapshot: everything one compile needs, as owned plain data.
//!
//! Owns: [`Snapshot`] (routes, Services, EndpointSlices, Secrets and the
//! listener's [`TlsSettings`]) that both sources
//! produce, the [`SourceUpdate`] a source sends the publisher, the
//! [`DesiredStatus`] the publisher sends the status writer, and the
//! [`Diagnostic`] (with its stable [`Code`]) that tells a user which file or
//! object, which resource and which field is wrong. Must not: import
//! anything but `api` — it is the vocabulary sources, compile and publish
//! share.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::api::{LoadBalancerRouteSpec, LoadBalancerRouteStatus};

/// Everything a compile needs, gathered by one source at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The routes, in no particular order (compile sorts them by age).
    pub routes: Vec<SourcedRoute>,
    /// Which kinds of backend the source may use.
    pub backends: BackendPolicy,
    /// Services by namespace and name (cluster mode; empty standalone).
    pub services: BTreeMap<ObjectKey, ServiceInfo>,
    /// EndpointSlices by the namespace and name of the Service they belong
    /// to (their `kubernetes.io/service-name` label).
    pub endpoints: BTreeMap<ObjectKey, Vec<EndpointSliceInfo>>,
    /// Secrets by namespace and name: in a cluster only those of type
    /// `kubernetes.io/tls` (the reflector's field selector), plus the one
    /// `--tls-client-ca` names whatever its type (a CA bundle is often
    /// `Opaque`); standalone, every `kind: Secret` document of the route
    /// files. Compile should check `type_` where it needs a TLS Secret.
    pub secrets: BTreeMap<ObjectKey, SecretInfo>,
    /// ConfigMaps by namespace and name (their `ca.crt`: a client CA or a
    /// backend's CA bundle): in a cluster the one `--tls-client-ca` names
    /// and those labelled `switchyard.dev/ca-bundle=true`; standalone,
    /// every `kind: ConfigMap` document of the route files.
    pub config_maps: BTreeMap<ObjectKey, SecretInfo>,
    /// The listener's TLS settings, as the operator set them on the command
    /// line: the same in both modes.
    pub tls: TlsSettings,
}

/// The Secret type that holds a certificate (`tls.crt`, `tls.key`): the
/// only one a cluster source lists in bulk, and the only one compile
/// serves certificates from.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// The label (value `true`) that makes a ConfigMap a CA bundle backends'
/// `caCertificateRefs` may name: the only ConfigMaps a cluster source
/// lists in bulk.
pub const CA_BUNDLE_LABEL: &str = "switchyard.dev/ca-bundle";

/// A Secret's (or a ConfigMap's) data, decoded: what TLS needs of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretInfo {
    /// Where it came from, for messages: a file path, or `kube`.
    pub origin: Arc<str>,
    /// The Secret's `type` (`kubernetes.io/tls`); `None` for a ConfigMap
    /// or a Secret without one.
    pub type_: Option<String>,
    /// Its keys (`tls.crt`, `tls.key`, `ca.crt`) and their bytes: a
    /// Secret's `data` base64-decoded and `stringData`, or a ConfigMap's
    /// `data`.
    pub data: BTreeMap<String, Arc<[u8]>>,
}

/// The TLS listener's settings (`--tls-listen` and the flags around it),
/// carried in the snapshot so compile can build the listener's
/// configuration with the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Whether a TLS listener runs (`--tls-listen`): without one, routes'
    /// certificates are still checked, but plain HTTP is never redirected.
    pub listener: bool,
    /// The certificate for names no route's certificate covers
    /// (`--default-certificate NAMESPACE/NAME`); without one such names
    /// fail the handshake with `unrecognized_name`.
    pub default_certificate: Option<ObjectKey>,
    /// The CA bundle client certificates are verified against
    /// (`--tls-client-ca NAMESPACE/NAME`: a ConfigMap or a Secret with
    /// `ca.crt`); `None`: no client certificates are asked for.
    pub client_ca: Option<ObjectKey>,
    /// Whether a client must present a certificate when `client_ca` is set.
    pub client_auth: ClientAuth,
    /// The oldest TLS version accepted (`--tls-min-version`).
    pub min_version: TlsVersion,
    /// The port plain-HTTP requests are redirected to
    /// (`--https-redirect-port`); 443 is left out of the URL.
    pub redirect_port: u16,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            listener: false,
            default_certificate: None,
            client_ca: None,
            client_auth: ClientAuth::Require,
            min_version: TlsVersion::Tls12,
            redirect_port: 443,
        }
    }
}

/// Gateway API's frontend validation modes (`--tls-client-auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `AllowValidOnly`: a connection without a valid client certificate
    /// fails the handshake.
    #[default]
    Require,
    /// `AllowInsecureFallback`: a client certificate is asked for and, if
    /// sent, must be valid; clients without one are served too.
    Optional,
}

/// A TLS protocol version (`--tls-min-version 1.2|1.3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[default]
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// What a source sends the publisher (on a `watch` channel, so a burst of
/// changes arrives as the latest one): a snapshot and what the source
/// itself found wrong with its input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceUpdate {
    /// Everything the compile needs.
    pub snapshot: Snapshot,
    /// Input the source could not turn into routes (e.g. a document that
    /// does not parse), each located. The publisher's gate weighs them
    /// with compile's own problems.
    pub diagnostics: Vec<Diagnostic>,
    /// Each route's `metadata.generation` (cluster mode; empty standalone),
    /// reported back as `observedGeneration`. A change here alone needs no
    /// compile, only new statuses.
    pub generations: BTreeMap<ObjectKey, i64>,
}

/// The status one route should have, as the publisher derives it from a
/// compile; the status writer stamps transition times and writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredStatus {
    /// The route's namespace.
    pub namespace: String,
    /// The route's name.
    pub name: String,
    /// Its status, `lastTransitionTime`s not yet set.
    pub status: LoadBalancerRouteStatus,
}

/// Which backend references a source's routes may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendPolicy {
    /// Standalone mode: only static `address` backends exist.
    #[default]
    StaticOnly,
    /// Cluster mode: Service backends; static addresses only when the
    /// operator allowed them (`--allow-static-backends`).
    Cluster {
        /// Whether `address` backends are accepted.
        allow_static: bool,
    },
}

/// `(namespace, name)` of an object.
pub type ObjectKey = (String, String);

/// The parts of a Service that routing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The Service's ports.
    pub ports: Vec<ServicePortInfo>,
}

/// One port of a Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicePortInfo {
    /// The port's name; EndpointSlice ports carry the same name.
    pub name: Option<String>,
    /// The Service port number, which routes may name.
    pub port: i32,
    /// The port's `appProtocol` as written (`kubernetes.io/h2c`, `https`):
    /// how a backend without `protocol` is spoken to.
    pub app_protocol: Option<String>,
}

/// The parts of an EndpointSlice that routing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSliceInfo {
    /// Ports by name (`None` for the unnamed port) and number.
    pub ports: Vec<(Option<String>, i32)>,
    /// The endpoints.
    pub endpoints: Vec<EndpointInfo>,
}

/// One endpoint of an EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Its IP addresses (one for IPv4/IPv6 slices).
    pub addresses: Vec<String>,
    /// `conditions.ready` (absent counts as ready, as Kubernetes says).
    pub ready: bool,
    /// `conditions.terminating`: it takes no new requests.
    pub terminating: bool,
}

/// One route as a source saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcedRoute {
    /// `metadata.namespace`, `default` when absent.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// Where it came from, for messages: a file path, or `kube`.
    pub origin: Arc<str>,
    /// How old the route is; older routes win conflicts and precedence ties.
    pub age: Age,
    /// The route itself.
    pub spec: Arc<LoadBalancerRouteSpec>,
}

/// A route's age. Ordered oldest first: creation time when the source knows
/// it (Kubernetes), then the position in the source (file order), so that in
/// standalone mode the route written first is the older.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Age {
    /// `metadata.creationTimestamp` in seconds since the epoch, if known.
    pub created: Option<i64>,
    /// Position within the source (file order, then document order).
    pub position: u64,
}

/// What kind of problem a [`Diagnostic`] is, stable across wording and
/// positions: what the keep-last-good gate compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// A file that cannot be read.
    Unreadable,
    /// A document that is not YAML.
    Yaml,
    /// A document of another kind.
    Kind,
    /// A document of another API version.
    ApiVersion,
    /// A document without `metadata.name`.
    MissingName,
    /// A field of the wrong type or shape.
    Schema,
    /// A field the resource does not have.
    UnknownField,
    /// A field compile refused; the code of its `diagnostic::Invalid`.
    Invalid(&'static str),
}

impl Code {
    /// The code as text, kebab-case.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unreadable => "unreadable",
            Code::Yaml => "invalid-yaml",
            Code::Kind => "wrong-kind",
            Code::ApiVersion => "wrong-api-version",
            Code::MissingName => "missing-name",
            Code::Schema => "schema",
            Code::UnknownField => "unknown-field",
            Code::Invalid(code) => code,
        }
    }
}

/// What makes two diagnostics the same problem (see [`Diagnostic::key`]):
/// the keep-last-good gate compares these, never display text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiagnosticKey {
    /// The file (or `kube`).
    pub origin: Arc<str>,
    /// `namespace/name`, when known.
    pub resource: Option<String>,
    /// The field path, when known.
    pub field: Option<String>,
    /// What kind of problem.
    pub code: Code,
    /// For a document's problem (no resource to key it by): its message
    /// without digits, so two different bad documents in one file are two
    /// problems while positions (document index, line, column) still do
    /// not count. `None` for a resource's problem, keyed by field and code.
    pub detail: Option<String>,
}

/// A problem with the input, located as precisely as the source allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (or `kube`) the problem is in.
    pub origin: Arc<str>,
    /// `namespace/name` of the resource, when it could be read: a route's;
    /// another kind's is prefixed with its kind (`Secret shop/mango-tls`).
    pub resource: Option<String>,
    /// The field path, e.g. `spec.rules[0].matches[0].path.value`.
    pub field: Option<String>,
    /// What kind of problem, stable.
    pub code: Code,
    /// What is wrong, for a person.
    pub message: String,
}

impl Diagnostic {
    /// What the problem is, independent of where it sits in its file: a
    /// resource's problem is `(origin, resource, field, code)`, whatever
    /// value its message quotes; a document's problem (it has no resource
    /// or field) is its file, code and message with positions (document
    /// index, line, column) left out, so an edit elsewhere in the file does
    /// not make an old problem look new, and a second bad document does.
    pub fn key(&self) -> DiagnosticKey {
        let detail = self.resource.is_none().then(|| {
            self.message
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect()
        });
        DiagnosticKey {
            origin: self.origin.clone(),
            resource: self.resource.clone(),
            field: self.field.clone(),
            code: self.code,
            detail,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        match &self.resource {
            // Another kind than a route names itself: `Secret ns/name`.
            Some(resource) if resource.contains(' ') => write!(f, "{resource}: ")?,
            Some(resource) => write!(f, "LoadBalancerRoute {resource}: ")?,
            None => {}
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(field: Option<&str>, code: Code, message: &str) -> Diagnostic {
        Diagnostic {
            origin: Arc::from("routes.yaml"),
            resource: field.map(|_| "shop/mango".to_owned()),
            field: field.map(str::to_owned),
            code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn diagnostic_key_is_origin_resource_field_and_code_not_text() {
        let soon = diagnostic(
            Some("spec.rules[0].timeouts.request"),
            Code::Invalid("invalid-duration"),
            "\"soon\" is not a duration (for example 500ms, 30s, 1m30s)",
        );
        let later = diagnostic(
            Some("spec.rules[0].timeouts.request"),
            Code::Invalid("invalid-duration"),
            "\"later\" is not a duration (for example 500ms, 30s, 1m30s)",
        );
        assert_eq!(soon.key(), later.key());
        let zero = diagnostic(
            Some("spec.rules[0].timeouts.request"),
            Code::Invalid("zero-duration"),
            "\"0s\" must be longer than zero",
        );
        assert_ne!(soon.key(), zero.key());
    }

    #[test]
    fn document_diagnostic_key_is_position_independent() {
        let first = diagnostic(
            None,
            Code::Yaml,
            "document 1: invalid YAML at line 3 column 1: x",
        );
        let moved = diagnostic(
            None,
            Code::Yaml,
            "document 2: invalid YAML at line 9 column 4: x",
        );
        assert_eq!(first.key(), moved.key());
        let kind = diagnostic(None, Code::Kind, "document 1: kind is \"Service\"");
        assert_ne!(first.key(), kind.key());
        let other_kind = diagnostic(None, Code::Kind, "document 2: kind is \"ConfigMap\"");
        assert_ne!(
            kind.key(),
            other_kind.key(),
            "a second bad document in the file is a new problem"
        );
        assert_eq!(Code::Yaml.as_str(), "invalid-yaml");
        assert_eq!(Code::Invalid("no-rules").as_str(), "no-rules");
    }
}
