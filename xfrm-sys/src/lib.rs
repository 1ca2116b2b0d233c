//! The one crate of shim6d that talks to the kernel over netlink.
//!
//! # What it is
//!
//! Typed, async (tokio) wrappers over rtnetlink for what the daemon configures and watches:
//! links, IPv6 addresses with change notifications, IPv6 routes and IPv6 policy rules. It
//! is built on the rust-netlink crates: `netlink-packet-route` / `netlink-packet-core` for
//! the messages, `netlink-proto` for the request connection, `netlink-sys` for the
//! sockets. Requests are encoded attribute for attribute as iproute2 encodes them (the
//! unit tests compare against bytes captured from `ip`), replies are decoded into plain
//! structs ([`Link`], [`Address`], [`Route`], [`Rule`]) that keep nothing of the netlink
//! types in their public face.
//!
//! It also holds [`netns`]: running code inside a named network namespace, and the test
//! kit every netns test of the project builds on.
//!
//! # What it is not
//!
//! Not a general rtnetlink library: IPv6 only for addresses, routes and rules; no
//! neighbours or qdiscs, and the only links it creates are ip6tnl tunnels ([`tunnel`];
//! tests create veth pairs with `ip` through the kit). XFRM covers what `MipShim6` needs:
//! manually keyed ESP transport SAs and policies on the Mobility Header ([`xfrm`]). The
//! `mptcp_pm` generic-netlink family is in [`mptcp`]. No shelling out to `ip` outside
//! the test kit.
//!
//! The CI kernel (6.18) lacks `CONFIG_IPV6_TUNNEL`, `CONFIG_INET6_ESP`,
//! `CONFIG_CRYPTO_GCM` and `CONFIG_IPV6_MIP6`: there the ip6tnl and ESP integration tests
//! print `SKIPPED` with the kernel's own refusal, and a policy on MH type 5 never matches
//! (the kernel reads the MH type only with `CONFIG_IPV6_MIP6`); a policy on the whole of
//! protocol 135 does.
//!
//! # Module map
//!
//! | module | `ip` equivalent | what |
//! | --- | --- | --- |
//! | [`link`] | `ip link show`, `ip link set dev D up/down/mtu/addrgenmode`, `ip link del` | [`Handle::links`], [`Handle::link_by_name`], [`Handle::set_link_up`], [`Handle::set_mtu`], [`Handle::set_addr_gen_mode`], [`Handle::delete_link`] |
//! | [`tunnel`] | `ip -6 tunnel add/change/show` (sent as `ip link add/set NAME type ip6tnl mode ip6ip6 local A remote B`) | [`Ip6Tunnel`], [`Handle::add_ip6_tunnel`], [`Handle::set_ip6_tunnel_remote`], [`Handle::change_ip6_tunnel`], [`Handle::ip6_tunnels`] (needs `CONFIG_IPV6_TUNNEL`) |
//! | [`address`] | `ip -6 addr show/add/replace/del` | [`Handle::addresses`], [`Handle::add_address`], [`Address::is_available`] (RFC 5534 §3.1) |
//! | [`route`] | `ip -6 route show table T/add/replace/del` | [`Handle::routes`], [`Handle::add_route`], [`Handle::replace_route`], [`Handle::delete_route`] |
//! | [`rule`] | `ip -6 rule show/add/del` | [`Handle::rules`], [`Handle::add_rule`], [`Handle::delete_rule`] |
//! | [`monitor`] | `ip monitor link address` (IPv6) | [`Handle::monitor`] → [`Monitor::next`] → [`Event`], resync after `ENOBUFS` |
//! | [`mptcp`] | `ip mptcp monitor`, `ss -M` (MPTCP userspace PM) | [`mptcp::Pm`] (commands), [`mptcp::EventStream`] (events, resync from `sock_diag`), [`mptcp::Manager`] (address IDs, failure recipe) |
//! | [`xfrm`] | `ip xfrm state add/update/get/delete/list/flush`, `ip xfrm policy add/update/get/delete/list/flush` | [`xfrm::Xfrm`] (`NETLINK_XFRM`), [`xfrm::SecurityAssociation`], [`xfrm::Policy`], [`xfrm::MobilityProtection`] (RFC 3776 manual keying of MN ↔ HA signalling) |
//! | [`genl`] | | generic netlink: [`genl::Genl::resolve`] (`nlctrl`), requests with extended ACKs |
//! | [`netns`] | `ip netns add/del/exec`, `ip link add type veth` | [`netns::spawn`] (a thread in a namespace), [`netns::Netns`] (test kit) |
//! | `error` | | [`Error`] (`Kernel { errno, op, message }`, `Io`, `Unexpected`, `Decode`), [`DecodeError`] |
//!
//! # Namespaces
//!
//! A netlink socket belongs to the network namespace of the thread that created it, for
//! life. [`Handle::new`] uses the calling thread's namespace; [`Handle::in_netns`] opens
//! its socket on a short-lived thread inside `/run/netns/NAME` and then works from any
//! runtime. A daemon under test runs whole inside a namespace on a thread made by
//! [`netns::spawn`]. Never `setns` a thread you do not own (tokio workers, the blocking
//! pool). The crate's only `unsafe` is that `setns(2)` call, in one private module.
//!
//! # Example
//!
//! ```no_run
//! use xfrm_sys::{AddressRequest, FwMark, Handle, Ipv6Prefix, Route, Rule};
//!
//! # async fn f() -> xfrm_sys::Result<()> {
//! let h = Handle::new()?;
//! let tun = h.link_by_name("shim6").await?;
//! h.set_addr_gen_mode(tun.index, xfrm_sys::AddrGenMode::None).await?;
//! h.set_link_up(tun.index).await?;
//! let peer: Ipv6Prefix = "2001:db8:b::1/128".parse().unwrap();
//! h.replace_route(&Route::new(peer, 51).dev(tun.index)).await?;
//! let guard = Rule::lookup(51).invert().fwmark(FwMark::exact(0x51)).priority(100);
//! match h.add_rule(&guard).await {
//!     Err(e) if e.is_already_exists() => {} // idempotent
//!     other => other?,
//! }
//! h.add_address(&AddressRequest::new(tun.index, "2001:db8:a::1".parse().unwrap(), 64).nodad())
//!     .await?;
//! # Ok(())
//! # }
//! ```

pub mod address;
mod error;
pub mod genl;
mod handle;
pub mod link;
pub mod monitor;
pub mod mptcp;
pub mod netns;
mod prefix;
pub mod route;
pub mod rule;
mod sys;
pub mod tunnel;
pub mod xfrm;

pub use address::{Address, AddressFlags, AddressRequest, Lifetime, Scope};
pub use error::{DecodeError, Error, Result};
pub use handle::Handle;
pub use link::{AddrGenMode, Link, LinkFlags, OperState};
pub use monitor::{Event, Monitor, MonitorOptions, MonitorStats};
pub use prefix::{InvalidPrefix, Ipv6Prefix};
pub use route::{Route, RouteKind};
pub use rule::{FwMark, Rule, RuleAction};
pub use tunnel::{Ip6Tunnel, TunnelMode};

/// Byte-level helpers for the wire tests: emit a message as the kernel would see it, parse
/// captured bytes.
#[cfg(test)]
pub(crate) mod test_util {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::RouteNetlinkMessage;

    /// `msg` with netlink header flags `flags`, sequence `seq` and port 0, serialised.
    pub(crate) fn emit(msg: &RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg.clone()));
        nl.finalize();
        // Emitting into a 0xa5-filled buffer proves every byte is written (style.md tier 1).
        let mut buf = vec![0xa5; nl.buffer_len()];
        nl.serialize(&mut buf);
        buf
    }

    /// Parses one captured netlink message; panics (test only) when it is not rtnetlink.
    pub(crate) fn parse(bytes: &[u8]) -> RouteNetlinkMessage {
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
            .expect("captured bytes parse")
            .payload
        {
            NetlinkPayload::InnerMessage(m) => m,
            other => panic!("not an rtnetlink message: {other:?}"),
        }
    }
}
