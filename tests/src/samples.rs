//! Sample packets shared by the tshark check and the fuzz seed corpus: one Shim6 control
//! message of every type carrying every option, the protocol digest's worked I1, and an
//! IPv6 wrapper.

use std::net::Ipv6Addr;

use shim6_wire::shim6::error_message::{ErrorCode, ErrorMessage};
use shim6_wire::shim6::handshake::{I1, I2, I2bis, R1, R1bis, R2};
use shim6_wire::shim6::locator::{
    FLAG_BROKEN, FLAG_TRANSIENT, Locator, LocatorList, LocatorPreference, LocatorPreferences,
    VerificationMethod,
};
use shim6_wire::shim6::option::{Repr as Opt, UlidPair};
use shim6_wire::shim6::probe::{Keepalive, Probe, ProbeRecord, ReapState};
use shim6_wire::shim6::update::{UpdateAcknowledgement, UpdateRequest};
use shim6_wire::shim6::{ContextTag, IP_PROTO_SHIM6, Message, payload};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;

/// Source address of the sample packets.
pub const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// Destination address of the sample packets.
pub const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

/// The worked I1 of the protocol digest (§1.17): tag 0x0123456789ab, nonce 0xdeadbeef.
pub const WORKED_I1: [u8; 16] = [
    0x3b, 0x01, 0x01, 0x00, 0x56, 0x2b, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xde, 0xad, 0xbe, 0xef,
];

/// RFC 3972 Appendix A's CGA Parameters (119 octets), a real PDS to carry.
pub const RFC3972_PDS: &str = "89a8a8b2e858d8b8f2633f44d2d4ce9bfe8000000000000000305c300d06092a864886f70d0101010500034b003048024100c2c2f137305454f10bd9cea36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c3c2382508773c7867f9b3b9e63a09c7bc48f7a54ebefaf0203010001";

/// A 40-octet IPv6 header in front of `payload`.
pub fn ipv6(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    p.extend_from_slice(&[next_header, 64]);
    p.extend_from_slice(&SRC.octets());
    p.extend_from_slice(&DST.octets());
    p.extend_from_slice(payload);
    p
}

/// A context tag from a literal.
pub fn tag(v: u64) -> ContextTag {
    ContextTag::new(v).unwrap()
}

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Octets from a hex string.
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn locator_list() -> LocatorList {
    LocatorList {
        generation: 0x1234_5678,
        locators: vec![
            Locator {
                address: addr("2001:db8:1::1"),
                method: VerificationMethod::Hba,
            },
            Locator {
                address: addr("2001:db8:3::1"),
                method: VerificationMethod::Hba,
            },
            Locator {
                address: addr("2001:db8:4::77"),
                method: VerificationMethod::Cga,
            },
        ],
    }
}

fn locator_prefs() -> LocatorPreferences {
    LocatorPreferences {
        generation: 0x1234_5678,
        element_len: 3,
        preferences: vec![
            LocatorPreference::new(0, 10, 20),
            LocatorPreference::new(FLAG_TRANSIENT, 20, 5),
            LocatorPreference::new(FLAG_BROKEN, 30, 1),
        ],
    }
}

/// The options of a locator-carrying message: every option kind at least once overall.
fn locator_options() -> Vec<Opt> {
    vec![
        Opt::LocatorList(locator_list()),
        Opt::LocatorPreferences(locator_prefs()),
        Opt::CgaParameterDataStructure(hex(RFC3972_PDS)),
        Opt::CgaSignature((0u8..128).map(|i| i.wrapping_mul(37)).collect()),
        Opt::KeepaliveTimeout(20),
    ]
}

fn validator() -> Opt {
    Opt::ResponderValidator(hex("00112233445566778899aabbccddeeff01020304"))
}

fn ulid_pair() -> Opt {
    Opt::UlidPair(UlidPair {
        sender: addr("2001:db8:1::1"),
        receiver: addr("2001:db8:2::2"),
    })
}

fn record(n: u32) -> ProbeRecord {
    ProbeRecord {
        src: addr(&format!("2001:db8:{n}::1")),
        dst: addr(&format!("2001:db8:{}::2", n + 10)),
        nonce: 0x5eed_0000 + n,
        data: 0xda7a_0000 + n,
    }
}

/// One message of every type, with every option kind somewhere.
pub fn control_messages() -> Vec<Message> {
    let i1 = I1 {
        initiator_context_tag: tag(0x0123_4567_89ab),
        initiator_nonce: 0xdead_beef,
        options: vec![ulid_pair(), Opt::ForkedInstanceId(7)],
    };
    let invoking = ipv6(IP_PROTO_SHIM6, &Message::I1(i1.clone()).to_vec().unwrap());
    vec![
        Message::I1(i1),
        Message::R1(R1 {
            initiator_nonce: 0xdead_beef,
            responder_nonce: 0x0000_0102,
            options: vec![validator()],
        }),
        Message::I2(I2 {
            initiator_context_tag: tag(0x0123_4567_89ab),
            initiator_nonce: 0xcafe_f00d,
            responder_nonce: 0x0000_0102,
            options: [
                vec![validator(), ulid_pair(), Opt::ForkedInstanceId(7)],
                locator_options(),
            ]
            .concat(),
        }),
        Message::R2(R2 {
            responder_context_tag: tag(0x7654_3210_fedc),
            initiator_nonce: 0xcafe_f00d,
            options: locator_options(),
        }),
        Message::R1bis(R1bis {
            packet_context_tag: tag(0x0abc_def0_1234),
            responder_nonce: 0x0000_0103,
            options: vec![validator()],
        }),
        Message::I2bis(I2bis {
            initiator_context_tag: tag(0x1111_2222_3333),
            initiator_nonce: 0x0bad_cafe,
            responder_nonce: 0x0000_0103,
            packet_context_tag: tag(0x0abc_def0_1234),
            options: [vec![validator(), ulid_pair()], locator_options()].concat(),
        }),
        Message::UpdateRequest(UpdateRequest {
            receiver_context_tag: tag(0x7654_3210_fedc),
            request_nonce: 0x00c0_ffee,
            options: locator_options(),
        }),
        Message::UpdateAcknowledgement(UpdateAcknowledgement {
            receiver_context_tag: tag(0x0123_4567_89ab),
            request_nonce: 0x00c0_ffee,
            options: vec![],
        }),
        Message::Keepalive(Keepalive {
            receiver_context_tag: tag(0x0123_4567_89ab),
            options: vec![],
        }),
        Message::Probe(Probe {
            receiver_context_tag: tag(0x0123_4567_89ab),
            state: ReapState::InboundOk,
            sent: vec![record(1), record(2)],
            received: vec![record(3)],
            options: vec![],
        }),
        Message::Error(ErrorMessage::new(
            ErrorCode::UnrecognizedCriticalOption,
            56,
            &invoking,
            40,
        )),
    ]
}

/// A TCP segment (ports 40000 -> 443, ACK, window 512, 5 octets of data) behind a payload
/// extension header with tag 0x0123456789ab, inside IPv6.
pub fn payload_packet() -> Vec<u8> {
    let mut tcp = vec![
        0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x10, 0x02, 0x00, 0, 0, 0, 0,
    ];
    tcp.extend_from_slice(b"hello");
    let hdr = payload::Repr {
        next_header: 6,
        context_tag: tag(0x0123_4567_89ab),
    };
    let mut shim = hdr.to_bytes().to_vec();
    shim.extend_from_slice(&tcp);
    ipv6(IP_PROTO_SHIM6, &shim)
}

/// Mobility Header samples (RFC 6275 §6.1): a home-registration Binding Update with an
/// Alternate Care-of Address, and the Binding Acknowledgement accepting it with a refresh
/// advice, as emitted between [`SRC`] (mobile node) and [`DST`] (home agent), checksums
/// included.
pub fn mobility_messages() -> Vec<Vec<u8>> {
    use shim6_wire::mip6::{
        BaStatus, BindingAck, BindingUpdate, Message, MobilityOption, Packet, Repr,
    };
    let bu = Repr::new(Message::BindingUpdate(BindingUpdate {
        sequence: 7,
        ack: true,
        home_registration: true,
        link_local_compat: false,
        key_mgmt: false,
        lifetime: 0x00ff,
        options: vec![MobilityOption::AlternateCareOfAddress(Ipv6Addr::new(
            0x2001, 0xdb8, 0xc0a, 0, 0, 0, 0, 1,
        ))],
    }));
    let ba = Repr::new(Message::BindingAck(BindingAck {
        status: BaStatus::Accepted,
        key_mgmt: false,
        sequence: 7,
        lifetime: 0x00ff,
        options: vec![MobilityOption::BindingRefreshAdvice(0x0040)],
    }));
    [(bu, SRC, DST), (ba, DST, SRC)]
        .into_iter()
        .map(|(r, s, d)| {
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut b[..]), &s, &d);
            b
        })
        .collect()
}

/// The HBA-only set parameters of the protocol digest §6.2 (`LinShim6`'s `hba_test.c`) for
/// `fe80::/64`: modifier, prefix, collision count, 68-octet pseudo-key, Multi-Prefix
/// extension with three prefixes (P = 0).
pub const HBA_SET_PDS: &str = concat!(
    "89a8a8b2e858d8b8f2633f44d2d7c362",
    "fe80000000000000",
    "00",
    "3042300d06092a864886f70d0101010500033100",
    "a36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c3c2382508773c7867f9b3b9e63a09c7bc48f",
    "0012001c00000000fe80000000000000200106881f9900012001066073010001",
);
