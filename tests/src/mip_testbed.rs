//! The MipShim6 topology (issue 7): a mobile node, a correspondent, two home agents and
//! one router, with shim6d daemons in the MipShim6 roles.
//!
//! ```text
//!            v1 2001:db8:a1::/64 ┐            ┌ c1 2001:db8:c1::/64 ┐
//!   MN ──────────────────────────┤            ├─────────────────────── CN
//!            v2 2001:db8:a2::/64 ┘   router   └ c2 2001:db8:c2::/64 ┘
//!   HA1 ── 2001:db8:e1::/64 ─────┤   (R)      │
//!   HA2 ── 2001:db8:e2::/64 ─────┘            │
//!   home prefixes: 2001:db8:1001::/64 → HA1, 2001:db8:1002::/64 → HA2 (routes in R)
//! ```
//!
//! The mobile node (and the correspondent when it is mobile too) reaches a visited
//! network by holding an address on it: [`MipBed::attach`] adds `2001:db8:<net>::1` to
//! the interface, [`MipBed::detach`] deletes it. Each visited prefix leaves by its own
//! link (a source rule and a table per interface), so the care-of address picks the
//! path. Home agents forward (the inner packets they decapsulate go on to the
//! correspondent). Namespaces are removed on drop.

use std::{
    io,
    net::Ipv6Addr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use xfrm_sys::netns::{self, Netns};

use crate::{
    daemons::{Daemon, Stream, current_pair_of, prefixes64, until, write_set},
    testbed::{addr, doc_addr, namespace, source_route, up},
};

/// Home address of the mobile node at HA1.
pub const HOA1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1001, 0, 0, 0, 0, 0x100);
/// Home address of the mobile node at HA2.
pub const HOA2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1002, 0, 0, 0, 0, 0x100);
/// Home address of the correspondent at HA2 (when it is mobile).
pub const HOA_CN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1002, 0, 0, 0, 0, 0x200);
/// SPI of the mobile node's security associations (RFC 4285 §5.1: above 255).
pub const SPI: u32 = 300;
/// SPI of the correspondent's.
pub const SPI_CN: u32 = 301;
/// The mobile node's MN-HA key (hexadecimal).
pub const KEY: &str = "6d69707368696d36206b6579206f6e65";
/// The correspondent's.
pub const KEY_CN: &str = "6d6970736869366d206b65792074776f";

/// A host's interface on visited network `net`: its name and the network number.
#[derive(Clone, Copy, Debug)]
pub struct Visited {
    /// Interface name on the host.
    pub dev: &'static str,
    /// `2001:db8:<net>::/64`.
    pub net: u16,
}

impl Visited {
    /// The host's address on it.
    pub fn address(&self) -> Ipv6Addr {
        doc_addr(self.net, 1)
    }

    /// The network's prefix (`/64`).
    pub fn net_prefix(&self) -> Ipv6Addr {
        doc_addr(self.net, 0)
    }
}

/// The mobile node's visited networks.
pub const MN_NETS: [Visited; 2] = [
    Visited {
        dev: "v1",
        net: 0xa1,
    },
    Visited {
        dev: "v2",
        net: 0xa2,
    },
];
/// The correspondent's.
pub const CN_NETS: [Visited; 2] = [
    Visited {
        dev: "c1",
        net: 0xc1,
    },
    Visited {
        dev: "c2",
        net: 0xc2,
    },
];

/// The topology (module docs).
#[derive(Debug)]
pub struct MipBed {
    /// The mobile node.
    pub mn: Netns,
    /// The correspondent.
    pub cn: Netns,
    /// Home agent 1 (`2001:db8:e1::1`, home prefix `2001:db8:1001::/64`).
    pub ha1: Netns,
    /// Home agent 2 (`2001:db8:e2::1`, home prefix `2001:db8:1002::/64`).
    pub ha2: Netns,
    /// The router.
    pub r: Netns,
}

/// Home agent `i`'s (1 or 2) address.
pub fn ha_addr(i: u16) -> Ipv6Addr {
    doc_addr(0xe0 + i, 1)
}

impl MipBed {
    /// Builds it; the mobile node starts on its first visited network, the
    /// correspondent on its first.
    pub fn new(tag: &str) -> io::Result<Self> {
        let mn = namespace(&format!("{tag}m"), false)?;
        let cn = namespace(&format!("{tag}c"), false)?;
        let ha1 = namespace(&format!("{tag}h1"), true)?;
        let ha2 = namespace(&format!("{tag}h2"), true)?;
        let r = namespace(&format!("{tag}r"), true)?;
        for (host, nets) in [(&mn, MN_NETS), (&cn, CN_NETS)] {
            for (k, v) in nets.iter().enumerate() {
                let rdev = format!("r{}", v.dev);
                netns::veth(host, v.dev, &r, &rdev)?;
                up(host, v.dev)?;
                up(&r, &rdev)?;
                addr(&r, doc_addr(v.net, 0xff), &rdev)?;
                // Each visited prefix leaves by its own link.
                source_route(host, v.net, v.dev, true, 101 + k, 1000 + k)?;
            }
        }
        for (i, ha) in [(1u16, &ha1), (2, &ha2)] {
            let rdev = format!("rh{i}");
            netns::veth(ha, "h0", &r, &rdev)?;
            up(ha, "h0")?;
            up(&r, &rdev)?;
            addr(ha, ha_addr(i), "h0")?;
            addr(&r, doc_addr(0xe0 + i, 0xff), &rdev)?;
            ha.ip(&[
                "-6",
                "route",
                "add",
                "default",
                "via",
                &doc_addr(0xe0 + i, 0xff).to_string(),
            ])?;
            r.ip(&[
                "-6",
                "route",
                "add",
                &format!("{}/64", doc_addr(0x1000 + i, 0)),
                "via",
                &ha_addr(i).to_string(),
            ])?;
        }
        let bed = Self {
            mn,
            cn,
            ha1,
            ha2,
            r,
        };
        bed.attach(&bed.mn, MN_NETS[0])?;
        bed.attach(&bed.cn, CN_NETS[0])?;
        Ok(bed)
    }

    /// `host` gets its address on `v` (arrives in that visited network).
    pub fn attach(&self, host: &Netns, v: Visited) -> io::Result<()> {
        addr(host, v.address(), v.dev)
    }

    /// `host` loses its address on `v` (leaves that visited network).
    pub fn detach(&self, host: &Netns, v: Visited) -> io::Result<()> {
        del_address(host, v.address(), v.dev)
    }
}

/// Adds `a/64` to `dev` in `ns` (no duplicate address detection).
pub fn add_address(ns: &Netns, a: Ipv6Addr, dev: &str) -> io::Result<()> {
    addr(ns, a, dev)
}

/// Deletes `a/64` from `dev` in `ns`.
pub fn del_address(ns: &Netns, a: Ipv6Addr, dev: &str) -> io::Result<()> {
    ns.ip(&["-6", "addr", "del", &format!("{a}/64"), "dev", dev])
        .map(drop)
}

/// A scenario on the bed: the topology, a directory and the daemons started there.
/// Dropped: the daemons stop first (field order: before the namespaces go), and the
/// directory is removed unless the test is failing (the logs are what to read then).
#[derive(Debug)]
pub struct Run {
    /// The daemons, in the order started.
    pub daemons: Vec<Daemon>,
    /// The topology.
    pub bed: MipBed,
    /// `$TMPDIR/shim6d-mip-TAG`, one subdirectory per daemon.
    pub dir: PathBuf,
}

impl Run {
    /// The bed for `tag` (unique per test) and its directory's path; no daemon yet.
    pub fn new(tag: &str) -> io::Result<Self> {
        let bed = MipBed::new(tag)?;
        Ok(Self {
            daemons: Vec::new(),
            bed,
            dir: std::env::temp_dir().join(format!("shim6d-mip-{tag}")),
        })
    }

    /// Creates the directory of daemon `name` (for its identity before it starts);
    /// returns its path.
    pub fn host_dir(&self, name: &str) -> io::Result<PathBuf> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            d.stop();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts a stream from home address `hoa` (in `mn`) to `cnu` (in `cn`) before any
/// context: it goes through home agent `ha`'s tunnel (both directions counted there).
///
/// # Panics
/// When it does not flow, or `ha` did not carry it.
pub fn stream_through_tunnel(
    mn: &Netns,
    cn: &Netns,
    hoa: Ipv6Addr,
    cnu: Ipv6Addr,
    ha: &Daemon,
) -> Stream {
    let before = tunnelled(ha);
    let stream = Stream::start(mn, cn, hoa, cnu).expect("stream");
    until(
        Duration::from_secs(10),
        "a stream through the tunnel",
        || Ok(stream.received() > 20_000),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", ha.log()));
    assert!(
        tunnelled(ha) > before + 20,
        "the new exchange goes through the home agent"
    );
    stream
}

/// `establish CNU` on the mobile node's daemon, then waits (at most 15 s) until both
/// sides are ESTABLISHED.
///
/// # Panics
/// When the command fails or the state does not come (with both logs).
pub fn establish(mnd: &Daemon, cnd: &Daemon, cnu: Ipv6Addr) {
    let (code, out) = mnd.ctl(&format!("establish {cnu}")).unwrap();
    assert_eq!(code, 0, "{out}");
    until(Duration::from_secs(15), "ESTABLISHED on both sides", || {
        Ok(mnd.state()?.as_deref() == Some("ESTABLISHED")
            && cnd.state()?.as_deref() == Some("ESTABLISHED"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", mnd.log(), cnd.log()));
}

/// Waits (at most `wait`) until the mobile node's context is on the direct path `pair`
/// (care-of address, correspondent); returns how long after `since` it was first seen
/// there.
///
/// # Panics
/// When it is not there in time (with `mnd`'s contexts and both logs).
pub fn until_direct_path(
    mnd: &Daemon,
    cnd: &Daemon,
    pair: (Ipv6Addr, Ipv6Addr),
    since: Instant,
    wait: Duration,
) -> Duration {
    let mut at = None;
    until(wait, "the context on the direct path", || {
        if current_pair_of(mnd)? == pair {
            at.get_or_insert(since.elapsed());
            return Ok(true);
        }
        Ok(false)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n--- mn ---\n{}\n--- cn ---\n{}",
            serde_json::to_string_pretty(&mnd.contexts().unwrap_or_default()).unwrap_or_default(),
            mnd.log(),
            cnd.log()
        )
    });
    at.unwrap_or_else(|| since.elapsed())
}

/// The stream after a movement: waits (at most 20 s) until 20 000 more octets arrived,
/// then returns what home agent `ha` had carried (both tunnel directions, [`tunnelled`])
/// before and after 20 000 more did (at most 10 s). On the direct path it carries
/// (almost) nothing more.
///
/// # Panics
/// When the stream does not flow again (with `mnd`'s and `cnd`'s logs), or stalls after.
pub fn tunnelled_after_movement(
    stream: &Stream,
    ha: &Daemon,
    mnd: &Daemon,
    cnd: &Daemon,
) -> (u64, u64) {
    let at = stream.received();
    until(Duration::from_secs(20), "the stream flowing again", || {
        Ok(stream.received() > at + 20_000)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", mnd.log(), cnd.log()));
    let (before, at) = (tunnelled(ha), stream.received());
    until(Duration::from_secs(10), "more of the stream", || {
        Ok(stream.received() > at + 20_000)
    })
    .unwrap();
    (before, tunnelled(ha))
}

/// Packets home agent `ha` carried, both tunnel directions (`bindings --json`).
///
/// # Panics
/// When the daemon does not answer with those counters.
pub fn tunnelled(ha: &Daemon) -> u64 {
    let s = &ha.json("bindings").unwrap()["stats"];
    s["tunnelled_in"].as_u64().unwrap() + s["tunnelled_out"].as_u64().unwrap()
}

/// The longest gap (ms) between two reads of `stream`'s receiver after `at`, and the
/// longest before it (the baseline of the same run).
pub fn gaps_ms(stream: &Stream, at: Instant) -> (Option<f64>, Option<f64>) {
    let p = stream.progress.lock().unwrap_or_else(|p| p.into_inner());
    let gap = |after: bool| {
        p.windows(2)
            .filter(|w| (w[1].0 >= at) == after)
            .map(|w| (w[1].0 - w[0].0).as_secs_f64() * 1000.0)
            .reduce(f64::max)
    };
    (gap(true), gap(false))
}

/// The `[mip6]` section of a home agent serving `(home address, SPI, key)`s.
pub fn ha_section(i: u16, nodes: &[(Ipv6Addr, u32, &str)]) -> String {
    let mut s = format!(
        "[mip6]\nrole = \"home-agent\"\naddress = \"{}\"\nhome_prefixes = [\"{}/64\"]\n",
        ha_addr(i),
        doc_addr(0x1000 + i, 0)
    );
    for (hoa, spi, key) in nodes {
        s.push_str(&format!(
            "[[mip6.mobile_node]]\nhome_address = \"{hoa}\"\nspi = {spi}\nkey = \"{key}\"\n"
        ));
    }
    s
}

/// The `[mip6]` section of a mobile node with `(home address, home agent, SPI, key)`s.
pub fn mn_section(homes: &[(Ipv6Addr, Ipv6Addr, u32, &str)]) -> String {
    let mut s = "[mip6]\nrole = \"mobile-node\"\n".to_owned();
    for (hoa, ha, spi, key) in homes {
        s.push_str(&format!(
            "[[mip6.home]]\nhome_address = \"{hoa}\"\nhome_agent = \"{ha}\"\nspi = {spi}\n\
             key = \"{key}\"\n"
        ));
    }
    s
}

/// Starts shim6d in `ns` with `sections` (a `[mip6]` section, and any other but
/// `[identity]`, `[trigger]`, `[control]`, `[log]`) and a unix control socket, in
/// `dir/name`.
pub fn daemon(
    shim6d: &Path,
    ns: &Netns,
    dir: &Path,
    name: &str,
    sections: &str,
) -> io::Result<Daemon> {
    daemon_with(shim6d, ns, dir, name, "", sections)
}

/// [`daemon`] with extra `[identity]` keys (`ulids = [...]`, or `mode = "cga"` and
/// `key_file` for a [`cga_compatible_set`]); the HBA file is `dir/name/hba.json` (none
/// there: no Shim6 core).
pub fn daemon_with(
    shim6d: &Path,
    ns: &Netns,
    dir: &Path,
    name: &str,
    identity: &str,
    sections: &str,
) -> io::Result<Daemon> {
    let mode = if identity.contains("mode =") {
        ""
    } else {
        "mode = \"hba\"\n"
    };
    let config = format!(
        "# written by shim6_tests::mip_testbed for {name}\n\
         [identity]\n{mode}params_file = \"hba.json\"\n{identity}\n\
         [trigger]\nmode = \"manual\"\n\
         [control]\nlisten = \"\"\nunix_socket = \"ctl.sock\"\n\
         [log]\nlevel = \"info,shim6d=debug\"\n{sections}"
    );
    Daemon::launch(shim6d, ns, dir.join(name), &config)
}

/// A CGA-compatible HBA set (RFC 5535 §5, Multi-Prefix P = 1, Sec 0) over `prefixes`
/// with a new 1024-bit RSA key, written as `cga-tool generate --sec 0 --hba-compat
/// --key-out KEY --format json` does: the parameters to `out`, the key (PEM) to `key`.
/// Its members, one per prefix in order. A daemon using it has `[identity] mode =
/// "cga"` and `key_file = KEY`: a locator outside the set is advertised with the CGA
/// method, covered by a CGA Signature (RFC 5533 §5.15.5, §7.2).
pub fn cga_compatible_set(
    prefixes: &[Ipv6Addr],
    out: &Path,
    key: &Path,
) -> io::Result<Vec<Ipv6Addr>> {
    let private = cga::PrivateKey::generate(1024).map_err(io::Error::other)?;
    let public = private.public_key().map_err(io::Error::other)?;
    let g = cga::Generator::hba(&prefixes64(prefixes), Some(&public), cga::Sec::ZERO)
        .map_err(|e| io::Error::other(format!("CGA-compatible HBA set: {e}")))?;
    // Sec 0: any modifier will do (RFC 3972 §4 step 3 has nothing to search).
    let set = g.finish(cga::generate::random_modifier().map_err(io::Error::other)?);
    let members = write_set(&set.members(), out)?;
    private.save(key, true).map_err(io::Error::other)?;
    Ok(members)
}
