//! The control interface: a telnet-compatible line protocol on TCP (default
//! `[::1]:50000`) and optionally a unix stream socket, and the `shim6d ctl` client.
//!
//! # Protocol
//!
//! On connect the server sends a banner line and the prompt [`PROMPT`]. The client sends
//! one command per line (`\n` or `\r\n`; telnet's `\r\0` too); every reply is one or more
//! text lines ending in `\r\n`, followed by the prompt. A reply to a failed command is one
//! line starting with `error: `; the session goes on. With `--json` on the line the reply
//! is one line of JSON (`{"error": "..."}` on failure). Telnet negotiation (`IAC` …) is
//! ignored, so `telnet ::1 50000` works; so do `nc` and [`client::oneshot`].
//!
//! Bounds: lines longer than [`Limits::max_line`] are refused with an error (the rest of
//! that line is discarded); a client beyond [`Limits::max_clients`] gets one error line
//! and is closed. Both can change at run time ([`Server::set_limits`], on `SIGHUP`).
//!
//! # Where commands go
//!
//! The server does not know the daemon: each parsed command is sent as a [`Request`] over
//! an `mpsc` channel, and whoever owns the daemon state (the service loop,
//! [`crate::service`]) answers it on the request's oneshot. The state is thus owned by one
//! task and never locked; the server only handles sockets. `help` and `quit` are answered
//! by the session itself.
//!
//! # Shutdown
//!
//! [`Server::serve`] and every session watch the same shutdown signal (a
//! `watch::Receiver<bool>` turning `true`): the accept loop stops, each session writes
//! `shim6d shutting down` and closes. `serve` returns once every session has ended, so
//! the caller knows no request is left in flight when it drops the request channel.

pub mod client;
pub mod command;

use std::{
    io,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, UnixListener},
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
};

pub use command::{Command, CommandError, Line, Reply, Target};

/// The prompt after every reply.
pub const PROMPT: &str = "shim6d> ";

/// The first line of every session.
pub const BANNER: &str = "shim6d control interface; `help` lists the commands";

/// Bounds on the control interface.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Concurrent sessions.
    pub max_clients: usize,
    /// Longest accepted line, in bytes, without its line end.
    pub max_line: usize,
}

impl From<&crate::config::Control> for Limits {
    fn from(c: &crate::config::Control) -> Self {
        Self {
            max_clients: c.max_clients,
            max_line: c.max_line,
        }
    }
}

/// A command for the daemon, with the channel its answer goes back on.
#[derive(Debug)]
pub struct Request {
    /// The command (never `help` or `quit`, which sessions answer themselves).
    pub command: Command,
    /// Where the answer goes; a dropped receiver (client gone) is not an error.
    pub reply: oneshot::Sender<Result<Reply, CommandError>>,
}

/// Counters of the control interface, shown by `stats`.
#[derive(Debug, Default)]
pub struct ControlStats {
    /// Sessions accepted.
    pub sessions: AtomicU64,
    /// Sessions refused for [`Limits::max_clients`].
    pub refused: AtomicU64,
    /// Commands executed (including failed ones).
    pub commands: AtomicU64,
    /// Lines that did not parse, or too long.
    pub bad_lines: AtomicU64,
}

/// A listening socket of the control interface.
#[derive(Debug)]
pub enum Listener {
    /// TCP (telnet, nc).
    Tcp(TcpListener),
    /// A unix stream socket; the path is removed when the server ends.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds the TCP listener.
    pub async fn tcp(addr: std::net::SocketAddr) -> io::Result<Self> {
        Ok(Self::Tcp(TcpListener::bind(addr).await?))
    }

    /// Binds the unix socket at `path`, replacing a stale socket file left by a killed
    /// daemon (but nothing that is not a socket).
    pub fn unix(path: PathBuf) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_socket() {
                std::fs::remove_file(&path)?;
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
        }
        Ok(Self::Unix(UnixListener::bind(&path)?, path))
    }
}

/// The control server: shared counters and limits; [`Server::serve`] runs it.
#[derive(Debug, Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limits: Mutex<Limits>,
    active: AtomicUsize,
    stats: ControlStats,
}

impl Server {
    /// A server with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits: Mutex::new(limits),
                active: AtomicUsize::new(0),
                stats: ControlStats::default(),
            }),
        }
    }

    /// Changes the limits; sessions already open stay.
    pub fn set_limits(&self, limits: Limits) {
        *self.shared.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    fn limits(&self) -> Limits {
        *self.shared.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counters.
    pub fn stats(&self) -> &ControlStats {
        &self.shared.stats
    }

    /// Sessions open now.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Accepts sessions on every listener until `shutdown` turns `true`, then waits for
    /// the sessions to end. Commands go to `requests`.
    pub async fn serve(
        &self,
        listeners: Vec<Listener>,
        requests: mpsc::Sender<Request>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut sessions = JoinSet::new();
        let mut accepts = JoinSet::new();
        let (conn_tx, mut conn_rx) = mpsc::channel::<Conn>(16);
        let mut unix_paths = Vec::new();
        // One accept task per listener feeds a single channel, so the loop below selects
        // over a fixed number of futures whatever the number of listeners.
        for l in listeners {
            let tx = conn_tx.clone();
            match l {
                Listener::Tcp(t) => {
                    accepts.spawn(async move {
                        loop {
                            match t.accept().await {
                                Ok((s, peer)) => {
                                    if tx.send(Conn::Tcp(s, peer.to_string())).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => accept_error(&e).await,
                            }
                        }
                    });
                }
                Listener::Unix(u, path) => {
                    unix_paths.push(path);
                    accepts.spawn(async move {
                        loop {
                            match u.accept().await {
                                Ok((s, _)) => {
                                    if tx.send(Conn::Unix(s)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => accept_error(&e).await,
                            }
                        }
                    });
                }
            }
        }
        drop(conn_tx);
        loop {
            tokio::select! {
                () = stopped(&mut shutdown) => break,
                conn = conn_rx.recv() => {
                    let Some(conn) = conn else { break };
                    let this = self.clone();
                    let requests = requests.clone();
                    let shutdown = shutdown.clone();
                    sessions.spawn(async move {
                        match conn {
                            Conn::Tcp(s, peer) => {
                                // Small replies, one per command: no Nagle delay.
                                let _ = s.set_nodelay(true);
                                this.session(s, peer, requests, shutdown).await;
                            }
                            Conn::Unix(s) => {
                                this.session(s, "unix".into(), requests, shutdown).await;
                            }
                        }
                    });
                }
                // Reap finished sessions as we go so the set does not grow.
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        accepts.abort_all();
        while sessions.join_next().await.is_some() {}
        for p in unix_paths {
            let _ = std::fs::remove_file(p);
        }
    }

    /// One client, from banner to close.
    async fn session<S>(
        &self,
        stream: S,
        peer: String,
        requests: mpsc::Sender<Request>,
        mut shutdown: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let limits = self.limits();
        // Count first, then compare: two clients racing for the last slot cannot both win.
        let before = self.shared.active.fetch_add(1, Ordering::SeqCst);
        let _guard = ActiveGuard(&self.shared.active);
        if before >= limits.max_clients {
            self.shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, max = limits.max_clients, "control: client refused");
            let _ = wr
                .write_all(
                    format!(
                        "error: too many clients (max {}), try again later\r\n",
                        limits.max_clients
                    )
                    .as_bytes(),
                )
                .await;
            let _ = wr.shutdown().await;
            return;
        }
        self.shared.stats.sessions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "control: session opened");
        if wr
            .write_all(format!("{BANNER}\r\n{PROMPT}").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let mut lines = LineReader::new(limits.max_line);
        let mut buf = [0u8; 1024];
        'session: loop {
            let n = tokio::select! {
                () = stopped(&mut shutdown) => {
                    let _ = wr.write_all(b"\r\nshim6d shutting down\r\n").await;
                    break;
                }
                r = rd.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
            };
            lines.push(&buf[..n]);
            while let Some(item) = lines.next_line() {
                let (out, quit) = match item {
                    Err(too_long) => {
                        self.shared.stats.bad_lines.fetch_add(1, Ordering::Relaxed);
                        (format!("error: {too_long}\r\n"), false)
                    }
                    Ok(line) => self.execute(&line, &requests).await,
                };
                let mut out = out;
                if !quit {
                    out.push_str(PROMPT);
                }
                if wr.write_all(out.as_bytes()).await.is_err() || quit {
                    break 'session;
                }
            }
        }
        let _ = wr.shutdown().await;
        tracing::debug!(%peer, "control: session closed");
    }

    /// Runs one line; returns the text to send (with `\r\n` line ends) and whether the
    /// session ends.
    async fn execute(&self, line: &str, requests: &mpsc::Sender<Request>) -> (String, bool) {
        let parsed = match command::parse(line) {
            Ok(None) => return (String::new(), false),
            Ok(Some(l)) => l,
            Err(e) => {
                self.shared.stats.bad_lines.fetch_add(1, Ordering::Relaxed);
                let json = line.split_whitespace().any(|w| w == "--json");
                return (render(Err(CommandError::Failed(e.0)), json), false);
            }
        };
        self.shared.stats.commands.fetch_add(1, Ordering::Relaxed);
        let result = match parsed.command {
            Command::Quit => return ("bye\r\n".into(), true),
            Command::Help(topic) => command::help(topic.as_deref()),
            command => {
                let (tx, rx) = oneshot::channel();
                let request = Request { command, reply: tx };
                match requests.send(request).await {
                    Ok(()) => rx.await.unwrap_or(Err(CommandError::ShuttingDown)),
                    Err(_) => Err(CommandError::ShuttingDown),
                }
            }
        };
        (render(result, parsed.json), false)
    }
}

/// Resolves once the shutdown signal is `true` (or its sender is gone). The watch guard
/// is dropped inside, so callers' futures stay `Send`.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

enum Conn {
    Tcp(tokio::net::TcpStream, String),
    Unix(tokio::net::UnixStream),
}

/// Accept errors such as `EMFILE` are transient: log and back off briefly rather than
/// spin or give up the listener.
async fn accept_error(e: &io::Error) {
    tracing::warn!(error = %e, "control: accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Formats a reply for the wire: text lines with `\r\n`, or one JSON line.
pub fn render(result: Result<Reply, CommandError>, json: bool) -> String {
    match (result, json) {
        (Ok(r), true) => format!("{}\r\n", r.json),
        (Err(e), true) => format!("{}\r\n", serde_json::json!({"error": e.to_string()})),
        (Ok(r), false) => {
            let mut out = String::new();
            for l in r.text.lines() {
                out.push_str(l);
                out.push_str("\r\n");
            }
            out
        }
        (Err(e), false) => format!("error: {e}\r\n"),
    }
}

/// Telnet command bytes (RFC 854).
mod telnet {
    pub const IAC: u8 = 255;
    pub const SB: u8 = 250;
    pub const SE: u8 = 240;
    /// WILL, WONT, DO, DONT: followed by one option byte.
    pub const WILL: u8 = 251;
    pub const DONT: u8 = 254;
}

/// Splits a byte stream into lines: drops telnet negotiation, accepts `\n`, `\r\n` and
/// `\r\0`, bounds the line length.
#[derive(Debug)]
pub struct LineReader {
    max: usize,
    line: Vec<u8>,
    ready: std::collections::VecDeque<Result<String, String>>,
    state: TelnetState,
    /// The current line was too long: discard until its end.
    overflow: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TelnetState {
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes next.
    Option,
    /// Inside IAC SB … IAC SE.
    Sub,
    /// IAC inside a subnegotiation.
    SubIac,
}

impl LineReader {
    /// A reader refusing lines longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            line: Vec::new(),
            ready: Default::default(),
            state: TelnetState::Data,
            overflow: false,
        }
    }

    /// Feeds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        use TelnetState::*;
        for &b in bytes {
            self.state = match (self.state, b) {
                (Data, telnet::IAC) => Iac,
                (Data, b'\n') => {
                    self.end_line();
                    Data
                }
                // `\r` ends nothing by itself (its `\n` or `\0` follows); NUL is padding.
                (Data, b'\r' | 0) => Data,
                (Data, b) => {
                    if self.line.len() < self.max {
                        self.line.push(b);
                    } else {
                        self.overflow = true;
                    }
                    Data
                }
                // IAC IAC is a literal 255: not text, dropped.
                (Iac, telnet::IAC) => Data,
                (Iac, telnet::SB) => Sub,
                (Iac, telnet::WILL..=telnet::DONT) => Option,
                (Iac, _) => Data,
                (Option, _) => Data,
                (Sub, telnet::IAC) => SubIac,
                (Sub, _) => Sub,
                (SubIac, telnet::SE) => Data,
                (SubIac, _) => Sub,
            };
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.overflow) {
            self.ready
                .push_back(Err(format!("line too long (max {} bytes)", self.max)));
        } else {
            self.ready
                .push_back(Ok(String::from_utf8_lossy(&line).into_owned()));
        }
    }

    /// The next complete line: `Ok(text)` or `Err(why)` for a refused one.
    pub fn next_line(&mut self) -> Option<Result<String, String>> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<Result<String, String>> {
        let mut r = LineReader::new(max);
        let mut out = Vec::new();
        for c in chunks {
            r.push(c);
            while let Some(l) = r.next_line() {
                out.push(l);
            }
        }
        out
    }

    #[test]
    fn line_ends_and_chunking() {
        assert_eq!(
            lines(100, &[b"ls\r\nsta", b"ts\n", b"help\r\0x\n"]),
            [Ok("ls".into()), Ok("stats".into()), Ok("helpx".into())]
        );
        // No line end yet: nothing.
        assert!(lines(100, &[b"ls"]).is_empty());
    }

    #[test]
    fn telnet_negotiation_is_ignored() {
        // IAC DO ECHO, IAC WILL SGA, IAC SB NAWS 0 80 0 24 IAC SE, IAC IAC, IAC NOP.
        let input: &[u8] = &[
            255, 253, 1, b'l', 255, 251, 3, b's', 255, 250, 31, 0, 80, 0, 24, 255, 240, 255, 255,
            255, 241, b'\r', b'\n',
        ];
        assert_eq!(lines(100, &[input]), [Ok("ls".into())]);
        // Split in the middle of a sequence.
        assert_eq!(
            lines(100, &[&[255], &[253], &[1, b'l', b's', b'\n']]),
            [Ok("ls".into())]
        );
    }

    #[test]
    fn long_lines_are_refused_and_the_next_one_works() {
        let long = vec![b'a'; 50];
        let out = lines(10, &[&long, b"\nls\n"]);
        assert_eq!(out.len(), 2);
        assert!(out[0].as_ref().unwrap_err().contains("max 10"));
        assert_eq!(out[1], Ok("ls".into()));
    }

    #[test]
    fn render_forms() {
        let r = Reply::new("a\nb", serde_json::json!({"x": 1}));
        assert_eq!(render(Ok(r.clone()), false), "a\r\nb\r\n");
        assert_eq!(render(Ok(r), true), "{\"x\":1}\r\n");
        assert_eq!(
            render(Err(CommandError::NoProtocolCore), false),
            "error: not available: protocol core not running\r\n"
        );
        assert_eq!(
            render(Err(CommandError::NoProtocolCore), true),
            "{\"error\":\"not available: protocol core not running\"}\r\n"
        );
    }
}
