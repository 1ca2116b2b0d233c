//! The type 2 routing header (RFC 6275 §6.4): one address, the mobile node's own home
//! address, used to send to a mobile node at its care-of address.
//!
//! ```text
//! +---------------+---------------+---------------+---------------+
//! |  Next Header  | Hdr Ext Len=2 | Routing Type=2|Segments Left=1|
//! +---------------+---------------+---------------+---------------+
//! |                            Reserved                           |
//! +---------------------------------------------------------------+
//! |                    Home Address (128 bits)                    |
//! +---------------------------------------------------------------+
//! ```
//!
//! The receiver checks that the address is its own home address (RFC 6275 §6.4.1);
//! Segments Left is 1 as sent and 0 once processed, so the view accepts any value and
//! leaves that judgement to the caller.

use core::fmt;
use std::net::Ipv6Addr;

use crate::error::{Error, Result, check_len};
use crate::ipv6::addr;

/// Routing Type of the type 2 routing header.
pub const ROUTING_TYPE: u8 = 2;
/// Its Hdr Ext Len: always 2 (RFC 6275 §6.4.1).
pub const HDR_EXT_LEN: u8 = 2;
/// Its length: always 24 octets.
pub const HEADER_LEN: usize = 24;

/// Byte ranges of the fields.
mod field {
    use core::ops::Range;
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    pub const ROUTING_TYPE: usize = 2;
    pub const SEGMENTS_LEFT: usize = 3;
    pub const RESERVED: Range<usize> = 4..8;
    pub const HOME_ADDRESS: Range<usize> = 8..24;
}

/// A read/write view of a type 2 routing header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without any check.
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

    /// The one validity check: Routing Type 2, Hdr Ext Len 2, 24 octets present.
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("type 2 routing header", b, 4)?;
        if b[field::ROUTING_TYPE] != ROUTING_TYPE {
            return Err(Error::Unrecognized {
                what: "routing type",
                value: u32::from(b[field::ROUTING_TYPE]),
            });
        }
        // RFC 6275 §6.4.1: exactly one address.
        if b[field::HDR_EXT_LEN] != HDR_EXT_LEN {
            return Err(Error::BadLength {
                what: "type 2 routing header Hdr Ext Len",
                value: usize::from(b[field::HDR_EXT_LEN]),
            });
        }
        check_len("type 2 routing header", b, HEADER_LEN)
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next Header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hdr Ext Len (2 after the check).
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// Routing Type (2 after the check).
    #[inline]
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[field::ROUTING_TYPE]
    }

    /// Segments Left.
    #[inline]
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[field::SEGMENTS_LEFT]
    }

    /// Home Address.
    #[inline]
    pub fn home_address(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::HOME_ADDRESS])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Next Header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets Hdr Ext Len.
    #[inline]
    pub fn set_hdr_ext_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HDR_EXT_LEN] = v;
    }

    /// Sets Routing Type.
    #[inline]
    pub fn set_routing_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::ROUTING_TYPE] = v;
    }

    /// Sets Segments Left.
    #[inline]
    pub fn set_segments_left(&mut self, v: u8) {
        self.buffer.as_mut()[field::SEGMENTS_LEFT] = v;
    }

    /// Zeroes Reserved (RFC 6275 §6.4.1).
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED].fill(0);
    }

    /// Sets Home Address.
    #[inline]
    pub fn set_home_address(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::HOME_ADDRESS].copy_from_slice(&a.octets());
    }
}

/// The parsed type 2 routing header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Next Header.
    pub next_header: u8,
    /// Segments Left: 1 when sent.
    pub segments_left: u8,
    /// The mobile node's home address.
    pub home_address: Ipv6Addr,
}

impl Repr {
    /// A header as sent: Segments Left = 1.
    #[inline]
    pub fn new(next_header: u8, home_address: Ipv6Addr) -> Self {
        Self {
            next_header,
            segments_left: 1,
            home_address,
        }
    }

    /// Parses a view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check()?;
        Ok(Self {
            next_header: packet.next_header(),
            segments_left: packet.segments_left(),
            home_address: packet.home_address(),
        })
    }

    /// Always [`HEADER_LEN`].
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_next_header(self.next_header);
        packet.set_hdr_ext_len(HDR_EXT_LEN);
        packet.set_routing_type(ROUTING_TYPE);
        packet.set_segments_left(self.segments_left);
        packet.clear_reserved();
        packet.set_home_address(self.home_address);
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Routing type 2 nh={} segs_left={} hoa={}",
            self.next_header, self.segments_left, self.home_address
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv6::chain::Walker;
    use hex_literal::hex;
    use proptest::prelude::*;

    // NH = Mobility Header (a Binding Acknowledgement to a mobile node away from home).
    static BYTES: [u8; 24] = hex!("87 02 02 01 00000000 20010db8000100000000000000000100");

    fn repr() -> Repr {
        Repr::new(135, "2001:db8:1::100".parse().unwrap())
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.next_header(), 135);
        assert_eq!(p.hdr_ext_len(), 2);
        assert_eq!(p.routing_type(), 2);
        assert_eq!(p.segments_left(), 1);
        assert_eq!(p.home_address(), repr().home_address);
        // The generic walker steps over it like any routing header.
        let r = crate::ipv6::routing::Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(r.header_len(), 24);
        let u = Walker::new(&BYTES, 43, 0, 0).upper().unwrap();
        assert_eq!((u.protocol, u.offset), (135, 24));
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(135);
        p.set_hdr_ext_len(2);
        p.set_routing_type(2);
        p.set_segments_left(1);
        p.clear_reserved();
        p.set_home_address(repr().home_address);
        assert_eq!(b, BYTES);
    }

    #[test]
    fn parse() {
        assert_eq!(
            Repr::parse(&Packet::new_checked(&BYTES[..]).unwrap()).unwrap(),
            repr()
        );
        assert_eq!(
            repr().to_string(),
            "Routing type 2 nh=135 segs_left=1 hoa=2001:db8:1::100"
        );
    }

    #[test]
    fn emit() {
        let mut b = [0xa5u8; 24];
        repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, BYTES);
    }

    #[test]
    fn truncated_and_wrong() {
        for n in 0..24 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { .. })
            ));
        }
        let mut b = BYTES;
        b[1] = 4;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::BadLength { value: 4, .. })
        ));
        b[2] = 0;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Unrecognized { value: 0, .. })
        ));
    }

    proptest! {
        #[test]
        fn roundtrip(nh in any::<u8>(), sl in any::<u8>(), a in any::<[u8; 16]>()) {
            let r = Repr { next_header: nh, segments_left: sl, home_address: a.into() };
            let mut b = [0xa5u8; 24];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
