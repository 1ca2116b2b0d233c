//! REAP integration (RFC 5534; issue 5 item 2): one [`reap::Reap`] per ESTABLISHED
//! context, fed with the context's traffic, timers and locator sets; its Keepalives and
//! Probes encoded with CT(peer); its events turned into endpoint events, and
//! `PathChanged` switching the pair used for rewriting.

use std::time::Instant;

use shim6_wire::shim6::option::OptionSliceExt;
use shim6_wire::shim6::probe::{Keepalive, Probe};
use shim6_wire::shim6::{ContextTag, Message};

use crate::context::{Context, State};
use crate::endpoint::{Endpoint, Event, Rx};
use crate::error::{Error, PeerMisbehaved};

impl Endpoint {
    /// Our locators as REAP sees them, the context's ULID included (it is the first
    /// current pair, RFC 5534 §3.4).
    fn reap_locals(&self, ctx: &Context) -> Vec<reap::Locator> {
        let mut v = self.identity.locators().to_vec();
        if !v.iter().any(|l| l.addr == ctx.key.ulid_local) {
            v.push(reap::Locator::new(ctx.key.ulid_local));
        }
        v
    }

    fn reap_peers(ctx: &Context) -> Vec<reap::Locator> {
        ctx.peer_locators
            .iter()
            .map(|l| reap::Locator::with_pref(l.addr, l.pref))
            .collect()
    }

    /// Starts REAP when a context becomes ESTABLISHED (Operational, on the current pair).
    pub(crate) fn start_reap(&mut self, now: Instant, ctx: &mut Context) {
        if !self.config.enable_reap {
            return;
        }
        let seed = self.derive_seed();
        let locals = self.reap_locals(ctx);
        let peers = Self::reap_peers(ctx);
        let current = reap::Pair {
            local: ctx.lp_local,
            remote: ctx.lp_peer,
        };
        // Errors here are configuration or locator-set problems (e.g. no usable
        // address); the context still works on its current pair without REAP.
        if let Ok(mut r) = reap::Reap::new(
            self.config.reap.clone(),
            seed,
            &locals,
            &peers,
            current,
            now,
        ) {
            if let Some(k) = ctx.peer_keepalive_timeout {
                r.handle_peer_keepalive_timeout(now, k);
            }
            ctx.reap = Some(r);
        }
    }

    /// Ls(peer) or its preferences changed (I2, UR): REAP re-plans (RFC 5534 §4.1: a
    /// peer locator gone or BROKEN may start exploring).
    pub(crate) fn refresh_reap_peers(&mut self, now: Instant, ctx: &mut Context) {
        let peers = Self::reap_peers(ctx);
        if let Some(r) = ctx.reap.as_mut() {
            let _ = r.handle_peer_locators(now, &peers);
            if let Some(k) = ctx.peer_keepalive_timeout {
                r.handle_peer_keepalive_timeout(now, k);
            }
        }
        self.pump_reap(now, ctx);
    }

    /// Our locators changed: REAP learns the new set; a vanished current source is a
    /// trusted local failure (RFC 5534 §3.2).
    pub(crate) fn local_locators_changed(
        &mut self,
        now: Instant,
        ctx: &mut Context,
        before: &[reap::Locator],
    ) {
        let locals = self.reap_locals(ctx);
        if let Some(r) = ctx.reap.as_mut() {
            let _ = r.handle_local_locators(now, &locals);
            for gone in before
                .iter()
                .filter(|b| !locals.iter().any(|l| l.addr == b.addr))
            {
                r.handle_hint(now, reap::Hint::LocalAddressDown(gone.addr));
            }
        }
        self.pump_reap(now, ctx);
    }

    /// A trusted or untrusted failure hint (interface down, address removed, ICMP)
    /// for every context REAP runs on (RFC 5534 §3.2, §3.3).
    pub fn handle_hint(&mut self, now: Instant, hint: reap::Hint) {
        let now = self.advance(now);
        let tags: Vec<_> = self
            .contexts
            .iter()
            .filter(|(_, c)| c.reap.is_some())
            .map(|(t, _)| *t)
            .collect();
        for tag in tags {
            let Some(mut ctx) = self.take(tag) else {
                continue;
            };
            if let Some(r) = ctx.reap.as_mut() {
                r.handle_hint(now, hint);
            }
            self.pump_reap(now, &mut ctx);
            self.put(ctx);
        }
    }

    /// Drains REAP: Keepalives and Probes go out with CT(peer) on the pair REAP chose;
    /// events become endpoint events; `PathChanged` moves payload to the new pair.
    pub(crate) fn pump_reap(&mut self, _now: Instant, ctx: &mut Context) {
        let out = drain_reap(ctx);
        self.emit_reap(out);
    }

    /// Sends and reports what [`drain_reap`] collected.
    pub(crate) fn emit_reap(&mut self, out: ReapOutput) {
        if let Some(ct_peer) = out.ct_peer {
            for t in out.transmits {
                let pair = t.pair();
                let m = match t {
                    reap::Transmit::Keepalive { .. } => Message::Keepalive(Keepalive {
                        receiver_context_tag: ct_peer,
                        options: Vec::new(),
                    }),
                    reap::Transmit::Probe(p) => Message::Probe(Probe {
                        receiver_context_tag: ct_peer,
                        state: p.state,
                        sent: p.sent,
                        received: p.received,
                        options: Vec::new(),
                    }),
                };
                self.send(pair.local, pair.remote, &m);
            }
        }
        self.events.extend(out.events);
    }

    /// A control message other than Keepalive / Probe was received on a context: it
    /// counts as payload for REAP (RFC 5534 §5.1 "any packet").
    pub(crate) fn note_control_received(&mut self, now: Instant, ctx: &mut Context, rx: &Rx<'_>) {
        ctx.last_activity = now;
        if let Some(r) = ctx.reap.as_mut() {
            r.handle_payload_received(
                now,
                Some(reap::Pair {
                    local: rx.dst,
                    remote: rx.src,
                }),
            );
        }
        self.pump_reap(now, ctx);
    }

    /// A control message other than Keepalive / Probe was sent on a context.
    pub(crate) fn note_control_sent(&mut self, now: Instant, ctx: &mut Context) {
        if let Some(r) = ctx.reap.as_mut() {
            r.handle_payload_sent(now);
        }
        self.pump_reap(now, ctx);
    }

    /// The common checks of Keepalive and Probe (RFC 5534 §5, RFC 5533 §12.3): the
    /// context by CT(local) (else R1bis), addresses in Ls(peer) / Ls(local) (else
    /// R1bis, the sender's context is stale), and the state.
    fn reap_context(&mut self, rx: &Rx<'_>, tag: ContextTag) -> Result<Box<Context>, Error> {
        let Some(state) = self.live_state(tag) else {
            self.send_r1bis(rx, tag);
            return Err(PeerMisbehaved::UnknownContextTag.into());
        };
        let ok = {
            let c = &self.contexts[&tag];
            c.peer_has(&rx.src) && self.identity.is_local(&rx.dst)
        };
        if !ok {
            self.send_r1bis(rx, tag);
            return Err(PeerMisbehaved::SourceLocatorUnknown(rx.src).into());
        }
        match state {
            State::I1Sent => return Err(PeerMisbehaved::WrongState.into()),
            State::I2Sent | State::I2bisSent => self.resend_handshake(tag),
            _ => {}
        }
        self.take(tag)
            .ok_or_else(|| PeerMisbehaved::NoMatchingContext.into())
    }

    /// Keepalive received (RFC 5534 §5.1, §6.6).
    pub(crate) fn on_keepalive(&mut self, rx: Rx<'_>, m: &Keepalive) -> Result<(), Error> {
        let mut ctx = self.reap_context(&rx, m.receiver_context_tag)?;
        ctx.last_activity = rx.now;
        if let Some(k) = m.options.keepalive_timeout() {
            ctx.peer_keepalive_timeout = Some(k);
        }
        if let Some(r) = ctx.reap.as_mut() {
            r.handle_keepalive(
                rx.now,
                reap::Pair {
                    local: rx.dst,
                    remote: rx.src,
                },
            );
        }
        self.pump_reap(rx.now, &mut ctx);
        self.put(ctx);
        Ok(())
    }

    /// Probe received (RFC 5534 §5.2, §6.7–§6.9).
    pub(crate) fn on_probe(&mut self, rx: Rx<'_>, m: &Probe) -> Result<(), Error> {
        // RFC 5534 §5.2: the first sent record describes this very probe; one that
        // does not match the IPv6 header was not sent on this path (reap leaves the
        // check to us) and its reports are not trusted.
        let first_ok = m
            .sent
            .first()
            .is_some_and(|r| (r.src, r.dst) == (rx.src, rx.dst));
        if !first_ok {
            return Err(PeerMisbehaved::ProbeRecordMismatch.into());
        }
        let mut ctx = self.reap_context(&rx, m.receiver_context_tag)?;
        ctx.last_activity = rx.now;
        if let Some(r) = ctx.reap.as_mut() {
            r.handle_probe(
                rx.now,
                reap::Pair {
                    local: rx.dst,
                    remote: rx.src,
                },
                reap::ProbeIn {
                    state: m.state,
                    sent: &m.sent,
                    received: &m.received,
                },
            );
        }
        self.pump_reap(rx.now, &mut ctx);
        self.put(ctx);
        Ok(())
    }
}

/// What a REAP instance produced, taken out of the context so that the context can stay
/// borrowed from the table on the data path.
#[derive(Debug, Default)]
pub(crate) struct ReapOutput {
    ct_peer: Option<ContextTag>,
    transmits: Vec<reap::Transmit>,
    events: Vec<Event>,
}

/// Empties the context's REAP queues; applies `PathChanged` to the context (RFC 5534
/// §4.2: payload uses the new pair from now on) and maps REAP events to endpoint events.
pub(crate) fn drain_reap(ctx: &mut Context) -> ReapOutput {
    let mut out = ReapOutput {
        ct_peer: ctx.ct_peer,
        ..ReapOutput::default()
    };
    let Some(r) = ctx.reap.as_mut() else {
        return out;
    };
    while let Some(t) = r.poll_transmit() {
        out.transmits.push(t);
    }
    let tag = ctx.ct_local;
    while let Some(e) = r.poll_event() {
        match e {
            reap::Event::PathChanged { from, to } => {
                ctx.lp_local = to.local;
                ctx.lp_peer = to.remote;
                out.events.push(Event::PathChanged { tag, from, to });
            }
            reap::Event::PathFailed { pair, cause } => {
                out.events.push(Event::PathFailed { tag, pair, cause });
            }
            reap::Event::PathUsable { pair } => out.events.push(Event::PathUsable { tag, pair }),
            reap::Event::PeerUnreachable => out.events.push(Event::PeerUnreachable { tag }),
            reap::Event::StateChanged { .. } | reap::Event::Recovered { .. } => {}
        }
    }
    out
}
