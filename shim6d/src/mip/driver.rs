//! The driver: the role's sans-IO core (`mip6::ha::HomeAgent` or
//! `mip6::mn::MobileNode`) over a TUN device, a protocol-41 raw socket and an
//! `IPPROTO_RAW` send socket, on tokio.
//!
//! # What it owns
//!
//! All made by [`Driver::start`] in the daemon's network namespace:
//! - the TUN device `[mip6] tun` (`addrgenmode none`, MTU `[mip6] mtu`); closing it
//!   (the driver ending, even by a crash) deletes it with its routes and addresses;
//! - **home agent**: a route per home prefix into the device (RFC 6275 §10.4.1);
//! - **mobile node**: the home addresses on the device (`/128`, `nodad`), a default
//!   route through the device in `[mip6] table`, and a rule `from HOA lookup TABLE` per
//!   home address (removed at the end), plus an address monitor for care-of addresses;
//!   with `[mip6] cga_care_of`, the care-of CGAs on the visited interfaces (deleted when
//!   their network goes and at the end);
//! - a raw `AF_INET6` socket for protocol 41 (IPv6-in-IPv6, RFC 2473) with
//!   `IPV6_RECVPKTINFO`: Linux hands over the datagram without its outer header, which
//!   is rebuilt from the source and the `IPV6_PKTINFO` destination
//!   (`mip6::packet::write_tunnel_header`); with no ip6tnl in the kernel nothing else
//!   claims protocol 41;
//! - an `IPPROTO_RAW` socket marked with `[routing] fwmark` (so that Shim6's table is
//!   never consulted for it), sending with the packet's own source as `IPV6_PKTINFO` so
//!   that source policy routing picks the visited network's link.
//!
//! # The loop
//!
//! One `select!` per turn over: shutdown, a packet from the TUN, a datagram on the
//! protocol-41 socket, an address event (mobile node), a snapshot request, the core's
//! timer. After each turn the core is drained: transmits first, then events (logged and
//! kept in a short history shown by `bindings`/`bul`). Every arm is cancel safe.
//!
//! # Shutdown
//!
//! A mobile node de-registers every home (RFC 6275 §11.7.1) and waits at most 1 s for
//! the acknowledgements; then the rules go, and the device with its routes and
//! addresses when the driver is dropped.

use std::{
    collections::VecDeque,
    future::Future,
    io,
    net::Ipv6Addr,
    os::fd::OwnedFd,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mip6::{
    ha::{self, HomeAgent, Intercept, Reverse},
    mn::{self, Inbound, MobileNode, Outbound},
    packet,
};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, oneshot},
};
use xfrm_sys::{
    AddrGenMode, AddressRequest, Handle, Ipv6Prefix, MonitorOptions, Route, Rule, route::TABLE_MAIN,
};

use super::{
    CareOfCgas, Mip6Config, Role,
    report::{self, IoStats},
};
use crate::{control::Reply, sys};

/// The IPv6 header (RFC 8200 §3) in front of every tunnelled packet (RFC 2473 §3).
const OUTER: usize = 40;
/// IANA protocol number of IPv6 encapsulation (RFC 2473).
const IPPROTO_IPV6: i32 = 41;
/// Events kept for the snapshots.
const HISTORY: usize = 32;
/// How long a stopping mobile node waits for its de-registrations to be acknowledged.
const DEREGISTER_WAIT: Duration = Duration::from_secs(1);

/// Why the driver could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The role needs settings that are missing (config validation normally catches it).
    #[error("[mip6]: {0}")]
    Config(&'static str),
    /// Creating or configuring the TUN failed.
    #[error("[mip6] tun {name}: {op}: {source}")]
    Tun {
        /// Device name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: io::Error,
    },
    /// A netlink operation failed.
    #[error("[mip6]: {op}: {source}")]
    Netlink {
        /// What was being done.
        op: String,
        /// Cause.
        source: xfrm_sys::Error,
    },
    /// `cga_care_of`: the identity's key could not be read.
    #[error("[mip6] cga_care_of: {0}")]
    CareOfKey(String),
    /// A socket could not be opened or configured.
    #[error("[mip6]: {op}: {source}")]
    Socket {
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: io::Error,
    },
}

/// What the service loop asks the driver.
#[derive(Debug)]
enum Input {
    /// `bindings` or `bul`, answered on the channel (`Err`: wrong role).
    Snapshot(Which, oneshot::Sender<Result<Reply, String>>),
}

/// Which snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The home agent's Binding Cache (`bindings`).
    Bindings,
    /// The mobile node's Binding Update List (`bul`).
    Bul,
}

/// The service loop's side: cheap to clone; `None` once the driver stopped.
#[derive(Clone, Debug)]
pub struct Handle6 {
    tx: mpsc::UnboundedSender<Input>,
}

impl Handle6 {
    /// The `bindings` / `bul` reply; `Err` says why there is none.
    pub async fn snapshot(&self, which: Which) -> Result<Reply, String> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Input::Snapshot(which, tx)).is_err() {
            return Err("the MipShim6 driver stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the MipShim6 driver stopped".into()))
    }
}

/// The role's core.
#[derive(Debug)]
enum Core {
    Ha(Box<HomeAgent>),
    Mn(Box<MobileNode>),
}

/// The running role: see the module docs.
pub struct Driver {
    config: Mip6Config,
    core: Core,
    handle: Handle,
    tun: tun_rs::AsyncDevice,
    tun_index: u32,
    other_tun: String,
    rx: Option<AsyncFd<OwnedFd>>,
    tx: AsyncFd<OwnedFd>,
    monitor: Option<xfrm_sys::Monitor>,
    rules: Vec<Rule>,
    inputs: mpsc::UnboundedReceiver<Input>,
    handle_tx: mpsc::UnboundedSender<Input>,
    io: IoStats,
    history: VecDeque<(u64, String)>,
    /// `[mip6] cga_care_of`: the parameter set of the care-of CGAs.
    care_of_cgas: Option<CareOfCgas>,
    /// The care-of CGAs the driver added: (interface index, address).
    formed: Vec<(u32, Ipv6Addr)>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("role", &self.config.role)
            .field("tun", &self.config.tun)
            .finish_non_exhaustive()
    }
}

/// Microseconds since the UNIX epoch (the history's clock, as the daemon's).
fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The wall clock in NTP format (RFC 1305: seconds since 1900 in the high 32 bits), the
/// anchor of the cores' RFC 4285 §6 timestamps.
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ((d.as_secs() + NTP_UNIX_OFFSET) << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

fn addrs_of(p: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
    let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
    Some((src.into(), dst.into()))
}

impl Driver {
    /// Sets the role up (module docs, "What it owns"). `fwmark` is `[routing] fwmark`,
    /// `shim6_tun` the Shim6 device (never a source of care-of addresses);
    /// `care_of_cgas` (mobile node, `[mip6] cga_care_of`) makes the driver form its
    /// care-of addresses ([`CareOfCgas`], `crate::mip` docs "Care-of addresses outside
    /// the HBA set").
    pub async fn start(
        config: &Mip6Config,
        fwmark: u32,
        shim6_tun: &str,
        care_of_cgas: Option<CareOfCgas>,
    ) -> Result<Self, Error> {
        let now = Instant::now();
        let core = match config.role {
            Role::None => return Err(Error::Config("role = \"none\": nothing to run")),
            Role::HomeAgent => Core::Ha(Box::new(HomeAgent::new(
                config
                    .ha_config()
                    .ok_or(Error::Config("a home agent needs `address`"))?,
                now,
                ntp_now(),
            ))),
            Role::MobileNode => {
                let c = config
                    .mn_config()
                    .ok_or(Error::Config("a mobile node needs [[mip6.home]]"))?;
                if c.homes.is_empty() {
                    return Err(Error::Config("a mobile node needs [[mip6.home]]"));
                }
                Core::Mn(Box::new(MobileNode::new(c, now, ntp_now())))
            }
        };
        let handle = Handle::new().map_err(|source| Error::Netlink {
            op: "open rtnetlink".into(),
            source,
        })?;
        let tun_err = |op| {
            let name = config.tun.clone();
            move |source| Error::Tun { name, op, source }
        };
        let tun = tun_rs::DeviceBuilder::new()
            .name(&config.tun)
            .packet_information(false)
            .enable(false)
            .build_async()
            .map_err(tun_err("create"))?;
        let nl = |op: String| move |source| Error::Netlink { op, source };
        let link = handle
            .link_by_name(&config.tun)
            .await
            .map_err(nl(format!("look up {}", config.tun)))?;
        handle
            .set_addr_gen_mode(link.index, AddrGenMode::None)
            .await
            .map_err(nl("addrgenmode none".into()))?;
        handle
            .set_mtu(link.index, config.mtu)
            .await
            .map_err(nl("set the MTU".into()))?;
        handle
            .set_link_up(link.index)
            .await
            .map_err(nl("set the device up".into()))?;

        // Sockets first: what can fail without leaving state behind.
        let sock = |op| move |source| Error::Socket { op, source };
        let rx = sys::raw6(IPPROTO_IPV6).map_err(sock("open the protocol-41 socket"))?;
        sys::set_int(&rx, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
            .map_err(sock("IPV6_RECVPKTINFO"))?;
        let rx = sys::async_fd(rx, Interest::READABLE).map_err(sock("register"))?;
        let tx = sys::raw6(libc::IPPROTO_RAW).map_err(sock("open the IPPROTO_RAW socket"))?;
        sys::set_int(&tx, libc::SOL_SOCKET, libc::SO_MARK, fwmark as i32)
            .map_err(sock("SO_MARK"))?;
        let tx = sys::async_fd(tx, Interest::WRITABLE).map_err(sock("register"))?;
        let monitor = match core {
            Core::Mn(_) => Some(
                handle
                    .monitor(MonitorOptions::default())
                    .await
                    .map_err(nl("open the address monitor".into()))?,
            ),
            Core::Ha(_) => None,
        };
        let mut rules = Vec::new();
        match &core {
            Core::Ha(ha) => {
                // RFC 6275 §10.4.1: intercept the home prefixes (no home link here).
                for p in &ha.config().home_prefixes {
                    let prefix = Ipv6Prefix::new(p.prefix.addr, p.prefix.len)
                        .map_err(|_| Error::Config("bad home prefix"))?;
                    handle
                        .add_route(&Route::new(prefix, TABLE_MAIN).dev(link.index))
                        .await
                        .map_err(nl(format!("route {prefix} into {}", config.tun)))?;
                }
            }
            Core::Mn(mn) => {
                handle
                    .add_route(&Route::new(Ipv6Prefix::any(), config.table).dev(link.index))
                    .await
                    .map_err(nl(format!("default route in table {}", config.table)))?;
                for e in mn.binding_update_list() {
                    let hoa = e.home.home_address;
                    let rule = Rule::lookup(config.table)
                        .from(Ipv6Prefix::host(hoa))
                        .priority(config.rule_priority);
                    let added = async {
                        handle
                            .add_address(&AddressRequest::new(link.index, hoa, 128).nodad())
                            .await
                            .map_err(nl(format!("add home address {hoa}")))?;
                        // A rule left by a crashed run: replace it.
                        let _ = handle.delete_rule(&rule).await;
                        handle
                            .add_rule(&rule)
                            .await
                            .map_err(nl(format!("rule {}", rule.describe())))
                    }
                    .await;
                    if let Err(e) = added {
                        // Undo the rules added so far (the device takes the rest).
                        for r in &rules {
                            let _ = handle.delete_rule(r).await;
                        }
                        return Err(e);
                    }
                    rules.push(rule);
                }
            }
        }

        let (handle_tx, inputs) = mpsc::unbounded_channel();
        tracing::info!(
            role = config.role.as_str(),
            tun = %config.tun,
            "MipShim6 driver ready"
        );
        Ok(Self {
            config: config.clone(),
            core,
            handle,
            tun,
            tun_index: link.index,
            other_tun: shim6_tun.to_owned(),
            rx: Some(rx),
            tx,
            monitor,
            rules,
            inputs,
            handle_tx,
            io: IoStats::default(),
            history: VecDeque::new(),
            care_of_cgas: match config.role {
                Role::MobileNode => care_of_cgas,
                _ => None,
            },
            formed: Vec::new(),
        })
    }

    /// The service loop's handle.
    pub fn handle(&self) -> Handle6 {
        Handle6 {
            tx: self.handle_tx.clone(),
        }
    }

    /// Runs until `shutdown` resolves, then removes the rules (the device, its routes and
    /// addresses go when it closes).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let Some(rx) = self.rx.take() else {
            return;
        };
        let mtu = self.config.mtu as usize;
        let mut tun_buf = vec![0u8; OUTER + mtu + OUTER];
        let mut rx_buf = vec![0u8; OUTER + 65536];
        self.form_care_of_cgas().await;
        self.sync_care_of(Instant::now());
        self.drain().await;
        loop {
            let deadline = match &self.core {
                Core::Ha(h) => h.poll_timeout(),
                Core::Mn(m) => m.poll_timeout(),
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let monitor = async {
                match self.monitor.as_mut() {
                    Some(m) => m.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                r = self.tun.recv(&mut tun_buf[OUTER..OUTER + mtu]) => match r {
                    Ok(n) => self.on_tun(&mut tun_buf, n).await,
                    Err(e) => {
                        tracing::error!(error = %e, "[mip6] read the TUN");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                r = rx.readable() => {
                    let mut guard = match r {
                        Ok(g) => g,
                        Err(e) => {
                            tracing::error!(error = %e, "[mip6] protocol-41 socket");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    // Drain what is queued (bounded, so one flood cannot starve the rest).
                    for _ in 0..64 {
                        match guard.try_io(|fd| sys::recv_info(fd.get_ref(), &mut rx_buf[OUTER..])) {
                            Ok(Ok(info)) => self.on_tunnelled(&mut rx_buf, info).await,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "[mip6] protocol-41 receive");
                                break;
                            }
                            Err(_would_block) => break,
                        }
                    }
                }
                ev = monitor => match ev {
                    Ok(ev) => {
                        // A care-of CGA deleted from outside is formed again.
                        if let xfrm_sys::Event::AddressRemoved(a) = &ev {
                            self.formed.retain(|f| *f != (a.index, a.address));
                        }
                        self.form_care_of_cgas().await;
                        self.sync_care_of(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "[mip6] address monitor");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(input) = self.inputs.recv() => match input {
                    Input::Snapshot(which, reply) => {
                        let _ = reply.send(self.snapshot(which, Instant::now()));
                    }
                },
                () = sleep => {
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        match &mut self.core {
                            Core::Ha(h) => h.handle_timeout(now),
                            Core::Mn(m) => m.handle_timeout(now),
                        }
                    }
                }
            }
            self.drain().await;
        }
        self.deregister(&rx, &mut rx_buf).await;
        // The care-of CGAs live on the visited interfaces, not on the device: they go
        // explicitly.
        for (index, a) in std::mem::take(&mut self.formed) {
            if let Err(e) = self.handle.delete_address(index, a, 64).await {
                tracing::warn!(error = %e, address = %a, "[mip6] delete care-of CGA");
            }
        }
        for rule in &self.rules {
            if let Err(e) = self.handle.delete_rule(rule).await {
                tracing::warn!(error = %e, rule = rule.describe(), "[mip6] delete rule");
            }
        }
        tracing::info!("MipShim6 driver stopped");
    }

    /// Mobile node at shutdown: de-registers every home (a BU with lifetime 0, RFC 6275
    /// §11.7.1) and waits at most [`DEREGISTER_WAIT`] for the acknowledgements, so that
    /// the home agents stop tunnelling to a care-of address nobody reads any more.
    async fn deregister(&mut self, rx: &AsyncFd<OwnedFd>, rx_buf: &mut [u8]) {
        let Core::Mn(mn) = &mut self.core else {
            return;
        };
        let now = Instant::now();
        let homes = home_addresses(mn);
        let mut any = false;
        for h in &homes {
            any |= mn.deregister(now, h);
        }
        if !any {
            return;
        }
        self.drain().await;
        let deadline = tokio::time::Instant::now() + DEREGISTER_WAIT;
        let pending = |c: &Core| match c {
            Core::Mn(m) => m
                .binding_update_list()
                .iter()
                .any(|e| e.state == mn::BulState::Deregistering),
            Core::Ha(_) => false,
        };
        while pending(&self.core) {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                r = rx.readable() => {
                    let Ok(mut guard) = r else { break };
                    let read = guard.try_io(|fd| sys::recv_info(fd.get_ref(), &mut rx_buf[OUTER..]));
                    if let Ok(Ok(info)) = read {
                        self.on_tunnelled(rx_buf, info).await;
                    }
                }
            }
            self.drain().await;
        }
        tracing::info!(
            deregistered = !pending(&self.core),
            "[mip6] home registrations ended"
        );
    }

    fn snapshot(&self, which: Which, now: Instant) -> Result<Reply, String> {
        let history = || {
            serde_json::Value::Array(
                self.history
                    .iter()
                    .map(|(t, e)| serde_json::json!({"unix_us": t, "event": e}))
                    .collect(),
            )
        };
        match (which, &self.core) {
            (Which::Bindings, Core::Ha(h)) => {
                let (text, mut json) = report::bindings(h, &self.io, now);
                json["events"] = history();
                Ok(Reply::new(text, json))
            }
            (Which::Bul, Core::Mn(m)) => {
                let (text, mut json) = report::bul(m, &self.io, now);
                json["events"] = history();
                if let Some(c) = &self.care_of_cgas {
                    json["care_of_cgas"] = self
                        .formed
                        .iter()
                        .map(|(index, a)| {
                            serde_json::json!({
                                "address": a.to_string(),
                                "ifindex": index,
                                "params": c.params_on(*a).iter()
                                    .map(|b| format!("{b:02x}")).collect::<String>(),
                            })
                        })
                        .collect();
                }
                Ok(Reply::new(text, json))
            }
            (Which::Bindings, Core::Mn(_)) => {
                Err("not a home agent ([mip6] role = \"mobile-node\"; try `bul`)".into())
            }
            (Which::Bul, Core::Ha(_)) => {
                Err("not a mobile node ([mip6] role = \"home-agent\"; try `bindings`)".into())
            }
        }
    }

    /// A packet from the TUN at `buf[OUTER..OUTER + n]`.
    async fn on_tun(&mut self, buf: &mut [u8], n: usize) {
        self.io.tun_rx += 1;
        let now = Instant::now();
        let range = OUTER..OUTER + n;
        let out = match &mut self.core {
            Core::Ha(h) => match h.handle_home_link_packet(now, buf, range) {
                Intercept::Tunnel { range, .. } => Some(range),
                Intercept::NotRegistered => None,
                Intercept::Drop(ha::InterceptDrop::HopLimitExceeded) => {
                    // RFC 2473 §3.1: the tunnel entry point is a hop; its source hears
                    // of it (RFC 4443 §3.3).
                    let from = h.config().address;
                    if let Some(te) = time_exceeded(from, &buf[OUTER..OUTER + n]) {
                        self.io.tun_dropped += 1;
                        self.send(&te).await;
                        return;
                    }
                    None
                }
                Intercept::Drop(why) => {
                    tracing::trace!(?why, "[mip6] intercepted packet dropped");
                    None
                }
            },
            Core::Mn(m) => match m.handle_outbound(now, buf, range) {
                Outbound::Tunnel(r) => Some(r),
                Outbound::NotHome | Outbound::NotRegistered | Outbound::Malformed => None,
            },
        };
        match out {
            Some(r) => {
                let p = buf[r].to_vec();
                self.send(&p).await;
            }
            None => self.io.tun_dropped += 1,
        }
    }

    /// A protocol-41 datagram whose inner packet is at `buf[OUTER..OUTER + info.len]`.
    async fn on_tunnelled(&mut self, buf: &mut [u8], info: sys::RecvInfo) {
        self.io.tunnel_rx += 1;
        let (Some(src), Some(dst)) = (info.src, info.dst) else {
            self.io.tunnel_dropped += 1;
            return;
        };
        if info.truncated || packet::write_tunnel_header(buf, src, dst, info.len).is_err() {
            self.io.tunnel_dropped += 1;
            return;
        }
        let now = Instant::now();
        let whole = &buf[..OUTER + info.len];
        let deliver = match &mut self.core {
            Core::Ha(h) => match h.handle_tunnelled(now, whole) {
                Reverse::Forward(r) => Some(r),
                Reverse::Consumed => return,
                Reverse::Drop(why) => {
                    tracing::debug!(?why, %src, "[mip6] reverse-tunnelled packet dropped");
                    None
                }
            },
            Core::Mn(m) => match m.handle_tunnelled(now, whole) {
                Inbound::Deliver(r) => Some(r),
                Inbound::Consumed => return,
                Inbound::Drop => None,
            },
        };
        match deliver {
            Some(r) => {
                // The kernel forwards it (home agent) or delivers it to the home address
                // on the device (mobile node).
                match self.tun.send(&buf[r]).await {
                    Ok(_) => self.io.tun_tx += 1,
                    Err(e) => {
                        self.io.send_failed += 1;
                        tracing::debug!(error = %e, "[mip6] write the TUN");
                    }
                }
            }
            None => self.io.tunnel_dropped += 1,
        }
    }

    /// Sends a whole IPv6 packet through the raw socket, its source as `IPV6_PKTINFO`.
    async fn send(&mut self, p: &[u8]) {
        let Some((src, dst)) = addrs_of(p) else {
            self.io.send_failed += 1;
            return;
        };
        let r = loop {
            let mut guard = match self.tx.writable().await {
                Ok(g) => g,
                Err(e) => break Err(e),
            };
            match guard.try_io(|fd| sys::send_from(fd.get_ref(), p, src, dst)) {
                Ok(r) => break r.map(drop),
                Err(_would_block) => continue,
            }
        };
        match r {
            Ok(()) => self.io.raw_tx += 1,
            Err(e) => {
                self.io.send_failed += 1;
                tracing::debug!(error = %e, %src, %dst, "[mip6] raw send");
            }
        }
    }

    /// Transmits, then events.
    async fn drain(&mut self) {
        loop {
            let t = match &mut self.core {
                Core::Ha(h) => h.poll_transmit(),
                Core::Mn(m) => m.poll_transmit(),
            };
            let Some(t) = t else { break };
            self.send(&t.packet).await;
        }
        loop {
            let ev = match &mut self.core {
                Core::Ha(h) => h.poll_event().map(|e| describe_ha(&e)),
                Core::Mn(m) => m.poll_event().map(|e| describe_mn(&e)),
            };
            let Some(ev) = ev else { break };
            tracing::info!(event = %ev, "[mip6]");
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back((unix_us(), ev));
        }
    }

    /// Mobile node: the running interfaces that give care-of addresses (not `lo`, not
    /// the TUNs; only `care_of_interfaces` when set).
    fn care_of_links(&self) -> Vec<u32> {
        let Some(m) = self.monitor.as_ref() else {
            return Vec::new();
        };
        m.links()
            .filter(|l| {
                l.is_running()
                    && l.name != "lo"
                    && l.name != self.config.tun
                    && l.name != self.other_tun
                    && l.index != self.tun_index
                    && (self.config.care_of_interfaces.is_empty()
                        || self.config.care_of_interfaces.contains(&l.name))
            })
            .map(|l| l.index)
            .collect()
    }

    /// `[mip6] cga_care_of` (issue 7: "new CGA addresses for new prefixes"): each `/64`
    /// with an available global address of the network's own (not one of our CGAs, not
    /// a home address) on a care-of interface gets the CGA of [`CareOfCgas`], added
    /// `nodad` (a Sec 0 CGA is 59 hash bits: RFC 3972 §4 step 8's collision handling is
    /// left to the unlikely case) and `noprefixroute` (the network's address already
    /// brings the on-link route); a CGA whose prefix no longer has such an address (the
    /// node left that network) is deleted.
    async fn form_care_of_cgas(&mut self) {
        let Some(cgas) = self.care_of_cgas.clone() else {
            return;
        };
        let links = self.care_of_links();
        let (Core::Mn(mn), Some(m)) = (&self.core, self.monitor.as_ref()) else {
            return;
        };
        // (interface, the CGA due on the prefix of a network's address there).
        let mut due: Vec<(u32, Ipv6Addr)> = care_of_candidates(mn, m, links)
            .filter(|a| !cgas.is_ours(a.address))
            .map(|a| (a.index, cgas.address_on(a.address)))
            .collect();
        due.sort();
        due.dedup();
        let gone: Vec<(u32, Ipv6Addr)> = self
            .formed
            .iter()
            .filter(|f| !due.contains(f))
            .copied()
            .collect();
        for (index, a) in gone {
            self.formed.retain(|f| *f != (index, a));
            match self.handle.delete_address(index, a, 64).await {
                Ok(()) => {
                    tracing::info!(address = %a, "[mip6] care-of CGA removed: its network is gone");
                }
                Err(e) => tracing::debug!(error = %e, address = %a, "[mip6] delete care-of CGA"),
            }
        }
        for (index, a) in due {
            if self.formed.contains(&(index, a)) {
                continue;
            }
            let req = AddressRequest::new(index, a, 64).nodad().noprefixroute();
            match self.handle.add_address(&req).await {
                Ok(()) => {
                    tracing::info!(address = %a, ifindex = index, "[mip6] care-of CGA formed (RFC 3972 §4)");
                    self.formed.push((index, a));
                }
                // Already there (added in an earlier turn whose event is still queued):
                // ours all the same.
                Err(e) if e.is_already_exists() => self.formed.push((index, a)),
                Err(e) => tracing::warn!(error = %e, address = %a, "[mip6] add care-of CGA"),
            }
        }
    }

    /// Mobile node: the care-of addresses are the available global addresses of the
    /// running interfaces (not `lo`, not the TUNs; only `care_of_interfaces` when set).
    /// New ones first (the newest becomes primary and the homes re-register with it,
    /// RFC 6275 §11.5.4), then the gone ones.
    fn sync_care_of(&mut self, now: Instant) {
        let running = self.care_of_links();
        let (Core::Mn(mn), Some(m)) = (&mut self.core, self.monitor.as_ref()) else {
            return;
        };
        let want: Vec<Ipv6Addr> = care_of_candidates(mn, m, running)
            .filter(|a| {
                // With `cga_care_of`, the network's own addresses only bring the
                // prefix: the CGA formed on it is the care-of address.
                self.care_of_cgas
                    .as_ref()
                    .is_none_or(|c| c.is_ours(a.address))
            })
            .map(|a| a.address)
            .collect();
        let have = mn.care_of_addresses().to_vec();
        for a in want.iter().filter(|a| !have.contains(a)) {
            mn.handle_address_added(now, *a);
        }
        for a in have.iter().filter(|a| !want.contains(a)) {
            mn.handle_address_removed(now, *a);
        }
    }
}

/// The home addresses of `mn`'s binding update list, in its order.
fn home_addresses(mn: &MobileNode) -> Vec<Ipv6Addr> {
    mn.binding_update_list()
        .iter()
        .map(|e| e.home.home_address)
        .collect()
}

/// The available global unicast or ULA addresses on `links` that are none of `mn`'s
/// home addresses: where care-of addresses come from (RFC 6275 §11.5.4).
fn care_of_candidates<'m>(
    mn: &MobileNode,
    m: &'m xfrm_sys::Monitor,
    links: Vec<u32>,
) -> impl Iterator<Item = &'m xfrm_sys::Address> + use<'m> {
    let homes = home_addresses(mn);
    m.available_addresses().filter(move |a| {
        links.contains(&a.index)
            && xfrm_sys::address::is_global_unicast_or_ula(a.address)
            && !homes.contains(&a.address)
    })
}

/// An `ICMPv6` Time Exceeded, code 0 "hop limit exceeded in transit" (RFC 4443 §3.3),
/// from `from` to the source of `original`, quoting as much of it as fits in 1280
/// octets (RFC 4443 §2.4 c). `None` for what must not get one (RFC 4443 §2.4 e): a
/// non-unicast source, or an `ICMPv6` error message (checked on the first header only).
pub fn time_exceeded(from: Ipv6Addr, original: &[u8]) -> Option<Vec<u8>> {
    use shim6_wire::ipv6::{
        self as v6,
        icmp::{self, HEADER_LEN_ICMP, TYPE_TIME_EXCEEDED},
    };
    let orig = v6::Packet::new_checked(original).ok()?;
    let src = orig.src_addr();
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
        return None;
    }
    if orig.next_header() == v6::proto::ICMPV6 && original.get(OUTER).is_none_or(|t| *t < 128) {
        return None;
    }
    let quoted = original.len().min(1280 - OUTER - HEADER_LEN_ICMP);
    let icmp_len = HEADER_LEN_ICMP + quoted;
    let mut out = vec![0u8; OUTER + icmp_len];
    v6::Repr {
        traffic_class: 0,
        flow_label: 0,
        payload_len: u16::try_from(icmp_len).ok()?,
        next_header: v6::proto::ICMPV6,
        hop_limit: 64,
        src_addr: from,
        dst_addr: src,
    }
    .emit(&mut v6::Packet::new_unchecked(&mut out[..]));
    let mut msg = icmp::Packet::new_unchecked(&mut out[OUTER..]);
    msg.set_msg_type(TYPE_TIME_EXCEEDED);
    msg.set_code(0);
    msg.set_data_word(0);
    msg.body_mut().copy_from_slice(&original[..quoted]);
    msg.fill_checksum(&from, &src);
    Some(out)
}

fn describe_ha(e: &ha::HaEvent) -> String {
    match e {
        ha::HaEvent::BindingCreated {
            home_address,
            care_of_address,
        } => format!("binding created {home_address} -> {care_of_address}"),
        ha::HaEvent::BindingUpdated {
            home_address,
            old,
            new,
        } => format!("binding updated {home_address}: {old} -> {new}"),
        ha::HaEvent::BindingDeleted { home_address } => {
            format!("binding deleted {home_address}")
        }
        ha::HaEvent::BindingExpired { home_address } => {
            format!("binding expired {home_address}")
        }
        ha::HaEvent::Rejected {
            home_address,
            status,
        } => format!(
            "BU for {home_address} rejected: status {}",
            u8::from(*status)
        ),
    }
}

fn describe_mn(e: &mn::MnEvent) -> String {
    match e {
        mn::MnEvent::CareOfAddressesChanged(v) => format!(
            "care-of addresses: {}",
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        mn::MnEvent::Registered {
            home_address,
            care_of_address,
            lifetime,
        } => format!(
            "registered {home_address} at {care_of_address} for {} s",
            lifetime.as_secs()
        ),
        mn::MnEvent::Deregistered { home_address } => format!("deregistered {home_address}"),
        mn::MnEvent::Rejected {
            home_address,
            status,
        } => format!("{home_address} rejected: status {}", u8::from(*status)),
        mn::MnEvent::HomeAgentUnreachable {
            home_address,
            home_agent,
        } => format!("home agent {home_agent} of {home_address} unreachable"),
        mn::MnEvent::HomeAgentReachable {
            home_address,
            home_agent,
        } => format!("home agent {home_agent} of {home_address} reachable"),
        mn::MnEvent::BindingExpired { home_address } => {
            format!("binding of {home_address} expired")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_exceeded_quotes_and_refuses() {
        let ha: Ipv6Addr = "2001:db8:e1::1".parse().unwrap();
        let cn: Ipv6Addr = "2001:db8:c1::1".parse().unwrap();
        let hoa: Ipv6Addr = "2001:db8:1001::100".parse().unwrap();
        let udp = packet::ipv6_packet(cn, hoa, 17, 1, &[&[7; 2000]]);
        let te = time_exceeded(ha, &udp).unwrap();
        assert_eq!(te.len(), 1280, "quote cut at the minimum MTU");
        assert_eq!(addrs_of(&te), Some((ha, cn)));
        assert_eq!(te[6], 58, "ICMPv6");
        assert_eq!((te[40], te[41]), (3, 0), "Time Exceeded, hop limit");
        assert_eq!(&te[48..88], &udp[..40], "the invoking packet's header");
        assert!(crate::mtu::icmp_checksum_ok(&te));
        // Never about an ICMPv6 error (RFC 4443 §2.4 e.1), nor to a multicast source.
        assert!(time_exceeded(ha, &te).is_none());
        let m = packet::ipv6_packet("ff02::1".parse().unwrap(), hoa, 17, 1, &[&[0; 8]]);
        assert!(time_exceeded(ha, &m).is_none());
        let echo = packet::ipv6_packet(cn, hoa, 58, 1, &[&[128, 0, 0, 0, 0, 1, 0, 1]]);
        assert!(
            time_exceeded(ha, &echo).is_some(),
            "an echo request gets one"
        );
    }

    #[test]
    fn ntp_is_after_1900_and_addresses_parse() {
        // 2026 in NTP seconds is about 3.97e9.
        assert!(ntp_now() >> 32 > 3_900_000_000);
        let p = packet::ipv6_packet(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            17,
            64,
            &[&[0; 8]],
        );
        assert_eq!(
            addrs_of(&p),
            Some((
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap()
            ))
        );
        assert_eq!(addrs_of(&p[..30]), None);
    }
}
