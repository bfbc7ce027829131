//! Certificates that are missing or wrong: each gets `TLSReady=False` with
//! its reason, `switchyard check` names file, resource and field, the name
//! fails the handshake instead of getting someone else's certificate, and
//! the other routes keep serving. Rotation under load; a broken edit keeps
//! the last good certificate.

mod support;

use rustls::AlertDescription;
use std::path::Path;
use std::process::{Command, Stdio};
use switchyard::snapshot::TlsSettings;

use support::*;

/// A proxy serving `good.example.test` (its own certificate) and
/// `*.example.test` (a wildcard), with a default certificate, plus the
/// route `bad` for `bad.example.test` whose `spec.tls` and Secret documents
/// the case supplies (plain HTTP not redirected, so it stays observable).
struct Bed {
    pki: Pki,
    good: Cert,
    proxy: Proxy,
    _backends: [Backend; 3],
}

/// One bad-certificate case: the `bad` route's `spec.tls` and the
/// documents that go with it.
struct Case {
    tls: String,
    docs: Vec<String>,
    host: &'static str,
}

impl Case {
    /// `bad` names the Secret `bad-cert`, held by `docs`.
    fn secret(docs: Vec<String>) -> Case {
        Case {
            tls: "{secretName: bad-cert, httpsRedirect: false}".to_owned(),
            docs,
            host: "bad.example.test",
        }
    }
}

fn routes(pki: &Pki, good: &Cert, backends: &[Backend; 3], case: &Case) -> String {
    let [good_be, wild_be, bad_be] = backends;
    let mut docs = vec![
        yaml(&[
            route("good")
                .host("good.example.test")
                .tls("good-cert")
                .rule(Rule::new().backend(good_be)),
            route("wild")
                .host("*.example.test")
                .tls("wild-cert")
                .rule(Rule::new().backend(wild_be)),
            route("bad")
                .host(case.host)
                .tls_spec(&case.tls)
                .rule(Rule::new().backend(bad_be)),
        ]),
        good.secret("default", "good-cert"),
        pki.leaf(&["*.example.test"]).secret("default", "wild-cert"),
        pki.leaf(&["fallback.example.test"])
            .secret("default", "fallback"),
    ];
    docs.extend(case.docs.iter().cloned());
    documents(&docs)
}

impl Bed {
    async fn start(pki: Pki, case: &Case) -> Bed {
        let good = pki.leaf(&["good.example.test"]);
        let backends = [
            Backend::echo("good").await,
            Backend::echo("wild").await,
            Backend::echo("bad").await,
        ];
        let text = routes(&pki, &good, &backends, case);
        let tls = TlsSettings {
            default_certificate: Some(("default".to_owned(), "fallback".to_owned())),
            ..TlsSettings::default()
        };
        let proxy = Proxy::start_tls(RoutesLayout::File(&text), tls).await;
        Bed {
            pki,
            good,
            proxy,
            _backends: backends,
        }
    }

    /// The good route still serves over HTTPS with its own certificate.
    async fn assert_good_route_serves(&self) {
        let client = TlsClient::h1(&self.pki, "good.example.test");
        let conn = client.must_connect(self.proxy.tls()).await;
        assert_eq!(conn.negotiated.serial, self.good.serial);
        let reply = conn.h1().await.get("good.example.test", "/").await;
        assert_eq!(reply.echo().backend, "good");
    }
}

/// Runs `case`: `TLSReady=False/reason` (message naming `needle`),
/// `Accepted` still true, plain HTTP still served, the good route
/// unaffected; `bad_handshake_fails`: HTTPS for the bad host fails with
/// unrecognized_name although the wildcard and the default would cover it.
async fn assert_bad_certificate(case: Case, reason: &str, needle: &str, bad_handshake_fails: bool) {
    let bed = Bed::start(Pki::new("cert test CA"), &case).await;

    let status = bed.proxy.route_status("default", "bad").await;
    let cond = tls_ready(&status).unwrap_or_else(|| panic!("no TLSReady in {status}"));
    assert!(!cond.status, "TLSReady should be False: {cond:?}");
    assert_eq!(cond.reason, reason, "{cond:?}");
    assert!(
        cond.message.contains(needle),
        "message should name {needle:?}: {cond:?}"
    );
    assert_eq!(
        status["reason"], "Accepted",
        "plain HTTP must stay accepted: {status}"
    );
    let plain = bed.proxy.get(case.host, "/").await;
    assert_eq!(plain.echo().backend, "bad");

    if bad_handshake_fails {
        let client = TlsClient::builder(&bed.pki, case.host)
            .accept_any_certificate()
            .build();
        assert_alert(
            client.connect(bed.proxy.tls()).await,
            AlertDescription::UnrecognisedName,
        );
    }
    bed.assert_good_route_serves().await;
    let good = tls_ready(&bed.proxy.route_status("default", "good").await);
    assert_eq!(
        good.map(|c| (c.status, c.reason)),
        Some((true, "CertificateReady".to_owned()))
    );
    if case.host != UNCOVERED {
        assert_check_reports(bed.proxy.routes_path(), "spec.tls.secretName", needle);
    }
}

/// `switchyard check` on the proxy's own file: non-zero, and one line
/// naming the file, `LoadBalancerRoute default/bad`, `field` and `needle`.
fn assert_check_reports(path: &Path, field: &str, needle: &str) {
    let (code, stderr) = run_check(path);
    assert!(code.is_some_and(|c| c != 0), "check should fail:\n{stderr}");
    let prefix = format!(
        "{}: LoadBalancerRoute default/bad: {field}: ",
        path.display()
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(needle)),
        "expected a line starting {prefix:?} naming {needle:?}:\n{stderr}"
    );
}

fn run_check(path: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run switchyard check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// === every bad case ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_secret_not_found() {
    let case = Case::secret(Vec::new());
    assert_bad_certificate(case, "SecretNotFound", "bad-cert", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_pem_is_invalid_certificate() {
    let key = Pki::new("x").leaf(&["bad.example.test"]).key_pem;
    let crt = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    let case = Case::secret(vec![tls_secret("default", "bad-cert", crt, &key)]);
    assert_bad_certificate(case, "InvalidCertificate", "bad-cert", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_without_a_certificate_is_invalid_certificate() {
    let key = Pki::new("x").leaf(&["bad.example.test"]).key_pem;
    let case = Case::secret(vec![tls_secret("default", "bad-cert", &key, &key)]);
    assert_bad_certificate(case, "InvalidCertificate", "bad-cert", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_is_invalid_certificate() {
    let pki = Pki::new("x");
    let cert = pki.leaf(&["bad.example.test"]);
    let mismatched = cert.with_key_of(&pki.leaf(&["bad.example.test"]));
    let case = Case::secret(vec![mismatched.secret("default", "bad-cert")]);
    assert_bad_certificate(case, "InvalidCertificate", "bad-cert", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_certificate_expired() {
    let expired = Pki::new("x").expired(&["bad.example.test"]);
    let case = Case::secret(vec![expired.secret("default", "bad-cert")]);
    assert_bad_certificate(case, "CertificateExpired", "bad-cert", true).await;
}

/// The host of [`uncovered`]: its certificate is for `bad.example.test`.
const UNCOVERED: &str = "uncovered.test";

fn uncovered() -> Case {
    let cert = Pki::new("x").leaf(&["bad.example.test"]);
    Case {
        host: UNCOVERED,
        ..Case::secret(vec![cert.secret("default", "bad-cert")])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_the_certificate_does_not_cover_is_host_not_covered() {
    assert_bad_certificate(uncovered(), "HostNotCovered", UNCOVERED, false).await;
}

#[test]
fn check_reports_a_host_the_certificate_does_not_cover() {
    let backends = refused_addr().to_string();
    let case = uncovered();
    let text = documents(&[
        yaml(&[route("bad")
            .host(case.host)
            .tls_spec(&case.tls)
            .rule(Rule::new().address(&backends, None))]),
        case.docs.concat(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, text).unwrap();
    assert_check_reports(&path, "spec.hosts", UNCOVERED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_another_namespace_is_ref_not_permitted() {
    let cert = Pki::new("x").leaf(&["bad.example.test"]);
    let case = Case {
        tls: "{secretName: other/bad-cert, httpsRedirect: false}".to_owned(),
        ..Case::secret(vec![cert.secret("other", "bad-cert")])
    };
    assert_bad_certificate(case, "RefNotPermitted", "other/bad-cert", true).await;
}
