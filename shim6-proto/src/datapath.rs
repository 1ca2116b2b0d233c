//! Payload decisions for the data plane (RFC 5533 §5.1, §12; digest §1.11, §1.13):
//! rewrite outbound packets onto the current locator pair, restore inbound ones to the
//! ULIDs, translate `ICMPv6` errors about shimmed packets, and tell REAP about traffic.
//!
//! Buffers belong to the caller (boringtun's habit): every operation is in place, and
//! the result says which range of the buffer to send or deliver. Outbound packets should
//! sit at `buf[8..]` or later so the 8-octet payload header is made by moving only the
//! IPv6 header ([`Shift::Front`]); without headroom the payload moves instead (8 octets
//! of tailroom needed).

use std::net::Ipv6Addr;
use std::ops::Range;
use std::time::Instant;

use shim6_wire::ipv6::icmp::{self, TYPE_DST_UNREACHABLE, TYPE_PARAM_PROBLEM, TYPE_TIME_EXCEEDED};
use shim6_wire::ipv6::shim::{self, PayloadHeaderAt, Shift};
use shim6_wire::ipv6::{self, proto};
use shim6_wire::shim6::ContextTag;
use shim6_wire::shim6::payload::HEADER_LEN as PAYLOAD_HEADER_LEN;

use crate::config::ICMP_HOLDDOWN_TIME;
use crate::context::{ContextKey, State};
use crate::endpoint::{Endpoint, Event, Inbound, Outbound, Rx, Sent};
use crate::error::DropReason;
use crate::reap_glue::drain_reap;

impl Endpoint {
    /// A packet from the TUN, `buf[packet]` a complete IPv6 packet with ULIDs as
    /// addresses (RFC 5533 §12.1 via digest §1.11), sent with the default context
    /// (FII 0). Counts as payload sent for REAP.
    pub fn handle_outbound(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Outbound {
        self.handle_outbound_fii(now, buf, packet, 0)
    }

    /// As [`handle_outbound`](Self::handle_outbound), through the forked context `fii`
    /// of the packet's ULID pair (RFC 5533 §5.15.7: "forking only affects which context
    /// a host sends with"; the shell chooses, e.g. per flow). An FII without a context
    /// passes the packet through unchanged.
    pub fn handle_outbound_fii(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: Range<usize>,
        fii: u32,
    ) -> Outbound {
        let now = self.advance(now);
        let r = self.outbound(now, buf, packet, fii);
        match &r {
            Outbound::Drop(reason) => self.stats.count_drop(*reason),
            Outbound::PassThrough => self.stats.payload_passed += 1,
            Outbound::Send(_) => self.stats.payload_rewritten += 1,
        }
        r
    }

    fn outbound(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        range: Range<usize>,
        fii: u32,
    ) -> Outbound {
        let Some(pkt) = buf.get(range.clone()) else {
            return Outbound::Drop(DropReason::Internal);
        };
        let Ok(ip) = ipv6::Packet::new_checked(pkt) else {
            return Outbound::Drop(DropReason::Malformed);
        };
        // Digest §1.12: outgoing ULP packets map to (ULID pair, FII), FII 0 by default.
        let key = ContextKey {
            ulid_local: ip.src_addr(),
            ulid_peer: ip.dst_addr(),
            fii,
        };
        let Some(&tag) = self.by_key.get(&key) else {
            return Outbound::PassThrough;
        };
        // The hot path: the context stays in the table (no take / put).
        let Some(ctx) = self.contexts.get_mut(&tag) else {
            return Outbound::PassThrough;
        };
        // §12.1: only ESTABLISHED and I2BIS-SENT have CT(peer) and rewrite.
        let (Some(ct_peer), true) = (ctx.ct_peer, ctx.state.sends_payload()) else {
            return Outbound::PassThrough;
        };
        ctx.last_activity = now;
        if let Some(r) = ctx.reap.as_mut() {
            r.handle_payload_sent(now);
        }
        let out = drain_reap(ctx);
        let (src, dst) = (ctx.lp_local, ctx.lp_peer);
        self.emit_reap(out);
        self.arm(tag);
        // §12.1: locators equal to the ULIDs → no Shim6 header at all.
        if (src, dst) == (key.ulid_local, key.ulid_peer) {
            return Outbound::PassThrough;
        }
        let shift = if range.start >= PAYLOAD_HEADER_LEN {
            Shift::Front
        } else {
            Shift::Tail
        };
        let Ok(new) = shim::insert_payload_header(buf, range, ct_peer, shift) else {
            // No headroom or tailroom, or an extension chain we cannot walk.
            return Outbound::Drop(DropReason::Internal);
        };
        // §5.1: transport checksums are left alone (they cover the ULIDs).
        if shim::rewrite_addresses(&mut buf[new.clone()], &src, &dst).is_err() {
            return Outbound::Drop(DropReason::Internal);
        }
        Outbound::Send(Sent {
            packet: new,
            src,
            dst,
        })
    }

    /// A packet with a payload extension header (RFC 5533 §12.2).
    pub(crate) fn inbound_payload(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        range: Range<usize>,
        at: PayloadHeaderAt,
    ) -> Inbound {
        let tag = at.repr.context_tag;
        let (src, dst) = {
            let p = ipv6::Packet::new_unchecked(&buf[range.clone()]);
            (p.src_addr(), p.dst_addr())
        };
        let Some(state) = self.live_state(tag) else {
            // §12.2: no context → SHOULD send R1bis (rate limited).
            let owned = buf[range.clone()].to_vec();
            let rx = Rx {
                now,
                src,
                dst,
                packet: &owned,
                shim_offset: at.offset,
            };
            self.send_r1bis(&rx, tag);
            return Inbound::Drop(DropReason::UnknownContextTag);
        };
        match state {
            // App. B: I1-SENT discards payload.
            State::I1Sent => return Inbound::Drop(DropReason::WrongState),
            // App. B: I2-SENT / I2BIS-SENT: the peer has the context, our R2 was lost;
            // resend and process.
            State::I2Sent | State::I2bisSent => self.resend_handshake(tag),
            _ => {}
        }
        let Some(ctx) = self.contexts.get_mut(&tag) else {
            return Inbound::Drop(DropReason::Internal);
        };
        let Ok(new) = shim::remove_at(buf, range, &at, Shift::Front) else {
            return Inbound::Drop(DropReason::Malformed);
        };
        // §12.2: src := ULID(peer), dst := ULID(local).
        let (ulid_peer, ulid_local) = (ctx.key.ulid_peer, ctx.key.ulid_local);
        if shim::rewrite_addresses(&mut buf[new.clone()], &ulid_peer, &ulid_local).is_err() {
            return Inbound::Drop(DropReason::Malformed);
        }
        ctx.last_activity = now;
        if let Some(r) = ctx.reap.as_mut() {
            r.handle_payload_received(
                now,
                Some(reap::Pair {
                    local: dst,
                    remote: src,
                }),
            );
        }
        let out = drain_reap(ctx);
        self.emit_reap(out);
        self.arm(tag);
        self.stats.payload_restored += 1;
        Inbound::DeliverToTun(new)
    }

    /// Payload from the peer that needed no rewriting reached the application without
    /// passing through us (architecture hazard 2): the shell reports it (from a kernel
    /// counter or a socket filter) so that REAP's Send timer knows the path works.
    /// Unknown pairs are ignored.
    pub fn note_peer_activity(&mut self, now: Instant, ulid_local: Ipv6Addr, ulid_peer: Ipv6Addr) {
        let now = self.advance(now);
        let key = ContextKey {
            ulid_local,
            ulid_peer,
            fii: 0,
        };
        let Some(&tag) = self.by_key.get(&key) else {
            return;
        };
        let Some(mut ctx) = self.take(tag) else {
            return;
        };
        if ctx.state.sends_payload() {
            ctx.last_activity = now;
            if let Some(r) = ctx.reap.as_mut() {
                r.handle_payload_received(
                    now,
                    Some(reap::Pair {
                        local: ulid_local,
                        remote: ulid_peer,
                    }),
                );
            }
            self.pump_reap(now, &mut ctx);
        }
        self.put(ctx);
    }

    /// An `ICMPv6` error (RFC 5533 §5.1 / digest §1.13): "unrecognized Next Header"
    /// for our I1 → NO-SUPPORT (§7.6, digest §7.6); an error quoting a shimmed packet →
    /// translated back to the ULIDs for the ULP, and a REAP hint for unreachability.
    pub(crate) fn inbound_icmp(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        range: Range<usize>,
        icmp_at: usize,
    ) -> Inbound {
        let pkt = &buf[range.clone()];
        let total = ipv6::Packet::new_unchecked(pkt).total_len().min(pkt.len());
        let Some(msg) = pkt.get(icmp_at..total) else {
            return Inbound::Drop(DropReason::Malformed);
        };
        let Ok(view) = icmp::Packet::new_checked(msg) else {
            return Inbound::Drop(DropReason::Malformed);
        };
        let (ty, code) = (view.msg_type(), view.code());
        // 1. Parameter Problem code 1 (unrecognized Next Header) quoting our I1.
        if ty == TYPE_PARAM_PROBLEM && code == 1 {
            if let Some((tag, qsrc, qdst)) = quoted_i1(view.body()) {
                let hit = self.contexts.get(&tag).is_some_and(|c| {
                    c.state == State::I1Sent && (c.lp_local, c.lp_peer) == (qsrc, qdst)
                });
                if hit {
                    if let Some(mut ctx) = self.take(tag) {
                        // RFC 5533 §7.6 / App. B diagram: NO-SUPPORT, ICMP_HOLDDOWN_TIME.
                        self.unindex_nonce(&ctx);
                        ctx.state = State::NoSupport;
                        ctx.deadline = Some(now + ICMP_HOLDDOWN_TIME);
                        self.events.push_back(Event::Failed {
                            key: ctx.key,
                            state: State::NoSupport,
                        });
                        self.put(ctx);
                    }
                    return Inbound::Consumed;
                }
                return Inbound::Drop(DropReason::NoMatchingContext);
            }
        }
        // 2. An error about a packet carrying our payload header.
        let Ok(Some(q)) = icmp::quoted_shim6(msg) else {
            return Inbound::Drop(DropReason::NotShim6);
        };
        // Digest §1.12: the quoted tag is CT(peer), the quoted src/dst our pair.
        let Some(tag) = self.by_peer_tag.get(&q.tag).and_then(|v| {
            v.iter().copied().find(|t| {
                self.contexts
                    .get(t)
                    .is_some_and(|c| (c.lp_local, c.lp_peer) == (q.src, q.dst))
            })
        }) else {
            return Inbound::Drop(DropReason::NoMatchingContext);
        };
        let (ulid_local, ulid_peer) = {
            let c = &self.contexts[&tag];
            (c.key.ulid_local, c.key.ulid_peer)
        };
        let outer_src = ipv6::Packet::new_unchecked(pkt).src_addr();
        let icmp_range = range.start + icmp_at..range.start + total;
        let Ok(new_len) =
            icmp::translate_quoted(&mut buf[icmp_range.clone()], &q, &ulid_local, &ulid_peer)
        else {
            // A Parameter Problem about the Shim6 header itself, or about the Next
            // Header octet announcing it: ours to handle, not passed up (digest §1.13).
            // Translated, the latter would tell the ULP that its own header was
            // unrecognized. A Linux receiver sends it whenever its protocol-140 socket
            // is full (docs/bench/dataplane.md): the packet is lost, nothing more.
            self.stats.icmp_about_shim6 += 1;
            return Inbound::Consumed;
        };
        // The outer packet: 8 octets shorter, delivered to ULID(local), checksum anew.
        let new_total = icmp_at + new_len;
        let mut ip = ipv6::Packet::new_unchecked(&mut buf[range.start..range.start + new_total]);
        ip.set_payload_len((new_total - ipv6::HEADER_LEN) as u16);
        ip.set_dst_addr(ulid_local);
        let mut m =
            icmp::Packet::new_unchecked(&mut buf[range.start + icmp_at..range.start + new_total]);
        m.fill_checksum(&outer_src, &ulid_local);
        // RFC 5534 §3.3: unreachability may be forged, so only a hint (probe first).
        if ty == TYPE_DST_UNREACHABLE && code != 4 || ty == TYPE_TIME_EXCEEDED {
            if let Some(mut ctx) = self.take(tag) {
                if let Some(r) = ctx.reap.as_mut() {
                    r.handle_hint(
                        now,
                        reap::Hint::Icmp(reap::Pair {
                            local: q.src,
                            remote: q.dst,
                        }),
                    );
                }
                self.pump_reap(now, &mut ctx);
                self.put(ctx);
            }
        }
        self.stats.icmp_translated += 1;
        Inbound::DeliverToTun(range.start..range.start + new_total)
    }
}

/// The Initiator Context Tag and addresses of an I1 quoted in an `ICMPv6` error body,
/// if the quote is one (plain IPv6 header, Next Header 140, P = 0, type 1).
fn quoted_i1(body: &[u8]) -> Option<(ContextTag, Ipv6Addr, Ipv6Addr)> {
    let q = ipv6::Packet::new_checked(body).ok()?;
    if q.next_header() != proto::SHIM6 {
        return None;
    }
    let shim = body.get(ipv6::HEADER_LEN..ipv6::HEADER_LEN + 12)?;
    // RFC 5533 §5.3: octet 2 = P (0) | type (1 = I1); the tag at octets 6..12.
    if shim[2] != 1 {
        return None;
    }
    let mut t = [0u8; 6];
    t.copy_from_slice(&shim[6..12]);
    Some((ContextTag::read(t), q.src_addr(), q.dst_addr()))
}
