//! Locators, locator pairs and the exploration order (RFC 5534 §3, §4.3).
//!
//! A [`Pair`] is always seen from *this* node: `local` is our address, `remote` the
//! peer's. A pair names the path `local → remote` when we send and the path
//! `remote → local` when a packet arrives on it; so "the reverse of the pair a probe
//! arrived on" is simply the same `Pair` value used for sending.

use core::cmp::Ordering;
use core::fmt;
use std::net::Ipv6Addr;

use crate::config::Config;
use crate::rng::Rng;

/// A locator pair as this node sees it (RFC 5534 §3.3, §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    /// Our locator: the source when we send, the destination when we receive.
    pub local: Ipv6Addr,
    /// The peer's locator: the destination when we send, the source when we receive.
    pub remote: Ipv6Addr,
}

impl Pair {
    /// A pair from our locator and the peer's.
    pub const fn new(local: Ipv6Addr, remote: Ipv6Addr) -> Self {
        Self { local, remote }
    }

    /// How many locators this pair shares with `other` (0, 1 or 2): the basis of the
    /// orthogonal-first ordering.
    pub fn shared_locators(&self, other: &Self) -> u8 {
        u8::from(self.local == other.local) + u8::from(self.remote == other.remote)
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.local, self.remote)
    }
}

/// The preference attached to a locator: Shim6 Locator Preferences for the peer's
/// locators (RFC 5533 §5.15.3), local policy for ours (RFC 5534 §4.3).
///
/// Priority and weight have DNS SRV semantics (RFC 2782): a lower priority is
/// preferred; among equal priorities a higher weight is proportionally more likely to be
/// tried first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Preference {
    /// Flag 0x01 BROKEN: the locator is known not to work (RFC 5533 §5.15.3).
    pub broken: bool,
    /// Flag 0x02 TRANSIENT: the locator is less stable, e.g. a care-of address.
    pub transient: bool,
    /// Priority, lower is preferred.
    pub priority: u8,
    /// Weight among locators of equal priority, higher is preferred.
    pub weight: u8,
}

impl Default for Preference {
    /// No flags, priority 0, weight 1: all locators equal, as when no Locator
    /// Preferences option was sent.
    fn default() -> Self {
        Self {
            broken: false,
            transient: false,
            priority: 0,
            weight: 1,
        }
    }
}

/// One locator with its preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Locator {
    /// The address.
    pub addr: Ipv6Addr,
    /// Its preference.
    pub pref: Preference,
}

impl Locator {
    /// A locator with the default (neutral) preference.
    pub fn new(addr: Ipv6Addr) -> Self {
        Self {
            addr,
            pref: Preference::default(),
        }
    }

    /// A locator with an explicit preference.
    pub fn with_pref(addr: Ipv6Addr, pref: Preference) -> Self {
        Self { addr, pref }
    }
}

/// Whether an address may be used as a locator at all: global unicast or unique local,
/// never unspecified, loopback, multicast or link-local (RFC 5534 §3.1 "available
/// address"). Site-local (`fec0::/10`) is deprecated and excluded too.
pub fn is_usable_address(a: &Ipv6Addr) -> bool {
    let seg0 = a.segments()[0];
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (seg0 & 0xffc0) == 0xfe80
        || (seg0 & 0xffc0) == 0xfec0)
}

/// Unique local addresses `fc00::/7` (RFC 4193).
fn is_ula(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xfe00) == 0xfc00
}

/// How the failed (or suspected) pair is placed in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailedPlacement {
    /// Tried last: the usual case, we believe it failed (LinShim6 does the same).
    Last,
    /// Tried first: the failure hint may be forged (ICMP, RFC 5534 §3.3), so check the
    /// current pair before looking elsewhere.
    First,
}

/// Builds the exploration order over all candidate pairs (RFC 5534 §4.3):
///
/// 1. prune pairs with unusable addresses (RFC 5534 §3.1) and, if
///    [`Config::exclude_broken`],
///    pairs with a BROKEN locator; locators in `down` are not locally operational
///    (RFC 5534 §3.2) and are pruned too;
/// 2. sort by: BROKEN last (when kept); RFC 3484 rule "prefer matching label"
///    reduced to "both ULA or both global"; local priority (local policy); peer priority
///    (Shim6 Locator Preferences); TRANSIENT locators after stable ones; then, with
///    [`Config::orthogonal_first`], the number of locators shared with `failed` (0 before 1);
///    then a weighted random draw among equals (RFC 2782 weights);
/// 3. place the failed pair last, or first for a check of a hint that may be forged.
pub(crate) fn exploration_order(
    locals: &[Locator],
    peers: &[Locator],
    down: &[Ipv6Addr],
    failed: Option<Pair>,
    placement: FailedPlacement,
    cfg: &Config,
    rng: &mut Rng,
) -> Vec<Pair> {
    let (orthogonal_first, exclude_broken) = (cfg.orthogonal_first, cfg.exclude_broken);
    struct Cand {
        pair: Pair,
        key: (bool, bool, u8, u8, u8, u8),
        weight: u32,
        draw: f64,
    }
    let mut cands: Vec<Cand> = Vec::new();
    for l in locals {
        if !is_usable_address(&l.addr) || down.contains(&l.addr) {
            continue;
        }
        for r in peers {
            if !is_usable_address(&r.addr) {
                continue;
            }
            let broken = l.pref.broken || r.pref.broken;
            if broken && exclude_broken {
                continue;
            }
            let pair = Pair::new(l.addr, r.addr);
            if Some(pair) == failed {
                continue; // placed separately below
            }
            let label_mismatch = is_ula(&l.addr) != is_ula(&r.addr);
            let transient = u8::from(l.pref.transient) + u8::from(r.pref.transient);
            let shared = match (orthogonal_first, failed) {
                (true, Some(f)) => pair.shared_locators(&f),
                _ => 0,
            };
            // RFC 2782: weight 0 entries have a very small chance; give them 1/256 of
            // a weight-1 entry by scaling everything.
            let weight =
                (u32::from(l.pref.weight) * 256).max(1) * (u32::from(r.pref.weight) * 256).max(1);
            cands.push(Cand {
                pair,
                key: (
                    broken,
                    label_mismatch,
                    l.pref.priority,
                    r.pref.priority,
                    transient,
                    shared,
                ),
                weight,
                draw: 0.0,
            });
        }
    }
    // Weighted random order among equal keys (Efraimidis–Spirakis: sort by u^(1/w)
    // descending), drawn in the deterministic candidate order so that a seed always
    // yields the same order.
    for c in &mut cands {
        let u = rng.unit().max(f64::MIN_POSITIVE);
        c.draw = u.powf(1.0 / f64::from(c.weight));
    }
    cands.sort_by(|a, b| {
        a.key
            .cmp(&b.key)
            .then_with(|| b.draw.partial_cmp(&a.draw).unwrap_or(Ordering::Equal))
            .then_with(|| a.pair.cmp(&b.pair))
    });
    let mut order: Vec<Pair> = cands.into_iter().map(|c| c.pair).collect();
    if let Some(f) = failed {
        let local_ok = locals.iter().any(|l| {
            l.addr == f.local
                && is_usable_address(&l.addr)
                && !down.contains(&l.addr)
                && !(exclude_broken && l.pref.broken)
        });
        let remote_ok = peers.iter().any(|r| {
            r.addr == f.remote && is_usable_address(&r.addr) && !(exclude_broken && r.pref.broken)
        });
        if local_ok && remote_ok {
            match placement {
                FailedPlacement::Last => order.push(f),
                FailedPlacement::First => order.insert(0, f),
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(i: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0xa, i, 0, 0, 0, 1)
    }
    fn b(i: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0xb, i, 0, 0, 0, 1)
    }
    fn locs(f: fn(u16) -> Ipv6Addr, n: u16) -> Vec<Locator> {
        (1..=n).map(|i| Locator::new(f(i))).collect()
    }

    #[test]
    fn orthogonal_first_then_shared_then_failed_last() {
        let mut rng = Rng::from_seed([7; 32]);
        let failed = Pair::new(a(1), b(1));
        let order = exploration_order(
            &locs(a, 3),
            &locs(b, 3),
            &[],
            Some(failed),
            FailedPlacement::Last,
            &Config::default(),
            &mut rng,
        );
        assert_eq!(order.len(), 9);
        for p in &order[..4] {
            assert_eq!(p.shared_locators(&failed), 0, "{p} in the first four");
        }
        for p in &order[4..8] {
            assert_eq!(p.shared_locators(&failed), 1, "{p} in the middle");
        }
        assert_eq!(order[8], failed);
    }

    #[test]
    fn failed_first_for_forgeable_hints() {
        let mut rng = Rng::from_seed([1; 32]);
        let failed = Pair::new(a(2), b(3));
        let order = exploration_order(
            &locs(a, 3),
            &locs(b, 3),
            &[],
            Some(failed),
            FailedPlacement::First,
            &Config::default(),
            &mut rng,
        );
        assert_eq!(order[0], failed);
        assert_eq!(order[1].shared_locators(&failed), 0);
    }

    #[test]
    fn broken_excluded_or_last_and_priority_respected() {
        let mut rng = Rng::from_seed([2; 32]);
        let mut peers = locs(b, 3);
        peers[0].pref.broken = true;
        peers[2].pref.priority = 0;
        peers[1].pref.priority = 5;
        let order = exploration_order(
            &locs(a, 2),
            &peers,
            &[],
            None,
            FailedPlacement::Last,
            &Config::default(),
            &mut rng,
        );
        assert_eq!(order.len(), 4, "BROKEN b1 excluded");
        assert!(
            order[..2].iter().all(|p| p.remote == b(3)),
            "priority 0 first"
        );
        assert!(order[2..].iter().all(|p| p.remote == b(2)));
        let order = exploration_order(
            &locs(a, 2),
            &peers,
            &[],
            None,
            FailedPlacement::Last,
            &Config {
                exclude_broken: false,
                ..Config::default()
            },
            &mut rng,
        );
        assert_eq!(order.len(), 6);
        assert!(order[4..].iter().all(|p| p.remote == b(1)), "BROKEN last");
    }

    #[test]
    fn unusable_and_down_addresses_pruned() {
        let mut rng = Rng::from_seed([3; 32]);
        let mut locals = locs(a, 2);
        locals.push(Locator::new("fe80::1".parse().unwrap()));
        let order = exploration_order(
            &locals,
            &locs(b, 2),
            &[a(1)],
            None,
            FailedPlacement::Last,
            &Config::default(),
            &mut rng,
        );
        assert_eq!(order.len(), 2);
        assert!(order.iter().all(|p| p.local == a(2)));
    }

    #[test]
    fn weights_bias_the_order() {
        let mut peers = locs(b, 2);
        peers[0].pref.weight = 50;
        peers[1].pref.weight = 1;
        let mut first_b1 = 0;
        for s in 0..200u8 {
            let mut rng = Rng::from_seed([s; 32]);
            let order = exploration_order(
                &locs(a, 1),
                &peers,
                &[],
                None,
                FailedPlacement::Last,
                &Config::default(),
                &mut rng,
            );
            if order[0].remote == b(1) {
                first_b1 += 1;
            }
        }
        assert!(
            first_b1 > 180,
            "weight 50 vs 1 should almost always win: {first_b1}"
        );
    }

    #[test]
    fn usable_addresses() {
        assert!(is_usable_address(&a(1)));
        assert!(is_usable_address(&"fd00::1".parse().unwrap()));
        assert!(!is_usable_address(&"fe80::1".parse().unwrap()));
        assert!(!is_usable_address(&"::1".parse().unwrap()));
        assert!(!is_usable_address(&"ff02::1".parse().unwrap()));
        assert!(!is_usable_address(&Ipv6Addr::UNSPECIFIED));
    }
}
