//! The Authentication Header (Next Header 51, RFC 4302 §2).
//!
//! ```text
//! +---------------+---------------+-------------------------------+
//! | Next Header   |  Payload Len  |          RESERVED             |
//! +---------------+---------------+-------------------------------+
//! |                 Security Parameters Index (SPI)               |
//! +---------------------------------------------------------------+
//! |                    Sequence Number Field                      |
//! +---------------------------------------------------------------+
//! |                Integrity Check Value-ICV (variable)           |
//! +---------------------------------------------------------------+
//! ```
//!
//! Unlike the other extension headers, Payload Len counts **4-octet** units minus 2
//! (RFC 4302 §2.2), and in IPv6 the header must be a multiple of 8 octets.

use core::fmt;

use crate::error::{Error, Result, check_len};

/// Length of the fixed part (Next Header to Sequence Number).
pub const FIXED_LEN: usize = 12;

/// Byte ranges of the fields.
mod field {
    use core::ops::Range;
    pub const NEXT_HEADER: usize = 0;
    pub const PAYLOAD_LEN: usize = 1;
    pub const RESERVED: Range<usize> = 2..4;
    pub const SPI: Range<usize> = 4..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const ICV: usize = 12;
}

/// Length in octets of an AH whose Payload Len field is `payload_len`, or an error when
/// the value is not allowed in IPv6: below 1 (no room for SPI and sequence number), or a
/// total that is not a multiple of 8 (RFC 4302 §2.2).
#[inline]
pub fn header_len(payload_len: u8) -> Result<usize> {
    let len = (usize::from(payload_len) + 2) * 4;
    if len < FIXED_LEN || len % 8 != 0 {
        return Err(Error::BadLength {
            what: "AH Payload Len",
            value: usize::from(payload_len),
        });
    }
    Ok(len)
}

/// A read/write view of an Authentication Header.
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

    /// The one validity check: a Payload Len IPv6 allows, and the whole header present.
    #[inline]
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("AH", b, 2)?;
        let len = header_len(b[field::PAYLOAD_LEN])?;
        check_len("AH", b, len)
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

    /// Payload Len (4-octet units minus 2).
    #[inline]
    pub fn payload_len(&self) -> u8 {
        self.buffer.as_ref()[field::PAYLOAD_LEN]
    }

    /// Length of the header in octets.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.payload_len()) + 2) * 4
    }

    /// Security Parameters Index.
    #[inline]
    pub fn spi(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SPI];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Sequence Number.
    #[inline]
    pub fn sequence(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SEQ];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Integrity Check Value (with any padding).
    #[inline]
    pub fn icv(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ICV..self.header_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Next Header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets Payload Len.
    #[inline]
    pub fn set_payload_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PAYLOAD_LEN] = v;
    }

    /// Zeroes the reserved field (RFC 4302 §2.3).
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED].fill(0);
    }

    /// Sets the SPI.
    #[inline]
    pub fn set_spi(&mut self, v: u32) {
        self.buffer.as_mut()[field::SPI].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the Sequence Number.
    #[inline]
    pub fn set_sequence(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }

    /// The ICV, mutable.
    #[inline]
    pub fn icv_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::ICV..end]
    }
}

/// The parsed Authentication Header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Next Header.
    pub next_header: u8,
    /// SPI.
    pub spi: u32,
    /// Sequence Number.
    pub sequence: u32,
    /// ICV including padding: `8n + 4` octets so that the header is a multiple of 8.
    pub icv: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Self> {
        packet.check()?;
        let b: &'a [u8] = T::as_ref(packet.buffer);
        Ok(Self {
            next_header: packet.next_header(),
            spi: packet.spi(),
            sequence: packet.sequence(),
            icv: &b[field::ICV..packet.header_len()],
        })
    }

    /// Octets the header occupies.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + self.icv.len()
    }

    /// Writes the header.
    ///
    /// # Panics
    /// If the buffer is too short, or the ICV is not `8n + 4` octets (n < 128).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let len = self.buffer_len();
        assert!(
            len % 8 == 0 && len / 4 - 2 <= 255,
            "AH length must be a multiple of 8"
        );
        packet.set_next_header(self.next_header);
        packet.set_payload_len((len / 4 - 2) as u8);
        packet.clear_reserved();
        packet.set_spi(self.spi);
        packet.set_sequence(self.sequence);
        packet.icv_mut().copy_from_slice(self.icv);
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AH nh={} spi={:#010x} seq={} icv_len={}",
            self.next_header,
            self.spi,
            self.sequence,
            self.icv.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    // NH = TCP, Payload Len 4 -> (4 + 2) * 4 = 24 octets: 12 fixed + 12-octet ICV
    // (HMAC-SHA1-96, RFC 2404).
    static BYTES: [u8; 24] = hex!("06 04 0000 00001000 00000007 0102030405060708090a0b0c");

    fn repr() -> Repr<'static> {
        Repr {
            next_header: 6,
            spi: 0x1000,
            sequence: 7,
            icv: &BYTES[12..],
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.payload_len(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.spi(), 0x1000);
        assert_eq!(p.sequence(), 7);
        assert_eq!(p.icv(), &hex!("0102030405060708090a0b0c"));
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(6);
        p.set_payload_len(4);
        p.clear_reserved();
        p.set_spi(0x1000);
        p.set_sequence(7);
        p.icv_mut()
            .copy_from_slice(&hex!("0102030405060708090a0b0c"));
        assert_eq!(b, BYTES);
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
        assert_eq!(
            repr().to_string(),
            "AH nh=6 spi=0x00001000 seq=7 icv_len=12"
        );
    }

    #[test]
    fn emit() {
        let mut b = [0xa5u8; 24];
        repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, BYTES);
    }

    #[test]
    fn truncated_and_bad_lengths() {
        for n in 0..24 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { .. })
            ));
        }
        // Payload Len 0 (8 octets: no room for the sequence number) and 3 (20 octets: not
        // a multiple of 8) are not allowed in IPv6.
        for pl in [0u8, 3] {
            let mut b = BYTES;
            b[1] = pl;
            assert!(matches!(
                Packet::new_checked(&b[..]),
                Err(Error::BadLength { .. })
            ));
        }
    }

    proptest! {
        #[test]
        fn roundtrip(nh in any::<u8>(), spi in any::<u32>(), seq in any::<u32>(), units in 0usize..8, fill in any::<u8>()) {
            let icv = vec![fill; 8 * units + 4];
            let r = Repr { next_header: nh, spi, sequence: seq, icv: &icv };
            let mut b = vec![0xa5u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
