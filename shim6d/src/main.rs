//! `shim6d`: the host-based IPv6 multihoming daemon.
//!
//! Only the command-line interface exists so far; the daemon itself is the subject of the
//! daemon issue. Running it without `--help` or `--version` says so and exits with status 2,
//! rather than pretending to run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Host-based IPv6 multihoming daemon: Shim6 (RFC 5533), REAP (RFC 5534), MipShim6 and an
/// MPTCP path manager.
///
/// shim6d keeps transport connections alive when one of a host's IPv6 paths fails. The
/// applications keep using one address pair (the ULIDs); when a flow is worth protecting,
/// shim6d runs the Shim6 handshake with the peer, both learn each other's locators (secured
/// by HBA or CGA addresses made with cga-tool), REAP watches the path, and on failure the
/// daemon rewrites packets onto a working locator pair through a TUN device.
#[derive(Debug, Parser)]
#[command(name = "shim6d", version, about, long_about, after_long_help = AFTER_HELP)]
struct Cli {
    /// Configuration file (TOML). See conf/shim6d.toml for every option and its default.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/shim6d/shim6d.toml"
    )]
    config: PathBuf,

    /// Validate the configuration, report each problem with its file and line, and exit.
    #[arg(long)]
    check_config: bool,
}

const AFTER_HELP: &str = "\
STATUS:
    This build carries the wire layer and the CGA/HBA tooling; the daemon's data plane,
    control interface and kernel plumbing are not built yet. Running shim6d exits with
    status 2 and says so.

SEE ALSO:
    cga-tool(1) generates the HBA/CGA addresses and parameters shim6d announces.
    README.md and docs/ARCHITECTURE.md in the source tree.";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.check_config {
        return match shim6d::config::Config::load(&cli.config) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    eprintln!(
        "shim6d: the daemon is not implemented yet in this build (config {} not read{}); \
         see README.md",
        cli.config.display(),
        if cli.check_config {
            ", --check-config unavailable"
        } else {
            ""
        }
    );
    ExitCode::from(2)
}
