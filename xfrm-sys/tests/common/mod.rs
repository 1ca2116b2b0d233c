//! Helpers shared by the XFRM and tunnel netns tests: a two-namespace topology, raw
//! sockets opened inside a namespace, an `AF_PACKET` sniffer, bounded waits.
//!
//! Every wait is bounded by [`WAIT`]; nothing asserts on time.

#![allow(dead_code)] // each test crate uses a subset

use std::{
    io::{self, Read},
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use xfrm_sys::netns::{Netns, veth};

/// Upper bound of any wait on the kernel.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long one receive attempt waits before the sender tries again.
pub const POLL: Duration = Duration::from_millis(200);

/// The first namespace's address on the shared link (the home agent, or the sender).
pub const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// The second namespace's address on the shared link.
pub const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// A second address of the second namespace (a new care-of address).
pub const B2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 3);

/// IPv6 next header of the Mobility Header (RFC 6275 §6.1).
pub const IPPROTO_MH: u8 = 135;

/// Two namespaces joined by a veth `xa` (in `a`, address [`A`]) / `xb` (in `b`,
/// addresses [`B`] and [`B2`]), both up, addresses without DAD.
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
}

impl Pair {
    pub fn new(tag: &str) -> Self {
        let a = Netns::new(&format!("{tag}a")).expect("netns a");
        let b = Netns::new(&format!("{tag}b")).expect("netns b");
        veth(&a, "xa", &b, "xb").expect("veth");
        a.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "xa", "nodad"])
            .unwrap();
        b.ip(&["addr", "add", "2001:db8:1::2/64", "dev", "xb", "nodad"])
            .unwrap();
        b.ip(&["addr", "add", "2001:db8:1::3/64", "dev", "xb", "nodad"])
            .unwrap();
        a.ip(&["link", "set", "xa", "up"]).unwrap();
        b.ip(&["link", "set", "xb", "up"]).unwrap();
        Self { a, b }
    }
}

/// A socket made by `make` inside `ns` (it stays in that namespace for life).
pub fn socket_in(ns: &Netns, make: fn() -> io::Result<Socket>) -> Socket {
    ns.run(move || async move { make() })
        .expect("thread in netns")
        .expect("socket in netns")
}

/// A raw IPv6 socket of protocol 135: the kernel fills and checks the MH checksum at
/// offset 4 and applies inbound IPsec policy to what it delivers.
pub fn raw_mh() -> io::Result<Socket> {
    let s = Socket::new(
        Domain::IPV6,
        Type::RAW,
        Some(Protocol::from(i32::from(IPPROTO_MH))),
    )?;
    s.set_read_timeout(Some(POLL))?;
    Ok(s)
}

/// A raw `ICMPv6` socket (the kernel computes the checksum).
pub fn raw_icmp6() -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.set_read_timeout(Some(POLL))?;
    Ok(s)
}

/// An `AF_PACKET` datagram socket for IPv6 on every interface of the namespace: each
/// read is one IPv6 packet as it crossed a device, from its IPv6 header on.
pub fn sniffer() -> io::Result<Socket> {
    let eth_p_ipv6 = u16::try_from(libc::ETH_P_IPV6).expect("16-bit ethertype");
    let s = Socket::new(
        Domain::from(libc::AF_PACKET),
        Type::DGRAM,
        Some(Protocol::from(i32::from(eth_p_ipv6.to_be()))),
    )?;
    s.set_read_timeout(Some(POLL))?;
    Ok(s)
}

/// One read, `None` when the read timeout passed.
pub fn recv(s: &Socket) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    match (&*s).read(&mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("recv: {e}"),
    }
}

/// Everything already queued on `s`, without waiting.
pub fn drain(s: &Socket) -> Vec<Vec<u8>> {
    s.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    while let Some(p) = recv(s) {
        out.push(p);
    }
    s.set_nonblocking(false).unwrap();
    out
}

pub fn send_to(s: &Socket, bytes: &[u8], dst: Ipv6Addr) {
    s.send_to(bytes, &SocketAddrV6::new(dst, 0, 0, 0).into())
        .expect("send");
}

/// A Binding Update (RFC 6275 §6.1.7, digest §5.2): Payload Proto 59, Header Len 1,
/// MH Type 5, checksum left to the kernel, sequence `seq`, flags A|H, lifetime 10
/// (40 s), then a `PadN` of 4 octets.
pub fn binding_update(seq: u16) -> [u8; 16] {
    let s = seq.to_be_bytes();
    [59, 1, 5, 0, 0, 0, s[0], s[1], 0xc0, 0x00, 0, 10, 1, 2, 0, 0]
}

/// The sequence number of a received Binding Update, checked with shim6-wire (type,
/// checksum over `src` → `dst`).
pub fn bu_seq(mh: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Option<u16> {
    let p = shim6_wire::mip6::header::Packet::new_checked(mh).ok()?;
    if p.mh_type() != 5 {
        return None;
    }
    assert!(
        p.verify_checksum(&src, &dst),
        "kernel-delivered MH with a bad checksum: {mh:02x?}"
    );
    Some(p.bu_sequence())
}

/// Sends BU `seq` from `tx` to `dst` until `rx` delivers it, within [`WAIT`]; the first
/// packets may be lost while the veth's carrier comes up and neighbours are resolved.
pub fn deliver_bu(tx: &Socket, rx: &Socket, seq: u16, src: Ipv6Addr, dst: Ipv6Addr) {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        send_to(tx, &binding_update(seq), dst);
        while let Some(mh) = recv(rx) {
            if bu_seq(&mh, src, dst) == Some(seq) {
                return;
            }
        }
    }
    panic!("BU {seq} from {src} to {dst} not delivered within {WAIT:?}");
}

/// Polls `cond` every [`POLL`] until it holds, within [`WAIT`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out after {WAIT:?}: {what}");
        std::thread::sleep(POLL);
    }
}

/// A counter of `/proc/net/xfrm_stat` in `ns` (per namespace).
pub fn xfrm_stat(ns: &Netns, name: &str) -> u64 {
    let out = ns.exec("cat", &["/proc/net/xfrm_stat"]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(name)).then(|| it.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {name} in /proc/net/xfrm_stat: {text}"))
}

/// IPv6 packets seen by a sniffer: (source, destination, next header of the fixed
/// header, the whole packet).
pub fn ipv6_packets(sniffed: &[Vec<u8>]) -> Vec<(Ipv6Addr, Ipv6Addr, u8, &[u8])> {
    sniffed
        .iter()
        .filter(|p| p.len() >= 40 && p[0] >> 4 == 6)
        .map(|p| {
            let addr = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&p[at..at + 16]);
                Ipv6Addr::from(o)
            };
            (addr(8), addr(24), p[6], &p[..])
        })
        .collect()
}

/// Whether the running kernel was built with `option` (`CONFIG_...=y`), from
/// `/proc/config.gz`; `None` when that file or `zcat` is missing.
pub fn kernel_config(option: &str) -> Option<bool> {
    let out = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .any(|l| l == format!("{option}=y") || l == format!("{option}=m")),
    )
}
