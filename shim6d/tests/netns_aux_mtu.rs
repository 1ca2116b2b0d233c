//! The MSS clamp on the real kernel: a TCP SYN leaving through the clamped interface
//! arrives at the peer with the clamped MSS option; the `rt mtu` variant is accepted by
//! nftables; the table goes away.
//!
//! Root only: without `CAP_NET_ADMIN` (or without `nft`) the test prints `SKIPPED`.
//! (A veth stands in for the TUN: the clamp keys on the output interface only.)

use std::{
    net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

use shim6d::{
    mtu::{Mss, MssClamp},
    trigger::nft,
};
use xfrm_sys::netns::{self, Netns};

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
