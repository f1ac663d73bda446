//! Two workers on one port (SO_REUSEPORT): every datagram is forwarded
//! through the mesh to the other worker, which answers from its own socket
//! with the source address the client used (pktinfo). Also: MSG_RING
//! wake-ups of an idle worker, and timers.

mod common;

use common::Serving;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use uring_rt::{Ctx, Datagram, Handler, SocketId};

#[derive(Clone, Copy)]
struct Fwd {
    src: SocketAddr,
    dst: Option<IpAddr>,
    len: u8,
    data: [u8; 32],
}

#[derive(Clone, Copy)]
enum Msg {
    Fwd(Fwd),
    Stop,
}

struct W {
    serving: Serving<UdpSocket>,
    socket: Option<SocketId>,
    forwarded: u64,
    answered: u64,
    wakeups: u64,
}

impl W {
    /// A worker serving `sock`, and where its address arrives.
    fn new(sock: UdpSocket) -> (W, std::sync::mpsc::Receiver<Vec<SocketAddr>>) {
        let (serving, ready) = Serving::new(vec![sock]);
        let w = W {
            serving,
            socket: None,
            forwarded: 0,
            answered: 0,
            wakeups: 0,
        };
        (w, ready)
    }
}

impl Handler for W {
    type Msg = Msg;
    fn on_start(&mut self, ctx: &mut Ctx<Msg>) {
        self.socket = self.serving.start(ctx).pop();
    }
    fn on_datagram(&mut self, ctx: &mut Ctx<Msg>, d: Datagram<'_>) {
        let other = 1 - ctx.worker();
        if d.payload == b"STOP" {
            ctx.mesh_send(other, Msg::Stop).unwrap();
            self.wakeups = ctx.stats().mesh_wakeups;
            ctx.stop();
            return;
        }
        let mut f = Fwd {
            src: d.src,
            dst: d.dst,
            len: d.payload.len().min(32) as u8,
            data: [0; 32],
        };
        f.data[..f.len as usize].copy_from_slice(&d.payload[..f.len as usize]);
        ctx.mesh_send(other, Msg::Fwd(f)).unwrap();
        self.forwarded += 1;
    }
    fn on_mesh(&mut self, ctx: &mut Ctx<Msg>, from: usize, msg: Msg) {
        match msg {
            Msg::Stop => {
                self.wakeups = ctx.stats().mesh_wakeups;
                ctx.stop();
            }
            Msg::Fwd(f) => {
                let me = ctx.worker() as u8;
                ctx.send_to(self.socket.unwrap(), f.src, f.dst, |b| {
                    b[0] = from as u8;
                    b[1] = me;
                    b[2..2 + f.len as usize].copy_from_slice(&f.data[..f.len as usize]);
                    2 + f.len as usize
                })
                .unwrap();
                self.answered += 1;
            }
        }
    }
}

#[test]
fn forward_through_mesh_and_answer_from_right_source() {
    if common::skip_udp() {
        return;
    }
    let first = common::reuseport_udp("0.0.0.0:0".parse().unwrap());
    let port = first.local_addr().unwrap().port();
    let second = common::reuseport_udp(SocketAddr::from(([0, 0, 0, 0], port)));
    let (a, a_ready) = W::new(first);
    let (b, b_ready) = W::new(second);
    let t = std::thread::spawn(move || uring_rt::run(&common::small(2), vec![a, b]));
    a_ready.recv().unwrap();
    b_ready.recv().unwrap();
    // 127.0.0.2 is local but not the default source: only pktinfo makes the
    // answer come from it.
    let server: SocketAddr = SocketAddr::from(([127, 0, 0, 2], port));
    let clients: Vec<UdpSocket> = (0..16)
        .map(|_| common::udp_client(Ipv4Addr::LOCALHOST.into(), Duration::from_secs(5)))
        .collect();
    let mut buf = [0u8; 64];
    let mut by_receiver = [0u32; 2];
    for round in 0..50u32 {
        for (ci, c) in clients.iter().enumerate() {
            let msg = format!("r{round}c{ci}");
            c.send_to(msg.as_bytes(), server).unwrap();
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(
                from, server,
                "answer must come from the address the client used"
            );
            assert_eq!(&buf[2..n], msg.as_bytes());
            assert_ne!(buf[0], buf[1], "answered by the other worker");
            by_receiver[buf[0] as usize] += 1;
        }
    }
    clients[0].send_to(b"STOP", server).unwrap();
    let hs = t.join().unwrap().unwrap();
    assert_eq!(hs[0].forwarded + hs[1].forwarded, 800);
    assert_eq!(hs[0].answered + hs[1].answered, 800);
    assert_eq!(hs[0].forwarded, hs[1].answered);
    eprintln!(
        "received by worker: {by_receiver:?}; wakeups {} {}",
        hs[0].wakeups, hs[1].wakeups
    );
    assert!(hs[0].wakeups + hs[1].wakeups > 0);
}

/// Worker 0 pings idle worker 1 from a timer; worker 1 is blocked in the
/// kernel and must be woken (MSG_RING) to answer.
struct Pinger {
    sent_at: Option<Instant>,
    round_trips: Vec<Duration>,
    pongs: u32,
    timer_fires: u32,
}

impl Handler for Pinger {
    type Msg = u32;
    fn on_start(&mut self, ctx: &mut Ctx<u32>) {
        if ctx.worker() == 0 {
            ctx.add_timer(Duration::from_millis(20), 7);
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<u32>, token: u64) {
        assert_eq!(token, 7);
        self.timer_fires += 1;
        if self.sent_at.is_none() {
            self.sent_at = Some(Instant::now());
            ctx.mesh_send(1, self.timer_fires).unwrap();
        }
    }
    fn on_mesh(&mut self, ctx: &mut Ctx<u32>, from: usize, n: u32) {
        if ctx.worker() == 1 {
            ctx.mesh_send(from, n).unwrap();
            if n >= 5 {
                ctx.stop();
            }
            return;
        }
        self.pongs += 1;
        self.round_trips
            .push(self.sent_at.take().unwrap().elapsed());
        if n >= 5 {
            ctx.stop();
        }
    }
}

#[test]
fn msg_ring_wakes_idle_worker_and_timer_fires() {
    if common::skip_udp() {
        return;
    }
    let mk = || Pinger {
        sent_at: None,
        round_trips: Vec::new(),
        pongs: 0,
        timer_fires: 0,
    };
    let start = Instant::now();
    let hs = uring_rt::run(&common::small(2), vec![mk(), mk()]).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(hs[0].pongs, 5);
    assert!(hs[0].timer_fires >= 5);
    assert!(
        elapsed >= Duration::from_millis(90),
        "5 ticks of 20 ms took {elapsed:?}"
    );
    // Each round trip crosses two idle rings; without a wake-up it would
    // hang until the next timer tick (20 ms) or forever on worker 1.
    for rt in &hs[0].round_trips {
        assert!(
            *rt < Duration::from_millis(15),
            "round trip {rt:?}: wake-up too slow"
        );
    }
}
