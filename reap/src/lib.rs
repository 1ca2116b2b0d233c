//! REAP (RFC 5534): failure detection and locator-pair exploration for one Shim6
//! context, as a sans-IO state machine.
//!
//! # What this crate is, and is not
//!
//! It **is** the decision logic of REAP: the Operational / Exploring / InboundOk states
//! and every transition of RFC 5534 §6, Forced Bidirectional Detection with the Send and
//! Keepalive timers (§4.1), probes with their sent/received reports (§5.2), the choice of
//! the next pair to probe and the pacing of probes (§4.3), and the choice of the new
//! sending pair from the peer's reports. It also holds a deterministic [simulator](sim)
//! used by the tests and by the exploration study (`docs/reap-study.md`).
//!
//! It is **not** a wire codec (Keepalive and Probe *messages* live in `shim6-wire`;
//! [`Transmit`] only says what to send), it does no I/O, it **never reads the clock**
//! (every input carries `now: Instant`) and it never touches OS randomness (a seeded
//! ChaCha20 stream is injected). `reap/clippy.toml` forbids `Instant::now`,
//! `SystemTime::now` and OS RNG constructors.
//!
//! # Using it (what `shim6-proto` does, one [`Reap`] per ESTABLISHED context)
//!
//! | when | call |
//! |---|---|
//! | the context reaches ESTABLISHED | [`Reap::new`] with our locators, the peer's verified locators (with Locator Preferences), the current pair (the ULIDs) and a seed derived from the endpoint RNG |
//! | it sent I2/I2bis/R2/an Update Request | include the Keepalive Timeout option if [`Reap::keepalive_timeout_option`] is `Some` (RFC 5534 §5.3) |
//! | the peer's Keepalive Timeout option arrived | [`Reap::handle_peer_keepalive_timeout`] |
//! | it sends payload, or a control message other than Keepalive/Probe | [`Reap::handle_payload_sent`] |
//! | payload or such a control message arrived | [`Reap::handle_payload_received`] (with the pair it came on, if known) |
//! | a Keepalive / Probe for the context arrived | [`Reap::handle_keepalive`] / [`Reap::handle_probe`] |
//! | the clock reached [`Reap::poll_timeout`] | [`Reap::handle_timeout`] |
//! | locator sets or preferences changed (UR/UA, local addresses) | [`Reap::handle_local_locators`] / [`Reap::handle_peer_locators`] |
//! | interface down, address removed, ICMP error for the current pair | [`Reap::handle_hint`] |
//! | after any of the above | drain [`Reap::poll_transmit`] (encode and send Keepalive/Probe with `CT(peer)`), then [`Reap::poll_event`] (switch payload to the new pair on [`Event::PathChanged`]; tell the MPTCP path manager about [`Event::PathFailed`] / [`Event::PathUsable`]; garbage-collect on [`Event::PeerUnreachable`]) |
//!
//! Time passed in never goes backwards: an earlier instant is treated as the latest one
//! seen (see [`machine`]).
//!
//! # States and timers (RFC 5534 §6; "Send" = Send Timer, "KA" = Keepalive Timer)
//!
//! | input \ state | Operational | Exploring | InboundOk |
//! |---|---|---|---|
//! | payload received (§6.1) | stop Send; start KA | Probe(InboundOk); start Send; → InboundOk | stop Send |
//! | payload sent (§6.2) | start Send; stop KA | — | start Send |
//! | KA timer expires (§6.3) | last Keepalive | — | — |
//! | Send timer expires (§6.4) | Probe(Exploring); → Exploring | — | Probe(Exploring); → Exploring |
//! | probe timer (§6.5) | — | Probe(Exploring), next pair | Probe(InboundOk), next pair; start Send |
//! | Keepalive received (§6.6) | stop Send | Probe(InboundOk); start Send; → InboundOk | stop Send |
//! | Probe Sta=Exploring (§6.7) | Probe(InboundOk); stop KA; restart Send; → InboundOk | Probe(InboundOk); start Send; → InboundOk | Probe(InboundOk)\*; restart Send |
//! | Probe Sta=InboundOk (§6.8) | pair from reports; Probe(Operational)\*; restart Send; stop KA | pair from reports; Probe(Operational); restart Send; → Operational | pair from reports; Probe(Operational); restart Send; → Operational |
//! | Probe Sta=Operational (§6.9) | stop Send; start KA | pair from reports†; stop Send; start KA; → Operational | pair from reports†; stop Send; start KA; → Operational |
//!
//! \* rate limited by [`Config::min_probe_gap`] (same-state reactions only).
//! † our addition: the RFC changes the pair only on §6.8; see [`Reap::handle_probe`].
//! §6.9 sends nothing although its prose says a Probe is "constructed" (protocol digest
//! §7 item 14: answering would ping-pong). While the KA timer runs, a Keepalive goes out
//! every Keepalive Interval (a separate timer, §4.1 item 5). No timer runs in Exploring
//! except the probe pacing.
//!
//! | constant / variable | default | source |
//! |---|---|---|
//! | Send Timeout | 15 s, each start drawn from [13.5 s, 15 s] | §7, §4.1 "randomized" |
//! | Keepalive Timeout | the peer's option, else 15 s | §5.3, §7 |
//! | Keepalive Interval | drawn from [1/3, 1/2] of the Keepalive Timeout | §4.1, §7 |
//! | Initial Probe Timeout | 0.5 s, ±10 % jitter | §4.3, §7 |
//! | Number of Initial Probes | 4 | §4.3, §7 |
//! | back-off | ×2 per probe after the initial ones | §4.3 ("typically doubles") |
//! | Max Probe Timeout | 60 s | §4.3 |
//! | InboundOk initial rate | one probe per candidate at 0.5 s before backing off | ours, [`Config::inbound_ok_full_round`] |
//! | give-up | 300 s and one probe per candidate at the cap → [`Event::PeerUnreachable`] | ours, §4.3 "hint" |
//!
//! # Where we deviate from the RFC (each documented at its code)
//!
//! - Pairs are learned from the reports of every received probe, not only Sta = InboundOk
//!   (§6.8); a pair is adopted only when a report proves it, and a proven current pair is
//!   kept ([`Reap::handle_probe`]).
//! - Received-probe records survive InboundOk → Exploring within one exploration (§5.2
//!   resets them on every transition to Exploring); they reset when a new exploration
//!   starts.
//! - Same-state reaction probes are rate limited ([`Config::min_probe_gap`]); a late
//!   Exploring probe that the peer has already superseded is reported but not acted on
//!   ([`Stats::stale_probes`]).
//! - InboundOk probes a full round of candidates at the initial rate
//!   ([`Config::inbound_ok_full_round`]); the optional [`Config::burst`] is not sequential.
//! - §6.9 sends nothing (protocol digest §7 item 14); a give-up ends probing
//!   ([`Config::give_up_at_cap`]).
//!
//! # Exploration order
//!
//! Candidates are our usable locators × the peer's (RFC 5534 §3.1), ordered by the
//! RFC 3484 label rule, local priority, the peer's Locator Preferences (priority,
//! TRANSIENT, weight; BROKEN excluded or last), then **orthogonal-first**: pairs sharing
//! no locator with the failed pair, then pairs sharing one, the failed pair last. When
//! the peer is heard on a pair, the reverse of that pair is tried next (RFC 5534 App. A
//! example 5 answers so). With [`Config::burst`] > 1, each phase opens with a burst of
//! probes on distinct pairs; the first reported wins.
//!
//! # Layout
//!
//! | module | contents |
//! |---|---|
//! | [`machine`] | [`Reap`], the state machine, its [`Error`] and [`Stats`] |
//! | [`config`] | [`Config`] and the RFC 5534 §7 constants |
//! | [`io`] | [`ProbeIn`], [`Transmit`], [`Event`], [`Hint`] |
//! | [`locator`] | [`Pair`], [`Locator`], [`Preference`] and the candidate order |
//! | [`timer`] | the timer table |
//! | [`records`] | sent/received probe bookkeeping |
//! | [`rng`] | the seeded ChaCha20 wrapper |
//! | [`sim`] | the deterministic two-host simulator and the exploration study (test/study tool) |

pub mod config;
mod explore;
pub mod io;
pub mod locator;
pub mod machine;
pub mod records;
pub mod rng;
pub mod sim;
#[cfg(test)]
mod testutil;
pub mod timer;

pub use config::Config;
pub use io::{Event, FailureCause, Hint, ProbeIn, ProbeOut, Transmit};
pub use locator::{Locator, Pair, Preference};
pub use machine::{Error, Reap, Stats};
pub use shim6_wire::shim6::probe::{ProbeRecord, ReapState};
pub use timer::Timer;
