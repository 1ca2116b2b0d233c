//! `cga::Error`: everything the library refuses, with enough context for one clear line.
//!
//! Verification failures have their own type, [`VerifyError`](crate::VerifyError)
//! (which RFC step failed), and signature failures [`SignatureError`](crate::SignatureError);
//! both convert into [`Error`] for callers that only need a message.

use std::path::PathBuf;

use crate::sec::SecRefusal;

/// Result alias of the library.
pub type Result<T> = core::result::Result<T, Error>;

/// What went wrong, grouped by who is at fault: malformed input, unsupported requests,
/// files and keys, and local misuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// CGA Parameters that do not parse.
    #[error("malformed CGA Parameters: {0}")]
    Wire(#[from] shim6_wire::Error),
    /// A Sec value the library cannot search or verify (RFC 4982), with an estimate of
    /// what it would cost.
    #[error("{0}")]
    UnsupportedSec(SecRefusal),
    /// A prefix that is not a /64 written as an IPv6 address.
    #[error("invalid prefix {input:?}: {why}")]
    Prefix {
        /// What was given.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An HBA set needs between 1 and [`MAX_HBA_PREFIXES`](crate::MAX_HBA_PREFIXES)
    /// distinct prefixes.
    #[error("invalid HBA prefix set: {0}")]
    PrefixSet(&'static str),
    /// An RSA modulus size the library does not generate.
    #[error("unsupported RSA key size {0} bits (accepted: 1024, 2048, 3072, 4096)")]
    KeyBits(u32),
    /// A key that is not usable (not RSA, bad PEM/DER, out-of-range size).
    #[error("{0}")]
    Key(String),
    /// A private key file readable or writable by group or others.
    #[error(
        "{path}: permissions {mode:04o} are too open for a private key \
         (group/other must have no access; run chmod 600)"
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Refusing to replace an existing private key.
    #[error("{0}: already exists; refusing to overwrite a private key without force")]
    KeyExists(PathBuf),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// OpenSSL refused an operation.
    #[error("OpenSSL: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    /// Three address collisions already happened (RFC 3972 §4 step 8, RFC 5535 §6 step 6.4).
    #[error("collision count is already 2: RFC 3972 §4 step 8 stops after three collisions")]
    TooManyCollisions,
    /// The modifier search was cancelled before it found a modifier.
    #[error("modifier search cancelled after {hashes} hashes")]
    Cancelled {
        /// Hashes computed before the search stopped.
        hashes: u64,
    },
    /// The search ran through 2^64 candidates (never happens for Sec ≤ 2).
    #[error("modifier search exhausted 2^64 candidates without a match")]
    SearchExhausted,
    /// An address failed verification.
    #[error(transparent)]
    Verify(#[from] crate::VerifyError),
    /// A signature could not be made or did not verify.
    #[error(transparent)]
    Signature(#[from] crate::SignatureError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
