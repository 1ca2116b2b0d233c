//! The request side: one rtnetlink socket driven by a `netlink-proto` connection task.
//!
//! # Concurrency
//!
//! [`Handle::new`] opens a `NETLINK_ROUTE` socket in the calling thread's network namespace
//! and spawns the `netlink-proto` connection on the current tokio runtime. The connection
//! task owns the socket; every clone of the [`Handle`] holds a channel to it and an `Arc` of
//! a guard that aborts the task when the last clone is dropped. Requests from several
//! clones are multiplexed by sequence number, so clones may be used from concurrent tasks.
//!
//! The socket has `NETLINK_EXT_ACK` (the kernel explains refusals in text, which lands in
//! [`Error::Kernel::message`]) and `NETLINK_CAP_ACK` (error replies echo only the request
//! header) set. The connection forwards ACKs and `NLMSG_DONE`, so a request whose reply
//! never came (the task died) is an [`Error::Unexpected`] rather than a silent success.
//!
//! A netlink socket stays in the namespace it was created in. [`Handle::in_netns`] uses
//! that: it creates the socket on a short-lived thread that has entered the namespace,
//! then drives it from the caller's runtime.

use std::{
    io,
    sync::Arc,
    task::{Context, Poll, ready},
};

use futures_util::StreamExt;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlasIterator,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_proto::{ConnectionHandle, NetlinkCodec};
use netlink_sys::{AsyncSocket, Socket, SocketAddr, protocols::NETLINK_ROUTE};
use tokio::io::unix::AsyncFd;

use crate::{Error, Result, netns, sys};

/// How often a dump interrupted by a concurrent change (`NLM_F_DUMP_INTR`) is retried.
const DUMP_ATTEMPTS: usize = 5;

/// `NLMSGERR_ATTR_MSG` (`include/uapi/linux/netlink.h`): the extended-ACK text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Length of the request header echoed in an error reply when `NETLINK_CAP_ACK` is set.
const CAPPED_ECHO_LEN: usize = 16;

/// A netlink socket registered with the tokio reactor of the runtime that wraps it.
///
/// `netlink-sys` has its own tokio wrapper, but it can only be built from a raw fd
/// (`unsafe`) or by opening a fresh socket in the current namespace; ours wraps an already
/// opened [`Socket`], which is what [`Handle::in_netns`] needs.
#[derive(Debug)]
pub(crate) struct NlSocket(AsyncFd<Socket>);

impl NlSocket {
    /// Wraps `socket`; fails outside a tokio runtime with I/O enabled.
    pub(crate) fn wrap(socket: Socket) -> io::Result<Self> {
        socket.set_non_blocking(true)?;
        Ok(Self(sys::register(socket)?))
    }

    pub(crate) fn get_ref(&self) -> &Socket {
        self.0.get_ref()
    }

    pub(crate) fn async_fd(&self) -> &AsyncFd<Socket> {
        &self.0
    }

    /// For an event (multicast) socket: reads and discards everything queued, without
    /// waiting. Overruns met on the way are counted; the caller is resynchronising anyway.
    /// `what` names the events in errors ("rtnetlink notifications", …).
    pub(crate) fn drain(&self, buf: &mut Vec<u8>, overruns: &mut u64, what: &str) -> Result<()> {
        loop {
            buf.clear();
            match self.get_ref().recv(buf, libc::MSG_DONTWAIT) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => *overruns += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("drain {what}"), e)),
            }
        }
    }

    /// For an event socket: waits for one datagram into `buf` and says where it came
    /// from. `Overrun` is the kernel's ENOBUFS: notifications were lost and the caller
    /// must resynchronise.
    pub(crate) async fn receive(&self, buf: &mut Vec<u8>, what: &str) -> Result<Received> {
        let op = format!("receive {what}");
        loop {
            let mut guard = self.0.readable().await.map_err(|e| Error::io(&op, e))?;
            buf.clear();
            match guard.try_io(|s| s.get_ref().recv_from(buf, 0)) {
                // Only the kernel (port 0) speaks for the kernel: another process in the
                // namespace, with the rights to send to the group, must not fake events.
                Ok(Ok((_, addr))) if addr.port_number() == 0 => return Ok(Received::FromKernel),
                Ok(Ok(_)) => return Ok(Received::Foreign),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Ok(Received::Overrun);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(Error::io(&op, e)),
                Err(_would_block) => {}
            }
        }
    }
}

/// One request on a generic-netlink or XFRM connection: sends `msg` with `flags` and
/// collects the answers until the ACK (`dump == false`) or `NLMSG_DONE` (`dump == true`).
/// Returns the answers and whether the kernel flagged the dump as interrupted
/// (`NLM_F_DUMP_INTR`); a kernel error becomes [`Error::Kernel`] with its extended-ACK
/// text.
pub(crate) async fn exchange<M>(
    conn: &ConnectionHandle<M>,
    msg: M,
    flags: u16,
    dump: bool,
    op: &str,
) -> Result<(Vec<M>, bool)>
where
    M: netlink_packet_core::NetlinkSerializable
        + netlink_packet_core::NetlinkDeserializable
        + std::fmt::Debug
        + Send
        + 'static,
{
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    message.finalize();
    let mut responses = conn
        .request(message, SocketAddr::new(0, 0))
        .map_err(|e| Error::io(op, io::Error::other(e.to_string())))?;
    let mut messages = Vec::new();
    let mut interrupted = false;
    while let Some(response) = responses.next().await {
        if response.header.flags & NLM_F_DUMP_INTR != 0 {
            interrupted = true;
        }
        match response.payload {
            NetlinkPayload::InnerMessage(inner) => messages.push(inner),
            NetlinkPayload::Error(err) => match err.code {
                Some(code) => {
                    return Err(Error::Kernel {
                        errno: code.get().saturating_abs(),
                        op: op.to_owned(),
                        message: extack_message(&err.header),
                    });
                }
                None if !dump => return Ok((messages, interrupted)),
                None => return Err(Error::unexpected(op, "ACK where a dump was expected")),
            },
            NetlinkPayload::Done(done) if dump => {
                if done.code != 0 {
                    return Err(Error::Kernel {
                        errno: done.code.saturating_abs(),
                        op: op.to_owned(),
                        message: None,
                    });
                }
                return Ok((messages, interrupted));
            }
            _ => return Err(Error::unexpected(op, "unexpected netlink message type")),
        }
    }
    Err(Error::unexpected(
        op,
        "the connection closed before the kernel answered",
    ))
}

/// What [`NlSocket::receive`] got.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Received {
    /// A datagram from the kernel, now in the buffer.
    FromKernel,
    /// A datagram from another socket: to be ignored.
    Foreign,
    /// The kernel dropped notifications (ENOBUFS).
    Overrun,
}

impl AsyncSocket for NlSocket {
    fn socket_ref(&self) -> &Socket {
        self.0.get_ref()
    }

    /// Required by the trait; callers must not replace or clone the socket (see
    /// `sys::register`). netlink-proto only calls methods through it.
    fn socket_mut(&mut self) -> &mut Socket {
        self.0.get_mut()
    }

    fn new(protocol: isize) -> io::Result<Self> {
        Self::wrap(Socket::new(protocol)?)
    }

    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            if let Ok(result) = guard.try_io(|s| s.get_ref().send(buf, 0)) {
                return Poll::Ready(result);
            }
        }
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        addr: &SocketAddr,
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            if let Ok(result) = guard.try_io(|s| s.get_ref().send_to(buf, addr, 0)) {
                return Poll::Ready(result);
            }
        }
    }

    fn poll_recv<B>(&self, cx: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<()>>
    where
        B: bytes::BufMut,
    {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            if let Ok(result) = guard.try_io(|s| s.get_ref().recv(buf, 0)) {
                return Poll::Ready(result.map(|_| ()));
            }
        }
    }

    fn poll_recv_from<B>(&self, cx: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<SocketAddr>>
    where
        B: bytes::BufMut,
    {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            if let Ok(result) = guard.try_io(|s| s.get_ref().recv_from(buf, 0)) {
                return Poll::Ready(result.map(|(_, addr)| addr));
            }
        }
    }

    fn poll_recv_from_full(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Vec<u8>, SocketAddr)>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            if let Ok(result) = guard.try_io(|s| s.get_ref().recv_from_full()) {
                return Poll::Ready(result);
            }
        }
    }
}

/// Aborts a connection task when the last clone of its owner ([`Handle`],
/// [`crate::genl::Genl`], [`crate::xfrm::Xfrm`]) goes away.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens a netlink socket of `protocol` — in the calling thread's namespace, or inside
/// `/run/netns/NETNS` on a short-lived thread — asks for extended ACKs (the kernel's error
/// text) and capped ACKs, and spawns its request connection on the current tokio runtime.
/// `what` names the family in error messages ("rtnetlink", "xfrm netlink", …).
///
/// The socket joins no multicast group, so nothing unsolicited arrives; the receiver for
/// it is dropped, which makes the connection discard anything that would. ACKs and
/// `NLMSG_DONE` are forwarded to the requester, so a request whose answer never came
/// cannot be mistaken for a success.
///
/// Fails with [`Error::Io`] outside a tokio runtime (or one without I/O enabled).
pub(crate) fn request_connection<M>(
    protocol: isize,
    what: &str,
    netns: Option<&str>,
) -> Result<(ConnectionHandle<M>, Arc<AbortOnDrop>)>
where
    M: netlink_packet_core::NetlinkSerializable
        + netlink_packet_core::NetlinkDeserializable
        + std::fmt::Debug
        + Unpin
        + Send
        + 'static,
{
    let socket = match netns {
        None => {
            let op = format!("open {what} socket");
            Socket::new(protocol).map_err(|e| Error::io(&op, e))?
        }
        Some(name) => {
            let op = format!("open {what} socket in netns {name}");
            netns::with_socket_in(name, || Socket::new(protocol)).map_err(|e| Error::io(&op, e))?
        }
    };
    let op = format!("start {what} connection");
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|e| Error::io(&op, io::Error::other(e)))?;
    socket.set_ext_ack(true).map_err(|e| Error::io(&op, e))?;
    socket.set_cap_ack(true).map_err(|e| Error::io(&op, e))?;
    let socket = {
        // AsyncFd registers with the reactor of the runtime we are in.
        let _enter = runtime.enter();
        NlSocket::wrap(socket).map_err(|e| Error::io(&op, e))?
    };
    let (mut conn, handle, unsolicited) =
        netlink_proto::from_socket_with_codec::<M, NlSocket, NetlinkCodec>(socket);
    drop(unsolicited);
    conn.set_forward_ack(true);
    conn.set_forward_done(true);
    let task = runtime.spawn(conn);
    Ok((handle, Arc::new(AbortOnDrop(task.abort_handle()))))
}

/// A typed rtnetlink client: links, addresses, routes and rules of one network namespace.
///
/// Cheap to clone; the connection task lives as long as the longest-lived clone. The
/// operations are methods on this type, grouped by object in the modules
/// [`link`](crate::link), [`address`](crate::address), [`route`](crate::route) and
/// [`rule`](crate::rule); change notifications come from a [`Monitor`](crate::Monitor)
/// opened with [`Handle::monitor`].
#[derive(Clone, Debug)]
pub struct Handle {
    conn: ConnectionHandle<RouteNetlinkMessage>,
    netns: Option<Arc<str>>,
    _task: Arc<AbortOnDrop>,
}

/// What a request expects back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reply {
    /// An ACK (`NLMSG_ERROR` with code 0), possibly preceded by answers.
    Ack,
    /// A multipart dump ending in `NLMSG_DONE`.
    Dump,
}

/// One round trip: the answers, and whether the kernel flagged the dump as inconsistent.
struct Exchange {
    messages: Vec<RouteNetlinkMessage>,
    interrupted: bool,
}

impl Handle {
    /// Opens an rtnetlink socket in the calling thread's network namespace and spawns its
    /// connection task on the current tokio runtime.
    ///
    /// Fails with [`Error::Io`] outside a tokio runtime (or one without I/O enabled).
    pub fn new() -> Result<Self> {
        Self::open(None)
    }

    /// Opens an rtnetlink socket inside the named network namespace (`/run/netns/NAME`)
    /// and drives it from the current tokio runtime, whatever namespace the runtime's
    /// threads are in.
    ///
    /// The socket is created on a short-lived thread that enters the namespace; the
    /// calling thread's namespace is not touched. Monitors opened from this handle
    /// ([`Handle::monitor`]) are opened in the same namespace.
    pub fn in_netns(name: &str) -> Result<Self> {
        Self::open(Some(name))
    }

    fn open(netns: Option<&str>) -> Result<Self> {
        let (conn, task) = request_connection(NETLINK_ROUTE, "rtnetlink", netns)?;
        Ok(Self {
            conn,
            netns: netns.map(Arc::from),
            _task: task,
        })
    }

    /// The namespace given to [`Handle::in_netns`], `None` for the caller's own.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Sends `msg` with `NLM_F_REQUEST | NLM_F_ACK | flags` and waits for the ACK;
    /// answers before the ACK (as for a `RTM_GETLINK` by name) are returned.
    pub(crate) async fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let exchange = self
            .exchange(msg, NLM_F_REQUEST | NLM_F_ACK | flags, Reply::Ack, op)
            .await?;
        Ok(exchange.messages)
    }

    /// Dumps with `NLM_F_REQUEST | NLM_F_DUMP`, retrying when the kernel reports that the
    /// table changed under the dump (`NLM_F_DUMP_INTR`).
    pub(crate) async fn dump(
        &self,
        msg: RouteNetlinkMessage,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        for _ in 0..DUMP_ATTEMPTS {
            let exchange = self
                .exchange(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP, Reply::Dump, op)
                .await?;
            if !exchange.interrupted {
                return Ok(exchange.messages);
            }
        }
        Err(Error::unexpected(
            op,
            format!("dump interrupted by concurrent changes {DUMP_ATTEMPTS} times in a row"),
        ))
    }

    async fn exchange(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        reply: Reply,
        op: &str,
    ) -> Result<Exchange> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        message.finalize();
        let mut responses = self
            .conn
            .request(message, SocketAddr::new(0, 0))
            .map_err(|e| Error::io(op, io::Error::other(e.to_string())))?;
        let mut exchange = Exchange {
            messages: Vec::new(),
            interrupted: false,
        };
        while let Some(response) = responses.next().await {
            if response.header.flags & NLM_F_DUMP_INTR != 0 {
                exchange.interrupted = true;
            }
            match response.payload {
                NetlinkPayload::InnerMessage(inner) => exchange.messages.push(inner),
                NetlinkPayload::Error(err) => match err.code {
                    Some(code) => {
                        return Err(Error::Kernel {
                            errno: code.get().saturating_abs(),
                            op: op.to_owned(),
                            message: extack_message(&err.header),
                        });
                    }
                    None if reply == Reply::Ack => return Ok(exchange),
                    None => return Err(Error::unexpected(op, "ACK where a dump was expected")),
                },
                NetlinkPayload::Done(done) if reply == Reply::Dump => {
                    // NLMSG_DONE carries the dump's own error code (negative errno).
                    if done.code != 0 {
                        return Err(Error::Kernel {
                            errno: done.code.saturating_abs(),
                            op: op.to_owned(),
                            message: extack_in(&done.extended_ack),
                        });
                    }
                    return Ok(exchange);
                }
                other => {
                    return Err(Error::unexpected(
                        op,
                        format!("netlink message type {}", payload_kind(&other)),
                    ));
                }
            }
        }
        Err(Error::unexpected(
            op,
            "the connection closed before the kernel answered",
        ))
    }
}

fn payload_kind(payload: &NetlinkPayload<RouteNetlinkMessage>) -> &'static str {
    match payload {
        NetlinkPayload::Done(_) => "NLMSG_DONE",
        NetlinkPayload::Error(_) => "NLMSG_ERROR",
        NetlinkPayload::Noop => "NLMSG_NOOP",
        NetlinkPayload::Overrun(_) => "NLMSG_OVERRUN",
        NetlinkPayload::InnerMessage(_) => "rtnetlink",
        _ => "unknown",
    }
}

/// The extended-ACK text of an error reply whose payload (after the errno) is `echo`:
/// the capped request header, then `NLMSGERR_ATTR_*` attributes.
pub(crate) fn extack_message(echo: &[u8]) -> Option<String> {
    extack_in(echo.get(CAPPED_ECHO_LEN..)?)
}

/// The `NLMSGERR_ATTR_MSG` string among the attributes in `tlvs`.
fn extack_in(tlvs: &[u8]) -> Option<String> {
    NlasIterator::new(tlvs)
        .filter_map(|nla| nla.ok())
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let value = nla.value();
            let text = value.split(|b| *b == 0).next().unwrap_or(value);
            String::from_utf8_lossy(text).into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real refusal: `RTM_NEWLINK` setting MTU 70000 on a veth, sent with `NETLINK_EXT_ACK`
    /// and `NETLINK_CAP_ACK` from a Python socket on kernel 6.18. The whole reply was
    /// `48000000 0200 0003 07000000 c7620000 eaffffff` (`NLMSG_ERROR`, flags
    /// `NLM_F_CAPPED | NLM_F_ACK_TLVS`, errno -22) followed by this payload: the capped
    /// echo of the request header, then `NLMSGERR_ATTR_MSG`.
    const MTU_EINVAL_ECHO: [u8; 52] = hex_literal::hex!(
        "28000000 1000 0500 07000000 00000000"
        "2400 0100 6d74752067726561746572207468616e20646576696365206d6178696d756d00"
    );

    #[test]
    fn extack_text_is_extracted_after_the_capped_echo() {
        assert_eq!(
            extack_message(&MTU_EINVAL_ECHO).as_deref(),
            Some("mtu greater than device maximum")
        );
    }

    #[test]
    fn no_extack_when_only_the_echo_is_there() {
        assert_eq!(extack_message(&MTU_EINVAL_ECHO[..16]), None);
        assert_eq!(extack_message(&[]), None);
        // A truncated attribute is skipped, not a panic.
        assert_eq!(extack_message(&MTU_EINVAL_ECHO[..30]), None);
    }
}
