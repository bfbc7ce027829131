//! HTTPS in cluster mode, through the API double (or a real apiserver when
//! `SWITCHYARD_TEST_KUBECONFIG` names one): certificates from
//! `kubernetes.io/tls` Secrets created after the route, edited and deleted,
//! and client certificates verified against a ConfigMap's CA.

mod support;

use http::StatusCode;
use rustls::AlertDescription;
use serde_json::{json, Value};
use support::cluster::{has_condition, Cluster, Controller, CLUSTER_DEADLINE};
use support::kube_api::{config_map, endpoint_slice, route as route_obj, service, tls_secret};
use support::*;
use switchyard::snapshot::{ClientAuth, TlsSettings};

const HOST: &str = "www.mango.test";

/// `HOST` → Service `mango` port 80, with its certificate in `secret`.
fn tls_route(cluster: &Cluster, secret: &str) -> Value {
    route_obj(
        cluster.ns(),
        "mango",
        json!({
            "hosts": [HOST],
            "tls": {"secretName": secret},
            "rules": [{"backends": [{"service": "mango", "port": 80}]}],
        }),
    )
}

/// Service `mango` in front of `backend`.
async fn mango_service(cluster: &Cluster, backend: &Backend) {
    cluster
        .apply(service(cluster.ns(), "mango", &[("http", 80, 8080)]))
        .await;
    let ip = backend.addr.ip().to_string();
    cluster
        .apply(endpoint_slice(
            cluster.ns(),
            "mango-0",
            "mango",
            "http",
            backend.addr.port(),
            &[(&ip, true, false)],
        ))
        .await;
}

fn secret_of(cluster: &Cluster, name: &str, cert: &Cert) -> Value {
    tls_secret(
        cluster.ns(),
        name,
        cert.cert_pem.as_bytes(),
        cert.key_pem.as_bytes(),
    )
}

/// Waits until new handshakes for `HOST` present the certificate `serial`.
async fn wait_serial(controller: &Controller, client: &TlsClient, serial: u64) {
    let addr = controller.tls_addr.expect("a TLS listener");
    wait_until(
        &format!("handshakes to present serial {serial}"),
        CLUSTER_DEADLINE,
        || async {
            match client.connect(addr).await {
                Ok(conn) => conn.negotiated.serial == serial,
                Err(_) => false,
            }
        },
    )
    .await;
}

fn tls_listener() -> TlsSettings {
    TlsSettings {
        listener: true,
        ..TlsSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_created_after_the_route_then_edited_then_deleted() {
    let cluster = Cluster::start("tls-secret-life").await;
    let pki = Pki::new("cluster test CA");
    let mango = cluster.echo("mango").await;
    mango_service(&cluster, &mango).await;
    let controller = Controller::start_tls(&cluster, "a", tls_listener(), |_| {}).await;
    let addr = controller.tls_addr.expect("a TLS listener");
    let client = TlsClient::h1(&pki, HOST);

    // The route comes first: no certificate yet, so the name is refused.
    cluster.apply(tls_route(&cluster, "mango-tls")).await;
    let status = cluster
        .wait_condition("mango", "TLSReady", "False", "SecretNotFound")
        .await;
    assert!(
        has_condition(&status, "Accepted", "True", "Accepted"),
        "{status}"
    );
    assert_alert(
        client.connect(addr).await,
        AlertDescription::UnrecognisedName,
    );

    // The Secret appears: served, and the route says so.
    let first = pki.leaf(&[HOST]);
    cluster
        .apply(secret_of(&cluster, "mango-tls", &first))
        .await;
    cluster
        .wait_condition("mango", "TLSReady", "True", "CertificateReady")
        .await;
    wait_serial(&controller, &client, first.serial).await;
    let reply = client.try_get(addr, HOST, "/").await.expect("HTTPS GET");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.echo().header("x-forwarded-proto"), Some("https"));

    // Edited (renewed): new handshakes get the new certificate.
    let renewed = pki.leaf(&[HOST]);
    cluster
        .apply(secret_of(&cluster, "mango-tls", &renewed))
        .await;
    wait_serial(&controller, &client, renewed.serial).await;

    // Deleted: the last good certificate keeps serving; the route says why.
    cluster.delete("v1", "Secret", "mango-tls").await;
    let status = cluster
        .wait_condition("mango", "TLSReady", "False", "SecretNotFound")
        .await;
    let message = status.to_string();
    assert!(message.contains("last good certificate"), "{message}");
    assert_eq!(client.handshake(addr).await.serial, renewed.serial);
    controller.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_verified_against_a_config_map_ca() {
    let cluster = Cluster::start("tls-mtls").await;
    let pki = Pki::new("cluster test CA");
    let clients = Pki::new("client CA");
    let strangers = Pki::new("another CA");
    let mango = cluster.echo("mango").await;
    mango_service(&cluster, &mango).await;
    cluster
        .apply(config_map(
            cluster.ns(),
            "clients",
            &[("ca.crt", &clients.ca_pem())],
        ))
        .await;
    cluster
        .apply(secret_of(&cluster, "mango-tls", &pki.leaf(&[HOST])))
        .await;
    cluster.apply(tls_route(&cluster, "mango-tls")).await;
    let settings = TlsSettings {
        client_ca: Some((cluster.ns().to_owned(), "clients".to_owned())),
        client_auth: ClientAuth::Require,
        ..tls_listener()
    };
    let controller = Controller::start_tls(&cluster, "a", settings, |_| {}).await;
    let addr = controller.tls_addr.expect("a TLS listener");
    cluster
        .wait_condition("mango", "TLSReady", "True", "CertificateReady")
        .await;

    let valid = TlsClient::builder(&pki, HOST)
        .client_cert(&clients.client("alice"))
        .build();
    wait_until(
        "a valid client certificate is served",
        CLUSTER_DEADLINE,
        || async { valid.try_get(addr, HOST, "/").await.is_ok() },
    )
    .await;
    let reply = valid.try_get(addr, HOST, "/").await.expect("HTTPS GET");
    let subject = reply
        .echo()
        .header("x-client-cert-subject")
        .map(str::to_owned);
    assert!(
        subject.as_deref().is_some_and(|s| s.contains("CN=alice")),
        "{subject:?}"
    );

    assert_refused(TlsClient::h1(&pki, HOST).try_get(addr, HOST, "/").await);
    let stranger = TlsClient::builder(&pki, HOST)
        .client_cert(&strangers.client("mallory"))
        .build();
    assert_refused(stranger.try_get(addr, HOST, "/").await);
    controller.stop().await.expect("clean stop");
}
