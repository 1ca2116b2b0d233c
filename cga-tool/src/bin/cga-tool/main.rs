//! `cga-tool`: generate, verify, sign and inspect CGAs and HBA sets (RFC 3972, RFC 5535),
//! and measure the modifier search.
//!
//! The binary is a thin shell over the `cga` library: argument parsing (clap), input
//! decoding, output formatting (text or JSON), the progress line, Ctrl-C and the resume
//! file. Exit codes: 0 success, 1 verification failed, 2 bad input or usage,
//! 3 operational failure, 130 interrupted.

mod cli;
mod input;
mod output;
mod resume;
mod signal;

use std::process::ExitCode;

use clap::Parser as _;

/// A failure of a subcommand: the one line printed and the exit code.
#[derive(Debug)]
pub enum Fail {
    /// The address or signature does not verify (exit 1).
    Invalid(String),
    /// Bad input: malformed prefix, key, hex, parameters, unsupported Sec (exit 2).
    Input(String),
    /// Something failed that is not the input's fault (exit 3).
    Runtime(String),
    /// Ctrl-C (exit 130).
    Interrupted(String),
}

impl Fail {
    fn code(&self) -> u8 {
        match self {
            Self::Invalid(_) => 1,
            Self::Input(_) => 2,
            Self::Runtime(_) => 3,
            Self::Interrupted(_) => 130,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Invalid(m) | Self::Input(m) | Self::Runtime(m) | Self::Interrupted(m) => m,
        }
    }
}

impl From<cga::Error> for Fail {
    fn from(e: cga::Error) -> Self {
        match e {
            cga::Error::Crypto(_) | cga::Error::SearchExhausted => Self::Runtime(e.to_string()),
            cga::Error::Cancelled { .. } => Self::Interrupted(e.to_string()),
            cga::Error::Verify(_) | cga::Error::Signature(_) => Self::Invalid(e.to_string()),
            _ => Self::Input(e.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("cga-tool: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}
