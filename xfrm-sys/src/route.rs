//! IPv6 routes (`ip -6 route`): list a table, add, replace, delete.
//!
//! Tables above 255 travel in `RTA_TABLE`, with `rtm_table` = `RT_TABLE_UNSPEC` in
//! requests, exactly as iproute2 encodes them; the kernel reports them with `rtm_table`
//! = `RT_TABLE_COMPAT` (252) and the real id in `RTA_TABLE`, which is what we decode.
//!
//! IPv6 route identity is (table, destination, metric): [`Handle::replace_route`] with
//! another metric adds a second route instead of replacing the first. A route with host
//! bits set in its destination is not refused by the kernel (IPv4 is); [`Ipv6Prefix`]
//! clears them before they are sent.

use std::net::Ipv6Addr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType},
};

use crate::{DecodeError, Error, Handle, Ipv6Prefix, Result};

/// `RT_TABLE_MAIN` (`include/uapi/linux/rtnetlink.h`).
pub const TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const TABLE_LOCAL: u32 = 255;
/// `RTPROT_BOOT`: what `ip route add` marks its routes with unless told otherwise.
pub const PROTO_BOOT: u8 = 3;
/// `RTPROT_KERNEL`: routes the kernel made itself (prefix routes of addresses).
pub const PROTO_KERNEL: u8 = 2;
/// `RTPROT_STATIC`.
pub const PROTO_STATIC: u8 = 4;

/// Route type (`RTN_*`, `include/uapi/linux/rtnetlink.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum RouteKind {
    /// `RTN_UNICAST`: a gateway or direct route.
    #[default]
    Unicast,
    /// `RTN_LOCAL`: delivered locally (table local).
    Local,
    /// `RTN_MULTICAST`.
    Multicast,
    /// `RTN_BLACKHOLE`: silently dropped.
    Blackhole,
    /// `RTN_UNREACHABLE`: dropped with an `ICMPv6` unreachable.
    Unreachable,
    /// `RTN_PROHIBIT`: dropped with an `ICMPv6` administratively prohibited.
    Prohibit,
    /// `RTN_THROW`: continue rule lookup.
    Throw,
    /// Anything else (raw `rtm_type`).
    Other(u8),
}

impl From<RouteType> for RouteKind {
    fn from(t: RouteType) -> Self {
        match t {
            RouteType::Unicast => Self::Unicast,
            RouteType::Local => Self::Local,
            RouteType::Multicast => Self::Multicast,
            RouteType::BlackHole => Self::Blackhole,
            RouteType::Unreachable => Self::Unreachable,
            RouteType::Prohibit => Self::Prohibit,
            RouteType::Throw => Self::Throw,
            other => Self::Other(u8::from(other)),
        }
    }
}

impl From<RouteKind> for RouteType {
    fn from(k: RouteKind) -> Self {
        match k {
            RouteKind::Unicast => Self::Unicast,
            RouteKind::Local => Self::Local,
            RouteKind::Multicast => Self::Multicast,
            RouteKind::Blackhole => Self::BlackHole,
            RouteKind::Unreachable => Self::Unreachable,
            RouteKind::Prohibit => Self::Prohibit,
            RouteKind::Throw => Self::Throw,
            RouteKind::Other(v) => Self::from(v),
        }
    }
}

/// An IPv6 route: what to add or delete, and what a dump reports.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Route {
    /// Destination (`RTA_DST` and `rtm_dst_len`); `::/0` for a default route.
    pub destination: Ipv6Prefix,
    /// Routing table id (`RTA_TABLE`, any u32; 254 = main).
    pub table: u32,
    /// Output interface index (`RTA_OIF`, `dev`).
    pub device: Option<u32>,
    /// Next hop (`RTA_GATEWAY`, `via`).
    pub gateway: Option<Ipv6Addr>,
    /// Metric (`RTA_PRIORITY`); `None` lets the kernel choose (1024 for IPv6).
    pub metric: Option<u32>,
    /// Preferred source address (`RTA_PREFSRC`, `src`).
    pub preferred_source: Option<Ipv6Addr>,
    /// Origin (`rtm_protocol`); [`PROTO_BOOT`] like `ip`. A daemon can use its own
    /// value to find its routes again.
    pub protocol: u8,
    /// Type (`rtm_type`).
    pub kind: RouteKind,
    /// Decoded routes only: the route has several next hops (`RTA_MULTIPATH`), which
    /// this type does not describe; `device` and `gateway` are then `None`.
    pub multipath: bool,
}

impl Route {
    /// A unicast route to `destination` in `table`, no device or gateway yet.
    pub fn new(destination: Ipv6Prefix, table: u32) -> Self {
        Self {
            destination,
            table,
            device: None,
            gateway: None,
            metric: None,
            preferred_source: None,
            protocol: PROTO_BOOT,
            kind: RouteKind::Unicast,
            multipath: false,
        }
    }

    /// Through interface `index` (`dev`).
    pub fn dev(mut self, index: u32) -> Self {
        self.device = Some(index);
        self
    }

    /// Via next hop `gateway`.
    pub fn via(mut self, gateway: Ipv6Addr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// With metric `metric`.
    pub fn metric(mut self, metric: u32) -> Self {
        self.metric = Some(metric);
        self
    }

    /// Preferring source address `src`.
    pub fn src(mut self, src: Ipv6Addr) -> Self {
        self.preferred_source = Some(src);
        self
    }

    /// Marked with origin `protocol` (`proto`).
    pub fn protocol(mut self, protocol: u8) -> Self {
        self.protocol = protocol;
        self
    }

    /// Of type `kind` (`unreachable`, `blackhole`, ...).
    pub fn kind(mut self, kind: RouteKind) -> Self {
        self.kind = kind;
        self
    }

    fn describe(&self, verb: &str) -> String {
        let mut s = format!("{verb} route {}", self.destination);
        if let Some(gw) = self.gateway {
            s += &format!(" via {gw}");
        }
        if let Some(dev) = self.device {
            s += &format!(" dev index {dev}");
        }
        if let Some(m) = self.metric {
            s += &format!(" metric {m}");
        }
        s + &format!(" table {}", self.table)
    }

    /// Decodes an `RTM_NEWROUTE` / `RTM_DELROUTE` message; anything but `AF_INET6` is an
    /// error.
    pub fn from_message(msg: &RouteMessage) -> Result<Self, DecodeError> {
        let ctx = "RTM_NEWROUTE";
        if msg.header.address_family != AddressFamily::Inet6 {
            return Err(DecodeError::new(
                ctx,
                format!("family {:?}, expected AF_INET6", msg.header.address_family),
            ));
        }
        let v6 = |what: &str, a: &RouteAddress| match a {
            RouteAddress::Inet6(ip) => Ok(*ip),
            other => Err(DecodeError::new(
                ctx,
                format!("{what} {other:?} is not IPv6"),
            )),
        };
        let mut destination = Ipv6Addr::UNSPECIFIED;
        let mut route = Self::new(Ipv6Prefix::any(), u32::from(msg.header.table));
        route.protocol = u8::from(msg.header.protocol);
        route.kind = RouteKind::from(msg.header.kind);
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => destination = v6("RTA_DST", a)?,
                RouteAttribute::Gateway(a) => route.gateway = Some(v6("RTA_GATEWAY", a)?),
                RouteAttribute::PrefSource(a) => {
                    route.preferred_source = Some(v6("RTA_PREFSRC", a)?);
                }
                RouteAttribute::Oif(i) => route.device = Some(*i),
                RouteAttribute::Priority(m) => route.metric = Some(*m),
                RouteAttribute::Table(t) => route.table = *t,
                RouteAttribute::MultiPath(_) => route.multipath = true,
                _ => {}
            }
        }
        route.destination = Ipv6Prefix::new(destination, msg.header.destination_prefix_length)
            .map_err(|e| DecodeError::new(ctx, e.to_string()))?;
        Ok(route)
    }
}

/// The header fields shared by requests: family, destination length, table (in the
/// header when it fits, as iproute2 does).
fn base(route: &Route) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet6;
    msg.header.destination_prefix_length = route.destination.prefix_len();
    msg.header.table = u8::try_from(route.table).unwrap_or(0);
    msg
}

fn push_destination(msg: &mut RouteMessage, route: &Route) {
    // iproute2 sends no RTA_DST for a default route.
    if !route.destination.is_any() {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(
                route.destination.addr(),
            )));
    }
}

fn push_table(msg: &mut RouteMessage, route: &Route) {
    if route.table > 255 {
        msg.attributes.push(RouteAttribute::Table(route.table));
    }
}

/// The `RTM_NEWROUTE` body: attributes in iproute2's order for `ip -6 route add DST via
/// GW src SRC metric M table T dev DEV`.
pub(crate) fn new_message(route: &Route) -> RouteMessage {
    let mut msg = base(route);
    msg.header.protocol = RouteProtocol::from(route.protocol);
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = route.kind.into();
    push_destination(&mut msg, route);
    if let Some(gw) = route.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet6(gw)));
    }
    if let Some(src) = route.preferred_source {
        msg.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::Inet6(src)));
    }
    if let Some(m) = route.metric {
        msg.attributes.push(RouteAttribute::Priority(m));
    }
    push_table(&mut msg, route);
    if let Some(dev) = route.device {
        msg.attributes.push(RouteAttribute::Oif(dev));
    }
    msg
}

/// The `RTM_DELROUTE` body: like `ip -6 route del`, protocol, scope and type unspecified
/// (any origin matches); gateway, metric and device narrow the match when given.
pub(crate) fn del_message(route: &Route) -> RouteMessage {
    let mut msg = base(route);
    push_destination(&mut msg, route);
    if let Some(gw) = route.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet6(gw)));
    }
    if let Some(m) = route.metric {
        msg.attributes.push(RouteAttribute::Priority(m));
    }
    push_table(&mut msg, route);
    if let Some(dev) = route.device {
        msg.attributes.push(RouteAttribute::Oif(dev));
    }
    msg
}

/// Route operations (`ip -6 route`).
impl Handle {
    /// `ip -6 route show table TABLE`: the IPv6 routes of one table. Cached clones and
    /// multicast routes the kernel keeps in the same dump are included with their
    /// [`RouteKind`].
    pub async fn routes(&self, table: u32) -> Result<Vec<Route>> {
        let op = format!("list IPv6 routes table {table}");
        let mut req = RouteMessage::default();
        req.header.address_family = AddressFamily::Inet6;
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(req), &op).await?;
        let mut routes = Vec::new();
        for msg in msgs {
            let RouteNetlinkMessage::NewRoute(m) = msg else {
                continue;
            };
            let route = Route::from_message(&m).map_err(|source| Error::Decode {
                op: op.clone(),
                source,
            })?;
            if route.table == table {
                routes.push(route);
            }
        }
        Ok(routes)
    }

    /// `ip -6 route add`: an identical route (table, destination, metric) is `EEXIST`
    /// ([`Error::is_already_exists`]).
    pub async fn add_route(&self, route: &Route) -> Result<()> {
        let op = route.describe("add");
        self.request(
            RouteNetlinkMessage::NewRoute(new_message(route)),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip -6 route replace`: adds the route, or replaces the one with the same table,
    /// destination and metric.
    pub async fn replace_route(&self, route: &Route) -> Result<()> {
        let op = route.describe("replace");
        self.request(
            RouteNetlinkMessage::NewRoute(new_message(route)),
            NLM_F_CREATE | NLM_F_REPLACE,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip -6 route del`: a missing route is `ESRCH` ([`Error::is_not_found`]).
    pub async fn delete_route(&self, route: &Route) -> Result<()> {
        let op = route.describe("delete");
        self.request(RouteNetlinkMessage::DelRoute(del_message(route)), 0, &op)
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

    /// `ip -6 route add 2001:db8:2::/64 dev va table 51 metric 1024`.
    const ADD_TABLE_51: [u8; 64] = hex!(
        "40000000 1800 0506 3d84016b 00000000"
        "0a 40 00 00 33 03 00 01 00000000"
        "1400 0100 20010db8000200000000000000000000"
        "0800 0600 00040000"
        "0800 0400 03000000"
    );

    /// `ip -6 route replace 2001:db8:4::/64 via 2001:db8:1::2 metric 50 table 1000 dev va`
    /// (`NLM_F_REPLACE | NLM_F_CREATE`; table 1000 in `RTA_TABLE`).
    const REPLACE_TABLE_1000: [u8; 92] = hex!(
        "5c000000 1800 0505 8185016b 00000000"
        "0a 40 00 00 00 03 00 01 00000000"
        "1400 0100 20010db8000400000000000000000000"
        "1400 0500 20010db8000100000000000000000002"
        "0800 0600 32000000"
        "0800 0f00 e8030000"
        "0800 0400 03000000"
    );

    /// `ip -6 route del 2001:db8:2::/64 table 51` (`RTM_DELROUTE`).
    const DEL_TABLE_51: [u8; 48] = hex!(
        "30000000 1900 0500 8185016b 00000000"
        "0a 40 00 00 33 00 00 00 00000000"
        "1400 0100 20010db8000200000000000000000000"
    );

    /// The kernel's answer to `ip -6 route show table 1000` for the replaced route:
    /// `rtm_table` = 252 (compat), `RTA_TABLE` 1000, cache info and preference.
    const DUMP_TABLE_1000: [u8; 136] = hex!(
        "88000000 1800 2200 8185016b 007e0000"
        "0a 40 00 00 fc 03 00 01 00000000"
        "0800 0f00 e8030000"
        "1400 0100 20010db8000400000000000000000000"
        "0800 0600 32000000"
        "1400 0500 20010db8000100000000000000000002"
        "0800 0400 03000000"
        "2400 0c00 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
        "0500 1400 00000000"
    );

    /// The kernel's answer to `ip -6 route show table 51` for the route of `ADD_TABLE_51`.
    const DUMP_TABLE_51: [u8; 116] = hex!(
        "74000000 1800 2200 3d84016b 23560000"
        "0a 40 00 00 33 03 00 01 00000000"
        "0800 0f00 33000000"
        "1400 0100 20010db8000200000000000000000000"
        "0800 0600 00040000"
        "0800 0400 03000000"
        "2400 0c00 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
        "0500 1400 00000000"
    );

    fn p(s: &str) -> Ipv6Prefix {
        s.parse().unwrap()
    }

    fn decode(bytes: &[u8]) -> Route {
        match parse(bytes) {
            RouteNetlinkMessage::NewRoute(m) => Route::from_message(&m).unwrap(),
            other => panic!("not RTM_NEWROUTE: {other:?}"),
        }
    }

    #[test]
    fn add_in_small_table_emits_what_ip_sends() {
        let route = Route::new(p("2001:db8:2::/64"), 51).dev(3).metric(1024);
        let msg = RouteNetlinkMessage::NewRoute(new_message(&route));
        assert_eq!(emit(&msg, 0x0605, 0x6b01843d), ADD_TABLE_51);
        assert_eq!(parse(&ADD_TABLE_51), msg);
    }

    #[test]
    fn replace_in_large_table_emits_what_ip_sends() {
        let route = Route::new(p("2001:db8:4::/64"), 1000)
            .via("2001:db8:1::2".parse().unwrap())
            .metric(50)
            .dev(3);
        let msg = RouteNetlinkMessage::NewRoute(new_message(&route));
        assert_eq!(emit(&msg, 0x0505, 0x6b018581), REPLACE_TABLE_1000);
        assert_eq!(parse(&REPLACE_TABLE_1000), msg);
    }

    #[test]
    fn delete_emits_what_ip_sends() {
        let route = Route::new(p("2001:db8:2::/64"), 51);
        let msg = RouteNetlinkMessage::DelRoute(del_message(&route));
        assert_eq!(emit(&msg, 0x0005, 0x6b018581), DEL_TABLE_51);
        assert_eq!(parse(&DEL_TABLE_51), msg);
    }

    #[test]
    fn kernel_route_in_large_table_decodes() {
        let r = decode(&DUMP_TABLE_1000);
        let expected = Route::new(p("2001:db8:4::/64"), 1000)
            .via("2001:db8:1::2".parse().unwrap())
            .metric(50)
            .dev(3);
        assert_eq!(r, expected);
    }

    #[test]
    fn kernel_route_in_small_table_decodes() {
        let r = decode(&DUMP_TABLE_51);
        assert_eq!(r, Route::new(p("2001:db8:2::/64"), 51).dev(3).metric(1024));
        assert_eq!(
            r.describe("add"),
            "add route 2001:db8:2::/64 dev index 3 metric 1024 table 51"
        );
    }

    #[test]
    fn kernel_routes_reemit_byte_for_byte() {
        for bytes in [&DUMP_TABLE_1000[..], &DUMP_TABLE_51[..]] {
            let msg = parse(bytes);
            let seq = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
            let mut out = emit(&msg, 0x0022, seq);
            out[12..16].copy_from_slice(&bytes[12..16]);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn default_route_has_no_rta_dst() {
        let route = Route::new(Ipv6Prefix::any(), TABLE_MAIN).via("2001:db8::1".parse().unwrap());
        let msg = new_message(&route);
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Destination(_)))
        );
        assert_eq!(Route::from_message(&msg).unwrap(), route);
    }

    #[test]
    fn ipv4_route_is_a_decode_error() {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        assert!(
            Route::from_message(&msg)
                .unwrap_err()
                .detail()
                .contains("AF_INET6")
        );
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(
                std::net::Ipv4Addr::LOCALHOST,
            )));
        assert!(
            Route::from_message(&msg)
                .unwrap_err()
                .detail()
                .contains("RTA_GATEWAY")
        );
    }
}
