//! UDP receive/send on the real kernel: echo (answers from the receive
//! socket, from a sender on another port, from a `bind_sender` twin in a
//! steered reuseport group), and buffer-ring exhaustion with refill where
//! no datagram may be lost or corrupted.

mod common;

use common::{Serving, UdpEcho, STOP};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;
use uring_rt::socket::{attach_reuseport_cbpf, bind_sender, bpf_stmt};
use uring_rt::{Ctx, Datagram, Handler, SocketId};

/// Datagrams in the exhaustion test.
const TOTAL: u64 = 100_000;
/// Datagrams in flight: more than the 64 buffers, less than the socket buffers hold.
const WINDOW: u64 = 160;

/// The echo server's receive socket, and the socket its answers leave
/// through when that is another one.
struct EchoSockets {
    sock: UdpSocket,
    sender: Option<UdpSocket>,
}

impl common::Serve for EchoSockets {
    type Id = SocketId;
    fn add_to<M: Copy + Send + 'static>(self, ctx: &mut Ctx<M>) -> (SocketAddr, SocketId) {
        let addr = self.sock.local_addr().unwrap();
        let id = match self.sender {
            Some(sender) => ctx.add_udp_with_sender(self.sock, sender),
            None => ctx.add_udp(self.sock),
        };
        (addr, id.unwrap())
    }
}

/// Where the echo server's answers leave from.
#[derive(Clone, Copy, PartialEq)]
enum Answers {
    /// The receive socket itself (`add_udp`).
    Same,
    /// A sender on another port: answers must come from that port.
    OtherPort,
    /// A `bind_sender` twin in the receive socket's reuseport group, steered
    /// by a program that always picks the receive socket (through a random
    /// ancillary load, so the program is exercised): every datagram must
    /// still arrive and be answered from the server's own port.
    Twin,
}

/// The server's socket (and sender) for `answers`, bound to `bind`.
fn server_sockets(bind: &str, answers: Answers) -> EchoSockets {
    let addr: SocketAddr = bind.parse().unwrap();
    let (sock, sender) = match answers {
        Answers::Same => (UdpSocket::bind(addr).unwrap(), None),
        Answers::OtherPort => (
            UdpSocket::bind(addr).unwrap(),
            Some(UdpSocket::bind(addr).unwrap()),
        ),
        Answers::Twin => {
            let sock = common::reuseport_udp(addr);
            let always_first = [
                bpf_stmt(
                    libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
                    (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32,
                ),
                bpf_stmt(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, 1),
                bpf_stmt(libc::BPF_RET | libc::BPF_A, 0),
            ];
            attach_reuseport_cbpf(&sock, &always_first).unwrap();
            let sender = bind_sender(&sock).unwrap();
            (sock, Some(sender))
        }
    };
    EchoSockets { sock, sender }
}

/// Echoes 1,000 datagrams sent to `target` (the bound port filled in) from
/// 8 client sockets (8 different reuseport hashes); `expect_dst`: the
/// socket is wildcard-bound, so pktinfo names the destination of every
/// datagram.
fn echo_on(bind: &str, target_ip: &str, expect_dst: bool, answers: Answers) {
    if common::skip_udp() {
        return;
    }
    let sockets = server_sockets(bind, answers);
    let sender_port = sockets
        .sender
        .as_ref()
        .map(|s| s.local_addr().unwrap().port());
    let (addrs, t) = common::serve(common::small(1), vec![sockets], UdpEcho::new);
    let bound = addrs[0];
    let server = SocketAddr::new(target_ip.parse().unwrap(), bound.port());
    let answer_from = match (answers, sender_port) {
        (Answers::OtherPort, Some(port)) => SocketAddr::new(server.ip(), port),
        _ => server,
    };
    let clients: Vec<UdpSocket> = (0..8)
        .map(|_| common::udp_client(server.ip(), Duration::from_secs(5)))
        .collect();
    let mut buf = [0u8; 2048];
    for i in 0..1000u32 {
        let client = &clients[i as usize % clients.len()];
        let msg: Vec<u8> = (0..=(i % 1400)).map(|k| (k * 7 + i) as u8).collect();
        client.send_to(&msg, server).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, answer_from);
        assert_eq!(&buf[..n], &msg[..]);
    }
    clients[0].send_to(STOP, server).unwrap();
    let h = t.join().unwrap();
    assert_eq!(h.report.echoed, 1000);
    let want = if expect_dst { 1000 } else { 0 };
    assert_eq!(
        h.report.dst_seen, want,
        "pktinfo destination only on wildcard binds"
    );
    // The worker's file table referenced the socket (and the sender); once
    // `run` returned the port must be free again (a restarting tracker
    // binds it at once).
    drop(h);
    UdpSocket::bind(bound).expect("port still bound after the runtime returned");
}

#[test]
fn echo_v4() {
    for answers in [Answers::Same, Answers::OtherPort, Answers::Twin] {
        echo_on("0.0.0.0:0", "127.0.0.1", true, answers);
        echo_on("127.0.0.1:0", "127.0.0.1", false, answers);
    }
}

#[test]
fn echo_v6() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    for answers in [Answers::Same, Answers::OtherPort, Answers::Twin] {
        echo_on("[::]:0", "::1", true, answers);
        echo_on("[::1]:0", "::1", false, answers);
    }
}

/// Checks every payload and acknowledges it with its sequence number; every
/// 500th datagram it sleeps a little so the socket queue builds up and the
/// 64-buffer ring runs dry.
struct Checker {
    serving: Serving<UdpSocket>,
    good: u64,
    bad: u64,
    exhausted: u64,
    grown: u64,
    rearms: u64,
}

fn payload(seq: u64, out: &mut [u8]) -> usize {
    let len = 16 + (seq % 300) as usize;
    out[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in out[8..len].iter_mut().enumerate() {
        *b = (seq.wrapping_mul(31) as usize + i * 13) as u8;
    }
    len
}

impl Handler for Checker {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.serving.start(ctx);
    }
    fn on_datagram(&mut self, ctx: &mut Ctx<()>, d: Datagram<'_>) {
        if d.payload == STOP {
            self.exhausted = ctx.stats().recv_buffers_exhausted;
            self.grown = ctx.stats().recv_buffers_grown;
            self.rearms = ctx.stats().rearms;
            ctx.stop();
            return;
        }
        let Some(seq) = d
            .payload
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        else {
            self.bad += 1;
            return;
        };
        let mut want = [0u8; 400];
        let n = payload(seq, &mut want);
        if d.payload == &want[..n] {
            self.good += 1;
        } else {
            self.bad += 1;
        }
        if seq % 500 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        ack(ctx, d.socket, d.src, seq);
    }
}

fn ack(ctx: &mut Ctx<()>, s: SocketId, to: SocketAddr, seq: u64) {
    ctx.send_to(s, to, None, |b| {
        b[..8].copy_from_slice(&seq.to_le_bytes());
        8
    })
    .expect("send slot");
}

/// `sock` with a 4 MiB receive buffer.
fn large_buffers(sock: UdpSocket) -> UdpSocket {
    socket2::SockRef::from(&sock)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    sock
}

/// Sends `TOTAL` checked datagrams with `window` in flight, spread over
/// `sockets` sockets of one worker whose ring holds `buffers`; returns the
/// handler when every one was acknowledged exactly once.
fn checked_run(sockets: usize, buffers: u16, window: u64) -> Checker {
    let socks = (0..sockets)
        .map(|_| large_buffers(common::udp_socket()))
        .collect();
    let mut cfg = common::small(1);
    cfg.recv_buffers = buffers;
    let (servers, t) = common::serve(cfg, socks, |serving| Checker {
        serving,
        good: 0,
        bad: 0,
        exhausted: 0,
        grown: 0,
        rearms: 0,
    });
    let server = |seq: u64| servers[seq as usize % servers.len()];
    let client = large_buffers(common::udp_client(
        Ipv4Addr::LOCALHOST.into(),
        Duration::from_secs(10),
    ));
    let mut acked = vec![false; TOTAL as usize];
    let mut buf = [0u8; 512];
    let mut next = 0u64;
    let mut done = 0u64;
    while next < window.min(TOTAL) {
        let n = payload(next, &mut buf);
        client.send_to(&buf[..n], server(next)).unwrap();
        next += 1;
    }
    while done < TOTAL {
        let (n, _) = client
            .recv_from(&mut buf)
            .expect("ack lost: a datagram was dropped");
        assert_eq!(n, 8);
        let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
        assert!(!acked[seq as usize], "duplicate ack {seq}");
        acked[seq as usize] = true;
        done += 1;
        if next < TOTAL {
            let n = payload(next, &mut buf);
            client.send_to(&buf[..n], server(next)).unwrap();
            next += 1;
        }
    }
    client.send_to(STOP, server(0)).unwrap();
    let h = t.join().unwrap();
    assert_eq!(h.bad, 0);
    assert_eq!(h.good, TOTAL);
    h
}

#[test]
fn buffer_ring_exhaust_and_refill_100k() {
    if common::skip_udp() {
        return;
    }
    let h = checked_run(1, 64, WINDOW);
    eprintln!("exhausted {} rearms {}", h.exhausted, h.rearms);
    assert!(
        h.exhausted > 0,
        "the 64-buffer ring never ran dry; test did not exercise refill"
    );
    assert!(h.rearms >= h.exhausted);
}

/// A ring starts with 128 of its 1,024 buffers in play and doubles them
/// (once per loop turn) when it runs dry. Eight sockets share the group
/// and the kernel fills up to 32 buffers per socket before the worker
/// recycles any, so it runs dry; 400 datagrams in flight never need more
/// than 512, so it grows once or twice, not to all 1,024.
#[test]
fn buffer_ring_grows_to_the_load() {
    if common::skip_udp() {
        return;
    }
    let h = checked_run(8, 1024, 400);
    eprintln!("exhausted {} grown {}", h.exhausted, h.grown);
    assert!(h.grown >= 1, "the 128 first buffers never ran dry");
    assert!(h.grown <= 2, "grew past what 400 in flight need");
}
