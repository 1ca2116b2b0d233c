//! The MPTCP path manager inside two real shim6d processes (issue 8, wired): the
//! daemons run on the LinShim6 testbed with `[mptcp] enabled` (fullmesh), a context is
//! established between their ULIDs, and an MPTCP connection between the ULIDs gets
//! subflows on the peer's verified locators, fed by the Endpoint's events (no test
//! input to the driver). `mptcp --json` on the control interface shows them.
//!
//! Root only (`SKIPPED: needs CAP_NET_ADMIN` otherwise); unique namespaces, bounded
//! waits, cleanup on drop (the harness `shim6_tests::daemons`); no timing assertions.

use std::{
    io::{Read, Write},
    net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener},
    time::Duration,
};

use shim6_tests::daemons::{Bins, Options, Pair, mptcp_connect, mptcp_socket, until};
use xfrm_sys::netns;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn mptcp_connection_between_ulids_gets_subflows_on_verified_locators() {
    if !netns::require_net_admin() {
        return;
    }
    let bins = Bins::shim6d(env!("CARGO_BIN_EXE_shim6d"));
    let p = Pair::start(
        "mpd",
        &bins,
        Options {
            mptcp: true,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("setup: {e}"));
    let logs = || format!("--- A ---\n{}\n--- B ---\n{}", p.a.log(), p.b().log());
    p.establish().unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let (ua, ub) = p.ulids();
    // B: an MPTCP listener on the wildcard (joins arrive on its other locators).
    let listener = p
        .bed
        .b
        .run(|| async {
            let s = mptcp_socket(WAIT);
            s.set_reuse_address(true).unwrap();
            s.bind(&"[::]:8080".parse::<SocketAddr>().unwrap().into())
                .unwrap();
            s.listen(16).unwrap();
            TcpListener::from(s)
        })
        .unwrap();
    // A: the application's connection between the ULIDs.
    let mut client = p
        .bed
        .a
        .run(move || async move { mptcp_connect(ua, SocketAddrV6::new(ub, 8080, 0, 0), WAIT) })
        .unwrap();
    let (mut server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");

    // A's path manager adds subflows towards B's verified locators (B's HBA set).
    let b_locators: Vec<Ipv6Addr> = p.b().hba.clone();
    let mut last = serde_json::Value::Null;
    let got = until(WAIT, "subflows on A's MPTCP connection", || {
        last = p.a.json("mptcp")?;
        let up = last["connections"]
            .as_array()
            .and_then(|c| c.first())
            .and_then(|c| c["subflows"].as_array())
            .map_or(0, |s| s.iter().filter(|s| s["state"] == "up").count());
        Ok(up >= 2)
    });
    got.unwrap_or_else(|e| panic!("{e}\nmptcp: {last}\n{}", logs()));
    let conn = &last["connections"][0];
    assert_eq!(conn["peer"], ub.to_string(), "{last}");
    for s in conn["subflows"].as_array().unwrap() {
        let remote: SocketAddr = s["remote"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("subflow without remote: {s}"));
        let std::net::IpAddr::V6(remote) = remote.ip() else {
            panic!("IPv4 subflow: {s}");
        };
        assert!(
            b_locators.contains(&remote),
            "unverified remote {remote}: {last}"
        );
    }
    // The connection still carries data both ways.
    let data = vec![0x5au8; 256 * 1024];
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; 256 * 1024];
        server.read_exact(&mut got).map(|()| got)
    });
    client.write_all(&data).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), data);
    // The text form of the command works too.
    let (code, text) = p.a.ctl("mptcp").unwrap();
    assert_eq!(code, 0, "{text}");
}
