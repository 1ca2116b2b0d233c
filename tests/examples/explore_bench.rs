//! REAP exploration time in the netns testbed (issue 6, "Measure"), the real-kernel
//! counterpart of `reap`'s simulator study (docs/reap-study.md): two shim6d processes on
//! the LinShim6 testbed, a TCP stream between their ULIDs (data A → B, ACKs B → A, so
//! both hosts send), and per trial `n` of the 18 unidirectional paths broken in the
//! router: always each host's current sending path (the current pair both ways) plus
//! `n − 2` others drawn uniformly from the rest, redrawn until each direction keeps a
//! working path (as the simulator study does). Results: docs/bench/netns-exploration.md.
//!
//! `explore_bench [--trials N] [--n 2,4,8] [--send-timeout SECONDS] [--seed S] [--json]
//! [--keep] [--udp]` (`--keep`: leave the daemons' directory, logs included; `--udp`:
//! instead of the TCP stream, a 64-octet UDP datagram every 100 ms from each host to the
//! other's ULID, the study's two-way traffic)
//! (root; the `shim6d` binary next to this one or `$SHIM6D_BIN`).
//!
//! Definitions (docs/reap-study.md "Definitions"): detection is the first `path_failed`
//! of either daemon after the cut; the exploration ends when both daemons have moved
//! (`path_changed`, which REAP raises only on a pair a probe proved) to a sending path
//! that is not broken, i.e. payload flows both ways again; exploration time is the span
//! between, from the daemons' event histories (microsecond wall clock of one machine).
//! The first probe succeeds when the detecting daemon's `exploring_probes_sent` grew by
//! exactly one from the cut to the end of the exploration.

use std::{
    net::{Ipv6Addr, SocketAddr, SocketAddrV6},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use shim6_tests::{
    daemons::{self, Bins, Daemon, Options, Pair, Stream},
    testbed::{Direction, SINK_PORT},
};
use xfrm_sys::netns::NetnsThread;

/// A seeded splitmix64 (the draws only need to be reproducible, not strong).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A unidirectional path: direction, A's locator index, B's locator index.
type Path = (Direction, usize, usize);

/// Each host's sending path plus `n − 2` other paths, redrawn until each direction keeps
/// a working path.
fn draw(rng: &mut Rng, n: usize, k: usize, cur: [Path; 2]) -> Vec<Path> {
    let all: Vec<Path> = [Direction::AtoB, Direction::BtoA]
        .into_iter()
        .flat_map(|d| (0..k).flat_map(move |i| (0..k).map(move |j| (d, i, j))))
        .collect();
    let others: Vec<Path> = all.iter().copied().filter(|p| !cur.contains(p)).collect();
    loop {
        let mut pool = others.clone();
        let mut set = cur.to_vec();
        for _ in 0..n.saturating_sub(2) {
            set.push(pool.swap_remove(rng.below(pool.len())));
        }
        let open = |d: Direction| all.iter().any(|p| p.0 == d && !set.contains(p));
        if open(Direction::AtoB) && open(Direction::BtoA) {
            return set;
        }
    }
}

fn stat(d: &Daemon, name: &str) -> u64 {
    d.contexts()
        .ok()
        .and_then(|c| {
            c.first()
                .map(|c| c["reap"]["stats"][name].as_u64().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn pair_of(v: &serde_json::Value) -> Option<(Ipv6Addr, Ipv6Addr)> {
    Some((
        v["local"].as_str()?.parse().ok()?,
        v["remote"].as_str()?.parse().ok()?,
    ))
}

#[derive(Clone, Copy, Debug)]
struct Trial {
    /// Detection → exploration end, seconds (None: not recovered within the bound).
    explore_s: Option<f64>,
    first_probe: bool,
    detect_s: Option<f64>,
}

/// Paced UDP both ways between the ULIDs: a datagram every 100 ms from each host (the
/// study's "interactive session"), to the discard port; stops when dropped.
struct Udp {
    stop: Arc<AtomicBool>,
    threads: Vec<NetnsThread<std::io::Result<()>>>,
}

impl Udp {
    fn start(pair: &Pair) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ua, ub) = pair.ulids();
        let mut threads = Vec::new();
        for (ns, src, dst) in [(&pair.bed.a, ua, ub), (&pair.bed.b, ub, ua)] {
            let stop = stop.clone();
            threads.push(ns.spawn(move || async move {
                let s =
                    tokio::net::UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 0)))
                        .await?;
                let to = SocketAddr::V6(SocketAddrV6::new(dst, SINK_PORT, 0, 0));
                while !stop.load(Ordering::Relaxed) {
                    // Errors (an ICMP error reported on the socket) do not stop the pacing.
                    let _ = s.send_to(&[0u8; 64], to).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(())
            })?);
        }
        Ok(Self { stop, threads })
    }
}

impl Drop for Udp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The trial's traffic: the TCP stream A → B (default) or paced UDP both ways (`--udp`).
enum Traffic {
    Tcp(Stream),
    Udp(Udp),
}

fn trial(pair: &Pair, rng: &mut Rng, n: usize, udp: bool) -> Result<Trial, String> {
    let (ua, ub) = pair.ulids();
    let (ha, hb) = (&pair.a.hba, pair.b_hba());
    let traffic = if udp {
        Traffic::Udp(Udp::start(pair).map_err(|e| e.to_string())?)
    } else {
        Traffic::Tcp(Stream::start(&pair.bed.a, &pair.bed.b, ua, ub).map_err(|e| e.to_string())?)
    };
    // Let the stream run (and any settling of REAP finish) before the cut.
    std::thread::sleep(Duration::from_millis(1500));
    let (la, ra) = pair.current_pair().map_err(|e| e.to_string())?;
    let (lb, rb) = daemons::current_pair_of(pair.b()).map_err(|e| e.to_string())?;
    let ix = |set: &[Ipv6Addr], a: Ipv6Addr| set.iter().position(|x| *x == a);
    let cur_a = (
        Direction::AtoB,
        ix(ha, la).ok_or("A's local")?,
        ix(hb, ra).ok_or("A's remote")?,
    );
    let cur_b = (
        Direction::BtoA,
        ix(ha, rb).ok_or("B's remote")?,
        ix(hb, lb).ok_or("B's local")?,
    );
    let set = draw(rng, n, 3, [cur_a, cur_b]);
    let broken = |d: Direction, i: usize, j: usize| set.contains(&(d, i, j));
    let before = [
        stat(&pair.a, "exploring_probes_sent"),
        stat(pair.b(), "exploring_probes_sent"),
    ];
    let break_us = daemons::unix_us();
    for &(d, i, j) in &set {
        let (s, t) = match d {
            Direction::AtoB => (ha[i], hb[j]),
            Direction::BtoA => (hb[j], ha[i]),
        };
        pair.bed.break_addrs(s, t).map_err(|e| e.to_string())?;
    }
    let t0 = Instant::now();
    let mut out = Trial {
        explore_s: None,
        first_probe: false,
        detect_s: None,
    };
    while t0.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(50));
        let (Ok(ea), Ok(eb)) = (daemons::history(&pair.a), daemons::history(pair.b())) else {
            continue;
        };
        let ea: Vec<_> = ea.into_iter().filter(|e| e.0 >= break_us).collect();
        let eb: Vec<_> = eb.into_iter().filter(|e| e.0 >= break_us).collect();
        let fa = ea.iter().find(|e| e.1 == "path_failed").map(|e| e.0);
        let fb = eb.iter().find(|e| e.1 == "path_failed").map(|e| e.0);
        let Some(detect) = [fa, fb].into_iter().flatten().min() else {
            continue;
        };
        // Each side's first move to a working sending path after the detection.
        let moved = |evs: &[(u64, String, serde_json::Value)], side: Direction| {
            evs.iter()
                .filter(|e| e.0 >= detect && e.1 == "path_changed")
                .find(|e| {
                    pair_of(&e.2["to"]).is_some_and(|(l, r)| match side {
                        Direction::AtoB => ix(ha, l)
                            .zip(ix(hb, r))
                            .is_some_and(|(i, j)| !broken(side, i, j)),
                        Direction::BtoA => ix(hb, l)
                            .zip(ix(ha, r))
                            .is_some_and(|(j, i)| !broken(side, i, j)),
                    })
                })
                .map(|e| e.0)
        };
        if let (Some(ma), Some(mb)) = (moved(&ea, Direction::AtoB), moved(&eb, Direction::BtoA)) {
            let end = ma.max(mb);
            out.explore_s = Some(end.saturating_sub(detect) as f64 / 1e6);
            out.detect_s = Some(detect.saturating_sub(break_us) as f64 / 1e6);
            let detecting_a = fa.is_some_and(|a| fb.is_none_or(|b| a <= b));
            let (d, b0) = if detecting_a {
                (&pair.a, before[0])
            } else {
                (pair.b(), before[1])
            };
            out.first_probe = stat(d, "exploring_probes_sent").saturating_sub(b0) == 1;
            break;
        }
    }
    pair.bed.heal_all().map_err(|e| e.to_string())?;
    match traffic {
        Traffic::Tcp(stream) => {
            if let Some(e) = stream.finish(Duration::from_secs(15)).error {
                eprintln!("  (stream: {e})");
            }
        }
        Traffic::Udp(u) => drop(u),
    }
    std::thread::sleep(Duration::from_millis(500));
    Ok(out)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let json = args.iter().any(|a| a == "--json");
    let udp = args.iter().any(|a| a == "--udp");
    let trials: usize = arg("--trials").and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: u64 = arg("--seed").and_then(|s| s.parse().ok()).unwrap_or(2011);
    let send_timeout: f64 = arg("--send-timeout")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let ns: Vec<usize> = arg("--n")
        .unwrap_or_else(|| "2,4,8".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .filter(|n| (2..=16).contains(n))
        .collect();
    if !xfrm_sys::netns::have_net_admin() {
        eprintln!("explore_bench: needs root (CAP_NET_ADMIN) to create network namespaces");
        return ExitCode::from(2);
    }
    let bins = match Bins::locate() {
        Ok(b) => Bins {
            cga_tool: None,
            ..b
        },
        Err(e) => {
            eprintln!("explore_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        send_timeout,
        log: "info".into(),
        keep: args.iter().any(|a| a == "--keep"),
        ..Options::default()
    };
    let pair = match Pair::start("xb", &bins, options) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("explore_bench: setup: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = pair.establish() {
        eprintln!("explore_bench: establish: {e}");
        return ExitCode::from(1);
    }
    let mut rng = Rng(seed);
    let mut report = serde_json::Map::new();
    if !json {
        println!(
            "| n broken | recovered | first probe succeeds | p50 | p80 | max | detection p50 |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
    }
    for &n in &ns {
        let mut res = Vec::new();
        for t in 0..trials {
            match trial(&pair, &mut rng, n, udp) {
                Ok(r) => res.push(r),
                Err(e) => eprintln!("  n={n} trial {t}: {e}"),
            }
        }
        let mut ex: Vec<f64> = res.iter().filter_map(|r| r.explore_s).collect();
        ex.sort_by(f64::total_cmp);
        let mut det: Vec<f64> = res.iter().filter_map(|r| r.detect_s).collect();
        det.sort_by(f64::total_cmp);
        let first = res
            .iter()
            .filter(|r| r.explore_s.is_some() && r.first_probe)
            .count();
        let pct = 100.0 * first as f64 / trials.max(1) as f64;
        let ms = |s: f64| (s * 1000.0).round();
        let (p50, p80, max) = (
            quantile(&ex, 0.5),
            quantile(&ex, 0.8),
            ex.last().copied().unwrap_or(f64::NAN),
        );
        if json {
            report.insert(
                n.to_string(),
                serde_json::json!({
                    "trials": trials, "recovered": ex.len(), "first_probe_pct": pct,
                    "p50_ms": ms(p50), "p80_ms": ms(p80), "max_ms": ms(max),
                    "detection_p50_ms": ms(quantile(&det, 0.5)),
                }),
            );
        } else {
            println!(
                "| {n} | {}/{trials} | {pct:.0} % | {} ms | {} ms | {} ms | {} ms |",
                ex.len(),
                ms(p50),
                ms(p80),
                ms(max),
                ms(quantile(&det, 0.5))
            );
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "send_timeout_s": send_timeout, "seed": seed, "traffic": if udp { "udp" } else { "tcp" }, "broken": report })
        );
    }
    ExitCode::SUCCESS
}
