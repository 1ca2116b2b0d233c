//! Probe bookkeeping: the probes we sent (to recognise the peer's reports of them) and
//! the probes we received (to report them back) (RFC 5534 §5.2, §6.1).

use std::collections::VecDeque;
use std::time::Instant;

use shim6_wire::shim6::probe::{MAX_PROBE_RECORDS, ProbeRecord};

use crate::locator::Pair;

/// How many of our own probes we remember. A report must name one of them, with its
/// exact nonce, to count as proof that a pair works (RFC 5534 §8: the nonces are the
/// return-routability check). 64 covers several full rounds over a 3×3 locator set and
/// far more than the 10 s LinShim6 kept reports for.
pub const SENT_HISTORY: usize = 64;

/// One probe we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentProbe {
    /// The record as carried in the probe.
    pub record: ProbeRecord,
    /// The pair it went out on.
    pub pair: Pair,
    /// When.
    pub sent_at: Instant,
    /// Whether the peer has reported it received.
    pub reported: bool,
}

/// The probes we sent, oldest first, bounded by [`SENT_HISTORY`].
#[derive(Debug, Clone, Default)]
pub struct SentHistory {
    probes: VecDeque<SentProbe>,
}

impl SentHistory {
    /// Remembers a probe, forgetting the oldest one beyond [`SENT_HISTORY`].
    pub fn push(&mut self, p: SentProbe) {
        if self.probes.len() == SENT_HISTORY {
            self.probes.pop_front();
        }
        self.probes.push_back(p);
    }

    /// The probe a peer's "received" record describes, if it is one of ours: source,
    /// destination, nonce and data must all match.
    pub fn find_mut(&mut self, r: &ProbeRecord) -> Option<&mut SentProbe> {
        self.probes.iter_mut().rev().find(|p| p.record == *r)
    }

    /// Up to `n` most recent probes not yet reported by the peer, newest first, sent no
    /// earlier than `since` (RFC 5534 §6.1: "recent Probe messages that have not yet been
    /// reported as seen by the peer").
    pub fn unreported_recent(&self, n: usize, since: Option<Instant>) -> Vec<ProbeRecord> {
        self.probes
            .iter()
            .rev()
            .filter(|p| !p.reported && since.is_none_or(|s| p.sent_at >= s))
            .take(n)
            .map(|p| p.record)
            .collect()
    }

    /// How many probes are remembered.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }
}

/// Copies of the peer's probes received since we last entered Exploring, in arrival
/// order, the most recent [`MAX_PROBE_RECORDS`] kept (RFC 5534 §5.2 "Precvd").
#[derive(Debug, Clone, Default)]
pub struct ReceivedHistory {
    records: VecDeque<ProbeRecord>,
}

impl ReceivedHistory {
    /// Adds the record that described a received probe (its first "sent" record).
    pub fn push(&mut self, r: ProbeRecord) {
        if self.records.iter().any(|x| *x == r) {
            return; // a duplicated packet adds no information
        }
        if self.records.len() == MAX_PROBE_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(r);
    }

    /// Forgets everything: called on every transition to Exploring (RFC 5534 §5.2).
    pub fn clear(&mut self) {
        self.records.clear();
    }

    /// The records to report, oldest first.
    pub fn to_vec(&self) -> Vec<ProbeRecord> {
        self.records.iter().copied().collect()
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
