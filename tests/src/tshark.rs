//! Runs `tshark` (Debian package `tshark`) over a pcap and exposes its decode.
//!
//! tshark is our independent oracle for *layout*: it was written by other people from the
//! same RFCs. It is not an oracle for protocol semantics, and its Shim6 dissector has a
//! known defect (see `docs/tshark.md`), which the tests detect and account for explicitly.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One decoded frame: the `_source.layers` object of tshark's `-T json` output.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The layers object, with duplicate keys merged into arrays (`--no-duplicate-keys`).
    pub layers: Value,
}

/// Why tshark could not be used.
#[derive(Debug)]
pub enum TsharkError {
    /// The `tshark` binary is not installed.
    NotInstalled,
    /// It ran but failed or printed something that is not its JSON.
    Failed(String),
}

/// The version line of the installed tshark, or `None` if it is not installed.
pub fn version() -> Option<String> {
    let out = Command::new("tshark").arg("--version").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_owned)
}

/// Decodes every frame of `pcap` with full protocol trees.
pub fn decode(pcap: &Path) -> Result<Vec<Frame>, TsharkError> {
    let out = Command::new("tshark")
        // No name resolution.
        .arg("-n")
        // -x adds `<field>_raw: [hex, offset, length, ...]` next to each field.
        .args(["-T", "json", "-x", "--no-duplicate-keys", "-r"])
        .arg(pcap)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TsharkError::NotInstalled,
            _ => TsharkError::Failed(e.to_string()),
        })?;
    if !out.status.success() {
        return Err(TsharkError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| TsharkError::Failed(format!("tshark JSON: {e}")))?;
    let frames = v
        .as_array()
        .ok_or_else(|| TsharkError::Failed("tshark JSON is not an array".into()))?;
    frames
        .iter()
        .map(|f| {
            f.pointer("/_source/layers")
                .cloned()
                .map(|layers| Frame { layers })
                .ok_or_else(|| TsharkError::Failed("frame without _source.layers".into()))
        })
        .collect()
}

impl Frame {
    /// Every value of field `name` anywhere in the frame, in tree order. Arrays (repeated
    /// fields) are flattened; subtrees are searched recursively.
    pub fn all(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        collect(&self.layers, name, &mut out);
        out
    }

    /// The single value of field `name`.
    ///
    /// # Panics
    /// If the field is absent or repeated: that is a test failure with the frame dumped.
    pub fn one(&self, name: &str) -> String {
        let v = self.all(name);
        assert_eq!(
            v.len(),
            1,
            "field {name}: expected one value, got {v:?} in {}",
            self.dump()
        );
        v.into_iter().next().unwrap_or_default()
    }

    /// Every key anywhere in the tree that starts with `prefix` (labels of text items such
    /// as "Initiator Context Tag: 01 23 …" appear as keys).
    pub fn keys_starting_with(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        collect_keys(&self.layers, prefix, &mut out);
        out
    }

    /// Expert infos and malformed-packet markers tshark attached to the frame.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.all("_ws.expert.message");
        out.extend(self.keys_starting_with("_ws.malformed"));
        out.extend(self.all("_ws.malformed"));
        out
    }

    /// The protocol stack tshark recognised, e.g. `raw:ipv6:shim6:tcp`.
    pub fn protocols(&self) -> String {
        self.one("frame.protocols")
    }

    /// Pretty JSON of the frame, for failure messages.
    pub fn dump(&self) -> String {
        serde_json::to_string_pretty(&self.layers).unwrap_or_default()
    }
}

fn collect(v: &Value, name: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == name {
                    push_values(v, out);
                } else {
                    collect(v, name, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect(v, name, out)),
        _ => {}
    }
}

fn push_values(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| push_values(v, out)),
        Value::Null => out.push(String::new()),
        other => out.push(other.to_string()),
    }
}

fn collect_keys(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k.starts_with(prefix) {
                    out.push(k.clone());
                }
                collect_keys(v, prefix, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_keys(v, prefix, out)),
        _ => {}
    }
}
