//! REAP's constants and its per-context configuration (RFC 5534 §7).
//!
//! Every default is the RFC's value or its recommended range; the two exploration
//! improvements ([`Config::orthogonal_first`], [`Config::burst`]) and the give-up
//! ([`Config::give_up_at_cap`]) are ours and documented where they deviate.

use core::fmt;
use std::time::Duration;

/// Default Send Timeout: 15 s (RFC 5534 §7).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Default Keepalive Timeout when the peer sent no Keepalive Timeout option: 15 s
/// (RFC 5534 §7: "X seconds, where X is the peer's Send Timeout ... 15 seconds if the
/// peer didn't send a Keepalive Timeout option").
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// Initial Probe Timeout: 0.5 s between the first probes (RFC 5534 §4.3, §7).
pub const INITIAL_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Number of Initial Probes: 4 probes sent at the initial rate before back-off
/// (RFC 5534 §4.3, §7).
pub const INITIAL_PROBES: u32 = 4;

/// Max Probe Timeout: 60 s, the cap of the exponential back-off (RFC 5534 §4.3).
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Smallest alternative Send Timeout the RFC recommends: 10 s (RFC 5534 §7).
pub const RECOMMENDED_MIN_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest alternative Send Timeout the RFC recommends: 100 s, the default TCP R2
/// timeout (RFC 5534 §7, RFC 1122).
pub const RECOMMENDED_MAX_SEND_TIMEOUT: Duration = Duration::from_secs(100);

/// The per-context configuration of a [`Reap`](crate::Reap) instance.
///
/// [`Config::default`] is RFC 5534 §7 plus our two exploration improvements
/// (orthogonal-first ordering on, burst off) and a give-up after five minutes of
/// probing at the 60 s cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Send Timeout: how long sent payload may stay unanswered before the current pair
    /// is suspected to have failed (RFC 5534 §4.1 item 6, §7; default 15 s).
    ///
    /// A non-default value MUST be announced to the peer in a Keepalive Timeout option
    /// (RFC 5534 §5.3); [`Reap::keepalive_timeout_option`](crate::Reap::keepalive_timeout_option)
    /// says what to send.
    pub send_timeout: Duration,
    /// Randomisation of the Send Timer: each start draws a duration uniformly from
    /// `[(1 − send_timeout_jitter) · send_timeout, send_timeout]`, because the timer
    /// values "SHOULD be randomized in order to prevent synchronization" (RFC 5534 §4.1).
    /// Drawing only below the nominal value keeps the announced Keepalive Timeout an
    /// upper bound of what the peer must sustain. Default 0.1.
    pub send_timeout_jitter: f64,
    /// Keepalive Timeout used until the peer announces its own Send Timeout in a
    /// Keepalive Timeout option (RFC 5534 §7; default 15 s).
    pub default_keepalive_timeout: Duration,
    /// The Keepalive Interval as fractions of the Keepalive Timeout; each interval is
    /// drawn uniformly from this range. RFC 5534 §4.1 item 1 recommends one-half to
    /// one-third. Default `(1/3, 1/2)`.
    pub keepalive_interval: (f64, f64),
    /// Interval between the first [`Config::initial_probes`] probes (RFC 5534 §4.3; 0.5 s).
    pub initial_probe_timeout: Duration,
    /// How many probes go out at the initial rate before the back-off (RFC 5534 §4.3; 4).
    pub initial_probes: u32,
    /// Cap of the exponential back-off (RFC 5534 §4.3; 60 s).
    pub max_probe_timeout: Duration,
    /// Multiplier of the back-off. RFC 5534 §4.3: "Typically, each increase doubles the
    /// time, but this specification does not mandate a particular increase." Default 2.
    pub backoff_factor: f64,
    /// Jitter of every probe interval: each is multiplied by a factor drawn uniformly
    /// from `[1 − probe_jitter, 1 + probe_jitter]` so that contexts failing together do
    /// not probe in lock-step (RFC 5534 §4.1 "SHOULD be randomized", §9). Default 0.1.
    pub probe_jitter: f64,
    /// Improvement: order candidate pairs so that those sharing no locator with the
    /// failed pair come first, then those sharing one, the failed pair last (within
    /// each preference class, RFC 5534 §4.3). A failure usually takes one provider or one
    /// interface down with it, so an orthogonal pair is the best first guess. Default on.
    pub orthogonal_first: bool,
    /// Improvement: how many probes to send at once, on distinct pairs, when a new
    /// exploration phase starts (entering Exploring, entering InboundOk). The first of
    /// them the peer hears is reported first and wins, so the new pair is the one with
    /// the lowest delay among the burst. 1 is the RFC's plain sequential exploration
    /// (RFC 5534 §4.3 "MUST perform this process sequentially"); larger values deviate
    /// from it deliberately, once per phase. Default 1, at most
    /// [`MAX_PROBE_RECORDS`](shim6_wire::shim6::probe::MAX_PROBE_RECORDS).
    pub burst: usize,
    /// Improvement: in InboundOk, keep the initial probe rate for at least one probe per
    /// candidate pair before backing off (instead of the 4 of RFC 5534 §7). In InboundOk
    /// the peer is demonstrably alive and probing us, so the signalling-storm concern
    /// behind the back-off (§4.3: outages of whole sites) does not apply, while backing
    /// off after 4 probes leaves most candidates of a 3×3 set untried when the Send Timer
    /// sends us back to Exploring 15 s later. Probes stay sequential. Default on.
    pub inbound_ok_full_round: bool,
    /// Smallest gap between two probes sent as a *reaction* to probes received in the
    /// same state (e.g. InboundOk answering each probe of the peer's burst, RFC 5534
    /// §6.7/§6.8). Reactions that change our state are never suppressed. This is a rate
    /// limit against signalling storms (RFC 5534 §4.3); default 200 ms, below the 0.5 s
    /// spacing of the peer's own sequential probes.
    pub min_probe_gap: Duration,
    /// Give-up: once the back-off has reached [`Config::max_probe_timeout`] and the node
    /// has kept probing at that rate for this long while still Exploring — and for at
    /// least one probe per candidate pair, so that every pair is tried again at the cap
    /// rate — it stops probing and reports
    /// [`Event::PeerUnreachable`](crate::Event::PeerUnreachable).
    /// RFC 5534 §4.3 keeps probing "until ... the Shim6 context is garbage collected"
    /// and calls reaching the cap a hint that the context is no longer usable; this turns
    /// the hint into an event so that the caller can garbage-collect. `None` probes
    /// forever. Default 300 s (five probes at the cap, or more with more than five
    /// candidate pairs).
    pub give_up_at_cap: Option<Duration>,
    /// Pairs involving a locator flagged BROKEN in the Locator Preferences (RFC 5533
    /// §5.15.3) are left out entirely when `true` (default), tried last when `false`.
    pub exclude_broken: bool,
    /// How many "probe sent" records a Probe carries: the probe itself plus recent
    /// earlier probes not yet reported by the peer (RFC 5534 §5.2, §6.1). 1 ..= 15;
    /// default 8. Besides following §6.1, the extra records let the peer recognise our
    /// late Exploring probes once we have moved on (see
    /// [`Stats::stale_probes`](crate::Stats::stale_probes)), so keep it above
    /// [`Config::burst`].
    pub max_sent_records: usize,
    /// After an ICMP hint has triggered a check of the current pair, further ICMP hints
    /// are ignored for this long: ICMP is easy to forge (RFC 5534 §3.3, §8), so it must
    /// not be able to keep us exploring. Default 15 s (one Send Timeout).
    pub icmp_holddown: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            send_timeout: DEFAULT_SEND_TIMEOUT,
            send_timeout_jitter: 0.1,
            default_keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            keepalive_interval: (1.0 / 3.0, 0.5),
            initial_probe_timeout: INITIAL_PROBE_TIMEOUT,
            initial_probes: INITIAL_PROBES,
            max_probe_timeout: MAX_PROBE_TIMEOUT,
            backoff_factor: 2.0,
            probe_jitter: 0.1,
            orthogonal_first: true,
            burst: 1,
            inbound_ok_full_round: true,
            min_probe_gap: Duration::from_millis(200),
            give_up_at_cap: Some(Duration::from_secs(300)),
            exclude_broken: true,
            max_sent_records: 8,
            icmp_holddown: DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// A [`Config`] value that cannot work, found by [`Config::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid REAP config: {} {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks that the values can work together. It does not enforce the RFC's
    /// recommendations (10 s ≤ Send Timeout ≤ 100 s), which are advice, not limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, problem| Err(ConfigError { field, problem });
        if self.send_timeout.is_zero() {
            return err("send_timeout", "is zero");
        }
        if !(0.0..1.0).contains(&self.send_timeout_jitter) {
            return err("send_timeout_jitter", "must be in [0, 1)");
        }
        if self.default_keepalive_timeout.is_zero() {
            return err("default_keepalive_timeout", "is zero");
        }
        let (lo, hi) = self.keepalive_interval;
        if !(lo > 0.0 && lo <= hi && hi < 1.0) {
            return err("keepalive_interval", "must satisfy 0 < low <= high < 1");
        }
        if self.initial_probe_timeout.is_zero() {
            return err("initial_probe_timeout", "is zero");
        }
        if self.initial_probes == 0 {
            return err("initial_probes", "is zero");
        }
        if self.max_probe_timeout < self.initial_probe_timeout {
            return err("max_probe_timeout", "is below initial_probe_timeout");
        }
        if !(self.backoff_factor >= 1.0 && self.backoff_factor.is_finite()) {
            return err("backoff_factor", "must be a finite number >= 1");
        }
        if !(0.0..1.0).contains(&self.probe_jitter) {
            return err("probe_jitter", "must be in [0, 1)");
        }
        if self.burst == 0 || self.burst > shim6_wire::shim6::probe::MAX_PROBE_RECORDS {
            return err("burst", "must be in 1 ..= 15");
        }
        if self.max_sent_records == 0
            || self.max_sent_records > shim6_wire::shim6::probe::MAX_PROBE_RECORDS
        {
            return err("max_sent_records", "must be in 1 ..= 15");
        }
        Ok(())
    }

    /// Whether the Send Timeout differs from the RFC default, in which case it MUST be
    /// announced to the peer (RFC 5534 §5.3).
    pub fn send_timeout_is_default(&self) -> bool {
        self.send_timeout == DEFAULT_SEND_TIMEOUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_rfc() {
        let c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        assert!(c.send_timeout_is_default());
        assert_eq!(c.initial_probes, 4);
        assert_eq!(c.initial_probe_timeout, Duration::from_millis(500));
        assert_eq!(c.max_probe_timeout, Duration::from_secs(60));
    }

    #[test]
    fn validate_names_the_field() {
        let c = Config {
            burst: 0,
            ..Config::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "burst");
        assert!(e.to_string().contains("burst"));
        let c = Config {
            keepalive_interval: (0.6, 0.5),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "keepalive_interval");
        let c = Config {
            backoff_factor: 0.5,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "backoff_factor");
    }
}
