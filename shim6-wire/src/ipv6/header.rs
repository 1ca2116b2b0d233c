//! The IPv6 fixed header (RFC 8200 §3).
//!
//! ```text
//! +-------+---------------+---------------------------------------+
//! |Version| Traffic Class |              Flow Label               |
//! +-------+---------------+-------+---------------+---------------+
//! |        Payload Length         |  Next Header  |   Hop Limit   |
//! +-------------------------------+---------------+---------------+
//! |                    Source Address (128 bits)                  |
//! |                 Destination Address (128 bits)                |
//! +---------------------------------------------------------------+
//! ```

use core::fmt;
use std::net::Ipv6Addr;

use crate::error::{Error, Result, check_len};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// Byte ranges of the fields (RFC 8200 §3).
mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// A read/write view of an IPv6 packet: the fixed header and the payload it announces.
///
/// After [`Packet::new_checked`] the buffer holds at least `40 + payload_len()` octets;
/// octets beyond that (link padding) are not part of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without any check; accessors may panic on a short buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Packet::check`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// The one validity check: 40 octets, version 6, and the whole payload present.
    #[inline]
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("IPv6 header", b, HEADER_LEN)?;
        // RFC 8200 §3: Version = 6.
        if b[0] >> 4 != 6 {
            return Err(Error::Unrecognized {
                what: "IP version",
                value: u32::from(b[0] >> 4),
            });
        }
        check_len("IPv6 payload", b, self.total_len())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The IP version (6 after a successful check).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// The Traffic Class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let w = self.ver_tc_flow();
        (w >> 20) as u8
    }

    /// The 20-bit Flow Label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    fn ver_tc_flow(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The Payload Length: octets after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::PAYLOAD_LEN.start], b[field::PAYLOAD_LEN.start + 1]])
    }

    /// The length of the whole packet, `40 + payload_len()`.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The Next Header field.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The Hop Limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The Source Address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// The Destination Address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// The payload: `payload_len()` octets after the fixed header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version nibble to 6.
    #[inline]
    pub fn set_version(&mut self) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0x0f) | 0x60;
    }

    /// Sets the Traffic Class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = (self.ver_tc_flow() & 0xf00f_ffff) | (u32::from(tc) << 20);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Sets the Flow Label; bits above the low 20 are ignored.
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let w = (self.ver_tc_flow() & 0xfff0_0000) | (label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Sets the Payload Length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the Next Header field.
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    /// Sets the Hop Limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hl: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hl;
    }

    /// Sets the Source Address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the Destination Address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

#[inline]
pub(crate) fn addr(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    Ipv6Addr::from(o)
}

/// The parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Traffic Class.
    pub traffic_class: u8,
    /// Flow Label (20 bits).
    pub flow_label: u32,
    /// Payload Length.
    pub payload_len: u16,
    /// Next Header.
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Source Address.
    pub src_addr: Ipv6Addr,
    /// Destination Address.
    pub dst_addr: Ipv6Addr,
}

impl Repr {
    /// Parses a view (re-running its check).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check()?;
        Ok(Self {
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
            payload_len: packet.payload_len(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
        })
    }

    /// Octets of the fixed header, always [`HEADER_LEN`].
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header into the first 40 octets of `packet`'s buffer.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let w = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0xfffff);
        packet.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6 src={} dst={} nh={} len={} hl={} tc={:#04x} flow={:#07x}",
            self.src_addr,
            self.dst_addr,
            self.next_header,
            self.payload_len,
            self.hop_limit,
            self.traffic_class,
            self.flow_label
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    // Version 6, TC 0xb8 (EF), flow 0x12345, payload 4 octets, NH 59, HL 64,
    // 2001:db8::1 -> 2001:db8::2, then 4 payload octets and 2 octets of link padding.
    static BYTES: [u8; 46] = hex!(
        "6b812345 0004 3b 40
         20010db8000000000000000000000001
         20010db8000000000000000000000002
         deadbeef 0000"
    );

    fn repr() -> Repr {
        Repr {
            traffic_class: 0xb8,
            flow_label: 0x12345,
            payload_len: 4,
            next_header: 59,
            hop_limit: 64,
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "2001:db8::2".parse().unwrap(),
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 4);
        assert_eq!(p.total_len(), 44);
        assert_eq!(p.next_header(), 59);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &hex!("deadbeef"));
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 46];
        b[40..].copy_from_slice(&BYTES[40..]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version();
        p.set_traffic_class(0xb8);
        p.set_flow_label(0x12345);
        p.set_payload_len(4);
        p.set_next_header(59);
        p.set_hop_limit(64);
        p.set_src_addr("2001:db8::1".parse().unwrap());
        p.set_dst_addr("2001:db8::2".parse().unwrap());
        assert_eq!(b, BYTES);
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn emit() {
        let mut b = [0xa5u8; 40];
        repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b[..], BYTES[..40]);
        assert_eq!(repr().buffer_len(), 40);
    }

    #[test]
    fn truncated_and_payload_length() {
        for n in 0..40 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { needed: 40, .. })
            ));
        }
        // The Payload Length field announces 4 octets: every cut below 44 is truncated.
        for n in 40..44 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { needed: 44, .. })
            ));
        }
        let mut b = BYTES;
        b[0] = 0x45;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Unrecognized { value: 4, .. })
        ));
    }

    #[test]
    fn display() {
        assert_eq!(
            repr().to_string(),
            "IPv6 src=2001:db8::1 dst=2001:db8::2 nh=59 len=4 hl=64 tc=0xb8 flow=0x12345"
        );
    }

    proptest! {
        #[test]
        fn roundtrip(tc in any::<u8>(), flow in 0u32..(1 << 20), nh in any::<u8>(), hl in any::<u8>(),
                     src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), plen in 0u16..64) {
            let r = Repr { traffic_class: tc, flow_label: flow, payload_len: plen, next_header: nh,
                           hop_limit: hl, src_addr: src.into(), dst_addr: dst.into() };
            let mut b = vec![0xa5u8; 40 + usize::from(plen)];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p).unwrap().to_string();
                let _ = p.payload();
            }
        }
    }
}
