//! Daemon memory and CPU with 10⁴ established contexts (issue 6, "Measure").
//!
//! One real `shim6d` (the release build next to this example, or `$SHIM6D_BIN`) runs in
//! a namespace as a responder (`[trigger] mode = "responder-only"`), with a pure HBA
//! identity over one prefix. A load generator in a peer namespace establishes N
//! contexts with it (default 10⁴): N distinct initiator ULIDs, each a one-member HBA
//! set in `2001:db8:c1::/64` (one locator, its ULID: the Locator List it sends holds
//! only that address, verified by HBA), driven by `shim6_proto::Endpoint`s (100 ULIDs
//! each) over a TUN device `lg0` in the generator's namespace: the prefix is routed
//! into the TUN, so the generator reads and writes whole IPv6 packets with any source
//! address, and the namespace forwards them over the veth to the daemon.
//!
//! ```text
//!   ns srv: shim6d, s0 2001:db8:5::1 + its HBA    ns gen: g0 2001:db8:5::2, lg0 (TUN)
//!           route 2001:db8:c1::/64 via ::2  ──veth──  route 2001:db8:c1::/64 dev lg0
//! ```
//!
//! Printed (never asserted): the daemon's `VmRSS` / `VmHWM` (`/proc/PID/status`) before,
//! at 10³ and at N contexts; its CPU time (`utime + stime`, `/proc/PID/stat`) over the
//! establishment and the contexts per second; its CPU time over an idle period with
//! every context established; the count in `ls --json`, the time that `ls --json` and
//! `stats` take, and `stats`'s counters.
//!
//! Run (root; the release daemon must be built; about 1–2 minutes):
//!
//! ```text
//! cargo build --release -p shim6d
//! cargo run --release -p shim6-tests --example contexts_bench -- [N] [IDLE_SECONDS]
//! ```

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    io::Read,
    net::Ipv6Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use shim6_proto::{Config, Endpoint, Event, LocalUlid};
use shim6_tests::daemons::Bins;
use shim6d::dataplane::{Batch, Tun};
use xfrm_sys::netns::{self, Netns};

/// ULIDs per generator endpoint (`Endpoint::new` checks each locator against each
/// ULID's HBA set: 100 × 100 per endpoint instead of N × N for one).
const PER_ENDPOINT: usize = 100;
/// Handshakes in flight at most, by default (third argument).
const WINDOW: usize = 32;
/// The daemon's address and prefix.
const SRV_PREFIX: &str = "2001:db8:5::";
/// The generator's ULID prefix.
const GEN_PREFIX: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0xc1, 0, 0];

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b
}

/// A pure HBA set (Sec 0, RFC 5535) over `prefixes`: its members (address, params).
fn hba(prefixes: &[[u8; 8]]) -> Vec<(Ipv6Addr, Vec<u8>)> {
    let key = cga::hba_pseudo_key(&random::<{ cga::generate::PSEUDO_KEY_RANDOM_LEN }>());
    let g = cga::Generator::from_parts(cga::Sec::ZERO, key, prefixes, false)
        .expect("distinct prefixes, DER pseudo-key");
    g.finish(random::<16>())
        .members()
        .into_iter()
        .map(|(_, a, p)| (a, p))
        .collect()
}

/// `VmRSS` and `VmHWM` of `pid`, kB.
fn memory(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `utime + stime + cutime + cstime` of `pid`, seconds: its own CPU time and that of
/// its children it waited for (the `nft` runs of the inbound-visibility set), in clock
/// ticks of 10 ms (`getconf CLK_TCK` is 100 on Linux).
fn cpu(pid: u32) -> f64 {
    let (own, children) = cpu_split(pid);
    own + children
}

/// (`utime + stime`, `cutime + cstime`) of `pid`, seconds.
fn cpu_split(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime, stime, cutime, cstime are fields 14-17 of stat; here 0 is field 3.
    (
        (tick(11) + tick(12)) as f64 / 100.0,
        (tick(13) + tick(14)) as f64 / 100.0,
    )
}

/// `shim6d ctl --unix SOCK LINE`: output, and how long it took.
fn ctl(bin: &Path, sock: &Path, line: &str) -> (String, Duration) {
    let t = Instant::now();
    let out = Command::new(bin)
        .arg("ctl")
        .arg("--unix")
        .arg(sock)
        .args(["--timeout", "30"])
        .args(line.split_whitespace())
        .output()
        .expect("shim6d ctl");
    (
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        t.elapsed(),
    )
}

/// The generator: N ULIDs over `Endpoint`s, each establishing once with `server`.
struct Generator {
    eps: Vec<Endpoint>,
    ulids: Vec<(usize, Ipv6Addr)>,
    by_addr: HashMap<Ipv6Addr, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// ULIDs whose handshake failed (E-FAILED), to start again.
    retry: Vec<(usize, Ipv6Addr)>,
    failed: usize,
    /// Messages sent, by type, and packets received.
    sent: std::collections::BTreeMap<String, usize>,
    received: usize,
    /// Received packets the endpoints did not consume, by their answer and next header.
    not_consumed: std::collections::BTreeMap<String, usize>,
}

impl Generator {
    fn new(n: usize, t0: Instant) -> Self {
        let mut eps = Vec::new();
        let mut ulids = Vec::new();
        let mut by_addr = HashMap::new();
        let mut left = n;
        let mut seed = 1u64;
        while left > 0 {
            let k = left.min(PER_ENDPOINT);
            left -= k;
            let members: Vec<(Ipv6Addr, Vec<u8>)> =
                (0..k).flat_map(|_| hba(&[GEN_PREFIX])).collect();
            let locs: Vec<reap::Locator> = members
                .iter()
                .map(|(a, _)| reap::Locator::new(*a))
                .collect();
            let idx = eps.len();
            for (a, _) in &members {
                by_addr.insert(*a, idx);
                ulids.push((idx, *a));
            }
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            seed += 1;
            let cfg = Config {
                rng_seed: Some(s),
                ..Config::default()
            };
            let us = members
                .into_iter()
                .map(|(address, params)| LocalUlid {
                    address,
                    params,
                    key: None,
                })
                .collect();
            eps.push(Endpoint::new(cfg, us, &locs, t0).expect("generator identity"));
        }
        Self {
            eps,
            ulids,
            by_addr,
            timers: BinaryHeap::new(),
            retry: Vec::new(),
            failed: 0,
            sent: Default::default(),
            received: 0,
            not_consumed: Default::default(),
        }
    }

    /// Sends what endpoint `i` queued, counts its Established events, re-arms its timer.
    async fn flush(&mut self, i: usize, tun: &Tun, established: &AtomicUsize) {
        while let Some(t) = self.eps[i].poll_transmit() {
            *self
                .sent
                .entry(format!("{:?}", t.message_type))
                .or_default() += 1;
            // A packet the kernel refuses is lost, as on a real link; the handshake
            // retransmits.
            let _ = tun.send(&t.packet).await;
        }
        if let Some(t) = self.eps[i].poll_timeout() {
            self.timers.push(Reverse((t, i)));
        }
        while let Some(ev) = self.eps[i].poll_event() {
            match ev {
                Event::Established { .. } => {
                    established.fetch_add(1, Ordering::Relaxed);
                }
                Event::Failed { key, .. } => {
                    self.failed += 1;
                    self.retry.push((i, key.ulid_local));
                }
                _ => {}
            }
        }
    }
}

async fn generate(
    n: usize,
    window: usize,
    server: Ipv6Addr,
    established: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
    go: std::sync::mpsc::Receiver<()>,
) -> Result<(), String> {
    let t0 = Instant::now();
    let h = xfrm_sys::Handle::new().map_err(|e| e.to_string())?;
    let tun = Tun::create(&h, "lg0", 1500)
        .await
        .map_err(|e| format!("TUN lg0: {e}"))?;
    let mut g = Generator::new(n, t0);
    let _ = ready.send(Ok(()));
    go.recv().map_err(|e| e.to_string())?;
    let mut batch = Batch::new(64, 1500);
    let mut started = 0usize;
    let mut report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= report {
            report = now + Duration::from_secs(5);
            eprintln!(
                "generator: {started} started, {} established, {} failed and retried; received {}, sent {:?}, not consumed {:?}",
                established.load(Ordering::Relaxed),
                g.failed,
                g.received,
                g.sent,
                g.not_consumed
            );
        }
        while let Some((i, u)) = g.retry.pop() {
            g.eps[i]
                .establish(now, u, server)
                .map_err(|e| format!("establish again: {e}"))?;
            g.flush(i, &tun, &established).await;
        }
        while started < n && started < established.load(Ordering::Relaxed) + window {
            let (i, u) = g.ulids[started];
            g.eps[i]
                .establish(now, u, server)
                .map_err(|e| format!("establish: {e}"))?;
            g.flush(i, &tun, &established).await;
            started += 1;
        }
        let next = g
            .timers
            .peek()
            .map_or(now + Duration::from_millis(50), |Reverse((t, _))| *t)
            .min(now + Duration::from_millis(50));
        tokio::select! {
            r = tun.recv_batch(&mut batch) => {
                r.map_err(|e| format!("TUN read: {e}"))?;
                let now = Instant::now();
                let packets: Vec<Vec<u8>> = batch.packets().map(|p| p.packet().to_vec()).collect();
                for mut p in packets {
                    let Some(dst) = p.get(24..40).and_then(|d| <[u8; 16]>::try_from(d).ok()) else {
                        continue;
                    };
                    let Some(&i) = g.by_addr.get(&Ipv6Addr::from(dst)) else { continue };
                    let len = p.len();
                    g.received += 1;
                    let r = g.eps[i].handle_inbound(now, &mut p, 0..len);
                    if !matches!(r, shim6_proto::Inbound::Consumed) {
                        let nh = p.get(6).copied().unwrap_or(0);
                        *g.not_consumed.entry(format!("{r:?} nh {nh}")).or_default() += 1;
                    }
                    g.flush(i, &tun, &established).await;
                }
            }
            () = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                while let Some(&Reverse((t, i))) = g.timers.peek() {
                    if t > now {
                        break;
                    }
                    g.timers.pop();
                    // Lazy entries: only a timer still armed at or before now fires.
                    if g.eps[i].poll_timeout().is_some_and(|d| d <= now) {
                        g.eps[i].handle_timeout(now);
                        g.flush(i, &tun, &established).await;
                    }
                }
            }
        }
    }
    Ok(())
}

struct DaemonProc {
    child: Child,
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    if !netns::require_net_admin() {
        return;
    }
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let idle: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let window: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(WINDOW);
    let bins = Bins::locate().expect("shim6d binary (build it with --release)");
    println!("shim6d: {}", bins.shim6d.display());

    let srv = Netns::new("ctxs").expect("netns");
    let gen_ns = Netns::new("ctxg").expect("netns");
    netns::veth(&srv, "s0", &gen_ns, "g0").expect("veth");
    srv.ip(&[
        "addr",
        "add",
        &format!("{SRV_PREFIX}1/64"),
        "dev",
        "s0",
        "nodad",
    ])
    .unwrap();
    gen_ns
        .ip(&[
            "addr",
            "add",
            &format!("{SRV_PREFIX}2/64"),
            "dev",
            "g0",
            "nodad",
        ])
        .unwrap();
    for (ns, dev) in [(&srv, "s0"), (&gen_ns, "g0")] {
        ns.ip(&["link", "set", dev, "up"]).unwrap();
    }
    srv.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:c1::/64",
        "via",
        &format!("{SRV_PREFIX}2"),
    ])
    .unwrap();
    let out = gen_ns
        .exec("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"])
        .unwrap();
    assert!(
        out.status.success(),
        "forwarding in the generator namespace"
    );

    // The daemon: a pure HBA identity over 2001:db8:5::/64, responder only.
    let dir = std::env::temp_dir().join(format!("shim6d-{}", srv.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pfx = [0u8; 8];
    pfx.copy_from_slice(
        &SRV_PREFIX
            .parse::<Ipv6Addr>()
            .unwrap_or(Ipv6Addr::UNSPECIFIED)
            .octets()[..8],
    );
    let set = hba(&[pfx]);
    let (server, params) = set[0].clone();
    let doc = serde_json::json!({
        "sec": 0,
        "addresses": [{
            "address": server.to_string(),
            "params": params.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        }],
    });
    std::fs::write(dir.join("hba.json"), doc.to_string()).unwrap();
    srv.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{server}/64"),
        "dev",
        "s0",
        "nodad",
    ])
    .unwrap();
    std::fs::write(
        dir.join("shim6d.toml"),
        "[identity]\nmode = \"hba\"\nparams_file = \"hba.json\"\n\
         [interfaces]\ninclude = [\"s0\"]\n\
         [trigger]\nmode = \"responder-only\"\n\
         [control]\nlisten = \"\"\nunix_socket = \"ctl.sock\"\n\
         [log]\nlevel = \"info\"\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("shim6d.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", srv.name()])
        .arg(&bins.shim6d)
        .arg("--config")
        .arg(dir.join("shim6d.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start shim6d");
    let daemon = DaemonProc { child };
    let pid = daemon.child.id();
    let sock: PathBuf = dir.join("ctl.sock");
    wait_until("the control socket", Duration::from_secs(10), || {
        ctl(&bins.shim6d, &sock, "stats").0.contains('{') || sock.exists()
    });
    std::thread::sleep(Duration::from_secs(2));
    let (rss0, hwm0) = memory(pid);
    let cpu0 = cpu(pid);
    println!("daemon pid {pid}, N = {n}, idle period {idle} s, {window} handshakes in flight");
    println!("before: VmRSS {rss0} kB, VmHWM {hwm0} kB, CPU {cpu0:.2} s");

    // Permanent neighbour entries both ways: the first burst of I1s (and R1s) must not
    // wait in the kernel's small queue of packets to an unresolved neighbour.
    let mac = |ns: &Netns, dev: &str| -> String {
        let out = ns
            .exec("cat", &[&format!("/sys/class/net/{dev}/address")])
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (mac_s, mac_g) = (mac(&srv, "s0"), mac(&gen_ns, "g0"));
    for a in [format!("{SRV_PREFIX}1"), server.to_string()] {
        gen_ns
            .ip(&[
                "-6",
                "neigh",
                "replace",
                &a,
                "lladdr",
                &mac_s,
                "dev",
                "g0",
                "nud",
                "permanent",
            ])
            .unwrap();
    }
    srv.ip(&[
        "-6",
        "neigh",
        "replace",
        &format!("{SRV_PREFIX}2"),
        "lladdr",
        &mac_g,
        "dev",
        "s0",
        "nud",
        "permanent",
    ])
    .unwrap();

    // The generator.
    let established = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let generator = {
        let (established, stop) = (established.clone(), stop.clone());
        gen_ns
            .spawn(move || async move {
                let r = generate(
                    n,
                    window,
                    server,
                    established,
                    stop.clone(),
                    ready_tx,
                    go_rx,
                )
                .await;
                if let Err(e) = &r {
                    eprintln!("generator failed: {e}");
                    stop.store(true, Ordering::Relaxed);
                }
                r
            })
            .expect("generator thread")
    };
    ready_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("generator ready")
        .expect("generator setup");
    gen_ns.ip(&["link", "set", "lg0", "up"]).unwrap();
    gen_ns
        .ip(&["-6", "route", "add", "2001:db8:c1::/64", "dev", "lg0"])
        .unwrap();
    let t0 = Instant::now();
    let cpu_start = cpu(pid);
    go_tx.send(()).unwrap();
    let mut at_1000 = None;
    wait_until(
        "every context established",
        Duration::from_secs(600),
        || {
            assert!(!stop.load(Ordering::Relaxed), "the generator stopped");
            let e = established.load(Ordering::Relaxed);
            if at_1000.is_none() && e >= n.min(1000) {
                at_1000 = Some((t0.elapsed(), cpu(pid) - cpu_start, memory(pid)));
            }
            e >= n
        },
    );
    let took = t0.elapsed();
    let cpu_est = cpu(pid) - cpu_start;
    let (own, children) = cpu_split(pid);
    println!("daemon CPU so far: {own:.2} s its own, {children:.2} s in child processes (nft)");
    std::thread::sleep(Duration::from_secs(1));
    let (rss_n, hwm_n) = memory(pid);
    if let Some((t, c, (r, h))) = at_1000 {
        println!(
            "at {} contexts: {:.2} s, daemon CPU {c:.2} s, VmRSS {r} kB, VmHWM {h} kB",
            n.min(1000),
            t.as_secs_f64()
        );
    }
    println!(
        "at {n} contexts: {:.2} s ({:.0} contexts/s), daemon CPU {cpu_est:.2} s ({:.0} µs per context, {:.0} % of a core), VmRSS {rss_n} kB (+{} kB, {:.2} kB per context), VmHWM {hwm_n} kB",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        cpu_est * 1e6 / n as f64,
        cpu_est * 100.0 / took.as_secs_f64(),
        rss_n.saturating_sub(rss0),
        rss_n.saturating_sub(rss0) as f64 / n as f64,
    );
    // The daemon really holds them.
    let (ls, ls_took) = ctl(&bins.shim6d, &sock, "ls --json");
    let count = serde_json::from_str::<serde_json::Value>(&ls)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len));
    println!(
        "control: `ls --json` lists {count:?} contexts ({} bytes) in {:.3} s",
        ls.len(),
        ls_took.as_secs_f64()
    );
    let (rss_ls, hwm_ls) = memory(pid);
    println!("after `ls --json`: VmRSS {rss_ls} kB, VmHWM {hwm_ls} kB");
    let (stats, stats_took) = ctl(&bins.shim6d, &sock, "stats --json");
    println!(
        "control: `stats --json` in {:.3} s",
        stats_took.as_secs_f64()
    );
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&stats) {
        println!("stats: {v}");
    } else {
        println!("stats: {stats}");
    }
    // Idle: every context established, no traffic.
    let cpu_idle0 = cpu(pid);
    let t_idle = Instant::now();
    std::thread::sleep(Duration::from_secs(idle));
    let cpu_idle = cpu(pid) - cpu_idle0;
    let (rss_i, hwm_i) = memory(pid);
    println!(
        "idle {:.0} s with {n} contexts: daemon CPU {cpu_idle:.2} s ({:.3} % of a core), VmRSS {rss_i} kB, VmHWM {hwm_i} kB",
        t_idle.elapsed().as_secs_f64(),
        cpu_idle * 100.0 / t_idle.elapsed().as_secs_f64()
    );
    let (ls2, _) = ctl(&bins.shim6d, &sock, "ls --json");
    let count2 = serde_json::from_str::<serde_json::Value>(&ls2)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len));
    println!("after the idle period: `ls --json` lists {count2:?} contexts");
    stop.store(true, Ordering::Relaxed);
    match generator.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("generator: {e}"),
        Err(e) => println!("generator thread: {e}"),
    }
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
