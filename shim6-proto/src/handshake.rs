//! The four-way handshake I1 / R1 / I2 / R2 with a stateless responder
//! (RFC 5533 §7.5–§7.16), and the verification of the locator options every
//! handshake and update message may carry.

use std::net::Ipv6Addr;
use std::time::Instant;

use shim6_wire::shim6::error_message::ErrorCode;
use shim6_wire::shim6::handshake::{I1, I2, R1, R2};
use shim6_wire::shim6::locator::{LocatorList, VerificationMethod};
use shim6_wire::shim6::option::{OptionSliceExt, OptionType, Repr as OptionRepr, UlidPair};
use shim6_wire::shim6::{ContextTag, Message};

use crate::config::{I1_TIMEOUT, I2_TIMEOUT};
use crate::context::{Context, ContextKey, Handshake, State, backoff};
use crate::endpoint::{Endpoint, Event, Rx};
use crate::error::{ApiMisuse, Error, PeerIncompatible, PeerMisbehaved};
use crate::locators::{PeerLocator, VerifiedList, apply_preferences, verify_pds, verify_peer_list};
use crate::validator::ValidatorInput;

/// The locator options of a received I2 / I2bis / R2 / Update Request, verified.
#[derive(Debug, Default)]
pub(crate) struct PeerOptions {
    /// The verified list, if the message carried one.
    pub list: Option<VerifiedList>,
    /// The PDS, if the message carried one (already verified against ULID(peer)).
    pub pds: Option<Vec<u8>>,
    /// The Keepalive Timeout option (RFC 5534 §5.3).
    pub keepalive: Option<u16>,
}

impl Endpoint {
    // ------------------------------------------------------------------ initiator

    /// IDLE → I1-SENT (RFC 5533 §7.5).
    pub(crate) fn start_i1(&mut self, now: Instant, key: ContextKey) -> Result<ContextTag, Error> {
        if !self.identity.is_ulid(&key.ulid_local) {
            return Err(ApiMisuse::UnknownLocalUlid(key.ulid_local).into());
        }
        if let Some(&tag) = self.by_key.get(&key) {
            let ctx = &self.contexts[&tag];
            match ctx.state {
                // RFC 5533 App. B: E-FAILED / NO-SUPPORT hold the pair down until the
                // hold-down time passes; then the context is gone (→ IDLE).
                s if s.is_holddown() => {
                    if let Some(until) = ctx.deadline.filter(|d| *d > now) {
                        // §7.6: the peer said (by ICMP) it has no Shim6.
                        if s == State::NoSupport {
                            return Err(Error::PeerIncompatible(PeerIncompatible::NoSupport));
                        }
                        return Err(ApiMisuse::HeldDown { until }.into());
                    }
                    self.remove_context(tag, None);
                }
                _ => return Err(ApiMisuse::ContextExists(tag).into()),
            }
        }
        if self.contexts.len() >= self.config.max_contexts {
            return Err(
                ApiMisuse::Config("context table full (Config::max_contexts)".into()).into(),
            );
        }
        let tag = self.alloc_tag();
        let mut ctx = Box::new(Context::new(State::I1Sent, key, tag, now));
        self.stats.contexts_created += 1;
        self.enter_i1_sent(now, &mut ctx);
        self.put(ctx);
        Ok(tag)
    }

    /// Sends a first I1 from the context's current pair (also the I2/I2bis fallback,
    /// RFC 5533 §7.11, §7.18).
    pub(crate) fn enter_i1_sent(&mut self, now: Instant, ctx: &mut Context) {
        self.unindex_nonce(ctx);
        ctx.state = State::I1Sent;
        ctx.init_nonce = self.alloc_nonce();
        ctx.handshake = None;
        ctx.retries = 0;
        ctx.deadline = Some(now + backoff(&mut self.rng, I1_TIMEOUT, 0, None));
        // RFC 5533 §5.4: the ULID Pair option is needed when the addresses are not the
        // ULIDs (fallback from a recovery on another pair).
        ctx.ulid_option = (ctx.lp_local, ctx.lp_peer) != (ctx.key.ulid_local, ctx.key.ulid_peer);
        self.send_i1(ctx);
    }

    pub(crate) fn send_i1(&mut self, ctx: &Context) {
        let mut options = Vec::new();
        if ctx.ulid_option {
            options.push(OptionRepr::UlidPair(UlidPair {
                sender: ctx.key.ulid_local,
                receiver: ctx.key.ulid_peer,
            }));
        }
        // RFC 5533 §5.4: FII MUST be present when creating a forked instance.
        if ctx.key.fii != 0 {
            options.push(OptionRepr::ForkedInstanceId(ctx.key.fii));
        }
        let m = Message::I1(I1 {
            initiator_context_tag: ctx.ct_local,
            initiator_nonce: ctx.init_nonce,
            options,
        });
        self.send(ctx.lp_local, ctx.lp_peer, &m);
    }

    /// R1 received (RFC 5533 §7.12): matched by Initiator Nonce and locators.
    pub(crate) fn on_r1(&mut self, rx: Rx<'_>, m: &R1) -> Result<(), Error> {
        let tag = *self
            .by_nonce
            .get(&m.initiator_nonce)
            .ok_or(PeerMisbehaved::NoMatchingContext)?;
        let ctx = &self.contexts[&tag];
        // §7.12: the R1 answers our I1, so it comes back over the reversed pair.
        if (rx.src, rx.dst) != (ctx.lp_peer, ctx.lp_local) {
            return Err(PeerMisbehaved::NoMatchingContext.into());
        }
        // App. B: only I1-SENT acts on R1; elsewhere it answers a retransmitted I1.
        if ctx.state != State::I1Sent {
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
        ctx.handshake = Some(Handshake {
            responder_nonce: m.responder_nonce,
            validator,
            packet_tag: None,
            pair: None,
        });
        ctx.state = State::I2Sent;
        ctx.retries = 0;
        ctx.deadline = Some(rx.now + backoff(&mut self.rng, I2_TIMEOUT, 0, None));
        self.send_i2(&ctx);
        self.put(ctx);
        Ok(())
    }

    /// The locator options we put in I2, I2bis and R2, with the Keepalive Timeout.
    pub(crate) fn our_locator_options(&self, ulid_local: &Ipv6Addr) -> Vec<OptionRepr> {
        let mut o = self.locator_options(ulid_local, true);
        o.extend(self.keepalive_option());
        o
    }

    pub(crate) fn send_i2(&mut self, ctx: &Context) {
        let Some(h) = &ctx.handshake else { return };
        let mut options = vec![OptionRepr::ResponderValidator(h.validator.clone())];
        // §7.11: ULID Pair if the I1 had one (or the addresses are not the ULIDs).
        if ctx.ulid_option || (ctx.lp_local, ctx.lp_peer) != (ctx.key.ulid_local, ctx.key.ulid_peer)
        {
            options.push(OptionRepr::UlidPair(UlidPair {
                sender: ctx.key.ulid_local,
                receiver: ctx.key.ulid_peer,
            }));
        }
        if ctx.key.fii != 0 {
            options.push(OptionRepr::ForkedInstanceId(ctx.key.fii));
        }
        options.extend(self.our_locator_options(&ctx.key.ulid_local));
        let m = Message::I2(I2 {
            initiator_context_tag: ctx.ct_local,
            initiator_nonce: ctx.init_nonce,
            responder_nonce: h.responder_nonce,
            options,
        });
        self.send(ctx.lp_local, ctx.lp_peer, &m);
    }

    /// R2 received (RFC 5533 §7.15): matched by Initiator Nonce and locators.
    pub(crate) fn on_r2(&mut self, rx: Rx<'_>, m: &R2) -> Result<(), Error> {
        let tag = *self
            .by_nonce
            .get(&m.initiator_nonce)
            .ok_or(PeerMisbehaved::NoMatchingContext)?;
        let ctx = &self.contexts[&tag];
        // §7.15: the R2 comes back over the pair the I1/I2/I2bis went out on.
        let i2bis_pair = ctx.handshake.as_ref().and_then(|h| h.pair);
        if (rx.dst, rx.src) != (ctx.lp_local, ctx.lp_peer) && Some((rx.dst, rx.src)) != i2bis_pair {
            return Err(PeerMisbehaved::NoMatchingContext.into());
        }
        // §7.15: I1-SENT (crossed I1s), I2-SENT and I2BIS-SENT accept; ESTABLISHED
        // ignores it (the answer to a retransmitted I2), and is not in by_nonce anyway.
        if !matches!(ctx.state, State::I1Sent | State::I2Sent | State::I2bisSent) {
            return Err(PeerMisbehaved::WrongState.into());
        }
        let ulid_peer = ctx.key.ulid_peer;
        let stored = ctx.peer_pds.clone();
        // §7.15: a PDS MUST verify against ULID(peer); the list must verify; else drop.
        let opts = self.peer_options(&rx, ulid_peer, &m.options, stored.as_deref(), false)?;
        let Some(mut ctx) = self.take(tag) else {
            return Err(PeerMisbehaved::NoMatchingContext.into());
        };
        let recovered = ctx.state == State::I2bisSent;
        self.unindex_nonce(&ctx);
        self.set_ct_peer(&mut ctx, m.responder_context_tag);
        apply_peer_options(&mut ctx, opts);
        self.confusion_check(&ctx);
        self.enter_established(rx.now, &mut ctx, recovered);
        self.put(ctx);
        Ok(())
    }

    /// → ESTABLISHED: timers off, REAP on (RFC 5534 §3.4), event.
    pub(crate) fn enter_established(&mut self, now: Instant, ctx: &mut Context, recovered: bool) {
        ctx.state = State::Established;
        ctx.handshake = None;
        ctx.retries = 0;
        ctx.deadline = None;
        ctx.last_activity = now;
        if ctx.reap.is_none() {
            self.start_reap(now, ctx);
        } else {
            self.refresh_reap_peers(now, ctx);
        }
        self.events.push_back(Event::Established {
            tag: ctx.ct_local,
            key: ctx.key,
            recovered,
        });
    }

    // ------------------------------------------------------------------ responder

    /// ULIDs and FII of an I1 / I2 / I2bis: from the options, else the IPv6 header
    /// (RFC 5533 §7.9, §7.13). Returns the context key from our point of view.
    fn key_of(rx: &Rx<'_>, options: &[OptionRepr]) -> ContextKey {
        let (peer, local) = options
            .ulid_pair()
            .map_or((rx.src, rx.dst), |u| (u.sender, u.receiver));
        ContextKey {
            ulid_local: local,
            ulid_peer: peer,
            fii: options.forked_instance_id().unwrap_or(0),
        }
    }

    /// I1 received (RFC 5533 §7.9). Creates no state.
    pub(crate) fn on_i1(&mut self, rx: Rx<'_>, m: &I1) -> Result<(), Error> {
        let key = Self::key_of(&rx, &m.options);
        self.check_our_ulid(&key.ulid_local)?;
        if !self.policy.accept_incoming {
            return Err(PeerMisbehaved::WrongState.into());
        }
        let existing = self.by_key.get(&key).copied();
        let state = existing.map(|t| self.contexts[&t].state);
        match (existing, state) {
            // IDLE (and the hold-down states, handled as IDLE): stateless R1.
            (Some(tag), Some(State::I1Sent | State::I2Sent | State::I2bisSent)) => {
                // App. B: crossed I1s, or our I2 is under way: answer with R2 so that
                // the peer can finish; our own exchange continues (§7.9).
                self.reply_r2(&rx, tag, m.initiator_nonce);
                Ok(())
            }
            (Some(tag), Some(State::Established)) => {
                let ctx = &self.contexts[&tag];
                // §7.9: the same tag from a known locator is a retransmission whose R2
                // was lost: R2. Otherwise the peer restarted: R1, and the full
                // exchange replaces CT(peer) (digest §7.13 adds the locator check).
                if ctx.ct_peer == Some(m.initiator_context_tag) && ctx.peer_has(&rx.src) {
                    self.reply_r2(&rx, tag, m.initiator_nonce);
                } else {
                    self.send_r1(&rx, &key, m);
                }
                Ok(())
            }
            _ => {
                self.send_r1(&rx, &key, m);
                Ok(())
            }
        }
    }

    fn validator_locators(rx: &Rx<'_>, key: &ContextKey) -> Option<(Ipv6Addr, Ipv6Addr)> {
        // §7.10.1: locators only when they differ from the ULIDs.
        ((rx.src, rx.dst) != (key.ulid_peer, key.ulid_local)).then_some((rx.src, rx.dst))
    }

    fn send_r1(&mut self, rx: &Rx<'_>, key: &ContextKey, m: &I1) {
        let input = ValidatorInput::R1 {
            init_ct: m.initiator_context_tag,
            ulid_responder: key.ulid_local,
            ulid_initiator: key.ulid_peer,
            locators: Self::validator_locators(rx, key),
            fii: key.fii,
        };
        let (nonce, v) = self.validators.issue(rx.now, &mut self.rng, &input);
        let r1 = Message::R1(R1 {
            initiator_nonce: m.initiator_nonce,
            responder_nonce: nonce,
            options: vec![OptionRepr::ResponderValidator(v.to_vec())],
        });
        self.send(rx.dst, rx.src, &r1);
    }

    /// Sends R2 for context `tag` in reply to `rx` (RFC 5533 §7.14): our tag, the
    /// triggering message's Initiator Nonce, our locators. Never retransmitted.
    pub(crate) fn reply_r2(&mut self, rx: &Rx<'_>, tag: ContextTag, init_nonce: u32) {
        let Some(ctx) = self.contexts.get(&tag) else {
            return;
        };
        let (ct, ulid) = (ctx.ct_local, ctx.key.ulid_local);
        let m = Message::R2(R2 {
            responder_context_tag: ct,
            initiator_nonce: init_nonce,
            options: self.our_locator_options(&ulid),
        });
        self.send(rx.dst, rx.src, &m);
    }

    /// I2 received (RFC 5533 §7.13).
    pub(crate) fn on_i2(&mut self, rx: Rx<'_>, m: &I2) -> Result<(), Error> {
        // 1. ULIDs, FII; the receiver ULID must be ours.
        let key = Self::key_of(&rx, &m.options);
        self.check_our_ulid(&key.ulid_local)?;
        if !self.policy.accept_incoming {
            return Err(PeerMisbehaved::WrongState.into());
        }
        // 2. Responder Nonce freshness and validator (§7.13; digest §7.5 inputs).
        let validator = m
            .options
            .responder_validator()
            .ok_or(PeerMisbehaved::MissingValidator)?;
        let input = ValidatorInput::R1 {
            init_ct: m.initiator_context_tag,
            ulid_responder: key.ulid_local,
            ulid_initiator: key.ulid_peer,
            locators: Self::validator_locators(&rx, &key),
            fii: key.fii,
        };
        self.validators
            .check(rx.now, &mut self.rng, m.responder_nonce, &input, validator)?;
        // 3. PDS against ULID(peer), locators by HBA / CGA: any failure, no state.
        let opts = self.peer_options(&rx, key.ulid_peer, &m.options, None, false)?;
        // 4. By state.
        self.accept_i2_like(rx, key, m.initiator_context_tag, m.initiator_nonce, opts)
    }

    /// The state-dependent half of I2 and I2bis processing (RFC 5533 §7.13, §7.18):
    /// create or update the context, send R2.
    pub(crate) fn accept_i2_like(
        &mut self,
        rx: Rx<'_>,
        key: ContextKey,
        init_ct: ContextTag,
        init_nonce: u32,
        opts: PeerOptions,
    ) -> Result<(), Error> {
        let existing = self
            .by_key
            .get(&key)
            .copied()
            .filter(|t| !self.contexts[t].state.is_holddown());
        let now = rx.now;
        let Some(tag) = existing else {
            // IDLE: a fresh random CT(local) (§7.13; §7.18: SHOULD NOT reuse the Packet
            // Context Tag), ESTABLISHED, R2.
            if let Some(&old) = self.by_key.get(&key) {
                self.remove_context(old, None);
            }
            if self.contexts.len() >= self.config.max_contexts {
                return Err(Error::ApiMisuse(ApiMisuse::Config(
                    "context table full".into(),
                )));
            }
            let tag = self.alloc_tag();
            let mut ctx = Box::new(Context::new(State::Established, key, tag, now));
            self.stats.contexts_created += 1;
            self.set_ct_peer(&mut ctx, init_ct);
            apply_peer_options(&mut ctx, opts);
            // Payload follows the pair the message came over when it is verified (the
            // initiator may already be off its ULIDs, e.g. after I2bis).
            if ctx.peer_has(&rx.src) && self.identity.is_local(&rx.dst) {
                ctx.lp_local = rx.dst;
                ctx.lp_peer = rx.src;
            }
            self.confusion_check(&ctx);
            self.enter_established(now, &mut ctx, false);
            self.put(ctx);
            self.reply_r2(&rx, tag, init_nonce);
            return Ok(());
        };
        // I1-SENT, I2-SENT, I2BIS-SENT, ESTABLISHED: the source locator must already
        // be in Ls(peer), or be in the message's list (which verified above).
        let Some(mut ctx) = self.take(tag) else {
            return Err(PeerMisbehaved::NoMatchingContext.into());
        };
        let in_list = opts
            .list
            .as_ref()
            .is_some_and(|l| l.locators.iter().any(|x| x.addr == rx.src));
        if !(ctx.peer_has(&rx.src) || in_list) {
            self.put(ctx);
            return Err(PeerMisbehaved::SourceLocatorUnknown(rx.src).into());
        }
        // A different Initiator Context Tag in ESTABLISHED: the peer restarted and
        // reran the handshake (§7.9 "R1, and the full exchange replaces CT(peer)").
        self.set_ct_peer(&mut ctx, init_ct);
        apply_peer_options(&mut ctx, opts);
        self.confusion_check(&ctx);
        if ctx.state == State::I1Sent {
            self.unindex_nonce(&ctx);
            self.enter_established(now, &mut ctx, false);
        } else if ctx.state == State::Established {
            self.refresh_reap_peers(now, &mut ctx);
        }
        self.put(ctx);
        self.reply_r2(&rx, tag, init_nonce);
        Ok(())
    }

    /// Verifies the locator options of a message about ULID(peer) `ulid_peer`
    /// (RFC 5533 §7.13, §7.15, §10.4). `stored_pds` is the PDS received earlier, for
    /// Update Requests that omit it. `update` selects the §10.4 Error replies for
    /// preference mismatches (codes 3 and 4).
    pub(crate) fn peer_options(
        &mut self,
        rx: &Rx<'_>,
        ulid_peer: Ipv6Addr,
        options: &[OptionRepr],
        stored_pds: Option<&[u8]>,
        update: bool,
    ) -> Result<PeerOptions, Error> {
        let pds = options.cga_parameter_data_structure();
        if let Some(pds) = pds {
            verify_pds(&ulid_peer, pds)?;
        }
        let mut out = PeerOptions {
            pds: pds.map(<[u8]>::to_vec),
            keepalive: options.keepalive_timeout(),
            list: None,
        };
        let Some(list) = options.locator_list() else {
            return Ok(out);
        };
        let remapped;
        let list = if self.config.iana_verification_methods {
            remapped = swap_methods(list.clone());
            &remapped
        } else {
            list
        };
        let pds = pds.or(stored_pds).ok_or(PeerMisbehaved::MissingPds)?;
        let mut verified = match verify_peer_list(&ulid_peer, list, pds, options.cga_signature()) {
            Ok(v) => v,
            Err(e) => {
                // §10: unsupported or inconsistent method → Error 2, Pointer at the
                // offending method octet (option + 4 header + 4 generation + 1 N).
                let bad = match &e {
                    Error::PeerIncompatible(PeerIncompatible::UnsupportedVerificationMethod(m)) => {
                        list.locators.iter().position(|l| u8::from(l.method) == *m)
                    }
                    Error::PeerMisbehaved(PeerMisbehaved::InconsistentVerification(a)) => {
                        list.locators.iter().position(|l| l.address == *a)
                    }
                    _ => None,
                };
                if let Some(i) = bad {
                    let at = rx.option_offset(OptionType::LocatorList) + 9 + i;
                    self.send_error(rx, ErrorCode::LocatorVerificationFailed, at);
                }
                return Err(e);
            }
        };
        if let Some(prefs) = options.locator_preferences() {
            if let Err(e) = apply_preferences(&mut verified, prefs) {
                if update {
                    let base = rx.option_offset(OptionType::LocatorPreferences);
                    match e {
                        // §10.4: Pointer → the Locator List Generation field.
                        PeerMisbehaved::PreferencesGenerationMismatch => {
                            self.send_error(
                                rx,
                                ErrorCode::LocatorListGenerationOutOfSync,
                                base + 4,
                            );
                        }
                        // §10.4: Pointer → the option's Length field.
                        _ => self.send_error(rx, ErrorCode::WrongLocatorPreferencesCount, base + 2),
                    }
                }
                return Err(e.into());
            }
        }
        out.list = Some(verified);
        Ok(out)
    }
}

/// Exchanges HBA and CGA in a Locator List (digest §7.2, the IANA numbering).
pub(crate) fn swap_methods(mut list: LocatorList) -> LocatorList {
    for l in &mut list.locators {
        l.method = match l.method {
            VerificationMethod::Hba => VerificationMethod::Cga,
            VerificationMethod::Cga => VerificationMethod::Hba,
            other => other,
        };
    }
    list
}

impl Endpoint {
    /// Our locator options for a message about `ulid`, in the configured numbering of
    /// the verification methods.
    pub(crate) fn locator_options(&self, ulid: &Ipv6Addr, with_pds: bool) -> Vec<OptionRepr> {
        let mut o = self.identity.options(ulid, with_pds);
        if self.config.iana_verification_methods {
            for x in &mut o {
                if let OptionRepr::LocatorList(l) = x {
                    *l = swap_methods(l.clone());
                }
            }
        }
        o
    }
}

/// Stores verified peer options in a context: Ls(peer) (with the ULID, always
/// usable), generation, PDS, Keepalive Timeout.
pub(crate) fn apply_peer_options(ctx: &mut Context, opts: PeerOptions) {
    if let Some(pds) = opts.pds {
        ctx.peer_pds = Some(pds);
    }
    if let Some(list) = opts.list {
        ctx.peer_generation = Some(list.generation);
        let mut locs = list.locators;
        if !locs.iter().any(|l| l.addr == ctx.key.ulid_peer) {
            locs.push(PeerLocator {
                addr: ctx.key.ulid_peer,
                method: None,
                pref: reap::Preference::default(),
            });
        }
        ctx.peer_locators = locs;
    }
    if let Some(k) = opts.keepalive {
        ctx.peer_keepalive_timeout = Some(k);
    }
}
