//! Shared test fixtures: two-host networks over the [`sim`](crate::sim) module.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use shim6_wire::shim6::{Message, MessageType};

use crate::sim::identity::{self, HostIdentity};
use crate::sim::{Fate, Net};
use crate::{Config, Endpoint, Event, State};

/// The virtual epoch of every test network.
pub fn epoch() -> Instant {
    // The only clock read: it picks an arbitrary origin for virtual time; the endpoint
    // under test only ever sees instants derived from it.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

/// A configuration with a fixed seed.
pub fn config(seed: u8) -> Config {
    Config {
        rng_seed: Some([seed; 32]),
        ..Config::default()
    }
}

/// An endpoint for an identity.
pub fn endpoint(id: HostIdentity, cfg: Config, now: Instant) -> (Endpoint, Vec<Ipv6Addr>) {
    let locs: Vec<_> = id.locators.iter().map(|a| reap::Locator::new(*a)).collect();
    let ep = Endpoint::new(cfg, id.ulids, &locs, now).expect("valid test identity");
    (ep, id.locators)
}

/// Which identity kind a test host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Pure HBA set, Sec 0.
    Hba,
    /// CGA ULID plus signed plain locators.
    Cga,
    /// CGA-compatible HBA set.
    CgaHba,
}

/// Builds the identity of host number `site` (1 = A, 2 = B …).
pub fn ident(kind: Kind, site: u16, m: u16) -> HostIdentity {
    match kind {
        Kind::Hba => identity::hba(site, m, site as u8),
        Kind::Cga => identity::cga(site, m, identity::test_key(usize::from(site))),
        Kind::CgaHba => identity::cga_hba(site, m, identity::test_key(usize::from(site))),
    }
}

/// Two hosts A (index 0) and B (index 1) with `m` locators each; ULIDs are the first.
pub struct Two {
    pub net: Net,
    pub ua: Ipv6Addr,
    pub ub: Ipv6Addr,
    pub la: Vec<Ipv6Addr>,
    #[allow(dead_code)] // kept for symmetry with `la`
    pub lb: Vec<Ipv6Addr>,
}

pub const A: usize = 0;
pub const B: usize = 1;

impl Two {
    pub fn new(kind: Kind, m: u16) -> Self {
        Self::with(kind, kind, m, config(1), config(2))
    }

    pub fn with(ka: Kind, kb: Kind, m: u16, ca: Config, cb: Config) -> Self {
        let t0 = epoch();
        let mut net = Net::new(t0, 42);
        let (ea, la) = endpoint(ident(ka, 1, m), ca, t0);
        let (eb, lb) = endpoint(ident(kb, 2, m), cb, t0);
        net.add_host(Some(ea), la.clone());
        net.add_host(Some(eb), lb.clone());
        Self {
            net,
            ua: la[0],
            ub: lb[0],
            la,
            lb,
        }
    }

    pub fn ep(&mut self, h: usize) -> &mut Endpoint {
        self.net.hosts[h].ep()
    }

    /// A establishes with B and the network settles.
    pub fn establish(&mut self) {
        let now = self.net.now();
        let (ua, ub) = (self.ua, self.ub);
        self.ep(A).establish(now, ua, ub).expect("establish");
        self.net.drain(A);
        self.net.settle();
    }

    pub fn state(&mut self, h: usize) -> Option<State> {
        let (l, p) = if h == A {
            (self.ua, self.ub)
        } else {
            (self.ub, self.ua)
        };
        let ep = self.ep(h);
        let tag = ep.find(l, p, 0)?;
        ep.context(tag).map(|c| c.state)
    }

    pub fn info(&mut self, h: usize) -> crate::ContextInfo {
        let (l, p) = if h == A {
            (self.ua, self.ub)
        } else {
            (self.ub, self.ua)
        };
        let ep = self.ep(h);
        let tag = ep.find(l, p, 0).expect("context exists");
        ep.context(tag).expect("context exists")
    }

    /// Both directions of application traffic every `every` for `d`.
    pub fn traffic(&mut self, d: Duration, every: Duration) {
        let end = self.net.now() + d;
        let (ua, ub) = (self.ua, self.ub);
        while self.net.now() < end {
            self.net.send_app(A, ua, ub, b"ping from A");
            self.net.send_app(B, ub, ua, b"pong from B");
            self.net.run_for(every);
        }
    }

    /// Control messages of type `ty` sent by `h` so far (wire trace).
    pub fn sent(&mut self, h: usize, ty: MessageType) -> u64 {
        self.net.hosts[h].ep().stats().sent(ty)
    }

    pub fn has_event(&self, h: usize, f: impl Fn(&Event) -> bool) -> bool {
        self.net.hosts[h].events.iter().any(f)
    }
}

/// Rewrites the Shim6 message of an IPv6 packet (checksum recomputed), so tampering
/// tests reach the check they target instead of the checksum.
pub fn rewrite_message(packet: &mut Vec<u8>, f: impl FnOnce(&mut Message)) {
    let Ok(mut m) = Message::parse_bytes(&packet[40..]) else {
        return;
    };
    f(&mut m);
    let body = m.to_vec().expect("re-emit");
    packet.truncate(40);
    packet.extend_from_slice(&body);
    let len = (body.len() as u16).to_be_bytes();
    packet[4..6].copy_from_slice(&len);
}

/// Wire octets of delivered control messages of the handshake types.
pub fn handshake_octets(net: &Net) -> usize {
    net.trace
        .iter()
        .filter(|t| {
            t.fate == Fate::Delivered
                && matches!(
                    t.control,
                    Some(MessageType::I1 | MessageType::R1 | MessageType::I2 | MessageType::R2)
                )
        })
        .map(|t| t.len)
        .sum()
}
