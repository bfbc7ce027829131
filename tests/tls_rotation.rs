//! Certificates over time, standalone: editing the Secret document rotates
//! the certificate for new handshakes with no failed request under load;
//! an edit that breaks the certificate is held back (the last good table
//! and certificate keep serving, `/readyz` stays 200).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use http::StatusCode;
use switchyard::snapshot::TlsSettings;
use tokio::task::JoinSet;

use support::*;

const HOST: &str = "a.example.test";

fn route_file(backend: &Backend) -> String {
    yaml(&[route("a")
        .host(HOST)
        .tls("a-cert")
        .rule(Rule::new().backend(backend))])
}

/// The proxy on a directory: `routes.yaml` (the route) and `cert.yaml`
/// (its Secret), so a rotation edits only the Secret's file.
async fn start(backend: &Backend, cert: &Cert) -> Proxy {
    let files = [
        ("routes.yaml", route_file(backend)),
        ("cert.yaml", cert.secret("default", "a-cert")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    Proxy::start_tls(RoutesLayout::Dir(&files), TlsSettings::default()).await
}

/// Counts of a load run: requests answered 200, everything else, and the
/// keep-alive clients connected and answered since `rotated` was set.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    connected: AtomicUsize,
    rotated: AtomicBool,
    answered_after_rotation: AtomicUsize,
}

/// `n` keep-alive HTTP/1.1-over-TLS clients (one connection each) sending
/// requests back to back until `stop`; each returns its connection's
/// handshake serial.
fn keepalive_load(
    pki: &Pki,
    proxy: &Proxy,
    n: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> JoinSet<u64> {
    let mut clients = JoinSet::new();
    for _ in 0..n {
        let (client, addr) = (TlsClient::h1(pki, HOST), proxy.tls());
        let (stop, tally) = (stop.clone(), tally.clone());
        clients.spawn(async move {
            let conn = client.must_connect(addr).await;
            let serial = conn.negotiated.serial;
            let mut h1 = conn.h1().await;
            tally.connected.fetch_add(1, Ordering::SeqCst);
            let mut answered_after = false;
            while !stop.load(Ordering::SeqCst) {
                let rotated = tally.rotated.load(Ordering::SeqCst);
                let req = http::Request::get("/").header("host", HOST).body(empty());
                match h1.try_send(req.unwrap()).await {
                    Ok(resp) if resp.status() == StatusCode::OK => {
                        Reply::collect(resp).await;
                        tally.ok.fetch_add(1, Ordering::SeqCst);
                        if rotated && !answered_after {
                            answered_after = true;
                            tally.answered_after_rotation.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    _ => {
                        tally.failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            serial
        });
    }
    clients
}

/// One client opening a new connection (a full handshake) per request.
fn fresh_connection_load(
    pki: &Pki,
    proxy: &Proxy,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> JoinSet<u64> {
    let client = TlsClient::builder(pki, HOST)
        .alpn(&["http/1.1"])
        .resumption(false)
        .build();
    let (addr, stop, tally) = (proxy.tls(), stop.clone(), tally.clone());
    let mut set = JoinSet::new();
    set.spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            match client.try_get(addr, HOST, "/").await {
                Ok(reply) if reply.status == StatusCode::OK => {
                    tally.ok.fetch_add(1, Ordering::SeqCst);
                }
                _ => {
                    tally.failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        0
    });
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_secret_rotates_the_certificate_with_no_failed_request() {
    let pki = Pki::new("rotation CA");
    let (old, new) = (pki.leaf(&[HOST]), pki.leaf(&[HOST]));
    let backend = Backend::echo("a").await;
    let proxy = start(&backend, &old).await;
    let probe = TlsClient::builder(&pki, HOST).resumption(false).build();
    assert_eq!(probe.handshake(proxy.tls()).await.serial, old.serial);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut keepalive = keepalive_load(&pki, &proxy, 4, &stop, &tally);
    let mut fresh = fresh_connection_load(&pki, &proxy, &stop, &tally);
    wait_until("the load to be running", DEADLINE, || async {
        tally.connected.load(Ordering::SeqCst) == 4 && tally.ok.load(Ordering::SeqCst) >= 20
    })
    .await;

    proxy.write_file("cert.yaml", &new.secret("default", "a-cert"));
    wait_until(
        "new handshakes to get the new certificate",
        DEADLINE,
        || async { probe.handshake(proxy.tls()).await.serial == new.serial },
    )
    .await;
    // Every connection opened before the rotation answers after it.
    tally.rotated.store(true, Ordering::SeqCst);
    wait_until(
        "each keep-alive client to answer after the rotation",
        DEADLINE,
        || async { tally.answered_after_rotation.load(Ordering::SeqCst) == 4 },
    )
    .await;
    stop.store(true, Ordering::SeqCst);

    while let Some(serial) = keepalive.join_next().await {
        assert_eq!(serial.expect("client task"), old.serial);
    }
    while fresh.join_next().await.is_some() {}
    assert_eq!(
        tally.failed.load(Ordering::SeqCst),
        0,
        "failed requests across the rotation ({} succeeded)",
        tally.ok.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_that_breaks_the_certificate_keeps_the_last_good_one() {
    let pki = Pki::new("keep-last-good CA");
    let good = pki.leaf(&[HOST]);
    let (first, edited) = (Backend::echo("first").await, Backend::echo("edited").await);
    let one_file = |backend: &Backend, cert: &Cert| {
        documents(&[route_file(backend), cert.secret("default", "a-cert")])
    };
    let text = one_file(&first, &good);
    let proxy = Proxy::start_tls(RoutesLayout::File(&text), TlsSettings::default()).await;
    let client = TlsClient::builder(&pki, HOST).resumption(false).build();
    assert_eq!(client.handshake(proxy.tls()).await.serial, good.serial);

    // One edit: a new backend and a certificate whose key does not match.
    let broken = pki.leaf(&[HOST]).with_key_of(&pki.leaf(&[HOST]));
    proxy.write_routes(&one_file(&edited, &broken));
    hold_for(
        "the last good certificate and table to keep serving",
        RELOAD_INTERVAL * 20,
        || async {
            let got = client.try_get(proxy.tls(), HOST, "/").await;
            let served = matches!(&got, Ok(r) if r.backend() == Some("first"));
            served && client.handshake(proxy.tls()).await.serial == good.serial
        },
    )
    .await;
    assert_eq!(edited.requests(), 0);
    let ready = proxy.admin_get("/readyz").await.unwrap();
    assert_eq!(ready.status, StatusCode::OK, "a bad edit must not unready");

    // A good certificate afterwards is picked up, with the new backend.
    let fixed = pki.leaf(&[HOST]);
    proxy.write_routes(&one_file(&edited, &fixed));
    wait_until("the fixed certificate to be served", DEADLINE, || async {
        client.handshake(proxy.tls()).await.serial == fixed.serial
    })
    .await;
    let reply = client
        .try_get(proxy.tls(), HOST, "/")
        .await
        .expect("served");
    assert_eq!(reply.backend(), Some("edited"));
}
