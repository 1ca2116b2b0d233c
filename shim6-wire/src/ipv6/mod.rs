//! IPv6 (RFC 8200): the fixed header, the extension headers the shim has to step over,
//! a bounded chain walker, and the Shim6 data-path operations of RFC 5533 §5.1 / §12
//! (insert and remove the payload extension header, rewrite addresses in place).
//!
//! # Layout
//! | module | what |
//! |---|---|
//! | [`Packet`], [`Repr`] | the 40-octet fixed header (RFC 8200 §3) |
//! | [`options`] | Hop-by-Hop (0) and Destination Options (60) headers and their TLV options (RFC 8200 §4.2–§4.6) |
//! | [`routing`] | the Routing header (43), any routing type (RFC 8200 §4.4); type 2 is in [`crate::mip6::rh2`] |
//! | [`fragment`] | the Fragment header (44, RFC 8200 §4.5) |
//! | [`ah`] | the Authentication Header (51) and its 4-octet length unit (RFC 4302 §2.2) |
//! | [`chain`] | the bounded, non-panicking extension-header walker |
//! | [`shim`] | where the payload extension header goes, insert / remove / rewrite, in place |
//! | [`icmp`] | a minimal `ICMPv6` view and the translation of a quoted shimmed packet (RFC 5533 §5.1 / digest §1.13) |
//!
//! ESP (50) is opaque to everything here: the walker stops at it.
//!
//! # Jumbograms
//! Payload Length 0 with a Jumbo Payload option (RFC 2675) is not supported: the view
//! then sees an empty payload. Shim6 packets never exceed the link MTU.

pub mod ah;
pub mod chain;
pub mod fragment;
mod header;
pub mod icmp;
pub mod options;
pub mod routing;
pub mod shim;
#[cfg(test)]
pub(crate) mod testutil;

pub(crate) use header::addr;
pub use header::{HEADER_LEN, Packet, Repr};

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") used by the wire layer.
pub mod proto {
    /// IPv6 Hop-by-Hop Options (RFC 8200 §4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IPv6 (RFC 2473 §3).
    pub const IPV6: u8 = 41;
    /// Routing header (RFC 8200 §4.4).
    pub const ROUTING: u8 = 43;
    /// Fragment header (RFC 8200 §4.5).
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303): opaque, ends every walk.
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 51;
    /// `ICMPv6` (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// No Next Header (RFC 8200 §4.7).
    pub const NONE: u8 = 59;
    /// Destination Options (RFC 8200 §4.6).
    pub const DEST_OPTS: u8 = 60;
    /// Mobility Header (RFC 6275 §6.1).
    pub const MOBILITY: u8 = 135;
    /// Shim6 (RFC 5533 §17).
    pub const SHIM6: u8 = 140;
}

/// Length of an extension header whose second octet counts 8-octet units beyond the
/// first 8 (Hop-by-Hop, Routing, Destination Options, Shim6: RFC 8200 §4.3, §4.4,
/// §4.6, RFC 5533 §5).
#[inline]
pub(crate) const fn units_of_8(hdr_ext_len: u8) -> usize {
    (hdr_ext_len as usize + 1) * 8
}
