//! Every operation of xfrm-sys against the real kernel, each test in namespaces of its own
//! (created by the test kit, deleted on drop even when the test fails).
//!
//! Needs root (`CAP_NET_ADMIN`, `CAP_SYS_ADMIN`), `ip` and `/dev/net/tun`; without them
//! each test prints `SKIPPED: needs CAP_NET_ADMIN` and passes. Every wait is bounded by
//! [`WAIT`]; no test sleeps.

use std::{future::Future, net::Ipv6Addr, time::Duration};

use xfrm_sys::{
    AddrGenMode, Address, AddressFlags, AddressRequest, Event, FwMark, Handle, Ipv6Prefix,
    Lifetime, Monitor, MonitorOptions, Route, RouteKind, Rule, Scope,
    netns::{self, Netns, veth},
};

/// Upper bound for any single wait on the kernel (DAD takes about one second).
const WAIT: Duration = Duration::from_secs(10);

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn prefix(s: &str) -> Ipv6Prefix {
    s.parse().unwrap()
}

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// The next event, within [`WAIT`].
async fn next(mon: &mut Monitor, what: &str) -> Event {
    bounded(what, mon.next()).await.expect("monitor error")
}

/// Events until `done` holds for the collected list, within [`WAIT`].
async fn collect_until(
    mon: &mut Monitor,
    what: &str,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    bounded(what, async {
        let mut events = Vec::new();
        while !done(&events) {
            events.push(mon.next().await.expect("monitor error"));
        }
        events
    })
    .await
}

/// A namespace with a veth pair `va`/`vb` inside, both with `addrgenmode none` (no
/// kernel link-local addresses, so the only address events are the test's own) and up.
async fn veth_ns(tag: &str) -> (Netns, Handle, u32, u32) {
    let ns = Netns::new(tag).expect("create netns");
    veth(&ns, "va", &ns, "vb").expect("create veth");
    let h = ns.handle().expect("handle");
    let va = h.link_by_name("va").await.unwrap().index;
    let vb = h.link_by_name("vb").await.unwrap().index;
    for i in [va, vb] {
        h.set_addr_gen_mode(i, AddrGenMode::None).await.unwrap();
        h.set_link_up(i).await.unwrap();
    }
    (ns, h, va, vb)
}

#[tokio::test]
async fn links_lookup_mtu_addrgenmode_up_down() {
    if !netns::require_net_admin() {
        return;
    }
    let ns = Netns::new("links").unwrap();
    veth(&ns, "va", &ns, "vb").unwrap();
    let h = ns.handle().unwrap();

    let va = h.link_by_name("va").await.unwrap();
    assert_eq!(va.name, "va");
    assert_eq!(va.kind.as_deref(), Some("veth"));
    assert_eq!(va.mtu, 1500);
    assert!(!va.is_up());
    assert_eq!(va.addr_gen_mode, Some(AddrGenMode::Eui64));
    assert_eq!(h.link_by_index(va.index).await.unwrap(), va);
    let vb = h.link_by_name("vb").await.unwrap();
    let mut names: Vec<_> = h
        .links()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    assert_eq!(names, ["lo", "va", "vb"]);

    let missing = h.link_by_name("nope0").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert_eq!(missing.errno(), Some(libc::ENODEV));
    assert!(
        missing.to_string().starts_with("get link nope0: "),
        "{missing}"
    );
    assert!(h.link_by_index(9999).await.unwrap_err().is_not_found());

    h.set_mtu(va.index, 1400).await.unwrap();
    assert_eq!(h.link_by_index(va.index).await.unwrap().mtu, 1400);
    // Refused with EINVAL, and the kernel's extended ACK says why.
    let too_big = h.set_mtu(va.index, 70_000).await.unwrap_err();
    assert_eq!(too_big.errno(), Some(libc::EINVAL));
    let xfrm_sys::Error::Kernel { message, op, .. } = &too_big else {
        panic!("{too_big:?}");
    };
    assert_eq!(op, &format!("set link index {} mtu 70000", va.index));
    assert!(
        message.as_deref().is_some_and(|m| m.contains("mtu")),
        "{too_big}"
    );

    // `va` gets no automatic address, `vb` keeps the default EUI-64 link-local.
    h.set_addr_gen_mode(va.index, AddrGenMode::None)
        .await
        .unwrap();
    assert_eq!(
        h.link_by_index(va.index).await.unwrap().addr_gen_mode,
        Some(AddrGenMode::None)
    );
    let mut mon = h.monitor(MonitorOptions::default()).await.unwrap();
    h.set_link_up(va.index).await.unwrap();
    assert!(h.link_by_index(va.index).await.unwrap().is_up());
    // No carrier until the peer is up: administratively up is not operational.
    assert!(!h.link_by_index(va.index).await.unwrap().is_running());
    h.set_link_up(vb.index).await.unwrap();
    let up = |e: &Event, name: &str| matches!(e, Event::LinkUp(l) if l.name == name);
    let ll_on_vb = |e: &Event| {
        matches!(e, Event::AddressAdded(a) | Event::AddressChanged { address: a, .. }
            if a.index == vb.index && a.scope == Scope::Link && !a.flags.contains(AddressFlags::TENTATIVE))
    };
    let events = collect_until(&mut mon, "both links up and vb's link-local", |es| {
        es.iter().any(|e| up(e, "va")) && es.iter().any(|e| up(e, "vb")) && es.iter().any(ll_on_vb)
    })
    .await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::AddressAdded(a) if a.index == va.index)),
        "addrgenmode none still produced an address: {events:?}"
    );
    let addrs = h.addresses().await.unwrap();
    assert!(addrs.iter().all(|a| a.index != va.index), "{addrs:?}");
    assert!(
        addrs
            .iter()
            .any(|a| a.index == vb.index && a.address.segments()[0] == 0xfe80)
    );
    assert!(mon.links().any(|l| l.name == "vb" && l.is_running()));

    // Taking the peer down is a carrier loss on `va`: both go down.
    h.set_link_down(vb.index).await.unwrap();
    let down = |e: &Event, name: &str| matches!(e, Event::LinkDown(l) if l.name == name);
    collect_until(&mut mon, "both links down", |es| {
        es.iter().any(|e| down(e, "va")) && es.iter().any(|e| down(e, "vb"))
    })
    .await;
    let va_now = h.link_by_index(va.index).await.unwrap();
    assert!(va_now.is_up() && !va_now.is_running());
}

#[tokio::test]
async fn addresses_add_list_replace_delete_with_events_in_order() {
    if !netns::require_net_admin() {
        return;
    }
    let (_ns, h, va, vb) = veth_ns("addrs").await;
    let mut mon = h.monitor(MonitorOptions::default()).await.unwrap();
    // Wait until the pair is operational, so DAD can run.
    if !mon.links().any(|l| l.index == va && l.is_running()) {
        collect_until(&mut mon, "va up", |es| {
            es.iter()
                .any(|e| matches!(e, Event::LinkUp(l) if l.index == va))
        })
        .await;
    }

    // 1. nodad: usable at once, permanent.
    let a1 = AddressRequest::new(va, ip6("2001:db8:1::1"), 64).nodad();
    h.add_address(&a1).await.unwrap();
    let expected1 = Address {
        index: va,
        address: ip6("2001:db8:1::1"),
        prefix_len: 64,
        scope: Scope::Global,
        flags: AddressFlags::NODAD | AddressFlags::PERMANENT,
        valid_lifetime: Lifetime::Forever,
        preferred_lifetime: Lifetime::Forever,
    };
    assert_eq!(
        next(&mut mon, "a1 added").await,
        Event::AddressAdded(expected1.clone())
    );

    // 2. With DAD and finite lifetimes: tentative first, then DAD clears the flag.
    let a2 = AddressRequest::new(va, ip6("2001:db8:1::2"), 64)
        .lifetimes(Lifetime::Seconds(3600), Lifetime::Seconds(1800));
    h.add_address(&a2).await.unwrap();
    let Event::AddressAdded(added) = next(&mut mon, "a2 added").await else {
        panic!("expected AddressAdded for a2");
    };
    assert_eq!(added.address, ip6("2001:db8:1::2"));
    assert_eq!(added.flags, AddressFlags::TENTATIVE);
    assert!(!added.is_available());
    assert!(matches!(added.valid_lifetime, Lifetime::Seconds(s) if (3590..=3600).contains(&s)));
    assert!(matches!(added.preferred_lifetime, Lifetime::Seconds(s) if (1790..=1800).contains(&s)));
    let Event::AddressChanged { old_flags, address } = next(&mut mon, "a2 DAD done").await else {
        panic!("expected AddressChanged for a2");
    };
    assert_eq!(old_flags, AddressFlags::TENTATIVE);
    assert_eq!(address.address, ip6("2001:db8:1::2"));
    assert_eq!(address.flags, AddressFlags::empty());
    assert!(address.is_available());

    // The dump agrees with the events.
    let listed: Vec<_> = h
        .addresses()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.index == va)
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&expected1));
    assert!(
        listed
            .iter()
            .any(|a| a.address == ip6("2001:db8:1::2") && a.flags == AddressFlags::empty())
    );
    assert_eq!(xfrm_sys::address::available(&listed).count(), 2);
    assert_eq!(mon.available_addresses().count(), 2);

    // 3. Adding again is EEXIST (also with another prefix length): idempotent callers
    //    can tell.
    let dup = h.add_address(&a1).await.unwrap_err();
    assert!(dup.is_already_exists(), "{dup}");
    assert!(
        dup.to_string()
            .starts_with(&format!("add address 2001:db8:1::1/64 dev index {va}: "))
    );
    let dup48 = h
        .add_address(&AddressRequest::new(va, ip6("2001:db8:1::1"), 48))
        .await
        .unwrap_err();
    assert!(dup48.is_already_exists(), "{dup48}");

    // 4. Replace updates in place: finite lifetimes drop the permanent flag.
    h.replace_address(
        &a1.clone()
            .lifetimes(Lifetime::Seconds(600), Lifetime::Seconds(600)),
    )
    .await
    .unwrap();
    assert_eq!(
        next(&mut mon, "a1 replaced").await,
        Event::AddressChanged {
            old_flags: AddressFlags::NODAD | AddressFlags::PERMANENT,
            address: Address {
                flags: AddressFlags::NODAD,
                valid_lifetime: Lifetime::Seconds(600),
                preferred_lifetime: Lifetime::Seconds(600),
                ..expected1.clone()
            }
        }
    );

    // 5. Delete, then delete again: EADDRNOTAVAIL, which is_not_found() covers; a wrong
    //    prefix length does not match either.
    h.delete_address(va, ip6("2001:db8:1::1"), 64)
        .await
        .unwrap();
    let Event::AddressRemoved(gone) = next(&mut mon, "a1 removed").await else {
        panic!("expected AddressRemoved for a1");
    };
    assert_eq!(gone.address, ip6("2001:db8:1::1"));
    let again = h
        .delete_address(va, ip6("2001:db8:1::1"), 64)
        .await
        .unwrap_err();
    assert!(again.is_not_found(), "{again}");
    assert_eq!(again.errno(), Some(libc::EADDRNOTAVAIL));
    let wrong_len = h
        .delete_address(va, ip6("2001:db8:1::2"), 48)
        .await
        .unwrap_err();
    assert!(wrong_len.is_not_found(), "{wrong_len}");

    // 6. Carrier loss keeps the addresses; administrative down flushes them all (the
    //    default net.ipv6.conf.*.keep_addr_on_down = 0), permanent ones included.
    h.add_address(&AddressRequest::new(va, ip6("2001:db8:1::3"), 64).nodad())
        .await
        .unwrap();
    assert!(
        matches!(next(&mut mon, "a3 added").await, Event::AddressAdded(a) if a.address == ip6("2001:db8:1::3"))
    );
    h.set_link_down(vb).await.unwrap();
    let events = collect_until(&mut mon, "va loses carrier", |es| {
        es.iter()
            .any(|e| matches!(e, Event::LinkDown(l) if l.index == va))
    })
    .await;
    assert!(
        !events.iter().any(|e| matches!(e, Event::AddressRemoved(_))),
        "{events:?}"
    );
    assert_eq!(mon.addresses().filter(|a| a.index == va).count(), 2);
    h.set_link_down(va).await.unwrap();
    let events = collect_until(&mut mon, "va flushed", |es| {
        es.iter()
            .filter(|e| matches!(e, Event::AddressRemoved(a) if a.index == va))
            .count()
            == 2
    })
    .await;
    assert!(
        !events.iter().any(|e| matches!(e, Event::LinkDown(_))),
        "already down: {events:?}"
    );
    assert!(h.addresses().await.unwrap().iter().all(|a| a.index != va));
    assert_eq!(mon.stats().resyncs, 0);
}

#[tokio::test]
async fn dad_failure_is_reported_and_not_available() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("dada").unwrap();
    let b = Netns::new("dadb").unwrap();
    veth(&a, "va", &b, "vb").unwrap();
    let ha = a.handle().unwrap();
    let hb = b.handle().unwrap();
    let va = ha.link_by_name("va").await.unwrap().index;
    let vb = hb.link_by_name("vb").await.unwrap().index;
    ha.set_addr_gen_mode(va, AddrGenMode::None).await.unwrap();
    hb.set_addr_gen_mode(vb, AddrGenMode::None).await.unwrap();
    let dup = ip6("2001:db8:9::1");
    hb.add_address(&AddressRequest::new(vb, dup, 64).nodad())
        .await
        .unwrap();
    let mut mon = ha.monitor(MonitorOptions::default()).await.unwrap();
    let mut mon_b = hb.monitor(MonitorOptions::default()).await.unwrap();
    ha.set_link_up(va).await.unwrap();
    hb.set_link_up(vb).await.unwrap();
    // Both ends must be operational before DAD starts: until the kernel's link watcher
    // has processed the carrier change of `vb` (its LinkUp), `vb` drops what it sends, the
    // Neighbor Advertisement defending the address included, and DAD would succeed.
    collect_until(&mut mon, "va up", |es| {
        es.iter()
            .any(|e| matches!(e, Event::LinkUp(l) if l.index == va))
    })
    .await;
    collect_until(&mut mon_b, "vb up", |es| {
        es.iter()
            .any(|e| matches!(e, Event::LinkUp(l) if l.index == vb))
    })
    .await;

    ha.add_address(&AddressRequest::new(va, dup, 64))
        .await
        .unwrap();
    let Event::AddressAdded(added) = next(&mut mon, "duplicate added").await else {
        panic!("expected AddressAdded");
    };
    assert_eq!(
        added.flags,
        AddressFlags::TENTATIVE | AddressFlags::PERMANENT
    );
    let Event::AddressChanged { old_flags, address } = next(&mut mon, "DAD failure").await else {
        panic!("expected AddressChanged");
    };
    assert_eq!(old_flags, AddressFlags::TENTATIVE | AddressFlags::PERMANENT);
    assert!(
        address.flags.contains(AddressFlags::DADFAILED),
        "{}",
        address.flags
    );
    assert!(
        address.flags.contains(AddressFlags::TENTATIVE),
        "{}",
        address.flags
    );
    assert!(!address.is_available());
    assert_eq!(mon.available_addresses().count(), 0);
}

#[tokio::test]
async fn routes_in_table_51_and_1000() {
    if !netns::require_net_admin() {
        return;
    }
    let (_ns, h, va, _vb) = veth_ns("routes").await;
    h.add_address(&AddressRequest::new(va, ip6("2001:db8:1::1"), 64).nodad())
        .await
        .unwrap();
    let gw = ip6("2001:db8:1::2");

    assert!(h.routes(51).await.unwrap().is_empty());
    let r = Route::new(prefix("2001:db8:2::/64"), 51)
        .dev(va)
        .metric(100);
    h.add_route(&r).await.unwrap();
    assert_eq!(h.routes(51).await.unwrap(), vec![r.clone()]);
    let dup = h.add_route(&r).await.unwrap_err();
    assert!(dup.is_already_exists(), "{dup}");
    assert_eq!(
        dup.to_string().split(": ").next(),
        Some(format!("add route 2001:db8:2::/64 dev index {va} metric 100 table 51").as_str())
    );

    // Replace: same table, destination and metric, now via a gateway.
    let r2 = r.clone().via(gw);
    h.replace_route(&r2).await.unwrap();
    assert_eq!(h.routes(51).await.unwrap(), vec![r2.clone()]);

    // Table above 255 (RTA_TABLE), kernel-chosen metric, own protocol number.
    let r3 = Route::new(prefix("2001:db8:3::/64"), 1000)
        .via(gw)
        .dev(va)
        .protocol(0x51);
    h.add_route(&r3).await.unwrap();
    assert_eq!(h.routes(1000).await.unwrap(), [r3.clone().metric(1024)]);
    assert_eq!(h.routes(51).await.unwrap(), vec![r2.clone()]);
    // The main table holds the prefix route of the address, made by the kernel.
    let main = h.routes(xfrm_sys::route::TABLE_MAIN).await.unwrap();
    assert!(
        main.iter()
            .any(|m| m.destination == prefix("2001:db8:1::/64")
                && m.device == Some(va)
                && m.protocol == xfrm_sys::route::PROTO_KERNEL),
        "{main:?}"
    );
    // Host bits are cleared before sending.
    let unreachable = Route::new(Ipv6Prefix::new(ip6("2001:db8:5::77"), 64).unwrap(), 51)
        .kind(RouteKind::Unreachable);
    h.add_route(&unreachable).await.unwrap();
    let listed = h.routes(51).await.unwrap();
    assert!(
        listed.iter().any(|x| x.destination == prefix("2001:db8:5::/64") && x.kind == RouteKind::Unreachable),
        "{listed:?}"
    );

    h.delete_route(&r2).await.unwrap();
    h.delete_route(&unreachable).await.unwrap();
    assert!(h.routes(51).await.unwrap().is_empty());
    let gone = h.delete_route(&r2).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert_eq!(gone.errno(), Some(libc::ESRCH));
    h.delete_route(&r3).await.unwrap();
    assert!(h.routes(1000).await.unwrap().is_empty());
}

#[tokio::test]
async fn fwmark_rule_and_prefix_rule() {
    if !netns::require_net_admin() {
        return;
    }
    let ns = Netns::new("rules").unwrap();
    let h = ns.handle().unwrap();
    let before = h.rules().await.unwrap();
    assert!(
        before
            .iter()
            .any(|r| r.table == 254 && r.priority == Some(32766)),
        "{before:?}"
    );

    // The daemon's loop guard: `ip -6 rule add not fwmark 0x51 table 51`.
    let guard = Rule::lookup(51).invert().fwmark(FwMark::exact(0x51));
    h.add_rule(&guard).await.unwrap();
    let listed = h.rules().await.unwrap();
    let found: Vec<_> = listed.iter().filter(|r| r.table == 51).collect();
    assert_eq!(found.len(), 1, "{listed:?}");
    assert!(found[0].invert);
    assert_eq!(found[0].fwmark, Some(FwMark::exact(0x51)));
    // No priority given: the kernel takes the one below the first non-zero rule.
    assert_eq!(found[0].priority, Some(32765));
    assert_eq!(found[0].describe(), "not fwmark 0x51 lookup 51 prio 32765");
    // Without a priority a second add is NOT refused: the kernel picks the next free
    // priority (32764) and the duplicate check compares priorities too.
    h.add_rule(&guard).await.unwrap();
    let prios: Vec<_> = h
        .rules()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.table == 51)
        .map(|r| r.priority)
        .collect();
    assert_eq!(prios, [Some(32764), Some(32765)]);
    // A delete without priority removes the first match; both go, then ENOENT.
    h.delete_rule(&guard).await.unwrap();
    h.delete_rule(&guard).await.unwrap();
    let gone = h.delete_rule(&guard).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert_eq!(gone.errno(), Some(libc::ENOENT));

    // With an explicit priority the add is idempotent: EEXIST.
    let guard = guard.priority(100);
    h.add_rule(&guard).await.unwrap();
    let dup = h.add_rule(&guard).await.unwrap_err();
    assert!(dup.is_already_exists(), "{dup}");
    assert!(
        dup.to_string()
            .starts_with("add rule not fwmark 0x51 lookup 51 prio 100: "),
        "{dup}"
    );
    assert_eq!(
        h.rules()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.table == 51)
            .count(),
        1
    );

    let selective = Rule::lookup(1000)
        .from(prefix("2001:db8:1::/48"))
        .to(prefix("2001:db8:2::/48"))
        .fwmark(FwMark::masked(0x51, 0xff))
        .priority(200)
        .protocol(0x51);
    h.add_rule(&selective).await.unwrap();
    assert!(h.rules().await.unwrap().contains(&selective));

    h.delete_rule(&guard).await.unwrap();
    h.delete_rule(&selective).await.unwrap();
    assert_eq!(h.rules().await.unwrap(), before);
}

#[tokio::test]
async fn lost_notifications_are_resynchronised_by_a_dump() {
    if !netns::require_net_admin() {
        return;
    }
    const N: u16 = 40;
    let (_ns, h, va, _vb) = veth_ns("enobufs").await;
    // The smallest receive buffer the kernel allows (it rounds up to its minimum): a few
    // notifications fill it.
    let mut mon = h
        .monitor(MonitorOptions {
            receive_buffer: Some(1),
        })
        .await
        .unwrap();
    let addr = |i: u16| ip6(&format!("2001:db8:1::{:x}", 0x100 + i));
    let mine = |a: &Address| a.index == va && (0..N).any(|i| a.address == addr(i));

    // Not reading the monitor while the kernel notifies N times: it must drop some.
    for i in 0..N {
        h.add_address(&AddressRequest::new(va, addr(i), 64).nodad())
            .await
            .unwrap();
    }
    let added = |es: &[Event]| {
        es.iter()
            .filter(|e| matches!(e, Event::AddressAdded(a) if mine(a)))
            .count()
    };
    let events = collect_until(&mut mon, "all additions after a resync", |es| {
        added(es) == usize::from(N) && es.contains(&Event::Resynced)
    })
    .await;
    let stats = mon.stats();
    assert!(stats.overruns >= 1, "{stats:?}");
    assert_eq!(stats.resyncs, 1, "{stats:?}");
    assert_eq!(stats.decode_errors, 0);
    // Each address exactly once, although some notifications were read and the rest came
    // from the dump's diff.
    assert_eq!(added(&events), usize::from(N), "{events:?}");
    assert_eq!(mon.addresses().filter(|a| mine(a)).count(), usize::from(N));

    for i in 0..N {
        h.delete_address(va, addr(i), 64).await.unwrap();
    }
    let removed = |es: &[Event]| {
        es.iter()
            .filter(|e| matches!(e, Event::AddressRemoved(a) if mine(a)))
            .count()
    };
    let events = collect_until(&mut mon, "all removals after a second resync", |es| {
        removed(es) == usize::from(N) && es.contains(&Event::Resynced)
    })
    .await;
    assert_eq!(removed(&events), usize::from(N));
    assert_eq!(mon.stats().resyncs, 2);
    assert_eq!(mon.addresses().filter(|a| mine(a)).count(), 0);
}

#[tokio::test]
async fn handle_in_netns_and_monitor_see_only_their_namespace() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("isola").unwrap();
    let b = Netns::new("isolb").unwrap();
    veth(&a, "xa", &b, "xb").unwrap();
    let ha = a.handle().unwrap();
    let hb = b.handle().unwrap();
    assert_eq!(ha.netns(), Some(a.name()));
    let names = |h: Handle| async move {
        let mut v: Vec<_> = h
            .links()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(ha.clone()).await, ["lo", "xa"]);
    assert_eq!(names(hb.clone()).await, ["lo", "xb"]);
    let xb = hb.link_by_name("xb").await.unwrap().index;
    let mut mon_a = ha.monitor(MonitorOptions::default()).await.unwrap();
    hb.add_address(&AddressRequest::new(xb, ip6("2001:db8:b::1"), 64).nodad())
        .await
        .unwrap();
    // The address lands in b only; a's monitor does not see it: its next event is the
    // change made in a afterwards.
    assert!(
        hb.addresses()
            .await
            .unwrap()
            .iter()
            .any(|x| x.address == ip6("2001:db8:b::1"))
    );
    assert!(
        ha.addresses()
            .await
            .unwrap()
            .iter()
            .all(|x| x.address != ip6("2001:db8:b::1"))
    );
    let xa = ha.link_by_name("xa").await.unwrap().index;
    ha.add_address(&AddressRequest::new(xa, ip6("2001:db8:a::1"), 64).nodad())
        .await
        .unwrap();
    match next(&mut mon_a, "a's own address").await {
        Event::AddressAdded(x) => assert_eq!(x.address, ip6("2001:db8:a::1")),
        other => panic!("unexpected event in a: {other:?}"),
    }
}
