//! Shared test helpers: running a test server ([`server`], which other
//! crates' tests include too), the servers several tests run, and the
//! sockets several tests bind.
#![allow(dead_code)]

mod server;

pub use server::*;

use std::collections::{HashSet, VecDeque};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;
use uring_rt::{ConnId, Ctx, Datagram, Handler, ListenerId, RtStats};

/// The datagram that stops a [`UdpEcho`].
pub const STOP: &[u8] = b"STOP";

/// What a [`UdpEcho`] counted.
#[derive(Default)]
pub struct EchoReport {
    /// Datagrams echoed.
    pub echoed: u64,
    /// Echoed datagrams that came with their destination address (pktinfo).
    pub dst_seen: u64,
    /// Look-aheads.
    pub batches: u64,
    /// Datagrams they showed.
    pub looked_ahead: u64,
    /// `submit_batches` when the STOP arrived.
    pub submits: u64,
    /// `busy_turns` when the STOP arrived.
    pub busy_turns: u64,
}

/// Echoes every datagram, from the address it was sent to, until one reads
/// [`STOP`]; checks that every datagram a look-ahead shows is then handled,
/// in order, before the next look-ahead.
pub struct UdpEcho<S> {
    serving: Serving<S>,
    /// Payloads shown by the last look-ahead and not yet handled.
    pending: VecDeque<Vec<u8>>,
    pub report: EchoReport,
}

impl<S: Serve> UdpEcho<S> {
    /// An echo of the sockets of `serving`.
    pub fn new(serving: Serving<S>) -> UdpEcho<S> {
        UdpEcho {
            serving,
            pending: VecDeque::new(),
            report: EchoReport::default(),
        }
    }
}

impl<S: Serve> Handler for UdpEcho<S> {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.serving.start(ctx);
    }
    fn look_ahead<'a>(&mut self, batch: impl Iterator<Item = Datagram<'a>>) {
        assert!(
            self.pending.is_empty(),
            "a look-ahead before the previous batch was handled"
        );
        self.pending.extend(batch.map(|d| d.payload.to_vec()));
        assert!(
            (2..=uring_rt::LOOK_AHEAD).contains(&self.pending.len()),
            "look-ahead of {} datagrams",
            self.pending.len()
        );
        self.report.batches += 1;
        self.report.looked_ahead += self.pending.len() as u64;
    }
    fn on_datagram(&mut self, ctx: &mut Ctx<()>, d: Datagram<'_>) {
        if let Some(front) = self.pending.pop_front() {
            assert_eq!(front, d.payload, "handled out of look-ahead order");
        }
        if d.payload == STOP {
            self.report.submits = ctx.stats().submit_batches;
            self.report.busy_turns = ctx.stats().busy_turns;
            ctx.stop();
            return;
        }
        self.report.echoed += 1;
        if d.dst.is_some() {
            self.report.dst_seen += 1;
        }
        let p = d.payload;
        ctx.send_to(d.socket, d.src, d.dst, |buf| {
            buf[..p.len()].copy_from_slice(p);
            p.len()
        })
        .unwrap();
    }
}

/// Echoes every byte on every connection and keeps count; stops once
/// `stop_after` connections closed (or the watchdog fired). With `idle`,
/// each connection gets that deadline at accept, pushed back by every
/// receive, and is closed when it passes.
pub struct TcpEcho {
    pub server: Watched<TcpListener>,
    pub idle: Option<Duration>,
    pub stop_after: usize,
    /// Connections accepted and not yet closed.
    pub open: HashSet<ConnId>,
    /// The peer address of every accepted connection.
    pub peers: HashSet<SocketAddr>,
    pub accepted: usize,
    pub closed: usize,
    pub bytes: usize,
    /// Sends refused (the outbound bound).
    pub send_refused: usize,
    /// Connections closed at their idle deadline.
    pub deadlines: usize,
}

impl TcpEcho {
    /// An echo of `server`, stopping after `stop_after` closes.
    pub fn new(server: Watched<TcpListener>, stop_after: usize, idle: Option<Duration>) -> TcpEcho {
        TcpEcho {
            server,
            idle,
            stop_after,
            open: HashSet::new(),
            peers: HashSet::new(),
            accepted: 0,
            closed: 0,
            bytes: 0,
            send_refused: 0,
            deadlines: 0,
        }
    }

    /// Set (or push back) `conn`'s idle deadline, if there is one.
    fn push_back(&self, ctx: &mut Ctx<()>, conn: ConnId) {
        if self.idle.is_some() {
            assert!(ctx.set_deadline(conn, self.idle));
        }
    }
}

impl Handler for TcpEcho {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.server.start(ctx);
    }
    fn on_accept(&mut self, ctx: &mut Ctx<()>, _: ListenerId, conn: ConnId, peer: SocketAddr) {
        assert!(self.peers.insert(peer), "peer address {peer} twice");
        assert!(self.open.insert(conn), "ConnId reused while open");
        self.accepted += 1;
        self.push_back(ctx, conn);
    }
    fn on_recv(&mut self, ctx: &mut Ctx<()>, conn: ConnId, data: &mut [u8]) -> usize {
        assert!(self.open.contains(&conn));
        self.bytes += data.len();
        self.push_back(ctx, conn);
        if ctx.send(conn, data).is_err() {
            self.send_refused += 1;
        }
        data.len()
    }
    fn on_deadline(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        self.deadlines += 1;
        ctx.close(conn);
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        assert!(self.open.remove(&conn), "on_closed for unknown conn");
        assert!(
            !ctx.set_deadline(conn, Some(Duration::from_secs(1))),
            "a closed id takes no deadline"
        );
        self.closed += 1;
        if self.closed == self.stop_after {
            ctx.stop();
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, token: u64) {
        self.server.fired(ctx, token);
    }
}

/// Answers every connection with `greeting` as soon as it is accepted, then
/// closes it; stops once `stop_after` connections closed, keeping the
/// worker's counters of that moment.
pub struct Greeter {
    pub serving: Serving<TcpListener>,
    pub greeting: Vec<u8>,
    pub stop_after: usize,
    pub accepted: usize,
    pub closed: usize,
    /// The worker's counters when it stopped.
    pub stats: RtStats,
}

impl Greeter {
    /// Answers with `greeting` on `serving`, stopping after `stop_after` closes.
    pub fn new(serving: Serving<TcpListener>, greeting: Vec<u8>, stop_after: usize) -> Greeter {
        Greeter {
            serving,
            greeting,
            stop_after,
            accepted: 0,
            closed: 0,
            stats: RtStats::default(),
        }
    }
}

impl Handler for Greeter {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.serving.start(ctx);
    }
    fn on_accept(&mut self, ctx: &mut Ctx<()>, _: ListenerId, conn: ConnId, _: SocketAddr) {
        self.accepted += 1;
        ctx.send(conn, &self.greeting).unwrap();
        ctx.close(conn);
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, _: ConnId) {
        self.closed += 1;
        if self.closed == self.stop_after {
            self.stats = ctx.stats().clone();
            ctx.stop();
        }
    }
}

/// A UDP socket on `addr` with `SO_REUSEPORT` (IPv6-only on an IPv6
/// address), so that more sockets can join its group; port 0 picks a port
/// no other group holds.
pub fn reuseport_udp(addr: SocketAddr) -> UdpSocket {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )
    .unwrap();
    if addr.is_ipv6() {
        s.set_only_v6(true).unwrap();
    }
    s.set_reuse_port(true).unwrap();
    let addr = uring_rt::socket::reuseport_addr(addr).unwrap();
    s.bind(&addr.into()).unwrap();
    s.into()
}
