//! A realistic route table for the benches, deterministic from a seed:
//! N routes over N/2 hosts (exact and `*.` wildcard), 1–5 rules each with
//! `Prefix`, `Exact` and `RegularExpression` paths and header matches,
//! 1–3 backends per rule (a backend is a "service" of 2–10 static
//! `127.x.y.z:port` addresses, shared by the rules that name it), about
//! 20 % of routes with policies (firewall, rate limit, header rules) and
//! 20 % with active health checks. Every route is accepted: paths carry
//! the route's index, so no two routes claim the same match.

use std::fmt::Write;

/// A small seeded generator (SplitMix64): the same table every run, no
/// crate for it.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The standalone YAML of `routes` realistic routes (seed `seed`).
pub fn yaml(routes: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let services = (routes / 2).max(1);
    let sizes: Vec<usize> = (0..services).map(|_| rng.range(2, 10)).collect();
    let mut out = String::with_capacity(routes * 1_500);
    for i in 0..routes {
        route(&mut out, i, &mut rng, &sizes);
    }
    out
}

/// The host of route `i`: two routes per host, every other host a
/// wildcard.
pub fn host(i: usize) -> String {
    let h = i / 2;
    match h % 2 {
        0 => format!("h{h}.example.com"),
        _ => format!("*.w{h}.example.com"),
    }
}

fn route(out: &mut String, i: usize, rng: &mut Rng, sizes: &[usize]) {
    let policy = rng.percent(20);
    let health = rng.percent(20);
    let _ = write!(
        out,
        "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\n\
         metadata: {{name: r{i}, namespace: ns{}}}\nspec:\n  hosts: [\"{}\"]\n  rules:\n",
        i % 50,
        host(i)
    );
    for r in 0..rng.range(1, 5) {
        let _ = write!(out, "  - matches:\n{}", path_match(i, r, rng));
        if rng.percent(30) {
            let header = match rng.range(0, 1) {
                0 => format!("{{name: x-tenant, value: t{}}}", rng.range(0, 99)),
                _ => "{name: x-version, type: RegularExpression, value: \"v[0-9]+\"}".to_owned(),
            };
            let _ = writeln!(out, "      headers: [{header}]");
        }
        out.push_str("    backends:\n");
        for _ in 0..rng.range(1, 3) {
            let s = rng.range(0, sizes.len() - 1);
            for e in 0..sizes[s] {
                let (x, y) = (s / 250, s % 250);
                let _ = writeln!(out, "    - {{address: \"127.{x}.{y}.{}:8080\"}}", e + 1);
            }
        }
        if policy {
            out.push_str(POLICY);
        }
        if health {
            out.push_str("    healthCheck: {path: /healthz, interval: 5s, timeout: 1s}\n");
        }
    }
    out.push_str("---\n");
}

/// A match of rule `r` of route `i`: one path of each kind, in turn.
fn path_match(i: usize, r: usize, rng: &mut Rng) -> String {
    match rng.range(0, 2) {
        0 => format!("    - path: {{type: Prefix, value: /r{i}/s{r}}}\n"),
        1 => format!("    - path: {{type: Exact, value: /r{i}/s{r}/index.html}}\n"),
        _ => format!(
            "    - path: {{type: RegularExpression, value: \"/r{i}/s{r}/items/[0-9]+(/[a-z]+)?\"}}\n"
        ),
    }
}

/// The rule policy of the routes that have one.
const POLICY: &str = "    firewall:\n      allow: [10.0.0.0/8, \"2001:db8::/32\"]\n\
     \x20     deny: [10.192.0.0/16]\n\
     \x20     denyHeaders: [{name: User-Agent, type: RegularExpression, value: \"BadBot.*\"}]\n\
     \x20   rateLimit: {requestsPerSecond: 100, burst: 200, key: {type: ClientIP}}\n\
     \x20   requestHeaders: {set: {X-Env: prod}, remove: [X-Debug]}\n\
     \x20   responseHeaders: {set: {X-Frame-Options: DENY}, add: {X-Served-By: switchyard}}\n";
