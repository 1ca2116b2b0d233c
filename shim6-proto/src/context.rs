//! One Shim6 context: its state (RFC 5533 §6.2, App. B), the data it holds (§6.1,
//! digest §1.8) and its timers.

use core::fmt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use shim6_wire::shim6::ContextTag;

use crate::locators::PeerLocator;

/// Context states, spelled as RFC 5533 §6.2 spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No context (never stored: a context leaving every other state is removed).
    Idle,
    /// I1 sent, waiting for R1 (or R2 when I1s cross).
    I1Sent,
    /// I2 sent, waiting for R2.
    I2Sent,
    /// The peer lost its state; I2bis sent, waiting for R2.
    I2bisSent,
    /// Usable.
    Established,
    /// Establishment gave up; negative cache for `NO_R1_HOLDDOWN_TIME`.
    EFailed,
    /// ICMP "unrecognized Next Header" for our I1; negative cache for
    /// `ICMP_HOLDDOWN_TIME`.
    NoSupport,
}

impl State {
    /// States in which CT(peer) and Ls(peer) exist and payload is rewritten
    /// (RFC 5533 §6.1, digest §1.8).
    pub fn sends_payload(self) -> bool {
        matches!(self, Self::Established | Self::I2bisSent)
    }

    /// The negative-cache states, handled as IDLE for every received packet
    /// (RFC 5533 App. B).
    pub fn is_holddown(self) -> bool {
        matches!(self, Self::EFailed | Self::NoSupport)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "IDLE",
            Self::I1Sent => "I1-SENT",
            Self::I2Sent => "I2-SENT",
            Self::I2bisSent => "I2BIS-SENT",
            Self::Established => "ESTABLISHED",
            Self::EFailed => "E-FAILED",
            Self::NoSupport => "NO-SUPPORT",
        })
    }
}

/// The ULID pair and FII that identify a context (RFC 5533 §7.2, digest §1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContextKey {
    /// ULID(local).
    pub ulid_local: Ipv6Addr,
    /// ULID(peer).
    pub ulid_peer: Ipv6Addr,
    /// Forked Instance Identifier, 0 for the default context (RFC 5533 §5.15.7).
    pub fii: u32,
}

/// An outstanding Update Request (RFC 5533 §10.2, §10.3).
#[derive(Debug, Clone)]
pub(crate) struct PendingUpdate {
    pub nonce: u32,
    pub retries: u32,
    pub deadline: Instant,
}

/// What an I2 / I2bis retransmission needs (RFC 5533 §7.11, §7.18).
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    pub responder_nonce: u32,
    pub validator: Vec<u8>,
    /// Packet Context Tag of the R1bis (I2bis only).
    pub packet_tag: Option<ContextTag>,
    /// The pair the I2bis goes out on, (local, peer): the R1bis's, reversed (§7.18).
    pub pair: Option<(Ipv6Addr, Ipv6Addr)>,
}

/// A context's data. Public read access goes through [`ContextInfo`].
#[derive(Debug)]
pub(crate) struct Context {
    pub state: State,
    pub key: ContextKey,
    pub ct_local: ContextTag,
    pub ct_peer: Option<ContextTag>,
    pub init_nonce: u32,
    /// Current pair: Lp(local), Lp(peer).
    pub lp_local: Ipv6Addr,
    pub lp_peer: Ipv6Addr,
    /// Ls(peer), verified.
    pub peer_locators: Vec<PeerLocator>,
    pub peer_generation: Option<u32>,
    pub peer_pds: Option<Vec<u8>>,
    /// Whether the I1 carried a ULID Pair option (then the I2 must too, §7.11).
    pub ulid_option: bool,
    pub handshake: Option<Handshake>,
    pub retries: u32,
    /// Retransmission or hold-down deadline.
    pub deadline: Option<Instant>,
    pub update: Option<PendingUpdate>,
    pub reap: Option<reap::Reap>,
    pub peer_keepalive_timeout: Option<u16>,
    pub last_activity: Instant,
}

impl Context {
    pub fn new(state: State, key: ContextKey, ct_local: ContextTag, now: Instant) -> Self {
        Self {
            state,
            key,
            ct_local,
            ct_peer: None,
            init_nonce: 0,
            lp_local: key.ulid_local,
            lp_peer: key.ulid_peer,
            peer_locators: vec![PeerLocator {
                addr: key.ulid_peer,
                method: None,
                pref: reap::Preference::default(),
            }],
            peer_generation: None,
            peer_pds: None,
            ulid_option: false,
            handshake: None,
            retries: 0,
            deadline: None,
            update: None,
            reap: None,
            peer_keepalive_timeout: None,
            last_activity: now,
        }
    }

    /// Whether `a` is in Ls(peer) (verified, or the ULID itself).
    pub fn peer_has(&self, a: &Ipv6Addr) -> bool {
        *a == self.key.ulid_peer || self.peer_locators.iter().any(|l| l.addr == *a)
    }

    /// The earliest instant this context needs `handle_timeout`.
    pub fn next_timeout(&self, teardown_idle: Duration) -> Option<Instant> {
        let mut t = self.deadline;
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        min(self.update.as_ref().map(|u| u.deadline));
        min(self.reap.as_ref().and_then(reap::Reap::poll_timeout));
        if self.state == State::Established {
            min(Some(self.last_activity + teardown_idle));
        }
        t
    }

    pub fn info(&self) -> ContextInfo {
        ContextInfo {
            state: self.state,
            key: self.key,
            ct_local: self.ct_local,
            ct_peer: self.ct_peer,
            current_pair: reap::Pair {
                local: self.lp_local,
                remote: self.lp_peer,
            },
            peer_locators: self.peer_locators.clone(),
            peer_generation: self.peer_generation,
            reap_state: self.reap.as_ref().map(reap::Reap::state),
            update_pending: self.update.is_some(),
            peer_keepalive_timeout: self.peer_keepalive_timeout,
        }
    }
}

/// A snapshot of a context, for the getters ([`Endpoint::context`](crate::Endpoint::context)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextInfo {
    /// The state.
    pub state: State,
    /// ULIDs and FII.
    pub key: ContextKey,
    /// CT(local): the tag the peer puts in what it sends us.
    pub ct_local: ContextTag,
    /// CT(peer), once known.
    pub ct_peer: Option<ContextTag>,
    /// The locator pair payload uses (Lp(local), Lp(peer)).
    pub current_pair: reap::Pair,
    /// Ls(peer), verified, with the peer's preferences.
    pub peer_locators: Vec<PeerLocator>,
    /// Generation of the last verified peer Locator List.
    pub peer_generation: Option<u32>,
    /// REAP state, when REAP runs.
    pub reap_state: Option<reap::ReapState>,
    /// Whether an Update Request awaits its acknowledgement.
    pub update_pending: bool,
    /// The peer's Keepalive Timeout option, if it sent one (RFC 5534 §5.3).
    pub peer_keepalive_timeout: Option<u16>,
}

/// Retransmission timeout number `retries` (0 = first): the nominal value doubled per
/// retry, capped, then drawn uniformly from [0.5, 1.5] × that (RFC 5533 §7.8, §7.11,
/// §10.2; digest §1.15), and capped again.
pub(crate) fn backoff(
    rng: &mut impl RngCore,
    base: Duration,
    retries: u32,
    cap: Option<Duration>,
) -> Duration {
    let nominal = base.saturating_mul(1u32 << retries.min(16));
    let nominal = cap.map_or(nominal, |c| nominal.min(c));
    let r = 0.5 + f64::from(rng.next_u32()) / f64::from(u32::MAX);
    let t = nominal.mul_f64(r);
    cap.map_or(t, |c| t.min(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn state_display_uses_rfc_spelling() {
        assert_eq!(State::I2bisSent.to_string(), "I2BIS-SENT");
        assert_eq!(State::EFailed.to_string(), "E-FAILED");
        assert_eq!(State::NoSupport.to_string(), "NO-SUPPORT");
    }

    #[test]
    fn backoff_doubles_randomises_and_caps() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        for retries in 0..8 {
            let t = backoff(&mut rng, Duration::from_secs(4), retries, None);
            let nominal = 4.0 * f64::from(1u32 << retries);
            assert!(t.as_secs_f64() >= 0.5 * nominal && t.as_secs_f64() <= 1.5 * nominal);
        }
        let cap = Duration::from_secs(120);
        for retries in 0..40 {
            assert!(backoff(&mut rng, Duration::from_secs(4), retries, Some(cap)) <= cap);
        }
    }
}
