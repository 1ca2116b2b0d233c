//! Engine tests: one group per policy, and the event orders the kernel and the service
//! loop can produce. Time is advanced by hand.

use super::*;

const T: Token = Token(0xa871_3a27);
const PORT: u16 = 8080;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Ours: L1 (the initial subflow's), L2. The peer's: R1 (its ULID, the initial
/// subflow's remote), R2; R3 is never verified.
fn l1() -> Ipv6Addr {
    a("2001:db8:1::1")
}
fn l2() -> Ipv6Addr {
    a("2001:db8:2::1")
}
fn r1() -> Ipv6Addr {
    a("2001:db8:1::2")
}
fn r2() -> Ipv6Addr {
    a("2001:db8:2::2")
}
fn r3() -> Ipv6Addr {
    a("2001:db8:3::2")
}

fn sa(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(ip), port)
}

fn conn(token: Token, server_side: bool) -> Connection {
    Connection {
        token,
        local: sa(l1(), 40000),
        remote: sa(r1(), PORT),
        loc_id: 0,
        rem_id: 0,
        server_side,
        flags: 0,
        other: vec![],
    }
}

fn view(remotes: &[Ipv6Addr]) -> PeerView {
    PeerView {
        ulid_peer: r1(),
        locals: vec![l1(), l2()],
        remotes: remotes.to_vec(),
    }
}

fn sub(local: Ipv6Addr, lport: u16, remote: Ipv6Addr, backup: bool, error: Option<u8>) -> Subflow {
    Subflow {
        token: T,
        local: sa(local, lport),
        remote: sa(remote, PORT),
        loc_id: 1,
        rem_id: 1,
        backup,
        if_idx: None,
        error,
        reset_reason: None,
        reset_flags: None,
        other: vec![],
    }
}

fn drain(e: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

fn create(local: Ipv6Addr, remote: Ipv6Addr, backup: bool) -> Action {
    Action::CreateSubflow {
        token: T,
        local: IpAddr::V6(local),
        remote: sa(remote, PORT),
        backup,
    }
}

fn engine(policy: Policy, max: u8) -> Engine {
    Engine::new(PolicyConfig {
        policy,
        max_subflows: max,
    })
}

/// An engine with the peer known and the connection established; returns the actions.
fn established(policy: Policy, max: u8, now: Instant) -> (Engine, Vec<Action>) {
    let mut e = engine(policy, max);
    e.set_peer(view(&[r1(), r2()]), now);
    e.handle_event(&Event::Created(conn(T, false)), now);
    assert_eq!(drain(&mut e), [], "nothing before ESTABLISHED (pitfall 4)");
    e.handle_event(&Event::Established(conn(T, false)), now);
    let acts = drain(&mut e);
    (e, acts)
}

/// The subflows of `acts` come up (local ports 50000, 50001, ...).
fn bring_up(e: &mut Engine, acts: &[Action], now: Instant) -> Vec<Subflow> {
    let mut out = Vec::new();
    for (i, act) in acts.iter().enumerate() {
        if let Action::CreateSubflow {
            local,
            remote,
            backup,
            ..
        } = act
        {
            let IpAddr::V6(l) = local else { panic!() };
            let IpAddr::V6(r) = remote.ip() else { panic!() };
            let s = sub(*l, 50000 + u16::try_from(i).unwrap(), r, *backup, None);
            e.handle_event(&Event::SubEstablished(s.clone()), now);
            out.push(s);
        }
    }
    out
}

// ---- fullmesh ----------------------------------------------------------------------

#[test]
fn test_fullmesh_established_creates_one_subflow_per_verified_pair_disjoint_first() {
    let now = Instant::now();
    let (_, acts) = established(Policy::Fullmesh, 4, now);
    assert_eq!(
        acts,
        [
            create(l2(), r2(), false), // shares no locator with (L1, R1)
            create(l1(), r2(), false),
            create(l2(), r1(), false),
        ]
    );
}

#[test]
fn test_fullmesh_peer_after_established_gives_the_same_subflows() {
    let now = Instant::now();
    let mut e = engine(Policy::Fullmesh, 4);
    e.handle_event(&Event::Established(conn(T, false)), now);
    assert_eq!(drain(&mut e), [], "not a Shim6 peer yet: left alone");
    assert!(
        e.decisions().any(|d| d.reason.contains("not a Shim6 peer")),
        "the reason is remembered"
    );
    e.set_peer(view(&[r1(), r2()]), now);
    let (_, want) = established(Policy::Fullmesh, 4, now);
    assert_eq!(drain(&mut e), want);
}

#[test]
fn test_fullmesh_repeated_events_create_nothing_twice() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    // ESTABLISHED again (a resync repeating it), the peer again: requests are in flight.
    e.handle_event(&Event::Established(conn(T, false)), now);
    e.set_peer(view(&[r1(), r2()]), now);
    assert_eq!(drain(&mut e), []);
    let subs = bring_up(&mut e, &acts, now);
    assert_eq!(drain(&mut e), []);
    for s in &subs {
        e.handle_event(&Event::SubEstablished(s.clone()), now);
    }
    e.handle_timeout(now + Duration::from_secs(120));
    assert_eq!(drain(&mut e), []);
    let st = e.status(now);
    assert_eq!(st.connections[0].subflows.len(), 3);
    assert!(st.connections[0].subflows.iter().all(|s| s.state == "up"));
}

#[test]
fn test_late_answer_beyond_the_cap_is_destroyed() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 2, now);
    assert_eq!(acts, [create(l2(), r2(), false)]);
    // The request is given up (no answer), retried, and then both come up.
    e.handle_timeout(now + PENDING_TIMEOUT);
    let t = now + PENDING_TIMEOUT + RETRY_BASE;
    e.handle_timeout(t);
    assert_eq!(drain(&mut e), acts);
    let first = sub(l2(), 50000, r2(), false, None);
    let late = sub(l2(), 50001, r2(), false, None);
    e.handle_event(&Event::SubEstablished(first), t);
    e.handle_event(&Event::SubEstablished(late.clone()), t);
    assert_eq!(
        drain(&mut e),
        [Action::DestroySubflow {
            token: T,
            local: late.local,
            remote: late.remote
        }]
    );
}

#[test]
fn test_fullmesh_respects_max_subflows() {
    let now = Instant::now();
    let (_, acts) = established(Policy::Fullmesh, 2, now);
    assert_eq!(acts, [create(l2(), r2(), false)]);
    let (_, acts) = established(Policy::Fullmesh, 1, now);
    assert_eq!(acts, []);
}

// ---- verification (rule 3) and non-Shim6 peers (rule 2) -------------------------------

#[test]
fn test_unverified_locator_never_gets_a_subflow() {
    let now = Instant::now();
    let mut e = engine(Policy::Fullmesh, 8);
    // R3 belongs to the peer but never passed verification: it is not in the view.
    e.set_peer(view(&[r1(), r2()]), now);
    e.handle_event(&Event::Established(conn(T, false)), now);
    let acts = drain(&mut e);
    assert_eq!(acts.len(), 3);
    assert!(acts.iter().all(|act| !matches!(act,
        Action::CreateSubflow { remote, .. } if remote.ip() == IpAddr::V6(r3()))));
    // A subflow to R3 made by someone else is destroyed.
    let rogue = sub(l2(), 50999, r3(), false, None);
    e.handle_event(&Event::SubEstablished(rogue.clone()), now);
    assert_eq!(
        drain(&mut e),
        [Action::DestroySubflow {
            token: T,
            local: rogue.local,
            remote: rogue.remote
        }]
    );
}

#[test]
fn test_verified_set_shrinks_subflows_to_the_dropped_locator_go() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    let subs = bring_up(&mut e, &acts, now);
    e.set_peer(view(&[r1()]), now);
    let mut acts = drain(&mut e);
    acts.sort_by_key(|a| a.to_string());
    let mut gone: Vec<_> = subs
        .iter()
        .filter(|s| s.remote.ip() == IpAddr::V6(r2()))
        .map(|s| Action::DestroySubflow {
            token: T,
            local: s.local,
            remote: s.remote,
        })
        .collect();
    gone.sort_by_key(|a| a.to_string());
    assert_eq!(gone.len(), 2);
    assert_eq!(acts, gone);
}

#[test]
fn test_non_shim6_peer_is_left_alone() {
    let now = Instant::now();
    let mut e = engine(Policy::Fullmesh, 4);
    // A peer is known, but the connection goes elsewhere.
    e.set_peer(
        PeerView {
            ulid_peer: a("2001:db8:99::1"),
            locals: vec![l1(), l2()],
            remotes: vec![a("2001:db8:99::1")],
        },
        now,
    );
    e.handle_event(&Event::Established(conn(T, false)), now);
    e.bytes_carried(T, 1 << 40, now);
    e.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(drain(&mut e), []);
    assert_eq!(e.status(now).connections[0].peer, None);
    // The same reason is not repeated on every replan.
    let n = e
        .decisions()
        .filter(|d| d.reason.contains("not a Shim6 peer"))
        .count();
    assert_eq!(n, 1);
}

#[test]
fn test_server_side_and_ipv4_connections_get_no_subflows() {
    let now = Instant::now();
    let mut e = engine(Policy::Fullmesh, 4);
    e.set_peer(view(&[r1(), r2()]), now);
    e.handle_event(&Event::Established(conn(T, true)), now);
    let mut v4 = conn(Token(2), false);
    v4.local = "192.0.2.1:40000".parse().unwrap();
    v4.remote = "192.0.2.2:8080".parse().unwrap();
    e.handle_event(&Event::Established(v4), now);
    assert_eq!(drain(&mut e), []);
    assert!(e.decisions().any(|d| d.reason.contains("server side")));
    assert!(e.decisions().any(|d| d.reason.contains("IPv4")));
}

#[test]
fn test_connection_reached_through_a_verified_locator_is_managed() {
    let now = Instant::now();
    let mut e = engine(Policy::Fullmesh, 4);
    e.set_peer(view(&[r1(), r2()]), now);
    let mut c = conn(T, false);
    c.remote = sa(r2(), PORT);
    e.handle_event(&Event::Established(c), now);
    let acts = drain(&mut e);
    assert_eq!(acts.len(), 3);
    assert_eq!(
        acts[0],
        create(l2(), r1(), false),
        "disjoint from (L1, R2) first"
    );
}

// ---- REAP path events ------------------------------------------------------------

#[test]
fn test_path_failed_detaches_with_the_recipe_and_usable_brings_back() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    let subs = bring_up(&mut e, &acts, now);
    let s22 = subs[0].clone(); // (L2, R2)
    let s12 = subs[1].clone(); // (L1, R2): L1 is the initial subflow's address, ID 0 there
    let s21 = subs[2].clone(); // (L2, R1)
    // (L2, R2) dies. L2's ID also serves (L2, R1): REMOVE + destroy the dead one, and
    // close (L2, R1) too (its peer half got the RM_ADDR), then re-create it at once.
    e.path_failed(r1(), Pair::new(l2(), r2()), now);
    assert_eq!(
        drain(&mut e),
        [
            Action::DetachPath {
                token: T,
                local: s22.local,
                remote: s22.remote,
                local_in_use: false
            },
            Action::DestroySubflow {
                token: T,
                local: s21.local,
                remote: s21.remote,
            },
            create(l2(), r1(), false),
        ]
    );
    // Repeated verdict: nothing more.
    e.path_failed(r1(), Pair::new(l2(), r2()), now);
    assert_eq!(drain(&mut e), []);
    // (L1, R2) dies: the initial subflow's ID 0 is not the join's, so the full recipe.
    e.path_failed(r1(), Pair::new(l1(), r2()), now);
    assert_eq!(
        drain(&mut e),
        [Action::DetachPath {
            token: T,
            local: s12.local,
            remote: s12.remote,
            local_in_use: false
        }]
    );
    // The subflows close; the dead pairs get nothing, and no back-off is charged.
    for s in [&s22, &s21, &s12] {
        e.handle_event(&Event::SubClosed(s.clone()), now);
    }
    e.handle_event(
        &Event::SubEstablished(sub(l2(), 50010, r1(), false, None)),
        now,
    );
    let st = e.status(now);
    assert_eq!(st.peers[0].dead_pairs.len(), 2);
    // Healing: exactly the dead pair's subflow comes back, at once.
    e.path_usable(r1(), Pair::new(l2(), r2()), now);
    assert_eq!(drain(&mut e), [create(l2(), r2(), false)]);
    e.path_usable(r1(), Pair::new(l1(), r2()), now);
    assert_eq!(drain(&mut e), [create(l1(), r2(), false)]);
}

#[test]
fn test_path_failed_with_a_join_in_flight_from_the_address_only_destroys() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    // (L2, R2) is up, (L2, R1) still in flight: REMOVE would pull L2's ID from under it.
    let s22 = bring_up(&mut e, &acts[..1], now).remove(0);
    e.path_failed(r1(), Pair::new(l2(), r2()), now);
    assert_eq!(
        drain(&mut e),
        [Action::DetachPath {
            token: T,
            local: s22.local,
            remote: s22.remote,
            local_in_use: true
        }]
    );
}

#[test]
fn test_path_failed_of_the_initial_pair_leaves_the_initial_subflow_alone() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    bring_up(&mut e, &acts, now);
    e.path_failed(r1(), Pair::new(l1(), r1()), now);
    assert_eq!(
        drain(&mut e),
        [],
        "the initial subflow rides the shim (rule 6)"
    );
}

#[test]
fn test_path_failed_before_the_subflow_came_up() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    e.path_failed(r1(), Pair::new(l2(), r2()), now);
    assert_eq!(drain(&mut e), [], "nothing up on it yet");
    // It comes up anyway: detached at once.
    let s = sub(l2(), 50000, r2(), false, None);
    e.handle_event(&Event::SubEstablished(s.clone()), now);
    let acts2 = drain(&mut e);
    assert_eq!(
        acts2,
        [Action::DetachPath {
            token: T,
            local: s.local,
            remote: s.remote,
            // The request (L2, R1) is still in flight from L2 with L2's ID.
            local_in_use: true,
        }]
    );
    // Not re-created while dead, even after the other creates resolve.
    bring_up(&mut e, &acts[1..], now);
    e.handle_event(&Event::SubClosed(s), now);
    assert_eq!(drain(&mut e), []);
}

#[test]
fn test_path_events_of_unknown_peers_and_pairs_are_ignored() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    bring_up(&mut e, &acts, now);
    e.path_failed(a("2001:db8:99::1"), Pair::new(l2(), r2()), now);
    e.path_usable(r1(), Pair::new(l2(), r2()), now); // was never dead
    assert_eq!(drain(&mut e), []);
}

#[test]
fn test_remove_peer_stops_new_subflows() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    let subs = bring_up(&mut e, &acts, now);
    e.remove_peer(r1(), now);
    e.handle_event(&Event::SubClosed(subs[0].clone()), now);
    e.handle_timeout(now + Duration::from_secs(300));
    assert_eq!(drain(&mut e), []);
}

// ---- failures and back-off (rule 5) -------------------------------------------------

#[test]
fn test_subflow_that_dies_is_retried_after_a_doubling_backoff() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 2, now);
    assert_eq!(acts, [create(l2(), r2(), false)]);
    // Refused at once (SUB_CLOSED error 111, never up).
    e.handle_event(
        &Event::SubClosed(sub(l2(), 50000, r2(), false, Some(111))),
        now,
    );
    assert_eq!(drain(&mut e), []);
    assert_eq!(e.poll_timeout(), Some(now + RETRY_BASE));
    e.handle_timeout(now + RETRY_BASE / 2);
    assert_eq!(drain(&mut e), []);
    let t1 = now + RETRY_BASE;
    e.handle_timeout(t1);
    assert_eq!(drain(&mut e), [create(l2(), r2(), false)]);
    // Up, then dies on its own: back-off doubled.
    let s = sub(l2(), 50001, r2(), false, None);
    e.handle_event(&Event::SubEstablished(s.clone()), t1);
    e.handle_event(&Event::SubClosed(s), t1);
    assert_eq!(drain(&mut e), []);
    assert_eq!(
        e.poll_timeout(),
        Some(t1 + RETRY_BASE),
        "reset by coming up"
    );
    // Failures in a row double it: 2 s, then 4 s.
    e.handle_timeout(t1 + RETRY_BASE);
    assert_eq!(drain(&mut e).len(), 1);
    let t2 = t1 + RETRY_BASE;
    e.handle_event(
        &Event::SubClosed(sub(l2(), 50002, r2(), false, Some(111))),
        t2,
    );
    e.handle_timeout(t2);
    assert_eq!(drain(&mut e), []);
    assert_eq!(e.poll_timeout(), Some(t2 + 2 * RETRY_BASE));
    let t3 = t2 + 2 * RETRY_BASE;
    e.handle_timeout(t3);
    assert_eq!(drain(&mut e).len(), 1);
    e.handle_event(
        &Event::SubClosed(sub(l2(), 50003, r2(), false, Some(111))),
        t3,
    );
    assert_eq!(e.poll_timeout(), Some(t3 + 4 * RETRY_BASE));
    assert_eq!(backoff(30), RETRY_MAX);
}

#[test]
fn test_request_without_answer_times_out_and_is_retried() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 2, now);
    assert_eq!(acts.len(), 1);
    assert_eq!(e.poll_timeout(), Some(now + PENDING_TIMEOUT));
    let t = now + PENDING_TIMEOUT;
    e.handle_timeout(t);
    assert_eq!(drain(&mut e), []);
    assert!(e.decisions().any(|d| d.reason.contains("no answer")));
    e.handle_timeout(t + RETRY_BASE);
    assert_eq!(drain(&mut e), acts);
}

#[test]
fn test_refused_command_backs_off() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 2, now);
    e.command_failed(&acts[0], "connect error: -101", now);
    assert_eq!(drain(&mut e), []);
    assert!(e.decisions().any(|d| d.reason.contains("-101")));
    e.handle_timeout(now + RETRY_BASE);
    assert_eq!(drain(&mut e), acts);
}

#[test]
fn test_closed_connection_is_forgotten() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    e.handle_event(
        &Event::Closed {
            token: T,
            other: vec![],
        },
        now,
    );
    assert!(e.status(now).connections.is_empty());
    assert_eq!(e.poll_timeout(), None);
    bring_up(&mut e, &acts, now);
    e.path_failed(r1(), Pair::new(l2(), r2()), now);
    assert_eq!(drain(&mut e), []);
}

// ---- ndiffports --------------------------------------------------------------------

#[test]
fn test_ndiffports_puts_n_subflows_on_the_initial_pair() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Ndiffports { n: 3 }, 8, now);
    assert_eq!(acts, [create(l1(), r1(), false), create(l1(), r1(), false)]);
    let subs = bring_up(&mut e, &acts, now);
    assert_eq!(drain(&mut e), []);
    // One dies: exactly one comes back after the back-off.
    e.handle_event(&Event::SubClosed(subs[0].clone()), now);
    e.handle_timeout(now + RETRY_BASE);
    assert_eq!(drain(&mut e), [create(l1(), r1(), false)]);
}

#[test]
fn test_ndiffports_moves_to_a_working_pair_when_the_initial_one_is_dead() {
    let now = Instant::now();
    let mut e = engine(Policy::Ndiffports { n: 2 }, 8);
    e.set_peer(view(&[r1(), r2()]), now);
    e.path_failed(r1(), Pair::new(l1(), r1()), now);
    e.handle_event(&Event::Established(conn(T, false)), now);
    let acts = drain(&mut e);
    assert_eq!(acts, [create(l2(), r2(), false), create(l2(), r2(), false)]);
    let subs = bring_up(&mut e, &acts, now);
    // That pair dies too: the first detach REMOVEs L2's ID, the second only destroys.
    e.path_failed(r1(), Pair::new(l2(), r2()), now);
    let acts = drain(&mut e);
    let in_use: Vec<bool> = acts
        .iter()
        .filter_map(|a| match a {
            Action::DetachPath { local_in_use, .. } => Some(*local_in_use),
            _ => None,
        })
        .collect();
    assert_eq!(in_use, [false, true], "{acts:?}");
    assert_eq!(subs.len(), 2);
    // And the policy moves on to the next working pair.
    assert_eq!(
        acts[2..],
        [create(l1(), r2(), false), create(l1(), r2(), false)]
    );
}

#[test]
fn test_ndiffports_one_means_no_extra_subflow() {
    let (_, acts) = established(Policy::Ndiffports { n: 1 }, 8, Instant::now());
    assert_eq!(acts, []);
}

// ---- elephant ------------------------------------------------------------------------

#[test]
fn test_elephant_grows_at_threshold_and_steps_up_to_the_maximum() {
    let now = Instant::now();
    let policy = Policy::Elephant {
        threshold: 1000,
        step: 500,
    };
    let (mut e, acts) = established(policy, 4, now);
    assert_eq!(acts, [], "one subflow until the threshold");
    e.bytes_carried(T, 999, now);
    assert_eq!(drain(&mut e), []);
    e.bytes_carried(T, 1000, now);
    let first = drain(&mut e);
    assert_eq!(first, [create(l2(), r2(), false)]);
    bring_up(&mut e, &first, now);
    e.bytes_carried(T, 1499, now);
    assert_eq!(drain(&mut e), []);
    e.bytes_carried(T, 1500, now);
    assert_eq!(drain(&mut e), [create(l1(), r2(), false)]);
    // A jump past several steps: up to the maximum (4 in all), no further.
    e.bytes_carried(T, 1 << 40, now);
    assert_eq!(drain(&mut e), [create(l2(), r1(), false)]);
    e.bytes_carried(T, (1 << 40) + 1, now);
    assert_eq!(drain(&mut e), []);
}

#[test]
fn test_elephant_without_other_pairs_adds_on_the_initial_pair() {
    let now = Instant::now();
    let mut e = engine(
        Policy::Elephant {
            threshold: 10,
            step: 10,
        },
        3,
    );
    e.set_peer(
        PeerView {
            ulid_peer: r1(),
            locals: vec![l1()],
            remotes: vec![r1()],
        },
        now,
    );
    e.handle_event(&Event::Established(conn(T, false)), now);
    e.bytes_carried(T, 25, now);
    assert_eq!(
        drain(&mut e),
        [create(l1(), r1(), false), create(l1(), r1(), false)]
    );
}

#[test]
fn test_bytes_for_unknown_connections_and_other_policies_change_nothing() {
    let now = Instant::now();
    let (mut e, _) = established(Policy::Fullmesh, 4, now);
    e.bytes_carried(Token(99), 1 << 40, now);
    e.bytes_carried(T, 1 << 40, now);
    assert_eq!(drain(&mut e), []);
    assert_eq!(e.status(now).connections[0].bytes, 1 << 40);
}

// ---- backup ----------------------------------------------------------------------------

#[test]
fn test_backup_flags_extra_subflows_and_promotes_them_while_the_initial_pair_is_dead() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Backup, 2, now);
    assert_eq!(acts, [create(l2(), r2(), true)]);
    let subs = bring_up(&mut e, &acts, now);
    assert_eq!(drain(&mut e), []);
    let s = &subs[0];
    e.path_failed(r1(), Pair::new(l1(), r1()), now);
    assert_eq!(
        drain(&mut e),
        [Action::SetBackup {
            token: T,
            local: s.local,
            remote: s.remote,
            backup: false
        }]
    );
    e.path_usable(r1(), Pair::new(l1(), r1()), now);
    assert_eq!(
        drain(&mut e),
        [Action::SetBackup {
            token: T,
            local: s.local,
            remote: s.remote,
            backup: true
        }]
    );
}

// ---- configuration, status ----------------------------------------------------------

#[test]
fn test_policy_change_applies_to_existing_connections() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Ndiffports { n: 1 }, 4, now);
    assert_eq!(acts, []);
    e.set_config(PolicyConfig::default(), now);
    assert_eq!(drain(&mut e).len(), 3);
    // Out-of-range settings are clamped, never a panic.
    e.set_config(
        PolicyConfig {
            policy: Policy::Elephant {
                threshold: 0,
                step: 0,
            },
            max_subflows: 0,
        },
        now,
    );
    assert_eq!(e.config().max_subflows, 1);
    assert_eq!(
        e.config().policy,
        Policy::Elephant {
            threshold: 0,
            step: 1
        }
    );
}

#[test]
fn test_decisions_are_bounded_and_status_serialises() {
    let now = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, now);
    for i in 0..(DECISIONS_KEPT as u32 * 2) {
        e.command_failed(&acts[0], &format!("try {i}"), now);
    }
    assert_eq!(e.decisions().count(), DECISIONS_KEPT);
    let last = e.decisions().last().unwrap();
    assert!(
        last.reason
            .contains(&format!("try {}", DECISIONS_KEPT * 2 - 1))
    );
    let json = serde_json::to_value(e.status(now + Duration::from_millis(1500))).unwrap();
    assert_eq!(json["policy"]["name"], "fullmesh");
    assert_eq!(json["connections"][0]["token"], "a8713a27");
    assert_eq!(json["connections"][0]["subflows"][0]["state"], "requested");
    assert_eq!(json["decisions"][0]["age_ms"], 1500);
    assert_eq!(json["peers"][0]["verified_remotes"][1], "2001:db8:2::2");
    let created = serde_json::to_value(acts[0]).unwrap();
    assert_eq!(created["action"], "create_subflow");
    assert_eq!(created["remote"], "[2001:db8:2::2]:8080");
    assert_eq!(
        acts[0].to_string(),
        "create subflow a8713a27 2001:db8:2::1 -> [2001:db8:2::2]:8080"
    );
}

// ---- random event orders against a model kernel ------------------------------------

/// A tiny deterministic generator (xorshift), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Thousands of random interleavings of kernel answers, REAP verdicts, view changes,
/// byte samples and time, for every policy; after every step the engine's commands
/// must respect the rules: subflows only to verified locators, never on a dead pair,
/// never beyond `max_subflows`, never for a connection that is not ours.
#[test]
fn random_event_orders_never_break_the_rules() {
    let policies = [
        Policy::Fullmesh,
        Policy::Backup,
        Policy::Ndiffports { n: 3 },
        Policy::Elephant {
            threshold: 100,
            step: 50,
        },
    ];
    let locals = [l1(), l2()];
    let remotes = [r1(), r2(), r3()];
    for (seed, policy) in (1u64..=200).zip(policies.iter().cycle()) {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let max = u8::try_from(rng.below(4) + 1).unwrap();
        let mut e = engine(*policy, max);
        let mut now = Instant::now();
        let mut verified = vec![r1(), r2()];
        let mut dead: BTreeSet<Pair> = BTreeSet::new();
        let mut peer_known = false;
        // What the model kernel has: requested joins and joins up.
        let mut requested: Vec<(IpAddr, SocketAddr)> = Vec::new();
        let mut up: Vec<Subflow> = Vec::new();
        let mut port = 50000u16;
        let mut bytes = 0u64;
        let mut established = false;
        for step in 0..400 {
            match rng.below(12) {
                0 => {
                    verified = remotes
                        .iter()
                        .copied()
                        .filter(|r| *r == r1() || rng.below(2) == 0)
                        .collect();
                    e.set_peer(view(&verified), now);
                    peer_known = true;
                }
                1 => {
                    e.handle_event(&Event::Established(conn(T, false)), now);
                    established = true;
                }
                2 | 3 if !requested.is_empty() => {
                    // The kernel answers a request: up, or refused.
                    let (l, r) = requested
                        .remove(usize::try_from(rng.below(requested.len() as u64)).unwrap());
                    port += 1;
                    let IpAddr::V6(l) = l else { unreachable!() };
                    let IpAddr::V6(rip) = r.ip() else {
                        unreachable!()
                    };
                    if rng.below(3) == 0 {
                        e.handle_event(&Event::SubClosed(sub(l, port, rip, false, Some(111))), now);
                    } else {
                        let s = sub(l, port, rip, false, None);
                        up.push(s.clone());
                        e.handle_event(&Event::SubEstablished(s), now);
                    }
                }
                4 if !up.is_empty() => {
                    // A subflow dies on its own.
                    let s = up.remove(usize::try_from(rng.below(up.len() as u64)).unwrap());
                    e.handle_event(&Event::SubClosed(s), now);
                }
                // REAP events come from an established context, whose view the loop
                // gave first.
                5 if peer_known => {
                    let p = Pair::new(
                        locals[usize::try_from(rng.below(2)).unwrap()],
                        remotes[usize::try_from(rng.below(2)).unwrap()],
                    );
                    if rng.below(2) == 0 {
                        dead.insert(p);
                        e.path_failed(r1(), p, now);
                    } else {
                        dead.remove(&p);
                        e.path_usable(r1(), p, now);
                    }
                }
                6 => {
                    bytes += rng.below(200);
                    e.bytes_carried(T, bytes, now);
                }
                7 => {
                    now += Duration::from_millis(rng.below(5000));
                    e.handle_timeout(now);
                }
                8 if !up.is_empty() => {
                    // A resync repeats a known state.
                    let s = up[0].clone();
                    e.handle_event(&Event::SubEstablished(s), now);
                }
                _ => {}
            }
            // Like the driver, carry out every action (and those the model kernel's
            // answers cause) before the next input.
            while let Some(act) = e.poll_action() {
                assert!(established && peer_known, "seed {seed} step {step}: {act}");
                match act {
                    Action::CreateSubflow { local, remote, .. } => {
                        let IpAddr::V6(rip) = remote.ip() else {
                            unreachable!()
                        };
                        let IpAddr::V6(lip) = local else {
                            unreachable!()
                        };
                        assert!(
                            verified.contains(&rip),
                            "seed {seed} step {step}: unverified {act}"
                        );
                        // Rule 10: on a dead pair only as a re-test. (A request the
                        // engine forgot at the verdict may still be in the kernel.)
                        let retest = e.decisions().any(|d| {
                            d.action.as_ref() == Some(&act) && d.reason.starts_with("re-test")
                        });
                        assert!(
                            !dead.contains(&Pair::new(lip, rip)) || retest,
                            "seed {seed} step {step}: dead {act}"
                        );
                        assert_eq!(remote.port(), PORT);
                        requested.push((local, remote));
                    }
                    Action::DetachPath { local, remote, .. }
                    | Action::DestroySubflow { local, remote, .. } => {
                        // The model kernel closes it at once.
                        if let Some(i) = up
                            .iter()
                            .position(|s| (s.local, s.remote) == (local, remote))
                        {
                            let s = up.remove(i);
                            e.handle_event(&Event::SubClosed(s), now);
                        }
                    }
                    Action::SetBackup { .. } => assert_eq!(*policy, Policy::Backup),
                }
            }
            let st = e.status(now);
            // A re-test join that came up revoked its verdict (rule 10): the model
            // follows the engine there.
            if let Some(p) = st.peers.first() {
                dead.retain(|d| p.dead_pairs.contains(&(d.local, d.remote)));
            }
            let active = st.connections.first().map_or(0, |c| {
                c.subflows.iter().filter(|s| s.state != "closing").count()
            });
            assert!(
                active < usize::from(max),
                "seed {seed} step {step}: {active} joined subflows with max_subflows {max}: {:?}",
                st.connections[0].subflows
            );
        }
    }
}

// ---- the stall rule, re-tests and the server side (rules 9-11) ----------------------

fn sample(s: &Subflow, unacked: u32, since_ack_ms: u64) -> SubflowSample {
    SubflowSample {
        local: s.local,
        remote: s.remote,
        unacked,
        since_ack: Duration::from_millis(since_ack_ms),
    }
}

#[test]
fn test_stalled_subflow_condemns_its_pair_like_reap() {
    let t0 = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, t0);
    let subs = bring_up(&mut e, &acts, t0);
    let s22 = subs[0].clone();
    // Off by default: nothing happens whatever the samples say.
    e.subflow_sample(&sample(&s22, 5, 60_000), t0);
    assert_eq!(drain(&mut e), []);
    e.set_stall_timeout(Some(Duration::from_secs(2)));
    // An idle subflow whose last ACK is old is not stalled when it sends again: the
    // time counts from the first sample with data outstanding.
    e.subflow_sample(&sample(&s22, 3, 30_000), t0);
    e.subflow_sample(&sample(&s22, 3, 31_000), t0 + Duration::from_secs(1));
    assert_eq!(drain(&mut e), []);
    // ACKs flowing (recent last ACK) keep it alive however long data is outstanding.
    e.subflow_sample(&sample(&s22, 3, 10), t0 + Duration::from_secs(5));
    assert_eq!(drain(&mut e), []);
    // Nothing outstanding resets the clock.
    e.subflow_sample(&sample(&s22, 0, 9_000), t0 + Duration::from_secs(6));
    e.subflow_sample(&sample(&s22, 2, 9_500), t0 + Duration::from_secs(7));
    assert_eq!(drain(&mut e), []);
    // Outstanding and unacknowledged for the Send Timeout: the recipe, as for REAP.
    e.subflow_sample(&sample(&s22, 2, 2_100), t0 + Duration::from_millis(9_100));
    let acts = drain(&mut e);
    assert!(
        matches!(acts.first(), Some(Action::DetachPath { local, remote, .. })
            if (*local, *remote) == (s22.local, s22.remote)),
        "{acts:?}"
    );
    assert_eq!(
        e.status(t0).peers[0].dead_pairs,
        [(l2(), r2())],
        "the pair is dead"
    );
    // Samples of unknown sockets (the initial subflow, others) change nothing.
    let initial = sub(l1(), 40000, r1(), false, None);
    e.subflow_sample(&sample(&initial, 9, 60_000), t0 + Duration::from_secs(20));
    assert_eq!(e.status(t0).peers[0].dead_pairs.len(), 1);
}

#[test]
fn test_dead_pair_is_retested_and_a_join_that_comes_up_revokes_the_verdict() {
    let t0 = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, t0);
    // Only the dead pair's actions matter here (the collateral re-creations of rule 4
    // come and go around them).
    let on22 = |e: &mut Engine| -> Vec<Action> {
        drain(e)
            .into_iter()
            .filter(|a| match a {
                Action::CreateSubflow { local, remote, .. } => {
                    (*local, remote.ip()) == (IpAddr::V6(l2()), IpAddr::V6(r2()))
                }
                _ => false,
            })
            .collect()
    };
    let subs = bring_up(&mut e, &acts, t0);
    let p22 = Pair::new(l2(), r2());
    e.path_failed(r1(), p22, t0);
    on22(&mut e);
    e.handle_event(&Event::SubClosed(subs[0].clone()), t0);
    on22(&mut e);
    // Not before RETEST_FIRST, then one join on the dead pair.
    e.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(on22(&mut e), []);
    let t1 = t0 + RETEST_FIRST;
    assert!(e.poll_timeout().is_some_and(|d| d <= t1));
    e.handle_timeout(t1);
    assert_eq!(on22(&mut e), [create(l2(), r2(), false)]);
    // It fails (still broken): the pair stays dead, the next re-test after the back-off.
    e.handle_event(
        &Event::SubClosed(sub(l2(), 51000, r2(), false, Some(110))),
        t1,
    );
    assert_eq!(on22(&mut e), []);
    assert_eq!(e.status(t1).peers[0].dead_pairs.len(), 1);
    let t2 = t1 + RETRY_BASE;
    e.handle_timeout(t2);
    assert_eq!(on22(&mut e), [create(l2(), r2(), false)]);
    // No answer within PENDING_TIMEOUT: failed too, the back-off doubles.
    let t3 = t2 + PENDING_TIMEOUT;
    e.handle_timeout(t3);
    assert_eq!(on22(&mut e), []);
    e.handle_timeout(t3 + RETRY_BASE);
    assert_eq!(on22(&mut e), [], "the second back-off is 2 s");
    let t4 = t3 + 2 * RETRY_BASE;
    e.handle_timeout(t4);
    assert_eq!(on22(&mut e), [create(l2(), r2(), false)]);
    // Healed: the join comes up; the verdict is revoked and the subflow stays.
    let up = sub(l2(), 51001, r2(), false, None);
    e.handle_event(&Event::SubEstablished(up.clone()), t4);
    assert_eq!(on22(&mut e), [], "kept, not detached");
    let st = e.status(t4);
    assert!(st.peers[0].dead_pairs.is_empty());
    assert!(
        st.connections[0]
            .subflows
            .iter()
            .any(|s| (s.local, s.remote) == (up.local, up.remote) && s.state == "up")
    );
}

#[test]
fn test_join_requested_before_the_verdict_is_still_detached() {
    // Rule 4 stays: only a re-test proves the pair, not an older request.
    let t0 = Instant::now();
    let (mut e, acts) = established(Policy::Fullmesh, 4, t0);
    assert_eq!(acts[0], create(l2(), r2(), false));
    e.path_failed(r1(), Pair::new(l2(), r2()), t0);
    drain(&mut e);
    e.handle_event(
        &Event::SubEstablished(sub(l2(), 50000, r2(), false, None)),
        t0,
    );
    let acts = drain(&mut e);
    assert!(
        matches!(acts.first(), Some(Action::DetachPath { .. })),
        "{acts:?}"
    );
    assert_eq!(e.status(t0).peers[0].dead_pairs.len(), 1);
}

#[test]
fn test_server_side_takes_its_own_halves_off_a_dead_pair() {
    let t0 = Instant::now();
    let mut e = engine(Policy::Fullmesh, 4);
    // The server's view: the client is the peer (its ULID R1 here), we are L1/L2.
    e.set_peer(view(&[r1(), r2()]), t0);
    e.handle_event(&Event::Established(conn(T, true)), t0);
    let half = sub(l2(), PORT, r2(), false, None);
    e.handle_event(&Event::SubEstablished(half.clone()), t0);
    assert_eq!(drain(&mut e), [], "the server side creates nothing");
    e.path_failed(r1(), Pair::new(l2(), r2()), t0);
    assert_eq!(
        drain(&mut e),
        [Action::DestroySubflow {
            token: T,
            local: half.local,
            remote: half.remote,
        }]
    );
    e.handle_event(&Event::SubClosed(half), t0);
    // The client re-tests: its join comes up here, which revokes the verdict.
    e.handle_event(
        &Event::SubEstablished(sub(l2(), PORT, r2(), false, None)),
        t0,
    );
    assert_eq!(drain(&mut e), []);
    assert!(e.status(t0).peers[0].dead_pairs.is_empty());
    // And the stall rule applies to the server's halves too.
    e.set_stall_timeout(Some(Duration::from_secs(1)));
    let again = sub(l2(), PORT, r2(), false, None);
    e.subflow_sample(&sample(&again, 4, 1_500), t0);
    e.subflow_sample(&sample(&again, 4, 2_500), t0 + Duration::from_secs(1));
    assert_eq!(
        drain(&mut e),
        [Action::DestroySubflow {
            token: T,
            local: again.local,
            remote: again.remote,
        }]
    );
}
