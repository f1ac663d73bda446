//! TCP: multishot ACCEPT + multishot RECV + SEND echo of 1,000 concurrent
//! connections, payloads checked, every close reported once.

mod common;

use common::Serving;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use uring_rt::{ConnId, Ctx, Datagram, Handler, ListenerId};

const CONNS: usize = 1000;

struct EchoTcp {
    serving: Serving<TcpListener>,
    open: HashSet<ConnId>,
    accepted: usize,
    closed: usize,
    bytes: usize,
    send_refused: usize,
}

impl Handler for EchoTcp {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.serving.start(ctx);
    }
    fn on_datagram(&mut self, _: &mut Ctx<()>, _: Datagram<'_>) {}
    fn on_accept(&mut self, _: &mut Ctx<()>, _: ListenerId, conn: ConnId, peer: SocketAddr) {
        assert!(peer.ip().is_loopback());
        assert!(self.open.insert(conn), "ConnId reused while open");
        self.accepted += 1;
    }
    fn on_recv(&mut self, ctx: &mut Ctx<()>, conn: ConnId, data: &mut [u8]) -> usize {
        assert!(self.open.contains(&conn));
        self.bytes += data.len();
        if ctx.send(conn, data).is_err() {
            self.send_refused += 1;
        }
        data.len()
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        assert!(self.open.remove(&conn), "on_closed for unknown conn");
        self.closed += 1;
        if self.closed == CONNS {
            ctx.stop();
        }
    }
}

fn pattern(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7) ^ (conn * 13)) as u8).collect()
}

#[test]
fn echo_1000_connections() {
    if common::skip_tcp() {
        return;
    }
    let (addrs, t) = common::serve(common::small(1), vec![common::tcp_listener()], |serving| {
        EchoTcp {
            serving,
            open: HashSet::new(),
            accepted: 0,
            closed: 0,
            bytes: 0,
            send_refused: 0,
        }
    });
    let mut streams: Vec<TcpStream> = (0..CONNS)
        .map(|_| common::connect(addrs[0], Duration::from_secs(10)))
        .collect();
    // Sizes from 1 byte to 12 KiB: several receive buffers per message.
    let sizes: Vec<usize> = (0..CONNS).map(|i| 1 + (i * 37) % 12_000).collect();
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&pattern(i, sizes[i])).unwrap();
    }
    let mut total = 0;
    for (i, s) in streams.iter_mut().enumerate() {
        let mut got = vec![0u8; sizes[i]];
        s.read_exact(&mut got).unwrap();
        assert!(got == pattern(i, sizes[i]), "conn {i}: echo corrupted");
        total += sizes[i];
    }
    drop(streams);
    let h = t.join().unwrap();
    assert_eq!(h.accepted, CONNS);
    assert_eq!(h.closed, CONNS);
    assert_eq!(h.bytes, total);
    assert_eq!(h.send_refused, 0);
    assert!(h.open.is_empty());
}

/// The server closes right after queueing a reply larger than the socket
/// buffer: the bytes must still all arrive (close waits for the send,
/// continuing partial sends), then the peer sees EOF.
struct Blob {
    serving: Serving<TcpListener>,
    partial: u64,
}

const BLOB: usize = 16 * 1024;

impl Handler for Blob {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.serving.start(ctx);
    }
    fn on_datagram(&mut self, _: &mut Ctx<()>, _: Datagram<'_>) {}
    fn on_accept(&mut self, ctx: &mut Ctx<()>, _: ListenerId, conn: ConnId, _: SocketAddr) {
        ctx.send(conn, &pattern(1, BLOB)).unwrap();
        ctx.close(conn);
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, _: ConnId) {
        self.partial = ctx.stats().send_partial;
        ctx.stop();
    }
}

#[test]
fn close_after_send_delivers_everything() {
    if common::skip_tcp() {
        return;
    }
    let (addrs, t) = common::serve(common::small(1), vec![common::tcp_listener()], |serving| {
        Blob {
            serving,
            partial: 0,
        }
    });
    let mut s = common::connect(addrs[0], Duration::from_secs(10));
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(4096)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got == pattern(1, BLOB));
    let partial = t.join().unwrap().partial;
    eprintln!("partial sends continued: {partial}");
}
