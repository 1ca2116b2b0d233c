//! The `mptcp_pm` wire format: constants (hard-coded from the kernel's
//! `Documentation/netlink/specs/mptcp_pm.yaml` / `include/uapi/linux/mptcp_pm.h`, checked
//! against the running 6.18 kernel; mptcp-pm.md §2), command builders and event parsing.
//! No I/O here: everything is unit-tested on bytes.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    num::NonZeroU8,
    ops::BitOr,
};

use crate::{
    DecodeError,
    genl::{AttrWriter, Message, attrs, fixed},
};

/// The generic netlink family name.
pub const FAMILY_NAME: &str = "mptcp_pm";
/// The multicast group of the path-manager events.
pub const EVENTS_GROUP: &str = "mptcp_pm_events";

/// `MPTCP_PM_CMD_*` (mptcp-pm.md §2, "Commands").
pub(crate) mod cmd {
    pub(crate) const GET_ADDR: u8 = 3;
    pub(crate) const GET_LIMITS: u8 = 6;
    pub(crate) const SET_FLAGS: u8 = 7;
    pub(crate) const ANNOUNCE: u8 = 8;
    pub(crate) const REMOVE: u8 = 9;
    pub(crate) const SUBFLOW_CREATE: u8 = 10;
    pub(crate) const SUBFLOW_DESTROY: u8 = 11;
}

/// Top-level `MPTCP_PM_ATTR_*`.
pub(crate) mod pm_attr {
    pub(crate) const ADDR: u16 = 1;
    pub(crate) const RCV_ADD_ADDRS: u16 = 2;
    pub(crate) const SUBFLOWS: u16 = 3;
    /// u32, host order.
    pub(crate) const TOKEN: u16 = 4;
    pub(crate) const LOC_ID: u16 = 5;
    pub(crate) const ADDR_REMOTE: u16 = 6;
}

/// `MPTCP_PM_ADDR_ATTR_*`, inside the ADDR / `ADDR_REMOTE` nests.
pub(crate) mod addr_attr {
    /// u16, host order.
    pub(crate) const FAMILY: u16 = 1;
    pub(crate) const ID: u16 = 2;
    /// 4 bytes, network order.
    pub(crate) const ADDR4: u16 = 3;
    pub(crate) const ADDR6: u16 = 4;
    /// u16, **host** order: the kernel applies `htons(nla_get_u16())` (mptcp-pm.md §2).
    pub(crate) const PORT: u16 = 5;
    pub(crate) const FLAGS: u16 = 6;
    pub(crate) const IF_IDX: u16 = 7;
}

/// `MPTCP_EVENT_*`: the genl `cmd` of an event.
pub(crate) mod event {
    pub(crate) const CREATED: u8 = 1;
    pub(crate) const ESTABLISHED: u8 = 2;
    pub(crate) const CLOSED: u8 = 3;
    pub(crate) const ANNOUNCED: u8 = 6;
    pub(crate) const REMOVED: u8 = 7;
    pub(crate) const SUB_ESTABLISHED: u8 = 10;
    pub(crate) const SUB_CLOSED: u8 = 11;
    pub(crate) const SUB_PRIORITY: u8 = 13;
    pub(crate) const LISTENER_CREATED: u8 = 15;
    pub(crate) const LISTENER_CLOSED: u8 = 16;
}

/// `MPTCP_ATTR_*`: event attributes. Ports here are **network** order.
pub(crate) mod ev_attr {
    pub(crate) const TOKEN: u16 = 1;
    pub(crate) const FAMILY: u16 = 2;
    pub(crate) const LOC_ID: u16 = 3;
    pub(crate) const REM_ID: u16 = 4;
    pub(crate) const SADDR4: u16 = 5;
    pub(crate) const SADDR6: u16 = 6;
    pub(crate) const DADDR4: u16 = 7;
    pub(crate) const DADDR6: u16 = 8;
    pub(crate) const SPORT: u16 = 9;
    pub(crate) const DPORT: u16 = 10;
    pub(crate) const BACKUP: u16 = 11;
    pub(crate) const ERROR: u16 = 12;
    pub(crate) const FLAGS: u16 = 13;
    pub(crate) const IF_IDX: u16 = 15;
    pub(crate) const RESET_REASON: u16 = 16;
    pub(crate) const RESET_FLAGS: u16 = 17;
    pub(crate) const SERVER_SIDE: u16 = 18;
}

/// `MPTCP_PM_EV_FLAG_SERVER_SIDE` in the event `FLAGS` attribute.
const EV_FLAG_SERVER_SIDE: u16 = 1 << 1;

/// `AF_INET`, `AF_INET6` as the kernel writes them in `FAMILY` attributes.
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// An MPTCP connection token: the kernel's name for a connection inside one netns
/// (`ss -M` prints it in hex, as [`fmt::Display`] does here).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Token(pub u32);

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// `MPTCP_PM_ADDR_FLAG_*` of an address entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AddrFlags(u32);

impl AddrFlags {
    /// Announce the address (`ADD_ADDR`); required by ANNOUNCE, refused by `SUBFLOW_CREATE`.
    pub const SIGNAL: Self = Self(1);
    /// Use the address for subflows; what `SUBFLOW_CREATE` expects.
    pub const SUBFLOW: Self = Self(2);
    /// Subflows from it are backup (`MP_PRIO` / `MP_JOIN` backup bit).
    pub const BACKUP: Self = Self(4);
    /// In-kernel PM: a subflow to every peer address.
    pub const FULLMESH: Self = Self(8);
    /// Created by the kernel for an address that received a join.
    pub const IMPLICIT: Self = Self(16);
    /// New on 6.18 (in-kernel PM).
    pub const LAMINAR: Self = Self(32);

    /// No flag.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// From the raw bits (unknown bits kept).
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for AddrFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for AddrFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::SIGNAL, "signal"),
            (Self::SUBFLOW, "subflow"),
            (Self::BACKUP, "backup"),
            (Self::FULLMESH, "fullmesh"),
            (Self::IMPLICIT, "implicit"),
            (Self::LAMINAR, "laminar"),
        ];
        let mut list = f.debug_set();
        for (flag, name) in names {
            if self.contains(flag) {
                list.entry(&format_args!("{name}"));
            }
        }
        let rest = self.0 & !0x3f;
        if rest != 0 {
            list.entry(&format_args!("{rest:#x}"));
        }
        list.finish()
    }
}

/// A local address entry of a connection: what `SUBFLOW_CREATE` and ANNOUNCE take, and
/// what the `GET_ADDR` dump returns.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LocalAddr {
    /// The address ID, 1..=255 (pitfall 1: ID 0 is the initial subflow's; the kernel
    /// accepts a missing ID and then tags the subflow 0, which confuses the peer).
    pub id: NonZeroU8,
    /// The local address.
    pub addr: IpAddr,
    /// The local port, 0 for "any" (host order here; the crate converts).
    pub port: u16,
    /// Flags; SUBFLOW (optionally | BACKUP) for subflows, SIGNAL for announcements.
    pub flags: AddrFlags,
    /// Bind subflows to this interface (`if_idx`), `None` for the routing decision.
    pub if_idx: Option<u32>,
}

impl LocalAddr {
    /// A subflow source `addr` with `id`: flags SUBFLOW, any port, no interface.
    pub fn subflow(id: NonZeroU8, addr: IpAddr) -> Self {
        Self {
            id,
            addr,
            port: 0,
            flags: AddrFlags::SUBFLOW,
            if_idx: None,
        }
    }

    /// Marks subflows from this address backup.
    pub fn backup(mut self, backup: bool) -> Self {
        self.flags = if backup {
            self.flags | AddrFlags::BACKUP
        } else {
            AddrFlags(self.flags.0 & !AddrFlags::BACKUP.0)
        };
        self
    }
}

/// An entry of the `GET_ADDR` dump; the ID may be 0 for the initial subflow's address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AddrEntry {
    /// The address ID.
    pub id: u8,
    /// The address.
    pub addr: IpAddr,
    /// The port (host order), 0 when none.
    pub port: u16,
    /// Flags.
    pub flags: AddrFlags,
    /// Interface index, when set.
    pub if_idx: Option<u32>,
}

/// The in-kernel PM limits (`ip mptcp limits`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// `add_addr_accepted`: `ADD_ADDRs` the in-kernel PM acts on.
    pub rcv_add_addrs: u32,
    /// Extra subflows the in-kernel PM accepts or creates.
    pub subflows: u32,
}

fn family_of(addr: IpAddr) -> u16 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// The fields of an address nest to send; `None` leaves an attribute out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AddrNest {
    pub(crate) id: Option<u8>,
    pub(crate) addr: IpAddr,
    pub(crate) port: Option<u16>,
    pub(crate) flags: Option<AddrFlags>,
    pub(crate) if_idx: Option<u32>,
}

impl AddrNest {
    fn endpoint(sa: SocketAddr) -> Self {
        Self {
            id: None,
            addr: sa.ip(),
            port: Some(sa.port()),
            flags: None,
            if_idx: None,
        }
    }

    fn local(l: &LocalAddr) -> Self {
        Self {
            id: Some(l.id.get()),
            addr: l.addr,
            port: (l.port != 0).then_some(l.port),
            flags: Some(l.flags),
            if_idx: l.if_idx,
        }
    }

    fn emit(&self, kind: u16, w: &mut AttrWriter) {
        w.nest(kind, |n| {
            n.u16(addr_attr::FAMILY, family_of(self.addr));
            if let Some(id) = self.id {
                n.u8(addr_attr::ID, id);
            }
            match self.addr {
                IpAddr::V4(a) => n.bytes(addr_attr::ADDR4, &a.octets()),
                IpAddr::V6(a) => n.bytes(addr_attr::ADDR6, &a.octets()),
            };
            if let Some(port) = self.port {
                // Host order inside command nests (mptcp-pm.md §2).
                n.u16(addr_attr::PORT, port);
            }
            if let Some(flags) = self.flags {
                n.u32(addr_attr::FLAGS, flags.bits());
            }
            if let Some(i) = self.if_idx {
                n.u32(addr_attr::IF_IDX, i);
            }
        });
    }
}

fn command(family: u16, version: u8, cmd: u8, f: impl FnOnce(&mut AttrWriter)) -> Message {
    let mut w = AttrWriter::new();
    f(&mut w);
    let mut m = Message::new(family, cmd, version);
    m.attrs = w.finish();
    m
}

/// `SUBFLOW_CREATE`: TOKEN, ADDR {family, id, addr, [port], flags, [`if_idx`]}, `ADDR_REMOTE`
/// {family, addr, port}.
pub(crate) fn subflow_create(
    fam: u16,
    ver: u8,
    token: Token,
    local: &LocalAddr,
    remote: SocketAddr,
) -> Message {
    command(fam, ver, cmd::SUBFLOW_CREATE, |w| {
        w.u32(pm_attr::TOKEN, token.0);
        AddrNest::local(local).emit(pm_attr::ADDR, w);
        AddrNest::endpoint(remote).emit(pm_attr::ADDR_REMOTE, w);
    })
}

/// `SUBFLOW_DESTROY`: TOKEN, ADDR {family, addr, port}, `ADDR_REMOTE` {family, addr, port}.
pub(crate) fn subflow_destroy(
    fam: u16,
    ver: u8,
    token: Token,
    local: SocketAddr,
    remote: SocketAddr,
) -> Message {
    command(fam, ver, cmd::SUBFLOW_DESTROY, |w| {
        w.u32(pm_attr::TOKEN, token.0);
        AddrNest::endpoint(local).emit(pm_attr::ADDR, w);
        AddrNest::endpoint(remote).emit(pm_attr::ADDR_REMOTE, w);
    })
}

/// ANNOUNCE: TOKEN, ADDR {family, id, addr, [port], flags incl. SIGNAL, [`if_idx`]}.
pub(crate) fn announce(fam: u16, ver: u8, token: Token, local: &LocalAddr) -> Message {
    let mut l = *local;
    l.flags = l.flags | AddrFlags::SIGNAL;
    command(fam, ver, cmd::ANNOUNCE, |w| {
        w.u32(pm_attr::TOKEN, token.0);
        AddrNest::local(&l).emit(pm_attr::ADDR, w);
    })
}

/// REMOVE: TOKEN, `LOC_ID`.
pub(crate) fn remove(fam: u16, ver: u8, token: Token, id: NonZeroU8) -> Message {
    command(fam, ver, cmd::REMOVE, |w| {
        w.u32(pm_attr::TOKEN, token.0);
        w.u8(pm_attr::LOC_ID, id.get());
    })
}

/// `SET_FLAGS`: TOKEN, ADDR {family, addr, port, flags}, `ADDR_REMOTE` {family, addr, port}.
pub(crate) fn set_flags(
    fam: u16,
    ver: u8,
    token: Token,
    local: SocketAddr,
    remote: SocketAddr,
    flags: AddrFlags,
) -> Message {
    command(fam, ver, cmd::SET_FLAGS, |w| {
        w.u32(pm_attr::TOKEN, token.0);
        let mut l = AddrNest::endpoint(local);
        l.flags = Some(flags);
        l.emit(pm_attr::ADDR, w);
        AddrNest::endpoint(remote).emit(pm_attr::ADDR_REMOTE, w);
    })
}

/// `GET_ADDR` (sent as a dump): TOKEN.
pub(crate) fn get_addr(fam: u16, ver: u8, token: Token) -> Message {
    command(fam, ver, cmd::GET_ADDR, |w| {
        w.u32(pm_attr::TOKEN, token.0);
    })
}

/// `GET_LIMITS`: no attribute.
pub(crate) fn get_limits(fam: u16, ver: u8) -> Message {
    command(fam, ver, cmd::GET_LIMITS, |_| {})
}

fn ip_from(context: &str, kind: u16, value: &[u8]) -> Result<IpAddr, DecodeError> {
    if kind == addr_attr::ADDR4 {
        Ok(IpAddr::V4(Ipv4Addr::from(fixed::<4>(
            context, "addr4", value,
        )?)))
    } else {
        Ok(IpAddr::V6(Ipv6Addr::from(fixed::<16>(
            context, "addr6", value,
        )?)))
    }
}

/// Decodes one `GET_ADDR` answer: `MPTCP_PM_ATTR_ADDR` nest.
pub(crate) fn parse_addr_entry(msg: &Message) -> Result<AddrEntry, DecodeError> {
    const CX: &str = "MPTCP_PM_CMD_GET_ADDR answer";
    let mut nest = None;
    for a in attrs(&msg.attrs) {
        let (kind, value) = a?;
        if kind == pm_attr::ADDR {
            nest = Some(value);
        }
    }
    let nest = nest.ok_or_else(|| DecodeError::new(CX, "no MPTCP_PM_ATTR_ADDR"))?;
    let (mut id, mut addr, mut port, mut flags, mut if_idx) = (0, None, 0, 0, None);
    for a in attrs(nest) {
        let (kind, value) = a?;
        match kind {
            addr_attr::ID => id = fixed::<1>(CX, "id", value)?[0],
            addr_attr::ADDR4 | addr_attr::ADDR6 => addr = Some(ip_from(CX, kind, value)?),
            addr_attr::PORT => port = u16::from_ne_bytes(fixed(CX, "port", value)?),
            addr_attr::FLAGS => flags = u32::from_ne_bytes(fixed(CX, "flags", value)?),
            addr_attr::IF_IDX => {
                let i = i32::from_ne_bytes(fixed(CX, "if_idx", value)?);
                if_idx = u32::try_from(i).ok().filter(|i| *i != 0);
            }
            _ => {}
        }
    }
    Ok(AddrEntry {
        id,
        addr: addr.ok_or_else(|| DecodeError::new(CX, "address nest without an address"))?,
        port,
        flags: AddrFlags(flags),
        if_idx,
    })
}

/// Decodes the `GET_LIMITS` answer.
pub(crate) fn parse_limits(msg: &Message) -> Result<Limits, DecodeError> {
    const CX: &str = "MPTCP_PM_CMD_GET_LIMITS answer";
    let (mut rcv, mut sub) = (None, None);
    for a in attrs(&msg.attrs) {
        match a? {
            (pm_attr::RCV_ADD_ADDRS, v) => rcv = Some(u32::from_ne_bytes(fixed(CX, "rcv", v)?)),
            (pm_attr::SUBFLOWS, v) => sub = Some(u32::from_ne_bytes(fixed(CX, "subflows", v)?)),
            _ => {}
        }
    }
    match (rcv, sub) {
        (Some(rcv_add_addrs), Some(subflows)) => Ok(Limits {
            rcv_add_addrs,
            subflows,
        }),
        _ => Err(DecodeError::new(CX, "missing RCV_ADD_ADDRS or SUBFLOWS")),
    }
}

/// An event attribute this crate does not interpret, kept as it came.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RawAttr {
    /// The attribute type (`MPTCP_ATTR_*`).
    pub kind: u16,
    /// Its value bytes.
    pub value: Vec<u8>,
}

/// A connection, as CREATED / ESTABLISHED describe it (its initial subflow).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Connection {
    /// The connection's token.
    pub token: Token,
    /// Local address and port of the initial subflow.
    pub local: SocketAddr,
    /// Remote address and port of the initial subflow: the port to join (pitfall 3).
    pub remote: SocketAddr,
    /// Local address ID (0: the initial subflow).
    pub loc_id: u8,
    /// Remote address ID.
    pub rem_id: u8,
    /// This side accepted the connection (`FLAGS` bit `SERVER_SIDE` or the old
    /// `SERVER_SIDE` attribute).
    pub server_side: bool,
    /// The raw `FLAGS` attribute (bit 0 `DENY_JOIN_ID0`), 0 when absent.
    pub flags: u16,
    /// Attributes not interpreted above.
    pub other: Vec<RawAttr>,
}

/// A subflow, as `SUB_ESTABLISHED` / `SUB_CLOSED` / `SUB_PRIORITY` describe it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Subflow {
    /// The connection's token.
    pub token: Token,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Local address ID.
    pub loc_id: u8,
    /// Remote address ID.
    pub rem_id: u8,
    /// The subflow is backup (for `SUB_PRIORITY`: the new value).
    pub backup: bool,
    /// The interface the subflow is bound to, when the kernel said (only when non-zero).
    pub if_idx: Option<u32>,
    /// The socket error (an errno: 104, 110, 111, ...), when non-zero.
    pub error: Option<u8>,
    /// The `MP_TCPRST` reason received, when the peer reset the subflow.
    pub reset_reason: Option<u32>,
    /// The `MP_TCPRST` flags received.
    pub reset_flags: Option<u32>,
    /// Attributes not interpreted above.
    pub other: Vec<RawAttr>,
}

impl Subflow {
    /// The 4-tuple key (local, remote).
    pub fn key(&self) -> (SocketAddr, SocketAddr) {
        (self.local, self.remote)
    }
}

/// What an event says about the peer's address announcement (ANNOUNCED).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Announcement {
    /// The connection's token.
    pub token: Token,
    /// The ID the peer gave the address.
    pub rem_id: u8,
    /// The announced address, with the announced port or, when none was announced, the
    /// peer's connection port (mptcp-pm.md §2). ANNOUNCED has no FAMILY attribute: the
    /// family comes from DADDR4 / DADDR6.
    pub addr: SocketAddr,
    /// Attributes not interpreted above.
    pub other: Vec<RawAttr>,
}

/// An MPTCP listening socket (`LISTENER_CREATED` / `LISTENER_CLOSED`, emitted for any).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Listener {
    /// The listening address and port.
    pub local: SocketAddr,
    /// Attributes not interpreted above.
    pub other: Vec<RawAttr>,
}

/// A path-manager event (`mptcp_pm_events`), or the monitor's resync marker.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A connection was created (SYN sent or received); too early for `SUBFLOW_CREATE`
    /// (pitfall 4).
    Created(Connection),
    /// A connection is established (`MP_CAPABLE` done): the time to create subflows.
    Established(Connection),
    /// A connection is gone, with all its subflows and address IDs.
    Closed {
        /// The connection's token.
        token: Token,
        /// Attributes besides the token.
        other: Vec<RawAttr>,
    },
    /// The peer announced an address (`ADD_ADDR`).
    Announced(Announcement),
    /// The peer withdrew an address (`RM_ADDR`).
    Removed {
        /// The connection's token.
        token: Token,
        /// The withdrawn remote address ID.
        rem_id: u8,
        /// Attributes besides token and ID.
        other: Vec<RawAttr>,
    },
    /// A joined subflow is up (the real result of `SUBFLOW_CREATE`).
    SubEstablished(Subflow),
    /// A joined subflow closed (`error` says why, when it failed).
    SubClosed(Subflow),
    /// The peer changed a subflow's backup flag (`MP_PRIO`).
    SubPriority(Subflow),
    /// An MPTCP listening socket was opened.
    ListenerCreated(Listener),
    /// An MPTCP listening socket was closed.
    ListenerClosed(Listener),
    /// An event type this crate does not know.
    Other {
        /// The genl `cmd` (`MPTCP_EVENT_*`).
        kind: u8,
        /// All its attributes.
        attrs: Vec<RawAttr>,
    },
    /// Events were lost (`ENOBUFS`) or undecodable: the events just before this marker
    /// came from a `sock_diag` snapshot and bring the view up to date.
    Resynced,
}

impl Event {
    /// The connection the event is about, if any.
    pub fn token(&self) -> Option<Token> {
        match self {
            Self::Created(c) | Self::Established(c) => Some(c.token),
            Self::Closed { token, .. } | Self::Removed { token, .. } => Some(*token),
            Self::Announced(a) => Some(a.token),
            Self::SubEstablished(s) | Self::SubClosed(s) | Self::SubPriority(s) => Some(s.token),
            _ => None,
        }
    }
}

/// The attributes of one event, collected before building the typed event.
#[derive(Default)]
struct EvAttrs {
    token: Option<u32>,
    family: Option<u16>,
    loc_id: Option<u8>,
    rem_id: Option<u8>,
    saddr: Option<IpAddr>,
    daddr: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    backup: Option<u8>,
    error: Option<u8>,
    flags: Option<u16>,
    if_idx: Option<i32>,
    reset_reason: Option<u32>,
    reset_flags: Option<u32>,
    server_side: Option<u8>,
    other: Vec<RawAttr>,
}

const EV_CX: &str = "mptcp_pm event";

impl EvAttrs {
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut a = Self::default();
        for attr in attrs(buf) {
            let (kind, v) = attr?;
            match kind {
                ev_attr::TOKEN => a.token = Some(u32::from_ne_bytes(fixed(EV_CX, "token", v)?)),
                ev_attr::FAMILY => {
                    a.family = Some(u16::from_ne_bytes(fixed(EV_CX, "family", v)?));
                }
                ev_attr::LOC_ID => a.loc_id = Some(fixed::<1>(EV_CX, "loc_id", v)?[0]),
                ev_attr::REM_ID => a.rem_id = Some(fixed::<1>(EV_CX, "rem_id", v)?[0]),
                ev_attr::SADDR4 => {
                    a.saddr = Some(Ipv4Addr::from(fixed::<4>(EV_CX, "saddr4", v)?).into());
                }
                ev_attr::SADDR6 => {
                    a.saddr = Some(Ipv6Addr::from(fixed::<16>(EV_CX, "saddr6", v)?).into());
                }
                ev_attr::DADDR4 => {
                    a.daddr = Some(Ipv4Addr::from(fixed::<4>(EV_CX, "daddr4", v)?).into());
                }
                ev_attr::DADDR6 => {
                    a.daddr = Some(Ipv6Addr::from(fixed::<16>(EV_CX, "daddr6", v)?).into());
                }
                // Network order in events (mptcp-pm.md §2), unlike command nests.
                ev_attr::SPORT => a.sport = Some(u16::from_be_bytes(fixed(EV_CX, "sport", v)?)),
                ev_attr::DPORT => a.dport = Some(u16::from_be_bytes(fixed(EV_CX, "dport", v)?)),
                ev_attr::BACKUP => a.backup = Some(fixed::<1>(EV_CX, "backup", v)?[0]),
                ev_attr::ERROR => a.error = Some(fixed::<1>(EV_CX, "error", v)?[0]),
                ev_attr::FLAGS => a.flags = Some(u16::from_ne_bytes(fixed(EV_CX, "flags", v)?)),
                ev_attr::IF_IDX => {
                    a.if_idx = Some(i32::from_ne_bytes(fixed(EV_CX, "if_idx", v)?));
                }
                ev_attr::RESET_REASON => {
                    a.reset_reason = Some(u32::from_ne_bytes(fixed(EV_CX, "reset_reason", v)?));
                }
                ev_attr::RESET_FLAGS => {
                    a.reset_flags = Some(u32::from_ne_bytes(fixed(EV_CX, "reset_flags", v)?));
                }
                ev_attr::SERVER_SIDE => {
                    a.server_side = Some(fixed::<1>(EV_CX, "server_side", v)?[0]);
                }
                _ => a.other.push(RawAttr {
                    kind,
                    value: v.to_vec(),
                }),
            }
        }
        // A FAMILY that contradicts the addresses is a corrupt event.
        if let Some(f) = a.family {
            for addr in [a.saddr, a.daddr].into_iter().flatten() {
                if family_of(addr) != f {
                    return Err(DecodeError::new(
                        EV_CX,
                        format!("family {f} but address {addr}"),
                    ));
                }
            }
        }
        Ok(a)
    }

    fn token(&self, name: &str) -> Result<Token, DecodeError> {
        self.token
            .map(Token)
            .ok_or_else(|| DecodeError::new(EV_CX, format!("{name} without a token")))
    }

    fn endpoint(
        name: &str,
        what: &str,
        addr: Option<IpAddr>,
        port: Option<u16>,
    ) -> Result<SocketAddr, DecodeError> {
        match (addr, port) {
            (Some(a), Some(p)) => Ok(SocketAddr::new(a, p)),
            _ => Err(DecodeError::new(
                EV_CX,
                format!("{name} without {what} address and port"),
            )),
        }
    }

    fn connection(self, name: &str) -> Result<Connection, DecodeError> {
        let flags = self.flags.unwrap_or(0);
        Ok(Connection {
            token: self.token(name)?,
            local: Self::endpoint(name, "source", self.saddr, self.sport)?,
            remote: Self::endpoint(name, "destination", self.daddr, self.dport)?,
            loc_id: self.loc_id.unwrap_or(0),
            rem_id: self.rem_id.unwrap_or(0),
            server_side: self.server_side.is_some_and(|s| s != 0)
                || flags & EV_FLAG_SERVER_SIDE != 0,
            flags,
            other: self.other,
        })
    }

    fn subflow(self, name: &str) -> Result<Subflow, DecodeError> {
        Ok(Subflow {
            token: self.token(name)?,
            local: Self::endpoint(name, "source", self.saddr, self.sport)?,
            remote: Self::endpoint(name, "destination", self.daddr, self.dport)?,
            loc_id: self.loc_id.unwrap_or(0),
            rem_id: self.rem_id.unwrap_or(0),
            backup: self.backup.is_some_and(|b| b != 0),
            if_idx: self
                .if_idx
                .and_then(|i| u32::try_from(i).ok())
                .filter(|i| *i != 0),
            error: self.error.filter(|e| *e != 0),
            reset_reason: self.reset_reason,
            reset_flags: self.reset_flags,
            other: self.other,
        })
    }
}

impl Event {
    /// Decodes an event message (genl `cmd` = event type).
    pub fn parse(msg: &Message) -> Result<Self, DecodeError> {
        if msg.cmd != event::CREATED
            && msg.cmd != event::ESTABLISHED
            && msg.cmd != event::CLOSED
            && msg.cmd != event::ANNOUNCED
            && msg.cmd != event::REMOVED
            && msg.cmd != event::SUB_ESTABLISHED
            && msg.cmd != event::SUB_CLOSED
            && msg.cmd != event::SUB_PRIORITY
            && msg.cmd != event::LISTENER_CREATED
            && msg.cmd != event::LISTENER_CLOSED
        {
            // Unknown type: keep every attribute raw.
            let attrs = attrs(&msg.attrs)
                .map(|a| {
                    a.map(|(kind, v)| RawAttr {
                        kind,
                        value: v.to_vec(),
                    })
                })
                .collect::<Result<_, _>>()?;
            return Ok(Self::Other {
                kind: msg.cmd,
                attrs,
            });
        }
        let a = EvAttrs::parse(&msg.attrs)?;
        Ok(match msg.cmd {
            event::CREATED => Self::Created(a.connection("CREATED")?),
            event::ESTABLISHED => Self::Established(a.connection("ESTABLISHED")?),
            event::CLOSED => Self::Closed {
                token: a.token("CLOSED")?,
                other: a.other,
            },
            event::ANNOUNCED => Self::Announced(Announcement {
                token: a.token("ANNOUNCED")?,
                rem_id: a
                    .rem_id
                    .ok_or_else(|| DecodeError::new(EV_CX, "ANNOUNCED without rem_id"))?,
                addr: EvAttrs::endpoint("ANNOUNCED", "destination", a.daddr, a.dport)?,
                other: a.other,
            }),
            event::REMOVED => Self::Removed {
                token: a.token("REMOVED")?,
                rem_id: a
                    .rem_id
                    .ok_or_else(|| DecodeError::new(EV_CX, "REMOVED without rem_id"))?,
                other: a.other,
            },
            event::SUB_ESTABLISHED => Self::SubEstablished(a.subflow("SUB_ESTABLISHED")?),
            event::SUB_CLOSED => Self::SubClosed(a.subflow("SUB_CLOSED")?),
            event::SUB_PRIORITY => Self::SubPriority(a.subflow("SUB_PRIORITY")?),
            kind => {
                let name = if kind == event::LISTENER_CREATED {
                    "LISTENER_CREATED"
                } else {
                    "LISTENER_CLOSED"
                };
                let local = EvAttrs::endpoint(name, "source", a.saddr, a.sport)?;
                let l = Listener {
                    local,
                    other: a.other,
                };
                if kind == event::LISTENER_CREATED {
                    Self::ListenerCreated(l)
                } else {
                    Self::ListenerClosed(l)
                }
            }
        })
    }
}
