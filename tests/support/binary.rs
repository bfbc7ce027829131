//! `Binary`: the real `switchyard run` process, for what only the binary
//! shows (its flags, its signals, its exit status).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use http::StatusCode;

use super::*;

/// A `switchyard run` process, killed when dropped.
pub struct Binary {
    /// The process; its stderr is piped.
    pub child: std::process::Child,
    /// Where its proxy listens.
    pub listen: SocketAddr,
    /// Where its admin API listens.
    pub admin: SocketAddr,
}

impl Binary {
    /// Spawns `switchyard run --routes ROUTES` with `flags` on two ports
    /// that were free a moment ago (the binary needs fixed addresses), and
    /// returns at once.
    pub fn spawn(routes: &Path, flags: &[&str]) -> Binary {
        let (listen, admin) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["run", "--routes"])
            .arg(routes)
            .args(["--listen", &listen.to_string()])
            .args(["--admin", &admin.to_string()])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchyard run");
        Binary {
            child,
            listen,
            admin,
        }
    }

    /// Like [`Binary::spawn`], then waits until `/readyz` is 200.
    pub async fn ready(routes: &Path, flags: &[&str]) -> Binary {
        let binary = Binary::spawn(routes, flags);
        let client = http1_client();
        let admin = binary.admin;
        wait_until("switchyard run to be ready", DEADLINE, || {
            let client = client.clone();
            async move {
                let req = http::Request::get(format!("http://{admin}/readyz"))
                    .body(empty())
                    .unwrap();
                matches!(client.request(req).await, Ok(r) if r.status() == StatusCode::OK)
            }
        })
        .await;
        binary
    }

    /// Waits until the process exits (bounded by the harness `DEADLINE`).
    pub async fn exit(&mut self, what: &str) -> ExitStatus {
        let mut status = None;
        wait_until(what, DEADLINE, || {
            status = self.child.try_wait().expect("try_wait");
            std::future::ready(status.is_some())
        })
        .await;
        status.unwrap()
    }

    /// Everything the process wrote to stderr (read once it has exited).
    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        text
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address")
}
