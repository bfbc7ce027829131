//! The `switchyard` binary: `check PATH` reports every error as
//! `{file}: LoadBalancerRoute {ns}/{name}: {field path}: {message}`, and
//! `run` serves and exits 0 on SIGTERM/SIGINT.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

struct Checked {
    /// The PATH given to `check`.
    root: PathBuf,
    code: Option<i32>,
    stderr: String,
}

impl Checked {
    fn lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Lines naming `file` and the route `ns/name` in the contract's prefix.
    fn lines_for(&self, file: &Path, ns: &str, name: &str) -> Vec<&str> {
        let prefix = format!("{}: LoadBalancerRoute {ns}/{name}: ", file.display());
        self.stderr
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .collect()
    }

    fn assert_exit_non_zero(&self) {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "check should exit non-zero, got {:?}; stderr:\n{}",
            self.code,
            self.stderr
        );
    }

    /// Non-zero exit with something on stderr.
    fn assert_failed(&self) {
        self.assert_exit_non_zero();
        assert!(!self.lines().is_empty(), "check failed without saying why");
    }

    /// Every error is one line naming its file: each line starts with a
    /// path under the checked PATH, except that a closing summary line is
    /// allowed after the errors.
    fn assert_one_error_per_line(&self) {
        let root = self.root.display().to_string();
        let lines = self.lines();
        for (i, line) in lines.iter().enumerate() {
            let names_file = line.starts_with(&root) && line.contains(": ");
            let summary = i > 0 && i + 1 == lines.len();
            assert!(
                names_file || summary,
                "each error must be on one line that starts with its file; line {} is not: {line:?}\nstderr:\n{}",
                i + 1,
                self.stderr
            );
        }
    }
}

fn check(path: &Path) -> Checked {
    let Output { status, stderr, .. } = Command::new(BIN)
        .arg("check")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run switchyard check");
    Checked {
        root: path.to_path_buf(),
        code: status.code(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Writes `text` as `name` in a fresh temp dir; returns (dir guard, path).
fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const HEAD: &str = "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n";

/// A complete route document with `rule` as its only rule (YAML lines
/// indented for `rules:`).
fn doc(name: &str, host: &str, rule: &str) -> String {
    format!("{HEAD}metadata: {{name: {name}}}\nspec:\n  hosts: [\"{host}\"]\n  rules:\n{rule}")
}

const GOOD_RULE: &str = "  - matches: [{path: {type: Prefix, value: /mango}}]\n    backends: [{address: \"127.0.0.1:8081\", weight: 2}, {address: \"127.0.0.1:8082\"}]\n    loadBalancing: {algorithm: RoundRobin}\n    timeouts: {request: 2s}\n";
const BAD_REGEX_RULE: &str = "  - matches: [{path: {type: RegularExpression, value: \"/(unclosed\"}}]\n    backends: [{address: \"127.0.0.1:8081\"}]\n";
const BAD_ADDRESS_RULE: &str = "  - backends: [{address: \"nohost\"}]\n";

#[test]
fn valid_file_exits_zero() {
    let text = [
        doc("mango", "www.mango.com", GOOD_RULE),
        doc("apple", "www.apple.com", "  - backends: [{address: \"127.0.0.1:9000\"}]\n"),
        format!(
            "{HEAD}metadata: {{name: any, namespace: shop}}\nspec:\n  rules:\n  - matches:\n    - path: {{type: Exact, value: /x}}\n      headers: [{{name: x-canary, value: \"1\"}}, {{name: x-ua, type: RegularExpression, value: \".*Mobile.*\"}}]\n      methods: [GET, POST]\n    backends: []\n"
        ),
    ]
    .join("---\n");
    let (_dir, path) = file("routes.yaml", &text);

    let out = check(&path);
    assert_eq!(out.code, Some(0), "valid file rejected:\n{}", out.stderr);
}

#[test]
fn malformed_yaml_names_the_file_and_the_line() {
    // Line 3 is broken: "mapping values are not allowed here".
    let text = format!("{HEAD}metadata: name: mango\nspec:\n  rules: []\n");
    let (_dir, path) = file("broken.yaml", &text);

    let out = check(&path);
    out.assert_failed();
    let line = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("{}: ", path.display())))
        .unwrap_or_else(|| panic!("no error line names {}:\n{}", path.display(), out.stderr));
    assert!(
        line.contains("YAML"),
        "syntax error should say YAML: {line}"
    );
    assert!(
        line.contains("line 3"),
        "syntax error should give line 3: {line}"
    );
}

#[test]
fn unknown_algorithm_names_the_algorithm_field() {
    let rule =
        "  - backends: [{address: \"127.0.0.1:8081\"}]\n    loadBalancing: {algorithm: Fastest}\n";
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", rule));

    let out = check(&path);
    out.assert_failed();
    let lines = out.lines_for(&path, "default", "mango");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": spec.rules[0].loadBalancing.algorithm: ")),
        "expected spec.rules[0].loadBalancing.algorithm in:\n{}",
        out.stderr
    );
}

#[test]
fn bad_regex_names_the_path_value_field() {
    let (_dir, path) = file(
        "routes.yaml",
        &doc("mango", "www.mango.com", BAD_REGEX_RULE),
    );

    let out = check(&path);
    out.assert_failed();
    let lines = out.lines_for(&path, "default", "mango");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": spec.rules[0].matches[0].path.value: ")
                && l.contains("regular expression")),
        "expected spec.rules[0].matches[0].path.value: invalid regular expression in:\n{}",
        out.stderr
    );
}

#[test]
fn bad_address_names_the_backend_address_field() {
    let (_dir, path) = file(
        "routes.yaml",
        &doc("mango", "www.mango.com", BAD_ADDRESS_RULE),
    );

    let out = check(&path);
    out.assert_failed();
    let lines = out.lines_for(&path, "default", "mango");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": spec.rules[0].backends[0].address: ")),
        "expected spec.rules[0].backends[0].address in:\n{}",
        out.stderr
    );
}

#[test]
fn bad_backend_tls_names_the_file_the_route_and_the_ca_field() {
    let rule = "  - backends:\n    - address: \"127.0.0.1:8443\"\n      protocol: HTTPS\n      tls: {caCertificateRefs: [{kind: ConfigMap, name: api-ca}]}\n";
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", rule));

    let out = check(&path);
    out.assert_failed();
    let lines = out.lines_for(&path, "default", "mango");
    assert!(
        lines.iter().any(|l| l.contains(
            ": spec.rules[0].backends[0].tls.caCertificateRefs[0]: ConfigMap default/api-ca not found"
        )),
        "expected the CA reference's field in:\n{}",
        out.stderr
    );
}

#[test]
fn second_rule_and_backend_indices_are_named() {
    let rules = format!(
        "{GOOD_RULE}  - backends: [{{address: \"127.0.0.1:1\"}}, {{address: \"bad:port\"}}]\n"
    );
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", &rules));

    let out = check(&path);
    out.assert_failed();
    assert!(
        out.lines_for(&path, "default", "mango")
            .iter()
            .any(|l| l.contains(": spec.rules[1].backends[1].address: ")),
        "expected spec.rules[1].backends[1].address in:\n{}",
        out.stderr
    );
}

#[test]
fn namespace_is_named_and_defaults_to_default() {
    let text = [
        format!(
            "{HEAD}metadata: {{name: mango, namespace: shop}}\nspec:\n  rules:\n{BAD_ADDRESS_RULE}"
        ),
        format!("{HEAD}metadata: {{name: apple}}\nspec:\n  rules:\n{BAD_ADDRESS_RULE}"),
    ]
    .join("---\n");
    let (_dir, path) = file("routes.yaml", &text);

    let out = check(&path);
    out.assert_failed();
    assert_eq!(
        out.lines_for(&path, "shop", "mango").len(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        out.lines_for(&path, "default", "apple").len(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn duplicate_host_and_match_names_the_younger_route() {
    let text = [
        doc("mango-older", "www.mango.com", GOOD_RULE),
        doc("mango-younger", "www.mango.com", GOOD_RULE),
    ]
    .join("---\n");
    let (_dir, path) = file("routes.yaml", &text);

    let out = check(&path);
    out.assert_failed();
    assert!(
        !out.lines_for(&path, "default", "mango-younger").is_empty(),
        "the younger route should be reported:\n{}",
        out.stderr
    );
    assert!(
        out.lines_for(&path, "default", "mango-older").is_empty(),
        "the older route keeps the host and must not be reported:\n{}",
        out.stderr
    );
}

#[test]
fn service_backend_is_an_error_in_standalone_mode() {
    let rule = "  - backends: [{service: mango, port: 80}]\n";
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", rule));

    let out = check(&path);
    out.assert_failed();
    let lines = out.lines_for(&path, "default", "mango");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("spec.rules[0].backends[0]") && l.contains("address")),
        "expected an error at spec.rules[0].backends[0] saying standalone needs an address:\n{}",
        out.stderr
    );
}

#[test]
fn unknown_field_in_spec_is_an_error() {
    let rule = "  - backends: [{address: \"127.0.0.1:8081\"}]\n    timeoutz: {request: 2s}\n";
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", rule));

    let out = check(&path);
    out.assert_failed();
    assert!(
        out.lines_for(&path, "default", "mango")
            .iter()
            .any(|l| l.contains("timeoutz")),
        "expected the unknown field timeoutz to be named:\n{}",
        out.stderr
    );
}

#[test]
fn every_error_in_one_file_is_reported_not_just_the_first() {
    let text = [
        doc("first", "www.first.com", BAD_REGEX_RULE),
        doc("fine", "www.fine.com", GOOD_RULE),
        doc("second", "www.second.com", BAD_ADDRESS_RULE),
        doc(
            "third",
            "www.third.com",
            "  - backends: [{address: \"127.0.0.1:8081\"}]\n    loadBalancing: {algorithm: Fastest}\n",
        ),
    ]
    .join("---\n");
    let (_dir, path) = file("routes.yaml", &text);

    let out = check(&path);
    out.assert_failed();
    for name in ["first", "second", "third"] {
        assert_eq!(
            out.lines_for(&path, "default", name).len(),
            1,
            "expected exactly one error for {name}:\n{}",
            out.stderr
        );
    }
    assert!(
        out.lines_for(&path, "default", "fine").is_empty(),
        "{}",
        out.stderr
    );
}

#[test]
fn every_invalid_field_of_one_route_is_reported() {
    let rules = format!("{BAD_REGEX_RULE}{BAD_ADDRESS_RULE}");
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", &rules));

    let out = check(&path);
    out.assert_failed();
    let lines = out.lines_for(&path, "default", "mango");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": spec.rules[0].matches[0].path.value: ")),
        "{}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": spec.rules[1].backends[0].address: ")),
        "{}",
        out.stderr
    );
}

#[test]
fn directory_lists_every_error_and_not_the_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&good, doc("mango", "www.mango.com", GOOD_RULE)).unwrap();
    std::fs::write(
        &bad,
        [
            doc("apple", "www.apple.com", BAD_REGEX_RULE),
            doc("kiwi", "www.kiwi.com", BAD_ADDRESS_RULE),
        ]
        .join("---\n"),
    )
    .unwrap();

    let out = check(dir.path());
    out.assert_failed();
    assert_eq!(
        out.lines_for(&bad, "default", "apple").len(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        out.lines_for(&bad, "default", "kiwi").len(),
        1,
        "{}",
        out.stderr
    );
    let good_name = good.display().to_string();
    assert!(
        out.lines().iter().all(|l| !l.contains(&good_name)),
        "the good file must not be reported:\n{}",
        out.stderr
    );
}

#[test]
fn a_bad_secret_document_names_the_file_the_secret_and_the_data_field() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: mango-tls, namespace: shop}\n\
                  type: kubernetes.io/tls\ndata: {tls.crt: \"not base64!\", tls.key: a2V5}\n";
    let text = [doc("mango", "www.mango.com", GOOD_RULE), secret.to_owned()].join("---\n");
    let (_dir, path) = file("routes.yaml", &text);

    let out = check(&path);
    out.assert_failed();
    out.assert_one_error_per_line();
    let prefix = format!(
        "{}: Secret shop/mango-tls: data.tls.crt: not base64",
        path.display()
    );
    assert!(
        out.lines().iter().any(|l| l.starts_with(&prefix)),
        "no line starts with {prefix:?}:\n{}",
        out.stderr
    );
}

#[test]
fn missing_path_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&dir.path().join("nope.yaml"));
    out.assert_exit_non_zero();
    assert!(
        !out.stderr.trim().is_empty(),
        "a missing path should be reported"
    );
}

#[test]
fn each_error_is_one_line_starting_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &routes,
        [
            doc("regex", "www.regex.com", BAD_REGEX_RULE),
            doc("address", "www.address.com", BAD_ADDRESS_RULE),
            doc(
                "algorithm",
                "www.algorithm.com",
                "  - backends: [{address: \"127.0.0.1:8081\"}]\n    loadBalancing: {algorithm: Fastest}\n",
            ),
            doc("service", "www.service.com", "  - backends: [{service: mango, port: 80}]\n"),
        ]
        .join("---\n"),
    )
    .unwrap();
    std::fs::write(&broken, format!("{HEAD}metadata: name: mango\n")).unwrap();

    let out = check(dir.path());
    out.assert_failed();
    out.assert_one_error_per_line();
    for name in ["regex", "address", "algorithm", "service"] {
        assert_eq!(
            out.lines_for(&routes, "default", name).len(),
            1,
            "{name}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn unknown_path_type_names_the_path_type_field() {
    let rule = "  - matches: [{path: {type: Suffix, value: /mango}}]\n    backends: [{address: \"127.0.0.1:8081\"}]\n";
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", rule));

    let out = check(&path);
    out.assert_failed();
    assert!(
        out.lines_for(&path, "default", "mango")
            .iter()
            .any(|l| l.contains(": spec.rules[0].matches[0].path.type: ")),
        "expected spec.rules[0].matches[0].path.type in:\n{}",
        out.stderr
    );
}

#[test]
fn bad_request_timeout_names_the_timeout_field() {
    let rule = "  - backends: [{address: \"127.0.0.1:8081\"}]\n    timeouts: {request: soon}\n";
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", rule));

    let out = check(&path);
    out.assert_failed();
    assert!(
        out.lines_for(&path, "default", "mango")
            .iter()
            .any(|l| l.contains(": spec.rules[0].timeouts.request: ")),
        "expected spec.rules[0].timeouts.request in:\n{}",
        out.stderr
    );
}

#[test]
fn a_duration_too_long_for_the_clock_names_the_file_resource_and_field() {
    let huge = "18446744073709551615s";
    let rule = format!(
        "  - backends: [{{address: \"127.0.0.1:8081\"}}]\n    timeouts: {{total: {huge}}}\n    healthCheck: {{interval: {huge}, timeout: 1s}}\n"
    );
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.mango.com", &rule));

    let out = check(&path);
    out.assert_failed();
    let lines = out.lines_for(&path, "default", "mango");
    for field in ["timeouts.total", "healthCheck.interval"] {
        assert!(
            lines.iter().any(
                |l| l.contains(&format!(": spec.rules[0].{field}: ")) && l.contains("too long")
            ),
            "expected spec.rules[0].{field} refused as too long in:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_file_nested_too_deep_is_refused_naming_the_file_and_document() {
    // Without the pre-scan, `check` spends minutes parsing this.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let deep = dir.path().join("deep.yaml");
    std::fs::write(&good, doc("mango", "www.mango.com", GOOD_RULE)).unwrap();
    std::fs::write(
        &deep,
        format!(
            "{}---\n{}",
            doc("apple", "www.apple.com", GOOD_RULE),
            "{a: [".repeat(100_000)
        ),
    )
    .unwrap();

    let out = check(dir.path());
    out.assert_failed();
    out.assert_one_error_per_line();
    let prefix = format!(
        "{}: document 2: nested deeper than 64 levels at line ",
        deep.display()
    );
    assert!(
        out.lines().iter().any(|l| l.starts_with(&prefix)),
        "expected {prefix:?} in:\n{}",
        out.stderr
    );
    let good_name = good.display().to_string();
    assert!(
        out.lines().iter().all(|l| !l.contains(&good_name)),
        "the good file must not be reported:\n{}",
        out.stderr
    );
}

#[test]
fn wildcard_not_in_the_leading_label_names_the_hosts_field() {
    let (_dir, path) = file("routes.yaml", &doc("mango", "www.*.com", GOOD_RULE));

    let out = check(&path);
    out.assert_failed();
    assert!(
        out.lines_for(&path, "default", "mango")
            .iter()
            .any(|l| l.contains(": spec.hosts[0]: ")),
        "expected spec.hosts[0] in:\n{}",
        out.stderr
    );
}

#[test]
fn directory_ignores_files_that_are_not_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mango.yaml"),
        doc("mango", "www.mango.com", GOOD_RULE),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("apple.yml"),
        doc("apple", "www.apple.com", GOOD_RULE),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "# not: a: route [").unwrap();
    std::fs::write(dir.path().join("mango.yaml.bak"), "garbage: [").unwrap();

    let out = check(dir.path());
    assert_eq!(
        out.code,
        Some(0),
        "non-YAML files must be ignored:\n{}",
        out.stderr
    );
}

#[test]
fn conflict_across_directory_files_names_the_route_in_the_later_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("10-first.yaml");
    let second = dir.path().join("20-second.yaml");
    std::fs::write(&second, doc("mango-b", "www.mango.com", GOOD_RULE)).unwrap();
    std::fs::write(&first, doc("mango-a", "www.mango.com", GOOD_RULE)).unwrap();

    let out = check(dir.path());
    out.assert_failed();
    assert!(
        !out.lines_for(&second, "default", "mango-b").is_empty(),
        "the route in the later file is the younger:\n{}",
        out.stderr
    );
    assert!(
        out.lines_for(&first, "default", "mango-a").is_empty(),
        "{}",
        out.stderr
    );
}

#[test]
fn document_separators_and_comments_are_fine() {
    let text = format!(
        "# shop routes\n---\n{}---\n# apple\n{}---\n",
        doc("mango", "www.mango.com", GOOD_RULE),
        doc("apple", "www.apple.com", GOOD_RULE)
    );
    let (_dir, path) = file("routes.yaml", &text);

    let out = check(&path);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

// === `switchyard run` ===

async fn run_binary_and_signal(signal: &str) {
    let echo = Backend::echo("mango-1").await;
    let (_dir, path) = file(
        "routes.yaml",
        &yaml(&[route("mango")
            .host("www.mango.com")
            .rule(Rule::new().backend(&echo))]),
    );
    let mut binary = Binary::ready(&path, &[]).await;
    let client = http1_client();
    let req = http::Request::get(format!("http://{}/through-binary", binary.listen))
        .header("host", "www.mango.com")
        .body(empty())
        .unwrap();
    let reply = Reply::collect(
        within("request through the binary", client.request(req))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.echo().backend, "mango-1");
    assert_eq!(reply.echo().uri, "/through-binary");
    drop(client);

    let pid = binary.child.id().to_string();
    let killed = Command::new("kill")
        .arg(signal)
        .arg(&pid)
        .status()
        .expect("run kill");
    assert!(killed.success());

    let status = binary.exit("switchyard run to exit after the signal").await;
    let logs = binary.stderr();
    assert!(
        status.success(),
        "switchyard run exited with {status} after {signal}; its stderr:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_binary_serves_and_exits_zero_on_sigterm() {
    run_binary_and_signal("-TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_binary_serves_and_exits_zero_on_sigint() {
    run_binary_and_signal("-INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_binary_fails_on_missing_routes_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut binary = Binary::spawn(&dir.path().join("nope.yaml"), &[]);
    let status = binary.exit("run with a missing PATH to exit").await;
    assert!(!status.success(), "run with a missing PATH must fail");
    let stderr = binary.stderr();
    assert!(
        stderr.contains("nope.yaml"),
        "the error should name the path:\n{stderr}"
    );
}

#[test]
fn the_examples_that_are_not_templates_are_valid_routes() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["balancing.yaml", "policy.yaml", "grpc.yaml"] {
        let checked = check(&examples.join(name));
        assert_eq!(checked.code, Some(0), "{name}: {}", checked.stderr);
    }
}
