//! The data plane against the real kernel, in two namespaces joined by a veth
//! (architecture.md hazards 1 and 5):
//!
//! - raw-socket semantics for protocol 140: delivered from the Shim6 header on, pktinfo
//!   gives destination and ifindex, hop limit, traffic class and flow label come along
//!   (as sent through `IPPROTO_RAW`); no ICMPv6
//!   Parameter Problem while the socket is open, one without it;
//! - pass-through: an application's UDP packet routed into the TUN comes out with its
//!   ULIDs, is re-sent through the marked `IPPROTO_RAW` socket, reaches the peer's socket
//!   with its checksum intact, and never re-enters the TUN (loop guard); without the mark
//!   it would;
//! - teardown removes the rule, the routes and the device.
//!
//! Root only: without `CAP_NET_ADMIN` each test prints `SKIPPED: needs CAP_NET_ADMIN`.

use std::{
    net::{Ipv6Addr, SocketAddr},
    sync::mpsc as std_mpsc,
    time::Duration,
};

use shim6d::{
    config::Routing,
    dataplane::{Batch, Plumbing, RawRecv, RawSend, Stats, Tun, raw::IPPROTO_SHIM6},
};
use xfrm_sys::netns::{self, Netns};

const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xd1, 0, 0, 0, 0, 1);
const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xd1, 0, 0, 0, 0, 2);
/// Every wait in these tests.
const WAIT: Duration = Duration::from_secs(5);

/// Two namespaces, `a0` in A and `b0` in B, addresses A and B (no DAD), up.
fn pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}a")).unwrap();
    let b = Netns::new(&format!("{tag}b")).unwrap();
    netns::veth(&a, "a0", &b, "b0").unwrap();
    for (ns, dev, addr) in [(&a, "a0", A), (&b, "b0", B)] {
        ns.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            dev,
            "nodad",
        ])
        .unwrap();
        ns.ip(&["link", "set", dev, "up"]).unwrap();
        // ICMPv6 errors are rate limited per destination (1 s by default); the tests
        // count them, so no limit.
        let out = ns
            .exec("sysctl", &["-qw", "net.ipv6.icmp.ratelimit=0"])
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    (a, b)
}

/// An IPv6 packet `src → dst`, next header `nh`, hop limit 33, traffic class 0x28, flow
/// label 0x12345.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    let tclass: u8 = 0x28;
    p.push(0x60 | (tclass >> 4));
    p.push((tclass << 4) | 0x1);
    p.extend_from_slice(&[0x23, 0x45]);
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(nh);
    p.push(33);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A Shim6-looking 16-octet body (the content does not matter to the kernel).
const SHIM6_BODY: [u8; 16] = [
    59,
    1,
    0x80 | 64,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0xa5,
    0xa5,
    0xa5,
    0xa5,
];

/// Sends `packets` from namespace `ns` through an `IPPROTO_RAW` socket with mark 0.
fn send_raw(ns: &Netns, packets: Vec<Vec<u8>>) {
    ns.run(move || async move {
        let tx = RawSend::open(0).unwrap();
        for p in packets {
            tx.send(&p).await.unwrap();
        }
    })
    .unwrap();
}

/// ICMPv6 (type, code) seen by a raw ICMPv6 socket in `ns` until `until` matches one, or
/// the wait ends. Neighbour discovery (133..=137) is left out.
fn icmp_watch(
    ns: &Netns,
    until: fn(u8, u8) -> bool,
) -> (std_mpsc::Receiver<()>, netns::NetnsThread<Vec<(u8, u8)>>) {
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let t = ns
        .spawn(move || async move {
            let rx = RawRecv::open(58).unwrap();
            ready_tx.send(()).unwrap();
            let mut batch = Batch::new(8, 1500);
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let Ok(r) = tokio::time::timeout_at(deadline, rx.recv_batch(&mut batch)).await
                else {
                    return seen;
                };
                r.unwrap();
                for p in batch.packets() {
                    let (t, c) = (p.packet()[0], p.packet()[1]);
                    if (133..=137).contains(&t) {
                        continue;
                    }
                    seen.push((t, c));
                    if until(t, c) {
                        return seen;
                    }
                }
            }
        })
        .unwrap();
    (ready_rx, t)
}

#[test]
fn raw_socket_semantics_for_protocol_140() {
    if !netns::require_net_admin() {
        return;
    }
    let (a, b) = pair("raw");
    let b_index: u32 = b
        .exec("cat", &["/sys/class/net/b0/ifindex"])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().parse().unwrap())
        .unwrap();

    // 1. No listener in B: the kernel answers next header 140 with a Parameter Problem,
    //    code 1 "unrecognized Next Header" (RFC 4443 §3.4).
    let (ready, icmp) = icmp_watch(&a, |t, _| t == 4);
    ready.recv_timeout(WAIT).unwrap();
    send_raw(&a, vec![ipv6_packet(A, B, 140, &SHIM6_BODY)]);
    let seen = icmp.join().unwrap();
    assert_eq!(
        seen.last(),
        Some(&(4, 1)),
        "Parameter Problem expected: {seen:?}"
    );

    // 2. With a protocol-140 socket open in B: delivery from the Shim6 header on, with
    //    the metadata; and no Parameter Problem. The UDP packet to a closed port sent right
    //    after draws a Port Unreachable (type 1 code 4); ICMP errors from B come back in
    //    order, so a Parameter Problem would have arrived before it.
    let (ready_b, ready_b_rx) = std_mpsc::channel();
    let receiver = b
        .spawn(move || async move {
            let rx = RawRecv::open(IPPROTO_SHIM6).unwrap();
            ready_b.send(()).unwrap();
            let mut batch = Batch::new(4, 1500);
            tokio::time::timeout(WAIT, rx.recv_batch(&mut batch))
                .await
                .expect("the protocol-140 packet arrives")
                .unwrap();
            (batch.bufs[0].packet().to_vec(), batch.meta[0])
        })
        .unwrap();
    ready_b_rx.recv_timeout(WAIT).unwrap();
    let (ready, icmp) = icmp_watch(&a, |t, _| t == 1 || t == 4);
    ready.recv_timeout(WAIT).unwrap();
    let udp_to_closed_port = {
        // A zero UDP checksum is invalid in IPv6 (RFC 8200 §8.1): compute a real one.
        let mut udp = vec![0x9c, 0x40, 0, 9, 0, 12, 0, 0, b'p', b'i', b'n', b'g'];
        let sum = checksum(A, B, 17, &udp);
        udp[6..8].copy_from_slice(&sum.to_be_bytes());
        ipv6_packet(A, B, 17, &udp)
    };
    send_raw(
        &a,
        vec![ipv6_packet(A, B, 140, &SHIM6_BODY), udp_to_closed_port],
    );
    let (body, meta) = receiver.join().unwrap();
    let seen = icmp.join().unwrap();
    assert_eq!(
        seen.last(),
        Some(&(1, 4)),
        "Port Unreachable expected: {seen:?}"
    );
    assert!(
        !seen.contains(&(4, 1)),
        "no Parameter Problem while a protocol-140 socket is open: {seen:?}"
    );
    assert_eq!(body, SHIM6_BODY, "delivered from the Shim6 header on");
    assert_eq!(meta.src, Some(A));
    assert_eq!(meta.dst, Some(B), "IPV6_PKTINFO destination");
    assert_eq!(meta.ifindex, Some(b_index), "IPV6_PKTINFO ifindex");
    assert_eq!(meta.hop_limit, Some(33), "IPV6_HOPLIMIT");
    assert_eq!(meta.tclass, Some(0x28), "IPV6_TCLASS");
    assert_eq!(meta.flow_label, Some(0x12345), "IPV6_FLOWINFO");
    assert!(!meta.truncated);
}

/// RFC 8200 §8.1 upper-layer checksum.
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, body: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            sum += u32::from(w);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, nh]);
    add(body);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        s => s,
    }
}

const ROUTING: Routing = Routing {
    fwmark: 0x51,
    table: 51,
    rule_priority: 100,
};

#[test]
fn pass_through_the_tun_with_loop_guard() {
    if !netns::require_net_admin() {
        return;
    }
    let (a, b) = pair("tun");
    const N: usize = 20;
    // B: a UDP application receiving N datagrams.
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let server = b
        .spawn(move || async move {
            let s = tokio::net::UdpSocket::bind(SocketAddr::new(B.into(), 7000))
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 2000];
            while got.len() < N {
                let (n, from) = tokio::time::timeout(WAIT, s.recv_from(&mut buf))
                    .await
                    .expect("datagram through the TUN")
                    .unwrap();
                got.push((buf[..n].to_vec(), from));
            }
            got
        })
        .unwrap();
    ready_rx.recv_timeout(WAIT).unwrap();

    let (stats, rules_during, routes_during, looped) = a
        .run(move || async move {
            let h = xfrm_sys::Handle::new().unwrap();
            let tun = Tun::create(&h, "shim6", 1492).await.unwrap();
            let addrs = h.addresses().await.unwrap();
            assert!(
                !addrs.iter().any(|a| a.index == tun.index()),
                "addrgenmode none: no address on the TUN: {addrs:?}"
            );
            let mut plumbing = Plumbing::install(h.clone(), tun.index(), &ROUTING)
                .await
                .unwrap();
            plumbing.add_peer(B).await.unwrap();
            // The rule has an explicit priority, so a repeated add is refused instead of
            // duplicating it (which is what lets a restarted daemon adopt it).
            let again = h.add_rule(&Plumbing::guard_rule(&ROUTING)).await;
            assert!(again.is_err_and(|e| e.is_already_exists()));
            let rules_during = h.rules().await.unwrap();
            let routes_during = h.routes(51).await.unwrap();
            let tx = RawSend::open(ROUTING.fwmark).unwrap();
            assert_eq!(tx.kernel_mark().unwrap(), 0x51);

            // The application: N datagrams from A's address to B.
            let app = tokio::net::UdpSocket::bind(SocketAddr::new(A.into(), 0))
                .await
                .unwrap();
            for i in 0..N {
                app.send_to(format!("datagram {i:02}").as_bytes(), (B, 7000))
                    .await
                    .unwrap();
            }
            // The daemon's loop, without a protocol core: pass everything through.
            let mut stats = Stats::default();
            let mut batch = Batch::new(8, 1492);
            let mut first_packet = None;
            while (stats.tun_rx_packets as usize) < N {
                tokio::time::timeout(WAIT, tun.recv_batch(&mut batch))
                    .await
                    .expect("the application's packets enter the TUN")
                    .unwrap();
                if first_packet.is_none() {
                    first_packet = Some(batch.bufs[0].packet().to_vec());
                }
                stats
                    .outbound(&mut batch, None, &tx, &tun, 1500, std::time::Instant::now())
                    .await;
            }
            // Loop guard: with the mark, nothing of ours comes back into the TUN. A marker
            // datagram sent by the application now is the next thing the TUN gives; had
            // a forwarded packet looped, it would have come first.
            app.send_to(b"marker", (B, 7000)).await.unwrap();
            tokio::time::timeout(WAIT, tun.recv_batch(&mut batch))
                .await
                .expect("the marker enters the TUN")
                .unwrap();
            assert_eq!(batch.len, 1, "only the marker");
            assert!(
                batch.bufs[0].packet().ends_with(b"marker"),
                "a forwarded packet looped"
            );
            // Without the mark the same packet would loop back: the guard is what stops it.
            let unmarked = RawSend::open(0).unwrap();
            let p = first_packet.unwrap();
            unmarked.send(&p).await.unwrap();
            tokio::time::timeout(WAIT, tun.recv_batch(&mut batch))
                .await
                .expect("an unmarked packet to a routed peer enters the TUN")
                .unwrap();
            let looped = batch.bufs[0].packet() == p.as_slice();

            let errors = plumbing.teardown().await;
            assert!(errors.is_empty(), "{errors:?}");
            drop(tun);
            let rules_after = h.rules().await.unwrap();
            assert!(
                !rules_after.iter().any(|r| r.table == 51),
                "rule removed: {rules_after:?}"
            );
            assert!(h.routes(51).await.unwrap().is_empty(), "routes removed");
            // Closing the descriptor deletes the device; the unregistration completes
            // asynchronously in the kernel.
            let deadline = tokio::time::Instant::now() + WAIT;
            while h.link_by_name("shim6").await.is_ok() {
                assert!(tokio::time::Instant::now() < deadline, "TUN not removed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (stats, rules_during, routes_during, looped)
        })
        .unwrap();

    let got = server.join().unwrap();
    let mut texts: Vec<String> = got
        .iter()
        .map(|(d, _)| String::from_utf8(d.clone()).unwrap())
        .collect();
    texts.sort();
    let expected: Vec<String> = (0..N).map(|i| format!("datagram {i:02}")).collect();
    assert_eq!(texts, expected, "every datagram arrives, checksum intact");
    assert!(
        got.iter()
            .all(|(_, from)| from.ip() == std::net::IpAddr::V6(A))
    );
    assert_eq!(stats.tun_rx_packets, N as u64);
    assert_eq!(stats.raw_tx_packets, N as u64);
    assert!(stats.drops.is_empty(), "{:?}", stats.drops);
    let guard: Vec<_> = rules_during.iter().filter(|r| r.table == 51).collect();
    assert_eq!(
        guard.len(),
        1,
        "exactly one loop-guard rule: {rules_during:?}"
    );
    assert!(guard[0].invert && guard[0].priority == Some(100));
    assert_eq!(routes_during.len(), 1, "{routes_during:?}");
    assert!(
        looped,
        "without the mark the packet comes back into the TUN"
    );
}
