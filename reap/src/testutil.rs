//! Test helpers.

use std::time::Instant;

/// The epoch of a unit test. Tests never wait: they only add durations to this instant,
/// so reading the clock once here is harmless (the crate's `clippy.toml` forbids it
/// everywhere else).
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    Instant::now()
}
