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
use netlink_packet_route::{RouteNetlinkMessage, link::LinkMessage};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use crate::{Address, AddressFlags, Error, Handle, Link, Result, handle::NlSocket, netns};

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
        loop {
            self.buf.clear();
            match self
                .socket
                .get_ref()
                .recv(&mut self.buf, libc::MSG_DONTWAIT)
            {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // Lost more while draining: we are resyncing anyway.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.stats.overruns += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("drain rtnetlink notifications", e)),
            }
        }
    }

    /// Waits for one datagram and applies its messages.
    async fn receive(&mut self) -> Result<()> {
        let op = "receive rtnetlink notifications";
        let from_kernel = loop {
            let mut guard = self
                .socket
                .async_fd()
                .readable()
                .await
                .map_err(|e| Error::io(op, e))?;
            self.buf.clear();
            match guard.try_io(|s| s.get_ref().recv_from(&mut self.buf, 0)) {
                Ok(Ok((_, addr))) => break addr.port_number() == 0,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.stats.overruns += 1;
                    self.out_of_sync = true;
                    return Ok(());
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(Error::io(op, e)),
                Err(_would_block) => {}
            }
        };
        if !from_kernel {
            // Only the kernel speaks for the kernel: another process in the namespace
            // (with the rights to send to the group) must not fake events.
            self.stats.foreign += 1;
            return Ok(());
        }
        let mut offset = 0;
        while offset < self.buf.len() {
            let rest = &self.buf[offset..];
            let len = match NetlinkBuffer::new_checked(rest) {
                Ok(b) => b.length() as usize,
                Err(_) => {
                    self.stats.decode_errors += 1;
                    self.out_of_sync = true;
                    break;
                }
            };
            let bytes = &rest[..len];
            offset += (len + 3) & !3;
            self.stats.messages += 1;
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
                Ok(msg) => self.apply(msg),
                Err(_) => {
                    self.stats.decode_errors += 1;
                    self.out_of_sync = true;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) {
        let out = &mut self.pending;
        match msg.payload {
            NetlinkPayload::InnerMessage(inner) => {
                let decoded = match inner {
                    RouteNetlinkMessage::NewLink(l) => {
                        Link::from_message(&l).map(|l| self.tracker.link_new(l, out))
                    }
                    RouteNetlinkMessage::DelLink(LinkMessage { header, .. }) => {
                        self.tracker.link_del(header.index, out);
                        Ok(())
                    }
                    RouteNetlinkMessage::NewAddress(a) => {
                        Address::from_message(&a).map(|a| self.tracker.addr_new(a, out))
                    }
                    RouteNetlinkMessage::DelAddress(a) => {
                        Address::from_message(&a).map(|a| self.tracker.addr_del(&a, out))
                    }
                    _ => Ok(()),
                };
                if decoded.is_err() {
                    self.stats.decode_errors += 1;
                    self.out_of_sync = true;
                }
            }
            NetlinkPayload::Overrun(_) => {
                self.stats.overruns += 1;
                self.out_of_sync = true;
            }
            _ => {}
        }
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
}
