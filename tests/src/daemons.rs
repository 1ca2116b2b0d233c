//! Two real shim6d processes on the LinShim6 testbed, a TCP stream between their ULIDs,
//! and the failover timeline: the code `./demo.sh` (through the `failover_demo`
//! example) and the netns scenario tests share.
//!
//! # What [`Pair::start`] builds
//!
//! The [`LinShim6`] testbed (hosts A and B, three prefixes each, a router that breaks any
//! unidirectional path), then for each host an HBA set over its three prefixes made by
//! the real `cga-tool generate --hba --format json` (RFC 5535), its three addresses
//! added to the host's interface, a configuration (manual trigger, the given Send
//! Timeout, a unix control socket) and `shim6d --config FILE` started in the host's
//! namespace with `ip netns exec`. Everything lives under a temporary directory named
//! after the testbed's unique namespace names, so parallel tests do not collide.
//!
//! [`MultiPair::start`] does the same on the multi-interface topology ([`MultiHomed`]):
//! each HBA address on the interface of its prefix, every interface in the daemon's
//! `[interfaces] include`.
//!
//! # Cleanup
//!
//! [`Pair`]'s `Drop` stops both daemons (SIGTERM, then SIGKILL after a bound) before the
//! testbed's namespaces go, and removes the directory unless `keep` was asked for (the
//! daemons' logs are the first thing to read after a failure).

use std::{
    io::{self, Read, Write},
    net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};
use xfrm_sys::netns::{Netns, NetnsThread};

use crate::testbed::{LinShim6, MultiHomed};

/// Where the binaries are.
#[derive(Clone, Debug)]
pub struct Bins {
    /// `shim6d`.
    pub shim6d: PathBuf,
    /// `cga-tool`; `None`: the HBA sets are made with the `cga` library it is built on
    /// (test binaries of this package cannot ask cargo for another package's binary).
    pub cga_tool: Option<PathBuf>,
}

impl Bins {
    /// `shim6d` at `path`, the HBA sets made with the `cga` library: what a test binary
    /// of the shim6d package passes (`env!("CARGO_BIN_EXE_shim6d")`; cga-tool's binary
    /// is another package's).
    pub fn shim6d(path: impl Into<PathBuf>) -> Self {
        Self {
            shim6d: path.into(),
            cga_tool: None,
        }
    }

    /// `$SHIM6D_BIN` / `$CGA_TOOL_BIN`, else the binaries next to the running executable
    /// (`target/<profile>/` for an example or a test binary in `deps/`).
    pub fn locate() -> io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut dirs = Vec::new();
        let mut d = exe.parent();
        while let Some(dir) = d {
            dirs.push(dir.to_path_buf());
            if dirs.len() == 3 {
                break;
            }
            d = dir.parent();
        }
        let find = |var: &str, name: &str| -> io::Result<PathBuf> {
            if let Ok(p) = std::env::var(var) {
                return Ok(PathBuf::from(p));
            }
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{name} not found next to {} (set {var})", exe.display()),
                    )
                })
        };
        Ok(Self {
            shim6d: find("SHIM6D_BIN", "shim6d")?,
            cga_tool: find("CGA_TOOL_BIN", "cga-tool").ok(),
        })
    }
}

/// How the pair is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// REAP Send Timeout of both daemons, seconds (RFC 5534 §7; the demo uses 3).
    pub send_timeout: f64,
    /// `Sec` of the HBA sets (RFC 3972 §4; 0 is instant, 1 takes a moment).
    pub sec: u8,
    /// `[log] level` of the daemons.
    pub log: String,
    /// Keep the directory (configurations, logs) after drop.
    pub keep: bool,
    /// Start a daemon on host B (false: B has no shim6d, the NO-SUPPORT scenario).
    pub daemon_b: bool,
    /// `[resend] enabled` of both daemons (the TCP re-send after a path change).
    pub resend: bool,
    /// `[trigger] mode` of A's and B's daemon: `"auto"` (flow accounting),
    /// `"responder-only"` or `"manual"`.
    pub trigger: [&'static str; 2],
    /// Run the MPTCP path manager on both (`[mptcp] enabled`, `fullmesh`, the
    /// `net.mptcp` sysctls set by the daemon).
    pub mptcp: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            send_timeout: 3.0,
            sec: 0,
            log: "info,shim6d=debug".into(),
            keep: false,
            daemon_b: true,
            resend: true,
            trigger: ["manual"; 2],
            mptcp: false,
        }
    }
}

/// One host's daemon.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    /// The host's HBA addresses, one per prefix (its ULIDs and Shim6 locators).
    pub hba: Vec<Ipv6Addr>,
    /// Its directory: `shim6d.toml`, `hba.json`, `shim6d.log`, `ctl.sock`.
    pub dir: PathBuf,
    shim6d: PathBuf,
    netns: String,
}

impl Daemon {
    /// The control socket.
    pub fn sock(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    /// `shim6d ctl --unix SOCK LINE`: exit code and output.
    pub fn ctl(&self, line: &str) -> io::Result<(i32, String)> {
        let out = Command::new(&self.shim6d)
            .arg("ctl")
            .arg("--unix")
            .arg(self.sock())
            .arg("--timeout")
            .arg("5")
            .args(line.split_whitespace())
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ))
    }

    /// `LINE --json`, parsed; an error when the daemon answered with one.
    pub fn json(&self, line: &str) -> io::Result<Value> {
        let (code, out) = self.ctl(&format!("{line} --json"))?;
        if code != 0 {
            return Err(io::Error::other(format!("`{line}`: exit {code}: {out}")));
        }
        serde_json::from_str(&out).map_err(|e| io::Error::other(format!("`{line}`: {e}: {out}")))
    }

    /// Counter `name` of the protocol core (`stats --json`, `core.NAME`).
    ///
    /// # Panics
    /// When the daemon does not answer, or has no such counter.
    pub fn core_stat(&self, name: &str) -> u64 {
        self.json("stats").unwrap()["core"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter core.{name}"))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("shim6d.log")).unwrap_or_default()
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The daemon's process id (`None`: stopped). `ip netns exec` execs shim6d, so the
    /// child's pid is the daemon's.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Writes `config` as `DIR/shim6d.toml` (and, when `DIR/hba.json` does not exist,
    /// an HBA file without addresses: the daemon then runs without the Shim6 core) and
    /// starts `shim6d` in `ns` (the MipShim6 scenarios, [`crate::mip_testbed`]).
    pub fn launch(shim6d: &Path, ns: &Netns, dir: PathBuf, config: &str) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        if !dir.join("hba.json").exists() {
            std::fs::write(dir.join("hba.json"), "{\"sec\": 0, \"addresses\": []}\n")?;
        }
        std::fs::write(dir.join("shim6d.toml"), config)?;
        let mut d = Self {
            child: None,
            hba: Vec::new(),
            dir,
            shim6d: shim6d.to_owned(),
            netns: ns.name().to_owned(),
        };
        d.spawn()?;
        Ok(d)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the daemon (again) with its configuration.
    fn spawn(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("shim6d.log"))?;
        if !self.shim6d.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no shim6d binary at {}", self.shim6d.display()),
            ));
        }
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(&self.shim6d)
            .arg("--config")
            .arg(self.dir.join("shim6d.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        until(Duration::from_secs(10), "the control socket", || {
            Ok(self.ctl("stats")?.0 == 0)
        })
    }

    /// SIGTERM and wait (bounded; SIGKILL after it). Returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        // `ip netns exec` execs shim6d, so the child's pid is the daemon's.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(s)) => return s.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    /// SIGKILL: the daemon dies without cleaning up (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a stopped or killed daemon.
    pub fn restart(&mut self) -> io::Result<()> {
        self.spawn()
    }

    /// Every context as `cat * --json` shows it.
    pub fn contexts(&self) -> io::Result<Vec<Value>> {
        Ok(self.json("cat *")?.as_array().cloned().unwrap_or_default())
    }

    /// The first context's state (`None`: no context).
    pub fn state(&self) -> io::Result<Option<String>> {
        Ok(self
            .contexts()?
            .first()
            .and_then(|c| c["state"].as_str().map(str::to_owned)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `f` every 20 ms until it is true, at most `wait`.
pub fn until(
    wait: Duration,
    what: &str,
    mut f: impl FnMut() -> io::Result<bool>,
) -> io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(false) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out ({wait:?}) waiting for {what}"),
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out ({wait:?}) waiting for {what}: {e}"),
                ));
            }
        }
    }
}

/// The testbed with a daemon on each host.
#[derive(Debug)]
pub struct Pair {
    /// Host A's daemon.
    pub a: Daemon,
    /// Host B's daemon (`None` with `Options::daemon_b = false`).
    pub b: Option<Daemon>,
    /// The testbed (dropped after the daemons: field order).
    pub bed: LinShim6,
    /// Options given.
    pub options: Options,
    dir: PathBuf,
}

/// A blocking IPv6 MPTCP stream socket (`IPPROTO_MPTCP`, RFC 8684), reads and writes
/// bounded by `wait`.
///
/// # Panics
/// When the kernel refuses the socket (no `CONFIG_MPTCP`), or the timeouts.
pub fn mptcp_socket(wait: Duration) -> Socket {
    let s = Socket::new(
        Domain::IPV6,
        Type::STREAM,
        Some(Protocol::from(
            i32::try_from(xfrm_sys::mptcp::diag::IPPROTO_MPTCP).unwrap(),
        )),
    )
    .expect("MPTCP socket (is CONFIG_MPTCP on?)");
    s.set_read_timeout(Some(wait)).unwrap();
    s.set_write_timeout(Some(wait)).unwrap();
    s
}

/// An MPTCP connection from `from` (any port) to `to`, made in the calling thread's
/// namespace, its connect, reads and writes bounded by `wait`.
///
/// # Panics
/// As [`mptcp_socket`], or when bind or connect fail.
pub fn mptcp_connect(from: Ipv6Addr, to: SocketAddrV6, wait: Duration) -> TcpStream {
    let s = mptcp_socket(wait);
    s.bind(&SocketAddr::V6(SocketAddrV6::new(from, 0, 0, 0)).into())
        .unwrap();
    s.connect_timeout(&SocketAddr::V6(to).into(), wait).unwrap();
    TcpStream::from(s)
}

/// Microseconds since the UNIX epoch, the clock the daemons' event history uses.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn generate_hba(
    cga_tool: Option<&Path>,
    sec: u8,
    prefixes: &[Ipv6Addr],
    out: &Path,
) -> io::Result<Vec<Ipv6Addr>> {
    let Some(cga_tool) = cga_tool else {
        return generate_hba_lib(prefixes, out);
    };
    let mut cmd = Command::new(cga_tool);
    cmd.args(["generate", "--sec", &sec.to_string(), "--hba"]);
    for p in prefixes {
        cmd.arg("--prefix").arg(format!("{p}/64"));
    }
    cmd.args(["--format", "json", "--out"]).arg(out);
    let o = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("run {}: {e}", cga_tool.display())))?;
    if !o.status.success() {
        return Err(io::Error::other(format!(
            "cga-tool generate: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out)?)
        .map_err(|e| io::Error::other(format!("cga-tool output: {e}")))?;
    v["addresses"]
        .as_array()
        .ok_or_else(|| io::Error::other("cga-tool output: no addresses"))?
        .iter()
        .map(|a| {
            a["address"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other("cga-tool output: bad address"))
        })
        .collect()
}

/// An HBA set (RFC 5535) over `prefixes` (`/64`s) written to `out` as `cga-tool generate
/// --hba --format json` does; its addresses, one per prefix in order.
pub fn hba_set(bins: &Bins, prefixes: &[Ipv6Addr], out: &Path) -> io::Result<Vec<Ipv6Addr>> {
    generate_hba(bins.cga_tool.as_deref(), 0, prefixes, out)
}

/// The same file as `cga-tool generate --sec 0 --hba --format json`, made with the
/// library: a pure HBA set (RFC 5535 §6) with a random pseudo-key and modifier.
fn generate_hba_lib(prefixes: &[Ipv6Addr], out: &Path) -> io::Result<Vec<Ipv6Addr>> {
    let mut random = [0u8; cga::generate::PSEUDO_KEY_RANDOM_LEN + 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let (k, m) = random.split_at(cga::generate::PSEUDO_KEY_RANDOM_LEN);
    let key = cga::hba_pseudo_key(k.try_into().map_err(io::Error::other)?);
    let g = cga::Generator::from_parts(cga::Sec::ZERO, key, &prefixes64(prefixes), false)
        .map_err(|e| io::Error::other(format!("HBA set: {e}")))?;
    let set = g.finish(m.try_into().map_err(io::Error::other)?);
    write_set(&set.members(), out)
}

/// The first 64 bits of each of `prefixes`.
pub(crate) fn prefixes64(prefixes: &[Ipv6Addr]) -> Vec<[u8; 8]> {
    prefixes
        .iter()
        .map(|p| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&p.octets()[..8]);
            b
        })
        .collect()
}

/// Writes a Sec 0 set's `members` (prefix, address, CGA Parameters) to `out` as
/// `cga-tool generate --format json` does; returns the addresses, in order.
pub(crate) fn write_set(
    members: &[(cga::Prefix64, Ipv6Addr, Vec<u8>)],
    out: &Path,
) -> io::Result<Vec<Ipv6Addr>> {
    let doc = serde_json::json!({
        "sec": 0,
        "addresses": members.iter().map(|(_, a, params)| serde_json::json!({
            "address": a.to_string(),
            "params": params.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        })).collect::<Vec<_>>(),
    });
    std::fs::write(out, doc.to_string())?;
    Ok(members.iter().map(|m| m.1).collect())
}

fn prefix_of(a: Ipv6Addr) -> Ipv6Addr {
    let mut o = a.octets();
    o[8..].fill(0);
    Ipv6Addr::from(o)
}

/// One host's HBA set (over the prefixes of `devs`' locators, each HBA address added to
/// the device of its prefix), configuration and, with `run`, its started daemon.
fn make_daemon(
    bins: &Bins,
    options: &Options,
    dir: &Path,
    ns: &Netns,
    name: &str,
    devs: &[(&str, &[Ipv6Addr])],
    run: bool,
) -> io::Result<Daemon> {
    let trigger = options.trigger[usize::from(name == "b")];
    let hdir = dir.join(name);
    std::fs::create_dir_all(&hdir)?;
    let prefixes: Vec<Ipv6Addr> = devs
        .iter()
        .flat_map(|(_, locs)| locs.iter().map(|a| prefix_of(*a)))
        .collect();
    let hba = generate_hba(
        bins.cga_tool.as_deref(),
        options.sec,
        &prefixes,
        &hdir.join("hba.json"),
    )?;
    for a in &hba {
        let dev = devs
            .iter()
            .find(|(_, locs)| locs.iter().any(|l| prefix_of(*l) == prefix_of(*a)))
            .map_or(devs[0].0, |d| d.0);
        ns.ip(&["-6", "addr", "add", &format!("{a}/64"), "dev", dev, "nodad"])?;
    }
    let include = devs
        .iter()
        .map(|(d, _)| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        hdir.join("shim6d.toml"),
        format!(
            "# written by shim6_tests::daemons for the {name} side of the testbed\n\
             [identity]\nmode = \"hba\"\nparams_file = \"hba.json\"\n\
             [interfaces]\ninclude = [{include}]\n\
             [reap]\nsend_timeout = {}\n\
             [trigger]\nmode = \"{}\"\n\
             [resend]\nenabled = {}\n\
             [mptcp]\nenabled = {}\npolicy = \"fullmesh\"\nset_sysctls = true\n\
             sample_interval = 0.1\n\
             [control]\nlisten = \"\"\nunix_socket = \"ctl.sock\"\n\
             [log]\nlevel = \"{}\"\n",
            options.send_timeout, trigger, options.resend, options.mptcp, options.log
        ),
    )?;
    let mut d = Daemon {
        child: None,
        hba,
        dir: hdir,
        shim6d: bins.shim6d.clone(),
        netns: ns.name().to_owned(),
    };
    if run {
        d.spawn()?;
    }
    Ok(d)
}

/// `establish B_ULID` on A, then waits until both sides are ESTABLISHED; the handshake
/// time as A saw it (from `establish` to ESTABLISHED in A's history).
fn establish_between(a: &Daemon, b: &Daemon, ub: Ipv6Addr) -> io::Result<Duration> {
    let t0 = Instant::now();
    let (code, out) = a.ctl(&format!("establish {ub}"))?;
    if code != 0 {
        return Err(io::Error::other(format!("establish: {out}")));
    }
    let mut done = None;
    until(Duration::from_secs(15), "ESTABLISHED on both sides", || {
        let sa = a.state()?;
        let sb = b.state()?;
        if sa.as_deref() == Some("ESTABLISHED") && done.is_none() {
            done = Some(t0.elapsed());
        }
        Ok(sa.as_deref() == Some("ESTABLISHED") && sb.as_deref() == Some("ESTABLISHED"))
    })?;
    // The history has the exact instants; fall back to the polled time.
    let c = &a.contexts()?[0];
    let at = |kind: &str| {
        c["events"]
            .as_array()
            .and_then(|v| v.iter().find(|e| e["event"] == kind))
            .and_then(|e| e["unix_us"].as_u64())
    };
    Ok(match (at("i1_sent"), at("established")) {
        (Some(s), Some(e)) if e >= s => Duration::from_micros(e - s),
        _ => done.unwrap_or_default(),
    })
}

/// A daemon's current locator pair (local, remote) as its first context shows it.
pub fn current_pair_of(d: &Daemon) -> io::Result<(Ipv6Addr, Ipv6Addr)> {
    let c = d
        .contexts()?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::other("no context"))?;
    let p = &c["current_pair"];
    let get = |k: &str| {
        p[k].as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("current_pair.{k}: {c}")))
    };
    Ok((get("local")?, get("remote")?))
}

impl Pair {
    /// Builds the testbed, the identities and the daemons; see the module docs.
    pub fn start(tag: &str, bins: &Bins, options: Options) -> io::Result<Self> {
        // The testbed's self-check (one UDP round trip per pair, 2 s each) has failed
        // once in ~20 runs of the suite on the loaded 2-core machine, quickly, before any
        // daemon ran: build it again once (fresh namespaces) before giving up.
        let bed = match LinShim6::new(tag) {
            Ok(b) => b,
            Err(first) => LinShim6::new(tag)
                .map_err(|e| io::Error::other(format!("testbed: {first}; again: {e}")))?,
        };
        let dir = std::env::temp_dir().join(format!("shim6d-{}", bed.a.name()));
        std::fs::create_dir_all(&dir)?;
        let make = |ns: &Netns, name: &str, dev: &str, locs: [Ipv6Addr; 3], run: bool| {
            make_daemon(bins, &options, &dir, ns, name, &[(dev, &locs[..])], run)
        };
        // A failed setup leaves nothing behind: a daemon already started is stopped by
        // its Drop, the namespaces by the testbed's, the directory here.
        let made = make(&bed.a, "a", "a0", bed.a_addrs, true)
            .and_then(|a| make(&bed.b, "b", "b0", bed.b_addrs, options.daemon_b).map(|b| (a, b)));
        let (a, b) = match made {
            Ok(ab) => ab,
            Err(e) => {
                if !options.keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(e);
            }
        };
        let b = options.daemon_b.then_some(b);
        Ok(Self {
            a,
            b,
            bed,
            options,
            dir,
        })
    }

    /// [`Pair::start`], then [`Pair::establish`]: the start of most scenarios.
    ///
    /// # Panics
    /// When either fails (`setup: ERROR`, or the error and the tail of both logs).
    pub fn start_established(tag: &str, bins: &Bins, options: Options) -> Self {
        let p = Self::start(tag, bins, options).unwrap_or_else(|e| panic!("setup: {e}"));
        p.establish()
            .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
        p
    }

    /// Host B's daemon.
    ///
    /// # Panics
    /// When started without one.
    pub fn b(&self) -> &Daemon {
        self.b.as_ref().expect("started with a daemon on B")
    }

    /// A's ULID (its HBA address on its first prefix) and B's.
    pub fn ulids(&self) -> (Ipv6Addr, Ipv6Addr) {
        (self.a.hba[0], self.b_hba()[0])
    }

    /// B's HBA addresses (also without a daemon there).
    pub fn b_hba(&self) -> &[Ipv6Addr] {
        match &self.b {
            Some(b) => &b.hba,
            None => &[],
        }
    }

    /// `establish B_ULID` on A, then waits until both sides are ESTABLISHED; returns the
    /// handshake time as A saw it (from `establish` to ESTABLISHED in A's history).
    pub fn establish(&self) -> io::Result<Duration> {
        establish_between(&self.a, self.b(), self.ulids().1)
    }

    /// A's current locator pair (local, remote) as its context shows it.
    pub fn current_pair(&self) -> io::Result<(Ipv6Addr, Ipv6Addr)> {
        current_pair_of(&self.a)
    }

    /// The directory of configurations and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last `n` lines of both daemons' logs (B's empty without a daemon there), for
    /// failure messages.
    pub fn logs_tail(&self, n: usize) -> String {
        logs_tail(&self.a, self.b.as_ref(), n)
    }

    /// One datagram each way between the ULIDs (to the discard port): the traffic REAP
    /// needs to notice a failure (RFC 5534 §4.1). Errors are ignored.
    pub fn poke_ulids(&self) {
        let (ua, ub) = self.ulids();
        for (ns, s, d) in [(&self.bed.a, ua, ub), (&self.bed.b, ub, ua)] {
            let _ = ns.run(move || async move {
                let u = std::net::UdpSocket::bind(SocketAddr::V6(SocketAddrV6::new(s, 0, 0, 0)))?;
                u.send_to(b"x", SocketAddr::V6(SocketAddrV6::new(d, 9, 0, 0)))
            });
        }
    }

    /// Breaks the ULID pair both ways at the router and calls `poke` (traffic, e.g.
    /// [`Pair::poke_ulids`]) until both daemons moved their context off it (REAP, RFC
    /// 5534 §4.2), for at most `wait`.
    pub fn leave_ulid_pair(&self, wait: Duration, mut poke: impl FnMut()) -> io::Result<()> {
        let (ua, ub) = self.ulids();
        self.bed.break_addrs(ua, ub)?;
        self.bed.break_addrs(ub, ua)?;
        until(wait, "both sides off the ULID pair", || {
            poke();
            Ok(current_pair_of(&self.a)? != (ua, ub) && current_pair_of(self.b())? != (ub, ua))
        })
    }
}

/// The last `n` lines of `a`'s log and of `b`'s, headed `--- A ---` and `--- B ---`.
fn logs_tail(a: &Daemon, b: Option<&Daemon>, n: usize) -> String {
    format!(
        "--- A ---\n{}\n--- B ---\n{}",
        a.log_tail(n),
        b.map(|b| b.log_tail(n)).unwrap_or_default()
    )
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Daemons first (they remove their TUN, routes and rule), then the namespaces
        // (the `bed` field drops after this body).
        self.a.stop();
        if let Some(b) = self.b.as_mut() {
            b.stop();
        }
        if !self.options.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The multi-interface topology ([`MultiHomed`]) with a daemon on each host: each host's
/// HBA set spans the prefixes of all its interfaces, each HBA address sits on the
/// interface of its prefix, and the daemon includes every interface. Dropped like
/// [`Pair`]: daemons first, then the namespaces and the directory.
#[derive(Debug)]
pub struct MultiPair {
    /// Host A's daemon.
    pub a: Daemon,
    /// Host B's daemon.
    pub b: Daemon,
    /// The topology (dropped after the daemons: field order).
    pub bed: MultiHomed,
    /// Options given (`daemon_b` is ignored: both hosts run one).
    pub options: Options,
    dir: PathBuf,
}

impl MultiPair {
    /// Builds the topology with `k` (2 or 3) interfaces per host, the identities and the
    /// daemons.
    pub fn start(tag: &str, k: usize, bins: &Bins, options: Options) -> io::Result<Self> {
        let bed = MultiHomed::new(tag, k)?;
        let dir = std::env::temp_dir().join(format!("shim6d-{}", bed.a.name()));
        std::fs::create_dir_all(&dir)?;
        let devs = |host: char, addrs: &[Ipv6Addr]| -> Vec<(String, Ipv6Addr)> {
            addrs
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("{host}{}", i + 1), *a))
                .collect()
        };
        let da = devs('a', &bed.a_addrs);
        let db = devs('b', &bed.b_addrs);
        let make = |ns: &Netns, name: &str, d: &[(String, Ipv6Addr)]| {
            let locs: Vec<[Ipv6Addr; 1]> = d.iter().map(|x| [x.1]).collect();
            let list: Vec<(&str, &[Ipv6Addr])> = d
                .iter()
                .zip(&locs)
                .map(|(x, l)| (x.0.as_str(), &l[..]))
                .collect();
            make_daemon(bins, &options, &dir, ns, name, &list, true)
        };
        let made = make(&bed.a, "a", &da).and_then(|a| make(&bed.b, "b", &db).map(|b| (a, b)));
        let (a, b) = match made {
            Ok(ab) => ab,
            Err(e) => {
                if !options.keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(e);
            }
        };
        Ok(Self {
            a,
            b,
            bed,
            options,
            dir,
        })
    }

    /// A's ULID (its HBA address on its first interface's prefix) and B's.
    pub fn ulids(&self) -> (Ipv6Addr, Ipv6Addr) {
        (self.a.hba[0], self.b.hba[0])
    }

    /// See [`Pair::establish`].
    pub fn establish(&self) -> io::Result<Duration> {
        establish_between(&self.a, &self.b, self.ulids().1)
    }

    /// A's current locator pair (local, remote).
    pub fn current_pair(&self) -> io::Result<(Ipv6Addr, Ipv6Addr)> {
        current_pair_of(&self.a)
    }

    /// See [`Pair::logs_tail`].
    pub fn logs_tail(&self, n: usize) -> String {
        logs_tail(&self.a, Some(&self.b), n)
    }

    /// The directory of configurations and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for MultiPair {
    fn drop(&mut self) {
        self.a.stop();
        self.b.stop();
        if !self.options.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Port of the TCP stream's listener.
pub const STREAM_PORT: u16 = 5001;
/// Bytes per write of the stream.
pub const CHUNK: usize = 1000;
/// Pause between writes: about 200 kB/s, enough to keep REAP's Send timer armed.
pub const PACE: Duration = Duration::from_millis(5);

/// The byte at stream offset `i`: a pattern with period 251 (prime), so a lost,
/// duplicated or reordered segment shows as a mismatch.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// What the receiver saw: (instant, total bytes received in order) per read.
pub type Progress = Arc<Mutex<Vec<(Instant, u64)>>>;

/// A paced TCP stream from A's ULID to B's, checked byte by byte at B.
pub struct Stream {
    stop: Arc<AtomicBool>,
    /// Set by [`Stream::finish`] once its wait is over: the receiver stops at its next
    /// read timeout even without the sender's FIN.
    give_up: Arc<AtomicBool>,
    /// The receiver's progress.
    pub progress: Progress,
    sender: Option<NetnsThread<io::Result<u64>>>,
    receiver: Option<NetnsThread<io::Result<u64>>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").finish_non_exhaustive()
    }
}

/// The stream's outcome.
#[derive(Clone, Debug)]
pub struct StreamResult {
    /// Bytes the sender wrote.
    pub sent: u64,
    /// Bytes the receiver got, every one in order and as sent.
    pub received: u64,
    /// The sender's or the receiver's error, if any (a reset, a mismatch).
    pub error: Option<String>,
}

impl Stream {
    /// Starts the listener in B, then the sender in A (bound to `src`, to `dst`).
    pub fn start(a: &Netns, b: &Netns, src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let give_up = Arc::new(AtomicBool::new(false));
        let progress: Progress = Arc::new(Mutex::new(Vec::new()));
        // Bind inside B's namespace: a socket belongs to the namespace it was made in.
        let (ltx, lrx) = std::sync::mpsc::channel();
        let p2 = progress.clone();
        let give_up_r = give_up.clone();
        let receiver = b.spawn(move || async move {
            let l = std::net::TcpListener::bind(SocketAddr::V6(SocketAddrV6::new(
                dst,
                STREAM_PORT,
                0,
                0,
            )));
            let l = match l {
                Ok(l) => {
                    let _ = ltx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = ltx.send(Err(e.to_string()));
                    return Err(io::Error::other("bind"));
                }
            };
            l.set_nonblocking(false)?;
            let (mut s, _) = l.accept()?;
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
            let mut total = 0u64;
            let mut buf = vec![0u8; 65536];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Ok(total),
                    Ok(n) => {
                        for (k, b) in buf[..n].iter().enumerate() {
                            if *b != pattern(total + k as u64) {
                                return Err(io::Error::other(format!(
                                    "byte {} is {b}, expected {}",
                                    total + k as u64,
                                    pattern(total + k as u64)
                                )));
                            }
                        }
                        total += n as u64;
                        p2.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((Instant::now(), total));
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        // Not on `stop`: the sender's data may still be on its way (TCP
                        // backed off after an outage sends nothing for seconds), and
                        // closing now would reset the connection under it.
                        if give_up_r.load(Ordering::Relaxed) {
                            return Ok(total);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        })?;
        match lrx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(io::Error::other(format!("listen on {dst}: {e}"))),
            Err(_) => return Err(io::Error::other("listener did not start")),
        }
        let stop_s = stop.clone();
        let sender = a.spawn(move || async move {
            // Bind then connect (std cannot): the source must be the ULID, not what the
            // kernel would pick.
            let sock = tokio::net::TcpSocket::new_v6()?;
            sock.bind(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 0)))?;
            let connect = sock.connect(SocketAddr::V6(SocketAddrV6::new(dst, STREAM_PORT, 0, 0)));
            let s = tokio::time::timeout(Duration::from_secs(5), connect)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect"))??;
            // The rest is blocking I/O on this namespace thread of its own.
            let mut s = s.into_std()?;
            s.set_nonblocking(false)?;
            s.set_nodelay(true)?;
            let mut off = 0u64;
            let mut chunk = vec![0u8; CHUNK];
            while !stop_s.load(Ordering::Relaxed) {
                for (k, b) in chunk.iter_mut().enumerate() {
                    *b = pattern(off + k as u64);
                }
                s.write_all(&chunk)?;
                off += CHUNK as u64;
                std::thread::sleep(PACE);
            }
            s.flush()?;
            // Half-close: the receiver reads to the end.
            s.shutdown(std::net::Shutdown::Write)?;
            Ok(off)
        })?;
        Ok(Self {
            stop,
            give_up,
            progress,
            sender: Some(sender),
            receiver: Some(receiver),
        })
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .map_or(0, |p| p.1)
    }

    /// Stops the sender (it completes its last write and half-closes), waits (bounded by
    /// `wait`) for the receiver to read everything up to the sender's FIN, then makes it
    /// give up.
    ///
    /// The receiver never stops on its own before that: right after an outage TCP may
    /// be in retransmission back-off with nothing arriving for seconds, and a receiver
    /// that closed its socket then had the connection reset under the sender (EPIPE,
    /// ENOTCONN at the half-close; docs/bench/netns-exploration.md).
    pub fn finish(mut self, wait: Duration) -> StreamResult {
        self.stop.store(true, Ordering::Relaxed);
        let mut error = None;
        let sent = match self.sender.take().map(NetnsThread::join) {
            Some(Ok(Ok(n))) => n,
            Some(Ok(Err(e))) | Some(Err(e)) => {
                error = Some(format!("sender: {e}"));
                0
            }
            None => 0,
        };
        // The receiver ends at the sender's FIN; bound the wait.
        let deadline = Instant::now() + wait;
        while self.received() < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.give_up.store(true, Ordering::Relaxed);
        let received = match self.receiver.take().map(NetnsThread::join) {
            Some(Ok(Ok(n))) => n,
            Some(Ok(Err(e))) | Some(Err(e)) => {
                error.get_or_insert(format!("receiver: {e}"));
                self.received()
            }
            None => 0,
        };
        StreamResult {
            sent,
            received,
            error,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.give_up.store(true, Ordering::Relaxed);
    }
}

/// Which directions of the current path [`failover`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// Both directions of A's current pair.
    Bidirectional,
    /// Only A → B on A's current pair (B → A keeps working).
    AtoB,
}

/// The failover demo's figures (`./demo.sh --json` prints them as one object).
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Both daemons reached ESTABLISHED.
    pub context_established: bool,
    /// I1 sent → ESTABLISHED at A, milliseconds.
    pub handshake_ms: f64,
    /// REAP Send Timeout in use, seconds.
    pub send_timeout_s: f64,
    /// The pair that was broken (A's current pair then), and what was broken.
    pub broken_pair: (String, String),
    /// `bidirectional` or `a-to-b`.
    pub broken: &'static str,
    /// Failure → the first REAP "path failed" on either side, seconds.
    pub detection_s: Option<f64>,
    /// That detection → the last of the two sides' "path changed" (the exploration),
    /// seconds.
    pub exploration_s: Option<f64>,
    /// Failure → both sides moved off the broken pair ("path changed"), seconds.
    pub recovery_s: Option<f64>,
    /// The pair A moved to.
    pub new_pair: Option<(String, String)>,
    /// Failure → the first byte the application received after the stall, seconds.
    pub application_recovery_s: Option<f64>,
    /// Bytes received in order before the failure.
    pub tcp_bytes_before_failure: u64,
    /// Bytes received in order after the application recovered.
    pub tcp_bytes_after_recovery: u64,
    /// Bytes sent and received in total.
    pub tcp_bytes_sent: u64,
    /// Bytes received in total.
    pub tcp_bytes_received: u64,
    /// The stream ended without error, every byte arrived in order, and bytes flowed
    /// after the failure.
    pub stream_survived: bool,
    /// Path events A logged before the failure (REAP explorations with no failure: the
    /// inbound-visibility hazard, see the daemon docs).
    pub path_changes_before_failure: u64,
    /// The stream's error, if any.
    pub error: Option<String>,
}

impl Summary {
    /// As one JSON object.
    pub fn to_json(&self) -> Value {
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        serde_json::json!({
            "context_established": self.context_established,
            "handshake_ms": r3(self.handshake_ms),
            "send_timeout_s": self.send_timeout_s,
            "broken": self.broken,
            "broken_pair": { "local": self.broken_pair.0, "remote": self.broken_pair.1 },
            "detection_s": self.detection_s.map(r3),
            "exploration_s": self.exploration_s.map(r3),
            "recovery_s": self.recovery_s.map(r3),
            "new_pair": self.new_pair.as_ref().map(|p| serde_json::json!({ "local": p.0, "remote": p.1 })),
            "application_recovery_s": self.application_recovery_s.map(r3),
            "tcp_bytes_before_failure": self.tcp_bytes_before_failure,
            "tcp_bytes_after_recovery": self.tcp_bytes_after_recovery,
            "tcp_bytes_sent": self.tcp_bytes_sent,
            "tcp_bytes_received": self.tcp_bytes_received,
            "stream_survived": self.stream_survived,
            "path_changes_before_failure": self.path_changes_before_failure,
            "error": self.error,
        })
    }
}

/// The events of a daemon's first context: (`unix_us`, event, detail).
pub fn history(d: &Daemon) -> io::Result<Vec<(u64, String, Value)>> {
    let c = d.contexts()?;
    let Some(c) = c.first() else {
        return Ok(Vec::new());
    };
    Ok(c["events"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| {
                    (
                        e["unix_us"].as_u64().unwrap_or(0),
                        e["event"].as_str().unwrap_or("").to_owned(),
                        e["detail"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Runs the failover scenario on a started pair: establish, stream, let REAP settle,
/// break A's current pair, wait for the stream to flow again, and measure.
/// `say` gets the timeline's lines as they happen.
pub fn failover(pair: &Pair, broken: Break, say: &mut dyn FnMut(&str)) -> io::Result<Summary> {
    let tsend = pair.options.send_timeout;
    let mut sum = Summary {
        send_timeout_s: tsend,
        broken: match broken {
            Break::Bidirectional => "bidirectional",
            Break::AtoB => "a-to-b",
        },
        ..Summary::default()
    };
    let (ua, ub) = pair.ulids();
    let hs = pair.establish()?;
    sum.context_established = true;
    sum.handshake_ms = hs.as_secs_f64() * 1000.0;
    say(&format!(
        "context established {ua} <-> {ub} (I1 -> ESTABLISHED at A: {:.1} ms)",
        sum.handshake_ms
    ));
    let stream = Stream::start(&pair.bed.a, &pair.bed.b, ua, ub)?;
    say(&format!(
        "TCP stream [{ua}]:* -> [{ub}]:{STREAM_PORT} running, checked byte by byte"
    ));
    // Let REAP settle: wait until A's pair has not changed for Send Timeout + 2 s
    // (bounded). With inbound visibility (`shim6d::visibility`) the context stays on its
    // ULID pair, and `path_changes_before_failure` below is 0; a daemon without
    // nftables would move once here (docs/daemon.md "Inbound visibility").
    let quiet = Duration::from_secs_f64(tsend + 2.0);
    let started = Instant::now();
    let mut last_pair = pair.current_pair()?;
    let mut since = Instant::now();
    while since.elapsed() < quiet && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        let p = pair.current_pair()?;
        if p != last_pair {
            last_pair = p;
            since = Instant::now();
        }
    }
    if stream.received() == 0 {
        return Err(io::Error::other("the stream did not start"));
    }
    let before = history(&pair.a)?;
    sum.path_changes_before_failure =
        before.iter().filter(|e| e.1 == "path_changed").count() as u64;
    let (la, lb) = pair.current_pair()?;
    sum.broken_pair = (la.to_string(), lb.to_string());
    let t_break = Instant::now();
    let break_us = unix_us();
    pair.bed.break_addrs(la, lb)?;
    if broken == Break::Bidirectional {
        pair.bed.break_addrs(lb, la)?;
    }
    sum.tcp_bytes_before_failure = stream.received();
    say(&format!(
        "t=0.000 s  FAILURE: path {la} -> {lb} broken{} ({} bytes received so far)",
        if broken == Break::Bidirectional {
            " in both directions"
        } else {
            " (A to B only)"
        },
        sum.tcp_bytes_before_failure
    ));
    // Recovered: the stream moved on by 20 chunks beyond what was in flight.
    let mark = sum.tcp_bytes_before_failure;
    until(Duration::from_secs(90), "the stream to flow again", || {
        Ok(t_break.elapsed() > Duration::from_millis(300)
            && stream.received() > mark + 20 * CHUNK as u64)
    })?;
    std::thread::sleep(Duration::from_secs(2));
    // Both daemons' events after the cut, in time order.
    let mut events: Vec<(u64, &'static str, String, Value)> = Vec::new();
    for (side, d) in [("A", &pair.a), ("B", pair.b())] {
        for (t, kind, detail) in history(d)? {
            if t >= break_us {
                events.push((t, side, kind, detail));
            }
        }
    }
    events.sort_by_key(|e| e.0);
    let secs = |us: u64| us.saturating_sub(break_us) as f64 / 1e6;
    // Detection: the first REAP "path failed" on either side (RFC 5534 §4.1 item 6: the
    // side whose Send timer expires first, or the one that hears the other explore).
    let failed = events.iter().find(|e| e.2 == "path_failed");
    // Recovery: each side that detected has moved its current pair (both directions
    // work again); the later of the two.
    let changed = |side: &str| {
        events
            .iter()
            .find(|e| e.1 == side && e.2 == "path_changed")
            .cloned()
    };
    let (ca, cb) = (changed("A"), changed("B"));
    for (t, side, kind, detail) in &events {
        let text = match kind.as_str() {
            "path_failed" => format!(
                "DETECTION at {side}: REAP path failed ({})",
                detail["cause"].as_str().unwrap_or("?")
            ),
            "path_usable" => format!(
                "exploration at {side}: probe answered on {} -> {}",
                detail["pair"]["local"].as_str().unwrap_or("?"),
                detail["pair"]["remote"].as_str().unwrap_or("?")
            ),
            "path_changed" => format!(
                "RECOVERY at {side}: REAP moved to {} -> {}",
                detail["to"]["local"].as_str().unwrap_or("?"),
                detail["to"]["remote"].as_str().unwrap_or("?")
            ),
            other => format!("{side}: {other}"),
        };
        say(&format!("t={:.3} s  {text}", secs(*t)));
    }
    if let Some(f) = failed {
        sum.detection_s = Some(secs(f.0));
    }
    let last_change = [&ca, &cb].into_iter().flatten().map(|e| e.0).max();
    if let Some(t) = last_change {
        sum.recovery_s = Some(secs(t));
        sum.exploration_s = failed.map(|f| t.saturating_sub(f.0) as f64 / 1e6);
    }
    if let Some(c) = &ca {
        let to = &c.3["to"];
        sum.new_pair = Some((
            to["local"].as_str().unwrap_or("?").to_owned(),
            to["remote"].as_str().unwrap_or("?").to_owned(),
        ));
    }
    // Application recovery: the first read after the longest stall following the cut.
    let (recovered_at, bytes_at) = {
        let prog = stream.progress.lock().unwrap_or_else(|p| p.into_inner());
        let mut prev = t_break;
        let mut best: Option<(Duration, Instant, u64)> = None;
        for &(t, total) in prog.iter().filter(|(t, _)| *t > t_break) {
            let gap = t - prev;
            if best.is_none_or(|b| gap > b.0) {
                best = Some((gap, t, total));
            }
            prev = t;
        }
        best.map_or((None, 0), |b| (Some(b.1), b.2))
    };
    if let Some(t) = recovered_at {
        let s = (t - t_break).as_secs_f64();
        sum.application_recovery_s = Some(s);
        say(&format!(
            "t={s:.3} s  APPLICATION: the TCP stream delivers again"
        ));
    }
    let result = stream.finish(Duration::from_secs(20));
    sum.tcp_bytes_sent = result.sent;
    sum.tcp_bytes_received = result.received;
    sum.tcp_bytes_after_recovery = result.received.saturating_sub(bytes_at);
    sum.error = result.error.clone();
    sum.stream_survived = result.error.is_none()
        && result.received == result.sent
        && sum.tcp_bytes_after_recovery > 0;
    say(&format!(
        "stream: {} bytes sent, {} received in order{}",
        result.sent,
        result.received,
        result
            .error
            .map(|e| format!(", error: {e}"))
            .unwrap_or_default()
    ));
    Ok(sum)
}
