//! Decoding of command-line values: hex strings, `@FILE` parameters, addresses, prefixes.
//! Every failure is one line saying which argument is wrong and why.

use std::net::Ipv6Addr;
use std::path::Path;

use crate::Fail;

/// Decodes hex, ignoring whitespace and `:` separators.
pub fn hex(what: &str, s: &str) -> Result<Vec<u8>, Fail> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    if digits.len() % 2 != 0 {
        return Err(Fail::Input(format!(
            "{what}: odd number of hex digits ({})",
            digits.len()
        )));
    }
    let val = |c: u8, at: usize| -> Result<u8, Fail> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(Fail::Input(format!(
                "{what}: {:?} at position {at} is not a hex digit",
                char::from(c)
            ))),
        }
    };
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(i, p)| Ok(val(p[0], 2 * i)? << 4 | val(p[1], 2 * i + 1)?))
        .collect()
}

/// Lower-case hex.
pub fn to_hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(2 * b.len()), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// An IPv6 address argument.
pub fn address(what: &str, s: &str) -> Result<Ipv6Addr, Fail> {
    s.parse()
        .map_err(|_| Fail::Input(format!("{what}: {s:?} is not an IPv6 address")))
}

/// A `--prefix` argument (`2001:db8:1::/64`).
pub fn prefix(s: &str) -> Result<cga::Prefix64, Fail> {
    s.parse::<cga::Prefix64>()
        .map_err(|e| Fail::Input(format!("--prefix: {e}")))
}

/// One set of parameters found in a `--params` argument, with the address it belongs
/// to when the source says so (a `cga-tool generate --format json` file).
pub struct ParamsEntry {
    pub address: Option<Ipv6Addr>,
    pub params: Vec<u8>,
}

/// Reads `--params HEX|@FILE`. A file may hold hex text, the raw binary structure, or
/// the JSON that `cga-tool generate --format json` writes (then every address entry).
pub fn params(arg: &str) -> Result<Vec<ParamsEntry>, Fail> {
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(vec![ParamsEntry {
            address: None,
            params: hex("--params", arg)?,
        }]);
    };
    let bytes = std::fs::read(Path::new(path))
        .map_err(|e| Fail::Input(format!("--params: cannot read {path}: {e}")))?;
    let text = std::str::from_utf8(&bytes).ok().map(str::trim);
    match text {
        Some(t) if t.starts_with('{') => from_json(path, t),
        Some(t)
            if !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || b == b':') =>
        {
            Ok(vec![ParamsEntry {
                address: None,
                params: hex(&format!("--params @{path}"), t)?,
            }])
        }
        // Anything else is taken as the binary structure itself (e.g. LinShim6's
        // `rfc_example.params`).
        _ => Ok(vec![ParamsEntry {
            address: None,
            params: bytes,
        }]),
    }
}

fn from_json(path: &str, text: &str) -> Result<Vec<ParamsEntry>, Fail> {
    let bad = |why: String| Fail::Input(format!("--params @{path}: {why}"));
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let list = v
        .get("addresses")
        .and_then(|a| a.as_array())
        .ok_or_else(|| bad("no \"addresses\" array (expected cga-tool generate JSON)".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let params = e
            .get("params")
            .and_then(|p| p.as_str())
            .ok_or_else(|| bad(format!("addresses[{i}] has no \"params\" string")))?;
        let address = match e.get("address").and_then(|a| a.as_str()) {
            Some(a) => Some(address(&format!("--params @{path} addresses[{i}]"), a)?),
            None => None,
        };
        out.push(ParamsEntry {
            address,
            params: hex(&format!("--params @{path} addresses[{i}].params"), params)?,
        });
    }
    if out.is_empty() {
        return Err(bad("the \"addresses\" array is empty".into()));
    }
    Ok(out)
}

/// The parameters to check `addr` against: the entry for that address if the source
/// names addresses, else the first.
pub fn params_for(entries: Vec<ParamsEntry>, addr: Option<&Ipv6Addr>) -> Vec<u8> {
    let pos = addr
        .and_then(|a| entries.iter().position(|e| e.address.as_ref() == Some(a)))
        .unwrap_or(0);
    entries
        .into_iter()
        .nth(pos)
        .map(|e| e.params)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding() {
        assert_eq!(hex("x", "0aFf").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(hex("x", "0a:ff 01\n").unwrap(), vec![0x0a, 0xff, 0x01]);
        assert!(matches!(hex("x", "abc"), Err(Fail::Input(m)) if m.contains("odd")));
        assert!(matches!(hex("x", "zz"), Err(Fail::Input(m)) if m.contains("not a hex digit")));
        assert_eq!(to_hex(&[0, 0xab]), "00ab");
    }
}
