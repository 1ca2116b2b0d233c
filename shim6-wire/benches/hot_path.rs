//! The Shim6 data-path hot path, measured against a plain memcpy of the same packet in
//! the same run (issue 2, "Measure").
//!
//! `cargo bench -p shim6-wire --bench hot_path`
//!
//! For IPv6/TCP packets of 1280 and 1500 octets (the ULP packet; the shimmed packet on
//! the wire is 8 octets longer) it reports ns/packet for:
//! - memcpy: copying the packet into another buffer (the baseline);
//! - outbound: rewrite src/dst to the locators and insert the payload extension header,
//!   with `Shift::Front` (the IPv6 header moves left into headroom) and `Shift::Tail`
//!   (the payload moves right);
//! - inbound: parse the payload header (locate it, read the tag), look up nothing,
//!   strip it, rewrite src/dst to the ULIDs, with both shifts.
//!
//! Method: a batch of `BATCH` packets, each in its own buffer, is processed once per
//! timed pass (one operation per packet, as a real receive loop would); the buffers are
//! restored from a pristine copy outside the timed region. A run is many passes; after
//! one warm-up run the median of `RUNS` runs is reported. No criterion, to keep the
//! build lean.

use std::hint::black_box;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use shim6_wire::ipv6::shim::{
    Shift, Shim6At, insert_payload_header, locate, remove_at, rewrite_addresses,
};
use shim6_wire::shim6::ContextTag;

/// Packets per timed pass: 64 buffers of ~1.6 KB stay within the L2 cache.
const BATCH: usize = 64;
/// Headroom and tailroom around each packet.
const ROOM: usize = 64;
/// Timed passes per run.
const PASSES: usize = 20_000;
/// Runs per measurement (the median is reported).
const RUNS: usize = 9;

const ULID_LOCAL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const ULID_PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const LOC_LOCAL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 1);
const LOC_PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 2);

/// An IPv6/TCP packet of `len` octets from `ULID_LOCAL` to `ULID_PEER`.
fn tcp_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[6] = 6;
    p[7] = 64;
    p[8..24].copy_from_slice(&ULID_LOCAL.octets());
    p[24..40].copy_from_slice(&ULID_PEER.octets());
    // A TCP header (ports, seq, ack, data offset 5, ACK) and a patterned payload.
    p[40..60].copy_from_slice(&[
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    for (i, b) in p[60..].iter_mut().enumerate() {
        *b = (i * 31 + 7) as u8;
    }
    p
}

/// `BATCH` buffers, each holding `packet` at `ROOM..`.
struct Batch {
    pristine: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    len: usize,
}

impl Batch {
    fn new(packet: &[u8]) -> Self {
        let mut pristine = vec![0u8; ROOM + packet.len() + ROOM];
        pristine[ROOM..ROOM + packet.len()].copy_from_slice(packet);
        Self {
            bufs: vec![pristine.clone(); BATCH],
            pristine,
            len: packet.len(),
        }
    }

    fn reset(&mut self) {
        for b in &mut self.bufs {
            b.copy_from_slice(&self.pristine);
        }
    }
}

/// Times `op` on every buffer of the batch, `PASSES` times, and returns ns/packet.
fn run(batch: &mut Batch, op: &mut dyn FnMut(&mut [u8], usize)) -> f64 {
    let mut total = Duration::ZERO;
    for _ in 0..PASSES {
        batch.reset();
        let len = batch.len;
        let t = Instant::now();
        for b in &mut batch.bufs {
            op(black_box(b.as_mut_slice()), len);
        }
        total += t.elapsed();
    }
    total.as_nanos() as f64 / (PASSES * BATCH) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn outbound(shift: Shift) -> impl FnMut(&mut [u8], usize) {
    let tag = ContextTag::new(0x0123_4567_89ab).unwrap();
    move |buf, len| {
        rewrite_addresses(&mut buf[ROOM..], &LOC_LOCAL, &LOC_PEER).unwrap();
        let r = insert_payload_header(buf, ROOM..ROOM + len, tag, shift).unwrap();
        black_box(r);
    }
}

fn inbound(shift: Shift) -> impl FnMut(&mut [u8], usize) {
    move |buf, len| {
        let packet = ROOM..ROOM + len;
        let Ok(Some(Shim6At::Payload(at))) = locate(&buf[packet.clone()]) else {
            panic!("benchmark packet lost its payload header")
        };
        // The context lookup would go here: look up nothing.
        black_box(at.repr.context_tag);
        let r = remove_at(buf, packet, &at, shift).unwrap();
        rewrite_addresses(&mut buf[r.start..], &ULID_PEER, &ULID_LOCAL).unwrap();
        black_box(r);
    }
}

fn main() {
    let tag = ContextTag::new(0x0123_4567_89ab).unwrap();
    println!("| packet | operation | ns/packet | × memcpy |");
    println!("|---|---|---:|---:|");
    for size in [1280usize, 1500] {
        let ulp = tcp_packet(size);
        // The shimmed packet as it arrives: locators and the payload header.
        let shimmed = {
            let mut b = vec![0u8; ROOM + size + ROOM];
            b[ROOM..ROOM + size].copy_from_slice(&ulp);
            let r = insert_payload_header(&mut b, ROOM..ROOM + size, tag, Shift::Tail).unwrap();
            rewrite_addresses(&mut b[r.clone()], &LOC_PEER, &LOC_LOCAL).unwrap();
            b[r].to_vec()
        };
        let mut out = Batch::new(&ulp);
        let mut inb = Batch::new(&shimmed);
        let mut dst = vec![vec![0u8; size]; BATCH];
        let mut memcpy_batch = Batch::new(&ulp);

        type Op<'a> = (&'a str, Box<dyn FnMut(&mut [u8], usize) + 'a>, bool);
        let mut i = 0;
        let dst_ref = &mut dst;
        let mut ops: Vec<Op<'_>> = vec![
            (
                "memcpy (baseline)",
                Box::new(move |buf: &mut [u8], len: usize| {
                    let d = &mut dst_ref[i % BATCH];
                    d[..len].copy_from_slice(&buf[ROOM..ROOM + len]);
                    black_box(d.as_ptr());
                    i += 1;
                }),
                false,
            ),
            (
                "outbound: rewrite + insert, Shift::Front (headroom)",
                Box::new(outbound(Shift::Front)),
                false,
            ),
            (
                "outbound: rewrite + insert, Shift::Tail (move payload)",
                Box::new(outbound(Shift::Tail)),
                false,
            ),
            (
                "inbound: parse + strip + rewrite, Shift::Front",
                Box::new(inbound(Shift::Front)),
                true,
            ),
            (
                "inbound: parse + strip + rewrite, Shift::Tail",
                Box::new(inbound(Shift::Tail)),
                true,
            ),
        ];
        // Interleave the operations run by run, so that a burst of load from elsewhere
        // hits all of them rather than one.
        let mut samples = vec![Vec::new(); ops.len()];
        for r in 0..=RUNS {
            for (k, (_, op, inbound)) in ops.iter_mut().enumerate() {
                let batch = if *inbound {
                    &mut inb
                } else if k == 0 {
                    &mut memcpy_batch
                } else {
                    &mut out
                };
                let ns = run(batch, op.as_mut());
                if r > 0 {
                    // Run 0 is the warm-up.
                    samples[k].push(ns);
                }
            }
        }
        let base = median(samples[0].clone());
        for ((name, _, _), s) in ops.iter().zip(samples) {
            let m = median(s);
            println!("| {size} | {name} | {m:.1} | {:.2} |", m / base);
        }
    }
}
