//! The Routing header (Next Header 43, RFC 8200 §4.4), any routing type.
//!
//! ```text
//! +---------------+---------------+---------------+---------------+
//! |  Next Header  |  Hdr Ext Len  |  Routing Type | Segments Left |
//! +---------------+---------------+---------------+---------------+
//! |                     type-specific data ...                    |
//! +---------------------------------------------------------------+
//! ```
//!
//! The type 2 routing header of Mobile IPv6 has its own view in [`crate::mip6::rh2`].

use core::fmt;

use super::units_of_8;
use crate::error::{Result, check_len};

/// Byte ranges of the fields.
mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    pub const ROUTING_TYPE: usize = 2;
    pub const SEGMENTS_LEFT: usize = 3;
    pub const DATA: usize = 4;
}

/// A read/write view of a Routing header at the start of a buffer. After
/// [`Packet::new_checked`] the buffer holds the whole header.
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

    /// The one validity check: `header_len()` octets present (at least 8).
    #[inline]
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("Routing header", b, 2)?;
        check_len("Routing header", b, self.header_len())
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

    /// Hdr Ext Len.
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// Length of the header in octets.
    #[inline]
    pub fn header_len(&self) -> usize {
        units_of_8(self.hdr_ext_len())
    }

    /// Routing Type.
    #[inline]
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[field::ROUTING_TYPE]
    }

    /// Segments Left.
    #[inline]
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[field::SEGMENTS_LEFT]
    }

    /// The type-specific data (octet 4 to the end of the header).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..self.header_len()]
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

    /// The type-specific data, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::DATA..end]
    }
}

/// The parsed Routing header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Next Header.
    pub next_header: u8,
    /// Routing Type.
    pub routing_type: u8,
    /// Segments Left.
    pub segments_left: u8,
    /// Type-specific data, `8n + 4` octets.
    pub data: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Self> {
        packet.check()?;
        let b: &'a [u8] = T::as_ref(packet.buffer);
        Ok(Self {
            next_header: packet.next_header(),
            routing_type: packet.routing_type(),
            segments_left: packet.segments_left(),
            data: &b[field::DATA..packet.header_len()],
        })
    }

    /// Octets the header occupies.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        field::DATA + self.data.len()
    }

    /// Writes the header.
    ///
    /// # Panics
    /// If the buffer is too short or `data` is not `8n + 4` octets (n < 256).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let len = self.buffer_len();
        assert!(
            len % 8 == 0 && len <= 2048,
            "routing header length must be a multiple of 8"
        );
        packet.set_next_header(self.next_header);
        packet.set_hdr_ext_len((len / 8 - 1) as u8);
        packet.set_routing_type(self.routing_type);
        packet.set_segments_left(self.segments_left);
        packet.data_mut().copy_from_slice(self.data);
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6 Routing nh={} type={} segs_left={} len={}",
            self.next_header,
            self.routing_type,
            self.segments_left,
            self.buffer_len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use hex_literal::hex;
    use proptest::prelude::*;

    // A type 0 routing header (deprecated by RFC 5095, still a valid layout to walk) with
    // one address: NH = UDP, Hdr Ext Len 2, type 0, segments left 1, reserved, 2001:db8::9.
    static BYTES: [u8; 24] = hex!("11 02 00 01 00000000 20010db8000000000000000000000009");

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hdr_ext_len(), 2);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.routing_type(), 0);
        assert_eq!(p.segments_left(), 1);
        assert_eq!(p.data(), &BYTES[4..]);
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(17);
        p.set_hdr_ext_len(2);
        p.set_routing_type(0);
        p.set_segments_left(1);
        p.data_mut().copy_from_slice(&BYTES[4..]);
        assert_eq!(b, BYTES);
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                next_header: 17,
                routing_type: 0,
                segments_left: 1,
                data: &BYTES[4..]
            }
        );
        assert_eq!(
            r.to_string(),
            "IPv6 Routing nh=17 type=0 segs_left=1 len=24"
        );
    }

    #[test]
    fn emit() {
        let r = Repr {
            next_header: 17,
            routing_type: 0,
            segments_left: 1,
            data: &BYTES[4..],
        };
        let mut b = [0xa5u8; 24];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, BYTES);
    }

    #[test]
    fn truncated_at_every_length() {
        for n in 0..24 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { .. })
            ));
        }
    }

    proptest! {
        #[test]
        fn roundtrip(nh in any::<u8>(), ty in any::<u8>(), sl in any::<u8>(), units in 0usize..6, fill in any::<u8>()) {
            let data = vec![fill; 8 * units + 4];
            let r = Repr { next_header: nh, routing_type: ty, segments_left: sl, data: &data };
            let mut b = vec![0xa5u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
