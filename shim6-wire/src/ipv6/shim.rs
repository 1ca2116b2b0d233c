//! The Shim6 data path on an IPv6 packet, in place (RFC 5533 §5.1, §12; digest §1.11).
//!
//! **Sending** through a context whose locators differ from its ULIDs:
//! [`rewrite_addresses`] sets src/dst to the locators, and [`insert_payload_header`]
//! adds the 8-octet payload extension header right after the *routing sublayer*
//! (Hop-by-Hop, Routing, and a Destination Options header that precedes a Routing
//! header), i.e. before any Fragment, final Destination Options, AH, ESP or ULP header.
//! The new header takes over the old Next Header, the preceding Next Header becomes
//! 140, Payload Length grows by 8. Transport checksums are left alone: their
//! pseudo-header keeps using the ULIDs end to end, and the receiver restores them.
//!
//! **Receiving**: [`locate`] finds the first Shim6 header and says whether it is a
//! payload header (P = 1) or a control message (P = 0; RFC 5533 §5.2/§5.3, the reading
//! the digest recommends in §7.1). The caller looks the tag up, then [`remove_at`]
//! strips the header (restoring the chain, Payload Length − 8) and
//! [`rewrite_addresses`] puts the ULIDs back. [`remove_payload_header`] is
//! locate-and-remove in one call.
//!
//! # Buffers and headroom
//! Everything operates on a caller-owned buffer `buf` holding the packet at
//! `buf[packet]` (a range), and returns the packet's new range. The 8 octets are made
//! or closed by moving one side of the insertion point, chosen by [`Shift`]:
//! - [`Shift::Front`] moves the fixed header and the routing-sublayer headers (usually
//!   just the 40-octet IPv6 header) left into headroom on insert, right on removal. It
//!   needs `packet.start >= 8` to insert. This is the fast path: read packets into
//!   `buf[8..]` (or more headroom) and the cost no longer depends on the packet size.
//! - [`Shift::Tail`] moves everything after the insertion point (the whole payload):
//!   right on insert, needing 8 octets of tailroom, left on removal.
//!
//! The benchmark `cargo bench -p shim6-wire --bench hot_path` measures both against
//! a memcpy of the packet (docs/bench/wire-hot-path.md).
//!
//! Octets between `40 + Payload Length` and the end of the given range (link padding)
//! are not part of the packet and are left out of the returned range.

use core::fmt;
use core::ops::Range;
use std::net::Ipv6Addr;

use super::chain::{ExtHeader, Step, Walker};
use super::{HEADER_LEN, Packet, proto};
use crate::error::{Error, Result};
use crate::shim6::ContextTag;
use crate::shim6::payload::{self, HEADER_LEN as PAYLOAD_HEADER_LEN};

/// Offsets of the fixed-header fields this module writes directly.
mod field {
    use core::ops::Range;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Which side of the insertion point moves to make or close the 8-octet gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shift {
    /// The fixed header and the routing-sublayer headers move: left into headroom on
    /// insertion, right on removal. Cost independent of the payload size.
    Front,
    /// Everything after the insertion point moves: right into tailroom on insertion,
    /// left on removal. Cost proportional to the payload size.
    Tail,
}

/// Where the payload extension header goes in a packet (RFC 5533 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InsertionPoint {
    /// Offset from the start of the packet where the 8 octets go.
    pub offset: usize,
    /// Offset of the Next Header octet that must become 140 (6 = the fixed header).
    pub announced_at: usize,
    /// The protocol that header announced, which moves into the new header.
    pub next_header: u8,
}

/// Finds where the payload extension header belongs: after Hop-by-Hop, Routing, and a
/// Destination Options header that is directly followed by a Routing header (the
/// routing sublayer, RFC 5533 §5.1); before anything else.
///
/// Only the headers up to that point are walked, so the cost is one step for a plain
/// TCP packet.
///
/// # Errors
/// Those of the fixed-header check and of the walk, and `Malformed` if the packet
/// already carries a Shim6 header at that point (RFC 5533 defines no nesting).
pub fn insertion_point(packet: &[u8]) -> Result<InsertionPoint> {
    let at = |offset, announced_at, next_header| InsertionPoint {
        offset,
        announced_at,
        next_header,
    };
    for step in Walker::from_packet(packet)? {
        match step? {
            Step::Header(h) => match h.protocol {
                // RFC 5533 §5.1: the routing sublayer stays in front of the shim.
                proto::HOP_BY_HOP | proto::ROUTING => {}
                // RFC 5533 §5.1: "a Destination Options header that precedes a Routing
                // header" belongs to the routing sublayer; a final one does not.
                proto::DEST_OPTS if h.next_header == proto::ROUTING => {}
                proto::SHIM6 => {
                    return Err(Error::Malformed("packet already carries a Shim6 header"));
                }
                // Fragment, final Destination Options, AH: the shim goes before them.
                _ => return Ok(at(h.offset, h.announced_at, h.protocol)),
            },
            // ESP, No Next Header or a ULP.
            Step::Upper(u) => return Ok(at(u.offset, u.announced_at, u.protocol)),
        }
    }
    // Invariant: a walk yields Step::Upper or an error before it ends.
    Err(Error::Malformed(
        "extension-header walk ended without an upper layer",
    ))
}

/// The packet's octets, or an error if `packet` is not a range inside `buf`.
#[inline]
fn packet_slice<'b>(buf: &'b [u8], packet: &Range<usize>) -> Result<&'b [u8]> {
    buf.get(packet.clone())
        .ok_or(Error::Malformed("packet range lies outside the buffer"))
}

/// Inserts the payload extension header carrying `tag` (the peer's context tag,
/// CT(peer)) into the packet at `buf[packet]`, in place, and returns the packet's new
/// range: `packet.start - 8 ..` with [`Shift::Front`], `packet.start ..` with
/// [`Shift::Tail`]; 8 octets longer either way.
///
/// Addresses are not touched; call [`rewrite_addresses`] on the result (or before).
///
/// # Errors
/// Those of [`insertion_point`]; `Truncated` without 8 octets of headroom
/// ([`Shift::Front`]) or tailroom ([`Shift::Tail`]); `BadLength` if Payload Length would
/// exceed 65535; `Malformed` if the range lies outside `buf`. On error `buf` is unchanged.
pub fn insert_payload_header(
    buf: &mut [u8],
    packet: Range<usize>,
    tag: ContextTag,
    shift: Shift,
) -> Result<Range<usize>> {
    let pkt = packet_slice(buf, &packet)?;
    let ip = insertion_point(pkt)?;
    // insertion_point checked the fixed header, so total_len is within `pkt`.
    let total = Packet::new_unchecked(pkt).total_len();
    let new_payload_len = total - HEADER_LEN + PAYLOAD_HEADER_LEN;
    let new_payload_len = u16::try_from(new_payload_len).map_err(|_| Error::BadLength {
        what: "IPv6 Payload Length after inserting the Shim6 header",
        value: new_payload_len,
    })?;
    let start = packet.start;
    let new_start = match shift {
        Shift::Front => {
            if start < PAYLOAD_HEADER_LEN {
                return Err(Error::Truncated {
                    what: "headroom for the Shim6 payload header",
                    needed: PAYLOAD_HEADER_LEN,
                    available: start,
                });
            }
            buf.copy_within(start..start + ip.offset, start - PAYLOAD_HEADER_LEN);
            start - PAYLOAD_HEADER_LEN
        }
        Shift::Tail => {
            let room = buf.len() - (start + total);
            if room < PAYLOAD_HEADER_LEN {
                return Err(Error::Truncated {
                    what: "tailroom for the Shim6 payload header",
                    needed: PAYLOAD_HEADER_LEN,
                    available: room,
                });
            }
            buf.copy_within(
                start + ip.offset..start + total,
                start + ip.offset + PAYLOAD_HEADER_LEN,
            );
            start
        }
    };
    let new_end = new_start + total + PAYLOAD_HEADER_LEN;
    let p = &mut buf[new_start..new_end];
    payload::Repr {
        next_header: ip.next_header,
        context_tag: tag,
    }
    .emit(&mut payload::Packet::new_unchecked(
        &mut p[ip.offset..ip.offset + PAYLOAD_HEADER_LEN],
    ));
    p[ip.announced_at] = proto::SHIM6;
    p[field::PAYLOAD_LEN].copy_from_slice(&new_payload_len.to_be_bytes());
    Ok(new_start..new_end)
}

/// A payload extension header found in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadHeaderAt {
    /// Its offset from the start of the packet.
    pub offset: usize,
    /// Offset of the Next Header octet (= 140) that announced it.
    pub announced_at: usize,
    /// Its contents: the receiver's context tag, CT(local), and the protocol after it.
    pub repr: payload::Repr,
}

/// The first Shim6 header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shim6At {
    /// P = 1: a payload extension header (RFC 5533 §5.1).
    Payload(PayloadHeaderAt),
    /// P = 0: a control message (RFC 5533 §5.3), for the control path.
    Control(ExtHeader),
}

impl fmt::Display for Shim6At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Payload(p) => write!(f, "{} at {}", p.repr, p.offset),
            Self::Control(h) => write!(f, "Shim6 control at {} len={}", h.offset, h.len),
        }
    }
}

/// Finds the first Shim6 header (Next Header 140) in the packet's extension-header
/// chain. `Ok(None)`: the packet has none and is delivered as it is (RFC 5533 §12.1 via
/// digest §1.11).
///
/// # Errors
/// Those of the fixed-header check and the walk up to the Shim6 header; a payload header
/// with Hdr Ext Len ≠ 0 (`BadLength`).
pub fn locate(packet: &[u8]) -> Result<Option<Shim6At>> {
    let Some(h) = Walker::from_packet(packet)?.find(proto::SHIM6)? else {
        return Ok(None);
    };
    let b = &packet[h.range()];
    // RFC 5533 §5.2 / §5.3: the P bit (top bit of octet 2) = 1 for the payload header.
    if b[2] & 0x80 == 0 {
        return Ok(Some(Shim6At::Control(h)));
    }
    let repr = payload::Repr::parse(&payload::Packet::new_checked(b)?)?;
    Ok(Some(Shim6At::Payload(PayloadHeaderAt {
        offset: h.offset,
        announced_at: h.announced_at,
        repr,
    })))
}

/// Removes the payload extension header `at` (found by [`locate`] on this same packet)
/// from the packet at `buf[packet]`, in place: the announcing Next Header gets back the
/// header's Next Header, Payload Length shrinks by 8. Returns the packet's new range:
/// `packet.start + 8 ..` with [`Shift::Front`], `packet.start ..` with [`Shift::Tail`].
///
/// # Errors
/// `Malformed` if `at` does not describe a payload header of this packet (checked
/// cheaply: bounds, the announcing octet is 140, a valid payload header at `offset`), or
/// the range lies outside `buf`. On error `buf` is unchanged.
pub fn remove_at(
    buf: &mut [u8],
    packet: Range<usize>,
    at: &PayloadHeaderAt,
    shift: Shift,
) -> Result<Range<usize>> {
    let pkt = packet_slice(buf, &packet)?;
    let total = Packet::new_checked(pkt)?.total_len();
    let stale = Error::Malformed("payload header location does not match the packet");
    let end = at.offset.checked_add(PAYLOAD_HEADER_LEN).ok_or(stale)?;
    if at.offset < HEADER_LEN
        || end > total
        || at.announced_at >= at.offset
        || pkt[at.announced_at] != proto::SHIM6
    {
        return Err(stale);
    }
    let next_header = payload::Packet::new_checked(&pkt[at.offset..end])?.next_header();
    let start = packet.start;
    let new_payload_len = (total - HEADER_LEN - PAYLOAD_HEADER_LEN) as u16;
    buf[start + at.announced_at] = next_header;
    buf[start + field::PAYLOAD_LEN.start..start + field::PAYLOAD_LEN.end]
        .copy_from_slice(&new_payload_len.to_be_bytes());
    Ok(match shift {
        Shift::Front => {
            buf.copy_within(start..start + at.offset, start + PAYLOAD_HEADER_LEN);
            start + PAYLOAD_HEADER_LEN..start + total
        }
        Shift::Tail => {
            buf.copy_within(start + end..start + total, start + at.offset);
            start..start + total - PAYLOAD_HEADER_LEN
        }
    })
}

/// What [`remove_payload_header`] removed, and where the packet is now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Removed {
    /// The Receiver Context Tag the header carried: CT(local), the lookup key.
    pub tag: ContextTag,
    /// Where the header was, from the start of the packet.
    pub offset: usize,
    /// The packet's new range in the buffer.
    pub packet: Range<usize>,
}

/// [`locate`] then [`remove_at`]: strips the payload extension header from the packet at
/// `buf[packet]` and returns its tag, its offset and the packet's new range.
///
/// # Errors
/// Those of [`locate`] and [`remove_at`]; `Malformed` if the packet has no Shim6 header
/// or its first Shim6 header is a control message.
pub fn remove_payload_header(
    buf: &mut [u8],
    packet: Range<usize>,
    shift: Shift,
) -> Result<Removed> {
    let at = match locate(packet_slice(buf, &packet)?)? {
        Some(Shim6At::Payload(at)) => at,
        Some(Shim6At::Control(_)) => {
            return Err(Error::Malformed(
                "first Shim6 header is a control message, not a payload header",
            ));
        }
        None => return Err(Error::Malformed("packet carries no Shim6 header")),
    };
    let packet = remove_at(buf, packet, &at, shift)?;
    Ok(Removed {
        tag: at.repr.context_tag,
        offset: at.offset,
        packet,
    })
}

/// Overwrites the source and destination addresses of the IPv6 packet at the start of
/// `packet`, and nothing else: upper-layer checksums are deliberately left as they are
/// (RFC 5533 §5.1 / digest §1.11: they cover the ULIDs, which the receiver restores).
///
/// # Errors
/// `Truncated` if `packet` is shorter than the 40-octet fixed header.
#[inline]
pub fn rewrite_addresses(packet: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<()> {
    crate::error::check_len("IPv6 header", packet, HEADER_LEN)?;
    packet[field::SRC_ADDR].copy_from_slice(&src.octets());
    packet[field::DST_ADDR].copy_from_slice(&dst.octets());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Ext, arb_chain, build, sublayer_len};
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    fn tag() -> ContextTag {
        ContextTag::new(0x0123_4567_89ab).unwrap()
    }

    // 2001:db8::1 -> 2001:db8::2, Hop-by-Hop (PadN 6) then UDP with 4 octets.
    static BEFORE: [u8; 52] = hex!(
        "60000000 000c 00 40
         20010db8000000000000000000000001
         20010db8000000000000000000000002
         11 00 0104 00000000
         0a0b0c0d"
    );
    // After insertion: the Hop-by-Hop header's Next Header is 140, the payload header
    // (NH = UDP, tag 0x0123456789ab) sits after it, Payload Length 12 + 8 = 20.
    static AFTER: [u8; 60] = hex!(
        "60000000 0014 00 40
         20010db8000000000000000000000001
         20010db8000000000000000000000002
         8c 00 0104 00000000
         11 00 8123456789ab
         0a0b0c0d"
    );

    #[test]
    fn insert_bytes_both_shifts() {
        for shift in [Shift::Front, Shift::Tail] {
            let mut buf = [0xa5u8; 76];
            buf[8..60].copy_from_slice(&BEFORE);
            let r = insert_payload_header(&mut buf, 8..60, tag(), shift).unwrap();
            assert_eq!(r.len(), 60);
            assert_eq!(buf[r.clone()], AFTER);
            match shift {
                Shift::Front => {
                    assert_eq!(r, 0..60);
                    assert_eq!(buf[60..], [0xa5; 16]);
                }
                Shift::Tail => assert_eq!(r, 8..68),
            }
        }
    }

    #[test]
    fn remove_bytes_both_shifts() {
        for shift in [Shift::Front, Shift::Tail] {
            let mut buf = AFTER;
            let removed = remove_payload_header(&mut buf, 0..60, shift).unwrap();
            assert_eq!(removed.tag, tag());
            assert_eq!(removed.offset, 48);
            assert_eq!(buf[removed.packet.clone()], BEFORE);
            match shift {
                Shift::Front => assert_eq!(removed.packet, 8..60),
                Shift::Tail => assert_eq!(removed.packet, 0..52),
            }
        }
    }

    #[test]
    fn locate_finds_payload_and_control() {
        let at = locate(&AFTER).unwrap().unwrap();
        assert_eq!(
            at,
            Shim6At::Payload(PayloadHeaderAt {
                offset: 48,
                announced_at: 40,
                repr: payload::Repr {
                    next_header: 17,
                    context_tag: tag()
                }
            })
        );
        assert_eq!(
            at.to_string(),
            "Shim6 payload tag=0x0123456789ab nh=17 at 48"
        );
        assert_eq!(locate(&BEFORE).unwrap(), None);
        // A control message (P = 0) directly after the fixed header.
        let mut c = build(&[], proto::SHIM6, 16);
        c[40..44].copy_from_slice(&[59, 1, 0x01, 0x00]);
        let Some(Shim6At::Control(h)) = locate(&c).unwrap() else {
            panic!("not a control message")
        };
        assert_eq!((h.offset, h.len), (40, 16));
        let n = c.len();
        assert!(matches!(
            remove_payload_header(&mut c, 0..n, Shift::Front),
            Err(Error::Malformed(_))
        ));
    }

    /// (chain, index of the header the shim goes before, or None = before the ULP)
    fn chains() -> Vec<(Vec<Ext>, u8)> {
        vec![
            (vec![], proto::TCP),
            (vec![Ext::HopByHop(0)], proto::TCP),
            (vec![Ext::Routing(2)], proto::UDP),
            (vec![Ext::DestOpts(1), Ext::Routing(2)], proto::TCP),
            (
                vec![Ext::HopByHop(1), Ext::DestOpts(0), Ext::Routing(0)],
                proto::TCP,
            ),
            (vec![Ext::Fragment(0)], proto::TCP),
            (vec![Ext::DestOpts(0)], proto::TCP),
            (vec![Ext::Ah(1)], proto::TCP),
            (vec![Ext::HopByHop(0)], proto::ESP),
            (vec![Ext::Routing(0), Ext::DestOpts(0)], proto::ICMPV6),
            (
                vec![
                    Ext::HopByHop(0),
                    Ext::DestOpts(0),
                    Ext::Routing(2),
                    Ext::Fragment(0),
                    Ext::Ah(0),
                    Ext::DestOpts(1),
                ],
                proto::UDP,
            ),
            (vec![], proto::NONE),
        ]
    }

    fn header_offset(exts: &[Ext], upper: u8, n: usize) -> usize {
        // Offset of header n of the chain (or of the ULP when n == exts.len()).
        let p = build(exts, upper, 0);
        Walker::from_packet(&p)
            .unwrap()
            .nth(n)
            .map(|s| match s.unwrap() {
                Step::Header(h) => h.offset,
                Step::Upper(u) => u.offset,
            })
            .unwrap()
    }

    #[test]
    fn insertion_points_follow_rfc5533_5_1() {
        for (exts, upper) in chains() {
            let p = build(&exts, upper, 33);
            let ip = insertion_point(&p).unwrap();
            let n = sublayer_len(&exts);
            assert_eq!(ip.offset, header_offset(&exts, upper, n), "{exts:?}");
            let expect_nh = exts.get(n).map_or(upper, |e| match e {
                Ext::HopByHop(_) => proto::HOP_BY_HOP,
                Ext::DestOpts(_) => proto::DEST_OPTS,
                Ext::Routing(_) => proto::ROUTING,
                Ext::Fragment(_) => proto::FRAGMENT,
                Ext::Ah(_) => proto::AH,
            });
            assert_eq!(ip.next_header, expect_nh, "{exts:?}");
            let announced = if n == 0 {
                6
            } else {
                header_offset(&exts, upper, n - 1)
            };
            assert_eq!(ip.announced_at, announced, "{exts:?}");
        }
    }

    #[test]
    fn round_trips_for_every_chain() {
        for (exts, upper) in chains() {
            let p = build(&exts, upper, 100);
            for (ins, rem) in [
                (Shift::Front, Shift::Front),
                (Shift::Tail, Shift::Tail),
                (Shift::Front, Shift::Tail),
                (Shift::Tail, Shift::Front),
            ] {
                let mut buf = vec![0xa5u8; p.len() + 32];
                buf[16..16 + p.len()].copy_from_slice(&p);
                let r = insert_payload_header(&mut buf, 16..16 + p.len(), tag(), ins).unwrap();
                let walked: Vec<_> = Walker::from_packet(&buf[r.clone()])
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                // One more header than before, and it is the shim at the insertion point.
                assert_eq!(walked.len(), exts.len() + 2);
                let Step::Header(h) = walked[sublayer_len(&exts)] else {
                    panic!("no shim header")
                };
                assert_eq!((h.protocol, h.len), (proto::SHIM6, 8));
                let removed = remove_payload_header(&mut buf, r, rem).unwrap();
                assert_eq!(removed.tag, tag());
                assert_eq!(buf[removed.packet], p[..], "{exts:?} {ins:?} {rem:?}");
            }
        }
    }

    #[test]
    fn insertion_errors_leave_the_buffer_alone() {
        let p = build(&[], proto::TCP, 20);
        let n = p.len();
        // No headroom.
        let mut buf = p.clone();
        buf.extend_from_slice(&[0; 7]);
        let before = buf.clone();
        assert!(matches!(
            insert_payload_header(&mut buf, 0..n, tag(), Shift::Front),
            Err(Error::Truncated {
                needed: 8,
                available: 0,
                ..
            })
        ));
        // 7 octets of tailroom are not enough.
        assert!(matches!(
            insert_payload_header(&mut buf, 0..n, tag(), Shift::Tail),
            Err(Error::Truncated {
                needed: 8,
                available: 7,
                ..
            })
        ));
        // A range outside the buffer.
        assert!(matches!(
            insert_payload_header(&mut buf, 4..n + 100, tag(), Shift::Tail),
            Err(Error::Malformed(_))
        ));
        assert_eq!(buf, before);
        // Already shimmed.
        let mut buf = vec![0u8; 8];
        buf.extend_from_slice(&AFTER);
        assert!(matches!(
            insert_payload_header(&mut buf, 8..68, tag(), Shift::Front),
            Err(Error::Malformed(_))
        ));
        // Payload Length would overflow.
        let big = build(&[], proto::UDP, 65_530);
        let mut buf = vec![0u8; 8];
        buf.extend_from_slice(&big);
        let n = buf.len();
        assert!(matches!(
            insert_payload_header(&mut buf, 8..n, tag(), Shift::Front),
            Err(Error::BadLength { .. })
        ));
    }

    #[test]
    fn trailing_padding_is_dropped_from_the_range() {
        let mut buf = vec![0u8; 8];
        buf.extend_from_slice(&BEFORE);
        buf.extend_from_slice(&[0xee; 6]);
        let r = insert_payload_header(&mut buf, 8..66, tag(), Shift::Front).unwrap();
        assert_eq!(buf[r], AFTER);
    }

    #[test]
    fn stale_location_is_rejected() {
        let Some(Shim6At::Payload(at)) = locate(&AFTER).unwrap() else {
            panic!()
        };
        let mut buf = BEFORE;
        assert!(matches!(
            remove_at(&mut buf, 0..52, &at, Shift::Front),
            Err(Error::Malformed(_))
        ));
        assert_eq!(buf, BEFORE);
        let mut buf = AFTER;
        for bad in [
            PayloadHeaderAt { offset: 8, ..at },
            PayloadHeaderAt { offset: 56, ..at },
            PayloadHeaderAt {
                offset: usize::MAX,
                ..at
            },
            PayloadHeaderAt {
                announced_at: 48,
                ..at
            },
        ] {
            assert!(remove_at(&mut buf, 0..60, &bad, Shift::Tail).is_err());
        }
        assert_eq!(buf, AFTER);
    }

    #[test]
    fn truncated_at_every_length() {
        // Every cut of a shimmed packet, with and without a matching Payload Length:
        // an error, never a panic; never a wrong success.
        let p = {
            let mut b = vec![0u8; 8];
            b.extend_from_slice(&build(&[Ext::HopByHop(0), Ext::Routing(1)], proto::TCP, 0));
            let n = b.len();
            let r = insert_payload_header(&mut b, 8..n, tag(), Shift::Front).unwrap();
            b[r].to_vec()
        };
        for cut in 0..p.len() {
            let mut q = p[..cut].to_vec();
            assert!(remove_payload_header(&mut q, 0..cut, Shift::Tail).is_err());
            if cut >= 40 {
                q[4..6].copy_from_slice(&((cut - 40) as u16).to_be_bytes());
                assert!(
                    remove_payload_header(&mut q, 0..cut, Shift::Front).is_err(),
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn rewrite_touches_only_addresses() {
        let mut p = AFTER;
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:1::a".parse().unwrap(),
            "2001:db8:2::b".parse().unwrap(),
        );
        rewrite_addresses(&mut p, &a, &b).unwrap();
        let v = Packet::new_checked(&p[..]).unwrap();
        assert_eq!((v.src_addr(), v.dst_addr()), (a, b));
        assert_eq!(p[..8], AFTER[..8]);
        assert_eq!(p[40..], AFTER[40..]);
        assert!(matches!(
            rewrite_addresses(&mut p[..39], &a, &b),
            Err(Error::Truncated { .. })
        ));
    }

    fn arb_shift() -> impl Strategy<Value = Shift> {
        prop_oneof![Just(Shift::Front), Just(Shift::Tail)]
    }

    proptest! {
        #[test]
        fn insert_then_remove_restores_exactly(
            (exts, upper, plen) in arb_chain(),
            t in 0u64..(1 << 47),
            ins in arb_shift(),
            rem in arb_shift(),
            head in 8usize..24,
        ) {
            let tag = ContextTag::new(t).unwrap();
            let p = build(&exts, upper, plen);
            let mut buf = vec![0xa5u8; head + p.len() + 8];
            buf[head..head + p.len()].copy_from_slice(&p);
            let r = insert_payload_header(&mut buf, head..head + p.len(), tag, ins).unwrap();
            prop_assert_eq!(r.len(), p.len() + 8);
            let Some(Shim6At::Payload(at)) = locate(&buf[r.clone()]).unwrap() else {
                panic!("inserted header not found")
            };
            prop_assert_eq!(at.repr.context_tag, tag);
            let removed = remove_payload_header(&mut buf, r, rem).unwrap();
            prop_assert_eq!(removed.tag, tag);
            prop_assert_eq!(&buf[removed.packet], &p[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            b in proptest::collection::vec(any::<u8>(), 0..160),
            start in 0usize..16,
            shift in arb_shift(),
            ipv6 in any::<bool>(),
        ) {
            let mut b = b;
            if ipv6 && b.len() >= 40 {
                // Make the fixed header plausible so that the walk gets further.
                b[0] = 0x60;
                let plen = (b.len() - 40) as u16;
                b[4..6].copy_from_slice(&plen.to_be_bytes());
            }
            let mut buf = vec![0u8; start];
            buf.extend_from_slice(&b);
            buf.extend_from_slice(&[0; 8]);
            let range = start..start + b.len();
            let _ = locate(&b).map(|s| s.map(|s| s.to_string()));
            let _ = insertion_point(&b);
            let mut c = buf.clone();
            if let Ok(r) = insert_payload_header(&mut c, range.clone(), ContextTag::MAX, shift) {
                prop_assert_eq!(c[r.start + 4..r.start + 6].to_vec(),
                    ((r.len() - 40) as u16).to_be_bytes().to_vec());
            }
            let mut c = buf.clone();
            let _ = remove_payload_header(&mut c, range, shift);
        }
    }
}
