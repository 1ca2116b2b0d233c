//! Path MTU discovery through a rewriting context, end to end with two real daemons
//! (issue 6, MTU; architecture hazard 4). `netns_aux_mtu.rs` checks the parts on their
//! own (the MSS clamp, and that the kernel believes a Packet Too Big written into a
//! TUN); here a router link on the current locator pair is narrowed *after* the
//! context moved off its ULID pair, so the packets the daemon rewrites (8 octets longer,
//! RFC 5533 §5.1) no longer fit it:
//!
//! 1. the router answers with an ICMPv6 Packet Too Big about the rewritten packet
//!    (to A's locator, quoting the payload header);
//! 2. A's daemon translates it back to the ULIDs with MTU − 8 (RFC 5533 §5.1, digest
//!    §1.13) and writes it into its TUN;
//! 3. A's kernel lowers the path MTU towards B's ULID, and the application's data gets
//!    through: TCP re-segments, UDP fragments.
//!
//! Asserted by the data arriving intact (every byte of a TCP stream in order; every UDP
//! datagram whole), the router having sent Packet Too Big, A's daemon having translated
//! it, and A's kernel having fragmented (UDP). Counting only, no timing.
//!
//! A third test narrows A's *own* link at run time instead: no router complains then
//! (A's kernel refuses the daemon's oversized raw send with EMSGSIZE), and the daemon
//! follows its locators' link MTUs and answers with Packet Too Big itself.
//!
//! Root only (`SKIPPED: needs CAP_NET_ADMIN` otherwise).

use std::{
    io::{Read, Write},
    net::{SocketAddr, SocketAddrV6, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use shim6_tests::{
    daemons::{Bins, Options, Pair, until},
    testbed::snmp6,
};
use xfrm_sys::netns;

/// The narrowed link's MTU: below 1500, above the IPv6 minimum (RFC 8200 §5).
const NARROW: u32 = 1400;

/// Which link is narrowed to [`NARROW`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Narrowed {
    /// The router's link towards B (`rb`, and `b0` on B's side): further along A's
    /// path, so the router answers with Packet Too Big.
    RouterToB,
    /// A's own link (`a0`, and `ra` on the router's side): A's daemon must notice its
    /// locators' link shrink and answer with Packet Too Big itself.
    AOwn,
}

/// The pair with both contexts off the ULID pair (broken both ways at the router), then
/// `which` link narrowed to [`NARROW`].
fn rewriting_pair_behind_a_narrow_link(tag: &str, which: Narrowed) -> Pair {
    let p = Pair::start_established(
        tag,
        &Bins::shim6d(env!("CARGO_BIN_EXE_shim6d")),
        Options {
            log: "info".into(),
            ..Options::default()
        },
    );
    p.leave_ulid_pair(Duration::from_secs(60), || p.poke_ulids())
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    let mtu = NARROW.to_string();
    let (host, host_dev, router_dev) = match which {
        Narrowed::RouterToB => (&p.bed.b, "b0", "rb"),
        Narrowed::AOwn => (&p.bed.a, "a0", "ra"),
    };
    p.bed
        .router
        .ip(&["link", "set", router_dev, "mtu", &mtu])
        .unwrap();
    host.ip(&["link", "set", host_dev, "mtu", &mtu]).unwrap();
    p
}

/// The byte at stream offset `i` (period 251, prime: a lost or reordered segment shows).
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Sends 1 MiB over TCP from A's ULID to B's and checks it arrived intact; returns the
/// report for further assertions.
fn tcp_mib_arrives(p: &Pair) -> String {
    let (ua, ub) = p.ulids();
    let pair = p.current_pair().unwrap();
    let ptb0 = snmp6(&p.bed.router, "Icmp6OutPktTooBigs");
    const TOTAL: usize = 1 << 20;
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = p
        .bed
        .b
        .spawn(move || async move {
            let l = TcpListener::bind(SocketAddr::V6(SocketAddrV6::new(ub, 5002, 0, 0)))?;
            let _ = tx.send(());
            let (mut s, _) = l.accept()?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
            let mut got = 0usize;
            let mut first_bad = None;
            let mut buf = vec![0u8; 65536];
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                if first_bad.is_none()
                    && let Some(k) = (0..n).find(|&k| buf[k] != pattern(got + k))
                {
                    first_bad = Some(got + k);
                }
                got += n;
            }
            std::io::Result::Ok((got, first_bad))
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(5))
        .expect("listener bound");
    let sent = p
        .bed
        .a
        .run(move || async move {
            // From A's ULID: the context protects the ULID pair only (source address
            // selection would pick another of A's addresses).
            let sock = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?;
            sock.bind(&SocketAddr::V6(SocketAddrV6::new(ua, 0, 0, 0)).into())?;
            sock.connect_timeout(
                &SocketAddr::V6(SocketAddrV6::new(ub, 5002, 0, 0)).into(),
                Duration::from_secs(10),
            )?;
            let mut s = TcpStream::from(sock);
            s.set_write_timeout(Some(Duration::from_secs(20)))?;
            let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
            // Full-sized segments: larger writes than any MSS.
            for c in data.chunks(64 * 1024) {
                s.write_all(c)?;
            }
            s.shutdown(std::net::Shutdown::Write)?;
            std::io::Result::Ok(TOTAL)
        })
        .unwrap();
    let got = receiver.join().unwrap();
    let report = format!(
        "sent {sent:?}, received {got:?}; router Packet Too Big {}; A translated {}, \
         sent Packet Too Big {}; pair {pair:?}\n{}",
        snmp6(&p.bed.router, "Icmp6OutPktTooBigs") - ptb0,
        p.a.core_stat("icmp_translated"),
        ptb_sent(p),
        p.logs_tail(30)
    );
    println!("{report}");
    assert_eq!(sent.as_ref().ok(), Some(&TOTAL), "{report}");
    let (n, first_bad) = got.unwrap_or_else(|e| panic!("receiver: {e}\n{report}"));
    assert_eq!((n, first_bad), (TOTAL, None), "{report}");
    assert_ne!(
        p.current_pair().unwrap(),
        (ua, ub),
        "still rewriting: {report}"
    );
    report
}

/// Packet Too Big messages A's daemon wrote into its TUN itself.
fn ptb_sent(p: &Pair) -> u64 {
    p.a.json("stats").unwrap()["dataplane"]["ptb_sent"]
        .as_u64()
        .unwrap()
}

#[test]
fn tcp_stream_through_a_narrowed_link_learns_the_path_mtu() {
    if !netns::require_net_admin() {
        return;
    }
    let p = rewriting_pair_behind_a_narrow_link("ptbt", Narrowed::RouterToB);
    let ptb0 = snmp6(&p.bed.router, "Icmp6OutPktTooBigs");
    let report = tcp_mib_arrives(&p);
    // The path really was too narrow, and the daemon passed the news on.
    assert!(
        snmp6(&p.bed.router, "Icmp6OutPktTooBigs") > ptb0,
        "{report}"
    );
    assert!(p.a.core_stat("icmp_translated") > 0, "{report}");
}

/// A's own locator link narrowed at run time: nothing on the path sends a Packet Too
/// Big (the kernel refuses the daemon's oversized raw send with EMSGSIZE), so A's daemon
/// must follow its links' MTU and answer the application itself.
#[test]
fn tcp_stream_after_the_local_link_narrowed_at_run_time() {
    if !netns::require_net_admin() {
        return;
    }
    let p = rewriting_pair_behind_a_narrow_link("ptbl", Narrowed::AOwn);
    // The daemon noticed (it re-reads its links' MTUs every second and on link events).
    until(
        Duration::from_secs(10),
        "A's daemon to notice the MTU",
        || {
            Ok(p.a
                .log()
                .contains("smallest MTU of the locators' links changed"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    let report = tcp_mib_arrives(&p);
    assert!(ptb_sent(&p) > 0, "{report}");
}

#[test]
fn udp_datagrams_through_a_narrowed_link_get_fragmented() {
    if !netns::require_net_admin() {
        return;
    }
    let p = rewriting_pair_behind_a_narrow_link("ptbu", Narrowed::RouterToB);
    let (ua, ub) = p.ulids();
    let ptb0 = snmp6(&p.bed.router, "Icmp6OutPktTooBigs");
    let frag0 = snmp6(&p.bed.a, "Ip6FragCreates");
    // TUN MTU 1492 = IPv6 40 + UDP 8 + 1444: the largest datagram the TUN takes whole;
    // rewritten it is 1500 octets, too big for the narrowed link.
    const SIZE: usize = 1444;
    const COUNT: u8 = 20;
    let datagram = |i: u8| -> Vec<u8> { (0..SIZE).map(|k| (k as u8) ^ i).collect() };
    let got = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = {
        let (got, stop) = (got.clone(), stop.clone());
        p.bed
            .b
            .spawn(move || async move {
                let s = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(ub, 4002, 0, 0)))?;
                s.set_read_timeout(Some(Duration::from_millis(200)))?;
                let _ = tx.send(());
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = s.recv(&mut buf) {
                        got.lock().unwrap().push(buf[..n].to_vec());
                    }
                }
                std::io::Result::Ok(())
            })
            .unwrap()
    };
    rx.recv_timeout(Duration::from_secs(5))
        .expect("receiver bound");
    // The application retries a datagram (bounded) until B has it, as a UDP application
    // that cares would: the first one is lost to the narrow link and answered by the
    // Packet Too Big.
    // One socket throughout: Linux applies a Packet Too Big to the path through the
    // socket the quoted datagram came from (`udpv6_err`), so the sender stays open.
    let attempts = {
        let got = got.clone();
        p.bed
            .a
            .run(move || async move {
                let s = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(ua, 0, 0, 0)))?;
                let mut attempts = 0;
                for i in 0..COUNT {
                    let want = datagram(i);
                    for _ in 0..5 {
                        attempts += 1;
                        s.send_to(&want, SocketAddr::V6(SocketAddrV6::new(ub, 4002, 0, 0)))?;
                        let arrived = until(Duration::from_secs(1), "the datagram", || {
                            Ok(got.lock().unwrap().contains(&want))
                        });
                        if arrived.is_ok() {
                            break;
                        }
                    }
                }
                std::io::Result::Ok(attempts)
            })
            .unwrap()
            .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    receiver.join().unwrap().unwrap();
    let got = got.lock().unwrap().clone();
    let report = format!(
        "{} datagrams received in {attempts} attempts; router Packet Too Big {}; A \
         translated {}; A fragments {}\n{}",
        got.len(),
        snmp6(&p.bed.router, "Icmp6OutPktTooBigs") - ptb0,
        p.a.core_stat("icmp_translated"),
        snmp6(&p.bed.a, "Ip6FragCreates") - frag0,
        p.logs_tail(30)
    );
    println!("{report}");
    for i in 0..COUNT {
        assert!(got.contains(&datagram(i)), "datagram {i} missing: {report}");
    }
    assert!(
        got.iter().all(|g| (0..COUNT).any(|i| *g == datagram(i))),
        "a datagram changed in flight: {report}"
    );
    assert!(
        snmp6(&p.bed.router, "Icmp6OutPktTooBigs") > ptb0,
        "{report}"
    );
    assert!(p.a.core_stat("icmp_translated") > 0, "{report}");
    // A's kernel fragmented them to the learnt path MTU (1400 − 8 for the ULP).
    assert!(snmp6(&p.bed.a, "Ip6FragCreates") > frag0, "{report}");
    assert_ne!(
        p.current_pair().unwrap(),
        (ua, ub),
        "still rewriting: {report}"
    );
}
