//! Reading the namespace's MPTCP connections and subflows from `sock_diag`
//! (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY` / `inet_diag_req_v2`): what `ss -M` and
//! `ss -ti` do, and what the event stream resynchronises from after lost events (there
//! is no genl command that lists connections, mptcp-pm.md §2).
//!
//! Verified on kernel 6.18 (the bytes of the tests are its answers):
//! - **Connections**: `sdiag_protocol` is a `u8`, so `IPPROTO_MPTCP` (262) travels in the
//!   `INET_DIAG_REQ_PROTOCOL` attribute (u32) and `sdiag_protocol` holds `262 & 0xff` (=
//!   6), exactly as `ss -M` sends it. With `INET_DIAG_INFO` requested, the kernel answers
//!   `struct mptcp_info` (100 bytes on 6.18) whose `mptcpi_token` (offset 12) is the
//!   token of the events. The `inet_diag_sockid` is the initial subflow's 4-tuple.
//! - **Subflows**: TCP sockets (`IPPROTO_TCP` dump, `INET_DIAG_INFO` requested) carry
//!   `INET_DIAG_ULP_INFO` { `INET_ULP_INFO_NAME` "mptcp", `INET_ULP_INFO_MPTCP` {
//!   `MPTCP_SUBFLOW_ATTR_*` } } with the local token, IDs and subflow flags. The
//!   initial subflow has the `MP_CAPABLE` flags and no `MP_JOIN` flag.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};

use super::Token;
use crate::{
    DecodeError, Error, Result,
    genl::{AttrWriter, attrs, fixed},
    handle::NlSocket,
    netns,
};

/// `SOCK_DIAG_BY_FAMILY` (`include/uapi/linux/sock_diag.h`).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`, `NLMSG_DONE`, `NLMSG_OVERRUN`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const DUMP_FLAGS: u16 = 0x301;
/// `IPPROTO_MPTCP`.
pub const IPPROTO_MPTCP: u32 = 262;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u32 = 6;
/// `INET_DIAG_REQ_PROTOCOL` (`include/uapi/linux/inet_diag.h`): u32 protocol for values
/// that do not fit `sdiag_protocol`.
const INET_DIAG_REQ_PROTOCOL: u16 = 3;
/// `INET_DIAG_INFO`: `tcp_info` for TCP, `mptcp_info` for MPTCP.
const INET_DIAG_INFO: u16 = 2;
/// `INET_DIAG_ULP_INFO`.
const INET_DIAG_ULP_INFO: u16 = 19;
/// `INET_ULP_INFO_NAME`, `INET_ULP_INFO_MPTCP`.
const INET_ULP_INFO_NAME: u16 = 1;
const INET_ULP_INFO_MPTCP: u16 = 3;
/// `MPTCP_SUBFLOW_ATTR_*` (`include/uapi/linux/mptcp.h`).
const SUBFLOW_ATTR_TOKEN_LOC: u16 = 2;
const SUBFLOW_ATTR_FLAGS: u16 = 8;
const SUBFLOW_ATTR_ID_REM: u16 = 9;
const SUBFLOW_ATTR_ID_LOC: u16 = 10;
/// `MPTCP_SUBFLOW_FLAG_*`.
const SUBFLOW_FLAG_JOIN_REM: u32 = 1 << 2;
const SUBFLOW_FLAG_JOIN_LOC: u32 = 1 << 3;
const SUBFLOW_FLAG_BKUP_REM: u32 = 1 << 4;
/// Offset of `mptcpi_token` in `struct mptcp_info`: six u8 fields, 2 bytes of padding,
/// `mptcpi_flags` (u32).
const MPTCP_INFO_TOKEN: usize = 12;
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;
/// TCP states (`include/net/tcp_states.h`) as bits of `idiag_states`.
const TCP_ESTABLISHED: u32 = 1 << 1;
/// `TCP_LISTEN`.
const TCP_LISTEN: u8 = 10;
/// MPTCP socket states kept: `SYN_SENT` 2, `SYN_RECV` 3, `FIN_WAIT1` 4, `FIN_WAIT2` 5,
/// `CLOSE_WAIT` 8, `LAST_ACK` 9, LISTEN 10, CLOSING 11 and ESTABLISHED; not CLOSE.
const CONN_STATES: u32 = TCP_ESTABLISHED
    | 1 << 2
    | 1 << 3
    | 1 << 4
    | 1 << 5
    | 1 << 8
    | 1 << 9
    | 1 << TCP_LISTEN
    | 1 << 11;
/// `TCP_SYN_SENT`, `TCP_SYN_RECV`: a connection not yet established.
const TCP_SYN_SENT: u8 = 2;
const TCP_SYN_RECV: u8 = 3;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// An MPTCP connection as `sock_diag` reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DiagConnection {
    /// The local token (the one events carry).
    pub token: Token,
    /// The initial subflow's local address and port.
    pub local: SocketAddr,
    /// The initial subflow's remote address and port.
    pub remote: SocketAddr,
    /// The MPTCP socket's TCP state (`TCP_ESTABLISHED` = 1, ...).
    pub state: u8,
}

impl DiagConnection {
    /// Past the handshake (neither `SYN_SENT` nor `SYN_RECV`).
    pub fn is_established(&self) -> bool {
        self.state != TCP_SYN_SENT && self.state != TCP_SYN_RECV
    }
}

/// An MPTCP subflow (a TCP socket with the `mptcp` ULP) as `sock_diag` reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DiagSubflow {
    /// The connection's local token.
    pub token: Token,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// Local address ID.
    pub loc_id: u8,
    /// Remote address ID.
    pub rem_id: u8,
    /// `MPTCP_SUBFLOW_FLAG_*`.
    pub flags: u32,
}

impl DiagSubflow {
    /// A joined subflow (`MP_JOIN`), as opposed to the initial `MP_CAPABLE` one, which
    /// events never report separately.
    pub fn is_join(&self) -> bool {
        self.flags & (SUBFLOW_FLAG_JOIN_LOC | SUBFLOW_FLAG_JOIN_REM) != 0
    }

    /// The subflow is backup, in the sense of the events' `backup` attribute (the
    /// kernel's `subflow->backup`, reported by diag as `BKUP_REM`).
    pub fn backup(&self) -> bool {
        self.flags & SUBFLOW_FLAG_BKUP_REM != 0
    }
}

/// The `SOCK_DIAG_BY_FAMILY` dump request `ss` sends, for `family` (`AF_INET` /
/// `AF_INET6`), `protocol`, extension bits and state mask.
pub fn request(family: u8, protocol: u32, ext: u8, states: u32, seq: u32) -> Vec<u8> {
    let mut body = vec![
        family,
        // Only the low byte fits; the full value goes in INET_DIAG_REQ_PROTOCOL.
        u8::try_from(protocol & 0xff).unwrap_or(0),
        ext,
        0,
    ];
    body.extend_from_slice(&states.to_ne_bytes());
    body.extend_from_slice(&[0; 48]); // inet_diag_sockid: any
    if protocol > 0xff {
        let mut w = AttrWriter::new();
        w.u32(INET_DIAG_REQ_PROTOCOL, protocol);
        body.extend_from_slice(&w.finish());
    }
    let len = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&DUMP_FLAGS.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// `1 << (INET_DIAG_INFO - 1)`.
const EXT_INFO: u8 = 1 << (INET_DIAG_INFO - 1);

/// One `inet_diag_msg`: family, state, the 4-tuple and the attributes.
struct DiagMsg<'a> {
    state: u8,
    local: SocketAddr,
    remote: SocketAddr,
    attrs: &'a [u8],
}

fn parse_diag_msg(body: &[u8]) -> Result<DiagMsg<'_>, DecodeError> {
    const CX: &str = "inet_diag_msg";
    if body.len() < INET_DIAG_MSG_LEN {
        return Err(DecodeError::new(
            CX,
            format!("{} bytes, fewer than {INET_DIAG_MSG_LEN}", body.len()),
        ));
    }
    let family = body[0];
    let sport = u16::from_be_bytes([body[4], body[5]]);
    let dport = u16::from_be_bytes([body[6], body[7]]);
    let addr = |off: usize| -> Result<IpAddr, DecodeError> {
        match family {
            AF_INET => Ok(Ipv4Addr::from(fixed::<4>(CX, "addr", &body[off..off + 4])?).into()),
            AF_INET6 => Ok(Ipv6Addr::from(fixed::<16>(CX, "addr", &body[off..off + 16])?).into()),
            f => Err(DecodeError::new(CX, format!("address family {f}"))),
        }
    };
    Ok(DiagMsg {
        state: body[1],
        local: SocketAddr::new(addr(8)?, sport),
        remote: SocketAddr::new(addr(24)?, dport),
        attrs: &body[INET_DIAG_MSG_LEN..],
    })
}

/// What one dump answer message was.
enum Item<'a> {
    Socket(&'a [u8]),
    Done,
}

/// Splits a dump answer into its messages; errors for `NLMSG_ERROR`, bad framing.
/// Messages with another sequence number (left over from an abandoned dump) are skipped.
fn messages<'a>(buf: &'a [u8], seq: u32, op: &str) -> Result<Vec<Item<'a>>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let Some(h) = rest.get(..16) else {
            return Err(Error::Decode {
                op: op.into(),
                source: DecodeError::new("sock_diag answer", "truncated netlink header"),
            });
        };
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = u16::from_ne_bytes([h[4], h[5]]);
        let mseq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        if len < 16 || len > rest.len() {
            return Err(Error::Decode {
                op: op.into(),
                source: DecodeError::new("sock_diag answer", format!("bad length {len}")),
            });
        }
        let body = &rest[16..len];
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
        if mseq != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => out.push(Item::Done),
            NLMSG_ERROR => {
                let code = body
                    .get(..4)
                    .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                if code != 0 {
                    return Err(Error::Kernel {
                        errno: code.saturating_abs(),
                        op: op.into(),
                        message: body.get(4..).and_then(crate::handle::extack_message),
                    });
                }
            }
            SOCK_DIAG_BY_FAMILY => out.push(Item::Socket(body)),
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes an MPTCP socket of the connection dump; `None` for a listener or one without
/// `mptcp_info` (nothing to key it by).
pub(crate) fn parse_connection(body: &[u8]) -> Result<Option<DiagConnection>, DecodeError> {
    let m = parse_diag_msg(body)?;
    if m.state == TCP_LISTEN {
        return Ok(None);
    }
    for a in attrs(m.attrs) {
        let (kind, value) = a?;
        if kind == INET_DIAG_INFO {
            let token = value
                .get(MPTCP_INFO_TOKEN..MPTCP_INFO_TOKEN + 4)
                .ok_or_else(|| {
                    DecodeError::new("mptcp_info", format!("{} bytes, no token", value.len()))
                })?;
            return Ok(Some(DiagConnection {
                token: Token(u32::from_ne_bytes([token[0], token[1], token[2], token[3]])),
                local: m.local,
                remote: m.remote,
                state: m.state,
            }));
        }
    }
    Ok(None)
}

/// Decodes a TCP socket of the subflow dump; `None` for a TCP socket that is not an
/// MPTCP subflow.
pub(crate) fn parse_subflow(body: &[u8]) -> Result<Option<DiagSubflow>, DecodeError> {
    const CX: &str = "INET_DIAG_ULP_INFO";
    let m = parse_diag_msg(body)?;
    for a in attrs(m.attrs) {
        let (kind, value) = a?;
        if kind != INET_DIAG_ULP_INFO {
            continue;
        }
        let mut is_mptcp = false;
        let mut info = None;
        for u in attrs(value) {
            match u? {
                (INET_ULP_INFO_NAME, v) => is_mptcp = v.split(|b| *b == 0).next() == Some(b"mptcp"),
                (INET_ULP_INFO_MPTCP, v) => info = Some(v),
                _ => {}
            }
        }
        let (true, Some(info)) = (is_mptcp, info) else {
            return Ok(None);
        };
        let (mut token, mut flags, mut loc_id, mut rem_id) = (None, 0, 0, 0);
        for s in attrs(info) {
            match s? {
                (SUBFLOW_ATTR_TOKEN_LOC, v) => {
                    token = Some(u32::from_ne_bytes(fixed(CX, "token", v)?));
                }
                (SUBFLOW_ATTR_FLAGS, v) => flags = u32::from_ne_bytes(fixed(CX, "flags", v)?),
                (SUBFLOW_ATTR_ID_LOC, v) => loc_id = fixed::<1>(CX, "id_loc", v)?[0],
                (SUBFLOW_ATTR_ID_REM, v) => rem_id = fixed::<1>(CX, "id_rem", v)?[0],
                _ => {}
            }
        }
        let token = token.ok_or_else(|| DecodeError::new(CX, "subflow without local token"))?;
        return Ok(Some(DiagSubflow {
            token: Token(token),
            local: m.local,
            remote: m.remote,
            loc_id,
            rem_id,
            flags,
        }));
    }
    Ok(None)
}

/// Both lists of one snapshot.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// MPTCP connections (not listeners).
    pub connections: Vec<DiagConnection>,
    /// Established subflows, initial ones included (see [`DiagSubflow::is_join`]).
    pub subflows: Vec<DiagSubflow>,
    /// MPTCP listening sockets (to tell the server side of a connection).
    pub listeners: Vec<SocketAddr>,
}

/// A `sock_diag` socket in one namespace.
#[derive(Debug)]
pub struct Diag {
    socket: NlSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl Diag {
    /// Opens a `NETLINK_SOCK_DIAG` socket in the calling thread's namespace, or in the
    /// named one.
    pub fn open(netns: Option<&str>) -> Result<Self> {
        let op = "open sock_diag socket";
        let open = || -> io::Result<Socket> {
            let mut s = Socket::new(NETLINK_SOCK_DIAG)?;
            s.bind_auto()?;
            s.set_ext_ack(true)?;
            Ok(s)
        };
        let socket = match netns {
            None => open(),
            Some(name) => netns::with_socket_in(name, open),
        }
        .map_err(|e| Error::io(op, e))?;
        Ok(Self {
            socket: NlSocket::wrap(socket).map_err(|e| Error::io(op, e))?,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// The MPTCP connections and the established subflows of the namespace, IPv4 and
    /// IPv6.
    pub async fn snapshot(&mut self) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        for family in [AF_INET6, AF_INET] {
            let op = "sock_diag dump of MPTCP sockets";
            for body in self.dump(family, IPPROTO_MPTCP, CONN_STATES, op).await? {
                let decode = |source| Error::Decode {
                    op: op.into(),
                    source,
                };
                let m = parse_diag_msg(&body).map_err(decode)?;
                if m.state == TCP_LISTEN {
                    snap.listeners.push(m.local);
                } else if let Some(c) = parse_connection(&body).map_err(decode)? {
                    snap.connections.push(c);
                }
            }
            let op = "sock_diag dump of TCP sockets (MPTCP subflows)";
            for body in self.dump(family, IPPROTO_TCP, TCP_ESTABLISHED, op).await? {
                if let Some(s) = parse_subflow(&body).map_err(|source| Error::Decode {
                    op: op.into(),
                    source,
                })? {
                    snap.subflows.push(s);
                }
            }
        }
        Ok(snap)
    }

    async fn dump(
        &mut self,
        family: u8,
        protocol: u32,
        states: u32,
        op: &str,
    ) -> Result<Vec<Vec<u8>>> {
        self.drain(op)?;
        self.seq = self.seq.wrapping_add(1);
        let req = request(family, protocol, EXT_INFO, states, self.seq);
        self.socket
            .get_ref()
            .send(&req, 0)
            .map_err(|e| Error::io(op, e))?;
        let mut out = Vec::new();
        loop {
            let mut guard = self
                .socket
                .async_fd()
                .readable()
                .await
                .map_err(|e| Error::io(op, e))?;
            self.buf.clear();
            match guard.try_io(|s| s.get_ref().recv(&mut self.buf, 0)) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(Error::io(op, e)),
                Err(_would_block) => continue,
            }
            for item in messages(&self.buf, self.seq, op)? {
                match item {
                    Item::Socket(body) => out.push(body.to_vec()),
                    Item::Done => return Ok(out),
                }
            }
        }
    }

    /// Discards anything left from an abandoned dump.
    fn drain(&mut self, op: &str) -> Result<()> {
        loop {
            self.buf.clear();
            match self
                .socket
                .get_ref()
                .recv(&mut self.buf, libc::MSG_DONTWAIT)
            {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(op, e)),
            }
        }
    }
}

/// Decodes a whole captured dump answer (tests, tools): the connections it lists.
pub fn parse_connection_dump(buf: &[u8], seq: u32) -> Result<Vec<DiagConnection>> {
    let op = "parse sock_diag MPTCP dump";
    let mut out = Vec::new();
    for item in messages(buf, seq, op)? {
        if let Item::Socket(body) = item
            && let Some(c) = parse_connection(body).map_err(|source| Error::Decode {
                op: op.into(),
                source,
            })?
        {
            out.push(c);
        }
    }
    Ok(out)
}

/// Decodes a whole captured TCP dump answer: the MPTCP subflows it lists.
pub fn parse_subflow_dump(buf: &[u8], seq: u32) -> Result<Vec<DiagSubflow>> {
    let op = "parse sock_diag TCP dump";
    let mut out = Vec::new();
    for item in messages(buf, seq, op)? {
        if let Item::Socket(body) = item
            && let Some(s) = parse_subflow(body).map_err(|source| Error::Decode {
                op: op.into(),
                source,
            })?
        {
            out.push(s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ss -M`'s request as strace showed it (`sdiag_protocol` 6 plus
    /// `INET_DIAG_REQ_PROTOCOL` 262, `INET_DIAG_INFO` requested), here with sequence 1 and
    /// state mask 0xffffffff: the bytes a Python socket sent and kernel 6.18 answered
    /// with the dump of `MPTCP_DUMP` below.
    #[test]
    fn mptcp_request_is_what_ss_sends() {
        let req = request(AF_INET6, IPPROTO_MPTCP, EXT_INFO, 0xffff_ffff, 1);
        assert_eq!(
            req,
            hex_literal::hex!(
                "50000000 1400 0103 01000000 00000000"
                "0a 06 02 00 ffffffff"
                "00000000000000000000000000000000"
                "00000000000000000000000000000000"
                "00000000000000000000000000000000"
                "0800 0300 06010000"
            )
        );
        assert_eq!(req.len(), 80);
        // TCP: no protocol attribute.
        assert_eq!(request(AF_INET6, IPPROTO_TCP, EXT_INFO, 2, 1).len(), 72);
    }

    /// The answer of the MPTCP dump in the client netns of §3's recipe, one connection
    /// `[2001:db8:1::1]:48055` → `[2001:db8:1::2]:8080`, `ss -M` token 93e131e8.
    const MPTCP_DUMP: &[u8] = include_bytes!("../testdata/mptcp/diag_mptcp_cli.bin");
    /// The TCP dump of the same moment: the initial subflow with its ULP info.
    const TCP_DUMP: &[u8] = include_bytes!("../testdata/mptcp/diag_tcp_cli.bin");

    #[test]
    fn captured_mptcp_dump_gives_the_token() {
        let conns = parse_connection_dump(MPTCP_DUMP, 1).unwrap();
        assert_eq!(
            conns,
            [DiagConnection {
                token: Token(0x93e1_31e8),
                local: "[2001:db8:1::1]:48055".parse().unwrap(),
                remote: "[2001:db8:1::2]:8080".parse().unwrap(),
                state: 1,
            }]
        );
        assert!(conns[0].is_established());
        // Another sequence number: not ours, skipped.
        assert_eq!(parse_connection_dump(MPTCP_DUMP, 2).unwrap(), []);
    }

    #[test]
    fn captured_tcp_dump_gives_the_initial_subflow() {
        let subs = parse_subflow_dump(TCP_DUMP, 1).unwrap();
        assert_eq!(subs.len(), 1);
        let s = subs[0];
        assert_eq!(s.token, Token(0x93e1_31e8));
        assert_eq!((s.loc_id, s.rem_id), (0, 0));
        assert!(!s.is_join());
        assert!(!s.backup());
        assert_eq!(s.local, "[2001:db8:1::1]:48055".parse().unwrap());
    }

    #[test]
    fn damaged_dumps_never_panic() {
        for capture in [MPTCP_DUMP, TCP_DUMP] {
            for cut in 0..capture.len() {
                let _ = parse_connection_dump(&capture[..cut], 1);
                let _ = parse_subflow_dump(&capture[..cut], 1);
            }
            for pos in 0..capture.len() {
                for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut b = capture.to_vec();
                    b[pos] = v;
                    let _ = parse_connection_dump(&b, 1);
                    let _ = parse_subflow_dump(&b, 1);
                }
            }
        }
    }
}
