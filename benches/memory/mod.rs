//! What a compiled table holds in memory: the resident set's growth when
//! a process holding a snapshot compiles and keeps two tables of it (the
//! second table's growth is the cleaner number: the first compile's
//! temporaries are freed and reused by then). Each size runs in a fresh
//! process (this bench binary again), so earlier sizes' freed memory does
//! not hide a later one's growth.

use std::hint::black_box;
use std::process::Command;

use switchyard::snapshot::Snapshot;
use switchyard::table::{compile, RouteTable};

/// The resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = (statm.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Measures one shape and size when this process was started for one
/// (`memory-one SHAPE SIZE`), printing the snapshot's, the first and the
/// second table's growth; returns whether it was.
pub fn child(snapshot: impl Fn(&str, usize) -> Snapshot) -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == "memory-one") else {
        return false;
    };
    let (shape, size) = (&args[at + 1], args[at + 2].parse().expect("a size"));
    let start = rss();
    let snapshot = snapshot(shape, size);
    let parsed = rss();
    let first = compile(&snapshot, &RouteTable::default(), 0);
    let one = rss();
    let second = compile(&snapshot, &RouteTable::default(), 0);
    let two = rss();
    black_box((&first.table, &second.table));
    println!("{} {} {}", parsed - start, one - parsed, two - one);
    true
}

/// Compiles one shape and size over and over when this process was
/// started for that (`compile-loop SHAPE SIZE TIMES [recompile]`: a
/// process for `perf record`, with nothing else in it); returns whether
/// it was.
pub fn compile_loop(snapshot: impl Fn(&str, usize) -> Snapshot) -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == "compile-loop") else {
        return false;
    };
    let (shape, size) = (&args[at + 1], args[at + 2].parse().expect("a size"));
    let times: usize = args[at + 3].parse().expect("a count");
    let snapshot = snapshot(shape, size);
    let mut previous = RouteTable::default();
    for _ in 0..times {
        let table = compile(&snapshot, &previous, 0).table;
        if args.get(at + 4).is_some_and(|a| a == "recompile") {
            previous = table;
        }
    }
    true
}

/// Prints, per shape and size, the resident growth of the snapshot and of
/// each of two tables (each size in its own process).
pub fn report(shapes: &[&str], sizes: &[usize]) {
    let exe = std::env::current_exe().expect("the bench binary");
    println!("| shape | routes | snapshot MiB | first table MiB | second table MiB | second, bytes per route |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    for shape in shapes {
        for &size in sizes {
            let out = (Command::new(&exe).args(["memory-one", shape, &size.to_string()]))
                .output()
                .expect("a child run");
            let text = String::from_utf8_lossy(&out.stdout);
            let n: Vec<u64> = (text.split_whitespace())
                .filter_map(|w| w.parse().ok())
                .collect();
            let [parsed, one, two] = n[..] else {
                panic!("child: {text:?} {}", String::from_utf8_lossy(&out.stderr));
            };
            println!(
                "| {shape} | {size} | {:.1} | {:.1} | {:.1} | {} |",
                mib(parsed),
                mib(one),
                mib(two),
                two / size as u64
            );
        }
    }
}
