//! The REAP state machine of one Shim6 context (RFC 5534 §6).
//!
//! # Contract
//!
//! - **Handlers** (`handle_*`) feed inputs: payload sent or received, Keepalive and Probe
//!   messages received, timer expiry, outside hints, locator-set changes and the peer's
//!   Keepalive Timeout option.
//! - **Pollers**: after any handler, drain [`Reap::poll_transmit`] (messages to send, in
//!   order), then [`Reap::poll_event`] (path failed / changed / usable, …), then re-arm
//!   the caller's timer from [`Reap::poll_timeout`] and call [`Reap::handle_timeout`]
//!   once the clock has reached it.
//! - **Time never goes backwards.** Every input carries `now`; an instant earlier than one
//!   already seen is treated as that later instant (so a non-monotonic caller can delay
//!   REAP's reactions but never corrupt its timers). Nothing here reads the clock.
//! - **Randomness** (probe nonces, timer jitter, weighted orders) comes from the ChaCha20
//!   stream seeded in [`Reap::new`]; a seed and a sequence of inputs reproduce a run.

use core::fmt;
use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use shim6_wire::shim6::probe::{MAX_PROBE_RECORDS, ProbeRecord, ReapState};

use crate::config::{Config, ConfigError};
use crate::explore::Exploration;
use crate::io::{Event, FailureCause, Hint, ProbeIn, ProbeOut, Transmit};
use crate::locator::{FailedPlacement, Locator, Pair, exploration_order, is_usable_address};
use crate::records::{ReceivedHistory, SentHistory, SentProbe};
use crate::rng::Rng;
use crate::timer::{Timer, TimerTable};

#[cfg(test)]
mod tests;

/// Misuse of the API: the only errors REAP returns (style.md error model). Everything
/// the peer does is handled as an input, never as an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The configuration cannot work.
    Config(ConfigError),
    /// No usable local locator was given.
    NoLocalLocators,
    /// No usable peer locator was given.
    NoPeerLocators,
    /// The current pair is not made of one of our locators and one of the peer's.
    UnknownCurrentPair(Pair),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::NoLocalLocators => f.write_str("REAP needs at least one usable local locator"),
            Self::NoPeerLocators => f.write_str("REAP needs at least one usable peer locator"),
            Self::UnknownCurrentPair(p) => write!(
                f,
                "current pair {p} is not one of our locators with one of the peer's"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

/// Counters, for the control interface and the study.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Probes sent.
    pub probes_sent: u64,
    /// Probes sent with Sta = Exploring.
    pub exploring_probes_sent: u64,
    /// Keepalives sent.
    pub keepalives_sent: u64,
    /// Probes received.
    pub probes_received: u64,
    /// Keepalives received.
    pub keepalives_received: u64,
    /// Explorations started.
    pub explorations: u64,
    /// Changes of the current pair.
    pub path_changes: u64,
    /// "Probe received" records in the peer's probes that matched none of our probes
    /// (stale, or forged: they prove nothing and are ignored).
    pub unmatched_reports: u64,
    /// Probes received without any "sent" record (Psent = 0 is invalid, RFC 5534 §5.2);
    /// ignored.
    pub malformed_probes: u64,
    /// Late Probes with Sta = Exploring that the peer had already superseded (it listed
    /// them as earlier probes in a newer, non-Exploring probe); reported back, but they
    /// trigger no transition.
    pub stale_probes: u64,
    /// Same-state reaction probes suppressed by [`Config::min_probe_gap`].
    pub reactions_suppressed: u64,
    /// ICMP hints ignored (not about the current pair, not Operational, or held down).
    pub icmp_hints_ignored: u64,
}

/// REAP for one Shim6 context: failure detection (Forced Bidirectional Detection with
/// the Send and Keepalive timers) and locator-pair exploration (RFC 5534).
///
/// See the [module documentation](self) for the calling contract and the
/// [crate documentation](crate) for the state/timer table.
#[derive(Debug, Clone)]
pub struct Reap {
    config: Config,
    rng: Rng,
    state: ReapState,
    /// Our current sending pair (RFC 5534 §3.5). Per direction: the peer has its own.
    current: Pair,
    locals: Vec<Locator>,
    peers: Vec<Locator>,
    /// Our addresses that are not locally operational (RFC 5534 §3.2).
    down: Vec<Ipv6Addr>,
    /// Keepalive Timeout: the peer's announced Send Timeout, else the default (§7).
    keepalive_timeout: Duration,
    timers: TimerTable,
    explore: Option<Exploration>,
    sent: SentHistory,
    received: ReceivedHistory,
    /// Pairs proven in the current exploration (one `PathUsable` each).
    proven: Vec<Pair>,
    /// Start of the most recent exploration: reports of probes sent before it are stale
    /// and prove nothing about the paths now.
    exploration_epoch: Option<Instant>,
    next_data: u32,
    last_now: Instant,
    last_probe_at: Option<Instant>,
    last_icmp_check: Option<Instant>,
    last_inbound: Option<Pair>,
    /// The peer's probes that it listed as earlier ("sent" records after the first) in a
    /// probe with Sta ≠ Exploring: an Exploring probe among them that arrives late was
    /// overtaken by the peer's newer state and must not restart an exploration.
    superseded: VecDeque<ProbeRecord>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Reap {
    /// A REAP instance for a context that has just become ESTABLISHED: state
    /// Operational, no timer running (RFC 5534 §6, App. A example 1), sending on
    /// `current` (normally the ULID pair, RFC 5534 §3.4).
    ///
    /// `seed` seeds the ChaCha20 generator for nonces and jitter; derive it from the
    /// endpoint's RNG (style.md).
    pub fn new(
        config: Config,
        seed: [u8; 32],
        locals: &[Locator],
        peers: &[Locator],
        current: Pair,
        now: Instant,
    ) -> Result<Self, Error> {
        config.validate()?;
        if !locals.iter().any(|l| is_usable_address(&l.addr)) {
            return Err(Error::NoLocalLocators);
        }
        if !peers.iter().any(|l| is_usable_address(&l.addr)) {
            return Err(Error::NoPeerLocators);
        }
        if !locals.iter().any(|l| l.addr == current.local)
            || !peers.iter().any(|l| l.addr == current.remote)
        {
            return Err(Error::UnknownCurrentPair(current));
        }
        let keepalive_timeout = config.default_keepalive_timeout;
        Ok(Self {
            config,
            rng: Rng::from_seed(seed),
            state: ReapState::Operational,
            current,
            locals: locals.to_vec(),
            peers: peers.to_vec(),
            down: Vec::new(),
            keepalive_timeout,
            timers: TimerTable::default(),
            explore: None,
            sent: SentHistory::default(),
            received: ReceivedHistory::default(),
            proven: Vec::new(),
            exploration_epoch: None,
            next_data: 0,
            last_now: now,
            last_probe_at: None,
            last_icmp_check: None,
            last_inbound: None,
            superseded: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    // ---------------------------------------------------------------- getters

    /// The REAP state (RFC 5534 §6).
    pub fn state(&self) -> ReapState {
        self.state
    }

    /// Our current sending pair (RFC 5534 §3.5): where payload and Keepalives go.
    pub fn current_pair(&self) -> Pair {
        self.current
    }

    /// The pair the peer's traffic last arrived on, when the caller told us; it is the
    /// peer's sending pair seen from our side, and may differ from ours.
    pub fn last_inbound_pair(&self) -> Option<Pair> {
        self.last_inbound
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The Keepalive Timeout in force: the peer's announced Send Timeout, else the
    /// default (RFC 5534 §7).
    pub fn keepalive_timeout(&self) -> Duration {
        self.keepalive_timeout
    }

    /// The deadline of one timer, if armed (for inspection and tests).
    pub fn timer(&self, t: Timer) -> Option<Instant> {
        self.timers.get(t)
    }

    /// Whether an exploration gave up (see [`Config::give_up_at_cap`]).
    pub fn given_up(&self) -> bool {
        self.explore.as_ref().is_some_and(|e| e.given_up)
    }

    /// The candidate order of the running exploration, if any.
    pub fn exploration_order(&self) -> Option<&[Pair]> {
        self.explore.as_ref().map(|e| e.order())
    }

    /// The value for the Keepalive Timeout option (RFC 5534 §5.3), in seconds, when the
    /// Shim6 layer must send one: only when our Send Timeout is not the default ("If the
    /// node is using a non-default Send Timeout value, it MUST communicate this value"),
    /// once per association, in I2, I2bis, R2 or an Update Request. Sub-second parts are
    /// rounded down so the peer keeps alive at least as often as we need.
    pub fn keepalive_timeout_option(&self) -> Option<u16> {
        if self.config.send_timeout_is_default() {
            None
        } else {
            let s = self
                .config
                .send_timeout
                .as_secs()
                .clamp(1, u64::from(u16::MAX));
            Some(s as u16)
        }
    }

    // ---------------------------------------------------------------- pollers

    /// The next message to send, if any. Drain until `None` after each handler.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any. Drain until `None` after each handler.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Reap::handle_timeout`] must next be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    // ---------------------------------------------------------------- handlers

    /// We sent a payload packet on this context: upper-layer data, or any Shim6 control
    /// message other than Keepalive and Probe (RFC 5534 §4.1 item 2, §6.2).
    pub fn handle_payload_sent(&mut self, now: Instant) {
        let now = self.advance(now);
        match self.state {
            // §6.2 Operational: START Send (if not running), STOP Keepalive.
            ReapState::Operational => {
                self.start_send_if_idle(now);
                self.stop_keepalive();
            }
            // §6.2 Exploring: no effect; payload keeps using the old pair (§6.9).
            ReapState::Exploring => {}
            // §6.2 InboundOk: START Send (if not running).
            ReapState::InboundOk => self.start_send_if_idle(now),
        }
    }

    /// A payload packet (or a Shim6 control message other than Keepalive and Probe)
    /// arrived on this context (RFC 5534 §6.1). `on` is the pair it arrived on, when
    /// known (packets without the payload extension header may be counted without it).
    pub fn handle_payload_received(&mut self, now: Instant, on: Option<Pair>) {
        let now = self.advance(now);
        self.note_inbound(on);
        match self.state {
            // §6.1 Operational: STOP Send, START Keepalive (if not running).
            ReapState::Operational => {
                self.timers.stop(Timer::Send);
                self.start_keepalive_if_idle(now);
            }
            // §6.1 Exploring: SEND Probe InboundOk, START Send, GOTO InboundOk. We hear
            // the peer, so only our direction is left to find.
            ReapState::Exploring => self.exploring_to_inbound_ok(now, on),
            // §6.1 InboundOk: STOP Send.
            ReapState::InboundOk => self.timers.stop(Timer::Send),
        }
    }

    /// A valid Keepalive arrived (RFC 5534 §5.1, §6.6) on pair `on`.
    pub fn handle_keepalive(&mut self, now: Instant, on: Pair) {
        let now = self.advance(now);
        self.stats.keepalives_received += 1;
        self.note_inbound(Some(on));
        match self.state {
            // §6.6 Operational: STOP Send.
            ReapState::Operational => self.timers.stop(Timer::Send),
            // §6.6 Exploring: SEND Probe InboundOk, START Send, GOTO InboundOk.
            ReapState::Exploring => self.exploring_to_inbound_ok(now, Some(on)),
            // §6.6 InboundOk: STOP Send.
            ReapState::InboundOk => self.timers.stop(Timer::Send),
        }
    }

    /// A valid Probe arrived (RFC 5534 §5.2, §6.7–§6.9) on pair `on` (our address as
    /// destination, the peer's as source).
    pub fn handle_probe(&mut self, now: Instant, on: Pair, probe: ProbeIn<'_>) {
        let now = self.advance(now);
        // RFC 5534 §5.2: Psent ≥ 1, the first record describes this probe. Without it we
        // could not report it back; treat the message as malformed.
        let Some(first) = probe.sent.first() else {
            self.stats.malformed_probes += 1;
            return;
        };
        self.stats.probes_received += 1;
        self.note_inbound(Some(on));
        if probe.state == ReapState::Exploring && self.superseded.contains(first) {
            // Reordering, not news: the peer had moved on when this one arrived (e.g. the
            // slow members of its burst). Acting on it would reopen an exploration that
            // just ended (RFC 5534 §6.7 assumes in-order delivery). Still report it.
            self.received.push(*first);
            self.stats.stale_probes += 1;
            return;
        }
        if probe.state != ReapState::Exploring {
            self.note_superseded(&probe.sent[1..]);
        }
        if self.state == ReapState::Operational && probe.state == ReapState::Exploring {
            // §6.7 starts a new exploration: reports restart with it, as they do on
            // entering Exploring (§5.2), so nothing stale is reported.
            self.received.clear();
        }
        // Recorded before reacting, so the reaction reports it (InboundOk MUST report at
        // least one received probe, §5.2).
        self.received.push(*first);
        // Any probe's reports prove pairs (§8 return routability), whatever its Sta. The
        // RFC adopts them on §6.8 only; we also do on §6.7/§6.9, see `learn_from_reports`.
        self.learn_from_reports(probe.received);
        match probe.state {
            ReapState::Exploring => self.on_probe_exploring(now, on),
            ReapState::InboundOk => self.on_probe_inbound_ok(now),
            ReapState::Operational => self.on_probe_operational(now),
        }
    }

    /// Timers that have expired by `now` fire, in [`Timer::ALL`] order.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        // Each expiry either disarms its timer or re-arms it strictly later than `now`
        // (all intervals are positive, `Config::validate`); the bound is only a guard.
        for _ in 0..16 {
            let Some(t) = self.timers.first_expired(now) else {
                return;
            };
            self.timers.stop(t);
            match t {
                Timer::Send => self.on_send_timeout(now),
                Timer::Keepalive => self.on_keepalive_timeout(),
                Timer::KeepaliveInterval => self.on_keepalive_interval(now),
                Timer::Probe => self.on_probe_timer(now),
            }
        }
    }

    /// The peer announced its Send Timeout in a Keepalive Timeout option (RFC 5534
    /// §5.3): it becomes our Keepalive Timeout ("SHOULD update"). Zero is meaningless and
    /// ignored; returns whether the value was adopted. A running Keepalive Timer keeps
    /// its deadline; the new value applies from its next start.
    pub fn handle_peer_keepalive_timeout(&mut self, now: Instant, seconds: u16) -> bool {
        self.advance(now);
        if seconds == 0 {
            return false;
        }
        self.keepalive_timeout = Duration::from_secs(u64::from(seconds));
        true
    }

    /// A signal from outside REAP (RFC 5534 §3.2, §3.3, §8); see [`Hint`].
    pub fn handle_hint(&mut self, now: Instant, hint: Hint) {
        let now = self.advance(now);
        match hint {
            Hint::LocalAddressDown(addr) => {
                if !self.down.contains(&addr) {
                    self.down.push(addr);
                }
                if self.state == ReapState::Operational && self.current.local == addr {
                    // Trusted local information (§3.2): the current pair cannot work.
                    self.start_exploration(
                        now,
                        FailureCause::LocalLocatorDown,
                        FailedPlacement::Last,
                    );
                } else {
                    self.rebuild_order();
                }
            }
            Hint::LocalAddressUp(addr) => {
                self.down.retain(|a| *a != addr);
                self.rebuild_order();
                self.resume_if_given_up(now);
            }
            Hint::Icmp(pair) => {
                let held = self
                    .last_icmp_check
                    .is_some_and(|t| now.duration_since(t) < self.config.icmp_holddown);
                if pair != self.current || self.state != ReapState::Operational || held {
                    self.stats.icmp_hints_ignored += 1;
                    return;
                }
                self.last_icmp_check = Some(now);
                // §3.3: "use ICMP error messages only as a hint to perform an explicit
                // reachability test": explore, but probe the current pair first; if it
                // works it is reported and kept, so a forged ICMP moves nothing.
                self.start_exploration(now, FailureCause::Icmp, FailedPlacement::First);
            }
        }
    }

    /// Our locator set changed (RFC 5534 §3.1). If the current pair's local address left
    /// it, exploration starts at once; a running exploration re-orders its candidates.
    pub fn handle_local_locators(&mut self, now: Instant, locals: &[Locator]) -> Result<(), Error> {
        let now = self.advance(now);
        if !locals.iter().any(|l| is_usable_address(&l.addr)) {
            return Err(Error::NoLocalLocators);
        }
        self.locals = locals.to_vec();
        let current_ok = self.locals.iter().any(|l| l.addr == self.current.local);
        if !current_ok && self.state == ReapState::Operational {
            self.start_exploration(now, FailureCause::LocalLocatorDown, FailedPlacement::Last);
        } else {
            self.rebuild_order();
            self.resume_if_given_up(now);
        }
        Ok(())
    }

    /// The peer's verified locator set or its preferences changed (RFC 5533 §10 Update
    /// Request). If the current pair's remote address left it or is now flagged BROKEN,
    /// exploration starts at once ("run REAP exploration before switching").
    pub fn handle_peer_locators(&mut self, now: Instant, peers: &[Locator]) -> Result<(), Error> {
        let now = self.advance(now);
        if !peers.iter().any(|l| is_usable_address(&l.addr)) {
            return Err(Error::NoPeerLocators);
        }
        self.peers = peers.to_vec();
        let current_ok = self
            .peers
            .iter()
            .any(|l| l.addr == self.current.remote && !l.pref.broken);
        if !current_ok && self.state == ReapState::Operational {
            self.start_exploration(now, FailureCause::PeerLocatorGone, FailedPlacement::Last);
        } else {
            self.rebuild_order();
            self.resume_if_given_up(now);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- transitions

    /// §6.7: a Probe with Sta = Exploring: the peer is not hearing from us.
    fn on_probe_exploring(&mut self, now: Instant, on: Pair) {
        match self.state {
            // §6.7 Operational: SEND Probe InboundOk, STOP Keepalive, RESTART Send, GOTO
            // InboundOk. Our sending pair is suspect: start our own exploration of our
            // direction, the reverse of the pair we heard the peer on first.
            ReapState::Operational => {
                self.stop_keepalive();
                self.begin_exploration(now, FailureCause::PeerExploring, FailedPlacement::Last);
                self.set_state(ReapState::InboundOk);
                self.send_phase_start(now, Some(on));
                self.restart_send(now);
            }
            // §6.7 Exploring: SEND Probe InboundOk, START Send, GOTO InboundOk.
            ReapState::Exploring => self.exploring_to_inbound_ok(now, Some(on)),
            // §6.7 InboundOk: SEND Probe InboundOk, RESTART Send. Each probe of the
            // peer is answered on the reverse of its pair (if untried), which also
            // steps our own exploration forward; same-state reactions are rate limited.
            ReapState::InboundOk => {
                self.react(now, Some(on));
                self.restart_send(now);
            }
        }
    }

    /// §6.8: a Probe with Sta = InboundOk: the peer hears us (its reports say on which
    /// pairs) and waits for our confirmation.
    fn on_probe_inbound_ok(&mut self, now: Instant) {
        let was = self.state;
        // §6.8 "A new current address pair is chosen ... based on the reports of received
        // probes in the message that we just received. If no received probes have been
        // reported, the current address pair is unchanged": done in `handle_probe`.
        // §6.8 all states: STOP Keepalive, RESTART Send, GOTO Operational.
        self.stop_keepalive();
        self.restart_send(now);
        if was != ReapState::Operational {
            self.finish_exploration(now);
        }
        // SEND Probe Operational on the (possibly new) current pair, which the reports
        // just proved. Repeats in Operational (the peer's burst, or its retransmissions
        // crossing ours) are rate limited; the first reply after a change never is.
        if was == ReapState::Operational && self.recently_probed(now) {
            self.stats.reactions_suppressed += 1;
            return;
        }
        let pair = self.current;
        self.send_probe(now, pair);
    }

    /// §6.9: a Probe with Sta = Operational: the peer is happy and knows we are.
    fn on_probe_operational(&mut self, now: Instant) {
        if self.state != ReapState::Operational {
            self.finish_exploration(now);
        }
        // §6.9 all states: STOP Send, START Keepalive, GOTO Operational. We send nothing:
        // answering would ping-pong forever (protocol digest §7 item 14).
        self.timers.stop(Timer::Send);
        self.start_keepalive_if_idle(now);
    }

    /// §6.4: the Send Timer expired.
    fn on_send_timeout(&mut self, now: Instant) {
        match self.state {
            // §6.4 Operational: SEND Probe Exploring, GOTO Exploring.
            ReapState::Operational => {
                self.start_exploration(now, FailureCause::SendTimeout, FailedPlacement::Last);
            }
            // §6.4 InboundOk: SEND Probe Exploring, GOTO Exploring. Our probes were not
            // confirmed within a Send Timeout; keep the candidate round and the back-off.
            ReapState::InboundOk => {
                if let Some(e) = self.explore.as_mut() {
                    let from = e.initial_count(&self.config, true);
                    let to = e.initial_count(&self.config, false);
                    e.rebase(from, to);
                }
                self.set_state(ReapState::Exploring);
                // Deviation from §5.2 ("arrived since the last transition to Exploring"):
                // the records of this exploration are kept, so that our next probe that
                // gets through still tells the peer which of its pairs work. Dropping them
                // here can stall two hosts that each hear the other on one pair only
                // (found by the simulator). They are cleared when a new exploration starts,
                // and the peer only trusts reports of its probes from that exploration.
                let pair = self.explore_next_pair(now, None);
                if let Some(p) = pair {
                    self.send_probe(now, p);
                }
                self.schedule_next_probe(now, true);
            }
            // §6: no timer runs in Exploring; a stale deadline is ignored.
            ReapState::Exploring => {}
        }
    }

    /// §6.3: the Keepalive Timer expired: one last Keepalive on the current pair.
    fn on_keepalive_timeout(&mut self) {
        self.timers.stop(Timer::KeepaliveInterval);
        if self.state == ReapState::Operational {
            self.send_keepalive();
        }
    }

    /// §4.1 item 5: a Keepalive Interval passed while we owe the peer return traffic
    /// (the Keepalive Timer runs only while we have sent no payload since receiving).
    fn on_keepalive_interval(&mut self, now: Instant) {
        let Some(deadline) = self.timers.get(Timer::Keepalive) else {
            return;
        };
        if self.state != ReapState::Operational {
            return;
        }
        self.send_keepalive();
        let next = now + self.draw_keepalive_interval();
        // The Keepalive Timer's own expiry sends the last one (§6.3).
        if next < deadline {
            self.timers.set(Timer::KeepaliveInterval, next);
        }
    }

    /// §6.5: a probe retransmission is due.
    fn on_probe_timer(&mut self, now: Instant) {
        match self.state {
            ReapState::Exploring => {
                let give_up = match (&self.explore, self.config.give_up_at_cap) {
                    (Some(e), Some(limit)) => e.should_give_up(now, limit),
                    _ => false,
                };
                if give_up {
                    if let Some(e) = self.explore.as_mut() {
                        e.given_up = true;
                    }
                    self.events.push_back(Event::PeerUnreachable);
                    return;
                }
                // §6.5 Exploring: SEND Probe Exploring (on the next pair, §4.3).
                if let Some(p) = self.explore_next_pair(now, None) {
                    self.send_probe(now, p);
                }
                self.schedule_next_probe(now, true);
            }
            ReapState::InboundOk => {
                // §6.5 InboundOk: SEND Probe InboundOk, START Send (if not running).
                if let Some(p) = self.explore_next_pair(now, None) {
                    self.send_probe(now, p);
                }
                self.schedule_next_probe(now, true);
                self.start_send_if_idle(now);
            }
            ReapState::Operational => {}
        }
    }

    /// Exploring → InboundOk on hearing the peer (§6.1, §6.6, §6.7): probe back at once
    /// (a burst, if configured) with the pacing restarted, since the peer is alive and
    /// only our direction remains to be found.
    fn exploring_to_inbound_ok(&mut self, now: Instant, heard_on: Option<Pair>) {
        self.set_state(ReapState::InboundOk);
        if let Some(e) = self.explore.as_mut() {
            e.reset_pacing();
            e.given_up = false;
        }
        self.send_phase_start(now, heard_on);
        self.start_send_if_idle(now);
    }

    /// Operational → Exploring (§6.4, or early on a hint): send the first probe(s).
    fn start_exploration(&mut self, now: Instant, cause: FailureCause, placement: FailedPlacement) {
        self.stop_keepalive();
        self.timers.stop(Timer::Send); // §6: no timer runs in Exploring
        self.begin_exploration(now, cause, placement);
        self.set_state(ReapState::Exploring);
        self.received.clear(); // §5.2: reports cover the time since entering Exploring
        self.send_phase_start(now, None);
    }

    /// Sets up a new exploration around the current pair and reports "path failed".
    fn begin_exploration(&mut self, now: Instant, cause: FailureCause, placement: FailedPlacement) {
        self.stats.explorations += 1;
        self.proven.clear();
        self.exploration_epoch = Some(now);
        self.events.push_back(Event::PathFailed {
            pair: self.current,
            cause,
        });
        let order = self.build_order(Some(self.current), placement);
        self.explore = Some(Exploration::new(now, Some(self.current), placement, order));
    }

    /// Back to Operational: the exploration is over.
    fn finish_exploration(&mut self, now: Instant) {
        self.timers.stop(Timer::Probe);
        self.set_state(ReapState::Operational);
        if let Some(e) = self.explore.take() {
            self.events.push_back(Event::Recovered {
                pair: self.current,
                took: now.duration_since(e.started_at),
            });
        }
    }

    /// The first transmission of a phase: [`Config::burst`] probes on distinct pairs,
    /// the reverse of the pair we heard the peer on first; then the pacing timer.
    fn send_phase_start(&mut self, now: Instant, heard_on: Option<Pair>) {
        let candidates = self.explore.as_ref().map_or(0, |e| e.order().len());
        let n = self.config.burst.min(candidates.max(1));
        for i in 0..n {
            let prefer = if i == 0 { heard_on } else { None };
            if let Some(p) = self.explore_next_pair(now, prefer) {
                self.send_probe(now, p);
            }
        }
        self.schedule_next_probe(now, true);
    }

    /// A same-state reaction (§6.7 InboundOk): one probe on the reverse of the pair the
    /// peer was heard on, unless a probe left less than [`Config::min_probe_gap`] ago.
    /// The next paced retransmission is pushed back by the current gap.
    fn react(&mut self, now: Instant, heard_on: Option<Pair>) {
        if self.recently_probed(now) {
            self.stats.reactions_suppressed += 1;
            return;
        }
        if let Some(p) = self.explore_next_pair(now, heard_on) {
            self.send_probe(now, p);
        }
        self.schedule_next_probe(now, false);
    }

    /// Arms the probe timer one (jittered) gap from now; `advance` counts a transmission
    /// first. Tracks when the gap reached the cap, for the give-up.
    fn schedule_next_probe(&mut self, now: Instant, advance: bool) {
        let cfg = &self.config;
        let Some(e) = self.explore.as_mut() else {
            return;
        };
        if e.given_up {
            self.timers.stop(Timer::Probe);
            return;
        }
        if advance {
            e.transmissions = e.transmissions.saturating_add(1);
        }
        let initial = e.initial_count(cfg, self.state == ReapState::InboundOk);
        let base = e.base_gap(cfg, initial);
        if base >= cfg.max_probe_timeout {
            e.cap_since.get_or_insert(now);
        }
        let j = cfg.probe_jitter;
        let gap = self.rng.scale(base, 1.0 - j, 1.0 + j);
        self.timers
            .set(Timer::Probe, now + gap.max(Duration::from_micros(1)));
    }

    /// The next pair to probe (see [`Exploration::next_pair`]); our probe on the heard
    /// pair counts as old news once it is a Send Timeout old, the time scale on which
    /// REAP itself decides that a path failed.
    fn explore_next_pair(&mut self, now: Instant, prefer: Option<Pair>) -> Option<Pair> {
        let stale_before = now.checked_sub(self.config.send_timeout);
        self.explore
            .as_mut()
            .and_then(|e| e.next_pair(now, prefer, stale_before))
    }

    /// Sends one Probe on `pair` with our current state as Sta (§6.1: the state after
    /// sending), this probe's record first, then recent unreported ones (§6.1), and the
    /// peer's probes received since we last entered Exploring.
    fn send_probe(&mut self, now: Instant, pair: Pair) {
        let record = ProbeRecord {
            src: pair.local,
            dst: pair.remote,
            // §5.2: hard to guess; ChaCha20 output.
            nonce: self.rng.next_u32(),
            // §5.2: opaque, echoed back; a per-context sequence number helps debugging.
            data: self.next_data,
        };
        self.next_data = self.next_data.wrapping_add(1);
        let since = self.explore.as_ref().map(|e| e.started_at);
        let mut sent = Vec::with_capacity(self.config.max_sent_records);
        sent.push(record);
        sent.extend(
            self.sent
                .unreported_recent(self.config.max_sent_records - 1, since)
                .into_iter()
                .filter(|r| *r != record),
        );
        let mut received = self.received.to_vec();
        if received.len() > MAX_PROBE_RECORDS {
            received.drain(..received.len() - MAX_PROBE_RECORDS);
        }
        self.sent.push(SentProbe {
            record,
            pair,
            sent_at: now,
            reported: false,
        });
        self.stats.probes_sent += 1;
        if let Some(e) = self.explore.as_mut()
            && e.cap_since.is_some()
        {
            e.probes_at_cap += 1;
        }
        if self.state == ReapState::Exploring {
            self.stats.exploring_probes_sent += 1;
        }
        self.last_probe_at = Some(now);
        self.transmits.push_back(Transmit::Probe(ProbeOut {
            pair,
            state: self.state,
            sent,
            received,
        }));
    }

    fn send_keepalive(&mut self) {
        self.stats.keepalives_sent += 1;
        self.transmits
            .push_back(Transmit::Keepalive { pair: self.current });
    }

    /// Matches the peer's "probe received" records against our probes (nonce, data and
    /// addresses must all match: §8 return routability) and picks our sending pair.
    ///
    /// - Reports of probes sent before the most recent exploration began are stale and
    ///   ignored.
    /// - Once the current pair is proven in this exploration it is kept: no needless
    ///   change, no flapping between pairs that all work.
    /// - Otherwise the first proven pair in the peer's list wins; the list is in the
    ///   peer's arrival order (ours is), so the first of a burst to arrive — the lowest
    ///   delay — wins. Pairs whose locators are no longer candidates are not adopted.
    ///
    /// The RFC changes the pair only on a Probe with Sta = InboundOk (§6.8). We use the
    /// reports of every probe: the peer's Probe(Operational) that ends our InboundOk is
    /// where we learn which of our pairs got through when the peer reached Operational
    /// first (RFC 5534 App. A example 5 needs this implicitly), and a Probe(Exploring)
    /// may already prove a pair. A report is proof either way, and payload moves to a
    /// pair only once it is proven (§6.9 "confirmed").
    fn learn_from_reports(&mut self, reports: &[ProbeRecord]) {
        let mut proven: Vec<Pair> = Vec::new();
        let epoch = self.exploration_epoch;
        for r in reports {
            match self.sent.find_mut(r) {
                Some(p) if epoch.is_some_and(|e| p.sent_at >= e) => {
                    p.reported = true;
                    if !proven.contains(&p.pair) {
                        proven.push(p.pair);
                    }
                }
                _ => self.stats.unmatched_reports += 1,
            }
        }
        for p in &proven {
            if !self.proven.contains(p) {
                self.proven.push(*p);
                self.events.push_back(Event::PathUsable { pair: *p });
            }
        }
        if self.proven.contains(&self.current) {
            return;
        }
        let usable = |p: &Pair| {
            is_usable_address(&p.local)
                && is_usable_address(&p.remote)
                && !self.down.contains(&p.local)
                && self.locals.iter().any(|l| l.addr == p.local)
                && self
                    .peers
                    .iter()
                    .any(|l| l.addr == p.remote && !(self.config.exclude_broken && l.pref.broken))
        };
        if let Some(new) = proven.into_iter().find(|p| usable(p)) {
            let from = self.current;
            self.current = new;
            self.stats.path_changes += 1;
            self.events.push_back(Event::PathChanged { from, to: new });
        }
    }

    // ---------------------------------------------------------------- helpers

    /// Clamps `now` so that time never goes backwards, and remembers it.
    fn advance(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    /// Remembers probes the peer reports as its earlier ones (bounded like our own sent
    /// history).
    fn note_superseded(&mut self, older: &[ProbeRecord]) {
        for r in older {
            if !self.superseded.contains(r) {
                if self.superseded.len() == crate::records::SENT_HISTORY {
                    self.superseded.pop_front();
                }
                self.superseded.push_back(*r);
            }
        }
    }

    fn note_inbound(&mut self, on: Option<Pair>) {
        if on.is_some() {
            self.last_inbound = on;
        }
    }

    fn set_state(&mut self, to: ReapState) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.events.push_back(Event::StateChanged { from, to });
        }
    }

    fn recently_probed(&self, now: Instant) -> bool {
        self.last_probe_at
            .is_some_and(|t| now.duration_since(t) < self.config.min_probe_gap)
    }

    /// A Send Timer duration: the Send Timeout scaled down by up to
    /// [`Config::send_timeout_jitter`] (§4.1 "SHOULD be randomized").
    fn draw_send_timeout(&mut self) -> Duration {
        let j = self.config.send_timeout_jitter;
        self.rng.scale(self.config.send_timeout, 1.0 - j, 1.0)
    }

    /// A Keepalive Interval: a uniform fraction of the Keepalive Timeout in
    /// [`Config::keepalive_interval`] (§4.1 item 1, §7).
    fn draw_keepalive_interval(&mut self) -> Duration {
        let (lo, hi) = self.config.keepalive_interval;
        let d = self.rng.scale(self.keepalive_timeout, lo, hi);
        d.max(Duration::from_millis(1))
    }

    fn start_send_if_idle(&mut self, now: Instant) {
        if !self.timers.is_running(Timer::Send) {
            let d = self.draw_send_timeout();
            self.timers.set(Timer::Send, now + d);
        }
    }

    fn restart_send(&mut self, now: Instant) {
        let d = self.draw_send_timeout();
        self.timers.set(Timer::Send, now + d);
    }

    fn start_keepalive_if_idle(&mut self, now: Instant) {
        if !self.timers.is_running(Timer::Keepalive) {
            self.timers
                .set(Timer::Keepalive, now + self.keepalive_timeout);
            let first = now + self.draw_keepalive_interval();
            self.timers.set(Timer::KeepaliveInterval, first);
        }
    }

    fn stop_keepalive(&mut self) {
        self.timers.stop(Timer::Keepalive);
        self.timers.stop(Timer::KeepaliveInterval);
    }

    fn build_order(&mut self, failed: Option<Pair>, placement: FailedPlacement) -> Vec<Pair> {
        exploration_order(
            &self.locals,
            &self.peers,
            &self.down,
            failed,
            placement,
            &self.config,
            &mut self.rng,
        )
    }

    fn rebuild_order(&mut self) {
        if let Some((failed, placement)) = self.explore.as_ref().map(|e| (e.failed, e.placement)) {
            let order = self.build_order(failed, placement);
            if let Some(e) = self.explore.as_mut() {
                e.rebuild(order);
            }
        }
    }

    /// New local connectivity or new peer locators are worth another try after a
    /// give-up: restart the pacing with a fresh phase.
    fn resume_if_given_up(&mut self, now: Instant) {
        let resume = self.explore.as_ref().is_some_and(|e| e.given_up);
        if resume && self.state == ReapState::Exploring {
            if let Some(e) = self.explore.as_mut() {
                e.given_up = false;
                e.reset_pacing();
            }
            self.send_phase_start(now, None);
        }
    }
}
