//! Bytes carried per MPTCP connection, sampled from `sock_diag` (`ss -Mi`): the input of
//! the elephant policy.
//!
//! One `SOCK_DIAG_BY_FAMILY` dump of `AF_INET6` `IPPROTO_MPTCP` sockets with
//! `INET_DIAG_INFO` returns each connection's `struct mptcp_info`
//! (`include/uapi/linux/mptcp.h`). Offsets used, unchanged since the fields appeared:
//!
//! | offset | field |
//! | --- | --- |
//! | 12 | `mptcpi_token` (u32, the events' token) |
//! | 64 | `mptcpi_bytes_received` (u64, 6.5+) |
//! | 72 | `mptcpi_bytes_acked` (u64, 6.5+) |
//!
//! Carried = acknowledged by the peer + received from it, so that uploads and downloads
//! both count. A kernel whose `mptcp_info` is too short for them reports nothing (the
//! elephant policy then never grows).
//!
//! The stall rule (`policy` rule 9) needs each subflow's `struct tcp_info`
//! (`include/uapi/linux/tcp.h`): a second dump, of `AF_INET6` `IPPROTO_TCP` sockets in
//! `ESTABLISHED` with `INET_DIAG_INFO` ([`request_tcp`], [`parse_tcp_socket`]); MPTCP
//! subflows are TCP sockets, matched to the engine's subflows by their 4-tuple. Offsets
//! used: 24 `tcpi_unacked` (u32), 56 `tcpi_last_ack_recv` (u32, ms).
//!
//! `xfrm_sys::mptcp::diag` reads the same dump for resynchronisation but keeps only
//! tokens and addresses; this is the small extra the policy needs (the requests are
//! built by its `request`).

use std::{
    collections::BTreeMap,
    io,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};
use xfrm_sys::mptcp::{
    Token,
    diag::{self, IPPROTO_MPTCP},
};

use super::policy::SubflowSample;

/// `SOCK_DIAG_BY_FAMILY` (`include/uapi/linux/sock_diag.h`).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`, `NLMSG_DONE`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `INET_DIAG_INFO` (`include/uapi/linux/inet_diag.h`).
const INET_DIAG_INFO: u16 = 2;
/// The request's extension bit for it: `1 << (INET_DIAG_INFO - 1)`.
const EXT_INFO: u8 = 1 << (INET_DIAG_INFO - 1);
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;
/// `AF_INET6`.
const AF_INET6: u8 = 10;
/// `TCP_LISTEN`: listeners carry no traffic.
const TCP_LISTEN: u8 = 10;
/// `mptcp_info` offsets (module docs).
const INFO_TOKEN: usize = 12;
const INFO_BYTES_RECEIVED: usize = 64;
const INFO_BYTES_ACKED: usize = 72;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// `1 << TCP_ESTABLISHED`.
const STATE_ESTABLISHED: u32 = 1 << 1;
/// `tcp_info` offsets (module docs).
const TCPI_UNACKED: usize = 24;
const TCPI_LAST_ACK_RECV: usize = 56;

/// The dump request: `inet_diag_req_v2` for `AF_INET6`, protocol 262 (low byte in
/// `sdiag_protocol`, the whole in `INET_DIAG_REQ_PROTOCOL`, as `ss -M` sends it), all
/// states, `INET_DIAG_INFO`.
pub fn request(seq: u32) -> Vec<u8> {
    diag::request(AF_INET6, IPPROTO_MPTCP, EXT_INFO, u32::MAX, seq)
}

/// The subflow dump request: `inet_diag_req_v2` for `AF_INET6` TCP sockets in
/// `ESTABLISHED`, `INET_DIAG_INFO` (`struct tcp_info`).
pub fn request_tcp(seq: u32) -> Vec<u8> {
    diag::request(
        AF_INET6,
        IPPROTO_TCP.into(),
        EXT_INFO,
        STATE_ESTABLISHED,
        seq,
    )
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// The 4-tuple of an `inet_diag_msg` (ports big-endian at 4 and 6, addresses at 8 and
/// 24); IPv4-mapped addresses come back as IPv4.
fn tuple(body: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let port = |o: usize| Some(u16::from_be_bytes(body.get(o..o + 2)?.try_into().ok()?));
    let addr = |o: usize| {
        let a = Ipv6Addr::from(<[u8; 16]>::try_from(body.get(o..o + 16)?).ok()?);
        Some(a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4))
    };
    Some((
        SocketAddr::new(addr(8)?, port(4)?),
        SocketAddr::new(addr(24)?, port(6)?),
    ))
}

/// One TCP socket of the subflow dump: its 4-tuple, unacknowledged segments and time
/// since the last ACK, if its `tcp_info` is long enough.
pub fn parse_tcp_socket(body: &[u8]) -> Option<SubflowSample> {
    if body.len() < INET_DIAG_MSG_LEN {
        return None;
    }
    let (local, remote) = tuple(body)?;
    for a in xfrm_sys::genl::attrs(&body[INET_DIAG_MSG_LEN..]) {
        let Ok((kind, info)) = a else {
            return None;
        };
        if kind == INET_DIAG_INFO {
            return Some(SubflowSample {
                local,
                remote,
                unacked: u32_at(info, TCPI_UNACKED)?,
                since_ack: Duration::from_millis(u64::from(u32_at(info, TCPI_LAST_ACK_RECV)?)),
            });
        }
    }
    None
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// One socket of the answer: its token and bytes carried, if its `mptcp_info` has them.
pub fn parse_socket(body: &[u8]) -> Option<(Token, u64)> {
    if body.len() < INET_DIAG_MSG_LEN || body[1] == TCP_LISTEN {
        return None;
    }
    for a in xfrm_sys::genl::attrs(&body[INET_DIAG_MSG_LEN..]) {
        let Ok((kind, info)) = a else {
            return None;
        };
        if kind == INET_DIAG_INFO {
            let token = u32::from_ne_bytes(info.get(INFO_TOKEN..INFO_TOKEN + 4)?.try_into().ok()?);
            let carried =
                u64_at(info, INFO_BYTES_ACKED)?.saturating_add(u64_at(info, INFO_BYTES_RECEIVED)?);
            return Some((Token(token), carried));
        }
    }
    None
}

/// What one received buffer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// More to come.
    More,
    /// `NLMSG_DONE` seen.
    Done,
}

/// Adds the sockets of one answer buffer (messages of sequence `seq`) to `out`.
pub fn parse_answer(buf: &[u8], seq: u32, out: &mut BTreeMap<Token, u64>) -> io::Result<Chunk> {
    parse_answer_with(buf, seq, &mut |body| {
        if let Some((t, b)) = parse_socket(body) {
            out.insert(t, b);
        }
    })
}

/// Hands each socket message of one answer buffer (messages of sequence `seq`) to `f`.
pub fn parse_answer_with(buf: &[u8], seq: u32, f: &mut dyn FnMut(&[u8])) -> io::Result<Chunk> {
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let mseq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if len < 16 || len > rest.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sock_diag answer: bad message length {len}"),
            ));
        }
        let body = &rest[16..len];
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
        if mseq != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(Chunk::Done),
            NLMSG_ERROR => {
                let code = body
                    .get(..4)
                    .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(code.saturating_abs()));
                }
            }
            SOCK_DIAG_BY_FAMILY => f(body),
            _ => {}
        }
    }
    Ok(Chunk::More)
}

/// How long one sample may take before it is abandoned.
const SAMPLE_DEADLINE: Duration = Duration::from_secs(1);
/// Pause between polls of the socket while the kernel is still producing the dump.
const POLL_PAUSE: Duration = Duration::from_millis(1);

/// A `sock_diag` socket in the calling thread's namespace.
///
/// The socket is non-blocking and polled (no reactor registration, so no `unsafe`): the
/// kernel builds the first part of a dump while handling the request, so the answer is
/// normally there at the first read; when it is not, the sampler pauses 1 ms between
/// reads, for at most 1 s.
#[derive(Debug)]
pub struct Sampler {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Sampler {
    /// Opens the socket (in the calling thread's network namespace).
    pub fn open() -> io::Result<Self> {
        let mut s = Socket::new(NETLINK_SOCK_DIAG)?;
        s.bind_auto()?;
        s.set_non_blocking(true)?;
        Ok(Self {
            socket: s,
            seq: 0,
            buf: Vec::with_capacity(32 * 1024),
        })
    }

    /// Bytes carried by every MPTCP connection of the namespace, by token.
    pub async fn sample(&mut self) -> io::Result<BTreeMap<Token, u64>> {
        let mut out = BTreeMap::new();
        self.dump(request, &mut |body| {
            if let Some((t, b)) = parse_socket(body) {
                out.insert(t, b);
            }
        })
        .await?;
        Ok(out)
    }

    /// `tcp_info` of every established TCP socket of the namespace (MPTCP subflows
    /// among them): the stall rule's input.
    pub async fn sample_subflows(&mut self) -> io::Result<Vec<SubflowSample>> {
        let mut out = Vec::new();
        self.dump(request_tcp, &mut |body| out.extend(parse_tcp_socket(body)))
            .await?;
        Ok(out)
    }

    /// One dump: `make(seq)` sent, each socket message of the answer to `f`.
    async fn dump(
        &mut self,
        make: fn(u32) -> Vec<u8>,
        f: &mut (dyn FnMut(&[u8]) + Send),
    ) -> io::Result<()> {
        // Leftovers of an abandoned dump would only be skipped by sequence; drop them.
        loop {
            self.buf.clear();
            match self.socket.recv(&mut self.buf, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.seq = self.seq.wrapping_add(1);
        self.socket.send(&make(self.seq), 0)?;
        let deadline = tokio::time::Instant::now() + SAMPLE_DEADLINE;
        loop {
            self.buf.clear();
            match self.socket.recv(&mut self.buf, 0) {
                Ok(_) => {
                    if parse_answer_with(&self.buf, self.seq, f)? == Chunk::Done {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("sock_diag dump unfinished after {SAMPLE_DEADLINE:?}"),
                        ));
                    }
                    tokio::time::sleep(POLL_PAUSE).await;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer message for one socket with `mptcp_info` of `info_len` bytes.
    fn answer(
        seq: u32,
        state: u8,
        token: u32,
        acked: u64,
        received: u64,
        info_len: usize,
    ) -> Vec<u8> {
        let mut info = vec![0u8; info_len];
        if info_len >= 16 {
            info[12..16].copy_from_slice(&token.to_ne_bytes());
        }
        if info_len >= 80 {
            info[64..72].copy_from_slice(&received.to_ne_bytes());
            info[72..80].copy_from_slice(&acked.to_ne_bytes());
        }
        let mut body = vec![0u8; INET_DIAG_MSG_LEN];
        body[0] = AF_INET6;
        body[1] = state;
        let nla_len = u16::try_from(4 + info.len()).unwrap();
        body.extend_from_slice(&nla_len.to_ne_bytes());
        body.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        body.extend_from_slice(&info);
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&u32::try_from(16 + body.len()).unwrap().to_ne_bytes());
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&body);
        m
    }

    fn done(seq: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m
    }

    #[test]
    fn request_is_what_ss_sends() {
        let r = request(7);
        assert_eq!(r.len(), 16 + 56 + 8);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 80);
        assert_eq!(&r[16..20], &[10, 6, 2, 0]);
        assert_eq!(&r[72..76], &[8, 0, 3, 0]);
        assert_eq!(u32::from_ne_bytes(r[76..80].try_into().unwrap()), 262);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
    }

    #[test]
    fn answers_are_summed_per_token_and_stale_sequences_skipped() {
        let buf = [
            answer(3, 1, 0xa871_3a27, 1000, 24, 96),
            answer(2, 1, 0x1111, 5, 5, 96),          // an old dump
            answer(3, TCP_LISTEN, 0x2222, 0, 0, 96), // a listener
            answer(3, 1, 0x3333, 9, 9, 48),          // kernel without the byte counters
            done(3),
        ]
        .concat();
        let mut out = BTreeMap::new();
        assert_eq!(parse_answer(&buf, 3, &mut out).unwrap(), Chunk::Done);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [(Token(0xa871_3a27), 1024)]
        );
        let mut out = BTreeMap::new();
        assert_eq!(
            parse_answer(&answer(3, 1, 1, 1, 1, 96), 3, &mut out).unwrap(),
            Chunk::More
        );
    }

    #[test]
    fn damaged_answers_never_panic() {
        let good = [answer(3, 1, 7, 1, 2, 96), done(3)].concat();
        for cut in 0..good.len() {
            let _ = parse_answer(&good[..cut], 3, &mut BTreeMap::new());
            for v in [0, 1, 0x7f, 0xff] {
                let mut b = good.clone();
                b[cut] = v;
                let _ = parse_answer(&b, 3, &mut BTreeMap::new());
            }
        }
        let mut err = done(3);
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-13i32).to_ne_bytes());
        assert_eq!(
            parse_answer(&err, 3, &mut BTreeMap::new())
                .unwrap_err()
                .raw_os_error(),
            Some(13)
        );
    }

    /// A TCP socket message: 4-tuple and `tcp_info` of `info_len` bytes.
    fn tcp_body(unacked: u32, last_ack_ms: u32, info_len: usize) -> Vec<u8> {
        let mut body = vec![0u8; INET_DIAG_MSG_LEN];
        body[0] = AF_INET6;
        body[1] = 1; // ESTABLISHED
        body[4..6].copy_from_slice(&40001u16.to_be_bytes());
        body[6..8].copy_from_slice(&8080u16.to_be_bytes());
        body[8..24].copy_from_slice(&"2001:db8:2::1".parse::<Ipv6Addr>().unwrap().octets());
        body[24..40].copy_from_slice(&"::ffff:192.0.2.7".parse::<Ipv6Addr>().unwrap().octets());
        let mut info = vec![0u8; info_len];
        if info_len >= 60 {
            info[24..28].copy_from_slice(&unacked.to_ne_bytes());
            info[56..60].copy_from_slice(&last_ack_ms.to_ne_bytes());
        }
        let nla_len = u16::try_from(4 + info.len()).unwrap();
        body.extend_from_slice(&nla_len.to_ne_bytes());
        body.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        body.extend_from_slice(&info);
        body
    }

    #[test]
    fn tcp_request_asks_established_tcp_with_info() {
        let r = request_tcp(9);
        assert_eq!(r.len(), 16 + 56);
        assert_eq!(&r[16..20], &[10, 6, 2, 0]);
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().unwrap()), 2);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 9);
    }

    #[test]
    fn tcp_socket_gives_the_tuple_unacked_and_last_ack() {
        let s = parse_tcp_socket(&tcp_body(7, 2500, 232)).unwrap();
        assert_eq!(s.local, "[2001:db8:2::1]:40001".parse().unwrap());
        assert_eq!(s.remote, "192.0.2.7:8080".parse().unwrap());
        assert_eq!(s.unacked, 7);
        assert_eq!(s.since_ack, Duration::from_millis(2500));
        // Too short a tcp_info, a truncated message, a corrupt attribute: nothing, no
        // panic.
        assert_eq!(parse_tcp_socket(&tcp_body(7, 2500, 40)), None);
        let full = tcp_body(7, 2500, 232);
        for n in 0..full.len() {
            let _ = parse_tcp_socket(&full[..n]);
        }
        let mut bad = full.clone();
        bad[INET_DIAG_MSG_LEN] = 0xff;
        bad[INET_DIAG_MSG_LEN + 1] = 0xff;
        let _ = parse_tcp_socket(&bad);
    }
}
