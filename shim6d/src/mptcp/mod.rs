//! shim6d as the kernel's MPTCP **userspace path manager**: subflows over the locator
//! pairs Shim6 verified (HBA/CGA) and REAP found working.
//!
//! # Layout
//!
//! | module | what |
//! | --- | --- |
//! | [`policy`] | the sans-IO [`policy::Engine`]: connection events, the Shim6 view of each peer, REAP path events and byte samples in; [`policy::Action`]s out; the policies `fullmesh`, `ndiffports N`, `elephant`, `backup` |
//! | [`driver`] | [`driver::Driver`]: runs the engine over `xfrm_sys::mptcp` (`EventStream`, `Manager`) on tokio, checks the `net.mptcp` sysctls, samples bytes from `sock_diag`, [`driver::Status`] for the `mptcp` control command |
//! | [`bytes`] | bytes carried per connection from `sock_diag`'s `mptcp_info` (the elephant policy's input) |
//! | [`sysctl`] | reading, explaining and (optionally) setting `net.mptcp.enabled` and `net.mptcp.path_manager` / `pm_type` |
//! | [`MptcpConfig`] | the `[mptcp]` section of the configuration |
//!
//! The kernel API and its pitfalls are in `xfrm_sys::mptcp` and
//! `/work/shared/docs/mptcp-pm.md`; the policies, the failure recipe and the measurement
//! plan in `docs/mptcp.md`.
//!
//! # How to wire it (service loop)
//!
//! The driver is a separate task in the daemon's network namespace, fed through a
//! channel of [`driver::Input`]s; it needs `CAP_NET_ADMIN` (the event group and every
//! command do).
//!
//! 1. **Start**: when `config.mptcp.enabled`,
//!    `Driver::start(&config.mptcp).await?.with_stall_timeout(Some(send_timeout))` with
//!    the REAP Send Timeout (the stall rule, [`policy`] rule 9; done in `service.rs`)
//!    (`Driver::start` checks
//!    the sysctls and refuses with [`driver::Error::Sysctl`], whose text says what to
//!    run) and `tokio::spawn(driver.run(inputs_rx, shutdown))`. Keep a
//!    [`driver::Handle`] (`driver.handle()`) for inputs and `status()`.
//! 2. **Shim6 Endpoint events** (after draining `poll_event`), with
//!    `info = endpoint.context(tag)`:
//!    - `Established { tag, key, .. }` and `PeerLocatorsChanged { tag }` →
//!      `handle.peer(PeerView { ulid_peer: info.key.ulid_peer, locals: <our locators>,
//!      remotes: info.peer_locators.iter().map(|l| l.addr).collect() })`. Only
//!      `peer_locators` is used: it holds Ls(peer) **after** HBA/CGA verification (the ULID
//!      counts as verified).
//!    - `PathFailed { tag, pair, .. }` → `handle.path_failed(info.key.ulid_peer, pair)`.
//!    - `PathUsable { tag, pair }` → `handle.path_usable(info.key.ulid_peer, pair)`.
//!    - `PathChanged { tag, from, to }` → nothing: the initial subflow rides the shim
//!      and follows by itself; if `from` was declared dead, `PathFailed` came first.
//!    - `Closed { key, .. }` / `Failed { key, .. }` → `handle.remove_peer(key.ulid_peer)`.
//! 3. **Local locators changed** (the address monitor): `handle.peer(..)` again for every
//!    established context, with the new `locals`.
//! 4. **Reload** (`SIGHUP`): `handle.set_policy(config.mptcp.policy_config())`.
//! 5. **Control command `mptcp [--json]`**: `handle.status().await` →
//!    [`driver::Status`]: `serde_json::to_string(&status)` for `--json`, its
//!    `Display` otherwise.
//! 6. **Shutdown**: drop the handle or fire the shutdown future; the driver returns. It
//!    leaves subflows in place (they belong to the applications' connections).

pub mod bytes;
pub mod driver;
pub mod policy;
pub mod sysctl;

use std::time::Duration;

use policy::{Policy, PolicyConfig};
use serde::Serialize;

/// Which policy `[mptcp] policy` names.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyName {
    /// `"fullmesh"`.
    Fullmesh,
    /// `"ndiffports"`.
    Ndiffports,
    /// `"elephant"`.
    Elephant,
    /// `"backup"`.
    Backup,
}

/// `[mptcp]`: the MPTCP path manager (issue 8). Off by default.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct MptcpConfig {
    /// `enabled`: run the path manager.
    pub enabled: bool,
    /// `policy`: `"fullmesh"`, `"ndiffports"`, `"elephant"` or `"backup"`.
    pub policy: PolicyName,
    /// `ndiffports`: subflows on the one pair under `policy = "ndiffports"`, 1..=8.
    pub ndiffports: u8,
    /// `elephant_threshold`: bytes a connection carries before its second subflow.
    pub elephant_threshold: u64,
    /// `elephant_step`: bytes per further subflow.
    pub elephant_step: u64,
    /// `max_subflows`: most subflows per connection, the initial one included, 1..=8.
    pub max_subflows: u8,
    /// `sample_interval`: how often the bytes carried are read from `sock_diag`.
    pub sample_interval: Duration,
    /// `set_sysctls`: set `net.mptcp.enabled=1` and `net.mptcp.path_manager=userspace`
    /// (or `pm_type=1`) at start instead of refusing to start.
    pub set_sysctls: bool,
}

/// 100 MB: the elephant threshold of the RFC 6897-API study.
pub const DEFAULT_ELEPHANT_THRESHOLD: u64 = 100_000_000;
/// 50 MB.
pub const DEFAULT_ELEPHANT_STEP: u64 = 50_000_000;

impl Default for MptcpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            policy: PolicyName::Fullmesh,
            ndiffports: 2,
            elephant_threshold: DEFAULT_ELEPHANT_THRESHOLD,
            elephant_step: DEFAULT_ELEPHANT_STEP,
            max_subflows: 4,
            sample_interval: Duration::from_secs(1),
            set_sysctls: false,
        }
    }
}

impl MptcpConfig {
    /// The engine's settings.
    pub fn policy_config(&self) -> PolicyConfig {
        let policy = match self.policy {
            PolicyName::Fullmesh => Policy::Fullmesh,
            PolicyName::Ndiffports => Policy::Ndiffports { n: self.ndiffports },
            PolicyName::Elephant => Policy::Elephant {
                threshold: self.elephant_threshold,
                step: self.elephant_step,
            },
            PolicyName::Backup => Policy::Backup,
        };
        PolicyConfig {
            policy,
            max_subflows: self.max_subflows,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn section_parses_into_the_policy() {
        let text = "[mptcp]\nenabled = true\npolicy = \"elephant\"\nelephant_threshold = \
                    1000000\nelephant_step = 500000\nmax_subflows = 3\nsample_interval = \
                    0.25\nset_sysctls = true\n";
        let c = Config::parse(text, Path::new("t.toml")).unwrap().mptcp;
        assert!(c.enabled && c.set_sysctls);
        assert_eq!(c.sample_interval, Duration::from_millis(250));
        assert_eq!(
            c.policy_config(),
            PolicyConfig {
                policy: Policy::Elephant {
                    threshold: 1_000_000,
                    step: 500_000
                },
                max_subflows: 3
            }
        );
        let c = Config::parse(
            "[mptcp]\npolicy = \"ndiffports\"\nndiffports = 5\n",
            Path::new("t"),
        )
        .unwrap()
        .mptcp;
        assert_eq!(c.policy_config().policy, Policy::Ndiffports { n: 5 });
        assert_eq!(
            Config::parse("", Path::new("t")).unwrap().mptcp,
            MptcpConfig::default()
        );
    }

    #[test]
    fn bad_values_are_reported_with_their_line() {
        let text = "[mptcp]\npolicy = \"roundrobin\"\nmax_subflows = 9\nelephant_step = 0\n\
                    bogus = 1\n";
        let e = Config::parse(text, Path::new("t.toml")).unwrap_err();
        let lines: Vec<(usize, &str)> = e
            .problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[0].0 == 2 && lines[0].1.contains("\"fullmesh\""),
            "{lines:?}"
        );
        assert!(lines[1].0 == 3 && lines[1].1.contains("1..=8"), "{lines:?}");
        assert!(
            lines[2].0 == 4 && lines[2].1.contains("elephant_step"),
            "{lines:?}"
        );
        assert!(
            lines[3].0 == 5 && lines[3].1.contains("unknown key `bogus`"),
            "{lines:?}"
        );
    }
}
