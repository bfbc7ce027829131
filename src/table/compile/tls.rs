//! Compile step: each route's `spec.tls` (its certificate, read once per
//! Secret, and the `TLSReady` condition), the default certificate, the
//! client CA, and the listener configuration they make.
//!
//! A Secret that was good and is now broken keeps serving its last good
//! certificate (its condition says why it is stale); one that never was
//! good refuses its route's hosts at the handshake, so they never get
//! another certificate.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::https::{Loaded, TlsTable};
use super::super::{ConditionReason, ConditionState};
use crate::diagnostic::{CompileError, FieldPath, Invalid};
use crate::matching::HostKey;
use crate::snapshot::{
    Code, Diagnostic, ObjectKey, SecretInfo, Snapshot, SourcedRoute, TLS_SECRET_TYPE,
};
use crate::tls::{self, CertIndex, CertProblem, Certificate, ClientCa, ListenerConfig, Sessions};

/// Why a Secret gives no certificate: the condition reason and the text.
#[derive(Clone, Debug)]
struct Problem {
    reason: ConditionReason,
    code: &'static str,
    message: String,
}

/// A Secret as this compile read it.
#[derive(Clone, Debug)]
enum Reading {
    /// Served, freshly read or unchanged since the last compile.
    Good(Arc<Certificate>),
    /// Not servable; the last good certificate, if there was one, is.
    Bad {
        problem: Problem,
        last_good: Option<Arc<Certificate>>,
    },
}

impl Reading {
    fn served(&self) -> Option<&Arc<Certificate>> {
        match self {
            Reading::Good(cert) => Some(cert),
            Reading::Bad { last_good, .. } => last_good.as_ref(),
        }
    }
}

/// A route's TLS as compiled: its condition, its problems, and what the
/// index gets for its hosts once the route is served.
#[derive(Debug)]
pub(super) struct RouteCert {
    /// `TLSReady`.
    pub condition: ConditionState,
    /// Its problems, for `check` and the gate.
    pub errors: Vec<CompileError>,
    /// The certificate served for its hosts, if any.
    cert: Option<Arc<Certificate>>,
    /// Its hosts.
    hosts: Vec<HostKey>,
}

/// The TLS half of a compile.
pub(super) struct Certs<'a> {
    snapshot: &'a Snapshot,
    previous: &'a TlsTable,
    now: i64,
    read: HashMap<ObjectKey, Reading>,
    index: CertIndex,
}

impl<'a> Certs<'a> {
    /// Starts the TLS half of a compile at `now` (seconds since the epoch).
    pub fn new(snapshot: &'a Snapshot, previous: &'a TlsTable, now: i64) -> Self {
        Certs {
            snapshot,
            previous,
            now,
            read: HashMap::new(),
            index: CertIndex::default(),
        }
    }

    /// The TLS of `route`, or `None` without `spec.tls`.
    pub fn route(&mut self, route: &SourcedRoute, hosts: &[HostKey]) -> Option<RouteCert> {
        let spec = route.spec.tls.as_ref()?;
        let field = FieldPath::from("spec").key("tls").key("secretName");
        let name = &spec.secret_name;
        let reading = if name.contains('/') {
            Reading::Bad {
                problem: Problem {
                    reason: ConditionReason::RefNotPermitted,
                    code: "tls-cross-namespace",
                    message: format!(
                        "Secret {name:?} names another namespace; a route's certificate must be in its own namespace ({})",
                        route.namespace
                    ),
                },
                last_good: None,
            }
        } else {
            self.secret(&(route.namespace.clone(), name.clone()))
        };
        let secret = format!("{}/{name}", route.namespace);
        Some(route_cert(&reading, &secret, field, hosts))
    }

    /// Puts a served route's certificate in the index for the names it
    /// covers; without one, its hosts are refused at the handshake.
    pub fn serve(&mut self, route: &RouteCert) {
        match &route.cert {
            Some(cert) => self.index.insert(cert),
            None => {
                for host in &route.hosts {
                    match host {
                        HostKey::Exact(name) => self.index.refuse_exact(name),
                        HostKey::Wildcard(suffix) => self.index.refuse_wildcard(suffix),
                        HostKey::Any => {}
                    }
                }
            }
        }
    }

    /// The Secret `key` read (once per compile): unchanged bytes reuse the
    /// previous compile's certificate.
    fn secret(&mut self, key: &ObjectKey) -> Reading {
        if let Some(reading) = self.read.get(key) {
            return reading.clone();
        }
        let previous = self.previous.loaded.get(key);
        let reading = match read_secret(self.snapshot.secrets.get(key), previous, self.now) {
            Ok(cert) => Reading::Good(cert),
            Err(problem) => Reading::Bad {
                problem,
                last_good: previous.map(|p| p.cert.clone()),
            },
        };
        self.read.insert(key.clone(), reading.clone());
        reading
    }

    /// The table's TLS: the index with the default certificate, the
    /// client CA and the listener configuration; and the listener's
    /// problems (default certificate, client CA), each located.
    pub fn finish(mut self) -> (TlsTable, Vec<Diagnostic>) {
        let settings = &self.snapshot.tls;
        let mut problems = Vec::new();
        if let Some(key) = settings.default_certificate.clone() {
            let reading = self.secret(&key);
            if let Reading::Bad { problem, .. } = &reading {
                problems.push(self.listener_problem(&key, "--default-certificate", problem));
            }
            if let Some(cert) = reading.served() {
                self.index.set_default(cert.clone());
            }
        }
        let client_ca = match &settings.client_ca {
            None => None,
            Some(key) => match client_ca(self.snapshot, key, settings.client_auth) {
                Ok(ca) => Some(ca),
                Err(problem) => {
                    problems.push(self.listener_problem(key, "--tls-client-ca", &problem));
                    self.previous.client_ca.clone()
                }
            },
        };
        let sessions = self.sessions(client_ca.as_ref());
        let index = Arc::new(self.index);
        // Mutual TLS fails closed: a client CA asked for but unavailable
        // leaves no configuration, so every handshake is refused.
        let config = if settings.listener && (client_ca.is_some() || settings.client_ca.is_none()) {
            let options = tls::TlsOptions {
                min_version: settings.min_version,
            };
            match ListenerConfig::build(index.clone(), options, client_ca.as_ref(), &sessions) {
                Ok(config) => Some(config),
                Err(err) => {
                    problems.push(listener_unconfigured(&err));
                    None
                }
            }
        } else {
            None
        };
        let loaded = loaded(self.snapshot, &self.read, self.previous);
        let table = TlsTable {
            index,
            config,
            loaded,
            sessions: Some(sessions),
            client_ca,
        };
        (table, problems)
    }

    /// The previous table's session state while client verification is
    /// unchanged; fresh state otherwise, so no ticket issued under one
    /// client-auth setting resumes under another.
    fn sessions(&self, client_ca: Option<&ClientCa>) -> Sessions {
        let same = match (&self.previous.client_ca, client_ca) {
            (None, None) => true,
            (Some(a), Some(b)) => a.pem == b.pem && a.auth == b.auth,
            _ => false,
        };
        match &self.previous.sessions {
            Some(sessions) if same => sessions.clone(),
            _ => Sessions::new(),
        }
    }

    fn listener_problem(&self, key: &ObjectKey, flag: &str, problem: &Problem) -> Diagnostic {
        let origin = (self.snapshot.secrets.get(key))
            .or_else(|| self.snapshot.config_maps.get(key))
            .map_or_else(|| Arc::from("flags"), |s| s.origin.clone());
        Diagnostic {
            origin,
            resource: None,
            field: Some(flag.to_owned()),
            code: Code::Invalid(problem.code),
            message: format!("{}/{}: {}", key.0, key.1, problem.message),
        }
    }
}

/// rustls refused the listener's configuration (it cannot with the
/// versions and trust anchors compile gives it): every handshake is
/// refused, and this says why instead of nothing.
fn listener_unconfigured(err: &rustls::Error) -> Diagnostic {
    Diagnostic {
        origin: Arc::from("flags"),
        resource: None,
        field: Some("--tls-listen".to_owned()),
        code: Code::Invalid("tls-listener"),
        message: format!("the TLS listener cannot be configured: {err}"),
    }
}

/// The condition, problems and served certificate of a route whose Secret
/// `secret` reads as `reading`.
fn route_cert(reading: &Reading, secret: &str, field: FieldPath, hosts: &[HostKey]) -> RouteCert {
    let cert = reading.served().cloned();
    let (condition, errors) = match reading {
        Reading::Bad { problem, last_good } => {
            let stale = last_good.as_ref().map_or_else(
                || "; its hosts fail the TLS handshake until it is fixed".to_owned(),
                |c| format!("; serving the last good certificate (serial {})", c.serial),
            );
            let message = format!("Secret {secret}: {}{stale}", problem.message);
            let error = CompileError::new(
                field,
                Invalid::Tls {
                    code: problem.code,
                    message: format!("Secret {secret}: {}", problem.message),
                },
            );
            (ConditionState::unmet(problem.reason, message), vec![error])
        }
        Reading::Good(cert) => coverage(cert, secret, hosts),
    };
    RouteCert {
        condition,
        errors,
        cert,
        hosts: hosts.to_vec(),
    }
}

/// `TLSReady` for a good certificate: `True`, unless a route host is not
/// among its names (then that is a problem too, on `spec.hosts`).
fn coverage(
    cert: &Certificate,
    secret: &str,
    hosts: &[HostKey],
) -> (ConditionState, Vec<CompileError>) {
    let uncovered: Vec<String> = hosts
        .iter()
        .filter_map(|host| match host {
            HostKey::Exact(h) => (!tls::covers(&cert.names, h)).then(|| h.to_string()),
            HostKey::Wildcard(suffix) => {
                let host = format!("*{suffix}");
                (!tls::covers(&cert.names, &host)).then_some(host)
            }
            HostKey::Any => None,
        })
        .collect();
    if uncovered.is_empty() {
        let ready = ConditionState::met(
            ConditionReason::CertificateReady,
            format!("serving Secret {secret} (serial {})", cert.serial),
        );
        return (ready, Vec::new());
    }
    let message = format!(
        "the certificate of Secret {secret} (serial {}) does not cover {}; it covers {}",
        cert.serial,
        uncovered.join(", "),
        cert.names.join(", ")
    );
    let error = CompileError::new(
        FieldPath::from("spec").key("hosts"),
        Invalid::Tls {
            code: "tls-host-not-covered",
            message: message.clone(),
        },
    );
    let condition = ConditionState::unmet(ConditionReason::HostNotCovered, message);
    (condition, vec![error])
}

/// A certificate from `secret`: `previous`'s when the bytes are unchanged
/// and it has not expired, else read afresh.
fn read_secret(
    secret: Option<&SecretInfo>,
    previous: Option<&Loaded>,
    now: i64,
) -> Result<Arc<Certificate>, Problem> {
    let secret = secret.ok_or_else(|| Problem {
        reason: ConditionReason::SecretNotFound,
        code: "tls-secret-not-found",
        message: format!("not found (only Secrets of type {TLS_SECRET_TYPE} are read)"),
    })?;
    if secret.type_.as_deref() != Some(TLS_SECRET_TYPE) {
        let found = secret.type_.as_deref().unwrap_or("none");
        return Err(Problem {
            reason: ConditionReason::InvalidCertificate,
            code: "tls-secret-type",
            message: format!("its type is {found:?}, not {TLS_SECRET_TYPE}"),
        });
    }
    let (crt, key) = (data(secret, "tls.crt")?, data(secret, "tls.key")?);
    if let Some(p) = previous.filter(|p| p.crt == *crt && p.key == *key && p.cert.not_after > now) {
        return Ok(p.cert.clone());
    }
    let cert = tls::load_certificate(crt, key, now).map_err(cert_problem)?;
    Ok(Arc::new(cert))
}

fn data<'s>(secret: &'s SecretInfo, key: &'static str) -> Result<&'s Arc<[u8]>, Problem> {
    secret
        .data
        .get(key)
        .ok_or_else(|| cert_problem(CertProblem::MissingKey(key)))
}

fn cert_problem(problem: CertProblem) -> Problem {
    let reason = match problem {
        CertProblem::Expired { .. } => ConditionReason::CertificateExpired,
        _ => ConditionReason::InvalidCertificate,
    };
    Problem {
        reason,
        code: problem.code(),
        message: problem.to_string(),
    }
}

/// The client CA `key` names: a ConfigMap's, else a Secret's `ca.crt`.
fn client_ca(
    snapshot: &Snapshot,
    key: &ObjectKey,
    auth: crate::snapshot::ClientAuth,
) -> Result<ClientCa, Problem> {
    let object = (snapshot.config_maps.get(key))
        .or_else(|| snapshot.secrets.get(key))
        .ok_or_else(|| Problem {
            reason: ConditionReason::SecretNotFound,
            code: "tls-client-ca-not-found",
            message: "no ConfigMap or Secret of this name".to_owned(),
        })?;
    let pem = data(object, "ca.crt")?;
    let roots = tls::load_ca(pem).map_err(cert_problem)?;
    Ok(ClientCa {
        roots,
        pem: pem.clone(),
        auth,
    })
}

/// The certificates to hand the next compile: each Secret's served one,
/// with the bytes it was read from (a stale one keeps its old bytes).
fn loaded(
    snapshot: &Snapshot,
    read: &HashMap<ObjectKey, Reading>,
    previous: &TlsTable,
) -> HashMap<ObjectKey, Loaded> {
    read.iter()
        .filter_map(|(key, reading)| {
            let loaded = match reading {
                Reading::Good(cert) => {
                    let secret = snapshot.secrets.get(key)?;
                    Loaded {
                        crt: secret.data.get("tls.crt")?.clone(),
                        key: secret.data.get("tls.key")?.clone(),
                        cert: cert.clone(),
                    }
                }
                Reading::Bad { .. } => previous.loaded.get(key)?.clone(),
            };
            Some((key.clone(), loaded))
        })
        .collect()
}
