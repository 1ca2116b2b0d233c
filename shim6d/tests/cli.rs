//! The binary's command line: `--check-config`, `ctl` without a daemon, `--help`.

use std::process::Command;

fn shim6d(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shim6d"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_config_lists_every_problem_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("shim6d-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("bad.toml");
    std::fs::write(
        &conf,
        "[tun]\nmtu = 10\n[routing]\ntable = \"x\"\n[nope]\n[identity]\nparams_file = \"missing.json\"\n",
    )
    .unwrap();
    let out = shim6d(&["--check-config", "--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let c = conf.display();
    assert!(
        err.contains(&format!("{c}:2: tun.mtu = 10 is out of range")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{c}:4: routing.table: expected an integer")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{c}:5: unknown section [nope]")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{c}:7: identity.params_file: cannot read")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 4, "{err}");

    std::fs::write(dir.join("p.json"), "{}").unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, "[identity]\nparams_file = \"p.json\"\n").unwrap();
    let out = shim6d(&["--check-config", "-c", good.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert!(out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctl_without_a_daemon_exits_2() {
    let out = shim6d(&["ctl", "--unix", "/nonexistent/shim6d.sock", "stats"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connect"));
}

#[test]
fn help_documents_signals_and_ctl() {
    let out = shim6d(&["--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in ["SIGHUP", "SIGTERM", "--check-config", "ctl", "EXIT STATUS"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
