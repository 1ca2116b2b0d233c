//! The Internet checksum (RFC 1071): one's-complement sum of 16-bit words.
//!
//! Shim6 control messages checksum their own header with no pseudo-header (RFC 5533
//! §5.3); the MIPv6 Mobility Header and ICMPv6 use the IPv6 pseudo-header (RFC 8200 §8.1).
//! Both are built from the same two primitives: [`sum`] accumulates, [`fold`] finishes.

use std::net::Ipv6Addr;

/// Adds `data` to a running one's-complement sum. An odd trailing octet is padded with
/// zero, as RFC 1071 requires. The result must be finished with [`fold`].
#[inline]
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        // Fold early so that even a 4 GiB buffer cannot overflow the accumulator.
        if acc & 0x8000_0000 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds a running sum to 16 bits and returns its one's complement: the value to write
/// into a checksum field (or, over data that includes a correct checksum, zero).
#[inline]
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data` alone, with no pseudo-header.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(0, data))
}

/// The running sum of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer packet of
/// `upper_len` octets with protocol `next_header`.
#[inline]
pub fn pseudo_header(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, upper_len: u32) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc = sum(acc, &upper_len.to_be_bytes());
    sum(acc, &[0, 0, 0, next_header])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is !ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
    }

    #[test]
    fn data_with_its_checksum_sums_to_zero() {
        let mut data = [
            0x3b, 0x01, 0x01, 0x00, 0, 0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xde, 0xad, 0xbe,
            0xef,
        ];
        let c = checksum(&data);
        data[4..6].copy_from_slice(&c.to_be_bytes());
        // The worked I1 encoding of the protocol digest, §1.17.
        assert_eq!(c, 0x562b);
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn large_buffers_do_not_overflow() {
        let data = vec![0xff; 1 << 20];
        assert_eq!(checksum(&data), 0);
    }
}
