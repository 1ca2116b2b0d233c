//! The REAP exploration study (issue 5; results in `docs/reap-study.md`).
//!
//! ```text
//! cargo run --release -p reap --example exploration            # readable tables
//! cargo run --release -p reap --example exploration -- --json  # one JSON object
//! ```
//!
//! Options: `--seed N` (default 2011), `--quick` (20 trials per row, for a smoke run),
//! `--one-way` (only host A sends payload; B answers with Keepalives).
//! Everything runs in the deterministic simulator (`reap::sim`), in virtual time: the
//! same seed prints the same numbers on any machine.

use std::process::ExitCode;
use std::time::Instant;

use reap::sim::study::{self, StudyConfig};

fn main() -> ExitCode {
    let mut json = false;
    let mut cfg = StudyConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--one-way" => cfg.one_way = true,
            "--quick" => {
                cfg.broken_trials = 20;
                cfg.delay_trials = 20;
            }
            "--seed" => match args.next().and_then(|s| s.parse().ok()) {
                Some(s) => cfg.seed = s,
                None => {
                    eprintln!("--seed needs an integer");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: exploration [--json] [--quick] [--one-way] [--seed N]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                return ExitCode::from(2);
            }
        }
    }
    // The simulator needs an epoch; virtual time only adds durations to it, so this is
    // the single clock read of the whole study and does not affect its results.
    #[allow(clippy::disallowed_methods)]
    let epoch = Instant::now();
    match study::run(&cfg, epoch) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_tables());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("study failed: {e}");
            ExitCode::FAILURE
        }
    }
}
