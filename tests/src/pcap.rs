//! A minimal writer for the classic pcap format (not pcapng), enough to hand packets we
//! emitted to an independent decoder.
//!
//! Link type 101 (`LINKTYPE_RAW`): each record is a bare IP packet, version from its first
//! nibble. Timestamps are the record index in microseconds, so files are reproducible.

use std::io::{self, Write};
use std::path::Path;

/// `LINKTYPE_RAW`: records start with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;

/// Serialises `packets` as a pcap file image.
pub fn to_bytes(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + packets.iter().map(|p| p.len() + 16).sum::<usize>());
    // Global header: magic, version 2.4, thiszone 0, sigfigs 0, snaplen, link type.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        let len = u32::try_from(p.len()).expect("a packet over 4 GiB");
        let usec = u32::try_from(i).expect("fewer than 2^32 packets");
        out.extend_from_slice(&0u32.to_le_bytes()); // seconds
        out.extend_from_slice(&usec.to_le_bytes()); // microseconds
        out.extend_from_slice(&len.to_le_bytes()); // captured length
        out.extend_from_slice(&len.to_le_bytes()); // original length
        out.extend_from_slice(p);
    }
    out
}

/// Writes `packets` to a pcap file at `path`.
pub fn write(path: &Path, packets: &[Vec<u8>]) -> io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(&to_bytes(packets))?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_records() {
        let b = to_bytes(&[vec![0x60, 0, 0, 0], vec![0x60]]);
        assert_eq!(b.len(), 24 + 16 + 4 + 16 + 1);
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(
            u32::from_le_bytes(b[20..24].try_into().unwrap()),
            LINKTYPE_RAW
        );
        // Second record: timestamp 1 µs, length 1.
        assert_eq!(u32::from_le_bytes(b[48..52].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[52..56].try_into().unwrap()), 1);
    }
}
