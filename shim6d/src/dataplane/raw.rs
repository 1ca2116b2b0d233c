//! Raw IPv6 sockets: one receiving protocol 140 (Shim6, RFC 5533 §5) with its ancillary
//! data, one `IPPROTO_RAW` socket sending complete IPv6 packets with the daemon's
//! firewall mark.
//!
//! Kernel behaviour these rely on (architecture.md hazard 5, tested in
//! `tests/tests/netns_dataplane.rs`):
//! - a raw `AF_INET6` socket for protocol 140 receives the datagram **from the Shim6
//!   header on** (the IPv6 header is stripped); the source comes as the socket address,
//!   the destination and arrival interface from `IPV6_PKTINFO`, hop limit, traffic
//!   class and flow label from `IPV6_RECVHOPLIMIT` / `IPV6_RECVTCLASS` /
//!   `IPV6_FLOWINFO`;
//! - while such a socket is open the kernel sends no ICMPv6 Parameter Problem for next
//!   header 140 (with none open it does: that is how a peer without Shim6 shows) —
//!   unless the socket's receive queue is full: a full raw socket is skipped, and the
//!   datagram is answered as if none were open ([`RECV_BUFFER`]);
//! - an `IPPROTO_RAW` socket sends the buffer as the whole IPv6 packet (header included,
//!   hop limit and traffic class as given), routed by its destination with `SO_MARK`
//!   applied, so the loop-guard rule keeps it out of the TUN.

use std::{
    io,
    net::Ipv6Addr,
    os::fd::{AsRawFd, OwnedFd},
};

use tokio::io::{Interest, unix::AsyncFd};

use super::{Batch, Error, PacketBuf};
use crate::sys;

pub use crate::sys::RecvInfo as RecvMeta;

/// IANA protocol number of Shim6 (RFC 5533 §17).
pub const IPPROTO_SHIM6: i32 = shim6_wire::shim6::IP_PROTO_SHIM6 as i32;

/// Receive buffer asked for on the receiving sockets, octets (`SO_RCVBUFFORCE`, else
/// `SO_RCVBUF`, which the kernel caps at `net.core.rmem_max`). The default
/// (`net.core.rmem_default`, 208 KiB) holds only a few hundred small datagrams, and a
/// raw socket that is full is skipped: with no other taker for protocol 140 the kernel
/// then answers the sender with an ICMPv6 Parameter Problem "unrecognized Next Header"
/// (docs/bench/dataplane.md, the UDP flood through a rewriting context).
pub const RECV_BUFFER: i32 = 4 << 20;

/// The receiving socket for protocol 140.
#[derive(Debug)]
pub struct RawRecv {
    fd: AsyncFd<OwnedFd>,
}

impl RawRecv {
    /// Opens the socket for `protocol` (140 in the daemon) with `IPV6_RECVPKTINFO`,
    /// `IPV6_RECVHOPLIMIT`, `IPV6_RECVTCLASS` and `IPV6_FLOWINFO` (flow label). Needs `CAP_NET_RAW` and a tokio
    /// runtime with I/O.
    pub fn open(protocol: i32) -> Result<Self, Error> {
        Self::open_filtered(protocol, None)
    }

    /// A raw ICMPv6 socket receiving only the error messages (RFC 4443 §2.1: types 1–4,
    /// Destination Unreachable, Packet Too Big, Time Exceeded, Parameter Problem), with
    /// the same ancillary data: what the core needs for NO-SUPPORT (RFC 5533 §7.6: an
    /// "unrecognized Next Header" Parameter Problem answering our I1) and for
    /// translating errors about rewritten packets back to the ULIDs (RFC 5533 §5.1).
    pub fn open_icmp6_errors() -> Result<Self, Error> {
        Self::open_filtered(libc::IPPROTO_ICMPV6, Some(&[1, 2, 3, 4]))
    }

    fn open_filtered(protocol: i32, icmp_pass: Option<&[u8]>) -> Result<Self, Error> {
        let fd = sys::raw6(protocol).map_err(|source| Error::RawOpen {
            what: "receive socket",
            source,
        })?;
        if let Some(pass) = icmp_pass {
            sys::set_icmp6_filter(&fd, pass).map_err(|source| Error::SocketOption {
                option: "ICMP6_FILTER",
                source,
            })?;
        }
        for (name, opt) in [
            ("IPV6_RECVPKTINFO", libc::IPV6_RECVPKTINFO),
            ("IPV6_RECVHOPLIMIT", libc::IPV6_RECVHOPLIMIT),
            ("IPV6_RECVTCLASS", libc::IPV6_RECVTCLASS),
            ("IPV6_FLOWINFO", libc::IPV6_FLOWINFO),
        ] {
            sys::set_int(&fd, libc::IPPROTO_IPV6, opt, 1).map_err(|source| {
                Error::SocketOption {
                    option: name,
                    source,
                }
            })?;
        }
        // Best effort: without CAP_NET_ADMIN the plain option (capped) still helps.
        if let Err(e) = sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RECV_BUFFER)
            .or_else(|_| sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RECV_BUFFER))
        {
            tracing::debug!(error = %e, "raw socket receive buffer stays at the default");
        }
        let fd = sys::async_fd(fd, Interest::READABLE).map_err(|source| Error::RawOpen {
            what: "receive socket (register with the runtime)",
            source,
        })?;
        Ok(Self { fd })
    }

    /// Waits for at least one datagram, then reads as many as are queued, up to the
    /// batch's capacity. Each lands at [`PacketBuf::RECV_OFFSET`] (room for the IPv6
    /// header a core rebuilds in front). Returns how many were read.
    pub async fn recv_batch(&self, batch: &mut Batch) -> io::Result<usize> {
        batch.clear();
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|fd| {
                let mut n = 0;
                while n < batch.capacity() {
                    let buf = &mut batch.bufs[n];
                    match sys::recv_info(fd.get_ref(), buf.recv_space()) {
                        Ok(info) => {
                            buf.set_received(info.len);
                            batch.meta[n] = info;
                            n += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(n)
            });
            match read {
                Ok(Ok(n)) => {
                    batch.len = n;
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(e),
                // Spurious readiness: wait again.
                Err(_would_block) => continue,
            }
        }
    }

    /// The raw descriptor, for tests that inspect socket options.
    pub fn as_raw_fd(&self) -> i32 {
        self.fd.get_ref().as_raw_fd()
    }
}

/// The `IPPROTO_RAW` send socket, marked with `SO_MARK`.
#[derive(Debug)]
pub struct RawSend {
    fd: AsyncFd<OwnedFd>,
    mark: u32,
}

impl RawSend {
    /// Opens the socket and sets `SO_MARK` to `mark`.
    pub fn open(mark: u32) -> Result<Self, Error> {
        let fd = sys::raw6(libc::IPPROTO_RAW).map_err(|source| Error::RawOpen {
            what: "send socket (IPPROTO_RAW)",
            source,
        })?;
        // The mark is a 32-bit pattern; setsockopt takes it as an int.
        sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_MARK, mark as i32).map_err(|source| {
            Error::SocketOption {
                option: "SO_MARK",
                source,
            }
        })?;
        let fd = sys::async_fd(fd, Interest::WRITABLE).map_err(|source| Error::RawOpen {
            what: "send socket (register with the runtime)",
            source,
        })?;
        Ok(Self { fd, mark })
    }

    /// The mark on every packet sent.
    pub fn mark(&self) -> u32 {
        self.mark
    }

    /// `SO_MARK` as the kernel has it on the socket (a check that the option took).
    pub fn kernel_mark(&self) -> io::Result<u32> {
        // The kernel stores the mark as a 32-bit pattern in an int.
        sys::get_int(self.fd.get_ref(), libc::SOL_SOCKET, libc::SO_MARK).map(|m| m as u32)
    }

    /// Sends one complete IPv6 packet to the destination in its header.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        let dst = destination(packet)?;
        // The header's source (RFC 8200 §3: octets 8..24), passed as IPV6_PKTINFO so the
        // kernel routes by it (source-address policy routing on multihomed hosts).
        let mut src = [0u8; 16];
        src.copy_from_slice(&packet[8..24]);
        let src = Ipv6Addr::from(src);
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| sys::send_from(fd.get_ref(), packet, src, dst)) {
                Ok(r) => return r.map(drop),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends the packets of `batch`, in order; returns how many went out and the
    /// errors of the others (a failed packet does not stop the batch: one unreachable
    /// peer must not hold up the rest).
    pub async fn send_batch<'a>(
        &self,
        packets: impl IntoIterator<Item = &'a PacketBuf>,
        errors: &mut Vec<io::Error>,
    ) -> usize {
        let mut sent = 0;
        for p in packets {
            match self.send(p.packet()).await {
                Ok(()) => sent += 1,
                Err(e) => errors.push(e),
            }
        }
        sent
    }
}

/// The destination address of an IPv6 packet (RFC 8200 §3: octets 24..40).
pub fn destination(packet: &[u8]) -> io::Result<Ipv6Addr> {
    if packet.len() < 40 || packet[0] >> 4 != 6 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an IPv6 packet (too short or version is not 6)",
        ));
    }
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&packet[24..40]);
    Ok(Ipv6Addr::from(dst))
}
