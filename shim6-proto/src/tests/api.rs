//! The API contract, REAP glue and data-path details.

use std::time::{Duration, Instant};

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

#[test]
fn context_tag_collision_is_redrawn() {
    let mut t = Two::new(Kind::Hba, 2);
    let now = t.net.now();
    let ep = t.ep(A);
    // Predict the next tag from a copy of the endpoint's generator and occupy it.
    let mut copy = ep.rng.clone();
    let predicted = ContextTag::from_masked(rand_core::RngCore::next_u64(&mut copy));
    let key = crate::ContextKey {
        ulid_local: "2001:db8:ff::1".parse().unwrap(),
        ulid_peer: "2001:db8:ff::2".parse().unwrap(),
        fii: 0,
    };
    ep.put(Box::new(crate::context::Context::new(
        State::Established,
        key,
        predicted,
        now,
    )));
    let fresh = ep.alloc_tag();
    assert_ne!(fresh, predicted);
    assert_eq!(ep.stats().tag_collisions, 1);
}

#[test]
fn random_mutations_of_real_traffic_never_panic() {
    use rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    // Real packets of every kind: a handshake, an update, probes after a cut.
    let mut t = Two::new(Kind::Cga, 2);
    let seen: std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>> = std::rc::Rc::default();
    let s2 = seen.clone();
    t.net.alter = Some(Box::new(move |_, p| {
        s2.borrow_mut().push(p.clone());
        true
    }));
    t.establish();
    let (ua, ub) = (t.ua, t.ub);
    t.net.cut(ua, ub);
    t.traffic(Duration::from_secs(30), Duration::from_millis(300));
    let corpus = seen.borrow().clone();
    assert!(corpus.len() >= 6, "handshake and probes captured");
    for i in 0..3000 {
        let mut p = corpus[i % corpus.len()].clone();
        let flips = 1 + (rng.next_u32() % 4) as usize;
        for _ in 0..flips {
            let at = 40 + (rng.next_u32() as usize) % (p.len() - 40);
            p[at] ^= 1 << (rng.next_u32() % 8);
        }
        if rng.next_u32() % 2 == 0 && p.len() > 48 {
            // Half the time fix the checksum so that the deeper checks run.
            let _ = shim6_wire::shim6::control::Packet::new_checked(&mut p[40..])
                .map(|mut c| c.fill_checksum());
        }
        if rng.next_u32() % 8 == 0 {
            let cut = 40 + (rng.next_u32() as usize) % (p.len() - 40);
            p.truncate(cut);
        }
        let h = if i % 2 == 0 { A } else { B };
        let now = t.net.now();
        let len = p.len();
        let _ = t.net.hosts[h].ep().handle_inbound(now, &mut p, 0..len);
        t.net.drain(h);
    }
    // Still working afterwards.
    t.net.alter = None;
    t.traffic(Duration::from_secs(2), Duration::from_millis(200));
    assert!(
        t.net.hosts[B]
            .delivered
            .iter()
            .rev()
            .take(3)
            .all(|d| d.src == ua)
    );
}

#[test]
fn random_failures_converge_to_a_working_pair() {
    use rand_core::{RngCore, SeedableRng};
    for seed in 0..12u64 {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut t = Two::new(Kind::Hba, 3);
        t.establish();
        t.traffic(Duration::from_secs(1), Duration::from_millis(250));
        let (la, lb) = (t.la.clone(), t.lb.clone());
        // Break the ULID pair both ways and a random subset of the 16 other
        // unidirectional paths, keeping one working pair per direction.
        let keep_ab = (
            1 + (rng.next_u32() % 2) as usize,
            1 + (rng.next_u32() % 2) as usize,
        );
        let keep_ba = (
            1 + (rng.next_u32() % 2) as usize,
            1 + (rng.next_u32() % 2) as usize,
        );
        for (i, a) in la.iter().enumerate() {
            for (j, b) in lb.iter().enumerate() {
                let ulids = i == 0 && j == 0;
                if ulids || ((i, j) != keep_ab && rng.next_u32() % 2 == 0) {
                    t.net.link_down(*a, *b);
                }
                if ulids || ((i, j) != keep_ba && rng.next_u32() % 2 == 0) {
                    t.net.link_down(*b, *a);
                }
            }
        }
        t.traffic(Duration::from_secs(120), Duration::from_millis(250));
        let now = t.net.elapsed();
        let recent = |h: usize, t: &Two| {
            t.net.hosts[h]
                .delivered
                .iter()
                .filter(|d| d.at + Duration::from_secs(5) >= now)
                .count()
        };
        assert!(recent(B, &t) >= 10, "seed {seed}: A → B recovered");
        assert!(recent(A, &t) >= 10, "seed {seed}: B → A recovered");
    }
}

/// A's context off the ULID pair (the pair cut, traffic until REAP moved it), then a
/// UDP packet of `payload_len` octets from A's ULID to B's as A rewrites it (payload
/// header, RFC 5533 §5.1): the two hosts, the time, where A sends it, and the packet as
/// it goes on the wire.
fn shimmed_udp_from_a(payload_len: u16) -> (Two, Instant, crate::Sent, Vec<u8>) {
    let mut t = Two::new(Kind::Hba, 2);
    t.establish();
    let (ua, ub) = (t.ua, t.ub);
    t.net.cut(ua, ub);
    t.traffic(Duration::from_secs(40), Duration::from_millis(200));
    let mut buf = vec![0u8; 8 + 40 + usize::from(payload_len)];
    shim6_wire::ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len,
        next_header: 17,
        hop_limit: 64,
        src_addr: ua,
        dst_addr: ub,
    }
    .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut buf[8..]));
    let now = t.net.now();
    let len = buf.len();
    let crate::Outbound::Send(s) = t.ep(A).handle_outbound(now, &mut buf, 8..len) else {
        panic!("rewritten");
    };
    let quoted = buf[s.packet.clone()].to_vec();
    (t, now, s, quoted)
}

/// An `ICMPv6` error message from `src` to `dst` (RFC 4443 §2.1): `(type, code, the
/// word after the checksum)`, then `quoted`.
fn icmp_error(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    (msg_type, code, word): (u8, u8, u32),
    quoted: &[u8],
) -> Vec<u8> {
    let mut p = vec![0u8; 40 + 8 + quoted.len()];
    shim6_wire::ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: (8 + quoted.len()) as u16,
        next_header: 58,
        hop_limit: 64,
        src_addr: src,
        dst_addr: dst,
    }
    .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut p[..]));
    p[48..].copy_from_slice(quoted);
    let mut m = shim6_wire::ipv6::icmp::Packet::new_unchecked(&mut p[40..]);
    m.set_msg_type(msg_type);
    m.set_code(code);
    m.set_data_word(word);
    m.fill_checksum(&src, &dst);
    p
}

#[test]
fn icmp_packet_too_big_about_shimmed_packet_is_translated_to_ulids() {
    let (mut t, now, s, quoted) = shimmed_udp_from_a(100);
    let (ua, ub) = (t.ua, t.ub);
    // A router on the path answers Packet Too Big (MTU 1280) to A's locator.
    let router: std::net::Ipv6Addr = "2001:db8:99::1".parse().unwrap();
    let mut p = icmp_error(
        router,
        s.src,
        (shim6_wire::ipv6::icmp::TYPE_PACKET_TOO_BIG, 0, 1280),
        &quoted,
    );
    let plen = p.len();
    let r = t.ep(A).handle_inbound(now, &mut p, 0..plen);
    let Inbound::DeliverToTun(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.len(), plen - 8);
    let outer = shim6_wire::ipv6::Packet::new_checked(&p[r.clone()]).unwrap();
    assert_eq!(outer.dst_addr(), ua);
    let icmp = shim6_wire::ipv6::icmp::Packet::new_checked(&p[r.start + 40..r.end]).unwrap();
    assert_eq!(icmp.data_word(), 1272, "MTU − 8 for the ULP");
    assert!(icmp.verify_checksum(&router, &ua));
    let q = shim6_wire::ipv6::Packet::new_unchecked(icmp.body());
    assert_eq!((q.src_addr(), q.dst_addr(), q.next_header()), (ua, ub, 17));
    assert_eq!(t.ep(A).stats().icmp_translated, 1);
}

/// docs/bench/dataplane.md, "The UDP rate in `rewritten`": the receiver's kernel skips
/// a full protocol-140 socket and answers Parameter Problem code 1 (unrecognized Next
/// Header) with Pointer 6, the fixed header's Next Header = 140. That is about the shim,
/// not the ULP: consumed and counted, never delivered to the TUN (where it became
/// EPROTO on the application's UDP socket).
#[test]
fn parameter_problem_about_next_header_140_is_not_passed_up() {
    let (mut t, now, s, quoted) = shimmed_udp_from_a(72);
    assert_eq!(
        quoted[6], 140,
        "the fixed header announces the payload header"
    );
    // The peer's kernel (at the peer's locator) answers about it.
    let error = |pointer: u32| {
        icmp_error(
            s.dst,
            s.src,
            (shim6_wire::ipv6::icmp::TYPE_PARAM_PROBLEM, 1, pointer),
            &quoted,
        )
    };
    let mut p = error(6);
    let plen = p.len();
    let r = t.ep(A).handle_inbound(now, &mut p, 0..plen);
    assert_eq!(r, Inbound::Consumed);
    assert_eq!(t.ep(A).stats().icmp_about_shim6, 1);
    assert_eq!(t.ep(A).stats().icmp_translated, 0);
    // A Parameter Problem about the ULP's own header (the UDP header, quoted at 48 past
    // the 8-octet payload header) still goes up, Pointer moved back to 40.
    let mut p = error(48);
    let r = t.ep(A).handle_inbound(now, &mut p, 0..plen);
    let Inbound::DeliverToTun(r) = r else {
        panic!("{r:?}")
    };
    let icmp = shim6_wire::ipv6::icmp::Packet::new_checked(&p[r.start + 40..r.end]).unwrap();
    assert_eq!(icmp.data_word(), 40);
    assert_eq!(t.ep(A).stats().icmp_translated, 1);
    assert_eq!(t.ep(A).stats().icmp_about_shim6, 1);
}
