//! The protocol-core seam, exercised through the real service loop in a namespace.
//!
//! `SeamProbe` is a **test double of the [`ProtocolCore`] contract, not a protocol**: it
//! turns control commands into the requests a real core makes (a route for a peer, a
//! packet to transmit) and records what the shell hands it. The test checks that the
//! shell honours the contract end to end: `establish` reaches the core, its
//! `RouteAdd` becomes a route into the TUN, the application's packets then come to
//! `outbound` and leave through the marked raw socket (or are dropped and counted by the
//! core's reason), `poll_transmit` packets go out, protocol-140 datagrams reach
//! `inbound` with their metadata, `rm` removes the route, and shutdown cleans up.

use std::{
    net::{Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use shim6d::{
    config::Config,
    control::{
        Command, CommandError, Listener, Reply, Target,
        client::{self, Endpoint},
    },
    core::{CoreEvent, Inbound, Outbound, ProtocolCore},
    dataplane::{Batch, PacketBuf, RawRecv, RawSend, RecvMeta, raw::IPPROTO_SHIM6},
    service::{self, Resources},
};
use xfrm_sys::netns::{self, Netns};

const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, 1);
const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, 2);
const WAIT: Duration = Duration::from_secs(10);

/// What the probe saw, shared with the test.
#[derive(Default, Debug)]
struct Seen {
    outbound: Vec<Vec<u8>>,
    inbound: Vec<(Vec<u8>, RecvMeta)>,
    locators: Vec<Vec<Ipv6Addr>>,
}

struct SeamProbe {
    seen: Arc<Mutex<Seen>>,
    events: Vec<CoreEvent>,
    transmit: Vec<Vec<u8>>,
    peers: Vec<Ipv6Addr>,
}

impl ProtocolCore for SeamProbe {
    fn outbound(&mut self, _now: Instant, packet: &mut PacketBuf) -> Outbound {
        let p = packet.packet().to_vec();
        let drop = p.ends_with(b"drop me");
        self.seen.lock().unwrap().outbound.push(p);
        if drop {
            Outbound::Drop("probe_drop")
        } else {
            Outbound::PassThrough
        }
    }

    fn inbound(&mut self, _now: Instant, packet: &mut PacketBuf, meta: &RecvMeta) -> Inbound {
        self.seen
            .lock()
            .unwrap()
            .inbound
            .push((packet.packet().to_vec(), *meta));
        Inbound::Drop("probe_inbound")
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut PacketBuf) -> bool {
        let Some(p) = self.transmit.pop() else {
            return false;
        };
        let (data, _, _) = buf.parts_mut();
        data[..p.len()].copy_from_slice(&p);
        buf.set_window(0, p.len())
    }

    fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn local_locators(&mut self, _now: Instant, locators: &[Ipv6Addr]) {
        self.seen.lock().unwrap().locators.push(locators.to_vec());
    }

    fn command(&mut self, _now: Instant, command: &Command) -> Result<Reply, CommandError> {
        match command {
            Command::Establish(peer) => {
                self.peers.push(*peer);
                self.events.push(CoreEvent::RouteAdd(*peer));
                Ok(Reply::new("ok", serde_json::json!({})))
            }
            Command::Rm(Target::All) => {
                for p in self.peers.drain(..) {
                    self.events.push(CoreEvent::RouteRemove(p));
                }
                Ok(Reply::new("ok", serde_json::json!({})))
            }
            Command::Explore(_) => {
                // A protocol-140 packet to every peer.
                for p in &self.peers {
                    let mut pkt = vec![0x60, 0, 0, 0, 0, 8, 140, 64];
                    pkt.extend_from_slice(&A.octets());
                    pkt.extend_from_slice(&p.octets());
                    pkt.extend_from_slice(&[59, 0, 0x80 | 67, 0, 0, 0, 0, 0]);
                    self.transmit.push(pkt);
                }
                Ok(Reply::new("ok", serde_json::json!({})))
            }
            Command::Ls => Ok(Reply::new(
                format!("{} peers", self.peers.len()),
                serde_json::json!({ "peers": self.peers.len() }),
            )),
            Command::Stats | Command::Params | Command::Locators => {
                Ok(Reply::new("probe", serde_json::json!({ "probe": true })))
            }
            _ => Err(CommandError::Failed("not in the probe".into())),
        }
    }
}

#[test]
fn the_shell_honours_the_core_contract() {
    if !netns::require_net_admin() {
        return;
    }
    let a = Netns::new("seama").unwrap();
    let b = Netns::new("seamb").unwrap();
    netns::veth(&a, "a0", &b, "b0").unwrap();
    for (ns, dev, addr) in [(&a, "a0", A), (&b, "b0", B)] {
        ns.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            dev,
            "nodad",
        ])
        .unwrap();
        ns.ip(&["link", "set", dev, "up"]).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("shim6d-seam-{}", a.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("ctl.sock");
    let ctl = |line: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(client::oneshot(&Endpoint::Unix(sock.clone()), line, WAIT))
            .unwrap()
    };

    // B: a UDP application, and a protocol-140 listener.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let peer = b
        .spawn(move || async move {
            let udp = tokio::net::UdpSocket::bind(SocketAddr::new(B.into(), 7000))
                .await
                .unwrap();
            let raw = RawRecv::open(IPPROTO_SHIM6).unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 1500];
            let (n, _) = tokio::time::timeout(WAIT, udp.recv_from(&mut buf))
                .await
                .expect("the application's datagram")
                .unwrap();
            let datagram = buf[..n].to_vec();
            let mut batch = Batch::new(4, 1500);
            tokio::time::timeout(WAIT, raw.recv_batch(&mut batch))
                .await
                .expect("the core's transmit")
                .unwrap();
            // Answer with a protocol-140 datagram of our own, for A's inbound path.
            let tx = RawSend::open(0).unwrap();
            let mut pkt = vec![0x60, 0, 0, 0, 0, 8, 140, 64];
            pkt.extend_from_slice(&B.octets());
            pkt.extend_from_slice(&A.octets());
            pkt.extend_from_slice(&[59, 0, 0x80 | 66, 0, 1, 2, 3, 4]);
            tx.send(&pkt).await.unwrap();
            (datagram, batch.bufs[0].packet().to_vec(), batch.meta[0])
        })
        .unwrap();
    ready_rx.recv_timeout(WAIT).unwrap();

    // A: the service with the probe as its core.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let probe = SeamProbe {
        seen: seen.clone(),
        events: Vec::new(),
        transmit: Vec::new(),
        peers: Vec::new(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sock_path = sock.clone();
    let daemon = a
        .spawn(move || async move {
            let mut config = Config::default();
            config.control.listen = None;
            let resources = Resources {
                control: vec![Listener::unix(sock_path).unwrap()],
                core: Some(Box::new(probe)),
                reload: None,
            };
            service::run(config, resources, async {
                let _ = stop_rx.await;
            })
            .await
        })
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while !sock.exists() || ctl("ls").is_error {
        assert!(Instant::now() < deadline, "daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ctl("ls").text, "0 peers\n");
    assert!(
        seen.lock()
            .unwrap()
            .locators
            .last()
            .is_some_and(|l| l.contains(&A)),
        "the core got the local locators"
    );

    // establish → RouteAdd → route into the TUN.
    assert!(!ctl("establish 2001:db8:c1::2").is_error);
    let routes = a.ip(&["-6", "route", "show", "table", "51"]).unwrap();
    assert!(routes.contains("2001:db8:c1::2 dev shim6"), "{routes}");

    // The application's datagrams now enter the TUN and reach the core; the one the
    // core drops is counted under its reason, the other reaches B.
    a.run(|| async {
        let s = tokio::net::UdpSocket::bind(SocketAddr::new(A.into(), 0))
            .await
            .unwrap();
        s.send_to(b"drop me", (B, 7000)).await.unwrap();
        s.send_to(b"hello", (B, 7000)).await.unwrap();
    })
    .unwrap();
    // explore → poll_transmit → the raw socket.
    assert!(!ctl("explore 1").is_error);

    let (datagram, transmitted, meta) = peer.join().unwrap();
    assert_eq!(datagram, b"hello");
    assert_eq!(transmitted, [59, 0, 0x80 | 67, 0, 0, 0, 0, 0]);
    assert_eq!((meta.src, meta.dst), (Some(A), Some(B)));
    let deadline = Instant::now() + WAIT;
    while seen.lock().unwrap().inbound.is_empty() {
        assert!(
            Instant::now() < deadline,
            "B's datagram never reached inbound"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.outbound.len(), 2, "both datagrams reached outbound");
        let (body, meta) = &s.inbound[0];
        assert_eq!(body, &[59, 0, 0x80 | 66, 0, 1, 2, 3, 4]);
        assert_eq!((meta.src, meta.dst), (Some(B), Some(A)));
    }
    let stats: serde_json::Value = serde_json::from_str(&ctl("stats --json").text).unwrap();
    assert_eq!(stats["dataplane"]["drops"]["probe_drop"], 1);
    assert_eq!(stats["dataplane"]["drops"]["probe_inbound"], 1);
    assert_eq!(stats["core"]["probe"], true, "the core's part is merged");

    // rm * → RouteRemove.
    assert!(!ctl("rm *").is_error);
    let routes = a.ip(&["-6", "route", "show", "table", "51"]).unwrap();
    assert!(routes.is_empty(), "{routes}");

    stop_tx.send(()).unwrap();
    daemon.join().unwrap().unwrap();
    let rules = a.ip(&["-6", "rule", "show"]).unwrap();
    assert!(!rules.contains("lookup 51"), "{rules}");
    std::fs::remove_dir_all(&dir).unwrap();
}
