//! Endpoint benchmarks (issue 4 "Measure"), `harness = false`:
//!
//! ```text
//! cargo bench -p shim6-proto --bench endpoint            # 10^3 and 10^5 contexts
//! cargo bench -p shim6-proto --bench endpoint -- --big   # only 10^6 contexts, HBA
//! ```
//!
//! 1. I2 processing time at the responder (median, p99) with HBA, CGA RSA-1024 and CGA
//!    RSA-2048 initiators, while the responder's table holds N contexts. The table is
//!    filled by an HBA initiator using forked contexts (one ULID pair, FII 1..N: every
//!    I2 takes the IDLE → ESTABLISHED path), then a second initiator's I2s are timed one
//!    by one. A same-run baseline (one SHA-256 of 64 octets) gives each figure as a ratio.
//! 2. Memory per established context: the responder's resident-set growth while
//!    filling, divided by N (fillers are dropped every 10 000 contexts).
//! 3. Handshake wire cost: octets of I1 + R1 + I2 + R2 with IPv6 headers, two locators
//!    per side.
//! 4. I1 flood: contexts created (must be 0) and R1s per second on one core.
//! 5. Data path: `handle_outbound` (lookup, REAP note, payload header, locators) and
//!    `handle_inbound` (lookup, header removed, ULIDs restored) per 1280-octet packet on a
//!    context that failed over to a non-ULID pair, next to a memcpy of the packet.

use std::hint::black_box;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use cga::PrivateKey;
use shim6_proto::sim::identity::{self, HostIdentity};
use shim6_proto::{Config, Endpoint, Inbound};
use shim6_wire::shim6::handshake::I1;
use shim6_wire::shim6::{ContextTag, Message, MessageType};

fn config(seed: u8) -> Config {
    Config {
        rng_seed: Some([seed; 32]),
        ..Config::default()
    }
}

fn endpoint(id: HostIdentity, seed: u8, now: Instant) -> (Endpoint, Ipv6Addr) {
    let locs: Vec<_> = id.locators.iter().map(|a| reap::Locator::new(*a)).collect();
    let ulid = id.ulids[0].address;
    let ep = Endpoint::new(config(seed), id.ulids, &locs, now).expect("identity");
    (ep, ulid)
}

fn deliver(to: &mut Endpoint, now: Instant, mut packet: Vec<u8>) -> Inbound {
    let len = packet.len();
    to.handle_inbound(now, &mut packet, 0..len)
}

fn next(ep: &mut Endpoint, ty: MessageType) -> Vec<u8> {
    loop {
        let t = ep.poll_transmit().expect("a transmit");
        if t.message_type == ty {
            return t.packet;
        }
    }
}

fn drain(ep: &mut Endpoint) {
    while ep.poll_transmit().is_some() {}
    while ep.poll_event().is_some() {}
}

/// Runs I1 / R1 and returns the initiator's I2 (not yet delivered) and its tag.
fn i2_for(
    a: &mut Endpoint,
    b: &mut Endpoint,
    now: Instant,
    ua: Ipv6Addr,
    ub: Ipv6Addr,
) -> (Vec<u8>, ContextTag) {
    let tag = a.fork(now, ua, ub).expect("fork");
    let i1 = next(a, MessageType::I1);
    deliver(b, now, i1);
    let r1 = next(b, MessageType::R1);
    deliver(a, now, r1);
    (next(a, MessageType::I2), tag)
}

/// Delivers the R2. The initiator keeps its context: forks are numbered by the FIIs in
/// use, so closing would reuse FII 1.
fn finish(a: &mut Endpoint, b: &mut Endpoint, now: Instant, tag: ContextTag) {
    let r2 = next(b, MessageType::R2);
    assert_eq!(deliver(a, now, r2), Inbound::Consumed);
    assert!(a.context(tag).is_some());
    drain(a);
    drain(b);
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Same-run baseline: one SHA-256 over 64 octets.
fn baseline() -> Duration {
    let data = [0x5au8; 64];
    let n = 200_000;
    #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
    let t = Instant::now();
    for _ in 0..n {
        black_box(openssl::sha::sha256(black_box(&data)));
    }
    t.elapsed() / n
}

struct Row {
    kind: &'static str,
    contexts: usize,
    median: Duration,
    p99: Duration,
    mem_per_ctx: Option<usize>,
}

/// Fills a responder with `n` contexts, then times `samples` I2s from `measured`.
fn i2_processing(
    n: usize,
    measured: &[(&'static str, HostIdentity)],
    samples: usize,
    t0: Instant,
) -> Vec<Row> {
    let now = t0 + Duration::from_secs(1);
    let (mut b, ub) = endpoint(identity::hba(2, 2, 2), 2, t0);
    let rss0 = rss_bytes();
    // Fillers of at most 10 000 forks each, dropped when done: what stays resident is
    // the responder's table (plus at most one filler's worth of allocator slack).
    let mut filled = 0;
    let mut f = 0u16;
    while filled < n {
        let (mut filler, ua) = endpoint(identity::hba(1000 + f, 2, (f % 250) as u8 + 1), 1, t0);
        f += 1;
        for _ in 0..(n - filled).min(10_000) {
            let (i2, tag) = i2_for(&mut filler, &mut b, now, ua, ub);
            deliver(&mut b, now, i2);
            finish(&mut filler, &mut b, now, tag);
            filled += 1;
        }
    }
    assert_eq!(b.context_count(), n);
    let mem = (rss_bytes().saturating_sub(rss0)) / n.max(1);
    let mut rows = Vec::new();
    for (i, (kind, _)) in measured.iter().enumerate() {
        let id = regenerate(kind, i);
        let (mut a, ua) = endpoint(id, 10 + i as u8, t0);
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let (i2, tag) = i2_for(&mut a, &mut b, now, ua, ub);
            let mut p = i2;
            let len = p.len();
            #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
            let t = Instant::now();
            let r = b.handle_inbound(now, &mut p, 0..len);
            times.push(t.elapsed());
            assert_eq!(r, Inbound::Consumed, "{kind}: I2 accepted");
            finish(&mut a, &mut b, now, tag);
        }
        times.sort();
        rows.push(Row {
            kind,
            contexts: n,
            median: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
            mem_per_ctx: (i == 0).then_some(mem),
        });
    }
    rows
}

fn key(bits: u32) -> PrivateKey {
    PrivateKey::generate(bits).expect("RSA key")
}

/// Identities are not `Clone` (they hold keys): rebuild them by kind.
fn regenerate(kind: &str, i: usize) -> HostIdentity {
    let site = 10 + i as u16;
    match kind {
        "HBA" => identity::hba(site, 2, 50 + i as u8),
        "CGA RSA-1024" => identity::cga(site, 2, key1024()),
        _ => identity::cga(site, 2, key2048()),
    }
}

fn key1024() -> PrivateKey {
    identity::test_key(0)
}

fn key2048() -> PrivateKey {
    use std::sync::OnceLock;
    static K: OnceLock<Vec<u8>> = OnceLock::new();
    let pem = K.get_or_init(|| key(2048).to_pem().expect("pem"));
    PrivateKey::from_pem(pem).expect("pem")
}

/// Octets of I1 + R1 + I2 + R2 (IPv6 headers included).
fn wire_cost(make: impl Fn(u16) -> HostIdentity, t0: Instant) -> usize {
    let (mut a, ua) = endpoint(make(1), 1, t0);
    let (mut b, ub) = endpoint(make(2), 2, t0);
    let now = t0;
    a.establish(now, ua, ub).expect("establish");
    let i1 = next(&mut a, MessageType::I1);
    let mut total = i1.len();
    deliver(&mut b, now, i1);
    let r1 = next(&mut b, MessageType::R1);
    total += r1.len();
    deliver(&mut a, now, r1);
    let i2 = next(&mut a, MessageType::I2);
    total += i2.len();
    assert_eq!(deliver(&mut b, now, i2), Inbound::Consumed);
    let r2 = next(&mut b, MessageType::R2);
    total += r2.len();
    assert_eq!(deliver(&mut a, now, r2), Inbound::Consumed);
    total
}

fn flood(n: u32, t0: Instant) -> (usize, f64, usize) {
    let (mut b, ub) = endpoint(identity::hba(2, 2, 2), 2, t0);
    let now = t0 + Duration::from_secs(1);
    let packets: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let src = identity::addr(&identity::prefix(100, (i % 1000) as u16), u64::from(i) + 1);
            let m = Message::I1(I1 {
                initiator_context_tag: ContextTag::from_masked(
                    u64::from(i).wrapping_mul(0x9e37_79b9) + 1,
                ),
                initiator_nonce: i,
                options: Vec::new(),
            });
            let body = m.to_vec().expect("I1");
            let mut p = vec![0u8; 40];
            shim6_wire::ipv6::Repr {
                traffic_class: 0,
                flow_label: 0,
                payload_len: body.len() as u16,
                next_header: 140,
                hop_limit: 64,
                src_addr: src,
                dst_addr: ub,
            }
            .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(&mut p[..]));
            p.extend_from_slice(&body);
            p
        })
        .collect();
    let rss0 = rss_bytes();
    #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
    let t = Instant::now();
    let mut r1s = 0usize;
    for mut p in packets {
        let len = p.len();
        b.handle_inbound(now, &mut p, 0..len);
        while let Some(x) = b.poll_transmit() {
            r1s += usize::from(x.message_type == MessageType::R1);
            black_box(x);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r1s, n as usize);
    (
        b.context_count(),
        f64::from(n) / secs,
        rss_bytes().saturating_sub(rss0),
    )
}

/// Per-packet cost of the data path, after a failover in the simulator.
fn data_path(t0: Instant) -> (Duration, Duration, Duration) {
    use shim6_proto::sim::Net;
    let mut net = Net::new(t0, 1);
    let (ea, ua) = endpoint(identity::hba(1, 2, 1), 1, t0);
    let (eb, ub) = endpoint(identity::hba(2, 2, 2), 2, t0);
    let la = identity::hba(1, 2, 1).locators;
    let lb = identity::hba(2, 2, 2).locators;
    net.add_host(Some(ea), la);
    net.add_host(Some(eb), lb);
    net.hosts[0].ep().establish(t0, ua, ub).expect("establish");
    net.drain(0);
    net.settle();
    net.cut(ua, ub);
    for _ in 0..200 {
        net.send_app(0, ua, ub, b"x");
        net.send_app(1, ub, ua, b"y");
        net.run_for(Duration::from_millis(200));
    }
    let now = net.now();
    let mut a = net.hosts[0].ep.take().expect("A");
    let mut b = net.hosts[1].ep.take().expect("B");
    let tag = a.find(ua, ub, 0).expect("context");
    let pair = a.context(tag).expect("context").current_pair;
    assert_ne!((pair.local, pair.remote), (ua, ub), "failed over");
    // One 1280-octet UDP packet at offset 64 of a 1400-octet buffer.
    let mut pristine = vec![0u8; 1400];
    shim6_wire::ipv6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: 1240,
        next_header: 17,
        hop_limit: 64,
        src_addr: ua,
        dst_addr: ub,
    }
    .emit(&mut shim6_wire::ipv6::Packet::new_unchecked(
        &mut pristine[64..],
    ));
    let n = 200_000u32;
    let mut buf = pristine.clone();
    let mut copy = vec![0u8; 1280];
    #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
    let t = Instant::now();
    for _ in 0..n {
        copy.copy_from_slice(black_box(&pristine[64..1344]));
        black_box(&copy);
    }
    let memcpy = t.elapsed() / n;
    let mut out = Duration::ZERO;
    let mut inb = Duration::ZERO;
    for _ in 0..n {
        buf[56..1344].copy_from_slice(&pristine[56..1344]);
        #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
        let t = Instant::now();
        let r = a.handle_outbound(now, &mut buf, 64..1344);
        out += t.elapsed();
        let shim6_proto::Outbound::Send(s) = r else {
            panic!("rewritten")
        };
        while a.poll_transmit().is_some() {}
        while a.poll_event().is_some() {}
        #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
        let t = Instant::now();
        let r = b.handle_inbound(now, &mut buf, s.packet);
        inb += t.elapsed();
        assert!(matches!(r, Inbound::DeliverToTun(_)));
        while b.poll_transmit().is_some() {}
        while b.poll_event().is_some() {}
    }
    (memcpy, out / n, inb / n)
}

fn main() {
    let big = std::env::args().any(|a| a == "--big");
    #[allow(clippy::disallowed_methods)] // the benchmark's virtual epoch
    let t0 = Instant::now();
    let base = baseline();
    println!(
        "baseline: SHA-256 of 64 octets = {:.0} ns\n",
        base.as_nanos()
    );

    println!("## I2 processing at the responder\n");
    println!(
        "| initiator | contexts in table | median µs | p99 µs | median / baseline | memory per context (B) |"
    );
    println!("|---|---|---|---|---|---|");
    let kinds = ["HBA", "CGA RSA-1024", "CGA RSA-2048"];
    let sizes = if big {
        vec![1_000_000usize]
    } else {
        vec![1_000, 100_000]
    };
    for &n in &sizes {
        let measured: Vec<_> = kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| n < 1_000_000 || **k == "HBA")
            .map(|(i, k)| (*k, regenerate(k, i)))
            .collect();
        for row in i2_processing(n, &measured, 2_000, t0) {
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.0}× | {} |",
                row.kind,
                row.contexts,
                row.median.as_secs_f64() * 1e6,
                row.p99.as_secs_f64() * 1e6,
                row.median.as_secs_f64() / base.as_secs_f64(),
                row.mem_per_ctx.map_or("".into(), |m| m.to_string()),
            );
        }
    }

    if big {
        return;
    }
    println!("\n## Handshake wire cost (I1 + R1 + I2 + R2, IPv6 headers included)\n");
    println!("| identity, two locators per side | octets |");
    println!("|---|---|");
    println!(
        "| HBA | {} |",
        wire_cost(|s| identity::hba(s, 2, s as u8), t0)
    );
    println!(
        "| CGA RSA-1024 | {} |",
        wire_cost(
            |s| identity::cga(s, 2, identity::test_key(usize::from(s))),
            t0
        )
    );
    println!(
        "| CGA RSA-2048 | {} |",
        wire_cost(
            |s| identity::cga(s, 2, if s == 1 { key2048() } else { key(2048) }),
            t0
        )
    );

    println!("\n## Data path, 1280-octet packet, context on a non-ULID pair\n");
    let (memcpy, out, inb) = data_path(t0);
    println!("| operation | ns/packet | ratio to memcpy |");
    println!("|---|---|---|");
    println!(
        "| memcpy of the packet (baseline) | {} | 1.0 |",
        memcpy.as_nanos()
    );
    for (what, d) in [
        ("handle_outbound (rewrite)", out),
        ("handle_inbound (restore)", inb),
    ] {
        println!(
            "| {what} | {} | {:.1} |",
            d.as_nanos(),
            d.as_secs_f64() / memcpy.as_secs_f64().max(1e-12)
        );
    }

    println!("\n## I1 flood\n");
    let (ctx, rate, grew) = flood(200_000, t0);
    println!("| I1s | contexts created | R1/s (one core) | resident memory growth (B) |");
    println!("|---|---|---|---|");
    println!("| 200000 | {ctx} | {rate:.0} | {grew} |");
}
