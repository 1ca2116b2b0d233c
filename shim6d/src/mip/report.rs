//! The `bindings` (home agent) and `bul` (mobile node) replies, built from the cores and
//! the driver's I/O counters. Pure functions of their inputs, so that they are tested
//! without sockets.

use std::time::{Duration, Instant};

use mip6::{
    ha::{EntryState, HaStats, HomeAgent},
    mn::{BulState, MnStats, MobileNode},
    packet::Signalling,
};
use serde_json::{Value, json};

/// The driver's own counters (what the cores do not see).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct IoStats {
    /// Packets read from the role's TUN.
    pub tun_rx: u64,
    /// Packets written into it.
    pub tun_tx: u64,
    /// Datagrams read from the protocol-41 raw socket.
    pub tunnel_rx: u64,
    /// Packets sent through the `IPPROTO_RAW` socket.
    pub raw_tx: u64,
    /// Sends or writes that failed.
    pub send_failed: u64,
    /// Packets from the TUN the core did not take (no binding, not a home address,
    /// malformed, hop limit).
    pub tun_dropped: u64,
    /// Protocol-41 datagrams the core dropped.
    pub tunnel_dropped: u64,
}

impl IoStats {
    fn to_json(self) -> Value {
        json!({
            "tun_rx": self.tun_rx,
            "tun_tx": self.tun_tx,
            "tunnel_rx": self.tunnel_rx,
            "raw_tx": self.raw_tx,
            "send_failed": self.send_failed,
            "tun_dropped": self.tun_dropped,
            "tunnel_dropped": self.tunnel_dropped,
        })
    }
}

fn secs_until(t: Option<Instant>, now: Instant) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.saturating_duration_since(now).as_secs_f64())
    })
}

fn signalling(s: Signalling) -> &'static str {
    match s {
        Signalling::Rfc6275 => "rfc6275",
        Signalling::Tunnelled => "tunnelled",
    }
}

/// Every counter of the home agent, by name.
pub fn ha_stats_json(s: &HaStats) -> Value {
    json!({
        "bu_accepted": s.bu_accepted,
        "bu_deregistered": s.bu_deregistered,
        "mh_malformed": s.mh_malformed,
        "mh_unknown_type": s.mh_unknown_type,
        "binding_error_rate_limited": s.binding_error_rate_limited,
        "mh_unexpected": s.mh_unexpected,
        "bu_bad_address": s.bu_bad_address,
        "bu_no_security_association": s.bu_no_security_association,
        "bu_auth_missing": s.bu_auth_missing,
        "bu_unknown_spi": s.bu_unknown_spi,
        "bu_auth_failed": s.bu_auth_failed,
        "bu_replayed": s.bu_replayed,
        "bu_timestamp_missing": s.bu_timestamp_missing,
        "bu_sequence_out_of_window": s.bu_sequence_out_of_window,
        "bu_nonce_with_home": s.bu_nonce_with_home,
        "bu_not_home_registration": s.bu_not_home_registration,
        "bu_not_home_subnet": s.bu_not_home_subnet,
        "bu_no_binding": s.bu_no_binding,
        "bindings_expired": s.bindings_expired,
        "tunnelled_out": s.tunnelled_out,
        "tunnelled_in": s.tunnelled_in,
        "intercept_no_binding": s.intercept_no_binding,
        "intercept_not_tunnelled": s.intercept_not_tunnelled,
        "intercept_hop_limit": s.intercept_hop_limit,
        "intercept_malformed": s.intercept_malformed,
        "reverse_malformed": s.reverse_malformed,
        "reverse_no_binding": s.reverse_no_binding,
        "reverse_wrong_care_of": s.reverse_wrong_care_of,
    })
}

/// BUs refused for want of proof of ownership of the home address (RFC 4285 §5: no
/// option, unknown SPI, no security association, bad authenticator).
pub fn rejected_auth(s: &HaStats) -> u64 {
    s.bu_auth_failed + s.bu_auth_missing + s.bu_unknown_spi + s.bu_no_security_association
}

/// `bindings [--json]`: the Binding Cache (RFC 6275 §10.1) and the counters.
pub fn bindings(ha: &HomeAgent, io: &IoStats, now: Instant) -> (String, Value) {
    let entries: Vec<Value> = ha
        .bindings()
        .map(|b| {
            json!({
                "home_address": b.home_address.to_string(),
                "care_of_address": b.care_of_address.to_string(),
                "sequence": b.sequence,
                "state": match b.state {
                    EntryState::Active => "active",
                    EntryState::Deleted => "deleted",
                },
                "expires_in_s": b.expires.saturating_duration_since(now).as_secs_f64(),
                "spi": b.spi,
                "signalling": signalling(b.signalling),
            })
        })
        .collect();
    let stats = ha.stats();
    let json = json!({
        "role": "home-agent",
        "address": ha.config().address.to_string(),
        "home_prefixes": ha.config().home_prefixes.iter()
            .map(|p| format!("{}/{}", p.prefix.addr, p.prefix.len)).collect::<Vec<_>>(),
        "bindings": entries,
        "rejected_auth": rejected_auth(stats),
        "stats": ha_stats_json(stats),
        "io": io.to_json(),
    });
    let mut text = format!(
        "home agent {} — {} binding(s), {} BU(s) rejected for authentication\n",
        ha.config().address,
        ha.bindings().count(),
        rejected_auth(stats)
    );
    for b in ha.bindings() {
        text.push_str(&format!(
            "{:<40} -> {:<40} seq {:<5} {:<7} {:>6.0} s spi {}\n",
            b.home_address,
            b.care_of_address,
            b.sequence,
            match b.state {
                EntryState::Active => "active",
                EntryState::Deleted => "deleted",
            },
            b.expires.saturating_duration_since(now).as_secs_f64(),
            b.spi
        ));
    }
    text.push_str(&format!(
        "accepted {} deregistered {} auth_failed {} auth_missing {} unknown_spi {} replayed {} \
         seq_out_of_window {} tunnelled out {} in {}",
        stats.bu_accepted,
        stats.bu_deregistered,
        stats.bu_auth_failed,
        stats.bu_auth_missing,
        stats.bu_unknown_spi,
        stats.bu_replayed,
        stats.bu_sequence_out_of_window,
        stats.tunnelled_out,
        stats.tunnelled_in
    ));
    (text, json)
}

fn bul_state(s: BulState) -> String {
    match s {
        BulState::Idle => "idle".into(),
        BulState::Registering => "registering".into(),
        BulState::Registered => "registered".into(),
        BulState::Deregistering => "deregistering".into(),
        BulState::Deregistered => "deregistered".into(),
        BulState::Rejected(st) => format!("rejected({})", u8::from(st)),
    }
}

/// Every counter of the mobile node, by name.
pub fn mn_stats_json(s: &MnStats) -> Value {
    json!({
        "bu_sent": s.bu_sent,
        "bu_retransmitted": s.bu_retransmitted,
        "bu_rate_limited": s.bu_rate_limited,
        "ba_accepted": s.ba_accepted,
        "ba_rejected": s.ba_rejected,
        "ba_auth_failed": s.ba_auth_failed,
        "ba_timestamp_mismatch": s.ba_timestamp_mismatch,
        "ba_stale": s.ba_stale,
        "mh_malformed": s.mh_malformed,
        "tunnelled_out": s.tunnelled_out,
        "tunnelled_in": s.tunnelled_in,
        "tunnel_not_from_home_agent": s.tunnel_not_from_home_agent,
        "outbound_not_registered": s.outbound_not_registered,
    })
}

/// `bul [--json]`: the Binding Update List (RFC 6275 §11.1), the care-of addresses and
/// the counters.
pub fn bul(mn: &MobileNode, io: &IoStats, now: Instant) -> (String, Value) {
    let entries: Vec<Value> = mn
        .binding_update_list()
        .iter()
        .map(|e| {
            json!({
                "home_address": e.home.home_address.to_string(),
                "home_agent": e.home.home_agent.to_string(),
                "spi": e.home.key.spi,
                "state": bul_state(e.state),
                "care_of_address": e.care_of_address.map(|a| a.to_string()),
                "registered_coa": e.registered_coa.map(|a| a.to_string()),
                "sequence": e.sequence,
                "granted_s": e.granted.as_secs_f64(),
                "expires_in_s": secs_until(e.expires, now),
                "refresh_in_s": secs_until(e.refresh_at, now),
                "retransmit_in_s": secs_until(e.retransmit_at, now),
                "timeout_s": e.timeout.as_secs_f64(),
                "unanswered": e.unanswered,
                "ha_reachable": e.ha_reachable,
            })
        })
        .collect();
    let coas: Vec<String> = mn
        .care_of_addresses()
        .iter()
        .map(ToString::to_string)
        .collect();
    let json = json!({
        "role": "mobile-node",
        "care_of_addresses": coas,
        "registered_home_addresses": mn.registered_home_addresses().iter()
            .map(ToString::to_string).collect::<Vec<_>>(),
        "bul": entries,
        "stats": mn_stats_json(mn.stats()),
        "io": io.to_json(),
    });
    let mut text = format!(
        "mobile node — care-of addresses: {}\n",
        if coas.is_empty() {
            "none".to_owned()
        } else {
            coas.join(", ")
        }
    );
    for e in mn.binding_update_list() {
        text.push_str(&format!(
            "{:<40} via {:<40} {:<14} coa {:<40} seq {:<5} lifetime {:.0} s{}\n",
            e.home.home_address,
            e.home.home_agent,
            bul_state(e.state),
            e.registered_coa
                .or(e.care_of_address)
                .map_or("-".to_owned(), |a| a.to_string()),
            e.sequence,
            e.expires
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
                .as_secs_f64(),
            if e.ha_reachable {
                ""
            } else {
                " (home agent unreachable)"
            }
        ));
    }
    let s = mn.stats();
    text.push_str(&format!(
        "bu_sent {} retransmitted {} ba_accepted {} ba_rejected {} tunnelled out {} in {}",
        s.bu_sent,
        s.bu_retransmitted,
        s.ba_accepted,
        s.ba_rejected,
        s.tunnelled_out,
        s.tunnelled_in
    ));
    (text, json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mip6::{
        auth::MnHaKey,
        ha::{HaConfig, HomePrefix, MobileNodeEntry},
        mn::{HomeConfig, MnConfig},
    };
    use std::net::Ipv6Addr;

    const NTP: u64 = 0xe000_0000_0000_0000;

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A home agent and a mobile node exchanging real packets through the sans-IO cores
    /// (tunnelled signalling), then one BU from a node with the wrong key.
    #[allow(clippy::disallowed_methods)] // an arbitrary epoch for the cores
    #[test]
    fn reports_show_the_binding_and_the_rejection() {
        let now = Instant::now();
        let (ha_addr, hoa, coa) = (
            addr("2001:db8:e1::1"),
            addr("2001:db8:1001::100"),
            addr("2001:db8:a1::1"),
        );
        let key = MnHaKey::new(300, vec![7; 16]).unwrap();
        let mut hc = HaConfig::new(ha_addr);
        hc.home_prefixes = vec![HomePrefix {
            prefix: mip6::Prefix::new(addr("2001:db8:1001::"), 64),
            valid_until: None,
        }];
        hc.mobile_nodes = vec![MobileNodeEntry {
            home_address: hoa,
            keys: vec![key.clone()],
        }];
        let mut ha = HomeAgent::new(hc, now, NTP);
        let home = HomeConfig {
            home_address: hoa,
            home_agent: ha_addr,
            key,
            lifetime_units: 105,
        };
        let mut mn = MobileNode::new(MnConfig::new(vec![home.clone()]), now, NTP);
        mn.handle_address_added(now, coa);
        let bu = mn.poll_transmit().expect("a BU");
        assert!(matches!(
            ha.handle_tunnelled(now, &bu.packet),
            mip6::ha::Reverse::Consumed
        ));
        let ba = ha.poll_transmit().expect("a BA");
        assert!(matches!(
            mn.handle_tunnelled(now, &ba.packet),
            mip6::mn::Inbound::Consumed
        ));

        // The attacker: same home address, another key.
        let forged = HomeConfig {
            key: MnHaKey::new(300, vec![9; 16]).unwrap(),
            ..home
        };
        let mut evil = MobileNode::new(MnConfig::new(vec![forged]), now, NTP);
        evil.handle_address_added(now, addr("2001:db8:c::66"));
        let fbu = evil.poll_transmit().unwrap();
        ha.handle_tunnelled(now, &fbu.packet);

        let io = IoStats {
            tun_rx: 3,
            ..IoStats::default()
        };
        let (text, json) = bindings(&ha, &io, now);
        let b = &json["bindings"][0];
        assert_eq!(b["home_address"], hoa.to_string());
        assert_eq!(b["care_of_address"], coa.to_string(), "binding unchanged");
        assert_eq!(b["state"], "active");
        assert_eq!(json["rejected_auth"], 1);
        assert_eq!(json["stats"]["bu_auth_failed"], 1);
        assert_eq!(json["stats"]["bu_accepted"], 1);
        assert_eq!(json["io"]["tun_rx"], 3);
        assert!(text.contains("1 binding(s), 1 BU(s) rejected"), "{text}");

        let (text, json) = bul(&mn, &IoStats::default(), now);
        let e = &json["bul"][0];
        assert_eq!(e["state"], "registered");
        assert_eq!(e["registered_coa"], coa.to_string());
        assert_eq!(json["care_of_addresses"][0], coa.to_string());
        assert_eq!(json["registered_home_addresses"][0], hoa.to_string());
        assert_eq!(json["stats"]["ba_accepted"], 1);
        assert!(text.contains("registered"), "{text}");
    }
}
