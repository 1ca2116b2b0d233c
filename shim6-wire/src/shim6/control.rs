//! The common Shim6 control-message header (RFC 5533 §5.3) and the zero-copy view of a
//! whole control message.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Header  |  Hdr Ext Len  |0|    Type     |Type-specific|S|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |  type-specific ...            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`Packet`] is one view for every message type, as smoltcp's `ICMPv6` packet is: the
//! common fields, then accessors named after the message-specific fields they read (each
//! says which messages it applies to). [`Packet::check`] is the one length check: after
//! it passes, no accessor reading a field of the packet's own message type panics.
//!
//! The parsed forms live next door: [`handshake`](super::handshake) (I1 … I2bis),
//! [`update`](super::update), [`probe`](super::probe) (Keepalive, Probe),
//! [`error_message`](super::error_message), all gathered by [`Message`](super::message::Message).

use core::fmt;

use super::ContextTag;
use super::option::{OptionType, Options, RawOption};
use super::probe::{PROBE_RECORD_LEN, ProbeRecord};
use crate::checksum;
use crate::error::{Error, Result, check_len};

/// Octets of the smallest control header (Hdr Ext Len = 0): the common fields of RFC 5533
/// §5.3 rounded up to the 8-octet unit.
pub const MIN_HEADER_LEN: usize = 8;

/// The largest control message Hdr Ext Len can describe: (255 + 1) · 8 octets
/// (RFC 5533 §5.3, the IPv6 extension-header length convention).
pub const MAX_HEADER_LEN: usize = 2048;

/// The most octets a Shim6 signalling packet may have, *including* the IPv6 header and
/// any extension headers in front of the Shim6 header: the IPv6 minimum MTU
/// (RFC 5533 §5.1 "may not be larger than 1280 bytes", read as MUST NOT, protocol digest
/// §7.9).
pub const MAX_SIGNALLING_PACKET_LEN: usize = 1280;

/// Octets of the fixed IPv6 header (RFC 8200 §3).
pub const IPV6_HEADER_LEN: usize = 40;

/// The largest control message shim6d sends: [`MAX_SIGNALLING_PACKET_LEN`] minus a plain
/// IPv6 header. shim6d puts no extension header in front of its control messages, so
/// the 40-octet IPv6 header is the whole overhead; a caller that adds headers must
/// subtract them itself (see [`ErrorMessage::new`](super::error_message::ErrorMessage::new)).
pub const MAX_MESSAGE_LEN: usize = MAX_SIGNALLING_PACKET_LEN - IPV6_HEADER_LEN;

/// Offset of the octet holding P and the message type. An unknown message type is
/// answered with an Error message of code 0 whose Pointer names this octet
/// (RFC 5533 §12.3).
pub const TYPE_OFFSET: usize = field::TYPE;

/// Byte ranges of the fields, from the first octet of the Shim6 header.
mod field {
    use core::ops::Range;

    // RFC 5533 §5.3: common to every control message.
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    pub const TYPE: usize = 2;
    pub const TYPE_SPECIFIC: usize = 3;
    pub const CHECKSUM: Range<usize> = 4..6;

    // R | 47-bit tag: I1, I2, I2bis (initiator), R2 (responder), R1bis (packet),
    // Update Request/Ack, Keepalive, Probe (receiver). RFC 5533 §5.4–§5.11, RFC 5534 §5.
    pub const CONTEXT_TAG: Range<usize> = 6..12;
    // Initiator Nonce (I1, I2, I2bis, R2), Responder Nonce (R1, R1bis), Request Nonce
    // (Update Request/Ack).
    pub const NONCE: Range<usize> = 12..16;

    // R1, RFC 5533 §5.5.
    pub const R1_RESERVED: Range<usize> = 6..8;
    pub const R1_INITIATOR_NONCE: Range<usize> = 8..12;

    // I2 and I2bis, RFC 5533 §5.6 and §5.9.
    pub const I2_RESPONDER_NONCE: Range<usize> = 16..20;
    pub const I2_RESERVED: Range<usize> = 20..24;
    // I2bis: 49 reserved bits, then the 47-bit Packet Context Tag.
    pub const I2BIS_RESERVED: Range<usize> = 20..26;
    pub const I2BIS_PACKET_CONTEXT_TAG: Range<usize> = 26..32;

    // Keepalive, RFC 5534 §5.1.
    pub const KEEPALIVE_RESERVED: Range<usize> = 12..16;

    // Probe, RFC 5534 §5.2: Precvd (high nibble) | Psent (low nibble), Sta (top 2 bits)
    // and 22 reserved bits, then the records.
    pub const PROBE_COUNTS: usize = 12;
    pub const PROBE_STA: usize = 13;
    pub const PROBE_RESERVED: Range<usize> = 14..16;
    pub const PROBE_RECORDS: usize = 16;

    // Error, RFC 5533 §5.14.
    pub const ERROR_POINTER: Range<usize> = 6..8;
    pub const ERROR_PACKET: usize = 8;
}

/// A Shim6 control message type (RFC 5533 §5.3, §17; RFC 5534 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// 1: I1, the first message of the context-establishment exchange (RFC 5533 §5.4).
    I1,
    /// 2: R1 (RFC 5533 §5.5).
    R1,
    /// 3: I2 (RFC 5533 §5.6).
    I2,
    /// 4: R2 (RFC 5533 §5.7).
    R2,
    /// 5: R1bis, "I have no context for that tag" (RFC 5533 §5.8).
    R1bis,
    /// 6: I2bis (RFC 5533 §5.9).
    I2bis,
    /// 64: Update Request (RFC 5533 §5.10).
    UpdateRequest,
    /// 65: Update Acknowledgement (RFC 5533 §5.11).
    UpdateAcknowledgement,
    /// 66: Keepalive (RFC 5534 §5.1).
    Keepalive,
    /// 67: Probe (RFC 5534 §5.2).
    Probe,
    /// 68: Error (RFC 5533 §5.14).
    Error,
    /// Any other 7-bit value: 0 (reserved), 7–63 and 69–127 (unassigned or
    /// experimental). Values above 127 cannot occur on the wire.
    Unknown(u8),
}

impl MessageType {
    /// Every assigned type, in numeric order.
    pub const ALL: [Self; 11] = [
        Self::I1,
        Self::R1,
        Self::I2,
        Self::R2,
        Self::R1bis,
        Self::I2bis,
        Self::UpdateRequest,
        Self::UpdateAcknowledgement,
        Self::Keepalive,
        Self::Probe,
        Self::Error,
    ];

    /// The RFC's name of the message.
    pub const fn name(self) -> &'static str {
        match self {
            Self::I1 => "I1",
            Self::R1 => "R1",
            Self::I2 => "I2",
            Self::R2 => "R2",
            Self::R1bis => "R1bis",
            Self::I2bis => "I2bis",
            Self::UpdateRequest => "Update Request",
            Self::UpdateAcknowledgement => "Update Acknowledgement",
            Self::Keepalive => "Keepalive",
            Self::Probe => "Probe",
            Self::Error => "Error",
            Self::Unknown(_) => "unknown",
        }
    }

    /// Whether a message of this type that names a context the receiver does not have
    /// is answered with an R1bis: types 64–127 are, 0–63 never are (RFC 5533 §5.3,
    /// §7.17).
    pub fn r1bis_on_unknown_context(self) -> bool {
        (64..=127).contains(&u8::from(self))
    }

    /// Octets of the fixed part, from the first octet of the header to the first option,
    /// or `None` for an unknown type. This is the minimum message size of the
    /// protocol digest §1.4.1; a Probe needs 40 more octets per record on top
    /// (RFC 5534 §5.2), and an Error's fixed part is 8 octets but RFC 5533 §5.14 demands
    /// Hdr Ext Len ≥ 1, hence 16.
    pub const fn fixed_len(self) -> Option<usize> {
        match self {
            Self::I1
            | Self::R1
            | Self::R2
            | Self::R1bis
            | Self::UpdateRequest
            | Self::UpdateAcknowledgement
            | Self::Keepalive
            | Self::Probe
            | Self::Error => Some(16),
            Self::I2 => Some(24),
            Self::I2bis => Some(32),
            Self::Unknown(_) => None,
        }
    }

    /// The smallest Hdr Ext Len allowed for this type (protocol digest §1.4.1), or `None`
    /// for an unknown type.
    pub const fn min_hdr_ext_len(self) -> Option<u8> {
        match self.fixed_len() {
            Some(n) => Some((n / 8 - 1) as u8),
            None => None,
        }
    }

    /// Whether RFC 5533 lists `option` as valid in this message (the per-message option
    /// lists of §5.4–§5.14, protocol digest §1.4.2), plus Keepalive Timeout in I2, I2bis,
    /// R2 and Update Request (RFC 5534 §5.3, digest §7.15).
    ///
    /// An option that is unknown, or known but not valid in the message, is ignored when
    /// its C bit is 0 and makes the whole message unprocessable when it is 1
    /// (RFC 5533 §5.15); see [`Packet::unrecognized_critical_option`].
    pub fn allows_option(self, option: OptionType) -> bool {
        use OptionType as O;
        match self {
            // §5.4: ULID Pair, Forked Instance Identifier.
            Self::I1 => matches!(option, O::UlidPair | O::ForkedInstanceId),
            // §5.5, §5.8: Responder Validator.
            Self::R1 | Self::R1bis => matches!(option, O::ResponderValidator),
            // §5.6, §5.9: everything needed to create the context at the responder.
            Self::I2 | Self::I2bis => matches!(
                option,
                O::ResponderValidator
                    | O::UlidPair
                    | O::ForkedInstanceId
                    | O::LocatorList
                    | O::LocatorPreferences
                    | O::CgaParameterDataStructure
                    | O::CgaSignature
                    | O::KeepaliveTimeout
            ),
            // §5.7, §5.10: the locator set and its security.
            Self::R2 | Self::UpdateRequest => matches!(
                option,
                O::LocatorList
                    | O::LocatorPreferences
                    | O::CgaParameterDataStructure
                    | O::CgaSignature
                    | O::KeepaliveTimeout
            ),
            // §5.11, RFC 5534 §5.1/§5.2: no options defined; the Error message has no
            // options area at all (§5.14).
            Self::UpdateAcknowledgement
            | Self::Keepalive
            | Self::Probe
            | Self::Error
            | Self::Unknown(_) => false,
        }
    }

    /// The `what` of a [`Error::BadLength`] about this type's Hdr Ext Len.
    const fn hdr_ext_len_what(self) -> &'static str {
        match self {
            Self::I1 => "I1 Hdr Ext Len",
            Self::R1 => "R1 Hdr Ext Len",
            Self::I2 => "I2 Hdr Ext Len",
            Self::R2 => "R2 Hdr Ext Len",
            Self::R1bis => "R1bis Hdr Ext Len",
            Self::I2bis => "I2bis Hdr Ext Len",
            Self::UpdateRequest => "Update Request Hdr Ext Len",
            Self::UpdateAcknowledgement => "Update Acknowledgement Hdr Ext Len",
            Self::Keepalive => "Keepalive Hdr Ext Len",
            Self::Probe => "Probe Hdr Ext Len",
            Self::Error => "Error Hdr Ext Len",
            Self::Unknown(_) => "Shim6 control Hdr Ext Len",
        }
    }
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::I1,
            2 => Self::R1,
            3 => Self::I2,
            4 => Self::R2,
            5 => Self::R1bis,
            6 => Self::I2bis,
            64 => Self::UpdateRequest,
            65 => Self::UpdateAcknowledgement,
            66 => Self::Keepalive,
            67 => Self::Probe,
            68 => Self::Error,
            other => Self::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> Self {
        match t {
            MessageType::I1 => 1,
            MessageType::R1 => 2,
            MessageType::I2 => 3,
            MessageType::R2 => 4,
            MessageType::R1bis => 5,
            MessageType::I2bis => 6,
            MessageType::UpdateRequest => 64,
            MessageType::UpdateAcknowledgement => 65,
            MessageType::Keepalive => 66,
            MessageType::Probe => 67,
            MessageType::Error => 68,
            MessageType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(v) => write!(f, "unknown type {v}"),
            known => f.write_str(known.name()),
        }
    }
}

/// A read/write view of a Shim6 control message at the start of a buffer.
///
/// The message occupies the first [`Packet::header_len`] octets (Hdr Ext Len); anything
/// after them is not part of it (RFC 5533 §5.3: the checksum does not cover it, and
/// protocol digest §7.21: a receiver ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without any check. Accessors may panic on a short buffer; use
    /// [`Packet::new_checked`] on untrusted input.
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

    /// The one validity check (RFC 5533 §5.3, §12.3):
    /// 1. the 8-octet common header is present;
    /// 2. P = 0 (P = 1 is the payload extension header, RFC 5533 §5.2);
    /// 3. Hdr Ext Len does not run past the end of the buffer;
    /// 4. for a known type, Hdr Ext Len covers the type's fixed part (protocol digest
    ///    §1.4.1), and for a Probe also the Psent + Precvd records (RFC 5534 §5.2).
    ///
    /// It checks neither the checksum ([`Packet::verify_checksum`]) nor the options
    /// (the [`Packet::options`] iterator reports their errors).
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("Shim6 control header", b, MIN_HEADER_LEN)?;
        if b[field::TYPE] & 0x80 != 0 {
            return Err(Error::Malformed(
                "Shim6 header with P = 1 is a payload extension header, not a control message",
            ));
        }
        let len = self.header_len();
        if len > b.len() {
            return Err(Error::Truncated {
                what: "Shim6 control message (Hdr Ext Len)",
                needed: len,
                available: b.len(),
            });
        }
        let ty = self.message_type();
        if let Some(fixed) = ty.fixed_len() {
            if len < fixed {
                return Err(Error::BadLength {
                    what: ty.hdr_ext_len_what(),
                    value: usize::from(self.hdr_ext_len()),
                });
            }
        }
        if ty == MessageType::Probe && len < self.probe_records_end() {
            return Err(Error::BadLength {
                what: "Probe Hdr Ext Len (too short for Psent + Precvd records)",
                value: usize::from(self.hdr_ext_len()),
            });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer, including anything after the message.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The message itself: the first [`Packet::header_len`] octets.
    ///
    /// # Panics
    /// If the buffer is shorter than that; [`Packet::check`] rules it out.
    #[inline]
    pub fn message_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// Next Header: 59 (No Next Header) in every message shim6d sends (RFC 5533 §5.3).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hdr Ext Len: the message length in 8-octet units, not counting the first 8 octets.
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// The message length in octets, `(Hdr Ext Len + 1) · 8`.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * 8
    }

    /// The P bit: 0 for a control message.
    #[inline]
    pub fn p_bit(&self) -> bool {
        self.buffer.as_ref()[field::TYPE] & 0x80 != 0
    }

    /// The 7-bit message type.
    #[inline]
    pub fn message_type(&self) -> MessageType {
        MessageType::from(self.buffer.as_ref()[field::TYPE] & 0x7f)
    }

    /// The 7 type-specific bits: Reserved1, or the Error Code of an Error message.
    #[inline]
    pub fn type_specific(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE_SPECIFIC] >> 1
    }

    /// The S bit: 0 for Shim6 (a HIP header has 1 there, RFC 5533 §5.3). Not checked on
    /// receipt.
    #[inline]
    pub fn s_bit(&self) -> bool {
        self.buffer.as_ref()[field::TYPE_SPECIFIC] & 0x01 != 0
    }

    /// The Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::CHECKSUM.start], b[field::CHECKSUM.start + 1]])
    }

    /// Whether the checksum verifies: the one's-complement sum over exactly
    /// [`Packet::header_len`] octets, with no pseudo-header, is 0xffff (RFC 5533 §5.3).
    ///
    /// A buffer shorter than [`Packet::header_len`] does not verify.
    ///
    /// # Fuzzing
    /// Under `cfg(fuzzing)` this always returns `true`, so that fuzzers reach the
    /// parsers behind the checksum.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        if cfg!(fuzzing) {
            return true;
        }
        self.buffer
            .as_ref()
            .get(..self.header_len())
            .is_some_and(|m| checksum::checksum(m) == 0)
    }

    /// The 47-bit context tag in octets 6–11: the Initiator Context Tag of I1, I2 and
    /// I2bis, the Responder Context Tag of R2, the Packet Context Tag of R1bis, and the
    /// Receiver Context Tag of Update Request, Update Acknowledgement, Keepalive and
    /// Probe. The leading R bit is not part of it.
    #[inline]
    pub fn context_tag(&self) -> ContextTag {
        self.tag_at(field::CONTEXT_TAG.start)
    }

    /// The 32-bit nonce in octets 12–15: the Initiator Nonce of I1, I2, I2bis and R2,
    /// the Responder Nonce of R1 and R1bis, the Request Nonce of Update Request and
    /// Update Acknowledgement.
    #[inline]
    pub fn nonce(&self) -> u32 {
        self.u32_at(field::NONCE.start)
    }

    /// R1 only: the Initiator Nonce, octets 8–11 (RFC 5533 §5.5).
    #[inline]
    pub fn r1_initiator_nonce(&self) -> u32 {
        self.u32_at(field::R1_INITIATOR_NONCE.start)
    }

    /// I2 and I2bis only: the Responder Nonce, octets 16–19 (RFC 5533 §5.6, §5.9).
    #[inline]
    pub fn i2_responder_nonce(&self) -> u32 {
        self.u32_at(field::I2_RESPONDER_NONCE.start)
    }

    /// I2bis only: the Packet Context Tag copied from the R1bis, octets 26–31 after
    /// 49 reserved bits (RFC 5533 §5.9).
    #[inline]
    pub fn i2bis_packet_context_tag(&self) -> ContextTag {
        self.tag_at(field::I2BIS_PACKET_CONTEXT_TAG.start)
    }

    /// Probe only: Psent, the number of "probe sent" records (RFC 5534 §5.2).
    #[inline]
    pub fn probe_psent(&self) -> u8 {
        self.buffer.as_ref()[field::PROBE_COUNTS] & 0x0f
    }

    /// Probe only: Precvd, the number of "probe received" records (RFC 5534 §5.2).
    #[inline]
    pub fn probe_precvd(&self) -> u8 {
        self.buffer.as_ref()[field::PROBE_COUNTS] >> 4
    }

    /// Probe only: the 2-bit Sta field (RFC 5534 §5.2), see
    /// [`ReapState::from_bits`](super::probe::ReapState::from_bits).
    #[inline]
    pub fn probe_sta(&self) -> u8 {
        self.buffer.as_ref()[field::PROBE_STA] >> 6
    }

    /// Probe only: the `i`-th "probe sent" record, or `None` if `i` ≥ Psent.
    pub fn probe_sent(&self, i: usize) -> Option<ProbeRecord> {
        (i < usize::from(self.probe_psent())).then(|| self.probe_record_at(i))
    }

    /// Probe only: the `i`-th "probe received" record, or `None` if `i` ≥ Precvd.
    pub fn probe_received(&self, i: usize) -> Option<ProbeRecord> {
        (i < usize::from(self.probe_precvd()))
            .then(|| self.probe_record_at(usize::from(self.probe_psent()) + i))
    }

    /// Error only: the Error Code, the 7 type-specific bits (RFC 5533 §5.14).
    #[inline]
    pub fn error_code(&self) -> u8 {
        self.type_specific()
    }

    /// Error only: the Pointer, the octet offset in the invoking packet where the error
    /// was detected (RFC 5533 §5.14).
    #[inline]
    pub fn error_pointer(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([
            b[field::ERROR_POINTER.start],
            b[field::ERROR_POINTER.start + 1],
        ])
    }

    /// Error only: the packet in error, everything from octet 8 to the end of the
    /// message, including the sender's zero padding (RFC 5533 §5.14).
    #[inline]
    pub fn error_packet(&self) -> &[u8] {
        &self.message_bytes()[field::ERROR_PACKET..]
    }

    /// Octets from the start of the header to the first option: the type's fixed part,
    /// plus the records of a Probe. For an Error message and an unknown type there is no
    /// options area and this is [`Packet::header_len`].
    pub fn options_offset(&self) -> usize {
        let ty = self.message_type();
        match ty {
            MessageType::Probe => self.probe_records_end(),
            MessageType::Error | MessageType::Unknown(_) => self.header_len(),
            // The other types all have a fixed length (`fixed_len` is `Some`).
            _ => ty.fixed_len().unwrap_or(MIN_HEADER_LEN),
        }
        .min(self.header_len())
    }

    /// Iterates over the options area, yielding each option with its offset from the
    /// first octet of the Shim6 header (RFC 5533 §5.15). The iterator stops after the
    /// first error.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Packet::header_len`]; [`Packet::check`] rules
    /// that out.
    pub fn options(&self) -> Options<'_> {
        let start = self.options_offset();
        Options::new(&self.message_bytes()[start..], start)
    }

    /// The first option that makes the message unprocessable: one with C = 1 whose type
    /// is unknown or not valid in this message type ([`MessageType::allows_option`]).
    /// RFC 5533 §5.15 and §12.3: the receiver MUST NOT process the rest of the message
    /// and sends an Error message with code 1 whose Pointer names the option's first
    /// octet, [`RawOption::offset`] (plus whatever precedes the Shim6 header).
    ///
    /// Options with C = 0 that are unknown or out of place are simply to be ignored and
    /// are not reported.
    ///
    /// # Errors
    /// The first malformed option (see [`Packet::options`]), if it comes before any
    /// unrecognised critical option.
    pub fn unrecognized_critical_option(&self) -> Result<Option<RawOption<'_>>> {
        let ty = self.message_type();
        for opt in self.options() {
            let opt = opt?;
            if opt.critical && !ty.allows_option(opt.option_type) {
                return Ok(Some(opt));
            }
        }
        Ok(None)
    }

    fn tag_at(&self, at: usize) -> ContextTag {
        let mut t = [0u8; 6];
        t.copy_from_slice(&self.buffer.as_ref()[at..at + 6]);
        ContextTag::read(t)
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    fn probe_record_at(&self, index: usize) -> ProbeRecord {
        let at = field::PROBE_RECORDS + index * PROBE_RECORD_LEN;
        ProbeRecord::read(&self.buffer.as_ref()[at..at + PROBE_RECORD_LEN])
    }

    /// End of the Probe records according to Psent and Precvd (RFC 5534 §5.2).
    fn probe_records_end(&self) -> usize {
        let n = usize::from(self.probe_psent()) + usize::from(self.probe_precvd());
        field::PROBE_RECORDS + n * PROBE_RECORD_LEN
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Next Header.
    #[inline]
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value;
    }

    /// Sets Hdr Ext Len.
    #[inline]
    pub fn set_hdr_ext_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HDR_EXT_LEN] = value;
    }

    /// Sets the message type and clears P.
    #[inline]
    pub fn set_message_type(&mut self, ty: MessageType) {
        self.buffer.as_mut()[field::TYPE] = u8::from(ty) & 0x7f;
    }

    /// Sets the 7 type-specific bits (Reserved1, or the Error Code) and clears S.
    ///
    /// Bits of `value` above the low 7 are discarded.
    #[inline]
    pub fn set_type_specific(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE_SPECIFIC] = value << 1;
    }

    /// Sets the Checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the checksum over the first [`Packet::header_len`] octets and stores it
    /// (RFC 5533 §5.3). Everything else, Hdr Ext Len included, must already be in place.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Packet::header_len`].
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.message_bytes());
        self.set_checksum(c);
    }

    /// Sets the context tag in octets 6–11 and clears the R bit before it.
    #[inline]
    pub fn set_context_tag(&mut self, tag: ContextTag) {
        self.buffer.as_mut()[field::CONTEXT_TAG].copy_from_slice(&tag.to_bytes());
    }

    /// Sets the nonce in octets 12–15.
    #[inline]
    pub fn set_nonce(&mut self, value: u32) {
        self.buffer.as_mut()[field::NONCE].copy_from_slice(&value.to_be_bytes());
    }

    /// R1 only: sets the Initiator Nonce.
    #[inline]
    pub fn set_r1_initiator_nonce(&mut self, value: u32) {
        self.buffer.as_mut()[field::R1_INITIATOR_NONCE].copy_from_slice(&value.to_be_bytes());
    }

    /// I2 and I2bis only: sets the Responder Nonce.
    #[inline]
    pub fn set_i2_responder_nonce(&mut self, value: u32) {
        self.buffer.as_mut()[field::I2_RESPONDER_NONCE].copy_from_slice(&value.to_be_bytes());
    }

    /// I2bis only: sets the Packet Context Tag and clears the reserved bit before it.
    #[inline]
    pub fn set_i2bis_packet_context_tag(&mut self, tag: ContextTag) {
        self.buffer.as_mut()[field::I2BIS_PACKET_CONTEXT_TAG].copy_from_slice(&tag.to_bytes());
    }

    /// Probe only: sets Precvd and Psent (4 bits each; higher bits are discarded).
    #[inline]
    pub fn set_probe_counts(&mut self, precvd: u8, psent: u8) {
        self.buffer.as_mut()[field::PROBE_COUNTS] = (precvd << 4) | (psent & 0x0f);
    }

    /// Probe only: sets Sta (2 bits) and clears the reserved bits after it.
    #[inline]
    pub fn set_probe_sta(&mut self, sta: u8) {
        self.buffer.as_mut()[field::PROBE_STA] = sta << 6;
    }

    /// Probe only: writes the `i`-th record counted from the first "probe sent" record
    /// (received records follow the Psent sent ones).
    ///
    /// # Panics
    /// If the record does not fit in the buffer.
    pub fn set_probe_record(&mut self, i: usize, record: &ProbeRecord) {
        let at = field::PROBE_RECORDS + i * PROBE_RECORD_LEN;
        record.write(&mut self.buffer.as_mut()[at..at + PROBE_RECORD_LEN]);
    }

    /// Error only: sets the Error Code and clears S.
    #[inline]
    pub fn set_error_code(&mut self, code: u8) {
        self.set_type_specific(code);
    }

    /// Error only: sets the Pointer.
    #[inline]
    pub fn set_error_pointer(&mut self, value: u16) {
        self.buffer.as_mut()[field::ERROR_POINTER].copy_from_slice(&value.to_be_bytes());
    }

    /// Zeroes every reserved field of the current message type: the R bits, Reserved2 of
    /// R1, I2, I2bis and Keepalive, and the Probe's 22 reserved bits. RFC 5533 §5 and
    /// RFC 5534 §5: zero on transmit, ignored on receipt.
    ///
    /// # Panics
    /// If the buffer is shorter than the type's fixed part.
    pub fn clear_reserved(&mut self) {
        let ty = self.message_type();
        let b = self.buffer.as_mut();
        match ty {
            MessageType::R1 => b[field::R1_RESERVED].fill(0),
            MessageType::I2 => b[field::I2_RESERVED].fill(0),
            MessageType::I2bis => {
                b[field::I2BIS_RESERVED].fill(0);
                b[field::I2BIS_PACKET_CONTEXT_TAG.start] &= 0x7f;
            }
            MessageType::Keepalive => b[field::KEEPALIVE_RESERVED].fill(0),
            MessageType::Probe => {
                b[field::PROBE_STA] &= 0xc0;
                b[field::PROBE_RESERVED].fill(0);
            }
            _ => {}
        }
        // The R bit before the tag in octets 6–11 (all types carrying one there).
        if !matches!(
            ty,
            MessageType::R1 | MessageType::Error | MessageType::Unknown(_)
        ) {
            b[field::CONTEXT_TAG.start] &= 0x7f;
        }
    }

    /// The whole buffer, mutable.
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    /// Shows the parsed message, or the error that prevents parsing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self
            .check()
            .and_then(|()| super::message::Message::parse(self))
        {
            Ok(m) => write!(f, "{m}"),
            Err(e) => write!(f, "Shim6 control message ({e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // Protocol digest §1.17: I1, CT = 0x0123456789ab, Initiator Nonce = 0xdeadbeef.
    static I1: [u8; 16] = hex!("3b 01 01 00 56 2b 01 23 45 67 89 ab de ad be ef");

    #[test]
    fn common_header_deconstruct() {
        let p = Packet::new_checked(&I1[..]).unwrap();
        assert_eq!(p.next_header(), 59);
        assert_eq!(p.hdr_ext_len(), 1);
        assert_eq!(p.header_len(), 16);
        assert!(!p.p_bit());
        assert_eq!(p.message_type(), MessageType::I1);
        assert_eq!(p.type_specific(), 0);
        assert!(!p.s_bit());
        assert_eq!(p.checksum(), 0x562b);
        assert!(p.verify_checksum());
    }

    #[test]
    fn common_header_construct() {
        let mut b = [0xa5u8; 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(59);
        p.set_hdr_ext_len(1);
        p.set_message_type(MessageType::I1);
        p.set_type_specific(0);
        p.set_context_tag(ContextTag::new(0x0123_4567_89ab).unwrap());
        p.set_nonce(0xdead_beef);
        p.fill_checksum();
        assert_eq!(b, I1);
    }

    #[test]
    fn checksum_covers_exactly_hdr_ext_len() {
        // Bytes after the message are not covered.
        let mut b = I1.to_vec();
        b.extend_from_slice(&[0x12, 0x34, 0x56]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        // Any bit flip inside is detected.
        for i in 0..16 {
            let mut b = I1;
            b[i] ^= 0x10;
            let p = Packet::new_unchecked(&b[..]);
            assert!(!p.verify_checksum(), "flip in octet {i} went unnoticed");
        }
        // A Hdr Ext Len past the buffer does not verify (and does not panic).
        let mut b = I1;
        b[1] = 2;
        assert!(!Packet::new_unchecked(&b[..]).verify_checksum());
    }

    #[test]
    fn type_and_s_bits_are_separate() {
        let mut b = I1;
        b[3] = 0x7f << 1 | 1;
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.type_specific(), 0x7f);
        assert!(p.s_bit());
        let mut b = I1;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_type_specific(0x55);
        assert_eq!(p.type_specific(), 0x55);
        assert!(!p.s_bit());
    }

    #[test]
    fn truncated_at_every_length() {
        for n in 0..I1.len() {
            match Packet::new_checked(&I1[..n]) {
                Err(Error::Truncated { needed, .. }) => {
                    assert_eq!(needed, if n < 8 { 8 } else { 16 });
                }
                other => panic!("length {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn hdr_ext_len_below_the_fixed_part() {
        for ty in MessageType::ALL {
            let mut b = [0u8; 64];
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.set_message_type(ty);
            p.set_hdr_ext_len(0);
            let fixed = ty.fixed_len().unwrap();
            assert!(
                matches!(
                    Packet::new_checked(&b[..]),
                    Err(Error::BadLength { value: 0, .. })
                ),
                "{ty}"
            );
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.set_hdr_ext_len(ty.min_hdr_ext_len().unwrap());
            assert_eq!(p.header_len(), fixed);
            if ty == MessageType::Probe {
                // Psent = 0 and Precvd = 0: the fixed part is enough for the view.
                p.set_probe_counts(0, 0);
            }
            Packet::new_checked(&b[..]).unwrap();
        }
    }

    #[test]
    fn probe_records_must_fit() {
        let mut b = [0u8; 96];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_message_type(MessageType::Probe);
        p.set_probe_counts(1, 1); // 16 + 80 = 96 octets
        for hel in 1..11 {
            p.set_hdr_ext_len(hel);
            assert!(matches!(
                Packet::new_checked(p.as_bytes()),
                Err(Error::BadLength { .. })
            ));
        }
        p.set_hdr_ext_len(11);
        Packet::new_checked(&b[..]).unwrap();
    }

    #[test]
    fn payload_header_is_not_a_control_message() {
        let b = hex!("06 00 81 23 45 67 89 ab");
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn message_type_numbers_and_classes() {
        for v in 0..=127u8 {
            let t = MessageType::from(v);
            assert_eq!(u8::from(t), v);
            assert_eq!(t.r1bis_on_unknown_context(), v >= 64, "type {v}");
        }
        assert_eq!(MessageType::from(1), MessageType::I1);
        assert_eq!(MessageType::from(6), MessageType::I2bis);
        assert_eq!(MessageType::from(64), MessageType::UpdateRequest);
        assert_eq!(MessageType::from(67), MessageType::Probe);
        assert_eq!(MessageType::from(68), MessageType::Error);
        assert_eq!(MessageType::from(7), MessageType::Unknown(7));
        assert!(!MessageType::R1bis.r1bis_on_unknown_context());
        assert!(MessageType::Keepalive.r1bis_on_unknown_context());
        assert_eq!(MessageType::I2.min_hdr_ext_len(), Some(2));
        assert_eq!(MessageType::I2bis.min_hdr_ext_len(), Some(3));
        assert_eq!(MessageType::Error.min_hdr_ext_len(), Some(1));
        assert_eq!(MessageType::Unknown(9).min_hdr_ext_len(), None);
        assert_eq!(
            MessageType::UpdateAcknowledgement.to_string(),
            "Update Acknowledgement"
        );
        assert_eq!(MessageType::Unknown(99).to_string(), "unknown type 99");
    }

    #[test]
    fn option_validity_per_message() {
        use OptionType as O;
        assert!(MessageType::I1.allows_option(O::UlidPair));
        assert!(!MessageType::I1.allows_option(O::LocatorList));
        assert!(MessageType::R1.allows_option(O::ResponderValidator));
        assert!(!MessageType::R1.allows_option(O::UlidPair));
        assert!(MessageType::I2.allows_option(O::KeepaliveTimeout));
        assert!(MessageType::I2bis.allows_option(O::CgaSignature));
        assert!(MessageType::R2.allows_option(O::LocatorPreferences));
        assert!(!MessageType::R2.allows_option(O::ResponderValidator));
        assert!(MessageType::UpdateRequest.allows_option(O::CgaParameterDataStructure));
        assert!(!MessageType::UpdateAcknowledgement.allows_option(O::LocatorList));
        assert!(!MessageType::Probe.allows_option(O::KeepaliveTimeout));
        assert!(!MessageType::I2.allows_option(O::Unknown(99)));
    }

    #[test]
    fn limits() {
        assert_eq!(MAX_MESSAGE_LEN, 1240);
        assert_eq!(
            (usize::from(u8::MAX) + 1) * 8,
            MAX_HEADER_LEN,
            "Hdr Ext Len is one octet"
        );
    }
}
