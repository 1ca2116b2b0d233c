//! Every wire format of shim6d, and nothing else: no I/O, no clock, no cryptography.
//!
//! The pattern is smoltcp's. Each format has
//! - a zero-copy view, `Packet<T: AsRef<[u8]>>`, whose `new_checked` performs the one
//!   documented length check, after which no accessor panics; setters exist where
//!   `T: AsMut<[u8]>`;
//! - a parsed representation, `Repr`, with `parse` (from a view), `buffer_len` and `emit`
//!   (into a view over a buffer of at least `buffer_len` octets), and `Display`.
//!
//! Malformed input yields an [`Error`] that says what is wrong; parsing never panics,
//! whatever the bytes. Field offsets live in a `mod field` table per format.
//!
//! # Layout
//! | module | formats | specification |
//! |---|---|---|
//! | [`shim6`] | payload extension header, control header + checksum, I1 … Error, Keepalive, Probe, every option | RFC 5533 §5, RFC 5534 §5 |
//! | [`cga`] | CGA Parameters data structure, extension fields, Multi-Prefix extension | RFC 3972 §3, RFC 4581, RFC 5535 §5 |
//! | [`mip6`] | Mobility Header, Binding Update / Acknowledgement / Error, mobility options, Home Address option, type 2 routing header | RFC 6275 §6 |
//! | [`ipv6`] | IPv6 header, extension-header chain, payload-header insertion and removal, address rewriting | RFC 8200, RFC 5533 §5.1 / §12 |
//! | [`tunnel`] | IPv6-in-IPv6 encapsulation and decapsulation | RFC 2473 §3 |
//! | [`checksum`] | the Internet checksum and the IPv6 pseudo-header | RFC 1071, RFC 8200 §8.1 |

pub mod cga;
pub mod checksum;
mod error;
pub mod ipv6;
pub mod mip6;
pub mod shim6;
pub mod tunnel;

pub use error::{Error, Result};
