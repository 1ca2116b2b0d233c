//! The routing plumbing that steers protected flows into the TUN and keeps the daemon's
//! own packets out of it (architecture.md hazards 1 and 3):
//!
//! ```text
//! ip -6 rule add not fwmark MARK lookup TABLE priority PRIO   # once
//! ip -6 route replace PEER/128 dev shim6 table TABLE          # per peer with a context
//! ```
//!
//! Unmarked packets (the applications') consult `TABLE` first and, for a peer with a
//! route there, enter the TUN; everything else falls through to `main`. The daemon's
//! packets carry `MARK` (`SO_MARK` on its send socket), skip `TABLE` and are routed by
//! the ordinary tables: they can never loop back into the TUN.
//!
//! The rule is always added **with** its priority: without one the kernel picks a new
//! priority for every add and a repeated add duplicates the rule (xfrm-sys `rule` docs).
//!
//! # Cleanup
//!
//! Everything added is recorded and removed by [`Plumbing::teardown`] on shutdown. If the
//! process dies without it, the routes go away with the TUN device (the kernel deletes
//! routes through a deleted link), and the rule, identical at the next start, is adopted
//! there (its `EEXIST` is accepted) and removed at that run's shutdown. [`Plumbing`]'s
//! `Drop` cannot run netlink requests (they are async); it logs what was left behind.

use std::{collections::BTreeSet, net::Ipv6Addr};

use xfrm_sys::{FwMark, Handle, Ipv6Prefix, Route, Rule};

use super::Error;
use crate::config::Routing;

/// The rule and routes the daemon installed.
#[derive(Debug)]
pub struct Plumbing {
    handle: Handle,
    tun_index: u32,
    table: u32,
    rule: Option<Rule>,
    routes: BTreeSet<Ipv6Addr>,
}

impl Plumbing {
    /// The loop-guard rule for `routing`: `not fwmark MARK lookup TABLE priority PRIO`.
    pub fn guard_rule(routing: &Routing) -> Rule {
        Rule::lookup(routing.table)
            .invert()
            .fwmark(FwMark::exact(routing.fwmark))
            .priority(routing.rule_priority)
    }

    /// Adds the loop-guard rule (adopting an identical one left by an earlier run).
    pub async fn install(handle: Handle, tun_index: u32, routing: &Routing) -> Result<Self, Error> {
        let rule = Self::guard_rule(routing);
        match handle.add_rule(&rule).await {
            Ok(()) => {}
            Err(e) if e.is_already_exists() => {
                tracing::info!(rule = %rule.describe(), "adopting the loop-guard rule left by an earlier run");
            }
            Err(source) => {
                return Err(Error::Netlink {
                    op: format!("add rule `{}`", rule.describe()),
                    source,
                });
            }
        }
        Ok(Self {
            handle,
            tun_index,
            table: routing.table,
            rule: Some(rule),
            routes: BTreeSet::new(),
        })
    }

    /// Routes `peer` into the TUN (`replace`: idempotent).
    pub async fn add_peer(&mut self, peer: Ipv6Addr) -> Result<(), Error> {
        let route = self.peer_route(peer);
        self.handle
            .replace_route(&route)
            .await
            .map_err(|source| Error::Netlink {
                op: format!("route {peer}/128 into the TUN (table {})", self.table),
                source,
            })?;
        self.routes.insert(peer);
        Ok(())
    }

    /// Makes the kernel look up again the routes that sockets cached: a TCP socket keeps
    /// its route when a route is added to another table (measured on the CI kernel 6.18
    /// for a flow routed by a source rule: a new `PEER/128` route in `TABLE` does not
    /// divert it), while any change of the rules flushes the cached routes (`fib6_rules`
    /// bumps the IPv6 route generation). Called after [`Plumbing::add_peer`], so that a
    /// flow older than its context (one the trigger picked, or a MipShim6 flow that
    /// started through the home agent) enters the TUN. A rule that matches nothing (an
    /// impossible mark) is added and deleted.
    pub async fn flush_route_caches(&self) -> Result<(), Error> {
        // No packet carries this mark: the daemon's own is `[routing] fwmark`.
        let rule = Rule::lookup(self.table)
            .fwmark(FwMark::exact(0xffff_fff1))
            .priority(self.rule.as_ref().and_then(|r| r.priority).unwrap_or(100));
        let netlink = |op: &str| {
            let op = format!("{op} rule `{}` (route cache flush)", rule.describe());
            move |source| Error::Netlink { op, source }
        };
        self.handle.add_rule(&rule).await.map_err(netlink("add"))?;
        self.handle
            .delete_rule(&rule)
            .await
            .map_err(netlink("delete"))
    }

    /// Removes the route of `peer` (a missing route is not an error).
    pub async fn remove_peer(&mut self, peer: Ipv6Addr) -> Result<(), Error> {
        let route = self.peer_route(peer);
        self.routes.remove(&peer);
        match self.handle.delete_route(&route).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(source) => Err(Error::Netlink {
                op: format!("delete route {peer}/128 (table {})", self.table),
                source,
            }),
        }
    }

    /// Peers routed into the TUN now.
    pub fn peers(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.routes.iter().copied()
    }

    fn peer_route(&self, peer: Ipv6Addr) -> Route {
        let dst = Ipv6Prefix::new(peer, 128).expect("a /128 of any address is a valid prefix");
        Route::new(dst, self.table).dev(self.tun_index)
    }

    /// Removes every route and the rule; returns the failures (each already logged).
    /// Idempotent.
    pub async fn teardown(&mut self) -> Vec<Error> {
        let mut errors = Vec::new();
        let peers: Vec<Ipv6Addr> = self.routes.iter().copied().collect();
        for peer in peers {
            if let Err(e) = self.remove_peer(peer).await {
                tracing::error!(error = %e, "teardown");
                errors.push(e);
            }
        }
        if let Some(rule) = self.rule.take() {
            match self.handle.delete_rule(&rule).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(source) => {
                    let e = Error::Netlink {
                        op: format!("delete rule `{}`", rule.describe()),
                        source,
                    };
                    tracing::error!(error = %e, "teardown");
                    errors.push(e);
                }
            }
        }
        errors
    }
}

impl Drop for Plumbing {
    fn drop(&mut self) {
        if let Some(rule) = &self.rule {
            tracing::warn!(
                rule = %rule.describe(),
                routes = self.routes.len(),
                "routing plumbing dropped without teardown: the routes go with the TUN, \
                 the rule is adopted and removed by the next run"
            );
        }
    }
}
