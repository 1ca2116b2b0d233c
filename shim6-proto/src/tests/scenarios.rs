//! Simulator scenarios (issue 4 "Scenarios"), each named for what it proves.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use shim6_wire::shim6::option::Repr as OptionRepr;
use shim6_wire::shim6::{ContextTag, Message, MessageType};

use super::util::*;
use crate::sim::identity;
use crate::sim::{Fate, Net};
use crate::{Config, DropReason, Event, State};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn handshake_hba_establishes_both_sides_with_verified_locators() {
    let mut t = Two::new(Kind::Hba, 3);
    t.establish();
    assert_eq!(t.state(A), Some(State::Established));
    assert_eq!(t.state(B), Some(State::Established));
    let (ia, ib) = (t.info(A), t.info(B));
    assert_eq!(ia.ct_peer, Some(ib.ct_local));
    assert_eq!(ib.ct_peer, Some(ia.ct_local));
    // Ls(peer): the three HBA members, each verified by HBA.
    assert_eq!(ia.peer_locators.len(), 3);
    assert!(ia.peer_locators.iter().all(|l| l.method.is_some()));
    assert_eq!(ib.peer_locators.len(), 3);
    // Exactly one message of each kind: I1, R1, I2, R2.
    for (h, ty) in [
        (A, MessageType::I1),
        (B, MessageType::R1),
        (A, MessageType::I2),
        (B, MessageType::R2),
    ] {
        assert_eq!(t.sent(h, ty), 1, "{ty}");
    }
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::Established {
            recovered: false,
            ..
        }
    )));
    assert!(t.has_event(B, |e| matches!(e, Event::Established { .. })));
    assert_eq!(ia.reap_state, Some(reap::ReapState::Operational));
}

#[test]
fn handshake_cga_signs_once_and_verifies_signature() {
    let mut t = Two::new(Kind::Cga, 2);
    let before = t.ep(A).signatures_made();
    t.establish();
    assert_eq!(t.state(A), Some(State::Established));
    assert_eq!(t.state(B), Some(State::Established));
    // Signatures were made at configuration time only, never in reply to the peer.
    assert_eq!(t.ep(A).signatures_made(), before);
    assert_eq!(t.info(B).peer_locators.len(), 2);
    let octets = handshake_octets(&t.net);
    assert!(octets > 0);
}

#[test]
fn handshake_cga_compatible_hba_establishes() {
    let mut t = Two::new(Kind::CgaHba, 2);
    t.establish();
    assert_eq!(t.state(A), Some(State::Established));
    assert_eq!(t.state(B), Some(State::Established));
}

#[test]
fn crossed_i1s_establish_one_context_each() {
    let mut t = Two::new(Kind::Hba, 2);
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    t.ep(A).establish(now, ua, ub).unwrap();
    t.ep(B).establish(now, ub, ua).unwrap();
    t.net.drain(A);
    t.net.drain(B);
    t.net.settle();
    assert_eq!(t.state(A), Some(State::Established));
    assert_eq!(t.state(B), Some(State::Established));
    assert_eq!(t.ep(A).context_count(), 1);
    assert_eq!(t.ep(B).context_count(), 1);
    let (ia, ib) = (t.info(A), t.info(B));
    assert_eq!(ia.ct_peer, Some(ib.ct_local));
    assert_eq!(ib.ct_peer, Some(ia.ct_local));
    // Crossing I1s are answered with R2s, no R1 / I2 round.
    assert_eq!(t.sent(A, MessageType::R2), 1);
    assert_eq!(t.sent(B, MessageType::R2), 1);
}

#[test]
fn every_handshake_message_lost_once_still_establishes() {
    for lost in [
        MessageType::I1,
        MessageType::R1,
        MessageType::I2,
        MessageType::R2,
    ] {
        let mut t = Two::new(Kind::Hba, 2);
        let mut dropped = false;
        t.net.alter = Some(Box::new(move |f, _| {
            if f.message_type == lost && !dropped {
                dropped = true;
                return false;
            }
            true
        }));
        t.establish();
        t.net.drive_bounded(Duration::from_secs(30));
        assert_eq!(t.state(A), Some(State::Established), "lost {lost}");
        assert_eq!(t.state(B), Some(State::Established), "lost {lost}");
        let (ia, ib) = (t.info(A), t.info(B));
        assert_eq!(ia.ct_peer, Some(ib.ct_local), "lost {lost}");
    }
}

#[test]
fn validator_tampered_is_rejected_and_creates_no_state() {
    let mut t = Two::new(Kind::Hba, 2);
    t.net.alter = Some(Box::new(|f, p| {
        if f.message_type == MessageType::I2 {
            rewrite_message(p, |m| {
                if let Message::I2(i2) = m {
                    for o in &mut i2.options {
                        if let OptionRepr::ResponderValidator(v) = o {
                            v[0] ^= 0x80;
                        }
                    }
                }
            });
        }
        true
    }));
    t.establish();
    t.net.run_for(Duration::from_secs(20));
    assert!(t.ep(B).stats().drops(DropReason::ValidatorMismatch) >= 1);
    assert_eq!(t.ep(B).context_count(), 0);
    assert_ne!(t.state(A), Some(State::Established));
}

#[test]
fn validator_replayed_after_its_lifetime_is_rejected() {
    let mut t = Two::new(Kind::Hba, 2);
    let saved: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let s2 = saved.clone();
    t.net.alter = Some(Box::new(move |f, p| {
        if f.message_type == MessageType::I2 {
            s2.borrow_mut().get_or_insert_with(|| p.clone());
            return false;
        }
        true
    }));
    t.establish();
    let i2 = saved.borrow().clone().expect("an I2 was sent");
    t.net.alter = None;
    // Within the lifetime the captured I2 is valid: B creates the context.
    t.net.wire(A, i2.clone());
    t.net.run_for(SEC);
    assert_eq!(t.ep(B).context_count(), 1);
    let tag = t.ep(B).contexts().next().unwrap().ct_local;
    let now = t.net.now();
    t.ep(B).close(now, tag).unwrap();
    // Replayed after the validator lifetime (60 s): stale, no state.
    t.net.run_for(Duration::from_secs(70));
    let stale_before = t.ep(B).stats().drops(DropReason::StaleResponderNonce);
    t.net.wire(A, i2);
    t.net.run_for(SEC);
    assert_eq!(
        t.ep(B).stats().drops(DropReason::StaleResponderNonce),
        stale_before + 1
    );
    assert_eq!(t.ep(B).context_count(), 0);
}

/// Tampers with the Locator List of every I2 A sends and checks that B refuses it with
/// `reason`, keeping no state.
fn forged_i2(kind: Kind, reason: DropReason, f: impl Fn(&mut Vec<OptionRepr>) + 'static) {
    let mut t = Two::new(kind, 2);
    t.net.alter = Some(Box::new(move |fl, p| {
        if fl.message_type == MessageType::I2 {
            rewrite_message(p, |m| {
                if let Message::I2(i2) = m {
                    f(&mut i2.options);
                }
            });
        }
        true
    }));
    t.establish();
    t.net.run_for(Duration::from_secs(5));
    assert!(t.ep(B).stats().drops(reason) >= 1, "{reason}");
    assert_eq!(
        t.ep(B).context_count(),
        0,
        "{reason}: no state at the responder"
    );
}

#[test]
fn forged_locator_list_wrong_signature_rejected() {
    forged_i2(Kind::Cga, DropReason::BadSignature, |opts| {
        for o in opts.iter_mut() {
            if let OptionRepr::CgaSignature(s) = o {
                s[10] ^= 1;
            }
        }
    });
}

#[test]
fn forged_locator_list_hba_prefix_outside_set_rejected() {
    forged_i2(Kind::Hba, DropReason::LocatorNotInHbaSet, |opts| {
        for o in opts.iter_mut() {
            if let OptionRepr::LocatorList(l) = o {
                l.locators[1].address = identity::addr(&identity::prefix(9, 9), 1);
            }
        }
    });
}

#[test]
fn forged_locator_list_locator_not_in_set_rejected() {
    forged_i2(Kind::Hba, DropReason::LocatorNotInHbaSet, |opts| {
        for o in opts.iter_mut() {
            if let OptionRepr::LocatorList(l) = o {
                // Right prefix, wrong interface identifier: not the set's member.
                let p = identity::prefix(1, 2);
                l.locators[1].address = identity::addr(&p, 0x1234);
            }
        }
    });
}

#[test]
fn forged_pds_for_another_ulid_rejected() {
    let other = identity::hba(7, 2, 77).ulids.remove(0).params;
    forged_i2(Kind::Hba, DropReason::PdsMismatch, move |opts| {
        for o in opts.iter_mut() {
            if let OptionRepr::CgaParameterDataStructure(p) = o {
                p.clone_from(&other);
            }
        }
    });
}

#[test]
fn forged_cga_locator_added_without_signature_rejected() {
    forged_i2(Kind::Hba, DropReason::BadSignature, |opts| {
        for o in opts.iter_mut() {
            if let OptionRepr::LocatorList(l) = o {
                l.locators.push(shim6_wire::shim6::locator::Locator {
                    address: identity::addr(&identity::prefix(9, 1), 5),
                    method: shim6_wire::shim6::locator::VerificationMethod::Cga,
                });
            }
        }
        opts.retain(|o| !matches!(o, OptionRepr::LocatorPreferences(_)));
    });
}

#[test]
fn peer_without_shim6_gives_no_support_and_payload_untouched() {
    let t0 = epoch();
    let mut net = Net::new(t0, 1);
    let (ea, la) = endpoint(ident(Kind::Hba, 1, 2), config(1), t0);
    let idb = ident(Kind::Hba, 2, 2);
    let lb = idb.locators.clone();
    net.add_host(Some(ea), la.clone());
    net.add_host(None, lb.clone());
    net.hosts[A].ep().establish(t0, la[0], lb[0]).unwrap();
    net.drain(A);
    net.settle();
    let ep = net.hosts[A].ep();
    let tag = ep.find(la[0], lb[0], 0).unwrap();
    assert_eq!(ep.context(tag).unwrap().state, State::NoSupport);
    assert!(net.hosts[A].events.iter().any(|e| matches!(
        e,
        Event::Failed {
            state: State::NoSupport,
            ..
        }
    )));
    net.send_app(A, la[0], lb[0], b"hello");
    net.run_for(SEC);
    let d = net.hosts[B].delivered.last().expect("delivered");
    assert_eq!((d.src, d.dst, d.via_shim), (la[0], lb[0], false));
    assert_eq!(&d.payload[..], b"hello");
    // The hold-down refuses a new attempt, then expires (→ IDLE).
    let now = net.now();
    assert_eq!(
        net.hosts[A].ep().establish(now, la[0], lb[0]).err(),
        Some(crate::Error::PeerIncompatible(
            crate::PeerIncompatible::NoSupport
        ))
    );
    net.run_for(Duration::from_secs(601));
    assert_eq!(net.hosts[A].ep().context_count(), 0);
}

#[test]
fn i1_flood_creates_no_state() {
    let mut t = Two::new(Kind::Hba, 2);
    let ub = t.ub;
    for i in 0..2000u32 {
        let src = identity::addr(&identity::prefix(100, (i % 100) as u16), u64::from(i) + 1);
        let m = Message::I1(shim6_wire::shim6::handshake::I1 {
            initiator_context_tag: ContextTag::from_masked(u64::from(i) * 7919 + 1),
            initiator_nonce: i,
            options: Vec::new(),
        });
        let body = m.to_vec().unwrap();
        let mut p = vec![0u8; 40];
        shim6_wire::ipv6::Repr {
            traffic_class: 0,
            flow_label: 0,
            payload_len: body.len() as u16,
            next_header: 140,
            hop_limit: 64,
            src_addr: src,
            dst_addr: ub,
        }
        .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut p[..]));
        p.extend_from_slice(&body);
        let now = t.net.now();
        let len = p.len();
        t.ep(B).handle_inbound(now, &mut p, 0..len);
    }
    assert_eq!(t.ep(B).context_count(), 0);
    assert_eq!(t.ep(B).stats().sent(MessageType::R1), 2000);
    assert_eq!(t.ep(B).poll_timeout(), None, "no timers either");
}

#[test]
fn forked_contexts_coexist_per_ulid_pair() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    let forked = t.ep(A).fork(now, ua, ub).unwrap();
    t.net.drain(A);
    t.net.settle();
    let fa = t.ep(A).context(forked).unwrap();
    assert_eq!(fa.key.fii, 1);
    assert_eq!(fa.state, State::Established);
    assert_eq!(t.ep(A).context_count(), 2);
    assert_eq!(t.ep(B).context_count(), 2);
    let b_forked = t.ep(B).find(ub, ua, 1).expect("B keys the fork by FII");
    assert_eq!(fa.ct_peer, Some(b_forked));
    assert_ne!(t.ep(B).find(ub, ua, 0), Some(b_forked));
}

#[test]
fn context_tag_collision_after_peer_restart_triggers_confusion_check() {
    // A has two ULIDs (two HBA sets); B one. B opens a context to A's first ULID,
    // restarts with the same seed (so it draws the same tag again) and opens one to A's
    // second ULID: A sees CT(peer) reused for another ULID pair over the same locators.
    let t0 = epoch();
    let mut net = Net::new(t0, 3);
    let a1 = identity::hba(1, 2, 11);
    let a2 = identity::hba(3, 2, 13);
    let mut la = a1.locators.clone();
    la.extend(a2.locators.iter().copied());
    let (ua1, ua2) = (a1.ulids[0].address, a2.ulids[0].address);
    let mut ulids = a1.ulids;
    ulids.extend(a2.ulids);
    let locs: Vec<_> = la.iter().map(|a| reap::Locator::new(*a)).collect();
    let ea = crate::Endpoint::new(config(1), ulids, &locs, t0).unwrap();
    let (eb, lb) = endpoint(ident(Kind::Hba, 2, 2), config(2), t0);
    let ub = lb[0];
    net.add_host(Some(ea), la);
    net.add_host(Some(eb), lb.clone());
    net.hosts[B].ep().establish(t0, ub, ua1).unwrap();
    net.drain(B);
    net.settle();
    let old = net.hosts[A].ep().find(ua1, ub, 0).unwrap();
    let ct = net.hosts[A].ep().context(old).unwrap().ct_peer.unwrap();
    // B restarts with the same seed.
    let now = net.now();
    let (eb2, _) = endpoint(ident(Kind::Hba, 2, 2), config(2), now);
    net.restart(B, eb2);
    let new_b = net.hosts[B].ep().establish(now, ub, ua2).unwrap();
    assert_eq!(new_b, ct, "same seed, same first tag");
    net.drain(B);
    net.settle();
    let ep = net.hosts[A].ep();
    assert_eq!(ep.stats().confusions, 1);
    assert!(ep.context(old).is_none(), "the stale context is gone");
    let new = ep.find(ua2, ub, 0).unwrap();
    assert_eq!(ep.context(new).unwrap().state, State::Established);
    assert!(net.hosts[A].events.iter().any(|e| matches!(
        e,
        Event::Closed {
            reason: crate::CloseReason::Confusion,
            ..
        }
    )));
}

#[test]
fn failover_after_link_cut_rewrites_payload_onto_new_pair() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.traffic(Duration::from_secs(2), Duration::from_millis(200));
    let (ua, ub) = (t.ua, t.ub);
    t.net.cut(ua, ub);
    t.traffic(Duration::from_secs(40), Duration::from_millis(200));
    assert!(t.has_event(A, |e| matches!(e, Event::PathChanged { .. })));
    let pa = t.info(A).current_pair;
    assert_ne!(
        (pa.local, pa.remote),
        (ua, ub),
        "A left the broken ULID pair"
    );
    // Recent packets arrive rewritten and restored to the ULIDs.
    let now = t.net.elapsed();
    let recent: Vec<_> = t.net.hosts[B]
        .delivered
        .iter()
        .filter(|d| d.at + Duration::from_secs(2) >= now)
        .collect();
    assert!(!recent.is_empty(), "traffic flows again");
    assert!(
        recent
            .iter()
            .all(|d| d.via_shim && d.src == ua && d.dst == ub)
    );
    assert!(
        t.net
            .trace
            .iter()
            .any(|x| x.shimmed && x.fate == Fate::Delivered)
    );
    // The ULID path heals: traffic keeps flowing.
    t.net.link_up(ua, ub);
    t.net.link_up(ub, ua);
    let n = t.net.hosts[B].delivered.len();
    t.traffic(Duration::from_secs(20), Duration::from_millis(200));
    assert!(t.net.hosts[B].delivered.len() >= n + 90);
}

#[test]
fn peer_state_loss_recovered_by_r1bis_and_i2bis() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.traffic(Duration::from_secs(1), Duration::from_millis(200));
    let (ua, ub) = (t.ua, t.ub);
    t.net.cut(ua, ub);
    t.traffic(Duration::from_secs(40), Duration::from_millis(200));
    assert!(t.info(A).current_pair.local != ua || t.info(A).current_pair.remote != ub);
    // B's daemon restarts: all state lost.
    let now = t.net.now();
    let (eb, _) = endpoint(ident(Kind::Hba, 2, 2), config(9), now);
    t.net.restart(B, eb);
    t.net.hosts[B].events.clear();
    let (ua, ub) = (t.ua, t.ub);
    for _ in 0..20 {
        t.net.send_app(A, ua, ub, b"after restart");
        t.net.run_for(Duration::from_millis(200));
    }
    assert!(t.ep(B).stats().sent(MessageType::R1bis) >= 1);
    assert!(t.ep(A).stats().sent(MessageType::I2bis) >= 1);
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::Established {
            recovered: true,
            ..
        }
    )));
    assert_eq!(t.state(B), Some(State::Established));
    let last = t.net.hosts[B].delivered.last().unwrap();
    assert_eq!((last.src, last.dst, last.via_shim), (ua, ub, true));
    assert_eq!(&last.payload[..], b"after restart");
    assert_eq!(t.info(A).ct_peer, Some(t.info(B).ct_local));
}

#[test]
fn locator_added_and_removed_updates_peer() {
    // A's HBA set has 3 members, but only 2 are configured at first.
    let t0 = epoch();
    let mut net = Net::new(t0, 5);
    let ida = ident(Kind::Hba, 1, 3);
    let all = ida.locators.clone();
    let first: Vec<_> = all[..2].iter().map(|a| reap::Locator::new(*a)).collect();
    let ea = crate::Endpoint::new(config(1), ida.ulids, &first, t0).unwrap();
    let (eb, lb) = endpoint(ident(Kind::Hba, 2, 2), config(2), t0);
    net.add_host(Some(ea), all.clone());
    net.add_host(Some(eb), lb.clone());
    net.hosts[A].ep().establish(t0, all[0], lb[0]).unwrap();
    net.drain(A);
    net.settle();
    let tb = net.hosts[B].ep().find(lb[0], all[0], 0).unwrap();
    assert_eq!(
        net.hosts[B].ep().context(tb).unwrap().peer_locators.len(),
        2
    );
    // Added.
    let now = net.now();
    let three: Vec<_> = all.iter().map(|a| reap::Locator::new(*a)).collect();
    net.hosts[A]
        .ep()
        .handle_local_locators(now, &three)
        .unwrap();
    net.drain(A);
    net.settle();
    let info = net.hosts[B].ep().context(tb).unwrap();
    assert!(info.peer_locators.iter().any(|l| l.addr == all[2]));
    assert!(
        net.hosts[A]
            .events
            .iter()
            .any(|e| matches!(e, Event::UpdateAcknowledged { .. }))
    );
    let ta = net.hosts[A].ep().find(all[0], lb[0], 0).unwrap();
    assert!(!net.hosts[A].ep().context(ta).unwrap().update_pending);
    // Removed.
    let now = net.now();
    let two: Vec<_> = [all[0], all[2]]
        .iter()
        .map(|a| reap::Locator::new(*a))
        .collect();
    net.hosts[A].ep().handle_local_locators(now, &two).unwrap();
    net.drain(A);
    net.settle();
    let info = net.hosts[B].ep().context(tb).unwrap();
    assert!(!info.peer_locators.iter().any(|l| l.addr == all[1]));
    assert_eq!(info.peer_locators.len(), 2);
}

#[test]
fn cga_locator_added_is_signed_and_verified() {
    let mut t = Two::new(Kind::Cga, 2);
    t.establish();
    let signed = t.ep(A).signatures_made();
    let mut locs: Vec<_> = t.la.iter().map(|a| reap::Locator::new(*a)).collect();
    let new = identity::addr(&identity::prefix(1, 5), 0x55);
    locs.push(reap::Locator::new(new));
    t.net.hosts[A].addresses.push(new);
    let now = t.net.now();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    t.net.drain(A);
    t.net.settle();
    assert_eq!(
        t.ep(A).signatures_made(),
        signed + 1,
        "one signature per new list"
    );
    assert!(t.info(B).peer_locators.iter().any(|l| l.addr == new));
}

#[test]
fn forged_update_request_is_rejected_and_retransmitted() {
    let mut t = Two::new(Kind::Cga, 2);
    t.establish();
    let before = t.info(B).peer_locators.clone();
    let mut tampered = 0;
    t.net.alter = Some(Box::new(move |f, p| {
        if f.message_type == MessageType::UpdateRequest && tampered < 2 {
            tampered += 1;
            rewrite_message(p, |m| {
                if let Message::UpdateRequest(u) = m {
                    for o in &mut u.options {
                        if let OptionRepr::CgaSignature(s) = o {
                            s[3] ^= 1;
                        }
                    }
                }
            });
        }
        true
    }));
    let mut locs: Vec<_> = t.la.iter().map(|a| reap::Locator::new(*a)).collect();
    let new = identity::addr(&identity::prefix(1, 6), 0x66);
    locs.push(reap::Locator::new(new));
    t.net.hosts[A].addresses.push(new);
    let now = t.net.now();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    t.net.drain(A);
    t.net.run_for(Duration::from_secs(2));
    assert_eq!(t.ep(B).stats().drops(DropReason::BadSignature), 1);
    assert_eq!(t.info(B).peer_locators, before, "no state change");
    // Retransmissions (same nonce, back-off) get through eventually.
    t.net.run_for(Duration::from_secs(30));
    assert!(t.info(B).peer_locators.iter().any(|l| l.addr == new));
    assert!(t.sent(A, MessageType::UpdateRequest) >= 3);
}

/// MipShim6 with care-of addresses outside the HBA set (issue 7): a CGA-compatible HBA
/// set (RFC 5535 §5) advertises a locator on a prefix it does not list with the CGA
/// method (RFC 5533 §7.2); the Update Request's CGA Signature covers it (RFC 5533
/// §5.15.5, §10.1). A list whose signature does not verify is refused as a whole, the
/// peer's state untouched; the retransmission, signed correctly, is taken with the new
/// locator marked CGA and the set's members still HBA.
#[test]
fn cga_compatible_hba_non_member_locator_needs_a_good_signature() {
    use shim6_wire::shim6::locator::VerificationMethod;
    use std::net::Ipv6Addr;
    let mut t = Two::with(Kind::CgaHba, Kind::Hba, 2, config(1), config(2));
    t.establish();
    assert_eq!(t.state(B), Some(State::Established));
    let before = t.info(B).peer_locators.clone();
    assert!(
        before
            .iter()
            .all(|l| matches!(l.method, None | Some(VerificationMethod::Hba))),
        "{before:?}"
    );
    let mut tampered = 0;
    t.net.alter = Some(Box::new(move |f, p| {
        if f.message_type == MessageType::UpdateRequest && tampered < 1 {
            tampered += 1;
            rewrite_message(p, |m| {
                if let Message::UpdateRequest(u) = m {
                    for o in &mut u.options {
                        if let OptionRepr::CgaSignature(s) = o {
                            let last = s.len() - 1;
                            s[last] ^= 0x80;
                        }
                    }
                }
            });
        }
        true
    }));
    let signed = t.ep(A).signatures_made();
    // A care-of address on a prefix the set does not list.
    let coa = identity::addr(&identity::prefix(1, 9), 0x99);
    let mut locs: Vec<_> = t.la.iter().map(|a| reap::Locator::new(*a)).collect();
    locs.push(reap::Locator::new(coa));
    t.net.hosts[A].addresses.push(coa);
    let now = t.net.now();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    assert_eq!(
        t.ep(A).signatures_made(),
        signed + 1,
        "the new list is signed"
    );
    t.net.drain(A);
    t.net.run_for(Duration::from_secs(2));
    assert_eq!(t.ep(B).stats().drops(DropReason::BadSignature), 1);
    assert_eq!(
        t.info(B).peer_locators,
        before,
        "a refused list changes nothing"
    );
    t.net.run_for(Duration::from_secs(30));
    let after = t.info(B).peer_locators;
    let method = |a: Ipv6Addr| after.iter().find(|l| l.addr == a).map(|l| l.method);
    assert_eq!(
        method(coa),
        Some(Some(VerificationMethod::Cga)),
        "{after:?}"
    );
    assert_eq!(method(t.la[1]), Some(Some(VerificationMethod::Hba)));
    assert_eq!(t.ep(B).stats().drops(DropReason::BadSignature), 1);
}

#[test]
fn update_with_preferences_of_wrong_generation_gets_error_3() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.net.alter = Some(Box::new(|f, p| {
        if f.message_type == MessageType::UpdateRequest {
            rewrite_message(p, |m| {
                if let Message::UpdateRequest(u) = m {
                    for o in &mut u.options {
                        if let OptionRepr::LocatorPreferences(pr) = o {
                            pr.generation ^= 1;
                        }
                    }
                }
            });
        }
        true
    }));
    // Preferences that are not neutral make A send the option.
    let locs: Vec<_> =
        t.la.iter()
            .enumerate()
            .map(|(i, a)| {
                reap::Locator::with_pref(
                    *a,
                    reap::Preference {
                        priority: i as u8,
                        ..reap::Preference::default()
                    },
                )
            })
            .collect();
    let now = t.net.now();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    t.net.drain(A);
    t.net.run_for(Duration::from_secs(2));
    assert_eq!(t.ep(B).stats().sent(MessageType::Error), 1);
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::PeerError {
            code: shim6_wire::shim6::error_message::ErrorCode::LocatorListGenerationOutOfSync,
            ..
        }
    )));
    assert!(t.ep(B).stats().drops(DropReason::PreferencesMismatch) >= 1);
    let tag = t.info(A).ct_local;
    assert!(
        t.has_event(
            A,
            |e| matches!(e, Event::PeerError { tag: Some(x), .. } if *x == tag)
        ),
        "the Error is attributed to the context it quotes"
    );
}

#[test]
fn locator_preferences_are_sent_and_honoured() {
    let mut t = Two::new(Kind::Hba, 2);
    let locs: Vec<_> =
        t.la.iter()
            .enumerate()
            .map(|(i, a)| {
                reap::Locator::with_pref(
                    *a,
                    reap::Preference {
                        transient: i == 1,
                        priority: 3 + i as u8,
                        weight: 7,
                        broken: false,
                    },
                )
            })
            .collect();
    let now = t.net.now();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    t.establish();
    let ib = t.info(B);
    let second = ib.peer_locators.iter().find(|l| l.addr == t.la[1]).unwrap();
    assert!(second.pref.transient);
    assert_eq!((second.pref.priority, second.pref.weight), (4, 7));
}

#[test]
fn unknown_critical_option_gets_error_1_and_is_not_processed() {
    let mut t = Two::new(Kind::Hba, 2);
    let (ua, ub) = (t.ua, t.ub);
    // An I1 with an unknown critical option (type 200, C = 1).
    let mut body = Message::I1(shim6_wire::shim6::handshake::I1 {
        initiator_context_tag: ContextTag::from_masked(5),
        initiator_nonce: 5,
        options: Vec::new(),
    })
    .to_vec()
    .unwrap();
    body.extend_from_slice(&[0x01, 0x91, 0x00, 0x04, 1, 2, 3, 4]);
    body[1] += 1;
    let mut p = shim6_wire::shim6::control::Packet::new_unchecked(&mut body[..]);
    p.fill_checksum();
    let mut pkt = vec![0u8; 40];
    shim6_wire::ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: body.len() as u16,
        next_header: 140,
        hop_limit: 64,
        src_addr: ua,
        dst_addr: ub,
    }
    .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut pkt[..]));
    pkt.extend_from_slice(&body);
    let now = t.net.now();
    let len = pkt.len();
    let r = t.ep(B).handle_inbound(now, &mut pkt, 0..len);
    assert_eq!(
        r,
        crate::Inbound::Drop(DropReason::UnrecognizedCriticalOption)
    );
    assert_eq!(t.ep(B).stats().sent(MessageType::R1), 0);
    let e = t.ep(B).poll_transmit().expect("Error message");
    assert_eq!(e.message_type, MessageType::Error);
    match Message::parse_bytes(&e.packet[40..]).unwrap() {
        Message::Error(m) => {
            assert_eq!(
                m.code,
                shim6_wire::shim6::error_message::ErrorCode::UnrecognizedCriticalOption
            );
            assert_eq!(m.pointer, 40 + 16);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn r1bis_is_rate_limited_under_a_flood_of_unknown_tags() {
    let mut t = Two::new(Kind::Hba, 2);
    let (ua, ub) = (t.ua, t.ub);
    for i in 0..100u64 {
        let mut pkt = vec![0u8; 48];
        shim6_wire::ipv6::Repr {
            traffic_class: 0,
            flow_label: 0,
            payload_len: 8,
            next_header: 140,
            hop_limit: 64,
            src_addr: ua,
            dst_addr: ub,
        }
        .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut pkt[..]));
        shim6_wire::shim6::payload::Repr {
            next_header: 59,
            context_tag: ContextTag::from_masked(i + 1),
        }
        .emit(&mut shim6_wire::shim6::payload::Packet::new_unchecked(
            &mut pkt[40..],
        ));
        let now = t.net.now();
        let r = t.ep(B).handle_inbound(now, &mut pkt, 0..48);
        assert_eq!(r, crate::Inbound::Drop(DropReason::UnknownContextTag));
    }
    let st = t.ep(B).stats().clone();
    assert_eq!(st.sent(MessageType::R1bis), 10, "the burst");
    assert_eq!(st.r1bis_suppressed, 90);
    assert_eq!(st.drops(DropReason::UnknownContextTag), 100);
    assert_eq!(t.ep(B).context_count(), 0);
}

#[test]
fn update_with_wrong_preference_count_gets_error_4() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.net.alter = Some(Box::new(|f, p| {
        if f.message_type == MessageType::UpdateRequest {
            rewrite_message(p, |m| {
                if let Message::UpdateRequest(u) = m {
                    for o in &mut u.options {
                        if let OptionRepr::LocatorPreferences(pr) = o {
                            pr.preferences.pop();
                        }
                    }
                }
            });
        }
        true
    }));
    let locs: Vec<_> =
        t.la.iter()
            .map(|a| {
                reap::Locator::with_pref(
                    *a,
                    reap::Preference {
                        priority: 5,
                        ..reap::Preference::default()
                    },
                )
            })
            .collect();
    let now = t.net.now();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    t.net.drain(A);
    t.net.run_for(Duration::from_secs(2));
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::PeerError {
            code: shim6_wire::shim6::error_message::ErrorCode::WrongLocatorPreferencesCount,
            ..
        }
    )));
    assert!(t.info(A).update_pending, "no UA for a refused update");
}

#[test]
fn unsupported_verification_method_gets_error_2_and_no_state() {
    let mut t = Two::new(Kind::Hba, 2);
    t.net.alter = Some(Box::new(|f, p| {
        if f.message_type == MessageType::I2 {
            rewrite_message(p, |m| {
                if let Message::I2(i2) = m {
                    for o in &mut i2.options {
                        if let OptionRepr::LocatorList(l) = o {
                            l.locators[1].method =
                                shim6_wire::shim6::locator::VerificationMethod::Other(9);
                        }
                    }
                }
            });
        }
        true
    }));
    t.establish();
    t.net.run_for(Duration::from_secs(1));
    assert_eq!(t.ep(B).context_count(), 0);
    assert!(
        t.ep(B)
            .stats()
            .drops(DropReason::UnsupportedVerificationMethod)
            >= 1
    );
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::PeerError {
            code: shim6_wire::shim6::error_message::ErrorCode::LocatorVerificationFailed,
            ..
        }
    )));
}

#[test]
fn peer_restart_on_ulid_path_keeps_flows_then_recovers_at_the_next_failure() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.traffic(Duration::from_secs(2), Duration::from_millis(200));
    // B restarts while payload flows on the ULIDs (no Shim6 header at all).
    let now = t.net.now();
    let (eb, _) = endpoint(ident(Kind::Hba, 2, 2), config(5), now);
    t.net.restart(B, eb);
    let (na, nb) = (
        t.net.hosts[A].delivered.len(),
        t.net.hosts[B].delivered.len(),
    );
    t.traffic(Duration::from_secs(10), Duration::from_millis(200));
    assert!(
        t.net.hosts[A].delivered.len() >= na + 45,
        "B → A unaffected"
    );
    assert!(
        t.net.hosts[B].delivered.len() >= nb + 45,
        "A → B unaffected"
    );
    assert_eq!(t.ep(B).context_count(), 0);
    // The next failure: A's REAP probes name the forgotten tag → R1bis → I2bis.
    let (ua, ub) = (t.ua, t.ub);
    t.net.cut(ua, ub);
    t.traffic(Duration::from_secs(60), Duration::from_millis(200));
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::Established {
            recovered: true,
            ..
        }
    )));
    assert_eq!(t.state(B), Some(State::Established));
    let now = t.net.elapsed();
    let recent = |h: usize, t: &Two| {
        t.net.hosts[h]
            .delivered
            .iter()
            .filter(|d| d.at + Duration::from_secs(3) >= now)
            .count()
    };
    assert!(recent(B, &t) >= 10, "A → B flows again");
    assert!(recent(A, &t) >= 10, "B → A flows again");
}

#[test]
fn forked_context_carries_its_own_tag_on_the_data_path() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    let fork = t.ep(A).fork(now, ua, ub).unwrap();
    t.net.drain(A);
    t.net.settle();
    // Both contexts fail over; then each rewrites with its own CT(peer).
    t.net.cut(ua, ub);
    let end = t.net.now() + Duration::from_secs(40);
    while t.net.now() < end {
        for fii in [0, 1] {
            let mut buf = vec![0u8; 8 + 40 + 4];
            shim6_wire::ipv6::Repr {
                traffic_class: 0,
                flow_label: 0,
                payload_len: 4,
                next_header: 17,
                hop_limit: 64,
                src_addr: ua,
                dst_addr: ub,
            }
            .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut buf[8..]));
            buf[48] = 0x10 + fii as u8;
            let now = t.net.now();
            let len = buf.len();
            if let crate::Outbound::Send(s) =
                t.ep(A).handle_outbound_fii(now, &mut buf, 8..len, fii)
            {
                t.net.wire(A, buf[s.packet].to_vec());
            }
            t.net.drain(A);
        }
        t.net.send_app(B, ub, ua, b"b");
        t.net.run_for(Duration::from_millis(200));
    }
    let forked_peer = t.ep(A).context(fork).unwrap().ct_peer.unwrap();
    let default_peer = t.info(A).ct_peer.unwrap();
    assert_ne!(forked_peer, default_peer);
    // B restored packets of both contexts (each looked up by its own tag).
    let restored = t.ep(B).stats().payload_restored;
    assert!(restored >= 100, "{restored}");
    for marker in [0x10u8, 0x11] {
        assert!(
            t.net.hosts[B]
                .delivered
                .iter()
                .any(|d| d.via_shim && d.src == ua && d.payload.first() == Some(&marker)),
            "context FII {} delivered through its own tag",
            marker - 0x10
        );
    }
}

#[test]
fn iana_verification_method_numbering_interoperates_only_when_both_agree() {
    let iana = |seed| Config {
        iana_verification_methods: true,
        ..config(seed)
    };
    // Both ends switched: the wire says 2 for the HBA locators, and it works.
    let mut t = Two::with(Kind::Hba, Kind::Hba, 2, iana(1), iana(2));
    let methods: Rc<RefCell<Vec<u8>>> = Rc::default();
    let m2 = methods.clone();
    t.net.alter = Some(Box::new(move |f, p| {
        if f.message_type == MessageType::I2 {
            if let Ok(Message::I2(i2)) = Message::parse_bytes(&p[40..]) {
                for o in &i2.options {
                    if let OptionRepr::LocatorList(l) = o {
                        m2.borrow_mut()
                            .extend(l.locators.iter().map(|x| u8::from(x.method)));
                    }
                }
            }
        }
        true
    }));
    t.establish();
    assert_eq!(t.state(B), Some(State::Established));
    assert_eq!(
        *methods.borrow(),
        vec![2, 2],
        "HBA numbered 2 (RFC 5533 §17)"
    );
    // Only one end switched: its HBA locators read as CGA, unsigned: refused.
    let mut t = Two::with(Kind::Hba, Kind::Hba, 2, iana(1), config(2));
    t.establish();
    assert_eq!(t.ep(B).context_count(), 0);
    assert!(t.ep(B).stats().drops(DropReason::BadSignature) >= 1);
}

#[test]
fn no_failure_means_no_exploration_and_no_path_change() {
    for one_way in [false, true] {
        let mut t = Two::new(Kind::Hba, 3);
        t.establish();
        let (ua, ub) = (t.ua, t.ub);
        let end = t.net.now() + Duration::from_secs(300);
        while t.net.now() < end {
            t.net.send_app(A, ua, ub, b"data");
            if !one_way {
                t.net.send_app(B, ub, ua, b"ack");
            }
            t.net.run_for(Duration::from_millis(300));
        }
        for h in [A, B] {
            assert!(
                !t.has_event(h, |e| matches!(
                    e,
                    Event::PathFailed { .. } | Event::PathChanged { .. }
                )),
                "one_way = {one_way}, host {h}"
            );
        }
        assert_eq!(t.ep(A).stats().sent(MessageType::Probe), 0);
    }
}

#[test]
fn peer_gone_ends_probing() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.traffic(Duration::from_secs(2), Duration::from_millis(200));
    // B vanishes: every address unreachable.
    for b in t.lb.clone() {
        t.net.isolate(b);
    }
    let (ua, ub) = (t.ua, t.ub);
    for _ in 0..100 {
        t.net.send_app(A, ua, ub, b"anyone?");
        t.net.run_for(Duration::from_millis(200));
    }
    assert!(t.has_event(A, |e| matches!(e, Event::PathFailed { .. })));
    t.net.run_for(Duration::from_secs(1800));
    let late = t.net.elapsed() - Duration::from_secs(600);
    let late_probes = t
        .net
        .trace
        .iter()
        .filter(|x| x.at >= late && x.control == Some(MessageType::Probe))
        .count();
    assert_eq!(late_probes, 0, "probing stopped");
    assert!(
        t.has_event(A, |e| matches!(
            e,
            Event::PeerUnreachable { .. } | Event::Closed { .. }
        )),
        "REAP gave up or the idle context was torn down"
    );
}

#[test]
fn any_member_of_a_configured_hba_set_serves_as_ulid() {
    let mut t = Two::new(Kind::Hba, 3);
    let now = t.net.now();
    let ua = t.ua;
    let ub2 = t.lb[2]; // not the configured ULID, a member of its set
    t.ep(A).establish(now, ua, ub2).unwrap();
    t.net.drain(A);
    t.net.settle();
    let tb = t
        .ep(B)
        .find(ub2, ua, 0)
        .expect("B keyed the context by its member ULID");
    assert_eq!(t.ep(B).context(tb).unwrap().state, State::Established);
    let ta = t.ep(A).find(ua, ub2, 0).unwrap();
    let info = t.ep(A).context(ta).unwrap();
    assert_eq!(info.state, State::Established);
    assert_eq!(
        info.peer_locators.len(),
        3,
        "the set verified against the member's PDS"
    );
}

#[test]
fn update_request_is_retransmitted_forever_with_capped_backoff() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.net.alter = Some(Box::new(|f, _| {
        f.message_type != MessageType::UpdateRequest
    }));
    // No payload for an hour: keep the idle teardown (10 min) out of the way.
    let p = t.ep(A).policy();
    t.ep(A).set_policy(crate::Policy {
        teardown_idle: Duration::from_secs(7200),
        ..p
    });
    let locs: Vec<_> = t.la.iter().rev().map(|a| reap::Locator::new(*a)).collect();
    let now = t.net.now();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    t.net.drain(A);
    t.net.run_for(Duration::from_secs(3600));
    let times: Vec<Duration> = t
        .net
        .trace
        .iter()
        .filter(|x| x.control == Some(MessageType::UpdateRequest))
        .map(|x| x.at)
        .collect();
    assert!(
        times.len() >= 30,
        "still retransmitting after an hour: {}",
        times.len()
    );
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g <= crate::config::MAX_UPDATE_TIMEOUT));
    // Binary back-off: the early gaps grow, the late ones sit at the cap (±50 %).
    assert!(gaps[0] <= Duration::from_secs(6));
    assert!(
        gaps[gaps.len() - 10..]
            .iter()
            .all(|g| *g >= Duration::from_secs(60))
    );
    assert!(t.info(A).update_pending);
}

#[test]
fn local_interface_down_hint_fails_over_before_the_send_timer() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    t.traffic(Duration::from_secs(1), Duration::from_millis(200));
    let ua = t.ua;
    t.net.isolate(ua);
    let now = t.net.now();
    t.ep(A).handle_hint(now, reap::Hint::LocalAddressDown(ua));
    t.net.drain(A);
    t.traffic(Duration::from_secs(5), Duration::from_millis(200));
    let pair = t.info(A).current_pair;
    assert_ne!(pair.local, ua, "moved off the dead interface within 5 s");
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::PathFailed {
            cause: reap::FailureCause::LocalLocatorDown,
            ..
        }
    )));
}
