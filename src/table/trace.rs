//! A read-only view of how the table decides, for `explain` and for
//! compile's shadowing check.
//!
//! Owns: which host entry a request's host chooses ([`ChosenHost`]), the
//! candidate matches of that host in precedence order ([`HostView`]), where
//! each is written ([`MatchOrigin`]) and which of them an earlier one
//! shadows ([`Shadowed`]). Must not: decide anything itself: the host
//! choice is the lookup's own (`RouteTable::chosen_host`), a match's
//! verdicts are the matcher's own predicates, and the winner comes from
//! [`RouteTable::lookup_unambiguous`].

use std::fmt;
use std::sync::Arc;

use super::{HostRules, RouteTable, Rule};
use crate::diagnostic::FieldPath;
use crate::matching::RequestMatch;

/// The host entry a request's host chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenHost<'a> {
    /// An exact host (lowercased).
    Exact(&'a str),
    /// A wildcard host, by its suffix (`.mango.com` for `*.mango.com`).
    Wildcard(&'a str),
    /// Routes that name no host.
    Any,
}

impl fmt::Display for ChosenHost<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChosenHost::Exact(host) => f.write_str(host),
            ChosenHost::Wildcard(suffix) => write!(f, "*{suffix}"),
            ChosenHost::Any => f.write_str("(any host)"),
        }
    }
}

/// Where a match of the table is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchOrigin {
    /// The route, `namespace/name`.
    pub route: Arc<str>,
    /// The rule's index in `spec.rules`.
    pub rule: usize,
    /// The match's field (`spec.rules[0].matches[1]`; the rule's own
    /// field when it omits `matches`).
    pub field: FieldPath,
}

/// A match that can never be chosen: an earlier match of the same host
/// selects every request it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    /// The host entry, as written (`*.mango.com`, or `(any host)`).
    pub host: String,
    /// The match that is never chosen.
    pub match_: MatchOrigin,
    /// The earlier match that takes its requests.
    pub by: MatchOrigin,
}

/// The candidate matches of the host a request chose, best first.
#[derive(Debug, Clone, Copy)]
pub struct HostView<'a> {
    /// The host entry that chose them.
    pub host: ChosenHost<'a>,
    rules: &'a HostRules,
}

/// One candidate of a [`HostView`].
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The match's conditions, as the lookup reads them.
    pub matcher: &'a RequestMatch,
    /// The rule it selects.
    pub rule: &'a Arc<Rule>,
    /// Where it is written.
    pub origin: &'a MatchOrigin,
}

impl<'a> HostView<'a> {
    /// The candidates in precedence order: the lookup takes the first
    /// that matches.
    pub fn candidates(&self) -> impl Iterator<Item = Candidate<'a>> + 'a {
        let rules = self.rules;
        (rules.entries.iter().zip(rules.origins.iter())).map(|((matcher, rule), origin)| {
            Candidate {
                matcher,
                rule,
                origin,
            }
        })
    }

    /// The first earlier candidate that selects every request candidate
    /// `index` selects, so that `index` is never chosen.
    pub fn shadowed_by(&self, index: usize) -> Option<usize> {
        let entries = &self.rules.entries;
        let (later, _) = entries.get(index)?;
        entries[..index].iter().position(|(m, _)| m.covers(later))
    }

    /// The later candidates that candidate `index` shadows.
    pub fn shadows(&self, index: usize) -> Vec<usize> {
        (index + 1..self.rules.entries.len())
            .filter(|&j| self.shadowed_by(j) == Some(index))
            .collect()
    }

    /// Every shadowed candidate, with the one that shadows it.
    pub fn shadowed(&self) -> Vec<Shadowed> {
        let origins = &self.rules.origins;
        (0..origins.len())
            .filter_map(|j| {
                let i = self.shadowed_by(j)?;
                Some(Shadowed {
                    host: self.host.to_string(),
                    match_: origins[j].clone(),
                    by: origins[i].clone(),
                })
            })
            .collect()
    }
}

impl RouteTable {
    /// The candidates for a request to `host`, chosen as the lookup
    /// chooses them; `None` when no host entry (nor a route without
    /// hosts) takes it.
    pub fn host_view(&self, host: Option<&str>) -> Option<HostView<'_>> {
        let (host, rules) = self.chosen_host(host)?;
        Some(HostView { host, rules })
    }

    /// Every host entry of the table, in no order.
    pub(super) fn host_views(&self) -> impl Iterator<Item = HostView<'_>> {
        let exact = (self.exact.iter()).map(|(h, rules)| HostView {
            host: ChosenHost::Exact(h),
            rules,
        });
        let wildcard = (self.wildcard.iter()).map(|(suffix, rules)| HostView {
            host: ChosenHost::Wildcard(suffix),
            rules,
        });
        let any = (self.any_host.iter()).map(|rules| HostView {
            host: ChosenHost::Any,
            rules,
        });
        exact.chain(wildcard).chain(any)
    }

    /// Every match no request can reach, sorted by host.
    pub fn shadowed(&self) -> Vec<Shadowed> {
        let mut all: Vec<Shadowed> = self.host_views().flat_map(|v| v.shadowed()).collect();
        all.sort_by(|a, b| (&a.host, &a.match_.field).cmp(&(&b.host, &b.match_.field)));
        all
    }
}
