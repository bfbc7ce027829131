//! The access log: one JSON line per request, naming the route, the
//! backend and why the proxy answered; a stalled writer holds no request
//! back (its lines are dropped and counted).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, StatusCode};
use support::*;
use switchyard::access_log::AccessLog;
use switchyard::metrics::Metrics;
use switchyard::proxy::ServeOptions;

/// A writer keeping everything written.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<u8>>>);

impl Write for Kept {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Kept {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = self.0.lock().unwrap().clone();
        (text.split(|b| *b == b'\n'))
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("a JSON line"))
            .collect()
    }
}

/// A writer whose every write waits until the test drops its sender.
struct Stalled(std::sync::mpsc::Receiver<()>);

impl Write for Stalled {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.recv();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn start(yaml: &str, out: Box<dyn Write + Send>, capacity: usize) -> Proxy {
    let metrics = Arc::new(Metrics::new(false));
    let log = AccessLog::with_writer(out, capacity, metrics.access_log_dropped.clone())
        .expect("writer thread");
    let serve = ServeOptions {
        drain_timeout: Duration::from_secs(5),
        metrics: Some(metrics),
        access_log: Some(log),
        ..ServeOptions::default()
    };
    Proxy::start_serving(RoutesLayout::File(yaml), serve).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_one_line_naming_its_route_or_why_it_had_none() {
    let backend = Backend::echo("mango").await;
    let kept = Kept::default();
    let yaml = yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&backend))]);
    let proxy = start(&yaml, Box::new(kept.clone()), 1024).await;

    let req = Request::get(proxy.url("/fruit?token=secret"))
        .header("host", "www.mango.com")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(empty())
        .unwrap();
    let served = proxy.send(req).await;
    assert_eq!(served.status, StatusCode::OK);
    let missing = proxy.get("www.nothing.com", "/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    wait_until("two access-log lines", DEADLINE, || async {
        kept.lines().len() == 2
    })
    .await;
    let lines = kept.lines();
    let ok = &lines[0];
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["scheme"], "http");
    assert_eq!(ok["authority"], "www.mango.com");
    assert_eq!(ok["path"], "/fruit?<redacted>");
    assert_eq!(ok["protocol"], "HTTP/1.1");
    assert_eq!(ok["route"], "default/mango");
    assert_eq!(ok["rule"], 0);
    assert_eq!(ok["backend"], "static");
    assert_eq!(ok["endpoint"], backend.address().as_str());
    assert_eq!(ok["attempts"], 1);
    assert_eq!(ok["bytes_out"], served.body.len() as u64);
    assert_eq!(ok["reason"], serde_json::Value::Null);
    assert_eq!(ok["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(ok["client"], "127.0.0.1");
    assert_eq!(ok["request_id"].as_str().map(str::len), Some(33));
    assert!(ok["upstream_ms"].as_f64().is_some(), "{ok}");

    let none = &lines[1];
    assert_eq!(none["status"], 404, "{none}");
    assert_eq!(none["reason"], "no_route");
    assert_eq!(none["route"], serde_json::Value::Null);
    assert_eq!(none["attempts"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_holds_no_request_back_and_its_lines_are_counted_as_dropped() {
    let backend = Backend::echo("mango").await;
    let (held, stalled) = std::sync::mpsc::channel();
    let yaml = yaml(&[route("mango")
        .host("www.mango.com")
        .rule(Rule::new().backend(&backend))]);
    let proxy = start(&yaml, Box::new(Stalled(stalled)), 4).await;

    const REQUESTS: u64 = 50;
    let mut conn = H1Conn::connect(proxy.addr).await;
    for _ in 0..REQUESTS {
        // `get` fails the test if a response takes past its deadline.
        assert_eq!(conn.get("www.mango.com", "/").await.status, StatusCode::OK);
    }
    let text = proxy.admin_get("/metrics").await.unwrap().text();
    let dropped: u64 = (text.lines())
        .find(|l| l.starts_with("switchyard_access_log_dropped_lines_total "))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
        .expect("the dropped-lines counter");
    // The channel holds 4, the writer 1 more (blocked in its write).
    assert!(dropped >= REQUESTS - 5, "dropped {dropped}: {text}");
    drop::<std::sync::mpsc::Sender<()>>(held);
}
