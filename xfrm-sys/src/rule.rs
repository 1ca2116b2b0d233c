//! IPv6 policy rules (`ip -6 rule`): list, add, delete, with the selectors shim6d needs:
//! firewall mark (with mask, optionally inverted) and source/destination prefixes.
//!
//! The daemon's loop guard (architecture.md, hazard 1) is
//! `ip -6 rule add not fwmark 0x51 table 51`:
//!
//! ```
//! use xfrm_sys::{FwMark, Rule};
//! let rule = Rule::lookup(51).invert().fwmark(FwMark::exact(0x51)).priority(100);
//! ```
//!
//! Kernel behaviour (6.18, tested in `tests/rtnetlink.rs`):
//! - Without a priority the kernel picks one just below the first non-zero rule (32765
//!   in a fresh namespace), and a second identical add is **not** refused: it lands at
//!   32764, because the duplicate check (`NLM_F_EXCL`) compares priorities too. Give a
//!   priority to make adds idempotent; then an identical add is `EEXIST`.
//! - A mark without a mask is reported with mask `0xffffffff`.
//! - A delete matches on the selectors given and ignores the others, and removes the
//!   first match in priority order; no match is `ENOENT`.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    route::RouteProtocol,
    rule::{RuleAction as NlRuleAction, RuleAttribute, RuleFlags, RuleMessage},
};

use crate::{DecodeError, Error, Handle, Ipv6Prefix, Result};

/// A firewall-mark selector: packets whose `mark & mask == mark` match (`fwmark
/// MARK/MASK`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FwMark {
    /// The mark (`FRA_FWMARK`).
    pub mark: u32,
    /// The mask (`FRA_FWMASK`); `0xffffffff` compares the whole mark.
    pub mask: u32,
}

impl FwMark {
    /// The whole mark must equal `mark` (`fwmark MARK`).
    pub const fn exact(mark: u32) -> Self {
        Self {
            mark,
            mask: u32::MAX,
        }
    }

    /// `fwmark MARK/MASK`.
    pub const fn masked(mark: u32, mask: u32) -> Self {
        Self { mark, mask }
    }
}

/// What a matching rule does (`FR_ACT_*`, `include/uapi/linux/fib_rules.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum RuleAction {
    /// `FR_ACT_TO_TBL`: look the packet up in the rule's table (`lookup TABLE`).
    #[default]
    Lookup,
    /// `FR_ACT_NOP`.
    Nop,
    /// `FR_ACT_BLACKHOLE`.
    Blackhole,
    /// `FR_ACT_UNREACHABLE`.
    Unreachable,
    /// `FR_ACT_PROHIBIT`.
    Prohibit,
    /// Anything else, raw (`FR_ACT_GOTO` = 2 among them: its target is not decoded).
    Other(u8),
}

impl From<NlRuleAction> for RuleAction {
    fn from(a: NlRuleAction) -> Self {
        match a {
            NlRuleAction::ToTable => Self::Lookup,
            NlRuleAction::Nop => Self::Nop,
            NlRuleAction::Blackhole => Self::Blackhole,
            NlRuleAction::Unreachable => Self::Unreachable,
            NlRuleAction::Prohibit => Self::Prohibit,
            other => Self::Other(u8::from(other)),
        }
    }
}

impl From<RuleAction> for NlRuleAction {
    fn from(a: RuleAction) -> Self {
        match a {
            RuleAction::Lookup => Self::ToTable,
            RuleAction::Nop => Self::Nop,
            RuleAction::Blackhole => Self::Blackhole,
            RuleAction::Unreachable => Self::Unreachable,
            RuleAction::Prohibit => Self::Prohibit,
            RuleAction::Other(v) => Self::from(v),
        }
    }
}

/// An IPv6 policy rule: what to add or delete, and what a dump reports.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Rule {
    /// Priority (`FRA_PRIORITY`, `prio`); `None` in a request lets the kernel choose.
    /// Decoded rules always have one (absent in the message means 0).
    pub priority: Option<u32>,
    /// Table to look up (`lookup TABLE`; `FRA_TABLE` when above 255).
    pub table: u32,
    /// Action (`rtm_type` of the rule header).
    pub action: RuleAction,
    /// `not`: the rule matches packets its selectors do **not** match (`FIB_RULE_INVERT`).
    pub invert: bool,
    /// Firewall-mark selector.
    pub fwmark: Option<FwMark>,
    /// Source prefix selector (`from`).
    pub from: Option<Ipv6Prefix>,
    /// Destination prefix selector (`to`).
    pub to: Option<Ipv6Prefix>,
    /// Origin (`FRA_PROTOCOL`, `protocol`); sent only when set.
    pub protocol: Option<u8>,
}

impl Rule {
    /// `lookup TABLE` for every packet, priority chosen by the kernel.
    pub fn lookup(table: u32) -> Self {
        Self {
            priority: None,
            table,
            action: RuleAction::Lookup,
            invert: false,
            fwmark: None,
            from: None,
            to: None,
            protocol: None,
        }
    }

    /// `not`: invert the selectors.
    pub fn invert(mut self) -> Self {
        self.invert = true;
        self
    }

    /// `fwmark MARK[/MASK]`.
    pub fn fwmark(mut self, mark: FwMark) -> Self {
        self.fwmark = Some(mark);
        self
    }

    /// `from PREFIX`.
    pub fn from(mut self, prefix: Ipv6Prefix) -> Self {
        self.from = Some(prefix);
        self
    }

    /// `to PREFIX`.
    pub fn to(mut self, prefix: Ipv6Prefix) -> Self {
        self.to = Some(prefix);
        self
    }

    /// `prio PRIORITY`.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// `protocol PROTO`.
    pub fn protocol(mut self, protocol: u8) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The rule in `ip -6 rule` syntax (`"not fwmark 0x51 lookup 51 prio 100"`), used in
    /// error messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.invert {
            s += "not ";
        }
        match (self.from, self.to, self.fwmark) {
            (None, None, None) => s += "from all ",
            _ => {
                if let Some(from) = self.from {
                    s += &format!("from {from} ");
                }
                if let Some(to) = self.to {
                    s += &format!("to {to} ");
                }
                if let Some(m) = self.fwmark {
                    s += &format!("fwmark {:#x}", m.mark);
                    if m.mask != u32::MAX {
                        s += &format!("/{:#x}", m.mask);
                    }
                    s += " ";
                }
            }
        }
        match self.action {
            RuleAction::Lookup => s += &format!("lookup {}", self.table),
            other => s += &format!("action {other:?}"),
        }
        if let Some(p) = self.priority {
            s += &format!(" prio {p}");
        }
        s
    }

    /// Decodes an `RTM_NEWRULE` / `RTM_DELRULE` message; anything but `AF_INET6` is an
    /// error.
    pub fn from_message(msg: &RuleMessage) -> Result<Self, DecodeError> {
        let ctx = "RTM_NEWRULE";
        if msg.header.family != AddressFamily::Inet6 {
            return Err(DecodeError::new(
                ctx,
                format!("family {:?}, expected AF_INET6", msg.header.family),
            ));
        }
        let prefix = |what: &str, ip: &std::net::IpAddr, len: u8| match ip {
            std::net::IpAddr::V6(v6) => {
                Ipv6Prefix::new(*v6, len).map_err(|e| DecodeError::new(ctx, format!("{what}: {e}")))
            }
            std::net::IpAddr::V4(v4) => {
                Err(DecodeError::new(ctx, format!("{what} {v4} is not IPv6")))
            }
        };
        let mut rule = Self::lookup(u32::from(msg.header.table));
        rule.priority = Some(0);
        rule.action = RuleAction::from(msg.header.action);
        rule.invert = msg.header.flags.contains(RuleFlags::Invert);
        let mut mark = None;
        let mut mask = u32::MAX;
        for attr in &msg.attributes {
            match attr {
                RuleAttribute::Priority(p) => rule.priority = Some(*p),
                RuleAttribute::Table(t) => rule.table = *t,
                RuleAttribute::FwMark(m) => mark = Some(*m),
                RuleAttribute::FwMask(m) => mask = *m,
                RuleAttribute::Source(ip) => {
                    rule.from = Some(prefix("FRA_SRC", ip, msg.header.src_len)?);
                }
                RuleAttribute::Destination(ip) => {
                    rule.to = Some(prefix("FRA_DST", ip, msg.header.dst_len)?);
                }
                RuleAttribute::Protocol(p) => rule.protocol = Some(u8::from(*p)),
                _ => {}
            }
        }
        rule.fwmark = mark.map(|mark| FwMark { mark, mask });
        Ok(rule)
    }
}

/// The request body, attributes in iproute2's order for `ip -6 rule add|del [not] from
/// SRC to DST fwmark M/MASK table T prio P protocol X`. `add` sets the action; a delete
/// leaves it unspecified like `ip`, so it matches whatever the rule does.
fn message(rule: &Rule, add: bool) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = AddressFamily::Inet6;
    msg.header.table = u8::try_from(rule.table).unwrap_or(0);
    if add {
        msg.header.action = rule.action.into();
    }
    if rule.invert {
        msg.header.flags = RuleFlags::Invert;
    }
    if let Some(from) = rule.from {
        msg.header.src_len = from.prefix_len();
        msg.attributes
            .push(RuleAttribute::Source(from.addr().into()));
    }
    if let Some(to) = rule.to {
        msg.header.dst_len = to.prefix_len();
        msg.attributes
            .push(RuleAttribute::Destination(to.addr().into()));
    }
    if let Some(m) = rule.fwmark {
        msg.attributes.push(RuleAttribute::FwMark(m.mark));
        // The kernel defaults the mask to all ones; iproute2 sends it only when given.
        if m.mask != u32::MAX {
            msg.attributes.push(RuleAttribute::FwMask(m.mask));
        }
    }
    if rule.table > 255 {
        msg.attributes.push(RuleAttribute::Table(rule.table));
    }
    if let Some(p) = rule.priority {
        msg.attributes.push(RuleAttribute::Priority(p));
    }
    if let Some(p) = rule.protocol {
        msg.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::from(p)));
    }
    msg
}

pub(crate) fn new_message(rule: &Rule) -> RuleMessage {
    message(rule, true)
}

pub(crate) fn del_message(rule: &Rule) -> RuleMessage {
    message(rule, false)
}

/// Rule operations (`ip -6 rule`).
impl Handle {
    /// `ip -6 rule show`: every IPv6 rule, in priority order as the kernel lists them.
    pub async fn rules(&self) -> Result<Vec<Rule>> {
        let op = "list IPv6 rules";
        let mut req = RuleMessage::default();
        req.header.family = AddressFamily::Inet6;
        let msgs = self.dump(RouteNetlinkMessage::GetRule(req), op).await?;
        msgs.into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(r),
                _ => None,
            })
            .map(|r| {
                Rule::from_message(&r).map_err(|source| Error::Decode {
                    op: op.to_owned(),
                    source,
                })
            })
            .collect()
    }

    /// `ip -6 rule add`: an identical rule **with the same priority** is `EEXIST`
    /// ([`Error::is_already_exists`]); without a priority the kernel adds a duplicate
    /// (module docs).
    pub async fn add_rule(&self, rule: &Rule) -> Result<()> {
        let op = format!("add rule {}", rule.describe());
        self.request(
            RouteNetlinkMessage::NewRule(new_message(rule)),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
        .await
        .map(drop)
    }

    /// `ip -6 rule del`: no matching rule is `ENOENT` ([`Error::is_not_found`]).
    pub async fn delete_rule(&self, rule: &Rule) -> Result<()> {
        let op = format!("delete rule {}", rule.describe());
        self.request(RouteNetlinkMessage::DelRule(del_message(rule)), 0, &op)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{emit, parse};
    use hex_literal::hex;

    // Captured with `strace -e write=3 -e read=3` around iproute2 6.1 on kernel 6.18.

    /// `ip -6 rule add not fwmark 0x51 table 51 prio 100`.
    const ADD_NOT_FWMARK: [u8; 44] = hex!(
        "2c000000 2000 0506 3d84016b 00000000"
        "0a 00 00 00 33 00 00 01 02000000"
        "0800 0a00 51000000"
        "0800 0600 64000000"
    );

    /// `ip -6 rule add from 2001:db8:1::/48 to 2001:db8:2::/48 fwmark 0x51/0xff table
    /// 1000 prio 200`.
    const ADD_FROM_TO_MASK_1000: [u8; 100] = hex!(
        "64000000 2000 0506 3d84016b 00000000"
        "0a 30 30 00 00 00 00 01 00000000"
        "1400 0200 20010db8000100000000000000000000"
        "1400 0100 20010db8000200000000000000000000"
        "0800 0a00 51000000"
        "0800 1000 ff000000"
        "0800 0f00 e8030000"
        "0800 0600 c8000000"
    );

    /// `ip -6 rule del not fwmark 0x51 table 51 prio 100` (action unspecified).
    const DEL_NOT_FWMARK: [u8; 44] = hex!(
        "2c000000 2100 0500 8185016b 00000000"
        "0a 00 00 00 33 00 00 00 02000000"
        "0800 0a00 51000000"
        "0800 0600 64000000"
    );

    /// The kernel's answer to `ip -6 rule show` for `ADD_NOT_FWMARK`: table, suppress
    /// prefix length, protocol 0, priority, mark and the defaulted mask.
    const DUMP_NOT_FWMARK: [u8; 76] = hex!(
        "4c000000 2000 0200 3d84016b 32560000"
        "0a 00 00 00 33 00 00 01 02000000"
        "0800 0f00 33000000"
        "0800 0e00 ffffffff"
        "0500 1500 00000000"
        "0800 0600 64000000"
        "0800 0a00 51000000"
        "0800 1000 ffffffff"
    );

    /// Same dump, `ADD_FROM_TO_MASK_1000` as the kernel reports it (table 252 + `FRA_TABLE`).
    const DUMP_FROM_TO_MASK_1000: [u8; 116] = hex!(
        "74000000 2000 0200 3d84016b 32560000"
        "0a 30 30 00 fc 00 00 01 00000000"
        "0800 0f00 e8030000"
        "0800 0e00 ffffffff"
        "0500 1500 00000000"
        "0800 0600 c8000000"
        "0800 0a00 51000000"
        "0800 1000 ff000000"
        "1400 0100 20010db8000200000000000000000000"
        "1400 0200 20010db8000100000000000000000000"
    );

    /// Same dump, the default `from all lookup main` rule (protocol 2 = kernel).
    const DUMP_MAIN: [u8; 60] = hex!(
        "3c000000 2000 0200 3d84016b 32560000"
        "0a 00 00 00 fe 00 00 01 00000000"
        "0800 0f00 fe000000"
        "0800 0e00 ffffffff"
        "0500 1500 02000000"
        "0800 0600 fe7f0000"
    );

    fn p(s: &str) -> Ipv6Prefix {
        s.parse().unwrap()
    }

    fn decode(bytes: &[u8]) -> Rule {
        match parse(bytes) {
            RouteNetlinkMessage::NewRule(m) => Rule::from_message(&m).unwrap(),
            other => panic!("not RTM_NEWRULE: {other:?}"),
        }
    }

    fn loop_guard() -> Rule {
        Rule::lookup(51)
            .invert()
            .fwmark(FwMark::exact(0x51))
            .priority(100)
    }

    fn selective() -> Rule {
        Rule::lookup(1000)
            .from(p("2001:db8:1::/48"))
            .to(p("2001:db8:2::/48"))
            .fwmark(FwMark::masked(0x51, 0xff))
            .priority(200)
    }

    #[test]
    fn not_fwmark_emits_what_ip_sends() {
        let msg = RouteNetlinkMessage::NewRule(new_message(&loop_guard()));
        assert_eq!(emit(&msg, 0x0605, 0x6b01843d), ADD_NOT_FWMARK);
        assert_eq!(parse(&ADD_NOT_FWMARK), msg);
    }

    #[test]
    fn prefixes_mask_and_large_table_emit_what_ip_sends() {
        let msg = RouteNetlinkMessage::NewRule(new_message(&selective()));
        assert_eq!(emit(&msg, 0x0605, 0x6b01843d), ADD_FROM_TO_MASK_1000);
        assert_eq!(parse(&ADD_FROM_TO_MASK_1000), msg);
    }

    #[test]
    fn delete_emits_what_ip_sends() {
        let msg = RouteNetlinkMessage::DelRule(del_message(&loop_guard()));
        assert_eq!(emit(&msg, 0x0005, 0x6b018581), DEL_NOT_FWMARK);
        assert_eq!(parse(&DEL_NOT_FWMARK), msg);
    }

    #[test]
    fn kernel_rules_decode() {
        assert_eq!(decode(&DUMP_NOT_FWMARK), loop_guard().protocol(0));
        assert_eq!(decode(&DUMP_FROM_TO_MASK_1000), selective().protocol(0));
        let main = decode(&DUMP_MAIN);
        assert_eq!(main, Rule::lookup(254).priority(32766).protocol(2));
        assert_eq!(main.describe(), "from all lookup 254 prio 32766");
    }

    #[test]
    fn kernel_rules_reemit_byte_for_byte() {
        for bytes in [
            &DUMP_NOT_FWMARK[..],
            &DUMP_FROM_TO_MASK_1000[..],
            &DUMP_MAIN[..],
        ] {
            let msg = parse(bytes);
            let mut out = emit(&msg, 0x0002, 0x6b01843d);
            out[12..16].copy_from_slice(&bytes[12..16]);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn describe_reads_like_ip() {
        assert_eq!(
            loop_guard().describe(),
            "not fwmark 0x51 lookup 51 prio 100"
        );
        assert_eq!(
            selective().describe(),
            "from 2001:db8:1::/48 to 2001:db8:2::/48 fwmark 0x51/0xff lookup 1000 prio 200"
        );
    }

    #[test]
    fn ipv4_rule_is_a_decode_error() {
        let mut msg = RuleMessage::default();
        msg.header.family = AddressFamily::Inet;
        assert!(
            Rule::from_message(&msg)
                .unwrap_err()
                .detail()
                .contains("AF_INET6")
        );
    }
}
