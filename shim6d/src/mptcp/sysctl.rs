//! The `net.mptcp` settings the path manager needs, read (and optionally written) in
//! the calling thread's network namespace.
//!
//! - `net.mptcp.enabled = 1`: without it the kernel hands out plain TCP sockets for
//!   `IPPROTO_MPTCP` and no connection ever produces an event.
//! - `net.mptcp.path_manager = userspace` (6.15+), or on older kernels
//!   `net.mptcp.pm_type = 1`: the two stay in sync where both exist (mptcp-pm.md §1).
//!   The path manager is fixed per connection **when it is created**: connections made
//!   before the switch stay on the in-kernel PM and answer `"userspace PM not
//!   selected"`.
//!
//! Both are per network namespace. `/proc/sys/net` shows the namespace of the thread
//! that opens the file, so the driver reads them from its own thread.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
};

use serde::Serialize;

/// Where the settings live.
pub const PROC_DIR: &str = "/proc/sys/net/mptcp";

/// The settings as read.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Settings {
    /// `enabled` (absent: a kernel without MPTCP).
    pub enabled: Option<bool>,
    /// `path_manager` (6.15+): `kernel` or `userspace`.
    pub path_manager: Option<String>,
    /// `pm_type`: 0 in-kernel, 1 userspace.
    pub pm_type: Option<u8>,
}

impl Settings {
    /// New connections will use the userspace path manager.
    pub fn userspace(&self) -> bool {
        match &self.path_manager {
            Some(p) => p == "userspace",
            None => self.pm_type == Some(1),
        }
    }

    /// What is wrong, each with the command that fixes it; empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.enabled {
            None => {
                out.push(format!(
                    "{PROC_DIR}/enabled is missing: this kernel has no MPTCP (CONFIG_MPTCP)"
                ));
                return out;
            }
            Some(false) => out.push(
                "net.mptcp.enabled = 0: IPPROTO_MPTCP sockets fall back to TCP; run \
                 `sysctl -w net.mptcp.enabled=1`"
                    .into(),
            ),
            Some(true) => {}
        }
        if !self.userspace() {
            let now = match (&self.path_manager, self.pm_type) {
                (Some(p), _) => format!("net.mptcp.path_manager = {p}"),
                (None, Some(t)) => format!("net.mptcp.pm_type = {t}"),
                (None, None) => "no path-manager setting".into(),
            };
            let fix = if self.path_manager.is_some() {
                "sysctl -w net.mptcp.path_manager=userspace"
            } else {
                "sysctl -w net.mptcp.pm_type=1"
            };
            out.push(format!(
                "{now}: connections use the in-kernel path manager and refuse shim6d's \
                 commands (\"userspace PM not selected\"); run `{fix}` (per network \
                 namespace; only connections opened afterwards follow it)"
            ));
        }
        out
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |o: Option<String>| o.unwrap_or_else(|| "-".into());
        write!(
            f,
            "net.mptcp.enabled={} path_manager={} pm_type={}",
            opt(self.enabled.map(|e| u8::from(e).to_string())),
            opt(self.path_manager.clone()),
            opt(self.pm_type.map(|t| t.to_string())),
        )
    }
}

fn read_key(dir: &Path, key: &str) -> io::Result<Option<String>> {
    match fs::read_to_string(dir.join(key)) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("read {}: {e}", dir.join(key).display()),
        )),
    }
}

/// Reads the settings from `dir` ([`PROC_DIR`] in the daemon; a directory of files in
/// tests).
pub fn read_from(dir: &Path) -> io::Result<Settings> {
    let num = |key: &str| -> io::Result<Option<u8>> {
        read_key(dir, key)?
            .map(|s| {
                s.parse::<u8>().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {s:?} is not a small integer", dir.join(key).display()),
                    )
                })
            })
            .transpose()
    };
    Ok(Settings {
        enabled: num("enabled")?.map(|e| e != 0),
        path_manager: read_key(dir, "path_manager")?,
        pm_type: num("pm_type")?,
    })
}

/// Sets what [`Settings::problems`] complains about in `dir`: `enabled=1`, then
/// `path_manager=userspace` where it exists, else `pm_type=1`.
pub fn fix_in(dir: &Path, s: &Settings) -> io::Result<()> {
    let write = |key: &str, v: &str| {
        let p: PathBuf = dir.join(key);
        fs::write(&p, v)
            .map_err(|e| io::Error::new(e.kind(), format!("write {v} to {}: {e}", p.display())))
    };
    if s.enabled == Some(false) {
        write("enabled", "1")?;
    }
    if !s.userspace() {
        if s.path_manager.is_some() {
            write("path_manager", "userspace")?;
        } else {
            write("pm_type", "1")?;
        }
    }
    Ok(())
}

/// Reads the settings in `dir`; when something is wrong, fixes it if `set` (and reads
/// again), else returns the problems.
pub fn ensure_in(dir: &Path, set: bool) -> Result<Settings, Vec<String>> {
    let s = read_from(dir).map_err(|e| vec![e.to_string()])?;
    let problems = s.problems();
    if problems.is_empty() {
        return Ok(s);
    }
    if !set || s.enabled.is_none() {
        return Err(problems);
    }
    fix_in(dir, &s).map_err(|e| vec![format!("mptcp.set_sysctls: {e}")])?;
    let again = read_from(dir).map_err(|e| vec![e.to_string()])?;
    let left = again.problems();
    if left.is_empty() {
        Ok(again)
    } else {
        Err(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "shim6d-sysctl-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        for (k, v) in files {
            fs::write(d.join(k), format!("{v}\n")).unwrap();
        }
        d
    }

    #[test]
    fn good_settings_have_no_problems() {
        let d = dir(&[
            ("enabled", "1"),
            ("path_manager", "userspace"),
            ("pm_type", "1"),
        ]);
        let s = read_from(&d).unwrap();
        assert!(s.userspace());
        assert_eq!(s.problems(), Vec::<String>::new());
        assert_eq!(ensure_in(&d, false).unwrap(), s);
        // Older kernels: pm_type only.
        let d = dir(&[("enabled", "1"), ("pm_type", "1")]);
        assert!(read_from(&d).unwrap().problems().is_empty());
    }

    #[test]
    fn each_problem_names_the_fix() {
        let d = dir(&[
            ("enabled", "0"),
            ("path_manager", "kernel"),
            ("pm_type", "0"),
        ]);
        let p = ensure_in(&d, false).unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("sysctl -w net.mptcp.enabled=1"), "{}", p[0]);
        assert!(p[1].contains("net.mptcp.path_manager = kernel"), "{}", p[1]);
        assert!(p[1].contains("path_manager=userspace"), "{}", p[1]);
        let d = dir(&[("enabled", "1"), ("pm_type", "0")]);
        let p = ensure_in(&d, false).unwrap_err();
        assert!(p[0].contains("pm_type=1"), "{p:?}");
        let d = dir(&[]);
        let p = ensure_in(&d, true).unwrap_err();
        assert!(p[0].contains("no MPTCP"), "{p:?}");
        let d = dir(&[("enabled", "yes")]);
        assert!(ensure_in(&d, false).unwrap_err()[0].contains("not a small integer"));
    }

    #[test]
    fn set_sysctls_fixes_them() {
        let d = dir(&[("enabled", "0"), ("path_manager", "kernel")]);
        let s = ensure_in(&d, true).unwrap();
        assert_eq!(s.enabled, Some(true));
        assert_eq!(s.path_manager.as_deref(), Some("userspace"));
        let d = dir(&[("enabled", "1"), ("pm_type", "0")]);
        assert_eq!(ensure_in(&d, true).unwrap().pm_type, Some(1));
        assert_eq!(
            read_from(&d).unwrap().to_string(),
            "net.mptcp.enabled=1 path_manager=- pm_type=1"
        );
    }
}
