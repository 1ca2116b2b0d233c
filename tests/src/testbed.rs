//! Network-namespace topologies for failure injection, built on
//! [`xfrm_sys::netns`]'s kit.
//!
//! # The LinShim6 testbed ([`LinShim6`])
//!
//! ```text
//!   A (a0)                       R                        (b0) B
//!   2001:db8:a1::1   ──veth──  ra   rb  ──veth──   2001:db8:b1::1
//!   2001:db8:a2::1            forwards             2001:db8:b2::1
//!   2001:db8:a3::1     nftables + NFQUEUE        2001:db8:b3::1
//! ```
//!
//! Hosts A and B hold three prefixes each on one interface; the router R between them
//! forwards. Each of the 18 unidirectional paths `(source locator, destination locator)`
//! can be broken and healed on its own ([`LinShim6::break_path`]: an nftables set of
//! `saddr . daddr` pairs dropped in R's forward hook), and given delay and loss
//! ([`LinShim6::set_path_netem`], [`LinShim6::set_link_netem`] for everything a host
//! sends). The CI kernel has no `sch_netem`, so delay and loss are emulated in R (see
//! [`Netem`] and [`delay`]).
//!
//! # The multi-interface topology ([`MultiHomed`])
//!
//! ```text
//!        ┌─ a1 ── PA1 ─┐         ┌─ PB1 ── b1 ─┐
//!   A ───┤             ├── C ────┤             ├─── B
//!        └─ a2 ── PA2 ─┘         └─ PB2 ── b2 ─┘
//! ```
//!
//! Each host has 2–3 interfaces, each to its own provider router; the providers meet in
//! a core router C. Host A's address on interface `i` is `2001:db8:a<i>::1` (B likewise),
//! and source-address policy routing sends each source out of its own interface, so a
//! provider link going down ([`MultiHomed::link_down`], on the provider's side: the host
//! keeps its address but loses carrier) breaks exactly the paths using that locator.
//!
//! # Probes
//!
//! No `ping` is needed: every host runs a UDP echo server on each of its addresses
//! ([`ECHO_PORT`]), [`round_trip`] sends from a fixed source to a fixed destination and
//! waits (bounded) for the echo, and [`LinShim6::one_way`] reports which of a set of
//! one-way datagrams arrived, using a final marker datagram instead of a timeout.
//!
//! # Hygiene
//!
//! Names come from [`Netns::new`] (unique per process and test, swept when stale), so
//! tests can run in parallel; interfaces live inside the namespaces only; addresses are
//! from `2001:db8::/32`; everything goes away on `Drop`, also when a test panics. DAD is
//! off in every namespace, so addresses are usable at once.

use std::{
    collections::BTreeSet,
    io,
    net::{Ipv6Addr, SocketAddr, SocketAddrV6},
    time::{Duration, Instant},
};

use tokio::net::UdpSocket;
use xfrm_sys::netns::{self, Netns, NetnsThread};

/// Port of the echo servers.
pub const ECHO_PORT: u16 = 7;
/// Port of the one-way sinks.
pub const SINK_PORT: u16 = 9;
/// The bound on every wait of a probe.
pub const PROBE_WAIT: Duration = Duration::from_secs(2);
/// How long [`LinShim6::one_way`] waits for stragglers once its marker arrived.
pub const ONE_WAY_GRACE: Duration = Duration::from_millis(100);

/// Runs `sysctl -qw SETTINGS...` in `ns`.
fn sysctl(ns: &Netns, settings: &[&str]) -> io::Result<()> {
    let mut args = vec!["-qw"];
    args.extend_from_slice(settings);
    let out = ns.exec("sysctl", &args)?;
    check(&format!("sysctl {}", settings.join(" ")), &out)
}

fn check(what: &str, out: &std::process::Output) -> io::Result<()> {
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`{what}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A namespace with DAD off and, for routers, forwarding on.
pub(crate) fn namespace(tag: &str, router: bool) -> io::Result<Netns> {
    let ns = Netns::new(tag)?;
    sysctl(
        &ns,
        &[
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            // Errors are what the tests look at; no rate limit on them.
            "net.ipv6.icmp.ratelimit=0",
            // A link set down and up again keeps its addresses (the default flushes them).
            "net.ipv6.conf.all.keep_addr_on_down=1",
            "net.ipv6.conf.default.keep_addr_on_down=1",
        ],
    )?;
    if router {
        sysctl(&ns, &["net.ipv6.conf.all.forwarding=1"])?;
    }
    Ok(ns)
}

/// Source policy routing on `host`: packets from `2001:db8:<net>::/64` use table
/// `table` (rule priority `priority`), whose default route goes to the router's
/// `2001:db8:<net>::ff` on `dev` (`onlink`: also before the host has an address there).
pub(crate) fn source_route(
    host: &Netns,
    net: u16,
    dev: &str,
    onlink: bool,
    table: usize,
    priority: usize,
) -> io::Result<()> {
    let table = table.to_string();
    let via = doc_addr(net, 0xff).to_string();
    let mut route = vec!["-6", "route", "add", "default", "via", &via, "dev", dev];
    if onlink {
        route.push("onlink");
    }
    route.extend(["table", &table]);
    host.ip(&route)?;
    host.ip(&[
        "-6",
        "rule",
        "add",
        "from",
        &format!("{}/64", doc_addr(net, 0)),
        "table",
        &table,
        "priority",
        &priority.to_string(),
    ])
    .map(drop)
}

/// Adds `a/64` to `dev` in `ns`, without duplicate address detection (`nodad`).
pub fn addr(ns: &Netns, a: Ipv6Addr, dev: &str) -> io::Result<()> {
    ns.ip(&["-6", "addr", "add", &format!("{a}/64"), "dev", dev, "nodad"])
        .map(drop)
}

/// Counter `name` of `/proc/net/snmp6` in `ns`.
///
/// # Panics
/// When `cat` fails there or the counter is missing.
pub fn snmp6(ns: &Netns, name: &str) -> u64 {
    let out = ns.exec("cat", &["/proc/net/snmp6"]).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name)).then(|| f.next().and_then(|v| v.parse().ok()))?
        })
        .unwrap_or_else(|| panic!("no {name} in /proc/net/snmp6"))
}

pub(crate) fn up(ns: &Netns, dev: &str) -> io::Result<()> {
    ns.ip(&["link", "set", dev, "up"]).map(drop)
}

/// `2001:db8:<net>::<host>`.
pub const fn doc_addr(net: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, net, 0, 0, 0, 0, host)
}

/// A UDP echo server on each given address and [`ECHO_PORT`], plus a one-way sink on
/// [`SINK_PORT`] recording `(source, destination, payload)`; stopped on drop.
struct Servers {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<NetnsThread<()>>,
    sink: Sink,
}

/// What the one-way sinks received: (source, destination, payload).
type Sink = std::sync::Arc<std::sync::Mutex<Vec<(Ipv6Addr, Ipv6Addr, Vec<u8>)>>>;

impl Servers {
    fn start(ns: &Netns, addrs: Vec<Ipv6Addr>) -> io::Result<Self> {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let sink: Sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink2 = sink.clone();
        let thread = ns.spawn(move || async move {
            let mut sockets = Vec::new();
            for a in &addrs {
                let sa = |port| SocketAddr::V6(SocketAddrV6::new(*a, port, 0, 0));
                // The sink is a plain non-blocking std socket: every drain pass below
                // makes the syscall (tokio's try_recv_from answers from its cached
                // readiness and may skip a socket that has data).
                let sink = std::net::UdpSocket::bind(sa(SINK_PORT))
                    .and_then(|s| s.set_nonblocking(true).map(|()| s));
                match (UdpSocket::bind(sa(ECHO_PORT)).await, sink) {
                    (Ok(e), Ok(s)) => sockets.push((*a, e, s)),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                }
            }
            let _ = ready_tx.send(Ok(()));
            let mut tasks = tokio::task::JoinSet::new();
            let mut sinks = Vec::new();
            for (local, echo, one_way) in sockets {
                tasks.spawn(async move {
                    let mut buf = [0u8; 2048];
                    loop {
                        if let Ok((n, from)) = echo.recv_from(&mut buf).await {
                            let _ = echo.send_to(&buf[..n], from).await;
                        }
                    }
                });
                sinks.push((local, one_way));
            }
            // One task drains every sink socket in each pass and records the pass under
            // one lock: datagrams that reached their sockets before the marker reached
            // its own are recorded together with it or earlier, never after (one task
            // per socket would race). Polled every 2 ms.
            tasks.spawn(async move {
                let mut buf = [0u8; 2048];
                loop {
                    let mut pass = Vec::new();
                    for (local, sock) in &sinks {
                        while let Ok((n, SocketAddr::V6(from))) = sock.recv_from(&mut buf) {
                            pass.push((*from.ip(), *local, buf[..n].to_vec()));
                        }
                    }
                    if !pass.is_empty() {
                        sink2.lock().unwrap_or_else(|p| p.into_inner()).extend(pass);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            });
            let _ = stopped.wait_for(|s| *s).await;
            tasks.abort_all();
        })?;
        match ready_rx.recv_timeout(PROBE_WAIT) {
            Ok(Ok(())) => Ok(Self {
                stop: Some(stop),
                thread: Some(thread),
                sink,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("echo servers did not start")),
        }
    }

    fn received(&self) -> Vec<(Ipv6Addr, Ipv6Addr, Vec<u8>)> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            // Never panic in drop (a test may be unwinding).
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.join()));
        }
    }
}

/// Sends one datagram from `src` to `dst`'s echo server inside `ns` and waits (at most
/// `wait`) for it to come back; returns the round-trip time, or `None`.
pub fn round_trip(ns: &Netns, src: Ipv6Addr, dst: Ipv6Addr, wait: Duration) -> Option<Duration> {
    ns.run(move || async move {
        let s = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 0)))
            .await
            .ok()?;
        let start = Instant::now();
        s.send_to(b"probe", (dst, ECHO_PORT)).await.ok()?;
        let mut buf = [0u8; 64];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (n, from) = tokio::time::timeout_at(deadline, s.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            if from.ip() == std::net::IpAddr::V6(dst) && &buf[..n] == b"probe" {
                return Some(start.elapsed());
            }
        }
    })
    .ok()
    .flatten()
}

/// Direction of a unidirectional path in [`LinShim6`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From a locator of A to a locator of B.
    AtoB,
    /// From a locator of B to a locator of A.
    BtoA,
}

/// Delay and loss of a path or link, as `tc netem` would give them.
///
/// The CI kernel (6.18) is built without `sch_netem` (and without `prio`, `fq`,
/// `fq_codel`; only `htb`, `tbf`, `pfifo` and `ingress` exist) and without nftables'
/// `queue` expression. So the testbed emulates netem in the router: loss with nftables
/// `numgen random` drops, delay by policy-routing the path into a TUN device whose reader
/// writes each packet back once its delay has passed ([`delay`]).
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct Netem {
    /// Added one-way delay.
    pub delay: Duration,
    /// Loss probability in percent.
    pub loss_percent: f64,
}

/// The LinShim6 testbed: see the module docs.
pub struct LinShim6 {
    /// Host A (interface `a0`).
    pub a: Netns,
    /// Host B (interface `b0`).
    pub b: Netns,
    /// The router (interfaces `ra` to A, `rb` to B).
    pub router: Netns,
    /// A's locators, `2001:db8:a1::1` .. `a3::1`.
    pub a_addrs: [Ipv6Addr; 3],
    /// B's locators, `2001:db8:b1::1` .. `b3::1`.
    pub b_addrs: [Ipv6Addr; 3],
    servers: Vec<Servers>,
    delayer: std::cell::OnceCell<delay::Delayer>,
}

impl std::fmt::Debug for LinShim6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinShim6")
            .field("a", &self.a)
            .field("b", &self.b)
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl LinShim6 {
    /// Builds the testbed; `tag` names its namespaces (letters and digits).
    pub fn new(tag: &str) -> io::Result<Self> {
        let a = namespace(&format!("{tag}a"), false)?;
        let b = namespace(&format!("{tag}b"), false)?;
        let router = namespace(&format!("{tag}r"), true)?;
        netns::veth(&a, "a0", &router, "ra")?;
        netns::veth(&b, "b0", &router, "rb")?;
        let a_addrs = [1, 2, 3].map(|i| doc_addr(0xa0 + i, 1));
        let b_addrs = [1, 2, 3].map(|i| doc_addr(0xb0 + i, 1));
        for i in 0..3 {
            addr(&a, a_addrs[i], "a0")?;
            addr(&b, b_addrs[i], "b0")?;
            addr(&router, doc_addr(0xa1 + i as u16, 0xff), "ra")?;
            addr(&router, doc_addr(0xb1 + i as u16, 0xff), "rb")?;
        }
        for (ns, dev) in [(&a, "a0"), (&b, "b0"), (&router, "ra"), (&router, "rb")] {
            up(ns, dev)?;
        }
        a.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &doc_addr(0xa1, 0xff).to_string(),
        ])?;
        b.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &doc_addr(0xb1, 0xff).to_string(),
        ])?;
        // The path breaker: one set of (saddr . daddr) pairs dropped while forwarding.
        let out = router.exec(
            "nft",
            &[
                "add table inet s6t; \
                 add set inet s6t broken { type ipv6_addr . ipv6_addr; }; \
                 add chain inet s6t forward { type filter hook forward priority 0; policy accept; }; \
                 add rule inet s6t forward ip6 saddr . ip6 daddr @broken counter drop",
            ],
        )?;
        check("nft setup", &out)?;
        let servers = vec![
            Servers::start(&a, a_addrs.to_vec())?,
            Servers::start(&b, b_addrs.to_vec())?,
        ];
        let bed = Self {
            a,
            b,
            router,
            a_addrs,
            b_addrs,
            servers,
            delayer: std::cell::OnceCell::new(),
        };
        // Warm-up and self-check: one round trip per pair resolves every neighbour on
        // the way (so later probes are not held in a neighbour queue, which would
        // reorder them) and proves the testbed works.
        for i in 0..3 {
            for j in 0..3 {
                if bed.round_trip(i, j).is_none() {
                    return Err(io::Error::other(format!(
                        "testbed self-check: no round trip {} -> {}",
                        bed.a_addrs[i], bed.b_addrs[j]
                    )));
                }
            }
        }
        Ok(bed)
    }

    /// The (source, destination) addresses of path `(i, j)` in `dir`: A's locator `i`
    /// and B's locator `j` (0-based), in the direction's order.
    pub fn path(&self, dir: Direction, i: usize, j: usize) -> (Ipv6Addr, Ipv6Addr) {
        match dir {
            Direction::AtoB => (self.a_addrs[i], self.b_addrs[j]),
            Direction::BtoA => (self.b_addrs[j], self.a_addrs[i]),
        }
    }

    fn nft_element(&self, op: &str, dir: Direction, i: usize, j: usize) -> io::Result<()> {
        let (s, d) = self.path(dir, i, j);
        self.nft_addrs(op, s, d)
    }

    fn nft_addrs(&self, op: &str, s: Ipv6Addr, d: Ipv6Addr) -> io::Result<()> {
        let out = self.router.exec(
            "nft",
            &[&format!("{op} element inet s6t broken {{ {s} . {d} }}")],
        )?;
        check(&format!("nft {op} element {s} . {d}"), &out)
    }

    /// Drops everything on the unidirectional path `(i, j)` in `dir`.
    pub fn break_path(&self, dir: Direction, i: usize, j: usize) -> io::Result<()> {
        self.nft_element("add", dir, i, j)
    }

    /// Restores the path.
    pub fn heal_path(&self, dir: Direction, i: usize, j: usize) -> io::Result<()> {
        self.nft_element("delete", dir, i, j)
    }

    /// Drops everything from `src` to `dst`, any addresses (e.g. HBAs added to the hosts
    /// next to the `::1` locators).
    pub fn break_addrs(&self, src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<()> {
        self.nft_addrs("add", src, dst)
    }

    /// Restores what [`LinShim6::break_addrs`] broke.
    pub fn heal_addrs(&self, src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<()> {
        self.nft_addrs("delete", src, dst)
    }

    /// Restores every path.
    pub fn heal_all(&self) -> io::Result<()> {
        let out = self.router.exec("nft", &["flush set inet s6t broken"])?;
        check("nft flush set", &out)
    }

    /// Delay and loss on the unidirectional path `(i, j)` in `dir`, replacing what the
    /// path had. Loss is an nftables `numgen random` drop in R; delay diverts the path
    /// through the delay device ([`delay`]).
    pub fn set_path_netem(
        &self,
        dir: Direction,
        i: usize,
        j: usize,
        netem: Netem,
    ) -> io::Result<()> {
        let (s, d) = self.path(dir, i, j);
        self.set_loss(
            &format!("loss {s} {d}"),
            &format!("ip6 saddr {s} ip6 daddr {d}"),
            netem.loss_percent,
        )?;
        let delayer = self.delayer()?;
        delayer.set_path(s, d, netem.delay);
        let iif = match dir {
            Direction::AtoB => "ra",
            Direction::BtoA => "rb",
        };
        // Idempotent: a rule with a priority is refused the second time (EEXIST).
        let (sp, dp) = (format!("{s}/128"), format!("{d}/128"));
        let _ = self.router.ip(&[
            "-6",
            "rule",
            "add",
            "from",
            &sp,
            "to",
            &dp,
            "iif",
            iif,
            "lookup",
            delay::TABLE,
            "priority",
            "90",
        ]);
        Ok(())
    }

    /// Delay and loss on everything host A (`Direction::AtoB`) or B (`BtoA`) sends,
    /// added to any per-path values.
    pub fn set_link_netem(&self, from: Direction, netem: Netem) -> io::Result<()> {
        let (dev, addrs) = match from {
            Direction::AtoB => ("ra", self.a_addrs),
            Direction::BtoA => ("rb", self.b_addrs),
        };
        self.set_loss(
            &format!("linkloss {dev}"),
            &format!("iifname \"{dev}\""),
            netem.loss_percent,
        )?;
        self.delayer()?.set_from(&addrs, netem.delay);
        let _ = self.router.ip(&[
            "-6",
            "rule",
            "add",
            "iif",
            dev,
            "lookup",
            delay::TABLE,
            "priority",
            "91",
        ]);
        Ok(())
    }

    /// Replaces the loss rule named `comment` (none for 0 %).
    fn set_loss(&self, comment: &str, selector: &str, percent: f64) -> io::Result<()> {
        // Rules are found again by their comment: delete the old one by its handle.
        let out = self
            .router
            .exec("nft", &["-a", "list", "chain", "inet", "s6t", "forward"])?;
        check("nft list chain", &out)?;
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in listing.lines() {
            if line.contains(&format!("comment \"{comment}\""))
                && let Some(handle) = line.rsplit("# handle ").next()
            {
                let out = self.router.exec(
                    "nft",
                    &[
                        "delete",
                        "rule",
                        "inet",
                        "s6t",
                        "forward",
                        "handle",
                        handle.trim(),
                    ],
                )?;
                check("nft delete rule", &out)?;
            }
        }
        if percent > 0.0 {
            // Per 10 000, so 0.5 % works; 100 % is a plain drop. Inserted at the top of
            // the chain.
            let threshold = (percent * 100.0).round() as u32;
            let random = if threshold >= 10_000 {
                String::new()
            } else {
                format!("numgen random mod 10000 < {threshold} ")
            };
            let out = self.router.exec(
                "nft",
                &[&format!(
                    "insert rule inet s6t forward {selector} {random}counter drop comment \"{comment}\""
                )],
            )?;
            check("nft insert loss rule", &out)?;
        }
        Ok(())
    }

    /// The delayer, started on first use.
    fn delayer(&self) -> io::Result<&delay::Delayer> {
        if self.delayer.get().is_none() {
            let d = delay::Delayer::start(&self.router)?;
            let _ = self.delayer.set(d);
        }
        Ok(self.delayer.get().expect("set above"))
    }

    /// Round trip from A's locator `i` to B's locator `j` (A→B on path `(i, j)`, the echo
    /// back on B→A `(i, j)`), waiting at most [`PROBE_WAIT`].
    pub fn round_trip(&self, i: usize, j: usize) -> Option<Duration> {
        round_trip(&self.a, self.a_addrs[i], self.b_addrs[j], PROBE_WAIT)
    }

    /// [`LinShim6::round_trip`] with its own bound.
    pub fn round_trip_within(&self, i: usize, j: usize, wait: Duration) -> Option<Duration> {
        round_trip(&self.a, self.a_addrs[i], self.b_addrs[j], wait)
    }

    /// Sends one datagram on each path of `pairs` in `dir`, then a marker on `marker`
    /// (which must work), and returns the pairs whose datagram arrived by the time the
    /// marker did, plus [`ONE_WAY_GRACE`].
    ///
    /// The datagrams take the same links but are not strictly kept in order: a veth
    /// hands each packet to the backlog of the CPU that sent it, so a sender thread that
    /// migrates between two sends can see them overtake each other. Without the grace a
    /// datagram was, rarely, missing when the marker was in (2-core machine, parallel
    /// tests); with it, none in 10 runs of the suite. A dropped datagram never comes. Not
    /// for use with per-path delay.
    pub fn one_way(
        &self,
        dir: Direction,
        pairs: &[(usize, usize)],
        marker: (usize, usize),
    ) -> io::Result<BTreeSet<(usize, usize)>> {
        let (sender, sink) = match dir {
            Direction::AtoB => (&self.a, &self.servers[1]),
            Direction::BtoA => (&self.b, &self.servers[0]),
        };
        let nonce = format!("{:?}", Instant::now());
        let mut sends = Vec::new();
        for &(i, j) in pairs.iter().chain(std::iter::once(&marker)) {
            let (s, d) = self.path(dir, i, j);
            sends.push((s, d, format!("{nonce} {i} {j}")));
        }
        let marker_text = sends.last().map(|(_, _, t)| t.clone()).unwrap_or_default();
        let to_send = sends.clone();
        sender.run(move || async move {
            for (s, d, text) in to_send {
                let sock = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(s, 0, 0, 0))).await?;
                sock.send_to(text.as_bytes(), (d, SINK_PORT)).await?;
            }
            io::Result::Ok(())
        })??;
        let deadline = Instant::now() + PROBE_WAIT;
        let mut marker_seen: Option<Instant> = None;
        loop {
            let got = sink.received();
            let all_in = sends[..sends.len() - 1]
                .iter()
                .all(|(_, _, text)| got.iter().any(|(_, _, p)| p == text.as_bytes()));
            if marker_seen.is_none() && got.iter().any(|(_, _, p)| p == marker_text.as_bytes()) {
                marker_seen = Some(Instant::now());
            }
            if marker_seen.is_some_and(|t| all_in || t.elapsed() >= ONE_WAY_GRACE) {
                let mut arrived = BTreeSet::new();
                for (s, d, text) in &sends[..sends.len() - 1] {
                    if got
                        .iter()
                        .any(|(gs, gd, p)| gs == s && gd == d && p == text.as_bytes())
                    {
                        let mut it = text.rsplit(' ');
                        let j: usize = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                        let i: usize = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                        arrived.insert((i, j));
                    }
                }
                return Ok(arrived);
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("marker on {marker:?} {dir:?} did not arrive"),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The multi-interface topology: see the module docs.
pub struct MultiHomed {
    /// Host A (interfaces `a1`..`aK`).
    pub a: Netns,
    /// Host B (interfaces `b1`..`bK`).
    pub b: Netns,
    /// A's providers (interface `tohost` to A, `tocore` to the core).
    pub providers_a: Vec<Netns>,
    /// B's providers.
    pub providers_b: Vec<Netns>,
    /// The core router.
    pub core: Netns,
    /// A's address on each interface: `2001:db8:a<i>::1`.
    pub a_addrs: Vec<Ipv6Addr>,
    /// B's address on each interface: `2001:db8:b<i>::1`.
    pub b_addrs: Vec<Ipv6Addr>,
    _servers: Vec<Servers>,
}

impl std::fmt::Debug for MultiHomed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiHomed")
            .field("a", &self.a)
            .field("b", &self.b)
            .field("providers", &self.providers_a.len())
            .finish_non_exhaustive()
    }
}

impl MultiHomed {
    /// Builds the topology with `k` (2 or 3) interfaces per host.
    pub fn new(tag: &str, k: usize) -> io::Result<Self> {
        if !(2..=3).contains(&k) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "k must be 2 or 3",
            ));
        }
        let a = namespace(&format!("{tag}a"), false)?;
        let b = namespace(&format!("{tag}b"), false)?;
        let core = namespace(&format!("{tag}c"), true)?;
        let mut providers_a = Vec::new();
        let mut providers_b = Vec::new();
        let mut a_addrs = Vec::new();
        let mut b_addrs = Vec::new();
        for i in 1..=k as u16 {
            for (host, side, list, addrs) in [
                (&a, 0xa0u16, &mut providers_a, &mut a_addrs),
                (&b, 0xb0u16, &mut providers_b, &mut b_addrs),
            ] {
                let net = side + i;
                let p = namespace(&format!("{tag}p{net:x}"), true)?;
                let hname = format!("{}{i}", if side == 0xa0 { 'a' } else { 'b' });
                let cname = format!("c{net:x}");
                netns::veth(host, &hname, &p, "tohost")?;
                netns::veth(&p, "tocore", &core, &cname)?;
                let host_addr = doc_addr(net, 1);
                addr(host, host_addr, &hname)?;
                addr(&p, doc_addr(net, 0xff), "tohost")?;
                // Provider ↔ core link: 2001:db8:f<net>::/64.
                let link_net = 0xf000 + net;
                addr(&p, doc_addr(link_net, 1), "tocore")?;
                addr(&core, doc_addr(link_net, 0xff), &cname)?;
                for (ns, dev) in [
                    (host, hname.as_str()),
                    (&p, "tohost"),
                    (&p, "tocore"),
                    (&core, cname.as_str()),
                ] {
                    up(ns, dev)?;
                }
                p.ip(&[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &doc_addr(link_net, 0xff).to_string(),
                ])?;
                core.ip(&[
                    "-6",
                    "route",
                    "add",
                    &format!("{}/64", doc_addr(net, 0)),
                    "via",
                    &doc_addr(link_net, 1).to_string(),
                ])?;
                // Source policy routing on the host: each locator leaves by its own
                // provider (table 100+i), so a link failure only affects that locator.
                source_route(
                    host,
                    net,
                    &hname,
                    false,
                    100 + usize::from(i),
                    1000 + usize::from(i),
                )?;
                if i == 1 {
                    host.ip(&[
                        "-6",
                        "route",
                        "add",
                        "default",
                        "via",
                        &doc_addr(net, 0xff).to_string(),
                        "dev",
                        &hname,
                    ])?;
                }
                list.push(p);
                addrs.push(host_addr);
            }
        }
        let servers = vec![
            Servers::start(&a, a_addrs.clone())?,
            Servers::start(&b, b_addrs.clone())?,
        ];
        let topo = Self {
            a,
            b,
            providers_a,
            providers_b,
            core,
            a_addrs,
            b_addrs,
            _servers: servers,
        };
        for i in 0..k {
            for j in 0..k {
                if topo.round_trip(i, j).is_none() {
                    return Err(io::Error::other(format!(
                        "topology self-check: no round trip {} -> {}",
                        topo.a_addrs[i], topo.b_addrs[j]
                    )));
                }
            }
        }
        Ok(topo)
    }

    fn provider(&self, host: Direction, i: usize) -> &Netns {
        match host {
            Direction::AtoB => &self.providers_a[i],
            Direction::BtoA => &self.providers_b[i],
        }
    }

    /// Takes down the link between a host (`AtoB`: A, `BtoA`: B) and its provider `i`
    /// (0-based), on the provider's side: the host loses carrier, keeps its address.
    pub fn link_down(&self, host: Direction, i: usize) -> io::Result<()> {
        self.provider(host, i)
            .ip(&["link", "set", "tohost", "down"])
            .map(drop)
    }

    /// Brings that link back.
    pub fn link_up(&self, host: Direction, i: usize) -> io::Result<()> {
        self.provider(host, i)
            .ip(&["link", "set", "tohost", "up"])
            .map(drop)
    }

    /// Round trip from A's address `i` to B's address `j`, waiting at most [`PROBE_WAIT`].
    pub fn round_trip(&self, i: usize, j: usize) -> Option<Duration> {
        round_trip(&self.a, self.a_addrs[i], self.b_addrs[j], PROBE_WAIT)
    }

    /// [`MultiHomed::round_trip`] with its own bound.
    pub fn round_trip_within(&self, i: usize, j: usize, wait: Duration) -> Option<Duration> {
        round_trip(&self.a, self.a_addrs[i], self.b_addrs[j], wait)
    }
}

/// Delay emulation in a router namespace, with no qdisc and no netfilter queue.
///
/// A TUN device `dly` in the router and a routing table [`delay::TABLE`] whose default route
/// points into it: policy rules `from S to D iif IN lookup TABLE` (one per delayed path)
/// or `iif IN lookup TABLE` (a delayed link) divert the matching forwarded packets into
/// the TUN. A thread in the router's namespace reads them, keeps each for the delay of
/// its `(source, destination)` ([`delay::Delayer::set_path`]) plus that of its source host
/// ([`delay::Delayer::set_from`]), and writes it back into the TUN; coming back in on `dly` it
/// no longer matches the `iif` rules and is forwarded by the main table. The hop limit
/// drops by one more; nothing else changes.
pub mod delay {
    use std::{
        cmp::Reverse,
        collections::{BinaryHeap, HashMap},
        io,
        net::Ipv6Addr,
        sync::{Arc, Mutex},
        time::Duration,
    };

    use shim6d::dataplane::{Batch, Tun};
    use tokio::time::Instant;
    use xfrm_sys::netns::{Netns, NetnsThread};

    /// The routing table of the delay device.
    pub const TABLE: &str = "200";
    /// The delay device.
    pub const DEVICE: &str = "dly";

    /// Delays by path and by sending host.
    #[derive(Debug, Default)]
    struct Table {
        path: HashMap<(Ipv6Addr, Ipv6Addr), Duration>,
        from: HashMap<Ipv6Addr, Duration>,
    }

    impl Table {
        fn delay(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Duration {
            self.path.get(&(src, dst)).copied().unwrap_or_default()
                + self.from.get(&src).copied().unwrap_or_default()
        }
    }

    /// The delayer: a TUN device and the thread serving it, in the router's namespace.
    #[derive(Debug)]
    pub struct Delayer {
        table: Arc<Mutex<Table>>,
        stop: Option<tokio::sync::watch::Sender<bool>>,
        thread: Option<NetnsThread<io::Result<()>>>,
    }

    impl Delayer {
        /// Creates the device and its table in `ns` and starts serving it.
        pub fn start(ns: &Netns) -> io::Result<Self> {
            let table = Arc::new(Mutex::new(Table::default()));
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let t = table.clone();
            let thread = ns.spawn(move || serve(t, stopped, ready_tx))?;
            match ready_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("delayer did not start")),
            }
            ns.ip(&[
                "-6", "route", "add", "default", "dev", DEVICE, "table", TABLE,
            ])?;
            Ok(Self {
                table,
                stop: Some(stop),
                thread: Some(thread),
            })
        }

        fn table(&self) -> std::sync::MutexGuard<'_, Table> {
            self.table.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// Sets the delay of packets `src → dst`.
        pub fn set_path(&self, src: Ipv6Addr, dst: Ipv6Addr, delay: Duration) {
            self.table().path.insert((src, dst), delay);
        }

        /// Sets the delay of every packet from any of `srcs`.
        pub fn set_from(&self, srcs: &[Ipv6Addr], delay: Duration) {
            let mut t = self.table();
            for s in srcs {
                t.from.insert(*s, delay);
            }
        }
    }

    impl Drop for Delayer {
        fn drop(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(true);
            }
            if let Some(t) = self.thread.take() {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.join()));
            }
        }
    }

    /// IPv6 source and destination (RFC 8200 §3).
    fn addresses(p: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr)> {
        if p.len() < 40 || p[0] >> 4 != 6 {
            return None;
        }
        let a = |r: std::ops::Range<usize>| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&p[r]);
            Ipv6Addr::from(o)
        };
        Some((a(8..24), a(24..40)))
    }

    async fn serve(
        table: Arc<Mutex<Table>>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
        ready: std::sync::mpsc::Sender<io::Result<()>>,
    ) -> io::Result<()> {
        let setup = async {
            let h = xfrm_sys::Handle::new().map_err(io::Error::other)?;
            Tun::create(&h, DEVICE, 1500)
                .await
                .map_err(io::Error::other)
        };
        let tun = match setup.await {
            Ok(t) => {
                let _ = ready.send(Ok(()));
                t
            }
            Err(e) => {
                let _ = ready.send(Err(io::Error::new(e.kind(), format!("delay device: {e}"))));
                return Ok(());
            }
        };
        let mut batch = Batch::new(32, 1500);
        // Held packets by due time; the sequence number keeps equal times in order.
        let mut held: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
        let mut seq = 0u64;
        loop {
            let next = held.peek().map(|Reverse((t, _, _))| *t);
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return Ok(()),
                r = tun.recv_batch(&mut batch) => {
                    r?;
                    let now = Instant::now();
                    for p in batch.packets() {
                        let p = p.packet();
                        let Some((s, d)) = addresses(p) else { continue };
                        let delay = table.lock().unwrap_or_else(|e| e.into_inner()).delay(s, d);
                        seq += 1;
                        held.push(Reverse((now + delay, seq, p.to_vec())));
                    }
                }
                () = async {
                    match next {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            let now = Instant::now();
            while held.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
                if let Some(Reverse((_, _, p))) = held.pop() {
                    // A packet the kernel refuses is lost, as on a real link.
                    let _ = tun.send(&p).await;
                }
            }
        }
    }
}
