//! `switchyard-gen`: realistic route tables of any size, deterministic from a
//! seed, for the scale measurements (bench/README.md, "Scale").
//!
//! N routes over N/2 hosts (a fifth of them `*.` wildcards), 1–5 rules each
//! with Prefix, Exact and RegularExpression paths (a fifth with a header
//! match), each rule sending to 1–3 backends of 2–10 endpoints; a fifth of
//! the rules carry policies (firewall, rate limit, header rules) and a
//! fifth a health check; about one route in 200 conflicts with an earlier
//! one and one in 200 is invalid (a bad regular expression).
//!
//! `--mode standalone` writes `address:` backends (for `switchyard run`);
//! `--mode cluster` writes Namespaces, Services, EndpointSlices and routes
//! with `service:` backends (for `kubectl apply --server-side -f DIR`, or
//! the API double of the tests). Endpoints are distinct addresses
//! `127.x.y.z:PORT` (`--first-octet` changes the 127: a real apiserver
//! refuses loopback endpoints). Services have no selector and the slices
//! say they are managed by `switchyard-gen`, so a cluster's EndpointSlice
//! controller leaves them alone.

use std::fs;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

/// Namespaces the cluster objects are spread over.
const NAMESPACES: usize = 10;

#[derive(Parser, Debug)]
#[command(
    name = "switchyard-gen",
    about = "Write a generated route table as YAML"
)]
struct Args {
    /// How many LoadBalancerRoutes.
    #[arg(long, default_value_t = 10_000)]
    routes: usize,
    /// The seed: the same seed and arguments give the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Standalone files or cluster objects.
    #[arg(long, value_enum, default_value_t = Mode::Standalone)]
    mode: Mode,
    /// The port every endpoint listens on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Routes per file.
    #[arg(long, default_value_t = 100)]
    per_file: usize,
    /// The first octet of endpoint addresses: 127 (loopback, for one
    /// local server and the API double), or e.g. 10 for a real cluster,
    /// whose apiserver refuses loopback endpoints.
    #[arg(long, default_value_t = 127)]
    first_octet: u8,
    /// No deliberate conflicts or invalid routes.
    #[arg(long)]
    clean: bool,
    /// The directory to write (created; existing generated files replaced).
    #[arg(long)]
    out: PathBuf,
}

/// Which kind of table to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `address:` backends, for `switchyard run --routes DIR`.
    Standalone,
    /// Services, EndpointSlices and `service:` backends.
    Cluster,
}

/// splitmix64: small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// A backend Service: its namespace, name and endpoint addresses.
struct Service {
    namespace: String,
    name: String,
    ips: Vec<String>,
}

/// The `e`-th distinct endpoint address under `first` (never a `.0`
/// octet).
fn endpoint_ip(first: u8, e: usize) -> String {
    format!(
        "{first}.{}.{}.{}",
        1 + e / 62_500,
        (e / 250) % 250,
        1 + e % 250
    )
}

fn namespace_of(i: usize) -> String {
    format!("gen-{}", i % NAMESPACES)
}

/// N/2 Services (at least one per namespace) with 2–10 endpoints each.
fn services(rng: &mut Rng, routes: usize, first: u8) -> Vec<Service> {
    let mut next_ip = 0;
    (0..(routes / 2).max(NAMESPACES))
        .map(|k| {
            let count = rng.range(2, 10);
            let ips = (next_ip..next_ip + count)
                .map(|e| endpoint_ip(first, e))
                .collect();
            next_ip += count;
            Service {
                namespace: namespace_of(k),
                name: format!("svc-{k}"),
                ips,
            }
        })
        .collect()
}

/// The host of the `h`-th host slot: a fifth are wildcards.
fn host(h: usize) -> String {
    if h % 5 == 4 {
        format!("*.w{h}.gen.test")
    } else {
        format!("h{h}.gen.test")
    }
}

/// One rule's match: a path of some type, sometimes a header.
fn rule_match(rng: &mut Rng, i: usize, j: usize, invalid: bool) -> Value {
    let path = match (invalid, rng.range(0, 19)) {
        (true, _) => json!({"type": "RegularExpression", "value": format!("/r{i}/([")}),
        (_, 0..=11) => json!({"type": "Prefix", "value": format!("/r{i}/p{j}")}),
        (_, 12..=16) => json!({"type": "Exact", "value": format!("/r{i}/e{j}")}),
        _ => json!({"type": "RegularExpression", "value": format!("/r{i}/x{j}/[0-9]+")}),
    };
    if rng.one_in(5) {
        json!({"path": path, "headers": [{"name": "x-variant", "value": format!("v{j}")}]})
    } else {
        json!({"path": path})
    }
}

/// The backends of one rule: 1–3 Services of the route's namespace.
fn backends(rng: &mut Rng, args: &Args, i: usize, services: &[Service]) -> Value {
    let in_namespace: Vec<&Service> = services
        .iter()
        .skip(i % NAMESPACES)
        .step_by(NAMESPACES)
        .collect();
    let picked: Vec<(&Service, usize)> = (0..rng.range(1, 3))
        .map(|_| {
            (
                in_namespace[rng.range(0, in_namespace.len() - 1)],
                rng.range(1, 5),
            )
        })
        .collect();
    let picked = picked.into_iter();
    let list: Vec<Value> = match args.mode {
        Mode::Cluster => picked
            .map(|(s, weight)| json!({"service": s.name, "port": 80, "weight": weight}))
            .collect(),
        Mode::Standalone => picked
            .flat_map(|(s, _)| s.ips.iter())
            .map(|ip| json!({"address": format!("{ip}:{}", args.port)}))
            .collect(),
    };
    Value::Array(list)
}

/// The policies a fifth of the rules carry.
fn add_policies(rule: &mut Value, i: usize) {
    rule["firewall"] = json!({"deny": ["192.0.2.0/24"], "denyPaths": [format!("/r{i}/admin")]});
    rule["rateLimit"] = json!({"requestsPerSecond": 1000, "burst": 2000});
    rule["requestHeaders"] = json!({"set": {"X-Gen-Route": format!("r{i}")}});
    rule["responseHeaders"] = json!({"remove": ["Server"]});
}

/// Route `i`: hosts, rules, backends, sometimes policies and health checks.
fn route(rng: &mut Rng, args: &Args, i: usize, services: &[Service]) -> Value {
    let invalid = !args.clean && rng.one_in(200);
    let rules: Vec<Value> = (0..rng.range(1, 5))
        .map(|j| {
            let mut rule = json!({
                "matches": [rule_match(rng, i, j, invalid && j == 0)],
                "backends": backends(rng, args, i, services),
            });
            if rng.one_in(5) {
                add_policies(&mut rule, i);
            }
            if rng.one_in(5) {
                rule["healthCheck"] = json!({"path": "/healthz", "interval": "10s"});
            }
            rule
        })
        .collect();
    json!({
        "apiVersion": "switchyard.dev/v1alpha1",
        "kind": "LoadBalancerRoute",
        "metadata": {"name": format!("r{i}"), "namespace": namespace_of(i)},
        "spec": {"hosts": [host(i / 2)], "rules": rules},
    })
}

/// About one route in 200 repeats an earlier route's host and first match
/// (same namespace, so a newer route conflicts with an older one).
fn add_conflicts(rng: &mut Rng, routes: &mut [Value]) {
    for i in NAMESPACES..routes.len() {
        if rng.one_in(200) {
            let earlier = routes[i - NAMESPACES]["spec"].clone();
            let spec = &mut routes[i]["spec"];
            spec["hosts"] = earlier["hosts"].clone();
            spec["rules"][0]["matches"] = earlier["rules"][0]["matches"].clone();
        }
    }
}

fn cluster_objects(services: &[Service], port: u16) -> Vec<Value> {
    let namespaces = (0..NAMESPACES).map(
        |n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace_of(n)}}),
    );
    let per_service = services.iter().flat_map(|s| {
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": s.name, "namespace": s.namespace},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port, "protocol": "TCP"}]},
        });
        let endpoints: Vec<Value> = s
            .ips
            .iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true, "serving": true}}))
            .collect();
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{}-1", s.name), "namespace": s.namespace,
                         "labels": {"kubernetes.io/service-name": s.name,
                                    "endpointslice.kubernetes.io/managed-by": "switchyard-gen"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": endpoints,
        });
        [service, slice]
    });
    namespaces.chain(per_service).collect()
}

fn write(path: PathBuf, documents: &[Value]) -> std::io::Result<()> {
    let mut text = String::new();
    for document in documents {
        text.push_str("---\n");
        text.push_str(&serde_yaml_ng::to_string(document).map_err(std::io::Error::other)?);
    }
    fs::write(path, text)
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut rng = Rng(args.seed);
    let services = services(&mut rng, args.routes, args.first_octet);
    let mut routes: Vec<Value> = (0..args.routes)
        .map(|i| route(&mut rng, &args, i, &services))
        .collect();
    if !args.clean {
        add_conflicts(&mut rng, &mut routes);
    }
    fs::create_dir_all(&args.out)?;
    for entry in fs::read_dir(&args.out)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            fs::remove_file(path)?;
        }
    }
    if args.mode == Mode::Cluster {
        write(
            args.out.join("00-objects.yaml"),
            &cluster_objects(&services, args.port),
        )?;
    }
    for (n, chunk) in routes.chunks(args.per_file.max(1)).enumerate() {
        write(args.out.join(format!("routes-{n:04}.yaml")), chunk)?;
    }
    let endpoints: usize = services.iter().map(|s| s.ips.len()).sum();
    println!(
        "{} routes, {} services, {} endpoints in {}",
        routes.len(),
        services.len(),
        endpoints,
        args.out.display()
    );
    Ok(())
}
