//! IPv6 addresses (`ip -6 addr`): list with flags, scope and lifetimes; add, replace and
//! delete; which addresses are *available* as Shim6 locators (RFC 5534 §3.1).
//!
//! Kernel behaviour worth knowing (observed on 6.18, tested in `tests/rtnetlink.rs`):
//! - An address added without `nodad` on a link with carrier starts `tentative`; Duplicate
//!   Address Detection clears the flag about a second later (one NS, `RetransTimer` 1 s),
//!   announced as a new `RTM_NEWADDR` with the same address.
//! - A duplicate found by DAD leaves the address `tentative dadfailed` (never available).
//! - Deleting an address that is not there, or with the wrong prefix length, is
//!   `EADDRNOTAVAIL`.
//! - Addresses with finite lifetimes are not `permanent`; `preferred_lft 0` makes them
//!   `deprecated`. The kernel deletes an address when its valid lifetime ends.
//! - Setting a link administratively down deletes **all** its IPv6 addresses, permanent
//!   ones included, and they do not come back on up (`net.ipv6.conf.*.keep_addr_on_down`
//!   = 0, the default). A carrier loss (the veth peer going down) keeps them.

use std::{fmt, net::Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo},
};

use crate::{DecodeError, Error, Handle, Ipv6Prefix, Result};

/// Address flags (`IFA_F_*`, `include/uapi/linux/if_addr.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AddressFlags(u32);

impl AddressFlags {
    /// `IFA_F_TEMPORARY` (same bit as `IFA_F_SECONDARY`): an RFC 8981 temporary address.
    pub const TEMPORARY: Self = Self(0x01);
    /// `IFA_F_NODAD`: no Duplicate Address Detection.
    pub const NODAD: Self = Self(0x02);
    /// `IFA_F_OPTIMISTIC`: RFC 4429 optimistic DAD in progress (usable).
    pub const OPTIMISTIC: Self = Self(0x04);
    /// `IFA_F_DADFAILED`: DAD found a duplicate.
    pub const DADFAILED: Self = Self(0x08);
    /// `IFA_F_HOMEADDRESS`: a Mobile IPv6 home address.
    pub const HOMEADDRESS: Self = Self(0x10);
    /// `IFA_F_DEPRECATED`: preferred lifetime over.
    pub const DEPRECATED: Self = Self(0x20);
    /// `IFA_F_TENTATIVE`: DAD not finished (RFC 4862 §5.4).
    pub const TENTATIVE: Self = Self(0x40);
    /// `IFA_F_PERMANENT`: configured by hand with infinite lifetimes.
    pub const PERMANENT: Self = Self(0x80);
    /// `IFA_F_MANAGETEMPADDR`.
    pub const MANAGETEMPADDR: Self = Self(0x100);
    /// `IFA_F_NOPREFIXROUTE`: no prefix route is added with the address.
    pub const NOPREFIXROUTE: Self = Self(0x200);
    /// `IFA_F_MCAUTOJOIN`.
    pub const MCAUTOJOIN: Self = Self(0x400);
    /// `IFA_F_STABLE_PRIVACY`: an RFC 7217 address.
    pub const STABLE_PRIVACY: Self = Self(0x800);

    const NAMES: [(Self, &'static str); 12] = [
        (Self::TEMPORARY, "temporary"),
        (Self::NODAD, "nodad"),
        (Self::OPTIMISTIC, "optimistic"),
        (Self::DADFAILED, "dadfailed"),
        (Self::HOMEADDRESS, "home"),
        (Self::DEPRECATED, "deprecated"),
        (Self::TENTATIVE, "tentative"),
        (Self::PERMANENT, "permanent"),
        (Self::MANAGETEMPADDR, "mngtmpaddr"),
        (Self::NOPREFIXROUTE, "noprefixroute"),
        (Self::MCAUTOJOIN, "autojoin"),
        (Self::STABLE_PRIVACY, "stable-privacy"),
    ];

    /// No flag.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// From raw bits; unknown bits are kept.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for AddressFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for AddressFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// Space-separated names, as `ip -6 addr` prints them (`"nodad permanent"`); unknown
/// bits in hex.
impl fmt::Display for AddressFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut sep = "";
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = " ";
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            write!(f, "{sep}{rest:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AddressFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AddressFlags({self})")
    }
}

/// Address scope (`RT_SCOPE_*`, `include/uapi/linux/rtnetlink.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Scope {
    /// `RT_SCOPE_UNIVERSE` (0): global.
    Global,
    /// `RT_SCOPE_SITE` (200): deprecated site-local.
    Site,
    /// `RT_SCOPE_LINK` (253): link-local.
    Link,
    /// `RT_SCOPE_HOST` (254): loopback.
    Host,
    /// `RT_SCOPE_NOWHERE` (255).
    Nowhere,
    /// Any other value.
    Other(u8),
}

impl From<u8> for Scope {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Global,
            200 => Self::Site,
            253 => Self::Link,
            254 => Self::Host,
            255 => Self::Nowhere,
            v => Self::Other(v),
        }
    }
}

impl From<Scope> for u8 {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(v) => v,
        }
    }
}

/// `INFINITY_LIFE_TIME` (include/net/addrconf.h): the kernel's "forever".
const INFINITY_LIFE_TIME: u32 = 0xffff_ffff;

/// An address lifetime in seconds, as the kernel reports it: the time *remaining* when
/// the message was sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Lifetime {
    /// Never expires (`forever`).
    Forever,
    /// Seconds left.
    Seconds(u32),
}

impl Lifetime {
    fn from_raw(v: u32) -> Self {
        if v == INFINITY_LIFE_TIME {
            Self::Forever
        } else {
            Self::Seconds(v)
        }
    }

    fn raw(self) -> u32 {
        match self {
            Self::Forever => INFINITY_LIFE_TIME,
            // A finite lifetime equal to the infinity marker would read back as forever;
            // one second less is the longest finite lifetime there is.
            Self::Seconds(s) => s.min(INFINITY_LIFE_TIME - 1),
        }
    }

    /// Whether no time is left.
    pub fn is_expired(self) -> bool {
        self == Self::Seconds(0)
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forever => f.write_str("forever"),
            Self::Seconds(s) => write!(f, "{s}sec"),
        }
    }
}

/// Global unicast (`2000::/3`, RFC 4291 §2.4) or unique local (`fc00::/7`, RFC 4193): the
/// address classes RFC 5534 §3.1 lets be locators. Link-local, site-local, loopback,
/// multicast and the unspecified address are not.
pub fn is_global_unicast_or_ula(addr: Ipv6Addr) -> bool {
    let first = addr.segments()[0];
    first & 0xe000 == 0x2000 || first & 0xfe00 == 0xfc00
}

/// An IPv6 address assigned to an interface, as the kernel reports it (`RTM_NEWADDR`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Address {
    /// Interface index (`ifa_index`).
    pub index: u32,
    /// The address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub address: Ipv6Addr,
    /// Prefix length (`ifa_prefixlen`).
    pub prefix_len: u8,
    /// Scope (`ifa_scope`).
    pub scope: Scope,
    /// Flags (`IFA_FLAGS`, else the 8-bit `ifa_flags`).
    pub flags: AddressFlags,
    /// Valid lifetime left (`IFA_CACHEINFO`); [`Lifetime::Forever`] without cache info.
    pub valid_lifetime: Lifetime,
    /// Preferred lifetime left (`IFA_CACHEINFO`).
    pub preferred_lifetime: Lifetime,
}

impl Address {
    /// Decodes an `RTM_NEWADDR` / `RTM_DELADDR` message; anything but `AF_INET6` is an
    /// error.
    pub fn from_message(msg: &AddressMessage) -> Result<Self, DecodeError> {
        let ctx = || format!("RTM_NEWADDR for ifindex {}", msg.header.index);
        if msg.header.family != AddressFamily::Inet6 {
            return Err(DecodeError::new(
                ctx(),
                format!("family {:?}, expected AF_INET6", msg.header.family),
            ));
        }
        if msg.header.prefix_len > 128 {
            return Err(DecodeError::new(
                ctx(),
                format!("prefix length {} above 128", msg.header.prefix_len),
            ));
        }
        let mut local = None;
        let mut address = None;
        let mut flags = None;
        let mut cache = None;
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                AddressAttribute::Flags(f) => flags = Some(AddressFlags(f.bits())),
                AddressAttribute::CacheInfo(c) => cache = Some(*c),
                _ => {}
            }
        }
        // For IPv6, IFA_LOCAL appears only with a peer address, and is then the local one.
        let ip = local
            .or(address)
            .ok_or_else(|| DecodeError::new(ctx(), "no IFA_ADDRESS or IFA_LOCAL"))?;
        let std::net::IpAddr::V6(ip) = ip else {
            return Err(DecodeError::new(
                ctx(),
                format!("IPv4 address {ip} in AF_INET6"),
            ));
        };
        let (valid, preferred) = cache.map_or((INFINITY_LIFE_TIME, INFINITY_LIFE_TIME), |c| {
            (c.ifa_valid, c.ifa_preferred)
        });
        Ok(Self {
            index: msg.header.index,
            address: ip,
            prefix_len: msg.header.prefix_len,
            scope: Scope::from(u8::from(msg.header.scope)),
            flags: flags.unwrap_or(AddressFlags(u32::from(msg.header.flags.bits()))),
            valid_lifetime: Lifetime::from_raw(valid),
            preferred_lifetime: Lifetime::from_raw(preferred),
        })
    }

    /// The on-link prefix of the address.
    pub fn prefix(&self) -> Ipv6Prefix {
        // prefix_len <= 128 is checked by `from_message`; a hand-built value above is
        // clamped rather than panicking.
        Ipv6Prefix::new(self.address, self.prefix_len.min(128))
            .unwrap_or_else(|_| Ipv6Prefix::host(self.address))
    }

    /// Whether the address is *available* in the sense of RFC 5534 §3.1 (digest §2.1), as
    /// far as the kernel's view tells: global unicast or ULA, global scope, not tentative
    /// (optimistic is fine), not DAD-failed, valid lifetime not over. "Assigned to an
    /// interface" holds for anything the kernel reports; "allowed by policy" is the
    /// caller's part.
    ///
    /// Lifetimes are those in the message that reported the address; the kernel deletes
    /// the address (and says so) when its valid lifetime ends, so a [`Monitor`]'s view
    /// stays right without timers.
    ///
    /// [`Monitor`]: crate::Monitor
    pub fn is_available(&self) -> bool {
        let optimistic = self.flags.contains(AddressFlags::OPTIMISTIC);
        // RFC 5534 §3.1: "not tentative in the sense of RFC 4862"; RFC 4429 optimistic
        // addresses are usable although the kernel also marks them tentative.
        let tentative = self.flags.contains(AddressFlags::TENTATIVE) && !optimistic;
        is_global_unicast_or_ula(self.address)
            && self.scope == Scope::Global
            && !tentative
            && !self.flags.contains(AddressFlags::DADFAILED)
            && !self.valid_lifetime.is_expired()
    }
}

/// The available addresses among `addrs` ([`Address::is_available`]).
pub fn available(addrs: &[Address]) -> impl Iterator<Item = &Address> {
    addrs.iter().filter(|a| a.is_available())
}

/// What to add: `ip -6 addr add ADDRESS/PREFIX_LEN dev INDEX [nodad] [noprefixroute]
/// [valid_lft V preferred_lft P]`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddressRequest {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub address: Ipv6Addr,
    /// Prefix length (at most 128).
    pub prefix_len: u8,
    /// Flags to request; only `NODAD`, `NOPREFIXROUTE`, `HOMEADDRESS`,
    /// `MANAGETEMPADDR`, `MCAUTOJOIN` and `OPTIMISTIC` mean anything to the kernel here.
    pub flags: AddressFlags,
    /// Valid lifetime; `None` means forever.
    pub valid_lifetime: Option<Lifetime>,
    /// Preferred lifetime; `None` means forever.
    pub preferred_lifetime: Option<Lifetime>,
}

impl AddressRequest {
    /// `ADDRESS/PREFIX_LEN` on `index`, with DAD and infinite lifetimes.
    pub fn new(index: u32, address: Ipv6Addr, prefix_len: u8) -> Self {
        Self {
            index,
            address,
            prefix_len,
            flags: AddressFlags::empty(),
            valid_lifetime: None,
            preferred_lifetime: None,
        }
    }

    /// Skip Duplicate Address Detection (`IFA_F_NODAD`): usable at once.
    pub fn nodad(mut self) -> Self {
        self.flags |= AddressFlags::NODAD;
        self
    }

    /// Do not add the on-link prefix route (`IFA_F_NOPREFIXROUTE`).
    pub fn noprefixroute(mut self) -> Self {
        self.flags |= AddressFlags::NOPREFIXROUTE;
        self
    }

    /// Finite lifetimes (`valid_lft`, `preferred_lft`).
    pub fn lifetimes(mut self, valid: Lifetime, preferred: Lifetime) -> Self {
        self.valid_lifetime = Some(valid);
        self.preferred_lifetime = Some(preferred);
        self
    }

    fn describe(&self, verb: &str) -> String {
        format!(
            "{verb} address {}/{} dev index {}",
            self.address, self.prefix_len, self.index
        )
    }
}

fn header(index: u32, prefix_len: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet6;
    msg.header.prefix_len = prefix_len;
    msg.header.scope = AddressScope::Universe;
    msg.header.index = index;
    msg
}

/// The `RTM_NEWADDR` body for `req`, attribute for attribute what iproute2 sends:
/// `IFA_LOCAL`, then `IFA_FLAGS` when a flag does not fit the 8-bit header field,
/// `IFA_ADDRESS`, and `IFA_CACHEINFO` when a lifetime is finite.
pub(crate) fn new_message(req: &AddressRequest) -> AddressMessage {
    let mut msg = header(req.index, req.prefix_len);
    let ip = std::net::IpAddr::V6(req.address);
    msg.attributes.push(AddressAttribute::Local(ip));
    match u8::try_from(req.flags.bits()) {
        Ok(small) => msg.header.flags = AddressHeaderFlags::from_bits_retain(small),
        Err(_) => msg.attributes.push(AddressAttribute::Flags(
            netlink_packet_route::address::AddressFlags::from_bits_retain(req.flags.bits()),
        )),
    }
    msg.attributes.push(AddressAttribute::Address(ip));
    if req.valid_lifetime.is_some() || req.preferred_lifetime.is_some() {
        let mut cache = CacheInfo::default();
        cache.ifa_valid = req.valid_lifetime.unwrap_or(Lifetime::Forever).raw();
        cache.ifa_preferred = req.preferred_lifetime.unwrap_or(Lifetime::Forever).raw();
        msg.attributes.push(AddressAttribute::CacheInfo(cache));
    }
    msg
}

/// The `RTM_DELADDR` body: `IFA_LOCAL` and `IFA_ADDRESS`, as `ip -6 addr del` sends it.
pub(crate) fn del_message(index: u32, address: Ipv6Addr, prefix_len: u8) -> AddressMessage {
    let mut msg = header(index, prefix_len);
    let ip = std::net::IpAddr::V6(address);
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    msg
}

pub(crate) fn dump_message() -> RouteNetlinkMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet6;
    RouteNetlinkMessage::GetAddress(msg)
}

/// Decodes the `RTM_NEWADDR` messages of a dump.
pub(crate) fn decode_all(msgs: Vec<RouteNetlinkMessage>, op: &str) -> Result<Vec<Address>> {
    msgs.into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) => Some(a),
            _ => None,
        })
        .map(|a| {
            Address::from_message(&a).map_err(|source| Error::Decode {
                op: op.to_owned(),
                source,
            })
        })
        .collect()
}

/// Address operations (`ip -6 addr`).
impl Handle {
    /// `ip -6 addr show`: every IPv6 address of the namespace.
    pub async fn addresses(&self) -> Result<Vec<Address>> {
        let op = "list IPv6 addresses";
        decode_all(self.dump(dump_message(), op).await?, op)
    }

    /// `ip -6 addr add`. An address already on the interface is `EEXIST`
    /// ([`Error::is_already_exists`]), even with another prefix length.
    pub async fn add_address(&self, req: &AddressRequest) -> Result<()> {
        let op = req.describe("add");
        self.request(
            RouteNetlinkMessage::NewAddress(new_message(req)),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip -6 addr replace`: adds the address, or updates the flags and lifetimes of the
    /// one already there.
    pub async fn replace_address(&self, req: &AddressRequest) -> Result<()> {
        let op = req.describe("replace");
        self.request(
            RouteNetlinkMessage::NewAddress(new_message(req)),
            NLM_F_CREATE | NLM_F_REPLACE,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip -6 addr del ADDRESS/PREFIX_LEN dev INDEX`. A missing address (or a wrong prefix
    /// length) is `EADDRNOTAVAIL` ([`Error::is_not_found`]).
    pub async fn delete_address(
        &self,
        index: u32,
        address: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<()> {
        let op = format!("delete address {address}/{prefix_len} dev index {index}");
        self.request(
            RouteNetlinkMessage::DelAddress(del_message(index, address, prefix_len)),
            0,
            &op,
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{emit, parse};
    use hex_literal::hex;

    // Captured with `strace -e write=3 -e read=3` around iproute2 6.1 on kernel 6.18, in a
    // namespace where veth `va` is ifindex 3.

    /// `ip -6 addr add 2001:db8:1::1/64 dev va nodad` (`RTM_NEWADDR`, `NLM_F_REQUEST |
    /// NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE`).
    const ADD_NODAD: [u8; 64] = hex!(
        "40000000 1400 0506 3a84016b 00000000"
        "0a 40 02 00 03000000"
        "1400 0200 20010db8000100000000000000000001"
        "1400 0100 20010db8000100000000000000000001"
    );

    /// `ip -6 addr add 2001:db8:1::5/64 dev va nodad noprefixroute valid_lft 3600
    /// preferred_lft 1800`: the flags no longer fit the header, so `IFA_FLAGS` = 0x202.
    const ADD_FULL: [u8; 92] = hex!(
        "5c000000 1400 0506 3385016b 00000000"
        "0a 40 00 00 03000000"
        "1400 0200 20010db8000100000000000000000005"
        "0800 0800 02020000"
        "1400 0100 20010db8000100000000000000000005"
        "1400 0600 08070000 100e0000 00000000 00000000"
    );

    /// `ip -6 addr del 2001:db8:1::1/64 dev va` (`RTM_DELADDR`).
    const DEL: [u8; 64] = hex!(
        "40000000 1500 0500 3385016b 00000000"
        "0a 40 00 00 03000000"
        "1400 0200 20010db8000100000000000000000001"
        "1400 0100 20010db8000100000000000000000001"
    );

    /// From the kernel's answer to `ip -6 addr show dev va`: `2001:db8:1::6/64` added with
    /// `valid_lft 3600 preferred_lft 0`, hence `deprecated tentative` (DAD running).
    const DUMP_DEPRECATED_TENTATIVE: [u8; 72] = hex!(
        "48000000 1400 2200 3485016b 806f0000"
        "0a 40 60 00 03000000"
        "1400 0100 20010db8000100000000000000000006"
        "1400 0600 00000000 100e0000 8a790100 8a790100"
        "0800 0800 60000000"
    );

    /// Same dump: `2001:db8:1::5/64` from `ADD_FULL`.
    const DUMP_NODAD_NOPREFIXROUTE: [u8; 72] = hex!(
        "48000000 1400 2200 3485016b 806f0000"
        "0a 40 02 00 03000000"
        "1400 0100 20010db8000100000000000000000005"
        "1400 0600 08070000 100e0000 89790100 89790100"
        "0800 0800 02020000"
    );

    /// Same dump: the kernel's EUI-64 link-local address (`IFA_PROTO` 3 = `kernel_ll`).
    const DUMP_LINK_LOCAL: [u8; 80] = hex!(
        "50000000 1400 2200 3485016b 806f0000"
        "0a 40 80 fd 03000000"
        "1400 0100 fe80000000000000f0ffe0fffe6e7e6b"
        "1400 0600 ffffffff ffffffff 20180100 20180100"
        "0800 0800 80000000"
        "0500 0b00 03000000"
    );

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn decode(bytes: &[u8]) -> Address {
        match parse(bytes) {
            RouteNetlinkMessage::NewAddress(m) => Address::from_message(&m).unwrap(),
            other => panic!("not RTM_NEWADDR: {other:?}"),
        }
    }

    #[test]
    fn add_nodad_emits_what_ip_sends() {
        let req = AddressRequest::new(3, addr("2001:db8:1::1"), 64).nodad();
        let msg = RouteNetlinkMessage::NewAddress(new_message(&req));
        assert_eq!(emit(&msg, 0x0605, 0x6b01843a), ADD_NODAD);
    }

    #[test]
    fn add_with_wide_flags_and_lifetimes_emits_what_ip_sends() {
        let req = AddressRequest::new(3, addr("2001:db8:1::5"), 64)
            .nodad()
            .noprefixroute()
            .lifetimes(Lifetime::Seconds(3600), Lifetime::Seconds(1800));
        let msg = RouteNetlinkMessage::NewAddress(new_message(&req));
        assert_eq!(emit(&msg, 0x0605, 0x6b018533), ADD_FULL);
    }

    #[test]
    fn add_requests_parse_back_to_the_same_message() {
        let req = AddressRequest::new(3, addr("2001:db8:1::5"), 64)
            .nodad()
            .noprefixroute()
            .lifetimes(Lifetime::Seconds(3600), Lifetime::Seconds(1800));
        assert_eq!(
            parse(&ADD_FULL),
            RouteNetlinkMessage::NewAddress(new_message(&req))
        );
        let req = AddressRequest::new(3, addr("2001:db8:1::1"), 64).nodad();
        assert_eq!(
            parse(&ADD_NODAD),
            RouteNetlinkMessage::NewAddress(new_message(&req))
        );
    }

    #[test]
    fn delete_emits_what_ip_sends() {
        let msg = RouteNetlinkMessage::DelAddress(del_message(3, addr("2001:db8:1::1"), 64));
        assert_eq!(emit(&msg, 0x0005, 0x6b018533), DEL);
        assert_eq!(parse(&DEL), msg);
    }

    #[test]
    fn kernel_address_with_lifetimes_decodes() {
        let a = decode(&DUMP_DEPRECATED_TENTATIVE);
        assert_eq!(
            a,
            Address {
                index: 3,
                address: addr("2001:db8:1::6"),
                prefix_len: 64,
                scope: Scope::Global,
                flags: AddressFlags::DEPRECATED | AddressFlags::TENTATIVE,
                valid_lifetime: Lifetime::Seconds(3600),
                preferred_lifetime: Lifetime::Seconds(0),
            }
        );
        assert_eq!(a.flags.to_string(), "deprecated tentative");
        // Tentative: not yet a locator. Deprecated alone would not matter.
        assert!(!a.is_available());
        let done = Address {
            flags: AddressFlags::DEPRECATED,
            ..a
        };
        assert!(done.is_available());
    }

    #[test]
    fn kernel_address_flags_come_from_ifa_flags() {
        let a = decode(&DUMP_NODAD_NOPREFIXROUTE);
        assert_eq!(a.flags, AddressFlags::NODAD | AddressFlags::NOPREFIXROUTE);
        assert_eq!(a.valid_lifetime, Lifetime::Seconds(3600));
        assert_eq!(a.preferred_lifetime, Lifetime::Seconds(1800));
        assert_eq!(a.prefix().to_string(), "2001:db8:1::/64");
        assert!(a.is_available());
    }

    #[test]
    fn kernel_link_local_decodes_and_is_not_available() {
        let a = decode(&DUMP_LINK_LOCAL);
        assert_eq!(a.address, addr("fe80::f0ff:e0ff:fe6e:7e6b"));
        assert_eq!(a.scope, Scope::Link);
        assert_eq!(a.flags, AddressFlags::PERMANENT);
        assert_eq!(a.valid_lifetime, Lifetime::Forever);
        assert_eq!(a.preferred_lifetime.to_string(), "forever");
        assert!(!a.is_available());
    }

    #[test]
    fn kernel_messages_reemit_byte_for_byte() {
        for bytes in [
            &DUMP_DEPRECATED_TENTATIVE[..],
            &DUMP_NODAD_NOPREFIXROUTE[..],
            &DUMP_LINK_LOCAL[..],
        ] {
            let msg = parse(bytes);
            let seq = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
            let mut out = emit(&msg, 0x0022, seq);
            // The dump's port id is the receiving socket's, not part of the message body.
            out[12..16].copy_from_slice(&bytes[12..16]);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn availability_follows_rfc5534_section_3_1() {
        let base = Address {
            index: 1,
            address: addr("2001:db8::1"),
            prefix_len: 64,
            scope: Scope::Global,
            flags: AddressFlags::PERMANENT,
            valid_lifetime: Lifetime::Forever,
            preferred_lifetime: Lifetime::Forever,
        };
        assert!(base.is_available());
        let ula = Address {
            address: addr("fd00::1"),
            ..base.clone()
        };
        assert!(ula.is_available());
        let with = |flags| Address {
            flags,
            ..base.clone()
        };
        assert!(!with(AddressFlags::TENTATIVE).is_available());
        assert!(with(AddressFlags::TENTATIVE | AddressFlags::OPTIMISTIC).is_available());
        assert!(!with(AddressFlags::TENTATIVE | AddressFlags::DADFAILED).is_available());
        assert!(!with(AddressFlags::DADFAILED).is_available());
        assert!(with(AddressFlags::DEPRECATED).is_available());
        let expired = Address {
            valid_lifetime: Lifetime::Seconds(0),
            ..base.clone()
        };
        assert!(!expired.is_available());
        for a in [
            "fe80::1",
            "fec0::1",
            "::1",
            "ff02::1",
            "::",
            "::ffff:192.0.2.1",
        ] {
            let other = Address {
                address: addr(a),
                ..base.clone()
            };
            assert!(!other.is_available(), "{a}");
        }
        let link_scope = Address {
            scope: Scope::Link,
            ..base.clone()
        };
        assert!(!link_scope.is_available());
        let list = [base.clone(), expired, ula.clone()];
        assert_eq!(available(&list).cloned().collect::<Vec<_>>(), [base, ula]);
    }

    #[test]
    fn decode_errors_name_the_problem() {
        let mut msg = header(4, 64);
        let err = Address::from_message(&msg).unwrap_err();
        assert_eq!(err.detail(), "no IFA_ADDRESS or IFA_LOCAL");
        assert_eq!(err.context(), "RTM_NEWADDR for ifindex 4");
        msg.header.family = AddressFamily::Inet;
        assert!(
            Address::from_message(&msg)
                .unwrap_err()
                .detail()
                .contains("AF_INET6")
        );
        let mut msg = header(4, 129);
        msg.attributes
            .push(AddressAttribute::Address(addr("2001:db8::1").into()));
        assert!(
            Address::from_message(&msg)
                .unwrap_err()
                .detail()
                .contains("129")
        );
    }

    #[test]
    fn lifetimes_never_encode_as_forever_by_accident() {
        assert_eq!(Lifetime::Seconds(u32::MAX).raw(), u32::MAX - 1);
        assert_eq!(Lifetime::Forever.raw(), u32::MAX);
        assert_eq!(Lifetime::from_raw(u32::MAX), Lifetime::Forever);
        assert!(Lifetime::Seconds(0).is_expired());
        assert!(!Lifetime::Forever.is_expired());
    }
}
