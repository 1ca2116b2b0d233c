//! The adapter that plugs the sans-IO [`shim6_proto::Endpoint`] into the shell's seam
//! ([`crate::core::ProtocolCore`]).
//!
//! # What it does
//!
//! - **Identity** ([`load_identity`]): the ULIDs and their CGA Parameters come from
//!   the `cga-tool generate --format json` file the configuration names
//!   (`identity.params_file`), the RSA key from `identity.key_file` in CGA mode. A file
//!   without addresses means "no identity": the daemon then runs the shell alone.
//! - **Randomness**: the endpoint's seed comes from OS entropy here, in the shell
//!   (`/dev/urandom`); the core never reads it (style.md "Time and randomness").
//! - **Locators**: the shell gives the available addresses (RFC 5534 §3.1) of the
//!   allowed interfaces; the adapter keeps those a peer can verify (RFC 5535 §7.2: with
//!   a pure HBA set and no key, only members of the set) and hands the set to
//!   [`Endpoint::handle_local_locators`] whenever it changes: an Update Request goes to
//!   every established peer (RFC 5533 §10.1).
//! - **Packets**: TUN packets go to [`Endpoint::handle_outbound`] in place (the payload
//!   header goes into the buffer's headroom); protocol-140 datagrams get their IPv6
//!   header rebuilt in front (the raw socket strips it: source from `recvfrom`,
//!   destination from `IPV6_PKTINFO`, RFC 8200 §3) and go to
//!   [`Endpoint::handle_inbound`]; control messages from [`Endpoint::poll_transmit`]
//!   are complete IPv6 packets for the marked raw socket.
//! - **Events**: [`Event::Established`] routes the peer ULID into the TUN
//!   ([`CoreEvent::RouteAdd`]), [`Event::Closed`] takes it out when no context with that
//!   peer is left; REAP's path events are logged with `tracing` in a span carrying the
//!   context's tags and ULIDs, reported as [`CoreEvent::PathChanged`] and kept in a
//!   short per-context history that `cat` shows with wall-clock timestamps (the demo's
//!   timeline comes from there). [`CoreEvent::ContextUp`] / [`CoreEvent::ContextDown`] /
//!   [`CoreEvent::EstablishFailed`] tell the shell's visibility and trigger about
//!   contexts per ULID pair.
//! - **TCP re-send** (issue 6 item 4, [`crate::resend`], `[resend]`): every TUN packet
//!   is copied in ULID form before rewriting, restored inbound packets clear what they
//!   acknowledge, and on REAP's path change the unacknowledged copies are rewritten onto
//!   the new pair and queued for [`ProtocolCore::poll_transmit`], which applies the
//!   endpoint's events first so they leave in the same drain.
//! - **Commands**: `ls`, `cat`, `rm`, `establish`, `explore`, `set tsend`, and the
//!   core's part of `stats`, `locators` and `params`.

use std::{
    collections::{BTreeMap, VecDeque},
    io::Read,
    net::Ipv6Addr,
    path::PathBuf,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use shim6_proto::{
    ContextInfo, Endpoint, Event, Inbound as PInbound, LocalUlid, Outbound as POutbound,
};
use shim6_wire::shim6::{ContextTag, MessageType, locator::VerificationMethod};

use crate::{
    config::{Config, IdentityMode},
    control::{Command, CommandError, Reply, Target},
    core::{CoreEvent, Inbound, Outbound, ProtocolCore},
    dataplane::{PacketBuf, RecvMeta},
    resend::ResendBuffer,
    visibility::UlidPair,
};

/// Room in front of a re-sent copy for the payload extension header (RFC 5533 §5.1:
/// 8 octets) when the endpoint rewrites it onto the new pair.
const RESEND_HEADROOM: usize = PacketBuf::HEADROOM;

/// How many events each context keeps for `cat` (oldest dropped first).
pub const HISTORY: usize = 64;

/// Length of the fixed IPv6 header (RFC 8200 §3).
const IPV6_HEADER: usize = 40;

/// Why the core could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The identity files could not be read or do not hold a usable identity.
    #[error("identity: {0}")]
    Identity(String),
    /// OS entropy could not be read.
    #[error("read OS entropy (/dev/urandom): {0}")]
    Entropy(std::io::Error),
    /// The endpoint refused its configuration or identity.
    #[error("protocol core: {0}")]
    Endpoint(shim6_proto::Error),
}

/// The identity a configuration points at: every ULID to use and whether a key is there.
#[derive(Debug)]
pub struct Identity {
    /// The ULIDs with their parameters (and the key, in CGA mode).
    pub ulids: Vec<LocalUlid>,
    /// `sec` of the parameter file, when it says.
    pub sec: Option<u64>,
    /// The file the ULIDs came from.
    pub params_file: PathBuf,
}

/// Reads `identity.params_file` (cga-tool's JSON) and, in CGA mode, `identity.key_file`.
///
/// `Ok(None)` when the file lists no addresses (no identity: the daemon runs the shell
/// alone, as before the core existed).
///
/// # Errors
/// A file that cannot be read or parsed, an entry that is not an address with hex
/// parameters, a configured `identity.ulids` entry missing from the file, a key that
/// does not load.
pub fn load_identity(config: &Config) -> Result<Option<Identity>, CoreError> {
    let id = &config.identity;
    let text = std::fs::read_to_string(&id.params_file)
        .map_err(|e| CoreError::Identity(format!("read {}: {e}", id.params_file.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| CoreError::Identity(format!("{}: {e}", id.params_file.display())))?;
    let entries = match v.get("addresses").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a,
        _ => return Ok(None),
    };
    let key = match id.mode {
        IdentityMode::Cga => Some(
            cga::PrivateKey::load(&id.key_file)
                .map_err(|e| CoreError::Identity(format!("{}: {e}", id.key_file.display())))?,
        ),
        IdentityMode::Hba => None,
    };
    let mut ulids = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let (Some(address), Some(params)) = (
            e.get("address").and_then(Value::as_str),
            e.get("params").and_then(Value::as_str),
        ) else {
            return Err(CoreError::Identity(format!(
                "{}: addresses[{i}] needs \"address\" and \"params\"",
                id.params_file.display()
            )));
        };
        let addr: Ipv6Addr = address
            .parse()
            .map_err(|e| CoreError::Identity(format!("addresses[{i}]: {address:?}: {e}")))?;
        if !id.ulids.is_empty() && !id.ulids.contains(&addr) {
            continue;
        }
        // One key per entry: each CGA of a set signs with the same key (RFC 3972 §4).
        let k = match &key {
            Some(k) => Some(
                cga::PrivateKey::from_pem(
                    &k.to_pem()
                        .map_err(|e| CoreError::Identity(format!("key: {e}")))?,
                )
                .map_err(|e| CoreError::Identity(format!("key: {e}")))?,
            ),
            None => None,
        };
        let u = LocalUlid::from_hex(address, params, k)
            .map_err(|e| CoreError::Identity(format!("addresses[{i}]: {e}")))?;
        if let Some(k) = &u.key {
            key_signs_for(&u.params, k).map_err(|e| {
                CoreError::Identity(format!(
                    "{} with {} (mode = \"cga\"), address {address}: {e}",
                    id.params_file.display(),
                    id.key_file.display()
                ))
            })?;
        }
        ulids.push(u);
    }
    for u in &id.ulids {
        if !ulids.iter().any(|l| l.address == *u) {
            return Err(CoreError::Identity(format!(
                "identity.ulids: {u} is not in {}",
                id.params_file.display()
            )));
        }
    }
    Ok(Some(Identity {
        ulids,
        sec: v.get("sec").and_then(Value::as_u64),
        params_file: id.params_file.clone(),
    }))
}

/// Whether `key` can sign locator lists for the address of `params` (CGA mode): the
/// parameters must carry a real public key — a CGA, or a CGA-compatible HBA set with
/// Multi-Prefix P = 1 (RFC 5535 §5; a pure HBA set's key field is a random pseudo-key)
/// — and it must be `key`'s (RFC 3972 §4: the Public Key field), or every signature
/// would fail at the peer (RFC 3972 §5 step 7 / RFC 5533 §5.15.5).
pub(crate) fn key_signs_for(params: &[u8], key: &cga::PrivateKey) -> Result<(), String> {
    let pds = shim6_wire::cga::Packet::new_checked(params).map_err(|e| e.to_string())?;
    if let Some(Ok(mp)) = pds.multi_prefix()
        && !mp.public_key_flag()
    {
        return Err(
            "the parameters are a pure HBA set (Multi-Prefix P = 0: a pseudo-key, \
                    RFC 5535 §5), which cannot sign; make a CGA-compatible set with this key \
                    (`cga-tool generate --hba-compat --key KEY ...`) or use mode = \"hba\""
                .into(),
        );
    }
    let public = key.public_key().map_err(|e| e.to_string())?;
    if pds.public_key() != public.der() {
        return Err(
            "key_file is not the key in the parameters' Public Key field \
                    (RFC 3972 §4): its signatures would not verify"
                .into(),
        );
    }
    Ok(())
}

/// 32 bytes of OS entropy for the endpoint's seed.
fn os_seed() -> Result<[u8; 32], CoreError> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(CoreError::Entropy)?;
    Ok(seed)
}

/// One event in a context's history.
#[derive(Clone, Debug)]
struct Record {
    /// Wall clock, microseconds since the UNIX epoch.
    unix_us: u128,
    kind: &'static str,
    detail: Value,
}

/// The Shim6 endpoint behind the seam.
#[derive(Debug)]
pub struct ProtoCore {
    ep: Endpoint,
    /// Every ULID of ours, in file order; the first is the default for `establish`.
    ulids: Vec<Ipv6Addr>,
    /// The CGA Parameters of each ULID (HBA set membership checks).
    params: Vec<Vec<u8>>,
    /// Whether a key signs locator lists (CGA or CGA-compatible HBA).
    has_key: bool,
    mode: IdentityMode,
    sec: Option<u64>,
    params_file: PathBuf,
    /// The locators handed to the endpoint last time.
    locators: Vec<Ipv6Addr>,
    /// The available addresses left out last time: no peer could verify them.
    unverifiable: Vec<Ipv6Addr>,
    pending: VecDeque<CoreEvent>,
    /// Copies of the TCP segments sent per context, re-sent after a REAP switch (issue
    /// 6 item 4, [`crate::resend`]); `None` when `[resend] enabled = false`.
    resend: Option<ResendBuffer>,
    /// Re-sent copies, rewritten onto the new pair, waiting for `poll_transmit`.
    resend_tx: VecDeque<Vec<u8>>,
    /// `[mptcp] enabled`: report locator sets and REAP's pair verdicts to the shell.
    mptcp: bool,
    /// Established contexts per peer ULID: its route stays while one is left.
    routed: BTreeMap<Ipv6Addr, usize>,
    /// Tag → ULIDs of contexts that reached ESTABLISHED (for the route on close).
    established: BTreeMap<ContextTag, (Ipv6Addr, Ipv6Addr)>,
    history: BTreeMap<ContextTag, VecDeque<Record>>,
    /// The latest `now` the shell gave (events are pulled without one).
    now: Instant,
    /// Wall clock and monotonic clock read together at start, for event timestamps.
    base: (Instant, SystemTime),
}

impl ProtoCore {
    /// Builds the core from the configuration, or `Ok(None)` when it names no identity.
    /// `locators` is the shell's current set of available addresses.
    ///
    /// # Errors
    /// [`CoreError`]: identity files, entropy, or the endpoint refusing them.
    pub fn from_config(
        config: &Config,
        locators: &[Ipv6Addr],
        now: Instant,
    ) -> Result<Option<Self>, CoreError> {
        let Some(id) = load_identity(config)? else {
            return Ok(None);
        };
        let ulids: Vec<Ipv6Addr> = id.ulids.iter().map(|u| u.address).collect();
        let has_key = id.ulids.iter().any(|u| u.key.is_some());
        let params = id.ulids.iter().map(|u| u.params.clone()).collect();
        let proto = shim6_proto::Config {
            rng_seed: Some(os_seed()?),
            reap: config.reap.reap_config(),
            ..shim6_proto::Config::default()
        };
        let mut core = Self {
            ep: Endpoint::new(proto, id.ulids, &[], now).map_err(CoreError::Endpoint)?,
            ulids,
            params,
            has_key,
            mode: config.identity.mode,
            sec: id.sec,
            params_file: id.params_file,
            locators: Vec::new(),
            unverifiable: Vec::new(),
            pending: VecDeque::new(),
            resend: config
                .resend
                .enabled
                .then(|| ResendBuffer::new(config.resend.limits())),
            resend_tx: VecDeque::new(),
            mptcp: config.mptcp.enabled,
            routed: BTreeMap::new(),
            established: BTreeMap::new(),
            history: BTreeMap::new(),
            now,
            base: (now, SystemTime::now()),
        };
        core.local_locators(now, locators);
        Ok(Some(core))
    }

    /// Our ULIDs, in parameter-file order.
    pub fn ulids(&self) -> &[Ipv6Addr] {
        &self.ulids
    }

    /// The endpoint, for inspection.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    fn unix_us(&self, at: Instant) -> u128 {
        let wall = self.base.1 + at.saturating_duration_since(self.base.0);
        wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros())
    }

    fn record(&mut self, tag: ContextTag, kind: &'static str, detail: Value) {
        let r = Record {
            unix_us: self.unix_us(self.now),
            kind,
            detail,
        };
        let h = self.history.entry(tag).or_default();
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(r);
    }

    /// Whether a peer could verify `a` as one of our locators: any address when a key
    /// signs the list (CGA, RFC 3972), else only members of our HBA set (RFC 5535 §7.2).
    fn verifiable(&self, a: &Ipv6Addr) -> bool {
        self.has_key
            || self.ulids.contains(a)
            || self
                .params
                .iter()
                .any(|p| cga::verify_hba_member(a, p).is_ok())
    }

    /// The verification method our Locator List gives `a` (RFC 5533 §5.15.2, §7.2, as
    /// `LocalIdentity::set_locators` chooses it): "HBA" for a member of our HBA set
    /// (RFC 5535 §7.2, whichever of our ULIDs is configured: the members share the
    /// Multi-Prefix extension), else "CGA" when a key signs the list (RFC 3972, RFC 5533
    /// §5.15.5), else "none" (not advertised).
    fn local_method(&self, a: &Ipv6Addr) -> &'static str {
        if self
            .params
            .iter()
            .any(|p| cga::verify_hba_member(a, p).is_ok())
        {
            "HBA"
        } else if self.has_key {
            "CGA"
        } else {
            "none"
        }
    }

    /// Applies one endpoint event: log it, keep it in the history, turn it into routing
    /// changes for the shell.
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Established {
                tag,
                key,
                recovered,
            } => {
                let span = self.span(tag);
                let _g = span.enter();
                tracing::info!(recovered, "context ESTABLISHED");
                self.record(tag, "established", json!({ "recovered": recovered }));
                if self
                    .established
                    .insert(tag, (key.ulid_local, key.ulid_peer))
                    .is_none()
                {
                    self.pending.push_back(CoreEvent::ContextUp {
                        ulid_local: key.ulid_local,
                        ulid_peer: key.ulid_peer,
                    });
                    self.mptcp_peer(tag);
                    let n = self.routed.entry(key.ulid_peer).or_default();
                    *n += 1;
                    if *n == 1 {
                        self.pending.push_back(CoreEvent::RouteAdd(key.ulid_peer));
                    }
                }
            }
            Event::Failed { key, state } => {
                // RFC 5533 §7.5, §7.6: E-FAILED / NO-SUPPORT; payload stays untouched (no
                // route was ever added for it).
                tracing::warn!(
                    ulid_local = %key.ulid_local,
                    ulid_peer = %key.ulid_peer,
                    %state,
                    "context establishment failed"
                );
                if let Some(tag) = self.ep.find(key.ulid_local, key.ulid_peer, key.fii) {
                    self.record(tag, "failed", json!({ "state": state.to_string() }));
                }
                if let Some(r) = self.resend.as_mut() {
                    r.forget(UlidPair::new(key.ulid_local, key.ulid_peer));
                }
                self.pending.push_back(CoreEvent::EstablishFailed {
                    ulid_local: key.ulid_local,
                    ulid_peer: key.ulid_peer,
                });
            }
            Event::Closed { tag, key, reason } => {
                let span = self.span_key(tag, key.ulid_local, key.ulid_peer);
                let _g = span.enter();
                tracing::info!(?reason, "context closed");
                self.history.remove(&tag);
                if let Some(r) = self.resend.as_mut() {
                    r.forget(UlidPair::new(key.ulid_local, key.ulid_peer));
                }
                let was_established = self.established.remove(&tag).is_some();
                if was_established
                    && !self
                        .established
                        .values()
                        .any(|&p| p == (key.ulid_local, key.ulid_peer))
                {
                    self.pending.push_back(CoreEvent::ContextDown {
                        ulid_local: key.ulid_local,
                        ulid_peer: key.ulid_peer,
                    });
                }
                if was_established && let Some(n) = self.routed.get_mut(&key.ulid_peer) {
                    *n -= 1;
                    if *n == 0 {
                        self.routed.remove(&key.ulid_peer);
                        self.pending
                            .push_back(CoreEvent::RouteRemove(key.ulid_peer));
                    }
                }
            }
            Event::PathFailed { tag, pair, cause } => {
                let span = self.span(tag);
                let _g = span.enter();
                tracing::warn!(%pair, %cause, "REAP: path failed, exploring");
                if self.mptcp
                    && let Some(&(_, ulid_peer)) = self.established.get(&tag)
                {
                    self.pending
                        .push_back(CoreEvent::PathFailed { ulid_peer, pair });
                }
                self.record(
                    tag,
                    "path_failed",
                    json!({ "pair": pair_json(&pair), "cause": cause.to_string() }),
                );
            }
            Event::PathUsable { tag, pair } => {
                let span = self.span(tag);
                let _g = span.enter();
                tracing::info!(%pair, "REAP: path usable");
                if self.mptcp
                    && let Some(&(_, ulid_peer)) = self.established.get(&tag)
                {
                    self.pending
                        .push_back(CoreEvent::PathUsable { ulid_peer, pair });
                }
                self.record(tag, "path_usable", json!({ "pair": pair_json(&pair) }));
            }
            Event::PathChanged { tag, from, to } => {
                let span = self.span(tag);
                let _g = span.enter();
                tracing::info!(%from, %to, "REAP: path changed");
                self.record(
                    tag,
                    "path_changed",
                    json!({ "from": pair_json(&from), "to": pair_json(&to) }),
                );
                if let Some(&(ulid_local, ulid_peer)) = self.established.get(&tag) {
                    self.resend_after_switch(ulid_local, ulid_peer);
                    self.pending.push_back(CoreEvent::PathChanged {
                        ulid_local,
                        ulid_peer,
                    });
                }
            }
            Event::PeerUnreachable { tag } => {
                let span = self.span(tag);
                let _g = span.enter();
                tracing::warn!("REAP: peer unreachable, probing stopped");
                self.record(tag, "peer_unreachable", json!({}));
            }
            Event::PeerLocatorsChanged { tag } => {
                let span = self.span(tag);
                let _g = span.enter();
                tracing::info!("peer locator set changed");
                self.mptcp_peer(tag);
                self.record(tag, "peer_locators_changed", json!({}));
            }
            Event::UpdateAcknowledged { tag } => {
                let span = self.span(tag);
                let _g = span.enter();
                tracing::info!("Update Request acknowledged");
                self.record(tag, "update_acknowledged", json!({}));
            }
            Event::PeerError { tag, code } => {
                tracing::warn!(?tag, ?code, "peer sent a Shim6 Error message");
                if let Some(tag) = tag {
                    self.record(tag, "peer_error", json!({ "code": format!("{code:?}") }));
                }
            }
        }
    }

    /// RFC 5534 §4.2 / issue 6 item 4: REAP moved the context of these ULIDs; the
    /// unacknowledged segments kept for it go out again at once on the new pair
    /// (rewritten by the endpoint like TUN packets, so REAP notes them as sent).
    fn resend_after_switch(&mut self, ulid_local: Ipv6Addr, ulid_peer: Ipv6Addr) {
        let Some(r) = self.resend.as_mut() else {
            return;
        };
        let now = self.now;
        let copies: Vec<Vec<u8>> = r
            .on_path_change(now, UlidPair::new(ulid_local, ulid_peer))
            .map(<[u8]>::to_vec)
            .collect();
        let mut queued = 0usize;
        for c in copies {
            let mut buf = vec![0u8; RESEND_HEADROOM + c.len()];
            buf[RESEND_HEADROOM..].copy_from_slice(&c);
            let range = RESEND_HEADROOM..RESEND_HEADROOM + c.len();
            match self.ep.handle_outbound(now, &mut buf, range) {
                POutbound::Send(sent) => {
                    buf.truncate(sent.packet.end);
                    buf.drain(..sent.packet.start);
                    self.resend_tx.push_back(buf);
                    queued += 1;
                }
                POutbound::PassThrough => {
                    self.resend_tx.push_back(c);
                    queued += 1;
                }
                POutbound::Drop(reason) => {
                    tracing::debug!(reason = reason.name(), "re-send copy dropped");
                }
            }
        }
        if queued > 0 {
            tracing::info!(segments = queued, "re-sending on the new pair");
        }
    }

    /// With `[mptcp] enabled`: the context's verified peer locators and our locators,
    /// for the MPTCP path manager (mptcp/mod.rs "How to wire it", step 2).
    fn mptcp_peer(&mut self, tag: ContextTag) {
        if !self.mptcp {
            return;
        }
        let Some(c) = self.ep.context(tag) else {
            return;
        };
        let view = crate::mptcp::policy::PeerView {
            ulid_peer: c.key.ulid_peer,
            locals: self.locators.clone(),
            remotes: c.peer_locators.iter().map(|l| l.addr).collect(),
        };
        self.pending.push_back(CoreEvent::PeerLocators(view));
    }

    fn span(&self, tag: ContextTag) -> tracing::Span {
        match self.ep.context(tag) {
            Some(c) => self.span_key(tag, c.key.ulid_local, c.key.ulid_peer),
            None => tracing::info_span!("context", tag = %tag),
        }
    }

    fn span_key(&self, tag: ContextTag, local: Ipv6Addr, peer: Ipv6Addr) -> tracing::Span {
        let ct_peer = self
            .ep
            .context(tag)
            .and_then(|c| c.ct_peer)
            .map(|t| t.to_string());
        tracing::info_span!(
            "context",
            tag = %tag,
            ct_peer = ct_peer.as_deref().unwrap_or("-"),
            ulid_local = %local,
            ulid_peer = %peer
        )
    }

    fn tags(&self, target: Target) -> Result<Vec<ContextTag>, CommandError> {
        match target {
            Target::All => {
                let mut v: Vec<ContextTag> = self.ep.contexts().map(|c| c.ct_local).collect();
                v.sort_by_key(|t| t.value());
                Ok(v)
            }
            Target::Tag(t) => {
                let tag = ContextTag::new(t)
                    .filter(|t| self.ep.context(*t).is_some())
                    .ok_or_else(|| CommandError::Failed(format!("no context with tag {t:#x}")))?;
                Ok(vec![tag])
            }
        }
    }

    fn context_json(&self, c: &ContextInfo) -> Value {
        let reap = self.ep.reap(c.ct_local).map(|r| {
            let at = |t| {
                r.timer(t)
                    .map(|d: Instant| d.saturating_duration_since(self.now).as_secs_f64())
            };
            let s = r.stats();
            json!({
                "state": r.state().to_string(),
                "current_pair": pair_json(&r.current_pair()),
                "send_timeout_s": r.config().send_timeout.as_secs_f64(),
                "keepalive_timeout_s": r.keepalive_timeout().as_secs_f64(),
                // Seconds until each armed timer fires (RFC 5534 §6).
                "timers_s": {
                    "send": at(reap::timer::Timer::Send),
                    "keepalive": at(reap::timer::Timer::Keepalive),
                    "keepalive_interval": at(reap::timer::Timer::KeepaliveInterval),
                    "probe": at(reap::timer::Timer::Probe),
                },
                "exploration_order": r.exploration_order()
                    .map(|o| o.iter().map(pair_json).collect::<Vec<_>>()),
                "given_up": r.given_up(),
                "stats": {
                    "probes_sent": s.probes_sent,
                    "exploring_probes_sent": s.exploring_probes_sent,
                    "keepalives_sent": s.keepalives_sent,
                    "probes_received": s.probes_received,
                    "keepalives_received": s.keepalives_received,
                    "explorations": s.explorations,
                    "path_changes": s.path_changes,
                    "unmatched_reports": s.unmatched_reports,
                    "malformed_probes": s.malformed_probes,
                    "stale_probes": s.stale_probes,
                    "reactions_suppressed": s.reactions_suppressed,
                    "icmp_hints_ignored": s.icmp_hints_ignored,
                },
            })
        });
        let events: Vec<Value> = self
            .history
            .get(&c.ct_local)
            .map(|h| {
                h.iter()
                    .map(|r| {
                        json!({
                            "unix_ms": (r.unix_us / 1000) as u64,
                            "unix_us": r.unix_us as u64,
                            "event": r.kind,
                            "detail": r.detail,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "tag": c.ct_local.to_string(),
            "tag_value": c.ct_local.value(),
            "ct_peer": c.ct_peer.map(|t| t.to_string()),
            "state": c.state.to_string(),
            "fii": c.key.fii,
            "ulid_local": c.key.ulid_local.to_string(),
            "ulid_peer": c.key.ulid_peer.to_string(),
            "current_pair": pair_json(&c.current_pair),
            "local_locators": self.locators.iter().map(|a| json!({
                "address": a.to_string(),
                "verification": self.local_method(a),
            })).collect::<Vec<_>>(),
            "peer_locators": c.peer_locators.iter().map(|l| json!({
                "address": l.addr.to_string(),
                "verification": match l.method {
                    None => "ULID".to_owned(),
                    Some(VerificationMethod::Hba) => "HBA".to_owned(),
                    Some(VerificationMethod::Cga) => "CGA".to_owned(),
                    Some(VerificationMethod::Other(v)) => format!("method {v}"),
                },
                "broken": l.pref.broken,
                "transient": l.pref.transient,
                "priority": l.pref.priority,
                "weight": l.pref.weight,
            })).collect::<Vec<_>>(),
            "peer_generation": c.peer_generation,
            "peer_keepalive_timeout_s": c.peer_keepalive_timeout,
            "update_pending": c.update_pending,
            "reap": reap,
            "events": events,
        })
    }

    fn ls(&self) -> Reply {
        let mut all: Vec<ContextInfo> = self.ep.contexts().collect();
        all.sort_by_key(|c| c.ct_local.value());
        let mut text = String::new();
        let mut rows = Vec::new();
        for c in &all {
            let reap = c.reap_state.map_or("-".to_owned(), |s| s.to_string());
            text.push_str(&format!(
                "{} {:<12} {} -> {} via {} reap {}\n",
                c.ct_local, c.state, c.key.ulid_local, c.key.ulid_peer, c.current_pair, reap
            ));
            rows.push(json!({
                "tag": c.ct_local.to_string(),
                "state": c.state.to_string(),
                "ulid_local": c.key.ulid_local.to_string(),
                "ulid_peer": c.key.ulid_peer.to_string(),
                "current_pair": pair_json(&c.current_pair),
                "reap_state": c.reap_state.map(|s| s.to_string()),
            }));
        }
        if all.is_empty() {
            text.push_str("no contexts");
        }
        Reply::new(text.trim_end().to_owned(), Value::Array(rows))
    }

    fn stats_json(&self) -> Value {
        let s = self.ep.stats();
        let drops: serde_json::Map<String, Value> = s
            .drop_table()
            .map(|(r, n)| (r.name().to_owned(), json!(n)))
            .collect();
        let mut sent = serde_json::Map::new();
        let mut received = serde_json::Map::new();
        for ty in MESSAGE_TYPES {
            sent.insert(ty.to_string(), json!(s.sent(ty)));
            received.insert(ty.to_string(), json!(s.received(ty)));
        }
        json!({
            "contexts": self.ep.context_count(),
            "contexts_created": s.contexts_created,
            "contexts_removed": s.contexts_removed,
            "confusions": s.confusions,
            "tag_collisions": s.tag_collisions,
            "r1bis_suppressed": s.r1bis_suppressed,
            "errors_suppressed": s.errors_suppressed,
            "payload_rewritten": s.payload_rewritten,
            "payload_passed": s.payload_passed,
            "payload_restored": s.payload_restored,
            "icmp_translated": s.icmp_translated,
            "icmp_about_shim6": s.icmp_about_shim6,
            "resend": self.resend.as_ref().map(|r| {
                let st = r.stats();
                json!({
                    "kept": st.kept,
                    "acked": st.acked,
                    "expired": st.expired,
                    "evicted": st.evicted,
                    "resent": st.resent,
                    "bytes": r.total_bytes(),
                })
            }),
            "signatures_made": self.ep.signatures_made(),
            "drops": drops,
            "sent": sent,
            "received": received,
        })
    }

    fn params_json(&self) -> Value {
        let r = &self.ep.config().reap;
        json!({
            "mode": self.mode.as_str(),
            "params_file": self.params_file.display().to_string(),
            "sec": self.sec,
            "signing_key": self.has_key,
            "ulids": self.ulids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "default_local_ulid": self.ulids.first().map(ToString::to_string),
            "reap": {
                "send_timeout_s": r.send_timeout.as_secs_f64(),
                "initial_probe_timeout_s": r.initial_probe_timeout.as_secs_f64(),
                "max_probe_timeout_s": r.max_probe_timeout.as_secs_f64(),
                "burst": r.burst,
                "orthogonal_first": r.orthogonal_first,
            },
            "teardown_idle_s": self.ep.policy().teardown_idle.as_secs_f64(),
        })
    }

    /// The local ULID to establish from: the one sharing the longest prefix with the
    /// peer (the kernel's source-address rule 8, RFC 6724 §5), the first on ties.
    fn local_ulid_for(&self, peer: Ipv6Addr) -> Option<Ipv6Addr> {
        let common = |a: &Ipv6Addr| (u128::from(*a) ^ u128::from(peer)).leading_zeros();
        let mut best: Option<Ipv6Addr> = None;
        for u in &self.ulids {
            if best.is_none_or(|b| common(u) > common(&b)) {
                best = Some(*u);
            }
        }
        best
    }
}

/// Every known message type, for the counters.
const MESSAGE_TYPES: [MessageType; 11] = [
    MessageType::I1,
    MessageType::R1,
    MessageType::I2,
    MessageType::R2,
    MessageType::R1bis,
    MessageType::I2bis,
    MessageType::UpdateRequest,
    MessageType::UpdateAcknowledgement,
    MessageType::Keepalive,
    MessageType::Probe,
    MessageType::Error,
];

fn pair_json(p: &reap::Pair) -> Value {
    json!({ "local": p.local.to_string(), "remote": p.remote.to_string() })
}

fn failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(e.to_string())
}

/// Writes the fixed IPv6 header of a datagram the raw socket stripped (RFC 8200 §3),
/// `payload_len` octets of payload: Next Header 140 (RFC 5533 §5) from the Shim6
/// socket, 58 (ICMPv6) from the ICMPv6 socket.
fn ipv6_header(
    h: &mut [u8],
    meta: &RecvMeta,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    payload_len: u16,
    next_header: u8,
) {
    let tc = meta.tclass.unwrap_or(0);
    let fl = meta.flow_label.unwrap_or(0) & 0x000f_ffff;
    let word = (6u32 << 28) | (u32::from(tc) << 20) | fl;
    h[0..4].copy_from_slice(&word.to_be_bytes());
    h[4..6].copy_from_slice(&payload_len.to_be_bytes());
    h[6] = next_header;
    h[7] = meta.hop_limit.unwrap_or(64);
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
}

impl ProtoCore {
    /// Rebuilds the IPv6 header the raw socket stripped, in the headroom, and hands the
    /// whole packet to the endpoint.
    fn inbound_with(
        &mut self,
        now: Instant,
        packet: &mut PacketBuf,
        meta: &RecvMeta,
        next_header: u8,
    ) -> Inbound {
        self.now = now;
        let (Some(src), Some(dst)) = (meta.src, meta.dst) else {
            return Inbound::Drop("no_pktinfo");
        };
        let (data, start, len) = packet.parts_mut();
        let Some(hstart) = start.checked_sub(IPV6_HEADER) else {
            return Inbound::Drop("internal");
        };
        let Ok(payload_len) = u16::try_from(len) else {
            return Inbound::Drop("too_long");
        };
        ipv6_header(
            &mut data[hstart..start],
            meta,
            src,
            dst,
            payload_len,
            next_header,
        );
        match self.ep.handle_inbound(now, data, hstart..start + len) {
            PInbound::DeliverToTun(r) => {
                if packet.set_window(r.start, r.len()) {
                    // The peer's ACKs clear what the re-send buffer kept.
                    if let Some(rb) = self.resend.as_mut() {
                        rb.on_inbound(now, packet.packet());
                    }
                    Inbound::DeliverToTun
                } else {
                    Inbound::Drop("internal")
                }
            }
            PInbound::Consumed => Inbound::Consumed,
            PInbound::Drop(r) => Inbound::Drop(r.name()),
        }
    }
}

impl ProtocolCore for ProtoCore {
    fn outbound(&mut self, now: Instant, packet: &mut PacketBuf) -> Outbound {
        self.now = now;
        // Keep a copy in ULID form before the endpoint rewrites it (resend.rs step 2).
        if let Some(r) = self.resend.as_mut() {
            r.on_outbound(now, packet.packet());
        }
        let (data, start, len) = packet.parts_mut();
        match self.ep.handle_outbound(now, data, start..start + len) {
            POutbound::PassThrough => Outbound::PassThrough,
            POutbound::Send(sent) => {
                if packet.set_window(sent.packet.start, sent.packet.len()) {
                    Outbound::Send
                } else {
                    // The endpoint returned a range inside the buffer it was given.
                    Outbound::Drop("internal")
                }
            }
            POutbound::Drop(r) => Outbound::Drop(r.name()),
        }
    }

    fn inbound(&mut self, now: Instant, packet: &mut PacketBuf, meta: &RecvMeta) -> Inbound {
        self.inbound_with(now, packet, meta, shim6_wire::shim6::IP_PROTO_SHIM6)
    }

    fn inbound_icmp(&mut self, now: Instant, packet: &mut PacketBuf, meta: &RecvMeta) -> Inbound {
        // IANA protocol number of ICMPv6 (RFC 4443).
        self.inbound_with(now, packet, meta, 58)
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut PacketBuf) -> bool {
        self.now = now;
        // Apply the endpoint's events first: a path change queues the re-sent copies,
        // which then leave in this same drain (resend.rs step 4). The events stay in
        // `pending` for `poll_event`.
        while let Some(ev) = self.ep.poll_event() {
            self.on_event(ev);
        }
        while let Some(t) = self.ep.poll_transmit() {
            tracing::debug!(
                message = %t.message_type,
                src = %t.src,
                dst = %t.dst,
                len = t.packet.len(),
                "send control message"
            );
            // Control messages are at most 1280 octets (RFC 5533 §5.1); the scratch
            // buffer holds a TUN MTU (≥ 1280) plus headroom.
            if buf.set_window(0, t.packet.len()) {
                buf.packet_mut().copy_from_slice(&t.packet);
                return true;
            }
            tracing::warn!(
                len = t.packet.len(),
                "control message larger than the buffer"
            );
        }
        while let Some(p) = self.resend_tx.pop_front() {
            if buf.set_window(0, p.len()) {
                buf.packet_mut().copy_from_slice(&p);
                return true;
            }
            tracing::debug!(len = p.len(), "re-sent copy larger than the buffer");
        }
        false
    }

    fn poll_event(&mut self) -> Option<CoreEvent> {
        while self.pending.is_empty() {
            let ev = self.ep.poll_event()?;
            self.on_event(ev);
        }
        self.pending.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.ep.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(r) = self.resend.as_mut() {
            r.expire(now);
        }
        self.ep.handle_timeout(now);
    }

    fn local_locators(&mut self, now: Instant, locators: &[Ipv6Addr]) {
        self.now = now;
        let (mut usable, mut unverifiable): (Vec<Ipv6Addr>, Vec<Ipv6Addr>) =
            locators.iter().partition(|a| self.verifiable(a));
        unverifiable.sort();
        unverifiable.dedup();
        if unverifiable != self.unverifiable {
            if !unverifiable.is_empty() {
                // RFC 5535 §7.2: without a key only members of the HBA set can be
                // advertised (e.g. a mobile node's care-of address on a visited prefix
                // outside the set: MipShim6 needs a CGA-compatible set and its key).
                tracing::warn!(
                    addresses = ?unverifiable,
                    "addresses not used as locators: not in the HBA set and no key signs \
                     (identity.mode = \"cga\" with a CGA-compatible set and key_file)"
                );
            }
            self.unverifiable = unverifiable;
        }
        usable.sort();
        usable.dedup();
        if usable == self.locators {
            return;
        }
        tracing::info!(
            locators = ?usable,
            "local locators changed; Update Request to every established peer (RFC 5533 §10.1)"
        );
        let set: Vec<reap::Locator> = usable.iter().map(|a| reap::Locator::new(*a)).collect();
        match self.ep.handle_local_locators(now, &set) {
            Ok(()) => {
                self.locators = usable;
                // The path manager's `locals` follow (mptcp/mod.rs wiring step 3).
                let tags: Vec<ContextTag> = self.established.keys().copied().collect();
                for tag in tags {
                    self.mptcp_peer(tag);
                }
            }
            Err(e) => tracing::error!(error = %e, "local locators refused by the core"),
        }
    }

    fn peer_activity(&mut self, now: Instant, ulid_local: Ipv6Addr, ulid_peer: Ipv6Addr) {
        self.now = now;
        self.ep.note_peer_activity(now, ulid_local, ulid_peer);
    }

    fn local_address_down(&mut self, now: Instant, addr: Ipv6Addr) {
        self.now = now;
        self.ep.handle_hint(now, reap::Hint::LocalAddressDown(addr));
    }

    fn command(&mut self, now: Instant, command: &Command) -> Result<Reply, CommandError> {
        self.now = now;
        match command {
            Command::Ls => Ok(self.ls()),
            Command::Cat(target) => {
                let tags = self.tags(*target)?;
                let all: Vec<Value> = tags
                    .iter()
                    .filter_map(|t| self.ep.context(*t))
                    .map(|c| self.context_json(&c))
                    .collect();
                let mut text = String::new();
                for c in &all {
                    let mut block = String::new();
                    crate::service::flatten("", c, &mut block);
                    text.push_str(&block);
                    text.push('\n');
                }
                if all.is_empty() {
                    text.push_str("no contexts");
                }
                Ok(Reply::new(text.trim_end().to_owned(), Value::Array(all)))
            }
            Command::Rm(target) => {
                let tags = self.tags(*target)?;
                for t in &tags {
                    self.ep.close(now, *t).map_err(failed)?;
                }
                Ok(Reply::new(
                    format!("closed {} context(s)", tags.len()),
                    json!({ "closed": tags.iter().map(ToString::to_string).collect::<Vec<_>>() }),
                ))
            }
            Command::Establish(peer) => {
                let local = self
                    .local_ulid_for(*peer)
                    .ok_or_else(|| failed("no local ULID"))?;
                let tag = self.ep.establish(now, local, *peer).map_err(failed)?;
                self.record(tag, "i1_sent", json!({}));
                Ok(Reply::new(
                    format!("I1 sent: context {tag} {local} -> {peer}"),
                    json!({ "tag": tag.to_string(), "tag_value": tag.value(),
                            "ulid_local": local.to_string(), "ulid_peer": peer.to_string() }),
                ))
            }
            Command::Explore(t) => {
                let tag = self.tags(Target::Tag(*t))?[0];
                self.ep.explore(now, tag).map_err(failed)?;
                self.record(tag, "explore_requested", json!({}));
                Ok(Reply::new(
                    format!("context {tag}: REAP checks its current pair"),
                    json!({ "tag": tag.to_string() }),
                ))
            }
            Command::SetSendTimeout(d) => {
                let reap = reap::Config {
                    send_timeout: *d,
                    ..self.ep.config().reap.clone()
                };
                self.ep.set_reap_config(reap).map_err(failed)?;
                Ok(Reply::new(
                    "ok",
                    json!({ "send_timeout_s": d.as_secs_f64() }),
                ))
            }
            Command::Stats => Ok(Reply::new("", self.stats_json())),
            Command::Params => Ok(Reply::new("", self.params_json())),
            Command::Locators => Ok(Reply::new(
                "",
                json!({
                    "shim6_locators": self.locators.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "ulids": self.ulids.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
            )),
            Command::Help(_) | Command::Quit => Err(failed("answered by the session")),
            Command::Mptcp | Command::Bindings | Command::Bul => {
                Err(failed("answered by the service loop"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The adapter without kernels: two cores joined by hand, the way the service loop
    //! joins them through the raw sockets (the IPv6 header stripped on receive).

    use std::path::Path;

    use super::*;
    use crate::config::Config;

    /// A pure HBA set over `2001:db8:<site>:<i>::/64`, i = 1..=3, written as cga-tool's
    /// JSON; returns its addresses.
    fn write_identity(dir: &Path, site: u16, salt: u8) -> Vec<Ipv6Addr> {
        let prefixes: Vec<[u8; 8]> = (1..=3u16)
            .map(|i| {
                let mut p = [0u8; 8];
                p[..2].copy_from_slice(&0x2001u16.to_be_bytes());
                p[2..4].copy_from_slice(&0x0db8u16.to_be_bytes());
                p[4..6].copy_from_slice(&site.to_be_bytes());
                p[6..8].copy_from_slice(&i.to_be_bytes());
                p
            })
            .collect();
        let key = cga::hba_pseudo_key(&[salt; 48]);
        let set = cga::Generator::from_parts(cga::Sec::ZERO, key, &prefixes, false)
            .unwrap()
            .finish([salt; 16]);
        let members = set.members();
        let doc = json!({
            "sec": 0,
            "addresses": members.iter().map(|(_, a, p)| json!({
                "address": a.to_string(),
                "params": p.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            })).collect::<Vec<_>>(),
        });
        std::fs::write(dir.join("hba.json"), doc.to_string()).unwrap();
        members.iter().map(|m| m.1).collect()
    }

    fn core(dir: &Path, site: u16, salt: u8, now: Instant) -> (ProtoCore, Vec<Ipv6Addr>) {
        let addrs = write_identity(dir, site, salt);
        let mut config = Config::default();
        config.identity.params_file = dir.join("hba.json");
        // An address outside the HBA set: a peer could not verify it (no key).
        let mut locs = addrs.clone();
        locs.push("2001:db8:ffff::1".parse().unwrap());
        let core = ProtoCore::from_config(&config, &locs, now)
            .unwrap()
            .unwrap();
        (core, addrs)
    }

    fn tempdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("shim6d-proto-core-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Moves every queued control message from `from` to `to` as the raw sockets
    /// would: the IPv6 header stripped, source and destination in the metadata.
    fn deliver(from: &mut ProtoCore, to: &mut ProtoCore, now: Instant) -> usize {
        let mut n = 0;
        let mut out = PacketBuf::new(1500);
        while from.poll_transmit(now, &mut out) {
            let pkt = out.packet().to_vec();
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[24..40]).unwrap());
            assert_eq!(pkt[6], 140, "a Shim6 message");
            let mut buf = PacketBuf::new(1500);
            let body = &pkt[40..];
            buf.recv_space()[..body.len()].copy_from_slice(body);
            buf.set_received(body.len());
            let meta = RecvMeta {
                len: body.len(),
                src: Some(src),
                dst: Some(dst),
                hop_limit: Some(pkt[7]),
                ..RecvMeta::default()
            };
            assert_eq!(to.inbound(now, &mut buf, &meta), Inbound::Consumed);
            n += 1;
        }
        n
    }

    fn events(c: &mut ProtoCore) -> Vec<CoreEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    #[test]
    fn identity_file_without_addresses_means_no_core() {
        let dir = tempdir("none");
        std::fs::write(dir.join("hba.json"), "{}").unwrap();
        let mut config = Config::default();
        config.identity.params_file = dir.join("hba.json");
        assert!(
            ProtoCore::from_config(&config, &[], Instant::now())
                .unwrap()
                .is_none()
        );
        std::fs::write(dir.join("hba.json"), r#"{"addresses":[{"address":"x"}]}"#).unwrap();
        let e = ProtoCore::from_config(&config, &[], Instant::now()).unwrap_err();
        assert!(
            e.to_string().contains("needs \"address\" and \"params\""),
            "{e}"
        );
        // A ULID asked for that the file does not hold.
        write_identity(&dir, 7, 7);
        config.identity.ulids = vec!["2001:db8::1".parse().unwrap()];
        let e = ProtoCore::from_config(&config, &[], Instant::now()).unwrap_err();
        assert!(e.to_string().contains("is not in"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn two_cores_establish_route_and_close() {
        let t0 = Instant::now();
        let (da, db) = (tempdir("a"), tempdir("b"));
        let (mut a, aa) = core(&da, 0xa, 1, t0);
        let (mut b, ba) = core(&db, 0xb, 2, t0);
        // Only the HBA members are Shim6 locators (RFC 5535 §7.2).
        let locs = a.command(t0, &Command::Locators).unwrap().json;
        assert_eq!(
            locs["shim6_locators"].as_array().unwrap().len(),
            3,
            "{locs}"
        );
        assert!(!locs.to_string().contains("ffff"), "{locs}");

        let r = a.command(t0, &Command::Establish(ba[0])).unwrap();
        assert_eq!(r.json["ulid_local"], aa[0].to_string());
        // I1 → R1 → I2 → R2.
        for _ in 0..2 {
            assert_eq!(deliver(&mut a, &mut b, t0), 1);
            assert_eq!(deliver(&mut b, &mut a, t0), 1);
        }
        let up = |l: Ipv6Addr, p: Ipv6Addr| CoreEvent::ContextUp {
            ulid_local: l,
            ulid_peer: p,
        };
        assert_eq!(
            events(&mut a),
            vec![up(aa[0], ba[0]), CoreEvent::RouteAdd(ba[0])]
        );
        assert_eq!(
            events(&mut b),
            vec![up(ba[0], aa[0]), CoreEvent::RouteAdd(aa[0])]
        );
        let cat = a.command(t0, &Command::Cat(Target::All)).unwrap().json;
        let c = &cat[0];
        assert_eq!(c["state"], "ESTABLISHED");
        assert_eq!(c["reap"]["state"], "Operational");
        let verified: Vec<&Value> = c["peer_locators"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["verification"] == "HBA")
            .collect();
        assert_eq!(verified.len(), 3, "{c}");
        let kinds: Vec<&str> = c["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["i1_sent", "established"]);

        // A TUN packet between the ULIDs goes out unchanged (locators = ULIDs, §12.1).
        let mut p = PacketBuf::new(1500);
        let n = 48;
        let s = p.tun_space();
        s[..n].fill(0);
        s[0] = 0x60;
        s[5] = 8;
        s[6] = 17;
        s[7] = 64;
        s[8..24].copy_from_slice(&aa[0].octets());
        s[24..40].copy_from_slice(&ba[0].octets());
        p.set_from_tun(n);
        assert_eq!(a.outbound(t0, &mut p), Outbound::PassThrough);
        assert!(a.poll_timeout().is_some(), "REAP's Send timer runs");

        // rm: closed, route out; a second rm says why it fails.
        let tag = c["tag_value"].as_u64().unwrap();
        a.command(t0, &Command::Rm(Target::Tag(tag))).unwrap();
        assert_eq!(
            events(&mut a),
            vec![
                CoreEvent::ContextDown {
                    ulid_local: aa[0],
                    ulid_peer: ba[0]
                },
                CoreEvent::RouteRemove(ba[0])
            ]
        );
        assert!(a.command(t0, &Command::Rm(Target::Tag(tag))).is_err());
        let st = a.command(t0, &Command::Stats).unwrap().json;
        assert_eq!(st["sent"]["I1"], 1);
        assert_eq!(st["received"]["R2"], 1);
        assert_eq!(st["contexts"], 0);
        for d in [da, db] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    /// A CGA-compatible HBA set over `2001:db8:<site>:1::/64` with `key`, as cga-tool's
    /// JSON; returns its one address.
    fn write_cga_compatible(dir: &Path, site: u16, key: &cga::PrivateKey) -> Ipv6Addr {
        let mut p = [0u8; 8];
        p[..2].copy_from_slice(&0x2001u16.to_be_bytes());
        p[2..4].copy_from_slice(&0x0db8u16.to_be_bytes());
        p[4..6].copy_from_slice(&site.to_be_bytes());
        p[6..8].copy_from_slice(&1u16.to_be_bytes());
        let set = cga::Generator::hba(&[p], Some(&key.public_key().unwrap()), cga::Sec::ZERO)
            .unwrap()
            .finish([3; 16]);
        let (_, a, params) = set.members().remove(0);
        let doc = json!({
            "sec": 0,
            "addresses": [{
                "address": a.to_string(),
                "params": params.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            }],
        });
        std::fs::write(dir.join("hba.json"), doc.to_string()).unwrap();
        a
    }

    /// MipShim6 with care-of addresses outside the HBA set (issue 7): a CGA-compatible
    /// set and its key (mode = "cga") advertise any address, a non-member with the CGA
    /// method, and the peer's `cat` shows it verified by CGA; a key that is not the
    /// parameters', or a pure HBA set, is refused at start.
    #[test]
    fn cga_compatible_identity_signs_locators_outside_the_set() {
        let t0 = Instant::now();
        let (da, db) = (tempdir("cga-a"), tempdir("cga-b"));
        let key = cga::PrivateKey::generate(1024).unwrap();
        key.save(&da.join("key.pem"), true).unwrap();
        let ua = write_cga_compatible(&da, 0xa, &key);
        let coa: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
        let mut config = Config::default();
        config.identity.mode = IdentityMode::Cga;
        config.identity.params_file = da.join("hba.json");
        config.identity.key_file = da.join("key.pem");
        let mut a = ProtoCore::from_config(&config, &[ua, coa], t0)
            .unwrap()
            .unwrap();
        let (mut b, ba) = core(&db, 0xb, 2, t0);
        let locs = a.command(t0, &Command::Locators).unwrap().json;
        assert!(locs.to_string().contains("2001:db8:ffff::1"), "{locs}");
        a.command(t0, &Command::Establish(ba[0])).unwrap();
        for _ in 0..2 {
            assert_eq!(deliver(&mut a, &mut b, t0), 1);
            assert_eq!(deliver(&mut b, &mut a, t0), 1);
        }
        let method = |cat: &Value, list: &str, addr: Ipv6Addr| {
            cat[0][list]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["address"] == addr.to_string())
                .map(|l| l["verification"].clone())
        };
        let cat_a = a.command(t0, &Command::Cat(Target::All)).unwrap().json;
        assert_eq!(method(&cat_a, "local_locators", ua), Some(json!("HBA")));
        assert_eq!(method(&cat_a, "local_locators", coa), Some(json!("CGA")));
        let cat_b = b.command(t0, &Command::Cat(Target::All)).unwrap().json;
        assert_eq!(cat_b[0]["state"], "ESTABLISHED", "{cat_b}");
        assert_eq!(method(&cat_b, "peer_locators", coa), Some(json!("CGA")));
        assert_eq!(b.stats_json()["drops"]["bad-signature"].as_u64(), Some(0));

        // Another key than the parameters': refused, its signatures would not verify.
        cga::PrivateKey::generate(1024)
            .unwrap()
            .save(&da.join("other.pem"), true)
            .unwrap();
        config.identity.key_file = da.join("other.pem");
        let e = ProtoCore::from_config(&config, &[], t0).unwrap_err();
        assert!(e.to_string().contains("not the key"), "{e}");
        // A pure HBA set has no key to sign with.
        write_identity(&da, 0xa, 1);
        config.identity.key_file = da.join("key.pem");
        let e = ProtoCore::from_config(&config, &[], t0).unwrap_err();
        assert!(e.to_string().contains("pure HBA set"), "{e}");
        std::fs::remove_dir_all(da).unwrap();
        std::fs::remove_dir_all(db).unwrap();
    }
}
