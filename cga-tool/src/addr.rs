//! Subnet prefixes and the interface-identifier arithmetic of RFC 3972 §3–§5.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv6Addr;

use shim6_wire::cga::Prefix;

use crate::error::Error;

/// A 64-bit subnet prefix (RFC 3972 §3 "Subnet Prefix"), written `2001:db8:1::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix64(pub Prefix);

impl Prefix64 {
    /// The upper 64 bits of `addr`.
    pub fn of(addr: &Ipv6Addr) -> Self {
        let mut p = [0u8; 8];
        p.copy_from_slice(&addr.octets()[..8]);
        Self(p)
    }

    /// The octets.
    pub fn octets(&self) -> Prefix {
        self.0
    }

    /// The address `prefix ‖ iid`.
    pub fn with_iid(&self, iid: u64) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&self.0);
        a[8..].copy_from_slice(&iid.to_be_bytes());
        Ipv6Addr::from(a)
    }
}

impl From<Prefix> for Prefix64 {
    fn from(p: Prefix) -> Self {
        Self(p)
    }
}

impl fmt::Display for Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/64", self.with_iid(0))
    }
}

impl FromStr for Prefix64 {
    type Err = Error;

    /// Accepts `ADDR/64` or a bare `ADDR` whose lower 64 bits are zero. Other prefix
    /// lengths are refused: a CGA's subnet prefix is always 64 bits (RFC 3972 §3).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why| Error::Prefix {
            input: s.to_owned(),
            why,
        };
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        if let Some(l) = len {
            match l.parse::<u8>() {
                Ok(64) => {}
                Ok(_) => return Err(bad("the prefix length must be 64 (RFC 3972 §3)")),
                Err(_) => return Err(bad("the prefix length is not a number")),
            }
        }
        let a: Ipv6Addr = addr
            .parse()
            .map_err(|_| bad("not an IPv6 address (expected e.g. 2001:db8:1::/64)"))?;
        if a.octets()[8..] != [0u8; 8] {
            return Err(bad("bits are set after the first 64"));
        }
        Ok(Self::of(&a))
    }
}

/// The interface identifier (lower 64 bits) of an address.
pub fn iid_of(addr: &Ipv6Addr) -> u64 {
    addr.to_bits() as u64
}

/// Sec as encoded in the three leftmost bits of an interface identifier (RFC 3972 §3:
/// `Sec = (IID & 0xe000000000000000) >> 61`).
pub fn sec_of_iid(iid: u64) -> u8 {
    (iid >> 61) as u8
}

/// The bits of the interface identifier that come from Hash1: all but bits 0–2 (Sec)
/// and 6–7 (the "u" and "g" bits) (RFC 3972 §4 step 6, §5 step 4).
pub const HASH1_MASK: u64 = 0x1cff_ffff_ffff_ffff;

/// The interface identifier made from Hash1 and Sec: Sec in bits 0–2, u and g (bits 6
/// and 7) zero, the rest from Hash1 (RFC 3972 §4 step 6).
pub fn iid_from_hash1(hash1: u64, sec: u8) -> u64 {
    (hash1 & HASH1_MASK) | (u64::from(sec & 7) << 61)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_print() {
        let p: Prefix64 = "2001:db8:1::/64".parse().unwrap();
        assert_eq!(p.0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]);
        assert_eq!(p.to_string(), "2001:db8:1::/64");
        assert_eq!(
            "fe80::".parse::<Prefix64>().unwrap().to_string(),
            "fe80::/64"
        );
        for bad in [
            "2001:db8::/48",
            "2001:db8::1/64",
            "zzz/64",
            "2001:db8::/x",
            "10.0.0.0/64",
        ] {
            assert!(
                matches!(bad.parse::<Prefix64>(), Err(Error::Prefix { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn iid_bits() {
        // RFC 3972 App. A: Hash1 fd4a5bf6ffb4ca6c, Sec 1 → IID 3c4a:5bf6:ffb4:ca6c.
        assert_eq!(
            iid_from_hash1(0xfd4a_5bf6_ffb4_ca6c, 1),
            0x3c4a_5bf6_ffb4_ca6c
        );
        assert_eq!(sec_of_iid(0x3c4a_5bf6_ffb4_ca6c), 1);
        let a: Ipv6Addr = "fe80::3c4a:5bf6:ffb4:ca6c".parse().unwrap();
        assert_eq!(iid_of(&a), 0x3c4a_5bf6_ffb4_ca6c);
        assert_eq!(Prefix64::of(&a).with_iid(iid_of(&a)), a);
    }
}
