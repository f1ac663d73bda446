//! The stream path on the real kernel: carry buffers, pause/resume, the
//! outbound bound, graceful close, half-close, abort, listeners told apart,
//! stale ids. Each test runs one worker with a line protocol ("...\n" in,
//! an answer per line out) or a variant of it, and a watchdog that stops a
//! test that would hang.

mod common;

use common::Watched;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;
use uring_rt::{ConnId, Ctx, Handler, ListenerId, RuntimeConfig, SendError};

const WATCHDOG: Duration = Duration::from_secs(20);

/// What every test server shares: its listeners, the address channel and
/// the watchdog.
type Base = Watched<TcpListener>;

/// Start `h` (built around a `Base` with `n` listeners) on one worker;
/// `None` (after saying why) when the TCP path cannot run here.
fn serve<H: Handler<Msg = ()>>(
    n: usize,
    cfg: RuntimeConfig,
    make: impl FnOnce(Base) -> H,
) -> Option<(Vec<SocketAddr>, JoinHandle<H>)> {
    if common::skip_tcp() {
        return None;
    }
    let listeners = (0..n).map(|_| common::tcp_listener()).collect();
    Some(common::serve(cfg, listeners, |s| {
        make(Watched::new(s, WATCHDOG))
    }))
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = common::connect(addr, WATCHDOG);
    s.set_nodelay(true).unwrap();
    s
}

/// Read exactly `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).unwrap();
    v
}

/// Whole lines at the front of `data`: `(line ranges' total length, lines)`.
fn lines(data: &[u8]) -> (usize, Vec<Vec<u8>>) {
    let mut used = 0;
    let mut out = Vec::new();
    while let Some(p) = data[used..].iter().position(|&b| b == b'\n') {
        out.push(data[used..used + p].to_vec());
        used += p + 1;
    }
    (used, out)
}

/// Answers each whole line with "<len>:<first byte>\n"; a line "close"
/// closes after answering, "abort" aborts. Counts what it saw.
struct Lines {
    base: Base,
    /// Pause after each line and resume on the next timer tick.
    pause_each: bool,
    paused: Option<ConnId>,
    /// Answer only after the peer's EOF (half-close), from a timer.
    answer_late: bool,
    late: Vec<(ConnId, Vec<u8>)>,
    /// Stop once this many connections closed.
    stop_after: usize,
    closed: usize,
    answered: usize,
    max_seen: usize,
    listeners_seen: Vec<usize>,
    first: Option<ConnId>,
    stale_refused: bool,
}

impl Lines {
    fn new(base: Base, stop_after: usize) -> Lines {
        Lines {
            base,
            pause_each: false,
            paused: None,
            answer_late: false,
            late: Vec::new(),
            stop_after,
            closed: 0,
            answered: 0,
            max_seen: 0,
            listeners_seen: Vec::new(),
            first: None,
            stale_refused: false,
        }
    }

    fn answer(ctx: &mut Ctx<()>, conn: ConnId, line: &[u8]) {
        let msg = format!("{}:{}\n", line.len(), line.first().copied().unwrap_or(b'-'));
        ctx.send(conn, msg.as_bytes()).unwrap();
    }
}

impl Handler for Lines {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.base.start(ctx);
        if self.pause_each {
            ctx.add_timer(Duration::from_millis(2), 1);
        }
        if self.answer_late {
            ctx.add_timer(Duration::from_millis(50), 2);
        }
    }
    fn on_accept(&mut self, ctx: &mut Ctx<()>, l: ListenerId, conn: ConnId, _: SocketAddr) {
        self.listeners_seen.push(l.index());
        ctx.send(conn, format!("listener {}\n", l.index()).as_bytes())
            .unwrap();
        match self.first {
            None => self.first = Some(conn),
            Some(old) if old.index() == conn.index() && old != conn => {
                // The slot was reused: the old id must reach nothing.
                self.stale_refused = ctx.send(old, b"x") == Err(SendError::Closed)
                    && ctx.send_space(old) == 0
                    && !ctx.set_deadline(old, Some(WATCHDOG))
                    && !ctx.pause_recv(old);
                ctx.close(old);
                ctx.abort(old);
            }
            Some(_) => {}
        }
    }
    fn on_recv(&mut self, ctx: &mut Ctx<()>, conn: ConnId, data: &mut [u8]) -> usize {
        self.max_seen = self.max_seen.max(data.len());
        let mut used = 0;
        let (_, all) = lines(data);
        for line in all {
            used += line.len() + 1;
            self.answered += 1;
            if self.answer_late {
                self.late.push((conn, line));
                continue;
            }
            Lines::answer(ctx, conn, &line);
            match &line[..] {
                b"close" => {
                    ctx.close(conn);
                    return used;
                }
                b"abort" => {
                    ctx.abort(conn);
                    return used;
                }
                _ => {}
            }
            if self.pause_each {
                assert!(ctx.pause_recv(conn));
                self.paused = Some(conn);
                return used;
            }
        }
        used
    }
    fn on_peer_closed(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        if !self.answer_late {
            ctx.close(conn);
        }
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, _: ConnId) {
        self.closed += 1;
        if self.closed == self.stop_after {
            ctx.stop();
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, token: u64) {
        if self.base.fired(ctx, token) {
            return;
        }
        match token {
            1 => {
                if let Some(c) = self.paused.take() {
                    ctx.resume_recv(c);
                }
            }
            _ => {
                for (conn, line) in std::mem::take(&mut self.late) {
                    Lines::answer(ctx, conn, &line);
                    ctx.close(conn);
                }
            }
        }
    }
}

/// A `Lines` server on one listener, stopping once its one connection
/// closed (`lines` adjusts it), and that connection, greeted.
fn greeted(
    cfg: RuntimeConfig,
    lines: impl FnOnce(Lines) -> Lines,
) -> Option<(TcpStream, JoinHandle<Lines>)> {
    let (addrs, t) = serve(1, cfg, |b| lines(Lines::new(b, 1)))?;
    let mut s = client(addrs[0]);
    assert_eq!(read_n(&mut s, 11), b"listener 0\n");
    Some((s, t))
}

/// Close `s`, wait for the server to stop by itself, and return it.
fn finish(s: TcpStream, t: JoinHandle<Lines>) -> Lines {
    drop(s);
    let h = t.join().unwrap();
    assert!(!h.base.watchdog_fired, "the watchdog stopped the server");
    h
}

fn small() -> RuntimeConfig {
    let mut cfg = common::small(1);
    cfg.tcp_recv_buffer_size = 512;
    cfg.max_inbound_bytes = 64 * 1024;
    cfg
}

#[test]
fn a_request_split_over_many_small_writes_arrives_whole() {
    let Some((mut s, t)) = greeted(small(), |l| l) else {
        return;
    };
    let line = vec![b'a'; 300];
    for b in line.iter().chain(b"\n") {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(read_n(&mut s, 6), b"300:97");
    let h = finish(s, t);
    assert_eq!(h.answered, 1);
}

#[test]
fn a_16_kib_record_over_small_receive_buffers_arrives_whole() {
    let Some((mut s, t)) = greeted(small(), |l| l) else {
        return;
    };
    let mut record = vec![b'r'; 16 * 1024];
    record.push(b'\n');
    // Two lines in one write after it: the carry holds the rest of a read.
    record.extend_from_slice(b"xy\nz");
    s.write_all(&record).unwrap();
    s.write_all(b"\n").unwrap();
    let want = b"16384:114\n2:120\n1:122\n";
    assert_eq!(read_n(&mut s, want.len()), want);
    let h = finish(s, t);
    assert!(h.max_seen > 16 * 1024, "the record was not seen whole");
}

/// 200 pipelined lines in one write to a server that pauses after each
/// line and resumes on its next timer tick; with `half_close` the client
/// shuts its write side right after. Every answer must come, in order.
fn pipelined_across_pause_and_resume(half_close: bool) {
    let Some((mut s, t)) = greeted(small(), |l| Lines {
        pause_each: true,
        ..l
    }) else {
        return;
    };
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..200u8 {
        let c = b'a' + i % 26;
        let len = 1 + usize::from(i) * 3;
        batch.extend(std::iter::repeat_n(c, len));
        batch.push(b'\n');
        want.extend_from_slice(format!("{len}:{c}\n").as_bytes());
    }
    s.write_all(&batch).unwrap();
    if half_close {
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got == want, "kept requests were dropped at EOF");
    } else {
        assert_eq!(read_n(&mut s, want.len()), want);
    }
    let h = finish(s, t);
    assert_eq!(h.answered, 200);
}

#[test]
fn pipelined_requests_are_answered_in_order_across_pause_and_resume() {
    pipelined_across_pause_and_resume(false);
}

#[test]
fn eof_while_paused_waits_until_the_kept_requests_are_answered() {
    pipelined_across_pause_and_resume(true);
}

#[test]
fn a_graceful_close_with_unread_pipelined_bytes_still_delivers_the_response() {
    let Some((mut s, t)) = greeted(small(), |l| l) else {
        return;
    };
    // "close" and, behind it, bytes the server will never read as requests.
    let mut req = b"close\n".to_vec();
    req.extend(std::iter::repeat_n(b'j', 200_000));
    s.write_all(&req).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Everything up to EOF, and no RST: the server drained our junk.
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("the response was turned into an RST");
    assert_eq!(got, b"5:99\n");
    finish(s, t);
}

#[test]
fn a_half_closed_client_still_gets_a_late_answer() {
    let Some((mut s, t)) = greeted(small(), |l| Lines {
        answer_late: true,
        ..l
    }) else {
        return;
    };
    s.write_all(b"late\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"4:108\n");
    finish(s, t);
}

#[test]
fn abort_resets_the_connection() {
    let Some((mut s, t)) = greeted(small(), |l| l) else {
        return;
    };
    s.write_all(b"abort\n").unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    let err = loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("a plain FIN, not an RST"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    finish(s, t);
}

#[test]
fn two_listeners_are_told_apart_and_a_stale_id_reaches_nothing() {
    let Some((addrs, server)) = serve(2, small(), |base| Lines::new(base, 3)) else {
        return;
    };
    let mut first = client(addrs[0]);
    assert_eq!(read_n(&mut first, 11), b"listener 0\n");
    first.write_all(b"close\n").unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).unwrap();
    drop(first);
    // The same slot, a new generation.
    std::thread::sleep(Duration::from_millis(50));
    let mut second = client(addrs[1]);
    assert_eq!(read_n(&mut second, 11), b"listener 1\n");
    let mut third = client(addrs[0]);
    assert_eq!(read_n(&mut third, 11), b"listener 0\n");
    second.write_all(b"still-open\n").unwrap();
    assert_eq!(
        read_n(&mut second, 7),
        b"10:115\n",
        "the stale close reached it"
    );
    drop((second, third));
    let h = server.join().unwrap();
    assert_eq!(h.listeners_seen, vec![0, 1, 0]);
    assert!(h.stale_refused, "a stale ConnId was accepted");
}

/// Sends 64 KiB on every accept until refused; on `on_writable` sends the
/// rest. The client reads only after the first refusal.
struct Flood {
    base: Base,
    refused_at: Option<usize>,
    queued: usize,
    writable_calls: usize,
    total: usize,
}

impl Flood {
    fn pump(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        while self.queued < self.total {
            let n = (self.total - self.queued).min(4096);
            match ctx.send_with(conn, n, |room| {
                room[..n].fill(b'f');
                n
            }) {
                Ok(k) => self.queued += k,
                Err(SendError::QueueFull) => {
                    self.refused_at.get_or_insert(self.queued);
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
        ctx.close(conn);
    }
}

impl Handler for Flood {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.base.start(ctx);
    }
    fn on_accept(&mut self, ctx: &mut Ctx<()>, _: ListenerId, conn: ConnId, _: SocketAddr) {
        self.pump(ctx, conn);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        self.writable_calls += 1;
        self.pump(ctx, conn);
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, _: ConnId) {
        ctx.stop();
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, token: u64) {
        self.base.fired(ctx, token);
    }
}

#[test]
fn a_slow_reader_hits_the_outbound_bound_and_the_handler_is_told_when_it_drains() {
    let mut cfg = small();
    cfg.max_outbound_bytes = 64 * 1024;
    let total = 4 << 20;
    let Some((addrs, t)) = serve(1, cfg, |base| Flood {
        base,
        refused_at: None,
        queued: 0,
        writable_calls: 0,
        total,
    }) else {
        return;
    };
    let mut s = client(addrs[0]);
    std::thread::sleep(Duration::from_millis(200));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), total);
    assert!(got.iter().all(|&b| b == b'f'));
    let h = t.join().unwrap();
    assert!(!h.base.watchdog_fired);
    assert_eq!(
        h.refused_at,
        Some(64 * 1024),
        "the bound is max_outbound_bytes"
    );
    assert!(h.writable_calls > 0, "on_writable never came");
}

#[test]
fn at_max_connections_accepting_pauses_and_resumes_as_slots_free() {
    let mut cfg = small();
    cfg.max_connections = 4;
    let Some((addrs, t)) = serve(1, cfg, |b| Lines::new(b, 6)) else {
        return;
    };
    let mut clients: Vec<TcpStream> = (0..6).map(|_| client(addrs[0])).collect();
    for c in &mut clients[..4] {
        assert_eq!(read_n(c, 11), b"listener 0\n");
    }
    // The other two wait (in the kernel's backlog, or accepted and parked),
    // neither greeted nor closed.
    for c in &mut clients[4..] {
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 1];
        let e = c.read(&mut b).expect_err("served beyond max_connections");
        assert!(matches!(
            e.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        c.set_read_timeout(Some(WATCHDOG)).unwrap();
    }
    // Each close lets one more in.
    for i in 0..2 {
        clients[i].write_all(b"close\n").unwrap();
        let mut rest = Vec::new();
        clients[i].read_to_end(&mut rest).unwrap();
        assert_eq!(read_n(&mut clients[4 + i], 11), b"listener 0\n");
    }
    drop(clients);
    let h = t.join().unwrap();
    assert!(!h.base.watchdog_fired);
    assert_eq!(h.listeners_seen.len(), 6);
}

#[test]
fn messages_under_the_inbound_bound_pass_even_when_a_receive_straddles_two() {
    let mut cfg = small();
    cfg.max_inbound_bytes = 1024;
    let Some((mut s, t)) = greeted(cfg, |l| l) else {
        return;
    };
    // Ten 1000-byte lines in one write, over 512-byte receives: the carry
    // holds most of one line when the next receive brings its end and the
    // start of the next.
    let mut batch = Vec::new();
    for _ in 0..10 {
        batch.extend(std::iter::repeat_n(b'q', 999));
        batch.push(b'\n');
    }
    s.write_all(&batch).unwrap();
    let want = "999:113\n".repeat(10);
    assert_eq!(String::from_utf8_lossy(&read_n(&mut s, want.len())), want);
    finish(s, t);
}
