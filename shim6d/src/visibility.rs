//! Inbound visibility (architecture hazard 2): telling REAP that packets arrived from a
//! peer when they never crossed the daemon.
//!
//! While a context's current locator pair equals its ULIDs, the peer's packets carry no
//! payload extension header (RFC 5533 §5.1 / §12): the kernel delivers them straight to
//! the application, and shim6d never sees them. REAP's Send timer (RFC 5534 §4.1) must
//! still learn that something arrived, or it declares a working path failed after Send
//! Timeout. This module notes those packets **in the kernel** and tells the loop which
//! ULID pairs saw traffic since the last look.
//!
//! # Mechanism: an nftables set of registered pairs, and two "seen" sets in turn
//!
//! ```text
//! table inet shim6d_reap {
//!     set pairs { type ipv6_addr . ipv6_addr; }                # peer ULID . local ULID
//!     set seen0 { type ipv6_addr . ipv6_addr; flags dynamic; size N; }
//!     set seen1 { ... the same ... }
//!     chain input {
//!         type filter hook input priority -150; policy accept;
//!         ip6 saddr . ip6 daddr @pairs jump note               # one hash lookup
//!     }
//!     chain note { add @seen0 { ip6 saddr . ip6 daddr } }      # the set being written
//! }
//! ```
//!
//! Every inbound IPv6 packet costs one hash lookup in `pairs`, whatever the number of
//! contexts; a registered pair's packets also add it to the set being written (a second
//! lookup once it is there). [`Visibility::poll`] then, in two `nft` runs:
//!
//! 1. empties the *other* seen set and points `note` at it, in one transaction
//!    (`flush set; flush chain; add rule`), so the kernel now writes there;
//! 2. lists the set written until then, now quiescent (`nft -j -nn list set`): exactly
//!    the pairs that received packets since the previous poll.
//!
//! The cost of a poll grows with the number of pairs that were **active**, not with the
//! number registered. The first version of this module kept a counter per registered
//! pair and listed them all at every poll: 188 ms per poll with 10⁴ pairs (the `nft`
//! command prints about 10 µs per element), a fifth of a core at one poll a second
//! (`docs/bench/daemon-aux.md`).
//!
//! Why nftables and not the alternatives (measured in `docs/bench/daemon-aux.md`):
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
//! Packets the daemon restores and writes into the TUN also arrive from the peer ULID
//! and match: harmless (REAP hears of them twice), and no rule needs the TUN's name.
//!
//! A packet that the kernel is evaluating against the old `note` rule while step 1
//! commits may land in the set after step 2 listed it: that one sample is lost (the
//! pair's next packet is seen). At worst REAP then explores a path that works and
//! stays on it.
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
//! 3. Poll every [`poll_interval`]`(config.reap.send_timeout)` while
//!    [`Visibility::is_empty`] is false, **and** just before calling
//!    `handle_timeout(now)` when the core's deadline passed:
//!    `for pair in vis.poll()? { endpoint.note_peer_activity(now, pair.local, pair.peer) }`,
//!    then drain the core's pollers as after any handler. Polling only at the core's
//!    deadline would not do: an idle context has no Send timer armed, so packets the peer
//!    sends would start our Keepalive timer (RFC 5534 §4.1) only at the next deadline,
//!    and the peer's Send timer could expire first.
//! 4. A poll blocks for two `nft` runs (15–20 ms measured on the loaded CI VM), so the
//!    daemon's loop does not call [`Visibility::poll`]: it runs [`Query::run`] (from
//!    [`Visibility::query`]) with `tokio::task::spawn_blocking`, keeps moving packets,
//!    and hands the document to [`Visibility::update`] when it comes; never two queries
//!    at once. A core timeout that falls due meanwhile waits for that document (step 3's
//!    "just before").

use std::{collections::BTreeSet, fmt, net::Ipv6Addr, time::Duration};

use serde_json::Value;

use crate::trigger::nft::{self, OwnedTable};

/// The default table name.
pub const DEFAULT_TABLE: &str = "shim6d_reap";

/// The longest gap between polls, whatever the Send Timeout.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest gap between polls (a poll costs 15–20 ms of wall time on the CI VM).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often to poll for a REAP Send Timeout of `send_timeout`: a sixth of it, within
/// [`MIN_POLL_INTERVAL`]..=[`POLL_INTERVAL`]. The peer sends Keepalives every third to
/// half of the Keepalive Timeout (RFC 5534 §4.1, §7; it is our Send Timeout, §5.3), so
/// activity is noted well before our own Send timer or the peer's could expire.
pub fn poll_interval(send_timeout: Duration) -> Duration {
    (send_timeout / 6).clamp(MIN_POLL_INTERVAL, POLL_INTERVAL)
}

/// The set of registered pairs.
const PAIRS: &str = "pairs";
/// The chain that adds a packet's pair to the seen set being written.
const NOTE: &str = "note";
/// Most pairs a seen set holds (beyond it, a pair's packets are not noted until the
/// next poll empties the set).
const SEEN_SIZE: u32 = 65_536;

/// The seen set with index `i` (0 or 1).
fn seen(i: u8) -> String {
    format!("seen{i}")
}

/// The rule of `note` writing into seen set `i`.
fn note_rule(i: u8) -> String {
    format!("add @{} {{ ip6 saddr . ip6 daddr }}", seen(i))
}

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
/// thread. Not idempotent: every run switches the set being written.
#[derive(Clone, Debug)]
pub struct Query {
    table: String,
    writing: u8,
}

impl Query {
    /// Points `note` at the other (emptied) seen set, then lists the one written until
    /// now; returns the listing (`nft -j -nn list set`).
    pub fn run(&self) -> Result<Value, nft::Error> {
        let (t, next) = (&self.table, 1 - self.writing);
        nft::run_script(
            &format!("switch inet {t} to {}", seen(next)),
            &format!(
                "flush set inet {t} {s}\nflush chain inet {t} {NOTE}\nadd rule inet {t} {NOTE} {r}\n",
                s = seen(next),
                r = note_rule(next)
            ),
        )?;
        let s = seen(self.writing);
        nft::list_json(
            &format!("read set inet {t} {s}"),
            &["list", "set", "inet", t, &s],
        )
    }
}

/// The kernel-side sets and the registered pairs.
#[derive(Debug)]
pub struct Visibility {
    table: OwnedTable,
    pairs: BTreeSet<UlidPair>,
    /// The seen set the kernel writes into.
    writing: u8,
}

impl Visibility {
    /// Installs (or replaces a stale) table `inet NAME` with no pair registered.
    pub fn install(table: &str) -> Result<Self, nft::Error> {
        let set = |name: String| {
            format!(
                "  set {name} {{\n    type ipv6_addr . ipv6_addr\n    flags dynamic\n    \
                 size {SEEN_SIZE}\n  }}\n"
            )
        };
        let body = format!(
            "  set {PAIRS} {{\n    type ipv6_addr . ipv6_addr\n  }}\n{}{}\
             \x20 chain {NOTE} {{\n    {}\n  }}\n\
             \x20 chain input {{\n    type filter hook input priority -150; policy accept;\n\
             \x20   ip6 saddr . ip6 daddr @{PAIRS} jump {NOTE}\n  }}",
            set(seen(0)),
            set(seen(1)),
            note_rule(0)
        );
        Ok(Self {
            table: OwnedTable::install(table, &body)?,
            pairs: BTreeSet::new(),
            writing: 0,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Starts noting packets from `pair.peer` to `pair.local`. Registering a pair twice
    /// is a no-op.
    pub fn register(&mut self, pair: UlidPair) -> Result<(), nft::Error> {
        self.register_all(&[pair])
    }

    /// Registers many pairs in few `nft` runs (1000 elements per transaction): after a
    /// restart, or for benchmarks.
    pub fn register_all(&mut self, pairs: &[UlidPair]) -> Result<(), nft::Error> {
        let new: BTreeSet<UlidPair> = pairs
            .iter()
            .filter(|p| !self.pairs.contains(p))
            .copied()
            .collect();
        let new: Vec<UlidPair> = new.into_iter().collect();
        for chunk in new.chunks(1000) {
            let elements: Vec<String> = chunk.iter().map(UlidPair::element).collect();
            nft::run_script(
                &format!("register {} pair(s), the first {}", chunk.len(), chunk[0]),
                &format!(
                    "add element inet {} {PAIRS} {{ {} }}\n",
                    self.table(),
                    elements.join(", ")
                ),
            )?;
            self.pairs.extend(chunk);
        }
        Ok(())
    }

    /// Stops noting `pair`; an unknown pair is a no-op.
    pub fn unregister(&mut self, pair: UlidPair) -> Result<(), nft::Error> {
        if !self.pairs.contains(&pair) {
            return Ok(());
        }
        nft::run_script(
            &format!("unregister {pair}"),
            &format!(
                "delete element inet {} {PAIRS} {{ {} }}\n",
                self.table(),
                pair.element()
            ),
        )?;
        self.pairs.remove(&pair);
        Ok(())
    }

    /// Whether no pair is registered (nothing to poll).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The registered pairs.
    pub fn pairs(&self) -> impl Iterator<Item = UlidPair> + '_ {
        self.pairs.iter().copied()
    }

    /// The blocking half of [`Visibility::poll`], to run elsewhere; hand its result to
    /// [`Visibility::update`] before making the next query.
    pub fn query(&self) -> Query {
        Query {
            table: self.table().to_owned(),
            writing: self.writing,
        }
    }

    /// The registered pairs in a [`Query::run`] document (pairs unregistered since are
    /// ignored); the set it lists is the next one to be emptied and written.
    pub fn update(&mut self, doc: &Value) -> Result<Vec<UlidPair>, nft::Error> {
        let listed = seen(self.writing);
        let mut active = BTreeSet::new();
        for e in nft::set_elements(doc, &listed)? {
            let Some(pair) = pair_of(&e.key) else {
                return Err(nft::Error::Unexpected {
                    op: format!("read set inet {} {listed}", self.table()),
                    what: format!("element {:?} is not an address pair", e.key),
                });
            };
            if self.pairs.contains(&pair) {
                active.insert(pair);
            }
        }
        self.writing = 1 - self.writing;
        Ok(active.into_iter().collect())
    }

    /// Switches sets and lists the one written since the last poll (two blocking `nft`
    /// runs): the registered pairs that received packets since then.
    pub fn poll(&mut self) -> Result<Vec<UlidPair>, nft::Error> {
        if self.pairs.is_empty() {
            return Ok(Vec::new());
        }
        let doc = self.query().run()?;
        self.update(&doc)
    }

    /// Deletes the table.
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

    /// `nft -j -nn list set inet shim6d_reap seen0` captured on the CI kernel (6.18,
    /// nftables 1.0.6) after packets from both registered peers and the switch to seen1.
    const CAPTURED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"set": {"family": "inet", "name": "seen0", "table": "shim6d_reap", "type": ["ipv6_addr", "ipv6_addr"], "handle": 4, "size": 65536, "elem": [{"concat": ["2001:db8:c2::2", "2001:db8:c2::1"]}, {"concat": ["2001:db8:c2::3", "2001:db8:c2::1"]}]}}]}"#;
    /// The same for the empty seen1.
    const CAPTURED_EMPTY: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"set": {"family": "inet", "name": "seen1", "table": "shim6d_reap", "type": ["ipv6_addr", "ipv6_addr"], "handle": 5, "size": 65536}}]}"#;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A `Visibility` without a table, for the bookkeeping tests (its `Drop` runs no
    /// `nft`).
    fn detached(pairs: &[UlidPair]) -> Visibility {
        Visibility {
            table: OwnedTable::detached_for_tests(DEFAULT_TABLE),
            pairs: pairs.iter().copied().collect(),
            writing: 0,
        }
    }

    fn doc(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn captured_listing_reports_registered_pairs_and_flips_sets() {
        let p2 = UlidPair::new(a("2001:db8:c2::1"), a("2001:db8:c2::2"));
        let p3 = UlidPair::new(a("2001:db8:c2::1"), a("2001:db8:c2::3"));
        let mut v = detached(&[p2]);
        assert_eq!(v.query().writing, 0);
        // p3 is in the set but not registered (any more): ignored.
        assert_eq!(v.update(&doc(CAPTURED)).unwrap(), [p2]);
        assert_eq!(v.writing, 1, "the kernel writes into seen1 now");
        assert_eq!(v.query().writing, 1);
        assert!(v.update(&doc(CAPTURED_EMPTY)).unwrap().is_empty());
        assert_eq!(v.writing, 0);
        v.pairs.insert(p3);
        assert_eq!(v.update(&doc(CAPTURED)).unwrap(), [p2, p3]);
    }

    #[test]
    fn the_wrong_set_or_garbage_is_an_error() {
        let p2 = UlidPair::new(a("2001:db8:c2::1"), a("2001:db8:c2::2"));
        let mut v = detached(&[p2]);
        v.writing = 1;
        // A listing of seen0 while seen1 was being written: not what was asked for.
        let err = v.update(&doc(CAPTURED)).unwrap_err().to_string();
        assert!(err.contains("no set named \"seen1\""), "{err}");
        assert_eq!(v.writing, 1, "unchanged after an error");
        v.writing = 0;
        let bad = CAPTURED.replace("2001:db8:c2::2", "not-an-address");
        let err = v.update(&doc(&bad)).unwrap_err().to_string();
        assert!(err.contains("not an address pair"), "{err}");
    }

    #[test]
    fn poll_interval_bounds() {
        assert_eq!(poll_interval(Duration::from_secs(15)), POLL_INTERVAL);
        assert_eq!(
            poll_interval(Duration::from_secs(3)),
            Duration::from_millis(500)
        );
        assert_eq!(poll_interval(Duration::from_secs(1)), MIN_POLL_INTERVAL);
    }

    #[test]
    fn element_and_rule_syntax() {
        let p = UlidPair::new(a("2001:db8::1"), a("2001:db8::2"));
        assert_eq!(p.element(), "2001:db8::2 . 2001:db8::1");
        assert_eq!(p.to_string(), "2001:db8::1 <- 2001:db8::2");
        assert_eq!(note_rule(1), "add @seen1 { ip6 saddr . ip6 daddr }");
    }
}
