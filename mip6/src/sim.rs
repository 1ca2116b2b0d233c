//! Tests: per-rule tests of the home agent and the mobile node, and a deterministic
//! simulator (virtual time, real bytes through `shim6-wire`) with a mobile node, two
//! home agents and a correspondent.

#![allow(clippy::unwrap_used)]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use shim6_wire::ipv6::{self, proto};
use shim6_wire::mip6::{
    BaStatus, BeStatus, BindingAck, BindingUpdate, Message, MobilityOption, Packet, Repr,
};
use shim6_wire::tunnel;

use crate::auth::{self, MnHaKey};
use crate::ha::{
    EntryState, HaConfig, HaEvent, HomeAgent, HomePrefix, Intercept, InterceptDrop,
    MAX_DELETE_BCE_TIMEOUT, MobileNodeEntry, Reverse, ReverseDrop,
};
use crate::mn::{BulState, HomeConfig, Inbound, MnConfig, MnEvent, MobileNode, Outbound};
use crate::packet::{self, Signalling};
use crate::{Prefix, Transmit};

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const HA1: &str = "2001:db8:1::1";
const HA2: &str = "2001:db8:2::1";
const HOA1: &str = "2001:db8:1::100";
const HOA2: &str = "2001:db8:2::200";
const COA_A: &str = "2001:db8:a::10";
const COA_B: &str = "2001:db8:b::10";
const CN: &str = "2001:db8:c::1";
const ATTACKER: &str = "2001:db8:e::66";
const NTP0: u64 = 0xe9b1_c2d3_0000_0000;

fn key1() -> MnHaKey {
    MnHaKey::new(0x100, vec![0x11; 16]).unwrap()
}
fn key2() -> MnHaKey {
    MnHaKey::new(0x200, vec![0x22; 16]).unwrap()
}

fn ha_config(ha: &str, prefix: &str, hoa: &str, key: MnHaKey) -> HaConfig {
    let mut c = HaConfig::new(a(ha));
    c.home_prefixes.push(HomePrefix {
        prefix: Prefix::new(a(prefix), 64),
        valid_until: None,
    });
    c.mobile_nodes.push(MobileNodeEntry {
        home_address: a(hoa),
        keys: vec![key],
    });
    c
}

/// HA1 serving the first home address (`key1`), and knowing `key2` too (another mobile node's SA,
/// registered for another home address: the "other node" forging case).
fn ha1(t0: Instant) -> HomeAgent {
    let mut c = ha_config(HA1, "2001:db8:1::", HOA1, key1());
    c.mobile_nodes.push(MobileNodeEntry {
        home_address: a("2001:db8:1::300"),
        keys: vec![key2()],
    });
    HomeAgent::new(c, t0, NTP0)
}

/// A Binding Update as a mobile node would send it (tunnelled signalling).
fn bu(seq: u16, lifetime: u16, hoa: &str, key: &MnHaKey, coa: &str, ts: Option<u64>) -> Vec<u8> {
    bu_with(seq, lifetime, true, hoa, key, coa, ts, vec![])
}

#[allow(clippy::too_many_arguments)]
fn bu_with(
    seq: u16,
    lifetime: u16,
    home: bool,
    hoa: &str,
    key: &MnHaKey,
    coa: &str,
    ts: Option<u64>,
    extra: Vec<MobilityOption<'static>>,
) -> Vec<u8> {
    let mut options = extra;
    options.extend(ts.map(MobilityOption::ReplayProtection));
    options.push(auth::mn_ha_option(key));
    let repr = Repr::new(Message::BindingUpdate(BindingUpdate {
        sequence: seq,
        ack: true,
        home_registration: home,
        link_local_compat: false,
        key_mgmt: false,
        lifetime,
        options,
    }));
    let (hoa, coa) = (a(hoa), a(coa));
    let mh = auth::emit_mh(&repr, &hoa, &a(HA1), Some((key, &coa, &hoa)));
    packet::bu_packet(Signalling::Tunnelled, coa, a(HA1), hoa, &mh, 64)
}

/// The BA in a transmit (tunnelled or RFC 6275), with its raw Mobility Header.
fn ba_of(t: &Transmit) -> (BindingAck<'static>, Vec<u8>) {
    let p = &t.packet;
    let inner: Vec<u8> = match tunnel::decapsulate(p) {
        Ok(d) => p[d.inner].to_vec(),
        Err(_) => p.clone(),
    };
    let m = packet::parse_mh_packet(&inner).unwrap();
    let (ps, pd) = m.pseudo_header();
    let mh = inner[m.mh].to_vec();
    let leaked: &'static [u8] = Box::leak(mh.clone().into_boxed_slice());
    let r = Repr::parse(&Packet::new_unchecked(leaked), &ps, &pd).unwrap();
    let Message::BindingAck(ba) = r.message else {
        panic!("not a BA: {:?}", r.message)
    };
    (ba, mh)
}

fn one_ba(ha: &mut HomeAgent) -> BindingAck<'static> {
    let t = ha.poll_transmit().expect("a BA");
    assert!(ha.poll_transmit().is_none());
    ba_of(&t).0
}

fn ts(t0_offset_ms: u64) -> u64 {
    NTP0 + auth::duration_to_ntp(Duration::from_millis(t0_offset_ms))
}

// ---------------------------------------------------------------- home agent rules

#[test]
fn test_ha_registration_accepted_and_signed() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    ha.handle_tunnelled(t0, &bu(10, 15, HOA1, &key1(), COA_A, Some(ts(0))));
    let t = ha.poll_transmit().unwrap();
    // The BA goes back to the care-of address inside the tunnel.
    assert_eq!(t.dst, a(COA_A));
    let (ba, mh) = ba_of(&t);
    assert_eq!(ba.status, BaStatus::Accepted);
    assert_eq!((ba.sequence, ba.lifetime), (10, 15));
    // RFC 6275 §6.2.4: Refresh Advice below the lifetime; RFC 4285 §6: timestamp echoed.
    assert!(
        ba.options
            .contains(&MobilityOption::BindingRefreshAdvice(7))
    );
    assert!(
        ba.options
            .contains(&MobilityOption::ReplayProtection(ts(0)))
    );
    let k = key1();
    assert_eq!(
        auth::verify(&mh, &a(COA_A), &a(HOA1), |_| Some(&k)),
        Ok(0x100)
    );
    let b = ha.binding(&a(HOA1)).unwrap();
    assert_eq!(
        (b.care_of_address, b.sequence, b.state),
        (a(COA_A), 10, EntryState::Active)
    );
    assert_eq!(b.expires, t0 + Duration::from_secs(60));
    assert_eq!(
        ha.poll_event(),
        Some(HaEvent::BindingCreated {
            home_address: a(HOA1),
            care_of_address: a(COA_A)
        })
    );
    assert_eq!(ha.stats().bu_accepted, 1);
}

#[test]
fn test_ha_sequence_window_edges() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    ha.handle_tunnelled(t0, &bu(10, 15, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    // Equal and lower: 135 carrying the last accepted number (RFC 6275 §9.5.1, §6.1.8).
    for seq in [10u16, 9, 0, 32779] {
        ha.handle_tunnelled(t0, &bu(seq, 15, HOA1, &key1(), COA_B, None));
        let ba = one_ba(&mut ha);
        assert_eq!(
            (ba.status, ba.sequence),
            (BaStatus::SequenceNumberOutOfWindow, 10),
            "{seq}"
        );
        assert_eq!(ha.binding(&a(HOA1)).unwrap().care_of_address, a(COA_A));
    }
    // 10 + 32767 is the far edge of "greater".
    ha.handle_tunnelled(t0, &bu(32777, 15, HOA1, &key1(), COA_B, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    assert_eq!(ha.binding(&a(HOA1)).unwrap().care_of_address, a(COA_B));
    // Wrap-around: 65535 then 0.
    ha.handle_tunnelled(t0, &bu(65535, 15, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    ha.handle_tunnelled(t0, &bu(0, 15, HOA1, &key1(), COA_B, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    assert_eq!(ha.stats().bu_sequence_out_of_window, 4);
}

#[test]
fn test_ha_lifetime_expiry_and_cap() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    // Requested 1000 units; the policy cap is 105 (420 s).
    ha.handle_tunnelled(t0, &bu(1, 1000, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).lifetime, 105);
    let end = t0 + Duration::from_secs(420);
    assert_eq!(ha.poll_timeout(), Some(end));
    ha.handle_timeout(end - Duration::from_millis(1));
    assert!(ha.binding(&a(HOA1)).is_some());
    ha.handle_timeout(end);
    assert!(ha.binding(&a(HOA1)).is_none());
    assert!(ha.poll_timeout().is_none());
    let evs: Vec<_> = std::iter::from_fn(|| ha.poll_event()).collect();
    assert_eq!(
        evs.last(),
        Some(&HaEvent::BindingExpired {
            home_address: a(HOA1)
        })
    );
    assert_eq!(ha.stats().bindings_expired, 1);
    // After expiry, no entry: any sequence number is accepted again.
    ha.handle_tunnelled(end, &bu(0, 5, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
}

#[test]
fn test_ha_prefix_expiring_status_1() {
    let t0 = crate::epoch();
    let mut c = ha_config(HA1, "2001:db8:1::", HOA1, key1());
    c.home_prefixes[0].valid_until = Some(t0 + Duration::from_secs(100));
    let mut ha = HomeAgent::new(c, t0, NTP0);
    ha.handle_tunnelled(t0, &bu(1, 60, HOA1, &key1(), COA_A, None));
    let ba = one_ba(&mut ha);
    // RFC 6275 §10.3.1: lifetime ≤ remaining prefix lifetime (100 s = 25 units), status 1.
    assert_eq!(
        (ba.status, ba.lifetime),
        (BaStatus::AcceptedPrefixDiscoveryNecessary, 25)
    );
}

#[test]
fn test_ha_not_home_subnet_132() {
    let t0 = crate::epoch();
    let mut c = ha_config(HA1, "2001:db8:1::", HOA1, key1());
    // A configured mobile node whose home address is outside every home prefix.
    c.mobile_nodes[0].home_address = a("2001:db8:9::100");
    let mut ha = HomeAgent::new(c, t0, NTP0);
    ha.handle_tunnelled(t0, &bu(1, 15, "2001:db8:9::100", &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::NotHomeSubnet);
    assert!(ha.binding(&a("2001:db8:9::100")).is_none());
    assert_eq!(ha.stats().bu_not_home_subnet, 1);
}

#[test]
fn test_ha_deregistration_133_and_hold_down() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    // No binding: 133 (RFC 6275 §10.3.2).
    ha.handle_tunnelled(t0, &bu(1, 0, HOA1, &key1(), COA_A, None));
    assert_eq!(
        one_ba(&mut ha).status,
        BaStatus::NotHomeAgentForThisMobileNode
    );
    ha.handle_tunnelled(t0, &bu(2, 15, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    ha.handle_tunnelled(t0, &bu(3, 0, HOA1, &key1(), COA_A, None));
    let ba = one_ba(&mut ha);
    assert_eq!((ba.status, ba.lifetime), (BaStatus::Accepted, 0));
    let b = *ha.binding(&a(HOA1)).unwrap();
    assert_eq!(b.state, EntryState::Deleted);
    assert_eq!(b.expires, t0 + MAX_DELETE_BCE_TIMEOUT);
    // Traffic is no longer intercepted.
    let mut buf = udp_buf(a(CN), a(HOA1), 64, 40);
    let n = buf.len();
    assert_eq!(
        ha.handle_home_link_packet(t0, &mut buf, 40..n),
        Intercept::NotRegistered
    );
    // A delayed BU from the old care-of address gets 135, not a new binding.
    ha.handle_tunnelled(t0, &bu(2, 15, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::SequenceNumberOutOfWindow);
    assert_eq!(ha.binding(&a(HOA1)).unwrap().state, EntryState::Deleted);
    ha.handle_timeout(t0 + MAX_DELETE_BCE_TIMEOUT);
    assert!(ha.binding(&a(HOA1)).is_none());
    assert_eq!(
        ha.stats().bindings_expired,
        0,
        "a hold-down ending is no expiry"
    );
}

#[test]
fn test_ha_registration_type_131_139_and_nonce() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    ha.handle_tunnelled(
        t0,
        &bu_with(1, 15, false, HOA1, &key1(), COA_A, None, vec![]),
    );
    assert_eq!(
        one_ba(&mut ha).status,
        BaStatus::HomeRegistrationNotSupported
    );
    ha.handle_tunnelled(t0, &bu(2, 15, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    ha.handle_tunnelled(
        t0,
        &bu_with(3, 15, false, HOA1, &key1(), COA_B, None, vec![]),
    );
    assert_eq!(
        one_ba(&mut ha).status,
        BaStatus::RegistrationTypeChangeDisallowed
    );
    // Nonce Indices with H = 1: silently dropped (RFC 6275 §9.5.1).
    let nonce = vec![MobilityOption::NonceIndices {
        home: 1,
        care_of: 2,
    }];
    ha.handle_tunnelled(t0, &bu_with(4, 15, true, HOA1, &key1(), COA_B, None, nonce));
    assert!(ha.poll_transmit().is_none());
    assert_eq!(ha.binding(&a(HOA1)).unwrap().care_of_address, a(COA_A));
    assert_eq!(ha.stats().bu_nonce_with_home, 1);
}

#[test]
fn test_ha_auth_failures_rejected_and_counted() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    ha.handle_tunnelled(t0, &bu(1, 15, HOA1, &key1(), COA_A, Some(ts(0))));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    let before = *ha.binding(&a(HOA1)).unwrap();
    // Wrong key, right SPI: BA 146 (RFC 4285 §5.1.1, §8).
    let wrong = MnHaKey::new(0x100, vec![0x99; 16]).unwrap();
    ha.handle_tunnelled(t0, &bu(2, 15, HOA1, &wrong, COA_B, Some(ts(10))));
    let t = ha.poll_transmit().unwrap();
    let (ba, mh) = ba_of(&t);
    assert_eq!(ba.status, BaStatus::AuthFail);
    // Signed with the real key: the forger cannot even verify it.
    assert!(auth::verify(&mh, &a(COA_B), &a(HOA1), |_| Some(&wrong)).is_err());
    // Another mobile node's SA (valid for its own home address) claiming HoA1: unknown
    // SPI for this home address, discarded.
    ha.handle_tunnelled(t0, &bu(3, 15, HOA1, &key2(), COA_B, Some(ts(20))));
    assert!(ha.poll_transmit().is_none());
    // No authentication option at all: silently discarded (RFC 4285 §5).
    let repr = Repr::new(Message::BindingUpdate(BindingUpdate {
        sequence: 4,
        ack: true,
        home_registration: true,
        link_local_compat: false,
        key_mgmt: false,
        lifetime: 15,
        options: vec![],
    }));
    let mh = auth::emit_mh(&repr, &a(HOA1), &a(HA1), None);
    let p = packet::bu_packet(Signalling::Tunnelled, a(COA_B), a(HA1), a(HOA1), &mh, 64);
    ha.handle_tunnelled(t0, &p);
    assert!(ha.poll_transmit().is_none());
    // A home address without any SA: discarded.
    ha.handle_tunnelled(t0, &bu(5, 15, "2001:db8:1::999", &key1(), COA_B, None));
    assert!(ha.poll_transmit().is_none());
    let s = ha.stats();
    assert_eq!(
        (
            s.bu_auth_failed,
            s.bu_unknown_spi,
            s.bu_auth_missing,
            s.bu_no_security_association
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(*ha.binding(&a(HOA1)).unwrap(), before);
}

#[test]
fn test_ha_replay_144_and_required_145() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    let first = bu(1, 15, HOA1, &key1(), COA_A, Some(ts(0)));
    ha.handle_tunnelled(t0, &first);
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    // The same authentic BU again (replayed): timestamp not above the last one -> 144.
    let later = t0 + Duration::from_secs(2);
    ha.handle_tunnelled(later, &first);
    let ba = one_ba(&mut ha);
    assert_eq!(ba.status, BaStatus::IdMismatch);
    // RFC 4285 §6: low 32 bits copied, high 32 from the home agent's clock.
    let echoed = ba.options.iter().find_map(|o| match o {
        MobilityOption::ReplayProtection(t) => Some(*t),
        _ => None,
    });
    assert_eq!(
        echoed,
        Some((ts(2000) & !0xffff_ffff) | (ts(0) & 0xffff_ffff))
    );
    // A higher sequence number with an old timestamp is still a replay.
    ha.handle_tunnelled(later, &bu(2, 15, HOA1, &key1(), COA_B, Some(ts(0))));
    assert_eq!(one_ba(&mut ha).status, BaStatus::IdMismatch);
    // A fresh timestamp more than 7 s away from the clock: 144.
    ha.handle_tunnelled(later, &bu(3, 15, HOA1, &key1(), COA_B, Some(ts(9500))));
    assert_eq!(one_ba(&mut ha).status, BaStatus::IdMismatch);
    // Within 7 s: accepted.
    ha.handle_tunnelled(later, &bu(4, 15, HOA1, &key1(), COA_B, Some(ts(8500))));
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    assert_eq!(ha.stats().bu_replayed, 3);
    // Required and absent: 145.
    let mut c = ha_config(HA1, "2001:db8:1::", HOA1, key1());
    c.require_timestamp = true;
    let mut ha = HomeAgent::new(c, t0, NTP0);
    ha.handle_tunnelled(t0, &bu(1, 15, HOA1, &key1(), COA_A, None));
    assert_eq!(one_ba(&mut ha).status, BaStatus::MesgIdRequired);
    assert!(ha.binding(&a(HOA1)).is_none());
}

#[test]
fn test_ha_replay_after_binding_gone() {
    // RFC 4285 App. A: the timestamps outlive the entry, so a recorded BU cannot
    // re-create a binding after expiry.
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    let first = bu(1, 2, HOA1, &key1(), COA_A, Some(ts(0)));
    ha.handle_tunnelled(t0, &first);
    assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    ha.handle_timeout(t0 + Duration::from_secs(8));
    assert!(ha.binding(&a(HOA1)).is_none());
    ha.handle_tunnelled(t0 + Duration::from_secs(8), &first);
    assert_eq!(one_ba(&mut ha).status, BaStatus::IdMismatch);
    assert!(ha.binding(&a(HOA1)).is_none());
}

#[test]
fn test_ha_binding_error_rate_limited() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    // MH Type 1 (HoTI), not handled: Binding Error status 2 (RFC 6275 §9.2).
    let mut mh = [0u8; 16];
    mh[0] = 59;
    mh[1] = 1;
    mh[2] = 1;
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&a(ATTACKER), &a(HA1));
    let p = packet::ipv6_packet(a(ATTACKER), a(HA1), proto::MOBILITY, 64, &[&mh]);
    ha.handle_mh_packet(t0, &p);
    let t = ha.poll_transmit().unwrap();
    assert_eq!(t.dst, a(ATTACKER));
    let m = packet::parse_mh_packet(&t.packet).unwrap();
    let r = Repr::parse(
        &Packet::new_unchecked(&t.packet[m.mh.clone()]),
        &m.src,
        &m.dst,
    )
    .unwrap();
    assert!(
        matches!(r.message, Message::BindingError(ref e) if e.status == BeStatus::UnrecognizedMhType)
    );
    ha.handle_mh_packet(t0 + Duration::from_millis(500), &p);
    assert!(ha.poll_transmit().is_none());
    ha.handle_mh_packet(t0 + Duration::from_millis(1000), &p);
    assert!(ha.poll_transmit().is_some());
    assert_eq!(
        (
            ha.stats().mh_unknown_type,
            ha.stats().binding_error_rate_limited
        ),
        (3, 1)
    );
}

/// A UDP packet `src → dst` placed at `headroom` in its buffer.
fn udp_buf(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, headroom: usize) -> Vec<u8> {
    let p = packet::ipv6_packet(
        src,
        dst,
        proto::UDP,
        hop_limit,
        &[&[0x12, 0x34, 0x56, 0x78, 0, 12, 0, 0, b'p', b'i', b'n', b'g']],
    );
    let mut buf = vec![0u8; headroom];
    buf.extend_from_slice(&p);
    buf
}

#[test]
fn test_ha_intercept_and_reverse_tunnel_rules() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    ha.handle_tunnelled(t0, &bu(1, 15, HOA1, &key1(), COA_A, None));
    one_ba(&mut ha);
    // Forward path: encapsulated to the CoA, inner Hop Limit decremented (RFC 2473 §3.1).
    let mut buf = udp_buf(a(CN), a(HOA1), 64, 40);
    let n = buf.len();
    let Intercept::Tunnel {
        range,
        care_of_address,
    } = ha.handle_home_link_packet(t0, &mut buf, 40..n)
    else {
        panic!("not tunnelled")
    };
    assert_eq!((range.clone(), care_of_address), (0..n, a(COA_A)));
    let d = tunnel::decapsulate(&buf[range]).unwrap();
    assert_eq!((d.outer_src, d.outer_dst), (a(HA1), a(COA_A)));
    assert_eq!(
        ipv6::Packet::new_checked(&buf[d.inner])
            .unwrap()
            .hop_limit(),
        63
    );
    // Without headroom: tailroom.
    let mut buf = udp_buf(a(CN), a(HOA1), 64, 0);
    let n = buf.len();
    buf.extend_from_slice(&[0; 40]);
    assert!(matches!(
        ha.handle_home_link_packet(t0, &mut buf, 0..n),
        Intercept::Tunnel { .. }
    ));
    // Hop Limit 1: not tunnelled, ICMP Time Exceeded is the caller's.
    let mut buf = udp_buf(a(CN), a(HOA1), 1, 40);
    let n = buf.len();
    assert_eq!(
        ha.handle_home_link_packet(t0, &mut buf, 40..n),
        Intercept::Drop(InterceptDrop::HopLimitExceeded)
    );
    // Link-local: never tunnelled (RFC 6275 §10.4.2).
    let mut buf = udp_buf(a(CN), a("fe80::100"), 64, 40);
    let n = buf.len();
    assert_eq!(
        ha.handle_home_link_packet(t0, &mut buf, 40..n),
        Intercept::Drop(InterceptDrop::NotTunnelled)
    );
    // Reverse path: the outer source must be the registered CoA (RFC 6275 §10.4.5).
    let inner = udp_buf(a(HOA1), a(CN), 64, 0);
    let good = packet::tunnel_own(a(COA_A), a(HA1), 64, &inner).unwrap();
    assert_eq!(
        ha.handle_tunnelled(t0, &good),
        Reverse::Forward(40..40 + inner.len())
    );
    let spoofed = packet::tunnel_own(a(ATTACKER), a(HA1), 64, &inner).unwrap();
    assert_eq!(
        ha.handle_tunnelled(t0, &spoofed),
        Reverse::Drop(ReverseDrop::WrongCareOf)
    );
    let other = udp_buf(a("2001:db8:1::999"), a(CN), 64, 0);
    let other = packet::tunnel_own(a(COA_A), a(HA1), 64, &other).unwrap();
    assert_eq!(
        ha.handle_tunnelled(t0, &other),
        Reverse::Drop(ReverseDrop::NoBinding)
    );
    assert_eq!(
        ha.handle_tunnelled(t0, &inner),
        Reverse::Drop(ReverseDrop::Malformed)
    );
    let s = ha.stats();
    assert_eq!(
        (
            s.tunnelled_out,
            s.intercept_hop_limit,
            s.intercept_not_tunnelled,
            s.tunnelled_in
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(
        (
            s.reverse_wrong_care_of,
            s.reverse_no_binding,
            s.reverse_malformed
        ),
        (1, 1, 1)
    );
}

#[test]
fn test_ha_rfc6275_encoding() {
    // BU with a Home Address option from the CoA; BA with a type 2 routing header.
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    let mut c = MnConfig::new(vec![home1()]);
    c.signalling = Signalling::Rfc6275;
    let mut mn = MobileNode::new(c, t0, NTP0);
    mn.handle_address_added(t0, a(COA_A));
    let t = mn.poll_transmit().unwrap();
    let m = packet::parse_mh_packet(&t.packet).unwrap();
    assert_eq!((m.src, m.home_address_option), (a(COA_A), Some(a(HOA1))));
    ha.handle_mh_packet(t0, &t.packet);
    let back = ha.poll_transmit().unwrap();
    let m = packet::parse_mh_packet(&back.packet).unwrap();
    assert_eq!((m.dst, m.type2_home), (a(COA_A), Some(a(HOA1))));
    mn.handle_mh_packet(t0, &back.packet);
    assert_eq!(mn.binding_update_list()[0].state, BulState::Registered);
    assert_eq!(ha.binding(&a(HOA1)).unwrap().care_of_address, a(COA_A));
}

// ---------------------------------------------------------------- mobile node rules

fn home1() -> HomeConfig {
    HomeConfig {
        home_address: a(HOA1),
        home_agent: a(HA1),
        key: key1(),
        lifetime_units: 15,
    }
}

fn home2() -> HomeConfig {
    HomeConfig {
        home_address: a(HOA2),
        home_agent: a(HA2),
        key: key2(),
        lifetime_units: 15,
    }
}

/// Sequence number and lifetime of a BU transmit.
fn bu_of(t: &Transmit) -> (u16, u16) {
    let d = tunnel::decapsulate(&t.packet).unwrap();
    let inner = &t.packet[d.inner];
    let m = packet::parse_mh_packet(inner).unwrap();
    let p = Packet::new_checked(&inner[m.mh]).unwrap();
    (p.bu_sequence(), p.bu_lifetime())
}

#[test]
fn test_mn_retransmission_schedule() {
    let t0 = crate::epoch();
    let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, NTP0);
    mn.handle_address_added(t0, a(COA_A));
    assert_eq!(
        mn.poll_event(),
        Some(MnEvent::CareOfAddressesChanged(vec![a(COA_A)]))
    );
    let mut sent = vec![(Duration::ZERO, bu_of(&mn.poll_transmit().unwrap()).0)];
    let mut unreachable_at = None;
    // Jump from deadline to deadline with no answer.
    while let Some(t) = mn.poll_timeout() {
        if t > t0 + Duration::from_secs(200) {
            break;
        }
        mn.handle_timeout(t);
        while let Some(x) = mn.poll_transmit() {
            sent.push((t - t0, bu_of(&x).0));
        }
        while let Some(e) = mn.poll_event() {
            if matches!(e, MnEvent::HomeAgentUnreachable { .. }) {
                unreachable_at = Some(t - t0);
            }
        }
    }
    let times: Vec<u64> = sent.iter().map(|(d, _)| d.as_millis() as u64).collect();
    // First registration: 1.5 s, doubling, capped at 32 s (RFC 6275 §11.8, §12, §13).
    assert_eq!(
        times,
        [
            0, 1500, 4500, 10500, 22500, 46500, 78500, 110500, 142500, 174500
        ]
    );
    // Every retransmission carries a larger sequence number.
    assert!(sent.windows(2).all(|w| w[1].1 == w[0].1.wrapping_add(1)));
    // Unreachable after 3 unanswered transmissions.
    assert_eq!(unreachable_at, Some(Duration::from_millis(10500)));
    assert_eq!(mn.stats().bu_retransmitted, 9);
}

/// A mobile node and HA1 wired back to back: returns after the registration.
fn registered_pair(t0: Instant) -> (MobileNode, HomeAgent) {
    let mut ha = ha1(t0);
    let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, NTP0);
    mn.handle_address_added(t0, a(COA_A));
    let bu = mn.poll_transmit().unwrap();
    ha.handle_tunnelled(t0, &bu.packet);
    let ba = ha.poll_transmit().unwrap();
    assert_eq!(mn.handle_tunnelled(t0, &ba.packet), Inbound::Consumed);
    assert_eq!(mn.binding_update_list()[0].state, BulState::Registered);
    while mn.poll_event().is_some() {}
    while ha.poll_event().is_some() {}
    (mn, ha)
}

#[test]
fn test_mn_registered_refresh_uses_initial_timeout() {
    let t0 = crate::epoch();
    let (mut mn, _ha) = registered_pair(t0);
    let e = &mn.binding_update_list()[0];
    assert_eq!(e.expires, Some(t0 + Duration::from_secs(60)));
    // Refresh Advice 7 units = 28 s (below 3/4 of 60 s).
    assert_eq!(e.refresh_at, Some(t0 + Duration::from_secs(28)));
    let t = t0 + Duration::from_secs(28);
    assert_eq!(mn.poll_timeout(), Some(t));
    mn.handle_timeout(t);
    assert_eq!(bu_of(&mn.poll_transmit().unwrap()), (2, 15));
    // Re-registration with a binding in place: INITIAL_BINDACK_TIMEOUT (1 s).
    assert_eq!(
        mn.binding_update_list()[0].retransmit_at,
        Some(t + Duration::from_secs(1))
    );
    // No answer: the registration runs out at 60 s.
    let mut evs = vec![];
    while let Some(d) = mn.poll_timeout() {
        if d > t0 + Duration::from_secs(60) {
            break;
        }
        mn.handle_timeout(d);
        while mn.poll_transmit().is_some() {}
        evs.extend(std::iter::from_fn(|| mn.poll_event()));
    }
    assert!(evs.contains(&MnEvent::BindingExpired {
        home_address: a(HOA1)
    }));
    assert!(mn.registered_home_addresses().is_empty());
}

#[test]
fn test_mn_adopts_sequence_on_135() {
    let t0 = crate::epoch();
    let (mut mn, mut ha) = registered_pair(t0);
    // The home agent has a newer number (e.g. the node restarted its counter).
    ha.handle_tunnelled(t0, &bu(400, 15, HOA1, &key1(), COA_A, Some(ts(100))));
    ha.poll_transmit().unwrap();
    let t = t0 + Duration::from_secs(1);
    mn.handle_address_added(t, a(COA_B));
    let b = mn.poll_transmit().unwrap();
    assert_eq!(bu_of(&b).0, 2);
    ha.handle_tunnelled(t, &b.packet);
    let ba = ha.poll_transmit().unwrap();
    assert_eq!(ba_of(&ba).0.status, BaStatus::SequenceNumberOutOfWindow);
    mn.handle_tunnelled(t, &ba.packet);
    // RFC 6275 §11.7.3: adopt 400, send 401 at once.
    let b = mn.poll_transmit().unwrap();
    assert_eq!(bu_of(&b).0, 401);
    ha.handle_tunnelled(t, &b.packet);
    mn.handle_tunnelled(t, &ha.poll_transmit().unwrap().packet);
    assert_eq!(mn.binding_update_list()[0].registered_coa, Some(a(COA_B)));
    assert_eq!(ha.binding(&a(HOA1)).unwrap().care_of_address, a(COA_B));
}

#[test]
fn test_mn_max_update_rate() {
    let t0 = crate::epoch();
    let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, NTP0);
    // Five movements within 100 ms: only 3 BUs in that second (RFC 6275 §11.8).
    for (i, c) in [
        "2001:db8:a::1",
        "2001:db8:a::2",
        "2001:db8:a::3",
        "2001:db8:a::4",
        "2001:db8:a::5",
    ]
    .iter()
    .enumerate()
    {
        mn.handle_address_added(t0 + Duration::from_millis(20 * i as u64), a(c));
    }
    let n = std::iter::from_fn(|| mn.poll_transmit()).count();
    assert_eq!(n, 3);
    assert_eq!(mn.stats().bu_rate_limited, 2);
    // The held-back BU goes out one second after the first.
    assert_eq!(mn.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    mn.handle_timeout(t0 + Duration::from_secs(1));
    let t = mn.poll_transmit().unwrap();
    assert_eq!(bu_of(&t).0, 4);
}

#[test]
fn test_mn_ba_checks() {
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, NTP0);
    mn.handle_address_added(t0, a(COA_A));
    let b = mn.poll_transmit().unwrap();
    ha.handle_tunnelled(t0, &b.packet);
    let ba = ha.poll_transmit().unwrap();
    // Tampered BA (lifetime changed, checksum fixed): authentication fails, dropped.
    let mut forged = ba.packet.clone();
    let d = tunnel::decapsulate(&forged).unwrap();
    let mh_at = d.inner.start + 40;
    forged[mh_at + 11] = 0xff;
    let ha_a = a(HA1);
    let hoa = a(HOA1);
    let mh_end = forged.len();
    Packet::new_unchecked(&mut forged[mh_at..mh_end]).fill_checksum(&ha_a, &hoa);
    mn.handle_tunnelled(t0, &forged);
    assert_eq!(mn.binding_update_list()[0].state, BulState::Registering);
    assert_eq!(mn.stats().ba_auth_failed, 1);
    // A BA from someone else than the home agent is not even looked at.
    let from_attacker = packet::tunnel_own(a(ATTACKER), a(COA_A), 64, &ba.packet[40..]).unwrap();
    assert_eq!(mn.handle_tunnelled(t0, &from_attacker), Inbound::Drop);
    // The genuine one is accepted.
    mn.handle_tunnelled(t0, &ba.packet);
    assert_eq!(mn.binding_update_list()[0].state, BulState::Registered);
}

#[test]
fn test_mn_auth_fail_146_stops() {
    let t0 = crate::epoch();
    // The home agent holds another key for HoA1 under the same SPI.
    let wrong = MnHaKey::new(0x100, vec![0x77; 16]).unwrap();
    let mut ha = HomeAgent::new(
        ha_config(HA1, "2001:db8:1::", HOA1, wrong.clone()),
        t0,
        NTP0,
    );
    let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, NTP0);
    mn.handle_address_added(t0, a(COA_A));
    ha.handle_tunnelled(t0, &mn.poll_transmit().unwrap().packet);
    let ba = ha.poll_transmit().unwrap();
    assert_eq!(ba_of(&ba).0.status, BaStatus::AuthFail);
    // Signed with the HA's key, so the MN cannot verify it: dropped and counted; the MN
    // keeps retransmitting (and will report the home agent unreachable).
    mn.handle_tunnelled(t0, &ba.packet);
    assert_eq!(mn.stats().ba_auth_failed, 1);
    assert_eq!(mn.binding_update_list()[0].state, BulState::Registering);
    assert_eq!(ha.stats().bu_auth_failed, 1);
}

#[test]
fn test_mn_rejected_stops_sending() {
    let t0 = crate::epoch();
    let mut c = ha_config(HA1, "2001:db8:1::", HOA1, key1());
    c.home_prefixes[0].prefix = Prefix::new(a("2001:db8:7::"), 64);
    let mut ha = HomeAgent::new(c, t0, NTP0);
    let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, NTP0);
    mn.handle_address_added(t0, a(COA_A));
    ha.handle_tunnelled(t0, &mn.poll_transmit().unwrap().packet);
    mn.handle_tunnelled(t0, &ha.poll_transmit().unwrap().packet);
    assert_eq!(
        mn.binding_update_list()[0].state,
        BulState::Rejected(BaStatus::NotHomeSubnet)
    );
    assert_eq!(mn.poll_timeout(), None);
    mn.handle_address_added(t0, a(COA_B));
    assert!(mn.poll_transmit().is_none());
}

#[test]
fn test_mn_deregistration() {
    let t0 = crate::epoch();
    let (mut mn, mut ha) = registered_pair(t0);
    assert!(mn.deregister(t0, &a(HOA1)));
    let b = mn.poll_transmit().unwrap();
    assert_eq!(bu_of(&b).1, 0);
    ha.handle_tunnelled(t0, &b.packet);
    mn.handle_tunnelled(t0, &ha.poll_transmit().unwrap().packet);
    assert_eq!(mn.binding_update_list()[0].state, BulState::Deregistered);
    assert_eq!(ha.binding(&a(HOA1)).unwrap().state, EntryState::Deleted);
    assert!(mn.poll_timeout().is_none());
    assert!(!mn.deregister(t0, &a(HOA1)));
}

#[test]
fn test_mn_timestamp_resync_144() {
    // The mobile node's clock is 20 s behind: 144, then it adopts the HA's time.
    let t0 = crate::epoch();
    let mut ha = ha1(t0);
    let behind = NTP0 - (20u64 << 32);
    let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, behind);
    mn.handle_address_added(t0, a(COA_A));
    ha.handle_tunnelled(t0, &mn.poll_transmit().unwrap().packet);
    let ba = ha.poll_transmit().unwrap();
    assert_eq!(ba_of(&ba).0.status, BaStatus::IdMismatch);
    mn.handle_tunnelled(t0, &ba.packet);
    ha.handle_tunnelled(t0, &mn.poll_transmit().unwrap().packet);
    mn.handle_tunnelled(t0, &ha.poll_transmit().unwrap().packet);
    assert_eq!(mn.binding_update_list()[0].state, BulState::Registered);
}

#[test]
fn test_mn_outbound_reverse_tunnel() {
    let t0 = crate::epoch();
    let (mut mn, _) = registered_pair(t0);
    let mut buf = udp_buf(a(HOA1), a(CN), 64, 40);
    let n = buf.len();
    let Outbound::Tunnel(r) = mn.handle_outbound(t0, &mut buf, 40..n) else {
        panic!("not tunnelled")
    };
    let d = tunnel::decapsulate(&buf[r.clone()]).unwrap();
    assert_eq!((d.outer_src, d.outer_dst), (a(COA_A), a(HA1)));
    // The node originated it: Hop Limit kept.
    assert_eq!(
        ipv6::Packet::new_checked(&buf[r][d.inner])
            .unwrap()
            .hop_limit(),
        64
    );
    let mut other = udp_buf(a(COA_A), a(CN), 64, 40);
    let n = other.len();
    assert_eq!(mn.handle_outbound(t0, &mut other, 40..n), Outbound::NotHome);
}

// ---------------------------------------------------------------- property tests

proptest! {
    /// Random authentic BUs (any sequence numbers, lifetimes, care-of addresses): the
    /// stored sequence number only ever moves forward (modulo 2^16), and a binding only
    /// changes on status 0.
    #[test]
    fn random_bus_never_move_sequence_backwards(
        bus in proptest::collection::vec((any::<u16>(), 0u16..40, any::<bool>()), 1..40)
    ) {
        let t0 = crate::epoch();
        let mut ha = ha1(t0);
        let mut stored: Option<u16> = None;
        for (seq, lifetime, b) in bus {
            let coa = if b { COA_A } else { COA_B };
            let before = ha.binding(&a(HOA1)).copied();
            ha.handle_tunnelled(t0, &bu(seq, lifetime, HOA1, &key1(), coa, None));
            let ba = one_ba(&mut ha);
            let after = ha.binding(&a(HOA1)).copied();
            if let (Some(old), Some(new)) = (stored, after.map(|x| x.sequence)) {
                prop_assert!(new == old || crate::seq_greater(new, old));
            }
            if ba.status.is_accepted() {
                prop_assert_eq!(after.unwrap().sequence, seq);
            } else {
                prop_assert_eq!(before, after);
            }
            stored = after.map(|x| x.sequence).or(stored);
        }
    }

    /// Arbitrary bytes never panic either core.
    #[test]
    fn arbitrary_packets_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let t0 = crate::epoch();
        let mut ha = ha1(t0);
        ha.handle_mh_packet(t0, &b);
        ha.handle_tunnelled(t0, &b);
        let mut buf = b.clone();
        let n = buf.len();
        ha.handle_home_link_packet(t0, &mut buf, 0..n);
        let mut mn = MobileNode::new(MnConfig::new(vec![home1()]), t0, NTP0);
        mn.handle_mh_packet(t0, &b);
        mn.handle_tunnelled(t0, &b);
        let mut buf = b;
        mn.handle_outbound(t0, &mut buf, 0..n);
    }
}

// ---------------------------------------------------------------- the simulator

/// One home agent in the simulated network.
struct HaNode {
    ha: HomeAgent,
    home_prefix: Prefix,
    up: bool,
}

/// A network of one mobile node, home agents, a correspondent (which echoes UDP) and an
/// attacker, with a fixed one-way latency. Packets are real bytes; routing looks at the
/// outer destination only. Virtual time jumps to the next delivery or deadline.
struct Net {
    t0: Instant,
    now: Instant,
    latency: Duration,
    queue: Vec<(Instant, u64, Vec<u8>)>,
    order: u64,
    mn: MobileNode,
    /// The addresses the mobile node has right now (its attachment).
    attached: Vec<Ipv6Addr>,
    has: Vec<HaNode>,
    /// Inner packets the mobile node's stack received (after decapsulation).
    mn_received: Vec<Vec<u8>>,
    /// Packets the correspondent received.
    cn_received: Vec<Vec<u8>>,
    /// Every packet put on the wire (for replay by the attacker).
    wire: Vec<Vec<u8>>,
    mn_events: Vec<(Duration, MnEvent)>,
    ha_events: Vec<(Duration, HaEvent)>,
    /// Packets that went nowhere (detached address, downed home agent).
    lost: u64,
    /// Drops the next this many packets addressed to a home agent (loss injection).
    drop_to_ha: u32,
}

impl Net {
    fn new(homes: Vec<HomeConfig>, has: Vec<HaNode>, signalling: Signalling) -> Self {
        let t0 = crate::epoch();
        let mut config = MnConfig::new(homes);
        config.signalling = signalling;
        let mn = MobileNode::new(config, t0, NTP0);
        Self {
            t0,
            now: t0,
            latency: Duration::from_millis(10),
            queue: Vec::new(),
            order: 0,
            mn,
            attached: Vec::new(),
            has,
            mn_received: Vec::new(),
            cn_received: Vec::new(),
            wire: Vec::new(),
            mn_events: Vec::new(),
            ha_events: Vec::new(),
            lost: 0,
            drop_to_ha: 0,
        }
    }

    /// The standard setup: HA1 for the first home address; with `two`, also HA2 for the second.
    fn standard(two: bool) -> Self {
        Self::standard_with(two, Signalling::Tunnelled)
    }

    fn standard_with(two: bool, signalling: Signalling) -> Self {
        let t0 = crate::epoch();
        let mut has = vec![HaNode {
            ha: HomeAgent::new(ha_config(HA1, "2001:db8:1::", HOA1, key1()), t0, NTP0),
            home_prefix: Prefix::new(a("2001:db8:1::"), 64),
            up: true,
        }];
        let mut homes = vec![home1()];
        if two {
            has.push(HaNode {
                ha: HomeAgent::new(ha_config(HA2, "2001:db8:2::", HOA2, key2()), t0, NTP0),
                home_prefix: Prefix::new(a("2001:db8:2::"), 64),
                up: true,
            });
            homes.push(home2());
        }
        Self::new(homes, has, signalling)
    }

    fn ha(&self, i: usize) -> &HomeAgent {
        &self.has[i].ha
    }

    fn send(&mut self, packet: Vec<u8>) {
        self.wire.push(packet.clone());
        self.order += 1;
        self.queue
            .push((self.now + self.latency, self.order, packet));
    }

    fn drain(&mut self) {
        let el = self.now - self.t0;
        while let Some(t) = self.mn.poll_transmit() {
            self.send(t.packet);
        }
        while let Some(e) = self.mn.poll_event() {
            self.mn_events.push((el, e));
        }
        for i in 0..self.has.len() {
            while let Some(t) = self.has[i].ha.poll_transmit() {
                self.send(t.packet);
            }
            while let Some(e) = self.has[i].ha.poll_event() {
                self.ha_events.push((el, e));
            }
        }
    }

    /// The mobile node attaches to a network: `addr` appears (movement).
    fn attach(&mut self, addr: &str) {
        self.attached.push(a(addr));
        let now = self.now;
        self.mn.handle_address_added(now, a(addr));
        self.drain();
    }

    /// The mobile node leaves a network.
    fn detach(&mut self, addr: &str) {
        self.attached.retain(|x| *x != a(addr));
        let now = self.now;
        self.mn.handle_address_removed(now, a(addr));
        self.drain();
    }

    /// The mobile node's application sends a UDP datagram from `hoa` to the correspondent.
    fn mn_send_udp(&mut self, hoa: &str, payload: &[u8]) -> bool {
        let mut buf = vec![0u8; 40];
        let mut udp = vec![0x30, 0x39, 0x00, 0x07, 0, 0, 0, 0];
        udp.extend_from_slice(payload);
        buf.extend(packet::ipv6_packet(a(hoa), a(CN), proto::UDP, 64, &[&udp]));
        let n = buf.len();
        let now = self.now;
        match self.mn.handle_outbound(now, &mut buf, 40..n) {
            Outbound::Tunnel(r) => {
                self.send(buf[r].to_vec());
                true
            }
            _ => false,
        }
    }

    fn deliver(&mut self, pkt: Vec<u8>) {
        let Ok(ip) = ipv6::Packet::new_checked(&pkt[..]) else {
            self.lost += 1;
            return;
        };
        let (src, dst, nh) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
        let now = self.now;
        // A home agent's own address.
        if let Some(i) = self.has.iter().position(|h| h.ha.config().address == dst) {
            if self.drop_to_ha > 0 {
                self.drop_to_ha -= 1;
                self.lost += 1;
                return;
            }
            if !self.has[i].up {
                self.lost += 1;
                return;
            }
            if nh == proto::IPV6 {
                if let Reverse::Forward(r) = self.has[i].ha.handle_tunnelled(now, &pkt) {
                    // The home agent's kernel forwards the inner packet.
                    self.send(pkt[r].to_vec());
                }
            } else {
                self.has[i].ha.handle_mh_packet(now, &pkt);
            }
            return;
        }
        // A home link: the home agent intercepts (RFC 6275 §10.4.1).
        if let Some(i) = self.has.iter().position(|h| h.home_prefix.contains(&dst)) {
            if !self.has[i].up {
                self.lost += 1;
                return;
            }
            let mut buf = vec![0u8; 40];
            buf.extend_from_slice(&pkt);
            let n = buf.len();
            if let Intercept::Tunnel { range, .. } =
                self.has[i].ha.handle_home_link_packet(now, &mut buf, 40..n)
            {
                self.send(buf[range].to_vec());
            } else {
                self.lost += 1;
            }
            return;
        }
        if self.attached.contains(&dst) {
            if nh == proto::IPV6 {
                if let Inbound::Deliver(r) = self.mn.handle_tunnelled(now, &pkt) {
                    self.mn_received.push(pkt[r].to_vec());
                }
            } else {
                self.mn.handle_mh_packet(now, &pkt);
            }
            return;
        }
        if dst == a(CN) {
            self.cn_received.push(pkt.clone());
            if nh == proto::UDP {
                // Echo to the source (the mobile node's home address).
                let payload = ip.payload().to_vec();
                self.send(packet::ipv6_packet(dst, src, proto::UDP, 64, &[&payload]));
            }
            return;
        }
        self.lost += 1;
    }

    /// Runs until `until` (relative to the start), jumping from event to event.
    fn run_until(&mut self, until: Duration) {
        let end = self.t0 + until;
        // Bounded: a livelock (time not advancing) fails the test instead of hanging it.
        for step in 0.. {
            assert!(
                step < 100_000,
                "simulator livelock at {:?}",
                self.now - self.t0
            );
            let next_pkt = self.queue.iter().map(|(t, _, _)| *t).min();
            // A downed home agent is frozen: its timers do not run.
            let next_timer = [self.mn.poll_timeout()]
                .into_iter()
                .chain(
                    self.has
                        .iter()
                        .filter(|h| h.up)
                        .map(|h| h.ha.poll_timeout()),
                )
                .flatten()
                .min();
            let Some(next) = [next_pkt, next_timer].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            // Packets due now, in sending order.
            let mut due: Vec<_> = Vec::new();
            self.queue.retain(|(t, o, p)| {
                if *t <= now {
                    due.push((*o, p.clone()));
                    false
                } else {
                    true
                }
            });
            due.sort_by_key(|(o, _)| *o);
            for (_, p) in due {
                self.deliver(p);
                self.drain();
            }
            if self.mn.poll_timeout().is_some_and(|t| t <= now) {
                self.mn.handle_timeout(now);
            }
            for h in &mut self.has {
                if h.up && h.ha.poll_timeout().is_some_and(|t| t <= now) {
                    h.ha.handle_timeout(now);
                }
            }
            self.drain();
        }
        self.now = self.now.max(end);
    }

    fn echoes(&self, payload: &[u8]) -> usize {
        self.mn_received
            .iter()
            .filter(|p| p.ends_with(payload))
            .count()
    }
}

#[test]
fn sim_registration_tunnel_and_movement() {
    let mut net = Net::standard(false);
    net.attach(COA_A);
    net.run_until(Duration::from_secs(1));
    assert_eq!(
        net.ha(0).binding(&a(HOA1)).unwrap().care_of_address,
        a(COA_A)
    );
    assert!(matches!(
        net.mn.binding_update_list()[0].state,
        BulState::Registered
    ));

    // Traffic both ways through the tunnel: MN -> HA (reverse tunnel) -> CN, and
    // CN -> home link -> HA (intercepted) -> CoA -> MN.
    assert!(net.mn_send_udp(HOA1, b"one"));
    net.run_until(Duration::from_secs(2));
    assert_eq!(net.cn_received.len(), 1);
    let at_cn = ipv6::Packet::new_checked(&net.cn_received[0][..]).unwrap();
    assert_eq!(
        at_cn.src_addr(),
        a(HOA1),
        "the correspondent sees the home address"
    );
    assert_eq!(net.echoes(b"one"), 1);
    let s = *net.ha(0).stats();
    assert_eq!((s.tunnelled_in, s.tunnelled_out), (1, 1));

    // Movement: the node attaches to network B and leaves A.
    net.attach(COA_B);
    net.detach(COA_A);
    net.run_until(Duration::from_secs(3));
    assert_eq!(
        net.ha(0).binding(&a(HOA1)).unwrap().care_of_address,
        a(COA_B)
    );
    assert!(net.ha_events.iter().any(|(_, e)| *e
        == HaEvent::BindingUpdated {
            home_address: a(HOA1),
            old: a(COA_A),
            new: a(COA_B)
        }));
    // MipShim6 learns the new locators.
    assert!(
        net.mn_events
            .iter()
            .any(|(_, e)| *e == MnEvent::CareOfAddressesChanged(vec![a(COA_B)]))
    );
    // Traffic follows the node.
    assert!(net.mn_send_udp(HOA1, b"two"));
    net.run_until(Duration::from_secs(4));
    assert_eq!(net.echoes(b"two"), 1);
    let last = net
        .wire
        .iter()
        .rev()
        .find(|p| p.ends_with(b"two") && p[6] == proto::IPV6)
        .unwrap();
    assert_eq!(
        ipv6::Packet::new_checked(&last[..]).unwrap().dst_addr(),
        a(COA_B)
    );

    // Refreshes keep the binding alive for a long time.
    net.run_until(Duration::from_secs(600));
    assert_eq!(
        net.ha(0).binding(&a(HOA1)).unwrap().state,
        EntryState::Active
    );
    assert_eq!(net.ha(0).stats().bindings_expired, 0);
    assert!(net.mn_send_udp(HOA1, b"three"));
    net.run_until(Duration::from_secs(601));
    assert_eq!(net.echoes(b"three"), 1);
    assert_eq!(net.lost, 0);
}

#[test]
fn sim_forged_binding_updates_rejected() {
    let mut net = Net::standard(false);
    net.attach(COA_A);
    net.run_until(Duration::from_secs(1));
    let registered = *net.ha(0).binding(&a(HOA1)).unwrap();
    let captured = net.wire[0].clone(); // the mobile node's first BU, as sent

    // (1) Wrong key, from the attacker's address, claiming HoA1.
    let wrong = MnHaKey::new(0x100, vec![0x66; 16]).unwrap();
    net.send(bu(9000, 15, HOA1, &wrong, ATTACKER, Some(ts(1000))));
    // (2) The captured BU replayed, unchanged.
    net.send(captured);
    // (3) Another node's valid SA (HoA2's key) claiming HoA1.
    net.send(bu(9001, 15, HOA1, &key2(), ATTACKER, Some(ts(1000))));
    // (4) A BU for HoA1 with a good-looking key id but no option.
    let repr = Repr::new(Message::BindingUpdate(BindingUpdate {
        sequence: 9002,
        ack: true,
        home_registration: true,
        link_local_compat: false,
        key_mgmt: false,
        lifetime: 15,
        options: vec![],
    }));
    let mh = auth::emit_mh(&repr, &a(HOA1), &a(HA1), None);
    net.send(packet::bu_packet(
        Signalling::Tunnelled,
        a(ATTACKER),
        a(HA1),
        a(HOA1),
        &mh,
        64,
    ));
    net.run_until(Duration::from_secs(2));

    let s = *net.ha(0).stats();
    assert_eq!(s.bu_auth_failed, 1);
    assert_eq!(s.bu_replayed, 1);
    assert_eq!(s.bu_unknown_spi, 1);
    assert_eq!(s.bu_auth_missing, 1);
    // The binding is unchanged and traffic still reaches the real node.
    assert_eq!(*net.ha(0).binding(&a(HOA1)).unwrap(), registered);
    assert!(net.mn_send_udp(HOA1, b"still-mine"));
    net.run_until(Duration::from_secs(3));
    assert_eq!(net.echoes(b"still-mine"), 1);
    // The attacker got exactly one packet: the BA 146 for the wrong key (the others are
    // dropped silently), and no traffic of the home address.
    let to_attacker: Vec<_> = net
        .wire
        .iter()
        .filter(|p| ipv6::Packet::new_checked(&p[..]).is_ok_and(|ip| ip.dst_addr() == a(ATTACKER)))
        .collect();
    assert_eq!(to_attacker.len(), 1);
    let t = Transmit {
        dst: a(ATTACKER),
        packet: to_attacker[0].clone(),
    };
    assert_eq!(ba_of(&t).0.status, BaStatus::AuthFail);
    // The mobile node's own state is untouched by BAs meant for the attacker.
    assert_eq!(
        net.mn.binding_update_list()[0].registered_coa,
        Some(a(COA_A))
    );
}

#[test]
fn sim_home_agent_failure_detected_and_other_home_survives() {
    let mut net = Net::standard(true);
    net.attach(COA_A);
    net.run_until(Duration::from_secs(2));
    assert_eq!(net.mn.registered_home_addresses(), vec![a(HOA1), a(HOA2)]);
    // HA1 fails.
    net.has[0].up = false;
    let failed_at = net.now - net.t0;
    // The next refresh (28 s) goes unanswered; after 3 transmissions (1 + 2 + 4 s) the
    // node reports HA1 unreachable.
    net.run_until(Duration::from_secs(60));
    let (t, _) = net
        .mn_events
        .iter()
        .find(|(_, e)| {
            *e == MnEvent::HomeAgentUnreachable {
                home_address: a(HOA1),
                home_agent: a(HA1),
            }
        })
        .expect("HA1 failure detected")
        .clone();
    assert!(
        t > failed_at && t <= Duration::from_secs(28 + 7 + 1),
        "{t:?}"
    );
    // HoA2 through HA2 still works: MipShim6 rewrites the ULID to it.
    assert_eq!(net.mn.registered_home_addresses(), vec![a(HOA2)]);
    assert!(net.mn_send_udp(HOA2, b"via-ha2"));
    net.run_until(Duration::from_secs(61));
    assert_eq!(
        net.echoes(b"via-ha2"),
        1,
        "lost {} ha2 {:?} cn {}",
        net.lost,
        net.ha(1).stats(),
        net.cn_received.len()
    );
    // HA1 comes back: the ongoing retransmissions find it.
    net.has[0].up = true;
    net.run_until(Duration::from_secs(200));
    assert!(net.mn_events.iter().any(|(_, e)| *e
        == MnEvent::HomeAgentReachable {
            home_address: a(HOA1),
            home_agent: a(HA1)
        }));
    assert_eq!(net.mn.registered_home_addresses(), vec![a(HOA1), a(HOA2)]);
}

#[test]
fn sim_movement_while_home_agent_registration_in_flight() {
    // Moving again before the BA arrives: the BA for the old CoA (old sequence number)
    // is ignored, the newer BU wins, and the binding ends on the latest CoA.
    let mut net = Net::standard(false);
    net.latency = Duration::from_millis(300);
    net.attach(COA_A);
    net.run_until(Duration::from_millis(100));
    net.attach(COA_B);
    net.detach(COA_A);
    net.run_until(Duration::from_secs(5));
    assert_eq!(
        net.ha(0).binding(&a(HOA1)).unwrap().care_of_address,
        a(COA_B)
    );
    assert_eq!(
        net.mn.binding_update_list()[0].registered_coa,
        Some(a(COA_B))
    );
}

#[test]
fn sim_lost_binding_updates_retransmitted() {
    // The first two BUs are lost: the third (sent at 1.5 + 3 = 4.5 s, RFC 6275 §11.8)
    // registers, with sequence number 3.
    let mut net = Net::standard(false);
    net.drop_to_ha = 2;
    net.attach(COA_A);
    net.run_until(Duration::from_secs(4));
    assert!(net.ha(0).binding(&a(HOA1)).is_none());
    net.run_until(Duration::from_secs(5));
    let b = *net.ha(0).binding(&a(HOA1)).unwrap();
    assert_eq!((b.care_of_address, b.sequence), (a(COA_A), 3));
    let reg = net
        .mn_events
        .iter()
        .find(|(_, e)| matches!(e, MnEvent::Registered { .. }))
        .unwrap()
        .0;
    assert_eq!(reg, Duration::from_millis(4500 + 20));
    assert_eq!(net.mn.stats().bu_retransmitted, 2);
}

#[test]
fn sim_traffic_during_handover_uses_the_new_care_of_address() {
    let mut net = Net::standard(false);
    net.attach(COA_A);
    net.run_until(Duration::from_secs(1));
    // Move, and send at once, before the BA for the new address is back.
    net.attach(COA_B);
    net.detach(COA_A);
    assert!(net.mn_send_udp(HOA1, b"handover"));
    net.run_until(Duration::from_secs(2));
    assert_eq!(net.ha(0).stats().reverse_wrong_care_of, 0);
    assert_eq!(net.echoes(b"handover"), 1);
}

#[test]
fn test_ha_several_home_addresses() {
    // One home agent, three mobile nodes' home addresses, each bound to its own CoA;
    // traffic is demultiplexed per home address, and the reverse check is per binding.
    let t0 = crate::epoch();
    let mut c = ha_config(HA1, "2001:db8:1::", HOA1, key1());
    let hoas = [HOA1, "2001:db8:1::101", "2001:db8:1::102"];
    let coas = [COA_A, COA_B, "2001:db8:d::10"];
    let keys: Vec<MnHaKey> = (0..3u8)
        .map(|i| MnHaKey::new(0x100 + u32::from(i), vec![i + 1; 16]).unwrap())
        .collect();
    c.mobile_nodes = hoas
        .iter()
        .zip(&keys)
        .map(|(h, k)| MobileNodeEntry {
            home_address: a(h),
            keys: vec![k.clone()],
        })
        .collect();
    let mut ha = HomeAgent::new(c, t0, NTP0);
    for i in 0..3 {
        ha.handle_tunnelled(t0, &bu(1, 15, hoas[i], &keys[i], coas[i], None));
        assert_eq!(one_ba(&mut ha).status, BaStatus::Accepted);
    }
    // A key of one node does not register another's home address.
    ha.handle_tunnelled(t0, &bu(2, 15, hoas[0], &keys[1], coas[1], None));
    assert!(ha.poll_transmit().is_none());
    assert_eq!(ha.bindings().count(), 3);
    for i in 0..3 {
        let mut buf = udp_buf(a(CN), a(hoas[i]), 64, 40);
        let n = buf.len();
        let Intercept::Tunnel {
            care_of_address, ..
        } = ha.handle_home_link_packet(t0, &mut buf, 40..n)
        else {
            panic!("not tunnelled")
        };
        assert_eq!(care_of_address, a(coas[i]));
        // Node i's CoA may not carry node j's traffic.
        let inner = udp_buf(a(hoas[i]), a(CN), 64, 0);
        let wrong = packet::tunnel_own(a(coas[(i + 1) % 3]), a(HA1), 64, &inner).unwrap();
        assert_eq!(
            ha.handle_tunnelled(t0, &wrong),
            Reverse::Drop(ReverseDrop::WrongCareOf)
        );
    }
}

#[test]
fn test_mn_two_homes_one_movement_two_bus() {
    let t0 = crate::epoch();
    let mut mn = MobileNode::new(MnConfig::new(vec![home1(), home2()]), t0, NTP0);
    mn.handle_address_added(t0, a(COA_A));
    let sent: Vec<Transmit> = std::iter::from_fn(|| mn.poll_transmit()).collect();
    assert_eq!(
        sent.iter().map(|t| t.dst).collect::<Vec<_>>(),
        [a(HA1), a(HA2)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random movements (attach/detach among three visited networks, random pauses and
    /// latency): once things settle, the home agent's binding is the mobile node's
    /// primary care-of address, and traffic flows.
    #[test]
    fn random_movements_settle_on_the_primary_coa(
        moves in proptest::collection::vec((0usize..3, any::<bool>(), 0u64..3000), 1..12),
        latency_ms in 1u64..200,
    ) {
        let nets = [COA_A, COA_B, "2001:db8:d::10"];
        let mut net = Net::standard(false);
        net.latency = Duration::from_millis(latency_ms);
        let mut t = Duration::ZERO;
        for (n, attach, pause) in moves {
            let addr = nets[n];
            if attach && !net.attached.contains(&a(addr)) {
                net.attach(addr);
            } else if !attach && net.attached.contains(&a(addr)) {
                net.detach(addr);
            }
            t += Duration::from_millis(pause);
            net.run_until(t);
        }
        // Make sure the node is somewhere.
        if net.attached.is_empty() {
            net.attach(COA_A);
        }
        // Retransmissions may have backed off to 32 s: allow a few rounds.
        t += Duration::from_secs(100);
        net.run_until(t);
        let primary = net.mn.care_of_addresses()[0];
        prop_assert_eq!(net.ha(0).binding(&a(HOA1)).map(|b| b.care_of_address), Some(primary));
        prop_assert_eq!(net.mn.binding_update_list()[0].registered_coa, Some(primary));
        prop_assert!(net.mn_send_udp(HOA1, b"settled"));
        net.run_until(t + Duration::from_secs(1));
        prop_assert_eq!(net.echoes(b"settled"), 1);
    }
}

#[test]
fn sim_rfc6275_encoding_registration_and_movement() {
    // Home Address option on the BUs, type 2 routing header on the BAs.
    let mut net = Net::standard_with(false, Signalling::Rfc6275);
    net.attach(COA_A);
    net.run_until(Duration::from_secs(1));
    assert_eq!(
        net.ha(0).binding(&a(HOA1)).unwrap().care_of_address,
        a(COA_A)
    );
    let bu = packet::parse_mh_packet(&net.wire[0]).unwrap();
    assert_eq!(bu.home_address_option, Some(a(HOA1)));
    net.attach(COA_B);
    net.detach(COA_A);
    net.run_until(Duration::from_secs(2));
    assert_eq!(
        net.ha(0).binding(&a(HOA1)).unwrap().care_of_address,
        a(COA_B)
    );
    assert_eq!(
        net.mn.binding_update_list()[0].registered_coa,
        Some(a(COA_B))
    );
    assert!(net.mn_send_udp(HOA1, b"rfc6275"));
    net.run_until(Duration::from_secs(3));
    assert_eq!(net.echoes(b"rfc6275"), 1);
}

/// Found by `random_movements_settle_on_the_primary_coa`: every BA is lost because the
/// node leaves each network at once, its retransmission then finds no care-of address
/// and parks, and it comes back to the *same* network. The exchange must resume (it used
/// to wait for an address event that changes the primary care-of address, forever, and
/// the home agent's binding expired).
#[test]
fn sim_parked_registration_resumes_on_the_same_network() {
    let mut net = Net::standard(false);
    net.latency = Duration::from_millis(1);
    net.attach("2001:db8:d::10");
    net.attach(COA_B);
    net.detach(COA_B);
    net.detach("2001:db8:d::10");
    net.run_until(Duration::from_millis(1500));
    assert_eq!(
        net.mn.binding_update_list()[0].retransmit_at,
        None,
        "parked"
    );
    net.attach("2001:db8:d::10");
    net.run_until(Duration::from_secs(100));
    let coa = a("2001:db8:d::10");
    assert_eq!(net.mn.binding_update_list()[0].registered_coa, Some(coa));
    assert_eq!(
        net.ha(0).binding(&a(HOA1)).map(|b| b.care_of_address),
        Some(coa)
    );
    assert!(net.mn_send_udp(HOA1, b"resumed"));
    net.run_until(Duration::from_secs(101));
    assert_eq!(net.echoes(b"resumed"), 1);
}
