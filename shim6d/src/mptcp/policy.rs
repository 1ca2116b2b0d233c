//! The sans-IO policy engine: which subflows each MPTCP connection should have, given
//! the Shim6 view of its peer and REAP's view of the paths.
//!
//! # Contract (quinn's shape, as `shim6_proto::Endpoint`)
//!
//! - **Inputs** (each takes an explicit `now`; time never goes backwards):
//!   [`Engine::handle_event`] (the kernel's `mptcp_pm` events, synthetic resync events
//!   included), [`Engine::set_peer`] / [`Engine::remove_peer`] (a Shim6 peer's
//!   **verified** locators and ours), [`Engine::path_failed`] / [`Engine::path_usable`]
//!   (REAP, RFC 5534 §5.2, §6), [`Engine::bytes_carried`] (sampled by the driver),
//!   [`Engine::command_failed`] (a command the driver could not carry out) and
//!   [`Engine::handle_timeout`].
//! - **Outputs**, drained after every input: [`Engine::poll_action`] then
//!   [`Engine::poll_timeout`].
//! - **Getters**: [`Engine::status`], [`Engine::decisions`].
//!
//! The engine never reads the clock and does no I/O; [`super::driver`] runs it over the
//! kernel.
//!
//! # Rules every policy follows
//!
//! 1. Only connections we opened (`server_side == false`) get subflows: the side that
//!    knows the peer's locators creates them (mptcp-pm.md pitfall 7); the server side only
//!    accepts joins.
//! 2. Only a connection whose remote address is a Shim6 peer's ULID or one of its
//!    verified locators is managed. Any other connection is **left alone** (no fallback):
//!    the engine cannot tell whether an unverified address belongs to the peer, and a
//!    subflow is a second TCP connection to whatever answers there. When the peer's
//!    context comes up later (Shim6 establishes contexts lazily), the connection is
//!    managed from then on.
//! 3. Subflows go only to pairs (one of our locators, one of the peer's **verified**
//!    locators, RFC 5533 §7.2 / RFC 5535 §7.2 / RFC 3972); a joined subflow to an
//!    address that is (or became) unverified is destroyed.
//! 4. A pair REAP declared dead gets no subflow; its subflows are detached on both sides
//!    with the failure recipe ([`Action::DetachPath`]); once REAP shows the pair works
//!    again, the policy is re-applied and they come back.
//! 5. A subflow that failed to come up, or died on its own, is retried on that pair
//!    after a back-off (1 s doubling to 60 s), so a refusing peer is not hammered.
//! 6. The initial subflow is never touched: it runs between the ULIDs and Shim6 itself
//!    moves it between locator pairs.
//! 7. No connection gets more than `max_subflows` subflows, the initial one included:
//!    subflows on pairs the policy no longer prefers still count (they are not cut),
//!    and a join nobody waits for any more (a late answer to a request given up) that
//!    would exceed the cap is destroyed.
//! 8. REAP's verdicts outlive changes of the verified set: a pair stays dead until
//!    `path_usable` (or the peer's context goes), or until a re-test join on it comes up
//!    (rule 10).
//! 9. A joined subflow of ours that stalls — data unacknowledged and no ACK for the
//!    REAP Send Timeout ([`Engine::set_stall_timeout`], from `sock_diag`'s `tcp_info`,
//!    [`Engine::subflow_sample`]) — condemns its pair as REAP's `PathFailed` would: REAP
//!    watches only the context's current pair (RFC 5534 §3.5, the traffic through the
//!    shim), so a pair carrying only direct subflows is otherwise never judged. This is
//!    RFC 5534's failure-detection rule ("sent, nothing received within Send Timeout")
//!    applied to the subflow's own traffic.
//! 10. A dead pair is re-tested with one join (a probe subflow) after 1 s, then after a
//!     back-off doubling to 60 s while it fails: the `MP_JOIN` handshake needs both
//!     directions, so a join that comes up proves the pair works and revokes the verdict
//!     (the subflow stays); REAP's `PathUsable` revokes it too. Re-tests stay within the
//!     cap; the initial pair is never re-tested (it carries no extra subflow).
//! 11. The server side creates nothing but takes its own halves off a pair REAP (or
//!     its stall rule) declared dead (`SUBFLOW_DESTROY`): the client's `RM_ADDR` leaves
//!     on its first subflow not yet stale, which may be the initial one, still riding
//!     the dead pair until REAP moves it. A join that comes up on a dead pair revokes
//!     the verdict there too.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    time::{Duration, Instant},
};

use reap::Pair;
use serde::Serialize;
use xfrm_sys::mptcp::{Connection, Event, Subflow, Token};

/// How many decisions [`Engine::decisions`] keeps.
pub const DECISIONS_KEPT: usize = 64;
/// First back-off after a subflow failed on a pair.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest back-off.
pub const RETRY_MAX: Duration = Duration::from_secs(60);
/// A requested subflow with neither `SUB_ESTABLISHED` nor `SUB_CLOSED` after this long
/// counts as failed (the kernel's SYN retries on a dead path take longer).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(10);
/// First re-test of a pair after it was declared dead (rule 10); then the back-off of
/// rule 5 ([`RETRY_BASE`] doubling to [`RETRY_MAX`]).
pub const RETEST_FIRST: Duration = Duration::from_secs(1);

/// One subflow's transmission state from `sock_diag` (`struct tcp_info`): the input of
/// the stall rule (rule 9).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SubflowSample {
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Segments sent and not acknowledged (`tcpi_unacked`).
    pub unacked: u32,
    /// Time since the last ACK received (`tcpi_last_ack_recv`).
    pub since_ack: Duration,
}

/// Which subflows a managed connection should have.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase", tag = "name")]
pub enum Policy {
    /// One subflow per verified locator pair.
    Fullmesh,
    /// `n` subflows (the initial one included) on one pair: the initial pair while it
    /// works, else the first working verified pair (ECMP data centres).
    Ndiffports {
        /// Subflows on the pair, 1..=8.
        n: u8,
    },
    /// One subflow until the connection carried `threshold` bytes, then one more per
    /// further `step` bytes, up to `max_subflows` (the RFC 6897-API elephant-flow study).
    Elephant {
        /// Bytes before the second subflow.
        threshold: u64,
        /// Bytes per further subflow.
        step: u64,
    },
    /// As [`Policy::Fullmesh`], but the extra subflows are flagged backup; they are
    /// promoted while REAP finds the initial pair dead.
    Backup,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fullmesh => f.write_str("fullmesh"),
            Self::Ndiffports { n } => write!(f, "ndiffports {n}"),
            Self::Elephant { threshold, step } => {
                write!(f, "elephant threshold {threshold} B step {step} B")
            }
            Self::Backup => f.write_str("backup"),
        }
    }
}

/// The engine's settings.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct PolicyConfig {
    /// The policy.
    pub policy: Policy,
    /// Most subflows per connection, the initial one included (1..=8: a peer on the
    /// in-kernel path manager accepts at most 8, `ip mptcp limits ... subflows 8`).
    pub max_subflows: u8,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            policy: Policy::Fullmesh,
            max_subflows: 4,
        }
    }
}

/// A Shim6 peer as the engine needs it: from `Endpoint::context(tag)` (its
/// `key.ulid_peer`, `key.ulid_local` and the verified `peer_locators`) and our locator
/// set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeerView {
    /// ULID(peer): the key of the peer.
    pub ulid_peer: Ipv6Addr,
    /// Our locators usable towards it (`Lp(local)` candidates), in preference order.
    pub locals: Vec<Ipv6Addr>,
    /// Ls(peer) **after** HBA/CGA verification, in preference order.
    pub remotes: Vec<Ipv6Addr>,
}

/// A command for the driver.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `SUBFLOW_CREATE` from `local` (the driver's ID book gives the non-zero ID pinned
    /// to it) to `remote` (the connection's port), flagged backup or not.
    CreateSubflow {
        /// The connection.
        #[serde(serialize_with = "ser_token")]
        token: Token,
        /// Our locator.
        local: IpAddr,
        /// The peer's verified locator and the connection's remote port.
        remote: SocketAddr,
        /// Flag the subflow backup.
        backup: bool,
    },
    /// The failure recipe (`Manager::detach_path`): REMOVE the local address's ID
    /// unless `local_in_use`, then `SUBFLOW_DESTROY` the 4-tuple.
    DetachPath {
        /// The connection.
        #[serde(serialize_with = "ser_token")]
        token: Token,
        /// The subflow's local end.
        local: SocketAddr,
        /// The subflow's remote end.
        remote: SocketAddr,
        /// Another subflow still uses the local address: skip REMOVE.
        local_in_use: bool,
    },
    /// `SUBFLOW_DESTROY` alone (a subflow to an address no longer verified).
    DestroySubflow {
        /// The connection.
        #[serde(serialize_with = "ser_token")]
        token: Token,
        /// The subflow's local end.
        local: SocketAddr,
        /// The subflow's remote end.
        remote: SocketAddr,
    },
    /// `SET_FLAGS`: set or clear backup on one subflow.
    SetBackup {
        /// The connection.
        #[serde(serialize_with = "ser_token")]
        token: Token,
        /// The subflow's local end.
        local: SocketAddr,
        /// The subflow's remote end.
        remote: SocketAddr,
        /// The new flag.
        backup: bool,
    },
}

fn ser_token<S: serde::Serializer>(t: &Token, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

impl Action {
    /// The connection the action is for.
    pub fn token(&self) -> Token {
        match self {
            Self::CreateSubflow { token, .. }
            | Self::DetachPath { token, .. }
            | Self::DestroySubflow { token, .. }
            | Self::SetBackup { token, .. } => *token,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateSubflow {
                token,
                local,
                remote,
                backup,
            } => write!(
                f,
                "create subflow {token} {local} -> {remote}{}",
                if *backup { " backup" } else { "" }
            ),
            Self::DetachPath {
                token,
                local,
                remote,
                local_in_use,
            } => write!(
                f,
                "detach path {token} {local} -> {remote} ({})",
                if *local_in_use {
                    "destroy only: local address still in use"
                } else {
                    "remove id, then destroy"
                }
            ),
            Self::DestroySubflow {
                token,
                local,
                remote,
            } => write!(f, "destroy subflow {token} {local} -> {remote}"),
            Self::SetBackup {
                token,
                local,
                remote,
                backup,
            } => write!(f, "set backup {backup} on {token} {local} -> {remote}"),
        }
    }
}

/// One remembered decision (for the `mptcp` control command).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decision {
    /// When.
    pub at: Instant,
    /// The connection, if it is about one.
    pub token: Option<Token>,
    /// The action taken, if any.
    pub action: Option<Action>,
    /// Why (or what was decided not to do).
    pub reason: String,
}

/// A joined subflow's state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SubState {
    /// Up; `backup` as we last know it.
    Up { backup: bool },
    /// [`Action::DetachPath`] / [`Action::DestroySubflow`] issued, `SUB_CLOSED` awaited.
    Closing,
}

/// A `SUBFLOW_CREATE` issued, its result awaited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Pending {
    since: Instant,
    backup: bool,
    /// A re-test of a dead pair (rule 10).
    probe: bool,
}

/// Back-off of one pair on one connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Backoff {
    failures: u32,
    until: Instant,
}

#[derive(Clone, Debug)]
struct Conn {
    connection: Connection,
    established: bool,
    bytes: u64,
    subflows: BTreeMap<(SocketAddr, SocketAddr), SubState>,
    /// Keyed by (local address, remote address and port): the local port is not known
    /// before `SUB_ESTABLISHED`.
    pending: Vec<(IpAddr, SocketAddr, Pending)>,
    backoff: BTreeMap<Pair, Backoff>,
    /// Since when each joined subflow has had data unacknowledged without a break, as
    /// the samples saw it (rule 9).
    outstanding: BTreeMap<(SocketAddr, SocketAddr), Instant>,
    /// Why the connection is not managed, as last recorded (not to repeat it).
    unmanaged: Option<&'static str>,
}

impl Conn {
    fn initial_pair(&self) -> Option<Pair> {
        pair_of(self.connection.local.ip(), self.connection.remote.ip())
    }
}

fn v6(a: IpAddr) -> Option<Ipv6Addr> {
    match a {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    }
}

fn pair_of(local: IpAddr, remote: IpAddr) -> Option<Pair> {
    Some(Pair::new(v6(local)?, v6(remote)?))
}

#[derive(Clone, Debug)]
struct Peer {
    view: PeerView,
    dead: BTreeSet<Pair>,
    /// When each dead pair is re-tested next (rule 10); `failures` counts failed
    /// re-tests.
    retest: BTreeMap<Pair, Backoff>,
}

impl Peer {
    fn owns(&self, remote: IpAddr) -> bool {
        v6(remote).is_some_and(|r| r == self.view.ulid_peer || self.view.remotes.contains(&r))
    }

    fn verified(&self, remote: IpAddr) -> bool {
        v6(remote).is_some_and(|r| self.view.remotes.contains(&r))
    }

    /// Every verified pair, in preference order (ours, then the peer's).
    fn pairs(&self) -> Vec<Pair> {
        let mut out = Vec::new();
        for l in &self.view.locals {
            for r in &self.view.remotes {
                out.push(Pair::new(*l, *r));
            }
        }
        out
    }
}

/// One subflow wanted: a pair and its backup flag.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Want {
    pair: Pair,
    backup: bool,
}

/// The policy engine; see the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    config: PolicyConfig,
    peers: BTreeMap<Ipv6Addr, Peer>,
    conns: BTreeMap<Token, Conn>,
    actions: VecDeque<Action>,
    decisions: VecDeque<Decision>,
    stall_timeout: Option<Duration>,
}

impl Engine {
    /// An engine with no peers and no connections.
    pub fn new(config: PolicyConfig) -> Self {
        Self {
            config: sanitize(config),
            peers: BTreeMap::new(),
            conns: BTreeMap::new(),
            actions: VecDeque::new(),
            decisions: VecDeque::new(),
            stall_timeout: None,
        }
    }

    /// Turns the stall rule (rule 9) on with the REAP Send Timeout, or off (`None`, the
    /// default).
    pub fn set_stall_timeout(&mut self, timeout: Option<Duration>) {
        self.stall_timeout = timeout;
    }

    /// The stall rule's timeout, if on.
    pub fn stall_timeout(&self) -> Option<Duration> {
        self.stall_timeout
    }

    /// The settings.
    pub fn config(&self) -> PolicyConfig {
        self.config
    }

    /// New settings (reload): applied to every connection at once. Subflows beyond the
    /// new policy's are kept (they do no harm and a reload should not cut traffic).
    pub fn set_config(&mut self, config: PolicyConfig, now: Instant) {
        self.config = sanitize(config);
        self.note(
            now,
            None,
            None,
            format!("policy set to {}", self.config.policy),
        );
        self.replan_all(now);
    }

    // ---- inputs ------------------------------------------------------------------

    /// A path-manager event (from `EventStream::next`, resync events included).
    /// Idempotent: an event repeating a known state changes nothing.
    pub fn handle_event(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Created(c) | Event::Established(c) => {
                let established = matches!(event, Event::Established(_));
                let conn = self.conns.entry(c.token).or_insert_with(|| Conn {
                    connection: c.clone(),
                    established: false,
                    bytes: 0,
                    subflows: BTreeMap::new(),
                    pending: Vec::new(),
                    backoff: BTreeMap::new(),
                    outstanding: BTreeMap::new(),
                    unmanaged: None,
                });
                conn.connection = c.clone();
                let newly = established && !conn.established;
                conn.established |= established;
                // Pitfall 4: SUBFLOW_CREATE waits for ESTABLISHED.
                if newly {
                    self.replan(c.token, now);
                }
            }
            Event::Closed { token, .. } => {
                let Some(_) = self.conns.remove(token) else {
                    return;
                };
                self.note(now, Some(*token), None, "connection closed".into());
            }
            Event::SubEstablished(s) => self.sub_established(s, now),
            Event::SubClosed(s) => self.sub_closed(s, now),
            Event::SubPriority(s) => {
                if let Some(SubState::Up { backup }) = self
                    .conns
                    .get_mut(&s.token)
                    .and_then(|c| c.subflows.get_mut(&s.key()))
                {
                    *backup = s.backup;
                }
            }
            // ANNOUNCED / REMOVED: the peer's in-kernel PM speaking; we only trust
            // locators Shim6 verified (rule 3), so announcements change nothing.
            _ => {}
        }
    }

    fn sub_established(&mut self, s: &Subflow, now: Instant) {
        let Some(conn) = self.conns.get_mut(&s.token) else {
            return;
        };
        // A repeat of a subflow already up (a resync) answers no request.
        let known = conn.subflows.contains_key(&s.key());
        let mut probe = false;
        let answered = !known
            && match conn
                .pending
                .iter()
                .position(|(l, r, _)| *l == s.local.ip() && *r == s.remote)
            {
                Some(i) => {
                    probe = conn.pending.remove(i).2.probe;
                    true
                }
                None => false,
            };
        if let Some(p) = pair_of(s.local.ip(), s.remote.ip()) {
            conn.backoff.remove(&p);
        }
        conn.subflows
            .entry(s.key())
            .or_insert(SubState::Up { backup: s.backup });
        let token = s.token;
        let peer = self.peer_of(token).cloned();
        let Some(peer) = peer else {
            return;
        };
        // Rule 11: on the server side, a join that came up on a dead pair proves it works
        // (the client re-tested it).
        if self.is_server_side(token)
            && let Some(p) = pair_of(s.local.ip(), s.remote.ip())
            && peer.dead.contains(&p)
        {
            let why = format!("server side: a join came up on dead pair {p}: it works again");
            self.revoke(peer.view.ulid_peer, p, &why, now);
            return;
        }
        // Rule 3: a subflow to an unverified address (made by someone else, or the
        // verified set shrank meanwhile) goes.
        if !peer.verified(s.remote.ip()) && !self.is_server_side(token) {
            self.close_subflow(
                token,
                s.local,
                s.remote,
                None,
                "remote address is not a verified locator",
                now,
            );
            return;
        }
        // Rule 7: a subflow nobody is waiting for (a late answer to a request given up
        // after PENDING_TIMEOUT, or made by someone else) beyond the cap goes.
        if !known && !answered && !self.is_server_side(token) {
            let c = &self.conns[&token];
            let active = c
                .subflows
                .values()
                .filter(|st| matches!(st, SubState::Up { .. }))
                .count()
                + c.pending.len();
            if active >= usize::from(self.config.max_subflows) {
                self.close_subflow(token, s.local, s.remote, None, "beyond max_subflows", now);
                return;
            }
        }
        // Rule 10: a re-test join came up: the pair works again, the subflow stays.
        if probe
            && let Some(p) = pair_of(s.local.ip(), s.remote.ip())
            && peer.dead.contains(&p)
        {
            let why = format!("re-test join on {p} came up: the pair works again");
            self.revoke(peer.view.ulid_peer, p, &why, now);
            return;
        }
        // Rule 4: it came up on a pair REAP declared dead meanwhile.
        if let Some(p) = pair_of(s.local.ip(), s.remote.ip())
            && peer.dead.contains(&p)
            && !self.is_server_side(token)
        {
            self.detach(
                token,
                s.local.ip(),
                &[s.key()],
                "came up on a pair REAP declared dead",
                now,
            );
            self.replan(token, now);
            return;
        }
        self.replan(token, now);
    }

    fn sub_closed(&mut self, s: &Subflow, now: Instant) {
        let Some(conn) = self.conns.get_mut(&s.token) else {
            return;
        };
        let was = conn.subflows.remove(&s.key());
        // A subflow we knew closing is not the answer to a request for the same pair
        // made since (a re-creation): only an unknown one is.
        let pending = if was.is_none() {
            conn.pending
                .iter()
                .position(|(l, r, _)| *l == s.local.ip() && *r == s.remote)
        } else {
            None
        };
        let probe = pending.is_some_and(|i| conn.pending.remove(i).2.probe);
        conn.outstanding.remove(&s.key());
        if probe {
            let key = self.peer_key_of(s.token);
            self.retest_failed(key, s.local.ip(), s.remote.ip(), now);
            self.replan(s.token, now);
            return;
        }
        let Some(conn) = self.conns.get_mut(&s.token) else {
            return;
        };
        let failed = match was {
            Some(SubState::Closing) => false,
            Some(SubState::Up { .. }) => true,
            None => pending.is_some(),
        };
        if failed && let Some(p) = pair_of(s.local.ip(), s.remote.ip()) {
            let b = conn.backoff.entry(p).or_insert(Backoff {
                failures: 0,
                until: now,
            });
            b.failures = b.failures.saturating_add(1);
            b.until = now + backoff(b.failures);
            let reason = format!(
                "subflow {} -> {} closed{}: retry on {p} after {:?}",
                s.local,
                s.remote,
                s.error.map(|e| format!(" (error {e})")).unwrap_or_default(),
                backoff(b.failures),
            );
            self.note(now, Some(s.token), None, reason);
        }
        self.replan(s.token, now);
    }

    /// A Shim6 peer's context is up, or its verified locators (or ours) changed
    /// (`Event::Established`, `Event::PeerLocatorsChanged`, a local address change):
    /// the whole view, replacing the previous one. Pairs REAP declared dead stay dead
    /// until [`Engine::path_usable`] (or [`Engine::remove_peer`]), whatever the view.
    pub fn set_peer(&mut self, view: PeerView, now: Instant) {
        let key = view.ulid_peer;
        // REAP's verdicts outlive view changes: a locator that leaves and comes back
        // is still dead until a probe shows otherwise (`path_usable`).
        let (dead, retest) = self
            .peers
            .remove(&key)
            .map(|p| (p.dead, p.retest))
            .unwrap_or_default();
        self.note(
            now,
            None,
            None,
            format!(
                "peer {key}: verified locators [{}], ours [{}]",
                join(&view.remotes),
                join(&view.locals)
            ),
        );
        self.peers.insert(key, Peer { view, dead, retest });
        // Rule 3: subflows to addresses no longer verified go.
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if self.peer_key_of(token) != Some(key) || self.is_server_side(token) {
                continue;
            }
            let stale: Vec<(SocketAddr, SocketAddr)> = self.conns[&token]
                .subflows
                .iter()
                .filter(|(k, st)| {
                    matches!(st, SubState::Up { .. }) && !self.peers[&key].verified(k.1.ip())
                })
                .map(|(k, _)| *k)
                .collect();
            for (l, r) in stale {
                self.close_subflow(
                    token,
                    l,
                    r,
                    None,
                    "remote address no longer a verified locator",
                    now,
                );
            }
            self.replan(token, now);
        }
    }

    /// The peer's context is gone (`Event::Closed` / `Event::Failed`): its connections
    /// are left as they are (their subflows keep working or die on their own) and get
    /// no new subflows.
    pub fn remove_peer(&mut self, ulid_peer: Ipv6Addr, now: Instant) {
        if self.peers.remove(&ulid_peer).is_some() {
            self.note(now, None, None, format!("peer {ulid_peer}: context gone"));
        }
    }

    /// REAP declared `pair` of the peer `ulid_peer` dead (`Event::PathFailed`, RFC 5534
    /// §6): its subflows are detached on both sides and it gets no new ones.
    pub fn path_failed(&mut self, ulid_peer: Ipv6Addr, pair: Pair, now: Instant) {
        let Some(peer) = self.peers.get_mut(&ulid_peer) else {
            return;
        };
        if !peer.dead.insert(pair) {
            return;
        }
        peer.retest.insert(
            pair,
            Backoff {
                failures: 0,
                until: now + RETEST_FIRST,
            },
        );
        self.note(
            now,
            None,
            None,
            format!("peer {ulid_peer}: pair {pair} failed"),
        );
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if self.peer_key_of(token) != Some(ulid_peer) {
                continue;
            }
            if self.is_server_side(token) {
                // Rule 11: the server side takes its own halves off. The client's RM_ADDR
                // may never come: it leaves on the first subflow not yet stale, which
                // may be the initial one, riding the dead pair until REAP moves it.
                let victims: Vec<(SocketAddr, SocketAddr)> = self.conns[&token]
                    .subflows
                    .iter()
                    .filter(|(k, st)| {
                        matches!(st, SubState::Up { .. })
                            && pair_of(k.0.ip(), k.1.ip()) == Some(pair)
                    })
                    .map(|(k, _)| *k)
                    .collect();
                for (l, r) in victims {
                    let why = "server side: our half on a pair REAP declared dead";
                    self.close_subflow(token, l, r, None, why, now);
                }
                continue;
            }
            let conn = self.conns.get_mut(&token).expect("token listed above");
            // Requested but not up yet: forget them; if one comes up anyway,
            // sub_established detaches it.
            conn.pending
                .retain(|(l, r, _)| pair_of(*l, r.ip()) != Some(pair));
            let victims: Vec<(SocketAddr, SocketAddr)> = conn
                .subflows
                .iter()
                .filter(|(k, st)| {
                    matches!(st, SubState::Up { .. }) && pair_of(k.0.ip(), k.1.ip()) == Some(pair)
                })
                .map(|(k, _)| *k)
                .collect();
            if !victims.is_empty() {
                let why = "REAP declared the pair dead";
                self.detach(token, IpAddr::V6(pair.local), &victims, why, now);
            }
            self.replan(token, now);
        }
    }

    /// REAP proved `pair` works again (`Event::PathUsable`, RFC 5534 §5.2): the policy
    /// is re-applied, so its subflows come back; back-offs on it are reset.
    pub fn path_usable(&mut self, ulid_peer: Ipv6Addr, pair: Pair, now: Instant) {
        self.revoke(
            ulid_peer,
            pair,
            &format!("peer {ulid_peer}: pair {pair} usable"),
            now,
        );
    }

    /// The verdict on `pair` no longer holds (REAP's `PathUsable`, or a re-test join
    /// that came up): back-offs on it are reset and the policy re-applied.
    fn revoke(&mut self, ulid_peer: Ipv6Addr, pair: Pair, why: &str, now: Instant) {
        let Some(peer) = self.peers.get_mut(&ulid_peer) else {
            return;
        };
        peer.retest.remove(&pair);
        if !peer.dead.remove(&pair) {
            return;
        }
        self.note(now, None, None, why.to_owned());
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if self.peer_key_of(token) == Some(ulid_peer) {
                if let Some(c) = self.conns.get_mut(&token) {
                    c.backoff.remove(&pair);
                }
                self.replan(token, now);
            }
        }
    }

    /// The connection has carried `bytes` in total (both directions; sampled by the
    /// driver from `sock_diag`'s `mptcp_info`). Drives [`Policy::Elephant`].
    pub fn bytes_carried(&mut self, token: Token, bytes: u64, now: Instant) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        if c.bytes == bytes {
            return;
        }
        c.bytes = bytes;
        if matches!(self.config.policy, Policy::Elephant { .. }) {
            self.replan(token, now);
        }
    }

    /// The driver could not carry `action` out (`error` says why, for the log).
    /// A failed create backs off on its pair; a failed close leaves the subflow as the
    /// kernel reports it next.
    pub fn command_failed(&mut self, action: &Action, error: &str, now: Instant) {
        if let Action::CreateSubflow {
            token,
            local,
            remote,
            ..
        } = *action
            && let Some(c) = self.conns.get_mut(&token)
        {
            let probe = c
                .pending
                .iter()
                .any(|(l, r, p)| (*l, *r) == (local, remote) && p.probe);
            c.pending.retain(|(l, r, _)| (*l, *r) != (local, remote));
            if probe {
                let key = self.peer_key_of(token);
                self.retest_failed(key, local, remote.ip(), now);
            } else if let Some(p) = pair_of(local, remote.ip()) {
                let b = c.backoff.entry(p).or_insert(Backoff {
                    failures: 0,
                    until: now,
                });
                b.failures = b.failures.saturating_add(1);
                b.until = now + backoff(b.failures);
            }
        }
        self.note(
            now,
            Some(action.token()),
            None,
            format!("failed: {action}: {error}"),
        );
    }

    /// Time passed: expired back-offs and requests that never got an answer.
    pub fn handle_timeout(&mut self, now: Instant) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            let conn = self.conns.get_mut(&token).expect("token listed above");
            let mut expired = Vec::new();
            let mut probes = Vec::new();
            conn.pending.retain(|(l, r, p)| {
                let keep = now < p.since + PENDING_TIMEOUT;
                if !keep {
                    if p.probe {
                        probes.push((*l, *r));
                    } else {
                        expired.push((*l, *r));
                    }
                }
                keep
            });
            for (l, r) in &expired {
                if let Some(p) = pair_of(*l, r.ip()) {
                    let b = conn.backoff.entry(p).or_insert(Backoff {
                        failures: 0,
                        until: now,
                    });
                    b.failures = b.failures.saturating_add(1);
                    b.until = now + backoff(b.failures);
                }
            }
            for (l, r) in expired {
                self.note(
                    now,
                    Some(token),
                    None,
                    format!("subflow {l} -> {r}: no answer in {PENDING_TIMEOUT:?}"),
                );
            }
            let key = self.peer_key_of(token);
            for (l, r) in probes {
                self.retest_failed(key, l, r.ip(), now);
            }
            // Expired back-offs no longer hold their pairs back.
            self.replan(token, now);
        }
        // Re-tests due that no connection could make (none managed, or no room under
        // the cap): the next try is one back-off later, so that the deadline moves on.
        for peer in self.peers.values_mut() {
            for b in peer.retest.values_mut() {
                if b.until <= now {
                    b.until = now + backoff(b.failures.max(1));
                }
            }
        }
    }

    /// A re-test join on (`local`, `remote`) of the peer `key` failed (rule 10): the
    /// pair stays dead, the next re-test is one back-off later.
    fn retest_failed(
        &mut self,
        key: Option<Ipv6Addr>,
        local: IpAddr,
        remote: IpAddr,
        now: Instant,
    ) {
        let (Some(key), Some(pair)) = (key, pair_of(local, remote)) else {
            return;
        };
        let Some(b) = self
            .peers
            .get_mut(&key)
            .and_then(|p| p.retest.get_mut(&pair))
        else {
            return;
        };
        b.failures = b.failures.saturating_add(1);
        b.until = now + backoff(b.failures);
        let wait = backoff(b.failures);
        self.note(
            now,
            None,
            None,
            format!("re-test join on {pair} failed: still dead, next re-test in {wait:?}"),
        );
    }

    /// One subflow's `tcp_info` (rule 9): a joined subflow of a managed connection with
    /// data unacknowledged and no ACK for the stall timeout condemns its pair.
    /// Subflows the engine does not know (the initial one, the server side's, other
    /// sockets) are ignored.
    pub fn subflow_sample(&mut self, sample: &SubflowSample, now: Instant) {
        let Some(timeout) = self.stall_timeout else {
            return;
        };
        let key = (sample.local, sample.remote);
        let Some((&token, conn)) = self
            .conns
            .iter_mut()
            .find(|(_, c)| matches!(c.subflows.get(&key), Some(SubState::Up { .. })))
        else {
            return;
        };
        if sample.unacked == 0 {
            conn.outstanding.remove(&key);
            return;
        }
        // Unacknowledged since this sample at the latest: a subflow idle for long whose
        // `last_ack_recv` is old is not stalled the moment it sends again.
        let since = *conn.outstanding.entry(key).or_insert(now);
        let stalled = sample.since_ack.min(now.saturating_duration_since(since));
        if stalled < timeout {
            return;
        }
        let (Some(pair), Some(peer)) = (
            pair_of(sample.local.ip(), sample.remote.ip()),
            self.peer_key_of(token),
        ) else {
            return;
        };
        if self.conns[&token].initial_pair() == Some(pair) {
            return;
        }
        self.note(
            now,
            Some(token),
            None,
            format!(
                "subflow {} -> {} stalled: {} segment(s) unacknowledged, no ACK for {stalled:?} \
                 (>= Send Timeout {timeout:?}, RFC 5534 §3.5 on the subflow)",
                sample.local, sample.remote, sample.unacked
            ),
        );
        self.path_failed(peer, pair, now);
    }

    // ---- outputs -----------------------------------------------------------------

    /// The next command for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Engine::handle_timeout`] is next due: the earliest back-off end or pending
    /// request deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retests = self
            .peers
            .values()
            .flat_map(|p| p.retest.values().map(|b| b.until));
        self.conns
            .values()
            .filter(|c| c.established && !c.connection.server_side)
            .flat_map(|c| {
                c.backoff
                    .values()
                    .map(|b| b.until)
                    .chain(c.pending.iter().map(|(_, _, p)| p.since + PENDING_TIMEOUT))
            })
            .chain(retests)
            .min()
    }

    // ---- getters -----------------------------------------------------------------

    /// The last [`DECISIONS_KEPT`] decisions, oldest first.
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter()
    }

    /// A serialisable snapshot (the `mptcp` control command).
    pub fn status(&self, now: Instant) -> EngineStatus {
        let connections = self
            .conns
            .values()
            .map(|c| ConnStatus {
                token: c.connection.token.to_string(),
                local: c.connection.local,
                remote: c.connection.remote,
                server_side: c.connection.server_side,
                established: c.established,
                peer: self.peer_key_of(c.connection.token),
                bytes: c.bytes,
                subflows: c
                    .subflows
                    .iter()
                    .map(|((l, r), st)| SubflowStatus {
                        local: *l,
                        remote: *r,
                        backup: matches!(st, SubState::Up { backup: true }),
                        state: match st {
                            SubState::Up { .. } => "up",
                            SubState::Closing => "closing",
                        },
                    })
                    .chain(c.pending.iter().map(|(l, r, p)| SubflowStatus {
                        local: SocketAddr::new(*l, 0),
                        remote: *r,
                        backup: p.backup,
                        state: "requested",
                    }))
                    .collect(),
            })
            .collect();
        let peers = self
            .peers
            .values()
            .map(|p| PeerStatus {
                ulid_peer: p.view.ulid_peer,
                locals: p.view.locals.clone(),
                verified_remotes: p.view.remotes.clone(),
                dead_pairs: p.dead.iter().map(|d| (d.local, d.remote)).collect(),
            })
            .collect();
        let decisions = self
            .decisions
            .iter()
            .map(|d| DecisionStatus {
                age_ms: u64::try_from(now.saturating_duration_since(d.at).as_millis())
                    .unwrap_or(u64::MAX),
                token: d.token.map(|t| t.to_string()),
                action: d.action,
                reason: d.reason.clone(),
            })
            .collect();
        EngineStatus {
            policy: self.config.policy,
            policy_text: self.config.policy.to_string(),
            max_subflows: self.config.max_subflows,
            connections,
            peers,
            decisions,
        }
    }

    // ---- internals ---------------------------------------------------------------

    fn note(&mut self, at: Instant, token: Option<Token>, action: Option<Action>, reason: String) {
        tracing::debug!(?token, ?action, "mptcp: {reason}");
        if self.decisions.len() == DECISIONS_KEPT {
            self.decisions.pop_front();
        }
        self.decisions.push_back(Decision {
            at,
            token,
            action,
            reason,
        });
    }

    fn emit(&mut self, at: Instant, action: Action, reason: String) {
        tracing::info!("mptcp: {action} ({reason})");
        self.note(at, Some(action.token()), Some(action), reason);
        self.actions.push_back(action);
    }

    fn is_server_side(&self, token: Token) -> bool {
        self.conns
            .get(&token)
            .is_some_and(|c| c.connection.server_side)
    }

    fn peer_key_of(&self, token: Token) -> Option<Ipv6Addr> {
        let remote = self.conns.get(&token)?.connection.remote.ip();
        self.peers
            .values()
            .find(|p| p.owns(remote))
            .map(|p| p.view.ulid_peer)
    }

    fn peer_of(&self, token: Token) -> Option<&Peer> {
        self.peers.get(&self.peer_key_of(token)?)
    }

    /// Detaches `victims`, joined subflows from local address `local` on dead pairs,
    /// on both sides (mptcp-pm.md pitfall 5).
    ///
    /// The kernel keeps **one** entry and ID per local address, shared by every joined
    /// subflow from it (the initial subflow has ID 0 of its own), and `SUBFLOW_DESTROY`
    /// drops that entry. So:
    /// - a join from `local` still in flight carries the ID: REMOVE would pull the
    ///   address from under it, so every victim only gets `SUBFLOW_DESTROY` (their peer
    ///   halves linger until they time out);
    /// - otherwise the first victim gets the whole recipe (REMOVE, whose `RM_ADDR` closes
    ///   every peer half with that ID at once, then `SUBFLOW_DESTROY`), the other
    ///   victims `SUBFLOW_DESTROY`; healthy subflows from the same address lost their
    ///   peer halves to that `RM_ADDR` too, so they are closed as well and the replan
    ///   that follows re-creates them (with a fresh ID). A peer half left ESTABLISHED
    ///   on a dead path would keep attracting the peer's data until it times out.
    fn detach(
        &mut self,
        token: Token,
        local: IpAddr,
        victims: &[(SocketAddr, SocketAddr)],
        why: &str,
        now: Instant,
    ) {
        let Some(c) = self.conns.get(&token) else {
            return;
        };
        let in_flight = c.pending.iter().any(|(l, _, _)| *l == local);
        let collateral: Vec<(SocketAddr, SocketAddr)> = if in_flight {
            Vec::new()
        } else {
            c.subflows
                .iter()
                .filter(|(k, st)| {
                    matches!(st, SubState::Up { .. }) && k.0.ip() == local && !victims.contains(k)
                })
                .map(|(k, _)| *k)
                .collect()
        };
        for (i, (l, r)) in victims.iter().enumerate() {
            self.close_subflow(token, *l, *r, Some(in_flight || i > 0), why, now);
        }
        for (l, r) in collateral {
            self.close_subflow(
                token,
                l,
                r,
                None,
                "shares its local address (and ID) with a dead pair: RM_ADDR closed its peer \
                 half; re-created at once",
                now,
            );
        }
    }

    fn close_subflow(
        &mut self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
        detach_in_use: Option<bool>,
        why: &str,
        now: Instant,
    ) {
        if let Some(st) = self
            .conns
            .get_mut(&token)
            .and_then(|c| c.subflows.get_mut(&(local, remote)))
        {
            *st = SubState::Closing;
        }
        let action = match detach_in_use {
            Some(local_in_use) => Action::DetachPath {
                token,
                local,
                remote,
                local_in_use,
            },
            None => Action::DestroySubflow {
                token,
                local,
                remote,
            },
        };
        self.emit(now, action, why.into());
    }

    fn replan_all(&mut self, now: Instant) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            self.replan(t, now);
        }
    }

    /// Compares what the policy wants for `token` with what exists, and issues the
    /// creates (and backup flips) that close the gap.
    fn replan(&mut self, token: Token, now: Instant) {
        // 1. Is the connection ours to manage (rules 1, 2)?
        let Some(conn) = self.conns.get(&token) else {
            return;
        };
        if !conn.established {
            return;
        }
        let why_not = if conn.connection.server_side {
            Some("server side: accepts joins, creates none")
        } else if conn.initial_pair().is_none() {
            Some("IPv4 connection: Shim6 is IPv6 only")
        } else if self.peer_of(token).is_none() {
            Some("remote is not a Shim6 peer (no verified locators): left alone")
        } else {
            None
        };
        if let Some(why) = why_not {
            if conn.unmanaged != Some(why) {
                self.conns.get_mut(&token).expect("present").unmanaged = Some(why);
                self.note(now, Some(token), None, why.into());
            }
            return;
        }
        let conn = &self.conns[&token];
        let peer = self.peer_of(token).expect("checked above");
        let wants = wants(self.config, conn, peer);
        // 2. What exists, per pair: joined subflows up and requests in flight.
        let mut have: BTreeMap<Pair, u32> = BTreeMap::new();
        for (k, st) in &conn.subflows {
            if let (SubState::Up { .. }, Some(p)) = (st, pair_of(k.0.ip(), k.1.ip())) {
                *have.entry(p).or_default() += 1;
            }
        }
        for (l, r, _) in &conn.pending {
            if let Some(p) = pair_of(*l, r.ip()) {
                *have.entry(p).or_default() += 1;
            }
        }
        // 3. Create what is missing, unless its pair is backing off, within what the
        //    cap leaves: subflows on pairs the policy no longer prefers (the view or
        //    the dead set changed) still count (rule 7), and are not cut.
        let port = conn.connection.remote.port();
        let active: u32 = have.values().sum();
        let budget = u32::from(self.config.max_subflows.saturating_sub(1)).saturating_sub(active);
        let mut creates = Vec::new();
        for w in &wants {
            if creates.len() >= budget as usize {
                break;
            }
            match have.get_mut(&w.pair) {
                Some(n) if *n > 0 => *n -= 1,
                _ => {
                    if conn.backoff.get(&w.pair).is_some_and(|b| b.until > now) {
                        continue;
                    }
                    creates.push(*w);
                }
            }
        }
        // 3b. Rule 10: re-test joins on dead pairs whose time came, in the room left.
        let mut probes = Vec::new();
        let init = conn.initial_pair();
        for (pair, b) in &peer.retest {
            if creates.len() + probes.len() >= budget as usize {
                break;
            }
            if b.until <= now
                && Some(*pair) != init
                && peer.dead.contains(pair)
                && peer.view.locals.contains(&pair.local)
                && peer.verified(IpAddr::V6(pair.remote))
                && have.get(pair).is_none_or(|n| *n == 0)
                && !conn
                    .pending
                    .iter()
                    .any(|(l, r, _)| pair_of(*l, r.ip()) == Some(*pair))
            {
                probes.push(*pair);
            }
        }
        // 4. Backup policy: promote backups while the initial pair is dead, demote after.
        let mut flips = Vec::new();
        if self.config.policy == Policy::Backup {
            let initial_dead = conn.initial_pair().is_some_and(|p| peer.dead.contains(&p));
            for (k, st) in &conn.subflows {
                if let SubState::Up { backup } = st
                    && *backup == initial_dead
                {
                    flips.push((*k, !initial_dead));
                }
            }
        }
        let policy = self.config.policy;
        let conn = self.conns.get_mut(&token).expect("present");
        conn.unmanaged = None;
        for w in &creates {
            conn.pending.push((
                IpAddr::V6(w.pair.local),
                SocketAddr::new(IpAddr::V6(w.pair.remote), port),
                Pending {
                    since: now,
                    backup: w.backup,
                    probe: false,
                },
            ));
        }
        for pair in &probes {
            conn.pending.push((
                IpAddr::V6(pair.local),
                SocketAddr::new(IpAddr::V6(pair.remote), port),
                Pending {
                    since: now,
                    backup: policy == Policy::Backup,
                    probe: true,
                },
            ));
        }
        for ((l, r), b) in &flips {
            conn.subflows.insert((*l, *r), SubState::Up { backup: *b });
        }
        let key = self.peer_key_of(token);
        if let Some(peer) = key.and_then(|k| self.peers.get_mut(&k)) {
            for pair in &probes {
                // Answered by SUB_ESTABLISHED / SUB_CLOSED or PENDING_TIMEOUT, which set
                // the next time; this one only keeps the deadline in the future.
                if let Some(b) = peer.retest.get_mut(pair) {
                    b.until = now + PENDING_TIMEOUT + RETRY_BASE;
                }
            }
        }
        for pair in probes {
            let action = Action::CreateSubflow {
                token,
                local: IpAddr::V6(pair.local),
                remote: SocketAddr::new(IpAddr::V6(pair.remote), port),
                backup: policy == Policy::Backup,
            };
            self.emit(now, action, format!("re-test of dead pair {pair}"));
        }
        for w in creates {
            let action = Action::CreateSubflow {
                token,
                local: IpAddr::V6(w.pair.local),
                remote: SocketAddr::new(IpAddr::V6(w.pair.remote), port),
                backup: w.backup,
            };
            self.emit(now, action, format!("{policy}: verified pair {}", w.pair));
        }
        for ((local, remote), backup) in flips {
            let action = Action::SetBackup {
                token,
                local,
                remote,
                backup,
            };
            let why = if backup {
                "backup policy: initial pair works again"
            } else {
                "backup policy: initial pair dead, promote"
            };
            self.emit(now, action, why.into());
        }
    }
}

fn sanitize(mut c: PolicyConfig) -> PolicyConfig {
    c.max_subflows = c.max_subflows.clamp(1, 8);
    if let Policy::Ndiffports { n } = &mut c.policy {
        *n = (*n).clamp(1, 8);
    }
    if let Policy::Elephant { step, .. } = &mut c.policy {
        *step = (*step).max(1);
    }
    c
}

/// Back-off after `failures` failures (rule 5).
fn backoff(failures: u32) -> Duration {
    RETRY_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

fn join(a: &[Ipv6Addr]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The extra subflows (the initial one excluded) the policy wants for `conn`, most
/// wanted first; at most `max_subflows - 1`.
fn wants(config: PolicyConfig, conn: &Conn, peer: &Peer) -> Vec<Want> {
    let Some(init) = conn.initial_pair() else {
        return Vec::new();
    };
    let alive: Vec<Pair> = peer
        .pairs()
        .into_iter()
        .filter(|p| !peer.dead.contains(p))
        .collect();
    // Pairs other than the initial one, those sharing fewer locators with it first
    // (disjoint paths fail independently; RFC 5534 §4.3's orthogonal-first idea).
    let mut others: Vec<Pair> = alive.iter().copied().filter(|p| *p != init).collect();
    others.sort_by_key(|p| p.shared_locators(&init));
    let extra_max = usize::from(config.max_subflows.saturating_sub(1));
    let mut out: Vec<Want> = match config.policy {
        Policy::Fullmesh | Policy::Backup => others
            .iter()
            .map(|&pair| Want {
                pair,
                backup: config.policy == Policy::Backup,
            })
            .collect(),
        Policy::Ndiffports { n } => {
            let init_alive = !peer.dead.contains(&init);
            let (pair, count) = if init_alive {
                (Some(init), usize::from(n).saturating_sub(1))
            } else {
                (others.first().copied(), usize::from(n))
            };
            pair.map(|pair| {
                vec![
                    Want {
                        pair,
                        backup: false
                    };
                    count
                ]
            })
            .unwrap_or_default()
        }
        Policy::Elephant { threshold, step } => {
            let total = if conn.bytes < threshold {
                1
            } else {
                2u64.saturating_add((conn.bytes - threshold) / step)
            };
            let extra = usize::try_from(total - 1)
                .unwrap_or(usize::MAX)
                .min(extra_max);
            // Round-robin over the other pairs; with none, more on the initial pair.
            let pool: Vec<Pair> = if others.is_empty() {
                alive.iter().copied().filter(|p| *p == init).collect()
            } else {
                others
            };
            if pool.is_empty() {
                Vec::new()
            } else {
                (0..extra)
                    .map(|i| Want {
                        pair: pool[i % pool.len()],
                        backup: false,
                    })
                    .collect()
            }
        }
    };
    out.truncate(extra_max);
    out
}

/// A connection in [`EngineStatus`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ConnStatus {
    /// Token (hex, as `ss -M` prints it).
    pub token: String,
    /// Initial subflow's local end.
    pub local: SocketAddr,
    /// Initial subflow's remote end.
    pub remote: SocketAddr,
    /// We accepted it.
    pub server_side: bool,
    /// ESTABLISHED seen.
    pub established: bool,
    /// ULID of the Shim6 peer it belongs to; `None`: not managed.
    pub peer: Option<Ipv6Addr>,
    /// Bytes carried (last sample).
    pub bytes: u64,
    /// Joined subflows, up, closing or requested (local port 0 until up).
    pub subflows: Vec<SubflowStatus>,
}

/// A joined subflow in [`ConnStatus`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct SubflowStatus {
    /// Local end.
    pub local: SocketAddr,
    /// Remote end.
    pub remote: SocketAddr,
    /// Backup flag.
    pub backup: bool,
    /// `up`, `closing` or `requested`.
    pub state: &'static str,
}

/// A peer in [`EngineStatus`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct PeerStatus {
    /// ULID(peer).
    pub ulid_peer: Ipv6Addr,
    /// Our locators.
    pub locals: Vec<Ipv6Addr>,
    /// Its verified locators.
    pub verified_remotes: Vec<Ipv6Addr>,
    /// Pairs REAP declared dead, (local, remote).
    pub dead_pairs: Vec<(Ipv6Addr, Ipv6Addr)>,
}

/// A decision in [`EngineStatus`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct DecisionStatus {
    /// How long ago, in milliseconds.
    pub age_ms: u64,
    /// The connection.
    pub token: Option<String>,
    /// The action, if one was taken.
    pub action: Option<Action>,
    /// Why.
    pub reason: String,
}

/// What [`Engine::status`] returns.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct EngineStatus {
    /// The policy.
    pub policy: Policy,
    /// The policy as text.
    pub policy_text: String,
    /// The per-connection cap.
    pub max_subflows: u8,
    /// Connections.
    pub connections: Vec<ConnStatus>,
    /// Shim6 peers.
    pub peers: Vec<PeerStatus>,
    /// Last decisions, oldest first.
    pub decisions: Vec<DecisionStatus>,
}

#[cfg(test)]
mod tests;
