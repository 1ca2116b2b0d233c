//! shim6d as a library: the daemon's async shell around the Shim6 protocol core.
//!
//! # What it is
//!
//! Everything of the daemon that does I/O: the TOML configuration, the TUN device and raw
//! sockets of the data plane, the routing plumbing (through `xfrm-sys`), the address
//! monitor, the telnet-compatible control interface and the service loop that owns them.
//! `src/main.rs` is a thin command line around [`service::run`] (mini-redis's shape:
//! `run(config, resources, shutdown)`).
//!
//! # What it is not
//!
//! Not the protocol: handshake, context table, locator verification and REAP live in the
//! sans-IO crates (`shim6-proto`, `reap`, `cga`). The shell reaches them through one
//! documented seam, the [`core::ProtocolCore`] trait, handed to [`service::run`] in
//! [`service::Resources::core`]; [`proto_core::ProtoCore`] is the adapter for
//! `shim6_proto::Endpoint`, built when the configuration names an identity (a
//! `cga-tool generate --format json` file with addresses). Without a core (the
//! parameter file lists no address) the shell still runs for real: packets
//! routed into the TUN leave unchanged through the marked raw socket, protocol-140
//! datagrams are counted and dropped, and the context commands answer
//! `not available: protocol core not running`.
//!
//! # Data flow
//!
//! ```text
//!  app ──► route PEER/128 table T ──► TUN ──► Tun::recv_batch ──► core.outbound
//!      ──► RawSend (SO_MARK) ──► kernel; rule "not fwmark M lookup T" keeps it out of T
//!  wire ──► protocol 140 ──► RawRecv::recv_batch (pktinfo) ──► core.inbound ──► Tun::send
//!  netlink address events ──► Monitor ──► core.local_locators
//!  telnet / shim6d ctl ──► control::Server ──► Request channel ──► service loop
//! ```
//!
//! # Module map
//!
//! | module | what |
//! | --- | --- |
//! | [`config`] | every option, defaults, validation naming file, line and problem |
//! | [`control`] | the line protocol server, command table, `shim6d ctl` client |
//! | [`core`] | **the seam**: [`core::ProtocolCore`], [`core::Outbound`], [`core::Inbound`], [`core::CoreEvent`] |
//! | [`dataplane`] | TUN, raw sockets, routing plumbing, packet buffers and batches, counters |
//! | [`mip`] | MipShim6 (issue 7): the `mip6` home agent or mobile node over a TUN and raw sockets of its own, `[mip6]` settings, the `bindings` / `bul` replies |
//! | [`mptcp`] | the MPTCP userspace path manager: policy engine, driver, `[mptcp]` settings |
//! | [`proto_core`] | the adapter: `shim6_proto::Endpoint` behind the seam, identity loading, commands |
//! | [`mtu`] | TUN MTU, MSS clamp, ICMPv6 Packet Too Big for rewritten flows (hazard 4) |
//! | [`resend`] | the bounded buffer of unacknowledged TCP segments re-sent after a path change (hazard 6) |
//! | [`service`] | [`service::run`]: the loop, reload, shutdown and cleanup |
//! | [`trigger`] | kernel flow accounting (nftables) and the heuristic deciding which flows get a context (hazard 3) |
//! | [`visibility`] | kernel counters of inbound traffic that bypasses the daemon, for REAP (hazard 2) |
//! | `sys` | the crate's only `unsafe`: raw-socket syscalls (`libc`) |
//!
//! # Errors
//!
//! One `thiserror` type per subsystem naming the failing operation
//! ([`config::ConfigError`], [`dataplane::Error`], [`service::Error`],
//! [`control::CommandError`]); nothing on the packet path panics or returns an error for
//! a bad packet: it is dropped and counted by reason ([`dataplane::Stats`]).

pub mod config;
pub mod control;
pub mod core;
pub mod dataplane;
pub mod mip;
pub mod mptcp;
pub mod mtu;
pub mod proto_core;
pub mod resend;
pub mod service;
mod sys;
pub mod trigger;
pub mod visibility;
