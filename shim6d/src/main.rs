//! `shim6d`: the host-based IPv6 multihoming daemon (thin binary around
//! [`shim6d::service::run`]).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::{Parser, Subcommand};
use failure::{Failure, fail};
use shim6d::{
    config::{self, Config},
    control::client::{self, Endpoint},
    proto_core::ProtoCore,
    service::{self, Resources},
};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, reload, util::SubscriberInitExt};

/// Host-based IPv6 multihoming daemon: Shim6 (RFC 5533), REAP (RFC 5534), MipShim6 and an
/// MPTCP path manager.
///
/// shim6d keeps transport connections alive when one of a host's IPv6 paths fails. The
/// applications keep using one address pair (the ULIDs); when a flow is worth protecting,
/// shim6d runs the Shim6 handshake with the peer, both learn each other's locators (secured
/// by HBA or CGA addresses made with cga-tool), REAP watches the path, and on failure the
/// daemon rewrites packets onto a working locator pair through a TUN device.
///
/// Without a subcommand shim6d runs in the foreground until SIGINT or SIGTERM, logging to
/// standard error; SIGHUP reloads the configuration.
#[derive(Debug, Parser)]
#[command(name = "shim6d", version, about, long_about, after_long_help = AFTER_HELP)]
struct Cli {
    /// Configuration file (TOML). See conf/shim6d.toml for every option and its default.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = config::DEFAULT_PATH,
        global = true
    )]
    config: PathBuf,

    /// Validate the configuration and the files it names, print every problem with its
    /// file and line (or "ok"), and exit: 0 when valid, 1 otherwise.
    #[arg(long)]
    check_config: bool,

    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Send one command to a running daemon's control interface and print the reply.
    ///
    /// Examples: `shim6d ctl help`, `shim6d ctl stats --json`, `shim6d ctl cat '*'`.
    /// Exits 0 on success, 1 when the daemon answered with an error, 2 when it could not
    /// be reached. The address comes from --connect, --unix, or else the configuration's
    /// control section (falling back to the IPv6 loopback, port 50000, when the file
    /// cannot be read).
    Ctl {
        /// TCP address of the control interface.
        #[arg(long, value_name = "ADDR:PORT", conflicts_with = "unix")]
        connect: Option<SocketAddr>,
        /// Unix socket of the control interface.
        #[arg(long, value_name = "PATH")]
        unix: Option<PathBuf>,
        /// Seconds to wait for each step (connect, reply).
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        timeout: f64,
        /// The command and its arguments (`--json` may be among them).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

const AFTER_HELP: &str = "\
SIGNALS:
    SIGHUP           reload the configuration: it is validated first and kept unchanged
                     (with the reason logged) when invalid; [log], [trigger], [reap] and
                     the control limits apply at once, other sections at the next start.
    SIGINT, SIGTERM  stop: close the control sessions, remove every route and rule the
                     daemon added, delete the TUN device.

ENVIRONMENT:
    RUST_LOG         overrides [log] level (tracing filter syntax).

FILES:
    /etc/shim6d/shim6d.toml   the default configuration (conf/shim6d.toml in the sources)

EXIT STATUS:
    0 clean stop or valid configuration; 1 invalid configuration or runtime error;
    2 (ctl) daemon unreachable.

SEE ALSO:
    cga-tool(1) generates the HBA/CGA addresses and parameters shim6d announces.
    docs/daemon.md, README.md and docs/ARCHITECTURE.md in the source tree.";

/// What `main` reports: a message and an exit code (style.md allows anyhow in main;
/// one message type is all it needs, so no dependency).
mod failure {
    /// A failure to report and exit with.
    pub struct Failure {
        pub message: String,
        pub code: u8,
    }

    pub fn fail(code: u8, message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            code,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Sub::Ctl {
            connect,
            unix,
            timeout,
            words,
        }) => ctl(&cli.config, connect, unix, timeout, &words),
        None if cli.check_config => check_config(&cli.config),
        None => daemon(&cli.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("shim6d: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn check_config(path: &Path) -> Result<(), Failure> {
    match Config::load(path) {
        Ok(_) => {
            println!("ok");
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            Err(fail(1, ""))
        }
    }
}

fn ctl(
    config: &Path,
    connect: Option<SocketAddr>,
    unix: Option<PathBuf>,
    timeout: f64,
    words: &[String],
) -> Result<(), Failure> {
    let endpoint = match (connect, unix) {
        (Some(a), _) => Endpoint::Tcp(a),
        (None, Some(p)) => Endpoint::Unix(p),
        (None, None) => {
            // The configuration says where the daemon listens; parse errors are the
            // daemon's business, so only a usable answer is taken.
            let from_config = std::fs::read_to_string(config)
                .ok()
                .and_then(|t| Config::parse(&t, config).ok());
            match from_config {
                Some(c) => match (c.control.listen, c.control.unix_socket) {
                    (Some(a), _) => Endpoint::Tcp(a),
                    (None, Some(p)) => Endpoint::Unix(p),
                    (None, None) => {
                        return Err(fail(2, "the configuration disables the control interface"));
                    }
                },
                None => Endpoint::Tcp(config::DEFAULT_CONTROL),
            }
        }
    };
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(fail(2, "--timeout must be a positive number of seconds"));
    }
    let line = words.join(" ");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(2, format!("tokio runtime: {e}")))?;
    let answer = rt
        .block_on(client::oneshot(
            &endpoint,
            &line,
            Duration::from_secs_f64(timeout),
        ))
        .map_err(|e| fail(2, e))?;
    print!("{}", answer.text);
    if answer.is_error {
        Err(fail(1, ""))
    } else {
        Ok(())
    }
}

fn daemon(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path).map_err(|e| fail(1, format!("{e}")))?;
    // Logging: RUST_LOG wins; otherwise [log] level, changeable on reload.
    let env = std::env::var("RUST_LOG").ok();
    let initial = env.clone().unwrap_or_else(|| config.log.level.clone());
    let filter = EnvFilter::builder()
        .parse(&initial)
        .map_err(|e| fail(1, format!("log filter {initial:?}: {e}")))?;
    let (filter, log_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(1, format!("tokio runtime: {e}")))?;
    rt.block_on(async move {
        let mut resources = Resources::bind(&config)
            .await
            .map_err(|e| fail(1, e))?;
        // The protocol core runs when the configuration names an identity (a cga-tool
        // parameter file with addresses); its locators come from the address monitor
        // once the service loop runs.
        resources.core = match ProtoCore::from_config(&config, &[], std::time::Instant::now()) {
            Ok(Some(core)) => {
                tracing::info!(
                    ulids = ?core.ulids(),
                    params = %config.identity.params_file.display(),
                    "Shim6 protocol core ready"
                );
                Some(Box::new(core))
            }
            Ok(None) => {
                tracing::warn!(
                    params = %config.identity.params_file.display(),
                    "the parameter file lists no address: running without the protocol core"
                );
                None
            }
            Err(e) => return Err(fail(1, e)),
        };
        let (reload_tx, reload_rx) = mpsc::channel(1);
        resources.reload = Some(reload_rx);
        let mut hup = signal(SignalKind::hangup()).map_err(|e| fail(1, format!("SIGHUP: {e}")))?;
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| fail(1, format!("SIGTERM: {e}")))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| fail(1, format!("SIGINT: {e}")))?;
        let path = path.to_owned();
        // SIGHUP: validate the file again; a bad file changes nothing (and says why).
        let reloader = async move {
            while hup.recv().await.is_some() {
                match Config::load(&path) {
                    Ok(new) => {
                        if env.is_none() {
                            match EnvFilter::builder().parse(&new.log.level) {
                                Ok(f) => {
                                    if let Err(e) = log_handle.reload(f) {
                                        tracing::warn!(error = %e, "log level not changed");
                                    }
                                }
                                Err(e) => tracing::warn!(error = %e, "log level not changed"),
                            }
                        }
                        if reload_tx.send(new).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        for p in &e.problems {
                            tracing::error!(problem = %p, "reload refused, keeping the running configuration");
                        }
                    }
                }
            }
        };
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        };
        let run = service::run(config, resources, shutdown);
        tokio::pin!(run);
        // The reloader never ends on its own; run does.
        let result = tokio::select! {
            r = &mut run => r,
            () = reloader => run.await,
        };
        result.map_err(|e| {
            tracing::error!(error = %e, "shim6d failed");
            fail(1, e)
        })
    })
}
