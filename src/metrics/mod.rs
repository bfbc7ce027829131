//! Prometheus metrics (OpenMetrics text on the admin listener's
//! `/metrics`).
//!
//! Owns: the metric handle types a compiled table and the proxy keep
//! ([`RuleMetrics`], [`RouteSeries`], [`ListenerMetrics`]), the
//! process-wide [`Metrics`] and the encoding of a scrape. Labels come from
//! configuration only (listener, route, rule index, backend, status
//! class, method bucket), never from a request, so clients cannot create
//! series. Must not: hash labels or look a series up per request (handles
//! are resolved at compile and kept where the request already is), or
//! lock on the request path.

mod counts;
mod events;
mod histogram;
mod process;
mod series;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub use counts::{MethodBucket, RequestCounts};
pub use events::{Answers, RuleEvents, TryEvent, ANSWER_REASONS};
pub use histogram::LatencyHistogram;
pub use process::{OpenConnection, ProcessMetrics, HANDSHAKE_RESULTS};
pub use series::{RouteSeries, RuleMetrics, NONE};

/// Every metric name starts with this (`switchyard_requests_total`).
pub const PREFIX: &str = "switchyard";

/// The content type of a scrape (OpenMetrics text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A table that carries route series (the route table; tests).
pub trait HasSeries: std::fmt::Debug + Send + Sync + 'static {
    /// Its series.
    fn series(&self) -> &RouteSeries;

    /// Encodes what the table knows at `now` (endpoints by state, its
    /// size, certificates); nothing by default.
    fn encode_state(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        now: tokio::time::Instant,
    ) -> Result<(), std::fmt::Error> {
        let _ = (encoder, now);
        Ok(())
    }
}

/// The requests of one listener: counts by method and class, and time to
/// the response head.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    /// Requests by method bucket and status class.
    pub requests: RequestCounts,
    /// Time from the request head to the response head.
    pub duration: LatencyHistogram,
}

impl ListenerMetrics {
    /// Records one request.
    pub fn record(&self, method: MethodBucket, status: StatusCode, elapsed: Duration) {
        self.requests.record(method, status);
        self.duration.observe(elapsed);
    }
}

/// The per-listener and unmatched series, encoded at scrape.
#[derive(Debug, Default)]
struct Requests {
    plain: ListenerMetrics,
    tls: ListenerMetrics,
    unmatched: RequestCounts,
    unmatched_answers: Answers,
}

/// The process's metrics: created once at start, shared by the proxy (one
/// `Arc` on its shared state) and the admin listener.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Arc<Requests>,
    /// Whether per-route duration histograms are recorded and exposed
    /// (`--route-histograms`; off by default: a histogram is fifteen
    /// series per rule).
    pub route_histograms: bool,
    /// Access-log lines dropped because the writer fell behind.
    pub access_log_dropped: Counter,
    /// Connections, TLS handshakes, publishes.
    pub process: ProcessMetrics,
}

impl Metrics {
    /// A fresh set of metrics; `route_histograms` turns on per-route
    /// histograms.
    pub fn new(route_histograms: bool) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Arc::new(Requests::default());
        registry.register_collector(Box::new(requests.clone()));
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped_lines",
            "Access-log lines dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let process = ProcessMetrics::register(&mut registry);
        Metrics {
            process,
            registry,
            requests,
            route_histograms,
            access_log_dropped,
        }
    }

    /// The series of the plain (`tls` false) or the TLS listener.
    pub fn listener(&self, tls: bool) -> &ListenerMetrics {
        if tls {
            &self.requests.tls
        } else {
            &self.requests.plain
        }
    }

    /// Requests that matched no route (`route="-"`).
    pub fn unmatched(&self) -> &RequestCounts {
        &self.requests.unmatched
    }

    /// Answers to requests that matched no route, by reason.
    pub fn unmatched_answers(&self) -> &Answers {
        &self.requests.unmatched_answers
    }

    /// The registry, for the process-wide families other modules register
    /// at start.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// One scrape: the process-wide families and `table`'s route series,
    /// as OpenMetrics text.
    pub fn encode<T: HasSeries>(&self, table: Arc<T>) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        encode_registry(&mut out, &self.registry)?;
        let mut scrape = Registry::with_prefix(PREFIX);
        scrape.register_collector(Box::new(TableSeries {
            table,
            requests: self.requests.clone(),
            histograms: self.route_histograms,
        }));
        encode_registry(&mut out, &scrape)?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

impl prometheus_client::collector::Collector for Requests {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "requests",
            "Requests by listener, method and status class",
            None,
            MetricType::Counter,
        )?;
        for (listener, series) in [("http", &self.plain), ("https", &self.tls)] {
            let mut result = Ok(());
            series.requests.each(|method, code, n| {
                let labels = [("listener", listener), ("method", method), ("code", code)];
                if result.is_ok() {
                    result = (family.encode_family(&labels))
                        .and_then(|mut e| e.encode_counter::<NoLabelSet, _, u64>(&n, None));
                }
            });
            result?;
        }
        let mut family = encoder.encode_descriptor(
            "request_duration_seconds",
            "Time from the request head to the response head, by listener",
            None,
            MetricType::Histogram,
        )?;
        for (listener, series) in [("http", &self.plain), ("https", &self.tls)] {
            let labels = [("listener", listener)];
            HistogramMetric(&series.duration).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The route series of one table, for one scrape.
#[derive(Debug)]
struct TableSeries<T> {
    table: Arc<T>,
    requests: Arc<Requests>,
    histograms: bool,
}

impl<T: HasSeries> prometheus_client::collector::Collector for TableSeries<T> {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let unmatched = (&self.requests.unmatched, &self.requests.unmatched_answers);
        (self.table.series()).encode(&mut encoder, unmatched, self.histograms)?;
        (self.table).encode_state(&mut encoder, tokio::time::Instant::now())
    }
}

/// A [`LatencyHistogram`] as prometheus-client encodes a histogram.
#[derive(Debug)]
struct HistogramMetric<'h>(&'h LatencyHistogram);

impl EncodeMetric for HistogramMetric<'_> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.0.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
