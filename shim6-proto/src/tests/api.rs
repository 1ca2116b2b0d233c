//! The API contract, REAP glue and data-path details.

use std::time::Duration;

use shim6_wire::shim6::probe::{Probe, ProbeRecord, ReapState};
use shim6_wire::shim6::{ContextTag, Message, MessageType};

use super::util::*;
use crate::{ApiMisuse, Config, DropReason, Endpoint, Error, Event, Inbound, State};

fn wrap(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, m: &Message) -> Vec<u8> {
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

#[test]
fn new_without_seed_is_api_misuse() {
    let id = ident(Kind::Hba, 1, 2);
    let r = Endpoint::new(Config::default(), id.ulids, &[], epoch());
    assert_eq!(r.err(), Some(Error::ApiMisuse(ApiMisuse::NoSeed)));
}

#[test]
fn new_rejects_ulid_that_does_not_match_its_parameters() {
    let mut id = ident(Kind::Hba, 1, 2);
    id.ulids[0].address = id.locators[1];
    id.ulids[0].address = "2001:db8:1:1::99".parse().unwrap();
    let r = Endpoint::new(config(1), id.ulids, &[], epoch());
    assert!(matches!(r, Err(Error::ApiMisuse(ApiMisuse::Identity(_)))));
}

#[test]
fn establish_twice_or_from_foreign_ulid_is_api_misuse() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    let tag = t.info(A).ct_local;
    assert_eq!(
        t.ep(A).establish(now, ua, ub).err(),
        Some(Error::ApiMisuse(ApiMisuse::ContextExists(tag)))
    );
    assert!(matches!(
        t.ep(A).establish(now, ub, ua),
        Err(Error::ApiMisuse(ApiMisuse::UnknownLocalUlid(_)))
    ));
    t.ep(A).close(now, tag).unwrap();
    assert!(t.ep(A).close(now, tag).is_err());
    assert!(
        t.has_event(A, |e| matches!(
            e,
            Event::Closed {
                reason: crate::CloseReason::Api,
                ..
            }
        )) || {
            t.net.drain(A);
            t.has_event(A, |e| matches!(e, Event::Closed { .. }))
        }
    );
}

#[test]
fn time_going_backwards_is_treated_as_latest() {
    let mut t = Two::new(Kind::Hba, 2);
    let now = t.net.now();
    let (ua, ub) = (t.ua, t.ub);
    t.ep(A)
        .establish(now + Duration::from_secs(10), ua, ub)
        .unwrap();
    let deadline = t.ep(A).poll_timeout().unwrap();
    // An earlier instant later on changes nothing: the retransmission is not early.
    t.ep(A).handle_timeout(now);
    assert_eq!(t.ep(A).poll_timeout(), Some(deadline));
    assert!(deadline >= now + Duration::from_secs(12));
}

#[test]
fn keepalive_timeout_option_reaches_peer_reap() {
    let mut ca = config(1);
    ca.reap.send_timeout = Duration::from_secs(30);
    let mut t = Two::with(Kind::Hba, Kind::Hba, 2, ca, config(2));
    t.establish();
    assert_eq!(t.info(B).peer_keepalive_timeout, Some(30));
    assert_eq!(t.info(A).peer_keepalive_timeout, None, "default: no option");
}

#[test]
fn unknown_message_type_gets_error_0() {
    let mut t = Two::new(Kind::Hba, 2);
    let (ua, ub) = (t.ua, t.ub);
    // A type-100 message: the I1 layout with another type, checksum redone.
    let mut p = wrap(
        ua,
        ub,
        &Message::I1(shim6_wire::shim6::handshake::I1 {
            initiator_context_tag: ContextTag::from_masked(1),
            initiator_nonce: 1,
            options: Vec::new(),
        }),
    );
    p[42] = 100;
    shim6_wire::shim6::control::Packet::new_unchecked(&mut p[40..]).fill_checksum();
    let now = t.net.now();
    let len = p.len();
    assert_eq!(
        t.ep(B).handle_inbound(now, &mut p, 0..len),
        Inbound::Drop(DropReason::UnknownMessageType)
    );
    let e = t.ep(B).poll_transmit().unwrap();
    match Message::parse_bytes(&e.packet[40..]).unwrap() {
        Message::Error(m) => assert_eq!((u8::from(m.code), m.pointer), (0, 42)),
        other => panic!("{other}"),
    }
}

#[test]
fn probe_whose_first_record_mismatches_header_is_dropped() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    let (ua, ub) = (t.ua, t.ub);
    let tag = t.info(B).ct_local;
    let rec = |src, dst| ProbeRecord {
        src,
        dst,
        nonce: 1,
        data: 0,
    };
    let probe = |r| {
        Message::Probe(Probe {
            receiver_context_tag: tag,
            state: ReapState::Exploring,
            sent: vec![r],
            received: Vec::new(),
            options: Vec::new(),
        })
    };
    let now = t.net.now();
    let mut bad = wrap(ua, ub, &probe(rec(t.la[1], ub)));
    let len = bad.len();
    assert_eq!(
        t.ep(B).handle_inbound(now, &mut bad, 0..len),
        Inbound::Drop(DropReason::ProbeRecordMismatch)
    );
    let mut good = wrap(ua, ub, &probe(rec(ua, ub)));
    let len = good.len();
    assert_eq!(
        t.ep(B).handle_inbound(now, &mut good, 0..len),
        Inbound::Consumed
    );
    // §6.7: B answers an Exploring probe with its own probe.
    t.net.drain(B);
    assert!(t.sent(B, MessageType::Probe) >= 1);
}

#[test]
fn unreported_bypass_traffic_makes_reap_suspect_a_working_path() {
    // Architecture hazard 2: payload on the ULIDs reaches the app without the shim. If
    // the shell does not report it, REAP's Send timer sees silence and explores.
    for report in [true, false] {
        let mut t = Two::new(Kind::Hba, 2);
        t.net.hosts[A].report_bypass = report;
        t.net.hosts[B].report_bypass = report;
        t.establish();
        t.traffic(Duration::from_secs(40), Duration::from_millis(500));
        let failed = t.has_event(A, |e| matches!(e, Event::PathFailed { .. }));
        assert_eq!(failed, !report, "report_bypass = {report}");
    }
}

#[test]
fn outbound_without_context_or_on_ulids_passes_through() {
    let mut t = Two::new(Kind::Hba, 2);
    let (ua, ub) = (t.ua, t.ub);
    t.net.send_app(A, ua, ub, b"before");
    t.establish();
    t.net.send_app(A, ua, ub, b"after");
    t.net.run_for(Duration::from_millis(50));
    assert_eq!(t.ep(A).stats().payload_passed, 2);
    assert_eq!(t.ep(A).stats().payload_rewritten, 0);
    assert!(t.net.hosts[B].delivered.iter().all(|d| !d.via_shim));
}

#[test]
fn rewritten_outbound_packet_carries_peer_tag_and_locators() {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    let (ua, ub) = (t.ua, t.ub);
    t.net.cut(ua, ub);
    t.traffic(Duration::from_secs(40), Duration::from_millis(200));
    let pair = t.info(A).current_pair;
    let ct_peer = t.info(A).ct_peer.unwrap();
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
    let now = t.net.now();
    let len = buf.len();
    match t.ep(A).handle_outbound(now, &mut buf, 8..len) {
        crate::Outbound::Send(s) => {
            assert_eq!(s.packet, 0..len);
            assert_eq!((s.src, s.dst), (pair.local, pair.remote));
            let p = shim6_wire::ipv6::Packet::new_checked(&buf[s.packet.clone()]).unwrap();
            assert_eq!(p.next_header(), 140);
            let h = shim6_wire::shim6::payload::Packet::new_checked(&buf[40..48]).unwrap();
            assert_eq!(h.context_tag(), ct_peer);
            assert_eq!(h.next_header(), 17);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.state(A), Some(State::Established));
}
