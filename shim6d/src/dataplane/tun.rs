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

use xfrm_sys::{AddrGenMode, Handle};

use super::{Batch, Error};

/// The open TUN device.
pub struct Tun {
    dev: tun_rs::AsyncDevice,
    name: String,
    index: u32,
    mtu: u32,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl Tun {
    /// Creates `name` with `mtu`, `addrgenmode none`, and sets it up. Needs
    /// `CAP_NET_ADMIN` and `/dev/net/tun`.
    pub async fn create(handle: &Handle, name: &str, mtu: u32) -> Result<Self, Error> {
        let dev = tun_rs::DeviceBuilder::new()
            .name(name)
            .packet_information(false)
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

    /// Waits for at least one packet, then reads as many as are queued, up to the batch's
    /// capacity. Each lands at [`super::PacketBuf::HEADROOM`], leaving room for the payload
    /// extension header (RFC 5533 §5.1) to be inserted by moving the IPv6 header forward.
    pub async fn recv_batch(&self, batch: &mut Batch) -> io::Result<usize> {
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

    /// Writes one IPv6 packet into the device: the kernel delivers it as if it had
    /// arrived on the TUN.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = self.dev.send(packet).await?;
        if n != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("TUN took {n} of {} bytes", packet.len()),
            ));
        }
        Ok(())
    }
}
