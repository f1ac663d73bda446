//! The load thread: its sockets, one per target (or `--sockets-per-target`),
//! their connection ids, and the loop that sends requests in `sendmmsg`
//! batches, reads answers in `recvmmsg` batches and sweeps timeouts,
//! waiting in mio when there is nothing to do.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use riptide_common::loadgen::run::{Gate, Report};
use riptide_common::loadgen::{pick_torrent, splitmix, thread_peers, Peer};
use riptide_common::InfoHash;
use riptide_udp::protocol::{
    parse_response, AnnounceEvent, AnnounceRequest, ConnectRequest, ConnectionId, Response,
    ScrapeRequest, ANNOUNCE_MIN_LEN, MAX_SCRAPE_HASHES,
};
use socket2::{Domain, Protocol, Socket, Type};
use uring_rt::socket::{RecvBatch, SendBatch};

use crate::args::Args;
use crate::inflight::InFlight;
use crate::peers::fill_peer;
use crate::tally::{Live, Tally, ANNOUNCE, CONNECT, ERROR, SCRAPE};
use riptide_common::histogram::Histogram;

/// Refresh a connection id after this long (they are valid two minutes).
const CONNECTION_ID_REFRESH: Duration = Duration::from_secs(60);
/// How long a thread tries to get its first connection ids.
const CONNECT_GIVE_UP: Duration = Duration::from_secs(5);
/// Payload room of a receive slot (an announce answer with 200 IPv6 peers).
const RECV_SIZE: usize = 4096;
/// Timeouts are swept, and counters published, this often.
const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// Read-only inputs shared by the threads.
pub(crate) struct Plan {
    pub(crate) args: Args,
    pub(crate) info_hashes: Vec<InfoHash>,
}

/// One socket towards one target.
struct Sock {
    io: mio::net::UdpSocket,
    target: SocketAddr,
    ipv6: bool,
    connection_id: Option<ConnectionId>,
    connected_at: Instant,
    connecting: bool,
    out: SendBatch,
}

/// A non-blocking UDP socket on the wildcard address of `target`'s family.
fn open_socket(target: SocketAddr) -> anyhow::Result<mio::net::UdpSocket> {
    let (domain, local) = match target {
        SocketAddr::V4(_) => (Domain::IPV4, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
        SocketAddr::V6(_) => (Domain::IPV6, SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))),
    };
    let sock =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).context("create UDP socket")?;
    // Big buffers so a burst of answers is not dropped by the kernel;
    // refusals are fine (the kernel caps at rmem_max).
    let _ = sock.set_recv_buffer_size(8 << 20);
    let _ = sock.set_send_buffer_size(8 << 20);
    sock.bind(&local.into())
        .with_context(|| format!("bind UDP {local}"))?;
    sock.set_nonblocking(true).context("non-blocking")?;
    Ok(mio::net::UdpSocket::from_std(sock.into()))
}

/// One load thread's state; everything is allocated by [`Worker::new`].
pub(crate) struct Worker<'a> {
    plan: &'a Plan,
    index: usize,
    rng: SmallRng,
    sockets: Vec<Sock>,
    peers: Vec<Peer>,
    inflight: InFlight,
    recv: RecvBatch,
    tally: Tally,
    latency: Histogram,
    /// Next socket for a request (round robin).
    next_socket: usize,
    /// Cumulative mix thresholds: connect, connect + announce, total.
    mix: [u32; 3],
    scrape_buf: [InfoHash; MAX_SCRAPE_HASHES],
    /// Next peer of a `--fill-peers` run (this thread takes every
    /// `threads`-th one).
    fill_next: u64,
}

impl<'a> Worker<'a> {
    fn filling(&self) -> bool {
        self.plan.args.fill_peers > 0
    }

    fn fill_done(&self) -> bool {
        self.filling() && self.fill_next >= self.plan.args.fill_peers
    }

    pub(crate) fn new(plan: &'a Plan, index: usize) -> anyhow::Result<Self> {
        let args = &plan.args;
        let now = Instant::now();
        let request_size = ANNOUNCE_MIN_LEN.max(16 + 20 * args.scrape_hashes);
        let mut sockets = Vec::new();
        for &target in &args.targets {
            for _ in 0..args.sockets_per_target {
                sockets.push(Sock {
                    io: open_socket(target)?,
                    target,
                    ipv6: target.is_ipv6(),
                    connection_id: None,
                    connected_at: now,
                    connecting: false,
                    out: SendBatch::new(args.batch, request_size),
                });
            }
        }
        let rng = SmallRng::seed_from_u64(splitmix(0x5EED ^ index as u64));
        let peers = thread_peers(b"-RL0001-", index, args.peers_per_thread, args.run.seeders);
        let m = args.mix;
        Ok(Self {
            plan,
            index,
            rng,
            sockets,
            peers,
            inflight: InFlight::new(args.window, now),
            recv: RecvBatch::new(args.batch, RECV_SIZE),
            tally: Tally::default(),
            latency: Histogram::new(),
            next_socket: 0,
            mix: [
                m.connect,
                m.connect + m.announce,
                m.connect + m.announce + m.scrape,
            ],
            scrape_buf: [InfoHash([0; 20]); MAX_SCRAPE_HASHES],
            fill_next: index as u64,
        })
    }

    /// Queue one request of `kind` on socket `s`. Returns false when
    /// nothing more can be queued this turn (window full, or the socket's
    /// batch is full and the kernel takes no more).
    fn queue(&mut self, kind: usize, s: usize, now: Instant) -> bool {
        let sock = &mut self.sockets[s];
        if sock.out.len() == sock.out.capacity() {
            Self::flush_socket(sock, &mut self.tally);
            if sock.out.len() == sock.out.capacity() {
                return false;
            }
        }
        // No connection id yet: connect first, one at a time.
        let kind = if sock.connection_id.is_none() {
            CONNECT
        } else {
            kind
        };
        if kind == CONNECT && sock.connecting && sock.connection_id.is_none() {
            return true;
        }
        let Some((slot, tid)) = self.inflight.alloc(kind, s, now) else {
            return false;
        };
        let args = &self.plan.args;
        let info_hashes = &self.plan.info_hashes;
        let (rng, peers, scrape_buf) = (&mut self.rng, &self.peers, &mut self.scrape_buf);
        let cid = sock.connection_id.unwrap_or_default();
        let fill = (args.fill_peers > 0).then(|| fill_peer(self.fill_next, info_hashes.len()));
        let mut written = 0;
        sock.out.push(sock.target, None, |buf| {
            written = match kind {
                CONNECT => ConnectRequest {
                    transaction_id: tid,
                }
                .write(buf)
                .unwrap_or(0),
                ANNOUNCE => {
                    let (torrent, peer) = fill.unwrap_or_else(|| {
                        let torrent = pick_torrent(rng, info_hashes.len(), args.run.pareto);
                        (torrent, peers[rng.random_range(0..peers.len())])
                    });
                    AnnounceRequest {
                        connection_id: cid,
                        transaction_id: tid,
                        info_hash: info_hashes[torrent],
                        peer_id: peer.id,
                        downloaded: 0,
                        left: if peer.seeder { 0 } else { 1 << 20 },
                        uploaded: 0,
                        event: AnnounceEvent::None,
                        ip: 0,
                        key: u32::from(peer.port),
                        num_want: args.numwant,
                        port: peer.port,
                        options: &[],
                    }
                    .write(buf)
                    .unwrap_or(0)
                }
                _ => {
                    let hashes = &mut scrape_buf[..args.scrape_hashes];
                    for h in hashes.iter_mut() {
                        *h = info_hashes[pick_torrent(rng, info_hashes.len(), args.run.pareto)];
                    }
                    ScrapeRequest::write(buf, cid, tid, hashes).unwrap_or(0)
                }
            };
            written
        });
        if written == 0 {
            // Cannot happen with the sizes chosen in `new`; never leak a slot.
            self.inflight.cancel(slot);
            return true;
        }
        if kind == CONNECT {
            sock.connecting = true;
        } else if fill.is_some() {
            self.fill_next += args.run.threads as u64;
        }
        self.tally.sent[kind] += 1;
        true
    }

    fn flush_socket(sock: &mut Sock, tally: &mut Tally) {
        let before = sock.out.dropped();
        match sock.out.flush(&sock.io) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tally.io_errors += 1;
                log::debug!("sendmmsg to {}: {e}", sock.target);
            }
        }
        tally.send_dropped += sock.out.dropped() - before;
    }

    fn flush_all(&mut self) {
        for sock in &mut self.sockets {
            if !sock.out.is_empty() {
                Self::flush_socket(sock, &mut self.tally);
            }
        }
    }

    fn pick_kind(&mut self) -> usize {
        if self.filling() {
            return ANNOUNCE;
        }
        let r = self.rng.random_range(0..self.mix[2]);
        if r < self.mix[0] {
            CONNECT
        } else if r < self.mix[1] {
            ANNOUNCE
        } else {
            SCRAPE
        }
    }

    /// Queue up to `n` requests; returns how many were queued.
    fn send(&mut self, n: usize, now: Instant) -> usize {
        let mut queued = 0;
        while queued < n && self.inflight.available() > 0 && !self.fill_done() {
            let kind = self.pick_kind();
            let s = self.next_socket;
            self.next_socket = (self.next_socket + 1) % self.sockets.len();
            if !self.queue(kind, s, now) {
                break;
            }
            queued += 1;
        }
        queued
    }

    /// Refresh connection ids older than a minute.
    fn refresh_connection_ids(&mut self, now: Instant) {
        for s in 0..self.sockets.len() {
            let sock = &self.sockets[s];
            if !sock.connecting && now.duration_since(sock.connected_at) >= CONNECTION_ID_REFRESH {
                self.queue(CONNECT, s, now);
            }
        }
    }

    /// Read every waiting answer on every socket; returns how many.
    fn receive(&mut self) -> usize {
        let mut total = 0;
        for s in 0..self.sockets.len() {
            loop {
                match self.recv.recv(&self.sockets[s].io) {
                    Ok(0) => break,
                    Ok(n) => {
                        total += n;
                        let now = Instant::now();
                        for i in 0..n {
                            let Some(d) = self.recv.get(i) else { continue };
                            let ipv6 = self.sockets[s].ipv6;
                            let Ok(response) = parse_response(d.payload, ipv6) else {
                                self.tally.malformed += 1;
                                continue;
                            };
                            let Some((kind, owner, sent_at)) =
                                self.inflight.complete(response.transaction_id())
                            else {
                                self.tally.late += 1;
                                continue;
                            };
                            self.latency.record(now.duration_since(sent_at));
                            match response {
                                Response::Connect { connection_id, .. } => {
                                    let sock = &mut self.sockets[owner];
                                    sock.connection_id = Some(connection_id);
                                    sock.connected_at = now;
                                    sock.connecting = false;
                                    self.tally.responses[CONNECT] += 1;
                                }
                                Response::Announce(a) => {
                                    self.tally.peers += a.peer_count() as u64;
                                    self.tally.responses[ANNOUNCE] += 1;
                                }
                                Response::Scrape { .. } => self.tally.responses[SCRAPE] += 1,
                                Response::Error { message, .. } => {
                                    if kind == CONNECT {
                                        self.sockets[owner].connecting = false;
                                    }
                                    log::debug!(
                                        "error response: {}",
                                        String::from_utf8_lossy(message)
                                    );
                                    self.tally.responses[ERROR] += 1;
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        self.tally.io_errors += 1;
                        log::debug!("recvmmsg: {e}");
                        break;
                    }
                }
            }
        }
        total
    }

    fn sweep(&mut self, now: Instant) {
        let (expired, connects) = self.inflight.sweep(now, self.plan.args.timeout);
        self.tally.timeouts += expired;
        for (i, sock) in self.sockets.iter_mut().enumerate() {
            if connects & (1 << i) != 0 {
                sock.connecting = false;
            }
        }
    }

    /// Get a first connection id on every socket.
    fn connect_all(&mut self, poll: &mut Poll, events: &mut Events) -> anyhow::Result<()> {
        let give_up = Instant::now() + CONNECT_GIVE_UP;
        let mut retry_at = Instant::now();
        while self.sockets.iter().any(|s| s.connection_id.is_none()) {
            let now = Instant::now();
            if now >= give_up {
                let missing: Vec<String> = self
                    .sockets
                    .iter()
                    .filter(|s| s.connection_id.is_none())
                    .map(|s| s.target.to_string())
                    .collect();
                bail!(
                    "thread {}: no connect answer from {} within {CONNECT_GIVE_UP:?}",
                    self.index,
                    missing.join(", ")
                );
            }
            if now >= retry_at {
                for sock in &mut self.sockets {
                    sock.connecting = false;
                }
                for s in 0..self.sockets.len() {
                    if self.sockets[s].connection_id.is_none() {
                        self.queue(CONNECT, s, now);
                    }
                }
                self.flush_all();
                retry_at = now + Duration::from_millis(500);
            }
            poll.poll(events, Some(Duration::from_millis(50)))
                .context("poll")?;
            self.receive();
            self.sweep(Instant::now());
        }
        // The warm-up does not count.
        self.tally = Tally::default();
        self.latency = Histogram::new();
        Ok(())
    }

    /// Registers the sockets with a new mio poll and gets a first
    /// connection id on each.
    pub(crate) fn connect(mut self) -> anyhow::Result<(Self, Poll, Events)> {
        let mut poll = Poll::new().context("mio poll")?;
        let mut events = Events::with_capacity(self.sockets.len().max(1) * 2);
        for (i, sock) in self.sockets.iter_mut().enumerate() {
            poll.registry()
                .register(&mut sock.io, Token(i), Interest::READABLE)
                .context("register socket")?;
        }
        self.connect_all(&mut poll, &mut events)?;
        Ok((self, poll, events))
    }

    /// Load until the deadline (after [`Worker::connect`] and the start at
    /// `gate`), then collect what is still in flight.
    pub(crate) fn run(
        mut self,
        mut poll: Poll,
        mut events: Events,
        live: &Live,
        gate: &Gate,
    ) -> anyhow::Result<Report<Tally>> {
        let args = &self.plan.args;
        let start = Instant::now();
        let deadline = start + args.run.duration;
        let per_thread_rate = args.rate as f64 / args.run.threads as f64;
        let burst = args.batch * self.sockets.len();
        let mut offered = 0_u64;
        let mut next_sweep = start + SWEEP_EVERY;
        loop {
            let now = Instant::now();
            if now >= deadline || gate.stopped() || self.fill_done() {
                break;
            }
            self.refresh_connection_ids(now);
            let want = if args.rate == 0 {
                burst
            } else {
                let due = (now.duration_since(start).as_secs_f64() * per_thread_rate) as u64;
                let mut want = due.saturating_sub(offered);
                let room = self.inflight.available() as u64;
                if want > room {
                    // The window is full: what it cannot take is skipped,
                    // not sent later in a burst.
                    self.tally.skipped += want - room;
                    offered += want - room;
                    want = room;
                }
                want.min(burst as u64) as usize
            };
            let sent = self.send(want, now);
            offered += sent as u64;
            self.flush_all();
            let received = self.receive();
            if now >= next_sweep {
                self.sweep(now);
                self.tally.publish(live);
                next_sweep = now + SWEEP_EVERY;
            }
            if sent == 0 && received == 0 {
                let mut wait = next_sweep.saturating_duration_since(now);
                if args.rate > 0 {
                    let next_due =
                        start + Duration::from_secs_f64((offered + 1) as f64 / per_thread_rate);
                    wait = wait.min(next_due.saturating_duration_since(now));
                }
                poll.poll(&mut events, Some(wait)).context("poll")?;
            }
        }
        let at_deadline = self.tally;

        // Tail: no more sending; collect what is still in flight.
        let tail_end = Instant::now() + args.timeout;
        while self.inflight.in_flight() > 0 && Instant::now() < tail_end {
            self.flush_all();
            if self.receive() == 0 {
                poll.poll(&mut events, Some(Duration::from_millis(5)))
                    .context("poll")?;
            }
        }
        self.sweep(Instant::now() + args.timeout);
        self.tally.publish(live);
        Ok(Report {
            window: at_deadline,
            total: self.tally,
            latency: self.latency,
            ..Report::default()
        })
    }
}
