//! The offload data path with two real shim6d processes on the LinShim6 testbed: a bulk
//! TCP transfer between the ULIDs arrives intact, byte by byte, both on the ULID pair
//! (TUN super-segments split and checked by the daemon, and sent whole through the
//! packet socket, `shim6d::dataplane::gso`) and once rewritten (every segment with a
//! payload header, restored at B and coalesced into B's TUN); and the same with
//! `[tun] offload = false`, and with `packet_socket = false` too (the raw socket only); and
//! Packet Too Big through an offload TUN when rewritten packets outgrow the path.
//!
//! Root only (`SKIPPED: needs CAP_NET_ADMIN` otherwise); the harness builds unique
//! namespaces, bounds every wait and cleans up on drop.

use std::{
    io::{Read, Write},
    net::{Ipv6Addr, SocketAddr, SocketAddrV6},
    time::Duration,
};

use shim6_tests::daemons::{Bins, Options, Pair};
use xfrm_sys::netns;

const PORT: u16 = 5301;
/// Bytes per transfer: hundreds of 64 KB super-segments.
const BULK: u64 = 24 << 20;

fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// Sends `BULK` bytes of the pattern from `src` (in A) to `dst` (in B) as fast as TCP
/// goes; returns the bytes B received, each checked against the pattern.
fn bulk(p: &Pair, src: Ipv6Addr, dst: Ipv6Addr) -> std::io::Result<u64> {
    let (tx, rx) = std::sync::mpsc::channel();
    let recv = p.bed.b.spawn(move || async move {
        let l = std::net::TcpListener::bind(SocketAddr::V6(SocketAddrV6::new(dst, PORT, 0, 0)))?;
        let _ = tx.send(());
        let (mut s, _) = l.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            for (k, b) in buf[..n].iter().enumerate() {
                let i = total + k as u64;
                if *b != pattern(i) {
                    return Err(std::io::Error::other(format!(
                        "byte {i} is {b}, expected {}",
                        pattern(i)
                    )));
                }
            }
            total += n as u64;
        }
    })?;
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| std::io::Error::other("listener did not start"))?;
    p.bed.a.run(move || async move {
        let sock = tokio::net::TcpSocket::new_v6()?;
        sock.bind(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 0)))?;
        let connect = sock.connect(SocketAddr::V6(SocketAddrV6::new(dst, PORT, 0, 0)));
        let s = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
        let mut s = s.into_std()?;
        s.set_nonblocking(false)?;
        s.set_write_timeout(Some(Duration::from_secs(20)))?;
        let mut chunk = vec![0u8; 1 << 16];
        let mut off = 0u64;
        while off < BULK {
            for (k, b) in chunk.iter_mut().enumerate() {
                *b = pattern(off + k as u64);
            }
            s.write_all(&chunk)?;
            off += chunk.len() as u64;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        std::io::Result::Ok(())
    })??;
    recv.join()?
}

fn stat(v: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// Breaks the ULID pair both ways at the router and sends UDP from each side until
/// both daemons moved to another pair (RFC 5534 §4.1: REAP needs outbound traffic).
fn force_rewritten(p: &Pair) {
    let (ua, ub) = p.ulids();
    p.bed.break_addrs(ua, ub).unwrap();
    p.bed.break_addrs(ub, ua).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let a_moved = p.current_pair().unwrap() != (ua, ub);
        let b_moved = p.b().contexts().unwrap()[0]["current_pair"]["local"] != ub.to_string();
        if a_moved && b_moved {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no switch\n{}",
            p.logs_tail(30)
        );
        for (ns, from, to) in [(&p.bed.a, ua, ub), (&p.bed.b, ub, ua)] {
            ns.run(move || async move {
                let s =
                    std::net::UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(from, 0, 0, 0)))?;
                for _ in 0..10 {
                    s.send_to(b"probe", SocketAddr::V6(SocketAddrV6::new(to, 9, 0, 0)))?;
                    std::thread::sleep(Duration::from_millis(20));
                }
                std::io::Result::Ok(())
            })
            .unwrap()
            .unwrap();
        }
    }
}

fn transfers(offload: bool, packet_socket: bool) {
    transfers_with(offload, packet_socket, None);
}

/// As [`transfers`]; with `tun_mtu`, the TUN gets that MTU instead of the links' minus
/// 8, so full-size packets no longer fit once rewritten: A's daemon answers them with
/// Packet Too Big into the TUN (RFC 4443 §3.2, `shim6d::mtu`) and TCP shrinks its
/// segments.
fn transfers_with(offload: bool, packet_socket: bool, tun_mtu: Option<u32>) {
    let mut p = Pair::start(
        match (offload, packet_socket, tun_mtu) {
            (_, _, Some(_)) => "offm",
            (true, _, None) => "off1",
            (false, true, None) => "off0",
            (false, false, None) => "offp",
        },
        &Bins::shim6d(env!("CARGO_BIN_EXE_shim6d")),
        Options {
            log: "info".into(),
            send_timeout: 2.0,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("setup: {e}"));
    if !offload || !packet_socket || tun_mtu.is_some() {
        for d in std::iter::once(&mut p.a).chain(p.b.as_mut()) {
            d.stop();
            let path = d.dir.join("shim6d.toml");
            let mut conf = std::fs::read_to_string(&path).unwrap();
            conf.push_str(&format!(
                "\n[tun]\noffload = {offload}\npacket_socket = {packet_socket}\n"
            ));
            if let Some(m) = tun_mtu {
                conf.push_str(&format!("mtu = {m}\n"));
            }
            std::fs::write(&path, conf).unwrap();
            d.restart().unwrap();
        }
    }
    p.establish()
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    let (ua, ub) = p.ulids();
    assert_eq!(p.current_pair().unwrap(), (ua, ub));

    // On the ULID pair: A's daemon forwards every segment without rewriting it.
    let got = bulk(&p, ua, ub).unwrap_or_else(|e| panic!("ULID pair: {e}\n{}", p.logs_tail(30)));
    assert_eq!(got, BULK, "ULID pair\n{}", p.logs_tail(30));
    let a = p.a.json("stats").unwrap();
    let gso = stat(&a, &["dataplane", "gso_frames"]);
    let (rx, batches) = (
        stat(&a, &["dataplane", "tun_rx_packets"]),
        stat(&a, &["dataplane", "tun_batches"]),
    );
    assert!(rx >= BULK / 1500, "A's daemon carried the transfer: {rx}");
    if offload && packet_socket {
        // Super-segments came from the TUN and left whole.
        assert!(gso > 0, "no super-segment sent whole: {a}");
        assert!(rx > 4 * batches, "{rx} packets in {batches} reads");
    } else {
        assert_eq!(gso, 0);
    }
    let drops = &a["dataplane"]["drops"];
    assert_eq!(stat(drops, &["tun_bad_gso"]), 0, "{a}");

    // Rewritten both ways: split, payload header per segment, restored at B.
    force_rewritten(&p);
    let b0 = p.b().json("stats").unwrap();
    let rewritten0 = stat(&a, &["core", "payload_rewritten"]);
    let got = bulk(&p, ua, ub).unwrap_or_else(|e| panic!("rewritten: {e}\n{}", p.logs_tail(30)));
    assert_eq!(got, BULK, "rewritten\n{}", p.logs_tail(30));
    let a1 = p.a.json("stats").unwrap();
    let b1 = p.b().json("stats").unwrap();
    assert!(
        stat(&a1, &["core", "payload_rewritten"]) >= rewritten0 + BULK / 1500,
        "{a1}"
    );
    let restored =
        stat(&b1, &["dataplane", "tun_tx_packets"]) - stat(&b0, &["dataplane", "tun_tx_packets"]);
    assert!(
        restored >= BULK / 1500,
        "B wrote {restored} packets to its TUN"
    );
    assert_eq!(
        stat(&b1["dataplane"]["drops"], &["tun_write_failed"]),
        0,
        "{b1}"
    );
    if tun_mtu.is_some() {
        // Packet Too Big went into A's TUN (with offload: behind a virtio header).
        assert!(stat(&a1, &["dataplane", "ptb_sent"]) > 0, "{a1}");
    }
}

#[test]
fn packet_too_big_through_an_offload_tun() {
    if !netns::require_net_admin() {
        return;
    }
    transfers_with(true, true, Some(1500));
}

#[test]
fn bulk_tcp_intact_with_offload() {
    if !netns::require_net_admin() {
        return;
    }
    transfers(true, true);
}

#[test]
fn bulk_tcp_intact_without_offload() {
    if !netns::require_net_admin() {
        return;
    }
    transfers(false, true);
}

#[test]
fn bulk_tcp_intact_through_the_raw_socket_only() {
    if !netns::require_net_admin() {
        return;
    }
    transfers(false, false);
}
