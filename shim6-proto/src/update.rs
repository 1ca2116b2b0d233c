//! Locator updates (RFC 5533 §10): our locator list changes → Update Request to every
//! established peer (one outstanding, retransmitted forever with back-off capped at
//! `MAX_UPDATE_TIMEOUT`); a peer's Update Request → verify, store, Update
//! Acknowledgement.

use std::time::Instant;

use rand_core::RngCore;
use shim6_wire::shim6::Message;
use shim6_wire::shim6::error_message::ErrorCode;
use shim6_wire::shim6::option::{OptionSliceExt, OptionType};
use shim6_wire::shim6::update::{UpdateAcknowledgement, UpdateRequest};

use crate::config::{MAX_UPDATE_TIMEOUT, UPDATE_TIMEOUT};
use crate::context::{Context, PendingUpdate, State, backoff};
use crate::endpoint::{Endpoint, Event, Rx};
use crate::error::{Error, PeerMisbehaved};
use crate::handshake::apply_peer_options;

impl Endpoint {
    /// Our locators changed (address added, removed, or a preference changed): a new
    /// list under a new random generation (RFC 5533 §10.1, digest §7.3), signed once, an
    /// Update Request to every established context, and REAP told (a removed current
    /// locator starts an exploration, RFC 5534 §3.2).
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] if re-signing the list fails; nothing changes then.
    pub fn handle_local_locators(
        &mut self,
        now: Instant,
        locators: &[reap::Locator],
    ) -> Result<(), Error> {
        let now = self.advance(now);
        let mut generation = self.rng.next_u32();
        while generation == self.identity.generation() {
            generation = self.rng.next_u32();
        }
        let before: Vec<_> = self.identity.locators().to_vec();
        self.identity.set_locators(locators, generation)?;
        let tags: Vec<_> = self
            .contexts
            .iter()
            .filter(|(_, c)| c.state == State::Established)
            .map(|(t, _)| *t)
            .collect();
        for tag in tags {
            let Some(mut ctx) = self.take(tag) else {
                continue;
            };
            self.local_locators_changed(now, &mut ctx, &before);
            // §10.2: a new UR replaces any outstanding one (new nonce).
            ctx.update = Some(PendingUpdate {
                nonce: self.rng.next_u32(),
                retries: 0,
                deadline: now + backoff(&mut self.rng, UPDATE_TIMEOUT, 0, Some(MAX_UPDATE_TIMEOUT)),
            });
            self.send_update(&ctx);
            self.put(ctx);
        }
        Ok(())
    }

    /// Sends the outstanding Update Request of `ctx` (RFC 5533 §10.2): our list and
    /// preferences for its ULID, the signature, no PDS (it went out in I2/I2bis/R2).
    pub(crate) fn send_update(&mut self, ctx: &Context) {
        let (Some(u), Some(ct_peer)) = (&ctx.update, ctx.ct_peer) else {
            return;
        };
        let mut options = self.locator_options(&ctx.key.ulid_local, false);
        options.extend(self.keepalive_option());
        let m = Message::UpdateRequest(UpdateRequest {
            receiver_context_tag: ct_peer,
            request_nonce: u.nonce,
            options,
        });
        // From Lp(local) while it is still ours; otherwise from the ULID, which the
        // peer always holds in Ls(peer).
        let src = if self.identity.is_local(&ctx.lp_local) {
            ctx.lp_local
        } else {
            ctx.key.ulid_local
        };
        self.send(src, ctx.lp_peer, &m);
    }

    /// `UPDATE_TIMEOUT` expired: resend with the same nonce, binary back-off capped at
    /// `MAX_UPDATE_TIMEOUT`, forever (RFC 5533 §10.2).
    pub(crate) fn retransmit_update(&mut self, now: Instant, ctx: &mut Context) {
        let Some(u) = ctx.update.as_mut() else { return };
        u.retries += 1;
        let retries = u.retries;
        let d = backoff(
            &mut self.rng,
            UPDATE_TIMEOUT,
            retries,
            Some(MAX_UPDATE_TIMEOUT),
        );
        if let Some(u) = ctx.update.as_mut() {
            u.deadline = now + d;
        }
        self.send_update(ctx);
    }

    /// Update Request received (RFC 5533 §10.4).
    pub(crate) fn on_update_request(&mut self, rx: Rx<'_>, m: &UpdateRequest) -> Result<(), Error> {
        // 1. Context by CT(local), else R1bis (§7.17).
        let tag = m.receiver_context_tag;
        let Some(state) = self.live_state(tag) else {
            self.send_r1bis(&rx, tag);
            return Err(unknown_tag());
        };
        let (ulid_peer, stored) = {
            let c = &self.contexts[&tag];
            (c.key.ulid_peer, c.peer_pds.clone())
        };
        // 2. State (§10.4): I1-SENT discards; I2-SENT / I2BIS-SENT resend then process.
        match state {
            State::I1Sent => return Err(PeerMisbehaved::WrongState.into()),
            State::I2Sent | State::I2bisSent => self.resend_handshake(tag),
            _ => {}
        }
        // 3. Verify the list (PDS against ULID(peer), HBA / CGA), preferences (Errors 3
        //    and 4, and Error 2 for an unusable method, are sent inside).
        let opts = self.peer_options(&rx, ulid_peer, &m.options, stored.as_deref(), true)?;
        // 4. §10.4: src ∈ Ls(peer) and dst ∈ Ls(local), else the sender has a stale
        //    context: R1bis. A source that is in the new, verified list is accepted
        //    too (the peer may have lost every old locator; the list is signed).
        let ctx = &self.contexts[&tag];
        let in_new = opts
            .list
            .as_ref()
            .is_some_and(|l| l.locators.iter().any(|x| x.addr == rx.src));
        if !(ctx.peer_has(&rx.src) || in_new) || !self.identity.is_local(&rx.dst) {
            self.send_r1bis(&rx, tag);
            return Err(PeerMisbehaved::SourceLocatorUnknown(rx.src).into());
        }
        // Preferences alone (no list) refer to the stored generation (§10.4).
        if opts.list.is_none() {
            if let Some(p) = m.options.locator_preferences() {
                let mut cur = crate::locators::VerifiedList {
                    generation: ctx.peer_generation.unwrap_or(0),
                    locators: ctx
                        .peer_locators
                        .iter()
                        .filter(|l| l.method.is_some())
                        .copied()
                        .collect(),
                };
                if let Err(e) = crate::locators::apply_preferences(&mut cur, p) {
                    let base = rx.option_offset(OptionType::LocatorPreferences);
                    let (code, at) = match e {
                        PeerMisbehaved::PreferencesGenerationMismatch => {
                            (ErrorCode::LocatorListGenerationOutOfSync, base + 4)
                        }
                        _ => (ErrorCode::WrongLocatorPreferencesCount, base + 2),
                    };
                    self.send_error(&rx, code, at);
                    return Err(e.into());
                }
                let Some(mut ctx) = self.take(tag) else {
                    return Err(PeerMisbehaved::NoMatchingContext.into());
                };
                for l in &mut ctx.peer_locators {
                    if let Some(n) = cur.locators.iter().find(|n| n.addr == l.addr) {
                        l.pref = n.pref;
                    }
                }
                self.finish_update_request(rx, m, ctx);
                return Ok(());
            }
        }
        let Some(mut ctx) = self.take(tag) else {
            return Err(PeerMisbehaved::NoMatchingContext.into());
        };
        apply_peer_options(&mut ctx, opts);
        // Keep the current destination usable: if Lp(peer) left the list, REAP is told
        // below and explores (§10.4 "run REAP before switching").
        self.finish_update_request(rx, m, ctx);
        Ok(())
    }

    fn finish_update_request(&mut self, rx: Rx<'_>, m: &UpdateRequest, mut ctx: Box<Context>) {
        let now = rx.now;
        self.refresh_reap_peers(now, &mut ctx);
        self.note_control_received(now, &mut ctx, &rx);
        let tag = ctx.ct_local;
        if let Some(ct_peer) = ctx.ct_peer {
            // 5. UA: copy the nonce; Receiver Context Tag = CT(peer) (§10.4).
            let ua = Message::UpdateAcknowledgement(UpdateAcknowledgement {
                receiver_context_tag: ct_peer,
                request_nonce: m.request_nonce,
                options: Vec::new(),
            });
            self.send(rx.dst, rx.src, &ua);
            self.note_control_sent(now, &mut ctx);
        }
        self.put(ctx);
        self.events.push_back(Event::PeerLocatorsChanged { tag });
    }

    /// Update Acknowledgement received (RFC 5533 §10.5).
    pub(crate) fn on_update_ack(
        &mut self,
        rx: Rx<'_>,
        m: &UpdateAcknowledgement,
    ) -> Result<(), Error> {
        let tag = m.receiver_context_tag;
        let Some(state) = self.live_state(tag) else {
            self.send_r1bis(&rx, tag);
            return Err(unknown_tag());
        };
        let ctx = &self.contexts[&tag];
        if !ctx.peer_has(&rx.src) || !self.identity.is_local(&rx.dst) {
            self.send_r1bis(&rx, tag);
            return Err(PeerMisbehaved::SourceLocatorUnknown(rx.src).into());
        }
        match state {
            State::I1Sent => return Err(PeerMisbehaved::WrongState.into()),
            // §10.5 says "send R2"; digest §7.4: a copy error — resend I2 / I2bis.
            State::I2Sent | State::I2bisSent => self.resend_handshake(tag),
            _ => {}
        }
        let Some(mut ctx) = self.take(tag) else {
            return Err(PeerMisbehaved::NoMatchingContext.into());
        };
        if ctx
            .update
            .as_ref()
            .is_none_or(|u| u.nonce != m.request_nonce)
        {
            self.put(ctx);
            return Err(PeerMisbehaved::StaleUpdateNonce.into());
        }
        ctx.update = None;
        self.note_control_received(rx.now, &mut ctx, &rx);
        self.put(ctx);
        self.events.push_back(Event::UpdateAcknowledged { tag });
        Ok(())
    }

    /// The state of a live (non hold-down) context.
    pub(crate) fn live_state(&self, tag: shim6_wire::shim6::ContextTag) -> Option<State> {
        self.contexts
            .get(&tag)
            .map(|c| c.state)
            .filter(|s| !s.is_holddown())
    }

    /// I2-SENT / I2BIS-SENT received proof that the peer has the context (payload or a
    /// type 64–127 message): our R2 was lost, resend (RFC 5533 App. B, §12.2).
    pub(crate) fn resend_handshake(&mut self, tag: shim6_wire::shim6::ContextTag) {
        let Some(ctx) = self.take(tag) else { return };
        match ctx.state {
            State::I2Sent => self.send_i2(&ctx),
            State::I2bisSent => self.send_i2bis(&ctx),
            _ => {}
        }
        self.put(ctx);
    }
}

fn unknown_tag() -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::UnknownContextTag)
}
