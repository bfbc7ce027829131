//! What a scrape reads of the table besides the request series: each
//! backend's endpoints by state and their ejections and health flips, the
//! table's size, and the certificates' expiry. Read at scrape, so the
//! request path pays nothing for them.

use std::collections::HashSet;
use std::sync::Arc;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tokio::time::Instant;

use super::{RouteTable, Rule};
use crate::metrics::{HasSeries, RouteSeries};

/// An endpoint's state as the `state` label says it.
fn state_of(target: &super::Target, now: Instant) -> usize {
    if !target.state.is_healthy() {
        1
    } else if target.state.is_ejected_at(now) {
        2
    } else {
        0
    }
}

const STATES: [&str; 3] = ["ready", "unhealthy", "ejected"];

/// Per backend of a rule: endpoints by state, ejections, health flips.
#[derive(Default, Clone, Copy)]
struct BackendState {
    endpoints: [u64; 3],
    ejections: u64,
    flips: u64,
}

impl RouteTable {
    /// Every served rule once, by route and index.
    fn served_rules(&self) -> Vec<&Arc<Rule>> {
        let mut seen = HashSet::new();
        let mut rules: Vec<&Arc<Rule>> = (self.exact.values())
            .chain(self.wildcard.values())
            .chain(self.any_host.iter())
            .flat_map(|host| host.entries.iter().map(|(_, rule)| rule))
            .filter(|rule| seen.insert(Arc::as_ptr(rule)))
            .collect();
        rules.sort_by(|a, b| (&a.route, a.metrics.rule).cmp(&(&b.route, b.metrics.rule)));
        rules
    }

    fn encode_backends(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        now: Instant,
    ) -> Result<(), std::fmt::Error> {
        let mut all = Vec::new();
        for rule in self.served_rules() {
            let mut per_backend = vec![BackendState::default(); rule.metrics.backends.len()];
            for target in rule.backends.targets() {
                let Some(backend) = per_backend.get_mut(usize::from(target.backend)) else {
                    continue;
                };
                backend.endpoints[state_of(target, now)] += 1;
                let (ejections, flips) = target.state.health_events();
                backend.ejections += ejections;
                backend.flips += flips;
            }
            let rule_index = rule.metrics.rule.to_string();
            for (label, state) in rule.metrics.backends.iter().zip(per_backend) {
                all.push((rule.route.clone(), rule_index.clone(), label.clone(), state));
            }
        }
        let mut family = encoder.encode_descriptor(
            "backend_endpoints",
            "Endpoints of each backend of a rule, by state",
            None,
            MetricType::Gauge,
        )?;
        for (route, rule, backend, state) in &all {
            for (name, count) in STATES.iter().zip(state.endpoints) {
                let labels = [
                    ("route", &**route),
                    ("rule", rule),
                    ("backend", backend),
                    ("state", name),
                ];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&(count as i64))?;
            }
        }
        for (name, help, pick) in [
            (
                "backend_ejections",
                "Passive-health ejections of the backend's current endpoints",
                (|s: &BackendState| s.ejections) as fn(&BackendState) -> u64,
            ),
            (
                "backend_health_flips",
                "Active health verdict changes of the backend's current endpoints",
                |s: &BackendState| s.flips,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (route, rule, backend, state) in &all {
                let labels = [("route", &**route), ("rule", rule), ("backend", backend)];
                (family.encode_family(&labels)?)
                    .encode_counter::<NoLabelSet, _, u64>(&pick(state), None)?;
            }
        }
        Ok(())
    }

    fn encode_size(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let served = self.routes.iter().filter(|r| r.status.accepted()).count();
        let mut family = encoder.encode_descriptor(
            "route_table_routes",
            "Routes of the published table: served, or refused (invalid or conflicted)",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in [("served", served), ("refused", self.routes.len() - served)] {
            family
                .encode_family(&[("state", state)])?
                .encode_gauge(&(n as i64))?;
        }
        let mut family = encoder.encode_descriptor(
            "route_table_rules",
            "Rules served by the published table",
            None,
            MetricType::Gauge,
        )?;
        family.encode_gauge(&(self.served_rules().len() as i64))
    }

    fn encode_certificates(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "certificate_not_after_seconds",
            "When each served Secret's certificate expires (seconds since the epoch)",
            None,
            MetricType::Gauge,
        )?;
        let mut loaded: Vec<_> = self.tls.loaded.iter().collect();
        loaded.sort_by(|a, b| a.0.cmp(b.0));
        for ((namespace, name), loaded) in loaded {
            let secret = format!("{namespace}/{name}");
            (family.encode_family(&[("secret", secret.as_str())])?)
                .encode_gauge(&loaded.cert.not_after)?;
        }
        Ok(())
    }
}

impl HasSeries for RouteTable {
    fn series(&self) -> &RouteSeries {
        &self.series
    }

    fn encode_state(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        now: Instant,
    ) -> Result<(), std::fmt::Error> {
        self.encode_backends(encoder, now)?;
        self.encode_size(encoder)?;
        self.encode_certificates(encoder)
    }
}
