//! The enum-indexed timer table (quinn's habit).
//!
//! | timer | runs in | RFC 5534 |
//! |---|---|---|
//! | [`Timer::Send`] | Operational, InboundOk | §4.1 item 2, §6 |
//! | [`Timer::Keepalive`] | Operational | §4.1 item 3, §6.3 |
//! | [`Timer::KeepaliveInterval`] | Operational, while `Keepalive` runs | §4.1 item 5, §6.1 ("a separate timer") |
//! | [`Timer::Probe`] | Exploring, InboundOk | §4.3, §6.5 |
//!
//! Send and Keepalive are mutually exclusive (RFC 5534 §4.1, §6).

use std::time::Instant;

/// The timers of one REAP instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Expiry: sent payload went unanswered for the Send Timeout (§6.4).
    Send = 0,
    /// Expiry: the Keepalive Timeout ended; send one last Keepalive (§6.3).
    Keepalive = 1,
    /// Expiry: a Keepalive Interval passed while we owe the peer return traffic (§4.1).
    KeepaliveInterval = 2,
    /// Expiry: the next probe (re)transmission is due (§6.5).
    Probe = 3,
}

impl Timer {
    /// All timers, in the order in which simultaneous expiries are handled.
    pub const ALL: [Self; 4] = [
        Self::Send,
        Self::Keepalive,
        Self::KeepaliveInterval,
        Self::Probe,
    ];
}

/// Deadlines indexed by [`Timer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 4],
}

impl TimerTable {
    /// Arms `t` to fire at `at`, replacing any earlier deadline.
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.deadlines[t as usize] = Some(at);
    }

    /// Disarms `t`.
    pub fn stop(&mut self, t: Timer) {
        self.deadlines[t as usize] = None;
    }

    /// The deadline of `t`, if armed.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.deadlines[t as usize]
    }

    /// Whether `t` is armed.
    pub fn is_running(&self, t: Timer) -> bool {
        self.deadlines[t as usize].is_some()
    }

    /// The earliest deadline of all armed timers.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The first timer (in [`Timer::ALL`] order) whose deadline is at or before `now`.
    pub fn first_expired(&self, now: Instant) -> Option<Timer> {
        Timer::ALL
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|d| d <= now))
    }
}
