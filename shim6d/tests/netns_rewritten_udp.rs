//! A UDP flood through a rewriting context (docs/bench/dataplane.md, "The UDP rate in
//! `rewritten`"): two real daemons on the LinShim6 testbed, the ULID pair broken at the
//! router so both contexts rewrite (payload header, RFC 5533 §5.1), and a connected UDP
//! socket on A's ULID sending 64-octet datagrams as fast as it can to B's ULID.
//!
//! What broke: when B's protocol-140 raw socket is full, B's kernel skips it and, with
//! no other taker for Next Header 140, answers with an ICMPv6 Parameter Problem
//! "unrecognized Next Header", Pointer 6. A's daemon translated it back to the ULIDs
//! (restoring Next Header 17 at the pointed octet) and wrote it to its TUN, and the
//! application's socket failed with EPROTO. Now the daemon keeps it (`icmp_about_shim6`),
//! and its receive socket has a larger buffer.
//!
//! The test floods twice: once as is, once with B's daemon stopped (SIGSTOP) so that its
//! socket surely fills and B's kernel surely sends those Parameter Problems (checked in
//! B's `Icmp6OutParmProblems`). It asserts that the sender never sees an error, that A's
//! daemon kept every such error from the application, and that the datagrams arrive:
//! each one intact and at most once, many of the flood, and every one of a paced tail
//! sent afterwards. Counting only, no timing.
//!
//! Root only (`SKIPPED: needs CAP_NET_ADMIN` otherwise).

use std::{
    collections::BTreeMap,
    net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket},
    process::Command,
    time::Duration,
};

use shim6_tests::{
    daemons::{Bins, Daemon, Options, Pair, until},
    testbed::snmp6,
};
use xfrm_sys::netns::{self, Netns};

/// Port of B's counting receiver.
const PORT: u16 = 4001;
/// Octets per datagram (iperf3's `-l 64` of the benchmark).
const LEN: usize = 64;
/// Datagrams of the first flood.
const FLOOD: u32 = 30_000;
/// Most datagrams of the second flood (B's daemon stopped): a few thousand fill B's
/// socket, but a slow (debug, loaded) sending daemon drops most at its TUN.
const STOPPED_MAX: u32 = 150_000;
/// First numbers of the second flood and of the tail.
const SECOND: u32 = 1_000_000;
const TAIL_FIRST: u32 = 2_000_000;
/// The receiver's end marker (a 4-octet datagram).
const END: u32 = u32::MAX;
/// Datagrams per socket while B's daemon is stopped.
const CHUNK: u32 = 2_000;
/// Datagrams of the paced tail, each waiting for the receiver's count to move.
const TAIL: u32 = 50;

/// The datagram numbered `i`: the number, then a pattern derived from it.
fn datagram(i: u32) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..4].copy_from_slice(&i.to_be_bytes());
    for (k, x) in b[4..].iter_mut().enumerate() {
        *x = (i as usize).wrapping_mul(31).wrapping_add(k) as u8;
    }
    b
}

/// Sends `n` datagrams numbered from `first` on a socket connected from `src` to
/// `[dst]:PORT` (in A), as fast as the socket takes them; returns how many went out
/// and every error, the pending socket error at the end included.
fn flood(
    ns: &Netns,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    first: u32,
    n: u32,
    settle: bool,
) -> (u64, BTreeMap<String, u64>) {
    ns.run(move || async move {
        let s = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 0)))?;
        s.connect(SocketAddr::V6(SocketAddrV6::new(dst, PORT, 0, 0)))?;
        let mut sent = 0;
        let mut errors = BTreeMap::<String, u64>::new();
        for i in first..first + n {
            match s.send(&datagram(i)) {
                Ok(_) => sent += 1,
                Err(e) => *errors.entry(e.to_string()).or_default() += 1,
            }
        }
        // An error that arrived after the last send is pending on the socket.
        if settle {
            std::thread::sleep(Duration::from_millis(300));
        }
        if let Ok(Some(e)) = s.take_error() {
            *errors.entry(format!("pending: {e}")).or_default() += 1;
        }
        std::io::Result::Ok((sent, errors))
    })
    .unwrap()
    .unwrap()
}

#[test]
fn udp_flood_through_a_rewriting_context_gets_no_parameter_problem() {
    if !netns::require_net_admin() {
        return;
    }
    let p = Pair::start_established(
        "rudp",
        &Bins::shim6d(env!("CARGO_BIN_EXE_shim6d")),
        Options {
            log: "info".into(),
            ..Options::default()
        },
    );
    let (ua, ub) = p.ulids();
    // Both contexts off the ULID pair: every datagram carries the payload header.
    p.leave_ulid_pair(Duration::from_secs(60), || p.poke_ulids())
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    let rewritten0 = p.a.core_stat("payload_rewritten");

    // B's receiver: every datagram checked and counted; the count is visible live.
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = count.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = p
        .bed
        .b
        .spawn(move || async move {
            let s = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(ub, PORT, 0, 0)))?;
            // Bounded: 30 s without any datagram ends it too.
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            let _ = tx.send(());
            let mut got = std::collections::BTreeSet::new();
            let (mut bad, mut dup) = (0u64, 0u64);
            let mut buf = [0u8; 2048];
            // Until the end marker.
            while let Ok(n) = s.recv(&mut buf) {
                let i = u32::from_be_bytes(buf[..4].try_into().unwrap_or_default());
                if n == 4 && i == END {
                    break;
                }
                if n != LEN || buf[..n] != datagram(i) {
                    bad += 1;
                } else if !got.insert(i) {
                    dup += 1;
                }
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            std::io::Result::Ok((got, bad, dup))
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(5))
        .expect("receiver bound");
    let out_pp0 = snmp6(&p.bed.b, "Icmp6OutParmProblems");

    // 1. The flood as the benchmark sends it.
    let (sent1, errors1) = flood(&p.bed.a, ua, ub, 0, FLOOD, true);
    let out_pp1 = snmp6(&p.bed.b, "Icmp6OutParmProblems");

    // 2. The same with B's daemon stopped: its protocol-140 socket fills up, and B's
    //    kernel answers the rest with Parameter Problems. Chunks until it does (a few
    //    thousand datagrams fill the buffer), bounded by STOPPED_MAX in all.
    let pid_b = p.b().pid().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid_b])
            .status()
            .unwrap()
            .success()
    );
    let (mut sent2, mut errors2, mut next) = (0u64, BTreeMap::<String, u64>::new(), SECOND);
    let mut last = false;
    while !last {
        // After the first Parameter Problem one more chunk, so that some of them answer
        // datagrams sent on the same socket (EPROTO would show on it).
        last = next >= SECOND + STOPPED_MAX || snmp6(&p.bed.b, "Icmp6OutParmProblems") > out_pp1;
        let (s, e) = flood(&p.bed.a, ua, ub, next, CHUNK, last);
        next += CHUNK;
        sent2 += s;
        for (k, v) in e {
            *errors2.entry(k).or_default() += v;
        }
    }
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid_b])
            .status()
            .unwrap()
            .success()
    );
    let out_pp2 = snmp6(&p.bed.b, "Icmp6OutParmProblems");

    // B's daemon was stopped for seconds, so REAP may be exploring (RFC 5534 §4.2: Send
    // Timeout on A's side): wait until both sides are operational again.
    until(
        Duration::from_secs(60),
        "REAP operational on both sides",
        || {
            let op = |d: &Daemon| -> std::io::Result<bool> {
                Ok(d.contexts()?
                    .first()
                    .is_some_and(|c| c["reap"]["state"] == "Operational"))
            };
            Ok(op(&p.a)? && op(p.b())?)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));

    // 3. A paced tail: each datagram waits (bounded) for the receiver's count to move.
    let mut tail_errors = BTreeMap::<String, u64>::new();
    for i in 0..TAIL {
        let before = count.load(std::sync::atomic::Ordering::Relaxed);
        let (_, e) = flood(&p.bed.a, ua, ub, TAIL_FIRST + i, 1, false);
        for (k, v) in e {
            *tail_errors.entry(k).or_default() += v;
        }
        let _ = until(Duration::from_secs(2), "the tail datagram", || {
            Ok(count.load(std::sync::atomic::Ordering::Relaxed) > before)
        });
    }
    // The end marker, until the receiver has it (bounded).
    let _ = until(Duration::from_secs(10), "the receiver to end", || {
        let _ = p.bed.a.run(move || async move {
            let u = UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(ua, 0, 0, 0)))?;
            u.send_to(
                &END.to_be_bytes(),
                SocketAddr::V6(SocketAddrV6::new(ub, PORT, 0, 0)),
            )
        });
        std::thread::sleep(Duration::from_millis(100));
        Ok(receiver.is_finished())
    });
    let (got, bad, dup) = receiver.join().unwrap().unwrap();
    let about_shim6 = p.a.core_stat("icmp_about_shim6");
    let rewritten = p.a.core_stat("payload_rewritten") - rewritten0;
    let restored = p.b().core_stat("payload_restored");
    let flood1 = got.range(..FLOOD).count();
    let flood2 = got.range(SECOND..TAIL_FIRST).count();
    let tail = got.range(TAIL_FIRST..).count();
    let report = format!(
        "flood 1: sent {sent1}, errors {errors1:?}, received {flood1}; B sent {} Parameter \
         Problems\nflood 2 (B stopped): sent {sent2}, errors {errors2:?}, received {flood2}; \
         B sent {} Parameter Problems\ntail: received {tail} of {TAIL}, errors {tail_errors:?}\n\
         A: rewritten {rewritten}, icmp_about_shim6 {about_shim6}; B: restored {restored}; \
         bad {bad}, duplicates {dup}\n{}",
        out_pp1 - out_pp0,
        out_pp2 - out_pp1,
        p.logs_tail(30)
    );
    println!("{report}");
    // The contexts still rewrite (the test is about that state).
    assert_ne!(p.current_pair().unwrap(), (ua, ub), "{report}");
    // The scenario happened: B's kernel did send Parameter Problems about our packets,
    // and A's daemon kept them from the application.
    assert!(out_pp2 > out_pp1, "no Parameter Problem from B: {report}");
    assert!(about_shim6 > 0, "{report}");
    // The application saw no error at all (EPROTO was the bug).
    assert!(errors1.is_empty() && errors2.is_empty(), "{report}");
    assert!(tail_errors.is_empty(), "{report}");
    // Datagrams arrive intact, at most once; the floods get through in numbers (B's
    // socket holds thousands while its daemon is stopped), the paced tail entirely.
    assert_eq!((bad, dup), (0, 0), "{report}");
    assert!(flood1 >= 1000 && flood2 >= 1000, "{report}");
    assert_eq!(tail, TAIL as usize, "{report}");
    assert!(rewritten >= (flood1 + flood2 + tail) as u64, "{report}");
}
