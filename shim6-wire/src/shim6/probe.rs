//! REAP's Keepalive (type 66) and Probe (type 67) messages (RFC 5534 §5.1, §5.2).
//!
//! This file starts with the two plain types REAP itself reasons about, [`ProbeRecord`]
//! and [`ReapState`]; the message representations [`Keepalive`] and [`Probe`] follow
//! (their fields are read through the common [`Packet`] view).
//!
//! ```text
//! Keepalive (RFC 5534 §5.1)                 Probe (RFC 5534 §5.2)
//! | NH | HEL | 0|66 | Res1|0 | Checksum |   | NH | HEL | 0|67 | Res|0 | Checksum |
//! | R | Receiver Context Tag (47)       |   | R | Receiver Context Tag (47)      |
//! | Reserved2 (32)                      |   | Precvd|Psent|Sta| Reserved2 (22)  |
//! | Options                             |   | Psent sent records (40 each)     |
//!                                           | Precvd received records          |
//!                                           | Options                          |
//! ```

use core::fmt;
use std::net::Ipv6Addr;

use super::ContextTag;
use super::control::{MessageType, Packet};
use super::message::{Body, message_api};
use super::option::{DisplayOptions, Repr as OptionRepr};
use crate::error::{Error, Result};

/// Octets of one probe record on the wire (RFC 5534 §5.2):
/// `Source (16) | Destination (16) | Nonce (4) | Data (4)`.
pub const PROBE_RECORD_LEN: usize = 40;

/// The most records of each kind (sent, received) one Probe can carry: the counts are
/// 4-bit fields (RFC 5534 §5.2).
pub const MAX_PROBE_RECORDS: usize = 15;

/// One "probe sent" or "probe received" record of a Probe message (RFC 5534 §5.2).
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

/// The REAP state a Probe reports, its 2-bit Sta field (RFC 5534 §5.2), spelled as the
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

/// Keepalive (type 66, RFC 5534 §5.1): "I am receiving your payload packets", sent when
/// payload flows one way only. Valid only for an ESTABLISHED context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keepalive {
    /// The tag the receiver of this message allocated.
    pub receiver_context_tag: ContextTag,
    /// None are defined; unknown ones are kept.
    pub options: Vec<OptionRepr>,
}

impl Body for Keepalive {
    const TYPE: MessageType = MessageType::Keepalive;
    fn fixed_len(&self) -> usize {
        16
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_context_tag(self.receiver_context_tag);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        Ok(Self {
            receiver_context_tag: p.context_tag(),
            options,
        })
    }
}
message_api!(Keepalive);

impl fmt::Display for Keepalive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 Keepalive rcv_ct={}{}",
            self.receiver_context_tag,
            DisplayOptions(&self.options)
        )
    }
}

/// Probe (type 67, RFC 5534 §5.2): REAP's exploration message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Probe {
    /// The tag the receiver of this message allocated.
    pub receiver_context_tag: ContextTag,
    /// The sender's REAP state *after* sending this probe.
    pub state: ReapState,
    /// "Probe sent" records, 1 to [`MAX_PROBE_RECORDS`]: the first describes this probe
    /// itself, the others recent earlier probes.
    pub sent: Vec<ProbeRecord>,
    /// "Probe received" records, 0 to [`MAX_PROBE_RECORDS`]: probes received from the
    /// peer since this node last entered Exploring.
    pub received: Vec<ProbeRecord>,
    /// None are defined; unknown ones are kept.
    pub options: Vec<OptionRepr>,
}

impl Body for Probe {
    const TYPE: MessageType = MessageType::Probe;
    fn fixed_len(&self) -> usize {
        16 + (self.sent.len() + self.received.len()) * PROBE_RECORD_LEN
    }
    fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        // `check` bounds both counts by 15.
        p.set_probe_counts(self.received.len() as u8, self.sent.len() as u8);
        p.set_probe_sta(self.state.to_bits());
        for (i, r) in self.sent.iter().chain(&self.received).enumerate() {
            p.set_probe_record(i, r);
        }
        p.set_context_tag(self.receiver_context_tag);
    }
    fn options(&self) -> &[OptionRepr] {
        &self.options
    }
    fn check(&self) -> Result<()> {
        if self.sent.is_empty() || self.sent.len() > MAX_PROBE_RECORDS {
            return Err(Error::BadLength {
                what: "Probe Psent (1 to 15 sent records)",
                value: self.sent.len(),
            });
        }
        if self.received.len() > MAX_PROBE_RECORDS {
            return Err(Error::BadLength {
                what: "Probe Precvd (at most 15 received records)",
                value: self.received.len(),
            });
        }
        Ok(())
    }
    fn parse_fixed<T: AsRef<[u8]>>(p: &Packet<T>, options: Vec<OptionRepr>) -> Result<Self> {
        // RFC 5534 §5.2: the first sent record is this probe, so Psent ≥ 1.
        if p.probe_psent() == 0 {
            return Err(Error::Malformed(
                "Probe with Psent = 0 (RFC 5534 §5.2 requires the record of this probe)",
            ));
        }
        let state = ReapState::from_bits(p.probe_sta()).ok_or(Error::Unrecognized {
            what: "Probe Sta (REAP state)",
            value: u32::from(p.probe_sta()),
        })?;
        // `Packet::check` made sure the Psent + Precvd records are in the message.
        let sent = (0..usize::from(p.probe_psent()))
            .filter_map(|i| p.probe_sent(i))
            .collect();
        let received = (0..usize::from(p.probe_precvd()))
            .filter_map(|i| p.probe_received(i))
            .collect();
        Ok(Self {
            receiver_context_tag: p.context_tag(),
            state,
            sent,
            received,
            options,
        })
    }
}
message_api!(Probe);

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shim6 Probe rcv_ct={} sta={} sent=[",
            self.receiver_context_tag, self.state
        )?;
        for (i, r) in self.sent.iter().enumerate() {
            write!(f, "{}{r}", if i > 0 { ", " } else { "" })?;
        }
        f.write_str("] rcvd=[")?;
        for (i, r) in self.received.iter().enumerate() {
            write!(f, "{}{r}", if i > 0 { ", " } else { "" })?;
        }
        write!(f, "]{}", DisplayOptions(&self.options))
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::Message;
    use super::super::testgen::{check_message_bytes, ct};
    use super::*;
    use hex_literal::hex;

    static KEEPALIVE_BYTES: [u8; 16] = hex!("3b014200 b2c80123 456789ab 00000000");

    #[test]
    fn keepalive_four_directions() {
        let m = Keepalive {
            receiver_context_tag: ct(0x0123_4567_89ab),
            options: vec![],
        };
        check_message_bytes(
            &KEEPALIVE_BYTES,
            &Message::Keepalive(m.clone()),
            |p| assert_eq!(p.context_tag(), ct(0x0123_4567_89ab)),
            |p| p.set_context_tag(ct(0x0123_4567_89ab)),
        );
        assert_eq!(m.to_string(), "Shim6 Keepalive rcv_ct=0x0123456789ab");
        // Reserved2 is ignored on receipt.
        let mut b = KEEPALIVE_BYTES;
        b[12..16].fill(0xee);
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(Message::parse_bytes(&b).unwrap(), Message::Keepalive(m));
    }

    // InboundOk, one sent and one received record.
    static PROBE_BYTES: [u8; 96] = hex!(
        "3b0b4300 abd90fed cba98765 11800000"
        "20010db8 00010000 00000000 00000001"
        "20010db8 00020000 00000000 00000001"
        "a1a2a3a4 00000000 20010db8 00020000"
        "00000000 00000001 20010db8 00010000"
        "00000000 00000001 b1b2b3b4 00000001"
    );

    fn rec(src: &str, dst: &str, nonce: u32, data: u32) -> ProbeRecord {
        ProbeRecord {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            nonce,
            data,
        }
    }

    fn probe() -> Probe {
        Probe {
            receiver_context_tag: ct(0x0fed_cba9_8765),
            state: ReapState::InboundOk,
            sent: vec![rec("2001:db8:1::1", "2001:db8:2::1", 0xa1a2_a3a4, 0)],
            received: vec![rec("2001:db8:2::1", "2001:db8:1::1", 0xb1b2_b3b4, 1)],
            options: vec![],
        }
    }

    #[test]
    fn probe_four_directions() {
        let p0 = probe();
        check_message_bytes(
            &PROBE_BYTES,
            &Message::Probe(p0.clone()),
            |p| {
                assert_eq!(p.context_tag(), ct(0x0fed_cba9_8765));
                assert_eq!(p.probe_psent(), 1);
                assert_eq!(p.probe_precvd(), 1);
                assert_eq!(p.probe_sta(), 2);
                assert_eq!(p.probe_sent(0), Some(p0.sent[0]));
                assert_eq!(p.probe_sent(1), None);
                assert_eq!(p.probe_received(0), Some(p0.received[0]));
                assert_eq!(p.probe_received(1), None);
                assert_eq!(p.options_offset(), 96);
            },
            |p| {
                p.set_context_tag(ct(0x0fed_cba9_8765));
                p.set_probe_counts(1, 1);
                p.set_probe_sta(2);
                p.set_probe_record(0, &p0.sent[0]);
                p.set_probe_record(1, &p0.received[0]);
            },
        );
        assert_eq!(
            p0.to_string(),
            "Shim6 Probe rcv_ct=0x0fedcba98765 sta=InboundOk \
             sent=[2001:db8:1::1 -> 2001:db8:2::1 nonce=0xa1a2a3a4 data=0x00000000] \
             rcvd=[2001:db8:2::1 -> 2001:db8:1::1 nonce=0xb1b2b3b4 data=0x00000001]"
        );
    }

    #[test]
    fn probe_counts_are_nibbles_in_rfc_order() {
        // RFC 5534 §5.2: Precvd is the high nibble, Psent the low one (Wireshark's
        // masks 0xF0 / 0x0F agree).
        let mut m = probe();
        m.received.clear();
        m.sent.push(m.sent[0]);
        m.sent.push(m.sent[0]);
        let b = Message::Probe(m.clone()).to_vec().unwrap();
        assert_eq!(b[12], 0x03);
        m.received = vec![m.sent[0]; 2];
        m.sent.truncate(1);
        let b = Message::Probe(m).to_vec().unwrap();
        assert_eq!(b[12], 0x21);
    }

    #[test]
    fn probe_with_fifteen_records_each() {
        let r = probe().sent[0];
        let m = Probe {
            sent: vec![r; MAX_PROBE_RECORDS],
            received: vec![r; MAX_PROBE_RECORDS],
            state: ReapState::Exploring,
            ..probe()
        };
        // 16 + 30 · 40 = 1216 octets, under the 1240-octet limit.
        let b = Message::Probe(m.clone()).to_vec().unwrap();
        assert_eq!(b.len(), 1216);
        assert_eq!(b[12], 0xff);
        assert_eq!(b[13], 0x40);
        assert_eq!(Message::parse_bytes(&b).unwrap(), Message::Probe(m.clone()));
        // Over 15 records (or none sent) cannot be encoded: refused before writing.
        let mut big = vec![0u8; 2048];
        for (sent, received) in [(16, 0), (1, 16), (0, 1)] {
            let bad = Probe {
                sent: vec![r; sent],
                received: vec![r; received],
                ..m.clone()
            };
            let n = if sent == 0 { 0 } else { 16 };
            assert_eq!(
                bad.emit(&mut Packet::new_unchecked(&mut big[..])),
                Err(Error::BadLength {
                    what: if sent == 1 {
                        "Probe Precvd (at most 15 received records)"
                    } else {
                        "Probe Psent (1 to 15 sent records)"
                    },
                    value: n
                })
            );
            assert!(big.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn probe_inconsistent_counts_and_state() {
        // Psent + Precvd claim more records than Hdr Ext Len holds.
        for counts in [0x12u8, 0x21, 0x30, 0x03, 0xff] {
            let mut b = PROBE_BYTES;
            b[12] = counts;
            Packet::new_unchecked(&mut b[..]).fill_checksum();
            assert!(
                matches!(Message::parse_bytes(&b), Err(Error::BadLength { .. })),
                "counts {counts:#04x}"
            );
        }
        // Fewer records than the length: the rest is read as options, which here do not
        // parse (a record is no TLV).
        let mut b = PROBE_BYTES;
        b[12] = 0x01;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert!(Message::parse_bytes(&b).is_err());
        // Psent = 0.
        let mut b = PROBE_BYTES;
        b[12] = 0x20;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert!(matches!(Message::parse_bytes(&b), Err(Error::Malformed(_))));
        // Sta = 3 is undefined; the reserved bits after it are ignored.
        let mut b = PROBE_BYTES;
        b[13] = 0xc0;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(
            Message::parse_bytes(&b),
            Err(Error::Unrecognized {
                what: "Probe Sta (REAP state)",
                value: 3
            })
        );
        let mut b = PROBE_BYTES;
        b[13] |= 0x3f;
        b[14..16].fill(0xff);
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(Message::parse_bytes(&b).unwrap(), Message::Probe(probe()));
    }

    #[test]
    fn reap_state_bits() {
        for s in [
            ReapState::Operational,
            ReapState::Exploring,
            ReapState::InboundOk,
        ] {
            assert_eq!(ReapState::from_bits(s.to_bits()), Some(s));
        }
        assert_eq!(ReapState::from_bits(3), None);
    }
}
