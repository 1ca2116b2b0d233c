//! Hash1 and Hash2 of RFC 3972 §3, computed with the reference SHA-1 (verification needs
//! at most two hashes; only the generator's search needs the fast kernel).

use sha1::{Digest as _, Sha1};
use shim6_wire::cga::Packet;

/// Octets of Hash2 (RFC 3972 §3: "the leftmost 112 bits").
pub const HASH2_LEN: usize = 14;

/// Zero octets standing in for the Subnet Prefix and Collision Count in the Hash2 input
/// (RFC 3972 §4 step 2).
pub const HASH2_ZEROS: [u8; 9] = [0; 9];

/// Hash1: the leftmost 64 bits of SHA-1 over the whole structure, unrecognised
/// extensions included (RFC 3972 §4 step 5, §5 step 3).
pub fn hash1(params: &[u8]) -> u64 {
    let d = Sha1::digest(params);
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Hash2: the leftmost 112 bits of SHA-1(Modifier ‖ 9 zero octets ‖ Public Key ‖
/// Extension Fields) (RFC 3972 §4 step 2, §5 step 6).
pub fn hash2<T: AsRef<[u8]>>(params: &Packet<T>) -> [u8; HASH2_LEN] {
    let mut h = Sha1::new();
    h.update(params.modifier());
    h.update(HASH2_ZEROS);
    h.update(params.key_and_extensions());
    let d = h.finalize();
    let mut out = [0u8; HASH2_LEN];
    out.copy_from_slice(&d[..HASH2_LEN]);
    out
}

/// The part of the Hash2 input after the modifier: `9 zero octets ‖ key ‖ extensions`.
pub fn hash2_tail(key_and_extensions: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(HASH2_ZEROS.len() + key_and_extensions.len());
    t.extend_from_slice(&HASH2_ZEROS);
    t.extend_from_slice(key_and_extensions);
    t
}

/// Leading zero bits of a Hash2 value (0..=112).
pub fn leading_zero_bits(hash2: &[u8; HASH2_LEN]) -> u32 {
    let mut n = 0;
    for b in hash2 {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn zero_bits() {
        assert_eq!(leading_zero_bits(&[0; 14]), 112);
        assert_eq!(leading_zero_bits(&hex!("000001ca680b83888d0912dffcce")), 23);
        assert_eq!(leading_zero_bits(&hex!("436b9a70dbfddbf1926e6e6629c0")), 1);
    }
}
