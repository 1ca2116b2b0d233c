//! Links (`ip link`): look up, list, set up/down, MTU and the IPv6 address generation
//! mode.
//!
//! `addrgenmode none` ([`AddrGenMode::None`]) keeps the kernel from giving a device an
//! EUI-64 link-local address, and with it from sending router solicitations and other
//! link-local traffic over it: shim6d's TUN needs it (architecture.md, "Verified on the CI
//! kernel"). Set it **before** bringing the link up; an address generated while the mode
//! was `eui64` stays.
//!
//! A link reported up by `ip link set up` is not yet operational: the carrier change is
//! processed by the kernel's link watcher a little later (that is when
//! [`Event::LinkUp`](crate::Event::LinkUp) arrives), and until then the link drops what
//! it sends. Wait for the event before relying on the link (the DAD test in
//! `tests/rtnetlink.rs` failed without that wait: the defending Neighbor Advertisement
//! was dropped).

use std::fmt;

use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{
        AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkFlags as NlLinkFlags,
        LinkInfo, LinkMessage, State,
    },
};

use crate::{DecodeError, Error, Handle, Result};

/// Interface flags (`IFF_*`, `include/uapi/linux/if.h`), as the kernel reports them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LinkFlags(u32);

impl LinkFlags {
    /// `IFF_UP`: administratively up.
    pub const UP: Self = Self(1 << 0);
    /// `IFF_BROADCAST`.
    pub const BROADCAST: Self = Self(1 << 1);
    /// `IFF_LOOPBACK`.
    pub const LOOPBACK: Self = Self(1 << 3);
    /// `IFF_POINTOPOINT` (TUN devices).
    pub const POINTOPOINT: Self = Self(1 << 4);
    /// `IFF_RUNNING`: operationally up (RFC 2863 state up or unknown).
    pub const RUNNING: Self = Self(1 << 6);
    /// `IFF_NOARP`.
    pub const NOARP: Self = Self(1 << 7);
    /// `IFF_MULTICAST`.
    pub const MULTICAST: Self = Self(1 << 12);
    /// `IFF_LOWER_UP`: the driver signals carrier.
    pub const LOWER_UP: Self = Self(1 << 16);
    /// `IFF_DORMANT`.
    pub const DORMANT: Self = Self(1 << 17);

    /// The raw `ifi_flags`.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// From raw `ifi_flags`; unknown bits are kept.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Debug for LinkFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(LinkFlags, &str); 9] = [
            (LinkFlags::UP, "UP"),
            (LinkFlags::BROADCAST, "BROADCAST"),
            (LinkFlags::LOOPBACK, "LOOPBACK"),
            (LinkFlags::POINTOPOINT, "POINTOPOINT"),
            (LinkFlags::RUNNING, "RUNNING"),
            (LinkFlags::NOARP, "NOARP"),
            (LinkFlags::MULTICAST, "MULTICAST"),
            (LinkFlags::LOWER_UP, "LOWER_UP"),
            (LinkFlags::DORMANT, "DORMANT"),
        ];
        let mut rest = self.0;
        write!(f, "<")?;
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                write!(f, "{}{name}", if first { "" } else { "," })?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            write!(f, "{}{rest:#x}", if first { "" } else { "," })?;
        }
        write!(f, ">")
    }
}

/// RFC 2863 operational state (`IF_OPER_*`, `include/uapi/linux/if.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum OperState {
    /// `IF_OPER_UNKNOWN` (drivers without carrier reporting, such as a TUN with a reader).
    Unknown,
    /// `IF_OPER_NOTPRESENT`.
    NotPresent,
    /// `IF_OPER_DOWN`.
    Down,
    /// `IF_OPER_LOWERLAYERDOWN` (a veth whose peer is down).
    LowerLayerDown,
    /// `IF_OPER_TESTING`.
    Testing,
    /// `IF_OPER_DORMANT`.
    Dormant,
    /// `IF_OPER_UP`.
    Up,
    /// A value this crate does not know.
    Other(u8),
}

impl From<State> for OperState {
    fn from(s: State) -> Self {
        match s {
            State::Unknown => Self::Unknown,
            State::NotPresent => Self::NotPresent,
            State::Down => Self::Down,
            State::LowerLayerDown => Self::LowerLayerDown,
            State::Testing => Self::Testing,
            State::Dormant => Self::Dormant,
            State::Up => Self::Up,
            other => Self::Other(u8::from(other)),
        }
    }
}

/// IPv6 interface identifier generation (`IN6_ADDR_GEN_MODE_*`, `include/uapi/linux/if_link.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum AddrGenMode {
    /// Modified EUI-64 from the hardware address (the default).
    Eui64,
    /// No automatic addresses, not even link-local (`ip link set DEV addrgenmode none`).
    None,
    /// RFC 7217 stable privacy.
    StablePrivacy,
    /// Random identifiers.
    Random,
    /// A value this crate does not know.
    Other(u8),
}

impl From<&In6AddrGenMode> for AddrGenMode {
    fn from(m: &In6AddrGenMode) -> Self {
        match m {
            In6AddrGenMode::Eui64 => Self::Eui64,
            In6AddrGenMode::None => Self::None,
            In6AddrGenMode::StablePrivacy => Self::StablePrivacy,
            In6AddrGenMode::Random => Self::Random,
            other => Self::Other(u8::from(other)),
        }
    }
}

impl From<AddrGenMode> for In6AddrGenMode {
    fn from(m: AddrGenMode) -> Self {
        match m {
            AddrGenMode::Eui64 => Self::Eui64,
            AddrGenMode::None => Self::None,
            AddrGenMode::StablePrivacy => Self::StablePrivacy,
            AddrGenMode::Random => Self::Random,
            AddrGenMode::Other(v) => Self::from(v),
        }
    }
}

/// A network interface as the kernel reports it (`RTM_NEWLINK`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Link {
    /// Interface index (`ifi_index`).
    pub index: u32,
    /// Name (`IFLA_IFNAME`).
    pub name: String,
    /// MTU (`IFLA_MTU`); 0 when the kernel did not say.
    pub mtu: u32,
    /// `ifi_flags`.
    pub flags: LinkFlags,
    /// `IFLA_OPERSTATE`; [`OperState::Unknown`] when absent.
    pub oper_state: OperState,
    /// `IFLA_INET6_ADDR_GEN_MODE` inside `IFLA_AF_SPEC`; `None` when the link has no IPv6
    /// configuration (IPv6 disabled).
    pub addr_gen_mode: Option<AddrGenMode>,
    /// `IFLA_INFO_KIND` (`"veth"`, `"tun"`, ...), `None` for devices without one (loopback).
    pub kind: Option<String>,
}

impl Link {
    /// Administratively up (`IFF_UP`, `ip link set DEV up`).
    pub fn is_up(&self) -> bool {
        self.flags.contains(LinkFlags::UP)
    }

    /// Up and operational: `IFF_UP` and `IFF_RUNNING` (carrier, or a driver that does not
    /// report one). This is what [`Event::LinkUp`](crate::Event::LinkUp) and
    /// [`Event::LinkDown`](crate::Event::LinkDown) follow.
    pub fn is_running(&self) -> bool {
        self.flags.contains(LinkFlags::UP) && self.flags.contains(LinkFlags::RUNNING)
    }

    /// Decodes an `RTM_NEWLINK` / `RTM_DELLINK` message.
    pub fn from_message(msg: &LinkMessage) -> Result<Self, DecodeError> {
        let ctx = || format!("RTM_NEWLINK for ifindex {}", msg.header.index);
        let mut name = None;
        let mut mtu = 0;
        let mut oper_state = OperState::Unknown;
        let mut addr_gen_mode = None;
        let mut kind = None;
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Mtu(m) => mtu = *m,
                LinkAttribute::OperState(s) => oper_state = OperState::from(*s),
                LinkAttribute::AfSpecUnspec(specs) => {
                    for spec in specs {
                        if let AfSpecUnspec::Inet6(inet6) = spec {
                            addr_gen_mode = inet6.iter().find_map(|a| match a {
                                AfSpecInet6::AddrGenMode(m) => Some(AddrGenMode::from(m)),
                                _ => None,
                            });
                        }
                    }
                }
                LinkAttribute::LinkInfo(infos) => {
                    kind = infos.iter().find_map(|i| match i {
                        LinkInfo::Kind(k) => Some(k.to_string()),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
        Ok(Self {
            index: msg.header.index,
            name: name.ok_or_else(|| DecodeError::new(ctx(), "no IFLA_IFNAME"))?,
            mtu,
            flags: LinkFlags(msg.header.flags.bits()),
            oper_state,
            addr_gen_mode,
            kind,
        })
    }
}

/// A `RTM_NEWLINK` that changes link `index` (flags `NLM_F_REQUEST | NLM_F_ACK`, as `ip
/// link set` sends it).
fn change(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Unspec;
    msg.header.index = index;
    msg
}

/// `ip link set dev INDEX up|down`.
pub(crate) fn set_up_message(index: u32, up: bool) -> LinkMessage {
    let mut msg = change(index);
    msg.header.change_mask = NlLinkFlags::Up;
    if up {
        msg.header.flags = NlLinkFlags::Up;
    }
    msg
}

/// `ip link set dev INDEX mtu MTU`.
pub(crate) fn set_mtu_message(index: u32, mtu: u32) -> LinkMessage {
    let mut msg = change(index);
    msg.attributes.push(LinkAttribute::Mtu(mtu));
    msg
}

/// `ip link set dev INDEX addrgenmode MODE`.
pub(crate) fn set_addr_gen_mode_message(index: u32, mode: AddrGenMode) -> LinkMessage {
    let mut msg = change(index);
    msg.attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(mode.into())],
        )]));
    msg
}

fn get_by_name_message(name: &str) -> LinkMessage {
    let mut msg = change(0);
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg
}

fn one_link(mut msgs: Vec<RouteNetlinkMessage>, op: &str) -> Result<Link> {
    match (msgs.pop(), msgs.is_empty()) {
        (Some(RouteNetlinkMessage::NewLink(m)), true) => {
            Link::from_message(&m).map_err(|source| Error::Decode {
                op: op.to_owned(),
                source,
            })
        }
        (None, _) => Err(Error::unexpected(op, "no RTM_NEWLINK in the reply")),
        _ => Err(Error::unexpected(op, "expected exactly one RTM_NEWLINK")),
    }
}

/// Link operations (`ip link`).
impl Handle {
    /// `ip link show`: every link of the namespace.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let op = "list links";
        let msgs = self
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), op)
            .await?;
        msgs.into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .map(|l| {
                Link::from_message(&l).map_err(|source| Error::Decode {
                    op: op.to_owned(),
                    source,
                })
            })
            .collect()
    }

    /// `ip link show dev NAME`; a missing link is `ENODEV` ([`Error::is_not_found`]).
    pub async fn link_by_name(&self, name: &str) -> Result<Link> {
        let op = format!("get link {name}");
        let msgs = self
            .request(
                RouteNetlinkMessage::GetLink(get_by_name_message(name)),
                0,
                &op,
            )
            .await?;
        one_link(msgs, &op)
    }

    /// The link with interface index `index`; a missing link is `ENODEV`.
    pub async fn link_by_index(&self, index: u32) -> Result<Link> {
        let op = format!("get link index {index}");
        let msgs = self
            .request(RouteNetlinkMessage::GetLink(change(index)), 0, &op)
            .await?;
        one_link(msgs, &op)
    }

    /// `ip link set dev INDEX up`.
    pub async fn set_link_up(&self, index: u32) -> Result<()> {
        let op = format!("set link index {index} up");
        self.request(
            RouteNetlinkMessage::NewLink(set_up_message(index, true)),
            0,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip link set dev INDEX down`.
    pub async fn set_link_down(&self, index: u32) -> Result<()> {
        let op = format!("set link index {index} down");
        self.request(
            RouteNetlinkMessage::NewLink(set_up_message(index, false)),
            0,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip link set dev INDEX mtu MTU`. The kernel refuses an MTU outside the device's
    /// range with `EINVAL` and says which bound in the extended ACK; IPv6 needs at least
    /// 1280 (RFC 8200 §5) and disables itself on the link below that.
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        let op = format!("set link index {index} mtu {mtu}");
        self.request(
            RouteNetlinkMessage::NewLink(set_mtu_message(index, mtu)),
            0,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip link del dev INDEX`: deletes a virtual link (a tunnel, one end of a veth
    /// pair, which takes the other end with it). A missing link is `ENODEV`; a physical
    /// device is `EOPNOTSUPP`.
    pub async fn delete_link(&self, index: u32) -> Result<()> {
        let op = format!("delete link index {index}");
        self.request(RouteNetlinkMessage::DelLink(change(index)), 0, &op)
            .await
            .map(drop)
    }

    /// `ip link set dev INDEX addrgenmode MODE` (`IFLA_INET6_ADDR_GEN_MODE`).
    pub async fn set_addr_gen_mode(&self, index: u32, mode: AddrGenMode) -> Result<()> {
        let op = format!("set link index {index} addrgenmode {mode:?}");
        let msg = set_addr_gen_mode_message(index, mode);
        self.request(RouteNetlinkMessage::NewLink(msg), 0, &op)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{emit, parse};
    use hex_literal::hex;

    /// `ip link set dev va mtu 1400` (va = ifindex 3), captured with `strace -e write=3`
    /// on kernel 6.18 / iproute2 6.1: `RTM_NEWLINK`, `NLM_F_REQUEST | NLM_F_ACK`,
    /// sequence 0x6b01843d.
    const SET_MTU_1400: [u8; 40] = hex!(
        "28000000 1000 0500 3d84016b 00000000"
        "00 00 0000 03000000 00000000 00000000"
        "0800 0400 78050000"
    );

    /// `ip link set dev va addrgenmode none`, same capture: `IFLA_AF_SPEC` {
    /// `AF_INET6` { `IFLA_INET6_ADDR_GEN_MODE` = 1 } }.
    const SET_ADDRGENMODE_NONE: [u8; 48] = hex!(
        "30000000 1000 0500 3d84016b 00000000"
        "00 00 0000 03000000 00000000 00000000"
        "1000 1a00 0c00 0a00 0500 0800 01000000"
    );

    const SEQ: u32 = 0x6b01843d;

    #[test]
    fn set_mtu_emits_what_ip_sends() {
        let msg = RouteNetlinkMessage::NewLink(set_mtu_message(3, 1400));
        assert_eq!(emit(&msg, 0x0005, SEQ), SET_MTU_1400);
    }

    #[test]
    fn set_mtu_parses_back() {
        let RouteNetlinkMessage::NewLink(m) = parse(&SET_MTU_1400) else {
            panic!("not RTM_NEWLINK");
        };
        assert_eq!(m, set_mtu_message(3, 1400));
    }

    #[test]
    fn set_addr_gen_mode_emits_what_ip_sends() {
        let msg = RouteNetlinkMessage::NewLink(set_addr_gen_mode_message(3, AddrGenMode::None));
        assert_eq!(emit(&msg, 0x0005, SEQ), SET_ADDRGENMODE_NONE);
        let RouteNetlinkMessage::NewLink(m) = parse(&SET_ADDRGENMODE_NONE) else {
            panic!("not RTM_NEWLINK");
        };
        assert_eq!(m, set_addr_gen_mode_message(3, AddrGenMode::None));
    }

    /// `ip link del va` (va = ifindex 3; strace `-e write=3`, iproute2 6.1): `RTM_DELLINK`,
    /// `NLM_F_REQUEST | NLM_F_ACK`, sequence 0x6b018fc6, no attributes.
    const DEL_VA: [u8; 32] = hex!(
        "20000000 1100 0500 c68f016b 00000000"
        "00 00 0000 03000000 00000000 00000000"
    );

    #[test]
    fn delete_is_what_ip_sends() {
        let msg = RouteNetlinkMessage::DelLink(change(3));
        assert_eq!(emit(&msg, 0x0005, 0x6b01_8fc6), DEL_VA);
    }

    #[test]
    fn set_up_and_down_touch_only_iff_up() {
        let up = set_up_message(7, true);
        assert_eq!(up.header.flags.bits(), 1);
        assert_eq!(up.header.change_mask.bits(), 1);
        let down = set_up_message(7, false);
        assert_eq!(down.header.flags.bits(), 0);
        assert_eq!(down.header.change_mask.bits(), 1);
        assert_eq!(down.header.index, 7);
    }

    #[test]
    fn flags_debug_names_known_bits_and_keeps_the_rest() {
        let f = LinkFlags::from_bits(LinkFlags::UP.bits() | LinkFlags::LOWER_UP.bits() | (1 << 30));
        assert_eq!(format!("{f:?}"), "<UP,LOWER_UP,0x40000000>");
        assert_eq!(format!("{:?}", LinkFlags::default()), "<>");
    }

    #[test]
    fn link_without_name_is_a_decode_error() {
        let msg = change(9);
        let err = Link::from_message(&msg).unwrap_err();
        assert_eq!(err.context(), "RTM_NEWLINK for ifindex 9");
        assert_eq!(err.detail(), "no IFLA_IFNAME");
    }
}
