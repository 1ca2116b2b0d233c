//! Per-state fixture tests: one test per cell of the RFC 5534 §6 table, named
//! `test_<state>_<input>_<outcome>`, plus the timers, pacing, reports, hints and
//! give-up. Time is advanced by hand from a fixed epoch.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::io::{Event, FailureCause, Hint, ProbeIn, ProbeOut, Transmit};
use crate::locator::{Locator, Pair};

fn a(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xa, i, 0, 0, 0, 1)
}
fn b(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xb, i, 0, 0, 0, 1)
}
fn pair(i: u16, j: u16) -> Pair {
    Pair::new(a(i), b(j))
}
fn locators(f: fn(u16) -> Ipv6Addr) -> Vec<Locator> {
    (1..=3).map(|i| Locator::new(f(i))).collect()
}

const SECOND: Duration = Duration::from_secs(1);

/// A REAP instance for host A (locators A1..A3, peer B1..B3, current (A1, B1)) and a
/// hand-driven clock.
struct Fx {
    r: Reap,
    now: Instant,
    peer_nonce: u32,
}

impl Fx {
    fn with(config: Config) -> Self {
        let now = crate::testutil::epoch();
        let r = Reap::new(
            config,
            [42; 32],
            &locators(a),
            &locators(b),
            pair(1, 1),
            now,
        )
        .unwrap();
        Self {
            r,
            now,
            peer_nonce: 0x1000,
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Jumps to the next deadline and handles it.
    fn fire(&mut self) -> Instant {
        let t = self.r.poll_timeout().expect("a timer is armed");
        self.now = self.now.max(t);
        self.r.handle_timeout(self.now);
        t
    }

    fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.r.poll_transmit()).collect()
    }

    fn probes(&mut self) -> Vec<ProbeOut> {
        self.transmits()
            .into_iter()
            .map(|t| match t {
                Transmit::Probe(p) => p,
                other => panic!("expected only probes, got {other:?}"),
            })
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.r.poll_event()).collect()
    }

    /// The peer's probe arriving on `on` (our view); returns the record describing it.
    fn rx_probe(&mut self, state: ReapState, on: Pair, received: &[ProbeRecord]) -> ProbeRecord {
        self.peer_nonce += 1;
        let rec = ProbeRecord {
            src: on.remote,
            dst: on.local,
            nonce: self.peer_nonce,
            data: 7,
        };
        let sent = [rec];
        self.r.handle_probe(
            self.now,
            on,
            ProbeIn {
                state,
                sent: &sent,
                received,
            },
        );
        rec
    }

    fn running(&self, t: Timer) -> bool {
        self.r.timer(t).is_some()
    }
}

// ------------------------------------------------------------------ fixtures per state

/// Operational and idle: no timer (RFC 5534 App. A example 1).
fn reap_operational() -> Fx {
    Fx::with(Config::default())
}

/// Exploring after our Send Timer expired; the first probe has been drained.
fn reap_exploring_with(config: Config) -> (Fx, ProbeOut) {
    let mut f = Fx::with(config);
    f.r.handle_payload_sent(f.now);
    f.fire();
    assert_eq!(f.r.state(), ReapState::Exploring);
    let mut p = f.probes();
    assert_eq!(p.len(), 1);
    f.events();
    (f, p.remove(0))
}

fn reap_exploring() -> (Fx, ProbeOut) {
    reap_exploring_with(Config::default())
}

/// InboundOk: exploring, then the peer's payload arrived on (B2 → A2).
fn reap_inbound_ok() -> (Fx, ProbeOut, ProbeOut) {
    let (mut f, first) = reap_exploring();
    f.advance(Duration::from_millis(100));
    f.r.handle_payload_received(f.now, Some(pair(2, 2)));
    assert_eq!(f.r.state(), ReapState::InboundOk);
    let mut p = f.probes();
    assert_eq!(p.len(), 1);
    f.events();
    (f, first, p.remove(0))
}

// ------------------------------------------------------------------ Operational

#[test]
fn test_operational_payload_received_stops_send_starts_keepalive() {
    let mut f = reap_operational();
    f.r.handle_payload_sent(f.now);
    assert!(f.running(Timer::Send));
    f.advance(SECOND);
    f.r.handle_payload_received(f.now, Some(pair(1, 1)));
    assert!(!f.running(Timer::Send), "§6.1 STOP Send");
    assert_eq!(
        f.r.timer(Timer::Keepalive),
        Some(f.now + 15 * SECOND),
        "§6.1 START Keepalive"
    );
    let first = f.r.timer(Timer::KeepaliveInterval).unwrap() - f.now;
    assert!(
        first >= 5 * SECOND && first <= Duration::from_millis(7500),
        "{first:?}"
    );
    // START only if not running: a second payload keeps the deadline.
    f.advance(SECOND);
    let before = f.r.timer(Timer::Keepalive);
    f.r.handle_payload_received(f.now, None);
    assert_eq!(f.r.timer(Timer::Keepalive), before);
    assert!(f.transmits().is_empty());
    assert_eq!(f.r.state(), ReapState::Operational);
}

#[test]
fn test_operational_payload_sent_starts_send_stops_keepalive() {
    let mut f = reap_operational();
    f.r.handle_payload_received(f.now, None);
    assert!(f.running(Timer::Keepalive));
    f.advance(SECOND);
    f.r.handle_payload_sent(f.now);
    assert!(!f.running(Timer::Keepalive), "§6.2 STOP Keepalive");
    assert!(!f.running(Timer::KeepaliveInterval));
    let d = f.r.timer(Timer::Send).unwrap() - f.now;
    assert!(
        d >= Duration::from_millis(13_500) && d <= 15 * SECOND,
        "randomised: {d:?}"
    );
    // START if not running: sending again keeps the deadline.
    let before = f.r.timer(Timer::Send);
    f.advance(SECOND);
    f.r.handle_payload_sent(f.now);
    assert_eq!(f.r.timer(Timer::Send), before);
    assert!(f.transmits().is_empty());
}

#[test]
fn test_operational_keepalive_timeout_sends_last_keepalive() {
    let mut f = reap_operational();
    f.r.handle_payload_received(f.now, None);
    let start = f.now;
    let mut keepalives = Vec::new();
    while f.running(Timer::Keepalive) {
        let t = f.fire();
        for tx in f.transmits() {
            assert_eq!(tx, Transmit::Keepalive { pair: pair(1, 1) }, "current pair");
            keepalives.push(t - start);
        }
    }
    // Intervals of 5–7.5 s inside 15 s give two interval keepalives, then the last one
    // exactly at the Keepalive Timeout (§6.3).
    assert!(
        keepalives.len() >= 2 && keepalives.len() <= 3,
        "{keepalives:?}"
    );
    assert_eq!(*keepalives.last().unwrap(), 15 * SECOND);
    assert!(keepalives[0] >= 5 * SECOND && keepalives[0] <= Duration::from_millis(7500));
    assert!(f.r.poll_timeout().is_none(), "nothing left running");
    assert_eq!(f.r.stats().keepalives_sent, keepalives.len() as u64);
}

#[test]
fn test_operational_send_timeout_probes_and_explores() {
    let mut f = reap_operational();
    f.r.handle_payload_sent(f.now);
    f.fire();
    assert_eq!(f.r.state(), ReapState::Exploring, "§6.4 GOTO Exploring");
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].state,
        ReapState::Exploring,
        "§6.4 SEND Probe Exploring"
    );
    assert_eq!(
        p[0].pair.shared_locators(&pair(1, 1)),
        0,
        "orthogonal first"
    );
    assert!(
        !f.running(Timer::Send) && !f.running(Timer::Keepalive),
        "§6 no timer in Exploring"
    );
    assert!(f.running(Timer::Probe));
    assert_eq!(
        f.events(),
        vec![
            Event::PathFailed {
                pair: pair(1, 1),
                cause: FailureCause::SendTimeout
            },
            Event::StateChanged {
                from: ReapState::Operational,
                to: ReapState::Exploring
            }
        ]
    );
}

#[test]
fn test_operational_probe_timer_never_runs() {
    // §6.5 Operational: "-". The probe timer stops when an exploration ends.
    let (mut f, first) = reap_exploring();
    assert!(f.running(Timer::Probe));
    f.rx_probe(ReapState::InboundOk, pair(2, 2), &[*first.this_probe()]);
    assert_eq!(f.r.state(), ReapState::Operational);
    assert!(!f.running(Timer::Probe));
    f.transmits();
    // Nothing but the Send timer (restarted by §6.8) remains; firing it explores again,
    // which is the Send Timer's doing, not a retransmission.
    assert!(f.running(Timer::Send));
}

#[test]
fn test_operational_keepalive_received_stops_send() {
    let mut f = reap_operational();
    f.r.handle_payload_sent(f.now);
    f.advance(SECOND);
    f.r.handle_keepalive(f.now, pair(1, 1));
    assert!(!f.running(Timer::Send), "§6.6 STOP Send");
    assert!(
        !f.running(Timer::Keepalive),
        "a Keepalive is not payload: no Keepalive Timer"
    );
    assert!(f.transmits().is_empty());
    assert_eq!(f.r.state(), ReapState::Operational);
    assert_eq!(f.r.stats().keepalives_received, 1);
}

#[test]
fn test_operational_probe_exploring_goes_inbound_ok() {
    let mut f = reap_operational();
    f.r.handle_payload_received(f.now, None);
    assert!(f.running(Timer::Keepalive));
    let rec = f.rx_probe(ReapState::Exploring, pair(3, 2), &[]);
    assert_eq!(f.r.state(), ReapState::InboundOk, "§6.7 GOTO InboundOk");
    assert!(!f.running(Timer::Keepalive), "§6.7 STOP Keepalive");
    assert!(f.running(Timer::Send), "§6.7 RESTART Send");
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].state,
        ReapState::InboundOk,
        "§6.7 SEND Probe InboundOk"
    );
    assert_eq!(
        p[0].pair,
        pair(3, 2),
        "answer on the reverse of the pair we heard"
    );
    assert_eq!(
        p[0].received,
        vec![rec],
        "§5.2 InboundOk MUST report a received probe"
    );
    assert!(f.events().contains(&Event::PathFailed {
        pair: pair(1, 1),
        cause: FailureCause::PeerExploring
    }));
}

#[test]
fn test_operational_probe_inbound_ok_confirms() {
    let mut f = reap_operational();
    f.r.handle_payload_received(f.now, None);
    f.rx_probe(ReapState::InboundOk, pair(1, 1), &[]);
    assert_eq!(f.r.state(), ReapState::Operational);
    assert!(!f.running(Timer::Keepalive), "§6.8 STOP Keepalive");
    assert!(f.running(Timer::Send), "§6.8 RESTART Send");
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].state,
        ReapState::Operational,
        "§6.8 SEND Probe Operational"
    );
    assert_eq!(
        p[0].pair,
        pair(1, 1),
        "no reports: the current pair is unchanged"
    );
    // A second one right away is a same-state repeat: rate limited.
    f.rx_probe(ReapState::InboundOk, pair(1, 1), &[]);
    assert!(f.transmits().is_empty());
    assert_eq!(f.r.stats().reactions_suppressed, 1);
    f.advance(SECOND);
    f.rx_probe(ReapState::InboundOk, pair(1, 1), &[]);
    assert_eq!(f.probes().len(), 1, "answered again after the gap");
}

#[test]
fn test_operational_probe_operational_stops_send_sends_nothing() {
    let mut f = reap_operational();
    f.r.handle_payload_sent(f.now);
    f.rx_probe(ReapState::Operational, pair(1, 1), &[]);
    assert!(!f.running(Timer::Send), "§6.9 STOP Send");
    assert!(f.running(Timer::Keepalive), "§6.9 START Keepalive");
    assert!(
        f.transmits().is_empty(),
        "digest §7 item 14: no answer, no ping-pong"
    );
    assert_eq!(f.r.state(), ReapState::Operational);
}

// ------------------------------------------------------------------ Exploring

#[test]
fn test_exploring_payload_received_goes_inbound_ok() {
    let (mut f, first) = reap_exploring();
    f.advance(Duration::from_millis(300));
    f.r.handle_payload_received(f.now, Some(pair(3, 3)));
    assert_eq!(f.r.state(), ReapState::InboundOk, "§6.1 GOTO InboundOk");
    assert!(f.running(Timer::Send), "§6.1 START Send");
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].state,
        ReapState::InboundOk,
        "§6.1 SEND Probe InboundOk"
    );
    if pair(3, 3) != first.pair {
        assert_eq!(
            p[0].pair,
            pair(3, 3),
            "reverse of the pair the payload came on"
        );
    }
    // Pacing restarts: the next retransmission is an initial-rate one.
    let gap = f.r.timer(Timer::Probe).unwrap() - f.now;
    assert!(gap >= Duration::from_millis(450) && gap <= Duration::from_millis(550));
}

#[test]
fn test_exploring_payload_sent_changes_nothing() {
    let (mut f, _) = reap_exploring();
    let before = (f.r.timer(Timer::Send), f.r.timer(Timer::Probe));
    f.r.handle_payload_sent(f.now);
    assert_eq!(
        (f.r.timer(Timer::Send), f.r.timer(Timer::Probe)),
        before,
        "§6.2 Exploring: -"
    );
    assert_eq!(f.r.state(), ReapState::Exploring);
    assert_eq!(
        f.r.current_pair(),
        pair(1, 1),
        "payload stays on the old pair (§6.9)"
    );
    assert!(f.transmits().is_empty());
}

#[test]
fn test_exploring_keepalive_timer_never_runs() {
    // §6.3 Exploring: "-": entering Exploring stopped the Keepalive Timer.
    let mut f = reap_operational();
    f.r.handle_payload_received(f.now, None);
    assert!(f.running(Timer::Keepalive));
    f.r.handle_hint(f.now, Hint::LocalAddressDown(a(1)));
    assert_eq!(f.r.state(), ReapState::Exploring);
    assert!(!f.running(Timer::Keepalive) && !f.running(Timer::KeepaliveInterval));
}

#[test]
fn test_exploring_send_timer_never_runs() {
    // §6.4 Exploring: "-": no Send Timer in Exploring, even when payload is sent.
    let (mut f, _) = reap_exploring();
    assert!(!f.running(Timer::Send));
    f.r.handle_payload_sent(f.now);
    assert!(!f.running(Timer::Send));
}

#[test]
fn test_exploring_probe_timer_probes_next_pair() {
    let (mut f, first) = reap_exploring();
    let mut pairs = vec![first.pair];
    let mut times = vec![f.now];
    for _ in 0..8 {
        let t = f.fire();
        let p = f.probes();
        assert_eq!(p.len(), 1, "§6.5 SEND Probe Exploring");
        assert_eq!(p[0].state, ReapState::Exploring);
        pairs.push(p[0].pair);
        times.push(t);
    }
    // Nine distinct pairs: a full round, orthogonal first, the failed pair last.
    let mut distinct = pairs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 9, "{pairs:?}");
    assert!(
        pairs[..4]
            .iter()
            .all(|p| p.shared_locators(&pair(1, 1)) == 0)
    );
    assert_eq!(pairs[8], pair(1, 1));
    // Pacing (§4.3): 0.5 s ×3 between the first four, then 1, 2, 4, 8, 16 s, ±10 %.
    let expect = [0.5, 0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
    for (k, w) in times.windows(2).enumerate() {
        let gap = (w[1] - w[0]).as_secs_f64();
        assert!(
            (gap - expect[k]).abs() <= expect[k] * 0.1 + 1e-9,
            "gap {k}: {gap}"
        );
    }
    // Later probes carry earlier unreported ones (§6.1), this one first.
    let p = {
        f.fire();
        f.probes().remove(0)
    };
    assert_eq!(p.sent.len(), 8);
    assert_eq!(p.sent[0].src, p.pair.local);
    assert_eq!(p.sent[0].dst, p.pair.remote);
}

#[test]
fn test_exploring_keepalive_received_goes_inbound_ok() {
    let (mut f, _) = reap_exploring();
    f.r.handle_keepalive(f.now, pair(2, 3));
    assert_eq!(f.r.state(), ReapState::InboundOk, "§6.6 GOTO InboundOk");
    assert!(f.running(Timer::Send), "§6.6 START Send");
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].state,
        ReapState::InboundOk,
        "§6.6 SEND Probe InboundOk"
    );
}

#[test]
fn test_exploring_probe_exploring_goes_inbound_ok() {
    let (mut f, _) = reap_exploring();
    let rec = f.rx_probe(ReapState::Exploring, pair(2, 3), &[]);
    assert_eq!(f.r.state(), ReapState::InboundOk, "§6.7 GOTO InboundOk");
    assert!(f.running(Timer::Send), "§6.7 START Send");
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].state, ReapState::InboundOk);
    assert_eq!(p[0].received, vec![rec]);
}

#[test]
fn test_exploring_probe_inbound_ok_learns_pair_and_confirms() {
    let (mut f, first) = reap_exploring();
    f.advance(Duration::from_millis(20));
    let theirs = f.rx_probe(ReapState::InboundOk, pair(3, 3), &[*first.this_probe()]);
    assert_eq!(f.r.state(), ReapState::Operational, "§6.8 GOTO Operational");
    assert_eq!(
        f.r.current_pair(),
        first.pair,
        "§6.8 new pair from the reports"
    );
    assert!(f.running(Timer::Send), "§6.8 RESTART Send");
    assert!(!f.running(Timer::Probe));
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].state,
        ReapState::Operational,
        "§6.8 SEND Probe Operational"
    );
    assert_eq!(p[0].pair, first.pair, "sent on the proven pair");
    assert_eq!(p[0].received, vec![theirs]);
    let ev = f.events();
    assert!(ev.contains(&Event::PathUsable { pair: first.pair }));
    assert!(ev.contains(&Event::PathChanged {
        from: pair(1, 1),
        to: first.pair
    }));
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::Recovered { took, .. } if *took == Duration::from_millis(20))
        )
    );
}

#[test]
fn test_exploring_probe_operational_goes_operational() {
    let (mut f, first) = reap_exploring();
    f.rx_probe(ReapState::Operational, pair(2, 2), &[*first.this_probe()]);
    assert_eq!(f.r.state(), ReapState::Operational, "§6.9 GOTO Operational");
    assert!(!f.running(Timer::Send), "§6.9 STOP Send");
    assert!(f.running(Timer::Keepalive), "§6.9 START Keepalive");
    assert!(f.transmits().is_empty());
    assert_eq!(
        f.r.current_pair(),
        first.pair,
        "our extension: adopt the reported pair"
    );
}

// ------------------------------------------------------------------ InboundOk

#[test]
fn test_inbound_ok_payload_received_stops_send() {
    let (mut f, _, _) = reap_inbound_ok();
    assert!(f.running(Timer::Send));
    f.r.handle_payload_received(f.now, None);
    assert!(!f.running(Timer::Send), "§6.1 InboundOk STOP Send");
    assert_eq!(f.r.state(), ReapState::InboundOk);
    assert!(f.transmits().is_empty());
}

#[test]
fn test_inbound_ok_payload_sent_starts_send() {
    let (mut f, _, _) = reap_inbound_ok();
    f.r.handle_payload_received(f.now, None);
    assert!(!f.running(Timer::Send));
    f.r.handle_payload_sent(f.now);
    assert!(f.running(Timer::Send), "§6.2 InboundOk START Send");
    let before = f.r.timer(Timer::Send);
    f.advance(SECOND);
    f.r.handle_payload_sent(f.now);
    assert_eq!(f.r.timer(Timer::Send), before, "only if not running");
}

#[test]
fn test_inbound_ok_keepalive_timer_never_runs() {
    // §6.3 InboundOk: "-".
    let (mut f, _, _) = reap_inbound_ok();
    f.r.handle_payload_received(f.now, None);
    assert!(
        !f.running(Timer::Keepalive),
        "payload in InboundOk starts no Keepalive Timer"
    );
}

#[test]
fn test_inbound_ok_send_timeout_goes_exploring() {
    let (mut f, _, _) = reap_inbound_ok();
    // Let retransmissions run until the Send Timer fires.
    loop {
        let send = f.r.timer(Timer::Send).unwrap();
        let probe = f.r.timer(Timer::Probe).unwrap();
        f.fire();
        let p = f.probes();
        if send <= probe {
            assert_eq!(f.r.state(), ReapState::Exploring, "§6.4 GOTO Exploring");
            assert_eq!(p.len(), 1);
            assert_eq!(
                p[0].state,
                ReapState::Exploring,
                "§6.4 SEND Probe Exploring"
            );
            assert!(
                p[0].received.is_empty(),
                "§5.2 reports restart on entering Exploring"
            );
            break;
        }
        assert_eq!(p[0].state, ReapState::InboundOk);
    }
    assert!(!f.running(Timer::Send));
}

#[test]
fn test_inbound_ok_probe_timer_probes_and_starts_send() {
    let (mut f, _, _) = reap_inbound_ok();
    f.r.handle_payload_received(f.now, None); // stops Send
    assert!(!f.running(Timer::Send));
    f.fire();
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].state,
        ReapState::InboundOk,
        "§6.5 SEND Probe InboundOk"
    );
    assert!(f.running(Timer::Send), "§6.5 START Send");
}

#[test]
fn test_inbound_ok_keepalive_received_stops_send() {
    let (mut f, _, _) = reap_inbound_ok();
    f.r.handle_keepalive(f.now, pair(1, 1));
    assert!(!f.running(Timer::Send), "§6.6 InboundOk STOP Send");
    assert_eq!(f.r.state(), ReapState::InboundOk);
    assert!(f.transmits().is_empty());
}

#[test]
fn test_inbound_ok_probe_exploring_answers_and_restarts_send() {
    let (mut f, _, _) = reap_inbound_ok();
    f.advance(SECOND);
    let before = f.r.timer(Timer::Send).unwrap();
    let rec = f.rx_probe(ReapState::Exploring, pair(3, 1), &[]);
    assert_eq!(f.r.state(), ReapState::InboundOk);
    let p = f.probes();
    assert_eq!(p.len(), 1, "§6.7 SEND Probe InboundOk");
    assert_eq!(p[0].state, ReapState::InboundOk);
    assert!(p[0].received.contains(&rec));
    assert_ne!(f.r.timer(Timer::Send).unwrap(), before, "§6.7 RESTART Send");
    // A second one within the gap is suppressed, the Send Timer still restarts.
    f.advance(Duration::from_millis(50));
    f.rx_probe(ReapState::Exploring, pair(3, 2), &[]);
    assert!(f.transmits().is_empty());
    assert_eq!(f.r.stats().reactions_suppressed, 1);
}

#[test]
fn test_inbound_ok_probe_inbound_ok_confirms() {
    let (mut f, first, second) = reap_inbound_ok();
    f.rx_probe(
        ReapState::InboundOk,
        pair(2, 2),
        &[*second.this_probe(), *first.this_probe()],
    );
    assert_eq!(f.r.state(), ReapState::Operational, "§6.8 GOTO Operational");
    assert_eq!(f.r.current_pair(), second.pair, "first-listed report wins");
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].state, ReapState::Operational);
    assert_eq!(p[0].pair, second.pair);
}

#[test]
fn test_inbound_ok_probe_operational_goes_operational() {
    let (mut f, _, second) = reap_inbound_ok();
    f.rx_probe(ReapState::Operational, pair(2, 2), &[*second.this_probe()]);
    assert_eq!(f.r.state(), ReapState::Operational, "§6.9 GOTO Operational");
    assert!(!f.running(Timer::Send), "§6.9 STOP Send");
    assert!(f.running(Timer::Keepalive), "§6.9 START Keepalive");
    assert!(!f.running(Timer::Probe));
    assert_eq!(f.r.current_pair(), second.pair);
    assert!(f.transmits().is_empty());
}

// ------------------------------------------------------------------ reports

#[test]
fn test_exploring_forged_report_is_ignored() {
    let (mut f, first) = reap_exploring();
    let mut forged = *first.this_probe();
    forged.nonce ^= 1;
    f.rx_probe(ReapState::InboundOk, pair(3, 3), &[forged]);
    // §6.8 still ends the exploration, but nothing proves another pair: no change.
    assert_eq!(f.r.current_pair(), pair(1, 1));
    assert_eq!(f.r.stats().unmatched_reports, 1);
    assert!(
        !f.events()
            .iter()
            .any(|e| matches!(e, Event::PathUsable { .. }))
    );
}

#[test]
fn test_exploring_report_of_current_pair_keeps_it() {
    let (mut f, first) = reap_exploring();
    // Walk to the last probe of the round, which is the failed current pair.
    let mut current_probe = None;
    for _ in 0..8 {
        f.fire();
        let p = f.probes().remove(0);
        if p.pair == pair(1, 1) {
            current_probe = Some(p);
        }
    }
    let cur = current_probe.expect("the current pair is probed last");
    f.rx_probe(
        ReapState::InboundOk,
        pair(2, 2),
        &[*first.this_probe(), *cur.this_probe()],
    );
    assert_eq!(f.r.current_pair(), pair(1, 1), "no needless change");
    assert_eq!(f.r.stats().path_changes, 0);
}

#[test]
fn test_operational_stale_report_proves_nothing() {
    // Reports of probes sent before the latest exploration began are stale.
    let (mut f, first) = reap_exploring();
    f.rx_probe(ReapState::Operational, pair(2, 2), &[]);
    assert_eq!(f.r.state(), ReapState::Operational);
    f.advance(60 * SECOND);
    f.r.handle_payload_sent(f.now);
    f.fire(); // a new exploration
    f.probes();
    f.rx_probe(ReapState::InboundOk, pair(2, 2), &[*first.this_probe()]);
    assert_eq!(f.r.current_pair(), pair(1, 1));
    assert_eq!(f.r.stats().unmatched_reports, 1);
}

#[test]
fn test_operational_late_exploring_probe_is_stale() {
    // The peer's slow burst member arrives after the peer already moved on.
    let (mut f, first) = reap_exploring();
    let old = ProbeRecord {
        src: b(3),
        dst: a(2),
        nonce: 0xdead,
        data: 1,
    };
    let newer = ProbeRecord {
        src: b(2),
        dst: a(2),
        nonce: 0xbeef,
        data: 2,
    };
    let first_rec = *first.this_probe();
    f.r.handle_probe(
        f.now,
        pair(2, 2),
        ProbeIn {
            state: ReapState::InboundOk,
            sent: &[newer, old],
            received: &[first_rec],
        },
    );
    assert_eq!(f.r.state(), ReapState::Operational);
    f.transmits();
    f.r.handle_probe(
        f.now + Duration::from_millis(30),
        pair(2, 3),
        ProbeIn {
            state: ReapState::Exploring,
            sent: &[old],
            received: &[],
        },
    );
    assert_eq!(f.r.state(), ReapState::Operational, "no new exploration");
    assert!(f.transmits().is_empty());
    assert_eq!(f.r.stats().stale_probes, 1);
}

#[test]
fn test_exploring_malformed_probe_is_ignored() {
    let (mut f, _) = reap_exploring();
    f.r.handle_probe(
        f.now,
        pair(2, 2),
        ProbeIn {
            state: ReapState::InboundOk,
            sent: &[],
            received: &[],
        },
    );
    assert_eq!(f.r.state(), ReapState::Exploring);
    assert_eq!(f.r.stats().malformed_probes, 1);
}

// ------------------------------------------------------------------ burst, give-up

#[test]
fn test_operational_send_timeout_with_burst_sends_distinct_probes() {
    let mut f = Fx::with(Config {
        burst: 4,
        ..Config::default()
    });
    f.r.handle_payload_sent(f.now);
    f.fire();
    let all = f.probes();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|p| p.state == ReapState::Exploring));
    let mut pairs: Vec<Pair> = all.iter().map(|p| p.pair).collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 4);
    assert!(pairs.iter().all(|p| p.shared_locators(&pair(1, 1)) == 0));
    let gap = f.r.timer(Timer::Probe).unwrap() - f.now;
    assert!(gap <= Duration::from_millis(550), "then the normal pacing");
}

#[test]
fn test_exploring_gives_up_at_cap_and_resumes_on_contact() {
    let (mut f, _) = reap_exploring();
    let start = f.now;
    let mut given_up_at = None;
    for _ in 0..40 {
        if f.r.poll_timeout().is_none() {
            break;
        }
        f.fire();
        f.transmits();
        if f.events().contains(&Event::PeerUnreachable) {
            given_up_at = Some(f.now - start);
        }
    }
    let t = given_up_at.expect("gives up");
    // Cap (60 s gaps) reached after ~64.5 s; then at least 300 s and one probe per
    // candidate (9) at the cap: the 10th cap interval ends at ~664.5 s (±10 % jitter).
    assert!(t >= 600 * SECOND && t <= 730 * SECOND, "{t:?}");
    assert!(f.r.given_up());
    assert!(f.r.poll_timeout().is_none(), "no more probing");
    f.r.handle_payload_sent(f.now);
    assert!(
        f.r.poll_timeout().is_none(),
        "payload does not restart probing"
    );
    // Hearing from the peer resumes REAP.
    f.r.handle_payload_received(f.now, Some(pair(2, 2)));
    assert_eq!(f.r.state(), ReapState::InboundOk);
    assert_eq!(f.probes().len(), 1);
    assert!(!f.r.given_up());
}

#[test]
fn test_exploring_local_address_up_resumes_after_give_up() {
    let (mut f, _) = reap_exploring_with(Config {
        give_up_at_cap: Some(Duration::ZERO),
        ..Config::default()
    });
    while f.r.poll_timeout().is_some() {
        f.fire();
        f.transmits();
    }
    assert!(f.r.given_up());
    f.r.handle_hint(f.now, Hint::LocalAddressUp(a(3)));
    assert_eq!(f.probes().len(), 1);
    assert!(f.r.poll_timeout().is_some());
}

// ------------------------------------------------------------------ hints, locators

#[test]
fn test_operational_local_address_down_explores_at_once() {
    let mut f = reap_operational();
    f.r.handle_hint(f.now, Hint::LocalAddressDown(a(1)));
    assert_eq!(f.r.state(), ReapState::Exploring);
    let p = f.probes();
    assert_eq!(p.len(), 1);
    assert_ne!(p[0].pair.local, a(1));
    assert!(
        f.r.exploration_order()
            .unwrap()
            .iter()
            .all(|p| p.local != a(1))
    );
    assert!(f.events().contains(&Event::PathFailed {
        pair: pair(1, 1),
        cause: FailureCause::LocalLocatorDown
    }));
}

#[test]
fn test_operational_other_local_address_down_changes_nothing() {
    let mut f = reap_operational();
    f.r.handle_hint(f.now, Hint::LocalAddressDown(a(2)));
    assert_eq!(f.r.state(), ReapState::Operational);
    assert!(f.transmits().is_empty());
    // …but a later exploration leaves it out.
    f.r.handle_payload_sent(f.now);
    f.fire();
    f.transmits();
    assert!(
        f.r.exploration_order()
            .unwrap()
            .iter()
            .all(|p| p.local != a(2))
    );
}

#[test]
fn test_operational_icmp_probes_current_pair_first() {
    let mut f = reap_operational();
    f.r.handle_hint(f.now, Hint::Icmp(pair(1, 1)));
    assert_eq!(f.r.state(), ReapState::Exploring);
    let p = f.probes();
    assert_eq!(
        p[0].pair,
        pair(1, 1),
        "forgeable hint: check the current pair first"
    );
    // The peer confirms it: nothing moves.
    f.rx_probe(ReapState::InboundOk, pair(1, 1), &[*p[0].this_probe()]);
    assert_eq!(f.r.state(), ReapState::Operational);
    assert_eq!(f.r.current_pair(), pair(1, 1));
    assert_eq!(f.r.stats().path_changes, 0);
    // Another ICMP right away is held down; one for another pair is ignored.
    f.r.handle_hint(f.now, Hint::Icmp(pair(1, 1)));
    f.r.handle_hint(f.now, Hint::Icmp(pair(2, 2)));
    assert_eq!(f.r.state(), ReapState::Operational);
    assert_eq!(f.r.stats().icmp_hints_ignored, 2);
}

#[test]
fn test_operational_peer_marks_current_broken_explores() {
    let mut f = reap_operational();
    let mut peers = locators(b);
    peers[0].pref.broken = true;
    f.r.handle_peer_locators(f.now, &peers).unwrap();
    assert_eq!(f.r.state(), ReapState::Exploring);
    assert!(
        f.r.exploration_order()
            .unwrap()
            .iter()
            .all(|p| p.remote != b(1))
    );
    assert!(f.events().contains(&Event::PathFailed {
        pair: pair(1, 1),
        cause: FailureCause::PeerLocatorGone
    }));
    assert_eq!(
        f.r.handle_peer_locators(f.now, &[]),
        Err(Error::NoPeerLocators)
    );
}

#[test]
fn test_operational_local_locators_without_current_explore() {
    let mut f = reap_operational();
    f.r.handle_local_locators(f.now, &[Locator::new(a(2)), Locator::new(a(3))])
        .unwrap();
    assert_eq!(f.r.state(), ReapState::Exploring);
    assert_eq!(f.r.exploration_order().unwrap().len(), 6);
    assert_eq!(
        f.r.handle_local_locators(f.now, &[]),
        Err(Error::NoLocalLocators)
    );
}

// ------------------------------------------------------------------ misc

#[test]
fn test_operational_keepalive_timeout_option_and_peer_value() {
    let f = reap_operational();
    assert_eq!(
        f.r.keepalive_timeout_option(),
        None,
        "default Send Timeout: no option"
    );
    let mut f = Fx::with(Config {
        send_timeout: Duration::from_secs(30),
        ..Config::default()
    });
    assert_eq!(
        f.r.keepalive_timeout_option(),
        Some(30),
        "§5.3 MUST announce"
    );
    assert!(!f.r.handle_peer_keepalive_timeout(f.now, 0));
    assert!(f.r.handle_peer_keepalive_timeout(f.now, 40));
    assert_eq!(f.r.keepalive_timeout(), 40 * SECOND);
    f.r.handle_payload_received(f.now, None);
    assert_eq!(f.r.timer(Timer::Keepalive), Some(f.now + 40 * SECOND));
    let i = f.r.timer(Timer::KeepaliveInterval).unwrap() - f.now;
    assert!(
        i >= Duration::from_millis(13_333) && i <= 20 * SECOND,
        "{i:?}"
    );
}

#[test]
fn test_operational_time_never_goes_backwards() {
    let mut f = reap_operational();
    f.advance(10 * SECOND);
    f.r.handle_payload_sent(f.now);
    let deadline = f.r.timer(Timer::Send).unwrap();
    // An earlier instant is treated as the latest one seen.
    f.r.handle_timeout(f.now - 5 * SECOND);
    f.r.handle_payload_received(f.now - 5 * SECOND, None);
    assert_eq!(f.r.timer(Timer::Keepalive), Some(f.now + 15 * SECOND));
    assert!(deadline > f.now);
}

#[test]
fn test_operational_new_rejects_misuse() {
    let now = crate::testutil::epoch();
    let bad = |l: &[Locator], p: &[Locator], c: Pair| {
        Reap::new(Config::default(), [0; 32], l, p, c, now).unwrap_err()
    };
    assert_eq!(bad(&[], &locators(b), pair(1, 1)), Error::NoLocalLocators);
    assert_eq!(bad(&locators(a), &[], pair(1, 1)), Error::NoPeerLocators);
    assert_eq!(
        bad(&locators(a), &locators(b), pair(9, 1)),
        Error::UnknownCurrentPair(pair(9, 1))
    );
    let e = Reap::new(
        Config {
            burst: 99,
            ..Config::default()
        },
        [0; 32],
        &locators(a),
        &locators(b),
        pair(1, 1),
        now,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(e.to_string().contains("burst"));
}

#[test]
fn test_operational_same_seed_same_run() {
    let run = || {
        let (mut f, first) = reap_exploring();
        let mut v = vec![first];
        for _ in 0..6 {
            f.fire();
            v.extend(f.probes());
        }
        v
    };
    assert_eq!(run(), run());
}

#[test]
fn test_exploring_probe_exploring_with_report_adopts_pair() {
    // A report is proof whatever the Sta of the probe carrying it.
    let (mut f, first) = reap_exploring();
    f.rx_probe(ReapState::Exploring, pair(3, 3), &[*first.this_probe()]);
    assert_eq!(f.r.state(), ReapState::InboundOk, "§6.7 still applies");
    assert_eq!(
        f.r.current_pair(),
        first.pair,
        "payload moves to the proven pair"
    );
    assert!(f.events().contains(&Event::PathChanged {
        from: pair(1, 1),
        to: first.pair
    }));
}

#[test]
fn test_inbound_ok_send_timeout_keeps_this_explorations_reports() {
    // Deviation from §5.2, documented in `on_send_timeout`: the peer's probes heard in
    // this exploration are still reported after falling back to Exploring.
    let (mut f, _) = reap_exploring();
    let heard = f.rx_probe(ReapState::Exploring, pair(2, 3), &[]);
    assert_eq!(f.r.state(), ReapState::InboundOk);
    f.transmits();
    while f.r.state() == ReapState::InboundOk {
        f.fire();
    }
    let p = f.probes();
    let last = p.last().unwrap();
    assert_eq!(last.state, ReapState::Exploring);
    assert_eq!(last.received, vec![heard]);
    // A new exploration starts with an empty list.
    f.rx_probe(ReapState::Operational, pair(2, 2), &[]);
    assert_eq!(f.r.state(), ReapState::Operational);
    f.r.handle_payload_sent(f.now);
    f.fire();
    let p = f.probes();
    assert_eq!(p[0].state, ReapState::Exploring);
    assert!(p[0].received.is_empty());
}

/// Random input sequences (any order, any pair, forged and genuine reports, hints,
/// locator changes) never break the timer invariants of RFC 5534 §4.1/§6 nor produce a
/// malformed probe.
#[test]
fn test_any_state_random_inputs_keep_invariants() {
    for seed in 0..300u64 {
        let mut rng = Rng::from_u64(seed);
        let mut f = Fx::with(Config {
            burst: 1 + rng.index(4),
            ..Config::default()
        });
        let mut ours: Vec<ProbeRecord> = Vec::new();
        for step in 0..400 {
            f.advance(Duration::from_millis(rng.index(3000) as u64));
            let p = pair(1 + rng.index(3) as u16, 1 + rng.index(3) as u16);
            match rng.index(12) {
                0 | 1 => f.r.handle_payload_sent(f.now),
                2 => f.r.handle_payload_received(f.now, Some(p)),
                3 => f.r.handle_keepalive(f.now, p),
                4..=6 => {
                    let state = [
                        ReapState::Operational,
                        ReapState::Exploring,
                        ReapState::InboundOk,
                    ][rng.index(3)];
                    let mut reports: Vec<ProbeRecord> = Vec::new();
                    for _ in 0..rng.index(4) {
                        if !ours.is_empty() && rng.index(2) == 0 {
                            reports.push(ours[rng.index(ours.len())]);
                        } else {
                            reports.push(ProbeRecord {
                                src: a(1),
                                dst: b(1),
                                nonce: rng.next_u32(),
                                data: 0,
                            });
                        }
                    }
                    f.rx_probe(state, p, &reports);
                }
                7 => f.r.handle_hint(f.now, Hint::Icmp(p)),
                8 => {
                    let addr = a(1 + rng.index(3) as u16);
                    let h = if rng.index(2) == 0 {
                        Hint::LocalAddressDown(addr)
                    } else {
                        Hint::LocalAddressUp(addr)
                    };
                    f.r.handle_hint(f.now, h);
                }
                9 => {
                    let mut peers = locators(b);
                    peers[rng.index(3)].pref.broken = rng.index(2) == 0;
                    f.r.handle_peer_locators(f.now, &peers).unwrap();
                }
                _ => {
                    if let Some(t) = f.r.poll_timeout() {
                        f.now = f.now.max(t);
                        f.r.handle_timeout(f.now);
                        assert!(
                            f.r.poll_timeout().is_none_or(|t| t > f.now),
                            "seed {seed} step {step}: an expired timer survived"
                        );
                    }
                }
            }
            let st = f.r.state();
            for t in f.transmits() {
                match t {
                    Transmit::Keepalive { pair } => assert_eq!(pair, f.r.current_pair()),
                    Transmit::Probe(p) => {
                        assert_eq!(
                            p.state, st,
                            "seed {seed} step {step}: Sta = state after sending"
                        );
                        assert!((1..=15).contains(&p.sent.len()));
                        assert!(p.received.len() <= 15);
                        assert_eq!(
                            (p.sent[0].src, p.sent[0].dst),
                            (p.pair.local, p.pair.remote)
                        );
                        ours.push(p.sent[0]);
                    }
                }
            }
            f.events();
            let ctx = format!("seed {seed} step {step} state {st:?}");
            assert!(
                !(f.running(Timer::Send) && f.running(Timer::Keepalive)),
                "{ctx}: Send and Keepalive are mutually exclusive"
            );
            if st != ReapState::Operational {
                assert!(
                    !f.running(Timer::Keepalive),
                    "{ctx}: Keepalive only in Operational"
                );
                assert!(!f.running(Timer::KeepaliveInterval), "{ctx}");
            } else {
                assert!(!f.running(Timer::Probe), "{ctx}: no probing in Operational");
            }
            if st == ReapState::Exploring {
                assert!(!f.running(Timer::Send), "{ctx}: no Send Timer in Exploring");
            }
        }
    }
}
