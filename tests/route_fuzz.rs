//! Fuzzing the route-file path (`switchyard check` and `run` share it: the
//! file source's parse, then compile): generated files — route documents
//! with mutated values, random nesting, random characters, truncations —
//! placed next to a good file. Whatever the generated file holds, nothing
//! panics, every problem names the generated file, and the good route
//! still compiles. 1024 cases, about a second.

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config;
use switchyard::source::file::{self, Files};
use switchyard::table::{compile, RouteStatus, RouteTable};

/// The good route, in its own file, loaded first (so it is the older
/// route in any conflict).
const GOOD: &str = "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
metadata: {name: good, namespace: fuzz-good}\nspec:\n  hosts: [www.good.test]\n  rules:\n  \
- backends: [{address: \"127.0.0.1:9\"}]\n";

const FUZZED: &str = "b_fuzzed.yaml";

/// Values worth trying in any string field: edge cases of every parser.
const INTERESTING: &[&str] = &[
    "30s",
    "0s",
    "8760h",
    "8761h",
    "18446744073709551615s",
    "1m30s",
    "500ms",
    "-1s",
    "1.5s",
    "",
    " ",
    "/",
    "/api",
    "api",
    "/(unclosed",
    "^.*$",
    "(a+)+$",
    "[",
    "*.mango.com",
    "www.*.com",
    "a..b",
    "127.0.0.1:8080",
    "[::1]:80",
    "nohost",
    "host:99999",
    "10.0.0.0/8",
    "::/0",
    "300.0.0.0/8",
    "GET",
    "get",
    "G T",
    "x-canary",
    "bad header",
    "10Mi",
    "1Ei",
    "99999999999999999999",
    "RoundRobin",
    "Fastest",
    "Prefix",
    "Exact",
    "RegularExpression",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{2028}",
    "'",
    "\"",
    "#",
    "{",
    "}",
];

/// A string value: an interesting one or random characters.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(INTERESTING).prop_map(str::to_owned),
        prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
    ]
}

/// `value()` as a YAML double-quoted scalar.
fn quoted() -> impl Strategy<Value = String> {
    value().prop_map(|v| serde_json::to_string(&v).expect("a string serialises"))
}

/// A route document of the right shape with mutated values.
fn route_doc() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(quoted(), 12),
        any::<u32>(),
        any::<i64>(),
        select(&["Prefix", "Exact", "RegularExpression", "Fastest"][..]),
    )
        .prop_map(|(v, weight, rps, path_type)| {
            format!(
                "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
                 metadata: {{name: {}}}\nspec:\n  hosts: [{}]\n  rules:\n  \
                 - matches: [{{path: {{type: {path_type}, value: {}}}, headers: [{{name: {}, value: {}}}], methods: [{}]}}]\n    \
                 backends: [{{address: {}, weight: {weight}}}]\n    \
                 timeouts: {{request: {}, total: {}}}\n    \
                 healthCheck: {{interval: {}, timeout: 1s}}\n    \
                 firewall: {{allow: [{}], denyPaths: [{}]}}\n    \
                 rateLimit: {{requestsPerSecond: {rps}}}\n",
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]
            )
        })
}

/// Random YAML punctuation: nesting, indentation, quotes, block scalars.
fn punctuation() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "[", "]", "{", "}", "a: ", "- ", "? ", "\n", "  ", ", ", "'", "\"", " #", "|\n", ">-\n",
        "&x ", "*x", "!t ", "---\n", "\u{feff}",
    ];
    prop::collection::vec(select(PIECES), 0..400).prop_map(|p| p.concat())
}

/// One opener repeated: deep nesting, past the limit or not.
fn deep() -> impl Strategy<Value = String> {
    (
        1usize..5_000,
        select(&["[", "{a: ", "- ", "{? ", "[a, ", "k:\n "][..]),
    )
        .prop_map(|(n, opener)| opener.repeat(n))
}

/// A route document cut short anywhere.
fn truncated() -> impl Strategy<Value = String> {
    (route_doc(), any::<Index>())
        .prop_map(|(doc, at)| doc.chars().take(at.index(doc.len())).collect())
}

/// A whole generated file: one to three parts as documents.
fn fuzzed_file() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        3 => route_doc(),
        2 => punctuation(),
        1 => deep(),
        1 => prop::collection::vec(any::<char>(), 0..300).prop_map(String::from_iter),
        2 => truncated(),
    ];
    prop::collection::vec(part, 1..4).prop_map(|parts| parts.join("\n---\n"))
}

proptest! {
    #![proptest_config(Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn any_route_file_is_refused_alone_without_a_panic(text in fuzzed_file()) {
        let files = Files(vec![
            (PathBuf::from("a_good.yaml"), Ok(GOOD.into())),
            (PathBuf::from(FUZZED), Ok(text.into())),
        ]);
        // What `check` and each reload do: parse, then compile.
        let update = file::update(&files, &Default::default());
        let compiled = compile(&update.snapshot, &RouteTable::default(), 0);
        let compile_problems = compiled.statuses.iter().flat_map(RouteStatus::diagnostics);
        for problem in update.diagnostics.iter().cloned().chain(compile_problems) {
            prop_assert_eq!(&*problem.origin, FUZZED, "{}", problem);
        }
        let good = compiled
            .statuses
            .iter()
            .find(|s| s.namespace == "fuzz-good" && s.name == "good");
        prop_assert!(good.is_some_and(RouteStatus::accepted), "the good route: {:?}", good);
    }
}
