//! The module dependency order of DESIGN.md, enforced: every `crate::…`
//! path in library code must point down the layers below, never up or
//! sideways, so no two modules can depend on each other.
//!
//! Test code (`tests.rs` files and what follows `#[cfg(test)]`) may reach
//! anywhere; comments are ignored.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use modules of lower layers
/// only; modules of one layer know nothing of each other.
const LAYERS: &[&[&str]] = &[
    &["api", "shutdown"],
    &["snapshot", "diagnostic"],
    &[
        "matching",
        "balance",
        "source",
        "upstream",
        "metrics",
        "access_log",
    ],
    &["health", "policy", "tls"],
    &["table"],
    &["proxy"],
    &["explain"],
    &["admin"],
    &["publish"],
    &["listeners"],
    &["standalone", "controller"],
    &["demo"],
    &["main"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a source file belongs to (`src/table/pick.rs` →
/// `table`), or `None` for `lib.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library part of a file: test modules and comments left out.
fn library_code(file: &Path, text: &str) -> String {
    if file.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named after `crate::`, including inside
/// `crate::{a::X, b::{Y, Z}}` groups.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphabetic() || c == '_') => {
                        let ident: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        used.insert(ident);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.insert(ident);
        }
    }
    used
}

#[test]
fn modules_only_use_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(own) = layer(&module) else {
            wrong.push(format!(
                "{}: module `{module}` has no layer",
                file.display()
            ));
            continue;
        };
        let text = fs::read_to_string(file).expect("read source file");
        for used in used_modules(&library_code(file, &text)) {
            if used == module || used == "self" {
                continue;
            }
            match layer(&used) {
                Some(theirs) if theirs < own => {}
                Some(_) => wrong.push(format!(
                    "{}: `{module}` uses `crate::{used}`, which is not below it",
                    file.display()
                )),
                None => wrong.push(format!(
                    "{}: `crate::{used}` is in no layer",
                    file.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependency order broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_paths() {
    let code = "use crate::{api::{A, B}, snapshot::Snapshot};\nlet x = crate::table::compile(&s);";
    let used: Vec<String> = used_modules(code).into_iter().collect();
    assert_eq!(used, ["api", "snapshot", "table"]);
}

#[test]
fn the_checker_ignores_comments_and_tests() {
    let text = "use crate::api::X;\n/// see [`T`](crate::table::T)\nfn f() {}\n#[cfg(test)]\nmod tests { use crate::proxy::P; }";
    let code = library_code(Path::new("src/balance/mod.rs"), text);
    let used: Vec<String> = used_modules(&code).into_iter().collect();
    assert_eq!(used, ["api"]);
}
