//! The text form of an [`Explanation`], for a person at a terminal.

use std::fmt::Write;

use super::policies::{BackendsView, PolicyView};
use super::{CandidateView, Explanation};

/// The explanation as text, one fact a line.
pub fn text(e: &Explanation) -> String {
    let mut out = String::new();
    let r = &e.request;
    let query = r
        .query
        .as_deref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let host = r.host.as_deref().unwrap_or("(no host)");
    let _ = writeln!(
        out,
        "request: {} {}://{host}{}{query} from {}",
        r.method, r.scheme, r.path, r.client
    );
    match &e.host {
        Some(entry) => {
            let _ = writeln!(out, "host: {entry}");
        }
        None => {
            let _ = writeln!(out, "host: no route serves this host");
        }
    }
    if !e.candidates.is_empty() {
        let _ = writeln!(
            out,
            "candidates, in precedence order (the first match wins):"
        );
    }
    for (i, c) in e.candidates.iter().enumerate() {
        candidate(&mut out, i, c, e.winner == Some(i));
    }
    match e.winner.and_then(|w| e.candidates.get(w)) {
        Some(w) => {
            let _ = writeln!(
                out,
                "winner: #{} {} {}",
                e.winner.unwrap_or(0),
                w.route,
                w.field
            );
        }
        None => {
            let _ = writeln!(out, "winner: none");
        }
    }
    for c in &e.conflicts {
        let _ = writeln!(
            out,
            "conflict: {} is not served: {}",
            c.route,
            c.problems.join("; ")
        );
    }
    if let Some(p) = &e.policies {
        policies(&mut out, p);
    }
    if let Some(b) = &e.backends {
        backends(&mut out, b);
    }
    let _ = writeln!(out, "outcome: {}", e.outcome.describe());
    out
}

fn candidate(out: &mut String, i: usize, c: &CandidateView, winner: bool) {
    let methods = if c.methods.is_empty() {
        "any method".to_owned()
    } else {
        c.methods.join(",")
    };
    let mark = if winner { "  <= winner" } else { "" };
    let _ = writeln!(
        out,
        "  #{i} {} {}: {}, {methods}{mark}",
        c.route, c.field, c.path
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    let v = &c.verdicts;
    let mut line = format!(
        "      host {}  path {}  method {}  headers {}  query -",
        yes(v.host),
        yes(v.path),
        yes(v.method),
        yes(v.headers)
    );
    for h in &c.headers {
        let _ = write!(line, "\n      header {}: {}", h.condition, yes(h.matched));
    }
    let _ = writeln!(out, "{line}");
    if let Some(by) = c.shadowed_by {
        let _ = writeln!(
            out,
            "      never chosen: #{by} takes every request it matches"
        );
    }
    if !c.shadows.is_empty() {
        let list: Vec<String> = c.shadows.iter().map(|s| format!("#{s}")).collect();
        let _ = writeln!(out, "      shadows {}", list.join(", "));
    }
}

fn policies(out: &mut String, p: &PolicyView) {
    if let Some(location) = &p.https_redirect {
        let _ = writeln!(out, "https redirect: 308 to {location}");
    }
    if let Some(f) = &p.firewall {
        let verdict = match f.reason {
            None => "allowed".to_owned(),
            Some(reason) => format!("denied ({reason})"),
        };
        let _ = writeln!(out, "firewall: {verdict}");
    }
    if let Some(r) = &p.rate_limit {
        let _ = writeln!(
            out,
            "rate limit: {}/s, burst {}, counted under {} (described; no token spent)",
            r.requests_per_second, r.burst, r.key
        );
    }
    if let Some(max) = p.max_body_size {
        let _ = writeln!(out, "max body size: {max} bytes");
    }
    if let Some(r) = &p.redirect {
        let location = r.location.as_deref().unwrap_or("(cannot be built: 400)");
        let _ = writeln!(out, "redirect: {} to {location}", r.status);
    }
    if let Some(u) = &p.upstream {
        let _ = writeln!(out, "upstream request: {}", u.path_and_query);
        if u.host_is_endpoint {
            let _ = writeln!(out, "  host: (the chosen endpoint's address)");
        }
        for (name, value) in &u.headers {
            let _ = writeln!(out, "  {name}: {value}");
        }
    }
}

fn backends(out: &mut String, b: &BackendsView) {
    if let Some(reason) = &b.unavailable {
        let _ = writeln!(out, "backends: none ({reason})");
        return;
    }
    let algorithm = (b.load_balancing.as_ref()).map_or_else(
        || "RoundRobin".to_owned(),
        |lb| format!("{:?}", lb.algorithm),
    );
    let _ = writeln!(out, "backends ({algorithm}; described, no pick made):");
    for e in &b.endpoints {
        let _ = writeln!(
            out,
            "  {} weight {} {} in-flight {}",
            e.address, e.weight, e.state, e.in_flight
        );
    }
}
