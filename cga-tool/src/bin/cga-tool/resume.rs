//! The `--resume FILE` state of an interrupted search.
//!
//! The search hands out candidates in order and finishes every batch it starts, so after
//! Ctrl-C every modifier before `next_modifier` has been tried (`cga::search`). The file
//! records that point together with everything else the Hash2 input depends on (Sec, the
//! key field, the HBA prefixes and kind), so a resumed search hashes exactly the same
//! messages and finds exactly the modifier an uninterrupted one would have.
//!
//! When the search generated its own RSA key, the private key is kept here too, so the
//! file is written with mode 0600 (atomically, through a temporary file and a rename).
//! It is rewritten every few seconds during the search and removed when it succeeds.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Fail;

/// Format version of the file.
pub const VERSION: u32 = 1;

/// What an interrupted search needs to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// [`VERSION`].
    pub version: u32,
    /// The Sec value searched for.
    pub sec: u8,
    /// `cga`, `hba` or `hba-compat`.
    pub mode: String,
    /// The prefixes, in command-line order (hashed for HBA sets).
    pub prefixes: Vec<String>,
    /// Hex of the Public Key field (DER key or HBA pseudo-key).
    pub public_key: String,
    /// PEM of the private key when the search generated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_pem: Option<String>,
    /// Hex of the modifier the search started from (for information).
    pub start_modifier: String,
    /// Hex of the first modifier not yet tried.
    pub next_modifier: String,
    /// Hashes computed so far, over all runs.
    pub hashes: u64,
    /// Seconds spent so far, over all runs.
    pub elapsed_s: f64,
}

/// Reads the state, or `None` if the file does not exist.
pub fn load(path: &Path) -> Result<Option<State>, Fail> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Fail::Input(format!(
                "--resume: cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let s: State = serde_json::from_str(&text).map_err(|e| {
        Fail::Input(format!(
            "--resume: {} is not a cga-tool resume file: {e}",
            path.display()
        ))
    })?;
    if s.version != VERSION {
        return Err(Fail::Input(format!(
            "--resume: {} has format version {}, this cga-tool writes {VERSION}",
            path.display(),
            s.version
        )));
    }
    Ok(Some(s))
}

/// Writes the state atomically with mode 0600.
pub fn save(path: &Path, state: &State) -> Result<(), Fail> {
    let fail = |e: std::io::Error| {
        Fail::Runtime(format!("--resume: cannot write {}: {e}", path.display()))
    };
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    let json = serde_json::to_string_pretty(state).map_err(|e| Fail::Runtime(e.to_string()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(fail)?;
    f.write_all(json.as_bytes()).map_err(fail)?;
    f.write_all(b"\n").map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Removes the state after a successful search.
pub fn remove(path: &Path) -> Result<(), Fail> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Fail::Runtime(format!(
            "--resume: cannot remove {}: {e}",
            path.display()
        ))),
    }
}
