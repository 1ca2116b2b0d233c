//! The configuration file (TOML): every option the daemon reads, its default, and the
//! validation that names **file, line and problem** for each error.
//!
//! # Reading
//!
//! [`Config::parse`] reads a document from a string; [`Config::load`] reads a file and
//! then checks the files it references ([`Config::check_files`]). Both collect *every*
//! problem instead of stopping at the first: the document is parsed into toml's spanned
//! tree (`toml::de::DeTable`, with error recovery for syntax errors) and walked by hand,
//! section by section, so that an unknown key, a wrong type, a bad address or prefix or an
//! out-of-range value each become one [`Problem`] with the line it sits on. (serde would
//! stop at the first error, and the operator would fix a file one line per run.)
//!
//! Missing keys take their defaults ([`Config::default`]); `conf/shim6d.toml` in the
//! source tree lists every key with its default, and a test checks that the file parses to
//! exactly [`Config::default`] and names every key this module reads.
//!
//! # What can change on reload
//!
//! [`Config::restart_needed`] lists the keys whose change only takes effect after a
//! restart (the TUN device, the routing plumbing, the control listener, the identity);
//! everything else (log level, trigger policy, REAP timers, control limits) is applied on
//! `SIGHUP`.

use std::{
    collections::BTreeSet,
    fmt,
    net::{Ipv6Addr, SocketAddr},
    ops::{Range, RangeInclusive},
    path::{Path, PathBuf},
    time::Duration,
};

use shim6_wire::shim6::probe::MAX_PROBE_RECORDS;
use toml::{
    Spanned,
    de::{DeTable, DeValue},
};
use xfrm_sys::Ipv6Prefix;

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/shim6d/shim6d.toml";

/// One thing wrong with a configuration: where, and what.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problem {
    /// The file the problem is in (the configuration file, or a file it references).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file (it cannot be read).
    pub line: usize,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A configuration that could not be used: every problem found, in file order.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct ConfigError {
    /// The problems, at least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// How the host's locators are secured (RFC 5533 §4.4: a locator list must be verifiable).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IdentityMode {
    /// Hash-based addresses (RFC 5535): the ULIDs and all locators are HBAs of one
    /// multi-prefix parameter set; no key needed.
    Hba,
    /// Cryptographically generated addresses (RFC 3972): locator lists are signed with the
    /// key in `identity.key_file`.
    Cga,
}

impl IdentityMode {
    /// The configuration spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hba => "hba",
            Self::Cga => "cga",
        }
    }
}

/// `[identity]`: who this host is to its peers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Identity {
    /// `mode`: HBA or CGA.
    pub mode: IdentityMode,
    /// `params_file`: the output of `cga-tool generate --format json` (addresses and
    /// their CGA Parameter Data Structures). Relative paths are relative to the
    /// configuration file.
    pub params_file: PathBuf,
    /// `key_file`: the private key of a CGA identity (PEM); read only in CGA mode.
    pub key_file: PathBuf,
    /// `ulids`: the local addresses that act as ULIDs; empty means every address of
    /// `params_file`.
    pub ulids: Vec<Ipv6Addr>,
    /// `locators`: a fixed locator list; empty means the usable global addresses of the
    /// interfaces, followed by the address monitor.
    pub locators: Vec<Ipv6Addr>,
}

/// `[interfaces]`: which interfaces provide locators.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Interfaces {
    /// `include`: interface names; empty means all but `lo` and the TUN.
    pub include: Vec<String>,
    /// `exclude`: interface names never used.
    pub exclude: Vec<String>,
}

/// `[tun]`: the shim device.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tun {
    /// `name`: the device name.
    pub name: String,
    /// `mtu`: the device MTU. The payload extension header adds 8 octets (RFC 5533 §5.1),
    /// so the default leaves room for it under a 1500-octet path MTU.
    pub mtu: u32,
    /// `batch`: how many packets one turn of the data-plane loop reads at most (with
    /// `offload`, at least 128: one TCP super-segment must fit).
    pub batch: usize,
    /// `offload`: open the TUN with `IFF_VNET_HDR` and TCP/UDP segmentation offload:
    /// the daemon reads 64 KB super-segments and splits them, and coalesces what it
    /// writes (`crate::dataplane::tun`, "Offload").
    pub offload: bool,
    /// `packet_socket`: send data packets through an `AF_PACKET` socket to the next
    /// hop the kernel's routing and neighbour tables give (with `offload`, unchanged
    /// super-segments whole), bypassing the IPv6 output path's netfilter hooks; the raw
    /// socket takes what cannot go that way (`crate::dataplane::gso`).
    pub packet_socket: bool,
}

/// `[resend]`: re-send on the new path, after a REAP switch, the TCP segments sent into
/// the failure (issue 6 item 4; [`crate::resend`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Resend {
    /// `enabled`: keep copies and re-send them on `PathChanged`.
    pub enabled: bool,
    /// `tcp_only`: keep TCP segments only (other packets leave by age and limits).
    pub tcp_only: bool,
    /// `max_age`: copies older than this are dropped.
    pub max_age: Duration,
    /// `max_context_bytes`: bytes kept per context.
    pub max_context_bytes: usize,
    /// `max_total_bytes`: bytes kept over all contexts.
    pub max_total_bytes: usize,
}

impl Resend {
    /// The buffer limits these options give.
    pub fn limits(&self) -> crate::resend::Limits {
        crate::resend::Limits {
            max_age: self.max_age,
            max_context_bytes: self.max_context_bytes,
            max_total_bytes: self.max_total_bytes,
            tcp_only: self.tcp_only,
        }
    }
}

/// `[routing]`: the kernel plumbing that steers protected flows into the TUN.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Routing {
    /// `fwmark`: the mark on the daemon's own packets (`SO_MARK`).
    pub fwmark: u32,
    /// `table`: the routing table holding the per-peer routes into the TUN.
    pub table: u32,
    /// `rule_priority`: priority of `not fwmark MARK lookup TABLE`.
    pub rule_priority: u32,
}

/// `[reap]`: failure detection and exploration (RFC 5534 §4, §7); the rest of
/// [`reap::Config`] keeps its defaults.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reap {
    /// `send_timeout`: Send Timeout, default 15 s (RFC 5534 §7); announced to the peer in
    /// a Keepalive Timeout option when it differs from the default (RFC 5534 §5.3).
    pub send_timeout: Duration,
    /// `initial_probe_timeout`: gap between the first probes, 0.5 s (RFC 5534 §4.3).
    pub initial_probe_timeout: Duration,
    /// `max_probe_timeout`: cap of the probe back-off, 60 s (RFC 5534 §4.3).
    pub max_probe_timeout: Duration,
    /// `burst`: probes sent at once when an exploration phase starts (1 = the RFC's
    /// sequential exploration; see [`reap::Config::burst`]).
    pub burst: usize,
    /// `orthogonal_first`: try pairs sharing no locator with the failed one first.
    pub orthogonal_first: bool,
}

impl Reap {
    /// The per-context REAP configuration these options give.
    pub fn reap_config(&self) -> reap::Config {
        reap::Config {
            send_timeout: self.send_timeout,
            initial_probe_timeout: self.initial_probe_timeout,
            max_probe_timeout: self.max_probe_timeout,
            burst: self.burst,
            orthogonal_first: self.orthogonal_first,
            ..reap::Config::default()
        }
    }
}

/// `[trigger] mode`: who starts contexts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TriggerMode {
    /// Contexts are started for flows passing the thresholds (and `always` rules).
    Auto,
    /// Never initiate: answer handshakes only (servers).
    ResponderOnly,
    /// Initiate only on `establish` from the control interface.
    Manual,
}

impl TriggerMode {
    /// The configuration spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ResponderOnly => "responder-only",
            Self::Manual => "manual",
        }
    }
}

/// Transport protocol selector of a trigger rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    /// Any protocol.
    Any,
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
}

impl Protocol {
    /// The configuration spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// What a trigger rule decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// Start a context at the flow's first packet.
    Always,
    /// Never start a context for the flow.
    Never,
}

impl Action {
    /// The configuration spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

/// One `[[trigger.rule]]`; the first matching rule wins.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TriggerRule {
    /// `prefix`: the peer's address must be in it.
    pub prefix: Ipv6Prefix,
    /// `port`: a TCP/UDP port, if given; either side's port matches (the peer's port
    /// for a client, ours for a server).
    pub port: Option<u16>,
    /// `protocol`: `any`, `tcp` or `udp`.
    pub protocol: Protocol,
    /// `action`: `always` or `never`.
    pub action: Action,
}

/// `[trigger]`: which flows get a context.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Trigger {
    /// `mode`.
    pub mode: TriggerMode,
    /// `bytes`: a flow that passes this many bytes gets a context (LinShim6: 2 KB); 0
    /// turns the byte threshold off.
    pub bytes: u64,
    /// `seconds`: a flow alive this long gets a context (LinShim6: 60 s); 0 turns the
    /// age threshold off.
    pub seconds: Duration,
    /// `rule`: policy rules, first match wins.
    pub rules: Vec<TriggerRule>,
}

impl Protocol {
    /// Whether the IP protocol number `proto` (next header of the transport) matches.
    pub fn matches(self, proto: u8) -> bool {
        match self {
            Self::Any => true,
            // IANA protocol numbers.
            Self::Tcp => proto == 6,
            Self::Udp => proto == 17,
        }
    }
}

/// A flow's transport ports (TCP and UDP).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Ports {
    /// Our port.
    pub local: u16,
    /// The peer's port.
    pub peer: u16,
}

impl TriggerRule {
    /// Whether a flow to `peer` over IP protocol `proto`, with transport ports `ports`
    /// (`None`: a transport without ports), matches this rule. A rule's port matches
    /// either side's port: `never port 53` keeps out our queries to DNS servers and the
    /// queries a DNS server of ours answers.
    pub fn matches(&self, peer: Ipv6Addr, proto: u8, ports: Option<Ports>) -> bool {
        self.prefix.contains(peer)
            && self.protocol.matches(proto)
            && self
                .port
                .is_none_or(|p| ports.is_some_and(|x| x.local == p || x.peer == p))
    }
}

impl Trigger {
    /// The action of the first rule matching the flow, if any; a flow matching none
    /// follows the byte and age thresholds.
    pub fn rule_for(&self, peer: Ipv6Addr, proto: u8, ports: Option<Ports>) -> Option<Action> {
        self.rules
            .iter()
            .find(|r| r.matches(peer, proto, ports))
            .map(|r| r.action)
    }
}

/// `[control]`: the telnet-compatible control interface.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Control {
    /// `listen`: TCP address; `None` (the empty string) disables the TCP listener.
    pub listen: Option<SocketAddr>,
    /// `allow_remote`: must be `true` to listen on a non-loopback address.
    pub allow_remote: bool,
    /// `unix_socket`: optional path of a unix stream socket (the empty string: none).
    pub unix_socket: Option<PathBuf>,
    /// `max_clients`: concurrent sessions; more are refused with an error line.
    pub max_clients: usize,
    /// `max_line`: longest accepted command line in bytes.
    pub max_line: usize,
}

/// `[log]`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Log {
    /// `level`: a `tracing` filter (`info`, `shim6d=debug,warn`, …); `RUST_LOG` overrides it.
    pub level: String,
}

/// The whole configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    /// `[identity]`.
    pub identity: Identity,
    /// `[interfaces]`.
    pub interfaces: Interfaces,
    /// `[tun]`.
    pub tun: Tun,
    /// `[routing]`.
    pub routing: Routing,
    /// `[reap]`.
    pub reap: Reap,
    /// `[trigger]`.
    pub trigger: Trigger,
    /// `[resend]`.
    pub resend: Resend,
    /// `[control]`.
    pub control: Control,
    /// `[log]`.
    pub log: Log,
    /// `[mptcp]`: the MPTCP path manager (its struct and docs are in [`crate::mptcp`]).
    pub mptcp: crate::mptcp::MptcpConfig,
    /// `[mip6]`: MipShim6, home agent or mobile node (its struct and docs are in
    /// [`crate::mip`]).
    pub mip6: crate::mip::Mip6Config,
}

/// RFC 8200 §5: every IPv6 link carries 1280 octets.
pub const IPV6_MIN_MTU: u32 = 1280;
/// RFC 5533 §5.1: the payload extension header is 8 octets.
pub const PAYLOAD_HEADER_LEN: u32 = 8;
/// Default TUN MTU: a 1500-octet path minus the payload extension header.
pub const DEFAULT_TUN_MTU: u32 = 1500 - PAYLOAD_HEADER_LEN;
/// Default control address (loopback).
pub const DEFAULT_CONTROL: SocketAddr = SocketAddr::V6(std::net::SocketAddrV6::new(
    Ipv6Addr::LOCALHOST,
    50000,
    0,
    0,
));

impl Default for Config {
    fn default() -> Self {
        Self {
            identity: Identity {
                mode: IdentityMode::Hba,
                params_file: PathBuf::from("/etc/shim6d/hba.json"),
                key_file: PathBuf::from("/etc/shim6d/cga-key.pem"),
                ulids: Vec::new(),
                locators: Vec::new(),
            },
            interfaces: Interfaces::default(),
            tun: Tun {
                name: "shim6".into(),
                mtu: DEFAULT_TUN_MTU,
                batch: 32,
                offload: true,
                packet_socket: true,
            },
            routing: Routing {
                fwmark: 0x51,
                table: 51,
                rule_priority: 100,
            },
            reap: {
                let r = reap::Config::default();
                Reap {
                    send_timeout: r.send_timeout,
                    initial_probe_timeout: r.initial_probe_timeout,
                    max_probe_timeout: r.max_probe_timeout,
                    burst: r.burst,
                    orthogonal_first: r.orthogonal_first,
                }
            },
            trigger: Trigger {
                mode: TriggerMode::Auto,
                bytes: 2048,
                seconds: Duration::from_secs(60),
                // DNS is short-lived request/response traffic that retries by itself.
                rules: vec![TriggerRule {
                    prefix: Ipv6Prefix::new(Ipv6Addr::UNSPECIFIED, 0)
                        .expect("::/0 is a valid prefix"),
                    port: Some(53),
                    protocol: Protocol::Any,
                    action: Action::Never,
                }],
            },
            resend: {
                let l = crate::resend::Limits::default();
                Resend {
                    enabled: true,
                    tcp_only: l.tcp_only,
                    max_age: l.max_age,
                    max_context_bytes: l.max_context_bytes,
                    max_total_bytes: l.max_total_bytes,
                }
            },
            control: Control {
                listen: Some(DEFAULT_CONTROL),
                allow_remote: false,
                unix_socket: None,
                max_clients: 8,
                max_line: 1024,
            },
            log: Log {
                level: "info".into(),
            },
            mptcp: crate::mptcp::MptcpConfig::default(),
            mip6: crate::mip::Mip6Config::default(),
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`, then checks the files it references.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![Problem {
                file: path.to_owned(),
                line: 0,
                message: format!("cannot read the configuration: {e}"),
            }],
        })?;
        let (mut config, mut problems) = Self::parse_all(&text, path);
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        // Referenced files are checked even when the document has problems, so that one
        // run of --check-config lists everything.
        problems.extend(config.check_files(&text, path));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Parses and validates a document; `file` names it in problems. Referenced files are
    /// not looked at (see [`Config::check_files`]), relative paths are kept as written.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let (config, problems) = Self::parse_all(text, file);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The configuration read with defaults for whatever was wrong, and the problems in
    /// line order.
    fn parse_all(text: &str, file: &Path) -> (Self, Vec<Problem>) {
        let mut r = Reader::new(text, file);
        let config = r.document();
        r.problems.sort_by_key(|p| p.line);
        (config, r.problems)
    }

    /// Every key this module reads, as `section.key` (`trigger.rule.port` for the keys of
    /// the `[[trigger.rule]]` tables).
    pub fn known_keys() -> BTreeSet<String> {
        let mut r = Reader::new("", Path::new("-"));
        r.document();
        // Rule tables are only walked when present: walk an empty one for its keys.
        r.rule(&DeTable::default(), 0..0);
        r.keys
    }

    /// Relative `params_file`, `key_file` and `unix_socket` become relative to `base`
    /// (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.identity.params_file, &mut self.identity.key_file] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = &mut self.control.unix_socket
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
    }

    /// Problems with the files the configuration references: `identity.params_file` must
    /// exist and hold a JSON object (cga-tool's output), and in CGA mode
    /// `identity.key_file` must exist. `text` and `file` are the configuration's, to give
    /// the line of the key.
    pub fn check_files(&self, text: &str, file: &Path) -> Vec<Problem> {
        let line_of_key = |section: &str, key: &str| find_key_line(text, section, key);
        let mut problems = Vec::new();
        let params = &self.identity.params_file;
        match std::fs::read_to_string(params) {
            Err(e) => problems.push(Problem {
                file: file.to_owned(),
                line: line_of_key("identity", "params_file"),
                message: format!(
                    "identity.params_file: cannot read {}: {e} (make it with `cga-tool generate \
                     --format json --out FILE`)",
                    params.display()
                ),
            }),
            Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
                Ok(v) if v.is_object() => problems.extend(check_identity(&v, &json, params)),
                Ok(_) => problems.push(Problem {
                    file: params.clone(),
                    line: 1,
                    message: "not a JSON object (expected the output of `cga-tool generate \
                              --format json`)"
                        .into(),
                }),
                Err(e) => problems.push(Problem {
                    file: params.clone(),
                    line: e.line(),
                    message: format!("not valid JSON: {e}"),
                }),
            },
        }
        if self.identity.mode == IdentityMode::Cga {
            let key = &self.identity.key_file;
            let message = match std::fs::metadata(key) {
                Err(e) => Some(format!(
                    "identity.key_file: cannot read {}: {e} (needed with mode = \"cga\")",
                    key.display()
                )),
                // With an identity to sign for, the key must load and be the one in the
                // parameters (RFC 3972 §4), else every signature fails at the peer.
                Ok(_) => first_params(params).and_then(|p| {
                    cga::PrivateKey::load(key)
                        .map_err(|e| e.to_string())
                        .and_then(|k| crate::proto_core::key_signs_for(&p, &k))
                        .err()
                        .map(|e| format!("identity.key_file {}: {e}", key.display()))
                }),
            };
            if let Some(message) = message {
                problems.push(Problem {
                    file: file.to_owned(),
                    line: line_of_key("identity", "key_file"),
                    message,
                });
            }
        }
        problems
    }

    /// The keys whose values differ between `self` and `new` and that only take effect
    /// after a restart.
    pub fn restart_needed(&self, new: &Self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.identity != new.identity {
            keys.push("identity");
        }
        if self.interfaces != new.interfaces {
            keys.push("interfaces");
        }
        if self.tun.name != new.tun.name || self.tun.mtu != new.tun.mtu {
            keys.push("tun");
        }
        if self.routing != new.routing {
            keys.push("routing");
        }
        if self.resend != new.resend {
            keys.push("resend");
        }
        if self.mptcp.enabled != new.mptcp.enabled
            || self.mptcp.sample_interval != new.mptcp.sample_interval
            || self.mptcp.set_sysctls != new.mptcp.set_sysctls
        {
            keys.push("mptcp.enabled/sample_interval/set_sysctls");
        }
        if self.mip6 != new.mip6 {
            keys.push("mip6");
        }
        if self.control.listen != new.control.listen
            || self.control.allow_remote != new.control.allow_remote
            || self.control.unix_socket != new.control.unix_socket
        {
            keys.push("control.listen/unix_socket");
        }
        keys
    }
}

/// Problems with the addresses of a cga-tool parameter file: each entry needs an
/// address and hex parameters, and the address must verify against them (RFC 3972 §5,
/// RFC 5535 §7), or the protocol core would refuse to start. No addresses at all is not a
/// problem: the daemon then runs without the core.
/// The CGA Parameters of the first address of a parameter file, when it has one that
/// parses (the other problems are [`check_identity`]'s).
fn first_params(params_file: &Path) -> Option<Vec<u8>> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(params_file).ok()?).ok()?;
    let h = v.get("addresses")?.get(0)?.get("params")?.as_str()?;
    (0..h.len())
        .step_by(2)
        .map(|k| h.get(k..k + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn check_identity(v: &serde_json::Value, text: &str, file: &Path) -> Vec<Problem> {
    let Some(entries) = v.get("addresses").and_then(|a| a.as_array()) else {
        return Vec::new();
    };
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map_or(0, |i| i + 1)
    };
    let mut problems = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let addr = e.get("address").and_then(|a| a.as_str());
        let params = e.get("params").and_then(|a| a.as_str());
        let (Some(addr), Some(params)) = (addr, params) else {
            problems.push(Problem {
                file: file.to_owned(),
                line: 0,
                message: format!("addresses[{i}]: needs \"address\" and \"params\""),
            });
            continue;
        };
        let line = line_of(addr);
        let parsed: Result<Ipv6Addr, _> = addr.parse();
        let bytes = (params.len() % 2 == 0)
            .then(|| {
                (0..params.len())
                    .step_by(2)
                    .map(|k| {
                        params
                            .get(k..k + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten();
        let message = match (parsed, bytes) {
            (Err(e), _) => Some(format!(
                "addresses[{i}]: {addr:?} is not an IPv6 address: {e}"
            )),
            (_, None) => Some(format!("addresses[{i}]: params is not hex")),
            (Ok(a), Some(b)) => cga::verify(&a, &b)
                .err()
                .map(|e| format!("addresses[{i}]: {a} does not verify against its params: {e}")),
        };
        if let Some(message) = message {
            problems.push(Problem {
                file: file.to_owned(),
                line,
                message,
            });
        }
    }
    problems
}

/// The line of `key = ` inside `[section]` of `text`, for problems found after parsing;
/// 0 when the key is not written (its default is in use).
fn find_key_line(text: &str, section: &str, key: &str) -> usize {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|s| s.split(']').next()) {
            current = name.trim_matches(['[', ' ']).to_owned();
        } else if current == section
            && let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return i + 1;
        }
    }
    0
}

type Value<'i> = Spanned<DeValue<'i>>;

/// The walker: reads sections with defaults, records problems and the keys it asked for.
struct Reader<'a> {
    text: &'a str,
    file: &'a Path,
    problems: Vec<Problem>,
    keys: BTreeSet<String>,
}

/// A table being read: which of its keys were asked for, to report the others.
struct Section<'t, 'i> {
    name: &'static str,
    table: &'t DeTable<'i>,
    used: Vec<&'static str>,
}

impl<'t, 'i> Section<'t, 'i> {
    fn new(name: &'static str, table: &'t DeTable<'i>) -> Self {
        Self {
            name,
            table,
            used: Vec::new(),
        }
    }
}

impl<'a> Reader<'a> {
    fn new(text: &'a str, file: &'a Path) -> Self {
        Self {
            text,
            file,
            problems: Vec::new(),
            keys: BTreeSet::new(),
        }
    }

    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn problem(&mut self, span: &Range<usize>, message: String) {
        let line = self.line(span);
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line,
            message,
        });
    }

    /// Looks `key` up in `sec`, recording that it is known.
    fn get<'t, 'i>(
        &mut self,
        sec: &mut Section<'t, 'i>,
        key: &'static str,
    ) -> Option<&'t Value<'i>> {
        sec.used.push(key);
        self.keys.insert(format!("{}.{key}", sec.name));
        sec.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    /// Reports the keys of `sec` nobody asked for.
    fn finish(&mut self, sec: Section<'_, '_>) {
        for (k, _) in sec.table.iter() {
            let name: &str = k.get_ref();
            if !sec.used.contains(&name) {
                let message = format!(
                    "unknown key `{name}` in [{}] (known: {})",
                    sec.name,
                    sec.used.join(", ")
                );
                self.problem(&k.span(), message);
            }
        }
    }

    fn type_error(&mut self, sec: &str, key: &str, v: &Value<'_>, expected: &str) {
        let message = format!(
            "{sec}.{key}: expected {expected}, found {}",
            v.get_ref().type_str()
        );
        self.problem(&v.span(), message);
    }

    fn string(&mut self, sec: &mut Section<'_, '_>, key: &'static str, default: &str) -> String {
        match self.get(sec, key) {
            None => default.to_owned(),
            Some(v) => match v.get_ref().as_str() {
                Some(s) => s.to_owned(),
                None => {
                    self.type_error(sec.name, key, v, "a string");
                    default.to_owned()
                }
            },
        }
    }

    fn boolean(&mut self, sec: &mut Section<'_, '_>, key: &'static str, default: bool) -> bool {
        match self.get(sec, key) {
            None => default,
            Some(v) => v.get_ref().as_bool().unwrap_or_else(|| {
                self.type_error(sec.name, key, v, "true or false");
                default
            }),
        }
    }

    /// An integer in `range`; `why` explains the range in the problem.
    fn int<T>(
        &mut self,
        sec: &mut Section<'_, '_>,
        key: &'static str,
        range: RangeInclusive<u64>,
        default: T,
        why: &str,
    ) -> T
    where
        T: TryFrom<u64>,
    {
        let Some(v) = self.get(sec, key) else {
            return default;
        };
        let Some(i) = v.get_ref().as_integer() else {
            self.type_error(sec.name, key, v, "an integer");
            return default;
        };
        let parsed = i64::from_str_radix(i.as_str(), i.radix()).ok();
        match parsed.and_then(|n| u64::try_from(n).ok()) {
            Some(n) if range.contains(&n) => T::try_from(n).unwrap_or(default),
            _ => {
                let message = format!(
                    "{}.{key} = {} is out of range {}..={}{}{why}",
                    sec.name,
                    display_int(i.as_str(), i.radix()),
                    range.start(),
                    range.end(),
                    if why.is_empty() { "" } else { ": " },
                );
                self.problem(&v.span(), message);
                default
            }
        }
    }

    /// Seconds, integer or float, in `range` (seconds).
    fn seconds(
        &mut self,
        sec: &mut Section<'_, '_>,
        key: &'static str,
        range: RangeInclusive<f64>,
        default: Duration,
        why: &str,
    ) -> Duration {
        let Some(v) = self.get(sec, key) else {
            return default;
        };
        let value = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => {
                self.type_error(sec.name, key, v, "a number of seconds");
                return default;
            }
        };
        match value {
            Some(s) if range.contains(&s) => Duration::from_secs_f64(s),
            _ => {
                let message = format!(
                    "{}.{key} is out of range {}..={} seconds{}{why}",
                    sec.name,
                    range.start(),
                    range.end(),
                    if why.is_empty() { "" } else { ": " },
                );
                self.problem(&v.span(), message);
                default
            }
        }
    }

    /// A string that must be one of `choices`.
    fn choice<T: Copy>(
        &mut self,
        sec: &mut Section<'_, '_>,
        key: &'static str,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(v) = self.get(sec, key) else {
            return default;
        };
        let Some(s) = v.get_ref().as_str() else {
            self.type_error(sec.name, key, v, "a string");
            return default;
        };
        if let Some((_, t)) = choices.iter().find(|(name, _)| *name == s) {
            return *t;
        }
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let message = format!(
            "{}.{key} = \"{s}\" is not one of {}",
            sec.name,
            names.join(", ")
        );
        self.problem(&v.span(), message);
        default
    }

    /// An array whose elements are parsed by `parse` (which returns an error message).
    fn list<T>(
        &mut self,
        sec: &mut Section<'_, '_>,
        key: &'static str,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let Some(v) = self.get(sec, key) else {
            return Vec::new();
        };
        let Some(items) = v.get_ref().as_array() else {
            self.type_error(sec.name, key, v, &format!("an array of {what}"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref().as_str() {
                None => self.type_error(sec.name, key, item, what),
                Some(s) => match parse(s) {
                    Ok(t) => out.push(t),
                    Err(e) => {
                        let message = format!("{}.{key}: {e}", sec.name);
                        self.problem(&item.span(), message);
                    }
                },
            }
        }
        out
    }

    /// A sub-table `key` of the document root.
    fn table<'t, 'i>(
        &mut self,
        root: &mut Section<'t, 'i>,
        key: &'static str,
        empty: &'t DeTable<'i>,
    ) -> &'t DeTable<'i> {
        match self.get(root, key) {
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => t,
                _ => {
                    self.type_error("config", key, v, "a table");
                    empty
                }
            },
            None => empty,
        }
    }

    fn document(&mut self) -> Config {
        let (doc, errors) = DeTable::parse_recoverable(self.text);
        for e in &errors {
            let span = e.span().unwrap_or(0..0);
            self.problem(&span, format!("TOML syntax: {}", e.message()));
        }
        // What the parser recovered around a syntax error is a guess (a value may come
        // out empty): checking it would add problems that are not in the file.
        let doc = if errors.is_empty() {
            doc.into_inner()
        } else {
            DeTable::default()
        };
        let empty = DeTable::default();
        let d = Config::default();
        let mut root = Section::new("config", &doc);

        let t = self.table(&mut root, "identity", &empty);
        let mut s = Section::new("identity", t);
        let identity = Identity {
            mode: self.choice(
                &mut s,
                "mode",
                &[("hba", IdentityMode::Hba), ("cga", IdentityMode::Cga)],
                d.identity.mode,
            ),
            params_file: self.path(&mut s, "params_file", &d.identity.params_file),
            key_file: self.path(&mut s, "key_file", &d.identity.key_file),
            ulids: self.list(&mut s, "ulids", "IPv6 addresses", parse_unicast),
            locators: self.list(&mut s, "locators", "IPv6 addresses", parse_unicast),
        };
        self.finish(s);

        let t = self.table(&mut root, "interfaces", &empty);
        let mut s = Section::new("interfaces", t);
        let interfaces = Interfaces {
            include: self.list(&mut s, "include", "interface names", parse_ifname),
            exclude: self.list(&mut s, "exclude", "interface names", parse_ifname),
        };
        self.finish(s);

        let t = self.table(&mut root, "tun", &empty);
        let mut s = Section::new("tun", t);
        let name = self.string(&mut s, "name", &d.tun.name);
        if let Err(e) = parse_ifname(&name)
            && let Some(v) = s.table.iter().find(|(k, _)| k.get_ref() == "name")
        {
            let span = v.1.span();
            self.problem(&span, format!("tun.name: {e}"));
        }
        let tun = Tun {
            name,
            mtu: self.int(
                &mut s,
                "mtu",
                u64::from(IPV6_MIN_MTU)..=65535,
                d.tun.mtu,
                "IPv6 needs 1280 (RFC 8200 §5)",
            ),
            batch: self.int(&mut s, "batch", 1..=1024, d.tun.batch, ""),
            offload: self.boolean(&mut s, "offload", d.tun.offload),
            packet_socket: self.boolean(&mut s, "packet_socket", d.tun.packet_socket),
        };
        self.finish(s);

        let t = self.table(&mut root, "routing", &empty);
        let mut s = Section::new("routing", t);
        let routing = Routing {
            fwmark: self.int(
                &mut s,
                "fwmark",
                1..=u64::from(u32::MAX),
                d.routing.fwmark,
                "0 would mark nothing",
            ),
            table: self.routing_table(&mut s, d.routing.table),
            rule_priority: self.int(
                &mut s,
                "rule_priority",
                1..=32765,
                d.routing.rule_priority,
                "the rule must come before `lookup main` (32766)",
            ),
        };
        self.finish(s);

        let t = self.table(&mut root, "reap", &empty);
        let mut s = Section::new("reap", t);
        let reap = Reap {
            send_timeout: self.seconds(
                &mut s,
                "send_timeout",
                1.0..=100.0,
                d.reap.send_timeout,
                "RFC 5534 §7 recommends 10 to 100 s",
            ),
            initial_probe_timeout: self.seconds(
                &mut s,
                "initial_probe_timeout",
                0.01..=60.0,
                d.reap.initial_probe_timeout,
                "",
            ),
            max_probe_timeout: self.seconds(
                &mut s,
                "max_probe_timeout",
                0.1..=3600.0,
                d.reap.max_probe_timeout,
                "",
            ),
            burst: self.int(
                &mut s,
                "burst",
                1..=MAX_PROBE_RECORDS as u64,
                d.reap.burst,
                "a probe carries at most 15 records (RFC 5534 §5.2)",
            ),
            orthogonal_first: self.boolean(&mut s, "orthogonal_first", d.reap.orthogonal_first),
        };
        if reap.max_probe_timeout < reap.initial_probe_timeout
            && let Some((_, v)) = s
                .table
                .iter()
                .find(|(k, _)| k.get_ref() == "max_probe_timeout")
        {
            let span = v.span();
            self.problem(
                &span,
                "reap.max_probe_timeout is shorter than reap.initial_probe_timeout".into(),
            );
        }
        self.finish(s);

        let t = self.table(&mut root, "trigger", &empty);
        let mut s = Section::new("trigger", t);
        let mode = self.choice(
            &mut s,
            "mode",
            &[
                ("auto", TriggerMode::Auto),
                ("responder-only", TriggerMode::ResponderOnly),
                ("manual", TriggerMode::Manual),
            ],
            d.trigger.mode,
        );
        let bytes = self.int(&mut s, "bytes", 0..=u64::MAX >> 1, d.trigger.bytes, "");
        let seconds = self.seconds(&mut s, "seconds", 0.0..=86400.0, d.trigger.seconds, "");
        let rules = match self.get(&mut s, "rule") {
            None => d.trigger.rules.clone(),
            Some(v) => match v.get_ref().as_array() {
                Some(items) => {
                    let mut rules = Vec::new();
                    for item in items.iter() {
                        match item.get_ref().as_table() {
                            Some(t) => {
                                if let Some(rule) = self.rule(t, item.span()) {
                                    rules.push(rule);
                                }
                            }
                            None => self.type_error("trigger", "rule", item, "a table"),
                        }
                    }
                    rules
                }
                None => {
                    self.type_error(
                        "trigger",
                        "rule",
                        v,
                        "an array of tables ([[trigger.rule]])",
                    );
                    d.trigger.rules.clone()
                }
            },
        };
        let trigger = Trigger {
            mode,
            bytes,
            seconds,
            rules,
        };
        self.finish(s);

        let t = self.table(&mut root, "control", &empty);
        let mut s = Section::new("control", t);
        let listen = self.control_listen(&mut s, d.control.listen);
        let allow_remote = self.boolean(&mut s, "allow_remote", d.control.allow_remote);
        if let Some(addr) = listen
            && !addr.ip().is_loopback()
            && !allow_remote
            && let Some((_, v)) = s.table.iter().find(|(k, _)| k.get_ref() == "listen")
        {
            let span = v.span();
            self.problem(
                &span,
                format!(
                    "control.listen = \"{addr}\" is not a loopback address; the control \
                     interface has no authentication: set control.allow_remote = true to \
                     mean it"
                ),
            );
        }
        let unix = self.string(&mut s, "unix_socket", "");
        let control = Control {
            listen,
            allow_remote,
            unix_socket: (!unix.is_empty()).then(|| PathBuf::from(unix)),
            max_clients: self.int(&mut s, "max_clients", 1..=1024, d.control.max_clients, ""),
            max_line: self.int(&mut s, "max_line", 64..=65536, d.control.max_line, ""),
        };
        self.finish(s);

        let t = self.table(&mut root, "log", &empty);
        let mut s = Section::new("log", t);
        let level = self.string(&mut s, "level", &d.log.level);
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&level)
            && let Some((_, v)) = s.table.iter().find(|(k, _)| k.get_ref() == "level")
        {
            let span = v.span();
            self.problem(&span, format!("log.level = \"{level}\": {e}"));
        }
        let log = Log { level };
        self.finish(s);

        let t = self.table(&mut root, "resend", &empty);
        let mut s = Section::new("resend", t);
        let resend = Resend {
            enabled: self.boolean(&mut s, "enabled", d.resend.enabled),
            tcp_only: self.boolean(&mut s, "tcp_only", d.resend.tcp_only),
            max_age: self.seconds(&mut s, "max_age", 1.0..=600.0, d.resend.max_age, ""),
            max_context_bytes: self.int(
                &mut s,
                "max_context_bytes",
                1500..=1 << 30,
                d.resend.max_context_bytes,
                "",
            ),
            max_total_bytes: self.int(
                &mut s,
                "max_total_bytes",
                1500..=1 << 40,
                d.resend.max_total_bytes,
                "",
            ),
        };
        self.finish(s);

        let t = self.table(&mut root, "mptcp", &empty);
        let mut s = Section::new("mptcp", t);
        let mptcp = self.mptcp(&mut s, &d.mptcp);
        self.finish(s);

        let t = self.table(&mut root, "mip6", &empty);
        let mut s = Section::new("mip6", t);
        let mip6 = self.mip6(&mut s, &d.mip6, &tun.name);
        if mip6.role == crate::mip::Role::MobileNode
            && mip6.rule_priority <= routing.rule_priority
            && let Some((_, v)) = s.table.iter().find(|(k, _)| k.get_ref() == "rule_priority")
        {
            let span = v.span();
            self.problem(
                &span,
                format!(
                    "mip6.rule_priority = {} must come after routing.rule_priority = {} (the \
                     Shim6 rule), or peers with a Shim6 context would still go through the \
                     home agent",
                    mip6.rule_priority, routing.rule_priority
                ),
            );
        }
        if mip6.cga_care_of
            && (mip6.role != crate::mip::Role::MobileNode || identity.mode != IdentityMode::Cga)
            && let Some((_, v)) = s.table.iter().find(|(k, _)| k.get_ref() == "cga_care_of")
        {
            let span = v.span();
            self.problem(
                &span,
                "mip6.cga_care_of needs role = \"mobile-node\" and identity.mode = \"cga\" \
                 (the care-of CGAs carry the identity's public key, and the locator list \
                 naming them is signed with its key_file, RFC 5533 §7.2)"
                    .into(),
            );
        }
        self.finish(s);

        self.finish_root(root);
        Config {
            identity,
            interfaces,
            tun,
            routing,
            reap,
            trigger,
            resend,
            control,
            log,
            mptcp,
            mip6,
        }
    }

    /// `[mip6]`; the struct and what each key does are in [`crate::mip`]. The keys of
    /// its `[[mip6.mobile_node]]` and `[[mip6.home]]` tables are checked when present
    /// (the shipped example shows them commented out: an entry would change the
    /// defaults).
    fn mip6(
        &mut self,
        s: &mut Section<'_, '_>,
        d: &crate::mip::Mip6Config,
        shim6_tun: &str,
    ) -> crate::mip::Mip6Config {
        use crate::mip::{Home, Mip6Config, Role, ServedNode};
        let role = self.choice(
            s,
            "role",
            &[
                ("none", Role::None),
                ("home-agent", Role::HomeAgent),
                ("mobile-node", Role::MobileNode),
            ],
            d.role,
        );
        let tun = self.string(s, "tun", &d.tun);
        let tun_problem = match parse_ifname(&tun) {
            Err(e) => Some(format!("mip6.tun: {e}")),
            Ok(_) if tun == shim6_tun => Some(format!(
                "mip6.tun = \"{tun}\" is the Shim6 device ([tun] name): MipShim6 needs a \
                 device of its own"
            )),
            Ok(_) => None,
        };
        if let Some(message) = tun_problem
            && let Some((_, v)) = s.table.iter().find(|(k, _)| k.get_ref() == "tun")
        {
            let span = v.span();
            self.problem(&span, message);
        }
        let mtu = self.int(
            s,
            "mtu",
            u64::from(IPV6_MIN_MTU)..=65535,
            d.mtu,
            "IPv6 needs 1280 (RFC 8200 §5)",
        );
        let table = self.routing_table(s, d.table);
        let rule_priority = self.int(
            s,
            "rule_priority",
            1..=32765,
            d.rule_priority,
            "the rule must come before `lookup main` (32766)",
        );
        let address_text = self.string(s, "address", "");
        let address = if address_text.is_empty() {
            None
        } else {
            match parse_unicast(&address_text) {
                Ok(a) => Some(a),
                Err(e) => {
                    if let Some((_, v)) = s.table.iter().find(|(k, _)| k.get_ref() == "address") {
                        let span = v.span();
                        self.problem(&span, format!("mip6.address: {e}"));
                    }
                    None
                }
            }
        };
        let home_prefixes = self.list(s, "home_prefixes", "IPv6 prefixes", |p| {
            p.parse::<Ipv6Prefix>().map_err(|e| e.to_string())
        });
        let max_lifetime = self.seconds(
            s,
            "max_lifetime",
            4.0..=262_140.0,
            d.max_lifetime,
            "RFC 6275 §6.1.7: 4-second units, 16 bits",
        );
        let require_timestamp = self.boolean(s, "require_timestamp", d.require_timestamp);
        let lifetime = self.seconds(
            s,
            "lifetime",
            4.0..=262_140.0,
            d.lifetime,
            "RFC 6275 §6.1.7: 4-second units, 16 bits",
        );
        let unreachable_after = self.int(s, "unreachable_after", 1..=100, d.unreachable_after, "");
        let care_of_interfaces =
            self.list(s, "care_of_interfaces", "interface names", parse_ifname);
        let route_optimisation = self.boolean(s, "route_optimisation", d.route_optimisation);
        let cga_care_of = self.boolean(s, "cga_care_of", d.cga_care_of);

        // The entry tables: looked up without recording their keys as known (see above).
        let mut mobile_nodes = Vec::new();
        for (span, t) in self.entry_tables(s, "mobile_node") {
            let mut e = Section::new("mip6.mobile_node", t);
            let hoa = self.required_addr(&mut e, "home_address", &span);
            let spi = self.required_spi(&mut e, &span);
            let key = self.required_key(&mut e, &span);
            self.finish(e);
            if let (Some(home_address), Some(spi), Some(key)) = (hoa, spi, key) {
                if !home_prefixes.is_empty()
                    && !home_prefixes.iter().any(|p| p.contains(home_address))
                {
                    self.problem(
                        &span,
                        format!(
                            "mip6.mobile_node: home address {home_address} is in none of \
                             mip6.home_prefixes (RFC 6275 §10.3.1: the home agent would answer \
                             132, not home subnet)"
                        ),
                    );
                }
                if mobile_nodes
                    .iter()
                    .any(|m: &ServedNode| m.home_address == home_address)
                {
                    self.problem(
                        &span,
                        format!("mip6.mobile_node: {home_address} is listed twice"),
                    );
                }
                mobile_nodes.push(ServedNode {
                    home_address,
                    spi,
                    key,
                });
            }
        }
        let mut homes = Vec::new();
        for (span, t) in self.entry_tables(s, "home") {
            let mut e = Section::new("mip6.home", t);
            let hoa = self.required_addr(&mut e, "home_address", &span);
            let ha = self.required_addr(&mut e, "home_agent", &span);
            let spi = self.required_spi(&mut e, &span);
            let key = self.required_key(&mut e, &span);
            self.finish(e);
            if let (Some(home_address), Some(home_agent), Some(spi), Some(key)) =
                (hoa, ha, spi, key)
            {
                if homes.iter().any(|h: &Home| h.home_address == home_address) {
                    self.problem(&span, format!("mip6.home: {home_address} is listed twice"));
                }
                homes.push(Home {
                    home_address,
                    home_agent,
                    spi,
                    key,
                });
            }
        }
        // Keys of the entry tables are not known keys of the example (see above).
        self.keys
            .retain(|k| !k.starts_with("mip6.mobile_node.") && !k.starts_with("mip6.home."));

        // What each role needs, reported at the role's line.
        let role_line = s
            .table
            .iter()
            .find(|(k, _)| k.get_ref() == "role")
            .map(|(_, v)| v.span());
        let need = |r: &mut Self, ok: bool, what: &str| {
            if !ok && let Some(span) = &role_line {
                r.problem(
                    span,
                    format!("mip6.role = \"{}\" needs {what}", role.as_str()),
                );
            }
        };
        match role {
            Role::HomeAgent => {
                need(
                    self,
                    address.is_some(),
                    "mip6.address (the home agent's own address)",
                );
                need(self, !home_prefixes.is_empty(), "mip6.home_prefixes");
                need(
                    self,
                    !mobile_nodes.is_empty(),
                    "at least one [[mip6.mobile_node]]",
                );
            }
            Role::MobileNode => {
                need(self, !homes.is_empty(), "at least one [[mip6.home]]");
            }
            Role::None => {}
        }
        Mip6Config {
            role,
            tun,
            mtu,
            table,
            rule_priority,
            address,
            home_prefixes,
            max_lifetime,
            require_timestamp,
            mobile_nodes,
            homes,
            lifetime,
            unreachable_after,
            care_of_interfaces,
            route_optimisation,
            cga_care_of,
        }
    }

    /// The tables of an array of tables `[[mip6.KEY]]`, with their spans.
    fn entry_tables<'t, 'i>(
        &mut self,
        s: &mut Section<'t, 'i>,
        key: &'static str,
    ) -> Vec<(Range<usize>, &'t DeTable<'i>)> {
        let v = self.get(s, key);
        self.keys.remove(&format!("mip6.{key}"));
        let Some(v) = v else {
            return Vec::new();
        };
        match v.get_ref().as_array() {
            Some(items) => items
                .iter()
                .filter_map(|item| match item.get_ref().as_table() {
                    Some(t) => Some((item.span(), t)),
                    None => {
                        self.type_error("mip6", key, item, "a table");
                        None
                    }
                })
                .collect(),
            None => {
                self.type_error(
                    "mip6",
                    key,
                    v,
                    &format!("an array of tables ([[mip6.{key}]])"),
                );
                Vec::new()
            }
        }
    }

    /// A required unicast address key of an entry table.
    fn required_addr(
        &mut self,
        e: &mut Section<'_, '_>,
        key: &'static str,
        span: &Range<usize>,
    ) -> Option<Ipv6Addr> {
        let name = e.name;
        let Some(v) = self.get(e, key) else {
            self.problem(span, format!("[[{name}]] needs `{key}`"));
            return None;
        };
        let Some(text) = v.get_ref().as_str() else {
            self.type_error(name, key, v, "a string");
            return None;
        };
        match parse_unicast(text) {
            Ok(a) => Some(a),
            Err(m) => {
                self.problem(&v.span(), format!("{name}.{key}: {m}"));
                None
            }
        }
    }

    /// The required `spi` of an entry table (RFC 4285 §5.1: 0–255 are reserved).
    fn required_spi(&mut self, e: &mut Section<'_, '_>, span: &Range<usize>) -> Option<u32> {
        if self.get(e, "spi").is_none() {
            self.problem(span, format!("[[{}]] needs `spi`", e.name));
            return None;
        }
        let spi: u32 = self.int(
            e,
            "spi",
            256..=u64::from(u32::MAX),
            0,
            "RFC 4285 §5.1 reserves 0-255",
        );
        (spi != 0).then_some(spi)
    }

    /// The required hexadecimal `key` of an entry table.
    fn required_key(
        &mut self,
        e: &mut Section<'_, '_>,
        span: &Range<usize>,
    ) -> Option<crate::mip::Key> {
        let name = e.name;
        let Some(v) = self.get(e, "key") else {
            self.problem(span, format!("[[{name}]] needs `key` (hexadecimal)"));
            return None;
        };
        let Some(text) = v.get_ref().as_str() else {
            self.type_error(name, "key", v, "a string of hexadecimal digits");
            return None;
        };
        match crate::mip::parse_key(text) {
            Ok(k) => Some(k),
            Err(m) => {
                self.problem(&v.span(), format!("{name}.key: {m}"));
                None
            }
        }
    }

    /// `[mptcp]`; the struct and what each key does are in [`crate::mptcp`].
    fn mptcp(
        &mut self,
        s: &mut Section<'_, '_>,
        d: &crate::mptcp::MptcpConfig,
    ) -> crate::mptcp::MptcpConfig {
        use crate::mptcp::PolicyName;
        crate::mptcp::MptcpConfig {
            enabled: self.boolean(s, "enabled", d.enabled),
            policy: self.choice(
                s,
                "policy",
                &[
                    ("fullmesh", PolicyName::Fullmesh),
                    ("ndiffports", PolicyName::Ndiffports),
                    ("elephant", PolicyName::Elephant),
                    ("backup", PolicyName::Backup),
                ],
                d.policy,
            ),
            ndiffports: self.int(
                s,
                "ndiffports",
                1..=8,
                d.ndiffports,
                "MPTCP allows 8 subflows",
            ),
            elephant_threshold: self.int(
                s,
                "elephant_threshold",
                0..=u64::MAX >> 1,
                d.elephant_threshold,
                "",
            ),
            elephant_step: self.int(
                s,
                "elephant_step",
                1..=u64::MAX >> 1,
                d.elephant_step,
                "0 would add every subflow at once",
            ),
            max_subflows: self.int(
                s,
                "max_subflows",
                1..=8,
                d.max_subflows,
                "MPTCP allows 8 subflows",
            ),
            sample_interval: self.seconds(
                s,
                "sample_interval",
                0.01..=3600.0,
                d.sample_interval,
                "",
            ),
            set_sysctls: self.boolean(s, "set_sysctls", d.set_sysctls),
        }
    }

    /// The root's unknown keys are unknown *sections*.
    fn finish_root(&mut self, root: Section<'_, '_>) {
        for (k, _) in root.table.iter() {
            let name: &str = k.get_ref();
            if !root.used.contains(&name) {
                let message = format!(
                    "unknown section [{name}] (known: {})",
                    root.used
                        .iter()
                        .map(|s| format!("[{s}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.problem(&k.span(), message);
            }
        }
        // Section names are not keys of their own.
        for name in &root.used {
            self.keys.remove(&format!("config.{name}"));
        }
    }

    fn path(&mut self, sec: &mut Section<'_, '_>, key: &'static str, default: &Path) -> PathBuf {
        let s = self.string(sec, key, &default.to_string_lossy());
        if s.is_empty()
            && let Some((_, v)) = sec.table.iter().find(|(k, _)| k.get_ref() == key)
        {
            let span = v.span();
            self.problem(&span, format!("{}.{key}: empty path", sec.name));
            return default.to_owned();
        }
        PathBuf::from(s)
    }

    fn routing_table(&mut self, s: &mut Section<'_, '_>, default: u32) -> u32 {
        let table: u32 = self.int(
            s,
            "table",
            1..=u64::from(u32::MAX),
            default,
            "0 is not a table",
        );
        // rtnetlink.h: RT_TABLE_DEFAULT 253, RT_TABLE_MAIN 254, RT_TABLE_LOCAL 255.
        if (253..=255).contains(&table)
            && let Some((_, v)) = s.table.iter().find(|(k, _)| k.get_ref() == "table")
        {
            let span = v.span();
            self.problem(
                &span,
                format!(
                    "routing.table = {table} is a kernel table (253 default, 254 main, 255 \
                     local); shim6d needs a table of its own"
                ),
            );
            return default;
        }
        table
    }

    fn control_listen(
        &mut self,
        s: &mut Section<'_, '_>,
        default: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        let Some(v) = self.get(s, "listen") else {
            return default;
        };
        let Some(text) = v.get_ref().as_str() else {
            self.type_error("control", "listen", v, "a string like \"[::1]:50000\"");
            return default;
        };
        if text.is_empty() {
            return None;
        }
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let message = format!(
                    "control.listen = \"{text}\" is not an address:port (like \"[::1]:50000\")"
                );
                self.problem(&v.span(), message);
                default
            }
        }
    }

    /// One `[[trigger.rule]]`; `None` when a required key is missing or wrong.
    fn rule(&mut self, t: &DeTable<'_>, span: Range<usize>) -> Option<TriggerRule> {
        let mut s = Section::new("trigger.rule", t);
        let mut ok = true;
        let prefix = match self.get(&mut s, "prefix") {
            None => {
                ok = false;
                None
            }
            Some(v) => match v.get_ref().as_str() {
                None => {
                    self.type_error("trigger.rule", "prefix", v, "a string");
                    None
                }
                Some(p) => match p.parse::<Ipv6Prefix>() {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.problem(&v.span(), format!("trigger.rule.prefix: {e}"));
                        None
                    }
                },
            },
        };
        let has_port = self.get(&mut s, "port").is_some();
        let port = has_port.then(|| self.int(&mut s, "port", 1..=65535, 0u16, ""));
        // `int` looked the key up a second time; the duplicate in `used` is harmless.
        let protocol = self.choice(
            &mut s,
            "protocol",
            &[
                ("any", Protocol::Any),
                ("tcp", Protocol::Tcp),
                ("udp", Protocol::Udp),
            ],
            Protocol::Any,
        );
        let action = match self.get(&mut s, "action") {
            None => {
                ok = false;
                None
            }
            Some(_) => Some(self.choice(
                &mut s,
                "action",
                &[("always", Action::Always), ("never", Action::Never)],
                Action::Never,
            )),
        };
        if !ok && !self.text.is_empty() {
            self.problem(
                &span,
                "[[trigger.rule]] needs both `prefix` and `action`".to_owned(),
            );
        }
        self.finish(s);
        let port = match port {
            Some(0) => return None,
            p => p,
        };
        Some(TriggerRule {
            prefix: prefix?,
            port,
            protocol,
            action: action?,
        })
    }
}

fn display_int(digits: &str, radix: u32) -> String {
    match radix {
        16 => format!("0x{digits}"),
        8 => format!("0o{digits}"),
        2 => format!("0b{digits}"),
        _ => digits.to_owned(),
    }
}

/// A unicast IPv6 address usable as a ULID or locator.
fn parse_unicast(s: &str) -> Result<Ipv6Addr, String> {
    let a: Ipv6Addr = s
        .parse()
        .map_err(|_| format!("\"{s}\" is not an IPv6 address"))?;
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Err(format!(
            "{a} is not a unicast address (unspecified, loopback and multicast cannot be \
             locators)"
        ));
    }
    Ok(a)
}

/// A Linux interface name (`IFNAMSIZ` 16 with the NUL).
fn parse_ifname(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 || s.contains(['/', ' ', ':', '\t']) {
        return Err(format!(
            "\"{s}\" is not an interface name (1 to 15 bytes, no '/', ':' or spaces)"
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match Config::parse(text, Path::new("t.toml")) {
            Ok(c) => panic!("expected problems, parsed {c:?}"),
            Err(e) => e.problems,
        }
    }

    /// The one problem of `text`: its line and message.
    fn one(text: &str) -> (usize, String) {
        let p = problems(text);
        assert_eq!(p.len(), 1, "{p:#?}");
        (p[0].line, p[0].message.clone())
    }

    #[test]
    fn empty_document_is_the_default() {
        assert_eq!(
            Config::parse("", Path::new("t")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn shipped_example_is_valid_and_equals_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/shim6d.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = Config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed,
            Config::default(),
            "conf/shim6d.toml must show the defaults"
        );
    }

    #[test]
    fn shipped_example_names_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/shim6d.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let (doc, errors) = DeTable::parse_recoverable(&text);
        assert!(errors.is_empty());
        let doc = doc.into_inner();
        let keys = Config::known_keys();
        assert!(keys.len() > 20, "{keys:?}");
        for key in &keys {
            // Walk `a.b.c`, going into the first element of arrays of tables.
            let mut table = &doc;
            let parts: Vec<&str> = key.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                let value = table
                    .iter()
                    .find(|(k, _)| k.get_ref() == part)
                    .map(|(_, v)| v.get_ref())
                    .unwrap_or_else(|| panic!("conf/shim6d.toml lacks `{key}`"));
                if i + 1 < parts.len() {
                    table = match value {
                        DeValue::Table(t) => t,
                        DeValue::Array(a) => a[0].get_ref().as_table().unwrap(),
                        _ => panic!("`{key}`: {part} is not a table"),
                    };
                }
            }
        }
    }

    #[test]
    fn syntax_error_names_its_line() {
        let p = problems("[tun]\nname = \"x\"\nmtu = = 3\n[log]\nlevel = \"info\n");
        assert!(p.iter().any(|p| p.line == 3), "{p:#?}");
        assert!(
            p.iter().any(|p| p.line == 5),
            "both errors are reported: {p:#?}"
        );
        assert!(
            p.iter().all(|p| p.message.starts_with("TOML syntax")),
            "{p:#?}"
        );
        assert!(p.iter().all(|p| p.to_string().starts_with("t.toml:")));
    }

    #[test]
    fn unknown_key_and_section() {
        let p = problems("[tun]\nname = \"x\"\nmtuu = 1400\n\n[bogus]\na = 1\n");
        assert_eq!(p.len(), 2, "{p:#?}");
        assert_eq!(p[0].line, 3);
        assert!(
            p[0].message.contains("unknown key `mtuu` in [tun]"),
            "{}",
            p[0]
        );
        assert!(
            p[0].message.contains("mtu"),
            "lists the known keys: {}",
            p[0]
        );
        assert_eq!(p[1].line, 5);
        assert!(p[1].message.contains("unknown section [bogus]"), "{}", p[1]);
    }

    #[test]
    fn wrong_type() {
        let (line, msg) = one("\n[tun]\nmtu = \"1400\"\n");
        assert_eq!(line, 3);
        assert_eq!(msg, "tun.mtu: expected an integer, found string");
        let (line, msg) = one("[control]\nallow_remote = 1\n");
        assert_eq!(line, 2);
        assert!(msg.contains("expected true or false"), "{msg}");
        let (line, msg) = one("tun = 3\n");
        assert_eq!(line, 1);
        assert!(msg.contains("expected a table"), "{msg}");
    }

    #[test]
    fn out_of_range() {
        let (line, msg) = one("[tun]\nmtu = 1000\n");
        assert_eq!(line, 2);
        assert!(
            msg.contains("tun.mtu = 1000 is out of range 1280..=65535"),
            "{msg}"
        );
        assert!(msg.contains("RFC 8200"), "{msg}");
        let (line, msg) = one("[routing]\n\nfwmark = 0x0\n");
        assert_eq!(line, 3);
        assert!(msg.contains("routing.fwmark = 0x0"), "{msg}");
        let (line, msg) = one("[routing]\ntable = 254\n");
        assert_eq!(line, 2);
        assert!(msg.contains("254 main"), "{msg}");
        let (line, msg) = one("[reap]\nsend_timeout = 0.5\n");
        assert_eq!(line, 2);
        assert!(msg.contains("reap.send_timeout is out of range"), "{msg}");
        let (line, _) = one("[routing]\nrule_priority = -4\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn bad_addresses_and_prefixes() {
        let p = problems(
            "[identity]\nulids = [\"2001:db8::1\", \"nope\"]\nlocators = [\"ff02::1\"]\n\
             [[trigger.rule]]\nprefix = \"2001:db8::/129\"\naction = \"never\"\n\
             [control]\nlisten = \"localhost\"\n",
        );
        assert_eq!(p.len(), 4, "{p:#?}");
        assert_eq!((p[0].line, p[1].line, p[2].line, p[3].line), (2, 3, 5, 8));
        assert!(p[0].message.contains("\"nope\" is not an IPv6 address"));
        assert!(p[1].message.contains("ff02::1 is not a unicast address"));
        assert!(p[2].message.starts_with("trigger.rule.prefix"), "{}", p[2]);
        assert!(p[3].message.contains("not an address:port"), "{}", p[3]);
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let p = problems(
            "[tun]\nmtu = 10\nbatch = 0\n[routing]\ntable = 0\n[trigger]\nmode = \"sometimes\"\n",
        );
        let lines: Vec<usize> = p.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 3, 5, 7], "{p:#?}");
        assert!(
            p[3].message
                .contains("\"auto\", \"responder-only\", \"manual\"")
        );
    }

    #[test]
    fn remote_control_needs_consent() {
        let (line, msg) = one("[control]\nlisten = \"[2001:db8::1]:50000\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("allow_remote"), "{msg}");
        let c = Config::parse(
            "[control]\nlisten = \"[2001:db8::1]:50000\"\nallow_remote = true\n",
            Path::new("t"),
        )
        .unwrap();
        assert!(c.control.allow_remote);
        let c = Config::parse("[control]\nlisten = \"\"\n", Path::new("t")).unwrap();
        assert_eq!(c.control.listen, None);
    }

    #[test]
    fn rules_need_prefix_and_action() {
        let (line, msg) = one("[trigger]\n[[trigger.rule]]\nport = 53\n");
        assert_eq!(line, 2);
        assert!(msg.contains("needs both `prefix` and `action`"), "{msg}");
        let c = Config::parse(
            "[[trigger.rule]]\nprefix = \"2001:db8:b1::/48\"\nprotocol = \"tcp\"\naction = \"always\"\n",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(
            c.trigger.rules,
            [TriggerRule {
                prefix: "2001:db8:b1::/48".parse().unwrap(),
                port: None,
                protocol: Protocol::Tcp,
                action: Action::Always,
            }]
        );
    }

    #[test]
    fn trigger_rules_first_match_wins() {
        let c = Config::parse(
            "[[trigger.rule]]\nprefix = \"2001:db8:b1::/48\"\nport = 22\nprotocol = \"tcp\"\n\
             action = \"always\"\n[[trigger.rule]]\nprefix = \"2001:db8::/32\"\naction = \"never\"\n",
            Path::new("t"),
        )
        .unwrap();
        let t = &c.trigger;
        let b1: Ipv6Addr = "2001:db8:b1::1".parse().unwrap();
        // Ports as a client sees them (ephemeral local port, the service's port).
        let to = |peer: u16| Some(Ports { local: 40000, peer });
        assert_eq!(t.rule_for(b1, 6, to(22)), Some(Action::Always));
        assert_eq!(
            t.rule_for(b1, 17, to(22)),
            Some(Action::Never),
            "udp skips rule 1"
        );
        assert_eq!(t.rule_for(b1, 6, to(80)), Some(Action::Never));
        assert_eq!(
            t.rule_for(b1, 58, None),
            Some(Action::Never),
            "no ports: rule 1 needs one"
        );
        assert_eq!(t.rule_for("2001:db9::1".parse().unwrap(), 6, to(22)), None);
        // The default: never for DNS, over any protocol, to any peer.
        let d = Config::default().trigger;
        assert_eq!(d.rule_for(b1, 17, to(53)), Some(Action::Never));
        assert_eq!(d.rule_for(b1, 6, to(53)), Some(Action::Never));
        assert_eq!(d.rule_for(b1, 6, to(443)), None);
    }

    #[test]
    fn trigger_rule_ports_match_either_side() {
        let b1: Ipv6Addr = "2001:db8:b1::1".parse().unwrap();
        let d = Config::default().trigger;
        // A DNS server of ours: the client's ephemeral port is the peer's, 53 is ours.
        let served = Some(Ports {
            local: 53,
            peer: 51234,
        });
        assert_eq!(d.rule_for(b1, 17, served), Some(Action::Never));
        assert_eq!(d.rule_for(b1, 6, served), Some(Action::Never));
        // Neither side 53: no rule.
        let other = Some(Ports {
            local: 5353,
            peer: 51234,
        });
        assert_eq!(d.rule_for(b1, 17, other), None);
        // An `always` rule on a server port catches the server's side too.
        let c = Config::parse(
            "[[trigger.rule]]\nprefix = \"::/0\"\nport = 22\nprotocol = \"tcp\"\naction = \"always\"\n",
            Path::new("t"),
        )
        .unwrap();
        let ssh_server = Some(Ports {
            local: 22,
            peer: 40022,
        });
        assert_eq!(c.trigger.rule_for(b1, 6, ssh_server), Some(Action::Always));
        assert_eq!(c.trigger.rule_for(b1, 17, ssh_server), None, "tcp only");
    }

    #[test]
    fn log_level_is_checked() {
        let (line, msg) = one("[log]\nlevel = \"shim6d=loud\"\n");
        assert_eq!(line, 2);
        assert!(msg.starts_with("log.level"), "{msg}");
    }

    #[test]
    fn missing_and_bad_referenced_files() {
        let dir = std::env::temp_dir().join(format!("shim6d-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("c.toml");
        std::fs::write(
            &conf,
            "[identity]\nmode = \"cga\"\nparams_file = \"p.json\"\nkey_file = \"k.pem\"\n",
        )
        .unwrap();
        let err = Config::load(&conf).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert_eq!(err.problems[0].line, 3);
        assert!(err.problems[0].message.contains("p.json"), "{err}");
        assert_eq!(err.problems[1].line, 4);
        assert!(err.problems[1].message.contains("k.pem"), "{err}");
        // A params file that is not JSON is reported in that file, with its line.
        std::fs::write(dir.join("p.json"), "{\n  \"a\": 1,\n  oops\n}\n").unwrap();
        std::fs::write(dir.join("k.pem"), "key").unwrap();
        let err = Config::load(&conf).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].file, dir.join("p.json"));
        assert_eq!(err.problems[0].line, 3);
        std::fs::write(dir.join("p.json"), "{\"addresses\": []}").unwrap();
        let c = Config::load(&conf).unwrap();
        assert_eq!(c.identity.params_file, dir.join("p.json"));
        // With an address to sign for, the key must be the parameters' (RFC 3972 §4).
        let key = cga::PrivateKey::generate(1024).unwrap();
        let set = cga::Generator::hba(
            &[[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]],
            Some(&key.public_key().unwrap()),
            cga::Sec::ZERO,
        )
        .unwrap()
        .finish([1; 16]);
        let (_, a, p) = set.members().remove(0);
        let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            dir.join("p.json"),
            format!("{{\"addresses\": [{{\"address\": \"{a}\", \"params\": \"{hex}\"}}]}}"),
        )
        .unwrap();
        let err = Config::load(&conf).unwrap_err();
        assert_eq!(err.problems[0].line, 4, "{err}");
        key.save(&dir.join("other.pem"), true).unwrap();
        cga::PrivateKey::generate(1024)
            .unwrap()
            .save(&dir.join("k.pem"), true)
            .unwrap();
        let err = Config::load(&conf).unwrap_err();
        assert!(err.problems[0].message.contains("not the key"), "{err}");
        std::fs::rename(dir.join("other.pem"), dir.join("k.pem")).unwrap();
        Config::load(&conf).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_dir_all(&dir).unwrap();
        // An unreadable configuration is line 0.
        let err = Config::load(&dir.join("missing.toml")).unwrap_err();
        assert_eq!(err.problems[0].line, 0);
        assert!(err.to_string().contains("cannot read the configuration"));
    }

    #[test]
    fn identity_addresses_must_verify() {
        let dir = std::env::temp_dir().join(format!("shim6d-cfg-id-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("c.toml");
        std::fs::write(&conf, "[identity]\nparams_file = \"p.json\"\n").unwrap();
        // A real HBA member, then the same parameters under another address.
        let set = cga::Generator::from_parts(
            cga::Sec::ZERO,
            cga::hba_pseudo_key(&[9; 48]),
            &[[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]],
            false,
        )
        .unwrap()
        .finish([9; 16]);
        let (_, good, params) = set.members().remove(0);
        let hex: String = params.iter().map(|b| format!("{b:02x}")).collect();
        let doc = format!(
            "{{\"addresses\": [\n {{\"address\": \"{good}\", \"params\": \"{hex}\"}},\n              {{\"address\": \"2001:db8:1::1\", \"params\": \"{hex}\"}},\n              {{\"address\": \"2001:db8:1::2\"}}\n]}}\n"
        );
        std::fs::write(dir.join("p.json"), doc).unwrap();
        let err = Config::load(&conf).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert_eq!(err.problems[0].file, dir.join("p.json"));
        assert_eq!(err.problems[0].line, 3, "{err}");
        assert!(err.problems[0].message.contains("does not verify"), "{err}");
        assert!(
            err.problems[1].message.contains("needs \"address\""),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mip6_home_agent_and_mobile_node_parse() {
        let c = Config::parse(
            "[mip6]\nrole = \"home-agent\"\naddress = \"2001:db8:e1::1\"\n\
             home_prefixes = [\"2001:db8:1001::/64\"]\nmax_lifetime = 60\n\
             [[mip6.mobile_node]]\nhome_address = \"2001:db8:1001::100\"\nspi = 300\n\
             key = \"00112233445566778899aabbccddeeff\"\n",
            Path::new("t.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ha = c.mip6.ha_config().unwrap();
        assert_eq!(ha.address, "2001:db8:e1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ha.max_lifetime_units, 15);
        assert_eq!(ha.mobile_nodes[0].keys[0].spi, 300);
        assert_eq!(ha.mobile_nodes[0].keys[0].key.len(), 16);
        let c = Config::parse(
            "[mip6]\nrole = \"mobile-node\"\n[[mip6.home]]\n\
             home_address = \"2001:db8:1001::100\"\nhome_agent = \"2001:db8:e1::1\"\n\
             spi = 300\nkey = \"0011\"\n[[mip6.home]]\n\
             home_address = \"2001:db8:1002::100\"\nhome_agent = \"2001:db8:e2::1\"\n\
             spi = 301\nkey = \"0022\"\n",
            Path::new("t.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mn = c.mip6.mn_config().unwrap();
        assert_eq!(mn.homes.len(), 2);
        assert_eq!(mn.homes[1].key.spi, 301);
    }

    #[test]
    fn mip6_problems_name_their_lines() {
        let p = problems(
            "[mip6]\nrole = \"home-agent\"\nhome_prefixes = [\"2001:db8:1001::/64\"]\n\
             [[mip6.mobile_node]]\nhome_address = \"2001:db8:9::1\"\nspi = 12\n\
             key = \"xyz\"\ncolour = 1\n",
        );
        let find = |needle: &str| {
            p.iter()
                .find(|p| p.message.contains(needle))
                .unwrap_or_else(|| panic!("no problem with {needle:?}: {p:#?}"))
                .line
        };
        assert_eq!(find("needs mip6.address"), 2);
        assert_eq!(find("reserves 0-255"), 6);
        assert_eq!(find("mip6.mobile_node.key"), 7);
        assert_eq!(find("unknown key `colour`"), 8);
        // The bad SPI and key drop the entry, so the role misses its mobile node.
        assert_eq!(find("at least one [[mip6.mobile_node]]"), 2);
        let p = problems(
            "[mip6]\nrole = \"mobile-node\"\ntun = \"shim6\"\n[[mip6.home]]\n\
             home_address = \"2001:db8:1001::100\"\nspi = 300\nkey = \"00\"\n",
        );
        assert!(
            p.iter()
                .any(|p| p.line == 3 && p.message.contains("Shim6 device")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|p| p.line == 4 && p.message.contains("needs `home_agent`")),
            "{p:#?}"
        );
        let p = problems(
            "[mip6]\nrole = \"home-agent\"\naddress = \"2001:db8:e1::1\"\n\
             home_prefixes = [\"2001:db8:1001::/64\"]\n[[mip6.mobile_node]]\n\
             home_address = \"2001:db8:2::1\"\nspi = 300\nkey = \"00\"\n",
        );
        assert!(
            p.iter()
                .any(|p| p.line == 5 && p.message.contains("none of")),
            "{p:#?}"
        );
        assert!(
            problems("[mip6]\nrole = \"router\"\n")[0]
                .message
                .contains("not one of")
        );
        // cga_care_of: a mobile node with a key only.
        let mn = "[mip6]\nrole = \"mobile-node\"\ncga_care_of = true\n[[mip6.home]]\n\
                  home_address = \"2001:db8:1001::100\"\nhome_agent = \"2001:db8:e1::1\"\n\
                  spi = 300\nkey = \"00\"\n";
        let p = problems(mn);
        assert!(
            p.iter()
                .any(|p| p.line == 3 && p.message.contains("identity.mode = \"cga\"")),
            "{p:#?}"
        );
        let c = Config::parse(
            &format!("[identity]\nmode = \"cga\"\n{mn}"),
            Path::new("t.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.mip6.cga_care_of);
        let p = problems("[mip6]\nrole = \"home-agent\"\ncga_care_of = true\n");
        assert!(
            p.iter().any(|p| p.message.contains("cga_care_of needs")),
            "{p:#?}"
        );
    }

    #[test]
    fn reload_classification() {
        let a = Config::default();
        let mut b = a.clone();
        b.log.level = "debug".into();
        b.reap.send_timeout = Duration::from_secs(3);
        assert!(a.restart_needed(&b).is_empty());
        b.tun.mtu = 1400;
        b.routing.table = 52;
        assert_eq!(a.restart_needed(&b), ["tun", "routing"]);
    }

    #[test]
    fn reap_config_carries_the_options() {
        let c = Config::parse("[reap]\nsend_timeout = 3\nburst = 4\n", Path::new("t")).unwrap();
        let r = c.reap.reap_config();
        assert_eq!(r.send_timeout, Duration::from_secs(3));
        assert_eq!(r.burst, 4);
    }
}
