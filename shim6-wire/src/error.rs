//! The one error type of the wire layer.
//!
//! The variants are split by *what the receiver does next*: a truncated or badly sized
//! packet is dropped silently, a bad checksum is dropped and counted separately, and an
//! unrecognised type may deserve an answer (a Shim6 Error message, a MIPv6 Binding Error).

use core::fmt;

/// What is wrong with a buffer handed to a `parse` or `new_checked` function.
///
/// Every variant names the structure (`what`) so that logs and counters say more than
/// "malformed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the structure does.
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Octets the structure needs.
        needed: usize,
        /// Octets the buffer holds.
        available: usize,
    },
    /// A length field holds a value the format does not allow (too small for the fixed
    /// part of the message, not a multiple of the unit, inconsistent with a count, ...).
    BadLength {
        /// The length field.
        what: &'static str,
        /// The value found, in the field's own units.
        value: usize,
    },
    /// The checksum does not verify.
    BadChecksum {
        /// The structure whose checksum failed.
        what: &'static str,
    },
    /// A type or code the format reserves or this implementation does not know. The
    /// caller decides whether that merits a reply (RFC 5533 §5.4 Error code 0, RFC 6275
    /// §6.1.9 Binding Error status 2) or a silent drop.
    Unrecognized {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u32,
    },
    /// A field holds a value the format forbids.
    Malformed(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what} truncated: needs {needed} octets, {available} available"
            ),
            Self::BadLength { what, value } => write!(f, "{what} has an invalid length ({value})"),
            Self::BadChecksum { what } => write!(f, "{what} checksum does not verify"),
            Self::Unrecognized { what, value } => write!(f, "unrecognised {what} {value}"),
            Self::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for the wire layer.
pub type Result<T> = core::result::Result<T, Error>;

/// Returns [`Error::Truncated`] unless `buf` holds at least `needed` octets.
#[inline]
pub(crate) fn check_len(what: &'static str, buf: &[u8], needed: usize) -> Result<()> {
    if buf.len() < needed {
        Err(Error::Truncated {
            what,
            needed,
            available: buf.len(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_structure() {
        let e = Error::Truncated {
            what: "I1",
            needed: 16,
            available: 9,
        };
        assert_eq!(e.to_string(), "I1 truncated: needs 16 octets, 9 available");
        assert!(check_len("x", &[0; 3], 4).is_err());
        assert!(check_len("x", &[0; 4], 4).is_ok());
    }
}
