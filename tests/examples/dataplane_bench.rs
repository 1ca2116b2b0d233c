//! Data-plane cost of shim6d: TCP goodput, UDP packet rate and UDP round-trip time
//! between the two hosts' ULIDs on the LinShim6 testbed, with two real daemons, under
//! three conditions alternated round by round (medians over the rounds, ratios to the
//! kernel path of the same run):
//!
//! - `kernel`: no context (`rm *` on both daemons, so no per-peer route into the TUN):
//!   the plain kernel path between the ULIDs;
//! - `shim6d`: a context ESTABLISHED on the ULID pair: packets pass through the TUN and
//!   the daemon, not rewritten;
//! - `rewritten`: the ULID pair broken in both directions at the router, REAP moved both
//!   sides to another pair: every packet gets the 8-octet payload header (RFC 5533 §5.3).
//!
//! `shim6d` and `rewritten` run in three data-path settings, both daemons restarted
//! between them: the defaults (`[tun] offload = true`, `packet_socket = true`),
//! `no-offload` (`offload = false`) and `plain` (`offload = false`, `packet_socket =
//! false`: the raw socket only).
//!
//! Also the daemons' CPU time (utime + stime from `/proc/PID/stat`) during each
//! condition's measurements, and their resident memory.
//!
//! `dataplane_bench [SECONDS] [ROUNDS] [MODES]` (defaults 3, 3 and `all`; `full`,
//! `no-offload` or `plain` measure one setting only; root; `iperf3` in `PATH`; the `shim6d` and
//! `cga-tool` binaries next to this one, or `$SHIM6D_BIN` / `$CGA_TOOL_BIN`). Prints
//! Markdown tables and one JSON line.

use std::{
    net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket},
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use shim6_tests::daemons::{Bins, Daemon, Options, Pair, until};

/// Port of the iperf3 server in B.
const IPERF_PORT: u16 = 5201;
/// UDP datagram size for the packet rate (octets of payload).
const UDP_LEN: &str = "64";
/// Port of the UDP echo server in B (on B's ULID).
const ECHO_PORT: u16 = 7007;
/// Round trips per latency measurement.
const RTTS: usize = 400;

/// The daemons' data-path settings (`[tun]` keys) a condition runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `offload = true`, `packet_socket = true` (the defaults).
    Full,
    /// `offload = false`, `packet_socket = true`.
    NoOffload,
    /// `offload = false`, `packet_socket = false`: the raw socket and one packet per
    /// TUN read or write, as in Runs 1–2 but with `recvmmsg`/`sendmmsg`.
    Plain,
}

impl Mode {
    fn keys(self) -> &'static str {
        match self {
            Self::Full => "offload = true\npacket_socket = true\n",
            Self::NoOffload => "offload = false\npacket_socket = true\n",
            Self::Plain => "offload = false\npacket_socket = false\n",
        }
    }
}

/// The conditions: name, how the pair is entered (`enter`), the daemons' data-path
/// settings (`None`: whatever runs).
const CONDITIONS: [(&str, &str, Option<Mode>); 7] = [
    ("kernel", "kernel", None),
    ("shim6d", "shim6d", Some(Mode::Full)),
    ("rewritten", "rewritten", Some(Mode::Full)),
    ("shim6d no-offload", "shim6d", Some(Mode::NoOffload)),
    ("rewritten no-offload", "rewritten", Some(Mode::NoOffload)),
    ("shim6d plain", "shim6d", Some(Mode::Plain)),
    ("rewritten plain", "rewritten", Some(Mode::Plain)),
];

/// The line after which the bench's `[tun]` section starts in a daemon's configuration.
const TUN_MARK: &str = "# dataplane_bench: [tun] below";

/// Restarts both daemons with `mode` (contexts are lost; the router is healed so that
/// the next condition starts from the ULID pair).
fn set_mode(pair: &mut Pair, mode: Mode) -> std::io::Result<()> {
    let daemons: Vec<&mut Daemon> = std::iter::once(&mut pair.a)
        .chain(pair.b.as_mut())
        .collect();
    for d in daemons {
        d.stop();
        let path = d.dir.join("shim6d.toml");
        let conf = std::fs::read_to_string(&path)?;
        let base = conf.split(TUN_MARK).next().unwrap_or_default().to_owned();
        std::fs::write(&path, format!("{base}{TUN_MARK}\n[tun]\n{}", mode.keys()))?;
        d.restart()?;
    }
    pair.bed.heal_all()
}

/// A UDP echo server on `addr` in B's namespace until `stop` is set.
fn echo_server(
    pair: &Pair,
    addr: Ipv6Addr,
    stop: Arc<AtomicBool>,
) -> std::io::Result<xfrm_sys::netns::NetnsThread<std::io::Result<()>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = pair.bed.b.spawn(move || async move {
        let s = match UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(addr, ECHO_PORT, 0, 0))) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
        };
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        let _ = tx.send(Ok(()));
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
        Ok(())
    })?;
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => Ok(t),
        Ok(Err(e)) => Err(std::io::Error::other(format!("echo server: {e}"))),
        Err(_) => Err(std::io::Error::other("echo server did not start")),
    }
}

/// The iperf3 server, killed by its own pid and reaped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A table column: title, the figure, decimals.
type Metric = (&'static str, fn(&Sample) -> f64, usize);

/// One condition's figures in one round.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    tcp_gbps: f64,
    udp_pps: f64,
    rtt_us: f64,
    cpu_a_s: f64,
    cpu_b_s: f64,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dataplane_bench: {e}");
            ExitCode::from(1)
        }
    }
}

/// utime + stime of a process, seconds (`/proc/PID/stat` fields 14 and 15, in clock
/// ticks; 100 per second on Linux).
fn cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // The command name may hold spaces: fields are counted after its closing ')'.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // `rest` starts at field 3 (state): field N is index N - 3.
    (get(11) + get(12)) / 100.0
}

/// `VmRSS` and `VmHWM` of a process, kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn iperf(ns: &str, src: Ipv6Addr, dst: Ipv6Addr, args: &[&str]) -> std::io::Result<Value> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "iperf3", "-6", "-J"])
        .args(["-c", &dst.to_string(), "-B", &src.to_string()])
        .args(["-p", &IPERF_PORT.to_string()])
        .args(args)
        .output()?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        std::io::Error::other(format!(
            "iperf3 {args:?}: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    if let Some(err) = v["error"].as_str() {
        return Err(std::io::Error::other(format!("iperf3 {args:?}: {err}")));
    }
    Ok(v)
}

/// `n` sequential UDP round trips from `src` to the testbed's echo server at `dst`
/// (inside A's namespace); the median, microseconds. Lost probes (1 s) are skipped.
fn rtt_median_us(pair: &Pair, src: Ipv6Addr, dst: Ipv6Addr, n: usize) -> std::io::Result<f64> {
    let mut v = pair.bed.a.run(move || async move {
        let s = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 0)))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.connect(SocketAddr::V6(SocketAddrV6::new(dst, ECHO_PORT, 0, 0)))?;
        let mut out = Vec::with_capacity(n);
        let mut buf = [0u8; 64];
        for i in 0..n as u32 {
            let t = Instant::now();
            s.send(&i.to_be_bytes())?;
            // Skip stale answers to earlier (timed-out) probes.
            loop {
                match s.recv(&mut buf) {
                    Ok(4) if buf[..4] == i.to_be_bytes() => {
                        out.push(t.elapsed().as_secs_f64() * 1e6);
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        std::io::Result::Ok(out)
    })??;
    if v.is_empty() {
        return Err(std::io::Error::other("no UDP echo came back"));
    }
    Ok(median(&mut v))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pair_of(d: &Daemon) -> std::io::Result<Option<(String, String)>> {
    Ok(d.contexts()?.first().map(|c| {
        let p = &c["current_pair"];
        (
            p["local"].as_str().unwrap_or("?").to_owned(),
            p["remote"].as_str().unwrap_or("?").to_owned(),
        )
    }))
}

/// Brings the pair into `cond`.
fn enter(pair: &Pair, cond: &str) -> std::io::Result<()> {
    let (ua, ub) = pair.ulids();
    let b = pair.b();
    match cond {
        "kernel" => {
            pair.bed.heal_all()?;
            for d in [&pair.a, b] {
                let (code, out) = d.ctl("rm *")?;
                if code != 0 {
                    return Err(std::io::Error::other(format!("rm *: {out}")));
                }
            }
            until(Duration::from_secs(5), "no context on either side", || {
                Ok(pair.a.contexts()?.is_empty() && b.contexts()?.is_empty())
            })?;
        }
        "shim6d" => {
            // After a restart the router may still drop the ULID pair.
            pair.bed.heal_all()?;
            pair.establish()?;
            let p = pair.current_pair()?;
            if p != (ua, ub) {
                return Err(std::io::Error::other(format!(
                    "established on {p:?}, not the ULID pair"
                )));
            }
        }
        "rewritten" => {
            pair.bed.break_addrs(ua, ub)?;
            pair.bed.break_addrs(ub, ua)?;
            // REAP needs outgoing traffic to notice (RFC 5534 §4.1): keep probing the
            // echo server while waiting for both sides to leave the ULID pair.
            let ulid = (ua.to_string(), ub.to_string());
            let ulid_b = (ub.to_string(), ua.to_string());
            until(
                Duration::from_secs(60),
                "both sides off the ULID pair",
                || {
                    let _ = rtt_median_us(pair, ua, ub, 5);
                    let pa = pair_of(&pair.a)?;
                    let pb = pair_of(b)?;
                    Ok(pa.is_some_and(|p| p != ulid) && pb.is_some_and(|p| p != ulid_b))
                },
            )?;
        }
        _ => unreachable!("known conditions only"),
    }
    Ok(())
}

fn measure(pair: &Pair, secs: &str) -> std::io::Result<Sample> {
    let (ua, ub) = pair.ulids();
    let ns = pair.bed.a.name().to_owned();
    let (pa, pb) = (pair.a.pid().unwrap_or(0), pair.b().pid().unwrap_or(0));
    let (ca0, cb0) = (cpu_s(pa), cpu_s(pb));
    let tcp = iperf(&ns, ua, ub, &["-t", secs])?;
    let tcp_gbps = tcp["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9;
    // An iperf3 UDP test can end early with an error (it did with EPROTO in the
    // rewritten condition until the daemon kept the receiver's "unrecognized Next
    // Header" to itself, docs/bench/dataplane.md): that round's rate is recorded as
    // missing (NaN, left out of the medians) and said on stderr.
    let udp_pps = match iperf(&ns, ua, ub, &["-u", "-b", "0", "-l", UDP_LEN, "-t", secs]) {
        Ok(udp) => {
            let s = &udp["end"]["sum"];
            let packets = s["packets"].as_f64().unwrap_or(0.0);
            let lost = s["lost_packets"].as_f64().unwrap_or(0.0);
            let seconds = s["seconds"].as_f64().unwrap_or(1.0).max(1e-3);
            (packets - lost).max(0.0) / seconds
        }
        Err(e) => {
            eprintln!("  UDP test failed: {e}");
            f64::NAN
        }
    };
    let rtt_us = rtt_median_us(pair, ua, ub, RTTS)?;
    Ok(Sample {
        tcp_gbps,
        udp_pps,
        rtt_us,
        cpu_a_s: cpu_s(pa) - ca0,
        cpu_b_s: cpu_s(pb) - cb0,
    })
}

fn run() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u32 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let modes: &[Mode] = match args.get(2).map(String::as_str) {
        None | Some("all") => &[Mode::Full, Mode::NoOffload, Mode::Plain],
        Some("full") => &[Mode::Full],
        Some("no-offload") => &[Mode::NoOffload],
        Some("plain") => &[Mode::Plain],
        Some(other) => {
            return Err(std::io::Error::other(format!(
                "MODES is all, full, no-offload or plain, not {other:?}"
            )));
        }
    };
    if !xfrm_sys::netns::have_net_admin() {
        return Err(std::io::Error::other(
            "needs root (CAP_NET_ADMIN) to create network namespaces",
        ));
    }
    let bins = Bins::locate()?;
    let options = Options {
        send_timeout: 2.0,
        log: "info".into(),
        ..Options::default()
    };
    let mut pair = Pair::start("dp", &bins, options)?;
    let (ua, ub) = pair.ulids();
    eprintln!("A: ULID {ua}, B: ULID {ub}; {secs} s per test, {rounds} rounds");
    let _server = Server(
        Command::new("ip")
            .args(["netns", "exec", pair.bed.b.name(), "iperf3", "-s"])
            .args(["-B", &ub.to_string(), "-p", &IPERF_PORT.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let echo = echo_server(&pair, ub, stop.clone())?;
    std::thread::sleep(Duration::from_millis(500));
    let result = rounds_and_tables(&mut pair, secs, rounds, modes);
    stop.store(true, Ordering::Relaxed);
    let _ = echo.join();
    result
}

fn rounds_and_tables(
    pair: &mut Pair,
    secs: u32,
    rounds: usize,
    modes: &[Mode],
) -> std::io::Result<()> {
    let (ua, ub) = pair.ulids();
    let secs_s = secs.to_string();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); CONDITIONS.len()];
    let mut rss = Vec::new();
    let mut running: Option<Mode> = None;
    for round in 0..rounds {
        for (k, &(cond, how, mode)) in CONDITIONS.iter().enumerate() {
            if mode.is_some_and(|m| !modes.contains(&m)) {
                continue;
            }
            if let Some(m) = mode
                && running != Some(m)
            {
                set_mode(pair, m)?;
                running = Some(m);
            }
            enter(pair, how)?;
            let s = measure(pair, &secs_s)?;
            // The context must still be where the condition put it.
            let still = match how {
                "kernel" => pair.a.contexts()?.is_empty(),
                "shim6d" => pair.current_pair()? == (ua, ub),
                _ => pair.current_pair()? != (ua, ub),
            };
            eprintln!(
                "round {round} {cond:<9} TCP {:.3} Gbit/s  UDP {:.0} pkt/s  RTT {:.1} us  \
                 CPU A {:.2} s B {:.2} s{}",
                s.tcp_gbps,
                s.udp_pps,
                s.rtt_us,
                s.cpu_a_s,
                s.cpu_b_s,
                if still { "" } else { "  (condition changed!)" }
            );
            if !still {
                return Err(std::io::Error::other(format!(
                    "{cond}: the context moved during the measurement"
                )));
            }
            samples[k].push(s);
            rss.push((
                cond,
                rss_kb(pair.a.pid().unwrap_or(0)),
                rss_kb(pair.b().pid().unwrap_or(0)),
            ));
        }
    }
    let med = |k: usize, f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = samples[k].iter().map(f).filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            median(&mut v)
        }
    };
    let range = |k: usize, f: fn(&Sample) -> f64| {
        let v: Vec<f64> = samples[k].iter().map(f).filter(|x| !x.is_nan()).collect();
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let metrics: [Metric; 3] = [
        ("TCP goodput, Gbit/s", |s| s.tcp_gbps, 3),
        ("UDP 64 B received, pkt/s", |s| s.udp_pps, 0),
        ("UDP RTT median, µs", |s| s.rtt_us, 1),
    ];
    println!("| condition | {} |", {
        let h: Vec<String> = metrics
            .iter()
            .map(|m| format!("{}: median (min–max) | ratio", m.0))
            .collect();
        h.join(" | ")
    });
    println!("|---|{}", "---|---|".repeat(metrics.len()));
    let mut js = Vec::new();
    for (k, (cond, ..)) in CONDITIONS.iter().enumerate() {
        if samples[k].is_empty() {
            continue;
        }
        let mut row = format!("| {cond} |");
        let mut j = serde_json::Map::new();
        for (name, f, prec) in &metrics {
            let m = med(k, *f);
            let (lo, hi) = range(k, *f);
            let r = m / med(0, *f);
            if m.is_nan() {
                row += " — (every round failed) | — |";
            } else {
                row += &format!(" {m:.prec$} ({lo:.prec$}–{hi:.prec$}) | {r:.3} |");
            }
            j.insert((*name).into(), json!({ "median": m, "ratio": r }));
        }
        println!("{row}");
        js.push(json!({ "condition": cond, "figures": j }));
    }
    println!();
    println!(
        "| condition | daemon A CPU s per round: median (min–max) | daemon B CPU s per round: median (min–max) | wall s per round |"
    );
    println!("|---|---|---|---|");
    for (k, (cond, ..)) in CONDITIONS.iter().enumerate() {
        if samples[k].is_empty() {
            continue;
        }
        let (a, b) = (med(k, |s| s.cpu_a_s), med(k, |s| s.cpu_b_s));
        let (alo, ahi) = range(k, |s| s.cpu_a_s);
        let (blo, bhi) = range(k, |s| s.cpu_b_s);
        println!(
            "| {cond} | {a:.2} ({alo:.2}–{ahi:.2}) | {b:.2} ({blo:.2}–{bhi:.2}) | ≈ {} |",
            2 * secs + 1
        );
    }
    println!();
    if let Some((_, a, b)) = rss.last() {
        println!(
            "daemon RSS at the end: A {} kB (peak {} kB), B {} kB (peak {} kB)",
            a.0, a.1, b.0, b.1
        );
    }
    println!(
        "{}",
        json!({ "seconds": secs, "rounds": rounds, "conditions": js })
    );
    Ok(())
}
