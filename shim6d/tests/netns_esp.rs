//! IPsec ESP on the ULIDs across a locator switch (issue 6: "an IPsec ESP transport SA
//! on the ULIDs keeps working across a locator switch"). Shim6 sits below IPsec (RFC 5533
//! §5.1: the payload extension header goes before ESP), so an SA keyed on the ULIDs
//! never sees the locators: the receiving kernel looks the SA up by SPI and destination
//! ULID (RFC 4303 §2.1) after the daemon restored the ULIDs.
//!
//! The test first tries to install real ESP transport SAs and policies on the ULIDs in
//! both namespaces (`xfrm_sys::xfrm`, AEAD `rfc4106(gcm(aes))`, else
//! `hmac(sha256)` + `cbc(aes)`):
//!
//! - **kernel with ESP**: a TCP stream between the ULIDs, protected by the SAs, across a
//!   locator switch (the ULID pair broken both ways at the router, REAP moves both
//!   contexts): every byte arrives in order, and the SAs counted packets;
//! - **kernel without ESP** (the CI kernel: "Requested type not found" for the protocol,
//!   "... algorithm not found" for the algorithms): the transparency variant. Packets
//!   of protocol 50 in ESP format (SPI, sequence number, opaque payload; RFC 4303 §2)
//!   are sent with raw sockets between the ULIDs, both ways, before the switch (context
//!   on the ULID pair: not rewritten) and after it (payload header on the wire): each
//!   arrives byte for byte as sent, from the peer's ULID to our ULID — everything an SA
//!   lookup needs.
//!
//! Which variant ran, and why, is printed. Root only (`SKIPPED: needs CAP_NET_ADMIN`
//! otherwise).

use std::{
    net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket},
    time::Duration,
};

use shim6_tests::daemons::{Bins, Options, Pair, Stream, current_pair_of, until};
use socket2::{Domain, Protocol, Socket, Type};
use xfrm_sys::{
    Ipv6Prefix,
    netns::{self, Netns},
    xfrm::{
        AeadAlgorithm, Algorithm, AuthAlgorithm, Direction, IPPROTO_ESP, Policy,
        SecurityAssociation, Selector, Template, Xfrm,
    },
};

/// SPI of the SA from A's ULID to B's (RFC 4303 §2.1: 1–255 are reserved).
const SPI_AB: u32 = 0x5a6b_1001;
/// SPI of the SA from B's ULID to A's.
const SPI_BA: u32 = 0x5a6b_1002;
/// IANA protocol number of TCP, the upper layer the SAs protect.
const IPPROTO_TCP: u8 = 6;

/// The algorithm suites tried, in order.
fn suites(spi: u32, src: Ipv6Addr, dst: Ipv6Addr, reqid: u32) -> Vec<SecurityAssociation> {
    // Test keys (manual keying): fixed, distinct per direction through the SPI.
    let k = (spi & 0xff) as u8;
    let sa = || {
        SecurityAssociation::esp_transport(src, dst, spi, reqid).selector(
            Selector::new(Ipv6Prefix::host(src), Ipv6Prefix::host(dst)).proto(IPPROTO_TCP),
        )
    };
    vec![
        sa().aead(AeadAlgorithm::rfc4106_gcm_aes(&[k; 20]).expect("AES-128 key + salt")),
        sa().auth_enc(
            AuthAlgorithm::hmac_sha256(&[k ^ 0x5c; 32]).expect("32-octet key"),
            Algorithm::cbc_aes(&[k ^ 0x36; 16]).expect("16-octet key"),
        ),
    ]
}

/// Why the kernel refused: `Some(text)` when it lacks the protocol or the algorithm
/// (EPROTONOSUPPORT "Requested type not found", ENOSYS "Requested ... algorithm not
/// found"), `None` for any other error.
fn missing_support(e: &xfrm_sys::Error) -> Option<String> {
    let text = e.to_string();
    let errno = e.errno()?;
    (matches!(errno, libc::EPROTONOSUPPORT | libc::ENOSYS | libc::ENOENT)
        && text.contains("not found"))
    .then_some(text)
}

/// Installs, in `ns` whose ULID is `local` and whose peer's is `peer`, the outbound SA
/// and policy `local → peer` (SPI `spi_out`) and the inbound ones `peer → local`
/// (`spi_in`), TCP only (the daemons' own traffic is on the locators, protocol 140).
///
/// `Ok(Err(why))` when the kernel lacks ESP or every algorithm suite.
fn install(
    ns: &Netns,
    local: Ipv6Addr,
    peer: Ipv6Addr,
    spi_out: u32,
    spi_in: u32,
) -> Result<Result<&'static str, String>, String> {
    ns.run(move || async move {
        let x = Xfrm::new().map_err(|e| format!("open XFRM socket: {e}"))?;
        let mut refusals = Vec::new();
        let mut installed = None;
        for (out, inb) in suites(spi_out, local, peer, 1)
            .into_iter()
            .zip(suites(spi_in, peer, local, 2))
        {
            let suite = if out.aead.is_some() {
                "rfc4106(gcm(aes))"
            } else {
                "hmac(sha256) + cbc(aes)"
            };
            match x.add_sa(&out).await {
                Ok(()) => {}
                Err(e) => match missing_support(&e) {
                    Some(why) => {
                        refusals.push(format!("{suite}: {why}"));
                        continue;
                    }
                    None => return Err(format!("add SA {suite}: {e}")),
                },
            }
            x.add_sa(&inb)
                .await
                .map_err(|e| format!("add inbound SA {suite}: {e}"))?;
            installed = Some(suite);
            break;
        }
        let Some(suite) = installed else {
            return Ok(Err(refusals.join("; ")));
        };
        let sel = |s, d| Selector::new(Ipv6Prefix::host(s), Ipv6Prefix::host(d)).proto(IPPROTO_TCP);
        x.add_policy(
            &Policy::new(sel(local, peer), Direction::Out)
                .template(Template::esp_transport(local, peer, 1)),
        )
        .await
        .map_err(|e| format!("add outbound policy: {e}"))?;
        x.add_policy(
            &Policy::new(sel(peer, local), Direction::In)
                .template(Template::esp_transport(peer, local, 2)),
        )
        .await
        .map_err(|e| format!("add inbound policy: {e}"))?;
        Ok(Ok(suite))
    })
    .map_err(|e| format!("run in {}: {e}", ns.name()))?
}

/// Breaks the ULID pair both ways at the router and drives traffic with `poke` until
/// both daemons moved their context off it (REAP, RFC 5534 §4.2).
fn switch_locators(p: &Pair, poke: impl FnMut()) {
    p.leave_ulid_pair(Duration::from_secs(60), poke)
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
}

#[test]
fn esp_on_the_ulids_across_a_locator_switch() {
    if !netns::require_net_admin() {
        return;
    }
    let p = Pair::start_established(
        "esp",
        &Bins::shim6d(env!("CARGO_BIN_EXE_shim6d")),
        Options {
            log: "info".into(),
            ..Options::default()
        },
    );
    let (ua, ub) = p.ulids();
    assert_eq!(p.current_pair().unwrap(), (ua, ub));
    let a = install(&p.bed.a, ua, ub, SPI_AB, SPI_BA).unwrap_or_else(|e| panic!("A: {e}"));
    let b = install(&p.bed.b, ub, ua, SPI_BA, SPI_AB).unwrap_or_else(|e| panic!("B: {e}"));
    match (a, b) {
        (Ok(suite_a), Ok(suite_b)) => {
            assert_eq!(suite_a, suite_b, "both kernels took the same suite first");
            println!(
                "VARIANT: real ESP: the kernel accepted transport-mode SAs ({suite_a}) and \
                 policies on the ULIDs; a TCP stream over them across a locator switch"
            );
            real_esp(&p);
        }
        (Err(why), _) | (_, Err(why)) => {
            println!(
                "VARIANT: transparency: the kernel refused ESP SAs ({why}); raw protocol-50 \
                 packets in ESP format between the ULIDs across a locator switch"
            );
            transparency(&p);
        }
    }
}

/// `ip -s xfrm state` in `ns`: the packet counts of its SAs (`N(packets)`).
fn sa_packets(ns: &Netns) -> Vec<u64> {
    let out = ns.ip(&["-s", "xfrm", "state"]).unwrap_or_default();
    out.split_whitespace()
        .filter_map(|w| w.strip_suffix("(packets)"))
        .filter_map(|n| n.trim_end_matches(',').parse().ok())
        .collect()
}

fn real_esp(p: &Pair) {
    let (ua, ub) = p.ulids();
    let stream = Stream::start(&p.bed.a, &p.bed.b, ua, ub).unwrap();
    until(
        Duration::from_secs(20),
        "stream bytes before the switch",
        || Ok(stream.received() > 50_000),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    let before = stream.received();
    switch_locators(p, || {});
    until(
        Duration::from_secs(60),
        "stream bytes after the switch",
        || Ok(stream.received() > before + 50_000),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    let r = stream.finish(Duration::from_secs(20));
    let (sa_a, sa_b) = (sa_packets(&p.bed.a), sa_packets(&p.bed.b));
    let report = format!(
        "{r:?}; SA packets A {sa_a:?} B {sa_b:?}\n{}",
        p.logs_tail(30)
    );
    println!("{report}");
    assert!(r.error.is_none(), "{report}");
    assert_eq!(r.sent, r.received, "{report}");
    assert!(r.received > before, "{report}");
    // The stream went through the SAs, and the context rewrote it.
    assert!(
        sa_a.iter().any(|&n| n > 0) && sa_b.iter().any(|&n| n > 0),
        "{report}"
    );
    assert!(p.a.core_stat("payload_rewritten") > 0, "{report}");
    assert!(p.b().core_stat("payload_restored") > 0, "{report}");
}

/// An ESP packet as RFC 4303 §2 lays it out: SPI, sequence number, then opaque octets
/// (payload, padding, pad length, next header and ICV are all ciphertext or integrity
/// data to anyone but the SA's endpoints).
fn esp_packet(spi: u32, seq: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + 96);
    v.extend_from_slice(&spi.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    let mut x = spi ^ seq.wrapping_mul(0x9e37_79b9);
    for _ in 0..96 {
        // xorshift: opaque-looking, reproducible bytes.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    v
}

/// A raw protocol-50 socket bound to `addr` (the kernel writes the IPv6 header; a bound
/// raw socket receives only datagrams addressed to `addr`). Wrapped as a
/// `std::net::UdpSocket` for its safe `send_to` / `recv_from` on plain byte slices
/// (`sendto` / `recvfrom` work the same on a raw socket; the port is 0).
fn esp_socket(addr: Ipv6Addr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(
        Domain::IPV6,
        Type::RAW,
        Some(Protocol::from(i32::from(IPPROTO_ESP))),
    )?;
    s.bind(&SocketAddr::V6(SocketAddrV6::new(addr, 0, 0, 0)).into())?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(UdpSocket::from(s))
}

/// `dst` as a socket address for a raw socket (port 0).
fn raw_addr(dst: Ipv6Addr) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(dst, 0, 0, 0))
}

/// Sends `packets` from `src` to `dst` in `from` and collects, in `to`, what arrives at
/// `dst` (bounded: until every one arrived, or 3 s): (source, bytes) per datagram.
fn esp_exchange(
    from: &Netns,
    to: &Netns,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    packets: Vec<Vec<u8>>,
) -> Vec<(Ipv6Addr, Vec<u8>)> {
    let want = packets.len();
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = to
        .spawn(move || async move {
            let s = esp_socket(dst)?;
            let _ = tx.send(());
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            let mut buf = [0u8; 2048];
            while got.len() < want && std::time::Instant::now() < deadline {
                if let Ok((n, SocketAddr::V6(from))) = s.recv_from(&mut buf) {
                    got.push((*from.ip(), buf[..n].to_vec()));
                }
            }
            std::io::Result::Ok(got)
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(5))
        .expect("ESP receiver bound");
    from.run(move || async move {
        let s = esp_socket(src)?;
        for pkt in &packets {
            s.send_to(pkt, raw_addr(dst))?;
            std::thread::sleep(Duration::from_millis(5));
        }
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
    receiver.join().unwrap().unwrap()
}

fn transparency(p: &Pair) {
    let (ua, ub) = p.ulids();
    let (rw0, rs0) = (
        p.a.core_stat("payload_rewritten"),
        p.b().core_stat("payload_restored"),
    );
    let batch = |spi: u32, first: u32| -> Vec<Vec<u8>> {
        (first..first + 10).map(|s| esp_packet(spi, s)).collect()
    };
    // Each phase: A → B on SA_AB, B → A on SA_BA; everything must arrive as sent.
    let check = |phase: &str, first: u32| {
        for (from, to, src, dst, spi) in [
            (&p.bed.a, &p.bed.b, ua, ub, SPI_AB),
            (&p.bed.b, &p.bed.a, ub, ua, SPI_BA),
        ] {
            let sent = batch(spi, first);
            let got = esp_exchange(from, to, src, dst, sent.clone());
            let report = format!("{phase}, {src} -> {dst}: got {got:?}\n{}", p.logs_tail(30));
            assert_eq!(got.len(), sent.len(), "{report}");
            for (g, s) in got.iter().zip(&sent) {
                assert_eq!(g.0, src, "source must be the peer's ULID: {report}");
                assert_eq!(&g.1, s, "byte-identical: {report}");
            }
        }
    };
    // 1. On the ULID pair (not rewritten).
    check("before the switch", 1);
    assert_eq!(
        p.a.core_stat("payload_rewritten"),
        rw0,
        "nothing rewritten yet"
    );
    // 2. The switch, driven by ESP-format packets both ways (REAP counts them as
    //    payload, RFC 5534 §4.1).
    let mut seq = 1000;
    switch_locators(p, || {
        for (ns, s, d, spi) in [(&p.bed.a, ua, ub, SPI_AB), (&p.bed.b, ub, ua, SPI_BA)] {
            let pkt = esp_packet(spi, seq);
            let _ = ns.run(move || async move { esp_socket(s)?.send_to(&pkt, raw_addr(d)) });
        }
        seq += 1;
    });
    let (pa, pb) = (p.current_pair().unwrap(), current_pair_of(p.b()).unwrap());
    println!("after the switch: A on {pa:?}, B on {pb:?}");
    // 3. On the new pair: every packet carries the payload header on the wire.
    let (rw1, rs1) = (
        p.a.core_stat("payload_rewritten"),
        p.b().core_stat("payload_restored"),
    );
    check("after the switch", 2000);
    let rewritten = p.a.core_stat("payload_rewritten") - rw1;
    let restored = p.b().core_stat("payload_restored") - rs1;
    assert!(
        rewritten >= 10 && restored >= 10,
        "A rewrote {rewritten}, B restored {restored} (from {rw0}/{rs0})\n{}",
        p.logs_tail(30)
    );
    println!(
        "transparency: 10 ESP-format packets each way before and after the switch arrived \
         byte-identical between the ULIDs; after it A rewrote {rewritten} and B restored \
         {restored}"
    );
}
