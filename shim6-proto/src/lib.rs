//! The sans-IO Shim6 endpoint (RFC 5533), with REAP (RFC 5534) on every context.
//!
//! # What this crate is, and is not
//!
//! It **is** everything RFC 5533 asks of a host, as a deterministic state machine: the
//! context table, the I1/R1/I2/R2 handshake with a stateless responder, R1bis/I2bis
//! recovery, Update Request/Acknowledgement, Error messages, locator verification by HBA
//! or CGA (through the `cga` library), the payload rewriting decisions of the data plane,
//! and one [`reap::Reap`] per established context. It holds a network [`sim`]ulator for
//! tests and benchmarks.
//!
//! It does **no I/O and never reads the clock**: every input carries `now`, randomness
//! comes from a ChaCha20 generator seeded by [`Config::rng_seed`], and outputs are polled.
//! `shim6-proto/clippy.toml` forbids `Instant::now`, `SystemTime::now` and OS RNGs.
//!
//! # Data flow (the daemon is the shell around [`Endpoint`])
//!
//! ```text
//!        app socket (ULID_A -> ULID_B)                  app socket (ULID_A <- ULID_B)
//!                 |                                              ^
//!            TUN "shim6"                                    TUN "shim6"
//!                 |                                              |
//!   Endpoint::handle_outbound(now, buf, range)     Inbound::DeliverToTun(range)
//!     |-- PassThrough: ULIDs are the locators          ^ ULIDs restored, header removed
//!     |-- Send(Sent): src/dst := Lp, +8-octet          |
//!     |   payload header with CT(peer)         Endpoint::handle_inbound(now, buf, range)
//!     '-- Drop(reason)                                 ^        |-- Consumed (control)
//!                 |                                    |        '-- Drop(reason)
//!        raw IPv6 socket (fwmark)               raw socket, protocol 140 / ICMPv6
//!                 |                                    ^
//!                 '---------------> network -----------'
//!
//!   poll_transmit(): I1 R1 I2 R2 R1bis I2bis UR UA Error Keepalive Probe  -> raw socket
//!   poll_event():    Established / Failed / PathChanged / PathFailed / ... -> daemon, MPTCP PM
//!   poll_timeout():  the next instant handle_timeout(now) is due
//! ```
//!
//! Packets that need no rewriting reach the application without passing through the
//! daemon; the shell reports them with [`Endpoint::note_peer_activity`] so REAP knows
//! the path works (architecture hazard 2).
//!
//! # The contract (quinn's, see [`Endpoint`])
//!
//! A. getters `contexts()`, `stats()`, `context(tag)`; B. handlers `handle_outbound`,
//! `handle_inbound`, `handle_timeout`, `handle_local_locators`; C. commands
//! `establish`, `fork`, `close`, `set_policy`; D. pollers `poll_transmit`,
//! `poll_timeout`, `poll_event`. After every B or C call the caller drains D in that
//! order. Time never goes backwards.
//!
//! # What the shell feeds in, and does with each output
//!
//! | input | call |
//! |---|---|
//! | a packet read from the TUN (ULIDs as addresses), placed at `buf[8..]` or later | [`Endpoint::handle_outbound`] (or [`Endpoint::handle_outbound_fii`] for a forked context) |
//! | a packet from the raw protocol-140 socket (rebuild the 40-octet IPv6 header: src from `recvfrom`, dst from `IPV6_PKTINFO`, Next Header 140) | [`Endpoint::handle_inbound`] |
//! | an `ICMPv6` error (Parameter Problem, Destination Unreachable, Packet Too Big, Time Exceeded) whose quote carries Next Header 140 | [`Endpoint::handle_inbound`] |
//! | traffic from a peer that reached an application unshimmed (kernel counter, socket filter) | [`Endpoint::note_peer_activity`] |
//! | the clock passed [`Endpoint::poll_timeout`] | [`Endpoint::handle_timeout`] |
//! | local addresses changed (netlink) | [`Endpoint::handle_local_locators`]; interface down: [`Endpoint::handle_hint`] |
//! | the trigger decided a flow deserves protection | [`Endpoint::establish`] |
//!
//! | output | what to do |
//! |---|---|
//! | [`Outbound::Send`] | write `buf[sent.packet]` to the `IPPROTO_RAW` socket (fwmark so it bypasses the TUN) |
//! | [`Outbound::PassThrough`] | write the packet unchanged to the raw socket |
//! | [`Inbound::DeliverToTun`] | write `buf[range]` to the TUN |
//! | [`Transmit`] from [`Endpoint::poll_transmit`] | write `packet` to the `IPPROTO_RAW` socket |
//! | [`Event::Established`] | route the peer's ULID into the TUN (architecture hazard 3) |
//! | [`Event::PathChanged`] / [`Event::PathFailed`] / [`Event::PathUsable`] | TCP kick (hazard 6), MPTCP path manager |
//! | [`Event::Failed`], [`Event::Closed`] | take the peer's route out of the TUN |
//!
//! # Example: two endpoints, the shell's loop by hand
//!
//! ```
//! use std::time::{Duration, Instant};
//! use shim6_proto::{Config, Endpoint, Event, Inbound, State, sim::identity};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let t0 = Instant::now(); // the shell's clock; the endpoint never reads one itself
//! let make = |site: u16, seed: u8| {
//!     let id = identity::hba(site, 2, seed); // HBA set, Sec 0: ULID + 2 locators
//!     let locs: Vec<_> = id.locators.iter().map(|a| reap::Locator::new(*a)).collect();
//!     let ulid = id.ulids[0].address;
//!     let cfg = Config { rng_seed: Some([seed; 32]), ..Config::default() };
//!     (Endpoint::new(cfg, id.ulids, &locs, t0).unwrap(), ulid)
//! };
//! let (mut a, ua) = make(1, 1);
//! let (mut b, ub) = make(2, 2);
//!
//! let tag = a.establish(t0, ua, ub)?; // I1 queued
//! // The shell: after every call, drain poll_transmit() to the raw socket (here: the
//! // peer), re-read poll_timeout(), drain poll_event().
//! for _ in 0..4 {
//!     while let Some(t) = a.poll_transmit() {
//!         let mut p = t.packet;
//!         let n = p.len();
//!         assert_eq!(b.handle_inbound(t0, &mut p, 0..n), Inbound::Consumed);
//!     }
//!     while let Some(t) = b.poll_transmit() {
//!         let mut p = t.packet;
//!         let n = p.len();
//!         assert_eq!(a.handle_inbound(t0, &mut p, 0..n), Inbound::Consumed);
//!     }
//! }
//! assert_eq!(a.context(tag).unwrap().state, State::Established);
//! assert!(matches!(a.poll_event(), Some(Event::Established { .. })));
//! assert!(a.poll_timeout().is_some()); // REAP and teardown timers
//! # let _ = Duration::ZERO;
//! # Ok::<(), shim6_proto::Error>(())
//! ```
//!
//! # Errors
//!
//! [`Error`] (`#[non_exhaustive]`): `Malformed`, `PeerMisbehaved`, `PeerIncompatible`,
//! `ApiMisuse`. Silent drops carry a [`DropReason`], each counted in [`Stats`].
//!
//! # Layout
//!
//! | module | contents | specification |
//! |---|---|---|
//! | [`endpoint`] | [`Endpoint`], [`Transmit`], [`Outbound`], [`Inbound`], [`Event`], dispatcher, indexes, timers, rate limits | RFC 5533 §12.3, digest §1.12 |
//! | [`context`] | [`State`], [`ContextInfo`], retransmission back-off | RFC 5533 §6, App. B, §7.8 |
//! | [`handshake`] | I1 / R1 / I2 / R2, stateless responder, locator option checks | RFC 5533 §7.5–§7.16 |
//! | [`recovery`] | R1bis / I2bis, retransmission and fall-back timers, teardown | RFC 5533 §7.17–§7.20 |
//! | [`update`] | Update Request / Acknowledgement | RFC 5533 §10 |
//! | [`validator`] | rotating-secret HMAC validators and the nonce counter | RFC 5533 §7.10.1, §7.17.1 |
//! | [`locators`] | our advertised lists and signatures; peer list verification | RFC 5533 §5.15, RFC 5535 §7.2, RFC 3972 §5–§6 |
//! | [`datapath`] | payload rewriting, restoring, ICMP translation, NO-SUPPORT | RFC 5533 §5.1, §12 |
//! | [`reap_glue`] | one REAP per context, Keepalive / Probe encoding | RFC 5534 |
//! | [`stats`] | counters, one per drop reason | |
//! | [`config`] | [`Config`] and the RFC 5533 §14 constants | RFC 5533 §14 |
//! | [`error`] | [`Error`], [`DropReason`] | style.md |
//! | [`sim`] | the in-process network simulator | |
//!
//! # Readings where the RFC contradicts itself (protocol digest §7)
//!
//! P = 1 is payload (§7.1); verification methods 1 = HBA, 2 = CGA, or the IANA numbering with
//! [`Config::iana_verification_methods`] (§7.2); random
//! generation numbers, compared for equality only (§7.3); UA in I2-SENT resends I2 (§7.4);
//! validator inputs of §7.10.1 without the Initiator Nonce (§7.5); ICMP in I1-SENT →
//! NO-SUPPORT (§7.6); R1bis discarded in I2BIS-SENT (§7.7); Error 1 always sent, rate
//! limited, and Pointers counted from the IPv6 header (§7.10, §7.11); R1bis rate limited
//! (§7.12); the locator check on I1 in ESTABLISHED (§7.13); Keepalive Timeout accepted in
//! any message (§7.15); UR listing a subset of an HBA set accepted (§7.22).
//!
//! # Where we deviate from the RFC (each documented at its code)
//!
//! - An R1bis is matched to the context whose CT(peer) it names when its addresses are
//!   *any* verified pair of that context, not only the current one (§7.18): during an
//!   exploration the R1bis answers a REAP probe on another pair. The I2bis goes back on
//!   that pair and the R2 is accepted there ([`recovery`]).
//! - An Update Request whose source is not in Ls(peer) but in the request's own, verified
//!   list is accepted (§10.4 would answer R1bis): a host that lost every old locator can
//!   still update ([`update`]).
//! - A whole message is refused when one listed locator fails verification (the RFC
//!   only forbids *using* it): forged lists leave no state at all.
//! - Pure HBA locators not derived from the ULID's set, and locators of a ULID without
//!   a key, are not advertised for that ULID (they could not verify).
//!
//! # Fuzzing
//!
//! There is no test seam in this crate: the validator, PDS, HBA and signature checks run
//! in every build. Under `cfg(fuzzing)` only `shim6-wire` skips control checksums.

pub mod config;
pub mod context;
pub mod datapath;
pub mod endpoint;
pub mod error;
pub mod handshake;
pub mod locators;
pub mod reap_glue;
pub mod recovery;
pub mod sim;
pub mod stats;
pub mod update;
pub mod validator;

#[cfg(test)]
mod tests;

pub use config::Config;
pub use context::{ContextInfo, ContextKey, State};
pub use endpoint::{CloseReason, Endpoint, Event, Inbound, Outbound, Policy, Sent, Transmit};
pub use error::{ApiMisuse, DropReason, Error, PeerIncompatible, PeerMisbehaved};
pub use locators::LocalUlid;
pub use stats::Stats;
