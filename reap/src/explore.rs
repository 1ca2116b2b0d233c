//! One exploration: the candidate order, which pairs were tried in the current round,
//! and the probe pacing (RFC 5534 §4.3, §6.5).
//!
//! Pacing, per phase (a phase starts on entering Exploring from Operational, and again
//! on entering InboundOk): the first [`Config::initial_probes`] transmissions are
//! [`Config::initial_probe_timeout`] apart, then each gap grows by
//! [`Config::backoff_factor`] up to [`Config::max_probe_timeout`]; every gap is
//! jittered by ±[`Config::probe_jitter`]. With the defaults the probes of a phase leave
//! at about 0, 0.5, 1, 1.5, 2.5, 4.5, 8.5, 16.5, 32.5, 64.5, 124.5 s, … (RFC 5534 §4.3).
//! A transmission is one probe, or [`Config::burst`] probes for the first one of a phase.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::locator::{FailedPlacement, Pair};

/// The state of one exploration.
#[derive(Debug, Clone)]
pub(crate) struct Exploration {
    /// When the exploration began (for [`Event::Recovered`](crate::Event::Recovered)).
    pub started_at: Instant,
    /// The pair whose failure started it (our current pair at the time).
    pub failed: Option<Pair>,
    /// Where the failed pair sits in the order.
    pub placement: FailedPlacement,
    /// Candidate pairs, best first.
    order: Vec<Pair>,
    /// `tried[i]`: `order[i]` was probed in the current round.
    tried: Vec<bool>,
    /// When each pair of `order` was last probed.
    last_probed: Vec<Option<Instant>>,
    /// Completed rounds over all candidates (RFC 5534 §4.3 "retry the process").
    pub rounds: u32,
    /// Transmissions made in the current phase; drives the back-off.
    pub transmissions: u32,
    /// Since when the gap has been at the cap (for the give-up).
    pub cap_since: Option<Instant>,
    /// Probes sent since the gap reached the cap.
    pub probes_at_cap: usize,
    /// We stopped probing (see [`Config::give_up_at_cap`]).
    pub given_up: bool,
}

impl Exploration {
    /// A new exploration over `order`.
    pub fn new(
        now: Instant,
        failed: Option<Pair>,
        placement: FailedPlacement,
        order: Vec<Pair>,
    ) -> Self {
        let tried = vec![false; order.len()];
        Self {
            started_at: now,
            failed,
            placement,
            order,
            last_probed: vec![None; tried.len()],
            tried,
            rounds: 0,
            transmissions: 0,
            cap_since: None,
            probes_at_cap: 0,
            given_up: false,
        }
    }

    /// The candidate order.
    pub fn order(&self) -> &[Pair] {
        &self.order
    }

    /// Replaces the order (locators changed), keeping the "tried" marks and probe times
    /// of pairs that remain candidates.
    pub fn rebuild(&mut self, order: Vec<Pair>) {
        let old = |p: &Pair| self.order.iter().position(|q| q == p);
        let tried = order
            .iter()
            .map(|p| old(p).is_some_and(|i| self.tried[i]))
            .collect();
        let last = order
            .iter()
            .map(|p| old(p).and_then(|i| self.last_probed[i]))
            .collect();
        self.order = order;
        self.tried = tried;
        self.last_probed = last;
    }

    /// Whether `p` was already probed in this round.
    #[cfg(test)]
    pub fn was_tried(&self, p: &Pair) -> bool {
        self.order
            .iter()
            .position(|q| q == p)
            .is_some_and(|i| self.tried[i])
    }

    /// The pair for the next probe, marking it tried.
    ///
    /// `prefer` is the reverse of the pair the peer was just heard on. It is taken if it
    /// is a candidate not yet tried in this round, or tried no later than `stale_before`
    /// (hearing the peer on it is news when our last probe on it is old: the path may
    /// have healed since). Otherwise the first candidate not yet tried in this round is
    /// taken; when every candidate has been tried, a new round starts (RFC 5534 §4.3
    /// "retry the process as necessary"). `None` only if there is no candidate at all.
    pub fn next_pair(
        &mut self,
        now: Instant,
        prefer: Option<Pair>,
        stale_before: Option<Instant>,
    ) -> Option<Pair> {
        if self.order.is_empty() {
            return None;
        }
        if let Some(p) = prefer
            && let Some(i) = self.order.iter().position(|q| *q == p)
        {
            let old = match (self.last_probed[i], stale_before) {
                (Some(t), Some(s)) => t <= s,
                _ => false,
            };
            if !self.tried[i] || old {
                self.tried[i] = true;
                self.last_probed[i] = Some(now);
                return Some(p);
            }
        }
        let i = match self.tried.iter().position(|t| !t) {
            Some(i) => i,
            None => {
                self.rounds += 1;
                self.tried.iter_mut().for_each(|t| *t = false);
                0
            }
        };
        self.tried[i] = true;
        self.last_probed[i] = Some(now);
        Some(self.order[i])
    }

    /// Starts a new phase: the pacing restarts at the initial rate.
    pub fn reset_pacing(&mut self) {
        self.transmissions = 0;
        self.cap_since = None;
        self.probes_at_cap = 0;
    }

    /// Whether to give up now: the gap has been at the cap for at least `limit`, and
    /// every candidate has been probed at least once at the cap rate, so a path that
    /// healed while we backed off has had its chance.
    pub fn should_give_up(&self, now: Instant, limit: Duration) -> bool {
        self.cap_since.is_some_and(|t| {
            now.duration_since(t) >= limit && self.probes_at_cap >= self.order.len()
        })
    }

    /// How many transmissions go at the initial rate in this phase: the Number of
    /// Initial Probes (RFC 5534 §4.3), or in InboundOk with
    /// [`Config::inbound_ok_full_round`], at least one per candidate.
    pub fn initial_count(&self, cfg: &Config, inbound_ok: bool) -> u32 {
        if inbound_ok && cfg.inbound_ok_full_round {
            let n = u32::try_from(self.order.len()).unwrap_or(u32::MAX);
            cfg.initial_probes.max(n)
        } else {
            cfg.initial_probes
        }
    }

    /// Carries the back-off over from a phase with `from` initial transmissions to one
    /// with `to`, keeping the current gap (InboundOk falling back to Exploring).
    pub fn rebase(&mut self, from: u32, to: u32) {
        self.transmissions = if self.transmissions > from {
            to + (self.transmissions - from)
        } else {
            self.transmissions.min(to)
        };
    }

    /// The un-jittered gap after the current number of transmissions: the initial
    /// timeout for the first `initial` ones, then exponential back-off capped at
    /// [`Config::max_probe_timeout`] (RFC 5534 §4.3).
    pub fn base_gap(&self, cfg: &Config, initial: u32) -> Duration {
        if self.transmissions < initial {
            return cfg.initial_probe_timeout;
        }
        let steps = self.transmissions - initial + 1;
        let factor = cfg.backoff_factor.powi(steps.min(64) as i32);
        let secs = cfg.initial_probe_timeout.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= cfg.max_probe_timeout.as_secs_f64() {
            cfg.max_probe_timeout
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn p(i: u16) -> Pair {
        Pair::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0xa, i, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0xb, 1, 0, 0, 0, 1),
        )
    }

    #[test]
    fn schedule_matches_rfc_defaults() {
        // RFC 5534 §4.3: 4 probes 0.5 s apart, then doubling up to 60 s.
        let cfg = Config::default();
        let mut e = Exploration::new(
            // Any instant works here; the gap does not depend on it.
            crate::testutil::epoch(),
            None,
            FailedPlacement::Last,
            vec![p(1)],
        );
        let mut gaps = Vec::new();
        for _ in 0..12 {
            e.transmissions += 1;
            gaps.push(e.base_gap(&cfg, 4).as_secs_f64());
        }
        assert_eq!(
            gaps,
            [
                0.5, 0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0
            ]
        );
    }

    #[test]
    fn prefer_then_order_then_new_round() {
        let t0 = crate::testutil::epoch();
        let t = |s: u64| t0 + Duration::from_secs(s);
        let mut e = Exploration::new(t0, None, FailedPlacement::Last, vec![p(1), p(2), p(3)]);
        assert_eq!(e.next_pair(t(0), Some(p(2)), None), Some(p(2)));
        assert_eq!(
            e.next_pair(t(1), Some(p(2)), None),
            Some(p(1)),
            "tried: skip"
        );
        assert_eq!(e.next_pair(t(2), None, None), Some(p(3)));
        assert_eq!(e.rounds, 0);
        assert_eq!(e.next_pair(t(3), None, None), Some(p(1)), "new round");
        assert_eq!(e.rounds, 1);
        assert_eq!(
            e.next_pair(t(4), Some(p(9)), None),
            Some(p(2)),
            "unknown ignored"
        );
        // p(3) was probed at t(2): heard again later, it is retried only once that probe
        // is old.
        assert_eq!(e.next_pair(t(20), Some(p(1)), Some(t(2))), Some(p(3)));
        assert_eq!(
            e.next_pair(t(21), Some(p(1)), Some(t(5))),
            Some(p(1)),
            "old news"
        );
        e.rebuild(vec![p(3), p(2)]);
        assert!(e.was_tried(&p(2)));
        assert!(e.was_tried(&p(3)));
        assert_eq!(e.next_pair(t(22), None, None), Some(p(3)), "new round");
    }
}
