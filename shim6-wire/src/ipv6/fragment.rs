//! The Fragment header (Next Header 44, RFC 8200 §4.5): always 8 octets.
//!
//! ```text
//! +---------------+---------------+-------------------------+-----+
//! |  Next Header  |   Reserved    |    Fragment Offset      |Res|M|
//! +---------------+---------------+-------------------------+-----+
//! |                         Identification                        |
//! +---------------------------------------------------------------+
//! ```

use core::fmt;

use crate::error::{Result, check_len};

/// Length of the Fragment header.
pub const HEADER_LEN: usize = 8;

/// Byte ranges of the fields.
mod field {
    use core::ops::Range;
    pub const NEXT_HEADER: usize = 0;
    pub const RESERVED: usize = 1;
    pub const OFFSET_M: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..8;
}

/// A read/write view of a Fragment header.
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

    /// The one validity check: 8 octets present.
    #[inline]
    pub fn check(&self) -> Result<()> {
        check_len("Fragment header", self.buffer.as_ref(), HEADER_LEN)
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

    fn offset_m(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::OFFSET_M.start], b[field::OFFSET_M.start + 1]])
    }

    /// Fragment Offset, in 8-octet units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        self.offset_m() >> 3
    }

    /// The M flag: more fragments follow.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.offset_m() & 1 != 0
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Next Header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Zeroes the two reserved fields (RFC 8200 §4.5: set to zero on transmission).
    #[inline]
    pub fn clear_reserved(&mut self) {
        let b = self.buffer.as_mut();
        b[field::RESERVED] = 0;
        b[field::OFFSET_M.start + 1] &= !0x06;
    }

    /// Sets the Fragment Offset (8-octet units, 13 bits; higher bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, off: u16) {
        let v = (self.offset_m() & 0x0007) | (off << 3);
        self.buffer.as_mut()[field::OFFSET_M].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the M flag.
    #[inline]
    pub fn set_more_fragments(&mut self, m: bool) {
        let v = (self.offset_m() & !1) | u16::from(m);
        self.buffer.as_mut()[field::OFFSET_M].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Identification.
    #[inline]
    pub fn set_ident(&mut self, id: u32) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&id.to_be_bytes());
    }
}

/// The parsed Fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Next Header.
    pub next_header: u8,
    /// Fragment Offset in 8-octet units (13 bits).
    pub frag_offset: u16,
    /// M flag.
    pub more_fragments: bool,
    /// Identification.
    pub ident: u32,
}

impl Repr {
    /// Parses a view. The reserved fields are ignored on receipt (RFC 8200 §4.5).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check()?;
        Ok(Self {
            next_header: packet.next_header(),
            frag_offset: packet.frag_offset(),
            more_fragments: packet.more_fragments(),
            ident: packet.ident(),
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
    /// If the buffer is shorter than 8 octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_next_header(self.next_header);
        let v = (self.frag_offset << 3) | u16::from(self.more_fragments);
        packet.buffer.as_mut()[field::OFFSET_M].copy_from_slice(&v.to_be_bytes());
        packet.clear_reserved();
        packet.set_ident(self.ident);
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6 Fragment nh={} off={} m={} id={:#010x}",
            self.next_header,
            usize::from(self.frag_offset) * 8,
            u8::from(self.more_fragments),
            self.ident
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use hex_literal::hex;
    use proptest::prelude::*;

    // NH = TCP, offset 185 units (1480 octets), M = 1, ident 0xdeadbeef.
    static BYTES: [u8; 8] = hex!("06 00 05c9 deadbeef");

    fn repr() -> Repr {
        Repr {
            next_header: 6,
            frag_offset: 185,
            more_fragments: true,
            ident: 0xdead_beef,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.frag_offset(), 185);
        assert!(p.more_fragments());
        assert_eq!(p.ident(), 0xdead_beef);
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 8];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(6);
        p.clear_reserved();
        p.set_frag_offset(185);
        p.set_more_fragments(true);
        p.set_ident(0xdead_beef);
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
            "IPv6 Fragment nh=6 off=1480 m=1 id=0xdeadbeef"
        );
    }

    #[test]
    fn emit() {
        let mut b = [0xa5u8; 8];
        repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, BYTES);
    }

    #[test]
    fn truncated_at_every_length() {
        for n in 0..8 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { needed: 8, .. })
            ));
        }
    }

    proptest! {
        #[test]
        fn roundtrip(nh in any::<u8>(), off in 0u16..8192, m in any::<bool>(), id in any::<u32>()) {
            let r = Repr { next_header: nh, frag_offset: off, more_fragments: m, ident: id };
            let mut b = [0xa5u8; 8];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
