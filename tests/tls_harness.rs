//! The TLS test harness checked against a plain tokio-rustls server (not
//! the proxy): what `TlsClient` reports (serial, ALPN, version, resumption),
//! HTTP/1.1 and HTTP/2 over it, and how failed handshakes are recognised.
//! If these fail, the proxy's TLS tests cannot be trusted.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, HandshakeKind, ProtocolVersion, ServerConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use support::*;

/// A TLS server answering every request `200 {version}`; aborted on drop.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(pki: &Pki, cert: Option<&Cert>, client_auth: bool) -> ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if client_auth {
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(pki.roots()), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = match cert {
        Some(cert) => builder
            .with_single_cert(vec![cert.der()], cert.key_der())
            .unwrap(),
        None => builder.with_cert_resolver(Arc::new(NoCertificate)),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

#[derive(Debug)]
struct NoCertificate;

impl rustls::server::ResolvesServerCert for NoCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

async fn serve(config: ServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|req: http::Request<_>| async move {
                    let body = format!("{:?}", req.version());
                    Ok::<_, std::convert::Infallible>(Response::new(full(body)))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Server { addr, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reports_serial_alpn_and_version_and_speaks_h1_and_h2() {
    let pki = Pki::new("harness CA");
    let cert = pki.leaf(&["*.example.test"]);
    let server = serve(config(&pki, Some(&cert), false)).await;

    let conn = TlsClient::h2(&pki, "a.example.test")
        .must_connect(server.addr)
        .await;
    assert_eq!(conn.negotiated.serial, cert.serial);
    assert_eq!(conn.negotiated.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(conn.negotiated.version, ProtocolVersion::TLSv1_3);
    let reply = conn.h2().await.get("a.example.test", "/").await;
    assert_eq!(
        (reply.status, reply.version),
        (StatusCode::OK, Version::HTTP_2)
    );

    let tls12 = TlsClient::builder(&pki, "a.example.test")
        .tls12_only()
        .build();
    let conn = tls12.must_connect(server.addr).await;
    assert_eq!(conn.negotiated.version, ProtocolVersion::TLSv1_2);
    assert_eq!(conn.negotiated.alpn, None);
    let reply = conn.h1().await.get("a.example.test", "/").await;
    assert_eq!(
        (reply.status, reply.version),
        (StatusCode::OK, Version::HTTP_11)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_resumes_its_session_on_the_second_connection() {
    let pki = Pki::new("harness CA");
    let cert = pki.leaf(&["a.example.test"]);
    let server = serve(config(&pki, Some(&cert), false)).await;

    let client = TlsClient::h1(&pki, "a.example.test");
    let first = client.must_connect(server.addr).await;
    assert_eq!(first.negotiated.kind, HandshakeKind::Full);
    first.h1().await.get("a.example.test", "/").await;
    let second = client.handshake(server.addr).await;
    assert_eq!(second.kind, HandshakeKind::Resumed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_early_data_is_reported() {
    let pki = Pki::new("harness CA");
    let cert = pki.leaf(&["a.example.test"]);
    let mut config = config(&pki, Some(&cert), false);
    config.max_early_data_size = 16 * 1024;
    let server = serve(config).await;

    let client = TlsClient::builder(&pki, "a.example.test")
        .offer_early_data()
        .build();
    client
        .must_connect(server.addr)
        .await
        .h1()
        .await
        .get("a.example.test", "/")
        .await;
    let second = client.handshake(server.addr).await;
    assert_eq!(second.kind, HandshakeKind::Resumed);
    assert!(second.early_data_accepted, "this server takes 0-RTT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_alert_is_recognised_by_assert_alert() {
    let pki = Pki::new("harness CA");
    let server = serve(config(&pki, None, false)).await;

    let client = TlsClient::h1(&pki, "a.example.test");
    assert_alert(
        client.connect(server.addr).await,
        AlertDescription::AccessDenied,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_presented_and_refusals_recognised() {
    let pki = Pki::new("harness CA");
    let cert = pki.leaf(&["a.example.test"]);
    let server = serve(config(&pki, Some(&cert), true)).await;

    let with = TlsClient::builder(&pki, "a.example.test")
        .client_cert(&pki.client("alice"))
        .build();
    let reply = with.try_get(server.addr, "a.example.test", "/").await;
    assert_eq!(reply.expect("served").status, StatusCode::OK);

    let without = TlsClient::h1(&pki, "a.example.test");
    assert_refused(without.try_get(server.addr, "a.example.test", "/").await);
    let stranger = Pki::new("other CA").client("mallory");
    let wrong = TlsClient::builder(&pki, "a.example.test")
        .client_cert(&stranger)
        .build();
    assert_refused(wrong.try_get(server.addr, "a.example.test", "/").await);
}

#[test]
fn secrets_render_as_yaml_with_the_pem_intact() {
    let cert = Pki::new("harness CA").leaf(&["a.example.test"]);
    for text in [cert.secret("shop", "c"), cert.secret_base64("shop", "c")] {
        let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("YAML");
        assert_eq!(doc["kind"], "Secret");
        assert_eq!(doc["type"], "kubernetes.io/tls");
        assert_eq!(doc["metadata"]["namespace"], "shop");
        if let Some(crt) = doc["stringData"]["tls.crt"].as_str() {
            assert_eq!(crt, cert.cert_pem);
            assert_eq!(doc["stringData"]["tls.key"].as_str(), Some(&*cert.key_pem));
        } else {
            let b64 = doc["data"]["tls.crt"].as_str().expect("data.tls.crt");
            assert!(
                b64.starts_with("LS0tLS1CRUdJTi"),
                "base64 of -----BEGIN: {b64}"
            );
        }
    }
    let ca = ca_config_map("shop", "ca", &cert.cert_pem);
    let doc: serde_json::Value = serde_yaml_ng::from_str(&ca).expect("YAML");
    assert_eq!(doc["data"]["ca.crt"].as_str(), Some(&*cert.cert_pem));
}
