//! CGA and HBA addresses for shim6d: generation, verification and signatures
//! (RFC 3972, RFC 4581, RFC 4982, RFC 5535), plus the fast modifier search behind the
//! `cga-tool` generator.
//!
//! This crate does cryptography and, for keys and the CLI, file I/O; it does no network
//! I/O. The wire format of the CGA Parameters lives in [`shim6_wire::cga`]. RSA comes
//! from the `openssl` crate (SHA-1 signatures and 1024-bit keys are required by the
//! RFCs and refused by `ring`/`aws-lc-rs`).
//!
//! # Layout
//! | module | what | specification |
//! |---|---|---|
//! | [`verify`](mod@verify) | address ↔ parameters verification with typed failure reasons | RFC 3972 §5, RFC 5535 §7 |
//! | [`generate`] | [`Generator`] (CGA, pure HBA, CGA-compatible HBA), [`AddressSet`], the HBA pseudo-key | RFC 3972 §4, RFC 5535 §6 |
//! | [`search`] | the multithreaded, cancellable modifier search and its benchmark | RFC 3972 §4 steps 2–3 |
//! | [`kernel`] | SHA-1 of `modifier ‖ fixed tail`: SHA-NI multi-lane or portable | FIPS 180-4 |
//! | [`sign`](mod@sign) | RSASSA-PKCS1-v1_5/SHA-1 signatures, the Shim6 tag, the per-generation signer | RFC 3972 §6, RFC 5533 §5.15.5 |
//! | [`key`] | RSA key generation, PEM files (mode 0600), DER `SubjectPublicKeyInfo` | RFC 3972 §3 |
//! | [`sec`] | Sec 0–2 and the refusal of 3–7 with a time estimate | RFC 4982 |
//! | [`addr`] | /64 prefixes and interface-identifier bits | RFC 3972 §3 |
//!
//! # Use from shim6-proto
//! - A peer's ULID against its CGA Parameters option: [`verify_cga`].
//! - An HBA-method locator against the ULID's parameters: [`verify_hba_member`].
//! - A CGA Signature option: [`verify_locator_list`].
//! - Our own signature: [`LocatorListSigner::update`] when the local locators change,
//!   [`LocatorListSigner::signature_for`] when building a message.
//!
//! The only `unsafe` code is the SHA-NI kernel (`kernel::x86`), with its safety argument.

pub mod addr;
mod error;
pub mod generate;
pub mod hash;
pub mod kernel;
pub mod key;
pub mod search;
pub mod sec;
pub mod sign;
pub mod verify;

pub use addr::Prefix64;
pub use error::{Error, Result};
pub use generate::{AddressSet, Generator, MAX_HBA_PREFIXES, hba_pseudo_key};
pub use kernel::Kernel;
pub use key::{PrivateKey, PublicKey};
pub use search::{Outcome, Progress, SearchConfig};
pub use sec::Sec;
pub use sign::{
    LocatorListSigner, SHIM6_CGA_TAG, SignatureError, SignedList, sign, verify_cga_signature,
    verify_locator_list, verify_signature,
};
pub use verify::{AddressKind, Verified, VerifyError, verify, verify_cga, verify_hba_member};

#[cfg(test)]
mod tests;
