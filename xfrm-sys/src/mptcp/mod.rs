//! The kernel's MPTCP **userspace path manager** (generic netlink family `mptcp_pm`),
//! typed and async.
//!
//! # What it gives
//!
//! - [`Pm`]: the commands `SUBFLOW_CREATE`, `SUBFLOW_DESTROY`, ANNOUNCE, REMOVE, `SET_FLAGS`
//!   (backup), `GET_ADDR` (dump with token: the connection's local address list) and
//!   `GET_LIMITS`. A refusal is an [`Error::Kernel`](crate::Error::Kernel) carrying the
//!   kernel's text; [`Refusal::of`] names the known ones (`"invalid token"`, `"did not
//!   match address and id"`, `"subflow not found"`, ...).
//! - [`EventStream`]: the `mptcp_pm_events` group as typed [`Event`]s (CREATED,
//!   ESTABLISHED, CLOSED, ANNOUNCED, REMOVED, `SUB_ESTABLISHED`, `SUB_CLOSED`, `SUB_PRIORITY`,
//!   `LISTENER_CREATED`, `LISTENER_CLOSED`; unknown attributes kept as [`RawAttr`]), a view
//!   of connections and subflows, and resynchronisation from `sock_diag` ([`diag`]) when
//!   events are lost, ending in [`Event::Resynced`] as the rtnetlink
//!   [`Monitor`](crate::Monitor) does for addresses.
//! - [`AddrIds`] / [`Manager`]: the per-connection address-ID book the kernel requires
//!   and the path-failure recipe as one method ([`Manager::detach_path`]).
//! - [`crate::genl`]: the generic netlink plumbing underneath (family resolution through
//!   `nlctrl`, requests with extended ACKs).
//!
//! The constants are hard-coded from the kernel's `mptcp_pm.yaml` / `mptcp_pm.h`, not
//! generated from the system headers (Debian's 6.1 headers lack half of them), and were
//! checked against the running 6.18 kernel (`/work/shared/docs/mptcp-pm.md` §2).
//!
//! Everything is per network namespace: tokens, commands and events exist only in the
//! namespace of the connection, and the commands and the event group need
//! `CAP_NET_ADMIN` there. Connections use this path manager only if
//! `net.mptcp.pm_type=1` (`path_manager=userspace`) was set in their namespace when they
//! were created.
//!
//! # The byte-order trap
//!
//! Ports are **host** order inside command address nests (`MPTCP_PM_ADDR_ATTR_PORT`:
//! the kernel applies `htons(nla_get_u16())`, whatever the YAML says) but **network**
//! order in events (`MPTCP_ATTR_SPORT` / `DPORT`). A port sent in network order makes
//! `SUBFLOW_DESTROY` miss (`ESRCH "subflow not found"`). This module takes and returns
//! plain [`SocketAddr`](std::net::SocketAddr)s and converts at the wire.
//!
//! # Address IDs
//!
//! - Always pass a non-zero local ID to `SUBFLOW_CREATE` ([`LocalAddr::id`] is a
//!   `NonZeroU8`): without one the kernel tags the subflow 0, the initial subflow's ID,
//!   and the peer sees two subflows with `rem_id 0` (pitfall 1).
//! - A connection pins each local (address, port) to its ID until the address is
//!   removed (REMOVE) or its subflow destroyed with `SUBFLOW_DESTROY`, even after the subflow died
//!   on its own: re-using the address with another ID is `"did not match address and
//!   id"` (pitfall 2). [`AddrIds`] mirrors that map per token (IDs 1..=255, lowest free
//!   first), [`Manager`] keeps it in step with the commands and CLOSED, and
//!   [`Manager::verify`] checks it against the kernel's `GET_ADDR` dump.
//!
//! # The failure recipe
//!
//! The kernel emits nothing when a path goes silent; an idle subflow never times out.
//! When REAP declares a pair dead, [`Manager::detach_path`] first REMOVEs the local
//! address's ID (`RM_ADDR` goes over a surviving subflow, and the **peer** closes its half
//! at once), then runs `SUBFLOW_DESTROY` on the
//! 4-tuple (the **local** half closes at once; its
//! FIN is lost on the dead path, which is why the peer needed the `RM_ADDR`). In the
//! other order `SUBFLOW_DESTROY` would already have freed the ID and REMOVE would fail
//! with `"address with id N not found"`, leaving the peer's half up. REMOVE acts on a
//! local *address*: if that address still serves another working pair, only
//! `SUBFLOW_DESTROY` runs and the peer's half lingers until it times out.
//!
//! # Example
//!
//! ```no_run
//! use xfrm_sys::mptcp::{Event, EventOptions, Manager, Pm};
//!
//! # async fn f() -> xfrm_sys::Result<()> {
//! let pm = Pm::open().await?;
//! let mut events = pm.events(EventOptions::default()).await?;
//! let mut manager = Manager::new(pm);
//! let second: std::net::IpAddr = "2001:db8:2::1".parse().unwrap();
//! loop {
//!     let event = events.next().await?;
//!     manager.observe(&event);
//!     if let Event::Established(c) = &event
//!         && !c.server_side
//!     {
//!         // Join the peer's connection port from our second locator.
//!         let peer = std::net::SocketAddr::new("2001:db8:2::2".parse().unwrap(), c.remote.port());
//!         manager.create_subflow(c.token, second, peer, false).await?;
//!     }
//! }
//! # }
//! ```

pub mod diag;
mod events;
mod ids;
mod pm;
mod wire;

pub use events::{ConnectionState, DEFAULT_RECEIVE_BUFFER, EventOptions, EventStats, EventStream};
pub use ids::{AddrIds, ConnIds, IdMismatch, IdsExhausted};
pub use pm::{Detached, Manager, Pm, Refusal};
pub use wire::{
    AddrEntry, AddrFlags, Announcement, Connection, EVENTS_GROUP, Event, FAMILY_NAME, Limits,
    Listener, LocalAddr, RawAttr, Subflow, Token,
};

#[cfg(test)]
mod tests;
