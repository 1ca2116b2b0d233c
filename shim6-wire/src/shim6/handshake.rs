//! The context-establishment messages: I1, R1, I2, R2 (RFC 5533 §5.4–§5.7) and the
//! recovery pair R1bis, I2bis (§5.8, §5.9).
//!
//! All of them have types 1–6, below 64: none is answered with an R1bis when it names
//! no known context (RFC 5533 §5.3). Octet offsets are from the first octet of the Shim6
//! header (protocol digest §1.4.2); "R | CT" is a reserved bit and a 47-bit tag.
//!
//! | message | 6–11 | 12–15 | 16–19 | 20–31 | options from |
//! |---|---|---|---|---|---|
//! | I1 | R \| Initiator CT | Initiator Nonce | | | 16 |
//! | R1 | Reserved2 (6–7), Initiator Nonce (8–11) | Responder Nonce | | | 16 |
//! | I2 | R \| Initiator CT | Initiator Nonce | Responder Nonce | Reserved2 (20–23) | 24 |
//! | R2 | R \| Responder CT | Initiator Nonce | | | 16 |
//! | R1bis | R \| Packet CT | Responder Nonce | | | 16 |
//! | I2bis | R \| Initiator CT | Initiator Nonce | Responder Nonce | 49 reserved bits \| Packet CT | 32 |

use core::fmt;

use super::ContextTag;
use super::control::{MessageType, Packet};
use super::message::{Body, message_api};
use super::option::{DisplayOptions, Repr as OptionRepr};
use crate::error::Result;

/// I1 (type 1, RFC 5533 §5.4): the initiator's first message; creates no state at the
/// responder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct I1 {
    /// The initiator's CT(local), to be used by the responder in later messages.
    pub initiator_context_tag: ContextTag,
    /// Random; echoed in the R1 (or the R2 when I1s cross).
    pub initiator_nonce: u32,
    /// ULID Pair (when the addresses are not the ULIDs), Forked Instance Identifier.
    pub options: Vec<OptionRepr>,
}

impl Body for I1 {
    const TYPE: MessageType = MessageType::I1;
    fn fixed_len(&self) -> usize {
        16
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.initiator_context_tag);
        p.set_nonce(self.initiator_nonce);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            initiator_context_tag: p.context_tag(),
            initiator_nonce: p.nonce(),
            options,
        })
    }
}
message_api!(I1);

impl fmt::Display for I1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 I1 init_ct={} init_nonce={:#010x}{}",
            self.initiator_context_tag,
            self.initiator_nonce,
            DisplayOptions(&self.options)
        )
    }
}

/// R1 (type 2, RFC 5533 §5.5): the responder's stateless answer to an I1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct R1 {
    /// Copied from the I1.
    pub initiator_nonce: u32,
    /// The responder's nonce, to be returned in the I2.
    pub responder_nonce: u32,
    /// Responder Validator (MUST).
    pub options: Vec<OptionRepr>,
}

impl Body for R1 {
    const TYPE: MessageType = MessageType::R1;
    fn fixed_len(&self) -> usize {
        16
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_r1_initiator_nonce(self.initiator_nonce);
        p.set_nonce(self.responder_nonce);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            initiator_nonce: p.r1_initiator_nonce(),
            responder_nonce: p.nonce(),
            options,
        })
    }
}
message_api!(R1);

impl fmt::Display for R1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 R1 init_nonce={:#010x} resp_nonce={:#010x}{}",
            self.initiator_nonce,
            self.responder_nonce,
            DisplayOptions(&self.options)
        )
    }
}

/// I2 (type 3, RFC 5533 §5.6): the initiator's second message, which makes the
/// responder create the context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct I2 {
    /// The initiator's CT(local).
    pub initiator_context_tag: ContextTag,
    /// May be fresh (RFC 5533 §7.11); echoed in the R2.
    pub initiator_nonce: u32,
    /// Copied from the R1.
    pub responder_nonce: u32,
    /// Responder Validator (MUST), ULID Pair, FII, Locator List, CGA Parameter Data
    /// Structure, Locator Preferences, CGA Signature, Keepalive Timeout.
    pub options: Vec<OptionRepr>,
}

impl Body for I2 {
    const TYPE: MessageType = MessageType::I2;
    fn fixed_len(&self) -> usize {
        24
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.initiator_context_tag);
        p.set_nonce(self.initiator_nonce);
        p.set_i2_responder_nonce(self.responder_nonce);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            initiator_context_tag: p.context_tag(),
            initiator_nonce: p.nonce(),
            responder_nonce: p.i2_responder_nonce(),
            options,
        })
    }
}
message_api!(I2);

impl fmt::Display for I2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 I2 init_ct={} init_nonce={:#010x} resp_nonce={:#010x}{}",
            self.initiator_context_tag,
            self.initiator_nonce,
            self.responder_nonce,
            DisplayOptions(&self.options)
        )
    }
}

/// R2 (type 4, RFC 5533 §5.7): the responder's confirmation; the context is now
/// ESTABLISHED at both ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct R2 {
    /// The R2 sender's CT(local).
    pub responder_context_tag: ContextTag,
    /// Copied from the I2, I2bis or I1 that triggered the R2.
    pub initiator_nonce: u32,
    /// Locator List, Locator Preferences, CGA Parameter Data Structure, CGA Signature,
    /// Keepalive Timeout.
    pub options: Vec<OptionRepr>,
}

impl Body for R2 {
    const TYPE: MessageType = MessageType::R2;
    fn fixed_len(&self) -> usize {
        16
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.responder_context_tag);
        p.set_nonce(self.initiator_nonce);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            responder_context_tag: p.context_tag(),
            initiator_nonce: p.nonce(),
            options,
        })
    }
}
message_api!(R2);

impl fmt::Display for R2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 R2 resp_ct={} init_nonce={:#010x}{}",
            self.responder_context_tag,
            self.initiator_nonce,
            DisplayOptions(&self.options)
        )
    }
}

/// R1bis (type 5, RFC 5533 §5.8): "I have no context for that tag", sent in answer to a
/// payload extension header or a type 64–127 control message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct R1bis {
    /// The context tag found in the triggering packet.
    pub packet_context_tag: ContextTag,
    /// The responder's nonce, to be returned in the I2bis.
    pub responder_nonce: u32,
    /// Responder Validator.
    pub options: Vec<OptionRepr>,
}

impl Body for R1bis {
    const TYPE: MessageType = MessageType::R1bis;
    fn fixed_len(&self) -> usize {
        16
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.packet_context_tag);
        p.set_nonce(self.responder_nonce);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            packet_context_tag: p.context_tag(),
            responder_nonce: p.nonce(),
            options,
        })
    }
}
message_api!(R1bis);

impl fmt::Display for R1bis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 R1bis packet_ct={} resp_nonce={:#010x}{}",
            self.packet_context_tag,
            self.responder_nonce,
            DisplayOptions(&self.options)
        )
    }
}

/// I2bis (type 6, RFC 5533 §5.9): the answer to an R1bis, re-creating the peer's context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct I2bis {
    /// The initiator's CT(local).
    pub initiator_context_tag: ContextTag,
    /// Echoed in the R2.
    pub initiator_nonce: u32,
    /// Copied from the R1bis.
    pub responder_nonce: u32,
    /// Copied from the R1bis.
    pub packet_context_tag: ContextTag,
    /// As for I2: Responder Validator, ULID Pair, FII, Locator List, CGA Parameter Data
    /// Structure, Locator Preferences, CGA Signature, Keepalive Timeout.
    pub options: Vec<OptionRepr>,
}

impl Body for I2bis {
    const TYPE: MessageType = MessageType::I2bis;
    fn fixed_len(&self) -> usize {
        32
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.initiator_context_tag);
        p.set_nonce(self.initiator_nonce);
        p.set_i2_responder_nonce(self.responder_nonce);
        p.set_i2bis_packet_context_tag(self.packet_context_tag);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            initiator_context_tag: p.context_tag(),
            initiator_nonce: p.nonce(),
            responder_nonce: p.i2_responder_nonce(),
            packet_context_tag: p.i2bis_packet_context_tag(),
            options,
        })
    }
}
message_api!(I2bis);

impl fmt::Display for I2bis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 I2bis init_ct={} init_nonce={:#010x} resp_nonce={:#010x} packet_ct={}{}",
            self.initiator_context_tag,
            self.initiator_nonce,
            self.responder_nonce,
            self.packet_context_tag,
            DisplayOptions(&self.options)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::locator::{
        FLAG_BROKEN, Locator, LocatorList, LocatorPreference, LocatorPreferences,
        VerificationMethod,
    };
    use super::super::message::Message;
    use super::super::option::{OptionSliceExt, UlidPair};
    use super::super::testgen::{check_message_bytes, ct};
    use super::*;
    use hex_literal::hex;

    const VALIDATOR: [u8; 20] = hex!("00112233 44556677 8899aabb ccddeeff 01020304");

    fn validator() -> OptionRepr {
        OptionRepr::ResponderValidator(VALIDATOR.to_vec())
    }

    fn ulid_pair() -> OptionRepr {
        OptionRepr::UlidPair(UlidPair {
            sender: "2001:db8:1::1".parse().unwrap(),
            receiver: "2001:db8:2::2".parse().unwrap(),
        })
    }

    // Protocol digest §1.17, reproduced exactly.
    static I1_BYTES: [u8; 16] = hex!("3b010100 562b0123 456789ab deadbeef");

    fn i1() -> I1 {
        I1 {
            initiator_context_tag: ct(0x0123_4567_89ab),
            initiator_nonce: 0xdead_beef,
            options: vec![],
        }
    }

    #[test]
    fn i1_four_directions() {
        check_message_bytes(
            &I1_BYTES,
            &Message::I1(i1()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0123_4567_89ab));
                assert_eq!(p.nonce(), 0xdead_beef);
                assert_eq!(p.checksum(), 0x562b);
            },
            |p| {
                p.set_context_tag(ct(0x0123_4567_89ab));
                p.set_nonce(0xdead_beef);
            },
        );
        assert_eq!(
            i1().to_string(),
            "Shim6 I1 init_ct=0x0123456789ab init_nonce=0xdeadbeef"
        );
    }

    // I1 with ULID Pair and Forked Instance Identifier options.
    static I1_OPTS_BYTES: [u8; 64] = hex!(
        "3b070100 fa650123 456789ab deadbeef"
        "000c0024 00000000 20010db8 00010000"
        "00000000 00000001 20010db8 00020000"
        "00000000 00000002 000e0004 00000005"
    );

    #[test]
    fn i1_with_options_four_directions() {
        let m = I1 {
            options: vec![ulid_pair(), OptionRepr::ForkedInstanceId(5)],
            ..i1()
        };
        check_message_bytes(
            &I1_OPTS_BYTES,
            &Message::I1(m.clone()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0123_4567_89ab));
                assert_eq!(p.nonce(), 0xdead_beef);
                let offsets: Vec<_> = p.options().map(|o| o.unwrap().offset).collect();
                assert_eq!(offsets, [16, 56]);
            },
            |p| {
                p.set_context_tag(ct(0x0123_4567_89ab));
                p.set_nonce(0xdead_beef);
            },
        );
        assert_eq!(m.options.forked_instance_id(), Some(5));
        assert_eq!(
            m.to_string(),
            "Shim6 I1 init_ct=0x0123456789ab init_nonce=0xdeadbeef \
             [ULID Pair 2001:db8:1::1 -> 2001:db8:2::2; Forked Instance Identifier 5]"
        );
    }

    static R1_BYTES: [u8; 40] = hex!(
        "3b040200 63fc0000 deadbeef 00000102"
        "00020014 00112233 44556677 8899aabb"
        "ccddeeff 01020304"
    );

    #[test]
    fn r1_four_directions() {
        let m = R1 {
            initiator_nonce: 0xdead_beef,
            responder_nonce: 0x102,
            options: vec![validator()],
        };
        check_message_bytes(
            &R1_BYTES,
            &Message::R1(m.clone()),
            |p| {
                assert_eq!(p.r1_initiator_nonce(), 0xdead_beef);
                assert_eq!(p.nonce(), 0x102);
            },
            |p| {
                p.set_r1_initiator_nonce(0xdead_beef);
                p.set_nonce(0x102);
            },
        );
        assert_eq!(m.options.responder_validator(), Some(&VALIDATOR[..]));
        assert_eq!(
            m.to_string(),
            "Shim6 R1 init_nonce=0xdeadbeef resp_nonce=0x00000102 \
             [Responder Validator 00112233445566778899aabbccddeeff… (20 octets)]"
        );
    }

    static I2_BYTES: [u8; 104] = hex!(
        "3b0c0300 16740123 456789ab cafef00d"
        "00000102 00000000 00020014 00112233"
        "44556677 8899aabb ccddeeff 01020304"
        "0004002c 00000007 02010100 00000000"
        "20010db8 00010000 00000000 00000001"
        "20010db8 00020000 00000000 00000001"
        "00140004 00000014"
    );

    fn locator_list() -> OptionRepr {
        OptionRepr::LocatorList(LocatorList {
            generation: 7,
            locators: ["2001:db8:1::1", "2001:db8:2::1"]
                .map(|a| Locator {
                    address: a.parse().unwrap(),
                    method: VerificationMethod::Hba,
                })
                .to_vec(),
        })
    }

    #[test]
    fn i2_four_directions() {
        let m = I2 {
            initiator_context_tag: ct(0x0123_4567_89ab),
            initiator_nonce: 0xcafe_f00d,
            responder_nonce: 0x102,
            options: vec![
                validator(),
                locator_list(),
                OptionRepr::KeepaliveTimeout(20),
            ],
        };
        check_message_bytes(
            &I2_BYTES,
            &Message::I2(m.clone()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0123_4567_89ab));
                assert_eq!(p.nonce(), 0xcafe_f00d);
                assert_eq!(p.i2_responder_nonce(), 0x102);
                assert_eq!(p.options_offset(), 24);
            },
            |p| {
                p.set_context_tag(ct(0x0123_4567_89ab));
                p.set_nonce(0xcafe_f00d);
                p.set_i2_responder_nonce(0x102);
            },
        );
        assert_eq!(m.options.keepalive_timeout(), Some(20));
        assert_eq!(m.options.locator_list().unwrap().locators.len(), 2);
        assert!(m.to_string().starts_with(
            "Shim6 I2 init_ct=0x0123456789ab init_nonce=0xcafef00d resp_nonce=0x00000102 ["
        ));
        assert!(m.to_string().contains(
            "; Locator List gen=0x7 [2001:db8:1::1 HBA, 2001:db8:2::1 HBA]; Keepalive Timeout 20s]"
        ));
    }

    static R2_BYTES: [u8; 32] = hex!(
        "3b030400 94cd0fed cba98765 cafef00d"
        "0006000b 00000007 0201050a 00030700"
    );

    #[test]
    fn r2_four_directions() {
        let m = R2 {
            responder_context_tag: ct(0x0fed_cba9_8765),
            initiator_nonce: 0xcafe_f00d,
            options: vec![OptionRepr::LocatorPreferences(LocatorPreferences {
                generation: 7,
                element_len: 2,
                preferences: vec![
                    LocatorPreference::new(FLAG_BROKEN, 5, 0),
                    LocatorPreference::new(0x0a, 0, 0),
                    LocatorPreference::new(0x03, 7, 0),
                ],
            })],
        };
        check_message_bytes(
            &R2_BYTES,
            &Message::R2(m.clone()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0fed_cba9_8765));
                assert_eq!(p.nonce(), 0xcafe_f00d);
            },
            |p| {
                p.set_context_tag(ct(0x0fed_cba9_8765));
                p.set_nonce(0xcafe_f00d);
            },
        );
        assert_eq!(
            m.to_string(),
            "Shim6 R2 resp_ct=0x0fedcba98765 init_nonce=0xcafef00d \
             [Locator Preferences gen=0x7 elem_len=2 \
             [BROKEN prio=5, TRANSIENT+0x08 prio=0, BROKEN|TRANSIENT prio=7]]"
        );
    }

    static R1BIS_BYTES: [u8; 40] = hex!(
        "3b040500 2e630123 456789ab 00000103"
        "00020014 00112233 44556677 8899aabb"
        "ccddeeff 01020304"
    );

    #[test]
    fn r1bis_four_directions() {
        let m = R1bis {
            packet_context_tag: ct(0x0123_4567_89ab),
            responder_nonce: 0x103,
            options: vec![validator()],
        };
        check_message_bytes(
            &R1BIS_BYTES,
            &Message::R1bis(m.clone()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0123_4567_89ab));
                assert_eq!(p.nonce(), 0x103);
            },
            |p| {
                p.set_context_tag(ct(0x0123_4567_89ab));
                p.set_nonce(0x103);
            },
        );
        assert!(
            m.to_string()
                .starts_with("Shim6 R1bis packet_ct=0x0123456789ab resp_nonce=0x00000103 [")
        );
    }

    static I2BIS_BYTES: [u8; 96] = hex!(
        "3b0b0600 6ab10123 456789ab 01020304"
        "00000103 00000000 00000fed cba98765"
        "00020014 00112233 44556677 8899aabb"
        "ccddeeff 01020304 000c0024 00000000"
        "20010db8 00010000 00000000 00000001"
        "20010db8 00020000 00000000 00000002"
    );

    #[test]
    fn i2bis_four_directions() {
        let m = I2bis {
            initiator_context_tag: ct(0x0123_4567_89ab),
            initiator_nonce: 0x0102_0304,
            responder_nonce: 0x103,
            packet_context_tag: ct(0x0fed_cba9_8765),
            options: vec![validator(), ulid_pair()],
        };
        check_message_bytes(
            &I2BIS_BYTES,
            &Message::I2bis(m.clone()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0123_4567_89ab));
                assert_eq!(p.nonce(), 0x0102_0304);
                assert_eq!(p.i2_responder_nonce(), 0x103);
                assert_eq!(p.i2bis_packet_context_tag(), ct(0x0fed_cba9_8765));
                assert_eq!(p.options_offset(), 32);
            },
            |p| {
                p.set_context_tag(ct(0x0123_4567_89ab));
                p.set_nonce(0x0102_0304);
                p.set_i2_responder_nonce(0x103);
                p.set_i2bis_packet_context_tag(ct(0x0fed_cba9_8765));
            },
        );
        assert!(m.to_string().starts_with(
            "Shim6 I2bis init_ct=0x0123456789ab init_nonce=0x01020304 resp_nonce=0x00000103 \
             packet_ct=0x0fedcba98765 ["
        ));
    }

    #[test]
    fn reserved_bits_are_ignored_on_receipt() {
        // Set every reserved bit of the I2bis (R before both tags, the 49 reserved bits)
        // and of an I2 (R, Reserved2); the parsed messages do not change.
        let mut b = I2BIS_BYTES;
        b[6] |= 0x80;
        b[20..26].fill(0xff);
        b[26] |= 0x80;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(
            Message::parse_bytes(&b).unwrap(),
            Message::parse_bytes(&I2BIS_BYTES).unwrap()
        );
        let mut b = I2_BYTES;
        b[6] |= 0x80;
        b[20..24].fill(0xff);
        b[3] = 0xfe; // Reserved1
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(
            Message::parse_bytes(&b).unwrap(),
            Message::parse_bytes(&I2_BYTES).unwrap()
        );
    }
}
