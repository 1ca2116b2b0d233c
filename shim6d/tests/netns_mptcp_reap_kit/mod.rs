//! Shared by `netns_mptcp_reap.rs` (the scenarios) and `netns_mptcp_bench.rs` (the
//! REAP figures): two real shim6d daemons on the LinShim6 testbed with the MPTCP path
//! manager, an MPTCP connection between their ULIDs carrying a checked byte stream, and
//! `sock_diag` views of both namespaces.
//!
//! A's daemon is restarted once with `[identity] locators` = its first two HBA
//! addresses and `[mptcp] max_subflows = 8`: 2 × 3 verified pairs, the initial one and
//! five extra subflows, so fullmesh has a subflow on **every** pair and a pair that
//! comes back has a free place under the cap (with 3 × 3 pairs and the kernel's cap of 8
//! subflows, the slot of a dead pair goes to the ninth pair, and rule 7 keeps it there).

#![allow(dead_code)] // each test binary uses part of the kit

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use shim6_tests::daemons::{
    Bins, Options, Pair, current_pair_of, mptcp_connect, mptcp_socket, until,
};
use xfrm_sys::mptcp::diag::Diag;

/// Upper bound of every wait (REAP needs up to Send Timeout + exploration).
pub const WAIT: Duration = Duration::from_secs(40);
/// The server's port.
pub const PORT: u16 = 8080;
/// Bytes the writer sends per slice, and the pause between slices: about 3 MB/s, enough
/// to keep every subflow busy, little enough for the shared 2 cores.
const SLICE: usize = 16 * 1024;
const PAUSE: Duration = Duration::from_millis(5);

/// The pair's options: MPTCP on both, the given REAP Send Timeout.
pub fn reap_options(send_timeout: f64) -> Options {
    Options {
        mptcp: true,
        send_timeout,
        ..Options::default()
    }
}

/// The byte at stream offset `i`: a pattern a lost, repeated or reordered slice breaks.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

/// A continuous stream A -> B over the MPTCP connection, checked byte by byte.
pub struct Flow {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    writer: Option<JoinHandle<Result<TcpStream, String>>>,
    reader: Option<JoinHandle<Result<(), String>>>,
}

impl Flow {
    fn start(client: TcpStream, server: TcpStream) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let writer = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut c = client;
                let mut buf = vec![0u8; SLICE];
                let mut off = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for (k, b) in buf.iter_mut().enumerate() {
                        *b = pattern(off + k as u64);
                    }
                    c.write_all(&buf)
                        .map_err(|e| format!("write at {off}: {e}"))?;
                    off += SLICE as u64;
                    sent.store(off, Ordering::Relaxed);
                    std::thread::sleep(PAUSE);
                }
                c.shutdown(std::net::Shutdown::Write)
                    .map_err(|e| format!("shutdown: {e}"))?;
                Ok(c)
            })
        };
        let reader = {
            let received = received.clone();
            std::thread::spawn(move || {
                let mut s = server;
                let mut buf = vec![0u8; 64 * 1024];
                let mut off = 0u64;
                loop {
                    let n = s
                        .read(&mut buf)
                        .map_err(|e| format!("read at {off}: {e}"))?;
                    if n == 0 {
                        return Ok(());
                    }
                    for (k, b) in buf[..n].iter().enumerate() {
                        let i = off + k as u64;
                        if *b != pattern(i) {
                            return Err(format!("byte {i}: {b:#x}, want {:#x}", pattern(i)));
                        }
                    }
                    off += n as u64;
                    received.store(off, Ordering::Relaxed);
                }
            })
        };
        Self {
            stop,
            sent,
            received,
            writer: Some(writer),
            reader: Some(reader),
        }
    }

    /// Bytes the reader has checked so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Stops the writer, waits for the reader to see the end; (sent, received).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let w = self.writer.take().unwrap().join().expect("writer thread");
        let r = self.reader.take().unwrap().join().expect("reader thread");
        if let Err(e) = &w {
            panic!("writer: {e}");
        }
        if let Err(e) = &r {
            panic!("reader: {e}");
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The two daemons, the connection and its stream.
pub struct Scenario {
    /// The testbed and the daemons.
    pub pair: Pair,
    /// The stream (taken by [`Scenario::finish`]).
    pub flow: Option<Flow>,
    /// B's listener, open all along: joins arrive on it.
    listener: TcpListener,
    rt: tokio::runtime::Runtime,
}

/// `(local, remote)` of a locator pair, A's side first.
pub type Addrs = (Ipv6Addr, Ipv6Addr);

impl Scenario {
    /// The pair, A restarted with two locators and `max_subflows = 8`, the context,
    /// the connection and its stream, and a subflow on every extra pair on both sides.
    pub fn start(tag: &str, options: Options) -> Self {
        let bins = Bins {
            shim6d: PathBuf::from(env!("CARGO_BIN_EXE_shim6d")),
            cga_tool: None,
        };
        let mut pair = Pair::start(tag, &bins, options).unwrap_or_else(|e| panic!("setup: {e}"));
        let conf = pair.a.dir.join("shim6d.toml");
        let text = std::fs::read_to_string(&conf).unwrap();
        let text = text
            .replacen(
                "[identity]\n",
                &format!(
                    "[identity]\nlocators = [\"{}\", \"{}\"]\n",
                    pair.a.hba[0], pair.a.hba[1]
                ),
                1,
            )
            .replacen("[mptcp]\n", "[mptcp]\nmax_subflows = 8\n", 1);
        std::fs::write(&conf, text).unwrap();
        assert!(pair.a.stop(), "A's daemon stops");
        pair.a.restart().unwrap();
        until(WAIT, "A's control socket after the restart", || {
            pair.a.ctl("ls").map(|(c, _)| c == 0)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", pair.a.log()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = pair
            .bed
            .b
            .run(|| async {
                let s = mptcp_socket(WAIT);
                s.set_reuse_address(true).unwrap();
                s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, PORT)).into())
                    .unwrap();
                s.listen(16).unwrap();
                TcpListener::from(s)
            })
            .unwrap();
        let mut s = Self {
            pair,
            flow: None,
            listener,
            rt,
        };
        s.pair
            .establish()
            .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
        // The initial subflow runs between the ULIDs, through A's TUN; the extra ones go
        // straight to B's locators. Left alone, the kernel's scheduler may keep the whole
        // stream on the initial subflow (the daemon's path is fast since its `nft` reads
        // left the loop) and the extras idle — and a failure on an idle subflow is seen
        // by nobody (docs/mptcp.md). A token bucket on the TUN keeps the extras busy.
        let tc = std::process::Command::new("tc")
            .args([
                "-n",
                s.pair.bed.a.name(),
                "qdisc",
                "add",
                "dev",
                "shim6",
                "root",
            ])
            .args(["tbf", "rate", "20mbit", "burst", "32kb", "latency", "100ms"])
            .output()
            .expect("run tc");
        assert!(
            tc.status.success(),
            "tbf on A's TUN: {}",
            String::from_utf8_lossy(&tc.stderr)
        );
        let (ua, ub) = s.pair.ulids();
        let client = s
            .pair
            .bed
            .a
            .run(move || async move { mptcp_connect(ua, SocketAddrV6::new(ub, PORT, 0, 0), WAIT) })
            .unwrap();
        let (server, _) = s.listener.accept().unwrap();
        server.set_read_timeout(Some(WAIT)).unwrap();
        s.flow = Some(Flow::start(client, server));
        let all = s.extra_pairs();
        s.until_joins_cover(&all, "a subflow on every extra pair");
        s
    }

    /// Both daemons' logs.
    pub fn logs(&self) -> String {
        format!(
            "--- A ---\n{}\n--- B ---\n{}",
            self.pair.a.log(),
            self.pair.b().log()
        )
    }

    /// A's locators (the restart's two) and B's.
    pub fn locators(&self) -> (Vec<Ipv6Addr>, Vec<Ipv6Addr>) {
        (self.pair.a.hba[..2].to_vec(), self.pair.b().hba.clone())
    }

    /// Every verified pair but the ULIDs'.
    pub fn extra_pairs(&self) -> Vec<Addrs> {
        let (la, lb) = self.locators();
        let init = self.pair.ulids();
        la.iter()
            .flat_map(|a| lb.iter().map(move |b| (*a, *b)))
            .filter(|p| *p != init)
            .collect()
    }

    /// The testbed's prefix indices `(i, j)` of a pair (for `break_path`).
    pub fn indices(&self, p: Addrs) -> (usize, usize) {
        let (la, lb) = self.locators();
        let i = la.iter().position(|a| *a == p.0).expect("A's locator");
        let j = lb.iter().position(|b| *b == p.1).expect("B's locator");
        (i, j)
    }

    /// A's context's current pair.
    pub fn current_pair(&self) -> Addrs {
        current_pair_of(&self.pair.a).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Joined subflows up on each side as (A's address, B's address), sorted.
    pub fn joins(&self) -> (Vec<Addrs>, Vec<Addrs>) {
        let (a, b) = (self.pair.bed.a.name(), self.pair.bed.b.name());
        self.rt.block_on(async {
            let mut da = Diag::open(Some(a)).unwrap();
            let mut db = Diag::open(Some(b)).unwrap();
            let (sa, sb) = (da.snapshot().await.unwrap(), db.snapshot().await.unwrap());
            let v6 = |x: IpAddr| match x {
                IpAddr::V6(x) => x,
                IpAddr::V4(x) => x.to_ipv6_mapped(),
            };
            let mut ja: Vec<Addrs> = sa
                .subflows
                .iter()
                .filter(|x| x.is_join())
                .map(|x| (v6(x.local.ip()), v6(x.remote.ip())))
                .collect();
            let mut jb: Vec<Addrs> = sb
                .subflows
                .iter()
                .filter(|x| x.is_join())
                .map(|x| (v6(x.remote.ip()), v6(x.local.ip())))
                .collect();
            ja.sort();
            jb.sort();
            (ja, jb)
        })
    }

    /// Polls [`Scenario::joins`] until `want` holds on both sides (bounded).
    pub fn until_joins(&self, what: &str, want: impl Fn(&[Addrs]) -> bool) -> Duration {
        let t0 = Instant::now();
        loop {
            let (a, b) = self.joins();
            if want(&a) && want(&b) {
                return t0.elapsed();
            }
            if t0.elapsed() > WAIT {
                panic!(
                    "timed out after {WAIT:?} waiting for {what}: A {a:?} B {b:?}\nmptcp A: {}\n{}",
                    self.pair
                        .a
                        .json("mptcp")
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A subflow on each of `pairs`, both sides.
    pub fn until_joins_cover(&self, pairs: &[Addrs], what: &str) -> Duration {
        self.until_joins(what, |j| pairs.iter().all(|p| j.contains(p)))
    }

    /// No subflow on `p`, both sides.
    pub fn until_no_joins_on(&self, p: Addrs) -> Duration {
        self.until_joins(&format!("no subflow on {p:?}"), |j| !j.contains(&p))
    }

    /// The extra pair (not in `exclude`) whose subflow on A got an ACK most recently,
    /// over a few samples of `tcp_info`: the one the scheduler keeps busy, so that its
    /// failure shows (an idle subflow on a dead path is seen by nobody).
    pub fn busiest_extra_pair(&self, exclude: &[Addrs]) -> Addrs {
        let extras: Vec<Addrs> = self
            .extra_pairs()
            .into_iter()
            .filter(|p| !exclude.contains(p))
            .collect();
        let mut score: std::collections::BTreeMap<Addrs, u32> = Default::default();
        for _ in 0..20 {
            let samples = self
                .pair
                .bed
                .a
                .run(|| async {
                    let mut s = shim6d::mptcp::bytes::Sampler::open()?;
                    s.sample_subflows().await
                })
                .unwrap()
                .unwrap();
            for x in samples {
                let (IpAddr::V6(l), IpAddr::V6(r)) = (x.local.ip(), x.remote.ip()) else {
                    continue;
                };
                if extras.contains(&(l, r)) && x.since_ack < Duration::from_millis(100) {
                    *score.entry((l, r)).or_default() += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        score
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(p, _)| p)
            .unwrap_or_else(|| panic!("no busy extra subflow among {extras:?}"))
    }

    /// The pairs A's path manager holds dead.
    pub fn dead_on_a(&self) -> Vec<Addrs> {
        let Ok(v) = self.pair.a.json("mptcp") else {
            return Vec::new();
        };
        v["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["dead_pairs"].as_array().cloned().unwrap_or_default())
            .filter_map(|d| Some((d[0].as_str()?.parse().ok()?, d[1].as_str()?.parse().ok()?)))
            .collect()
    }

    /// Until A's path manager holds `p` dead (REAP's verdict reached it).
    pub fn until_dead_on_a(&self, p: Addrs) {
        until(WAIT, &format!("{p:?} dead on A"), || {
            Ok(self.dead_on_a().contains(&p))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    /// Until A's path manager no longer holds `p` dead.
    pub fn until_alive_on_a(&self, p: Addrs) {
        until(WAIT, &format!("{p:?} alive again on A"), || {
            Ok(!self.dead_on_a().contains(&p))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    /// Until A's context has moved off `from`; the new pair.
    pub fn until_moved_from(&self, from: Addrs) -> Addrs {
        let mut now = from;
        until(WAIT, &format!("the context off {from:?}"), || {
            now = current_pair_of(&self.pair.a)?;
            Ok(now != from)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        now
    }

    /// Breaks `p` both ways at the router.
    pub fn break_both(&self, p: Addrs) {
        self.pair.bed.break_addrs(p.0, p.1).unwrap();
        self.pair.bed.break_addrs(p.1, p.0).unwrap();
    }

    /// Heals what [`Scenario::break_both`] broke.
    pub fn heal_both(&self, p: Addrs) {
        self.pair.bed.heal_addrs(p.0, p.1).unwrap();
        self.pair.bed.heal_addrs(p.1, p.0).unwrap();
    }

    /// The reader gets new bytes (bounded).
    pub fn assert_stream_flowing(&self, when: &str) {
        let flow = self.flow.as_ref().expect("stream running");
        let before = flow.received();
        until(WAIT, &format!("the stream flowing {when}"), || {
            Ok(flow.received() > before + 256 * 1024)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    /// Ends the stream: every byte sent arrived, in order (the reader checks the
    /// pattern).
    pub fn finish(&mut self) -> (u64, u64) {
        let (sent, received) = self.flow.take().expect("stream running").finish();
        assert_eq!(sent, received, "bytes sent and received");
        assert!(sent > 0);
        (sent, received)
    }
}
