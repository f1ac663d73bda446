//! Per-connection deadlines over real TCP connections: an idle connection is
//! closed at its deadline, one that keeps talking (and so keeps pushing its
//! deadline back) stays open, and a close that cannot finish because the
//! peer does not read is aborted at its deadline.

mod common;

use common::{TcpEcho, Watched};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use uring_rt::{ConnId, Ctx, Handler, ListenerId};

const IDLE: Duration = Duration::from_millis(600);

/// Stops the runtime if a test would otherwise hang.
const WATCHDOG: Duration = Duration::from_secs(10);

/// Read until the server closes; returns how long that took from `since`.
fn wait_for_close(s: &mut TcpStream, since: Instant) -> Duration {
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return since.elapsed(),
            Err(e) => panic!("waiting for the server to close: {e}"),
        }
    }
}

#[test]
fn idle_connections_close_at_their_deadline_and_busy_ones_stay_open() {
    if common::skip_tcp() {
        return;
    }
    // Echoes; every connection gets an idle deadline at accept, pushed back
    // on every receive.
    let (addrs, t) = common::serve(common::small(1), vec![common::tcp_listener()], |s| {
        TcpEcho::new(Watched::new(s, WATCHDOG), 2, Some(IDLE))
    });
    let addr = addrs[0];

    let idle = std::thread::spawn(move || {
        let start = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        wait_for_close(&mut s, start)
    });
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.set_read_timeout(Some(WATCHDOG)).unwrap();
    // Talk for two idle periods, a message every 50 ms: each one pushes
    // the deadline back, and each is echoed.
    let busy_start = Instant::now();
    let mut last_write = busy_start;
    while busy_start.elapsed() < IDLE * 2 {
        last_write = Instant::now();
        busy.write_all(b"ping").unwrap();
        let mut echo = [0u8; 4];
        busy.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"ping");
        std::thread::sleep(Duration::from_millis(50));
    }
    let idle_after = idle.join().unwrap();
    let busy_after = wait_for_close(&mut busy, last_write);

    let h = t.join().unwrap();
    assert!(!h.server.watchdog_fired, "connections were not closed");
    assert_eq!((h.deadlines, h.closed), (2, 2));
    assert_eq!(h.send_refused, 0);
    for after in [idle_after, busy_after] {
        // Never early; late by less than two 100 ms ticks (plus slack for
        // a loaded test machine).
        assert!(after >= IDLE, "closed after {after:?}, before its deadline");
        assert!(
            after < IDLE + Duration::from_secs(1),
            "closed after {after:?}"
        );
    }
}

/// Sends more than the peer's buffers hold, closes, and bounds the close
/// with a deadline.
struct Linger {
    server: Watched<TcpListener>,
    on_deadline_calls: usize,
    closed_after: Option<Duration>,
    closing_since: Option<Instant>,
    expired: u64,
}

impl Handler for Linger {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.server.start(ctx);
    }
    fn on_accept(&mut self, ctx: &mut Ctx<()>, _: ListenerId, conn: ConnId, _: SocketAddr) {
        let chunk = vec![0x5a; 4096];
        while ctx.send(conn, &chunk).is_ok() {}
        ctx.close(conn);
        assert!(ctx.set_deadline(conn, Some(IDLE)));
        self.closing_since = Some(ctx.now());
    }
    fn on_deadline(&mut self, _: &mut Ctx<()>, _: ConnId) {
        self.on_deadline_calls += 1;
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, _: ConnId) {
        self.closed_after = self.closing_since.map(|t| t.elapsed());
        self.expired = ctx.stats().deadlines_expired;
        ctx.stop();
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, token: u64) {
        self.server.fired(ctx, token);
    }
}

#[test]
fn a_close_the_peer_does_not_read_is_aborted_at_its_deadline() {
    if common::skip_tcp() {
        return;
    }
    // Small kernel buffers on both ends, so the close cannot finish while
    // the peer does not read (accepted sockets inherit SO_SNDBUF).
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.set_send_buffer_size(4096).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(16).unwrap();
    let mut cfg = common::small(1);
    cfg.max_outbound_bytes = 1 << 20;
    let listener: TcpListener = listener.into();
    let (addrs, t) = common::serve(cfg, vec![listener], |s| Linger {
        server: Watched::new(s, WATCHDOG),
        on_deadline_calls: 0,
        closed_after: None,
        closing_since: None,
        expired: 0,
    });
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addrs[0].into()).unwrap();
    // Never read; keep the socket open until the server is done.
    let h = t.join().unwrap();
    drop(s);
    assert!(
        !h.server.watchdog_fired,
        "the lingering close was not aborted"
    );
    assert_eq!(
        h.on_deadline_calls, 0,
        "a closing connection is aborted, not handed over"
    );
    assert_eq!(h.expired, 1);
    let after = h.closed_after.unwrap();
    assert!(
        after >= IDLE,
        "aborted after {after:?}, before its deadline"
    );
}
