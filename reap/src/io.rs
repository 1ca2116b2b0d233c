//! What goes into and comes out of a [`Reap`](crate::Reap) instance besides time:
//! received probes, transmissions to make, events to report and outside hints.
//!
//! REAP does no wire encoding: a [`Transmit`] says *what* to send and on which pair;
//! the Shim6 layer builds the Keepalive (RFC 5534 §5.1) or Probe (RFC 5534 §5.2)
//! message with the peer's context tag and the records given here.

use core::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use shim6_wire::shim6::probe::{ProbeRecord, ReapState};

use crate::locator::Pair;

/// A Probe message as received, already parsed and validated by the Shim6 layer
/// (RFC 5534 §5.2: the context tag matched an ESTABLISHED context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeIn<'a> {
    /// The sender's state after sending (the Sta field).
    pub state: ReapState,
    /// The "probe sent" records; the first one describes this probe (Psent ≥ 1).
    pub sent: &'a [ProbeRecord],
    /// The "probe received" records: our probes the peer has heard since it last
    /// entered Exploring.
    pub received: &'a [ProbeRecord],
}

/// A Probe message to send (RFC 5534 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOut {
    /// Where to send it: source `pair.local`, destination `pair.remote`.
    pub pair: Pair,
    /// The Sta field: our state after sending this probe (RFC 5534 §6.1).
    pub state: ReapState,
    /// The "probe sent" records, this probe first (Psent = `sent.len()`, 1 ..= 15).
    pub sent: Vec<ProbeRecord>,
    /// The "probe received" records (Precvd = `received.len()`, 0 ..= 15), in the order
    /// we received them, oldest first.
    pub received: Vec<ProbeRecord>,
}

impl ProbeOut {
    /// The record that describes this very probe (nonce, data, addresses).
    ///
    /// # Panics
    /// If `sent` is empty, which a `ProbeOut` produced by [`Reap`](crate::Reap) never is.
    pub fn this_probe(&self) -> &ProbeRecord {
        // `sent` always starts with this probe's own record (built in `Reap::send_probe`).
        &self.sent[0]
    }
}

/// Something to transmit, pulled with [`Reap::poll_transmit`](crate::Reap::poll_transmit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A Keepalive (RFC 5534 §5.1), always on the current pair (RFC 5534 §6.1, §6.3).
    Keepalive {
        /// The current pair.
        pair: Pair,
    },
    /// A Probe (RFC 5534 §5.2).
    Probe(ProbeOut),
}

impl Transmit {
    /// The pair the message goes out on.
    pub fn pair(&self) -> Pair {
        match self {
            Self::Keepalive { pair } => *pair,
            Self::Probe(p) => p.pair,
        }
    }
}

/// Why a pair is suspected to have failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// Our Send Timer expired: payload went unanswered (RFC 5534 §4.1 item 6, §6.4).
    SendTimeout,
    /// The peer probes with Sta = Exploring: it is not hearing from us (RFC 5534 §6.7).
    PeerExploring,
    /// A trusted local signal: our locator went down or was removed (RFC 5534 §3.2).
    LocalLocatorDown,
    /// The peer's locator disappeared from, or was flagged BROKEN in, its authenticated
    /// locator set (RFC 5533 §10, RFC 5534 §4.1).
    PeerLocatorGone,
    /// An ICMP error for the current pair; it could be forged, so the current pair is
    /// probed first (RFC 5534 §3.3, §8).
    Icmp,
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SendTimeout => "send timeout",
            Self::PeerExploring => "peer exploring",
            Self::LocalLocatorDown => "local locator down",
            Self::PeerLocatorGone => "peer locator gone",
            Self::Icmp => "ICMP hint",
        })
    }
}

/// Events for the Shim6 layer and, through it, the MPTCP path manager; pulled with
/// [`Reap::poll_event`](crate::Reap::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The REAP state changed (RFC 5534 §6).
    StateChanged {
        /// Previous state.
        from: ReapState,
        /// New state.
        to: ReapState,
    },
    /// "Path failed": the current pair is suspected broken and an exploration started.
    /// Payload keeps using it until another pair is confirmed (RFC 5534 §6.9).
    PathFailed {
        /// The suspected pair (our current sending pair).
        pair: Pair,
        /// What raised the suspicion.
        cause: FailureCause,
    },
    /// "Path usable again": one of our probes on this pair was reported received by the
    /// peer, which proves the pair works from us to the peer (RFC 5534 §5.2, §8
    /// return routability). Reported once per pair per exploration.
    PathUsable {
        /// The proven pair.
        pair: Pair,
    },
    /// "Path changed": our current sending pair changed (RFC 5534 §4.2: the ULP SHOULD be
    /// informed). The Shim6 layer sends payload on `to` from now on.
    PathChanged {
        /// Previous current pair.
        from: Pair,
        /// New current pair.
        to: Pair,
    },
    /// The exploration ended: we are Operational again after `took`, measured from the
    /// start of the exploration.
    Recovered {
        /// The current pair we ended on.
        pair: Pair,
        /// Time since the exploration began.
        took: Duration,
    },
    /// Give-up: we probed at the Max Probe Timeout for
    /// [`Config::give_up_at_cap`](crate::Config::give_up_at_cap) without hearing from the
    /// peer; probing has stopped. The Shim6 layer should garbage-collect the context
    /// (RFC 5534 §4.3). Anything heard from the peer later resumes REAP normally.
    PeerUnreachable,
}

/// Signals from outside REAP that may start an exploration early
/// ([`Reap::handle_hint`](crate::Reap::handle_hint)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Our address stopped being locally operational: interface down, address removed,
    /// default router unreachable (RFC 5534 §3.2). Trusted: pairs using it leave the
    /// candidate set, and if the current pair uses it, exploration starts at once.
    LocalAddressDown(Ipv6Addr),
    /// Our address is locally operational again; pairs using it are candidates again,
    /// and a given-up exploration resumes.
    LocalAddressUp(Ipv6Addr),
    /// An ICMP error (e.g. Destination Unreachable) about packets sent on `pair`. It may
    /// be forged, so it only triggers a check that probes this pair first; it never moves
    /// traffic by itself (RFC 5534 §3.3, §8). Rate limited by
    /// [`Config::icmp_holddown`](crate::Config::icmp_holddown).
    Icmp(Pair),
}
