//! MTU handling on the real kernel:
//! - the MSS clamp: a TCP SYN leaving through the clamped interface arrives at the peer
//!   with the clamped MSS option; the `rt mtu` variant is accepted by nftables; the
//!   table goes away;
//! - the Packet Too Big that `mtu::packet_too_big` builds, written into a TUN, is
//!   believed by the local kernel: the application's next datagram to that peer comes
//!   out of the TUN fragmented to the reported MTU.
//!
//! Root only: without `CAP_NET_ADMIN` (or without `nft`) the test prints `SKIPPED`.
//! (A veth stands in for the TUN: the clamp keys on the output interface only.)

use std::{
    net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

use shim6d::{
    config::Config,
    dataplane::{Batch, Plumbing, Tun},
    mtu::{Mss, MssClamp, packet_too_big},
    trigger::nft,
};
use xfrm_sys::{
    Handle,
    netns::{self, Netns},
};

const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc5, 0, 0, 0, 0, 1);
const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc5, 0, 0, 0, 0, 2);

fn have_nft() -> bool {
    let ok = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: needs the nft command");
    }
    ok
}

/// Packets of B's named counter.
fn counter(ns: &Netns, name: &str) -> u64 {
    let out = ns
        .exec("nft", &["-j", "list", "counter", "inet", "chk", name])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    nft::objects(&doc, "counter")
        .unwrap()
        .next()
        .and_then(|c| c["packets"].as_u64())
        .unwrap()
}

#[test]
fn syns_through_the_interface_carry_the_clamped_mss() {
    if !netns::require_net_admin() || !have_nft() {
        return;
    }
    let a = Netns::new("mssa").unwrap();
    let b = Netns::new("mssb").unwrap();
    netns::veth(&a, "a0", &b, "b0").unwrap();
    a.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{A}/64"),
        "dev",
        "a0",
        "nodad",
    ])
    .unwrap();
    b.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{B}/64"),
        "dev",
        "b0",
        "nodad",
    ])
    .unwrap();
    a.ip(&["link", "set", "a0", "up"]).unwrap();
    b.ip(&["link", "set", "b0", "up"]).unwrap();
    // B counts SYNs by their MSS option.
    let check = "table inet chk {\n counter mss1000 {}\n counter other {}\n chain input {\n \
                 type filter hook input priority 0; policy accept;\n \
                 tcp flags & syn == syn tcp option maxseg size 1000 counter name mss1000 accept\n \
                 tcp flags & syn == syn counter name other\n }\n}\n";
    let out = b
        .exec("sh", &["-c", &format!("echo '{check}' | nft -f -")])
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let b_name = b.name().to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = netns::spawn(&b_name, move || async move {
        let l = TcpListener::bind(SocketAddr::new(B.into(), 7100)).unwrap();
        ready_tx.send(()).unwrap();
        // Two connections: one before the clamp, one after.
        for _ in 0..2 {
            let _ = l.accept().unwrap();
        }
    })
    .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    let (route_ok, table_gone) = a
        .run(|| async {
            let connect = || {
                TcpStream::connect_timeout(&SocketAddr::new(B.into(), 7100), Duration::from_secs(5))
                    .expect("connect to B")
            };
            drop(connect());
            let clamp = MssClamp::install("shim6d_mss_t", "a0", Mss::Fixed(1000)).unwrap();
            drop(connect());
            clamp.delete().unwrap();
            // The route-MTU form compiles and installs on this kernel too.
            let route = MssClamp::install("shim6d_mss_t", "a0", Mss::Route);
            let route_ok = route.is_ok();
            drop(route);
            (route_ok, !nft::table_exists("shim6d_mss_t").unwrap())
        })
        .unwrap();
    server.join().unwrap();
    assert_eq!(counter(&b, "other"), 1, "the unclamped SYN (MSS 1440)");
    assert_eq!(counter(&b, "mss1000"), 1, "the clamped SYN");
    assert!(route_ok, "`rt mtu` form installs");
    assert!(table_gone, "the clamp's table is deleted");
}

/// Reads from the TUN until a datagram of A's (UDP, or its fragments) shows up; returns
/// the sizes of the packets that carried it.
async fn next_sizes(tun: &Tun, batch: &mut Batch) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut total = 0;
    for _ in 0..100 {
        if total >= 1400 {
            break;
        }
        tokio::time::timeout(Duration::from_secs(5), tun.recv_batch(batch))
            .await
            .expect("a packet in the TUN")
            .unwrap();
        for b in batch.packets() {
            let p = b.packet();
            // UDP (17) or a Fragment header (44) from A.
            if p.len() > 40 && (p[6] == 17 || p[6] == 44) && p[8..24] == A.octets() {
                sizes.push(p.len());
                total += p.len();
            }
        }
    }
    sizes
}

#[test]
fn our_packet_too_big_lowers_the_applications_path_mtu() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("ptba").unwrap();
    a.ip(&["-6", "addr", "add", &format!("{A}/128"), "dev", "lo"])
        .unwrap();
    let sizes = a
        .run(|| async {
            let config = Config::default();
            let handle = Handle::new().unwrap();
            let tun = Tun::create(&handle, "aux1", 1500).await.unwrap();
            let mut plumbing = Plumbing::install(handle.clone(), tun.index(), &config.routing)
                .await
                .unwrap();
            plumbing.add_peer(B).await.unwrap();
            let app = std::net::UdpSocket::bind(SocketAddr::new(A.into(), 0)).unwrap();
            let mut batch = Batch::new(8, 1600);
            // A 1400-octet packet (1352 of UDP payload) fits the TUN's 1500.
            app.send_to(&[7; 1352], SocketAddr::new(B.into(), 9))
                .unwrap();
            let first = next_sizes(&tun, &mut batch).await;
            // "The rewritten packet would not fit a 1308-octet path": tell the application
            // 1300, quoting its packet.
            let original = batch
                .packets()
                .find(|b| b.packet().len() == 1400)
                .unwrap()
                .packet()
                .to_vec();
            let mut out = [0u8; 1280];
            let n = packet_too_big(&original, 1300, &mut out).unwrap();
            tun.send(&out[..n]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            app.send_to(&[8; 1352], SocketAddr::new(B.into(), 9))
                .unwrap();
            let second = next_sizes(&tun, &mut batch).await;
            plumbing.teardown().await;
            (first, second)
        })
        .unwrap();
    let (first, second) = sizes;
    assert_eq!(first, [1400], "unfragmented before");
    assert!(second.len() >= 2, "fragmented after: {second:?}");
    assert!(second.iter().all(|s| *s <= 1300), "{second:?}");
}
