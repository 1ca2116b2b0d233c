//! A minimal `ICMPv6` view (RFC 4443 §2.1) and the translation of an `ICMPv6` error that
//! quotes a shimmed packet back to ULIDs (RFC 5533 §5.1 and §12.4; digest §1.13).
//!
//! ```text
//! +---------------+---------------+-------------------------------+
//! |     Type      |     Code      |          Checksum             |
//! +---------------+---------------+-------------------------------+
//! |   MTU (Packet Too Big) / Pointer (Parameter Problem) / unused |
//! +---------------------------------------------------------------+
//! |   as much of the invoking packet as fits in 1280 octets ...  |
//! +---------------------------------------------------------------+
//! ```
//!
//! When an error about one of our shimmed packets comes back, the quoted packet carries
//! locators and the payload header with CT(peer). Before the error goes up to the ULP
//! (which only knows ULIDs) [`translate_quoted`] rewrites the quoted src/dst to the
//! ULIDs, removes the quoted payload header, and for Packet Too Big reports MTU − 8 —
//! the shim's 8 octets are overhead the ULP must leave room for.

use core::fmt;
use std::net::Ipv6Addr;

use super::chain::Walker;
use super::header::addr;
use super::shim::PayloadHeaderAt;
use super::{HEADER_LEN, proto};
use crate::checksum;
use crate::error::{Error, Result, check_len};
use crate::shim6::ContextTag;
use crate::shim6::payload::{self, HEADER_LEN as PAYLOAD_HEADER_LEN};

/// `ICMPv6` Destination Unreachable (RFC 4443 §3.1).
pub const TYPE_DST_UNREACHABLE: u8 = 1;
/// `ICMPv6` Packet Too Big (RFC 4443 §3.2).
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
/// `ICMPv6` Time Exceeded (RFC 4443 §3.3).
pub const TYPE_TIME_EXCEEDED: u8 = 3;
/// `ICMPv6` Parameter Problem (RFC 4443 §3.4).
pub const TYPE_PARAM_PROBLEM: u8 = 4;

/// Length of the `ICMPv6` header up to the message body.
pub const HEADER_LEN_ICMP: usize = 8;

/// Byte ranges of the fields.
mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const DATA: Range<usize> = 4..8;
    pub const BODY: usize = 8;
}

/// A read/write view of an `ICMPv6` message; the buffer is exactly the message.
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

    /// The one validity check: the 8-octet header present.
    #[inline]
    pub fn check(&self) -> Result<()> {
        check_len("ICMPv6 header", self.buffer.as_ref(), HEADER_LEN_ICMP)
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// The second 32-bit word: the MTU of a Packet Too Big, the Pointer of a Parameter
    /// Problem, unused otherwise.
    #[inline]
    pub fn data_word(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// The body: for an error message, the start of the invoking packet.
    #[inline]
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY..]
    }

    /// Whether this is an error message (type < 128, RFC 4443 §2.1).
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    /// Whether the checksum verifies over the IPv6 pseudo-header (RFC 4443 §2.3).
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        let acc = checksum::pseudo_header(src, dst, proto::ICMPV6, len);
        checksum::fold(checksum::sum(acc, b)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Type.
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets Code.
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets Checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the second 32-bit word (MTU / Pointer / unused).
    #[inline]
    pub fn set_data_word(&mut self, v: u32) {
        self.buffer.as_mut()[field::DATA].copy_from_slice(&v.to_be_bytes());
    }

    /// The body, mutable.
    #[inline]
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::BODY..]
    }

    /// Computes and writes the checksum for a message sent from `src` to `dst`.
    ///
    /// # Panics
    /// If the message is 4 GiB or longer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let len = u32::try_from(b.len()).expect("ICMPv6 message longer than 4 GiB");
        let acc = checksum::pseudo_header(src, dst, proto::ICMPV6, len);
        let c = checksum::fold(checksum::sum(acc, b));
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ICMPv6 type={} code={} word={:#x} body_len={}",
            self.msg_type(),
            self.code(),
            self.data_word(),
            self.body().len()
        )
    }
}

/// A payload extension header found in the packet quoted by an `ICMPv6` error. Offsets
/// are relative to the start of the quoted packet (the `ICMPv6` body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotedShim6 {
    /// The quoted tag: CT(peer) of the context that sent the packet (digest §1.12).
    pub tag: ContextTag,
    /// Quoted source: Lp(local).
    pub src: Ipv6Addr,
    /// Quoted destination: Lp(peer).
    pub dst: Ipv6Addr,
    /// Where the payload header sits in the quoted packet.
    pub at: PayloadHeaderAt,
}

/// Finds a payload extension header in the packet quoted by the `ICMPv6` error `icmp`
/// (the whole `ICMPv6` message). `Ok(None)`: not an error message, or the quoted packet
/// carries no payload header (none, or a control message) within the quoted octets.
///
/// The quote may be cut short (RFC 4443 §2.4 (c)): only the octets present and
/// announced by the quoted Payload Length are walked.
///
/// # Errors
/// `Truncated` if the quote lacks a full IPv6 header or ends inside an extension header
/// before the Shim6 header; `Unrecognized` for a quoted IP version other than 6; the
/// walk's other errors.
pub fn quoted_shim6(icmp: &[u8]) -> Result<Option<QuotedShim6>> {
    let p = Packet::new_checked(icmp)?;
    if !p.is_error() {
        return Ok(None);
    }
    let q = p.body();
    check_len("quoted IPv6 header", q, HEADER_LEN)?;
    let quoted = super::Packet::new_unchecked(q);
    if quoted.version() != 6 {
        return Err(Error::Unrecognized {
            what: "quoted IP version",
            value: u32::from(quoted.version()),
        });
    }
    let visible = q.len().min(quoted.total_len());
    let walker = Walker::new(&q[..visible], quoted.next_header(), HEADER_LEN, 6);
    let Some(h) = walker.find(proto::SHIM6)? else {
        return Ok(None);
    };
    let b = &q[h.range()];
    // RFC 5533 §5.2: P = 0 is a control message, not a payload header.
    if b[2] & 0x80 == 0 {
        return Ok(None);
    }
    let repr = payload::Repr::parse(&payload::Packet::new_checked(b)?)?;
    Ok(Some(QuotedShim6 {
        tag: repr.context_tag,
        src: quoted.src_addr(),
        dst: quoted.dst_addr(),
        at: PayloadHeaderAt {
            offset: h.offset,
            announced_at: h.announced_at,
            repr,
        },
    }))
}

/// Translates the `ICMPv6` error `icmp` (the whole message, as found by [`quoted_shim6`])
/// back to ULIDs in place, and returns its new length (8 octets shorter):
/// 1. quoted src := `ulid_local`, quoted dst := `ulid_peer`;
/// 2. the quoted payload header is removed (its Next Header restored, quoted Payload
///    Length − 8), the rest of the quote moves up 8 octets;
/// 3. Packet Too Big: MTU − 8 (RFC 5533 §5.1: the shim needs 8 of the path's octets);
///    Parameter Problem: a Pointer past the removed header moves back by 8.
///
/// The checksum is left stale: the caller fills it ([`Packet::fill_checksum`]) with the
/// addresses of the IPv6 packet it delivers, whose Payload Length also shrinks by 8.
///
/// # Errors
/// `Malformed` if `q` does not match `icmp`, or a Parameter Problem points into the
/// payload header itself or at the Next Header octet announcing it (a problem with a
/// Shim6 field: the shim handles it and the error is not passed up, RFC 5533 §12.4,
/// digest §1.13). On error `icmp` is unchanged.
pub fn translate_quoted(
    icmp: &mut [u8],
    q: &QuotedShim6,
    ulid_local: &Ipv6Addr,
    ulid_peer: &Ipv6Addr,
) -> Result<usize> {
    let p = Packet::new_checked(&*icmp)?;
    let (ty, word) = (p.msg_type(), p.data_word());
    let body = p.body();
    let at = &q.at;
    let stale = Error::Malformed("quoted payload header location does not match the message");
    let end = at.offset.checked_add(PAYLOAD_HEADER_LEN).ok_or(stale)?;
    if body.len() < end
        || at.offset < HEADER_LEN
        || at.announced_at >= at.offset
        || body[at.announced_at] != proto::SHIM6
    {
        return Err(stale);
    }
    let next_header = payload::Packet::new_checked(&body[at.offset..end])?.next_header();
    let quoted_len = super::Packet::new_unchecked(body).payload_len();
    let new_quoted_len = quoted_len
        .checked_sub(PAYLOAD_HEADER_LEN as u16)
        .ok_or(stale)?;
    let new_word = match ty {
        // RFC 5533 §5.1 / digest §1.13: report MTU − 8 to the ULP.
        TYPE_PACKET_TOO_BIG => word.saturating_sub(PAYLOAD_HEADER_LEN as u32),
        // RFC 4443 §3.4: the Pointer counts from the start of the invoking packet.
        TYPE_PARAM_PROBLEM => {
            let ptr = word as usize;
            if (at.offset..end).contains(&ptr) {
                return Err(Error::Malformed(
                    "Parameter Problem points into the Shim6 payload header",
                ));
            }
            // The Next Header octet that announces the payload header (value 140) is a
            // Shim6 field too (RFC 5533 §12.4, digest §1.13): "unrecognized Next Header"
            // there (RFC 4443 §3.4, code 1) means the receiving host's kernel found no taker for
            // protocol 140 (a peer without Shim6, or one whose protocol-140 socket was
            // full and skipped: Linux then answers as if there were none). The ULP's own
            // packet announced its own header there, so after translation the error
            // would blame a header the ULP never got wrong (EPROTO on its socket).
            if ptr == at.announced_at {
                return Err(Error::Malformed(
                    "Parameter Problem points at the Next Header announcing the Shim6 \
                     payload header",
                ));
            }
            if ptr >= end {
                word - PAYLOAD_HEADER_LEN as u32
            } else {
                word
            }
        }
        _ => word,
    };
    let len = icmp.len();
    let mut p = Packet::new_unchecked(&mut *icmp);
    p.set_data_word(new_word);
    let body = p.body_mut();
    let mut quoted = super::Packet::new_unchecked(&mut *body);
    quoted.set_src_addr(*ulid_local);
    quoted.set_dst_addr(*ulid_peer);
    quoted.set_payload_len(new_quoted_len);
    body[at.announced_at] = next_header;
    body.copy_within(end.., at.offset);
    Ok(len - PAYLOAD_HEADER_LEN)
}

/// The quoted packet's source and destination addresses, if at least 40 octets are
/// quoted.
pub fn quoted_addresses(icmp: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let q = icmp.get(field::BODY..)?;
    (q.len() >= HEADER_LEN).then(|| (addr(&q[8..24]), addr(&q[24..40])))
}

#[cfg(test)]
mod tests {
    use super::super::shim::{Shift, insert_payload_header, rewrite_addresses};
    use super::super::testutil::{Ext, arb_chain, build};
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    // Packet Too Big, MTU 1280, checksum 0x1234, quoting 4 octets.
    static BYTES: [u8; 12] = hex!("02 00 1234 00000500 60000000");

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.msg_type(), TYPE_PACKET_TOO_BIG);
        assert_eq!(p.code(), 0);
        assert_eq!(p.checksum(), 0x1234);
        assert_eq!(p.data_word(), 1280);
        assert_eq!(p.body(), &hex!("60000000"));
        assert!(p.is_error());
        assert_eq!(p.to_string(), "ICMPv6 type=2 code=0 word=0x500 body_len=4");
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(2);
        p.set_code(0);
        p.set_checksum(0x1234);
        p.set_data_word(1280);
        p.body_mut().copy_from_slice(&hex!("60000000"));
        assert_eq!(b, BYTES);
    }

    #[test]
    fn truncated_at_every_length() {
        for n in 0..8 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { needed: 8, .. })
            ));
        }
    }

    #[test]
    fn checksum_round_trip() {
        let (s, d): (Ipv6Addr, Ipv6Addr) = ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap());
        let mut b = BYTES;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&s, &d);
        assert!(p.verify_checksum(&s, &d));
        assert!(!p.verify_checksum(&d, &d));
    }

    const ULID_LOCAL: &str = "2001:db8::1";
    const ULID_PEER: &str = "2001:db8::2";
    const LOC_LOCAL: &str = "2001:db8:a::1";
    const LOC_PEER: &str = "2001:db8:b::2";

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An `ICMPv6` error of `ty`/`word` quoting the shimmed form of `original` (cut to
    /// `quote` octets), and the error the ULP should see.
    fn icmp_pair(original: &[u8], ty: u8, word: u32, quote: usize) -> (Vec<u8>, Vec<u8>) {
        let mut buf = vec![0u8; 8];
        buf.extend_from_slice(original);
        let n = buf.len();
        let r = insert_payload_header(&mut buf, 8..n, ContextTag::new(77).unwrap(), Shift::Front)
            .unwrap();
        rewrite_addresses(&mut buf[r.clone()], &ip(LOC_LOCAL), &ip(LOC_PEER)).unwrap();
        let shimmed = &buf[r];
        let mut wire = vec![ty, 0, 0, 0];
        wire.extend_from_slice(&word.to_be_bytes());
        wire.extend_from_slice(&shimmed[..quote.min(shimmed.len())]);
        let mut ulp = vec![ty, 0, 0, 0];
        let expect_word = if ty == TYPE_PACKET_TOO_BIG {
            word - 8
        } else {
            word
        };
        ulp.extend_from_slice(&expect_word.to_be_bytes());
        ulp.extend_from_slice(&original[..(quote.min(shimmed.len()) - 8).min(original.len())]);
        (wire, ulp)
    }

    #[test]
    fn packet_too_big_is_translated() {
        let original = build(&[Ext::HopByHop(0)], proto::TCP, 60);
        for quote in [56, 64, 80, original.len() + 8] {
            let (mut wire, ulp) = icmp_pair(&original, TYPE_PACKET_TOO_BIG, 1400, quote);
            let q = quoted_shim6(&wire).unwrap().unwrap();
            assert_eq!(q.tag.value(), 77);
            assert_eq!((q.src, q.dst), (ip(LOC_LOCAL), ip(LOC_PEER)));
            assert_eq!(q.at.offset, 48);
            let n = translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER)).unwrap();
            assert_eq!(wire[..n], ulp[..], "quote {quote}");
            assert_eq!(
                quoted_addresses(&wire[..n]),
                Some((ip(ULID_LOCAL), ip(ULID_PEER)))
            );
        }
    }

    #[test]
    fn parameter_problem_pointer() {
        let original = build(&[Ext::DestOpts(0)], proto::UDP, 20);
        // Pointer at the quoted UDP header (offset 56 in the shimmed packet) moves to 48.
        let (mut wire, mut ulp) = icmp_pair(&original, TYPE_PARAM_PROBLEM, 56, 1000);
        ulp[4..8].copy_from_slice(&48u32.to_be_bytes());
        let q = quoted_shim6(&wire).unwrap().unwrap();
        assert_eq!(q.at.offset, 40);
        let n = translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER)).unwrap();
        assert_eq!(wire[..n], ulp[..]);
        // A pointer into the payload header is the shim's business.
        let (mut wire, _) = icmp_pair(&original, TYPE_PARAM_PROBLEM, 42, 1000);
        let before = wire.clone();
        let q = quoted_shim6(&wire).unwrap().unwrap();
        assert!(matches!(
            translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER)),
            Err(Error::Malformed(_))
        ));
        assert_eq!(wire, before);
        // A pointer in the fixed header stays.
        let (mut wire, ulp) = icmp_pair(&original, TYPE_PARAM_PROBLEM, 7, 1000);
        let q = quoted_shim6(&wire).unwrap().unwrap();
        let n = translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER)).unwrap();
        assert_eq!(wire[..n], ulp[..]);
    }

    /// The Parameter Problem that broke iperf3's UDP flood through a rewriting context
    /// (docs/bench/dataplane.md), as captured in the sender's namespace: code 1
    /// (unrecognized Next Header), Pointer 6, quoting a well-formed 64-octet UDP
    /// datagram with the payload header (tag 0x21c9d4eab8f2), sent by the receiver's
    /// kernel while its protocol-140 raw socket was full.
    static UNRECOGNIZED_140: [u8; 128] = hex!(
        "04 01 77a1 00000006
         6007b36b 0050 8c 3f
         20010db800a2000010f013a0e0858666
         20010db800b2000008a643ebff964b53
         11 00 a1c9d4eab8f2
         951a 0fa1 0048 d785
         000026ed000000000000000000000000
         00000000000000000000000000000000
         00000000000000000000000000000000
         00000000000000000000000000000000"
    );

    #[test]
    fn unrecognized_next_header_140_is_not_passed_up() {
        let mut wire = UNRECOGNIZED_140;
        let q = quoted_shim6(&wire).unwrap().unwrap();
        assert_eq!(q.tag.value(), 0x21c9_d4ea_b8f2);
        assert_eq!((q.at.offset, q.at.announced_at), (40, 6));
        assert_eq!(q.at.repr.next_header, proto::UDP);
        assert!(matches!(
            translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER)),
            Err(Error::Malformed(m)) if m.contains("Next Header announcing")
        ));
        assert_eq!(wire, UNRECOGNIZED_140, "unchanged on error");
        // Behind a Hop-by-Hop header the announcing octet is the Hop-by-Hop header's
        // Next Header (quoted offset 40); code 0 (erroneous field) there is refused too.
        let original = build(&[Ext::HopByHop(0)], proto::UDP, 20);
        for code in [0, 1] {
            let (mut wire, _) = icmp_pair(&original, TYPE_PARAM_PROBLEM, 40, 1000);
            wire[1] = code;
            let q = quoted_shim6(&wire).unwrap().unwrap();
            assert_eq!(q.at.announced_at, 40);
            let before = wire.clone();
            assert!(translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER)).is_err());
            assert_eq!(wire, before);
        }
        // The fixed header's Next Header is not the announcing octet there: the ULP's
        // own Hop-by-Hop header is, so the error goes up (Pointer unchanged).
        let (mut wire, ulp) = icmp_pair(&original, TYPE_PARAM_PROBLEM, 6, 1000);
        let q = quoted_shim6(&wire).unwrap().unwrap();
        let n = translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER)).unwrap();
        assert_eq!(wire[..n], ulp[..]);
    }

    #[test]
    fn nothing_to_translate() {
        // Informational message, unshimmed quote, quoted control message.
        let echo = hex!("80 00 0000 00010001");
        assert_eq!(quoted_shim6(&echo), Ok(None));
        let mut wire = vec![1, 0, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(&build(&[], proto::TCP, 20));
        assert_eq!(quoted_shim6(&wire), Ok(None));
        let mut ctl = build(&[], proto::SHIM6, 8);
        ctl[40..42].copy_from_slice(&[59, 0]);
        let mut wire = vec![1, 0, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(&ctl);
        assert_eq!(quoted_shim6(&wire), Ok(None));
    }

    #[test]
    fn cut_at_every_length() {
        let original = build(&[Ext::HopByHop(0), Ext::Routing(0)], proto::TCP, 30);
        let (wire, _) = icmp_pair(&original, TYPE_TIME_EXCEEDED, 0, 1000);
        for cut in 0..wire.len() {
            let r = quoted_shim6(&wire[..cut]);
            // The payload header sits at quoted octets 56..64, message octets 64..72.
            if cut < 72 {
                assert!(!matches!(r, Ok(Some(_))), "cut {cut}: {r:?}");
            } else {
                assert!(matches!(r, Ok(Some(_))), "cut {cut}: {r:?}");
            }
        }
    }

    proptest! {
        /// Over arbitrary extension chains: a Parameter Problem pointing at the octet
        /// that announces the payload header, or into it, never reaches the ULP; one
        /// pointing anywhere else in the quote does, its Pointer moved back by 8 exactly
        /// when it lay past the payload header.
        #[test]
        fn parameter_problem_about_shim6_fields_stays_with_the_shim(
            (exts, upper, plen) in arb_chain(),
            code in 0u8..3,
            pick in any::<prop::sample::Index>(),
        ) {
            let original = build(&exts, upper, plen);
            let (probe, _) = icmp_pair(&original, TYPE_PARAM_PROBLEM, 0, 2000);
            let q0 = quoted_shim6(&probe).unwrap().unwrap();
            let quoted_len = probe.len() - 8;
            let ptr = pick.index(quoted_len);
            let (mut wire, mut ulp) = icmp_pair(&original, TYPE_PARAM_PROBLEM, ptr as u32, 2000);
            wire[1] = code;
            ulp[1] = code;
            let q = quoted_shim6(&wire).unwrap().unwrap();
            prop_assert_eq!(q.at, q0.at);
            let before = wire.clone();
            let r = translate_quoted(&mut wire, &q, &ip(ULID_LOCAL), &ip(ULID_PEER));
            let about_shim6 =
                ptr == q.at.announced_at || (q.at.offset..q.at.offset + 8).contains(&ptr);
            if about_shim6 {
                prop_assert!(r.is_err(), "pointer {} passed up", ptr);
                prop_assert_eq!(wire, before);
            } else {
                let n = r.unwrap();
                let expect = if ptr >= q.at.offset + 8 { ptr - 8 } else { ptr };
                ulp[4..8].copy_from_slice(&(expect as u32).to_be_bytes());
                prop_assert_eq!(&wire[..n], &ulp[..]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120), six in any::<bool>()) {
            let mut b = b;
            if six && b.len() > 8 {
                b[8] = 0x60;
            }
            if let Ok(Some(q)) = quoted_shim6(&b) {
                let n = translate_quoted(&mut b, &q, &Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST);
                if let Ok(n) = n {
                    prop_assert!(n + 8 == b.len());
                }
            }
        }
    }
}
