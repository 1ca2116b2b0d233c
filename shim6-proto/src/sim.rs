//! A deterministic in-process network for [`Endpoint`]s (quinn's `Pair`, generalised):
//! N hosts with M locators each, links with loss, delay, MTU and per-direction cuts, an
//! `alter` hook that rewrites or drops control messages in flight, and virtual time that
//! jumps to the next event. It is a test and benchmark tool; nothing in the endpoint
//! depends on it.
//!
//! - A host either runs an [`Endpoint`] or has no Shim6 at all; the latter answers
//!   Shim6 packets with `ICMPv6` Parameter Problem "unrecognized Next Header" as a Linux
//!   kernel without a listener does (architecture.md, verified on the CI kernel).
//! - Applications send with [`Net::send_app`]; packets go through `handle_outbound`,
//!   cross the link of their (src, dst) locator pair, and at the destination either go
//!   through `handle_inbound` (Shim6 header or `ICMPv6`) or straight to the application
//!   (no Shim6 header: the kernel path, reported with `note_peer_activity` when
//!   [`TestHost::report_bypass`] is set).
//! - [`Net::step`] jumps to the earliest packet arrival or `poll_timeout`;
//!   [`Net::drive_bounded`] runs until the network is quiet and panics on livelock.
//!
//! Identities come from [`identity`]: HBA sets (Sec 0, instant), CGAs and CGA-compatible
//! HBA sets with RSA keys generated once per process.

use core::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use shim6_wire::ipv6::{self, proto};
use shim6_wire::shim6::MessageType;

use crate::endpoint::{Endpoint, Event, Inbound, Outbound};

/// Test identities: ULIDs with their CGA Parameters, and locators.
pub mod identity {
    use std::net::Ipv6Addr;
    use std::sync::OnceLock;

    use cga::{Generator, PrivateKey, Sec, hba_pseudo_key};

    use crate::locators::LocalUlid;

    /// A host's identity: its ULIDs (with parameters and keys) and locators.
    #[derive(Debug)]
    pub struct HostIdentity {
        /// The ULIDs, first = the default one.
        pub ulids: Vec<LocalUlid>,
        /// Every address of the host, ULIDs included.
        pub locators: Vec<Ipv6Addr>,
    }

    /// The /64 prefix `2001:db8:<site>:<i>::/64`.
    pub fn prefix(site: u16, i: u16) -> [u8; 8] {
        let mut p = [0u8; 8];
        p[..2].copy_from_slice(&0x2001u16.to_be_bytes());
        p[2..4].copy_from_slice(&0x0db8u16.to_be_bytes());
        p[4..6].copy_from_slice(&site.to_be_bytes());
        p[6..8].copy_from_slice(&i.to_be_bytes());
        p
    }

    /// An address in `prefix` with interface identifier `iid`.
    pub fn addr(prefix: &[u8; 8], iid: u64) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o[..8].copy_from_slice(prefix);
        o[8..].copy_from_slice(&iid.to_be_bytes());
        Ipv6Addr::from(o)
    }

    /// A pure HBA set (Sec 0, RFC 5535) over `m` prefixes of `site`; the ULID is the first
    /// member. `salt` varies the pseudo-key so two hosts never share a set.
    pub fn hba(site: u16, m: u16, salt: u8) -> HostIdentity {
        let prefixes: Vec<_> = (1..=m).map(|i| prefix(site, i)).collect();
        let key = hba_pseudo_key(&[salt; 48]);
        // Invariant: a fresh pseudo-key is one DER element and the prefixes are distinct.
        let g = Generator::from_parts(Sec::ZERO, key, &prefixes, false)
            .expect("distinct prefixes and a DER pseudo-key");
        let set = g.finish([salt; 16]);
        let members = set.members();
        let (_, ulid, params) = members[0].clone();
        HostIdentity {
            ulids: vec![LocalUlid {
                address: ulid,
                params,
                key: None,
            }],
            locators: members.iter().map(|m| m.1).collect(),
        }
    }

    /// RSA keys for tests, generated once per process (1024 bits, the fastest size
    /// cga accepts for signing).
    pub fn test_key(i: usize) -> PrivateKey {
        static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let pems = KEYS.get_or_init(|| {
            (0..4)
                .map(|_| {
                    PrivateKey::generate(1024)
                        .and_then(|k| k.to_pem())
                        .expect("RSA key generation")
                })
                .collect()
        });
        PrivateKey::from_pem(&pems[i % pems.len()]).expect("PEM we wrote")
    }

    /// A CGA (Sec 0) ULID on the first of `m` prefixes of `site`; the other locators are
    /// plain addresses bound by the CGA Signature (RFC 5533 §5.15.5).
    pub fn cga(site: u16, m: u16, key: PrivateKey) -> HostIdentity {
        let pk = key.public_key().expect("public key of a generated key");
        let set = Generator::cga(&pk, Sec::ZERO).finish([7; 16]);
        let p0 = prefix(site, 1);
        let ulid = set.address(&p0);
        let params = set.params(&p0).to_bytes();
        let mut locators = vec![ulid];
        for i in 2..=m {
            locators.push(addr(&prefix(site, i), 0x100 + u64::from(i)));
        }
        HostIdentity {
            ulids: vec![LocalUlid {
                address: ulid,
                params,
                key: Some(key),
            }],
            locators,
        }
    }

    /// A CGA-compatible HBA set (Multi-Prefix with P = 1) over `m` prefixes of `site`,
    /// with the key, so that locators outside the set can be signed.
    pub fn cga_hba(site: u16, m: u16, key: PrivateKey) -> HostIdentity {
        let pk = key.public_key().expect("public key of a generated key");
        let prefixes: Vec<_> = (1..=m).map(|i| prefix(site, i)).collect();
        let g = Generator::hba(&prefixes, Some(&pk), Sec::ZERO).expect("distinct prefixes");
        let set = g.finish([9; 16]);
        let members = set.members();
        let (_, ulid, params) = members[0].clone();
        HostIdentity {
            ulids: vec![LocalUlid {
                address: ulid,
                params,
                key: Some(key),
            }],
            locators: members.iter().map(|m| m.1).collect(),
        }
    }
}

/// A unidirectional link between two locators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Probability of losing a packet.
    pub loss: f64,
    /// One-way delay.
    pub delay: Duration,
    /// Largest packet that passes.
    pub mtu: usize,
    /// Whether it works at all.
    pub up: bool,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::from_millis(10),
            mtu: 1500,
            up: true,
        }
    }
}

/// What happened to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered to the destination host.
    Delivered,
    /// Lost (loss, cut, MTU, no such host, or the alter hook).
    Lost,
}

/// One packet on the wire, for assertions and wire-cost counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Virtual time it was sent.
    pub at: Duration,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// The Shim6 control type, if it is one.
    pub control: Option<MessageType>,
    /// Whether it carries a payload extension header.
    pub shimmed: bool,
    /// Octets on the wire (IPv6 header included).
    pub len: usize,
    /// What became of it.
    pub fate: Fate,
}

/// A packet an application received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Virtual time.
    pub at: Duration,
    /// Source seen by the application (a ULID).
    pub src: Ipv6Addr,
    /// Destination seen by the application.
    pub dst: Ipv6Addr,
    /// The packet's upper-layer bytes.
    pub payload: Vec<u8>,
    /// Whether it went through the endpoint (payload header removed).
    pub via_shim: bool,
}

/// One simulated host.
#[derive(Debug)]
pub struct TestHost {
    /// The endpoint, or `None` for a host without Shim6.
    pub ep: Option<Endpoint>,
    /// Every address of the host.
    pub addresses: Vec<Ipv6Addr>,
    /// Packets its applications received.
    pub delivered: Vec<Delivered>,
    /// Events its endpoint reported.
    pub events: Vec<Event>,
    /// Outbound packets the endpoint dropped.
    pub outbound_drops: usize,
    /// Report un-rewritten inbound payload with `note_peer_activity` (hazard 2).
    pub report_bypass: bool,
}

impl TestHost {
    /// The endpoint.
    ///
    /// # Panics
    /// For a host without Shim6.
    pub fn ep(&mut self) -> &mut Endpoint {
        self.ep.as_mut().expect("host runs Shim6")
    }
}

/// What the `alter` hook sees about a control message in flight.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    /// Sending host.
    pub from: usize,
    /// Receiving host.
    pub to: usize,
    /// Message type.
    pub message_type: MessageType,
    /// Virtual time.
    pub at: Duration,
}

/// The hook: may rewrite the packet (IPv6 header included); returns false to drop it.
pub type AlterHook = Box<dyn FnMut(&InFlight, &mut Vec<u8>) -> bool>;

/// The network.
pub struct Net {
    epoch: Instant,
    now: Instant,
    /// The hosts.
    pub hosts: Vec<TestHost>,
    links: HashMap<(Ipv6Addr, Ipv6Addr), Link>,
    /// Properties of every link not set explicitly.
    pub default_link: Link,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    packets: HashMap<u64, Vec<u8>>,
    seq: u64,
    rng: ChaCha20Rng,
    /// Rewrites or drops control messages in flight (rustls-style tamper hook).
    pub alter: Option<AlterHook>,
    /// Every packet sent.
    pub trace: Vec<Trace>,
    /// Most steps [`Net::drive_bounded`] and [`Net::run_for`] take.
    pub max_steps: usize,
}

impl core::fmt::Debug for Net {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Net")
            .field("now", &self.elapsed())
            .field("hosts", &self.hosts.len())
            .finish_non_exhaustive()
    }
}

/// Headroom the simulator leaves in front of application packets.
const HEADROOM: usize = 64;

impl Net {
    /// An empty network at `epoch` (virtual time 0); `seed` drives loss.
    pub fn new(epoch: Instant, seed: u64) -> Self {
        Self {
            epoch,
            now: epoch,
            hosts: Vec::new(),
            links: HashMap::new(),
            default_link: Link::default(),
            queue: BinaryHeap::new(),
            packets: HashMap::new(),
            seq: 0,
            rng: ChaCha20Rng::seed_from_u64(seed),
            alter: None,
            trace: Vec::new(),
            max_steps: 200_000,
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the epoch.
    pub fn elapsed(&self) -> Duration {
        self.now.duration_since(self.epoch)
    }

    /// Adds a host; returns its index.
    pub fn add_host(&mut self, ep: Option<Endpoint>, addresses: Vec<Ipv6Addr>) -> usize {
        self.hosts.push(TestHost {
            ep,
            addresses,
            delivered: Vec::new(),
            events: Vec::new(),
            outbound_drops: 0,
            report_bypass: true,
        });
        self.hosts.len() - 1
    }

    /// Replaces host `h`'s endpoint (a daemon restart: all state lost).
    pub fn restart(&mut self, h: usize, ep: Endpoint) {
        self.hosts[h].ep = Some(ep);
    }

    /// The link from `src` to `dst` (one direction).
    pub fn link_mut(&mut self, src: Ipv6Addr, dst: Ipv6Addr) -> &mut Link {
        let d = self.default_link;
        self.links.entry((src, dst)).or_insert(d)
    }

    /// Cuts the link `src → dst` (one direction).
    pub fn link_down(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.link_mut(src, dst).up = false;
    }

    /// Restores the link `src → dst`.
    pub fn link_up(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.link_mut(src, dst).up = true;
    }

    /// Cuts both directions between two addresses.
    pub fn cut(&mut self, a: Ipv6Addr, b: Ipv6Addr) {
        self.link_down(a, b);
        self.link_down(b, a);
    }

    /// Cuts every link touching address `a` (an interface going down).
    pub fn isolate(&mut self, a: Ipv6Addr) {
        let all: Vec<Ipv6Addr> = self
            .hosts
            .iter()
            .flat_map(|h| h.addresses.clone())
            .collect();
        for b in all {
            if b != a {
                self.cut(a, b);
            }
        }
    }

    fn owner(&self, a: &Ipv6Addr) -> Option<usize> {
        self.hosts.iter().position(|h| h.addresses.contains(a))
    }

    /// An application on host `h` sends `data` from `src` to `dst` (UDP, next header
    /// 17): through `handle_outbound`, then onto the wire.
    pub fn send_app(&mut self, h: usize, src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) {
        let mut buf = vec![0u8; HEADROOM + ipv6::HEADER_LEN + data.len()];
        let range = HEADROOM..buf.len();
        ipv6::Repr {
            traffic_class: 0,
            flow_label: 0,
            payload_len: data.len() as u16,
            next_header: proto::UDP,
            hop_limit: 64,
            src_addr: src,
            dst_addr: dst,
        }
        .emit(&mut ipv6::Packet::new_unchecked(&mut buf[range.clone()]));
        buf[HEADROOM + ipv6::HEADER_LEN..].copy_from_slice(data);
        let now = self.now;
        let out = match self.hosts[h].ep.as_mut() {
            Some(ep) => ep.handle_outbound(now, &mut buf, range.clone()),
            None => Outbound::PassThrough,
        };
        match out {
            Outbound::Send(s) => {
                let p = buf[s.packet].to_vec();
                self.wire(h, p);
            }
            Outbound::PassThrough => {
                let p = buf[range].to_vec();
                self.wire(h, p);
            }
            Outbound::Drop(_) => self.hosts[h].outbound_drops += 1,
        }
        self.drain(h);
    }

    /// Puts a packet from host `from` on the wire.
    pub fn wire(&mut self, from: usize, mut packet: Vec<u8>) {
        let Ok(ip) = ipv6::Packet::new_checked(&packet[..]) else {
            return;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let control =
            (ip.next_header() == proto::SHIM6 && packet.len() > 42 && packet[42] & 0x80 == 0)
                .then(|| MessageType::from(packet[42] & 0x7f));
        let shimmed =
            ip.next_header() == proto::SHIM6 && packet.len() > 42 && packet[42] & 0x80 != 0;
        let link = self
            .links
            .get(&(src, dst))
            .copied()
            .unwrap_or(self.default_link);
        let to = self.owner(&dst);
        let mut keep = link.up && packet.len() <= link.mtu && to.is_some();
        if keep && link.loss > 0.0 {
            let r = f64::from(self.rng.next_u32()) / f64::from(u32::MAX);
            keep = r >= link.loss;
        }
        if keep {
            if let (Some(ty), Some(to), Some(hook)) = (control, to, self.alter.as_mut()) {
                let info = InFlight {
                    from,
                    to,
                    message_type: ty,
                    at: self.now.duration_since(self.epoch),
                };
                keep = hook(&info, &mut packet);
            }
        }
        self.trace.push(Trace {
            at: self.elapsed(),
            src,
            dst,
            control,
            shimmed,
            len: packet.len(),
            fate: if keep { Fate::Delivered } else { Fate::Lost },
        });
        if let (true, Some(to)) = (keep, to) {
            self.seq += 1;
            self.packets.insert(self.seq, packet);
            self.queue
                .push(Reverse((self.now + link.delay, self.seq, to)));
        }
    }

    /// Drains host `h`'s transmits and events.
    pub fn drain(&mut self, h: usize) {
        loop {
            let Some(ep) = self.hosts[h].ep.as_mut() else {
                return;
            };
            let Some(t) = ep.poll_transmit() else { break };
            self.wire(h, t.packet);
        }
        let host = &mut self.hosts[h];
        if let Some(ep) = host.ep.as_mut() {
            while let Some(e) = ep.poll_event() {
                host.events.push(e);
            }
        }
    }

    fn deliver(&mut self, to: usize, mut packet: Vec<u8>) {
        let now = self.now;
        let at = self.elapsed();
        let Ok(ip) = ipv6::Packet::new_checked(&packet[..]) else {
            return;
        };
        let (src, dst, nh) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
        let host = &mut self.hosts[to];
        let Some(ep) = host.ep.as_mut() else {
            if nh == proto::SHIM6 {
                // A kernel without a protocol-140 listener: Parameter Problem code 1,
                // Pointer at the Next Header field (RFC 4443 §3.4).
                let reply = icmp_param_problem(dst, src, &packet);
                self.wire(to, reply);
            } else {
                host.delivered.push(Delivered {
                    at,
                    src,
                    dst,
                    payload: packet[ipv6::HEADER_LEN..].to_vec(),
                    via_shim: false,
                });
            }
            return;
        };
        if nh == proto::SHIM6 || nh == proto::ICMPV6 {
            let len = packet.len();
            match ep.handle_inbound(now, &mut packet, 0..len) {
                Inbound::DeliverToTun(r) => {
                    let p = ipv6::Packet::new_unchecked(&packet[r.clone()]);
                    host.delivered.push(Delivered {
                        at,
                        src: p.src_addr(),
                        dst: p.dst_addr(),
                        payload: packet[r.start + ipv6::HEADER_LEN..r.end].to_vec(),
                        via_shim: true,
                    });
                }
                Inbound::Consumed | Inbound::Drop(_) => {}
            }
        } else {
            if host.report_bypass {
                ep.note_peer_activity(now, dst, src);
            }
            host.delivered.push(Delivered {
                at,
                src,
                dst,
                payload: packet[ipv6::HEADER_LEN..].to_vec(),
                via_shim: false,
            });
        }
        self.drain(to);
    }

    /// The earliest pending instant: a packet arrival or an endpoint timeout.
    pub fn next_wakeup(&mut self) -> Option<Instant> {
        let mut t = self.queue.peek().map(|Reverse((t, _, _))| *t);
        for h in &mut self.hosts {
            if let Some(x) = h.ep.as_mut().and_then(Endpoint::poll_timeout) {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        }
        t
    }

    /// Jumps to the next wakeup (no later than `limit`) and processes it. Returns false
    /// when nothing is pending before `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        let Some(t) = self.next_wakeup().filter(|t| *t <= limit) else {
            return false;
        };
        self.now = self.now.max(t);
        while let Some(Reverse((at, seq, to))) = self.queue.peek().copied() {
            if at > self.now {
                break;
            }
            self.queue.pop();
            if let Some(p) = self.packets.remove(&seq) {
                self.deliver(to, p);
            }
        }
        let now = self.now;
        for h in 0..self.hosts.len() {
            let due = self.hosts[h]
                .ep
                .as_mut()
                .and_then(Endpoint::poll_timeout)
                .is_some_and(|x| x <= now);
            if due {
                if let Some(ep) = self.hosts[h].ep.as_mut() {
                    ep.handle_timeout(now);
                }
                self.drain(h);
            }
        }
        true
    }

    /// Runs for `d` of virtual time.
    ///
    /// # Panics
    /// After [`Net::max_steps`] steps (livelock).
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        let mut steps = 0;
        while self.step(limit) {
            steps += 1;
            assert!(steps < self.max_steps, "livelock: {steps} steps in {d:?}");
        }
        self.now = limit;
    }

    /// Runs until no packet is in flight and no endpoint timer is due within `quiet`.
    ///
    /// # Panics
    /// After [`Net::max_steps`] steps (livelock).
    pub fn drive_bounded(&mut self, quiet: Duration) {
        let mut steps = 0;
        loop {
            let limit = self.now + quiet;
            if self.queue.is_empty() && self.next_wakeup().is_none_or(|t| t > limit) {
                return;
            }
            if !self.step(limit) {
                return;
            }
            steps += 1;
            assert!(steps < self.max_steps, "livelock: {steps} steps");
        }
    }

    /// Drives until the handshake traffic settles (no packet in flight, no timer within
    /// 1 s).
    pub fn settle(&mut self) {
        self.drive_bounded(Duration::from_secs(1));
    }
}

/// `ICMPv6` Parameter Problem, code 1 (unrecognized Next Header), quoting `invoking`.
fn icmp_param_problem(src: Ipv6Addr, dst: Ipv6Addr, invoking: &[u8]) -> Vec<u8> {
    let quote = &invoking[..invoking.len().min(1232)];
    let len = 8 + quote.len();
    let mut p = vec![0u8; ipv6::HEADER_LEN + len];
    ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: len as u16,
        next_header: proto::ICMPV6,
        hop_limit: 64,
        src_addr: src,
        dst_addr: dst,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut p[..]));
    {
        let body = &mut p[ipv6::HEADER_LEN..];
        body[8..].copy_from_slice(quote);
        let mut m = ipv6::icmp::Packet::new_unchecked(body);
        m.set_msg_type(ipv6::icmp::TYPE_PARAM_PROBLEM);
        m.set_code(1);
        m.set_data_word(6);
        m.fill_checksum(&src, &dst);
    }
    p
}
