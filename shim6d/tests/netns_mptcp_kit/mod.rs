//! Shared by `netns_mptcp.rs` (the scenarios) and `netns_mptcp_bench.rs` (the figures):
//! the topology of mptcp-pm.md §3, real MPTCP sockets, the driver on a namespace
//! thread, and `sock_diag` views of both sides.
//!
//! Client namespace (the daemon's): `c1` `2001:db8:1::1/64`, `c2` `2001:db8:2::1/64`,
//! `net.mptcp.pm_type=1`. Server namespace: `s1` `2001:db8:1::2/64`, `s2`
//! `2001:db8:2::2/64` and `2001:db8:2::3/64` (a locator the tests never verify), the
//! in-kernel PM with `subflows 8` so that it accepts every join. The server's ULID is
//! `2001:db8:1::2`.

#![allow(dead_code)] // each test binary uses part of the kit

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use reap::Pair;
use shim6_tests::daemons::mptcp_socket;
use shim6d::mptcp::{
    MptcpConfig,
    driver::{Driver, Handle, Status},
    policy::PeerView,
};
use xfrm_sys::{
    mptcp::diag::{Diag, Snapshot},
    netns::{Netns, NetnsThread, veth},
};

/// Upper bound of every wait.
pub const WAIT: Duration = Duration::from_secs(20);
/// The server's port.
pub const PORT: u16 = 8080;

pub fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

pub fn l1() -> Ipv6Addr {
    a("2001:db8:1::1")
}
pub fn l2() -> Ipv6Addr {
    a("2001:db8:2::1")
}
pub fn r1() -> Ipv6Addr {
    a("2001:db8:1::2")
}
pub fn r2() -> Ipv6Addr {
    a("2001:db8:2::2")
}
/// On the server, never verified.
pub fn r3() -> Ipv6Addr {
    a("2001:db8:2::3")
}

/// One scenario at a time: the machines have 2 cores, and the kernel's timers are
/// shared.
/// (An async mutex: each `#[tokio::test]` has its own runtime, and a failed test must
/// not poison the others.)
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

pub struct Topo {
    pub cli: Netns,
    pub srv: Netns,
}

impl Topo {
    /// The topology; the client's path manager is left as a fresh namespace has it
    /// when `userspace` is false.
    pub fn new(tag: &str, userspace: bool) -> Self {
        let cli = Netns::new(&format!("{tag}c")).expect("client netns");
        let srv = Netns::new(&format!("{tag}s")).expect("server netns");
        veth(&cli, "c1", &srv, "s1").unwrap();
        veth(&cli, "c2", &srv, "s2").unwrap();
        for (ns, dev, addr) in [
            (&cli, "c1", "2001:db8:1::1/64"),
            (&cli, "c2", "2001:db8:2::1/64"),
            (&srv, "s1", "2001:db8:1::2/64"),
            (&srv, "s2", "2001:db8:2::2/64"),
            (&srv, "s2", "2001:db8:2::3/64"),
        ] {
            ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]).unwrap();
            ns.ip(&["link", "set", dev, "up"]).unwrap();
        }
        srv.ip(&["mptcp", "limits", "set", "subflows", "8"])
            .unwrap();
        if userspace {
            sysctl(&cli, "net.mptcp.pm_type=1");
        }
        Self { cli, srv }
    }

    /// Both sides' `sock_diag` views.
    pub async fn snapshots(&self) -> (Snapshot, Snapshot) {
        let mut c = Diag::open(Some(self.cli.name())).unwrap();
        let mut s = Diag::open(Some(self.srv.name())).unwrap();
        (c.snapshot().await.unwrap(), s.snapshot().await.unwrap())
    }

    /// Joined subflows up on each side as (local, remote) address pairs, sorted; the
    /// server's mirrored into the client's orientation.
    pub async fn joins(&self) -> (Vec<(IpAddr, IpAddr)>, Vec<(IpAddr, IpAddr)>) {
        let (c, s) = self.snapshots().await;
        let mut cj: Vec<_> = c
            .subflows
            .iter()
            .filter(|x| x.is_join())
            .map(|x| (x.local.ip(), x.remote.ip()))
            .collect();
        let mut sj: Vec<_> = s
            .subflows
            .iter()
            .filter(|x| x.is_join())
            .map(|x| (x.remote.ip(), x.local.ip()))
            .collect();
        cj.sort();
        sj.sort();
        (cj, sj)
    }

    /// Polls [`Topo::joins`] until `want` holds on **both** sides (bounded by [`WAIT`]).
    pub async fn until_joins(&self, what: &str, want: impl Fn(&[(IpAddr, IpAddr)]) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (c, s) = self.joins().await;
            if want(&c) && want(&s) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}: client {c:?} server {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn sysctl(ns: &Netns, setting: &str) {
    let out = ns.exec("sysctl", &["-qw", setting]).unwrap();
    assert!(
        out.status.success(),
        "sysctl {setting}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn pair(l: Ipv6Addr, r: Ipv6Addr) -> (IpAddr, IpAddr) {
    (IpAddr::V6(l), IpAddr::V6(r))
}

/// An MPTCP listener on `[::]:8080` in the server namespace (the wildcard matters: joins
/// arrive on the other addresses).
pub fn listen(srv: &Netns) -> TcpListener {
    srv.run(|| async {
        let s = mptcp_socket(WAIT);
        s.set_reuse_address(true).unwrap();
        s.bind(&"[::]:8080".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        s.listen(16).unwrap();
        TcpListener::from(s)
    })
    .unwrap()
}

/// The application's connection: client from `[2001:db8:1::1]` to the server's ULID.
pub fn connect(cli: &Netns, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = cli
        .run(|| async {
            let s = mptcp_socket(WAIT);
            s.bind(&"[2001:db8:1::1]:0".parse::<SocketAddr>().unwrap().into())
                .unwrap();
            s.connect_timeout(
                &"[2001:db8:1::2]:8080".parse::<SocketAddr>().unwrap().into(),
                WAIT,
            )
            .unwrap();
            TcpStream::from(s)
        })
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    // One round trip: the client's ESTABLISHED event comes only once the connection is
    // fully established, i.e. after the server's first DSS acknowledgement.
    hello(&client, &server);
    (client, server)
}

/// `hello` from the client, echoed by the server.
pub fn hello(client: &TcpStream, server: &TcpStream) {
    let (mut c, mut s) = (client, server);
    c.write_all(b"hello").unwrap();
    let mut buf = [0; 5];
    s.read_exact(&mut buf).unwrap();
    s.write_all(&buf).unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
}

/// Writes `n` bytes on `w` while a thread reads them all from `r`; returns when both are
/// done.
pub fn transfer(w: &mut TcpStream, r: &TcpStream, n: usize) {
    let mut r = r.try_clone().unwrap();
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < n {
            let k = r.read(&mut buf).expect("server read");
            assert!(k > 0, "connection closed after {got} of {n} bytes");
            got += k;
        }
    });
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sent = 0;
    while sent < n {
        let k = chunk.len().min(n - sent);
        w.write_all(&chunk[..k]).expect("client write");
        sent += k;
    }
    reader.join().unwrap();
}

/// The server's verified view as the Shim6 Endpoint would give it (`context(tag)`:
/// `key.ulid_peer`, `peer_locators`), with our locators.
pub fn peer_view(remotes: &[Ipv6Addr]) -> PeerView {
    PeerView {
        ulid_peer: r1(),
        locals: vec![l1(), l2()],
        remotes: remotes.to_vec(),
    }
}

pub fn reap_pair(l: Ipv6Addr, r: Ipv6Addr) -> Pair {
    Pair::new(l, r)
}

/// The driver on a thread of the client namespace; stopped and joined on drop.
pub struct Running {
    pub handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<NetnsThread<Result<(), String>>>,
}

impl Running {
    /// Starts the driver in `ns`; `Err` is [`Driver::start`]'s error text.
    pub fn start(ns: &Netns, config: MptcpConfig) -> Result<Self, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = ns
            .spawn(move || async move {
                let driver = match Driver::start(&config).await {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return Ok(());
                    }
                };
                let _ = tx.send(Ok(driver.handle()));
                driver
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(|e| e.to_string())
            })
            .unwrap();
        let handle = rx.recv_timeout(WAIT).expect("driver thread answers")?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub async fn status(&self) -> Status {
        tokio::time::timeout(WAIT, self.handle.status())
            .await
            .expect("status in time")
            .expect("driver running")
    }

    /// Polls the status until `f` holds (bounded).
    pub async fn until(&self, what: &str, f: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status().await;
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(())) => {}
                // Report, never panic in drop (a failing test may be unwinding).
                Ok(Err(e)) => eprintln!("driver ended with: {e}"),
                Err(e) => eprintln!("driver thread: {e}"),
            }
        }
    }
}

/// Drops every packet from or to `prefix` in `ns` (nft table `s6tmp`), both ways.
pub fn blackhole(ns: &Netns, prefix: &str) {
    let script = format!(
        "add table inet s6tmp\n\
         add chain inet s6tmp in {{ type filter hook input priority 0; policy accept; }}\n\
         add chain inet s6tmp out {{ type filter hook output priority 0; policy accept; }}\n\
         add rule inet s6tmp in ip6 saddr {prefix} drop\n\
         add rule inet s6tmp in ip6 daddr {prefix} drop\n\
         add rule inet s6tmp out ip6 saddr {prefix} drop\n\
         add rule inet s6tmp out ip6 daddr {prefix} drop\n"
    );
    let path = std::env::temp_dir().join(format!("{}.nft", ns.name()));
    std::fs::write(&path, script).unwrap();
    let out = ns.exec("nft", &["-f", path.to_str().unwrap()]).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Undoes [`blackhole`].
pub fn heal(ns: &Netns) {
    let out = ns
        .exec("nft", &["delete", "table", "inet", "s6tmp"])
        .unwrap();
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
