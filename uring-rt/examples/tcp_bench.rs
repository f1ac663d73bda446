//! HTTP-shaped TCP request/response: uring-rt's stream path against a
//! mio (edge-triggered epoll) loop, plus the load generators that drive them.
//!
//! ```text
//! tcp_bench server --impl uring|epoll --addr ADDR [--workers N] [--cores 1,..] [--secs S]
//! tcp_bench load   --addr ADDR [--conns N] [--mode keepalive|close] [--secs S] [--pipeline P]
//! tcp_bench idle   --addr ADDR [--conns N] [--hold S]
//! tcp_bench spin   [--secs S]
//! ```
//! A request is a ~245-byte `GET /announce?... HTTP/1.1` ending in an empty
//! line; the answer a fixed 122-byte `200 OK` with a bencoded body. Both
//! servers answer pipelined requests in order, carry partial ones, close
//! gracefully after a request with `Connection: close` (answer, FIN, read
//! and discard until the peer's EOF or 2 s) and on the peer's EOF, stop
//! reading while 256 KiB of answers wait to be sent, and drop a
//! connection whose request head passes 8 KiB or is not a `GET`.
//!
//! - `uring`: one `Handler`; `on_recv` answers every whole request in the
//!   bytes it is given, each written in place (`Ctx::send_with`), and
//!   leaves the rest to the runtime's carry. Per-connection state: none.
//! - `epoll`: one thread per worker, the way mio/tokio servers run a
//!   socket: edge-triggered registration, a per-connection read buffer
//!   (4 KiB, grows to 8 KiB) and write buffer, read until `WouldBlock` (or
//!   a short read, tokio's shortcut), write, register WRITABLE only when a
//!   write would block.
//!
//! `load` keeps `--conns` connections busy from one mio thread and prints
//! `responses/s=`; `keepalive` sends the next request(s) as soon as
//! answers arrive (`--pipeline` in flight per connection), `close` opens a
//! new connection per request (`Connection: close`, read until the
//! server's FIN, then close, so the server holds the TIME_WAIT). Every
//! response byte is checked. `idle` opens `--conns` connections (at most
//! 256 at a time), makes one request on each, prints `idle ready` and
//! holds them for `--hold` seconds. `spin` is a busy loop (a competitor
//! for the servers' core). `scripts/bench-tcp` runs them side by side.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};
use uring_rt::socket::{reuseport_listeners, ListenOptions};
use uring_rt::{ConnId, Ctx, Handler, RuntimeConfig};

// ---------------------------------------------------------------------------
// Protocol (no I/O), shared by both servers and the load generators.

/// The request the load generators send (keep-alive).
const REQUEST: &[u8] = b"GET /announce?info_hash=%12%34%56%78%9A%BC%DE%F0%12%34%56%78%9A%BC%DE%F0%12%34%56%78&peer_id=-RT0001-123456789012&port=6881&uploaded=0&downloaded=0&left=0&compact=1&event=started HTTP/1.1\r\nHost: tracker.example\r\nUser-Agent: riptide-bench/0.1\r\n\r\n";
/// The same request asking the server to close afterwards.
const REQUEST_CLOSE: &[u8] = b"GET /announce?info_hash=%12%34%56%78%9A%BC%DE%F0%12%34%56%78%9A%BC%DE%F0%12%34%56%78&peer_id=-RT0001-123456789012&port=6881&uploaded=0&downloaded=0&left=0&compact=1&event=started HTTP/1.1\r\nHost: tracker.example\r\nUser-Agent: riptide-bench/0.1\r\nConnection: close\r\n\r\n";
/// Every answer: 39 bytes of head, 83 of bencoded body.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 83\r\n\r\nd8:completei12e10:incompletei3e8:intervali1800e12:min intervali900e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";
/// Longest request head; a longer one is refused.
const MAX_HEAD_BYTES: usize = 8192;
/// Most answer bytes queued on one connection before it stops reading
/// (uring-rt's default `max_outbound_bytes`).
const MAX_OUTBOUND_BYTES: usize = 256 * 1024;
/// How long a graceful close waits for the peer's EOF (uring-rt's default `tcp_linger`).
const LINGER: Duration = Duration::from_secs(2);

/// What the front of a connection's bytes holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parsed {
    /// A whole request of `len` bytes; `close`: it carried `Connection: close`.
    Request { len: usize, close: bool },
    /// Not a whole request yet.
    Partial,
    /// Not a GET, or a head longer than [`MAX_HEAD_BYTES`].
    Invalid,
}

/// First `b` in `hay[from..]`, eight bytes at a time.
fn find_byte(hay: &[u8], from: usize, b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * u64::from(b);
    let mut i = from;
    while i + 8 <= hay.len() {
        let w = u64::from_le_bytes(hay[i..i + 8].try_into().unwrap()) ^ pat;
        // The lowest flagged byte is exact (borrows only run upwards).
        let t = w.wrapping_sub(LO) & !w & HI;
        if t != 0 {
            return Some(i + (t.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..].iter().position(|&c| c == b).map(|p| i + p)
}

/// The request at the front of `buf`: up to and including its empty line.
fn parse_request(buf: &[u8]) -> Parsed {
    let mut close = false;
    let mut start = 0;
    loop {
        let Some(nl) = find_byte(buf, start, b'\n') else {
            return if buf.len() > MAX_HEAD_BYTES {
                Parsed::Invalid
            } else {
                Parsed::Partial
            };
        };
        if nl >= MAX_HEAD_BYTES {
            return Parsed::Invalid;
        }
        let line = &buf[start..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if start == 0 {
            if !line.starts_with(b"GET ") {
                return Parsed::Invalid;
            }
        } else if line.is_empty() {
            return Parsed::Request { len: nl + 1, close };
        } else if line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"connection:") {
            close = line[11..].trim_ascii().eq_ignore_ascii_case(b"close");
        }
        start = nl + 1;
    }
}

/// Checks a stream of answers as it arrives, however it is split.
#[derive(Default)]
struct ResponseCheck {
    /// Bytes of the current answer already seen.
    at: usize,
    /// Bytes that differed from [`RESPONSE`].
    bad: u64,
}

impl ResponseCheck {
    /// Feed received bytes; returns how many answers they completed.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut done = 0;
        while !bytes.is_empty() {
            let n = (RESPONSE.len() - self.at).min(bytes.len());
            if bytes[..n] != RESPONSE[self.at..self.at + n] {
                self.bad += 1;
            }
            self.at += n;
            bytes = &bytes[n..];
            if self.at == RESPONSE.len() {
                self.at = 0;
                done += 1;
            }
        }
        done
    }
}

// ---------------------------------------------------------------------------
// Arguments.

/// `tcp_bench CMD [--option value]...`.
#[derive(Clone, clap::Parser)]
struct Args {
    /// `server`, `load`, `idle` or `spin`.
    cmd: String,
    /// `uring` or `epoll`.
    #[arg(long = "impl", default_value = "uring")]
    imp: String,
    #[arg(long, default_value = "127.0.0.1:18080")]
    addr: SocketAddr,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Cores to pin the workers to, `0,1`.
    #[arg(long, value_delimiter = ',')]
    cores: Option<Vec<usize>>,
    #[arg(long, default_value_t = 0)]
    secs: u64,
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// `keepalive` or `close`.
    #[arg(long, default_value = "keepalive")]
    mode: String,
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    #[arg(long, default_value_t = 10)]
    hold: u64,
}

// ---------------------------------------------------------------------------
// uring-rt server.

/// Counters of one server worker.
#[derive(Clone, Copy, Debug, Default)]
struct Served {
    responses: u64,
    invalid: u64,
    paused: u64,
}

struct UringHttp {
    listener: Option<std::net::TcpListener>,
    until: Option<Instant>,
    served: Served,
}

impl Handler for UringHttp {
    type Msg = ();

    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        let l = self.listener.take().expect("listener");
        ctx.add_listener(l).expect("add_listener");
        if self.until.is_some() {
            ctx.add_timer(Duration::from_millis(100), 0);
        }
    }
    fn on_recv(&mut self, ctx: &mut Ctx<()>, conn: ConnId, data: &mut [u8]) -> usize {
        let mut at = 0;
        loop {
            match parse_request(&data[at..]) {
                Parsed::Partial => return at,
                Parsed::Invalid => {
                    self.served.invalid += 1;
                    ctx.abort(conn);
                    return data.len();
                }
                Parsed::Request { len, close } => {
                    let sent = ctx.send_with(conn, RESPONSE.len(), |room| {
                        room[..RESPONSE.len()].copy_from_slice(RESPONSE);
                        RESPONSE.len()
                    });
                    match sent {
                        Ok(_) => self.served.responses += 1,
                        Err(uring_rt::SendError::QueueFull) => {
                            // The client does not read: stop reading it until
                            // `on_writable`; this request stays carried.
                            self.served.paused += 1;
                            ctx.pause_recv(conn);
                            return at;
                        }
                        Err(_) => return data.len(),
                    }
                    at += len;
                    if close {
                        ctx.close(conn);
                        return data.len();
                    }
                }
            }
        }
    }

    fn on_writable(&mut self, ctx: &mut Ctx<()>, conn: ConnId) {
        ctx.resume_recv(conn);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<()>, _: u64) {
        if self.until.is_some_and(|u| ctx.now() >= u) {
            ctx.stop_all();
        }
    }

    fn on_stop(&mut self, ctx: &mut Ctx<()>) {
        let s = ctx.stats();
        eprintln!(
            "uring worker {}: responses {} invalid {} paused {} accepts {} closed {} aborted {} carries {} \
             recv-exhausted {} grown {} rearms {} send-partial {} chunks-allocated {} submits {} sqes {} completions {}",
            ctx.worker(),
            self.served.responses,
            self.served.invalid,
            self.served.paused,
            s.accepts,
            s.conns_closed,
            s.conns_aborted,
            s.carries,
            s.recv_buffers_exhausted,
            s.recv_buffers_grown,
            s.rearms,
            s.send_partial,
            s.send_chunks_allocated,
            s.submit_batches,
            s.submitted_sqes,
            s.completions,
        );
    }
}

fn serve_uring(args: &Args, listeners: Vec<std::net::TcpListener>) -> Served {
    let until = (args.secs > 0).then(|| Instant::now() + Duration::from_secs(args.secs));
    let cfg = RuntimeConfig {
        workers: listeners.len(),
        cores: args.cores.clone(),
        // The descriptor limit here is 20,000 (`ulimit -Hn`).
        max_connections: 16384,
        ..RuntimeConfig::default()
    };
    let handlers = listeners
        .into_iter()
        .map(|l| UringHttp {
            listener: Some(l),
            until,
            served: Served::default(),
        })
        .collect();
    let hs = uring_rt::run(&cfg, handlers).expect("uring-rt");
    hs.iter().fold(Served::default(), |a, h| Served {
        responses: a.responses + h.served.responses,
        invalid: a.invalid + h.served.invalid,
        paused: a.paused + h.served.paused,
    })
}

// ---------------------------------------------------------------------------
// epoll (mio) server.

/// Where an epoll-served connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    /// Reading requests and answering them.
    Open,
    /// No more requests (`Connection: close` or the peer's EOF): send what
    /// is queued, then shut the write side.
    Draining,
    /// Write side shut: read and discard until EOF or the deadline.
    Lingering { until: Instant },
}

struct EpollConn {
    stream: TcpStream,
    /// Read buffer: `rbuf[..filled]` is received and not yet answered.
    rbuf: Vec<u8>,
    filled: usize,
    /// Write buffer: `wbuf[wpos..]` still to be written.
    wbuf: Vec<u8>,
    wpos: usize,
    state: ConnState,
    read_eof: bool,
    /// WRITABLE is part of the registration (a write would block).
    want_write: bool,
}

/// What the loop does with a connection after driving it.
enum Next {
    Keep,
    Drop,
}

const LISTENER: Token = Token(usize::MAX);
const READ_BUFFER: usize = 4096;

impl EpollConn {
    fn new(stream: TcpStream) -> EpollConn {
        EpollConn {
            stream,
            rbuf: vec![0; READ_BUFFER],
            filled: 0,
            wbuf: Vec::new(),
            wpos: 0,
            state: ConnState::Open,
            read_eof: false,
            want_write: false,
        }
    }

    fn pending(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Answer the whole requests in the read buffer, in order, while the
    /// write buffer has room; keep the rest.
    fn answer(&mut self, served: &mut Served) -> Next {
        let mut at = 0;
        while self.state == ConnState::Open && self.pending() < MAX_OUTBOUND_BYTES {
            match parse_request(&self.rbuf[at..self.filled]) {
                Parsed::Partial => break,
                Parsed::Invalid => {
                    served.invalid += 1;
                    return Next::Drop;
                }
                Parsed::Request { len, close } => {
                    self.wbuf.extend_from_slice(RESPONSE);
                    served.responses += 1;
                    at += len;
                    if close {
                        self.state = ConnState::Draining;
                        at = self.filled;
                    }
                }
            }
        }
        if at > 0 {
            self.rbuf.copy_within(at..self.filled, 0);
            self.filled -= at;
        }
        Next::Keep
    }

    /// Write what is queued; `Ok(true)` when all of it went out.
    fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(n) => {
                    self.wpos += n;
                    if self.wpos < self.wbuf.len() {
                        return Ok(false); // short write: the socket is full
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(true)
    }

    /// Everything a readiness event calls for: answer, write, shut down,
    /// read, until the socket has nothing more or back-pressure stops us.
    fn drive(
        &mut self,
        token: Token,
        poll: &Poll,
        served: &mut Served,
        lingering: &mut VecDeque<(usize, Instant)>,
    ) -> Next {
        let mut drained = false;
        loop {
            if let Next::Drop = self.answer(served) {
                return Next::Drop;
            }
            let Ok(flushed) = self.flush() else {
                return Next::Drop;
            };
            if flushed == self.want_write {
                self.want_write = !flushed;
                let interest = if flushed {
                    Interest::READABLE
                } else {
                    Interest::READABLE | Interest::WRITABLE
                };
                if poll
                    .registry()
                    .reregister(&mut self.stream, token, interest)
                    .is_err()
                {
                    return Next::Drop;
                }
            }
            if self.state == ConnState::Draining && flushed {
                if self.read_eof || self.stream.shutdown(Shutdown::Write).is_err() {
                    return Next::Drop;
                }
                let until = Instant::now() + LINGER;
                self.state = ConnState::Lingering { until };
                lingering.push_back((token.0, until));
            }
            if drained || self.read_eof {
                return Next::Keep;
            }
            if self.state == ConnState::Open && self.pending() >= MAX_OUTBOUND_BYTES {
                return Next::Keep; // read again once WRITABLE
            }
            if self.state != ConnState::Open {
                self.filled = 0; // discard
            } else if self.filled == self.rbuf.len() {
                if self.rbuf.len() >= 2 * MAX_HEAD_BYTES {
                    return Next::Drop;
                }
                self.rbuf.resize(2 * self.rbuf.len(), 0);
            }
            let room = self.rbuf.len() - self.filled;
            match self.stream.read(&mut self.rbuf[self.filled..]) {
                Ok(0) => {
                    self.read_eof = true;
                    match self.state {
                        ConnState::Open => self.state = ConnState::Draining,
                        ConnState::Draining => {}
                        ConnState::Lingering { .. } => return Next::Drop,
                    }
                }
                Ok(n) => {
                    self.filled += n;
                    // A short read emptied the socket: the next bytes bring a
                    // new edge (tokio's shortcut; saves the EAGAIN read).
                    drained = n < room;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Drop,
            }
        }
    }
}

fn serve_epoll(args: &Args, listener: std::net::TcpListener) -> Served {
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(1024);
    // Accepted sockets inherit TCP_NODELAY, as uring-rt's `add_listener`
    // sets it: neither server pays a setsockopt per connection.
    socket2::SockRef::from(&listener)
        .set_nodelay(true)
        .expect("TCP_NODELAY");
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register listener");
    let mut conns: Slab<EpollConn> = Slab::with_capacity(1024);
    let mut lingering: VecDeque<(usize, Instant)> = VecDeque::new();
    let mut served = Served::default();
    let until = (args.secs > 0).then(|| Instant::now() + Duration::from_secs(args.secs));
    loop {
        let timeout = if lingering.is_empty() { 1000 } else { 100 };
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(timeout))) {
            assert!(e.kind() == io::ErrorKind::Interrupted, "epoll_wait: {e}");
        }
        for ev in &events {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((stream, _peer)) => {
                            let entry = conns.vacant_entry();
                            let token = Token(entry.key());
                            let mut c = EpollConn::new(stream);
                            if poll
                                .registry()
                                .register(&mut c.stream, token, Interest::READABLE)
                                .is_err()
                            {
                                continue;
                            }
                            // With TCP_DEFER_ACCEPT the request is there already.
                            if let Next::Keep = c.drive(token, &poll, &mut served, &mut lingering) {
                                entry.insert(c);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            if let Next::Drop = c.drive(ev.token(), &poll, &mut served, &mut lingering) {
                conns.remove(key);
            }
        }
        if !lingering.is_empty() {
            let now = Instant::now();
            while let Some(&(key, at)) = lingering.front() {
                if at > now {
                    break;
                }
                lingering.pop_front();
                let expired = conns
                    .get(key)
                    .is_some_and(|c| c.state == ConnState::Lingering { until: at });
                if expired {
                    conns.remove(key);
                }
            }
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            eprintln!(
                "epoll: responses {} invalid {} open {}",
                served.responses,
                served.invalid,
                conns.len()
            );
            return served;
        }
    }
}

fn pin_to(core: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set)
    };
    assert_eq!(r, 0, "pin to core {core}: {}", io::Error::last_os_error());
}

fn server(args: &Args) {
    let listeners =
        reuseport_listeners(args.addr, args.workers, ListenOptions::default()).expect("listen");
    println!(
        "listening on {} ({} x {})",
        listeners[0].local_addr().unwrap(),
        args.workers,
        args.imp
    );
    let served = match args.imp.as_str() {
        "uring" => serve_uring(args, listeners),
        "epoll" => {
            let threads: Vec<_> = listeners
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    let a = args.clone();
                    std::thread::spawn(move || {
                        if let Some(cores) = a.cores.as_ref().filter(|c| !c.is_empty()) {
                            pin_to(cores[i % cores.len()]);
                        }
                        serve_epoll(&a, l)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .fold(Served::default(), |a, s| Served {
                    responses: a.responses + s.responses,
                    invalid: a.invalid + s.invalid,
                    paused: a.paused + s.paused,
                })
        }
        other => panic!("unknown --impl {other} (uring | epoll)"),
    };
    println!(
        "responses={} invalid={} paused={}",
        served.responses, served.invalid, served.paused
    );
}

// ---------------------------------------------------------------------------
// Load generators.

/// A keep-alive client connection.
struct KeepAlive {
    stream: TcpStream,
    check: ResponseCheck,
    /// Request bytes still to write (the request stream is `REQUEST`
    /// repeated, so only a count and the offset into it are kept).
    unsent: usize,
    off: usize,
}

impl KeepAlive {
    /// Write `unsent` bytes of the request stream from `reqs` (REQUEST
    /// repeated). `false` on an error.
    fn write(&mut self, reqs: &[u8]) -> bool {
        while self.unsent > 0 {
            let start = self.off % REQUEST.len();
            let n = self.unsent.min(reqs.len() - start);
            match self.stream.write(&reqs[start..start + n]) {
                Ok(w) => {
                    self.unsent -= w;
                    self.off = (self.off + w) % REQUEST.len();
                    if w < n {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

fn connect_blocking(addr: SocketAddr) -> TcpStream {
    let s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_nodelay(true).unwrap();
    s.set_nonblocking(true).unwrap();
    TcpStream::from_std(s)
}

fn load_keepalive(args: &Args) -> (u64, u64) {
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(1024);
    let depth = args.pipeline.max(1);
    let reqs = REQUEST.repeat(depth + 1);
    let mut conns: Vec<KeepAlive> = (0..args.conns)
        .map(|i| {
            let mut stream = connect_blocking(args.addr);
            poll.registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .unwrap();
            KeepAlive {
                stream,
                check: ResponseCheck::default(),
                unsent: depth * REQUEST.len(),
                off: 0,
            }
        })
        .collect();
    for c in &mut conns {
        assert!(c.write(&reqs), "first request");
    }
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let end = start + Duration::from_secs(args.secs);
    let mut responses = 0u64;
    let mut broken = 0u64;
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("epoll_wait");
        for ev in &events {
            let c = &mut conns[ev.token().0];
            let mut done = 0;
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        broken += 1;
                        break;
                    }
                    Ok(n) => {
                        done += c.check.feed(&buf[..n]);
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        broken += 1;
                        break;
                    }
                }
            }
            responses += done;
            c.unsent += done as usize * REQUEST.len();
            if !c.write(&reqs) {
                broken += 1;
            }
        }
    }
    let bad = conns.iter().map(|c| c.check.bad).sum::<u64>() + broken;
    (responses, bad)
}

/// One connection of the new-connection-per-request load.
struct OneShot {
    stream: TcpStream,
    written: usize,
    check: ResponseCheck,
    got: usize,
}

fn open_oneshot(addr: SocketAddr, poll: &Poll, token: Token) -> io::Result<OneShot> {
    let mut stream = TcpStream::connect(addr)?;
    poll.registry()
        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
    let mut c = OneShot {
        stream,
        written: 0,
        check: ResponseCheck::default(),
        got: 0,
    };
    // Loopback often completes the handshake inside connect(): try now.
    c.try_write()?;
    Ok(c)
}

impl OneShot {
    fn try_write(&mut self) -> io::Result<()> {
        while self.written < REQUEST_CLOSE.len() {
            match self.stream.write(&REQUEST_CLOSE[self.written..]) {
                Ok(n) => self.written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                    ) =>
                {
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Read what is there: `Ok(true)` at the server's EOF.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    self.got += n;
                    self.check.feed(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn load_close(args: &Args) -> (u64, u64) {
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<OneShot> = Slab::with_capacity(args.conns);
    let mut buf = vec![0u8; 4096];
    let (mut responses, mut bad) = (0u64, 0u64);
    let open = |conns: &mut Slab<OneShot>, poll: &Poll, bad: &mut u64| {
        let entry = conns.vacant_entry();
        match open_oneshot(args.addr, poll, Token(entry.key())) {
            Ok(c) => {
                entry.insert(c);
            }
            Err(_) => *bad += 1,
        }
    };
    for _ in 0..args.conns {
        open(&mut conns, &poll, &mut bad);
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(args.secs);
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("epoll_wait");
        for ev in &events {
            let key = ev.token().0;
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            let finished = c.try_write().and_then(|()| c.try_read(&mut buf));
            match finished {
                Ok(false) => continue,
                Ok(true) if c.got == RESPONSE.len() && c.check.bad == 0 => responses += 1,
                _ => bad += 1,
            }
            conns.remove(key);
            open(&mut conns, &poll, &mut bad);
        }
        if conns.len() < args.conns {
            // Connects refused earlier (e.g. out of ports): try again.
            open(&mut conns, &poll, &mut bad);
        }
    }
    (responses, bad)
}

fn load(args: &Args) {
    let (responses, bad) = match args.mode.as_str() {
        "keepalive" => load_keepalive(args),
        "close" => load_close(args),
        m => panic!("unknown --mode {m} (keepalive | close)"),
    };
    println!(
        "mode={} conns={} pipeline={} responses={responses} errors={bad} responses/s={:.0}",
        args.mode,
        args.conns,
        args.pipeline,
        responses as f64 / args.secs as f64
    );
}

/// Open `--conns` connections, one request each, then hold them.
fn idle(args: &Args) {
    const WINDOW: usize = 256;
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(1024);
    let mut held: Vec<KeepAlive> = Vec::with_capacity(args.conns);
    let mut buf = vec![0u8; 4096];
    let mut bad = 0u64;
    while held.len() < args.conns {
        let batch = WINDOW.min(args.conns - held.len());
        let first = held.len();
        for i in 0..batch {
            let mut stream = connect_blocking(args.addr);
            poll.registry()
                .register(&mut stream, Token(first + i), Interest::READABLE)
                .unwrap();
            let mut c = KeepAlive {
                stream,
                check: ResponseCheck::default(),
                unsent: REQUEST.len(),
                off: 0,
            };
            assert!(c.write(REQUEST), "request");
            held.push(c);
        }
        let mut waiting = batch;
        let deadline = Instant::now() + Duration::from_secs(10);
        while waiting > 0 && Instant::now() < deadline {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .expect("epoll_wait");
            for ev in &events {
                let c = &mut held[ev.token().0];
                while let Ok(n) = c.stream.read(&mut buf) {
                    if n == 0 {
                        bad += 1;
                        break;
                    }
                    waiting -= c.check.feed(&buf[..n]) as usize;
                }
            }
        }
        bad += waiting as u64;
    }
    println!("idle ready conns={} errors={bad}", held.len());
    std::thread::sleep(Duration::from_secs(args.hold));
}

fn main() {
    debug_assert_eq!(
        parse_request(REQUEST_CLOSE),
        Parsed::Request {
            len: REQUEST_CLOSE.len(),
            close: true
        }
    );
    let args = <Args as clap::Parser>::parse();
    match args.cmd.as_str() {
        "server" => server(&args),
        "load" => load(&args),
        "idle" => idle(&args),
        "spin" => {
            let end = Instant::now() + Duration::from_secs(args.secs.max(1));
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        }
        c => panic!("unknown command {c:?} (server | load | idle | spin)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_whole_split_and_pipelined() {
        assert_eq!(
            parse_request(REQUEST),
            Parsed::Request {
                len: REQUEST.len(),
                close: false
            }
        );
        for cut in 0..REQUEST.len() {
            assert_eq!(parse_request(&REQUEST[..cut]), Parsed::Partial, "cut {cut}");
        }
        let two = [REQUEST_CLOSE, REQUEST].concat();
        assert_eq!(
            parse_request(&two),
            Parsed::Request {
                len: REQUEST_CLOSE.len(),
                close: true
            }
        );
        assert_eq!(parse_request(b"POST / HTTP/1.1\r\n\r\n"), Parsed::Invalid);
        assert_eq!(parse_request(&[b'G'; 9000]), Parsed::Invalid);
    }

    #[test]
    fn the_response_is_whole_and_checked_however_split() {
        let head_end = RESPONSE.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(std::str::from_utf8(&RESPONSE[..head_end])
            .unwrap()
            .contains(&format!("Content-Length: {}", RESPONSE.len() - head_end)));
        let stream = RESPONSE.repeat(3);
        for cut in 0..stream.len() {
            let mut c = ResponseCheck::default();
            assert_eq!(c.feed(&stream[..cut]) + c.feed(&stream[cut..]), 3);
            assert_eq!(c.bad, 0);
        }
    }
}
