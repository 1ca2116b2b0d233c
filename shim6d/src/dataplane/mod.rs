//! The data plane: the TUN device, the raw sockets, the routing plumbing, and moving
//! packets between them and the protocol core ([`crate::core`]).
//!
//! ```text
//! outbound: app ─► route PEER/128 table T ─► TUN ─► Tun::recv_batch (super-segments
//!           split) ─► core.outbound ─► RawSend::send_groups (unchanged super-segments
//!           whole, AF_PACKET) / RawSend::send_batch (AF_PACKET sendmmsg to the next
//!           hop, else IPPROTO_RAW sendmmsg with SO_MARK: kernel routes by main, the
//!           rule "not fwmark ⇒ table T" keeps it out of the TUN)
//! inbound:  wire ─► proto 140 ─► RawRecv::recv_batch (recvmmsg) ─► core.inbound
//!           ─► Tun::send_batch (coalesced per flow with offload) ─► app
//! ```
//!
//! The API is batch-shaped ([`Batch`]: up to `tun.batch` packets per turn of the loop,
//! at least 128 with offload): one `recvmmsg`/`sendmmsg` moves up to 64 datagrams, one
//! offload TUN read up to a 64 KB TCP super-segment ([`tun`], "Offload"), and the
//! packet socket ([`gso`]) hands unchanged super-segments to the kernel whole. Buffers belong to the shell and carry headroom ([`PacketBuf`]) so the core
//! rewrites in place.
//!
//! | module | what |
//! | --- | --- |
//! | [`tun`] | the TUN device (tun-rs), `addrgenmode none`, MTU |
//! | [`raw`] | protocol-140 receive socket with pktinfo, `IPPROTO_RAW` send socket with `SO_MARK` (`recvmmsg`/`sendmmsg`) |
//! | [`gso`] | pass-through TCP super-segments out as one `AF_PACKET` frame (with offload) |
//! | [`routing`] | loop-guard rule and per-peer routes, recorded and torn down |

pub mod gso;
pub mod raw;
pub mod routing;
pub mod tun;

use std::{collections::BTreeMap, io};

pub use raw::{RawRecv, RawSend, RecvMeta};
pub use routing::Plumbing;
pub use tun::Tun;

use crate::core::{Inbound, Outbound, ProtocolCore};

/// Errors setting up the data plane, each naming the failing operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating the TUN device failed.
    #[error("create TUN device {name}: {source}")]
    TunOpen {
        /// Device name.
        name: String,
        /// Cause.
        source: io::Error,
    },
    /// Configuring the TUN device over rtnetlink failed.
    #[error("configure TUN device {name}: {op}: {source}")]
    TunConfigure {
        /// Device name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: xfrm_sys::Error,
    },
    /// Opening a raw socket failed (needs `CAP_NET_RAW`).
    #[error("open raw IPv6 {what}: {source}")]
    RawOpen {
        /// Which socket.
        what: &'static str,
        /// Cause.
        source: io::Error,
    },
    /// A socket option could not be set.
    #[error("set {option}: {source}")]
    SocketOption {
        /// The option.
        option: &'static str,
        /// Cause.
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("{op}: {source}")]
    Netlink {
        /// What was being done.
        op: String,
        /// Cause.
        source: xfrm_sys::Error,
    },
}

/// A packet buffer owned by the shell, with headroom in front of the packet.
///
/// Packets from the TUN are read at [`PacketBuf::HEADROOM`]: the core may move the
/// packet's start forward by 8 octets to insert the payload extension header after the
/// IPv6 header (RFC 5533 §5.1). Datagrams from the raw socket are read at
/// [`PacketBuf::RECV_OFFSET`], leaving room for the 40-octet IPv6 header the core
/// rebuilds (RFC 8200 §3).
#[derive(Clone, Debug)]
pub struct PacketBuf {
    data: Box<[u8]>,
    start: usize,
    len: usize,
}

impl PacketBuf {
    /// Room for the payload extension header in front of a TUN packet.
    pub const HEADROOM: usize = 8;
    /// Where raw-socket datagrams land: room for an IPv6 header plus the headroom.
    pub const RECV_OFFSET: usize = 40 + Self::HEADROOM;

    /// A buffer for packets up to `mtu` octets (plus headroom).
    pub fn new(mtu: usize) -> Self {
        Self {
            data: vec![0; mtu + Self::RECV_OFFSET].into_boxed_slice(),
            start: Self::HEADROOM,
            len: 0,
        }
    }

    /// The packet.
    pub fn packet(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }

    /// The packet, mutable.
    pub fn packet_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.start + self.len]
    }

    /// The whole buffer and the packet's position in it, for rewriting in place.
    pub fn parts_mut(&mut self) -> (&mut [u8], usize, usize) {
        (&mut self.data, self.start, self.len)
    }

    /// Moves the packet window; `false` (and no change) when it does not fit.
    pub fn set_window(&mut self, start: usize, len: usize) -> bool {
        if start
            .checked_add(len)
            .is_some_and(|end| end <= self.data.len())
        {
            self.start = start;
            self.len = len;
            true
        } else {
            false
        }
    }

    /// Capacity from `start` on.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn tun_space(&mut self) -> &mut [u8] {
        &mut self.data[Self::HEADROOM..]
    }

    /// Whether the packet is still where and as long as [`PacketBuf::set_from_tun`] put
    /// it (the core did not insert a header).
    pub(crate) fn is_tun_window(&self, n: usize) -> bool {
        self.start == Self::HEADROOM && self.len == n
    }

    pub(crate) fn set_from_tun(&mut self, n: usize) {
        self.start = Self::HEADROOM;
        self.len = n;
    }

    pub(crate) fn recv_space(&mut self) -> &mut [u8] {
        &mut self.data[Self::RECV_OFFSET..]
    }

    pub(crate) fn set_received(&mut self, n: usize) {
        self.start = Self::RECV_OFFSET;
        self.len = n;
    }
}

impl AsRef<[u8]> for PacketBuf {
    /// The whole buffer (for segmentation into it at an offset).
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl AsMut<[u8]> for PacketBuf {
    /// The whole buffer, mutable.
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

/// Up to `capacity` packets read in one turn, with their receive metadata.
#[derive(Debug)]
pub struct Batch {
    /// The buffers; the first [`Batch::len`] hold packets.
    pub bufs: Vec<PacketBuf>,
    /// Metadata of raw-socket datagrams, parallel to `bufs` (default for TUN reads).
    pub meta: Vec<RecvMeta>,
    /// How many buffers hold packets.
    pub len: usize,
    /// Super-segments read from an offload TUN that could not be split (malformed),
    /// since the last [`Batch::take_bad_gso`].
    pub bad_gso: u64,
    /// Segment lengths from the splitter, parallel to `bufs`.
    pub(crate) sizes: Vec<usize>,
    /// An offload TUN read (virtio header and packet), allocated on first use.
    pub(crate) gso: Vec<u8>,
    /// Length of a read in `gso` still to be split (0: none): it did not fit in the
    /// batch's free buffers and waits for the next turn.
    pub(crate) pending: usize,
    /// The super-segments this batch's packets were split from, as read (virtio header
    /// included): `frames[i]` belongs to `groups[i]`.
    pub(crate) groups: Vec<Group>,
    /// Buffers of those reads (kept across batches; swapped with `gso`).
    pub(crate) frames: Vec<Vec<u8>>,
}

/// Packets `first..first + count` of a batch were split from the super-segment
/// `frames[i]` (`len` octets of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub first: usize,
    pub count: usize,
    pub len: usize,
}

impl Batch {
    /// `capacity` buffers for packets up to `mtu` octets.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    pub fn new(capacity: usize, mtu: usize) -> Self {
        assert!(capacity > 0, "a batch holds at least one packet");
        Self {
            bufs: (0..capacity).map(|_| PacketBuf::new(mtu)).collect(),
            meta: vec![RecvMeta::default(); capacity],
            len: 0,
            bad_gso: 0,
            sizes: vec![0; capacity],
            gso: Vec::new(),
            pending: 0,
            groups: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// The count of dropped super-segments, reset.
    pub fn take_bad_gso(&mut self) -> u64 {
        std::mem::take(&mut self.bad_gso)
    }

    /// How many packets it can hold.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// Empties it (a read still pending from an offload TUN stays).
    pub fn clear(&mut self) {
        self.len = 0;
        self.groups.clear();
    }

    /// The packets held.
    pub fn packets(&self) -> impl Iterator<Item = &PacketBuf> {
        self.bufs[..self.len].iter()
    }
}

/// Data-plane counters (`stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets read from the TUN.
    pub tun_rx_packets: u64,
    /// Bytes read from the TUN.
    pub tun_rx_bytes: u64,
    /// Packets written to the TUN.
    pub tun_tx_packets: u64,
    /// Datagrams read from the protocol-140 socket.
    pub raw_rx_packets: u64,
    /// Bytes of those datagrams.
    pub raw_rx_bytes: u64,
    /// Packets sent through the marked raw socket.
    pub raw_tx_packets: u64,
    /// Bytes sent through it.
    pub raw_tx_bytes: u64,
    /// Read batches from the TUN (packets / batches = mean batch size).
    pub tun_batches: u64,
    /// Read batches from the raw socket.
    pub raw_batches: u64,
    /// TCP super-segments sent whole through the packet socket (their packets are
    /// counted in `raw_tx_packets`).
    pub gso_frames: u64,
    /// ICMPv6 errors read from the ICMPv6-error socket.
    pub icmp_rx_packets: u64,
    /// Of those, errors the core did not act on (about traffic that is not ours).
    pub icmp_ignored: u64,
    /// ICMPv6 Packet Too Big messages written to the TUN for packets that no longer
    /// fit the path once rewritten (RFC 4443 §3.2).
    pub ptb_sent: u64,
    /// Drops, by reason.
    pub drops: BTreeMap<&'static str, u64>,
}

impl Stats {
    fn drop(&mut self, reason: &'static str) {
        *self.drops.entry(reason).or_default() += 1;
    }

    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tun_rx_packets": self.tun_rx_packets,
            "tun_rx_bytes": self.tun_rx_bytes,
            "tun_tx_packets": self.tun_tx_packets,
            "raw_rx_packets": self.raw_rx_packets,
            "raw_rx_bytes": self.raw_rx_bytes,
            "raw_tx_packets": self.raw_tx_packets,
            "raw_tx_bytes": self.raw_tx_bytes,
            "tun_batches": self.tun_batches,
            "raw_batches": self.raw_batches,
            "gso_frames": self.gso_frames,
            "icmp_rx_packets": self.icmp_rx_packets,
            "icmp_ignored": self.icmp_ignored,
            "ptb_sent": self.ptb_sent,
            "drops": self.drops,
        })
    }
}

/// Drop reasons of the shell itself (the core's come from [`Outbound::Drop`] and
/// [`Inbound::Drop`]).
pub mod drop_reason {
    /// A TUN packet that is not IPv6 or whose payload length disagrees with its size.
    pub const TUN_NOT_IPV6: &str = "tun_not_ipv6";
    /// A super-segment from an offload TUN that could not be split into packets.
    pub const TUN_BAD_GSO: &str = "tun_bad_gso";
    /// A TUN packet to a multicast address (RFC 4291 §2.7: `ff00::/8`).
    pub const TUN_MULTICAST: &str = "tun_multicast";
    /// A datagram larger than the receive buffer (`MSG_TRUNC`).
    pub const RAW_TRUNCATED: &str = "raw_truncated";
    /// A protocol-140 datagram while no protocol core runs.
    pub const NO_PROTOCOL_CORE: &str = "no_protocol_core";
    /// The send socket refused a packet (no route, …).
    pub const SEND_FAILED: &str = "send_failed";
    /// The TUN refused a packet.
    pub const TUN_WRITE_FAILED: &str = "tun_write_failed";
    /// A TUN packet too big for the path once rewritten (8 octets longer, RFC 5533
    /// §5.1): answered with an ICMPv6 Packet Too Big into the TUN.
    pub const TOO_BIG: &str = "too_big";
}

/// Whether `p` is a well-formed IPv6 packet as far as the shell cares: version 6, a full
/// header, and a payload length matching the size (RFC 8200 §3; jumbograms, payload
/// length 0, cannot come through a TUN of MTU ≤ 65535).
pub fn is_ipv6(p: &[u8]) -> bool {
    p.len() >= 40 && p[0] >> 4 == 6 && usize::from(u16::from_be_bytes([p[4], p[5]])) == p.len() - 40
}

/// The engine: one turn of outbound or inbound processing over a batch. Owns nothing
/// but counters; the devices and the core are passed in, so the service loop keeps one
/// owner for each.
impl Stats {
    /// Processes a batch read from the TUN: validate, ask the core (no core: pass
    /// through), send what is to be sent.
    ///
    /// `tun` and `path_mtu` (the smallest MTU of the locators' links) are for packets
    /// that no longer fit once rewritten: they are answered with an ICMPv6 Packet Too
    /// Big written to the TUN (RFC 4443 §3.2, [`crate::mtu`]) and counted as
    /// `too_big`.
    pub async fn outbound(
        &mut self,
        batch: &mut Batch,
        mut core: Option<&mut (dyn ProtocolCore + '_)>,
        tx: &RawSend,
        tun: &Tun,
        path_mtu: u32,
        now: std::time::Instant,
    ) {
        let mut ptb = [0u8; crate::config::IPV6_MIN_MTU as usize];
        self.tun_batches += 1;
        let bad = batch.take_bad_gso();
        if bad > 0 {
            *self.drops.entry(drop_reason::TUN_BAD_GSO).or_default() += bad;
        }
        // Indices of the packets to send, all in one go at the end (sendmmsg).
        let mut send = Vec::with_capacity(batch.len);
        for (i, buf) in batch.bufs[..batch.len].iter_mut().enumerate() {
            self.tun_rx_packets += 1;
            self.tun_rx_bytes += buf.packet().len() as u64;
            if !is_ipv6(buf.packet()) {
                self.drop(drop_reason::TUN_NOT_IPV6);
                continue;
            }
            // Only unicast to a peer is ours to forward; the kernel's own multicast (router
            // solicitations, MLD) must not leave through the raw socket.
            if buf.packet()[24] == 0xff {
                self.drop(drop_reason::TUN_MULTICAST);
                continue;
            }
            // The core rewrites in place: keep the ULID form of a packet that may not
            // fit once 8 octets longer (mtu.rs "How to wire it", step 3). The quote of
            // a Packet Too Big is at most 1280 octets anyway (RFC 4443 §2.4).
            let copy = (buf.packet().len() > crate::mtu::ptb_mtu(path_mtu) as usize)
                .then(|| buf.packet().to_vec());
            let verdict = match core.as_deref_mut() {
                Some(c) => c.outbound(now, buf),
                None => Outbound::PassThrough,
            };
            if verdict == Outbound::Send
                && crate::mtu::too_big(buf.packet().len(), path_mtu)
                && let Some(original) = copy
            {
                self.drop(drop_reason::TOO_BIG);
                match crate::mtu::packet_too_big(&original, crate::mtu::ptb_mtu(path_mtu), &mut ptb)
                {
                    Ok(n) => {
                        if let Err(e) = tun.send(&ptb[..n]).await {
                            tracing::debug!(error = %e, "write Packet Too Big to the TUN");
                        } else {
                            self.ptb_sent += 1;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "no Packet Too Big for this packet"),
                }
                continue;
            }
            match verdict {
                Outbound::Send | Outbound::PassThrough => send.push(i),
                Outbound::Drop(reason) => self.drop(reason),
            }
        }
        if send.is_empty() {
            return;
        }
        // Super-segments whose packets all pass unchanged leave whole (`gso`).
        if !batch.groups.is_empty() {
            let sent = tx.send_groups(batch, &mut send, now);
            self.raw_tx_packets += sent.0;
            self.raw_tx_bytes += sent.1;
            self.gso_frames += sent.2;
            if send.is_empty() {
                return;
            }
        }
        let packets: Vec<&[u8]> = send.iter().map(|&i| batch.bufs[i].packet()).collect();
        let mut errors = Vec::new();
        let sent = tx.send_batch(&packets, &mut errors).await;
        let mut bytes: u64 = packets.iter().map(|p| p.len() as u64).sum();
        for (i, e) in errors {
            bytes -= packets.get(i).map_or(0, |p| p.len() as u64);
            self.drop(drop_reason::SEND_FAILED);
            tracing::debug!(error = %e, "send through the raw socket failed");
        }
        self.raw_tx_packets += sent as u64;
        self.raw_tx_bytes += bytes;
    }

    /// Processes a batch read from the protocol-140 socket.
    pub async fn inbound(
        &mut self,
        batch: &mut Batch,
        core: Option<&mut (dyn ProtocolCore + '_)>,
        tun: &Tun,
        now: std::time::Instant,
    ) {
        self.inbound_from(batch, core, tun, now, false).await;
    }

    /// Processes a batch read from the ICMPv6-error socket: errors about our Shim6
    /// packets (NO-SUPPORT, RFC 5533 §7.6) or about rewritten payload, translated back to
    /// the ULIDs for the TUN (RFC 5533 §5.1).
    pub async fn inbound_icmp(
        &mut self,
        batch: &mut Batch,
        core: Option<&mut (dyn ProtocolCore + '_)>,
        tun: &Tun,
        now: std::time::Instant,
    ) {
        self.inbound_from(batch, core, tun, now, true).await;
    }

    async fn inbound_from(
        &mut self,
        batch: &mut Batch,
        mut core: Option<&mut (dyn ProtocolCore + '_)>,
        tun: &Tun,
        now: std::time::Instant,
        icmp: bool,
    ) {
        if icmp {
            self.icmp_rx_packets += batch.len as u64;
            let Some(c) = core.as_deref_mut() else {
                return;
            };
            for i in 0..batch.len {
                let meta = batch.meta[i];
                let buf = &mut batch.bufs[i];
                if meta.truncated {
                    self.drop(drop_reason::RAW_TRUNCATED);
                    continue;
                }
                match c.inbound_icmp(now, buf, &meta) {
                    Inbound::DeliverToTun => match tun.send(buf.packet()).await {
                        Ok(()) => self.tun_tx_packets += 1,
                        Err(e) => {
                            self.drop(drop_reason::TUN_WRITE_FAILED);
                            tracing::debug!(error = %e, "write to the TUN failed");
                        }
                    },
                    Inbound::Consumed => {}
                    // An error about someone else's traffic is the common case: counted
                    // apart from the drops.
                    Inbound::Drop(_) => self.icmp_ignored += 1,
                }
            }
            return;
        }
        self.raw_batches += 1;
        // Indices of the packets for the TUN, written in one go at the end (coalesced
        // into super-segments with offload).
        let mut deliver = Vec::with_capacity(batch.len);
        for i in 0..batch.len {
            let meta = batch.meta[i];
            let buf = &mut batch.bufs[i];
            self.raw_rx_packets += 1;
            self.raw_rx_bytes += buf.packet().len() as u64;
            if meta.truncated {
                self.drop(drop_reason::RAW_TRUNCATED);
                continue;
            }
            let Some(c) = core.as_deref_mut() else {
                self.drop(drop_reason::NO_PROTOCOL_CORE);
                continue;
            };
            match c.inbound(now, buf, &meta) {
                Inbound::DeliverToTun => deliver.push(i),
                Inbound::Consumed => {}
                Inbound::Drop(reason) => self.drop(reason),
            }
        }
        if deliver.is_empty() {
            return;
        }
        let bufs = &batch.bufs;
        let (written, err) = tun
            .send_batch(deliver.iter().map(|&i| bufs[i].packet()))
            .await;
        self.tun_tx_packets += written as u64;
        let failed = (deliver.len() - written) as u64;
        if failed > 0 {
            *self.drops.entry(drop_reason::TUN_WRITE_FAILED).or_default() += failed;
        }
        if let Some(e) = err {
            tracing::debug!(error = %e, "write to the TUN failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_check() {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[5] = 8;
        assert!(is_ipv6(&p));
        p[5] = 9;
        assert!(!is_ipv6(&p), "length mismatch");
        p[5] = 8;
        p[0] = 0x45;
        assert!(!is_ipv6(&p), "IPv4");
        assert!(!is_ipv6(&p[..39]));
    }

    #[test]
    fn packet_window() {
        let mut b = PacketBuf::new(100);
        assert_eq!(b.capacity(), 100 + PacketBuf::RECV_OFFSET);
        b.tun_space()[..3].copy_from_slice(&[1, 2, 3]);
        b.set_from_tun(3);
        assert_eq!(b.packet(), [1, 2, 3]);
        // The core inserts 8 octets by moving the start into the headroom.
        assert!(b.set_window(0, 11));
        assert_eq!(&b.packet()[8..], [1, 2, 3]);
        assert!(!b.set_window(1, b.capacity()));
        assert_eq!(b.packet().len(), 11, "unchanged after a refused move");
    }

    #[test]
    fn drop_counters_by_reason() {
        let mut s = Stats::default();
        s.drop("a");
        s.drop("a");
        s.drop("b");
        let j = s.to_json();
        assert_eq!(j["drops"]["a"], 2);
        assert_eq!(j["drops"]["b"], 1);
    }
}
