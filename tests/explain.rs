//! `switchyard explain`: offline from route files (`--routes`), live from a
//! running proxy's admin listener (`--live`, `GET /explain`), and `check`
//! warning of rules no request can reach.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// Two rules on one host: a canary on a header, the rest; and a rule a
/// broader one shadows.
fn routes(canary: &str, stable: &str) -> String {
    format!(
        r#"apiVersion: switchyard.dev/v1alpha1
kind: LoadBalancerRoute
metadata: {{name: mango, namespace: shop}}
spec:
  hosts: [www.mango.com]
  rules:
  - matches: [{{path: {{type: Prefix, value: /api}}, headers: [{{name: x-canary, value: "1"}}]}}]
    backends: [{{address: "{canary}"}}]
  - matches: [{{path: {{type: Prefix, value: /}}}}]
    backends: [{{address: "{stable}"}}]
    rewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}}
    firewall: {{deny: [192.0.2.0/24]}}
  - matches: [{{path: {{type: RegularExpression, value: "/api/.*"}}}}]
    backends: [{{address: "{stable}"}}]
"#
    )
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn switchyard(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run switchyard");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn routes_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn explain_json(routes: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["explain", "--routes", routes.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let run = switchyard(&args);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON")
}

#[test]
fn explain_from_files_names_the_winner_and_each_verdict() {
    let (_dir, path) = routes_file(&routes("127.0.0.1:9001", "127.0.0.1:9002"));
    let e = explain_json(&path, &["http://www.mango.com/api/x"]);
    assert_eq!(e["host"], "www.mango.com");
    assert_eq!(e["winner"], 1, "{e:#}");
    let canary = &e["candidates"][0];
    assert_eq!(canary["field"], "spec.rules[0].matches[0]");
    assert_eq!(canary["verdicts"]["path"], true);
    assert_eq!(canary["verdicts"]["headers"], false);
    assert_eq!(e["candidates"][2]["shadowed_by"], 1);
    assert_eq!(e["policies"]["upstream"]["path_and_query"], "/v2/api/x");
    assert_eq!(e["policies"]["firewall"]["allowed"], true);
    assert_eq!(e["backends"]["endpoints"][0]["address"], "127.0.0.1:9002");
    assert_eq!(e["outcome"], "forward");

    let canary = explain_json(
        &path,
        &[
            "http://www.mango.com/api/x",
            "-H",
            "x-canary: 1",
            "-X",
            "POST",
        ],
    );
    assert_eq!(canary["winner"], 0);
    assert_eq!(canary["request"]["method"], "POST");
    let denied = explain_json(&path, &["http://www.mango.com/", "--client", "192.0.2.7"]);
    assert_eq!(denied["outcome"], "forbidden");
    assert_eq!(denied["policies"]["firewall"]["reason"], "denied_address");
}

#[test]
fn explain_text_reads_as_the_decision() {
    let (_dir, path) = routes_file(&routes("127.0.0.1:9001", "127.0.0.1:9002"));
    let run = switchyard(&[
        "explain",
        "--routes",
        path.to_str().unwrap(),
        "http://www.mango.com/api/x",
    ]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    for line in [
        "host: www.mango.com",
        "winner: #1 shop/mango spec.rules[1].matches[0]",
        "never chosen: #1 takes every request it matches",
        "upstream request: /v2/api/x",
        "outcome: forwarded to a backend",
    ] {
        assert!(run.stdout.contains(line), "no {line:?} in:\n{}", run.stdout);
    }
}

#[test]
fn explain_refuses_what_is_not_a_request() {
    let (_dir, path) = routes_file(&routes("127.0.0.1:9001", "127.0.0.1:9002"));
    let path = path.to_str().unwrap();
    for (args, says) in [
        (vec!["www.mango.com/x"], "is not an http:// or https:// URL"),
        (vec!["http://a/", "-H", "no-colon"], "is not a header"),
        (
            vec!["http://a/", "--client", "nope"],
            "is not an IP address",
        ),
    ] {
        let mut all = vec!["explain", "--routes", path];
        all.extend(args);
        let run = switchyard(&all);
        assert_eq!(run.code, Some(1), "{all:?}");
        assert!(run.stderr.contains(says), "{all:?}: {}", run.stderr);
    }
    let neither = switchyard(&["explain", "http://a/"]);
    assert_eq!(neither.code, Some(2), "clap wants --routes or --live");
}

#[test]
fn check_warns_of_rules_that_never_match_and_passes() {
    let (_dir, path) = routes_file(&routes("127.0.0.1:9001", "127.0.0.1:9002"));
    let run = switchyard(&["check", path.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(run.stdout.contains(": ok"), "{}", run.stdout);
    let warning = format!(
        "warning: {}: LoadBalancerRoute shop/mango: these rules never match: spec.rules[2] \
         (www.mango.com: spec.rules[2].matches[0] is taken first by shop/mango \
         spec.rules[1].matches[0])",
        path.display()
    );
    assert_eq!(run.stderr.trim_end(), warning);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_table_explains_what_the_proxy_does() {
    let canary = Backend::echo("canary").await;
    let stable = Backend::echo("stable").await;
    let proxy = Proxy::start(&routes(&canary.address(), &stable.address())).await;
    let query = "/explain?url=http%3A%2F%2Fwww.mango.com%2Fapi%2Fx&header=x-canary%3A%201";
    let reply = proxy.admin_get(query).await.expect("GET /explain");
    assert_eq!(reply.status, 200);
    let e: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(e["winner"], 0, "{e:#}");
    assert_eq!(e["backends"]["endpoints"][0]["state"], "ready");

    // The proxy sends that request where explain said.
    let mut req = http::Request::get(proxy.url("/api/x"))
        .body(empty())
        .unwrap();
    req.headers_mut()
        .insert("host", "www.mango.com".parse().unwrap());
    req.headers_mut().insert("x-canary", "1".parse().unwrap());
    let sent = proxy.send(req).await;
    assert_eq!(sent.headers["x-backend"], "canary");
    assert_eq!(canary.requests(), 1);

    let bad = proxy.admin_get("/explain?method=GET").await.unwrap();
    assert_eq!(bad.status, 400);

    // The CLI asks the same endpoint.
    let admin = proxy.admin.to_string();
    let run = tokio::task::spawn_blocking(move || {
        switchyard(&["explain", "--live", &admin, "http://www.mango.com/other"])
    })
    .await
    .unwrap();
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(
        run.stdout
            .contains("winner: #1 shop/mango spec.rules[1].matches[0]"),
        "{}",
        run.stdout
    );
    assert_eq!(canary.requests(), 1, "explaining sent nothing");
    assert_eq!(stable.requests(), 0, "explaining sent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_a_route_with_a_shadowed_rule_says_so_in_its_status() {
    use support::cluster::{has_condition, Cluster, Controller};
    use support::kube_api::{route as route_obj, service};
    let cluster = Cluster::start("shadowed").await;
    cluster
        .apply(service(cluster.ns(), "mango", &[("http", 80, 8080)]))
        .await;
    let _controller = Controller::start(&cluster, "a", |_| {}).await;
    let backend = serde_json::json!([{"service": "mango", "port": 80}]);
    let spec = serde_json::json!({
        "hosts": ["www.mango.com"],
        "rules": [
            {"matches": [{"path": {"type": "Prefix", "value": "/"}}], "backends": backend},
            {"matches": [{"path": {"type": "RegularExpression", "value": "/api/.*"}}], "backends": backend},
        ],
    });
    cluster.apply(route_obj(cluster.ns(), "mango", spec)).await;
    let status = cluster
        .wait_condition("mango", "RulesReachable", "False", "RuleShadowed")
        .await;
    assert!(
        has_condition(&status, "Accepted", "True", "Accepted"),
        "still served: {status}"
    );
    assert!(
        status.to_string().contains("spec.rules[1]"),
        "names the rule: {status}"
    );
}
