//! The XFRM netlink structures, encoded and decoded by hand.
//!
//! Layouts are those of `include/uapi/linux/xfrm.h` on a 64-bit Linux (the structures
//! holding a `__u64` are 8-byte aligned, so `xfrm_usersa_info` ends in 7 bytes of
//! padding and `xfrm_userpolicy_info` in 4). Integers are host byte order except the
//! SPI and the selector's ports, which are network byte order (`__be32`, `__be16`).
//! Every offset below was checked against bytes `ip xfrm` sent (strace, iproute2 6.1,
//! kernel 6.18; see the unit tests).

use std::net::Ipv6Addr;

use netlink_packet_core::{NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};

use super::{
    AeadAlgorithm, Algorithm, AuthAlgorithm, Direction, Key, Mode, Policy, PolicyAction, PolicyId,
    SaId, SecurityAssociation, Selector, Template, XfrmProto,
};
use crate::{
    DecodeError, Ipv6Prefix,
    genl::{AttrWriter, attrs},
};

// Message types (`enum` after `XFRM_MSG_BASE`, include/uapi/linux/xfrm.h).
/// `XFRM_MSG_NEWSA`.
pub(crate) const XFRM_MSG_NEWSA: u16 = 0x10;
/// `XFRM_MSG_DELSA`.
pub(crate) const XFRM_MSG_DELSA: u16 = 0x11;
/// `XFRM_MSG_GETSA`.
pub(crate) const XFRM_MSG_GETSA: u16 = 0x12;
/// `XFRM_MSG_NEWPOLICY`.
pub(crate) const XFRM_MSG_NEWPOLICY: u16 = 0x13;
/// `XFRM_MSG_DELPOLICY`.
pub(crate) const XFRM_MSG_DELPOLICY: u16 = 0x14;
/// `XFRM_MSG_GETPOLICY`.
pub(crate) const XFRM_MSG_GETPOLICY: u16 = 0x15;
/// `XFRM_MSG_UPDPOLICY`.
pub(crate) const XFRM_MSG_UPDPOLICY: u16 = 0x19;
/// `XFRM_MSG_UPDSA`.
pub(crate) const XFRM_MSG_UPDSA: u16 = 0x1a;
/// `XFRM_MSG_FLUSHSA`.
pub(crate) const XFRM_MSG_FLUSHSA: u16 = 0x1c;
/// `XFRM_MSG_FLUSHPOLICY`.
pub(crate) const XFRM_MSG_FLUSHPOLICY: u16 = 0x1d;

// Attributes (`enum xfrm_attr_type_t`, include/uapi/linux/xfrm.h).
/// `XFRMA_ALG_AUTH`: `struct xfrm_algo` (the kernel reports it next to `ALG_AUTH_TRUNC`).
const XFRMA_ALG_AUTH: u16 = 1;
/// `XFRMA_ALG_CRYPT`: `struct xfrm_algo`.
const XFRMA_ALG_CRYPT: u16 = 2;
/// `XFRMA_TMPL`: one or more `struct xfrm_user_tmpl`.
const XFRMA_TMPL: u16 = 5;
/// `XFRMA_SRCADDR`: `xfrm_address_t`.
const XFRMA_SRCADDR: u16 = 13;
/// `XFRMA_ALG_AEAD`: `struct xfrm_algo_aead`.
const XFRMA_ALG_AEAD: u16 = 18;
/// `XFRMA_ALG_AUTH_TRUNC`: `struct xfrm_algo_auth`.
const XFRMA_ALG_AUTH_TRUNC: u16 = 20;
/// `XFRMA_ADDRESS_FILTER`: `struct xfrm_address_filter` (dump filter).
const XFRMA_ADDRESS_FILTER: u16 = 26;

/// `AF_INET6` (include/linux/socket.h).
pub(crate) const AF_INET6: u16 = 10;
/// `XFRM_INF`: an unlimited byte or packet lifetime.
const XFRM_INF: u64 = u64::MAX;

/// `sizeof(struct xfrm_selector)`.
pub(crate) const SELECTOR_LEN: usize = 56;
/// `sizeof(struct xfrm_usersa_info)`.
pub(crate) const USERSA_INFO_LEN: usize = 224;
/// `sizeof(struct xfrm_usersa_id)`.
pub(crate) const USERSA_ID_LEN: usize = 24;
/// `sizeof(struct xfrm_userpolicy_info)`.
pub(crate) const USERPOLICY_INFO_LEN: usize = 168;
/// `sizeof(struct xfrm_userpolicy_id)`.
pub(crate) const USERPOLICY_ID_LEN: usize = 64;
/// `sizeof(struct xfrm_user_tmpl)`.
pub(crate) const USER_TMPL_LEN: usize = 64;
/// `sizeof(struct xfrm_address_filter)`.
const ADDRESS_FILTER_LEN: usize = 36;
/// `alg_name[64]` of the `xfrm_algo*` structures.
pub(crate) const ALG_NAME_LEN: usize = 64;
/// `sizeof(struct xfrm_lifetime_cfg)`.
const LIFETIME_CFG_LEN: usize = 64;

/// One XFRM netlink message: the netlink type and everything after the `nlmsghdr`
/// (the fixed structure, then attributes).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Message {
    pub(crate) kind: u16,
    pub(crate) body: Vec<u8>,
}

impl NetlinkSerializable for Message {
    fn message_type(&self) -> u16 {
        self.kind
    }

    fn buffer_len(&self) -> usize {
        self.body.len()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        // netlink-packet-core hands a buffer of exactly buffer_len() bytes.
        buffer.copy_from_slice(&self.body);
    }
}

impl NetlinkDeserializable for Message {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            kind: header.message_type,
            body: payload.to_vec(),
        })
    }
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn put_addr(b: &mut [u8], at: usize, a: Ipv6Addr) {
    b[at..at + 16].copy_from_slice(&a.octets());
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn get_be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn get_addr(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

/// Checks that `body` holds at least `len` bytes of the fixed structure `what`.
fn need(context: &str, what: &str, body: &[u8], len: usize) -> Result<(), DecodeError> {
    if body.len() < len {
        return Err(DecodeError::new(
            context,
            format!("{} bytes, shorter than {what} ({len} bytes)", body.len()),
        ));
    }
    Ok(())
}

/// `struct xfrm_selector` (56 bytes) at `b[..56]`.
fn emit_selector(s: &Selector, b: &mut [u8]) {
    put_addr(b, 0, s.dst.addr());
    put_addr(b, 16, s.src.addr());
    b[32..34].copy_from_slice(&s.dport.to_be_bytes());
    b[34..36].copy_from_slice(&s.dport_mask.to_be_bytes());
    b[36..38].copy_from_slice(&s.sport.to_be_bytes());
    b[38..40].copy_from_slice(&s.sport_mask.to_be_bytes());
    put_u16(b, 40, AF_INET6);
    b[42] = s.dst.prefix_len();
    b[43] = s.src.prefix_len();
    b[44] = s.proto;
    b[45..48].fill(0);
    b[48..52].copy_from_slice(&s.ifindex.to_ne_bytes());
    put_u32(b, 52, 0); // `user`: only used by the kernel's socket policies
}

fn parse_selector(context: &str, b: &[u8]) -> Result<Selector, DecodeError> {
    let family = get_u16(b, 40);
    // A selector of family 0 (AF_UNSPEC) is the "any" selector of an SA added without
    // `sel`; its addresses are all zero.
    if family != AF_INET6 && family != 0 {
        return Err(DecodeError::new(
            context,
            format!("selector family {family}, not AF_INET6"),
        ));
    }
    let prefix = |addr: Ipv6Addr, len: u8| {
        Ipv6Prefix::new(addr, len).map_err(|e| DecodeError::new(context, e.to_string()))
    };
    Ok(Selector {
        dst: prefix(get_addr(b, 0), b[42])?,
        src: prefix(get_addr(b, 16), b[43])?,
        dport: get_be16(b, 32),
        dport_mask: get_be16(b, 34),
        sport: get_be16(b, 36),
        sport_mask: get_be16(b, 38),
        proto: b[44],
        ifindex: i32::from_ne_bytes([b[48], b[49], b[50], b[51]]),
    })
}

/// `struct xfrm_lifetime_cfg` without limits, as `ip xfrm` sends it: byte and packet
/// limits `XFRM_INF`, no expiry times.
fn emit_unlimited_lifetime(b: &mut [u8]) {
    for i in 0..4 {
        put_u64(b, i * 8, XFRM_INF);
    }
    b[32..LIFETIME_CFG_LEN].fill(0);
}

/// Writes an `xfrm_algo*` structure: the name (NUL-padded to 64), the key length in
/// bits, `extra` (truncation or ICV length, for the `_auth` / `_aead` forms), the key.
fn algo_bytes(name: &str, key: &Key, extra: Option<u32>) -> Vec<u8> {
    let mut v = vec![0u8; ALG_NAME_LEN];
    // The constructors keep names below 64 bytes, so the terminating NUL stays.
    let n = name.len().min(ALG_NAME_LEN - 1);
    v[..n].copy_from_slice(&name.as_bytes()[..n]);
    v.extend_from_slice(&key.bits().to_ne_bytes());
    if let Some(extra) = extra {
        v.extend_from_slice(&extra.to_ne_bytes());
    }
    v.extend_from_slice(key.as_bytes());
    v
}

/// Parses an `xfrm_algo*`: the name, then `header_words` u32 fields (key length first),
/// then the key (`ceil(bits / 8)` bytes).
fn parse_algo(
    context: &str,
    what: &str,
    v: &[u8],
    header_words: usize,
) -> Result<(String, Vec<u32>, Key), DecodeError> {
    let fixed = ALG_NAME_LEN + 4 * header_words;
    if v.len() < fixed {
        return Err(DecodeError::new(
            context,
            format!(
                "{what}: {} bytes, shorter than its {fixed}-byte header",
                v.len()
            ),
        ));
    }
    let name_bytes = &v[..ALG_NAME_LEN];
    let name_len = name_bytes
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(ALG_NAME_LEN);
    let name = String::from_utf8_lossy(&name_bytes[..name_len]).into_owned();
    let words: Vec<u32> = (0..header_words)
        .map(|i| get_u32(v, ALG_NAME_LEN + 4 * i))
        .collect();
    let bits = words[0];
    let key_len = usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX);
    let key = v
        .get(fixed..)
        .and_then(|rest| rest.get(..key_len))
        .ok_or_else(|| {
            DecodeError::new(
                context,
                format!(
                    "{what} {name}: key of {bits} bits, but {} bytes follow the header",
                    v.len() - fixed
                ),
            )
        })?;
    Ok((name, words, Key::from_bits(key.to_vec(), bits)))
}

/// The body of `XFRM_MSG_NEWSA` / `XFRM_MSG_UPDSA`: `xfrm_usersa_info` and the
/// algorithm attributes, in the order `ip xfrm state add` writes them.
pub(crate) fn sa_body(sa: &SecurityAssociation) -> Vec<u8> {
    let mut b = vec![0u8; USERSA_INFO_LEN];
    emit_selector(&sa.selector, &mut b[..SELECTOR_LEN]);
    // struct xfrm_id id
    put_addr(&mut b, 56, sa.dst);
    b[72..76].copy_from_slice(&sa.spi.to_be_bytes());
    b[76] = sa.proto.number();
    put_addr(&mut b, 80, sa.src);
    emit_unlimited_lifetime(&mut b[96..96 + LIFETIME_CFG_LEN]);
    // curlft (160..192) and stats (192..204) stay zero; seq at 204 is 0.
    put_u32(&mut b, 208, sa.reqid);
    put_u16(&mut b, 212, AF_INET6);
    b[214] = sa.mode.number();
    b[215] = sa.replay_window;
    b[216] = sa.flags;
    let mut w = AttrWriter::new();
    if let Some(aead) = &sa.aead {
        w.bytes(
            XFRMA_ALG_AEAD,
            &algo_bytes(aead.name(), aead.key(), Some(aead.icv_bits())),
        );
    }
    if let Some(auth) = &sa.auth {
        w.bytes(
            XFRMA_ALG_AUTH_TRUNC,
            &algo_bytes(auth.name(), auth.key(), Some(auth.trunc_bits())),
        );
    }
    if let Some(enc) = &sa.enc {
        w.bytes(XFRMA_ALG_CRYPT, &algo_bytes(enc.name(), enc.key(), None));
    }
    b.extend_from_slice(&w.finish());
    b
}

/// Decodes the body of an `XFRM_MSG_NEWSA` (a get answer or a dump entry).
pub(crate) fn parse_sa(body: &[u8]) -> Result<SecurityAssociation, DecodeError> {
    const CX: &str = "XFRM_MSG_NEWSA";
    need(CX, "struct xfrm_usersa_info", body, USERSA_INFO_LEN)?;
    let family = get_u16(body, 212);
    if family != AF_INET6 {
        return Err(DecodeError::new(
            CX,
            format!("SA family {family}, not AF_INET6"),
        ));
    }
    let mut sa = SecurityAssociation {
        src: get_addr(body, 80),
        dst: get_addr(body, 56),
        proto: XfrmProto::from_number(body[76]),
        spi: u32::from_be_bytes([body[72], body[73], body[74], body[75]]),
        reqid: get_u32(body, 208),
        mode: Mode::from_number(body[214]),
        selector: parse_selector(CX, &body[..SELECTOR_LEN])?,
        replay_window: body[215],
        flags: body[216],
        aead: None,
        auth: None,
        enc: None,
    };
    let mut auth_untruncated = None;
    for attr in attrs(&body[USERSA_INFO_LEN..]) {
        let (kind, v) = attr.map_err(|e| DecodeError::new(CX, e.to_string()))?;
        match kind {
            XFRMA_ALG_AEAD => {
                let (name, words, key) = parse_algo(CX, "XFRMA_ALG_AEAD", v, 2)?;
                sa.aead = Some(AeadAlgorithm::decoded(name, key, words[1]));
            }
            XFRMA_ALG_AUTH_TRUNC => {
                let (name, words, key) = parse_algo(CX, "XFRMA_ALG_AUTH_TRUNC", v, 2)?;
                sa.auth = Some(AuthAlgorithm::decoded(name, key, words[1]));
            }
            XFRMA_ALG_AUTH => {
                let (name, _, key) = parse_algo(CX, "XFRMA_ALG_AUTH", v, 1)?;
                auth_untruncated = Some((name, key));
            }
            XFRMA_ALG_CRYPT => {
                let (name, _, key) = parse_algo(CX, "XFRMA_ALG_CRYPT", v, 1)?;
                sa.enc = Some(Algorithm::decoded(name, key));
            }
            _ => {}
        }
    }
    // The kernel sends XFRMA_ALG_AUTH_TRUNC next to XFRMA_ALG_AUTH; a message with only
    // the old form has no truncation length: report the full key length's ICV as 0.
    if sa.auth.is_none()
        && let Some((name, key)) = auth_untruncated
    {
        sa.auth = Some(AuthAlgorithm::decoded(name, key, 0));
    }
    Ok(sa)
}

/// `struct xfrm_usersa_id` and `XFRMA_SRCADDR`: the body of `XFRM_MSG_GETSA` and
/// `XFRM_MSG_DELSA`.
pub(crate) fn sa_id_body(id: &SaId) -> Vec<u8> {
    let mut b = vec![0u8; USERSA_ID_LEN];
    put_addr(&mut b, 0, id.dst);
    b[16..20].copy_from_slice(&id.spi.to_be_bytes());
    put_u16(&mut b, 20, AF_INET6);
    b[22] = id.proto.number();
    let mut w = AttrWriter::new();
    w.bytes(XFRMA_SRCADDR, &id.src.octets());
    b.extend_from_slice(&w.finish());
    b
}

/// The body of a `XFRM_MSG_GETSA` dump, as `ip xfrm state list` sends it: an
/// all-zero `XFRMA_ADDRESS_FILTER` (family `AF_UNSPEC`, prefix lengths 0: every SA).
pub(crate) fn sa_dump_body() -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.bytes(XFRMA_ADDRESS_FILTER, &[0u8; ADDRESS_FILTER_LEN]);
    w.finish()
}

/// `struct xfrm_usersa_flush`: the protocol to flush, 0 for every protocol.
pub(crate) fn sa_flush_body(proto: Option<XfrmProto>) -> Vec<u8> {
    vec![proto.map_or(0, XfrmProto::number)]
}

fn emit_template(t: &Template, b: &mut [u8]) {
    // struct xfrm_id id
    put_addr(b, 0, t.dst);
    b[16..20].copy_from_slice(&t.spi.to_be_bytes());
    b[20] = t.proto.number();
    put_u16(b, 24, AF_INET6);
    put_addr(b, 28, t.src);
    put_u32(b, 44, t.reqid);
    b[48] = t.mode.number();
    b[49] = 0; // share: XFRM_SHARE_ANY
    b[50] = u8::from(t.optional);
    // aalgos, ealgos, calgos: every algorithm allowed, as ip sets them.
    put_u32(b, 52, u32::MAX);
    put_u32(b, 56, u32::MAX);
    put_u32(b, 60, u32::MAX);
}

fn parse_template(b: &[u8]) -> Template {
    Template {
        dst: get_addr(b, 0),
        spi: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
        proto: XfrmProto::from_number(b[20]),
        src: get_addr(b, 28),
        reqid: get_u32(b, 44),
        mode: Mode::from_number(b[48]),
        optional: b[50] != 0,
    }
}

/// The body of `XFRM_MSG_NEWPOLICY` / `XFRM_MSG_UPDPOLICY`: `xfrm_userpolicy_info`,
/// then `XFRMA_TMPL` when the policy has templates.
pub(crate) fn policy_body(p: &Policy) -> Vec<u8> {
    let mut b = vec![0u8; USERPOLICY_INFO_LEN];
    emit_selector(&p.selector, &mut b[..SELECTOR_LEN]);
    emit_unlimited_lifetime(&mut b[56..56 + LIFETIME_CFG_LEN]);
    // curlft (120..152) stays zero.
    put_u32(&mut b, 152, p.priority);
    put_u32(&mut b, 156, p.index);
    b[160] = p.dir.number();
    b[161] = p.action.number();
    b[162] = 0; // flags
    b[163] = 0; // share
    if !p.templates.is_empty() {
        let mut tmpls = vec![0u8; USER_TMPL_LEN * p.templates.len()];
        for (t, chunk) in p
            .templates
            .iter()
            .zip(tmpls.chunks_exact_mut(USER_TMPL_LEN))
        {
            emit_template(t, chunk);
        }
        let mut w = AttrWriter::new();
        w.bytes(XFRMA_TMPL, &tmpls);
        b.extend_from_slice(&w.finish());
    }
    b
}

/// Decodes the body of an `XFRM_MSG_NEWPOLICY` (a get answer or a dump entry).
pub(crate) fn parse_policy(body: &[u8]) -> Result<Policy, DecodeError> {
    const CX: &str = "XFRM_MSG_NEWPOLICY";
    need(CX, "struct xfrm_userpolicy_info", body, USERPOLICY_INFO_LEN)?;
    let selector = parse_selector(CX, &body[..SELECTOR_LEN])?;
    let dir = Direction::from_number(body[160]).ok_or_else(|| {
        DecodeError::new(
            CX,
            format!("policy direction {} is not in/out/fwd", body[160]),
        )
    })?;
    let mut templates = Vec::new();
    for attr in attrs(&body[USERPOLICY_INFO_LEN..]) {
        let (kind, v) = attr.map_err(|e| DecodeError::new(CX, e.to_string()))?;
        if kind == XFRMA_TMPL {
            if v.len() % USER_TMPL_LEN != 0 {
                return Err(DecodeError::new(
                    CX,
                    format!(
                        "XFRMA_TMPL of {} bytes, not a multiple of {USER_TMPL_LEN}",
                        v.len()
                    ),
                ));
            }
            templates.extend(v.chunks_exact(USER_TMPL_LEN).map(parse_template));
        }
    }
    Ok(Policy {
        selector,
        dir,
        priority: get_u32(body, 152),
        index: get_u32(body, 156),
        action: PolicyAction::from_number(body[161]),
        templates,
    })
}

/// `struct xfrm_userpolicy_id`: the body of `XFRM_MSG_GETPOLICY` / `XFRM_MSG_DELPOLICY`.
pub(crate) fn policy_id_body(id: &PolicyId) -> Vec<u8> {
    let mut b = vec![0u8; USERPOLICY_ID_LEN];
    emit_selector(&id.selector, &mut b[..SELECTOR_LEN]);
    put_u32(&mut b, 56, id.index);
    b[60] = id.dir.number();
    b
}
