//! `cga-tool`'s output checked by implementations that share no code with it.
//!
//! - Addresses: a dozen lines of Python with `hashlib` implement RFC 3972 §5 verification
//!   (and the RFC 5535 §7.2 prefix substitution for HBA sets), written from the RFC text,
//!   not from our Rust code. Every address `cga-tool generate` prints must pass it.
//! - Signatures: the `openssl` command-line tool verifies `cga-tool sign`'s output as an
//!   RSASSA-PKCS1-v1_5 / SHA-1 signature over the 128-bit Shim6 tag and the message
//!   (RFC 3972 §6, RFC 5533 §5.15.5), with the public key `openssl` itself derives from
//!   the PEM file.
//!
//! Without python3 or openssl the tests print `SKIPPED` and pass, unless
//! `SHIM6_REQUIRE_TOOLS=1` (set by `./test.sh`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const CGA_TOOL: &str = env!("CARGO_BIN_EXE_cga-tool");

/// RFC 3972 §5 steps 1–7, and RFC 5535 §7.2 step 1 for an address whose prefix differs
/// from the parameters' but appears in their Multi-Prefix extension. Reads lines
/// `ADDRESS PARAMS_HEX` on stdin and prints `ok ADDRESS` or `bad ADDRESS WHY`.
const PY_VERIFIER: &str = r#"
import hashlib, ipaddress, sys

def der_len(b, i):
    # b[i] is a DER tag; returns (header length, content length).
    n = b[i + 1]
    if n < 0x80:
        return 2, n
    k = n & 0x7f
    return 2 + k, int.from_bytes(b[i + 2:i + 2 + k], "big")

def verify(addr, p):
    a = ipaddress.IPv6Address(addr).packed
    mod, prefix, cc = p[0:16], p[16:24], p[24]
    h, n = der_len(p, 25)
    key_end = 25 + h + n
    key, ext = p[25:key_end], p[key_end:]
    if cc > 2:
        return "collision count"
    if a[:8] != prefix:
        # RFC 5535 §7.2: the address's prefix must be in the Multi-Prefix extension.
        i, found = 0, False
        while i + 4 <= len(ext):
            t = int.from_bytes(ext[i:i + 2], "big")
            l = int.from_bytes(ext[i + 2:i + 4], "big")
            d = ext[i + 4:i + 4 + l]
            if t == 0x12:
                found = any(d[4 + 8 * j:12 + 8 * j] == a[:8] for j in range((l - 4) // 8))
            i += 4 + l
        if not found:
            return "prefix"
        p = p[:16] + a[:8] + p[24:]
    h1 = hashlib.sha1(p).digest()[:8]
    iid = a[8:]
    if (h1[0] & 0x1c) != (iid[0] & 0x1c) or h1[1:] != iid[1:]:
        return "hash1"
    sec = iid[0] >> 5
    if sec > 2:
        return "sec"
    h2 = hashlib.sha1(mod + bytes(9) + key + ext).digest()[:14]
    if h2[:2 * sec] != bytes(2 * sec):
        return "hash2"
    return None

for line in sys.stdin:
    addr, params = line.split()
    why = verify(addr, bytes.fromhex(params))
    print(("ok " + addr) if why is None else ("bad " + addr + " " + why))
"#;

fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("SHIM6_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{tool} is missing but SHIM6_REQUIRE_TOOLS=1");
        }
        println!("SKIPPED: {tool} is not installed");
    }
    ok
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cga-independent-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cga_tool(args: &[&str]) -> String {
    let out = Command::new(CGA_TOOL).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cga-tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the Python verifier over (address, params) pairs; returns its verdict lines.
fn python_verify(pairs: &[(String, String)]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", PY_VERIFIER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for (a, p) in pairs {
        input.push_str(&format!("{a} {p}\n"));
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn generated(args: &[&str]) -> Vec<(String, String)> {
    let json: Value = serde_json::from_str(&cga_tool(args)).unwrap();
    json["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap().to_owned(),
                a["params"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn generated_addresses_pass_an_independent_rfc3972_verifier() {
    if !have("python3", "--version") {
        return;
    }
    let dir = scratch("addr");
    let key = dir.join("k.pem");
    cga_tool(&["keygen", "--bits", "1024", "--out", key.to_str().unwrap()]);
    let k = key.to_str().unwrap();
    let mut pairs = vec![];
    for sec in ["0", "1"] {
        // One CGA per prefix, a pure HBA set, a CGA-compatible HBA set.
        let common = ["generate", "--sec", sec, "--format", "json"];
        let p = ["--prefix", "2001:db8:1::/64", "--prefix", "2001:db8:2::/64"];
        pairs.extend(generated(&[&common[..], &p, &["--key", k]].concat()));
        pairs.extend(generated(&[&common[..], &p, &["--hba"]].concat()));
        pairs.extend(generated(
            &[&common[..], &p, &["--hba-compat", "--key", k]].concat(),
        ));
    }
    assert_eq!(pairs.len(), 12);
    let verdicts = python_verify(&pairs);
    let expect: Vec<String> = pairs.iter().map(|(a, _)| format!("ok {a}")).collect();
    assert_eq!(verdicts, expect);

    // The independent verifier is not a rubber stamp: an HBA set member checked against
    // its sibling's parameters passes (same set), a flipped IID bit and a foreign prefix
    // fail.
    let (a0, p0) = &pairs[2];
    let (a1, _) = &pairs[3];
    let mut flipped = a0.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    let checks = vec![
        (a1.clone(), p0.clone()),
        (flipped.clone(), p0.clone()),
        ("2001:db8:99::1".to_owned(), p0.clone()),
    ];
    let v = python_verify(&checks);
    assert_eq!(v[0], format!("ok {a1}"));
    assert_eq!(v[1], format!("bad {flipped} hash1"));
    assert_eq!(v[2], "bad 2001:db8:99::1 prefix");
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn signatures_verify_with_the_openssl_command_line_tool() {
    if !have("openssl", "version") {
        return;
    }
    let dir = scratch("sig");
    for bits in ["1024", "2048"] {
        let key = dir.join(format!("k{bits}.pem"));
        cga_tool(&["keygen", "--bits", bits, "--out", key.to_str().unwrap()]);
        let pubkey = openssl(&["pkey", "-in", &format!("k{bits}.pem"), "-pubout"], &dir);
        assert!(pubkey.status.success());
        std::fs::write(dir.join("pub.pem"), &pubkey.stdout).unwrap();

        // The Shim6 signed message: Locator List Generation ‖ CGA locators (RFC 5533 §5.15.5).
        let message = "0000002a20010db800010000000000000000000120010db8000200000000000000000001";
        let sig_hex = cga_tool(&["sign", "--key", key.to_str().unwrap(), "--message", message]);
        let sig: Vec<u8> = (0..sig_hex.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&sig_hex.trim()[i..i + 2], 16).unwrap())
            .collect();
        std::fs::write(dir.join("sig.bin"), &sig).unwrap();
        let tag = "4a3056624858574b3655416f506a6d48";
        let signed: Vec<u8> = (0..tag.len() + message.len())
            .step_by(2)
            .map(|i| {
                let s = format!("{tag}{message}");
                u8::from_str_radix(&s[i..i + 2], 16).unwrap()
            })
            .collect();
        std::fs::write(dir.join("msg.bin"), &signed).unwrap();
        let verify = |msg: &str| {
            openssl(
                &[
                    "dgst",
                    "-sha1",
                    "-verify",
                    "pub.pem",
                    "-signature",
                    "sig.bin",
                    msg,
                ],
                &dir,
            )
        };
        let ok = verify("msg.bin");
        assert!(
            ok.status.success(),
            "openssl rejects our {bits}-bit signature: {}",
            String::from_utf8_lossy(&ok.stdout)
        );
        // Without the tag, or with one octet changed, openssl must refuse it.
        std::fs::write(dir.join("untagged.bin"), &signed[16..]).unwrap();
        assert!(!verify("untagged.bin").status.success());
        let mut changed = signed.clone();
        changed[20] ^= 1;
        std::fs::write(dir.join("changed.bin"), &changed).unwrap();
        assert!(!verify("changed.bin").status.success());
    }
}
