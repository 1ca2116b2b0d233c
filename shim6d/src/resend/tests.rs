use std::net::Ipv6Addr;

use super::*;

const L: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa1, 0, 0, 0, 0, 1);
const P: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb1, 0, 0, 0, 0, 1);
const Q: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb2, 0, 0, 0, 0, 1);
const PAIR: UlidPair = UlidPair::new(L, P);

/// An IPv6 packet from `src` to `dst` with a 20-octet TCP header and `len` octets of
/// payload (filled with `fill`). Checksums are not computed: nothing here reads them.
#[allow(clippy::too_many_arguments)]
fn tcp_fill(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    len: usize,
    fill: u8,
) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(20 + len).unwrap().to_be_bytes());
    p.extend_from_slice(&[6, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&ports.0.to_be_bytes());
    p.extend_from_slice(&ports.1.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend(std::iter::repeat_n(fill, len));
    p
}

/// A segment we send on flow (40000 → 443).
fn out(seq: u32, len: usize) -> Vec<u8> {
    tcp_fill(L, P, (40000, 443), seq, 1, ACK, len, 0xaa)
}

/// The peer's ACK on that flow.
fn ack(n: u32) -> Vec<u8> {
    tcp_fill(P, L, (443, 40000), 1, n, ACK, 0, 0)
}

fn buf() -> ResendBuffer {
    ResendBuffer::new(Limits::default())
}

fn resent(b: &mut ResendBuffer, now: Instant, pair: UlidPair) -> Vec<Vec<u8>> {
    b.on_path_change(now, pair).map(<[u8]>::to_vec).collect()
}

fn seqs(b: &mut ResendBuffer, now: Instant, pair: UlidPair) -> Vec<u32> {
    resent(b, now, pair)
        .iter()
        .map(|p| u32::from_be_bytes(p[44..48].try_into().unwrap()))
        .collect()
}

#[test]
fn sequence_comparison_wraps() {
    assert!(seq_le(1, 1));
    assert!(seq_le(1, 2));
    assert!(!seq_le(2, 1));
    assert!(seq_le(u32::MAX, 0), "0 comes after 2^32-1");
    assert!(seq_le(u32::MAX - 10, 5));
    assert!(!seq_le(5, u32::MAX - 10));
    assert!(seq_le(0, 0x7fff_ffff));
    assert!(
        !seq_le(0, 0x8000_0001),
        "more than half the space ahead is behind"
    );
}

#[test]
fn data_is_kept_pure_acks_and_other_protocols_are_not() {
    let t = Instant::now();
    let mut b = buf();
    assert_eq!(b.on_outbound(t, &out(1000, 100)), Recorded::Kept);
    assert_eq!(
        b.on_outbound(t, &tcp_fill(L, P, (40000, 443), 1100, 5, ACK, 0, 0)),
        Recorded::NoSequenceSpace
    );
    let mut udp = out(0, 10);
    udp[6] = 17;
    assert_eq!(b.on_outbound(t, &udp), Recorded::Ignored);
    assert_eq!(b.buffered(PAIR), (1, 160));
    assert_eq!(b.total_bytes(), 160);
    assert_eq!(b.stats().kept, 1);
}

#[test]
fn cumulative_ack_clears_only_whole_segments() {
    let t = Instant::now();
    let mut b = buf();
    for i in 0..4 {
        b.on_outbound(t, &out(1000 + i * 100, 100));
    }
    assert_eq!(b.on_inbound(t, &ack(1150)), 1, "1000..1100 only");
    assert_eq!(seqs(&mut b, t, PAIR), [1100, 1200, 1300]);
    assert_eq!(b.on_inbound(t, &ack(1150)), 0, "duplicate ACK");
    assert_eq!(b.on_inbound(t, &ack(1100)), 0, "old ACK");
    assert_eq!(b.on_inbound(t, &ack(1400)), 3);
    assert_eq!(b.buffered(PAIR), (0, 0));
    assert_eq!(b.total_bytes(), 0);
    assert_eq!(b.stats().acked, 4);
}

#[test]
fn ack_without_the_ack_bit_or_beyond_what_was_sent_is_ignored() {
    let t = Instant::now();
    let mut b = buf();
    b.on_outbound(t, &out(1000, 100));
    let no_ack_bit = tcp_fill(P, L, (443, 40000), 1, 1100, 0, 0, 0);
    assert_eq!(b.on_inbound(t, &no_ack_bit), 0);
    assert_eq!(b.on_inbound(t, &ack(1101)), 0, "acknowledges unsent data");
    assert_eq!(b.on_inbound(t, &ack(1000 + 0x8000_0000)), 0);
    assert_eq!(b.buffered(PAIR).0, 1);
    assert_eq!(b.on_inbound(t, &ack(1100)), 1);
}

#[test]
fn sequence_numbers_wrap_around() {
    let t = Instant::now();
    let mut b = buf();
    let start = u32::MAX - 149; // segments: MAX-149.., MAX-49.. (spans the wrap), 51..
    for i in 0..3u32 {
        b.on_outbound(t, &out(start.wrapping_add(i * 100), 100));
    }
    assert_eq!(
        seqs(&mut b, t, PAIR),
        [start, start.wrapping_add(100), start.wrapping_add(200)]
    );
    // ACK of MAX-49: the first segment only.
    assert_eq!(b.on_inbound(t, &ack(start.wrapping_add(100))), 1);
    // ACK of 50 (after the wrap): the segment spanning it.
    assert_eq!(b.on_inbound(t, &ack(start.wrapping_add(200))), 1);
    assert_eq!(seqs(&mut b, t, PAIR), [start.wrapping_add(200)]);
    assert_eq!(b.on_inbound(t, &ack(start.wrapping_add(300))), 1);
    assert_eq!(b.buffered(PAIR), (0, 0));
}

#[test]
fn syn_and_fin_occupy_one_sequence_number() {
    let t = Instant::now();
    let mut b = buf();
    let syn = tcp_fill(L, P, (40000, 443), 7, 0, SYN, 0, 0);
    assert_eq!(b.on_outbound(t, &syn), Recorded::Kept);
    // The SYN-ACK acknowledges ISN + 1.
    assert_eq!(
        b.on_inbound(t, &tcp_fill(P, L, (443, 40000), 90, 8, SYN | ACK, 0, 0)),
        1
    );
    // Data + FIN: 100 + 1.
    let fin = tcp_fill(L, P, (40000, 443), 8, 91, ACK | FIN, 100, 1);
    assert_eq!(b.on_outbound(t, &fin), Recorded::Kept);
    assert_eq!(
        b.on_inbound(t, &ack(108)),
        0,
        "the FIN is not acknowledged yet"
    );
    assert_eq!(b.on_inbound(t, &ack(109)), 1);
    // A bare FIN is kept too; so is our SYN-ACK as a server.
    let bare = tcp_fill(L, P, (40000, 443), 109, 91, ACK | FIN, 0, 0);
    assert_eq!(b.on_outbound(t, &bare), Recorded::Kept);
    let synack = tcp_fill(L, P, (22, 50000), 500, 11, SYN | ACK, 0, 0);
    assert_eq!(b.on_outbound(t, &synack), Recorded::Kept);
    assert_eq!(
        b.on_inbound(t, &tcp_fill(P, L, (50000, 22), 11, 501, ACK, 0, 0)),
        1
    );
    assert_eq!(seqs(&mut b, t, PAIR), [109]);
}

#[test]
fn a_retransmission_replaces_the_older_copy() {
    let t = Instant::now();
    let mut b = buf();
    b.on_outbound(t, &out(1000, 100));
    b.on_outbound(t, &out(1100, 100));
    let again = tcp_fill(L, P, (40000, 443), 1000, 77, ACK, 100, 0xbb);
    assert_eq!(
        b.on_outbound(t + Duration::from_secs(1), &again),
        Recorded::Replaced
    );
    assert_eq!(b.buffered(PAIR), (2, 320));
    let r = resent(&mut b, t + Duration::from_secs(1), PAIR);
    // Send order: the retransmission is now the latest.
    assert_eq!(r[1], again);
    // A retransmission that coalesces (same start, more data) replaces too.
    let bigger = tcp_fill(L, P, (40000, 443), 1100, 77, ACK, 200, 0xcc);
    assert_eq!(b.on_outbound(t, &bigger), Recorded::Replaced);
    assert_eq!(
        b.on_inbound(t, &ack(1200)),
        1,
        "only the 1000 copy is covered"
    );
    assert_eq!(b.on_inbound(t, &ack(1300)), 1);
}

#[test]
fn flows_and_contexts_are_independent() {
    let t = Instant::now();
    let mut b = buf();
    b.on_outbound(t, &out(1000, 100));
    let other_flow = tcp_fill(L, P, (40001, 443), 1000, 1, ACK, 100, 1);
    let other_peer = tcp_fill(L, Q, (40000, 443), 1000, 1, ACK, 100, 2);
    b.on_outbound(t, &other_flow);
    b.on_outbound(t, &other_peer);
    assert_eq!(b.buffered(PAIR).0, 2);
    assert_eq!(b.buffered(UlidPair::new(L, Q)).0, 1);
    // The ACK of flow 40000 clears only that flow of that peer.
    assert_eq!(b.on_inbound(t, &ack(1100)), 1);
    assert_eq!(resent(&mut b, t, PAIR), [other_flow]);
    assert_eq!(resent(&mut b, t, UlidPair::new(L, Q)), [other_peer]);
    // An ACK from Q for the P flow's ports clears nothing of P.
    assert_eq!(
        b.on_inbound(t, &tcp_fill(Q, L, (443, 40001), 1, 1100, ACK, 0, 0)),
        0
    );
    assert_eq!(b.buffered(PAIR).0, 1);
    // Nothing for a pair never seen.
    assert_eq!(b.on_path_change(t, UlidPair::new(Q, P)).count(), 0);
}

#[test]
fn path_change_hands_out_unacked_in_send_order_and_keeps_them() {
    let t = Instant::now();
    let mut b = buf();
    b.on_outbound(t, &out(3000, 10));
    b.on_outbound(t, &tcp_fill(L, P, (40001, 443), 9, 1, ACK, 10, 1));
    b.on_outbound(t, &out(3010, 10));
    let r = resent(&mut b, t, PAIR);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0], out(3000, 10));
    assert_eq!(r[2], out(3010, 10));
    assert_eq!(b.stats().resent, 3);
    // Still there: a second switch re-sends again.
    assert_eq!(resent(&mut b, t, PAIR).len(), 3);
}

#[test]
fn old_segments_expire() {
    let t = Instant::now();
    let mut b = buf();
    b.on_outbound(t, &out(1000, 100));
    b.on_outbound(t + Duration::from_secs(20), &out(1100, 100));
    assert_eq!(
        seqs(&mut b, t + Duration::from_secs(30), PAIR),
        [1000, 1100]
    );
    assert_eq!(
        seqs(&mut b, t + Duration::from_secs(31), PAIR),
        [1100],
        "older than 30 s"
    );
    assert_eq!(b.stats().expired, 1);
    // The periodic tick releases idle contexts.
    b.expire(t + Duration::from_secs(51));
    assert_eq!(b.buffered(PAIR), (0, 0));
    assert_eq!(b.total_bytes(), 0);
}

#[test]
fn per_context_limit_evicts_the_oldest() {
    let t = Instant::now();
    let mut b = ResendBuffer::new(Limits {
        max_context_bytes: 3 * 160,
        ..Limits::default()
    });
    for i in 0..5 {
        assert_eq!(b.on_outbound(t, &out(i * 100, 100)), Recorded::Kept);
    }
    assert_eq!(seqs(&mut b, t, PAIR), [200, 300, 400]);
    assert_eq!(b.stats().evicted, 2);
    assert_eq!(b.on_outbound(t, &out(500, 500)), Recorded::TooLarge);
    assert_eq!(
        b.buffered(PAIR),
        (3, 480),
        "a refused segment evicts nothing"
    );
}

#[test]
fn total_limit_spans_contexts() {
    let t = Instant::now();
    let mut b = ResendBuffer::new(Limits {
        max_total_bytes: 2 * 160,
        ..Limits::default()
    });
    b.on_outbound(t, &out(0, 100));
    b.on_outbound(t, &tcp_fill(L, Q, (1, 2), 0, 0, ACK, 100, 0));
    // A third segment for Q: Q's own oldest goes.
    assert_eq!(
        b.on_outbound(t, &tcp_fill(L, Q, (1, 2), 100, 0, ACK, 100, 0)),
        Recorded::Kept
    );
    assert_eq!(b.buffered(UlidPair::new(L, Q)).0, 1);
    assert_eq!(b.buffered(PAIR).0, 1);
    // A context with nothing to evict cannot take from the others.
    let r = tcp_fill(L, Ipv6Addr::LOCALHOST, (1, 2), 0, 0, ACK, 100, 0);
    assert_eq!(b.on_outbound(t, &r), Recorded::TooLarge);
    assert_eq!(b.total_bytes(), 320);
}

#[test]
fn rst_forgets_the_flow() {
    let t = Instant::now();
    let mut b = buf();
    b.on_outbound(t, &out(0, 100));
    b.on_outbound(t, &out(100, 100));
    b.on_outbound(t, &tcp_fill(L, P, (40001, 443), 0, 0, ACK, 100, 0));
    assert_eq!(
        b.on_inbound(t, &tcp_fill(P, L, (443, 40000), 0, 0, RST, 0, 0)),
        2
    );
    assert_eq!(b.buffered(PAIR).0, 1);
    assert_eq!(
        b.on_outbound(t, &tcp_fill(L, P, (40001, 443), 100, 0, RST | ACK, 0, 0)),
        Recorded::Reset
    );
    assert_eq!(b.buffered(PAIR), (0, 0));
    assert_eq!(b.total_bytes(), 0);
}

#[test]
fn forget_drops_a_context() {
    let t = Instant::now();
    let mut b = buf();
    b.on_outbound(t, &out(0, 100));
    b.on_outbound(t, &tcp_fill(L, Q, (1, 2), 0, 0, ACK, 100, 0));
    b.forget(PAIR);
    assert_eq!(b.buffered(PAIR), (0, 0));
    assert_eq!(b.total_bytes(), 160);
}

#[test]
fn other_protocols_when_asked_leave_by_age_only() {
    let t = Instant::now();
    let mut b = ResendBuffer::new(Limits {
        tcp_only: false,
        ..Limits::default()
    });
    let mut udp = out(0, 10);
    udp[6] = 17;
    assert_eq!(b.on_outbound(t, &udp), Recorded::Kept);
    assert_eq!(
        b.on_outbound(t, &udp),
        Recorded::Kept,
        "no sequence: no dedup"
    );
    assert_eq!(b.on_inbound(t, &ack(u32::MAX)), 0);
    assert_eq!(resent(&mut b, t, PAIR).len(), 2);
    assert_eq!(
        b.on_path_change(t + Duration::from_secs(31), PAIR).count(),
        0
    );
}

#[test]
fn malformed_packets_are_ignored() {
    let t = Instant::now();
    let mut b = buf();
    let good = out(0, 100);
    assert_eq!(b.on_outbound(t, &[]), Recorded::Ignored);
    assert_eq!(
        b.on_outbound(t, &good[..50]),
        Recorded::Ignored,
        "truncated"
    );
    let mut v4 = good.clone();
    v4[0] = 0x45;
    assert_eq!(b.on_outbound(t, &v4), Recorded::Ignored);
    let mut short_doff = good.clone();
    short_doff[52] = 4 << 4;
    assert_eq!(b.on_outbound(t, &short_doff), Recorded::Ignored);
    let mut long_doff = tcp_fill(L, P, (1, 2), 0, 0, ACK, 0, 0);
    long_doff[52] = 15 << 4;
    assert_eq!(b.on_outbound(t, &long_doff), Recorded::Ignored);
    // A TCP header of 20 octets declared but only 10 present.
    let mut tiny = good[..50].to_vec();
    tiny[4..6].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(b.on_outbound(t, &tiny), Recorded::Ignored);
    assert_eq!(b.on_inbound(t, &tiny), 0);
    // A fragment (Fragment header, RFC 8200 §4.5) is not a whole segment.
    let mut frag = good[..40].to_vec();
    frag[6] = 44;
    frag[4..6].copy_from_slice(&(8 + 120u16).to_be_bytes());
    frag.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 1]);
    frag.extend_from_slice(&good[40..]);
    assert_eq!(b.on_outbound(t, &frag), Recorded::Ignored);
    assert_eq!(b.buffered(PAIR), (0, 0));
}

#[test]
fn extension_headers_are_stepped_over() {
    let t = Instant::now();
    let mut b = buf();
    let plain = out(5, 100);
    // Insert an 8-octet Destination Options header (RFC 8200 §4.6) with PadN.
    let mut p = plain[..40].to_vec();
    p[6] = 60;
    p[4..6].copy_from_slice(&(8 + 120u16).to_be_bytes());
    p.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&plain[40..]);
    assert_eq!(b.on_outbound(t, &p), Recorded::Kept);
    assert_eq!(b.on_inbound(t, &ack(105)), 1);
}

#[test]
fn retransmissions_found_among_many_segments_new_data_is_not_one() {
    let t = Instant::now();
    let mut b = buf();
    for i in 0..300u32 {
        assert_eq!(b.on_outbound(t, &out(5000 + 100 * i, 100)), Recorded::Kept);
    }
    // Old data again (below the highest end recorded): found and replaced.
    assert_eq!(
        b.on_outbound(t, &out(5000 + 100 * 150, 100)),
        Recorded::Replaced
    );
    assert_eq!(b.on_outbound(t, &out(5000, 100)), Recorded::Replaced);
    // New data right at the highest end, and past it: kept, not replacing anything.
    assert_eq!(
        b.on_outbound(t, &out(5000 + 100 * 300, 100)),
        Recorded::Kept
    );
    assert_eq!(
        b.on_outbound(t, &out(5000 + 100 * 400, 100)),
        Recorded::Kept
    );
    assert_eq!(b.buffered(PAIR).0, 302);
    // After an RST the flow starts over: an earlier sequence number is new data.
    b.on_outbound(t, &tcp_fill(L, P, (40000, 443), 0, 0, RST | ACK, 0, 0));
    assert_eq!(b.on_outbound(t, &out(10, 100)), Recorded::Kept);
}
