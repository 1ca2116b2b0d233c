//! Update Request (type 64, RFC 5533 §5.10) and Update Acknowledgement (type 65, §5.11).
//!
//! ```text
//! | 59 | Hdr Ext Len | 0 | Type = 64/65 | Reserved1 | 0 | Checksum |
//! | R | Receiver Context Tag (47)                                  |
//! | Request Nonce (32)                                             |
//! | Options ...                                                    |
//! ```
//!
//! Both name a context by the tag its *receiver* allocated, so both are answered with an
//! R1bis when the receiver has no such context (types 64–127, RFC 5533 §5.3).

use core::fmt;

use super::ContextTag;
use super::control::{MessageType, Packet};
use super::message::{Body, message_api};
use super::option::{DisplayOptions, Repr as OptionRepr};
use crate::error::Result;

/// Update Request (type 64, RFC 5533 §5.10): a new Locator List and/or Locator
/// Preferences, each replacing the previous one entirely.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpdateRequest {
    /// The tag the receiver of this message allocated.
    pub receiver_context_tag: ContextTag,
    /// Random per update, the same on retransmissions; copied into the acknowledgement.
    pub request_nonce: u32,
    /// Locator List, Locator Preferences, CGA Parameter Data Structure, CGA Signature,
    /// Keepalive Timeout.
    pub options: Vec<OptionRepr>,
}

impl Body for UpdateRequest {
    const TYPE: MessageType = MessageType::UpdateRequest;
    fn fixed_len(&self) -> usize {
        16
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.receiver_context_tag);
        p.set_nonce(self.request_nonce);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            receiver_context_tag: p.context_tag(),
            request_nonce: p.nonce(),
            options,
        })
    }
}
message_api!(UpdateRequest);

impl fmt::Display for UpdateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 Update Request rcv_ct={} req_nonce={:#010x}{}",
            self.receiver_context_tag,
            self.request_nonce,
            DisplayOptions(&self.options)
        )
    }
}

/// Update Acknowledgement (type 65, RFC 5533 §5.11): the new locators may now be used as
/// *source* addresses; it says nothing about their verification as destinations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpdateAcknowledgement {
    /// The tag the receiver of this message allocated.
    pub receiver_context_tag: ContextTag,
    /// Copied from the Update Request.
    pub request_nonce: u32,
    /// None are defined; unknown ones are kept.
    pub options: Vec<OptionRepr>,
}

impl Body for UpdateAcknowledgement {
    const TYPE: MessageType = MessageType::UpdateAcknowledgement;
    fn fixed_len(&self) -> usize {
        16
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.receiver_context_tag);
        p.set_nonce(self.request_nonce);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            receiver_context_tag: p.context_tag(),
            request_nonce: p.nonce(),
            options,
        })
    }
}
message_api!(UpdateAcknowledgement);

impl fmt::Display for UpdateAcknowledgement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 Update Acknowledgement rcv_ct={} req_nonce={:#010x}{}",
            self.receiver_context_tag,
            self.request_nonce,
            DisplayOptions(&self.options)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::locator::{Locator, LocatorList, VerificationMethod};
    use super::super::message::Message;
    use super::super::option::OptionSliceExt;
    use super::super::testgen::{check_message_bytes, ct};
    use super::*;
    use hex_literal::hex;

    static UR_BYTES: [u8; 96] = hex!(
        "3b0b4000 9dca0fed cba98765 11223344"
        "0004002c 00000007 02010100 00000000"
        "20010db8 00010000 00000000 00000001"
        "20010db8 00020000 00000000 00000001"
        "0008000a 01020304 05060708 090a0000"
        "000a0009 f0f1f2f3 f4f5f6f7 f8000000"
    );

    fn ur() -> UpdateRequest {
        UpdateRequest {
            receiver_context_tag: ct(0x0fed_cba9_8765),
            request_nonce: 0x1122_3344,
            options: vec![
                OptionRepr::LocatorList(LocatorList {
                    generation: 7,
                    locators: ["2001:db8:1::1", "2001:db8:2::1"]
                        .map(|a| Locator {
                            address: a.parse().unwrap(),
                            method: VerificationMethod::Hba,
                        })
                        .to_vec(),
                }),
                OptionRepr::CgaParameterDataStructure(hex!("0102030405060708090a").to_vec()),
                OptionRepr::CgaSignature(hex!("f0f1f2f3f4f5f6f7f8").to_vec()),
            ],
        }
    }

    #[test]
    fn update_request_four_directions() {
        check_message_bytes(
            &UR_BYTES,
            &Message::UpdateRequest(ur()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0fed_cba9_8765));
                assert_eq!(p.nonce(), 0x1122_3344);
                let offsets: Vec<_> = p.options().map(|o| o.unwrap().offset).collect();
                assert_eq!(offsets, [16, 64, 80]);
            },
            |p| {
                p.set_context_tag(ct(0x0fed_cba9_8765));
                p.set_nonce(0x1122_3344);
            },
        );
        let m = ur();
        assert_eq!(m.options.cga_signature().map(<[u8]>::len), Some(9));
        assert_eq!(
            m.options.cga_parameter_data_structure().map(<[u8]>::len),
            Some(10)
        );
        assert_eq!(
            m.to_string(),
            "Shim6 Update Request rcv_ct=0x0fedcba98765 req_nonce=0x11223344 \
             [Locator List gen=0x7 [2001:db8:1::1 HBA, 2001:db8:2::1 HBA]; \
             CGA Parameter Data Structure (10 octets); CGA Signature (9 octets)]"
        );
    }

    static UA_BYTES: [u8; 16] = hex!("3b014100 6f620123 456789ab 11223344");

    #[test]
    fn update_acknowledgement_four_directions() {
        let m = UpdateAcknowledgement {
            receiver_context_tag: ct(0x0123_4567_89ab),
            request_nonce: 0x1122_3344,
            options: vec![],
        };
        check_message_bytes(
            &UA_BYTES,
            &Message::UpdateAcknowledgement(m.clone()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0123_4567_89ab));
                assert_eq!(p.nonce(), 0x1122_3344);
                assert_eq!(p.options().count(), 0);
            },
            |p| {
                p.set_context_tag(ct(0x0123_4567_89ab));
                p.set_nonce(0x1122_3344);
            },
        );
        assert_eq!(
            m.to_string(),
            "Shim6 Update Acknowledgement rcv_ct=0x0123456789ab req_nonce=0x11223344"
        );
    }
}
