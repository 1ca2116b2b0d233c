//! Sans-IO Mobile IPv6 cores for MipShim6: a home agent ([`ha::HomeAgent`]) and a mobile
//! node ([`mn::MobileNode`]) (RFC 6275), with Binding Updates authenticated by the RFC 4285
//! MN-HA Mobility Message Authentication option and timestamps instead of IPsec.
//!
//! This crate does no I/O and never reads the clock: every handler takes `now`, the
//! replay-protection wall clock is anchored once at construction, and outputs are pulled
//! with `poll_transmit` / `poll_event` / `poll_timeout` (quinn's contract; style.md).
//! Packets are real bytes, built and parsed with `shim6-wire`.
//!
//! # Why not IPsec, why not ip6tnl
//! RFC 6275 protects Binding Updates with IPsec and a home agent usually tunnels with a
//! kernel device. The CI kernel has neither `CONFIG_INET6_ESP` nor `CONFIG_IPV6_TUNNEL`
//! nor `CONFIG_IPV6_MIP6` (docs/digest-errata.md), so: Binding Updates and
//! Acknowledgements carry the RFC 4285 authentication option (keys per home address and
//! SPI from configuration, [`auth`]), and the tunnel is userspace
//! (`shim6_wire::tunnel` over the daemon's TUN). On a kernel with ESP,
//! `xfrm_sys::xfrm::MobilityProtection` could protect the same messages instead.
//!
//! # Layout
//! | module | what |
//! |---|---|
//! | [`auth`] | HMAC-SHA1, the MN-HA authenticator (RFC 4285 §5.1), signing/verifying a Mobility Header, the NTP-format clock for timestamps (RFC 4285 §6) |
//! | [`packet`] | whole IPv6 packets carrying a Mobility Header (RFC 6275 encoding with Home Address option / type 2 routing header, or tunnelled), tunnel helpers |
//! | [`ha`] | the home agent: Binding Cache, BU processing, BAs, Binding Errors, interception and the two tunnel directions |
//! | [`mn`] | the mobile node: home addresses, care-of addresses, Binding Update List, retransmission, refresh, de-registration, reverse tunnelling, events for MipShim6 |
//!
//! # How to wire it into the daemon
//! Home agent role (one [`ha::HomeAgent`] per daemon):
//! - **Interception** (RFC 6275 §10.4.1): there is no real home link; route each home
//!   prefix (or each registered home address, on [`ha::HaEvent::BindingCreated`]) into
//!   the daemon's TUN. Every packet read from the TUN whose destination is a home address
//!   goes to [`ha::HomeAgent::handle_home_link_packet`], read into the buffer at offset 40
//!   so that encapsulation copies nothing. [`ha::Intercept::Tunnel`] → write
//!   `buf[range]` to an `AF_INET6`/`SOCK_RAW`/`IPPROTO_RAW` socket (header included), or
//!   back into the TUN (the kernel routes the outer header to the care-of address);
//!   `NotRegistered` → the daemon's normal path; `Drop(HopLimitExceeded)` → `ICMPv6`
//!   Time Exceeded to the source.
//! - **Reverse tunnel**: a raw socket `AF_INET6`/`SOCK_RAW`/protocol 41 receives
//!   IPv6-in-IPv6 to the home agent address (the kernel has no ip6tnl to claim it);
//!   pass the whole packet to [`ha::HomeAgent::handle_tunnelled`] (a Linux IPv6 raw
//!   socket returns only the payload: read it at offset 40 and rebuild the outer header
//!   from `recvmsg`'s source and the `IPV6_PKTINFO` destination with
//!   [`packet::write_tunnel_header`]).
//!   `Forward(range)` → write the inner packet to the TUN (the kernel forwards it to the
//!   correspondent); `Consumed` → a tunnelled Binding Update, drain `poll_transmit`.
//! - **Signalling**: a raw socket for protocol 135 receives RFC 6275-encoded BUs on
//!   kernels that pass them ([`ha::HomeAgent::handle_mh_packet`]); with the tunnelled
//!   encoding, BUs arrive on the protocol-41 socket above. [`Transmit`]s are whole IPv6
//!   packets: write them to the `IPPROTO_RAW` socket.
//! - **Timers**: sleep until [`ha::HomeAgent::poll_timeout`], then call `handle_timeout`.
//! - **Control interface** `bindings [--json]`: [`ha::HomeAgent::bindings`] and
//!   [`ha::HomeAgent::stats`].
//!
//! Mobile node role (one [`mn::MobileNode`]):
//! - **Addresses**: each netlink `RTM_NEWADDR` / `RTM_DELADDR` of a global address →
//!   [`mn::MobileNode::handle_address_added`] / `handle_address_removed`. The home
//!   addresses live on the TUN (they are the Shim6 ULIDs).
//! - **The Shim6 `Endpoint`**: its ULIDs (`LocalUlid`s) are the home addresses, with the
//!   CGA/HBA key of each; care-of addresses formed on visited prefixes should be CGAs of
//!   that key (issue 7) so that the Update Request listing them is signed. Its locator
//!   set is `care_of_addresses()` plus `registered_home_addresses()` (a home address
//!   reached through its home agent's tunnel is a locator too: that is how MipShim6
//!   rewrites the first home address to the second when the first home agent fails,
//!   with the ULID unchanged).
//! - **Events**: [`mn::MnEvent::CareOfAddressesChanged`], `Registered`,
//!   `HomeAgentUnreachable`, `HomeAgentReachable`, `BindingExpired`, `Deregistered` →
//!   recompute that locator set and call `Endpoint::handle_local_locators(now, ..)`
//!   (converted to `reap::Locator`s): the endpoint sends an Update Request to every peer,
//!   and a removed current locator (the home address of an unreachable home agent)
//!   makes REAP explore to the other ones (RFC 5534 §3.2).
//! - **Outbound traffic** through a home agent: a packet from the TUN that no Shim6
//!   context rewrites (a new exchange) keeps the home address as source; a packet the
//!   `Endpoint` sends with a home address as *locator* (`Outbound::Send`) too. Both go to
//!   [`mn::MobileNode::handle_outbound`]; `Tunnel(range)` → send `buf[range]` through
//!   the `IPPROTO_RAW` socket; `NotHome` → send as the endpoint said.
//! - **Inbound**: the protocol-41 raw socket → [`mn::MobileNode::handle_tunnelled`];
//!   `Deliver(range)` → write the inner packet to the TUN (to the Shim6 path first if it
//!   carries a Shim6 header); protocol-135 raw socket → `handle_mh_packet`.
//! - **Timers** as above; **control interface** `bul [--json]`:
//!   [`mn::MobileNode::binding_update_list`].
//!
//! # Choices and limits
//! - **Replay protection uses both** the RFC 6275 §9.5.1 sequence window and, when the
//!   BU carries one, the RFC 4285 §6 timestamp (checked first, after authentication).
//!   RFC 4285 §7 says the sequence number is "not used" with timestamps; keeping it costs
//!   nothing (the node adopts the home agent's number on status 135) and orders BUs sent
//!   within the timestamp tolerance. The last accepted timestamp per home address
//!   outlives the Binding Cache entry (RFC 4285 App. A), so a recorded BU cannot
//!   re-create an expired binding.
//! - **Tunnelled signalling is the default** ([`packet::Signalling`]): the CI kernel
//!   drops packets with a Home Address option or a type 2 routing header before a raw
//!   socket sees them. The RFC 6275 encoding is implemented and tested too.
//! - No home link: duplicate address detection and proxy Neighbor Advertisements
//!   (RFC 6275 §10.3.1, §10.4.1) are replaced by a route into the TUN, so status 134 is
//!   never sent. The K bit is always 0 (no IKE). Correspondent registrations (H = 0) get
//!   131 or 139. Binding Error status 1 is never sent (no route-optimised traffic reaches
//!   the home agent). Relaying ICMP errors from inside the tunnel (RFC 2473 §8) is left to
//!   the daemon. A mobile node is always "away" (its home addresses live on the TUN), so
//!   returning home (RFC 6275 §11.5.5) is not modelled.
//! - NTP timestamps are derived from `Instant` at nanosecond resolution; RFC 4285 §6's
//!   SHOULD about filling unavailable fraction bits with randomness is not applied (the
//!   low two bits are deterministic).
//! - After a BA 146 that *verifies* the mobile node stops (RFC 4285 §5.3 SHOULD); a BA 146
//!   signed with another key does not verify and is dropped, so the node keeps
//!   retransmitting and reports the home agent unreachable.
//!
//! # Tests
//! Per-rule tests of both cores and a deterministic simulator (`src/sim.rs`: virtual
//! time, real bytes through `shim6-wire`; a mobile node, two home agents, a
//! correspondent that echoes UDP, an attacker): registration, traffic through the tunnel
//! both ways, movement between two visited networks, forged BUs (wrong key, replayed
//! capture, another node's key, no option) rejected and counted with the binding
//! unchanged, home-agent failure detected while the other home survives, lost BUs. The
//! authenticator vectors come from `tests/vectors/gen_auth_vectors.py` (Python
//! `hmac`/`hashlib`, written from the RFC figures, independent of this code).

pub mod auth;
pub mod ha;
pub mod mn;
pub mod packet;

#[cfg(test)]
mod sim;

/// The epoch of a test's virtual time. Only its differences matter; the cores never read
/// the clock themselves.
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the one place tests pick an arbitrary epoch
pub(crate) fn epoch() -> std::time::Instant {
    std::time::Instant::now()
}

use std::net::Ipv6Addr;

/// A packet to send: a whole IPv6 packet (for an `IPPROTO_RAW` socket) and its
/// destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The (outer) IPv6 destination.
    pub dst: Ipv6Addr,
    /// The packet, IPv6 header included.
    pub packet: Vec<u8>,
}

/// An IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The address (bits past `len` are ignored).
    pub addr: Ipv6Addr,
    /// The length, 0–128.
    pub len: u8,
}

impl Prefix {
    /// A prefix; the length is capped at 128.
    pub fn new(addr: Ipv6Addr, len: u8) -> Self {
        Self {
            addr,
            len: len.min(128),
        }
    }

    /// Whether `a` lies in the prefix.
    pub fn contains(&self, a: &Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.len))
            .unwrap_or(0);
        (u128::from(*a) & mask) == (u128::from(self.addr) & mask)
    }
}

/// Whether `a` can be a home or care-of address: unicast and routable (not unspecified,
/// loopback, multicast or link-local; RFC 6275 §9.5.1, §11.5.4).
pub fn is_unicast_routable(a: &Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_unicast_link_local())
}

/// Whether sequence number `a` is greater than `b` modulo 2^16 (RFC 6275 §9.5.1): `a` is
/// greater when it lies in the 32768 values after `b`; the window ending at and including
/// `b` counts as "not greater".
pub fn seq_greater(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seq_window_edges() {
        // RFC 6275 §9.5.1 example: stored 15 -> 0..=15 and 32783..=65535 are stale.
        for a in 0..=15u16 {
            assert!(!seq_greater(a, 15), "{a}");
        }
        for a in 32783..=65535u16 {
            assert!(!seq_greater(a, 15), "{a}");
        }
        for a in 16..=32782u16 {
            assert!(seq_greater(a, 15), "{a}");
        }
        // Wrap-around.
        assert!(seq_greater(0, 65535));
        assert!(seq_greater(32766, 65535));
        assert!(!seq_greater(32767, 65535));
    }

    #[test]
    fn prefix_contains() {
        let p = Prefix::new("2001:db8:1::".parse().unwrap(), 64);
        assert!(p.contains(&"2001:db8:1::100".parse().unwrap()));
        assert!(!p.contains(&"2001:db8:2::100".parse().unwrap()));
        assert!(Prefix::new(Ipv6Addr::UNSPECIFIED, 0).contains(&Ipv6Addr::LOCALHOST));
        let h = Prefix::new("2001:db8::1".parse().unwrap(), 128);
        assert!(h.contains(&"2001:db8::1".parse().unwrap()));
        assert!(!h.contains(&"2001:db8::2".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn seq_greater_is_antisymmetric(a: u16, b: u16) {
            prop_assert!(!(seq_greater(a, b) && seq_greater(b, a)));
            if a != b && a.wrapping_sub(b) != 0x8000 {
                prop_assert!(seq_greater(a, b) || seq_greater(b, a));
            }
        }
    }
}
