//! Whole IPv6 packets carrying Mobility Headers, and the IPv6-in-IPv6 helpers the cores
//! use (all through `shim6-wire`).
//!
//! Two ways to carry the Binding Update / Acknowledgement between a mobile node away
//! from home and its home agent ([`Signalling`]):
//! - **RFC 6275** (§6.1.7, §6.1.8, §9.5.4, §11.7.1): the BU goes from the care-of address
//!   to the home agent with a Home Address destination option; the BA comes back to the
//!   care-of address with a type 2 routing header holding the home address.
//! - **Tunnelled**: the BU goes from the home address to the home agent inside the
//!   reverse tunnel (outer source = care-of address), and the BA comes back inside the
//!   forward tunnel. This is the encoding a kernel without `CONFIG_IPV6_MIP6` can carry:
//!   such a kernel drops a packet with a Home Address option (option type 0xC9 has the
//!   "discard and send ICMP" action bits, RFC 8200 §4.2) or a type 2 routing header with
//!   Segments Left 1 (unknown routing type, RFC 8200 §4.4) before any raw socket sees
//!   it, whereas IPv6-in-IPv6 reaches a protocol-41 raw socket intact. The RFC 4285
//!   authenticator covers both the care-of and the home address, so the binding is as
//!   well protected as in the RFC 6275 encoding.
//!
//! In both encodings the Mobility Header checksum pseudo-header is (home address, home
//! agent) for a BU and (home agent, home address) for a BA (RFC 6275 §6.1.1: the Home
//! Address option replaces the source, the type 2 routing header gives the final
//! destination).

use core::ops::Range;
use std::net::Ipv6Addr;

use shim6_wire::ipv6::chain::{Step, Walker};
use shim6_wire::ipv6::{self, HEADER_LEN, proto};
use shim6_wire::mip6::{hao, rh2};
use shim6_wire::tunnel::{self, EncapParams, InnerHopLimit, Shift};
use shim6_wire::{Error, Result};

/// How Binding Updates and Acknowledgements travel (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Signalling {
    /// Home Address option on the BU, type 2 routing header on the BA (RFC 6275).
    Rfc6275,
    /// BU and BA inside the bidirectional tunnel (for kernels without MIPv6 support).
    #[default]
    Tunnelled,
}

/// An IPv6 packet whose upper layer is a Mobility Header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MhPacket {
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// The home address of a Home Address destination option (RFC 6275 §6.3).
    pub home_address_option: Option<Ipv6Addr>,
    /// The home address of a type 2 routing header (RFC 6275 §6.4).
    pub type2_home: Option<Ipv6Addr>,
    /// Where the Mobility Header lies in the packet.
    pub mh: Range<usize>,
}

impl MhPacket {
    /// The pseudo-header addresses of the Mobility Header checksum (RFC 6275 §6.1.1).
    pub fn pseudo_header(&self) -> (Ipv6Addr, Ipv6Addr) {
        shim6_wire::mip6::pseudo_header_addresses(
            self.src,
            self.dst,
            self.home_address_option,
            self.type2_home,
        )
    }
}

/// Walks `packet` to its Mobility Header, picking up a Home Address option and a type 2
/// routing header on the way.
///
/// # Errors
/// Those of the IPv6 header and chain checks; `Unrecognized` if the upper layer is not
/// 135; `Malformed` for a non-first fragment; those of the option / routing header
/// parsers.
pub fn parse_mh_packet(packet: &[u8]) -> Result<MhPacket> {
    let ip = ipv6::Packet::new_checked(packet)?;
    let total = ip.total_len();
    let mut hao_found = None;
    let mut rh2_found = None;
    for step in Walker::from_packet(packet)? {
        match step? {
            Step::Header(h) if h.protocol == proto::DEST_OPTS => {
                let d = ipv6::options::Packet::new_checked(&packet[h.range()])?;
                if let Some(r) = hao::Repr::find(&d)? {
                    hao_found = Some(r.home_address);
                }
            }
            Step::Header(h) if h.protocol == proto::ROUTING => {
                let b = &packet[h.range()];
                if b.get(2) == Some(&rh2::ROUTING_TYPE) {
                    let r = rh2::Repr::parse(&rh2::Packet::new_checked(b)?)?;
                    rh2_found = Some(r.home_address);
                }
            }
            Step::Header(_) => {}
            Step::Upper(u) => {
                if u.after_fragment {
                    return Err(Error::Malformed("Mobility Header in a non-first fragment"));
                }
                if u.protocol != proto::MOBILITY {
                    return Err(Error::Unrecognized {
                        what: "upper-layer protocol (expected 135)",
                        value: u32::from(u.protocol),
                    });
                }
                return Ok(MhPacket {
                    src: ip.src_addr(),
                    dst: ip.dst_addr(),
                    home_address_option: hao_found,
                    type2_home: rh2_found,
                    mh: u.offset..total,
                });
            }
        }
    }
    Err(Error::Malformed(
        "extension-header walk ended without an upper layer",
    ))
}

/// An IPv6 packet `src → dst` with Next Header `next_header` and the concatenated
/// `payload` parts.
///
/// # Panics
/// If the payload exceeds 65535 octets (the cores only build small control packets).
pub fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[&[u8]],
) -> Vec<u8> {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let mut out = vec![0u8; HEADER_LEN];
    ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: u16::try_from(len).expect("control packet over 65535 octets"),
        next_header,
        hop_limit,
        src_addr: src,
        dst_addr: dst,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut out[..]));
    for p in payload {
        out.extend_from_slice(p);
    }
    out
}

/// Rebuilds the outer header of a tunnel packet received on a protocol-41 raw socket.
/// A Linux IPv6 raw socket returns only the payload (here the inner packet); read it into
/// `buf[40..]`, take `src` from `recvfrom` and `dst` from `IPV6_PKTINFO`, and this writes
/// `buf[..40]` so that `buf[..40 + inner_len]` can go to `handle_tunnelled`.
///
/// # Errors
/// `Truncated` if `buf` is shorter than `40 + inner_len`; `BadLength` if `inner_len`
/// exceeds 65535.
pub fn write_tunnel_header(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    inner_len: usize,
) -> Result<()> {
    let payload_len = u16::try_from(inner_len).map_err(|_| Error::BadLength {
        what: "tunnel Payload Length",
        value: inner_len,
    })?;
    if buf.len() < HEADER_LEN + inner_len {
        return Err(Error::Truncated {
            what: "tunnel packet buffer",
            needed: HEADER_LEN + inner_len,
            available: buf.len(),
        });
    }
    ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len,
        next_header: proto::IPV6,
        // The hop limit the packet arrived with is not known; nothing reads it.
        hop_limit: 1,
        src_addr: src,
        dst_addr: dst,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut buf[..HEADER_LEN]));
    Ok(())
}

/// Wraps the IPv6 packet `inner` in an outer header `src → dst` (RFC 2473 §3.1) for a
/// packet the entry point originated itself: the inner Hop Limit is kept.
///
/// # Errors
/// Those of [`tunnel::encapsulate`] (an unusable inner packet).
pub fn tunnel_own(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    inner: &[u8],
) -> core::result::Result<Vec<u8>, tunnel::EncapError> {
    let mut buf = vec![0u8; tunnel::OVERHEAD + inner.len()];
    buf[tunnel::OVERHEAD..].copy_from_slice(inner);
    let mut p = EncapParams::new(src, dst, hop_limit);
    p.inner_hop_limit = InnerHopLimit::Keep;
    let end = buf.len();
    let r = tunnel::encapsulate(&mut buf, tunnel::OVERHEAD..end, &p, Shift::Front)?;
    buf.truncate(r.end);
    Ok(buf)
}

/// A Binding Update packet from the mobile node (see [`Signalling`]).
pub fn bu_packet(
    signalling: Signalling,
    coa: Ipv6Addr,
    ha: Ipv6Addr,
    hoa: Ipv6Addr,
    mh: &[u8],
    hop_limit: u8,
) -> Vec<u8> {
    match signalling {
        Signalling::Rfc6275 => {
            // RFC 6275 §11.7.1: source = care-of address, Home Address option = HoA.
            let mut dest = [0u8; hao::DEST_OPTS_LEN];
            hao::Repr { home_address: hoa }.emit_dest_opts(proto::MOBILITY, &mut dest);
            ipv6_packet(coa, ha, proto::DEST_OPTS, hop_limit, &[&dest, mh])
        }
        Signalling::Tunnelled => {
            let inner = ipv6_packet(hoa, ha, proto::MOBILITY, hop_limit, &[mh]);
            // The inner packet was just built and is valid.
            tunnel_own(coa, ha, hop_limit, &inner).unwrap_or(inner)
        }
    }
}

/// A Binding Acknowledgement (or any home-agent message) for the mobile node at `coa`
/// (see [`Signalling`]).
pub fn ba_packet(
    signalling: Signalling,
    ha: Ipv6Addr,
    coa: Ipv6Addr,
    hoa: Ipv6Addr,
    mh: &[u8],
    hop_limit: u8,
) -> Vec<u8> {
    match signalling {
        Signalling::Rfc6275 => {
            // RFC 6275 §6.1.8, §9.5.4: to the care-of address, type 2 routing header.
            let mut rh = [0u8; rh2::HEADER_LEN];
            rh2::Repr::new(proto::MOBILITY, hoa).emit(&mut rh2::Packet::new_unchecked(&mut rh[..]));
            ipv6_packet(ha, coa, proto::ROUTING, hop_limit, &[&rh, mh])
        }
        Signalling::Tunnelled => {
            let inner = ipv6_packet(ha, hoa, proto::MOBILITY, hop_limit, &[mh]);
            tunnel_own(ha, coa, hop_limit, &inner).unwrap_or(inner)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilt_outer_header_decapsulates() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:a::10".parse().unwrap(),
            "2001:db8:1::1".parse().unwrap(),
        );
        let inner = ipv6_packet(
            b,
            a,
            proto::UDP,
            64,
            &[&[1, 2, 3, 4, 0, 12, 0, 0, 9, 9, 9, 9]],
        );
        let mut buf = vec![0u8; 40];
        buf.extend_from_slice(&inner);
        write_tunnel_header(&mut buf, a, b, inner.len()).unwrap();
        let d = tunnel::decapsulate(&buf).unwrap();
        assert_eq!((d.outer_src, d.outer_dst), (a, b));
        assert_eq!(&buf[d.inner], &inner[..]);
        assert!(matches!(
            write_tunnel_header(&mut buf[..50], a, b, inner.len()),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn mh_packet_errors() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let udp = ipv6_packet(a, a, proto::UDP, 64, &[&[0; 8]]);
        assert!(matches!(
            parse_mh_packet(&udp),
            Err(Error::Unrecognized { value: 17, .. })
        ));
        assert!(parse_mh_packet(&udp[..20]).is_err());
    }
}
