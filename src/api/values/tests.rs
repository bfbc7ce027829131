//! Value parser tests: one table per parser, each case named.

use std::time::Duration;

use super::*;

#[test]
fn durations_parse_units_and_sums() {
    for (text, want) in [
        ("250ms", Ok(Duration::from_millis(250))),
        ("30s", Ok(Duration::from_secs(30))),
        ("1m30s", Ok(Duration::from_secs(90))),
        ("1h", Ok(Duration::from_secs(3600))),
        ("0s", Err("zero-duration")),
        ("soon", Err("invalid-duration")),
        ("", Err("invalid-duration")),
        ("5", Err("invalid-duration")),
        ("8760h", Ok(MAX_DURATION)),
        ("8759h60m", Ok(MAX_DURATION)),
        ("8760h1ms", Err("duration-too-long")),
        ("31536000001ms", Err("duration-too-long")),
        ("18446744073709551615s", Err("duration-too-long")),
        ("18446744073709551615h", Err("duration-too-long")),
        ("99999999999999999999999s", Err("duration-too-long")),
        (
            "18446744073709551615s18446744073709551615s",
            Err("duration-too-long"),
        ),
    ] {
        assert_eq!(
            parse_duration(text).map_err(|e| e.code()),
            want,
            "case {text:?}"
        );
    }
}

#[test]
fn a_too_long_duration_says_the_limit() {
    let err = parse_duration("18446744073709551615s").unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"18446744073709551615s\" is too long: a duration is at most 8760h (one year)"
    );
}

#[test]
fn one_method_parser_refuses_lower_case_standard_methods() {
    assert_eq!(parse_method("GET"), Ok(Method::GET));
    assert_eq!(
        parse_method("PURGE").map(|m| m.to_string()),
        Ok("PURGE".into())
    );
    let typo = parse_method("get").unwrap_err();
    assert_eq!(typo.code(), "method-case");
    assert_eq!(
        typo.to_string(),
        "methods are case-sensitive: \"get\" never matches; use \"GET\""
    );
    assert_eq!(parse_method("G T").unwrap_err().code(), "invalid-method");
}

#[test]
fn split_host_port_keeps_brackets_and_takes_the_last_colon() {
    for (text, want) in [
        ("www.x.com", ("www.x.com", None)),
        ("www.x.com:8080", ("www.x.com", Some("8080"))),
        ("[::1]:80", ("[::1]", Some("80"))),
        ("[::1]", ("[::1]", None)),
        ("[::1", ("[::1", None)),
        ("host:", ("host", Some(""))),
    ] {
        assert_eq!(split_host_port(text), want, "case {text:?}");
    }
}

#[test]
fn quantities_parse_binary_and_decimal_suffixes() {
    assert_eq!(parse_quantity(&IntOrString::String("1Ki".into())), Ok(1024));
    assert_eq!(
        parse_quantity(&IntOrString::String("5M".into())),
        Ok(5_000_000)
    );
    assert_eq!(
        parse_quantity(&IntOrString::Int(-1)).map_err(|e| e.code()),
        Err("negative-size")
    );
    assert_eq!(
        parse_quantity(&IntOrString::String("1.5Mi".into())).map_err(|e| e.code()),
        Err("invalid-size")
    );
}

#[test]
fn anchored_regex_errors_speak_of_the_pattern_as_written() {
    let err = parse_anchored_regex("/(unclosed").unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"/(unclosed\" is not a valid regular expression: unclosed group"
    );
    assert!(parse_anchored_regex("/v[0-9]+").unwrap().is_match("/v12"));
    assert!(!parse_anchored_regex("/v[0-9]+").unwrap().is_match("/v12/x"));
}

#[test]
fn quantities_parse_bytes_and_suffixed_sizes_only() {
    for (text, want) in [
        ("0", Ok(0)),
        ("1024", Ok(1024)),
        ("64Ki", Ok(65_536)),
        ("10Mi", Ok(10 * 1024 * 1024)),
        ("1Gi", Ok(1 << 30)),
        ("10k", Ok(10_000)),
        ("5M", Ok(5_000_000)),
        ("2G", Ok(2_000_000_000)),
        ("1.5Mi", Err(())),
        ("1e6", Err(())),
        ("10 Mi", Err(())),
        ("10MB", Err(())),
        ("Mi", Err(())),
        ("-1", Err(())),
        ("99999999999Ti", Err(())),
    ] {
        let got = parse_quantity(&IntOrString::String(text.into())).map_err(|_| ());
        assert_eq!(got, want, "case {text:?}");
    }
    assert_eq!(parse_quantity(&IntOrString::Int(4096)), Ok(4096));
    assert!(parse_quantity(&IntOrString::Int(-1)).is_err());
}
