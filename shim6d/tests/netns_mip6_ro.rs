//! MipShim6 route optimisation (issue 7 item 2) in network namespaces: the mobile node
//! runs the Shim6 core with its home address as the only ULID and its care-of
//! addresses as locators (members of its HBA set over the home prefix and the two
//! visited prefixes), the correspondent runs plain Shim6. A TCP stream from the home
//! address starts through the home agent's tunnel; a Shim6 context is established over
//! that path; when the node moves, the Update Request lists the new care-of address and
//! REAP moves the context to the direct path (new care-of address ↔ correspondent),
//! while the binding at the home agent follows as well. Every byte of the stream
//! arrives in order; the interruption is printed, not asserted.

use std::{
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use shim6_tests::{
    daemons::{self, Bins, Daemon, Stream, current_pair_of, until},
    mip_testbed::{
        self, CN_NETS, KEY, MN_NETS, Run, SPI, add_address, del_address, establish, gaps_ms,
        ha_addr, stream_through_tunnel, tunnelled, tunnelled_after_movement, until_direct_path,
    },
    testbed::doc_addr,
};

/// The run tagged `tag` + the process id, the mobile node's HBA set over `mn_prefixes`
/// and the correspondent's over `cn_prefixes` (in `mn/hba.json` and `cn/hba.json`),
/// each host using the member on its first visited network instead of that network's
/// `::1`. Returns both sets, in prefix order.
fn hba_hosts(
    tag: &str,
    mn_prefixes: &[Ipv6Addr],
    cn_prefixes: &[Ipv6Addr],
) -> (Bins, Run, Vec<Ipv6Addr>, Vec<Ipv6Addr>) {
    let bins = Bins::locate().unwrap();
    let r = Run::new(&format!("{tag}{}", std::process::id() % 10000)).expect("bed");
    let mut sets = Vec::new();
    for (name, prefixes, host, net) in [
        ("mn", mn_prefixes, &r.bed.mn, MN_NETS[0]),
        ("cn", cn_prefixes, &r.bed.cn, CN_NETS[0]),
    ] {
        let set =
            daemons::hba_set(&bins, prefixes, &r.host_dir(name).unwrap().join("hba.json")).unwrap();
        let on_net = prefixes
            .iter()
            .position(|p| *p == net.net_prefix())
            .expect("a prefix of the first visited network");
        r.bed.detach(host, net).unwrap();
        add_address(host, set[on_net], net.dev).unwrap();
        sets.push(set);
    }
    let cn_set = sets.pop().unwrap();
    let mn_set = sets.pop().unwrap();
    (bins, r, mn_set, cn_set)
}

#[test]
fn movement_switches_the_shim6_context_to_the_direct_path() {
    // The mobile node's HBA set: home prefix, then the two visited prefixes.
    let (bins, mut r, mn_set, cn_set) = hba_hosts(
        "miro",
        &[
            doc_addr(0x1001, 0),
            MN_NETS[0].net_prefix(),
            MN_NETS[1].net_prefix(),
        ],
        &[CN_NETS[0].net_prefix()],
    );
    let (bed, dir) = (&r.bed, r.dir.clone());
    let (hoa, coa1, coa2) = (mn_set[0], mn_set[1], mn_set[2]);
    let cnu = cn_set[0];

    let shim6 = "[reap]\nsend_timeout = 3\n[resend]\nenabled = true\n";
    let ha1 = mip_testbed::ha_section(1, &[(hoa, SPI, KEY)]);
    r.daemons
        .push(mip_testbed::daemon(&bins.shim6d, &bed.ha1, &dir, "ha1", &ha1).unwrap());
    let mn = format!(
        "{shim6}[interfaces]\nexclude = [\"mip6\"]\n{}",
        mip_testbed::mn_section(&[(hoa, ha_addr(1), SPI, KEY)])
    );
    let ulids = format!("ulids = [\"{hoa}\"]");
    r.daemons
        .push(mip_testbed::daemon_with(&bins.shim6d, &bed.mn, &dir, "mn", &ulids, &mn).unwrap());
    r.daemons
        .push(mip_testbed::daemon(&bins.shim6d, &bed.cn, &dir, "cn", shim6).unwrap());
    let (ha, mnd, cnd) = (&r.daemons[0], &r.daemons[1], &r.daemons[2]);
    let registered_at = |coa: Ipv6Addr| {
        until(
            Duration::from_secs(15),
            &format!("registered at {coa}"),
            || {
                let b = mnd.json("bul")?;
                Ok(b["bul"][0]["registered_coa"] == coa.to_string())
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", mnd.log()));
    };
    registered_at(coa1);

    // A new exchange: through the home agent (no context yet).
    let stream = stream_through_tunnel(&bed.mn, &bed.cn, hoa, cnu, ha);

    // The Shim6 context, home address as ULID, under the running stream.
    establish(mnd, cnd, cnu);
    let c = &mnd.contexts().unwrap()[0];
    assert_eq!(c["ulid_local"], hoa.to_string(), "{c}");
    // Route optimisation: REAP leaves the home address's pair for the care-of pair.
    until(
        Duration::from_secs(15),
        "the context on the care-of pair",
        || Ok(current_pair_of(mnd)? == (coa1, cnu)),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", mnd.log()));
    // The running stream left the tunnel for the direct path: the home agent carries
    // (almost) nothing more while it goes on.
    let (t0, at) = (tunnelled(ha), stream.received());
    until(
        Duration::from_secs(10),
        "the stream on the direct path",
        || Ok(stream.received() > at + 20_000),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", mnd.log()));
    assert!(
        tunnelled(ha) < t0 + 5,
        "the stream left the tunnel: {t0} -> {}",
        tunnelled(ha)
    );

    // Move.
    let moved = Instant::now();
    add_address(&bed.mn, coa2, MN_NETS[1].dev).unwrap();
    del_address(&bed.mn, coa1, MN_NETS[0].dev).unwrap();
    registered_at(coa2);
    let direct_at = until_direct_path(mnd, cnd, (coa2, cnu), moved, Duration::from_secs(30));
    // On the direct path the home agent no longer carries the stream.
    let (tunnelled_before, tunnelled_after) = tunnelled_after_movement(&stream, ha, mnd, cnd);
    let gap = gaps_ms(&stream, moved);
    let result = stream.finish(Duration::from_secs(15));
    assert!(result.error.is_none(), "{result:?}");
    assert_eq!(result.received, result.sent, "every byte, in order");
    // The correspondent learnt the new care-of address from the Update Request.
    let peer_locators = cnd.contexts().unwrap()[0]["peer_locators"].to_string();
    assert!(peer_locators.contains(&coa2.to_string()), "{peer_locators}");
    assert!(
        tunnelled_after - tunnelled_before < 5,
        "the stream left the tunnel: {tunnelled_before} -> {tunnelled_after}"
    );
    println!(
        "{}",
        serde_json::json!({
            "scenario": "movement, Shim6 route optimisation",
            "interruption_ms": gap.0,
            "baseline_gap_ms": gap.1,
            "direct_path_after_ms": direct_at.as_secs_f64() * 1000.0,
            "bytes": result.received,
        })
    );
}

/// Issue 7 scenario (c) through Shim6: two home addresses at two home agents, both
/// Shim6 locators of the context whose ULID is `HoA1` (route optimisation off, so the
/// context stays on the tunnels). Home agent 1 fails (its link at the router goes
/// down); REAP's Send timer expires, the exploration finds (`HoA2`, correspondent)
/// working through home agent 2, and the stream from `HoA1` goes on, rewritten to `HoA2`.
/// `MIP6_SEND_TIMEOUT` (seconds, default 3) sets the REAP Send Timeout (the benchmark).
#[test]
fn home_agent_failure_is_survived_through_the_other_home_address() {
    let send_timeout: f64 = std::env::var("MIP6_SEND_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let (bins, mut r, mn_set, cn_set) = hba_hosts(
        "mihf",
        &[
            doc_addr(0x1001, 0),
            doc_addr(0x1002, 0),
            MN_NETS[0].net_prefix(),
        ],
        &[CN_NETS[0].net_prefix()],
    );
    let (bed, dir) = (&r.bed, r.dir.clone());
    let (hoa1, hoa2) = (mn_set[0], mn_set[1]);
    let cnu = cn_set[0];

    let shim6 = format!("[reap]\nsend_timeout = {send_timeout}\n");
    for (name, ns, i, hoa) in [("ha1", &bed.ha1, 1, hoa1), ("ha2", &bed.ha2, 2, hoa2)] {
        let s = mip_testbed::ha_section(i, &[(hoa, SPI, KEY)]);
        r.daemons
            .push(mip_testbed::daemon(&bins.shim6d, ns, &dir, name, &s).unwrap());
    }
    // `route_optimisation` sits in [mip6], before the [[mip6.home]] tables.
    let mn = format!(
        "{shim6}{}",
        mip_testbed::mn_section(&[(hoa1, ha_addr(1), SPI, KEY), (hoa2, ha_addr(2), SPI, KEY)])
            .replacen(
                "role = \"mobile-node\"\n",
                "role = \"mobile-node\"\nroute_optimisation = false\n",
                1
            )
    );
    let identity = format!("ulids = [\"{hoa1}\"]\nlocators = [\"{hoa1}\", \"{hoa2}\"]");
    r.daemons
        .push(mip_testbed::daemon_with(&bins.shim6d, &bed.mn, &dir, "mn", &identity, &mn).unwrap());
    r.daemons
        .push(mip_testbed::daemon(&bins.shim6d, &bed.cn, &dir, "cn", &shim6).unwrap());
    let (ha2, mnd, cnd) = (&r.daemons[1], &r.daemons[2], &r.daemons[3]);
    until(Duration::from_secs(15), "both homes registered", || {
        let b = mnd.json("bul")?;
        Ok(b["registered_home_addresses"].as_array().map(Vec::len) == Some(2))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", mnd.log()));

    // The stream starts through HA1's tunnel; the context comes under it.
    let stream = stream_through_tunnel(&bed.mn, &bed.cn, hoa1, cnu, &r.daemons[0]);
    establish(mnd, cnd, cnu);
    let at = stream.received();
    until(
        Duration::from_secs(10),
        "the stream through the context",
        || Ok(stream.received() > at + 20_000),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", mnd.log()));
    assert_eq!(current_pair_of(mnd).unwrap(), (hoa1, cnu));
    let ha2_before = ha2.json("bindings").unwrap()["stats"]["tunnelled_in"]
        .as_u64()
        .unwrap();

    // Home agent 1 fails.
    let failed = Instant::now();
    let failed_us = daemons::unix_us();
    bed.r.ip(&["link", "set", "rh1", "down"]).unwrap();
    until(Duration::from_secs(60), "the context on HoA2", || {
        Ok(current_pair_of(mnd)?.0 == hoa2)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n--- mn ---\n{}",
            serde_json::to_string_pretty(&mnd.contexts().unwrap_or_default()).unwrap_or_default(),
            mnd.log()
        )
    });
    let at = stream.received();
    until(Duration::from_secs(30), "the stream flowing again", || {
        Ok(stream.received() > at + 20_000)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nMN stats {:?}\nMN bul {:?}\nHA2 {:?}\nCN stats {:?}",
            mnd.ctl("stats"),
            mnd.ctl("bul --json"),
            ha2.ctl("bindings --json"),
            cnd.ctl("stats")
        )
    });
    let ha2_after = ha2.json("bindings").unwrap()["stats"]["tunnelled_in"]
        .as_u64()
        .unwrap();
    // When the context moved (its history), against the failure.
    let c = &mnd.contexts().unwrap()[0];
    let switched_us = c["events"].as_array().and_then(|v| {
        v.iter()
            .filter(|e| e["event"] == "path_changed")
            .filter_map(|e| e["unix_us"].as_u64())
            .find(|t| *t >= failed_us)
    });
    let gap = gaps_ms(&stream, failed);
    let result = stream.finish(Duration::from_secs(15));
    assert!(result.error.is_none(), "{result:?}");
    assert_eq!(result.received, result.sent, "every byte, in order");
    assert!(
        ha2_after > ha2_before + 10,
        "the stream goes through HA2: {ha2_before} -> {ha2_after}"
    );
    assert_eq!(c["ulid_local"], hoa1.to_string(), "the ULID is unchanged");
    println!(
        "{}",
        serde_json::json!({
            "scenario": "home agent 1 failure, HoA1 -> HoA2 through Shim6",
            "send_timeout_s": send_timeout,
            "recovery_ms": switched_us.map(|t| (t - failed_us) as f64 / 1000.0),
            "interruption_ms": gap.0,
            "baseline_gap_ms": gap.1,
            "bytes": result.received,
        })
    );
}

/// Issue 7 scenario (b) with Shim6 route optimisation on both sides: the correspondent
/// is a mobile node too (home address at HA2, its own HBA set), the context between the
/// two home addresses runs on care-of pairs, and both move at once. Neither Update
/// Request reaches the other's old care-of address; each side's REAP still has the
/// peer's ULID — its home address, reachable through the peer's home agent — so the
/// context recovers through the home agents, and the stream goes on intact.
#[test]
fn double_jump_recovers_through_the_home_agents_with_shim6() {
    let (bins, mut r, m, c) = hba_hosts(
        "midj",
        &[
            doc_addr(0x1001, 0),
            MN_NETS[0].net_prefix(),
            MN_NETS[1].net_prefix(),
        ],
        &[
            doc_addr(0x1002, 0),
            CN_NETS[0].net_prefix(),
            CN_NETS[1].net_prefix(),
        ],
    );
    let (bed, dir) = (&r.bed, r.dir.clone());

    for (name, ns, i, hoa, spi, key) in [
        ("ha1", &bed.ha1, 1, m[0], SPI, KEY),
        (
            "ha2",
            &bed.ha2,
            2,
            c[0],
            mip_testbed::SPI_CN,
            mip_testbed::KEY_CN,
        ),
    ] {
        let s = mip_testbed::ha_section(i, &[(hoa, spi, key)]);
        r.daemons
            .push(mip_testbed::daemon(&bins.shim6d, ns, &dir, name, &s).unwrap());
    }
    for (name, ns, set, i, spi, key) in [
        ("mn", &bed.mn, &m, 1, SPI, KEY),
        (
            "cn",
            &bed.cn,
            &c,
            2,
            mip_testbed::SPI_CN,
            mip_testbed::KEY_CN,
        ),
    ] {
        let s = format!(
            "[reap]\nsend_timeout = 3\n[interfaces]\nexclude = [\"mip6\"]\n{}",
            mip_testbed::mn_section(&[(set[0], ha_addr(i), spi, key)])
        );
        let ulids = format!("ulids = [\"{}\"]", set[0]);
        r.daemons
            .push(mip_testbed::daemon_with(&bins.shim6d, ns, &dir, name, &ulids, &s).unwrap());
    }
    let (ha1, ha2, mnd, cnd) = (&r.daemons[0], &r.daemons[1], &r.daemons[2], &r.daemons[3]);
    let registered = |d: &Daemon, coa: Ipv6Addr| {
        until(
            Duration::from_secs(15),
            &format!("registered at {coa}"),
            || Ok(d.json("bul")?["bul"][0]["registered_coa"] == coa.to_string()),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
    };
    registered(mnd, m[1]);
    registered(cnd, c[1]);
    establish(mnd, cnd, c[0]);
    until(
        Duration::from_secs(15),
        "both sides on care-of addresses",
        || Ok(current_pair_of(mnd)?.0 == m[1] && current_pair_of(cnd)?.0 == c[1]),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", mnd.log(), cnd.log()));
    let stream = Stream::start(&bed.mn, &bed.cn, m[0], c[0]).expect("stream");
    until(Duration::from_secs(10), "the stream", || {
        Ok(stream.received() > 20_000)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", mnd.log()));
    let pairs_before = (current_pair_of(mnd).unwrap(), current_pair_of(cnd).unwrap());
    let via_ha_before = tunnelled(ha1) + tunnelled(ha2);

    // Both move at once, break before make: neither keeps an address the other could
    // still send its Update Request to.
    let jumped = Instant::now();
    let jumped_us = daemons::unix_us();
    del_address(&bed.mn, m[1], MN_NETS[0].dev).unwrap();
    del_address(&bed.cn, c[1], CN_NETS[0].dev).unwrap();
    add_address(&bed.mn, m[2], MN_NETS[1].dev).unwrap();
    add_address(&bed.cn, c[2], CN_NETS[1].dev).unwrap();
    registered(mnd, m[2]);
    registered(cnd, c[2]);
    let at = stream.received();
    until(Duration::from_secs(30), "the stream flowing again", || {
        Ok(stream.received() > at + 20_000)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{:?} {:?}\n--- mn ---\n{}\n--- cn ---\n{}",
            current_pair_of(mnd),
            current_pair_of(cnd),
            mnd.log(),
            cnd.log()
        )
    });
    let pairs_after = (current_pair_of(mnd).unwrap(), current_pair_of(cnd).unwrap());
    let via_ha_after = tunnelled(ha1) + tunnelled(ha2);
    let gap = gaps_ms(&stream, jumped);
    let result = stream.finish(Duration::from_secs(15));
    assert!(result.error.is_none(), "{result:?}");
    assert_eq!(result.received, result.sent, "every byte, in order");
    // Each side left its old care-of address for its new one...
    assert_eq!(pairs_after.0.0, m[2], "{pairs_after:?}");
    assert_eq!(pairs_after.1.0, c[2], "{pairs_after:?}");
    // ... and the recovery went through a home agent: after a break-before-make jump
    // each side knows only the other's gone care-of address and its home address, so
    // the first packet that reaches the other side (Update Request or probe) goes
    // through the other's home agent. Whether REAP then stays on a home-address pair
    // or moves to the new direct pair varies from run to run (printed).
    assert!(
        via_ha_after > via_ha_before,
        "home agents carried {via_ha_before} -> {via_ha_after}"
    );
    let to_home = |d: &Daemon, peer_home: Ipv6Addr| {
        d.contexts().unwrap()[0]["events"]
            .as_array()
            .map(|v| {
                v.iter().any(|e| {
                    e["event"] == "path_changed"
                        && e["unix_us"].as_u64().is_some_and(|t| t >= jumped_us)
                        && e["detail"]["to"]["remote"] == peer_home.to_string()
                })
            })
            .unwrap_or(false)
    };
    let home_pair_used = to_home(mnd, c[0]) || to_home(cnd, m[0]);
    println!(
        "{}",
        serde_json::json!({
            "scenario": "double jump, Shim6 route optimisation on both sides",
            "pairs_before": format!("{pairs_before:?}"),
            "pairs_after": format!("{pairs_after:?}"),
            "home_address_pair_used": home_pair_used,
            "home_agent_packets": via_ha_after - via_ha_before,
            "interruption_ms": gap.0,
            "baseline_gap_ms": gap.1,
            "bytes": result.received,
        })
    );
}
