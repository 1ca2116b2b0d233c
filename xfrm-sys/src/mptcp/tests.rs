//! Byte-level tests of the `mptcp_pm` messages against captures from kernel 6.18.

use super::*;
use crate::genl::{Family, Message};

/// The `CTRL_CMD_NEWFAMILY` answer for `mptcp_pm` captured in a fresh netns on 6.18.
const NEWFAMILY: &[u8] = include_bytes!("../testdata/mptcp/newfamily_mptcp_pm.bin");

fn genl_of(bytes: &[u8]) -> Message {
    let ty = u16::from_ne_bytes([bytes[4], bytes[5]]);
    Message::parse(ty, &bytes[16..]).unwrap()
}

#[test]
fn captured_family_resolves_with_groups() {
    let fam = Family::from_message(&genl_of(NEWFAMILY)).unwrap();
    assert_eq!(fam.name, FAMILY_NAME);
    assert_eq!(fam.id, 28);
    assert_eq!(fam.version, 1);
    assert_eq!(fam.hdrsize, 0);
    assert_eq!(fam.group(EVENTS_GROUP), Some(9));
    assert_eq!(fam.group("mptcp_pm_cmds"), Some(8));
}

use std::{collections::VecDeque, net::SocketAddr, num::NonZeroU8};

use super::{
    diag::{DiagConnection, Snapshot, parse_connection_dump, parse_subflow_dump},
    events::{EventStats, OutOfSync, Tracker},
    wire,
};

/// `mptcp_pm` family id and version when the requests below were captured.
const FAM: u16 = 28;
const VER: u8 = 1;
/// `NLM_F_REQUEST | NLM_F_ACK`, `NLM_F_REQUEST | NLM_F_DUMP`.
const REQ_ACK: u16 = 5;
const REQ_DUMP: u16 = 0x301;
/// The client token of the run that produced the requests.
const REQ_TOKEN: Token = Token(0x52ab_dcaa);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn nz(i: u8) -> NonZeroU8 {
    NonZeroU8::new(i).unwrap()
}

/// The requests the kernel answered with ACK 0 in `tests/mptcp.rs` on 6.18, as
/// `strace -f -e trace=sendto -e write=...` dumped them. The port inside the nests is host
/// order: `3382` is 33331, `901f` is 8080.
mod accepted {
    pub(super) const SUBFLOW_CREATE: [u8; 116] = hex_literal::hex!(
        "74000000 1c00 0500 03000000 00000000 0a010000"
        "0800 0400 aadcab52"
        "3000 0180 0600 0100 0a000000 0500 0200 01000000"
        "1400 0400 20010db8000200000000000000000001 0800 0600 02000000"
        "2800 0680 0600 0100 0a000000"
        "1400 0400 20010db8000200000000000000000002 0600 0500 901f0000"
    );
    pub(super) const SUBFLOW_DESTROY: [u8; 108] = hex_literal::hex!(
        "6c000000 1c00 0500 0a000000 00000000 0b010000"
        "0800 0400 aadcab52"
        "2800 0180 0600 0100 0a000000"
        "1400 0400 20010db8000200000000000000000001 0600 0500 33820000"
        "2800 0680 0600 0100 0a000000"
        "1400 0400 20010db8000200000000000000000002 0600 0500 901f0000"
    );
    pub(super) const SET_FLAGS_BACKUP: [u8; 116] = hex_literal::hex!(
        "74000000 1c00 0500 09000000 00000000 07010000"
        "0800 0400 aadcab52"
        "3000 0180 0600 0100 0a000000"
        "1400 0400 20010db8000200000000000000000001 0600 0500 33820000"
        "0800 0600 04000000"
        "2800 0680 0600 0100 0a000000"
        "1400 0400 20010db8000200000000000000000002 0600 0500 901f0000"
    );
    pub(super) const ANNOUNCE: [u8; 76] = hex_literal::hex!(
        "4c000000 1c00 0500 10000000 00000000 08010000"
        "0800 0400 aadcab52"
        "3000 0180 0600 0100 0a000000 0500 0200 01000000"
        "1400 0400 20010db8000200000000000000000001 0800 0600 01000000"
    );
    pub(super) const REMOVE: [u8; 36] = hex_literal::hex!(
        "24000000 1c00 0500 0d000000 00000000 09010000"
        "0800 0400 aadcab52 0500 0500 01000000"
    );
    pub(super) const GET_ADDR_DUMP: [u8; 28] = hex_literal::hex!(
        "1c000000 1c00 0103 04000000 00000000 03010000"
        "0800 0400 aadcab52"
    );
}

#[test]
fn commands_are_byte_identical_to_what_the_kernel_accepted() {
    let local = LocalAddr::subflow(nz(1), "2001:db8:2::1".parse().unwrap());
    let remote = sa("[2001:db8:2::2]:8080");
    let sub_local = sa("[2001:db8:2::1]:33331");
    assert_eq!(
        wire::subflow_create(FAM, VER, REQ_TOKEN, &local, remote).to_bytes(REQ_ACK, 3),
        accepted::SUBFLOW_CREATE
    );
    assert_eq!(
        wire::subflow_destroy(FAM, VER, REQ_TOKEN, sub_local, remote).to_bytes(REQ_ACK, 10),
        accepted::SUBFLOW_DESTROY
    );
    assert_eq!(
        wire::set_flags(FAM, VER, REQ_TOKEN, sub_local, remote, AddrFlags::BACKUP)
            .to_bytes(REQ_ACK, 9),
        accepted::SET_FLAGS_BACKUP
    );
    // ANNOUNCE adds SIGNAL to whatever flags it is given and keeps nothing else.
    let mut signal = local;
    signal.flags = AddrFlags::SIGNAL;
    assert_eq!(
        wire::announce(FAM, VER, REQ_TOKEN, &signal).to_bytes(REQ_ACK, 16),
        accepted::ANNOUNCE
    );
    assert_eq!(
        wire::remove(FAM, VER, REQ_TOKEN, nz(1)).to_bytes(REQ_ACK, 13),
        accepted::REMOVE
    );
    assert_eq!(
        wire::get_addr(FAM, VER, REQ_TOKEN).to_bytes(REQ_DUMP, 4),
        accepted::GET_ADDR_DUMP
    );
}

#[test]
fn backup_and_interface_options_land_in_the_nest() {
    let mut local = LocalAddr::subflow(nz(9), "2001:db8:2::1".parse().unwrap()).backup(true);
    local.if_idx = Some(3);
    local.port = 4000;
    let m = wire::subflow_create(FAM, VER, REQ_TOKEN, &local, sa("[2001:db8:2::2]:80"));
    let b = m.to_bytes(REQ_ACK, 1);
    // ADDR nest: family, id 9, addr6, port 4000 host order, flags SUBFLOW|BACKUP, if_idx 3.
    let nest = &b[28..];
    assert_eq!(&nest[..4], &[0x40, 0, 0x01, 0x80]);
    assert_eq!(&nest[12..16], &[5, 0, 2, 0]);
    assert_eq!(nest[16], 9);
    assert_eq!(&nest[40..48], &[6, 0, 5, 0, 0xa0, 0x0f, 0, 0]);
    assert_eq!(&nest[48..56], &[8, 0, 6, 0, 6, 0, 0, 0]);
    assert_eq!(&nest[56..64], &[8, 0, 7, 0, 3, 0, 0, 0]);
    assert!(
        !LocalAddr::subflow(nz(1), local.addr)
            .backup(true)
            .backup(false)
            .flags
            .contains(AddrFlags::BACKUP)
    );
    // IPv4 uses ADDR4 and AF_INET.
    let v4 = LocalAddr::subflow(nz(1), "192.0.2.1".parse().unwrap());
    let b = wire::announce(FAM, VER, REQ_TOKEN, &v4).to_bytes(REQ_ACK, 1);
    assert_eq!(&b[32..40], &[6, 0, 1, 0, 2, 0, 0, 0]);
    assert_eq!(&b[48..56], &[8, 0, 3, 0, 192, 0, 2, 1]);
}

/// Event datagrams captured by `tests/mptcp.rs` (`MPTCP_CAPTURE_DIR`) on 6.18: client
/// `[2001:db8:1::1]:44251` (token 2aef34a8, userspace PM) to server `[2001:db8:1::2]:8080`
/// (token 7e76aa35, in-kernel PM), a subflow `[2001:db8:2::1]:44131` → `[2001:db8:2::2]:8080`
/// with ID 1, set backup from the client, an ANNOUNCE/REMOVE of `2001:db8:2::1` ID 1.
mod ev {
    pub(super) const CREATED_CLI: &[u8] = include_bytes!("../testdata/mptcp/ev_created_cli.bin");
    pub(super) const ESTABLISHED_CLI: &[u8] =
        include_bytes!("../testdata/mptcp/ev_established_cli.bin");
    pub(super) const ESTABLISHED_SRV: &[u8] =
        include_bytes!("../testdata/mptcp/ev_established_srv.bin");
    pub(super) const CREATED_SRV: &[u8] = include_bytes!("../testdata/mptcp/ev_created_srv.bin");
    pub(super) const CLOSED_CLI: &[u8] = include_bytes!("../testdata/mptcp/ev_closed_cli.bin");
    pub(super) const CLOSED_SRV: &[u8] = include_bytes!("../testdata/mptcp/ev_closed_srv.bin");
    pub(super) const ANNOUNCED_SRV: &[u8] =
        include_bytes!("../testdata/mptcp/ev_announced_srv.bin");
    pub(super) const REMOVED_SRV: &[u8] = include_bytes!("../testdata/mptcp/ev_removed_srv.bin");
    pub(super) const SUB_ESTABLISHED_CLI: &[u8] =
        include_bytes!("../testdata/mptcp/ev_sub_established_cli.bin");
    pub(super) const SUB_ESTABLISHED_SRV: &[u8] =
        include_bytes!("../testdata/mptcp/ev_sub_established_srv.bin");
    pub(super) const SUB_CLOSED_CLI: &[u8] =
        include_bytes!("../testdata/mptcp/ev_sub_closed_cli.bin");
    pub(super) const SUB_CLOSED_SRV: &[u8] =
        include_bytes!("../testdata/mptcp/ev_sub_closed_srv.bin");
    pub(super) const SUB_PRIORITY_SRV: &[u8] =
        include_bytes!("../testdata/mptcp/ev_sub_priority_srv.bin");
    pub(super) const LISTENER_CREATED_SRV: &[u8] =
        include_bytes!("../testdata/mptcp/ev_listener_created_srv.bin");
    pub(super) const LISTENER_CLOSED_SRV: &[u8] =
        include_bytes!("../testdata/mptcp/ev_listener_closed_srv.bin");

    /// A join refused with a plain RST (nothing listened on port 9): no `SUB_ESTABLISHED`
    /// before it, `error` 111, `rem_id` 0 (token e9efd04a, another run).
    pub(super) const SUB_CLOSED_REFUSED_CLI: &[u8] =
        include_bytes!("../testdata/mptcp/ev_sub_closed_refused_cli.bin");

    pub(super) const ALL: [&[u8]; 16] = [
        SUB_CLOSED_REFUSED_CLI,
        CREATED_CLI,
        ESTABLISHED_CLI,
        ESTABLISHED_SRV,
        CREATED_SRV,
        CLOSED_CLI,
        CLOSED_SRV,
        ANNOUNCED_SRV,
        REMOVED_SRV,
        SUB_ESTABLISHED_CLI,
        SUB_ESTABLISHED_SRV,
        SUB_CLOSED_CLI,
        SUB_CLOSED_SRV,
        SUB_PRIORITY_SRV,
        LISTENER_CREATED_SRV,
        LISTENER_CLOSED_SRV,
    ];
}

const CLI: Token = Token(0x2aef_34a8);
const SRV: Token = Token(0x7e76_aa35);

fn event(bytes: &[u8]) -> Event {
    Event::parse(&genl_of(bytes)).unwrap()
}

fn feed(t: &mut Tracker, bytes: &[u8]) -> (Vec<Event>, Result<(), OutOfSync>, EventStats) {
    let mut out = VecDeque::new();
    let mut stats = EventStats::default();
    let r = t.datagram(FAM, bytes, &mut out, &mut stats);
    (out.into(), r, stats)
}

fn conn(token: Token, local: &str, remote: &str, server_side: bool, flags: u16) -> Connection {
    Connection {
        token,
        local: sa(local),
        remote: sa(remote),
        loc_id: 0,
        rem_id: 0,
        server_side,
        flags,
        other: vec![],
    }
}

fn sub(token: Token, local: &str, remote: &str, backup: bool) -> Subflow {
    Subflow {
        token,
        local: sa(local),
        remote: sa(remote),
        loc_id: 1,
        rem_id: 1,
        backup,
        if_idx: None,
        error: None,
        reset_reason: None,
        reset_flags: None,
        other: vec![],
    }
}

#[test]
fn captured_connection_events_decode() {
    let c = conn(
        CLI,
        "[2001:db8:1::1]:44251",
        "[2001:db8:1::2]:8080",
        false,
        0,
    );
    assert_eq!(event(ev::CREATED_CLI), Event::Created(c.clone()));
    assert_eq!(event(ev::ESTABLISHED_CLI), Event::Established(c));
    // Server side: the old SERVER_SIDE attribute and FLAGS bit 1.
    let s = conn(
        SRV,
        "[2001:db8:1::2]:8080",
        "[2001:db8:1::1]:44251",
        true,
        2,
    );
    assert_eq!(event(ev::CREATED_SRV), Event::Created(s.clone()));
    assert_eq!(event(ev::ESTABLISHED_SRV), Event::Established(s));
    assert_eq!(
        event(ev::CLOSED_CLI),
        Event::Closed {
            token: CLI,
            other: vec![]
        }
    );
    assert_eq!(event(ev::CLOSED_SRV).token(), Some(SRV));
}

#[test]
fn captured_subflow_events_decode_with_network_order_ports() {
    let c = sub(CLI, "[2001:db8:2::1]:44131", "[2001:db8:2::2]:8080", false);
    assert_eq!(
        event(ev::SUB_ESTABLISHED_CLI),
        Event::SubEstablished(c.clone())
    );
    assert_eq!(event(ev::SUB_CLOSED_CLI), Event::SubClosed(c));
    let s = sub(SRV, "[2001:db8:2::2]:8080", "[2001:db8:2::1]:44131", false);
    assert_eq!(
        event(ev::SUB_ESTABLISHED_SRV),
        Event::SubEstablished(s.clone())
    );
    assert_eq!(event(ev::SUB_CLOSED_SRV), Event::SubClosed(s));
    // SUB_PRIORITY at the peer of SET_FLAGS backup (an earlier subflow, port 59319).
    assert_eq!(
        event(ev::SUB_PRIORITY_SRV),
        Event::SubPriority(sub(
            SRV,
            "[2001:db8:2::2]:8080",
            "[2001:db8:2::1]:59319",
            true
        ))
    );
}

#[test]
fn captured_refused_join_carries_its_errno() {
    let Event::SubClosed(s) = event(ev::SUB_CLOSED_REFUSED_CLI) else {
        panic!()
    };
    assert_eq!(s.token, Token(0xe9ef_d04a));
    assert_eq!(s.remote, sa("[2001:db8:2::2]:9"));
    assert_eq!((s.loc_id, s.rem_id), (1, 0));
    assert_eq!(s.error, Some(111));
    assert_eq!((s.reset_reason, s.reset_flags), (None, None));
}

#[test]
fn captured_address_and_listener_events_decode() {
    // ANNOUNCED has no FAMILY; the port is the client's connection port.
    assert_eq!(
        event(ev::ANNOUNCED_SRV),
        Event::Announced(Announcement {
            token: SRV,
            rem_id: 1,
            addr: sa("[2001:db8:2::1]:44251"),
            other: vec![],
        })
    );
    assert!(
        !genl_of(ev::ANNOUNCED_SRV)
            .attrs
            .windows(4)
            .any(|w| w == [6, 0, 2, 0])
    );
    assert_eq!(
        event(ev::REMOVED_SRV),
        Event::Removed {
            token: SRV,
            rem_id: 1,
            other: vec![]
        }
    );
    let l = Listener {
        local: sa("[::]:8080"),
        other: vec![],
    };
    assert_eq!(
        event(ev::LISTENER_CREATED_SRV),
        Event::ListenerCreated(l.clone())
    );
    assert_eq!(event(ev::LISTENER_CLOSED_SRV), Event::ListenerClosed(l));
}

#[test]
fn unknown_attributes_and_event_types_are_kept() {
    let mut m = genl_of(ev::CLOSED_CLI);
    let mut w = crate::genl::AttrWriter::new();
    w.u32(14, 30); // MPTCP_ATTR_TIMEOUT, not interpreted
    w.bytes(99, &[1, 2, 3]);
    m.attrs.extend(w.finish());
    let Event::Closed { token, other } = Event::parse(&m).unwrap() else {
        panic!()
    };
    assert_eq!(token, CLI);
    assert_eq!(
        other,
        [
            RawAttr {
                kind: 14,
                value: 30u32.to_ne_bytes().to_vec()
            },
            RawAttr {
                kind: 99,
                value: vec![1, 2, 3]
            }
        ]
    );
    m.cmd = 200;
    let Event::Other { kind: 200, attrs } = Event::parse(&m).unwrap() else {
        panic!()
    };
    assert_eq!(attrs.len(), 3);
    // A family that contradicts the address is refused, not guessed.
    let mut bad = genl_of(ev::CREATED_CLI);
    bad.attrs[16] = 2; // FAMILY AF_INET with IPv6 addresses
    assert!(Event::parse(&bad).is_err());
    // A subflow event without addresses is a decode error.
    let mut w = crate::genl::AttrWriter::new();
    w.u32(1, 5);
    let m = Message {
        family: FAM,
        cmd: 10,
        version: 1,
        attrs: w.finish(),
    };
    assert!(Event::parse(&m).is_err());
}

#[test]
fn tracker_follows_captured_events() {
    let mut t = Tracker::default();
    for d in [
        ev::CREATED_CLI,
        ev::ESTABLISHED_CLI,
        ev::SUB_ESTABLISHED_CLI,
    ] {
        let (evs, r, stats) = feed(&mut t, d);
        assert_eq!((evs.len(), r, stats.messages), (1, Ok(()), 1));
    }
    let state = t.get(CLI).unwrap();
    assert!(state.established);
    assert_eq!(state.subflows.len(), 1);
    assert_eq!(feed(&mut t, ev::SUB_CLOSED_CLI).1, Ok(()));
    assert!(t.get(CLI).unwrap().subflows.is_empty());
    assert_eq!(feed(&mut t, ev::CLOSED_CLI).1, Ok(()));
    assert!(t.get(CLI).is_none());
    // Two events in one datagram, and another family's message in between, skipped.
    let mut other_family = ev::CLOSED_CLI.to_vec();
    other_family[4] = 0x1d;
    let both = [ev::ESTABLISHED_CLI, &other_family, ev::CLOSED_CLI].concat();
    let (evs, r, stats) = feed(&mut t, &both);
    assert_eq!(r, Ok(()));
    assert_eq!(stats.messages, 3);
    assert!(matches!(
        &evs[..],
        [Event::Established(_), Event::Closed { .. }]
    ));
}

#[test]
fn damage_and_overrun_ask_for_a_resync() {
    let mut t = Tracker::default();
    let (evs, r, stats) = feed(&mut t, &ev::ESTABLISHED_CLI[..40]);
    assert_eq!((evs, r, stats.decode_errors), (vec![], Err(OutOfSync), 1));
    // NLMSG_OVERRUN.
    let overrun = [16u32.to_le_bytes(), [4, 0, 0, 0], [0; 4], [0; 4]].concat();
    let (_, r, stats) = feed(&mut t, &overrun);
    assert_eq!((r, stats.overruns), (Err(OutOfSync), 1));
    // A well-framed but undecodable event; the one after it still counts.
    let mut bad = ev::SUB_ESTABLISHED_CLI.to_vec();
    bad[20..22].copy_from_slice(&7u16.to_ne_bytes()); // a 3-byte token
    let (evs, r, _) = feed(&mut t, &[&bad[..], ev::ESTABLISHED_CLI].concat());
    assert_eq!(r, Err(OutOfSync));
    assert!(matches!(&evs[..], [Event::Established(_)]), "{evs:?}");
}

/// Every truncation and every one-byte corruption of every captured event (and of the
/// family answer) is handled without a panic.
#[test]
fn corrupted_captures_never_panic() {
    for capture in ev::ALL.iter().chain([&NEWFAMILY]) {
        let mut cases: Vec<Vec<u8>> = (0..=capture.len()).map(|c| capture[..c].to_vec()).collect();
        for pos in 0..capture.len() {
            for v in [0x00, 0x01, 0x04, 0x7f, 0x80, 0xff] {
                let mut b = capture.to_vec();
                b[pos] = v;
                cases.push(b);
            }
        }
        for b in cases {
            let mut t = Tracker::default();
            let _ = feed(&mut t, &b);
            if b.len() >= 16 {
                let _ = Message::parse(FAM, &b[16..])
                    .map(|m| (Event::parse(&m), Family::from_message(&m)));
            }
        }
    }
}

/// The dumps of `diag.rs`'s tests: connection 93e131e8 with its initial subflow, and a
/// second TCP dump after a `SUBFLOW_CREATE` from `2001:db8:2::1` (ID 1).
const MPTCP_DUMP: &[u8] = include_bytes!("../testdata/mptcp/diag_mptcp_cli.bin");
const TCP_DUMP_JOIN: &[u8] = include_bytes!("../testdata/mptcp/diag_tcp_cli_join.bin");

fn snapshot() -> Snapshot {
    Snapshot {
        connections: parse_connection_dump(MPTCP_DUMP, 1).unwrap(),
        subflows: parse_subflow_dump(TCP_DUMP_JOIN, 1).unwrap(),
        listeners: vec![],
    }
}

#[test]
fn captured_join_subflow_is_listed_with_its_ids() {
    let subs = snapshot().subflows;
    let joins: Vec<_> = subs.iter().filter(|s| s.is_join()).collect();
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert_eq!(joins.len(), 1);
    let j = joins[0];
    assert_eq!(j.token, Token(0x93e1_31e8));
    assert_eq!((j.loc_id, j.rem_id), (1, 1));
    assert_eq!(j.local, sa("[2001:db8:2::1]:60937"));
    assert_eq!(j.remote, sa("[2001:db8:2::2]:8080"));
    assert!(!j.backup());
}

#[test]
fn resync_reports_exactly_the_differences() {
    let mut t = Tracker::default();
    // We knew connection 2aef34a8 with a subflow; events were lost; the snapshot shows
    // only connection 93e131e8 with one joined subflow.
    for d in [ev::ESTABLISHED_CLI, ev::SUB_ESTABLISHED_CLI] {
        assert_eq!(feed(&mut t, d).1, Ok(()));
    }
    let mut out = VecDeque::new();
    t.reconcile(&snapshot(), &mut out);
    let new = Token(0x93e1_31e8);
    let evs: Vec<_> = out.into();
    assert_eq!(evs.len(), 3, "{evs:?}");
    assert_eq!(
        evs[0],
        Event::Closed {
            token: CLI,
            other: vec![]
        }
    );
    assert_eq!(
        evs[1],
        Event::Established(conn(
            new,
            "[2001:db8:1::1]:48055",
            "[2001:db8:1::2]:8080",
            false,
            0
        ))
    );
    let Event::SubEstablished(s) = &evs[2] else {
        panic!("{evs:?}")
    };
    assert_eq!((s.token, s.loc_id, s.local.port()), (new, 1, 60937));
    // Again with the same snapshot: nothing.
    let mut out = VecDeque::new();
    t.reconcile(&snapshot(), &mut out);
    assert!(out.is_empty(), "{out:?}");
    // The joined subflow disappears and its connection's listener shows it was the
    // server side of a new connection: SubClosed only (known connections keep their
    // description).
    let mut snap = snapshot();
    snap.subflows.retain(|s| !s.is_join());
    let mut out = VecDeque::new();
    t.reconcile(&snap, &mut out);
    assert!(matches!(&out.make_contiguous()[..], [Event::SubClosed(s)] if s.local.port() == 60937));
    // A connection still in SYN_SENT is only Created; one behind a listener is server
    // side.
    let mut t = Tracker::default();
    let syn = DiagConnection {
        token: Token(7),
        local: sa("[2001:db8:1::2]:8080"),
        remote: sa("[2001:db8:1::1]:1000"),
        state: 2,
    };
    let snap = Snapshot {
        connections: vec![syn],
        subflows: vec![],
        listeners: vec![sa("[::]:8080")],
    };
    let mut out = VecDeque::new();
    t.reconcile(&snap, &mut out);
    assert!(matches!(&out.make_contiguous()[..], [Event::Created(c)] if c.server_side));
    let mut out = VecDeque::new();
    let established = Snapshot {
        connections: vec![DiagConnection { state: 1, ..syn }],
        ..snap
    };
    t.reconcile(&established, &mut out);
    assert!(matches!(&out.make_contiguous()[..], [Event::Established(c)] if c.server_side));
}
