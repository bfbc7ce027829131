//! Plain HTTP and HTTPS side by side: routes with `tls` redirect plain
//! HTTP with 308 (the ACME path exempt, `httpsRedirect: false` opting
//! out, nothing redirected without a TLS listener), and send HSTS over
//! HTTPS only, when asked to.

mod support;

use http::StatusCode;
use switchyard::snapshot::TlsSettings;

use support::*;

/// One route `shop.example.test` with `spec.tls` written as `tls` (flow
/// YAML), its certificate, and its echo backend.
struct Shop {
    pki: Pki,
    backend: Backend,
    text: String,
}

impl Shop {
    async fn new(tls: &str) -> Shop {
        let pki = Pki::new("redirect CA");
        let backend = Backend::echo("shop").await;
        let text = documents(&[
            yaml(&[route("shop")
                .host("shop.example.test")
                .tls_spec(tls)
                .rule(Rule::new().backend(&backend))]),
            pki.leaf(&["shop.example.test"])
                .secret("default", "shop-cert"),
        ]);
        Shop { pki, backend, text }
    }

    async fn proxy(&self, redirect_port: u16) -> Proxy {
        let tls = TlsSettings {
            redirect_port,
            ..TlsSettings::default()
        };
        Proxy::start_tls(RoutesLayout::File(&self.text), tls).await
    }

    /// GET over HTTPS (HTTP/1.1) to `shop.example.test`.
    async fn https_get(&self, proxy: &Proxy, path: &str) -> Reply {
        let client = TlsClient::h1(&self.pki, "shop.example.test");
        let mut h1 = client.must_connect(proxy.tls()).await.h1().await;
        h1.get("shop.example.test", path).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_tls_route_is_redirected_with_308_to_the_https_port() {
    let shop = Shop::new("{secretName: shop-cert}").await;
    let proxy = shop.proxy(8443).await;

    for host in ["shop.example.test", "shop.example.test:8080"] {
        let reply = proxy.get(host, "/a/b?x=1&y=2").await;
        assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT, "Host {host}");
        assert_eq!(
            reply.header("location"),
            Some("https://shop.example.test:8443/a/b?x=1&y=2"),
            "Host {host}"
        );
    }
    assert_eq!(shop.backend.requests(), 0, "a redirect is not proxied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_leaves_port_443_out_of_the_location() {
    let shop = Shop::new("{secretName: shop-cert}").await;
    let proxy = shop.proxy(443).await;

    let reply = proxy.get("shop.example.test", "/cart").await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        reply.header("location"),
        Some("https://shop.example.test/cart")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_challenges_are_proxied_not_redirected() {
    let shop = Shop::new("{secretName: shop-cert}").await;
    let proxy = shop.proxy(443).await;

    let path = "/.well-known/acme-challenge/abc123";
    let echo = proxy.get("shop.example.test", path).await.echo();
    assert_eq!(echo.uri, path);
    // Only that prefix: its parent is redirected.
    let reply = proxy.get("shop.example.test", "/.well-known/other").await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_false_proxies_plain_http() {
    let shop = Shop::new("{secretName: shop-cert, httpsRedirect: false}").await;
    let proxy = shop.proxy(443).await;

    let echo = proxy.get("shop.example.test", "/cart").await.echo();
    assert_eq!(echo.backend, "shop");
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_tls_listener_nothing_is_redirected() {
    let shop = Shop::new("{secretName: shop-cert}").await;
    let proxy = Proxy::start(&shop.text).await;

    let echo = proxy.get("shop.example.test", "/cart").await.echo();
    assert_eq!(echo.backend, "shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_over_https_with_the_configured_max_age() {
    let shop = Shop::new("{secretName: shop-cert, hsts: {maxAgeSeconds: 600}}").await;
    let proxy = shop.proxy(443).await;

    let reply = shop.https_get(&proxy, "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=600")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_defaults_to_a_year_and_can_include_subdomains() {
    let shop = Shop::new("{secretName: shop-cert, hsts: {includeSubDomains: true}}").await;
    let proxy = shop.proxy(443).await;

    let reply = shop.https_get(&proxy, "/").await;
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_never_sent_over_plain_http() {
    let shop = Shop::new("{secretName: shop-cert, hsts: {maxAgeSeconds: 600}}").await;
    let proxy = shop.proxy(443).await;

    let redirect = proxy.get("shop.example.test", "/").await;
    assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(redirect.header("strict-transport-security"), None);
    let acme = proxy
        .get("shop.example.test", "/.well-known/acme-challenge/t")
        .await;
    assert_eq!(acme.status, StatusCode::OK);
    assert_eq!(acme.header("strict-transport-security"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_absent_when_the_route_does_not_ask_for_it() {
    let shop = Shop::new("{secretName: shop-cert}").await;
    let proxy = shop.proxy(443).await;

    let reply = shop.https_get(&proxy, "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("strict-transport-security"), None);
}
