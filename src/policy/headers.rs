//! Header and query-parameter changes.
//!
//! Owns: [`HeaderModifier`] (names and values parsed into `HeaderName` /
//! `HeaderValue` at compile) and [`QueryModifier`] (names checked and values
//! percent-encoded at compile), with their apply fns. Must not: parse a
//! configured name or value per request.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::api;
use crate::api::values::{parse_header_name, parse_header_value};
use crate::diagnostic::{FieldPath, Invalid, Problems};

/// Compiled header changes: `remove`, then `set`, then `add`.
#[derive(Debug, Clone, Default)]
pub struct HeaderModifier {
    set: Box<[(HeaderName, HeaderValue)]>,
    add: Box<[(HeaderName, HeaderValue)]>,
    remove: Box<[HeaderName]>,
}

impl HeaderModifier {
    /// Compiles `spec`; problems go to `errors`, named under `at`.
    pub fn compile(
        spec: &api::HeaderModifier,
        at: impl Into<FieldPath>,
        errors: &mut Problems,
    ) -> Self {
        let at = at.into();
        let mut pairs = |map: &BTreeMap<String, String>, list: &str| {
            let mut out = Vec::with_capacity(map.len());
            for (name, value) in map {
                let checked = changeable(name).and_then(|n| {
                    parse_header_value(value)
                        .map(|v| (n, v))
                        .map_err(Invalid::from)
                });
                out.extend(errors.check(|| at.key(list).key(name), checked));
            }
            out.into_boxed_slice()
        };
        let set = pairs(&spec.set, "set");
        let add = pairs(&spec.add, "add");
        let mut remove = Vec::with_capacity(spec.remove.len());
        for (i, name) in spec.remove.iter().enumerate() {
            remove.extend(errors.check(|| at.key("remove").index(i), changeable(name)));
        }
        HeaderModifier {
            set,
            add,
            remove: remove.into(),
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the changes to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &*self.remove {
            headers.remove(name);
        }
        for (name, value) in &*self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &*self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Parses a header name a header rule may change. The proxy owns message
/// framing and connection headers (a wrong `Content-Length` or
/// `Transfer-Encoding` would desynchronise the backend connection), and
/// `Host` has its own rule.
fn changeable(name: &str) -> Result<HeaderName, Invalid> {
    const FRAMING: [&str; 8] = [
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    let name = parse_header_name(name)?;
    if name == http::header::HOST {
        Err(Invalid::HostHeader)
    } else if FRAMING.contains(&name.as_str()) {
        Err(Invalid::ManagedHeader(name.to_string()))
    } else {
        Ok(name)
    }
}

/// Compiled query changes: `remove`, then `set`, then `add`; each set or
/// added parameter is appended as `name=value`, already percent-encoded.
#[derive(Debug, Clone, Default)]
pub struct QueryModifier {
    /// Names whose existing occurrences are dropped (`remove` and `set`).
    drop: Box<[Box<str>]>,
    /// `name=value` pairs appended (`set`, then `add`).
    append: Box<[Box<str>]>,
}

impl QueryModifier {
    /// Compiles `spec`; problems go to `errors`, named under `at`.
    pub fn compile(
        spec: &api::QueryModifier,
        at: impl Into<FieldPath>,
        errors: &mut Problems,
    ) -> Self {
        let at = at.into();
        let mut check = |name: &str, field: FieldPath| {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok {
                errors.push(field, Invalid::QueryName(name.to_owned()));
            }
            ok
        };
        let mut drop = Vec::new();
        let mut append = Vec::new();
        for (i, name) in spec.remove.iter().enumerate() {
            if check(name, at.key("remove").index(i)) {
                drop.push(name.as_str().into());
            }
        }
        for (list, map) in [("set", &spec.set), ("add", &spec.add)] {
            for (name, value) in map {
                if check(name, at.key(list).key(name)) {
                    if list == "set" {
                        drop.push(name.as_str().into());
                    }
                    append.push(format!("{name}={}", percent_encode(value)).into());
                }
            }
        }
        QueryModifier {
            drop: drop.into(),
            append: append.into(),
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.append.is_empty()
    }

    /// The new query for `query` (without `?`); `None` when it ends empty.
    pub fn apply(&self, query: Option<&str>) -> Option<String> {
        let mut out = String::with_capacity(
            query.map_or(0, str::len) + self.append.iter().map(|p| p.len() + 1).sum::<usize>(),
        );
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            if self.drop.iter().any(|d| **d == *name) {
                continue;
            }
            push_pair(&mut out, pair);
        }
        for pair in &*self.append {
            push_pair(&mut out, pair);
        }
        (!out.is_empty()).then_some(out)
    }
}

fn push_pair(out: &mut String, pair: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(pair);
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn headers_are_removed_then_set_then_added() {
        let mut errors = crate::diagnostic::Problems::default();
        let m = HeaderModifier::compile(
            &api::HeaderModifier {
                set: map(&[("X-Set", "new")]),
                add: map(&[("MyCustomHeader", "Test"), ("X-Multi", "2")]),
                remove: vec!["X-Remove".into(), "x-multi".into()],
            },
            "h",
            &mut errors,
        );
        assert!(errors.is_empty());
        let mut h = HeaderMap::new();
        h.insert("x-remove", HeaderValue::from_static("gone"));
        h.append("x-set", HeaderValue::from_static("a"));
        h.append("x-set", HeaderValue::from_static("b"));
        h.insert("x-multi", HeaderValue::from_static("1"));
        m.apply(&mut h);
        assert!(!h.contains_key("x-remove"));
        assert_eq!(h.get_all("x-set").iter().collect::<Vec<_>>(), ["new"]);
        assert_eq!(h["mycustomheader"], "Test");
        assert_eq!(h.get_all("x-multi").iter().collect::<Vec<_>>(), ["2"]);
    }

    #[test]
    fn bad_header_names_and_values_are_named() {
        let mut errors = crate::diagnostic::Problems::default();
        HeaderModifier::compile(
            &api::HeaderModifier {
                set: map(&[("Bad Name", "x"), ("Content-Length", "0"), ("Host", "x")]),
                add: map(&[("X-Ok", "line\nbreak")]),
                remove: vec!["ok".into(), "(bad)".into(), "Transfer-Encoding".into()],
            },
            "spec.rules[0].requestHeaders",
            &mut errors,
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.rules[0].requestHeaders.set.Bad Name",
                "spec.rules[0].requestHeaders.set.Content-Length",
                "spec.rules[0].requestHeaders.set.Host",
                "spec.rules[0].requestHeaders.add.X-Ok",
                "spec.rules[0].requestHeaders.remove[1]",
                "spec.rules[0].requestHeaders.remove[2]",
            ]
        );
    }

    #[test]
    fn query_changes_cases() {
        let mut errors = crate::diagnostic::Problems::default();
        let m = QueryModifier::compile(
            &api::QueryModifier {
                set: map(&[("lang", "en")]),
                add: map(&[("MyCustomParam", "Test"), ("q", "a b&c")]),
                remove: vec!["RemoveMe".into()],
            },
            "q",
            &mut errors,
        );
        assert!(errors.is_empty());
        let tail = "lang=en&MyCustomParam=Test&q=a%20b%26c";
        for (case, query, want) in [
            ("no query", None, tail.to_owned()),
            ("kept", Some("keep=1"), format!("keep=1&{tail}")),
            (
                "removed, every occurrence",
                Some("RemoveMe=1&a=2&RemoveMe"),
                format!("a=2&{tail}"),
            ),
            ("set replaces", Some("lang=fr&x"), format!("x&{tail}")),
            (
                "names compare whole",
                Some("RemoveMeNot=1"),
                format!("RemoveMeNot=1&{tail}"),
            ),
        ] {
            assert_eq!(m.apply(query).as_deref(), Some(&*want), "case {case}");
        }
        let only_remove = QueryModifier::compile(
            &api::QueryModifier {
                remove: vec!["a".into()],
                ..Default::default()
            },
            "q",
            &mut errors,
        );
        assert_eq!(
            only_remove.apply(Some("a=1")),
            None,
            "an emptied query goes away"
        );
    }
}
