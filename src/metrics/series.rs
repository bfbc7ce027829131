//! Per-route series: the handles a compiled rule keeps ([`RuleMetrics`]),
//! and the store of every served rule's handles ([`RouteSeries`]) that the
//! table carries, hands to the next compile (so counters survive edits)
//! and encodes at scrape. A route left out of a table has no handles in
//! its store: its series are gone at the next publish.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::counts::{MethodBucket, RequestCounts};
use super::events::{Answers, RuleEvents};
use super::histogram::LatencyHistogram;
use super::HistogramMetric;

/// The `backend` label of requests no backend answered (proxy-made
/// answers), and the `route` and `rule` labels of unmatched requests.
pub const NONE: &str = "-";

/// The metric handles of one compiled rule, resolved at compile: a
/// request only indexes and adds.
#[derive(Debug, Default)]
pub struct RuleMetrics {
    /// `namespace/name` of the route.
    pub route: Arc<str>,
    /// The rule's index in the route.
    pub rule: u32,
    /// The `backend` label of each backend the rule names (a Service
    /// `name:port`, or `static` for the rule's addresses); a target's
    /// `backend` indexes this.
    pub backends: Box<[Arc<str>]>,
    /// Requests per backend, same order.
    by_backend: Box<[Arc<RequestCounts>]>,
    /// Requests the proxy answered itself (`backend="-"`).
    answered: Arc<RequestCounts>,
    /// The rule's duration histogram (encoded only with
    /// `--route-histograms`, recorded only then).
    duration: Arc<LatencyHistogram>,
    /// Answers by reason, try events.
    events: Arc<RuleEvents>,
}

impl RuleMetrics {
    /// Counts a request answered by `backend` (an index into
    /// [`backends`](Self::backends)), or by the proxy when `None`.
    pub fn record(&self, backend: Option<u16>, method: MethodBucket, status: StatusCode) {
        let counts = backend
            .and_then(|b| self.by_backend.get(usize::from(b)))
            .unwrap_or(&self.answered);
        counts.record(method, status);
    }

    /// The rule's duration histogram.
    pub fn duration(&self) -> &LatencyHistogram {
        &self.duration
    }

    /// The rule's answers by reason and try events.
    pub fn events(&self) -> &RuleEvents {
        &self.events
    }

    /// The `backend` label of `backend`, `-` for none.
    pub fn backend_label(&self, backend: Option<u16>) -> &str {
        backend
            .and_then(|b| self.backends.get(usize::from(b)))
            .map_or(NONE, |label| label)
    }
}

/// `(route, rule, backend)`: one series' configuration labels.
type Key = (Arc<str>, u32, Arc<str>);

/// Every served rule's handles, by labels (sorted: a scrape is stable).
#[derive(Clone, Debug, Default)]
pub struct RouteSeries {
    counts: BTreeMap<Key, Arc<RequestCounts>>,
    rules: BTreeMap<(Arc<str>, u32), PerRule>,
}

/// The handles a rule has once, whatever its backends.
#[derive(Debug, Default, Clone)]
struct PerRule {
    duration: Arc<LatencyHistogram>,
    events: Arc<RuleEvents>,
}

impl RouteSeries {
    /// The handles of rule `rule` of `route` with `backends`, the
    /// previous table's when it had them (counters go on across a
    /// publish), recorded in this store.
    pub fn rule(
        &mut self,
        previous: &RouteSeries,
        route: &Arc<str>,
        rule: u32,
        backends: Vec<Arc<str>>,
    ) -> RuleMetrics {
        let mut counts = |backend: &Arc<str>| {
            let key = (route.clone(), rule, backend.clone());
            let handle = (previous.counts.get(&key).cloned()).unwrap_or_default();
            self.counts.entry(key).or_insert(handle).clone()
        };
        let answered = counts(&Arc::from(NONE));
        let by_backend = backends.iter().map(&mut counts).collect();
        let key = (route.clone(), rule);
        let per_rule = (previous.rules.get(&key).cloned()).unwrap_or_default();
        let PerRule { duration, events } = self.rules.entry(key).or_insert(per_rule).clone();
        RuleMetrics {
            route: route.clone(),
            rule,
            backends: backends.into(),
            by_backend,
            answered,
            duration,
            events,
        }
    }

    /// Takes in the series of another store (a served route's).
    pub fn extend_from(&mut self, other: &RouteSeries) {
        self.counts
            .extend(other.counts.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.rules
            .extend(other.rules.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// How many (route, rule, backend) series exist.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Encodes `route_requests`, `route_answers`, `route_try_events`
    /// (and, when `histograms`, `route_request_duration_seconds`);
    /// `unmatched` and `unmatched_answers` count under `route="-"`.
    pub fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        (unmatched, unmatched_answers): (&RequestCounts, &Answers),
        histograms: bool,
    ) -> Result<(), std::fmt::Error> {
        self.encode_answers(encoder, unmatched_answers)?;
        self.encode_tries(encoder)?;
        let mut family = encoder.encode_descriptor(
            "route_requests",
            "Requests by route, rule, backend, method and status class",
            None,
            MetricType::Counter,
        )?;
        let mut result = Ok(());
        let none: (Arc<str>, String, Arc<str>) = (NONE.into(), NONE.into(), NONE.into());
        let all = self
            .counts
            .iter()
            .map(|((route, rule, backend), counts)| {
                (
                    (route.clone(), rule.to_string(), backend.clone()),
                    &**counts,
                )
            })
            .chain(std::iter::once((none, unmatched)));
        for ((route, rule, backend), counts) in all {
            counts.each(|method, code, n| {
                let labels = [
                    ("route", &*route),
                    ("rule", &*rule),
                    ("backend", &*backend),
                    ("method", method),
                    ("code", code),
                ];
                if result.is_ok() {
                    result = (family.encode_family(&labels))
                        .and_then(|mut e| e.encode_counter::<NoLabelSet, _, u64>(&n, None));
                }
            });
        }
        result?;
        if !histograms {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "route_request_duration_seconds",
            "Time to the response head by route and rule",
            None,
            MetricType::Histogram,
        )?;
        for ((route, rule), per_rule) in &self.rules {
            if per_rule.duration.count() == 0 {
                continue;
            }
            let rule = rule.to_string();
            let labels = [("route", &**route), ("rule", &*rule)];
            HistogramMetric(&per_rule.duration).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// `route_answers{route, rule, reason}`: answers the proxy made.
    fn encode_answers(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        unmatched: &Answers,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "route_answers",
            "Requests the proxy answered itself, by route, rule and reason",
            None,
            MetricType::Counter,
        )?;
        let rules = (self.rules.iter())
            .map(|((route, rule), r)| ((route.clone(), rule.to_string()), &r.events.answers));
        let none = ((Arc::from(NONE), NONE.to_owned()), unmatched);
        let mut result = Ok(());
        for ((route, rule), answers) in rules.chain(std::iter::once(none)) {
            answers.each(|reason, n| {
                let labels = [("route", &*route), ("rule", &*rule), ("reason", reason)];
                if result.is_ok() {
                    result = (family.encode_family(&labels))
                        .and_then(|mut e| e.encode_counter::<NoLabelSet, _, u64>(&n, None));
                }
            });
        }
        result
    }

    /// `route_try_events{route, rule, event}`: connect failures, timeouts,
    /// retries and retry-budget exhaustion.
    fn encode_tries(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "route_try_events",
            "Tries to backends that failed to connect or timed out, retries, and retries the budget refused",
            None,
            MetricType::Counter,
        )?;
        let mut result = Ok(());
        for ((route, rule), per_rule) in &self.rules {
            let rule = rule.to_string();
            per_rule.events.each_try(|event, n| {
                let labels = [("route", &**route), ("rule", &*rule), ("event", event)];
                if result.is_ok() {
                    result = (family.encode_family(&labels))
                        .and_then(|mut e| e.encode_counter::<NoLabelSet, _, u64>(&n, None));
                }
            });
        }
        result
    }
}
