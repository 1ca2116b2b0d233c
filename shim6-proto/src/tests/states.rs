//! Per-state fixtures and one test per transition of RFC 5533 App. B (digest §1.16),
//! named `test_<state>_<input>_<outcome>`.

use std::cell::RefCell;
use std::net::Ipv6Addr;
use std::rc::Rc;
use std::time::Duration;

use shim6_wire::shim6::handshake::I1;
use shim6_wire::shim6::{ContextTag, Message, MessageType};

use super::util::*;
use crate::sim::Net;
use crate::{DropReason, Event, Inbound, State};

const MS: Duration = Duration::from_millis(1);

type Captured = Rc<RefCell<Vec<(MessageType, Vec<u8>)>>>;

/// Drops (and records) every message of the types in `drop`; records those in `keep`.
fn capture(t: &mut Two, drop: &'static [MessageType], keep: &'static [MessageType]) -> Captured {
    let c: Captured = Rc::default();
    let c2 = c.clone();
    t.net.alter = Some(Box::new(move |f, p| {
        if drop.contains(&f.message_type) || keep.contains(&f.message_type) {
            c2.borrow_mut().push((f.message_type, p.clone()));
        }
        !drop.contains(&f.message_type)
    }));
    c
}

fn first(c: &Captured, ty: MessageType) -> Vec<u8> {
    c.borrow()
        .iter()
        .find(|(t, _)| *t == ty)
        .map(|(_, p)| p.clone())
        .expect("captured")
}

/// An IPv6 packet carrying `m`.
fn packet(src: Ipv6Addr, dst: Ipv6Addr, m: &Message) -> Vec<u8> {
    let body = m.to_vec().unwrap();
    let mut p = vec![0u8; 40];
    shim6_wire::ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: body.len() as u16,
        next_header: 140,
        hop_limit: 64,
        src_addr: src,
        dst_addr: dst,
    }
    .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut p[..]));
    p.extend_from_slice(&body);
    p
}

/// A packet with a payload extension header carrying `tag`.
fn payload(src: Ipv6Addr, dst: Ipv6Addr, tag: ContextTag) -> Vec<u8> {
    let mut p = vec![0u8; 52];
    shim6_wire::ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: 12,
        next_header: 140,
        hop_limit: 64,
        src_addr: src,
        dst_addr: dst,
    }
    .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut p[..]));
    shim6_wire::shim6::payload::Repr {
        next_header: 17,
        context_tag: tag,
    }
    .emit(&mut shim6_wire::shim6::payload::Packet::new_unchecked(
        &mut p[40..48],
    ));
    p
}

fn inject(t: &mut Two, h: usize, mut p: Vec<u8>) -> Inbound {
    let now = t.net.now();
    let len = p.len();
    let r = t.net.hosts[h].ep().handle_inbound(now, &mut p, 0..len);
    t.net.drain(h);
    r
}

fn start(t: &mut Two) {
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    t.ep(A).establish(now, ua, ub).unwrap();
    t.net.drain(A);
}

// ---------------------------------------------------------------------- fixtures

/// A in I1-SENT; its I1 was held back (returned).
fn ctx_i1_sent() -> (Two, Vec<u8>) {
    let mut t = Two::new(Kind::Hba, 2);
    let c = capture(&mut t, &[MessageType::I1], &[]);
    start(&mut t);
    t.net.alter = None;
    assert_eq!(t.state(A), Some(State::I1Sent));
    (t, first(&c, MessageType::I1))
}

/// A in I2-SENT; B is ESTABLISHED; the R2 was held back (returned with the R1).
fn ctx_i2_sent() -> (Two, Captured) {
    let mut t = Two::new(Kind::Hba, 2);
    let c = capture(
        &mut t,
        &[MessageType::R2],
        &[MessageType::R1, MessageType::I1],
    );
    start(&mut t);
    t.net.run_for(50 * MS);
    assert_eq!(t.state(A), Some(State::I2Sent));
    assert_eq!(t.state(B), Some(State::Established));
    (t, c)
}

/// Both ESTABLISHED (hook removed).
fn ctx_established() -> (Two, Captured) {
    let mut t = Two::new(Kind::Hba, 2);
    let c = capture(
        &mut t,
        &[],
        &[MessageType::I1, MessageType::R1, MessageType::R2],
    );
    start(&mut t);
    t.net.settle();
    t.net.alter = None;
    assert_eq!(t.state(A), Some(State::Established));
    (t, c)
}

/// A in I2BIS-SENT after B restarted; B's R2 held back.
fn ctx_i2bis_sent() -> (Two, Captured) {
    let (mut t, _) = ctx_established();
    let now = t.net.now();
    let (eb, _) = endpoint(ident(Kind::Hba, 2, 2), config(77), now);
    t.net.restart(B, eb);
    let c = capture(&mut t, &[MessageType::R2], &[MessageType::R1bis]);
    // A's Update Request names the tag B forgot: R1bis, then I2bis.
    let locs: Vec<_> = t.la.iter().map(|a| reap::Locator::new(*a)).collect();
    t.ep(A).handle_local_locators(now, &locs).unwrap();
    t.net.drain(A);
    t.net.run_for(50 * MS);
    assert_eq!(t.state(A), Some(State::I2bisSent));
    (t, c)
}

// ---------------------------------------------------------------------- IDLE

#[test]
fn test_idle_i1_sends_r1_without_state() {
    let mut t = Two::new(Kind::Hba, 2);
    start(&mut t);
    t.net.run_for(15 * MS);
    assert_eq!(t.sent(B, MessageType::R1), 1);
    assert_eq!(t.ep(B).context_count(), 0);
}

#[test]
fn test_idle_i2_valid_establishes() {
    let mut t = Two::new(Kind::Hba, 2);
    start(&mut t);
    t.net.run_for(25 * MS); // I1 at 10 ms, R1 at 20 ms, I2 in flight
    assert_eq!(t.ep(B).context_count(), 0, "no state before a valid I2");
    t.net.run_for(10 * MS);
    assert_eq!(t.state(B), Some(State::Established));
    assert_eq!(t.sent(B, MessageType::R2), 1);
}

#[test]
fn test_idle_i2_bad_validator_stays_idle() {
    let mut t = Two::new(Kind::Hba, 2);
    let c = capture(&mut t, &[MessageType::I2], &[]);
    start(&mut t);
    t.net.run_for(25 * MS);
    let mut i2 = first(&c, MessageType::I2);
    rewrite_message(&mut i2, |m| {
        if let Message::I2(x) = m {
            x.responder_nonce ^= 1;
        }
    });
    let r = inject(&mut t, B, i2);
    assert!(matches!(
        r,
        Inbound::Drop(DropReason::ValidatorMismatch | DropReason::StaleResponderNonce)
    ));
    assert_eq!(t.ep(B).context_count(), 0);
}

#[test]
fn test_idle_payload_sends_r1bis() {
    let mut t = Two::new(Kind::Hba, 2);
    let (ua, ub) = (t.ua, t.ub);
    let r = inject(&mut t, B, payload(ua, ub, ContextTag::from_masked(99)));
    assert_eq!(r, Inbound::Drop(DropReason::UnknownContextTag));
    assert_eq!(t.sent(B, MessageType::R1bis), 1);
    assert_eq!(t.ep(B).context_count(), 0);
}

// ---------------------------------------------------------------------- I1-SENT

#[test]
fn test_i1_sent_r1_sends_i2() {
    let (mut t, i1) = ctx_i1_sent();
    t.net.wire(A, i1);
    t.net.run_for(25 * MS);
    assert_eq!(t.state(A), Some(State::I2Sent));
    assert_eq!(t.sent(A, MessageType::I2), 1);
}

#[test]
fn test_i1_sent_i1_sends_r2_and_stays() {
    let (mut t, _) = ctx_i1_sent();
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    t.ep(B).establish(now, ub, ua).unwrap();
    t.net.drain(B);
    t.net.run_for(15 * MS);
    assert_eq!(t.sent(A, MessageType::R2), 1);
    assert_eq!(t.state(A), Some(State::I1Sent));
}

#[test]
fn test_i1_sent_r2_establishes() {
    let (mut t, _) = ctx_i1_sent();
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    t.ep(B).establish(now, ub, ua).unwrap();
    t.net.drain(B);
    t.net.settle();
    t.net.drive_bounded(Duration::from_secs(10));
    assert_eq!(t.state(A), Some(State::Established));
    assert_eq!(t.state(B), Some(State::Established));
    assert_eq!(t.sent(A, MessageType::I2), 0, "R2 answered our I1 directly");
}

#[test]
fn test_i1_sent_i2_establishes() {
    let mut t = Two::new(Kind::Hba, 2);
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    t.ep(B).establish(now, ub, ua).unwrap();
    t.net.drain(B);
    t.net.run_for(15 * MS); // A (IDLE) answered B's I1 with R1
    let c = capture(&mut t, &[MessageType::I1], &[]);
    start(&mut t); // A: I1-SENT, its I1 lost
    drop(c);
    t.net.run_for(20 * MS); // B's I2 reaches A in I1-SENT
    assert_eq!(t.state(A), Some(State::Established));
    assert_eq!(t.sent(A, MessageType::R2), 1);
    assert_eq!(t.sent(A, MessageType::I2), 0);
}

#[test]
fn test_i1_sent_timeout_retransmits_i1() {
    let mut t = Two::new(Kind::Hba, 2);
    let _c = capture(&mut t, &[MessageType::I1], &[]);
    start(&mut t);
    t.net.run_for(Duration::from_millis(1999));
    assert_eq!(t.sent(A, MessageType::I1), 1, "not before 0.5 × I1_TIMEOUT");
    t.net.run_for(Duration::from_secs(5));
    assert_eq!(t.sent(A, MessageType::I1), 2, "by 1.5 × I1_TIMEOUT");
}

#[test]
fn test_i1_sent_retries_exhausted_e_failed() {
    let mut t = Two::new(Kind::Hba, 2);
    let _c = capture(&mut t, &[MessageType::I1], &[]);
    start(&mut t);
    t.net.run_for(Duration::from_secs(200));
    assert_eq!(t.state(A), Some(State::EFailed));
    assert_eq!(
        t.sent(A, MessageType::I1),
        1 + u64::from(crate::config::I1_RETRIES_MAX)
    );
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::Failed {
            state: State::EFailed,
            ..
        }
    )));
}

#[test]
fn test_i1_sent_icmp_unrecognized_next_header_no_support() {
    let t0 = epoch();
    let mut net = Net::new(t0, 1);
    let (ea, la) = endpoint(ident(Kind::Hba, 1, 2), config(1), t0);
    let lb = ident(Kind::Hba, 2, 2).locators;
    net.add_host(Some(ea), la.clone());
    net.add_host(None, lb.clone());
    net.hosts[A].ep().establish(t0, la[0], lb[0]).unwrap();
    net.drain(A);
    net.run_for(30 * MS);
    let ep = net.hosts[A].ep();
    let tag = ep.find(la[0], lb[0], 0).unwrap();
    assert_eq!(ep.context(tag).unwrap().state, State::NoSupport);
}

#[test]
fn test_i1_sent_payload_discarded() {
    let (mut t, _) = ctx_i1_sent();
    let (ua, ub) = (t.ua, t.ub);
    let tag = t.info(A).ct_local;
    let r = inject(&mut t, A, payload(ub, ua, tag));
    assert_eq!(r, Inbound::Drop(DropReason::WrongState));
}

// ---------------------------------------------------------------------- I2-SENT

#[test]
fn test_i2_sent_r2_establishes() {
    let (mut t, c) = ctx_i2_sent();
    t.net.alter = None;
    let r2 = first(&c, MessageType::R2);
    let r = inject(&mut t, A, r2);
    assert_eq!(r, Inbound::Consumed);
    assert_eq!(t.state(A), Some(State::Established));
}

#[test]
fn test_i2_sent_r1_discarded() {
    let (mut t, c) = ctx_i2_sent();
    let r1 = first(&c, MessageType::R1);
    let r = inject(&mut t, A, r1);
    assert_eq!(r, Inbound::Drop(DropReason::WrongState));
    assert_eq!(t.state(A), Some(State::I2Sent));
}

#[test]
fn test_i2_sent_i1_sends_r2() {
    let (mut t, _) = ctx_i2_sent();
    t.net.alter = None;
    let (ua, ub) = (t.ua, t.ub);
    let i1 = Message::I1(I1 {
        initiator_context_tag: ContextTag::from_masked(0x4242),
        initiator_nonce: 7,
        options: Vec::new(),
    });
    let r = inject(&mut t, A, packet(ub, ua, &i1));
    assert_eq!(r, Inbound::Consumed);
    assert_eq!(t.sent(A, MessageType::R2), 1);
    assert_eq!(t.state(A), Some(State::I2Sent));
}

#[test]
fn test_i2_sent_timeout_retransmits_i2() {
    let (mut t, _c) = ctx_i2_sent();
    t.net.run_for(Duration::from_secs(7));
    assert_eq!(t.sent(A, MessageType::I2), 2);
    assert_eq!(t.state(A), Some(State::I2Sent));
}

#[test]
fn test_i2_sent_retries_exhausted_falls_back_to_i1() {
    let (mut t, _c) = ctx_i2_sent();
    let mut fell_back = false;
    for _ in 0..400 {
        t.net.run_for(Duration::from_millis(100));
        if t.state(A) == Some(State::I1Sent) {
            fell_back = true;
            break;
        }
    }
    assert!(fell_back);
    assert_eq!(
        t.sent(A, MessageType::I2),
        1 + u64::from(crate::config::I2_RETRIES_MAX)
    );
    assert_eq!(t.sent(A, MessageType::I1), 2);
}

#[test]
fn test_i2_sent_payload_resends_i2_and_delivers() {
    let (mut t, _c) = ctx_i2_sent();
    let (ua, ub) = (t.ua, t.ub);
    let tag = t.info(A).ct_local;
    let r = inject(&mut t, A, payload(ub, ua, tag));
    assert!(matches!(r, Inbound::DeliverToTun(_)));
    assert_eq!(t.sent(A, MessageType::I2), 2);
}

// ---------------------------------------------------------------------- I2BIS-SENT

#[test]
fn test_i2bis_sent_r2_establishes_recovered() {
    let (mut t, c) = ctx_i2bis_sent();
    t.net.alter = None;
    let r2 = first(&c, MessageType::R2);
    assert_eq!(inject(&mut t, A, r2), Inbound::Consumed);
    assert_eq!(t.state(A), Some(State::Established));
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::Established {
            recovered: true,
            ..
        }
    )));
    assert_eq!(t.info(A).ct_peer, Some(t.info(B).ct_local));
}

#[test]
fn test_i2bis_sent_r1bis_discarded() {
    let (mut t, c) = ctx_i2bis_sent();
    let r1bis = first(&c, MessageType::R1bis);
    assert_eq!(
        inject(&mut t, A, r1bis),
        Inbound::Drop(DropReason::WrongState)
    );
    assert_eq!(t.state(A), Some(State::I2bisSent));
}

#[test]
fn test_i2bis_sent_retries_exhausted_falls_back_to_i1() {
    let (mut t, _c) = ctx_i2bis_sent();
    let mut fell_back = false;
    for _ in 0..400 {
        t.net.run_for(Duration::from_millis(100));
        if t.state(A) == Some(State::I1Sent) {
            fell_back = true;
            break;
        }
    }
    assert!(fell_back);
    assert_eq!(
        t.sent(A, MessageType::I2bis),
        1 + u64::from(crate::config::I2BIS_RETRIES_MAX)
    );
}

// ---------------------------------------------------------------------- ESTABLISHED

#[test]
fn test_established_i1_same_tag_sends_r2() {
    let (mut t, c) = ctx_established();
    let i1 = first(&c, MessageType::I1);
    assert_eq!(inject(&mut t, B, i1), Inbound::Consumed);
    assert_eq!(t.sent(B, MessageType::R2), 2);
    assert_eq!(t.sent(B, MessageType::R1), 1);
}

#[test]
fn test_established_i1_new_tag_sends_r1() {
    let (mut t, _) = ctx_established();
    let (ua, ub) = (t.ua, t.ub);
    let i1 = Message::I1(I1 {
        initiator_context_tag: ContextTag::from_masked(0x777),
        initiator_nonce: 1,
        options: Vec::new(),
    });
    assert_eq!(inject(&mut t, B, packet(ua, ub, &i1)), Inbound::Consumed);
    assert_eq!(t.sent(B, MessageType::R1), 2);
    assert_eq!(t.state(B), Some(State::Established));
}

#[test]
fn test_established_r1_discarded() {
    let (mut t, c) = ctx_established();
    let r1 = first(&c, MessageType::R1);
    assert!(matches!(inject(&mut t, A, r1), Inbound::Drop(_)));
    assert_eq!(t.state(A), Some(State::Established));
    assert_eq!(t.sent(A, MessageType::I2), 1);
}

#[test]
fn test_established_r2_discarded() {
    let (mut t, c) = ctx_established();
    let before = t.info(A);
    let r2 = first(&c, MessageType::R2);
    assert!(matches!(inject(&mut t, A, r2), Inbound::Drop(_)));
    assert_eq!(t.info(A), before);
}

#[test]
fn test_established_r1bis_sends_i2bis() {
    let (mut t, _) = ctx_i2bis_sent();
    assert_eq!(t.sent(A, MessageType::I2bis), 1);
}

#[test]
fn test_established_idle_tears_down() {
    let (mut t, _) = ctx_established();
    t.net.run_for(Duration::from_secs(601));
    assert_eq!(t.ep(A).context_count(), 0);
    assert!(t.has_event(A, |e| matches!(
        e,
        Event::Closed {
            reason: crate::CloseReason::Idle,
            ..
        }
    )));
}

#[test]
fn test_established_payload_with_tag_restored_to_ulids() {
    let (mut t, _) = ctx_established();
    let (ua, ub) = (t.ua, t.ub);
    let tag = t.info(B).ct_local;
    let lb1 = t.la[1];
    // Sent from A's second locator: B restores the ULIDs.
    let mut p = payload(lb1, ub, tag);
    let len = p.len();
    let now = t.net.now();
    match t.ep(B).handle_inbound(now, &mut p, 0..len) {
        Inbound::DeliverToTun(r) => {
            let ip = shim6_wire::ipv6::Packet::new_checked(&p[r]).unwrap();
            assert_eq!(
                (ip.src_addr(), ip.dst_addr(), ip.next_header()),
                (ua, ub, 17)
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------- hold-downs

#[test]
fn test_e_failed_holddown_expires_to_idle() {
    let mut t = Two::new(Kind::Hba, 2);
    let _c = capture(&mut t, &[MessageType::I1], &[]);
    start(&mut t);
    t.net.run_for(Duration::from_secs(200));
    assert_eq!(t.state(A), Some(State::EFailed));
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    assert!(t.ep(A).establish(now, ua, ub).is_err(), "held down");
    t.net.run_for(crate::config::NO_R1_HOLDDOWN_TIME);
    assert_eq!(t.state(A), None);
    let now = t.net.now();
    assert!(t.ep(A).establish(now, ua, ub).is_ok());
}

#[test]
fn test_no_support_holddown_expires_to_idle() {
    let t0 = epoch();
    let mut net = Net::new(t0, 1);
    let (ea, la) = endpoint(ident(Kind::Hba, 1, 2), config(1), t0);
    let lb = ident(Kind::Hba, 2, 2).locators;
    net.add_host(Some(ea), la.clone());
    net.add_host(None, lb.clone());
    net.hosts[A].ep().establish(t0, la[0], lb[0]).unwrap();
    net.drain(A);
    net.run_for(Duration::from_secs(599));
    assert_eq!(net.hosts[A].ep().context_count(), 1);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.hosts[A].ep().context_count(), 0);
}

#[test]
fn test_established_i2_retransmitted_sends_r2_and_stays() {
    let mut t = Two::new(Kind::Hba, 2);
    let c = capture(&mut t, &[], &[MessageType::I2]);
    start(&mut t);
    t.net.settle();
    t.net.alter = None;
    let i2 = first(&c, MessageType::I2);
    assert_eq!(inject(&mut t, B, i2), Inbound::Consumed);
    assert_eq!(t.sent(B, MessageType::R2), 2);
    assert_eq!(t.ep(B).context_count(), 1);
    assert_eq!(t.state(B), Some(State::Established));
}

#[test]
fn test_i2bis_sent_i1_sends_r2_and_stays() {
    let (mut t, _) = ctx_i2bis_sent();
    let (ua, ub) = (t.ua, t.ub);
    let i1 = Message::I1(I1 {
        initiator_context_tag: ContextTag::from_masked(0x99),
        initiator_nonce: 3,
        options: Vec::new(),
    });
    let before = t.sent(A, MessageType::R2);
    assert_eq!(inject(&mut t, A, packet(ub, ua, &i1)), Inbound::Consumed);
    assert_eq!(t.sent(A, MessageType::R2), before + 1);
    assert_eq!(t.state(A), Some(State::I2bisSent));
}

#[test]
fn test_e_failed_i1_handled_as_idle_sends_r1() {
    let mut t = Two::new(Kind::Hba, 2);
    let _c = capture(&mut t, &[MessageType::I1], &[]);
    start(&mut t);
    t.net.run_for(Duration::from_secs(200));
    assert_eq!(t.state(A), Some(State::EFailed));
    t.net.alter = None;
    let (ua, ub) = (t.ua, t.ub);
    let i1 = Message::I1(I1 {
        initiator_context_tag: ContextTag::from_masked(0x55),
        initiator_nonce: 9,
        options: Vec::new(),
    });
    assert_eq!(inject(&mut t, A, packet(ub, ua, &i1)), Inbound::Consumed);
    assert_eq!(t.sent(A, MessageType::R1), 1);
    assert_eq!(t.state(A), Some(State::EFailed));
}
