//! The [`Endpoint`]: the context table, the A/B/C/D contract, the control-message
//! dispatcher and the shared plumbing (sending, timers, indexes, rate limits).
//!
//! The per-procedure handlers live next door as further `impl Endpoint` blocks:
//! [`handshake`](crate::handshake), [`recovery`](crate::recovery),
//! [`update`](crate::update), [`datapath`](crate::datapath) and
//! [`reap_glue`](crate::reap_glue).

use core::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::Ipv6Addr;
use std::ops::Range;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use shim6_wire::ipv6::{self, chain::Walker, proto, shim};
use shim6_wire::shim6::control::Packet as ControlPacket;
use shim6_wire::shim6::error_message::{ErrorCode, ErrorMessage};
use shim6_wire::shim6::option::{OptionType, Repr as OptionRepr};
use shim6_wire::shim6::{ContextTag, Message, MessageType};

use crate::config::{Config, HOP_LIMIT, RateLimit};
use crate::context::{Context, ContextInfo, ContextKey, State};
use crate::error::{ApiMisuse, DropReason, Error, PeerIncompatible, PeerMisbehaved};
use crate::locators::{LocalIdentity, LocalUlid};
use crate::stats::Stats;
use crate::validator::Validators;

/// A control message to send, pulled with [`Endpoint::poll_transmit`]: a complete IPv6
/// packet (40-octet header, Next Header 140, the Shim6 message), at most 1280 octets
/// (RFC 5533 §5.1). The shell writes it to an `IPPROTO_RAW` socket as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Source locator.
    pub src: Ipv6Addr,
    /// Destination locator.
    pub dst: Ipv6Addr,
    /// The message type, for logs and tests.
    pub message_type: MessageType,
    /// The IPv6 packet.
    pub packet: Vec<u8>,
}

/// What [`Endpoint::handle_outbound`] decided about a packet from the TUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Rewritten in place (locators + payload extension header): send `buf[packet]`
    /// through the raw socket.
    Send(Sent),
    /// No context, or the context sends on the ULIDs: send the packet unchanged.
    PassThrough,
    /// Do not send.
    Drop(DropReason),
}

/// A rewritten outbound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Where the packet now is in the caller's buffer.
    pub packet: Range<usize>,
    /// Its source locator.
    pub src: Ipv6Addr,
    /// Its destination locator.
    pub dst: Ipv6Addr,
}

/// What [`Endpoint::handle_inbound`] did with a packet from the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Restored in place to the ULIDs (payload header removed, or an `ICMPv6` error
    /// translated): write `buf[range]` to the TUN.
    DeliverToTun(Range<usize>),
    /// A control message (or an ICMP error the shim acted on): replies, if any, wait in
    /// [`Endpoint::poll_transmit`].
    Consumed,
    /// Silently discarded (counted in [`Stats::drops`]).
    Drop(DropReason),
}

/// Why a context went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// [`Endpoint::close`].
    Api,
    /// Quiescent for the teardown time (RFC 5533 §7.20).
    Idle,
    /// Context confusion: the peer reused its tag for another context (RFC 5533 §7.6).
    Confusion,
}

/// Something the daemon (and the MPTCP path manager) should know, pulled with
/// [`Endpoint::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A context reached ESTABLISHED (`recovered`: through I2bis, RFC 5533 §7.18).
    Established {
        /// CT(local).
        tag: ContextTag,
        /// ULIDs and FII.
        key: ContextKey,
        /// Whether this re-established a context the peer had lost.
        recovered: bool,
    },
    /// Establishment failed: E-FAILED (no answer) or NO-SUPPORT (ICMP), RFC 5533 §7.5,
    /// §7.6. Payload for these ULIDs stays untouched.
    Failed {
        /// ULIDs and FII.
        key: ContextKey,
        /// [`State::EFailed`] or [`State::NoSupport`].
        state: State,
    },
    /// The peer's verified locator set or preferences changed.
    PeerLocatorsChanged {
        /// CT(local).
        tag: ContextTag,
    },
    /// Our Update Request was acknowledged (RFC 5533 §10.5).
    UpdateAcknowledged {
        /// CT(local).
        tag: ContextTag,
    },
    /// REAP moved payload to another locator pair (RFC 5534 §4.2).
    PathChanged {
        /// CT(local).
        tag: ContextTag,
        /// Previous pair.
        from: reap::Pair,
        /// New pair.
        to: reap::Pair,
    },
    /// REAP suspects the current pair (RFC 5534 §6).
    PathFailed {
        /// CT(local).
        tag: ContextTag,
        /// The suspected pair.
        pair: reap::Pair,
        /// Why.
        cause: reap::FailureCause,
    },
    /// REAP proved a pair works (RFC 5534 §5.2).
    PathUsable {
        /// CT(local).
        tag: ContextTag,
        /// The pair.
        pair: reap::Pair,
    },
    /// REAP gave up probing the peer (RFC 5534 §4.3).
    PeerUnreachable {
        /// CT(local).
        tag: ContextTag,
    },
    /// A context was removed.
    Closed {
        /// CT(local).
        tag: ContextTag,
        /// ULIDs and FII.
        key: ContextKey,
        /// Why.
        reason: CloseReason,
    },
    /// The peer sent an Error message (RFC 5533 §5.14).
    PeerError {
        /// The context it is about, when it could be matched.
        tag: Option<ContextTag>,
        /// The code.
        code: ErrorCode,
    },
}

/// Run-time policy ([`Endpoint::set_policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Answer I1/I2/I2bis from peers (act as responder). When false, incoming handshakes
    /// are dropped and the peer ends up in E-FAILED for us.
    pub accept_incoming: bool,
    /// Idle time before teardown (RFC 5533 §7.20).
    pub teardown_idle: Duration,
}

/// A token bucket (R1bis and Error rate limits, digest §7.12).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    shape: RateLimit,
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    fn new(shape: RateLimit) -> Self {
        Self {
            shape,
            tokens: shape.burst,
            last: None,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.shape.per_second).min(self.shape.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A received control message with where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rx<'a> {
    pub now: Instant,
    /// IPv6 source (the peer's locator).
    pub src: Ipv6Addr,
    /// IPv6 destination (our locator).
    pub dst: Ipv6Addr,
    /// The whole invoking packet from its IPv6 header (for Error messages).
    pub packet: &'a [u8],
    /// Offset of the Shim6 header in `packet`.
    pub shim_offset: usize,
}

impl Rx<'_> {
    /// Offset from the IPv6 header of the first option of type `ty`, for Error Pointers
    /// (digest §7.11: counted from the invoking packet's IPv6 header).
    pub fn option_offset(&self, ty: OptionType) -> usize {
        let Ok(p) = ControlPacket::new_checked(&self.packet[self.shim_offset..]) else {
            return self.shim_offset;
        };
        p.options()
            .flatten()
            .find(|o| o.option_type == ty)
            .map_or(self.shim_offset, |o| self.shim_offset + o.offset)
    }
}

/// The sans-IO Shim6 endpoint: every context of this host (RFC 5533).
///
/// # Contract (after quinn's `Connection`)
///
/// - **A. Getters**: [`contexts`](Self::contexts), [`stats`](Self::stats),
///   [`context`](Self::context), [`find`](Self::find).
/// - **B. Handlers**: [`handle_outbound`](Self::handle_outbound) (a packet from the TUN),
///   [`handle_inbound`](Self::handle_inbound) (a packet from the network),
///   [`handle_timeout`](Self::handle_timeout), [`handle_local_locators`](Self::handle_local_locators),
///   plus [`note_peer_activity`](Self::note_peer_activity) and [`handle_hint`](Self::handle_hint).
/// - **C. Commands**: [`establish`](Self::establish), [`fork`](Self::fork),
///   [`close`](Self::close), [`set_policy`](Self::set_policy).
/// - **D. Pollers**: [`poll_transmit`](Self::poll_transmit),
///   [`poll_timeout`](Self::poll_timeout), [`poll_event`](Self::poll_event).
///
/// After any B or C call the caller drains D in that order: every transmit until
/// `None`, then re-reads the timeout, then every event. The `now` passed in must never
/// go backwards; an earlier instant is treated as the latest one seen. The endpoint never
/// reads the clock and never draws OS randomness: `Config::rng_seed` seeds everything.
#[derive(Debug)]
pub struct Endpoint {
    pub(crate) config: Config,
    pub(crate) policy: Policy,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) identity: LocalIdentity,
    pub(crate) validators: Validators,
    /// Boxed: a context is about 1.5 KB inline (REAP included), and a map of inline
    /// values reserves that much per empty slot too.
    pub(crate) contexts: HashMap<ContextTag, Box<Context>>,
    pub(crate) by_key: HashMap<ContextKey, ContextTag>,
    pub(crate) by_nonce: HashMap<u32, ContextTag>,
    pub(crate) by_peer_tag: HashMap<ContextTag, Vec<ContextTag>>,
    timers: BinaryHeap<Reverse<(Instant, ContextTag)>>,
    armed: HashMap<ContextTag, Instant>,
    transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    r1bis_bucket: Bucket,
    error_bucket: Bucket,
    last_now: Instant,
}

impl Endpoint {
    /// An endpoint for our ULIDs (each with its CGA Parameters, and a key for CGA) and
    /// current locators.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`]: no seed, a bad configuration, a ULID that does not verify
    /// against its own parameters, or a signing failure.
    pub fn new(
        config: Config,
        ulids: Vec<LocalUlid>,
        locators: &[reap::Locator],
        now: Instant,
    ) -> Result<Self, Error> {
        let seed = config.validate()?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut identity = LocalIdentity::new(ulids)?;
        identity.set_locators(locators, rng.next_u32())?;
        let validators = Validators::new(now, config.validator_lifetime, &mut rng);
        Ok(Self {
            policy: Policy {
                accept_incoming: true,
                teardown_idle: config.teardown_idle,
            },
            r1bis_bucket: Bucket::new(config.r1bis_rate),
            error_bucket: Bucket::new(config.error_rate),
            config,
            rng,
            identity,
            validators,
            contexts: HashMap::new(),
            by_key: HashMap::new(),
            by_nonce: HashMap::new(),
            by_peer_tag: HashMap::new(),
            timers: BinaryHeap::new(),
            armed: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_now: now,
        })
    }

    // ------------------------------------------------------------------ A. getters

    /// Every context, as snapshots.
    pub fn contexts(&self) -> impl Iterator<Item = ContextInfo> + '_ {
        self.contexts.values().map(|c| c.info())
    }

    /// How many contexts the table holds (any state).
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }

    /// The context with CT(local) `tag`.
    pub fn context(&self, tag: ContextTag) -> Option<ContextInfo> {
        self.contexts.get(&tag).map(|c| c.info())
    }

    /// CT(local) of the context for these ULIDs and FII.
    pub fn find(&self, ulid_local: Ipv6Addr, ulid_peer: Ipv6Addr, fii: u32) -> Option<ContextTag> {
        self.by_key
            .get(&ContextKey {
                ulid_local,
                ulid_peer,
                fii,
            })
            .copied()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How many RSA signatures we have computed (only when our locators change).
    pub fn signatures_made(&self) -> u64 {
        self.identity.signatures_made()
    }

    /// The current policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The REAP instance of the context with CT(local) `tag`, when REAP runs on it: its
    /// state, timers, counters and exploration order (for the shell's `cat`).
    pub fn reap(&self, tag: ContextTag) -> Option<&reap::Reap> {
        self.contexts.get(&tag).and_then(|c| c.reap.as_ref())
    }

    // ------------------------------------------------------------------ C. commands

    /// Replaces the REAP configuration for contexts that reach ESTABLISHED from now on
    /// (the shell's `set tsend`); running REAP instances keep theirs. A non-default Send
    /// Timeout is announced to new peers in a Keepalive Timeout option (RFC 5534 §5.3).
    ///
    /// # Errors
    /// [`ApiMisuse::Config`] when the REAP configuration does not validate; nothing
    /// changes then.
    pub fn set_reap_config(&mut self, reap: reap::Config) -> Result<(), Error> {
        reap.validate()
            .map_err(|e| ApiMisuse::Config(format!("reap: {e}")))?;
        self.config.reap = reap;
        Ok(())
    }

    /// Asks REAP on one context to check its current pair now, as an ICMP error about
    /// that pair would (RFC 5534 §3.3: the current pair is probed first; if it does not
    /// answer, the exploration goes on to the other pairs). Only acts in Operational
    /// and after REAP's ICMP hold-down, like a real ICMP hint.
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownContext`]; [`ApiMisuse::Config`] when REAP does not run on
    /// the context (not ESTABLISHED, or REAP disabled).
    pub fn explore(&mut self, now: Instant, tag: ContextTag) -> Result<(), Error> {
        let now = self.advance(now);
        let Some(mut ctx) = self.take(tag) else {
            return Err(ApiMisuse::UnknownContext(tag).into());
        };
        let r = match ctx.reap.as_mut() {
            Some(r) => {
                let pair = r.current_pair();
                r.handle_hint(now, reap::Hint::Icmp(pair));
                Ok(())
            }
            None => Err(ApiMisuse::Config("REAP does not run on this context".into()).into()),
        };
        self.pump_reap(now, &mut ctx);
        self.put(ctx);
        r
    }

    /// Starts the four-way handshake for the default context (FII 0) of a ULID pair
    /// (RFC 5533 §7.5): sends I1, → I1-SENT. Returns CT(local).
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownLocalUlid`], [`ApiMisuse::ContextExists`] (any live state),
    /// [`ApiMisuse::HeldDown`] during E-FAILED, [`PeerIncompatible::NoSupport`] during
    /// NO-SUPPORT (RFC 5533 §7.5, §7.6).
    pub fn establish(
        &mut self,
        now: Instant,
        ulid_local: Ipv6Addr,
        ulid_peer: Ipv6Addr,
    ) -> Result<ContextTag, Error> {
        let now = self.advance(now);
        self.start_i1(
            now,
            ContextKey {
                ulid_local,
                ulid_peer,
                fii: 0,
            },
        )
    }

    /// Creates one more context for a ULID pair, with a fresh non-zero Forked Instance
    /// Identifier (RFC 5533 §5.15.7, §7.7: forking only affects which context *we* send
    /// with). Returns CT(local); [`ContextInfo::key`] carries the FII.
    ///
    /// # Errors
    /// As [`establish`](Self::establish).
    pub fn fork(
        &mut self,
        now: Instant,
        ulid_local: Ipv6Addr,
        ulid_peer: Ipv6Addr,
    ) -> Result<ContextTag, Error> {
        let now = self.advance(now);
        let mut fii = 1u32;
        while self.by_key.contains_key(&ContextKey {
            ulid_local,
            ulid_peer,
            fii,
        }) {
            fii += 1;
        }
        self.start_i1(
            now,
            ContextKey {
                ulid_local,
                ulid_peer,
                fii,
            },
        )
    }

    /// Tears a context down, unilaterally (RFC 5533 §7.20: no message is sent).
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownContext`].
    pub fn close(&mut self, now: Instant, tag: ContextTag) -> Result<(), Error> {
        self.advance(now);
        if self.remove_context(tag, Some(CloseReason::Api)).is_none() {
            return Err(ApiMisuse::UnknownContext(tag).into());
        }
        Ok(())
    }

    /// Replaces the run-time policy.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    // ------------------------------------------------------------------ D. pollers

    /// The next control message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next. May be early
    /// (a timer that moved later); never late.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // Drop entries that no longer describe an armed timer (lazy deletion).
        while let Some(Reverse((t, tag))) = self.timers.peek().copied() {
            if self.armed.get(&tag) == Some(&t) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------------ B. handlers

    /// Fires every timer due at `now`: retransmissions, hold-downs, Update Requests,
    /// REAP timers, teardown.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        // Collect first, then fire each due context once: a timer re-armed at or before
        // `now` waits for the next call instead of spinning here.
        let mut due = Vec::new();
        while let Some(Reverse((t, tag))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.armed.get(&tag) == Some(&t) {
                self.armed.remove(&tag);
                due.push(tag);
            }
            // Otherwise a stale entry (the timer moved): dropped.
        }
        for tag in due {
            self.context_timeout(now, tag);
            self.arm(tag);
        }
    }

    /// A packet from the network: a Shim6 control message, a packet with a payload
    /// extension header, or an `ICMPv6` error about a Shim6 packet. `buf[packet]` holds
    /// the complete IPv6 packet (the shell rebuilds the fixed header when its raw socket
    /// strips it).
    pub fn handle_inbound(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Inbound {
        let now = self.advance(now);
        let r = self.inbound(now, buf, packet);
        if let Inbound::Drop(reason) = r {
            self.stats.count_drop(reason);
        }
        r
    }

    fn inbound(&mut self, now: Instant, buf: &mut [u8], range: Range<usize>) -> Inbound {
        let Some(pkt) = buf.get(range.clone()) else {
            return Inbound::Drop(DropReason::Internal);
        };
        let Ok(ip) = ipv6::Packet::new_checked(pkt) else {
            return Inbound::Drop(DropReason::Malformed);
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        // RFC 5533 §12.3: never from or to multicast or unspecified.
        if src.is_multicast() || dst.is_multicast() || src.is_unspecified() || dst.is_unspecified()
        {
            return Inbound::Drop(DropReason::BadAddress);
        }
        match shim::locate(pkt) {
            Err(_) => Inbound::Drop(DropReason::Malformed),
            Ok(Some(shim::Shim6At::Payload(at))) => self.inbound_payload(now, buf, range, at),
            Ok(Some(shim::Shim6At::Control(h))) => {
                let total = ip.total_len().min(pkt.len());
                let rx = Rx {
                    now,
                    src,
                    dst,
                    packet: &pkt[..total],
                    shim_offset: h.offset,
                };
                // Copy out: the handlers send replies and may need `self` mutably.
                let owned = rx.packet.to_vec();
                let rx = Rx {
                    packet: &owned,
                    ..rx
                };
                match self.control(rx) {
                    Ok(()) => Inbound::Consumed,
                    Err(e) => Inbound::Drop(e.drop_reason()),
                }
            }
            Ok(None) => {
                let is_icmp = Walker::from_packet(pkt)
                    .and_then(Walker::upper)
                    .map(|u| (u.protocol == proto::ICMPV6).then_some(u.offset));
                match is_icmp {
                    Ok(Some(off)) => self.inbound_icmp(now, buf, range, off),
                    _ => Inbound::Drop(DropReason::NotShim6),
                }
            }
        }
    }

    /// The control-message path (RFC 5533 §12.3): generic checks, then per type.
    fn control(&mut self, rx: Rx<'_>) -> Result<(), Error> {
        let bytes = &rx.packet[rx.shim_offset..];
        let p = ControlPacket::new_checked(bytes)?;
        // Count before any further check, so tests see what arrived.
        self.stats.count_received(p.message_type());
        if !p.verify_checksum() {
            return Err(shim6_wire::Error::BadChecksum {
                what: "Shim6 control message",
            }
            .into());
        }
        if let MessageType::Unknown(t) = p.message_type() {
            // RFC 5533 §12.3: Error code 0, Pointer at the type octet.
            self.send_error(
                &rx,
                ErrorCode::UnknownMessageType,
                rx.shim_offset + shim6_wire::shim6::control::TYPE_OFFSET,
            );
            return Err(Error::PeerIncompatible(
                PeerIncompatible::UnknownMessageType(t),
            ));
        }
        // RFC 5533 §5.15, §12.3 (digest §7.10): an unknown critical option stops the
        // processing, and Error code 1 names it.
        if let Some(opt) = p.unrecognized_critical_option()? {
            let offset = opt.offset;
            self.send_error(
                &rx,
                ErrorCode::UnrecognizedCriticalOption,
                rx.shim_offset + offset,
            );
            return Err(Error::PeerIncompatible(
                PeerIncompatible::UnrecognizedCriticalOption { offset },
            ));
        }
        let msg = Message::parse(&p)?;
        match msg {
            Message::I1(m) => self.on_i1(rx, &m),
            Message::R1(m) => self.on_r1(rx, &m),
            Message::I2(m) => self.on_i2(rx, &m),
            Message::R2(m) => self.on_r2(rx, &m),
            Message::R1bis(m) => self.on_r1bis(rx, &m),
            Message::I2bis(m) => self.on_i2bis(rx, &m),
            Message::UpdateRequest(m) => self.on_update_request(rx, &m),
            Message::UpdateAcknowledgement(m) => self.on_update_ack(rx, &m),
            Message::Keepalive(m) => self.on_keepalive(rx, &m),
            Message::Probe(m) => self.on_probe(rx, &m),
            Message::Error(m) => {
                self.on_error(rx, &m);
                Ok(())
            }
        }
    }

    /// A peer's Error message: reported, never answered (RFC 5533 §5.14).
    fn on_error(&mut self, rx: Rx<'_>, m: &ErrorMessage) {
        // The quoted packet starts with the IPv6 header of what we sent: its Shim6
        // header's tag (octets 6..12 of a control message) is CT(peer) or our I1's tag.
        let q = &m.packet_in_error;
        // Only an Error about a packet we sent to its sender is attributed to a context:
        // quoted src = our address (its destination), quoted dst = the sender.
        let ours = q.len() >= 52 && q[8..24] == rx.dst.octets() && q[24..40] == rx.src.octets();
        let tag = (ours && q[6] == proto::SHIM6)
            .then(|| {
                let mut t = [0u8; 6];
                t.copy_from_slice(&q[46..52]);
                ContextTag::read(t)
            })
            .and_then(|t| {
                self.by_peer_tag
                    .get(&t)
                    .and_then(|v| v.first().copied())
                    .or_else(|| self.contexts.contains_key(&t).then_some(t))
            });
        self.events
            .push_back(Event::PeerError { tag, code: m.code });
    }

    // ------------------------------------------------------------------ plumbing

    /// Time never goes backwards (contract): an earlier instant counts as the latest.
    pub(crate) fn advance(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    /// Queues a control message in an IPv6 packet.
    pub(crate) fn send(&mut self, src: Ipv6Addr, dst: Ipv6Addr, msg: &Message) {
        let ty = msg.message_type();
        let Ok(body) = msg.to_vec() else {
            // Our own message over 1280 octets (a huge locator list): cannot be sent
            // (RFC 5533 §5.1). Counted; the retransmission logic carries on.
            self.stats.count_drop(DropReason::Internal);
            return;
        };
        let mut packet = vec![0u8; ipv6::HEADER_LEN + body.len()];
        ipv6::Repr {
            traffic_class: 0,
            flow_label: 0,
            payload_len: body.len() as u16,
            next_header: proto::SHIM6,
            hop_limit: HOP_LIMIT,
            src_addr: src,
            dst_addr: dst,
        }
        .emit(&mut ipv6::Packet::new_unchecked(&mut packet[..]));
        packet[ipv6::HEADER_LEN..].copy_from_slice(&body);
        self.stats.count_sent(ty);
        self.transmits.push_back(Transmit {
            src,
            dst,
            message_type: ty,
            packet,
        });
    }

    /// Sends an Error message about `rx`, rate limited (RFC 5533 §5.14, digest §7.11,
    /// §7.12).
    pub(crate) fn send_error(&mut self, rx: &Rx<'_>, code: ErrorCode, pointer: usize) {
        if !self.error_bucket.take(rx.now) {
            self.stats.errors_suppressed += 1;
            return;
        }
        let pointer = u16::try_from(pointer).unwrap_or(u16::MAX);
        let m = ErrorMessage::new(code, pointer, rx.packet, ipv6::HEADER_LEN);
        self.send(rx.dst, rx.src, &Message::Error(m));
    }

    /// Whether an R1bis may go out now (rate limit, digest §7.12).
    pub(crate) fn r1bis_allowed(&mut self, now: Instant) -> bool {
        if self.r1bis_bucket.take(now) {
            true
        } else {
            self.stats.r1bis_suppressed += 1;
            false
        }
    }

    /// A fresh CT(local), unique among our contexts (RFC 5533 §5.1, §7.5: random, 47
    /// bits, never 0 here so that an all-zero tag is always unknown).
    pub(crate) fn alloc_tag(&mut self) -> ContextTag {
        loop {
            let t = ContextTag::from_masked(self.rng.next_u64());
            if t.value() == 0 {
                continue;
            }
            if self.contexts.contains_key(&t) {
                self.stats.tag_collisions += 1;
                continue;
            }
            return t;
        }
    }

    /// A fresh Initiator Nonce, unique among contexts awaiting R1/R2 (it is their
    /// lookup key, RFC 5533 §7.12, §7.15).
    pub(crate) fn alloc_nonce(&mut self) -> u32 {
        loop {
            let n = self.rng.next_u32();
            if !self.by_nonce.contains_key(&n) {
                return n;
            }
        }
    }

    /// A per-context seed derived from the endpoint RNG (style.md, quinn).
    pub(crate) fn derive_seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    /// Inserts (or re-inserts) a context and keeps the indexes right.
    pub(crate) fn put(&mut self, ctx: Box<Context>) {
        let tag = ctx.ct_local;
        self.by_key.insert(ctx.key, tag);
        if matches!(ctx.state, State::I1Sent | State::I2Sent | State::I2bisSent) {
            self.by_nonce.insert(ctx.init_nonce, tag);
        }
        self.contexts.insert(tag, ctx);
        self.arm(tag);
    }

    /// Takes a context out of the table for processing; put it back with [`Self::put`].
    /// The indexes are left alone (they are re-pointed by `put`).
    pub(crate) fn take(&mut self, tag: ContextTag) -> Option<Box<Context>> {
        self.contexts.remove(&tag)
    }

    /// Sets CT(peer), maintaining the CT(peer) index.
    pub(crate) fn set_ct_peer(&mut self, ctx: &mut Context, new: ContextTag) {
        if ctx.ct_peer == Some(new) {
            return;
        }
        if let Some(old) = ctx.ct_peer {
            self.unindex_peer_tag(old, ctx.ct_local);
        }
        ctx.ct_peer = Some(new);
        self.by_peer_tag.entry(new).or_default().push(ctx.ct_local);
    }

    fn unindex_peer_tag(&mut self, peer: ContextTag, local: ContextTag) {
        if let Some(v) = self.by_peer_tag.get_mut(&peer) {
            v.retain(|t| *t != local);
            if v.is_empty() {
                self.by_peer_tag.remove(&peer);
            }
        }
    }

    /// Drops the init-nonce index entry of a context that no longer waits for R1/R2.
    pub(crate) fn unindex_nonce(&mut self, ctx: &Context) {
        if self.by_nonce.get(&ctx.init_nonce) == Some(&ctx.ct_local) {
            self.by_nonce.remove(&ctx.init_nonce);
        }
    }

    /// Removes a context everywhere; `reason` = `Some` emits [`Event::Closed`].
    pub(crate) fn remove_context(
        &mut self,
        tag: ContextTag,
        reason: Option<CloseReason>,
    ) -> Option<Box<Context>> {
        let ctx = self.contexts.remove(&tag)?;
        self.forget(&ctx);
        self.stats.contexts_removed += 1;
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed {
                tag,
                key: ctx.key,
                reason,
            });
        }
        Some(ctx)
    }

    /// Drops every index entry of a context that is out of the table.
    pub(crate) fn forget(&mut self, ctx: &Context) {
        if self.by_key.get(&ctx.key) == Some(&ctx.ct_local) {
            self.by_key.remove(&ctx.key);
        }
        self.unindex_nonce(ctx);
        if let Some(p) = ctx.ct_peer {
            self.unindex_peer_tag(p, ctx.ct_local);
        }
        self.armed.remove(&ctx.ct_local);
    }

    /// (Re-)arms the context's timer entry (lazy heap: pushes only when earlier).
    pub(crate) fn arm(&mut self, tag: ContextTag) {
        let Some(ctx) = self.contexts.get(&tag) else {
            self.armed.remove(&tag);
            return;
        };
        let Some(next) = ctx.next_timeout(self.policy.teardown_idle) else {
            return;
        };
        match self.armed.get(&tag) {
            Some(a) if *a <= next => {}
            _ => {
                self.armed.insert(tag, next);
                self.timers.push(Reverse((next, tag)));
            }
        }
    }

    /// The Keepalive Timeout option we must send, if any (RFC 5534 §5.3: only for a
    /// non-default Send Timeout).
    pub(crate) fn keepalive_option(&self) -> Option<OptionRepr> {
        if self.config.reap.send_timeout_is_default() {
            None
        } else {
            let s = self.config.reap.send_timeout.as_secs().clamp(1, 65535) as u16;
            Some(OptionRepr::KeepaliveTimeout(s))
        }
    }

    /// The context-confusion check (RFC 5533 §7.6, digest §1.9): any *other*
    /// ESTABLISHED or I2BIS-SENT context with the same CT(peer), an overlapping Ls(peer)
    /// and a different ULID pair or FII is stale — the peer lost it and reused the tag —
    /// and is discarded.
    pub(crate) fn confusion_check(&mut self, ctx: &Context) {
        let Some(peer_tag) = ctx.ct_peer else { return };
        let Some(others) = self.by_peer_tag.get(&peer_tag).cloned() else {
            return;
        };
        for other in others {
            if other == ctx.ct_local {
                continue;
            }
            let stale = self.contexts.get(&other).is_some_and(|o| {
                o.state.sends_payload()
                    && o.key != ctx.key
                    && o.peer_locators.iter().any(|l| ctx.peer_has(&l.addr))
            });
            if stale {
                self.stats.confusions += 1;
                self.remove_context(other, Some(CloseReason::Confusion));
            }
        }
    }

    /// A handshake message named a ULID pair: `Err` unless the receiver ULID is ours.
    pub(crate) fn check_our_ulid(&self, ulid: &Ipv6Addr) -> Result<(), Error> {
        if self.identity.is_ulid(ulid) {
            Ok(())
        } else {
            Err(PeerMisbehaved::NotOurUlid(*ulid).into())
        }
    }
}
