//! The stateless responder's validator (RFC 5533 §7.10.1, §7.17.1; digest §1.7, §7.5).
//!
//! The Responder Nonce is a counter that advances once per second since the endpoint was
//! created, from a random base. The validator is HMAC-SHA-256 (RFC 2104), truncated to
//! [`VALIDATOR_LEN`] octets, keyed by a secret that rotates every validator lifetime, over:
//! - R1: the nonce, the Initiator Context Tag, both ULIDs, the locators (only when they
//!   differ from the ULIDs) and the FII (0 when absent) — the §7.10.1 inputs (digest §7.5:
//!   not the Initiator Nonce, which the I2 may change, §7.11);
//! - R1bis: the nonce, the Packet Context Tag and the triggering packet's locators
//!   (§7.17.1).
//!
//! A nonce is *recent* while younger than the lifetime (≥ `VALIDATOR_MIN_LIFETIME`,
//! RFC 5533 §7.13); the current and the previous secret cover that window, so nothing is
//! stored per initiator: an I1 flood creates no state.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use openssl::sha::Sha256;
use rand_core::RngCore;
use shim6_wire::shim6::ContextTag;

use crate::error::PeerMisbehaved;

/// Octets of the validators we send (128 bits of HMAC-SHA-256).
pub const VALIDATOR_LEN: usize = 16;

/// One second per Responder Nonce step.
const TICK: Duration = Duration::from_secs(1);

/// What a validator is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidatorInput {
    /// R1 validator (RFC 5533 §7.10.1).
    R1 {
        /// Initiator Context Tag from the I1 (and I2).
        init_ct: ContextTag,
        /// Responder's ULID (ours).
        ulid_responder: Ipv6Addr,
        /// Initiator's ULID.
        ulid_initiator: Ipv6Addr,
        /// The IPv6 (src, dst) when they differ from the ULIDs.
        locators: Option<(Ipv6Addr, Ipv6Addr)>,
        /// FII, 0 when absent.
        fii: u32,
    },
    /// R1bis validator (RFC 5533 §7.17.1).
    R1bis {
        /// The Packet Context Tag (the tag found in the triggering packet).
        packet_tag: ContextTag,
        /// The triggering packet's source (the peer's locator).
        src: Ipv6Addr,
        /// The triggering packet's destination (our locator).
        dst: Ipv6Addr,
    },
}

/// The rotating secrets and the nonce counter.
#[derive(Debug)]
pub struct Validators {
    start: Instant,
    base: u32,
    lifetime_ticks: u64,
    epoch: u64,
    current: [u8; 32],
    previous: [u8; 32],
}

impl Validators {
    /// Fresh secrets drawn from `rng`, counter started at `now`.
    pub fn new(now: Instant, lifetime: Duration, rng: &mut impl RngCore) -> Self {
        let mut current = [0u8; 32];
        let mut previous = [0u8; 32];
        rng.fill_bytes(&mut current);
        rng.fill_bytes(&mut previous);
        Self {
            start: now,
            base: rng.next_u32(),
            lifetime_ticks: lifetime.as_secs().max(1),
            epoch: 0,
            current,
            previous,
        }
    }

    fn ticks(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs() / TICK.as_secs()
    }

    /// Rotates the secret when `now` entered a new epoch (one lifetime long). Two epochs
    /// or more later, both secrets are replaced: nothing old stays acceptable.
    fn rotate(&mut self, now: Instant, rng: &mut impl RngCore) {
        let epoch = self.ticks(now) / self.lifetime_ticks;
        if epoch == self.epoch {
            return;
        }
        if epoch == self.epoch + 1 {
            self.previous = self.current;
        } else {
            rng.fill_bytes(&mut self.previous);
        }
        rng.fill_bytes(&mut self.current);
        self.epoch = epoch;
    }

    /// The Responder Nonce to send now and its validator.
    pub fn issue(
        &mut self,
        now: Instant,
        rng: &mut impl RngCore,
        input: &ValidatorInput,
    ) -> (u32, [u8; VALIDATOR_LEN]) {
        self.rotate(now, rng);
        let ticks = self.ticks(now);
        let nonce = self.base.wrapping_add(ticks as u32);
        (nonce, mac(&self.current, nonce, input))
    }

    /// Checks a Responder Nonce and validator returned in an I2 / I2bis
    /// (RFC 5533 §7.13, §7.18): the nonce must be recent and the validator ours.
    ///
    /// # Errors
    /// [`PeerMisbehaved::StaleResponderNonce`] for a nonce from the future or older than
    /// the lifetime; [`PeerMisbehaved::ValidatorMismatch`] when the recomputation
    /// differs.
    pub fn check(
        &mut self,
        now: Instant,
        rng: &mut impl RngCore,
        nonce: u32,
        input: &ValidatorInput,
        validator: &[u8],
    ) -> Result<(), PeerMisbehaved> {
        self.rotate(now, rng);
        let now_ticks = self.ticks(now);
        let issued = u64::from(nonce.wrapping_sub(self.base));
        // The counter only moves forward: a nonce "from the future" was never issued
        // (the u32 wrap would take 136 years).
        if issued > now_ticks {
            return Err(PeerMisbehaved::StaleResponderNonce);
        }
        // Recent = younger than the lifetime (RFC 5533 §7.13 SHOULD accept ≥ 30 s).
        if now_ticks - issued >= self.lifetime_ticks {
            return Err(PeerMisbehaved::StaleResponderNonce);
        }
        let key = match issued / self.lifetime_ticks {
            e if e == self.epoch => &self.current,
            e if e + 1 == self.epoch => &self.previous,
            // Unreachable after the age check (age < lifetime spans at most two epochs);
            // rejecting is the safe answer anyway.
            _ => return Err(PeerMisbehaved::StaleResponderNonce),
        };
        let expected = mac(key, nonce, input);
        if constant_time_eq(&expected, validator) {
            Ok(())
        } else {
            Err(PeerMisbehaved::ValidatorMismatch)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA-256 (RFC 2104) over the nonce and the input, truncated.
fn mac(key: &[u8; 32], nonce: u32, input: &ValidatorInput) -> [u8; VALIDATOR_LEN] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut h = Sha256::new();
    h.update(&ipad);
    h.update(&nonce.to_be_bytes());
    match input {
        ValidatorInput::R1 {
            init_ct,
            ulid_responder,
            ulid_initiator,
            locators,
            fii,
        } => {
            h.update(b"R1");
            h.update(&init_ct.to_bytes());
            h.update(&ulid_responder.octets());
            h.update(&ulid_initiator.octets());
            if let Some((s, d)) = locators {
                h.update(&s.octets());
                h.update(&d.octets());
            }
            h.update(&fii.to_be_bytes());
        }
        ValidatorInput::R1bis {
            packet_tag,
            src,
            dst,
        } => {
            h.update(b"R1bis");
            h.update(&packet_tag.to_bytes());
            h.update(&src.octets());
            h.update(&dst.octets());
        }
    }
    let inner = h.finish();
    let mut h = Sha256::new();
    h.update(&opad);
    h.update(&inner);
    let full = h.finish();
    let mut out = [0u8; VALIDATOR_LEN];
    out.copy_from_slice(&full[..VALIDATOR_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn input() -> ValidatorInput {
        ValidatorInput::R1 {
            init_ct: ContextTag::new(7).unwrap(),
            ulid_responder: "2001:db8::1".parse().unwrap(),
            ulid_initiator: "2001:db8::2".parse().unwrap(),
            locators: None,
            fii: 0,
        }
    }

    #[test]
    fn validator_accepted_within_lifetime_rejected_after() {
        #[allow(clippy::disallowed_methods)] // test epoch only; the code under test takes `now`
        let t0 = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let mut v = Validators::new(t0, Duration::from_secs(60), &mut rng);
        let (n, mac) = v.issue(t0 + Duration::from_secs(55), &mut rng, &input());
        // Across a secret rotation (epoch 0 -> 1) but within the lifetime.
        assert_eq!(
            v.check(t0 + Duration::from_secs(100), &mut rng, n, &input(), &mac),
            Ok(())
        );
        assert_eq!(
            v.check(t0 + Duration::from_secs(115), &mut rng, n, &input(), &mac),
            Err(PeerMisbehaved::StaleResponderNonce)
        );
    }

    #[test]
    fn validator_bound_to_inputs_and_nonce() {
        #[allow(clippy::disallowed_methods)] // test epoch only
        let t0 = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let mut v = Validators::new(t0, Duration::from_secs(60), &mut rng);
        let (n, mac) = v.issue(t0 + Duration::from_secs(3), &mut rng, &input());
        let other = ValidatorInput::R1 {
            init_ct: ContextTag::new(7).unwrap(),
            ulid_responder: "2001:db8::1".parse().unwrap(),
            ulid_initiator: "2001:db8::2".parse().unwrap(),
            locators: None,
            fii: 1,
        };
        let t = t0 + Duration::from_secs(4);
        assert_eq!(
            v.check(t, &mut rng, n, &other, &mac),
            Err(PeerMisbehaved::ValidatorMismatch)
        );
        assert_eq!(
            v.check(t, &mut rng, n.wrapping_sub(1), &input(), &mac),
            Err(PeerMisbehaved::ValidatorMismatch)
        );
        assert_eq!(
            v.check(t, &mut rng, n.wrapping_add(5), &input(), &mac),
            Err(PeerMisbehaved::StaleResponderNonce)
        );
        let mut bad = mac;
        bad[0] ^= 1;
        assert_eq!(
            v.check(t, &mut rng, n, &input(), &bad),
            Err(PeerMisbehaved::ValidatorMismatch)
        );
    }
}
