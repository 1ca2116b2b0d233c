//! The mobile node core (RFC 6275 §11; RFC 4285 for authentication).
//!
//! Home addresses are the MipShim6 ULIDs; care-of addresses come from address events;
//! the Binding Update List holds one entry per home address and home agent
//! (RFC 6275 §11.1). Sans-IO, same polling contract as the home agent: after any
//! `handle_*` call, drain [`MobileNode::poll_transmit`] and [`MobileNode::poll_event`],
//! then re-arm [`MobileNode::poll_timeout`]. Time never goes backwards.
//!
//! # Retransmission (RFC 6275 §11.8)
//! The first BU of a registration waits `InitialBindackTimeoutFirstReg` (1.5 s, §13) when
//! the home agent has no binding for us yet, else `INITIAL_BINDACK_TIMEOUT` (1 s, §12);
//! each unanswered BU doubles the wait up to `MAX_BINDACK_TIMEOUT` (32 s) and keeps going
//! at that rate. Every transmission carries a larger sequence number; after a BA with
//! status 135 the node adopts the home agent's number (§11.7.3). At most
//! `MAX_UPDATE_RATE` (3) BUs per second go to one home agent (§11.8); a BU over the limit
//! waits. After [`MnConfig::unreachable_after`] unanswered transmissions the home agent is
//! reported unreachable ([`MnEvent::HomeAgentUnreachable`]); retransmissions go on, and
//! the first accepted BA reports it reachable again.

use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use shim6_wire::ipv6;
use shim6_wire::mip6::{BaStatus, BindingUpdate, Message, MobilityOption, Packet, Repr};
use shim6_wire::tunnel::{self, EncapError, EncapParams, InnerHopLimit, Shift};

use crate::auth::{self, MnHaKey, NtpClock};
use crate::packet::{self, Signalling};
use crate::{Transmit, is_unicast_routable};

/// `INITIAL_BINDACK_TIMEOUT` (RFC 6275 §12).
pub const INITIAL_BINDACK_TIMEOUT: Duration = Duration::from_secs(1);
/// `MAX_BINDACK_TIMEOUT` (RFC 6275 §12).
pub const MAX_BINDACK_TIMEOUT: Duration = Duration::from_secs(32);
/// `InitialBindackTimeoutFirstReg` default (RFC 6275 §13).
pub const INITIAL_BINDACK_TIMEOUT_FIRST_REG: Duration = Duration::from_millis(1500);
/// `MAX_UPDATE_RATE` (RFC 6275 §12): Binding Updates per second to one home agent.
pub const MAX_UPDATE_RATE: usize = 3;

/// One home registration to keep: a home address, its home agent and their key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeConfig {
    /// The home address (a MipShim6 ULID).
    pub home_address: Ipv6Addr,
    /// The home agent's address.
    pub home_agent: Ipv6Addr,
    /// The MN-HA security association (RFC 4285 §5.1).
    pub key: MnHaKey,
    /// Requested lifetime, in 4 s units (RFC 6275 §6.1.7).
    pub lifetime_units: u16,
}

/// Mobile node configuration.
#[derive(Debug, Clone)]
pub struct MnConfig {
    /// Home registrations, in order of preference.
    pub homes: Vec<HomeConfig>,
    /// How BUs and BAs travel.
    pub signalling: Signalling,
    /// `InitialBindackTimeoutFirstReg` (RFC 6275 §13, configurable, default 1.5 s).
    pub initial_bindack_timeout_first_reg: Duration,
    /// Whether BUs carry the replay-protection timestamp (RFC 4285 §6).
    pub use_timestamps: bool,
    /// Unanswered BU transmissions after which the home agent is declared unreachable.
    pub unreachable_after: u32,
    /// Hop Limit of own packets and of the tunnel's outer header.
    pub hop_limit: u8,
}

impl MnConfig {
    /// A configuration with the defaults: tunnelled signalling, 1.5 s first-registration
    /// timeout, timestamps on, unreachable after 3 unanswered BUs (1.5 + 3 + 6 s ≈ 10.5 s),
    /// Hop Limit 64.
    pub fn new(homes: Vec<HomeConfig>) -> Self {
        Self {
            homes,
            signalling: Signalling::Tunnelled,
            initial_bindack_timeout_first_reg: INITIAL_BINDACK_TIMEOUT_FIRST_REG,
            use_timestamps: true,
            unreachable_after: 3,
            hop_limit: 64,
        }
    }
}

/// Where a Binding Update List entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulState {
    /// Nothing sent yet (no care-of address).
    Idle,
    /// A BU with a non-zero lifetime is outstanding.
    Registering,
    /// Registered; refreshed before expiry.
    Registered,
    /// A de-registration BU is outstanding.
    Deregistering,
    /// De-registered.
    Deregistered,
    /// Rejected with this status; no further BUs (RFC 4285 §5.3 for 146; RFC 6275
    /// §11.7.3 for the others).
    Rejected(BaStatus),
}

/// One Binding Update List entry (RFC 6275 §11.1).
#[derive(Debug, Clone)]
pub struct BulEntry {
    /// The home registration.
    pub home: HomeConfig,
    /// State.
    pub state: BulState,
    /// Care-of address of the last BU sent.
    pub care_of_address: Option<Ipv6Addr>,
    /// Care-of address the home agent has accepted.
    pub registered_coa: Option<Ipv6Addr>,
    /// Sequence number of the last BU sent.
    pub sequence: u16,
    /// Granted lifetime of the current registration.
    pub granted: Duration,
    /// When the registration expires (RFC 6275 §11.7.3: counted from the BU's sending).
    pub expires: Option<Instant>,
    /// When the refresh BU goes out.
    pub refresh_at: Option<Instant>,
    /// When the outstanding BU is retransmitted.
    pub retransmit_at: Option<Instant>,
    /// Current retransmission timeout.
    pub timeout: Duration,
    /// Transmissions of the outstanding BU without an answer.
    pub unanswered: u32,
    /// Whether the home agent answers.
    pub ha_reachable: bool,
    pending_lifetime: u16,
    last_sent_at: Option<Instant>,
    last_timestamp: Option<u64>,
    recent_sends: VecDeque<Instant>,
    deferred: bool,
}

/// What the mobile node reports to the daemon (MipShim6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MnEvent {
    /// The care-of addresses changed (primary first): give them to the Shim6
    /// `Endpoint` as the local locators, so that an Update Request follows.
    CareOfAddressesChanged(Vec<Ipv6Addr>),
    /// A home registration was accepted.
    Registered {
        /// Home address.
        home_address: Ipv6Addr,
        /// Registered care-of address.
        care_of_address: Ipv6Addr,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// A de-registration was accepted.
    Deregistered {
        /// Home address.
        home_address: Ipv6Addr,
    },
    /// A BU was rejected (no further BUs for this home).
    Rejected {
        /// Home address.
        home_address: Ipv6Addr,
        /// Status.
        status: BaStatus,
    },
    /// The home agent stopped answering: switch ULID rewriting to another home address.
    HomeAgentUnreachable {
        /// Home address.
        home_address: Ipv6Addr,
        /// Home agent.
        home_agent: Ipv6Addr,
    },
    /// The home agent answers again.
    HomeAgentReachable {
        /// Home address.
        home_address: Ipv6Addr,
        /// Home agent.
        home_agent: Ipv6Addr,
    },
    /// A registration expired without a successful refresh.
    BindingExpired {
        /// Home address.
        home_address: Ipv6Addr,
    },
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MnStats {
    /// BUs sent (first transmissions and retransmissions).
    pub bu_sent: u64,
    /// Of which retransmissions.
    pub bu_retransmitted: u64,
    /// BUs delayed by `MAX_UPDATE_RATE`.
    pub bu_rate_limited: u64,
    /// BAs accepted.
    pub ba_accepted: u64,
    /// BAs with a rejection status.
    pub ba_rejected: u64,
    /// BAs failing authentication or without it (dropped, RFC 4285 §5, §5.1.1).
    pub ba_auth_failed: u64,
    /// BAs whose timestamp does not match the BU's (dropped, RFC 4285 §6).
    pub ba_timestamp_mismatch: u64,
    /// BAs for no outstanding BU (wrong sequence number, unknown home).
    pub ba_stale: u64,
    /// Mobility Headers that failed to parse.
    pub mh_malformed: u64,
    /// Own packets reverse-tunnelled.
    pub tunnelled_out: u64,
    /// Tunnelled packets delivered.
    pub tunnelled_in: u64,
    /// Tunnel packets not from the home agent of their inner destination.
    pub tunnel_not_from_home_agent: u64,
    /// Outbound packets from a home address without a registration.
    pub outbound_not_registered: u64,
}

/// What to do with an outbound packet ([`MobileNode::handle_outbound`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// The buffer holds the reverse-tunnel packet at this range (outer: care-of address
    /// → home agent); send it.
    Tunnel(core::ops::Range<usize>),
    /// The source is not one of our home addresses: not ours to tunnel.
    NotHome,
    /// The home address has no registration (yet): dropped, counted.
    NotRegistered,
    /// Unparseable, or no room in the buffer: dropped.
    Malformed,
}

/// What to do with a tunnel packet ([`MobileNode::handle_tunnelled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Deliver the inner packet at this range (relative to the tunnel packet).
    Deliver(core::ops::Range<usize>),
    /// A tunnelled Mobility Header, processed.
    Consumed,
    /// Dropped, counted.
    Drop,
}

/// The mobile node.
#[derive(Debug)]
pub struct MobileNode {
    config: MnConfig,
    clock: NtpClock,
    bul: Vec<BulEntry>,
    /// Care-of addresses, primary (most recently configured) first.
    coas: Vec<Ipv6Addr>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MnEvent>,
    stats: MnStats,
}

impl MobileNode {
    /// A mobile node; `ntp_now` is the wall clock (NTP format) at `now`, for the
    /// replay-protection timestamps.
    pub fn new(config: MnConfig, now: Instant, ntp_now: u64) -> Self {
        let bul = config
            .homes
            .iter()
            .map(|h| BulEntry {
                home: h.clone(),
                state: BulState::Idle,
                care_of_address: None,
                registered_coa: None,
                sequence: 0,
                granted: Duration::ZERO,
                expires: None,
                refresh_at: None,
                retransmit_at: None,
                timeout: INITIAL_BINDACK_TIMEOUT,
                unanswered: 0,
                ha_reachable: true,
                pending_lifetime: 0,
                last_sent_at: None,
                last_timestamp: None,
                recent_sends: VecDeque::new(),
                deferred: false,
            })
            .collect();
        Self {
            config,
            clock: NtpClock::new(now, ntp_now),
            bul,
            coas: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: MnStats::default(),
        }
    }

    /// The Binding Update List.
    pub fn binding_update_list(&self) -> &[BulEntry] {
        &self.bul
    }

    /// The care-of addresses, primary first.
    pub fn care_of_addresses(&self) -> &[Ipv6Addr] {
        &self.coas
    }

    /// Home addresses whose registration stands and whose home agent answers (the ULIDs
    /// usable now).
    pub fn registered_home_addresses(&self) -> Vec<Ipv6Addr> {
        self.bul
            .iter()
            .filter(|e| e.registered_coa.is_some() && e.ha_reachable)
            .map(|e| e.home.home_address)
            .collect()
    }

    /// The counters.
    pub fn stats(&self) -> &MnStats {
        &self.stats
    }

    /// Next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<MnEvent> {
        self.events.pop_front()
    }

    /// When [`MobileNode::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bul
            .iter()
            .flat_map(|e| [e.retransmit_at, e.refresh_at, e.expires])
            .flatten()
            .min()
    }

    fn is_home_address(&self, a: &Ipv6Addr) -> bool {
        self.bul.iter().any(|e| e.home.home_address == *a)
    }

    /// A global address appeared on an interface (netlink `RTM_NEWADDR`). Unless it is a
    /// home address, it becomes the primary care-of address (the newest network is where
    /// the node is now), and every home is re-registered with it (RFC 6275 §11.5.4,
    /// §11.7.1).
    pub fn handle_address_added(&mut self, now: Instant, addr: Ipv6Addr) {
        if !is_unicast_routable(&addr) || self.is_home_address(&addr) || self.coas.contains(&addr) {
            return;
        }
        self.coas.insert(0, addr);
        self.coas_changed(now);
    }

    /// An address disappeared (netlink `RTM_DELADDR`).
    pub fn handle_address_removed(&mut self, now: Instant, addr: Ipv6Addr) {
        let Some(i) = self.coas.iter().position(|a| *a == addr) else {
            return;
        };
        self.coas.remove(i);
        self.coas_changed(now);
    }

    fn coas_changed(&mut self, now: Instant) {
        self.events
            .push_back(MnEvent::CareOfAddressesChanged(self.coas.clone()));
        let Some(&primary) = self.coas.first() else {
            return;
        };
        for i in 0..self.bul.len() {
            let e = &self.bul[i];
            let move_needed = match e.state {
                BulState::Idle => true,
                BulState::Registering | BulState::Registered => e.care_of_address != Some(primary),
                BulState::Deregistering | BulState::Deregistered | BulState::Rejected(_) => false,
            };
            // An exchange whose retransmission found no care-of address is parked
            // (`transmit_bu`); an address is back, so it goes on where it stopped —
            // with a new sequence number, its back-off kept (RFC 6275 §11.8).
            let parked = matches!(e.state, BulState::Registering | BulState::Deregistering)
                && e.retransmit_at.is_none();
            if move_needed {
                let lifetime = e.home.lifetime_units;
                self.start_bu(now, i, lifetime);
            } else if parked {
                self.transmit_bu(now, i);
            }
        }
    }

    /// De-registers `home_address` (a BU with lifetime 0, RFC 6275 §11.5.5, §11.7.1). Returns
    /// `false` if it is not one of ours or nothing is registered (RFC 6275 §11.7.1).
    pub fn deregister(&mut self, now: Instant, home_address: &Ipv6Addr) -> bool {
        let Some(i) = self
            .bul
            .iter()
            .position(|e| e.home.home_address == *home_address)
        else {
            return false;
        };
        if !matches!(
            self.bul[i].state,
            BulState::Registered | BulState::Registering
        ) || self.coas.is_empty()
        {
            return false;
        }
        self.start_bu(now, i, 0);
        true
    }

    /// Starts a new BU exchange for entry `i`.
    fn start_bu(&mut self, now: Instant, i: usize, lifetime: u16) {
        let e = &mut self.bul[i];
        e.pending_lifetime = lifetime;
        e.state = if lifetime == 0 {
            BulState::Deregistering
        } else {
            BulState::Registering
        };
        // RFC 6275 §11.8: InitialBindackTimeoutFirstReg when the home agent has no
        // binding for us (it may run DAD), INITIAL_BINDACK_TIMEOUT otherwise.
        e.timeout = if e.registered_coa.is_none() && lifetime != 0 {
            self.config.initial_bindack_timeout_first_reg
        } else {
            INITIAL_BINDACK_TIMEOUT
        };
        e.unanswered = 0;
        e.refresh_at = None;
        e.deferred = false;
        self.transmit_bu(now, i);
    }

    /// Sends the outstanding BU of entry `i` (first transmission or retransmission),
    /// unless `MAX_UPDATE_RATE` defers it.
    fn transmit_bu(&mut self, now: Instant, i: usize) {
        let Some(&coa) = self.coas.first() else {
            // No care-of address: nothing can be sent; wait for an address event.
            self.bul[i].retransmit_at = None;
            return;
        };
        let e = &mut self.bul[i];
        // RFC 6275 §11.8: at most MAX_UPDATE_RATE BUs per second to one home agent.
        while e
            .recent_sends
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            e.recent_sends.pop_front();
        }
        if e.recent_sends.len() >= MAX_UPDATE_RATE {
            self.stats.bu_rate_limited += 1;
            e.deferred = true;
            e.retransmit_at = e.recent_sends.front().map(|t| *t + Duration::from_secs(1));
            return;
        }
        e.deferred = false;
        // RFC 6275 §11.8: every (re)transmission carries a larger sequence number.
        e.sequence = e.sequence.wrapping_add(1);
        let timestamp = self.config.use_timestamps.then(|| {
            // RFC 4285 §6: greater than any earlier one.
            let t = self.clock.at(now);
            e.last_timestamp.map_or(t, |l| t.max(l.saturating_add(1)))
        });
        e.last_timestamp = timestamp.or(e.last_timestamp);
        let home = &e.home;
        let mut options: Vec<MobilityOption<'_>> = Vec::new();
        options.extend(timestamp.map(MobilityOption::ReplayProtection));
        options.push(auth::mn_ha_option(&home.key));
        let repr = Repr::new(Message::BindingUpdate(BindingUpdate {
            sequence: e.sequence,
            ack: true,
            home_registration: true,
            link_local_compat: false,
            key_mgmt: false,
            lifetime: e.pending_lifetime,
            options,
        }));
        let (hoa, ha) = (home.home_address, home.home_agent);
        let mh = auth::emit_mh(&repr, &hoa, &ha, Some((&home.key, &coa, &hoa)));
        let pkt = packet::bu_packet(
            self.config.signalling,
            coa,
            ha,
            hoa,
            &mh,
            self.config.hop_limit,
        );
        self.transmits.push_back(Transmit {
            dst: ha,
            packet: pkt,
        });
        e.care_of_address = Some(coa);
        e.recent_sends.push_back(now);
        e.last_sent_at = Some(now);
        e.unanswered += 1;
        e.retransmit_at = Some(now + e.timeout);
        self.stats.bu_sent += 1;
        if e.unanswered > 1 {
            self.stats.bu_retransmitted += 1;
        }
    }

    /// Retransmissions, refreshes and expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.bul.len() {
            let e = &mut self.bul[i];
            if e.expires.is_some_and(|t| t <= now) {
                // RFC 6275 §11.7.1: the registration ran out without a refresh.
                e.expires = None;
                e.registered_coa = None;
                e.refresh_at = None;
                let hoa = e.home.home_address;
                self.events
                    .push_back(MnEvent::BindingExpired { home_address: hoa });
                if e.ha_reachable {
                    e.ha_reachable = false;
                    self.events.push_back(MnEvent::HomeAgentUnreachable {
                        home_address: hoa,
                        home_agent: e.home.home_agent,
                    });
                }
            }
            let e = &mut self.bul[i];
            if e.refresh_at.is_some_and(|t| t <= now) {
                // RFC 6275 §11.7.1: refresh before the lifetime runs out.
                let l = e.home.lifetime_units;
                self.start_bu(now, i, l);
                continue;
            }
            let e = &mut self.bul[i];
            if e.retransmit_at.is_some_and(|t| t <= now) {
                if e.deferred {
                    // Held back by MAX_UPDATE_RATE: send now, no back-off step.
                    self.transmit_bu(now, i);
                    continue;
                }
                if e.unanswered >= self.config.unreachable_after && e.ha_reachable {
                    e.ha_reachable = false;
                    self.events.push_back(MnEvent::HomeAgentUnreachable {
                        home_address: e.home.home_address,
                        home_agent: e.home.home_agent,
                    });
                }
                // RFC 6275 §11.8: double the timeout up to MAX_BINDACK_TIMEOUT.
                e.timeout = (e.timeout * 2).min(MAX_BINDACK_TIMEOUT);
                self.transmit_bu(now, i);
            }
        }
    }

    /// A packet with a Mobility Header (raw socket, protocol 135; the RFC 6275 encoding
    /// with a type 2 routing header).
    pub fn handle_mh_packet(&mut self, now: Instant, packet: &[u8]) {
        let Ok(p) = packet::parse_mh_packet(packet) else {
            self.stats.mh_malformed += 1;
            return;
        };
        let (ps, pd) = p.pseudo_header();
        self.handle_mh(now, &packet[p.mh.clone()], p.src, ps, pd);
    }

    fn handle_mh(&mut self, now: Instant, mh: &[u8], src: Ipv6Addr, ps: Ipv6Addr, pd: Ipv6Addr) {
        let view = Packet::new_unchecked(mh);
        let Ok(repr) = Repr::parse(&view, &ps, &pd) else {
            self.stats.mh_malformed += 1;
            return;
        };
        // The home address is the pseudo-header destination (type 2 routing header, or
        // the inner destination of a tunnelled BA).
        let Some(i) = self
            .bul
            .iter()
            .position(|e| e.home.home_address == pd && e.home.home_agent == src)
        else {
            self.stats.ba_stale += 1;
            return;
        };
        let ba = match repr.message {
            Message::BindingAck(ba) => ba,
            Message::BindingRefreshRequest(_) => {
                // RFC 6275 §11.7.4: answer a Binding Refresh Request with a BU — but
                // only an authenticated one, or anyone could make us send BUs.
                if auth::verify(
                    mh,
                    &self.bul[i].care_of_address.unwrap_or(src),
                    &pd,
                    |spi| (spi == self.bul[i].home.key.spi).then_some(&self.bul[i].home.key),
                )
                .is_ok()
                    && self.bul[i].state == BulState::Registered
                {
                    let l = self.bul[i].home.lifetime_units;
                    self.start_bu(now, i, l);
                }
                return;
            }
            _ => {
                self.stats.ba_stale += 1;
                return;
            }
        };
        let e = &mut self.bul[i];
        let Some(coa) = e.care_of_address else {
            self.stats.ba_stale += 1;
            return;
        };
        // RFC 4285 §5.1.1: verify the BA's authenticator (same CoA | HoA input).
        let key = e.home.key.clone();
        if auth::verify(mh, &coa, &pd, |spi| (spi == key.spi).then_some(&key)).is_err() {
            self.stats.ba_auth_failed += 1;
            return;
        }
        let ts = ba.options.iter().find_map(|o| match o {
            MobilityOption::ReplayProtection(t) => Some(*t),
            _ => None,
        });
        if ba.status == BaStatus::IdMismatch {
            // RFC 4285 §6: the BA is authentic; adopt the home agent's time of day (its
            // high 32 bits) and send a fresh BU.
            if let (Some(t), true) = (
                ts,
                matches!(e.state, BulState::Registering | BulState::Deregistering),
            ) {
                self.clock.set(now, t);
                e.last_timestamp = None;
                e.deferred = false;
                self.transmit_bu(now, i);
            } else {
                self.stats.ba_stale += 1;
            }
            return;
        }
        if self.config.use_timestamps && ts != e.last_timestamp {
            // RFC 4285 §6: "If the values do not match, the Mobile Node silently
            // discards the BA."
            self.stats.ba_timestamp_mismatch += 1;
            return;
        }
        if !matches!(e.state, BulState::Registering | BulState::Deregistering) {
            self.stats.ba_stale += 1;
            return;
        }
        if ba.status == BaStatus::SequenceNumberOutOfWindow {
            // RFC 6275 §11.7.3: adopt the home agent's last accepted number and retry.
            e.sequence = ba.sequence;
            self.stats.ba_rejected += 1;
            e.deferred = false;
            self.transmit_bu(now, i);
            return;
        }
        if ba.sequence != e.sequence {
            // An answer to an earlier transmission; the current one is outstanding.
            self.stats.ba_stale += 1;
            return;
        }
        let hoa = e.home.home_address;
        if !e.ha_reachable {
            e.ha_reachable = true;
            self.events.push_back(MnEvent::HomeAgentReachable {
                home_address: hoa,
                home_agent: e.home.home_agent,
            });
        }
        e.retransmit_at = None;
        e.unanswered = 0;
        if !ba.status.is_accepted() {
            // RFC 6275 §11.7.3 / RFC 4285 §5.3: rejected; stop sending BUs.
            self.stats.ba_rejected += 1;
            e.state = BulState::Rejected(ba.status);
            e.registered_coa = None;
            e.expires = None;
            e.refresh_at = None;
            self.events.push_back(MnEvent::Rejected {
                home_address: hoa,
                status: ba.status,
            });
            return;
        }
        self.stats.ba_accepted += 1;
        if e.state == BulState::Deregistering {
            e.state = BulState::Deregistered;
            e.registered_coa = None;
            e.expires = None;
            e.refresh_at = None;
            self.events
                .push_back(MnEvent::Deregistered { home_address: hoa });
            return;
        }
        // RFC 6275 §11.7.3: the lifetime runs from when the BU was sent.
        let sent = e.last_sent_at.unwrap_or(now);
        let granted = Duration::from_secs(u64::from(ba.lifetime.min(e.pending_lifetime)) * 4);
        let advice = ba.options.iter().find_map(|o| match o {
            MobilityOption::BindingRefreshAdvice(v) => Some(Duration::from_secs(u64::from(*v) * 4)),
            _ => None,
        });
        // Refresh at the advised interval (RFC 6275 §11.7.3), else at 3/4 of the lifetime.
        let refresh = advice.unwrap_or(granted * 3 / 4).min(granted * 3 / 4);
        e.state = BulState::Registered;
        e.registered_coa = Some(coa);
        e.granted = granted;
        e.expires = Some(sent + granted);
        e.refresh_at = Some(sent + refresh);
        self.events.push_back(MnEvent::Registered {
            home_address: hoa,
            care_of_address: coa,
            lifetime: granted,
        });
    }

    /// An outbound packet from the TUN: if its source is a registered home address, it
    /// is reverse-tunnelled in place (outer care-of address → home agent, RFC 6275
    /// §11.3.1; the inner Hop Limit is kept: the node originated it).
    pub fn handle_outbound(
        &mut self,
        _now: Instant,
        buf: &mut [u8],
        packet: core::ops::Range<usize>,
    ) -> Outbound {
        let Some(src) = buf
            .get(packet.clone())
            .and_then(|b| ipv6::Packet::new_checked(b).ok())
            .map(|p| p.src_addr())
        else {
            return Outbound::Malformed;
        };
        let Some(e) = self.bul.iter().find(|e| e.home.home_address == src) else {
            return Outbound::NotHome;
        };
        let Some(registered) = e.registered_coa else {
            self.stats.outbound_not_registered += 1;
            return Outbound::NotRegistered;
        };
        // The registered care-of address while the node still has it; during a handover
        // whose old address is already gone, the new primary one (its BU went out first
        // on the same path, so the home agent's §10.4.5 check sees the new binding).
        let coa = if self.coas.contains(&registered) {
            registered
        } else {
            self.coas.first().copied().unwrap_or(registered)
        };
        let mut params = EncapParams::new(coa, e.home.home_agent, self.config.hop_limit);
        params.inner_hop_limit = InnerHopLimit::Keep;
        let shift = if packet.start >= tunnel::OVERHEAD {
            Shift::Front
        } else {
            Shift::Tail
        };
        match tunnel::encapsulate(buf, packet, &params, shift) {
            Ok(r) => {
                self.stats.tunnelled_out += 1;
                Outbound::Tunnel(r)
            }
            Err(EncapError::HopLimitExceeded | EncapError::Wire(_)) => Outbound::Malformed,
        }
    }

    /// An IPv6-in-IPv6 packet (raw socket, protocol 41): traffic the home agent tunnels
    /// to us, or a tunnelled BA.
    pub fn handle_tunnelled(&mut self, now: Instant, packet: &[u8]) -> Inbound {
        let Ok(d) = tunnel::decapsulate(packet) else {
            self.stats.tunnel_not_from_home_agent += 1;
            return Inbound::Drop;
        };
        let inner = &packet[d.inner.clone()];
        let ip = ipv6::Packet::new_unchecked(inner);
        let dst = ip.dst_addr();
        // Only the home agent of the inner destination may tunnel to us.
        if !self
            .bul
            .iter()
            .any(|e| e.home.home_address == dst && e.home.home_agent == d.outer_src)
        {
            self.stats.tunnel_not_from_home_agent += 1;
            return Inbound::Drop;
        }
        if ip.src_addr() == d.outer_src
            && let Ok(p) = packet::parse_mh_packet(inner)
        {
            let (ps, pd) = p.pseudo_header();
            self.handle_mh(now, &inner[p.mh.clone()], p.src, ps, pd);
            return Inbound::Consumed;
        }
        self.stats.tunnelled_in += 1;
        Inbound::Deliver(d.inner)
    }
}
