//! The observability flags of `run` and `controller`: metrics and the
//! access log. Each also reads an environment variable, so a manifest (or
//! a benchmark) can set it without changing the command line.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use switchyard::access_log::{AccessLog, Destination};
use switchyard::metrics::Metrics;

/// The observability flags both `run` and `controller` take.
#[derive(Args)]
pub struct ObserveArgs {
    /// Prometheus metrics on the admin listener's /metrics: on or off.
    #[arg(long, env = "SWITCHYARD_METRICS", default_value = "on", value_parser = parse_on_off)]
    metrics: bool,
    /// Also record a duration histogram per route rule (fifteen series
    /// per rule; off by default, the per-listener histogram is always on).
    #[arg(long, env = "SWITCHYARD_ROUTE_HISTOGRAMS")]
    route_histograms: bool,
    /// One JSON line per request: off, stdout, stderr or a file path.
    /// Default: stdout for `controller`, off for `run`.
    #[arg(long, env = "SWITCHYARD_ACCESS_LOG")]
    access_log: Option<Destination>,
    /// Log query strings as sent (by default they are redacted: queries
    /// carry tokens).
    #[arg(long, env = "SWITCHYARD_ACCESS_LOG_QUERY")]
    access_log_query: bool,
}

impl ObserveArgs {
    /// The metrics (when on) and the access log (to `default_log` unless
    /// `--access-log` says otherwise; its writer thread started).
    pub fn open(
        &self,
        default_log: Destination,
    ) -> anyhow::Result<(Option<Arc<Metrics>>, Option<AccessLog>)> {
        let metrics = (self.metrics).then(|| Arc::new(Metrics::new(self.route_histograms)));
        let dropped =
            (metrics.as_ref()).map_or_else(Default::default, |m| m.access_log_dropped.clone());
        let destination = self.access_log.clone().unwrap_or(default_log);
        let access_log = AccessLog::open(&destination, dropped)
            .with_context(|| format!("cannot open the access log {destination:?}"))?
            .map(|log| log.log_query(self.access_log_query));
        Ok((metrics, access_log))
    }
}

/// `on` or `off`.
fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?} is neither on nor off")),
    }
}
