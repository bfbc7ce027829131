//! The `switchyard` command line. Wiring only: parse flags, set up logging,
//! hand over to the library, turn signals into a shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use ipnet::IpNet;
use observe_args::ObserveArgs;
use switchyard::access_log::Destination;
use switchyard::api::values::parse_cidr;
use switchyard::api::values::{parse_duration, parse_quantity};
use switchyard::controller;
use switchyard::explain::{self, input::ExplainArgs, ExplainRequest};
use switchyard::listeners::Listeners;
use switchyard::policy::client::TrustedProxies;
use switchyard::proxy::ServeOptions;
use switchyard::source::kube::{LeaseOptions, Pacing};
use switchyard::standalone::{self, Options};
use tls_args::TlsArgs;

#[path = "main/tls_args.rs"]
mod tls_args;

#[path = "main/observe_args.rs"]
mod observe_args;

/// A Kubernetes ingress controller and HTTP load balancer.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The serving flags both `run` and `controller` take.
#[derive(Args)]
struct ServeArgs {
    /// How long in-flight requests may take to finish on shutdown.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Peers whose X-Forwarded-For is believed (CIDR[,CIDR...]): the
    /// client address used by firewalls and rate limits is then the
    /// right-most X-Forwarded-For entry that is not itself trusted.
    /// Default: none (the client is the socket peer).
    #[arg(long, value_delimiter = ',', value_parser = parse_cidr)]
    trusted_proxies: Vec<IpNet>,
    /// Time allowed to connect to a backend, for rules without
    /// `timeouts.connect`; past it the connect failed (retried on
    /// another endpoint, else 504).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Longest pause between two reads of a client's request body; past
    /// it the client gets 408 and the backend's request is aborted.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    client_body_timeout: Duration,
    /// Most client connections open at once; past it, new clients wait in
    /// the listen backlog until a connection closes.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Most connections open at once from one client IP (0: no cap);
    /// past it a new connection is closed at once. Trusted proxies are
    /// exempt.
    #[arg(long, default_value_t = 0)]
    max_connections_per_ip: u32,
    /// Longest request head (request line and headers; HTTP/2: the header
    /// list) a client may send: bytes or a quantity (32Ki), at least 8Ki.
    /// Past it the answer is 431.
    #[arg(long, default_value = "32Ki", value_parser = parse_head_limit)]
    max_request_header_bytes: usize,
    /// Time a client has from connecting to sending a complete request
    /// head (and on HTTP/1.1 for every later one, so also the keep-alive
    /// idle time); past it the connection is closed.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    client_header_timeout: Duration,
    /// Forward request headers whose names contain '_' (by default they
    /// are dropped, as nginx does: CGI-style backends read X_Real_IP and
    /// X-Real-IP as one variable).
    #[arg(long)]
    underscores_in_headers: bool,
    /// Longest request target (path and query) a client may send: bytes or
    /// a quantity (8Ki). Past it the answer is 414.
    #[arg(long, default_value = "8Ki", value_parser = parse_uri_limit)]
    max_uri_bytes: usize,
    /// How long a client connection may go without a new request once it
    /// has had one; then it is shut down gracefully (HTTP/2: GOAWAY),
    /// requests in flight finishing first.
    #[arg(long, default_value = "75s", value_parser = parse_positive_duration)]
    idle_timeout: Duration,
    #[command(flatten)]
    observe: ObserveArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

impl ServeArgs {
    /// The proxy's serving options these flags set; the access log goes
    /// to `default_log` unless `--access-log` says otherwise.
    fn options(&self, default_log: Destination) -> anyhow::Result<ServeOptions> {
        let (metrics, access_log) = self.observe.open(default_log)?;
        Ok(ServeOptions {
            drain_timeout: self.drain_timeout,
            trusted_proxies: TrustedProxies::new(self.trusted_proxies.iter().copied()),
            connect_timeout: self.connect_timeout,
            client_body_timeout: self.client_body_timeout,
            max_connections: self.max_connections as usize,
            max_connections_per_ip: self.max_connections_per_ip as usize,
            max_request_header_bytes: self.max_request_header_bytes,
            client_header_timeout: self.client_header_timeout,
            underscores_in_headers: self.underscores_in_headers,
            max_uri_bytes: self.max_uri_bytes,
            idle_timeout: self.idle_timeout,
            metrics,
            access_log,
            ..ServeOptions::default()
        })
    }
}

/// `--max-request-header-bytes`: a size of at least 8 KiB (hyper's
/// smallest HTTP/1.1 read buffer).
fn parse_head_limit(text: &str) -> Result<usize, String> {
    parse_size_from(text, 8 * 1024, "8Ki")
}

/// `--status-qps`: a positive, finite number.
fn parse_qps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(qps) if qps.is_finite() && qps > 0.0 => Ok(qps),
        _ => Err(format!(
            "{text:?} is not a positive number of writes per second"
        )),
    }
}

/// `--max-uri-bytes`: a size of at least 1 KiB.
fn parse_uri_limit(text: &str) -> Result<usize, String> {
    parse_size_from(text, 1024, "1Ki")
}

/// A size in bytes or a quantity (`32Ki`), at least `min` (`min_text`).
fn parse_size_from(text: &str, min: usize, min_text: &str) -> Result<usize, String> {
    let quantity = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(text.into());
    let bytes = parse_quantity(&quantity).map_err(|err| err.to_string())?;
    match usize::try_from(bytes) {
        Ok(bytes) if bytes >= min => Ok(bytes),
        _ => Err(format!("{text:?} is not a size from {min_text} up")),
    }
}

/// A duration longer than zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be longer than zero".into()),
        Err(err) => Err(err.to_string()),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run standalone from LoadBalancerRoute YAML files, reloaded when they
    /// change. Without --routes, runs the built-in demo (demo backends and
    /// examples/demo.yaml).
    Run {
        /// A YAML file or a directory of them (multi-document).
        #[arg(long)]
        routes: Option<PathBuf>,
        /// Where the proxy listens.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Where /healthz, /readyz and /routes are served.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// How often the routes are checked for changes.
        #[arg(long, default_value = "250ms", value_parser = parse_duration)]
        reload_interval: Duration,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Validate route files: exits non-zero listing every error, each
    /// naming the file, the resource and the field.
    Check {
        /// A YAML file or a directory of them.
        path: PathBuf,
    },
    /// Explain which rule a request would take, and why: the candidates in
    /// precedence order with each predicate's verdict, the winner, what it
    /// shadows, conflicts, the policies that would apply and the backends.
    /// Nothing is sent and nothing stateful runs.
    Explain(ExplainCmd),
    /// Print the LoadBalancerRoute CustomResourceDefinition (what crds/
    /// holds): `switchyard crd | kubectl apply -f -`.
    Crd,
    /// Run in a cluster (or against any kubeconfig): watch LoadBalancerRoute,
    /// Service and EndpointSlice and serve them.
    Controller {
        /// Where the proxy listens.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Where /healthz, /readyz and /routes are served.
        #[arg(long, default_value = "0.0.0.0:9901")]
        admin: SocketAddr,
        /// Namespaces to watch (NS[,NS...]); default: all.
        #[arg(long, value_delimiter = ',')]
        namespaces: Vec<String>,
        /// Let routes use static `address` backends. Routing a namespace's
        /// traffic to arbitrary addresses is a privilege: off by default.
        #[arg(long)]
        allow_static_backends: bool,
        /// The Lease whose holder writes route status.
        #[arg(long, default_value = "switchyard")]
        lease_name: String,
        /// The Lease's namespace (the controller's own).
        #[arg(long, env = "POD_NAMESPACE", default_value = "switchyard-system")]
        lease_namespace: String,
        /// This replica's identity in the Lease (its pod name).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Route status writes per second, on average (client-side rate
        /// limit, as client-go's QPS).
        #[arg(long, default_value_t = Pacing::default().qps, value_parser = parse_qps)]
        status_qps: f64,
        /// Route status writes that may go at once after a quiet spell
        /// (client-go's burst).
        #[arg(long, default_value_t = Pacing::default().burst, value_parser = clap::value_parser!(u32).range(1..))]
        status_burst: u32,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// A tiny demo backend answering `This is the NAME application.` on
    /// every path (the kind e2e's mango and apple).
    DemoBackend {
        /// Where it listens.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// The application's name.
        #[arg(long)]
        name: String,
    },
}

/// `switchyard explain` flags.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("table").required(true).args(["routes", "live"]))]
struct ExplainCmd {
    /// The request's URL: http://host[:port]/path?query (or https://).
    url: String,
    /// Explain against these route files (a file or a directory),
    /// compiled as `check` compiles them.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Explain against the table a running proxy serves, through its
    /// admin listener (host:port).
    #[arg(long)]
    live: Option<String>,
    /// The method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// A request header, `name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The client address firewalls and rate limits judge.
    #[arg(long)]
    client: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Check { path } => check(&path),
        Command::Explain(cmd) => explain(cmd),
        Command::Crd => match switchyard::api::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("switchyard: cannot render the CRD: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            routes,
            listen,
            admin,
            reload_interval,
            serve,
        } => {
            // Standalone: no access log unless asked for.
            let serve_options = match serve.options(Destination::Off) {
                Ok(options) => options,
                Err(err) => return fail(&err),
            };
            let options = Options {
                routes: routes.clone().unwrap_or_default(),
                reload_interval,
                serve: serve_options,
                tls: serve.tls.settings(),
            };
            let addrs = (listen, serve.tls.tls_listen, admin);
            block_on(run(options, routes.is_none(), addrs))
        }
        Command::Controller {
            listen,
            admin,
            namespaces,
            allow_static_backends,
            lease_name,
            lease_namespace,
            identity,
            status_qps,
            status_burst,
            serve,
        } => {
            // In a cluster, like ingress-nginx: access log on stdout.
            let serve_options = match serve.options(Destination::Stdout) {
                Ok(options) => options,
                Err(err) => return fail(&err),
            };
            let identity = identity
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| format!("switchyard-{}", std::process::id()));
            let options = controller::Options {
                source: switchyard::source::kube::Options {
                    namespaces,
                    allow_static_backends,
                    lease: LeaseOptions {
                        name: lease_name,
                        namespace: lease_namespace,
                        identity,
                        duration: Duration::from_secs(15),
                        renew_every: Duration::from_secs(5),
                    },
                    tls: serve.tls.settings(),
                    status_pacing: Pacing {
                        qps: status_qps,
                        burst: status_burst,
                    },
                },
                serve: serve_options,
            };
            block_on(run_controller(
                options,
                (listen, serve.tls.tls_listen, admin),
            ))
        }
        Command::DemoBackend { listen, name } => block_on(async move {
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            switchyard::demo::serve_backend(listener, &name, signal()).await;
            Ok(())
        }),
    }
}

/// Reports `err` and fails.
fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("switchyard: {err:#}");
    ExitCode::FAILURE
}

/// Runs `main` on a multi-threaded runtime; errors become exit status 1.
fn block_on(main: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchyard: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchyard: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_controller(options: controller::Options, addrs: Addrs) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API (in-cluster config or kubeconfig)")?;
    let listeners = bind(addrs).await?;
    controller::run(client, options, listeners, signal()).await?;
    Ok(())
}

fn check(path: &std::path::Path) -> ExitCode {
    match switchyard::publish::check(path) {
        Ok(checked) if checked.problems.is_empty() => {
            for warning in &checked.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Ok(checked) => {
            for warning in &checked.warnings {
                eprintln!("warning: {warning}");
            }
            let problems = checked.problems;
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!("{} problem(s) found", problems.len());
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn explain(cmd: ExplainCmd) -> ExitCode {
    let args = ExplainArgs {
        url: cmd.url,
        method: Some(cmd.method),
        headers: cmd.headers,
        client: cmd.client,
    };
    let output = match (&cmd.live, &cmd.routes) {
        (Some(admin), _) => {
            let admin = admin.clone();
            block_on_value(async move { Ok(explain::live::fetch(&admin, &args, cmd.json).await?) })
        }
        (None, Some(routes)) => explain_files(routes, &args, cmd.json),
        (None, None) => Err(anyhow::anyhow!("give --routes PATH or --live ADMIN_ADDR")),
    };
    match output {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("switchyard: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `explain --routes`: the files compiled as `check` compiles them.
fn explain_files(
    routes: &std::path::Path,
    args: &ExplainArgs,
    json: bool,
) -> anyhow::Result<String> {
    let request = ExplainRequest::new(args)?;
    let (_, compiled) = switchyard::publish::compile_files(routes)
        .with_context(|| format!("cannot read {}", routes.display()))?;
    // Offline no endpoint is ejected; the clock only has to be read.
    let now = tokio::time::Instant::now();
    let explanation = explain::explain(&compiled.table, &request, now);
    if json {
        Ok(serde_json::to_string_pretty(&explanation)? + "\n")
    } else {
        Ok(explain::render::text(&explanation))
    }
}

/// Runs `main` on a small runtime and returns its value.
fn block_on_value<T>(
    main: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(main)
}

async fn run(options: Options, demo: bool, addrs: Addrs) -> anyhow::Result<()> {
    let listeners = bind(addrs).await?;
    if demo {
        switchyard::demo::run(options, listeners, signal()).await?;
    } else {
        standalone::run(options, listeners, signal()).await?;
    }
    Ok(())
}

/// `--listen`, `--tls-listen` and `--admin`.
type Addrs = (SocketAddr, Option<SocketAddr>, SocketAddr);

/// Binds the listeners every serving command needs.
async fn bind((listen, tls, admin): Addrs) -> anyhow::Result<Listeners> {
    let proxy = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let tls = match tls {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for HTTPS on {addr}"))?,
        ),
        None => None,
    };
    let admin = TcpListener::bind(admin)
        .await
        .with_context(|| format!("cannot serve admin on {admin}"))?;
    Ok(Listeners { proxy, tls, admin })
}

/// Resolves on SIGTERM or SIGINT.
async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}
