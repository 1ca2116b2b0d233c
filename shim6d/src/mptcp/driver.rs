//! The driver: the [`Engine`] run over the kernel's `mptcp_pm` family on tokio.
//!
//! # What it owns
//!
//! All in the network namespace of the thread that calls [`Driver::start`] (the
//! daemon's; a test's namespace thread from `xfrm_sys::netns::spawn`):
//! - an [`EventStream`] (the `mptcp_pm_events` group, resynchronised from `sock_diag`
//!   after lost events),
//! - a [`Manager`] (the commands, the per-connection address-ID book, the failure
//!   recipe),
//! - a [`Sampler`] (bytes carried per connection, every `sample_interval`),
//! - the engine, and the receiving end of the [`Handle`]'s channel.
//!
//! # The loop
//!
//! One task, one `select!` per turn over: the next kernel event, the next [`Input`],
//! the engine's timeout, the sampling tick and shutdown. Every arm is cancel safe
//! (`EventStream::next` is documented so; `mpsc::Receiver::recv` and `sleep_until` are).
//! After each turn the engine's actions are carried out **in order, one at a time**
//! (the failure recipe is two commands whose order matters); kernel events arriving
//! meanwhile wait in the event socket's 4 MiB buffer, and if it overflows the stream
//! resynchronises. A refused command is reported back to the engine
//! ([`Engine::command_failed`]), which backs off on that pair; `"did not match address
//! and id"` first makes the manager adopt the kernel's ID list (a restarted daemon) and
//! retries once. After a resynchronisation ([`Event::Resynced`]) the manager adopts the
//! kernel's lists of all our connections, since lost events may have freed IDs.
//!
//! # Start-up
//!
//! 1. The `net.mptcp` settings are checked ([`super::sysctl`]); wrong ones are set when
//!    `set_sysctls`, otherwise [`Driver::start`] refuses with [`Error::Sysctl`] naming
//!    the commands to run.
//! 2. The event stream opens and takes a first snapshot: connections that already exist
//!    (a restarted daemon) are fed to the engine as `ESTABLISHED` and
//!    `SUB_ESTABLISHED`, and the manager adopts their ID lists from the kernel.

use std::{
    fmt,
    future::Future,
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use reap::Pair;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use xfrm_sys::mptcp::{Event, EventOptions, EventStream, Manager, Pm, Refusal};

use super::{
    MptcpConfig,
    bytes::Sampler,
    policy::{Action, Engine, EngineStatus, PeerView, PolicyConfig},
    sysctl::{self, Settings},
};

/// Why the driver could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `net.mptcp` settings are wrong (each entry names the fix).
    #[error("MPTCP path manager not started: {}", .0.join("; "))]
    Sysctl(Vec<String>),
    /// A netlink operation failed.
    #[error("MPTCP path manager: {0}")]
    Netlink(#[from] xfrm_sys::Error),
    /// The `sock_diag` byte sampler could not be opened.
    #[error("MPTCP path manager: open sock_diag sampler: {0}")]
    Sampler(std::io::Error),
}

/// What the service loop sends the driver (through [`Handle`]).
#[derive(Debug)]
pub enum Input {
    /// [`Engine::set_peer`].
    Peer(PeerView),
    /// [`Engine::remove_peer`].
    RemovePeer(Ipv6Addr),
    /// [`Engine::path_failed`].
    PathFailed(Ipv6Addr, Pair),
    /// [`Engine::path_usable`].
    PathUsable(Ipv6Addr, Pair),
    /// [`Engine::set_config`].
    SetPolicy(PolicyConfig),
    /// A [`Status`] snapshot, answered on the channel.
    Status(oneshot::Sender<Status>),
}

/// The service loop's side of the driver: cheap to clone; every method returns `false`
/// (or `None`) once the driver stopped.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Input>,
}

impl Handle {
    fn send(&self, i: Input) -> bool {
        self.tx.send(i).is_ok()
    }

    /// A Shim6 peer's verified view (module docs of [`super`], wiring step 2).
    pub fn peer(&self, view: PeerView) -> bool {
        self.send(Input::Peer(view))
    }

    /// The peer's context is gone.
    pub fn remove_peer(&self, ulid_peer: Ipv6Addr) -> bool {
        self.send(Input::RemovePeer(ulid_peer))
    }

    /// REAP: `pair` of `ulid_peer` failed.
    pub fn path_failed(&self, ulid_peer: Ipv6Addr, pair: Pair) -> bool {
        self.send(Input::PathFailed(ulid_peer, pair))
    }

    /// REAP: `pair` of `ulid_peer` works again.
    pub fn path_usable(&self, ulid_peer: Ipv6Addr, pair: Pair) -> bool {
        self.send(Input::PathUsable(ulid_peer, pair))
    }

    /// A new policy (reload).
    pub fn set_policy(&self, config: PolicyConfig) -> bool {
        self.send(Input::SetPolicy(config))
    }

    /// A snapshot for the `mptcp` control command.
    pub async fn status(&self) -> Option<Status> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Input::Status(tx)) {
            return None;
        }
        rx.await.ok()
    }
}

/// Counters of the driver.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug, Serialize)]
pub struct Counters {
    /// Kernel events handled (synthetic ones included).
    pub events: u64,
    /// Resynchronisations after lost events.
    pub resyncs: u64,
    /// Commands sent.
    pub commands: u64,
    /// Commands the kernel refused (or that failed otherwise).
    pub command_errors: u64,
    /// Byte samples taken.
    pub samples: u64,
}

/// What the `mptcp` control command shows.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Status {
    /// The `net.mptcp` settings found at start.
    pub sysctls: Settings,
    /// Connections, subflows, peers, policy and the last decisions.
    #[serde(flatten)]
    pub engine: EngineStatus,
    /// Counters.
    pub counters: Counters,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.engine;
        writeln!(
            f,
            "policy {} (max {} subflows per connection)",
            e.policy_text, e.max_subflows
        )?;
        writeln!(f, "sysctls {}", self.sysctls)?;
        let c = &self.counters;
        writeln!(
            f,
            "events {} resyncs {} commands {} errors {} samples {}",
            c.events, c.resyncs, c.commands, c.command_errors, c.samples
        )?;
        writeln!(f, "peers {}", e.peers.len())?;
        for p in &e.peers {
            let list = |v: &[Ipv6Addr]| {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            write!(
                f,
                "  {} verified [{}] ours [{}]",
                p.ulid_peer,
                list(&p.verified_remotes),
                list(&p.locals)
            )?;
            for (l, r) in &p.dead_pairs {
                write!(f, " dead ({l}, {r})")?;
            }
            writeln!(f)?;
        }
        writeln!(f, "connections {}", e.connections.len())?;
        for c in &e.connections {
            writeln!(
                f,
                "  {} {} -> {}{}{} bytes {} peer {}",
                c.token,
                c.local,
                c.remote,
                if c.server_side { " server-side" } else { "" },
                if c.established { "" } else { " (handshake)" },
                c.bytes,
                c.peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            )?;
            for s in &c.subflows {
                writeln!(
                    f,
                    "    {} {} -> {}{}",
                    s.state,
                    s.local,
                    s.remote,
                    if s.backup { " backup" } else { "" }
                )?;
            }
        }
        writeln!(f, "decisions (newest last)")?;
        for d in &e.decisions {
            writeln!(
                f,
                "  -{}.{:03}s {}{}",
                d.age_ms / 1000,
                d.age_ms % 1000,
                d.token
                    .as_deref()
                    .map(|t| format!("{t} "))
                    .unwrap_or_default(),
                d.action
                    .map_or_else(|| d.reason.clone(), |a| format!("{a}: {}", d.reason)),
            )?;
        }
        Ok(())
    }
}

/// The engine over the kernel; see the [module docs](self).
#[derive(Debug)]
pub struct Driver {
    engine: Engine,
    manager: Manager,
    events: EventStream,
    sampler: Sampler,
    sample_interval: Duration,
    settings: Settings,
    counters: Counters,
    tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
}

impl Driver {
    /// Checks the sysctls and opens everything in the calling thread's namespace
    /// (module docs, start-up). Needs `CAP_NET_ADMIN` there.
    pub async fn start(config: &MptcpConfig) -> Result<Self, Error> {
        let settings =
            sysctl::ensure_in(std::path::Path::new(sysctl::PROC_DIR), config.set_sysctls)
                .map_err(Error::Sysctl)?;
        let pm = Pm::open().await?;
        let events = pm.events(EventOptions::default()).await?;
        let sampler = Sampler::open().map_err(Error::Sampler)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut driver = Self {
            engine: Engine::new(config.policy_config()),
            manager: Manager::new(pm),
            events,
            sampler,
            sample_interval: config.sample_interval.max(Duration::from_millis(10)),
            settings,
            counters: Counters::default(),
            tx,
            rx,
        };
        driver.adopt_existing().await;
        tracing::info!(
            "mptcp: path manager running, policy {}",
            driver.engine.config().policy
        );
        Ok(driver)
    }

    /// Turns the stall rule on with the REAP Send Timeout (`[reap] send_timeout`), or
    /// off with `None` (policy rule 9): a joined subflow with data unacknowledged and
    /// no ACK for that long condemns its pair, since REAP itself only watches the
    /// context's current pair.
    #[must_use]
    pub fn with_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.engine.set_stall_timeout(timeout);
        self
    }

    /// A handle for the service loop.
    pub fn handle(&self) -> Handle {
        Handle {
            tx: self.tx.clone(),
        }
    }

    /// The engine (tests, tools).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Connections that existed before the driver: into the engine, and their ID lists
    /// from the kernel into the manager's book.
    async fn adopt_existing(&mut self) {
        let now = Instant::now();
        let mut seen = Vec::new();
        for c in self.events.connections() {
            let ev = if c.established {
                Event::Established(c.connection.clone())
            } else {
                Event::Created(c.connection.clone())
            };
            seen.push(ev);
            for s in c.subflows.values() {
                seen.push(Event::SubEstablished(s.clone()));
            }
        }
        for ev in &seen {
            self.engine.handle_event(ev, now);
            if let Event::Established(c) = ev
                && !c.server_side
                && let Err(e) = self.manager.adopt(c.token).await
            {
                tracing::warn!("mptcp: adopt address IDs of {}: {e}", c.token);
            }
        }
    }

    /// After lost events the ID book may be stale (a subflow destroyed or a
    /// connection closed unseen): take the kernel's lists again for our connections.
    async fn readopt(&mut self) {
        let tokens: Vec<_> = self
            .events
            .connections()
            .filter(|c| !c.connection.server_side)
            .map(|c| c.connection.token)
            .collect();
        for token in tokens {
            if let Err(e) = self.manager.adopt(token).await {
                tracing::warn!("mptcp: adopt address IDs of {token} after resync: {e}");
            }
        }
    }

    fn status(&self) -> Status {
        Status {
            sysctls: self.settings.clone(),
            engine: self.engine.status(Instant::now()),
            counters: self.counters,
        }
    }

    /// Runs until `shutdown` completes (or every [`Handle`] is dropped and the event
    /// socket fails). Returns an error only when the event socket keeps failing.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        // Our own sender keeps the channel open; drop it so that the loop can notice
        // when every handle is gone.
        let (dead_tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.tx, dead_tx));
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.sample_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut inputs_open = true;
        let mut event_errors = 0u32;
        loop {
            let deadline = self.engine.poll_timeout();
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                ev = self.events.next() => match ev {
                    Ok(ev) => {
                        event_errors = 0;
                        self.counters.events += 1;
                        self.manager.observe(&ev);
                        self.engine.handle_event(&ev, Instant::now());
                        if ev == Event::Resynced {
                            self.counters.resyncs += 1;
                            self.readopt().await;
                        }
                    }
                    Err(e) => {
                        // The stream stays usable and retries its resync; give up only
                        // when it keeps failing.
                        event_errors += 1;
                        tracing::warn!("mptcp: event stream: {e}");
                        if event_errors >= 10 {
                            return Err(e.into());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                input = self.rx.recv(), if inputs_open => match input {
                    Some(i) => self.input(i),
                    None => inputs_open = false,
                },
                () = sleep_until(deadline) => self.engine.handle_timeout(Instant::now()),
                _ = tick.tick() => self.sample().await,
            }
            self.execute().await;
        }
    }

    fn input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Peer(v) => self.engine.set_peer(v, now),
            Input::RemovePeer(p) => self.engine.remove_peer(p, now),
            Input::PathFailed(p, pair) => self.engine.path_failed(p, pair, now),
            Input::PathUsable(p, pair) => self.engine.path_usable(p, pair, now),
            Input::SetPolicy(c) => self.engine.set_config(c, now),
            Input::Status(reply) => {
                // The asker may have gone away; nothing to do then.
                let _ = reply.send(self.status());
            }
        }
    }

    async fn sample(&mut self) {
        match self.sampler.sample().await {
            Ok(bytes) => {
                self.counters.samples += 1;
                let now = Instant::now();
                for (token, b) in bytes {
                    self.engine.bytes_carried(token, b, now);
                }
            }
            Err(e) => tracing::warn!("mptcp: sock_diag sample: {e}"),
        }
        // The stall rule (policy rule 9), only when it is on.
        if self.engine.stall_timeout().is_some() {
            match self.sampler.sample_subflows().await {
                Ok(subflows) => {
                    let now = Instant::now();
                    for s in &subflows {
                        self.engine.subflow_sample(s, now);
                    }
                }
                Err(e) => tracing::warn!("mptcp: sock_diag subflow sample: {e}"),
            }
        }
    }

    /// Carries out the engine's actions in order.
    async fn execute(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            self.counters.commands += 1;
            let result = self.command(&action).await;
            if let Err(e) = result {
                self.counters.command_errors += 1;
                tracing::warn!("mptcp: {action}: {e}");
                self.engine
                    .command_failed(&action, &e.to_string(), Instant::now());
            }
        }
    }

    async fn command(&mut self, action: &Action) -> Result<(), xfrm_sys::Error> {
        match *action {
            Action::CreateSubflow {
                token,
                local,
                remote,
                backup,
            } => {
                match self
                    .manager
                    .create_subflow(token, local, remote, backup)
                    .await
                {
                    Err(e) if Refusal::of(&e) == Some(Refusal::AddrIdMismatch) => {
                        // Our book and the kernel's list disagree (pitfall 2): take the
                        // kernel's and try once more.
                        self.manager.adopt(token).await?;
                        self.manager
                            .create_subflow(token, local, remote, backup)
                            .await
                            .map(drop)
                    }
                    other => other.map(drop),
                }
            }
            Action::DetachPath {
                token,
                local,
                remote,
                local_in_use,
            } => self
                .manager
                .detach_path(token, local, remote, local_in_use)
                .await
                .map(drop),
            Action::DestroySubflow {
                token,
                local,
                remote,
            } => match self.manager.destroy_subflow(token, local, remote).await {
                Err(e) if Refusal::of(&e) == Some(Refusal::SubflowNotFound) => Ok(()),
                other => other,
            },
            Action::SetBackup {
                token,
                local,
                remote,
                backup,
            } => {
                self.manager
                    .pm()
                    .set_backup(token, local, remote, backup)
                    .await
            }
        }
    }
}

/// Sleeps until `deadline`, forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use xfrm_sys::mptcp::{Connection, Token};

    use super::*;
    use crate::mptcp::policy::{Policy, PolicyConfig};

    #[tokio::test]
    async fn a_handle_outliving_its_driver_says_so() {
        let (tx, rx) = mpsc::unbounded_channel();
        let h = Handle { tx };
        drop(rx);
        let v = PeerView {
            ulid_peer: "2001:db8:1::2".parse().unwrap(),
            locals: vec![],
            remotes: vec![],
        };
        assert!(!h.peer(v));
        assert!(!h.path_failed(v6("2001:db8:1::2"), Pair::new(v6("::1"), v6("::2"))));
        assert!(h.status().await.is_none());
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn status_prints_connections_subflows_and_decisions() {
        let now = Instant::now();
        let mut e = Engine::new(PolicyConfig {
            policy: Policy::Fullmesh,
            max_subflows: 2,
        });
        e.set_peer(
            PeerView {
                ulid_peer: v6("2001:db8:1::2"),
                locals: vec![v6("2001:db8:1::1"), v6("2001:db8:2::1")],
                remotes: vec![v6("2001:db8:1::2"), v6("2001:db8:2::2")],
            },
            now,
        );
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        e.handle_event(
            &Event::Established(Connection {
                token: Token(0xa871_3a27),
                local: sa("[2001:db8:1::1]:40000"),
                remote: sa("[2001:db8:1::2]:8080"),
                loc_id: 0,
                rem_id: 0,
                server_side: false,
                flags: 0,
                other: vec![],
            }),
            now,
        );
        let st = Status {
            sysctls: Settings {
                enabled: Some(true),
                path_manager: Some("userspace".into()),
                pm_type: Some(1),
            },
            engine: e.status(now + Duration::from_millis(1234)),
            counters: Counters::default(),
        };
        let text = st.to_string();
        for want in [
            "policy fullmesh (max 2 subflows per connection)",
            "sysctls net.mptcp.enabled=1 path_manager=userspace pm_type=1",
            "2001:db8:1::2 verified [2001:db8:1::2,2001:db8:2::2]",
            "a8713a27 [2001:db8:1::1]:40000 -> [2001:db8:1::2]:8080 bytes 0 peer 2001:db8:1::2",
            "requested [2001:db8:2::1]:0 -> [2001:db8:2::2]:8080",
            "-1.234s a8713a27 create subflow a8713a27 2001:db8:2::1 -> [2001:db8:2::2]:8080: fullmesh",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["sysctls"]["path_manager"], "userspace");
        assert_eq!(json["counters"]["commands"], 0);
        assert_eq!(json["max_subflows"], 2);
    }

    /// The service loop spawns the driver with `tokio::spawn`: it and its future must
    /// be `Send` (checked at compile time).
    #[test]
    fn driver_and_its_future_are_send() {
        fn send<T: Send>() {}
        fn future(d: Driver) -> impl Send {
            d.run(std::future::pending())
        }
        send::<Driver>();
        send::<Handle>();
        let _ = future;
    }
}
