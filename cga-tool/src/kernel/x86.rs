//! SHA-NI SHA-1 for several candidates at once: the only `unsafe` of the library.
//!
//! # What it computes
//! SHA-1 of `modifier (16 octets) ‖ tail`, for `N` modifiers at a time, where the padded
//! tail was fixed when the [`Schedule`] was built (see the parent module). Only the first
//! block depends on the modifier; the message schedule `W[0..80]` of every later block is
//! computed once, here, and only the chaining value flows through them per candidate.
//!
//! # Why several lanes
//! One `sha1rnds4` depends on the previous one, so a single hash is bound by that
//! instruction's latency. Interleaving `N` independent candidates lets the core issue
//! the rounds of one lane while the others wait. Four lanes measured best on this
//! machine (AMD EPYC, Zen 5); see `docs/bench/cga-search.md`.
//!
//! # Safety argument
//! The functions below use no raw pointers, no `transmute` and no indexing that is not
//! bounds checked: every SIMD value is built with `_mm_set_epi32` from plain integers and
//! read back with `_mm_extract_epi32`. Their only precondition is that the CPU implements
//! the instructions they are compiled for: `sha`, `sse2`, `ssse3` and `sse4.1`
//! (`#[target_feature]`). Executing them on a CPU without those extensions is undefined
//! behaviour (an illegal instruction at best), which is why calling them is `unsafe`.
//!
//! That precondition is established exactly once: [`Schedule::new`] returns `Some` only
//! when `is_x86_feature_detected!` reports all four features at run time, and a
//! [`Schedule`] cannot be built any other way (its field is private and it has no
//! `Default`, `Clone` from elsewhere, or other constructor). The two `unsafe` blocks in
//! [`Schedule::find`] and [`Schedule::digests`] therefore only run on a CPU that has the
//! features, which is the whole of their contract. Everything they call is a safe
//! `#[target_feature]` function, checked by the compiler to be called only from code
//! compiled with the same features.

#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_extract_epi32, _mm_set_epi32, _mm_setzero_si128,
    _mm_sha1msg1_epu32, _mm_sha1msg2_epu32, _mm_sha1nexte_epu32, _mm_sha1rnds4_epu32,
    _mm_xor_si128,
};

use super::{BLOCK_LEN, H_INIT};

/// Whether the CPU has everything the SHA-NI path needs (checked at run time; the
/// result is cached by the standard library).
pub(super) fn detected() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse2")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// One block's message schedule as 20 vectors of four words in *lane order* (lane 0
/// first): vector `i` is `[W[4i+3], W[4i+2], W[4i+1], W[4i]]`, so that `W[4i]` lands in
/// the top lane where `sha1rnds4` expects it and building the vector is a plain load.
type BlockSchedule = [[u32; 4]; 20];

/// The per-tail precomputation for the SHA-NI path. Holding one proves the CPU has the
/// required extensions (see the module's safety argument).
#[derive(Debug)]
pub(super) struct Schedule {
    /// Words 4..16 of the first block (fixed: they follow the modifier).
    first: [[u32; 4]; 3],
    /// The complete schedules of blocks 2.. (independent of the modifier).
    rest: Vec<BlockSchedule>,
}

impl Schedule {
    /// Precomputes the schedules for `first_block` (whose first 16 octets are ignored)
    /// and `rest`, or returns `None` when the CPU lacks SHA-NI.
    pub(super) fn new(first_block: &[u8; BLOCK_LEN], rest: &[[u8; BLOCK_LEN]]) -> Option<Self> {
        if !detected() {
            return None;
        }
        let w = words(first_block);
        let first = [lanes(&w[4..8]), lanes(&w[8..12]), lanes(&w[12..16])];
        let rest = rest
            .iter()
            .map(|b| {
                let w = expand(&words(b));
                let mut s = [[0u32; 4]; 20];
                for (i, v) in s.iter_mut().enumerate() {
                    *v = lanes(&w[4 * i..4 * i + 4]);
                }
                s
            })
            .collect();
        Some(Self { first, rest })
    }

    /// The first offset `i < count` such that the first word of SHA-1(`start + i` ‖ tail)
    /// satisfies `word & mask == target`, hashing `N` candidates at a time.
    pub(super) fn find<const N: usize>(
        &self,
        start: u128,
        count: u64,
        mask: u32,
        target: u32,
    ) -> Option<u64> {
        // SAFETY: a `Schedule` exists only if `detected()` returned true (see `new` and
        // the module documentation), so the CPU implements sha, sse2, ssse3 and sse4.1.
        unsafe { find_lanes::<N>(self, start, count, mask, target) }
    }

    /// The complete digests of `N` modifiers.
    pub(super) fn digests<const N: usize>(&self, modifiers: &[u128; N]) -> [[u32; 5]; N] {
        // SAFETY: as in `find`: holding `self` proves the features were detected.
        unsafe { digest_lanes::<N>(self, modifiers) }
    }
}

/// Four consecutive schedule words in lane order (see [`BlockSchedule`]).
fn lanes(w: &[u32]) -> [u32; 4] {
    [w[3], w[2], w[1], w[0]]
}

/// The 16 big-endian words of a block.
fn words(block: &[u8; BLOCK_LEN]) -> [u32; 16] {
    let mut w = [0u32; 16];
    for (i, c) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

/// The full 80-word message schedule (FIPS 180-4 §6.1.2 step 1).
fn expand(w16: &[u32; 16]) -> [u32; 80] {
    let mut w = [0u32; 80];
    w[..16].copy_from_slice(w16);
    for t in 16..80 {
        w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
    }
    w
}

/// The vector whose lane `i` is `v[i]` (so `v[3]` is the top lane).
#[inline]
#[target_feature(enable = "sse2")]
fn vec4(v: [u32; 4]) -> __m128i {
    _mm_set_epi32(v[3] as i32, v[2] as i32, v[1] as i32, v[0] as i32)
}

/// Four rounds with the round function `F` (0: Ch, 1: Parity, 2: Maj, 3: Parity).
#[inline]
#[target_feature(enable = "sha,sse2")]
fn rounds4<const F: i32>(abcd: __m128i, e_w: __m128i) -> __m128i {
    _mm_sha1rnds4_epu32::<F>(abcd, e_w)
}

/// Runs the rounds of one block on all lanes. `w(i)` yields the schedule vector `i`
/// (words `4i..4i+4`) of lane `l`; the chaining values are updated in place.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn block_lanes<const N: usize>(
    abcd: &mut [__m128i; N],
    e: &mut [__m128i; N],
    w: &mut impl FnMut(usize, usize) -> __m128i,
) {
    let abcd0 = *abcd;
    let e0 = *e;
    // Rounds 0..4: E comes from the chaining value.
    for l in 0..N {
        abcd[l] = rounds4::<0>(abcd0[l], _mm_add_epi32(e0[l], w(0, l)));
    }
    // `prev` is the ABCD that entered the group just run: its A, rotated by 30, is the E
    // of the next four rounds, which `sha1nexte` adds to the next schedule words.
    let mut prev = abcd0;
    // Rounds 4..80 in 19 groups of four; the round function changes every 20 rounds
    // (FIPS 180-4 §4.1.1): 0 = Ch, 1 = Parity, 2 = Maj, 3 = Parity.
    macro_rules! group {
        ($i:expr, $f:literal) => {
            for l in 0..N {
                let x = _mm_sha1nexte_epu32(prev[l], w($i, l));
                prev[l] = abcd[l];
                abcd[l] = rounds4::<$f>(abcd[l], x);
            }
        };
    }
    group!(1, 0);
    group!(2, 0);
    group!(3, 0);
    group!(4, 0);
    group!(5, 1);
    group!(6, 1);
    group!(7, 1);
    group!(8, 1);
    group!(9, 1);
    group!(10, 2);
    group!(11, 2);
    group!(12, 2);
    group!(13, 2);
    group!(14, 2);
    group!(15, 3);
    group!(16, 3);
    group!(17, 3);
    group!(18, 3);
    group!(19, 3);
    for l in 0..N {
        e[l] = _mm_sha1nexte_epu32(prev[l], e0[l]);
        abcd[l] = _mm_add_epi32(abcd[l], abcd0[l]);
    }
}

/// Hashes `N` modifiers through every block, returning the final chaining values.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn hash_lanes<const N: usize>(
    s: &Schedule,
    modifiers: &[[u32; 4]; N],
) -> ([__m128i; N], [__m128i; N]) {
    let init_abcd = vec4([H_INIT[3], H_INIT[2], H_INIT[1], H_INIT[0]]);
    let init_e = vec4([0, 0, 0, H_INIT[4]]);
    let mut abcd = [init_abcd; N];
    let mut e = [init_e; N];

    // Block 1: W[0..4] differ per lane; W[4..16] are fixed; W[16..80] are expanded here
    // with sha1msg1/sha1msg2, four words at a time (FIPS 180-4 §6.1.2, as the SHA
    // extensions define them).
    let fixed = [vec4(s.first[0]), vec4(s.first[1]), vec4(s.first[2])];
    let mut sched = [[_mm_setzero_si128(); 20]; N];
    for l in 0..N {
        sched[l][0] = vec4(modifiers[l]);
        sched[l][1] = fixed[0];
        sched[l][2] = fixed[1];
        sched[l][3] = fixed[2];
    }
    for i in 4..20 {
        for w in &mut sched {
            let x = _mm_sha1msg1_epu32(w[i - 4], w[i - 3]);
            let x = _mm_xor_si128(x, w[i - 2]);
            w[i] = _mm_sha1msg2_epu32(x, w[i - 1]);
        }
    }
    block_lanes::<N>(&mut abcd, &mut e, &mut |i, l| sched[l][i]);

    // Blocks 2..: one precomputed schedule shared by all lanes.
    for b in &s.rest {
        let v: [__m128i; 20] = core::array::from_fn(|i| vec4(b[i]));
        block_lanes::<N>(&mut abcd, &mut e, &mut |i, _| v[i]);
    }
    (abcd, e)
}

/// A modifier's four big-endian words in lane order: the first word in the top lane.
#[inline]
fn modifier_words(m: u128) -> [u32; 4] {
    [
        m as u32,
        (m >> 32) as u32,
        (m >> 64) as u32,
        (m >> 96) as u32,
    ]
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn find_lanes<const N: usize>(
    s: &Schedule,
    start: u128,
    count: u64,
    mask: u32,
    target: u32,
) -> Option<u64> {
    let mut off = 0u64;
    while off < count {
        let m: [[u32; 4]; N] = core::array::from_fn(|l| {
            modifier_words(start.wrapping_add(u128::from(off) + l as u128))
        });
        let (abcd, _) = hash_lanes::<N>(s, &m);
        for (l, v) in abcd.iter().enumerate() {
            let a = _mm_extract_epi32::<3>(*v) as u32;
            let at = off + l as u64;
            if a & mask == target && at < count {
                return Some(at);
            }
        }
        off += N as u64;
    }
    None
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn digest_lanes<const N: usize>(s: &Schedule, modifiers: &[u128; N]) -> [[u32; 5]; N] {
    let m: [[u32; 4]; N] = core::array::from_fn(|l| modifier_words(modifiers[l]));
    let (abcd, e) = hash_lanes::<N>(s, &m);
    core::array::from_fn(|l| {
        [
            _mm_extract_epi32::<3>(abcd[l]) as u32,
            _mm_extract_epi32::<2>(abcd[l]) as u32,
            _mm_extract_epi32::<1>(abcd[l]) as u32,
            _mm_extract_epi32::<0>(abcd[l]) as u32,
            _mm_extract_epi32::<3>(e[l]) as u32,
        ]
    })
}
