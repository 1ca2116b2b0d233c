//! Binding Update authentication without IPsec: the RFC 4285 MN-HA Mobility Message
//! Authentication option and the Replay Protection timestamps.
//!
//! RFC 4285 §5.1:
//! ```text
//! Authentication Data = First (96, HMAC_SHA1(MN-HA Shared key, Mobility Data))
//! Mobility Data       = care-of address | home address | MH Data
//! ```
//! where *MH Data* is the Mobility Header from its first octet up to and including the
//! Mobility SPI field of the option, with the Checksum field set to 0. The Header Len
//! octet therefore already counts the authenticator that follows. The same formula
//! authenticates the Binding Acknowledgement (with the mobile node's care-of and home
//! addresses).
//!
//! Signing is done on an emitted header: emit the message with a zero authenticator
//! ([`ZERO_AUTHENTICATOR`]), then call [`sign`], which writes the authenticator and
//! recomputes the checksum.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use shim6_wire::mip6::options::{
    AUTH_FIXED_LEN, AUTH_SUBTYPE_MN_HA, MN_HA_AUTHENTICATOR_LEN, OPT_MOBILITY_MESSAGE_AUTH,
    OptionIter, WireOption,
};
use shim6_wire::mip6::{MobilityOption, Packet, header::options_offset};
use shim6_wire::{Error, Result};

/// A zero authenticator to emit before [`sign`] fills it in.
pub const ZERO_AUTHENTICATOR: [u8; MN_HA_AUTHENTICATOR_LEN] = [0; MN_HA_AUTHENTICATOR_LEN];

/// Default "close enough" tolerance for replay-protection timestamps: 7 s (RFC 4285 §5.1,
/// §6; it SHOULD be greater than 3 s).
pub const DEFAULT_TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(7);

/// SHA-1 block size (RFC 2104 §2: B = 64).
const SHA1_BLOCK: usize = 64;

/// HMAC-SHA1 (RFC 2104) over the concatenation of `parts`.
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    // RFC 2104 §2: keys longer than B are hashed first; then zero-padded to B.
    let mut k = [0u8; SHA1_BLOCK];
    if key.len() > SHA1_BLOCK {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha1::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    let mut out = [0u8; 20];
    out.copy_from_slice(&outer.finalize());
    out
}

/// A shared-key mobility security association between a mobile node and its home agent
/// (RFC 4285 §5.1: mobility SPI, key, HMAC-SHA1, replay protection).
#[derive(Clone, PartialEq, Eq)]
pub struct MnHaKey {
    /// Mobility SPI (0–255 are reserved, RFC 4285 §5.1).
    pub spi: u32,
    /// The shared key (RFC 4285 §5.1 says 16 octets; any non-empty length works).
    pub key: Vec<u8>,
}

impl core::fmt::Debug for MnHaKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        write!(
            f,
            "MnHaKey {{ spi: {}, key: <{} octets> }}",
            self.spi,
            self.key.len()
        )
    }
}

impl MnHaKey {
    /// A security association; `None` for a reserved SPI (0–255) or an empty key
    /// (RFC 4285 §5.1).
    pub fn new(spi: u32, key: Vec<u8>) -> Option<Self> {
        (spi > 255 && !key.is_empty()).then_some(Self { spi, key })
    }
}

/// Where the MN-HA authentication option sits in a Mobility Header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLocation {
    /// The Mobility SPI.
    pub spi: u32,
    /// End of the Mobility SPI field: the authenticated octets are `mh[..spi_end]`.
    pub spi_end: usize,
    /// Length of the Authentication Data after it.
    pub authenticator_len: usize,
}

/// Finds the MN-HA Mobility Message Authentication option in the Mobility Header `mh`
/// (already checked with [`Packet::check`]).
///
/// # Errors
/// A malformed option area; an unknown MH Type (`Unrecognized`).
pub fn find_mn_ha(mh: &[u8]) -> Result<Option<AuthLocation>> {
    let p = Packet::new_checked(mh)?;
    let start = options_offset(p.mh_type()).ok_or(Error::Unrecognized {
        what: "Mobility Header type",
        value: u32::from(p.mh_type()),
    })?;
    let end = p.header_len();
    for opt in OptionIter::new(&mh[start..end], start) {
        let (at, o) = opt?;
        match o {
            WireOption::Option(MobilityOption::MobilityMessageAuth {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi,
                authenticator,
            }) => {
                debug_assert_eq!(mh[at], OPT_MOBILITY_MESSAGE_AUTH);
                return Ok(Some(AuthLocation {
                    spi,
                    spi_end: at + 2 + AUTH_FIXED_LEN,
                    authenticator_len: authenticator.len(),
                }));
            }
            // RFC 4285 §5: with both, MN-HA comes first, "else, the HA MUST discard".
            WireOption::Option(MobilityOption::MobilityMessageAuth { .. }) => {
                return Err(Error::Malformed(
                    "another authentication option before MN-HA (RFC 4285 §5)",
                ));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The MN-HA authenticator of `mh[..spi_end]` (RFC 4285 §5.1): the first 96 bits of
/// HMAC-SHA1(key, `CoA | HoA | MH Data`), the Checksum field counted as 0.
pub fn authenticator(
    key: &[u8],
    coa: &Ipv6Addr,
    hoa: &Ipv6Addr,
    mh: &[u8],
    spi_end: usize,
) -> [u8; MN_HA_AUTHENTICATOR_LEN] {
    // RFC 4285 §5.1: "The Checksum field in the Mobility Header MUST be set to 0".
    let head = &mh[..4];
    let rest = &mh[6..spi_end];
    let mac = hmac_sha1(key, &[&coa.octets(), &hoa.octets(), head, &[0, 0], rest]);
    let mut out = [0u8; MN_HA_AUTHENTICATOR_LEN];
    out.copy_from_slice(&mac[..MN_HA_AUTHENTICATOR_LEN]);
    out
}

/// Signs an emitted Mobility Header: writes the MN-HA authenticator and recomputes the
/// checksum with `(pseudo_src, pseudo_dst)` in the pseudo-header.
///
/// # Errors
/// `Malformed` when `mh` holds no MN-HA option with a 12-octet authenticator; those of
/// [`find_mn_ha`].
pub fn sign(
    mh: &mut [u8],
    key: &MnHaKey,
    coa: &Ipv6Addr,
    hoa: &Ipv6Addr,
    pseudo_src: &Ipv6Addr,
    pseudo_dst: &Ipv6Addr,
) -> Result<()> {
    let loc = find_mn_ha(mh)?
        .filter(|l| l.authenticator_len == MN_HA_AUTHENTICATOR_LEN && l.spi == key.spi)
        .ok_or(Error::Malformed(
            "no MN-HA authentication option with this SPI and a 12-octet authenticator",
        ))?;
    let a = authenticator(&key.key, coa, hoa, mh, loc.spi_end);
    mh[loc.spi_end..loc.spi_end + MN_HA_AUTHENTICATOR_LEN].copy_from_slice(&a);
    Packet::new_unchecked(mh).fill_checksum(pseudo_src, pseudo_dst);
    Ok(())
}

/// Why a message failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthError {
    /// No MN-HA authentication option (RFC 4285 §5: silently discard).
    Missing,
    /// An SPI for which no security association exists for this home address (RFC 4285
    /// §5.1.1: discard).
    UnknownSpi(u32),
    /// The authenticator does not match (RFC 4285 §5.1.1: BA 146 MIPV6-AUTH-FAIL).
    BadAuthenticator,
}

/// Verifies the MN-HA authenticator of `mh` with the key that `lookup` returns for its
/// SPI; returns the SPI on success.
///
/// # Errors
/// [`AuthError`]; a malformed header counts as [`AuthError::Missing`].
pub fn verify<'k>(
    mh: &[u8],
    coa: &Ipv6Addr,
    hoa: &Ipv6Addr,
    lookup: impl FnOnce(u32) -> Option<&'k MnHaKey>,
) -> core::result::Result<u32, AuthError> {
    let loc = find_mn_ha(mh).ok().flatten().ok_or(AuthError::Missing)?;
    let key = lookup(loc.spi).ok_or(AuthError::UnknownSpi(loc.spi))?;
    if loc.authenticator_len != MN_HA_AUTHENTICATOR_LEN {
        return Err(AuthError::BadAuthenticator);
    }
    let want = authenticator(&key.key, coa, hoa, mh, loc.spi_end);
    let got = &mh[loc.spi_end..loc.spi_end + MN_HA_AUTHENTICATOR_LEN];
    // Constant-time comparison: no early exit on the first differing octet.
    let diff = want.iter().zip(got).fold(0u8, |d, (a, b)| d | (a ^ b));
    if diff == 0 {
        Ok(loc.spi)
    } else {
        Err(AuthError::BadAuthenticator)
    }
}

/// A 64-bit NTP-format wall clock (RFC 1305: seconds since 1900 in the high 32 bits,
/// binary fraction in the low 32) driven by the caller's `Instant`s: anchored once, at
/// construction, to the wall-clock time the shell reads, so that the core never reads a
/// clock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpClock {
    anchor: Instant,
    anchor_ntp: u64,
}

impl NtpClock {
    /// A clock that reads `ntp` at `anchor`.
    pub fn new(anchor: Instant, ntp: u64) -> Self {
        Self {
            anchor,
            anchor_ntp: ntp,
        }
    }

    /// The NTP timestamp at `now` (instants before the anchor read as the anchor).
    pub fn at(&self, now: Instant) -> u64 {
        self.anchor_ntp
            .wrapping_add(duration_to_ntp(now.saturating_duration_since(self.anchor)))
    }

    /// Moves the clock so that it reads `ntp` at `now` (RFC 4285 §6: the mobile node
    /// adjusts its timestamp after a BA with status 144).
    pub fn set(&mut self, now: Instant, ntp: u64) {
        self.anchor = now;
        self.anchor_ntp = ntp;
    }
}

/// A duration in NTP units (2^-32 s).
pub fn duration_to_ntp(d: Duration) -> u64 {
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (d.as_secs() << 32).wrapping_add(frac)
}

/// `|a - b|` of two NTP timestamps, as a duration.
pub fn ntp_distance(a: u64, b: u64) -> Duration {
    let d = a.abs_diff(b);
    let nanos = ((d & 0xffff_ffff) * 1_000_000_000) >> 32;
    Duration::new(d >> 32, nanos as u32)
}

/// Emits `repr` into a fresh buffer with `(pseudo_src, pseudo_dst)` in the checksum
/// pseudo-header; if `sa` is given, the last option of `repr` must be an MN-HA
/// authentication option with [`ZERO_AUTHENTICATOR`], which is then filled in over
/// `(coa, hoa)` (RFC 4285 §5.1).
pub fn emit_mh(
    repr: &shim6_wire::mip6::Repr<'_>,
    pseudo_src: &Ipv6Addr,
    pseudo_dst: &Ipv6Addr,
    sa: Option<(&MnHaKey, &Ipv6Addr, &Ipv6Addr)>,
) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Packet::new_unchecked(&mut buf[..]),
        pseudo_src,
        pseudo_dst,
    );
    if let Some((key, coa, hoa)) = sa {
        // The option was placed by the caller with this SPI; `sign` only fails without it.
        let signed = sign(&mut buf, key, coa, hoa, pseudo_src, pseudo_dst);
        debug_assert!(
            signed.is_ok(),
            "emit_mh without an MN-HA option: {signed:?}"
        );
    }
    buf
}

/// The MN-HA option to put last in a message signed with `key` (its authenticator is
/// filled in by [`emit_mh`]).
pub fn mn_ha_option(key: &MnHaKey) -> MobilityOption<'static> {
    MobilityOption::MobilityMessageAuth {
        subtype: AUTH_SUBTYPE_MN_HA,
        spi: key.spi,
        authenticator: &ZERO_AUTHENTICATOR,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hex_literal::hex;
    use shim6_wire::mip6::{BaStatus, BindingAck, BindingUpdate, Message, Repr};

    // Vectors from tests/vectors/gen_auth_vectors.py (Python hmac/hashlib, built from the
    // RFC 4285 and RFC 6275 figures, independently of this code).
    pub(crate) const KEY: [u8; 16] = hex!("000102030405060708090a0b0c0d0e0f");
    pub(crate) const SPI: u32 = 0x100;
    const TS: u64 = 0xe9b1_c2d3_8000_0000;
    static SIGNED_BU: [u8; 48] = hex!(
        "3b050500 d4fa 0007 c000 000f
         01 04 00000000
         0a 08 e9b1c2d380000000
         00
         09 11 01 00000100 9194f57d8fedb2a197792305"
    );
    static SIGNED_BA: [u8; 48] = hex!(
        "3b050600 a928 00 00 0007 000f
         01 04 00000000
         0a 08 e9b1c2d380000000
         00
         09 11 01 00000100 f7d7e1f0e62c8c4998128aa1"
    );

    pub(crate) fn addrs() -> (Ipv6Addr, Ipv6Addr, Ipv6Addr) {
        (
            "2001:db8:1::100".parse().unwrap(),
            "2001:db8:1::1".parse().unwrap(),
            "2001:db8:a::10".parse().unwrap(),
        )
    }

    fn key() -> MnHaKey {
        MnHaKey::new(SPI, KEY.to_vec()).unwrap()
    }

    fn bu_repr() -> Repr<'static> {
        Repr::new(Message::BindingUpdate(BindingUpdate {
            sequence: 7,
            ack: true,
            home_registration: true,
            link_local_compat: false,
            key_mgmt: false,
            lifetime: 15,
            options: vec![MobilityOption::ReplayProtection(TS), mn_ha_option(&key())],
        }))
    }

    #[test]
    fn hmac_sha1_rfc2202() {
        // RFC 2202 §3, test cases 1 and 2.
        assert_eq!(
            hmac_sha1(&[0x0b; 20], &[b"Hi There"]),
            hex!("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        assert_eq!(
            hmac_sha1(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            hex!("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        // Test case 6: an 80-octet key (hashed first).
        assert_eq!(
            hmac_sha1(
                &[0xaa; 80],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            ),
            hex!("aa4ae5e15272d00e95705637ce8a3b55ed402112")
        );
    }

    #[test]
    fn deconstruct_signed_bu() {
        let loc = find_mn_ha(&SIGNED_BU).unwrap().unwrap();
        assert_eq!(
            loc,
            AuthLocation {
                spi: SPI,
                spi_end: 36,
                authenticator_len: 12
            }
        );
        let (hoa, ha, coa) = addrs();
        let p = Packet::new_checked(&SIGNED_BU[..]).unwrap();
        assert!(p.verify_checksum(&hoa, &ha));
        assert_eq!(p.bu_sequence(), 7);
        assert_eq!(
            authenticator(&KEY, &coa, &hoa, &SIGNED_BU, 36),
            SIGNED_BU[36..]
        );
    }

    #[test]
    fn construct_signed_bu() {
        let (hoa, ha, coa) = addrs();
        let mut mh = [0xa5u8; 48];
        mh[..36].copy_from_slice(&SIGNED_BU[..36]);
        mh[4..6].fill(0xa5); // whatever the checksum field holds is ignored
        let a = authenticator(&KEY, &coa, &hoa, &mh, 36);
        mh[36..].copy_from_slice(&a);
        Packet::new_unchecked(&mut mh[..]).fill_checksum(&hoa, &ha);
        assert_eq!(mh, SIGNED_BU);
    }

    #[test]
    fn parse_signed_bu() {
        let (hoa, ha, coa) = addrs();
        let p = Packet::new_checked(&SIGNED_BU[..]).unwrap();
        let r = Repr::parse(&p, &hoa, &ha).unwrap();
        let Message::BindingUpdate(bu) = r.message else {
            panic!("not a BU")
        };
        assert_eq!(bu.options[0], MobilityOption::ReplayProtection(TS));
        assert_eq!(
            bu.options[1],
            MobilityOption::MobilityMessageAuth {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi: SPI,
                authenticator: &hex!("9194f57d8fedb2a197792305"),
            }
        );
        let k = key();
        assert_eq!(verify(&SIGNED_BU, &coa, &hoa, |_| Some(&k)), Ok(SPI));
    }

    #[test]
    fn emit_signed_bu_and_ba() {
        let (hoa, ha, coa) = addrs();
        let k = key();
        assert_eq!(
            emit_mh(&bu_repr(), &hoa, &ha, Some((&k, &coa, &hoa))),
            SIGNED_BU
        );
        let ba = Repr::new(Message::BindingAck(BindingAck {
            status: BaStatus::Accepted,
            key_mgmt: false,
            sequence: 7,
            lifetime: 15,
            options: vec![MobilityOption::ReplayProtection(TS), mn_ha_option(&k)],
        }));
        assert_eq!(emit_mh(&ba, &ha, &hoa, Some((&k, &coa, &hoa))), SIGNED_BA);
        assert_eq!(verify(&SIGNED_BA, &coa, &hoa, |_| Some(&k)), Ok(SPI));
    }

    #[test]
    fn verify_failures() {
        let (hoa, _, coa) = addrs();
        let k = key();
        let other = MnHaKey::new(SPI, vec![1; 16]).unwrap();
        // Wrong key.
        assert_eq!(
            verify(&SIGNED_BU, &coa, &hoa, |_| Some(&other)),
            Err(AuthError::BadAuthenticator)
        );
        // Another care-of or home address: both are in the MAC input.
        let elsewhere: Ipv6Addr = "2001:db8:b::10".parse().unwrap();
        assert_eq!(
            verify(&SIGNED_BU, &elsewhere, &hoa, |_| Some(&k)),
            Err(AuthError::BadAuthenticator)
        );
        assert_eq!(
            verify(&SIGNED_BU, &coa, &elsewhere, |_| Some(&k)),
            Err(AuthError::BadAuthenticator)
        );
        // Every single-bit flip in the authenticated part or the authenticator fails
        // (the checksum field is excluded by RFC 4285 §5.1).
        for i in (0..48).filter(|i| !(4..6).contains(i)) {
            let mut m = SIGNED_BU;
            m[i] ^= 0x01;
            let r = verify(&m, &coa, &hoa, |s| (s == SPI).then_some(&k));
            assert!(r.is_err(), "flip at {i}");
        }
        // Unknown SPI; no option at all.
        assert_eq!(
            verify(&SIGNED_BU, &coa, &hoa, |_| None),
            Err(AuthError::UnknownSpi(SPI))
        );
        let (hoa2, ha2, _) = addrs();
        let plain = emit_mh(
            &Repr::new(Message::BindingUpdate(BindingUpdate {
                sequence: 1,
                ack: true,
                home_registration: true,
                link_local_compat: false,
                key_mgmt: false,
                lifetime: 1,
                options: vec![],
            })),
            &hoa2,
            &ha2,
            None,
        );
        assert_eq!(
            verify(&plain, &coa, &hoa, |_| Some(&k)),
            Err(AuthError::Missing)
        );
        // Reserved SPIs and empty keys are refused (RFC 4285 §5.1).
        assert!(MnHaKey::new(255, vec![1]).is_none());
        assert!(MnHaKey::new(256, vec![]).is_none());
        assert!(!format!("{k:?}").contains("0102"));
    }

    #[test]
    fn mn_aaa_before_mn_ha_is_refused() {
        let (hoa, ha, coa) = addrs();
        let k = key();
        let aaa = MobilityOption::MobilityMessageAuth {
            subtype: shim6_wire::mip6::options::AUTH_SUBTYPE_MN_AAA,
            spi: 3,
            authenticator: &[0; 12],
        };
        let mut repr = bu_repr();
        if let Message::BindingUpdate(b) = &mut repr.message {
            b.options.insert(1, aaa);
        }
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), &hoa, &ha);
        assert!(matches!(find_mn_ha(&buf), Err(Error::Malformed(_))));
        assert_eq!(
            verify(&buf, &coa, &hoa, |_| Some(&k)),
            Err(AuthError::Missing)
        );
        // MN-HA then MN-AAA is the allowed order.
        let mut repr = bu_repr();
        if let Message::BindingUpdate(b) = &mut repr.message {
            b.options.push(aaa);
        }
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), &hoa, &ha);
        sign(&mut buf, &k, &coa, &hoa, &hoa, &ha).unwrap();
        assert_eq!(verify(&buf, &coa, &hoa, |_| Some(&k)), Ok(SPI));
    }

    #[test]
    fn ntp_clock() {
        let t0 = crate::epoch();
        let c = NtpClock::new(t0, 100 << 32);
        assert_eq!(c.at(t0), 100 << 32);
        assert_eq!(
            c.at(t0 + Duration::from_millis(1500)),
            (101 << 32) | 0x8000_0000
        );
        assert_eq!(
            ntp_distance(100 << 32, (107 << 32) | 0x8000_0000),
            Duration::from_millis(7500)
        );
    }
}
