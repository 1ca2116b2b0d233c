//! The hash at the heart of the modifier search: SHA-1 of `modifier ‖ tail`, where only
//! the 16-octet modifier changes between candidates.
//!
//! RFC 3972 §4 step 2 hashes `Modifier ‖ 9 zero octets ‖ Public Key ‖ Extension Fields`
//! once per candidate modifier. Everything after the first 16 octets is the same for
//! every candidate, so a [`ModifierHasher`] pads the message once (FIPS 180-4 §5.1.1),
//! keeps the first block with a hole for the modifier, and only runs the compression
//! function per candidate, never the buffering of a general-purpose hasher.
//!
//! Two kernels compute it (choose with [`Kernel`]):
//! - **SHA-NI** (x86-64 with the SHA extensions, detected at run time): several
//!   candidates' rounds interleaved (default four lanes), and the message schedules of
//!   every block after the first precomputed. The `unsafe` code lives in the private
//!   `x86` module, with its safety argument.
//! - **Portable**: the `sha1` crate's compression function on the pre-padded blocks.
//!
//! Both are checked against `sha1::Sha1::digest` by property tests.

#[cfg(target_arch = "x86_64")]
mod x86;

use core::fmt;

use sha1::Digest as _;

/// SHA-1 block size in octets.
pub(crate) const BLOCK_LEN: usize = 64;
/// SHA-1 initial hash value (FIPS 180-4 §5.3.1).
pub(crate) const H_INIT: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// Octets of the part of the message that varies: the CGA Modifier (RFC 3972 §3).
pub const MODIFIER_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Imp {
    Portable,
    ShaNi(usize),
}

/// Which implementation a [`ModifierHasher`] uses.
///
/// A SHA-NI kernel can only be obtained on a CPU that has the extensions, so holding one
/// is proof that it can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kernel(Imp);

impl Kernel {
    /// The lane counts the SHA-NI kernel is compiled for.
    pub const SHA_NI_LANES: [usize; 4] = [1, 2, 4, 8];
    /// Lanes used by [`Kernel::best`]: four measured best here (`docs/bench/cga-search.md`).
    pub const DEFAULT_LANES: usize = 4;

    /// The fastest kernel this CPU supports: SHA-NI with four lanes, else portable.
    pub fn best() -> Self {
        Self::sha_ni(Self::DEFAULT_LANES).unwrap_or_else(Self::portable)
    }

    /// The portable kernel (the `sha1` crate's compression function).
    pub const fn portable() -> Self {
        Self(Imp::Portable)
    }

    /// The SHA-NI kernel interleaving `lanes` candidates, or `None` if the CPU lacks the
    /// SHA extensions (or SSSE3/SSE4.1) or `lanes` is not one of [`Kernel::SHA_NI_LANES`].
    pub fn sha_ni(lanes: usize) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if Self::SHA_NI_LANES.contains(&lanes) && x86::detected() {
            return Some(Self(Imp::ShaNi(lanes)));
        }
        let _ = lanes;
        None
    }

    /// Whether this is a SHA-NI kernel.
    pub fn is_sha_ni(self) -> bool {
        matches!(self.0, Imp::ShaNi(_))
    }

    /// Candidates hashed together (1 for the portable kernel).
    pub fn lanes(self) -> usize {
        match self.0 {
            Imp::Portable => 1,
            Imp::ShaNi(n) => n,
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Imp::Portable => f.write_str("portable (sha1 crate compression function)"),
            Imp::ShaNi(n) => write!(f, "SHA-NI, {n} lanes"),
        }
    }
}

/// SHA-1 of `modifier ‖ tail` for many modifiers, with the tail fixed at construction.
///
/// Modifiers are handled as 128-bit big-endian integers (`u128::from_be_bytes`), the
/// way RFC 3972 §4 step 3 increments them.
#[derive(Debug)]
pub struct ModifierHasher {
    kernel: Kernel,
    message_len: usize,
    /// The first padded block with zeros where the modifier goes.
    first: [u8; BLOCK_LEN],
    /// Every later padded block.
    rest: Vec<[u8; BLOCK_LEN]>,
    #[cfg(target_arch = "x86_64")]
    ni: Option<x86::Schedule>,
}

impl ModifierHasher {
    /// Pads `modifier ‖ tail` once (FIPS 180-4 §5.1.1) and precomputes what the kernel can.
    pub fn new(tail: &[u8], kernel: Kernel) -> Self {
        let message_len = MODIFIER_LEN + tail.len();
        let padded_len = (message_len + 9).div_ceil(BLOCK_LEN) * BLOCK_LEN;
        let mut padded = vec![0u8; padded_len];
        padded[MODIFIER_LEN..message_len].copy_from_slice(tail);
        padded[message_len] = 0x80;
        let bits = (message_len as u64).wrapping_mul(8);
        padded[padded_len - 8..].copy_from_slice(&bits.to_be_bytes());
        let mut blocks = padded.chunks_exact(BLOCK_LEN).map(|c| {
            let mut b = [0u8; BLOCK_LEN];
            b.copy_from_slice(c);
            b
        });
        // `padded_len >= 64`: the message is at least 16 octets plus 9 of padding.
        let first = blocks.next().unwrap_or([0u8; BLOCK_LEN]);
        let rest: Vec<_> = blocks.collect();
        #[cfg(target_arch = "x86_64")]
        let ni = match kernel.0 {
            Imp::ShaNi(_) => x86::Schedule::new(&first, &rest),
            Imp::Portable => None,
        };
        #[cfg(target_arch = "x86_64")]
        let kernel = if ni.is_some() {
            kernel
        } else {
            Kernel::portable()
        };
        Self {
            kernel,
            message_len,
            first,
            rest,
            #[cfg(target_arch = "x86_64")]
            ni,
        }
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Octets hashed per candidate (modifier and tail).
    pub fn message_len(&self) -> usize {
        self.message_len
    }

    /// SHA-1 blocks compressed per candidate.
    pub fn blocks(&self) -> usize {
        1 + self.rest.len()
    }

    /// The complete SHA-1 digest of `modifier ‖ tail`.
    pub fn digest(&self, modifier: u128) -> [u8; 20] {
        self.digests(&[modifier])[0]
    }

    /// The digests of several modifiers (hashed `lanes` at a time by the SHA-NI kernel).
    pub fn digests(&self, modifiers: &[u128]) -> Vec<[u8; 20]> {
        let mut out = Vec::with_capacity(modifiers.len());
        #[cfg(target_arch = "x86_64")]
        if let (Some(ni), Imp::ShaNi(lanes)) = (&self.ni, self.kernel.0) {
            for chunk in modifiers.chunks(lanes) {
                // Fill unused lanes with the last modifier; their results are dropped.
                let get = |i: usize| chunk[i.min(chunk.len() - 1)];
                let states: Vec<[u32; 5]> = match lanes {
                    1 => ni.digests::<1>(&[get(0)]).to_vec(),
                    2 => ni.digests::<2>(&core::array::from_fn(get)).to_vec(),
                    4 => ni.digests::<4>(&core::array::from_fn(get)).to_vec(),
                    _ => ni.digests::<8>(&core::array::from_fn(get)).to_vec(),
                };
                out.extend(states.iter().take(chunk.len()).map(state_bytes));
            }
            return out;
        }
        out.extend(
            modifiers
                .iter()
                .map(|&m| state_bytes(&self.portable_state(m))),
        );
        out
    }

    /// The first offset `i < count` for which the leading 32 bits `w` of
    /// SHA-1(`start + i` ‖ tail) (the addition wraps at 2^128) satisfy
    /// `w & mask == target`, or `None`.
    ///
    /// RFC 3972 §4 step 3 with Sec ≤ 2 is `mask` = the leading `16·Sec` bits and
    /// `target` = 0; a `target` outside `mask` never matches, which is how the benchmark
    /// runs the search at full cost without ever stopping.
    pub fn find(&self, start: u128, count: u64, mask: u32, target: u32) -> Option<u64> {
        #[cfg(target_arch = "x86_64")]
        if let (Some(ni), Imp::ShaNi(lanes)) = (&self.ni, self.kernel.0) {
            return match lanes {
                1 => ni.find::<1>(start, count, mask, target),
                2 => ni.find::<2>(start, count, mask, target),
                4 => ni.find::<4>(start, count, mask, target),
                _ => ni.find::<8>(start, count, mask, target),
            };
        }
        (0..count).find(|&i| {
            let s = self.portable_state(start.wrapping_add(u128::from(i)));
            s[0] & mask == target
        })
    }

    /// The portable path: two calls of the `sha1` crate's compression function.
    fn portable_state(&self, modifier: u128) -> [u32; 5] {
        let mut first = self.first;
        first[..MODIFIER_LEN].copy_from_slice(&modifier.to_be_bytes());
        let mut state = H_INIT;
        sha1::block_api::compress(&mut state, core::slice::from_ref(&first));
        sha1::block_api::compress(&mut state, &self.rest);
        state
    }
}

/// The digest octets of a final SHA-1 state.
fn state_bytes(s: &[u32; 5]) -> [u8; 20] {
    let mut d = [0u8; 20];
    for (c, w) in d.chunks_exact_mut(4).zip(s) {
        c.copy_from_slice(&w.to_be_bytes());
    }
    d
}

/// The reference: `sha1::Sha1::digest` over the concatenated message (what a
/// straightforward generator does per try).
pub fn reference_digest(modifier: u128, tail: &[u8]) -> [u8; 20] {
    let mut h = sha1::Sha1::new();
    h.update(modifier.to_be_bytes());
    h.update(tail);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kernels() -> Vec<Kernel> {
        let mut k = vec![Kernel::portable()];
        k.extend(
            Kernel::SHA_NI_LANES
                .iter()
                .filter_map(|&n| Kernel::sha_ni(n)),
        );
        k
    }

    #[test]
    fn fips_180_abc_shape() {
        // SHA-1("abc") is the FIPS 180 example; a 16-octet message exercises the
        // single-block path: SHA-1("abcdefghijklmnop") checked against the sha1 crate.
        let m = u128::from_be_bytes(*b"abcdefghijklmnop");
        for k in kernels() {
            let h = ModifierHasher::new(b"", k);
            assert_eq!(h.blocks(), 1);
            assert_eq!(h.digest(m), reference_digest(m, b""), "{k}");
        }
    }

    #[test]
    fn block_boundaries() {
        // Tails around the 55/56/64-octet padding boundaries, for every kernel.
        for len in [0usize, 38, 39, 40, 47, 48, 49, 103, 104, 112, 171, 303] {
            let tail: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for k in kernels() {
                let h = ModifierHasher::new(&tail, k);
                let ms = [
                    0u128,
                    1,
                    u128::MAX,
                    0x89a8_a8b2_e858_d8b8_f263_3f44_d2d4_ce9b,
                ];
                let got = h.digests(&ms);
                for (m, d) in ms.iter().zip(got) {
                    assert_eq!(d, reference_digest(*m, &tail), "{k} len {len}");
                }
            }
        }
    }

    #[test]
    fn find_wraps_and_respects_count() {
        let tail = [0u8; 100];
        for k in kernels() {
            let h = ModifierHasher::new(&tail, k);
            // mask 0 matches at once; a target outside the mask never matches.
            assert_eq!(h.find(u128::MAX - 1, 8, 0, 0), Some(0));
            assert_eq!(h.find(5, 9, 0xffff_0000, 1), None);
            assert_eq!(h.find(5, 0, 0, 0), None);
            // The first match agrees with a reference scan, across the 2^128 wrap.
            let start = u128::MAX - 20;
            let want = (0..64u64).find(|&i| {
                reference_digest(start.wrapping_add(u128::from(i)), &tail)[0] & 0xf0 == 0
            });
            assert_eq!(h.find(start, 64, 0xf000_0000, 0), want, "{k}");
            // A count that is not a multiple of the lanes never reports beyond it.
            if let Some(w) = want {
                assert_eq!(h.find(start, w, 0xf000_0000, 0), None, "{k}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn kernels_equal_reference(
            tail in proptest::collection::vec(any::<u8>(), 0..400),
            lanes in proptest::collection::vec(any::<u128>(), 1..20),
        ) {
            for k in kernels() {
                let h = ModifierHasher::new(&tail, k);
                let got = h.digests(&lanes);
                for (m, d) in lanes.iter().zip(&got) {
                    prop_assert_eq!(*d, reference_digest(*m, &tail), "{}", k);
                }
            }
        }

        #[test]
        fn find_equals_reference_scan(
            tail in proptest::collection::vec(any::<u8>(), 0..300),
            start in any::<u128>(),
            bits in 1u32..9,
        ) {
            let mask = !(u32::MAX >> bits);
            let want = (0..600u64).find(|&i| {
                let d = reference_digest(start.wrapping_add(u128::from(i)), &tail);
                u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & mask == 0
            });
            for k in kernels() {
                let h = ModifierHasher::new(&tail, k);
                prop_assert_eq!(h.find(start, 600, mask, 0), want, "{}", k);
            }
        }
    }
}
