//! The Sec parameter (RFC 3972 §2, read through RFC 4982 §3): the 3-bit security level
//! in the top of the interface identifier.
//!
//! RFC 4982 turned Sec into an index of the IANA "CGA SEC" registry, which names the
//! procedure (hash function, Hash2 length) for each value. Only `000`, `001`, `010` are
//! registered, all meaning the RFC 3972 SHA-1 procedure with 0, 16 or 32 Hash2 zero bits,
//! so this library supports Sec 0, 1 and 2 and refuses 3–7 (also on verification: a
//! value without a registered procedure cannot be verified, digest §7.19).

use core::fmt;

use crate::error::{Error, Result};

/// A supported Sec value: 0, 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sec(u8);

impl Sec {
    /// Sec 0: no Hash2 condition ("SHA-1_0hash2bits", RFC 4982 §8).
    pub const ZERO: Self = Self(0);
    /// Sec 1: 16 leading zero bits of Hash2 ("SHA-1_16hash2bits").
    pub const ONE: Self = Self(1);
    /// Sec 2: 32 leading zero bits of Hash2 ("SHA-1_32hash2bits").
    pub const TWO: Self = Self(2);
    /// The largest value the 3-bit field can hold (RFC 3972 §2).
    pub const FIELD_MAX: u8 = 7;

    /// A supported Sec value, or [`Error::UnsupportedSec`] saying why not (without a
    /// time estimate; see [`SecRefusal::with_rate`]).
    pub fn new(value: u8) -> Result<Self> {
        if value <= 2 {
            Ok(Self(value))
        } else {
            Err(Error::UnsupportedSec(SecRefusal::new(value)))
        }
    }

    /// The numeric value.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// Leading zero bits Hash2 must have: 16·Sec (RFC 3972 §4 step 3).
    pub const fn zero_bits(self) -> u32 {
        16 * self.0 as u32
    }

    /// The condition on the first 32 bits of Hash2 as a mask (RFC 3972 §4 step 3):
    /// the leading 16·Sec bits must be zero.
    pub const fn mask(self) -> u32 {
        match self.0 {
            0 => 0,
            1 => 0xffff_0000,
            _ => 0xffff_ffff,
        }
    }

    /// Expected number of Hash2 computations to find a modifier: 2^(16·Sec).
    pub fn expected_hashes(self) -> f64 {
        expected_hashes(self.0)
    }
}

impl fmt::Display for Sec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// 2^(16·sec): the mean of the geometric number of tries at success probability 2^-16·sec.
pub fn expected_hashes(sec: u8) -> f64 {
    2f64.powi(16 * i32::from(sec))
}

/// Why a Sec value is refused, and what a search would cost at a given rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecRefusal {
    /// The value asked for.
    pub sec: u8,
    /// Hashes per second to base the time estimate on, if measured.
    pub rate: Option<f64>,
}

impl SecRefusal {
    /// A refusal without a time estimate.
    pub fn new(sec: u8) -> Self {
        Self { sec, rate: None }
    }

    /// The same refusal with a time estimate at `hashes_per_s`.
    pub fn with_rate(self, hashes_per_s: f64) -> Self {
        Self {
            rate: Some(hashes_per_s),
            ..self
        }
    }
}

impl fmt::Display for SecRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sec > Sec::FIELD_MAX {
            return write!(
                f,
                "Sec {} does not exist: it is a 3-bit field (0–7), and only 0, 1 and 2 are \
                 supported",
                self.sec
            );
        }
        let bits = 16 * u32::from(self.sec);
        write!(
            f,
            "Sec {} is not supported: RFC 4982 registers procedures for Sec 0, 1 and 2 only; \
             a Sec {} search needs 2^{bits} ≈ {:.1e} hashes on average",
            self.sec,
            self.sec,
            expected_hashes(self.sec)
        )?;
        if let Some(rate) = self.rate.filter(|r| *r > 0.0) {
            write!(
                f,
                ", about {} at the measured {:.1} M hashes/s",
                human_duration(expected_hashes(self.sec) / rate),
                rate / 1e6
            )?;
        }
        Ok(())
    }
}

/// A duration in seconds written for people: "3.2 s", "5 min", "4.1 h", "12 days",
/// "2.3e6 years".
pub fn human_duration(secs: f64) -> String {
    const MIN: f64 = 60.0;
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86400.0;
    const YEAR: f64 = 365.25 * DAY;
    if !secs.is_finite() {
        "forever".to_owned()
    } else if secs < 1e-3 {
        format!("{:.0} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else if secs < MIN {
        format!("{secs:.1} s")
    } else if secs < HOUR {
        format!("{:.1} min", secs / MIN)
    } else if secs < DAY {
        format!("{:.1} h", secs / HOUR)
    } else if secs < YEAR {
        format!("{:.0} days", secs / DAY)
    } else if secs < 1e4 * YEAR {
        format!("{:.0} years", secs / YEAR)
    } else {
        format!("{:.1e} years", secs / YEAR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_values() {
        assert_eq!(Sec::new(0).unwrap().mask(), 0);
        assert_eq!(Sec::new(1).unwrap().mask(), 0xffff_0000);
        assert_eq!(Sec::new(2).unwrap().zero_bits(), 32);
        assert_eq!(Sec::TWO.expected_hashes(), 4_294_967_296.0);
    }

    #[test]
    fn refusals_explain_themselves() {
        let Err(Error::UnsupportedSec(r)) = Sec::new(3) else {
            panic!("Sec 3 accepted")
        };
        let msg = r.with_rate(20e6).to_string();
        assert!(msg.contains("Sec 3 is not supported"), "{msg}");
        assert!(msg.contains("2^48"), "{msg}");
        // 2^48 / 20e6 s ≈ 163 days.
        assert!(msg.contains("163 days"), "{msg}");
        let msg = SecRefusal::new(9).to_string();
        assert!(msg.contains("3-bit field"), "{msg}");
        let msg = SecRefusal::new(7).with_rate(1e7).to_string();
        assert!(msg.contains("years"), "{msg}");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.0042), "4 ms");
        assert_eq!(human_duration(42.0), "42.0 s");
        assert_eq!(human_duration(7200.0), "2.0 h");
        assert_eq!(human_duration(f64::INFINITY), "forever");
    }
}
