//! Compile step: a rule's `matches`, each to a [`RequestMatch`] and the
//! [`MatchKey`] conflict detection compares.

use http::Method;

use crate::api::values::parse_method;
use crate::api::{self, HeaderMatchType, PathMatchType};
use crate::diagnostic::{CompileError, FieldPath, Invalid, Problems};
use crate::matching::{HeaderMatcher, PathMatcher, Regexes, RequestMatch};

/// The identity of a match, for conflict detection: two matches with equal
/// keys on the same host select exactly the same requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct MatchKey {
    path_kind: PathMatchType,
    path: String,
    headers: Vec<(String, HeaderMatchType, String)>,
    methods: Vec<String>,
}

/// One compiled match of a route, before hosts multiply it.
pub(super) struct RuleMatch {
    /// Where it is written (`spec.rules[0].matches[1]`, or the rule when
    /// `matches` is omitted).
    pub field: FieldPath,
    /// Its identity.
    pub key: MatchKey,
    /// The compiled conditions.
    pub matcher: RequestMatch,
    /// The rule's index.
    pub rule: usize,
    /// The match's index in the rule.
    pub index: usize,
}

/// The matches of `rule` as written; an omitted `matches` is one
/// match of every request.
pub(super) fn effective(rule: &api::RouteRule) -> &[api::RouteMatch] {
    const ALL: &[api::RouteMatch] = &[api::RouteMatch {
        path: None,
        headers: Vec::new(),
        methods: Vec::new(),
    }];
    if rule.matches.is_empty() {
        ALL
    } else {
        &rule.matches
    }
}

/// Compiles the matches of rule `r` into `out` (patterns through
/// `regexes`); a match equal to an earlier one of the same route is
/// refused (only one could be served).
pub(super) fn compile_matches(
    rule: &api::RouteRule,
    r: usize,
    at: &FieldPath,
    (out, regexes): (&mut Vec<RuleMatch>, &mut Regexes<'_>),
    errors: &mut Problems,
) {
    for (m, wanted) in effective(rule).iter().enumerate() {
        // An omitted `matches` has no `matches[0]` to point at.
        let field = if rule.matches.is_empty() {
            at.clone()
        } else {
            at.key("matches").index(m)
        };
        match compile_match(wanted, &field, regexes) {
            Ok((key, matcher)) => {
                if let Some(first) = out.iter().find(|c| c.key == key) {
                    let first = first.field.to_string();
                    errors.push(field, Invalid::DuplicateMatch { first });
                } else {
                    out.push(RuleMatch {
                        field,
                        key,
                        matcher,
                        rule: r,
                        index: m,
                    });
                }
            }
            Err(found) => {
                for e in found {
                    errors.push_error(e);
                }
            }
        }
    }
}

/// Compiles one match: its path first, then its headers and methods; every
/// problem is returned, the path's first.
fn compile_match(
    wanted: &api::RouteMatch,
    field: &FieldPath,
    regexes: &mut Regexes<'_>,
) -> Result<(MatchKey, RequestMatch), Vec<CompileError>> {
    let mut errors = Problems::default();
    let (path_kind, value) = wanted
        .path
        .as_ref()
        .map_or((PathMatchType::Prefix, "/"), |p| (p.kind, p.value.as_str()));
    let path = errors.check(
        || field.key("path").key("value"),
        PathMatcher::compile(path_kind, value, regexes),
    );
    let mut headers = Vec::new();
    let mut header_keys = Vec::new();
    for (h, header) in wanted.headers.iter().enumerate() {
        match HeaderMatcher::compile(header.kind, &header.name, &header.value, regexes) {
            Ok(matcher) => {
                headers.push(matcher);
                header_keys.push((
                    header.name.to_ascii_lowercase(),
                    header.kind,
                    header.value.clone(),
                ));
            }
            Err(e) => errors.push(field.key("headers").index(h).key(e.0), e.1),
        }
    }
    let mut methods: Vec<Method> = Vec::new();
    for (k, method) in wanted.methods.iter().enumerate() {
        match errors.check(|| field.key("methods").index(k), parse_method(method)) {
            Some(m) if !methods.contains(&m) => methods.push(m),
            _ => {}
        }
    }
    let Some(path) = path else {
        return Err(errors.into_vec());
    };
    if !errors.is_empty() {
        return Err(errors.into_vec());
    }
    header_keys.sort();
    let mut method_keys: Vec<String> = methods.iter().map(|m| m.as_str().to_owned()).collect();
    method_keys.sort();
    let key = MatchKey {
        path_kind,
        path: match &path {
            PathMatcher::Prefix(p) => p.to_string(),
            _ => value.to_owned(),
        },
        headers: header_keys,
        methods: method_keys,
    };
    Ok((
        key,
        RequestMatch {
            path,
            methods: methods.into(),
            headers: headers.into(),
        },
    ))
}
