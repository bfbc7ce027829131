//! HTTPS termination: the certificate SNI selects (exact, wildcard,
//! default, none), ALPN, protocol versions, plain HTTP on the TLS port,
//! `X-Forwarded-Proto` and session resumption; real rustls clients against
//! the real proxy.

mod support;

use http::{StatusCode, Version};
use rustls::{AlertDescription, HandshakeKind, ProtocolVersion};
use switchyard::snapshot::{TlsSettings, TlsVersion};

use support::*;

/// Three certificates from one CA and two routes:
/// `a.example.test` with its own certificate, `*.example.test` with a
/// wildcard one, and `fallback`, a certificate no route names (the default
/// when the test asks for it).
struct Site {
    pki: Pki,
    exact: Cert,
    wildcard: Cert,
    fallback: Cert,
    _a: Backend,
    _wild: Backend,
}

impl Site {
    async fn new() -> Site {
        let pki = Pki::new("switchyard test CA");
        let exact = pki.leaf(&["a.example.test"]);
        let wildcard = pki.leaf(&["*.example.test"]);
        let fallback = pki.leaf(&["fallback.example.test"]);
        let a = Backend::echo("a").await;
        let wild = Backend::echo("wild").await;
        Site {
            pki,
            exact,
            wildcard,
            fallback,
            _a: a,
            _wild: wild,
        }
    }

    fn routes(&self) -> String {
        documents(&[
            yaml(&[
                route("a")
                    .host("a.example.test")
                    .tls("a-cert")
                    .rule(Rule::new().backend(&self._a)),
                route("wild")
                    .host("*.example.test")
                    .tls("wild-cert")
                    .rule(Rule::new().backend(&self._wild)),
            ]),
            self.exact.secret("default", "a-cert"),
            self.wildcard.secret_base64("default", "wild-cert"),
            self.fallback.secret("default", "fallback"),
        ])
    }

    async fn proxy(&self, tls: TlsSettings) -> Proxy {
        Proxy::start_tls(RoutesLayout::File(&self.routes()), tls).await
    }

    async fn proxy_with_default(&self) -> Proxy {
        self.proxy(TlsSettings {
            default_certificate: Some(("default".to_owned(), "fallback".to_owned())),
            ..TlsSettings::default()
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_san_beats_the_wildcard_and_the_wildcard_covers_one_label() {
    let site = Site::new().await;
    let proxy = site.proxy_with_default().await;

    let exact = TlsClient::h1(&site.pki, "a.example.test");
    assert_eq!(exact.handshake(proxy.tls()).await.serial, site.exact.serial);

    let wild = TlsClient::h1(&site.pki, "b.example.test");
    assert_eq!(
        wild.handshake(proxy.tls()).await.serial,
        site.wildcard.serial
    );

    // Two labels under the wildcard: not covered, so the default.
    let deep = TlsClient::builder(&site.pki, "x.b.example.test")
        .accept_any_certificate()
        .build();
    assert_eq!(
        deep.handshake(proxy.tls()).await.serial,
        site.fallback.serial
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sni_gets_the_default_certificate() {
    let site = Site::new().await;
    let proxy = site.proxy_with_default().await;

    let client = TlsClient::builder(&site.pki, "nobody.test")
        .accept_any_certificate()
        .build();
    assert_eq!(
        client.handshake(proxy.tls()).await.serial,
        site.fallback.serial
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sni_without_a_default_fails_with_unrecognized_name() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let client = TlsClient::h1(&site.pki, "nobody.test");
    assert_alert(
        client.connect(proxy.tls()).await,
        AlertDescription::UnrecognisedName,
    );
    // The known names still work.
    let a = TlsClient::h1(&site.pki, "a.example.test");
    assert_eq!(a.handshake(proxy.tls()).await.serial, site.exact.serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sni_gets_the_default_certificate() {
    let site = Site::new().await;
    let proxy = site.proxy_with_default().await;

    let client = TlsClient::builder(&site.pki, "fallback.example.test")
        .without_sni()
        .build();
    assert_eq!(
        client.handshake(proxy.tls()).await.serial,
        site.fallback.serial
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sni_without_a_default_fails_with_unrecognized_name() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let client = TlsClient::builder(&site.pki, "a.example.test")
        .without_sni()
        .build();
    assert_alert(
        client.connect(proxy.tls()).await,
        AlertDescription::UnrecognisedName,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_h2_is_served_over_http2() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let conn = TlsClient::h2(&site.pki, "a.example.test")
        .must_connect(proxy.tls())
        .await;
    assert_eq!(conn.negotiated.alpn.as_deref(), Some(&b"h2"[..]));
    let mut h2 = conn.h2().await;
    let reply = h2.get("a.example.test", "/x").await;
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.echo().backend, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_http11_or_none_is_served_over_http1() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    for alpn in [&["http/1.1"][..], &[][..]] {
        let conn = TlsClient::builder(&site.pki, "a.example.test")
            .alpn(alpn)
            .build()
            .must_connect(proxy.tls())
            .await;
        let want: Option<&[u8]> = alpn.first().map(|p| p.as_bytes());
        assert_eq!(conn.negotiated.alpn.as_deref(), want, "ALPN {alpn:?}");
        let mut h1 = conn.h1().await;
        let reply = h1.get("a.example.test", "/x").await;
        assert_eq!(reply.version, Version::HTTP_11, "ALPN {alpn:?}");
        assert_eq!(reply.echo().backend, "a", "ALPN {alpn:?}");
        // Kept alive: a second request on the same connection.
        assert_eq!(h1.get("a.example.test", "/y").await.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_and_tls13_are_both_accepted_by_default() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let v12 = TlsClient::builder(&site.pki, "a.example.test").tls12_only();
    let got = v12.build().handshake(proxy.tls()).await;
    assert_eq!(got.version, ProtocolVersion::TLSv1_2);
    let v13 = TlsClient::builder(&site.pki, "a.example.test").tls13_only();
    let got = v13.build().handshake(proxy.tls()).await;
    assert_eq!(got.version, ProtocolVersion::TLSv1_3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_version_13_refuses_a_tls12_only_client() {
    let site = Site::new().await;
    let proxy = site
        .proxy(TlsSettings {
            min_version: TlsVersion::Tls13,
            ..TlsSettings::default()
        })
        .await;

    let v12 = TlsClient::builder(&site.pki, "a.example.test")
        .tls12_only()
        .build();
    let err = v12.connect(proxy.tls()).await.err();
    assert!(
        err.is_some(),
        "a TLS 1.2-only client was served with --tls-min-version 1.3"
    );
    let v13 = TlsClient::h1(&site.pki, "a.example.test");
    assert_eq!(
        v13.handshake(proxy.tls()).await.version,
        ProtocolVersion::TLSv1_3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_gets_400_and_is_closed() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let mut conn = RawConn::connect(proxy.tls()).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n")
        .await
        .expect("send");
    let head = conn.head().await.expect("a response, not a silent close");
    assert_eq!(head.status, 400, "{}", head.text);
    assert!(
        head.text.starts_with("HTTP/1.1 400"),
        "status line: {}",
        head.text
    );
    let rest = String::from_utf8_lossy(&conn.rest().await).into_owned();
    assert!(
        rest.contains("plain HTTP request was sent to the HTTPS port"),
        "body: {rest:?}"
    );
    // `rest` returned: the proxy closed the connection (no hang).
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_see_x_forwarded_proto_https_only_over_tls() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let mut h1 = TlsClient::h1(&site.pki, "a.example.test")
        .must_connect(proxy.tls())
        .await
        .h1()
        .await;
    let req = http::Request::get("/x")
        .header(http::header::HOST, "a.example.test")
        .header("x-forwarded-proto", "http")
        .body(empty())
        .unwrap();
    let echo = h1.send(req).await.echo();
    assert_eq!(echo.header("x-forwarded-proto"), Some("https"));

    // The same route over plain HTTP with `httpsRedirect` on is redirected;
    // the ACME path is proxied, and says `http`.
    let plain = proxy
        .get("a.example.test", "/.well-known/acme-challenge/token")
        .await;
    assert_eq!(plain.echo().header("x-forwarded-proto"), Some("http"));
}

/// Connects twice with `client` (a request in between, so TLS 1.3
/// tickets, sent after the handshake, arrive): full, then resumed.
async fn assert_second_connection_resumes(site: &Site, proxy: &Proxy, client: TlsClient) {
    let first = client.must_connect(proxy.tls()).await;
    assert_eq!(first.negotiated.kind, HandshakeKind::Full);
    let mut h1 = first.h1().await;
    assert_eq!(h1.get("a.example.test", "/").await.status, StatusCode::OK);
    let second = client.handshake(proxy.tls()).await;
    assert_eq!(second.kind, HandshakeKind::Resumed);
    assert_eq!(second.serial, site.exact.serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tls13_connection_from_the_same_client_is_resumed() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;
    let client = TlsClient::builder(&site.pki, "a.example.test")
        .alpn(&["http/1.1"])
        .tls13_only()
        .build();
    assert_second_connection_resumes(&site, &proxy, client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tls12_connection_from_the_same_client_is_resumed() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;
    let client = TlsClient::builder(&site.pki, "a.example.test")
        .alpn(&["http/1.1"])
        .tls12_only()
        .build();
    assert_second_connection_resumes(&site, &proxy, client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_off_in_the_client_means_full_handshakes() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let client = TlsClient::builder(&site.pki, "a.example.test")
        .resumption(false)
        .build();
    for _ in 0..2 {
        assert_eq!(
            client.handshake(proxy.tls()).await.kind,
            HandshakeKind::Full
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_rtt_is_never_accepted_on_a_resumed_session() {
    let site = Site::new().await;
    let proxy = site.proxy(TlsSettings::default()).await;

    let client = TlsClient::builder(&site.pki, "a.example.test")
        .alpn(&["http/1.1"])
        .offer_early_data()
        .build();
    let mut h1 = client.must_connect(proxy.tls()).await.h1().await;
    assert_eq!(h1.get("a.example.test", "/").await.status, StatusCode::OK);
    let second = client.handshake(proxy.tls()).await;
    assert_eq!(second.kind, HandshakeKind::Resumed);
    assert!(!second.early_data_accepted, "0-RTT must stay off");
}
