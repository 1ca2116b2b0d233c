//! Hop-by-Hop Options (Next Header 0) and Destination Options (60) headers and their TLV
//! options (RFC 8200 §4.2, §4.3, §4.6). Both headers share one format:
//!
//! ```text
//! +---------------+---------------+-------------------------------+
//! |  Next Header  |  Hdr Ext Len  |  Options (TLVs) ...           |
//! +---------------+---------------+-------------------------------+
//! ```
//!
//! The header is `8 * (Hdr Ext Len + 1)` octets long; the options fill it exactly,
//! padded with Pad1 (a single zero octet) or `PadN` (type 1, length, zeros).

use core::fmt;

use super::units_of_8;
use crate::error::{Result, check_len};

/// Option type Pad1: a single octet with no length or data (RFC 8200 §4.2).
pub const OPT_PAD1: u8 = 0;
/// Option type `PadN`: type, length, `length` zero octets (RFC 8200 §4.2).
pub const OPT_PADN: u8 = 1;
/// Option type of the Tunnel Encapsulation Limit (RFC 2473 §5.1).
pub const OPT_TUNNEL_ENCAP_LIMIT: u8 = 4;
/// Option type of the `MIPv6` Home Address option (RFC 6275 §6.3); see [`crate::mip6::hao`].
pub const OPT_HOME_ADDRESS: u8 = 0xc9;

/// Byte ranges of the fields.
mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    pub const OPTIONS: usize = 2;
}

/// A read/write view of a Hop-by-Hop or Destination Options header at the start of a
/// buffer. After [`Packet::new_checked`] the buffer holds the whole header.
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

    /// The one validity check: the two fixed octets and `header_len()` octets present.
    /// The options themselves are validated by [`Repr::parse`] or as [`Packet::options`]
    /// is iterated.
    #[inline]
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("IPv6 options header", b, 2)?;
        check_len("IPv6 options header", b, self.header_len())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Next Header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hdr Ext Len (8-octet units beyond the first 8).
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// Length of the header in octets.
    #[inline]
    pub fn header_len(&self) -> usize {
        units_of_8(self.hdr_ext_len())
    }

    /// The option area (everything after the two fixed octets).
    #[inline]
    pub fn options_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// Iterates the options with their offsets from the start of the header.
    #[inline]
    pub fn options(&self) -> OptionIter<'_> {
        OptionIter::new(self.options_data(), field::OPTIONS)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Next Header.
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    /// Sets Hdr Ext Len.
    #[inline]
    pub fn set_hdr_ext_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HDR_EXT_LEN] = v;
    }

    /// The option area, mutable.
    #[inline]
    pub fn options_data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..end]
    }
}

/// What a node that does not recognise an option must do, from the two high-order bits of
/// its type (RFC 8200 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownAction {
    /// 00: skip the option and continue.
    Skip,
    /// 01: discard the packet.
    Discard,
    /// 10: discard and send ICMP Parameter Problem code 2.
    DiscardAndReport,
    /// 11: discard and send ICMP Parameter Problem code 2 unless the destination is
    /// multicast.
    DiscardAndReportUnlessMulticast,
}

/// One TLV option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionRepr<'a> {
    /// A single padding octet (RFC 8200 §4.2).
    Pad1,
    /// Padding of `2 + n` octets; the value is `n` (RFC 8200 §4.2).
    PadN(u8),
    /// Any other option, kept as it is.
    Other {
        /// Option Type.
        option_type: u8,
        /// Option Data (Opt Data Len octets).
        data: &'a [u8],
    },
}

impl<'a> OptionRepr<'a> {
    /// Parses the option at the start of `b` and returns it with its length in octets.
    pub fn parse(b: &'a [u8]) -> Result<(Self, usize)> {
        check_len("IPv6 option", b, 1)?;
        if b[0] == OPT_PAD1 {
            return Ok((Self::Pad1, 1));
        }
        check_len("IPv6 option", b, 2)?;
        let n = usize::from(b[1]);
        check_len("IPv6 option data", b, 2 + n)?;
        let opt = if b[0] == OPT_PADN {
            Self::PadN(b[1])
        } else {
            Self::Other {
                option_type: b[0],
                data: &b[2..2 + n],
            }
        };
        Ok((opt, 2 + n))
    }

    /// Octets the option occupies.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Pad1 => 1,
            Self::PadN(n) => 2 + usize::from(*n),
            Self::Other { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `b` (padding data is zeros).
    ///
    /// # Panics
    /// If `b` is shorter than [`OptionRepr::buffer_len`], or an `Other` option has more
    /// than 255 octets of data.
    pub fn emit(&self, b: &mut [u8]) {
        match self {
            Self::Pad1 => b[0] = OPT_PAD1,
            Self::PadN(n) => {
                b[0] = OPT_PADN;
                b[1] = *n;
                b[2..2 + usize::from(*n)].fill(0);
            }
            Self::Other { option_type, data } => {
                b[0] = *option_type;
                b[1] = u8::try_from(data.len()).expect("option data longer than 255 octets");
                b[2..2 + data.len()].copy_from_slice(data);
            }
        }
    }

    /// The option type octet.
    #[inline]
    pub fn option_type(&self) -> u8 {
        match self {
            Self::Pad1 => OPT_PAD1,
            Self::PadN(_) => OPT_PADN,
            Self::Other { option_type, .. } => *option_type,
        }
    }

    /// What to do if the option is not recognised (RFC 8200 §4.2).
    #[inline]
    pub fn unknown_action(&self) -> UnknownAction {
        match self.option_type() >> 6 {
            0 => UnknownAction::Skip,
            1 => UnknownAction::Discard,
            2 => UnknownAction::DiscardAndReport,
            _ => UnknownAction::DiscardAndReportUnlessMulticast,
        }
    }

    /// Whether the option data may change en route (third-highest bit, RFC 8200 §4.2).
    #[inline]
    pub fn may_change_en_route(&self) -> bool {
        self.option_type() & 0x20 != 0
    }
}

impl fmt::Display for OptionRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pad1 => write!(f, "Pad1"),
            Self::PadN(n) => write!(f, "PadN({n})"),
            Self::Other { option_type, data } => {
                write!(f, "option {option_type:#04x} len={}", data.len())
            }
        }
    }
}

/// Iterator over TLV options. Yields each option with its offset (relative to the origin
/// given at construction); stops after the first error.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    origin: usize,
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterates the options in `data`; reported offsets are `origin + position in data`.
    #[inline]
    pub fn new(data: &'a [u8], origin: usize) -> Self {
        Self {
            data,
            pos: 0,
            origin,
            failed: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(usize, OptionRepr<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        match OptionRepr::parse(&self.data[self.pos..]) {
            Ok((opt, n)) => {
                let at = self.origin + self.pos;
                self.pos += n;
                Some(Ok((at, opt)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Fills `b` with padding: nothing, Pad1, or `PadN` runs (RFC 8200 §4.2). Also right for
/// mobility options, whose Pad1 and `PadN` have the same encodings (RFC 6275 §6.2.2–§6.2.3).
pub fn fill_padding(b: &mut [u8]) {
    let mut rest = b;
    while !rest.is_empty() {
        if rest.len() == 1 {
            rest[0] = OPT_PAD1;
            return;
        }
        // Leave at least 2 octets for a further PadN rather than a stray single octet.
        let mut n = rest.len().min(257);
        if rest.len() - n == 1 {
            n -= 1;
        }
        rest[0] = OPT_PADN;
        rest[1] = (n - 2) as u8;
        rest[2..n].fill(0);
        rest = &mut rest[n..];
    }
}

/// The parsed options header: Next Header plus the validated option area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Next Header.
    pub next_header: u8,
    /// The option area: well-formed TLVs, `8n + 6` octets long so that the header is a
    /// multiple of 8.
    pub options: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a view; every option must be well formed and end inside the header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Self> {
        packet.check()?;
        let b: &'a [u8] = T::as_ref(packet.buffer);
        let options = &b[field::OPTIONS..packet.header_len()];
        for opt in OptionIter::new(options, field::OPTIONS) {
            opt?;
        }
        Ok(Self {
            next_header: packet.next_header(),
            options,
        })
    }

    /// Octets the header occupies.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        2 + self.options.len()
    }

    /// Iterates the options.
    #[inline]
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter::new(self.options, field::OPTIONS)
    }

    /// Writes the header.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`], or the option area is not
    /// `8n + 6` octets with n < 256.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let len = self.buffer_len();
        assert!(
            len % 8 == 0 && len <= 2048,
            "options header length must be a multiple of 8"
        );
        packet.set_next_header(self.next_header);
        packet.set_hdr_ext_len((len / 8 - 1) as u8);
        packet.options_data_mut().copy_from_slice(self.options);
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPv6 options nh={} [", self.next_header)?;
        for (i, opt) in self.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            match opt {
                Ok((_, o)) => write!(f, "{o}")?,
                Err(e) => write!(f, "{e}")?,
            }
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use hex_literal::hex;
    use proptest::prelude::*;

    // A Destination Options header: NH = TCP, Hdr Ext Len 1 (16 octets): Pad1, a Tunnel
    // Encapsulation Limit (type 4, len 1, limit 4), an unknown skippable option 0x1e with
    // 3 octets, PadN(2).
    static BYTES: [u8; 16] = hex!("06 01 00 04 01 04 1e 03 aabbcc 01 02 0000 00");

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.hdr_ext_len(), 1);
        assert_eq!(p.header_len(), 16);
        let opts: Vec<_> = p.options().map(Result::unwrap).collect();
        assert_eq!(
            opts,
            vec![
                (2, OptionRepr::Pad1),
                (
                    3,
                    OptionRepr::Other {
                        option_type: 4,
                        data: &[4]
                    }
                ),
                (
                    6,
                    OptionRepr::Other {
                        option_type: 0x1e,
                        data: &hex!("aabbcc")
                    }
                ),
                (11, OptionRepr::PadN(2)),
                (15, OptionRepr::Pad1),
            ]
        );
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_header(6);
        p.set_hdr_ext_len(1);
        let o = p.options_data_mut();
        let mut at = 0;
        for opt in [
            OptionRepr::Pad1,
            OptionRepr::Other {
                option_type: 4,
                data: &[4],
            },
            OptionRepr::Other {
                option_type: 0x1e,
                data: &hex!("aabbcc"),
            },
            OptionRepr::PadN(2),
            OptionRepr::Pad1,
        ] {
            opt.emit(&mut o[at..]);
            at += opt.buffer_len();
        }
        assert_eq!(at, 14);
        assert_eq!(b, BYTES);
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.next_header, 6);
        assert_eq!(r.options, &BYTES[2..]);
        assert_eq!(
            r.to_string(),
            "IPv6 options nh=6 [Pad1, option 0x04 len=1, option 0x1e len=3, PadN(2), Pad1]"
        );
    }

    #[test]
    fn emit() {
        let r = Repr {
            next_header: 6,
            options: &BYTES[2..],
        };
        let mut b = [0xa5u8; 16];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, BYTES);
        assert_eq!(r.buffer_len(), 16);
    }

    #[test]
    fn truncated_at_every_length() {
        for n in 0..16 {
            assert!(matches!(
                Packet::new_checked(&BYTES[..n]),
                Err(Error::Truncated { .. })
            ));
        }
    }

    #[test]
    fn option_running_past_the_header() {
        // PadN claiming 7 data octets in a 6-octet option area.
        let b = hex!("06 00 01 07 0000 0000");
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(matches!(Repr::parse(&p), Err(Error::Truncated { .. })));
        // Type octet alone at the very end.
        let b = hex!("06 00 01 02 0000 00 1e");
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(matches!(Repr::parse(&p), Err(Error::Truncated { .. })));
    }

    #[test]
    fn unknown_action_bits() {
        let o = |t| OptionRepr::Other {
            option_type: t,
            data: &[],
        };
        assert_eq!(o(0x1e).unknown_action(), UnknownAction::Skip);
        assert_eq!(o(0x4e).unknown_action(), UnknownAction::Discard);
        assert_eq!(o(0x8e).unknown_action(), UnknownAction::DiscardAndReport);
        assert_eq!(
            o(OPT_HOME_ADDRESS).unknown_action(),
            UnknownAction::DiscardAndReportUnlessMulticast
        );
        assert!(o(0x3e).may_change_en_route());
        assert!(!o(OPT_HOME_ADDRESS).may_change_en_route());
    }

    #[test]
    fn padding_shapes() {
        for n in 0..600 {
            let mut b = vec![0xa5u8; n];
            fill_padding(&mut b);
            let mut pos = 0;
            for opt in OptionIter::new(&b, 0) {
                let (_, o) = opt.unwrap();
                assert!(matches!(o, OptionRepr::Pad1 | OptionRepr::PadN(_)));
                pos += o.buffer_len();
            }
            assert_eq!(pos, n);
        }
    }

    fn arb_option() -> impl Strategy<Value = (u8, Vec<u8>)> {
        (2u8..=255, proptest::collection::vec(any::<u8>(), 0..20))
    }

    proptest! {
        #[test]
        fn roundtrip(nh in any::<u8>(), opts in proptest::collection::vec(arb_option(), 0..5)) {
            let mut area = Vec::new();
            for (t, d) in &opts {
                let o = OptionRepr::Other { option_type: *t, data: d };
                let at = area.len();
                area.resize(at + o.buffer_len(), 0);
                o.emit(&mut area[at..]);
            }
            let pad = (8 - (area.len() + 2) % 8) % 8;
            let at = area.len();
            area.resize(at + pad, 0);
            fill_padding(&mut area[at..]);
            let r = Repr { next_header: nh, options: &area };
            let mut b = vec![0xa5u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
            let back: Vec<_> = r.iter().map(Result::unwrap)
                .filter_map(|(_, o)| match o {
                    OptionRepr::Other { option_type, data } => Some((option_type, data.to_vec())),
                    _ => None,
                }).collect();
            prop_assert_eq!(back, opts);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                if let Ok(r) = Repr::parse(&p) {
                    let _ = r.to_string();
                }
            }
        }
    }
}
