//! Change notifications (`ip monitor link address`): a [`Monitor`] follows the kernel's
//! link and IPv6 address events and turns them into typed [`Event`]s, keeping its own
//! view of every link and address so that it can say what *changed*.
//!
//! # How it works
//!
//! The monitor owns a second rtnetlink socket, joined to `RTNLGRP_LINK` and
//! `RTNLGRP_IPV6_IFADDR`, and reads it only while [`Monitor::next`] is awaited: the kernel
//! buffers what we have not read yet, and nothing grows without bound in our process
//! (netlink-proto's unsolicited channel, by contrast, is unbounded). When that buffer
//! overflows the kernel drops notifications and the next read fails with `ENOBUFS`.
//!
//! # Resynchronisation
//!
//! On `ENOBUFS` (or a notification we cannot decode, or an `NLMSG_OVERRUN`) the monitor
//! 1. marks itself out of sync,
//! 2. drains and discards what is still queued on its socket: those notifications are
//!    older than the dump that follows, and applying them after it would roll the view
//!    back,
//! 3. dumps links and addresses over its [`Handle`],
//! 4. diffs the dump against its view and queues the differences as ordinary events
//!    (removed addresses, then link transitions, then added or changed addresses),
//!    followed by [`Event::Resynced`],
//! 5. marks itself in sync.
//!
//! Notifications that arrive after step 2 stay queued and are applied after step 4; each
//! describes a state no older than the dump, so the view converges. The same argument
//! covers start-up, where the groups are joined before the first dump. The price is that
//! an event may repeat a state already reported; consumers treat events as idempotent.
//!
//! [`Monitor::next`] is cancel safe (usable in `tokio::select!`): the out-of-sync mark is
//! only cleared once the diff is queued, and a read either completes in one poll or
//! consumes nothing.

use std::{
    collections::{BTreeMap, VecDeque},
    io,
    net::Ipv6Addr,
};

use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage, link::LinkMessage};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use crate::handle::{NlSocket, Received};
use crate::{Address, AddressFlags, Error, Handle, Link, Result, netns};

/// `RTNLGRP_LINK` (`include/uapi/linux/rtnetlink.h`).
const RTNLGRP_LINK: u32 = 1;
/// `RTNLGRP_IPV6_IFADDR`.
const RTNLGRP_IPV6_IFADDR: u32 = 9;

/// Receive buffer for one read; the kernel sends one notification per datagram, of at
/// most a page or so.
const READ_BUFFER: usize = 64 * 1024;

/// A change of the namespace's links or IPv6 addresses.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Event {
    /// An IPv6 address appeared.
    AddressAdded(Address),
    /// An IPv6 address went away (deleted, its valid lifetime ended, its link went away).
    AddressRemoved(Address),
    /// An address's flags, prefix length or scope changed, e.g. `tentative` cleared when
    /// DAD finished, `dadfailed` set, `deprecated` set when the preferred lifetime ended.
    /// Lifetime refreshes alone are not reported.
    AddressChanged {
        /// The flags before.
        old_flags: AddressFlags,
        /// The address now.
        address: Address,
    },
    /// A link became operational ([`Link::is_running`]): set up with carrier, or its
    /// carrier came back.
    LinkUp(Link),
    /// A link stopped being operational, or went away while it was.
    LinkDown(Link),
    /// Notifications were lost (`ENOBUFS`) or undecodable; the events just before this one
    /// came from a full dump and bring the view up to date.
    Resynced,
}

/// Counters of a [`Monitor`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct MonitorStats {
    /// Notification messages read.
    pub messages: u64,
    /// `ENOBUFS` and `NLMSG_OVERRUN` seen: notifications were lost.
    pub overruns: u64,
    /// Notifications that could not be decoded (each forces a resync).
    pub decode_errors: u64,
    /// Notifications from a sender other than the kernel, ignored.
    pub foreign: u64,
    /// Completed resynchronisations.
    pub resyncs: u64,
}

/// Options for [`Handle::monitor`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct MonitorOptions {
    /// `SO_RCVBUF` for the notification socket, in bytes (the kernel doubles it, and
    /// caps it at `net.core.rmem_max`); `None` keeps `net.core.rmem_default`. Tests
    /// shrink it to provoke `ENOBUFS`.
    pub receive_buffer: Option<usize>,
}

/// The monitor's view of the namespace, and the diff logic. No I/O: unit-tested alone.
#[derive(Default, Debug)]
pub(crate) struct Tracker {
    links: BTreeMap<u32, Link>,
    addrs: BTreeMap<(u32, Ipv6Addr), Address>,
}

impl Tracker {
    pub(crate) fn link_new(&mut self, link: Link, out: &mut VecDeque<Event>) {
        let was_running = self.links.get(&link.index).is_some_and(Link::is_running);
        match (was_running, link.is_running()) {
            (false, true) => out.push_back(Event::LinkUp(link.clone())),
            (true, false) => out.push_back(Event::LinkDown(link.clone())),
            _ => {}
        }
        self.links.insert(link.index, link);
    }

    pub(crate) fn link_del(&mut self, index: u32, out: &mut VecDeque<Event>) {
        if let Some(old) = self.links.remove(&index)
            && old.is_running()
        {
            out.push_back(Event::LinkDown(old));
        }
        // The kernel announces each address of a vanishing link itself; forgetting them
        // here too keeps the view right if those notifications were lost, and a later
        // RTM_DELADDR for an address we no longer hold is a no-op.
        let gone: Vec<_> = self
            .addrs
            .range((index, Ipv6Addr::UNSPECIFIED)..)
            .take_while(|((i, _), _)| *i == index)
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            if let Some(a) = self.addrs.remove(&key) {
                out.push_back(Event::AddressRemoved(a));
            }
        }
    }

    pub(crate) fn addr_new(&mut self, addr: Address, out: &mut VecDeque<Event>) {
        let key = (addr.index, addr.address);
        match self.addrs.get(&key) {
            None => out.push_back(Event::AddressAdded(addr.clone())),
            Some(old)
                if old.flags != addr.flags
                    || old.prefix_len != addr.prefix_len
                    || old.scope != addr.scope =>
            {
                out.push_back(Event::AddressChanged {
                    old_flags: old.flags,
                    address: addr.clone(),
                });
            }
            Some(_) => {}
        }
        self.addrs.insert(key, addr);
    }

    pub(crate) fn addr_del(&mut self, addr: &Address, out: &mut VecDeque<Event>) {
        if let Some(old) = self.addrs.remove(&(addr.index, addr.address)) {
            out.push_back(Event::AddressRemoved(old));
        }
    }

    /// Replaces the view by a dump, queueing what changed: removed addresses, then link
    /// transitions (links gone, then links present), then added or changed addresses.
    pub(crate) fn reconcile(
        &mut self,
        links: Vec<Link>,
        addrs: Vec<Address>,
        out: &mut VecDeque<Event>,
    ) {
        let fresh: BTreeMap<_, _> = addrs
            .into_iter()
            .map(|a| ((a.index, a.address), a))
            .collect();
        let removed: Vec<_> = self
            .addrs
            .keys()
            .filter(|k| !fresh.contains_key(k))
            .copied()
            .collect();
        for key in removed {
            if let Some(a) = self.addrs.remove(&key) {
                out.push_back(Event::AddressRemoved(a));
            }
        }
        let present: BTreeMap<_, _> = links.into_iter().map(|l| (l.index, l)).collect();
        let vanished: Vec<_> = self
            .links
            .keys()
            .filter(|i| !present.contains_key(i))
            .copied()
            .collect();
        for index in vanished {
            self.link_del(index, out);
        }
        for (_, link) in present {
            self.link_new(link, out);
        }
        for (_, addr) in fresh {
            self.addr_new(addr, out);
        }
    }

    pub(crate) fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    pub(crate) fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.addrs.values()
    }
}

/// Follows link and IPv6 address changes; see the [module docs](self).
///
/// Made by [`Handle::monitor`], in the handle's namespace.
#[derive(Debug)]
pub struct Monitor {
    socket: NlSocket,
    handle: Handle,
    tracker: Tracker,
    pending: VecDeque<Event>,
    buf: Vec<u8>,
    out_of_sync: bool,
    stats: MonitorStats,
}

fn open_notification_socket(opts: MonitorOptions) -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.add_membership(RTNLGRP_LINK)?;
    socket.add_membership(RTNLGRP_IPV6_IFADDR)?;
    if let Some(size) = opts.receive_buffer {
        let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        socket.set_rx_buf_sz(size)?;
    }
    Ok(socket)
}

impl Handle {
    /// Opens a [`Monitor`] in this handle's namespace: joins the link and IPv6 address
    /// groups, then takes the first snapshot (available at once through
    /// [`Monitor::links`] and [`Monitor::addresses`]; it produces no events).
    pub async fn monitor(&self, opts: MonitorOptions) -> Result<Monitor> {
        let op = "open rtnetlink monitor";
        let socket = match self.netns() {
            None => open_notification_socket(opts),
            Some(name) => netns::with_socket_in(name, || open_notification_socket(opts)),
        }
        .map_err(|e| Error::io(op, e))?;
        let socket = NlSocket::wrap(socket).map_err(|e| Error::io(op, e))?;
        let mut monitor = Monitor {
            socket,
            handle: self.clone(),
            tracker: Tracker::default(),
            pending: VecDeque::new(),
            buf: Vec::with_capacity(READ_BUFFER),
            out_of_sync: false,
            stats: MonitorStats::default(),
        };
        let (links, addrs) = monitor.snapshot().await?;
        let mut discard = VecDeque::new();
        monitor.tracker.reconcile(links, addrs, &mut discard);
        Ok(monitor)
    }
}

impl Monitor {
    /// The next event. Cancel safe.
    ///
    /// Errors are socket failures ([`Error::Io`]) or a failed resync dump; the monitor
    /// stays usable and retries the resync on the next call.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            if self.out_of_sync {
                self.resync().await?;
                continue;
            }
            self.receive().await?;
        }
    }

    /// The links as the monitor currently sees them, by index.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.tracker.links()
    }

    /// The IPv6 addresses as the monitor currently sees them, by (index, address).
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.tracker.addresses()
    }

    /// The addresses usable as locators now (RFC 5534 §3.1, [`Address::is_available`]).
    pub fn available_addresses(&self) -> impl Iterator<Item = &Address> {
        self.addresses().filter(|a| a.is_available())
    }

    /// Counters.
    pub fn stats(&self) -> MonitorStats {
        self.stats
    }

    async fn snapshot(&self) -> Result<(Vec<Link>, Vec<Address>)> {
        let links = self.handle.links().await?;
        let addrs = self.handle.addresses().await?;
        Ok((links, addrs))
    }

    /// Steps 2–5 of the module docs' resynchronisation.
    async fn resync(&mut self) -> Result<()> {
        self.drain()?;
        let (links, addrs) = self.snapshot().await?;
        self.tracker.reconcile(links, addrs, &mut self.pending);
        self.pending.push_back(Event::Resynced);
        self.stats.resyncs += 1;
        self.out_of_sync = false;
        Ok(())
    }

    /// Reads and discards everything queued on the socket, without waiting.
    fn drain(&mut self) -> Result<()> {
        self.socket.drain(
            &mut self.buf,
            &mut self.stats.overruns,
            "rtnetlink notifications",
        )
    }

    /// Waits for one datagram and applies its messages.
    async fn receive(&mut self) -> Result<()> {
        let from_kernel = match self
            .socket
            .receive(&mut self.buf, "rtnetlink notifications")
            .await?
        {
            Received::FromKernel => true,
            Received::Foreign => false,
            Received::Overrun => {
                self.stats.overruns += 1;
                self.out_of_sync = true;
                return Ok(());
            }
        };
        if !from_kernel {
            // Only the kernel speaks for the kernel: another process in the namespace
            // (with the rights to send to the group) must not fake events.
            self.stats.foreign += 1;
            return Ok(());
        }
        if self
            .tracker
            .datagram(&self.buf, &mut self.pending, &mut self.stats)
            .is_err()
        {
            self.out_of_sync = true;
        }
        Ok(())
    }
}

/// `RTM_NEWLINK` = 16 and `RTM_DELLINK` = 17 (`include/uapi/linux/rtnetlink.h`).
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
/// Offset of `ifi_family` (after the 16-byte `nlmsghdr`).
const IFI_FAMILY: usize = 16;

/// Bridge ports are also announced as `AF_BRIDGE` link messages (and "deleted" when they
/// leave the bridge); only `AF_UNSPEC` ones describe the link itself. Checked on the raw
/// bytes, before parsing, because their `IFLA_AF_SPEC` has another layout.
fn is_foreign_family_link(msg: &[u8]) -> bool {
    let Some(kind) = msg.get(4..6).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
        return false;
    };
    (kind == RTM_NEWLINK || kind == RTM_DELLINK)
        && msg
            .get(IFI_FAMILY)
            .is_some_and(|f| *f != u8::from(AddressFamily::Unspec))
}

/// Something in a datagram could not be used: the view may have missed a change.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OutOfSync;

impl Tracker {
    /// Applies every message of one notification datagram, queueing events. Messages that
    /// cannot be decoded, and `NLMSG_OVERRUN`, mean the view may be stale: the caller then
    /// resynchronises. Decoding goes on after a bad message when its length is sound.
    pub(crate) fn datagram(
        &mut self,
        buf: &[u8],
        out: &mut VecDeque<Event>,
        stats: &mut MonitorStats,
    ) -> Result<(), OutOfSync> {
        let mut result = Ok(());
        let mut offset = 0;
        while offset < buf.len() {
            let rest = &buf[offset..];
            let len = match NetlinkBuffer::new_checked(rest) {
                Ok(b) => b.length() as usize,
                Err(_) => {
                    // Truncated or garbled framing: nothing after this can be trusted.
                    stats.decode_errors += 1;
                    return Err(OutOfSync);
                }
            };
            offset += (len + 3) & !3;
            stats.messages += 1;
            if is_foreign_family_link(&rest[..len]) {
                continue;
            }
            let applied = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len]) {
                Ok(msg) => self.message(msg, out, stats),
                Err(_) => {
                    stats.decode_errors += 1;
                    Err(OutOfSync)
                }
            };
            result = result.and(applied);
        }
        result
    }

    fn message(
        &mut self,
        msg: NetlinkMessage<RouteNetlinkMessage>,
        out: &mut VecDeque<Event>,
        stats: &mut MonitorStats,
    ) -> Result<(), OutOfSync> {
        let inner = match msg.payload {
            NetlinkPayload::InnerMessage(inner) => inner,
            NetlinkPayload::Overrun(_) => {
                stats.overruns += 1;
                return Err(OutOfSync);
            }
            _ => return Ok(()),
        };
        let decoded = match inner {
            // Also filtered before parsing (`is_foreign_family_link`).
            RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l)
                if l.header.interface_family != AddressFamily::Unspec =>
            {
                Ok(())
            }
            RouteNetlinkMessage::NewLink(l) => {
                Link::from_message(&l).map(|l| self.link_new(l, out))
            }
            RouteNetlinkMessage::DelLink(LinkMessage { header, .. }) => {
                self.link_del(header.index, out);
                Ok(())
            }
            RouteNetlinkMessage::NewAddress(a) => {
                Address::from_message(&a).map(|a| self.addr_new(a, out))
            }
            RouteNetlinkMessage::DelAddress(a) => {
                Address::from_message(&a).map(|a| self.addr_del(&a, out))
            }
            _ => Ok(()),
        };
        decoded.map_err(|_| {
            stats.decode_errors += 1;
            OutOfSync
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        address::{Lifetime, Scope},
        link::{LinkFlags, OperState},
    };

    fn link(index: u32, running: bool) -> Link {
        let mut flags = LinkFlags::UP.bits();
        if running {
            flags |= LinkFlags::RUNNING.bits() | LinkFlags::LOWER_UP.bits();
        }
        Link {
            index,
            name: format!("veth{index}"),
            mtu: 1500,
            flags: LinkFlags::from_bits(flags),
            oper_state: if running {
                OperState::Up
            } else {
                OperState::LowerLayerDown
            },
            addr_gen_mode: None,
            kind: Some("veth".into()),
        }
    }

    fn addr(index: u32, a: &str, flags: AddressFlags) -> Address {
        Address {
            index,
            address: a.parse().unwrap(),
            prefix_len: 64,
            scope: Scope::Global,
            flags,
            valid_lifetime: Lifetime::Forever,
            preferred_lifetime: Lifetime::Forever,
        }
    }

    fn run(t: &mut Tracker, f: impl FnOnce(&mut Tracker, &mut VecDeque<Event>)) -> Vec<Event> {
        let mut out = VecDeque::new();
        f(t, &mut out);
        out.into()
    }

    #[test]
    fn address_lifecycle_yields_added_changed_removed() {
        let mut t = Tracker::default();
        let tentative = addr(2, "2001:db8::1", AddressFlags::TENTATIVE);
        assert_eq!(
            run(&mut t, |t, o| t.addr_new(tentative.clone(), o)),
            [Event::AddressAdded(tentative.clone())]
        );
        // The same state again (a repeated notification) is not an event.
        assert_eq!(run(&mut t, |t, o| t.addr_new(tentative.clone(), o)), []);
        // Only a lifetime refresh: not an event either, but the view takes it.
        let refreshed = Address {
            valid_lifetime: Lifetime::Seconds(10),
            ..tentative.clone()
        };
        assert_eq!(run(&mut t, |t, o| t.addr_new(refreshed.clone(), o)), []);
        assert_eq!(t.addresses().next(), Some(&refreshed));
        let done = addr(2, "2001:db8::1", AddressFlags::empty());
        assert_eq!(
            run(&mut t, |t, o| t.addr_new(done.clone(), o)),
            [Event::AddressChanged {
                old_flags: AddressFlags::TENTATIVE,
                address: done.clone()
            }]
        );
        assert_eq!(
            run(&mut t, |t, o| t.addr_del(&done, o)),
            [Event::AddressRemoved(done.clone())]
        );
        assert_eq!(run(&mut t, |t, o| t.addr_del(&done, o)), []);
    }

    #[test]
    fn link_events_follow_running_transitions() {
        let mut t = Tracker::default();
        // A new link that is down says nothing; one that is running says up.
        assert_eq!(run(&mut t, |t, o| t.link_new(link(3, false), o)), []);
        assert_eq!(
            run(&mut t, |t, o| t.link_new(link(3, true), o)),
            [Event::LinkUp(link(3, true))]
        );
        assert_eq!(run(&mut t, |t, o| t.link_new(link(3, true), o)), []);
        assert_eq!(
            run(&mut t, |t, o| t.link_new(link(3, false), o)),
            [Event::LinkDown(link(3, false))]
        );
        assert_eq!(
            run(&mut t, |t, o| t.link_new(link(4, true), o)),
            [Event::LinkUp(link(4, true))]
        );
    }

    #[test]
    fn vanishing_link_takes_its_addresses_along() {
        let mut t = Tracker::default();
        let a = addr(3, "2001:db8::3", AddressFlags::PERMANENT);
        let b = addr(4, "2001:db8::4", AddressFlags::PERMANENT);
        run(&mut t, |t, o| {
            t.link_new(link(3, true), o);
            t.link_new(link(4, true), o);
            t.addr_new(a.clone(), o);
            t.addr_new(b.clone(), o);
        });
        assert_eq!(
            run(&mut t, |t, o| t.link_del(3, o)),
            [
                Event::LinkDown(link(3, true)),
                Event::AddressRemoved(a.clone())
            ]
        );
        // The kernel's own RTM_DELADDR arriving afterwards changes nothing.
        assert_eq!(run(&mut t, |t, o| t.addr_del(&a, o)), []);
        assert_eq!(t.addresses().collect::<Vec<_>>(), [&b]);
    }

    #[test]
    fn reconcile_reports_exactly_the_differences() {
        let mut t = Tracker::default();
        let kept = addr(2, "2001:db8::1", AddressFlags::PERMANENT);
        let lost = addr(2, "2001:db8::2", AddressFlags::PERMANENT);
        let changing = addr(2, "2001:db8::3", AddressFlags::TENTATIVE);
        run(&mut t, |t, o| {
            t.link_new(link(2, true), o);
            t.link_new(link(5, false), o);
            t.link_new(link(6, true), o);
            t.addr_new(kept.clone(), o);
            t.addr_new(lost.clone(), o);
            t.addr_new(changing.clone(), o);
        });
        let changed = addr(
            2,
            "2001:db8::3",
            AddressFlags::DADFAILED | AddressFlags::TENTATIVE,
        );
        let new = addr(5, "fd00::5", AddressFlags::NODAD);
        let events = run(&mut t, |t, o| {
            t.reconcile(
                vec![link(2, true), link(5, true)],
                vec![new.clone(), kept.clone(), changed.clone()],
                o,
            );
        });
        assert_eq!(
            events,
            [
                Event::AddressRemoved(lost),
                Event::LinkDown(link(6, true)),
                Event::LinkUp(link(5, true)),
                Event::AddressChanged {
                    old_flags: AddressFlags::TENTATIVE,
                    address: changed.clone()
                },
                Event::AddressAdded(new.clone()),
            ]
        );
        assert_eq!(t.addresses().collect::<Vec<_>>(), [&kept, &changed, &new]);
        assert_eq!(t.links().map(|l| l.index).collect::<Vec<_>>(), [2, 5]);
        // Reconciling with the same dump again is silent.
        assert_eq!(
            run(&mut t, |t, o| t.reconcile(
                vec![link(2, true), link(5, true)],
                vec![kept, changed, new],
                o
            )),
            []
        );
    }

    #[test]
    fn reconcile_from_empty_is_the_initial_snapshot() {
        let mut t = Tracker::default();
        let a = addr(1, "2001:db8::1", AddressFlags::PERMANENT);
        let events = run(&mut t, |t, o| {
            t.reconcile(vec![link(1, true)], vec![a.clone()], o);
        });
        assert_eq!(
            events,
            [Event::LinkUp(link(1, true)), Event::AddressAdded(a)]
        );
    }

    // Notification datagrams captured with a Python socket joined to RTNLGRP_LINK and
    // RTNLGRP_IPV6_IFADDR on kernel 6.18, in a namespace with veth va (ifindex 3, addrgenmode
    // none) and vb (ifindex 2), while running `ip -6 addr add 2001:db8:6::1/64 dev vb
    // nodad`, `ip -6 addr del 2001:db8:6::1/64 dev vb` and `ip link set va down`.
    const NEWADDR: &[u8] = include_bytes!("testdata/newaddr_vb.bin");
    const DELADDR: &[u8] = include_bytes!("testdata/deladdr_vb.bin");
    const VA_DOWN: &[u8] = include_bytes!("testdata/newlink_va_down.bin");
    const VB_NO_CARRIER: &[u8] = include_bytes!("testdata/newlink_vb_no_carrier.bin");

    fn feed(
        t: &mut Tracker,
        buf: &[u8],
        stats: &mut MonitorStats,
    ) -> (Vec<Event>, Result<(), OutOfSync>) {
        let mut out = VecDeque::new();
        let r = t.datagram(buf, &mut out, stats);
        (out.into(), r)
    }

    #[test]
    fn kernel_address_notifications_become_events() {
        let mut t = Tracker::default();
        let mut stats = MonitorStats::default();
        let expected = Address {
            index: 2,
            address: "2001:db8:6::1".parse().unwrap(),
            prefix_len: 64,
            scope: Scope::Global,
            flags: AddressFlags::NODAD | AddressFlags::PERMANENT,
            valid_lifetime: Lifetime::Forever,
            preferred_lifetime: Lifetime::Forever,
        };
        assert_eq!(
            feed(&mut t, NEWADDR, &mut stats),
            (vec![Event::AddressAdded(expected.clone())], Ok(()))
        );
        assert_eq!(
            feed(&mut t, DELADDR, &mut stats),
            (vec![Event::AddressRemoved(expected)], Ok(()))
        );
        assert_eq!(stats.messages, 2);
        assert_eq!(stats.decode_errors, 0);
    }

    #[test]
    fn kernel_link_notifications_become_transitions() {
        let mut t = Tracker::default();
        let mut stats = MonitorStats::default();
        run(&mut t, |t, o| {
            t.link_new(link(3, true), o);
            t.link_new(link(2, true), o);
        });
        let (events, r) = feed(&mut t, VA_DOWN, &mut stats);
        assert_eq!(r, Ok(()));
        let [Event::LinkDown(va)] = &events[..] else {
            panic!("{events:?}");
        };
        assert_eq!((va.index, va.name.as_str(), va.mtu), (3, "va", 1400));
        assert!(!va.is_up());
        assert_eq!(va.oper_state, OperState::Down);
        assert_eq!(va.addr_gen_mode, Some(crate::AddrGenMode::None));
        assert_eq!(va.kind.as_deref(), Some("veth"));
        let (events, _) = feed(&mut t, VB_NO_CARRIER, &mut stats);
        let [Event::LinkDown(vb)] = &events[..] else {
            panic!("{events:?}");
        };
        assert!(vb.is_up() && !vb.is_running());
        assert_eq!(vb.oper_state, OperState::LowerLayerDown);
        assert_eq!(vb.addr_gen_mode, Some(crate::AddrGenMode::Eui64));
    }

    #[test]
    fn several_messages_in_one_datagram_are_all_applied() {
        let mut t = Tracker::default();
        let mut stats = MonitorStats::default();
        let both = [NEWADDR, DELADDR].concat();
        let (events, r) = feed(&mut t, &both, &mut stats);
        assert_eq!(r, Ok(()));
        assert!(
            matches!(
                &events[..],
                [Event::AddressAdded(_), Event::AddressRemoved(_)]
            ),
            "{events:?}"
        );
    }

    #[test]
    fn bridge_family_link_messages_are_ignored() {
        let mut t = Tracker::default();
        let mut stats = MonitorStats::default();
        run(&mut t, |t, o| t.link_new(link(3, true), o));
        let mut bridge = VA_DOWN.to_vec();
        bridge[16] = 7; // ifi_family = AF_BRIDGE
        assert_eq!(feed(&mut t, &bridge, &mut stats), (vec![], Ok(())));
        bridge[4] = 17; // RTM_DELLINK, AF_BRIDGE: a port leaving a bridge
        assert_eq!(feed(&mut t, &bridge, &mut stats), (vec![], Ok(())));
        assert!(t.links().any(|l| l.index == 3 && l.is_running()));
    }

    #[test]
    fn damaged_datagrams_ask_for_a_resync() {
        let mut t = Tracker::default();
        let mut stats = MonitorStats::default();
        // Truncated: the length field promises more than there is.
        let (events, r) = feed(&mut t, &NEWADDR[..40], &mut stats);
        assert_eq!((events, r), (vec![], Err(OutOfSync)));
        assert_eq!(stats.decode_errors, 1);
        // Well framed but not an address: a 4-byte IFA_ADDRESS. The message after it is
        // still applied.
        let mut bad = NEWADDR.to_vec();
        bad[24..26].copy_from_slice(&8u16.to_le_bytes());
        bad[0..4].copy_from_slice(&32u32.to_le_bytes());
        bad.truncate(32);
        let (events, r) = feed(&mut t, &[&bad[..], DELADDR, NEWADDR].concat(), &mut stats);
        assert_eq!(r, Err(OutOfSync));
        assert!(
            matches!(&events[..], [Event::AddressAdded(_)]),
            "{events:?}"
        );
        assert_eq!(stats.decode_errors, 2);
        // NLMSG_OVERRUN.
        let overrun = [16u32.to_le_bytes(), [4, 0, 0, 0], [0; 4], [0; 4]].concat();
        assert_eq!(feed(&mut t, &overrun, &mut stats).1, Err(OutOfSync));
        assert_eq!(stats.overruns, 1);
    }

    /// Every single-byte corruption and every truncation of the captured notifications is
    /// handled without a panic (style.md: nothing panics on untrusted input).
    #[test]
    fn corrupted_notifications_never_panic() {
        for capture in [NEWADDR, DELADDR, VA_DOWN, VB_NO_CARRIER] {
            for cut in 0..=capture.len() {
                let mut t = Tracker::default();
                let _ = feed(&mut t, &capture[..cut], &mut MonitorStats::default());
            }
            for pos in 0..capture.len() {
                for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut bytes = capture.to_vec();
                    bytes[pos] = value;
                    let mut t = Tracker::default();
                    let _ = feed(&mut t, &bytes, &mut MonitorStats::default());
                }
            }
        }
    }
}
