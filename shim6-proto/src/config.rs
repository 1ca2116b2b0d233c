//! Endpoint configuration and the RFC 5533 §14 constants.

use std::time::Duration;

use crate::error::ApiMisuse;

/// I1 retransmissions before giving up (RFC 5533 §14 `I1_RETRIES_MAX`).
pub const I1_RETRIES_MAX: u32 = 4;
/// First I1 retransmission timeout (RFC 5533 §14 `I1_TIMEOUT`).
pub const I1_TIMEOUT: Duration = Duration::from_secs(4);
/// Hold-down after an establishment without answer (RFC 5533 §14 `NO_R1_HOLDDOWN_TIME`).
pub const NO_R1_HOLDDOWN_TIME: Duration = Duration::from_secs(60);
/// Hold-down after ICMP "unrecognized Next Header" (RFC 5533 §14 `ICMP_HOLDDOWN_TIME`).
pub const ICMP_HOLDDOWN_TIME: Duration = Duration::from_secs(600);
/// First I2 retransmission timeout (RFC 5533 §14 `I2_TIMEOUT`).
pub const I2_TIMEOUT: Duration = Duration::from_secs(4);
/// I2 retransmissions before falling back to I1 (RFC 5533 §14 `I2_RETRIES_MAX`).
pub const I2_RETRIES_MAX: u32 = 2;
/// First I2bis retransmission timeout (RFC 5533 §14 `I2bis_TIMEOUT`).
pub const I2BIS_TIMEOUT: Duration = Duration::from_secs(4);
/// I2bis retransmissions before falling back to I1 (RFC 5533 §14 `I2bis_RETRIES_MAX`;
/// digest §7.7).
pub const I2BIS_RETRIES_MAX: u32 = 2;
/// Minimum time a responder keeps accepting its validators (RFC 5533 §14
/// `VALIDATOR_MIN_LIFETIME`).
pub const VALIDATOR_MIN_LIFETIME: Duration = Duration::from_secs(30);
/// First Update Request retransmission timeout (RFC 5533 §14 `UPDATE_TIMEOUT`).
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(4);
/// Cap of the Update Request back-off (RFC 5533 §14 `MAX_UPDATE_TIMEOUT`).
pub const MAX_UPDATE_TIMEOUT: Duration = Duration::from_secs(120);
/// Idle time before a context is garbage-collected: RFC 5533 §7.20 recommends at least
/// 5 minutes of quiescence; `LinShim6` uses 10 minutes (digest §1.14, §8).
pub const DEFAULT_TEARDOWN_IDLE: Duration = Duration::from_secs(600);
/// Hop Limit of the control messages we send.
pub const HOP_LIMIT: u8 = 64;

/// A token bucket's shape: `burst` tokens, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens refilled per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

/// How an [`Endpoint`](crate::Endpoint) behaves. `Default` gives the RFC values.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of the endpoint's ChaCha20 generator (context tags, nonces, validator
    /// secrets, per-context REAP seeds). The shell fills it from OS entropy; tests pass
    /// fixed seeds. `None` makes [`Endpoint::new`](crate::Endpoint::new) fail.
    pub rng_seed: Option<[u8; 32]>,
    /// REAP configuration for every context (RFC 5534 §7).
    pub reap: reap::Config,
    /// How long a Responder Nonce (and its validator) stays acceptable. At least
    /// [`VALIDATOR_MIN_LIFETIME`] (RFC 5533 §7.13); the secret rotates every lifetime.
    pub validator_lifetime: Duration,
    /// Rate of R1bis messages (RFC 5533 §7.17 sets none; digest §7.12 recommends one
    /// like ICMPv6's).
    pub r1bis_rate: RateLimit,
    /// Rate of Error messages (RFC 5533 §5.14; digest §7.10, §7.12).
    pub error_rate: RateLimit,
    /// Idle time after which a context is torn down (RFC 5533 §7.20).
    pub teardown_idle: Duration,
    /// Most contexts the table holds; establishment beyond it fails with
    /// [`ApiMisuse::Config`], and a responder drops I2s it cannot store.
    pub max_contexts: usize,
    /// Run REAP on established contexts (RFC 5534). Off only for tests of the
    /// handshake alone.
    pub enable_reap: bool,
    /// Number the Locator List verification methods as RFC 5533 §17 (IANA) does,
    /// 1 = CGA and 2 = HBA, instead of §5.15.2 Table 4 (1 = HBA, 2 = CGA, what LinShim6
    /// and Wireshark use). Digest §7.2 recommends Table 4 and this switch; both ends
    /// must agree.
    pub iana_verification_methods: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rng_seed: None,
            reap: reap::Config::default(),
            validator_lifetime: Duration::from_secs(60),
            r1bis_rate: RateLimit {
                per_second: 10.0,
                burst: 10.0,
            },
            error_rate: RateLimit {
                per_second: 10.0,
                burst: 10.0,
            },
            teardown_idle: DEFAULT_TEARDOWN_IDLE,
            max_contexts: 1 << 22,
            enable_reap: true,
            iana_verification_methods: false,
        }
    }
}

impl Config {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`ApiMisuse::NoSeed`] without a seed; [`ApiMisuse::Config`] for a validator
    /// lifetime below [`VALIDATOR_MIN_LIFETIME`], a non-positive rate, or an invalid REAP
    /// configuration.
    pub fn validate(&self) -> Result<[u8; 32], ApiMisuse> {
        let seed = self.rng_seed.ok_or(ApiMisuse::NoSeed)?;
        if self.validator_lifetime < VALIDATOR_MIN_LIFETIME {
            return Err(ApiMisuse::Config(
                "validator_lifetime below VALIDATOR_MIN_LIFETIME (30 s, RFC 5533 §14)".into(),
            ));
        }
        for (what, r) in [
            ("r1bis_rate", self.r1bis_rate),
            ("error_rate", self.error_rate),
        ] {
            if !(r.per_second > 0.0 && r.burst >= 1.0) {
                return Err(ApiMisuse::Config(format!(
                    "{what}: per_second must be > 0 and burst >= 1"
                )));
            }
        }
        self.reap
            .validate()
            .map_err(|e| ApiMisuse::Config(format!("reap: {e}")))?;
        Ok(seed)
    }
}
