//! Test helpers: build IPv6 packets with a given extension-header chain.

use proptest::prelude::*;

use super::{options, proto};

/// One extension header to build; the number is its size parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-Hop with this Hdr Ext Len (padding only).
    HopByHop(u8),
    /// Destination Options with this Hdr Ext Len (padding only).
    DestOpts(u8),
    /// Routing header type 0 with this Hdr Ext Len.
    Routing(u8),
    /// Fragment header with this Fragment Offset (M = 1).
    Fragment(u16),
    /// AH with this many extra 8-octet units of ICV beyond 4 octets.
    Ah(u8),
}

impl Ext {
    fn protocol(self) -> u8 {
        match self {
            Self::HopByHop(_) => proto::HOP_BY_HOP,
            Self::DestOpts(_) => proto::DEST_OPTS,
            Self::Routing(_) => proto::ROUTING,
            Self::Fragment(_) => proto::FRAGMENT,
            Self::Ah(_) => proto::AH,
        }
    }

    fn bytes(self, nh: u8, serial: u8) -> Vec<u8> {
        match self {
            Self::HopByHop(n) | Self::DestOpts(n) => {
                let mut b = vec![0u8; super::units_of_8(n)];
                b[0] = nh;
                b[1] = n;
                options::fill_padding(&mut b[2..]);
                b
            }
            Self::Routing(n) => {
                let mut b = vec![serial; super::units_of_8(n)];
                b[..4].copy_from_slice(&[nh, n, 0, 0]);
                b
            }
            Self::Fragment(off) => {
                let v = (off << 3) | 1;
                let mut b = vec![nh, 0, 0, 0, 0, 0, 0, serial];
                b[2..4].copy_from_slice(&v.to_be_bytes());
                b
            }
            Self::Ah(n) => {
                let len = 12 + 4 + 8 * usize::from(n);
                let mut b = vec![serial; len];
                b[..4].copy_from_slice(&[nh, (len / 4 - 2) as u8, 0, 0]);
                b
            }
        }
    }
}

/// An IPv6 packet `2001:db8::1` -> `2001:db8::2` with the given chain, then `plen` octets of
/// upper-layer payload (an increasing byte pattern) announced as `upper`.
pub fn build(exts: &[Ext], upper: u8, plen: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, e) in exts.iter().enumerate() {
        let nh = exts.get(i + 1).map_or(upper, |n| n.protocol());
        body.extend_from_slice(&e.bytes(nh, i as u8 + 0x10));
    }
    body.extend((0..plen).map(|i| (i * 7 + 3) as u8));
    let first = exts.first().map_or(upper, |e| e.protocol());
    let mut p = vec![0x60, 0x01, 0x23, 0x45];
    p.extend_from_slice(&(body.len() as u16).to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(
        &"2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(&body);
    p
}

/// Arbitrary chains in RFC 8200 §4.1 order: Hop-by-Hop?, (Destination Options? Routing)?,
/// Fragment (first fragment)?, AH?, Destination Options?, then an upper layer (TCP, UDP,
/// `ICMPv6`, No Next Header or ESP) and a payload length.
pub fn arb_chain() -> impl Strategy<Value = (Vec<Ext>, u8, usize)> {
    (
        proptest::option::of(0u8..3),
        proptest::option::of((proptest::option::of(0u8..3), 0u8..4)),
        any::<bool>(),
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..3),
        prop_oneof![
            Just(proto::TCP),
            Just(proto::UDP),
            Just(proto::ICMPV6),
            Just(proto::NONE),
            Just(proto::ESP)
        ],
        0usize..200,
    )
        .prop_map(|(hbh, rt, frag, ah, dst, upper, plen)| {
            let mut v = Vec::new();
            if let Some(n) = hbh {
                v.push(Ext::HopByHop(n));
            }
            if let Some((d, r)) = rt {
                if let Some(n) = d {
                    v.push(Ext::DestOpts(n));
                }
                v.push(Ext::Routing(r));
            }
            if frag {
                v.push(Ext::Fragment(0));
            }
            if let Some(n) = ah {
                v.push(Ext::Ah(n));
            }
            if let Some(n) = dst {
                v.push(Ext::DestOpts(n));
            }
            (v, upper, plen)
        })
}

/// Number of leading headers of `exts` that form the routing sublayer (RFC 5533 §5.1):
/// Hop-by-Hop, Routing, and a Destination Options header right before a Routing header.
pub fn sublayer_len(exts: &[Ext]) -> usize {
    let mut n = 0;
    while n < exts.len() {
        match exts[n] {
            Ext::HopByHop(_) | Ext::Routing(_) => n += 1,
            Ext::DestOpts(_) if matches!(exts.get(n + 1), Some(Ext::Routing(_))) => n += 1,
            _ => break,
        }
    }
    n
}
