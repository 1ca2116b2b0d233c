//! The service loop: [`run`] owns the data plane, the address monitor, the daemon state
//! and the protocol core, and answers the control interface.
//!
//! # Shape (mini-redis)
//!
//! `main` parses the command line, loads the configuration, sets up logging and signals,
//! builds the [`Resources`] (pre-bound control listeners, the optional protocol core, the
//! reload channel) and calls [`run`] with a shutdown future. Tests do the same in a
//! network namespace with listeners on port 0 and a shutdown they trigger.
//!
//! # One owner, one loop
//!
//! Everything mutable (counters, locators, configuration, the core) belongs to the one
//! task running [`run`]; nothing is locked. Each turn of the loop waits for the first of:
//! shutdown, a batch from the TUN, a batch from the protocol-140 socket, an address or
//! link event, a control request, a new configuration, the core's timer, the end of an
//! `nft` read. It takes one `now` for the turn, hands the input over, then drains the
//! core (transmits, then events, then the next timeout; [`crate::core`]). Every future
//! in the `select!` is cancel safe: the batch reads complete in one poll once data is
//! there, the monitor and channels are documented so, and a `JoinHandle` can be polled
//! again after a turn that did not finish it.
//!
//! The two periodic `nft` reads — inbound visibility ([`crate::visibility`]) and the
//! trigger's flow counters ([`crate::trigger`]), 15–20 ms each — run on tokio's
//! blocking pool, one of each at a time; their results come back as turns of the loop.
//! When the core's deadline passes while visibility pairs are registered, the timeout
//! is handed over once a visibility read has finished (REAP hears of the peer's packets
//! that bypassed the daemon first).
//!
//! # Shutdown
//!
//! When the shutdown future resolves (SIGINT/SIGTERM in `main`): the control server is
//! told to stop and awaited (its sessions say goodbye), then the routing plumbing is torn
//! down (every per-peer route, then the loop-guard rule), then the TUN is closed, which
//! deletes it. Setup failures undo what was done so far the same way. A crash leaves the
//! rule only; the next start adopts and later removes it ([`crate::dataplane::routing`]).

use std::{
    collections::BTreeMap,
    future::Future,
    net::Ipv6Addr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, watch};
use xfrm_sys::{Event, Handle, MonitorOptions};

use crate::{
    config::{Config, DEFAULT_TUN_MTU, PAYLOAD_HEADER_LEN},
    control::{self, Command, CommandError, Listener, Reply, Request},
    core::{CoreEvent, ProtocolCore},
    dataplane::{self, Batch, PacketBuf, Plumbing, RawRecv, RawSend, Tun, raw::IPPROTO_SHIM6},
    mtu::{self, Mss, MssClamp},
    trigger::{self, AccountingOptions, TriggerPoller},
    visibility::{self, UlidPair, Visibility},
};

/// The MTUs of the links that may carry locators: up, not loopback, not the TUN, allowed
/// by `[interfaces]`.
fn locator_link_mtus<'a>(
    links: impl Iterator<Item = &'a xfrm_sys::Link> + 'a,
    config: &'a Config,
) -> impl Iterator<Item = u32> + 'a {
    links
        .filter(|l| {
            l.mtu > 0
                && l.is_up()
                && l.name != "lo"
                && l.name != config.tun.name
                && (config.interfaces.include.is_empty()
                    || config.interfaces.include.contains(&l.name))
                && !config.interfaces.exclude.contains(&l.name)
        })
        .map(|l| l.mtu)
}

/// How often the loop re-reads the locators' link MTUs from the monitor's view (an MTU
/// change alone raises no monitor event).
const PATH_MTU_REFRESH: Duration = Duration::from_secs(1);

/// An `nft` read running on tokio's blocking pool.
type NftJob<T> = tokio::task::JoinHandle<Result<T, trigger::nft::Error>>;
/// What such a read gives back (the outer error: it panicked or was cancelled).
type JobResult<T> = Result<Result<T, trigger::nft::Error>, tokio::task::JoinError>;

/// Why the service could not start or stopped on error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Setting up the data plane failed.
    #[error(transparent)]
    Dataplane(#[from] dataplane::Error),
    /// A netlink operation failed.
    #[error("{op}: {source}")]
    Netlink {
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: xfrm_sys::Error,
    },
    /// The MPTCP path manager could not start (`[mptcp] enabled`; the text names the
    /// sysctl fix).
    #[error(transparent)]
    Mptcp(#[from] crate::mptcp::driver::Error),
    /// The MipShim6 role (`[mip6] role`) could not be set up.
    #[error(transparent)]
    Mip(#[from] crate::mip::driver::Error),
    /// Binding a control listener failed.
    #[error("control interface: bind {what}: {source}")]
    ControlBind {
        /// The address or path.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Reading a device or socket failed for good.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
}

/// What [`run`] is given instead of making it: tests pre-bind listeners on port 0 and
/// pass their own reload channel.
pub struct Resources {
    /// Control listeners, already bound.
    pub control: Vec<Listener>,
    /// **The protocol core** (the seam of [`crate::core`]); `None` runs the shell alone:
    /// TUN traffic passes through unchanged, protocol-140 datagrams are dropped and
    /// counted, context commands answer "not available: protocol core not running".
    pub core: Option<Box<dyn ProtocolCore>>,
    /// New configurations (from `SIGHUP` in `main`), already validated.
    pub reload: Option<mpsc::Receiver<Config>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("control", &self.control)
            .field("core", &self.core.is_some())
            .finish_non_exhaustive()
    }
}

impl Resources {
    /// Binds the control listeners the configuration asks for; no core, no reload.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        let mut control = Vec::new();
        if let Some(addr) = config.control.listen {
            control.push(
                Listener::tcp(addr)
                    .await
                    .map_err(|source| Error::ControlBind {
                        what: addr.to_string(),
                        source,
                    })?,
            );
        }
        if let Some(path) = &config.control.unix_socket {
            control.push(
                Listener::unix(path.clone()).map_err(|source| Error::ControlBind {
                    what: path.display().to_string(),
                    source,
                })?,
            );
        }
        Ok(Self {
            control,
            core: None,
            reload: None,
        })
    }
}

/// Runs the daemon until `shutdown` resolves; then removes everything it created.
///
/// Must run inside the network namespace it is to configure, on a tokio runtime with I/O
/// and time. Needs `CAP_NET_ADMIN` and `CAP_NET_RAW`.
pub async fn run(
    config: Config,
    resources: Resources,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let Resources {
        control: listeners,
        core,
        reload,
    } = resources;
    let handle = Handle::new().map_err(|source| Error::Netlink {
        op: "open rtnetlink",
        source,
    })?;

    // Setup, in an order that makes undoing easy: the TUN first (closing it undoes it
    // and every route through it), then the rule (torn down explicitly).
    // The MPTCP path manager first: when its sysctls are wrong the daemon refuses to
    // start before it changed anything (docs/mptcp.md).
    let mptcp_driver = if config.mptcp.enabled {
        Some(
            crate::mptcp::driver::Driver::start(&config.mptcp)
                .await?
                .with_stall_timeout(Some(config.reap.send_timeout)),
        )
    } else {
        None
    };
    // MipShim6 (issue 7): its own TUN, routes and sockets (crate::mip); a role that
    // cannot start stops the daemon here. Dropped on a later setup failure, its device
    // goes with its routes and addresses; a rule left behind is replaced at next start.
    // `cga_care_of`: the care-of CGAs carry the identity's key (RFC 5533 §7.2); the
    // driver forms them, the locator set keeps only them on the care-of interfaces.
    let care_of_cgas =
        if config.mip6.role == crate::mip::Role::MobileNode && config.mip6.cga_care_of {
            Some(
                crate::mip::CareOfCgas::load(&config.identity.key_file)
                    .map_err(crate::mip::driver::Error::CareOfKey)?,
            )
        } else {
            None
        };
    let mip_driver = if config.mip6.role == crate::mip::Role::None {
        None
    } else {
        Some(
            crate::mip::driver::Driver::start(
                &config.mip6,
                config.routing.fwmark,
                &config.tun.name,
                care_of_cgas.clone(),
            )
            .await?,
        )
    };
    // MTU (architecture hazard 4, `crate::mtu`): the path carrying rewritten packets is
    // at most the smallest MTU of the locators' links; the TUN leaves 8 octets of it for
    // the payload header (RFC 5533 §5.1) unless `[tun] mtu` was set by the operator.
    let link_mtus: Vec<u32> = match handle.links().await {
        Ok(links) => locator_link_mtus(links.iter(), &config).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "list links for the TUN MTU");
            Vec::new()
        }
    };
    let tun_mtu = if config.tun.mtu == DEFAULT_TUN_MTU {
        mtu::tun_mtu(link_mtus.iter().copied()).unwrap_or(config.tun.mtu)
    } else {
        config.tun.mtu
    };
    let path_mtu = link_mtus
        .iter()
        .copied()
        .min()
        .unwrap_or(tun_mtu + PAYLOAD_HEADER_LEN);
    // A mobile node's Shim6 packets may ride the home agent's tunnel (crate::mip).
    let tun_mtu = crate::mip::shim6_tun_mtu(&config.mip6, tun_mtu);
    let tun = Tun::create_with(&handle, &config.tun.name, tun_mtu, config.tun.offload).await?;
    // TCP SYNs leaving through the TUN get an MSS that fits the route's MTU.
    let mss_clamp = match MssClamp::install(mtu::DEFAULT_TABLE, &config.tun.name, Mss::Route) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "MSS clamp unavailable (nftables)");
            None
        }
    };
    let rx = RawRecv::open(IPPROTO_SHIM6)?;
    let icmp = RawRecv::open_icmp6_errors()?;
    let mut tx = RawSend::open(config.routing.fwmark)?;
    if config.tun.packet_socket
        && let Err(e) = tx.enable_gso()
    {
        tracing::warn!(error = %e, "data packets go out through the raw socket only");
    }
    let plumbing = Plumbing::install(handle.clone(), tun.index(), &config.routing).await?;
    // Inbound visibility (architecture hazard 2): only a core with REAP needs it. Without
    // nftables the daemon still runs; REAP then moves each context off its ULID pair
    // once (docs/daemon.md "Inbound visibility").
    let visibility = match core {
        Some(_) => match Visibility::install(visibility::DEFAULT_TABLE) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "inbound visibility unavailable (nftables)");
                None
            }
        },
        None => None,
    };
    // Which flows get a context (issue 6 item 3): only with a core to establish them.
    // `TriggerPoller` installs the kernel accounting in `auto` mode only.
    let trigger = match core {
        Some(_) => match TriggerPoller::new(
            config.trigger.clone(),
            AccountingOptions::for_daemon(&config),
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "automatic trigger unavailable (nftables)");
                None
            }
        },
        None => None,
    };
    tracing::info!(
        tun = tun.name(),
        mtu = tun.mtu(),
        fwmark = format_args!("{:#x}", config.routing.fwmark),
        table = config.routing.table,
        core = core.is_some(),
        "shim6d running"
    );

    let server = control::Server::new((&config.control).into());
    let (stop_control, control_shutdown) = watch::channel(false);
    let (req_tx, req_rx) = mpsc::channel(16);
    let control_task = {
        let server = server.clone();
        tokio::spawn(async move { server.serve(listeners, req_tx, control_shutdown).await })
    };

    let mptcp = mptcp_driver.map(|driver| {
        let handle = driver.handle();
        let mut stop = stop_control.subscribe();
        let task = tokio::spawn(driver.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        (handle, task)
    });
    let (mptcp, mptcp_task) = match mptcp {
        Some((h, t)) => (Some(h), Some(t)),
        None => (None, None),
    };
    // MipShim6 (issue 7): the role's task stops with the control server.
    let (mip, mip_task) = match mip_driver {
        Some(driver) => {
            let handle = driver.handle();
            let mut stop = stop_control.subscribe();
            let task = tokio::spawn(driver.run(async move {
                let _ = stop.wait_for(|s| *s).await;
            }));
            (Some(handle), Some(task))
        }
        None => (None, None),
    };
    let mut daemon = Daemon {
        started: Instant::now(),
        config,
        core,
        stats: dataplane::Stats::default(),
        server,
        plumbing,
        monitor: None,
        visibility,
        visibility_due: Instant::now(),
        trigger,
        path_mtu,
        mptcp,
        mip,
        care_of_cgas,
    };
    let result = daemon
        .main_loop(&handle, &tun, &rx, &icmp, &tx, req_rx, reload, shutdown)
        .await;

    // Teardown, whatever the loop's outcome: control first (no request may arrive into
    // a half-dismantled daemon), then routes and rule, then the TUN.
    let _ = stop_control.send(true);
    let _ = control_task.await;
    if let Some(t) = mptcp_task {
        match t.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "MPTCP path manager stopped on error"),
            Err(e) => tracing::warn!(error = %e, "MPTCP path manager task"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(t) = mip_task {
        let _ = t.await;
    }
    let errors = daemon.plumbing.teardown().await;
    if let Some(c) = mss_clamp
        && let Err(e) = c.delete()
    {
        tracing::warn!(error = %e, "delete the MSS clamp table");
    }
    if let Some(t) = daemon.trigger.take()
        && let Err(e) = t.shutdown()
    {
        tracing::warn!(error = %e, "delete the trigger table");
    }
    if let Some(v) = daemon.visibility.take()
        && let Err(e) = v.delete()
    {
        tracing::warn!(error = %e, "delete the inbound-visibility table");
    }
    drop(tun);
    if errors.is_empty() {
        tracing::info!("shim6d stopped; routes, rule and TUN removed");
    }
    result
}

/// The daemon state owned by the loop.
struct Daemon {
    started: Instant,
    config: Config,
    core: Option<Box<dyn ProtocolCore>>,
    stats: dataplane::Stats,
    server: control::Server,
    plumbing: Plumbing,
    monitor: Option<xfrm_sys::Monitor>,
    /// The kernel's record of inbound traffic that bypasses the daemon (hazard 2).
    visibility: Option<Visibility>,
    /// When to poll [`Daemon::visibility`] next.
    visibility_due: Instant,
    /// The flow-accounting trigger (with a core).
    trigger: Option<TriggerPoller>,
    /// The smallest MTU of the locators' links (Packet Too Big above it).
    path_mtu: u32,
    /// The MPTCP path manager's inputs (`[mptcp] enabled`).
    mptcp: Option<crate::mptcp::driver::Handle>,
    /// The MipShim6 driver (`[mip6] role`).
    mip: Option<crate::mip::driver::Handle6>,
    /// `[mip6] cga_care_of`: on the care-of interfaces only these CGAs are locators.
    care_of_cgas: Option<crate::mip::CareOfCgas>,
}

impl Daemon {
    #[allow(clippy::too_many_arguments)]
    async fn main_loop(
        &mut self,
        handle: &Handle,
        tun: &Tun,
        rx: &RawRecv,
        icmp: &RawRecv,
        tx: &RawSend,
        mut requests: mpsc::Receiver<Request>,
        mut reload: Option<mpsc::Receiver<Config>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let mtu = tun.mtu() as usize;
        // With offload a batch holds at least one TCP super-segment's packets, and
        // inbound batches that large give the TUN's coalescing a whole window to merge.
        let batch = tun.batch_capacity(self.config.tun.batch);
        let mut out_batch = Batch::new(batch, mtu);
        // Inbound datagrams carry the payload header on top of a full-size packet.
        let mut in_batch = Batch::new(batch, mtu + 8);
        let mut scratch = PacketBuf::new(mtu + 8);
        // ICMPv6 errors quote at most 1280 octets of the invoking packet (RFC 4443 §2.4).
        let mut icmp_batch = Batch::new(8, mtu + 8);
        self.monitor = Some(
            handle
                .monitor(MonitorOptions::default())
                .await
                .map_err(|source| Error::Netlink {
                    op: "open the address monitor",
                    source,
                })?,
        );
        self.push_locators(Instant::now());
        // The nftables reads of inbound visibility and of the trigger block for 15–20 ms
        // each (an `nft` process): they run on tokio's blocking pool, at most one of
        // each kind at a time, and the loop keeps moving packets meanwhile. Their
        // results come back through the two job arms below.
        let mut vis_job: Option<NftJob<serde_json::Value>> = None;
        // The core's deadline passed while visibility pairs are registered: its
        // timeout waits for `vis_job` (REAP must hear of the peer's packets first).
        let mut timeout_waits = false;
        let mut trig_job: Option<NftJob<Vec<trigger::FlowSample>>> = None;
        let mut mtu_tick = tokio::time::interval(PATH_MTU_REFRESH);
        mtu_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trigger_tick = tokio::time::interval(trigger::POLL_INTERVAL);
        trigger_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let deadline = self.core.as_mut().and_then(|c| c.poll_timeout());
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            // Inbound visibility is polled on its own clock while pairs are registered
            // (visibility.rs "How to wire it", step 3), and again before a timeout.
            let vis_due = self
                .visibility
                .as_ref()
                .filter(|v| !v.is_empty())
                .map(|_| self.visibility_due);
            let vis_sleep = async {
                match vis_due {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let monitor = self.monitor.as_mut().expect("opened above");
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("shutdown requested");
                    return Ok(());
                }
                r = tun.recv_batch(&mut out_batch) => {
                    r.map_err(|source| Error::Io { op: "read the TUN", source })?;
                    let now = Instant::now();
                    self.stats
                        .outbound(&mut out_batch, self.core.as_deref_mut(), tx, tun, self.path_mtu, now)
                        .await;
                }
                r = rx.recv_batch(&mut in_batch) => {
                    r.map_err(|source| Error::Io { op: "read the protocol-140 socket", source })?;
                    let now = Instant::now();
                    self.stats.inbound(&mut in_batch, self.core.as_deref_mut(), tun, now).await;
                }
                r = icmp.recv_batch(&mut icmp_batch) => {
                    r.map_err(|source| Error::Io { op: "read the ICMPv6 socket", source })?;
                    let now = Instant::now();
                    self.stats.inbound_icmp(&mut icmp_batch, self.core.as_deref_mut(), tun, now).await;
                }
                _ = mtu_tick.tick() => self.refresh_path_mtu(),
                ev = monitor.next() => match ev {
                    Ok(ev) => self.on_link_event(&ev, Instant::now()),
                    // The monitor retries its resync on the next call; a failing socket
                    // would spin, so pause a little.
                    Err(e) => {
                        tracing::warn!(error = %e, "address monitor");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = vis_sleep, if vis_job.is_none() => {
                    vis_job = self.start_visibility_query(Instant::now());
                }
                r = async { vis_job.as_mut().expect("guarded by is_some").await }, if vis_job.is_some() => {
                    vis_job = None;
                    let now = Instant::now();
                    self.visibility_done(r, now);
                    if std::mem::take(&mut timeout_waits) {
                        self.handle_due_timeout(now);
                    }
                }
                _ = trigger_tick.tick(), if trig_job.is_none() && self.trigger.as_ref().is_some_and(|t| t.accounting().is_some()) => {
                    trig_job = self
                        .trigger
                        .as_ref()
                        .and_then(TriggerPoller::query)
                        .map(|q| tokio::task::spawn_blocking(move || q.run()));
                }
                r = async { trig_job.as_mut().expect("guarded by is_some").await }, if trig_job.is_some() => {
                    trig_job = None;
                    self.trigger_done(r, Instant::now());
                }
                Some(req) = requests.recv() => {
                    let answer = if req.command == Command::Mptcp {
                        self.mptcp_reply().await
                    } else if matches!(req.command, Command::Bindings | Command::Bul) {
                        self.mip_reply(&req.command).await
                    } else {
                        self.command(&req.command, Instant::now())
                    };
                    // The client may be gone: nothing to do then.
                    let _ = req.reply.send(answer);
                }
                Some(new) = async {
                    match reload.as_mut() {
                        Some(r) => r.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.reload(new),
                () = sleep, if !timeout_waits => {
                    // Handle the timeout only when the clock says so (style.md "Time").
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        // REAP's Send timer only ever fires from here: first report the
                        // peer's packets that bypassed the daemon since the last poll
                        // (architecture hazard 2), or a working ULID pair would be
                        // declared failed. With pairs registered the timeout waits for
                        // a visibility read (the one under way, or a new one).
                        if vis_job.is_none() {
                            vis_job = self.start_visibility_query(now);
                        }
                        timeout_waits = vis_job.is_some();
                        if !timeout_waits {
                            self.handle_due_timeout(now);
                        }
                    }
                }
            }
            self.drain_core(tx, &mut scratch).await;
        }
    }

    /// The `bindings` / `bul` commands: the MipShim6 driver's snapshot.
    async fn mip_reply(&self, cmd: &Command) -> Result<Reply, CommandError> {
        use crate::mip::driver::Which;
        let Some(m) = &self.mip else {
            return Err(CommandError::Failed(format!(
                "MipShim6 not running ([mip6] role = \"{}\")",
                self.config.mip6.role.as_str()
            )));
        };
        let which = if *cmd == Command::Bindings {
            Which::Bindings
        } else {
            Which::Bul
        };
        m.snapshot(which).await.map_err(CommandError::Failed)
    }

    /// The `mptcp` command: the path manager's status snapshot.
    async fn mptcp_reply(&self) -> Result<Reply, CommandError> {
        let Some(m) = &self.mptcp else {
            return Err(CommandError::Failed(
                "MPTCP path manager not running ([mptcp] enabled = false)".into(),
            ));
        };
        let Some(status) = m.status().await else {
            return Err(CommandError::Failed("MPTCP path manager stopped".into()));
        };
        let json = serde_json::to_value(&status)
            .map_err(|e| CommandError::Failed(format!("mptcp status: {e}")))?;
        Ok(Reply::new(status.to_string(), json))
    }

    /// Establishes a context for each pair the trigger picked from the flow counters
    /// a [`trigger::FlowQuery`] read (LinShim6's heuristic and the policy rules; the
    /// decider never initiates in `responder-only` or `manual` mode, and then no table
    /// is read).
    fn trigger_done(&mut self, read: JobResult<Vec<trigger::FlowSample>>, now: Instant) {
        let Some(t) = self.trigger.as_mut() else {
            return;
        };
        let flows = match read {
            Ok(Ok(flows)) => flows,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "trigger: read the flow counters");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "trigger: the flow-counter read did not finish");
                return;
            }
        };
        for d in t.observe(now, &flows) {
            tracing::info!(
                peer = %d.pair.peer,
                local = %d.pair.local,
                reason = ?d.reason,
                proto = d.flow.proto,
                port = ?d.flow.port,
                "trigger: establishing a context"
            );
            let r = match self.core.as_mut() {
                Some(c) => c.command(now, &Command::Establish(d.pair.peer)),
                None => Err(CommandError::NoProtocolCore),
            };
            if let Err(e) = r {
                tracing::info!(peer = %d.pair.peer, error = %e, "trigger: establish refused");
                if let Some(t) = self.trigger.as_mut() {
                    t.establish_failed(now, d.pair);
                }
            }
        }
    }

    /// Starts reading which registered ULID pairs received packets since the last read
    /// (two `nft` runs on the blocking pool), and schedules the next periodic one.
    /// `None`: nothing to read (no visibility, no core, no pair registered).
    fn start_visibility_query(&mut self, now: Instant) -> Option<NftJob<serde_json::Value>> {
        let (Some(v), Some(_)) = (self.visibility.as_ref(), self.core.as_ref()) else {
            return None;
        };
        self.visibility_due = now + visibility::poll_interval(self.config.reap.send_timeout);
        if v.is_empty() {
            return None;
        }
        let q = v.query();
        Some(tokio::task::spawn_blocking(move || q.run()))
    }

    /// A visibility read finished: tells the core about each active pair (RFC 5534
    /// §4.1: any packet from the peer counts as received).
    fn visibility_done(&mut self, read: JobResult<serde_json::Value>, now: Instant) {
        let (Some(v), Some(core)) = (self.visibility.as_mut(), self.core.as_mut()) else {
            return;
        };
        let doc = match read {
            Ok(Ok(doc)) => doc,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "inbound visibility poll");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "inbound visibility poll did not finish");
                return;
            }
        };
        match v.update(&doc) {
            Ok(active) => {
                for p in active {
                    core.peer_activity(now, p.local, p.peer);
                }
            }
            Err(e) => tracing::warn!(error = %e, "inbound visibility poll"),
        }
    }

    /// Hands the core its timeout if its deadline has passed (it may have moved while
    /// the timeout waited for a visibility read).
    fn handle_due_timeout(&mut self, now: Instant) {
        if let Some(c) = self.core.as_mut()
            && c.poll_timeout().is_some_and(|d| now >= d)
        {
            c.handle_timeout(now);
        }
    }

    /// After any input to the core: transmits, then routing events ([`crate::core`] docs).
    async fn drain_core(&mut self, tx: &RawSend, scratch: &mut PacketBuf) {
        let Some(core) = self.core.as_mut() else {
            return;
        };
        let now = Instant::now();
        while core.poll_transmit(now, scratch) {
            match tx.send(scratch.packet()).await {
                Ok(()) => {
                    self.stats.raw_tx_packets += 1;
                    self.stats.raw_tx_bytes += scratch.packet().len() as u64;
                }
                Err(e) => {
                    *self
                        .stats
                        .drops
                        .entry(dataplane::drop_reason::SEND_FAILED)
                        .or_default() += 1;
                    tracing::debug!(error = %e, "core transmit failed");
                }
            }
        }
        // Contexts that came up in this turn, registered for inbound visibility in one
        // `nft` run after the loop: one run per context blocked the loop ~5 ms each, so
        // a burst of handshakes overflowed the protocol-140 socket, and the kernel
        // answers what a full raw socket cannot take with Parameter Problem, which
        // initiators read as NO-SUPPORT (docs/bench/daemon-contexts.md).
        let mut came_up: Vec<UlidPair> = Vec::new();
        while let Some(ev) = core.poll_event() {
            let r = match ev {
                CoreEvent::RouteAdd(peer) => {
                    // Flows older than the context (a MipShim6 flow that started through
                    // the home agent, one the trigger picked) move onto it.
                    match self.plumbing.add_peer(peer).await {
                        Ok(()) => self.plumbing.flush_route_caches().await,
                        Err(e) => Err(e),
                    }
                }
                CoreEvent::RouteRemove(peer) => self.plumbing.remove_peer(peer).await,
                // The TCP re-send (hazard 6) already left in `poll_transmit` above: the
                // adapter queues it when it applies the endpoint's path change
                // (`crate::resend`). Logged by the core.
                CoreEvent::PathChanged { .. } => Ok(()),
                // The MPTCP path manager (mptcp/mod.rs "How to wire it", step 2).
                CoreEvent::PeerLocators(view) => {
                    if let Some(m) = &self.mptcp {
                        m.peer(view);
                    }
                    Ok(())
                }
                CoreEvent::PathFailed { ulid_peer, pair } => {
                    if let Some(m) = &self.mptcp {
                        m.path_failed(ulid_peer, pair);
                    }
                    Ok(())
                }
                CoreEvent::PathUsable { ulid_peer, pair } => {
                    if let Some(m) = &self.mptcp {
                        m.path_usable(ulid_peer, pair);
                    }
                    Ok(())
                }
                CoreEvent::ContextUp {
                    ulid_local,
                    ulid_peer,
                } => {
                    // MipShim6 route optimisation (issue 7): off the home agent's tunnel.
                    for hoa in crate::mip::route_optimised_homes(&self.config.mip6) {
                        core.local_address_down(now, hoa);
                    }
                    if let Some(t) = self.trigger.as_mut() {
                        t.context_up(UlidPair::new(ulid_local, ulid_peer));
                    }
                    if self.visibility.is_some() {
                        came_up.push(UlidPair::new(ulid_local, ulid_peer));
                    }
                    Ok(())
                }
                CoreEvent::EstablishFailed {
                    ulid_local,
                    ulid_peer,
                } => {
                    if let Some(t) = self.trigger.as_mut() {
                        t.establish_failed(now, UlidPair::new(ulid_local, ulid_peer));
                    }
                    if let Some(m) = &self.mptcp {
                        m.remove_peer(ulid_peer);
                    }
                    Ok(())
                }
                CoreEvent::ContextDown {
                    ulid_local,
                    ulid_peer,
                } => {
                    if let Some(t) = self.trigger.as_mut() {
                        t.context_down(UlidPair::new(ulid_local, ulid_peer));
                    }
                    if let Some(m) = &self.mptcp {
                        m.remove_peer(ulid_peer);
                    }
                    let pair = UlidPair::new(ulid_local, ulid_peer);
                    let queued = came_up.len();
                    came_up.retain(|p| *p != pair);
                    if came_up.len() == queued
                        && let Some(v) = self.visibility.as_mut()
                        && let Err(e) = v.unregister(pair)
                    {
                        tracing::warn!(error = %e, "inbound visibility: unregister");
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "routing change asked by the core");
            }
        }
        if !came_up.is_empty()
            && let Some(v) = self.visibility.as_mut()
            && let Err(e) = v.register_all(&came_up)
        {
            tracing::warn!(error = %e, "inbound visibility: register");
        }
    }

    /// Follows the smallest MTU of the locators' links (a link narrowed at run time):
    /// rewritten packets above it are answered with a Packet Too Big into the TUN
    /// ([`dataplane::Stats::outbound`]), so the kernel lowers its path MTU towards the
    /// peer instead of the raw socket failing with EMSGSIZE (RFC 8201 §4, RFC 5533
    /// §5.1). The TUN's own MTU stays as set at start.
    fn refresh_path_mtu(&mut self) {
        let Some(m) = self.monitor.as_ref() else {
            return;
        };
        let Some(now) = locator_link_mtus(m.links(), &self.config).min() else {
            return;
        };
        if now != self.path_mtu {
            tracing::info!(
                from = self.path_mtu,
                to = now,
                "smallest MTU of the locators' links changed"
            );
            self.path_mtu = now;
        }
    }

    fn on_link_event(&mut self, ev: &Event, now: Instant) {
        tracing::debug!(?ev, "link/address event");
        self.refresh_path_mtu();
        if matches!(
            ev,
            Event::AddressAdded(_)
                | Event::AddressRemoved(_)
                | Event::AddressChanged { .. }
                | Event::LinkUp(_)
                | Event::LinkDown(_)
                | Event::Resynced
        ) {
            self.push_locators(now);
        }
    }

    /// Gives the core the current locator set (RFC 5533 §10.1: local locator changes
    /// become updates to every peer; the core decides).
    fn push_locators(&mut self, now: Instant) {
        // Only usable ones (RFC 5534 §3.1: an address on an interface that is down is
        // not locally operational; the core then sees it leave, a trusted failure hint).
        let locators: Vec<Ipv6Addr> = self
            .locators()
            .into_iter()
            .filter(|l| l.usable)
            .map(|l| l.address)
            .collect();
        if let Some(core) = self.core.as_mut() {
            core.local_locators(now, &locators);
            // MipShim6 route optimisation (issue 7): the home addresses stay ULIDs but
            // carry no Shim6 traffic while a care-of pair works.
            for hoa in crate::mip::route_optimised_homes(&self.config.mip6) {
                core.local_address_down(now, hoa);
            }
        }
    }

    /// The local locators: the fixed list if configured, else the available global
    /// addresses (RFC 5534 §3.1) of the allowed, running interfaces.
    fn locators(&self) -> Vec<LocatorView> {
        let Some(m) = self.monitor.as_ref() else {
            return Vec::new();
        };
        let names: BTreeMap<u32, (&str, bool)> = m
            .links()
            .map(|l| (l.index, (l.name.as_str(), l.is_running())))
            .collect();
        let ifs = &self.config.interfaces;
        let allowed = |name: &str| {
            name != "lo"
                && name != self.config.tun.name
                && (ifs.include.is_empty() || ifs.include.iter().any(|i| i == name))
                && !ifs.exclude.iter().any(|i| i == name)
        };
        if !self.config.identity.locators.is_empty() {
            return self
                .config
                .identity
                .locators
                .iter()
                .map(|&address| {
                    let found = m.addresses().find(|a| a.address == address);
                    LocatorView {
                        address,
                        interface: found
                            .and_then(|a| names.get(&a.index))
                            .map_or("-", |(n, _)| *n)
                            .to_owned(),
                        usable: found.is_some_and(|a| {
                            a.is_available() && names.get(&a.index).is_some_and(|(_, r)| *r)
                        }),
                        fixed: true,
                    }
                })
                .collect();
        }
        // `[mip6] cga_care_of`: a visited network's own address only brings its prefix;
        // the CGA the driver forms there is the locator (signed, RFC 5533 §7.2).
        let mip6 = &self.config.mip6;
        let care_of_only = |name: &str, a: Ipv6Addr| {
            self.care_of_cgas.as_ref().is_none_or(|c| {
                name == mip6.tun
                    || (!mip6.care_of_interfaces.is_empty()
                        && !mip6.care_of_interfaces.iter().any(|i| i == name))
                    || c.is_ours(a)
            })
        };
        m.available_addresses()
            .filter_map(|a| {
                let (name, running) = names.get(&a.index)?;
                (allowed(name) && care_of_only(name, a.address)).then(|| LocatorView {
                    address: a.address,
                    interface: (*name).to_owned(),
                    usable: *running,
                    fixed: false,
                })
            })
            .collect()
    }

    fn reload(&mut self, new: Config) {
        let restart = self.config.restart_needed(&new);
        if !restart.is_empty() {
            tracing::warn!(
                sections = ?restart,
                "configuration reloaded; these changes take effect at the next restart"
            );
        }
        // What applies now: trigger policy, REAP timers, control limits, log level (the
        // last one in main, which owns the subscriber).
        self.config.trigger = new.trigger.clone();
        if let Some(t) = self.trigger.as_mut()
            && let Err(e) = t.reconfigure(new.trigger.clone())
        {
            tracing::warn!(error = %e, "reload: trigger accounting");
        }
        if self.config.reap.send_timeout != new.reap.send_timeout
            && let Some(core) = self.core.as_mut()
            && let Err(e) = core.command(
                Instant::now(),
                &Command::SetSendTimeout(new.reap.send_timeout),
            )
        {
            tracing::warn!(error = %e, "reload: the core kept its send timeout");
        }
        self.config.reap = new.reap;
        if let Some(m) = &self.mptcp {
            m.set_policy(new.mptcp.policy_config());
        }
        self.config.mptcp = new.mptcp.clone();
        self.config.control.max_clients = new.control.max_clients;
        self.config.control.max_line = new.control.max_line;
        self.config.log = new.log.clone();
        self.server.set_limits((&self.config.control).into());
        tracing::info!("configuration reloaded");
    }

    /// Answers a control command (help and quit never come here).
    fn command(&mut self, cmd: &Command, now: Instant) -> Result<Reply, CommandError> {
        match cmd {
            Command::Stats => Ok(self.stats_reply(now)),
            Command::Locators => Ok(self.locators_reply(now)),
            Command::Params => Ok(self.params_reply(now)),
            Command::SetSendTimeout(d) => {
                // The core first: if it refuses, nothing changes.
                if let Some(core) = self.core.as_mut() {
                    core.command(now, cmd)?;
                }
                self.config.reap.send_timeout = *d;
                Ok(Reply::new(
                    format!(
                        "tsend {} s (for contexts made from now on)",
                        d.as_secs_f64()
                    ),
                    serde_json::json!({ "send_timeout_s": d.as_secs_f64() }),
                ))
            }
            Command::Ls
            | Command::Cat(_)
            | Command::Rm(_)
            | Command::Establish(_)
            | Command::Explore(_) => match self.core.as_mut() {
                Some(core) => core.command(now, cmd),
                None => Err(CommandError::NoProtocolCore),
            },
            Command::Help(_) | Command::Quit => {
                Err(CommandError::Failed("answered by the session".into()))
            }
            Command::Mptcp | Command::Bindings | Command::Bul => {
                Err(CommandError::Failed("answered by the loop".into()))
            }
        }
    }

    /// The core's part of a merged answer, or why there is none.
    fn core_part(&mut self, cmd: &Command, now: Instant) -> serde_json::Value {
        match self.core.as_mut() {
            None => serde_json::Value::String(CommandError::NoProtocolCore.to_string()),
            Some(core) => match core.command(now, cmd) {
                Ok(r) => r.json,
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            },
        }
    }

    fn stats_reply(&mut self, now: Instant) -> Reply {
        let c = self.server.stats();
        let control = serde_json::json!({
            "sessions": c.sessions.load(Ordering::Relaxed),
            "refused": c.refused.load(Ordering::Relaxed),
            "commands": c.commands.load(Ordering::Relaxed),
            "bad_lines": c.bad_lines.load(Ordering::Relaxed),
            "active": self.server.active(),
        });
        let monitor = self.monitor.as_ref().map(|m| m.stats()).unwrap_or_default();
        let monitor = serde_json::json!({
            "messages": monitor.messages,
            "overruns": monitor.overruns,
            "decode_errors": monitor.decode_errors,
            "resyncs": monitor.resyncs,
        });
        let core = self.core_part(&Command::Stats, now);
        let json = serde_json::json!({
            "uptime_s": self.started.elapsed().as_secs(),
            "dataplane": self.stats.to_json(),
            "control": control,
            "monitor": monitor,
            "core": core,
        });
        let mut text = format!("uptime {} s\n", self.started.elapsed().as_secs());
        flatten("", &json["dataplane"], &mut text);
        flatten("control.", &json["control"], &mut text);
        flatten("monitor.", &json["monitor"], &mut text);
        flatten("core.", &json["core"], &mut text);
        Reply::new(text.trim_end().to_owned(), json)
    }

    fn locators_reply(&mut self, now: Instant) -> Reply {
        let locs = self.locators();
        // The core's view: which of them it advertises as Shim6 locators.
        let core = self.core_part(&Command::Locators, now);
        let in_core = |a: &Ipv6Addr| {
            core["shim6_locators"]
                .as_array()
                .map(|v| v.iter().any(|x| x.as_str() == Some(&a.to_string())))
        };
        let mut text = String::new();
        for l in &locs {
            text.push_str(&format!(
                "{:<40} {:<12} {}{}{}\n",
                l.address,
                l.interface,
                if l.usable { "usable" } else { "unusable" },
                if l.fixed { " (fixed)" } else { "" },
                match in_core(&l.address) {
                    Some(true) => " shim6",
                    _ => "",
                }
            ));
        }
        if locs.is_empty() {
            text.push_str("no usable global addresses");
        }
        let json = serde_json::Value::Array(
            locs.iter()
                .map(|l| {
                    serde_json::json!({
                        "address": l.address.to_string(),
                        "interface": l.interface,
                        "usable": l.usable,
                        "fixed": l.fixed,
                        // Advertised to peers (None: no core running).
                        "shim6": in_core(&l.address),
                    })
                })
                .collect(),
        );
        Reply::new(text.trim_end().to_owned(), json)
    }

    fn params_reply(&mut self, now: Instant) -> Reply {
        let c = &self.config;
        let json = serde_json::json!({
            "identity": {
                "mode": c.identity.mode.as_str(),
                "params_file": c.identity.params_file.display().to_string(),
                "ulids": c.identity.ulids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            },
            "reap": {
                "send_timeout_s": c.reap.send_timeout.as_secs_f64(),
                "initial_probe_timeout_s": c.reap.initial_probe_timeout.as_secs_f64(),
                "max_probe_timeout_s": c.reap.max_probe_timeout.as_secs_f64(),
                "burst": c.reap.burst,
                "orthogonal_first": c.reap.orthogonal_first,
            },
            "trigger": {
                "mode": c.trigger.mode.as_str(),
                "bytes": c.trigger.bytes,
                "seconds": c.trigger.seconds.as_secs_f64(),
                "rules": c.trigger.rules.iter().map(|r| serde_json::json!({
                    "prefix": r.prefix.to_string(),
                    "port": r.port,
                    "protocol": r.protocol.as_str(),
                    "action": r.action.as_str(),
                })).collect::<Vec<_>>(),
            },
            "tun": {
                "name": c.tun.name,
                "mtu": c.tun.mtu,
                "offload": c.tun.offload,
                "packet_socket": c.tun.packet_socket,
            },
            "routing": {
                "fwmark": c.routing.fwmark,
                "table": c.routing.table,
                "rule_priority": c.routing.rule_priority,
                "peers": self.plumbing.peers().map(|p| p.to_string()).collect::<Vec<_>>(),
            },
        });
        let mut json = json;
        json["core"] = self.core_part(&Command::Params, now);
        let mut text = String::new();
        flatten("", &json, &mut text);
        Reply::new(text.trim_end().to_owned(), json)
    }
}

/// One local locator as `locators` shows it.
struct LocatorView {
    address: Ipv6Addr,
    interface: String,
    usable: bool,
    fixed: bool,
}

/// `a.b.c value` lines from a JSON tree, for the text form of replies.
pub(crate) fn flatten(prefix: &str, v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}{k}."), v, out);
            }
        }
        other => {
            let key = prefix.trim_end_matches('.');
            let value = match other {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            out.push_str(&format!("{key} {value}\n"));
        }
    }
}
