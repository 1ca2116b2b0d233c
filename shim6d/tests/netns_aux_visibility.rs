//! Inbound visibility (architecture hazard 2) on the real kernel: a registered ULID pair's
//! packets are counted by our nftables set and reported by `Visibility::poll`; packets
//! from another source are not; unregistering removes the element; the table goes away.
//!
//! Root only: without `CAP_NET_ADMIN` (or without `nft`) the test prints `SKIPPED`.

use std::{
    net::{Ipv6Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use shim6d::{
    trigger::nft,
    visibility::{DEFAULT_TABLE, UlidPair, Visibility},
};
use xfrm_sys::netns::{self, Netns};

const L: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc3, 0, 0, 0, 0, 1);
const P: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc3, 0, 0, 0, 0, 2);
/// Another address of the peer's host: "elsewhere".
const R: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc3, 0, 0, 0, 0, 3);

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

/// Sends `n` UDP datagrams from `src` to `L` inside namespace `ns`.
fn send_from(ns: &str, src: Ipv6Addr, n: usize) {
    netns::run(ns, move || async move {
        let s = UdpSocket::bind(SocketAddr::new(src.into(), 0)).unwrap();
        for _ in 0..n {
            s.send_to(b"hello", SocketAddr::new(L.into(), 9)).unwrap();
        }
    })
    .unwrap();
}

#[test]
fn registered_pairs_are_seen_and_others_are_not() {
    if !netns::require_net_admin() || !have_nft() {
        return;
    }
    let a = Netns::new("visa").unwrap();
    let b = Netns::new("visb").unwrap();
    netns::veth(&a, "a0", &b, "b0").unwrap();
    a.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{L}/64"),
        "dev",
        "a0",
        "nodad",
    ])
    .unwrap();
    for addr in [P, R] {
        b.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            "b0",
            "nodad",
        ])
        .unwrap();
    }
    a.ip(&["link", "set", "a0", "up"]).unwrap();
    b.ip(&["link", "set", "b0", "up"]).unwrap();
    let b_name = b.name().to_owned();

    let (after_unregister, exists_after) = a
        .run(move || async move {
            let pair = UlidPair::new(L, P);
            let mut vis = Visibility::install(DEFAULT_TABLE).unwrap();
            assert!(vis.is_empty());
            vis.register(pair).unwrap();
            vis.register(pair).unwrap(); // idempotent
            assert_eq!(vis.pairs().collect::<Vec<_>>(), [pair]);
            assert!(vis.poll().unwrap().is_empty(), "nothing arrived yet");

            // Packets from the peer ULID: seen, once.
            send_from(&b_name, P, 5);
            let mut seen = Vec::new();
            for _ in 0..50 {
                seen = vis.poll().unwrap();
                if !seen.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(seen, [pair], "the peer's packets are noted");
            assert!(vis.poll().unwrap().is_empty(), "nothing new since");
            // The two seen sets take turns: each poll sees exactly what came since the
            // previous one.
            for round in 0..3 {
                send_from(&b_name, P, 1);
                assert_eq!(vis.poll().unwrap(), [pair], "round {round}");
                assert!(vis.poll().unwrap().is_empty(), "round {round}");
            }

            // Packets from elsewhere: not reported (and not counted for the pair).
            send_from(&b_name, R, 5);
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                vis.poll().unwrap().is_empty(),
                "another source is not the peer"
            );

            // Unregister: the element is gone, later packets are not reported.
            vis.unregister(pair).unwrap();
            let listing =
                nft::list_json("test", &["list", "set", "inet", vis.table(), "pairs"]).unwrap();
            let elems = nft::set_elements(&listing, "pairs").unwrap();
            send_from(&b_name, P, 5);
            std::thread::sleep(Duration::from_millis(100));
            let after = vis.poll().unwrap();
            let table = vis.table().to_owned();
            vis.delete().unwrap();
            assert!(elems.is_empty(), "{elems:?}");
            (after, nft::table_exists(&table).unwrap())
        })
        .unwrap();
    assert!(after_unregister.is_empty());
    assert!(!exists_after, "the table is deleted");
}

#[test]
fn dropping_removes_the_table() {
    if !netns::require_net_admin() || !have_nft() {
        return;
    }
    let a = Netns::new("visdrop").unwrap();
    let (during, after) = a
        .run(|| async {
            let vis = Visibility::install("shim6d_reap_t").unwrap();
            let during = nft::table_exists("shim6d_reap_t").unwrap();
            drop(vis);
            (during, nft::table_exists("shim6d_reap_t").unwrap())
        })
        .unwrap();
    assert!(during);
    assert!(!after);
}
