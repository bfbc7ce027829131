//! `switchyard check`: the file source's documents, compiled once against
//! an empty table, for their problems only. Nothing is published.

use std::io;
use std::path::Path;

use super::{read, update};
use crate::snapshot::Diagnostic;
use crate::table::{compile, RouteStatus, RouteTable};

/// Checks route files as `switchyard check` does: every problem, from the
/// documents and from compile, each naming its file, resource and field.
/// Empty means valid.
pub fn check(path: &Path) -> io::Result<Vec<Diagnostic>> {
    let files = read(path)?;
    let update = update(&files);
    let compiled = compile(&update.snapshot, &RouteTable::default());
    let mut problems = update.diagnostics;
    problems.extend(compiled.statuses.iter().flat_map(RouteStatus::diagnostics));
    Ok(problems)
}
