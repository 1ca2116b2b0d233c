//! The modifier-search benchmark published in `docs/bench/cga-search.md`.
//!
//! ```text
//! cargo bench -p cga-tool --bench search -- [--seconds S] [--rounds R] [--sec1-searches N]
//!                                           [--sec2-searches M]
//! ```
//!
//! For RSA-1024 and RSA-2048 keys it measures, in the same run and interleaved round by
//! round (so that background load hits every configuration alike):
//! - the baseline: `sha1::Sha1::digest` over the whole Hash2 input with a changing
//!   modifier, what a straightforward generator does per try, on 1 and 2 threads;
//! - the real search machinery (`cga::search::bench`: kernel, batches, threads) with the
//!   default kernel on 1 and 2 threads;
//! - on 1 thread, the other kernels: SHA-NI with 1, 2 and 8 lanes, and the portable one.
//!
//! It prints the median of each over the rounds, the per-round ratios' medians, the
//! predicted Sec 1 / Sec 2 times (the number of tries is geometric with p = 2^-16·Sec),
//! and real Sec 1 searches (and optionally Sec 2) to check the prediction.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cga::kernel::Kernel;
use cga::search::{self, Outcome, SearchConfig};
use cga::{Generator, PrivateKey, Sec};
use sha1::{Digest as _, Sha1};

struct Opts {
    seconds: f64,
    rounds: usize,
    sec1_searches: usize,
    sec2_searches: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        seconds: 1.0,
        rounds: 5,
        sec1_searches: 200,
        sec2_searches: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).map(String::as_str).unwrap_or("");
        match args[i].as_str() {
            "--seconds" => o.seconds = val().parse().expect("--seconds S"),
            "--rounds" => o.rounds = val().parse().expect("--rounds R"),
            "--sec1-searches" => o.sec1_searches = val().parse().expect("--sec1-searches N"),
            "--sec2-searches" => o.sec2_searches = val().parse().expect("--sec2-searches M"),
            // `cargo bench` passes `--bench`; ignore it and anything else.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// `Sha1::digest` over `modifier ‖ tail` for `duration` on `threads` threads, bumping
/// the modifier each time: hashes per second.
fn baseline(tail: &[u8], threads: usize, duration: Duration) -> f64 {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut buf = vec![0u8; 16 + tail.len()];
                    buf[16..].copy_from_slice(tail);
                    let mut m = (t as u128) << 100;
                    let mut n = 0u64;
                    let mut sink = 0u8;
                    while start.elapsed() < duration {
                        for _ in 0..4096 {
                            buf[..16].copy_from_slice(&m.to_be_bytes());
                            sink ^= Sha1::digest(&buf)[0];
                            m = m.wrapping_add(1);
                        }
                        n += 4096;
                    }
                    black_box(sink);
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn kernel_rate(tail: &[u8], threads: usize, kernel: Kernel, duration: Duration) -> f64 {
    search::bench(
        tail,
        duration,
        &mut SearchConfig {
            threads,
            kernel,
            ..SearchConfig::default()
        },
    )
    .hashes_per_s()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The q-quantile of the number of tries of a geometric search with success
/// probability p: the smallest n with 1 − (1 − p)^n ≥ q.
fn tries_quantile(p: f64, q: f64) -> f64 {
    ((1.0 - q).ln() / (-p).ln_1p()).ceil()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn fmt_time(secs: f64) -> String {
    cga::sec::human_duration(secs)
}

#[derive(Default, Clone)]
struct Samples {
    base1: Vec<f64>,
    base2: Vec<f64>,
    k1: Vec<f64>,
    k2: Vec<f64>,
    lanes1: Vec<f64>,
    lanes2: Vec<f64>,
    lanes8: Vec<f64>,
    portable: Vec<f64>,
    ratio1: Vec<f64>,
    ratio2: Vec<f64>,
    scaling: Vec<f64>,
}

fn main() {
    let o = opts();
    let d = Duration::from_secs_f64(o.seconds);
    let best = Kernel::best();
    println!("# cga-tool modifier-search benchmark");
    println!();
    println!(
        "CPU: {} ({} CPUs available); kernel: {best}; {} rounds of {:.1} s per measurement",
        cpu_model(),
        search::default_threads(),
        o.rounds,
        o.seconds
    );
    println!("load average at start: {}", loadavg());
    println!();

    let bits = [1024u32, 2048];
    let keys: Vec<_> = bits
        .iter()
        .map(|&b| PrivateKey::generate(b).unwrap().public_key().unwrap())
        .collect();
    let tails: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| cga::hash::hash2_tail(k.der()))
        .collect();
    let mut samples = vec![Samples::default(); bits.len()];

    for round in 0..o.rounds {
        for (i, tail) in tails.iter().enumerate() {
            let s = &mut samples[i];
            let b1 = baseline(tail, 1, d);
            let k1 = kernel_rate(tail, 1, best, d);
            let b2 = baseline(tail, 2, d);
            let k2 = kernel_rate(tail, 2, best, d);
            s.base1.push(b1);
            s.k1.push(k1);
            s.base2.push(b2);
            s.k2.push(k2);
            s.ratio1.push(k1 / b1);
            s.ratio2.push(k2 / b2);
            s.scaling.push(k2 / k1);
            for (lanes, v) in [(1, &mut s.lanes1), (2, &mut s.lanes2), (8, &mut s.lanes8)] {
                if let Some(k) = Kernel::sha_ni(lanes) {
                    v.push(kernel_rate(tail, 1, k, d));
                }
            }
            s.portable.push(kernel_rate(tail, 1, Kernel::portable(), d));
        }
        eprintln!(
            "round {} of {} done (load {})",
            round + 1,
            o.rounds,
            loadavg()
        );
    }

    println!("## Rates (median of {} rounds, M hashes/s)", o.rounds);
    println!();
    println!(
        "| key | Hash2 input | `Sha1::digest` 1 thread | search 1 thread | ratio | `Sha1::digest` 2 threads | search 2 threads | ratio | search scaling 1→2 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, b) in bits.iter().enumerate() {
        let s = &mut samples[i];
        println!(
            "| RSA-{b} | {} octets | {:.2} | {:.2} | {:.2}× | {:.2} | {:.2} | {:.2}× | {:.2}× |",
            16 + tails[i].len(),
            median(&mut s.base1) / 1e6,
            median(&mut s.k1) / 1e6,
            median(&mut s.ratio1),
            median(&mut s.base2) / 1e6,
            median(&mut s.k2) / 1e6,
            median(&mut s.ratio2),
            median(&mut s.scaling),
        );
    }
    println!();
    println!(
        "Ratios and scaling are medians of per-round ratios (both sides measured back to back)."
    );
    println!();
    println!("## Kernels on 1 thread (median M hashes/s)");
    println!();
    println!("| key | portable (`sha1` compress) | SHA-NI 1 lane | 2 lanes | 4 lanes | 8 lanes |");
    println!("|---|---|---|---|---|---|");
    for (i, b) in bits.iter().enumerate() {
        let s = &mut samples[i];
        let m = |v: &mut Vec<f64>| {
            if v.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.2}", median(v) / 1e6)
            }
        };
        println!(
            "| RSA-{b} | {} | {} | {} | {} | {} |",
            m(&mut s.portable),
            m(&mut s.lanes1),
            m(&mut s.lanes2),
            m(&mut s.k1),
            m(&mut s.lanes8)
        );
    }
    println!();

    println!("## Predicted search times (2 threads, median rate above)");
    println!();
    println!("| key | Sec | expected tries | expected | median | p99 |");
    println!("|---|---|---|---|---|---|");
    for (i, b) in bits.iter().enumerate() {
        let rate = median(&mut samples[i].k2);
        for sec in [1u8, 2] {
            let p = 2f64.powi(-16 * i32::from(sec));
            println!(
                "| RSA-{b} | {sec} | 2^{} | {} | {} | {} |",
                16 * sec,
                fmt_time(1.0 / p / rate),
                fmt_time(tries_quantile(p, 0.5) / rate),
                fmt_time(tries_quantile(p, 0.99) / rate),
            );
        }
    }
    println!();

    for (sec, n) in [(Sec::ONE, o.sec1_searches), (Sec::TWO, o.sec2_searches)] {
        if n == 0 {
            continue;
        }
        // Real searches from random modifiers with RSA-2048 and 2 threads.
        let g = Generator::cga(&keys[1], sec);
        let mut times = Vec::with_capacity(n);
        let mut tries = Vec::with_capacity(n);
        for _ in 0..n {
            let mut cfg = SearchConfig {
                threads: 2,
                ..SearchConfig::default()
            };
            let start = cga::generate::random_modifier().unwrap();
            let t = Instant::now();
            let out = g.search(start, &mut cfg).unwrap();
            times.push(t.elapsed().as_secs_f64());
            if let Outcome::Found { offset, .. } = out {
                tries.push(offset as f64 + 1.0);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let p = 2f64.powi(-16 * i32::from(sec.value()));
        println!("## {n} real Sec {sec} searches (RSA-2048, 2 threads, random starting modifiers)");
        println!();
        println!("| | mean | median | p99 |");
        println!("|---|---|---|---|");
        println!(
            "| tries (measured) | {:.0} | {:.0} | {:.0} |",
            mean(&tries),
            median(&mut tries.clone()),
            quantile(&mut tries.clone(), 0.99)
        );
        println!(
            "| tries (geometric) | {:.0} | {:.0} | {:.0} |",
            1.0 / p,
            tries_quantile(p, 0.5),
            tries_quantile(p, 0.99)
        );
        println!(
            "| time (measured) | {} | {} | {} |",
            fmt_time(mean(&times)),
            fmt_time(median(&mut times.clone())),
            fmt_time(quantile(&mut times.clone(), 0.99))
        );
        println!();
    }
    println!("load average at end: {}", loadavg());
}
