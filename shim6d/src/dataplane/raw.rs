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

use super::{Batch, Error, PacketBuf, gso::GsoSend};
use crate::sys;

pub use crate::sys::RecvInfo as RecvMeta;

/// IANA protocol number of Shim6 (RFC 5533 §17).
pub const IPPROTO_SHIM6: i32 = shim6_wire::shim6::IP_PROTO_SHIM6 as i32;

/// Receive buffer asked for on the receiving sockets, octets (`SO_RCVBUFFORCE`, else
/// `SO_RCVBUF`, which the kernel caps at `net.core.rmem_max`). The default
/// (`net.core.rmem_default`, 208 KiB) holds only a few hundred small datagrams or about
/// 140 full-size ones: a peer's TCP window arrives as back-to-back datagrams, the tail
/// of a burst is dropped and TCP takes it for congestion; and a raw socket that is full
/// is skipped, so with no other taker for protocol 140 the kernel answers the sender
/// with an ICMPv6 Parameter Problem "unrecognized Next Header" (docs/bench/dataplane.md,
/// the UDP flood through a rewriting context).
pub const RECV_BUFFER: i32 = 8 << 20;

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
        if sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RECV_BUFFER).is_err()
            && let Err(e) = sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RECV_BUFFER)
        {
            tracing::debug!(error = %e, "raw receive buffer left at its default");
        }
        let fd = sys::async_fd(fd, Interest::READABLE).map_err(|source| Error::RawOpen {
            what: "receive socket (register with the runtime)",
            source,
        })?;
        Ok(Self { fd })
    }

    /// Waits for at least one datagram, then reads as many as are queued, up to the
    /// batch's capacity, 64 (`MMSG_CHUNK`) per `recvmmsg`. Each lands at
    /// [`PacketBuf::RECV_OFFSET`] (room for the IPv6 header a core rebuilds in front).
    /// Returns how many were read.
    pub async fn recv_batch(&self, batch: &mut Batch) -> io::Result<usize> {
        batch.clear();
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|fd| {
                let mut n = 0;
                while n < batch.capacity() {
                    match sys::recv_many(
                        fd.get_ref(),
                        &mut batch.bufs[n..],
                        PacketBuf::recv_space,
                        &mut batch.meta[n..],
                    ) {
                        Ok(got) => {
                            for i in n..n + got {
                                let len = batch.meta[i].len;
                                batch.bufs[i].set_received(len);
                            }
                            n += got;
                            // A short read means the queue is empty: save a syscall.
                            if got < sys::MMSG_CHUNK {
                                break;
                            }
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

/// The `IPPROTO_RAW` send socket, marked with `SO_MARK`, and optionally the packet
/// socket that sends pass-through super-segments whole ([`super::gso`]).
#[derive(Debug)]
pub struct RawSend {
    fd: AsyncFd<OwnedFd>,
    mark: u32,
    gso: Option<std::sync::Mutex<GsoSend>>,
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
        Ok(Self {
            fd,
            mark,
            gso: None,
        })
    }

    /// Opens the packet socket for whole super-segments ([`super::gso`]; with an
    /// offload TUN, whose reads keep them).
    pub fn enable_gso(&mut self) -> Result<(), Error> {
        let g = GsoSend::open(self.mark).map_err(|source| Error::RawOpen {
            what: "packet socket (AF_PACKET, PACKET_VNET_HDR)",
            source,
        })?;
        self.gso = Some(std::sync::Mutex::new(g));
        Ok(())
    }

    /// Sends whole the batch's super-segments whose packets, all listed in `send`,
    /// passed the core unchanged, and removes their packets from `send`. Returns the
    /// packets, their bytes, and the super-segments sent. Those that could not leave
    /// this way stay in `send` for the raw socket.
    pub(crate) fn send_groups(
        &self,
        batch: &Batch,
        send: &mut Vec<usize>,
        now: std::time::Instant,
    ) -> (u64, u64, u64) {
        let Some(gso) = &self.gso else {
            return (0, 0, 0);
        };
        let mut gso = gso
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut listed = vec![false; batch.len];
        for &i in send.iter() {
            if let Some(l) = listed.get_mut(i) {
                *l = true;
            }
        }
        let (mut packets, mut bytes, mut frames) = (0, 0, 0);
        let mut done = vec![false; batch.len];
        for (g, frame) in batch.groups.iter().zip(&batch.frames) {
            let Some(raw) = frame.get(..g.len) else {
                continue;
            };
            let Some(orig) = raw.get(tun_rs::VIRTIO_NET_HDR_LEN..) else {
                continue;
            };
            if orig.len() < 40 || g.first + g.count > batch.len {
                continue;
            }
            // Unchanged: same window, same next header and addresses (RFC 8200 §3:
            // octet 6, octets 8..40) as the super-segment they came from.
            let unchanged = (g.first..g.first + g.count).all(|i| {
                let b = &batch.bufs[i];
                listed[i]
                    && b.is_tun_window(batch.sizes[i])
                    && b.packet()[6] == orig[6]
                    && b.packet()[8..40] == orig[8..40]
            });
            if !unchanged {
                continue;
            }
            let (Ok(src), Ok(dst)) = (
                <[u8; 16]>::try_from(&orig[8..24]),
                <[u8; 16]>::try_from(&orig[24..40]),
            ) else {
                continue;
            };
            if gso.send(raw, Ipv6Addr::from(src), Ipv6Addr::from(dst), now) {
                frames += 1;
                let range = g.first..g.first + g.count;
                done[range.clone()].fill(true);
                packets += g.count as u64;
                bytes += batch.sizes[range].iter().map(|&n| n as u64).sum::<u64>();
            }
        }
        if frames > 0 {
            send.retain(|&i| !done.get(i).copied().unwrap_or(false));
        }
        (packets, bytes, frames)
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

    /// Sends `packets`, in order, 64 (`MMSG_CHUNK`) per `sendmmsg`; returns how many
    /// went out and the others' errors with their indices in `packets` (a failed packet
    /// does not stop the batch: one unreachable peer must not hold up the rest).
    pub async fn send_batch(
        &self,
        packets: &[&[u8]],
        errors: &mut Vec<(usize, io::Error)>,
    ) -> usize {
        // Through the packet socket where it can (`super::gso`); the rest, by index.
        let rest: Vec<usize> = match &self.gso {
            Some(g) => g
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .send_packets(packets, std::time::Instant::now()),
            None => (0..packets.len()).collect(),
        };
        let by_packet_socket = packets.len() - rest.len();
        if rest.is_empty() {
            return by_packet_socket;
        }
        let owned: Vec<&[u8]>;
        let packets: &[&[u8]] = if by_packet_socket == 0 {
            packets
        } else {
            owned = rest.iter().map(|&i| packets[i]).collect();
            &owned
        };
        let first_error = errors.len();
        let mut progress = SendProgress::default();
        while progress.next < packets.len() {
            let mut guard = match self.fd.writable().await {
                Ok(g) => g,
                Err(e) => {
                    progress.failed(e, errors);
                    continue;
                }
            };
            let rest = &packets[progress.next..];
            match guard.try_io(|fd| sys::send_many(fd.get_ref(), rest)) {
                Ok(r) => progress.step(r, errors),
                // The socket buffer is full: wait for room.
                Err(_would_block) => continue,
            }
        }
        // Indices back into the caller's list.
        if by_packet_socket > 0 {
            for (i, _) in &mut errors[first_error..] {
                *i = rest.get(*i).copied().unwrap_or(*i);
            }
        }
        by_packet_socket + progress.sent
    }
}

/// Bookkeeping of a batch sent with `sendmmsg`, which stops at the first packet the
/// kernel refuses: the ones before it went out, the refused one is reported by the next
/// call (as its first), skipped and counted, and sending resumes after it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SendProgress {
    /// Index of the next packet to hand to the kernel.
    next: usize,
    /// How many went out.
    sent: usize,
}

impl SendProgress {
    /// Takes the result of one `sendmmsg` starting at `next`.
    fn step(&mut self, r: io::Result<usize>, errors: &mut Vec<(usize, io::Error)>) {
        match r {
            // Zero taken with no error cannot make progress: treat the first as failed.
            Ok(0) => self.failed(
                io::Error::new(io::ErrorKind::WriteZero, "sendmmsg took no packet"),
                errors,
            ),
            Ok(n) => {
                self.next += n;
                self.sent += n;
            }
            Err(e) => self.failed(e, errors),
        }
    }

    /// The packet at `next` failed: record and skip it.
    fn failed(&mut self, e: io::Error, errors: &mut Vec<(usize, io::Error)>) {
        errors.push((self.next, e));
        self.next += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sends_resume_after_the_refused_packet() {
        // 10 packets: the kernel takes 4, then refuses the 5th (reported as the first
        // of the next call), then takes the last 5.
        let mut p = SendProgress::default();
        let mut errors = Vec::new();
        p.step(Ok(4), &mut errors);
        assert_eq!(p, SendProgress { next: 4, sent: 4 });
        p.step(
            Err(io::Error::from_raw_os_error(libc::ENETUNREACH)),
            &mut errors,
        );
        assert_eq!(p, SendProgress { next: 5, sent: 4 });
        p.step(Ok(5), &mut errors);
        assert_eq!(p, SendProgress { next: 10, sent: 9 });
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 4, "the 5th packet failed");
        assert_eq!(errors[0].1.raw_os_error(), Some(libc::ENETUNREACH));
    }

    #[test]
    fn zero_taken_is_progress_not_a_loop() {
        let mut p = SendProgress::default();
        let mut errors = Vec::new();
        p.step(Ok(0), &mut errors);
        assert_eq!(p, SendProgress { next: 1, sent: 0 });
        assert_eq!(errors[0].0, 0);
        assert_eq!(errors[0].1.kind(), io::ErrorKind::WriteZero);
    }
}
