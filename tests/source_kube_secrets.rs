//! The Kubernetes source's TLS inputs, observed on its updates channel:
//! `kubernetes.io/tls` Secrets (and never another type), the default
//! certificate and the client CA by name, even outside the watched
//! namespaces. Against the in-process double, or a real apiserver when
//! `SWITCHYARD_TEST_KUBECONFIG` names one.

mod support;

use switchyard::snapshot::{ObjectKey, Snapshot, TlsSettings};

use support::cluster::Cluster;
use support::kube_api::{config_map, secret, tls_secret};
use support::kube_source::Source;

fn key(ns: &str, name: &str) -> ObjectKey {
    (ns.to_owned(), name.to_owned())
}

fn crt(snapshot: &Snapshot, key: &ObjectKey) -> Option<Vec<u8>> {
    Some(snapshot.secrets.get(key)?.data.get("tls.crt")?.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_secret_created_after_start_appears_and_an_opaque_one_never_does() {
    let cluster = Cluster::start("tls-secret-appears").await;
    let mut source = Source::start(&cluster, vec![cluster.ns().to_owned()], Default::default());
    assert!(source.first().await.secrets.is_empty());

    let ns = cluster.ns();
    cluster
        .apply(secret(ns, "release", "helm.sh/release.v1", &[("r", b"x")]))
        .await;
    cluster
        .apply(secret(ns, "opaque", "Opaque", &[("tls.crt", b"x")]))
        .await;
    cluster
        .apply(tls_secret(ns, "mango-tls", b"crt", b"key"))
        .await;
    let mango = key(ns, "mango-tls");
    let snapshot = source
        .until("mango-tls in the snapshot", |s| {
            s.secrets.contains_key(&mango)
        })
        .await;
    let seen = &snapshot.secrets[&mango];
    assert_eq!(&*seen.origin, "kube");
    assert_eq!(seen.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(&*seen.data["tls.key"], b"key");
    let names: Vec<_> = snapshot.secrets.keys().collect();
    assert_eq!(names, [&mango], "only kubernetes.io/tls Secrets");
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_tls_secret_is_seen_and_a_deleted_one_leaves_the_snapshot() {
    let cluster = Cluster::start("tls-secret-edited").await;
    let ns = cluster.ns();
    cluster
        .apply(tls_secret(ns, "mango-tls", b"old", b"key"))
        .await;
    let mut source = Source::start(&cluster, vec![ns.to_owned()], Default::default());
    let mango = key(ns, "mango-tls");
    let first = source.first().await;
    assert_eq!(crt(&first, &mango).as_deref(), Some(&b"old"[..]), "synced");

    cluster
        .apply(tls_secret(ns, "mango-tls", b"new", b"key"))
        .await;
    source
        .until("the new certificate", |s| {
            crt(s, &mango).as_deref() == Some(b"new")
        })
        .await;

    cluster.delete("v1", "Secret", "mango-tls").await;
    source
        .until("mango-tls gone", |s| !s.secrets.contains_key(&mango))
        .await;
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_certificate_and_client_ca_outside_the_watched_namespaces_are_seen() {
    let cluster = Cluster::start("tls-named-objects").await;
    let (ns, other) = (cluster.ns().to_owned(), cluster.ns2());
    cluster
        .apply(tls_secret(&other, "fallback", b"default", b"key"))
        .await;
    cluster
        .apply(config_map(&other, "client-ca", &[("ca.crt", "ca-pem")]))
        .await;
    cluster
        .apply(tls_secret(&other, "stray", b"crt", b"key"))
        .await;
    cluster
        .apply(config_map(&other, "unrelated", &[("ca.crt", "x")]))
        .await;
    let tls = TlsSettings {
        default_certificate: Some(key(&other, "fallback")),
        client_ca: Some(key(&other, "client-ca")),
        ..Default::default()
    };
    let mut source = Source::start(&cluster, vec![ns.clone()], tls.clone());

    // Nothing is sent before every cache synced: the first snapshot has them.
    let first = source.first().await;
    assert_eq!(first.tls, tls);
    let secrets: Vec<_> = first.secrets.keys().cloned().collect();
    assert_eq!(secrets, [key(&other, "fallback")], "not the stray Secret");
    let maps: Vec<_> = first.config_maps.keys().cloned().collect();
    assert_eq!(maps, [key(&other, "client-ca")]);
    assert_eq!(&*first.config_maps[&maps[0]].data["ca.crt"], b"ca-pem");

    // A client CA kept in a Secret is often Opaque: it is seen by name.
    cluster
        .apply(secret(&other, "client-ca", "Opaque", &[("ca.crt", b"ca")]))
        .await;
    cluster
        .apply(config_map(&other, "client-ca", &[("ca.crt", "ca-pem-2")]))
        .await;
    let ca = key(&other, "client-ca");
    let snapshot = source
        .until("the client CA as a Secret and its edited ConfigMap", |s| {
            s.secrets.contains_key(&ca)
                && s.config_maps
                    .get(&ca)
                    .is_some_and(|m| &*m.data["ca.crt"] == b"ca-pem-2")
        })
        .await;
    assert_eq!(snapshot.secrets[&ca].type_.as_deref(), Some("Opaque"));
    source.stop().await;
}
