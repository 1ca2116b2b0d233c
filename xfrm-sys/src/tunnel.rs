//! IPv6-in-IPv6 tunnel devices (`ip6tnl`, RFC 2473): the home agent's tunnel to a mobile
//! node's care-of address (RFC 6275 §10.4.2, digest §5.8), managed like `ip -6 tunnel`.
//!
//! `ip -6 tunnel add` itself uses ioctls on the fallback device `ip6tnl0`; this module
//! uses the rtnetlink equivalent, `ip link add NAME type ip6tnl mode ip6ip6 local A
//! remote B`: an `RTM_NEWLINK` with `IFLA_INFO_KIND` `"ip6tnl"` and the `IFLA_IPTUN_*`
//! parameters in `IFLA_INFO_DATA`, encoded attribute for attribute as iproute2 encodes
//! them (the unit tests compare against bytes captured from `ip`).
//!
//! # Changing an endpoint (the care-of address moved)
//!
//! The kernel's `ip6_tnl_changelink` (`net/ipv6/ip6_tunnel.c`) rebuilds the tunnel's
//! parameters from the attributes of the request alone, starting from zero: a change
//! that carried only `IFLA_IPTUN_REMOTE` would also reset the local address, hop limit
//! and encapsulation limit. [`Handle::set_ip6_tunnel_remote`] therefore reads the
//! tunnel first and sends every parameter back with the new remote, as `ip link set
//! NAME type ip6tnl remote B` does.
//!
//! # Kernel support
//!
//! The device needs `CONFIG_IPV6_TUNNEL`. Without it, creating one fails with
//! `EOPNOTSUPP` and the text "Unknown device type" ([`Error::Kernel`]); the CI kernel
//! (6.18, no modules) is built that way, which the integration test reports as
//! `SKIPPED`.

use std::net::Ipv6Addr;

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::{
    AddressFamily, IpProtocol, RouteNetlinkMessage,
    link::{
        InfoData, InfoIpTunnel, InfoKind, Ip6TunnelFlags, LinkAttribute, LinkInfo, LinkMessage,
        TunnelEncapFlags, TunnelEncapType,
    },
};

use crate::{DecodeError, Error, Handle, Result};

/// `IPV6_DEFAULT_TNL_ENCAP_LIMIT` (`include/uapi/linux/ip6_tunnel.h`; RFC 2473 §6.6
/// recommends 4).
pub const DEFAULT_ENCAP_LIMIT: u8 = 4;
/// iproute2's default hop limit for new tunnels (`DEFAULT_TNL_HOP_LIMIT`, 64).
pub const DEFAULT_HOP_LIMIT: u8 = 64;
/// `IP6_TNL_F_IGN_ENCAP_LIMIT` (`include/uapi/linux/ip6_tunnel.h`): do not add a Tunnel
/// Encapsulation Limit option.
const IP6_TNL_F_IGN_ENCAP_LIMIT: u32 = 0x1;
/// `IP6_TNL_F_CAP_XMIT | IP6_TNL_F_CAP_RCV | IP6_TNL_F_CAP_PER_PACKET`
/// (`include/uapi/linux/ip6_tunnel.h`): what the kernel computed the endpoints allow
/// (`ip6_tnl_get_cap`, `net/ipv6/ip6_tunnel.c`). Reported in `IFLA_IPTUN_FLAGS`,
/// recomputed on every change: not a parameter, so [`Ip6Tunnel`] drops them.
const IP6_TNL_F_CAPS: u32 = 0x1_0000 | 0x2_0000 | 0x4_0000;
/// `TUNNEL_ENCAP_FLAG_CSUM6` (`include/uapi/linux/if_tunnel.h`), which iproute2 always
/// sends in `IFLA_IPTUN_ENCAP_FLAGS` (it only matters for FOU/GUE encapsulation).
const TUNNEL_ENCAP_FLAG_CSUM6: u16 = 0x2;
/// `IFLA_INFO_KIND` (`include/uapi/linux/if_link.h`).
const IFLA_INFO_KIND: u16 = 1;
/// The rtnetlink kind of IPv6 tunnels (`net/ipv6/ip6_tunnel.c`).
const KIND: &str = "ip6tnl";
/// `IPPROTO_IPV6`: the inner protocol of an ip6ip6 tunnel (RFC 2473 §3, Next Header 41).
pub const IPPROTO_IPV6: u8 = 41;
/// `IPPROTO_IPIP`: IPv4 inside IPv6 (mode `ipip6`).
pub const IPPROTO_IPIP: u8 = 4;

/// What the tunnel carries (`IFLA_IPTUN_PROTO`, `ip -6 tunnel ... mode`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TunnelMode {
    /// `ip6ip6`: IPv6 in IPv6 (protocol 41), RFC 2473.
    Ip6Ip6,
    /// `ipip6`: IPv4 in IPv6 (protocol 4).
    IpIp6,
    /// `any`: both (protocol 0).
    Any,
    /// Another protocol number.
    Other(u8),
}

impl TunnelMode {
    /// The `IFLA_IPTUN_PROTO` value.
    pub const fn proto(self) -> u8 {
        match self {
            Self::Ip6Ip6 => IPPROTO_IPV6,
            Self::IpIp6 => IPPROTO_IPIP,
            Self::Any => 0,
            Self::Other(n) => n,
        }
    }

    /// From an `IFLA_IPTUN_PROTO` value.
    pub const fn from_proto(n: u8) -> Self {
        match n {
            IPPROTO_IPV6 => Self::Ip6Ip6,
            IPPROTO_IPIP => Self::IpIp6,
            0 => Self::Any,
            n => Self::Other(n),
        }
    }
}

/// An `ip6tnl` device's parameters, as created and as the kernel reports them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ip6Tunnel {
    /// Device name (`IFLA_IFNAME`).
    pub name: String,
    /// Interface index; 0 in a creation request (the kernel picks it).
    pub index: u32,
    /// Outer source: the tunnel entry point (for the home agent, its own address).
    pub local: Ipv6Addr,
    /// Outer destination: the exit point (the mobile node's care-of address).
    pub remote: Ipv6Addr,
    /// What the tunnel carries.
    pub mode: TunnelMode,
    /// Outer Hop Limit (`IFLA_IPTUN_TTL`); 0 inherits the inner packet's.
    pub hop_limit: u8,
    /// Tunnel Encapsulation Limit (RFC 2473 §4.1.1); `None` adds no option
    /// (`encaplimit none`, flag `IP6_TNL_F_IGN_ENCAP_LIMIT`).
    pub encap_limit: Option<u8>,
    /// `IFLA_IPTUN_FLOWINFO`: traffic class and flow label of the outer header
    /// (network-order `flowinfo` word, as `ip` sends it).
    pub flow_info: u32,
    /// The other `IP6_TNL_F_*` flags, raw (without `IGN_ENCAP_LIMIT`, which is
    /// [`Ip6Tunnel::encap_limit`], and without the kernel's capability bits).
    pub flags: u32,
    /// Underlying device to send through (`IFLA_IPTUN_LINK`), 0 for any.
    pub link: u32,
    /// Outer firewall mark (`IFLA_IPTUN_FWMARK`).
    pub fwmark: u32,
}

impl Ip6Tunnel {
    /// `ip link add NAME type ip6tnl mode ip6ip6 local LOCAL remote REMOTE` with iproute2's
    /// defaults: hop limit 64, encapsulation limit 4.
    pub fn ip6ip6(name: &str, local: Ipv6Addr, remote: Ipv6Addr) -> Self {
        Self {
            name: name.to_owned(),
            index: 0,
            local,
            remote,
            mode: TunnelMode::Ip6Ip6,
            hop_limit: DEFAULT_HOP_LIMIT,
            encap_limit: Some(DEFAULT_ENCAP_LIMIT),
            flow_info: 0,
            flags: 0,
            link: 0,
            fwmark: 0,
        }
    }

    /// With outer hop limit `hop_limit`.
    #[must_use]
    pub fn hop_limit(mut self, hop_limit: u8) -> Self {
        self.hop_limit = hop_limit;
        self
    }

    /// With encapsulation limit `limit` (`None`: no Tunnel Encapsulation Limit option).
    #[must_use]
    pub fn encap_limit(mut self, limit: Option<u8>) -> Self {
        self.encap_limit = limit;
        self
    }

    /// The `IFLA_INFO_DATA` attributes, in iproute2's order (`ip/link_ip6tnl.c`).
    fn info_data(&self) -> Vec<InfoIpTunnel> {
        let mut flags = self.flags & !IP6_TNL_F_IGN_ENCAP_LIMIT;
        if self.encap_limit.is_none() {
            flags |= IP6_TNL_F_IGN_ENCAP_LIMIT;
        }
        vec![
            InfoIpTunnel::Protocol(IpProtocol::from(self.mode.proto())),
            InfoIpTunnel::Local(self.local.into()),
            InfoIpTunnel::Remote(self.remote.into()),
            InfoIpTunnel::Ttl(self.hop_limit),
            // iproute2 sends the default limit along with the "ignore" flag.
            InfoIpTunnel::EncapLimit(self.encap_limit.unwrap_or(DEFAULT_ENCAP_LIMIT)),
            InfoIpTunnel::FlowInfo(self.flow_info),
            InfoIpTunnel::Ipv6Flags(Ip6TunnelFlags::from_bits_retain(flags)),
            InfoIpTunnel::Link(self.link),
            InfoIpTunnel::FwMark(self.fwmark),
            InfoIpTunnel::EncapType(TunnelEncapType::None),
            InfoIpTunnel::EncapFlags(TunnelEncapFlags::from_bits_retain(TUNNEL_ENCAP_FLAG_CSUM6)),
            InfoIpTunnel::EncapSPort(0),
            InfoIpTunnel::EncapDPort(0),
        ]
    }

    fn link_info(&self) -> LinkAttribute {
        LinkAttribute::LinkInfo(vec![
            // iproute2 sends the kind without its NUL (`addattr_l(..., strlen(type))`);
            // netlink-packet-route's `InfoKind` adds one. The kernel takes both.
            LinkInfo::Other(DefaultNla::new(IFLA_INFO_KIND, KIND.as_bytes().to_vec())),
            LinkInfo::Data(InfoData::IpTunnel(self.info_data())),
        ])
    }

    /// Decodes an `RTM_NEWLINK` of kind `ip6tnl`; `Ok(None)` for any other link.
    pub fn from_message(msg: &LinkMessage) -> Result<Option<Self>, DecodeError> {
        let ctx = || format!("RTM_NEWLINK for ifindex {}", msg.header.index);
        let mut name = None;
        let mut is_ip6tnl = false;
        let mut data = None;
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(InfoKind::Ip6Tnl) => is_ip6tnl = true,
                            LinkInfo::Data(InfoData::IpTunnel(d)) => data = Some(d),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if !is_ip6tnl {
            return Ok(None);
        }
        let name = name.ok_or_else(|| DecodeError::new(ctx(), "no IFLA_IFNAME"))?;
        let data = data.ok_or_else(|| {
            DecodeError::new(ctx(), format!("ip6tnl {name} without IFLA_INFO_DATA"))
        })?;
        let mut t = Self::ip6ip6(&name, Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED);
        t.index = msg.header.index;
        // The kernel reports every parameter (ip6_tnl_fill_info); absent ones keep the
        // zero the kernel would have used.
        t.hop_limit = 0;
        t.mode = TunnelMode::Any;
        let mut limit = 0;
        let mut flags = 0;
        for a in data {
            let v6 = |addr: &std::net::IpAddr, what: &str| match addr {
                std::net::IpAddr::V6(a) => Ok(*a),
                std::net::IpAddr::V4(a) => Err(DecodeError::new(
                    ctx(),
                    format!("{what} {a} is IPv4 on an ip6tnl device"),
                )),
            };
            match a {
                InfoIpTunnel::Local(addr) => t.local = v6(addr, "IFLA_IPTUN_LOCAL")?,
                InfoIpTunnel::Remote(addr) => t.remote = v6(addr, "IFLA_IPTUN_REMOTE")?,
                InfoIpTunnel::Protocol(p) => t.mode = TunnelMode::from_proto(u8::from(*p)),
                InfoIpTunnel::Ttl(h) => t.hop_limit = *h,
                InfoIpTunnel::EncapLimit(l) => limit = *l,
                InfoIpTunnel::FlowInfo(f) => t.flow_info = *f,
                InfoIpTunnel::Ipv6Flags(f) => flags = f.bits(),
                InfoIpTunnel::Link(l) => t.link = *l,
                InfoIpTunnel::FwMark(m) => t.fwmark = *m,
                _ => {}
            }
        }
        t.encap_limit = (flags & IP6_TNL_F_IGN_ENCAP_LIMIT == 0).then_some(limit);
        t.flags = flags & !(IP6_TNL_F_IGN_ENCAP_LIMIT | IP6_TNL_F_CAPS);
        Ok(Some(t))
    }
}

/// `ip link add NAME type ip6tnl ...` (send with `NLM_F_CREATE | NLM_F_EXCL`).
pub(crate) fn add_message(t: &Ip6Tunnel) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Unspec;
    msg.attributes.push(LinkAttribute::IfName(t.name.clone()));
    msg.attributes.push(t.link_info());
    msg
}

/// `ip link set INDEX type ip6tnl ...`: every parameter of `t`, for link `t.index`.
pub(crate) fn change_message(t: &Ip6Tunnel) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Unspec;
    msg.header.index = t.index;
    msg.attributes.push(t.link_info());
    msg
}

/// `RTM_GETLINK` for one link, by index or (index 0) by name.
fn get_message(index: u32, name: Option<&str>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Unspec;
    msg.header.index = index;
    if let Some(name) = name {
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    }
    msg
}

fn tunnel_of(link: &LinkMessage, op: &str) -> Result<Ip6Tunnel> {
    match Ip6Tunnel::from_message(link) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(Error::Decode {
            op: op.to_owned(),
            source: DecodeError::new(
                format!("RTM_NEWLINK for ifindex {}", link.header.index),
                "not an ip6tnl device",
            ),
        }),
        Err(source) => Err(Error::Decode {
            op: op.to_owned(),
            source,
        }),
    }
}

/// `ip -6 tunnel` operations on `ip6tnl` devices.
impl Handle {
    /// `ip link add NAME type ip6tnl mode ip6ip6 local A remote B ...` (`ip -6 tunnel
    /// add`). The device starts down; bring it up with [`Handle::set_link_up`]. Returns
    /// the tunnel as the kernel reports it (with its index).
    ///
    /// A name in use is `EEXIST`; a kernel without `CONFIG_IPV6_TUNNEL` answers
    /// `EOPNOTSUPP`, "Unknown device type".
    pub async fn add_ip6_tunnel(&self, tunnel: &Ip6Tunnel) -> Result<Ip6Tunnel> {
        let op = format!(
            "add ip6tnl {} local {} remote {}",
            tunnel.name, tunnel.local, tunnel.remote
        );
        self.request(
            RouteNetlinkMessage::NewLink(add_message(tunnel)),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
        .await?;
        self.ip6_tunnel_by_name(&tunnel.name).await
    }

    /// The `ip6tnl` device `name` (`ip -6 tunnel show NAME`); `ENODEV` when missing, a
    /// decode error when the link is not an `ip6tnl`.
    pub async fn ip6_tunnel_by_name(&self, name: &str) -> Result<Ip6Tunnel> {
        let op = format!("get ip6tnl {name}");
        self.get_tunnel(get_message(0, Some(name)), &op).await
    }

    /// The `ip6tnl` device with index `index`.
    pub async fn ip6_tunnel(&self, index: u32) -> Result<Ip6Tunnel> {
        let op = format!("get ip6tnl index {index}");
        self.get_tunnel(get_message(index, None), &op).await
    }

    async fn get_tunnel(&self, msg: LinkMessage, op: &str) -> Result<Ip6Tunnel> {
        let mut answers = self
            .request(RouteNetlinkMessage::GetLink(msg), 0, op)
            .await?;
        match (answers.pop(), answers.is_empty()) {
            (Some(RouteNetlinkMessage::NewLink(l)), true) => tunnel_of(&l, op),
            (None, _) => Err(Error::unexpected(op, "no RTM_NEWLINK in the reply")),
            _ => Err(Error::unexpected(op, "expected exactly one RTM_NEWLINK")),
        }
    }

    /// `ip -6 tunnel show`: every `ip6tnl` device, the fallback `ip6tnl0` included
    /// (its endpoints are `::`).
    pub async fn ip6_tunnels(&self) -> Result<Vec<Ip6Tunnel>> {
        let op = "list ip6tnl devices";
        let msgs = self
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), op)
            .await?;
        let mut out = Vec::new();
        for m in msgs {
            if let RouteNetlinkMessage::NewLink(l) = m
                && let Some(t) = Ip6Tunnel::from_message(&l).map_err(|source| Error::Decode {
                    op: op.to_owned(),
                    source,
                })?
            {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// `ip link set INDEX type ip6tnl ...` with every parameter of `tunnel` (for
    /// `tunnel.index`; the name is not changed). See the module docs for why all of
    /// them are sent.
    pub async fn change_ip6_tunnel(&self, tunnel: &Ip6Tunnel) -> Result<()> {
        let op = format!(
            "change ip6tnl index {} local {} remote {}",
            tunnel.index, tunnel.local, tunnel.remote
        );
        self.request(RouteNetlinkMessage::NewLink(change_message(tunnel)), 0, &op)
            .await
            .map(drop)
    }

    /// `ip -6 tunnel change NAME remote REMOTE`: the care-of address moved. Reads the
    /// tunnel, sends all its parameters back with the new remote, and returns the
    /// tunnel as it now is.
    pub async fn set_ip6_tunnel_remote(&self, index: u32, remote: Ipv6Addr) -> Result<Ip6Tunnel> {
        let mut t = self.ip6_tunnel(index).await?;
        t.remote = remote;
        self.change_ip6_tunnel(&t).await?;
        self.ip6_tunnel(index).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{emit, parse};
    use hex_literal::hex;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);

    /// `ip link add t6 type ip6tnl mode ip6ip6 local 2001:db8:1::1 remote 2001:db8:1::2`
    /// (iproute2 6.1, strace `-e write=3`): `RTM_NEWLINK`, `NLM_F_REQUEST | NLM_F_ACK |
    /// NLM_F_EXCL | NLM_F_CREATE`, sequence 0x6b018fc3. `IFLA_INFO_DATA`: PROTO 41,
    /// LOCAL, REMOTE, TTL 64, `ENCAP_LIMIT` 4, FLOWINFO 0, FLAGS 0, LINK 0, FWMARK 0,
    /// `ENCAP_TYPE` 0, `ENCAP_FLAGS` 2, `ENCAP_SPORT` 0, `ENCAP_DPORT` 0.
    const ADD_T6: [u8; 188] = hex!(
        "bc000000 1000 0506 c38f016b 00000000"
        "00 00 0000 00000000 00000000 00000000"
        "0700 0300 74360000"
        "9400 1200 0a00 0100 697036746e6c0000"
        "8400 0200"
        "0500 0900 29000000"
        "1400 0200 20010db8000100000000000000000001"
        "1400 0300 20010db8000100000000000000000002"
        "0500 0400 40000000"
        "0500 0600 04000000"
        "0800 0700 00000000"
        "0800 0800 00000000"
        "0800 0100 00000000"
        "0800 1400 00000000"
        "0600 0f00 00000000"
        "0600 1000 02000000"
        "0600 1100 00000000"
        "0600 1200 00000000"
    );

    /// `IFLA_IPTUN_FLAGS` = 0 as in [`ADD_T6`]. With `encaplimit none hoplimit 64`
    /// iproute2 sent the same message except for this value, 1
    /// (`IP6_TNL_F_IGN_ENCAP_LIMIT`): it still sends `ENCAP_LIMIT` 4.
    const FLAGS_ZERO: [u8; 8] = hex!("0800 0800 00000000");

    const SEQ: u32 = 0x6b01_8fc3;
    const CREATE: u16 = 0x0605;

    #[test]
    fn add_is_what_ip_sends() {
        let msg = RouteNetlinkMessage::NewLink(add_message(&Ip6Tunnel::ip6ip6("t6", A, B)));
        assert_eq!(emit(&msg, CREATE, SEQ), ADD_T6);
    }

    #[test]
    fn encaplimit_none_sets_the_ignore_flag_like_ip() {
        let t = Ip6Tunnel::ip6ip6("t6", A, B).encap_limit(None);
        let bytes = emit(&RouteNetlinkMessage::NewLink(add_message(&t)), CREATE, SEQ);
        let at = ADD_T6
            .windows(FLAGS_ZERO.len())
            .position(|w| w == FLAGS_ZERO)
            .expect("FLAGS attribute in the capture");
        let mut expected = ADD_T6;
        expected[at + 4] = 1;
        assert_eq!(bytes, expected);
    }

    #[test]
    fn captured_add_decodes_back_to_the_tunnel() {
        let RouteNetlinkMessage::NewLink(m) = parse(&ADD_T6) else {
            panic!("not RTM_NEWLINK");
        };
        let t = Ip6Tunnel::from_message(&m).unwrap().unwrap();
        assert_eq!(t, Ip6Tunnel::ip6ip6("t6", A, B));
        let again = RouteNetlinkMessage::NewLink(add_message(&t));
        assert_eq!(emit(&again, CREATE, SEQ), ADD_T6);
    }

    #[test]
    fn change_carries_every_parameter_and_the_index() {
        let mut t = Ip6Tunnel::ip6ip6("t6", A, B).hop_limit(255);
        t.index = 9;
        t.remote = "2001:db8:1::3".parse().unwrap();
        let m = change_message(&t);
        assert_eq!(m.header.index, 9);
        // No IFLA_IFNAME: the change keeps the name.
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfName(_)))
        );
        // Through the wire, as the kernel would parse it.
        let mut with_name = m.clone();
        with_name
            .attributes
            .push(LinkAttribute::IfName("t6".to_owned()));
        let RouteNetlinkMessage::NewLink(parsed) =
            parse(&emit(&RouteNetlinkMessage::NewLink(with_name), 0x0005, 1))
        else {
            panic!("not RTM_NEWLINK");
        };
        let mut back = Ip6Tunnel::from_message(&parsed).unwrap().unwrap();
        back.index = 9;
        assert_eq!(back, t);
    }

    #[test]
    fn other_links_are_not_tunnels_and_missing_data_is_an_error() {
        let mut veth = LinkMessage::default();
        veth.attributes.push(LinkAttribute::IfName("v".to_owned()));
        veth.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Veth,
            )]));
        assert_eq!(Ip6Tunnel::from_message(&veth).unwrap(), None);
        let mut bare = LinkMessage::default();
        bare.header.index = 4;
        bare.attributes.push(LinkAttribute::IfName("t".to_owned()));
        bare.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Ip6Tnl,
            )]));
        let e = Ip6Tunnel::from_message(&bare).unwrap_err();
        assert!(e.detail().contains("without IFLA_INFO_DATA"), "{e}");
        assert!(tunnel_of(&veth, "get").is_err());
    }

    #[test]
    fn truncated_or_corrupted_captures_never_panic() {
        use netlink_packet_core::NetlinkMessage;
        let check = |b: &[u8]| {
            if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(b)
                && let netlink_packet_core::NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewLink(l),
                ) = m.payload
            {
                let _ = Ip6Tunnel::from_message(&l);
            }
        };
        for cut in 0..=ADD_T6.len() {
            check(&ADD_T6[..cut]);
        }
        let mut copy = ADD_T6;
        for i in 0..copy.len() {
            let orig = copy[i];
            for v in [0x00, 0x01, 0x04, 0x7f, 0x80, 0xff, orig ^ 0x55] {
                copy[i] = v;
                check(&copy);
            }
            copy[i] = orig;
        }
    }

    #[test]
    fn kernel_capability_flags_are_not_parameters() {
        // The kernel reports IFLA_IPTUN_FLAGS with CAP_XMIT | CAP_RCV set for a tunnel
        // between two unicast addresses; with IGN_ENCAP_LIMIT, no limit is in force.
        let mut t = Ip6Tunnel::ip6ip6("t6", A, B).encap_limit(None);
        t.flags = 0x4; // IP6_TNL_F_USE_ORIG_FLOWLABEL
        let mut m = add_message(&t);
        let LinkAttribute::LinkInfo(infos) = &mut m.attributes[1] else {
            panic!("IFLA_LINKINFO second");
        };
        let LinkInfo::Data(InfoData::IpTunnel(data)) = &mut infos[1] else {
            panic!("IFLA_INFO_DATA second");
        };
        for a in data.iter_mut() {
            if let InfoIpTunnel::Ipv6Flags(f) = a {
                *f = Ip6TunnelFlags::from_bits_retain(f.bits() | 0x3_0000);
            }
        }
        let RouteNetlinkMessage::NewLink(parsed) =
            parse(&emit(&RouteNetlinkMessage::NewLink(m), 0, 1))
        else {
            panic!("not RTM_NEWLINK");
        };
        let got = Ip6Tunnel::from_message(&parsed).unwrap().unwrap();
        assert_eq!(got, t);
        assert_eq!(got.encap_limit, None);
    }

    #[test]
    fn modes_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(TunnelMode::from_proto(n).proto(), n);
        }
        assert_eq!(TunnelMode::from_proto(41), TunnelMode::Ip6Ip6);
    }
}
