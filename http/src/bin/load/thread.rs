//! The load thread: its connections and the mio loop that drives them.
//!
//! Each connection has at most one request in flight. A turn of the loop
//! starts requests on the connections in the ready queue (all of them when
//! saturating, as many as are due when paced), waits in mio, then drives
//! every connection an event names: connect, TLS handshake, write the
//! request, read until the response is whole, check it. Every buffer (the
//! connections' send and receive buffers, the request templates, the
//! ready queue) is allocated by [`Worker::new`]; a plain request allocates
//! nothing (rustls' buffered connection allocates inside itself).

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rustls::client::ClientConnection;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind};

use riptide_common::loadgen::run::{Gate, Report};
use riptide_common::loadgen::tcp::{would_block, Failure};
use riptide_common::loadgen::{pick_torrent, splitmix, this_thread_cpu, thread_peers, Peer};

use crate::args::{Args, ConnMode};
use crate::request::Templates;
use crate::response::{parse, Parsed, Verdict};
use crate::tally::{Kind, Live, Tally};
use riptide_common::histogram::Histogram;

/// Receive buffer per connection: a whole response must fit.
const RECV_SIZE: usize = 16 * 1024;
/// Timeouts are swept, and counters published, this often.
const SWEEP_EVERY: Duration = Duration::from_millis(10);
/// A connection that failed waits this long before it is reopened.
const RETRY_AFTER: Duration = Duration::from_millis(20);
/// How long a closing connection may take to see the server's FIN.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Read-only inputs shared by the threads.
pub(crate) struct Plan {
    pub(crate) args: Args,
    pub(crate) host: String,
    pub(crate) info_hashes: Vec<[u8; 20]>,
    pub(crate) tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No socket.
    Closed,
    /// TCP connect in progress; the request waits in `out` (or in rustls).
    Connecting,
    /// A request is in flight: being written, or its response being read
    /// (and, with TLS, the handshake before it).
    Busy,
    /// Response read, the server is closing: wait for its FIN, then close
    /// (so the TIME_WAIT stays on the server's side).
    Draining,
    /// Keep-alive, connected, no request.
    Idle,
}

/// One connection slot; its token is its index.
struct Conn {
    phase: Phase,
    stream: Option<TcpStream>,
    tls: Option<ClientConnection>,
    /// Plain request bytes not yet written: `out[out_pos..out_len]`.
    out: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    inbuf: Box<[u8]>,
    in_len: usize,
    kind: Kind,
    /// When the request started (including connect and handshake), or
    /// when draining started.
    since: Instant,
    /// Closed after an error: not reopened before this.
    retry_at: Instant,
    /// The TLS handshake of this connection has been counted.
    handshake_counted: bool,
}

/// One load thread's state; everything is allocated by [`Worker::new`].
pub(crate) struct Worker<'a> {
    plan: &'a Plan,
    rng: SmallRng,
    conns: Vec<Conn>,
    /// Connections that can take a request (each at most once).
    ready: VecDeque<usize>,
    /// Closed after an error, waiting for their `retry_at`.
    backoff: Vec<usize>,
    peers: Vec<Peer>,
    templates: Templates,
    scrape_picks: Vec<usize>,
    tally: Tally,
    latency: Histogram,
    keep_alive: bool,
    /// The first error's text (formatted once, for the summary).
    first_error: Option<String>,
}

/// Keep the first error's text.
fn note(first_error: &mut Option<String>, what: &str, e: &io::Error) {
    if first_error.is_none() {
        *first_error = Some(format!("{what}: {e}"));
    }
}

impl<'a> Worker<'a> {
    /// Thread `index` of `plan`, with `connections` connection slots.
    pub(crate) fn new(plan: &'a Plan, index: usize, connections: usize) -> Self {
        let args = &plan.args;
        let keep_alive = args.mode == ConnMode::KeepAlive;
        let rng = SmallRng::seed_from_u64(splitmix(0x4854_5450 ^ index as u64));
        let peers = thread_peers(b"-RH0001-", index, args.peers_per_thread, args.run.seeders);
        let templates = Templates::new(&plan.host, !keep_alive, args.numwant, args.scrape_hashes);
        let now = Instant::now();
        let conns = (0..connections)
            .map(|_| Conn {
                phase: Phase::Closed,
                stream: None,
                tls: None,
                out: vec![0; templates.max_len()].into_boxed_slice(),
                out_pos: 0,
                out_len: 0,
                inbuf: vec![0; RECV_SIZE].into_boxed_slice(),
                in_len: 0,
                kind: Kind::Announce,
                since: now,
                retry_at: now,
                handshake_counted: false,
            })
            .collect();
        Self {
            plan,
            rng,
            conns,
            ready: (0..connections).collect(),
            backoff: Vec::with_capacity(connections),
            peers,
            templates,
            scrape_picks: vec![0; args.scrape_hashes],
            tally: Tally::default(),
            latency: Histogram::new(),
            keep_alive,
            first_error: None,
        }
    }

    /// Write this turn's request for connection `i` into its buffers:
    /// `out` for plain, rustls' plaintext queue for TLS.
    fn prepare_request(&mut self, i: usize) {
        let args = &self.plan.args;
        let hashes = &self.plan.info_hashes;
        let announce = self.rng.random_range(0..100_u8) < args.announce_percent;
        let bytes = if announce {
            let torrent = pick_torrent(&mut self.rng, hashes.len(), args.run.pareto);
            let peer = self.peers[self.rng.random_range(0..self.peers.len())];
            self.templates.announce(&hashes[torrent], &peer)
        } else {
            let n = self.rng.random_range(1..=args.scrape_hashes);
            for p in &mut self.scrape_picks[..n] {
                *p = pick_torrent(&mut self.rng, hashes.len(), args.run.pareto);
            }
            self.templates
                .scrape(self.scrape_picks[..n].iter().map(|&t| &hashes[t]))
        };
        let c = &mut self.conns[i];
        c.kind = if announce {
            Kind::Announce
        } else {
            Kind::Scrape
        };
        c.in_len = 0;
        if let Some(tls) = &mut c.tls {
            // Buffered by rustls until the handshake is done.
            let _ = tls.writer().write_all(bytes);
        } else {
            c.out[..bytes.len()].copy_from_slice(bytes);
            c.out_pos = 0;
            c.out_len = bytes.len();
        }
        self.tally.sent[c.kind as usize] += 1;
    }

    /// Start a request on connection `i`: on its open connection, or on a
    /// new one.
    fn start_request(&mut self, i: usize, now: Instant, registry: &mio::Registry) {
        match self.conns[i].phase {
            Phase::Idle => {
                self.conns[i].since = now;
                self.conns[i].phase = Phase::Busy;
                self.prepare_request(i);
                self.drive(i);
            }
            Phase::Closed => {
                if let Err(e) = self.open(i, registry) {
                    self.note_error(|| format!("connect: {e}"));
                    self.fail(i, Failure::Io, now);
                    return;
                }
                self.conns[i].since = now;
                self.prepare_request(i);
            }
            // Not ready (a stale queue entry): it re-queues itself.
            Phase::Connecting | Phase::Busy | Phase::Draining => {}
        }
    }

    /// Open a TCP connection (and TLS session) for slot `i`.
    fn open(&mut self, i: usize, registry: &mio::Registry) -> io::Result<()> {
        let target: SocketAddr = self.plan.args.target;
        let mut stream = TcpStream::connect(target)?;
        if self.keep_alive {
            let _ = stream.set_nodelay(true);
        }
        registry.register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let c = &mut self.conns[i];
        c.stream = Some(stream);
        c.tls = match &self.plan.tls {
            Some((config, name)) => Some(
                ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(io::Error::other)?,
            ),
            None => None,
        };
        c.handshake_counted = false;
        c.phase = Phase::Connecting;
        self.tally.connections += 1;
        Ok(())
    }

    /// Drop connection `i`'s socket (closing it takes it out of epoll).
    fn close(&mut self, i: usize) {
        let c = &mut self.conns[i];
        c.stream = None;
        c.tls = None;
        c.phase = Phase::Closed;
    }

    /// Keep the first error's text for the summary.
    fn note_error(&mut self, text: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(text());
        }
    }

    /// Count `why`, close `i`, and queue it again after a pause.
    fn fail(&mut self, i: usize, why: Failure, now: Instant) {
        self.tally.conn.count(why);
        self.close(i);
        self.conns[i].retry_at = now + RETRY_AFTER;
        self.backoff.push(i);
    }

    /// Handle whatever connection `i` can do now.
    fn drive(&mut self, i: usize) {
        match self.conns[i].phase {
            Phase::Closed => {}
            Phase::Connecting | Phase::Busy => {
                self.conns[i].phase = Phase::Busy;
                let step = if self.conns[i].tls.is_some() {
                    self.pump_tls(i)
                } else {
                    self.pump_plain(i)
                };
                match step {
                    Ok(eof) => self.check_response(i, eof),
                    Err(why) => self.fail(i, why, Instant::now()),
                }
            }
            Phase::Draining => self.drive_drain(i),
            Phase::Idle => {
                // Nothing should arrive between requests but the
                // server's close (idle timeout).
                let c = &mut self.conns[i];
                let Some(stream) = c.stream.as_mut() else {
                    return;
                };
                let mut probe = [0_u8; 64];
                match stream.read(&mut probe) {
                    Ok(0) => self.close(i),
                    Ok(_) => self.fail(i, Failure::Malformed, Instant::now()),
                    Err(e) if would_block(&e) => {}
                    Err(_) => self.close(i),
                }
            }
        }
    }

    /// Write what is left of the request, then read. Returns whether the
    /// server closed.
    fn pump_plain(&mut self, i: usize) -> Result<bool, Failure> {
        let first_error = &mut self.first_error;
        let c = &mut self.conns[i];
        let stream = c.stream.as_mut().ok_or(Failure::Io)?;
        while c.out_pos < c.out_len {
            match stream.write(&c.out[c.out_pos..c.out_len]) {
                Ok(n) => c.out_pos += n,
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    note(first_error, "write", &e);
                    return Err(Failure::Io);
                }
            }
        }
        loop {
            if c.in_len == c.inbuf.len() {
                return Err(Failure::Malformed);
            }
            match stream.read(&mut c.inbuf[c.in_len..]) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    c.in_len += n;
                    // A read short of the room left took all there was;
                    // the next bytes come with an event of their own.
                    if c.in_len < c.inbuf.len() {
                        return Ok(false);
                    }
                }
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    note(first_error, "read", &e);
                    return Err(Failure::Io);
                }
            }
        }
    }

    /// Move TLS records both ways until the socket would block; plaintext
    /// goes to `inbuf`. Returns whether the server closed.
    fn pump_tls(&mut self, i: usize) -> Result<bool, Failure> {
        let first_error = &mut self.first_error;
        let c = &mut self.conns[i];
        let (Some(stream), Some(tls)) = (c.stream.as_mut(), c.tls.as_mut()) else {
            return Err(Failure::Io);
        };
        let mut eof = false;
        loop {
            while tls.wants_write() {
                match tls.write_tls(stream) {
                    Ok(_) => {}
                    Err(e) if would_block(&e) => break,
                    Err(e) => {
                        note(first_error, "write", &e);
                        return Err(Failure::Io);
                    }
                }
            }
            if eof {
                break;
            }
            match tls.read_tls(stream) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(e) => {
                    note(first_error, "read", &e);
                    return Err(Failure::Io);
                }
            }
            if let Err(e) = tls.process_new_packets() {
                if first_error.is_none() {
                    *first_error = Some(format!("TLS: {e}"));
                }
                // Send the alert rustls queued, best effort.
                let _ = tls.write_tls(stream);
                return Err(Failure::Tls);
            }
            if !c.handshake_counted && !tls.is_handshaking() {
                c.handshake_counted = true;
                if tls.handshake_kind() == Some(HandshakeKind::Resumed) {
                    self.tally.handshakes_resumed += 1;
                } else {
                    self.tally.handshakes_full += 1;
                }
            }
            loop {
                if c.in_len == c.inbuf.len() {
                    return Err(Failure::Malformed);
                }
                match tls.reader().read(&mut c.inbuf[c.in_len..]) {
                    Ok(0) => {
                        eof = true; // close_notify
                        break;
                    }
                    Ok(n) => c.in_len += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        eof = true; // closed without close_notify
                        break;
                    }
                }
            }
        }
        Ok(eof)
    }

    /// Look at what connection `i` has received.
    fn check_response(&mut self, i: usize, eof: bool) {
        let now = Instant::now();
        let c = &mut self.conns[i];
        let answer = match parse(&c.inbuf[..c.in_len]) {
            Parsed::Incomplete => {
                if eof {
                    self.fail(i, Failure::Closed, now);
                }
                return;
            }
            Parsed::Invalid(why) => {
                self.note_error(|| format!("bad response: {why}"));
                self.fail(i, Failure::Malformed, now);
                return;
            }
            Parsed::Done(a) => a,
        };
        if answer.len != c.in_len {
            self.note_error(|| "bytes after a response".into());
            self.fail(i, Failure::Malformed, now);
            return;
        }
        self.latency.record(now.duration_since(c.since));
        c.in_len = 0;
        let kind = c.kind as usize;
        match answer.verdict {
            Verdict::Tracker { peers } => {
                self.tally.ok[kind] += 1;
                self.tally.peers += u64::from(peers);
            }
            Verdict::Failure => {
                self.note_error(|| "a bencoded failure reason".into());
                self.tally.failures += 1;
            }
            Verdict::HttpStatus(code) => {
                self.note_error(|| format!("HTTP {code}"));
                self.tally.http_errors += 1;
            }
            Verdict::NotBencode => {
                self.note_error(|| "a body that is not one bencoded dictionary".into());
                self.tally.conn.malformed += 1;
            }
        }
        let c = &mut self.conns[i];
        if eof {
            self.close(i);
            self.ready.push_back(i);
        } else if answer.close {
            c.phase = Phase::Draining;
            c.since = now;
            self.drive_drain(i);
        } else if !self.keep_alive {
            // The server keeps the connection (it ignored `Connection:
            // close`, as aquatic_http does): close it from this side.
            self.close(i);
            self.ready.push_back(i);
        } else {
            c.phase = Phase::Idle;
            self.ready.push_back(i);
        }
    }

    /// Close `i` once the server's FIN came (or the socket failed: the
    /// answer was whole, a reset while closing is the server's business).
    fn drive_drain(&mut self, i: usize) {
        if self.drain(i) {
            self.close(i);
            self.ready.push_back(i);
        }
    }

    /// Read until the server's FIN: true once it came or the socket failed,
    /// false while it would block.
    fn drain(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_mut() else {
            return true;
        };
        let mut scratch = [0_u8; 512];
        loop {
            let r = match c.tls.as_mut() {
                Some(tls) => tls.read_tls(stream),
                None => stream.read(&mut scratch),
            };
            match r {
                Ok(0) => return true,
                Ok(_) => {
                    // Tickets and close_notify go through rustls; any
                    // plaintext is dropped: the answer was whole.
                    if let Some(tls) = c.tls.as_mut() {
                        let _ = tls.process_new_packets();
                        while matches!(tls.reader().read(&mut scratch), Ok(n) if n > 0) {}
                    }
                }
                Err(e) if would_block(&e) => return false,
                Err(_) => return true,
            }
        }
    }

    /// Timeouts, retries after errors.
    fn sweep(&mut self, now: Instant) {
        let timeout = self.plan.args.timeout;
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            match c.phase {
                Phase::Connecting | Phase::Busy if now.duration_since(c.since) >= timeout => {
                    self.fail(i, Failure::Timeout, now);
                }
                Phase::Draining if now.duration_since(c.since) >= DRAIN_TIMEOUT => {
                    self.close(i);
                    self.ready.push_back(i);
                }
                _ => {}
            }
        }
        let conns = &self.conns;
        let ready = &mut self.ready;
        self.backoff.retain(|&i| {
            let due = conns[i].retry_at <= now;
            if due {
                ready.push_back(i);
            }
            !due
        });
    }

    /// Start with the other threads at `gate`, load until the deadline.
    pub(crate) fn run(mut self, live: &Live, gate: &Gate) -> anyhow::Result<Report<Tally>> {
        let args = &self.plan.args;
        let mut poll = gate.start(Poll::new().context("mio poll"))?;
        let mut events = Events::with_capacity(1024);
        let cpu_start = this_thread_cpu();
        let start = Instant::now();
        let deadline = start + args.run.duration;
        let per_thread_rate = args.rate as f64 / args.run.threads as f64;
        let mut offered = 0_u64;
        let mut next_sweep = start + SWEEP_EVERY;
        loop {
            let now = Instant::now();
            if now >= deadline || gate.stopped() {
                break;
            }
            let want = if args.rate == 0 {
                self.ready.len()
            } else {
                let due = (now.duration_since(start).as_secs_f64() * per_thread_rate) as u64;
                let want = due.saturating_sub(offered);
                let room = self.ready.len() as u64;
                if want > room {
                    // No free connection: what cannot be sent now is
                    // skipped, not sent later in a burst.
                    self.tally.skipped += want - room;
                }
                offered += want;
                want.min(room) as usize
            };
            for _ in 0..want {
                let Some(i) = self.ready.pop_front() else {
                    break;
                };
                self.start_request(i, now, poll.registry());
            }
            let mut wait = next_sweep.saturating_duration_since(now);
            if args.rate > 0 {
                let next_due =
                    start + Duration::from_secs_f64((offered + 1) as f64 / per_thread_rate);
                wait = wait.min(next_due.saturating_duration_since(now));
            }
            if args.rate == 0 && !self.ready.is_empty() {
                wait = Duration::ZERO;
            }
            match poll.poll(&mut events, Some(wait.min(deadline - now))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("poll"),
            }
            for ev in &events {
                self.drive(ev.token().0);
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                self.tally.publish(live);
                next_sweep = now + SWEEP_EVERY;
            }
        }
        let cpu = this_thread_cpu().since(cpu_start);
        self.tally.publish(live);
        // Nothing counts after the deadline: the window is the run.
        Ok(Report {
            window: self.tally,
            total: self.tally,
            latency: self.latency,
            cpu,
            first_error: self.first_error,
        })
    }
}
