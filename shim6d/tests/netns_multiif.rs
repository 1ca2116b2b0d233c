//! The multi-interface scenario of issue 6 item 7: two shim6d processes on the
//! multi-interface topology (`shim6_tests::testbed::MultiHomed`: each host has two
//! interfaces, each to its own provider router, the providers meet in a core router), a
//! TCP stream between the ULIDs, and the provider link that carries the current pair
//! going down (`ip link set down`, not a firewall rule). The stream must survive with
//! every byte in order, and both daemons must move to a pair that avoids the downed link.
//!
//! Root only (`SKIPPED: needs CAP_NET_ADMIN` otherwise). The namespaces have unique names,
//! every wait is bounded, and `Drop` stops the daemons and deletes the namespaces also
//! when the test fails.

use std::time::{Duration, Instant};

use shim6_tests::{
    daemons::{self, Bins, CHUNK, MultiPair, Options, Stream, until},
    testbed::Direction,
};
use xfrm_sys::netns;

#[test]
fn tcp_stream_survives_provider_link_down() {
    if !netns::require_net_admin() {
        return;
    }
    let bins = Bins::shim6d(env!("CARGO_BIN_EXE_shim6d"));
    let options = Options {
        send_timeout: 2.0,
        keep: std::env::var_os("SHIM6_KEEP").is_some(),
        ..Options::default()
    };
    let p = MultiPair::start("mif", 2, &bins, options).unwrap_or_else(|e| panic!("setup: {e}"));
    p.establish()
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    let (ua, ub) = p.ulids();
    let stream = Stream::start(&p.bed.a, &p.bed.b, ua, ub)
        .unwrap_or_else(|e| panic!("stream: {e}\n{}", p.logs_tail(30)));
    until(Duration::from_secs(10), "the stream to start", || {
        Ok(stream.received() > 20 * CHUNK as u64)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    std::thread::sleep(Duration::from_millis(500));

    // The link of A's interface that carries A's current locator goes down.
    let (la, lb) = p.current_pair().unwrap();
    let ia =
        p.a.hba
            .iter()
            .position(|a| *a == la)
            .unwrap_or_else(|| panic!("current local {la} is not one of A's {:?}", p.a.hba));
    let break_us = daemons::unix_us();
    let mark = stream.received();
    p.bed.link_down(Direction::AtoB, ia).unwrap();
    let t_down = Instant::now();
    until(Duration::from_secs(30), "the stream to flow again", || {
        Ok(t_down.elapsed() > Duration::from_millis(300)
            && stream.received() > mark + 20 * CHUNK as u64)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e} (link a{} down, pair {la} -> {lb})\n{}",
            ia + 1,
            p.logs_tail(30)
        )
    });
    let result = stream.finish(Duration::from_secs(20));
    let ctx = format!(
        "link a{} down, was {la} -> {lb}; {result:?}\n{}",
        ia + 1,
        p.logs_tail(30)
    );
    // Every byte, in order (checked byte by byte by the receiver), and bytes after the cut.
    assert!(result.error.is_none(), "{ctx}");
    assert_eq!(result.sent, result.received, "{ctx}");
    assert!(result.received > mark, "{ctx}");

    // Both daemons moved to pairs that do not use the downed link's locator.
    let (na, nb) = p.current_pair().unwrap();
    assert_ne!(
        na, la,
        "A still sends from the downed link's locator: {ctx}"
    );
    assert!(p.a.hba.contains(&na) && p.b.hba.contains(&nb), "{ctx}");
    let (bl, br) = daemons::current_pair_of(&p.b).unwrap();
    assert_ne!(
        br, la,
        "B still sends to the downed link's locator ({bl} -> {br}): {ctx}"
    );
    // REAP found it: a failure and a path change after the link went down, on A.
    let h = daemons::history(&p.a).unwrap();
    let after = |kind: &str| h.iter().any(|e| e.0 >= break_us && e.1 == kind);
    assert!(
        after("path_failed") && after("path_changed"),
        "{h:?}\n{ctx}"
    );
    assert_eq!(p.a.state().unwrap().as_deref(), Some("ESTABLISHED"));
    assert_eq!(p.b.state().unwrap().as_deref(), Some("ESTABLISHED"));
}
