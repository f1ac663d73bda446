//! The load thread: its connections (one peer each) and the mio loop that
//! drives them.
//!
//! A thread first opens and upgrades all its connections (a bounded number
//! connecting at once), then waits for the others at the start barrier.
//! Then every connection announces and keeps `--in-flight` announces
//! outstanding: the next goes out when a reply to one comes back. Offers
//! that arrive are answered (`--answer-percent` of them) at once. Every
//! buffer is allocated by [`Worker::new`]: messages are written into the
//! thread's JSON buffer and framed (masked) into the connection's send
//! buffer; received frames are unmasked in place in its receive buffer.
//! A plain message allocates nothing (rustls allocates inside itself).

use std::io::{self, Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use riptide_common::loadgen::run::{Gate, Report};
use riptide_common::loadgen::tcp::{would_block, Failure};
use riptide_common::loadgen::{pick_torrent, splitmix, this_thread_cpu};
use riptide_ws::protocol::{
    write_client_frame, Flow, FrameLimits, FrameReader, Message, Opcode, Role, MAX_HEADER_LEN,
};
use rustls::client::ClientConnection;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::args::{Args, MAX_IN_FLIGHT, MAX_OFFERS};
use crate::json::{decode_binary, scan, Kind, Templates};
use crate::tally::{Live, Tally};

/// Longest message taken from the tracker.
const MAX_MESSAGE: usize = 16 * 1024;
/// Connections connecting or upgrading at once, per thread.
const MAX_CONNECTING: usize = 128;
/// Timeouts and retries are swept, and counters published, this often.
const SWEEP_EVERY: Duration = Duration::from_millis(50);
/// A connection that failed waits this long before it is reopened.
const RETRY_AFTER: Duration = Duration::from_millis(100);
/// Torrents each peer announces (picked once, Pareto-skewed): a browser
/// tab holds a few, and trackers bound torrents per connection.
pub(crate) const TORRENTS_PER_PEER: usize = 8;

/// Read-only inputs shared by the threads.
pub(crate) struct Plan {
    pub(crate) args: Args,
    pub(crate) host: String,
    /// Info hashes, raw.
    pub(crate) info_hashes: Vec<[u8; 20]>,
    /// The same as JSON literals.
    pub(crate) info_hash_lits: Vec<Vec<u8>>,
    pub(crate) tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No socket; (re)opened when due.
    Closed,
    /// TCP connect, TLS handshake and the upgrade request in progress.
    Upgrading,
    /// Upgraded: frames both ways.
    Open,
}

/// One connection slot (one peer); its token is its index.
struct Conn {
    phase: Phase,
    stream: Option<TcpStream>,
    tls: Option<ClientConnection>,
    /// Bytes to send: `out[out_pos..]`.
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Box<[u8]>,
    in_len: usize,
    reader: FrameReader,
    /// `"<peer id>"`.
    peer_lit: [u8; 22],
    /// This peer seeds (`left` = 0) all its torrents.
    seeder: bool,
    /// The torrents this peer announces.
    torrents: [u32; TORRENTS_PER_PEER],
    /// Announces in flight: torrent and when sent.
    pending: [(u32, Instant); MAX_IN_FLIGHT],
    npending: usize,
    /// Announces sent on this connection so far.
    announced: u64,
    /// When the connect started.
    since: Instant,
    retry_at: Instant,
}

/// One load thread's state.
pub(crate) struct Worker<'a> {
    plan: &'a Plan,
    rng: SmallRng,
    conns: Vec<Conn>,
    templates: Templates,
    /// The JSON of the message being written.
    json: Vec<u8>,
    offer_ids: [[u8; 20]; MAX_OFFERS],
    tally: Tally,
    limits: FrameLimits,
    /// Sending announces (after the start barrier; once in `--idle`).
    running: bool,
    connecting: usize,
    first_error: Option<String>,
}

/// The upgrade request.
fn upgrade_request(host: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Origin: http://{host}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes()
}

/// Frames `payload` (masked) onto the end of `out`.
fn push_frame(out: &mut Vec<u8>, opcode: Opcode, mask: u32, payload: &[u8]) {
    let at = out.len();
    out.resize(at + MAX_HEADER_LEN + payload.len(), 0);
    let n = write_client_frame(&mut out[at..], opcode, mask.to_ne_bytes(), payload);
    out.truncate(at + n);
}

impl<'a> Worker<'a> {
    /// Thread `index` of `plan`, with `connections` connection slots.
    pub(crate) fn new(plan: &'a Plan, index: usize, connections: usize) -> Self {
        let args = &plan.args;
        let mut rng = SmallRng::seed_from_u64(splitmix(0x5753_4c44 ^ index as u64));
        let templates = Templates::new(args.sdp_bytes);
        let limits = FrameLimits {
            role: Role::Client,
            max_message_len: MAX_MESSAGE,
        };
        let in_size = limits.max_carry_len() + MAX_MESSAGE;
        let out_size = 2 * templates.announce_max_len(args.offers) + 4 * templates.answer_max_len();
        let now = Instant::now();
        let conns = (0..connections)
            .map(|k| {
                let mut peer_lit = *b"\"-RW0001-000000000000\"";
                let id = format!("{:04x}{:08x}", index & 0xffff, k);
                peer_lit[9..21].copy_from_slice(id.as_bytes());
                let mut torrents = [0; TORRENTS_PER_PEER];
                for t in &mut torrents {
                    *t = pick_torrent(&mut rng, plan.info_hashes.len(), args.run.pareto) as u32;
                }
                Conn {
                    seeder: rng.random_bool(args.run.seeders),
                    phase: Phase::Closed,
                    stream: None,
                    tls: None,
                    out: Vec::with_capacity(out_size),
                    out_pos: 0,
                    inbuf: vec![0; in_size].into_boxed_slice(),
                    in_len: 0,
                    reader: FrameReader::default(),
                    peer_lit,
                    torrents,
                    pending: [(0, now); MAX_IN_FLIGHT],
                    npending: 0,
                    announced: 0,
                    since: now,
                    retry_at: now,
                }
            })
            .collect();
        Self {
            plan,
            rng,
            conns,
            json: Vec::with_capacity(
                templates.announce_max_len(MAX_OFFERS) + templates.answer_max_len(),
            ),
            templates,
            offer_ids: [[0; 20]; MAX_OFFERS],
            tally: Tally::default(),
            limits,
            running: false,
            connecting: 0,
            first_error: None,
        }
    }

    fn note_error(&mut self, text: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(text());
        }
    }

    /// Open connection `i`: connect, queue the upgrade request.
    fn open(&mut self, i: usize, registry: &mio::Registry, now: Instant) -> io::Result<()> {
        let mut stream = TcpStream::connect(self.plan.args.target)?;
        let _ = stream.set_nodelay(true);
        registry.register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let request = upgrade_request(&self.plan.host);
        let c = &mut self.conns[i];
        c.stream = Some(stream);
        c.out.clear();
        c.out_pos = 0;
        c.in_len = 0;
        c.reader = FrameReader::default();
        c.npending = 0;
        c.since = now;
        c.tls = if let Some((config, name)) = &self.plan.tls {
            let mut tls = ClientConnection::new(Arc::clone(config), name.clone())
                .map_err(io::Error::other)?;
            tls.writer().write_all(&request)?;
            Some(tls)
        } else {
            c.out.extend_from_slice(&request);
            None
        };
        c.phase = Phase::Upgrading;
        self.connecting += 1;
        self.tally.connections += 1;
        Ok(())
    }

    fn close(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.phase == Phase::Upgrading {
            self.connecting -= 1;
        }
        c.stream = None;
        c.tls = None;
        c.phase = Phase::Closed;
        c.npending = 0;
    }

    /// Count `why`, close `i`, reopen it after a pause.
    fn fail(&mut self, i: usize, why: Failure, now: Instant) {
        self.tally.conn.count(why);
        self.close(i);
        self.conns[i].retry_at = now + RETRY_AFTER;
    }

    /// Queue announces on `i` up to `--in-flight` (one in all in `--idle`).
    fn top_up(&mut self, i: usize, now: Instant) {
        if !self.running || self.conns[i].phase != Phase::Open {
            return;
        }
        let args = &self.plan.args;
        let room = if args.idle {
            usize::from(self.conns[i].announced == 0)
        } else {
            args.in_flight - self.conns[i].npending
        };
        for _ in 0..room {
            let c = &mut self.conns[i];
            let t = c.torrents[self.rng.random_range(0..TORRENTS_PER_PEER)];
            for id in &mut self.offer_ids[..args.offers] {
                let mut bits = self.rng.random::<u128>();
                for b in id.iter_mut() {
                    *b = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
                        [(bits & 63) as usize];
                    bits >>= 6;
                }
            }
            let left = if c.seeder { 0 } else { 1 << 20 };
            self.templates.announce(
                &mut self.json,
                &self.plan.info_hash_lits[t as usize],
                &c.peer_lit,
                left,
                c.announced == 0,
                &self.offer_ids[..args.offers],
            );
            push_frame(&mut c.out, Opcode::Text, self.rng.random(), &self.json);
            c.pending[c.npending] = (t, now);
            c.npending += 1;
            c.announced += 1;
            self.tally.announces_sent += 1;
        }
    }

    /// Handle whatever connection `i` can do now.
    fn drive(&mut self, i: usize) {
        let now = Instant::now();
        if self.conns[i].phase == Phase::Closed {
            return;
        }
        let step = if self.conns[i].tls.is_some() {
            self.pump_tls(i)
        } else {
            self.pump_plain(i)
        };
        match step {
            Ok(()) => {
                self.top_up(i, now);
                let r = if self.conns[i].tls.is_some() {
                    self.pump_tls(i)
                } else {
                    self.pump_plain(i)
                };
                if let Err(why) = r {
                    self.fail(i, why, now);
                }
            }
            Err(why) => self.fail(i, why, now),
        }
    }

    /// Write what is queued, read what came, handle it.
    fn pump_plain(&mut self, i: usize) -> Result<(), Failure> {
        loop {
            let c = &mut self.conns[i];
            let stream = c.stream.as_mut().ok_or(Failure::Io)?;
            while c.out_pos < c.out.len() {
                match stream.write(&c.out[c.out_pos..]) {
                    Ok(n) => c.out_pos += n,
                    Err(e) if would_block(&e) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.note_error(|| format!("write: {e}"));
                        return Err(Failure::Io);
                    }
                }
            }
            if c.out_pos == c.out.len() {
                c.out.clear();
                c.out_pos = 0;
            }
            if c.in_len == c.inbuf.len() {
                return Err(Failure::Malformed);
            }
            match stream.read(&mut c.inbuf[c.in_len..]) {
                Ok(0) => {
                    self.note_error(|| "the tracker closed a connection".into());
                    return Err(Failure::Closed);
                }
                Ok(n) => {
                    c.in_len += n;
                    let short = c.in_len < c.inbuf.len();
                    self.take_input(i)?;
                    // A short read took all there was (edge-triggered).
                    if short && self.conns[i].out.is_empty() {
                        return Ok(());
                    }
                }
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.note_error(|| format!("read: {e}"));
                    return Err(Failure::Io);
                }
            }
        }
    }

    /// Move TLS records both ways until the socket would block; plaintext
    /// goes to `inbuf` and is handled.
    fn pump_tls(&mut self, i: usize) -> Result<(), Failure> {
        loop {
            let c = &mut self.conns[i];
            let (Some(stream), Some(tls)) = (c.stream.as_mut(), c.tls.as_mut()) else {
                return Err(Failure::Io);
            };
            if c.out_pos < c.out.len() {
                let _ = tls.writer().write_all(&c.out[c.out_pos..]);
                c.out.clear();
                c.out_pos = 0;
            }
            while tls.wants_write() {
                match tls.write_tls(stream) {
                    Ok(_) => {}
                    Err(e) if would_block(&e) => break,
                    Err(e) => {
                        self.note_error(|| format!("write: {e}"));
                        return Err(Failure::Io);
                    }
                }
            }
            let c = &mut self.conns[i];
            let (Some(stream), Some(tls)) = (c.stream.as_mut(), c.tls.as_mut()) else {
                return Err(Failure::Io);
            };
            match tls.read_tls(stream) {
                Ok(0) => {
                    self.note_error(|| "the tracker closed a connection".into());
                    return Err(Failure::Closed);
                }
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.note_error(|| format!("read: {e}"));
                    return Err(Failure::Io);
                }
            }
            if let Err(e) = tls.process_new_packets() {
                let _ = tls.write_tls(stream);
                self.note_error(|| format!("TLS: {e}"));
                return Err(Failure::Tls);
            }
            loop {
                let c = &mut self.conns[i];
                let Some(tls) = c.tls.as_mut() else {
                    return Err(Failure::Io);
                };
                if c.in_len == c.inbuf.len() {
                    return Err(Failure::Malformed);
                }
                match tls.reader().read(&mut c.inbuf[c.in_len..]) {
                    Ok(0) => return Err(Failure::Closed),
                    Ok(n) => {
                        c.in_len += n;
                        self.take_input(i)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return Err(Failure::Closed),
                }
            }
        }
    }

    /// Handle the bytes in `inbuf`: the upgrade response, then frames.
    fn take_input(&mut self, i: usize) -> Result<(), Failure> {
        let now = Instant::now();
        if self.conns[i].phase == Phase::Upgrading {
            let c = &mut self.conns[i];
            let Some(end) = c.inbuf[..c.in_len]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            else {
                return Ok(());
            };
            if !c.inbuf.starts_with(b"HTTP/1.1 101 ") {
                let head = String::from_utf8_lossy(&c.inbuf[..end]).into_owned();
                self.note_error(|| format!("upgrade refused: {head}"));
                return Err(Failure::Io);
            }
            c.inbuf.copy_within(end + 4..c.in_len, 0);
            c.in_len -= end + 4;
            c.phase = Phase::Open;
            self.connecting -= 1;
            self.tally.upgraded += 1;
            self.top_up(i, now);
        }
        let Worker {
            conns,
            plan,
            templates,
            json,
            tally,
            limits,
            rng,
            first_error,
            ..
        } = self;
        let c = &mut conns[i];
        let Conn {
            inbuf,
            in_len,
            reader,
            out,
            pending,
            npending,
            peer_lit,
            ..
        } = c;
        let answer_percent = plan.args.answer_percent;
        let mut closed = false;
        let mut bad = false;
        let used = reader
            .read(&mut inbuf[..*in_len], limits, |m| {
                match m {
                    Message::Text(text) => {
                        let Some(s) = scan(text) else {
                            bad = true;
                            return Flow::Continue;
                        };
                        match s.kind {
                            Kind::AnnounceReply | Kind::Failure => {
                                if s.kind == Kind::Failure {
                                    tally.failures += 1;
                                    if first_error.is_none() {
                                        *first_error = Some(format!(
                                            "failure: {}",
                                            String::from_utf8_lossy(text)
                                        ));
                                    }
                                } else {
                                    tally.replies += 1;
                                }
                                // Which announce in flight does it answer?
                                let mut hash = [0_u8; 20];
                                let hash_ok =
                                    s.info_hash.and_then(|r| decode_binary(&text[r], &mut hash))
                                        == Some(20);
                                let k = (0..*npending).find(|&k| {
                                    hash_ok && plan.info_hashes[pending[k].0 as usize] == hash
                                });
                                match k {
                                    Some(k) => {
                                        pending.copy_within(k + 1..*npending, k);
                                        *npending -= 1;
                                    }
                                    None if s.kind == Kind::Failure && *npending > 0 => {
                                        // A failure without a known hash:
                                        // the oldest announce.
                                        pending.copy_within(1..*npending, 0);
                                        *npending -= 1;
                                    }
                                    None => tally.unmatched_replies += 1,
                                }
                            }
                            Kind::Offer => {
                                tally.offers += 1;
                                if let (Some(h), Some(p), Some(o)) =
                                    (s.info_hash, s.peer_id, s.offer_id)
                                {
                                    if rng.random_range(0..100_u8) < answer_percent {
                                        templates
                                            .answer(json, &text[h], peer_lit, &text[p], &text[o]);
                                        push_frame(out, Opcode::Text, rng.random(), json);
                                        tally.answers_sent += 1;
                                    }
                                } else {
                                    bad = true;
                                }
                            }
                            Kind::Answer => tally.answers += 1,
                            Kind::Scrape | Kind::Unknown => bad = true,
                        }
                    }
                    Message::Ping(p) => {
                        tally.pings += 1;
                        push_frame(out, Opcode::Pong, rng.random(), p);
                    }
                    Message::Pong(_) => {}
                    Message::Binary(_) => bad = true,
                    Message::Close { .. } => closed = true,
                }
                Flow::Continue
            })
            .map_err(|code| {
                if first_error.is_none() {
                    *first_error = Some(format!(
                        "bad frame from the tracker (close code {})",
                        code.0
                    ));
                }
                Failure::Malformed
            })?;
        inbuf.copy_within(used..*in_len, 0);
        *in_len -= used;
        if bad {
            tally.conn.malformed += 1;
        }
        if closed {
            if first_error.is_none() {
                *first_error = Some("the tracker sent a close frame".into());
            }
            return Err(Failure::Closed);
        }
        Ok(())
    }

    /// Timeouts, (re)opening closed connections.
    fn sweep(&mut self, now: Instant, registry: &mio::Registry) {
        let timeout = self.plan.args.timeout;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            match c.phase {
                Phase::Upgrading if now.duration_since(c.since) >= timeout => {
                    self.note_error(|| "connect or upgrade timed out".into());
                    self.fail(i, Failure::Timeout, now);
                }
                Phase::Open if c.npending > 0 && now.duration_since(c.pending[0].1) >= timeout => {
                    // Forget it and go on.
                    c.pending.copy_within(1..c.npending, 0);
                    c.npending -= 1;
                    self.tally.conn.timeouts += 1;
                    self.note_error(|| "an announce unanswered".into());
                    self.drive(i);
                }
                Phase::Closed if c.retry_at <= now && self.connecting < MAX_CONNECTING => {
                    if let Err(e) = self.open(i, registry, now) {
                        self.note_error(|| format!("connect: {e}"));
                        self.fail(i, Failure::Io, now);
                    } else {
                        self.drive(i);
                    }
                }
                _ => {}
            }
        }
    }

    /// Drive the loop until `until` (or the stop flag); in the connect
    /// phase, until every connection is upgraded too.
    fn spin(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        live: &Live,
        gate: &Gate,
        until: Instant,
        connect_phase: bool,
    ) -> anyhow::Result<()> {
        let mut next_sweep = Instant::now();
        loop {
            let now = Instant::now();
            if now >= until || gate.stopped() {
                return Ok(());
            }
            if now >= next_sweep {
                self.sweep(now, poll.registry());
                self.tally.publish(live);
                next_sweep = now + SWEEP_EVERY;
                if connect_phase && self.tally.upgraded as usize >= self.conns.len() {
                    return Ok(());
                }
            }
            let wait = next_sweep.min(until).saturating_duration_since(now);
            match poll.poll(events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("poll"),
            }
            for ev in events.iter() {
                self.drive(ev.token().0);
            }
            if connect_phase && self.connecting < MAX_CONNECTING {
                next_sweep = next_sweep.min(Instant::now());
            }
        }
    }

    /// Connect, wait at `gate` (every thread upgraded, then the main
    /// thread's go), load until the deadline.
    pub(crate) fn run(mut self, live: &Live, gate: &Gate) -> anyhow::Result<Report<Tally>> {
        let args = &self.plan.args;
        let connect_deadline = Instant::now() + Duration::from_secs(60) + args.timeout;
        let set_up = Poll::new().context("mio poll").and_then(|mut poll| {
            let mut events = Events::with_capacity(1024);
            self.spin(&mut poll, &mut events, live, gate, connect_deadline, true)?;
            if (self.tally.upgraded as usize) < self.conns.len() {
                bail!(
                    "not every connection upgraded ({} of {} on this thread; first error: {})",
                    self.tally.upgraded,
                    self.conns.len(),
                    self.first_error.as_deref().unwrap_or("none")
                );
            }
            Ok((poll, events))
        });
        let (mut poll, mut events) = gate.start(set_up)?;
        let before = self.tally;
        let cpu_start = this_thread_cpu();
        let deadline = Instant::now() + args.run.duration;
        self.running = true;
        let now = Instant::now();
        for i in 0..self.conns.len() {
            self.top_up(i, now);
            self.drive(i);
        }
        self.spin(&mut poll, &mut events, live, gate, deadline, false)?;
        let cpu = this_thread_cpu().since(cpu_start);
        self.tally.publish(live);
        Ok(Report {
            window: self.tally.minus(&before),
            total: self.tally,
            cpu,
            first_error: self.first_error,
            ..Report::default()
        })
    }
}
