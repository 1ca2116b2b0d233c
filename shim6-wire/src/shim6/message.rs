//! Every control message as one enum, [`Message`], and the machinery the message types
//! share: parse a checked [`Packet`], emit into one, fill the checksum.
//!
//! # Contract
//! - [`Message::parse`] runs [`Packet::check`], verifies the checksum (RFC 5533 §12.3),
//!   dispatches on the type and parses every option; the first malformed option fails
//!   the message. Unknown options are kept ([`OptionRepr::Unknown`]); whether the
//!   message may be processed at all is [`Packet::unrecognized_critical_option`]'s
//!   question, to be asked before acting on it.
//! - `emit` writes Next Header = 59, Hdr Ext Len, the type, zeroed reserved fields, the
//!   fixed part, the options with zero padding, and the checksum. It fails, before
//!   writing anything, on a message Hdr Ext Len cannot describe ([`MAX_HEADER_LEN`]),
//!   an inconsistent option, or a buffer shorter than `buffer_len`.
//! - [`Message::to_vec`] also enforces the 1280-octet signalling limit
//!   ([`MAX_MESSAGE_LEN`], RFC 5533 §5.1).
//! - For every valid message `m`, `Message::parse(emit(m)) == m`.

use core::fmt;

use super::IP_PROTO_NONE;
use super::control::{MAX_HEADER_LEN, MAX_MESSAGE_LEN, MessageType, Packet};
use super::error_message::ErrorMessage;
use super::handshake::{I1, I2, I2bis, R1, R1bis, R2};
use super::option::{self, Repr as OptionRepr};
use super::probe::{Keepalive, Probe};
use super::update::{UpdateAcknowledgement, UpdateRequest};
use crate::error::{Error, Result, check_len};

/// What each message type tells the shared parse and emit code.
pub(crate) trait Body: Sized {
    /// The message type.
    const TYPE: MessageType;

    /// Octets from the first octet of the header to the first option.
    fn fixed_len(&self) -> usize;

    /// The 7 type-specific bits of octet 3.
    fn type_specific(&self) -> u8 {
        0
    }

    /// Writes the type-specific fields after the checksum (the common fields and zeroed
    /// reserved fields are already in place).
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>);

    /// The options, emitted after the fixed part.
    fn options(&self) -> &[OptionRepr];

    /// Consistency checks beyond the options' own.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Builds the message from a checked packet of type [`Body::TYPE`] and its parsed
    /// options.
    fn parse_fixed<T: AsRef<[u8]>>(packet: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self>;
}

/// Parses a message of type `B` from a packet that passed [`Packet::check`], without
/// the checksum.
pub(crate) fn parse_body<B: Body, T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<B> {
    if packet.message_type() != B::TYPE {
        return Err(Error::Malformed(
            "Shim6 message type does not match the message being parsed",
        ));
    }
    let options = option::parse_all(packet.options())?;
    B::parse_fixed(packet, options)
}

/// [`Packet::check`], the checksum, then [`parse_body`]: what each message type's
/// public `parse` does.
pub(crate) fn parse_checked<B: Body, T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<B> {
    packet.check()?;
    verify(packet)?;
    parse_body(packet)
}

fn verify<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<()> {
    if packet.verify_checksum() {
        Ok(())
    } else {
        Err(Error::BadChecksum {
            what: "Shim6 control message",
        })
    }
}

/// Octets the message takes: fixed part plus options.
pub(crate) fn buffer_len<B: Body>(body: &B) -> usize {
    body.fixed_len() + option::options_len(body.options())
}

/// Writes the whole message, checksum included, at the start of the packet's buffer.
pub(crate) fn emit<B: Body, T: AsRef<[u8]> + AsMut<[u8]>>(
    body: &B,
    packet: &mut Packet<T>,
) -> Result<()> {
    let len = buffer_len(body);
    if len > MAX_HEADER_LEN {
        return Err(Error::BadLength {
            what: "Shim6 control message (longer than Hdr Ext Len can describe)",
            value: len,
        });
    }
    body.check()?;
    for o in body.options() {
        o.check()?;
    }
    check_len(
        "buffer for the Shim6 control message",
        packet.as_bytes(),
        len,
    )?;
    // Every part is a multiple of 8 octets and the fixed parts are at least 16, so
    // 1 ≤ len / 8 − 1 ≤ 255 after the MAX_HEADER_LEN check.
    debug_assert!(len.is_multiple_of(8) && len >= 16);
    let hdr_ext_len = u8::try_from(len / 8 - 1).map_err(|_| Error::BadLength {
        what: "Shim6 control message (longer than Hdr Ext Len can describe)",
        value: len,
    })?;
    packet.set_next_header(IP_PROTO_NONE);
    packet.set_hdr_ext_len(hdr_ext_len);
    packet.set_message_type(B::TYPE);
    packet.set_type_specific(body.type_specific());
    packet.set_checksum(0);
    packet.clear_reserved();
    body.emit_fixed(packet);
    let fixed = body.fixed_len();
    option::emit_all(body.options(), &mut packet.as_bytes_mut()[fixed..len]);
    packet.fill_checksum();
    Ok(())
}

/// Implements the public `parse` / `buffer_len` / `emit` / `to_vec` of a message type
/// through the shared functions above.
macro_rules! message_api {
    ($ty:ident) => {
        impl $ty {
            /// Parses a message of this type: [`Packet::check`], the checksum, the fixed
            /// fields and every option.
            ///
            /// # Fuzzing
            /// Under `cfg(fuzzing)` the checksum is not verified
            /// ([`Packet::verify_checksum`]).
            pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> $crate::Result<Self> {
                $crate::shim6::message::parse_checked(packet)
            }

            /// Octets [`Self::emit`] writes.
            pub fn buffer_len(&self) -> usize {
                $crate::shim6::message::buffer_len(self)
            }

            /// Writes the message, checksum included, at the start of the buffer; see the
            /// [`message`](crate::shim6::message) module for what can fail.
            pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
                &self,
                packet: &mut Packet<T>,
            ) -> $crate::Result<()> {
                $crate::shim6::message::emit(self, packet)
            }
        }
    };
}
pub(crate) use message_api;

/// Any Shim6 control message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// I1 (type 1).
    I1(I1),
    /// R1 (type 2).
    R1(R1),
    /// I2 (type 3).
    I2(I2),
    /// R2 (type 4).
    R2(R2),
    /// R1bis (type 5).
    R1bis(R1bis),
    /// I2bis (type 6).
    I2bis(I2bis),
    /// Update Request (type 64).
    UpdateRequest(UpdateRequest),
    /// Update Acknowledgement (type 65).
    UpdateAcknowledgement(UpdateAcknowledgement),
    /// Keepalive (type 66, RFC 5534).
    Keepalive(Keepalive),
    /// Probe (type 67, RFC 5534).
    Probe(Probe),
    /// Error (type 68).
    Error(ErrorMessage),
}

/// Applies `$f` to the message inside whatever variant `$m` is.
macro_rules! each {
    ($m:expr, $x:ident => $e:expr) => {
        match $m {
            Message::I1($x) => $e,
            Message::R1($x) => $e,
            Message::I2($x) => $e,
            Message::R2($x) => $e,
            Message::R1bis($x) => $e,
            Message::I2bis($x) => $e,
            Message::UpdateRequest($x) => $e,
            Message::UpdateAcknowledgement($x) => $e,
            Message::Keepalive($x) => $e,
            Message::Probe($x) => $e,
            Message::Error($x) => $e,
        }
    };
}

impl Message {
    /// Parses any control message: [`Packet::check`], the checksum, then the type's
    /// fields and every option.
    ///
    /// # Errors
    /// - the errors of [`Packet::check`];
    /// - [`Error::BadChecksum`];
    /// - [`Error::Unrecognized`] `{ what: "Shim6 message type", value }` for a type this
    ///   implementation does not know: the caller answers with an Error message of code 0
    ///   whose Pointer is [`TYPE_OFFSET`](super::control::TYPE_OFFSET) (RFC 5533 §12.3);
    /// - the first malformed option, or a malformed fixed field.
    ///
    /// # Fuzzing
    /// Under `cfg(fuzzing)` the checksum is not verified ([`Packet::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check()?;
        verify(packet)?;
        Ok(match packet.message_type() {
            MessageType::I1 => Self::I1(parse_body(packet)?),
            MessageType::R1 => Self::R1(parse_body(packet)?),
            MessageType::I2 => Self::I2(parse_body(packet)?),
            MessageType::R2 => Self::R2(parse_body(packet)?),
            MessageType::R1bis => Self::R1bis(parse_body(packet)?),
            MessageType::I2bis => Self::I2bis(parse_body(packet)?),
            MessageType::UpdateRequest => Self::UpdateRequest(parse_body(packet)?),
            MessageType::UpdateAcknowledgement => Self::UpdateAcknowledgement(parse_body(packet)?),
            MessageType::Keepalive => Self::Keepalive(parse_body(packet)?),
            MessageType::Probe => Self::Probe(parse_body(packet)?),
            MessageType::Error => Self::Error(parse_body(packet)?),
            MessageType::Unknown(v) => {
                return Err(Error::Unrecognized {
                    what: "Shim6 message type",
                    value: u32::from(v),
                });
            }
        })
    }

    /// Parses a message from the start of `bytes`: [`Packet::new_checked`] then
    /// [`Message::parse`].
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::I1(_) => MessageType::I1,
            Self::R1(_) => MessageType::R1,
            Self::I2(_) => MessageType::I2,
            Self::R2(_) => MessageType::R2,
            Self::R1bis(_) => MessageType::R1bis,
            Self::I2bis(_) => MessageType::I2bis,
            Self::UpdateRequest(_) => MessageType::UpdateRequest,
            Self::UpdateAcknowledgement(_) => MessageType::UpdateAcknowledgement,
            Self::Keepalive(_) => MessageType::Keepalive,
            Self::Probe(_) => MessageType::Probe,
            Self::Error(_) => MessageType::Error,
        }
    }

    /// The message's options (none for an Error message).
    pub fn options(&self) -> &[OptionRepr] {
        each!(self, m => Body::options(m))
    }

    /// Octets [`Message::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        each!(self, m => buffer_len(m))
    }

    /// Writes the message, checksum included, at the start of the packet's buffer; see
    /// the [module docs](self) for what can fail.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        each!(self, m => emit(m, packet))
    }

    /// The message in a new buffer of exactly [`Message::buffer_len`] octets, checksum
    /// filled.
    ///
    /// # Errors
    /// Those of [`Message::emit`], and [`Error::BadLength`] for a message over
    /// [`MAX_MESSAGE_LEN`]: sent behind a plain IPv6 header, it would break the
    /// 1280-octet signalling limit (RFC 5533 §5.1).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let len = self.buffer_len();
        if len > MAX_MESSAGE_LEN {
            return Err(Error::BadLength {
                what: "Shim6 control message (over the 1280-octet signalling limit)",
                value: len,
            });
        }
        let mut buf = vec![0u8; len];
        self.emit(&mut Packet::new_unchecked(&mut buf[..]))?;
        Ok(buf)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        each!(self, m => fmt::Display::fmt(m, f))
    }
}

macro_rules! from_variant {
    ($($ty:ident => $variant:ident),*) => {
        $(impl From<$ty> for Message {
            fn from(m: $ty) -> Self {
                Self::$variant(m)
            }
        })*
    };
}
from_variant!(
    I1 => I1, R1 => R1, I2 => I2, R2 => R2, R1bis => R1bis, I2bis => I2bis,
    UpdateRequest => UpdateRequest, UpdateAcknowledgement => UpdateAcknowledgement,
    Keepalive => Keepalive, Probe => Probe, ErrorMessage => Error
);

#[cfg(test)]
mod tests {
    use super::super::ContextTag;
    use super::super::control::TYPE_OFFSET;
    use super::super::option::OptionType;
    use super::super::testgen;
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    #[test]
    fn unknown_type_is_unrecognized_with_its_value() {
        // An I1 with the type octet changed to 7, checksum refilled.
        let mut b = hex!("3b010100 562b0123 456789ab deadbeef");
        b[TYPE_OFFSET] = 7;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(
            Message::parse_bytes(&b),
            Err(Error::Unrecognized {
                what: "Shim6 message type",
                value: 7
            })
        );
        // A bad checksum is reported before the unknown type (RFC 5533 §12.3 order).
        b[15] ^= 1;
        assert!(matches!(
            Message::parse_bytes(&b),
            Err(Error::BadChecksum { .. })
        ));
        // Options of an unknown type are not interpreted.
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.options().count(), 0);
    }

    #[test]
    fn bad_checksum() {
        let mut b = hex!("3b010100 562b0123 456789ab deadbeef");
        b[4] = 0;
        assert_eq!(
            Message::parse_bytes(&b),
            Err(Error::BadChecksum {
                what: "Shim6 control message"
            })
        );
    }

    #[test]
    fn mismatched_parser() {
        let b = hex!("3b010100 562b0123 456789ab deadbeef");
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(matches!(R1::parse(&p), Err(Error::Malformed(_))));
        assert!(I1::parse(&p).is_ok());
    }

    #[test]
    fn emit_refuses_oversized_messages_and_short_buffers() {
        let big = I1 {
            initiator_context_tag: ContextTag::default(),
            initiator_nonce: 0,
            options: vec![OptionRepr::CgaSignature(vec![0; 2100])],
        };
        let mut buf = vec![0u8; 4096];
        assert!(matches!(
            big.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::BadLength { .. })
        ));
        let m = Message::I1(I1 {
            options: vec![OptionRepr::CgaSignature(vec![0; 1300])],
            ..big.clone()
        });
        // Fits Hdr Ext Len, but not the signalling limit.
        assert!(m.emit(&mut Packet::new_unchecked(&mut buf[..])).is_ok());
        assert!(matches!(m.to_vec(), Err(Error::BadLength { .. })));
        let small = Message::I1(I1 {
            options: vec![],
            ..big
        });
        let mut short = [0xa5u8; 15];
        assert!(matches!(
            small.emit(&mut Packet::new_unchecked(&mut short[..])),
            Err(Error::Truncated { needed: 16, .. })
        ));
        assert_eq!(short, [0xa5; 15], "nothing written on failure");
    }

    #[test]
    fn unrecognized_critical_option_per_message() {
        // I1 with a Locator List option (not valid in an I1), first with C = 0, then 1.
        let m = Message::I1(I1 {
            initiator_context_tag: ContextTag::new(1).unwrap(),
            initiator_nonce: 2,
            options: vec![
                OptionRepr::ForkedInstanceId(1),
                OptionRepr::LocatorList(super::super::locator::LocatorList {
                    generation: 1,
                    locators: vec![],
                }),
            ],
        });
        let mut b = m.to_vec().unwrap();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.unrecognized_critical_option().unwrap(), None);
        // Set C on the second option (at 16 + 8 = 24).
        b[25] |= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        let bad = p.unrecognized_critical_option().unwrap().unwrap();
        assert_eq!(bad.offset, 24);
        assert_eq!(bad.option_type, OptionType::LocatorList);
        // The same option with C = 1 in an Update Request is fine.
        let mut ur = b.clone();
        ur[TYPE_OFFSET] = 64;
        let p = Packet::new_checked(&ur[..]).unwrap();
        assert_eq!(p.unrecognized_critical_option().unwrap(), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn roundtrip_every_message(m in testgen::message()) {
            let b = m.to_vec().unwrap();
            prop_assert_eq!(b.len(), m.buffer_len());
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.message_type(), m.message_type());
            prop_assert_eq!(Message::parse(&p).unwrap(), m.clone());
            // Emitting over garbage gives the same bytes.
            let mut g = vec![0xa5u8; b.len() + 8];
            m.emit(&mut Packet::new_unchecked(&mut g[..])).unwrap();
            prop_assert_eq!(&g[..b.len()], &b[..]);
            prop_assert!(!m.to_string().is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
            exercise(&b);
        }

        #[test]
        fn arbitrary_control_like_bytes_never_panic(
            ty in prop::sample::select(&[1u8, 2, 3, 4, 5, 6, 64, 65, 66, 67, 68, 99][..]),
            mut b in proptest::collection::vec(any::<u8>(), 8..600),
        ) {
            // Make the header plausible so that the parsers behind it run.
            b[2] = ty;
            let hel = (b.len() / 8 - 1).min(255);
            b[1] = u8::try_from(hel).unwrap();
            Packet::new_unchecked(&mut b[..]).fill_checksum();
            exercise(&b);
        }

        #[test]
        fn truncated_messages_fail_cleanly(m in testgen::message(), cut in any::<prop::sample::Index>()) {
            let b = m.to_vec().unwrap();
            let n = cut.index(b.len());
            prop_assert!(Message::parse_bytes(&b[..n]).is_err());
        }
    }

    /// Every path an untrusted buffer can take through this module.
    fn exercise(b: &[u8]) {
        if let Ok(p) = Packet::new_checked(b) {
            let _ = p.verify_checksum();
            let _ = p.to_string();
            for o in p.options() {
                match o {
                    Ok(raw) => {
                        let _ = OptionRepr::parse(&raw).map(|r| r.to_string());
                    }
                    Err(e) => {
                        let _ = e.to_string();
                    }
                }
            }
            let _ = p.unrecognized_critical_option();
            if let Ok(m) = Message::parse(&p) {
                let _ = m.to_string();
                // What parses also re-emits, at most as long as Hdr Ext Len said.
                let mut out = vec![0u8; m.buffer_len()];
                m.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
                assert!(out.len() <= p.header_len());
            }
        }
    }
}
