//! A bounded, non-panicking walker over the IPv6 extension-header chain (RFC 8200 §4).
//!
//! The walker yields one [`Step::Header`] per extension header, with its protocol,
//! offset and length, and finishes with one [`Step::Upper`]: where the upper-layer
//! payload starts and what protocol it is. Any error ends the walk.
//!
//! Extension headers it steps over, and how it knows their length:
//!
//! | protocol | header | length |
//! |---|---|---|
//! | 0 | Hop-by-Hop Options (first only, RFC 8200 §4.3) | `8 * (Hdr Ext Len + 1)` |
//! | 43 | Routing (RFC 8200 §4.4) | `8 * (Hdr Ext Len + 1)` |
//! | 44 | Fragment (RFC 8200 §4.5) | 8 |
//! | 51 | AH (RFC 4302 §2.2) | `4 * (Payload Len + 2)` |
//! | 60 | Destination Options (RFC 8200 §4.6) | `8 * (Hdr Ext Len + 1)` |
//! | 140 | Shim6, payload or control (RFC 5533 §5) | `8 * (Hdr Ext Len + 1)` |
//!
//! It stops at ESP (50, opaque), No Next Header (59) and anything else (an upper-layer
//! protocol, including 41 = an inner IPv6 packet and 135 = the Mobility Header, which
//! RFC 6275 §6.1 defines as the last header of its packet). After a Fragment header
//! with a non-zero offset the rest is fragment data, not headers: the walk ends there
//! with [`Upper::after_fragment`] set.
//!
//! Termination: every step advances by at least 8 octets and the walk stops after
//! [`MAX_EXT_HEADERS`] headers, so a walk costs O(min(len / 8, 16)).

use core::fmt;

use super::{HEADER_LEN, Packet, proto, units_of_8};
use crate::error::{Error, Result, check_len};

/// The most extension headers the walker accepts in one packet. RFC 8200 sets no limit;
/// a valid chain has at most 8 kinds of header (§4.1) and this is local policy.
pub const MAX_EXT_HEADERS: usize = 16;

/// Offset of the fixed header's Next Header field.
pub const FIXED_NEXT_HEADER_OFFSET: usize = 6;

/// Whether the walker treats `protocol` as an extension header it can step over.
#[inline]
pub const fn is_extension_header(protocol: u8) -> bool {
    matches!(
        protocol,
        proto::HOP_BY_HOP
            | proto::ROUTING
            | proto::FRAGMENT
            | proto::AH
            | proto::DEST_OPTS
            | proto::SHIM6
    )
}

/// Length in octets of the extension header of `protocol` at the start of `b`, from its
/// own length field (table in the module docs). Needs the first two octets.
///
/// # Errors
/// `Unrecognized` if `protocol` is not an extension header; `Truncated` if `b` is
/// shorter than 2 octets; `BadLength` for an AH Payload Len IPv6 forbids.
#[inline]
pub fn ext_header_len(protocol: u8, b: &[u8]) -> Result<usize> {
    match protocol {
        proto::FRAGMENT => Ok(super::fragment::HEADER_LEN),
        proto::AH => {
            check_len("AH", b, 2)?;
            super::ah::header_len(b[1])
        }
        proto::HOP_BY_HOP | proto::ROUTING | proto::DEST_OPTS | proto::SHIM6 => {
            check_len("IPv6 extension header", b, 2)?;
            Ok(units_of_8(b[1]))
        }
        other => Err(Error::Unrecognized {
            what: "IPv6 extension header",
            value: u32::from(other),
        }),
    }
}

/// One extension header found by the walker. Offsets are relative to the start of the
/// walked buffer (the start of the IPv6 packet for [`Walker::from_packet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtHeader {
    /// Its protocol number (the value of the Next Header that announced it).
    pub protocol: u8,
    /// Offset of its first octet.
    pub offset: usize,
    /// Its length in octets.
    pub len: usize,
    /// Its own Next Header field (first octet of every extension header).
    pub next_header: u8,
    /// Offset of the Next Header octet that announced it: 6 for the first header, else
    /// the offset of the previous extension header.
    pub announced_at: usize,
}

impl ExtHeader {
    /// The octets it occupies.
    #[inline]
    pub fn range(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// Where the chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Upper {
    /// Protocol of what follows the last extension header: a ULP, 41 (inner IPv6), 50
    /// (ESP), 59 (nothing), ...
    pub protocol: u8,
    /// Offset where it starts (may equal the buffer length: an empty payload).
    pub offset: usize,
    /// Offset of the Next Header octet that announced it.
    pub announced_at: usize,
    /// The last header was a Fragment header with a non-zero offset: what follows is the
    /// middle of a payload, not the start of `protocol` (RFC 8200 §4.5).
    pub after_fragment: bool,
}

/// One step of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// An extension header.
    Header(ExtHeader),
    /// The end of the chain; always the last step of a successful walk.
    Upper(Upper),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(h) => write!(
                f,
                "ext {} at {}..{} nh={}",
                h.protocol,
                h.offset,
                h.offset + h.len,
                h.next_header
            ),
            Self::Upper(u) => write!(
                f,
                "upper {} at {}{}",
                u.protocol,
                u.offset,
                if u.after_fragment { " (fragment)" } else { "" }
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Walking,
    AfterFragment,
    Done,
}

/// Iterator over the extension headers of a chain. Yields `Ok(Step)` items, the last of
/// them a [`Step::Upper`], or stops after the first `Err`.
#[derive(Debug, Clone)]
pub struct Walker<'a> {
    buf: &'a [u8],
    protocol: u8,
    offset: usize,
    announced_at: usize,
    count: usize,
    state: State,
}

impl<'a> Walker<'a> {
    /// Walks `buf` from `offset`, where a header of `protocol` starts, announced by the
    /// Next Header octet at `announced_at`. Nothing beyond `buf` is read: pass exactly the
    /// octets that belong to the packet.
    #[inline]
    pub const fn new(buf: &'a [u8], protocol: u8, offset: usize, announced_at: usize) -> Self {
        Self {
            buf,
            protocol,
            offset,
            announced_at,
            count: 0,
            state: State::Walking,
        }
    }

    /// Walks the chain of a whole IPv6 packet, after checking its fixed header
    /// ([`Packet::check`]). Octets beyond `40 + Payload Length` are ignored.
    #[inline]
    pub fn from_packet(packet: &'a [u8]) -> Result<Self> {
        let p = Packet::new_checked(packet)?;
        Ok(Self::new(
            &packet[..p.total_len()],
            p.next_header(),
            HEADER_LEN,
            FIXED_NEXT_HEADER_OFFSET,
        ))
    }

    /// Runs the walk to its end and returns where the upper-layer payload starts.
    pub fn upper(self) -> Result<Upper> {
        for step in self {
            if let Step::Upper(u) = step? {
                return Ok(u);
            }
        }
        // Every walk ends with an error or a Step::Upper; a walker that was already
        // exhausted before this call has nothing to report.
        Err(Error::Malformed("extension-header walk already finished"))
    }

    /// Runs the walk until the first extension header of `protocol`.
    pub fn find(self, protocol: u8) -> Result<Option<ExtHeader>> {
        for step in self {
            match step? {
                Step::Header(h) if h.protocol == protocol => return Ok(Some(h)),
                Step::Header(_) => {}
                Step::Upper(_) => return Ok(None),
            }
        }
        Ok(None)
    }

    fn step(&mut self) -> Result<Step> {
        if self.state == State::AfterFragment || !is_extension_header(self.protocol) {
            let after_fragment = self.state == State::AfterFragment;
            self.state = State::Done;
            return Ok(Step::Upper(Upper {
                protocol: self.protocol,
                offset: self.offset,
                announced_at: self.announced_at,
                after_fragment,
            }));
        }
        if self.count == MAX_EXT_HEADERS {
            return Err(Error::Malformed("more than 16 IPv6 extension headers"));
        }
        // RFC 8200 §4.3: the Hop-by-Hop Options header may only follow the IPv6 header.
        if self.protocol == proto::HOP_BY_HOP && self.count > 0 {
            return Err(Error::Malformed(
                "Hop-by-Hop Options header not first (RFC 8200 §4.3)",
            ));
        }
        let rest = self.buf.get(self.offset..).unwrap_or(&[]);
        let len = ext_header_len(self.protocol, rest)?;
        check_len("IPv6 extension header", rest, len)?;
        let header = ExtHeader {
            protocol: self.protocol,
            offset: self.offset,
            len,
            next_header: rest[0],
            announced_at: self.announced_at,
        };
        // RFC 8200 §4.5: after a Fragment header with a non-zero Fragment Offset come the
        // data of a later fragment, not the next header.
        if self.protocol == proto::FRAGMENT
            && super::fragment::Packet::new_unchecked(rest).frag_offset() != 0
        {
            self.state = State::AfterFragment;
        }
        self.announced_at = self.offset;
        self.offset += len;
        self.protocol = header.next_header;
        self.count += 1;
        Ok(Step::Header(header))
    }
}

impl Iterator for Walker<'_> {
    type Item = Result<Step>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Done {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.state = State::Done;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Ext, arb_chain, build};
    use super::*;
    use proptest::prelude::*;

    fn walk(b: &[u8]) -> Vec<Step> {
        Walker::from_packet(b)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn plain_tcp() {
        let p = build(&[], proto::TCP, 20);
        assert_eq!(
            walk(&p),
            vec![Step::Upper(Upper {
                protocol: 6,
                offset: 40,
                announced_at: 6,
                after_fragment: false
            })]
        );
    }

    #[test]
    fn every_kind_of_header() {
        let exts = [
            Ext::HopByHop(0),
            Ext::DestOpts(1),
            Ext::Routing(2),
            Ext::Fragment(0),
            Ext::Ah(1),
            Ext::DestOpts(0),
        ];
        let p = build(&exts, proto::UDP, 12);
        let steps = walk(&p);
        let expect = [
            (0, 40, 8, 6),
            (60, 48, 16, 40),
            (43, 64, 24, 48),
            (44, 88, 8, 64),
            (51, 96, 24, 88),
            (60, 120, 8, 96),
        ];
        assert_eq!(steps.len(), expect.len() + 1);
        for (s, (protocol, offset, len, announced_at)) in steps.iter().zip(expect) {
            let Step::Header(h) = s else {
                panic!("expected a header, got {s}")
            };
            assert_eq!(
                (h.protocol, h.offset, h.len, h.announced_at),
                (protocol, offset, len, announced_at)
            );
        }
        assert_eq!(
            steps[6],
            Step::Upper(Upper {
                protocol: 17,
                offset: 128,
                announced_at: 120,
                after_fragment: false
            })
        );
        assert_eq!(steps[6].to_string(), "upper 17 at 128");
        assert_eq!(
            Walker::from_packet(&p)
                .unwrap()
                .find(proto::AH)
                .unwrap()
                .unwrap()
                .range(),
            96..120
        );
        assert_eq!(
            Walker::from_packet(&p).unwrap().find(proto::SHIM6),
            Ok(None)
        );
    }

    #[test]
    fn esp_and_no_next_header_stop() {
        for (last, exts, offset) in [
            (proto::ESP, vec![Ext::HopByHop(0), Ext::DestOpts(0)], 56),
            (proto::NONE, vec![Ext::Routing(0)], 48),
        ] {
            let p = build(&exts, last, 16);
            let u = Walker::from_packet(&p).unwrap().upper().unwrap();
            assert_eq!(u.protocol, last);
            assert_eq!(u.offset, offset);
        }
    }

    #[test]
    fn non_first_fragment_stops() {
        // A later fragment: whatever follows is data even if it looks like a header.
        let p = build(&[Ext::Fragment(100), Ext::DestOpts(0)], proto::TCP, 8);
        let steps = walk(&p);
        assert_eq!(steps.len(), 2);
        assert_eq!(
            steps[1],
            Step::Upper(Upper {
                protocol: 60,
                offset: 48,
                announced_at: 40,
                after_fragment: true
            })
        );
    }

    #[test]
    fn hop_by_hop_only_first() {
        let p = build(&[Ext::DestOpts(0), Ext::HopByHop(0)], proto::TCP, 0);
        let r: Vec<_> = Walker::from_packet(&p).unwrap().collect();
        assert!(matches!(r.last(), Some(Err(Error::Malformed(_)))));
    }

    #[test]
    fn too_many_headers() {
        let exts = vec![Ext::DestOpts(0); MAX_EXT_HEADERS + 1];
        let p = build(&exts, proto::TCP, 0);
        assert!(matches!(
            Walker::from_packet(&p).unwrap().upper(),
            Err(Error::Malformed(_))
        ));
        let p = build(&exts[1..], proto::TCP, 0);
        assert_eq!(
            Walker::from_packet(&p).unwrap().upper().unwrap().offset,
            40 + 8 * MAX_EXT_HEADERS
        );
    }

    #[test]
    fn truncated_at_every_length_field() {
        // Cut the payload (and the Payload Length with it) at every length inside the
        // chain: every cut is reported as truncated, never a panic or a wrong success.
        let exts = [
            Ext::HopByHop(1),
            Ext::Routing(0),
            Ext::Ah(1),
            Ext::DestOpts(0),
        ];
        let p = build(&exts, proto::TCP, 0);
        let chain_end = p.len();
        for cut in 40..chain_end {
            let mut q = p[..cut].to_vec();
            q[4..6].copy_from_slice(&((cut - 40) as u16).to_be_bytes());
            let r = Walker::from_packet(&q).unwrap().upper();
            assert!(
                matches!(r, Err(Error::Truncated { .. })),
                "cut {cut}: {r:?}"
            );
        }
    }

    #[test]
    fn bad_ah_length() {
        let mut p = build(&[Ext::Ah(1)], proto::TCP, 8);
        p[41] = 3; // 20 octets: not a multiple of 8
        assert!(matches!(
            Walker::from_packet(&p).unwrap().upper(),
            Err(Error::BadLength { .. })
        ));
    }

    proptest! {
        #[test]
        fn valid_chains_walk_to_their_upper_layer((exts, upper, plen) in arb_chain()) {
            let p = build(&exts, upper, plen);
            let steps: Vec<_> = Walker::from_packet(&p).unwrap().map(Result::unwrap).collect();
            prop_assert_eq!(steps.len(), exts.len() + 1);
            let Some(Step::Upper(u)) = steps.last() else { panic!("no upper step") };
            prop_assert_eq!(u.protocol, upper);
            prop_assert_eq!(u.offset, p.len() - plen);
        }

        #[test]
        fn arbitrary_bytes_never_panic(first in any::<u8>(), b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut n = 0;
            for step in Walker::new(&b, first, 0, 0) {
                n += 1;
                prop_assert!(n <= MAX_EXT_HEADERS + 1);
                if let Ok(s) = step {
                    let _ = s.to_string();
                }
            }
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&((b.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[first, 64]);
            p.extend_from_slice(&[0; 32]);
            p.extend_from_slice(&b);
            let _ = Walker::from_packet(&p).unwrap().upper();
        }
    }
}
