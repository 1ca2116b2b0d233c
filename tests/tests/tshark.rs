//! tshark as an independent decoder of what `shim6-wire` emits.
//!
//! One IPv6 packet of every Shim6 control message type, with every option, plus a
//! payload-extension-header packet carrying TCP, go into a pcap that `tshark` decodes. The
//! decode must agree with the values we emitted. See `docs/tshark.md` for the dissector
//! defect this test detects and how each assertion depends on it.
//!
//! Without tshark the test prints `SKIPPED` and passes, unless `SHIM6_REQUIRE_TOOLS=1`
//! (set by `./test.sh`, which installs tshark), where a missing tshark is a failure.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use shim6_tests::samples::{
    DST, SRC, WORKED_I1, control_messages, ipv6, mobility_messages, payload_packet,
};
use shim6_tests::{pcap, tshark};
use shim6_wire::shim6::option::Repr as Opt;
use shim6_wire::shim6::probe::ProbeRecord;
use shim6_wire::shim6::update::{UpdateAcknowledgement, UpdateRequest};
use shim6_wire::shim6::{ContextTag, IP_PROTO_SHIM6, Message};

/// What tshark's dissector does with Shim6 control messages (docs/tshark.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dissector {
    /// Reads every field where RFC 5533 §5.3 puts it.
    Correct,
    /// Reads control-message fields from octet 3 on one octet early (Wireshark 4.0–4.4).
    OneOctetEarly,
}

/// The pcap goes to a per-process file under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("{name}-{}.pcap", std::process::id()))
}

fn decode(name: &str, packets: &[Vec<u8>]) -> Vec<tshark::Frame> {
    let path = scratch(name);
    pcap::write(&path, packets).unwrap();
    let frames = tshark::decode(&path).unwrap_or_else(|e| panic!("tshark on {path:?}: {e:?}"));
    assert_eq!(frames.len(), packets.len(), "tshark dropped frames");
    let _ = std::fs::remove_file(&path);
    frames
}

fn tshark_available() -> bool {
    match tshark::version() {
        Some(v) => {
            println!("using {v}");
            true
        }
        None if std::env::var("SHIM6_REQUIRE_TOOLS").as_deref() == Ok("1") => {
            panic!("tshark is not installed but SHIM6_REQUIRE_TOOLS=1 (./test.sh installs it)")
        }
        None => {
            println!("SKIPPED: tshark is not installed (apt-get install tshark)");
            false
        }
    }
}

/// Learns the dissector's behaviour from the digest's worked I1, whose bytes follow the
/// RFC figure: checksum 0x562b at octets 4–5.
fn detect(frame: &tshark::Frame) -> Dissector {
    assert_eq!(frame.one("shim6.type"), "1", "{}", frame.dump());
    assert_eq!(
        frame.one("shim6.checksum.status"),
        "1",
        "worked I1 checksum not good"
    );
    match frame.one("shim6.checksum").as_str() {
        "0x562b" => Dissector::Correct,
        "0x0056" => Dissector::OneOctetEarly,
        other => panic!("tshark reads the worked I1's checksum as {other}: unknown dissector"),
    }
}

/// The context tags tshark shows, as 12 hex digits with the R bit cleared. The tag is an
/// unfiltered text item, so its raw form (`-x`: `[hex, offset, length, mask, type]`) is
/// where its octets are; the hex string is the only 12-hex-digit member.
fn tags(frame: &tshark::Frame) -> Vec<String> {
    frame
        .all("shim6.ct_raw")
        .into_iter()
        .filter(|s| s.len() == 12 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|s| {
            let v = u64::from_str_radix(&s, 16).unwrap() & ContextTag::MAX.value();
            format!("{v:012x}")
        })
        .collect()
}

fn bytes_field(frame: &tshark::Frame, name: &str) -> Vec<String> {
    frame
        .all(name)
        .into_iter()
        .map(|s| s.replace(':', ""))
        .collect()
}

fn u32s(v: impl IntoIterator<Item = u32>) -> Vec<String> {
    v.into_iter().map(|x| x.to_string()).collect()
}

fn addrs(frame: &tshark::Frame, name: &str) -> Vec<Ipv6Addr> {
    frame.all(name).iter().map(|s| s.parse().unwrap()).collect()
}

/// The fixed (type-specific) fields tshark decodes, checked against the message.
fn check_fixed_fields(msg: &Message, f: &tshark::Frame) {
    let t = |x: ContextTag| format!("{:012x}", x.value());
    let ctx = format!("{msg}\n{}", f.dump());
    match msg {
        Message::I1(m) => {
            assert_eq!(tags(f), [t(m.initiator_context_tag)], "{ctx}");
            assert_eq!(f.all("shim6.inonce"), u32s([m.initiator_nonce]), "{ctx}");
        }
        Message::R1(m) => {
            assert_eq!(f.all("shim6.inonce"), u32s([m.initiator_nonce]), "{ctx}");
            assert_eq!(f.all("shim6.rnonce"), u32s([m.responder_nonce]), "{ctx}");
        }
        Message::I2(m) => {
            assert_eq!(tags(f), [t(m.initiator_context_tag)], "{ctx}");
            assert_eq!(f.all("shim6.inonce"), u32s([m.initiator_nonce]), "{ctx}");
            assert_eq!(f.all("shim6.rnonce"), u32s([m.responder_nonce]), "{ctx}");
        }
        Message::R2(m) => {
            assert_eq!(tags(f), [t(m.responder_context_tag)], "{ctx}");
            assert_eq!(f.all("shim6.inonce"), u32s([m.initiator_nonce]), "{ctx}");
        }
        Message::R1bis(m) => {
            assert_eq!(tags(f), [t(m.packet_context_tag)], "{ctx}");
            assert_eq!(f.all("shim6.rnonce"), u32s([m.responder_nonce]), "{ctx}");
        }
        Message::I2bis(m) => {
            assert_eq!(
                tags(f),
                [t(m.initiator_context_tag), t(m.packet_context_tag)],
                "{ctx}"
            );
            assert_eq!(f.all("shim6.inonce"), u32s([m.initiator_nonce]), "{ctx}");
            assert_eq!(f.all("shim6.rnonce"), u32s([m.responder_nonce]), "{ctx}");
        }
        // The dissector files the Request Nonce under shim6.rnonce.
        Message::UpdateRequest(UpdateRequest {
            receiver_context_tag,
            request_nonce,
            ..
        })
        | Message::UpdateAcknowledgement(UpdateAcknowledgement {
            receiver_context_tag,
            request_nonce,
            ..
        }) => {
            assert_eq!(tags(f), [t(*receiver_context_tag)], "{ctx}");
            assert_eq!(f.all("shim6.rnonce"), u32s([*request_nonce]), "{ctx}");
        }
        Message::Keepalive(m) => assert_eq!(tags(f), [t(m.receiver_context_tag)], "{ctx}"),
        Message::Probe(m) => {
            assert_eq!(tags(f), [t(m.receiver_context_tag)], "{ctx}");
            assert_eq!(f.one("shim6.psent"), m.sent.len().to_string(), "{ctx}");
            assert_eq!(f.one("shim6.precvd"), m.received.len().to_string(), "{ctx}");
            assert_eq!(f.one("shim6.reap"), m.state.to_bits().to_string(), "{ctx}");
            let records: Vec<&ProbeRecord> = m.sent.iter().chain(&m.received).collect();
            let srcs: Vec<Ipv6Addr> = records.iter().map(|r| r.src).collect();
            let dsts: Vec<Ipv6Addr> = records.iter().map(|r| r.dst).collect();
            assert_eq!(addrs(f, "shim6.psrc"), srcs, "{ctx}");
            assert_eq!(addrs(f, "shim6.pdst"), dsts, "{ctx}");
            assert_eq!(
                f.all("shim6.pnonce"),
                u32s(records.iter().map(|r| r.nonce)),
                "{ctx}"
            );
            let data: Vec<String> = records
                .iter()
                .map(|r| format!("{:#010x}", r.data))
                .collect();
            assert_eq!(f.all("shim6.pdata"), data, "{ctx}");
        }
        // Type 68 is unknown to tshark: nothing type-specific to compare.
        Message::Error(_) => {}
    }
}

/// Every option tshark decodes, checked against the message's options.
fn check_options(msg: &Message, f: &tshark::Frame) {
    let ctx = format!("{msg}\n{}", f.dump());
    let opts = msg.options();
    let types: Vec<String> = opts
        .iter()
        .map(|o| u16::from(o.option_type()).to_string())
        .collect();
    assert_eq!(f.all("shim6.opt.type"), types, "option types, {ctx}");
    assert!(
        f.all("shim6.opt.critical").iter().all(|c| c == "0"),
        "{ctx}"
    );
    let mut validators = vec![];
    let mut pds = vec![];
    let mut sigs = vec![];
    let mut generations = vec![];
    let mut methods = vec![];
    let mut locators = vec![];
    let mut flags = vec![];
    let mut prios = vec![];
    let mut weights = vec![];
    let mut sulids = vec![];
    let mut rulids = vec![];
    let mut fiis = vec![];
    for o in opts {
        match o {
            Opt::ResponderValidator(v) => validators.push(hexs(v)),
            Opt::CgaParameterDataStructure(v) => pds.push(hexs(v)),
            Opt::CgaSignature(v) => sigs.push(hexs(v)),
            Opt::LocatorList(l) => {
                generations.push(l.generation.to_string());
                for loc in &l.locators {
                    methods.push(u8::from(loc.method).to_string());
                    locators.push(loc.address);
                }
            }
            Opt::LocatorPreferences(p) => {
                generations.push(p.generation.to_string());
                for e in &p.preferences {
                    flags.push(e.flags.to_string());
                    prios.push(e.priority.to_string());
                    weights.push(e.weight.to_string());
                }
            }
            Opt::UlidPair(u) => {
                sulids.push(u.sender);
                rulids.push(u.receiver);
            }
            Opt::ForkedInstanceId(v) => fiis.push(v.to_string()),
            // tshark knows neither the Keepalive Timeout option (RFC 5534) nor unknown
            // ones; their type, C bit and length were compared above.
            Opt::KeepaliveTimeout(_) | Opt::Unknown { .. } => {}
        }
    }
    assert_eq!(bytes_field(f, "shim6.validator"), validators, "{ctx}");
    assert_eq!(
        bytes_field(f, "shim6.cga_parameter_data_structure"),
        pds,
        "{ctx}"
    );
    assert_eq!(bytes_field(f, "shim6.cga_signature"), sigs, "{ctx}");
    assert_eq!(f.all("shim6.opt.loclist"), generations, "{ctx}");
    assert_eq!(f.all("shim6.opt.verif_method"), methods, "{ctx}");
    assert_eq!(addrs(f, "shim6.locator"), locators, "{ctx}");
    assert_eq!(f.all("shim6.loc.flags"), flags, "{ctx}");
    assert_eq!(f.all("shim6.loc.prio"), prios, "{ctx}");
    assert_eq!(f.all("shim6.loc.weight"), weights, "{ctx}");
    assert_eq!(addrs(f, "shim6.sulid"), sulids, "{ctx}");
    assert_eq!(addrs(f, "shim6.rulid"), rulids, "{ctx}");
    assert_eq!(f.all("shim6.opt.fii"), fiis, "{ctx}");
}

fn hexs(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

/// The common header, as any dissector version reads it: next header, length, P, type and
/// the checksum verified over the whole header.
fn check_common(msg: &Message, wire: &[u8], f: &tshark::Frame) {
    let ctx = format!("{msg}\n{}", f.dump());
    assert!(f.protocols().ends_with(":shim6"), "{ctx}");
    assert_eq!(f.one("shim6.nxt"), "59", "{ctx}");
    assert_eq!(
        f.one("shim6.len"),
        (wire.len() / 8 - 1).to_string(),
        "{ctx}"
    );
    assert_eq!(f.one("shim6.p"), "0", "{ctx}");
    assert_eq!(
        f.one("shim6.type"),
        u8::from(msg.message_type()).to_string(),
        "{ctx}"
    );
    assert_eq!(
        f.one("shim6.checksum.status"),
        "1",
        "checksum not good: {ctx}"
    );
    assert!(
        !f.all("_ws.expert.message")
            .iter()
            .any(|m| m.contains("hecksum")),
        "{ctx}"
    );
}

#[test]
fn tshark_decodes_every_control_message() {
    if !tshark_available() {
        return;
    }
    let msgs = control_messages();
    let wires: Vec<Vec<u8>> = msgs.iter().map(|m| m.to_vec().unwrap()).collect();
    // Our own parser reads back what we hand to tshark.
    for (m, w) in msgs.iter().zip(&wires) {
        assert_eq!(&Message::parse_bytes(w).unwrap(), m);
    }

    let mut packets = vec![ipv6(IP_PROTO_SHIM6, &WORKED_I1)];
    packets.extend(wires.iter().map(|w| ipv6(IP_PROTO_SHIM6, w)));
    let frames = decode("shim6-control", &packets);
    let mode = detect(&frames[0]);
    println!("dissector: {mode:?}");

    for ((msg, wire), f) in msgs.iter().zip(&wires).zip(&frames[1..]) {
        check_common(msg, wire, f);
        if mode == Dissector::Correct {
            check_fixed_fields(msg, f);
            check_options(msg, f);
            assert!(f.problems().is_empty(), "{msg}: {:?}", f.problems());
        }
    }

    if mode == Dissector::OneOctetEarly {
        // The dissector reads field octet k of RFC 5533 §5.3 from octet k − 1, from the
        // checksum on. Handing it each message with octet 3 (Reserved1 | S) removed lines
        // its field table up with our bytes again, so every fixed field it reads must then
        // equal the value we emitted: that checks our field order and sizes against its
        // table. The checksum of such a copy no longer verifies, which is why
        // check_common ran on the untouched messages above.
        let copies: Vec<Vec<u8>> = wires
            .iter()
            .zip(&msgs)
            .map(|(w, m)| {
                // Reserved1 and S are zero on transmit; the Error message keeps its code
                // there, which tshark does not know anyway.
                assert!(w[3] == 0 || matches!(m, Message::Error(_)), "{m}");
                let mut c = w.clone();
                c.remove(3);
                // Keep the length Hdr Ext Len states, or the dissector's checksum pass
                // runs off the end before it reads any field.
                c.push(0);
                ipv6(IP_PROTO_SHIM6, &c)
            })
            .collect();
        let shifted = decode("shim6-control-shifted", &copies);
        for (msg, f) in msgs.iter().zip(&shifted) {
            assert_eq!(
                f.one("shim6.type"),
                u8::from(msg.message_type()).to_string()
            );
            check_fixed_fields(msg, f);
        }
        // Messages without options and with no variable part decode without any problem
        // even on this dissector: nothing in them depends on where it starts options.
        for ((msg, f), wire) in msgs.iter().zip(&frames[1..]).zip(&wires) {
            let fixed_only =
                msg.options().is_empty() && !matches!(msg, Message::Probe(_) | Message::Error(_));
            if fixed_only {
                assert!(f.problems().is_empty(), "{msg}: {:?}", f.problems());
                assert_eq!(wire.len(), 16, "{msg}");
            }
        }
        println!(
            "tshark's Shim6 dissector reads control fields one octet early (docs/tshark.md): \
             options were not compared"
        );
    }
}

#[test]
fn tshark_decodes_the_payload_extension_header() {
    if !tshark_available() {
        return;
    }
    let frames = decode("shim6-payload", &[payload_packet()]);
    let f = &frames[0];
    assert_eq!(f.protocols(), "raw:ipv6:shim6:tcp:data", "{}", f.dump());
    assert_eq!(f.one("shim6.p"), "1");
    assert_eq!(f.one("shim6.nxt"), "6");
    assert_eq!(f.one("shim6.len"), "0");
    assert_eq!(tags(f), ["0123456789ab"], "{}", f.dump());
    assert_eq!(f.one("tcp.srcport"), "40000");
    assert_eq!(f.one("tcp.dstport"), "443");
    assert_eq!(f.one("tcp.len"), "5");
    assert!(f.problems().is_empty(), "{:?}", f.problems());
}

/// IPv6 Next Header of the Mobility Header (RFC 6275 §6.1).
const IPPROTO_MH: u8 = 135;

#[test]
fn tshark_decodes_the_mobility_header() {
    if !tshark_available() {
        return;
    }
    // Binding Update from SRC to DST, Binding Acknowledgement back (samples.rs). tshark's
    // MIPv6 dissector decodes every field of both. It does not verify the Mobility Header
    // checksum, so the pseudo-header checksum is checked by our own parser on the same
    // bytes first.
    let m = mobility_messages();
    for (i, b) in m.iter().enumerate() {
        let (s, d) = if i == 0 { (SRC, DST) } else { (DST, SRC) };
        let p = shim6_wire::mip6::Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(&s, &d));
    }
    let mut ba = ipv6(IPPROTO_MH, &m[1]);
    // The acknowledgement travels from the home agent back to the mobile node.
    ba[8..24].copy_from_slice(&DST.octets());
    ba[24..40].copy_from_slice(&SRC.octets());
    let frames = decode("mip6", &[ipv6(IPPROTO_MH, &m[0]), ba]);
    for f in &frames {
        assert_eq!(f.protocols(), "raw:ipv6:mipv6", "{}", f.dump());
        assert!(f.problems().is_empty(), "{:?}", f.problems());
        assert_eq!(f.one("mip6.proto"), "59");
    }
    let (bu, ba) = (&frames[0], &frames[1]);
    assert_eq!(bu.one("mip6.mhtype"), "5");
    assert_eq!(bu.one("mip6.hlen"), (m[0].len() / 8 - 1).to_string());
    assert_eq!(bu.one("mip6.bu.seqnr"), "7");
    assert_eq!(bu.one("mip6.bu.a_flag"), "1");
    assert_eq!(bu.one("mip6.bu.h_flag"), "1");
    assert_eq!(bu.one("mip6.bu.l_flag"), "0");
    assert_eq!(bu.one("mip6.bu.k_flag"), "0");
    assert_eq!(bu.one("mip6.bu.lifetime"), "255");
    assert_eq!(bu.one("mip6.acoa.acoa"), "2001:db8:c0a::1");
    assert_eq!(ba.one("mip6.mhtype"), "6");
    assert_eq!(ba.one("mip6.ba.status"), "0");
    assert_eq!(ba.one("mip6.ba.seqnr"), "7");
    assert_eq!(ba.one("mip6.ba.lifetime"), "255");
    assert_eq!(ba.one("mip6.bra.interval"), "64");
}
