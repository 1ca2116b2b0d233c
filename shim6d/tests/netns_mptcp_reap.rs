//! REAP drives the MPTCP path manager inside two real shim6d processes (issue 8): the
//! daemons run on the LinShim6 testbed with `[mptcp] enabled` (fullmesh) and a short
//! REAP Send Timeout, an MPTCP connection between their ULIDs carries data all along,
//! and a locator pair carrying a subflow is broken **at the router** (the testbed's nft
//! set), never through the driver: the daemon's REAP must declare the pair dead, the
//! subflows on it must go on both sides (`sock_diag` of both namespaces), the stream
//! must keep flowing with its bytes intact, and once the pair is healed the subflow
//! must come back.
//!
//! Root only (`SKIPPED: needs CAP_NET_ADMIN` otherwise); unique namespaces, bounded
//! waits, cleanup on drop (the harness `shim6_tests::daemons`); no timing assertions.

mod netns_mptcp_reap_kit;

use netns_mptcp_reap_kit::{Scenario, reap_options};
use xfrm_sys::netns;

/// Breaks, both ways, a pair that carries a busy extra subflow but not the Shim6
/// context (so no REAP exploration moves anything): the daemon's stall rule (REAP's
/// Send Timeout rule on the subflow) declares it dead, the subflow goes on both sides
/// (the `RM_ADDR` travels on the initial subflow), the stream goes on; healed, the
/// re-test join brings the subflow back.
#[test]
fn a_broken_pair_carrying_a_busy_subflow_loses_it_on_both_sides_and_gets_it_back() {
    if !netns::require_net_admin() {
        return;
    }
    let mut s = Scenario::start("mpq", reap_options(2.0));
    let current = s.current_pair();
    let victim = s.busiest_extra_pair(&[current]);
    s.break_both(victim);
    s.until_no_joins_on(victim);
    s.until_dead_on_a(victim);
    s.assert_stream_flowing("with the pair dead");
    // Only that pair: the other extra pairs keep (or get back) their subflows.
    let others: Vec<_> = s
        .extra_pairs()
        .into_iter()
        .filter(|p| *p != victim)
        .collect();
    s.until_joins_cover(&others, "subflows on every other pair");
    s.heal_both(victim);
    s.until_alive_on_a(victim);
    s.until_joins_cover(&[victim], "the subflow back on the healed pair");
    s.finish();
}

/// Breaks the Shim6 context's current pair, which carries the initial subflow (the
/// connection between the ULIDs goes through the shim on that pair), both ways: REAP
/// declares it dead and moves the context; the initial subflow follows, the extra
/// subflows carry the stream meanwhile. Then the pair REAP moved to, which carries an
/// extra subflow, is broken one way only: REAP declares it dead, its subflow goes on
/// both sides; healed, the subflow comes back.
#[test]
fn reap_verdicts_on_broken_pairs_take_their_subflows_off_and_bring_them_back() {
    if !netns::require_net_admin() {
        return;
    }
    let mut s = Scenario::start("mpr", reap_options(2.0));
    // 1. The initial subflow's pair, both ways.
    let (ua, ub) = s.pair.ulids();
    let first = s.current_pair();
    assert_eq!(first, (ua, ub), "the context starts on the ULID pair");
    s.break_both(first);
    let second = s.until_moved_from(first);
    s.until_dead_on_a(first);
    // The subflows on the other pairs never depended on it: still there on both sides.
    s.until_joins_cover(&[second], "a subflow on the pair REAP moved to");
    s.heal_both(first);
    s.assert_stream_flowing("after the initial pair's failure");

    // 2. A pair carrying an extra subflow (the one REAP moved to), A -> B only.
    s.pair.bed.break_addrs(second.0, second.1).unwrap();
    s.until_dead_on_a(second);
    s.until_no_joins_on(second);
    s.assert_stream_flowing("with the pair dead");
    s.pair.bed.heal_addrs(second.0, second.1).unwrap();
    s.until_alive_on_a(second);
    s.until_joins_cover(&[second], "the subflow back on the healed pair");
    s.finish();
}
