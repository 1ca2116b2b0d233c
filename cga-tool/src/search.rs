//! The multithreaded, cancellable modifier search of RFC 3972 §4 steps 2–3 (and RFC 5535
//! §6 steps 3–4), and the benchmark that measures its sustained rate.
//!
//! # How the work is split
//! Candidates are `start + i` for `i = 0, 1, 2, …` (the RFC's "increment the modifier by
//! one", 128-bit and wrapping). The offsets are cut into batches of [`BATCH`] handed out
//! in increasing order through one atomic counter; each worker (a `std::thread::scope`
//! thread) hashes whole batches with the [`ModifierHasher`] kernel.
//!
//! # Why the result is the sequential one
//! A worker that fetches a batch always finishes it, and batches are fetched in order, so
//! when the lowest hit lies in batch `b` every batch below `b` has been (or is being)
//! fully hashed. Workers stop fetching once a hit is known below their next batch, and
//! the smallest hit wins (`fetch_min`). The result is therefore exactly the modifier the
//! single-threaded loop of RFC 3972 §4 would find from the same start, whatever the
//! thread count; the RFC 3972 Appendix A vector depends on that.
//!
//! # Cancellation and resumption
//! Workers check the cancel flag before fetching each batch (a batch takes about a
//! millisecond). On cancellation every batch below the counter's final value has been
//! hashed, so the search can later resume from `start + counter·BATCH` without skipping
//! a candidate ([`Outcome::Cancelled::resume_from`]).
//!
//! # Progress
//! The calling thread does no hashing: it waits on a channel for the workers to finish,
//! waking every `interval` to call the progress callback. Callbacks therefore run on the
//! caller's thread and need not be `Send`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::kernel::{Kernel, ModifierHasher};
use crate::sec::Sec;

/// Candidates per batch: about a millisecond of work per thread, which bounds the
/// cancellation latency and the work wasted past a hit.
pub const BATCH: u64 = 1 << 14;

/// A snapshot handed to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Hashes computed so far by this search.
    pub hashes: u64,
    /// Time since the search started.
    pub elapsed: Duration,
    /// Mean number of hashes a search at this Sec needs: 2^(16·Sec).
    pub expected_hashes: f64,
    /// Every candidate offset below this one has been hashed without a hit: a search
    /// restarted from `start + done_below` skips nothing (a checkpoint for `--resume`).
    pub done_below: u64,
}

impl Progress {
    /// Hashes per second so far.
    pub fn rate(&self) -> f64 {
        rate(self.hashes, self.elapsed)
    }

    /// Expected time still to go. The number of tries is geometric, hence memoryless:
    /// the expected remaining work is the full expectation whatever has been tried.
    pub fn expected_remaining(&self) -> Option<Duration> {
        let r = self.rate();
        (r > 0.0).then(|| Duration::from_secs_f64((self.expected_hashes / r).min(1e12)))
    }
}

fn rate(hashes: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { hashes as f64 / s } else { 0.0 }
}

/// How a search runs: threads, kernel, cancel flag and progress callback.
pub struct SearchConfig<'a> {
    /// Worker threads (at least one is used).
    pub threads: usize,
    /// The hashing kernel.
    pub kernel: Kernel,
    /// Set from elsewhere (a signal handler, another thread) to stop the search.
    pub cancel: Option<&'a AtomicBool>,
    /// Called on the caller's thread about every `progress_interval`.
    pub progress: Option<&'a mut dyn FnMut(&Progress)>,
    /// How often `progress` is called.
    pub progress_interval: Duration,
}

impl Default for SearchConfig<'_> {
    /// All available cores, the best kernel, no cancel flag, no progress.
    fn default() -> Self {
        Self {
            threads: default_threads(),
            kernel: Kernel::best(),
            cancel: None,
            progress: None,
            progress_interval: Duration::from_millis(500),
        }
    }
}

impl core::fmt::Debug for SearchConfig<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SearchConfig")
            .field("threads", &self.threads)
            .field("kernel", &self.kernel)
            .field("cancel", &self.cancel.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The number of CPUs this process may use (1 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A modifier whose Hash2 has the required zero bits.
    Found {
        /// The modifier: the first from `start` that satisfies the condition.
        modifier: [u8; 16],
        /// Its offset from the start: the number of tries a sequential search makes
        /// before it (so the tries are `offset + 1`).
        offset: u64,
        /// Hashes actually computed (a little more than `offset + 1` with threads).
        hashes: u64,
        /// Wall-clock time.
        elapsed: Duration,
    },
    /// The cancel flag was raised first.
    Cancelled {
        /// Every candidate before this one was tried; resume here.
        resume_from: [u8; 16],
        /// Hashes computed.
        hashes: u64,
        /// Wall-clock time.
        elapsed: Duration,
    },
}

impl Outcome {
    /// Hashes computed.
    pub fn hashes(&self) -> u64 {
        match self {
            Self::Found { hashes, .. } | Self::Cancelled { hashes, .. } => *hashes,
        }
    }

    /// Wall-clock time.
    pub fn elapsed(&self) -> Duration {
        match self {
            Self::Found { elapsed, .. } | Self::Cancelled { elapsed, .. } => *elapsed,
        }
    }
}

/// Searches for the first modifier `m ≥ start` (wrapping) such that the leading 16·Sec
/// bits of SHA-1(`m ‖ tail`) are zero, where `tail` is the Hash2 input after the modifier
/// (RFC 3972 §4 steps 2–3). With Sec 0 the start itself is returned without hashing
/// ("steps 2–3 can be skipped").
pub fn search(
    tail: &[u8],
    sec: Sec,
    start: [u8; 16],
    config: &mut SearchConfig<'_>,
) -> Result<Outcome> {
    if sec == Sec::ZERO {
        return Ok(Outcome::Found {
            modifier: start,
            offset: 0,
            hashes: 0,
            elapsed: Duration::ZERO,
        });
    }
    let hasher = ModifierHasher::new(tail, config.kernel);
    let start_n = u128::from_be_bytes(start);
    let run = run(
        &hasher,
        start_n,
        sec.mask(),
        0,
        config,
        sec.expected_hashes(),
        None,
    );
    let at = |off: u64| start_n.wrapping_add(u128::from(off)).to_be_bytes();
    if let Some(offset) = run.found {
        Ok(Outcome::Found {
            modifier: at(offset),
            offset,
            hashes: run.hashes,
            elapsed: run.elapsed,
        })
    } else if run.exhausted {
        Err(Error::SearchExhausted)
    } else {
        Ok(Outcome::Cancelled {
            resume_from: at(run.next_batch * BATCH),
            hashes: run.hashes,
            elapsed: run.elapsed,
        })
    }
}

/// One benchmark measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchResult {
    /// Hashes computed.
    pub hashes: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Octets hashed per candidate.
    pub message_octets: usize,
    /// Threads used.
    pub threads: usize,
}

impl BenchResult {
    /// The sustained rate.
    pub fn hashes_per_s(&self) -> f64 {
        rate(self.hashes, self.elapsed)
    }
}

/// Runs the search machinery (same kernel, batches and threads) for `duration` on
/// `tail` with a condition that can never hold, and reports the sustained rate.
pub fn bench(tail: &[u8], duration: Duration, config: &mut SearchConfig<'_>) -> BenchResult {
    let hasher = ModifierHasher::new(tail, config.kernel);
    // mask 0 with target 1: `w & 0 == 1` never holds, yet every candidate is hashed.
    let run = run(
        &hasher,
        0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        0,
        1,
        config,
        f64::INFINITY,
        Some(duration),
    );
    BenchResult {
        hashes: run.hashes,
        elapsed: run.elapsed,
        message_octets: hasher.message_len(),
        threads: config.threads.max(1),
    }
}

struct Run {
    found: Option<u64>,
    exhausted: bool,
    next_batch: u64,
    hashes: u64,
    elapsed: Duration,
}

/// The worker pool. Returns when a hit is certain to be the lowest, when cancelled, or
/// when `deadline` (benchmark) passes.
fn run(
    hasher: &ModifierHasher,
    start: u128,
    mask: u32,
    target: u32,
    config: &mut SearchConfig<'_>,
    expected_hashes: f64,
    duration: Option<Duration>,
) -> Run {
    let threads = config.threads.max(1);
    let next = AtomicU64::new(0);
    let found = AtomicU64::new(u64::MAX);
    let hashes = AtomicU64::new(0);
    let exhausted = AtomicBool::new(false);
    // The batch each worker is hashing (u64::MAX when between batches): with `next`, it
    // gives the lowest unfinished batch for checkpoints.
    let slots: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(u64::MAX)).collect();
    // Raised by the caller's thread when the benchmark's time is up.
    let stop = AtomicBool::new(false);
    let never = AtomicBool::new(false);
    let cancel = config.cancel.unwrap_or(&never);
    let began = Instant::now();

    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        for slot in &slots {
            let done_tx = done_tx.clone();
            let (next, found, hashes, exhausted, stop) =
                (&next, &found, &hashes, &exhausted, &stop);
            s.spawn(move || {
                loop {
                    // Check before fetching: a fetched batch is always finished (see the
                    // module documentation on resumption).
                    if cancel.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Claim the next batch, publishing it in `slot` *before* the claim is
                    // visible in `next`, so an observer that sees `next` past it also
                    // sees it in flight (or finished).
                    let b = loop {
                        let b = next.load(Ordering::SeqCst);
                        slot.store(b, Ordering::SeqCst);
                        if next
                            .compare_exchange(b, b + 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                        {
                            break b;
                        }
                    };
                    let Some(base) = b.checked_mul(BATCH).filter(|x| *x <= u64::MAX - BATCH) else {
                        exhausted.store(true, Ordering::Relaxed);
                        break;
                    };
                    if base >= found.load(Ordering::Acquire) {
                        // A hit below this batch exists; everything below it is covered.
                        break;
                    }
                    if let Some(i) =
                        hasher.find(start.wrapping_add(u128::from(base)), BATCH, mask, target)
                    {
                        found.fetch_min(base + i, Ordering::AcqRel);
                    }
                    hashes.fetch_add(BATCH, Ordering::Relaxed);
                    slot.store(u64::MAX, Ordering::SeqCst);
                }
                slot.store(u64::MAX, Ordering::SeqCst);
                // The receiver outlives every worker; a send error cannot happen.
                let _ = done_tx.send(());
            });
        }
        drop(done_tx);

        let mut finished = 0;
        let mut last_report = Instant::now();
        while finished < threads {
            let now = Instant::now();
            let mut wait = config.progress_interval.max(Duration::from_millis(1));
            if let Some(d) = duration {
                let end = began + d;
                if now >= end {
                    stop.store(true, Ordering::Relaxed);
                    wait = Duration::from_millis(50);
                } else {
                    wait = wait.min(end - now);
                }
            }
            match done_rx.recv_timeout(wait) {
                Ok(()) => finished += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // All senders gone: every worker has exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Some(cb) = config.progress.as_deref_mut()
                && last_report.elapsed() >= config.progress_interval
            {
                last_report = Instant::now();
                // Read `next` first: any batch claimed after this read is above it.
                let claimed = next.load(Ordering::SeqCst);
                let lowest = slots
                    .iter()
                    .map(|s| s.load(Ordering::SeqCst))
                    .fold(claimed, u64::min);
                cb(&Progress {
                    hashes: hashes.load(Ordering::Relaxed),
                    elapsed: began.elapsed(),
                    expected_hashes,
                    done_below: lowest.saturating_mul(BATCH),
                });
            }
        }
    });

    let f = found.load(Ordering::Acquire);
    Run {
        found: (f != u64::MAX).then_some(f),
        exhausted: exhausted.load(Ordering::Relaxed),
        next_batch: next.load(Ordering::Relaxed),
        hashes: hashes.load(Ordering::Relaxed),
        elapsed: began.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::reference_digest;

    fn first_hit(tail: &[u8], start: u128, mask: u32) -> u64 {
        (0u64..)
            .find(|&i| {
                let d = reference_digest(start.wrapping_add(u128::from(i)), tail);
                u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & mask == 0
            })
            .unwrap_or(u64::MAX)
    }

    #[test]
    fn result_is_the_sequential_one_for_any_thread_count() {
        let tail = [0x5au8; 120];
        let start = u128::MAX - 3 * u128::from(BATCH) + 17;
        let want = first_hit(&tail, start, Sec::ONE.mask());
        for threads in [1, 2, 3, 5] {
            for kernel in [Kernel::portable(), Kernel::best()] {
                let mut cfg = SearchConfig {
                    threads,
                    kernel,
                    ..SearchConfig::default()
                };
                let out = search(&tail, Sec::ONE, start.to_be_bytes(), &mut cfg).unwrap();
                let Outcome::Found {
                    modifier,
                    offset,
                    hashes,
                    ..
                } = out
                else {
                    panic!("not found: {out:?}")
                };
                assert_eq!(offset, want, "threads {threads}");
                assert_eq!(modifier, start.wrapping_add(u128::from(want)).to_be_bytes());
                assert!(hashes > offset);
            }
        }
    }

    #[test]
    fn sec0_needs_no_search() {
        let out = search(&[1, 2, 3], Sec::ZERO, [7; 16], &mut SearchConfig::default()).unwrap();
        assert!(matches!(out, Outcome::Found { modifier, hashes: 0, .. } if modifier == [7; 16]));
    }

    #[test]
    fn cancelled_search_resumes_without_gaps() {
        let tail = [0x11u8; 40];
        let cancel = AtomicBool::new(true);
        let mut cfg = SearchConfig {
            threads: 2,
            cancel: Some(&cancel),
            ..SearchConfig::default()
        };
        // Cancelled before anything: resume from the start itself.
        let out = search(&tail, Sec::TWO, [0; 16], &mut cfg).unwrap();
        assert_eq!(
            out,
            Outcome::Cancelled {
                resume_from: [0; 16],
                hashes: 0,
                elapsed: out.elapsed()
            }
        );
        // Cancel from the progress callback after some work: the resume point is a batch
        // boundary no further than the hashes done.
        let flag = AtomicBool::new(false);
        let mut calls = 0;
        let mut cb = |p: &Progress| {
            calls += 1;
            assert_eq!(p.done_below % BATCH, 0);
            assert!(p.done_below <= p.hashes, "{p:?}");
            if p.hashes > 0 {
                flag.store(true, Ordering::Relaxed);
            }
        };
        let mut cfg = SearchConfig {
            threads: 2,
            cancel: Some(&flag),
            progress: Some(&mut cb),
            progress_interval: Duration::from_millis(5),
            ..SearchConfig::default()
        };
        let out = search(&tail, Sec::TWO, [0; 16], &mut cfg).unwrap();
        if let Outcome::Cancelled {
            resume_from,
            hashes,
            ..
        } = out
        {
            let r = u128::from_be_bytes(resume_from);
            assert_eq!(r % u128::from(BATCH), 0);
            assert_eq!(r, u128::from(hashes), "every fetched batch was finished");
        }
        assert!(calls > 0);
    }

    #[test]
    fn bench_counts_hashes() {
        let r = bench(
            &[0u8; 100],
            Duration::from_millis(30),
            &mut SearchConfig {
                threads: 1,
                ..SearchConfig::default()
            },
        );
        assert!(r.hashes >= BATCH);
        assert_eq!(r.message_octets, 116);
        assert!(r.hashes_per_s() > 0.0);
    }
}
