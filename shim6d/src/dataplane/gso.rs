//! Link-layer egress. A TCP super-segment read from an offload TUN whose packets all
//! pass the core unchanged (a context on its ULID pair, or no context) leaves as one
//! `AF_PACKET` frame with its `virtio_net_hdr`, so the kernel below carries it as one
//! 64 KB buffer (segmented by the device, or not at all over veths), as it does for
//! a socket's own traffic, instead of ≈ 45 packets each routed, filtered and
//! delivered on its own. Every other packet of a batch (rewritten, or single) leaves
//! through the same socket with `sendmmsg`, which spares it the IPv6 output path's
//! per-packet route lookup (with policy rules) and netfilter hooks.
//!
//! A packet socket bypasses the IPv6 output path, so the daemon does what that path
//! would: the route (`RTM_GETROUTE` for the packet's source, destination and the
//! daemon's firewall mark: the same lookup the raw socket's packets get) gives the
//! interface and next hop, the neighbour table (`RTM_GETNEIGH`) the next hop's
//! link-layer address. Both answers are cached for [`CACHE_TTL`]. Anything else falls
//! back to the raw socket, packet by packet: no route, a route that is not unicast, a
//! next hop without a usable neighbour entry (`INCOMPLETE`, `FAILED`), a link without
//! 6-octet addresses, a send error. A neighbour entry the kernel has not confirmed lately
//! (`STALE`, `DELAY`, `PROBE`) is used, but one packet per cache period to it takes the
//! raw socket, so that the kernel's neighbour unreachability detection (RFC 4861 §7.3)
//! sees traffic and confirms or replaces the entry: the daemon's own packets on the
//! packet socket would never trigger it.
//!
//! What the packet socket skips: the output and postrouting netfilter hooks of the
//! daemon's own namespace (the daemon's raw-socket packets carry its mark, which its
//! own nftables tables skip anyway) and the IPv6 output MTU check (every segment is at
//! most the TUN MTU, which is below the links' MTU).

use std::{
    collections::HashMap,
    io,
    net::Ipv6Addr,
    os::fd::OwnedFd,
    time::{Duration, Instant},
};

use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use crate::sys;

/// How long a resolved (or failed) next hop is used before asking the kernel again.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Most cached (source, destination) pairs; the cache is emptied when it is full.
const CACHE_MAX: usize = 4096;

/// `linux/rtnetlink.h` and `linux/neighbour.h` numbers.
mod nl {
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLM_F_REQUEST: u16 = 1;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_GETROUTE: u16 = 26;
    pub const RTM_NEWNEIGH: u16 = 28;
    pub const RTM_NEWLINK: u16 = 16;
    pub const RTM_GETLINK: u16 = 18;
    pub const IFLA_ADDRESS: u16 = 1;
    pub const ARPHRD_ETHER: u16 = 1;
    pub const RTM_GETNEIGH: u16 = 30;
    pub const RTA_DST: u16 = 1;
    pub const RTA_SRC: u16 = 2;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_GATEWAY: u16 = 5;
    pub const RTA_MARK: u16 = 16;
    pub const NDA_DST: u16 = 1;
    pub const NDA_LLADDR: u16 = 2;
    pub const RTN_UNICAST: u8 = 1;
    pub const NUD_REACHABLE: u16 = 0x02;
    pub const NUD_PERMANENT: u16 = 0x80;
    pub const NUD_STALE: u16 = 0x04;
    pub const NUD_DELAY: u16 = 0x08;
    pub const NUD_PROBE: u16 = 0x10;
    pub const AF_INET6: u8 = 10;
}

/// Where a packet from `src` to `dst` leaves: interface, next hop's and own MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Outgoing interface index.
    pub ifindex: u32,
    /// Link-layer (Ethernet) address of the next hop.
    pub mac: [u8; 6],
    /// The interface's own address.
    pub own: [u8; 6],
    /// The neighbour entry is confirmed (`REACHABLE`, `PERMANENT`); otherwise (`STALE`,
    /// `DELAY`, `PROBE`) its address is usable, but the kernel must see traffic to it
    /// to confirm it (RFC 4861 §7.3.3): one packet per cache period takes the raw
    /// socket ([`GsoSend::send_packets`]).
    pub confirmed: bool,
}

/// Length of an Ethernet header (RFC 2464 §3: destination, source, `EtherType`).
const ETH_HLEN: usize = 14;
/// What goes in front of an IPv6 packet on the packet socket.
const HEAD_LEN: usize = tun_rs::VIRTIO_NET_HDR_LEN + ETH_HLEN;

#[derive(Debug)]
struct Cached {
    hop: Option<NextHop>,
    until: Instant,
    /// An unconfirmed neighbour still owed its packet through the raw socket.
    nudge: bool,
}

/// The packet socket, the rtnetlink socket and the next-hop cache.
#[derive(Debug)]
pub struct GsoSend {
    fd: OwnedFd,
    nl: Socket,
    seq: u32,
    mark: u32,
    cache: HashMap<(Ipv6Addr, Ipv6Addr), Cached>,
    buf: Vec<u8>,
    /// Super-segments sent whole.
    pub frames: u64,
    /// Single packets sent through the packet socket.
    pub packets: u64,
}

impl GsoSend {
    /// Opens both sockets (needs `CAP_NET_RAW`); `mark` is the daemon's firewall mark,
    /// used in the route lookups so they match what the raw socket's packets get.
    pub fn open(mark: u32) -> io::Result<Self> {
        let fd = sys::packet_vnet()?;
        sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_MARK, mark as i32)?;
        let mut nl = Socket::new(NETLINK_ROUTE)?;
        nl.bind_auto()?;
        nl.set_non_blocking(true)?;
        Ok(Self {
            fd,
            nl,
            seq: 0,
            mark,
            cache: HashMap::new(),
            buf: Vec::with_capacity(8192),
            frames: 0,
            packets: 0,
        })
    }

    /// Sends `frame` (`virtio_net_hdr` and an IPv6 super-segment from `src` to `dst`);
    /// `false` when it did not leave (no usable next hop, or the send failed) and the
    /// caller must send its packets another way.
    pub fn send(&mut self, frame: &[u8], src: Ipv6Addr, dst: Ipv6Addr, now: Instant) -> bool {
        let Some(hop) = self.next_hop(src, dst, now) else {
            return false;
        };
        // An unconfirmed neighbour is owed a packet through the raw socket: the
        // segments go one by one this time (`send_packets` sends one of them raw).
        if self.nudge_pending(src, dst) {
            return false;
        }
        let Some(head) = frame_head(frame, &hop) else {
            return false;
        };
        let packet = &frame[tun_rs::VIRTIO_NET_HDR_LEN..];
        match sys::send_ll(&self.fd, &head, packet, hop.ifindex) {
            Ok(n) if n == head.len() + packet.len() => {
                self.frames += 1;
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(error = %e, %dst, "GSO send failed; raw socket instead");
                // Ask again next time: the interface may be gone.
                self.cache.remove(&(src, dst));
                false
            }
        }
    }

    /// Sends the complete packets `packets` (checksums done; `virtio_net_hdr` of a
    /// single packet) through the packet socket where a next hop resolves; returns the
    /// indices of those that did not leave this way, in order, for the raw socket.
    pub fn send_packets(&mut self, packets: &[&[u8]], now: Instant) -> Vec<usize> {
        let mut rest = Vec::new();
        let mut heads: Vec<[u8; HEAD_LEN]> = Vec::with_capacity(packets.len());
        let mut ll: Vec<(usize, u32)> = Vec::with_capacity(packets.len());
        for (i, p) in packets.iter().enumerate() {
            let hop = match (p.get(8..24), p.get(24..40)) {
                (Some(s), Some(d)) => {
                    let (Ok(s), Ok(d)) = (<[u8; 16]>::try_from(s), <[u8; 16]>::try_from(d)) else {
                        rest.push(i);
                        continue;
                    };
                    let (s, d) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
                    self.next_hop(s, d, now).filter(|_| !self.take_nudge(s, d))
                }
                _ => None,
            };
            match hop {
                Some(h) => {
                    // A zero virtio header: one packet, checksums complete.
                    let mut head = [0u8; HEAD_LEN];
                    eth_header(&mut head[tun_rs::VIRTIO_NET_HDR_LEN..], &h);
                    heads.push(head);
                    ll.push((i, h.ifindex));
                }
                None => rest.push(i),
            }
        }
        let frames: Vec<sys::LlFrame<'_>> = ll
            .iter()
            .zip(&heads)
            .map(|(&(i, ifindex), head)| (&head[..], packets[i], ifindex))
            .collect();
        let mut next = 0;
        while next < frames.len() {
            match sys::send_ll_many(&self.fd, &frames[next..]) {
                Ok(n) if n > 0 => {
                    self.packets += n as u64;
                    next += n;
                }
                // Refused (too big for the link, interface gone, buffer full): this one
                // and what follows take the raw socket, and next hops are asked again.
                Ok(_) => break,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        tracing::debug!(error = %e, "packet socket send failed; raw socket instead");
                        self.cache.clear();
                    }
                    break;
                }
            }
        }
        rest.extend(ll[next..].iter().map(|&(i, _)| i));
        rest.sort_unstable();
        rest
    }

    /// Whether the next hop of (src, dst) is owed a raw-socket packet.
    fn nudge_pending(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.cache.get(&(src, dst)).is_some_and(|c| c.nudge)
    }

    /// [`GsoSend::nudge_pending`], and clears it: the caller sends this packet raw.
    fn take_nudge(&mut self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.cache
            .get_mut(&(src, dst))
            .is_some_and(|c| std::mem::take(&mut c.nudge))
    }

    fn next_hop(&mut self, src: Ipv6Addr, dst: Ipv6Addr, now: Instant) -> Option<NextHop> {
        if let Some(c) = self.cache.get(&(src, dst))
            && now < c.until
        {
            return c.hop;
        }
        let hop = self.resolve(src, dst).unwrap_or_else(|e| {
            tracing::debug!(error = %e, %src, %dst, "next-hop lookup failed");
            None
        });
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(
            (src, dst),
            Cached {
                hop,
                until: now + CACHE_TTL,
                nudge: hop.is_some_and(|h| !h.confirmed),
            },
        );
        hop
    }

    /// The kernel's route for (src, dst, mark), then its neighbour entry for the next
    /// hop. `Ok(None)`: no usable next hop.
    fn resolve(&mut self, src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<Option<NextHop>> {
        let req = route_request(self.next_seq(), src, dst, self.mark);
        let Some(route) = self.exchange(&req, nl::RTM_NEWROUTE)? else {
            return Ok(None);
        };
        let Some((ifindex, gateway)) = parse_route(&route) else {
            return Ok(None);
        };
        // On-link destinations have no gateway: the neighbour is the destination.
        let neighbour = gateway.unwrap_or(dst);
        let req = neigh_request(self.next_seq(), ifindex, neighbour);
        let Some(neigh) = self.exchange(&req, nl::RTM_NEWNEIGH)? else {
            return Ok(None);
        };
        let Some((mac, confirmed)) = parse_neigh(&neigh) else {
            return Ok(None);
        };
        let req = link_request(self.next_seq(), ifindex);
        let Some(link) = self.exchange(&req, nl::RTM_NEWLINK)? else {
            return Ok(None);
        };
        Ok(parse_link(&link).map(|own| NextHop {
            ifindex,
            mac,
            own,
            confirmed,
        }))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request and reads its answer, which the kernel queues while handling
    /// the request: nothing to read at once counts as no answer. `Ok(None)`: the kernel
    /// answered with an error (no route, no entry).
    fn exchange(&mut self, req: &[u8], want: u16) -> io::Result<Option<Vec<u8>>> {
        // Drop leftovers of an earlier exchange.
        loop {
            self.buf.clear();
            match self.nl.recv(&mut self.buf, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.nl.send(req, 0)?;
        let seq = u32::from_ne_bytes([req[8], req[9], req[10], req[11]]);
        self.buf.clear();
        self.nl.recv(&mut self.buf, 0)?;
        let mut rest = &self.buf[..];
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let ty = u16::from_ne_bytes([rest[4], rest[5]]);
            let mseq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
            if len < 16 || len > rest.len() {
                break;
            }
            if mseq == seq {
                if ty == want {
                    return Ok(Some(rest[16..len].to_vec()));
                }
                if ty == nl::NLMSG_ERROR {
                    return Ok(None);
                }
            }
            rest = &rest[align4(len).min(rest.len())..];
        }
        Ok(None)
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(m: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    m.extend_from_slice(&(len as u16).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(data);
    m.resize(align4(m.len()), 0);
}

fn finish(mut m: Vec<u8>) -> Vec<u8> {
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

fn header(ty: u16, seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(96);
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&nl::NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m
}

/// `ip -6 route get DST from SRC mark MARK` (`struct rtmsg` and attributes).
fn route_request(seq: u32, src: Ipv6Addr, dst: Ipv6Addr, mark: u32) -> Vec<u8> {
    let mut m = header(nl::RTM_GETROUTE, seq);
    // rtm_family, dst_len, src_len, tos, table, protocol, scope, type; flags (u32).
    m.extend_from_slice(&[nl::AF_INET6, 128, 128, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(&mut m, nl::RTA_DST, &dst.octets());
    push_attr(&mut m, nl::RTA_SRC, &src.octets());
    push_attr(&mut m, nl::RTA_MARK, &mark.to_ne_bytes());
    finish(m)
}

/// `ip -6 neigh get ADDR dev IFINDEX` (`struct ndmsg` and `NDA_DST`).
fn neigh_request(seq: u32, ifindex: u32, addr: Ipv6Addr) -> Vec<u8> {
    let mut m = header(nl::RTM_GETNEIGH, seq);
    // ndm_family, pad, pad (u16), ifindex (i32), state (u16), flags, type.
    m.extend_from_slice(&[nl::AF_INET6, 0, 0, 0]);
    m.extend_from_slice(&ifindex.to_ne_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    push_attr(&mut m, nl::NDA_DST, &addr.octets());
    finish(m)
}

/// `ip link show IFINDEX` (`struct ifinfomsg`).
fn link_request(seq: u32, ifindex: u32) -> Vec<u8> {
    let mut m = header(nl::RTM_GETLINK, seq);
    // ifi_family, pad, type (u16), index (i32), flags (u32), change (u32).
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&ifindex.to_ne_bytes());
    m.extend_from_slice(&[0; 8]);
    finish(m)
}

/// The Ethernet address of a link answer (`struct ifinfomsg`, 16 octets, then
/// attributes); `None` unless the link is Ethernet.
fn parse_link(body: &[u8]) -> Option<[u8; 6]> {
    if body.len() < 16 || u16::from_ne_bytes([body[2], body[3]]) != nl::ARPHRD_ETHER {
        return None;
    }
    attrs(body, 16)
        .find(|(ty, _)| *ty == nl::IFLA_ADDRESS)
        .and_then(|(_, d)| <[u8; 6]>::try_from(d).ok())
}

/// What goes in front of the IPv6 packet of `frame` (`virtio_net_hdr` and packet, as
/// read from the TUN) on the packet socket: the virtio header with its offsets moved
/// past the Ethernet header, then that header.
fn frame_head(frame: &[u8], hop: &NextHop) -> Option<[u8; HEAD_LEN]> {
    let vnet = frame.get(..tun_rs::VIRTIO_NET_HDR_LEN)?;
    let mut hdr = tun_rs::VirtioNetHdr::decode(vnet).ok()?;
    // On a SOCK_RAW packet socket the offsets count from the link-layer header.
    hdr.csum_start = hdr.csum_start.checked_add(ETH_HLEN as u16)?;
    hdr.hdr_len = hdr.hdr_len.checked_add(ETH_HLEN as u16)?;
    let mut head = [0u8; HEAD_LEN];
    hdr.encode(&mut head[..tun_rs::VIRTIO_NET_HDR_LEN]).ok()?;
    eth_header(&mut head[tun_rs::VIRTIO_NET_HDR_LEN..], hop);
    Some(head)
}

/// The Ethernet header towards `hop` (RFC 2464 §3) into `eth` (14 octets).
fn eth_header(eth: &mut [u8], hop: &NextHop) {
    eth[..6].copy_from_slice(&hop.mac);
    eth[6..12].copy_from_slice(&hop.own);
    eth[12..14].copy_from_slice(&(libc::ETH_P_IPV6 as u16).to_be_bytes());
}

/// Attributes after a fixed header of `fixed` octets: (type, data).
fn attrs(body: &[u8], fixed: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = body.get(fixed..).unwrap_or_default();
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        let data = &rest[4..len];
        rest = &rest[align4(len).min(rest.len())..];
        Some((ty, data))
    })
}

/// Interface and gateway of a unicast route answer (`struct rtmsg`, 12 octets, then
/// attributes); `None` for other route types or without an interface.
fn parse_route(body: &[u8]) -> Option<(u32, Option<Ipv6Addr>)> {
    if body.len() < 12 || body[7] != nl::RTN_UNICAST {
        return None;
    }
    let mut oif = None;
    let mut gw = None;
    for (ty, data) in attrs(body, 12) {
        match ty {
            nl::RTA_OIF if data.len() == 4 => {
                oif = Some(u32::from_ne_bytes([data[0], data[1], data[2], data[3]]));
            }
            nl::RTA_GATEWAY if data.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(data);
                gw = Some(Ipv6Addr::from(a));
            }
            _ => {}
        }
    }
    Some((oif?, gw))
}

/// The link-layer address of a neighbour answer (`struct ndmsg`, 12 octets, then
/// attributes), 6 octets long, and whether the entry is confirmed (`REACHABLE`,
/// `PERMANENT`). `STALE`, `DELAY` and `PROBE` entries hold a usable address the kernel
/// has not confirmed lately (RFC 4861 §7.3.2); `INCOMPLETE`, `FAILED` and `NONE` give
/// `None`.
fn parse_neigh(body: &[u8]) -> Option<([u8; 6], bool)> {
    if body.len() < 12 {
        return None;
    }
    let state = u16::from_ne_bytes([body[8], body[9]]);
    let confirmed = state & (nl::NUD_REACHABLE | nl::NUD_PERMANENT) != 0;
    if !confirmed && state & (nl::NUD_STALE | nl::NUD_DELAY | nl::NUD_PROBE) == 0 {
        return None;
    }
    attrs(body, 12)
        .find(|(ty, _)| *ty == nl::NDA_LLADDR)
        .and_then(|(_, d)| <[u8; 6]>::try_from(d).ok())
        .map(|mac| (mac, confirmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa1, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb1, 0, 0, 0, 0, 2);

    #[test]
    fn route_request_layout() {
        let m = route_request(7, A, B, 0x51);
        assert_eq!(m.len(), 16 + 12 + 20 + 20 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), nl::RTM_GETROUTE);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        let a: Vec<(u16, &[u8])> = attrs(&m[16..], 12).collect();
        assert_eq!(a[0], (nl::RTA_DST, &B.octets()[..]));
        assert_eq!(a[1], (nl::RTA_SRC, &A.octets()[..]));
        assert_eq!(a[2], (nl::RTA_MARK, &0x51u32.to_ne_bytes()[..]));
    }

    #[test]
    fn route_answer_gives_interface_and_gateway() {
        let mut body = vec![
            nl::AF_INET6,
            128,
            0,
            0,
            254,
            0,
            0,
            nl::RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        push_attr(&mut body, nl::RTA_OIF, &3u32.to_ne_bytes());
        push_attr(&mut body, nl::RTA_GATEWAY, &A.octets());
        assert_eq!(parse_route(&body), Some((3, Some(A))));
        // Without a gateway: on-link.
        let mut onlink = body[..12].to_vec();
        push_attr(&mut onlink, nl::RTA_OIF, &3u32.to_ne_bytes());
        assert_eq!(parse_route(&onlink), Some((3, None)));
        // Unreachable or blackhole routes are not for the packet socket.
        body[7] = 7;
        assert_eq!(parse_route(&body), None);
        assert_eq!(parse_route(&body[..5]), None);
    }

    #[test]
    fn frame_head_moves_offsets_past_the_ethernet_header() {
        let hdr = tun_rs::VirtioNetHdr {
            flags: 1,
            gso_type: tun_rs::VIRTIO_NET_HDR_GSO_TCPV6,
            hdr_len: 60,
            gso_size: 1420,
            csum_start: 40,
            csum_offset: 16,
        };
        let mut frame = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN + 100];
        hdr.encode(&mut frame).unwrap();
        let hop = NextHop {
            ifindex: 3,
            mac: [2, 0, 0, 0, 0, 1],
            own: [2, 0, 0, 0, 0, 2],
            confirmed: true,
        };
        let head = frame_head(&frame, &hop).unwrap();
        let moved = tun_rs::VirtioNetHdr::decode(&head).unwrap();
        assert_eq!((moved.csum_start, moved.hdr_len), (54, 74));
        assert_eq!((moved.gso_size, moved.csum_offset), (1420, 16));
        let eth = &head[tun_rs::VIRTIO_NET_HDR_LEN..];
        assert_eq!(eth[..6], hop.mac);
        assert_eq!(eth[6..12], hop.own);
        assert_eq!(eth[12..], [0x86, 0xdd]);
        assert!(frame_head(&frame[..4], &hop).is_none());
    }

    #[test]
    fn link_answer_gives_an_ethernet_address() {
        let mut body = vec![0, 0];
        body.extend_from_slice(&nl::ARPHRD_ETHER.to_ne_bytes());
        body.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        push_attr(&mut body, 3, b"a0\0");
        push_attr(&mut body, nl::IFLA_ADDRESS, &[2, 0, 0, 0, 0, 7]);
        assert_eq!(parse_link(&body), Some([2, 0, 0, 0, 0, 7]));
        // A TUN (ARPHRD_NONE, 0xfffe) has no link-layer header to build.
        body[2..4].copy_from_slice(&0xfffeu16.to_ne_bytes());
        assert_eq!(parse_link(&body), None);
        assert_eq!(link_request(1, 3).len(), 32);
    }

    #[test]
    fn only_confirmed_neighbours_with_ethernet_addresses() {
        let mac = [2, 0, 0, 0, 0, 9];
        let entry = |state: u16, ll: &[u8]| {
            let mut b = vec![nl::AF_INET6, 0, 0, 0, 3, 0, 0, 0];
            b.extend_from_slice(&state.to_ne_bytes());
            b.extend_from_slice(&[0, 0]);
            push_attr(&mut b, nl::NDA_DST, &B.octets());
            push_attr(&mut b, nl::NDA_LLADDR, ll);
            b
        };
        assert_eq!(
            parse_neigh(&entry(nl::NUD_REACHABLE, &mac)),
            Some((mac, true))
        );
        assert_eq!(
            parse_neigh(&entry(nl::NUD_PERMANENT, &mac)),
            Some((mac, true))
        );
        // STALE, DELAY, PROBE: usable, not confirmed lately.
        for st in [nl::NUD_STALE, nl::NUD_DELAY, nl::NUD_PROBE] {
            assert_eq!(parse_neigh(&entry(st, &mac)), Some((mac, false)), "{st:#x}");
        }
        // INCOMPLETE (0x01), FAILED (0x20), NONE (0): no address to use.
        for st in [0x01, 0x20, 0] {
            assert_eq!(parse_neigh(&entry(st, &mac)), None, "{st:#x}");
        }
        assert_eq!(parse_neigh(&entry(nl::NUD_REACHABLE, &[1, 2, 3, 4])), None);
        let mut truncated = entry(nl::NUD_REACHABLE, &mac);
        truncated.truncate(20);
        assert_eq!(parse_neigh(&truncated), None);
    }
}
