//! `shim6d ctl CMD`: a one-shot client of the control interface.
//!
//! It connects, waits for the prompt, sends one command line, reads up to the next prompt,
//! says `quit` and returns the reply with `\n` line ends. Every step is bounded by a
//! timeout.

use std::{io, net::SocketAddr, path::PathBuf, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpStream, UnixStream},
};

use super::PROMPT;

/// Where the daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The TCP control address.
    Tcp(SocketAddr),
    /// The unix socket.
    Unix(PathBuf),
}

/// The daemon's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The reply, `\n`-terminated lines.
    pub text: String,
    /// Whether the daemon reported an error (`error: …`, or a JSON `error` member).
    pub is_error: bool,
}

/// Longest reply the client accepts, against a misbehaving server.
const MAX_REPLY: usize = 16 << 20;

/// Sends `line` and returns the answer; `timeout` bounds each step.
pub async fn oneshot(endpoint: &Endpoint, line: &str, timeout: Duration) -> io::Result<Answer> {
    if line.contains(['\n', '\r']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "one command, without line breaks",
        ));
    }
    let step = |what: &'static str| {
        move |_| io::Error::new(io::ErrorKind::TimedOut, format!("timed out {what}"))
    };
    match endpoint {
        Endpoint::Tcp(addr) => {
            let s = tokio::time::timeout(timeout, TcpStream::connect(addr))
                .await
                .map_err(step("connecting"))?
                .map_err(|e| io::Error::new(e.kind(), format!("connect {addr}: {e}")))?;
            exchange(s, line, timeout).await
        }
        Endpoint::Unix(path) => {
            let s = tokio::time::timeout(timeout, UnixStream::connect(path))
                .await
                .map_err(step("connecting"))?
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("connect {}: {e}", path.display()))
                })?;
            exchange(s, line, timeout).await
        }
    }
}

async fn exchange<S>(mut s: S, line: &str, timeout: Duration) -> io::Result<Answer>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let banner = read_to_prompt(&mut s, timeout).await?;
    if let Some(refusal) = banner.strip_prefix("error: ") {
        return Err(io::Error::other(format!(
            "daemon refused: {}",
            refusal.trim()
        )));
    }
    s.write_all(format!("{line}\r\n").as_bytes()).await?;
    let reply = read_to_prompt(&mut s, timeout).await?;
    // Best effort: the daemon ends the session by itself when we go.
    let _ = s.write_all(b"quit\r\n").await;
    let text = reply.replace("\r\n", "\n");
    let is_error = text.starts_with("error: ")
        || serde_json::from_str::<serde_json::Value>(text.trim())
            .is_ok_and(|v| v.get("error").is_some());
    Ok(Answer { text, is_error })
}

/// Reads until the buffer ends with the prompt (returned without it), or until EOF.
async fn read_to_prompt<S: AsyncRead + Unpin>(s: &mut S, timeout: Duration) -> io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(timeout, s.read(&mut chunk))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the daemon")
            })??;
        if n == 0 {
            // Closed: a refusal or a shutdown. Whatever came is the answer.
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(PROMPT.as_bytes()) {
            buf.truncate(buf.len() - PROMPT.len());
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > MAX_REPLY {
            return Err(io::Error::other("reply too long"));
        }
    }
}
