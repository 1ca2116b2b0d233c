//! Shim6 (RFC 5533) and REAP (RFC 5534) headers: the payload extension header, the
//! control-message header with its checksum, every control message and every option.
//!
//! Every Shim6 header starts with the same 17 bits (RFC 5533 §5):
//! `Next Header (8) | Hdr Ext Len (8) | P (1)`. P = 1 is the 8-octet
//! [payload extension header](payload); P = 0 is a control message.
//!
//! # Layout
//! | module | contents | specification |
//! |---|---|---|
//! | [`payload`] | payload extension header | RFC 5533 §5.2 |
//! | [`control`] | control header view ([`control::Packet`]), checksum, [`MessageType`], size limits | RFC 5533 §5.3, §12.3 |
//! | [`message`] | [`Message`]: parse / emit / `to_vec` over every control message | RFC 5533 §5 |
//! | [`handshake`] | I1, R1, I2, R2, R1bis, I2bis | RFC 5533 §5.4–§5.9 |
//! | [`update`] | Update Request, Update Acknowledgement | RFC 5533 §5.10–§5.11 |
//! | [`probe`] | Keepalive, Probe, probe records, REAP state | RFC 5534 §5.1–§5.2 |
//! | [`error_message`] | Error message and codes | RFC 5533 §5.14 |
//! | [`option`] | option TLV, iterator with offsets, every option's [`option::Repr`] | RFC 5533 §5.15, RFC 5534 §5.3 |
//! | [`locator`] | Locator List and Locator Preferences bodies | RFC 5533 §5.15.2–§5.15.3 |
//!
//! # Receiving a control message
//! ```
//! use shim6_wire::shim6::{Message, control::Packet};
//!
//! # let bytes = [0x3b, 0x01, 0x01, 0x00, 0x56, 0x2b, 0x01, 0x23,
//! #              0x45, 0x67, 0x89, 0xab, 0xde, 0xad, 0xbe, 0xef];
//! let packet = Packet::new_checked(&bytes[..])?;          // lengths (drop on error)
//! if let Some(opt) = packet.unrecognized_critical_option()? {
//!     // Answer with an Error message, code 1, Pointer = opt.offset (+ headers before).
//!     # let _ = opt;
//! }
//! let message = Message::parse(&packet)?;                 // checksum, type, options
//! assert_eq!(message.to_string(), "Shim6 I1 init_ct=0x0123456789ab init_nonce=0xdeadbeef");
//! assert_eq!(message.to_vec()?, bytes);
//! # Ok::<(), shim6_wire::Error>(())
//! ```

pub mod control;
pub mod error_message;
pub mod handshake;
pub mod locator;
pub mod message;
pub mod option;
pub mod payload;
pub mod probe;
#[cfg(test)]
mod testgen;
pub mod update;

pub use control::MessageType;
pub use message::Message;

use core::fmt;

/// IP protocol number of every Shim6 header (RFC 5533 §17, IANA).
pub const IP_PROTO_SHIM6: u8 = 140;

/// IP protocol number "No Next Header", carried by every control message (RFC 5533 §5.3).
pub const IP_PROTO_NONE: u8 = 59;

/// A 47-bit context tag (RFC 5533 §5.1): the receiver-allocated demultiplexing key of a
/// context. The top 17 bits of the inner `u64` are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContextTag(u64);

impl ContextTag {
    /// The largest valid tag, 2^47 − 1.
    pub const MAX: Self = Self((1 << 47) - 1);

    /// A tag from its numeric value, or `None` if the value needs more than 47 bits.
    #[inline]
    pub const fn new(value: u64) -> Option<Self> {
        if value <= Self::MAX.0 {
            Some(Self(value))
        } else {
            None
        }
    }

    /// A tag from the low 47 bits of `value`; higher bits are discarded.
    #[inline]
    pub const fn from_masked(value: u64) -> Self {
        Self(value & Self::MAX.0)
    }

    /// The numeric value (always < 2^47).
    #[inline]
    pub const fn value(self) -> u64 {
        self.0
    }

    /// Reads a tag from the 6 octets that carry it: bit 0 of `b[0]` (the R or P bit) is
    /// not part of the tag and is ignored.
    #[inline]
    pub fn read(b: [u8; 6]) -> Self {
        let mut v = [0u8; 8];
        v[2..].copy_from_slice(&b);
        Self::from_masked(u64::from_be_bytes(v))
    }

    /// The 6 octets that carry the tag, with the leading flag bit (R or P) clear.
    #[inline]
    pub fn to_bytes(self) -> [u8; 6] {
        let v = self.0.to_be_bytes();
        [v[2], v[3], v[4], v[5], v[6], v[7]]
    }

    /// Writes the tag into `b` (6 octets), keeping the top bit of `b[0]` as it was.
    #[inline]
    pub fn write(self, b: &mut [u8]) {
        let t = self.to_bytes();
        b[0] = (b[0] & 0x80) | t[0];
        b[1..6].copy_from_slice(&t[1..]);
    }
}

impl fmt::Display for ContextTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#014x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_bounds() {
        assert_eq!(ContextTag::new(1 << 47), None);
        assert_eq!(ContextTag::new((1 << 47) - 1), Some(ContextTag::MAX));
        assert_eq!(ContextTag::from_masked(u64::MAX), ContextTag::MAX);
    }

    #[test]
    fn tag_bytes_keep_the_flag_bit() {
        let t = ContextTag::new(0x0123_4567_89ab).unwrap();
        let mut b = [0x80, 0, 0, 0, 0, 0];
        t.write(&mut b);
        assert_eq!(b, [0x81, 0x23, 0x45, 0x67, 0x89, 0xab]);
        assert_eq!(ContextTag::read(b), t);
        assert_eq!(t.to_string(), "0x0123456789ab");
    }
}
