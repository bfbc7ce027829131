//! Routing through the real proxy: hosts, paths, precedence, conflicts and
//! load balancing, asserted on which backend actually answered.

mod support;

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use support::*;

/// Sends `n` GETs and counts which backend answered each (`x-backend`);
/// non-200 answers are counted under `"<status>"`.
async fn tally(proxy: &Proxy, host: &str, path: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let reply = proxy.get(host, path).await;
        let key = if reply.status == StatusCode::OK {
            reply.backend().unwrap_or("<no x-backend>").to_string()
        } else {
            format!("<{}>", reply.status.as_u16())
        };
        *seen.entry(key).or_default() += 1;
    }
    seen
}

fn names(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The tutorial's host-based setup: mango and apple, two backends each.
struct Fruit {
    mango: [Backend; 2],
    apple: [Backend; 2],
}

impl Fruit {
    async fn new() -> Fruit {
        Fruit {
            mango: [
                Backend::echo("mango-1").await,
                Backend::echo("mango-2").await,
            ],
            apple: [
                Backend::echo("apple-1").await,
                Backend::echo("apple-2").await,
            ],
        }
    }

    fn by_host(&self) -> String {
        yaml(&[
            route("mango")
                .host("www.mango.com")
                .rule(Rule::new().backend(&self.mango[0]).backend(&self.mango[1])),
            route("apple")
                .host("www.apple.com")
                .rule(Rule::new().backend(&self.apple[0]).backend(&self.apple[1])),
        ])
    }

    fn by_path(&self) -> String {
        yaml(&[
            route("mango-path").rule(
                Rule::prefix("/mango")
                    .backend(&self.mango[0])
                    .backend(&self.mango[1]),
            ),
            route("apple-path").rule(
                Rule::prefix("/apple")
                    .backend(&self.apple[0])
                    .backend(&self.apple[1]),
            ),
        ])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_www_mango_com_reaches_only_mango_backends() {
    let fruit = Fruit::new().await;
    let proxy = Proxy::start(&fruit.by_host()).await;

    let seen = tally(&proxy, "www.mango.com", "/", 10).await;
    assert_eq!(seen, names(&[("mango-1", 5), ("mango-2", 5)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_www_apple_com_reaches_only_apple_backends() {
    let fruit = Fruit::new().await;
    let proxy = Proxy::start(&fruit.by_host()).await;

    let seen = tally(&proxy, "www.apple.com", "/any/path", 10).await;
    assert_eq!(seen, names(&[("apple-1", 5), ("apple-2", 5)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_www_notmango_com_is_404() {
    let fruit = Fruit::new().await;
    let proxy = Proxy::start(&fruit.by_host()).await;

    let reply = proxy.get("www.notmango.com", "/").await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "body: {}",
        reply.text()
    );
    assert!(!reply.body.is_empty(), "404 should carry a short text body");
    let total: usize = fruit
        .mango
        .iter()
        .chain(&fruit.apple)
        .map(|b| b.requests())
        .sum();
    assert_eq!(total, 0, "no backend may see a request for an unknown host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_mango_on_any_host_reaches_mango_backends() {
    let fruit = Fruit::new().await;
    let proxy = Proxy::start(&fruit.by_path()).await;

    for host in [
        "www.mango.com",
        "www.notmango.com",
        "example.org",
        "localhost",
    ] {
        let reply = proxy.get(host, "/mango").await;
        let backend = reply.echo().backend;
        assert!(
            backend.starts_with("mango-"),
            "host {host}: /mango answered by {backend}"
        );
    }
    let seen = tally(&proxy, "anything.test", "/mango", 10).await;
    assert_eq!(seen, names(&[("mango-1", 5), ("mango-2", 5)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_apple_on_any_host_reaches_apple_backends() {
    let fruit = Fruit::new().await;
    let proxy = Proxy::start(&fruit.by_path()).await;

    for host in ["www.apple.com", "www.mango.com", "example.org"] {
        let reply = proxy.get(host, "/apple").await;
        let backend = reply.echo().backend;
        assert!(
            backend.starts_with("apple-"),
            "host {host}: /apple answered by {backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_notmango_is_404() {
    let fruit = Fruit::new().await;
    let proxy = Proxy::start(&fruit.by_path()).await;

    for path in ["/notmango", "/", "/appl", "/mang"] {
        let reply = proxy.get("www.mango.com", path).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "path {path}: body {}",
            reply.text()
        );
        assert!(
            !reply.body.is_empty(),
            "path {path}: 404 should carry a body"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_match_ignores_case_and_port() {
    let fruit = Fruit::new().await;
    let proxy = Proxy::start(&fruit.by_host()).await;

    for host in [
        "WWW.MANGO.COM",
        "www.Mango.com",
        "www.mango.com:8080",
        "Www.Mango.Com:80",
    ] {
        let reply = proxy.get(host, "/").await;
        assert!(
            reply.echo().backend.starts_with("mango-"),
            "Host {host:?} should reach mango"
        );
    }
    let reply = proxy.get("www.apple.com:443", "/").await;
    assert!(reply.echo().backend.starts_with("apple-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_host_matches_any_subdomain_but_not_the_bare_domain() {
    let wild = Backend::echo("wild").await;
    let proxy = Proxy::start(&yaml(&[route("wild")
        .host("*.mango.com")
        .rule(Rule::new().backend(&wild))]))
    .await;

    for host in ["shop.mango.com", "a.b.mango.com", "SHOP.Mango.COM:8080"] {
        let reply = proxy.get(host, "/").await;
        assert_eq!(reply.echo().backend, "wild", "Host {host}");
    }
    for host in ["mango.com", "shopmango.com", "www.mango.org"] {
        let reply = proxy.get(host, "/").await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "Host {host}: {}",
            reply.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_host_beats_wildcard_even_when_wildcard_route_is_older() {
    let wild = Backend::echo("wild").await;
    let exact = Backend::echo("exact").await;
    let proxy = Proxy::start(&yaml(&[
        route("wild")
            .host("*.mango.com")
            .rule(Rule::new().backend(&wild)),
        route("exact")
            .host("www.mango.com")
            .rule(Rule::new().backend(&exact)),
    ]))
    .await;

    assert_eq!(
        proxy.get("www.mango.com", "/").await.echo().backend,
        "exact"
    );
    assert_eq!(
        proxy.get("shop.mango.com", "/").await.echo().backend,
        "wild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longer_wildcard_suffix_beats_shorter() {
    let short = Backend::echo("short").await;
    let long = Backend::echo("long").await;
    let proxy = Proxy::start(&yaml(&[
        route("short")
            .host("*.mango.com")
            .rule(Rule::new().backend(&short)),
        route("long")
            .host("*.shop.mango.com")
            .rule(Rule::new().backend(&long)),
    ]))
    .await;

    assert_eq!(
        proxy.get("eu.shop.mango.com", "/").await.echo().backend,
        "long"
    );
    assert_eq!(
        proxy.get("blog.mango.com", "/").await.echo().backend,
        "short"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn most_specific_host_bucket_does_not_fall_back_to_less_specific() {
    let exact = Backend::echo("exact").await;
    let wild = Backend::echo("wild").await;
    let any = Backend::echo("any").await;
    let proxy = Proxy::start(&yaml(&[
        route("exact")
            .host("www.mango.com")
            .rule(Rule::prefix("/exact").backend(&exact)),
        route("wild")
            .host("*.mango.com")
            .rule(Rule::prefix("/wild").backend(&wild)),
        route("any").rule(Rule::new().backend(&any)),
    ]))
    .await;

    assert_eq!(
        proxy.get("www.mango.com", "/exact").await.echo().backend,
        "exact"
    );
    // www.mango.com selects the exact bucket; /wild and / match nothing there.
    assert_eq!(
        proxy.get("www.mango.com", "/wild").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        proxy.get("www.mango.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
    // shop.mango.com selects the wildcard bucket, never the hostless route.
    assert_eq!(
        proxy.get("shop.mango.com", "/wild").await.echo().backend,
        "wild"
    );
    assert_eq!(
        proxy.get("shop.mango.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
    // Any other host falls to the hostless route.
    assert_eq!(
        proxy.get("www.apple.com", "/wild").await.echo().backend,
        "any"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_matches_whole_path_segments_only() {
    let mango = Backend::echo("mango").await;
    let proxy = Proxy::start(&yaml(&[
        route("mango").rule(Rule::prefix("/mango").backend(&mango))
    ]))
    .await;

    for path in [
        "/mango",
        "/mango/",
        "/mango/x",
        "/mango/x/y?z=1",
        "/mango?q=1",
    ] {
        let reply = proxy.get("www.mango.com", path).await;
        assert_eq!(reply.echo().backend, "mango", "path {path}");
    }
    for path in ["/mangox", "/mango-x", "/mangos/x", "/Mango"] {
        let reply = proxy.get("www.mango.com", path).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "path {path}: {}",
            reply.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_path_beats_longest_prefix_beats_shorter_prefix_beats_regex() {
    let regex = Backend::echo("regex").await;
    let short = Backend::echo("prefix-short").await;
    let long = Backend::echo("prefix-long").await;
    let exact = Backend::echo("exact").await;
    // Declared in reverse precedence order, so declaration order cannot explain the result.
    let proxy = Proxy::start(&yaml(&[route("fruit")
        .host("www.mango.com")
        .rule(Rule::regex("/mango/.*").backend(&regex))
        .rule(Rule::prefix("/mango").backend(&short))
        .rule(Rule::prefix("/mango/deep").backend(&long))
        .rule(Rule::exact("/mango/deep/x").backend(&exact))]))
    .await;

    let cases = [
        ("/mango/deep/x", "exact"),
        ("/mango/deep/y", "prefix-long"),
        ("/mango/deep", "prefix-long"),
        ("/mango/other", "prefix-short"),
        ("/mango", "prefix-short"),
    ];
    for (path, want) in cases {
        let got = proxy.get("www.mango.com", path).await.echo().backend;
        assert_eq!(got, want, "path {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_path_matches_only_the_exact_path() {
    let exact = Backend::echo("exact").await;
    let proxy = Proxy::start(&yaml(&[
        route("exact").rule(Rule::exact("/mango").backend(&exact))
    ]))
    .await;

    assert_eq!(proxy.get("h", "/mango").await.echo().backend, "exact");
    assert_eq!(proxy.get("h", "/mango?x=1").await.echo().backend, "exact");
    for path in ["/mango/", "/mango/x", "/mangox", "/"] {
        assert_eq!(
            proxy.get("h", path).await.status,
            StatusCode::NOT_FOUND,
            "path {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regular_expression_path_must_match_the_whole_path() {
    let regex = Backend::echo("regex").await;
    let proxy = Proxy::start(&yaml(&[
        route("orders").rule(Rule::regex("/orders/[0-9]+").backend(&regex))
    ]))
    .await;

    assert_eq!(proxy.get("h", "/orders/42").await.echo().backend, "regex");
    assert_eq!(
        proxy.get("h", "/orders/42?x=y").await.echo().backend,
        "regex"
    );
    for path in [
        "/orders/42x",
        "/orders/",
        "/v1/orders/42",
        "/orders/42/items",
    ] {
        assert_eq!(
            proxy.get("h", path).await.status,
            StatusCode::NOT_FOUND,
            "path {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_match_selects_canary_and_more_header_matches_win() {
    let stable = Backend::echo("stable").await;
    let canary = Backend::echo("canary").await;
    let both = Backend::echo("both").await;
    let proxy = Proxy::start(&yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::prefix("/").backend(&stable))
        .rule(
            Rule::new()
                .matching(Match::prefix("/").header("x-canary", "1"))
                .backend(&canary),
        )
        .rule(
            Rule::new()
                .matching(
                    Match::prefix("/")
                        .header("x-canary", "1")
                        .header("x-beta", "yes"),
                )
                .backend(&both),
        )]))
    .await;

    let send = |headers: &'static [(&'static str, &'static str)]| {
        let mut req = request(&proxy, Method::GET, "www.mango.com", "/");
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        proxy.send(req.body(empty()).unwrap())
    };
    assert_eq!(send(&[]).await.echo().backend, "stable");
    assert_eq!(send(&[("x-canary", "1")]).await.echo().backend, "canary");
    assert_eq!(send(&[("x-canary", "2")]).await.echo().backend, "stable");
    assert_eq!(
        send(&[("X-Canary", "1"), ("x-beta", "yes")])
            .await
            .echo()
            .backend,
        "both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_regular_expression_match_is_honoured() {
    let stable = Backend::echo("stable").await;
    let mobile = Backend::echo("mobile").await;
    let proxy = Proxy::start(&yaml(&[route("ua")
        .rule(Rule::new().backend(&stable))
        .rule(
            Rule::new()
                .matching(Match::prefix("/").header_regex("user-agent", ".*Mobile.*"))
                .backend(&mobile),
        )]))
    .await;

    let req = request(&proxy, Method::GET, "h", "/").header("user-agent", "Fruit/1.0 (Mobile)");
    assert_eq!(
        proxy.send(req.body(empty()).unwrap()).await.echo().backend,
        "mobile"
    );
    let req = request(&proxy, Method::GET, "h", "/").header("user-agent", "Fruit/1.0 (Desktop)");
    assert_eq!(
        proxy.send(req.body(empty()).unwrap()).await.echo().backend,
        "stable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_match_wins_over_rule_without_method_and_restricts_its_rule() {
    let reads = Backend::echo("reads").await;
    let writes = Backend::echo("writes").await;
    let proxy = Proxy::start(&yaml(&[route("api")
        .rule(Rule::prefix("/api").backend(&reads))
        .rule(
            Rule::new()
                .matching(Match::prefix("/api").methods(&["POST", "PUT"]))
                .backend(&writes),
        )]))
    .await;

    let send = |method: Method| {
        proxy.send(
            request(&proxy, method, "h", "/api/x")
                .body(empty())
                .unwrap(),
        )
    };
    assert_eq!(send(Method::POST).await.echo().backend, "writes");
    assert_eq!(send(Method::PUT).await.echo().backend, "writes");
    assert_eq!(send(Method::GET).await.echo().backend, "reads");
    assert_eq!(send(Method::DELETE).await.echo().backend, "reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_only_rule_does_not_match_other_methods() {
    let writes = Backend::echo("writes").await;
    let proxy = Proxy::start(&yaml(&[route("api").rule(
        Rule::new()
            .matching(Match::prefix("/api").methods(&["POST"]))
            .backend(&writes),
    )]))
    .await;

    let post = proxy
        .send(
            request(&proxy, Method::POST, "h", "/api")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(post.echo().backend, "writes");
    let get = proxy
        .send(
            request(&proxy, Method::GET, "h", "/api")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_younger_route_is_rejected_whole_and_older_is_served() {
    let older = Backend::echo("older").await;
    let younger = Backend::echo("younger").await;
    let proxy = Proxy::start(&yaml(&[
        route("mango")
            .host("www.mango.com")
            .rule(Rule::new().backend(&older)),
        // Same host + identical match: conflicts. Its second host must not be
        // served either: the younger route is rejected whole.
        route("mango-copy")
            .host("www.mango.com")
            .host("www.copy.com")
            .rule(Rule::new().backend(&younger)),
    ]))
    .await;

    let seen = tally(&proxy, "www.mango.com", "/", 10).await;
    assert_eq!(seen, names(&[("older", 10)]));
    assert_eq!(
        proxy.get("www.copy.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(younger.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_route_in_other_namespace_is_rejected_too() {
    let older = Backend::echo("older").await;
    let younger = Backend::echo("younger").await;
    let proxy = Proxy::start(&yaml(&[
        route("mango")
            .namespace("shop")
            .host("www.mango.com")
            .rule(Rule::prefix("/x").backend(&older)),
        route("mango")
            .namespace("blog")
            .host("www.mango.com")
            .rule(Rule::prefix("/x").backend(&younger)),
    ]))
    .await;

    let seen = tally(&proxy, "www.mango.com", "/x", 6).await;
    assert_eq!(seen, names(&[("older", 6)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_route_at_start_does_not_block_good_routes() {
    let good = Backend::echo("good").await;
    let text = format!(
        "{}---\n{}",
        route("broken")
            .host("www.broken.com")
            .rule(Rule::regex("/(unclosed").backend(&good)),
        route("good")
            .host("www.good.com")
            .rule(Rule::new().backend(&good)),
    );
    let proxy = Proxy::start(&text).await;

    assert_eq!(proxy.get("www.good.com", "/").await.echo().backend, "good");
    assert_eq!(
        proxy.get("www.broken.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_100_requests_50_50_across_two_backends() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let proxy = Proxy::start(&yaml(&[
        route("rr").rule(Rule::new().backend(&a).backend(&b).algorithm("RoundRobin"))
    ]))
    .await;

    let seen = tally(&proxy, "h", "/", 100).await;
    assert_eq!(seen, names(&[("a", 50), ("b", 50)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_honours_weights_3_to_1() {
    let heavy = Backend::echo("heavy").await;
    let light = Backend::echo("light").await;
    let proxy = Proxy::start(&yaml(&[
        route("wrr").rule(Rule::new().weighted(&heavy, 3).weighted(&light, 1))
    ]))
    .await;

    let seen = tally(&proxy, "h", "/", 100).await;
    assert_eq!(seen, names(&[("heavy", 75), ("light", 25)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_directory_serves_every_yaml_and_yml_file_and_ignores_others() {
    let mango = Backend::echo("mango").await;
    let apple = Backend::echo("apple").await;
    let mango_doc = yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&mango))]);
    let apple_doc = yaml(&[route("apple")
        .host("www.apple.com")
        .rule(Rule::new().backend(&apple))]);
    let proxy = Proxy::start_dir(&[
        ("mango.yaml", &mango_doc),
        ("apple.yml", &apple_doc),
        ("README.txt", "this: is not: a route ["),
    ])
    .await;

    assert_eq!(
        proxy.get("www.mango.com", "/").await.echo().backend,
        "mango"
    );
    assert_eq!(
        proxy.get("www.apple.com", "/").await.echo().backend,
        "apple"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_prefix_wins_across_routes_regardless_of_age() {
    let short = Backend::echo("short").await;
    let long = Backend::echo("long").await;
    let proxy = Proxy::start(&yaml(&[
        route("short")
            .host("www.mango.com")
            .rule(Rule::prefix("/mango").backend(&short)),
        route("long")
            .host("www.mango.com")
            .rule(Rule::prefix("/mango/juice").backend(&long)),
    ]))
    .await;

    assert_eq!(
        proxy
            .get("www.mango.com", "/mango/juice/1")
            .await
            .echo()
            .backend,
        "long"
    );
    assert_eq!(
        proxy
            .get("www.mango.com", "/mango/jam")
            .await
            .echo()
            .backend,
        "short"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_across_files_is_won_by_the_earlier_file() {
    let first = Backend::echo("first").await;
    let second = Backend::echo("second").await;
    let a = yaml(&[route("mango-a")
        .host("www.mango.com")
        .rule(Rule::prefix("/").backend(&first))]);
    let b = yaml(&[route("mango-b")
        .host("www.mango.com")
        .rule(Rule::prefix("/").backend(&second))]);
    // Written in reverse so creation order cannot be what decides.
    let proxy = Proxy::start_dir(&[("20-second.yaml", &b), ("10-first.yaml", &a)]).await;

    let seen = tally(&proxy, "www.mango.com", "/", 6).await;
    assert_eq!(seen, names(&[("first", 6)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_is_exact_under_concurrent_requests() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let proxy = Proxy::start(&yaml(&[
        route("rr").rule(Rule::new().backend(&a).backend(&b))
    ]))
    .await;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = proxy.client();
        let req = request(&proxy, Method::GET, "h", &format!("/c/{i}"))
            .body(empty())
            .unwrap();
        tasks.push(tokio::spawn(async move {
            Reply::collect(client.request(req).await.expect("request")).await
        }));
    }
    for task in tasks {
        assert_eq!(
            within("concurrent request", task).await.unwrap().status,
            StatusCode::OK
        );
    }
    assert_eq!((a.requests(), b.requests()), (50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_with_leading_and_trailing_separators_and_comments_load() {
    let mango = Backend::echo("mango").await;
    let text = format!(
        "# routes for the shop\n---\n{}---\n# the end\n---\n",
        route("mango")
            .host("www.mango.com")
            .rule(Rule::new().backend(&mango))
    );
    let proxy = Proxy::start(&text).await;

    assert_eq!(
        proxy.get("www.mango.com", "/").await.echo().backend,
        "mango"
    );
}

/// `/public` goes to backend `public` with no policy; `/admin` to backend
/// `admin` behind a firewall that lets no test client in (they come from
/// 127.0.0.1), so reaching `admin`, or `public` with an admin path, would
/// be a tunnel past that firewall.
async fn public_and_guarded_admin() -> (Proxy, Backend, Backend) {
    let public = Backend::echo("public").await;
    let admin = Backend::echo("admin").await;
    let proxy = Proxy::start(&yaml(&[
        route("site")
            .host("www.mango.com")
            .rule(Rule::prefix("/public").backend(&public)),
        route("site-admin").host("www.mango.com").rule(
            Rule::prefix("/admin")
                .backend(&admin)
                .field("firewall", "{allow: [10.0.0.0/8]}"),
        ),
        route("open")
            .host("open.mango.com")
            .rule(Rule::new().backend(&public)),
    ]))
    .await;
    (proxy, public, admin)
}

/// The status of a GET for `path` on `host`, sent as raw bytes: the path
/// reaches the proxy exactly as written.
async fn raw_get(proxy: &Proxy, host: &str, path: &str) -> Option<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    raw_status(proxy.addr, request.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_an_origin_reads_as_another_rules_path_is_400_and_reaches_no_backend() {
    let (proxy, public, admin) = public_and_guarded_admin().await;
    assert_eq!(
        raw_get(&proxy, "www.mango.com", "/admin/x").await,
        Some(403)
    );
    assert_eq!(
        raw_get(&proxy, "www.mango.com", "/public/x").await,
        Some(200)
    );
    assert_eq!(public.requests(), 1);

    // Each is `/admin/x` to some origin: decoding `%2F`, splitting on `\`
    // or `%5C`, dropping `;params` (Tomcat), decoding `%2e`, resolving `..`.
    for path in [
        "/public/..%2fadmin/x",
        "/public/..%2Fadmin/x",
        "/public/..%5cadmin/x",
        "/public/..%5Cadmin/x",
        "/public/..\\admin/x",
        "/public/..;/admin/x",
        "/public/%2e%2e/admin/x",
        "/public/../admin/x",
        "/public/a/..%2f..%2fadmin/x",
    ] {
        let status = raw_get(&proxy, "www.mango.com", path).await;
        assert_eq!(status, Some(400), "{path} must be refused");
    }
    assert_eq!(public.requests(), 1, "a bypass reached the public backend");
    assert_eq!(admin.requests(), 0, "a bypass reached the admin backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_an_origin_reads_outside_every_rule_is_400() {
    let app = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app")
        .host("www.mango.com")
        .rule(Rule::prefix("/public").backend(&app))]))
    .await;
    // Only `/public` of the backend is exposed; these are `/secret` there.
    for path in [
        "/public/..%2fsecret",
        "/public/..;/secret",
        "/public/%2e%2e/secret",
        "/public/..\\secret",
    ] {
        let status = raw_get(&proxy, "www.mango.com", path).await;
        assert_eq!(status, Some(400), "{path} must be refused");
    }
    assert_eq!(
        app.requests(),
        0,
        "a path outside /public reached the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_every_origin_reads_under_the_same_rule_is_served_unchanged() {
    let (proxy, public, admin) = public_and_guarded_admin().await;
    for path in [
        "/public/a%20b",
        "/public/x;v=1",
        "/public/a%2fb",
        "/public/a%5Cb",
        "/public/%61dmin",
        "/public/./x",
        "/public//x",
        "/public/x/..%2fy",
        "/public/admin/..;/x",
    ] {
        let reply = proxy.get("www.mango.com", path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.text());
        let echo = reply.echo();
        assert_eq!(echo.backend, "public", "{path}");
        assert_eq!(echo.uri, path, "{path} is forwarded as sent");
    }
    assert_eq!(
        raw_get(&proxy, "www.mango.com", "/public/a\\b").await,
        Some(200)
    );
    assert_eq!(public.requests(), 10);
    assert_eq!(admin.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tricky_path_too_long_to_read_every_way_is_400_where_rules_split_by_path() {
    let (proxy, public, _admin) = public_and_guarded_admin().await;
    // Every trick at once, 4 KiB long: 32 readings of it are too many.
    let tricky = format!("/public/{}%2f;x\\y//z", "a".repeat(4096));
    let plain = format!("/public/{}", "a".repeat(4096));
    assert_eq!(raw_get(&proxy, "www.mango.com", &tricky).await, Some(400));
    assert_eq!(raw_get(&proxy, "www.mango.com", &plain).await, Some(200));
    // One rule for every path: no reading can select another.
    assert_eq!(raw_get(&proxy, "open.mango.com", &tricky).await, Some(200));
    assert_eq!(public.requests(), 2);
}
