//! A TCP stream between the ULIDs through two daemons across an outage of **every**
//! path (all 18 unidirectional locator pairs dropped at the router), healed after
//! seconds, and finished right after the healing.
//!
//! TCP backs off during the outage (its next retransmission may come seconds after the
//! healing) while REAP explores until a pair works again (RFC 5534 §4.2). The stream
//! must keep every byte, in order. This is also the regression test of the harness
//! behind docs/bench/netns-exploration.md's "ENOTCONN after heal": `Stream::finish`
//! used to let the receiver close as soon as it saw no data for 200 ms after the stop,
//! which, with TCP still backed off, reset the connection under the sender.
//!
//! Root only (`SKIPPED: needs CAP_NET_ADMIN` otherwise).

use std::time::Duration;

use shim6_tests::daemons::{Bins, Options, Pair, Stream, until};
use xfrm_sys::netns;

#[test]
fn stream_finished_right_after_an_outage_of_every_path_keeps_every_byte() {
    if !netns::require_net_admin() {
        return;
    }
    let p = Pair::start_established(
        "outage",
        &Bins::shim6d(env!("CARGO_BIN_EXE_shim6d")),
        Options {
            send_timeout: 1.0,
            log: "info".into(),
            ..Options::default()
        },
    );
    let (ua, ub) = p.ulids();
    let stream = Stream::start(&p.bed.a, &p.bed.b, ua, ub).unwrap();
    until(
        Duration::from_secs(20),
        "stream bytes before the outage",
        || Ok(stream.received() > 50_000),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs_tail(30)));
    for a in &p.a.hba {
        for b in p.b_hba() {
            p.bed.break_addrs(*a, *b).unwrap();
            p.bed.break_addrs(*b, *a).unwrap();
        }
    }
    // Long enough for TCP to back off past several seconds (RTO 0.2 s doubling) and for
    // REAP to go through its exploration.
    std::thread::sleep(Duration::from_secs(8));
    let during = stream.received();
    p.bed.heal_all().unwrap();
    let r = stream.finish(Duration::from_secs(30));
    let report = format!("{r:?}, {during} before the healing\n{}", p.logs_tail(30));
    assert!(r.error.is_none(), "{report}");
    assert_eq!(r.sent, r.received, "{report}");
    assert!(r.received > during, "data after the healing: {report}");
    assert_eq!(
        p.a.state().unwrap().as_deref(),
        Some("ESTABLISHED"),
        "{report}"
    );
    assert_eq!(
        p.b().state().unwrap().as_deref(),
        Some("ESTABLISHED"),
        "{report}"
    );
}
