//! The home agent core (RFC 6275 §9.5, §10.3, §10.4; RFC 4285 for authentication).
//!
//! Sans-IO: every handler takes `now`; replies are queued for [`HomeAgent::poll_transmit`],
//! state changes for [`HomeAgent::poll_event`], the next deadline is
//! [`HomeAgent::poll_timeout`]. Time passed in must never go backwards. After any
//! `handle_*` call, drain `poll_transmit`, `poll_event`, then re-arm `poll_timeout`.
//!
//! # Binding Update processing (in this order)
//! 1. Parse the Mobility Header (checksum, RFC 6275 §9.2, §10.2); an unknown MH Type gets a
//!    rate-limited Binding Error status 2 (§9.2; rate limit §9.3.3).
//! 2. Home address = Home Address option, else the source (§9.5.1); care-of address =
//!    Alternate Care-of Address option, else the source — for a tunnelled BU the outer
//!    source (§9.5.1). Both must be unicast routable.
//! 3. Authentication (RFC 4285 §5.1.1): no security association for the home address or
//!    SPI → discard; no option → discard (§5); a wrong authenticator → BA 146.
//! 4. Replay protection (RFC 4285 §6): a timestamp not close to our clock or not above the
//!    last accepted one → BA 144 (no binding change); required but absent → BA 145.
//! 5. Sequence number (RFC 6275 §9.5.1): with an entry, the number must be greater modulo
//!    2^16, else BA 135 with the last accepted number.
//! 6. Registration type (§9.5.1, §10.3.1): Nonce Indices with H = 1 → discard; H = 0 → BA
//!    139 if an entry exists, else 131 (this home agent does home registrations only).
//! 7. Lifetime ≠ 0: registration (§10.3.1): home address not in a home prefix → 132;
//!    accept with status 0, or 1 if a home prefix expires within the lifetime.
//!    Lifetime = 0: de-registration (§10.3.2): no active entry → 133; else 0, and the
//!    entry is kept, inactive, for `MAX_DELETE_BCE_TIMEOUT`.
//!
//! Every rejection is counted in [`HaStats`]; nothing unauthenticated changes a binding.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use shim6_wire::mip6::{
    BaStatus, BeStatus, BindingAck, BindingError, BindingUpdate, Message, MobilityOption, Packet,
    Repr,
};
use shim6_wire::tunnel::{self, EncapError, EncapParams, Shift};
use shim6_wire::{Error, ipv6};

use crate::auth::{self, AuthError, MnHaKey, NtpClock};
use crate::packet::{self, Signalling};
use crate::{Prefix, Transmit, is_unicast_routable, seq_greater};

/// `MAX_DELETE_BCE_TIMEOUT` (RFC 6275 §12): how long a de-registered entry is kept.
pub const MAX_DELETE_BCE_TIMEOUT: Duration = Duration::from_secs(10);

/// A home prefix served by this home agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomePrefix {
    /// The prefix.
    pub prefix: Prefix,
    /// When its valid lifetime ends (`None`: infinite). RFC 6275 §10.3.1: the granted
    /// lifetime never exceeds it, and status 1 tells the mobile node when it ends within
    /// the lifetime.
    pub valid_until: Option<Instant>,
}

/// A mobile node this home agent serves: its home address and RFC 4285 keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileNodeEntry {
    /// The home address.
    pub home_address: Ipv6Addr,
    /// The MN-HA security associations for it (keyed per home address and SPI).
    pub keys: Vec<MnHaKey>,
}

/// Home agent configuration.
#[derive(Debug, Clone)]
pub struct HaConfig {
    /// The home agent's own address (BA source, tunnel entry/exit point).
    pub address: Ipv6Addr,
    /// Home prefixes (RFC 6275 §10.3.1: 132 for a home address outside them).
    pub home_prefixes: Vec<HomePrefix>,
    /// Mobile nodes and their keys.
    pub mobile_nodes: Vec<MobileNodeEntry>,
    /// Policy cap on the granted lifetime, in 4 s units (RFC 6275 §10.3.1 "MAY reduce").
    pub max_lifetime_units: u16,
    /// Whether BAs carry a Binding Refresh Advice (RFC 6275 §6.2.4, §10.3.1) of half the
    /// granted lifetime.
    pub refresh_advice: bool,
    /// Replay-protection tolerance (RFC 4285 §6, default 7 s).
    pub timestamp_tolerance: Duration,
    /// Whether a BU must carry the replay-protection option (RFC 4285 §6: else BA 145).
    pub require_timestamp: bool,
    /// Outer Hop Limit of tunnelled packets and of own packets.
    pub hop_limit: u8,
    /// Minimum interval between two Binding Errors (RFC 6275 §9.3.3: rate-limited like
    /// ICMP).
    pub binding_error_interval: Duration,
}

impl HaConfig {
    /// A configuration with the defaults: lifetime cap 420 s (105 units), refresh
    /// advice on, 7 s tolerance, timestamps optional, Hop Limit 64, one Binding Error
    /// per second.
    pub fn new(address: Ipv6Addr) -> Self {
        Self {
            address,
            home_prefixes: Vec::new(),
            mobile_nodes: Vec::new(),
            max_lifetime_units: 105,
            refresh_advice: true,
            timestamp_tolerance: auth::DEFAULT_TIMESTAMP_TOLERANCE,
            require_timestamp: false,
            hop_limit: 64,
            binding_error_interval: Duration::from_secs(1),
        }
    }
}

/// The state of a Binding Cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Registered: traffic for the home address is tunnelled to the care-of address.
    Active,
    /// De-registered, kept until the given time so that a late BU gets 135 (RFC 6275
    /// §10.3.2).
    Deleted,
}

/// One Binding Cache entry (RFC 6275 §9.1, §10.1), as [`HomeAgent::bindings`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The home address.
    pub home_address: Ipv6Addr,
    /// The care-of address.
    pub care_of_address: Ipv6Addr,
    /// Last accepted sequence number.
    pub sequence: u16,
    /// When the entry ends (expiry, or the end of the delete hold-down).
    pub expires: Instant,
    /// State.
    pub state: EntryState,
    /// The SPI that authenticated the last BU.
    pub spi: u32,
    /// How the mobile node signals (and so how BAs go back).
    pub signalling: Signalling,
}

/// Per-home-address state that outlives entries: RFC 4285 App. A — replay protection
/// must survive the entry's removal.
#[derive(Debug, Clone, Default)]
struct MnState {
    keys: Vec<MnHaKey>,
    last_timestamp: Option<u64>,
}

/// What the home agent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaEvent {
    /// A new binding (start intercepting the home address, RFC 6275 §10.4.1).
    BindingCreated {
        /// Home address.
        home_address: Ipv6Addr,
        /// Care-of address.
        care_of_address: Ipv6Addr,
    },
    /// A binding moved to another care-of address (or was refreshed: `old == new`).
    BindingUpdated {
        /// Home address.
        home_address: Ipv6Addr,
        /// Previous care-of address.
        old: Ipv6Addr,
        /// New care-of address.
        new: Ipv6Addr,
    },
    /// A binding was de-registered (stop intercepting, RFC 6275 §10.3.2).
    BindingDeleted {
        /// Home address.
        home_address: Ipv6Addr,
    },
    /// A binding's lifetime ran out (RFC 6275 §10.3.1).
    BindingExpired {
        /// Home address.
        home_address: Ipv6Addr,
    },
    /// A Binding Update was rejected with a BA of this status.
    Rejected {
        /// Home address claimed by the BU.
        home_address: Ipv6Addr,
        /// Status sent back.
        status: BaStatus,
    },
}

/// Counters, one per outcome and drop reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HaStats {
    /// Binding Updates accepted (registrations, refreshes, moves).
    pub bu_accepted: u64,
    /// De-registrations accepted.
    pub bu_deregistered: u64,
    /// Mobility Headers that failed to parse (bad checksum, length, options).
    pub mh_malformed: u64,
    /// Mobility Headers of an unknown type (Binding Error status 2 or rate-limited).
    pub mh_unknown_type: u64,
    /// Binding Errors not sent because of the rate limit.
    pub binding_error_rate_limited: u64,
    /// Mobility messages a home agent does not process (BA, BE, BRR).
    pub mh_unexpected: u64,
    /// BUs whose home or care-of address is not unicast routable.
    pub bu_bad_address: u64,
    /// BUs for a home address without a security association (RFC 4285 §5.1.1: discard).
    pub bu_no_security_association: u64,
    /// BUs without the authentication option (RFC 4285 §5: discard).
    pub bu_auth_missing: u64,
    /// BUs with an unknown SPI for their home address (discard).
    pub bu_unknown_spi: u64,
    /// BUs failing authentication (BA 146).
    pub bu_auth_failed: u64,
    /// BUs with a stale or far-off timestamp (BA 144).
    pub bu_replayed: u64,
    /// BUs lacking a required timestamp (BA 145).
    pub bu_timestamp_missing: u64,
    /// BUs with a sequence number out of window (BA 135).
    pub bu_sequence_out_of_window: u64,
    /// BUs with Nonce Indices and H = 1 (discard, RFC 6275 §9.5.1).
    pub bu_nonce_with_home: u64,
    /// BUs with H = 0 (BA 131 or 139).
    pub bu_not_home_registration: u64,
    /// BUs for a home address outside the home prefixes (BA 132).
    pub bu_not_home_subnet: u64,
    /// De-registrations without an active entry (BA 133).
    pub bu_no_binding: u64,
    /// Binding entries expired.
    pub bindings_expired: u64,
    /// Packets tunnelled to a care-of address.
    pub tunnelled_out: u64,
    /// Reverse-tunnelled packets decapsulated and forwarded.
    pub tunnelled_in: u64,
    /// Home-link packets for an address without an active binding (not ours).
    pub intercept_no_binding: u64,
    /// Home-link packets to a link-local or multicast address (never tunnelled,
    /// RFC 6275 §10.4.2).
    pub intercept_not_tunnelled: u64,
    /// Packets whose inner Hop Limit ran out at the tunnel entry (RFC 2473 §3.1).
    pub intercept_hop_limit: u64,
    /// Packets that could not be encapsulated or parsed.
    pub intercept_malformed: u64,
    /// Tunnel packets that failed to decapsulate.
    pub reverse_malformed: u64,
    /// Reverse-tunnelled packets from a home address without an active binding.
    pub reverse_no_binding: u64,
    /// Reverse-tunnelled packets whose outer source is not the registered care-of address
    /// (RFC 6275 §10.4.5).
    pub reverse_wrong_care_of: u64,
}

/// What to do with a packet for the home link ([`HomeAgent::handle_home_link_packet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intercept {
    /// The buffer now holds the tunnel packet at this range: send it (raw socket, or
    /// back into the TUN for the kernel to route) towards `care_of_address`.
    Tunnel {
        /// Range of the tunnel packet in the buffer.
        range: core::ops::Range<usize>,
        /// The outer destination.
        care_of_address: Ipv6Addr,
    },
    /// Not for a registered home address: handle as usual.
    NotRegistered,
    /// Dropped (counted); with [`InterceptDrop::HopLimitExceeded`] the caller sends
    /// `ICMPv6` Time Exceeded to the packet's source.
    Drop(InterceptDrop),
}

/// Why an intercepted packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptDrop {
    /// Link-local or multicast destination (RFC 6275 §10.4.2).
    NotTunnelled,
    /// Inner Hop Limit would reach 0 (RFC 2473 §3.1).
    HopLimitExceeded,
    /// Unparseable packet or buffer without room.
    Malformed,
}

/// What to do with an IPv6-in-IPv6 packet received by the home agent
/// ([`HomeAgent::handle_tunnelled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverse {
    /// Forward the inner packet at this range (relative to the tunnel packet).
    Forward(core::ops::Range<usize>),
    /// A tunnelled Mobility Header, processed; replies are queued.
    Consumed,
    /// Dropped (counted).
    Drop(ReverseDrop),
}

/// Why a tunnel packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReverseDrop {
    /// Not a valid IPv6-in-IPv6 packet.
    Malformed,
    /// The inner source has no active binding.
    NoBinding,
    /// The outer source is not the registered care-of address (RFC 6275 §10.4.5).
    WrongCareOf,
}

/// The home agent.
#[derive(Debug)]
pub struct HomeAgent {
    config: HaConfig,
    clock: NtpClock,
    cache: BTreeMap<Ipv6Addr, Binding>,
    nodes: BTreeMap<Ipv6Addr, MnState>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<HaEvent>,
    stats: HaStats,
    last_binding_error: Option<Instant>,
}

/// The parsed input of one Binding Update.
struct BuInput<'a> {
    /// The whole Mobility Header.
    mh: &'a [u8],
    bu: BindingUpdate<'a>,
    hoa: Ipv6Addr,
    coa: Ipv6Addr,
    /// Where replies go: the IPv6 source (RFC 6275 §9.5.4) or the tunnel's outer source.
    reply_to: Ipv6Addr,
    signalling: Signalling,
}

impl HomeAgent {
    /// A home agent; `ntp_now` is the wall clock (NTP format, RFC 1305) at `now`, the
    /// anchor of its replay-protection clock.
    pub fn new(config: HaConfig, now: Instant, ntp_now: u64) -> Self {
        let nodes = config
            .mobile_nodes
            .iter()
            .map(|m| {
                (
                    m.home_address,
                    MnState {
                        keys: m.keys.clone(),
                        last_timestamp: None,
                    },
                )
            })
            .collect();
        Self {
            config,
            clock: NtpClock::new(now, ntp_now),
            cache: BTreeMap::new(),
            nodes,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: HaStats::default(),
            last_binding_error: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HaConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &HaStats {
        &self.stats
    }

    /// The Binding Cache (active and held-down entries).
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.cache.values()
    }

    /// The binding of `home_address`, if any.
    pub fn binding(&self, home_address: &Ipv6Addr) -> Option<&Binding> {
        self.cache.get(home_address)
    }

    /// Next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<HaEvent> {
        self.events.pop_front()
    }

    /// When [`HomeAgent::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.cache.values().map(|b| b.expires).min()
    }

    /// Expires bindings (RFC 6275 §10.3.1) and ends delete hold-downs (§10.3.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Ipv6Addr> = self
            .cache
            .values()
            .filter(|b| b.expires <= now)
            .map(|b| b.home_address)
            .collect();
        for hoa in due {
            if let Some(b) = self.cache.remove(&hoa)
                && b.state == EntryState::Active
            {
                self.stats.bindings_expired += 1;
                self.events
                    .push_back(HaEvent::BindingExpired { home_address: hoa });
            }
        }
    }

    /// A packet whose upper layer is a Mobility Header, received on the raw socket for
    /// protocol 135 (the RFC 6275 encoding, [`Signalling::Rfc6275`]).
    pub fn handle_mh_packet(&mut self, now: Instant, packet: &[u8]) {
        let Ok(p) = packet::parse_mh_packet(packet) else {
            self.stats.mh_malformed += 1;
            return;
        };
        let (ps, pd) = p.pseudo_header();
        self.handle_mh(
            now,
            &packet[p.mh.clone()],
            p.src,
            ps,
            pd,
            p.home_address_option,
            Signalling::Rfc6275,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_mh(
        &mut self,
        now: Instant,
        mh: &[u8],
        src: Ipv6Addr,
        pseudo_src: Ipv6Addr,
        pseudo_dst: Ipv6Addr,
        hao: Option<Ipv6Addr>,
        signalling: Signalling,
    ) {
        let view = Packet::new_unchecked(mh);
        let repr = match Repr::parse(&view, &pseudo_src, &pseudo_dst) {
            Ok(r) => r,
            Err(Error::Unrecognized { .. }) => {
                // RFC 6275 §9.2: unknown MH Type -> Binding Error status 2 to the source.
                self.stats.mh_unknown_type += 1;
                self.send_binding_error(now, src, hao);
                return;
            }
            Err(_) => {
                // RFC 6275 §9.2: checksum or length failures are silently discarded.
                self.stats.mh_malformed += 1;
                return;
            }
        };
        let Message::BindingUpdate(bu) = repr.message else {
            self.stats.mh_unexpected += 1;
            return;
        };
        // RFC 6275 §9.5.1: HoA from the Home Address option, else the source; CoA from
        // the Alternate Care-of Address option, else the source.
        let hoa = hao.unwrap_or(pseudo_src);
        let coa = bu.alternate_coa().unwrap_or(src);
        self.process_bu(
            now,
            BuInput {
                mh,
                bu,
                hoa,
                coa,
                reply_to: src,
                signalling,
            },
        );
    }

    fn send_binding_error(&mut self, now: Instant, to: Ipv6Addr, hao: Option<Ipv6Addr>) {
        if !is_unicast_routable(&to) {
            return;
        }
        // RFC 6275 §9.3.3: rate-limited like ICMP errors.
        if let Some(t) = self.last_binding_error
            && now.saturating_duration_since(t) < self.config.binding_error_interval
        {
            self.stats.binding_error_rate_limited += 1;
            return;
        }
        self.last_binding_error = Some(now);
        let repr = Repr::new(Message::BindingError(BindingError {
            status: BeStatus::UnrecognizedMhType,
            home_address: hao.unwrap_or(Ipv6Addr::UNSPECIFIED),
            options: Vec::new(),
        }));
        let mh = auth::emit_mh(&repr, &self.config.address, &to, None);
        let pkt = packet::ipv6_packet(
            self.config.address,
            to,
            ipv6::proto::MOBILITY,
            self.config.hop_limit,
            &[&mh],
        );
        self.transmits.push_back(Transmit {
            dst: to,
            packet: pkt,
        });
    }

    fn process_bu(&mut self, now: Instant, input: BuInput<'_>) {
        let BuInput {
            mh,
            bu,
            hoa,
            coa,
            reply_to,
            signalling,
        } = input;
        // Step 2 (RFC 6275 §9.5.1): unicast routable home and care-of addresses.
        if !is_unicast_routable(&hoa) || !is_unicast_routable(&coa) {
            self.stats.bu_bad_address += 1;
            return;
        }
        // Step 3 (RFC 4285 §5.1.1): authentication.
        let Some(node) = self.nodes.get(&hoa) else {
            // No shared-key SA for this home address: "MUST discard the BU".
            self.stats.bu_no_security_association += 1;
            return;
        };
        let spi = match auth::verify(mh, &coa, &hoa, |spi| {
            node.keys.iter().find(|k| k.spi == spi)
        }) {
            Ok(spi) => spi,
            Err(AuthError::Missing) => {
                // RFC 4285 §5: an SA exists but the option is absent: silently discard.
                self.stats.bu_auth_missing += 1;
                return;
            }
            Err(AuthError::UnknownSpi(_)) => {
                // No SA with this SPI for this home address (a key of another mobile
                // node, or none): discard (RFC 4285 §5.1.1, §5.3).
                self.stats.bu_unknown_spi += 1;
                return;
            }
            Err(AuthError::BadAuthenticator) => {
                // RFC 4285 §5.1.1, §5.3: BA MIPV6-AUTH-FAIL (146), signed with the SA
                // the SPI names, so only the real mobile node can verify it.
                self.stats.bu_auth_failed += 1;
                let spi = auth::find_mn_ha(mh).ok().flatten().map_or(0, |l| l.spi);
                self.reject(
                    now,
                    &bu,
                    hoa,
                    coa,
                    reply_to,
                    signalling,
                    spi,
                    BaStatus::AuthFail,
                    None,
                );
                return;
            }
        };
        // Step 4 (RFC 4285 §6): replay protection, after authentication.
        let timestamp = bu.options.iter().find_map(|o| match o {
            MobilityOption::ReplayProtection(t) => Some(*t),
            _ => None,
        });
        let ntp_now = self.clock.at(now);
        match timestamp {
            Some(ts) => {
                let close = auth::ntp_distance(ts, ntp_now) <= self.config.timestamp_tolerance;
                let fresh = node.last_timestamp.is_none_or(|last| ts > last);
                if !(close && fresh) {
                    // "copies only the low-order 32 bits into the BA, and supplies the
                    // high-order 32 bits from its own time of day"; no binding change.
                    self.stats.bu_replayed += 1;
                    let echo = (ntp_now & !0xffff_ffff) | (ts & 0xffff_ffff);
                    self.reject(
                        now,
                        &bu,
                        hoa,
                        coa,
                        reply_to,
                        signalling,
                        spi,
                        BaStatus::IdMismatch,
                        Some(echo),
                    );
                    return;
                }
            }
            None if self.config.require_timestamp => {
                self.stats.bu_timestamp_missing += 1;
                self.reject(
                    now,
                    &bu,
                    hoa,
                    coa,
                    reply_to,
                    signalling,
                    spi,
                    BaStatus::MesgIdRequired,
                    None,
                );
                return;
            }
            None => {}
        }
        // Step 5 (RFC 6275 §9.5.1): sequence number window, modulo 2^16.
        if let Some(b) = self.cache.get(&hoa)
            && !seq_greater(bu.sequence, b.sequence)
        {
            self.stats.bu_sequence_out_of_window += 1;
            let last = b.sequence;
            let mut ba_bu = bu.clone();
            // The BA carries the last accepted sequence number (RFC 6275 §6.1.8).
            ba_bu.sequence = last;
            self.reject(
                now,
                &ba_bu,
                hoa,
                coa,
                reply_to,
                signalling,
                spi,
                BaStatus::SequenceNumberOutOfWindow,
                timestamp,
            );
            return;
        }
        // Step 6 (RFC 6275 §9.5.1): registration type.
        if bu.home_registration
            && bu
                .options
                .iter()
                .any(|o| matches!(o, MobilityOption::NonceIndices { .. }))
        {
            self.stats.bu_nonce_with_home += 1;
            return;
        }
        if !bu.home_registration {
            self.stats.bu_not_home_registration += 1;
            // §9.5.1: an existing (home) entry cannot change type -> 139; otherwise this
            // home agent does not do correspondent registrations -> 131.
            let status = if self.cache.contains_key(&hoa) {
                BaStatus::RegistrationTypeChangeDisallowed
            } else {
                BaStatus::HomeRegistrationNotSupported
            };
            self.reject(
                now, &bu, hoa, coa, reply_to, signalling, spi, status, timestamp,
            );
            return;
        }
        // The BU is authentic and fresh: remember its timestamp (RFC 4285 §6 "greater
        // than all previously accepted timestamps").
        if let (Some(ts), Some(n)) = (timestamp, self.nodes.get_mut(&hoa)) {
            n.last_timestamp = Some(ts);
        }
        if bu.lifetime == 0 {
            self.deregister(now, &bu, hoa, coa, reply_to, signalling, spi, timestamp);
        } else {
            self.register(now, &bu, hoa, coa, reply_to, signalling, spi, timestamp);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        now: Instant,
        bu: &BindingUpdate<'_>,
        hoa: Ipv6Addr,
        coa: Ipv6Addr,
        reply_to: Ipv6Addr,
        signalling: Signalling,
        spi: u32,
        timestamp: Option<u64>,
    ) {
        // RFC 6275 §10.3.1: the home address must be on a home prefix, else 132.
        let Some(prefix) = self
            .config
            .home_prefixes
            .iter()
            .find(|p| p.prefix.contains(&hoa))
            .copied()
        else {
            self.stats.bu_not_home_subnet += 1;
            self.reject(
                now,
                bu,
                hoa,
                coa,
                reply_to,
                signalling,
                spi,
                BaStatus::NotHomeSubnet,
                timestamp,
            );
            return;
        };
        // Granted lifetime: at most the requested one and the policy cap; at most the
        // home prefix's remaining valid lifetime, compared in 4 s units (§10.3.1).
        let mut units = bu.lifetime.min(self.config.max_lifetime_units);
        let mut status = BaStatus::Accepted;
        if let Some(until) = prefix.valid_until {
            let left = u16::try_from(until.saturating_duration_since(now).as_secs() / 4)
                .unwrap_or(u16::MAX);
            if left < units {
                // Status 1: the prefix becomes invalid within the lifetime.
                units = left;
                status = BaStatus::AcceptedPrefixDiscoveryNecessary;
            }
        }
        if units == 0 {
            // Nothing left of the home prefix: administratively prohibited (§10.3.1
            // "other policy reasons").
            self.reject(
                now,
                bu,
                hoa,
                coa,
                reply_to,
                signalling,
                spi,
                BaStatus::AdministrativelyProhibited,
                timestamp,
            );
            return;
        }
        let expires = now + Duration::from_secs(u64::from(units) * 4);
        let entry = Binding {
            home_address: hoa,
            care_of_address: coa,
            sequence: bu.sequence,
            expires,
            state: EntryState::Active,
            spi,
            signalling,
        };
        let event = match self.cache.insert(hoa, entry) {
            Some(old) if old.state == EntryState::Active => HaEvent::BindingUpdated {
                home_address: hoa,
                old: old.care_of_address,
                new: coa,
            },
            _ => HaEvent::BindingCreated {
                home_address: hoa,
                care_of_address: coa,
            },
        };
        self.stats.bu_accepted += 1;
        self.events.push_back(event);
        // RFC 6275 §6.2.4: Refresh Interval < Lifetime; half of it here.
        let advice = (self.config.refresh_advice && units >= 2)
            .then_some(MobilityOption::BindingRefreshAdvice(units / 2));
        self.send_ba(
            bu.sequence,
            units,
            status,
            hoa,
            coa,
            reply_to,
            signalling,
            spi,
            timestamp,
            advice,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn deregister(
        &mut self,
        now: Instant,
        bu: &BindingUpdate<'_>,
        hoa: Ipv6Addr,
        coa: Ipv6Addr,
        reply_to: Ipv6Addr,
        signalling: Signalling,
        spi: u32,
        timestamp: Option<u64>,
    ) {
        // RFC 6275 §10.3.2: no home-registration entry -> 133.
        match self.cache.get_mut(&hoa) {
            Some(b) if b.state == EntryState::Active => {
                b.state = EntryState::Deleted;
                b.sequence = bu.sequence;
                b.expires = now + MAX_DELETE_BCE_TIMEOUT;
                self.stats.bu_deregistered += 1;
                self.events
                    .push_back(HaEvent::BindingDeleted { home_address: hoa });
                self.send_ba(
                    bu.sequence,
                    0,
                    BaStatus::Accepted,
                    hoa,
                    coa,
                    reply_to,
                    signalling,
                    spi,
                    timestamp,
                    None,
                );
            }
            _ => {
                self.stats.bu_no_binding += 1;
                self.reject(
                    now,
                    bu,
                    hoa,
                    coa,
                    reply_to,
                    signalling,
                    spi,
                    BaStatus::NotHomeAgentForThisMobileNode,
                    timestamp,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        _now: Instant,
        bu: &BindingUpdate<'_>,
        hoa: Ipv6Addr,
        coa: Ipv6Addr,
        reply_to: Ipv6Addr,
        signalling: Signalling,
        spi: u32,
        status: BaStatus,
        timestamp: Option<u64>,
    ) {
        self.events.push_back(HaEvent::Rejected {
            home_address: hoa,
            status,
        });
        self.send_ba(
            bu.sequence,
            0,
            status,
            hoa,
            coa,
            reply_to,
            signalling,
            spi,
            timestamp,
            None,
        );
    }

    /// Sends a BA (RFC 6275 §10.3.1: always, whatever the A bit), authenticated with the
    /// SA of `spi` when there is one (RFC 4285 §5.1.1), with the timestamp echoed
    /// (RFC 4285 §6).
    #[allow(clippy::too_many_arguments)]
    fn send_ba(
        &mut self,
        sequence: u16,
        lifetime: u16,
        status: BaStatus,
        hoa: Ipv6Addr,
        coa: Ipv6Addr,
        reply_to: Ipv6Addr,
        signalling: Signalling,
        spi: u32,
        timestamp: Option<u64>,
        advice: Option<MobilityOption<'static>>,
    ) {
        let key = self
            .nodes
            .get(&hoa)
            .and_then(|n| n.keys.iter().find(|k| k.spi == spi))
            .cloned();
        let mut options: Vec<MobilityOption<'_>> = Vec::new();
        options.extend(advice);
        options.extend(timestamp.map(MobilityOption::ReplayProtection));
        if let Some(k) = &key {
            options.push(auth::mn_ha_option(k));
        }
        let repr = Repr::new(Message::BindingAck(BindingAck {
            status,
            key_mgmt: false,
            sequence,
            lifetime,
            options,
        }));
        let ha = self.config.address;
        let mh = auth::emit_mh(&repr, &ha, &hoa, key.as_ref().map(|k| (k, &coa, &hoa)));
        // RFC 6275 §9.5.4 / §6.1.8: to the BU's source (the care-of address).
        let pkt = packet::ba_packet(signalling, ha, reply_to, hoa, &mh, self.config.hop_limit);
        self.transmits.push_back(Transmit {
            dst: reply_to,
            packet: pkt,
        });
    }

    /// A packet that arrived for the home link (through the TUN route of the home
    /// prefix): if its destination is a registered home address, it is encapsulated in
    /// place towards the care-of address (RFC 6275 §10.4.1, §10.4.2; RFC 2473 §3.1: the
    /// inner Hop Limit is decremented). `buf[packet]` is the packet; with 40 octets of
    /// headroom before it nothing is copied, otherwise it needs 40 of tailroom.
    pub fn handle_home_link_packet(
        &mut self,
        _now: Instant,
        buf: &mut [u8],
        packet: core::ops::Range<usize>,
    ) -> Intercept {
        let Some(dst) = buf
            .get(packet.clone())
            .and_then(|b| ipv6::Packet::new_checked(b).ok())
            .map(|p| p.dst_addr())
        else {
            self.stats.intercept_malformed += 1;
            return Intercept::Drop(InterceptDrop::Malformed);
        };
        // RFC 6275 §10.4.2: never tunnel link-local destinations or (unsubscribed)
        // multicast.
        if dst.is_unicast_link_local() || dst.is_multicast() {
            self.stats.intercept_not_tunnelled += 1;
            return Intercept::Drop(InterceptDrop::NotTunnelled);
        }
        let Some(b) = self
            .cache
            .get(&dst)
            .filter(|b| b.state == EntryState::Active)
        else {
            self.stats.intercept_no_binding += 1;
            return Intercept::NotRegistered;
        };
        let coa = b.care_of_address;
        let params = EncapParams::new(self.config.address, coa, self.config.hop_limit);
        let shift = if packet.start >= tunnel::OVERHEAD {
            Shift::Front
        } else {
            Shift::Tail
        };
        match tunnel::encapsulate(buf, packet, &params, shift) {
            Ok(range) => {
                self.stats.tunnelled_out += 1;
                Intercept::Tunnel {
                    range,
                    care_of_address: coa,
                }
            }
            Err(EncapError::HopLimitExceeded) => {
                self.stats.intercept_hop_limit += 1;
                Intercept::Drop(InterceptDrop::HopLimitExceeded)
            }
            Err(EncapError::Wire(_)) => {
                self.stats.intercept_malformed += 1;
                Intercept::Drop(InterceptDrop::Malformed)
            }
        }
    }

    /// An IPv6-in-IPv6 packet received (raw socket, protocol 41): a reverse-tunnelled
    /// packet from a mobile node (forwarded after the RFC 6275 §10.4.5 check that the
    /// outer source is the registered care-of address of the inner source), or a
    /// tunnelled Binding Update ([`Signalling::Tunnelled`]).
    pub fn handle_tunnelled(&mut self, now: Instant, packet: &[u8]) -> Reverse {
        let Ok(d) = tunnel::decapsulate(packet) else {
            self.stats.reverse_malformed += 1;
            return Reverse::Drop(ReverseDrop::Malformed);
        };
        let inner = &packet[d.inner.clone()];
        // decapsulate() checked the inner header.
        let ip = ipv6::Packet::new_unchecked(inner);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if dst == self.config.address
            && let Ok(p) = packet::parse_mh_packet(inner)
        {
            // A tunnelled Binding Update: the care-of address is the outer source, the
            // home address the inner source (both covered by the authenticator).
            let (ps, pd) = p.pseudo_header();
            let mh = &inner[p.mh.clone()];
            let view = Packet::new_unchecked(mh);
            match Repr::parse(&view, &ps, &pd) {
                Ok(Repr {
                    message: Message::BindingUpdate(bu),
                    ..
                }) => {
                    let coa = bu.alternate_coa().unwrap_or(d.outer_src);
                    self.process_bu(
                        now,
                        BuInput {
                            mh,
                            bu,
                            hoa: src,
                            coa,
                            reply_to: d.outer_src,
                            signalling: Signalling::Tunnelled,
                        },
                    );
                }
                Ok(_) => self.stats.mh_unexpected += 1,
                Err(Error::Unrecognized { .. }) => {
                    self.stats.mh_unknown_type += 1;
                    self.send_binding_error(now, d.outer_src, None);
                }
                Err(_) => self.stats.mh_malformed += 1,
            }
            return Reverse::Consumed;
        }
        match self.cache.get(&src) {
            Some(b) if b.state == EntryState::Active => {
                if b.care_of_address != d.outer_src {
                    // RFC 6275 §10.4.5: the outer source MUST be the primary CoA.
                    self.stats.reverse_wrong_care_of += 1;
                    return Reverse::Drop(ReverseDrop::WrongCareOf);
                }
                self.stats.tunnelled_in += 1;
                Reverse::Forward(d.inner)
            }
            _ => {
                self.stats.reverse_no_binding += 1;
                Reverse::Drop(ReverseDrop::NoBinding)
            }
        }
    }
}
