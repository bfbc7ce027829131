//! `Proxy`: `switchyard::standalone::run` in-process on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use switchyard::policy::client::TrustedProxies;
use switchyard::proxy::ServeOptions;
use switchyard::snapshot::TlsSettings;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;

/// The proxy under test, running `switchyard::standalone::run` in-process.
pub struct Proxy {
    /// Proxy listener address.
    pub addr: SocketAddr,
    /// Admin listener address.
    pub admin: SocketAddr,
    /// TLS listener address, when started with [`Proxy::start_tls`].
    pub tls_addr: Option<SocketAddr>,
    /// Holds the routes file(s); removed on drop.
    dir: tempfile::TempDir,
    /// The PATH given to `run`: `routes.yaml` or the directory itself.
    routes: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    /// Fires when `run` has polled the shutdown future to completion, i.e.
    /// it has observed the shutdown signal.
    observed: Option<oneshot::Receiver<()>>,
    task: Option<JoinHandle<Result<(), switchyard::standalone::Error>>>,
    client: Client<HttpConnector, TestBody>,
}

/// Where the routes live for a [`Proxy`].
pub enum RoutesLayout<'a> {
    /// One `routes.yaml` holding this text.
    File(&'a str),
    /// A directory holding these (file name, contents) pairs.
    Dir(&'a [(&'a str, &'a str)]),
    /// Whatever the function builds in the temp dir; it returns the PATH.
    Prepared(&'a dyn Fn(&Path) -> PathBuf),
}

impl Proxy {
    /// Starts the proxy on `yaml` (written to `routes.yaml`) with a 5s drain
    /// and waits until `/readyz` is 200.
    pub async fn start(yaml: &str) -> Proxy {
        Proxy::start_with(RoutesLayout::File(yaml), Duration::from_secs(5)).await
    }

    /// Starts the proxy on a directory of route files.
    pub async fn start_dir(files: &[(&str, &str)]) -> Proxy {
        Proxy::start_with(RoutesLayout::Dir(files), Duration::from_secs(5)).await
    }

    /// Starts the proxy with an explicit routes layout and drain timeout.
    pub async fn start_with(layout: RoutesLayout<'_>, drain_timeout: Duration) -> Proxy {
        Proxy::start_full(layout, drain_timeout, &[]).await
    }

    /// Starts the proxy on `yaml` trusting these proxies' `X-Forwarded-For`
    /// (`--trusted-proxies`), e.g. `&["127.0.0.1/32"]`.
    pub async fn start_trusting(yaml: &str, trusted_proxies: &[&str]) -> Proxy {
        Proxy::start_full(
            RoutesLayout::File(yaml),
            Duration::from_secs(5),
            trusted_proxies,
        )
        .await
    }

    /// Starts the proxy with a drain timeout and trusted proxies.
    pub async fn start_full(
        layout: RoutesLayout<'_>,
        drain_timeout: Duration,
        trusted_proxies: &[&str],
    ) -> Proxy {
        let trusted_proxies = trusted_proxies
            .iter()
            .map(|c| switchyard::api::values::parse_cidr(c).expect("trusted proxy CIDR"));
        let serve = ServeOptions {
            drain_timeout,
            trusted_proxies: TrustedProxies::new(trusted_proxies),
            ..ServeOptions::default()
        };
        Proxy::start_serving(layout, serve).await
    }

    /// Starts the proxy with every serving option explicit (limits,
    /// timeouts, drain).
    pub async fn start_serving(layout: RoutesLayout<'_>, serve: ServeOptions) -> Proxy {
        Proxy::start_inner(layout, serve, None).await
    }

    /// Starts the proxy with a TLS listener on `127.0.0.1:0` as well
    /// (`tls_addr`), with these TLS settings (`listener` is set to true).
    pub async fn start_tls(layout: RoutesLayout<'_>, tls: TlsSettings) -> Proxy {
        let serve = ServeOptions {
            drain_timeout: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        Proxy::start_inner(layout, serve, Some(tls)).await
    }

    /// Like [`Proxy::start_tls`], with these serve options (e.g. metrics).
    pub async fn start_tls_serving(
        layout: RoutesLayout<'_>,
        serve: ServeOptions,
        tls: TlsSettings,
    ) -> Proxy {
        Proxy::start_inner(layout, serve, Some(tls)).await
    }

    async fn start_inner(
        layout: RoutesLayout<'_>,
        serve: ServeOptions,
        tls: Option<TlsSettings>,
    ) -> Proxy {
        init_tracing();
        let dir = tempfile::tempdir().expect("tempdir");
        let routes = match layout {
            RoutesLayout::File(yaml) => {
                let path = dir.path().join("routes.yaml");
                std::fs::write(&path, yaml).expect("write routes.yaml");
                path
            }
            RoutesLayout::Dir(files) => {
                for (name, text) in files {
                    std::fs::write(dir.path().join(name), text).expect("write route file");
                }
                dir.path().to_path_buf()
            }
            RoutesLayout::Prepared(prepare) => prepare(dir.path()),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = listener.local_addr().unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let tls_listener = match &tls {
            Some(_) => Some(TcpListener::bind("127.0.0.1:0").await.expect("bind TLS")),
            None => None,
        };
        let tls_addr = tls_listener.as_ref().map(|l| l.local_addr().unwrap());

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (observed_tx, observed_rx) = oneshot::channel::<()>();
        let signal = async move {
            let _ = shutdown_rx.await;
            let _ = observed_tx.send(());
        };
        let opts = switchyard::standalone::Options {
            routes: routes.clone(),
            reload_interval: RELOAD_INTERVAL,
            serve,
            tls: tls
                .map(|tls| TlsSettings {
                    listener: true,
                    ..tls
                })
                .unwrap_or_default(),
        };
        let listeners = switchyard::listeners::Listeners {
            proxy: listener,
            tls: tls_listener,
            admin: admin_listener,
        };
        let task = tokio::spawn(switchyard::standalone::run(opts, listeners, signal));

        let mut proxy = Proxy {
            addr,
            admin,
            tls_addr,
            dir,
            routes,
            shutdown: Some(shutdown_tx),
            observed: Some(observed_rx),
            task: Some(task),
            client: http1_client(),
        };
        proxy.wait_ready().await;
        proxy
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(task) = &self.task {
                if task.is_finished() {
                    let res = self.task.take().unwrap().await;
                    panic!("standalone::run returned before /readyz was 200: {res:?}");
                }
            }
            let ready = tokio::time::timeout(Duration::from_secs(1), self.admin_get("/readyz"))
                .await
                .ok()
                .and_then(|r| r.ok())
                .map(|r| r.status == StatusCode::OK)
                .unwrap_or(false);
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!("proxy not ready (/readyz != 200) within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The TLS listener's address; panics if the proxy has none.
    pub fn tls(&self) -> SocketAddr {
        self.tls_addr.expect("proxy started without a TLS listener")
    }

    /// The PATH the proxy was started with (file or directory).
    pub fn routes_path(&self) -> &Path {
        &self.routes
    }

    /// The temp directory holding the route file(s).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces `routes.yaml` (file layout) atomically: write a sibling temp
    /// file, then rename over, so the poller never reads half a file.
    pub fn write_routes(&self, yaml: &str) {
        let target = if self.routes.is_dir() {
            self.routes.join("routes.yaml")
        } else {
            self.routes.clone()
        };
        write_atomically(&target, yaml);
    }

    /// Replaces one file of a directory layout atomically.
    pub fn write_file(&self, name: &str, text: &str) {
        write_atomically(&self.dir.path().join(name), text);
    }

    /// `http://{proxy addr}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `http://{admin addr}{path}`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// GET on the admin listener.
    pub async fn admin_get(&self, path: &str) -> Result<Reply, BoxError> {
        let req = Request::get(self.admin_url(path)).body(empty())?;
        let resp = self.client.request(req).await?;
        Ok(Reply::collect(resp).await)
    }

    /// The `status` `/routes` shows for the route `namespace/name`.
    pub async fn route_status(&self, namespace: &str, name: &str) -> serde_json::Value {
        let routes = self.admin_get("/routes").await.expect("GET /routes");
        let routes: serde_json::Value = serde_json::from_slice(&routes.body).expect("JSON");
        let found = routes["routes"].as_array().and_then(|all| {
            all.iter()
                .find(|r| r["namespace"] == namespace && r["name"] == name)
        });
        match found {
            Some(route) => route["status"].clone(),
            None => panic!("/routes lists no {namespace}/{name}: {routes}"),
        }
    }

    /// GET `path` through the proxy with `Host: host` on the shared pooled
    /// HTTP/1.1 client.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        let req = Request::get(self.url(path))
            .header(http::header::HOST, host)
            .body(empty())
            .expect("request");
        self.send(req).await
    }

    /// Sends `req` (URI should come from [`Proxy::url`]) on the shared client
    /// and collects the response.
    pub async fn send(&self, req: Request<TestBody>) -> Reply {
        let what = format!("{} {} through the proxy", req.method(), req.uri());
        let resp = within(&what, self.client.request(req))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        within(&what, Reply::collect(resp)).await
    }

    /// Sends `req` on the shared client, returning the streaming response.
    pub async fn send_streaming(&self, req: Request<TestBody>) -> Response<Incoming> {
        let what = format!("{} {} through the proxy", req.method(), req.uri());
        within(&what, self.client.request(req))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
    }

    /// The shared pooled HTTP/1.1 client.
    pub fn client(&self) -> Client<HttpConnector, TestBody> {
        self.client.clone()
    }

    /// Sends the shutdown signal and waits until `run` has observed it
    /// (polled its shutdown future to completion). In-flight requests are
    /// then draining.
    pub async fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(observed) = self.observed.take() {
            within("run() to observe the shutdown signal", observed)
                .await
                .expect("run() dropped its shutdown future without polling it to completion");
        }
    }

    /// Waits for `run` to return (after [`Proxy::begin_shutdown`]) and gives
    /// its result.
    pub async fn wait_stopped(&mut self) -> Result<(), switchyard::standalone::Error> {
        let task = self.task.take().expect("proxy already stopped");
        within("standalone::run to return", task)
            .await
            .expect("standalone::run panicked")
    }

    /// Signals shutdown and returns `run`'s result.
    pub async fn shutdown(mut self) -> Result<(), switchyard::standalone::Error> {
        self.begin_shutdown().await;
        self.wait_stopped().await
    }

    /// True once `run` has returned.
    pub fn is_stopped(&self) -> bool {
        self.task.as_ref().map(|t| t.is_finished()).unwrap_or(true)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn write_atomically(target: &Path, text: &str) {
    let tmp = target.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).expect("write temp routes file");
    std::fs::rename(&tmp, target).expect("rename routes file into place");
}
