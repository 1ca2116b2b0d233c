//! CGA verification (RFC 3972 §5) and HBA-set membership (RFC 5535 §7.2), each failure
//! naming the step that failed.
//!
//! Three entry points:
//! - [`verify_cga`]: "is `address` the CGA of these parameters?" — every step of RFC 3972
//!   §5, in order, stopping at the first failure. Use it for a peer's ULID (RFC 5533
//!   §5.15.4: the parameters MUST correspond to the ULID).
//! - [`verify_hba_member`]: "does `address` belong to the HBA set these parameters
//!   describe?" — RFC 5535 §7.2: the address's prefix must be in the Multi-Prefix
//!   extension, then §5 runs with the Subnet Prefix replaced by it.
//! - [`verify`]: the first if the prefixes agree, else the second (what `cga-tool verify`
//!   does).
//!
//! Sec 3–7 fail at step 5: RFC 4982 left them without a hash procedure (see [`Sec`]).
//! Unknown extension fields are never interpreted, only hashed (RFC 3972 §5, RFC 4581).
//! None of this parses the public key: a pure HBA's pseudo-key is opaque bytes.

use core::fmt;
use std::net::Ipv6Addr;

use shim6_wire::cga::{Packet, Repr};

use crate::addr::{HASH1_MASK, Prefix64, iid_of, sec_of_iid};
use crate::hash::{hash1, hash2, leading_zero_bits};
use crate::sec::Sec;

/// What kind of parameters an address was verified against (RFC 5535 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// No Multi-Prefix extension: a plain CGA (RFC 3972).
    Cga,
    /// A Multi-Prefix extension with P = 1: a real key, usable for HBA and for CGA
    /// signatures ("CGA-compatible HBA").
    CgaCompatibleHba,
    /// A Multi-Prefix extension with P = 0: a random pseudo-key, no signatures possible.
    Hba,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cga => "CGA",
            Self::CgaCompatibleHba => "CGA-compatible HBA",
            Self::Hba => "HBA",
        })
    }
}

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The Sec value from the address.
    pub sec: Sec,
    /// The parameters' collision count.
    pub collision_count: u8,
    /// The kind of parameters.
    pub kind: AddressKind,
    /// Whether the address was checked as a member of an HBA set (its prefix replaced
    /// the parameters' Subnet Prefix, RFC 5535 §7.2).
    pub via_hba_set: bool,
}

/// Why an address does not verify: the step of RFC 3972 §5 (or RFC 5535 §7.2) that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The parameters do not parse (key DER header, extension framing, Multi-Prefix length).
    #[error("malformed CGA Parameters: {0}")]
    Malformed(shim6_wire::Error),
    /// Step 1: the Collision Count must be 0, 1 or 2.
    #[error("RFC 3972 §5 step 1: collision count {0} is not 0, 1 or 2")]
    CollisionCount(u8),
    /// Step 2: the Subnet Prefix differs from the address's prefix.
    #[error(
        "RFC 3972 §5 step 2: the parameters' subnet prefix {params} is not the address prefix {address}"
    )]
    PrefixMismatch {
        /// The address's upper 64 bits.
        address: Prefix64,
        /// The parameters' Subnet Prefix.
        params: Prefix64,
    },
    /// Steps 3–4: Hash1 differs from the interface identifier (bits 0–2, 6, 7 ignored).
    #[error(
        "RFC 3972 §5 step 4: Hash1 {hash1:016x} does not match the interface identifier \
         {iid:016x} (ignoring Sec, u and g bits)"
    )]
    Hash1Mismatch {
        /// The address's interface identifier.
        iid: u64,
        /// Hash1 computed from the parameters.
        hash1: u64,
    },
    /// Step 5: Sec 3–7 have no registered procedure (RFC 4982 §3), so cannot be verified.
    #[error(
        "RFC 3972 §5 step 5: the address says Sec {0}, which has no registered hash \
         procedure (RFC 4982); only Sec 0, 1, 2 are supported"
    )]
    UnsupportedSec(u8),
    /// Steps 6–7: Hash2 lacks the 16·Sec leading zero bits.
    #[error(
        "RFC 3972 §5 step 7: Hash2 has {zero_bits} leading zero bits, Sec {sec} requires {}",
        16 * u32::from(*sec)
    )]
    Hash2 {
        /// The Sec value from the address.
        sec: u8,
        /// Leading zero bits Hash2 has.
        zero_bits: u32,
    },
    /// RFC 5535 §7.2: the parameters describe no HBA set.
    #[error(
        "RFC 5535 §7.2: the parameters carry no Multi-Prefix extension, so describe no HBA set"
    )]
    NoMultiPrefix,
    /// RFC 5535 §7.2 step 1: the address's prefix is not in the set.
    #[error("RFC 5535 §7.2 step 1: prefix {0} is not in the Multi-Prefix extension")]
    PrefixNotInSet(Prefix64),
}

impl VerifyError {
    /// A short, stable name for the failing step (used in JSON output and logs).
    pub fn step(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::CollisionCount(_) => "collision-count",
            Self::PrefixMismatch { .. } => "subnet-prefix",
            Self::Hash1Mismatch { .. } => "hash1",
            Self::UnsupportedSec(_) => "sec",
            Self::Hash2 { .. } => "hash2",
            Self::NoMultiPrefix => "no-multi-prefix",
            Self::PrefixNotInSet(_) => "prefix-not-in-set",
        }
    }
}

/// The kind of parameters, from the Multi-Prefix extension's P flag.
fn kind<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<AddressKind, VerifyError> {
    match p.multi_prefix() {
        None => Ok(AddressKind::Cga),
        Some(Err(e)) => Err(VerifyError::Malformed(e)),
        Some(Ok(mp)) if mp.public_key_flag() => Ok(AddressKind::CgaCompatibleHba),
        Some(Ok(_)) => Ok(AddressKind::Hba),
    }
}

/// RFC 3972 §5: verifies that `address` is the CGA of `params`, step by step.
pub fn verify_cga(address: &Ipv6Addr, params: &[u8]) -> Result<Verified, VerifyError> {
    let p = Packet::new_checked(params).map_err(VerifyError::Malformed)?;
    // Typed extensions must parse too (a Multi-Prefix of impossible length is malformed).
    let kind = kind(&p)?;
    let mut v = check_steps(address, &p)?;
    v.kind = kind;
    Ok(v)
}

/// Steps 1–7 of RFC 3972 §5 on a checked structure.
fn check_steps<T: AsRef<[u8]>>(address: &Ipv6Addr, p: &Packet<T>) -> Result<Verified, VerifyError> {
    // Step 1: "Check that the collision count in the CGA Parameters data structure is 0,
    // 1, or 2."
    let cc = p.collision_count();
    if cc > 2 {
        return Err(VerifyError::CollisionCount(cc));
    }
    // Step 2: the subnet prefix must equal the address's.
    let prefix = Prefix64::of(address);
    if p.subnet_prefix() != prefix.0 {
        return Err(VerifyError::PrefixMismatch {
            address: prefix,
            params: Prefix64(p.subnet_prefix()),
        });
    }
    // Step 3: Hash1 over the whole structure, unknown extensions included.
    let h1 = hash1(p.as_bytes());
    // Step 4: compare, ignoring bits 0-2 (Sec) and 6-7 (u, g).
    let iid = iid_of(address);
    if h1 & HASH1_MASK != iid & HASH1_MASK {
        return Err(VerifyError::Hash1Mismatch { iid, hash1: h1 });
    }
    // Step 5: Sec from the three leftmost bits of the IID; RFC 4982 defines 0-2 only.
    let sec =
        Sec::new(sec_of_iid(iid)).map_err(|_| VerifyError::UnsupportedSec(sec_of_iid(iid)))?;
    // Steps 6-7: Hash2 needs 16·Sec leading zero bits (never fails for Sec 0).
    if sec != Sec::ZERO {
        let zero_bits = leading_zero_bits(&hash2(p));
        if zero_bits < sec.zero_bits() {
            return Err(VerifyError::Hash2 {
                sec: sec.value(),
                zero_bits,
            });
        }
    }
    Ok(Verified {
        sec,
        collision_count: cc,
        kind: AddressKind::Cga,
        via_hba_set: false,
    })
}

/// RFC 5535 §7.2: verifies that `address` belongs to the HBA set described by `params`
/// (the parameters of any member of the set).
pub fn verify_hba_member(address: &Ipv6Addr, params: &[u8]) -> Result<Verified, VerifyError> {
    let p = Packet::new_checked(params).map_err(VerifyError::Malformed)?;
    let kind = kind(&p)?;
    let prefix = Prefix64::of(address);
    // Step 1: the prefix must be one of the Multi-Prefix extension's.
    match p.multi_prefix() {
        None => return Err(VerifyError::NoMultiPrefix),
        Some(Err(e)) => return Err(VerifyError::Malformed(e)),
        Some(Ok(mp)) if !mp.contains(&prefix.0) => {
            return Err(VerifyError::PrefixNotInSet(prefix));
        }
        Some(Ok(_)) => {}
    }
    // Step 2: replace the Subnet Prefix with the address's and run RFC 3972 §5.
    let mut copy = params.to_vec();
    Packet::new_unchecked(&mut copy[..]).set_subnet_prefix(prefix.0);
    let mut v = check_steps(address, &Packet::new_unchecked(&copy[..]))?;
    v.kind = kind;
    v.via_hba_set = true;
    Ok(v)
}

/// [`verify_cga`] when the address's prefix is the parameters' Subnet Prefix, otherwise
/// [`verify_hba_member`] if the parameters carry a Multi-Prefix extension (otherwise the
/// step-2 failure of [`verify_cga`]).
pub fn verify(address: &Ipv6Addr, params: &[u8]) -> Result<Verified, VerifyError> {
    let p = Packet::new_checked(params).map_err(VerifyError::Malformed)?;
    if p.subnet_prefix() != Prefix64::of(address).0 && p.multi_prefix().is_some() {
        verify_hba_member(address, params)
    } else {
        verify_cga(address, params)
    }
}

/// The parsed parameters, for tools that show them.
pub fn parse(params: &[u8]) -> Result<Repr, VerifyError> {
    Repr::from_bytes(params).map_err(VerifyError::Malformed)
}
