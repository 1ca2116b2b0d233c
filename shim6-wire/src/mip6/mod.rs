//! Mobile IPv6 wire formats for a minimal home agent (RFC 6275 §6; digest §5.1–§5.5).
//!
//! # Layout
//! | module | what |
//! |---|---|
//! | [`header`] | the Mobility Header (Next Header 135) and its checksum; Binding Refresh Request, Binding Update, Binding Acknowledgement, Binding Error |
//! | [`options`] | mobility options, their alignment rules and padding |
//! | [`hao`] | the Home Address destination option (type 0xC9) |
//! | [`rh2`] | the type 2 routing header |
//!
//! # Which addresses go into the Mobility Header checksum
//! RFC 6275 §6.1.1 computes the checksum over the RFC 8200 §8.1 pseudo-header. A Home
//! Address option replaces the source address there by the home address, and a type 2
//! routing header makes the destination the final one (the home address it carries).
//! [`pseudo_header_addresses`] applies both rules; every checksum function takes the
//! addresses as arguments.

pub mod hao;
pub mod header;
pub mod options;
pub mod rh2;

use std::net::Ipv6Addr;

pub use header::{
    BaStatus, BeStatus, BindingAck, BindingError, BindingRefreshRequest, BindingUpdate, Message,
    Packet, Repr,
};
pub use options::MobilityOption;

/// IP protocol number of the Mobility Header (RFC 6275 §6.1, IANA).
pub const IP_PROTO_MOBILITY: u8 = crate::ipv6::proto::MOBILITY;

/// The source and destination addresses for the Mobility Header pseudo-header of a
/// packet with IPv6 source `ip_src` and destination `ip_dst` (RFC 6275 §6.1.1, RFC 8200
/// §8.1): the home address of a Home Address option replaces the source; the home
/// address in a type 2 routing header (the final destination) replaces the destination.
#[inline]
pub fn pseudo_header_addresses(
    ip_src: Ipv6Addr,
    ip_dst: Ipv6Addr,
    home_address_option: Option<Ipv6Addr>,
    type2_routing_home: Option<Ipv6Addr>,
) -> (Ipv6Addr, Ipv6Addr) {
    (
        home_address_option.unwrap_or(ip_src),
        type2_routing_home.unwrap_or(ip_dst),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_header_rule() {
        let (a, b, h): (Ipv6Addr, Ipv6Addr, Ipv6Addr) = (
            "2001:db8:2::1".parse().unwrap(),
            "2001:db8:1::1".parse().unwrap(),
            "2001:db8:1::100".parse().unwrap(),
        );
        assert_eq!(pseudo_header_addresses(a, b, None, None), (a, b));
        assert_eq!(pseudo_header_addresses(a, b, Some(h), None), (h, b));
        assert_eq!(pseudo_header_addresses(b, a, None, Some(h)), (b, h));
    }
}
