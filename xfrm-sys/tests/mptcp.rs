//! The MPTCP userspace path manager against the real kernel: two namespaces joined by two
//! veth pairs exactly as mptcp-pm.md §3 (client on `pm_type=1`, server on the in-kernel
//! PM unless a test says otherwise), real MPTCP sockets on both sides.
//!
//! Needs root; without it each test prints `SKIPPED: needs CAP_NET_ADMIN` and passes.
//! Every wait is bounded by [`WAIT`]; no test sleeps or measures time.
//!
//! With `MPTCP_CAPTURE_DIR=DIR` set, the main test writes every raw event datagram it saw
//! to `DIR/SIDE_NN_ev_TYPE.bin` (how `src/testdata/mptcp/ev_*.bin` were made).

use std::{
    future::Future,
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    num::NonZeroU8,
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use xfrm_sys::{
    Error,
    genl::{Genl, Message},
    mptcp::{
        Event, EventOptions, EventStream, Manager, Pm, Refusal, Subflow, Token, diag::Diag,
        diag::IPPROTO_MPTCP,
    },
    netns::{self, Netns, veth},
};

/// Upper bound for any single wait on the kernel.
const WAIT: Duration = Duration::from_secs(10);
/// The server's port.
const PORT: u16 = 8080;
/// `EINVAL`, `ESRCH`, `ENOENT` (`asm-generic/errno-base.h`).
const EINVAL: i32 = 22;
const ESRCH: i32 = 3;
const ENOENT: i32 = 2;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// Events until one satisfies `pred`, within [`WAIT`]; returns it and those before it.
async fn wait_for(
    events: &mut EventStream,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> (Event, Vec<Event>) {
    bounded(what, async {
        let mut seen = Vec::new();
        loop {
            let e = events.next().await.expect("event stream error");
            if pred(&e) {
                return (e, seen);
            }
            seen.push(e);
        }
    })
    .await
}

/// The two namespaces of §3: `c1`/`s1` (`2001:db8:1::/64`) and `c2`/`s2` (`2001:db8:2::/64`).
struct Topo {
    cli: Netns,
    srv: Netns,
}

impl Topo {
    fn new(tag: &str, server_userspace: bool) -> Self {
        let cli = Netns::new(&format!("{tag}c")).expect("client netns");
        let srv = Netns::new(&format!("{tag}s")).expect("server netns");
        veth(&cli, "c1", &srv, "s1").unwrap();
        veth(&cli, "c2", &srv, "s2").unwrap();
        for (ns, dev, addr) in [
            (&cli, "c1", "2001:db8:1::1/64"),
            (&cli, "c2", "2001:db8:2::1/64"),
            (&srv, "s1", "2001:db8:1::2/64"),
            (&srv, "s2", "2001:db8:2::2/64"),
        ] {
            ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]).unwrap();
            ns.ip(&["link", "set", dev, "up"]).unwrap();
        }
        sysctl(&cli, "net.mptcp.pm_type=1");
        if server_userspace {
            sysctl(&srv, "net.mptcp.pm_type=1");
        }
        Self { cli, srv }
    }
}

fn sysctl(ns: &Netns, setting: &str) {
    let out = ns.exec("sysctl", &["-qw", setting]).unwrap();
    assert!(
        out.status.success(),
        "sysctl {setting}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mptcp_socket() -> Socket {
    let s = Socket::new(
        Domain::IPV6,
        Type::STREAM,
        Some(Protocol::from(i32::try_from(IPPROTO_MPTCP).unwrap())),
    )
    .expect("MPTCP socket (is CONFIG_MPTCP on?)");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// An MPTCP listener on `[::]:8080` inside the server namespace (the wildcard matters:
/// joins arrive on the second address).
fn listen(srv: &Netns) -> TcpListener {
    srv.run(|| async {
        let s = mptcp_socket();
        s.set_reuse_address(true).unwrap();
        s.bind(&sa("[::]:8080").into()).unwrap();
        s.listen(16).unwrap();
        TcpListener::from(s)
    })
    .unwrap()
}

/// The client's MPTCP connection from `2001:db8:1::1` to `[2001:db8:1::2]:8080`, accepted
/// by `listener`, with a round of data each way to show it carries traffic.
fn connect(cli: &Netns, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let mut client = cli
        .run(|| async {
            let s = mptcp_socket();
            s.bind(&sa("[2001:db8:1::1]:0").into()).unwrap();
            s.connect_timeout(&sa("[2001:db8:1::2]:8080").into(), WAIT)
                .unwrap();
            TcpStream::from(s)
        })
        .unwrap();
    // The handshake is done, so the connection is already in the accept queue.
    let (mut server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0; 5];
    server.read_exact(&mut buf).unwrap();
    server.write_all(&buf).unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    (client, server)
}

/// A raw socket on `mptcp_pm_events` that keeps every datagram, to check the typed
/// stream against and to capture test data.
struct Recorder {
    socket: netlink_sys::Socket,
    family: u16,
}

impl Recorder {
    fn new(ns: &Netns, pm: &Pm) -> Self {
        let group = pm.family().group("mptcp_pm_events").unwrap();
        let socket = ns
            .run(move || async move {
                let mut s = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_GENERIC)?;
                s.bind_auto()?;
                s.set_rx_buf_sz(4 << 20)?;
                s.add_membership(group)?;
                s.set_non_blocking(true)?;
                std::io::Result::Ok(s)
            })
            .unwrap()
            .unwrap();
        Self {
            socket,
            family: pm.family().id,
        }
    }

    /// Everything queued now.
    fn take(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::with_capacity(16 * 1024);
            match self.socket.recv(&mut buf, 0) {
                Ok(_) => out.push(buf),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return out,
                Err(e) => panic!("recorder: {e}"),
            }
        }
    }

    /// Decodes one datagram holding one event.
    fn decode(&self, d: &[u8]) -> Event {
        assert_eq!(u16::from_ne_bytes([d[4], d[5]]), self.family);
        let len = u32::from_ne_bytes([d[0], d[1], d[2], d[3]]) as usize;
        Event::parse(&Message::parse(self.family, &d[16..len]).unwrap()).unwrap()
    }
}

fn capture(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("MPTCP_CAPTURE_DIR") {
        std::fs::write(format!("{dir}/{name}.bin"), bytes).unwrap();
    }
}

fn sub_established_from(local: IpAddr) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::SubEstablished(s) if s.local.ip() == local)
}

fn sub_closed(key: (SocketAddr, SocketAddr)) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::SubClosed(s) if s.key() == key)
}

fn mirror(s: &Subflow) -> (SocketAddr, SocketAddr) {
    (s.remote, s.local)
}

#[tokio::test]
async fn subflows_follow_the_commands_on_both_sides() {
    if !netns::require_net_admin() {
        return;
    }
    let topo = Topo::new("mp", false);
    let cpm = Pm::in_netns(topo.cli.name()).await.unwrap();
    let spm = Pm::in_netns(topo.srv.name()).await.unwrap();
    assert_eq!(cpm.family().version, 1);
    let mut cev = cpm.events(EventOptions::default()).await.unwrap();
    let mut sev = spm.events(EventOptions::default()).await.unwrap();
    assert_eq!(cev.connections().count(), 0);
    let rec = Recorder::new(&topo.cli, &cpm);
    let srec = Recorder::new(&topo.srv, &spm);

    let listener = listen(&topo.srv);
    let (ev, _) = wait_for(
        &mut sev,
        "LISTENER_CREATED",
        |e| matches!(e, Event::ListenerCreated(l) if l.local.port() == PORT),
    )
    .await;
    let Event::ListenerCreated(l) = ev else {
        unreachable!()
    };
    assert!(l.local.ip().is_unspecified(), "{l:?}");

    let (client, _server) = connect(&topo.cli, &listener);
    let (ev, before) = wait_for(&mut cev, "client ESTABLISHED", |e| {
        matches!(e, Event::Established(_))
    })
    .await;
    assert!(
        matches!(&before[..], [Event::Created(_)]),
        "CREATED comes first: {before:?}"
    );
    let Event::Established(conn) = ev else {
        unreachable!()
    };
    let token = conn.token;
    assert_eq!(conn.local.ip(), ip("2001:db8:1::1"));
    assert_eq!(conn.remote, sa("[2001:db8:1::2]:8080"));
    assert_eq!((conn.loc_id, conn.rem_id), (0, 0));
    assert!(!conn.server_side);
    assert_eq!(conn.local.port(), client.local_addr().unwrap().port());
    let (ev, _) = wait_for(&mut sev, "server ESTABLISHED", |e| {
        matches!(e, Event::Established(_))
    })
    .await;
    let Event::Established(sconn) = ev else {
        unreachable!()
    };
    assert!(sconn.server_side);
    assert_eq!((sconn.local, sconn.remote), (conn.remote, conn.local));
    let stoken = sconn.token;

    // sock_diag knows the same token (what resync relies on).
    let mut diag = Diag::open(Some(topo.cli.name())).unwrap();
    let snap = diag.snapshot().await.unwrap();
    assert!(
        snap.connections
            .iter()
            .any(|c| c.token == token && c.local == conn.local && c.is_established()),
        "{snap:?}"
    );

    // A fresh ID gives SUB_ESTABLISHED on both sides.
    let mut mgr = Manager::new(cpm.clone());
    let path2 = sa("[2001:db8:2::2]:8080");
    let id = mgr
        .create_subflow(token, ip("2001:db8:2::1"), path2, false)
        .await
        .unwrap();
    assert_eq!(id.get(), 1);
    let (ev, _) = wait_for(
        &mut cev,
        "client SUB_ESTABLISHED",
        sub_established_from(ip("2001:db8:2::1")),
    )
    .await;
    let Event::SubEstablished(sub) = ev else {
        unreachable!()
    };
    assert_eq!(sub.token, token);
    assert_eq!(sub.remote, path2);
    assert_eq!(sub.loc_id, 1);
    assert!(!sub.backup && sub.error.is_none());
    let (ev, _) = wait_for(
        &mut sev,
        "server SUB_ESTABLISHED",
        |e| matches!(e, Event::SubEstablished(s) if s.remote == sub.local),
    )
    .await;
    let Event::SubEstablished(ssub) = ev else {
        unreachable!()
    };
    assert_eq!(ssub.token, stoken);
    assert_eq!(ssub.key(), mirror(&sub));
    assert_eq!(ssub.rem_id, 1);
    assert!(
        cev.connection(token)
            .unwrap()
            .subflows
            .contains_key(&sub.key())
    );

    // The kernel's list and ours agree.
    let kernel = cpm.addresses(token).await.unwrap();
    assert!(
        kernel
            .iter()
            .any(|e| e.id == 1 && e.addr == ip("2001:db8:2::1")),
        "{kernel:?}"
    );
    assert_eq!(mgr.verify(token).await.unwrap(), []);

    // The kernel's refusals, with their text.
    let bad = Token(token.0 ^ 0x5a5a_5a5a);
    let local =
        xfrm_sys::mptcp::LocalAddr::subflow(NonZeroU8::new(7).unwrap(), ip("2001:db8:2::1"));
    let err = cpm.subflow_create(bad, &local, path2).await.unwrap_err();
    assert_eq!(Refusal::of(&err), Some(Refusal::InvalidToken), "{err}");
    assert!(
        matches!(&err, Error::Kernel { errno, message: Some(m), .. } if *errno == EINVAL && m == "invalid token"),
        "{err:?}"
    );
    // Another ID for the pinned address (pitfall 2).
    let err = cpm.subflow_create(token, &local, path2).await.unwrap_err();
    assert_eq!(Refusal::of(&err), Some(Refusal::AddrIdMismatch), "{err}");
    // A token of the client's namespace means nothing in the server's.
    let err = spm
        .subflow_destroy(token, sub.local, sub.remote)
        .await
        .unwrap_err();
    assert_eq!(Refusal::of(&err), Some(Refusal::InvalidToken), "{err}");
    // A 4-tuple that does not exist.
    let err = cpm
        .subflow_destroy(token, SocketAddr::new(sub.local.ip(), 1), sub.remote)
        .await
        .unwrap_err();
    assert_eq!(Refusal::of(&err), Some(Refusal::SubflowNotFound), "{err}");
    assert_eq!(err.errno(), Some(ESRCH));

    // SET_FLAGS backup: the peer hears SUB_PRIORITY.
    cpm.set_backup(token, sub.local, sub.remote, true)
        .await
        .unwrap();
    let (ev, _) = wait_for(&mut sev, "server SUB_PRIORITY", |e| {
        matches!(e, Event::SubPriority(_))
    })
    .await;
    let Event::SubPriority(p) = ev else {
        unreachable!()
    };
    assert_eq!(p.key(), mirror(&sub));
    assert!(p.backup);

    // SUBFLOW_DESTROY: SUB_CLOSED on both sides, the ID is free again.
    mgr.destroy_subflow(token, sub.local, sub.remote)
        .await
        .unwrap();
    wait_for(&mut cev, "client SUB_CLOSED", sub_closed(sub.key())).await;
    wait_for(&mut sev, "server SUB_CLOSED", sub_closed(mirror(&sub))).await;
    assert!(
        mgr.ids()
            .conn(token)
            .unwrap()
            .get(ip("2001:db8:2::1"), 0)
            .is_none()
    );
    assert_eq!(mgr.verify(token).await.unwrap(), []);
    assert!(cev.connection(token).unwrap().subflows.is_empty());

    // A subflow that dies at once (nothing listens on port 9: RST) reports its errno, and
    // its address stays pinned to the ID in the kernel (pitfall 2): the book agrees.
    let id = mgr
        .create_subflow(token, ip("2001:db8:2::1"), sa("[2001:db8:2::2]:9"), false)
        .await
        .unwrap();
    let (ev, _) = wait_for(
        &mut cev,
        "SUB_CLOSED of a refused join",
        |e| matches!(e, Event::SubClosed(s) if s.remote.port() == 9),
    )
    .await;
    let Event::SubClosed(dead) = ev else {
        unreachable!()
    };
    assert_eq!(dead.error, Some(111), "ECONNREFUSED: {dead:?}"); // ECONNREFUSED
    assert_eq!(dead.loc_id, id.get());
    assert!(
        cpm.addresses(token)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == id.get()),
        "the dead subflow's address is still pinned"
    );
    assert_eq!(mgr.verify(token).await.unwrap(), []);

    // The failure recipe while path 2 is blackholed in the server namespace.
    let id = mgr
        .create_subflow(token, ip("2001:db8:2::1"), path2, false)
        .await
        .unwrap();
    assert_eq!(id.get(), 1, "the pinned ID is reused");
    let (ev, _) = wait_for(
        &mut cev,
        "client SUB_ESTABLISHED again",
        sub_established_from(ip("2001:db8:2::1")),
    )
    .await;
    let Event::SubEstablished(sub) = ev else {
        unreachable!()
    };
    wait_for(
        &mut sev,
        "server SUB_ESTABLISHED again",
        |e| matches!(e, Event::SubEstablished(s) if s.key() == mirror(&sub)),
    )
    .await;
    blackhole(&topo.srv, "2001:db8:2::/64");
    assert!(!cev.local_address_in_use(token, sub.local, sub.remote));
    // Run by a manager whose book is empty (a restarted daemon): it finds the ID in the
    // kernel's list.
    let mut restarted = Manager::new(cpm.clone());
    let done = restarted
        .detach_path(token, sub.local, sub.remote, false)
        .await
        .unwrap();
    assert_eq!(done.removed_id.map(NonZeroU8::get), Some(1));
    assert!(done.destroyed);
    wait_for(
        &mut cev,
        "client SUB_CLOSED (detach)",
        sub_closed(sub.key()),
    )
    .await;
    let (_, before) = wait_for(
        &mut sev,
        "server SUB_CLOSED (detach)",
        sub_closed(mirror(&sub)),
    )
    .await;
    assert!(
        before
            .iter()
            .any(|e| matches!(e, Event::Removed { token: t, rem_id: 1, .. } if *t == stoken)),
        "the server heard RM_ADDR first: {before:?}"
    );
    assert!(sev.connection(stoken).unwrap().subflows.is_empty());
    assert_eq!(restarted.verify(token).await.unwrap(), []);
    // The first manager's book is stale now; adopting the kernel's list fixes it.
    assert_ne!(mgr.verify(token).await.unwrap(), []);
    mgr.adopt(token).await.unwrap();
    assert_eq!(mgr.verify(token).await.unwrap(), []);

    // ANNOUNCE then REMOVE of an address: ANNOUNCED then REMOVED at the peer, the ID
    // pinned in between (the kernel lists it) and free afterwards.
    let id = mgr.announce(token, ip("2001:db8:2::1"), 0).await.unwrap();
    let (ev, _) = wait_for(&mut sev, "server ANNOUNCED", |e| {
        matches!(e, Event::Announced(_))
    })
    .await;
    let Event::Announced(a) = ev else {
        unreachable!()
    };
    assert_eq!((a.token, a.rem_id), (stoken, id.get()));
    assert_eq!(a.addr.ip(), ip("2001:db8:2::1"));
    // No port announced: the peer's connection port (mptcp-pm.md §2).
    assert_eq!(a.addr.port(), conn.local.port());
    assert_eq!(mgr.verify(token).await.unwrap(), []);
    assert_eq!(
        mgr.remove_address(token, ip("2001:db8:2::1"), 0)
            .await
            .unwrap(),
        Some(id)
    );
    wait_for(
        &mut sev,
        "server REMOVED",
        |e| matches!(e, Event::Removed { rem_id, .. } if *rem_id == id.get()),
    )
    .await;
    assert_eq!(mgr.verify(token).await.unwrap(), []);
    assert!(mgr.ids().conn(token).unwrap().iter().next().is_none());
    let err = cpm.remove(token, id).await.unwrap_err();
    assert_eq!(Refusal::of(&err), Some(Refusal::AddressIdNotFound), "{err}");

    // The connection closes: CLOSED, and the listener: LISTENER_CLOSED.
    drop(client);
    wait_for(
        &mut cev,
        "client CLOSED",
        |e| matches!(e, Event::Closed { token: t, .. } if *t == token),
    )
    .await;
    assert!(cev.connection(token).is_none());
    drop(_server);
    drop(listener);
    wait_for(
        &mut sev,
        "LISTENER_CLOSED",
        |e| matches!(e, Event::ListenerClosed(l) if l.local.port() == PORT),
    )
    .await;

    // Every raw datagram the recorders saw decodes as the typed stream did; keep them
    // as test data on request.
    let names = [
        (1u8, "ev_created"),
        (2, "ev_established"),
        (3, "ev_closed"),
        (6, "ev_announced"),
        (7, "ev_removed"),
        (10, "ev_sub_established"),
        (11, "ev_sub_closed"),
        (13, "ev_sub_priority"),
        (15, "ev_listener_created"),
        (16, "ev_listener_closed"),
    ];
    for (side, r) in [("cli", &rec), ("srv", &srec)] {
        let raw = r.take();
        assert!(!raw.is_empty());
        for (n, d) in raw.iter().enumerate() {
            let _ = r.decode(d);
            if let Some((_, name)) = names.iter().find(|(c, _)| *c == d[16]) {
                capture(&format!("{side}_{n:02}_{name}"), d);
            }
        }
    }
}

/// Drops every packet from or to `prefix` in `ns`, both directions (nft, table `s6tbh`).
fn blackhole(ns: &Netns, prefix: &str) {
    let script = format!(
        "add table inet s6tbh\n\
         add chain inet s6tbh in {{ type filter hook input priority 0; policy accept; }}\n\
         add chain inet s6tbh out {{ type filter hook output priority 0; policy accept; }}\n\
         add rule inet s6tbh in ip6 saddr {prefix} drop\n\
         add rule inet s6tbh in ip6 daddr {prefix} drop\n\
         add rule inet s6tbh out ip6 saddr {prefix} drop\n\
         add rule inet s6tbh out ip6 daddr {prefix} drop\n"
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

/// Lost events: a tiny receive buffer and a burst of subflow creations, then of
/// destructions, without reading; the stream must notice (`ENOBUFS`), resynchronise from
/// `sock_diag` and end with exactly the kernel's subflows.
#[tokio::test]
async fn lost_events_are_resynchronised_from_sock_diag() {
    if !netns::require_net_admin() {
        return;
    }
    const N: usize = 24;
    // Server on the userspace PM too: it accepts every join, whatever the limits.
    let topo = Topo::new("mprs", true);
    let extra: Vec<IpAddr> = (0..N)
        .map(|i| ip(&format!("2001:db8:2::{:x}", 0x100 + i)))
        .collect();
    for a in &extra {
        topo.cli
            .ip(&["addr", "add", &format!("{a}/64"), "dev", "c2", "nodad"])
            .unwrap();
    }
    let cpm = Pm::in_netns(topo.cli.name()).await.unwrap();
    let mut cev = cpm
        .events(EventOptions { receive_buffer: 1 })
        .await
        .unwrap();
    let listener = listen(&topo.srv);
    let (_client, _server) = connect(&topo.cli, &listener);
    let (ev, _) = wait_for(&mut cev, "ESTABLISHED", |e| {
        matches!(e, Event::Established(_))
    })
    .await;
    let token = ev.token().unwrap();
    let mut mgr = Manager::new(cpm.clone());
    let path2 = sa("[2001:db8:2::2]:8080");

    // Burst of creations, not reading events.
    for a in &extra {
        mgr.create_subflow(token, *a, path2, false).await.unwrap();
    }
    let ours = |cev: &EventStream| {
        cev.connection(token).map_or(0, |c| {
            c.subflows
                .values()
                .filter(|s| extra.contains(&s.local.ip()))
                .count()
        })
    };
    let mut resynced = false;
    bounded("all subflows after a resync", async {
        while !(resynced && ours(&cev) == N) {
            resynced |= cev.next().await.unwrap() == Event::Resynced;
        }
    })
    .await;
    let stats = cev.stats();
    assert!(stats.overruns >= 1, "{stats:?}");
    assert!(stats.resyncs >= 1, "{stats:?}");
    assert_eq!(stats.decode_errors, 0);
    let subs: Vec<Subflow> = cev
        .connection(token)
        .unwrap()
        .subflows
        .values()
        .cloned()
        .collect();
    assert_eq!(subs.len(), N, "{subs:?}");
    for a in &extra {
        assert_eq!(subs.iter().filter(|s| s.local.ip() == *a).count(), 1, "{a}");
    }
    assert_eq!(mgr.verify(token).await.unwrap(), []);

    // Burst of destructions, not reading events.
    for s in &subs {
        mgr.destroy_subflow(token, s.local, s.remote).await.unwrap();
    }
    let before = cev.stats().resyncs;
    let mut resynced = false;
    bounded("no subflow after a second resync", async {
        while !(resynced && ours(&cev) == 0) {
            resynced |= cev.next().await.unwrap() == Event::Resynced;
        }
    })
    .await;
    assert!(cev.stats().resyncs > before);
    assert_eq!(mgr.verify(token).await.unwrap(), []);
    assert!(mgr.ids().conn(token).unwrap().iter().next().is_none());
    // sock_diag agrees: only the initial subflow is left.
    let snap = Diag::open(Some(topo.cli.name()))
        .unwrap()
        .snapshot()
        .await
        .unwrap();
    assert!(
        !snap
            .subflows
            .iter()
            .any(|s| s.token == token && s.is_join()),
        "{snap:?}"
    );
}

/// The failure recipe's other form: the local address still serves a working pair, so
/// only `SUBFLOW_DESTROY` runs; the working subflow stays, the peer's half of the dead
/// one lingers.
#[tokio::test]
async fn detach_keeps_a_local_address_that_serves_another_pair() {
    if !netns::require_net_admin() {
        return;
    }
    let topo = Topo::new("mpsh", false);
    topo.srv
        .ip(&["addr", "add", "2001:db8:2::3/64", "dev", "s2", "nodad"])
        .unwrap();
    let cpm = Pm::in_netns(topo.cli.name()).await.unwrap();
    let mut cev = cpm.events(EventOptions::default()).await.unwrap();
    let listener = listen(&topo.srv);
    let (mut client, mut server) = connect(&topo.cli, &listener);
    let (ev, _) = wait_for(&mut cev, "ESTABLISHED", |e| {
        matches!(e, Event::Established(_))
    })
    .await;
    let token = ev.token().unwrap();
    let mut mgr = Manager::new(cpm.clone());
    let local = ip("2001:db8:2::1");
    let mut subs = Vec::new();
    for remote in ["[2001:db8:2::2]:8080", "[2001:db8:2::3]:8080"] {
        let id = mgr
            .create_subflow(token, local, sa(remote), false)
            .await
            .unwrap();
        assert_eq!(id.get(), 1, "one address, one ID");
        let (ev, _) = wait_for(
            &mut cev,
            "SUB_ESTABLISHED",
            |e| matches!(e, Event::SubEstablished(s) if s.remote == sa(remote)),
        )
        .await;
        let Event::SubEstablished(s) = ev else {
            unreachable!()
        };
        subs.push(s);
    }
    let [working, dying] = &subs[..] else {
        unreachable!()
    };
    blackhole(&topo.srv, "2001:db8:2::3/128");
    assert!(cev.local_address_in_use(token, dying.local, dying.remote));
    let done = mgr
        .detach_path(token, dying.local, dying.remote, true)
        .await
        .unwrap();
    assert_eq!(done.removed_id, None);
    assert!(done.destroyed);
    wait_for(
        &mut cev,
        "SUB_CLOSED of the dead pair",
        sub_closed(dying.key()),
    )
    .await;
    assert!(
        cev.connection(token)
            .unwrap()
            .subflows
            .contains_key(&working.key())
    );
    // The book follows the kernel, which dropped the address's entry with the subflow.
    assert_eq!(mgr.verify(token).await.unwrap(), []);
    // The peer still holds both halves: the working one and the orphan on the dead path.
    let snap = Diag::open(Some(topo.srv.name()))
        .unwrap()
        .snapshot()
        .await
        .unwrap();
    for key in [mirror(working), mirror(dying)] {
        assert!(
            snap.subflows
                .iter()
                .any(|s| (s.local, s.remote) == key && s.is_join()),
            "{key:?} in {snap:?}"
        );
    }
    // The connection still carries data.
    client.write_all(b"still").unwrap();
    let mut buf = [0; 5];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still");
}

/// `nlctrl` resolution in a fresh namespace: the family with its dynamic id, version 1 and
/// both groups; an unknown family is the kernel's `ENOENT`; `GET_LIMITS` gives a new
/// namespace's defaults (mptcp-pm.md §3).
#[tokio::test]
async fn family_resolution_and_limits() {
    if !netns::require_net_admin() {
        return;
    }
    let ns = Netns::new("mpfam").unwrap();
    let genl = Genl::in_netns(ns.name()).unwrap();
    assert_eq!(genl.netns(), Some(ns.name()));
    let fam = genl.resolve("mptcp_pm").await.unwrap();
    assert_eq!(
        (fam.name.as_str(), fam.version, fam.hdrsize),
        ("mptcp_pm", 1, 0)
    );
    assert!(fam.id > 0x10, "dynamic ids come after nlctrl: {fam:?}");
    assert!(fam.group("mptcp_pm_events").is_some());
    assert!(fam.group("mptcp_pm_cmds").is_some());
    let err = genl.resolve("s6t_nofamily").await.unwrap_err();
    assert_eq!(err.errno(), Some(ENOENT), "{err:?}");
    // Longer than GENL_NAMSIZ - 1 (15): refused by the attribute policy.
    let err = genl.resolve("s6t_no_such_family").await.unwrap_err();
    assert_eq!(err.errno(), Some(EINVAL), "{err:?}");
    let pm = Pm::new(genl).await.unwrap();
    assert_eq!(pm.family(), &fam);
    let limits = pm.limits().await.unwrap();
    assert_eq!((limits.rcv_add_addrs, limits.subflows), (0, 2));
}
