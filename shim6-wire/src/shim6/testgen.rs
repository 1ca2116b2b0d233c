//! Test support for the Shim6 control messages: the four-direction byte-array check and
//! proptest strategies for every option and message (compiled for tests only).

use std::net::Ipv6Addr;

use proptest::collection::vec;
use proptest::prelude::*;

use super::ContextTag;
use super::control::Packet;
use super::error_message::{ErrorCode, ErrorMessage, MAX_PACKET_IN_ERROR};
use super::handshake::{I1, I2, I2bis, R1, R1bis, R2};
use super::locator::{
    Locator, LocatorList, LocatorPreference, LocatorPreferences, VerificationMethod,
};
use super::message::Message;
use super::option::{OptionType, Repr as OptionRepr, Tlv, UlidPair};
use super::probe::{Keepalive, MAX_PROBE_RECORDS, Probe, ProbeRecord, ReapState};
use super::update::{UpdateAcknowledgement, UpdateRequest};
use crate::error::Error;

/// A context tag from a literal that fits 47 bits.
pub(crate) fn ct(v: u64) -> ContextTag {
    ContextTag::new(v).expect("test tag over 47 bits")
}

/// The four directions, truncation and Hdr Ext Len consistency for one message:
/// - deconstruct: the checked view's common fields, then `deconstruct` for the
///   type-specific ones;
/// - construct: the common setters, `construct`, the options written through the TLV
///   setters, `fill_checksum`, all over a 0xa5-filled buffer, equal `bytes`;
/// - parse: `Message::parse(bytes) == msg`;
/// - emit: `msg` emitted over 0xa5 and through `to_vec` equals `bytes`;
/// - every shorter cut fails with `Truncated`;
/// - every smaller Hdr Ext Len (checksum refilled) fails with `BadLength` or parses
///   to the same message with a prefix of its options.
pub(crate) fn check_message_bytes(
    bytes: &[u8],
    msg: &Message,
    deconstruct: impl Fn(&Packet<&[u8]>),
    construct: impl Fn(&mut Packet<&mut [u8]>),
) {
    let ty = msg.message_type();
    // Deconstruct.
    let p = Packet::new_checked(bytes).unwrap();
    assert_eq!(p.next_header(), 59);
    assert_eq!(p.header_len(), bytes.len());
    assert!(!p.p_bit());
    assert_eq!(p.message_type(), ty);
    assert!(!p.s_bit());
    assert!(p.verify_checksum(), "{ty}: checksum");
    deconstruct(&p);

    // Construct.
    let mut b = vec![0xa5u8; bytes.len()];
    let mut q = Packet::new_unchecked(&mut b[..]);
    q.set_next_header(59);
    q.set_hdr_ext_len(u8::try_from(bytes.len() / 8 - 1).unwrap());
    q.set_message_type(ty);
    q.set_type_specific(0);
    q.clear_reserved();
    construct(&mut q);
    let start = p.options_offset();
    for raw in p.options() {
        let raw = raw.unwrap();
        let mut t = Tlv::new_unchecked(&mut q.as_bytes_mut()[raw.offset..]);
        t.set_type(raw.option_type, raw.critical);
        t.set_length(u16::try_from(raw.contents.len()).unwrap());
        t.contents_mut().copy_from_slice(raw.contents);
        t.clear_padding();
    }
    assert!(start <= bytes.len());
    q.fill_checksum();
    assert_eq!(b, bytes, "{ty}: construct");

    // Parse.
    assert_eq!(&Message::parse(&p).unwrap(), msg, "{ty}: parse");

    // Emit.
    assert_eq!(msg.buffer_len(), bytes.len());
    let mut b = vec![0xa5u8; bytes.len()];
    msg.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
    assert_eq!(b, bytes, "{ty}: emit");
    assert_eq!(msg.to_vec().unwrap(), bytes);

    // Truncation at every length.
    for n in 0..bytes.len() {
        match Message::parse_bytes(&bytes[..n]) {
            Err(Error::Truncated { .. }) => {}
            other => panic!("{ty} cut at {n}: {other:?}"),
        }
    }

    // Every smaller Hdr Ext Len.
    for hel in 0..bytes[1] {
        let mut b = bytes.to_vec();
        b[1] = hel;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        match (Message::parse_bytes(&b), msg) {
            (Err(Error::BadLength { .. }), _) => {}
            (Ok(Message::Error(short)), Message::Error(full)) => {
                // An Error message has no options: a shorter one just carries less of
                // the packet in error.
                assert!(full.packet_in_error.starts_with(&short.packet_in_error));
                assert_eq!((short.code, short.pointer), (full.code, full.pointer));
            }
            (Ok(m), _) => {
                assert_eq!(m.message_type(), ty);
                assert!(
                    msg.options().starts_with(m.options()),
                    "{ty} Hdr Ext Len {hel}"
                );
                assert!(m.options().len() < msg.options().len());
            }
            (Err(e), _) => panic!("{ty} Hdr Ext Len {hel}: {e:?}"),
        }
    }
}

/// Any context tag.
pub(crate) fn tag() -> impl Strategy<Value = ContextTag> {
    (0u64..=ContextTag::MAX.value()).prop_map(ct)
}

/// Any IPv6 address.
pub(crate) fn addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

/// A Locator List of up to 9 locators (crossing the 8-locator padding boundary).
pub(crate) fn locator_list() -> impl Strategy<Value = LocatorList> {
    (any::<u32>(), vec((addr(), any::<u8>()), 0..10)).prop_map(|(generation, ls)| LocatorList {
        generation,
        locators: ls
            .into_iter()
            .map(|(address, m)| Locator {
                address,
                method: VerificationMethod::from(m),
            })
            .collect(),
    })
}

/// Locator Preferences with every element length from 1 to 6.
pub(crate) fn locator_preferences() -> impl Strategy<Value = LocatorPreferences> {
    (any::<u32>(), 1u8..=6, 0usize..8).prop_flat_map(|(generation, element_len, n)| {
        let e = usize::from(element_len);
        vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                vec(any::<u8>(), e.saturating_sub(3)),
            ),
            n,
        )
        .prop_map(move |els| LocatorPreferences {
            generation,
            element_len,
            preferences: els
                .into_iter()
                .map(|(flags, p, w, extra)| LocatorPreference {
                    flags,
                    priority: if e >= 2 { p } else { 0 },
                    weight: if e >= 3 { w } else { 0 },
                    extra,
                })
                .collect(),
        })
    })
}

/// Any option, unknown ones included.
pub(crate) fn option() -> impl Strategy<Value = OptionRepr> {
    prop_oneof![
        vec(any::<u8>(), 0..40).prop_map(OptionRepr::ResponderValidator),
        locator_list().prop_map(OptionRepr::LocatorList),
        locator_preferences().prop_map(OptionRepr::LocatorPreferences),
        vec(any::<u8>(), 0..80).prop_map(OptionRepr::CgaParameterDataStructure),
        vec(any::<u8>(), 0..80).prop_map(OptionRepr::CgaSignature),
        (addr(), addr())
            .prop_map(|(sender, receiver)| OptionRepr::UlidPair(UlidPair { sender, receiver })),
        any::<u32>().prop_map(OptionRepr::ForkedInstanceId),
        any::<u16>().prop_map(OptionRepr::KeepaliveTimeout),
        (
            (0u16..=0x7fff).prop_filter("unknown types only", |t| !OptionType::from(*t).is_known()),
            any::<bool>(),
            vec(any::<u8>(), 0..24)
        )
            .prop_map(|(option_type, critical, contents)| OptionRepr::Unknown {
                option_type,
                critical,
                contents
            }),
    ]
}

/// Up to 3 options.
pub(crate) fn options() -> impl Strategy<Value = Vec<OptionRepr>> {
    vec(option(), 0..4)
}

fn probe_record() -> impl Strategy<Value = ProbeRecord> {
    (addr(), addr(), any::<u32>(), any::<u32>()).prop_map(|(src, dst, nonce, data)| ProbeRecord {
        src,
        dst,
        nonce,
        data,
    })
}

fn reap_state() -> impl Strategy<Value = ReapState> {
    prop_oneof![
        Just(ReapState::Operational),
        Just(ReapState::Exploring),
        Just(ReapState::InboundOk)
    ]
}

/// Any valid message of any type, small enough for [`Message::to_vec`].
pub(crate) fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (tag(), any::<u32>(), options()).prop_map(|(t, n, o)| Message::I1(I1 {
            initiator_context_tag: t,
            initiator_nonce: n,
            options: o
        })),
        (any::<u32>(), any::<u32>(), options()).prop_map(|(i, r, o)| Message::R1(R1 {
            initiator_nonce: i,
            responder_nonce: r,
            options: o
        })),
        (tag(), any::<u32>(), any::<u32>(), options()).prop_map(|(t, i, r, o)| Message::I2(I2 {
            initiator_context_tag: t,
            initiator_nonce: i,
            responder_nonce: r,
            options: o
        })),
        (tag(), any::<u32>(), options()).prop_map(|(t, n, o)| Message::R2(R2 {
            responder_context_tag: t,
            initiator_nonce: n,
            options: o
        })),
        (tag(), any::<u32>(), options()).prop_map(|(t, n, o)| Message::R1bis(R1bis {
            packet_context_tag: t,
            responder_nonce: n,
            options: o
        })),
        (tag(), any::<u32>(), any::<u32>(), tag(), options()).prop_map(|(t, i, r, pt, o)| {
            Message::I2bis(I2bis {
                initiator_context_tag: t,
                initiator_nonce: i,
                responder_nonce: r,
                packet_context_tag: pt,
                options: o,
            })
        }),
        (tag(), any::<u32>(), options()).prop_map(|(t, n, o)| Message::UpdateRequest(
            UpdateRequest {
                receiver_context_tag: t,
                request_nonce: n,
                options: o
            }
        )),
        (tag(), any::<u32>(), options()).prop_map(|(t, n, o)| Message::UpdateAcknowledgement(
            UpdateAcknowledgement {
                receiver_context_tag: t,
                request_nonce: n,
                options: o
            }
        )),
        (tag(), options()).prop_map(|(t, o)| Message::Keepalive(Keepalive {
            receiver_context_tag: t,
            options: o
        })),
        (
            tag(),
            reap_state(),
            vec(probe_record(), 1..=MAX_PROBE_RECORDS),
            vec(probe_record(), 0..=5),
            vec(option(), 0..2)
        )
            .prop_map(|(t, state, sent, received, o)| Message::Probe(Probe {
                receiver_context_tag: t,
                state,
                sent,
                received,
                options: o
            })),
        (
            0u8..=127,
            any::<u16>(),
            (1usize..=MAX_PACKET_IN_ERROR / 8).prop_flat_map(|n| vec(any::<u8>(), n * 8))
        )
            .prop_map(
                |(code, pointer, packet_in_error)| Message::Error(ErrorMessage {
                    code: ErrorCode::from(code),
                    pointer,
                    packet_in_error
                })
            ),
    ]
    // The largest combinations (many probe records and big options) can pass the
    // signalling limit; those are emitted through `emit` in their own tests.
    .prop_filter("within the signalling limit", |m| {
        m.buffer_len() <= super::control::MAX_MESSAGE_LEN
    })
}
