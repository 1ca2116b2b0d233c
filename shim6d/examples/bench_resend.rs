//! Hot-path cost of `shim6d::resend::ResendBuffer` (`docs/bench/daemon-aux.md`): what
//! the data plane pays per packet to keep the re-send buffer.
//!
//! One context, `FLOWS` TCP flows sending 1400-octet packets round-robin; the peer
//! acknowledges every second segment of a flow (a delayed-ACK receiver), so the
//! buffer holds a steady window. Timed: `on_outbound` per data packet and `on_inbound`
//! per ACK, against a copy of the same 1400 octets into a reused buffer (the baseline
//! of the same run: the daemon's own per-packet copy costs about that). Also the
//! buffer's window at the limits.
//!
//! ```sh
//! cargo run -p shim6d --release --example bench_resend -- [PACKETS] [FLOWS] [IN_FLIGHT]
//! ```

use std::{
    hint::black_box,
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use shim6d::resend::{Limits, ResendBuffer};

const L: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa1, 0, 0, 0, 0, 1);
const P: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb1, 0, 0, 0, 0, 1);

fn tcp(src: Ipv6Addr, dst: Ipv6Addr, ports: (u16, u16), seq: u32, ack: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(20 + len).unwrap().to_be_bytes());
    p.extend_from_slice(&[6, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&ports.0.to_be_bytes());
    p.extend_from_slice(&ports.1.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[5 << 4, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    p.resize(40 + 20 + len, 0x5a);
    p
}

fn main() {
    let mut args = std::env::args().skip(1);
    let packets: u32 = args
        .next()
        .map_or(1_000_000, |s| s.parse().expect("PACKETS"));
    let flows: u16 = args.next().map_or(4, |s| s.parse().expect("FLOWS"));
    // Segments in flight per flow before the first ACK comes back.
    let in_flight: u32 = args.next().map_or(32, |s| s.parse().expect("IN_FLIGHT"));
    const MSS: u32 = 1340;

    // Pre-built packets: building them is not what is measured.
    let per_flow = packets / u32::from(flows);
    let mut data = Vec::new();
    let mut acks = Vec::new();
    for f in 0..flows {
        let ports = (40000 + f, 443);
        let isn = u32::MAX - 1_000_000 * u32::from(f); // some flows wrap around
        for i in 0..per_flow {
            data.push((
                f,
                tcp(L, P, ports, isn.wrapping_add(i * MSS), 1, MSS as usize),
            ));
            if i % 2 == 1 && i >= in_flight {
                // ACK of everything up to segment i - in_flight.
                let upto = isn.wrapping_add((i - in_flight + 1) * MSS);
                acks.push((f, i, tcp(P, L, (ports.1, ports.0), 1, upto, 0)));
            }
        }
    }
    // Interleave: step i sends segment i of every flow, then the ACKs it releases.
    let mut acks_at: std::collections::HashMap<(u16, u32), usize> = Default::default();
    for (j, (f, i, _)) in acks.iter().enumerate() {
        acks_at.insert((*f, *i), j);
    }
    let mut order: Vec<(bool, usize)> = Vec::with_capacity(data.len() + acks.len());
    for i in 0..per_flow {
        for f in 0..flows {
            order.push((true, usize::from(f) * per_flow as usize + i as usize));
            if let Some(j) = acks_at.get(&(f, i)) {
                order.push((false, *j));
            }
        }
    }

    let t0 = Instant::now();
    let mut b = ResendBuffer::new(Limits::default());
    let (mut out_time, mut in_time) = (Duration::ZERO, Duration::ZERO);
    let mut peak = (0, 0);
    for (k, (is_data, idx)) in order.iter().enumerate() {
        // Virtual time: 10 µs per packet, so nothing expires by age.
        let now = t0 + Duration::from_micros(10 * k as u64);
        if *is_data {
            let p = &data[*idx].1;
            let t = Instant::now();
            black_box(b.on_outbound(now, p));
            out_time += t.elapsed();
        } else {
            let p = &acks[*idx].2;
            let t = Instant::now();
            black_box(b.on_inbound(now, p));
            in_time += t.elapsed();
        }
        let (segs, bytes) = b.buffered(shim6d::visibility::UlidPair::new(L, P));
        if bytes > peak.1 {
            peak = (segs, bytes);
        }
    }
    // Baseline: copy each data packet into a reused buffer.
    let mut sink = vec![0u8; 1500];
    let t = Instant::now();
    for (_, p) in &data {
        sink[..p.len()].copy_from_slice(black_box(p));
        black_box(&sink);
    }
    let copy_time = t.elapsed();

    let n_data = data.len() as f64;
    let n_acks = acks.len() as f64;
    let out_ns = out_time.as_nanos() as f64 / n_data;
    let in_ns = in_time.as_nanos() as f64 / n_acks.max(1.0);
    let copy_ns = copy_time.as_nanos() as f64 / n_data;
    let s = b.stats();
    println!(
        "| flows | in flight / flow | on_outbound ns/pkt | on_inbound ns/ACK | copy 1400 B ns | outbound / copy | peak buffered |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {flows} | {in_flight} | {out_ns:.0} | {in_ns:.0} | {copy_ns:.0} | {:.1} | {} segments, {} KiB |",
        out_ns / copy_ns,
        peak.0,
        peak.1 / 1024
    );
    println!(
        "{}",
        serde_json::json!({
            "packets": data.len(), "acks": acks.len(), "flows": flows, "in_flight": in_flight,
            "on_outbound_ns": out_ns, "on_inbound_ns": in_ns, "copy_ns": copy_ns,
            "peak_segments": peak.0, "peak_bytes": peak.1,
            "kept": s.kept, "acked": s.acked, "evicted": s.evicted, "expired": s.expired,
        })
    );
}
