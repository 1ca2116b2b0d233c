//! REAP's Keepalive (type 66) and Probe (type 67) messages (RFC 5534 §5.1, §5.3).
//!
//! This file starts with the two plain types REAP itself reasons about, [`ProbeRecord`]
//! and [`ReapState`]; the message views and representations follow.

use core::fmt;
use std::net::Ipv6Addr;

/// Octets of one probe record on the wire (RFC 5534 §5.3):
/// `Source (16) | Destination (16) | Nonce (4) | Data (4)`.
pub const PROBE_RECORD_LEN: usize = 40;

/// The most records of each kind (sent, received) one Probe can carry: the counts are
/// 4-bit fields (RFC 5534 §5.3).
pub const MAX_PROBE_RECORDS: usize = 15;

/// One "probe sent" or "probe received" record of a Probe message (RFC 5534 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeRecord {
    /// Source address of the probe described.
    pub src: Ipv6Addr,
    /// Destination address of the probe described.
    pub dst: Ipv6Addr,
    /// The probe's nonce: hard to guess, it is the return-routability proof.
    pub nonce: u32,
    /// Opaque data, echoed unchanged in reports.
    pub data: u32,
}

impl ProbeRecord {
    /// Reads a record from the first [`PROBE_RECORD_LEN`] octets of `b`.
    ///
    /// # Panics
    /// If `b` is shorter than [`PROBE_RECORD_LEN`].
    pub fn read(b: &[u8]) -> Self {
        let addr = |r: &[u8]| {
            let mut a = [0u8; 16];
            a.copy_from_slice(r);
            Ipv6Addr::from(a)
        };
        let word = |r: &[u8]| u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        Self {
            src: addr(&b[0..16]),
            dst: addr(&b[16..32]),
            nonce: word(&b[32..36]),
            data: word(&b[36..40]),
        }
    }

    /// Writes the record into the first [`PROBE_RECORD_LEN`] octets of `b`.
    ///
    /// # Panics
    /// If `b` is shorter than [`PROBE_RECORD_LEN`].
    pub fn write(&self, b: &mut [u8]) {
        b[0..16].copy_from_slice(&self.src.octets());
        b[16..32].copy_from_slice(&self.dst.octets());
        b[32..36].copy_from_slice(&self.nonce.to_be_bytes());
        b[36..40].copy_from_slice(&self.data.to_be_bytes());
    }
}

impl fmt::Display for ProbeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} nonce={:#010x} data={:#010x}",
            self.src, self.dst, self.nonce, self.data
        )
    }
}

/// The REAP state a Probe reports, its 2-bit Sta field (RFC 5534 §5.3), spelled as the
/// RFC spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReapState {
    /// 0: "I see no problem, and believe you don't either."
    Operational,
    /// 1: "I am not hearing from you."
    Exploring,
    /// 2: "I hear you, but you have not confirmed that you hear me."
    InboundOk,
}

impl ReapState {
    /// The Sta field value.
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::Operational => 0,
            Self::Exploring => 1,
            Self::InboundOk => 2,
        }
    }

    /// The state for a Sta field value; 3 is undefined and yields `None`.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::Operational),
            1 => Some(Self::Exploring),
            2 => Some(Self::InboundOk),
            _ => None,
        }
    }
}

impl fmt::Display for ReapState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Operational => "Operational",
            Self::Exploring => "Exploring",
            Self::InboundOk => "InboundOk",
        })
    }
}
