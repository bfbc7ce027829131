//! Unit tests of the forwarding rules: hosts, hop-by-hop, X-Forwarded-*.

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[test]
fn hop_by_hop_and_connection_listed_headers_are_removed() {
    let mut h = headers(&[
        ("connection", "keep-alive, x-hop"),
        ("keep-alive", "timeout=5"),
        ("x-hop", "1"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("x-end", "kept"),
    ]);
    strip_hop_by_hop(&mut h, false);
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["x-end"]);
}

#[test]
fn only_websocket_upgrades_are_tunnelled() {
    for (upgrade, tunnelled) in [
        ("websocket", true),
        ("WebSocket", true),
        ("h2c", false),
        ("websocket, h2c", false),
        ("TLS/1.2", false),
    ] {
        let h = headers(&[("connection", "Upgrade"), ("upgrade", upgrade)]);
        assert_eq!(is_upgrade(&h), tunnelled, "case {upgrade:?}");
    }
}

#[test]
fn upgrade_survives_when_switching_protocols() {
    let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
    assert!(is_upgrade(&h));
    strip_hop_by_hop(&mut h, true);
    assert_eq!(h["connection"], "upgrade");
    assert_eq!(h["upgrade"], "websocket");
}

fn hop<'a>(peer: &'a HeaderValue, peer_trusted: bool, client: &'static str) -> Hop<'a> {
    Hop {
        peer,
        peer_trusted,
        client: HeaderValue::from_static(client),
        https: false,
        client_cert: None,
    }
}

#[test]
fn forwarded_for_appends_the_peer_to_every_prior_hop() {
    let peer = HeaderValue::from_static("127.0.0.1");
    let mut h = headers(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-for", "5.6.7.8"),
    ]);
    set_forwarded(
        &mut h,
        hop(&peer, false, "127.0.0.1"),
        Some(HeaderValue::from_static("www.mango.com")),
    );
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "www.mango.com");
    let mut fresh = HeaderMap::new();
    set_forwarded(&mut fresh, hop(&peer, false, "127.0.0.1"), None);
    assert_eq!(fresh["x-forwarded-for"], "127.0.0.1");
}

#[test]
fn x_real_ip_is_the_client_and_forwarded_needs_a_trusted_peer() {
    let peer = HeaderValue::from_static("10.0.0.1");
    let sent = [("x-real-ip", "6.6.6.6"), ("forwarded", "for=6.6.6.6")];
    let mut h = headers(&sent);
    set_forwarded(&mut h, hop(&peer, false, "10.0.0.1"), None);
    assert_eq!(h.get_all("x-real-ip").iter().count(), 1);
    assert_eq!(h["x-real-ip"], "10.0.0.1");
    assert!(h.get("forwarded").is_none(), "from an untrusted peer");
    let mut h = headers(&sent);
    set_forwarded(&mut h, hop(&peer, true, "55.55.55.55"), None);
    assert_eq!(h["x-real-ip"], "55.55.55.55");
    assert_eq!(h["forwarded"], "for=6.6.6.6", "a trusted proxy's");
}

#[test]
fn names_with_underscores_are_dropped_and_others_kept() {
    let mut h = headers(&[
        ("x_real_ip", "6.6.6.6"),
        ("x-real-ip", "kept"),
        ("a_b", "1"),
        ("a_b", "2"),
        ("x-end", "kept"),
    ]);
    drop_underscored(&mut h);
    let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["x-end", "x-real-ip"]);
}

fn host_of(uri: &str, version: Version, hosts: &[&str]) -> Result<Option<String>, BadHost> {
    let mut req = Request::builder().uri(uri).version(version);
    for host in hosts {
        req = req.header("host", *host);
    }
    let req = req.body(()).unwrap();
    request_host(&req).map(|h| h.map(|h| h.to_str().unwrap().to_owned()))
}

#[test]
fn the_authority_wins_over_a_valid_host_header() {
    let got = host_of("http://www.mango.com:8080/a", Version::HTTP_11, &["b.test"]);
    assert_eq!(got.unwrap().as_deref(), Some("www.mango.com:8080"));
    let got = host_of("http://www.mango.com/a", Version::HTTP_2, &[]);
    assert_eq!(got.unwrap().as_deref(), Some("www.mango.com"));
    let got = host_of("/a", Version::HTTP_11, &["www.mango.com"]);
    assert_eq!(got.unwrap().as_deref(), Some("www.mango.com"));
    assert_eq!(host_of("/a", Version::HTTP_10, &[]), Ok(None));
}

#[test]
fn a_missing_doubled_or_malformed_host_is_refused() {
    use BadHost::*;
    for (case, uri, version, hosts, want) in [
        ("no Host, 1.1", "/a", Version::HTTP_11, &[][..], Missing),
        (
            "absolute, no Host",
            "http://b.test/a",
            Version::HTTP_11,
            &[],
            Missing,
        ),
        ("no authority, h2", "/a", Version::HTTP_2, &[], Missing),
        (
            "two",
            "/a",
            Version::HTTP_11,
            &["a.test", "a.test"],
            Duplicate,
        ),
        (
            "userinfo target",
            "http://u@b.test/",
            Version::HTTP_2,
            &[],
            Invalid,
        ),
        (
            "bad Host behind a target",
            "http://b.test/",
            Version::HTTP_11,
            &["a b"],
            Invalid,
        ),
    ] {
        assert_eq!(host_of(uri, version, hosts), Err(want), "case {case}");
    }
}

#[test]
fn hosts_are_rfc_3986_host_and_port() {
    for good in [
        "www.mango.com",
        "www.mango.com:8080",
        "www.mango.com:",
        "127.0.0.1",
        "[::1]",
        "[2001:db8::1]:443",
        "a_b~c-d.test",
        "xn--bcher-kva.test",
        "%41.test",
        "www.mango.com.",
    ] {
        assert!(is_host(good.as_bytes()), "{good:?} refused");
    }
    for bad in [
        "",
        ":80",
        "a b.test",
        "a\tb.test",
        "b.test/x",
        "b.test\\x",
        "evil@b.test",
        "b.test:8o",
        "b.test:80:80",
        "[::1",
        "[]",
        "[::1]x",
        "[::1]:x",
        "%4.test",
        "%zz.test",
        "b\u{e9}.test",
        "b.test?",
        "b.test#",
    ] {
        assert!(!is_host(bad.as_bytes()), "{bad:?} accepted");
    }
}

#[test]
fn only_te_trailers_is_read_as_accepting_trailers() {
    for (te, trailers) in [
        ("trailers", true),
        ("Trailers", true),
        ("gzip, trailers", true),
        ("trailers;q=1", true),
        ("gzip", false),
        ("deflate;q=0.5", false),
        ("trailersx", false),
    ] {
        let h = headers(&[("te", te)]);
        assert_eq!(accepts_trailers(&h), trailers, "TE: {te}");
    }
}

#[test]
fn a_websocket_key_is_16_bytes_in_base64() {
    // RFC 6455 §1.3's sample nonce.
    assert_eq!(&base64_16(b"the sample nonce"), b"dGhlIHNhbXBsZSBub25jZQ==");
    let (one, two) = (websocket_key(), websocket_key());
    assert_eq!(one.len(), 24);
    assert_ne!(one, two, "a fresh key each time");
}

#[test]
fn only_an_http2_connect_for_websocket_becomes_a_get() {
    let connect = |version, protocol: Option<&'static str>| {
        let mut req = Request::connect("http://a.test/chat")
            .version(version)
            .body(())
            .unwrap();
        if let Some(protocol) = protocol {
            req.extensions_mut().insert(Protocol::from_static(protocol));
        }
        req
    };
    let mut ws = connect(Version::HTTP_2, Some("WebSocket"));
    assert!(websocket_connect(&mut ws));
    assert_eq!(ws.method(), Method::GET);
    assert!(ws.extensions().get::<WebSocketConnect>().is_some());
    assert!(ws.extensions().get::<Protocol>().is_none());
    for (version, protocol) in [
        (Version::HTTP_2, None),
        (Version::HTTP_2, Some("connect-udp")),
        (Version::HTTP_11, Some("websocket")),
    ] {
        let mut other = connect(version, protocol);
        assert!(!websocket_connect(&mut other), "{version:?} {protocol:?}");
        assert_eq!(other.method(), Method::CONNECT);
    }
}
