//! Runs the built `cga-tool` binary: every subcommand, exit codes, JSON fields, key-file
//! permissions, `--force`, Ctrl-C and `--resume`.

use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cga-tool");

/// RFC 3972 Appendix A parameters (digest §6.1) and their address.
const RFC_PARAMS: &str = "89a8a8b2e858d8b8f2633f44d2d4ce9bfe8000000000000000\
305c300d06092a864886f70d0101010500034b003048024100c2c2f137305454f1\
0bd9cea36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c\
3c2382508773c7867f9b3b9e63a09c7bc48f7a54ebefaf0203010001";
const RFC_ADDRESS: &str = "fe80::3c4a:5bf6:ffb4:ca6c";

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cga-tool")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure with the given code and exactly one line on stderr containing `needle`.
fn fails(o: &Output, want: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(code(o), want, "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("cga-tool: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
}

fn json(o: &Output) -> Value {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cga-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn keygen(d: &Path, name: &str) -> PathBuf {
    let k = d.join(name);
    let o = run(&["keygen", "--bits", "1024", "--out", s(&k)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    k
}

#[test]
fn keygen_permissions_and_force() {
    let d = dir("keygen");
    let k = d.join("k.pem");
    let o = run(&["keygen", "--bits", "1024", "--out", s(&k)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("1024-bit"));
    assert_eq!(mode(&k), 0o600);
    let first = std::fs::read(&k).unwrap();
    assert!(first.starts_with(b"-----BEGIN PRIVATE KEY-----"));

    fails(
        &run(&["keygen", "--bits", "1024", "--out", s(&k)]),
        2,
        "--force",
    );
    assert_eq!(std::fs::read(&k).unwrap(), first, "not overwritten");

    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["keygen", "--bits", "1024", "--out", s(&k), "--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(mode(&k), 0o600);
    assert_ne!(std::fs::read(&k).unwrap(), first);

    fails(
        &run(&["keygen", "--bits", "1000", "--out", s(&d.join("x.pem"))]),
        2,
        "1000",
    );
    fails(
        &run(&[
            "keygen",
            "--bits",
            "1024",
            "--out",
            s(&d.join("no/such/dir.pem")),
        ]),
        2,
        "dir.pem",
    );
}

#[test]
fn generate_cga_json_verifies() {
    let d = dir("gen-cga");
    let k = keygen(&d, "k.pem");
    let out = d.join("cga.json");
    let o = run(&[
        "generate",
        "--sec",
        "1",
        "--prefix",
        "2001:db8:1::/64",
        "--prefix",
        "2001:db8:2::/64",
        "--key",
        s(&k),
        "--threads",
        "2",
        "--format",
        "json",
        "--out",
        s(&out),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "the result went to --out");
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["sec"], 1);
    assert_eq!(v["threads"], 2);
    assert!(v["hashes"].as_u64().unwrap() > 0);
    assert!(v["elapsed_s"].as_f64().unwrap() >= 0.0);
    assert!(v["hashes_per_s"].as_f64().unwrap() > 0.0);
    let addrs = v["addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 2, "one CGA per prefix");
    for (e, prefix) in addrs.iter().zip(["2001:db8:1::/64", "2001:db8:2::/64"]) {
        assert_eq!(e["prefix"], prefix);
        let a: Ipv6Addr = e["address"].as_str().unwrap().parse().unwrap();
        let params = e["params"].as_str().unwrap();
        // The library agrees, and so do both forms of --params.
        let bytes: Vec<u8> = (0..params.len() / 2)
            .map(|i| u8::from_str_radix(&params[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let verified = cga::verify_cga(&a, &bytes).unwrap();
        assert_eq!(verified.sec, cga::Sec::ONE);
        assert_eq!(verified.kind, cga::AddressKind::Cga);
        let o = run(&["verify", "--address", &a.to_string(), "--params", params]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).starts_with("valid: "));
        let o = run(&[
            "verify",
            "--address",
            &a.to_string(),
            "--params",
            &format!("@{}", s(&out)),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // The same key and modifier serve both prefixes (RFC 3972 §4).
    assert_eq!(
        addrs[0]["params"].as_str().unwrap()[..32],
        addrs[1]["params"].as_str().unwrap()[..32]
    );
}

#[test]
fn done_when_command_prints_a_verifiable_address() {
    // The issue's acceptance command, with no key: one is generated (and a note says
    // it is not kept).
    let o = run(&["generate", "--sec", "1", "--prefix", "2001:db8:1::/64"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("--key-out"));
    let text = stdout(&o);
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let first = lines.next().unwrap();
    let addr = first.split_whitespace().next().unwrap();
    assert!(first.ends_with("2001:db8:1::/64"), "{first}");
    let params = lines
        .next()
        .unwrap()
        .trim()
        .strip_prefix("params ")
        .unwrap();
    let o = run(&[
        "verify",
        "--address",
        addr,
        "--params",
        params,
        "--format",
        "json",
    ]);
    let v = json(&o);
    assert_eq!(v["valid"], true);
    assert_eq!(v["sec"], 1);
    assert_eq!(v["kind"], "CGA");
}

#[test]
fn generate_hba_sets() {
    let d = dir("gen-hba");
    let out = d.join("hba.json");
    let prefixes = ["2001:db8:1::/64", "2001:db8:2::/64", "2001:db8:3::/64"];
    let mut args = vec![
        "generate",
        "--sec",
        "1",
        "--hba",
        "--format",
        "json",
        "--out",
        s(&out),
    ];
    for p in &prefixes {
        args.extend(["--prefix", p]);
    }
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("--key-out"),
        "pure HBA has no key to lose"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let addrs = v["addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 3);
    let first_params = addrs[0]["params"].as_str().unwrap().to_owned();
    for e in addrs {
        let a = e["address"].as_str().unwrap();
        // Each member verifies against the first member's parameters (RFC 5535 §7.2).
        let o = run(&[
            "verify",
            "--address",
            a,
            "--params",
            &first_params,
            "--format",
            "json",
        ]);
        let r = json(&o);
        assert_eq!(r["valid"], true);
        assert_eq!(r["kind"], "HBA");
    }
    // inspect decodes the Multi-Prefix extension with P = 0 and does not parse the key.
    let o = run(&["inspect", "--params", &first_params, "--format", "json"]);
    let r = json(&o);
    assert_eq!(r["extensions"][0]["name"], "multi-prefix");
    assert_eq!(r["extensions"][0]["p"], false);
    assert_eq!(r["extensions"][0]["prefixes"][2], "2001:db8:3::/64");
    assert_eq!(r["public_key"]["hba_pseudo_key"], true);
    assert_eq!(r["public_key"]["octets"], 78);
    assert!(r["public_key"]["rsa_bits"].is_null());
    // No key, no signature.
    let o = run(&[
        "verify-signature",
        "--params",
        &first_params,
        "--message",
        "00",
        "--signature",
        "00",
    ]);
    fails(&o, 1, "pure HBA");
    // An address outside the set fails with the RFC 5535 step.
    let o = run(&[
        "verify",
        "--address",
        "2001:db8:9::1",
        "--params",
        &first_params,
    ]);
    fails(&o, 1, "RFC 5535 §7.2 step 1");
}

#[test]
fn hba_compat_signatures() {
    let d = dir("compat");
    let k = keygen(&d, "k.pem");
    let out = d.join("set.json");
    let o = run(&[
        "generate",
        "--sec",
        "0",
        "--hba-compat",
        "--key",
        s(&k),
        "--prefix",
        "2001:db8:1::/64",
        "--prefix",
        "2001:db8:2::/64",
        "--format",
        "json",
        "--out",
        s(&out),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let file = format!("@{}", s(&out));
    let o = run(&["inspect", "--params", &file, "--format", "json"]);
    let r = json(&o);
    assert_eq!(r[0]["extensions"][0]["p"], true);
    assert_eq!(r[0]["public_key"]["rsa_bits"], 1024);

    let o = run(&[
        "sign",
        "--key",
        s(&k),
        "--message",
        "00000007 20010db8000100000000000000000001",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sig = stdout(&o).trim().to_owned();
    assert_eq!(sig.len(), 256, "a 1024-bit signature in hex");
    let msg = "0000000720010db8000100000000000000000001";
    let o = run(&[
        "verify-signature",
        "--params",
        &file,
        "--message",
        msg,
        "--signature",
        &sig,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "valid signature\n");
    let o = run(&[
        "verify-signature",
        "--params",
        &file,
        "--message",
        "0000000820010db8000100000000000000000001",
        "--signature",
        &sig,
    ]);
    fails(&o, 1, "does not verify");
    let mut bad = sig.clone().into_bytes();
    bad[10] = if bad[10] == b'0' { b'1' } else { b'0' };
    let o = run(&[
        "verify-signature",
        "--params",
        &file,
        "--message",
        msg,
        "--signature",
        std::str::from_utf8(&bad).unwrap(),
    ]);
    fails(&o, 1, "does not verify");
    fails(
        &run(&["sign", "--key", s(&k), "--message", "0g"]),
        2,
        "not a hex digit",
    );
}

#[test]
fn rfc3972_vector_through_the_cli() {
    let o = run(&["verify", "--address", RFC_ADDRESS, "--params", RFC_PARAMS]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("valid: {RFC_ADDRESS} is a valid CGA (Sec 1, collision count 0)\n")
    );

    // The binary structure itself as @FILE (LinShim6's rfc_example.params format).
    let d = dir("rfc");
    let bin = d.join("rfc_example.params");
    let bytes: Vec<u8> = (0..RFC_PARAMS.len() / 2)
        .map(|i| u8::from_str_radix(&RFC_PARAMS[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    std::fs::write(&bin, &bytes).unwrap();
    let o = run(&[
        "verify",
        "--address",
        RFC_ADDRESS,
        "--params",
        &format!("@{}", s(&bin)),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let o = run(&["inspect", "--params", RFC_PARAMS]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    for needle in [
        "89a8a8b2e858d8b8f2633f44d2d4ce9b",
        "fe80::/64",
        "94 octets: RSA 512 bits",
        "000001ca680b83888d0912dffcce (23 leading zero bits: Sec 0–1)",
        "address (Sec 1)  fe80::3c4a:5bf6:ffb4:ca6c",
        "extensions       none",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    let r = json(&run(&[
        "inspect", "--params", RFC_PARAMS, "--format", "json",
    ]));
    assert_eq!(r["octets"], 119);
    assert_eq!(r["collision_count"], 0);
    assert_eq!(r["hash2_zero_bits"], 23);
    assert_eq!(r["max_sec"], 1);
    assert_eq!(r["addresses"][1]["address"], RFC_ADDRESS);
}

#[test]
fn verification_failures_name_the_step() {
    // Hash1 (step 4).
    let o = run(&[
        "verify",
        "--address",
        "fe80::3c4a:5bf6:ffb4:ca6d",
        "--params",
        RFC_PARAMS,
    ]);
    fails(&o, 1, "step 4");
    let r: Value = serde_json::from_slice(
        &run(&[
            "verify",
            "--address",
            "fe80::3c4a:5bf6:ffb4:ca6d",
            "--params",
            RFC_PARAMS,
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(r["valid"], false);
    assert_eq!(r["step"], "hash1");
    // Subnet prefix (step 2), Sec (step 5), Hash2 (step 7), collision count (step 1).
    fails(
        &run(&[
            "verify",
            "--address",
            "2001:db8::3c4a:5bf6:ffb4:ca6c",
            "--params",
            RFC_PARAMS,
        ]),
        1,
        "step 2",
    );
    fails(
        &run(&[
            "verify",
            "--address",
            "fe80::7c4a:5bf6:ffb4:ca6c",
            "--params",
            RFC_PARAMS,
        ]),
        1,
        "step 5",
    );
    fails(
        &run(&[
            "verify",
            "--address",
            "fe80::5c4a:5bf6:ffb4:ca6c",
            "--params",
            RFC_PARAMS,
        ]),
        1,
        "step 7",
    );
    let mut cc = RFC_PARAMS.to_owned();
    cc.replace_range(48..50, "03");
    fails(
        &run(&["verify", "--address", RFC_ADDRESS, "--params", &cc]),
        1,
        "step 1",
    );
    // Truncated parameters.
    fails(
        &run(&[
            "verify",
            "--address",
            RFC_ADDRESS,
            "--params",
            &RFC_PARAMS[..200],
        ]),
        1,
        "truncated",
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let d = dir("bad");
    let k = keygen(&d, "k.pem");
    let key = s(&k);
    fails(
        &run(&[
            "generate",
            "--sec",
            "1",
            "--prefix",
            "2001:db8::/48",
            "--key",
            key,
        ]),
        2,
        "must be 64",
    );
    fails(
        &run(&[
            "generate", "--sec", "1", "--prefix", "nonsense", "--key", key,
        ]),
        2,
        "--prefix",
    );
    fails(
        &run(&[
            "generate",
            "--sec",
            "1",
            "--prefix",
            "2001:db8::/64",
            "--key",
            s(&d.join("missing.pem")),
        ]),
        2,
        "missing.pem",
    );
    fails(
        &run(&[
            "generate",
            "--sec",
            "x",
            "--prefix",
            "2001:db8::/64",
            "--key",
            key,
        ]),
        2,
        "expected 0, 1 or 2",
    );
    fails(
        &run(&[
            "generate",
            "--sec",
            "8",
            "--prefix",
            "2001:db8::/64",
            "--key",
            key,
        ]),
        2,
        "3-bit field",
    );
    // Sec 3: refused, with the expected work and the time at the measured rate.
    let o = run(&[
        "generate",
        "--sec",
        "3",
        "--prefix",
        "2001:db8::/64",
        "--key",
        key,
        "--threads",
        "1",
    ]);
    fails(&o, 2, "Sec 3 is not supported");
    assert!(
        stderr(&o).contains("2^48") && stderr(&o).contains("at the measured"),
        "{}",
        stderr(&o)
    );
    fails(
        &run(&[
            "generate",
            "--sec",
            "1",
            "--prefix",
            "2001:db8::/64",
            "--bits",
            "512",
        ]),
        2,
        "512",
    );
    fails(
        &run(&[
            "generate",
            "--sec",
            "1",
            "--prefix",
            "2001:db8::/64",
            "--threads",
            "0",
            "--key",
            key,
        ]),
        2,
        "--threads",
    );
    fails(
        &run(&["verify", "--address", "fe80::zz", "--params", RFC_PARAMS]),
        2,
        "--address",
    );
    fails(
        &run(&["verify", "--address", RFC_ADDRESS, "--params", "abc"]),
        2,
        "odd number",
    );
    fails(
        &run(&[
            "verify",
            "--address",
            RFC_ADDRESS,
            "--params",
            "@/nonexistent/file",
        ]),
        2,
        "cannot read",
    );
    fails(&run(&["inspect", "--params", "30"]), 2, "malformed");
    fails(&run(&["bench", "--bits", "999"]), 2, "999");
    fails(&run(&["bench", "--seconds", "0"]), 2, "--seconds");

    // A private key readable by others is refused, for every subcommand that loads one.
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o640)).unwrap();
    fails(
        &run(&["sign", "--key", key, "--message", "00"]),
        2,
        "too open",
    );
    fails(
        &run(&[
            "generate",
            "--sec",
            "0",
            "--prefix",
            "2001:db8::/64",
            "--key",
            key,
        ]),
        2,
        "too open",
    );

    // Usage errors come from clap, also with exit 2.
    let o = run(&[
        "generate",
        "--sec",
        "1",
        "--prefix",
        "2001:db8::/64",
        "--hba",
        "--key",
        key,
    ]);
    assert_eq!(code(&o), 2);
    let o = run(&["generate", "--sec", "1"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn key_out_is_private_and_needs_force() {
    let d = dir("keyout");
    let k = d.join("new.pem");
    let args = [
        "generate",
        "--sec",
        "0",
        "--prefix",
        "2001:db8::/64",
        "--bits",
        "1024",
        "--key-out",
        s(&k),
        "--format",
        "json",
    ];
    let v = json(&run(&args));
    assert_eq!(mode(&k), 0o600);
    // The saved key is the one in the parameters: its signature verifies with them.
    let params = v["addresses"][0]["params"].as_str().unwrap();
    let sig = stdout(&run(&["sign", "--key", s(&k), "--message", "ab"]))
        .trim()
        .to_owned();
    let o = run(&[
        "verify-signature",
        "--params",
        params,
        "--message",
        "ab",
        "--signature",
        &sig,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    fails(&run(&args), 2, "--force");
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_eq!(code(&run(&forced)), 0);
}

#[test]
fn bench_json() {
    let v = json(&run(&[
        "bench",
        "--bits",
        "1024",
        "--threads",
        "1",
        "--seconds",
        "0.2",
        "--format",
        "json",
    ]));
    assert_eq!(v["bits"], 1024);
    assert_eq!(v["threads"], 1);
    assert_eq!(
        v["message_octets"], 187,
        "16 + 9 + a 162-octet RSA-1024 key"
    );
    assert!(v["hashes_per_s"].as_f64().unwrap() > 0.0);
    let o = run(&[
        "bench",
        "--bits",
        "2048",
        "--threads",
        "1",
        "--seconds",
        "0.1",
    ]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("319-octet"), "{}", stdout(&o));
}

#[test]
fn help_documents_interfaces() {
    let top = stdout(&run(&["--help"]));
    for needle in [
        "EXIT STATUS",
        "EXAMPLES",
        "keygen",
        "verify-signature",
        "bench",
    ] {
        assert!(top.contains(needle), "{needle}");
    }
    let g = stdout(&run(&["generate", "--help"]));
    for needle in [
        "\"hashes_per_s\": r",
        "--resume <FILE>",
        "--hba-compat",
        "EXAMPLES",
    ] {
        assert!(g.contains(needle), "{needle}");
    }
}

/// Writes a resume state for the digest §6.2 HBA set (pure HBA, `LinShim6` pseudo-key)
/// positioned at the vector's starting modifier: resuming must find the vector.
#[test]
fn resume_continues_from_the_saved_modifier() {
    let d = dir("resume-vector");
    let state = d.join("s.state");
    let doc = serde_json::json!({
        "version": 1,
        "sec": 1,
        "mode": "hba",
        "prefixes": ["fe80::/64", "2001:688:1f99:1::/64", "2001:660:7301:1::/64"],
        "public_key": "3042300d06092a864886f70d0101010500033100a36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c3c2382508773c7867f9b3b9e63a09c7bc48f",
        "start_modifier": "89a8a8b2e858d8b8f2633f44d2d7c300",
        "next_modifier": "89a8a8b2e858d8b8f2633f44d2d7c361",
        "hashes": 97,
        "elapsed_s": 1.5,
    });
    std::fs::write(&state, doc.to_string()).unwrap();
    let o = run(&[
        "generate",
        "--sec",
        "1",
        "--hba",
        "--prefix",
        "fe80::/64",
        "--prefix",
        "2001:688:1f99:1::/64",
        "--prefix",
        "2001:660:7301:1::/64",
        "--resume",
        s(&state),
        "--format",
        "json",
    ]);
    let v = json(&o);
    let got: Vec<&str> = v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "fe80::2c5f:924d:c4c:824e",
            "2001:688:1f99:1:3cae:90c0:f2b6:e582",
            "2001:660:7301:1:3cd1:7773:6f00:f11b"
        ]
    );
    assert!(
        v["hashes"].as_u64().unwrap() > 97,
        "totals include the earlier run"
    );
    assert!(v["elapsed_s"].as_f64().unwrap() >= 1.5);
    assert!(!state.exists(), "removed after success");

    // A state for another search is refused.
    std::fs::write(&state, doc.to_string()).unwrap();
    let o = run(&[
        "generate",
        "--sec",
        "1",
        "--hba",
        "--prefix",
        "fe80::/64",
        "--resume",
        s(&state),
    ]);
    fails(&o, 2, "different prefix list");
    let o = run(&[
        "generate",
        "--sec",
        "2",
        "--hba",
        "--prefix",
        "fe80::/64",
        "--resume",
        s(&state),
    ]);
    fails(&o, 2, "different Sec");
    std::fs::write(&state, "{}").unwrap();
    fails(
        &run(&[
            "generate",
            "--sec",
            "1",
            "--hba",
            "--prefix",
            "fe80::/64",
            "--resume",
            s(&state),
        ]),
        2,
        "not a cga-tool resume file",
    );
}

/// Waits (bounded) until `p` exists.
fn wait_for(p: &Path) {
    let end = Instant::now() + Duration::from_secs(30);
    while !p.exists() {
        assert!(Instant::now() < end, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigint_after_start(args: &[&str], state: &Path) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(state);
    // Let the search hash a few batches, then press Ctrl-C.
    std::thread::sleep(Duration::from_millis(300));
    let k = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    child.wait_with_output().unwrap()
}

#[test]
fn ctrl_c_saves_state_and_resume_continues() {
    let d = dir("ctrl-c");
    let state = d.join("sec2.state");
    let args = [
        "generate",
        "--sec",
        "2",
        "--bits",
        "1024",
        "--prefix",
        "2001:db8::/64",
        "--threads",
        "2",
        "--resume",
        s(&state),
    ];
    let o = sigint_after_start(&args, &state);
    fails(&o, 130, "state saved to");
    assert_eq!(
        mode(&state),
        0o600,
        "the state holds the generated private key"
    );
    let first: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(first["sec"], 2);
    assert_eq!(first["mode"], "cga");
    assert!(
        first["private_key_pem"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let hashes = first["hashes"].as_u64().unwrap();
    assert!(hashes > 0);
    // Every candidate below next_modifier was tried: next = start + a whole number of
    // batches, no more than the hashes counted.
    let n = |v: &Value, f: &str| u128::from_str_radix(v[f].as_str().unwrap(), 16).unwrap();
    let advanced = n(&first, "next_modifier").wrapping_sub(n(&first, "start_modifier"));
    assert_eq!(advanced % u128::from(cga::search::BATCH), 0);
    assert!(advanced > 0 && advanced <= u128::from(hashes));

    // Running the same command again continues from there with the same key.
    let o = sigint_after_start(&args, &state);
    fails(&o, 130, "state saved to");
    let second: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(second["public_key"], first["public_key"]);
    assert_eq!(second["start_modifier"], first["start_modifier"]);
    assert!(n(&second, "next_modifier").wrapping_sub(n(&first, "next_modifier")) > 0);
    assert!(second["hashes"].as_u64().unwrap() > hashes);
}
