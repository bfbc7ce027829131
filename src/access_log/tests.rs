use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use super::line::rfc3339;
use super::*;

fn entry() -> Entry {
    Entry {
        time: UNIX_EPOCH + Duration::from_millis(1_796_313_621_123),
        client: "192.0.2.7".parse().unwrap(),
        method: http::Method::GET,
        tls: false,
        authority: Some(http::HeaderValue::from_static("www.mango.com")),
        uri: "/search?token=secret".parse().unwrap(),
        log_query: false,
        version: http::Version::HTTP_11,
        status: 404,
        bytes_in: None,
        bytes_out: 31,
        duration: Duration::from_micros(1500),
        upstream_duration: None,
        route: None,
        rule: None,
        backend: None,
        endpoint: None,
        attempts: 0,
        reason: Some("no_route"),
        request_id: Some(http::HeaderValue::from_static("abc")),
        traceparent: Some(http::HeaderValue::from_static(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )),
        tls_version: None,
        sni: None,
    }
}

#[test]
fn a_line_is_json_with_the_query_redacted() {
    let mut out = Vec::new();
    entry().write_json(&mut out, &mut Clock::default());
    assert_eq!(out.last(), Some(&b'\n'));
    let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line["time"], "2026-12-03T16:00:21.123Z");
    assert_eq!(line["path"], "/search?<redacted>");
    assert_eq!(line["status"], 404);
    assert_eq!(line["reason"], "no_route");
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["duration_ms"], 1.5);
    assert_eq!(line["route"], serde_json::Value::Null);
    assert_eq!(line["bytes_in"], serde_json::Value::Null);
    assert_eq!(line["client"], "192.0.2.7");
    assert_eq!(line["bytes_out"], 31);
    assert_eq!(line["status"], 404);
}

#[test]
fn strings_are_escaped() {
    let mut e = entry();
    e.log_query = true;
    e.uri = "/a%22b?q=\"x\""
        .parse()
        .unwrap_or_else(|_| "/a".parse().unwrap());
    e.authority = Some(http::HeaderValue::from_static("we\"ird\\host"));
    let mut out = Vec::new();
    e.write_json(&mut out, &mut Clock::default());
    let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line["authority"], "we\"ird\\host");
}

#[test]
fn dates_are_civil() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
}

#[test]
fn destinations_parse() {
    assert_eq!("off".parse::<Destination>(), Ok(Destination::Off));
    assert_eq!("stdout".parse::<Destination>(), Ok(Destination::Stdout));
    assert_eq!(
        "/var/log/a.json".parse::<Destination>(),
        Ok(Destination::File("/var/log/a.json".into()))
    );
}

/// A writer whose every write says it started, then waits until the test
/// lets it go.
struct Stalled(Arc<Mutex<()>>, std::sync::mpsc::Sender<()>);

impl Write for Stalled {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.1.send(());
        let _held = self.0.lock().unwrap();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stalled_writer_drops_and_counts_lines_without_waiting() {
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let (entered, writing) = std::sync::mpsc::channel();
    let writer = Box::new(Stalled(gate.clone(), entered));
    let log = AccessLog::with_writer(writer, 4, Counter::default()).unwrap();
    // The writer takes this line and blocks writing it...
    log.send(entry());
    writing
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer started writing");
    // ...so of these, only the channel's four get in; sending never waits.
    for _ in 0..100 {
        log.send(entry());
    }
    assert!(log.dropped() >= 100 - 4, "dropped {}", log.dropped());
    drop(held);
}
