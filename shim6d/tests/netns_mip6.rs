//! MipShim6 scenarios (issue 7) with real shim6d daemons in network namespaces
//! (`shim6_tests::mip_testbed`): home agents and mobile nodes in tunnel mode.
//!
//! - (d) a forged Binding Update (the right home address and SPI, the wrong key, sent
//!   from the correspondent's namespace) is rejected and counted, the binding unchanged;
//! - (a) the mobile node moves between two visited networks while a TCP stream from its
//!   home address to the correspondent goes on: every byte arrives, in order;
//! - (b) double jump: the correspondent is mobile too (home agent 2) and both move at
//!   once; the stream between the two home addresses recovers through the home agents.
//!
//! The interruption per movement is printed (`interruption_ms`), never asserted;
//! docs/bench/mip6.md collects it. Needs root (namespaces) and the shim6d binary.

use std::{
    io,
    net::{Ipv6Addr, SocketAddr, SocketAddrV6},
    time::{Duration, Instant},
};

use serde_json::Value;
use shim6_tests::{
    daemons::{Bins, Daemon, Progress, Stream, until},
    mip_testbed::{self, CN_NETS, HOA_CN, HOA1, KEY, KEY_CN, MN_NETS, Run, SPI, SPI_CN, ha_addr},
};

fn unique(tag: &str) -> String {
    format!("{tag}{}", std::process::id() % 10000)
}

/// The bed, HA1 serving the mobile node, HA2 serving the correspondent when
/// `cn_mobile`, and the mobile daemons; waits until every mobile node is registered.
fn start(tag: &str, cn_mobile: bool) -> io::Result<Run> {
    let bins = Bins::locate()?;
    // A failed start drops `r`: the daemons already started stop.
    let mut r = Run::new(&unique(tag))?;
    let (bed, dir) = (&r.bed, r.dir.clone());
    let ha1 = mip_testbed::ha_section(1, &[(HOA1, SPI, KEY)]);
    r.daemons.push(mip_testbed::daemon(
        &bins.shim6d,
        &bed.ha1,
        &dir,
        "ha1",
        &ha1,
    )?);
    let ha2 = mip_testbed::ha_section(2, &[(HOA_CN, SPI_CN, KEY_CN)]);
    r.daemons.push(mip_testbed::daemon(
        &bins.shim6d,
        &bed.ha2,
        &dir,
        "ha2",
        &ha2,
    )?);
    let mn = mip_testbed::mn_section(&[(HOA1, ha_addr(1), SPI, KEY)]);
    r.daemons
        .push(mip_testbed::daemon(&bins.shim6d, &bed.mn, &dir, "mn", &mn)?);
    if cn_mobile {
        let cn = mip_testbed::mn_section(&[(HOA_CN, ha_addr(2), SPI_CN, KEY_CN)]);
        r.daemons
            .push(mip_testbed::daemon(&bins.shim6d, &bed.cn, &dir, "cn", &cn)?);
    }
    registered(&r.daemons[2], MN_NETS[0].address())?;
    if cn_mobile {
        registered(&r.daemons[3], CN_NETS[0].address())?;
    }
    Ok(r)
}

/// Waits until the mobile node's first BUL entry is registered at `coa`.
fn registered(mn: &Daemon, coa: Ipv6Addr) -> io::Result<()> {
    until(
        Duration::from_secs(15),
        &format!("registration at {coa}"),
        || {
            let b = mn.json("bul")?;
            Ok(b["bul"][0]["state"] == "registered"
                && b["bul"][0]["registered_coa"] == coa.to_string())
        },
    )
    .map_err(|e| io::Error::other(format!("{e}\n--- log ---\n{}", mn.log())))
}

/// The binding of `hoa` in a home agent's `bindings --json`.
fn binding(ha: &Daemon, hoa: Ipv6Addr) -> io::Result<Value> {
    let b = ha.json("bindings")?;
    b["bindings"]
        .as_array()
        .and_then(|v| v.iter().find(|e| e["home_address"] == hoa.to_string()))
        .cloned()
        .ok_or_else(|| io::Error::other(format!("no binding for {hoa}: {b}")))
}

/// The longest gap between two reads of the receiver after `at`, and (the baseline of
/// the same run) the longest one before it.
fn interruption(progress: &Progress, at: Instant) -> (Option<Duration>, Option<Duration>) {
    let p = progress.lock().unwrap_or_else(|p| p.into_inner());
    let gap = |after: bool| {
        p.windows(2)
            .filter(|w| (w[1].0 >= at) == after)
            .map(|w| w[1].0 - w[0].0)
            .max()
    };
    (gap(true), gap(false))
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

#[test]
fn forged_binding_update_is_rejected_and_counted() {
    let r = start("mipd", false).expect("bed and daemons");
    let ha1 = &r.daemons[0];
    let before = binding(ha1, HOA1).unwrap();
    assert_eq!(before["care_of_address"], MN_NETS[0].address().to_string());
    let b = ha1.json("bindings").unwrap();
    assert_eq!(b["rejected_auth"], 0, "{b}");

    // The attacker (in the correspondent's namespace) claims HOA1 with the right SPI but
    // its own key: a real BU made by the mip6 mobile-node core, sent raw.
    let attacker = CN_NETS[0].address();
    let sent = r
        .bed
        .cn
        .spawn(move || async move {
            #[allow(clippy::disallowed_methods)] // the forged BU's own clock
            let now = Instant::now();
            let home = mip6::mn::HomeConfig {
                home_address: HOA1,
                home_agent: ha_addr(1),
                key: mip6::auth::MnHaKey::new(SPI, b"not the real key".to_vec()).unwrap(),
                lifetime_units: 105,
            };
            let mut evil =
                mip6::mn::MobileNode::new(mip6::mn::MnConfig::new(vec![home]), now, 0xe000 << 48);
            evil.handle_address_added(now, attacker);
            let bu = evil.poll_transmit().ok_or(io::Error::other("no BU"))?;
            let s = socket2::Socket::new(
                socket2::Domain::IPV6,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(libc_ipproto_raw())),
            )?;
            let dst = SocketAddr::V6(SocketAddrV6::new(bu.dst, 0, 0, 0));
            s.send_to(&bu.packet, &dst.into())?;
            io::Result::Ok(bu.packet.len())
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert!(
        sent > 80,
        "a tunnelled BU is an outer and an inner header and more"
    );

    until(Duration::from_secs(10), "the rejection counted", || {
        Ok(ha1.json("bindings")?["rejected_auth"] == 1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ha1.log()));
    let b = ha1.json("bindings").unwrap();
    assert_eq!(b["stats"]["bu_auth_failed"], 1, "{b}");
    let after = binding(ha1, HOA1).unwrap();
    assert_eq!(
        after["care_of_address"], before["care_of_address"],
        "the forged BU must not move the binding"
    );
    assert_eq!(after["sequence"], before["sequence"]);
    // The owner still refreshes and moves normally: its registration stands.
    let bul = r.daemons[2].json("bul").unwrap();
    assert_eq!(bul["bul"][0]["state"], "registered", "{bul}");
}

/// `IPPROTO_RAW` (netinet/in.h): the socket sends the whole packet.
fn libc_ipproto_raw() -> i32 {
    255
}

#[test]
fn movement_keeps_a_tcp_stream() {
    let r = start("mipa", false).expect("bed and daemons");
    let (ha1, mn) = (&r.daemons[0], &r.daemons[2]);
    let cn_addr = CN_NETS[0].address();
    let stream = Stream::start(&r.bed.mn, &r.bed.cn, HOA1, cn_addr).expect("stream");
    until(Duration::from_secs(10), "the stream flowing", || {
        Ok(stream.received() > 20_000)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", mn.log()));
    let seq_before = binding(ha1, HOA1).unwrap()["sequence"].as_u64().unwrap();

    // Move: arrive in the second visited network, leave the first.
    let moved = Instant::now();
    r.bed.attach(&r.bed.mn, MN_NETS[1]).unwrap();
    r.bed.detach(&r.bed.mn, MN_NETS[0]).unwrap();
    registered(mn, MN_NETS[1].address()).unwrap();
    let at_move = stream.received();
    until(Duration::from_secs(20), "the stream flowing again", || {
        Ok(stream.received() > at_move + 20_000)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", mn.log(), ha1.log()));
    let gap = interruption(&stream.progress, moved);
    let result = stream.finish(Duration::from_secs(15));
    assert!(result.error.is_none(), "{result:?}");
    assert_eq!(result.received, result.sent, "every byte, in order");

    let b = binding(ha1, HOA1).unwrap();
    assert_eq!(b["care_of_address"], MN_NETS[1].address().to_string());
    assert!(b["sequence"].as_u64().unwrap() > seq_before, "{b}");
    let stats = ha1.json("bindings").unwrap()["stats"].clone();
    assert!(stats["tunnelled_out"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["tunnelled_in"].as_u64().unwrap() > 0, "{stats}");
    println!(
        "{}",
        serde_json::json!({
            "scenario": "movement, tunnel mode",
            "interruption_ms": ms(gap.0),
            "baseline_gap_ms": ms(gap.1),
            "bytes": result.received,
        })
    );
}

#[test]
fn double_jump_recovers_through_the_home_agents() {
    let r = start("mipb", true).expect("bed and daemons");
    let (ha1, ha2, mn, cn) = (&r.daemons[0], &r.daemons[1], &r.daemons[2], &r.daemons[3]);
    let stream = Stream::start(&r.bed.mn, &r.bed.cn, HOA1, HOA_CN).expect("stream");
    until(Duration::from_secs(10), "the stream flowing", || {
        Ok(stream.received() > 20_000)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", mn.log(), cn.log()));

    // Both move at once, break before make.
    let moved = Instant::now();
    r.bed.detach(&r.bed.mn, MN_NETS[0]).unwrap();
    r.bed.detach(&r.bed.cn, CN_NETS[0]).unwrap();
    r.bed.attach(&r.bed.mn, MN_NETS[1]).unwrap();
    r.bed.attach(&r.bed.cn, CN_NETS[1]).unwrap();
    registered(mn, MN_NETS[1].address()).unwrap();
    registered(cn, CN_NETS[1].address()).unwrap();
    let at_move = stream.received();
    until(Duration::from_secs(20), "the stream flowing again", || {
        Ok(stream.received() > at_move + 20_000)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", mn.log(), cn.log()));
    let gap = interruption(&stream.progress, moved);
    let result = stream.finish(Duration::from_secs(15));
    assert!(result.error.is_none(), "{result:?}");
    assert_eq!(result.received, result.sent, "every byte, in order");
    assert_eq!(
        binding(ha1, HOA1).unwrap()["care_of_address"],
        MN_NETS[1].address().to_string()
    );
    assert_eq!(
        binding(ha2, HOA_CN).unwrap()["care_of_address"],
        CN_NETS[1].address().to_string()
    );
    println!(
        "{}",
        serde_json::json!({
            "scenario": "double jump, tunnel mode",
            "interruption_ms": ms(gap.0),
            "baseline_gap_ms": ms(gap.1),
            "bytes": result.received,
        })
    );
}

/// Issue 7 scenario (c), the part that exists: with two home addresses at two home
/// agents, home agent 1 dies and the node moves. Its BUs to HA1 go unanswered (RFC 6275
/// §11.8 back-off) until HA1 is reported unreachable, while `HoA2` registers the new
/// care-of address at HA2 and a new TCP exchange from `HoA2` flows through HA2. The
/// Shim6 rewrite of an existing `HoA1` flow to `HoA2` is not wired (docs/daemon.md
/// "MipShim6").
#[test]
fn home_agent_failure_leaves_the_other_home_working() {
    let bins = Bins::locate().unwrap();
    let mut r = Run::new(&unique("mipc")).expect("bed");
    let hoa2 = mip_testbed::HOA2;
    let specs = [
        ("ha1", 1, mip_testbed::ha_section(1, &[(HOA1, SPI, KEY)])),
        ("ha2", 2, mip_testbed::ha_section(2, &[(hoa2, SPI, KEY)])),
        (
            "mn",
            0,
            mip_testbed::mn_section(&[(HOA1, ha_addr(1), SPI, KEY), (hoa2, ha_addr(2), SPI, KEY)]),
        ),
    ];
    for (name, i, section) in &specs {
        let ns = match i {
            1 => &r.bed.ha1,
            2 => &r.bed.ha2,
            _ => &r.bed.mn,
        };
        let d = mip_testbed::daemon(&bins.shim6d, ns, &r.dir, name, section).unwrap();
        r.daemons.push(d);
    }
    let mn = &r.daemons[2];
    until(Duration::from_secs(15), "both homes registered", || {
        let b = mn.json("bul")?;
        Ok(b["registered_home_addresses"].as_array().map(Vec::len) == Some(2))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", mn.log()));

    r.daemons[0].kill();
    let killed = Instant::now();
    r.bed.attach(&r.bed.mn, MN_NETS[1]).unwrap();
    r.bed.detach(&r.bed.mn, MN_NETS[0]).unwrap();
    let mn = &r.daemons[2];
    let mut detected = None;
    until(
        Duration::from_secs(30),
        "HA1 unreachable, HoA2 at the new care-of address",
        || {
            let b = mn.json("bul")?;
            let e1 = &b["bul"][0];
            let e2 = &b["bul"][1];
            let done = e1["ha_reachable"] == false
                && e2["state"] == "registered"
                && e2["registered_coa"] == MN_NETS[1].address().to_string();
            if e1["ha_reachable"] == false && detected.is_none() {
                detected = Some(killed.elapsed());
            }
            Ok(done)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", mn.log()));
    let b = mn.json("bul").unwrap();
    assert_eq!(
        b["registered_home_addresses"],
        serde_json::json!([hoa2.to_string()]),
        "{b}"
    );
    assert!(b["bul"][0]["unanswered"].as_u64().unwrap() >= 3, "{b}");
    assert_eq!(
        binding(&r.daemons[1], hoa2).unwrap()["care_of_address"],
        MN_NETS[1].address().to_string()
    );

    // A new exchange from the surviving home address goes through HA2.
    let stream = Stream::start(&r.bed.mn, &r.bed.cn, hoa2, CN_NETS[0].address()).expect("stream");
    until(Duration::from_secs(10), "a stream from HoA2", || {
        Ok(stream.received() > 20_000)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", r.daemons[2].log()));
    let result = stream.finish(Duration::from_secs(15));
    assert!(result.error.is_none(), "{result:?}");
    assert_eq!(result.received, result.sent);
    println!(
        "{}",
        serde_json::json!({
            "scenario": "home agent 1 failure, detection by the BU back-off",
            "unreachable_after_ms": detected.map(|d| d.as_secs_f64() * 1000.0),
        })
    );
}

/// The commands answer in their role only, and a mobile node that stops de-registers
/// (RFC 6275 §11.7.1: a BU with lifetime 0): the home agent keeps the entry as deleted
/// (the §10.3.2 hold-down) and counts the de-registration.
#[test]
fn stopping_the_mobile_node_deregisters() {
    let mut r = start("mipe", false).expect("bed and daemons");
    let (code, out) = r.daemons[0].ctl("bul").unwrap();
    assert_ne!(code, 0);
    assert!(out.contains("not a mobile node"), "{out}");
    let (code, out) = r.daemons[2].ctl("bindings").unwrap();
    assert_ne!(code, 0);
    assert!(out.contains("not a home agent"), "{out}");
    let text = r.daemons[0].ctl("bindings").unwrap().1;
    assert!(text.contains(&HOA1.to_string()), "{text}");

    assert!(r.daemons[2].stop(), "the mobile node exits cleanly");
    let ha1 = &r.daemons[0];
    until(Duration::from_secs(5), "the de-registration", || {
        Ok(binding(ha1, HOA1)?["state"] == "deleted")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ha1.log()));
    let b = ha1.json("bindings").unwrap();
    assert_eq!(b["stats"]["bu_deregistered"], 1, "{b}");
    // Counted apart from registrations.
    assert_eq!(b["stats"]["bu_accepted"], 1, "{b}");
}

/// RFC 2473 §3.1: the tunnel entry point is a hop. A packet for the home address that
/// reaches the home agent with hop limit 1 (after its own forwarding decrement) cannot
/// be encapsulated; its sender gets an ICMPv6 Time Exceeded from the home agent.
#[test]
fn hop_limit_exhausted_at_the_tunnel_entry_gets_time_exceeded() {
    let r = start("miph", false).expect("bed and daemons");
    let ha1 = &r.daemons[0];
    let cn_addr = CN_NETS[0].address();
    let got = r
        .bed
        .cn
        .spawn(move || async move {
            use socket2::{Domain, Protocol, Socket, Type};
            let icmp = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
            icmp.set_read_timeout(Some(Duration::from_secs(3)))?;
            let udp = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            // Router 3 -> 2, home agent's forwarding 2 -> 1, the tunnel entry 1 -> 0.
            udp.set_unicast_hops_v6(3)?;
            udp.bind(&SocketAddr::V6(SocketAddrV6::new(cn_addr, 0, 0, 0)).into())?;
            let dst = SocketAddr::V6(SocketAddrV6::new(HOA1, 9, 0, 0));
            udp.send_to(b"hop limit probe", &dst.into())?;
            // A raw socket read through std's datagram API (recvfrom).
            let icmp = std::net::UdpSocket::from(icmp);
            let mut buf = [0u8; 1500];
            loop {
                let (n, from) = icmp.recv_from(&mut buf)?;
                // RFC 4443 §3.3: type 3.
                if buf[0] == 3 {
                    return io::Result::Ok((buf[1], from.ip(), n));
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
    let (code, from, len) = got.unwrap_or_else(|e| panic!("no Time Exceeded: {e}\n{}", ha1.log()));
    assert_eq!(code, 0, "hop limit exceeded in transit");
    assert_eq!(
        from,
        std::net::IpAddr::V6(ha_addr(1)),
        "from the tunnel entry point"
    );
    assert!(len >= 8 + 40 + 8, "quotes the invoking packet");
    let b = ha1.json("bindings").unwrap();
    assert_eq!(b["stats"]["intercept_hop_limit"], 1, "{b}");
}
