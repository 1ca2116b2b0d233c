//! The daemon as a process in a namespace: starts (TUN, loop-guard rule, control socket),
//! answers `shim6d ctl`, reloads on SIGHUP (and keeps its configuration when the new
//! file is invalid), forwards an application's packets to a routed peer, and on SIGTERM
//! removes everything it created.
//!
//! Root only: without `CAP_NET_ADMIN` the test prints `SKIPPED: needs CAP_NET_ADMIN`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use xfrm_sys::netns::{self, Netns};

const WAIT: Duration = Duration::from_secs(10);

/// The shim6d binary of this package.
fn shim6d_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shim6d"))
}

struct Daemon {
    child: Child,
    sock: PathBuf,
}

impl Daemon {
    fn ctl(&self, line: &str) -> (i32, String) {
        let mut args = vec!["ctl", "--unix", self.sock.to_str().unwrap()];
        args.extend(line.split_whitespace());
        let out = Command::new(shim6d_bin()).args(&args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn json(&self, line: &str) -> serde_json::Value {
        let (code, out) = self.ctl(&format!("{line} --json"));
        assert_eq!(code, 0, "{line}: {out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line}: {e}: {out}"))
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Polls `f` until it is true or the wait ends.
    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failing test must not leave the daemon running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, send_timeout: &str) {
    std::fs::write(
        dir.join("shim6d.toml"),
        format!(
            "[identity]\nparams_file = \"params.json\"\n\
             [reap]\nsend_timeout = {send_timeout}\n\
             [control]\nunix_socket = \"ctl.sock\"\n\
             [log]\nlevel = \"debug\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn daemon_lifecycle() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("daemona").unwrap();
    let b = Netns::new("daemonb").unwrap();
    netns::veth(&a, "a0", &b, "b0").unwrap();
    a.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:e1::1/64",
        "dev",
        "a0",
        "nodad",
    ])
    .unwrap();
    b.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:e1::2/64",
        "dev",
        "b0",
        "nodad",
    ])
    .unwrap();
    a.ip(&["link", "set", "a0", "up"]).unwrap();
    b.ip(&["link", "set", "b0", "up"]).unwrap();

    let dir = std::env::temp_dir().join(format!("shim6d-daemon-{}", a.name()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("params.json"), "{}").unwrap();
    write_config(&dir, "15");
    let log = std::fs::File::create(dir.join("shim6d.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", a.name()])
        .arg(shim6d_bin())
        .arg("--config")
        .arg(dir.join("shim6d.toml"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        sock: dir.join("ctl.sock"),
    };
    let log_text = || std::fs::read_to_string(dir.join("shim6d.log")).unwrap_or_default();

    // Up: the control socket answers once the loop runs (requests wait for it).
    d.until("the control socket", || d.ctl("stats").0 == 0);
    let rules = a.ip(&["-6", "rule", "show"]).unwrap();
    assert!(
        rules.contains("100:\tnot from all fwmark 0x51 lookup 51"),
        "{rules}"
    );
    let link = a.ip(&["-d", "link", "show", "shim6"]).unwrap();
    assert!(
        link.contains("mtu 1492") && link.contains("addrgenmode none"),
        "{link}"
    );

    // Commands: the shell's own answers are real, the core's say it is missing.
    let params = d.json("params");
    assert_eq!(params["reap"]["send_timeout_s"], 15.0);
    assert_eq!(params["routing"]["table"], 51);
    let locs = d.json("locators");
    assert!(
        locs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["address"] == "2001:db8:e1::1" && l["interface"] == "a0"),
        "{locs}"
    );
    let (code, out) = d.ctl("ls");
    assert_eq!(code, 1);
    assert_eq!(out, "error: not available: protocol core not running\n");
    let (code, out) = d.ctl("establish 2001:db8:e1::2");
    assert_eq!(code, 1, "{out}");
    assert!(d.json("stats")["dataplane"]["drops"].is_object());

    // A new address shows up in `locators` (address monitor).
    a.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:e2::1/64",
        "dev",
        "a0",
        "nodad",
    ])
    .unwrap();
    d.until("the new locator", || {
        d.json("locators")
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["address"] == "2001:db8:e2::1")
    });

    // `set tsend` changes the value for new contexts.
    let (code, out) = d.ctl("set tsend 4");
    assert_eq!(code, 0, "{out}");
    assert_eq!(d.json("params")["reap"]["send_timeout_s"], 4.0);

    // SIGHUP with a valid file applies it.
    write_config(&dir, "3");
    d.signal("HUP");
    d.until("the reload", || {
        d.json("params")["reap"]["send_timeout_s"] == 3.0
    });
    // SIGHUP with an invalid file keeps the running configuration and says why.
    write_config(&dir, "\"soon\"");
    d.signal("HUP");
    d.until("the refusal in the log", || {
        log_text().contains("reload refused")
    });
    assert_eq!(d.json("params")["reap"]["send_timeout_s"], 3.0);
    assert!(log_text().contains("reap.send_timeout"), "{}", log_text());

    // SIGTERM: clean stop, nothing left behind.
    let mut d = d;
    d.signal("TERM");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {}", log_text());
    let rules = a.ip(&["-6", "rule", "show"]).unwrap();
    assert!(!rules.contains("lookup 51"), "rule removed: {rules}");
    assert!(a.ip(&["link", "show", "shim6"]).is_err(), "TUN removed");
    assert!(!dir.join("ctl.sock").exists(), "unix socket removed");
    assert!(
        log_text().contains("routes, rule and TUN removed"),
        "{}",
        log_text()
    );
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}
