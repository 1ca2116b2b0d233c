//! MipShim6 route optimisation with care-of addresses the identity does not list (issue
//! 7: "care-of addresses as locators ... so the update is signed"). The mobile node's
//! Shim6 identity is a CGA-compatible HBA set over its home prefix only (RFC 5535 §5,
//! Multi-Prefix P = 1) with its RSA key (`[identity] mode = "cga"`, `key_file`); the
//! visited prefixes are in no set. A care-of address on a visited prefix is therefore
//! advertised with the CGA verification method and covered by a CGA Signature (RFC 5533
//! §5.15.5, §7.2): in I2 for the first one, in the Update Request for the one after the
//! movement (RFC 5533 §10.1). The correspondent (plain Shim6, a pure HBA set) verifies the
//! signature with the public key of the home address's parameters, and REAP moves the
//! context to the direct (care-of, correspondent) pair. A TCP stream from the home
//! address goes on across the movement, every byte in order; the interruption is printed,
//! not asserted.
//!
//! Two runs: the care-of addresses are the visited networks' own `::1` addresses, or
//! (`[mip6] cga_care_of = true`) CGAs the daemon forms on each new prefix with the
//! identity's key (checked against the parameters `bul` shows), the `::1` then being no
//! locator and the CGA of the network left being deleted.
//!
//! The rejection of a badly signed list is the sans-IO tier's
//! (`shim6-proto` scenarios `forged_update_request_is_rejected_and_retransmitted` and
//! `cga_compatible_hba_non_member_locator_needs_a_good_signature`); here the
//! correspondent's `bad-signature` counter stays at 0.

use std::{
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use serde_json::Value;
use shim6_tests::{
    daemons::{self, Bins, Daemon, current_pair_of, until},
    mip_testbed::{
        self, CN_NETS, KEY, MN_NETS, Run, SPI, Visited, add_address, establish, gaps_ms, ha_addr,
        stream_through_tunnel, tunnelled_after_movement, until_direct_path,
    },
    testbed::doc_addr,
};

/// How the correspondent's first context verified peer locator `a` (`cat * --json`,
/// `peer_locators[].verification`: "ULID", "HBA" or "CGA"); `None` when not listed.
fn peer_verification(d: &Daemon, a: Ipv6Addr) -> Option<String> {
    let c = d.contexts().ok()?.into_iter().next()?;
    c["peer_locators"]
        .as_array()?
        .iter()
        .find(|l| l["address"] == a.to_string())
        .and_then(|l| l["verification"].as_str().map(str::to_owned))
}

/// How the mobile node advertises local locator `a` (`local_locators[].verification`).
fn local_verification(d: &Daemon, a: Ipv6Addr) -> Option<String> {
    let c = d.contexts().ok()?.into_iter().next()?;
    c["local_locators"]
        .as_array()?
        .iter()
        .find(|l| l["address"] == a.to_string())
        .and_then(|l| l["verification"].as_str().map(str::to_owned))
}

fn bad_signatures(d: &Daemon) -> u64 {
    d.json("stats").unwrap()["core"]["drops"]["bad-signature"]
        .as_u64()
        .unwrap_or(0)
}

fn signatures_made(d: &Daemon) -> u64 {
    d.json("stats").unwrap()["core"]["signatures_made"]
        .as_u64()
        .unwrap_or(0)
}

fn pretty(v: &[Value]) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The `/64` of `a`.
fn prefix_of(a: Ipv6Addr) -> [u8; 8] {
    let mut p = [0u8; 8];
    p.copy_from_slice(&a.octets()[..8]);
    p
}

/// The care-of address the mobile node registered on `net` (bounded wait): the
/// testbed's `::1` there, or with `cga_care_of` the CGA the daemon formed on its prefix,
/// checked against the parameters `bul` shows: a CGA (RFC 3972 §5) of the identity's
/// public key.
fn registered_on(mnd: &Daemon, net: Visited, cga_care_of: bool, key: &[u8]) -> Ipv6Addr {
    let mut coa = None;
    until(
        Duration::from_secs(15),
        &format!("registered on {}", net.net_prefix()),
        || {
            let b = mnd.json("bul")?;
            let Some(a) = b["bul"][0]["registered_coa"]
                .as_str()
                .and_then(|s| s.parse::<Ipv6Addr>().ok())
            else {
                return Ok(false);
            };
            let on_net = prefix_of(a) == prefix_of(net.address());
            if on_net && (a == net.address()) != cga_care_of {
                coa = Some(a);
            }
            Ok(coa.is_some())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{:?}\n{}", mnd.ctl("bul --json"), mnd.log()));
    let coa = coa.unwrap();
    if cga_care_of {
        let b = mnd.json("bul").unwrap();
        let params = b["care_of_cgas"]
            .as_array()
            .and_then(|v| v.iter().find(|c| c["address"] == coa.to_string()))
            .and_then(|c| c["params"].as_str())
            .unwrap_or_else(|| panic!("{coa} not among the formed CGAs: {b}"));
        let params: Vec<u8> = (0..params.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&params[i..i + 2], 16).unwrap())
            .collect();
        let v = cga::verify(&coa, &params).unwrap_or_else(|e| panic!("{coa}: {e}"));
        assert_eq!(v.kind, cga::AddressKind::Cga);
        let pds = shim6_wire::cga::Packet::new_checked(&params[..]).unwrap();
        assert_eq!(pds.public_key(), key, "the identity's key");
    }
    coa
}

#[test]
fn movement_to_an_unknown_prefix_is_signed_and_switches_to_the_direct_path() {
    movement(false);
}

/// The same with `[mip6] cga_care_of`: the daemon forms a CGA on each visited prefix
/// (the identity's key, Sec 0) and uses it, not the network's `::1`, as care-of address
/// and locator; the one of the network it left goes.
#[test]
fn care_of_cgas_formed_on_new_prefixes_carry_the_movement() {
    movement(true);
}

fn movement(cga_care_of: bool) {
    let bins = Bins::locate().unwrap();
    let tag = format!(
        "mic{}{}",
        if cga_care_of { 'f' } else { 'g' },
        std::process::id() % 10000
    );
    let mut r = Run::new(&tag).expect("bed");
    let (bed, dir) = (&r.bed, r.dir.clone());
    r.host_dir("mn").unwrap();
    r.host_dir("cn").unwrap();
    // The mobile node's identity: the home prefix only, with a key.
    let mn_set = mip_testbed::cga_compatible_set(
        &[doc_addr(0x1001, 0)],
        &dir.join("mn/hba.json"),
        &dir.join("mn/key.pem"),
    )
    .unwrap();
    let hoa = mn_set[0];
    let key = cga::PrivateKey::load(&dir.join("mn/key.pem"))
        .unwrap()
        .public_key()
        .unwrap()
        .der()
        .to_vec();
    let cnu =
        daemons::hba_set(&bins, &[CN_NETS[0].net_prefix()], &dir.join("cn/hba.json")).unwrap()[0];
    bed.detach(&bed.cn, CN_NETS[0]).unwrap();
    add_address(&bed.cn, cnu, CN_NETS[0].dev).unwrap();

    let shim6 = "[reap]\nsend_timeout = 3\n[resend]\nenabled = true\n";
    let ha1 = mip_testbed::ha_section(1, &[(hoa, SPI, KEY)]);
    r.daemons
        .push(mip_testbed::daemon(&bins.shim6d, &bed.ha1, &dir, "ha1", &ha1).unwrap());
    let mn = format!(
        "{shim6}[interfaces]\nexclude = [\"mip6\"]\n{}",
        mip_testbed::mn_section(&[(hoa, ha_addr(1), SPI, KEY)]).replacen(
            "role = \"mobile-node\"\n",
            &format!("role = \"mobile-node\"\ncga_care_of = {cga_care_of}\n"),
            1
        )
    );
    let identity = format!("mode = \"cga\"\nkey_file = \"key.pem\"\nulids = [\"{hoa}\"]");
    r.daemons
        .push(mip_testbed::daemon_with(&bins.shim6d, &bed.mn, &dir, "mn", &identity, &mn).unwrap());
    r.daemons
        .push(mip_testbed::daemon(&bins.shim6d, &bed.cn, &dir, "cn", shim6).unwrap());
    let (ha, mnd, cnd) = (&r.daemons[0], &r.daemons[1], &r.daemons[2]);
    // Care-of addresses on visited prefixes in no set: the testbed's `::1`, or the CGAs.
    let coa1 = registered_on(mnd, MN_NETS[0], cga_care_of, &key);
    let params = mnd.json("params").unwrap();
    assert_eq!(params["core"]["signing_key"], true, "{params}");

    // A stream from the home address, through the home agent (no context yet).
    let stream = stream_through_tunnel(&bed.mn, &bed.cn, hoa, cnu, ha);

    // The context, home address as ULID; its care-of locator is signed in I2.
    establish(mnd, cnd, cnu);
    until(
        Duration::from_secs(15),
        "the context on the care-of pair",
        || Ok(current_pair_of(mnd)? == (coa1, cnu)),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}\n{}",
            pretty(&mnd.contexts().unwrap_or_default()),
            mnd.log(),
            cnd.log()
        )
    });
    assert_eq!(
        peer_verification(cnd, coa1).as_deref(),
        Some("CGA"),
        "{}",
        pretty(&cnd.contexts().unwrap())
    );
    assert_eq!(local_verification(mnd, coa1).as_deref(), Some("CGA"));
    let signed = signatures_made(mnd);
    assert!(signed >= 1, "the first list was signed");

    // Move to the second visited network: a prefix the identity has never heard of.
    let moved = Instant::now();
    bed.attach(&bed.mn, MN_NETS[1]).unwrap();
    bed.detach(&bed.mn, MN_NETS[0]).unwrap();
    let coa2 = registered_on(mnd, MN_NETS[1], cga_care_of, &key);
    let direct_at = until_direct_path(mnd, cnd, (coa2, cnu), moved, Duration::from_secs(30));
    // The correspondent took the new list: verified by its CGA Signature.
    until(
        Duration::from_secs(10),
        "the correspondent's list updated",
        || {
            Ok(peer_verification(cnd, coa2).as_deref() == Some("CGA")
                && peer_verification(cnd, coa1).is_none())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", pretty(&cnd.contexts().unwrap_or_default())));
    // The correspondent's side follows once its REAP hears from the new pair; the
    // updated list can come first.
    until(
        Duration::from_secs(15),
        "the correspondent's context on the direct pair",
        || Ok(current_pair_of(cnd)? == (cnu, coa2)),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", pretty(&cnd.contexts().unwrap_or_default())));
    assert_eq!(local_verification(mnd, coa2).as_deref(), Some("CGA"));
    assert!(
        signatures_made(mnd) > signed,
        "the new list was signed: {signed} -> {}",
        signatures_made(mnd)
    );
    let home = peer_verification(cnd, hoa);
    assert!(
        matches!(home.as_deref(), None | Some("ULID" | "HBA")),
        "the home address is bound by HBA, not signed: {home:?}"
    );
    assert_eq!(bad_signatures(cnd), 0, "no list was refused");
    if cga_care_of {
        // The network's own address is no locator; the CGA of the network left is gone.
        let base = MN_NETS[1].address();
        assert_eq!(local_verification(mnd, base), None);
        assert_eq!(peer_verification(cnd, base), None);
        until(
            Duration::from_secs(5),
            "the old care-of CGA deleted",
            || {
                let out = bed.mn.ip(&["-6", "addr", "show", "dev", MN_NETS[0].dev])?;
                Ok(!out.contains(&coa1.to_string()))
            },
        )
        .unwrap();
    }

    let (t0, t1) = tunnelled_after_movement(&stream, ha, mnd, cnd);
    let gap = gaps_ms(&stream, moved);
    let result = stream.finish(Duration::from_secs(15));
    assert!(result.error.is_none(), "{result:?}");
    assert_eq!(result.received, result.sent, "every byte, in order");
    assert!(t1 - t0 < 5, "the stream left the tunnel: {t0} -> {t1}");
    println!(
        "{}",
        serde_json::json!({
            "scenario": if cga_care_of {
                "movement, care-of CGA formed on the new prefix, CGA-signed Update Request"
            } else {
                "movement to a prefix outside the HBA set, CGA-signed Update Request"
            },
            "interruption_ms": gap.0,
            "baseline_gap_ms": gap.1,
            "direct_path_after_ms": direct_at.as_secs_f64() * 1000.0,
            "signatures_made": signatures_made(mnd),
            "bytes": result.received,
        })
    );
}
