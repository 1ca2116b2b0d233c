//! The Error message (type 68, RFC 5533 §5.14).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       59      |  Hdr Ext Len  |0|  Type = 68  |  Error Code |0|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Checksum           |            Pointer            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Packet in error                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Two points the RFC leaves open, decided here (protocol digest §7.11):
//! - **Padding.** The packet in error is padded with zero octets to a multiple of 8 (the
//!   header must be), and to at least 8 octets (Hdr Ext Len ≥ 1, §5.14). A receiver
//!   cannot tell padding from data; [`ErrorMessage::packet_in_error`] after parsing holds
//!   both.
//! - **Size.** "As much of the invoking packet as possible without the Error message
//!   packet exceeding the minimum IPv6 MTU": the 1280 octets count the IPv6 header and
//!   every header before the Shim6 one. [`ErrorMessage::new`] takes that overhead as an
//!   argument; `emit` on its own truncates to [`MAX_PACKET_IN_ERROR`], which assumes a
//!   plain 40-octet IPv6 header, so an emitted Error message is never over
//!   [`MAX_MESSAGE_LEN`].
//!
//! The Pointer's reference point is not stated either; shim6-proto counts from the first
//! octet of the invoking packet's IPv6 header, as `ICMPv6` Parameter Problem does, since
//! the packet in error starts there.

use core::fmt;

use super::control::{MAX_MESSAGE_LEN, MAX_SIGNALLING_PACKET_LEN, MessageType, Packet};
use super::message::{Body, message_api};
use super::option::Repr as OptionRepr;
use crate::error::{Error, Result};

/// Octets before the packet in error: the common header and the Pointer.
const FIXED_LEN: usize = 8;

/// The most octets of packet in error an Error message carries:
/// [`MAX_MESSAGE_LEN`] − 8 = 1232, a multiple of 8.
pub const MAX_PACKET_IN_ERROR: usize = MAX_MESSAGE_LEN - FIXED_LEN;

/// An Error Code (RFC 5533 §5.14), 7 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: unknown Shim6 message type; Pointer at the type octet (RFC 5533 §12.3).
    UnknownMessageType,
    /// 1: critical option not recognised; Pointer at the option's Type field (§5.15).
    UnrecognizedCriticalOption,
    /// 2: locator verification method failed; Pointer at the offending verification
    /// method octet.
    LocatorVerificationFailed,
    /// 3: Locator List Generation number out of sync.
    LocatorListGenerationOutOfSync,
    /// 4: wrong number of elements in a Locator Preferences option.
    WrongLocatorPreferencesCount,
    /// Any other value: 5–19 Standards Action, 20–119 unassigned, 120–127 reserved for
    /// debugging. Must fit in 7 bits to be emitted.
    Other(u8),
}

impl ErrorCode {
    /// Whether the code lies in 120–127, which implementations may send while debugging
    /// instead of dropping silently (RFC 5533 §5.14).
    pub fn is_debugging(self) -> bool {
        (120..=127).contains(&u8::from(self))
    }
}

impl From<u8> for ErrorCode {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::UnknownMessageType,
            1 => Self::UnrecognizedCriticalOption,
            2 => Self::LocatorVerificationFailed,
            3 => Self::LocatorListGenerationOutOfSync,
            4 => Self::WrongLocatorPreferencesCount,
            other => Self::Other(other),
        }
    }
}

impl From<ErrorCode> for u8 {
    fn from(c: ErrorCode) -> Self {
        match c {
            ErrorCode::UnknownMessageType => 0,
            ErrorCode::UnrecognizedCriticalOption => 1,
            ErrorCode::LocatorVerificationFailed => 2,
            ErrorCode::LocatorListGenerationOutOfSync => 3,
            ErrorCode::WrongLocatorPreferencesCount => 4,
            ErrorCode::Other(v) => v,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::UnknownMessageType => "unknown Shim6 message type",
            Self::UnrecognizedCriticalOption => "critical option not recognised",
            Self::LocatorVerificationFailed => "locator verification method failed",
            Self::LocatorListGenerationOutOfSync => "Locator List Generation out of sync",
            Self::WrongLocatorPreferencesCount => "wrong number of elements in Locator Preferences",
            Self::Other(v) if (120..=127).contains(v) => "debugging",
            Self::Other(_) => "unassigned",
        };
        write!(f, "{} ({name})", u8::from(*self))
    }
}

/// The Error message (type 68, RFC 5533 §5.14). It is never acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorMessage {
    /// What went wrong.
    pub code: ErrorCode,
    /// Octet offset in the invoking packet where the error was detected.
    pub pointer: u16,
    /// The start of the invoking packet. `emit` pads it with zeros to a multiple of 8
    /// octets (at least 8) and truncates it to [`MAX_PACKET_IN_ERROR`]; a parsed message
    /// holds everything after the Pointer, padding included.
    pub packet_in_error: Vec<u8>,
}

impl ErrorMessage {
    /// An Error message about `invoking`, the packet that caused it from its IPv6 header
    /// on, cut and padded so that the Error packet, with `overhead` octets of IPv6
    /// header and extension headers in front of its Shim6 header, stays within
    /// [`MAX_SIGNALLING_PACKET_LEN`] (RFC 5533 §5.14). `overhead` is 40 for a plain IPv6
    /// header.
    ///
    /// With an `overhead` over 1264 nothing of the invoking packet fits; the message still
    /// carries the 8 zero octets its minimum length requires.
    pub fn new(code: ErrorCode, pointer: u16, invoking: &[u8], overhead: usize) -> Self {
        let room = MAX_SIGNALLING_PACKET_LEN.saturating_sub(overhead + FIXED_LEN) / 8 * 8;
        let keep = invoking.len().min(room).min(MAX_PACKET_IN_ERROR);
        let mut packet_in_error = invoking[..keep].to_vec();
        packet_in_error.resize(padded_len(keep), 0);
        Self {
            code,
            pointer,
            packet_in_error,
        }
    }

    /// Octets of packet in error `emit` writes, padding included.
    fn emitted_packet_len(&self) -> usize {
        padded_len(self.packet_in_error.len().min(MAX_PACKET_IN_ERROR))
    }
}

/// Rounds up to a multiple of 8, at least 8, at most [`MAX_PACKET_IN_ERROR`].
fn padded_len(len: usize) -> usize {
    len.div_ceil(8)
        .max(1)
        .saturating_mul(8)
        .min(MAX_PACKET_IN_ERROR)
}

impl Body for ErrorMessage {
    const TYPE: MessageType = MessageType::Error;
    fn fixed_len(&self) -> usize {
        FIXED_LEN + self.emitted_packet_len()
    }
    fn type_specific(&self) -> u8 {
        u8::from(self.code)
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_error_pointer(self.pointer);
        let n = self.emitted_packet_len();
        let keep = self.packet_in_error.len().min(n);
        let dst = &mut p.as_bytes_mut()[FIXED_LEN..FIXED_LEN + n];
        dst[..keep].copy_from_slice(&self.packet_in_error[..keep]);
        dst[keep..].fill(0);
    }
    fn options(&self) -> &[OptionRepr] {
        // RFC 5533 §5.14: the Error message has no options area.
        &[]
    }
    fn check(&self) -> Result<()> {
        if u8::from(self.code) > 0x7f {
            return Err(Error::Malformed("Error Code does not fit in 7 bits"));
        }
        Ok(())
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, _options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            code: ErrorCode::from(p.error_code()),
            pointer: p.error_pointer(),
            packet_in_error: p.error_packet().to_vec(),
        })
    }
}
message_api!(ErrorMessage);

impl fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 Error code={} pointer={} packet_in_error={} octets",
            self.code,
            self.pointer,
            self.packet_in_error.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::control::IPV6_HEADER_LEN;
    use super::super::message::Message;
    use super::super::testgen::check_message_bytes;
    use super::*;
    use hex_literal::hex;

    // Code 1, Pointer 0x38, 13 octets of invoking packet padded to 16.
    static ERROR_BYTES: [u8; 24] = hex!("3b024402 e46a0038 60000000 00183c40 00000000 00000000");
    const INVOKING: [u8; 13] = hex!("60000000 00183c40 0000000000");

    #[test]
    fn error_four_directions() {
        let m = ErrorMessage::new(
            ErrorCode::UnrecognizedCriticalOption,
            0x38,
            &INVOKING,
            IPV6_HEADER_LEN,
        );
        assert_eq!(m.packet_in_error.len(), 16);
        check_message_bytes(
            &ERROR_BYTES,
            &Message::Error(m.clone()),
            |p| {
                assert_eq!(p.error_code(), 1);
                assert_eq!(p.error_pointer(), 0x38);
                assert_eq!(p.error_packet(), &ERROR_BYTES[8..]);
                assert_eq!(p.options().count(), 0);
            },
            |p| {
                p.set_error_code(1);
                p.set_error_pointer(0x38);
                p.as_bytes_mut()[8..21].copy_from_slice(&INVOKING);
                p.as_bytes_mut()[21..24].fill(0);
            },
        );
        assert_eq!(
            m.to_string(),
            "Shim6 Error code=1 (critical option not recognised) pointer=56 \
             packet_in_error=16 octets"
        );
        // `emit` pads an unpadded packet in error the same way.
        let raw = ErrorMessage {
            packet_in_error: INVOKING.to_vec(),
            ..m
        };
        assert_eq!(Message::Error(raw).to_vec().unwrap(), ERROR_BYTES);
    }

    #[test]
    fn empty_packet_in_error_still_has_eight_octets() {
        let m = ErrorMessage {
            code: ErrorCode::UnknownMessageType,
            pointer: 42,
            packet_in_error: vec![],
        };
        let b = Message::Error(m).to_vec().unwrap();
        assert_eq!(b.len(), 16);
        assert_eq!(b[1], 1, "Hdr Ext Len ≥ 1 (RFC 5533 §5.14)");
        assert_eq!(b[8..], [0; 8]);
    }

    #[test]
    fn never_exceeds_the_signalling_limit() {
        let big = vec![0x5au8; 3000];
        for overhead in [IPV6_HEADER_LEN, 48, 41, 100, 1264, 1272, 5000] {
            let m = ErrorMessage::new(ErrorCode::Other(120), 0, &big, overhead);
            assert_eq!(m.packet_in_error.len() % 8, 0);
            let b = Message::Error(m.clone()).to_vec().unwrap();
            if overhead <= 1264 {
                assert!(
                    overhead + b.len() <= MAX_SIGNALLING_PACKET_LEN,
                    "{overhead}"
                );
            }
            // Whatever `new` kept, the message parses back to it.
            assert_eq!(Message::parse_bytes(&b).unwrap(), Message::Error(m));
        }
        // The plain-IPv6 case uses all 1280 octets.
        let m = ErrorMessage::new(ErrorCode::Other(120), 0, &big, IPV6_HEADER_LEN);
        assert_eq!(m.packet_in_error.len(), MAX_PACKET_IN_ERROR);
        assert_eq!(m.packet_in_error.len(), 1232);
        // `emit` alone truncates too.
        let raw = ErrorMessage {
            code: ErrorCode::UnknownMessageType,
            pointer: 2,
            packet_in_error: big.clone(),
        };
        let b = Message::Error(raw).to_vec().unwrap();
        assert_eq!(b.len(), MAX_MESSAGE_LEN);
        assert_eq!(b[8..], big[..MAX_PACKET_IN_ERROR]);
    }

    #[test]
    fn codes() {
        for v in 0..=127u8 {
            let c = ErrorCode::from(v);
            assert_eq!(u8::from(c), v);
            assert_eq!(c.is_debugging(), v >= 120);
        }
        assert_eq!(ErrorCode::from(4), ErrorCode::WrongLocatorPreferencesCount);
        assert_eq!(ErrorCode::Other(7).to_string(), "7 (unassigned)");
        assert_eq!(ErrorCode::Other(121).to_string(), "121 (debugging)");
        let bad = ErrorMessage {
            code: ErrorCode::Other(128),
            pointer: 0,
            packet_in_error: vec![],
        };
        assert!(matches!(
            Message::Error(bad).to_vec(),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn long_received_error_is_kept_whole() {
        // A peer may send a longer Error message than we would (e.g. a 1280-octet one
        // behind no extension header but a larger MTU); parsing keeps all of it.
        let mut b = vec![0u8; 2048];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(59);
        p.set_hdr_ext_len(255);
        p.set_message_type(MessageType::Error);
        p.set_error_code(0);
        p.set_error_pointer(2);
        p.fill_checksum();
        match Message::parse_bytes(&b).unwrap() {
            Message::Error(e) => assert_eq!(e.packet_in_error.len(), 2040),
            other => panic!("{other:?}"),
        }
    }
}
