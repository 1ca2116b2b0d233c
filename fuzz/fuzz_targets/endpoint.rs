//! Arbitrary datagrams and events fed to a Shim6 `Endpoint` with a fixed seed and virtual
//! time (style.md, fuzz tier). The input is a script of operations; each one is followed
//! by draining the endpoint's outputs in the contract's order (transmits, events,
//! timeout). Properties: nothing panics, and every transmit is a well-formed IPv6 packet
//! whose Shim6 control message parses (our own output must always be valid).
//!
//! Operations (first octet of each step, modulo 5):
//! 0. an IPv6 packet from the network, taken verbatim;
//! 1. a Shim6 header from the peer's locator to ours (the fuzzer supplies the Shim6 part,
//!    the IPv6 header is built around it so that the dispatcher's address checks pass);
//! 2. a packet from the TUN (verbatim IPv6), as an application would send it;
//! 3. time advances by the next octet × 100 ms and the timers run;
//! 4. `establish` towards the peer's ULID.
#![no_main]

use std::net::Ipv6Addr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shim6_proto::Endpoint;
use shim6_proto::config::Config;
use shim6_proto::locators::LocalUlid;
use shim6_proto::sim::identity::{self, HostIdentity};
use shim6_wire::shim6::Message;

const HEADROOM: usize = 64;

fn identities() -> &'static (HostIdentity, HostIdentity) {
    static IDS: OnceLock<(HostIdentity, HostIdentity)> = OnceLock::new();
    IDS.get_or_init(|| (identity::hba(1, 3, 1), identity::hba(2, 3, 2)))
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; HEADROOM];
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&u16::try_from(payload.len()).unwrap_or(u16::MAX).to_be_bytes());
    p.extend_from_slice(&[nh, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

fn drain(ep: &mut Endpoint) {
    while let Some(t) = ep.poll_transmit() {
        let shim = t.packet.get(40..).expect("a transmit holds an IPv6 header");
        if t.packet[6] == 140 && shim.len() > 2 && shim[2] & 0x80 == 0 {
            Message::parse_bytes(shim).expect("our control messages parse");
        }
    }
    while ep.poll_event().is_some() {}
    let _ = ep.poll_timeout();
}

fuzz_target!(|data: &[u8]| {
    let (me, peer) = identities();
    let locators: Vec<reap::Locator> = me.locators.iter().copied().map(reap::Locator::new).collect();
    let config = Config {
        rng_seed: Some([7; 32]),
        ..Config::default()
    };
    let mut now = Instant::now();
    // Pure HBA identities carry no private key, so the ULIDs can be rebuilt per run.
    let ulids = me
        .ulids
        .iter()
        .map(|u| LocalUlid {
            address: u.address,
            params: u.params.clone(),
            key: None,
        })
        .collect();
    let Ok(mut ep) = Endpoint::new(config, ulids, &locators, now) else {
        return;
    };
    let (my_ulid, peer_ulid) = (me.locators[0], peer.locators[0]);
    let mut rest = data;
    let mut steps = 0;
    while let Some((&op, tail)) = rest.split_first() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let n = usize::from(tail.first().copied().unwrap_or(0)).min(tail.len().saturating_sub(1));
        let body = tail.get(1..1 + n).unwrap_or_default();
        rest = tail.get(1 + n..).unwrap_or_default();
        match op % 5 {
            0 | 1 | 2 => {
                let mut buf = if op % 5 == 1 {
                    ipv6(peer.locators[usize::from(op) % 3], me.locators[usize::from(op / 8) % 3], 140, body)
                } else {
                    let mut b = vec![0u8; HEADROOM];
                    b.extend_from_slice(body);
                    b
                };
                let range = HEADROOM..buf.len();
                if op % 5 == 2 {
                    let _ = ep.handle_outbound(now, &mut buf, range);
                } else {
                    let _ = ep.handle_inbound(now, &mut buf, range);
                }
            }
            3 => {
                now += Duration::from_millis(100 * u64::from(body.first().copied().unwrap_or(1)));
                ep.handle_timeout(now);
            }
            _ => {
                let _ = ep.establish(now, my_ulid, peer_ulid);
            }
        }
        drain(&mut ep);
    }
});
