//! Policy compile tests through `table::compile`: a route in, its status
//! (every error named by field) and the compiled rule out.

use std::sync::Arc;

use http::{HeaderMap, Method};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{self, LoadBalancerRouteSpec, PathMatch, PathMatchType, RouteMatch, RouteRule};
use crate::snapshot::{Age, BackendPolicy, Snapshot, SourcedRoute};
use crate::table::{compile, Compiled, Reason, RouteTable};

fn compile_rules(rules: Vec<RouteRule>) -> Compiled {
    recompile_rules(rules, &RouteTable::default())
}

fn recompile_rules(rules: Vec<RouteRule>, previous: &RouteTable) -> Compiled {
    let route = SourcedRoute {
        namespace: "shop".into(),
        name: "mango".into(),
        origin: Arc::from("test.yaml"),
        age: Age::default(),
        spec: Arc::new(LoadBalancerRouteSpec {
            hosts: vec!["www.mango.com".into()],
            rules,
            ..Default::default()
        }),
    };
    compile(
        &Snapshot {
            routes: vec![route],
            backends: BackendPolicy::StaticOnly,
            ..Snapshot::default()
        },
        previous,
        0,
    )
}

fn fields(compiled: &Compiled) -> Vec<&str> {
    compiled.statuses[0]
        .errors
        .iter()
        .map(|e| e.field.as_str())
        .collect()
}

fn backend() -> api::Backend {
    api::Backend {
        service: None,
        port: None,
        address: Some("127.0.0.1:9".into()),
        weight: 1,
        protocol: None,
        tls: None,
    }
}

fn matching(kind: PathMatchType, value: &str) -> RouteMatch {
    RouteMatch {
        path: Some(PathMatch {
            kind,
            value: value.into(),
        }),
        ..RouteMatch::default()
    }
}

fn prefix_rewrite(to: &str) -> api::Rewrite {
    api::Rewrite {
        path: Some(api::PathModifier {
            kind: api::PathModifierType::ReplacePrefixMatch,
            replace_prefix_match: Some(to.into()),
            replace_full_path: None,
            pattern: None,
            substitution: None,
        }),
        host: None,
    }
}

#[test]
fn every_invalid_policy_field_is_named() {
    let compiled = compile_rules(vec![
        RouteRule {
            backends: vec![backend()],
            request_headers: Some(api::HeaderModifier {
                remove: vec!["bad name".into()],
                ..Default::default()
            }),
            response_headers: Some(api::HeaderModifier {
                set: [("X-Ok".to_owned(), "bad\u{7f}value".to_owned())].into(),
                ..Default::default()
            }),
            query_params: Some(api::QueryModifier {
                add: [("a b".to_owned(), "1".to_owned())].into(),
                ..Default::default()
            }),
            rewrite: Some(api::Rewrite {
                path: None,
                host: Some(api::HostRewrite {
                    kind: api::HostRewriteType::Hostname,
                    hostname: Some("bad host".into()),
                }),
            }),
            firewall: Some(api::Firewall {
                deny: vec!["300.0.0.0/8".into()],
                ..Default::default()
            }),
            rate_limit: Some(api::RateLimit {
                requests_per_second: 0,
                burst: None,
                key: api::RateLimitKey::default(),
            }),
            max_body_size: Some(IntOrString::String("10 megabytes".into())),
            ..RouteRule::default()
        },
        RouteRule {
            matches: vec![matching(PathMatchType::Prefix, "/moved")],
            redirect: Some(api::Redirect {
                status_code: Some(304),
                ..Default::default()
            }),
            ..RouteRule::default()
        },
    ]);
    assert_eq!(compiled.statuses[0].reason, Reason::Invalid);
    assert_eq!(
        fields(&compiled),
        [
            "spec.rules[0].firewall.deny[0]",
            "spec.rules[0].requestHeaders.remove[0]",
            "spec.rules[0].responseHeaders.set.X-Ok",
            "spec.rules[0].queryParams.add.a b",
            "spec.rules[0].rewrite.host.hostname",
            "spec.rules[0].rateLimit.requestsPerSecond",
            "spec.rules[0].maxBodySize",
            "spec.rules[1].redirect.statusCode",
        ]
    );
}

#[test]
fn a_rule_cannot_both_redirect_and_have_backends_or_rewrites() {
    let compiled = compile_rules(vec![RouteRule {
        backends: vec![backend()],
        rewrite: Some(prefix_rewrite("/v2")),
        redirect: Some(api::Redirect::default()),
        ..RouteRule::default()
    }]);
    assert_eq!(
        fields(&compiled),
        ["spec.rules[0].redirect", "spec.rules[0].redirect"]
    );
}

#[test]
fn replace_prefix_match_needs_every_match_to_be_a_prefix() {
    let ok_default = compile_rules(vec![RouteRule {
        backends: vec![backend()],
        rewrite: Some(prefix_rewrite("/v2")),
        ..RouteRule::default()
    }]);
    assert!(ok_default.is_clean(), "no matches means Prefix /");
    let mixed = compile_rules(vec![RouteRule {
        matches: vec![
            matching(PathMatchType::Prefix, "/v1"),
            matching(PathMatchType::Exact, "/old"),
        ],
        backends: vec![backend()],
        rewrite: Some(prefix_rewrite("/v2")),
        ..RouteRule::default()
    }]);
    assert_eq!(
        fields(&mixed),
        ["spec.rules[0].rewrite.path.replacePrefixMatch"]
    );
}

#[test]
fn lookup_reports_the_prefix_each_match_matched() {
    let compiled = compile_rules(vec![RouteRule {
        matches: vec![
            matching(PathMatchType::Prefix, "/v1/"),
            matching(PathMatchType::Prefix, "/legacy/api"),
        ],
        backends: vec![backend()],
        rewrite: Some(prefix_rewrite("/v2")),
        ..RouteRule::default()
    }]);
    assert!(compiled.is_clean());
    for (path, want) in [("/v1/x", 3), ("/legacy/api/x", 11)] {
        let (len, rule) = compiled
            .table
            .lookup(Some("www.mango.com"), &Method::GET, path, &HeaderMap::new())
            .unwrap();
        assert_eq!(len, Some(want), "case {path}");
        let rewrite = rule.policy.path_rewrite.as_ref().unwrap();
        assert_eq!(rewrite.apply(path, want), "/v2/x", "case {path}");
    }
}

#[test]
fn rate_limit_keys_are_validated() {
    let limit = |i: usize, kind, header: Option<&str>| RouteRule {
        // Each rule its own match, so only the rate limits are wrong.
        matches: vec![matching(PathMatchType::Prefix, &format!("/{i}"))],
        backends: vec![backend()],
        rate_limit: Some(api::RateLimit {
            requests_per_second: 5,
            burst: Some(0),
            key: api::RateLimitKey {
                kind,
                header: header.map(Into::into),
            },
        }),
        ..RouteRule::default()
    };
    let compiled = compile_rules(vec![
        limit(0, api::RateLimitKeyType::Header, None),
        limit(1, api::RateLimitKeyType::Header, Some("bad name")),
        limit(2, api::RateLimitKeyType::Route, Some("x-api-key")),
    ]);
    assert_eq!(
        fields(&compiled),
        [
            "spec.rules[0].rateLimit.burst",
            "spec.rules[0].rateLimit.key.header",
            "spec.rules[1].rateLimit.burst",
            "spec.rules[1].rateLimit.key.header",
            "spec.rules[2].rateLimit.burst",
            "spec.rules[2].rateLimit.key.header",
        ]
    );
}

#[test]
fn rate_limit_buckets_survive_a_recompile_unless_the_limit_changes() {
    let rule = |rps| RouteRule {
        backends: vec![backend()],
        rate_limit: Some(api::RateLimit {
            requests_per_second: rps,
            burst: None,
            key: api::RateLimitKey::default(),
        }),
        ..RouteRule::default()
    };
    let limiter = |compiled: &Compiled| {
        let (_, rule) = compiled
            .table
            .lookup(Some("www.mango.com"), &Method::GET, "/", &HeaderMap::new())
            .unwrap();
        rule.policy.rate_limit.as_ref().unwrap().limiter().clone()
    };
    let first = compile_rules(vec![rule(5)]);
    let same = recompile_rules(vec![rule(5)], &first.table);
    assert!(
        Arc::ptr_eq(&limiter(&first), &limiter(&same)),
        "unchanged: kept"
    );
    let changed = recompile_rules(vec![rule(6)], &same.table);
    assert!(
        !Arc::ptr_eq(&limiter(&same), &limiter(&changed)),
        "changed: fresh"
    );
}

#[test]
fn every_policy_field_is_described_in_the_crd_schema() {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(api::LoadBalancerRoute::crd()).unwrap();
    let rule = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["rules"]["items"]["properties"];
    for field in [
        "requestHeaders",
        "responseHeaders",
        "queryParams",
        "rewrite",
        "redirect",
        "firewall",
        "rateLimit",
        "maxBodySize",
    ] {
        let description = rule[field]["description"].as_str().unwrap_or("");
        assert!(
            description.len() > 20,
            "{field} has no description in the CRD: {:#}",
            rule[field]
        );
    }
    let firewall = &rule["firewall"]["properties"];
    for field in ["allow", "deny", "denyPaths", "denyHeaders", "methods"] {
        assert!(
            firewall[field]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "firewall.{field} has no description: {:#}",
            firewall[field]
        );
    }
}

#[test]
fn a_firewall_method_typo_rejects_the_route_instead_of_denying_every_get() {
    let compiled = compile_rules(vec![RouteRule {
        backends: vec![backend()],
        firewall: Some(api::Firewall {
            methods: vec!["get".into()],
            ..api::Firewall::default()
        }),
        ..RouteRule::default()
    }]);
    assert_eq!(compiled.statuses[0].reason, Reason::Invalid);
    assert_eq!(fields(&compiled), ["spec.rules[0].firewall.methods[0]"]);
    assert_eq!(compiled.statuses[0].errors[0].code, "method-case");
}
