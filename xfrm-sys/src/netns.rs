//! Network namespaces: running code inside one, and a test kit that creates them.
//!
//! # Running inside a namespace
//!
//! A thread's network namespace decides where the sockets it opens live (netlink, raw,
//! TUN); a socket keeps its namespace for life. [`spawn`] runs a future on a **new**
//! thread that first `setns(2)`s into `/run/netns/NAME` and then builds its own
//! current-thread tokio runtime, so everything the future opens (a [`Handle`], a TUN, raw
//! sockets) belongs to that namespace. This is how the tests run one daemon per
//! namespace.
//!
//! Never enter a namespace on a thread you do not own: a tokio worker or blocking-pool
//! thread would keep the namespace and hand it to unrelated tasks. That is why there is no
//! `spawn_blocking` variant, and why [`enter_current_thread`] is documented as it is.
//!
//! # Test kit
//!
//! [`Netns`] creates a named namespace (`ip netns add`) and deletes it on `Drop`, also
//! while a failing test unwinds. Names are `s6t-TAG-PID-N`: unique per process and per
//! test, so parallel test processes (nextest) and reruns do not collide; namespaces left
//! behind by a killed test process (its PID gone) are swept on the next
//! [`Netns::new`]. [`veth`] joins two namespaces (or two ends in one), [`Netns::ip`] and
//! [`Netns::exec`] run setup commands inside. The kit only ever touches namespaces it
//! created; it never changes the host's own network configuration, and tests use the
//! documentation prefix `2001:db8::/32` only.
//!
//! Tests that need the kit start with
//!
//! ```no_run
//! if !xfrm_sys::netns::require_net_admin() {
//!     return; // printed "SKIPPED: needs CAP_NET_ADMIN"
//! }
//! ```

use std::{
    fs::File,
    future::Future,
    io,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        Once,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
};

use crate::{Handle, sys};

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Prefix of every namespace the test kit creates.
pub const TEST_PREFIX: &str = "s6t-";

/// Linux `IFNAMSIZ` minus the terminating NUL (`include/uapi/linux/if.h`).
const MAX_IFNAME_LEN: usize = 15;

/// The handle file of the named namespace.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

fn open(name: &str) -> io::Result<File> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad network namespace name {name:?}"),
        ));
    }
    let p = path(name);
    File::open(&p).map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", p.display())))
}

/// Moves the **calling thread** into the named namespace, for good.
///
/// Only for threads you created for that purpose and that run nothing expecting the
/// original namespace afterwards; prefer [`spawn`]. Never call it on a tokio runtime
/// thread.
pub fn enter_current_thread(name: &str) -> io::Result<()> {
    let ns = open(name)?;
    sys::setns_net(&ns)
        .map_err(|e| io::Error::new(e.kind(), format!("setns into netns {name}: {e}")))
}

/// Runs `f` on a scoped thread that entered the namespace, and returns its result: used
/// to open sockets that belong to `name` without moving the caller.
pub(crate) fn with_socket_in<T, F>(name: &str, f: F) -> io::Result<T>
where
    T: Send,
    F: FnOnce() -> io::Result<T> + Send,
{
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name(format!("netns-open-{name}"))
            .spawn_scoped(scope, || {
                enter_current_thread(name)?;
                f()
            })?;
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A thread running a future inside a network namespace; see [`spawn`].
#[derive(Debug)]
pub struct NetnsThread<T> {
    thread: thread::JoinHandle<()>,
    result: tokio::sync::oneshot::Receiver<io::Result<T>>,
}

/// Runs the future made by `f` on a new thread inside the named namespace, on that
/// thread's own current-thread tokio runtime (I/O and time enabled).
///
/// The thread enters the namespace before `f` is called, so every socket, TUN device or
/// [`Handle`] made inside belongs to the namespace. The future need not be `Send`.
/// Collect the output with [`NetnsThread::join`] (blocking) or [`NetnsThread::wait`]
/// (async). A panic inside is re-raised in whoever joins.
pub fn spawn<F, Fut>(name: &str, f: F) -> io::Result<NetnsThread<Fut::Output>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ns = name.to_owned();
    let thread = thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            let result = enter_current_thread(&ns).and_then(|()| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(f()))
            });
            // The receiver may be gone (the NetnsThread was dropped); nothing to report to.
            let _ = tx.send(result);
        })?;
    Ok(NetnsThread { thread, result: rx })
}

/// [`spawn`] and [`NetnsThread::join`] in one call.
pub fn run<F, Fut>(name: &str, f: F) -> io::Result<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    spawn(name, f)?.join()
}

impl<T> NetnsThread<T> {
    /// Blocks until the future finished and returns its output. Errors are setup
    /// failures (entering the namespace, building the runtime); a panic of the future is
    /// resumed here.
    pub fn join(self) -> io::Result<T> {
        match self.thread.join() {
            Ok(()) => {}
            Err(panic) => std::panic::resume_unwind(panic),
        }
        let mut result = self.result;
        result
            .try_recv()
            .unwrap_or_else(|_| Err(io::Error::other("netns thread ended without a result")))
    }

    /// Waits asynchronously for the future's output; like [`NetnsThread::join`], a panic
    /// inside is resumed here (after a short blocking join of the already-dead thread).
    pub async fn wait(self) -> io::Result<T> {
        match self.result.await {
            Ok(result) => result,
            // The sender is dropped without a value only when the thread unwound.
            Err(_) => match self.thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => Err(io::Error::other("netns thread ended without a result")),
            },
        }
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// `CAP_NET_ADMIN` (`include/uapi/linux/capability.h`).
const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN`, which `ip netns add` needs to mount the namespace handle.
const CAP_SYS_ADMIN: u32 = 21;

/// Whether this process may create namespaces and configure them: effective
/// `CAP_NET_ADMIN` and `CAP_SYS_ADMIN`, an `ip` binary, and `/dev/net/tun`.
pub fn have_net_admin() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let Some(caps) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    else {
        return false;
    };
    let has = |cap: u32| caps & (1 << cap) != 0;
    has(CAP_NET_ADMIN)
        && has(CAP_SYS_ADMIN)
        && Path::new("/dev/net/tun").exists()
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// For tests: `true` when [`have_net_admin`]; otherwise prints
/// `SKIPPED: needs CAP_NET_ADMIN` and returns `false`, and the test returns early.
pub fn require_net_admin() -> bool {
    if have_net_admin() {
        true
    } else {
        println!("SKIPPED: needs CAP_NET_ADMIN");
        false
    }
}

/// Runs `ip ARGS`; the error names the command and carries its stderr.
fn ip(args: &[&str]) -> io::Result<String> {
    let output = Command::new("ip").args(args).output()?;
    check(&format!("ip {}", args.join(" ")), output)
}

fn check(what: &str, output: Output) -> io::Result<String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "`{what}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

static SWEEP: Once = Once::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Deletes test namespaces whose creating process is gone (a test killed before its
/// `Drop` ran). Namespaces of live processes are left alone.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TEST_PREFIX) else {
            continue;
        };
        // s6t-TAG-PID-N: the PID is the second field from the right.
        let Some(pid) = rest.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Best effort: another process may be sweeping the same name.
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// A named network namespace created for a test; deleted when dropped.
///
/// Dropping deletes the name (`ip netns del`); the kernel frees the namespace and its
/// interfaces once no thread or socket uses it any more.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `s6t-TAG-PID-N`. `tag` says which test it belongs to (letters, digits).
    pub fn new(tag: &str) -> io::Result<Self> {
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("netns tag {tag:?} must be non-empty letters and digits"),
            ));
        }
        SWEEP.call_once(sweep_stale);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TEST_PREFIX}{tag}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        // A fresh namespace has its loopback down; most tests want it up.
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `PROGRAM ARGS` inside the namespace (`ip netns exec`) and returns its output,
    /// whatever its exit status.
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
    }

    /// An rtnetlink [`Handle`] for this namespace, driven by the current runtime.
    pub fn handle(&self) -> crate::Result<Handle> {
        Handle::in_netns(&self.name)
    }

    /// [`spawn`] in this namespace.
    pub fn spawn<F, Fut>(&self, f: F) -> io::Result<NetnsThread<Fut::Output>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        spawn(&self.name, f)
    }

    /// [`run`] in this namespace.
    pub fn run<F, Fut>(&self, f: F) -> io::Result<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        run(&self.name, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Drop may run while a test unwinds: report, never panic.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete netns {}: {e}", self.name);
        }
    }
}

fn check_ifname(name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() > MAX_IFNAME_LEN || name.contains(['/', ' ', ':']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?} (1..={MAX_IFNAME_LEN} bytes, no '/', ' ' or ':')"),
        ));
    }
    Ok(())
}

/// Creates a veth pair with end `a_name` in `a` and end `b_name` in `b` (which may be the
/// same namespace). Both ends start down.
///
/// The pair is created inside `a` (`ip -n A link add ... peer ... netns B`), never in the
/// host namespace.
pub fn veth(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> io::Result<()> {
    check_ifname(a_name)?;
    check_ifname(b_name)?;
    if a.name == b.name {
        a.ip(&[
            "link", "add", a_name, "type", "veth", "peer", "name", b_name,
        ])?;
    } else {
        a.ip(&[
            "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", &b.name,
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(open("").is_err());
        assert!(open("../etc").is_err());
        assert!(open("..").is_err());
        assert!(check_ifname("a").is_ok());
        assert!(check_ifname("0123456789abcde").is_ok());
        assert!(check_ifname("0123456789abcdef").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("").is_err());
        assert_eq!(path("x"), PathBuf::from("/run/netns/x"));
    }

    #[test]
    fn entering_a_missing_namespace_fails_with_the_path() {
        let err = enter_current_thread("s6t-does-not-exist-0-0").unwrap_err();
        assert!(
            err.to_string()
                .contains("/run/netns/s6t-does-not-exist-0-0"),
            "{err}"
        );
        // spawn reports the same failure through join instead of running the future.
        let err = spawn("s6t-does-not-exist-0-0", || async { 1 })
            .unwrap()
            .join()
            .unwrap_err();
        assert!(err.to_string().contains("does-not-exist"), "{err}");
    }

    #[test]
    fn bad_tags_are_refused_before_running_ip() {
        assert!(Netns::new("").is_err());
        assert!(Netns::new("a-b").is_err());
        assert!(Netns::new("a/b").is_err());
    }
}
