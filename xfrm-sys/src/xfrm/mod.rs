//! XFRM (`NETLINK_XFRM`): manually keyed IPsec security associations and policies, the
//! way `ip xfrm state` and `ip xfrm policy` manage them.
//!
//! # Why
//!
//! RFC 6275 §5.1 requires Binding Updates and Acknowledgements between a mobile node and
//! its home agent to be protected by IPsec ESP; RFC 3776 §3 and RFC 4877 §3 describe the
//! SAs and policies: transport-mode ESP, selectors on the Mobility Header (IPv6 next
//! header 135) between the home address and the home agent. With manual keying (RFC 3776
//! §5, keys from the configuration) the daemon installs them itself through this module,
//! and the kernel then drops any Mobility Header that did not come through the SA.
//!
//! # What
//!
//! [`Xfrm`] is a request connection on a `NETLINK_XFRM` socket (same stack as
//! [`Handle`](crate::Handle): `netlink-proto` 0.14 on tokio, `NETLINK_EXT_ACK` and
//! `NETLINK_CAP_ACK` set, so refusals carry the kernel's text in
//! [`Error::Kernel::message`](crate::Error::Kernel)). The messages are hand-encoded from
//! `include/uapi/linux/xfrm.h` (see `wire.rs`) and compared byte for byte with what
//! `ip xfrm` sends. IPv6 only.
//!
//! | `ip` | method |
//! | --- | --- |
//! | `ip xfrm state add` / `update` | [`Xfrm::add_sa`], [`Xfrm::update_sa`] |
//! | `ip xfrm state get` / `delete` | [`Xfrm::get_sa`], [`Xfrm::delete_sa`] |
//! | `ip xfrm state list` / `flush [proto P]` | [`Xfrm::sas`], [`Xfrm::flush_sas`] |
//! | `ip xfrm policy add` / `update` | [`Xfrm::add_policy`], [`Xfrm::update_policy`] |
//! | `ip xfrm policy get` / `delete` | [`Xfrm::get_policy`], [`Xfrm::delete_policy`] |
//! | `ip xfrm policy list` / `flush` | [`Xfrm::policies`], [`Xfrm::flush_policies`] |
//! | both, for MN ↔ HA signalling | [`MobilityProtection`]: [`Xfrm::install_mobility_protection`], [`Xfrm::remove_mobility_protection`] |
//!
//! # Kernel behaviour observed (6.18 CI kernel)
//!
//! - **Mobility Header type selectors need `CONFIG_IPV6_MIP6`.** The kernel carries the
//!   MH type in the selector's source port ([`Selector::mh_type`]); it extracts the type
//!   from incoming packets only when built with `CONFIG_IPV6_MIP6`
//!   (`net/xfrm/xfrm_policy.c`, `decode_session6`). Without it an inbound policy on
//!   "protocol 135 type 5" never matches and an unprotected Binding Update is delivered;
//!   a policy on the whole protocol 135 ([`Selector::mobility`]) does reject it (counted
//!   as `XfrmInTmplMismatch` in `/proc/net/xfrm_stat`). Protect the whole protocol.
//! - **An SA needs the protocol and the algorithms in the kernel.** Without
//!   `CONFIG_INET6_ESP`, adding an IPv6 ESP SA fails with `EPROTONOSUPPORT`, "Requested
//!   type not found"; without `CONFIG_CRYPTO_GCM`, `rfc4106(gcm(aes))` fails with
//!   `ENOSYS`, "Requested AEAD algorithm not found". Policies need neither.
//! - Deleting or getting an SA that is not there is `ESRCH` without text; deleting a
//!   policy that is not there is `ENOENT`; adding an existing SA or policy is `EEXIST`
//!   ([`Error::is_not_found`](crate::Error::is_not_found),
//!   [`Error::is_already_exists`](crate::Error::is_already_exists)).
//! - A raw IPv6 socket of protocol 135 gets its checksum computed and verified by the
//!   kernel at offset 4 (RFC 6275 §6.1.1), and inbound policies apply to it
//!   (`rawv6_rcv` calls `xfrm6_policy_check`).
//!
//! # Example: the home agent's side of RFC 3776 §3 with manual keys
//!
//! ```no_run
//! use xfrm_sys::xfrm::{AeadAlgorithm, Direction, Policy, SecurityAssociation, Selector, Template, Xfrm};
//!
//! # async fn f(key_in: &[u8], key_out: &[u8]) -> xfrm_sys::Result<()> {
//! let ha = "2001:db8:1::1".parse().unwrap();
//! let hoa = "2001:db8:1::100".parse().unwrap();
//! let x = Xfrm::new()?;
//! let aead = |k: &[u8]| AeadAlgorithm::rfc4106_gcm_aes(k).expect("20, 28 or 36 bytes");
//! x.add_sa(&SecurityAssociation::esp_transport(ha, hoa, 0x1001, 1).aead(aead(key_out)))
//!     .await?;
//! x.add_sa(&SecurityAssociation::esp_transport(hoa, ha, 0x1002, 2).aead(aead(key_in)))
//!     .await?;
//! x.add_policy(
//!     &Policy::new(Selector::mobility(ha, hoa), Direction::Out)
//!         .template(Template::esp_transport(ha, hoa, 1)),
//! )
//! .await?;
//! x.add_policy(
//!     &Policy::new(Selector::mobility(hoa, ha), Direction::In)
//!         .template(Template::esp_transport(hoa, ha, 2)),
//! )
//! .await?;
//! # Ok(())
//! # }
//! ```

use std::{fmt, net::Ipv6Addr, sync::Arc};

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_proto::ConnectionHandle;
use netlink_sys::protocols::NETLINK_XFRM;

use crate::{DecodeError, Error, Ipv6Prefix, Result, handle::request_connection};

mod mip6;
#[cfg(test)]
mod tests;
mod wire;

pub use mip6::{Algorithms, MobilityProtection, SaParams};
use wire::Message;

/// IPv6 next header of the Mobility Header (RFC 6275 §6.1).
pub const IPPROTO_MH: u8 = 135;
/// IP protocol number of ESP (RFC 4303 §2).
pub const IPPROTO_ESP: u8 = 50;
/// IP protocol number of AH (RFC 4302 §2).
pub const IPPROTO_AH: u8 = 51;
/// IP protocol number of `IPComp` (RFC 3173 §2.2).
pub const IPPROTO_COMP: u8 = 108;

/// How often a dump interrupted by a concurrent change is retried.
const DUMP_ATTEMPTS: usize = 5;
/// Longest key accepted by the constructors (the kernel's own limit is lower for every
/// real algorithm; this keeps the key length in bits far from `u32` overflow).
const MAX_KEY_LEN: usize = 512;

/// The IPsec protocol of an SA or template (`xfrm_id.proto`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum XfrmProto {
    /// ESP (RFC 4303), 50.
    Esp,
    /// AH (RFC 4302), 51.
    Ah,
    /// `IPComp` (RFC 3173), 108.
    Comp,
    /// Another number (`ROUTING` / `DSTOPTS` for the kernel's MIPv6 route optimisation).
    Other(u8),
}

impl XfrmProto {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Esp => IPPROTO_ESP,
            Self::Ah => IPPROTO_AH,
            Self::Comp => IPPROTO_COMP,
            Self::Other(n) => n,
        }
    }

    /// From an IP protocol number.
    pub const fn from_number(n: u8) -> Self {
        match n {
            IPPROTO_ESP => Self::Esp,
            IPPROTO_AH => Self::Ah,
            IPPROTO_COMP => Self::Comp,
            n => Self::Other(n),
        }
    }
}

/// An SA's or template's mode (`XFRM_MODE_*`, include/uapi/linux/xfrm.h).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Mode {
    /// `XFRM_MODE_TRANSPORT` (0): RFC 3776 §3 protects signalling in transport mode.
    Transport,
    /// `XFRM_MODE_TUNNEL` (1): RFC 3776 §3.1 uses it for payload in the reverse tunnel.
    Tunnel,
    /// `XFRM_MODE_ROUTEOPTIMIZATION` (2).
    RouteOptimization,
    /// `XFRM_MODE_BEET` (4).
    Beet,
    /// Another value.
    Other(u8),
}

impl Mode {
    /// The `XFRM_MODE_*` number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Transport => 0,
            Self::Tunnel => 1,
            Self::RouteOptimization => 2,
            Self::Beet => 4,
            Self::Other(n) => n,
        }
    }

    /// From an `XFRM_MODE_*` number.
    pub const fn from_number(n: u8) -> Self {
        match n {
            0 => Self::Transport,
            1 => Self::Tunnel,
            2 => Self::RouteOptimization,
            4 => Self::Beet,
            n => Self::Other(n),
        }
    }
}

/// A policy's direction (`XFRM_POLICY_IN/OUT/FWD`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Direction {
    /// Packets delivered to this host (0).
    In,
    /// Packets this host sends (1).
    Out,
    /// Packets this host forwards (2).
    Fwd,
}

impl Direction {
    /// The `XFRM_POLICY_*` direction number.
    pub const fn number(self) -> u8 {
        match self {
            Self::In => 0,
            Self::Out => 1,
            Self::Fwd => 2,
        }
    }

    /// From a direction number; `None` above 2.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::In),
            1 => Some(Self::Out),
            2 => Some(Self::Fwd),
            _ => None,
        }
    }
}

/// What a policy does with matching packets (`XFRM_POLICY_ALLOW` / `BLOCK`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PolicyAction {
    /// Allow, through the templates' SAs when there are templates (0).
    Allow,
    /// Drop (1).
    Block,
    /// Another value reported by the kernel.
    Other(u8),
}

impl PolicyAction {
    /// The action number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Allow => 0,
            Self::Block => 1,
            Self::Other(n) => n,
        }
    }

    /// From an action number.
    pub const fn from_number(n: u8) -> Self {
        match n {
            0 => Self::Allow,
            1 => Self::Block,
            n => Self::Other(n),
        }
    }
}

/// Which packets an SA or a policy applies to (`struct xfrm_selector`, IPv6).
///
/// Ports are the transport ports; for the Mobility Header the kernel puts the MH type in
/// the source port with mask `0xffff` ([`Selector::mh_type`]), for `ICMPv6` the type in
/// the source port and the code in the destination port.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Selector {
    /// Source prefix.
    pub src: Ipv6Prefix,
    /// Destination prefix.
    pub dst: Ipv6Prefix,
    /// Upper-layer protocol, 0 for any.
    pub proto: u8,
    /// Source port (or MH type, `ICMPv6` type), host order.
    pub sport: u16,
    /// Mask on [`Selector::sport`]; 0 matches any.
    pub sport_mask: u16,
    /// Destination port (or `ICMPv6` code), host order.
    pub dport: u16,
    /// Mask on [`Selector::dport`]; 0 matches any.
    pub dport_mask: u16,
    /// Interface index, 0 for any.
    pub ifindex: i32,
}

impl Selector {
    /// Every packet from `src` to `dst`, any protocol.
    pub const fn new(src: Ipv6Prefix, dst: Ipv6Prefix) -> Self {
        Self {
            src,
            dst,
            proto: 0,
            sport: 0,
            sport_mask: 0,
            dport: 0,
            dport_mask: 0,
            ifindex: 0,
        }
    }

    /// Mobility Header packets (protocol 135, every MH type) from host `src` to host `dst`:
    /// the selector of RFC 3776 §3 / RFC 4877 §3 for the home registration signalling.
    pub const fn mobility(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self::new(Ipv6Prefix::host(src), Ipv6Prefix::host(dst)).proto(IPPROTO_MH)
    }

    /// With upper-layer protocol `proto`.
    #[must_use]
    pub const fn proto(mut self, proto: u8) -> Self {
        self.proto = proto;
        self
    }

    /// Only Mobility Header type `mh_type` (RFC 6275 §6.1.1; 5 = Binding Update): the
    /// kernel keeps it in the source port. Only effective on input when the kernel has
    /// `CONFIG_IPV6_MIP6` (module docs).
    #[must_use]
    pub const fn mh_type(mut self, mh_type: u8) -> Self {
        self.sport = mh_type as u16;
        self.sport_mask = 0xffff;
        self
    }
}

/// Key material. `Debug` shows the length only, never the bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    bytes: Vec<u8>,
    bits: u32,
}

impl Key {
    /// A key of `bytes.len() * 8` bits; `None` when longer than 512 bytes.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_KEY_LEN {
            return None;
        }
        let bits = u32::try_from(bytes.len() * 8).ok()?;
        Some(Self {
            bytes: bytes.to_vec(),
            bits,
        })
    }

    fn from_bits(bytes: Vec<u8>, bits: u32) -> Self {
        Self { bytes, bits }
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key length in bits (`alg_key_len`).
    pub fn bits(&self) -> u32 {
        self.bits
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bits)", self.bits)
    }
}

/// An algorithm name or key the kernel could not take.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid XFRM algorithm: {0}")]
pub struct InvalidAlgorithm(pub String);

fn check_name(name: &str) -> Result<(), InvalidAlgorithm> {
    if name.is_empty() || name.len() >= wire::ALG_NAME_LEN || name.contains('\0') {
        return Err(InvalidAlgorithm(format!(
            "name {name:?} must be 1 to {} bytes without NUL",
            wire::ALG_NAME_LEN - 1
        )));
    }
    Ok(())
}

fn make_key(name: &str, key: &[u8], allowed: &[usize]) -> Result<Key, InvalidAlgorithm> {
    if !allowed.is_empty() && !allowed.contains(&key.len()) {
        return Err(InvalidAlgorithm(format!(
            "{name}: key of {} bytes, expected one of {allowed:?}",
            key.len()
        )));
    }
    Key::new(key).ok_or_else(|| {
        InvalidAlgorithm(format!(
            "{name}: key of {} bytes, longer than {MAX_KEY_LEN}",
            key.len()
        ))
    })
}

/// An encryption algorithm (`struct xfrm_algo`, `XFRMA_ALG_CRYPT`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Algorithm {
    name: String,
    key: Key,
}

impl Algorithm {
    /// Any kernel crypto name (`"cbc(aes)"`) with its key.
    pub fn new(name: &str, key: &[u8]) -> Result<Self, InvalidAlgorithm> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key: make_key(name, key, &[])?,
        })
    }

    /// AES-CBC (RFC 3602 §2): a 16, 24 or 32-byte key.
    pub fn cbc_aes(key: &[u8]) -> Result<Self, InvalidAlgorithm> {
        Ok(Self {
            name: "cbc(aes)".to_owned(),
            key: make_key("cbc(aes)", key, &[16, 24, 32])?,
        })
    }

    fn decoded(name: String, key: Key) -> Self {
        Self { name, key }
    }

    /// The kernel crypto name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

/// An integrity algorithm with its ICV truncation (`struct xfrm_algo_auth`,
/// `XFRMA_ALG_AUTH_TRUNC`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AuthAlgorithm {
    name: String,
    key: Key,
    trunc_bits: u32,
}

impl AuthAlgorithm {
    /// Any kernel hash name (`"hmac(sha256)"`), key and truncation length in bits.
    pub fn new(name: &str, key: &[u8], trunc_bits: u32) -> Result<Self, InvalidAlgorithm> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key: make_key(name, key, &[])?,
            trunc_bits,
        })
    }

    /// HMAC-SHA-256-128 (RFC 4868 §2.1.1: a 32-byte key; §2.3: ICV truncated to 128 bits).
    pub fn hmac_sha256(key: &[u8]) -> Result<Self, InvalidAlgorithm> {
        Ok(Self {
            name: "hmac(sha256)".to_owned(),
            key: make_key("hmac(sha256)", key, &[32])?,
            trunc_bits: 128,
        })
    }

    fn decoded(name: String, key: Key, trunc_bits: u32) -> Self {
        Self {
            name,
            key,
            trunc_bits,
        }
    }

    /// The kernel crypto name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// ICV length in bits (0 when the kernel reported only `XFRMA_ALG_AUTH`).
    pub fn trunc_bits(&self) -> u32 {
        self.trunc_bits
    }
}

/// An authenticated-encryption algorithm (`struct xfrm_algo_aead`, `XFRMA_ALG_AEAD`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AeadAlgorithm {
    name: String,
    key: Key,
    icv_bits: u32,
}

impl AeadAlgorithm {
    /// Any kernel AEAD name, key (including any salt) and ICV length in bits.
    pub fn new(name: &str, key: &[u8], icv_bits: u32) -> Result<Self, InvalidAlgorithm> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key: make_key(name, key, &[])?,
            icv_bits,
        })
    }

    /// AES-GCM for ESP with a 16-octet ICV (RFC 4106 §8.1: the key is the AES key of
    /// 16, 24 or 32 bytes followed by a 4-byte salt; §6: ICV of 8, 12 or 16 octets).
    pub fn rfc4106_gcm_aes(key: &[u8]) -> Result<Self, InvalidAlgorithm> {
        Ok(Self {
            name: "rfc4106(gcm(aes))".to_owned(),
            key: make_key("rfc4106(gcm(aes))", key, &[20, 28, 36])?,
            icv_bits: 128,
        })
    }

    fn decoded(name: String, key: Key, icv_bits: u32) -> Self {
        Self {
            name,
            key,
            icv_bits,
        }
    }

    /// The kernel crypto name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key (with the salt).
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// ICV length in bits.
    pub fn icv_bits(&self) -> u32 {
        self.icv_bits
    }
}

/// A security association (`ip xfrm state`), IPv6, with unlimited lifetime.
///
/// An ESP SA carries either [`SecurityAssociation::aead`] or
/// [`SecurityAssociation::auth`] with [`SecurityAssociation::enc`] (RFC 4303 §3.2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SecurityAssociation {
    /// Source address (`saddr`).
    pub src: Ipv6Addr,
    /// Destination address (`id.daddr`).
    pub dst: Ipv6Addr,
    /// IPsec protocol (`id.proto`).
    pub proto: XfrmProto,
    /// Security Parameter Index (RFC 4303 §2.1), host order here, network order on the
    /// wire.
    pub spi: u32,
    /// Request id: ties the SA to policy templates with the same `reqid`.
    pub reqid: u32,
    /// Mode.
    pub mode: Mode,
    /// Which packets the SA may carry; the kernel checks it on input.
    pub selector: Selector,
    /// Anti-replay window in packets (0: off, as `ip` defaults; RFC 4303 §3.4.3).
    pub replay_window: u8,
    /// `XFRM_STATE_*` flags.
    pub flags: u8,
    /// AEAD algorithm.
    pub aead: Option<AeadAlgorithm>,
    /// Integrity algorithm.
    pub auth: Option<AuthAlgorithm>,
    /// Encryption algorithm.
    pub enc: Option<Algorithm>,
}

impl SecurityAssociation {
    /// A transport-mode ESP SA from `src` to `dst` whose selector is the Mobility Header
    /// between the two hosts ([`Selector::mobility`]); add algorithms with
    /// [`SecurityAssociation::aead`] or [`SecurityAssociation::auth_enc`].
    pub fn esp_transport(src: Ipv6Addr, dst: Ipv6Addr, spi: u32, reqid: u32) -> Self {
        Self {
            src,
            dst,
            proto: XfrmProto::Esp,
            spi,
            reqid,
            mode: Mode::Transport,
            selector: Selector::mobility(src, dst),
            replay_window: 0,
            flags: 0,
            aead: None,
            auth: None,
            enc: None,
        }
    }

    /// With selector `selector`.
    #[must_use]
    pub fn selector(mut self, selector: Selector) -> Self {
        self.selector = selector;
        self
    }

    /// With the AEAD algorithm `alg` (and no separate integrity/encryption).
    #[must_use]
    pub fn aead(mut self, alg: AeadAlgorithm) -> Self {
        self.aead = Some(alg);
        self.auth = None;
        self.enc = None;
        self
    }

    /// With integrity `auth` and encryption `enc` (and no AEAD).
    #[must_use]
    pub fn auth_enc(mut self, auth: AuthAlgorithm, enc: Algorithm) -> Self {
        self.aead = None;
        self.auth = Some(auth);
        self.enc = Some(enc);
        self
    }

    /// The SA's identity, for get and delete.
    pub fn id(&self) -> SaId {
        SaId {
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            spi: self.spi,
        }
    }
}

/// What identifies an SA (`struct xfrm_usersa_id` and `XFRMA_SRCADDR`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SaId {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// IPsec protocol.
    pub proto: XfrmProto,
    /// SPI, host order.
    pub spi: u32,
}

/// A policy template (`struct xfrm_user_tmpl`): which SA must have processed the packet
/// (input) or must process it (output).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Template {
    /// SA source (for transport mode, may be `::` for any).
    pub src: Ipv6Addr,
    /// SA destination.
    pub dst: Ipv6Addr,
    /// IPsec protocol.
    pub proto: XfrmProto,
    /// SPI, 0 for any.
    pub spi: u32,
    /// Request id of the SA, 0 for any.
    pub reqid: u32,
    /// Mode.
    pub mode: Mode,
    /// Whether the transform may be absent (`level use`).
    pub optional: bool,
}

impl Template {
    /// Transport-mode ESP between `src` and `dst` with request id `reqid` (RFC 3776 §3).
    pub const fn esp_transport(src: Ipv6Addr, dst: Ipv6Addr, reqid: u32) -> Self {
        Self {
            src,
            dst,
            proto: XfrmProto::Esp,
            spi: 0,
            reqid,
            mode: Mode::Transport,
            optional: false,
        }
    }
}

/// A security policy (`ip xfrm policy`), main policy type, unlimited lifetime.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Policy {
    /// Which packets.
    pub selector: Selector,
    /// Direction.
    pub dir: Direction,
    /// Priority: lower values win (the kernel's default 0).
    pub priority: u32,
    /// Kernel-assigned index (ignored on add; reported by get and list).
    pub index: u32,
    /// Allow or block.
    pub action: PolicyAction,
    /// Templates, outermost last; empty: allow without IPsec.
    pub templates: Vec<Template>,
}

impl Policy {
    /// An allow policy without templates.
    pub fn new(selector: Selector, dir: Direction) -> Self {
        Self {
            selector,
            dir,
            priority: 0,
            index: 0,
            action: PolicyAction::Allow,
            templates: Vec::new(),
        }
    }

    /// With template `t` appended.
    #[must_use]
    pub fn template(mut self, t: Template) -> Self {
        self.templates.push(t);
        self
    }

    /// With priority `priority`.
    #[must_use]
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// The policy's identity (selector and direction), for get and delete.
    pub fn id(&self) -> PolicyId {
        PolicyId {
            selector: self.selector,
            dir: self.dir,
            index: 0,
        }
    }
}

/// What identifies a policy (`struct xfrm_userpolicy_id`): selector and direction, or
/// a kernel index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PolicyId {
    /// The selector (ignored when `index` is set).
    pub selector: Selector,
    /// The direction.
    pub dir: Direction,
    /// The kernel's index, 0 to look up by selector.
    pub index: u32,
}

/// An XFRM request connection in one network namespace.
///
/// Cheap to clone; requests from clones are multiplexed by sequence number.
#[derive(Clone, Debug)]
pub struct Xfrm {
    conn: ConnectionHandle<Message>,
    netns: Option<Arc<str>>,
    _task: Arc<crate::handle::AbortOnDrop>,
}

impl Xfrm {
    /// Opens an XFRM socket in the calling thread's namespace, driven by the current
    /// tokio runtime.
    pub fn new() -> Result<Self> {
        Self::open(None)
    }

    /// Opens an XFRM socket inside `/run/netns/NAME` (on a short-lived thread), driven
    /// by the current runtime.
    pub fn in_netns(name: &str) -> Result<Self> {
        Self::open(Some(name))
    }

    fn open(netns: Option<&str>) -> Result<Self> {
        let (conn, task) = request_connection(NETLINK_XFRM, "xfrm netlink", netns)?;
        Ok(Self {
            conn,
            netns: netns.map(Arc::from),
            _task: task,
        })
    }

    /// The namespace given to [`Xfrm::in_netns`], `None` for the caller's own.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// `ip xfrm state add`. An SA with the same (dst, proto, SPI) is `EEXIST`; a
    /// protocol or algorithm the kernel lacks is `EPROTONOSUPPORT` / `ENOSYS` with the
    /// kernel's text (module docs).
    pub async fn add_sa(&self, sa: &SecurityAssociation) -> Result<()> {
        let op = format!("add xfrm state {}", describe_sa(&sa.id()));
        self.ack(wire::XFRM_MSG_NEWSA, wire::sa_body(sa), &op).await
    }

    /// `ip xfrm state update`: replaces the SA with the same identity (`ESRCH` if none).
    pub async fn update_sa(&self, sa: &SecurityAssociation) -> Result<()> {
        let op = format!("update xfrm state {}", describe_sa(&sa.id()));
        self.ack(wire::XFRM_MSG_UPDSA, wire::sa_body(sa), &op).await
    }

    /// `ip xfrm state delete`; a missing SA is `ESRCH`.
    pub async fn delete_sa(&self, id: &SaId) -> Result<()> {
        let op = format!("delete xfrm state {}", describe_sa(id));
        self.ack(wire::XFRM_MSG_DELSA, wire::sa_id_body(id), &op)
            .await
    }

    /// `ip xfrm state get`; a missing SA is `ESRCH`.
    pub async fn get_sa(&self, id: &SaId) -> Result<SecurityAssociation> {
        let op = format!("get xfrm state {}", describe_sa(id));
        let answers = self
            .request(wire::XFRM_MSG_GETSA, wire::sa_id_body(id), &op)
            .await?;
        one(answers, wire::XFRM_MSG_NEWSA, wire::parse_sa, &op)
    }

    /// `ip xfrm state list`: every SA of the namespace. An SA of another family (IPv4)
    /// is a decode error.
    pub async fn sas(&self) -> Result<Vec<SecurityAssociation>> {
        let op = "list xfrm states";
        let msgs = self
            .dump(wire::XFRM_MSG_GETSA, wire::sa_dump_body(), op)
            .await?;
        all(msgs, wire::XFRM_MSG_NEWSA, wire::parse_sa, op)
    }

    /// `ip xfrm state flush [proto P]`; `None` flushes every protocol.
    pub async fn flush_sas(&self, proto: Option<XfrmProto>) -> Result<()> {
        let op = match proto {
            Some(p) => format!("flush xfrm states proto {}", p.number()),
            None => "flush xfrm states".to_owned(),
        };
        self.ack(wire::XFRM_MSG_FLUSHSA, wire::sa_flush_body(proto), &op)
            .await
    }

    /// `ip xfrm policy add`; an identical selector and direction is `EEXIST`.
    pub async fn add_policy(&self, policy: &Policy) -> Result<()> {
        let op = format!("add xfrm policy {}", describe_policy(&policy.id()));
        self.ack(wire::XFRM_MSG_NEWPOLICY, wire::policy_body(policy), &op)
            .await
    }

    /// `ip xfrm policy update`: adds or replaces.
    pub async fn update_policy(&self, policy: &Policy) -> Result<()> {
        let op = format!("update xfrm policy {}", describe_policy(&policy.id()));
        self.ack(wire::XFRM_MSG_UPDPOLICY, wire::policy_body(policy), &op)
            .await
    }

    /// `ip xfrm policy delete`; a missing policy is `ENOENT`.
    pub async fn delete_policy(&self, id: &PolicyId) -> Result<()> {
        let op = format!("delete xfrm policy {}", describe_policy(id));
        self.ack(wire::XFRM_MSG_DELPOLICY, wire::policy_id_body(id), &op)
            .await
    }

    /// `ip xfrm policy get`; a missing policy is `ENOENT`.
    pub async fn get_policy(&self, id: &PolicyId) -> Result<Policy> {
        let op = format!("get xfrm policy {}", describe_policy(id));
        let answers = self
            .request(wire::XFRM_MSG_GETPOLICY, wire::policy_id_body(id), &op)
            .await?;
        one(answers, wire::XFRM_MSG_NEWPOLICY, wire::parse_policy, &op)
    }

    /// `ip xfrm policy list`: every policy of the namespace (IPv4 ones are a decode
    /// error). Socket policies are not listed by the kernel.
    pub async fn policies(&self) -> Result<Vec<Policy>> {
        let op = "list xfrm policies";
        let msgs = self.dump(wire::XFRM_MSG_GETPOLICY, Vec::new(), op).await?;
        all(msgs, wire::XFRM_MSG_NEWPOLICY, wire::parse_policy, op)
    }

    /// `ip xfrm policy flush`: every main-type policy.
    pub async fn flush_policies(&self) -> Result<()> {
        self.ack(
            wire::XFRM_MSG_FLUSHPOLICY,
            Vec::new(),
            "flush xfrm policies",
        )
        .await
    }

    async fn ack(&self, kind: u16, body: Vec<u8>, op: &str) -> Result<()> {
        self.request(kind, body, op).await.map(drop)
    }

    /// Sends with `NLM_F_REQUEST | NLM_F_ACK`; answers before the ACK are returned.
    async fn request(&self, kind: u16, body: Vec<u8>, op: &str) -> Result<Vec<Message>> {
        let msg = Message { kind, body };
        Ok(self
            .exchange(msg, NLM_F_REQUEST | NLM_F_ACK, false, op)
            .await?
            .0)
    }

    async fn dump(&self, kind: u16, body: Vec<u8>, op: &str) -> Result<Vec<Message>> {
        for _ in 0..DUMP_ATTEMPTS {
            let msg = Message {
                kind,
                body: body.clone(),
            };
            let (messages, interrupted) = self
                .exchange(msg, NLM_F_REQUEST | NLM_F_DUMP, true, op)
                .await?;
            if !interrupted {
                return Ok(messages);
            }
        }
        Err(Error::unexpected(
            op,
            format!("dump interrupted by concurrent changes {DUMP_ATTEMPTS} times in a row"),
        ))
    }

    async fn exchange(
        &self,
        msg: Message,
        flags: u16,
        dump: bool,
        op: &str,
    ) -> Result<(Vec<Message>, bool)> {
        crate::handle::exchange(&self.conn, msg, flags, dump, op).await
    }
}

fn describe_sa(id: &SaId) -> String {
    format!(
        "src {} dst {} proto {} spi {:#x}",
        id.src,
        id.dst,
        id.proto.number(),
        id.spi
    )
}

fn describe_policy(id: &PolicyId) -> String {
    let s = &id.selector;
    let mut text = format!("src {} dst {}", s.src, s.dst);
    if s.proto != 0 {
        text.push_str(&format!(" proto {}", s.proto));
    }
    if s.proto == IPPROTO_MH && s.sport_mask != 0 {
        text.push_str(&format!(" type {}", s.sport));
    }
    text.push_str(match id.dir {
        Direction::In => " dir in",
        Direction::Out => " dir out",
        Direction::Fwd => " dir fwd",
    });
    if id.index != 0 {
        text.push_str(&format!(" index {}", id.index));
    }
    text
}

/// The single answer of kind `kind` to a get.
fn one<T>(
    mut answers: Vec<Message>,
    kind: u16,
    parse: fn(&[u8]) -> Result<T, DecodeError>,
    op: &str,
) -> Result<T> {
    match (answers.pop(), answers.is_empty()) {
        (Some(m), true) if m.kind == kind => parse(&m.body).map_err(|source| Error::Decode {
            op: op.to_owned(),
            source,
        }),
        (Some(m), true) => Err(Error::unexpected(
            op,
            format!("answer of netlink type {:#x}, expected {kind:#x}", m.kind),
        )),
        (None, _) => Err(Error::unexpected(op, "no answer before the ACK")),
        _ => Err(Error::unexpected(op, "more than one answer")),
    }
}

/// Every message of kind `kind` in a dump, decoded.
fn all<T>(
    msgs: Vec<Message>,
    kind: u16,
    parse: fn(&[u8]) -> Result<T, DecodeError>,
    op: &str,
) -> Result<Vec<T>> {
    msgs.iter()
        .filter(|m| m.kind == kind)
        .map(|m| {
            parse(&m.body).map_err(|source| Error::Decode {
                op: op.to_owned(),
                source,
            })
        })
        .collect()
}
