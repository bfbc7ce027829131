//! Route table costs as the table grows: lookup (exact host, wildcard host,
//! 50 path rules on one host), compile, and a pick per balancing algorithm.
//!
//! `cargo bench --bench table` (criterion; numbers in `bench/README.md`);
//! `cargo bench --bench table -- memory` prints what a compiled table
//! holds in memory instead.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use criterion::{criterion_group, BenchmarkId, Criterion};
use http::{HeaderMap, Method};
use switchyard::snapshot::{Snapshot, TlsSettings};
use switchyard::source::file::{parse, Files};
use switchyard::table::{compile, PickContext, RouteTable};

mod memory;
mod realistic;

/// The table sizes measured.
const SIZES: [usize; 4] = [100, 1_000, 10_000, 30_000];

/// The seed of the realistic tables.
const SEED: u64 = 14;

/// `routes` routes: even ones on an exact host, odd ones on a wildcard
/// host, each with two prefix rules and two backends; plus one host with
/// 50 path rules (`/p0` … `/p49`, then `/`).
fn routes_yaml(routes: usize) -> String {
    let mut yaml = String::new();
    for i in 0..routes {
        let host = match i % 2 {
            0 => format!("svc{i}.example.com"),
            _ => format!("\"*.w{i}.example.com\""),
        };
        let (a, b) = (i / 250, i % 250);
        yaml += &format!(
            "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
             metadata: {{name: r{i}, namespace: bench}}\nspec:\n  hosts: [{host}]\n  rules:\n\
             \x20 - matches: [{{path: {{type: Prefix, value: /api}}}}]\n\
             \x20   backends: [{{address: \"10.1.{a}.{b}:8080\"}}, {{address: \"10.2.{a}.{b}:8080\"}}]\n\
             \x20 - backends: [{{address: \"10.3.{a}.{b}:8080\"}}]\n---\n"
        );
    }
    yaml += "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
             metadata: {name: paths, namespace: bench}\nspec:\n  hosts: [paths.example.com]\n  rules:\n";
    for p in 0..50 {
        yaml += &format!(
            "  - matches: [{{path: {{type: Prefix, value: /p{p}}}}}]\n\
             \x20   backends: [{{address: \"10.9.0.{p}:8080\"}}]\n"
        );
    }
    yaml += "  - backends: [{address: \"10.9.1.1:8080\"}]\n";
    yaml
}

fn snapshot(routes: usize) -> Snapshot {
    parsed(routes_yaml(routes))
}

/// `routes` realistic routes (see [`realistic`]).
fn realistic_snapshot(routes: usize) -> Snapshot {
    parsed(realistic::yaml(routes, SEED))
}

fn parsed(yaml: String) -> Snapshot {
    let files = Files(vec![(PathBuf::from("bench.yaml"), Ok(yaml.into()))]);
    let loaded = parse(&files, &TlsSettings::default());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.snapshot
}

fn table(snapshot: &Snapshot) -> RouteTable {
    let compiled = compile(snapshot, &RouteTable::default(), 0);
    assert!(compiled.statuses.iter().all(|s| s.accepted()));
    compiled.table
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    let headers = HeaderMap::new();
    for size in SIZES {
        let table = table(&snapshot(size));
        let exact = (size - 1) & !1; // the last route on an exact host
        let wildcard = (size - 1) | 1; // the last on a wildcard (size is even)
        let cases = [
            ("exact_host", format!("svc{exact}.example.com"), "/api/v1"),
            ("wildcard_host", format!("a.w{wildcard}.example.com"), "/"),
            ("50_path_rules", "paths.example.com".to_owned(), "/p49/x"),
        ];
        for (name, host, path) in &cases {
            assert!(table
                .find(Some(host), &Method::GET, path, &headers)
                .is_some());
            group.bench_with_input(BenchmarkId::new(*name, size), &size, |b, _| {
                b.iter(|| {
                    black_box(table.lookup_unambiguous(
                        Some(black_box(host)),
                        &Method::GET,
                        black_box(path),
                        &headers,
                    ))
                    .is_ok()
                })
            });
        }
    }
    group.finish();
}

fn compile_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for size in SIZES {
        let snapshot = snapshot(size);
        group.bench_with_input(BenchmarkId::new("old_shape", size), &snapshot, |b, s| {
            b.iter(|| compile(s, &RouteTable::default(), 0).table)
        });
        let snapshot = realistic_snapshot(size);
        group.bench_with_input(BenchmarkId::new("realistic", size), &snapshot, |b, s| {
            b.iter(|| compile(s, &RouteTable::default(), 0).table)
        });
        // What the publish loop does: the previous table is the last one.
        let previous = table(&snapshot);
        group.bench_with_input(
            BenchmarkId::new("realistic_recompile", size),
            &snapshot,
            |b, s| b.iter(|| compile(s, &previous, 0).table),
        );
    }
    group.finish();
}

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick");
    let headers: HeaderMap = [(
        http::header::HeaderName::from_static("x-user"),
        http::HeaderValue::from_static("alice"),
    )]
    .into_iter()
    .collect();
    for algorithm in [
        "RoundRobin",
        "LeastConnections",
        "LeastTime",
        "Random",
        "ConsistentHash",
    ] {
        let table = table(&pick_snapshot(algorithm));
        let rule = (table.find(Some("pick.example.com"), &Method::GET, "/", &headers))
            .expect("the pick rule")
            .clone();
        let cx = PickContext {
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            headers: &headers,
            query: None,
            now: tokio::time::Instant::now(),
        };
        group.bench_function(algorithm, |b| {
            b.iter(|| rule.backends.pick(black_box(&cx)).is_ok())
        });
    }
    group.finish();
}

/// One rule over eight endpoints balanced by `algorithm`.
fn pick_snapshot(algorithm: &str) -> Snapshot {
    let hash = match algorithm {
        "ConsistentHash" => ", hashOn: {type: Header, name: x-user}",
        _ => "",
    };
    let backends: Vec<String> = (1..=8)
        .map(|i| format!("{{address: \"10.0.0.{i}:80\"}}"))
        .collect();
    let yaml = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
         metadata: {{name: pick}}\nspec:\n  hosts: [pick.example.com]\n  rules:\n\
         \x20 - backends: [{}]\n    loadBalancing: {{algorithm: {algorithm}{hash}}}\n",
        backends.join(", ")
    );
    let files = Files(vec![(PathBuf::from("pick.yaml"), Ok(yaml.into()))]);
    parse(&files, &TlsSettings::default()).snapshot
}

criterion_group!(benches, lookup, compile_table, pick);

fn main() {
    let shaped = |shape: &str, size| match shape {
        "realistic" => realistic_snapshot(size),
        _ => snapshot(size),
    };
    if memory::child(shaped) || memory::compile_loop(shaped) {
        return;
    }
    if std::env::args().any(|a| a == "memory") {
        memory::report(&["old_shape", "realistic"], &SIZES);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
