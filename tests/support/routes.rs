//! Builders rendering `LoadBalancerRoute` YAML documents.

use std::fmt;

use super::*;

/// Starts a `LoadBalancerRoute` document named `name` (namespace omitted, so
/// it defaults to `default`).
pub fn route(name: &str) -> RouteDoc {
    RouteDoc {
        name: name.to_string(),
        namespace: None,
        hosts: Vec::new(),
        tls: None,
        rules: Vec::new(),
    }
}

/// A `LoadBalancerRoute` document; `Display` renders YAML.
#[derive(Clone, Debug)]
pub struct RouteDoc {
    name: String,
    namespace: Option<String>,
    hosts: Vec<String>,
    /// `spec.tls` as flow YAML.
    tls: Option<String>,
    rules: Vec<Rule>,
}

impl RouteDoc {
    /// Sets `metadata.namespace`.
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.to_string());
        self
    }

    /// Adds a host.
    pub fn host(mut self, host: &str) -> Self {
        self.hosts.push(host.to_string());
        self
    }

    /// Sets `spec.tls: {secretName}` (redirect and HSTS defaults).
    pub fn tls(self, secret_name: &str) -> Self {
        self.tls_spec(&format!("{{secretName: {}}}", q(secret_name)))
    }

    /// Sets `spec.tls` written as flow YAML:
    /// `.tls_spec("{secretName: c, hsts: {maxAgeSeconds: 60}}")`.
    pub fn tls_spec(mut self, flow_yaml: &str) -> Self {
        self.tls = Some(flow_yaml.to_string());
        self
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }
}

/// One backend of a rule: its address, weight and other fields (flow
/// YAML without braces).
type BackendDoc = (String, Option<u32>, Option<String>);

/// One rule: matches, backends, balancing, timeouts.
#[derive(Clone, Debug, Default)]
pub struct Rule {
    matches: Vec<Match>,
    backends: Option<Vec<BackendDoc>>,
    algorithm: Option<String>,
    request_timeout: Option<String>,
    /// Extra rule fields (policies) as `key: flow-YAML` pairs, in order.
    extra: Vec<(String, String)>,
}

impl Rule {
    /// A rule with no matches (matches everything).
    pub fn new() -> Self {
        Rule::default()
    }

    /// A rule matching `Prefix value`.
    pub fn prefix(value: &str) -> Self {
        Rule::new().matching(Match::prefix(value))
    }

    /// A rule matching `Exact value`.
    pub fn exact(value: &str) -> Self {
        Rule::new().matching(Match::exact(value))
    }

    /// A rule matching `RegularExpression value`.
    pub fn regex(value: &str) -> Self {
        Rule::new().matching(Match::regex(value))
    }

    /// Adds a match.
    pub fn matching(mut self, m: Match) -> Self {
        self.matches.push(m);
        self
    }

    /// Adds `backend` with the default weight.
    pub fn backend(self, backend: &Backend) -> Self {
        self.address(&backend.address(), None)
    }

    /// Adds `backend` with `weight`.
    pub fn weighted(self, backend: &Backend, weight: u32) -> Self {
        self.address(&backend.address(), Some(weight))
    }

    /// Adds a backend by address.
    pub fn address(mut self, address: &str, weight: Option<u32>) -> Self {
        self.backends
            .get_or_insert_with(Vec::new)
            .push((address.to_string(), weight, None));
        self
    }

    /// Adds `backend` with more backend fields written as flow YAML
    /// without braces: `.backend_with(&b, "protocol: H2C")`.
    pub fn backend_with(self, backend: &Backend, fields: &str) -> Self {
        self.address_with(&backend.address(), fields)
    }

    /// Adds a backend by address, with more backend fields as in
    /// [`Rule::backend_with`].
    pub fn address_with(mut self, address: &str, fields: &str) -> Self {
        self.backends.get_or_insert_with(Vec::new).push((
            address.to_string(),
            None,
            Some(fields.to_string()),
        ));
        self
    }

    /// Renders `backends: []`.
    pub fn no_backends(mut self) -> Self {
        self.backends = Some(Vec::new());
        self
    }

    /// Sets `loadBalancing.algorithm`.
    pub fn algorithm(mut self, algorithm: &str) -> Self {
        self.algorithm = Some(algorithm.to_string());
        self
    }

    /// Adds a rule field written as flow YAML, for policies:
    /// `.field("firewall", "{deny: [10.0.0.0/8]}")`.
    pub fn field(mut self, key: &str, flow_yaml: &str) -> Self {
        self.extra.push((key.to_string(), flow_yaml.to_string()));
        self
    }

    /// Sets `timeouts.request` (e.g. `"200ms"`).
    pub fn request_timeout(mut self, timeout: &str) -> Self {
        self.request_timeout = Some(timeout.to_string());
        self
    }
}

/// One entry of `matches`.
#[derive(Clone, Debug, Default)]
pub struct Match {
    path: Option<(&'static str, String)>,
    headers: Vec<(String, String, Option<&'static str>)>,
    methods: Vec<String>,
}

impl Match {
    /// A match with no conditions of its own yet.
    pub fn any() -> Self {
        Match::default()
    }

    /// `path: {type: Prefix, value}`.
    pub fn prefix(value: &str) -> Self {
        Match {
            path: Some(("Prefix", value.to_string())),
            ..Match::default()
        }
    }

    /// `path: {type: Exact, value}`.
    pub fn exact(value: &str) -> Self {
        Match {
            path: Some(("Exact", value.to_string())),
            ..Match::default()
        }
    }

    /// `path: {type: RegularExpression, value}`.
    pub fn regex(value: &str) -> Self {
        Match {
            path: Some(("RegularExpression", value.to_string())),
            ..Match::default()
        }
    }

    /// Adds an exact header match.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_string(), value.to_string(), None));
        self
    }

    /// Adds a regular-expression header match.
    pub fn header_regex(mut self, name: &str, value: &str) -> Self {
        self.headers.push((
            name.to_string(),
            value.to_string(),
            Some("RegularExpression"),
        ));
        self
    }

    /// Sets the allowed methods.
    pub fn methods(mut self, methods: &[&str]) -> Self {
        self.methods = methods.iter().map(|m| m.to_string()).collect();
        self
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl fmt::Display for RouteDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "apiVersion: switchyard.dev/v1alpha1")?;
        writeln!(f, "kind: LoadBalancerRoute")?;
        writeln!(f, "metadata:")?;
        writeln!(f, "  name: {}", q(&self.name))?;
        if let Some(ns) = &self.namespace {
            writeln!(f, "  namespace: {}", q(ns))?;
        }
        writeln!(f, "spec:")?;
        if !self.hosts.is_empty() {
            let hosts: Vec<String> = self.hosts.iter().map(|h| q(h)).collect();
            writeln!(f, "  hosts: [{}]", hosts.join(", "))?;
        }
        if let Some(tls) = &self.tls {
            writeln!(f, "  tls: {tls}")?;
        }
        writeln!(f, "  rules:")?;
        for rule in &self.rules {
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every key sits under one "- " item; open it with whichever comes first.
        const FIRST: &str = "  - ";
        const REST: &str = "    ";
        let mut lead = FIRST;
        if !self.matches.is_empty() {
            writeln!(f, "{lead}matches:")?;
            lead = REST;
            for m in &self.matches {
                let mut parts = Vec::new();
                if let Some((kind, value)) = &m.path {
                    parts.push(format!("path: {{type: {kind}, value: {}}}", q(value)));
                }
                if !m.headers.is_empty() {
                    let hs: Vec<String> = m
                        .headers
                        .iter()
                        .map(|(n, v, t)| match t {
                            Some(t) => format!("{{name: {}, value: {}, type: {t}}}", q(n), q(v)),
                            None => format!("{{name: {}, value: {}}}", q(n), q(v)),
                        })
                        .collect();
                    parts.push(format!("headers: [{}]", hs.join(", ")));
                }
                if !m.methods.is_empty() {
                    let ms: Vec<String> = m.methods.iter().map(|m| q(m)).collect();
                    parts.push(format!("methods: [{}]", ms.join(", ")));
                }
                writeln!(f, "    - {{{}}}", parts.join(", "))?;
            }
        }
        match &self.backends {
            None => {}
            Some(backends) if backends.is_empty() => {
                writeln!(f, "{lead}backends: []")?;
                lead = REST;
            }
            Some(backends) => {
                writeln!(f, "{lead}backends:")?;
                lead = REST;
                for (address, weight, fields) in backends {
                    let mut parts = vec![format!("address: {}", q(address))];
                    parts.extend(weight.map(|w| format!("weight: {w}")));
                    parts.extend(fields.clone());
                    writeln!(f, "    - {{{}}}", parts.join(", "))?;
                }
            }
        }
        if let Some(algorithm) = &self.algorithm {
            writeln!(f, "{lead}loadBalancing: {{algorithm: {}}}", q(algorithm))?;
            lead = REST;
        }
        if let Some(timeout) = &self.request_timeout {
            writeln!(f, "{lead}timeouts: {{request: {}}}", q(timeout))?;
            lead = REST;
        }
        for (key, value) in &self.extra {
            writeln!(f, "{lead}{key}: {value}")?;
            lead = REST;
        }
        if lead == FIRST {
            // A rule with nothing in it still needs to be a list item.
            writeln!(f, "  - {{}}")?;
        }
        Ok(())
    }
}

/// Joins documents into one multi-document YAML text.
pub fn yaml(docs: &[RouteDoc]) -> String {
    docs.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("---\n")
}
