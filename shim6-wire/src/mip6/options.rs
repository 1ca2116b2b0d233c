//! Mobility options (RFC 6275 §6.2): TLVs after the fixed part of a Mobility Header
//! message.
//!
//! ```text
//! +---------------+---------------+------------------------------
//! |  Option Type  | Option Length |   Option Data...
//! +---------------+---------------+------------------------------
//! ```
//!
//! Option Length excludes the type and length octets. Pad1 (type 0) is a single octet.
//! Options are aligned naturally relative to the start of the Mobility Header
//! (RFC 6275 §6.2.1); [`emit_options`] inserts the padding that takes, and pads the
//! whole header to a multiple of 8 octets.
//!
//! | type | option | length | alignment |
//! |---|---|---|---|
//! | 0 | Pad1 (§6.2.2) | — | — |
//! | 1 | `PadN` (§6.2.3) | any | — |
//! | 2 | Binding Refresh Advice (§6.2.4) | 2 | 2n |
//! | 3 | Alternate Care-of Address (§6.2.5) | 16 | 8n+6 |
//! | 4 | Nonce Indices (§6.2.6) | 4 | 2n |
//! | 5 | Binding Authorization Data (§6.2.7) | any | last, ending on 8n (so 8n+2 for the usual 12-octet authenticator) |
//! | 9 | Mobility Message Authentication (RFC 4285 §5) | ≥ 5 | 4n+1; last (only further authentication options may follow) |
//! | 10 | Mobility Message Replay Protection (RFC 4285 §6) | 8 | 8n+2 |
//!
//! The RFC 4285 type numbers are the IANA assignments its §8 states (AUTH-OPTION-TYPE 9,
//! MESG-ID-OPTION-TYPE 10); the authenticator itself is computed by the `mip6` crate.

use core::fmt;
use std::net::Ipv6Addr;

use crate::error::{Error, Result, check_len};
use crate::ipv6::addr;
use crate::ipv6::options::fill_padding;

/// Pad1 (RFC 6275 §6.2.2).
pub const OPT_PAD1: u8 = 0;
/// `PadN` (RFC 6275 §6.2.3).
pub const OPT_PADN: u8 = 1;
/// Binding Refresh Advice (RFC 6275 §6.2.4).
pub const OPT_BINDING_REFRESH_ADVICE: u8 = 2;
/// Alternate Care-of Address (RFC 6275 §6.2.5).
pub const OPT_ALTERNATE_COA: u8 = 3;
/// Nonce Indices (RFC 6275 §6.2.6).
pub const OPT_NONCE_INDICES: u8 = 4;
/// Binding Authorization Data (RFC 6275 §6.2.7).
pub const OPT_BINDING_AUTH_DATA: u8 = 5;
/// Mobility Message Authentication, AUTH-OPTION-TYPE (RFC 4285 §5, §8: IANA value 9).
pub const OPT_MOBILITY_MESSAGE_AUTH: u8 = 9;
/// Mobility Message Replay Protection, MESG-ID-OPTION-TYPE (RFC 4285 §6, §8: IANA value 10).
pub const OPT_REPLAY_PROTECTION: u8 = 10;
/// Authentication option subtype: MN-HA (RFC 4285 §5.1, §8).
pub const AUTH_SUBTYPE_MN_HA: u8 = 1;
/// Authentication option subtype: MN-AAA (RFC 4285 §5.2, §8).
pub const AUTH_SUBTYPE_MN_AAA: u8 = 2;
/// Octets of an MN-HA authenticator: the first 96 bits of HMAC-SHA1 (RFC 4285 §5.1).
pub const MN_HA_AUTHENTICATOR_LEN: usize = 12;
/// Octets of the Subtype and Mobility SPI fields that precede the authenticator.
pub const AUTH_FIXED_LEN: usize = 5;

/// One mobility option other than padding (padding is a wire artefact: [`OptionIter`]
/// reports it, [`parse_options`] drops it and [`emit_options`] regenerates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MobilityOption<'a> {
    /// Binding Refresh Advice: the refresh interval in units of 4 seconds (§6.2.4).
    BindingRefreshAdvice(u16),
    /// Alternate Care-of Address (§6.2.5).
    AlternateCareOfAddress(Ipv6Addr),
    /// Nonce Indices (§6.2.6).
    NonceIndices {
        /// Home Nonce Index.
        home: u16,
        /// Care-of Nonce Index.
        care_of: u16,
    },
    /// Binding Authorization Data: the Authenticator (§6.2.7).
    BindingAuthorizationData(&'a [u8]),
    /// Mobility Message Authentication (RFC 4285 §5): protects the Mobility Header from
    /// its first octet up to and including the Mobility SPI field.
    MobilityMessageAuth {
        /// Subtype: [`AUTH_SUBTYPE_MN_HA`] or [`AUTH_SUBTYPE_MN_AAA`].
        subtype: u8,
        /// Mobility Security Parameter Index (0–255 reserved, RFC 4285 §5.1).
        spi: u32,
        /// Authentication Data (12 octets for MN-HA).
        authenticator: &'a [u8],
    },
    /// Mobility Message Replay Protection (RFC 4285 §6): a 64-bit NTP-format timestamp
    /// (RFC 1305: seconds since 1900 in the high 32 bits, the fraction in the low 32).
    ReplayProtection(u64),
    /// An option this implementation does not know; kept, and skipped by the receiver
    /// (RFC 6275 §6.2.1).
    Unknown {
        /// Option Type (never 0 to 5, 9 or 10).
        option_type: u8,
        /// Option Data.
        data: &'a [u8],
    },
}

/// An option as it appears on the wire, padding included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireOption<'a> {
    /// Pad1.
    Pad1,
    /// `PadN` with this many data octets.
    PadN(u8),
    /// Any other option.
    Option(MobilityOption<'a>),
}

/// Checks that a known option has its fixed length.
fn expect_len(what: &'static str, data: &[u8], len: usize) -> Result<()> {
    if data.len() == len {
        Ok(())
    } else {
        Err(Error::BadLength {
            what,
            value: data.len(),
        })
    }
}

impl<'a> MobilityOption<'a> {
    /// Parses the option of `option_type` from its data octets.
    ///
    /// # Errors
    /// `BadLength` when a known option has the wrong Option Length (RFC 6275 §6.2.4–§6.2.6
    /// fix them).
    pub fn from_type_and_data(option_type: u8, data: &'a [u8]) -> Result<Self> {
        Ok(match option_type {
            OPT_BINDING_REFRESH_ADVICE => {
                expect_len("Binding Refresh Advice option length", data, 2)?;
                Self::BindingRefreshAdvice(u16::from_be_bytes([data[0], data[1]]))
            }
            OPT_ALTERNATE_COA => {
                expect_len("Alternate Care-of Address option length", data, 16)?;
                Self::AlternateCareOfAddress(addr(data))
            }
            OPT_NONCE_INDICES => {
                expect_len("Nonce Indices option length", data, 4)?;
                Self::NonceIndices {
                    home: u16::from_be_bytes([data[0], data[1]]),
                    care_of: u16::from_be_bytes([data[2], data[3]]),
                }
            }
            OPT_BINDING_AUTH_DATA => Self::BindingAuthorizationData(data),
            OPT_MOBILITY_MESSAGE_AUTH => {
                // RFC 4285 §5: Subtype (1) + Mobility SPI (4) + Authentication Data.
                if data.len() < AUTH_FIXED_LEN {
                    return Err(Error::BadLength {
                        what: "Mobility Message Authentication option length",
                        value: data.len(),
                    });
                }
                Self::MobilityMessageAuth {
                    subtype: data[0],
                    spi: u32::from_be_bytes([data[1], data[2], data[3], data[4]]),
                    authenticator: &data[AUTH_FIXED_LEN..],
                }
            }
            OPT_REPLAY_PROTECTION => {
                // RFC 4285 §6: a 64-bit timestamp.
                expect_len("Mobility Message Replay Protection option length", data, 8)?;
                let mut t = [0u8; 8];
                t.copy_from_slice(data);
                Self::ReplayProtection(u64::from_be_bytes(t))
            }
            _ => Self::Unknown { option_type, data },
        })
    }

    /// The Option Type.
    #[inline]
    pub fn option_type(&self) -> u8 {
        match self {
            Self::BindingRefreshAdvice(_) => OPT_BINDING_REFRESH_ADVICE,
            Self::AlternateCareOfAddress(_) => OPT_ALTERNATE_COA,
            Self::NonceIndices { .. } => OPT_NONCE_INDICES,
            Self::BindingAuthorizationData(_) => OPT_BINDING_AUTH_DATA,
            Self::MobilityMessageAuth { .. } => OPT_MOBILITY_MESSAGE_AUTH,
            Self::ReplayProtection(_) => OPT_REPLAY_PROTECTION,
            Self::Unknown { option_type, .. } => *option_type,
        }
    }

    /// Length of the Option Data (the Option Length field).
    #[inline]
    pub fn data_len(&self) -> usize {
        match self {
            Self::BindingRefreshAdvice(_) => 2,
            Self::AlternateCareOfAddress(_) => 16,
            Self::NonceIndices { .. } => 4,
            Self::MobilityMessageAuth { authenticator, .. } => AUTH_FIXED_LEN + authenticator.len(),
            Self::ReplayProtection(_) => 8,
            Self::BindingAuthorizationData(d) | Self::Unknown { data: d, .. } => d.len(),
        }
    }

    /// Octets the option occupies, type and length included.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        2 + self.data_len()
    }

    /// The alignment `(x, y)`: the option must start at `x * n + y` octets from the
    /// start of the Mobility Header (RFC 6275 §6.2).
    #[inline]
    pub fn alignment(&self) -> (usize, usize) {
        match self {
            // §6.2.4, §6.2.6: 2n.
            Self::BindingRefreshAdvice(_) | Self::NonceIndices { .. } => (2, 0),
            // §6.2.5: 8n+6, which puts the address on an 8-octet boundary.
            Self::AlternateCareOfAddress(_) => (8, 6),
            // §6.2.7: no alignment of its own, but it is the last option and the header
            // ends on 8n with no padding after it: start at (−length) mod 8.
            Self::BindingAuthorizationData(d) => (8, (8 - (2 + d.len()) % 8) % 8),
            // RFC 4285 §5: 4n+1, which puts the Mobility SPI on a 4-octet boundary.
            Self::MobilityMessageAuth { .. } => (4, 1),
            // RFC 4285 §6: 8n+2, which puts the timestamp on an 8-octet boundary.
            Self::ReplayProtection(_) => (8, 2),
            Self::Unknown { .. } => (1, 0),
        }
    }

    /// Writes the option at the start of `b`.
    ///
    /// # Panics
    /// If `b` is shorter than [`MobilityOption::buffer_len`] or the data is longer than
    /// 255 octets.
    pub fn emit(&self, b: &mut [u8]) {
        b[0] = self.option_type();
        b[1] = u8::try_from(self.data_len()).expect("mobility option data over 255 octets");
        let d = &mut b[2..2 + self.data_len()];
        match self {
            Self::BindingRefreshAdvice(v) => d.copy_from_slice(&v.to_be_bytes()),
            Self::AlternateCareOfAddress(a) => d.copy_from_slice(&a.octets()),
            Self::NonceIndices { home, care_of } => {
                d[..2].copy_from_slice(&home.to_be_bytes());
                d[2..].copy_from_slice(&care_of.to_be_bytes());
            }
            Self::MobilityMessageAuth {
                subtype,
                spi,
                authenticator,
            } => {
                d[0] = *subtype;
                d[1..AUTH_FIXED_LEN].copy_from_slice(&spi.to_be_bytes());
                d[AUTH_FIXED_LEN..].copy_from_slice(authenticator);
            }
            Self::ReplayProtection(t) => d.copy_from_slice(&t.to_be_bytes()),
            Self::BindingAuthorizationData(data) | Self::Unknown { data, .. } => {
                d.copy_from_slice(data);
            }
        }
    }
}

impl fmt::Display for MobilityOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BindingRefreshAdvice(v) => write!(f, "refresh={}s", u32::from(*v) * 4),
            Self::AlternateCareOfAddress(a) => write!(f, "alt-coa={a}"),
            Self::NonceIndices { home, care_of } => write!(f, "nonces={home}/{care_of}"),
            Self::BindingAuthorizationData(d) => write!(f, "auth({} octets)", d.len()),
            Self::MobilityMessageAuth {
                subtype,
                spi,
                authenticator,
            } => write!(
                f,
                "mesg-auth(subtype {subtype}, spi {spi}, {} octets)",
                authenticator.len()
            ),
            Self::ReplayProtection(t) => write!(f, "timestamp={t:#018x}"),
            Self::Unknown { option_type, data } => {
                write!(f, "option {option_type} ({} octets)", data.len())
            }
        }
    }
}

/// Iterator over the options in an option area, padding included. Offsets are relative
/// to the origin given at construction (the start of the Mobility Header). Stops after
/// the first error.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    origin: usize,
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterates the options in `data`, reporting offsets as `origin + position`.
    #[inline]
    pub fn new(data: &'a [u8], origin: usize) -> Self {
        Self {
            data,
            pos: 0,
            origin,
            failed: false,
        }
    }

    fn parse_one(&mut self) -> Result<(usize, WireOption<'a>)> {
        let b = &self.data[self.pos..];
        let at = self.origin + self.pos;
        if b[0] == OPT_PAD1 {
            self.pos += 1;
            return Ok((at, WireOption::Pad1));
        }
        check_len("mobility option", b, 2)?;
        let n = usize::from(b[1]);
        check_len("mobility option data", b, 2 + n)?;
        self.pos += 2 + n;
        if b[0] == OPT_PADN {
            return Ok((at, WireOption::PadN(b[1])));
        }
        let opt = MobilityOption::from_type_and_data(b[0], &b[2..2 + n])?;
        Ok((at, WireOption::Option(opt)))
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(usize, WireOption<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.parse_one();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Parses an option area into its non-padding options.
///
/// # Errors
/// An option that runs past the area (`Truncated`), a known option with the wrong
/// length (`BadLength`), a Binding Authorization Data option that is not the last
/// option (`Malformed`, RFC 6275 §6.2.7), or a Mobility Message Authentication option
/// followed by anything but another authentication option (`Malformed`, RFC 4285 §5,
/// §5.1, §5.2: the authentication options come last).
pub fn parse_options(data: &[u8], origin: usize) -> Result<Vec<MobilityOption<'_>>> {
    let mut out = Vec::new();
    for opt in OptionIter::new(data, origin) {
        if let WireOption::Option(o) = opt?.1 {
            match out.last() {
                Some(MobilityOption::BindingAuthorizationData(_)) => {
                    return Err(Error::Malformed(
                        "Binding Authorization Data is not the last mobility option",
                    ));
                }
                Some(MobilityOption::MobilityMessageAuth { .. })
                    if !matches!(o, MobilityOption::MobilityMessageAuth { .. }) =>
                {
                    return Err(Error::Malformed(
                        "Mobility Message Authentication is not the last mobility option",
                    ));
                }
                _ => {}
            }
            out.push(o);
        }
    }
    Ok(out)
}

/// Where each option starts when laid out from offset `start` of the Mobility Header,
/// and where the padded header ends. Calls `each(pad_start, pad_len, option_start)`.
fn layout(
    start: usize,
    options: &[MobilityOption<'_>],
    mut each: impl FnMut(usize, usize, usize),
) -> usize {
    let mut pos = start;
    for o in options {
        let (x, y) = o.alignment();
        let pad = (y + x - pos % x) % x;
        each(pos, pad, pos + pad);
        pos += pad + o.buffer_len();
    }
    pos.div_ceil(8) * 8
}

/// Length of the Mobility Header when `options` are laid out from offset `start`
/// (the end of the message's fixed part), alignment and final padding included.
pub fn options_end(start: usize, options: &[MobilityOption<'_>]) -> usize {
    layout(start, options, |_, _, _| {})
}

/// Writes `options` into `mh` (the whole Mobility Header buffer) from offset `start`,
/// each at its natural alignment, and pads with Pad1/`PadN` up to the end returned by
/// [`options_end`], which it returns.
///
/// # Panics
/// If `mh` is shorter than [`options_end`].
pub fn emit_options(mh: &mut [u8], start: usize, options: &[MobilityOption<'_>]) -> usize {
    let end = options_end(start, options);
    let mut i = 0;
    let mut last = start;
    layout(start, options, |pad_at, pad, at| {
        fill_padding(&mut mh[pad_at..pad_at + pad]);
        options[i].emit(&mut mh[at..]);
        last = at + options[i].buffer_len();
        i += 1;
    });
    fill_padding(&mut mh[last..end]);
    end
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    // From offset 12 (a Binding Update's options): Binding Refresh Advice at 12..16
    // (2n); the next 8n+6 is 22, so PadN(4) at 16..22 and the Alternate CoA at 22..40;
    // Nonce Indices at 40..46 (2n); the header is padded to 48 with PadN(0).
    static AREA: [u8; 36] = hex!(
        "02 02 0e10
         01 04 00000000
         03 10 20010db8000000000000000000000099
         04 04 00010002
         01 00"
    );

    fn opts() -> Vec<MobilityOption<'static>> {
        vec![
            MobilityOption::BindingRefreshAdvice(3600),
            MobilityOption::AlternateCareOfAddress("2001:db8::99".parse().unwrap()),
            MobilityOption::NonceIndices {
                home: 1,
                care_of: 2,
            },
        ]
    }

    #[test]
    fn deconstruct() {
        let all: Vec<_> = OptionIter::new(&AREA, 12).map(Result::unwrap).collect();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0], (12, WireOption::Option(opts()[0])));
        assert_eq!(all[1], (16, WireOption::PadN(4)));
        assert_eq!(all[2], (22, WireOption::Option(opts()[1])));
        assert_eq!(all[3], (40, WireOption::Option(opts()[2])));
        assert_eq!(all[4], (46, WireOption::PadN(0)));
    }

    #[test]
    fn construct() {
        let mut mh = [0xa5u8; 48];
        let mut at = 12;
        for (o, pad) in opts().iter().zip([0usize, 6, 0]) {
            fill_padding(&mut mh[at..at + pad]);
            at += pad;
            o.emit(&mut mh[at..]);
            at += o.buffer_len();
        }
        fill_padding(&mut mh[at..48]);
        assert_eq!(mh[12..], AREA);
    }

    #[test]
    fn parse() {
        assert_eq!(parse_options(&AREA, 12).unwrap(), opts());
    }

    #[test]
    fn emit() {
        let mut mh = [0xa5u8; 48];
        assert_eq!(options_end(12, &opts()), 48);
        assert_eq!(emit_options(&mut mh, 12, &opts()), 48);
        assert_eq!(mh[12..], AREA);
        assert_eq!(mh[..12], [0xa5; 12]);
    }

    #[test]
    fn alignment_rules() {
        let coa = MobilityOption::AlternateCareOfAddress(Ipv6Addr::LOCALHOST);
        // A Binding Update with only an Alternate CoA: PadN(0) at 12, CoA at 14..32.
        let mut mh = [0xa5u8; 32];
        assert_eq!(emit_options(&mut mh, 12, &[coa]), 32);
        assert_eq!(mh[12..16], hex!("01 00 03 10"));
        // A 12-octet authenticator ends the header exactly: starts at 8n+2.
        let auth = [7u8; 12];
        let bad = MobilityOption::BindingAuthorizationData(&auth);
        let mut mh = [0xa5u8; 32];
        assert_eq!(emit_options(&mut mh, 12, &[bad]), 32);
        assert_eq!(mh[12..20], hex!("01 04 00000000 05 0c"));
        // Nothing: pad 12 -> 16 with PadN(2) (digest §5.2).
        let mut mh = [0xa5u8; 16];
        assert_eq!(emit_options(&mut mh, 12, &[]), 16);
        assert_eq!(mh[12..], hex!("01 02 0000"));
        // Binding Refresh Advice at an odd offset gets a Pad1.
        let mut mh = [0xa5u8; 16];
        let unk = MobilityOption::Unknown {
            option_type: 9,
            data: &[1],
        };
        emit_options(&mut mh, 8, &[unk, MobilityOption::BindingRefreshAdvice(1)]);
        assert_eq!(mh[8..], hex!("09 01 01 00 02 02 0001"));
    }

    #[test]
    fn errors() {
        // Every cut inside an option: truncated or a wrong-length known option.
        for cut in 0..AREA.len() {
            match parse_options(&AREA[..cut], 12) {
                Ok(v) => assert!(v.len() < 3 || cut >= 46 - 12, "cut {cut}: {v:?}"),
                Err(Error::Truncated { .. }) => {}
                Err(e) => panic!("cut {cut}: {e}"),
            }
        }
        assert!(matches!(
            parse_options(&hex!("03 0f 00000000000000000000000000000000"), 12),
            Err(Error::BadLength { value: 15, .. })
        ));
        assert!(matches!(
            parse_options(&hex!("02 03 000000"), 12),
            Err(Error::BadLength { .. })
        ));
        assert!(matches!(
            parse_options(&hex!("05 02 aaaa 04 04 00010002"), 12),
            Err(Error::Malformed(_))
        ));
    }

    // RFC 4285 options from offset 12 (a Binding Update): the replay-protection option
    // wants 8n+2, so PadN(4) at 12..18 and the timestamp at 18..28; the MN-HA
    // authentication option wants 4n+1, so Pad1 at 28 and the option at 29..48 (its
    // SPI at 32..36, on a 4-octet boundary), ending the header on 8n with no padding.
    // Built by hand from RFC 4285 Figures 2 and 3.
    static AREA_4285: [u8; 36] = hex!(
        "01 04 00000000
         0a 08 e9b1c2d3 80000000
         00
         09 11 01 00001000 0102030405060708090a0b0c"
    );
    const AUTH12: [u8; 12] = hex!("0102030405060708090a0b0c");

    fn opts_4285() -> Vec<MobilityOption<'static>> {
        vec![
            MobilityOption::ReplayProtection(0xe9b1_c2d3_8000_0000),
            MobilityOption::MobilityMessageAuth {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi: 0x1000,
                authenticator: &AUTH12,
            },
        ]
    }

    #[test]
    fn deconstruct_4285() {
        let all: Vec<_> = OptionIter::new(&AREA_4285, 12)
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            all,
            [
                (12, WireOption::PadN(4)),
                (18, WireOption::Option(opts_4285()[0])),
                (28, WireOption::Pad1),
                (29, WireOption::Option(opts_4285()[1])),
            ]
        );
    }

    #[test]
    fn construct_4285() {
        let mut mh = [0xa5u8; 48];
        fill_padding(&mut mh[12..18]);
        opts_4285()[0].emit(&mut mh[18..]);
        fill_padding(&mut mh[28..29]);
        opts_4285()[1].emit(&mut mh[29..]);
        assert_eq!(mh[12..], AREA_4285);
    }

    #[test]
    fn parse_4285() {
        assert_eq!(parse_options(&AREA_4285, 12).unwrap(), opts_4285());
    }

    #[test]
    fn emit_4285() {
        let mut mh = [0xa5u8; 48];
        assert_eq!(options_end(12, &opts_4285()), 48);
        assert_eq!(emit_options(&mut mh, 12, &opts_4285()), 48);
        assert_eq!(mh[12..], AREA_4285);
        assert_eq!(mh[..12], [0xa5; 12]);
    }

    #[test]
    fn errors_4285() {
        // Every cut: truncated, or a known option with the wrong length.
        for cut in 1..AREA_4285.len() {
            match parse_options(&AREA_4285[..cut], 12) {
                Ok(v) => assert!(v.len() < 2, "cut {cut}: {v:?}"),
                Err(Error::Truncated { .. } | Error::BadLength { .. }) => {}
                Err(e) => panic!("cut {cut}: {e}"),
            }
        }
        // Subtype and SPI need 5 octets; the timestamp exactly 8.
        assert!(matches!(
            parse_options(&hex!("09 04 01000010"), 12),
            Err(Error::BadLength { value: 4, .. })
        ));
        assert!(matches!(
            parse_options(&hex!("0a 07 00000000000000"), 12),
            Err(Error::BadLength { value: 7, .. })
        ));
        // RFC 4285 §5.1: the authentication option is the last one.
        assert!(matches!(
            parse_options(&hex!("09 05 0100001000 02 02 0001"), 12),
            Err(Error::Malformed(_))
        ));
        // RFC 4285 §5: MN-HA followed by MN-AAA is fine.
        assert_eq!(
            parse_options(&hex!("09 05 0100001000 09 05 0200000003"), 12)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn display() {
        let s: Vec<_> = opts().iter().map(ToString::to_string).collect();
        assert_eq!(s, ["refresh=14400s", "alt-coa=2001:db8::99", "nonces=1/2"]);
    }

    /// Any valid option list: known options, then unknown ones, at most one
    /// Authorization Data option, last.
    pub(crate) fn arb_options() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        let one = prop_oneof![
            any::<u16>().prop_map(|v| (OPT_BINDING_REFRESH_ADVICE, v.to_be_bytes().to_vec())),
            any::<[u8; 16]>().prop_map(|a| (OPT_ALTERNATE_COA, a.to_vec())),
            any::<[u8; 4]>().prop_map(|a| (OPT_NONCE_INDICES, a.to_vec())),
            any::<u64>().prop_map(|t| (OPT_REPLAY_PROTECTION, t.to_be_bytes().to_vec())),
            (6u8..=255, proptest::collection::vec(any::<u8>(), 0..20))
                .prop_filter("RFC 4285 types are known", |(t, _)| {
                    *t != OPT_MOBILITY_MESSAGE_AUTH && *t != OPT_REPLAY_PROTECTION
                }),
        ];
        (
            proptest::collection::vec(one, 0..5),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 5..24)),
        )
            .prop_map(|(mut v, auth, mesg_auth)| {
                if let Some(a) = auth {
                    v.push((OPT_BINDING_AUTH_DATA, a));
                } else if let Some(a) = mesg_auth {
                    v.push((OPT_MOBILITY_MESSAGE_AUTH, a));
                }
                v
            })
    }

    /// The options of a list produced by [`arb_options`].
    pub(crate) fn to_options(v: &[(u8, Vec<u8>)]) -> Vec<MobilityOption<'_>> {
        v.iter()
            .map(|(t, d)| MobilityOption::from_type_and_data(*t, d).unwrap())
            .collect()
    }

    proptest! {
        #[test]
        fn roundtrip(raw in arb_options(), start in prop_oneof![Just(8usize), Just(12), Just(24)]) {
            let o = to_options(&raw);
            let end = options_end(start, &o);
            prop_assert_eq!(end % 8, 0);
            let mut mh = vec![0xa5u8; end];
            emit_options(&mut mh, start, &o);
            prop_assert_eq!(parse_options(&mh[start..], start).unwrap(), o.clone());
            // Every option sits at its alignment.
            for opt in OptionIter::new(&mh[start..], start) {
                if let (at, WireOption::Option(x)) = opt.unwrap() {
                    let (a, b) = x.alignment();
                    prop_assert_eq!(at % a, b);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = parse_options(&b, 0) {
                for o in v {
                    let _ = o.to_string();
                }
            }
        }
    }
}
