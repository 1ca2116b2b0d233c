//! TCP after a path switch (issue 6 item 4, architecture hazard 6): re-send on the new
//! path what was sent into the failure, so the peer's ACK comes at once.
//!
//! When the current locator pair fails, TCP keeps retransmitting into it and backs its
//! retransmission timer off exponentially (RFC 6298 §5.5). REAP finds a new pair after
//! the Send Timeout plus exploration (RFC 5534 §4), but the application only recovers at
//! TCP's next retransmission, which may be tens of seconds later. LinShim6 reset the RTO
//! in its kernel patch; we have no kernel patch, but the daemon sees every outbound
//! packet of a protected flow. So it keeps a **bounded copy of the TCP segments it
//! sent** per context, drops those the peer acknowledged, and when REAP moves the
//! context to a new pair it sends the unacknowledged ones again at once: the peer
//! answers with an ACK (new data, or a duplicate ACK for what it already had), the
//! sender's TCP sees its data acknowledged, and its own retransmission timer restarts
//! from a fresh RTT sample instead of the backed-off value.
//!
//! # What it keeps
//!
//! - Segments that occupy sequence space: payload, SYN, FIN (RFC 9293 §3.4). Pure ACKs
//!   and window updates are not kept; an RST from either side forgets the flow.
//! - One copy per starting sequence number: a retransmission replaces the older copy
//!   (it carries a newer ACK and window).
//! - Per context (ULID pair), in send order, cleared by the peer's **cumulative ACK**
//!   (RFC 9293 §3.10.7.4): every segment whose end is at or before `SEG.ACK` is gone.
//!   Sequence numbers compare modulo 2³² (RFC 9293 §3.4), and an ACK beyond anything
//!   we sent on the flow is ignored (a stale or forged packet must not empty the
//!   buffer).
//! - Bounded by [`Limits`]: age (older segments are useless: TCP has re-sent them by
//!   then), bytes per context, bytes in total. Over a limit the oldest go first; a
//!   segment larger than the per-context limit is never kept.
//! - TCP only by default ([`Limits::tcp_only`]). With it off, other packets are kept
//!   too and, having no acknowledgements, leave by age and limits only.
//!
//! What it cannot see: while a context's locators equal its ULIDs, the peer's ACKs
//! bypass the daemon (hazard 2), so segments of that time leave by age and limits, and a
//! re-send may repeat data the peer already had. That costs a duplicate segment and
//! earns an immediate duplicate ACK, which is what we want anyway.
//!
//! Sans-IO: every input carries `now`, nothing reads a clock or does I/O.
//!
//! # How to wire it (service loop and `Endpoint` adapter)
//!
//! Best inside the `Endpoint` adapter (the `ProtocolCore` implementation), which sees
//! every packet and the `Endpoint`'s events, so the seam needs no change:
//!
//! 1. The adapter owns one `ResendBuffer::new(Limits::default())`.
//! 2. `ProtocolCore::outbound(now, buf)`: **before** `Endpoint::handle_outbound`
//!    rewrites the packet, `resend.on_outbound(now, buf.packet())` (ULID form). Every
//!    TUN packet may be fed: only peers with a context are routed into the TUN.
//! 3. `ProtocolCore::inbound(now, buf, meta)`: when the answer is `DeliverToTun` (the
//!    buffer holds the restored ULID-form packet), `resend.on_inbound(now,
//!    buf.packet())`.
//! 4. Draining `Endpoint::poll_event`: on `Event::PathChanged { tag, .. }`, look up the
//!    context's ULIDs (`endpoint.context(tag)`), collect `resend.on_path_change(now,
//!    UlidPair::new(local, peer)).map(<[u8]>::to_vec)`, run each copy through
//!    `Endpoint::handle_outbound(now, ..)` like a TUN packet (it is rewritten onto the
//!    new pair and noted as sent for REAP), and queue the `Send` results for the
//!    adapter's `poll_transmit`, which the shell drains right after (style.md's D
//!    order), so they leave at once.
//! 5. On `Event::Closed` / `Event::Failed`: `resend.forget(pair)`.
//! 6. In `ProtocolCore::handle_timeout` (or any periodic tick): `resend.expire(now)`.
//!
//! (In the service loop instead, the seam would need a `CoreEvent::PathChanged { local,
//! peer }`; it has none today.)

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use shim6_wire::ipv6::{
    self,
    chain::{Step, Walker},
};

use crate::visibility::UlidPair;

/// IANA protocol number of TCP.
const TCP: u8 = ipv6::proto::TCP;
/// RFC 9293 §3.1: the fixed TCP header.
const TCP_MIN_HEADER: usize = 20;
/// RFC 9293 §3.1 control bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The buffer's bounds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Segments older than this are dropped: by then TCP has retransmitted them itself
    /// or given up. The default covers the default Send Timeout (15 s, RFC 5534 §7)
    /// plus a few exploration rounds.
    pub max_age: Duration,
    /// Bytes kept per context (whole packets).
    pub max_context_bytes: usize,
    /// Bytes kept over all contexts.
    pub max_total_bytes: usize,
    /// Keep TCP segments only.
    pub tcp_only: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30),
            max_context_bytes: 256 * 1024,
            max_total_bytes: 32 * 1024 * 1024,
            tcp_only: true,
        }
    }
}

/// What [`ResendBuffer::on_outbound`] did with a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Recorded {
    /// Kept.
    Kept,
    /// Kept, replacing the copy of a segment with the same starting sequence number.
    Replaced,
    /// Not kept: it occupies no sequence space (a pure ACK).
    NoSequenceSpace,
    /// Not kept: an RST, and the flow was forgotten.
    Reset,
    /// Not kept: not TCP (with [`Limits::tcp_only`]), or not parseable.
    Ignored,
    /// Not kept: over the size limits even after evicting older segments.
    TooLarge,
}

/// Counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Stats {
    /// Segments kept.
    pub kept: u64,
    /// Segments cleared by an ACK.
    pub acked: u64,
    /// Segments dropped by age.
    pub expired: u64,
    /// Segments evicted by the byte limits.
    pub evicted: u64,
    /// Segments handed out for re-sending.
    pub resent: u64,
}

/// A TCP flow inside a context: (local port, peer port); `None` for non-TCP packets.
type Flow = Option<(u16, u16)>;

#[derive(Clone, Debug)]
struct Segment {
    flow: Flow,
    seq: u32,
    /// First sequence number after the segment (`seq + len + SYN + FIN`).
    end: u32,
    sent: Instant,
    packet: Box<[u8]>,
}

#[derive(Debug, Default)]
struct Context {
    /// In send order (so also in `sent` order: time never goes backwards).
    segments: VecDeque<Segment>,
    bytes: usize,
    /// Per flow, the highest `end` recorded: a segment starting at or after it is new
    /// data, not a retransmission, and needs no search of `segments` (the data plane
    /// calls [`ResendBuffer::on_outbound`] for every packet, and a buffer that no ACK
    /// empties holds hundreds of segments).
    highest: Vec<(Flow, u32)>,
}

/// `a` ≤ `b` in sequence space (RFC 9293 §3.4, modulo 2³²).
pub fn seq_le(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) as i32 >= 0
}

/// What a packet is, as far as this module cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parsed {
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    tcp: Option<TcpInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TcpInfo {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    /// Sequence space occupied: payload + SYN + FIN.
    space: u32,
}

/// Parses the IPv6 header and, for an unfragmented TCP packet, its header.
fn parse(p: &[u8]) -> Option<Parsed> {
    let hdr = ipv6::Packet::new_checked(p).ok()?;
    let (src, dst) = (hdr.src_addr(), hdr.dst_addr());
    let total = hdr.total_len().min(p.len());
    let mut upper = None;
    for step in Walker::from_packet(p).ok()? {
        match step.ok()? {
            // A fragment's payload is not a whole segment: not ours to interpret.
            Step::Header(h) if h.protocol == ipv6::proto::FRAGMENT => return None,
            Step::Header(_) => {}
            Step::Upper(u) => upper = Some(u),
        }
    }
    let upper = upper?;
    if upper.protocol != TCP {
        return Some(Parsed {
            src,
            dst,
            tcp: None,
        });
    }
    let t = p.get(upper.offset..total)?;
    if t.len() < TCP_MIN_HEADER {
        return None;
    }
    let doff = usize::from(t[12] >> 4) * 4;
    if doff < TCP_MIN_HEADER || doff > t.len() {
        return None;
    }
    let flags = t[13];
    let payload = u32::try_from(t.len() - doff).ok()?;
    let space = payload + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
    Some(Parsed {
        src,
        dst,
        tcp: Some(TcpInfo {
            sport: u16::from_be_bytes([t[0], t[1]]),
            dport: u16::from_be_bytes([t[2], t[3]]),
            seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            flags,
            space,
        }),
    })
}

/// Recently sent segments per context, bounded; see the module docs.
#[derive(Debug)]
pub struct ResendBuffer {
    limits: Limits,
    contexts: HashMap<UlidPair, Context>,
    total: usize,
    stats: Stats,
}

impl ResendBuffer {
    /// An empty buffer with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            contexts: HashMap::new(),
            total: 0,
            stats: Stats::default(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Segments and bytes kept for `pair`.
    pub fn buffered(&self, pair: UlidPair) -> (usize, usize) {
        self.contexts
            .get(&pair)
            .map_or((0, 0), |c| (c.segments.len(), c.bytes))
    }

    /// Bytes kept over all contexts.
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    /// A packet the application sent to the peer (from the TUN, ULID form, before any
    /// rewriting).
    pub fn on_outbound(&mut self, now: Instant, packet: &[u8]) -> Recorded {
        let Some(p) = parse(packet) else {
            return Recorded::Ignored;
        };
        let pair = UlidPair::new(p.src, p.dst);
        self.expire_pair(now, pair);
        let (flow, seq, end) = match p.tcp {
            Some(t) if t.flags & RST != 0 => {
                self.forget_flow(pair, Some((t.sport, t.dport)));
                return Recorded::Reset;
            }
            Some(t) if t.space == 0 => return Recorded::NoSequenceSpace,
            Some(t) => (Some((t.sport, t.dport)), t.seq, t.seq.wrapping_add(t.space)),
            None if self.limits.tcp_only => return Recorded::Ignored,
            None => (None, 0, 0),
        };
        let len = packet.len();
        if len > self.limits.max_context_bytes || len > self.limits.max_total_bytes {
            return Recorded::TooLarge;
        }
        let ctx = self.contexts.entry(pair).or_default();
        // A retransmission (same flow, same start) replaces the older copy; a segment
        // starting at or past everything recorded for its flow cannot be one.
        let mut replaced = false;
        let fresh = flow.is_some()
            && ctx
                .highest
                .iter()
                .find(|(f, _)| *f == flow)
                .is_none_or(|&(_, h)| seq_le(h, seq));
        if flow.is_some()
            && !fresh
            && let Some(i) = ctx
                .segments
                .iter()
                .position(|s| s.flow == flow && s.seq == seq)
        {
            if let Some(old) = ctx.segments.remove(i) {
                ctx.bytes -= old.packet.len();
                self.total -= old.packet.len();
                replaced = true;
            }
        }
        // Make room: the oldest of this context first, for both limits.
        while ctx.bytes + len > self.limits.max_context_bytes
            || self.total + len > self.limits.max_total_bytes
        {
            let Some(old) = ctx.segments.pop_front() else {
                break;
            };
            ctx.bytes -= old.packet.len();
            self.total -= old.packet.len();
            self.stats.evicted += 1;
        }
        if self.total + len > self.limits.max_total_bytes {
            // Other contexts hold the rest of the total; this one is empty now.
            if ctx.segments.is_empty() {
                self.contexts.remove(&pair);
            }
            return Recorded::TooLarge;
        }
        if flow.is_some() {
            match ctx.highest.iter_mut().find(|(f, _)| *f == flow) {
                Some((_, h)) => {
                    if seq_le(*h, end) {
                        *h = end;
                    }
                }
                None => ctx.highest.push((flow, end)),
            }
        }
        ctx.segments.push_back(Segment {
            flow,
            seq,
            end,
            sent: now,
            packet: packet.into(),
        });
        ctx.bytes += len;
        self.total += len;
        self.stats.kept += 1;
        if replaced {
            Recorded::Replaced
        } else {
            Recorded::Kept
        }
    }

    /// A packet from the peer, in ULID form (restored by the core): its cumulative ACK
    /// clears what it acknowledges; an RST forgets the flow. Returns how many segments
    /// it cleared.
    pub fn on_inbound(&mut self, now: Instant, packet: &[u8]) -> usize {
        let Some(Parsed {
            src,
            dst,
            tcp: Some(t),
        }) = parse(packet)
        else {
            return 0;
        };
        // Inbound: the peer is the source; our flow key is (our port, their port).
        let pair = UlidPair::new(dst, src);
        let flow = Some((t.dport, t.sport));
        self.expire_pair(now, pair);
        if t.flags & RST != 0 {
            return self.forget_flow(pair, flow);
        }
        if t.flags & ACK == 0 {
            return 0;
        }
        let Some(ctx) = self.contexts.get_mut(&pair) else {
            return 0;
        };
        // SND.MAX of the flow as far as we kept it: the end of the latest segment sent.
        let Some(snd_max) = ctx
            .segments
            .iter()
            .filter(|s| s.flow == flow)
            .map(|s| s.end)
            .reduce(|a, b| if seq_le(a, b) { b } else { a })
        else {
            return 0;
        };
        // RFC 9293 §3.10.7.4: an ACK of something not yet sent is ignored.
        if !seq_le(t.ack, snd_max) {
            return 0;
        }
        let before = ctx.segments.len();
        let mut freed = 0;
        ctx.segments.retain(|s| {
            let acked = s.flow == flow && seq_le(s.end, t.ack);
            if acked {
                freed += s.packet.len();
            }
            !acked
        });
        let cleared = before - ctx.segments.len();
        ctx.bytes -= freed;
        self.total -= freed;
        self.stats.acked += cleared as u64;
        if ctx.segments.is_empty() {
            self.contexts.remove(&pair);
        }
        cleared
    }

    /// REAP moved `pair` to a new locator pair: the segments still unacknowledged and
    /// younger than [`Limits::max_age`], in the order they were sent. They stay in the
    /// buffer (the new path may fail too) until acknowledged or expired.
    pub fn on_path_change(
        &mut self,
        now: Instant,
        pair: UlidPair,
    ) -> impl Iterator<Item = &[u8]> + '_ {
        self.expire_pair(now, pair);
        let segments = self.contexts.get(&pair).map(|c| &c.segments);
        let n = segments.map_or(0, VecDeque::len);
        self.stats.resent += n as u64;
        segments.into_iter().flatten().map(|s| &*s.packet)
    }

    /// The context is gone: drop everything kept for it.
    pub fn forget(&mut self, pair: UlidPair) {
        if let Some(c) = self.contexts.remove(&pair) {
            self.total -= c.bytes;
        }
    }

    fn forget_flow(&mut self, pair: UlidPair, flow: Flow) -> usize {
        let Some(ctx) = self.contexts.get_mut(&pair) else {
            return 0;
        };
        let before = ctx.segments.len();
        let mut freed = 0;
        ctx.segments.retain(|s| {
            let gone = s.flow == flow;
            if gone {
                freed += s.packet.len();
            }
            !gone
        });
        ctx.bytes -= freed;
        self.total -= freed;
        ctx.highest.retain(|(f, _)| *f != flow);
        let n = before - ctx.segments.len();
        if ctx.segments.is_empty() {
            self.contexts.remove(&pair);
        }
        n
    }

    /// Drops every context's segments older than [`Limits::max_age`], releasing their
    /// memory. The handlers expire the context they touch; call this from a periodic
    /// tick (once a second) so idle contexts let go too. O(contexts).
    pub fn expire(&mut self, now: Instant) {
        let pairs: Vec<UlidPair> = self.contexts.keys().copied().collect();
        for pair in pairs {
            self.expire_pair(now, pair);
        }
    }

    /// Drops `pair`'s segments older than `max_age` (its deque is in send order).
    fn expire_pair(&mut self, now: Instant, pair: UlidPair) {
        let Some(ctx) = self.contexts.get_mut(&pair) else {
            return;
        };
        while ctx
            .segments
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.sent) > self.limits.max_age)
        {
            if let Some(s) = ctx.segments.pop_front() {
                ctx.bytes -= s.packet.len();
                self.total -= s.packet.len();
                self.stats.expired += 1;
            }
        }
        if ctx.segments.is_empty() {
            self.contexts.remove(&pair);
        }
    }
}

#[cfg(test)]
mod tests;
