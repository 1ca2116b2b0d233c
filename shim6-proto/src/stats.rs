//! Counters ([`Endpoint::stats`](crate::Endpoint::stats)): one per drop reason, per
//! message type sent and received, and the security-relevant events.

use shim6_wire::shim6::MessageType;

use crate::error::DropReason;

/// Endpoint counters. Cheap to copy; read them through [`Stats::drops`] and the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    drops: [u64; DropReason::ALL.len()],
    sent: [u64; 128],
    received: [u64; 128],
    /// Contexts created (any state).
    pub contexts_created: u64,
    /// Contexts removed (teardown, close, confusion, hold-down expiry).
    pub contexts_removed: u64,
    /// Contexts discarded by the context-confusion check (RFC 5533 §7.6).
    pub confusions: u64,
    /// Context tags drawn that collided with a tag in use and were redrawn.
    pub tag_collisions: u64,
    /// R1bis not sent because of the rate limit.
    pub r1bis_suppressed: u64,
    /// Error messages not sent because of the rate limit.
    pub errors_suppressed: u64,
    /// Outbound packets rewritten onto a non-ULID locator pair.
    pub payload_rewritten: u64,
    /// Outbound packets passed through unchanged.
    pub payload_passed: u64,
    /// Inbound payload-header packets restored to the ULIDs.
    pub payload_restored: u64,
    /// ICMPv6 errors translated back to the ULIDs.
    pub icmp_translated: u64,
    /// ICMPv6 Parameter Problems about a Shim6 field of a payload packet (the payload
    /// header, or the Next Header octet announcing it: the receiving kernel had no taker
    /// for protocol 140), handled by the shim and not passed up (digest §1.13).
    pub icmp_about_shim6: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            drops: [0; DropReason::ALL.len()],
            sent: [0; 128],
            received: [0; 128],
            contexts_created: 0,
            contexts_removed: 0,
            confusions: 0,
            tag_collisions: 0,
            r1bis_suppressed: 0,
            errors_suppressed: 0,
            payload_rewritten: 0,
            payload_passed: 0,
            payload_restored: 0,
            icmp_translated: 0,
            icmp_about_shim6: 0,
        }
    }
}

impl Stats {
    /// Packets dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Every drop counter, in [`DropReason::ALL`] order.
    pub fn drop_table(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.drops[r.index()]))
    }

    /// Total drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Control messages of type `ty` sent.
    pub fn sent(&self, ty: MessageType) -> u64 {
        self.sent[usize::from(u8::from(ty) & 0x7f)]
    }

    /// Control messages of type `ty` received (before any check beyond parsing).
    pub fn received(&self, ty: MessageType) -> u64 {
        self.received[usize::from(u8::from(ty) & 0x7f)]
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    pub(crate) fn count_sent(&mut self, ty: MessageType) {
        self.sent[usize::from(u8::from(ty) & 0x7f)] += 1;
    }

    pub(crate) fn count_received(&mut self, ty: MessageType) {
        self.received[usize::from(u8::from(ty) & 0x7f)] += 1;
    }
}
