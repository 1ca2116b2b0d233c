//! The netns test kit itself: names, cleanup on drop and on panic, veth between
//! namespaces, commands and threads inside a namespace.

use std::{path::Path, sync::Mutex};

use xfrm_sys::{
    Handle,
    netns::{self, Netns, veth},
};

#[test]
fn namespace_is_deleted_on_drop_and_on_panic() {
    if !netns::require_net_admin() {
        return;
    }
    let ns = Netns::new("drop").unwrap();
    let name = ns.name().to_owned();
    assert!(name.starts_with(netns::TEST_PREFIX), "{name}");
    assert!(
        name.contains(&format!("-{}-", std::process::id())),
        "{name}"
    );
    assert!(netns::path(&name).exists());
    drop(ns);
    assert!(!netns::path(&name).exists());

    static NAME: Mutex<String> = Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let ns = Netns::new("panic").unwrap();
        *NAME.lock().unwrap() = ns.name().to_owned();
        panic!("test failure inside a namespace");
    });
    assert!(result.is_err());
    let name = NAME.lock().unwrap().clone();
    assert!(!name.is_empty());
    assert!(!netns::path(&name).exists(), "{name} survived the panic");
}

#[test]
fn names_are_unique_within_a_process() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("uniq").unwrap();
    let b = Netns::new("uniq").unwrap();
    assert_ne!(a.name(), b.name());
}

#[test]
fn veth_joins_two_namespaces_and_commands_run_inside() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("vetha").unwrap();
    let b = Netns::new("vethb").unwrap();
    veth(&a, "ka", &b, "kb").unwrap();
    assert!(a.ip(&["link", "show", "ka"]).unwrap().contains("ka@"));
    assert!(b.ip(&["link", "show", "kb"]).unwrap().contains("kb@"));
    let err = a.ip(&["link", "show", "kb"]).unwrap_err();
    assert!(err.to_string().contains("link show kb"), "{err}");
    assert!(veth(&a, "way-too-long-name", &b, "x").is_err());

    // `ip netns exec` runs a program inside: it sees a's links only.
    let out = a.exec("ip", &["-o", "link"]).unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ka@") && !text.contains("kb@"), "{text}");

    // Loopback is up in a fresh namespace from the kit.
    assert!(a.ip(&["link", "show", "lo"]).unwrap().contains(",UP"));
}

#[test]
fn a_thread_inside_a_namespace_opens_its_sockets_there() {
    if !netns::require_net_admin() {
        return;
    }
    let ns = Netns::new("thread").unwrap();
    veth(&ns, "ta", &ns, "tb").unwrap();
    let names = ns
        .run(|| async {
            // Handle::new opens its socket in the thread's (the namespace's) netns.
            let h = Handle::new().unwrap();
            assert_eq!(h.netns(), None);
            let mut names: Vec<_> = h
                .links()
                .await
                .unwrap()
                .into_iter()
                .map(|l| l.name)
                .collect();
            names.sort();
            names
        })
        .unwrap();
    assert_eq!(names, ["lo", "ta", "tb"]);

    // A panic inside is re-raised in the joiner.
    let panicked = std::panic::catch_unwind(|| {
        let _ = netns::run(ns.name(), || async { panic!("inside") });
    });
    assert!(panicked.is_err());
}

#[tokio::test]
async fn spawned_namespace_threads_can_be_awaited() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("waita").unwrap();
    let b = Netns::new("waitb").unwrap();
    veth(&a, "wa", &b, "wb").unwrap();
    let count = |n: &Netns| {
        n.spawn(|| async {
            let h = Handle::new().unwrap();
            h.links().await.unwrap().len()
        })
        .unwrap()
    };
    let (ta, tb) = (count(&a), count(&b));
    assert_eq!(ta.wait().await.unwrap(), 2);
    assert_eq!(tb.wait().await.unwrap(), 2);
    assert!(!Path::new(&netns::path("s6t-never-made-0-0")).exists());
}
