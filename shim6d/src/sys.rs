//! The daemon's only `unsafe` code: raw IPv6 sockets through `libc` (socket options,
//! `recvmmsg` with ancillary data, `sendmsg`, `sendmmsg`). Everything here is a thin, checked wrapper;
//! the safe API is in [`crate::dataplane::raw`].
//!
//! Every `unsafe` block says why it is sound. The common arguments: file descriptors come
//! from an [`OwnedFd`] that outlives the call; pointers and lengths passed to the kernel
//! describe live, correctly sized Rust objects; structures the kernel fills are
//! zero-initialised plain C data, valid for any bit pattern.

#![allow(unsafe_code)]

use std::{
    io,
    mem::{size_of, zeroed},
    net::Ipv6Addr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

/// Opens `socket(AF_INET6, SOCK_RAW, protocol)`, non-blocking and close-on-exec.
pub fn raw6(protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; no pointers.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET6,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`.
pub fn set_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ICMP6_FILTER` (linux/icmpv6.h; RFC 3542 §3.2): the option of a raw ICMPv6 socket
/// that says which message types it receives.
const ICMP6_FILTER: i32 = 1;

/// Lets a raw ICMPv6 socket receive only the message types in `pass` (RFC 3542 §3.2).
/// In the kernel's `struct icmp6_filter` a set bit blocks its type.
pub fn set_icmp6_filter(fd: &OwnedFd, pass: &[u8]) -> io::Result<()> {
    let mut filter = [u32::MAX; 8];
    for &t in pass {
        filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    // SAFETY: the pointer and length describe `filter`, a live [u32; 8], which has the
    // layout of the kernel's `struct icmp6_filter { __u32 data[8]; }`.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            (&raw const filter).cast(),
            size_of::<[u32; 8]>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `getsockopt` of an `int` option.
pub fn get_int(fd: &OwnedFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the pointers describe `value` and `len`, live and correctly sized.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

/// What `recvmsg` told about one datagram besides its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RecvInfo {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// Source address (`msg_name`).
    pub src: Option<Ipv6Addr>,
    /// Destination address (`IPV6_PKTINFO`).
    pub dst: Option<Ipv6Addr>,
    /// Arrival interface (`IPV6_PKTINFO`).
    pub ifindex: Option<u32>,
    /// Hop limit (`IPV6_HOPLIMIT`).
    pub hop_limit: Option<u8>,
    /// Traffic class (`IPV6_TCLASS`).
    pub tclass: Option<u8>,
    /// Flow label, 20 bits (`IPV6_FLOWINFO` ancillary message, RFC 6437).
    pub flow_label: Option<u32>,
}

/// Control buffer for the three ancillary messages we ask for; `u64` elements keep it
/// aligned for `cmsghdr`.
const CMSG_WORDS: usize = 32;

/// Fills `info` (all but `len`) from a `msghdr` the kernel filled: `MSG_TRUNC`, the source
/// address in `name`, and the ancillary messages in the control buffer `msg` points to.
fn decode_msg(msg: &libc::msghdr, name: &libc::sockaddr_in6, info: &mut RecvInfo) {
    info.truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
    if msg.msg_namelen as usize >= size_of::<libc::sockaddr_in6>()
        && i32::from(name.sin6_family) == libc::AF_INET6
    {
        info.src = Some(Ipv6Addr::from(name.sin6_addr.s6_addr));
    }
    // SAFETY: `msg` was filled by the kernel and its control pointer still refers to the
    // caller's live control buffer; CMSG_FIRSTHDR/CMSG_NXTHDR walk it within
    // `msg_controllen`, and CMSG_DATA points inside each header's payload, which we read
    // unaligned and only up to the size the header announces.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let h = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            let payload = h.cmsg_len.saturating_sub(libc::CMSG_LEN(0) as usize);
            if h.cmsg_level == libc::IPPROTO_IPV6 {
                match h.cmsg_type {
                    libc::IPV6_PKTINFO if payload >= size_of::<libc::in6_pktinfo>() => {
                        let p: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                        info.dst = Some(Ipv6Addr::from(p.ipi6_addr.s6_addr));
                        info.ifindex = Some(p.ipi6_ifindex);
                    }
                    libc::IPV6_HOPLIMIT if payload >= size_of::<libc::c_int>() => {
                        let v: libc::c_int = std::ptr::read_unaligned(data.cast());
                        info.hop_limit = u8::try_from(v).ok();
                    }
                    libc::IPV6_TCLASS if payload >= size_of::<libc::c_int>() => {
                        let v: libc::c_int = std::ptr::read_unaligned(data.cast());
                        info.tclass = u8::try_from(v).ok();
                    }
                    // The flowinfo word in network order: traffic class and flow label
                    // (RFC 8200 §3); the label is the low 20 bits.
                    libc::IPV6_FLOWINFO if payload >= size_of::<u32>() => {
                        let v: u32 = std::ptr::read_unaligned(data.cast());
                        info.flow_label = Some(u32::from_be(v) & 0x000f_ffff);
                    }
                    _ => {}
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
}

/// One non-blocking receive of a single datagram into `buf`: its length and what came
/// with it (`WouldBlock` when none is queued). For sockets that see few datagrams (the
/// MipShim6 tunnel endpoint); it is [`recv_many`] with a batch of one.
pub fn recv_info(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<RecvInfo> {
    let mut infos = [RecvInfo::default()];
    recv_many(fd, &mut [buf], |b| &mut **b, &mut infos)?;
    Ok(infos[0])
}

/// Most datagrams one `recvmmsg`/`sendmmsg` call moves: the per-call header arrays live
/// on the stack (≈ 24 KB at 64).
pub const MMSG_CHUNK: usize = 64;

/// One non-blocking `recvmmsg` (no timeout): up to [`MMSG_CHUNK`] datagrams, the `i`-th
/// into the slice `space(&mut bufs[i])`, its metadata into `infos[i]`. Returns how many
/// arrived (at least one; `WouldBlock` when none is queued).
///
/// Nix's `recvmmsg` would do, but it copies unknown control messages
/// (`IPV6_FLOWINFO`) into a fresh `Vec` per datagram; this one decodes in place.
pub fn recv_many<B>(
    fd: &OwnedFd,
    bufs: &mut [B],
    mut space: impl FnMut(&mut B) -> &mut [u8],
    infos: &mut [RecvInfo],
) -> io::Result<usize> {
    let n = bufs.len().min(infos.len()).min(MMSG_CHUNK);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY (all four): plain C data; all-zero is a valid value.
    let mut names: [libc::sockaddr_in6; MMSG_CHUNK] = unsafe { zeroed() };
    let mut controls = [[0u64; CMSG_WORDS]; MMSG_CHUNK];
    let mut iovs: [libc::iovec; MMSG_CHUNK] = unsafe { zeroed() };
    let mut hdrs: [libc::mmsghdr; MMSG_CHUNK] = unsafe { zeroed() };
    for (i, b) in bufs.iter_mut().take(n).enumerate() {
        let s = space(b);
        iovs[i] = libc::iovec {
            iov_base: s.as_mut_ptr().cast(),
            iov_len: s.len(),
        };
        let m = &mut hdrs[i].msg_hdr;
        m.msg_name = (&raw mut names[i]).cast();
        m.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        m.msg_iov = &raw mut iovs[i];
        m.msg_iovlen = 1;
        m.msg_control = controls[i].as_mut_ptr().cast();
        m.msg_controllen = size_of::<[u64; CMSG_WORDS]>();
    }
    // SAFETY: the first `n` headers point at live locals (`names`, `iovs`, `controls`)
    // and, through the iovecs, at the callers' buffers, which `bufs` keeps mutably
    // borrowed for the whole call; each length is the size of what it describes. The
    // kernel writes at most `n` headers' worth. A null timeout is allowed.
    let got = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // At most `n` (the kernel never reports more messages than it was given).
    let got = (got as usize).min(n);
    for i in 0..got {
        let mut info = RecvInfo {
            len: (hdrs[i].msg_len as usize).min(iovs[i].iov_len),
            ..RecvInfo::default()
        };
        decode_msg(&hdrs[i].msg_hdr, &names[i], &mut info);
        infos[i] = info;
    }
    Ok(got)
}

/// One non-blocking `sendmmsg` of up to [`MMSG_CHUNK`] complete IPv6 packets, each to the
/// destination in its header with an `IPV6_PKTINFO` naming the source in its header (as
/// [`send_from`] does for one). Returns how many the kernel took, in order (the first
/// failing one stops the call; the error comes back only when it is the first).
///
/// Nix's `sendmmsg` shares one set of control messages across the batch; each packet
/// here has its own source.
pub fn send_many(fd: &OwnedFd, packets: &[&[u8]]) -> io::Result<usize> {
    let n = packets.len().min(MMSG_CHUNK);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY (all three): plain C data; all-zero is a valid value.
    let mut names: [libc::sockaddr_in6; MMSG_CHUNK] = unsafe { zeroed() };
    let mut iovs: [libc::iovec; MMSG_CHUNK] = unsafe { zeroed() };
    let mut hdrs: [libc::mmsghdr; MMSG_CHUNK] = unsafe { zeroed() };
    let mut controls = [[0u64; PKTINFO_WORDS]; MMSG_CHUNK];
    // SAFETY: CMSG_SPACE and CMSG_LEN only compute lengths.
    let (space, cmsg_len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize,
            libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize,
        )
    };
    debug_assert!(space <= size_of::<[u64; PKTINFO_WORDS]>());
    for (i, p) in packets.iter().take(n).enumerate() {
        // Too short for a header: send it as is to `::` and let the kernel refuse it
        // (the caller checked; this keeps the indices aligned).
        let (src, dst) = if p.len() >= 40 {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&p[8..24]);
            d.copy_from_slice(&p[24..40]);
            (s, d)
        } else {
            ([0; 16], [0; 16])
        };
        names[i].sin6_family = libc::AF_INET6 as libc::sa_family_t;
        names[i].sin6_addr.s6_addr = dst;
        iovs[i] = libc::iovec {
            iov_base: p.as_ptr().cast_mut().cast(),
            iov_len: p.len(),
        };
        let m = &mut hdrs[i].msg_hdr;
        m.msg_name = (&raw mut names[i]).cast();
        m.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        m.msg_iov = &raw mut iovs[i];
        m.msg_iovlen = 1;
        m.msg_control = controls[i].as_mut_ptr().cast();
        m.msg_controllen = space as _;
        // SAFETY: `controls[i]` is aligned for cmsghdr and at least `space` long, so the
        // first header and its in6_pktinfo fit inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(m);
            (*c).cmsg_level = libc::IPPROTO_IPV6;
            (*c).cmsg_type = libc::IPV6_PKTINFO;
            (*c).cmsg_len = cmsg_len as _;
            let mut info: libc::in6_pktinfo = zeroed();
            info.ipi6_addr.s6_addr = src;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), info);
        }
    }
    // SAFETY: the first `n` headers point at live locals and at the packets, borrowed for
    // the call; the kernel only reads the packets (the iovecs' mutable pointers are never
    // written through) and writes only `msg_len` of each header.
    unsafe { send_mmsg(fd, &mut hdrs, n) }
}

/// One non-blocking `sendmmsg` of the first `n` (at most [`MMSG_CHUNK`]) of `hdrs`:
/// how many the kernel took (never more than `n`), or the error when the first failed.
///
/// # Safety
/// The first `n` headers point only at memory that is live for the call (names,
/// iovecs, the buffers those name, control data), each length the size of what it
/// describes. The kernel reads all that and writes only each header's `msg_len`.
unsafe fn send_mmsg(
    fd: &OwnedFd,
    hdrs: &mut [libc::mmsghdr; MMSG_CHUNK],
    n: usize,
) -> io::Result<usize> {
    let n = n.min(MMSG_CHUNK);
    // SAFETY: `hdrs` holds `MMSG_CHUNK` ≥ `n` headers; what they point at is the
    // caller's contract.
    let sent = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((sent as usize).min(n))
    }
}

/// Control buffer for one `IPV6_PKTINFO` message (`CMSG_SPACE` of 20 octets is 40).
const PKTINFO_WORDS: usize = 6;

/// `sendmsg` of `buf` to `dst` with an `IPV6_PKTINFO` ancillary message naming `src`
/// (RFC 3542 §6.1), non-blocking. On an `IPPROTO_RAW` socket the kernel ignores the
/// source in the packet's own header when it routes; the ancillary source makes the
/// route lookup see it, so source-address policy rules (`ip -6 rule from PREFIX`, one
/// table per provider on a multihomed host) send each locator out of its own link.
pub fn send_from(fd: &OwnedFd, buf: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<usize> {
    // SAFETY: sockaddr_in6 and in6_pktinfo are plain C data; all-zero is valid.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = dst.octets();
    let mut info: libc::in6_pktinfo = unsafe { zeroed() };
    info.ipi6_addr.s6_addr = src.octets();
    let mut control = [0u64; CMSG_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain C data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut sa).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a length.
    let space = unsafe { libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) } as usize;
    debug_assert!(space <= size_of_val(&control));
    msg.msg_controllen = space as _;
    // SAFETY: `control` is aligned for cmsghdr and at least `space` long, so the first
    // header and its data fit; every pointer is live for the sendmsg call; the kernel
    // only reads `buf` (the iovec's mutable pointer is never written through).
    let n = unsafe {
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        (*c).cmsg_level = libc::IPPROTO_IPV6;
        (*c).cmsg_type = libc::IPV6_PKTINFO;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), info);
        libc::sendmsg(fd.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Registers `fd` with the current tokio runtime's reactor.
///
/// Fails (instead of panicking, as tokio would) outside a runtime.
pub fn async_fd(
    fd: OwnedFd,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    // SAFETY: an OwnedFd is open for as long as it lives, and its `as_raw_fd` always
    // returns the same descriptor; the AsyncFd takes ownership of it, so it cannot be
    // closed or replaced while registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }
        .map_err(|e| e.into_parts().1)
}

/// `PACKET_VNET_HDR` (`linux/if_packet.h`): every packet written to the socket starts
/// with a `virtio_net_hdr` (GSO type and size, partial checksum position).
const PACKET_VNET_HDR: i32 = 15;

/// Opens `socket(AF_PACKET, SOCK_RAW, 0)` (protocol 0: it receives nothing),
/// non-blocking and close-on-exec, with `PACKET_VNET_HDR` (which needs `SOCK_RAW`): a
/// send-only socket for whole link-layer frames behind a `virtio_net_hdr`.
pub fn packet_vnet() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; no pointers.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int(&fd, libc::SOL_PACKET, PACKET_VNET_HDR, 1)?;
    Ok(fd)
}

/// `sendmsg` of one frame on interface `ifindex`, gathered from `head` (the
/// `virtio_net_hdr` and the Ethernet header) and `packet` (the IPv6 packet), non-blocking.
pub fn send_ll(fd: &OwnedFd, head: &[u8], packet: &[u8], ifindex: u32) -> io::Result<usize> {
    // SAFETY: sockaddr_ll and msghdr are plain C data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    // RFC 2464 §3: EtherType 0x86DD.
    sa.sll_protocol = (libc::ETH_P_IPV6 as u16).to_be();
    sa.sll_ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
    let mut iov = [
        libc::iovec {
            iov_base: head.as_ptr().cast_mut().cast(),
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: packet.as_ptr().cast_mut().cast(),
            iov_len: packet.len(),
        },
    ];
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut sa).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len();
    // SAFETY: every pointer in `msg` refers to a live local (`sa`, `iov`) or to `head`
    // and `packet`, borrowed for the call, with its length; the kernel only reads the
    // buffers (the iovecs' mutable pointers are never written through).
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One frame for [`send_ll_many`]: what goes in front (`virtio_net_hdr` and Ethernet
/// header), the IPv6 packet, and the interface.
pub type LlFrame<'a> = (&'a [u8], &'a [u8], u32);

/// One non-blocking `sendmmsg` of up to [`MMSG_CHUNK`] frames on the packet socket, each
/// gathered from its head and packet, each to its interface. Returns how many the
/// kernel took, in order.
pub fn send_ll_many(fd: &OwnedFd, frames: &[LlFrame<'_>]) -> io::Result<usize> {
    let n = frames.len().min(MMSG_CHUNK);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY (all three): plain C data; all-zero is a valid value.
    let mut names: [libc::sockaddr_ll; MMSG_CHUNK] = unsafe { zeroed() };
    let mut iovs: [[libc::iovec; 2]; MMSG_CHUNK] = unsafe { zeroed() };
    let mut hdrs: [libc::mmsghdr; MMSG_CHUNK] = unsafe { zeroed() };
    for (i, (head, packet, ifindex)) in frames.iter().take(n).enumerate() {
        names[i].sll_family = libc::AF_PACKET as u16;
        // RFC 2464 §3: EtherType 0x86DD.
        names[i].sll_protocol = (libc::ETH_P_IPV6 as u16).to_be();
        names[i].sll_ifindex = i32::try_from(*ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        iovs[i] = [
            libc::iovec {
                iov_base: head.as_ptr().cast_mut().cast(),
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: packet.as_ptr().cast_mut().cast(),
                iov_len: packet.len(),
            },
        ];
        let m = &mut hdrs[i].msg_hdr;
        m.msg_name = (&raw mut names[i]).cast();
        m.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        m.msg_iov = iovs[i].as_mut_ptr();
        m.msg_iovlen = 2;
    }
    // SAFETY: the first `n` headers point at live locals (`names`, `iovs`) and, through
    // the iovecs, at the frames' buffers, borrowed for the call; the kernel only reads
    // those (the mutable pointers are never written through) and writes only `msg_len`.
    unsafe { send_mmsg(fd, &mut hdrs, n) }
}
