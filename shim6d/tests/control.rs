//! The control interface over real sockets on loopback: sessions, bad lines, telnet
//! bytes, JSON, limits, the one-shot client, the unix socket.

use std::{net::SocketAddr, time::Duration};

use shim6d::control::{
    self, Command, CommandError, Limits, Listener, PROMPT, Reply, Request, Server,
    client::{self, Endpoint},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{mpsc, watch},
    task::JoinHandle,
};

const T: Duration = Duration::from_secs(10);

/// A stand-in for the daemon's state on the other end of the request channel: `stats`
/// answers with a count of the requests it saw, everything else with "no protocol core".
fn answerer(mut rx: mpsc::Receiver<Request>) -> JoinHandle<usize> {
    tokio::spawn(async move {
        let mut seen = 0;
        while let Some(req) = rx.recv().await {
            seen += 1;
            let answer = match req.command {
                Command::Stats => Ok(Reply::new(
                    format!("requests {seen}"),
                    serde_json::json!({ "requests": seen }),
                )),
                _ => Err(CommandError::NoProtocolCore),
            };
            let _ = req.reply.send(answer);
        }
        seen
    })
}

struct Running {
    addr: SocketAddr,
    server: Server,
    stop: watch::Sender<bool>,
    serve: JoinHandle<()>,
    answers: JoinHandle<usize>,
}

async fn start(limits: Limits) -> Running {
    let listener = Listener::tcp("[::1]:0".parse().unwrap()).await.unwrap();
    let Listener::Tcp(l) = &listener else {
        unreachable!("tcp() makes a TCP listener")
    };
    let addr = l.local_addr().unwrap();
    let server = Server::new(limits);
    let (tx, rx) = mpsc::channel(8);
    let (stop, shutdown) = watch::channel(false);
    let s = server.clone();
    let serve = tokio::spawn(async move { s.serve(vec![listener], tx, shutdown).await });
    Running {
        addr,
        server,
        stop,
        serve,
        answers: answerer(rx),
    }
}

/// Reads until the prompt; returns what came before it.
async fn until_prompt(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.ends_with(PROMPT.as_bytes()) {
        let n = tokio::time::timeout(T, s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "closed early after {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(buf.len() - PROMPT.len());
    String::from_utf8(buf).unwrap()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let banner = until_prompt(&mut s).await;
    assert!(banner.starts_with("shim6d control interface"), "{banner}");
    s
}

async fn ask(s: &mut TcpStream, line: &[u8]) -> String {
    s.write_all(line).await.unwrap();
    until_prompt(s).await
}

fn limits() -> Limits {
    Limits {
        max_clients: 4,
        max_line: 256,
    }
}

#[tokio::test]
async fn session_with_good_and_bad_commands() {
    let r = start(limits()).await;
    let mut s = connect(r.addr).await;
    let help = ask(&mut s, b"help\r\n").await;
    assert!(help.contains("establish PEER_ULID"), "{help}");
    assert!(help.ends_with("\r\n"));
    assert_eq!(
        ask(&mut s, b"frobnicate\n").await,
        "error: unknown command `frobnicate` (try `help`)\r\n"
    );
    // The session goes on after an error.
    assert_eq!(
        ask(&mut s, b"ls\n").await,
        "error: not available: protocol core not running\r\n"
    );
    assert_eq!(ask(&mut s, b"stats\n").await, "requests 2\r\n");
    assert_eq!(
        ask(&mut s, b"\r\n").await,
        "",
        "an empty line is just a prompt"
    );
    s.write_all(b"quit\r\n").await.unwrap();
    let mut rest = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, "bye\r\n");
    assert_eq!(
        r.server
            .stats()
            .bad_lines
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    r.stop.send(true).unwrap();
    r.serve.await.unwrap();
    assert_eq!(r.answers.await.unwrap(), 2);
}

#[tokio::test]
async fn telnet_negotiation_bytes_are_ignored() {
    let r = start(limits()).await;
    let mut s = connect(r.addr).await;
    // What a telnet client sends first: IAC DO SGA, IAC WILL TTYPE, IAC WILL NAWS, then
    // a subnegotiation, then the command with CR NUL in between.
    let mut line = vec![255, 253, 3, 255, 251, 24, 255, 251, 31];
    line.extend_from_slice(&[255, 250, 31, 0, 80, 0, 24, 255, 240]);
    line.extend_from_slice(b"sta\r\0ts\r\n");
    // CR NUL is telnet's bare carriage return: dropped, so "sta" + "ts".
    assert_eq!(ask(&mut s, &line).await, "requests 1\r\n");
    r.stop.send(true).unwrap();
    r.serve.await.unwrap();
}

#[tokio::test]
async fn json_output_parses() {
    let r = start(limits()).await;
    let mut s = connect(r.addr).await;
    for line in [
        "help --json\n",
        "stats --json\n",
        "ls --json\n",
        "nope --json\n",
    ] {
        let out = ask(&mut s, line.as_bytes()).await;
        assert_eq!(out.matches("\r\n").count(), 1, "one line: {out:?}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        match line {
            "help --json\n" => assert!(v.as_array().unwrap().len() >= 10),
            "stats --json\n" => assert_eq!(v["requests"], 1),
            "ls --json\n" => {
                assert_eq!(v["error"], "not available: protocol core not running");
            }
            _ => assert!(v["error"].as_str().unwrap().contains("unknown command")),
        }
    }
    r.stop.send(true).unwrap();
    r.serve.await.unwrap();
}

#[tokio::test]
async fn several_clients_at_once_and_the_limit() {
    let r = start(limits()).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connect(r.addr).await);
    }
    // Interleaved commands on all four.
    for c in &mut clients {
        c.write_all(b"stats\n").await.unwrap();
    }
    let mut counts = Vec::new();
    for c in &mut clients {
        let out = until_prompt(c).await;
        counts.push(
            out.trim()
                .strip_prefix("requests ")
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    counts.sort_unstable();
    assert_eq!(counts, [1, 2, 3, 4]);
    // A fifth is refused with one error line and closed.
    let mut fifth = TcpStream::connect(r.addr).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(T, fifth.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, "error: too many clients (max 4), try again later\r\n");
    // One leaves; a new one gets in.
    let gone = clients.pop().unwrap();
    drop(gone);
    let deadline = tokio::time::Instant::now() + T;
    while r.server.active() >= 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut again = connect(r.addr).await;
    assert_eq!(ask(&mut again, b"stats\n").await, "requests 5\r\n");
    // Shutdown ends the open sessions with a line.
    r.stop.send(true).unwrap();
    let mut rest = String::new();
    tokio::time::timeout(T, again.read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.contains("shim6d shutting down"), "{rest:?}");
    tokio::time::timeout(T, r.serve).await.unwrap().unwrap();
}

#[tokio::test]
async fn long_lines_are_refused() {
    let r = start(limits()).await;
    let mut s = connect(r.addr).await;
    let mut line = vec![b'x'; 1000];
    line.push(b'\n');
    assert_eq!(
        ask(&mut s, &line).await,
        "error: line too long (max 256 bytes)\r\n"
    );
    assert_eq!(ask(&mut s, b"stats\n").await, "requests 1\r\n");
    r.stop.send(true).unwrap();
    r.serve.await.unwrap();
}

#[tokio::test]
async fn oneshot_client_over_tcp_and_unix() {
    let dir = std::env::temp_dir().join(format!("shim6d-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ctl.sock");
    let tcp = Listener::tcp("[::1]:0".parse().unwrap()).await.unwrap();
    let Listener::Tcp(l) = &tcp else {
        unreachable!("tcp() makes a TCP listener")
    };
    let addr = l.local_addr().unwrap();
    let unix = Listener::unix(path.clone()).unwrap();
    let server = Server::new(limits());
    let (tx, rx) = mpsc::channel(8);
    let (stop, shutdown) = watch::channel(false);
    let s = server.clone();
    let serve = tokio::spawn(async move { s.serve(vec![tcp, unix], tx, shutdown).await });
    let _answers = answerer(rx);

    let a = client::oneshot(&Endpoint::Tcp(addr), "stats", T)
        .await
        .unwrap();
    assert_eq!(a.text, "requests 1\n");
    assert!(!a.is_error);
    let a = client::oneshot(&Endpoint::Unix(path.clone()), "stats --json", T)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&a.text).unwrap();
    assert_eq!(v["requests"], 2);
    let a = client::oneshot(&Endpoint::Tcp(addr), "rm *", T)
        .await
        .unwrap();
    assert!(a.is_error);
    assert_eq!(a.text, "error: not available: protocol core not running\n");
    let a = client::oneshot(&Endpoint::Tcp(addr), "cat --json *", T)
        .await
        .unwrap();
    assert!(a.is_error, "{a:?}");

    stop.send(true).unwrap();
    serve.await.unwrap();
    assert!(!path.exists(), "the unix socket is removed on shutdown");
    // Nobody listening: the client says so.
    let e = client::oneshot(&Endpoint::Tcp(addr), "stats", T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("connect"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = control::BANNER;
}
