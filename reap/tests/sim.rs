//! Simulator scenarios (test tier 3): random failure patterns over many seeds, checked
//! for convergence, absence of flapping, giving up on a dead peer and recovery after a
//! path heals. Everything runs in virtual time; no test waits on the clock.

use std::time::{Duration, Instant};

use reap::rng::Rng;
use reap::sim::{Action, Host, Link, Path, Sim, SimConfig, Traffic, locator_addr};
use reap::{Config, Event, FailureCause, Hint, Pair, ReapState};

/// The single epoch of this test binary: the simulator only adds durations to it.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

const S: Duration = Duration::from_secs(1);

fn every(ms: u64) -> Traffic {
    Traffic::Constant {
        interval: Duration::from_millis(ms),
    }
}

fn sim(seed: u64, traffic: [Traffic; 2]) -> Sim {
    Sim::new(
        SimConfig {
            seed,
            traffic,
            ..SimConfig::default()
        },
        epoch(),
    )
    .unwrap()
}

fn count<F: Fn(&Event) -> bool>(sim: &Sim, h: Host, f: F) -> usize {
    sim.host(h).events.iter().filter(|(_, e)| f(e)).count()
}

/// Traffic patterns with at least one sender (an idle context detects nothing, by
/// design: RFC 5534 §1).
fn random_traffic(rng: &mut Rng) -> [Traffic; 2] {
    let ms = [20, 100, 500, 2000][rng.index(4)];
    match rng.index(3) {
        0 => [every(ms), every(ms)],
        1 => [every(ms), Traffic::Silent],
        _ => [Traffic::Silent, every(ms)],
    }
}

/// Cuts each unidirectional path with probability `p`, keeping at least one working
/// path per direction; returns the cut paths.
fn random_failures(sim: &mut Sim, rng: &mut Rng, p: f64) -> Vec<Path> {
    loop {
        let cut: Vec<Path> = sim.paths().into_iter().filter(|_| rng.unit() < p).collect();
        let per_dir = sim.locators() * sim.locators();
        if Host::BOTH
            .into_iter()
            .all(|h| cut.iter().filter(|x| x.from == h).count() < per_dir)
        {
            for x in &cut {
                sim.apply(Action::Cut(*x));
            }
            return cut;
        }
    }
}

#[test]
fn converges_to_working_pairs_under_random_failures() {
    let mut slowest = Duration::ZERO;
    for seed in 0..300u64 {
        let mut rng = Rng::from_u64(seed);
        let traffic = random_traffic(&mut rng);
        let mut s = sim(seed, traffic);
        // Random path delays, 0–80 ms.
        for a in 0..3 {
            for b in 0..3 {
                s.set_pair_delay(a, b, Duration::from_millis(rng.index(9) as u64 * 10));
            }
        }
        s.run_until(10 * S).unwrap();
        assert!(
            s.converged(),
            "seed {seed}: not converged before any failure"
        );
        let p = rng.uniform(0.1, 0.95);
        let cut = random_failures(&mut s, &mut rng, p);
        let failed_at = s.elapsed();
        let done = s
            .run_until_cond(failed_at + 900 * S, |x| x.converged())
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "seed {seed}: no convergence; traffic {traffic:?}, cut {}, A {:?} {}, B {:?} {}",
                    cut.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "),
                    s.reap(Host::A).state(),
                    s.reap(Host::A).current_pair(),
                    s.reap(Host::B).state(),
                    s.reap(Host::B).current_pair(),
                )
            });
        slowest = slowest.max(done.duration_since(s.epoch()) - failed_at);
        // And it stays converged: no further flapping once a working pair is in use.
        let changes: usize = Host::BOTH
            .into_iter()
            .map(|h| count(&s, h, |e| matches!(e, Event::PathChanged { .. })))
            .sum();
        s.run_for(120 * S).unwrap();
        assert!(s.converged(), "seed {seed}: lost convergence");
        let later: usize = Host::BOTH
            .into_iter()
            .map(|h| count(&s, h, |e| matches!(e, Event::PathChanged { .. })))
            .sum();
        assert_eq!(
            changes, later,
            "seed {seed}: path changed after convergence"
        );
    }
    // Detection takes a Send Timeout (≤ 15 s); a full round at the back-off fits in a
    // few minutes even with one working path per direction.
    assert!(slowest < 300 * S, "slowest recovery {slowest:?}");
}

#[test]
fn converges_with_packet_loss() {
    for seed in 0..40u64 {
        let mut rng = Rng::from_u64(1000 + seed);
        let mut s = sim(1000 + seed, [every(100), every(100)]);
        for p in s.paths() {
            let l = s.link(p);
            s.apply(Action::SetLink(p, Link { loss: 0.05, ..l }));
        }
        s.run_until(10 * S).unwrap();
        random_failures(&mut s, &mut rng, 0.5);
        s.apply(Action::Cut(Path::new(Host::A, 0, 0)));
        s.apply(Action::Cut(Path::new(Host::B, 0, 0)));
        // Keep a working path per direction even after the two extra cuts.
        for h in Host::BOTH {
            if !s.direction_has_working_path(h) {
                s.apply(Action::Heal(Path::new(h, 2, 2)));
            }
        }
        let at = s.elapsed();
        let ok = s.run_until_cond(at + 900 * S, |x| x.converged()).unwrap();
        assert!(ok.is_some(), "seed {seed}: no convergence with 5 % loss");
    }
}

#[test]
fn never_flaps_when_nothing_is_broken() {
    let patterns = [
        [every(100), every(100)],
        [every(100), Traffic::Silent],
        [Traffic::Silent, every(50)],
        [every(2000), every(7000)],
        [every(13_000), Traffic::Silent],
    ];
    for seed in 0..25u64 {
        let mut rng = Rng::from_u64(2000 + seed);
        let traffic = patterns[seed as usize % patterns.len()];
        // Asymmetric Send Timeouts, announced through the Keepalive Timeout option.
        let a_cfg = Config {
            send_timeout: [10, 15, 30][seed as usize % 3] * S,
            ..Config::default()
        };
        let mut s = Sim::new(
            SimConfig {
                seed: 2000 + seed,
                traffic,
                reap: [a_cfg, Config::default()],
                ..SimConfig::default()
            },
            epoch(),
        )
        .unwrap();
        for a in 0..3 {
            for b in 0..3 {
                s.set_pair_delay(a, b, Duration::from_millis(rng.index(9) as u64 * 10));
            }
        }
        // On/off phases: traffic stops and restarts, the Keepalive Timer runs out.
        for k in 1..6u32 {
            let h = if rng.index(2) == 0 { Host::A } else { Host::B };
            s.schedule(k * 180 * S, Action::SetTraffic(h, Traffic::Silent));
            s.schedule(
                k * 180 * S + 40 * S,
                Action::SetTraffic(h, traffic[h as usize]),
            );
        }
        s.run_until(20 * 60 * S).unwrap();
        for h in Host::BOTH {
            let r = s.reap(h);
            assert_eq!(r.state(), ReapState::Operational, "seed {seed} host {h}");
            assert_eq!(r.stats().explorations, 0, "seed {seed} host {h}: explored");
            assert_eq!(r.stats().probes_sent, 0, "seed {seed} host {h}: probed");
            assert_eq!(
                r.stats().path_changes,
                0,
                "seed {seed} host {h}: changed path"
            );
        }
        if traffic[1] == Traffic::Silent {
            assert!(
                s.reap(Host::B).stats().keepalives_sent > 0,
                "seed {seed}: one-way traffic must be answered by Keepalives"
            );
        }
    }
}

#[test]
fn stops_probing_when_the_peer_is_gone() {
    for seed in 0..10u64 {
        let mut s = sim(3000 + seed, [every(100), every(300)]);
        s.run_until(10 * S).unwrap();
        s.apply(Action::CutAll);
        s.run_until(30 * 60 * S).unwrap();
        for h in Host::BOTH {
            assert_eq!(
                count(&s, h, |e| *e == Event::PeerUnreachable),
                1,
                "seed {seed} host {h}"
            );
            assert!(s.reap(h).given_up());
        }
        let before = s.probes_sent_total();
        s.run_until(3 * 60 * 60 * S).unwrap();
        assert_eq!(
            s.probes_sent_total(),
            before,
            "seed {seed}: probing after give-up"
        );
        // Bounded cost: the back-off keeps the total small.
        assert!(before < 2 * 40, "seed {seed}: {before} probes");
    }
}

#[test]
fn recovers_when_paths_heal() {
    for seed in 0..30u64 {
        let mut rng = Rng::from_u64(4000 + seed);
        let mut s = sim(4000 + seed, [every(100), every(100)]);
        s.run_until(10 * S).unwrap();
        s.apply(Action::CutAll);
        // Heal while backing off: everything, or a single random pair both ways.
        let heal_at = (30 + rng.index(200) as u32) * S;
        s.run_until(heal_at).unwrap();
        let all = seed % 3 == 0;
        if all {
            s.apply(Action::HealAll);
        } else {
            let (a, b) = (rng.index(3), rng.index(3));
            s.apply(Action::Heal(Path::new(Host::A, a, b)));
            s.apply(Action::Heal(Path::new(Host::B, b, a)));
        }
        let done = s
            .run_until_cond(heal_at + 15 * 60 * S, |x| x.converged())
            .unwrap()
            .unwrap_or_else(|| panic!("seed {seed}: no recovery after healing"));
        let took = done.duration_since(s.epoch()) - heal_at;
        // At most one probe interval (≤ 66 s) when everything heals, one round of
        // candidates at the cap otherwise.
        let bound = if all { 70 * S } else { 11 * 60 * S };
        assert!(took <= bound, "seed {seed}: took {took:?}");
        assert!(Host::BOTH.into_iter().all(|h| !s.reap(h).given_up()));
    }
}

#[test]
fn unidirectional_paths_use_different_pairs_per_direction() {
    // Only A2 → B3 works from A, only B1 → A1 from B (RFC 5534 §3.3 unidirectionally
    // operational pairs; App. A example 5 ends the same way).
    for seed in 0..20u64 {
        let mut s = sim(5000 + seed, [every(100), every(100)]);
        s.run_until(10 * S).unwrap();
        for p in s.paths() {
            let keep = p == Path::new(Host::A, 1, 2) || p == Path::new(Host::B, 0, 0);
            if !keep {
                s.apply(Action::Cut(p));
            }
        }
        let at = s.elapsed();
        s.run_until_cond(at + 600 * S, |x| x.converged())
            .unwrap()
            .unwrap_or_else(|| panic!("seed {seed}: no convergence"));
        assert_eq!(
            s.reap(Host::A).current_pair(),
            Pair::new(locator_addr(Host::A, 1), locator_addr(Host::B, 2))
        );
        assert_eq!(
            s.reap(Host::B).current_pair(),
            Pair::new(locator_addr(Host::B, 0), locator_addr(Host::A, 0)),
            "B keeps (B1, A1), which still works"
        );
    }
}

#[test]
fn one_way_failure_of_the_current_pair_is_repaired() {
    // RFC 5534 App. A example 5: A1→B1 breaks, B1→A1 still works.
    for seed in 0..20u64 {
        let mut s = sim(6000 + seed, [every(100), every(100)]);
        s.run_until(10 * S).unwrap();
        s.apply(Action::Cut(Path::new(Host::A, 0, 0)));
        let at = s.elapsed();
        let done = s
            .run_until_cond(at + 120 * S, |x| x.converged())
            .unwrap()
            .expect("converges");
        let took = done.duration_since(s.epoch()) - at;
        assert!(
            took <= 16 * S,
            "seed {seed}: one Send Timeout plus a round trip: {took:?}"
        );
        // B noticed first (it stopped hearing A) and probed.
        assert!(
            count(&s, Host::B, |e| matches!(
                e,
                Event::PathFailed {
                    cause: FailureCause::SendTimeout,
                    ..
                }
            )) == 1
        );
        assert_ne!(
            s.reap(Host::A).current_pair(),
            Pair::new(locator_addr(Host::A, 0), locator_addr(Host::B, 0))
        );
    }
}

#[test]
fn forged_icmp_moves_nothing() {
    for seed in 0..20u64 {
        let mut s = sim(7000 + seed, [every(100), every(100)]);
        s.run_until(10 * S).unwrap();
        let cur = s.reap(Host::A).current_pair();
        s.apply(Action::Hint(Host::A, Hint::Icmp(cur)));
        s.run_for(60 * S).unwrap();
        assert!(s.converged());
        for h in Host::BOTH {
            assert_eq!(s.reap(h).stats().path_changes, 0, "seed {seed} host {h}");
        }
        assert_eq!(s.reap(Host::A).current_pair(), cur);
        assert!(
            s.probes_sent_total() <= 6,
            "seed {seed}: {}",
            s.probes_sent_total()
        );
    }
}

#[test]
fn local_address_down_recovers_without_waiting_for_the_send_timer() {
    for seed in 0..20u64 {
        let mut s = sim(8000 + seed, [every(100), every(100)]);
        s.run_until(10 * S).unwrap();
        // A1 goes away: every path through it, then the hint.
        for p in s.paths() {
            let a_idx = if p.from == Host::A {
                p.from_idx
            } else {
                p.to_idx
            };
            if a_idx == 0 {
                s.apply(Action::Cut(p));
            }
        }
        s.apply(Action::Hint(
            Host::A,
            Hint::LocalAddressDown(locator_addr(Host::A, 0)),
        ));
        let at = s.elapsed();
        let done = s
            .run_until_cond(at + 60 * S, |x| x.converged())
            .unwrap()
            .expect("converges");
        assert!(
            done.duration_since(s.epoch()) - at < S,
            "seed {seed}: immediate recovery"
        );
        assert_ne!(
            s.reap(Host::A).current_pair().local,
            locator_addr(Host::A, 0)
        );
    }
}

#[test]
fn same_seed_same_run() {
    let run = || {
        let mut s = sim(99, [every(100), every(250)]);
        s.run_until(10 * S).unwrap();
        for p in [
            Path::new(Host::A, 0, 0),
            Path::new(Host::B, 0, 0),
            Path::new(Host::A, 1, 1),
        ] {
            s.apply(Action::Cut(p));
        }
        s.run_until(200 * S).unwrap();
        let rel = |h: Host| -> Vec<(Duration, Event)> {
            s.host(h)
                .events
                .iter()
                .map(|(t, e)| (t.duration_since(s.epoch()), e.clone()))
                .collect()
        };
        (rel(Host::A), rel(Host::B), s.probes_sent_total())
    };
    assert_eq!(run(), run());
}
