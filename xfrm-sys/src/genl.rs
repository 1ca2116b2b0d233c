//! Generic netlink (`NETLINK_GENERIC`): the small header, attribute encoding, family
//! resolution through `nlctrl`, and a request connection on tokio.
//!
//! Built on the same stack as the rtnetlink side (`netlink-proto` 0.14,
//! `netlink-packet-core` 0.9, `netlink-sys` 0.9): a generic netlink message is
//! [`Message`], the 4-byte `genlmsghdr` (`cmd`, `version`, reserved) followed by raw
//! attributes, and the netlink message type is the family id. Attributes are written with
//! [`AttrWriter`] and read with [`attrs`], which never panics on malformed input.
//!
//! [`Genl::new`] / [`Genl::in_netns`] open a socket with `NETLINK_EXT_ACK` and
//! `NETLINK_CAP_ACK` set, so a refusal is an [`Error::Kernel`] carrying the kernel's text
//! (`"invalid token"`). [`Genl::resolve`] asks `nlctrl` (`CTRL_CMD_GETFAMILY`) for a
//! family's id, version and multicast groups: all of them are dynamic and must never be
//! hard-coded.

use std::{collections::BTreeMap, sync::Arc};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NetlinkSerializable,
};
use netlink_proto::ConnectionHandle;
use netlink_sys::protocols::NETLINK_GENERIC;

use crate::{DecodeError, Error, Result, handle::request_connection};

/// `GENL_HDRLEN`: `cmd`, `version`, 2 reserved bytes (`include/uapi/linux/genetlink.h`).
pub const GENL_HDRLEN: usize = 4;
/// `GENL_ID_CTRL`: the fixed id of the `nlctrl` family.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `CTRL_ATTR_VERSION` (u32).
const CTRL_ATTR_VERSION: u16 = 3;
/// `CTRL_ATTR_HDRSIZE` (u32).
const CTRL_ATTR_HDRSIZE: u16 = 4;
/// `CTRL_ATTR_MCAST_GROUPS`: nest of nests of `CTRL_ATTR_MCAST_GRP_*`.
const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
/// `CTRL_ATTR_MCAST_GRP_NAME` (string).
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
/// `CTRL_ATTR_MCAST_GRP_ID` (u32).
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;

/// `NLA_F_NESTED`: set on nests the kernel validates strictly.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_TYPE_MASK`: the attribute type without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`.
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// How often a dump interrupted by a concurrent change is retried.
const DUMP_ATTEMPTS: usize = 5;

/// One generic netlink message: the family (netlink message type), the `genlmsghdr` and
/// the raw attributes after it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    /// The family id (the netlink `nlmsg_type`).
    pub family: u16,
    /// `genlmsghdr.cmd`: the command, or the event type of a notification.
    pub cmd: u8,
    /// `genlmsghdr.version`.
    pub version: u8,
    /// The attributes, encoded (see [`AttrWriter`], [`attrs`]).
    pub attrs: Vec<u8>,
}

impl Message {
    /// A message with no attributes yet.
    pub fn new(family: u16, cmd: u8, version: u8) -> Self {
        Self {
            family,
            cmd,
            version,
            attrs: Vec::new(),
        }
    }

    /// Parses a generic netlink payload (after the 16-byte `nlmsghdr`).
    pub fn parse(family: u16, payload: &[u8]) -> Result<Self, DecodeError> {
        let [cmd, version, _, _, ..] = *payload else {
            return Err(DecodeError::new(
                "generic netlink message",
                format!(
                    "{} bytes, shorter than the {GENL_HDRLEN}-byte genlmsghdr",
                    payload.len()
                ),
            ));
        };
        Ok(Self {
            family,
            cmd,
            version,
            attrs: payload[GENL_HDRLEN..].to_vec(),
        })
    }

    /// The message serialised with a `nlmsghdr` carrying `flags` and `seq` (port 0), as
    /// it goes on the wire.
    pub fn to_bytes(&self, flags: u16, seq: u32) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(self.clone()));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        buf
    }
}

impl NetlinkSerializable for Message {
    fn message_type(&self) -> u16 {
        self.family
    }

    fn buffer_len(&self) -> usize {
        GENL_HDRLEN + self.attrs.len()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        // netlink-proto hands a buffer of exactly buffer_len() bytes.
        let (header, rest) = buffer.split_at_mut(GENL_HDRLEN);
        header.copy_from_slice(&[self.cmd, self.version, 0, 0]);
        rest.copy_from_slice(&self.attrs);
    }
}

impl NetlinkDeserializable for Message {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        Self::parse(header.message_type, payload)
    }
}

/// Writes netlink attributes (`struct nlattr` TLVs, each padded to 4 bytes).
#[derive(Clone, Default, Debug)]
pub struct AttrWriter {
    buf: Vec<u8>,
}

impl AttrWriter {
    /// An empty attribute list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends attribute `kind` with `value`.
    ///
    /// Values longer than an attribute can describe (65531 bytes) are a programming error
    /// of the caller; they are cut to that length rather than corrupting the framing.
    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let value = &value[..value.len().min(usize::from(u16::MAX) - 4)];
        let len = 4 + value.len();
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    /// Appends a `u8` attribute.
    pub fn u8(&mut self, kind: u16, value: u8) -> &mut Self {
        self.bytes(kind, &[value])
    }

    /// Appends a `u16` attribute in host byte order.
    pub fn u16(&mut self, kind: u16, value: u16) -> &mut Self {
        self.bytes(kind, &value.to_ne_bytes())
    }

    /// Appends a `u32` attribute in host byte order.
    pub fn u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.bytes(kind, &value.to_ne_bytes())
    }

    /// Appends a NUL-terminated string attribute.
    pub fn string(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.bytes(kind, &v)
    }

    /// Appends a nest `kind | NLA_F_NESTED` holding what `f` writes.
    pub fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Self)) -> &mut Self {
        let mut inner = Self::new();
        f(&mut inner);
        self.bytes(kind | NLA_F_NESTED, &inner.buf)
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// The encoded attributes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Iterates over the attributes in `buf`: `(type without flags, value)`. A malformed
/// attribute (length below 4 or beyond the buffer) yields one error and ends the walk.
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), DecodeError>> + '_ {
    let mut rest = buf;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || rest.is_empty() {
            return None;
        }
        let header = rest.get(..4).map(|h| {
            (
                usize::from(u16::from_ne_bytes([h[0], h[1]])),
                u16::from_ne_bytes([h[2], h[3]]),
            )
        });
        match header {
            Some((len, kind)) if len >= 4 && len <= rest.len() => {
                let value = &rest[4..len];
                let padded = (len + 3) & !3;
                rest = rest.get(padded..).unwrap_or(&[]);
                Some(Ok((kind & NLA_TYPE_MASK, value)))
            }
            _ => {
                failed = true;
                Some(Err(DecodeError::new(
                    "netlink attribute",
                    format!(
                        "bad attribute header with {} bytes left: {:02x?}",
                        rest.len(),
                        &rest[..rest.len().min(4)]
                    ),
                )))
            }
        }
    })
}

/// Reads a fixed-size attribute value.
pub(crate) fn fixed<const N: usize>(
    context: &str,
    name: &str,
    value: &[u8],
) -> Result<[u8; N], DecodeError> {
    value.try_into().map_err(|_| {
        DecodeError::new(
            context,
            format!("{name}: {} bytes where {N} were expected", value.len()),
        )
    })
}

/// A string attribute: up to the first NUL.
fn string(value: &[u8]) -> String {
    let text = value.split(|b| *b == 0).next().unwrap_or(value);
    String::from_utf8_lossy(text).into_owned()
}

/// A generic netlink family as the running kernel describes it (`CTRL_CMD_GETFAMILY`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Family {
    /// The name asked for.
    pub name: String,
    /// The dynamic family id (the netlink message type of its messages).
    pub id: u16,
    /// The family's version (`genlmsghdr.version` to send).
    pub version: u8,
    /// Size of the family-specific header after `genlmsghdr` (0 for `mptcp_pm`).
    pub hdrsize: u32,
    /// Multicast groups, by name, with their dynamic ids.
    pub groups: BTreeMap<String, u32>,
}

impl Family {
    /// Decodes a `CTRL_CMD_NEWFAMILY` answer.
    pub fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        const CX: &str = "CTRL_CMD_NEWFAMILY";
        let mut name = None;
        let mut id = None;
        let mut version = 0u32;
        let mut hdrsize = 0u32;
        let mut groups = BTreeMap::new();
        for attr in attrs(&msg.attrs) {
            let (kind, value) = attr?;
            match kind {
                CTRL_ATTR_FAMILY_ID => id = Some(u16::from_ne_bytes(fixed(CX, "id", value)?)),
                CTRL_ATTR_FAMILY_NAME => name = Some(string(value)),
                CTRL_ATTR_VERSION => version = u32::from_ne_bytes(fixed(CX, "version", value)?),
                CTRL_ATTR_HDRSIZE => hdrsize = u32::from_ne_bytes(fixed(CX, "hdrsize", value)?),
                CTRL_ATTR_MCAST_GROUPS => {
                    for group in attrs(value) {
                        let (_, group) = group?;
                        let mut gname = None;
                        let mut gid = None;
                        for a in attrs(group) {
                            match a? {
                                (CTRL_ATTR_MCAST_GRP_NAME, v) => gname = Some(string(v)),
                                (CTRL_ATTR_MCAST_GRP_ID, v) => {
                                    gid = Some(u32::from_ne_bytes(fixed(CX, "group id", v)?));
                                }
                                _ => {}
                            }
                        }
                        if let (Some(n), Some(i)) = (gname, gid) {
                            groups.insert(n, i);
                        }
                    }
                }
                _ => {}
            }
        }
        let (Some(name), Some(id)) = (name, id) else {
            return Err(DecodeError::new(CX, "no family name or id"));
        };
        Ok(Self {
            name,
            id,
            version: u8::try_from(version).unwrap_or(u8::MAX),
            hdrsize,
            groups,
        })
    }

    /// The id of the multicast group `name`.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }
}

/// A generic netlink request connection in one network namespace.
///
/// Cheap to clone; requests from clones are multiplexed by sequence number. Nothing
/// unsolicited is read from this socket: events go to a socket of their own (see
/// [`crate::mptcp::EventStream`]).
#[derive(Clone, Debug)]
pub struct Genl {
    conn: ConnectionHandle<Message>,
    netns: Option<Arc<str>>,
    _task: Arc<crate::handle::AbortOnDrop>,
}

impl Genl {
    /// Opens a generic netlink socket in the calling thread's namespace, driven by the
    /// current tokio runtime.
    pub fn new() -> Result<Self> {
        Self::open(None)
    }

    /// Opens a generic netlink socket inside `/run/netns/NAME` (on a short-lived thread),
    /// driven by the current runtime.
    pub fn in_netns(name: &str) -> Result<Self> {
        Self::open(Some(name))
    }

    fn open(netns: Option<&str>) -> Result<Self> {
        let (conn, task) = request_connection(NETLINK_GENERIC, "generic netlink", netns)?;
        Ok(Self {
            conn,
            netns: netns.map(Arc::from),
            _task: task,
        })
    }

    /// The namespace given to [`Genl::in_netns`], `None` for the caller's own.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Resolves a family by name (`CTRL_CMD_GETFAMILY` on `nlctrl`).
    ///
    /// A family the kernel does not know (module not loaded, MPTCP compiled out) is
    /// [`Error::Kernel`] with `ENOENT`; a name longer than 15 bytes (`GENL_NAMSIZ` - 1)
    /// is `EINVAL` ("Attribute failed policy validation").
    pub async fn resolve(&self, name: &str) -> Result<Family> {
        let op = format!("resolve generic netlink family {name}");
        let mut msg = Message::new(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
        let mut w = AttrWriter::new();
        w.string(CTRL_ATTR_FAMILY_NAME, name);
        msg.attrs = w.finish();
        let answers = self.request(msg, &op).await?;
        let first = answers
            .first()
            .ok_or_else(|| Error::unexpected(&op, "no CTRL_CMD_NEWFAMILY before the ACK"))?;
        Family::from_message(first).map_err(|source| Error::Decode { op, source })
    }

    /// Sends `msg` with `NLM_F_REQUEST | NLM_F_ACK` and waits for the ACK; messages that
    /// came before it are returned.
    pub async fn request(&self, msg: Message, op: &str) -> Result<Vec<Message>> {
        Ok(self
            .exchange(msg, NLM_F_REQUEST | NLM_F_ACK, false, op)
            .await?
            .0)
    }

    /// Dumps with `NLM_F_REQUEST | NLM_F_DUMP`, retried when interrupted
    /// (`NLM_F_DUMP_INTR`).
    pub async fn dump(&self, msg: Message, op: &str) -> Result<Vec<Message>> {
        for _ in 0..DUMP_ATTEMPTS {
            let (messages, interrupted) = self
                .exchange(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP, true, op)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_writer_pads_and_nests() {
        let mut w = AttrWriter::new();
        w.u8(5, 1).nest(1, |n| {
            n.u16(1, 10);
        });
        assert_eq!(
            w.finish(),
            [
                5, 0, 5, 0, 1, 0, 0, 0, // u8, padded
                12, 0, 1, 0x80, // nest with NLA_F_NESTED
                6, 0, 1, 0, 10, 0, 0, 0,
            ]
        );
    }

    #[test]
    fn attrs_walks_and_stops_at_garbage() {
        let buf = [5, 0, 5, 0, 1, 0, 0, 0, 8, 0, 0x02, 0x80, 1, 2, 3, 4];
        let got: Vec<_> = attrs(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, [(5, &[1u8][..]), (2, &[1, 2, 3, 4][..])]);
        // Length beyond the buffer: one error, then nothing.
        let bad = [9, 0, 1, 0, 1, 2, 3, 4];
        let got: Vec<_> = attrs(&bad).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
        // Length below the header.
        assert!(attrs(&[2, 0, 1, 0]).next().unwrap().is_err());
        // Three stray bytes.
        assert!(attrs(&[1, 2, 3]).next().unwrap().is_err());
    }

    #[test]
    fn short_genl_payload_is_a_decode_error() {
        assert!(Message::parse(28, &[1, 1, 0]).is_err());
        let m = Message::parse(28, &[2, 1, 0, 0, 4, 0, 1, 0]).unwrap();
        assert_eq!((m.family, m.cmd, m.version), (28, 2, 1));
        assert_eq!(m.attrs, [4, 0, 1, 0]);
    }
}
