//! Output shapes (the JSON documented in `--help`) and the progress line.

use std::io::Write as _;
use std::time::Duration;

use serde::Serialize;

use cga::search::Progress;
use cga::sec::human_duration;

/// `generate --format json`.
#[derive(Debug, Serialize)]
pub struct Generated {
    pub sec: u8,
    pub addresses: Vec<GeneratedAddress>,
    pub hashes: u64,
    pub elapsed_s: f64,
    pub hashes_per_s: f64,
    pub threads: usize,
}

/// One address of [`Generated`].
#[derive(Debug, Serialize)]
pub struct GeneratedAddress {
    pub address: String,
    pub prefix: String,
    /// Hex of the complete CGA Parameters data structure for this address.
    pub params: String,
}

/// `bench --format json`.
#[derive(Debug, Serialize)]
pub struct Bench {
    pub bits: u32,
    pub threads: usize,
    pub hashes_per_s: f64,
    pub message_octets: usize,
}

/// `verify --format json`.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub valid: bool,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sec: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hba_member: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A count with an SI suffix: 1234567 → "1.23 M".
pub fn si(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0} ")
    }
}

/// Draws the progress line on stderr (only called when stderr is a terminal):
/// rate, hashes tried, expected hashes and the expected time still to go.
pub fn progress_line(p: &Progress, prior_hashes: u64) {
    let tried = prior_hashes + p.hashes;
    let eta = p
        .expected_remaining()
        .map_or_else(|| "?".to_owned(), |d| human_duration(d.as_secs_f64()));
    let mut err = std::io::stderr().lock();
    // `\r` + erase-line keeps one line updated in place.
    let _ = write!(
        err,
        "\r\x1b[K{}hashes/s  tried {}  expected {}  ETA ~{} (mean; the search is memoryless)",
        si(p.rate()),
        si(tried as f64),
        si(p.expected_hashes),
        eta
    );
    let _ = err.flush();
}

/// Erases the progress line.
pub fn clear_progress() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[K");
    let _ = err.flush();
}

/// Seconds as `f64`.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
