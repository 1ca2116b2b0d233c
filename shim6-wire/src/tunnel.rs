//! IPv6-in-IPv6 tunnelling (RFC 2473 §3; digest §5.8): the home agent's forward path to
//! a mobile node's care-of address, and the reverse tunnel back.
//!
//! ```text
//!  +-------------------+---------------------------------------+
//!  | outer IPv6 header | original packet (inner IPv6 header …) |
//!  | NH = 41           |                                       |
//!  +-------------------+---------------------------------------+
//! ```
//!
//! [`encapsulate`] prepends the 40-octet outer header in place, in the caller's buffer:
//! with [`Shift::Front`] it writes the header into headroom in front of the packet (no
//! copy of the packet at all), with [`Shift::Tail`] it moves the packet right by 40.
//! As the entry point forwards the original packet, it decrements the inner Hop Limit
//! once (RFC 2473 §3.1); a packet whose Hop Limit would reach 0 is not tunnelled, and the
//! caller sends `ICMPv6` Time Exceeded as for any forwarded packet (RFC 8200 §3).
//!
//! Outer Traffic Class and Flow Label (RFC 2473 §6.5, §6.6 leave them to the entry
//! point's configuration). By default both are **copied from the inner header**:
//! - the Traffic Class copy keeps DSCP treatment along the tunnel and is RFC 6040's
//!   "normal mode" for ECN, so congestion marks set inside the tunnel reach the exit;
//! - the Flow Label copy keeps one outer label per inner flow, which is what RFC 6437 §3
//!   asks of a label, costs nothing, and lets ECMP paths keep the flow together. An inner
//!   label of 0 stays 0 outside.
//!
//! [`EncapParams`] can fix either to a configured value instead. No Tunnel
//! Encapsulation Limit option (RFC 2473 §5.1) is added.
//!
//! [`decapsulate`] walks the outer extension-header chain to Next Header 41 (RFC 2473
//! §3.3) and returns the inner packet's range: nothing is copied.

use core::fmt;
use core::ops::Range;
use std::net::Ipv6Addr;

use crate::error::{Error, Result};
use crate::ipv6::chain::Walker;
use crate::ipv6::{HEADER_LEN, Packet, proto};

pub use crate::ipv6::shim::Shift;

/// Octets the outer header adds.
pub const OVERHEAD: usize = HEADER_LEN;

/// How the outer Traffic Class is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrafficClass {
    /// Copy the inner packet's (RFC 6040 normal mode for ECN).
    #[default]
    CopyInner,
    /// A configured value.
    Fixed(u8),
}

/// How the outer Flow Label is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FlowLabel {
    /// Copy the inner packet's.
    #[default]
    CopyInner,
    /// A configured value (low 20 bits).
    Fixed(u32),
}

/// What happens to the inner Hop Limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InnerHopLimit {
    /// The entry point forwards the packet: decrement it (RFC 2473 §3.1).
    #[default]
    Decrement,
    /// The entry point originated the packet itself (a mobile node's reverse tunnel for
    /// its own traffic): leave it.
    Keep,
}

/// The outer header of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncapParams {
    /// Outer source: the entry point (the home agent on the forward path).
    pub src: Ipv6Addr,
    /// Outer destination: the exit point (the mobile node's primary care-of address).
    pub dst: Ipv6Addr,
    /// Outer Hop Limit.
    pub hop_limit: u8,
    /// Outer Traffic Class policy.
    pub traffic_class: TrafficClass,
    /// Outer Flow Label policy.
    pub flow_label: FlowLabel,
    /// Inner Hop Limit policy.
    pub inner_hop_limit: InnerHopLimit,
}

impl EncapParams {
    /// A tunnel from `src` to `dst` with the default policies (copy Traffic Class and
    /// Flow Label, decrement the inner Hop Limit).
    #[inline]
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Self {
        Self {
            src,
            dst,
            hop_limit,
            traffic_class: TrafficClass::default(),
            flow_label: FlowLabel::default(),
            inner_hop_limit: InnerHopLimit::default(),
        }
    }
}

/// Why a packet was not encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncapError {
    /// The inner Hop Limit would reach 0 (it is 0 or 1): discard and send `ICMPv6` Time
    /// Exceeded, code 0, to the packet's source (RFC 2473 §3.1, RFC 8200 §3).
    HopLimitExceeded,
    /// The packet or the buffer is unusable.
    Wire(Error),
}

impl From<Error> for EncapError {
    fn from(e: Error) -> Self {
        Self::Wire(e)
    }
}

impl fmt::Display for EncapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HopLimitExceeded => write!(f, "inner hop limit exceeded at tunnel entry"),
            Self::Wire(e) => write!(f, "cannot encapsulate: {e}"),
        }
    }
}

impl std::error::Error for EncapError {}

/// Encapsulates the IPv6 packet at `buf[packet]` in an outer IPv6 header, in place, and
/// returns the tunnel packet's range: `packet.start - 40 ..` with [`Shift::Front`]
/// (needs 40 octets of headroom), `packet.start ..` with [`Shift::Tail`] (needs 40
/// octets of tailroom after the packet). Octets past the inner `40 + Payload Length`
/// are not part of the packet.
///
/// # Errors
/// [`EncapError::HopLimitExceeded`] (see there); `Wire(Truncated)` without the room;
/// `Wire(BadLength)` if the tunnel packet's Payload Length would exceed 65535; errors
/// of the inner packet's check; `Wire(Malformed)` if the range lies outside `buf`.
/// On error `buf` is unchanged.
pub fn encapsulate(
    buf: &mut [u8],
    packet: Range<usize>,
    params: &EncapParams,
    shift: Shift,
) -> core::result::Result<Range<usize>, EncapError> {
    let inner = buf
        .get(packet.clone())
        .ok_or(Error::Malformed("packet range lies outside the buffer"))?;
    let inner = Packet::new_checked(inner)?;
    let total = inner.total_len();
    let outer_payload_len = u16::try_from(total).map_err(|_| Error::BadLength {
        what: "tunnel Payload Length",
        value: total,
    })?;
    let hop_limit = inner.hop_limit();
    // RFC 2473 §3.1: the entry point forwards the original packet, decrementing its Hop
    // Limit; one that would reach zero is discarded (RFC 8200 §3).
    let inner_hop_limit = match params.inner_hop_limit {
        InnerHopLimit::Decrement if hop_limit <= 1 => return Err(EncapError::HopLimitExceeded),
        InnerHopLimit::Decrement => hop_limit - 1,
        InnerHopLimit::Keep => hop_limit,
    };
    let traffic_class = match params.traffic_class {
        TrafficClass::CopyInner => inner.traffic_class(),
        TrafficClass::Fixed(v) => v,
    };
    let flow_label = match params.flow_label {
        FlowLabel::CopyInner => inner.flow_label(),
        FlowLabel::Fixed(v) => v,
    };
    let start = packet.start;
    let outer_start = match shift {
        Shift::Front => {
            if start < OVERHEAD {
                return Err(Error::Truncated {
                    what: "headroom for the tunnel header",
                    needed: OVERHEAD,
                    available: start,
                }
                .into());
            }
            start - OVERHEAD
        }
        Shift::Tail => {
            let room = buf.len() - (start + total);
            if room < OVERHEAD {
                return Err(Error::Truncated {
                    what: "tailroom for the tunnel header",
                    needed: OVERHEAD,
                    available: room,
                }
                .into());
            }
            buf.copy_within(start..start + total, start + OVERHEAD);
            start
        }
    };
    let outer_end = outer_start + OVERHEAD + total;
    let b = &mut buf[outer_start..outer_end];
    Packet::new_unchecked(&mut b[OVERHEAD..]).set_hop_limit(inner_hop_limit);
    crate::ipv6::Repr {
        traffic_class,
        flow_label: flow_label & 0x000f_ffff,
        payload_len: outer_payload_len,
        next_header: proto::IPV6,
        hop_limit: params.hop_limit,
        src_addr: params.src,
        dst_addr: params.dst,
    }
    .emit(&mut Packet::new_unchecked(&mut b[..OVERHEAD]));
    Ok(outer_start..outer_end)
}

/// A decapsulated tunnel packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decapsulated {
    /// Outer source: the entry point (for the reverse tunnel, the mobile node's care-of
    /// address, which RFC 6275 §10.4.5 requires to match its binding).
    pub outer_src: Ipv6Addr,
    /// Outer destination.
    pub outer_dst: Ipv6Addr,
    /// The inner packet's range, relative to the start of the tunnel packet.
    pub inner: Range<usize>,
}

/// Finds the inner packet of the tunnel packet `packet` (RFC 2473 §3.3): walks the outer
/// extension headers to Next Header 41 and checks the inner IPv6 header. Nothing is
/// copied; `&packet[result.inner]` is the inner packet (without any trailing octets).
///
/// # Errors
/// Those of the outer header's check and walk; `Unrecognized` if the outer chain ends in
/// something other than 41; `Malformed` for a non-first fragment (reassemble first);
/// those of the inner packet's check.
pub fn decapsulate(packet: &[u8]) -> Result<Decapsulated> {
    let outer = Packet::new_checked(packet)?;
    let upper = Walker::from_packet(packet)?.upper()?;
    if upper.after_fragment {
        return Err(Error::Malformed(
            "tunnel packet is a non-first fragment: reassemble before decapsulating",
        ));
    }
    if upper.protocol != proto::IPV6 {
        return Err(Error::Unrecognized {
            what: "tunnel payload protocol",
            value: u32::from(upper.protocol),
        });
    }
    let rest = &packet[upper.offset..outer.total_len()];
    let inner = Packet::new_checked(rest)?;
    Ok(Decapsulated {
        outer_src: outer.src_addr(),
        outer_dst: outer.dst_addr(),
        inner: upper.offset..upper.offset + inner.total_len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    // The original packet: 2001:db8::1 -> 2001:db8:1::100 (a home address), TC 0x28,
    // flow 0xabcde, UDP, Hop Limit 64, 8 octets of payload.
    static INNER: [u8; 48] = hex!(
        "628abcde 0008 11 40
         20010db8000000000000000000000001
         20010db8000100000000000000000100
         1234 5678 0008 0000"
    );
    // Tunnelled by the home agent 2001:db8:1::1 to the care-of address 2001:db8:2::100,
    // outer Hop Limit 255; Traffic Class and Flow Label copied; inner Hop Limit 63.
    static TUNNELLED: [u8; 88] = hex!(
        "628abcde 0030 29 ff
         20010db8000100000000000000000001
         20010db8000200000000000000000100
         628abcde 0008 11 3f
         20010db8000000000000000000000001
         20010db8000100000000000000000100
         1234 5678 0008 0000"
    );

    fn params() -> EncapParams {
        EncapParams::new(
            "2001:db8:1::1".parse().unwrap(),
            "2001:db8:2::100".parse().unwrap(),
            255,
        )
    }

    #[test]
    fn encapsulate_both_shifts() {
        for shift in [Shift::Front, Shift::Tail] {
            let mut buf = [0xa5u8; 128];
            buf[40..88].copy_from_slice(&INNER);
            let r = encapsulate(&mut buf, 40..88, &params(), shift).unwrap();
            assert_eq!(buf[r.clone()], TUNNELLED);
            assert_eq!(
                r,
                match shift {
                    Shift::Front => 0..88,
                    Shift::Tail => 40..128,
                }
            );
        }
    }

    #[test]
    fn fixed_policies_and_keep() {
        let p = EncapParams {
            traffic_class: TrafficClass::Fixed(0),
            flow_label: FlowLabel::Fixed(0x12345),
            inner_hop_limit: InnerHopLimit::Keep,
            ..params()
        };
        let mut buf = [0u8; 88];
        buf[40..].copy_from_slice(&INNER);
        let r = encapsulate(&mut buf, 40..88, &p, Shift::Front).unwrap();
        let outer = Packet::new_checked(&buf[r.clone()]).unwrap();
        assert_eq!((outer.traffic_class(), outer.flow_label()), (0, 0x12345));
        assert_eq!(buf[40..], INNER);
    }

    #[test]
    fn hop_limit_exceeded() {
        for hl in [0u8, 1] {
            let mut buf = [0u8; 88];
            buf[40..].copy_from_slice(&INNER);
            buf[47] = hl;
            let before = buf;
            assert_eq!(
                encapsulate(&mut buf, 40..88, &params(), Shift::Front),
                Err(EncapError::HopLimitExceeded)
            );
            assert_eq!(buf, before);
        }
        assert_eq!(
            EncapError::HopLimitExceeded.to_string(),
            "inner hop limit exceeded at tunnel entry"
        );
    }

    #[test]
    fn no_room() {
        let mut buf = [0u8; 87];
        buf[39..].copy_from_slice(&INNER);
        assert!(matches!(
            encapsulate(&mut buf, 39..87, &params(), Shift::Front),
            Err(EncapError::Wire(Error::Truncated {
                needed: 40,
                available: 39,
                ..
            }))
        ));
        assert!(matches!(
            encapsulate(&mut buf, 39..87, &params(), Shift::Tail),
            Err(EncapError::Wire(Error::Truncated {
                needed: 40,
                available: 0,
                ..
            }))
        ));
        assert!(matches!(
            encapsulate(&mut buf, 39..90, &params(), Shift::Tail),
            Err(EncapError::Wire(Error::Malformed(_)))
        ));
    }

    #[test]
    fn decapsulate_plain_and_with_extension_headers() {
        let d = decapsulate(&TUNNELLED).unwrap();
        assert_eq!(d.inner, 40..88);
        assert_eq!(d.outer_src, params().src);
        assert_eq!(d.outer_dst, params().dst);
        // A Destination Options header carrying a Tunnel Encapsulation Limit (RFC 2473
        // §5.1: type 4, length 1, limit 4) before the inner packet, and link padding.
        let mut p = TUNNELLED[..40].to_vec();
        p[6] = proto::DEST_OPTS;
        p[4..6].copy_from_slice(&56u16.to_be_bytes());
        p.extend_from_slice(&hex!("29 00 04 01 04 01 00 00"));
        p.extend_from_slice(&TUNNELLED[40..]);
        p.extend_from_slice(&[0; 4]);
        let d = decapsulate(&p).unwrap();
        assert_eq!(d.inner, 48..96);
        assert_eq!(p[d.inner], TUNNELLED[40..]);
    }

    #[test]
    fn decapsulate_errors() {
        for n in 0..TUNNELLED.len() {
            assert!(decapsulate(&TUNNELLED[..n]).is_err(), "cut {n}");
        }
        // Outer Payload Length cut inside the inner packet: the inner check fails.
        let mut p = TUNNELLED;
        p[4..6].copy_from_slice(&44u16.to_be_bytes());
        assert!(matches!(decapsulate(&p), Err(Error::Truncated { .. })));
        let mut p = TUNNELLED;
        p[6] = proto::UDP;
        assert_eq!(
            decapsulate(&p),
            Err(Error::Unrecognized {
                what: "tunnel payload protocol",
                value: 17
            })
        );
        // Not IPv6 inside.
        let mut p = TUNNELLED;
        p[40] = 0x45;
        assert!(matches!(decapsulate(&p), Err(Error::Unrecognized { .. })));
        // A later fragment.
        let mut p = TUNNELLED[..40].to_vec();
        p[6] = proto::FRAGMENT;
        p[4..6].copy_from_slice(&56u16.to_be_bytes());
        p.extend_from_slice(&hex!("29 00 0100 00000001"));
        p.extend_from_slice(&TUNNELLED[40..]);
        assert!(matches!(decapsulate(&p), Err(Error::Malformed(_))));
    }

    fn arb_inner() -> impl Strategy<Value = Vec<u8>> {
        (
            2u8..=255,
            any::<u8>(),
            any::<u32>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..100),
        )
            .prop_map(|(hl, tc, fl, nh, payload)| {
                let mut b = vec![0u8; 40];
                crate::ipv6::Repr {
                    traffic_class: tc,
                    flow_label: fl & 0xfffff,
                    payload_len: payload.len() as u16,
                    next_header: nh,
                    hop_limit: hl,
                    src_addr: Ipv6Addr::LOCALHOST,
                    dst_addr: Ipv6Addr::UNSPECIFIED,
                }
                .emit(&mut Packet::new_unchecked(&mut b[..]));
                b.extend_from_slice(&payload);
                b
            })
    }

    proptest! {
        #[test]
        fn encapsulate_then_decapsulate(inner in arb_inner(), front in any::<bool>()) {
            let shift = if front { Shift::Front } else { Shift::Tail };
            let mut buf = vec![0xa5u8; inner.len() + 80];
            buf[40..40 + inner.len()].copy_from_slice(&inner);
            let r = encapsulate(&mut buf, 40..40 + inner.len(), &params(), shift).unwrap();
            let t = &buf[r];
            let d = decapsulate(t).unwrap();
            let got = &t[d.inner];
            prop_assert_eq!(got.len(), inner.len());
            prop_assert_eq!(got[7], inner[7] - 1);
            prop_assert_eq!(&got[..7], &inner[..7]);
            prop_assert_eq!(&got[8..], &inner[8..]);
            let outer = Packet::new_checked(t).unwrap();
            let inner_view = Packet::new_checked(&inner[..]).unwrap();
            prop_assert_eq!(outer.traffic_class(), inner_view.traffic_class());
            prop_assert_eq!(outer.flow_label(), inner_view.flow_label());
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..140),
                                       six in any::<bool>(), start in 0usize..48) {
            let mut b = b;
            if six && b.len() >= 40 {
                b[0] = 0x60;
                let plen = (b.len() - 40) as u16;
                b[4..6].copy_from_slice(&plen.to_be_bytes());
                b[6] = proto::IPV6;
            }
            if let Ok(d) = decapsulate(&b) {
                prop_assert!(d.inner.end <= b.len());
            }
            let mut buf = vec![0u8; start];
            buf.extend_from_slice(&b);
            buf.extend_from_slice(&[0; 40]);
            for shift in [Shift::Front, Shift::Tail] {
                let mut c = buf.clone();
                if let Ok(r) = encapsulate(&mut c, start..start + b.len(), &params(), shift) {
                    prop_assert!(decapsulate(&c[r]).is_ok());
                }
            }
        }
    }
}
