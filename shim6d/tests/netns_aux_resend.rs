//! TCP after a path switch (architecture hazard 6), with the kernel's real TCP.
//!
//! Namespace A routes peer B into a TUN; a small relay plays the daemon's data path: it
//! reads A's packets from the TUN, feeds them to a [`ResendBuffer`], and sends them on
//! through the marked raw socket. B's ACKs reach A directly (as they do while locators
//! equal ULIDs), so the relay reads copies of them from a raw TCP socket and feeds
//! [`ResendBuffer::on_inbound`], as the daemon does with restored packets.
//!
//! A TCP stream from A to B runs; the relay then drops everything ("the path failed")
//! until A's TCP has retransmitted three times with exponential back-off, and heals
//! ("REAP found a new path"). Without re-send, the first packet A's TCP sends after the
//! heal is its next back-off retransmission. With re-send, the relay sends the
//! unacknowledged segments at once, B acknowledges them, and the first packet A's TCP
//! sends after the heal is **new data**. That ordering is asserted; the recovery times
//! are printed, not asserted (no timing in tests).
//!
//! Root only: without `CAP_NET_ADMIN` the test prints `SKIPPED`.

use std::{
    io::Read,
    net::{Ipv6Addr, SocketAddr, TcpListener},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use shim6d::{
    config::Config,
    dataplane::{Batch, Plumbing, RawRecv, RawSend, Tun},
    resend::{Limits, ResendBuffer, seq_le},
    visibility::UlidPair,
};
use tokio::io::AsyncWriteExt;
use xfrm_sys::{
    Handle,
    netns::{self, Netns},
};

const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc7, 0, 0, 0, 0, 1);
const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc7, 0, 0, 0, 0, 2);
/// Retransmissions into the outage before healing (`AUX_RESEND_RETRANSMISSIONS`
/// overrides it, 1–6, to measure recovery against the outage length:
/// `docs/bench/daemon-aux.md`).
const RETRANSMISSIONS: usize = 3;

fn retransmissions() -> usize {
    std::env::var("AUX_RESEND_RETRANSMISSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=6).contains(n))
        .unwrap_or(RETRANSMISSIONS)
}
/// The bound on every wait.
const WAIT: Duration = Duration::from_secs(40);

/// (seq, payload length) of an outbound TCP packet from the TUN (no extension headers:
/// the local stack sends none).
fn tcp_data(p: &[u8]) -> Option<(u32, u32)> {
    if p.len() < 60 || p[6] != 6 {
        return None;
    }
    let t = &p[40..];
    let doff = usize::from(t[12] >> 4) * 4;
    let len = u32::try_from(t.len().checked_sub(doff)?).ok()?;
    Some((u32::from_be_bytes([t[4], t[5], t[6], t[7]]), len))
}

/// What one run saw.
#[derive(Debug)]
struct Outcome {
    /// Segments the relay re-sent at the heal.
    resent: usize,
    /// Retransmissions A's TCP sent into the outage.
    retransmitted: usize,
    /// The first data packet after the heal was new data (not a retransmission).
    first_after_heal_is_new: bool,
    /// From the heal to B's next byte.
    recovery: Duration,
    /// From the break to the heal.
    outage: Duration,
    /// Segments still buffered just before the outage (ACK clearing at work).
    buffered_before: usize,
}

async fn run_relay(resend_on_heal: bool, b_bytes: Arc<AtomicU64>) -> Outcome {
    let config = Config::default();
    let handle = Handle::new().unwrap();
    let tun = Tun::create(&handle, "aux0", 1400).await.unwrap();
    let mut plumbing = Plumbing::install(handle.clone(), tun.index(), &config.routing)
        .await
        .unwrap();
    plumbing.add_peer(B).await.unwrap();
    let tx = RawSend::open(config.routing.fwmark).unwrap();
    let acks = RawRecv::open(6).unwrap();
    let mut resend = ResendBuffer::new(Limits::default());
    let pair = UlidPair::new(A, B);

    // The application: 1000 octets every 10 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let app_stop = stop.clone();
    let app = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(SocketAddr::new(B.into(), 7200))
            .await
            .unwrap();
        while !app_stop.load(Ordering::Relaxed) {
            s.write_all(&[0x5a; 1000]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let start = Instant::now();
    let mut batch = Batch::new(16, 1500);
    let mut inb = Batch::new(16, 1500);
    let mut snd_max: Option<u32> = None;
    let mut broken_at: Option<Instant> = None;
    let mut healed_at: Option<Instant> = None;
    let mut retransmitted = 0;
    let mut resent = 0;
    let mut buffered_before = 0;
    let mut first_after_heal: Option<bool> = None;
    let mut b_at_heal = 0;
    let mut recovery = None;
    while start.elapsed() < WAIT {
        tokio::select! {
            r = tun.recv_batch(&mut batch) => {
                r.unwrap();
                let now = Instant::now();
                for buf in batch.packets() {
                    let p = buf.packet();
                    resend.on_outbound(now, p);
                    let data = tcp_data(p).filter(|(_, len)| *len > 0);
                    if let Some((seq, len)) = data {
                        let is_retx = snd_max.is_some_and(|m| !seq_le(m, seq));
                        if broken_at.is_some() && healed_at.is_none() && is_retx {
                            retransmitted += 1;
                        }
                        if healed_at.is_some() && first_after_heal.is_none() {
                            first_after_heal = Some(!is_retx);
                        }
                        let end = seq.wrapping_add(len);
                        snd_max = Some(match snd_max {
                            Some(m) if seq_le(end, m) => m,
                            _ => end,
                        });
                    }
                    if broken_at.is_none() || healed_at.is_some() {
                        tx.send(p).await.unwrap();
                    }
                }
            }
            r = acks.recv_batch(&mut inb) => {
                r.unwrap();
                let now = Instant::now();
                for (buf, meta) in inb.packets().zip(&inb.meta) {
                    let (Some(src), Some(dst)) = (meta.src, meta.dst) else { continue };
                    // Rebuild the IPv6 header the raw socket stripped.
                    let tcp = buf.packet();
                    let mut p = vec![0x60, 0, 0, 0];
                    p.extend_from_slice(&u16::try_from(tcp.len()).unwrap().to_be_bytes());
                    p.extend_from_slice(&[6, 64]);
                    p.extend_from_slice(&src.octets());
                    p.extend_from_slice(&dst.octets());
                    p.extend_from_slice(tcp);
                    resend.on_inbound(now, &p);
                }
            }
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        let now = Instant::now();
        // Normal streaming until B has 20 kB (a connection's first SYN may be lost to
        // neighbour discovery and retried after 1 s), then the outage.
        if broken_at.is_none()
            && now - start > Duration::from_secs(1)
            && b_bytes.load(Ordering::Relaxed) >= 20_000
        {
            buffered_before = resend.buffered(pair).0;
            broken_at = Some(now);
        }
        // Heal 300 ms after the last retransmission we wait for: the next one is
        // seconds away (exponential back-off, RFC 6298 §5.5).
        if healed_at.is_none() && retransmitted >= retransmissions() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = Instant::now();
            healed_at = Some(now);
            b_at_heal = b_bytes.load(Ordering::Relaxed);
            if resend_on_heal {
                let segs: Vec<Vec<u8>> = resend
                    .on_path_change(now, pair)
                    .map(<[u8]>::to_vec)
                    .collect();
                resent = segs.len();
                for s in segs {
                    tx.send(&s).await.unwrap();
                }
            }
        }
        if let Some(h) = healed_at
            && recovery.is_none()
            && b_bytes.load(Ordering::Relaxed) > b_at_heal
        {
            recovery = Some(h.elapsed());
        }
        if recovery.is_some() && first_after_heal.is_some() {
            break;
        }
    }
    eprintln!(
        "relay: snd_max {snd_max:?} broken {:?} healed {:?} retransmitted {retransmitted} \
         first_after_heal {first_after_heal:?} b_bytes {} recovery {recovery:?}",
        broken_at.map(|t| t - start),
        healed_at.map(|t| t - start),
        b_bytes.load(Ordering::Relaxed)
    );
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(2), app).await;
    plumbing.teardown().await;
    Outcome {
        resent,
        retransmitted,
        first_after_heal_is_new: first_after_heal.expect("A sent data after the heal"),
        recovery: recovery.expect("B received data after the heal"),
        outage: healed_at
            .zip(broken_at)
            .map_or(Duration::ZERO, |(h, b)| h - b),
        buffered_before,
    }
}

fn one_run(resend_on_heal: bool) -> Outcome {
    let a = Netns::new("resa").unwrap();
    let b = Netns::new("resb").unwrap();
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
    // Permanent neighbour entries: no first packet waits for (or is lost to) neighbour
    // discovery, so the handshake's RTT sample, hence TCP's RTO, is the veth's.
    let mac = |ns: &Netns, dev: &str| {
        let out = ns.ip(&["-o", "link", "show", dev]).unwrap();
        let at = out.find("link/ether ").expect("an Ethernet address") + 11;
        out[at..at + 17].to_owned()
    };
    let (mac_a, mac_b) = (mac(&a, "a0"), mac(&b, "b0"));
    a.ip(&[
        "-6",
        "neigh",
        "replace",
        &B.to_string(),
        "lladdr",
        &mac_b,
        "dev",
        "a0",
        "nud",
        "permanent",
    ])
    .unwrap();
    b.ip(&[
        "-6",
        "neigh",
        "replace",
        &A.to_string(),
        "lladdr",
        &mac_a,
        "dev",
        "b0",
        "nud",
        "permanent",
    ])
    .unwrap();

    // B: count what the application receives.
    let b_bytes = Arc::new(AtomicU64::new(0));
    let counter = b_bytes.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = b
        .spawn(move || async move {
            let l = TcpListener::bind(SocketAddr::new(B.into(), 7200)).unwrap();
            ready_tx.send(()).unwrap();
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = [0u8; 65536];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
        .unwrap();
    ready_rx.recv_timeout(WAIT).unwrap();
    let outcome = a.run(move || run_relay(resend_on_heal, b_bytes)).unwrap();
    // A's namespace goes with `a`; B's reader ends when the connection does.
    drop(a);
    let _ = server.join();
    outcome
}

#[test]
fn resend_on_a_path_change_beats_tcps_backed_off_retransmission() {
    if !netns::require_net_admin() {
        return;
    }
    let without = one_run(false);
    let with = one_run(true);
    eprintln!("without re-send: {without:?}");
    eprintln!("with re-send:    {with:?}");
    eprintln!(
        "retransmissions {}: outage {:?}; application recovery after the heal: {:?} \
         without re-send, {:?} with",
        retransmissions(),
        without.outage,
        without.recovery,
        with.recovery
    );
    assert!(without.retransmitted >= retransmissions());
    assert!(
        !without.first_after_heal_is_new,
        "without re-send, TCP's own retransmission comes first: {without:?}"
    );
    assert!(with.resent >= 1, "{with:?}");
    assert!(
        with.first_after_heal_is_new,
        "with re-send, B's ACK lets A's TCP send new data first: {with:?}"
    );
    // ACK clearing: a second of streaming at 100 kB/s would be ~100 segments.
    assert!(
        with.buffered_before < 20,
        "acknowledged segments are cleared: {with:?}"
    );
}
