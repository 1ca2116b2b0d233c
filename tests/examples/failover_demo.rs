//! The failover demo `./demo.sh` runs: two hosts in network namespaces (the LinShim6
//! testbed), a shim6d process on each, a TCP stream between their ULIDs, the current
//! path broken under it, and the timeline.
//!
//! `failover_demo [--json] [--send-timeout SECONDS] [--unidirectional] [--no-resend]
//! [--keep]` (`--no-resend`: both daemons with `[resend] enabled = false`)
//! (root; the `shim6d` and `cga-tool` binaries next to this one, or `$SHIM6D_BIN` /
//! `$CGA_TOOL_BIN`).

use std::process::ExitCode;

use shim6_tests::daemons::{self, Bins, Break, Options, Pair};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let keep = args.iter().any(|a| a == "--keep");
    let resend = !args.iter().any(|a| a == "--no-resend");
    let broken = if args.iter().any(|a| a == "--unidirectional") {
        Break::AtoB
    } else {
        Break::Bidirectional
    };
    let send_timeout = args
        .iter()
        .position(|a| a == "--send-timeout")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    if !xfrm_sys::netns::have_net_admin() {
        eprintln!("failover_demo: needs root (CAP_NET_ADMIN) to create network namespaces");
        return ExitCode::from(2);
    }
    let bins = match Bins::locate() {
        Ok(b) if b.cga_tool.is_some() => b,
        Ok(_) => {
            eprintln!("failover_demo: cga-tool not found (build it, or set CGA_TOOL_BIN)");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("failover_demo: {e}");
            return ExitCode::from(2);
        }
    };
    let mut say = |line: &str| {
        if !json {
            println!("  {line}");
        }
    };
    say(&format!(
        "building the testbed: hosts A and B, 3 prefixes each, a router that can break \
         any of the 18 one-way paths; HBA sets from cga-tool; shim6d on both (Send \
         Timeout {send_timeout} s, short for the demo; the RFC 5534 default is 15 s)"
    ));
    let options = Options {
        send_timeout,
        sec: 1,
        log: "info,shim6d=debug".into(),
        keep,
        daemon_b: true,
        resend,
        trigger: ["manual"; 2],
        mptcp: false,
    };
    let pair = match Pair::start("demo", &bins, options) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("failover_demo: setup: {e}");
            return ExitCode::from(1);
        }
    };
    let (ua, ub) = pair.ulids();
    say(&format!("A: ULID {ua}, locators {:?}", pair.a.hba));
    say(&format!("B: ULID {ub}, locators {:?}", pair.b().hba));
    let result = daemons::failover(&pair, broken, &mut say);
    let code = match &result {
        Ok(s) if s.stream_survived => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    };
    match result {
        Ok(s) => {
            if json {
                println!("{}", s.to_json());
            } else {
                println!();
                println!("  summary:");
                let j = s.to_json();
                if let Some(m) = j.as_object() {
                    for (k, v) in m {
                        println!("    {k:<28} {v}");
                    }
                }
            }
        }
        Err(e) => {
            eprintln!("failover_demo: {e}");
            eprintln!("--- shim6d log, A ---\n{}", tail(&pair.a.log()));
            eprintln!("--- shim6d log, B ---\n{}", tail(&pair.b().log()));
        }
    }
    if keep {
        eprintln!("kept: {}", pair.dir().display());
    }
    drop(pair);
    code
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
