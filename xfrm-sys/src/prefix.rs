//! IPv6 prefixes (`2001:db8::/64`), the selector type of routes and rules.

use std::{fmt, net::Ipv6Addr, str::FromStr};

/// An IPv6 prefix: an address with its host bits cleared, and a length of 0 to 128.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

/// A prefix length above 128, or text that is not `ADDRESS/LENGTH`.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid IPv6 prefix {0:?}")]
pub struct InvalidPrefix(pub String);

impl Ipv6Prefix {
    /// The prefix of length `len` containing `addr`; host bits of `addr` are cleared, so
    /// `new(2001:db8::1, 64)` is `2001:db8::/64`.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, InvalidPrefix> {
        if len > 128 {
            return Err(InvalidPrefix(format!("{addr}/{len}")));
        }
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        Ok(Self {
            addr: Ipv6Addr::from(u128::from(addr) & mask),
            len,
        })
    }

    /// The /128 of one address.
    pub const fn host(addr: Ipv6Addr) -> Self {
        Self { addr, len: 128 }
    }

    /// `::/0`, every address.
    pub const fn any() -> Self {
        Self {
            addr: Ipv6Addr::UNSPECIFIED,
            len: 0,
        }
    }

    /// The network address.
    pub const fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is `::/0`.
    pub const fn is_any(&self) -> bool {
        self.len == 0
    }

    /// Whether `addr` lies inside the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        Self::new(addr, self.len).is_ok_and(|p| p.addr == self.addr)
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = InvalidPrefix;

    /// `ADDRESS/LENGTH`, or a bare address for a /128.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPrefix(s.to_owned());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().map_err(|_| bad())?),
            None => (s, 128),
        };
        Self::new(addr.parse().map_err(|_| bad())?, len).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared() {
        let p = Ipv6Prefix::new("2001:db8::1".parse().unwrap(), 64).unwrap();
        assert_eq!(p.to_string(), "2001:db8::/64");
        let p = Ipv6Prefix::new("2001:db8:ffff::1".parse().unwrap(), 33).unwrap();
        assert_eq!(p.to_string(), "2001:db8:8000::/33");
        assert_eq!(
            Ipv6Prefix::new("2001:db8::1".parse().unwrap(), 0).unwrap(),
            Ipv6Prefix::any()
        );
        assert!(Ipv6Prefix::new(Ipv6Addr::LOCALHOST, 129).is_err());
    }

    #[test]
    fn parse_and_contains() {
        let p: Ipv6Prefix = "2001:db8:1::/48".parse().unwrap();
        assert_eq!(p.prefix_len(), 48);
        assert!(p.contains("2001:db8:1:ffff::9".parse().unwrap()));
        assert!(!p.contains("2001:db8:2::".parse().unwrap()));
        let h: Ipv6Prefix = "2001:db8::7".parse().unwrap();
        assert_eq!(h, Ipv6Prefix::host("2001:db8::7".parse().unwrap()));
        for bad in [
            "2001:db8::/129",
            "2001:db8::/x",
            "nope/64",
            "10.0.0.0/8",
            "",
        ] {
            assert!(bad.parse::<Ipv6Prefix>().is_err(), "{bad}");
        }
        assert!(Ipv6Prefix::any().contains(Ipv6Addr::LOCALHOST));
    }
}
