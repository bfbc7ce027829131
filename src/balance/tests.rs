//! Unit tests of the algorithms: exact schedules where they are
//! deterministic, tolerance bands where they are random.

use std::time::Duration;

use super::*;

fn states(n: usize) -> Vec<Arc<EndpointState>> {
    (0..n).map(|_| Arc::new(EndpointState::default())).collect()
}

fn balancer(algorithm: Algorithm, states: &[Arc<EndpointState>]) -> Balancer {
    let names: Vec<String> = (0..states.len())
        .map(|i| format!("10.0.0.{i}:80"))
        .collect();
    let endpoints: Vec<Endpoint<'_>> = names
        .iter()
        .zip(states)
        .map(|(n, s)| (n.as_str(), s.clone(), 1))
        .collect();
    Balancer::new(algorithm, &endpoints).expect("endpoints")
}

fn counts(b: &Balancer, picks: usize, now: Instant) -> Vec<usize> {
    let mut seen = vec![0; b.len()];
    for _ in 0..picks {
        seen[b.pick(None, now)] += 1;
    }
    seen
}

#[test]
fn round_robin_and_weighted_round_robin_take_strict_turns() {
    let now = Instant::now();
    for algorithm in [Algorithm::RoundRobin, Algorithm::WeightedRoundRobin] {
        let b = balancer(algorithm, &states(3));
        let turns: Vec<usize> = (0..6).map(|_| b.pick(None, now)).collect();
        assert_eq!(turns, [0, 1, 2, 0, 1, 2], "{algorithm:?}");
    }
}

#[test]
fn random_is_uniform_within_5_percent() {
    // 100k picks: ±5% is about 9 standard deviations, so this never flakes.
    let b = balancer(Algorithm::Random, &states(4));
    for (i, n) in counts(&b, 100_000, Instant::now()).iter().enumerate() {
        assert!(
            (23_750..=26_250).contains(n),
            "endpoint {i} got {n} of 100000, want 25000 ± 5%"
        );
    }
}

#[test]
fn least_connections_picks_the_idle_endpoint() {
    let s = states(3);
    let _busy = [
        s[0].start_request(),
        s[2].start_request(),
        s[2].start_request(),
    ];
    let b = balancer(Algorithm::LeastConnections, &s);
    for _ in 0..10 {
        assert_eq!(b.pick(None, Instant::now()), 1);
    }
}

#[test]
fn least_connections_ties_rotate() {
    let b = balancer(Algorithm::LeastConnections, &states(3));
    let picks: Vec<usize> = (0..6).map(|_| b.pick(None, Instant::now())).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn least_connections_follows_load_as_it_builds() {
    let s = states(2);
    let b = balancer(Algorithm::LeastConnections, &s);
    // Each request stays in flight: picks alternate as the counts even out.
    let mut held = Vec::new();
    let mut seen = [0; 2];
    for _ in 0..10 {
        let i = b.pick(None, Instant::now());
        seen[i] += 1;
        held.push(s[i].start_request());
    }
    assert_eq!(seen, [5, 5]);
}

#[test]
fn least_time_prefers_the_fast_endpoint() {
    let s = states(2);
    let now = Instant::now();
    s[0].observe_latency(Duration::from_millis(20), now);
    s[1].observe_latency(Duration::from_millis(1), now);
    let b = balancer(Algorithm::LeastTime, &s);
    assert_eq!(counts(&b, 1000, now), [0, 1000]);
}

#[test]
fn least_time_with_three_endpoints_picks_the_fast_one_whenever_drawn() {
    let s = states(3);
    let now = Instant::now();
    s[0].observe_latency(Duration::from_millis(20), now);
    s[1].observe_latency(Duration::from_millis(20), now);
    s[2].observe_latency(Duration::from_millis(1), now);
    let b = balancer(Algorithm::LeastTime, &s);
    // The fast endpoint is in 2 of the 3 possible pairs.
    let fast = counts(&b, 9000, now)[2];
    assert!((5700..=6300).contains(&fast), "fast got {fast} of 9000");
}

#[test]
fn least_time_weighs_latency_by_requests_in_flight() {
    let s = states(2);
    let now = Instant::now();
    s[0].observe_latency(Duration::from_millis(2), now);
    s[1].observe_latency(Duration::from_millis(5), now);
    let b = balancer(Algorithm::LeastTime, &s);
    assert_eq!(b.pick(None, now), 0);
    // 2ms × 3 in flight = 6 > 5ms × 1.
    let _held = [s[0].start_request(), s[0].start_request()];
    assert_eq!(b.pick(None, now), 1);
}

#[test]
fn latency_average_is_time_weighted_and_fades_when_idle() {
    let s = EndpointState::default();
    let start = Instant::now();
    assert_eq!(s.latency_us(start), 0, "no sample yet");
    s.observe_latency(Duration::from_millis(10), start);
    assert_eq!(
        s.latency_us(start),
        10_000,
        "the first sample is taken as is"
    );
    // A sample 1ms later barely moves a one-second average.
    s.observe_latency(Duration::from_millis(110), start + Duration::from_millis(1));
    let after = s.latency_us(start + Duration::from_millis(1));
    assert!((10_050..=10_150).contains(&after), "{after}");
    // One time constant later, a sample counts for 1 - 1/e.
    let later = start + Duration::from_millis(1001);
    s.observe_latency(Duration::from_millis(0), later);
    let mixed = s.latency_us(later);
    assert!((3_600..=3_800).contains(&mixed), "{mixed}");
    // Idle, it fades: by 1/e per second.
    let idle = s.latency_us(later + Duration::from_secs(1));
    assert!((1_300..=1_400).contains(&idle), "{idle}");
}

#[test]
fn consistent_hash_sends_a_key_to_the_same_endpoint() {
    let b = balancer(Algorithm::ConsistentHash, &states(5));
    let now = Instant::now();
    for k in 0..100u64 {
        let key = hash_key(format!("user-{k}").as_bytes());
        let first = b.pick(Some(key), now);
        assert!((0..10).all(|_| b.pick(Some(key), now) == first));
    }
}

#[test]
fn consistent_hash_without_a_key_takes_turns() {
    let b = balancer(Algorithm::ConsistentHash, &states(3));
    let picks: Vec<usize> = (0..6).map(|_| b.pick(None, Instant::now())).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
}

fn ring_of(n: usize) -> (Vec<String>, Ring) {
    let names: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}:80")).collect();
    let keys: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 1)).collect();
    let ring = Ring::new(&keys);
    (names, ring)
}

#[test]
fn consistent_hash_spreads_keys_evenly() {
    let (_, ring) = ring_of(5);
    let mut seen = [0usize; 5];
    for k in 0..10_000 {
        seen[ring.owner(hash_key(format!("user-{k}").as_bytes()))] += 1;
    }
    for (i, n) in seen.iter().enumerate() {
        assert!((1500..=2500).contains(n), "endpoint {i} owns {n} of 10000");
    }
}

#[test]
fn adding_an_endpoint_moves_about_one_in_n_plus_one_keys() {
    for n in [3usize, 5, 10] {
        let (before_names, before) = ring_of(n);
        let (after_names, after) = ring_of(n + 1);
        let mut moved = 0;
        for k in 0..10_000 {
            let key = hash_key(format!("user-{k}").as_bytes());
            let was = &before_names[before.owner(key)];
            let now = &after_names[after.owner(key)];
            if was != now {
                moved += 1;
                assert_eq!(now, &after_names[n], "a key moved between old endpoints");
            }
        }
        let limit = 2 * 10_000 / (n + 1);
        assert!(
            moved < limit,
            "adding 1 to {n} moved {moved} of 10000 (limit {limit})"
        );
        assert!(moved > 0, "the new endpoint took no keys");
    }
}

#[test]
fn removing_an_endpoint_moves_only_its_keys() {
    let (names, full) = ring_of(6);
    // Remove endpoint 2.
    let rest: Vec<(&str, u32)> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, n)| (n.as_str(), 1))
        .collect();
    let smaller = Ring::new(&rest);
    for k in 0..10_000 {
        let key = hash_key(format!("user-{k}").as_bytes());
        let was = names[full.owner(key)].as_str();
        let now = rest[smaller.owner(key)].0;
        if was != names[2] {
            assert_eq!(was, now, "key {k} moved although its endpoint stayed");
        }
    }
}

#[test]
fn hash_key_is_fixed_across_processes() {
    // A changed value would re-shuffle every consistent-hash deployment.
    assert_eq!(hash_key(b""), hash_key(b""));
    assert_ne!(hash_key(b"a"), hash_key(b"b"));
    assert_eq!(hash_key(b"switchyard"), 0x5a00_b377_6c04_200c);
}

fn weighted(algorithm: Algorithm, states: &[Arc<EndpointState>], weights: &[u32]) -> Balancer {
    let names: Vec<String> = (0..states.len())
        .map(|i| format!("10.0.0.{i}:80"))
        .collect();
    let endpoints: Vec<Endpoint<'_>> = names
        .iter()
        .zip(states)
        .zip(weights)
        .map(|((n, s), w)| (n.as_str(), s.clone(), *w))
        .collect();
    Balancer::new(algorithm, &endpoints).expect("endpoints")
}

#[test]
fn weighted_round_robin_is_smooth_and_exact_over_a_cycle() {
    let b = weighted(Algorithm::WeightedRoundRobin, &states(3), &[5, 1, 1]);
    let now = Instant::now();
    let turns: Vec<usize> = (0..7).map(|_| b.pick(None, now)).collect();
    assert_eq!(turns, [0, 0, 1, 0, 2, 0, 0]);
    assert_eq!(counts(&b, 700, now), [500, 100, 100]);
}

#[test]
fn random_honours_weights_within_5_percent() {
    let b = weighted(Algorithm::Random, &states(2), &[3, 1]);
    let heavy = counts(&b, 10_000, Instant::now())[0];
    assert!((7125..=7875).contains(&heavy), "heavy got {heavy} of 10000");
}

#[test]
fn least_connections_weighs_load_by_weight() {
    let s = states(2);
    let b = weighted(Algorithm::LeastConnections, &s, &[3, 1]);
    // (2+1)/3 = 1 < (0+1)/1 is false; (1+1)/3 < 1 is true.
    let _one = s[0].start_request();
    assert_eq!(b.pick(None, Instant::now()), 0);
    let _two = s[0].start_request();
    let _three = s[0].start_request();
    assert_eq!(b.pick(None, Instant::now()), 1);
}

#[test]
fn consistent_hash_shares_follow_weights() {
    let keys = [("10.0.0.1:80", 3), ("10.0.0.2:80", 1)];
    let ring = Ring::new(&keys);
    let heavy = (0..10_000)
        .filter(|k| ring.owner(hash_key(format!("user-{k}").as_bytes())) == 0)
        .count();
    assert!(
        (6500..=8500).contains(&heavy),
        "heavy owns {heavy} of 10000"
    );
}

#[test]
fn a_zero_weight_or_no_endpoint_builds_nothing() {
    assert!(Balancer::new(Algorithm::Random, &[]).is_none());
    let s = states(1);
    assert!(Balancer::new(Algorithm::Random, &[("a:1", s[0].clone(), 0)]).is_none());
}
