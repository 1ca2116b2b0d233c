//! The failure-injection testbeds themselves: every pair works, one broken unidirectional
//! path breaks exactly that direction of that pair and heals, netem adds its delay, a
//! provider link going down breaks only that provider's locator.
//!
//! Root only: without `CAP_NET_ADMIN` each test prints `SKIPPED: needs CAP_NET_ADMIN`.

use std::{collections::BTreeSet, time::Duration};

use shim6_tests::testbed::{Direction, LinShim6, MultiHomed, Netem};
use xfrm_sys::netns;

fn all_pairs() -> Vec<(usize, usize)> {
    (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).collect()
}

#[test]
fn every_pair_works() {
    if !netns::require_net_admin() {
        return;
    }
    let bed = LinShim6::new("tbpairs").unwrap();
    for (i, j) in all_pairs() {
        assert!(bed.round_trip(i, j).is_some(), "pair ({i}, {j})");
    }
    for dir in [Direction::AtoB, Direction::BtoA] {
        let got = bed.one_way(dir, &all_pairs(), (0, 0)).unwrap();
        assert_eq!(got, all_pairs().into_iter().collect(), "{dir:?}");
    }
}

#[test]
fn breaking_one_unidirectional_path_breaks_exactly_it() {
    if !netns::require_net_admin() {
        return;
    }
    let bed = LinShim6::new("tbbreak").unwrap();
    // A's locator 0 -> B's locator 1, A→B only.
    bed.break_path(Direction::AtoB, 0, 1).unwrap();
    let expected: BTreeSet<_> = all_pairs().into_iter().filter(|&p| p != (0, 1)).collect();
    assert_eq!(
        bed.one_way(Direction::AtoB, &all_pairs(), (2, 2)).unwrap(),
        expected,
        "A→B: only (0, 1) is gone"
    );
    assert_eq!(
        bed.one_way(Direction::BtoA, &all_pairs(), (2, 2)).unwrap(),
        all_pairs().into_iter().collect(),
        "B→A untouched, including (0, 1)"
    );
    assert!(
        bed.round_trip_within(0, 1, Duration::from_millis(500))
            .is_none(),
        "the round trip needs the broken direction"
    );
    assert!(bed.round_trip(1, 1).is_some());

    // The other direction of another pair, on top.
    bed.break_path(Direction::BtoA, 2, 0).unwrap();
    let got = bed.one_way(Direction::BtoA, &all_pairs(), (1, 1)).unwrap();
    assert!(!got.contains(&(2, 0)) && got.len() == 8, "{got:?}");

    bed.heal_path(Direction::AtoB, 0, 1).unwrap();
    assert!(bed.round_trip(0, 1).is_some(), "healed");
    assert_eq!(
        bed.one_way(Direction::AtoB, &all_pairs(), (0, 0))
            .unwrap()
            .len(),
        9
    );
    bed.heal_all().unwrap();
    assert_eq!(
        bed.one_way(Direction::BtoA, &all_pairs(), (0, 0))
            .unwrap()
            .len(),
        9
    );
}

#[test]
fn netem_adds_the_configured_delay() {
    if !netns::require_net_admin() {
        return;
    }
    let bed = LinShim6::new("tbnetem").unwrap();
    let delay = Duration::from_millis(80);
    bed.set_path_netem(
        Direction::AtoB,
        1,
        2,
        Netem {
            delay,
            loss_percent: 0.0,
        },
    )
    .unwrap();
    // Lower bounds only: the delayed path takes at least the delay.
    let rtt = bed.round_trip(1, 2).expect("delayed, not broken");
    assert!(rtt >= delay, "{rtt:?}");
    // A second path in the other direction, and a link delay on B's side.
    bed.set_path_netem(
        Direction::BtoA,
        0,
        0,
        Netem {
            delay,
            loss_percent: 0.0,
        },
    )
    .unwrap();
    let rtt = bed.round_trip(0, 0).expect("delayed, not broken");
    assert!(rtt >= delay, "{rtt:?}");
    bed.set_link_netem(
        Direction::BtoA,
        Netem {
            delay: Duration::from_millis(50),
            loss_percent: 0.0,
        },
    )
    .unwrap();
    let rtt = bed.round_trip(2, 1).unwrap();
    assert!(rtt >= Duration::from_millis(50), "{rtt:?}");
    let rtt = bed.round_trip(0, 0).unwrap();
    assert!(
        rtt >= delay + Duration::from_millis(50),
        "both add up: {rtt:?}"
    );
}

#[test]
fn netem_loss() {
    if !netns::require_net_admin() {
        return;
    }
    let bed = LinShim6::new("tbloss").unwrap();
    let all = Netem {
        delay: Duration::ZERO,
        loss_percent: 100.0,
    };
    bed.set_path_netem(Direction::AtoB, 2, 0, all).unwrap();
    let got = bed.one_way(Direction::AtoB, &all_pairs(), (0, 0)).unwrap();
    assert_eq!(got.len(), 8, "only (2, 0) lost: {got:?}");
    assert!(!got.contains(&(2, 0)));
    // Replacing the path's netem replaces its loss rule.
    bed.set_path_netem(Direction::AtoB, 2, 0, Netem::default())
        .unwrap();
    assert!(bed.round_trip(2, 0).is_some());
    // Link loss on everything B sends.
    bed.set_link_netem(Direction::BtoA, all).unwrap();
    assert!(
        bed.round_trip_within(1, 1, Duration::from_millis(300))
            .is_none()
    );
    bed.set_link_netem(Direction::BtoA, Netem::default())
        .unwrap();
    assert!(bed.round_trip(1, 1).is_some());
}

#[test]
fn provider_link_down_breaks_only_that_provider() {
    if !netns::require_net_admin() {
        return;
    }
    let topo = MultiHomed::new("tbmulti", 2).unwrap();
    for i in 0..2 {
        for j in 0..2 {
            assert!(topo.round_trip(i, j).is_some(), "({i}, {j})");
        }
    }
    topo.link_down(Direction::AtoB, 1).unwrap();
    let short = Duration::from_millis(500);
    for j in 0..2 {
        assert!(
            topo.round_trip(0, j).is_some(),
            "provider 0 unaffected ({j})"
        );
        assert!(
            topo.round_trip_within(1, j, short).is_none(),
            "provider 1 down ({j})"
        );
    }
    topo.link_up(Direction::AtoB, 1).unwrap();
    // Carrier comes back asynchronously: retry within a bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while topo.round_trip_within(1, 1, short).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "link up restores the path"
        );
    }
    // B's side too.
    topo.link_down(Direction::BtoA, 0).unwrap();
    assert!(topo.round_trip_within(1, 0, short).is_none());
    assert!(topo.round_trip(1, 1).is_some());
}
