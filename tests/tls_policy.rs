//! Which requests a TLS connection may carry, and who the client is:
//! HTTP/2 coalescing across hosts that share a certificate, 421 for a host
//! that needs another one, and client certificates (mTLS) required or
//! optional, with the verified subject passed on in a header no client can
//! forge.

mod support;

use http::StatusCode;
use switchyard::snapshot::{ClientAuth, TlsSettings};

use support::*;

// === coalescing and 421 ===

/// `a.example.test` and `b.example.test` share one Secret (SAN
/// `*.example.test`); `c.example.test` has its own certificate.
struct Coalesce {
    pki: Pki,
    proxy: Proxy,
    _backends: [Backend; 3],
}

impl Coalesce {
    async fn start() -> Coalesce {
        let pki = Pki::new("coalescing CA");
        let backends = [
            Backend::echo("a").await,
            Backend::echo("b").await,
            Backend::echo("c").await,
        ];
        let [a, b, c] = &backends;
        let text = documents(&[
            yaml(&[
                route("a")
                    .host("a.example.test")
                    .tls("shared")
                    .rule(Rule::new().backend(a)),
                route("b")
                    .host("b.example.test")
                    .tls("shared")
                    .rule(Rule::new().backend(b)),
                route("c")
                    .host("c.example.test")
                    .tls("c-cert")
                    .rule(Rule::new().backend(c)),
            ]),
            pki.leaf(&["*.example.test"]).secret("default", "shared"),
            pki.leaf(&["c.example.test"]).secret("default", "c-cert"),
        ]);
        let proxy = Proxy::start_tls(RoutesLayout::File(&text), TlsSettings::default()).await;
        Coalesce {
            pki,
            proxy,
            _backends: backends,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_h2_connection_serves_two_hosts_sharing_a_wildcard_certificate() {
    let bed = Coalesce::start().await;
    let conn = TlsClient::h2(&bed.pki, "a.example.test")
        .must_connect(bed.proxy.tls())
        .await;
    let mut h2 = conn.h2().await;

    for _ in 0..2 {
        assert_eq!(h2.get("a.example.test", "/").await.echo().backend, "a");
        assert_eq!(h2.get("b.example.test", "/").await.echo().backend, "b");
    }
    assert!(h2.is_open());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_its_own_certificate_on_a_shared_connection_gets_421() {
    let bed = Coalesce::start().await;
    let conn = TlsClient::h2(&bed.pki, "a.example.test")
        .must_connect(bed.proxy.tls())
        .await;
    let mut h2 = conn.h2().await;

    let reply = h2.get("c.example.test", "/").await;
    assert_eq!(reply.status, StatusCode::MISDIRECTED_REQUEST);
    // The connection still serves its own hosts.
    assert_eq!(h2.get("a.example.test", "/").await.echo().backend, "a");
    // And `c` on its own connection is served.
    let mut own = TlsClient::h2(&bed.pki, "c.example.test")
        .must_connect(bed.proxy.tls())
        .await
        .h2()
        .await;
    assert_eq!(own.get("c.example.test", "/").await.echo().backend, "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_host_header_needing_another_certificate_gets_421() {
    let bed = Coalesce::start().await;
    let mut h1 = TlsClient::h1(&bed.pki, "b.example.test")
        .must_connect(bed.proxy.tls())
        .await
        .h1()
        .await;

    assert_eq!(h1.get("a.example.test", "/").await.echo().backend, "a");
    let reply = h1.get("c.example.test", "/").await;
    assert_eq!(reply.status, StatusCode::MISDIRECTED_REQUEST);
}

// === client certificates ===

const SUBJECT_HEADER: &str = "x-client-cert-subject";

/// A route `api.example.test` behind a TLS listener verifying client
/// certificates against `clients` (a CA of its own), held in a ConfigMap
/// (or a Secret, `ca_in_secret`) named `default/client-ca`.
struct Mtls {
    server: Pki,
    clients: Pki,
    proxy: Proxy,
    _backend: Backend,
}

impl Mtls {
    async fn start(client_auth: ClientAuth, ca_in_secret: bool) -> Mtls {
        let (server, clients) = (Pki::new("server CA"), Pki::new("client CA"));
        let backend = Backend::echo("api").await;
        let ca = if ca_in_secret {
            ca_secret("default", "client-ca", &clients.ca_pem())
        } else {
            ca_config_map("default", "client-ca", &clients.ca_pem())
        };
        let text = documents(&[
            yaml(&[route("api")
                .host("api.example.test")
                .tls("api-cert")
                .rule(Rule::new().backend(&backend))]),
            server
                .leaf(&["api.example.test"])
                .secret("default", "api-cert"),
            ca,
        ]);
        let tls = TlsSettings {
            client_ca: Some(("default".to_owned(), "client-ca".to_owned())),
            client_auth,
            ..TlsSettings::default()
        };
        let proxy = Proxy::start_tls(RoutesLayout::File(&text), tls).await;
        Mtls {
            server,
            clients,
            proxy,
            _backend: backend,
        }
    }

    fn client(&self, cert: Option<&Cert>) -> TlsClient {
        let builder = TlsClient::builder(&self.server, "api.example.test").alpn(&["http/1.1"]);
        match cert {
            Some(cert) => builder.client_cert(cert).build(),
            None => builder.build(),
        }
    }

    /// A GET over a new connection carrying a forged subject header.
    async fn get(&self, cert: Option<&Cert>) -> Result<Reply, BoxError> {
        let conn = self.client(cert).connect(self.proxy.tls()).await?;
        let mut h1 = H1Conn::handshake(conn.stream).await?;
        let req = http::Request::get("/")
            .header("host", "api.example.test")
            .header(SUBJECT_HEADER, "CN=forged")
            .body(empty())?;
        let resp = h1.try_send(req).await?;
        Ok(Reply::collect(resp).await)
    }
}

async fn assert_valid_client_is_served_with_its_subject(bed: &Mtls) {
    let alice = bed.clients.client("alice");
    let echo = bed.get(Some(&alice)).await.expect("served").echo();
    assert_eq!(echo.header(SUBJECT_HEADER), Some("CN=alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_clients_without_one() {
    let bed = Mtls::start(ClientAuth::Require, false).await;
    let why = assert_refused(bed.get(None).await);
    assert!(!why.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_another_cas_certificate() {
    let bed = Mtls::start(ClientAuth::Require, false).await;
    let stranger = Pki::new("stranger CA").client("mallory");
    assert_refused(bed.get(Some(&stranger)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_client_certificate_reaches_the_backend_as_its_subject_only() {
    let bed = Mtls::start(ClientAuth::Require, false).await;
    // The client's own copy of the header is dropped: one value, verified.
    assert_valid_client_is_served_with_its_subject(&bed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_in_a_secret_works_like_one_in_a_config_map() {
    let bed = Mtls::start(ClientAuth::Require, true).await;
    assert_valid_client_is_served_with_its_subject(&bed).await;
    assert_refused(bed.get(None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates_serve_clients_without_one_and_no_header() {
    let bed = Mtls::start(ClientAuth::Optional, false).await;
    let echo = bed
        .get(None)
        .await
        .expect("served without a certificate")
        .echo();
    assert_eq!(
        echo.header(SUBJECT_HEADER),
        None,
        "a forged subject got through"
    );
    assert_valid_client_is_served_with_its_subject(&bed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates_still_refuse_a_bad_one() {
    let bed = Mtls::start(ClientAuth::Optional, false).await;
    let stranger = Pki::new("stranger CA").client("mallory");
    assert_refused(bed.get(Some(&stranger)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_header_is_stripped_from_plain_http_requests() {
    let bed = Mtls::start(ClientAuth::Optional, false).await;
    let req = request(
        &bed.proxy,
        http::Method::GET,
        "api.example.test",
        "/.well-known/acme-challenge/x",
    )
    .header(SUBJECT_HEADER, "CN=forged")
    .body(empty())
    .unwrap();
    let echo = bed.proxy.send(req).await.echo();
    assert_eq!(echo.header(SUBJECT_HEADER), None);
}
