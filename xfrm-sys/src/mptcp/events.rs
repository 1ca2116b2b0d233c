//! The event socket: `mptcp_pm_events` typed, with a view of connections and subflows
//! that survives lost events by resynchronising from `sock_diag`.
//!
//! # Socket
//!
//! A socket of its own (never the request socket), **explicitly bound before joining
//! the group** (mptcp-pm.md pitfall 9: an unbound socket has port id 0, the kernel's own,
//! and `netlink_broadcast` skips it), with a large receive buffer (default
//! [`DEFAULT_RECEIVE_BUFFER`], capped by the kernel at twice `net.core.rmem_max`). It is
//! read only while [`EventStream::next`] is awaited, so nothing grows in our process.
//!
//! # Resynchronisation
//!
//! On `ENOBUFS`, `NLMSG_OVERRUN` or an event that cannot be decoded, the stream
//! 1. marks itself out of sync,
//! 2. drains what is queued on its socket (older than the snapshot to come),
//! 3. takes a `sock_diag` [`Snapshot`](super::diag::Snapshot): MPTCP connections (with the
//!    token from `mptcp_info`) and established subflows (from the `mptcp` ULP info),
//! 4. diffs it against its view and queues synthetic events — `Closed` (connections
//!    gone), `SubClosed` (subflows gone), then `Created` / `Established` (new
//!    connections), `SubEstablished` (new joined subflows) and `SubPriority` (backup flag
//!    changed) — followed by [`Event::Resynced`],
//! 5. marks itself in sync.
//!
//! Synthetic events carry what `sock_diag` knows: connection IDs are 0 (the initial
//! subflow's), `server_side` is inferred from an MPTCP listener on the local port, and
//! `error` / `reset_*` are absent. Events that arrive after step 2 describe states no
//! older than the snapshot, so the view converges; an event may repeat a state already
//! reported, so consumers treat events as idempotent.
//!
//! [`EventStream::next`] is cancel safe.

use std::{
    collections::{BTreeMap, VecDeque},
    io,
    net::SocketAddr,
};

use netlink_sys::{Socket, protocols::NETLINK_GENERIC};

use super::{
    Connection, Event, Subflow, Token,
    diag::{Diag, Snapshot},
    wire::{EVENTS_GROUP, FAMILY_NAME},
};
use crate::{
    Error, Result,
    genl::{Genl, Message},
    handle::{NlSocket, Received},
    netns,
};

/// The receive buffer asked for by default: 4 MiB (the kernel grants at most twice
/// `net.core.rmem_max`).
pub const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;

/// `NLMSG_OVERRUN`.
const NLMSG_OVERRUN: u16 = 4;

/// Options for [`EventStream::open`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EventOptions {
    /// `SO_RCVBUF` of the event socket in bytes (the kernel doubles it and caps it);
    /// tests shrink it to provoke `ENOBUFS`.
    pub receive_buffer: usize,
}

impl Default for EventOptions {
    fn default() -> Self {
        Self {
            receive_buffer: DEFAULT_RECEIVE_BUFFER,
        }
    }
}

/// Counters of an [`EventStream`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct EventStats {
    /// Event messages read.
    pub messages: u64,
    /// `ENOBUFS` and `NLMSG_OVERRUN` seen: events were lost.
    pub overruns: u64,
    /// Events that could not be decoded (each forces a resync).
    pub decode_errors: u64,
    /// Datagrams from a sender other than the kernel, ignored.
    pub foreign: u64,
    /// Completed resynchronisations.
    pub resyncs: u64,
}

/// A connection in the stream's view.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConnectionState {
    /// As CREATED / ESTABLISHED (or the snapshot) described it.
    pub connection: Connection,
    /// ESTABLISHED seen (or the snapshot showed it past the handshake).
    pub established: bool,
    /// Joined subflows that are up, by (local, remote). The initial subflow is not
    /// listed: it is the connection's own `local`/`remote`.
    pub subflows: BTreeMap<(SocketAddr, SocketAddr), Subflow>,
}

/// The view of connections, and the diff logic. No I/O.
#[derive(Default, Debug)]
pub(crate) struct Tracker {
    conns: BTreeMap<Token, ConnectionState>,
}

/// Something could not be used: the view may have missed a change.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OutOfSync;

impl Tracker {
    pub(crate) fn apply(&mut self, ev: &Event) {
        match ev {
            Event::Created(c) | Event::Established(c) => {
                let established = matches!(ev, Event::Established(_));
                let state = self
                    .conns
                    .entry(c.token)
                    .or_insert_with(|| ConnectionState {
                        connection: c.clone(),
                        established,
                        subflows: BTreeMap::new(),
                    });
                state.connection = c.clone();
                state.established |= established;
            }
            Event::Closed { token, .. } => {
                self.conns.remove(token);
            }
            Event::SubEstablished(s) => {
                if let Some(c) = self.conns.get_mut(&s.token) {
                    c.subflows.insert(s.key(), s.clone());
                }
            }
            Event::SubClosed(s) => {
                if let Some(c) = self.conns.get_mut(&s.token) {
                    c.subflows.remove(&s.key());
                }
            }
            Event::SubPriority(s) => {
                if let Some(sub) = self
                    .conns
                    .get_mut(&s.token)
                    .and_then(|c| c.subflows.get_mut(&s.key()))
                {
                    sub.backup = s.backup;
                }
            }
            _ => {}
        }
    }

    fn push(&mut self, ev: Event, out: &mut VecDeque<Event>) {
        self.apply(&ev);
        out.push_back(ev);
    }

    /// Replaces the view by a snapshot, queueing what changed (module docs, step 4).
    pub(crate) fn reconcile(&mut self, snap: &Snapshot, out: &mut VecDeque<Event>) {
        let listeners: Vec<SocketAddr> = snap.listeners.clone();
        let gone: Vec<Token> = self
            .conns
            .keys()
            .filter(|t| !snap.connections.iter().any(|c| c.token == **t))
            .copied()
            .collect();
        for token in gone {
            self.push(
                Event::Closed {
                    token,
                    other: Vec::new(),
                },
                out,
            );
        }
        let joined = |token: Token| {
            snap.subflows
                .iter()
                .filter(move |s| s.token == token && s.is_join())
        };
        // Subflows gone from connections that remain.
        for c in &snap.connections {
            let Some(state) = self.conns.get(&c.token) else {
                continue;
            };
            let lost: Vec<Subflow> = state
                .subflows
                .values()
                .filter(|s| !joined(c.token).any(|d| (d.local, d.remote) == s.key()))
                .cloned()
                .collect();
            for s in lost {
                self.push(Event::SubClosed(s), out);
            }
        }
        for c in &snap.connections {
            let known = self.conns.get(&c.token);
            let connection = known.map_or_else(
                || Connection {
                    token: c.token,
                    local: c.local,
                    remote: c.remote,
                    loc_id: 0,
                    rem_id: 0,
                    server_side: listeners.iter().any(|l| {
                        l.port() == c.local.port()
                            && (l.ip().is_unspecified() || l.ip() == c.local.ip())
                    }),
                    flags: 0,
                    other: Vec::new(),
                },
                |k| k.connection.clone(),
            );
            match (known.map(|k| k.established), c.is_established()) {
                (None, false) => self.push(Event::Created(connection), out),
                (None | Some(false), true) => self.push(Event::Established(connection), out),
                _ => {}
            }
            for d in joined(c.token) {
                let key = (d.local, d.remote);
                let have = self
                    .conns
                    .get(&c.token)
                    .and_then(|k| k.subflows.get(&key))
                    .cloned();
                let sub = Subflow {
                    token: d.token,
                    local: d.local,
                    remote: d.remote,
                    loc_id: d.loc_id,
                    rem_id: d.rem_id,
                    backup: d.backup(),
                    if_idx: None,
                    error: None,
                    reset_reason: None,
                    reset_flags: None,
                    other: Vec::new(),
                };
                match have {
                    None => self.push(Event::SubEstablished(sub), out),
                    Some(h) if h.backup != sub.backup => {
                        self.push(
                            Event::SubPriority(Subflow {
                                backup: sub.backup,
                                ..h
                            }),
                            out,
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// Applies every message of one event datagram, queueing events.
    pub(crate) fn datagram(
        &mut self,
        family: u16,
        buf: &[u8],
        out: &mut VecDeque<Event>,
        stats: &mut EventStats,
    ) -> Result<(), OutOfSync> {
        let mut result = Ok(());
        let mut rest = buf;
        while !rest.is_empty() {
            let Some(h) = rest.get(..16) else {
                stats.decode_errors += 1;
                return Err(OutOfSync);
            };
            let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let kind = u16::from_ne_bytes([h[4], h[5]]);
            if len < 16 || len > rest.len() {
                // Framing is gone: nothing after this can be trusted.
                stats.decode_errors += 1;
                return Err(OutOfSync);
            }
            let payload = &rest[16..len];
            rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
            stats.messages += 1;
            if kind == NLMSG_OVERRUN {
                stats.overruns += 1;
                result = Err(OutOfSync);
                continue;
            }
            if kind != family {
                continue;
            }
            match Message::parse(family, payload).and_then(|m| Event::parse(&m)) {
                Ok(ev) => self.push(ev, out),
                Err(_) => {
                    stats.decode_errors += 1;
                    result = Err(OutOfSync);
                }
            }
        }
        result
    }

    pub(crate) fn get(&self, token: Token) -> Option<&ConnectionState> {
        self.conns.get(&token)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &ConnectionState> {
        self.conns.values()
    }
}

/// Typed `mptcp_pm` events of one namespace, with resynchronisation; see the
/// [`mptcp` module docs](super).
#[derive(Debug)]
pub struct EventStream {
    socket: NlSocket,
    family: u16,
    diag: Diag,
    tracker: Tracker,
    pending: VecDeque<Event>,
    buf: Vec<u8>,
    out_of_sync: bool,
    stats: EventStats,
}

fn open_event_socket(group: u32, opts: EventOptions) -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_GENERIC)?;
    // Pitfall 9: bind first, or the kernel's broadcast skips us.
    socket.bind_auto()?;
    let size = libc::c_int::try_from(opts.receive_buffer).unwrap_or(libc::c_int::MAX);
    socket.set_rx_buf_sz(size)?;
    socket.add_membership(group)?;
    Ok(socket)
}

impl EventStream {
    /// Opens the event socket in `genl`'s namespace, joins `mptcp_pm_events`, then takes
    /// the first snapshot (available at once through [`EventStream::connections`]; it
    /// produces no events).
    ///
    /// Joining the group needs `CAP_NET_ADMIN` (`EPERM` otherwise).
    pub async fn open(genl: &Genl, opts: EventOptions) -> Result<Self> {
        let family = genl.resolve(FAMILY_NAME).await?;
        let op = "open mptcp_pm event socket";
        let group = family.group(EVENTS_GROUP).ok_or_else(|| {
            Error::unexpected(
                op,
                format!("family {FAMILY_NAME} has no group {EVENTS_GROUP}"),
            )
        })?;
        let socket = match genl.netns() {
            None => open_event_socket(group, opts),
            Some(name) => netns::with_socket_in(name, || open_event_socket(group, opts)),
        }
        .map_err(|e| Error::io(op, e))?;
        let mut stream = Self {
            socket: NlSocket::wrap(socket).map_err(|e| Error::io(op, e))?,
            family: family.id,
            diag: Diag::open(genl.netns())?,
            tracker: Tracker::default(),
            pending: VecDeque::new(),
            buf: Vec::with_capacity(64 * 1024),
            out_of_sync: false,
            stats: EventStats::default(),
        };
        let snap = stream.diag.snapshot().await?;
        stream.tracker.reconcile(&snap, &mut VecDeque::new());
        Ok(stream)
    }

    /// The next event. Cancel safe.
    ///
    /// Errors are socket failures or a failed snapshot; the stream stays usable and
    /// retries the resync on the next call.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(ev);
            }
            if self.out_of_sync {
                self.resync().await?;
                continue;
            }
            self.receive().await?;
        }
    }

    /// Asks for a resynchronisation before the next event (e.g. after the caller lost
    /// track of its own state).
    pub fn request_resync(&mut self) {
        self.out_of_sync = true;
    }

    /// The connections as the stream currently sees them.
    pub fn connections(&self) -> impl Iterator<Item = &ConnectionState> {
        self.tracker.all()
    }

    /// One connection.
    pub fn connection(&self, token: Token) -> Option<&ConnectionState> {
        self.tracker.get(token)
    }

    /// Whether a joined subflow of `token` other than `(local, remote)` still uses the
    /// local address `local.ip()`: decides between the two forms of
    /// [`Manager::detach_path`](super::Manager::detach_path).
    pub fn local_address_in_use(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> bool {
        self.tracker.get(token).is_some_and(|c| {
            c.connection.local.ip() == local.ip()
                || c.subflows
                    .keys()
                    .any(|(l, r)| l.ip() == local.ip() && (*l, *r) != (local, remote))
        })
    }

    /// Counters.
    pub fn stats(&self) -> EventStats {
        self.stats
    }

    async fn resync(&mut self) -> Result<()> {
        self.drain()?;
        let snap = self.diag.snapshot().await?;
        self.tracker.reconcile(&snap, &mut self.pending);
        self.pending.push_back(Event::Resynced);
        self.stats.resyncs += 1;
        self.out_of_sync = false;
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        self.socket
            .drain(&mut self.buf, &mut self.stats.overruns, "mptcp_pm events")
    }

    async fn receive(&mut self) -> Result<()> {
        let from_kernel = match self
            .socket
            .receive(&mut self.buf, "mptcp_pm events")
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
            // Only the kernel speaks for the kernel.
            self.stats.foreign += 1;
            return Ok(());
        }
        if self
            .tracker
            .datagram(self.family, &self.buf, &mut self.pending, &mut self.stats)
            .is_err()
        {
            self.out_of_sync = true;
        }
        Ok(())
    }
}
