//! The Mobility Header (Next Header 135, RFC 6275 §6.1) and the messages a home agent
//! needs: Binding Refresh Request, Binding Update, Binding Acknowledgement, Binding
//! Error.
//!
//! ```text
//! +---------------+---------------+---------------+---------------+
//! | Payload Proto |  Header Len   |   MH Type     |   Reserved    |
//! +---------------+---------------+---------------+---------------+
//! |           Checksum            |                               |
//! +-------------------------------+                               |
//! |                       Message Data ...                        |
//! +---------------------------------------------------------------+
//! ```
//!
//! The header is `8 * (Header Len + 1)` octets. The checksum is the usual upper-layer
//! checksum over the IPv6 pseudo-header (RFC 8200 §8.1) with Next Header 135 and the
//! MH length; which addresses go into the pseudo-header depends on a Home Address
//! option or a type 2 routing header in the packet, so every checksum function takes
//! them as arguments (see [`super::pseudo_header_addresses`]).
//!
//! Route-optimisation messages (types 1–4: `HoTI`, `CoTI`, `HoT`, `CoT`) are not parsed:
//! [`Repr::parse`] returns [`Error::Unrecognized`] for them as for any unknown type,
//! and the caller answers with a Binding Error, status 2 (RFC 6275 §9.2).

use core::fmt;
use std::net::Ipv6Addr;

use super::options::{MobilityOption, OptionIter, emit_options, options_end, parse_options};
use crate::checksum;
use crate::error::{Error, Result, check_len};
use crate::ipv6::addr;
use crate::ipv6::proto;

/// MH Type: Binding Refresh Request (RFC 6275 §6.1.2).
pub const MH_BINDING_REFRESH_REQUEST: u8 = 0;
/// MH Type: Home Test Init (RFC 6275 §6.1.3), not parsed here.
pub const MH_HOME_TEST_INIT: u8 = 1;
/// MH Type: Care-of Test Init (RFC 6275 §6.1.4), not parsed here.
pub const MH_CARE_OF_TEST_INIT: u8 = 2;
/// MH Type: Home Test (RFC 6275 §6.1.5), not parsed here.
pub const MH_HOME_TEST: u8 = 3;
/// MH Type: Care-of Test (RFC 6275 §6.1.6), not parsed here.
pub const MH_CARE_OF_TEST: u8 = 4;
/// MH Type: Binding Update (RFC 6275 §6.1.7).
pub const MH_BINDING_UPDATE: u8 = 5;
/// MH Type: Binding Acknowledgement (RFC 6275 §6.1.8).
pub const MH_BINDING_ACK: u8 = 6;
/// MH Type: Binding Error (RFC 6275 §6.1.9).
pub const MH_BINDING_ERROR: u8 = 7;

/// Binding Update flag A: acknowledge (RFC 6275 §6.1.7).
pub const BU_FLAG_ACK: u16 = 0x8000;
/// Binding Update flag H: home registration.
pub const BU_FLAG_HOME: u16 = 0x4000;
/// Binding Update flag L: link-local address compatibility.
pub const BU_FLAG_LINK_LOCAL: u16 = 0x2000;
/// Binding Update flag K: key management mobility capability.
pub const BU_FLAG_KEY_MGMT: u16 = 0x1000;
/// Binding Acknowledgement flag K (RFC 6275 §6.1.8), in the octet after Status.
pub const BA_FLAG_KEY_MGMT: u8 = 0x80;

/// Byte ranges of the fields, per message (RFC 6275 §6.1.1–§6.1.9).
mod field {
    use core::ops::Range;
    pub const PAYLOAD_PROTO: usize = 0;
    pub const HEADER_LEN: usize = 1;
    pub const MH_TYPE: usize = 2;
    pub const RESERVED: usize = 3;
    pub const CHECKSUM: Range<usize> = 4..6;
    pub const DATA: usize = 6;

    pub const BRR_RESERVED: Range<usize> = 6..8;
    pub const BRR_OPTIONS: usize = 8;

    pub const BU_SEQUENCE: Range<usize> = 6..8;
    pub const BU_FLAGS: Range<usize> = 8..10;
    pub const BU_LIFETIME: Range<usize> = 10..12;
    pub const BU_OPTIONS: usize = 12;

    pub const BA_STATUS: usize = 6;
    pub const BA_FLAGS: usize = 7;
    pub const BA_SEQUENCE: Range<usize> = 8..10;
    pub const BA_LIFETIME: Range<usize> = 10..12;
    pub const BA_OPTIONS: usize = 12;

    pub const BE_STATUS: usize = 6;
    pub const BE_RESERVED: usize = 7;
    pub const BE_HOME_ADDRESS: Range<usize> = 8..24;
    pub const BE_OPTIONS: usize = 24;
}

/// Where the options of a message of `mh_type` start: the length of its fixed part.
/// `None` for types this module does not parse.
#[inline]
pub const fn options_offset(mh_type: u8) -> Option<usize> {
    match mh_type {
        MH_BINDING_REFRESH_REQUEST => Some(field::BRR_OPTIONS),
        MH_BINDING_UPDATE => Some(field::BU_OPTIONS),
        MH_BINDING_ACK => Some(field::BA_OPTIONS),
        MH_BINDING_ERROR => Some(field::BE_OPTIONS),
        _ => None,
    }
}

/// A read/write view of a Mobility Header at the start of a buffer.
///
/// After [`Packet::new_checked`] the buffer holds the whole header (`header_len()`
/// octets; anything after it is ignored) and, for the four parsed types, at least the
/// message's fixed part, so no accessor panics. Message-specific accessors read 0 from a
/// message of another, shorter type.
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

    /// The one validity check: the whole header present, and a Header Len large enough
    /// for the message type's fixed part (RFC 6275 §9.2: otherwise discard and send a
    /// Parameter Problem, code 0). The checksum needs the addresses: see
    /// [`Packet::verify_checksum`].
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("Mobility Header", b, 2)?;
        check_len("Mobility Header", b, self.header_len())?;
        if let Some(min) = options_offset(self.mh_type()) {
            if self.header_len() < min {
                return Err(Error::BadLength {
                    what: "Mobility Header Header Len",
                    value: usize::from(self.header_len_field()),
                });
            }
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Payload Proto (SHOULD be 59, RFC 6275 §6.1.1).
    #[inline]
    pub fn payload_proto(&self) -> u8 {
        self.buffer.as_ref()[field::PAYLOAD_PROTO]
    }

    /// The Header Len field (8-octet units beyond the first 8).
    #[inline]
    pub fn header_len_field(&self) -> u8 {
        self.buffer.as_ref()[field::HEADER_LEN]
    }

    /// Length of the Mobility Header in octets.
    #[inline]
    pub fn header_len(&self) -> usize {
        crate::ipv6::units_of_8(self.header_len_field())
    }

    /// MH Type.
    #[inline]
    pub fn mh_type(&self) -> u8 {
        self.buffer.as_ref()[field::MH_TYPE]
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM.start)
    }

    /// Message Data: everything after the checksum.
    #[inline]
    pub fn message_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..self.header_len()]
    }

    /// The option area of a parsed type (empty for other types).
    #[inline]
    pub fn options_data(&self) -> &[u8] {
        let end = self.header_len();
        let start = options_offset(self.mh_type()).unwrap_or(end).min(end);
        &self.buffer.as_ref()[start..end]
    }

    /// Iterates the options, padding included, with offsets from the start of the MH.
    #[inline]
    pub fn options(&self) -> OptionIter<'_> {
        let end = self.header_len();
        let start = options_offset(self.mh_type()).unwrap_or(end).min(end);
        OptionIter::new(&self.buffer.as_ref()[start..end], start)
    }

    fn u8_at(&self, at: usize) -> u8 {
        self.message().get(at).copied().unwrap_or(0)
    }

    fn u16_at(&self, at: usize) -> u16 {
        match self.message().get(at..at + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => 0,
        }
    }

    fn message(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..self.header_len().min(b.len())]
    }

    /// Binding Update: Sequence #.
    #[inline]
    pub fn bu_sequence(&self) -> u16 {
        self.u16_at(field::BU_SEQUENCE.start)
    }

    /// Binding Update: the 16 flag bits (A, H, L, K and reserved).
    #[inline]
    pub fn bu_flags(&self) -> u16 {
        self.u16_at(field::BU_FLAGS.start)
    }

    /// Binding Update: Lifetime, in units of 4 seconds (0 = delete the binding).
    #[inline]
    pub fn bu_lifetime(&self) -> u16 {
        self.u16_at(field::BU_LIFETIME.start)
    }

    /// Binding Acknowledgement: Status.
    #[inline]
    pub fn ba_status(&self) -> u8 {
        self.u8_at(field::BA_STATUS)
    }

    /// Binding Acknowledgement: the K flag.
    #[inline]
    pub fn ba_key_mgmt(&self) -> bool {
        self.u8_at(field::BA_FLAGS) & BA_FLAG_KEY_MGMT != 0
    }

    /// Binding Acknowledgement: Sequence #.
    #[inline]
    pub fn ba_sequence(&self) -> u16 {
        self.u16_at(field::BA_SEQUENCE.start)
    }

    /// Binding Acknowledgement: Lifetime granted, in units of 4 seconds.
    #[inline]
    pub fn ba_lifetime(&self) -> u16 {
        self.u16_at(field::BA_LIFETIME.start)
    }

    /// Binding Error: Status.
    #[inline]
    pub fn be_status(&self) -> u8 {
        self.u8_at(field::BE_STATUS)
    }

    /// Binding Error: Home Address (`::` if the message is too short to hold one).
    #[inline]
    pub fn be_home_address(&self) -> Ipv6Addr {
        self.message()
            .get(field::BE_HOME_ADDRESS)
            .map_or(Ipv6Addr::UNSPECIFIED, addr)
    }

    /// The running sum of pseudo-header and header, for [`Packet::verify_checksum`].
    fn sum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u32 {
        let m = self.message();
        // The MH is at most 2048 octets: the cast cannot truncate.
        let acc = checksum::pseudo_header(src, dst, proto::MOBILITY, m.len() as u32);
        checksum::sum(acc, m)
    }

    /// Whether the checksum verifies with `src`/`dst` in the pseudo-header (RFC 6275
    /// §6.1.1; pick the addresses with [`super::pseudo_header_addresses`]).
    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::fold(self.sum(src, dst)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Payload Proto.
    #[inline]
    pub fn set_payload_proto(&mut self, v: u8) {
        self.buffer.as_mut()[field::PAYLOAD_PROTO] = v;
    }

    /// Sets the Header Len field.
    #[inline]
    pub fn set_header_len_field(&mut self, v: u8) {
        self.buffer.as_mut()[field::HEADER_LEN] = v;
    }

    /// Sets MH Type.
    #[inline]
    pub fn set_mh_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::MH_TYPE] = v;
    }

    /// Zeroes the reserved octet after MH Type.
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED] = 0;
    }

    /// Sets Checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM.start, v);
    }

    fn set_u16(&mut self, at: usize, v: u16) {
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Binding Refresh Request: zeroes its Reserved field.
    #[inline]
    pub fn clear_brr_reserved(&mut self) {
        self.buffer.as_mut()[field::BRR_RESERVED].fill(0);
    }

    /// Binding Update: sets Sequence #.
    #[inline]
    pub fn set_bu_sequence(&mut self, v: u16) {
        self.set_u16(field::BU_SEQUENCE.start, v);
    }

    /// Binding Update: sets the 16 flag bits.
    #[inline]
    pub fn set_bu_flags(&mut self, v: u16) {
        self.set_u16(field::BU_FLAGS.start, v);
    }

    /// Binding Update: sets Lifetime (4-second units).
    #[inline]
    pub fn set_bu_lifetime(&mut self, v: u16) {
        self.set_u16(field::BU_LIFETIME.start, v);
    }

    /// Binding Acknowledgement: sets Status.
    #[inline]
    pub fn set_ba_status(&mut self, v: u8) {
        self.buffer.as_mut()[field::BA_STATUS] = v;
    }

    /// Binding Acknowledgement: sets the K flag and zeroes the reserved bits.
    #[inline]
    pub fn set_ba_key_mgmt(&mut self, k: bool) {
        self.buffer.as_mut()[field::BA_FLAGS] = if k { BA_FLAG_KEY_MGMT } else { 0 };
    }

    /// Binding Acknowledgement: sets Sequence #.
    #[inline]
    pub fn set_ba_sequence(&mut self, v: u16) {
        self.set_u16(field::BA_SEQUENCE.start, v);
    }

    /// Binding Acknowledgement: sets Lifetime (4-second units).
    #[inline]
    pub fn set_ba_lifetime(&mut self, v: u16) {
        self.set_u16(field::BA_LIFETIME.start, v);
    }

    /// Binding Error: sets Status and zeroes the reserved octet.
    #[inline]
    pub fn set_be_status(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[field::BE_STATUS] = v;
        b[field::BE_RESERVED] = 0;
    }

    /// Binding Error: sets Home Address.
    #[inline]
    pub fn set_be_home_address(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::BE_HOME_ADDRESS].copy_from_slice(&a.octets());
    }

    /// Computes and writes the checksum with `src`/`dst` in the pseudo-header.
    ///
    /// # Panics
    /// If the buffer is shorter than `header_len()`.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::fold(self.sum(src, dst));
        self.set_checksum(c);
    }
}

/// Binding Acknowledgement status (RFC 6275 §6.1.8; the values RFC 6275 registers, and
/// RFC 4285 §8's 144–146).
/// Codes registered by later RFCs (NEMO, Proxy Mobile IPv6, ...) are [`BaStatus::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaStatus {
    /// 0: Binding Update accepted.
    Accepted,
    /// 1: Accepted but prefix discovery necessary.
    AcceptedPrefixDiscoveryNecessary,
    /// 128: Reason unspecified.
    ReasonUnspecified,
    /// 129: Administratively prohibited.
    AdministrativelyProhibited,
    /// 130: Insufficient resources.
    InsufficientResources,
    /// 131: Home registration not supported.
    HomeRegistrationNotSupported,
    /// 132: Not home subnet.
    NotHomeSubnet,
    /// 133: Not home agent for this mobile node.
    NotHomeAgentForThisMobileNode,
    /// 134: Duplicate Address Detection failed.
    DuplicateAddressDetectionFailed,
    /// 135: Sequence number out of window.
    SequenceNumberOutOfWindow,
    /// 136: Expired home nonce index.
    ExpiredHomeNonceIndex,
    /// 137: Expired care-of nonce index.
    ExpiredCareOfNonceIndex,
    /// 138: Expired nonces.
    ExpiredNonces,
    /// 139: Registration type change disallowed.
    RegistrationTypeChangeDisallowed,
    /// 144: MIPV6-ID-MISMATCH, the replay-protection timestamp was not valid (RFC 4285
    /// §6, §8).
    IdMismatch,
    /// 145: MIPV6-MESG-ID-REQD, the replay-protection option is required (RFC 4285 §6,
    /// §8).
    MesgIdRequired,
    /// 146: MIPV6-AUTH-FAIL, the Mobility Message Authentication failed (RFC 4285 §5.3,
    /// §8).
    AuthFail,
    /// 174: Invalid Care-of Address.
    InvalidCareOfAddress,
    /// Any other value.
    Other(u8),
}

impl BaStatus {
    /// Whether the Binding Update was accepted (status < 128, RFC 6275 §6.1.8).
    #[inline]
    pub fn is_accepted(self) -> bool {
        u8::from(self) < 128
    }
}

impl From<u8> for BaStatus {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Accepted,
            1 => Self::AcceptedPrefixDiscoveryNecessary,
            128 => Self::ReasonUnspecified,
            129 => Self::AdministrativelyProhibited,
            130 => Self::InsufficientResources,
            131 => Self::HomeRegistrationNotSupported,
            132 => Self::NotHomeSubnet,
            133 => Self::NotHomeAgentForThisMobileNode,
            134 => Self::DuplicateAddressDetectionFailed,
            135 => Self::SequenceNumberOutOfWindow,
            136 => Self::ExpiredHomeNonceIndex,
            137 => Self::ExpiredCareOfNonceIndex,
            138 => Self::ExpiredNonces,
            139 => Self::RegistrationTypeChangeDisallowed,
            144 => Self::IdMismatch,
            145 => Self::MesgIdRequired,
            146 => Self::AuthFail,
            174 => Self::InvalidCareOfAddress,
            other => Self::Other(other),
        }
    }
}

impl From<BaStatus> for u8 {
    fn from(s: BaStatus) -> Self {
        match s {
            BaStatus::Accepted => 0,
            BaStatus::AcceptedPrefixDiscoveryNecessary => 1,
            BaStatus::ReasonUnspecified => 128,
            BaStatus::AdministrativelyProhibited => 129,
            BaStatus::InsufficientResources => 130,
            BaStatus::HomeRegistrationNotSupported => 131,
            BaStatus::NotHomeSubnet => 132,
            BaStatus::NotHomeAgentForThisMobileNode => 133,
            BaStatus::DuplicateAddressDetectionFailed => 134,
            BaStatus::SequenceNumberOutOfWindow => 135,
            BaStatus::ExpiredHomeNonceIndex => 136,
            BaStatus::ExpiredCareOfNonceIndex => 137,
            BaStatus::ExpiredNonces => 138,
            BaStatus::RegistrationTypeChangeDisallowed => 139,
            BaStatus::IdMismatch => 144,
            BaStatus::MesgIdRequired => 145,
            BaStatus::AuthFail => 146,
            BaStatus::InvalidCareOfAddress => 174,
            BaStatus::Other(v) => v,
        }
    }
}

impl fmt::Display for BaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Accepted => "Binding Update accepted",
            Self::AcceptedPrefixDiscoveryNecessary => "Accepted but prefix discovery necessary",
            Self::ReasonUnspecified => "Reason unspecified",
            Self::AdministrativelyProhibited => "Administratively prohibited",
            Self::InsufficientResources => "Insufficient resources",
            Self::HomeRegistrationNotSupported => "Home registration not supported",
            Self::NotHomeSubnet => "Not home subnet",
            Self::NotHomeAgentForThisMobileNode => "Not home agent for this mobile node",
            Self::DuplicateAddressDetectionFailed => "Duplicate Address Detection failed",
            Self::SequenceNumberOutOfWindow => "Sequence number out of window",
            Self::ExpiredHomeNonceIndex => "Expired home nonce index",
            Self::ExpiredCareOfNonceIndex => "Expired care-of nonce index",
            Self::ExpiredNonces => "Expired nonces",
            Self::RegistrationTypeChangeDisallowed => "Registration type change disallowed",
            Self::IdMismatch => "Timestamp mismatch (MIPV6-ID-MISMATCH)",
            Self::MesgIdRequired => "Replay protection required (MIPV6-MESG-ID-REQD)",
            Self::AuthFail => "Authentication failed (MIPV6-AUTH-FAIL)",
            Self::InvalidCareOfAddress => "Invalid Care-of Address",
            Self::Other(v) => return write!(f, "status {v}"),
        };
        write!(f, "{s} ({})", u8::from(*self))
    }
}

/// Binding Error status (RFC 6275 §6.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BeStatus {
    /// 1: Unknown binding for Home Address destination option.
    UnknownBindingForHomeAddress,
    /// 2: Unrecognized MH Type value.
    UnrecognizedMhType,
    /// Any other value.
    Other(u8),
}

impl From<u8> for BeStatus {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::UnknownBindingForHomeAddress,
            2 => Self::UnrecognizedMhType,
            other => Self::Other(other),
        }
    }
}

impl From<BeStatus> for u8 {
    fn from(s: BeStatus) -> Self {
        match s {
            BeStatus::UnknownBindingForHomeAddress => 1,
            BeStatus::UnrecognizedMhType => 2,
            BeStatus::Other(v) => v,
        }
    }
}

impl fmt::Display for BeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownBindingForHomeAddress => {
                write!(f, "Unknown binding for Home Address destination option (1)")
            }
            Self::UnrecognizedMhType => write!(f, "Unrecognized MH Type value (2)"),
            Self::Other(v) => write!(f, "status {v}"),
        }
    }
}

/// Binding Refresh Request (MH Type 0, RFC 6275 §6.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BindingRefreshRequest<'a> {
    /// Mobility options (none are defined for it).
    pub options: Vec<MobilityOption<'a>>,
}

/// Binding Update (MH Type 5, RFC 6275 §6.1.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingUpdate<'a> {
    /// Sequence #.
    pub sequence: u16,
    /// A: the sender requests a Binding Acknowledgement.
    pub ack: bool,
    /// H: home registration.
    pub home_registration: bool,
    /// L: the home address has the same interface identifier as the link-local address.
    pub link_local_compat: bool,
    /// K: key management mobility capability.
    pub key_mgmt: bool,
    /// Lifetime in units of 4 seconds; 0 deletes the binding.
    pub lifetime: u16,
    /// Mobility options (Alternate Care-of Address; Nonce Indices and Binding
    /// Authorization Data towards correspondent nodes).
    pub options: Vec<MobilityOption<'a>>,
}

/// Binding Acknowledgement (MH Type 6, RFC 6275 §6.1.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingAck<'a> {
    /// Status.
    pub status: BaStatus,
    /// K: key management mobility capability.
    pub key_mgmt: bool,
    /// Sequence # copied from the Binding Update (for status 135, the last accepted).
    pub sequence: u16,
    /// Lifetime granted, in units of 4 seconds.
    pub lifetime: u16,
    /// Mobility options (Binding Refresh Advice from a home agent).
    pub options: Vec<MobilityOption<'a>>,
}

/// Binding Error (MH Type 7, RFC 6275 §6.1.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingError<'a> {
    /// Status.
    pub status: BeStatus,
    /// The home address of the offending packet's Home Address option, or `::`.
    pub home_address: Ipv6Addr,
    /// Mobility options.
    pub options: Vec<MobilityOption<'a>>,
}

impl BindingUpdate<'_> {
    /// The 16 flag bits.
    #[inline]
    pub fn flags(&self) -> u16 {
        let bit = |set: bool, flag: u16| if set { flag } else { 0 };
        bit(self.ack, BU_FLAG_ACK)
            | bit(self.home_registration, BU_FLAG_HOME)
            | bit(self.link_local_compat, BU_FLAG_LINK_LOCAL)
            | bit(self.key_mgmt, BU_FLAG_KEY_MGMT)
    }

    /// Lifetime in seconds.
    #[inline]
    pub fn lifetime_secs(&self) -> u32 {
        u32::from(self.lifetime) * 4
    }

    /// The Alternate Care-of Address option, if present.
    pub fn alternate_coa(&self) -> Option<Ipv6Addr> {
        self.options.iter().find_map(|o| match o {
            MobilityOption::AlternateCareOfAddress(a) => Some(*a),
            _ => None,
        })
    }
}

impl BindingAck<'_> {
    /// Lifetime granted, in seconds.
    #[inline]
    pub fn lifetime_secs(&self) -> u32 {
        u32::from(self.lifetime) * 4
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message<'a> {
    /// MH Type 0.
    BindingRefreshRequest(BindingRefreshRequest<'a>),
    /// MH Type 5.
    BindingUpdate(BindingUpdate<'a>),
    /// MH Type 6.
    BindingAck(BindingAck<'a>),
    /// MH Type 7.
    BindingError(BindingError<'a>),
}

impl<'a> Message<'a> {
    /// The MH Type.
    #[inline]
    pub fn mh_type(&self) -> u8 {
        match self {
            Self::BindingRefreshRequest(_) => MH_BINDING_REFRESH_REQUEST,
            Self::BindingUpdate(_) => MH_BINDING_UPDATE,
            Self::BindingAck(_) => MH_BINDING_ACK,
            Self::BindingError(_) => MH_BINDING_ERROR,
        }
    }

    /// The mobility options.
    #[inline]
    pub fn options(&self) -> &[MobilityOption<'a>] {
        match self {
            Self::BindingRefreshRequest(m) => &m.options,
            Self::BindingUpdate(m) => &m.options,
            Self::BindingAck(m) => &m.options,
            Self::BindingError(m) => &m.options,
        }
    }
}

/// A parsed Mobility Header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Payload Proto; [`proto::NONE`] (59) on everything this implementation sends.
    pub payload_proto: u8,
    /// The message.
    pub message: Message<'a>,
}

impl<'a> Repr<'a> {
    /// A Repr with Payload Proto 59, as RFC 6275 §6.1.1 says to send.
    #[inline]
    pub fn new(message: Message<'a>) -> Self {
        Self {
            payload_proto: proto::NONE,
            message,
        }
    }

    /// Parses a view: verifies the checksum with `src`/`dst` in the pseudo-header, then
    /// the type, the fixed part and the options. Padding options are dropped; unknown
    /// options are kept.
    ///
    /// # Errors
    /// `BadChecksum` (drop silently, RFC 6275 §9.2); `Unrecognized` for an MH Type other
    /// than 0, 5, 6, 7 (answer with Binding Error status 2, RFC 6275 §9.2); those of
    /// [`Packet::check`] and [`parse_options`].
    ///
    /// # Fuzzing
    /// Under `cfg(fuzzing)` the checksum is not verified.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<Self> {
        packet.check()?;
        if !cfg!(fuzzing) && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum {
                what: "Mobility Header",
            });
        }
        let b: &'a [u8] = T::as_ref(packet.buffer);
        let ty = packet.mh_type();
        let Some(start) = options_offset(ty) else {
            // RFC 6275 §9.2: unrecognised MH Type -> Binding Error status 2.
            return Err(Error::Unrecognized {
                what: "Mobility Header type",
                value: u32::from(ty),
            });
        };
        let options = parse_options(&b[start..packet.header_len()], start)?;
        let message = match ty {
            MH_BINDING_REFRESH_REQUEST => {
                Message::BindingRefreshRequest(BindingRefreshRequest { options })
            }
            MH_BINDING_UPDATE => {
                let f = packet.bu_flags();
                Message::BindingUpdate(BindingUpdate {
                    sequence: packet.bu_sequence(),
                    ack: f & BU_FLAG_ACK != 0,
                    home_registration: f & BU_FLAG_HOME != 0,
                    link_local_compat: f & BU_FLAG_LINK_LOCAL != 0,
                    key_mgmt: f & BU_FLAG_KEY_MGMT != 0,
                    lifetime: packet.bu_lifetime(),
                    options,
                })
            }
            MH_BINDING_ACK => Message::BindingAck(BindingAck {
                status: packet.ba_status().into(),
                key_mgmt: packet.ba_key_mgmt(),
                sequence: packet.ba_sequence(),
                lifetime: packet.ba_lifetime(),
                options,
            }),
            // options_offset() is Some only for the four types matched here.
            _ => Message::BindingError(BindingError {
                status: packet.be_status().into(),
                home_address: packet.be_home_address(),
                options,
            }),
        };
        Ok(Self {
            payload_proto: packet.payload_proto(),
            message,
        })
    }

    /// Length of the header [`Repr::emit`] writes: fixed part, aligned options, padding
    /// to a multiple of 8.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        let start = options_offset(self.message.mh_type()).unwrap_or(field::BRR_OPTIONS);
        options_end(start, self.message.options())
    }

    /// Writes the header and its checksum (with `src`/`dst` in the pseudo-header).
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`], or that exceeds 2048 octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) {
        let len = self.buffer_len();
        assert!(len <= 2048, "Mobility Header longer than 2048 octets");
        packet.set_payload_proto(self.payload_proto);
        packet.set_header_len_field((len / 8 - 1) as u8);
        packet.set_mh_type(self.message.mh_type());
        packet.clear_reserved();
        match &self.message {
            Message::BindingRefreshRequest(_) => packet.clear_brr_reserved(),
            Message::BindingUpdate(m) => {
                packet.set_bu_sequence(m.sequence);
                packet.set_bu_flags(m.flags());
                packet.set_bu_lifetime(m.lifetime);
            }
            Message::BindingAck(m) => {
                packet.set_ba_status(m.status.into());
                packet.set_ba_key_mgmt(m.key_mgmt);
                packet.set_ba_sequence(m.sequence);
                packet.set_ba_lifetime(m.lifetime);
            }
            Message::BindingError(m) => {
                packet.set_be_status(m.status.into());
                packet.set_be_home_address(m.home_address);
            }
        }
        let start = options_offset(self.message.mh_type()).unwrap_or(field::BRR_OPTIONS);
        emit_options(packet.buffer.as_mut(), start, self.message.options());
        packet.fill_checksum(src, dst);
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Message::BindingRefreshRequest(_) => write!(f, "MH Binding Refresh Request")?,
            Message::BindingUpdate(m) => {
                write!(f, "MH Binding Update seq={} flags=", m.sequence)?;
                for (set, c) in [
                    (m.ack, 'A'),
                    (m.home_registration, 'H'),
                    (m.link_local_compat, 'L'),
                    (m.key_mgmt, 'K'),
                ] {
                    if set {
                        write!(f, "{c}")?;
                    }
                }
                write!(f, " lifetime={}s", m.lifetime_secs())?;
            }
            Message::BindingAck(m) => write!(
                f,
                "MH Binding Ack status={} k={} seq={} lifetime={}s",
                m.status,
                u8::from(m.key_mgmt),
                m.sequence,
                m.lifetime_secs()
            )?,
            Message::BindingError(m) => write!(
                f,
                "MH Binding Error status={} hoa={}",
                m.status, m.home_address
            )?,
        }
        for o in self.message.options() {
            write!(f, " {o}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::options::tests::{arb_options, to_options};
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    const HA: &str = "2001:db8:1::1";
    const HOA: &str = "2001:db8:1::100";
    const COA: &str = "2001:db8:2::100";
    const ALT: &str = "2001:db8:3::100";

    // Checksums computed independently (Python, RFC 8200 §8.1 pseudo-header, NH 135).
    // BRR from the HA to the HoA.
    static BRR: [u8; 8] = hex!("3b 00 00 00 67fb 0000");
    // BU, pseudo-header HoA -> HA (Home Address option present): seq 1000, A|H,
    // lifetime 60 (240 s), PadN(0), Alternate CoA 2001:db8:3::100 at offset 14.
    static BU: [u8; 32] = hex!(
        "3b 03 05 00 6bef 03e8 c000 003c
         0100 0310 20010db8000300000000000000000100"
    );
    // BA, pseudo-header HA -> HoA (type 2 routing header): status 0, K, seq 1000,
    // lifetime 60, Binding Refresh Advice 50 (200 s).
    static BA: [u8; 16] = hex!("3b 01 06 00 5b1a 00 80 03e8 003c 02 02 0032");
    // BE, HA -> CoA: status 2, home address 2001:db8:1::100.
    static BE: [u8; 24] = hex!("3b 02 07 00 302e 02 00 20010db8000100000000000000000100");

    fn cases() -> Vec<(&'static [u8], Repr<'static>, Ipv6Addr, Ipv6Addr)> {
        vec![
            (
                &BRR,
                Repr::new(Message::BindingRefreshRequest(
                    BindingRefreshRequest::default(),
                )),
                ip(HA),
                ip(HOA),
            ),
            (
                &BU,
                Repr::new(Message::BindingUpdate(BindingUpdate {
                    sequence: 1000,
                    ack: true,
                    home_registration: true,
                    link_local_compat: false,
                    key_mgmt: false,
                    lifetime: 60,
                    options: vec![MobilityOption::AlternateCareOfAddress(ip(ALT))],
                })),
                ip(HOA),
                ip(HA),
            ),
            (
                &BA,
                Repr::new(Message::BindingAck(BindingAck {
                    status: BaStatus::Accepted,
                    key_mgmt: true,
                    sequence: 1000,
                    lifetime: 60,
                    options: vec![MobilityOption::BindingRefreshAdvice(50)],
                })),
                ip(HA),
                ip(HOA),
            ),
            (
                &BE,
                Repr::new(Message::BindingError(BindingError {
                    status: BeStatus::UnrecognizedMhType,
                    home_address: ip(HOA),
                    options: vec![],
                })),
                ip(HA),
                ip(COA),
            ),
        ]
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BU[..]).unwrap();
        assert_eq!(p.payload_proto(), 59);
        assert_eq!(p.header_len(), 32);
        assert_eq!(p.mh_type(), MH_BINDING_UPDATE);
        assert_eq!(p.checksum(), 0x6bef);
        assert_eq!(p.bu_sequence(), 1000);
        assert_eq!(p.bu_flags(), BU_FLAG_ACK | BU_FLAG_HOME);
        assert_eq!(p.bu_lifetime(), 60);
        assert_eq!(p.options_data(), &BU[12..]);
        assert!(p.verify_checksum(&ip(HOA), &ip(HA)));
        // The care-of address in the pseudo-header is wrong when a HAO is present.
        assert!(!p.verify_checksum(&ip(COA), &ip(HA)));

        let p = Packet::new_checked(&BA[..]).unwrap();
        assert_eq!(p.ba_status(), 0);
        assert!(p.ba_key_mgmt());
        assert_eq!((p.ba_sequence(), p.ba_lifetime()), (1000, 60));
        assert!(p.verify_checksum(&ip(HA), &ip(HOA)));

        let p = Packet::new_checked(&BE[..]).unwrap();
        assert_eq!(p.be_status(), 2);
        assert_eq!(p.be_home_address(), ip(HOA));
        assert!(p.options_data().is_empty());

        let p = Packet::new_checked(&BRR[..]).unwrap();
        assert_eq!(p.mh_type(), MH_BINDING_REFRESH_REQUEST);
        // Accessors of longer messages read 0 instead of panicking.
        assert_eq!(
            (p.bu_lifetime(), p.be_home_address()),
            (0, Ipv6Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 32];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_payload_proto(59);
        p.set_header_len_field(3);
        p.set_mh_type(MH_BINDING_UPDATE);
        p.clear_reserved();
        p.set_bu_sequence(1000);
        p.set_bu_flags(BU_FLAG_ACK | BU_FLAG_HOME);
        p.set_bu_lifetime(60);
        p.into_inner()[12..].copy_from_slice(&BU[12..]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&ip(HOA), &ip(HA));
        assert_eq!(b, BU);

        let mut b = [0xa5u8; 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_payload_proto(59);
        p.set_header_len_field(1);
        p.set_mh_type(MH_BINDING_ACK);
        p.clear_reserved();
        p.set_ba_status(0);
        p.set_ba_key_mgmt(true);
        p.set_ba_sequence(1000);
        p.set_ba_lifetime(60);
        p.into_inner()[12..].copy_from_slice(&BA[12..]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&ip(HA), &ip(HOA));
        assert_eq!(b, BA);

        let mut b = [0xa5u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_payload_proto(59);
        p.set_header_len_field(2);
        p.set_mh_type(MH_BINDING_ERROR);
        p.clear_reserved();
        p.set_be_status(2);
        p.set_be_home_address(ip(HOA));
        p.fill_checksum(&ip(HA), &ip(COA));
        assert_eq!(b, BE);

        let mut b = [0xa5u8; 8];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_payload_proto(59);
        p.set_header_len_field(0);
        p.set_mh_type(MH_BINDING_REFRESH_REQUEST);
        p.clear_reserved();
        p.clear_brr_reserved();
        p.fill_checksum(&ip(HA), &ip(HOA));
        assert_eq!(b, BRR);
    }

    #[test]
    fn parse() {
        for (bytes, repr, src, dst) in cases() {
            let p = Packet::new_checked(bytes).unwrap();
            assert_eq!(Repr::parse(&p, &src, &dst).unwrap(), repr);
        }
    }

    #[test]
    fn emit() {
        for (bytes, repr, src, dst) in cases() {
            let mut b = vec![0xa5u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut b[..]), &src, &dst);
            assert_eq!(b, bytes, "{repr}");
        }
    }

    #[test]
    fn display() {
        let s: Vec<_> = cases().iter().map(|c| c.1.to_string()).collect();
        assert_eq!(
            s,
            [
                "MH Binding Refresh Request",
                "MH Binding Update seq=1000 flags=AH lifetime=240s alt-coa=2001:db8:3::100",
                "MH Binding Ack status=Binding Update accepted (0) k=1 seq=1000 lifetime=240s refresh=200s",
                "MH Binding Error status=Unrecognized MH Type value (2) hoa=2001:db8:1::100",
            ]
        );
    }

    #[test]
    fn truncated_at_every_length() {
        for (bytes, ..) in cases() {
            for n in 0..bytes.len() {
                assert!(matches!(
                    Packet::new_checked(&bytes[..n]),
                    Err(Error::Truncated { .. })
                ));
            }
            // A Header Len too small for the type: BadLength, not a panic.
            if bytes.len() > 8 {
                let mut b = bytes.to_vec();
                b[1] = 0;
                assert!(matches!(
                    Packet::new_checked(&b[..]),
                    Err(Error::BadLength { value: 0, .. })
                ));
            }
            // A Header Len past the end: truncated.
            let mut b = bytes.to_vec();
            b[1] += 1;
            assert!(matches!(
                Packet::new_checked(&b[..]),
                Err(Error::Truncated { .. })
            ));
        }
        // An option running past the header: truncated.
        let mut b = BA;
        b[13] = 9;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&ip(HA), &ip(HOA));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(matches!(
            Repr::parse(&p, &ip(HA), &ip(HOA)),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn bad_checksum_and_unknown_type() {
        let mut b = BU;
        b[20] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, &ip(HOA), &ip(HA)),
            Err(Error::BadChecksum {
                what: "Mobility Header"
            })
        );
        // A Home Test Init (type 1): valid checksum, not parsed -> Binding Error status 2.
        let mut b = [
            0x3b,
            1,
            MH_HOME_TEST_INIT,
            0,
            0,
            0,
            0,
            0,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
        ];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&ip(COA), &ip(HA));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, &ip(COA), &ip(HA)),
            Err(Error::Unrecognized {
                what: "Mobility Header type",
                value: 1
            })
        );
    }

    #[test]
    fn status_codes() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(BaStatus::from(v)), v);
            assert_eq!(u8::from(BeStatus::from(v)), v);
            assert_eq!(BaStatus::from(v).is_accepted(), v < 128);
        }
        assert_eq!(BaStatus::from(135), BaStatus::SequenceNumberOutOfWindow);
        assert_eq!(BaStatus::from(174), BaStatus::InvalidCareOfAddress);
        assert_eq!(BaStatus::from(140), BaStatus::Other(140));
        // RFC 4285 §8.
        assert_eq!(BaStatus::from(146), BaStatus::AuthFail);
        assert_eq!(BaStatus::from(144), BaStatus::IdMismatch);
        assert_eq!(BeStatus::from(1), BeStatus::UnknownBindingForHomeAddress);
    }

    type MessageParts = (u8, [u16; 3], [bool; 4], [u8; 16], Vec<(u8, Vec<u8>)>);

    fn arb_message() -> impl Strategy<Value = MessageParts> {
        (
            prop_oneof![Just(0u8), Just(5), Just(6), Just(7)],
            any::<[u16; 3]>(),
            any::<[bool; 4]>(),
            any::<[u8; 16]>(),
            arb_options(),
        )
    }

    proptest! {
        #[test]
        fn roundtrip((ty, n, f, a, raw) in arb_message(), pp in any::<u8>(),
                     src in any::<[u8; 16]>(), dst in any::<[u8; 16]>()) {
            let options = to_options(&raw);
            let message = match ty {
                0 => Message::BindingRefreshRequest(BindingRefreshRequest { options }),
                5 => Message::BindingUpdate(BindingUpdate {
                    sequence: n[0], ack: f[0], home_registration: f[1], link_local_compat: f[2],
                    key_mgmt: f[3], lifetime: n[1], options,
                }),
                6 => Message::BindingAck(BindingAck {
                    status: (n[2] as u8).into(), key_mgmt: f[0], sequence: n[0], lifetime: n[1], options,
                }),
                _ => Message::BindingError(BindingError {
                    status: (n[2] as u8).into(), home_address: a.into(), options,
                }),
            };
            let r = Repr { payload_proto: pp, message };
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut b = vec![0xa5u8; r.buffer_len()];
            prop_assert_eq!(b.len() % 8, 0);
            r.emit(&mut Packet::new_unchecked(&mut b[..]), &src, &dst);
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum(&src, &dst));
            prop_assert_eq!(Repr::parse(&p, &src, &dst).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80), fix in any::<bool>()) {
            let mut b = b;
            if fix && b.len() >= 8 {
                // A Header Len that fits and a correct checksum, so parsing gets past them.
                b[1] = ((b.len() / 8) - 1) as u8;
                b[2] %= 8;
                let mut p = Packet::new_unchecked(&mut b[..]);
                if p.check().is_ok() {
                    p.fill_checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST);
                }
            }
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = (p.bu_sequence(), p.ba_status(), p.be_home_address(), p.options().count());
                if let Ok(r) = Repr::parse(&p, &Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST) {
                    let _ = r.to_string();
                }
            }
        }
    }
}
