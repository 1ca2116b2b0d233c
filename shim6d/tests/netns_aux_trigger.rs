//! The trigger on the real kernel: UDP traffic to a peer that passes the byte threshold
//! is reported by the poller, DNS (port 53) never is, a peer is reported once, and the
//! nftables table is gone after shutdown and after drop.
//!
//! Root only: without `CAP_NET_ADMIN` (or without `nft`) the test prints `SKIPPED`.

use std::{
    net::{Ipv6Addr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use shim6_tests::testbed::addr;
use shim6d::{
    config::Config,
    trigger::{AccountingOptions, DEFAULT_TABLE, Reason, TriggerPoller, nft},
    visibility::UlidPair,
};
use xfrm_sys::netns::{self, Netns};

const L: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc4, 0, 0, 0, 0, 1);
const P1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc4, 0, 0, 0, 0, 2);
const P2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc4, 0, 0, 0, 0, 3);

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

/// Namespaces `a_name` (address `L` on `a0`) and `b_name` (`peers` on `b0`) joined by a
/// veth pair, both ends up.
fn linked(a_name: &str, b_name: &str, peers: &[Ipv6Addr]) -> (Netns, Netns) {
    let a = Netns::new(a_name).unwrap();
    let b = Netns::new(b_name).unwrap();
    netns::veth(&a, "a0", &b, "b0").unwrap();
    addr(&a, L, "a0").unwrap();
    for p in peers {
        addr(&b, *p, "b0").unwrap();
    }
    a.ip(&["link", "set", "a0", "up"]).unwrap();
    b.ip(&["link", "set", "b0", "up"]).unwrap();
    (a, b)
}

fn send(to: Ipv6Addr, port: u16, n: usize) {
    let s = UdpSocket::bind(SocketAddr::new(L.into(), 0)).unwrap();
    for _ in 0..n {
        s.send_to(&[0x5a; 300], SocketAddr::new(to.into(), port))
            .unwrap();
    }
}

#[test]
fn udp_past_the_threshold_triggers_and_dns_never_does() {
    if !netns::require_net_admin() || !have_nft() {
        return;
    }
    let (a, _b) = linked("triga", "trigb", &[P1, P2]);

    let (first, second, gone) = a
        .run(|| async {
            let config = Config::default();
            let mut options = AccountingOptions::for_daemon(&config);
            options.tun = None; // no TUN in this namespace
            let mut trig = TriggerPoller::new(config.trigger.clone(), options).unwrap();
            assert!(trig.accounting().is_some(), "auto mode installs the table");
            let t0 = Instant::now();
            assert!(trig.poll(t0).unwrap().is_empty());
            // 10 × 300 octets of payload: past 2 KB to P1, and to P2's DNS port.
            send(P1, 9999, 10);
            send(P2, 53, 10);
            let mut first = Vec::new();
            for i in 0..50 {
                first = trig.poll(t0 + Duration::from_millis(i)).unwrap();
                if !first.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // More traffic: P1 is pending now, P2 is still DNS only.
            send(P1, 9999, 10);
            send(P2, 53, 10);
            let second = trig.poll(t0 + Duration::from_secs(1)).unwrap();
            trig.shutdown().unwrap();
            (first, second, !nft::table_exists(DEFAULT_TABLE).unwrap())
        })
        .unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].pair, UlidPair::new(L, P1));
    assert_eq!(first[0].flow.port, Some(9999));
    assert!(
        matches!(first[0].reason, Reason::Bytes(b) if b >= 2048),
        "{first:?}"
    );
    assert!(second.is_empty(), "reported once; DNS never: {second:?}");
    assert!(gone, "shutdown deletes the table");
}

#[test]
fn responder_only_installs_nothing_and_drop_cleans_up() {
    if !netns::require_net_admin() || !have_nft() {
        return;
    }
    let a = Netns::new("trigdrop").unwrap();
    let (responder, during, after) = a
        .run(|| async {
            let mut config = Config::default();
            let mut options = AccountingOptions::for_daemon(&config);
            options.table = "shim6d_trig_t".into();
            config.trigger.mode = shim6d::config::TriggerMode::ResponderOnly;
            let mut trig = TriggerPoller::new(config.trigger.clone(), options).unwrap();
            let responder = nft::table_exists("shim6d_trig_t").unwrap();
            assert!(trig.poll(Instant::now()).unwrap().is_empty());
            // A reload to auto installs it; dropping the poller removes it.
            config.trigger.mode = shim6d::config::TriggerMode::Auto;
            trig.reconfigure(config.trigger.clone()).unwrap();
            let during = nft::table_exists("shim6d_trig_t").unwrap();
            drop(trig);
            (
                responder,
                during,
                nft::table_exists("shim6d_trig_t").unwrap(),
            )
        })
        .unwrap();
    assert!(!responder, "responder-only mode counts nothing");
    assert!(during);
    assert!(!after, "dropped: table deleted");
}

/// The daemon's way (service.rs): the read runs on tokio's blocking pool
/// ([`TriggerPoller::query`], `FlowQuery::run`) and its flows reach the decider later
/// ([`TriggerPoller::observe`]); flows read before a reload turned the accounting off
/// are ignored, as a poll after the reload would have read none.
#[test]
fn detached_read_on_the_blocking_pool_and_a_reload_in_between() {
    if !netns::require_net_admin() || !have_nft() {
        return;
    }
    let (a, _b) = linked("trigjob", "trigjobb", &[P1]);
    let (flows, off, on) = a
        .run(|| async {
            let mut config = Config::default();
            let mut options = AccountingOptions::for_daemon(&config);
            options.tun = None;
            options.table = "shim6d_trig_job".into();
            let mut trig = TriggerPoller::new(config.trigger.clone(), options).unwrap();
            send(P1, 9999, 10);
            // Read on the blocking pool until the kernel counted the 3000 octets.
            let mut flows = Vec::new();
            for _ in 0..50 {
                let q = trig.query().expect("auto mode reads");
                flows = tokio::task::spawn_blocking(move || q.run())
                    .await
                    .unwrap()
                    .unwrap();
                if flows.iter().any(|f| f.key.peer == P1 && f.bytes >= 2048) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let now = Instant::now();
            config.trigger.mode = shim6d::config::TriggerMode::Manual;
            trig.reconfigure(config.trigger.clone()).unwrap();
            assert!(trig.query().is_none(), "manual mode reads nothing");
            let off = trig.observe(now, &flows);
            config.trigger.mode = shim6d::config::TriggerMode::Auto;
            trig.reconfigure(config.trigger.clone()).unwrap();
            let on = trig.observe(now, &flows);
            trig.shutdown().unwrap();
            (flows, off, on)
        })
        .unwrap();
    assert!(
        flows.iter().any(|f| f.key.peer == P1 && f.bytes >= 2048),
        "{flows:?}"
    );
    assert!(off.is_empty(), "read before the reload to manual: {off:?}");
    assert_eq!(on.len(), 1, "{on:?}");
    assert_eq!(on[0].pair, UlidPair::new(L, P1));
}

/// The kernel counts both ports of a connection, so `never port 53` (the default rule)
/// also covers a DNS server of ours: big UDP to our port 53 from the peer's ephemeral
/// port is never reported, the same to another port of ours is.
#[test]
fn traffic_to_our_dns_server_never_triggers() {
    if !netns::require_net_admin() || !have_nft() {
        return;
    }
    let (a, b) = linked("trigsrv", "trigsrvb", &[P1, P2]);
    let config = Config::default();
    let mut options = AccountingOptions::for_daemon(&config);
    options.tun = None;
    options.table = "shim6d_trig_srv".into();
    let mut trig = a
        .run(move || async move { TriggerPoller::new(config.trigger.clone(), options) })
        .unwrap()
        .unwrap();
    // From the peers' ephemeral ports: P1 to our DNS port, P2 to our port 5353;
    // 10 × 300 octets each, past the 2 KB threshold.
    b.run(|| async {
        for (from, port) in [(P1, 53), (P2, 5353)] {
            let s = UdpSocket::bind(SocketAddr::new(from.into(), 0)).unwrap();
            for _ in 0..10 {
                s.send_to(&[0x5a; 300], SocketAddr::new(L.into(), port))
                    .unwrap();
            }
        }
    })
    .unwrap();
    let t0 = Instant::now();
    let (reported, flows) = a
        .run(move || async move {
            let mut reported = Vec::new();
            let mut flows = Vec::new();
            for i in 0..50 {
                let q = trig.query().unwrap();
                flows = q.run().unwrap();
                reported.extend(trig.observe(t0 + Duration::from_millis(i), &flows));
                if !reported.is_empty() && flows.len() >= 2 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            trig.shutdown().unwrap();
            (reported, flows)
        })
        .unwrap();
    assert!(
        flows
            .iter()
            .any(|f| f.key.peer == P1 && f.local_port == Some(53) && f.bytes >= 2048),
        "the kernel counted the DNS traffic with our port: {flows:?}"
    );
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].pair, UlidPair::new(L, P2), "{reported:?}");
}
