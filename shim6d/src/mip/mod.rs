//! MipShim6 in the daemon (issue 7): the `mip6` crate's sans-IO home agent and mobile
//! node run over a TUN device and raw sockets of their own.
//!
//! # Layout
//!
//! | module | what |
//! | --- | --- |
//! | [`Mip6Config`] | the `[mip6]` section: role, home-agent and mobile-node settings, keys |
//! | [`driver`] | [`driver::Driver`]: the role's core on tokio — the `mip6` TUN, the protocol-41 raw socket, the `IPPROTO_RAW` send socket, routes and rules, the address monitor (mobile node), timers, the `bindings` / `bul` snapshots |
//! | [`report`] | the `bindings` and `bul` replies (text and JSON) built from the cores, pure functions |
//!
//! # Where it sits
//!
//! The driver is a task of its own in the daemon's network namespace, like the MPTCP
//! path manager: it shares nothing with the Shim6 data plane but the process, so the
//! Shim6 TUN, its routing rule and the protocol-140 socket are untouched. Its device is
//! `[mip6] tun` (default `mip6`):
//! - **home agent**: each home prefix is routed into it (RFC 6275 §10.4.1 interception;
//!   there is no home link). A packet read from it goes to
//!   `HomeAgent::handle_home_link_packet` at offset 40 and leaves encapsulated (RFC 2473)
//!   through the raw send socket; a reverse-tunnelled packet (protocol 41) is
//!   decapsulated after the RFC 6275 §10.4.5 check and written into the device, and the
//!   kernel forwards it.
//! - **mobile node**: the home addresses live on the device (they are the MipShim6
//!   ULIDs); a rule `from HOA lookup [mip6] table` sends whatever leaves from a home
//!   address into it, and the driver reverse-tunnels it to the home agent (RFC 6275
//!   §11.3.1). Care-of addresses come from the address monitor (every available global
//!   address of a running interface other than the TUNs, or of `care_of_interfaces`).
//!
//! # Why userspace and not ip6tnl/ESP
//!
//! The kernel here has neither `CONFIG_IPV6_TUNNEL` (ip6tnl) nor ESP nor MIPv6
//! (docs/digest-errata.md, `mip6` crate docs): the tunnel is the driver's, and Binding
//! Updates carry the RFC 4285 MN-HA authentication option (keys from `[mip6]`). A BU from
//! anyone without the key of the home address is answered with BA 146 (or discarded,
//! RFC 4285 §5.1.1) and counted; `bindings --json` shows the counters.
//!
//! # Shim6 route optimisation (issue 7 item 2)
//!
//! The mobile node's Shim6 core (`crate::proto_core`, when `[identity]` names the home
//! address as ULID) needs no channel from the driver:
//! - its **locators** come from the service loop's address monitor like any host's: the
//!   care-of addresses on the visited interfaces, and the home addresses on the
//!   `[mip6]` device unless `[interfaces] exclude` lists it or `[identity] locators`
//!   fixes the set. A care-of address change is a locator change: Update Request to
//!   every peer (RFC 5533 §10.1), and REAP leaves a removed current locator;
//! - with `route_optimisation`, the service loop hints each home address down to REAP
//!   ([`route_optimised_homes`], `ProtocolCore::local_address_down`, RFC 5534 §3.2)
//!   after every locator change and when a context comes up: the context explores and
//!   settles on a (care-of address, peer) pair its probes confirmed — the direct path;
//! - the routing: the Shim6 rule (`[routing] rule_priority`, 100) comes before the
//!   home-address rule (`[mip6] rule_priority`, 110), so a peer with a context goes
//!   through the Shim6 TUN and only the others through the home agent; a Shim6 packet
//!   sent from a home address (a context on a home address pair) is marked, skips the
//!   Shim6 table, matches the home-address rule and is reverse-tunnelled like any
//!   other; the Shim6 TUN's MTU leaves room for that ([`shim6_tun_mtu`]). A flow that
//!   started through the tunnel moves onto its context when it comes up: the plumbing
//!   flushes the routes sockets cached after adding the peer's route
//!   (`Plumbing::flush_route_caches`).
//!
//! # Care-of addresses outside the HBA set (issue 7: "new CGA addresses for new prefixes")
//!
//! A care-of address is a Shim6 locator only if the correspondent can bind it to the
//! home address (RFC 5533 §7.2): as a member of the HBA set (RFC 5535 §7.2: the visited
//! prefixes known in advance), or, whatever its prefix, by the CGA Signature over the
//! locator list. The second needs an identity with a real key: a CGA-compatible HBA
//! set over the home prefixes (`cga-tool generate --hba-compat --key KEY`, Multi-Prefix
//! P = 1, RFC 5535 §5) with `[identity] mode = "cga"` and `key_file = KEY` (the daemon
//! refuses a key that is not the parameters', `crate::proto_core`). The home address
//! is then bound by HBA, a care-of address on an unknown prefix goes out with method
//! CGA: signed in I2/R2, and on movement in the Update Request (RFC 5533 §10.1), the
//! signature made once per new list (`shim6_proto::LocalIdentity::set_locators`).
//!
//! With `[mip6] cga_care_of = true` the care-of addresses are moreover CGAs the daemon
//! forms ([`CareOfCgas`]): on each `/64` of a visited network's own address the driver
//! adds the CGA of the identity's public key (`nodad`, `noprefixroute`) and registers
//! it; the network's own address is neither care-of address nor Shim6 locator (the
//! service loop's locator set keeps only the CGAs on the care-of interfaces); when the
//! network's address goes, so does the CGA. `bul --json` lists them with their
//! parameters (`care_of_cgas`).
//!
//! This differs from the `mip6` crate's wiring notes in one way: the `MnEvent`s are
//! logged and shown by `bul`, not turned into locator sets; the address monitor and the
//! hint give the same sets (a home address whose home agent fails stays a locator and
//! REAP finds it dead, which is how `HoA1` → `HoA2` happens in the netns test).

pub mod driver;
pub mod report;

use std::{fmt, net::Ipv6Addr, time::Duration};

use xfrm_sys::Ipv6Prefix;

/// `[mip6] role`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Role {
    /// No Mobile IPv6 (the default).
    #[default]
    None,
    /// Home agent (RFC 6275 §10).
    HomeAgent,
    /// Mobile node (RFC 6275 §11).
    MobileNode,
}

impl Role {
    /// The configuration spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::HomeAgent => "home-agent",
            Self::MobileNode => "mobile-node",
        }
    }
}

/// A shared MN-HA key (RFC 4285 §5.1); its `Debug` never shows the octets.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} octets>)", self.0.len())
    }
}

/// `[[mip6.mobile_node]]` (home agent): a mobile node this home agent serves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ServedNode {
    /// Its home address (inside one of the home prefixes).
    pub home_address: Ipv6Addr,
    /// Mobility SPI (RFC 4285 §5.1: 256 and above).
    pub spi: u32,
    /// The shared key.
    pub key: Key,
}

/// `[[mip6.home]]` (mobile node): one home registration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Home {
    /// The home address (a MipShim6 ULID).
    pub home_address: Ipv6Addr,
    /// Its home agent.
    pub home_agent: Ipv6Addr,
    /// Mobility SPI (RFC 4285 §5.1: 256 and above).
    pub spi: u32,
    /// The shared key.
    pub key: Key,
}

/// The `[mip6]` section (docs/daemon.md "MipShim6"; every key with its default in
/// conf/shim6d.toml).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Mip6Config {
    /// Which role the daemon plays.
    pub role: Role,
    /// The device of the role (interception / reverse tunnel).
    pub tun: String,
    /// Its MTU: the links' 1500 minus the 40-octet outer header (RFC 2473 §6.1), so
    /// that a tunnelled packet is never too big for the link.
    pub mtu: u32,
    /// Mobile node: the routing table of the `from HOA` rule.
    pub table: u32,
    /// Mobile node: the priority of that rule; after Shim6's rule (`[routing]
    /// rule_priority`), so that a peer with a Shim6 context goes through the Shim6 TUN
    /// (route optimisation) and only the others through the home agent.
    pub rule_priority: u32,
    /// Home agent: its own address (BA source, tunnel end point).
    pub address: Option<Ipv6Addr>,
    /// Home agent: the home prefixes it intercepts.
    pub home_prefixes: Vec<Ipv6Prefix>,
    /// Home agent: the longest lifetime granted (RFC 6275 §10.3.1 "MAY reduce").
    pub max_lifetime: Duration,
    /// Home agent: BUs must carry the RFC 4285 §6 timestamp (else BA 145).
    pub require_timestamp: bool,
    /// Home agent: the mobile nodes served.
    pub mobile_nodes: Vec<ServedNode>,
    /// Mobile node: the home registrations, in order of preference.
    pub homes: Vec<Home>,
    /// Mobile node: the lifetime asked for in BUs (RFC 6275 §6.1.7).
    pub lifetime: Duration,
    /// Mobile node: unanswered BUs after which a home agent is reported unreachable.
    pub unreachable_after: u32,
    /// Mobile node: the interfaces whose addresses are care-of addresses (empty: all but
    /// `lo` and the daemon's TUNs).
    pub care_of_interfaces: Vec<String>,
    /// Mobile node with a Shim6 core: the home addresses stay the ULIDs of Shim6
    /// contexts but carry no Shim6 traffic, so that REAP moves each context to a
    /// care-of address pair it has probed (route optimisation); `false` keeps contexts on
    /// the home agent's tunnel.
    pub route_optimisation: bool,
    /// Mobile node with a signing Shim6 identity (`[identity] mode = "cga"`): on each
    /// visited `/64` the driver forms a CGA of the identity's key ([`CareOfCgas`]),
    /// adds it to the interface and uses it, and only it, as that network's care-of
    /// address and Shim6 locator (issue 7: "new CGA addresses for new prefixes").
    pub cga_care_of: bool,
}

/// The home addresses the Shim6 core must not use as locators (a mobile node with
/// `route_optimisation`): the service loop sends each as a trusted "local address
/// down" hint (RFC 5534 §3.2) to every context after a locator change and when a
/// context comes up.
pub fn route_optimised_homes(c: &Mip6Config) -> Vec<Ipv6Addr> {
    if c.role == Role::MobileNode && c.route_optimisation {
        c.homes.iter().map(|h| h.home_address).collect()
    } else {
        Vec::new()
    }
}

impl Default for Mip6Config {
    fn default() -> Self {
        Self {
            role: Role::None,
            tun: "mip6".into(),
            mtu: 1500 - 40,
            table: 52,
            rule_priority: 110,
            address: None,
            home_prefixes: Vec::new(),
            max_lifetime: Duration::from_secs(420),
            require_timestamp: false,
            mobile_nodes: Vec::new(),
            homes: Vec::new(),
            lifetime: Duration::from_secs(420),
            unreachable_after: 3,
            care_of_interfaces: Vec::new(),
            route_optimisation: true,
            cga_care_of: false,
        }
    }
}

/// `[mip6] cga_care_of`: the care-of addresses a mobile node forms, one CGA (RFC 3972
/// §4) per visited `/64` prefix, all from one parameter set — the Shim6 identity's
/// public key, Sec 0, a modifier drawn at start, no extension — so that only the Subnet
/// Prefix differs between them and whether an address is one of them is a hash away
/// ([`CareOfCgas::is_ours`]): the driver forms them, the service loop keeps only them
/// as locators on the care-of interfaces.
///
/// Sec 0 because nothing here leans on the address–key binding's strength: Shim6 binds
/// a care-of locator to the ULID by the CGA Signature over the locator list (RFC 5533
/// §7.2, §5.15.5), not by the locator being a CGA; the CGA property serves protocols
/// that do check it (SEND, RFC 3971) at no search cost (RFC 3972 §4 step 3 is empty at
/// Sec 0).
#[derive(Clone, Debug)]
pub struct CareOfCgas {
    set: cga::AddressSet,
}

impl CareOfCgas {
    /// The parameter set for `key` with a fresh random modifier.
    ///
    /// # Errors
    /// The OS random source failed.
    pub fn new(key: &cga::PublicKey) -> Result<Self, String> {
        let modifier =
            cga::generate::random_modifier().map_err(|e| format!("CGA modifier: {e}"))?;
        Ok(Self {
            set: cga::Generator::cga(key, cga::Sec::ZERO).finish(modifier),
        })
    }

    /// The public key of `identity.key_file` (the Shim6 identity's: RFC 5533 §7.2 needs
    /// the locators signed by the ULID's key, so the CGAs carry the same one).
    ///
    /// # Errors
    /// The key does not load.
    pub fn load(key_file: &std::path::Path) -> Result<Self, String> {
        let key = cga::PrivateKey::load(key_file)
            .and_then(|k| k.public_key())
            .map_err(|e| format!("identity.key_file {}: {e}", key_file.display()))?;
        Self::new(&key)
    }

    /// The CGA on the `/64` of `a` (RFC 3972 §4 steps 5–7).
    pub fn address_on(&self, a: Ipv6Addr) -> Ipv6Addr {
        self.set.address(&prefix64(a))
    }

    /// Its CGA Parameters (RFC 3972 §4 step 9), what a verifier needs.
    pub fn params_on(&self, a: Ipv6Addr) -> Vec<u8> {
        self.set.params(&prefix64(a)).to_bytes()
    }

    /// Whether `a` is the CGA of its own `/64`.
    pub fn is_ours(&self, a: Ipv6Addr) -> bool {
        self.address_on(a) == a
    }
}

fn prefix64(a: Ipv6Addr) -> [u8; 8] {
    let mut p = [0u8; 8];
    p.copy_from_slice(&a.octets()[..8]);
    p
}

/// The Shim6 TUN's MTU on a mobile node: a packet the Shim6 core sends from a home
/// address as locator (a context on the home agent's path) carries the payload header
/// (8 octets, RFC 5533 §5.1) and then goes through the `[mip6]` device, so it must fit
/// `[mip6] mtu`. Other roles keep `mtu`.
pub fn shim6_tun_mtu(c: &Mip6Config, mtu: u32) -> u32 {
    if c.role == Role::MobileNode {
        mtu.min(c.mtu.saturating_sub(8)).max(1280)
    } else {
        mtu
    }
}

/// A lifetime in the 4-second units of the Binding Update (RFC 6275 §6.1.7), rounded
/// down, at least 1, at most 65535.
pub fn lifetime_units(d: Duration) -> u16 {
    u16::try_from((d.as_secs() / 4).max(1)).unwrap_or(u16::MAX)
}

/// Parses a key written in hexadecimal (RFC 4285 §5.1 suggests 16 octets; 1 to 64 are
/// accepted).
pub fn parse_key(s: &str) -> Result<Key, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || !s.len().is_multiple_of(2) || s.len() > 128 {
        return Err(format!(
            "a key is 1 to 64 octets in hexadecimal (an even number of hex digits), got {} digits",
            s.len()
        ));
    }
    let mut out = Vec::with_capacity(s.len() / 2);
    for i in (0..s.len()).step_by(2) {
        let byte = s
            .get(i..i + 2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
            .ok_or_else(|| "a key is hexadecimal digits only".to_owned())?;
        out.push(byte);
    }
    Ok(Key(out))
}

impl Mip6Config {
    /// The home agent core's configuration (`None` unless the role is home agent with an
    /// address).
    pub fn ha_config(&self) -> Option<mip6::ha::HaConfig> {
        if self.role != Role::HomeAgent {
            return None;
        }
        let mut c = mip6::ha::HaConfig::new(self.address?);
        c.home_prefixes = self
            .home_prefixes
            .iter()
            .map(|p| mip6::ha::HomePrefix {
                prefix: mip6::Prefix::new(p.addr(), p.prefix_len()),
                valid_until: None,
            })
            .collect();
        c.mobile_nodes = self
            .mobile_nodes
            .iter()
            .filter_map(|m| {
                Some(mip6::ha::MobileNodeEntry {
                    home_address: m.home_address,
                    keys: vec![mip6::auth::MnHaKey::new(m.spi, m.key.0.clone())?],
                })
            })
            .collect();
        c.max_lifetime_units = lifetime_units(self.max_lifetime);
        c.require_timestamp = self.require_timestamp;
        Some(c)
    }

    /// The mobile node core's configuration (`None` unless the role is mobile node).
    pub fn mn_config(&self) -> Option<mip6::mn::MnConfig> {
        if self.role != Role::MobileNode {
            return None;
        }
        let homes = self
            .homes
            .iter()
            .filter_map(|h| {
                Some(mip6::mn::HomeConfig {
                    home_address: h.home_address,
                    home_agent: h.home_agent,
                    key: mip6::auth::MnHaKey::new(h.spi, h.key.0.clone())?,
                    lifetime_units: lifetime_units(self.lifetime),
                })
            })
            .collect();
        let mut c = mip6::mn::MnConfig::new(homes);
        c.unreachable_after = self.unreachable_after;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_hide() {
        assert_eq!(parse_key("00ff10").unwrap().0, vec![0, 0xff, 0x10]);
        assert_eq!(parse_key("0xAB").unwrap().0, vec![0xab]);
        assert!(parse_key("").is_err());
        assert!(parse_key("abc").unwrap_err().contains("even number"));
        assert!(parse_key("zz").unwrap_err().contains("hexadecimal"));
        assert!(parse_key(&"a".repeat(130)).is_err());
        assert_eq!(format!("{:?}", Key(vec![1, 2, 3])), "Key(<3 octets>)");
    }

    #[test]
    fn a_mobile_node_shim6_tun_fits_the_tunnel() {
        let mut c = Mip6Config::default();
        assert_eq!(shim6_tun_mtu(&c, 1492), 1492);
        c.role = Role::MobileNode;
        assert_eq!(shim6_tun_mtu(&c, 1492), 1452);
        assert_eq!(shim6_tun_mtu(&c, 1300), 1300);
        c.mtu = 1280;
        assert_eq!(shim6_tun_mtu(&c, 1492), 1280);
    }

    #[test]
    fn care_of_cgas_verify_and_are_recognised() {
        let key = cga::PrivateKey::generate(1024)
            .unwrap()
            .public_key()
            .unwrap();
        let c = CareOfCgas::new(&key).unwrap();
        let base: Ipv6Addr = "2001:db8:a2::1".parse().unwrap();
        let coa = c.address_on(base);
        assert_eq!(coa.octets()[..8], base.octets()[..8], "same /64");
        assert_ne!(coa, base);
        assert!(c.is_ours(coa) && !c.is_ours(base));
        let v = cga::verify(&coa, &c.params_on(coa)).unwrap();
        assert_eq!(v.kind, cga::AddressKind::Cga);
        // Another prefix, another address, same parameters but the Subnet Prefix.
        let other = c.address_on("2001:db8:a1::1".parse().unwrap());
        assert_ne!(other.octets()[8..], coa.octets()[8..]);
        assert!(cga::verify(&other, &c.params_on(other)).is_ok());
        assert!(cga::verify(&other, &c.params_on(coa)).is_err());
        // A second start draws another modifier.
        assert_ne!(CareOfCgas::new(&key).unwrap().address_on(base), coa);
    }

    #[test]
    fn lifetimes_in_units() {
        assert_eq!(lifetime_units(Duration::from_secs(420)), 105);
        assert_eq!(lifetime_units(Duration::from_secs(1)), 1);
        assert_eq!(lifetime_units(Duration::from_secs(1 << 20)), u16::MAX);
    }

    #[test]
    fn cores_follow_the_role() {
        let mut c = Mip6Config::default();
        assert!(c.ha_config().is_none() && c.mn_config().is_none());
        c.role = Role::HomeAgent;
        c.address = Some("2001:db8:e1::1".parse().unwrap());
        c.home_prefixes = vec!["2001:db8:1001::/64".parse().unwrap()];
        c.mobile_nodes = vec![ServedNode {
            home_address: "2001:db8:1001::100".parse().unwrap(),
            spi: 300,
            key: Key(vec![7; 16]),
        }];
        let ha = c.ha_config().unwrap();
        assert_eq!(ha.mobile_nodes.len(), 1);
        assert_eq!(ha.max_lifetime_units, 105);
        assert!(
            ha.home_prefixes[0]
                .prefix
                .contains(&"2001:db8:1001::100".parse().unwrap())
        );
        assert!(c.mn_config().is_none());
    }
}
