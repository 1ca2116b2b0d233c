//! MTU (architecture hazard 4): the 8-octet payload extension header (RFC 5533 §5.1)
//! must never push a rewritten packet past the path MTU.
//!
//! Three layers, from cheapest to last resort:
//!
//! 1. **TUN MTU** ([`tun_mtu`]): the smallest MTU of the links that carry locators,
//!    minus 8. Applications' packets routed into the TUN are then small enough to take
//!    the payload header on any of those links; TCP learns it at once because the route
//!    into the TUN carries the device MTU.
//! 2. **MSS clamp** ([`MssClamp`]): TCP SYNs leaving through the TUN get their MSS
//!    option set to what the route allows (`tcp option maxseg size set rt mtu`), so the
//!    *peer* never sends segments too large to come back with a payload header either;
//!    the route MTU follows the Packet Too Big messages of layer 3 (the kernel keeps
//!    them as a PMTU exception on the route). Or a fixed value ([`Mss::Fixed`]).
//! 3. **Packet Too Big** ([`packet_too_big`]): a packet that still does not fit (a
//!    flow that started before its context existed, with a larger MSS; UDP; a path whose
//!    MTU is smaller than the links') is dropped and answered with an ICMPv6 Packet Too
//!    Big (RFC 4443 §3.2) written **to the TUN**, as if from the peer, reporting the path
//!    MTU minus 8 (digest §1.13): the local kernel lowers the PMTU of the ULID route and
//!    the application's next packets fit (the netns test `netns_aux_mtu` shows the
//!    kernel taking it: the next datagram comes out of the TUN fragmented to the MTU).
//!
//! A path MTU below 1288 cannot be fixed this way: IPv6 never goes below 1280 (RFC 8200
//! §5, RFC 8201 §4), so [`ptb_mtu`] reports 1280 and the 1288-octet rewritten packet
//! would have to be fragmented by the daemon (not done; such packets are dropped).
//!
//! # How to wire it (service loop and `Endpoint` adapter)
//!
//! 1. At start-up, before creating the TUN: `tun_mtu(mtus of the locator interfaces)`
//!    (from the address monitor's links) when `[tun] mtu` is left at its default, or
//!    keep the configured value (it is then an upper bound the operator chose).
//! 2. After the TUN exists: `let clamp = MssClamp::install(DEFAULT_TABLE,
//!    &config.tun.name, Mss::Route)?;` and `clamp.delete()` at shutdown (best effort on
//!    `Drop`).
//! 3. Outbound, in the loop: the core rewrites in place, so decide on the ULID-form
//!    packet. `path_mtu` is the MTU of the link the current locators leave by (the
//!    smallest locator-link MTU is a safe stand-in), lowered by an `EMSGSIZE` from the
//!    raw socket. Before `core.outbound`, if `buf.packet().len() > ptb_mtu(path_mtu)`
//!    keep a copy; if the core then answers `Outbound::Send` (rewritten, 8 octets
//!    longer) and `too_big(buf.packet().len(), path_mtu)`, do not send: write
//!    `out[..packet_too_big(&copy, ptb_mtu(path_mtu), &mut out)?]` to the TUN and count
//!    a drop `too_big`. `PassThrough` packets are the kernel's business as usual.
//! 4. ICMPv6 Packet Too Big from the network quoting a rewritten packet is the core's
//!    (translated back with MTU − 8, `shim6_wire::ipv6::icmp::translate_quoted`).

use std::net::Ipv6Addr;

use shim6_wire::{
    checksum,
    ipv6::{
        self, HEADER_LEN,
        chain::{Step, Walker},
        icmp::{self, HEADER_LEN_ICMP, TYPE_PACKET_TOO_BIG},
    },
};

use crate::{
    config::{IPV6_MIN_MTU, PAYLOAD_HEADER_LEN},
    trigger::nft::{self, OwnedTable},
};

/// The default table of the MSS clamp.
pub const DEFAULT_TABLE: &str = "shim6d_mss";

/// RFC 9293 §3.7.1: the MSS excludes the 20-octet TCP header; with the 40-octet IPv6
/// header (RFC 8200 §3), MSS = MTU − 60.
pub const TCP_IPV6_OVERHEAD: u32 = 60;

/// The TUN MTU for links of these MTUs: the smallest minus the payload extension
/// header (RFC 5533 §5.1), never below 1280 (RFC 8200 §5). `None` without links.
pub fn tun_mtu(link_mtus: impl IntoIterator<Item = u32>) -> Option<u32> {
    link_mtus
        .into_iter()
        .min()
        .map(|m| m.saturating_sub(PAYLOAD_HEADER_LEN).max(IPV6_MIN_MTU))
}

/// The MTU to report to the application when the path carrying rewritten packets has
/// MTU `path_mtu`: 8 less (digest §1.13), never below 1280 (RFC 8201 §4: a PMTU below
/// the IPv6 minimum is not used).
pub fn ptb_mtu(path_mtu: u32) -> u32 {
    path_mtu
        .saturating_sub(PAYLOAD_HEADER_LEN)
        .max(IPV6_MIN_MTU)
}

/// Whether a rewritten packet of `len` octets exceeds a path MTU of `path_mtu`.
pub fn too_big(len: usize, path_mtu: u32) -> bool {
    u64::try_from(len).unwrap_or(u64::MAX) > u64::from(path_mtu)
}

/// The TCP MSS that fits an MTU (RFC 9293 §3.7.1, IPv6 without extension headers).
pub fn mss_for_mtu(mtu: u32) -> u16 {
    u16::try_from(mtu.saturating_sub(TCP_IPV6_OVERHEAD)).unwrap_or(u16::MAX)
}

/// Why no Packet Too Big was built.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PtbError {
    /// The packet is not an IPv6 packet with a full fixed header.
    #[error("not an IPv6 packet")]
    NotIpv6,
    /// RFC 4443 §2.4 (e.1): never an error about an `ICMPv6` error message.
    #[error("the packet is an ICMPv6 error message (RFC 4443 §2.4 e.1)")]
    AboutIcmpError,
    /// RFC 4443 §2.4 (e.6): the source does not identify a single node.
    #[error("the packet's source {0} is not a unicast address (RFC 4443 §2.4 e.6)")]
    BadSource(Ipv6Addr),
    /// The output buffer is smaller than the message.
    #[error("output buffer of {available} octets, {needed} needed")]
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
}

/// Writes into `out` an IPv6 packet carrying an `ICMPv6` Packet Too Big (RFC 4443 §3.2)
/// about `original` (a packet the local application sent, read from the TUN), reporting
/// `mtu`, and returns its length.
///
/// The message goes from `original`'s destination (the peer's ULID: it is written into
/// the TUN, where packets from the peer come from) to its source, quoting as much of
/// `original` as fits in 1280 octets (RFC 4443 §2.4 c), with the checksum over the
/// pseudo-header (RFC 4443 §2.3). Hop limit 255, as for ND, so no local filter mistakes
/// it for a forwarded packet.
pub fn packet_too_big(original: &[u8], mtu: u32, out: &mut [u8]) -> Result<usize, PtbError> {
    let orig = ipv6::Packet::new_checked(original).map_err(|_| PtbError::NotIpv6)?;
    if orig.version() != 6 {
        return Err(PtbError::NotIpv6);
    }
    let (src, dst) = (orig.src_addr(), orig.dst_addr());
    if src.is_unspecified() || src.is_multicast() {
        return Err(PtbError::BadSource(src));
    }
    if is_icmp_error(original) {
        return Err(PtbError::AboutIcmpError);
    }
    let room = IPV6_MIN_MTU as usize - HEADER_LEN - HEADER_LEN_ICMP;
    let quoted = original.len().min(room);
    let icmp_len = HEADER_LEN_ICMP + quoted;
    let total = HEADER_LEN + icmp_len;
    if out.len() < total {
        return Err(PtbError::BufferTooSmall {
            needed: total,
            available: out.len(),
        });
    }
    let out = &mut out[..total];
    ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        // `quoted` ≤ 1232, so the payload length fits.
        payload_len: u16::try_from(icmp_len).unwrap_or(u16::MAX),
        next_header: ipv6::proto::ICMPV6,
        hop_limit: 255,
        src_addr: dst,
        dst_addr: src,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut *out));
    let mut msg = icmp::Packet::new_unchecked(&mut out[HEADER_LEN..]);
    msg.set_msg_type(TYPE_PACKET_TOO_BIG);
    // RFC 4443 §3.2: Code 0, the MTU in the 32-bit word.
    msg.set_code(0);
    msg.set_data_word(mtu);
    msg.body_mut().copy_from_slice(&original[..quoted]);
    msg.fill_checksum(&dst, &src);
    Ok(total)
}

/// Whether `p` carries an `ICMPv6` error message (types 0–127, RFC 4443 §2.1).
fn is_icmp_error(p: &[u8]) -> bool {
    let Ok(walker) = Walker::from_packet(p) else {
        return false;
    };
    for step in walker {
        match step {
            Ok(Step::Upper(u)) if u.protocol == ipv6::proto::ICMPV6 && !u.after_fragment => {
                return p.get(u.offset).is_some_and(|t| *t < 128);
            }
            Ok(Step::Upper(_)) | Err(_) => return false,
            Ok(Step::Header(_)) => {}
        }
    }
    false
}

/// Verifies an `ICMPv6` message's checksum inside a whole IPv6 packet (for tests and
/// debug logs).
pub fn icmp_checksum_ok(packet: &[u8]) -> bool {
    let Ok(p) = ipv6::Packet::new_checked(packet) else {
        return false;
    };
    let body = p.payload();
    let Ok(len) = u32::try_from(body.len()) else {
        return false;
    };
    let acc = checksum::pseudo_header(&p.src_addr(), &p.dst_addr(), ipv6::proto::ICMPV6, len);
    checksum::fold(checksum::sum(acc, body)) == 0
}

/// The MSS a clamp writes into SYNs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mss {
    /// What the route allows (`rt mtu`: the route's MTU, including PMTU exceptions
    /// learnt from Packet Too Big, minus 60).
    Route,
    /// A fixed value, only lowering larger ones.
    Fixed(u16),
}

/// An nftables table of our own that clamps the MSS of TCP SYNs leaving through the TUN.
///
/// ```text
/// table inet shim6d_mss {
///     chain output {
///         type filter hook output priority -150; policy accept;
///         oifname "shim6" tcp flags & syn == syn tcp option maxseg size set rt mtu
///     }
/// }
/// ```
#[derive(Debug)]
pub struct MssClamp {
    table: OwnedTable,
}

impl MssClamp {
    /// The table body for SYNs leaving through `tun`.
    pub fn table_body(tun: &str, mss: Mss) -> Result<String, nft::Error> {
        nft::check_ifname(tun)?;
        let action = match mss {
            Mss::Route => "tcp option maxseg size set rt mtu".to_owned(),
            Mss::Fixed(v) => format!("tcp option maxseg size > {v} tcp option maxseg size set {v}"),
        };
        Ok(format!(
            "  chain output {{\n    type filter hook output priority -150; policy accept;\n\
             \x20   oifname \"{tun}\" tcp flags & syn == syn {action}\n  }}"
        ))
    }

    /// Installs (or replaces) the clamp.
    pub fn install(table: &str, tun: &str, mss: Mss) -> Result<Self, nft::Error> {
        let body = Self::table_body(tun, mss)?;
        Ok(Self {
            table: OwnedTable::install(table, &body)?,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Removes the clamp.
    pub fn delete(self) -> Result<(), nft::Error> {
        self.table.delete()
    }
}

#[cfg(test)]
mod tests;
