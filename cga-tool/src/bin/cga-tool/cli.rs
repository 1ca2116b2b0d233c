//! Arguments and the subcommands.
//!
//! The doc comments on the argument types are the `--help` text that clap prints in a
//! terminal, where Markdown backticks would show literally; hence the lint exception.

#![allow(clippy::doc_markdown)]

use std::io::{IsTerminal as _, Write as _};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use cga::generate::random_modifier;
use cga::kernel::Kernel;
use cga::key::{ACCEPTED_BITS, DEFAULT_BITS};
use cga::search::{self, Outcome, SearchConfig, default_threads};
use cga::sec::{Sec, SecRefusal, human_duration};
use cga::{AddressKind, Generator, Prefix64, PrivateKey, PublicKey, SHIM6_CGA_TAG};
use shim6_wire::cga::{EXT_MULTI_PREFIX, ExtensionRepr, Packet, Repr};

use crate::input::{self, to_hex};
use crate::output::{self, secs};
use crate::{Fail, resume, signal};

const ABOUT: &str = "Generate, verify, sign and inspect CGAs and HBA sets (RFC 3972, RFC 5535)";

const LONG_ABOUT: &str = "\
cga-tool creates the Cryptographically Generated Addresses (RFC 3972) and Hash-Based \
Address sets (RFC 5535) that shim6d uses to secure its locators, and checks, signs and \
decodes their CGA Parameters.

An address's interface identifier is a hash of its CGA Parameters data structure \
(modifier, subnet prefix, collision count, public key, extensions). The generator \
searches for a modifier whose second hash (Hash2) starts with 16*Sec zero bits: Sec 0 \
is instant, Sec 1 takes about 2^16 hashes (milliseconds), Sec 2 about 2^32 (minutes). \
Sec 3-7 have no registered procedure (RFC 4982) and are refused.

EXIT STATUS
    0    success
    1    the address or signature does not verify (verify, verify-signature)
    2    bad input: malformed prefix, address, hex or parameters, unreadable key, key
         file permissions, unsupported Sec, or a usage error
    3    operational failure (I/O while writing, OpenSSL)
    130  interrupted by Ctrl-C (a search run with --resume FILE can be continued)";

const EXAMPLES: &str = "\
EXAMPLES
    Make a key, then a Sec 1 CGA for one prefix:
        cga-tool keygen --out host.pem
        cga-tool generate --sec 1 --prefix 2001:db8:1::/64 --key host.pem

    A pure HBA set over two prefixes, written as JSON for shim6d:
        cga-tool generate --sec 1 --hba --prefix 2001:db8:1::/64 \\
            --prefix 2001:db8:2::/64 --format json --out hba.json

    A Sec 2 search that can be interrupted with Ctrl-C and continued later:
        cga-tool generate --sec 2 --prefix 2001:db8:1::/64 --key host.pem \\
            --resume sec2.state --format json --out cga.json

    Check an address, sign and verify a message, decode the parameters:
        cga-tool verify --address 2001:db8:1::3c4a:5bf6:ffb4:ca6c --params @cga.json
        cga-tool sign --key host.pem --message 0001020304
        cga-tool verify-signature --params @cga.json --message 0001020304 \\
            --signature <HEX>
        cga-tool inspect --params @cga.json

    Measure the search rate:
        cga-tool bench --bits 2048 --threads 2 --seconds 5 --format json";

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "cga-tool", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Keygen(Keygen),
    Generate(Generate),
    Verify(Verify),
    Sign(Sign),
    VerifySignature(VerifySignature),
    Inspect(Inspect),
    Bench(Bench),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document.
    Json,
}

/// Generate an RSA key pair and write the private key as PEM.
///
/// The file is created with mode 0600 and an existing file is never replaced unless
/// --force is given. The public key is derived from it whenever needed.
#[derive(Debug, Args)]
#[command(after_help = "EXAMPLE\n    cga-tool keygen --bits 2048 --out host.pem")]
struct Keygen {
    /// Modulus size: 1024, 2048, 3072 or 4096.
    #[arg(long, default_value_t = DEFAULT_BITS, value_name = "B")]
    bits: u32,
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "KEY.pem")]
    out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

/// Generate CGAs, or one HBA set, for one or more /64 prefixes.
///
/// Without --hba/--hba-compat, one CGA per prefix is made from one modifier search (the
/// modifier does not depend on the prefix, RFC 3972 §4). With --hba (pure HBA: a random
/// pseudo-key, no signatures possible) or --hba-compat (CGA-compatible HBA: a real key),
/// the prefixes form one HBA set bound together by the Multi-Prefix extension
/// (RFC 5535). The key is --key, or a new one of --bits (default 2048) that is kept only
/// if --key-out is given.
///
/// JSON output (--format json) is the file shim6d's configuration points at:
///   {"sec": N, "addresses": [{"address": "...", "prefix": "...", "params": "(hex of the
///   complete CGA Parameters data structure)"}], "hashes": n, "elapsed_s": x,
///   "hashes_per_s": r, "threads": t}
///
/// A progress line (rate, tried, expected, ETA) is drawn on stderr when it is a
/// terminal. Ctrl-C stops the search cleanly; with --resume FILE the search state is
/// saved there (and every few seconds), and running the same command again continues
/// where it stopped.
#[derive(Debug, Args)]
#[command(after_help = "EXAMPLES
    cga-tool generate --sec 1 --prefix 2001:db8:1::/64
    cga-tool generate --sec 1 --hba-compat --key host.pem --prefix 2001:db8:1::/64 \\
        --prefix 2001:db8:2::/64 --format json --out hba.json
    cga-tool generate --sec 2 --prefix 2001:db8:1::/64 --key host.pem --resume s2.state")]
struct Generate {
    /// Security parameter: 0, 1 or 2 (3-7 are refused with a time estimate).
    #[arg(long, value_name = "N")]
    sec: String,
    /// A /64 prefix, e.g. 2001:db8:1::/64 (repeat for several).
    #[arg(long = "prefix", value_name = "P", required = true)]
    prefixes: Vec<String>,
    /// Private key file (PEM, mode 0600) whose public key goes into the parameters.
    #[arg(long, value_name = "KEY.pem", conflicts_with_all = ["bits", "hba"])]
    key: Option<PathBuf>,
    /// Generate a new RSA key of this size (1024, 2048, 3072, 4096; default 2048).
    #[arg(long, value_name = "B", conflicts_with = "hba")]
    bits: Option<u32>,
    /// Save the newly generated private key here (mode 0600).
    #[arg(long, value_name = "KEY.pem", conflicts_with_all = ["key", "hba"])]
    key_out: Option<PathBuf>,
    /// Replace an existing --key-out file.
    #[arg(long)]
    force: bool,
    /// One pure HBA set: random 384-bit pseudo-key, Multi-Prefix P = 0.
    #[arg(long, conflicts_with = "hba_compat")]
    hba: bool,
    /// One CGA-compatible HBA set: real key, Multi-Prefix P = 1.
    #[arg(long)]
    hba_compat: bool,
    /// Search threads (default: all CPUs).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Write the result here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Keep the search state in FILE: continue from it if it exists, save it on Ctrl-C
    /// and periodically, remove it on success.
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
}

/// Verify that an address matches CGA Parameters (RFC 3972 §5), or belongs to the HBA
/// set they describe (RFC 5535 §7.2) when its prefix is another of the set's.
///
/// Exit 0 if valid; exit 1 naming the failing step otherwise.
#[derive(Debug, Args)]
#[command(after_help = "EXAMPLES
    cga-tool verify --address fe80::3c4a:5bf6:ffb4:ca6c --params @rfc_example.params
    cga-tool verify --address 2001:db8:2::1c2b:... --params @hba.json --format json")]
struct Verify {
    /// The address to check.
    #[arg(long, value_name = "A")]
    address: String,
    /// The parameters: hex, or @FILE holding hex, the binary structure, or the JSON of
    /// `cga-tool generate --format json` (the entry for --address is used).
    #[arg(long, value_name = "HEX|@FILE")]
    params: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Sign a message with RSASSA-PKCS1-v1_5 and SHA-1 over the Shim6 CGA tag and the
/// message (RFC 3972 §6, RFC 5533 §5.15.5); prints the signature in hex.
///
/// The 128-bit tag 4a305662 4858574b 3655416f 506a6d48 is prepended by the tool.
#[derive(Debug, Args)]
#[command(
    after_help = "EXAMPLE\n    cga-tool sign --key host.pem --message 00000001fe80000000000000..."
)]
struct Sign {
    /// Private key file (PEM, mode 0600).
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// The message in hex (without the tag).
    #[arg(long, value_name = "HEX")]
    message: String,
}

/// Verify a signature made by `sign` with the public key inside CGA Parameters.
///
/// Exit 0 if valid, 1 if not. Pure HBA parameters (Multi-Prefix P = 0) carry no key and
/// always fail.
#[derive(Debug, Args)]
#[command(
    after_help = "EXAMPLE\n    cga-tool verify-signature --params @cga.json --message 0001 --signature 5c1e..."
)]
struct VerifySignature {
    /// The parameters: hex or @FILE (as for verify).
    #[arg(long, value_name = "HEX|@FILE")]
    params: String,
    /// The message in hex (without the tag).
    #[arg(long, value_name = "HEX")]
    message: String,
    /// The signature in hex.
    #[arg(long, value_name = "HEX")]
    signature: String,
}

/// Decode CGA Parameters: every field, every extension, Hash2 and the addresses they
/// generate.
#[derive(Debug, Args)]
#[command(after_help = "EXAMPLE\n    cga-tool inspect --params @hba.json --format json")]
struct Inspect {
    /// The parameters: hex or @FILE (as for verify; every entry of a JSON file).
    #[arg(long, value_name = "HEX|@FILE")]
    params: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Measure the modifier search's sustained rate for a key size.
///
/// Runs the real search (same kernel, batches and threads) with a condition that never
/// holds. JSON: {"bits": B, "threads": T, "hashes_per_s": r, "message_octets": n}, where
/// n is the Hash2 input length per try.
#[derive(Debug, Args)]
#[command(
    after_help = "EXAMPLE\n    cga-tool bench --bits 1024 --threads 1 --seconds 3 --format json"
)]
struct Bench {
    /// RSA modulus size of the key hashed: 1024, 2048, 3072 or 4096.
    #[arg(long, default_value_t = DEFAULT_BITS, value_name = "B")]
    bits: u32,
    /// Threads (default: all CPUs).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Measurement time in seconds.
    #[arg(long, default_value_t = 3.0, value_name = "S")]
    seconds: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Fail> {
    match cli.command {
        Command::Keygen(a) => keygen(a),
        Command::Generate(a) => generate(a),
        Command::Verify(a) => verify(a),
        Command::Sign(a) => sign(a),
        Command::VerifySignature(a) => verify_signature(a),
        Command::Inspect(a) => inspect(a),
        Command::Bench(a) => bench(a),
    }
}

fn check_bits(bits: u32) -> Result<u32, Fail> {
    if ACCEPTED_BITS.contains(&bits) {
        Ok(bits)
    } else {
        Err(Fail::Input(format!(
            "--bits {bits}: unsupported RSA key size (accepted: 1024, 2048, 3072, 4096)"
        )))
    }
}

fn threads(t: Option<usize>) -> Result<usize, Fail> {
    match t {
        None => Ok(default_threads()),
        Some(0) => Err(Fail::Input("--threads: must be at least 1".into())),
        Some(n) if n > 1024 => Err(Fail::Input(format!("--threads {n}: at most 1024"))),
        Some(n) => Ok(n),
    }
}

/// Writes `text` to `out` (a file) or standard output.
fn emit(out: Option<&Path>, text: &str) -> Result<(), Fail> {
    match out {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| Fail::Runtime(format!("--out: cannot write {}: {e}", p.display()))),
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())
                .and_then(|()| o.flush())
                .map_err(|e| Fail::Runtime(format!("cannot write to standard output: {e}")))
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Serialising our own plain structs cannot fail.
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

// ------------------------------------------------------------------------- keygen

fn keygen(a: Keygen) -> Result<(), Fail> {
    let bits = check_bits(a.bits)?;
    let key = PrivateKey::generate(bits)?;
    key.save(&a.out, a.force).map_err(|e| match e {
        cga::Error::KeyExists(p) => Fail::Input(format!(
            "{}: already exists; use --force to overwrite it",
            p.display()
        )),
        e => e.into(),
    })?;
    println!(
        "wrote a {bits}-bit RSA private key to {} (mode 0600)",
        a.out.display()
    );
    Ok(())
}

// ------------------------------------------------------------------------- generate

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cga,
    Hba,
    HbaCompat,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Cga => "cga",
            Self::Hba => "hba",
            Self::HbaCompat => "hba-compat",
        }
    }
}

/// Parses --sec; for a value the library refuses, measures the rate the search would
/// run at (a short benchmark with a key of `key_octets`) and says how long it would take.
fn parse_sec(s: &str, key_octets: usize, threads: usize) -> Result<Sec, Fail> {
    let v: u8 = s
        .trim()
        .parse()
        .map_err(|_| Fail::Input(format!("--sec {s:?}: expected 0, 1 or 2")))?;
    match Sec::new(v) {
        Ok(sec) => Ok(sec),
        Err(_) if v > Sec::FIELD_MAX => Err(Fail::Input(format!("--sec: {}", SecRefusal::new(v)))),
        Err(_) => {
            let tail = vec![0u8; 9 + key_octets];
            let r = search::bench(
                &tail,
                Duration::from_millis(300),
                &mut SearchConfig {
                    threads,
                    ..SearchConfig::default()
                },
            );
            Err(Fail::Input(format!(
                "--sec: {} on {threads} thread(s)",
                SecRefusal::new(v).with_rate(r.hashes_per_s())
            )))
        }
    }
}

fn generate(a: Generate) -> Result<(), Fail> {
    // First of all, so that Ctrl-C at any later point ends the command cleanly.
    signal::install().map_err(|e| Fail::Runtime(format!("cannot handle SIGINT: {e}")))?;
    let mode = if a.hba {
        Mode::Hba
    } else if a.hba_compat {
        Mode::HbaCompat
    } else {
        Mode::Cga
    };
    let threads = threads(a.threads)?;
    let prefixes = a
        .prefixes
        .iter()
        .map(|p| input::prefix(p))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(b) = a.bits {
        check_bits(b)?;
    }
    let state = match &a.resume {
        Some(p) => resume::load(p)?,
        None => None,
    };

    // The key field: a loaded key, the resumed search's key, a new key, or a pseudo-key.
    let mut private: Option<PrivateKey> = None;
    let mut generated_pem: Option<String> = None;
    if mode != Mode::Hba {
        private = Some(if let Some(path) = &a.key {
            PrivateKey::load(path)?
        } else if let Some(pem) = state.as_ref().and_then(|s| s.private_key_pem.as_ref()) {
            generated_pem = Some(pem.clone());
            PrivateKey::from_pem(pem.as_bytes())?
        } else {
            let k = PrivateKey::generate(a.bits.unwrap_or(DEFAULT_BITS))?;
            generated_pem = Some(String::from_utf8_lossy(&k.to_pem()?).into_owned());
            k
        });
    }
    let public: Option<PublicKey> = private.as_ref().map(PrivateKey::public_key).transpose()?;
    let key_octets = public.as_ref().map_or(78, |k| k.der().len());
    let sec = parse_sec(&a.sec, key_octets, threads)?;

    if let (Some(path), Some(k)) = (&a.key_out, &private) {
        k.save(path, a.force).map_err(|e| match e {
            cga::Error::KeyExists(p) => Fail::Input(format!(
                "--key-out {}: already exists; use --force to overwrite it",
                p.display()
            )),
            e => e.into(),
        })?;
    } else if a.key.is_none() && mode != Mode::Hba && a.resume.is_none() {
        eprintln!(
            "cga-tool: note: the generated private key is not saved (add --key-out FILE to \
             keep it); without it these addresses cannot sign"
        );
    }

    let raw: Vec<_> = prefixes.iter().map(|p| p.0).collect();
    let generator = match mode {
        Mode::Cga => Generator::cga(public.as_ref().ok_or_else(no_key)?, sec),
        Mode::HbaCompat => Generator::hba(&raw, Some(public.as_ref().ok_or_else(no_key)?), sec)?,
        Mode::Hba => match &state {
            Some(s) => Generator::from_parts(
                sec,
                input::hex("--resume public_key", &s.public_key)?,
                &raw,
                false,
            )?,
            None => Generator::hba(&raw, None, sec)?,
        },
    };

    // Resume: the state must describe exactly this search.
    let (start, prior_hashes, prior_elapsed, first_start) = match &state {
        Some(s) => {
            check_state(s, sec, mode, &a.prefixes, generator.public_key())?;
            let next = modifier_hex("--resume next_modifier", &s.next_modifier)?;
            let first = modifier_hex("--resume start_modifier", &s.start_modifier)?;
            (next, s.hashes, s.elapsed_s, first)
        }
        None => {
            let m = random_modifier()?;
            (m, 0, 0.0, m)
        }
    };
    let save_state = |next: [u8; 16], hashes: u64, elapsed: f64| -> Result<(), Fail> {
        match &a.resume {
            Some(path) => resume::save(
                path,
                &resume::State {
                    version: resume::VERSION,
                    sec: sec.value(),
                    mode: mode.name().into(),
                    prefixes: a.prefixes.clone(),
                    public_key: to_hex(generator.public_key()),
                    private_key_pem: generated_pem.clone(),
                    start_modifier: to_hex(&first_start),
                    next_modifier: to_hex(&next),
                    hashes,
                    elapsed_s: elapsed,
                },
            ),
            None => Ok(()),
        }
    };
    // Write the state before the search so even a kill -9 can resume from the start.
    save_state(start, prior_hashes, prior_elapsed)?;

    let tty = std::io::stderr().is_terminal();
    let mut last_checkpoint = Instant::now();
    let mut checkpoint_error: Option<Fail> = None;
    let mut on_progress = |p: &search::Progress| {
        if tty {
            output::progress_line(p, prior_hashes);
        }
        // Checkpoint every 10 s at the search's low-water mark, below which every
        // candidate has been tried (a kill -9 then loses at most 10 s of work).
        if a.resume.is_some() && last_checkpoint.elapsed() >= Duration::from_secs(10) {
            last_checkpoint = Instant::now();
            let next = u128::from_be_bytes(start).wrapping_add(u128::from(p.done_below));
            if let Err(e) = save_state(
                next.to_be_bytes(),
                prior_hashes + p.hashes,
                prior_elapsed + secs(p.elapsed),
            ) {
                checkpoint_error.get_or_insert(e);
            }
        }
    };
    let mut config = SearchConfig {
        threads,
        kernel: Kernel::best(),
        cancel: Some(signal::flag()),
        progress: Some(&mut on_progress),
        progress_interval: Duration::from_millis(250),
    };
    let outcome = generator.search(start, &mut config);
    if tty {
        output::clear_progress();
    }
    let outcome = outcome?;
    if let Some(e) = checkpoint_error {
        return Err(e);
    }

    let (modifier, hashes, elapsed) = match outcome {
        Outcome::Found {
            modifier,
            hashes,
            elapsed,
            ..
        } => (modifier, hashes, elapsed),
        Outcome::Cancelled {
            resume_from,
            hashes,
            elapsed,
        } => {
            let total = prior_hashes + hashes;
            return Err(match &a.resume {
                Some(path) => {
                    save_state(resume_from, total, prior_elapsed + secs(elapsed))?;
                    Fail::Interrupted(format!(
                        "interrupted after {total} hashes; state saved to {}, run the same \
                         command again to continue",
                        path.display()
                    ))
                }
                None => Fail::Interrupted(format!(
                    "interrupted after {total} hashes (use --resume FILE to be able to continue)"
                )),
            });
        }
    };

    let set = generator.finish(modifier);
    let addresses: Vec<output::GeneratedAddress> = prefixes
        .iter()
        .map(|p| output::GeneratedAddress {
            address: set.address(&p.0).to_string(),
            prefix: p.to_string(),
            params: to_hex(&set.params(&p.0).to_bytes()),
        })
        .collect();
    let doc = output::Generated {
        sec: sec.value(),
        addresses,
        hashes: prior_hashes + hashes,
        elapsed_s: prior_elapsed + secs(elapsed),
        hashes_per_s: if elapsed.is_zero() {
            0.0
        } else {
            hashes as f64 / secs(elapsed)
        },
        threads,
    };
    let text = match a.format {
        Format::Json => json(&doc),
        Format::Text => {
            let kind = match set.kind() {
                AddressKind::Cga => "CGA".to_owned(),
                k => format!("{k} set"),
            };
            let key = match &public {
                Some(k) => format!("RSA-{} key", k.bits()),
                None => "random pseudo-key".to_owned(),
            };
            let mut s = format!(
                "# Sec {} {kind}, {key}: {} hashes in {:.3} s ({}hashes/s, {threads} threads)\n",
                doc.sec,
                doc.hashes,
                doc.elapsed_s,
                output::si(doc.hashes_per_s)
            );
            for e in &doc.addresses {
                s.push_str(&format!(
                    "{}  {}\n  params {}\n",
                    e.address, e.prefix, e.params
                ));
            }
            s
        }
    };
    emit(a.out.as_deref(), &text)?;
    if let Some(p) = &a.resume {
        resume::remove(p)?;
    }
    Ok(())
}

fn no_key() -> Fail {
    Fail::Runtime("internal: no key for a keyed mode".into())
}

fn modifier_hex(what: &str, s: &str) -> Result<[u8; 16], Fail> {
    input::hex(what, s)?
        .try_into()
        .map_err(|_| Fail::Input(format!("{what}: not 16 octets")))
}

/// The resumed state must be for the same Sec, kind, key field and (for HBA) prefixes.
fn check_state(
    s: &resume::State,
    sec: Sec,
    mode: Mode,
    prefixes: &[String],
    key: &[u8],
) -> Result<(), Fail> {
    let differs = |what: &str| {
        Err(Fail::Input(format!(
            "--resume: the saved search was for a different {what}; use the original command \
             or another --resume file"
        )))
    };
    if s.sec != sec.value() {
        return differs("Sec");
    }
    if s.mode != mode.name() {
        return differs("kind (cga/hba/hba-compat)");
    }
    let canon = |v: &[String]| -> Result<Vec<Prefix64>, Fail> {
        v.iter().map(|p| input::prefix(p)).collect()
    };
    if mode != Mode::Cga && canon(&s.prefixes)? != canon(prefixes)? {
        return differs("prefix list");
    }
    if input::hex("--resume public_key", &s.public_key)? != key {
        return differs("key");
    }
    Ok(())
}

// ------------------------------------------------------------------------- verify

fn verify(a: Verify) -> Result<(), Fail> {
    let addr = input::address("--address", &a.address)?;
    let params = input::params_for(input::params(&a.params)?, Some(&addr));
    let result = cga::verify(&addr, &params);
    let doc = match &result {
        Ok(v) => output::Verification {
            valid: true,
            address: addr.to_string(),
            sec: Some(v.sec.value()),
            kind: Some(v.kind.to_string()),
            collision_count: Some(v.collision_count),
            hba_member: Some(v.via_hba_set),
            step: None,
            reason: None,
        },
        Err(e) => output::Verification {
            valid: false,
            address: addr.to_string(),
            sec: None,
            kind: None,
            collision_count: None,
            hba_member: None,
            step: Some(e.step()),
            reason: Some(e.to_string()),
        },
    };
    match a.format {
        Format::Json => emit(None, &json(&doc))?,
        Format::Text => {
            if let Ok(v) = &result {
                let how = if v.via_hba_set {
                    format!("a member of the {} set", v.kind)
                } else {
                    format!("a valid {}", v.kind)
                };
                emit(
                    None,
                    &format!(
                        "valid: {addr} is {how} (Sec {}, collision count {})\n",
                        v.sec, v.collision_count
                    ),
                )?;
            }
        }
    }
    result
        .map(|_| ())
        .map_err(|e| Fail::Invalid(format!("invalid: {addr}: {e}")))
}

// ------------------------------------------------------------------------- signatures

fn sign(a: Sign) -> Result<(), Fail> {
    let key = PrivateKey::load(&a.key)?;
    let msg = input::hex("--message", &a.message)?;
    let sig = cga::sign(&key, &SHIM6_CGA_TAG, &msg)?;
    emit(None, &format!("{}\n", to_hex(&sig)))
}

fn verify_signature(a: VerifySignature) -> Result<(), Fail> {
    let params = input::params_for(input::params(&a.params)?, None);
    let msg = input::hex("--message", &a.message)?;
    let sig = input::hex("--signature", &a.signature)?;
    match cga::verify_signature(&params, &SHIM6_CGA_TAG, &msg, &sig) {
        Ok(()) => emit(None, "valid signature\n"),
        Err(e) => Err(Fail::Invalid(format!("invalid: {e}"))),
    }
}

// ------------------------------------------------------------------------- inspect

fn inspect(a: Inspect) -> Result<(), Fail> {
    let entries = input::params(&a.params)?;
    let mut docs = Vec::new();
    let mut text = String::new();
    for (i, e) in entries.iter().enumerate() {
        let repr = Repr::from_bytes(&e.params)
            .map_err(|err| Fail::Input(format!("--params: malformed CGA Parameters: {err}")))?;
        let p = Packet::new_checked(&e.params[..])
            .map_err(|err| Fail::Input(format!("--params: {err}")))?;
        let hash2 = cga::hash::hash2(&p);
        let zero_bits = cga::hash::leading_zero_bits(&hash2);
        let max_sec = (zero_bits / 16).min(2) as u8;
        let prefix = Prefix64(repr.subnet_prefix);
        let pure_hba = repr.multi_prefix().is_some_and(|m| !m.public_key);
        // RFC 5535 §5: with P = 0 the key field is not a key; do not parse it.
        let rsa_bits = if pure_hba {
            None
        } else {
            PublicKey::from_der(&repr.public_key).ok().map(|k| k.bits())
        };
        let key_desc = match (pure_hba, rsa_bits) {
            (true, _) => "HBA pseudo-key (Multi-Prefix P = 0; not parsed)".to_owned(),
            (false, Some(b)) => format!("RSA {b} bits (DER SubjectPublicKeyInfo)"),
            (false, None) => "not a parsable RSA SubjectPublicKeyInfo".to_owned(),
        };
        let addresses: Vec<(u8, Ipv6Addr)> = (0..=max_sec)
            .map(|s| {
                let h1 = cga::hash::hash1(&e.params);
                (s, prefix.with_iid(cga::addr::iid_from_hash1(h1, s)))
            })
            .collect();
        let exts: Vec<serde_json::Value> = repr
            .extensions
            .iter()
            .map(|x| match x {
                ExtensionRepr::MultiPrefix(m) => serde_json::json!({
                    "type": EXT_MULTI_PREFIX,
                    "name": "multi-prefix",
                    "p": m.public_key,
                    "reserved": m.reserved,
                    "prefixes": m.prefixes.iter().map(|p| Prefix64(*p).to_string()).collect::<Vec<_>>(),
                }),
                ExtensionRepr::Other { ext_type, data } => serde_json::json!({
                    "type": ext_type,
                    "name": "unknown",
                    "data": to_hex(data),
                }),
            })
            .collect();
        docs.push(serde_json::json!({
            "address": e.address.map(|a| a.to_string()),
            "octets": e.params.len(),
            "modifier": to_hex(&repr.modifier),
            "subnet_prefix": prefix.to_string(),
            "collision_count": repr.collision_count,
            "public_key": {
                "octets": repr.public_key.len(),
                "rsa_bits": rsa_bits,
                "hba_pseudo_key": pure_hba,
                "hex": to_hex(&repr.public_key),
            },
            "extensions": exts,
            "hash2": to_hex(&hash2),
            "hash2_zero_bits": zero_bits,
            "max_sec": max_sec,
            "addresses": addresses.iter().map(|(s, a)| serde_json::json!({"sec": s, "address": a.to_string()})).collect::<Vec<_>>(),
        }));

        if entries.len() > 1 {
            text.push_str(&format!("# entry {}\n", i + 1));
        }
        if let Some(a) = e.address {
            text.push_str(&format!("{:<17}{a}\n", "for address"));
        }
        let row = |t: &mut String, k: &str, v: String| t.push_str(&format!("{k:<17}{v}\n"));
        row(&mut text, "octets", e.params.len().to_string());
        row(&mut text, "modifier", to_hex(&repr.modifier));
        row(&mut text, "subnet prefix", prefix.to_string());
        row(
            &mut text,
            "collision count",
            repr.collision_count.to_string(),
        );
        row(
            &mut text,
            "public key",
            format!("{} octets: {key_desc}", repr.public_key.len()),
        );
        row(&mut text, "", to_hex(&repr.public_key));
        if repr.extensions.is_empty() {
            row(&mut text, "extensions", "none".into());
        }
        for (n, x) in repr.extensions.iter().enumerate() {
            let label = format!("extension {}", n + 1);
            match x {
                ExtensionRepr::MultiPrefix(m) => {
                    let mut v = format!(
                        "Multi-Prefix (type 0x0012), P = {} ({}), {} prefixes",
                        u8::from(m.public_key),
                        if m.public_key {
                            "real public key"
                        } else {
                            "pure HBA"
                        },
                        m.prefixes.len()
                    );
                    if m.reserved != 0 {
                        v.push_str(&format!(", reserved bits {:#x}", m.reserved));
                    }
                    row(&mut text, &label, v);
                    for p in &m.prefixes {
                        row(&mut text, "", format!("  {}", Prefix64(*p)));
                    }
                }
                ExtensionRepr::Other { ext_type, data } => row(
                    &mut text,
                    &label,
                    format!(
                        "type {ext_type:#06x} (not recognised; hashed), {} octets: {}",
                        data.len(),
                        to_hex(data)
                    ),
                ),
            }
        }
        row(
            &mut text,
            "hash2",
            format!(
                "{} ({zero_bits} leading zero bits: Sec 0–{max_sec})",
                to_hex(&hash2)
            ),
        );
        for (s, addr) in &addresses {
            row(&mut text, &format!("address (Sec {s})"), addr.to_string());
        }
    }
    match a.format {
        Format::Json if docs.len() == 1 => emit(None, &json(&docs[0])),
        Format::Json => emit(None, &json(&docs)),
        Format::Text => emit(None, &text),
    }
}

// ------------------------------------------------------------------------- bench

fn bench(a: Bench) -> Result<(), Fail> {
    let bits = check_bits(a.bits)?;
    let threads = threads(a.threads)?;
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        return Err(Fail::Input(format!(
            "--seconds {}: expected a duration between 0 and 3600",
            a.seconds
        )));
    }
    let key = PrivateKey::generate(bits)?.public_key()?;
    let tail = cga::hash::hash2_tail(key.der());
    let kernel = Kernel::best();
    let r = search::bench(
        &tail,
        Duration::from_secs_f64(a.seconds),
        &mut SearchConfig {
            threads,
            kernel,
            ..SearchConfig::default()
        },
    );
    let doc = output::Bench {
        bits,
        threads,
        hashes_per_s: r.hashes_per_s(),
        message_octets: r.message_octets,
    };
    match a.format {
        Format::Json => emit(None, &json(&doc)),
        Format::Text => {
            let t = |sec: u8| human_duration(cga::sec::expected_hashes(sec) / doc.hashes_per_s);
            emit(
                None,
                &format!(
                    "RSA-{bits} ({}-octet Hash2 input), {threads} threads, {kernel}: {}hashes/s\n\
                     expected search time: Sec 1 {}, Sec 2 {}, Sec 3 {}\n",
                    doc.message_octets,
                    output::si(doc.hashes_per_s),
                    t(1),
                    t(2),
                    t(3)
                ),
            )
        }
    }
}
