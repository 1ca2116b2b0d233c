//! Shim6 options (RFC 5533 §5.15): the generic TLV, an iterator over an options area,
//! and the parsed form of every option.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Type            |C|             Length            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                          Contents                             ~
//! ~                                               +-+-+-+-+-+-+-+-+
//! ~                                               |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Length counts the contents only; padding brings every option to a multiple of 8
//! octets. Padding is written as zeros and never checked on receipt (RFC 5533 §5.15).
//!
//! Parsing keeps the C bit only for [`Repr::Unknown`]: the options RFC 5533 defines are
//! all sent with C = 0, and what a receiver does with C depends on the message the
//! option sits in, which [`Packet::unrecognized_critical_option`] checks on the raw
//! bytes. Consequently `emit(parse(bytes))` equals `bytes` except for a C bit set on a
//! known option, padding octets, and the reserved fields of ULID Pair and Keepalive
//! Timeout; `parse(emit(repr)) == repr` always holds for a valid `repr`.
//!
//! [`Packet::unrecognized_critical_option`]: super::control::Packet::unrecognized_critical_option

use core::fmt;
use std::net::Ipv6Addr;

use super::locator::{LocatorList, LocatorListView, LocatorPreferences, LocatorPrefsView};
use crate::error::{Error, Result, check_len};

/// Octets of the option header: Type | C (16) and Length (16).
pub const HEADER_LEN: usize = 4;

/// Contents length of the ULID Pair option: Reserved (32) + two ULIDs (RFC 5533 §5.15.6).
pub const ULID_PAIR_LEN: usize = 36;

/// Contents length of the Forked Instance Identifier option (RFC 5533 §5.15.7).
pub const FII_LEN: usize = 4;

/// Contents length of the Keepalive Timeout option: Reserved (16) + seconds (16)
/// (RFC 5534 §5.3).
pub const KEEPALIVE_TIMEOUT_LEN: usize = 4;

/// The largest option type, 15 bits.
pub const MAX_OPTION_TYPE: u16 = 0x7fff;

/// Byte ranges of the TLV fields.
mod field {
    use core::ops::Range;
    pub const TYPE_C: Range<usize> = 0..2;
    pub const LENGTH: Range<usize> = 2..4;
    pub const CONTENTS: usize = 4;
}

/// Padding after `length` octets of contents: `7 − ((Length + 3) mod 8)` (RFC 5533 §5.15).
#[inline]
pub const fn padding(length: usize) -> usize {
    7 - (length + 3) % 8
}

/// Total octets of an option with `length` octets of contents: `4 + Length + padding`.
#[inline]
pub const fn total_len(length: usize) -> usize {
    HEADER_LEN + length + padding(length)
}

/// An option type (RFC 5533 §5.15 Table 3, RFC 5534 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OptionType {
    /// 1: Responder Validator (RFC 5533 §5.15.1).
    ResponderValidator,
    /// 2: Locator List (RFC 5533 §5.15.2).
    LocatorList,
    /// 3: Locator Preferences (RFC 5533 §5.15.3).
    LocatorPreferences,
    /// 4: CGA Parameter Data Structure (RFC 5533 §5.15.4).
    CgaParameterDataStructure,
    /// 5: CGA Signature (RFC 5533 §5.15.5).
    CgaSignature,
    /// 6: ULID Pair (RFC 5533 §5.15.6).
    UlidPair,
    /// 7: Forked Instance Identifier (RFC 5533 §5.15.7).
    ForkedInstanceId,
    /// 10: Keepalive Timeout (RFC 5534 §5.3, RFC 5533 §5.15.8).
    KeepaliveTimeout,
    /// Any other 15-bit value: 0 reserved, 8–9 and 11–16383 Standards Action,
    /// 16384–32767 experimental.
    Unknown(u16),
}

impl OptionType {
    /// Every defined type, in numeric order.
    pub const ALL: [Self; 8] = [
        Self::ResponderValidator,
        Self::LocatorList,
        Self::LocatorPreferences,
        Self::CgaParameterDataStructure,
        Self::CgaSignature,
        Self::UlidPair,
        Self::ForkedInstanceId,
        Self::KeepaliveTimeout,
    ];

    /// The RFC's name of the option.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ResponderValidator => "Responder Validator",
            Self::LocatorList => "Locator List",
            Self::LocatorPreferences => "Locator Preferences",
            Self::CgaParameterDataStructure => "CGA Parameter Data Structure",
            Self::CgaSignature => "CGA Signature",
            Self::UlidPair => "ULID Pair",
            Self::ForkedInstanceId => "Forked Instance Identifier",
            Self::KeepaliveTimeout => "Keepalive Timeout",
            Self::Unknown(_) => "unknown",
        }
    }

    /// Whether this implementation knows the type.
    pub const fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl From<u16> for OptionType {
    fn from(v: u16) -> Self {
        match v {
            1 => Self::ResponderValidator,
            2 => Self::LocatorList,
            3 => Self::LocatorPreferences,
            4 => Self::CgaParameterDataStructure,
            5 => Self::CgaSignature,
            6 => Self::UlidPair,
            7 => Self::ForkedInstanceId,
            10 => Self::KeepaliveTimeout,
            other => Self::Unknown(other),
        }
    }
}

impl From<OptionType> for u16 {
    fn from(t: OptionType) -> Self {
        match t {
            OptionType::ResponderValidator => 1,
            OptionType::LocatorList => 2,
            OptionType::LocatorPreferences => 3,
            OptionType::CgaParameterDataStructure => 4,
            OptionType::CgaSignature => 5,
            OptionType::UlidPair => 6,
            OptionType::ForkedInstanceId => 7,
            OptionType::KeepaliveTimeout => 10,
            OptionType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for OptionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(v) => write!(f, "unknown option {v}"),
            known => f.write_str(known.name()),
        }
    }
}

/// A read/write view of one option (TLV) at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tlv<T> {
    /// Wraps a buffer without any check.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Tlv::check`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let t = Self::new_unchecked(buffer);
        t.check()?;
        Ok(t)
    }

    /// The one check: the header, the Length octets of contents and the padding are all
    /// in the buffer.
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("Shim6 option header", b, HEADER_LEN)?;
        check_len("Shim6 option", b, self.total_len())
    }

    /// The 15-bit type.
    #[inline]
    pub fn option_type(&self) -> OptionType {
        OptionType::from(self.type_c() >> 1)
    }

    /// The C (critical) bit.
    #[inline]
    pub fn critical(&self) -> bool {
        self.type_c() & 1 != 0
    }

    /// Length: octets of contents, without header and padding.
    #[inline]
    pub fn length(&self) -> usize {
        let b = &self.buffer.as_ref()[field::LENGTH];
        usize::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Octets the option occupies, padding included.
    #[inline]
    pub fn total_len(&self) -> usize {
        total_len(self.length())
    }

    /// The contents.
    #[inline]
    pub fn contents(&self) -> &[u8] {
        &self.buffer.as_ref()[field::CONTENTS..field::CONTENTS + self.length()]
    }

    /// The padding octets (not checked on receipt, RFC 5533 §5.15).
    #[inline]
    pub fn padding(&self) -> &[u8] {
        &self.buffer.as_ref()[field::CONTENTS + self.length()..self.total_len()]
    }

    fn type_c(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::TYPE_C];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tlv<T> {
    /// Sets the type and the C bit.
    ///
    /// # Panics
    /// If the type does not fit in 15 bits.
    #[inline]
    pub fn set_type(&mut self, option_type: OptionType, critical: bool) {
        let t = u16::from(option_type);
        assert!(t <= MAX_OPTION_TYPE, "option type needs more than 15 bits");
        let word = (t << 1) | u16::from(critical);
        self.buffer.as_mut()[field::TYPE_C].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets Length.
    #[inline]
    pub fn set_length(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }

    /// The contents, mutable (Length must already be set).
    #[inline]
    pub fn contents_mut(&mut self) -> &mut [u8] {
        let end = field::CONTENTS + self.length();
        &mut self.buffer.as_mut()[field::CONTENTS..end]
    }

    /// Zeroes the padding (Length must already be set).
    #[inline]
    pub fn clear_padding(&mut self) {
        let (start, end) = (field::CONTENTS + self.length(), self.total_len());
        self.buffer.as_mut()[start..end].fill(0);
    }
}

/// One option as found in a message, borrowed from it: what the [`Options`] iterator
/// yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// Offset of the option's first octet (its Type field) from the first octet of the
    /// Shim6 header: the Pointer of an Error message about it (RFC 5533 §5.15, §12.3),
    /// once the octets before the Shim6 header are added.
    pub offset: usize,
    /// The 15-bit type.
    pub option_type: OptionType,
    /// The C (critical) bit.
    pub critical: bool,
    /// The contents, Length octets.
    pub contents: &'a [u8],
}

impl RawOption<'_> {
    /// Octets the option occupies, padding included.
    #[inline]
    pub fn total_len(&self) -> usize {
        total_len(self.contents.len())
    }
}

/// Iterator over an options area, zero-copy. It yields each option or the error that
/// stops iteration, then ends.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Options<'a> {
    /// Iterates over `area`, whose first octet lies `offset` octets after the start of the
    /// Shim6 header.
    #[inline]
    pub const fn new(area: &'a [u8], offset: usize) -> Self {
        Self { rest: area, offset }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<RawOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let area = self.rest;
        // Whatever happens, an error ends the iteration.
        self.rest = &[];
        if area.len() < HEADER_LEN {
            // Cannot happen inside a well-formed header, whose options area is a multiple
            // of 8 octets; reachable only through `Options::new` on arbitrary slices.
            return Some(Err(Error::BadLength {
                what: "Shim6 options area (octets left over after the last option)",
                value: area.len(),
            }));
        }
        let tlv = Tlv::new_unchecked(area);
        let total = tlv.total_len();
        if total > area.len() {
            // The Length runs past Hdr Ext Len: the two length fields disagree.
            return Some(Err(Error::BadLength {
                what: "Shim6 option Length (runs past the end of the message)",
                value: tlv.length(),
            }));
        }
        let opt = RawOption {
            offset: self.offset,
            option_type: tlv.option_type(),
            critical: tlv.critical(),
            contents: &area[field::CONTENTS..field::CONTENTS + tlv.length()],
        };
        self.rest = &area[total..];
        self.offset += total;
        Some(Ok(opt))
    }
}

impl core::iter::FusedIterator for Options<'_> {}

/// The ULID Pair option (RFC 5533 §5.15.6): the ULIDs of the context, sent when the IPv6
/// addresses of the message are not the ULIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UlidPair {
    /// The sender's ULID.
    pub sender: Ipv6Addr,
    /// The receiver's ULID.
    pub receiver: Ipv6Addr,
}

/// A parsed option.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Repr {
    /// Responder Validator: opaque octets only the responder interprets (RFC 5533 §5.15.1).
    ResponderValidator(Vec<u8>),
    /// Locator List (RFC 5533 §5.15.2).
    LocatorList(LocatorList),
    /// Locator Preferences (RFC 5533 §5.15.3).
    LocatorPreferences(LocatorPreferences),
    /// CGA Parameter Data Structure, octet for octet (RFC 5533 §5.15.4); parsed by
    /// [`crate::cga`].
    CgaParameterDataStructure(Vec<u8>),
    /// CGA Signature, opaque (RFC 5533 §5.15.5).
    CgaSignature(Vec<u8>),
    /// ULID Pair (RFC 5533 §5.15.6).
    UlidPair(UlidPair),
    /// Forked Instance Identifier, 0 for the default context (RFC 5533 §5.15.7).
    ForkedInstanceId(u32),
    /// Keepalive Timeout in seconds (RFC 5534 §5.3).
    KeepaliveTimeout(u16),
    /// Any other option, kept as received.
    Unknown {
        /// The 15-bit type. Emitting a known type here yields bytes that parse as that
        /// known option.
        option_type: u16,
        /// The C bit.
        critical: bool,
        /// The contents.
        contents: Vec<u8>,
    },
}

impl Repr {
    /// Parses one option from its raw form.
    ///
    /// # Errors
    /// A known option whose contents do not have its format: [`Error::BadLength`] for a
    /// fixed-size option of the wrong Length, or the error of the Locator List / Locator
    /// Preferences check.
    pub fn parse(raw: &RawOption<'_>) -> Result<Self> {
        let c = raw.contents;
        Ok(match raw.option_type {
            OptionType::ResponderValidator => Self::ResponderValidator(c.to_vec()),
            OptionType::LocatorList => {
                Self::LocatorList(LocatorList::parse(&LocatorListView::new_unchecked(c))?)
            }
            OptionType::LocatorPreferences => Self::LocatorPreferences(LocatorPreferences::parse(
                &LocatorPrefsView::new_unchecked(c),
            )?),
            OptionType::CgaParameterDataStructure => Self::CgaParameterDataStructure(c.to_vec()),
            OptionType::CgaSignature => Self::CgaSignature(c.to_vec()),
            OptionType::UlidPair => {
                fixed_len("ULID Pair option Length", c, ULID_PAIR_LEN)?;
                Self::UlidPair(UlidPair {
                    // c[0..4] is Reserved2, ignored on receipt.
                    sender: addr(&c[4..20]),
                    receiver: addr(&c[20..36]),
                })
            }
            OptionType::ForkedInstanceId => {
                fixed_len("Forked Instance Identifier option Length", c, FII_LEN)?;
                Self::ForkedInstanceId(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            }
            OptionType::KeepaliveTimeout => {
                fixed_len("Keepalive Timeout option Length", c, KEEPALIVE_TIMEOUT_LEN)?;
                // c[0..2] is Reserved, ignored on receipt.
                Self::KeepaliveTimeout(u16::from_be_bytes([c[2], c[3]]))
            }
            OptionType::Unknown(t) => Self::Unknown {
                option_type: t,
                critical: raw.critical,
                contents: c.to_vec(),
            },
        })
    }

    /// Parses a checked TLV view.
    pub fn parse_tlv<T: AsRef<[u8]>>(tlv: &Tlv<T>) -> Result<Self> {
        tlv.check()?;
        Self::parse(&RawOption {
            offset: 0,
            option_type: tlv.option_type(),
            critical: tlv.critical(),
            contents: tlv.contents(),
        })
    }

    /// The option's type.
    pub fn option_type(&self) -> OptionType {
        match self {
            Self::ResponderValidator(_) => OptionType::ResponderValidator,
            Self::LocatorList(_) => OptionType::LocatorList,
            Self::LocatorPreferences(_) => OptionType::LocatorPreferences,
            Self::CgaParameterDataStructure(_) => OptionType::CgaParameterDataStructure,
            Self::CgaSignature(_) => OptionType::CgaSignature,
            Self::UlidPair(_) => OptionType::UlidPair,
            Self::ForkedInstanceId(_) => OptionType::ForkedInstanceId,
            Self::KeepaliveTimeout(_) => OptionType::KeepaliveTimeout,
            Self::Unknown { option_type, .. } => OptionType::from(*option_type),
        }
    }

    /// The C bit [`Repr::emit`] writes: 0 for every defined option (their formats in
    /// RFC 5533 §5.15.1–§5.15.7 and RFC 5534 §5.3 all show C = 0), as kept for unknown ones.
    pub fn critical(&self) -> bool {
        match self {
            Self::Unknown { critical, .. } => *critical,
            _ => false,
        }
    }

    /// Octets of contents, the Length field.
    pub fn contents_len(&self) -> usize {
        match self {
            Self::ResponderValidator(v)
            | Self::CgaParameterDataStructure(v)
            | Self::CgaSignature(v)
            | Self::Unknown { contents: v, .. } => v.len(),
            Self::LocatorList(l) => l.buffer_len(),
            Self::LocatorPreferences(p) => p.buffer_len(),
            Self::UlidPair(_) => ULID_PAIR_LEN,
            Self::ForkedInstanceId(_) => FII_LEN,
            Self::KeepaliveTimeout(_) => KEEPALIVE_TIMEOUT_LEN,
        }
    }

    /// Octets [`Repr::emit`] writes, padding included.
    pub fn buffer_len(&self) -> usize {
        total_len(self.contents_len())
    }

    /// Whether [`Repr::emit`] can encode the option: the contents fit the 16-bit Length,
    /// an unknown type fits 15 bits, and Locator List / Locator Preferences are
    /// consistent.
    pub fn check(&self) -> Result<()> {
        if self.contents_len() > usize::from(u16::MAX) {
            return Err(Error::BadLength {
                what: "Shim6 option Length (over 65535 octets)",
                value: self.contents_len(),
            });
        }
        match self {
            Self::LocatorList(l) => l.check(),
            Self::LocatorPreferences(p) => p.check(),
            Self::Unknown { option_type, .. } if *option_type > MAX_OPTION_TYPE => {
                Err(Error::Malformed("option type does not fit in 15 bits"))
            }
            _ => Ok(()),
        }
    }

    /// Writes the option, padding included, into `tlv`.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`] or [`Repr::check`] fails.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tlv: &mut Tlv<T>) {
        let len = u16::try_from(self.contents_len()).expect("option contents over 65535 octets");
        tlv.set_type(self.option_type(), self.critical());
        tlv.set_length(len);
        let c = tlv.contents_mut();
        match self {
            Self::ResponderValidator(v)
            | Self::CgaParameterDataStructure(v)
            | Self::CgaSignature(v)
            | Self::Unknown { contents: v, .. } => c.copy_from_slice(v),
            Self::LocatorList(l) => l.emit(&mut LocatorListView::new_unchecked(c)),
            Self::LocatorPreferences(p) => p.emit(&mut LocatorPrefsView::new_unchecked(c)),
            Self::UlidPair(u) => {
                c[0..4].fill(0);
                c[4..20].copy_from_slice(&u.sender.octets());
                c[20..36].copy_from_slice(&u.receiver.octets());
            }
            Self::ForkedInstanceId(fii) => c.copy_from_slice(&fii.to_be_bytes()),
            Self::KeepaliveTimeout(secs) => {
                c[0..2].fill(0);
                c[2..4].copy_from_slice(&secs.to_be_bytes());
            }
        }
        tlv.clear_padding();
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResponderValidator(v) => {
                write!(f, "Responder Validator {}", Hex(v))
            }
            Self::LocatorList(l) => write!(f, "{l}"),
            Self::LocatorPreferences(p) => write!(f, "{p}"),
            Self::CgaParameterDataStructure(v) => {
                write!(f, "CGA Parameter Data Structure ({} octets)", v.len())
            }
            Self::CgaSignature(v) => write!(f, "CGA Signature ({} octets)", v.len()),
            Self::UlidPair(u) => write!(f, "ULID Pair {} -> {}", u.sender, u.receiver),
            Self::ForkedInstanceId(v) => write!(f, "Forked Instance Identifier {v}"),
            Self::KeepaliveTimeout(s) => write!(f, "Keepalive Timeout {s}s"),
            Self::Unknown {
                option_type,
                critical,
                contents,
            } => write!(
                f,
                "Unknown option {option_type} C={} ({} octets)",
                u8::from(*critical),
                contents.len()
            ),
        }
    }
}

/// Parses every option of an area; the first malformed option fails the whole area.
pub fn parse_all(options: Options<'_>) -> Result<Vec<Repr>> {
    options.map(|o| Repr::parse(&o?)).collect()
}

/// Octets the options take on the wire, padding included.
pub fn options_len(options: &[Repr]) -> usize {
    options.iter().map(Repr::buffer_len).sum()
}

/// Writes `options` one after the other at the start of `buf`; returns the octets
/// written.
///
/// # Panics
/// If `buf` is shorter than [`options_len`] or an option fails [`Repr::check`].
pub fn emit_all(options: &[Repr], buf: &mut [u8]) -> usize {
    let mut at = 0;
    for o in options {
        let n = o.buffer_len();
        o.emit(&mut Tlv::new_unchecked(&mut buf[at..at + n]));
        at += n;
    }
    at
}

/// Typed look-ups in a list of options; each returns the first option of its kind.
pub trait OptionSliceExt {
    /// The Responder Validator.
    fn responder_validator(&self) -> Option<&[u8]>;
    /// The Locator List.
    fn locator_list(&self) -> Option<&LocatorList>;
    /// The Locator Preferences.
    fn locator_preferences(&self) -> Option<&LocatorPreferences>;
    /// The CGA Parameter Data Structure.
    fn cga_parameter_data_structure(&self) -> Option<&[u8]>;
    /// The CGA Signature.
    fn cga_signature(&self) -> Option<&[u8]>;
    /// The ULID Pair.
    fn ulid_pair(&self) -> Option<&UlidPair>;
    /// The Forked Instance Identifier.
    fn forked_instance_id(&self) -> Option<u32>;
    /// The Keepalive Timeout, in seconds.
    fn keepalive_timeout(&self) -> Option<u16>;
}

impl OptionSliceExt for [Repr] {
    fn responder_validator(&self) -> Option<&[u8]> {
        self.iter().find_map(|o| match o {
            Repr::ResponderValidator(v) => Some(&v[..]),
            _ => None,
        })
    }
    fn locator_list(&self) -> Option<&LocatorList> {
        self.iter().find_map(|o| match o {
            Repr::LocatorList(l) => Some(l),
            _ => None,
        })
    }
    fn locator_preferences(&self) -> Option<&LocatorPreferences> {
        self.iter().find_map(|o| match o {
            Repr::LocatorPreferences(p) => Some(p),
            _ => None,
        })
    }
    fn cga_parameter_data_structure(&self) -> Option<&[u8]> {
        self.iter().find_map(|o| match o {
            Repr::CgaParameterDataStructure(v) => Some(&v[..]),
            _ => None,
        })
    }
    fn cga_signature(&self) -> Option<&[u8]> {
        self.iter().find_map(|o| match o {
            Repr::CgaSignature(v) => Some(&v[..]),
            _ => None,
        })
    }
    fn ulid_pair(&self) -> Option<&UlidPair> {
        self.iter().find_map(|o| match o {
            Repr::UlidPair(u) => Some(u),
            _ => None,
        })
    }
    fn forked_instance_id(&self) -> Option<u32> {
        self.iter().find_map(|o| match o {
            Repr::ForkedInstanceId(v) => Some(*v),
            _ => None,
        })
    }
    fn keepalive_timeout(&self) -> Option<u16> {
        self.iter().find_map(|o| match o {
            Repr::KeepaliveTimeout(v) => Some(*v),
            _ => None,
        })
    }
}

/// Formats a list of options as `[a; b; c]`, for the messages' `Display`.
pub(crate) struct DisplayOptions<'a>(pub &'a [Repr]);

impl fmt::Display for DisplayOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" [")?;
        for (i, o) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{o}")?;
        }
        f.write_str("]")
    }
}

/// Formats octets as lowercase hex, abbreviated past 16 octets.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(16) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > 16 {
            write!(f, "… ({} octets)", self.0.len())?;
        }
        Ok(())
    }
}

fn fixed_len(what: &'static str, contents: &[u8], len: usize) -> Result<()> {
    if contents.len() == len {
        Ok(())
    } else {
        Err(Error::BadLength {
            what,
            value: contents.len(),
        })
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

#[cfg(test)]
mod tests {
    use super::super::locator::{FLAG_BROKEN, Locator, LocatorPreference, VerificationMethod};
    use super::*;
    use hex_literal::hex;

    /// The four directions for one option: deconstruct (TLV accessors), construct
    /// (setters over 0xa5), parse, and emit over 0xa5.
    fn four_directions(bytes: &[u8], repr: &Repr, ty: OptionType, contents: &[u8]) {
        // Deconstruct.
        let tlv = Tlv::new_checked(bytes).unwrap();
        assert_eq!(tlv.option_type(), ty);
        assert_eq!(tlv.critical(), repr.critical());
        assert_eq!(tlv.length(), contents.len());
        assert_eq!(tlv.contents(), contents);
        assert_eq!(tlv.total_len(), bytes.len());
        assert!(tlv.padding().iter().all(|&b| b == 0));
        // Construct.
        let mut b = vec![0xa5u8; bytes.len()];
        let mut t = Tlv::new_unchecked(&mut b[..]);
        t.set_type(ty, repr.critical());
        t.set_length(u16::try_from(contents.len()).unwrap());
        t.contents_mut().copy_from_slice(contents);
        t.clear_padding();
        assert_eq!(b, bytes);
        // Parse.
        assert_eq!(&Repr::parse_tlv(&tlv).unwrap(), repr);
        // Emit.
        assert_eq!(repr.buffer_len(), bytes.len());
        repr.check().unwrap();
        let mut b = vec![0xa5u8; bytes.len()];
        repr.emit(&mut Tlv::new_unchecked(&mut b[..]));
        assert_eq!(b, bytes);
        // Truncation at every length below the full size.
        for n in 0..bytes.len() {
            assert!(
                matches!(Tlv::new_checked(&bytes[..n]), Err(Error::Truncated { .. })),
                "{ty} cut at {n}"
            );
        }
    }

    #[test]
    fn padding_formula() {
        assert_eq!(padding(0), 4);
        assert_eq!(padding(4), 0);
        assert_eq!(padding(5), 7);
        assert_eq!(padding(36), 0);
        assert_eq!(padding(44), 0);
        for len in 0..100 {
            assert_eq!(total_len(len) % 8, 0);
            assert!(total_len(len) >= 4 + len && total_len(len) < 4 + len + 8);
        }
    }

    static VALIDATOR: [u8; 24] = hex!("0002 0014 00112233 44556677 8899aabb ccddeeff 01020304");

    #[test]
    fn responder_validator() {
        let v = hex!("00112233 44556677 8899aabb ccddeeff 01020304");
        four_directions(
            &VALIDATOR,
            &Repr::ResponderValidator(v.to_vec()),
            OptionType::ResponderValidator,
            &v,
        );
    }

    // Protocol digest §1.17: generation 7, two HBA locators.
    static LOCATOR_LIST: [u8; 48] = hex!(
        "0004 002c 00000007 02 01 01 00 00 00 00 00"
        "20010db8 00010000 00000000 00000001"
        "20010db8 00020000 00000000 00000001"
    );

    #[test]
    fn locator_list() {
        let repr = Repr::LocatorList(LocatorList {
            generation: 7,
            locators: vec![
                Locator {
                    address: "2001:db8:1::1".parse().unwrap(),
                    method: VerificationMethod::Hba,
                },
                Locator {
                    address: "2001:db8:2::1".parse().unwrap(),
                    method: VerificationMethod::Hba,
                },
            ],
        });
        four_directions(
            &LOCATOR_LIST,
            &repr,
            OptionType::LocatorList,
            &LOCATOR_LIST[4..],
        );
        // Length 44, internal pad 5, total 48, no trailing padding.
        assert_eq!(repr.contents_len(), 44);
        assert_eq!(padding(44), 0);
    }

    static LOCATOR_PREFS: [u8; 16] = hex!("0006 000b 00000007 02 01 05 0a 00 03 07 00");

    #[test]
    fn locator_preferences() {
        let repr = Repr::LocatorPreferences(LocatorPreferences {
            generation: 7,
            element_len: 2,
            preferences: vec![
                LocatorPreference::new(FLAG_BROKEN, 5, 0),
                LocatorPreference::new(0x0a, 0, 0),
                LocatorPreference::new(0x03, 7, 0),
            ],
        });
        // Element Len 2, three elements (01,05) (0a,00) (03,07): Length 11, 1 octet of
        // padding.
        four_directions(
            &LOCATOR_PREFS,
            &repr,
            OptionType::LocatorPreferences,
            &LOCATOR_PREFS[4..15],
        );
    }

    static CGA_PDS: [u8; 16] = hex!("0008 000a 0102030405060708090a 0000");

    #[test]
    fn cga_pds() {
        let c = hex!("0102030405060708090a");
        four_directions(
            &CGA_PDS,
            &Repr::CgaParameterDataStructure(c.to_vec()),
            OptionType::CgaParameterDataStructure,
            &c,
        );
    }

    static CGA_SIG: [u8; 16] = hex!("000a 0009 f0f1f2f3f4f5f6f7f8 000000");

    #[test]
    fn cga_signature() {
        let c = hex!("f0f1f2f3f4f5f6f7f8");
        four_directions(
            &CGA_SIG,
            &Repr::CgaSignature(c.to_vec()),
            OptionType::CgaSignature,
            &c,
        );
    }

    static ULID_PAIR: [u8; 40] = hex!(
        "000c 0024 00000000"
        "20010db8 00010000 00000000 00000001"
        "20010db8 00020000 00000000 00000002"
    );

    #[test]
    fn ulid_pair() {
        let repr = Repr::UlidPair(UlidPair {
            sender: "2001:db8:1::1".parse().unwrap(),
            receiver: "2001:db8:2::2".parse().unwrap(),
        });
        four_directions(&ULID_PAIR, &repr, OptionType::UlidPair, &ULID_PAIR[4..]);
        assert_eq!(repr.to_string(), "ULID Pair 2001:db8:1::1 -> 2001:db8:2::2");
        // Reserved2 is ignored on receipt.
        let mut b = ULID_PAIR;
        b[4] = 0xff;
        assert_eq!(
            Repr::parse_tlv(&Tlv::new_checked(&b[..]).unwrap()).unwrap(),
            repr
        );
    }

    static FII: [u8; 8] = hex!("000e 0004 00000005");

    #[test]
    fn forked_instance_id() {
        four_directions(
            &FII,
            &Repr::ForkedInstanceId(5),
            OptionType::ForkedInstanceId,
            &FII[4..],
        );
    }

    // Protocol digest §1.17: Keepalive Timeout 20 s.
    static KEEPALIVE_TIMEOUT: [u8; 8] = hex!("0014 0004 0000 0014");

    #[test]
    fn keepalive_timeout() {
        four_directions(
            &KEEPALIVE_TIMEOUT,
            &Repr::KeepaliveTimeout(20),
            OptionType::KeepaliveTimeout,
            &KEEPALIVE_TIMEOUT[4..],
        );
        assert_eq!(
            Repr::KeepaliveTimeout(20).to_string(),
            "Keepalive Timeout 20s"
        );
    }

    // Type 0x4000 (experimental), C = 1, 3 octets.
    static UNKNOWN: [u8; 8] = hex!("8001 0003 abcdef 00");

    #[test]
    fn unknown_kept_with_c_bit() {
        let repr = Repr::Unknown {
            option_type: 0x4000,
            critical: true,
            contents: vec![0xab, 0xcd, 0xef],
        };
        four_directions(&UNKNOWN, &repr, OptionType::Unknown(0x4000), &UNKNOWN[4..7]);
        assert_eq!(repr.to_string(), "Unknown option 16384 C=1 (3 octets)");
        let too_big = Repr::Unknown {
            option_type: 0x8000,
            critical: false,
            contents: vec![],
        };
        assert!(too_big.check().is_err());
    }

    #[test]
    fn fixed_size_options_with_wrong_length() {
        for (word, what) in [
            (0x000c_u16, "ULID Pair"),
            (0x000e, "Forked Instance Identifier"),
            (0x0014, "Keepalive Timeout"),
        ] {
            for len in [0usize, 3, 5, 35, 37] {
                let mut b = vec![0u8; total_len(len)];
                b[0..2].copy_from_slice(&word.to_be_bytes());
                b[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
                let tlv = Tlv::new_checked(&b[..]).unwrap();
                match Repr::parse_tlv(&tlv) {
                    Err(Error::BadLength { what: w, value }) => {
                        assert!(w.starts_with(what));
                        assert_eq!(value, len);
                    }
                    other => panic!("{what} with Length {len}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn known_option_with_c_bit_parses_as_known() {
        let mut b = FII;
        b[1] |= 1;
        let tlv = Tlv::new_checked(&b[..]).unwrap();
        assert!(tlv.critical());
        assert_eq!(Repr::parse_tlv(&tlv).unwrap(), Repr::ForkedInstanceId(5));
    }

    #[test]
    fn iterator_yields_offsets() {
        let mut area = Vec::new();
        area.extend_from_slice(&VALIDATOR);
        area.extend_from_slice(&UNKNOWN);
        area.extend_from_slice(&FII);
        let opts: Vec<_> = Options::new(&area, 16).map(Result::unwrap).collect();
        assert_eq!(opts.len(), 3);
        assert_eq!(opts[0].offset, 16);
        assert_eq!(opts[0].option_type, OptionType::ResponderValidator);
        assert_eq!(opts[1].offset, 40);
        assert_eq!(opts[1].option_type, OptionType::Unknown(0x4000));
        assert!(opts[1].critical);
        assert_eq!(opts[1].contents, [0xab, 0xcd, 0xef]);
        assert_eq!(opts[2].offset, 48);
        assert_eq!(opts[2].total_len(), 8);
        let all = parse_all(Options::new(&area, 16)).unwrap();
        assert_eq!(all.forked_instance_id(), Some(5));
        assert_eq!(all.responder_validator().map(<[u8]>::len), Some(20));
        assert_eq!(all.locator_list(), None);
        assert_eq!(options_len(&all), area.len());
        let mut out = vec![0xa5; area.len()];
        assert_eq!(emit_all(&all, &mut out), area.len());
        assert_eq!(out, area);
    }

    #[test]
    fn iterator_stops_at_an_overlong_length() {
        let mut area = Vec::new();
        area.extend_from_slice(&FII);
        area.extend_from_slice(&KEEPALIVE_TIMEOUT);
        // The second option claims 5 octets: 16 in all, 8 available.
        area[10..12].copy_from_slice(&5u16.to_be_bytes());
        let mut it = Options::new(&area, 0);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(
            it.next(),
            Some(Err(Error::BadLength { value: 5, .. }))
        ));
        assert!(it.next().is_none());
        // Leftover octets too few for an option header.
        let mut it = Options::new(&area[..11], 0);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(
            it.next(),
            Some(Err(Error::BadLength { value: 3, .. }))
        ));
        assert!(it.next().is_none());
    }

    #[test]
    fn malformed_locator_list_inside_an_option() {
        let mut b = LOCATOR_LIST;
        b[8] = 3; // N = 3 does not match Length 44
        let tlv = Tlv::new_checked(&b[..]).unwrap();
        assert!(matches!(
            Repr::parse_tlv(&tlv),
            Err(Error::BadLength { .. })
        ));
    }

    #[test]
    fn option_type_numbers() {
        for t in OptionType::ALL {
            assert_eq!(OptionType::from(u16::from(t)), t);
            assert!(t.is_known());
        }
        assert_eq!(u16::from(OptionType::KeepaliveTimeout), 10);
        assert_eq!(OptionType::from(8), OptionType::Unknown(8));
        assert_eq!(OptionType::from(0), OptionType::Unknown(0));
        assert!(!OptionType::Unknown(0).is_known());
        assert_eq!(OptionType::UlidPair.to_string(), "ULID Pair");
    }
}
