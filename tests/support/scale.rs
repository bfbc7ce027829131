//! Scale runs: tables from the generator (`bench/gen.rs`, the
//! `switchyard-gen` binary) served by the real `switchyard` binary, and
//! what they cost: time to ready, memory, change-to-served.
//!
//! The size comes from `SWITCHYARD_SCALE_ROUTES` (CI runs a small table);
//! the binary measured from `SWITCHYARD_BIN` (a release build), else the
//! test build's own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use super::*;

/// How many routes: `SWITCHYARD_SCALE_ROUTES`, else `default`.
pub fn scale_routes(default: usize) -> usize {
    std::env::var("SWITCHYARD_SCALE_ROUTES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// How many edits to time: `SWITCHYARD_SCALE_EDITS`, else `default`.
pub fn scale_edits(default: usize) -> usize {
    std::env::var("SWITCHYARD_SCALE_EDITS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Writes a generated table (`mode` standalone or cluster) of `routes`
/// routes with endpoints on `port` into a new temporary directory.
pub fn generate(mode: &str, routes: usize, port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new(env!("CARGO_BIN_EXE_switchyard-gen"))
        .args(["--mode", mode, "--routes", &routes.to_string()])
        .args(["--port", &port.to_string(), "--out"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .expect("run switchyard-gen");
    assert!(status.success(), "switchyard-gen failed");
    dir
}

/// Every YAML file of `dir` (sorted) with its documents.
pub fn documents(dir: &Path) -> Vec<(PathBuf, Vec<Value>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read yaml");
            let docs = serde_yaml_ng::Deserializer::from_str(&text)
                .map(|doc| serde::Deserialize::deserialize(doc).expect("yaml document"))
                .filter(|doc: &Value| !doc.is_null())
                .collect();
            (path, docs)
        })
        .collect()
}

/// Writes `docs` to `path` as a whole new file (written beside it, then
/// renamed over it, as an editor's atomic save does).
pub fn write_documents(path: &Path, docs: &[Value]) {
    let mut text = String::new();
    for doc in docs {
        text.push_str("---\n");
        text.push_str(&serde_yaml_ng::to_string(doc).expect("yaml"));
    }
    let tmp = path.with_file_name(".edit.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A name the route's first host answers to (`*.x` becomes `a.x`).
pub fn served_host(route: &Value) -> String {
    let host = route["spec"]["hosts"][0].as_str().expect("a host");
    host.replacen('*', "a", 1)
}

/// Adds a rule matching exactly `path` with `backend` as its one backend.
pub fn add_rule(route: &mut Value, path: &str, backend: Value) {
    let rule = serde_json::json!({
        "matches": [{"path": {"type": "Exact", "value": path}}],
        "backends": [backend],
    });
    route["spec"]["rules"]
        .as_array_mut()
        .expect("rules")
        .push(rule);
}

/// A process of the `switchyard` binary being measured, killed on drop.
pub struct Measured {
    /// The process (stderr to a file in the table's directory's parent).
    pub child: Child,
    /// Its proxy.
    pub listen: SocketAddr,
    /// Its admin listener.
    pub admin: SocketAddr,
}

impl Measured {
    /// Starts `switchyard ARGS --listen … --admin …` with `env`, logging to
    /// `log`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Measured {
        let bin = std::env::var("SWITCHYARD_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchyard").to_owned());
        let (listen, admin) = (free_addr(), free_addr());
        let child = Command::new(bin)
            .args(args)
            .args(["--listen", &listen.to_string()])
            .args(["--admin", &admin.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn switchyard");
        Measured {
            child,
            listen,
            admin,
        }
    }

    /// Waits (up to `limit`) for `/readyz`; returns how long it took.
    pub async fn ready(&self, limit: Duration) -> Duration {
        let started = tokio::time::Instant::now();
        let admin = self.admin;
        wait_until("switchyard to be ready", limit, || async move {
            matches!(
                get(admin, "localhost", "/readyz").await,
                Some(StatusCode::OK)
            )
        })
        .await;
        started.elapsed()
    }

    /// `VmRSS` and `VmHWM` of the process, in MiB.
    pub fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).expect(name);
            let kib: f64 = line[name.len() + 1..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .expect("kB");
            kib / 1024.0
        };
        (field("VmRSS"), field("VmHWM"))
    }

    /// User plus system CPU time the process has used.
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("read /proc/PID/stat");
        // Fields after the command's closing parenthesis; utime and stime
        // are the 14th and 15th of the whole line.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<u64> = rest
            .split(' ')
            .skip(11)
            .take(2)
            .map(|f| f.parse().expect("ticks"))
            .collect();
        Duration::from_millis((fields[0] + fields[1]) * 10)
    }

    /// The names of the routes `/routes` says are accepted.
    pub async fn accepted_routes(&self) -> Vec<String> {
        let client = http1_client();
        let req = http::Request::get(format!("http://{}/routes", self.admin))
            .body(empty())
            .unwrap();
        let response = client.request(req).await.expect("/routes");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        let view: Value = serde_json::from_slice(&body).expect("/routes json");
        view["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .filter(|r| r["status"]["reason"] == "Accepted")
            .map(|r| {
                format!(
                    "{}/{}",
                    r["namespace"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                )
            })
            .collect()
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET http://addr/path` with `Host: host` on a new
/// connection, or `None` if there was no answer.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Option<StatusCode> {
    let req = http::Request::get(format!("http://{addr}{path}"))
        .header(http::header::HOST, host)
        .body(empty())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), http1_client().request(req));
    match response.await {
        Ok(Ok(response)) => Some(response.status()),
        _ => None,
    }
}

/// Times from now until `GET host path` answers `want` (polled every
/// 10 ms, at most `limit`).
pub async fn time_until_served(
    addr: SocketAddr,
    host: &str,
    path: &str,
    want: StatusCode,
    limit: Duration,
) -> Duration {
    let started = tokio::time::Instant::now();
    wait_until(
        &format!("{host}{path} to answer {want}"),
        limit,
        || async move { get(addr, host, path).await == Some(want) },
    )
    .await;
    started.elapsed()
}

/// The median, the 99th percentile and the largest of `times`, in ms.
pub fn percentiles(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99), at(1.0))
}

/// A loopback address that was free a moment ago.
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address")
}
