//! Cost of the kernel-side mechanisms of `shim6d::visibility` and `shim6d::trigger`
//! (`docs/bench/daemon-aux.md`).
//!
//! Two namespaces joined by a veth; iperf3 from A to B. In B (the receiver) one of:
//! nothing (`base`), an empty nftables base chain on the input hook (`hook`), the
//! visibility table with the A→B pair registered (`vis1`), the same with 10⁴ pairs
//! (`vis10k`), 10⁴ pairs but not A→B (`vis10k_other`: what unprotected traffic pays),
//! or the trigger's flow accounting (`trigger`). Each round measures the
//! UDP packet rate (64-octet datagrams, unlimited rate), the CPU time per datagram at a
//! fixed 50 000 datagrams/s (both iperf3 ends, getrusage), and the TCP goodput;
//! conditions interleaved, rounds repeated; the medians are reported as ratios to
//! `base` of the same run. Then the cost of one poll with 1 and 10⁴ pairs registered
//! (none active), of registering one pair, and of one trigger read.
//!
//! ```sh
//! cargo run -p shim6d --release --example bench_aux -- [SECONDS_PER_TEST] [ROUNDS]
//! ```
//!
//! Root, `nft` and `iperf3` needed. Prints a Markdown table and one JSON line.

use std::{
    net::Ipv6Addr,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use shim6d::{
    config::Config,
    trigger::{AccountingOptions, FlowAccounting, nft},
    visibility::{UlidPair, Visibility},
};
use xfrm_sys::netns::{self, Netns};

const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc6, 0, 0, 0, 0, 1);
const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc6, 0, 0, 0, 0, 2);
const CONDITIONS: [&str; 6] = ["base", "hook", "vis1", "vis10k", "vis10k_other", "trigger"];

/// What the worker thread inside B is asked to do.
enum Req {
    Setup(&'static str),
    Teardown,
    PollCost(usize),
    Quit,
}

/// The worker inside B: owns the tables (their `Drop` must run `nft` in B).
fn worker(rx: mpsc::Receiver<(Req, mpsc::Sender<String>)>) {
    let mut vis: Option<Visibility> = None;
    let mut acc: Option<FlowAccounting> = None;
    let mut hook = false;
    let pair = UlidPair::new(B, A);
    let many: Vec<UlidPair> = (1..10_000u16)
        .map(|i| UlidPair::new(B, Ipv6Addr::new(0x2001, 0xdb8, 0xd0, 0, 0, 0, 1, i)))
        .chain([pair])
        .collect();
    while let Ok((req, reply)) = rx.recv() {
        let answer = match req {
            Req::Setup("base") => String::new(),
            Req::Setup("hook") => {
                // An empty base chain on the input hook: the price of any nftables hook.
                nft::replace_table(
                    "shim6d_bench",
                    "  chain input {\n    type filter hook input priority -150; policy accept;\n  }",
                )
                .unwrap();
                hook = true;
                String::new()
            }
            Req::Setup("vis1") => {
                let mut v = Visibility::install("shim6d_bench").unwrap();
                v.register(pair).unwrap();
                vis = Some(v);
                String::new()
            }
            Req::Setup("vis10k") => {
                let mut v = Visibility::install("shim6d_bench").unwrap();
                v.register_all(&many).unwrap();
                vis = Some(v);
                String::new()
            }
            Req::Setup("vis10k_other") => {
                // 10⁴ pairs registered, none of them A→B: what other traffic pays.
                let mut v = Visibility::install("shim6d_bench").unwrap();
                v.register_all(&many[..many.len() - 1]).unwrap();
                vis = Some(v);
                String::new()
            }
            Req::Setup("trigger") => {
                let mut o = AccountingOptions::for_daemon(&Config::default());
                o.table = "shim6d_bench".into();
                o.tun = None;
                acc = Some(FlowAccounting::install(&o).unwrap());
                String::new()
            }
            Req::Setup(other) => panic!("unknown condition {other}"),
            Req::Teardown => {
                if let Some(v) = vis.take() {
                    v.delete().unwrap();
                }
                if let Some(a) = acc.take() {
                    a.delete().unwrap();
                }
                if std::mem::take(&mut hook) {
                    nft::delete_table("shim6d_bench").unwrap();
                }
                String::new()
            }
            Req::PollCost(n) => {
                let mut v = Visibility::install("shim6d_bench").unwrap();
                if n == 1 {
                    v.register(pair).unwrap();
                } else {
                    v.register_all(&many[many.len() - n..]).unwrap();
                }
                let runs = 20;
                let t = Instant::now();
                for _ in 0..runs {
                    v.poll().unwrap();
                }
                let poll = t.elapsed() / runs;
                let t = Instant::now();
                let extra = UlidPair::new(B, Ipv6Addr::new(0x2001, 0xdb8, 0xd1, 0, 0, 0, 0, 1));
                v.register(extra).unwrap();
                let register = t.elapsed();
                v.delete().unwrap();
                let mut o = AccountingOptions::for_daemon(&Config::default());
                o.table = "shim6d_bench".into();
                o.tun = None;
                let a = FlowAccounting::install(&o).unwrap();
                let t = Instant::now();
                for _ in 0..runs {
                    a.read().unwrap();
                }
                let read = t.elapsed() / runs;
                a.delete().unwrap();
                format!(
                    "{:.2} {:.2} {:.2}",
                    poll.as_secs_f64() * 1e3,
                    register.as_secs_f64() * 1e3,
                    read.as_secs_f64() * 1e3
                )
            }
            Req::Quit => {
                let _ = reply.send(String::new());
                break;
            }
        };
        let _ = reply.send(answer);
    }
}

fn iperf(a: &Netns, args: &[&str]) -> serde_json::Value {
    // Client on CPU 0, server (below) on CPU 1: less scheduler noise between runs.
    let mut all = vec!["-6", "-c", "2001:db8:c6::2", "-J", "-A", "0"];
    all.extend_from_slice(args);
    let out = a.exec("iperf3", &all).unwrap();
    assert!(out.status.success(), "iperf3 {args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The iperf3 server, killed (by its own PID) and reaped when dropped, also on panic.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u32 = args.next().map_or(3, |s| s.parse().expect("SECONDS"));
    let rounds: usize = args.next().map_or(3, |s| s.parse().expect("ROUNDS"));
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("bencha").unwrap();
    let b = Netns::new("benchb").unwrap();
    netns::veth(&a, "a0", &b, "b0").unwrap();
    a.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{A}/64"),
        "dev",
        "a0",
        "nodad",
    ])
    .unwrap();
    b.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{B}/64"),
        "dev",
        "b0",
        "nodad",
    ])
    .unwrap();
    a.ip(&["link", "set", "a0", "up"]).unwrap();
    b.ip(&["link", "set", "b0", "up"]).unwrap();

    let (tx, rx) = mpsc::channel();
    let w = netns::spawn(b.name(), move || async move { worker(rx) }).unwrap();
    let ask = |req: Req| {
        let (rtx, rrx) = mpsc::channel();
        tx.send((req, rtx)).unwrap();
        rrx.recv().unwrap()
    };
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            b.name(),
            "iperf3",
            "-s",
            "-B",
            "2001:db8:c6::2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Server)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let t = secs.to_string();
    let mut udp: Vec<Vec<f64>> = vec![Vec::new(); CONDITIONS.len()];
    let mut tcp: Vec<Vec<f64>> = vec![Vec::new(); CONDITIONS.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); CONDITIONS.len()];
    for round in 0..rounds {
        for (i, c) in CONDITIONS.iter().enumerate() {
            ask(Req::Setup(c));
            let u = iperf(&a, &["-u", "-b", "0", "-l", "64", "-t", &t]);
            let r = &u["end"]["sum_received"];
            let pps = r["bytes"].as_f64().unwrap() / 64.0 / r["seconds"].as_f64().unwrap();
            // Fixed rate, 50 000 datagrams/s of 64 octets: CPU time per datagram of
            // both ends (getrusage, so other load on the machine matters less). The
            // receiver's netfilter input hook runs in softirq, on the sender's CPU.
            let f = iperf(&a, &["-u", "-b", "25.6M", "-l", "64", "-t", &t]);
            let sent = f["end"]["sum_sent"]["packets"].as_f64().unwrap();
            let secs = f["end"]["sum_sent"]["seconds"].as_f64().unwrap();
            let usage = &f["end"]["cpu_utilization_percent"];
            let cpu_us = (usage["host_total"].as_f64().unwrap()
                + usage["remote_total"].as_f64().unwrap())
                / 100.0
                * secs
                / sent
                * 1e6;
            cpu[i].push(cpu_us);
            let tc = iperf(&a, &["-t", &t]);
            let bps = tc["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap();
            ask(Req::Teardown);
            eprintln!(
                "round {round} {c}: {pps:.0} pkt/s, {cpu_us:.3} µs CPU/pkt, {:.2} Gbit/s",
                bps / 1e9
            );
            udp[i].push(pps);
            tcp[i].push(bps);
        }
    }
    let poll1 = ask(Req::PollCost(1));
    let poll10k = ask(Req::PollCost(10_000));
    ask(Req::Quit);
    w.join().unwrap();
    drop(server);

    let base_u = median(&mut udp[0].clone());
    let base_t = median(&mut tcp[0].clone());
    let base_c = median(&mut cpu[0].clone());
    println!(
        "| condition | UDP 64 B pkt/s: median (min–max) | ratio | CPU µs per datagram at 50 kpps: median (min–max) | ratio | TCP Gbit/s: median (min–max) | ratio |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut json = serde_json::Map::new();
    for (i, c) in CONDITIONS.iter().enumerate() {
        let u = median(&mut udp[i]);
        let tc = median(&mut tcp[i]);
        let (ulo, uhi) = (udp[i][0], udp[i][udp[i].len() - 1]);
        let (tlo, thi) = (tcp[i][0] / 1e9, tcp[i][tcp[i].len() - 1] / 1e9);
        let cu = median(&mut cpu[i]);
        let (clo, chi) = (cpu[i][0], cpu[i][cpu[i].len() - 1]);
        println!(
            "| {c} | {u:.0} ({ulo:.0}–{uhi:.0}) | {:.3} | {cu:.3} ({clo:.3}–{chi:.3}) | {:.3} | {:.2} ({tlo:.2}–{thi:.2}) | {:.3} |",
            u / base_u,
            cu / base_c,
            tc / 1e9,
            tc / base_t
        );
        json.insert(
            (*c).into(),
            serde_json::json!({"udp_pps": u, "udp_ratio": u / base_u, "cpu_us_per_datagram": cu, "cpu_ratio": cu / base_c, "tcp_bps": tc, "tcp_ratio": tc / base_t}),
        );
    }
    let p1: Vec<f64> = poll1.split(' ').map(|x| x.parse().unwrap()).collect();
    let p10k: Vec<f64> = poll10k.split(' ').map(|x| x.parse().unwrap()).collect();
    println!(
        "\nvisibility poll (switch + list): {:.2} ms with 1 pair, {:.2} ms with 10^4 pairs; \
         register one pair: {:.2} ms; trigger read: {:.2} ms",
        p1[0], p10k[0], p1[1], p1[2]
    );
    json.insert(
        "poll_ms".into(),
        serde_json::json!({"pairs_1": p1[0], "pairs_10k": p10k[0], "register_ms": p1[1], "trigger_read_ms": p1[2]}),
    );
    json.insert("seconds_per_test".into(), secs.into());
    json.insert("rounds".into(), rounds.into());
    println!("{}", serde_json::Value::Object(json));
}
