//! What a LIST or WATCH selects: label selectors (`k=v`, `k==v`, `k!=v`,
//! `k`, `!k`), field selectors (`metadata.name`, `metadata.namespace`, and
//! the kind's own, e.g. a Secret's `type`), the namespace, and the query
//! string they arrive in.
//!
//! Owns parsing selectors and query strings and matching objects against
//! them. Must not frame list or watch responses (`read`, `watch` do).

use serde_json::Value;

use super::failure::{failure, Failure};
use super::kinds::Kind;
use super::object::{meta, str_field};
use super::state::{Key, State};

/// A parsed label or field selector: every term must hold.
#[derive(Debug, Default)]
struct Selector {
    /// (key, op, value): op is "=", "!=", "exists" or "!exists".
    terms: Vec<(String, &'static str, String)>,
}

impl Selector {
    /// Parses a label selector; set-based terms are a 400.
    fn parse_labels(s: &str) -> Result<Selector, Failure> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let parsed = if let Some((k, v)) = term.split_once("!=") {
                (k, "!=", v)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, "=", v)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, "=", v)
            } else if let Some(k) = term.strip_prefix('!') {
                (k, "!exists", "")
            } else if term.contains([' ', '(', ')']) {
                return Err(failure(
                    400,
                    "BadRequest",
                    format!("unable to parse requirement: {term:?} (set-based selectors are not supported by the double)"),
                ));
            } else {
                (term, "exists", "")
            };
            terms.push((
                parsed.0.trim().to_string(),
                parsed.1,
                parsed.2.trim().to_string(),
            ));
        }
        Ok(Selector { terms })
    }

    /// Parses a field selector: `=`/`!=` on `metadata.name`,
    /// `metadata.namespace` or one of the kind's own fields only, as the
    /// real server allows; anything else is a 400.
    fn parse_fields(s: &str, kind: &Kind) -> Result<Selector, Failure> {
        let sel = Selector::parse_labels(s)?;
        for (k, op, _) in &sel.terms {
            let known = matches!(k.as_str(), "metadata.name" | "metadata.namespace")
                || kind.fields.iter().any(|(field, _)| field == k);
            if !matches!(*op, "=" | "!=") || !known {
                return Err(failure(
                    400,
                    "BadRequest",
                    format!("field label not supported: {k}"),
                ));
            }
        }
        Ok(sel)
    }

    /// Whether `obj`'s labels satisfy every term.
    fn matches_labels(&self, obj: &Value) -> bool {
        let labels = &meta(obj)["labels"];
        self.terms.iter().all(|(k, op, v)| {
            let have = labels.get(k).and_then(Value::as_str);
            match *op {
                "=" => have == Some(v.as_str()),
                "!=" => have != Some(v.as_str()),
                "exists" => have.is_some(),
                _ => have.is_none(),
            }
        })
    }

    /// Whether `obj`'s fields satisfy every term.
    fn matches_fields(&self, kind: &Kind, obj: &Value) -> bool {
        self.terms.iter().all(|(k, op, v)| {
            let have = field_value(kind, obj, k);
            (have == v) == (*op == "=")
        })
    }
}

/// The value of the selectable field `field` of `obj` (a dotted path),
/// the kind's default when absent.
fn field_value<'a>(kind: &Kind, obj: &'a Value, field: &str) -> &'a str {
    if let Some(meta_field) = field.strip_prefix("metadata.") {
        return str_field(obj, meta_field);
    }
    let default = (kind.fields.iter())
        .find(|(f, _)| *f == field)
        .map_or("", |(_, d)| *d);
    obj.pointer(&format!("/{}", field.replace('.', "/")))
        .and_then(Value::as_str)
        .unwrap_or(default)
}

/// What a LIST or WATCH selects.
pub(super) struct Selection {
    /// The kind listed or watched.
    pub(super) kind: &'static Kind,
    /// Only this namespace; `None` = all (or cluster-scoped).
    ns: Option<String>,
    /// `labelSelector`.
    labels: Selector,
    /// `fieldSelector`.
    fields: Selector,
}

impl Selection {
    /// The selection a request's target and query describe.
    pub(super) fn new(
        kind: &'static Kind,
        ns: Option<String>,
        q: &Query,
    ) -> Result<Selection, Failure> {
        Ok(Selection {
            kind,
            ns,
            labels: Selector::parse_labels(q.get("labelSelector").unwrap_or(""))?,
            fields: Selector::parse_fields(q.get("fieldSelector").unwrap_or(""), kind)?,
        })
    }

    /// Whether `obj` is selected (namespace, labels, fields).
    pub(super) fn matches(&self, obj: &Value) -> bool {
        self.ns
            .as_deref()
            .is_none_or(|ns| str_field(obj, "namespace") == ns)
            && self.labels.matches_labels(obj)
            && self.fields.matches_fields(self.kind, obj)
    }

    /// The selected stored objects, in key order.
    pub(super) fn current<'a>(
        &self,
        st: &'a State,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + use<'a, '_> {
        let idx = self.kind.index();
        st.objects
            .range((idx, String::new(), String::new())..)
            .take_while(move |(k, _)| k.0 == idx)
            .filter(|(_, v)| self.matches(v))
    }
}

/// A request's query string as decoded (key, value) pairs, in order.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `q` (absent = empty).
    pub(super) fn parse(q: Option<&str>) -> Query {
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    /// The last value given for `key`, as the real server reads it.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is `true` or `1`.
    pub(super) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Decodes `%XX` escapes and `+` (a space) in a query component.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (c, None) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
