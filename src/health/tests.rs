//! Health unit tests: settings validation, thresholds, backoff, the
//! ejection cap and picking past unavailable endpoints, on paused time.

use crate::upstream::{EndpointPool, Transport};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use tokio::time::Instant;

use super::active::{probe_loop, Streak};
use super::passive::Outcome;
use super::*;
use crate::api::{Algorithm, HealthCheck, PassiveHealth, StatusRange};
use crate::balance::EndpointState;
use crate::table::{Backends, Balancing, GroupSpec, NoTarget, PickContext, Picked, Target};

// === fixtures ===

fn check(healthy: u32, unhealthy: u32) -> ActiveCheck {
    ActiveCheck {
        path: http::uri::PathAndQuery::from_static("/healthz"),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        healthy_threshold: healthy,
        unhealthy_threshold: unhealthy,
        min_status: 200,
        max_status: 399,
    }
}

fn targets(n: usize) -> Vec<Target> {
    (0..n)
        .map(|i| {
            let address = format!("10.0.0.{i}:80");
            Target {
                authority: Authority::try_from(address.as_str()).unwrap(),
                state: Arc::new(EndpointState::default()),
                pool: Arc::new(EndpointPool::new(address.into(), Transport::default())),
                weight: 1,
                backend: 0,
            }
        })
        .collect()
}

fn passive(failures: u32, base: u64, max: u64, percent: u32) -> Passive {
    Passive {
        consecutive_failures: failures,
        base_ejection: Duration::from_secs(base),
        max_ejection: Duration::from_secs(max),
        max_ejected_percent: percent,
    }
}

fn fields(errors: &[crate::diagnostic::CompileError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

// === settings ===

#[test]
fn active_check_defaults() {
    let mut errors = crate::diagnostic::Problems::default();
    let compiled = ActiveCheck::compile(&HealthCheck::default(), "r", &mut errors).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(compiled.path.as_str(), "/healthz");
    assert_eq!(compiled.interval, Duration::from_secs(5));
    assert_eq!(compiled.timeout, Duration::from_secs(1));
    assert_eq!(
        (compiled.healthy_threshold, compiled.unhealthy_threshold),
        (2, 3)
    );
    assert!(compiled.passes(200) && compiled.passes(399));
    assert!(!compiled.passes(404) && !compiled.passes(500) && !compiled.passes(199));
}

#[test]
fn active_check_errors_name_their_fields() {
    let spec = HealthCheck {
        path: Some("healthz".into()),
        interval: Some("soon".into()),
        timeout: Some("10s".into()),
        healthy_threshold: Some(0),
        unhealthy_threshold: Some(0),
        expected_statuses: Some(StatusRange { min: 300, max: 200 }),
    };
    let mut errors = crate::diagnostic::Problems::default();
    assert!(ActiveCheck::compile(&spec, "spec.rules[0].healthCheck", &mut errors).is_none());
    assert_eq!(
        fields(&errors),
        [
            "spec.rules[0].healthCheck.path",
            "spec.rules[0].healthCheck.interval",
            "spec.rules[0].healthCheck.timeout",
            "spec.rules[0].healthCheck.healthyThreshold",
            "spec.rules[0].healthCheck.unhealthyThreshold",
            "spec.rules[0].healthCheck.expectedStatuses.max",
        ]
    );
    let bad_status = HealthCheck {
        expected_statuses: Some(StatusRange { min: 99, max: 600 }),
        ..HealthCheck::default()
    };
    let mut errors = crate::diagnostic::Problems::default();
    assert!(ActiveCheck::compile(&bad_status, "h", &mut errors).is_none());
    assert_eq!(
        fields(&errors),
        ["h.expectedStatuses.min", "h.expectedStatuses.max"]
    );
}

#[test]
fn passive_defaults_and_errors() {
    let mut errors = crate::diagnostic::Problems::default();
    assert_eq!(Passive::compile(None, "p", &mut errors), Passive::default());
    assert_eq!(Passive::default(), passive(5, 30, 300, 50));
    let spec = PassiveHealth {
        consecutive_failures: Some(2),
        base_ejection: Some("1m".into()),
        max_ejection: Some("10s".into()),
        max_ejected_percent: Some(101),
    };
    Passive::compile(Some(&spec), "spec.rules[1].passiveHealth", &mut errors);
    assert_eq!(
        fields(&errors),
        [
            "spec.rules[1].passiveHealth.maxEjection",
            "spec.rules[1].passiveHealth.maxEjectedPercent",
        ]
    );
    let mut errors = crate::diagnostic::Problems::default();
    let spec = PassiveHealth {
        base_ejection: Some("30".into()),
        ..PassiveHealth::default()
    };
    Passive::compile(Some(&spec), "p", &mut errors);
    assert_eq!(fields(&errors), ["p.baseEjection"]);
    // Only a base longer than the default cap: the cap follows it.
    let mut errors = crate::diagnostic::Problems::default();
    let spec = PassiveHealth {
        base_ejection: Some("10m".into()),
        ..PassiveHealth::default()
    };
    let compiled = Passive::compile(Some(&spec), "p", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(compiled.max_ejection, Duration::from_secs(600));
}

// === active ===

#[test]
fn streak_flips_on_consecutive_results_only() {
    let check = check(2, 3);
    let mut streak = Streak::default();
    let mut healthy = true;
    let mut run = |passed: bool, healthy: &mut bool| {
        if let Some(verdict) = streak.observe(passed, *healthy, &check) {
            *healthy = verdict;
            return true;
        }
        false
    };
    // Two failures, then a success: the failure streak restarts.
    assert!(!run(false, &mut healthy));
    assert!(!run(false, &mut healthy));
    assert!(!run(true, &mut healthy));
    assert!(!run(false, &mut healthy));
    assert!(!run(false, &mut healthy));
    assert!(run(false, &mut healthy), "third failure in a row flips");
    assert!(!healthy);
    assert!(
        !run(false, &mut healthy),
        "already unhealthy: no second flip"
    );
    assert!(!run(true, &mut healthy));
    assert!(!run(false, &mut healthy));
    assert!(!run(true, &mut healthy));
    assert!(
        run(true, &mut healthy),
        "second success in a row flips back"
    );
    assert!(healthy);
}

#[tokio::test(start_paused = true)]
async fn probe_loop_follows_thresholds_on_its_interval() {
    let state = Arc::new(EndpointState::default());
    let up = Arc::new(AtomicBool::new(false));
    let probes = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let task = tokio::spawn(probe_loop(
        Instant::now(),
        check(2, 3),
        state.clone(),
        Authority::from_static("10.0.0.1:80"),
        {
            let up = up.clone();
            let probes = probes.clone();
            move |_: &ActiveCheck| {
                probes.fetch_add(1, Ordering::SeqCst);
                let passed = up.load(Ordering::SeqCst);
                async move {
                    if passed {
                        Ok(())
                    } else {
                        Err("down".to_owned())
                    }
                }
            }
        },
    ));
    // Probes at 0s and 5s failed: still healthy (optimistic start).
    tokio::time::sleep_until(start + Duration::from_secs(9)).await;
    assert_eq!(probes.load(Ordering::SeqCst), 2);
    assert!(state.is_healthy());
    // The third, at 10s, takes it out.
    tokio::time::sleep_until(start + Duration::from_secs(11)).await;
    assert_eq!(probes.load(Ordering::SeqCst), 3);
    assert!(!state.is_healthy());
    assert!(!state.is_available_at(Instant::now()));
    // Back up: one pass (15s) is not enough, two (20s) are.
    up.store(true, Ordering::SeqCst);
    tokio::time::sleep_until(start + Duration::from_secs(16)).await;
    assert!(!state.is_healthy());
    tokio::time::sleep_until(start + Duration::from_secs(21)).await;
    assert_eq!(probes.load(Ordering::SeqCst), 5);
    assert!(state.is_healthy());
    task.abort();
}

#[test]
fn only_passes_during_an_ejection_end_it() {
    let check = check(2, 3);
    let mut streak = Streak::default();
    // Passes before the ejection do not count.
    assert!(!streak.observe_ejected(true, false, &check));
    assert!(!streak.observe_ejected(true, false, &check));
    assert!(!streak.observe_ejected(true, true, &check));
    // A failure restarts the count.
    assert!(!streak.observe_ejected(false, true, &check));
    assert!(!streak.observe_ejected(true, true, &check));
    assert!(
        streak.observe_ejected(true, true, &check),
        "second pass in a row"
    );
}

#[tokio::test(start_paused = true)]
async fn passing_probes_end_a_passive_ejection() {
    let state = Arc::new(EndpointState::default());
    let start = Instant::now();
    state.eject(start, Duration::from_secs(3600), Duration::from_secs(3600));
    let task = tokio::spawn(probe_loop(
        Instant::now(),
        check(2, 3),
        state.clone(),
        Authority::from_static("10.0.0.1:80"),
        |_: &ActiveCheck| async { Ok::<(), String>(()) },
    ));
    // The probe at 0s passes: one is not enough.
    tokio::time::sleep_until(start + Duration::from_secs(4)).await;
    assert!(state.is_ejected_at(Instant::now()));
    // The second, at 5s, ends the hour-long ejection; the backoff stays.
    tokio::time::sleep_until(start + Duration::from_secs(6)).await;
    assert!(state.is_available_at(Instant::now()));
    assert_eq!(state.ejections(), 1);
    task.abort();
}

// === passive ===

#[tokio::test(start_paused = true)]
async fn passive_ejection_backoff_grows_and_is_capped() {
    let targets = targets(4);
    let t = &targets[0];
    let p = passive(3, 10, 35, 50);
    let now = Instant::now();
    p.report(&targets, t, Outcome::Failure, now);
    p.report(&targets, t, Outcome::Failure, now);
    assert!(t.state.is_available_at(now), "two failures do not eject");
    p.report(&targets, t, Outcome::Failure, now);
    assert!(!t.state.is_available_at(now), "the third ejects");
    assert!(!t.state.is_available_at(now + Duration::from_millis(9_999)));
    let now = now + Duration::from_secs(10);
    assert!(t.state.is_available_at(now), "back after base (10s)");
    // Still failing: one failure ejects again, for twice as long.
    p.report(&targets, t, Outcome::Failure, now);
    assert!(!t.state.is_available_at(now + Duration::from_millis(19_999)));
    let now = now + Duration::from_secs(20);
    assert!(t.state.is_available_at(now));
    // Third ejection: 40s capped at 35s.
    p.report(&targets, t, Outcome::Failure, now);
    assert!(!t.state.is_available_at(now + Duration::from_millis(34_999)));
    let now = now + Duration::from_secs(35);
    assert!(t.state.is_available_at(now));
    assert_eq!(t.state.ejections(), 3);
    // A success resets the count and the backoff.
    p.report(&targets, t, Outcome::Success, now);
    assert_eq!(t.state.ejections(), 0);
    p.report(&targets, t, Outcome::Failure, now);
    p.report(&targets, t, Outcome::Failure, now);
    assert!(
        t.state.is_available_at(now),
        "a success restarted the count"
    );
    p.report(&targets, t, Outcome::Failure, now);
    assert!(!t.state.is_available_at(now + Duration::from_millis(9_999)));
    assert!(t.state.is_available_at(now + Duration::from_secs(10)));
}

#[tokio::test(start_paused = true)]
async fn ejection_stops_at_max_ejected_percent() {
    let targets = targets(4);
    let p = passive(1, 30, 300, 50);
    let now = Instant::now();
    for t in &targets {
        p.report(&targets, t, Outcome::Failure, now);
    }
    let ejected = targets
        .iter()
        .filter(|t| t.state.is_ejected_at(now))
        .count();
    assert_eq!(ejected, 2, "50% of 4");
    // Once the first ejections expire, the others may go.
    let later = now + Duration::from_secs(30);
    p.report(&targets, &targets[3], Outcome::Failure, later);
    assert!(targets[3].state.is_ejected_at(later));

    // One endpoint: never ejected below 100%.
    let single = self::targets(1);
    p.report(&single, &single[0], Outcome::Failure, now);
    assert!(single[0].state.is_available_at(now));
    passive(1, 30, 300, 100).report(&single, &single[0], Outcome::Failure, now);
    assert!(!single[0].state.is_available_at(now));
    // Off: never ejected.
    let off = self::targets(2);
    for _ in 0..10 {
        passive(0, 30, 300, 100).report(&off, &off[0], Outcome::Failure, now);
    }
    assert!(off[0].state.is_available_at(now));
}

// === picking ===

/// Static endpoints with these weights, in one pool as compile builds it
/// (weight-0 endpoints are left out of the pool, as compile does).
fn backends(weights: &[u32]) -> Backends {
    let mut targets = targets(weights.len());
    for (t, w) in targets.iter_mut().zip(weights) {
        t.weight = *w;
    }
    let weighted: Vec<usize> = (0..weights.len()).filter(|i| weights[*i] > 0).collect();
    let pool = GroupSpec {
        weights: weighted.iter().map(|i| weights[*i]).collect(),
        weight: weights.iter().sum(),
        targets: weighted,
    };
    Backends::Ready {
        balancer: Balancing::new(Algorithm::RoundRobin, None, None, &targets, &[pool]).unwrap(),
        targets: targets.into_boxed_slice(),
    }
}

/// A bare request's pick at `now`.
fn pick_at(backends: &Backends, now: Instant) -> Result<&Target, NoTarget<'_>> {
    let headers = http::HeaderMap::new();
    let cx = PickContext {
        client: std::net::Ipv4Addr::LOCALHOST.into(),
        headers: &headers,
        query: None,
        now,
    };
    backends.pick(&cx).map(|picked| picked.target)
}

#[tokio::test(start_paused = true)]
async fn pick_skips_unavailable_then_takes_an_ejected_endpoint_as_a_last_resort() {
    let now = Instant::now();
    let b = backends(&[1, 1, 1, 1]);
    let t = b.targets();
    t[1].state.set_healthy(false);
    t[2].state
        .eject(now, Duration::from_secs(30), Duration::from_secs(30));
    for _ in 0..20 {
        let picked = pick_at(&b, now).unwrap();
        assert!(
            Arc::ptr_eq(&picked.state, &t[0].state) || Arc::ptr_eq(&picked.state, &t[3].state),
            "picked {}",
            picked.authority
        );
    }
    // Every endpoint out: the ejected one (its checks pass) before a 503.
    t[0].state.set_healthy(false);
    t[3].state.set_healthy(false);
    for _ in 0..8 {
        assert_eq!(pick_at(&b, now).unwrap().authority, t[2].authority);
    }
    // Known down by its checks too: now nothing may take the request.
    t[2].state.set_healthy(false);
    assert!(matches!(pick_at(&b, now), Err(NoTarget::Unhealthy)));
    // Checks pass again, the ejection ends; t[2] takes everything.
    t[2].state.set_healthy(true);
    let later = now + Duration::from_secs(30);
    assert_eq!(pick_at(&b, later).unwrap().authority, t[2].authority);
    assert!(t[2].state.is_available_at(later));
}

#[tokio::test(start_paused = true)]
async fn every_endpoint_ejected_still_spreads_the_load_over_them() {
    let now = Instant::now();
    let b = backends(&[1, 1, 1]);
    let t = b.targets();
    for target in t {
        target
            .state
            .eject(now, Duration::from_secs(30), Duration::from_secs(30));
    }
    let mut seen = std::collections::HashMap::new();
    for _ in 0..30 {
        *seen
            .entry(pick_at(&b, now).unwrap().authority.clone())
            .or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.values().all(|n| *n == 10),
        "round robin turns: {seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_falls_back_to_an_ejected_endpoint_but_never_to_a_failing_one() {
    let now = Instant::now();
    let b = backends(&[1, 1, 1]);
    let t = b.targets();
    let except = |skip: usize| move |target: &Target| !std::ptr::eq(target, &t[skip]);
    // t[0] failed; t[1] is available: it is the retry.
    t[2].state
        .eject(now, Duration::from_secs(30), Duration::from_secs(30));
    let picked = Picked::fallback(t, now, except(0)).unwrap();
    assert_eq!(picked.target.authority, t[1].authority);
    // t[1] fails its checks: the ejected t[2] rather than nothing.
    t[1].state.set_healthy(false);
    let picked = Picked::fallback(t, now, except(0)).unwrap();
    assert_eq!(picked.target.authority, t[2].authority);
    assert!(picked.set_cookie.is_none());
    // t[2] fails its checks as well: no retry.
    t[2].state.set_healthy(false);
    assert!(Picked::fallback(t, now, except(0)).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_successful_last_resort_ends_the_ejection_a_straggler_does_not() {
    let targets = targets(2);
    let t = &targets[0];
    let p = passive(1, 60, 60, 50);
    let now = Instant::now();
    p.report(&targets, t, Outcome::Failure, now);
    assert!(t.state.is_ejected_at(now));
    // A request sent before the ejection succeeds: it proves nothing.
    p.report(&targets, t, Outcome::Success, now);
    assert!(t.state.is_ejected_at(now), "a straggler ended the ejection");
    assert_eq!(t.state.ejections(), 1);
    // A last resort that fails changes nothing, and is over.
    t.state.begin_trial();
    p.report(&targets, t, Outcome::Failure, now);
    p.report(&targets, t, Outcome::Success, now);
    assert!(
        t.state.is_ejected_at(now),
        "a failed trial ended the ejection"
    );
    // A last resort that succeeds ends it, and the backoff with it.
    t.state.begin_trial();
    p.report(&targets, t, Outcome::Success, now);
    assert!(t.state.is_available_at(now));
    assert_eq!(t.state.ejections(), 0);
    // A trial left pending does not outlive the next ejection.
    t.state.begin_trial();
    p.report(&targets, t, Outcome::Failure, now);
    p.report(&targets, t, Outcome::Success, now);
    assert!(t.state.is_ejected_at(now));
}

#[tokio::test(start_paused = true)]
async fn pick_finds_a_light_endpoint_behind_a_dead_heavy_one() {
    let now = Instant::now();
    // Weight 0 is never picked, even as the fallback.
    let b = backends(&[10, 1, 0]);
    let t = b.targets();
    t[0].state.set_healthy(false);
    for _ in 0..30 {
        assert_eq!(pick_at(&b, now).unwrap().authority, t[1].authority);
    }
    t[1].state.set_healthy(false);
    assert!(matches!(pick_at(&b, now), Err(NoTarget::Unhealthy)));
}

#[test]
fn outcomes_of_answered_requests() {
    let of = |code: u16| Outcome::of_status(http::StatusCode::from_u16(code).unwrap());
    assert_eq!(of(200), Outcome::Success);
    assert_eq!(of(404), Outcome::Success);
    assert_eq!(of(500), Outcome::Failure);
    assert_eq!(of(503), Outcome::Failure);
}
