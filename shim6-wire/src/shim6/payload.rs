//! The Shim6 payload extension header (RFC 5533 §5.1): 8 octets, P = 1, no checksum.
//!
//! ```text
//!  octet 0        octet 1        octet 2               octets 3..7
//! +--------------+--------------+-+-------------+-------------------------------+
//! | Next Header  | Hdr Ext Len=0|1| Receiver Context Tag (47 bits, MSB first)   |
//! +--------------+--------------+-+-------------+-------------------------------+
//! ```
//!
//! This is the hot path: [`Packet::new_checked`] does the one length check, after which
//! no accessor can panic.

use core::fmt;

use super::ContextTag;
use crate::error::{Error, Result, check_len};

/// Length of the payload extension header, always 8 octets (Hdr Ext Len = 0).
pub const HEADER_LEN: usize = 8;

/// Byte ranges of the fields.
mod field {
    use core::ops::Range;
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    pub const P_AND_TAG: Range<usize> = 2..8;
}

/// A read/write view of a payload extension header at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without any check. Accessors may panic if it is shorter than
    /// [`HEADER_LEN`]; use [`Packet::new_checked`] on untrusted input.
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

    /// The one validity check: 8 octets present, P = 1 and Hdr Ext Len = 0.
    #[inline]
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("payload extension header", b, HEADER_LEN)?;
        if b[field::P_AND_TAG.start] & 0x80 == 0 {
            return Err(Error::Malformed("payload extension header with P = 0"));
        }
        if b[field::HDR_EXT_LEN] != 0 {
            return Err(Error::BadLength {
                what: "payload extension header Hdr Ext Len",
                value: usize::from(b[field::HDR_EXT_LEN]),
            });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Next Header field: the protocol of what follows the Shim6 header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The Receiver Context Tag.
    #[inline]
    pub fn context_tag(&self) -> ContextTag {
        let b = self.buffer.as_ref();
        let mut t = [0u8; 6];
        t.copy_from_slice(&b[field::P_AND_TAG]);
        ContextTag::read(t)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Next Header field.
    #[inline]
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value;
    }

    /// Sets the Receiver Context Tag and the P bit.
    #[inline]
    pub fn set_context_tag(&mut self, tag: ContextTag) {
        let b = &mut self.buffer.as_mut()[field::P_AND_TAG];
        b.copy_from_slice(&tag.to_bytes());
        b[0] |= 0x80;
    }
}

/// The parsed payload extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Protocol of the header that follows (the ULP, or another extension header).
    pub next_header: u8,
    /// The context tag the *receiver* of the packet allocated.
    pub context_tag: ContextTag,
}

impl Repr {
    /// Parses a checked view.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check()?;
        Ok(Self {
            next_header: packet.next_header(),
            context_tag: packet.context_tag(),
        })
    }

    /// Octets [`Repr::emit`] writes: always [`HEADER_LEN`].
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 8 octets of `packet`'s buffer.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_next_header(self.next_header);
        packet.buffer.as_mut()[field::HDR_EXT_LEN] = 0;
        packet.set_context_tag(self.context_tag);
    }

    /// The 8 octets of the header.
    #[inline]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.emit(&mut Packet::new_unchecked(&mut b[..]));
        b
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 payload tag={} nh={}",
            self.context_tag, self.next_header
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Protocol digest §1.17: Next Header = TCP (6), tag 0x0123456789ab.
    static BYTES: [u8; 8] = [0x06, 0x00, 0x81, 0x23, 0x45, 0x67, 0x89, 0xab];

    fn repr() -> Repr {
        Repr {
            next_header: 6,
            context_tag: ContextTag::new(0x0123_4567_89ab).unwrap(),
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.context_tag().value(), 0x0123_4567_89ab);
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 8];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(6);
        p.buffer[1] = 0;
        p.set_context_tag(ContextTag::new(0x0123_4567_89ab).unwrap());
        assert_eq!(b, BYTES);
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn emit_over_garbage() {
        let mut b = [0xa5u8; 8];
        repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, BYTES);
        assert_eq!(repr().to_bytes(), BYTES);
        assert_eq!(repr().buffer_len(), 8);
    }

    #[test]
    fn truncated_at_every_length() {
        for n in 0..HEADER_LEN {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { needed: 8, .. })
            ));
        }
    }

    #[test]
    fn rejects_control_and_long_headers() {
        let mut b = BYTES;
        b[2] &= 0x7f;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Malformed(_))
        ));
        let mut b = BYTES;
        b[1] = 1;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::BadLength { .. })
        ));
    }

    #[test]
    fn display() {
        assert_eq!(repr().to_string(), "Shim6 payload tag=0x0123456789ab nh=6");
    }

    proptest! {
        #[test]
        fn roundtrip(nh in any::<u8>(), tag in 0u64..(1 << 47)) {
            let r = Repr { next_header: nh, context_tag: ContextTag::new(tag).unwrap() };
            let b = r.to_bytes();
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p).unwrap().to_string();
            }
        }
    }
}
