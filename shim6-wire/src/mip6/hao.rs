//! The Home Address destination option (RFC 6275 §6.3), carried in a Destination
//! Options header (Next Header 60).
//!
//! ```text
//! +---------------+---------------+
//! |  Option Type  | Option Length |   Type 0xC9 (201), Length 16
//! +---------------+---------------+-------------------------------+
//! |                    Home Address (128 bits)                    |
//! +---------------------------------------------------------------+
//! ```
//!
//! Alignment 8n+6 (RFC 6275 §6.3): the *option type* sits 6 octets past a multiple of 8
//! from the start of the Destination Options header, which puts the address on an
//! 8-octet boundary. The usual header is 24 octets:
//! `NH, 02, 01 02 00 00 (PadN 2), C9 10, <home address>` — see [`Repr::emit_dest_opts`].
//! The two high-order bits of the type (11) make a node that does not know the option
//! drop the packet and answer with an ICMP Parameter Problem, code 2 (RFC 8200 §4.2).

use core::fmt;
use std::net::Ipv6Addr;

use crate::error::{Error, Result, check_len};
use crate::ipv6::addr;
use crate::ipv6::options::{self, OPT_HOME_ADDRESS, OptionRepr};

/// Option Type of the Home Address option (RFC 6275 §6.3).
pub const OPTION_TYPE: u8 = OPT_HOME_ADDRESS;
/// Option Length: the 16 octets of the address.
pub const OPTION_DATA_LEN: u8 = 16;
/// Octets of the option, type and length included.
pub const OPTION_LEN: usize = 18;
/// Octets of a Destination Options header holding only this option.
pub const DEST_OPTS_LEN: usize = 24;

/// Byte ranges of the fields (from the option type octet).
mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const LEN: usize = 1;
    pub const HOME_ADDRESS: Range<usize> = 2..18;
}

/// A read/write view of a Home Address option, starting at its type octet.
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

    /// The one validity check: type 0xC9, Option Length 16, 18 octets present.
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("Home Address option", b, 2)?;
        if b[field::TYPE] != OPTION_TYPE {
            return Err(Error::Unrecognized {
                what: "Home Address option type",
                value: u32::from(b[field::TYPE]),
            });
        }
        if b[field::LEN] != OPTION_DATA_LEN {
            return Err(Error::BadLength {
                what: "Home Address option length",
                value: usize::from(b[field::LEN]),
            });
        }
        check_len("Home Address option", b, OPTION_LEN)
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Option Type.
    #[inline]
    pub fn option_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Option Length.
    #[inline]
    pub fn option_len(&self) -> u8 {
        self.buffer.as_ref()[field::LEN]
    }

    /// Home Address.
    #[inline]
    pub fn home_address(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::HOME_ADDRESS])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Option Type.
    #[inline]
    pub fn set_option_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets Option Length.
    #[inline]
    pub fn set_option_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::LEN] = v;
    }

    /// Sets Home Address (RFC 6275 §9.3.1: a receiver swaps it with the source address).
    #[inline]
    pub fn set_home_address(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::HOME_ADDRESS].copy_from_slice(&a.octets());
    }
}

/// The parsed Home Address option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The mobile node's home address.
    pub home_address: Ipv6Addr,
}

impl Repr {
    /// Parses a view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check()?;
        Ok(Self {
            home_address: packet.home_address(),
        })
    }

    /// Always [`OPTION_LEN`].
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        OPTION_LEN
    }

    /// Writes the option (18 octets).
    ///
    /// # Panics
    /// If the buffer is shorter than [`OPTION_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_option_type(OPTION_TYPE);
        packet.set_option_len(OPTION_DATA_LEN);
        packet.set_home_address(self.home_address);
    }

    /// Writes a whole 24-octet Destination Options header holding the option at its
    /// 8n+6 alignment: `next_header, 2, PadN(2), option`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`DEST_OPTS_LEN`].
    pub fn emit_dest_opts(&self, next_header: u8, buf: &mut [u8]) {
        buf[0] = next_header;
        buf[1] = (DEST_OPTS_LEN / 8 - 1) as u8;
        options::fill_padding(&mut buf[2..6]);
        self.emit(&mut Packet::new_unchecked(&mut buf[6..DEST_OPTS_LEN]));
    }

    /// Finds the Home Address option in a checked Destination Options header.
    ///
    /// # Errors
    /// A malformed option area; an option of type 0xC9 with a length other than 16
    /// (`BadLength`); more than one such option (`Malformed`, RFC 6275 §6.3).
    pub fn find<T: AsRef<[u8]>>(dest_opts: &options::Packet<T>) -> Result<Option<Self>> {
        let mut found = None;
        for opt in dest_opts.options() {
            if let (_, OptionRepr::Other { option_type, data }) = opt? {
                if option_type != OPTION_TYPE {
                    continue;
                }
                if data.len() != usize::from(OPTION_DATA_LEN) {
                    return Err(Error::BadLength {
                        what: "Home Address option length",
                        value: data.len(),
                    });
                }
                if found.is_some() {
                    return Err(Error::Malformed(
                        "more than one Home Address option (RFC 6275 §6.3)",
                    ));
                }
                found = Some(Self {
                    home_address: addr(data),
                });
            }
        }
        Ok(found)
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Home Address option {}", self.home_address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    // The option alone, home address 2001:db8:1::100.
    static OPTION: [u8; 18] = hex!("c9 10 20010db8000100000000000000000100");
    // A Destination Options header holding it (NH = Mobility Header, 135).
    static DEST_OPTS: [u8; 24] = hex!("87 02 01 02 0000 c9 10 20010db8000100000000000000000100");

    fn repr() -> Repr {
        Repr {
            home_address: "2001:db8:1::100".parse().unwrap(),
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&OPTION[..]).unwrap();
        assert_eq!(p.option_type(), 0xc9);
        assert_eq!(p.option_len(), 16);
        assert_eq!(p.home_address(), repr().home_address);
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 18];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_option_type(0xc9);
        p.set_option_len(16);
        p.set_home_address(repr().home_address);
        assert_eq!(b, OPTION);
    }

    #[test]
    fn parse() {
        assert_eq!(
            Repr::parse(&Packet::new_checked(&OPTION[..]).unwrap()).unwrap(),
            repr()
        );
        let d = options::Packet::new_checked(&DEST_OPTS[..]).unwrap();
        assert_eq!(Repr::find(&d).unwrap(), Some(repr()));
        assert_eq!(repr().to_string(), "Home Address option 2001:db8:1::100");
    }

    #[test]
    fn emit() {
        let mut b = [0xa5u8; 18];
        repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, OPTION);
        let mut b = [0xa5u8; 24];
        repr().emit_dest_opts(135, &mut b);
        assert_eq!(b, DEST_OPTS);
        // 8n+6: the option type sits at offset 6, the address at 8.
        assert_eq!(b[6], OPTION_TYPE);
    }

    #[test]
    fn truncated_and_wrong() {
        for n in 0..18 {
            assert!(matches!(
                Packet::new_checked(&OPTION[..n]),
                Err(Error::Truncated { .. })
            ));
        }
        let mut b = OPTION;
        b[1] = 15;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::BadLength { value: 15, .. })
        ));
        b[0] = 0xc8;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Unrecognized { .. })
        ));
        // Two Home Address options, and one with a bad length, inside a header.
        let mut two = vec![0x3b, 5, 0x01, 0x02, 0, 0];
        two.extend_from_slice(&OPTION);
        two.extend_from_slice(&[0x01, 0x04, 0, 0, 0, 0]);
        two.extend_from_slice(&OPTION);
        let d = options::Packet::new_checked(&two[..]).unwrap();
        assert!(matches!(Repr::find(&d), Err(Error::Malformed(_))));
        let mut bad = DEST_OPTS;
        bad[7] = 14;
        bad[22..24].copy_from_slice(&[1, 0]);
        let d = options::Packet::new_checked(&bad[..]).unwrap();
        assert!(matches!(Repr::find(&d), Err(Error::BadLength { .. })));
        let d = options::Packet::new_checked(&[59u8, 0, 1, 4, 0, 0, 0, 0][..]).unwrap();
        assert_eq!(Repr::find(&d), Ok(None));
    }

    proptest! {
        #[test]
        fn roundtrip(a in any::<[u8; 16]>(), nh in any::<u8>()) {
            let r = Repr { home_address: a.into() };
            let mut b = [0xa5u8; 24];
            r.emit_dest_opts(nh, &mut b);
            let d = options::Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(d.next_header(), nh);
            prop_assert_eq!(Repr::find(&d).unwrap(), Some(r));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[6..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p).unwrap().to_string();
            }
            if let Ok(d) = options::Packet::new_checked(&b[..]) {
                let _ = Repr::find(&d);
            }
        }
    }
}
