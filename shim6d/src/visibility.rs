//! Inbound visibility (architecture hazard 2): telling REAP that packets arrived from a
//! peer when they never crossed the daemon.
//!
//! While a context's current locator pair equals its ULIDs, the peer's packets carry no
//! payload extension header (RFC 5533 §5.1 / §12): the kernel delivers them straight to
//! the application, and shim6d never sees them. REAP's Send timer (RFC 5534 §5.1) must
//! still learn that something arrived, or it declares a working path failed after Send
//! Timeout. This module counts those packets **in the kernel** and tells the loop which
//! ULID pairs saw traffic since the last look.
//!
//! # Mechanism: one nftables set with per-element counters
//!
//! ```text
//! table inet shim6d_reap {
//!     set pairs { type ipv6_addr . ipv6_addr; counter; }   # peer ULID . local ULID
//!     chain input {
//!         type filter hook input priority -150; policy accept;
//!         ip6 saddr . ip6 daddr @pairs                      # the lookup bumps the counter
//!     }
//! }
//! ```
//!
//! One hash lookup per inbound IPv6 packet, whatever the number of contexts; packets of
//! other peers do not match and cost only that lookup. [`Visibility::poll`] lists the set
//! (`nft -j -nn list set`) and returns the pairs whose packet counter grew.
//!
//! Why this and not the alternatives (measured in `docs/bench/daemon-aux.md`):
//! - **NFLOG** copies every matching packet (or a prefix) to userspace: a per-packet
//!   wake-up of the daemon for exactly the traffic we wanted to keep out of it.
//! - **A socket filter** (a packet socket with classic BPF per peer) sees packets
//!   before the firewall, needs one filter program rebuilt per context change, and its
//!   cost is also per packet of every protocol on the interface.
//! - **conntrack accounting** (`nf_conntrack_acct`) is per flow, not per ULID pair: one
//!   would dump and sum every flow of the peer at each poll, and it turns accounting on
//!   for the whole host.
//! - **One rule per pair** with a named counter costs a linear walk of the chain per
//!   packet: 10⁴ contexts would mean 10⁴ comparisons per packet.
//!
//! The per-element counter being bumped by a plain lookup (no `update` statement) is
//! the kernel behaviour this relies on; the netns test `netns_aux_visibility` proves it
//! on the CI kernel (6.18).
//!
//! # How to wire it (service loop and `Endpoint` adapter)
//!
//! 1. At start-up (when a protocol core runs): `let mut vis =
//!    Visibility::install(DEFAULT_TABLE)?;` and keep it next to the routing plumbing;
//!    on shutdown `vis.delete()` (the table is also deleted, best effort, on `Drop`).
//! 2. On `Event::Established { key, .. }`: `vis.register(UlidPair::new(key.ulid_local,
//!    key.ulid_peer))`. On `Event::Failed { key, .. }` and `Event::Closed`:
//!    `vis.unregister(..)` with the same pair. (Register whatever the current locators
//!    are: after a switch the peer's packets carry the payload header and reach the
//!    core through the raw socket, and plain ones still count as received.)
//! 3. Poll every [`poll_interval`]`(config.reap.send_timeout)` while [`Visibility::is_empty`] is false, **and** just
//!    before calling `handle_timeout(now)` when the core's deadline passed:
//!    `for pair in vis.poll()? { endpoint.note_peer_activity(now, pair.local, pair.peer) }`,
//!    then drain the core's pollers as after any handler. Polling only at the core's
//!    deadline would not do: an idle context has no Send timer armed, so packets the peer
//!    sends would start our Keepalive timer (RFC 5534 §5.2) only at the next deadline,
//!    and the peer's Send timer could expire first.
//! 4. A poll blocks for one `nft` run (about 2 ms); use
//!    `tokio::task::spawn_blocking(move || query.run())` with [`Visibility::query`] and
//!    then [`Visibility::update`] if the stall matters.

use std::{collections::BTreeMap, fmt, net::Ipv6Addr, time::Duration};

use serde_json::Value;

use crate::trigger::nft::{self, OwnedTable};

/// The default table name.
pub const DEFAULT_TABLE: &str = "shim6d_reap";

/// The longest gap between polls, whatever the Send Timeout.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest gap between polls (one `nft` run costs about 2 ms).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often to poll for a REAP Send Timeout of `send_timeout`: a sixth of it, within
/// [`MIN_POLL_INTERVAL`]..=[`POLL_INTERVAL`]. The peer sends Keepalives every third to
/// half of the Keepalive Timeout (RFC 5534 §4.1, §7; it is our Send Timeout, §5.3), so
/// activity is noted well before our own Send timer or the peer's could expire.
pub fn poll_interval(send_timeout: Duration) -> Duration {
    (send_timeout / 6).clamp(MIN_POLL_INTERVAL, POLL_INTERVAL)
}

/// The set holding the pairs.
const SET: &str = "pairs";

/// A context's ULIDs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct UlidPair {
    /// ULID(local): the destination of the peer's packets.
    pub local: Ipv6Addr,
    /// ULID(peer): their source.
    pub peer: Ipv6Addr,
}

impl UlidPair {
    /// The pair.
    pub const fn new(local: Ipv6Addr, peer: Ipv6Addr) -> Self {
        Self { local, peer }
    }

    /// The set element: `peer . local` (source . destination of inbound packets).
    fn element(&self) -> String {
        format!("{} . {}", self.peer, self.local)
    }
}

impl fmt::Display for UlidPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <- {}", self.local, self.peer)
    }
}

/// The blocking half of a poll, detached from [`Visibility`] so it can run on another
/// thread: `nft -j -nn list set inet TABLE pairs`.
#[derive(Clone, Debug)]
pub struct Query {
    table: String,
}

impl Query {
    /// Runs `nft` and returns its JSON document.
    pub fn run(&self) -> Result<Value, nft::Error> {
        nft::list_json(
            &format!("read set inet {} {SET}", self.table),
            &["list", "set", "inet", &self.table, SET],
        )
    }
}

/// The kernel-side per-pair counters and what the last poll saw.
#[derive(Debug)]
pub struct Visibility {
    table: OwnedTable,
    /// Registered pairs and their packet counter at the last poll.
    seen: BTreeMap<UlidPair, u64>,
}

impl Visibility {
    /// Installs (or replaces a stale) table `inet NAME` with an empty set.
    pub fn install(table: &str) -> Result<Self, nft::Error> {
        let body = format!(
            "  set {SET} {{\n    type ipv6_addr . ipv6_addr\n    counter\n  }}\n\
             \x20 chain input {{\n    type filter hook input priority -150; policy accept;\n\
             \x20   ip6 saddr . ip6 daddr @{SET}\n  }}"
        );
        Ok(Self {
            table: OwnedTable::install(table, &body)?,
            seen: BTreeMap::new(),
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Starts counting packets from `pair.peer` to `pair.local`. Registering a pair
    /// twice is a no-op.
    pub fn register(&mut self, pair: UlidPair) -> Result<(), nft::Error> {
        if self.seen.contains_key(&pair) {
            return Ok(());
        }
        nft::run_script(
            &format!("register {pair}"),
            &format!(
                "add element inet {} {SET} {{ {} }}\n",
                self.table(),
                pair.element()
            ),
        )?;
        self.seen.insert(pair, 0);
        Ok(())
    }

    /// Stops counting for `pair`; an unknown pair is a no-op.
    pub fn unregister(&mut self, pair: UlidPair) -> Result<(), nft::Error> {
        if !self.seen.contains_key(&pair) {
            return Ok(());
        }
        nft::run_script(
            &format!("unregister {pair}"),
            &format!(
                "delete element inet {} {SET} {{ {} }}\n",
                self.table(),
                pair.element()
            ),
        )?;
        self.seen.remove(&pair);
        Ok(())
    }

    /// Whether no pair is registered (nothing to poll).
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The registered pairs.
    pub fn pairs(&self) -> impl Iterator<Item = UlidPair> + '_ {
        self.seen.keys().copied()
    }

    /// The blocking half of [`Visibility::poll`], to run elsewhere.
    pub fn query(&self) -> Query {
        Query {
            table: self.table().to_owned(),
        }
    }

    /// The pairs whose counters grew since the last update, from a [`Query::run`]
    /// document. Elements of pairs not (or no longer) registered are ignored; a counter
    /// that went down (the element was re-created) counts as activity when non-zero.
    pub fn update(&mut self, doc: &Value) -> Result<Vec<UlidPair>, nft::Error> {
        let mut active = Vec::new();
        for e in nft::set_elements(doc, SET)? {
            let Some(pair) = pair_of(&e.key) else {
                return Err(nft::Error::Unexpected {
                    op: format!("read set inet {} {SET}", self.table()),
                    what: format!("element {:?} is not an address pair", e.key),
                });
            };
            let Some(last) = self.seen.get_mut(&pair) else {
                continue;
            };
            if e.packets != *last {
                if e.packets > 0 {
                    active.push(pair);
                }
                *last = e.packets;
            }
        }
        Ok(active)
    }

    /// Reads the counters (one blocking `nft` run) and returns the pairs that received
    /// packets since the last poll.
    pub fn poll(&mut self) -> Result<Vec<UlidPair>, nft::Error> {
        if self.seen.is_empty() {
            return Ok(Vec::new());
        }
        let doc = self.query().run()?;
        self.update(&doc)
    }

    /// Deletes the table (and with it every counter).
    pub fn delete(self) -> Result<(), nft::Error> {
        self.table.delete()
    }
}

/// `[peer, local]` as strings → the pair.
fn pair_of(key: &[Value]) -> Option<UlidPair> {
    let [peer, local] = key else {
        return None;
    };
    let peer = peer.as_str()?.parse().ok()?;
    let local = local.as_str()?.parse().ok()?;
    Some(UlidPair { local, peer })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j -nn list set inet shim6d_reap pairs` captured on the CI kernel (6.18,
    /// nftables 1.0.6) after 3 packets from the registered peer.
    const CAPTURED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"set": {"family": "inet", "name": "pairs", "table": "shim6d_reap", "type": ["ipv6_addr", "ipv6_addr"], "handle": 2, "elem": [{"elem": {"val": {"concat": ["2001:db8:c2::2", "2001:db8:c2::1"]}, "counter": {"packets": 3, "bytes": 264}}}, {"elem": {"val": {"concat": ["2001:db8:c2::3", "2001:db8:c2::1"]}, "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}]}"#;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn with_pairs(pairs: &[UlidPair]) -> BTreeMap<UlidPair, u64> {
        pairs.iter().map(|p| (*p, 0)).collect()
    }

    /// A `Visibility` without a table, for the bookkeeping tests (its `Drop` runs no
    /// `nft`).
    fn detached(seen: BTreeMap<UlidPair, u64>) -> Visibility {
        Visibility {
            table: OwnedTable::detached_for_tests(DEFAULT_TABLE),
            seen,
        }
    }

    #[test]
    fn captured_listing_reports_the_pair_with_packets() {
        let p2 = UlidPair::new(a("2001:db8:c2::1"), a("2001:db8:c2::2"));
        let p3 = UlidPair::new(a("2001:db8:c2::1"), a("2001:db8:c2::3"));
        let mut v = detached(with_pairs(&[p2, p3]));
        let doc: Value = serde_json::from_str(CAPTURED).unwrap();
        assert_eq!(v.update(&doc).unwrap(), [p2]);
        // Same counters again: nothing new.
        assert!(v.update(&doc).unwrap().is_empty());
        // The counter grows: reported again.
        let grown = CAPTURED.replace("\"packets\": 3", "\"packets\": 4");
        let doc: Value = serde_json::from_str(&grown).unwrap();
        assert_eq!(v.update(&doc).unwrap(), [p2]);
        // Re-created element (counter back to 1, below the last 4) counts too.
        let reset = CAPTURED.replace("\"packets\": 3", "\"packets\": 1");
        let doc: Value = serde_json::from_str(&reset).unwrap();
        assert_eq!(v.update(&doc).unwrap(), [p2]);
    }

    #[test]
    fn unregistered_pairs_are_ignored_and_garbage_is_an_error() {
        let mut v = detached(BTreeMap::new());
        let doc: Value = serde_json::from_str(CAPTURED).unwrap();
        assert!(v.update(&doc).unwrap().is_empty());
        let bad = CAPTURED.replace("2001:db8:c2::2", "not-an-address");
        let doc: Value = serde_json::from_str(&bad).unwrap();
        let err = v.update(&doc).unwrap_err().to_string();
        assert!(err.contains("not an address pair"), "{err}");
    }

    #[test]
    fn poll_interval_bounds() {
        assert_eq!(poll_interval(Duration::from_secs(15)), POLL_INTERVAL);
        assert_eq!(
            poll_interval(Duration::from_secs(3)),
            Duration::from_millis(500)
        );
        assert_eq!(poll_interval(Duration::from_millis(300)), MIN_POLL_INTERVAL);
    }

    #[test]
    fn element_syntax() {
        let p = UlidPair::new(a("2001:db8::1"), a("2001:db8::2"));
        assert_eq!(p.element(), "2001:db8::2 . 2001:db8::1");
        assert_eq!(p.to_string(), "2001:db8::1 <- 2001:db8::2");
    }
}
