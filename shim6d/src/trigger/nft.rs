//! The nftables plumbing shared by [`crate::trigger`], [`crate::visibility`] and the MSS
//! clamp of [`crate::mtu`]: each installs **one table of its own**, replaces it
//! atomically, reads it back as JSON and deletes it.
//!
//! # Why the `nft` command and not netlink
//!
//! nftables' netlink API (`nf_tables` messages, expressions as bytecode) has no
//! maintained typed Rust binding on our dependency line; the `nft` command compiles the
//! rules and prints sets as JSON (`nft -j`), which `serde_json` (already a dependency)
//! reads. A run costs a fork and one netlink round trip: 2–5 ms on the CI VM
//! (`docs/bench/daemon-aux.md`), paid at the poll cadence (about once a second) and at
//! context set-up, never per packet.
//!
//! The command runs in the **calling thread's** network namespace (a child inherits it),
//! so a daemon thread inside a test namespace manages that namespace's tables. Every call
//! blocks for one `nft` run; from the async loop call it through
//! `tokio::task::spawn_blocking` (pool threads spawned from a thread inside a namespace
//! are in that namespace too) or accept the short stall at the poll cadence.
//!
//! # Installing
//!
//! [`replace_table`] sends `add table; delete table; table { ... }` as one `nft -f -`
//! transaction: a table left by a crashed earlier run is replaced, never duplicated, and
//! a syntax error leaves nothing behind. [`OwnedTable`] deletes the table on
//! [`OwnedTable::delete`] or, best effort, on `Drop`.

use std::{
    io::{self, Write},
    process::{Command, Stdio},
};

use serde_json::Value;

/// The program run.
pub const NFT: &str = "nft";

/// Errors of an `nft` run, each naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `nft` program could not be started (not installed?).
    #[error("{op}: cannot run `nft`: {source}")]
    Spawn {
        /// What was being done.
        op: String,
        /// Cause.
        source: io::Error,
    },
    /// `nft` ran and failed.
    #[error("{op}: `nft` failed ({status}): {stderr}")]
    Failed {
        /// What was being done.
        op: String,
        /// Exit status.
        status: String,
        /// Its error output.
        stderr: String,
    },
    /// `nft -j` printed something that is not the JSON we expect.
    #[error("{op}: unexpected `nft -j` output: {what}")]
    Unexpected {
        /// What was being done.
        op: String,
        /// What is wrong.
        what: String,
    },
    /// A table or set name that nftables would not accept as an identifier.
    #[error(
        "bad nftables name {0:?} (letters, digits and '_', starting with a letter, at most 32)"
    )]
    BadName(String),
}

/// Whether `name` is a plain nftables identifier we are willing to splice into a script:
/// ASCII letters, digits and `_`, starting with a letter, at most 32 octets
/// (`NFT_NAME_MAXLEN` in `include/uapi/linux/netfilter/nf_tables.h` is 256; we stay short).
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_owned()))
    }
}

/// Whether `name` is an interface name safe to quote in a script (`IFNAMSIZ` 16 with
/// the NUL; no quotes, spaces or slashes).
pub fn check_ifname(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '/' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_owned()))
    }
}

fn output(op: &str, mut cmd: Command, stdin: Option<&str>) -> Result<String, Error> {
    let spawn_err = |source| Error::Spawn {
        op: op.to_owned(),
        source,
    };
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    } else {
        cmd.stdin(Stdio::null());
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(text) = stdin {
        // The pipe is taken so that it is closed (EOF for nft) before waiting.
        let mut pipe = child.stdin.take().ok_or_else(|| Error::Unexpected {
            op: op.to_owned(),
            what: "no stdin pipe".into(),
        })?;
        pipe.write_all(text.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Failed {
            op: op.to_owned(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs an nftables script (`nft -f -`) as one transaction.
pub fn run_script(op: &str, script: &str) -> Result<(), Error> {
    let mut cmd = Command::new(NFT);
    cmd.args(["-f", "-"]);
    output(op, cmd, Some(script)).map(drop)
}

/// Runs `nft -j -nn ARGS` (numeric protocols and ports) and parses its JSON.
pub fn list_json(op: &str, args: &[&str]) -> Result<Value, Error> {
    let mut cmd = Command::new(NFT);
    cmd.args(["-j", "-nn"]).args(args);
    let text = output(op, cmd, None)?;
    serde_json::from_str(&text).map_err(|e| Error::Unexpected {
        op: op.to_owned(),
        what: format!("not JSON: {e}"),
    })
}

/// Replaces (or creates) table `inet NAME` with `body` (the text between the braces) in
/// one transaction.
pub fn replace_table(name: &str, body: &str) -> Result<(), Error> {
    check_name(name)?;
    let script = format!(
        "add table inet {name}\ndelete table inet {name}\ntable inet {name} {{\n{body}\n}}\n"
    );
    run_script(&format!("install table inet {name}"), &script)
}

/// Deletes table `inet NAME`; a table that is not there is not an error.
pub fn delete_table(name: &str) -> Result<(), Error> {
    check_name(name)?;
    // `add` first makes the delete succeed whether or not the table exists.
    let script = format!("add table inet {name}\ndelete table inet {name}\n");
    run_script(&format!("delete table inet {name}"), &script)
}

/// Whether table `inet NAME` exists.
pub fn table_exists(name: &str) -> Result<bool, Error> {
    check_name(name)?;
    let doc = list_json("list tables", &["list", "tables", "inet"])?;
    Ok(objects(&doc, "table")?.any(|t| t.get("name").and_then(Value::as_str) == Some(name)))
}

/// The objects of kind `kind` (`"set"`, `"table"`, `"rule"`, ...) in an `nft -j` document
/// (`{"nftables": [{"metainfo": ...}, {"set": {...}}, ...]}`).
pub fn objects<'a>(
    doc: &'a Value,
    kind: &'a str,
) -> Result<impl Iterator<Item = &'a Value>, Error> {
    let list = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Unexpected {
            op: "parse".into(),
            what: "no top-level \"nftables\" array".into(),
        })?;
    Ok(list.iter().filter_map(move |o| o.get(kind)))
}

/// One element of a set with per-element counters, as `nft -j -nn` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// The key: the members of a concatenation, or the single value.
    pub key: Vec<Value>,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted (whole packets, network header included).
    pub bytes: u64,
    /// Seconds until the element times out, when the set has timeouts.
    pub expires: Option<u64>,
}

/// The elements of set `set` in an `nft -j -nn list set|table` document. A set without
/// elements has no `elem` key; elements without a counter count as 0.
pub fn set_elements(doc: &Value, set: &str) -> Result<Vec<Element>, Error> {
    let unexpected = |what: String| Error::Unexpected {
        op: format!("read set {set}"),
        what,
    };
    let Some(s) = objects(doc, "set")?.find(|s| s.get("name").and_then(Value::as_str) == Some(set))
    else {
        return Err(unexpected(format!("no set named {set:?}")));
    };
    let Some(elems) = s.get("elem") else {
        return Ok(Vec::new());
    };
    let elems = elems
        .as_array()
        .ok_or_else(|| unexpected("\"elem\" is not an array".into()))?;
    let mut out = Vec::with_capacity(elems.len());
    for e in elems {
        // With counters or timeouts an element is `{"elem": {"val": V, ...}}`; a bare
        // value otherwise.
        let (val, extra) = match e.get("elem") {
            Some(inner) => (
                inner
                    .get("val")
                    .ok_or_else(|| unexpected(format!("element without \"val\": {e}")))?,
                Some(inner),
            ),
            None => (e, None),
        };
        let key = match val.get("concat") {
            Some(Value::Array(parts)) => parts.clone(),
            Some(other) => return Err(unexpected(format!("\"concat\" is not an array: {other}"))),
            None => vec![val.clone()],
        };
        let counter = extra.and_then(|x| x.get("counter"));
        let num = |k: &str| {
            counter
                .and_then(|c| c.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        out.push(Element {
            key,
            packets: num("packets"),
            bytes: num("bytes"),
            expires: extra.and_then(|x| x.get("expires")).and_then(Value::as_u64),
        });
    }
    Ok(out)
}

/// A table this process installed; deleted by [`OwnedTable::delete`] or, best effort
/// (logged, never panicking), when dropped.
#[derive(Debug)]
pub struct OwnedTable {
    name: String,
    deleted: bool,
}

impl OwnedTable {
    /// Installs (replacing) table `inet NAME` with `body`.
    pub fn install(name: &str, body: &str) -> Result<Self, Error> {
        replace_table(name, body)?;
        Ok(Self {
            name: name.to_owned(),
            deleted: false,
        })
    }

    /// A handle that deletes nothing, for unit tests of the code around it.
    #[cfg(test)]
    pub(crate) fn detached_for_tests(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            deleted: true,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the table now.
    pub fn delete(mut self) -> Result<(), Error> {
        self.deleted = true;
        delete_table(&self.name)
    }
}

impl Drop for OwnedTable {
    fn drop(&mut self) {
        if !self.deleted {
            if let Err(e) = delete_table(&self.name) {
                tracing::warn!(table = %self.name, error = %e, "could not delete nftables table");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("shim6d_trigger").is_ok());
        assert!(check_name("a").is_ok());
        for bad in ["", "1a", "a-b", "a b", "a;b", "a}", &"a".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_ifname("shim6").is_ok());
        assert!(check_ifname("veth-a.10").is_ok());
        for bad in ["", "a\"b", "a b", "0123456789abcdef", "a/b"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn elements_of_all_shapes() {
        let doc: Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"set": {"name": "empty", "table": "t"}},
            {"set": {"name": "s", "table": "t", "elem": [
              {"elem": {"val": {"concat": ["2001:db8::1", 17, 53]}, "expires": 7,
                        "counter": {"packets": 3, "bytes": 1044}}},
              {"elem": {"val": "2001:db8::2"}},
              "2001:db8::3"
            ]}}]}"#,
        )
        .unwrap();
        assert!(set_elements(&doc, "empty").unwrap().is_empty());
        let e = set_elements(&doc, "s").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].key.len(), 3);
        assert_eq!(e[0].key[1], 17);
        assert_eq!((e[0].packets, e[0].bytes, e[0].expires), (3, 1044, Some(7)));
        assert_eq!((e[1].packets, e[1].expires), (0, None));
        assert_eq!(e[2].key, [Value::from("2001:db8::3")]);
        let err = set_elements(&doc, "missing").unwrap_err().to_string();
        assert!(err.contains("no set named \"missing\""), "{err}");
        let err = set_elements(&serde_json::json!({"x": 1}), "s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nftables"), "{err}");
        let bad = serde_json::json!({"nftables": [{"set": {"name": "s", "elem": [{"elem": {}}]}}]});
        assert!(set_elements(&bad, "s").is_err());
    }
}
