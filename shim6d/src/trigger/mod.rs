//! Which flows get a context (issue 6 item 3, architecture hazard 3).
//!
//! Unprotected traffic must not pay the userspace cost, so it never enters the TUN; the
//! kernel counts it instead, and the daemon starts a context for a peer only once one of
//! its flows is worth it. LinShim6's default heuristic: a flow that passes **2 KB** or
//! lives **60 s** (the thresholds are `[trigger] bytes` and `seconds`), subject to the
//! policy rules of [`Trigger::rule_for`] (`always` / `never` per prefix, protocol and
//! port, a port on either side; the default configuration says `never` for DNS, port
//! 53, which covers our queries and a DNS server of ours alike).
//!
//! # Two halves
//!
//! - [`FlowAccounting`] (I/O): a table `inet shim6d_trigger` of our own with two
//!   dynamic sets that the kernel fills on its own, one element per flow with a counter,
//!   forgotten after `idle_timeout` without packets:
//!
//!   ```text
//!   set flows    { type ipv6_addr . ipv6_addr . inet_proto . inet_service . inet_service;
//!                  ... counter }
//!   set flows_np { type ipv6_addr . ipv6_addr . inet_proto; ... counter }  # no ports
//!   chain output: skip lo, the TUN, our fwmark, link-local/multicast, ICMPv6 and
//!     Shim6 (58, 140); TCP/UDP: update @flows { saddr . daddr . l4proto . th sport .
//!     th dport },
//!     others: update @flows_np { saddr . daddr . l4proto }
//!   chain input: the mirror image (daddr . saddr . l4proto . th dport . th sport), so
//!     both directions of a connection add to one element keyed (local, peer, proto,
//!     local port, peer port)
//!   ```
//!
//!   Read with `nft -j -nn list table` and parsed by [`parse_flows`].
//! - [`Decider`] (sans-IO, explicit `now`): the heuristic, the rules, the mode
//!   (responder-only and manual never initiate), and the bookkeeping that keeps a peer
//!   with a context (or one being established, or one that just failed) from being
//!   reported again.
//!
//! [`TriggerPoller`] puts the two together. [`FlowAccounting`] is installed only in
//! `auto` mode, and [`TriggerPoller::reconfigure`] installs or removes it when a reload
//! changes the mode.
//!
//! Why nftables and not conntrack accounting: conntrack needs `nf_conntrack_acct=1`
//! for the whole host and a dump of *every* tracked connection per poll (with a
//! netlink library we do not have), while our own dynamic sets count only what we ask,
//! are keyed as the decision needs (one element per connection: both ports, so that a
//! rule's port matches either side; the decider sums them per (local, peer, protocol,
//! peer port) for the thresholds), and vanish with our table. Flows are counted once
//! per poll interval, so the age threshold has the poll interval as resolution.
//!
//! # How to wire it (service loop and `Endpoint` adapter)
//!
//! 1. At start-up: `let mut trig = TriggerPoller::new(config.trigger.clone(),
//!    AccountingOptions::for_daemon(&config))?;` (installs the table in `auto` mode).
//!    On SIGHUP: `trig.reconfigure(new.trigger.clone())?`. On shutdown: `trig.shutdown()`
//!    (also done, best effort, on `Drop`).
//! 2. Every [`POLL_INTERVAL`] (a `tokio::time::interval` arm of the loop's `select!`):
//!    `for t in trig.poll(now)? { endpoint.establish(now, t.pair.local, t.pair.peer) }`;
//!    an `Err` from `establish` → `trig.establish_failed(now, t.pair)`. Drain the core's
//!    pollers afterwards as after any command. The read blocks for one `nft` run: the
//!    daemon runs [`TriggerPoller::query`]'s [`FlowQuery::run`] on tokio's blocking pool
//!    (one at a time) and hands the flows to [`TriggerPoller::observe`] when they come.
//! 3. Core events: `Event::Established { key, .. }` → `trig.context_up(pair)` (also when
//!    the peer initiated); `Event::Failed { key, .. }` → `trig.establish_failed(now,
//!    pair)` (not retried for `retry_after`, so a peer without Shim6 does not get an I1
//!    every poll); `Event::Closed` / `rm` → `trig.context_down(pair)`.
//! 4. The `establish PEER_ULID` command bypasses the trigger entirely (all modes).

pub mod nft;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    config::{Action, Config, Ports, Trigger, TriggerMode},
    visibility::UlidPair,
};

/// The default table name.
pub const DEFAULT_TABLE: &str = "shim6d_trigger";
/// How often the loop should poll.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A flow without packets for this long is forgotten by the kernel.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many flows are counted per set; beyond it new flows are not counted
/// (their packets pass as always).
pub const DEFAULT_MAX_FLOWS: u32 = 65_536;
/// How long a peer whose establishment failed is not triggered again.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(600);

/// IANA protocol numbers used here.
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
/// RFC 5533 §5: Shim6's next-header value.
const SHIM6: u8 = 140;

/// One flow as the kernel counts it: both directions together.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct FlowKey {
    /// Our address.
    pub local: Ipv6Addr,
    /// The peer's address.
    pub peer: Ipv6Addr,
    /// IP protocol of the transport.
    pub proto: u8,
    /// The peer's port (TCP and UDP only).
    pub port: Option<u16>,
}

impl FlowKey {
    /// Its ULID pair.
    pub const fn pair(&self) -> UlidPair {
        UlidPair::new(self.local, self.peer)
    }
}

/// A flow's counters at one poll: one connection as the kernel counts it (both ports),
/// under the key the thresholds sum over ([`FlowKey`]: without our port).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FlowSample {
    /// The flow.
    pub key: FlowKey,
    /// Our port (TCP and UDP only).
    pub local_port: Option<u16>,
    /// Packets both ways.
    pub packets: u64,
    /// Bytes both ways (whole IPv6 packets).
    pub bytes: u64,
}

impl FlowSample {
    /// Both ports, for the policy rules; `None` for a transport without ports.
    pub fn ports(&self) -> Option<Ports> {
        let (peer, local) = self.key.port.zip(self.local_port)?;
        Some(Ports { local, peer })
    }
}

/// Why a peer was reported.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    /// An `always` rule matched one of its flows.
    Always,
    /// A flow passed the byte threshold (the flow's bytes).
    Bytes(u64),
    /// A flow lived past the age threshold (its age).
    Age(Duration),
}

/// "Start a context for this pair."
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Triggered {
    /// The ULIDs to `establish` with.
    pub pair: UlidPair,
    /// The flow that decided it.
    pub flow: FlowKey,
    /// Why.
    pub reason: Reason,
}

/// The decision logic, sans-IO: feed it the kernel's flow counters with `now`.
#[derive(Debug)]
pub struct Decider {
    config: Trigger,
    retry_after: Duration,
    first_seen: HashMap<FlowKey, Instant>,
    /// Pairs with a context.
    contexts: BTreeSet<UlidPair>,
    /// Pairs reported, waiting for `context_up` or `establish_failed`.
    pending: BTreeSet<UlidPair>,
    /// Pairs not to report before the instant.
    suppressed: BTreeMap<UlidPair, Instant>,
}

impl Decider {
    /// A decider for the `[trigger]` section; a failed pair waits `retry_after`.
    pub fn new(config: Trigger, retry_after: Duration) -> Self {
        Self {
            config,
            retry_after,
            first_seen: HashMap::new(),
            contexts: BTreeSet::new(),
            pending: BTreeSet::new(),
            suppressed: BTreeMap::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Trigger {
        &self.config
    }

    /// A reload changed `[trigger]`; flow ages are kept.
    pub fn set_config(&mut self, config: Trigger) {
        self.config = config;
    }

    /// A context for `pair` exists now (whoever started it): its flows are not reported.
    pub fn context_up(&mut self, pair: UlidPair) {
        self.pending.remove(&pair);
        self.suppressed.remove(&pair);
        self.contexts.insert(pair);
    }

    /// The context for `pair` is gone: its flows may trigger again.
    pub fn context_down(&mut self, pair: UlidPair) {
        self.contexts.remove(&pair);
        self.pending.remove(&pair);
    }

    /// Establishing `pair` failed (E-FAILED, NO-SUPPORT, or `establish` refused it): not
    /// reported again before `now + retry_after`.
    pub fn establish_failed(&mut self, now: Instant, pair: UlidPair) {
        self.pending.remove(&pair);
        self.contexts.remove(&pair);
        self.suppressed.insert(pair, now + self.retry_after);
    }

    /// Whether `pair` has a context, is being established, or is suppressed at `now`.
    fn is_busy(&self, now: Instant, pair: &UlidPair) -> bool {
        self.contexts.contains(pair)
            || self.pending.contains(pair)
            || self.suppressed.get(pair).is_some_and(|until| now < *until)
    }

    /// The flow counters of one poll (every flow the kernel still tracks): returns the
    /// pairs to establish, each at most once; they count as pending from now on.
    ///
    /// The policy rules apply to each connection with both its ports (a rule's port
    /// matches either side, [`crate::config::TriggerRule::matches`]): `never` takes the
    /// connection out, `always` reports its pair. The thresholds apply to what is left,
    /// summed per [`FlowKey`] (local, peer, protocol, peer port): many short connections
    /// to one service add up, as they did when the kernel counted per peer port.
    pub fn observe(&mut self, now: Instant, flows: &[FlowSample]) -> Vec<Triggered> {
        // Flows the kernel forgot (idle timeout) start a new life if they come back.
        let live: BTreeSet<FlowKey> = flows.iter().map(|f| f.key).collect();
        self.first_seen.retain(|k, _| live.contains(k));
        self.suppressed.retain(|_, until| now < *until);
        for f in flows {
            self.first_seen.entry(f.key).or_insert(now);
        }
        // Responder-only and manual modes never initiate.
        if self.config.mode != TriggerMode::Auto {
            return Vec::new();
        }
        let mut candidates: Vec<(FlowKey, Option<Reason>)> = Vec::new();
        let mut sums: BTreeMap<FlowKey, FlowSample> = BTreeMap::new();
        for f in flows {
            match self.config.rule_for(f.key.peer, f.key.proto, f.ports()) {
                Some(Action::Never) => {}
                Some(Action::Always) => candidates.push((f.key, Some(Reason::Always))),
                None => {
                    let s = sums.entry(f.key).or_insert(FlowSample {
                        key: f.key,
                        local_port: None,
                        packets: 0,
                        bytes: 0,
                    });
                    s.packets += f.packets;
                    s.bytes += f.bytes;
                }
            }
        }
        candidates.extend(sums.values().map(|s| (s.key, self.threshold(now, s))));
        let mut out: Vec<Triggered> = Vec::new();
        for (flow, reason) in candidates {
            let pair = flow.pair();
            if self.is_busy(now, &pair) || out.iter().any(|t| t.pair == pair) {
                continue;
            }
            if let Some(reason) = reason {
                out.push(Triggered { pair, flow, reason });
            }
        }
        self.pending.extend(out.iter().map(|t| t.pair));
        out
    }

    /// LinShim6's heuristic: bytes or age, each off when its threshold is 0.
    fn threshold(&self, now: Instant, f: &FlowSample) -> Option<Reason> {
        if self.config.bytes > 0 && f.bytes >= self.config.bytes {
            return Some(Reason::Bytes(f.bytes));
        }
        let age = self
            .first_seen
            .get(&f.key)
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(*t));
        (!self.config.seconds.is_zero() && age >= self.config.seconds).then_some(Reason::Age(age))
    }
}

/// What [`FlowAccounting`] leaves out, and its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountingOptions {
    /// The table's name.
    pub table: String,
    /// The TUN: packets into or out of it belong to peers with a context.
    pub tun: Option<String>,
    /// The daemon's own fwmark: its packets are not flows of applications.
    pub fwmark: Option<u32>,
    /// Flows without packets for this long are forgotten (whole seconds, at least 1).
    pub idle_timeout: Duration,
    /// Flows counted at most, per set.
    pub max_flows: u32,
}

impl AccountingOptions {
    /// The defaults for a daemon with this configuration: its TUN and fwmark excluded.
    pub fn for_daemon(config: &Config) -> Self {
        Self {
            table: DEFAULT_TABLE.to_owned(),
            tun: Some(config.tun.name.clone()),
            fwmark: Some(config.routing.fwmark),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_flows: DEFAULT_MAX_FLOWS,
        }
    }

    /// The table body (between the braces).
    pub fn table_body(&self) -> Result<String, nft::Error> {
        nft::check_name(&self.table)?;
        let timeout = self.idle_timeout.as_secs().max(1);
        let size = self.max_flows.max(1);
        let set = |name: &str, ty: &str| {
            format!(
                "  set {name} {{\n    type {ty}\n    flags dynamic,timeout\n    timeout {timeout}s\n\
                 \x20   size {size}\n    counter\n  }}\n"
            )
        };
        let mut out_skip = String::from("    oifname \"lo\" return\n");
        let mut in_skip = String::from("    iifname \"lo\" return\n");
        if let Some(tun) = &self.tun {
            nft::check_ifname(tun)?;
            out_skip += &format!("    oifname \"{tun}\" return\n");
            in_skip += &format!("    iifname \"{tun}\" return\n");
        }
        if let Some(mark) = self.fwmark {
            out_skip += &format!("    meta mark {mark:#x} return\n");
        }
        // Link-local and multicast destinations are not peers a context could protect
        // (one link's scope, RFC 4291 §2.5.6; a group, §2.7); ICMPv6 and Shim6 itself
        // are not application flows.
        let common = format!(
            "    meta nfproto != ipv6 return\n    meta l4proto {{ {ICMPV6}, {SHIM6} }} return\n"
        );
        Ok(format!(
            "{}{}  chain output {{\n    type filter hook output priority 0; policy accept;\n{common}{out_skip}\
             \x20   ip6 daddr {{ fe80::/10, ff00::/8 }} return\n\
             \x20   meta l4proto {{ {TCP}, {UDP} }} update @flows {{ ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport }}\n\
             \x20   meta l4proto != {{ {TCP}, {UDP} }} update @flows_np {{ ip6 saddr . ip6 daddr . meta l4proto }}\n  }}\n\
             \x20 chain input {{\n    type filter hook input priority 0; policy accept;\n{common}{in_skip}\
             \x20   ip6 saddr fe80::/10 return\n    ip6 daddr ff00::/8 return\n\
             \x20   meta l4proto {{ {TCP}, {UDP} }} update @flows {{ ip6 daddr . ip6 saddr . meta l4proto . th dport . th sport }}\n\
             \x20   meta l4proto != {{ {TCP}, {UDP} }} update @flows_np {{ ip6 daddr . ip6 saddr . meta l4proto }}\n  }}",
            set(
                "flows",
                "ipv6_addr . ipv6_addr . inet_proto . inet_service . inet_service",
            ),
            set("flows_np", "ipv6_addr . ipv6_addr . inet_proto"),
        ))
    }
}

/// The kernel-side flow counters: our table, installed and deleted by us.
#[derive(Debug)]
pub struct FlowAccounting {
    table: nft::OwnedTable,
}

impl FlowAccounting {
    /// Installs (or replaces a stale) table.
    pub fn install(options: &AccountingOptions) -> Result<Self, nft::Error> {
        let body = options.table_body()?;
        Ok(Self {
            table: nft::OwnedTable::install(&options.table, &body)?,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Reads every counted flow (one blocking `nft` run).
    pub fn read(&self) -> Result<Vec<FlowSample>, nft::Error> {
        self.query().run()
    }

    /// The blocking read, detached so that it can run on another thread.
    pub fn query(&self) -> FlowQuery {
        FlowQuery {
            table: self.table().to_owned(),
        }
    }

    /// Deletes the table.
    pub fn delete(self) -> Result<(), nft::Error> {
        self.table.delete()
    }
}

/// The blocking half of [`TriggerPoller::poll`] (one `nft` run, 15–20 ms on the CI
/// VM), detached from the poller so the service loop can run it on tokio's blocking
/// pool and keep moving packets meanwhile; hand its flows to
/// [`TriggerPoller::observe`]. Reading has no side effect: a query whose result is
/// dropped costs nothing but its time.
#[derive(Clone, Debug)]
pub struct FlowQuery {
    table: String,
}

impl FlowQuery {
    /// Reads every counted flow of the table (`nft -j -nn list table`).
    pub fn run(&self) -> Result<Vec<FlowSample>, nft::Error> {
        let t = &self.table;
        let doc = nft::list_json(
            &format!("read table inet {t}"),
            &["list", "table", "inet", t],
        )?;
        parse_flows(&doc)
    }
}

/// The flows of both sets in an `nft -j -nn list table` document.
pub fn parse_flows(doc: &Value) -> Result<Vec<FlowSample>, nft::Error> {
    let mut out = Vec::new();
    for (set, with_port) in [("flows", true), ("flows_np", false)] {
        for e in nft::set_elements(doc, set)? {
            let (key, local_port) =
                flow_key(&e.key, with_port).ok_or_else(|| nft::Error::Unexpected {
                    op: format!("read set {set}"),
                    what: format!("element {:?} is not a flow key", e.key),
                })?;
            out.push(FlowSample {
                key,
                local_port,
                packets: e.packets,
                bytes: e.bytes,
            });
        }
    }
    Ok(out)
}

/// A set element's key: `[local, peer, proto, local port, peer port]` in `flows`,
/// `[local, peer, proto]` in `flows_np`; the flow key and our port.
fn flow_key(key: &[Value], with_port: bool) -> Option<(FlowKey, Option<u16>)> {
    let addr = |v: &Value| v.as_str()?.parse::<Ipv6Addr>().ok();
    let port = |v: &Value| u16::try_from(v.as_u64()?).ok();
    let (local, peer, proto, ports) = match (key, with_port) {
        ([l, p, pr, lp, pp], true) => (l, p, pr, Some((port(lp)?, port(pp)?))),
        ([l, p, pr], false) => (l, p, pr, None),
        _ => return None,
    };
    Some((
        FlowKey {
            local: addr(local)?,
            peer: addr(peer)?,
            proto: u8::try_from(proto.as_u64()?).ok()?,
            port: ports.map(|p| p.1),
        },
        ports.map(|p| p.0),
    ))
}

/// The trigger as the loop uses it: kernel accounting (in `auto` mode) and the decider.
#[derive(Debug)]
pub struct TriggerPoller {
    decider: Decider,
    options: AccountingOptions,
    accounting: Option<FlowAccounting>,
}

impl TriggerPoller {
    /// Starts the trigger; installs the accounting table when `config.mode` is `auto`.
    pub fn new(config: Trigger, options: AccountingOptions) -> Result<Self, nft::Error> {
        let mut p = Self {
            decider: Decider::new(config, DEFAULT_RETRY_AFTER),
            options,
            accounting: None,
        };
        p.sync_accounting()?;
        Ok(p)
    }

    /// Changes how long a failed pair waits before it may trigger again.
    pub fn set_retry_after(&mut self, retry_after: Duration) {
        self.decider.retry_after = retry_after;
    }

    fn sync_accounting(&mut self) -> Result<(), nft::Error> {
        let want = self.decider.config.mode == TriggerMode::Auto;
        match (want, self.accounting.take()) {
            (true, None) => self.accounting = Some(FlowAccounting::install(&self.options)?),
            (false, Some(a)) => a.delete()?,
            (_, keep) => self.accounting = keep,
        }
        Ok(())
    }

    /// A reload: new thresholds, rules and mode (installing or removing the table).
    pub fn reconfigure(&mut self, config: Trigger) -> Result<(), nft::Error> {
        self.decider.set_config(config);
        self.sync_accounting()
    }

    /// Whether the kernel table is installed.
    pub fn accounting(&self) -> Option<&FlowAccounting> {
        self.accounting.as_ref()
    }

    /// The decider (for `params` and tests).
    pub fn decider(&self) -> &Decider {
        &self.decider
    }

    /// Reads the kernel's counters (blocking) and returns the pairs to establish:
    /// [`TriggerPoller::query`], [`FlowQuery::run`] and [`TriggerPoller::observe`] in
    /// one call.
    pub fn poll(&mut self, now: Instant) -> Result<Vec<Triggered>, nft::Error> {
        let Some(q) = self.query() else {
            return Ok(Vec::new());
        };
        let flows = q.run()?;
        Ok(self.observe(now, &flows))
    }

    /// The blocking half of [`TriggerPoller::poll`], to run elsewhere; `None` without
    /// accounting (not `auto` mode).
    pub fn query(&self) -> Option<FlowQuery> {
        self.accounting.as_ref().map(FlowAccounting::query)
    }

    /// The pairs to establish given the flows a [`FlowQuery`] read. Flows read while
    /// accounting was on but handed over after a reload turned it off are ignored, as
    /// a poll after the reload would have read none.
    pub fn observe(&mut self, now: Instant, flows: &[FlowSample]) -> Vec<Triggered> {
        if self.accounting.is_none() {
            return Vec::new();
        }
        self.decider.observe(now, flows)
    }

    /// See [`Decider::context_up`].
    pub fn context_up(&mut self, pair: UlidPair) {
        self.decider.context_up(pair);
    }

    /// See [`Decider::context_down`].
    pub fn context_down(&mut self, pair: UlidPair) {
        self.decider.context_down(pair);
    }

    /// See [`Decider::establish_failed`].
    pub fn establish_failed(&mut self, now: Instant, pair: UlidPair) {
        self.decider.establish_failed(now, pair);
    }

    /// Removes the table.
    pub fn shutdown(mut self) -> Result<(), nft::Error> {
        match self.accounting.take() {
            Some(a) => a.delete(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
