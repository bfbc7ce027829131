//! Hot reload of the routes file, bad route files (each refused alone) and
//! graceful shutdown of `standalone::run`.

mod support;

use std::time::Duration;

use http::StatusCode;
use support::*;

fn mango_to(backend: &Backend) -> String {
    yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(backend))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_reroutes_requests_on_a_live_keepalive_connection() {
    let old = Backend::echo("old").await;
    let new = Backend::echo("new").await;
    let proxy = Proxy::start(&mango_to(&old)).await;

    let mut conn = H1Conn::connect(proxy.addr).await;
    assert_eq!(conn.get("www.mango.com", "/").await.echo().backend, "old");

    proxy.write_routes(&mango_to(&new));

    // Every request goes over the same client connection; it must survive
    // the reload and start reaching the new backend.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut sent = 1;
    loop {
        let backend = conn.get("www.mango.com", "/").await.echo().backend;
        sent += 1;
        if backend == "new" {
            break;
        }
        assert_eq!(backend, "old");
        assert!(
            tokio::time::Instant::now() < deadline,
            "reload not picked up within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // After the switch, the old backend is never used again.
    for _ in 0..5 {
        assert_eq!(conn.get("www.mango.com", "/").await.echo().backend, "new");
    }
    assert!(conn.is_open());
    assert_eq!(old.requests() + new.requests(), sent + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_routes() {
    let mango = Backend::echo("mango").await;
    let apple = Backend::echo("apple").await;
    let proxy = Proxy::start(&mango_to(&mango)).await;
    assert_eq!(
        proxy.get("www.apple.com", "/").await.status,
        StatusCode::NOT_FOUND
    );

    proxy.write_routes(&yaml(&[route("apple")
        .host("www.apple.com")
        .rule(Rule::new().backend(&apple))]));
    wait_until("www.apple.com to be served", DEADLINE, || async {
        proxy.get("www.apple.com", "/").await.status == StatusCode::OK
    })
    .await;
    wait_until("www.mango.com to be gone", DEADLINE, || async {
        proxy.get("www.mango.com", "/").await.status == StatusCode::NOT_FOUND
    })
    .await;

    let routes = proxy.admin_get("/routes").await.unwrap().text();
    assert!(
        routes.contains("www.apple.com"),
        "/routes after reload: {routes}"
    );
    assert!(
        !routes.contains("www.mango.com"),
        "/routes still lists the removed route: {routes}"
    );
}

/// Starts on `good`, applies `bad_edit`, and checks that the last good table
/// keeps being served for 20 reload intervals; then a valid edit is still
/// picked up (the reloader survived the bad edit).
async fn assert_bad_edit_keeps_last_good_table(bad_edit: impl Fn(&Backend) -> String) {
    let good = Backend::echo("good").await;
    let edited = Backend::echo("edited").await;
    let later = Backend::echo("later").await;
    let proxy = Proxy::start(&mango_to(&good)).await;
    assert_eq!(proxy.get("www.mango.com", "/").await.echo().backend, "good");

    proxy.write_routes(&bad_edit(&edited));
    hold_for(
        "www.mango.com to keep reaching the last good backend",
        RELOAD_INTERVAL * 20,
        || async {
            let reply = proxy.get("www.mango.com", "/").await;
            reply.status == StatusCode::OK && reply.backend() == Some("good")
        },
    )
    .await;
    assert_eq!(edited.requests(), 0);
    let ready = proxy.admin_get("/readyz").await.unwrap();
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "a bad edit must not make the proxy unready"
    );

    proxy.write_routes(&mango_to(&later));
    wait_until(
        "a valid edit after the bad one to be served",
        DEADLINE,
        || async { proxy.get("www.mango.com", "/").await.backend() == Some("later") },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_regex_edit_keeps_serving_the_last_good_table() {
    assert_bad_edit_keeps_last_good_table(|edited| {
        yaml(&[route("mango")
            .host("www.mango.com")
            .rule(Rule::regex("/(unclosed").backend(edited))
            .rule(Rule::new().backend(edited))])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_syntax_error_edit_keeps_serving_the_last_good_table() {
    assert_bad_edit_keeps_last_good_table(|edited| {
        format!(
            "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {{name: mango\nspec:\n  hosts: [www.mango.com]\n  rules:\n  - backends: [{{address: \"{}\"}}]\n",
            edited.address()
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_already_bad_at_start_does_not_block_edits_but_a_new_problem_does() {
    let first = Backend::echo("first").await;
    let second = Backend::echo("second").await;
    let third = Backend::echo("third").await;
    let broken = route("broken")
        .host("www.broken.com")
        .rule(Rule::regex("/(unclosed").backend(&first));
    let mango = |to: &Backend| {
        route("mango")
            .host("www.mango.com")
            .rule(Rule::new().backend(to))
    };
    // Start-up serves the good route and leaves the bad one out.
    let proxy = Proxy::start(&yaml(&[broken.clone(), mango(&first)])).await;
    assert_eq!(
        proxy.get("www.mango.com", "/").await.backend(),
        Some("first")
    );

    // Editing the good route applies, though the old problem is still there.
    proxy.write_routes(&yaml(&[broken.clone(), mango(&second)]));
    wait_until("the edit of the good route to apply", DEADLINE, || async {
        proxy.get("www.mango.com", "/").await.backend() == Some("second")
    })
    .await;

    // An edit that adds a new problem is held back whole.
    let newly_broken = route("apple")
        .host("www.apple.com")
        .rule(Rule::new().backend(&third).request_timeout("soon"));
    proxy.write_routes(&yaml(&[broken, mango(&third), newly_broken]));
    hold_for(
        "the edit with a new problem to be held back",
        RELOAD_INTERVAL * 20,
        || async { proxy.get("www.mango.com", "/").await.backend() == Some("second") },
    )
    .await;
    assert_eq!(third.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_completes_during_shutdown() {
    let (slow, mut gate) = Backend::gated("slow").await;
    let mut proxy = Proxy::start(&mango_to(&slow)).await;

    let req = request(&proxy, http::Method::GET, "www.mango.com", "/slow")
        .body(empty())
        .unwrap();
    let in_flight = tokio::spawn({
        let client = proxy.client();
        async move { Reply::collect(client.request(req).await.expect("in-flight request")).await }
    });
    gate.arrived().await;

    // run() has seen the signal and is draining; only then may the backend answer.
    proxy.begin_shutdown().await;
    assert!(
        !proxy.is_stopped(),
        "run() returned while a request was still in flight"
    );
    gate.release();

    let reply = within("the in-flight response", in_flight).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "released");
    proxy
        .wait_stopped()
        .await
        .expect("run() should return Ok after draining");

    // Stopped means no longer accepting.
    let refused = tokio::net::TcpStream::connect(proxy.addr).await;
    assert!(
        refused.is_err(),
        "proxy still accepts connections after run() returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_idle_keepalive_connection_returns_promptly() {
    let echo = Backend::echo("echo").await;
    let mut proxy = Proxy::start_with(
        RoutesLayout::File(&mango_to(&echo)),
        Duration::from_secs(30),
    )
    .await;

    // An idle keep-alive connection must not hold the drain for drain_timeout.
    let mut conn = H1Conn::connect(proxy.addr).await;
    assert_eq!(conn.get("www.mango.com", "/").await.status, StatusCode::OK);

    proxy.begin_shutdown().await;
    proxy.wait_stopped().await.expect("run() should return Ok");
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_is_bounded_by_drain_timeout() {
    let hang = Backend::hang("hang").await;
    let mut proxy = Proxy::start_with(
        RoutesLayout::File(&mango_to(&hang)),
        Duration::from_millis(300),
    )
    .await;

    let req = request(&proxy, http::Method::GET, "www.mango.com", "/")
        .body(empty())
        .unwrap();
    let client = proxy.client();
    let _stuck = tokio::spawn(async move { client.request(req).await });
    wait_until("the request to reach the backend", DEADLINE, || async {
        hang.requests() == 1
    })
    .await;

    proxy.begin_shutdown().await;
    // A backend that never answers cannot hold run() past the drain timeout
    // (wait_stopped fails the test after DEADLINE).
    let _ = proxy.wait_stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_still_open_after_the_drain_timeout_are_closed() {
    // The route's request timeout is the default 60s, far past DEADLINE:
    // only the proxy closing the connection can end the stuck request.
    let hang = Backend::hang("hang").await;
    let mut proxy = Proxy::start_with(
        RoutesLayout::File(&mango_to(&hang)),
        Duration::from_millis(300),
    )
    .await;

    let mut conn = H1Conn::connect(proxy.addr).await;
    let req = http::Request::get("/")
        .header("host", "www.mango.com")
        .body(empty())
        .unwrap();
    let stuck = tokio::spawn(async move {
        let outcome = conn.send_unbounded(req).await.map(|resp| resp.status());
        (outcome, conn)
    });
    wait_until("the request to reach the backend", DEADLINE, || async {
        hang.requests() == 1
    })
    .await;

    proxy.begin_shutdown().await;
    proxy
        .wait_stopped()
        .await
        .expect("run() should return after the drain timeout");
    let (outcome, conn) = within("the stuck request to end once run() has returned", stuck)
        .await
        .unwrap();
    assert!(
        outcome.is_err() || !conn.is_open(),
        "the connection kept serving after run() returned: {outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fails_when_routes_path_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = switchyard::standalone::Options {
        routes: dir.path().join("does-not-exist.yaml"),
        reload_interval: RELOAD_INTERVAL,
        serve: switchyard::proxy::ServeOptions {
            drain_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        tls: Default::default(),
    };
    let listeners = switchyard::listeners::Listeners {
        proxy: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tls: None,
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let result = within(
        "run() to fail on a missing routes path",
        switchyard::standalone::run(opts, listeners, std::future::pending::<()>()),
    )
    .await;
    let err = result.expect_err("a missing routes path at start must be an error");
    assert!(!err.to_string().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reports_health_readiness_and_routes() {
    let mango = Backend::echo("mango").await;
    let proxy = Proxy::start(&yaml(&[
        route("mango")
            .host("www.mango.com")
            .host("*.mango.com")
            .rule(Rule::new().backend(&mango)),
        route("apple")
            .namespace("orchard")
            .host("www.apple.com")
            .rule(Rule::new().backend(&mango)),
    ]))
    .await;

    assert_eq!(
        proxy.admin_get("/healthz").await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(
        proxy.admin_get("/readyz").await.unwrap().status,
        StatusCode::OK
    );
    let routes = proxy.admin_get("/routes").await.unwrap();
    assert_eq!(routes.status, StatusCode::OK);
    let text = routes.text();
    serde_json::from_str::<serde_json::Value>(&text).expect("/routes is JSON");
    for needle in [
        "mango",
        "default",
        "www.mango.com",
        "*.mango.com",
        "apple",
        "orchard",
        "www.apple.com",
    ] {
        assert!(text.contains(needle), "/routes lacks {needle:?}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_picks_up_files_added_to_and_removed_from_a_directory() {
    let mango = Backend::echo("mango").await;
    let apple = Backend::echo("apple").await;
    let proxy = Proxy::start_dir(&[("mango.yaml", &mango_to(&mango))]).await;
    assert_eq!(
        proxy.get("www.apple.com", "/").await.status,
        StatusCode::NOT_FOUND
    );

    proxy.write_file(
        "apple.yml",
        &yaml(&[route("apple")
            .host("www.apple.com")
            .rule(Rule::new().backend(&apple))]),
    );
    wait_until("the new file's route to be served", DEADLINE, || async {
        proxy.get("www.apple.com", "/").await.status == StatusCode::OK
    })
    .await;
    assert_eq!(
        proxy.get("www.mango.com", "/").await.echo().backend,
        "mango"
    );

    std::fs::remove_file(proxy.dir().join("mango.yaml")).unwrap();
    wait_until("the removed file's route to be gone", DEADLINE, || async {
        proxy.get("www.mango.com", "/").await.status == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(
        proxy.get("www.apple.com", "/").await.echo().backend,
        "apple"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_rewrite_of_the_routes_file_is_picked_up() {
    // Editors and `cp` rewrite in place (same inode) rather than rename.
    let old = Backend::echo("old").await;
    let new = Backend::echo("new").await;
    let proxy = Proxy::start(&mango_to(&old)).await;

    std::fs::write(proxy.routes_path(), mango_to(&new)).unwrap();
    wait_until("the in-place edit to be served", DEADLINE, || async {
        proxy.get("www.mango.com", "/").await.backend() == Some("new")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_h2_request_completes_during_shutdown() {
    let (slow, mut gate) = Backend::gated("slow").await;
    let mut proxy = Proxy::start(&mango_to(&slow)).await;

    let mut conn = H2Conn::connect(proxy.addr).await;
    let in_flight = tokio::spawn(async move { conn.get("www.mango.com", "/slow").await });
    gate.arrived().await;

    proxy.begin_shutdown().await;
    assert!(
        !proxy.is_stopped(),
        "run() returned while an h2 stream was in flight"
    );
    gate.release();

    let reply = within("the in-flight h2 response", in_flight)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "released");
    proxy
        .wait_stopped()
        .await
        .expect("run() should return Ok after draining");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_streaming_response_body_completes_during_shutdown() {
    let (backend, mut bodies) = Backend::stepper("stepper").await;
    let mut proxy = Proxy::start(&mango_to(&backend)).await;

    let req = request(&proxy, http::Method::GET, "www.mango.com", "/")
        .body(empty())
        .unwrap();
    let client = proxy.client();
    let pending = tokio::spawn(async move { client.request(req).await });
    let chunks = within("request to reach the backend", bodies.recv())
        .await
        .unwrap();
    chunks
        .send(bytes::Bytes::from_static(b"head;"))
        .await
        .unwrap();
    let resp = within("response headers", pending)
        .await
        .unwrap()
        .expect("response");
    let mut body = resp.into_body();
    assert_eq!(
        &within("first chunk", read_exactly(&mut body, 5)).await[..],
        b"head;"
    );

    // Headers are out, the body is mid-stream: shutdown must let it finish.
    proxy.begin_shutdown().await;
    chunks
        .send(bytes::Bytes::from_static(b"tail"))
        .await
        .unwrap();
    drop(chunks);
    assert_eq!(
        &within("last chunk", read_exactly(&mut body, 4)).await[..],
        b"tail"
    );
    let rest = within("end of body", http_body_util::BodyExt::collect(body)).await;
    assert!(rest.expect("body completes cleanly").to_bytes().is_empty());
    proxy
        .wait_stopped()
        .await
        .expect("run() should return Ok after draining");
}

/// Lays out `dir` the way the kubelet mounts a ConfigMap volume:
/// `routes.yaml -> ..data/routes.yaml`, `..data -> ..{version}/`.
fn configmap_version(dir: &std::path::Path, version: &str, yaml: &str) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir(&versioned).unwrap();
    std::fs::write(versioned.join("routes.yaml"), yaml).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    let link = dir.join("routes.yaml");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("..data/routes.yaml", &link).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_style_symlinked_directory_loads_and_reloads_on_swap() {
    let first = Backend::echo("first").await;
    let second = Backend::echo("second").await;
    let first_yaml = mango_to(&first);
    let prepare = |dir: &std::path::Path| {
        configmap_version(dir, "v1", &first_yaml);
        dir.to_path_buf()
    };
    let proxy = Proxy::start_with(RoutesLayout::Prepared(&prepare), Duration::from_secs(5)).await;
    assert_eq!(
        proxy.get("www.mango.com", "/").await.echo().backend,
        "first"
    );

    // The kubelet's update: a new versioned dir, then an atomic swap of ..data.
    configmap_version(proxy.dir(), "v2", &mango_to(&second));
    std::fs::remove_dir_all(proxy.dir().join("..v1")).unwrap();
    wait_until(
        "the swapped ConfigMap version to be served",
        DEADLINE,
        || async { proxy.get("www.mango.com", "/").await.backend() == Some("second") },
    )
    .await;
}

// === bad route files: each refused alone, the good ones served ===

/// A duration no clock can add (`u64::MAX` seconds).
const HUGE: &str = "18446744073709551615s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_too_long_for_the_clock_is_refused_and_the_other_routes_serve() {
    let good = Backend::echo("good").await;
    let other = Backend::echo("other").await;
    let huge = yaml(&[
        route("total").host("www.total.com").rule(
            Rule::new()
                .backend(&other)
                .field("timeouts", &format!("{{total: {HUGE}}}")),
        ),
        route("interval").host("www.interval.com").rule(
            Rule::new()
                .backend(&other)
                .field("healthCheck", &format!("{{interval: {HUGE}, timeout: 1s}}")),
        ),
    ]);
    let proxy = Proxy::start_dir(&[("good.yaml", &mango_to(&good)), ("huge.yaml", &huge)]).await;

    assert_eq!(
        proxy.get("www.mango.com", "/").await.backend(),
        Some("good")
    );
    for host in ["www.total.com", "www.interval.com"] {
        let reply = proxy.get(host, "/").await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{host}: the route is refused"
        );
    }
    assert_eq!(other.requests(), 0);
    // The workers survived: the good route still serves.
    assert_eq!(
        proxy.get("www.mango.com", "/").await.backend(),
        Some("good")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_nested_too_deep_is_refused_unparsed_and_the_good_file_serves() {
    let good = Backend::echo("good").await;
    // Without the pre-scan the YAML parser spends minutes on this file
    // (its time grows with the square of the depth) and the proxy never
    // becomes ready.
    let deep = "{a: [".repeat(100_000);
    let proxy = Proxy::start_dir(&[("deep.yaml", &deep), ("good.yaml", &mango_to(&good))]).await;
    assert_eq!(
        proxy.get("www.mango.com", "/").await.backend(),
        Some("good")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_route_file_keeps_serving_until_its_new_contents_are_written() {
    let old = Backend::echo("old").await;
    let new = Backend::echo("new").await;
    let proxy = Proxy::start(&mango_to(&old)).await;
    assert_eq!(proxy.get("www.mango.com", "/").await.backend(), Some("old"));

    // An editor or a script that truncates the file, then writes it.
    let path = proxy.routes_path().to_path_buf();
    std::fs::File::create(&path).expect("truncate routes.yaml");
    hold_for(
        "www.mango.com to keep reaching the old backend while the file is empty",
        RELOAD_INTERVAL * 10,
        || async {
            let reply = proxy.get("www.mango.com", "/").await;
            reply.status == StatusCode::OK && reply.backend() == Some("old")
        },
    )
    .await;

    std::fs::write(&path, mango_to(&new)).expect("write routes.yaml");
    wait_until("the new contents to be served", DEADLINE, || async {
        proxy.get("www.mango.com", "/").await.backend() == Some("new")
    })
    .await;
}
