//! Context recovery after a peer lost its state (RFC 5533 §7.17–§7.19): R1bis for an
//! unknown tag, I2bis to rebuild the context, and the I2 / I2bis retransmissions and
//! fall-backs of the handshake timers (§7.8, §7.11, §7.18).

use std::time::Instant;

use shim6_wire::shim6::handshake::{I2bis, R1bis};
use shim6_wire::shim6::option::{OptionSliceExt, Repr as OptionRepr, UlidPair};
use shim6_wire::shim6::{ContextTag, Message};

use crate::config::{
    I1_RETRIES_MAX, I1_TIMEOUT, I2_RETRIES_MAX, I2_TIMEOUT, I2BIS_RETRIES_MAX, I2BIS_TIMEOUT,
    NO_R1_HOLDDOWN_TIME,
};
use crate::context::{Context, Handshake, State, backoff};
use crate::endpoint::{CloseReason, Endpoint, Event, Rx};
use crate::error::{Error, PeerMisbehaved};
use crate::validator::ValidatorInput;

impl Endpoint {
    /// Answers a payload header or a type 64–127 message naming the unknown tag
    /// `packet_tag` with an R1bis (RFC 5533 §7.17), rate limited (digest §7.12).
    pub(crate) fn send_r1bis(&mut self, rx: &Rx<'_>, packet_tag: ContextTag) {
        if !self.r1bis_allowed(rx.now) {
            return;
        }
        let input = ValidatorInput::R1bis {
            packet_tag,
            src: rx.src,
            dst: rx.dst,
        };
        let (nonce, v) = self.validators.issue(rx.now, &mut self.rng, &input);
        let m = Message::R1bis(R1bis {
            packet_context_tag: packet_tag,
            responder_nonce: nonce,
            options: vec![OptionRepr::ResponderValidator(v.to_vec())],
        });
        self.send(rx.dst, rx.src, &m);
    }

    /// R1bis received (RFC 5533 §7.18): the context whose CT(peer) is the Packet
    /// Context Tag and whose current pair is the reversed addresses.
    pub(crate) fn on_r1bis(&mut self, rx: Rx<'_>, m: &R1bis) -> Result<(), Error> {
        let candidates = self
            .by_peer_tag
            .get(&m.packet_context_tag)
            .cloned()
            .unwrap_or_default();
        // §7.18 matches src/dst against Lp(peer)/Lp(local). We accept any verified pair
        // of the context (src ∈ Ls(peer), dst ours): during an exploration REAP probes
        // other pairs, and the R1bis answering such a probe is the only signal that the
        // peer lost its state. The validator still binds the exchange to this pair.
        let tag = candidates
            .into_iter()
            .find(|t| {
                self.contexts
                    .get(t)
                    .is_some_and(|c| c.peer_has(&rx.src) && self.identity.is_local(&rx.dst))
            })
            .ok_or(PeerMisbehaved::NoMatchingContext)?;
        // §7.18 / digest §7.7: only ESTABLISHED acts; I1-SENT, I2-SENT and I2BIS-SENT
        // discard (a recovery is already under way or CT(peer) is not in use).
        if self.contexts[&tag].state != State::Established {
            return Err(PeerMisbehaved::WrongState.into());
        }
        let validator = m
            .options
            .responder_validator()
            .ok_or(PeerMisbehaved::MissingValidator)?
            .to_vec();
        let Some(mut ctx) = self.take(tag) else {
            return Err(PeerMisbehaved::NoMatchingContext.into());
        };
        ctx.state = State::I2bisSent;
        ctx.init_nonce = self.alloc_nonce();
        ctx.handshake = Some(Handshake {
            responder_nonce: m.responder_nonce,
            validator,
            packet_tag: Some(m.packet_context_tag),
            pair: Some((rx.dst, rx.src)),
        });
        ctx.retries = 0;
        ctx.deadline = Some(rx.now + backoff(&mut self.rng, I2BIS_TIMEOUT, 0, None));
        self.send_i2bis(&ctx);
        self.put(ctx);
        Ok(())
    }

    /// Sends I2bis on the current pair (RFC 5533 §7.18).
    pub(crate) fn send_i2bis(&mut self, ctx: &Context) {
        let Some(h) = &ctx.handshake else { return };
        let Some(packet_tag) = h.packet_tag else {
            return;
        };
        // §7.18: on the R1bis's pair, reversed.
        let (src, dst) = h.pair.unwrap_or((ctx.lp_local, ctx.lp_peer));
        let mut options = vec![OptionRepr::ResponderValidator(h.validator.clone())];
        // §5.9: ULID Pair when the addresses are not the ULIDs.
        if (src, dst) != (ctx.key.ulid_local, ctx.key.ulid_peer) {
            options.push(OptionRepr::UlidPair(UlidPair {
                sender: ctx.key.ulid_local,
                receiver: ctx.key.ulid_peer,
            }));
        }
        if ctx.key.fii != 0 {
            options.push(OptionRepr::ForkedInstanceId(ctx.key.fii));
        }
        options.extend(self.our_locator_options(&ctx.key.ulid_local));
        let m = Message::I2bis(I2bis {
            initiator_context_tag: ctx.ct_local,
            initiator_nonce: ctx.init_nonce,
            responder_nonce: h.responder_nonce,
            packet_context_tag: packet_tag,
            options,
        });
        self.send(src, dst, &m);
    }

    /// I2bis received (RFC 5533 §7.19): the R1bis-style validator over the Packet
    /// Context Tag and the locators, then as I2.
    pub(crate) fn on_i2bis(&mut self, rx: Rx<'_>, m: &I2bis) -> Result<(), Error> {
        let (peer, local) = m
            .options
            .ulid_pair()
            .map_or((rx.src, rx.dst), |u| (u.sender, u.receiver));
        let key = crate::context::ContextKey {
            ulid_local: local,
            ulid_peer: peer,
            fii: m.options.forked_instance_id().unwrap_or(0),
        };
        self.check_our_ulid(&key.ulid_local)?;
        if !self.policy.accept_incoming {
            return Err(PeerMisbehaved::WrongState.into());
        }
        let validator = m
            .options
            .responder_validator()
            .ok_or(PeerMisbehaved::MissingValidator)?;
        let input = ValidatorInput::R1bis {
            packet_tag: m.packet_context_tag,
            src: rx.src,
            dst: rx.dst,
        };
        self.validators
            .check(rx.now, &mut self.rng, m.responder_nonce, &input, validator)?;
        let opts = self.peer_options(&rx, key.ulid_peer, &m.options, None, false)?;
        self.accept_i2_like(rx, key, m.initiator_context_tag, m.initiator_nonce, opts)
    }

    /// A context's retransmission / hold-down / update / REAP / teardown deadline.
    pub(crate) fn context_timeout(&mut self, now: Instant, tag: ContextTag) {
        let Some(mut ctx) = self.take(tag) else {
            return;
        };
        if ctx.deadline.is_some_and(|d| d <= now) {
            match ctx.state {
                State::I1Sent => {
                    if ctx.retries < I1_RETRIES_MAX {
                        // §7.8: retransmit with back-off.
                        ctx.retries += 1;
                        ctx.deadline =
                            Some(now + backoff(&mut self.rng, I1_TIMEOUT, ctx.retries, None));
                        self.send_i1(&ctx);
                    } else {
                        // §7.8: no answer → E-FAILED for NO_R1_HOLDDOWN_TIME.
                        self.unindex_nonce(&ctx);
                        ctx.state = State::EFailed;
                        ctx.deadline = Some(now + NO_R1_HOLDDOWN_TIME);
                        self.events.push_back(Event::Failed {
                            key: ctx.key,
                            state: State::EFailed,
                        });
                    }
                }
                State::I2Sent => {
                    if ctx.retries < I2_RETRIES_MAX {
                        // §7.11: retransmit the I2 (validator may expire at the peer).
                        ctx.retries += 1;
                        ctx.deadline =
                            Some(now + backoff(&mut self.rng, I2_TIMEOUT, ctx.retries, None));
                        self.send_i2(&ctx);
                    } else {
                        // §7.11: fall back to I1.
                        self.enter_i1_sent(now, &mut ctx);
                    }
                }
                State::I2bisSent => {
                    if ctx.retries < I2BIS_RETRIES_MAX {
                        ctx.retries += 1;
                        ctx.deadline =
                            Some(now + backoff(&mut self.rng, I2BIS_TIMEOUT, ctx.retries, None));
                        self.send_i2bis(&ctx);
                    } else {
                        // §7.18: fall back to I1 (from the current pair, with the ULID
                        // Pair option if it is not the ULIDs).
                        self.enter_i1_sent(now, &mut ctx);
                    }
                }
                State::EFailed | State::NoSupport => {
                    // App. B: the hold-down is over → IDLE (the context disappears).
                    self.forget(&ctx);
                    self.stats.contexts_removed += 1;
                    return;
                }
                State::Established | State::Idle => ctx.deadline = None,
            }
        }
        if ctx.update.as_ref().is_some_and(|u| u.deadline <= now) {
            self.retransmit_update(now, &mut ctx);
        }
        if ctx
            .reap
            .as_ref()
            .and_then(reap::Reap::poll_timeout)
            .is_some_and(|t| t <= now)
        {
            if let Some(r) = ctx.reap.as_mut() {
                r.handle_timeout(now);
            }
            self.pump_reap(now, &mut ctx);
        }
        // §7.20: quiescent for the teardown time → unilateral teardown.
        if ctx.state == State::Established && ctx.last_activity + self.policy.teardown_idle <= now {
            self.forget(&ctx);
            self.stats.contexts_removed += 1;
            self.events.push_back(Event::Closed {
                tag,
                key: ctx.key,
                reason: CloseReason::Idle,
            });
            return;
        }
        self.put(ctx);
    }
}
