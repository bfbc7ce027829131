//! Request policy through the real proxy: firewall (with the client address
//! behind trusted proxies), rate limits, body limits, rewrites, header and
//! query changes, redirects and response headers — asserted on what the
//! backend actually received and what the client got back.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use support::*;

const TRUST_LOOPBACK: &[&str] = &["127.0.0.1/32"];

/// GET `path` with `Host: host` and these extra headers.
async fn get_with(proxy: &Proxy, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = request(proxy, Method::GET, host, path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    proxy.send(req.body(empty()).unwrap()).await
}

/// GET `/` as if from `client`, through a trusted proxy (the test itself on
/// 127.0.0.1) that appended it to X-Forwarded-For.
async fn get_from(proxy: &Proxy, host: &str, path: &str, client: &str) -> Reply {
    get_with(proxy, host, path, &[("x-forwarded-for", client)]).await
}

fn assert_refused(reply: &Reply, want: StatusCode, what: &str) {
    assert_eq!(reply.status, want, "{what}: body {:?}", reply.text());
    assert!(reply.backend().is_none(), "{what}: the proxy must answer");
    assert!(!reply.body.is_empty(), "{what}: a short body is expected");
}

// === firewall ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_refuses_a_denied_client_and_serves_another_behind_a_trusted_proxy() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start_trusting(
        &yaml(&[route("app").host("www.mango.com").rule(
            Rule::new()
                .backend(&backend)
                .field("firewall", "{deny: [10.192.0.0/16]}"),
        )]),
        TRUST_LOOPBACK,
    )
    .await;

    let refused = get_from(&proxy, "www.mango.com", "/", "10.192.0.1").await;
    assert_refused(&refused, StatusCode::FORBIDDEN, "client 10.192.0.1");
    assert_eq!(
        backend.requests(),
        0,
        "a refused request never goes upstream"
    );

    let served = get_from(&proxy, "www.mango.com", "/", "55.55.55.55").await;
    let echo = served.echo();
    assert_eq!(
        echo.header("x-forwarded-for"),
        Some("55.55.55.55, 127.0.0.1"),
        "X-Forwarded-For still gets the socket peer appended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_an_untrusted_peer_cannot_spoof_the_firewall() {
    let backend = Backend::echo("app").await;
    let routes = yaml(&[route("app").rule(Rule::new().backend(&backend).field(
        "firewall",
        "{allow: [55.55.55.55/32], deny: [10.192.0.0/16]}",
    ))]);

    // Nothing trusted: the client is the socket peer, 127.0.0.1, whatever
    // X-Forwarded-For says.
    let untrusting = Proxy::start(&routes).await;
    let reply = get_from(&untrusting, "x", "/", "55.55.55.55").await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "spoofed allowed address");

    // Trusted proxy: entries the client wrote sit left of the hop the
    // trusted proxy appended, so only the right-most untrusted one counts.
    let trusting = Proxy::start_trusting(&routes, TRUST_LOOPBACK).await;
    let reply = get_from(&trusting, "x", "/", "55.55.55.55, 10.192.0.1").await;
    assert_refused(
        &reply,
        StatusCode::FORBIDDEN,
        "spoofed entry left of a denied client",
    );
    let reply = get_from(&trusting, "x", "/", "10.192.0.1, 55.55.55.55").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(backend.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_allow_and_deny_take_ipv6_cidrs() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start_trusting(
        &yaml(&[route("app").rule(Rule::new().backend(&backend).field(
            "firewall",
            r#"{allow: ["2001:db8::/32", 10.0.0.0/8], deny: ["2001:db8:bad::/48"]}"#,
        ))]),
        TRUST_LOOPBACK,
    )
    .await;

    for (client, want) in [
        ("2001:db8::1", StatusCode::OK),
        ("[2001:db8:1::7]:4711", StatusCode::OK),
        ("10.1.2.3", StatusCode::OK),
        ("2001:db8:bad::1", StatusCode::FORBIDDEN),
        ("2001:db9::1", StatusCode::FORBIDDEN),
        ("55.55.55.55", StatusCode::FORBIDDEN),
    ] {
        let reply = get_from(&proxy, "x", "/", client).await;
        assert_eq!(reply.status, want, "client {client}: {}", reply.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_path_is_refused_while_another_path_on_the_same_host_is_served() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app").host("www.mango.com").rule(
        Rule::new()
            .backend(&backend)
            .field("firewall", "{denyPaths: [/messages]}"),
    )]))
    .await;

    for path in [
        "/messages",
        "/messages/",
        "/messages/42",
        "/pictures/../messages",
        "//messages",
        "/%6Dessages/1",
    ] {
        let reply = proxy.get("www.mango.com", path).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, path);
    }
    for path in ["/pictures", "/pictures/cat.png", "/messagesx"] {
        let reply = proxy.get("www.mango.com", path).await;
        assert_eq!(reply.echo().uri, path);
    }
}

/// The tricks that reach a denied file on some origin: Python's WSGI and
/// nginx decode `%2F`; Windows servers split on `\`; Tomcat drops `;params`
/// (the nginx+Tomcat `/..;/` bypass); Go and Node keep `;` and `%2F` as
/// plain characters, so a path that only *looks* like it leaves the
/// prefix stays in it there.
const DENY_PATH_BYPASSES: &[&str] = &[
    "/admin%2fsecret.txt",
    "/admin%2Fsecret.txt",
    "/x/..%2fadmin/secret.txt",
    "/x/..%2Fadmin",
    "/x%2f..%2fadmin/secret.txt",
    "/admin%5csecret.txt",
    "/x/..%5Cadmin/secret.txt",
    "/x/..\\admin/secret.txt",
    "/admin\\secret.txt",
    "/admin;x",
    "/admin;jsessionid=1/secret.txt",
    "/..;/admin/secret.txt",
    "/x/..;/admin/secret.txt",
    "/x/%2e%2e;/admin",
    "/admin/..;/public",
    "/admin/x%2f..%2f..%2fpublic",
    "/admin/a%2f..%2f../../secret.txt",
    "/admin/x\\..\\..\\public",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_paths_cannot_be_reached_with_encoded_slashes_backslashes_or_path_parameters() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app").host("www.mango.com").rule(
        Rule::new()
            .backend(&backend)
            .field("firewall", "{denyPaths: [/admin]}"),
    )]))
    .await;

    // Raw bytes: the path reaches the proxy exactly as written.
    for path in DENY_PATH_BYPASSES {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: www.mango.com\r\nConnection: close\r\n\r\n");
        let status = raw_status(proxy.addr, request.as_bytes()).await;
        assert_eq!(status, Some(403), "{path} must be refused");
    }
    assert_eq!(backend.requests(), 0, "a bypass reached the backend");

    // Innocent paths with the same characters elsewhere pass, unchanged.
    for path in [
        "/docs/my%20file.txt",
        "/shop;jsessionid=1/cart",
        "/api/projects/group%2Fadministration",
        "/public/..;x/admin-guide",
        "/files/a%5Cb",
        "/administrator;x",
    ] {
        let reply = proxy.get("www.mango.com", path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.text());
        assert_eq!(reply.echo().uri, path, "{path} is forwarded as sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_path_too_costly_to_judge_every_way_is_refused_where_paths_are_denied() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[
        route("guarded").host("www.mango.com").rule(
            Rule::new()
                .backend(&backend)
                .field("firewall", "{denyPaths: [/admin]}"),
        ),
        route("open")
            .host("open.mango.com")
            .rule(Rule::new().backend(&backend)),
    ]))
    .await;
    // Every trick at once, 4 KiB long: 32 readings of it are too many.
    let tricky = format!("/docs/{}%2f;x\\y//z", "a".repeat(4096));
    let plain = format!("/docs/{}", "a".repeat(4096));
    let get = |host: &str, path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let status = |host: &'static str, path: String| {
        let request = get(host, &path);
        async move { raw_status(proxy.addr, request.as_bytes()).await }
    };
    assert_eq!(status("www.mango.com", tricky.clone()).await, Some(403));
    assert_eq!(status("www.mango.com", plain).await, Some(200));
    assert_eq!(
        status("open.mango.com", tricky).await,
        Some(200),
        "no denyPaths, no cost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_regex_and_method_rules_refuse_matching_requests() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app").rule(Rule::new().backend(&backend).field(
        "firewall",
        r#"{denyHeaders: [{name: User-Agent, type: RegularExpression, value: "BadBot.*"}, {name: x-block, value: "yes"}], methods: [GET, HEAD]}"#,
    ))]))
    .await;

    let bad = get_with(&proxy, "x", "/", &[("user-agent", "BadBot/2.1")]).await;
    assert_refused(&bad, StatusCode::FORBIDDEN, "BadBot user agent");
    let exact = get_with(&proxy, "x", "/", &[("x-block", "yes")]).await;
    assert_refused(&exact, StatusCode::FORBIDDEN, "exact header value");
    let good = get_with(
        &proxy,
        "x",
        "/",
        &[("user-agent", "GoodBrowser/1.0 BadBot")],
    )
    .await;
    assert_eq!(
        good.status,
        StatusCode::OK,
        "the regex matches the whole value"
    );
    let post = proxy
        .send(
            request(&proxy, Method::POST, "x", "/")
                .body(full("x"))
                .unwrap(),
        )
        .await;
    assert_refused(&post, StatusCode::FORBIDDEN, "POST not in methods");
    assert_eq!(backend.requests(), 1);
}

// === request changes ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_query_rules_change_what_the_backend_receives() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app").rule(
        Rule::new()
            .backend(&backend)
            .field(
                "requestHeaders",
                "{add: {MyCustomHeader: Test}, set: {X-Env: prod}, remove: [X-Remove-Me]}",
            )
            .field(
                "queryParams",
                "{add: {MyCustomParam: Test}, remove: [RemoveMe]}",
            ),
    )]))
    .await;

    let reply = get_with(
        &proxy,
        "x",
        "/search?q=1&RemoveMe=yes",
        &[("x-remove-me", "secret"), ("x-env", "dev"), ("x-kept", "1")],
    )
    .await;
    let echo = reply.echo();
    assert_eq!(echo.header("mycustomheader"), Some("Test"));
    assert_eq!(echo.header("x-remove-me"), None);
    assert_eq!(echo.header("x-env"), Some("prod"));
    assert_eq!(echo.header("x-kept"), Some("1"));
    assert_eq!(echo.uri, "/search?q=1&MyCustomParam=Test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_remove_the_rules_request_headers_by_naming_them_in_connection() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app").rule(
        Rule::new().backend(&backend).field(
            "requestHeaders",
            "{set: {X-Env: prod}, add: {X-Added: yes}}",
        ),
    )]))
    .await;

    // Hop-by-hop headers (and those `Connection` names) are the client's
    // connection's, stripped first; the rule applies to what is left.
    let reply = get_with(
        &proxy,
        "x",
        "/",
        &[
            ("connection", "x-env, x-added, x-client"),
            ("x-client", "1"),
        ],
    )
    .await;
    let echo = reply.echo();
    assert_eq!(echo.header("x-env"), Some("prod"));
    assert_eq!(echo.header("x-added"), Some("yes"));
    assert_eq!(echo.header("x-client"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_rewrites_change_the_path_the_backend_receives() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[
        route("prefix").host("prefix.test").rule(
            Rule::prefix("/v1")
                .backend(&backend)
                .field("rewrite", "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}"),
        ),
        route("full").host("full.test").rule(
            Rule::new()
                .backend(&backend)
                .field("rewrite", "{path: {type: ReplaceFullPath, replaceFullPath: /maintenance}}"),
        ),
        route("regex").host("regex.test").rule(Rule::new().backend(&backend).field(
            "rewrite",
            r#"{path: {type: RegularExpression, pattern: "^/users/([0-9]+)/?$", substitution: "/v2/user-$1"}}"#,
        )),
    ]))
    .await;

    for (host, path, want) in [
        ("prefix.test", "/v1", "/v2"),
        ("prefix.test", "/v1/users?page=2", "/v2/users?page=2"),
        ("full.test", "/anything/at/all?x=1", "/maintenance?x=1"),
        ("regex.test", "/users/42", "/v2/user-42"),
        ("regex.test", "/other", "/other"),
    ] {
        let reply = proxy.get(host, path).await;
        assert_eq!(reply.echo().uri, want, "{host}{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_rewrites_send_a_fixed_host_or_the_backend_address() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[
        route("fixed")
            .host("fixed.test")
            .rule(Rule::new().backend(&backend).field(
                "rewrite",
                "{host: {type: Hostname, hostname: api.internal}}",
            )),
        route("addr").host("addr.test").rule(
            Rule::new()
                .backend(&backend)
                .field("rewrite", "{host: {type: BackendAddress}}"),
        ),
    ]))
    .await;

    let echo = proxy.get("fixed.test", "/").await.echo();
    assert_eq!(echo.header("host"), Some("api.internal"));
    assert_eq!(echo.header("x-forwarded-host"), Some("fixed.test"));
    let echo = proxy.get("addr.test", "/").await.echo();
    assert_eq!(echo.header("host"), Some(backend.address().as_str()));
}

// === redirects ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_answer_with_each_status_and_location() {
    let mut docs = Vec::new();
    for code in [301, 302, 303, 307, 308] {
        docs.push(route(&format!("r{code}")).host(&format!("r{code}.test")).rule(
            Rule::prefix("/old").no_backends().field(
                "redirect",
                &format!(
                    "{{scheme: https, hostname: new.test, path: {{type: ReplacePrefixMatch, replacePrefixMatch: /new}}, statusCode: {code}}}"
                ),
            ),
        ));
    }
    docs.push(
        route("default")
            .host("http.test")
            .rule(Rule::new().field("redirect", "{scheme: https}")),
    );
    docs.push(route("port").host("port.test").rule(Rule::new().field(
        "redirect",
        "{port: 8443, path: {type: ReplaceFullPath, replaceFullPath: /moved}}",
    )));
    let proxy = Proxy::start(&yaml(&docs)).await;

    for code in [301, 302, 303, 307, 308] {
        let reply = proxy.get(&format!("r{code}.test"), "/old/page?a=1").await;
        assert_eq!(reply.status.as_u16(), code, "{}", reply.text());
        assert_eq!(
            reply.header("location"),
            Some("https://new.test/new/page?a=1")
        );
    }
    let reply = proxy.get("http.test:8080", "/x?y").await;
    assert_eq!(reply.status, StatusCode::FOUND, "302 by default");
    assert_eq!(
        reply.header("location"),
        Some("https://http.test/x?y"),
        "HTTP to HTTPS drops the old port for the scheme's own"
    );
    let reply = proxy.get("port.test:8080", "/x").await;
    assert_eq!(
        reply.header("location"),
        Some("http://port.test:8443/moved")
    );
}

// === rate limits ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after_then_recovers() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app").rule(
        Rule::new().backend(&backend).field(
            "rateLimit",
            "{requestsPerSecond: 1, burst: 2, key: {type: Header, header: x-api-key}}",
        ),
    )]))
    .await;
    let key = |k: &'static str| [("x-api-key", k)];

    for i in 0..2 {
        let reply = get_with(&proxy, "x", "/", &key("alice")).await;
        assert_eq!(reply.status, StatusCode::OK, "burst request {i}");
    }
    let limited = get_with(&proxy, "x", "/", &key("alice")).await;
    assert_refused(&limited, StatusCode::TOO_MANY_REQUESTS, "third request");
    assert_eq!(limited.header("retry-after"), Some("1"));
    let other = get_with(&proxy, "x", "/", &key("bob")).await;
    assert_eq!(other.status, StatusCode::OK, "each key has its own bucket");

    // One token refills within a second; poll with a deadline.
    wait_until(
        "alice is admitted again",
        Duration::from_secs(5),
        || async { get_with(&proxy, "x", "/", &key("alice")).await.status == StatusCode::OK },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_client_address_uses_the_derived_client() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start_trusting(
        &yaml(&[route("app").rule(
            Rule::new()
                .backend(&backend)
                .field("rateLimit", "{requestsPerSecond: 1, burst: 1}"),
        )]),
        TRUST_LOOPBACK,
    )
    .await;
    assert_eq!(
        get_from(&proxy, "x", "/", "1.1.1.1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&proxy, "x", "/", "1.1.1.1").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get_from(&proxy, "x", "/", "2.2.2.2").await.status,
        StatusCode::OK
    );
}

// === body limits ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_is_413_declared_or_streamed() {
    let backend = Backend::upload_counter("app").await;
    let proxy = Proxy::start(&yaml(&[
        route("app").rule(Rule::new().backend(&backend).field("maxBodySize", "1Ki"))
    ]))
    .await;
    let post = |body: TestBody| {
        request(&proxy, Method::POST, "x", "/upload")
            .body(body)
            .unwrap()
    };

    // Content-Length over the limit: refused before any backend is contacted.
    let reply = proxy.send(post(RepeatBody::boxed(4096))).await;
    assert_refused(&reply, StatusCode::PAYLOAD_TOO_LARGE, "declared 4096 bytes");
    assert_eq!(backend.requests(), 0);

    // At the limit: served.
    let reply = proxy.send(post(RepeatBody::boxed(1024))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "1024");

    // Streamed without a length: 413 as soon as the count passes the
    // limit, while the client is still sending (the sender stays open).
    let (tx, body) = body_channel();
    tx.send(Bytes::from_static(&[b'a'; 600])).await.unwrap();
    let response = tokio::spawn({
        let client = proxy.client();
        let req = post(body);
        async move { client.request(req).await }
    });
    tx.send(Bytes::from_static(&[b'b'; 600])).await.unwrap();
    let response = within("the 413 while the body is still open", response)
        .await
        .unwrap()
        .expect("a response, not a connection error");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    drop(tx);
}

// === response changes ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_rules_change_what_the_client_receives() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[route("app").rule(Rule::new().backend(&backend).field(
        "responseHeaders",
        "{set: {Content-Type: text/x-test, X-Frame-Options: DENY}, add: {X-Extra: '1'}, remove: [X-Echo-Method]}",
    ))]))
    .await;

    let reply = proxy.get("x", "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("text/x-test"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(reply.header("x-extra"), Some("1"));
    assert_eq!(reply.header("x-echo-method"), None);
    assert_eq!(reply.backend(), Some("app"), "other headers are untouched");
}

// === invalid policies ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_policies_are_reported_by_field_while_the_rest_of_the_table_serves() {
    let backend = Backend::echo("good").await;
    let proxy = Proxy::start(&yaml(&[
        route("bad").host("bad.test").rule(
            Rule::prefix("/")
                .backend(&backend)
                .field("firewall", r#"{allow: [10.0.0.0/8, "10.0.0.300/8"], denyHeaders: [{name: user-agent, type: RegularExpression, value: "(unclosed"}]}"#)
                .field("requestHeaders", r#"{set: {"Bad Header": x}}"#)
                .field("maxBodySize", "10MB"),
        ),
        route("good")
            .host("good.test")
            .rule(Rule::new().backend(&backend).field("firewall", "{denyPaths: [/admin]}")),
    ]))
    .await;

    assert_eq!(proxy.get("good.test", "/").await.status, StatusCode::OK);
    assert_eq!(
        proxy.get("good.test", "/admin").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        proxy.get("bad.test", "/").await.status,
        StatusCode::NOT_FOUND
    );

    let routes: serde_json::Value =
        serde_json::from_slice(&proxy.admin_get("/routes").await.unwrap().body).unwrap();
    let bad = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "bad")
        .expect("bad route listed");
    assert_eq!(bad["status"]["reason"], "Invalid");
    let errors: Vec<(String, String)> = bad["status"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.rules[0].firewall.allow[1]",
            "spec.rules[0].firewall.denyHeaders[0].value",
            "spec.rules[0].requestHeaders.set.Bad Header",
            "spec.rules[0].maxBodySize",
        ],
        "{errors:#?}"
    );
    assert!(
        errors[0].1.contains("\"10.0.0.300/8\" is not a CIDR"),
        "{errors:#?}"
    );
    assert!(
        errors[1].1.contains("is not a valid regular expression"),
        "{errors:#?}"
    );
    assert!(
        errors[2].1.contains("not a valid header name"),
        "{errors:#?}"
    );
    let good = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "good")
        .unwrap();
    assert_eq!(
        good["spec"]["rules"][0]["firewall"]["denyPaths"][0], "/admin",
        "policies appear in /routes"
    );
}

// === phase order ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_run_firewall_then_rate_limit_then_body_limit_then_redirect() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[
        route("limited").host("limited.test").rule(
            Rule::new()
                .backend(&backend)
                .field("firewall", "{denyPaths: [/blocked]}")
                .field(
                    "rateLimit",
                    "{requestsPerSecond: 1, burst: 1, key: {type: Route}}",
                )
                .field("maxBodySize", "16"),
        ),
        route("moved").host("moved.test").rule(
            Rule::new()
                .field("firewall", "{denyPaths: [/blocked]}")
                .field("redirect", "{scheme: https}"),
        ),
    ]))
    .await;
    let post = |path: &str, len: u64| {
        request(&proxy, Method::POST, "limited.test", path)
            .body(RepeatBody::boxed(len))
            .unwrap()
    };

    // Refused by the firewall: no rate budget is spent.
    for _ in 0..3 {
        let reply = proxy.send(post("/blocked", 64)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    // The one token is spent on a request the body limit then refuses...
    assert_eq!(
        proxy.send(post("/", 64)).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // ...so the next is rate limited before its body is looked at.
    assert_eq!(
        proxy.send(post("/", 64)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(backend.requests(), 0);

    // The firewall runs before a redirect.
    assert_eq!(
        proxy.get("moved.test", "/blocked").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        proxy.get("moved.test", "/open").await.status,
        StatusCode::FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_clients_get_the_same_policies() {
    let backend = Backend::echo("app").await;
    let proxy = Proxy::start(&yaml(&[
        route("app").host("www.mango.com").rule(
            Rule::prefix("/v1")
                .backend(&backend)
                .field(
                    "rewrite",
                    "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}",
                )
                .field("requestHeaders", "{add: {MyCustomHeader: Test}}")
                .field("maxBodySize", "1Ki"),
        ),
        route("moved")
            .host("old.mango.com")
            .rule(Rule::new().field("redirect", "{hostname: www.mango.com, statusCode: 308}")),
    ]))
    .await;
    let mut h2 = H2Conn::connect(proxy.addr).await;

    let echo = h2.get("www.mango.com", "/v1/x").await.echo();
    assert_eq!(echo.uri, "/v2/x");
    assert_eq!(echo.header("mycustomheader"), Some("Test"));

    let reply = h2.get("old.mango.com:8080", "/a").await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        reply.header("location"),
        Some("http://www.mango.com:8080/a")
    );

    let (tx, body) = body_channel();
    tx.send(Bytes::from_static(&[b'a'; 2048])).await.unwrap();
    let req = http::Request::post("http://www.mango.com/v1/upload")
        .body(body)
        .unwrap();
    let reply = h2.send(req).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    drop(tx);
}
