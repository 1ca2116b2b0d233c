//! **The seam where the protocol core plugs in.**
//!
//! The daemon shell (data plane, routing, control interface, service loop) is complete
//! without a Shim6 protocol core: it then forwards what enters the TUN unchanged through
//! the marked raw socket, drops (and counts) what arrives for protocol 140, and answers
//! running". The adapter for the sans-IO `shim6_proto::Endpoint` is
//! [`crate::proto_core::ProtoCore`]; `main` builds it when the configuration names an
//! identity and hands it over as `Resources::core` ([`crate::service::Resources`]).
//!
//! # The contract (style.md "The `Endpoint` contract", in the shell's terms)
//!
//! - **Handlers** ([`ProtocolCore::outbound`], [`ProtocolCore::inbound`],
//!   [`ProtocolCore::handle_timeout`], [`ProtocolCore::local_locators`]) and **commands**
//!   ([`ProtocolCore::command`]) each take the loop's single `now` for this turn. Time
//!   never goes backwards.
//! - After any handler or command the shell drains, in this order,
//!   [`ProtocolCore::poll_transmit`] (packets to send through the marked raw socket),
//!   [`ProtocolCore::poll_event`] (routing changes, path changes), then re-reads
//!   [`ProtocolCore::poll_timeout`] (which takes `&mut self`: the endpoint prunes its
//!   timer heap lazily there).
//! - Buffers belong to the shell ([`PacketBuf`], boringtun's habit): the core rewrites in
//!   place, using the headroom in front of the packet to insert the 8-octet payload
//!   extension header (RFC 5533 §5.1) or to rebuild an IPv6 header on the inbound side.
//!
//! # What the adapter for `shim6_proto::Endpoint` does
//!
//! - `outbound`: find the context by ULID pair; no context → `PassThrough` (and feed the
//!   trigger heuristic); locators = ULIDs → `PassThrough` after noting "sent" for REAP;
//!   otherwise rewrite to the current locator pair with the payload header → `Send`.
//! - `inbound`: the raw socket delivers from the Shim6 header on, with [`RecvMeta`]
//!   giving source, destination, interface, hop limit and traffic class. Payload
//!   (P bit 1) → restore the ULIDs, drop the 8 octets, rebuild the IPv6 header in the
//!   headroom → `DeliverToTun`; control (P bit 0) → `Consumed` (replies are queued for
//!   `poll_transmit`).
//! - `poll_event`: [`CoreEvent::RouteAdd`] when a context is established with a peer
//!   ULID (from then on the flow enters the TUN), [`CoreEvent::RouteRemove`] when it
//!   is closed, [`CoreEvent::ContextUp`] / [`CoreEvent::ContextDown`] per ULID pair
//!   (inbound visibility), [`CoreEvent::PathChanged`] when REAP moved a context to
//!   another pair.
//! - `peer_activity`: traffic from the peer that reached the application without
//!   crossing the daemon (architecture hazard 2), reported so REAP's Send timer knows.
//!
//! # Hooks for the modules that plug in next
//!
//! - **visibility** (hazard 2, wired): the service loop registers each pair of
//!   [`CoreEvent::ContextUp`] with [`crate::visibility::Visibility`], polls it, and
//!   calls [`ProtocolCore::peer_activity`] for each ULID pair that saw traffic.
//! - **trigger** (wired): its decisions become [`crate::control::Command::Establish`]
//!   through [`ProtocolCore::command`]; [`CoreEvent::ContextUp`],
//!   [`CoreEvent::ContextDown`] and [`CoreEvent::EstablishFailed`] keep its bookkeeping.
//! - **resend** (hazard 6, wired): inside the adapter, on the endpoint's path change.
//! - **mtu** (wired): the data-plane engine answers a packet the core rewrote beyond
//!   the path MTU with an ICMPv6 Packet Too Big into the TUN.
//! - `command`: `ls`, `cat`, `rm`, `establish`, `explore`, `set tsend`, and the
//!   context part of `stats`, `locators`, `params`.

use std::{net::Ipv6Addr, time::Instant};

use crate::{
    control::{Command, CommandError, Reply},
    dataplane::{PacketBuf, RecvMeta},
};

/// What to do with a packet read from the TUN.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outbound {
    /// The buffer was rewritten in place (locators, payload header): send it.
    Send,
    /// No context, or locators equal the ULIDs: send it unchanged.
    PassThrough,
    /// Drop it, for this reason (counted in `stats`).
    Drop(&'static str),
}

/// What to do with a datagram read from the protocol-140 socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Inbound {
    /// The buffer now holds a complete IPv6 packet with the ULIDs: write it to the TUN.
    DeliverToTun,
    /// A control message, handled; replies wait in `poll_transmit`.
    Consumed,
    /// Drop it, for this reason (counted in `stats`).
    Drop(&'static str),
}

/// Requests from the core to the shell.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CoreEvent {
    /// Route the peer ULID into the TUN (a context now protects it).
    RouteAdd(Ipv6Addr),
    /// Stop routing the peer ULID into the TUN.
    RouteRemove(Ipv6Addr),
    /// A context on these ULIDs reached ESTABLISHED: the shell starts noting the
    /// peer's packets that bypass the daemon (architecture hazard 2,
    /// [`crate::visibility`]).
    ContextUp {
        /// ULID(local).
        ulid_local: Ipv6Addr,
        /// ULID(peer).
        ulid_peer: Ipv6Addr,
    },
    /// The established context on these ULIDs is closed: the shell stops noting its
    /// packets.
    ContextDown {
        /// ULID(local).
        ulid_local: Ipv6Addr,
        /// ULID(peer).
        ulid_peer: Ipv6Addr,
    },
    /// Establishing a context on these ULIDs failed (RFC 5533 §7.5, §7.6: E-FAILED,
    /// NO-SUPPORT): the trigger does not retry the pair for a while.
    EstablishFailed {
        /// ULID(local).
        ulid_local: Ipv6Addr,
        /// ULID(peer).
        ulid_peer: Ipv6Addr,
    },
    /// With `[mptcp] enabled`: the peer's verified locators (RFC 5535 / RFC 3972 checks
    /// passed; the ULID counts as verified) and ours, for the MPTCP path manager
    /// ([`crate::mptcp`]). Sent on ESTABLISHED and whenever either set changes.
    PeerLocators(crate::mptcp::policy::PeerView),
    /// With `[mptcp] enabled`: REAP found this pair of the peer's context dead (RFC
    /// 5534 §4.2).
    PathFailed {
        /// ULID(peer).
        ulid_peer: Ipv6Addr,
        /// The pair.
        pair: reap::Pair,
    },
    /// With `[mptcp] enabled`: a probe showed this pair working (RFC 5534 §4.3).
    PathUsable {
        /// ULID(peer).
        ulid_peer: Ipv6Addr,
        /// The pair.
        pair: reap::Pair,
    },
    /// REAP moved the context of these ULIDs to another locator pair (RFC 5534 §4.2:
    /// the upper layer SHOULD be informed). The adapter has re-sent the TCP segments
    /// sent into the failure by then ([`crate::resend`]).
    PathChanged {
        /// ULID(local).
        ulid_local: Ipv6Addr,
        /// ULID(peer).
        ulid_peer: Ipv6Addr,
    },
}

/// The Shim6 protocol core as the daemon shell drives it. See the module docs for the
/// calling order.
pub trait ProtocolCore: Send {
    /// A packet read from the TUN (a complete IPv6 packet with the ULIDs).
    fn outbound(&mut self, now: Instant, packet: &mut PacketBuf) -> Outbound;

    /// A datagram read from the protocol-140 raw socket (from the Shim6 header on).
    fn inbound(&mut self, now: Instant, packet: &mut PacketBuf, meta: &RecvMeta) -> Inbound;

    /// An ICMPv6 error message read from the raw ICMPv6 socket (from the ICMPv6 header
    /// on; types 1–4 only). The default drops it (a core that does not use them).
    fn inbound_icmp(&mut self, now: Instant, packet: &mut PacketBuf, meta: &RecvMeta) -> Inbound {
        let _ = (now, packet, meta);
        Inbound::Drop("icmp_unused")
    }

    /// Writes the next packet to send (a complete IPv6 packet) into `buf`; `false` when
    /// there is none.
    fn poll_transmit(&mut self, now: Instant, buf: &mut PacketBuf) -> bool;

    /// The next routing change the shell must make.
    fn poll_event(&mut self) -> Option<CoreEvent>;

    /// When [`ProtocolCore::handle_timeout`] is due next.
    fn poll_timeout(&mut self) -> Option<Instant>;

    /// The clock passed the deadline of [`ProtocolCore::poll_timeout`].
    fn handle_timeout(&mut self, now: Instant);

    /// The local locator set changed (address monitor); `locators` is the whole new set.
    fn local_locators(&mut self, now: Instant, locators: &[Ipv6Addr]);

    /// Traffic from `ulid_peer` to `ulid_local` reached the application without
    /// passing through the daemon (no payload header: the kernel delivered it). The
    /// default ignores it (a core without REAP).
    fn peer_activity(&mut self, now: Instant, ulid_local: Ipv6Addr, ulid_peer: Ipv6Addr) {
        let _ = (now, ulid_local, ulid_peer);
    }

    /// `addr` must not carry Shim6 traffic although it is still configured: a trusted
    /// local failure hint (RFC 5534 §3.2), so that pairs using it leave REAP's candidate
    /// set and a context whose current pair uses it explores to the others. MipShim6
    /// route optimisation sends it for the home addresses (issue 7): traffic leaves the
    /// home agent's tunnel for a care-of address pair once REAP's probes confirm one. The
    /// default ignores it (a core without REAP).
    fn local_address_down(&mut self, now: Instant, addr: Ipv6Addr) {
        let _ = (now, addr);
    }

    /// A control command about contexts (`ls`, `cat`, `rm`, `establish`, `explore`,
    /// `set tsend`), or the core's part of `stats` / `locators` / `params` (the shell
    /// merges it into its own answer under the key `core`).
    fn command(&mut self, now: Instant, command: &Command) -> Result<Reply, CommandError>;
}
