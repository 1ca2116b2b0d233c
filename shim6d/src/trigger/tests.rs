use super::*;
use crate::config::{Protocol, TriggerRule};

/// `nft -j -nn list table inet shim6d_trigger` captured on the CI kernel (6.18,
/// nftables 1.0.6) after UDP from `2001:db8:c1::1` port 40001 to `2001:db8:c1::2` port
/// 9999 (8 × 300 octets), from port 40002 to port 53 (3 ×), one ESP packet, and UDP
/// from the peer's port 51000 to our port 53 (4 ×: a DNS server of ours).
const CAPTURED: &str = include_str!("testdata/list_table.json");

const L: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, 1);
const P: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, 2);
const Q: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc2, 0, 0, 0, 0, 2);

/// A client's flow: from an ephemeral port of ours to `port` of the peer.
fn flow(peer: Ipv6Addr, proto: u8, port: Option<u16>, bytes: u64) -> FlowSample {
    served(peer, proto, port.map(|_| 40000), port, bytes)
}

/// A flow with both ports given.
fn served(
    peer: Ipv6Addr,
    proto: u8,
    local_port: Option<u16>,
    port: Option<u16>,
    bytes: u64,
) -> FlowSample {
    FlowSample {
        key: FlowKey {
            local: L,
            peer,
            proto,
            port,
        },
        local_port,
        packets: bytes.div_ceil(100),
        bytes,
    }
}

fn decider() -> Decider {
    Decider::new(Config::default().trigger, Duration::from_secs(600))
}

fn pairs(t: &[Triggered]) -> Vec<UlidPair> {
    t.iter().map(|t| t.pair).collect()
}

#[test]
fn captured_table_parses_to_flows() {
    let doc: Value = serde_json::from_str(CAPTURED).unwrap();
    let mut flows = parse_flows(&doc).unwrap();
    flows.sort_by_key(|f| (f.key, f.local_port));
    let with_packets = |f: FlowSample, packets: u64| FlowSample { packets, ..f };
    assert_eq!(
        flows,
        [
            with_packets(served(P, 17, Some(40002), Some(53), 1044), 3),
            with_packets(served(P, 17, Some(40001), Some(9999), 2784), 8),
            with_packets(served(P, 17, Some(53), Some(51000), 1392), 4),
            with_packets(served(P, 50, None, None, 140), 1),
        ]
    );
    // And the default policy on it: the 2784-octet UDP flow triggers; DNS never does,
    // whichever side port 53 is on (1392 octets would not pass anyway: see below).
    let t = decider().observe(Instant::now(), &flows);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].flow.port, Some(9999));
    assert_eq!(t[0].reason, Reason::Bytes(2784));
}

#[test]
fn malformed_listings_are_errors() {
    let bad = CAPTURED.replace("40001", "70000");
    let doc: Value = serde_json::from_str(&bad).unwrap();
    let err = parse_flows(&doc).unwrap_err().to_string();
    assert!(err.contains("not a flow key"), "{err}");
    let bad = CAPTURED.replace(
        "\"2001:db8:c1::1\", \"2001:db8:c1::2\", 50",
        "\"x\", \"y\", 50",
    );
    let doc: Value = serde_json::from_str(&bad).unwrap();
    assert!(parse_flows(&doc).is_err());
    // A table without the flows set.
    let doc = serde_json::json!({"nftables": [{"metainfo": {}}]});
    assert!(parse_flows(&doc).unwrap_err().to_string().contains("flows"));
}

#[test]
fn byte_threshold_is_inclusive() {
    let t0 = Instant::now();
    let mut d = decider();
    assert!(d.observe(t0, &[flow(P, 17, Some(9), 2047)]).is_empty());
    let t = d.observe(t0, &[flow(P, 17, Some(9), 2048)]);
    assert_eq!(pairs(&t), [UlidPair::new(L, P)]);
    assert_eq!(t[0].reason, Reason::Bytes(2048));
}

#[test]
fn age_threshold_counts_from_first_sight() {
    let t0 = Instant::now();
    let mut d = decider();
    let f = flow(P, 6, Some(22), 100);
    assert!(d.observe(t0, &[f]).is_empty());
    assert!(d.observe(t0 + Duration::from_secs(59), &[f]).is_empty());
    let t = d.observe(t0 + Duration::from_secs(60), &[f]);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].reason, Reason::Age(Duration::from_secs(60)));
}

#[test]
fn a_flow_the_kernel_forgot_starts_a_new_life() {
    let t0 = Instant::now();
    let mut d = decider();
    let f = flow(P, 6, Some(22), 100);
    assert!(d.observe(t0, &[f]).is_empty());
    // Idle timeout in the kernel: the element is gone at this poll.
    assert!(d.observe(t0 + Duration::from_secs(40), &[]).is_empty());
    assert!(
        d.observe(t0 + Duration::from_secs(70), &[f]).is_empty(),
        "age restarts at 70 s"
    );
    assert_eq!(d.observe(t0 + Duration::from_secs(130), &[f]).len(), 1);
}

#[test]
fn zero_thresholds_turn_a_criterion_off() {
    let t0 = Instant::now();
    let mut c = Config::default().trigger;
    c.bytes = 0;
    let mut d = Decider::new(c, Duration::from_secs(1));
    let big = flow(P, 17, Some(9), 1 << 30);
    assert!(d.observe(t0, &[big]).is_empty(), "bytes off");
    assert_eq!(d.observe(t0 + Duration::from_secs(60), &[big]).len(), 1);
    let mut c = Config::default().trigger;
    c.seconds = Duration::ZERO;
    let mut d = Decider::new(c, Duration::from_secs(1));
    let small = flow(P, 17, Some(9), 10);
    assert!(d.observe(t0, &[small]).is_empty());
    assert!(
        d.observe(t0 + Duration::from_secs(3600), &[small])
            .is_empty(),
        "age off"
    );
}

#[test]
fn dns_never_triggers_by_default_whatever_its_size() {
    let t0 = Instant::now();
    let mut d = decider();
    let dns_udp = flow(P, 17, Some(53), 1 << 20);
    let dns_tcp = flow(P, 6, Some(53), 1 << 20);
    assert!(d.observe(t0, &[dns_udp, dns_tcp]).is_empty());
    assert!(
        d.observe(t0 + Duration::from_secs(3600), &[dns_udp, dns_tcp])
            .is_empty()
    );
    // Another flow to the same peer does trigger the pair.
    let t = d.observe(t0, &[dns_udp, flow(P, 6, Some(443), 4096)]);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].flow.port, Some(443));
}

#[test]
fn always_and_never_rules_by_prefix_protocol_and_port() {
    let t0 = Instant::now();
    let mut c = Config::default().trigger;
    c.rules = vec![
        TriggerRule {
            prefix: "2001:db8:c2::/48".parse().unwrap(),
            port: Some(22),
            protocol: Protocol::Tcp,
            action: Action::Always,
        },
        TriggerRule {
            prefix: "2001:db8:c2::/48".parse().unwrap(),
            port: None,
            protocol: Protocol::Any,
            action: Action::Never,
        },
    ];
    let mut d = Decider::new(c, Duration::from_secs(1));
    // Never: a big flow to the prefix, on another port or protocol.
    assert!(
        d.observe(
            t0,
            &[
                flow(Q, 6, Some(80), 1 << 20),
                flow(Q, 17, Some(22), 1 << 20)
            ]
        )
        .is_empty()
    );
    // Always: the first packet of TCP/22 is enough.
    let t = d.observe(t0, &[flow(Q, 6, Some(22), 60)]);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].reason, Reason::Always);
    // Outside the prefix, the thresholds apply.
    assert!(d.observe(t0, &[flow(P, 6, Some(22), 60)]).is_empty());
}

#[test]
fn responder_only_and_manual_never_initiate() {
    let t0 = Instant::now();
    for mode in [TriggerMode::ResponderOnly, TriggerMode::Manual] {
        let mut c = Config::default().trigger;
        c.mode = mode;
        c.rules.push(TriggerRule {
            prefix: "::/0".parse().unwrap(),
            port: None,
            protocol: Protocol::Any,
            action: Action::Always,
        });
        let mut d = Decider::new(c, Duration::from_secs(1));
        assert!(
            d.observe(t0, &[flow(P, 6, Some(1), 1 << 20)]).is_empty(),
            "{mode:?}"
        );
        // Back to auto (a reload): the flow's age was kept.
        let mut auto = d.config().clone();
        auto.mode = TriggerMode::Auto;
        auto.rules.clear();
        auto.bytes = 0;
        d.set_config(auto);
        assert_eq!(
            d.observe(t0 + Duration::from_secs(60), &[flow(P, 6, Some(1), 1)])
                .len(),
            1
        );
    }
}

#[test]
fn a_pair_is_reported_once_until_its_context_goes() {
    let t0 = Instant::now();
    let mut d = decider();
    let f1 = flow(P, 6, Some(443), 4096);
    let f2 = flow(P, 17, Some(4433), 4096);
    let t = d.observe(t0, &[f1, f2]);
    assert_eq!(t.len(), 1, "two flows, one pair, one report");
    // Pending: not again.
    assert!(d.observe(t0, &[f1, f2]).is_empty());
    d.context_up(UlidPair::new(L, P));
    assert!(d.observe(t0, &[f1, f2]).is_empty(), "has a context");
    d.context_down(UlidPair::new(L, P));
    assert_eq!(
        d.observe(t0, &[f1]).len(),
        1,
        "context gone, flow still big"
    );
}

#[test]
fn a_context_the_peer_started_suppresses_reports() {
    let t0 = Instant::now();
    let mut d = decider();
    d.context_up(UlidPair::new(L, P));
    assert!(d.observe(t0, &[flow(P, 6, Some(443), 1 << 20)]).is_empty());
    // Other local addresses are other pairs.
    let mut other = flow(P, 6, Some(443), 1 << 20);
    other.key.local = Q;
    assert_eq!(pairs(&d.observe(t0, &[other])), [UlidPair::new(Q, P)]);
}

#[test]
fn failed_establishment_waits_retry_after() {
    let t0 = Instant::now();
    let mut d = Decider::new(Config::default().trigger, Duration::from_secs(600));
    let f = flow(P, 6, Some(443), 4096);
    assert_eq!(d.observe(t0, &[f]).len(), 1);
    d.establish_failed(t0 + Duration::from_secs(1), UlidPair::new(L, P));
    assert!(d.observe(t0 + Duration::from_secs(2), &[f]).is_empty());
    assert!(d.observe(t0 + Duration::from_secs(600), &[f]).is_empty());
    assert_eq!(d.observe(t0 + Duration::from_secs(601), &[f]).len(), 1);
}

#[test]
fn table_body_excludes_tun_mark_and_checks_names() {
    let mut o = AccountingOptions::for_daemon(&Config::default());
    let body = o.table_body().unwrap();
    assert!(body.contains("oifname \"shim6\" return"), "{body}");
    assert!(body.contains("iifname \"shim6\" return"), "{body}");
    assert!(body.contains("meta mark 0x51 return"), "{body}");
    assert!(body.contains("timeout 30s"), "{body}");
    o.tun = Some("bad\"name".into());
    assert!(o.table_body().is_err());
    o.tun = None;
    o.fwmark = None;
    let body = o.table_body().unwrap();
    assert!(!body.contains("shim6\""), "{body}");
    assert!(!body.contains("meta mark"), "{body}");
    o.table = "bad-name".into();
    assert!(o.table_body().is_err());
}

#[test]
fn a_never_port_covers_our_own_servers() {
    let t0 = Instant::now();
    let mut d = decider();
    // A DNS server of ours: port 53 is our side; the peer's port is ephemeral.
    let big_dns_served = served(P, 17, Some(53), Some(51000), 1 << 20);
    assert!(d.observe(t0, &[big_dns_served]).is_empty());
    assert!(
        d.observe(t0 + Duration::from_secs(3600), &[big_dns_served])
            .is_empty(),
        "nor by age"
    );
    // The same traffic on another port of ours does trigger.
    let t = d.observe(t0, &[served(P, 17, Some(5353), Some(51000), 1 << 20)]);
    assert_eq!(pairs(&t), [UlidPair::new(L, P)]);
}

#[test]
fn an_always_port_covers_our_own_servers() {
    let t0 = Instant::now();
    let mut c = Config::default().trigger;
    c.rules.insert(
        0,
        TriggerRule {
            prefix: "::/0".parse().unwrap(),
            port: Some(22),
            protocol: Protocol::Tcp,
            action: Action::Always,
        },
    );
    let mut d = Decider::new(c, Duration::from_secs(1));
    // The first packets of a client's SSH session to our server.
    let t = d.observe(t0, &[served(P, 6, Some(22), Some(40022), 60)]);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].reason, Reason::Always);
}

#[test]
fn thresholds_sum_connections_to_one_service_but_not_ruled_out_ones() {
    let t0 = Instant::now();
    let mut d = decider();
    // Three connections to the peer's port 443, 1000 octets each: 3000 together.
    let conns: Vec<FlowSample> = (0..3)
        .map(|i| served(P, 6, Some(40000 + i), Some(443), 1000))
        .collect();
    let t = d.observe(t0, &conns);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].reason, Reason::Bytes(3000));
    assert_eq!(t[0].flow.port, Some(443));
    // A connection a rule takes out adds nothing: our port 53 to the peer's port 443
    // (whatever that is) stays out of the sum.
    let mut d = decider();
    let mixed = [
        served(P, 6, Some(40000), Some(443), 1500),
        served(P, 6, Some(53), Some(443), 1500),
    ];
    assert!(d.observe(t0, &mixed).is_empty(), "1500 of 3000 count");
}
