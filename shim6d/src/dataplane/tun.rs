//! The TUN shim device: protected flows are routed into it, the daemon reads their
//! packets (with the ULIDs) and writes restored inbound packets back.
//!
//! It is created by `tun-rs` (no packet-information header, one queue) and configured
//! over rtnetlink: `addrgenmode none` before it goes up, so the kernel gives it no
//! link-local address and sends no router solicitations through it (architecture.md,
//! "Verified on the CI kernel"), then the MTU, then up. The device is not persistent:
//! closing its descriptor (the daemon exiting, even by a crash) deletes it, and the kernel
//! deletes every route through it with it.

use std::io;

use tun_rs::{GROTable, VIRTIO_NET_HDR_LEN, VirtioNetHdr};
use xfrm_sys::{AddrGenMode, Handle};

use super::{Batch, Error, PacketBuf};

/// Packets a batch must hold to take any TCP super-segment the kernel hands an offload
/// TUN (64 KB at the smallest MSS a 1280-octet MTU gives is 53 segments; tun-rs's
/// recommendation, 128, leaves room for small MSS values).
pub const OFFLOAD_BATCH: usize = tun_rs::IDEAL_BATCH_SIZE;

/// Largest read from an offload TUN: the virtio header and a 64 KB super-segment.
pub const GSO_READ_LEN: usize = VIRTIO_NET_HDR_LEN + 65535;

/// Capacity of a write buffer: a super-segment and twice the virtio header (what tun-rs's
/// coalescing requires of the buffer it appends to).
const GRO_BUF_CAPACITY: usize = 2 * VIRTIO_NET_HDR_LEN + 65535;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM` (`linux/virtio_net.h`): the transport checksum is partial
/// (pseudo-header only) and must be completed from `csum_start` at `csum_offset`.
const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`: a single packet.
const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_ECN`: a flag on the GSO type (TCP with ECN).
const GSO_ECN: u8 = 0x80;

/// The open TUN device.
pub struct Tun {
    dev: tun_rs::AsyncDevice,
    name: String,
    index: u32,
    mtu: u32,
    offload: bool,
    /// Write-side state of an offload device: the coalescing table and the buffers the
    /// packets are copied into behind a virtio header (kept across batches).
    tx: tokio::sync::Mutex<TxState>,
}

#[derive(Default)]
struct TxState {
    gro: GROTable,
    bufs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("mtu", &self.mtu)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl Tun {
    /// Creates `name` with `mtu`, `addrgenmode none`, and sets it up, without offload.
    /// Needs `CAP_NET_ADMIN` and `/dev/net/tun`.
    pub async fn create(handle: &Handle, name: &str, mtu: u32) -> Result<Self, Error> {
        Self::create_with(handle, name, mtu, false).await
    }

    /// As [`Tun::create`], with `IFF_VNET_HDR` and segmentation offloads when `offload`
    /// (module docs, "Offload").
    pub async fn create_with(
        handle: &Handle,
        name: &str,
        mtu: u32,
        offload: bool,
    ) -> Result<Self, Error> {
        let dev = tun_rs::DeviceBuilder::new()
            .name(name)
            .packet_information(false)
            .offload(offload)
            // tun-rs sets devices up by default; ours must get `addrgenmode none` first,
            // or the kernel gives it a link-local address (random mode, since a TUN has
            // no hardware address) and sends a router solicitation through it.
            .enable(false)
            .build_async()
            .map_err(|source| Error::TunOpen {
                name: name.to_owned(),
                source,
            })?;
        let netlink = |op: &'static str| {
            let name = name.to_owned();
            move |source| Error::TunConfigure { name, op, source }
        };
        let link = handle
            .link_by_name(name)
            .await
            .map_err(netlink("look up the device"))?;
        handle
            .set_addr_gen_mode(link.index, AddrGenMode::None)
            .await
            .map_err(netlink("set addrgenmode none"))?;
        // Belt and braces: no router solicitations from the device even if an address
        // appears on it later. Best effort: without /proc/sys (odd containers) a stray
        // solicitation is dropped by the data plane (multicast destination).
        let rs = format!("/proc/sys/net/ipv6/conf/{name}/router_solicitations");
        if let Err(e) = std::fs::write(&rs, "0") {
            tracing::debug!(path = %rs, error = %e, "could not turn router solicitations off");
        }
        handle
            .set_mtu(link.index, mtu)
            .await
            .map_err(netlink("set the MTU"))?;
        handle
            .set_link_up(link.index)
            .await
            .map_err(netlink("set it up"))?;
        Ok(Self {
            dev,
            name: name.to_owned(),
            index: link.index,
            mtu,
            offload,
            tx: tokio::sync::Mutex::new(TxState::default()),
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index (for routes into the device).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The MTU it was given.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Whether it was opened with offload (virtio headers, super-segments).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// How many packets an outbound batch should hold: `configured`, or at least
    /// [`OFFLOAD_BATCH`] with offload (one super-segment must fit).
    pub fn batch_capacity(&self, configured: usize) -> usize {
        if self.offload {
            configured.max(OFFLOAD_BATCH)
        } else {
            configured
        }
    }

    /// Waits for at least one packet, then reads as many as are queued, up to the batch's
    /// capacity. Each lands at [`PacketBuf::HEADROOM`], leaving room for the payload
    /// extension header (RFC 5533 §5.1) to be inserted by moving the IPv6 header forward.
    ///
    /// With offload, a super-segment is split into the batch; one that does not fit in
    /// what is left waits in the batch for the next call. Super-segments that cannot be
    /// split are counted in [`Batch::bad_gso`] and dropped. Cancel safe: the only await is
    /// the first read, before anything was taken from the device.
    pub async fn recv_batch(&self, batch: &mut Batch) -> io::Result<usize> {
        if self.offload {
            return self.recv_offload(batch).await;
        }
        batch.clear();
        let first = &mut batch.bufs[0];
        let n = self.dev.recv(first.tun_space()).await?;
        first.set_from_tun(n);
        let mut count = 1;
        while count < batch.capacity() {
            let buf = &mut batch.bufs[count];
            match self.dev.try_recv(buf.tun_space()) {
                Ok(n) => {
                    buf.set_from_tun(n);
                    count += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        batch.len = count;
        Ok(count)
    }

    async fn recv_offload(&self, batch: &mut Batch) -> io::Result<usize> {
        batch.clear();
        loop {
            if batch.pending == 0 {
                // (A spare buffer may have been swapped in for a kept super-segment.)
                if batch.gso.len() < GSO_READ_LEN {
                    batch.gso.resize(GSO_READ_LEN, 0);
                }
                let read = if batch.len == 0 {
                    self.dev.recv(&mut batch.gso).await
                } else {
                    self.dev.try_recv(&mut batch.gso)
                };
                match read {
                    Ok(n) => batch.pending = n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && batch.len > 0 => break,
                    Err(e) => return Err(e),
                }
            }
            match split_into(batch) {
                Split::Done => {}
                Split::NoRoom => break,
                Split::Bad(why) => {
                    batch.bad_gso += 1;
                    tracing::debug!(why, "TUN super-segment dropped");
                }
            }
            if batch.len == batch.capacity() {
                break;
            }
        }
        Ok(batch.len)
    }

    /// Writes packets into the device; returns how many the kernel took and the last
    /// error (with offload, packets of one flow are coalesced first, and an error cannot
    /// be told apart from the others of the batch: all count as failed then).
    pub async fn send_batch<'a>(
        &self,
        packets: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> (usize, Option<io::Error>) {
        let n = packets.len();
        if n == 0 {
            return (0, None);
        }
        if !self.offload {
            let mut ok = 0;
            let mut last = None;
            for p in packets {
                match self.send(p).await {
                    Ok(()) => ok += 1,
                    Err(e) => last = Some(e),
                }
            }
            return (ok, last);
        }
        let mut tx = self.tx.lock().await;
        let TxState { gro, bufs } = &mut *tx;
        if bufs.len() < n {
            bufs.resize_with(n, Vec::new);
        }
        for (b, p) in bufs.iter_mut().zip(packets) {
            b.clear();
            // Coalescing appends to the flow's first buffer in place, and only where the
            // capacity allows (tun-rs checks it): room for a whole super-segment. Pages
            // are touched only as far as written.
            b.reserve_exact(GRO_BUF_CAPACITY);
            // A zero virtio header (GSO_NONE, no flags): the packet's checksums are
            // complete; send_multiple rewrites it for the packets it coalesces.
            b.resize(VIRTIO_NET_HDR_LEN, 0);
            b.extend_from_slice(p);
        }
        match self
            .dev
            .send_multiple(gro, &mut bufs[..n], VIRTIO_NET_HDR_LEN)
            .await
        {
            Ok(_) => (n, None),
            Err(e) => (0, Some(e)),
        }
    }

    /// Writes one IPv6 packet into the device: the kernel delivers it as if it had
    /// arrived on the TUN.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = if self.offload {
            let mut framed = Vec::with_capacity(VIRTIO_NET_HDR_LEN + packet.len());
            framed.resize(VIRTIO_NET_HDR_LEN, 0);
            framed.extend_from_slice(packet);
            self.dev
                .send(&framed)
                .await?
                .saturating_sub(VIRTIO_NET_HDR_LEN)
        } else {
            self.dev.send(packet).await?
        };
        if n != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("TUN took {n} of {} bytes", packet.len()),
            ));
        }
        Ok(())
    }
}

/// What became of the super-segment pending in a batch.
#[derive(Debug, PartialEq, Eq)]
enum Split {
    /// Split into the batch (or copied, for a single packet).
    Done,
    /// More segments than the batch has room left: it stays pending.
    NoRoom,
    /// Malformed: dropped.
    Bad(&'static str),
}

/// Splits the read pending in `batch.gso[..batch.pending]` (virtio header, then the
/// packet) into the batch's free buffers.
fn split_into(batch: &mut Batch) -> Split {
    let len = batch.pending;
    let r = split_read(
        &mut batch.gso[..len],
        &mut batch.bufs[batch.len..],
        &mut batch.sizes[batch.len..],
    );
    match r {
        Ok((k, gso)) => {
            for i in batch.len..batch.len + k {
                let n = batch.sizes[i];
                batch.bufs[i].set_from_tun(n);
            }
            if gso {
                // Keep the read for sending whole (`super::gso`): swap in a spare buffer.
                let slot = batch.groups.len();
                if batch.frames.len() <= slot {
                    batch.frames.push(Vec::new());
                }
                std::mem::swap(&mut batch.frames[slot], &mut batch.gso);
                batch.groups.push(super::Group {
                    first: batch.len,
                    count: k,
                    len,
                });
            }
            batch.len += k;
            batch.pending = 0;
            Split::Done
        }
        Err(Split::NoRoom) if batch.len > 0 => Split::NoRoom,
        Err(Split::NoRoom) => {
            batch.pending = 0;
            Split::Bad("more segments than a batch holds")
        }
        Err(other) => {
            batch.pending = 0;
            other
        }
    }
}

/// Splits one offload read (`virtio_net_hdr` then an IPv6 packet or super-segment) into
/// `bufs` at [`PacketBuf::HEADROOM`], each packet with complete checksums; `sizes` gets
/// their lengths. Returns how many, and whether it was a super-segment (its header's
/// `hdr_len` is then corrected in `read`, for sending it whole).
fn split_read(
    read: &mut [u8],
    bufs: &mut [PacketBuf],
    sizes: &mut [usize],
) -> Result<(usize, bool), Split> {
    if read.len() <= VIRTIO_NET_HDR_LEN {
        return Err(Split::Bad("read shorter than the virtio header"));
    }
    let mut hdr = VirtioNetHdr::decode(&read[..VIRTIO_NET_HDR_LEN])
        .map_err(|_| Split::Bad("virtio header"))?;
    let input = &mut read[VIRTIO_NET_HDR_LEN..];
    let Some(first) = bufs.first_mut() else {
        return Err(Split::NoRoom);
    };
    if hdr.gso_type == GSO_NONE {
        if hdr.flags & F_NEEDS_CSUM != 0
            && !complete_checksum(
                input,
                usize::from(hdr.csum_start),
                usize::from(hdr.csum_offset),
            )
        {
            return Err(Split::Bad("checksum position outside the packet"));
        }
        let space = first.tun_space();
        if input.len() > space.len() {
            return Err(Split::Bad("packet larger than the TUN MTU"));
        }
        space[..input.len()].copy_from_slice(input);
        sizes[0] = input.len();
        return Ok((1, false));
    }
    // A super-segment (RFC 8200 §3 header, then TCP or UDP): IPv6 only here.
    if input.first().map(|b| b >> 4) != Some(6) {
        return Err(Split::Bad("super-segment is not IPv6"));
    }
    if hdr.gso_size == 0 {
        return Err(Split::Bad("GSO size 0"));
    }
    let start = usize::from(hdr.csum_start);
    // The transport header's length from the packet itself, not from hdr_len (which the
    // kernel may set to the whole first packet): TCP's data offset, or UDP's 8.
    let l4 = if hdr.gso_type & !GSO_ECN == tun_rs::VIRTIO_NET_HDR_GSO_UDP_L4 {
        // RFC 768: 8 octets.
        8
    } else {
        let Some(&off) = input.get(start + 12) else {
            return Err(Split::Bad("TCP header truncated"));
        };
        // RFC 9293 §3.1: Data Offset in 32-bit words, 5..=15.
        let l4 = usize::from(off >> 4) * 4;
        if l4 < 20 {
            return Err(Split::Bad("TCP data offset below 5"));
        }
        l4
    };
    let hdr_len = start + l4;
    if hdr_len >= input.len() {
        return Err(Split::Bad("transport header"));
    }
    hdr.hdr_len = u16::try_from(hdr_len).map_err(|_| Split::Bad("header length"))?;
    let segments = (input.len() - hdr_len).div_ceil(usize::from(hdr.gso_size));
    if segments > bufs.len() {
        return Err(Split::NoRoom);
    }
    let n = tun_rs::gso_split(input, hdr, bufs, sizes, PacketBuf::HEADROOM, true)
        .map_err(|_| Split::Bad("segmentation"))?;
    // The kernel may have set hdr_len to its whole linear part: give the real one.
    hdr.encode(&mut read[..VIRTIO_NET_HDR_LEN])
        .map_err(|_| Split::Bad("virtio header"))?;
    Ok((n, true))
}

/// Completes a partial transport checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): the field at
/// `start + offset` holds the pseudo-header sum (RFC 8200 §8.1); the checksum over
/// `packet[start..]` is folded into it and written back. A UDP checksum that comes out
/// zero is written as `0xffff` (RFC 8200 §8.1: zero is not allowed for UDP over IPv6;
/// UDP's checksum sits at offset 6, RFC 768). `false`, with nothing changed, when the
/// field is not inside the packet.
pub fn complete_checksum(packet: &mut [u8], start: usize, offset: usize) -> bool {
    let Some(at) = start.checked_add(offset) else {
        return false;
    };
    if at.checked_add(2).is_none_or(|end| end > packet.len()) {
        return false;
    }
    let initial = u16::from_be_bytes([packet[at], packet[at + 1]]);
    packet[at] = 0;
    packet[at + 1] = 0;
    let mut c = shim6_wire::checksum::fold(shim6_wire::checksum::sum(
        u32::from(initial),
        &packet[start..],
    ));
    if c == 0 && offset == 6 {
        c = 0xffff;
    }
    packet[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use shim6_wire::checksum::{fold, pseudo_header, sum};

    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa1, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb1, 0, 0, 0, 0, 2);
    /// TCP's protocol number (RFC 9293), UDP's (RFC 768).
    const TCP: u8 = 6;
    const UDP: u8 = 17;

    /// An IPv6 packet (RFC 8200 §3) around `upper` with next header `nh`.
    fn ipv6(nh: u8, upper: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(upper.len() as u16).to_be_bytes());
        p[6] = nh;
        p[7] = 64;
        p[8..24].copy_from_slice(&SRC.octets());
        p[24..40].copy_from_slice(&DST.octets());
        p.extend_from_slice(upper);
        p
    }

    /// Whether the transport checksum of an IPv6 packet verifies (RFC 8200 §8.1).
    fn checksum_ok(p: &[u8]) -> bool {
        let upper = &p[40..];
        fold(sum(
            pseudo_header(&SRC, &DST, p[6], upper.len() as u32),
            upper,
        )) == 0
    }

    /// The partial checksum the kernel leaves with `NEEDS_CSUM`: the pseudo-header sum,
    /// folded, not complemented.
    fn partial(p: &mut [u8], at: usize) {
        let ph = pseudo_header(&SRC, &DST, p[6], (p.len() - 40) as u32);
        let v = !fold(ph);
        p[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    fn virtio(flags: u8, gso_type: u8, gso_size: u16, hdr_len: u16, csum_offset: u16) -> Vec<u8> {
        let h = VirtioNetHdr {
            flags,
            gso_type,
            hdr_len,
            gso_size,
            csum_start: 40,
            csum_offset,
        };
        let mut b = vec![0u8; VIRTIO_NET_HDR_LEN];
        h.encode(&mut b).unwrap();
        b
    }

    fn tcp_segment(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&5201u16.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&65535u16.to_be_bytes());
        t.extend_from_slice(payload);
        t
    }

    #[test]
    fn completes_a_partial_udp_checksum() {
        let mut udp = vec![0u8; 8];
        udp[4..6].copy_from_slice(&13u16.to_be_bytes());
        udp.extend_from_slice(b"hello");
        let mut p = ipv6(UDP, &udp);
        partial(&mut p, 46);
        assert!(!checksum_ok(&p), "a partial checksum does not verify");
        assert!(complete_checksum(&mut p, 40, 6));
        assert!(checksum_ok(&p));
        assert_ne!(&p[46..48], [0, 0], "UDP over IPv6 never carries checksum 0");
    }

    #[test]
    fn checksum_outside_the_packet_is_refused_unchanged() {
        let mut p = ipv6(TCP, &tcp_segment(1, 0x10, b"x"));
        let before = p.clone();
        assert!(!complete_checksum(&mut p, 40, 20));
        assert!(!complete_checksum(&mut p, usize::MAX, 16));
        assert_eq!(p, before);
    }

    #[test]
    fn single_packet_with_needs_csum_is_copied_complete() {
        let mut p = ipv6(TCP, &tcp_segment(7, 0x18, b"abcdef"));
        partial(&mut p, 56);
        let mut read = virtio(F_NEEDS_CSUM, GSO_NONE, 0, 0, 16);
        read.extend_from_slice(&p);
        let mut bufs = vec![PacketBuf::new(1500), PacketBuf::new(1500)];
        let mut sizes = [0; 2];
        assert_eq!(split_read(&mut read, &mut bufs, &mut sizes), Ok((1, false)));
        bufs[0].set_from_tun(sizes[0]);
        assert_eq!(bufs[0].packet().len(), p.len());
        assert!(checksum_ok(bufs[0].packet()));
    }

    #[test]
    fn tcp_super_segment_splits_into_mss_sized_packets() {
        let payload: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let mut p = ipv6(TCP, &tcp_segment(1000, 0x18 | 0x01, &payload)); // PSH|ACK|FIN
        partial(&mut p, 56);
        // hdr_len as the kernel may give it (the whole first packet): not trusted.
        let mut read = virtio(
            F_NEEDS_CSUM,
            tun_rs::VIRTIO_NET_HDR_GSO_TCPV6,
            1000,
            1060,
            16,
        );
        read.extend_from_slice(&p);
        let mut bufs: Vec<PacketBuf> = (0..4).map(|_| PacketBuf::new(1100)).collect();
        let mut sizes = [0; 4];
        assert_eq!(split_read(&mut read, &mut bufs, &mut sizes), Ok((3, true)));
        let fixed = VirtioNetHdr::decode(&read[..VIRTIO_NET_HDR_LEN]).unwrap();
        assert_eq!(fixed.hdr_len, 60, "hdr_len from the TCP header");
        let mut data = Vec::new();
        for (i, b) in bufs.iter_mut().take(3).enumerate() {
            b.set_from_tun(sizes[i]);
            let s = b.packet();
            assert!(crate::dataplane::is_ipv6(s), "segment {i}: payload length");
            assert!(checksum_ok(s), "segment {i}: checksum");
            let seq = u32::from_be_bytes([s[44], s[45], s[46], s[47]]);
            assert_eq!(seq, 1000 + 1000 * i as u32);
            // FIN and PSH only on the last segment.
            assert_eq!(s[53] & 0x09 != 0, i == 2, "segment {i}: flags {:#x}", s[53]);
            data.extend_from_slice(&s[60..]);
        }
        assert_eq!(sizes[..3], [1060, 1060, 560]);
        assert_eq!(data, payload);
    }

    #[test]
    fn super_segment_without_room_waits_in_the_batch() {
        let payload = vec![9u8; 3000];
        let mut p = ipv6(TCP, &tcp_segment(1, 0x10, &payload));
        partial(&mut p, 56);
        let mut read = virtio(F_NEEDS_CSUM, tun_rs::VIRTIO_NET_HDR_GSO_TCPV6, 1000, 60, 16);
        read.extend_from_slice(&p);
        let mut batch = Batch::new(4, 1100);
        batch.gso = read.clone();
        batch.pending = read.len();
        // Two buffers already hold packets: the three segments do not fit.
        batch.len = 2;
        assert_eq!(split_into(&mut batch), Split::NoRoom);
        assert_eq!(batch.pending, read.len(), "kept for the next turn");
        assert_eq!(batch.len, 2);
        // Next turn, an empty batch takes it.
        batch.clear();
        assert_eq!(split_into(&mut batch), Split::Done);
        assert_eq!((batch.len, batch.pending), (3, 0));
        // The read is kept whole for the packet socket.
        assert_eq!(
            batch.groups,
            [crate::dataplane::Group {
                first: 0,
                count: 3,
                len: read.len()
            }]
        );
        assert_eq!(&batch.frames[0][..read.len()], &read[..]);
        // One that could never fit is dropped, not kept forever.
        let mut small = Batch::new(2, 1100);
        small.gso = read.clone();
        small.pending = read.len();
        assert!(matches!(split_into(&mut small), Split::Bad(_)));
        assert_eq!((small.len, small.pending), (0, 0));
    }

    #[test]
    fn malformed_reads_are_refused() {
        let mut bufs = vec![PacketBuf::new(1500)];
        let mut sizes = [0];
        let mut short = vec![0u8; VIRTIO_NET_HDR_LEN];
        assert!(matches!(
            split_read(&mut short, &mut bufs, &mut sizes),
            Err(Split::Bad(_))
        ));
        // A GSO super-segment that is IPv4.
        let mut v4 = virtio(F_NEEDS_CSUM, tun_rs::VIRTIO_NET_HDR_GSO_TCPV6, 1000, 60, 16);
        v4.extend_from_slice(&[0x45; 80]);
        assert!(matches!(
            split_read(&mut v4, &mut bufs, &mut sizes),
            Err(Split::Bad(_))
        ));
        // GSO size 0.
        let mut p = ipv6(TCP, &tcp_segment(1, 0x10, &[1; 100]));
        let mut zero = virtio(F_NEEDS_CSUM, tun_rs::VIRTIO_NET_HDR_GSO_TCPV6, 0, 60, 16);
        zero.extend_from_slice(&p);
        assert!(matches!(
            split_read(&mut zero, &mut bufs, &mut sizes),
            Err(Split::Bad(_))
        ));
        // A TCP data offset below 5 words.
        p[52] = 2 << 4;
        let mut bad = virtio(F_NEEDS_CSUM, tun_rs::VIRTIO_NET_HDR_GSO_TCPV6, 50, 60, 16);
        bad.extend_from_slice(&p);
        assert!(matches!(
            split_read(&mut bad, &mut bufs, &mut sizes),
            Err(Split::Bad(_))
        ));
        // A single packet larger than the buffer.
        let big = ipv6(UDP, &vec![0u8; 1600]);
        let mut r = virtio(0, GSO_NONE, 0, 0, 0);
        r.extend_from_slice(&big);
        assert!(matches!(
            split_read(&mut r, &mut bufs, &mut sizes),
            Err(Split::Bad(_))
        ));
    }

    #[test]
    fn consecutive_tcp_segments_coalesce_for_the_tun() {
        // Three in-order segments of one flow, as the inbound path hands them to
        // send_batch: the GRO table merges them into the first buffer.
        let mut bufs: Vec<Vec<u8>> = (0..3u32)
            .map(|i| {
                let mut p = ipv6(TCP, &tcp_segment(1 + 1000 * i, 0x10, &[i as u8; 1000]));
                let upper_len = (p.len() - 40) as u32;
                let c = fold(sum(pseudo_header(&SRC, &DST, TCP, upper_len), &p[40..]));
                p[56..58].copy_from_slice(&c.to_be_bytes());
                let mut b = Vec::with_capacity(GRO_BUF_CAPACITY);
                b.resize(VIRTIO_NET_HDR_LEN, 0);
                b.extend_from_slice(&p);
                b
            })
            .collect();
        let mut gro = GROTable::new();
        gro.apply_gro(&mut bufs, VIRTIO_NET_HDR_LEN, false).unwrap();
        let hdr = VirtioNetHdr::decode(&bufs[0][..VIRTIO_NET_HDR_LEN]).unwrap();
        assert_eq!(hdr.gso_type, tun_rs::VIRTIO_NET_HDR_GSO_TCPV6);
        assert_eq!(hdr.gso_size, 1000);
        assert_eq!(bufs[0].len(), VIRTIO_NET_HDR_LEN + 60 + 3000);
    }
}
