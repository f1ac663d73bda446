//! riptide-udp-load: a load generator for UDP BitTorrent trackers (BEP 15).
//!
//! Each thread owns its sockets (one per target, or `--sockets-per-target`),
//! gets a connection id with a connect request (refreshed every minute),
//! then sends requests in `sendmmsg` batches and reads answers in
//! `recvmmsg` batches (uring-rt's [`SendBatch`] / [`RecvBatch`]), waiting
//! in mio when there is nothing to do. Requests come from the `--mix`;
//! announces and scrapes pick their torrent from `--torrents` info hashes
//! with a Pareto popularity skew (`--pareto`, 0 = uniform) and their peer
//! from `--peers-per-thread` simulated peers.
//!
//! Open loop (`--rate 0`): as fast as the `--window` of requests in flight
//! per thread allows. Paced (`--rate N`): N requests/s offered in total,
//! spread over the threads; what the window cannot take is counted as
//! skipped. A request without an answer after `--timeout` is lost.
//!
//! Every buffer (in-flight table, send and receive batches, info hashes,
//! peers) is allocated before the first request: sending and receiving
//! allocate nothing. The bytes are written and parsed by
//! `riptide_udp::protocol`, the same codec the server uses.
//!
//! Output: one line per second, a summary line, and a last line
//! `RESULT key=value ...` for scripts.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use riptide_common::{InfoHash, PeerId};
use riptide_udp::protocol::{
    parse_response, AnnounceEvent, AnnounceRequest, ConnectRequest, ConnectionId, Response,
    ScrapeRequest, TransactionId, ANNOUNCE_MIN_LEN, MAX_SCRAPE_HASHES,
};
use socket2::{Domain, Protocol, Socket, Type};
use uring_rt::socket::{RecvBatch, SendBatch};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "riptide-udp-load",
    about = "Load generator for UDP BitTorrent trackers (BEP 15)"
)]
struct Args {
    /// Tracker address (IPv4 or IPv6); repeat for several.
    #[arg(long = "target", default_value = "127.0.0.1:6969")]
    targets: Vec<SocketAddr>,
    /// Load threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Pin thread i to the (i mod n)-th of these cores, e.g. `0,1`.
    #[arg(long, value_delimiter = ',')]
    cores: Vec<usize>,
    /// Number of distinct info hashes.
    #[arg(long, default_value_t = 10_000)]
    torrents: usize,
    /// Pareto shape of torrent popularity; 0 = uniform, 1 = about half the
    /// requests go to the most popular 1% of torrents.
    #[arg(long, default_value_t = 1.0)]
    pareto: f64,
    /// Request mix as relative weights.
    #[arg(long, default_value = "connect=10,announce=80,scrape=10", value_parser = parse_mix)]
    mix: Mix,
    /// How long to send, e.g. `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Requests/s offered in total; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Most requests in flight per thread.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Simulated peers per thread (each its own peer id and port).
    #[arg(long, default_value_t = 1000)]
    peers_per_thread: usize,
    /// Share of peers announcing as seeders (left = 0).
    #[arg(long, default_value_t = 0.25)]
    seeders: f64,
    /// Sockets per target per thread.
    #[arg(long, default_value_t = 1)]
    sockets_per_target: usize,
    /// Datagrams per sendmmsg / recvmmsg.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Info hashes per scrape request.
    #[arg(long, default_value_t = 1)]
    scrape_hashes: usize,
    /// `num_want` in announces.
    #[arg(long, default_value_t = 50)]
    numwant: i32,
    /// A request unanswered after this long is lost.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,
    /// No per-second lines.
    #[arg(long)]
    quiet: bool,
    /// Store this many distinct peers, then stop (a memory fill): peer i
    /// announces once, as a leecher, to torrent i mod --torrents with its
    /// own port and peer id. Ignores --mix; --duration is the time limit.
    #[arg(long, default_value_t = 0)]
    fill_peers: u64,
}

/// Relative weights of the request kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mix {
    connect: u32,
    announce: u32,
    scrape: u32,
}

fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut mix = Mix {
        connect: 0,
        announce: 0,
        scrape: 0,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected kind=weight"))?;
        let value: u32 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{part}`: weight must be a whole number"))?;
        match key.trim() {
            "connect" => mix.connect = value,
            "announce" => mix.announce = value,
            "scrape" => mix.scrape = value,
            other => {
                return Err(format!(
                    "unknown kind `{other}` (connect, announce, scrape)"
                ))
            }
        }
    }
    let total = u64::from(mix.connect) + u64::from(mix.announce) + u64::from(mix.scrape);
    if total == 0 || total > u64::from(u32::MAX) {
        return Err("the weights must add up to between 1 and 2^32-1".into());
    }
    Ok(mix)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}`: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

// --- request kinds and counters -----------------------------------------------

const CONNECT: usize = 0;
const ANNOUNCE: usize = 1;
const SCRAPE: usize = 2;
/// Response index for error responses.
const ERROR: usize = 3;
const KIND_NAMES: [&str; 4] = ["connect", "announce", "scrape", "error"];

/// Refresh a connection id after this long (they are valid two minutes).
const CONNECTION_ID_REFRESH: Duration = Duration::from_secs(60);
/// How long a thread tries to get its first connection ids.
const CONNECT_GIVE_UP: Duration = Duration::from_secs(5);
/// Payload room of a receive slot (an announce answer with 200 IPv6 peers).
const RECV_SIZE: usize = 4096;
/// Timeouts are swept, and counters published, this often.
const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// Counters one thread publishes for the per-second lines. Own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    responses: [AtomicU64; 4],
    timeouts: AtomicU64,
}

/// What a thread counts; plain integers, published to [`Live`] now and then.
#[derive(Clone, Copy, Default, Debug)]
struct Tally {
    sent: [u64; 3],
    responses: [u64; 4],
    timeouts: u64,
    /// An answer after its request had timed out, or with an unknown id.
    late: u64,
    /// Paced mode: requests due while the window was full.
    skipped: u64,
    /// Answers that did not parse.
    malformed: u64,
    send_dropped: u64,
    io_errors: u64,
    /// Peers in announce answers.
    peers: u64,
}

impl Tally {
    fn sent_total(&self) -> u64 {
        self.sent.iter().sum()
    }

    fn responses_total(&self) -> u64 {
        self.responses.iter().sum()
    }

    fn add(&mut self, o: &Tally) {
        for i in 0..3 {
            self.sent[i] += o.sent[i];
        }
        for i in 0..4 {
            self.responses[i] += o.responses[i];
        }
        self.timeouts += o.timeouts;
        self.late += o.late;
        self.skipped += o.skipped;
        self.malformed += o.malformed;
        self.send_dropped += o.send_dropped;
        self.io_errors += o.io_errors;
        self.peers += o.peers;
    }

    fn publish(&self, live: &Live) {
        live.sent.store(self.sent_total(), Ordering::Relaxed);
        for (a, &v) in live.responses.iter().zip(&self.responses) {
            a.store(v, Ordering::Relaxed);
        }
        live.timeouts.store(self.timeouts, Ordering::Relaxed);
    }
}

/// Log-linear latency histogram in microseconds: 8 buckets per power of two.
struct Histogram {
    buckets: [u64; 512],
}

impl Histogram {
    fn new() -> Self {
        Self { buckets: [0; 512] }
    }

    fn index(us: u64) -> usize {
        if us < 8 {
            return us as usize;
        }
        let e = 63 - u64::from(us.leading_zeros());
        let sub = (us >> (e - 3)) & 7;
        (((e - 2) * 8 + sub) as usize).min(511)
    }

    /// Lower bound of bucket `i`, in microseconds.
    fn lower(i: usize) -> u64 {
        if i < 8 {
            return i as u64;
        }
        let e = (i / 8 + 2) as u64;
        (8 + (i % 8) as u64) << (e - 3)
    }

    fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::index(us)] += 1;
    }

    fn add(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
    }

    fn percentile(&self, p: f64) -> Option<u64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::lower(i));
            }
        }
        None
    }
}

// --- in-flight table ----------------------------------------------------------

/// One request in flight.
#[derive(Clone, Copy)]
struct Slot {
    busy: bool,
    kind: u8,
    socket: u16,
    generation: u32,
    sent_at: Instant,
}

/// Fixed table of requests in flight; the transaction id is
/// `generation << bits | index`, so a late answer to a reused slot is
/// recognised.
struct InFlight {
    slots: Vec<Slot>,
    free: Vec<u32>,
    bits: u32,
}

impl InFlight {
    fn new(window: usize, now: Instant) -> Self {
        let size = window.next_power_of_two();
        let slots = vec![
            Slot {
                busy: false,
                kind: 0,
                socket: 0,
                generation: 0,
                sent_at: now,
            };
            size
        ];
        // Only `window` slots are ever handed out.
        let free = (0..window as u32).rev().collect();
        Self {
            slots,
            free,
            bits: size.trailing_zeros(),
        }
    }

    fn available(&self) -> usize {
        self.free.len()
    }

    fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.busy).count()
    }

    fn alloc(&mut self, kind: usize, socket: usize, now: Instant) -> Option<(u32, TransactionId)> {
        let index = self.free.pop()?;
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.busy = true;
        slot.kind = kind as u8;
        slot.socket = socket as u16;
        slot.sent_at = now;
        let tid = (slot.generation << self.bits) | index;
        Some((index, TransactionId(tid as i32)))
    }

    /// Give back a slot whose request was never sent.
    fn cancel(&mut self, index: u32) {
        self.slots[index as usize].busy = false;
        self.free.push(index);
    }

    /// The request an answer belongs to, freed: (kind, socket, sent at).
    fn complete(&mut self, tid: TransactionId) -> Option<(usize, usize, Instant)> {
        let tid = tid.0 as u32;
        let index = tid & ((1 << self.bits) - 1);
        let slot = self.slots.get_mut(index as usize)?;
        if !slot.busy || slot.generation << self.bits != tid & !((1 << self.bits) - 1) {
            return None;
        }
        slot.busy = false;
        self.free.push(index);
        Some((
            usize::from(slot.kind),
            usize::from(slot.socket),
            slot.sent_at,
        ))
    }

    /// Free every request older than `timeout`; returns them as
    /// (count, sockets whose connect timed out, as a bit set of the first 64).
    fn sweep(&mut self, now: Instant, timeout: Duration) -> (u64, u64) {
        let mut expired = 0;
        let mut connects = 0_u64;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.busy && now.duration_since(slot.sent_at) >= timeout {
                slot.busy = false;
                self.free.push(i as u32);
                expired += 1;
                if usize::from(slot.kind) == CONNECT && slot.socket < 64 {
                    connects |= 1 << slot.socket;
                }
            }
        }
        (expired, connects)
    }
}

// --- the load thread ------------------------------------------------------------

/// Read-only inputs shared by the threads.
struct Plan {
    args: Args,
    info_hashes: Vec<InfoHash>,
    stop: AtomicBool,
    failed: AtomicBool,
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

/// A simulated peer.
#[derive(Clone, Copy)]
struct Peer {
    id: PeerId,
    port: u16,
    seeder: bool,
}

/// What a thread hands back.
struct ThreadResult {
    at_deadline: Tally,
    total: Tally,
    latency: Histogram,
}

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

/// Draw a torrent index: Pareto-skewed (shape `a`) or uniform (`a` = 0).
fn pick_torrent(rng: &mut SmallRng, n: usize, a: f64) -> usize {
    if a <= 0.0 || n <= 1 {
        return rng.random_range(0..n.max(1));
    }
    // Pareto(scale 1, shape a) by inversion, capped at 101 and mapped onto
    // 0..n: with a = 1, half the draws land in the first 1%.
    let u: f64 = rng.random();
    let x = (1.0 - u).powf(-1.0 / a).min(101.0);
    (((x - 1.0) / 100.0) * (n - 1) as f64) as usize
}

/// splitmix64: spreads an index over 64 uniform bits.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn info_hash(i: usize) -> InfoHash {
    let mut h = [0_u8; 20];
    for (k, chunk) in h.chunks_mut(8).enumerate() {
        let word = splitmix((i as u64) << 2 | k as u64).to_be_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    InfoHash(h)
}

struct Worker<'a> {
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

/// Torrent index and peer of the `i`-th peer of a `--fill-peers` run.
fn fill_peer(i: u64, torrents: usize) -> (usize, Peer) {
    let t = torrents as u64;
    let mut id = [0_u8; 20];
    id[..8].copy_from_slice(b"-RL0001-");
    id[12..20].copy_from_slice(&i.to_be_bytes());
    let peer = Peer {
        id: PeerId(id),
        port: (1 + (i / t) % 65_535) as u16,
        seeder: false,
    };
    ((i % t) as usize, peer)
}

impl<'a> Worker<'a> {
    fn filling(&self) -> bool {
        self.plan.args.fill_peers > 0
    }

    fn fill_done(&self) -> bool {
        self.filling() && self.fill_next >= self.plan.args.fill_peers
    }

    fn new(plan: &'a Plan, index: usize) -> anyhow::Result<Self> {
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
        let mut rng = SmallRng::seed_from_u64(splitmix(0x5EED ^ index as u64));
        let base_port = 10_000_u32 + (index * args.peers_per_thread) as u32;
        let peers = (0..args.peers_per_thread)
            .map(|i| {
                let mut id = [0_u8; 20];
                id[..8].copy_from_slice(b"-RL0001-");
                id[8..12].copy_from_slice(&(index as u32).to_be_bytes());
                id[12..20].copy_from_slice(&(i as u64).to_be_bytes());
                Peer {
                    id: PeerId(id),
                    port: (base_port + i as u32) as u16,
                    seeder: rng.random_bool(args.seeders.clamp(0.0, 1.0)),
                }
            })
            .collect();
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
                        let torrent = pick_torrent(rng, info_hashes.len(), args.pareto);
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
                        *h = info_hashes[pick_torrent(rng, info_hashes.len(), args.pareto)];
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
            self.fill_next += args.threads as u64;
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

    fn run(mut self, live: &Live, barrier: &Barrier) -> anyhow::Result<ThreadResult> {
        let plan = self.plan;
        let args = &plan.args;
        let mut poll = Poll::new().context("mio poll")?;
        let mut events = Events::with_capacity(self.sockets.len().max(1) * 2);
        for (i, sock) in self.sockets.iter_mut().enumerate() {
            poll.registry()
                .register(&mut sock.io, Token(i), Interest::READABLE)
                .context("register socket")?;
        }
        if let Err(e) = self.connect_all(&mut poll, &mut events) {
            plan.failed.store(true, Ordering::Relaxed);
            barrier.wait();
            return Err(e);
        }
        barrier.wait();
        if plan.failed.load(Ordering::Relaxed) {
            bail!("another thread failed to start");
        }

        let start = Instant::now();
        let deadline = start + args.duration;
        let per_thread_rate = args.rate as f64 / args.threads as f64;
        let burst = args.batch * self.sockets.len();
        let mut offered = 0_u64;
        let mut next_sweep = start + SWEEP_EVERY;
        loop {
            let now = Instant::now();
            if now >= deadline || plan.stop.load(Ordering::Relaxed) || self.fill_done() {
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
        Ok(ThreadResult {
            at_deadline,
            total: self.tally,
            latency: self.latency,
        })
    }
}

// --- main -----------------------------------------------------------------------

fn check(args: &Args) -> anyhow::Result<()> {
    if args.targets.is_empty() {
        bail!("--target: give at least one tracker address");
    }
    if args.threads == 0 || args.window == 0 || args.batch == 0 || args.sockets_per_target == 0 {
        bail!("--threads, --window, --batch and --sockets-per-target must be at least 1");
    }
    if args.window > 1 << 16 {
        bail!(
            "--window {}: at most 65536 requests in flight per thread",
            args.window
        );
    }
    if args.targets.len() * args.sockets_per_target > 64 {
        bail!("at most 64 sockets per thread (targets x sockets-per-target)");
    }
    if args.torrents == 0 || args.peers_per_thread == 0 {
        bail!("--torrents and --peers-per-thread must be at least 1");
    }
    if !(1..=MAX_SCRAPE_HASHES).contains(&args.scrape_hashes) {
        bail!(
            "--scrape-hashes {}: allowed 1 to {MAX_SCRAPE_HASHES}",
            args.scrape_hashes
        );
    }
    if !(args.pareto >= 0.0 && args.pareto.is_finite()) {
        bail!("--pareto {}: must be 0 (uniform) or positive", args.pareto);
    }
    if args.duration.is_zero() || args.timeout.is_zero() {
        bail!("--duration and --timeout must be positive");
    }
    Ok(())
}

fn sum_live(lives: &[Arc<Live>]) -> (u64, [u64; 4], u64) {
    let mut sent = 0;
    let mut responses = [0; 4];
    let mut timeouts = 0;
    for l in lives {
        sent += l.sent.load(Ordering::Relaxed);
        for (r, a) in responses.iter_mut().zip(&l.responses) {
            *r += a.load(Ordering::Relaxed);
        }
        timeouts += l.timeouts.load(Ordering::Relaxed);
    }
    (sent, responses, timeouts)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    let threads = args.threads;
    let duration = args.duration;
    let quiet = args.quiet;
    let fill_peers = args.fill_peers;
    let cores = args.cores.clone();
    eprintln!(
        "riptide-udp-load: {} thread(s) -> {}, {} torrents (pareto {}), mix {:?}, {}",
        threads,
        args.targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        args.torrents,
        args.pareto,
        args.mix,
        if args.rate == 0 {
            format!("open loop, window {}/thread", args.window)
        } else {
            format!("{} requests/s offered", args.rate)
        }
    );
    let plan = Arc::new(Plan {
        info_hashes: (0..args.torrents).map(info_hash).collect(),
        args,
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
    });
    let barrier = Arc::new(Barrier::new(threads + 1));
    let lives: Vec<Arc<Live>> = (0..threads).map(|_| Arc::new(Live::default())).collect();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let plan = Arc::clone(&plan);
        let barrier = Arc::clone(&barrier);
        let live = Arc::clone(&lives[i]);
        let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let handle = thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || -> anyhow::Result<ThreadResult> {
                if let Some(core) = core {
                    if let Err(e) = riptide_common::pinning::pin_current_thread(core) {
                        plan.failed.store(true, Ordering::Relaxed);
                        barrier.wait();
                        bail!("pin thread {i} to core {core}: {e}");
                    }
                }
                let worker = match Worker::new(&plan, i) {
                    Ok(w) => w,
                    Err(e) => {
                        plan.failed.store(true, Ordering::Relaxed);
                        barrier.wait();
                        return Err(e);
                    }
                };
                worker.run(&live, &barrier)
            })
            .context("spawn load thread")?;
        handles.push(handle);
    }

    barrier.wait();
    let start = Instant::now();
    if !plan.failed.load(Ordering::Relaxed) {
        let mut prev = (0, [0; 4], 0);
        let mut second = 1;
        loop {
            let tick = start + Duration::from_secs(second);
            let end = start + duration;
            let now = Instant::now();
            if now >= end || handles.iter().all(thread::JoinHandle::is_finished) {
                break;
            }
            thread::sleep(tick.min(end) - now);
            if Instant::now() < tick {
                continue; // the run ended inside this second
            }
            let cur = sum_live(&lives);
            if !quiet {
                let r: Vec<u64> = (0..4).map(|k| cur.1[k] - prev.1[k]).collect();
                println!(
                    "[{second:>4}s] responses/s: {} (announce {}, scrape {}, connect {}, error {}) sent/s: {} timeouts: {}",
                    r.iter().sum::<u64>(),
                    r[ANNOUNCE],
                    r[SCRAPE],
                    r[CONNECT],
                    r[ERROR],
                    cur.0 - prev.0,
                    cur.2 - prev.2,
                );
            }
            prev = cur;
            second += 1;
        }
    }
    plan.stop.store(true, Ordering::Relaxed);

    let mut at_deadline = Tally::default();
    let mut total = Tally::default();
    let mut latency = Histogram::new();
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(r)) => {
                at_deadline.add(&r.at_deadline);
                total.add(&r.total);
                latency.add(&r.latency);
            }
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("a load thread panicked".into()),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }

    let secs = duration.as_secs_f64();
    let rate = |n: u64| (n as f64 / secs).round() as u64;
    let sent = total.sent_total();
    let lost = total.timeouts;
    let loss_pct = if sent == 0 {
        0.0
    } else {
        100.0 * lost as f64 / sent as f64
    };
    let r = &at_deadline.responses;
    let p50 = latency.percentile(0.50).unwrap_or(0);
    let p99 = latency.percentile(0.99).unwrap_or(0);
    let p999 = latency.percentile(0.999).unwrap_or(0);
    let peers_per_announce = if total.responses[ANNOUNCE] == 0 {
        0.0
    } else {
        total.peers as f64 / total.responses[ANNOUNCE] as f64
    };
    println!(
        "responses/s: {} (announce {}, scrape {}, connect {}, error {}) sent/s: {} loss: {loss_pct:.1}%",
        rate(at_deadline.responses_total()),
        rate(r[ANNOUNCE]),
        rate(r[SCRAPE]),
        rate(r[CONNECT]),
        rate(r[ERROR]),
        rate(at_deadline.sent_total()),
    );
    let mut details = format!(
        "latency p50 {p50}us p99 {p99}us p99.9 {p999}us; peers/announce {peers_per_announce:.1}; timeouts {lost}, late {}, malformed {}, send-dropped {}, io-errors {}",
        total.late, total.malformed, total.send_dropped, total.io_errors
    );
    if total.skipped > 0 {
        let _ = write!(details, ", skipped (window full) {}", total.skipped);
    }
    println!("{details}");
    let mut result = format!(
        "RESULT responses_per_s={} sent_per_s={} loss_pct={loss_pct:.3}",
        rate(at_deadline.responses_total()),
        rate(at_deadline.sent_total()),
    );
    for (k, name) in KIND_NAMES.iter().enumerate() {
        let _ = write!(result, " {name}_per_s={}", rate(r[k]));
    }
    let _ = write!(
        result,
        " timeouts={lost} p50_us={p50} p99_us={p99} threads={threads} duration_s={secs}"
    );
    if fill_peers > 0 {
        let _ = write!(result, " peers_stored={}", total.responses[ANNOUNCE]);
    }
    println!("{result}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_refuses() {
        assert_eq!(
            parse_mix("connect=10,announce=80,scrape=10"),
            Ok(Mix {
                connect: 10,
                announce: 80,
                scrape: 10
            })
        );
        assert_eq!(
            parse_mix(" announce = 1 "),
            Ok(Mix {
                connect: 0,
                announce: 1,
                scrape: 0
            })
        );
        assert!(parse_mix("").is_err());
        assert!(parse_mix("connect=0").is_err());
        assert!(parse_mix("ping=1").is_err());
        assert!(parse_mix("announce").is_err());
        assert!(parse_mix("announce=-1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn histogram_buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for us in 0..100_000_u64 {
            let i = Histogram::index(us);
            assert!(i >= last);
            assert!(Histogram::lower(i) <= us, "{us}");
            last = i;
        }
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.percentile(0.5).unwrap();
        assert!((40..=50).contains(&p50), "{p50}");
        assert!(Histogram::new().percentile(0.5).is_none());
    }

    #[test]
    fn in_flight_ids_survive_reuse_and_timeouts() {
        let t0 = Instant::now();
        let mut f = InFlight::new(3, t0);
        let (a, tid_a) = f.alloc(ANNOUNCE, 0, t0).unwrap();
        let (_, tid_b) = f.alloc(CONNECT, 1, t0).unwrap();
        let (_, tid_c) = f.alloc(SCRAPE, 0, t0).unwrap();
        assert!(f.alloc(SCRAPE, 0, t0).is_none());
        assert_eq!(
            f.complete(tid_a).map(|(k, s, _)| (k, s)),
            Some((ANNOUNCE, 0))
        );
        assert!(f.complete(tid_a).is_none(), "answered twice");
        // The slot is reused with a new generation: the old id stays dead.
        let (a2, tid_a2) = f.alloc(ANNOUNCE, 0, t0).unwrap();
        assert_eq!(a, a2);
        assert_ne!(tid_a, tid_a2);
        assert!(f.complete(tid_a).is_none());
        assert!(f.complete(TransactionId(-1)).is_none());
        // Timeouts free the rest and report the connect's socket.
        let (expired, connects) = f.sweep(t0 + Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!((expired, connects), (3, 0b10));
        assert!(f.complete(tid_b).is_none() && f.complete(tid_c).is_none());
        assert_eq!(f.available(), 3);
        assert_eq!(f.in_flight(), 0);
    }

    #[test]
    fn pareto_is_skewed_and_in_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 10_000;
        let mut head = 0;
        for _ in 0..10_000 {
            let i = pick_torrent(&mut rng, n, 1.0);
            assert!(i < n);
            if i < n / 100 {
                head += 1;
            }
        }
        assert!((4_000..6_000).contains(&head), "{head}");
        for _ in 0..1000 {
            assert!(pick_torrent(&mut rng, n, 0.0) < n);
            assert_eq!(pick_torrent(&mut rng, 1, 1.0), 0);
        }
    }

    #[test]
    fn info_hashes_spread_over_shards() {
        let mut per_shard = [0_u32; 4];
        for i in 0..4000 {
            per_shard[riptide_common::shard_of(&info_hash(i), 4)] += 1;
        }
        assert!(
            per_shard.iter().all(|&n| (800..1200).contains(&n)),
            "{per_shard:?}"
        );
    }
}
