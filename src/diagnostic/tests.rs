//! Diagnostic tests: field paths print as users write them, and every
//! `Invalid` case has its own stable code.

use std::collections::HashSet;
use std::time::Duration;

use super::*;
use crate::api::values::{
    AddressError, CidrError, CookieNameError, DurationError, HeaderNameError, HeaderValueError,
    HostError, MethodError, PathError, QuantityError, RegexError,
};
use crate::api::Algorithm;

#[test]
fn field_paths_print_exactly_as_users_write_them() {
    let spec = FieldPath::from("spec");
    let address = spec
        .key("rules")
        .index(0)
        .key("backends")
        .index(1)
        .key("address");
    assert_eq!(address.to_string(), "spec.rules[0].backends[1].address");
    assert_eq!(address, "spec.rules[0].backends[1].address");
    let header = spec
        .key("rules")
        .index(2)
        .key("requestHeaders")
        .key("set")
        .key("X-A");
    assert_eq!(header.as_str(), "spec.rules[2].requestHeaders.set.X-A");
    assert_eq!(
        FieldPath::default().key("metadata").key("name"),
        "metadata.name"
    );
    assert_eq!(
        serde_json::to_string(&FieldPath::from("spec.hosts[0]")).unwrap(),
        "\"spec.hosts[0]\""
    );
}

#[test]
fn compile_errors_carry_the_code_and_print_field_then_message() {
    let e = CompileError::new(
        "spec.rules[0].timeouts.request".into(),
        DurationError::Malformed("soon".into()),
    );
    assert_eq!(e.code, "invalid-duration");
    assert_eq!(
        e.to_string(),
        "spec.rules[0].timeouts.request: \"soon\" is not a duration (for example 500ms, 30s, 1m30s)"
    );
}

#[test]
fn problems_accumulate_in_order() {
    let mut problems = Problems::default();
    assert_eq!(problems.check(|| "a".into(), Ok::<_, Invalid>(1)), Some(1));
    assert_eq!(
        problems.check(|| "b".into(), Err::<(), _>(Invalid::NoRules)),
        None
    );
    problems.push("c".into(), Invalid::ZeroPort);
    let fields: Vec<&str> = problems.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["b", "c"]);
}

/// One of every case, with its code: codes are a contract (status readers,
/// the keep-last-good gate), so a change here must be deliberate.
fn every_case() -> Vec<(Invalid, &'static str)> {
    let s = || "x".to_owned();
    let d = Duration::from_secs(1);
    vec![
        (DurationError::Malformed(s()).into(), "invalid-duration"),
        (DurationError::Zero(s()).into(), "zero-duration"),
        (QuantityError::Negative(-1).into(), "negative-size"),
        (QuantityError::Malformed(s()).into(), "invalid-size"),
        (CidrError(s()).into(), "invalid-cidr"),
        (
            MethodError::Case {
                method: s(),
                upper: s(),
            }
            .into(),
            "method-case",
        ),
        (MethodError::Invalid(s()).into(), "invalid-method"),
        (HeaderNameError(s()).into(), "invalid-header-name"),
        (HeaderValueError(s()).into(), "invalid-header-value"),
        (CookieNameError(s()).into(), "invalid-cookie-name"),
        (AddressError(s()).into(), "invalid-address"),
        (HostError::Length.into(), "invalid-host"),
        (PathError::NotAbsolute(s()).into(), "relative-path"),
        (PathError::NotAPath(s()).into(), "invalid-path"),
        (PathError::NeedsEncoding(s()).into(), "path-needs-encoding"),
        (
            RegexError {
                pattern: s(),
                what: s(),
            }
            .into(),
            "invalid-regex",
        ),
        (Invalid::TlsNeedsHttps("H2C"), "tls-needs-https"),
        (
            Invalid::TlsAppProtocolNotHttps(s()),
            "tls-app-protocol-not-https",
        ),
        (Invalid::InsecureWithCa, "insecure-with-ca"),
        (Invalid::BackendHostname(s()), "invalid-backend-hostname"),
        (Invalid::HostnameMissing, "backend-hostname-missing"),
        (Invalid::UnsupportedProtocol(s()), "unsupported-protocol"),
        (
            Invalid::CaCertificate {
                code: "backend-ca-not-found",
                message: s(),
            },
            "backend-ca-not-found",
        ),
        (
            Invalid::DefinedTwice {
                resource: s(),
                first: s(),
            },
            "defined-twice",
        ),
        (
            Invalid::Conflicted {
                host: s(),
                owner: s(),
            },
            "conflicted",
        ),
        (Invalid::NoRules, "no-rules"),
        (Invalid::DuplicateMatch { first: s() }, "duplicate-match"),
        (
            Invalid::Weight {
                weight: 2000,
                max: 1000,
            },
            "weight-out-of-range",
        ),
        (Invalid::ServiceAndAddress, "service-and-address"),
        (
            Invalid::NoBackendRef {
                service: true,
                address: false,
            },
            "no-backend-ref",
        ),
        (Invalid::ServiceNeedsCluster(s()), "service-needs-cluster"),
        (Invalid::StaticNotAllowed, "static-not-allowed"),
        (Invalid::EmptyServiceName, "empty-service-name"),
        (Invalid::PortMissing, "port-missing"),
        (Invalid::EmptyPortName, "empty-port-name"),
        (Invalid::PortNumber(0), "invalid-port"),
        (Invalid::HashOnMissing, "hash-on-missing"),
        (
            Invalid::HashOnUnused(Algorithm::RoundRobin),
            "hash-on-unused",
        ),
        (Invalid::NameNeeded, "name-needed"),
        (Invalid::NameUnused, "name-unused"),
        (Invalid::HashQueryName(s()), "invalid-hash-query-name"),
        (Invalid::RedirectWithBackends, "redirect-with-backends"),
        (Invalid::RedirectWithRewrite, "redirect-with-rewrite"),
        (Invalid::AtLeastOne, "at-least-one"),
        (
            Invalid::Needs {
                kind: "Hostname",
                field: "hostname",
            },
            "field-needed",
        ),
        (Invalid::HeaderUnused, "header-unused"),
        (Invalid::HostHeader, "host-header"),
        (Invalid::ManagedHeader(s()), "managed-header"),
        (Invalid::QueryName(s()), "invalid-query-name"),
        (Invalid::RedirectStatus(200), "invalid-redirect-status"),
        (Invalid::Scheme(s()), "invalid-scheme"),
        (Invalid::RedirectHostname(s()), "invalid-redirect-hostname"),
        (Invalid::RewriteHostname(s()), "invalid-rewrite-hostname"),
        (Invalid::ZeroPort, "zero-port"),
        (
            Invalid::PrefixRewriteNeedsPrefix,
            "prefix-rewrite-needs-prefix-match",
        ),
        (
            Invalid::TooManyRetries {
                attempts: 9,
                max: 5,
            },
            "too-many-retries",
        ),
        (Invalid::RetryStatus(100), "invalid-retry-status"),
        (Invalid::Percent(101), "invalid-percent"),
        (Invalid::EjectedPercent(101), "invalid-ejected-percent"),
        (Invalid::ProbePathRelative(s()), "relative-probe-path"),
        (Invalid::ProbePath(s()), "invalid-probe-path"),
        (
            Invalid::TimeoutOverInterval {
                timeout: d,
                interval: d,
            },
            "timeout-over-interval",
        ),
        (Invalid::Status(0), "invalid-status"),
        (Invalid::StatusRange { min: 300, max: 200 }, "status-range"),
        (Invalid::EjectionRange { base: d, max: d }, "ejection-range"),
    ]
}

#[test]
fn every_invalid_case_has_its_documented_code() {
    for (case, code) in every_case() {
        assert_eq!(case.code(), code, "case {case:?}");
    }
}

#[test]
fn invalid_codes_are_distinct_and_kebab_case() {
    let mut seen = HashSet::new();
    for (case, _) in every_case() {
        let code = case.code();
        assert!(seen.insert(code), "code {code} is used twice");
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "code {code} is not kebab-case"
        );
    }
}

#[test]
fn messages_keep_the_wording_users_already_see() {
    for (case, text) in [
        (
            Invalid::HashOnMissing,
            "ConsistentHash needs hashOn: {type: Header|Cookie|QueryParameter|ClientIP, name: ...}",
        ),
        (
            Invalid::HashOnUnused(Algorithm::RoundRobin),
            "hashOn is only used by ConsistentHash, not RoundRobin",
        ),
        (
            Invalid::NoBackendRef {
                service: true,
                address: true,
            },
            "a backend needs a `service` and a `port`, or an `address: host:port`",
        ),
        (
            Invalid::Needs {
                kind: "RegularExpression",
                field: "substitution",
            },
            "type RegularExpression needs `substitution`",
        ),
    ] {
        assert_eq!(case.to_string(), text);
    }
}
