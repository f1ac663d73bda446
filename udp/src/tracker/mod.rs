//! What one worker does with a datagram, a mesh message or a timer tick,
//! whatever the I/O backend. The backends (`uring`, `mio`) own sockets and
//! rings and call into [`Tracker`] through the [`Io`] trait; everything here
//! is plain logic on the worker's own shard.

use crate::config::UdpConfig;
use crate::connection_id::{ConnIdError, ConnectionIds};
use crate::metrics::Metric;
use crate::protocol::{
    parse_request, peek_announce, write_announce_v4, write_announce_v6, write_connect, write_error,
    write_scrape, AnnounceEvent, ParseError, Request, TransactionId, MAX_SCRAPE_HASHES,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use riptide_common::access_list::AccessCache;
use riptide_common::metrics::WorkerMetrics;
use riptide_common::swarm::{
    Announce, AnnounceCounts, Event, PeerV4, PeerV6, ScrapeStats, Shard, Upcoming, WARM_BATCH,
};
use riptide_common::{shard_of, InfoHash};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

/// Most peers one IPv4 announce response carries (20 + 6·200 bytes stays
/// under a 1280-byte path MTU).
pub const MAX_PEERS_V4: u32 = 200;
/// Most peers one IPv6 announce response carries (20 + 18·66 bytes).
pub const MAX_PEERS_V6: u32 = 66;
/// Scrapes waiting for answers from other workers, per worker.
const PENDING_SCRAPES: usize = 256;
/// Seconds after which a scrape still waiting for other workers is dropped.
const SCRAPE_DEADLINE_SECS: u32 = 5;
/// Torrents visited per cleaning tick.
const CLEAN_BUDGET: usize = 4096;

const ERR_NOT_ALLOWED: &[u8] = b"info hash is not allowed on this tracker";
const ERR_BUSY: &[u8] = b"tracker busy, retry later";

/// The I/O a worker's logic needs from its backend.
pub trait Io {
    /// Queues a datagram to `to`, sent from `from` (None: the kernel's
    /// choice); `fill` writes the payload and returns its length. Returns
    /// false when it had to be dropped (counted by the caller).
    fn send(
        &mut self,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool;
    /// Pushes a message to worker `to`. Returns false when its ring is full.
    fn forward(&mut self, to: usize, msg: MeshMsg) -> bool;
}

/// An announce handed to the worker that owns its torrent, which updates
/// the swarm and answers the client from its own socket.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedAnnounce {
    /// The client's address (the response goes there).
    pub client: SocketAddr,
    /// The address the request was sent to (the response comes from there).
    pub local: Option<IpAddr>,
    /// Echoed in the response.
    pub transaction_id: TransactionId,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The port the client announced.
    pub port: u16,
    /// The event.
    pub event: Event,
    /// `left == 0`.
    pub seeder: bool,
    /// Peers wanted, already clamped.
    pub numwant: u16,
}

/// A message between workers. Small and `Copy`: it travels through an SPSC ring.
#[derive(Debug, Clone, Copy)]
pub enum MeshMsg {
    /// Handle this announce and answer the client.
    Announce(ForwardedAnnounce),
    /// Send back the counts of one hash of a scrape.
    ScrapeAsk {
        /// The asking worker's pending-scrape slot.
        slot: u16,
        /// The slot's generation, so a late answer to a dropped scrape is ignored.
        generation: u16,
        /// Position of the hash in the request.
        index: u8,
        /// The torrent.
        info_hash: InfoHash,
    },
    /// Counts for one hash of a scrape.
    ScrapeAnswer {
        /// The asking worker's pending-scrape slot.
        slot: u16,
        /// The slot's generation.
        generation: u16,
        /// Position of the hash in the request.
        index: u8,
        /// The counts.
        stats: ScrapeStats,
    },
}

struct PendingScrape {
    client: SocketAddr,
    local: Option<IpAddr>,
    transaction_id: TransactionId,
    started: u32,
    count: u8,
    missing: u8,
    stats: [ScrapeStats; MAX_SCRAPE_HASHES],
}

/// A bounded table of scrapes waiting for other workers' counts.
struct PendingScrapes {
    slots: Vec<Option<Box<PendingScrape>>>,
    generations: Vec<u16>,
    free: Vec<u16>,
}

impl PendingScrapes {
    fn new() -> Self {
        Self {
            slots: (0..PENDING_SCRAPES).map(|_| None).collect(),
            generations: vec![0; PENDING_SCRAPES],
            free: (0..PENDING_SCRAPES as u16).rev().collect(),
        }
    }

    fn remove(&mut self, slot: u16) -> Option<Box<PendingScrape>> {
        let entry = self.slots.get_mut(usize::from(slot))?.take()?;
        self.generations[usize::from(slot)] = self.generations[usize::from(slot)].wrapping_add(1);
        self.free.push(slot);
        Some(entry)
    }
}

/// Settings a worker reads on every request.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Announce interval sent to clients.
    pub interval: i32,
    /// Cap on peers per response.
    pub max_numwant: u32,
    /// Peer timeout for cleaning.
    pub peer_timeout: u32,
}

impl Settings {
    /// From the config.
    pub fn from_config(config: &UdpConfig) -> Self {
        Self {
            interval: i32::try_from(config.protocol.announce_interval).unwrap_or(i32::MAX),
            max_numwant: config.protocol.max_numwant,
            peer_timeout: config.cleaning.peer_timeout,
        }
    }
}

/// One worker's state: its shard of the torrents and what it needs to
/// answer requests.
pub struct Tracker {
    id: usize,
    workers: usize,
    settings: Settings,
    shard: Shard,
    ids: ConnectionIds,
    /// Unix seconds at start: connection ids are issued in Unix time.
    unix_base: u32,
    access: AccessCache,
    rng: SmallRng,
    peers_v4: Vec<PeerV4>,
    peers_v6: Vec<PeerV6>,
    /// Announces of the batch about to be handled, for `look_ahead`.
    ahead_v4: Vec<Upcoming<PeerV4>>,
    ahead_v6: Vec<Upcoming<PeerV6>>,
    pending: PendingScrapes,
    metrics: Arc<WorkerMetrics>,
}

impl Tracker {
    /// A worker `id` of `workers`.
    pub fn new(
        id: usize,
        workers: usize,
        settings: Settings,
        ids: ConnectionIds,
        unix_base: u32,
        access: AccessCache,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        Self {
            id,
            workers,
            settings,
            shard: Shard::new(),
            ids,
            unix_base,
            access,
            rng: SmallRng::from_os_rng(),
            peers_v4: Vec::with_capacity(MAX_PEERS_V4 as usize),
            peers_v6: Vec::with_capacity(MAX_PEERS_V6 as usize),
            ahead_v4: Vec::with_capacity(WARM_BATCH),
            ahead_v6: Vec::with_capacity(WARM_BATCH),
            pending: PendingScrapes::new(),
            metrics,
        }
    }

    /// This worker's shard (a process that serves more protocols lets them
    /// use it too, so their peers see each other).
    pub fn shard_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }

    /// This worker's metric values.
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    fn count(&self, m: Metric) {
        self.metrics.add(m.index(), 1);
    }

    /// Counts in `v4` or, for an IPv6 client, `v6`.
    fn count_family(&self, ipv6: bool, [v4, v6]: [Metric; 2]) {
        self.count(if ipv6 { v6 } else { v4 });
    }

    /// A batch of datagrams is about to be handled: warm the swarm memory
    /// their announces to this worker's shard will read, so that the batch's
    /// cache misses overlap (see `Shard::warm_v4`).
    pub fn look_ahead<'a>(&mut self, batch: impl Iterator<Item = (SocketAddr, &'a [u8])>) {
        self.ahead_v4.clear();
        self.ahead_v6.clear();
        for (client, payload) in batch.take(WARM_BATCH) {
            let Some(peek) = peek_announce(payload) else {
                continue;
            };
            if shard_of(&peek.info_hash, self.workers) != self.id {
                continue;
            }
            let (info_hash, port, seeder) = (peek.info_hash, peek.port, peek.seeder);
            match client.ip() {
                IpAddr::V4(ip) => self.ahead_v4.push(Upcoming {
                    info_hash,
                    addr: PeerV4 {
                        ip: ip.octets(),
                        port,
                    },
                    seeder,
                }),
                IpAddr::V6(ip) => self.ahead_v6.push(Upcoming {
                    info_hash,
                    addr: PeerV6 {
                        ip: ip.octets(),
                        port,
                    },
                    seeder,
                }),
            }
        }
        if self.ahead_v4.len() > 1 {
            self.shard.warm_v4(&self.ahead_v4);
        }
        if self.ahead_v6.len() > 1 {
            self.shard.warm_v6(&self.ahead_v6);
        }
    }

    /// Handles one datagram from `client`, received on `local` (pktinfo).
    pub fn on_datagram(
        &mut self,
        io: &mut impl Io,
        client: SocketAddr,
        local: Option<IpAddr>,
        payload: &[u8],
        now: u32,
    ) {
        let v6 = client.is_ipv6();
        self.metrics
            .add(Metric::BytesReceived.index(), payload.len() as u64);
        let request = match parse_request(payload) {
            Ok(r) => r,
            Err(ParseError::Sendable {
                transaction_id,
                reason,
            }) => {
                self.count(Metric::ErrorsMalformed);
                self.send_error(io, client, local, transaction_id, reason.as_bytes());
                return;
            }
            Err(ParseError::Unsendable) => {
                self.count(Metric::ErrorsUnanswerable);
                return;
            }
        };
        match request {
            Request::Connect(c) => {
                self.count_family(v6, [Metric::RequestsConnect4, Metric::RequestsConnect6]);
                let cid = self
                    .ids
                    .issue(client.ip(), self.unix_base.wrapping_add(now));
                if self.send(io, client, local, |buf| {
                    write_connect(buf, c.transaction_id, cid)
                }) {
                    self.count_family(v6, [Metric::ResponsesConnect4, Metric::ResponsesConnect6]);
                }
            }
            Request::Announce(a) => {
                self.count_family(v6, [Metric::RequestsAnnounce4, Metric::RequestsAnnounce6]);
                if !self.connection_id_ok(a.connection_id, client.ip(), now) {
                    return;
                }
                if !self.access.allows(&a.info_hash) {
                    self.count(Metric::ErrorsAccessDenied);
                    self.send_error(io, client, local, a.transaction_id, ERR_NOT_ALLOWED);
                    return;
                }
                let cap =
                    self.settings
                        .max_numwant
                        .min(if v6 { MAX_PEERS_V6 } else { MAX_PEERS_V4 });
                let numwant = if a.num_want <= 0 {
                    cap
                } else {
                    (a.num_want as u32).min(cap)
                };
                let fwd = ForwardedAnnounce {
                    client,
                    local,
                    transaction_id: a.transaction_id,
                    info_hash: a.info_hash,
                    port: a.port,
                    event: match a.event {
                        AnnounceEvent::Started => Event::Started,
                        AnnounceEvent::Completed => Event::Completed,
                        AnnounceEvent::Stopped => Event::Stopped,
                        AnnounceEvent::None | AnnounceEvent::Other(_) => Event::None,
                    },
                    seeder: a.left == 0,
                    numwant: numwant as u16,
                };
                let owner = shard_of(&a.info_hash, self.workers);
                if owner == self.id {
                    self.count(Metric::AnnouncesLocal);
                    self.announce(io, &fwd, now);
                } else if io.forward(owner, MeshMsg::Announce(fwd)) {
                    self.count(Metric::AnnouncesForwarded);
                    self.count(Metric::MeshSent);
                } else {
                    self.count(Metric::MeshFull);
                }
            }
            Request::Scrape(s) => {
                self.count_family(v6, [Metric::RequestsScrape4, Metric::RequestsScrape6]);
                if !self.connection_id_ok(s.connection_id, client.ip(), now) {
                    return;
                }
                self.scrape(io, client, local, s.transaction_id, s.info_hashes(), now);
            }
        }
    }

    fn connection_id_ok(&self, cid: crate::protocol::ConnectionId, ip: IpAddr, now: u32) -> bool {
        match self.ids.check(cid, ip, self.unix_base.wrapping_add(now)) {
            Ok(()) => true,
            Err(e) => {
                self.count(match e {
                    ConnIdError::Forged => Metric::ErrorsConnectionIdForged,
                    ConnIdError::Expired => Metric::ErrorsConnectionIdExpired,
                    ConnIdError::FromFuture => Metric::ErrorsConnectionIdFuture,
                });
                false
            }
        }
    }

    fn send(
        &self,
        io: &mut impl Io,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        let mut written = 0;
        let ok = io.send(to, from, |buf| {
            written = fill(buf);
            written
        });
        if ok {
            self.metrics.add(Metric::BytesSent.index(), written as u64);
        } else {
            self.count(Metric::ErrorsSendQueueFull);
        }
        ok
    }

    fn send_error(
        &self,
        io: &mut impl Io,
        to: SocketAddr,
        from: Option<IpAddr>,
        tid: TransactionId,
        message: &[u8],
    ) {
        if self.send(io, to, from, |buf| write_error(buf, tid, message)) {
            self.count(if to.is_ipv6() {
                Metric::ResponsesError6
            } else {
                Metric::ResponsesError4
            });
        }
    }

    /// Updates the owned swarm and answers the client.
    fn announce(&mut self, io: &mut impl Io, a: &ForwardedAnnounce, now: u32) {
        let sent = match a.client.ip() {
            IpAddr::V4(ip) => {
                let addr = PeerV4::from(SocketAddrV4::new(ip, a.port));
                self.announce_in(io, a, addr, now)
                    .then_some(Metric::ResponsesAnnounce4)
            }
            IpAddr::V6(ip) => {
                let addr = PeerV6::from(SocketAddrV6::new(ip, a.port, 0, 0));
                self.announce_in(io, a, addr, now)
                    .then_some(Metric::ResponsesAnnounce6)
            }
        };
        match sent {
            Some(m) => self.count(m),
            None => self.count(Metric::ErrorsSendQueueFull),
        }
    }

    /// The announce for one address family; false if the reply was dropped.
    fn announce_in<F: PeerFamily>(
        &mut self,
        io: &mut impl Io,
        a: &ForwardedAnnounce,
        addr: F,
        now: u32,
    ) -> bool {
        let req = Announce {
            info_hash: a.info_hash,
            addr,
            event: a.event,
            seeder: a.seeder,
            numwant: usize::from(a.numwant),
        };
        let out = F::buffer(&mut self.peers_v4, &mut self.peers_v6);
        let counts = F::ANNOUNCE(&mut self.shard, &req, now, &mut self.rng, out);
        let (interval, leechers, seeders) = (
            self.settings.interval,
            counts.leechers as i32,
            counts.seeders as i32,
        );
        let peers = &*out;
        // Not through `Tracker::send`: `peers` borrows this tracker's buffer.
        let mut written = 0;
        let sent = io.send(a.client, a.local, |buf| {
            written = F::WRITE(buf, a.transaction_id, interval, leechers, seeders, peers);
            written
        });
        if sent {
            self.metrics.add(Metric::BytesSent.index(), written as u64);
        }
        sent
    }

    fn scrape(
        &mut self,
        io: &mut impl Io,
        client: SocketAddr,
        local: Option<IpAddr>,
        tid: TransactionId,
        hashes: impl ExactSizeIterator<Item = InfoHash>,
        now: u32,
    ) {
        let zero = ScrapeStats {
            seeders: 0,
            completed: 0,
            leechers: 0,
        };
        let mut stats = [zero; MAX_SCRAPE_HASHES];
        let mut remote = [(0usize, InfoHash::default()); MAX_SCRAPE_HASHES];
        let mut n_remote = 0;
        let count = hashes.len().min(MAX_SCRAPE_HASHES);
        for (i, h) in hashes.take(MAX_SCRAPE_HASHES).enumerate() {
            if !self.access.allows(&h) {
                continue; // blocked hashes scrape as zeros
            }
            if shard_of(&h, self.workers) == self.id {
                stats[i] = self.shard.scrape(&h);
            } else {
                remote[n_remote] = (i, h);
                n_remote += 1;
            }
        }
        self.metrics
            .add(Metric::ScrapesLocal.index(), (count - n_remote) as u64);
        if n_remote == 0 {
            self.finish_scrape(io, client, local, tid, &stats[..count]);
            return;
        }
        let Some(slot) = self.pending.free.pop() else {
            self.count(Metric::ErrorsScrapeAbandoned);
            self.send_error(io, client, local, tid, ERR_BUSY);
            return;
        };
        let generation = self.pending.generations[usize::from(slot)];
        self.pending.slots[usize::from(slot)] = Some(Box::new(PendingScrape {
            client,
            local,
            transaction_id: tid,
            started: now,
            count: count as u8,
            missing: n_remote as u8,
            stats,
        }));
        for &(index, info_hash) in &remote[..n_remote] {
            let owner = shard_of(&info_hash, self.workers);
            let msg = MeshMsg::ScrapeAsk {
                slot,
                generation,
                index: index as u8,
                info_hash,
            };
            if !io.forward(owner, msg) {
                self.count(Metric::MeshFull);
                self.count(Metric::ErrorsScrapeAbandoned);
                self.pending.remove(slot);
                return;
            }
            self.count(Metric::MeshSent);
        }
        self.metrics
            .add(Metric::ScrapesForwarded.index(), n_remote as u64);
    }

    fn finish_scrape(
        &self,
        io: &mut impl Io,
        client: SocketAddr,
        local: Option<IpAddr>,
        tid: TransactionId,
        stats: &[ScrapeStats],
    ) {
        if self.send(io, client, local, |buf| {
            write_scrape(buf, tid, stats.iter().copied())
        }) {
            self.count(if client.is_ipv6() {
                Metric::ResponsesScrape6
            } else {
                Metric::ResponsesScrape4
            });
        }
    }

    /// Handles a message from worker `from`.
    pub fn on_mesh(&mut self, io: &mut impl Io, from: usize, msg: MeshMsg, now: u32) {
        self.count(Metric::MeshReceived);
        match msg {
            MeshMsg::Announce(a) => self.announce(io, &a, now),
            MeshMsg::ScrapeAsk {
                slot,
                generation,
                index,
                info_hash,
            } => {
                let stats = self.shard.scrape(&info_hash);
                if io.forward(
                    from,
                    MeshMsg::ScrapeAnswer {
                        slot,
                        generation,
                        index,
                        stats,
                    },
                ) {
                    self.count(Metric::MeshSent);
                } else {
                    self.count(Metric::MeshFull);
                }
            }
            MeshMsg::ScrapeAnswer {
                slot,
                generation,
                index,
                stats,
            } => {
                let s = usize::from(slot);
                if self.pending.generations.get(s) != Some(&generation) {
                    return; // answer to a scrape that was dropped
                }
                let Some(Some(p)) = self.pending.slots.get_mut(s) else {
                    return;
                };
                if let Some(entry) = p.stats.get_mut(usize::from(index)) {
                    *entry = stats;
                }
                p.missing = p.missing.saturating_sub(1);
                if p.missing == 0 {
                    if let Some(p) = self.pending.remove(slot) {
                        self.finish_scrape(
                            io,
                            p.client,
                            p.local,
                            p.transaction_id,
                            &p.stats[..usize::from(p.count)],
                        );
                    }
                }
            }
        }
    }

    /// Periodic work: a bounded cleaning slice, overdue scrapes, gauges.
    pub fn on_clean_tick(&mut self, now: u32) {
        let report = self
            .shard
            .clean(now, self.settings.peer_timeout, CLEAN_BUDGET);
        if report.peers_removed > 0 || report.torrents_removed > 0 {
            log::debug!(
                "worker {}: cleaned {} peers, {} torrents ({} visited)",
                self.id,
                report.peers_removed,
                report.torrents_removed,
                report.torrents_visited
            );
        }
        for slot in 0..PENDING_SCRAPES as u16 {
            let overdue = matches!(&self.pending.slots[usize::from(slot)], Some(p) if now.saturating_sub(p.started) > SCRAPE_DEADLINE_SECS);
            if overdue {
                self.pending.remove(slot);
                self.count(Metric::ErrorsScrapeAbandoned);
            }
        }
        self.update_gauges();
    }

    /// Copies the shard's sizes into the gauges.
    pub fn update_gauges(&self) {
        let s = self.shard.stats();
        let m = &self.metrics;
        m.set(Metric::Torrents.index(), s.torrents as u64);
        m.set(Metric::Seeders4.index(), s.seeders_v4);
        m.set(Metric::Leechers4.index(), s.leechers_v4);
        m.set(Metric::Seeders6.index(), s.seeders_v6);
        m.set(Metric::Leechers6.index(), s.leechers_v6);
    }
}

/// The swarm's announce for one address family.
type AnnounceFn<P> =
    fn(&mut Shard, &Announce<P>, u32, &mut SmallRng, &mut Vec<P>) -> AnnounceCounts;
/// The announce response writer for one address family.
type WriteFn<P> = fn(&mut [u8], TransactionId, i32, i32, i32, &[P]) -> usize;

/// What differs between an IPv4 and an IPv6 announce: the swarm call, the
/// peer buffer and the response layout.
trait PeerFamily: Copy + Sized {
    const ANNOUNCE: AnnounceFn<Self>;
    const WRITE: WriteFn<Self>;
    fn buffer<'a>(v4: &'a mut Vec<PeerV4>, v6: &'a mut Vec<PeerV6>) -> &'a mut Vec<Self>;
}

impl PeerFamily for PeerV4 {
    const ANNOUNCE: AnnounceFn<Self> = Shard::announce_v4;
    const WRITE: WriteFn<Self> = write_announce_v4;
    fn buffer<'a>(v4: &'a mut Vec<PeerV4>, _: &'a mut Vec<PeerV6>) -> &'a mut Vec<Self> {
        v4
    }
}

impl PeerFamily for PeerV6 {
    const ANNOUNCE: AnnounceFn<Self> = Shard::announce_v6;
    const WRITE: WriteFn<Self> = write_announce_v6;
    fn buffer<'a>(_: &'a mut Vec<PeerV4>, v6: &'a mut Vec<PeerV6>) -> &'a mut Vec<Self> {
        v6
    }
}

#[cfg(test)]
mod tests;
