//! The fuzz seed corpus (`fuzz/corpus/<target>/`) is made from the sample packets that the
//! other tests use, so every seed is a valid input that reaches deep into its parser.
//!
//! `SHIM6_WRITE_CORPUS=1 cargo test -p shim6-tests --test fuzz_corpus` (re)writes the
//! files; without it the test checks that the checked-in corpus is exactly what the
//! samples give, so a change of encoding cannot leave stale seeds behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shim6_tests::samples::{
    HBA_SET_PDS, IPPROTO_TCP, RFC3972_PDS, WORKED_I1, control_messages, hex, ipv6,
    mobility_messages, payload_packet,
};
use shim6_wire::shim6::control::Packet;

/// target -> (file name -> contents)
fn corpus() -> BTreeMap<&'static str, BTreeMap<String, Vec<u8>>> {
    let mut c: BTreeMap<&'static str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let control = c.entry("control_message").or_default();
    control.insert("worked-i1".into(), WORKED_I1.to_vec());
    let mut areas = BTreeMap::new();
    for m in control_messages() {
        let name = m
            .message_type()
            .to_string()
            .to_lowercase()
            .replace(' ', "-");
        let wire = m.to_vec().expect("sample messages emit");
        let p = Packet::new_checked(&wire[..]).expect("sample messages are valid");
        let area = wire[p.options_offset()..].to_vec();
        if !area.is_empty() {
            areas.insert(name.clone(), area);
        }
        control.insert(name, wire);
    }
    c.insert("options", areas);
    let data = c.entry("payload_header").or_default();
    data.insert("tcp-with-payload-header".into(), payload_packet());
    let tcp = &payload_packet()[48..];
    data.insert("tcp-plain".into(), ipv6(IPPROTO_TCP, tcp));
    let mh = c.entry("mobility_header").or_default();
    for (name, m) in ["binding-update", "binding-ack"]
        .into_iter()
        .zip(mobility_messages())
    {
        mh.insert(name.into(), m);
    }
    // Endpoint scripts: op, length, body (fuzz/fuzz_targets/endpoint.rs).
    let step = |op: u8, body: &[u8]| {
        let mut v = vec![op, u8::try_from(body.len()).expect("short step")];
        v.extend_from_slice(body);
        v
    };
    let ep = c.entry("endpoint").or_default();
    ep.insert(
        "establish-then-wait".into(),
        [step(4, &[]), step(3, &[50]), step(3, &[100])].concat(),
    );
    ep.insert(
        "i1-from-peer".into(),
        [step(1, &WORKED_I1), step(3, &[10])].concat(),
    );
    ep.insert(
        "payload-for-unknown-context".into(),
        [step(0, &payload_packet()), step(3, &[10])].concat(),
    );
    ep.insert("tun-packet".into(), step(2, &payload_packet()[..40]));
    let cga = c.entry("cga_params").or_default();
    cga.insert("rfc3972-appendix-a".into(), hex(RFC3972_PDS));
    cga.insert("hba-set-digest-6-2".into(), hex(HBA_SET_PDS));
    c
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn fuzz_seed_corpus_matches_the_samples() {
    let write = std::env::var("SHIM6_WRITE_CORPUS").as_deref() == Ok("1");
    for (target, files) in corpus() {
        let d = dir().join(target);
        if write {
            std::fs::create_dir_all(&d).unwrap();
            for (name, bytes) in &files {
                std::fs::write(d.join(name), bytes).unwrap();
            }
        }
        let mut on_disk: Vec<String> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e} (run with SHIM6_WRITE_CORPUS=1)", d.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let expected: Vec<String> = files.keys().cloned().collect();
        assert_eq!(on_disk, expected, "{target}: run with SHIM6_WRITE_CORPUS=1");
        for (name, bytes) in &files {
            let got = std::fs::read(d.join(name)).unwrap();
            assert_eq!(
                &got, bytes,
                "{target}/{name} is stale: run with SHIM6_WRITE_CORPUS=1"
            );
        }
    }
}
