//! The injected, seeded random number generator.
//!
//! REAP draws probe nonces (RFC 5534 §5.2: "at least moderately hard to guess ...
//! SHOULD be generated using a random number generator that is known to have good
//! randomness properties", RFC 4086), timer jitter and weighted orders from one
//! ChaCha20 stream per context, seeded by the caller. It never touches OS entropy or
//! the clock, so a seed reproduces a run exactly.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A seeded ChaCha20 generator with the few draws REAP needs.
#[derive(Debug, Clone)]
pub struct Rng(ChaCha20Rng);

impl Rng {
    /// A generator from a 32-octet seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ChaCha20Rng::from_seed(seed))
    }

    /// A generator from a 64-bit seed, expanded into a ChaCha20 key; convenient for
    /// simulations that enumerate seeds.
    pub fn from_u64(seed: u64) -> Self {
        Self(ChaCha20Rng::seed_from_u64(seed))
    }

    /// 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform draw from [0, 1) with 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        // Top 53 bits of a u64 scaled by 2^-53.
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform draw from `[lo, hi)` (returns `lo` when `hi <= lo`).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi <= lo {
            lo
        } else {
            lo + (hi - lo) * self.unit()
        }
    }

    /// A uniform index in `0..n`.
    ///
    /// # Panics
    /// If `n` is zero.
    pub fn index(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::index on an empty range");
        // Rejection sampling keeps the draw unbiased.
        let n64 = n as u64;
        let zone = u64::MAX - (u64::MAX % n64);
        loop {
            let v = self.0.next_u64();
            if v < zone {
                return (v % n64) as usize;
            }
        }
    }

    /// `d` scaled by a factor drawn uniformly from `[lo, hi)`.
    pub fn scale(&mut self, d: Duration, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(d.as_secs_f64() * self.uniform(lo, hi))
    }

    /// A fresh 32-octet seed drawn from this generator, to derive independent streams.
    pub fn fork_seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.0.fill_bytes(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::from_seed([9; 32]);
        let mut b = Rng::from_seed([9; 32]);
        for _ in 0..10 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
        let mut c = Rng::from_seed([10; 32]);
        assert_ne!(a.next_u64(), c.next_u64());
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rng::from_u64(1);
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let v = r.uniform(2.0, 3.0);
            assert!((2.0..3.0).contains(&v));
            assert!(r.index(7) < 7);
            let d = r.scale(Duration::from_secs(10), 0.9, 1.0);
            assert!(d >= Duration::from_secs(9) && d <= Duration::from_secs(10));
        }
        assert_eq!(r.uniform(5.0, 5.0), 5.0);
    }
}
