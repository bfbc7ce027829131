//! TLS to backends (`protocol: HTTPS`): verified against a CA bundle from
//! a ConfigMap or a Secret, or the system roots, with the name to verify;
//! ALPN picks HTTP/2 or HTTP/1.1; a wrong CA or name is a quick 502; and
//! skipping verification works and is reported.

mod support;

use std::time::Duration;

use http::StatusCode;
use switchyard::proxy::ServeOptions;

use support::*;

const NAME: &str = "api.test";

/// A TLS backend with a certificate for `api.test` from `pki`, offering
/// these ALPN protocols.
async fn tls_backend(pki: &Pki, alpn: &[&[u8]]) -> H2Backend {
    let options = H2Options {
        tls: Some((pki.leaf(&[NAME]), alpn.iter().map(|p| p.to_vec()).collect())),
        ..H2Options::default()
    };
    H2Backend::start("tls", options).await
}

/// Routes to `backend` over HTTPS with these `tls` fields, and `extra`
/// documents (CA bundles).
fn https_routes(backend: &H2Backend, tls: &str, extra: &[String]) -> String {
    let fields = format!("protocol: HTTPS, tls: {{{tls}}}");
    let rule = Rule::new().backend_with(&backend.backend, &fields);
    let mut docs = vec![yaml(&[route("mango").rule(rule)])];
    docs.extend_from_slice(extra);
    documents(&docs)
}

fn with_configmap_ca() -> &'static str {
    "caCertificateRefs: [{kind: ConfigMap, name: api-ca}], hostname: api.test"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_backend_verified_against_a_configmap_ca_gets_http2() {
    let pki = Pki::new("backend CA");
    let backend = tls_backend(&pki, &[b"h2", b"http/1.1"]).await;
    let ca = ca_config_map("default", "api-ca", &pki.ca_pem());
    let proxy = Proxy::start(&https_routes(&backend, with_configmap_ca(), &[ca])).await;
    for _ in 0..20 {
        let reply = proxy.get("www.mango.com", "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-seen-version"), Some("HTTP/2.0"));
    }
    assert_eq!(backend.connections(), 1, "one TLS connection, shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_backend_verified_against_a_secret_ca() {
    let pki = Pki::new("backend CA");
    let backend = tls_backend(&pki, &[b"h2", b"http/1.1"]).await;
    let ca = ca_secret("default", "api-ca", &pki.ca_pem());
    let tls = "caCertificateRefs: [{kind: Secret, name: api-ca}], hostname: api.test";
    let proxy = Proxy::start(&https_routes(&backend, tls, &[ca])).await;
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_only_tls_backend_is_spoken_to_in_http1_and_reused() {
    let pki = Pki::new("backend CA");
    let backend = tls_backend(&pki, &[b"http/1.1"]).await;
    let ca = ca_config_map("default", "api-ca", &pki.ca_pem());
    let proxy = Proxy::start(&https_routes(&backend, with_configmap_ca(), &[ca])).await;
    for _ in 0..20 {
        let reply = proxy.get("www.mango.com", "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-seen-version"), Some("HTTP/1.1"));
    }
    assert_eq!(backend.connections(), 1, "the TLS connection is pooled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_certificate_from_another_ca_is_a_bad_gateway() {
    let (trusted, other) = (Pki::new("trusted CA"), Pki::new("other CA"));
    let backend = tls_backend(&other, &[b"h2"]).await;
    let ca = ca_config_map("default", "api-ca", &trusted.ca_pem());
    let proxy = Proxy::start(&https_routes(&backend, with_configmap_ca(), &[ca])).await;
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(reply.text().contains("TLS"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_certificate_for_another_name_is_a_bad_gateway() {
    let pki = Pki::new("backend CA");
    let backend = tls_backend(&pki, &[b"h2"]).await;
    let ca = ca_config_map("default", "api-ca", &pki.ca_pem());
    let tls = "caCertificateRefs: [{kind: ConfigMap, name: api-ca}], hostname: other.test";
    let proxy = Proxy::start(&https_routes(&backend, tls, &[ca])).await;
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
}

/// The proxy with `roots` as its system trust store.
async fn proxy_with_system_roots(yaml: &str, roots: rustls::RootCertStore) -> Proxy {
    let serve = ServeOptions {
        drain_timeout: Duration::from_secs(5),
        upstream_roots: Some(std::sync::Arc::new(roots)),
        ..ServeOptions::default()
    };
    Proxy::start_serving(RoutesLayout::File(yaml), serve).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ca_the_system_roots_verify_the_backend() {
    let (pki, other) = (Pki::new("public CA"), Pki::new("unrelated CA"));
    let backend = tls_backend(&pki, &[b"h2"]).await;
    let yaml = https_routes(&backend, "hostname: api.test", &[]);
    let proxy = proxy_with_system_roots(&yaml, pki.roots()).await;
    assert_eq!(proxy.get("www.mango.com", "/").await.status, StatusCode::OK);
    let proxy = proxy_with_system_roots(&yaml, other.roots()).await;
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_GATEWAY,
        "verification stays on without a CA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_verify_connects_and_the_status_warns() {
    let backend = tls_backend(&Pki::new("self-signed"), &[b"h2"]).await;
    let yaml = https_routes(&backend, "insecureSkipVerify: true", &[]);
    let proxy = Proxy::start(&yaml).await;
    let reply = proxy.get("www.mango.com", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let status = proxy.route_status("default", "mango").await;
    // `/routes` shows each condition like `resolved_refs`.
    let verified = &status["backend_tls"];
    assert_eq!(verified["reason"], "InsecureSkipVerify", "{status}");
    assert!(
        verified["status"] == false || verified["status"] == "False",
        "{status}"
    );
}
